// The two sparse indexes of a segment (formats in FORMAT.md):
//   OffsetIndex: relative offset -> file position of the batch with that base offset, one entry
//                per index.interval.bytes of log;
//   TimeIndex:   max timestamp so far -> relative offset of the batch where it was reached,
//                added at the same points when the max timestamp grew.
// Both live in memory (lookups are binary searches) and are written whole to their files when a
// segment rolls or the log closes. A file that fails the sanity checks in parse() is rebuilt from
// the log by the segment.
//
// Thread safety: one mutex per index; append/truncate from the log's appender, lookups from any
// thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/error.h"

namespace gannet::storage {

struct OffsetEntry {
  uint32_t relative_offset;
  uint32_t position;
};

struct TimeEntry {
  int64_t timestamp;
  uint32_t relative_offset;
};

class OffsetIndex {
 public:
  static constexpr size_t kEntrySize = 8;

  // Invariant: relative offsets and positions strictly increase along entries_.
  void append(OffsetEntry e);
  // The entry with the largest relative offset <= `rel`, if any.
  std::optional<OffsetEntry> lookup_offset(uint32_t rel) const;
  // The entry with the largest position <= `pos`, if any.
  std::optional<OffsetEntry> lookup_position(uint64_t pos) const;
  // Drops entries at positions >= `pos`.
  void truncate_to_position(uint64_t pos);
  std::optional<OffsetEntry> last() const;
  size_t size() const;
  void clear();

  std::string serialize() const;
  // Parses a file's bytes. Fails (kCorruptMessage) unless the size is a multiple of 8, entries
  // strictly increase, and every position is below `log_size`.
  static Result<std::vector<OffsetEntry>> parse(const std::string& bytes, uint64_t log_size);
  void assign(std::vector<OffsetEntry> entries);

 private:
  mutable std::mutex mu_;
  std::vector<OffsetEntry> entries_;
};

class TimeIndex {
 public:
  static constexpr size_t kEntrySize = 12;

  // Invariant: timestamps and relative offsets strictly increase along entries_.
  // Appends only if e.timestamp is larger than the last entry's.
  void maybe_append(TimeEntry e);
  // The entry with the largest timestamp < `ts`, if any.
  std::optional<TimeEntry> lookup_before(int64_t ts) const;
  // Drops entries at relative offsets >= `rel`.
  void truncate_to_offset(uint32_t rel);
  std::optional<TimeEntry> last() const;
  size_t size() const;
  void clear();

  std::string serialize() const;
  // Fails unless the size is a multiple of 12 and entries strictly increase with relative
  // offsets below `max_relative_offset`.
  static Result<std::vector<TimeEntry>> parse(const std::string& bytes, int64_t max_relative_offset);
  void assign(std::vector<TimeEntry> entries);

 private:
  mutable std::mutex mu_;
  std::vector<TimeEntry> entries_;
};

}  // namespace gannet::storage
