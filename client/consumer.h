// Consumer with manual assignment (groups come with issue 6): assign partitions, seek, poll.
// A poll sends one Fetch per leader broker for all its assigned partitions (long-polling up to
// fetch.max.wait.ms), decodes the batches and returns the records from each partition's
// position on; positions without an offset are reset by auto.offset.reset (earliest, latest
// or none).
#pragma once

#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/metadata_cache.h"
#include "proto/errors.pb.h"

namespace gannet::client {

struct ConsumerConfig {
  std::vector<std::string> bootstrap_servers;
  std::string auto_offset_reset = "latest";  // earliest | latest | none
  int32_t fetch_max_wait_ms = 500;
  int32_t fetch_min_bytes = 1;
  int32_t max_partition_fetch_bytes = 1 << 20;
  int32_t fetch_max_bytes = 50 << 20;
};

struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

class Consumer {
 public:
  explicit Consumer(ConsumerConfig config);

  void assign(const std::vector<TopicPartition>& partitions);
  void seek(const TopicPartition& tp, int64_t offset);
  void seek_to_beginning(const TopicPartition& tp);  // -2: resolved at the next poll
  void seek_to_end(const TopicPartition& tp);        // -1
  // The next offset to read; nullopt until known.
  std::optional<int64_t> position(const TopicPartition& tp) const;
  // Records from every assigned partition, waiting up to timeout_ms for some. An error (e.g.
  // OFFSET_OUT_OF_RANGE with auto.offset.reset=none) is returned in *error.
  std::vector<ConsumerRecord> poll(int64_t timeout_ms, gannet::v1::ErrorCode* error = nullptr);
  // The last high watermark seen per partition (for lag).
  std::optional<int64_t> high_watermark(const TopicPartition& tp) const;
  uint64_t bytes_fetched() const { return bytes_; }

 private:
  bool reset_offsets(std::vector<TopicPartition>* failed);

  struct FetchCall {
    bv1::FetchResponse resp;
    bool ok = false;
  };
  using Wanted = std::vector<std::pair<TopicPartition, int64_t>>;  // partition, fetch offset
  std::future<FetchCall> launch(bv1::Broker::Stub* stub, const Wanted& wanted, int64_t wait_ms, int64_t slack_ms);
  struct Prefetch {
    Wanted wanted;
    std::future<FetchCall> call;
  };

  const ConsumerConfig config_;
  MetadataCache metadata_;
  std::map<TopicPartition, int64_t> positions_;  // -1: latest, -2: earliest (to resolve)
  std::map<TopicPartition, int64_t> hws_;
  uint64_t bytes_ = 0;
  // The next fetch of each leader, sent while the previous answer is decoded (used if the
  // positions still match when the next poll comes). Declared last: destroyed first, waiting
  // for calls in flight before the stubs they use go away.
  std::map<int32_t, Prefetch> prefetch_;
};

}  // namespace gannet::client
