// MetadataCache: what a client knows of the cluster (brokers, topics, partition leaders and
// epochs), from the brokers' Metadata answers; refreshed on demand, e.g. after a
// NOT_LEADER_OR_FOLLOWER. One gRPC channel per broker address, shared by everyone.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proto/broker.grpc.pb.h"

namespace gannet::client {

namespace bv1 = gannet::broker::v1;

struct PartitionInfo {
  int32_t leader = -1;
  int32_t leader_epoch = -1;
};

class MetadataCache {
 public:
  explicit MetadataCache(std::vector<std::string> bootstrap);

  // Refreshes from the first broker that answers; false if none did.
  bool refresh(const std::vector<std::string>& topics = {});
  // The partitions of `topic` (refreshing once if unknown); empty if the topic does not exist.
  std::vector<PartitionInfo> partitions(const std::string& topic);
  int32_t partition_count(const std::string& topic);
  // The leader of a partition (-1: unknown), without copying the topic's partitions.
  int32_t leader(const std::string& topic, int32_t partition);
  // The stub of broker `id` (nullptr if unknown).
  bv1::Broker::Stub* broker(int32_t id);
  // A stub for any broker known or given at bootstrap (for requests any broker answers), the
  // i-th of them modulo their count.
  bv1::Broker::Stub* any_broker(size_t i = 0);
  // Every topic in the cluster, from a full refresh (empty if no broker answered).
  std::vector<std::string> list_topics();
  int64_t refreshes() const;

 private:
  bv1::Broker::Stub* stub_for(const std::string& address);

  const std::vector<std::string> bootstrap_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<bv1::Broker::Stub>> stubs_;  // by address
  std::map<int32_t, std::string> brokers_;                           // id -> address
  std::map<std::string, std::vector<PartitionInfo>> topics_;
  std::vector<std::string> all_topics_;  // from the last full refresh
  int64_t newest_offset_ = -1;           // the newest metadata image any answer came from
  int64_t refreshes_ = 0;
};

}  // namespace gannet::client
