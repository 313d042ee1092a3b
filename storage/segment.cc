#include "storage/segment.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "storage/record_batch.h"

namespace gannet::storage {
namespace {

// Batches larger than this are treated as corruption by scans: the log never accepts one
// (max.message.bytes and follower appends are capped at it), so such a length is garbage.
constexpr size_t kMaxScannableBatch = kMaxBatchBytes;

// Reads batch headers (or whole batches) sequentially from a file through a read-ahead buffer,
// so a scan costs one read per 64 KiB, not one per batch.
class BatchScanner {
 public:
  BatchScanner(const File& file, uint64_t from, uint64_t to) : file_(file), pos_(from), to_(to) {}

  // Reads the next batch. Returns nullopt at `to`; kCorruptMessage/kInvalidRecord if the bytes
  // at the current position are not a plausible batch (torn, garbage, or running past `to`).
  // With `whole`, the full batch is read and validated (CRC included).
  Result<std::optional<BatchInfo>> next(bool whole) {
    if (pos_ >= to_) return std::optional<BatchInfo>();
    GANNET_RETURN_IF_ERROR(
        fill(pos_, std::min<uint64_t>(kBatchHeaderSize, to_ - pos_), /*header_only=*/!whole));
    const uint8_t* p = at(pos_);
    size_t avail = static_cast<size_t>(std::min<uint64_t>(buf_end() - pos_, to_ - pos_));
    GANNET_ASSIGN_OR_RETURN(size_t size, peek_batch_size(p, avail, kMaxScannableBatch));
    if (pos_ + size > to_) {
      return make_error(Errc::kCorruptMessage,
                        "batch at position " + std::to_string(pos_) + " runs past the end");
    }
    if (whole) {
      GANNET_RETURN_IF_ERROR(fill(pos_, size, /*header_only=*/false));
      p = at(pos_);
      GANNET_RETURN_IF_ERROR(validate_batch(p, size));
    } else if (avail < kBatchHeaderSize) {
      return make_error(Errc::kCorruptMessage, "truncated batch header");
    }
    RecordBatchView v(p, std::max<size_t>(size, kBatchHeaderSize));
    BatchInfo b = BatchInfo::of(v, pos_, size);
    if (v.last_offset_delta() < 0) {
      return make_error(Errc::kCorruptMessage, "negative last offset delta");
    }
    pos_ += size;
    last_size_ = size;
    return std::optional<BatchInfo>(b);
  }

  uint64_t position() const { return pos_; }

 private:
  // Whole-batch scans (recovery) read ahead in big chunks. Header walks read ahead a little only
  // while batches are small (many headers per read), else just the header, so walking a few
  // large batches does not read their bodies.
  static constexpr size_t kReadAhead = 64 * 1024;
  static constexpr size_t kHeaderReadAhead = 8 * 1024;

  uint64_t buf_end() const { return buf_pos_ + buf_.size(); }
  const uint8_t* at(uint64_t pos) const { return buf_.data() + (pos - buf_pos_); }

  // Ensures [pos, pos + n) is buffered (short only at end of file).
  Status fill(uint64_t pos, size_t n, bool header_only) {
    if (pos >= buf_pos_ && pos + n <= buf_end()) return {};
    size_t ahead = !header_only ? kReadAhead : (last_size_ < kHeaderReadAhead / 4 ? kHeaderReadAhead : 0);
    size_t want = std::max(n, ahead);
    want = static_cast<size_t>(std::min<uint64_t>(want, to_ - pos));
    want = std::max(want, n);
    buf_.resize(want);
    GANNET_ASSIGN_OR_RETURN(size_t got, file_.read_at(pos, buf_.data(), want));
    buf_.resize(got);
    buf_pos_ = pos;
    return {};
  }

