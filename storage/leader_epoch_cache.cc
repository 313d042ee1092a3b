#include "storage/leader_epoch_cache.h"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace gannet::storage {

namespace {

// A non-negative decimal with no sign and no leading zero (one spelling per value).
bool parse_exact(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= 0;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t next = s.find(sep, at);
    if (next == std::string_view::npos) next = s.size();
    out.push_back(s.substr(at, next - at));
    at = next + 1;
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LeaderEpochCache>> LeaderEpochCache::load(FileSystem* fs,
                                                                 const std::string& dir) {
  std::unique_ptr<LeaderEpochCache> cache(new LeaderEpochCache(fs, dir));
  const std::string path = join_path(dir, kFileName);
  if (!fs->exists(path)) return cache;
  GANNET_ASSIGN_OR_RETURN(std::string text, read_file(fs, path));
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kCorruptMessage, path + ": " + why);
  };
  // Exactly: "0\n", "<count>\n", then count lines "<epoch> <offset>\n", nothing else.
  if (text.empty() || text.back() != '\n') return bad("does not end with a newline");
  std::vector<std::string_view> lines = split(std::string_view(text).substr(0, text.size() - 1), '\n');
  int64_t version = -1, count = -1;
  if (lines.size() < 2 || !parse_exact(lines[0], &version) || version != 0) return bad("unknown version");
  if (!parse_exact(lines[1], &count) || static_cast<size_t>(count) != lines.size() - 2) {
    return bad("entry count does not match the entries");
  }
  for (size_t i = 2; i < lines.size(); ++i) {
    std::vector<std::string_view> f = split(lines[i], ' ');
    int64_t epoch = -1, offset = -1;
    if (f.size() != 2 || !parse_exact(f[0], &epoch) || !parse_exact(f[1], &offset) ||
        epoch > INT32_MAX) {
      return bad("malformed entry " + std::to_string(i - 2));
    }
    EpochEntry e{static_cast<int32_t>(epoch), offset};
    if (!cache->entries_.empty() && (e.epoch <= cache->entries_.back().epoch ||
                                     e.start_offset <= cache->entries_.back().start_offset)) {
      return bad("entries out of order at " + std::to_string(i - 2));
    }
    cache->entries_.push_back(e);
  }
  return cache;
}

Status LeaderEpochCache::persist_locked() {
  std::string text = "0\n" + std::to_string(entries_.size()) + "\n";
  for (const auto& e : entries_) {
    text += std::to_string(e.epoch) + " " + std::to_string(e.start_offset) + "\n";
  }
  dirty_ = true;  // until the write is known to have succeeded
  GANNET_RETURN_IF_ERROR(write_file_atomic(fs_, join_path(dir_, kFileName), text));
  dirty_ = false;
  return {};
}

Status LeaderEpochCache::persist_if_dirty() {
  std::lock_guard<std::mutex> l(mu_);
  return dirty_ ? persist_locked() : Status{};
}

Status LeaderEpochCache::assign(int32_t epoch, int64_t start_offset, bool persist) {
  std::lock_guard<std::mutex> l(mu_);
  if (epoch < 0) return {};
  if (!entries_.empty()) {
    if (epoch <= entries_.back().epoch) return {};
    if (start_offset < entries_.back().start_offset) return {};
    if (start_offset == entries_.back().start_offset) entries_.pop_back();  // empty epoch
  }
  entries_.push_back({epoch, start_offset});
  if (!persist) {
    dirty_ = true;
    return {};
  }
  return persist_locked();
}

Status LeaderEpochCache::truncate_from_end(int64_t end_offset, bool persist) {
  std::lock_guard<std::mutex> l(mu_);
  size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start_offset >= end_offset) entries_.pop_back();
  if (entries_.size() == before) return {};
  if (!persist) {
    dirty_ = true;
    return {};
  }
  return persist_locked();
}

Status LeaderEpochCache::truncate_from_start(int64_t start_offset) {
  std::lock_guard<std::mutex> l(mu_);
  // Keep the last entry starting at or before start_offset (clamped) and all later ones.
  auto it = std::upper_bound(entries_.begin(), entries_.end(), start_offset,
                             [](int64_t o, const EpochEntry& e) { return o < e.start_offset; });
  if (it == entries_.begin()) return {};
  auto covering = it - 1;
  if (covering == entries_.begin() && covering->start_offset == start_offset) return {};
  covering->start_offset = start_offset;
  entries_.erase(entries_.begin(), covering);
  return persist_locked();
}

Status LeaderEpochCache::clear() {
  std::lock_guard<std::mutex> l(mu_);
  entries_.clear();
  return persist_locked();
}

std::optional<EpochEntry> LeaderEpochCache::latest() const {
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

std::optional<EpochEntry> LeaderEpochCache::end_offset_for(int32_t epoch,
                                                          int64_t log_end_offset) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), epoch,
                             [](int32_t ep, const EpochEntry& e) { return ep < e.epoch; });
  if (it == entries_.begin()) return std::nullopt;
  int32_t found = (it - 1)->epoch;
  int64_t end = (it == entries_.end()) ? log_end_offset : it->start_offset;
  return EpochEntry{found, end};
}

std::optional<int32_t> LeaderEpochCache::epoch_for_offset(int64_t offset) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), offset,
                             [](int64_t o, const EpochEntry& e) { return o < e.start_offset; });
  if (it == entries_.begin()) return std::nullopt;
  return (it - 1)->epoch;
}

std::vector<EpochEntry> LeaderEpochCache::entries() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_;
}

}  // namespace gannet::storage
