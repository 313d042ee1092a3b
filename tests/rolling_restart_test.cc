// A rolling restart as the README documents it (issue 20): each broker in turn gets SIGTERM (a
// controlled shutdown moves its leaderships away first), is started again, and the next one waits
// for `gannet cluster wait-ready --broker N` (registered, unfenced, every partition fully in sync).
// Meanwhile an acks=all idempotent producer sends steadily and a consumer group reads: the
// application sees no produce error and loses no acknowledged record. The worst produce latency
// during the restart is printed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Cluster;

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST(RollingRestart, EveryBrokerInTurnUnderAProducerAndAGroupLosesNothing) {
  Cluster c(3,
            "num.partitions=3\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
            "group.initial.rebalance.delay.ms=100\ngroup.min.session.timeout.ms=500\n"
            "offsets.topic.num.partitions=3\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 60s));
  ASSERT_EQ(c.create_error("rr", 3, 3), gannet::v1::NONE);

  // The producer: one record every 5 ms, each value a sequence number.
  std::atomic<bool> stop_producing{false};
  std::mutex mu;
  std::set<int64_t> acked;                 // with mu
  std::map<int64_t, std::string> failed;   // with mu
  std::atomic<int64_t> worst_us{0}, sent{0};
  std::thread producer([&] {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    pc.acks = -1;
    pc.enable_idempotence = true;
    pc.linger_ms = 5;
    client::Producer p(pc);
    for (int64_t i = 0; !stop_producing.load(); ++i) {
      client::ProducerRecord r;
      r.topic = "rr";
      r.key = "k" + std::to_string(i % 64);
      r.value = std::to_string(i);
      const auto t0 = Clock::now();
      p.send(std::move(r), [&, i, t0](const client::RecordMetadata& m) {
        const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        int64_t w = worst_us.load();
        while (us > w && !worst_us.compare_exchange_weak(w, us)) {
        }
        std::lock_guard<std::mutex> l(mu);
        if (m.ok()) {
          acked.insert(i);
        } else {
          failed[i] = gannet::v1::ErrorCode_Name(m.error) + ": " + m.message;
        }
      });
      sent.fetch_add(1);
      std::this_thread::sleep_for(5ms);
    }
    p.flush();
  });

  // The consumer group: one member, auto-committing, reading every value.
  std::atomic<bool> stop_consuming{false};
  std::set<int64_t> read;  // with mu
  std::atomic<int64_t> duplicates{0};
  std::thread consumer([&] {
    client::ConsumerConfig cc;
    cc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    cc.group_id = "rr-readers";
    cc.auto_offset_reset = "earliest";
    cc.session_timeout_ms = 6000;
    client::Consumer consumer(cc);
    consumer.subscribe(std::vector<std::string>{"rr"});
    while (!stop_consuming.load()) {
      for (const auto& r : consumer.poll(200)) {
        if (!r.value) continue;
        std::lock_guard<std::mutex> l(mu);
        if (!read.insert(std::stoll(*r.value)).second) duplicates.fetch_add(1);
      }
    }
    consumer.close();
  });

  std::this_thread::sleep_for(2s);
  const auto restart_start = Clock::now();
  const int64_t worst_before = worst_us.load();
  for (int id : {1, 2, 3}) {
    const auto t0 = Clock::now();
    c.kill(id, SIGTERM);  // waits for the process to exit (a controlled shutdown first)
    const int64_t stopped_ms = ms_since(t0);
    c.start(id);
    auto ready = testing::gannet_cli({"cluster", "wait-ready", "--broker", std::to_string(id), "--wait-ms", "90000",
                                      "--output", "json", "--bootstrap-server", c.bootstrap()});
    ASSERT_EQ(ready.code, 0) << "broker " << id << " did not come back:" << ready.dump();
    std::cout << "broker " << id << ": stopped in " << stopped_ms << " ms, ready " << ms_since(t0)
              << " ms after SIGTERM: " << ready.out;
  }
  std::cout << "rolling restart of 3 brokers took " << ms_since(restart_start) << " ms" << std::endl;
  std::this_thread::sleep_for(2s);
  stop_producing = true;
  producer.join();

  // Every acknowledged record reaches the group.
  std::set<int64_t> acked_copy;
  {
    std::lock_guard<std::mutex> l(mu);
    acked_copy = acked;
  }
  int64_t missing = 0;
  EXPECT_TRUE(testing::wait_until([&] {
    std::lock_guard<std::mutex> l(mu);
    missing = 0;
    for (int64_t v : acked_copy) missing += read.count(v) ? 0 : 1;
    return missing == 0;
  }, 60s, 200ms)) << missing << " acknowledged records never reached the group";
  stop_consuming = true;
  consumer.join();

  std::lock_guard<std::mutex> l(mu);
  std::cout << "sent " << sent.load() << ", acknowledged " << acked.size() << ", failed " << failed.size()
            << ", read by the group " << read.size() << " (" << duplicates.load() << " read twice)" << std::endl;
  std::cout << "worst produce latency: " << worst_us.load() / 1000 << " ms (before the restart: "
            << worst_before / 1000 << " ms)" << std::endl;
  EXPECT_TRUE(failed.empty()) << failed.size() << " produce errors, the first: " << failed.begin()->first << " "
                              << failed.begin()->second;
  EXPECT_EQ(static_cast<int64_t>(acked.size()), sent.load()) << "every record sent was acknowledged";
  EXPECT_EQ(missing, 0);
}

}  // namespace
}  // namespace gannet
