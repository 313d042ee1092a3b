// Log: one partition's log: a directory of segments plus its leader-epoch checkpoint
// (DESIGN.md, "Storage format"; files in FORMAT.md). Used for every topic partition and for the
// Raft metadata log.
//
// Offsets: [log_start_offset, log_end_offset) are readable. The recovery point (durable_offset)
// is the end of what has been fsynced; everything below it survives a crash.
//
// Locking: append_mu_ serializes writers (append, roll, truncate, retention, close). Reads take no
// writer lock: they copy the segment list snapshot and bound themselves by the published log end,
// and retry if a truncation raced with them (generation_). flush_mu_ guards the group commit:
// one thread runs fdatasync while later callers wait and share the next one. Lock order:
// flush_mu_ is never held while taking append_mu_ (flush takes them one after the other).
// Compaction (log_cleaner.h) reads segment snapshots and writes new files with no lock held;
// only swap_cleaned_segments takes append_mu_. clean_mu_ guards only the one-clean-at-a-time
// flag and is never held while taking another lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/file.h"
#include "storage/leader_epoch_cache.h"
#include "storage/log_config.h"
#include "storage/producer_state.h"
#include "storage/segment.h"

namespace gannet::storage {

struct AppendResult {
  int64_t base_offset = -1;  // first offset of the first batch
  int64_t last_offset = -1;  // last offset of the last batch
  int32_t batch_count = 0;
  int64_t record_count = 0;
  int64_t max_timestamp = -1;
  uint64_t bytes = 0;
  int64_t flush_to = -1;     // append(defer_flush=true): flush_to(this) is due; -1: nothing due
  // Every batch was a retry of one already in the log (idempotent producer): nothing was
  // written and the offsets above are the original batches'.
  bool duplicate = false;
};

// A byte range of a segment file holding whole batches.
struct FileSlice {
  std::shared_ptr<File> file;
  uint64_t position = 0;
  uint64_t size = 0;
};

struct ReadResult {
  std::vector<FileSlice> slices;  // whole batches, in offset order
  uint64_t bytes = 0;
  int64_t log_start_offset = 0;
  int64_t log_end_offset = 0;

  bool empty() const { return bytes == 0; }
  // Copies the slices' bytes into *out (appending). For callers that cannot send file ranges.
  Status copy_to(std::string* out) const;
  // Copies the slices' bytes to dst, which must hold `bytes` bytes.
  Status copy_to(uint8_t* dst) const;
};

struct ReadOptions {
  // Only batches whose last offset is below this are returned (a consumer's high watermark).
  int64_t max_offset = INT64_MAX;
  // Return the first batch even if it alone exceeds max_bytes, so a reader always progresses.
  bool min_one_batch = true;
};

struct TimestampOffset {
  int64_t timestamp;
  int64_t offset;
};

class Log {
 public:
  struct Options {
    FileSystem* fs = nullptr;
    Clock* clock = nullptr;
    LogConfig config;
    // The last checkpointed recovery point: segments holding it and later are re-validated (CRC
    // of every batch); earlier ones are trusted. nullopt re-validates every segment.
    std::optional<int64_t> recovery_point;
    // The previous shutdown was clean (all segments synced and indexes written): trust them all.
    bool clean_shutdown = false;
    // Called (under the log's append lock, so no append can come between) after a truncation
    // lowered durable_offset(), before the truncating call returns. Whoever checkpoints recovery points must persist the lower value
    // here: a stale, higher checkpoint would make the next recovery trust segments written after
    // the truncation that were never synced. An error takes the log offline.
    std::function<Status()> on_recovery_point_lowered;
    // A brand-new (empty) log skips syncing its directory at open; the first flush() does it
    // instead. For creating thousands of partitions at once: an empty log lost in a crash holds
    // nothing and is simply created again, and no data in it is durable before a flush.
    bool defer_new_dir_sync = false;
    // With defer_new_dir_sync: called once, just before that deferred directory sync (the owner
    // makes its own files in the directory durable along with it).
    std::function<Status()> before_new_dir_sync;
    // Keep idempotent producers' state (producer_state.h) and its snapshot files. Off for the
    // Raft metadata log, whose batches never carry a producer.
    bool track_producers = true;
  };

  // Opens (creating if needed) the log in `dir`, recovering as described in Options.
  static Result<std::unique_ptr<Log>> open(const std::string& dir, Options options);
  // No I/O: a Log dropped without close() behaves like a crashed process.
  ~Log();

