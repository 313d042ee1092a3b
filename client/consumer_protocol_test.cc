#include "client/consumer_protocol.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>

namespace gannet::client {
namespace {

// Bytes written out by hand from Kafka's ConsumerProtocolSubscription / Assignment schemas.
std::string bytes(std::initializer_list<int> v) {
  std::string out;
  for (int b : v) out.push_back(static_cast<char>(b));
  return out;
}

uint64_t test_seed() {
  if (const char* env = std::getenv("GANNET_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

TEST(ConsumerProtocol, SubscriptionV0MatchesTheSchemaByHand) {
  const std::string wire = bytes({
      0x00, 0x00,                    // version 0
      0x00, 0x00, 0x00, 0x02,        // 2 topics
      0x00, 0x02, 't', '0',          // "t0"
      0x00, 0x02, 't', '1',          // "t1"
      0xff, 0xff, 0xff, 0xff,        // user_data: null
  });
  Subscription s;
  s.topics = {"t0", "t1"};
  EXPECT_EQ(encode_subscription(s, 0), wire);
  auto d = decode_subscription(wire);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, s);
}

TEST(ConsumerProtocol, SubscriptionV3MatchesTheSchemaByHand) {
  const std::string wire = bytes({
      0x00, 0x03,                    // version 3
      0x00, 0x00, 0x00, 0x01,        // 1 topic
      0x00, 0x03, 'f', 'o', 'o',     // "foo"
      0x00, 0x00, 0x00, 0x02,        // user_data: 2 bytes
      'a', 'b',
      0x00, 0x00, 0x00, 0x01,        // owned_partitions: 1 topic
      0x00, 0x03, 'f', 'o', 'o',     //   "foo"
      0x00, 0x00, 0x00, 0x02,        //   2 partitions
      0x00, 0x00, 0x00, 0x00,        //   0
      0x00, 0x00, 0x01, 0x02,        //   258
      0x00, 0x00, 0x00, 0x07,        // generation_id 7
      0x00, 0x02, 'r', '1',          // rack_id "r1"
  });
  Subscription s;
  s.topics = {"foo"};
  s.user_data = "ab";
  s.owned_partitions = {{"foo", 0}, {"foo", 258}};
  s.generation_id = 7;
  s.rack_id = "r1";
  EXPECT_EQ(encode_subscription(s), wire) << "v3 is the default";
  auto d = decode_subscription(wire);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, s);
}

TEST(ConsumerProtocol, AssignmentMatchesTheSchemaByHand) {
  const std::string wire = bytes({
      0x00, 0x00,                    // version 0
      0x00, 0x00, 0x00, 0x02,        // 2 topics
      0x00, 0x02, 't', '0',          //   "t0"
      0x00, 0x00, 0x00, 0x02,        //   2 partitions
      0x00, 0x00, 0x00, 0x00,        //   0
      0x00, 0x00, 0x00, 0x02,        //   2
      0x00, 0x02, 't', '1',          //   "t1"
      0x00, 0x00, 0x00, 0x01,        //   1 partition
      0x00, 0x00, 0x00, 0x01,        //   1
      0xff, 0xff, 0xff, 0xff,        // user_data: null
  });
  MemberAssignment a;
  a.partitions = {{"t0", 0}, {"t0", 2}, {"t1", 1}};
  EXPECT_EQ(encode_assignment(a, 0), wire);
  auto d = decode_assignment(wire);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, a);
  // Versions 1..3 differ only in the version field.
  std::string v3 = wire;
  v3[1] = 3;
  EXPECT_EQ(encode_assignment(a), v3) << "v3 is the default, as Kafka 3.5+ writes";
  EXPECT_EQ(decode_assignment(v3), a);
}

Subscription full_subscription() {
  Subscription s;
  s.topics = {"orders", "payments", ""};
  s.user_data = std::string("\0\x01\xff", 3);
  s.owned_partitions = {{"orders", 3}, {"orders", 1}, {"payments", 0}};
  s.generation_id = 42;
  s.rack_id = "rack-a";
  return s;
}

TEST(ConsumerProtocol, SubscriptionRoundTripsAtEveryVersionWithTheFieldsItHas) {
  const Subscription full = full_subscription();
  for (int16_t v = 0; v <= kSubscriptionMaxVersion; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    Subscription want = full;
    if (v < 1) want.owned_partitions.clear();
    if (v < 2) want.generation_id = -1;
    if (v < 3) want.rack_id.reset();
    auto d = decode_subscription(encode_subscription(full, v));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, want);
  }
  // Empty and null user data and rack stay distinct.
  Subscription empty;
  empty.user_data = "";
  empty.rack_id = "";
  EXPECT_EQ(decode_subscription(encode_subscription(empty)), empty);
  EXPECT_EQ(decode_subscription(encode_subscription(Subscription{})), Subscription{});
}

TEST(ConsumerProtocol, AssignmentRoundTripsAtEveryVersion) {
  MemberAssignment a;
  a.partitions = {{"a", 0}, {"a", 7}, {"b", 2147483647}};
  a.user_data = "ud";
  for (int16_t v = 0; v <= kAssignmentMaxVersion; ++v) EXPECT_EQ(decode_assignment(encode_assignment(a, v)), a);
  EXPECT_EQ(decode_assignment(encode_assignment(MemberAssignment{})), MemberAssignment{});
}

TEST(ConsumerProtocol, PartitionsAreGroupedByTopicInFirstAppearanceOrder) {
  MemberAssignment a;
  a.partitions = {{"b", 1}, {"a", 0}, {"b", 0}};
  auto d = decode_assignment(encode_assignment(a));
  ASSERT_TRUE(d);
  const std::vector<TopicPartition> want = {{"b", 1}, {"b", 0}, {"a", 0}};
  EXPECT_EQ(d->partitions, want);
}

TEST(ConsumerProtocol, NewerVersionsAreReadAsTheHighestKnownIgnoringAppendedFields) {
  const Subscription s = full_subscription();
  std::string v9 = encode_subscription(s) + "future fields";
  v9[1] = 9;
  EXPECT_EQ(decode_subscription(v9), s);
  std::string a9 = encode_assignment(MemberAssignment{{{"t", 1}}, "x"}) + "more";
  a9[1] = 9;
  EXPECT_EQ(decode_assignment(a9), (MemberAssignment{{{"t", 1}}, "x"}));
  // Asked to write a version we do not know, we write the highest we do.
  EXPECT_EQ(encode_subscription(s, 9), encode_subscription(s, kSubscriptionMaxVersion));
}

TEST(ConsumerProtocol, MalformedInputsAreRejected) {
  const std::string v0 = encode_subscription(Subscription{{"t"}, std::nullopt, {}, -1, std::nullopt}, 0);
  EXPECT_FALSE(decode_subscription(""));
  EXPECT_FALSE(decode_subscription(bytes({0x00})));
  EXPECT_FALSE(decode_subscription(bytes({0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}))) << "negative version";
  EXPECT_FALSE(decode_subscription(v0 + "x")) << "trailing bytes after a known version";
  EXPECT_FALSE(decode_subscription(bytes({0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))) << "null topics array";
  EXPECT_FALSE(decode_subscription(bytes({0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 'a'}))) << "a count beyond the bytes";
  EXPECT_FALSE(decode_subscription(bytes({0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))) << "null topic";
  EXPECT_FALSE(decode_subscription(bytes({0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe}))) << "user_data length -2";
  EXPECT_FALSE(decode_subscription(bytes({0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}))) << "user_data past the end";
  EXPECT_FALSE(decode_subscription(bytes({0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xfe})))
      << "rack_id length -2";
  EXPECT_FALSE(decode_assignment(bytes({0, 0, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff})))
      << "negative partition id";
  EXPECT_FALSE(decode_assignment(bytes({0, 0, 0, 0, 0, 0})));
  EXPECT_TRUE(decode_assignment(bytes({0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})));
}

TEST(ConsumerProtocol, EveryTruncationOfAValidMessageIsRejected) {
  const Subscription s = full_subscription();
  for (int16_t v = 0; v <= kSubscriptionMaxVersion; ++v) {
    const std::string wire = encode_subscription(s, v);
    for (size_t n = 0; n < wire.size(); ++n) {
      EXPECT_FALSE(decode_subscription(std::string_view(wire).substr(0, n))) << "v" << v << " cut at " << n;
    }
  }
  const std::string wire = encode_assignment(MemberAssignment{{{"t", 1}, {"u", 2}}, "data"});
  for (size_t n = 0; n < wire.size(); ++n) EXPECT_FALSE(decode_assignment(std::string_view(wire).substr(0, n)));
}

// Random bytes, and valid messages with bytes flipped, cut or inserted: decoding never crashes
// or reads out of bounds (the decoder reads from a string_view of exactly these bytes, so a
// sanitizer build would catch a stray read), and whatever does decode re-encodes to a message
// that decodes to the same value.
TEST(ConsumerProtocol, FuzzedInputNeverCrashesAndWhatDecodesIsConsistent) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  std::vector<std::string> valid;
  for (int16_t v = 0; v <= kSubscriptionMaxVersion; ++v) valid.push_back(encode_subscription(full_subscription(), v));
  valid.push_back(encode_assignment(MemberAssignment{{{"t", 1}, {"u", 2}}, "data"}));
  valid.push_back(encode_assignment(MemberAssignment{}));
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string in;
    switch (rng() % 4) {
      case 0: {  // random bytes, biased towards small values so counts and lengths are plausible
        const size_t n = rng() % 48;
        for (size_t j = 0; j < n; ++j) in.push_back(static_cast<char>(rng() % 3 == 0 ? rng() : rng() % 4));
        break;
      }
      case 1:  // a flipped byte
        in = valid[rng() % valid.size()];
        in[rng() % in.size()] = static_cast<char>(rng());
        break;
      case 2:  // cut short
        in = valid[rng() % valid.size()];
        in.resize(rng() % in.size());
        break;
      default:  // a byte inserted
        in = valid[rng() % valid.size()];
        in.insert(in.begin() + static_cast<long>(rng() % (in.size() + 1)), static_cast<char>(rng()));
        break;
    }
    // Re-encoding may regroup partitions listed under a topic twice, so the check is that the
    // re-encoding is a fixed point.
    if (auto s = decode_subscription(in)) {
      ++decoded;
      const std::string again = encode_subscription(*s);
      auto s2 = decode_subscription(again);
      ASSERT_TRUE(s2);
      EXPECT_EQ(encode_subscription(*s2), again);
    }
    if (auto a = decode_assignment(in)) {
      ++decoded;
      const std::string again = encode_assignment(*a);
      auto a2 = decode_assignment(again);
      ASSERT_TRUE(a2);
      EXPECT_EQ(encode_assignment(*a2), again);
    }
  }
  std::cout << decoded << " of 40000 decodes accepted\n";
}

}  // namespace
}  // namespace gannet::client
