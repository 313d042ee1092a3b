// One partition of one topic: the unit the consumer assigns, seeks and commits. Its own header so
// that the pure group code (assignors, the consumer protocol encoding) does not pull in the
// consumer and its gRPC dependencies.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace gannet::client {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  // Ordered by topic, then partition: the order assignments are listed and encoded in.
  auto operator<=>(const TopicPartition&) const = default;
};

}  // namespace gannet::client
