#include "storage/log_cleaner.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/varint.h"
#include "storage/compression.h"
#include "storage/record_batch.h"

namespace gannet::storage {
namespace {

// What one map entry costs besides its key bytes: the offset, the node, the bucket pointer and
// the string header, roughly, so the budget tracks real memory.
constexpr size_t kEntryOverhead = 64;
// The cleaner reads and writes in chunks of this size.
constexpr size_t kChunkBytes = size_t{1} << 20;
// A compressed batch may hold far more than its own size; the limit only stops a hostile one.
constexpr size_t kMaxDecompressed = size_t{256} << 20;

struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
// key -> the largest offset seen for it in the dirty section.
using OffsetMap = std::unordered_map<std::string, int64_t, KeyHash, std::equal_to<>>;

int64_t wrapping_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

void put_bytes(std::string* out, std::optional<std::string_view> bytes) {
  if (!bytes) {
    put_varint(out, -1);
    return;
  }
  put_varint(out, static_cast<int64_t>(bytes->size()));
  out->append(bytes->data(), bytes->size());
}

// Reads the whole batches of [from, to) of a segment file in chunks, checking each one's CRC: a
// batch that rotted on disk must fail the clean, not be re-checksummed into looking valid.
class BatchReader {
 public:
  BatchReader(const File& file, uint64_t from, uint64_t to) : file_(file), pos_(from), to_(to) {}

  // The next batch (valid until the next call), or nullopt at the end.
  Result<std::optional<RecordBatchView>> next() {
    if (pos_ >= to_) return std::optional<RecordBatchView>();
    GANNET_RETURN_IF_ERROR(fill(std::min<uint64_t>(kBatchHeaderSize, to_ - pos_)));
    const size_t avail = static_cast<size_t>(buf_pos_ + buf_.size() - pos_);
    GANNET_ASSIGN_OR_RETURN(size_t size, peek_batch_size(at(), avail, kMaxBatchBytes));
    if (pos_ + size > to_) {
      return make_error(Errc::kCorruptMessage,
                        "batch at position " + std::to_string(pos_) + " runs past the segment end");
    }
    GANNET_RETURN_IF_ERROR(fill(size));
    GANNET_RETURN_IF_ERROR(validate_batch(at(), size));
    RecordBatchView v(at(), size);
    pos_ += size;
    return std::optional<RecordBatchView>(v);
  }

 private:
  const uint8_t* at() const { return reinterpret_cast<const uint8_t*>(buf_.data()) + (pos_ - buf_pos_); }

  // Ensures [pos_, pos_ + n) is buffered.
  Status fill(uint64_t n) {
    if (pos_ >= buf_pos_ && pos_ + n <= buf_pos_ + buf_.size()) return {};
    const size_t want = static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(n, kChunkBytes), to_ - pos_));
    buf_.resize(want);
    GANNET_ASSIGN_OR_RETURN(size_t got, file_.read_at(pos_, buf_.data(), want));
    buf_.resize(got);
    buf_pos_ = pos_;
    if (got < n) return make_error(Errc::kCorruptMessage, "short read of a segment being cleaned");
    return {};
  }

  const File& file_;
  uint64_t pos_;
  const uint64_t to_;
  std::string buf_;
  uint64_t buf_pos_ = 0;
};

// Re-encodes `v` with only `kept` (in offset order). With `horizon`, sets the delete-horizon bit
// and stores it as the base timestamp. Header fields not listed in log_cleaner.h stay as they
// were.
Result<std::string> encode_batch(const RecordBatchView& v, const std::vector<Record>& kept,
                                 std::optional<int64_t> horizon) {
  const int64_t base_ts = horizon ? *horizon : v.base_timestamp();
  std::string records;
  std::string body;
  for (const Record& r : kept) {
    body.clear();
    body.push_back('\0');  // record attributes: unused in v2
    put_varint(&body, wrapping_sub(r.timestamp, base_ts));
    put_varint(&body, r.offset - v.base_offset());
    put_bytes(&body, r.key);
    put_bytes(&body, r.value);
    put_varint(&body, static_cast<int64_t>(r.headers.size()));
    for (const RecordHeader& h : r.headers) {
      put_bytes(&body, h.key);
      put_bytes(&body, h.value);
    }
    put_varint(&records, static_cast<int64_t>(body.size()));
    records += body;
  }
  std::string payload;
  if (v.compression() == Compression::kNone) {
    payload = std::move(records);
  } else {
    GANNET_ASSIGN_OR_RETURN(payload, compress(v.compression(), records));
  }
  const size_t total = kBatchHeaderSize + payload.size();
  if (total > kMaxBatchBytes) return make_error(Errc::kRecordTooLarge, "cleaned batch too large");
  std::string out(total, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p, v.data(), kBatchHeaderSize);
  namespace f = batch_field;
  store_be32(p + f::kLength, static_cast<uint32_t>(total - kLogOverhead));
  int16_t attributes = v.attributes();
  if (horizon) attributes = static_cast<int16_t>(attributes | kDeleteHorizonBit);
  store_be16(p + f::kAttributes, static_cast<uint16_t>(attributes));
  store_be64(p + f::kBaseTimestamp, static_cast<uint64_t>(base_ts));
  store_be32(p + f::kRecordCount, static_cast<uint32_t>(kept.size()));
  std::memcpy(p + kBatchHeaderSize, payload.data(), payload.size());
  store_be32(p + f::kCrc, RecordBatchView(p, total).compute_crc());
  return out;
}

