// The records the group coordinator keeps in `__consumer_offsets` (DESIGN.md, "Consumer groups").
// The topic is compacted, so every record's key names what it is the latest word on:
//
//   offset commit    key:   int16 version (1), string group, string topic, int32 partition
//                    value: int16 version (3), int64 offset, int32 leader epoch, string metadata,
//                           int64 commit timestamp (ms)
//   group metadata   key:   int16 version (2), string group
//                    value: int16 version (0x4700, Gannet's), then a GroupMetadataValue protobuf
//
// A null value (a tombstone) deletes the key: an expired or deleted offset, a deleted group.
// Strings are an int16 length then the bytes; integers big-endian. The keys and the offset value
// are Kafka's own layouts (offset commit key v1, value v3; group metadata key v2), so Kafka's
// tools could read the offsets of this topic; the group metadata value is Gannet's own (its
// version number is outside Kafka's range, so neither side mistakes the other's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "proto/group.pb.h"

namespace gannet::broker {

struct OffsetKey {
  std::string group;
  std::string topic;
  int32_t partition = 0;
};

struct GroupKey {
  std::string group;
};

struct OffsetValue {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string metadata;
  int64_t commit_timestamp_ms = 0;
};

inline constexpr int16_t kOffsetKeyVersion = 1;
inline constexpr int16_t kGroupKeyVersion = 2;
inline constexpr int16_t kOffsetValueVersion = 3;
inline constexpr int16_t kGroupValueVersion = 0x4700;

std::string encode_offset_key(const OffsetKey& k);
std::string encode_group_key(const GroupKey& k);
std::string encode_offset_value(const OffsetValue& v);
std::string encode_group_value(const broker::v1::GroupMetadataValue& v);

// nullopt for a key of an unknown version or a malformed one (the loader skips such records,
// logging them: a newer broker's record types must not stop an older one from loading).
std::optional<std::variant<OffsetKey, GroupKey>> decode_key(std::string_view key);
// Offset values of versions 0 to 3 (Kafka's) are read.
std::optional<OffsetValue> decode_offset_value(std::string_view value);
std::optional<broker::v1::GroupMetadataValue> decode_group_value(std::string_view value);

}  // namespace gannet::broker
