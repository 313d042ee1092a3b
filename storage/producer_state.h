// ProducerStateTable: one partition log's idempotent-producer state (KIP-98): for each producer
// id, its epoch and the sequence ranges and offsets of its last five batches, so the leader can
// answer a retried batch with its original offsets instead of writing it twice, and refuse a batch
// that leaves a gap or comes from an older epoch.
//
// The rules a leader applies to a producer's batch (check()):
//   - no producer id (-1): not idempotent, appended as is;
//   - a transactional or control batch: refused (INVALID_TXN_STATE) until transactions exist;
//   - an epoch below the producer's: INVALID_PRODUCER_EPOCH;
//   - the same epoch and the same sequence range as one of its last five batches: a duplicate,
//     answered with that batch's offsets and not written;
//   - the same epoch: the first sequence must follow its last one (wrapping after INT32_MAX),
//     else OUT_OF_ORDER_SEQUENCE_NUMBER;
//   - a higher epoch (the producer bumped it, KIP-360): the first sequence must be 0;
//   - a producer this partition has no state for (new, or its state expired): any sequence is
//     accepted, as Kafka does since KIP-360, so a producer whose state expired goes on.
// Followers and recovery apply batches without checks (the leader checked them): update().
//
// The table is rebuilt from the log (Log does it: from the newest snapshot at or below the log
// end, then the batches after it), written as a snapshot file at every segment roll and at a
// clean close (FORMAT.md, "Producer snapshots"), cut back on truncation by reloading from a
// snapshot below the cut. Bounded: producers idle for producer.id.expiration.ms are dropped
// (expire()), and at most `max_producers` are kept, the least recently active evicted first.
//
// Not thread-safe: the Log guards it with its append lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/error.h"
#include "storage/segment.h"

namespace gannet::storage {

// One appended batch of a producer: its sequence range and offsets.
struct ProducerBatch {
  int32_t first_seq = 0;
  int32_t last_seq = 0;
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  bool operator==(const ProducerBatch&) const = default;
};

struct ProducerEntry {
  static constexpr size_t kMaxBatches = 5;  // Kafka's: the most a producer has in flight
  int16_t epoch = -1;
  int64_t last_active_ms = 0;         // wall clock of its last append (expiry)
  std::vector<ProducerBatch> batches;  // oldest first, at most kMaxBatches
  bool operator==(const ProducerEntry&) const = default;
};

// The sequence of the last record of a batch starting at `first` with `last_offset_delta`:
// sequences wrap from INT32_MAX to 0.
int32_t last_sequence(int32_t first, int32_t last_offset_delta);

// The producer fields of one batch, with the offsets it was (or will be) written at.
struct ProducerBatchInfo {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t last_offset_delta = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  bool transactional = false;
  bool control = false;

  static ProducerBatchInfo of(const BatchInfo& b);
};

class ProducerStateTable {
 public:
  explicit ProducerStateTable(size_t max_producers = 10'000) : max_producers_(max_producers) {}

  // The verdict on a leader's batch, given the batches of the same request before it (held in
  // `pending`, keyed by producer id, which check() fills: commit() applies them once the write
  // succeeded). nullopt: append it; a ProducerBatch: a duplicate of that earlier batch.
  using Pending = std::map<int64_t, ProducerEntry>;
  Result<std::optional<ProducerBatch>> check(const ProducerBatchInfo& b, int64_t now_ms, Pending* pending) const;
  void commit(Pending&& pending);

  // Applies a batch without checks (follower append, recovery replay).
  void update(const ProducerBatchInfo& b, int64_t now_ms);

  // Drops producers idle for at least `expiration_ms`; returns how many.
  size_t expire(int64_t now_ms, int64_t expiration_ms);
  void clear() { entries_.clear(); }
  void set_max_producers(size_t n);

  const ProducerEntry* find(int64_t producer_id) const;
  size_t size() const { return entries_.size(); }
  const std::unordered_map<int64_t, ProducerEntry>& entries() const { return entries_; }
  bool operator==(const ProducerStateTable& o) const { return entries_ == o.entries_; }

  // Snapshot file contents (FORMAT.md): the state as of `offset` (every batch below it applied).
  std::string encode_snapshot(int64_t offset) const;
  // Replaces the state with a snapshot's; returns its offset. kCorruptMessage on a bad file.
  Result<int64_t> load_snapshot(const std::string& bytes);

  // "<20-digit offset>.snapshot"; parse returns the offset of such a name.
  static std::string snapshot_name(int64_t offset);
  static std::optional<int64_t> parse_snapshot_name(const std::string& name);

 private:
  void apply(ProducerEntry& e, const ProducerBatchInfo& b, int64_t now_ms) const;
  void evict_if_full();

  size_t max_producers_;
  std::unordered_map<int64_t, ProducerEntry> entries_;
};

}  // namespace gannet::storage
