// Replication under faults, on three real combined nodes: RF=3, min.insync.replicas=2,
// acks=all. Producers (the C++ client, one per thread) send sequence-numbered, keyed records while
// a nemesis SIGKILLs and restarts partition leaders, SIGSTOPs followers past
// replica.lag.time.max.ms, and restarts brokers gracefully, chosen from a printed seed, then
// restarts every broker in turn
// (GANNET_SEED replays). Afterwards a checker consumes every partition and asserts that every
// acknowledged record is there, that per key acknowledged records appear in send order, and that
// the replicas' logs below the high watermark are byte for byte the same. The producers are
// idempotent (the default), so a retry never writes a record twice: the log holds no duplicate.
// GANNET_IDEMPOTENCE=false runs them without it, and the duplicates retries write are counted
// and reported instead.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "client/consumer.h"
#include "client/producer.h"
#include "storage/log.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;

TEST(ReplicationFault, NoAcknowledgedRecordIsLostOrReordered) {
  const char* env = std::getenv("GANNET_SEED");
  const uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "replication fault test: seed " << seed << " (replay with GANNET_SEED=" << seed << ")" << std::endl;
  std::mt19937_64 rng(seed);
  const char* idem_env = std::getenv("GANNET_IDEMPOTENCE");
  const bool idempotent = !(idem_env && std::string(idem_env) == "false");
  std::cout << "producers " << (idempotent ? "idempotent" : "not idempotent (GANNET_IDEMPOTENCE=false)") << std::endl;

  Cluster c(3, "replica.lag.time.max.ms=2000\nreplica.fetch.wait.max.ms=100\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  constexpr int kPartitions = 3;
  ASSERT_EQ(c.create_error("f", kPartitions, 3, {{"min.insync.replicas", "2"}}), gannet::v1::NONE);
  const std::string bootstrap = c.bootstrap();

  // Producers.
  struct Acked {
    std::string key;
    int64_t seq;
  };
  std::mutex acked_mu;
  std::vector<Acked> acked;
  std::atomic<int64_t> failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([&, t] {
      client::ProducerConfig cfg;
      for (const auto& a : testing::split_addresses(bootstrap)) cfg.bootstrap_servers.push_back(a);
      cfg.acks = -1;
      cfg.linger_ms = 2;
      cfg.delivery_timeout_ms = 60'000;
      cfg.request_timeout_ms = 5'000;
      cfg.enable_idempotence = idempotent;
      client::Producer p(cfg);
      for (int64_t seq = 0; !stop.load(); ++seq) {
        client::ProducerRecord r;
        r.topic = "f";
        r.key = "k" + std::to_string(t) + "-" + std::to_string(seq % 5);
        r.value = *r.key + ":" + std::to_string(seq);
        const std::string key = *r.key;
        p.send(std::move(r), [&, key, seq](const client::RecordMetadata& m) {
          if (!m.ok()) {
            ++failed;
            return;
          }
          std::lock_guard<std::mutex> l(acked_mu);
          acked.push_back({key, seq});
        });
        if (seq % 50 == 49) std::this_thread::sleep_for(5ms);
      }
      p.flush();
    });
  }

  // Nemesis.
  auto leader_of = [&](int p) {
    auto md = c.metadata({"f"});
    return md.topics_size() == 1 && p < md.topics(0).partitions_size() ? md.topics(0).partitions(p).leader() : -1;
  };
  const auto until = std::chrono::steady_clock::now() + 20s;
  int actions = 0;
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {
      const int victim = leader_of(static_cast<int>(rng() % kPartitions));
      if (victim < 1) continue;
      std::cout << "nemesis: SIGKILL leader " << victim << std::endl;
      c.kill(victim, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
      c.start(victim);
    } else if (kind == 1) {
      const int p = static_cast<int>(rng() % kPartitions);
      const int leader = leader_of(p);
      int follower = static_cast<int>(1 + rng() % 3);
      if (follower == leader) follower = follower % 3 + 1;
      if (!c.running(follower)) continue;
      std::cout << "nemesis: SIGSTOP follower " << follower << " for 3 s" << std::endl;
      c.kill(follower, SIGSTOP);
      std::this_thread::sleep_for(3s);
      c.kill(follower, SIGCONT);
    } else {
      const int victim = static_cast<int>(1 + rng() % 3);
      if (!c.running(victim)) continue;
      std::cout << "nemesis: restart broker " << victim << " (SIGTERM)" << std::endl;
      c.kill(victim, SIGTERM);
      c.start(victim);
    }
    ++actions;
    // Let the cluster settle between faults: everyone back and registered.
    c.wait_unfenced({1, 2, 3}, 20s);
  }
  // Finally a rolling restart: every broker in turn, gracefully, while the producers go on.
  for (int id : c.ids()) {
    std::cout << "nemesis: rolling restart of broker " << id << std::endl;
    c.kill(id, SIGTERM);
    c.start(id);
    c.wait_unfenced({1, 2, 3}, 20s);
    ++actions;
  }
  stop = true;
  for (auto& t : producers) t.join();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_TRUE(testing::wait_until([&] {
    auto md = c.metadata({"f"});
    for (const auto& p : md.topics(0).partitions()) {
      if (p.isr_size() != 3 || p.leader() < 0) return false;
    }
    return true;
  }, 60s)) << "the ISRs did not recover: " << c.metadata({"f"}).ShortDebugString();

  // Checker: consume everything.
  client::ConsumerConfig ccfg;
  for (const auto& a : testing::split_addresses(bootstrap)) ccfg.bootstrap_servers.push_back(a);
  ccfg.auto_offset_reset = "earliest";
  client::Consumer consumer(ccfg);
  std::vector<client::TopicPartition> tps;
  for (int p = 0; p < kPartitions; ++p) tps.push_back({"f", p});
  consumer.assign(tps);
  std::map<int, std::vector<std::string>> log;  // partition -> values
  std::map<int, int64_t> hw;
  for (int round = 0; round < 200; ++round) {
    for (auto& r : consumer.poll(500)) log[r.partition].push_back(*r.value);
    bool done = true;
    for (const auto& tp : tps) {
      auto h = consumer.high_watermark(tp);
      auto pos = consumer.position(tp);
      if (!h || !pos || *pos < *h) done = false;
      if (h) hw[tp.partition] = *h;
    }
    if (done) break;
  }
  std::map<std::string, std::vector<int64_t>> by_key;  // values in log order, per key
  size_t total = 0;
  std::set<std::string> distinct;
  for (const auto& [p, values] : log) {
    for (const auto& v : values) {
      const auto colon = v.rfind(':');
      by_key[v.substr(0, colon)].push_back(std::stoll(v.substr(colon + 1)));
      distinct.insert(v);
      ++total;
    }
  }
  size_t missing = 0;
  for (const auto& a : acked) missing += distinct.count(a.key + ":" + std::to_string(a.seq)) ? 0 : 1;
  std::set<std::pair<std::string, int64_t>> acked_set;
  for (const auto& a : acked) acked_set.insert({a.key, a.seq});
  size_t reordered = 0;
  for (const auto& [key, seqs] : by_key) {
    // The first occurrences of acknowledged records must be in increasing order.
    std::set<int64_t> seen;
    int64_t last = -1;
    for (int64_t s : seqs) {
      if (!seen.insert(s).second || !acked_set.count({key, s})) continue;
      if (s < last) ++reordered;
      last = s;
    }
  }
  std::cout << "nemesis actions " << actions << "; acknowledged " << acked.size() << ", failed " << failed.load()
            << ", read " << total << " (" << total - distinct.size() << " duplicates)" << std::endl;
  EXPECT_GT(acked.size(), 1000u);
  EXPECT_EQ(missing, 0u) << "acknowledged records lost (seed " << seed << ")";
  EXPECT_EQ(reordered, 0u) << "acknowledged records out of order within a key (seed " << seed << ")";
  if (idempotent) {
    EXPECT_EQ(total - distinct.size(), 0u) << "an idempotent producer's retry was written twice (seed " << seed << ")";
  }

  // Replicas agree byte for byte below the high watermark.
  for (int id : c.ids()) c.kill(id, SIGTERM);
  for (int p = 0; p < kPartitions; ++p) {
    std::map<int, std::string> bytes;
    for (int id : c.ids()) {
      storage::Log::Options o;
      auto l = storage::Log::open(c.data_dir(id) + "/f-" + std::to_string(p), o);
      ASSERT_TRUE(l.ok()) << l.error().to_string();
      storage::ReadOptions ro;
      ro.max_offset = hw[p];
      auto r = (*l)->read(0, 1u << 30, ro);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      ASSERT_TRUE(r->copy_to(&bytes[id]).ok());
    }
    EXPECT_EQ(bytes[1].size(), bytes[2].size()) << "partition " << p;
    EXPECT_TRUE(bytes[1] == bytes[2] && bytes[2] == bytes[3])
        << "partition " << p << ": replicas differ below the high watermark " << hw[p] << " (seed " << seed << ")";
  }
}

}  // namespace
}  // namespace gannet