  const File& file_;
  uint64_t pos_;
  const uint64_t to_;
  std::vector<uint8_t> buf_;
  uint64_t buf_pos_ = 0;
  size_t last_size_ = SIZE_MAX;  // size of the previous batch (none yet: assume large)
};

}  // namespace

std::string Segment::file_name(int64_t base_offset, const char* suffix) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020" PRId64, base_offset);
  return std::string(buf) + suffix;
}

std::optional<int64_t> Segment::parse_log_name(const std::string& name) {
  if (name.size() != 24 || name.compare(20, 4, ".log") != 0) return std::nullopt;
  int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    if (v > (INT64_MAX - (name[i] - '0')) / 10) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

Segment::Segment(FileSystem* fs, std::string dir, int64_t base_offset, std::shared_ptr<File> log,
                 std::string name_suffix)
    : fs_(fs), dir_(std::move(dir)), base_offset_(base_offset), log_(std::move(log)),
      next_offset_(base_offset), name_suffix_(std::move(name_suffix)) {}

std::string Segment::path(const char* suffix) const {
  return join_path(dir_, file_name(base_offset_, suffix) + name_suffix_);
}

Result<std::shared_ptr<Segment>> Segment::create(FileSystem* fs, const std::string& dir,
                                                 int64_t base_offset,
                                                 const std::string& name_suffix) {
  const std::string log_path = join_path(dir, file_name(base_offset, ".log") + name_suffix);
  GANNET_ASSIGN_OR_RETURN(std::shared_ptr<File> f, fs->open(log_path, /*create=*/true));
  if (f->size() != 0) GANNET_RETURN_IF_ERROR(f->truncate(0));
  // Stale index files of an earlier segment with this base offset would be wrong.
  for (const char* suffix : {".index", ".timeindex"}) {
    std::string p = join_path(dir, file_name(base_offset, suffix) + name_suffix);
    if (fs->exists(p)) GANNET_RETURN_IF_ERROR(fs->remove_file(p));
  }
  return std::shared_ptr<Segment>(new Segment(fs, dir, base_offset, std::move(f), name_suffix));
}

Result<std::shared_ptr<Segment>> Segment::open(FileSystem* fs, const std::string& dir,
                                               int64_t base_offset, bool recover,
                                               int32_t index_interval_bytes,
                                               uint64_t* truncated_bytes,
                                               const std::string& name_suffix) {
  const std::string log_path = join_path(dir, file_name(base_offset, ".log") + name_suffix);
  GANNET_ASSIGN_OR_RETURN(std::shared_ptr<File> f, fs->open(log_path, /*create=*/false));
  std::shared_ptr<Segment> seg(
      new Segment(fs, dir, base_offset, std::move(f), name_suffix));
  if (truncated_bytes != nullptr) *truncated_bytes = 0;
  if (recover) {
    GANNET_RETURN_IF_ERROR(seg->rebuild(/*check_crc=*/true, index_interval_bytes, truncated_bytes));
  } else {
    GANNET_RETURN_IF_ERROR(seg->load_indexes(index_interval_bytes));
  }
  return seg;
}

void Segment::index_batch(const BatchInfo& b, int32_t index_interval_bytes) {
  // Invariant kept: a time entry (T, O) promises every batch before relative offset O has a max
  // timestamp <= T... strictly: < the next entry's T. It is written before b updates the max.
  if (bytes_since_index_entry_ >= static_cast<uint64_t>(index_interval_bytes) && b.position > 0) {
    uint32_t rel = static_cast<uint32_t>(b.base_offset - base_offset_);
    offset_index_.append(OffsetEntry{rel, static_cast<uint32_t>(b.position)});
    int64_t max_so_far = max_timestamp_.load(std::memory_order_relaxed);
    if (max_so_far >= 0) time_index_.maybe_append(TimeEntry{max_so_far, rel});
    bytes_since_index_entry_ = 0;
  }
  bytes_since_index_entry_ += b.size;
  if (first_timestamp_.load(std::memory_order_relaxed) < 0) {
    first_timestamp_.store(std::max<int64_t>(b.max_timestamp, 0), std::memory_order_release);
  }
  if (b.max_timestamp > max_timestamp_.load(std::memory_order_relaxed)) {
    max_timestamp_.store(b.max_timestamp, std::memory_order_release);
  }
}

Status Segment::append(const uint8_t* data, size_t n, std::span<const BatchInfo> batches,
                       int32_t index_interval_bytes, int64_t preallocate_bytes) {
  const uint64_t start = end_position();
  // Reserving blocks ahead in big steps takes block allocation off every append (about 1.4x
  // the buffered write rate on ext4); file systems without fallocate just skip it.
  if (preallocate_bytes > 0 && !preallocate_failed_ && start + n > preallocated_end_) {
    const uint64_t from = std::max(preallocated_end_, start);
    const uint64_t len = std::max<uint64_t>(static_cast<uint64_t>(preallocate_bytes), start + n - from);
    if (log_->preallocate(from, len)) {
      preallocated_end_ = from + len;
    } else {
      preallocate_failed_ = true;
    }
  }
  Status st = log_->append(data, n);
  if (!st.ok()) {
    (void)log_->truncate(start);  // best effort: the log goes offline either way
    return st;
  }
  for (const BatchInfo& b : batches) {
    BatchInfo placed = b;
    placed.position = start + (b.position);
    index_batch(placed, index_interval_bytes);
  }
  next_offset_.store(batches.back().last_offset + 1, std::memory_order_release);
  end_position_.store(start + n, std::memory_order_release);
  return {};
}

Status Segment::rebuild(bool check_crc, int32_t index_interval_bytes, uint64_t* truncated_bytes) {
  offset_index_.clear();
  time_index_.clear();
  max_timestamp_.store(-1);
  first_timestamp_.store(-1);
  bytes_since_index_entry_ = 0;
  const uint64_t file_size = log_->size();
  BatchScanner scanner(*log_, 0, file_size);
  int64_t expected = base_offset_;
  uint64_t good_end = 0;
  while (true) {
    auto r = scanner.next(check_crc);
    if (!r.ok()) {
      if (r.error().code == Errc::kIoError || r.error().code == Errc::kNoSpace) return r.error();
      break;  // torn or corrupt: everything from here on goes
    }
    if (!r->has_value()) break;
    const BatchInfo& b = **r;
    if (b.base_offset < expected || b.last_offset - base_offset_ > INT32_MAX) break;
    index_batch(b, index_interval_bytes);
    expected = b.last_offset + 1;
    good_end = scanner.position();
  }
  if (good_end < file_size) {
    GANNET_RETURN_IF_ERROR(log_->truncate(good_end));
    if (truncated_bytes != nullptr) *truncated_bytes = file_size - good_end;
  }
  next_offset_.store(expected);
  end_position_.store(good_end);
  return {};
}

Status Segment::load_indexes(int32_t index_interval_bytes) {
  const uint64_t size = log_->size();
  auto index_bytes = read_file(fs_, path(".index"));
  auto time_bytes = read_file(fs_, path(".timeindex"));
  bool ok = index_bytes.ok() && time_bytes.ok();
  if (ok) {
    auto entries = OffsetIndex::parse(*index_bytes, size);
    auto times = TimeIndex::parse(*time_bytes, INT32_MAX);
    ok = entries.ok() && times.ok();
    if (ok) {
      // The last entry must point at a batch header with exactly that base offset.
      if (!entries->empty()) {
        uint8_t hdr[kBatchHeaderSize];
        auto n = log_->read_at(entries->back().position, hdr, sizeof(hdr));
        ok = n.ok() && *n == sizeof(hdr) &&
             RecordBatchView(hdr, sizeof(hdr)).base_offset() ==
                 base_offset_ + entries->back().relative_offset;
      }
      if (ok && !times->empty() && !entries->empty()) {
        ok = times->back().relative_offset <= entries->back().relative_offset;
      } else if (ok && !times->empty()) {
        ok = false;
      }
    }
    if (ok) {
      // Walk the headers after the last entry to learn the end, the max timestamp and the
      // distance since the last entry; a bad header here means the segment needs rebuilding.
      uint64_t from = entries->empty() ? 0 : entries->back().position;
      BatchScanner scanner(*log_, from, size);
      int64_t next = base_offset_;
      int64_t max_ts = times->empty() ? -1 : times->back().timestamp;
      uint64_t since = 0;
      int64_t first_ts = -1;
      while (ok) {
        auto r = scanner.next(/*whole=*/false);
        if (!r.ok() || !r->has_value()) {
          ok = r.ok();
          break;
        }
        const BatchInfo& b = **r;
        if (first_ts < 0 && b.position == 0) first_ts = b.max_timestamp;
        max_ts = std::max(max_ts, b.max_timestamp);
        next = b.last_offset + 1;
        since = (b.position == from) ? b.size : since + b.size;
      }
      if (ok && scanner.position() == size) {
        offset_index_.assign(std::move(*entries));
        time_index_.assign(std::move(*times));
        if (first_ts < 0 && size > 0) {
          uint8_t hdr[kBatchHeaderSize];
          auto n = log_->read_at(0, hdr, sizeof(hdr));
          if (n.ok() && *n == sizeof(hdr)) first_ts = RecordBatchView(hdr, sizeof(hdr)).max_timestamp();
        }
        first_timestamp_.store(size > 0 ? std::max<int64_t>(first_ts, 0) : -1);
        max_timestamp_.store(max_ts);
        bytes_since_index_entry_ = since;
        next_offset_.store(next);
        end_position_.store(size);
        return {};
      }
      ok = false;
    }
  }
  // Missing or inconsistent: rebuild from the headers (a torn tail found here is cut too) and
  // write the indexes back, so the next start does not rebuild again.
  GANNET_RETURN_IF_ERROR(rebuild(/*check_crc=*/false, index_interval_bytes, nullptr));
  return write_indexes(/*sync=*/true);
}

Result<uint64_t> Segment::position_of(int64_t offset) const {
  const uint64_t end = end_position();
  if (offset >= next_offset()) return end;
  uint64_t from = 0;
  if (offset > base_offset_) {
    if (auto e = offset_index_.lookup_offset(static_cast<uint32_t>(offset - base_offset_))) {
      from = e->position;
    }
  }
  BatchScanner scanner(*log_, from, end);
  while (true) {
    GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b, scanner.next(/*whole=*/false));
    if (!b) return end;
    if (b->last_offset >= offset) return b->position;
  }
}

