// LogConfig: the per-log settings, named and defaulted as Kafka's topic configs are.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "storage/error.h"

namespace gannet::storage {

struct LogConfig {
  static constexpr int64_t kNoLimit = -1;

  int64_t segment_bytes = 1LL << 30;                // segment.bytes: roll past this size
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;      // segment.ms: roll a segment this old
  int32_t index_interval_bytes = 4096;              // index.interval.bytes: sparse index spacing
  int64_t flush_messages = std::numeric_limits<int64_t>::max();  // flush.messages
  int64_t flush_ms = std::numeric_limits<int64_t>::max();        // flush.ms
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;    // retention.ms (-1: keep forever)
  int64_t retention_bytes = kNoLimit;               // retention.bytes (-1: no size limit)
  int32_t max_message_bytes = 1048588;              // max.message.bytes: largest batch accepted
  // segment.preallocate.bytes (Gannet's): reserve disk blocks for the active segment this far
  // ahead (fallocate, size unchanged); freed at roll and close. 0 disables.
  int64_t segment_preallocate_bytes = 16LL << 20;
  // cleanup.policy: "delete" (the default), "compact", or both ("compact,delete" in either
  // order). `delete` lets retention.ms / retention.bytes remove old segments; `compact` lets the
  // log cleaner (log_cleaner.h) keep only the latest record of each key. At least one is set.
  bool cleanup_delete = true;
  bool cleanup_compact = false;
  // delete.retention.ms: how long a tombstone (null value) stays in the cleaned part of a
  // compacted log before the cleaner may drop it, so consumers reading from the start see it.
  int64_t delete_retention_ms = 24LL * 3600 * 1000;
  // min.compaction.lag.ms: a record stays uncompacted at least this long after it was written
  // (segments whose newest timestamp is younger are not cleaned).
  int64_t min_compaction_lag_ms = 0;
  // min.cleanable.dirty.ratio: the cleaner picks a log once dirty bytes / cleanable bytes reach
  // this, in [0, 1].
  double min_cleanable_dirty_ratio = 0.5;
  // Broker-wide only (no topic key): producer.id.expiration.ms, how long an idle idempotent
  // producer's state is kept; producer.state.max.producers.per.partition (Gannet's), the most
  // producers one partition tracks, the least recently active evicted first.
  int64_t producer_id_expiration_ms = 24LL * 3600 * 1000;
  int32_t max_producers_per_partition = 10'000;

  bool operator==(const LogConfig&) const = default;

  // cleanup.policy as Kafka spells it: "delete", "compact" or "compact,delete".
  std::string cleanup_policy() const;

  // Checks every value's range; kInvalidConfig names the offending key.
  Status validate() const;

  // Starts from `base` and applies the keys above found in `props`; unknown keys are ignored
  // (they belong to other layers); a malformed or out-of-range value is kInvalidConfig.
  static Result<LogConfig> from_properties(const std::map<std::string, std::string>& props,
                                           const LogConfig& base);
};

}  // namespace gannet::storage