  // Leader append: validates every batch in `batches` (CRC, magic, size <= max.message.bytes),
  // and each idempotent producer's batch against its state (producer_state.h: a retried batch
  // already in the log is not written again and the result carries its original offsets, with
  // `duplicate` set when every batch was one), then assigns offsets from the log end and stamps
  // `leader_epoch`, rewriting only those header fields in place, and writes them with one
  // write. Nothing is written if any batch is bad.
  // With flush.messages reached, the append is synced before it returns; with `defer_flush` it
  // is not, and AppendResult::flush_to names the offset the caller must flush_to() before it
  // acknowledges (so the caller can sync outside its own locks and share the fsync with
  // concurrent appenders).
  Result<AppendResult> append(std::span<uint8_t> batches, int32_t leader_epoch, bool defer_flush = false);
  // Follower append: keeps the batches' offsets and epochs; the first must start at or after
  // the log end (kInvalidOffset otherwise) and offsets must increase.
  Result<AppendResult> append_as_follower(std::span<uint8_t> batches);

  // Whole batches from the one holding `offset`, up to `max_bytes` (see ReadOptions), as file
  // ranges; no record is decoded. kOffsetOutOfRange outside [log start, log end].
  Result<ReadResult> read(int64_t offset, size_t max_bytes, const ReadOptions& options = {}) const;
  // The first record with timestamp >= `timestamp` (Kafka's ListOffsets by time).
  Result<std::optional<TimestampOffset>> offset_for_timestamp(int64_t timestamp) const;

  // Removes every batch whose last offset is >= `offset` (follower divergence).
  Status truncate_to(int64_t offset);
  // Deletes every segment and restarts the log, empty, at `offset`.
  Status truncate_fully_and_start_at(int64_t offset);
  // Deletes the segments that hold only offsets below `offset` (never the active one) and moves
  // the log start to the first one kept; returns how many went. For a log whose prefix another
  // copy covers (the quorum's, below its snapshot).
  Result<int> delete_segments_below(int64_t offset);

  // Makes everything appended so far durable; concurrent callers share one fdatasync.
  Status flush();
  // Makes offsets below `offset` durable.
  Status flush_to(int64_t offset);
  // Flushes if flush.ms has passed since the last flush and something is unflushed.
  Status flush_if_due();
  // Deletes whole old segments by retention.ms / retention.bytes, never past the high watermark
  // (or the log end when none is set) and never the active segment. Returns segments deleted.
  Result<int> enforce_retention();
  // Flushes, writes the active segment's indexes, syncs, and closes the log to writes (appends,
  // truncation and retention then fail with kLogOffline); reads still work. Idempotent.
  Status close();
  // Drops the state of producers idle for producer.id.expiration.ms; returns how many.
  size_t expire_producers();
  // A copy of the idempotent producers' state (tests, tools, the cleaner).
  ProducerStateTable producer_state() const;
  // The partition is being deleted: refuse every further write at once (no flush).
  void mark_deleted();
  // The owner of the recovery-point checkpoint goes away: stop calling it.
  void detach_recovery_point_listener();

  int64_t log_start_offset() const { return log_start_.load(std::memory_order_acquire); }
  int64_t log_end_offset() const { return log_end_.load(std::memory_order_acquire); }
  int64_t durable_offset() const;
  // Monotonic: max() with the current value. Bounds retention.
  void update_high_watermark(int64_t hw);
  int64_t high_watermark() const { return high_watermark_.load(std::memory_order_acquire); }
  bool offline() const { return offline_.load(std::memory_order_acquire); }
  LeaderEpochCache& epoch_cache() { return *epoch_cache_; }
  const std::string& dir() const { return dir_; }
  LogConfig config() const;
  void set_config(const LogConfig& config);
  size_t segment_count() const;
  uint64_t size_bytes() const;
  std::vector<int64_t> segment_base_offsets() const;
  FileSystem* fs() const { return fs_; }
  Clock* clock() const { return clock_; }

  // ---- Compaction hooks, for the log cleaner (log_cleaner.h) ----------------------------------
  using SegmentList = std::vector<std::shared_ptr<Segment>>;
  // The current segment list (oldest first; the last is the active segment). Immutable snapshot.
  std::shared_ptr<const SegmentList> segment_snapshot() const { return segments(); }
  // Everything below this offset was cleaned by an earlier pass (FORMAT.md,
  // "cleaner-offset-checkpoint"). Clamped to [log start, log end]. Only ever raised by a
  // completed swap, and lowered by truncations (re-appended data there is dirty again).
  int64_t first_dirty_offset() const;
  // Restores the value from the cleaner checkpoint at startup (a stale value costs a re-clean).
  void set_first_dirty_offset(int64_t offset);
  // At most one clean runs per log, and none once the log is closed or deleted. try_begin_clean
  // returns false if one cannot start now; end_clean must follow a true. close() and
  // mark_deleted() set clean_aborted() and wait for the running clean to end.
  bool try_begin_clean();
  void end_clean();
  bool clean_aborted() const { return clean_abort_.load(std::memory_order_acquire); }
  // A segment the cleaner read, and the end it read it to.
  struct CleanedSource {
    std::shared_ptr<Segment> segment;
    uint64_t end_position = 0;
  };
  // Replaces the log's first `sources.size()` segments by `cleaned` (segments written under
  // ".cleaned" names, synced, covering exactly the same offsets: the last one ends where the
  // last source ends) and raises first_dirty_offset() to `first_dirty`. Takes the append lock
  // only for the swap itself. Returns false, having removed the cleaned files, when the sources
  // are no longer the log's first segments as read, or any truncation or retention ran since
  // try_begin_clean (a truncated source may have regrown to the same end with other records),
  // or the log is closed; an I/O error takes the log offline. File protocol in
  // FORMAT.md ("Compaction").
  Result<bool> swap_cleaned_segments(const std::vector<CleanedSource>& sources,
                                     const SegmentList& cleaned, int64_t first_dirty);