enum class Outcome { kVerbatim, kRewritten, kEmpty };

struct FilterContext {
  const OffsetMap* map;
  // End of the section this pass maps ([first dirty, clean_end)): a batch at or past it stays
  // dirty (the map filled in its segment), so its tombstones were never mapped and older values
  // of their keys may still be in the log: they neither get a delete horizon nor go.
  int64_t clean_end;
  int64_t now_ms;
  int64_t delete_retention_ms;
  CleanStats* stats;
  // Each idempotent producer's last batch (its last offset, by producer id): kept even when the
  // filter empties it, as a batch without records, so a replay of the log still finds the
  // producer's sequence and epoch.
  std::unordered_map<int64_t, int64_t> producer_last_offsets;
};

// Applies the retention rule of log_cleaner.h to one batch; *out receives the rewritten batch.
Result<Outcome> filter_batch(const RecordBatchView& v, const FilterContext& ctx, std::string* out) {
  if (v.is_control()) return Outcome::kVerbatim;
  GANNET_ASSIGN_OR_RETURN(RecordIterator it, RecordIterator::create(v, kMaxDecompressed));
  const bool has_horizon = (v.attributes() & kDeleteHorizonBit) != 0;
  const bool cleaned = v.last_offset() < ctx.clean_end;
  const bool horizon_passed = cleaned && has_horizon && ctx.now_ms >= v.base_timestamp();
  std::vector<Record> kept;
  bool kept_tombstone = false;
  int32_t read = 0;
  Record rec;
  while (true) {
    GANNET_ASSIGN_OR_RETURN(bool more, it.next(&rec));
    if (!more) break;
    ++read;
    ++ctx.stats->records_read;
    if (!rec.key) {
      ++ctx.stats->null_keys_dropped;
      continue;
    }
    if (auto m = ctx.map->find(*rec.key); m != ctx.map->end() && m->second > rec.offset) continue;
    if (!rec.value && horizon_passed) {
      ++ctx.stats->tombstones_dropped;
      continue;
    }
    kept_tombstone |= !rec.value;
    kept.push_back(rec);
  }
  ctx.stats->records_kept += static_cast<int64_t>(kept.size());
  const bool set_horizon = cleaned && kept_tombstone && !has_horizon;
  if (static_cast<int32_t>(kept.size()) == read && !set_horizon) return Outcome::kVerbatim;
  if (kept.empty()) return Outcome::kEmpty;
  // Saturating: delete.retention.ms may be INT64_MAX (keep tombstones forever).
  const int64_t horizon = ctx.delete_retention_ms > INT64_MAX - ctx.now_ms
                              ? INT64_MAX
                              : ctx.now_ms + ctx.delete_retention_ms;
  GANNET_ASSIGN_OR_RETURN(
      *out, encode_batch(v, kept, set_horizon ? std::optional<int64_t>(horizon) : std::nullopt));
  return Outcome::kRewritten;
}

// Writes batches into a new segment through a buffer, indexing them as it goes.
class SegmentWriter {
 public:
  SegmentWriter(Segment& seg, int32_t index_interval_bytes)
      : seg_(seg), index_interval_bytes_(index_interval_bytes) {}