Result<uint64_t> Segment::batch_boundary_before(uint64_t start, uint64_t limit) const {
  const uint64_t end = end_position();
  limit = std::min(limit, end);
  uint64_t from = start;
  if (auto e = offset_index_.lookup_position(limit); e && e->position > start) from = e->position;
  BatchScanner scanner(*log_, from, end);
  uint64_t boundary = from;
  while (true) {
    GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b, scanner.next(/*whole=*/false));
    if (!b) return boundary;
    uint64_t b_end = b->position + b->size;
    if (b_end > limit) return boundary == start ? b_end : boundary;
    boundary = b_end;
  }
}

Result<std::optional<BatchInfo>> Segment::first_batch_with_timestamp(int64_t timestamp,
                                                                   uint64_t min_position) const {
  if (max_timestamp() < timestamp) return std::optional<BatchInfo>();
  uint64_t from = 0;
  if (auto t = time_index_.lookup_before(timestamp)) {
    if (auto e = offset_index_.lookup_offset(t->relative_offset)) from = e->position;
  }
  from = std::max(from, min_position);
  BatchScanner scanner(*log_, from, end_position());
  while (true) {
    GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b, scanner.next(/*whole=*/false));
    if (!b || b->max_timestamp >= timestamp) return b;
  }
}

Result<std::vector<BatchInfo>> Segment::scan(uint64_t from, uint64_t to) const {
  BatchScanner scanner(*log_, from, std::min(to, end_position()));
  std::vector<BatchInfo> out;
  while (true) {
    GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b, scanner.next(/*whole=*/false));
    if (!b) return out;
    out.push_back(*b);
  }
}

