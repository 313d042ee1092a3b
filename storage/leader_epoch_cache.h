// LeaderEpochCache: for each leader epoch that wrote to the log, the first offset it wrote.
// Followers use it (through end_offset_for) to find where their log diverges from the leader's.
// Persisted in the partition directory as `leader-epoch-checkpoint` (FORMAT.md), rewritten
// atomically on every change; changes are rare (one per leadership change).
//
// Invariants: epochs and start offsets strictly increase along entries_; after the owning log
// recovers, no entry starts at or beyond its end offset.
// Thread safety: a mutex guards entries_; writes come from the log's appender.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/file.h"

namespace gannet::storage {

struct EpochEntry {
  int32_t epoch;
  int64_t start_offset;
  bool operator==(const EpochEntry&) const = default;
};

class LeaderEpochCache {
 public:
  static constexpr const char* kFileName = "leader-epoch-checkpoint";

  // Loads `dir`/leader-epoch-checkpoint; a missing file is an empty cache, a malformed one is
  // kCorruptMessage.
  static Result<std::unique_ptr<LeaderEpochCache>> load(FileSystem* fs, const std::string& dir);

  // Records that `epoch` starts at `start_offset` if epoch is newer than the latest; persists,
  // unless `persist` is false: then the change is only in memory until persist_if_dirty() (which
  // the log calls before it writes any batch, so an epoch is durable before its first batch) or
  // the next change that persists. A leader taking a new epoch assigns it that way: the entry
  // says where its epoch starts and matters only once the epoch has batches, so taking N
  // leaderships costs no fsync (it cost two per partition, one after the other).
  Status assign(int32_t epoch, int64_t start_offset, bool persist = true);
  // Removes entries starting at or after `end_offset` (log truncated to end_offset). Without
  // `persist`, as assign: on reload the log trims the cache to its end anyway.
  Status truncate_from_end(int64_t end_offset, bool persist = true);
  // Writes the checkpoint if a change was kept in memory only.
  Status persist_if_dirty();
  // Log start moved to `start_offset`: older entries go, the one covering it is clamped.
  Status truncate_from_start(int64_t start_offset);
  Status clear();

  std::optional<EpochEntry> latest() const;
  // Kafka's OffsetsForLeaderEpoch: the largest epoch <= `epoch` and the offset where it ended
  // (the next entry's start, or `log_end_offset` for the latest). nullopt if no epoch <= `epoch`.
  std::optional<EpochEntry> end_offset_for(int32_t epoch, int64_t log_end_offset) const;
  // The epoch that wrote `offset`, if known.
  std::optional<int32_t> epoch_for_offset(int64_t offset) const;
  std::vector<EpochEntry> entries() const;

 private:
  LeaderEpochCache(FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  Status persist_locked();

  FileSystem* const fs_;
  const std::string dir_;
  mutable std::mutex mu_;
  std::vector<EpochEntry> entries_;
  bool dirty_ = false;  // entries_ differs from the checkpoint on disk
};

}  // namespace gannet::storage