  Status add(std::string_view batch) {
    RecordBatchView v(reinterpret_cast<const uint8_t*>(batch.data()), batch.size());
    infos_.push_back(BatchInfo::of(v, buf_.size(), batch.size()));
    buf_.append(batch);
    if (buf_.size() >= kChunkBytes) return flush();
    return {};
  }

  Status flush() {
    if (buf_.empty()) return {};
    GANNET_RETURN_IF_ERROR(seg_.append(reinterpret_cast<const uint8_t*>(buf_.data()), buf_.size(),
                                       infos_, index_interval_bytes_));
    written_ += buf_.size();
    buf_.clear();
    infos_.clear();
    return {};
  }

  // Bytes added so far, buffered or written.
  uint64_t size() const { return written_ + buf_.size(); }

 private:
  Segment& seg_;
  const int32_t index_interval_bytes_;
  std::string buf_;
  std::vector<BatchInfo> infos_;
  uint64_t written_ = 0;
};

class CleanPass {
 public:
  CleanPass(Log& log, const CleanerOptions& options)
      : log_(log), options_(options), cfg_(log.config()) {}

  Result<CleanStats> run() {
    GANNET_ASSIGN_OR_RETURN(range_, LogCleaner::cleanable_range(log_));
    if (range_.first_dirty >= range_.cleanable_end) return stats_;
    const auto list = log_.segment_snapshot();
    for (size_t i = 0; i + 1 < list->size(); ++i) {
      const auto& seg = (*list)[i];
      if (seg->base_offset() >= range_.cleanable_end) break;
      below_.push_back({seg, seg->end_position()});
    }
    Status st = build_map();
    if (st.ok() && !aborted_) st = write_segments();
    if (!st.ok() || aborted_) {
      for (const auto& seg : cleaned_) (void)seg->remove_files();
      if (aborted_) return stats_;
      // A truncation or retention that raced with the reads can make them fail: the clean is
      // then merely abandoned.
      if (sources_changed()) {
        ++stats_.swaps_abandoned;
        return stats_;
      }
      return st.error();
    }
    if (options_.before_swap) options_.before_swap();
    GANNET_ASSIGN_OR_RETURN(bool swapped, log_.swap_cleaned_segments(sources_, cleaned_, map_end_));
    if (swapped) {
      ++stats_.logs_cleaned;
      LOG(INFO) << log_.dir() << ": cleaned offsets [" << log_.log_start_offset() << ", " << map_end_
                << "): " << stats_.segments_read << " segment(s) into " << stats_.segments_written
                << ", " << stats_.bytes_read << " -> " << stats_.bytes_written << " bytes, "
                << stats_.records_kept << " of " << stats_.records_read << " records kept";
    } else {
      ++stats_.swaps_abandoned;
    }
    return stats_;
  }

 private:
  bool should_abort() {
    if (log_.clean_aborted() || (options_.should_abort && options_.should_abort())) aborted_ = true;
    return aborted_;
  }

  bool sources_changed() const {
    const auto list = log_.segment_snapshot();
    if (list->size() <= below_.size()) return true;
    for (size_t i = 0; i < below_.size(); ++i) {
      if ((*list)[i] != below_[i].segment || below_[i].segment->end_position() != below_[i].end_position) {
        return true;
      }
    }
    return false;
  }

  // The key -> latest offset map over [first dirty, cleanable end), within the budget.
  Status build_map() {
    size_t used = 0;
    map_end_ = range_.first_dirty;
    std::vector<std::pair<std::string_view, int64_t>> keys;
    for (const auto& src : below_) {
      const Segment& seg = *src.segment;
      if (seg.next_offset() <= range_.first_dirty) continue;
      GANNET_ASSIGN_OR_RETURN(uint64_t from, seg.position_of(range_.first_dirty));
      BatchReader reader(*seg.log_file(), from, src.end_position);
      while (true) {
        if (should_abort()) return {};
        GANNET_ASSIGN_OR_RETURN(std::optional<RecordBatchView> b, reader.next());
        if (!b) break;
        if (b->last_offset() < range_.first_dirty) continue;
        if (!b->is_control()) {
          GANNET_ASSIGN_OR_RETURN(RecordIterator it, RecordIterator::create(*b, kMaxDecompressed));
          keys.clear();
          size_t cost = 0;
          Record rec;
          while (true) {
            GANNET_ASSIGN_OR_RETURN(bool more, it.next(&rec));
            if (!more) break;
            if (!rec.key || rec.offset < range_.first_dirty) continue;
            keys.emplace_back(*rec.key, rec.offset);
            cost += rec.key->size() + kEntryOverhead;
          }
          // At least one batch is always mapped, so every pass makes progress.
          if (used + cost > options_.dedupe_buffer_bytes && map_end_ > range_.first_dirty) {
            stats_.map_full = true;
            stats_.map_entries = static_cast<int64_t>(map_.size());
            return {};
          }
          for (const auto& [key, offset] : keys) {
            auto [m, inserted] = map_.try_emplace(std::string(key), offset);
            if (inserted) {
              used += key.size() + kEntryOverhead;
            } else {
              m->second = std::max(m->second, offset);
            }
          }
        }
        map_end_ = b->next_offset();
      }
    }
    map_end_ = range_.cleanable_end;
    stats_.map_entries = static_cast<int64_t>(map_.size());
    return {};
  }

