// Segment: one `.log` file of whole batches with its `.index` and `.timeindex`, covering offsets
// [base_offset, next_offset). Files are named by the 20-digit base offset (FORMAT.md).
//
// Invariants: batches in the file are contiguous, offsets strictly increase, and every byte below
// end_position() belongs to a complete batch that was written in full. end_position() and
// next_offset() only move forward except through truncate_to().
//
// Thread safety: append/truncate/recover/write_indexes are called by the owning Log's appender
// only (under its lock). Readers may call any const method concurrently; they see the segment up
// to the end_position() they load (acquire), which the appender publishes after the bytes and
// index entries are in place.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "storage/file.h"
#include "storage/record_batch.h"
#include "storage/segment_index.h"

namespace gannet::storage {

// What a scan learns of one batch without decoding its records.
struct BatchInfo {
  uint64_t position = 0;
  uint32_t size = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int64_t max_timestamp = 0;
  int32_t leader_epoch = 0;
  int32_t record_count = 0;
  // The idempotent producer's fields (producer_state.h).
  int64_t producer_id = -1;
  int32_t base_sequence = -1;
  int16_t producer_epoch = -1;
  int16_t attributes = 0;

  // What a batch's header says, for a batch of `size` bytes at `position`.
  static BatchInfo of(const RecordBatchView& v, uint64_t position, size_t size) {
    BatchInfo b;
    b.position = position;
    b.size = static_cast<uint32_t>(size);
    b.base_offset = v.base_offset();
    b.last_offset = v.last_offset();
    b.max_timestamp = v.max_timestamp();
    b.leader_epoch = v.leader_epoch();
    b.record_count = v.record_count();
    b.producer_id = v.producer_id();
    b.base_sequence = v.base_sequence();
    b.producer_epoch = v.producer_epoch();
    b.attributes = v.attributes();
    return b;
  }
};

class Segment {
 public:
  // "00000000000000368796" + suffix (".log", ".index", ".timeindex").
  static std::string file_name(int64_t base_offset, const char* suffix);
  // Parses a `.log` name back to its base offset.
  static std::optional<int64_t> parse_log_name(const std::string& name);

  // Creates an empty segment (the .log file; index files are written on roll or close).
  // `name_suffix` is appended to each of the segment's file names: the log cleaner writes
  // "<base>.log.cleaned" and renames it on (FORMAT.md, "Compaction"); "" for a live segment.
  static Result<std::shared_ptr<Segment>> create(FileSystem* fs, const std::string& dir,
                                                 int64_t base_offset,
                                                 const std::string& name_suffix = "");

  // Opens an existing segment. With `recover`, every batch is read and its CRC checked; the file
  // is truncated at the first torn or invalid batch and the indexes are rebuilt. Without, the
  // index files are loaded and, if missing or inconsistent, rebuilt from the batch headers.
  // `truncated_bytes` (may be null) receives the bytes cut off by recovery.
  static Result<std::shared_ptr<Segment>> open(FileSystem* fs, const std::string& dir,
                                               int64_t base_offset, bool recover,
                                               int32_t index_interval_bytes,
                                               uint64_t* truncated_bytes,
                                               const std::string& name_suffix = "");

  int64_t base_offset() const { return base_offset_; }
  int64_t next_offset() const { return next_offset_.load(std::memory_order_acquire); }
  uint64_t end_position() const { return end_position_.load(std::memory_order_acquire); }
  uint64_t size_bytes() const { return end_position(); }
  bool empty() const { return end_position() == 0; }
  // Largest batch max timestamp in the segment; -1 when empty.
  int64_t max_timestamp() const { return max_timestamp_.load(std::memory_order_acquire); }
  // max timestamp of the first batch (what segment.ms measures from); -1 when empty.
  int64_t first_timestamp() const { return first_timestamp_.load(std::memory_order_acquire); }
  const std::shared_ptr<File>& log_file() const { return log_; }
  // Wall-clock time segment.ms counts from: creation time, or for a segment found on disk its
  // first batch's timestamp.
  int64_t roll_base_ms() const { return roll_base_ms_.load(std::memory_order_relaxed); }
  void set_roll_base_ms(int64_t ms) { roll_base_ms_.store(ms, std::memory_order_relaxed); }

  // Appends `data`, which holds exactly the batches described by `batches` (positions relative to
  // `data`), in order, the first at next_offset() or later. On an I/O error the segment is cut back to its previous end (best
  // effort) and the error returned.
  Status append(const uint8_t* data, size_t n, std::span<const BatchInfo> batches,
                int32_t index_interval_bytes, int64_t preallocate_bytes = 0);
  // Frees blocks reserved past the end by preallocation (the segment is no longer appended to).
  void release_preallocated();

  // Position of the first batch whose last offset is >= `offset` (the batch holding it), or
  // end_position() when there is none. Reads at most one index interval of headers.
  Result<uint64_t> position_of(int64_t offset) const;
  // The end position of the last whole batch lying within [start, limit]; if the batch at
  // `start` alone is larger than limit - start, its end (so a read always makes progress).
  Result<uint64_t> batch_boundary_before(uint64_t start, uint64_t limit) const;
  // The first batch at or after `min_position` whose max timestamp is >= `timestamp`, scanning
  // from the time index; nullopt if none qualifies.
  Result<std::optional<BatchInfo>> first_batch_with_timestamp(int64_t timestamp,
                                                              uint64_t min_position = 0) const;
  // Reads the headers of the batches in [from, to) (for the epoch cache, tests, tools).
  Result<std::vector<BatchInfo>> scan(uint64_t from, uint64_t to) const;

  // Removes every batch whose last offset is >= `offset`.
  Status truncate_to(int64_t offset);
  // Writes both index files in full; syncs them when `sync`.
  Status write_indexes(bool sync);
  Status sync_log();
  // Deletes the segment's files (open handles stay readable).
  Status remove_files();
  // Renames the segment's files (those that exist) from their current suffix to `name_suffix`
  // (not durable until the directory is synced). Open handles stay valid.
  Status rename_files(const std::string& name_suffix);

 private:
  Segment(FileSystem* fs, std::string dir, int64_t base_offset, std::shared_ptr<File> log,
          std::string name_suffix);

  // Walks the file from `from`, rebuilding indexes and state. With check_crc, validates each
  // batch fully. Stops at the first bad batch and truncates there.
  Status rebuild(bool check_crc, int32_t index_interval_bytes, uint64_t* truncated_bytes);
  Status load_indexes(int32_t index_interval_bytes);
  void index_batch(const BatchInfo& b, int32_t index_interval_bytes);
  std::string path(const char* suffix) const;

  FileSystem* const fs_;
  const std::string dir_;
  const int64_t base_offset_;
  const std::shared_ptr<File> log_;
  OffsetIndex offset_index_;
  TimeIndex time_index_;

  std::atomic<uint64_t> end_position_{0};
  std::atomic<int64_t> next_offset_;
  std::atomic<int64_t> max_timestamp_{-1};
  std::atomic<int64_t> first_timestamp_{-1};
  std::atomic<int64_t> roll_base_ms_{0};
  // Appender-only state.
  uint64_t bytes_since_index_entry_ = 0;
  uint64_t preallocated_end_ = 0;  // blocks are reserved up to here (0: none, or unsupported)
  bool preallocate_failed_ = false;
  // Orders write_indexes (which a flush may run outside the log's lock) against remove_files.
  std::mutex files_mu_;
  bool removed_ = false;  // guarded by files_mu_
  std::string name_suffix_;  // guarded by files_mu_ (after construction)
};

}  // namespace gannet::storage
