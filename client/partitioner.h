// Partitioners: which partition a record goes to (DESIGN.md, "Write path" 1). The explicit
// partition if given; else murmur2 of the key modulo the partition count, exactly as Kafka's
// default partitioner, so a key lands on the same partition from any Kafka client; else a sticky
// partition per topic that moves on when a batch of that topic is sent.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "common/murmur2.h"

namespace gannet::client {

using gannet::murmur2;            // common/murmur2.h
using gannet::partition_for_key;

class Partitioner {
 public:
  virtual ~Partitioner() = default;
  // The partition of a record of `topic` with `key` (nullopt: none) over `partitions` partitions.
  virtual int32_t partition(const std::string& topic, const std::optional<std::string>& key, int32_t partitions) = 0;
  // A batch of `topic` was sent (sticky partitioners move on).
  virtual void on_new_batch(const std::string& topic, int32_t previous) {}
};

class DefaultPartitioner : public Partitioner {
 public:
  int32_t partition(const std::string& topic, const std::optional<std::string>& key, int32_t partitions) override;
  void on_new_batch(const std::string& topic, int32_t previous) override;

 private:
  std::mutex mu_;
  std::map<std::string, int32_t> sticky_;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace gannet::client
