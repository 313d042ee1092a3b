// The metrics listener (issue 20, first part): three real nodes, each serving Prometheus' text
// exposition at http://<metrics.http.listener>/metrics. promtool (Debian's prometheus) accepts
// every broker's output; the figures are the cluster's own (which broker leads each partition,
// each replica's log end after 30 acknowledged records, the consumer groups); anything but GET
// /metrics gets a 404, a silent client is dropped after 2 s and the listener serves on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>
#include <regex>
#include <string>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/kafka_wire.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;

// One HTTP exchange on loopback: the whole answer ("" if the connection failed).
// (A Kafka exchange too: the connection stays open, so the answer is what came within `wait_s`.)
std::string http(int port, const std::string& request, int wait_s = 10) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{wait_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return "";
  }
  if (!request.empty() && ::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string body_of(const std::string& answer) {
  const size_t at = answer.find("\r\n\r\n");
  return at == std::string::npos ? "" : answer.substr(at + 4);
}

// The value of the sample `name{labels}` ("" labels: none), or -1.
double sample(const std::string& body, const std::string& name, const std::string& labels) {
  const std::string key = name + (labels.empty() ? "" : "{" + labels + "}") + " ";
  for (const auto& l : testing::nonempty_lines(body)) {
    if (l.rfind(key, 0) == 0) return std::stod(l.substr(key.size()));
  }
  return -1;
}

TEST(MetricsTest, EveryBrokerServesPrometheusTextThatPromtoolAcceptsWithTheClustersFigures) {
  ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0) << "promtool is not installed (scripts/install_deps.sh installs prometheus)";
  testing::Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 60s));
  ASSERT_EQ(c.create_error("m", 3, 3), gannet::v1::NONE);
  ASSERT_TRUE(testing::wait_until([&] {
    auto md = c.metadata({"m"});
    if (md.topics_size() != 1 || md.topics(0).partitions_size() != 3) return false;
    for (const auto& p : md.topics(0).partitions()) {
      if (p.leader() < 0 || p.isr_size() != 3) return false;
    }
    return true;
  }, 30s, 100ms));
  {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    pc.acks = -1;
    client::Producer p(pc);
    std::atomic<int> acked{0};
    for (int i = 0; i < 30; ++i) {
      client::ProducerRecord r;
      r.topic = "m";
      r.partition = 0;
      r.value = "v" + std::to_string(i);
      p.send(std::move(r), [&](const client::RecordMetadata& m) { acked += m.ok() ? 1 : 0; });
    }
    p.flush();
    ASSERT_EQ(acked.load(), 30);
  }
  const std::string dir = testing::test_dir("metrics");
  double leaders = 0, quorum_leaders = 0, records_in = 0, bytes_in = 0;
  const auto cluster = c.describe_cluster();
  ASSERT_TRUE(cluster);
  for (int id : {1, 2, 3}) {
    // Followers catch up within a fetch or two.
    std::string body;
    ASSERT_TRUE(testing::wait_until([&] {
      body = body_of(http(c.metrics_port(id), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
      return sample(body, "gannet_partition_log_end_offset", "topic=\"m\",partition=\"0\"") == 30;
    }, 20s, 100ms)) << "broker " << id << ":\n" << body;
    EXPECT_EQ(sample(body, "gannet_broker_info",
                     "node_id=\"" + std::to_string(id) + "\",cluster_id=\"" + testing::kClusterId + "\""), 1)
        << body;
    EXPECT_EQ(sample(body, "gannet_partitions_hosted", "node_id=\"" + std::to_string(id) + "\"") >= 3, true) << body;
    EXPECT_GT(sample(body, "gannet_process_threads", "node_id=\"" + std::to_string(id) + "\""), 1) << body;
    EXPECT_GT(sample(body, "gannet_process_resident_memory_bytes", "node_id=\"" + std::to_string(id) + "\""), 1e6);
    for (int p = 0; p < 3; ++p) {
      leaders += sample(body, "gannet_partition_leader", "topic=\"m\",partition=\"" + std::to_string(p) + "\"");
    }
    EXPECT_EQ(sample(body, "gannet_partitions_under_replicated", "node_id=\"" + std::to_string(id) + "\""), 0) << body;
    records_in += std::max(0.0, sample(body, "gannet_topic_records_in_total", "topic=\"m\""));
    bytes_in += std::max(0.0, sample(body, "gannet_topic_bytes_in_total", "topic=\"m\""));
    EXPECT_GE(sample(body, "gannet_isr_shrinks_total", "node_id=\"" + std::to_string(id) + "\""), 0) << body;
    // Followers' fetch streams are parked fetches on the leaders; nothing waits to produce now.
    EXPECT_GE(sample(body, "gannet_purgatory_size", "node_id=\"" + std::to_string(id) + "\",kind=\"fetch\""), 0) << body;
    EXPECT_EQ(sample(body, "gannet_purgatory_size", "node_id=\"" + std::to_string(id) + "\",kind=\"produce\""), 0) << body;
    // The metadata quorum as each node sees it: one leader, the same epoch, and on the leader
    // each other voter's lag.
    const std::string n = "node_id=\"" + std::to_string(id) + "\"";
    EXPECT_EQ(sample(body, "gannet_quorum_leader", n), cluster->controller_id()) << body;
    EXPECT_EQ(sample(body, "gannet_quorum_epoch", n), cluster->quorum_epoch()) << body;
    EXPECT_GT(sample(body, "gannet_quorum_high_watermark", n), 0) << body;
    const double is_leader = sample(body, "gannet_quorum_role", n + ",role=\"leader\"");
    quorum_leaders += std::max(0.0, is_leader);
    if (is_leader == 1) {
      for (int other : {1, 2, 3}) {
        if (other == id) continue;
        EXPECT_GE(sample(body, "gannet_quorum_replica_lag_offsets",
                         n + ",replica=\"" + std::to_string(other) + "\",voter=\"true\""), 0) << body;
      }
    }
    // promtool's own check of the exposition format and names.
    const std::string path = dir + "/metrics" + std::to_string(id) + ".txt";
    testing::write_file(path, body);
    auto check = testing::shell_run("promtool check metrics < " + testing::shell_quote(path));
    EXPECT_EQ(check.code, 0) << check.dump();
  }
  EXPECT_EQ(leaders, 3) << "each of the 3 partitions is led by exactly one broker";
  EXPECT_EQ(quorum_leaders, 1) << "one node reports itself the quorum leader";
  EXPECT_EQ(records_in, 30) << "the 30 records appended, counted once, by partition 0's leader";
  EXPECT_GT(bytes_in, 30 * 2) << "their batches' bytes";
  // A consumer reads partition 0: its leader counts the bytes sent.
  {
    client::ConsumerConfig cc;
    cc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    client::Consumer consumer(cc);
    consumer.assign({{"m", 0}});
    consumer.seek({"m", 0}, 0);
    size_t n = 0;
    ASSERT_TRUE(testing::wait_until([&] {
      n += consumer.poll(200).size();
      return n >= 30;
    }, 20s, 10ms));
    double out = 0;
    ASSERT_TRUE(testing::wait_until([&] {
      out = 0;
      for (int id : {1, 2, 3}) {
        out += std::max(0.0, sample(body_of(http(c.metrics_port(id), "GET /metrics HTTP/1.1\r\n\r\n")),
                                    "gannet_topic_bytes_out_total", "topic=\"m\""));
      }
      return out >= bytes_in;
    }, 10s, 100ms)) << out << " bytes out, " << bytes_in << " in";
  }
  // Kafka requests are counted and timed per API: one ApiVersions, then broker 1's figures.
  {
    const std::string before = body_of(http(c.metrics_port(1), "GET /metrics HTTP/1.1\r\n\r\n"));
    const double n0 = sample(before, "gannet_kafka_requests_total", "api=\"ApiVersions\"");
    ASSERT_GE(n0, 0) << before;
    const std::string answer = http(c.kafka_port(1), testing::kafka_wire::frame(18, 0, 7, ""), 2);
    ASSERT_GT(answer.size(), 8u) << "no ApiVersions answer";
    std::string after;
    ASSERT_TRUE(testing::wait_until([&] {
      after = body_of(http(c.metrics_port(1), "GET /metrics HTTP/1.1\r\n\r\n"));
      return sample(after, "gannet_kafka_requests_total", "api=\"ApiVersions\"") == n0 + 1;
    }, 5s, 50ms)) << after;
    EXPECT_EQ(sample(after, "gannet_kafka_request_duration_seconds_count", "api=\"ApiVersions\""), n0 + 1);
    EXPECT_EQ(sample(after, "gannet_kafka_request_duration_seconds_bucket", "api=\"ApiVersions\",le=\"+Inf\""), n0 + 1);
    const std::string path = dir + "/metrics-kafka.txt";
    testing::write_file(path, after);
    auto check = testing::shell_run("promtool check metrics < " + testing::shell_quote(path));
    EXPECT_EQ(check.code, 0) << check.dump();
  }
  // A group's lag, on its coordinator: 30 records, committed at 10.
  {
    const int coordinator = c.commit_offset("lagging", "m", 0, 10);
    ASSERT_GE(coordinator, 1);
    std::string body;
    EXPECT_TRUE(testing::wait_until([&] {
      body = body_of(http(c.metrics_port(coordinator), "GET /metrics HTTP/1.1\r\n\r\n"));
      return sample(body, "gannet_consumer_group_lag", "group=\"lagging\",topic=\"m\",partition=\"0\"") == 20;
    }, 10s, 100ms)) << body;
  }
  // A real Prometheus server (Debian's) scrapes the three brokers every second; a rate and the
  // group's lag are then queried from it, as a dashboard would.
  {
    const int web = testing::free_port();
    std::string targets;
    for (int id : {1, 2, 3}) {
      targets += std::string(targets.empty() ? "" : ", ") + "'127.0.0.1:" + std::to_string(c.metrics_port(id)) + "'";
    }
    const std::string config = dir + "/prometheus.yml";
    testing::write_file(config, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                "scrape_configs:\n  - job_name: gannet\n    static_configs:\n      - targets: [" +
                                    targets + "]\n");
    testing::Process prometheus;
    prometheus.start({"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir + "/tsdb",
                      "--web.listen-address=127.0.0.1:" + std::to_string(web), "--log.level=warn"},
                     dir + "/prometheus.log");
    // The value of a one-sample instant query ("" when Prometheus has none yet).
    auto query = [&](const std::string& promql) {
      std::string encoded;
      for (unsigned char ch : promql) {
        if (std::isalnum(ch) || ch == '_' || ch == '.') {
          encoded.push_back(static_cast<char>(ch));
        } else {
          char buf[4];
          std::snprintf(buf, sizeof(buf), "%%%02X", ch);
          encoded += buf;
        }
      }
      const std::string body =
          body_of(http(web, "GET /api/v1/query?query=" + encoded + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      std::smatch m;
      static const std::regex kValue(R"re("value":\[[0-9.]+,"([-0-9.e+NaInf]+)"\])re");
      return std::regex_search(body, m, kValue) ? m[1].str() : std::string();
    };
    std::string rate, lag;
    const bool scraped = testing::wait_until([&] {
      // Keep broker 1's Kafka listener busy, so the rate has something to show.
      http(c.kafka_port(1), testing::kafka_wire::frame(18, 0, 9, ""), 2);
      rate = query("sum(rate(gannet_kafka_requests_total{api=\"ApiVersions\"}[5s]))");
      lag = query("max(gannet_consumer_group_lag{group=\"lagging\",topic=\"m\",partition=\"0\"})");
      return !rate.empty() && std::stod(rate) > 0 && lag == "20";
    }, 60s, 500ms);
    EXPECT_TRUE(scraped) << "rate: '" << rate << "', lag: '" << lag << "'\n" << testing::read_file(dir + "/prometheus.log");
    std::cout << "prometheus: ApiVersions rate " << rate << "/s, group lag " << lag << std::endl;
  }
  // gRPC calls are counted and timed per method: a Metadata call (OK) moves broker 1's figures.
  {
    const std::string before = body_of(http(c.metrics_port(1), "GET /metrics HTTP/1.1\r\n\r\n"));
    const std::string labels = "method=\"Metadata\",service=\"gannet.broker.v1.Broker\"";
    const double n0 = std::max(0.0, sample(before, "gannet_grpc_requests_total", labels));
    broker::v1::MetadataResponse md;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.broker(1)->Metadata(&ctx, broker::v1::MetadataRequest(), &md).ok());
    std::string after;
    ASSERT_TRUE(testing::wait_until([&] {
      after = body_of(http(c.metrics_port(1), "GET /metrics HTTP/1.1\r\n\r\n"));
      return sample(after, "gannet_grpc_requests_total", labels) >= n0 + 1;
    }, 5s, 50ms)) << after;
    EXPECT_EQ(sample(after, "gannet_grpc_request_errors_total", labels), 0) << after;
    EXPECT_GE(sample(after, "gannet_grpc_request_duration_seconds_count", labels), n0 + 1);
    const std::string path = dir + "/metrics-grpc.txt";
    testing::write_file(path, after);
    auto check = testing::shell_run("promtool check metrics < " + testing::shell_quote(path));
    EXPECT_EQ(check.code, 0) << check.dump();
  }
  // / is the web console (tests/console_test.cc); an unknown path: 404; a client that sends
  // nothing is dropped, and the listener serves on.
  EXPECT_NE(http(c.metrics_port(1), "GET / HTTP/1.1\r\n\r\n").find("200 OK"), std::string::npos);
  EXPECT_NE(http(c.metrics_port(1), "GET /nothing HTTP/1.1\r\n\r\n").find("404"), std::string::npos);
  EXPECT_NE(http(c.metrics_port(1), "POST /metrics HTTP/1.1\r\n\r\n").find("404"), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(http(c.metrics_port(1), ""), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(http(c.metrics_port(1), "GET /metrics HTTP/1.1\r\n\r\n").find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace gannet
