// The "consumer" embedded protocol of a consumer group: the bytes a member sends as its metadata
// in JoinGroup (its Subscription) and the bytes the leader hands each member in SyncGroup (its
// MemberAssignment). The coordinator never looks inside them; only clients encode and decode.
// The layout is Kafka's own (ConsumerProtocolSubscription / ConsumerProtocolAssignment), so a
// Kafka client joining the same group through a Kafka-protocol listener reads what we write and
// we read what it writes.
//
// Format (all integers big-endian; a message is its int16 version then its fields):
//
//   Subscription:
//     version          int16
//     topics           int32 count, then count x string
//     user_data        nullable bytes
//     owned_partitions int32 count, then count x {topic: string, partitions: int32 count x int32}
//                                                                                   (v1+)
//     generation_id    int32                                                        (v2+)
//     rack_id          nullable string                                              (v3+)
//   Assignment (versions 0..3 share one layout; versions 1..3 only mark what the sender supports):
//     version          int16
//     partitions       int32 count, then count x {topic: string, partitions: int32 count x int32}
//     user_data        nullable bytes
//
//   string:          int16 length (>= 0), then that many bytes
//   nullable string: int16 length, -1 for null
//   nullable bytes:  int32 length, -1 for null
//
// Newer versions may only append fields (Kafka's rule for this protocol), so a message of a
// version above the highest we know is read as that highest version and the rest is ignored.
// A message of a version we know must end exactly where its last field does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/topic_partition.h"

namespace gannet::client {

inline constexpr int16_t kSubscriptionMaxVersion = 3;
inline constexpr int16_t kAssignmentMaxVersion = 3;

struct Subscription {
  std::vector<std::string> topics;
  std::optional<std::string> user_data;
  std::vector<TopicPartition> owned_partitions;  // v1+
  int32_t generation_id = -1;                    // v2+; -1: unknown
  std::optional<std::string> rack_id;            // v3+
  bool operator==(const Subscription&) const = default;
};

struct MemberAssignment {
  std::vector<TopicPartition> partitions;
  std::optional<std::string> user_data;
  bool operator==(const MemberAssignment&) const = default;
};

// Encodes at `version` (versions above the highest known are written as the highest: we cannot
// write fields we do not know). Fields the version lacks are left out. Partition lists are
// grouped by topic in order of each topic's first appearance, keeping the given order within a
// topic, so a decode returns them in that grouped order.
// Preconditions (caller bugs, checked and fatal): version >= 0; every topic and the rack id at
// most 32767 bytes (Kafka's own limit on topic names is 249); every partition id >= 0.
std::string encode_subscription(const Subscription& subscription, int16_t version = kSubscriptionMaxVersion);
// Kafka clients (3.5+) write the assignment at the highest version, which is also the version
// their subscription carries; any version decodes the same.
std::string encode_assignment(const MemberAssignment& assignment, int16_t version = kAssignmentMaxVersion);

// Decode bytes from any member, as untrusted input: nullopt for anything malformed (truncated,
// negative or oversized lengths and counts, a null where the schema allows none, a negative
// version or partition id, trailing bytes after a known version). Never reads out of bounds.
// Fields the message's version lacks keep their defaults.
std::optional<Subscription> decode_subscription(std::string_view bytes);
std::optional<MemberAssignment> decode_assignment(std::string_view bytes);

}  // namespace gannet::client