Status Segment::truncate_to(int64_t offset) {
  GANNET_ASSIGN_OR_RETURN(uint64_t pos, position_of(offset));
  if (pos >= end_position()) return {};
  // Readers bound themselves by end_position(): lower it before the bytes go.
  end_position_.store(pos, std::memory_order_release);
  GANNET_RETURN_IF_ERROR(log_->truncate(pos));
  offset_index_.truncate_to_position(pos);
  // Recompute the appender state from what is left: the time entries still valid, then the
  // headers after the last offset entry.
  int64_t new_next = base_offset_;
  int64_t max_ts = -1;
  uint64_t from = 0;
  if (auto e = offset_index_.last()) {
    from = e->position;
    time_index_.truncate_to_offset(e->relative_offset + 1);
    if (auto t = time_index_.last()) max_ts = t->timestamp;
  } else {
    time_index_.clear();
  }
  BatchScanner scanner(*log_, from, pos);
  uint64_t since = 0;
  while (true) {
    GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b, scanner.next(/*whole=*/false));
    if (!b) break;
    max_ts = std::max(max_ts, b->max_timestamp);
    new_next = b->last_offset + 1;
    since = (b->position == from) ? b->size : since + b->size;
  }
  bytes_since_index_entry_ = since;
  max_timestamp_.store(max_ts, std::memory_order_release);
  if (pos == 0) first_timestamp_.store(-1, std::memory_order_release);
  next_offset_.store(new_next, std::memory_order_release);
  end_position_.store(pos, std::memory_order_release);
  return {};
}

