// Review tests for the consumer's prefetch (commit 7093329): poll(timeout) must not block for
// fetch.max.wait.ms on a prefetch, and a seek must not wait for a stale prefetch; nor may one
// leader's long poll hold back another leader's records.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

class PrefetchReview : public ::testing::Test {
 protected:
  void SetUp() override {
    c_ = std::make_unique<Cluster>(1);
    c_->start_all();
    ASSERT_TRUE(c_->wait_unfenced({1}, 30s));
    ASSERT_EQ(c_->create_error("t", 1, 1), gannet::v1::NONE);
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(c_->bootstrap());
    pc.acks = 1;
    client::Producer p(pc);
    for (int i = 0; i < 10; ++i) {
      client::ProducerRecord r;
      r.topic = "t";
      r.partition = 0;
      r.value = "v" + std::to_string(i);
      ASSERT_TRUE(p.send(std::move(r)).get().ok());
    }
  }
  std::unique_ptr<client::Consumer> consumer() {
    client::ConsumerConfig cc;
    cc.bootstrap_servers = testing::split_addresses(c_->bootstrap());
    cc.auto_offset_reset = "earliest";
    cc.fetch_max_wait_ms = 4000;
    auto k = std::make_unique<client::Consumer>(cc);
    k->assign({{"t", 0}});
    return k;
  }
  // Reads all 10 records (leaves a prefetch at offset 10 in flight, long-polling 4 s).
  void drain(client::Consumer& k) {
    size_t got = 0;
    for (int i = 0; i < 50 && got < 10; ++i) got += k.poll(5000).size();
    ASSERT_EQ(got, 10u);
  }
  std::unique_ptr<Cluster> c_;
};

TEST_F(PrefetchReview, PollHonoursItsTimeoutWhenAPrefetchIsPending) {
  auto k = consumer();
  drain(*k);
  const auto t0 = std::chrono::steady_clock::now();
  auto recs = k->poll(200);
  EXPECT_TRUE(recs.empty());
  EXPECT_LT(ms_since(t0), 1500) << "poll(200) waited for the prefetch's fetch.max.wait.ms long poll";
}

TEST_F(PrefetchReview, SeekDoesNotWaitForTheStalePrefetch) {
  auto k = consumer();
  drain(*k);
  k->seek({"t", 0}, 5);
  const auto t0 = std::chrono::steady_clock::now();
  auto recs = k->poll(200);
  const int64_t took = ms_since(t0);
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs.front().offset, 5) << "stale prefetch used after seek";
  EXPECT_LT(took, 1500) << "poll(200) after seek waited for the dropped prefetch";
}

TEST_F(PrefetchReview, DestroyingTheConsumerDoesNotWaitForTheLongPoll) {
  auto k = consumer();
  drain(*k);
  const auto t0 = std::chrono::steady_clock::now();
  k.reset();
  EXPECT_LT(ms_since(t0), 1500) << "~Consumer blocked on the prefetch's long poll";
}

// Two partitions led by two brokers, data in one only: the empty one's fetch long-polls (4 s)
// while the other's answer is in at once. poll() returns that answer without waiting out the
// long poll (it stays in flight for the next poll), and keeps doing so as more records come.
TEST(PollAcrossLeaders, OneLeadersLongPollDoesNotHoldBackAnothersRecords) {
  Cluster c(2);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2}, 30s));
  ASSERT_EQ(c.create_error("two", 2, 1), gannet::v1::NONE);
  auto md = c.metadata({"two"});
  ASSERT_EQ(md.topics_size(), 1);
  ASSERT_EQ(md.topics(0).partitions_size(), 2);
  ASSERT_NE(md.topics(0).partitions(0).leader(), md.topics(0).partitions(1).leader())
      << "the test needs the partitions on different leaders";
  client::ProducerConfig pc;
  pc.bootstrap_servers = testing::split_addresses(c.bootstrap());
  pc.acks = 1;
  client::Producer p(pc);
  auto send = [&](int from, int n) {
    for (int i = from; i < from + n; ++i) {
      client::ProducerRecord r;
      r.topic = "two";
      r.partition = 0;
      r.value = "v" + std::to_string(i);
      ASSERT_TRUE(p.send(std::move(r)).get().ok());
    }
  };
  send(0, 10);
  client::ConsumerConfig cc;
  cc.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cc.auto_offset_reset = "earliest";
  cc.fetch_max_wait_ms = 4000;
  client::Consumer k(cc);
  k.assign({{"two", 0}, {"two", 1}});
  auto read = [&](int want, int64_t first) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<client::ConsumerRecord> got;
    while (static_cast<int>(got.size()) < want && ms_since(t0) < 10'000) {
      for (auto& r : k.poll(10'000)) got.push_back(std::move(r));
    }
    ASSERT_EQ(static_cast<int>(got.size()), want);
    EXPECT_EQ(got.front().partition, 0);
    EXPECT_EQ(got.front().offset, first);
    EXPECT_EQ(got.back().offset, first + want - 1);
    EXPECT_LT(ms_since(t0), 2500) << "poll waited for the empty partition's long poll";
  };
  read(10, 0);
  for (int round = 1; round <= 3; ++round) {
    send(round * 10, 10);
    read(10, round * 10);
  }
  // Only the idle partition's long poll (sent by an earlier poll) is left: poll(200) still
  // returns in about 200 ms.
  k.pause({{"two", 0}});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(k.poll(200).empty());
  EXPECT_LT(ms_since(t0), 1500) << "poll(200) waited out a long poll an earlier poll had sent";
  k.resume({{"two", 0}});
  send(40, 5);
  read(5, 40);
}

}  // namespace
}  // namespace gannet