 private:

  Log(std::string dir, Options options);
  Status recover();
  // Finishes a swap a crash interrupted (".swap" files) and drops unfinished cleaner output.
  Status recover_compaction_files();
  // Validates a leader append to a compacted log: every record needs a key.
  Status check_keys_for_compaction(std::span<const uint8_t> batches,
                                   const std::vector<BatchInfo>& infos) const;
  Status remove_segment_files(std::span<const int64_t> bases);
  // Validates a buffer of batches; fills infos with positions relative to the buffer.
  // `from_client`: a producer's batches (one record per offset; base offsets are ignored).
  Status parse_batches(std::span<uint8_t> batches, std::vector<BatchInfo>* infos,
                       size_t max_batch_bytes, bool from_client) const;
  Result<AppendResult> append_locked(std::span<uint8_t> batches, std::vector<BatchInfo>& infos,
                                     int32_t leader_epoch);
  Status check_writable_locked() const;
  Status maybe_roll_locked(size_t incoming, int64_t last_offset);
  Status roll_locked(int64_t base_offset);
  Status truncate_locked(int64_t offset);
  // Deletes list[0, drop) (the log's oldest segments), moves the log start past them.
  Result<int> drop_front_segments_locked(SegmentList list, size_t drop, const std::string& why);
  Status truncate_fully_locked(int64_t offset);
  Status notify_recovery_point_lowered_locked();
  // Producer state: rebuilt from the newest usable snapshot at or below the log end plus the
  // batches after it (snapshots above the log end are deleted first); written at `offset` (the
  // log end) keeping the two newest files.
  Status rebuild_producer_state_locked();
  Status write_producer_snapshot_locked();
  Result<ReadResult> read_once(int64_t offset, size_t max_bytes, const ReadOptions& options) const;
  void publish_segments_locked(SegmentList list);
  std::shared_ptr<const SegmentList> segments() const;
  Status fail(Error e);  // marks the log offline and returns e

  const std::string dir_;
  FileSystem* const fs_;
  Clock* const clock_;

  std::atomic<bool> dir_sync_pending_{false};  // see Options::defer_new_dir_sync
  std::function<Status()> before_new_dir_sync_;
  mutable std::mutex config_mu_;
  LogConfig config_;

  mutable std::mutex append_mu_;
  // Copy-on-write list, replaced under append_mu_; readers take a snapshot under segments_mu_.
  mutable std::mutex segments_mu_;
  std::shared_ptr<const SegmentList> segments_;
  SegmentList pending_sync_;  // rolled segments whose log or indexes are not yet synced
  int64_t unflushed_messages_ = 0;
  int64_t last_flush_ms_ = 0;  // monotonic

  std::function<Status()> on_recovery_point_lowered_;  // guarded by append_mu_
  bool closed_ = false;                                // guarded by append_mu_
  std::unique_ptr<LeaderEpochCache> epoch_cache_;
  std::atomic<int64_t> log_start_{0};
  std::atomic<int64_t> log_end_{0};
  std::atomic<int64_t> high_watermark_{-1};
  std::atomic<uint64_t> generation_{0};  // seqlock: odd while a truncation or deletion runs
  std::atomic<bool> offline_{false};
  const bool track_producers_;
  ProducerStateTable producers_;  // guarded by append_mu_

  mutable std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool flushing_ = false;
  int64_t recovery_point_ = 0;  // only increases, except when the log is truncated below it
  std::optional<int64_t> initial_recovery_point_;
  bool clean_shutdown_ = false;
  bool options_defer_new_dir_sync_ = false;

  // Compaction. first_dirty_ is only raised by a swap (max) and lowered by truncation (min).
  std::atomic<int64_t> first_dirty_{0};
  std::atomic<bool> clean_abort_{false};  // set once by close() / mark_deleted(); never cleared
  std::mutex clean_mu_;
  std::condition_variable clean_cv_;
  bool cleaning_ = false;  // guarded by clean_mu_
  // generation_ when the running clean began (written by try_begin_clean, read by the swap: both
  // on the cleaning thread).
  uint64_t clean_generation_ = 0;
  void abort_and_wait_for_clean();
};

}  // namespace gannet::storage