Status Segment::write_indexes(bool sync) {
  std::lock_guard<std::mutex> l(files_mu_);
  if (removed_) return {};  // never resurrect the files of a deleted segment
  for (auto [suffix, bytes] : {std::pair<const char*, std::string>{".index", offset_index_.serialize()},
                               {".timeindex", time_index_.serialize()}}) {
    GANNET_ASSIGN_OR_RETURN(std::shared_ptr<File> f, fs_->open(path(suffix), /*create=*/true));
    GANNET_RETURN_IF_ERROR(f->truncate(0));
    GANNET_RETURN_IF_ERROR(f->append(bytes.data(), bytes.size()));
    if (sync) GANNET_RETURN_IF_ERROR(f->sync());
  }
  return {};
}

Status Segment::sync_log() { return log_->sync(); }

void Segment::release_preallocated() {
  if (preallocated_end_ > end_position()) log_->release_preallocated();
  preallocated_end_ = 0;
}

Status Segment::remove_files() {
  std::lock_guard<std::mutex> l(files_mu_);
  removed_ = true;
  for (const char* suffix : {".log", ".index", ".timeindex"}) {
    std::string p = path(suffix);
    if (fs_->exists(p)) GANNET_RETURN_IF_ERROR(fs_->remove_file(p));
  }
  return {};
}

Status Segment::rename_files(const std::string& name_suffix) {
  std::lock_guard<std::mutex> l(files_mu_);
  if (removed_) return make_error(Errc::kNotFound, "rename of a removed segment's files");
  for (const char* suffix : {".log", ".index", ".timeindex"}) {
    const std::string from = path(suffix);
    if (!fs_->exists(from)) continue;
    GANNET_RETURN_IF_ERROR(
        fs_->rename(from, join_path(dir_, file_name(base_offset_, suffix) + name_suffix)));
  }
  name_suffix_ = name_suffix;
  return {};
}

}  // namespace gannet::storage
