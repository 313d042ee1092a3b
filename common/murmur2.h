// Kafka's default partitioner's hash (murmur2, 32-bit, seed 0x9747b28c) and its key -> partition
// rule, shared by the C++ producer (client/partitioner.h) and the broker, which partitions the
// records that gRPC clients send as messages: a key lands on the same partition from any client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gannet {

// Kafka's murmur2 over `data`.
int32_t murmur2(std::string_view data);
// Kafka's toPositive(murmur2(key)) % partitions.
int32_t partition_for_key(std::string_view key, int32_t partitions);

}  // namespace gannet