  // Rewrites every segment starting below the map's end into ".cleaned" segments. A source
  // joins the current new segment while what was written plus its whole old size still fits
  // segment.bytes (and the 32-bit index fields), so small cleaned segments merge over passes.
  Status write_segments() {
    for (const auto& src : below_) {
      if (src.segment->base_offset() < map_end_) sources_.push_back(src);
    }
    FilterContext ctx{&map_, map_end_, log_.clock()->now_ms(), cfg_.delete_retention_ms, &stats_, {}};
    const ProducerStateTable producers = log_.producer_state();  // (a copy: not a temporary in the loop)
    for (const auto& [pid, e] : producers.entries()) {
      if (!e.batches.empty()) ctx.producer_last_offsets[pid] = e.batches.back().last_offset;
    }
    for (const auto& src : sources_) {
      if (writer_) {
        const uint64_t size = writer_->size() + last_dropped_.size() + src.end_position;
        const int64_t span = src.segment->next_offset() - out_->base_offset();
        if (size > static_cast<uint64_t>(cfg_.segment_bytes) || size > UINT32_MAX || span > INT32_MAX) {
          GANNET_RETURN_IF_ERROR(finish_segment());
        }
      }
      if (!writer_) {
        GANNET_ASSIGN_OR_RETURN(out_, Segment::create(log_.fs(), log_.dir(), src.segment->base_offset(),
                                                      ".cleaned"));
        out_->set_roll_base_ms(src.segment->roll_base_ms());
        cleaned_.push_back(out_);
        writer_ = std::make_unique<SegmentWriter>(*out_, cfg_.index_interval_bytes);
      }
      GANNET_RETURN_IF_ERROR(copy_segment(src, ctx));
      if (aborted_) return {};
    }
    return finish_segment();
  }

  Status copy_segment(const Log::CleanedSource& src, const FilterContext& ctx) {
    ++stats_.segments_read;
    BatchReader reader(*src.segment->log_file(), 0, src.end_position);
    std::string rewritten;
    while (true) {
      if (should_abort()) return {};
      GANNET_ASSIGN_OR_RETURN(std::optional<RecordBatchView> b, reader.next());
      if (!b) return {};
      ++stats_.batches_read;
      stats_.bytes_read += b->size_bytes();
      GANNET_ASSIGN_OR_RETURN(Outcome outcome, filter_batch(*b, ctx, &rewritten));
      last_dropped_.clear();
      switch (outcome) {
        case Outcome::kVerbatim:
          GANNET_RETURN_IF_ERROR(writer_->add(
              std::string_view(reinterpret_cast<const char*>(b->data()), b->size_bytes())));
          break;
        case Outcome::kRewritten:
          GANNET_RETURN_IF_ERROR(writer_->add(rewritten));
          break;
        case Outcome::kEmpty:
          if (b->producer_id() >= 0) {
            auto last = ctx.producer_last_offsets.find(b->producer_id());
            if (last != ctx.producer_last_offsets.end() && last->second == b->last_offset()) {
              GANNET_ASSIGN_OR_RETURN(std::string empty, encode_batch(*b, {}, std::nullopt));
              GANNET_RETURN_IF_ERROR(writer_->add(empty));
              break;
            }
          }
          ++stats_.batches_dropped;
          last_dropped_.assign(reinterpret_cast<const char*>(b->data()), b->size_bytes());
          break;
      }
    }
  }

