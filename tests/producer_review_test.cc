// Review of the producer's per-partition request (batches queued behind a partition's request
// in flight go out together, in one append): a batch the broker refuses on its own merits must
// fail alone, not take the partition's other batches in that request down with it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

#include "client/producer.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;

client::ProducerRecord record(const std::string& topic, std::optional<std::string> key, std::string value) {
  client::ProducerRecord r;
  r.topic = topic;
  r.partition = 0;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

// A good record, then (in a batch of its own, queued behind it before the sender takes the
// first: the second one makes the first "full") a record the topic refuses. The broker
// validates a request's batches of one partition together, so unless the producer resends them
// one by one, the good record fails with the bad one's error.
// With `idempotent` (acks=all), the refused batch took sequence numbers the broker never saw:
// the next record goes on only because the producer bumps the partition's epoch (KIP-360); without
// that it would get OUT_OF_ORDER_SEQUENCE_NUMBER.
void expect_only_the_bad_record_fails(Cluster& c, const std::string& topic, std::optional<std::string> good_key,
                                      std::optional<std::string> bad_key, size_t bad_size,
                                      gannet::v1::ErrorCode bad_error, bool idempotent = false) {
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = idempotent ? -1 : 1;
  cfg.enable_idempotence = idempotent;
  cfg.batch_size = 1500;
  cfg.linger_ms = 60'000;  // the first batch alone is never ready: only the second makes it so
  cfg.delivery_timeout_ms = 20'000;
  client::Producer p(cfg);
  auto good = p.send(record(topic, good_key, "good"));
  auto bad = p.send(record(topic, bad_key, std::string(bad_size, 'x')));
  p.flush();
  ASSERT_EQ(bad.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(bad.get().error, bad_error);
  ASSERT_EQ(good.wait_for(30s), std::future_status::ready);
  const client::RecordMetadata g = good.get();
  EXPECT_EQ(g.error, gannet::v1::NONE) << "a good record failed with its neighbour's error: " << g.message;
  EXPECT_EQ(g.offset, 0);
  // And the partition goes on: the next record lands right after the good one.
  auto next = p.send(record(topic, good_key, "next"));
  p.flush();
  const client::RecordMetadata n = next.get();
  EXPECT_EQ(n.error, gannet::v1::NONE) << n.message;
  EXPECT_EQ(n.offset, 1);
  // And again, in sequence after it.
  auto after = p.send(record(topic, good_key, "after"));
  p.flush();
  const client::RecordMetadata a = after.get();
  EXPECT_EQ(a.error, gannet::v1::NONE) << a.message;
  EXPECT_EQ(a.offset, 2);
}

TEST(ProducerReview, ABatchTheBrokerRefusesFailsAloneNotItsNeighbours) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("small", 1, 3, {{"max.message.bytes", "2000"}}), gannet::v1::NONE);
  ASSERT_EQ(c.create_error("compact", 1, 3, {{"cleanup.policy", "compact"}}), gannet::v1::NONE);
  {
    SCOPED_TRACE("max.message.bytes");
    expect_only_the_bad_record_fails(c, "small", std::nullopt, std::nullopt, 5000, gannet::v1::MESSAGE_TOO_LARGE);
  }
  {
    SCOPED_TRACE("a keyless record on a compacted topic");
    expect_only_the_bad_record_fails(c, "compact", "k", std::nullopt, 2000, gannet::v1::INVALID_RECORD);
  }
  ASSERT_EQ(c.create_error("small-idem", 1, 3, {{"max.message.bytes", "2000"}}), gannet::v1::NONE);
  {
    SCOPED_TRACE("an idempotent producer: max.message.bytes, then the partition goes on");
    expect_only_the_bad_record_fails(c, "small-idem", std::nullopt, std::nullopt, 5000, gannet::v1::MESSAGE_TOO_LARGE,
                                     /*idempotent=*/true);
  }
}

// A full metadata refresh must not forget topics on the word of a restarting broker whose image is
// behind, but a deleted topic must be forgotten: sends to it fail at once instead of waiting out
// delivery.timeout.ms each. The cache trusts an absence only from an image at least as new as any
// it has seen (MetadataResponse.metadata_offset).
TEST(ProducerReview, SendsToADeletedTopicFailFastOnceTheProducerHasSeenItGone) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("gone", 1, 3), gannet::v1::NONE);
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = 1;
  cfg.linger_ms = 0;
  cfg.delivery_timeout_ms = 6'000;
  client::Producer p(cfg);
  ASSERT_EQ(p.send(record("gone", std::nullopt, "a")).get().error, gannet::v1::NONE);
  ASSERT_EQ(c.delete_topic("gone"), gannet::v1::NONE);
  for (int id : {1, 2, 3}) {
    ASSERT_TRUE(testing::wait_until([&] { return c.metadata({"gone"}, id).topics(0).error_code() != gannet::v1::NONE; }, 10s));
  }
  // The producer still has the topic cached: this one fails only after its retries.
  EXPECT_NE(p.send(record("gone", std::nullopt, "b")).get().error, gannet::v1::NONE);
  // It has been told the topic is unknown and refreshed its metadata since: this one should fail
  // without waiting out delivery.timeout.ms.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(p.send(record("gone", std::nullopt, "c")).get().error, gannet::v1::NONE);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "a send to a deleted topic waited out delivery.timeout.ms";
}

}  // namespace
}  // namespace gannet
