// The web console (issue 20) in a real browser: headless Chromium (Debian's) loads each page from a
// broker of a real three-node cluster and must show the topic, the group and the brokers the test
// made; a screenshot of each page is saved (TEST_UNDECLARED_OUTPUTS_DIR, i.e.
// bazel-testlogs/tests/console_test/test.outputs/) for a person to look at. The JSON the page
// reads, and creating a topic through it, are checked directly too.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "client/producer.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;

// One HTTP exchange with 127.0.0.1:port; the whole answer.
std::string http(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(ConsoleTest, EveryPageShowsTheClustersTopicGroupAndBrokersInChromium) {
  ASSERT_EQ(std::system("command -v chromium >/dev/null"), 0) << "chromium is not installed (scripts/install_deps.sh installs it)";
  testing::Cluster c(3, "group.initial.rebalance.delay.ms=100\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 60s));
  ASSERT_EQ(c.create_error("console-orders", 3, 3), gannet::v1::NONE);
  {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    client::Producer p(pc);
    std::atomic<int> acked{0};
    for (int i = 0; i < 5; ++i) {
      client::ProducerRecord r;
      r.topic = "console-orders";
      r.partition = 0;
      r.key = "order-" + std::to_string(i);
      r.value = "{\"amount\":" + std::to_string(10 * i) + "}";
      p.send(std::move(r), [&](const client::RecordMetadata& m) { acked += m.ok() ? 1 : 0; });
    }
    p.flush();
    ASSERT_EQ(acked.load(), 5);
  }
  // A group committed at 2 of 5: its coordinator's console shows a lag of 3.
  const int coordinator = c.commit_offset("console-readers", "console-orders", 0, 2);
  ASSERT_GE(coordinator, 1);
  const int port = c.metrics_port(coordinator);

  // The JSON behind the pages.
  const std::string overview = http(port, "GET /api/overview HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(overview.find("200 OK"), std::string::npos) << overview;
  for (int id : {1, 2, 3}) EXPECT_NE(overview.find("{\"id\":" + std::to_string(id) + ",\"fenced\":false"), std::string::npos) << overview;
  std::string records;
  ASSERT_TRUE(testing::wait_until([&] {
    records = http(port, "GET /api/records?topic=console-orders&partition=0&offset=1&max=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    return records.find("\"key\":\"order-4\"") != std::string::npos;
  }, 10s, 200ms)) << records;
  EXPECT_EQ(records.find("\"key\":\"order-0\""), std::string::npos) << "offset 1 on" << records;
  // From a time: every record is at or after 0, none after an hour from now.
  const std::string from_zero = http(port, "GET /api/records?topic=console-orders&partition=0&time=0 HTTP/1.1\r\n\r\n");
  EXPECT_NE(from_zero.find("\"from_offset\":0,"), std::string::npos) << from_zero;
  EXPECT_NE(from_zero.find("\"key\":\"order-0\""), std::string::npos) << from_zero;
  const int64_t later = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(1))
                            .count();
  const std::string from_later = http(port, "GET /api/records?topic=console-orders&partition=0&time=" +
                                                std::to_string(later) + " HTTP/1.1\r\n\r\n");
  EXPECT_NE(from_later.find("\"error_code\":\"NONE\",\"error_message\":\"\",\"from_offset\":5,"), std::string::npos)
      << from_later;
  EXPECT_NE(from_later.find("\"records\":[]"), std::string::npos) << from_later;
  const std::string bad = http(port, "GET /api/records?topic=nope&partition=0&offset=0 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(bad.find("UNKNOWN_TOPIC_OR_PARTITION"), std::string::npos) << bad;
  const std::string form = "name=console-created&partitions=2&replication_factor=3";
  const std::string created = http(port, "POST /api/topics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                         "Content-Length: " + std::to_string(form.size()) + "\r\n\r\n" + form);
  EXPECT_NE(created.find("\"error_code\":\"NONE\""), std::string::npos) << created;
  const std::string again = http(port, "POST /api/topics HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(form.size()) +
                                           "\r\n\r\n" + form);
  EXPECT_NE(again.find("TOPIC_ALREADY_EXISTS"), std::string::npos) << again;
  EXPECT_NE(http(port, "GET /nothing HTTP/1.1\r\n\r\n").find("404 Not Found"), std::string::npos);

  // Each page in Chromium, after its scripts ran: what it shows, and a screenshot.
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string shots = outputs ? outputs : testing::test_dir("console");
  const std::string chromium = "timeout 90 chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
                               "--no-first-run --user-data-dir=" + testing::test_dir("chromium-profile") +
                               " --virtual-time-budget=8000 ";
  struct Page {
    std::string fragment;
    std::vector<std::string> shows;
  };
  const std::vector<Page> pages = {
      {"overview", {"broker " + std::to_string(coordinator) + " of cluster " + testing::kClusterId, "unfenced", "Active controller"}},
      {"topics", {"console-orders", "console-created", "High watermark"}},
      {"records?topic=console-orders&amp;partition=0&amp;offset=0", {"order-3", "{\"amount\":30}", "5 record(s) from offset 0"}},
      {"groups", {"console-readers", "<b>3</b>"}},
  };
  for (const Page& p : pages) {
    std::string url = "http://127.0.0.1:" + std::to_string(port) + "/#" + p.fragment;
    for (size_t at; (at = url.find("&amp;")) != std::string::npos;) url.replace(at, 5, "&");
    testing::CliRun dom;
    bool shown = false;
    for (int attempt = 0; attempt < 3 && !shown; ++attempt) {
      dom = testing::shell_run(chromium + "--dump-dom " + testing::shell_quote(url));
      shown = true;
      for (const std::string& s : p.shows) shown = shown && dom.out.find(s) != std::string::npos;
    }
    for (const std::string& s : p.shows) {
      EXPECT_NE(dom.out.find(s), std::string::npos) << "#" << p.fragment << " does not show " << s << dom.dump();
    }
    const std::string name = p.fragment.substr(0, p.fragment.find('?'));
    const std::string png = shots + "/console-" + name + ".png";
    auto shot = testing::shell_run(chromium + "--window-size=1280,900 --screenshot=" + testing::shell_quote(png) + " " +
                                   testing::shell_quote(url));
    EXPECT_TRUE(std::filesystem::exists(png) && std::filesystem::file_size(png) > 10'000) << shot.dump();
    std::cout << "screenshot of #" << name << ": " << png << std::endl;
  }
}

}  // namespace
}  // namespace gannet
