// LogCleaner: compaction of a log with cleanup.policy=compact (Kafka's log cleaner): keeps, for
// every key, only its latest record, and drops tombstones (null values) once they have been in
// the cleaned part of the log for delete.retention.ms.
//
// One pass over a log (clean()):
//   1. Cleanable end: the base offset of the first segment that is the active segment, reaches
//      past the high watermark, or holds a record newer than min.compaction.lag.ms. Only whole
//      segments below it are touched. While the high watermark is unknown (-1: a log just
//      opened, before its partition's first election or fetch) nothing is cleanable: a record
//      that may yet be truncated away must never shadow a committed one.
//   2. Dirty section: [first dirty offset, cleanable end), where the first dirty offset is the
//      end of what the previous pass mapped (Log::first_dirty_offset, checkpointed by the log
//      manager). An offset map key -> latest offset is built over it, bounded by
//      dedupe_buffer_bytes: when the map fills, the pass maps a shorter dirty section (at a
//      batch boundary; at least one batch) and the next pass goes on from there.
//   3. Rewrite: every segment from the log start up to the one holding the map's end is read
//      and rewritten; a record is dropped iff the map holds a larger offset for its key, its
//      key is null (a record from before the topic was compacted), or it is a tombstone whose
//      delete horizon has passed. Consecutive segments are grouped into one new segment while
//      their old sizes fit in segment.bytes.
//   4. Swap: Log::swap_cleaned_segments, the only step under the log's append lock.
//
// Rewritten batches keep their base offset, last offset delta (offsets are never reused: they
// only gain gaps), leader epoch, producer id/epoch/base sequence, timestamp type, codec and max
// timestamp; the record count, length and CRC are recomputed. A batch left without records is
// dropped, except the last batch of each new segment, which is kept with no records so the
// segment still ends where its successor begins (recovery treats a gap between segments as lost
// data). A batch whose records are all kept is copied byte for byte. Control batches
// (transaction markers) are copied unchanged and never enter the map.
//
// Tombstones (KIP-534's delete horizon): the first pass that rewrites a batch holding a
// surviving tombstone sets kDeleteHorizonBit and stores the horizon, now + delete.retention.ms,
// in the base timestamp (record timestamp deltas are re-based so record timestamps do not
// change; the sum saturates at INT64_MAX). A later pass drops that batch's tombstones once now >=
// the horizon. Both apply only to batches below the map's end: when the map filled inside a
// segment, the rest of it is rewritten but stays dirty, and its tombstones were not mapped yet. A tombstone is so
// kept at least delete.retention.ms after it first reached the cleaned section; any older record
// of its key was removed by the pass whose map held the tombstone.
//
// Crash safety: new segments are written as "<base>.log.cleaned" (+ indexes) and synced; the
// swap renames them to ".swap", syncs the directory (the commit point), deletes the replaced
// segments, syncs, renames the ".swap" files to their final names and syncs. Log recovery
// deletes ".cleaned" files and completes any ".swap" (FORMAT.md, "Compaction").
//
// Thread safety: clean() runs on any thread, at most one per log (Log::try_begin_clean); it
// never blocks appends or reads except during the swap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "storage/log.h"

namespace gannet::storage {

struct CleanStats {
  int64_t logs_cleaned = 0;      // passes whose swap went through
  int64_t swaps_abandoned = 0;   // passes whose segments changed meanwhile (nothing lost)
  int64_t segments_read = 0;
  int64_t segments_written = 0;
  int64_t batches_read = 0;
  int64_t batches_dropped = 0;
  int64_t records_read = 0;
  int64_t records_kept = 0;
  int64_t tombstones_dropped = 0;
  int64_t null_keys_dropped = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  int64_t map_entries = 0;
  bool map_full = false;  // the budget cut a pass's dirty section short

  CleanStats& operator+=(const CleanStats& o);
};

// What a pass over the log would clean now.
struct CleanableRange {
  int64_t first_dirty = 0;    // start of the dirty section
  int64_t cleanable_end = 0;  // a segment base offset; first_dirty <= cleanable_end
  uint64_t clean_bytes = 0;   // bytes in [log start, first_dirty)
  uint64_t dirty_bytes = 0;   // bytes in [first_dirty, cleanable_end)

  // Kafka's dirty ratio: dirty / (clean + dirty); 0 when nothing is cleanable.
  double dirty_ratio() const {
    const uint64_t total = clean_bytes + dirty_bytes;
    return total == 0 ? 0.0 : static_cast<double>(dirty_bytes) / static_cast<double>(total);
  }
};

struct CleanerOptions {
  // Budget of the key -> offset map, in bytes (each entry counts its key plus a fixed overhead).
  size_t dedupe_buffer_bytes = size_t{128} << 20;
  // Checked between batches: true stops the pass, removing its unfinished files.
  std::function<bool()> should_abort;
  // Test hook: runs after the new segments are written and synced, just before the swap.
  std::function<void()> before_swap;
};

class LogCleaner {
 public:
  // The cleanable range of `log` as of now (reads only batch headers where a segment is partly
  // dirty).
  static Result<CleanableRange> cleanable_range(const Log& log);

  // One cleaning pass (see the top of this file). Cleans only when the log's config has
  // compact; returns zero stats when there is nothing to clean or another pass runs. kLogOffline
  // if the log is closed or offline; an I/O error during the swap takes the log offline.
  static Result<CleanStats> clean(Log& log, const CleanerOptions& options = {});
};

}  // namespace gannet::storage
