#include "storage/segment_index.h"

#include <algorithm>

#include "common/byte_order.h"

namespace gannet::storage {

void OffsetIndex::append(OffsetEntry e) {
  std::lock_guard<std::mutex> l(mu_);
  if (!entries_.empty() && (e.relative_offset <= entries_.back().relative_offset ||
                            e.position <= entries_.back().position)) {
    return;  // never break monotonicity; a sparser index is still correct
  }
  entries_.push_back(e);
}

std::optional<OffsetEntry> OffsetIndex::lookup_offset(uint32_t rel) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), rel,
                             [](uint32_t r, const OffsetEntry& e) { return r < e.relative_offset; });
  if (it == entries_.begin()) return std::nullopt;
  return *(it - 1);
}

std::optional<OffsetEntry> OffsetIndex::lookup_position(uint64_t pos) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), pos,
                             [](uint64_t p, const OffsetEntry& e) { return p < e.position; });
  if (it == entries_.begin()) return std::nullopt;
  return *(it - 1);
}

void OffsetIndex::truncate_to_position(uint64_t pos) {
  std::lock_guard<std::mutex> l(mu_);
  while (!entries_.empty() && entries_.back().position >= pos) entries_.pop_back();
}

std::optional<OffsetEntry> OffsetIndex::last() const {
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

size_t OffsetIndex::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}

void OffsetIndex::clear() {
  std::lock_guard<std::mutex> l(mu_);
  entries_.clear();
}

std::string OffsetIndex::serialize() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out(entries_.size() * kEntrySize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const auto& e : entries_) {
    store_be32(p, e.relative_offset);
    store_be32(p + 4, e.position);
    p += kEntrySize;
  }
  return out;
}

Result<std::vector<OffsetEntry>> OffsetIndex::parse(const std::string& bytes, uint64_t log_size) {
  if (bytes.size() % kEntrySize != 0) {
    return make_error(Errc::kCorruptMessage, "offset index size " + std::to_string(bytes.size()) +
                                                 " is not a multiple of 8");
  }
  std::vector<OffsetEntry> out;
  out.reserve(bytes.size() / kEntrySize);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < bytes.size(); i += kEntrySize) {
    OffsetEntry e{load_be32(p + i), load_be32(p + i + 4)};
    if (e.position >= log_size ||
        (!out.empty() && (e.relative_offset <= out.back().relative_offset ||
                          e.position <= out.back().position))) {
      return make_error(Errc::kCorruptMessage,
                        "offset index entry " + std::to_string(i / kEntrySize) + " is out of order");
    }
    out.push_back(e);
  }
  return out;
}

void OffsetIndex::assign(std::vector<OffsetEntry> entries) {
  std::lock_guard<std::mutex> l(mu_);
  entries_ = std::move(entries);
}

void TimeIndex::maybe_append(TimeEntry e) {
  std::lock_guard<std::mutex> l(mu_);
  if (!entries_.empty() && (e.timestamp <= entries_.back().timestamp ||
                            e.relative_offset <= entries_.back().relative_offset)) {
    return;
  }
  entries_.push_back(e);
}

std::optional<TimeEntry> TimeIndex::lookup_before(int64_t ts) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), ts,
                             [](const TimeEntry& e, int64_t t) { return e.timestamp < t; });
  if (it == entries_.begin()) return std::nullopt;
  return *(it - 1);
}

void TimeIndex::truncate_to_offset(uint32_t rel) {
  std::lock_guard<std::mutex> l(mu_);
  while (!entries_.empty() && entries_.back().relative_offset >= rel) entries_.pop_back();
}

std::optional<TimeEntry> TimeIndex::last() const {
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

size_t TimeIndex::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}

void TimeIndex::clear() {
  std::lock_guard<std::mutex> l(mu_);
  entries_.clear();
}

std::string TimeIndex::serialize() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out(entries_.size() * kEntrySize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const auto& e : entries_) {
    store_be64(p, static_cast<uint64_t>(e.timestamp));
    store_be32(p + 8, e.relative_offset);
    p += kEntrySize;
  }
  return out;
}

Result<std::vector<TimeEntry>> TimeIndex::parse(const std::string& bytes,
                                                int64_t max_relative_offset) {
  if (bytes.size() % kEntrySize != 0) {
    return make_error(Errc::kCorruptMessage, "time index size " + std::to_string(bytes.size()) +
                                                 " is not a multiple of 12");
  }
  std::vector<TimeEntry> out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < bytes.size(); i += kEntrySize) {
    TimeEntry e{static_cast<int64_t>(load_be64(p + i)), load_be32(p + i + 8)};
    if (e.relative_offset >= max_relative_offset ||
        (!out.empty() && (e.timestamp <= out.back().timestamp ||
                          e.relative_offset <= out.back().relative_offset))) {
      return make_error(Errc::kCorruptMessage,
                        "time index entry " + std::to_string(i / kEntrySize) + " is out of order");
    }
    out.push_back(e);
  }
  return out;
}

void TimeIndex::assign(std::vector<TimeEntry> entries) {
  std::lock_guard<std::mutex> l(mu_);
  entries_ = std::move(entries);
}

}  // namespace gannet::storage