  Status finish_segment() {
    if (!writer_) return {};
    if (!last_dropped_.empty()) {
      // Kept without records: the new segment must end where the next one begins.
      --stats_.batches_dropped;
      RecordBatchView v(reinterpret_cast<const uint8_t*>(last_dropped_.data()), last_dropped_.size());
      GANNET_ASSIGN_OR_RETURN(std::string empty, encode_batch(v, {}, std::nullopt));
      GANNET_RETURN_IF_ERROR(writer_->add(empty));
      last_dropped_.clear();
    }
    GANNET_RETURN_IF_ERROR(writer_->flush());
    GANNET_RETURN_IF_ERROR(out_->write_indexes(/*sync=*/true));
    GANNET_RETURN_IF_ERROR(out_->sync_log());
    stats_.bytes_written += writer_->size();
    ++stats_.segments_written;
    writer_.reset();
    out_.reset();
    return {};
  }

  Log& log_;
  const CleanerOptions& options_;
  const LogConfig cfg_;
  CleanableRange range_;
  std::vector<Log::CleanedSource> below_;    // segments below the cleanable end, as read
  std::vector<Log::CleanedSource> sources_;  // those rewritten (below the map's end)
  OffsetMap map_;
  int64_t map_end_ = 0;
  Log::SegmentList cleaned_;
  std::shared_ptr<Segment> out_;            // the new segment being written
  std::unique_ptr<SegmentWriter> writer_;  // writes out_
  std::string last_dropped_;               // out_'s last batch so far, if the filter emptied it
  CleanStats stats_;
  bool aborted_ = false;
};

}  // namespace

CleanStats& CleanStats::operator+=(const CleanStats& o) {
  logs_cleaned += o.logs_cleaned;
  swaps_abandoned += o.swaps_abandoned;
  segments_read += o.segments_read;
  segments_written += o.segments_written;
  batches_read += o.batches_read;
  batches_dropped += o.batches_dropped;
  records_read += o.records_read;
  records_kept += o.records_kept;
  tombstones_dropped += o.tombstones_dropped;
  null_keys_dropped += o.null_keys_dropped;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  map_entries += o.map_entries;
  map_full |= o.map_full;
  return *this;
}

Result<CleanableRange> LogCleaner::cleanable_range(const Log& log) {
  const auto list = log.segment_snapshot();
  const LogConfig cfg = log.config();
  const int64_t now = log.clock()->now_ms();
  const int64_t hw = log.high_watermark();
  CleanableRange r;
  int64_t end = list->back()->base_offset();  // the active segment is never cleaned
  // With no high watermark known (a log just opened, before its partition's first election or
  // fetch), nothing is known to be committed: a later record that is truncated away afterwards
  // must never have shadowed a committed one, so nothing is cleanable.
  if (hw < 0) end = list->front()->base_offset();
  for (size_t i = 0; hw >= 0 && i + 1 < list->size(); ++i) {
    const Segment& s = *(*list)[i];
    const bool past_hw = hw >= 0 && s.next_offset() > hw;
    const bool too_young = cfg.min_compaction_lag_ms > 0 && s.max_timestamp() > now - cfg.min_compaction_lag_ms;
    if (past_hw || too_young) {
      end = s.base_offset();
      break;
    }
  }
  const int64_t start = list->front()->base_offset();
  r.cleanable_end = end;
  r.first_dirty = std::clamp(log.first_dirty_offset(), start, std::max(start, end));
  for (const auto& seg : *list) {
    if (seg->base_offset() >= end) break;
    const uint64_t size = seg->size_bytes();
    if (seg->next_offset() <= r.first_dirty) {
      r.clean_bytes += size;
    } else if (seg->base_offset() >= r.first_dirty) {
      r.dirty_bytes += size;
    } else {
      GANNET_ASSIGN_OR_RETURN(uint64_t pos, seg->position_of(r.first_dirty));
      r.clean_bytes += pos;
      r.dirty_bytes += size - std::min(pos, size);
    }
  }
  return r;
}

Result<CleanStats> LogCleaner::clean(Log& log, const CleanerOptions& options) {
  if (!log.config().cleanup_compact) return CleanStats{};
  if (log.offline() || log.clean_aborted()) {
    return make_error(Errc::kLogOffline, log.dir() + " is closed or offline");
  }
  if (!log.try_begin_clean()) return CleanStats{};
  struct EndClean {
    Log& log;
    ~EndClean() { log.end_clean(); }
  } end_clean{log};
  return CleanPass(log, options).run();
}

}  // namespace gannet::storage
