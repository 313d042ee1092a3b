#include "client/partitioner.h"

#include <gtest/gtest.h>

#include <set>

namespace gannet::client {
namespace {

// Kafka's own murmur2 test vectors (a key must land on the same partition from any client).
TEST(Murmur2, MatchesKafka) {
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
}

TEST(DefaultPartitioner, KeysHashAndKeylessRecordsStickUntilABatchIsSent) {
  DefaultPartitioner p;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    EXPECT_EQ(p.partition("t", key, 12), partition_for_key(key, 12));
    EXPECT_GE(p.partition("t", key, 12), 0);
  }
  const int32_t first = p.partition("t", std::nullopt, 12);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p.partition("t", std::nullopt, 12), first);
  std::set<int32_t> seen{first};
  for (int i = 0; i < 200; ++i) {
    const int32_t cur = p.partition("t", std::nullopt, 12);
    p.on_new_batch("t", cur);
    seen.insert(p.partition("t", std::nullopt, 12));
  }
  EXPECT_GT(seen.size(), 6u) << "keyless records spread over the partitions batch by batch";
}

}  // namespace
}  // namespace gannet::client
