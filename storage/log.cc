#include "storage/log.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "storage/record_batch.h"

namespace gannet::storage {
namespace {

// Seqlock writer side: the generation is odd while a change that shrinks the log is in progress
// and moves on once it is done, so a reader that saw the same even value before and after did
// not overlap with it.
class GenerationWrite {
 public:
  explicit GenerationWrite(std::atomic<uint64_t>& g) : g_(g) { g_.fetch_add(1, std::memory_order_acq_rel); }
  ~GenerationWrite() { g_.fetch_add(1, std::memory_order_acq_rel); }
  GenerationWrite(const GenerationWrite&) = delete;
  GenerationWrite& operator=(const GenerationWrite&) = delete;

 private:
  std::atomic<uint64_t>& g_;
};

}  // namespace

Status ReadResult::copy_to(uint8_t* dst) const {
  for (const FileSlice& s : slices) {
    GANNET_ASSIGN_OR_RETURN(size_t n, s.file->read_at(s.position, dst, s.size));
    if (n != s.size) return make_error(Errc::kIoError, "short read of a log segment");
    dst += n;
  }
  return {};
}

Status ReadResult::copy_to(std::string* out) const {
  size_t at = out->size();
  out->resize(at + bytes);
  return copy_to(reinterpret_cast<uint8_t*>(out->data()) + at);
}

Log::Log(std::string dir, Options options)
    : dir_(std::move(dir)),
      fs_(options.fs),
      clock_(options.clock),
      config_(options.config),
      segments_(std::make_shared<SegmentList>()),
      on_recovery_point_lowered_(std::move(options.on_recovery_point_lowered)),
      track_producers_(options.track_producers),
      producers_(static_cast<size_t>(options.config.max_producers_per_partition)),
      initial_recovery_point_(options.recovery_point),
      clean_shutdown_(options.clean_shutdown),
      options_defer_new_dir_sync_(options.defer_new_dir_sync),
      before_new_dir_sync_(std::move(options.before_new_dir_sync)) {}

Log::~Log() = default;

Result<std::unique_ptr<Log>> Log::open(const std::string& dir, Options options) {
  if (options.fs == nullptr) options.fs = posix_file_system();
  if (options.clock == nullptr) options.clock = SystemClock::instance();
  GANNET_RETURN_IF_ERROR(options.config.validate());
  std::unique_ptr<Log> log(new Log(dir, std::move(options)));
  GANNET_RETURN_IF_ERROR(log->recover());
  return log;
}

Status Log::remove_segment_files(std::span<const int64_t> bases) {
  for (int64_t base : bases) {
    LOG(WARNING) << dir_ << ": deleting segment " << base << " found after lost or corrupt data";
    for (const char* suffix : {".log", ".index", ".timeindex"}) {
      std::string p = join_path(dir_, Segment::file_name(base, suffix));
      if (fs_->exists(p)) GANNET_RETURN_IF_ERROR(fs_->remove_file(p));
    }
  }
  return {};
}

Status Log::recover_compaction_files() {
  GANNET_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->list_dir(dir_));
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  static const std::string kCleaned = ".cleaned", kSwap = ".swap";
  std::vector<int64_t> swap_bases, live_bases;
  bool changed = false;
  for (const std::string& name : names) {
    if (ends_with(name, kCleaned)) {
      // A clean that never reached its swap: the segments it would have replaced are intact.
      GANNET_RETURN_IF_ERROR(fs_->remove_file(join_path(dir_, name)));
      changed = true;
    } else if (ends_with(name, kSwap)) {
      if (auto base = Segment::parse_log_name(name.substr(0, name.size() - kSwap.size()))) {
        swap_bases.push_back(*base);
      }
    } else if (auto base = Segment::parse_log_name(name)) {
      live_bases.push_back(*base);
    }
  }
  std::sort(swap_bases.begin(), swap_bases.end());
  const LogConfig cfg = config();
  // A ".swap" segment was durably committed by a swap that a crash interrupted: it replaces
  // every live segment starting inside its range (they are what it was cleaned from), then
  // takes its final name. Old files go durably before the renames, as in the swap itself.
  std::vector<std::shared_ptr<Segment>> swapped;
  for (int64_t base : swap_bases) {
    GANNET_ASSIGN_OR_RETURN(std::shared_ptr<Segment> seg,
                            Segment::open(fs_, dir_, base, /*recover=*/true,
                                          cfg.index_interval_bytes, nullptr, kSwap));
    for (int64_t live : live_bases) {
      if (live < base || live >= seg->next_offset()) continue;
      LOG(INFO) << dir_ << ": finishing an interrupted compaction swap: segment " << live
                << " is replaced by cleaned segment " << base;
      for (const char* suffix : {".log", ".index", ".timeindex"}) {
        const std::string p = join_path(dir_, Segment::file_name(live, suffix));
        if (fs_->exists(p)) GANNET_RETURN_IF_ERROR(fs_->remove_file(p));
      }
    }
    swapped.push_back(std::move(seg));
    changed = true;
  }
  if (!swapped.empty()) GANNET_RETURN_IF_ERROR(fs_->sync_dir(dir_));
  for (const auto& seg : swapped) GANNET_RETURN_IF_ERROR(seg->rename_files(""));
  // Index files whose segment already took its final name are stale copies: rebuilt on open.
  GANNET_ASSIGN_OR_RETURN(names, fs_->list_dir(dir_));
  for (const std::string& name : names) {
    if (ends_with(name, kSwap)) {
      GANNET_RETURN_IF_ERROR(fs_->remove_file(join_path(dir_, name)));
      changed = true;
    }
  }
  if (changed) GANNET_RETURN_IF_ERROR(fs_->sync_dir(dir_));
  return {};
}

Status Log::recover() {
  GANNET_RETURN_IF_ERROR(fs_->create_dirs(dir_));
  GANNET_RETURN_IF_ERROR(recover_compaction_files());
  GANNET_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->list_dir(dir_));
  std::vector<int64_t> bases;
  std::vector<std::string> index_files;
  auto ends_with = [](const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
  };
  for (const std::string& name : names) {
    if (auto base = Segment::parse_log_name(name)) {
      bases.push_back(*base);
    } else if (ends_with(name, ".tmp")) {
      GANNET_RETURN_IF_ERROR(fs_->remove_file(join_path(dir_, name)));  // unfinished write
    } else if (ends_with(name, ".index") || ends_with(name, ".timeindex")) {
      index_files.push_back(name);
    }
  }
  std::sort(bases.begin(), bases.end());
  for (const std::string& name : index_files) {  // indexes of deleted segments
    const std::string log_name = name.substr(0, name.find('.')) + ".log";
    if (!Segment::parse_log_name(log_name) ||
        !std::binary_search(bases.begin(), bases.end(), *Segment::parse_log_name(log_name))) {
      GANNET_RETURN_IF_ERROR(fs_->remove_file(join_path(dir_, name)));
    }
  }
  // Segments from recover_from on are re-validated batch by batch.
  size_t recover_from = 0;
  if (clean_shutdown_) {
    recover_from = bases.size();
  } else if (initial_recovery_point_) {
    while (recover_from + 1 < bases.size() && bases[recover_from + 1] <= *initial_recovery_point_) {
      ++recover_from;
    }
  }
  const LogConfig cfg = config();
  SegmentList list;
  bool recovered_any = false;
  for (size_t i = 0; i < bases.size(); ++i) {
    uint64_t truncated = 0;
    const bool recover = i >= recover_from;
    GANNET_ASSIGN_OR_RETURN(std::shared_ptr<Segment> seg,
                            Segment::open(fs_, dir_, bases[i], recover, cfg.index_interval_bytes,
                                          &truncated));
    recovered_any |= recover;
    if (!list.empty() && seg->base_offset() < list.back()->next_offset()) {
      return make_error(Errc::kCorruptMessage,
                        dir_ + ": segment " + std::to_string(seg->base_offset()) +
                            " overlaps the previous one, which ends at " +
                            std::to_string(list.back()->next_offset()));
    }
    // A segment is created at its predecessor's end, so one that starts later sits after lost
    // unsynced data (the OS wrote a later file back before an earlier one): it and everything
    // after it are not a prefix of the log and must go. (Log compaction, when it comes, must
    // keep this contiguity or record its gaps.)
    if (!list.empty() && seg->base_offset() != list.back()->next_offset()) {
      LOG(WARNING) << dir_ << ": segment " << bases[i] << " does not start where segment "
                   << list.back()->base_offset() << " ends (" << list.back()->next_offset()
                   << "); deleting it and any later segment";
      GANNET_RETURN_IF_ERROR(remove_segment_files(std::span(bases).subspan(i)));
      break;
    }
    const int64_t first_ts = seg->first_timestamp();
    seg->set_roll_base_ms(first_ts >= 0 ? std::min(first_ts, clock_->now_ms()) : clock_->now_ms());
    list.push_back(seg);
    if (truncated > 0) {
      LOG(WARNING) << dir_ << ": recovery cut " << truncated << " bytes of torn or corrupt data "
                   << "from segment " << bases[i] << "; log end is now " << seg->next_offset();
      // Nothing after a bad batch can be trusted: later segments go too.
      GANNET_RETURN_IF_ERROR(remove_segment_files(std::span(bases).subspan(i + 1)));
      break;
    }
  }
  const bool brand_new = list.empty();
  if (list.empty()) {
    const int64_t start = initial_recovery_point_.value_or(0);
    GANNET_ASSIGN_OR_RETURN(std::shared_ptr<Segment> seg, Segment::create(fs_, dir_, start));
    seg->set_roll_base_ms(clock_->now_ms());
    list.push_back(seg);
  }
  if (recovered_any) {
    // What recovery kept is made durable now, so the recovery point can start at the log end.
    for (size_t i = std::min(recover_from, list.size() - 1); i < list.size(); ++i) {
      GANNET_RETURN_IF_ERROR(list[i]->sync_log());
      if (i + 1 < list.size()) GANNET_RETURN_IF_ERROR(list[i]->write_indexes(/*sync=*/true));
    }
  }
  if (brand_new && options_defer_new_dir_sync_) {
    dir_sync_pending_ = true;
  } else {
    GANNET_RETURN_IF_ERROR(fs_->sync_dir(dir_));
  }
  log_start_.store(list.front()->base_offset());
  log_end_.store(list.back()->next_offset());
  recovery_point_ = list.back()->next_offset();
  last_flush_ms_ = clock_->monotonic_ms();
  {
    std::lock_guard<std::mutex> l(segments_mu_);
    segments_ = std::make_shared<SegmentList>(std::move(list));
  }
  GANNET_ASSIGN_OR_RETURN(epoch_cache_, LeaderEpochCache::load(fs_, dir_));
  GANNET_RETURN_IF_ERROR(epoch_cache_->truncate_from_end(log_end_offset()));
  GANNET_RETURN_IF_ERROR(epoch_cache_->truncate_from_start(log_start_offset()));
  first_dirty_.store(log_start_offset());
  std::lock_guard<std::mutex> l(append_mu_);
  return rebuild_producer_state_locked();
}

Status Log::rebuild_producer_state_locked() {
  producers_.clear();
  if (!track_producers_) return {};
  GANNET_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->list_dir(dir_));
  std::vector<int64_t> offsets;
  for (const std::string& name : names) {
    if (auto o = ProducerStateTable::parse_snapshot_name(name)) offsets.push_back(*o);
  }
  std::sort(offsets.rbegin(), offsets.rend());
  const int64_t end = log_end_offset();
  int64_t from = log_start_offset();
  bool loaded = false, removed = false;
  for (int64_t o : offsets) {
    const std::string path = join_path(dir_, ProducerStateTable::snapshot_name(o));
    if (o > end) {
      // Taken of records this log no longer holds (truncated, or lost in a crash). Its removal
      // is made durable below, before anything can be appended past its offset again.
      GANNET_RETURN_IF_ERROR(fs_->remove_file(path));
      removed = true;
      continue;
    }
    if (loaded) continue;
    auto bytes = read_file(fs_, path);
    auto at = bytes.ok() ? producers_.load_snapshot(*bytes) : Result<int64_t>(bytes.error());
    if (!at.ok() || *at != o) {
      LOG(WARNING) << dir_ << ": ignoring producer snapshot " << o << ": "
                   << (at.ok() ? "its offset does not match its name" : at.error().to_string());
      producers_.clear();
      GANNET_RETURN_IF_ERROR(fs_->remove_file(path));
      removed = true;
      continue;
    }
    loaded = true;
    from = std::max(from, o);
  }
  if (removed) GANNET_RETURN_IF_ERROR(fs_->sync_dir(dir_));
  // The batches after the snapshot, from their headers. A replayed producer counts as active
  // now: its idle time before the restart is not known.
  const int64_t now = clock_->now_ms();
  for (const auto& seg : *segments()) {
    if (seg->next_offset() <= from || seg->empty()) continue;
    uint64_t pos = 0;
    if (from > seg->base_offset()) {
      GANNET_ASSIGN_OR_RETURN(pos, seg->position_of(from));
    }
    GANNET_ASSIGN_OR_RETURN(std::vector<BatchInfo> infos, seg->scan(pos, seg->end_position()));
    for (const BatchInfo& b : infos) {
      if (b.base_offset >= from) producers_.update(ProducerBatchInfo::of(b), now);
    }
  }
  return {};
}

Status Log::write_producer_snapshot_locked() {
  if (!track_producers_) return {};
  const int64_t offset = log_end_offset();
  Status st = write_file_atomic(fs_, join_path(dir_, ProducerStateTable::snapshot_name(offset)),
                                producers_.encode_snapshot(offset));
  if (!st.ok()) return st;
  // The two newest stay: the older one serves a truncation below the newer one.
  GANNET_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->list_dir(dir_));
  std::vector<int64_t> offsets;
  for (const std::string& name : names) {
    if (auto o = ProducerStateTable::parse_snapshot_name(name)) offsets.push_back(*o);
  }
  std::sort(offsets.rbegin(), offsets.rend());
  for (size_t i = 2; i < offsets.size(); ++i) {
    GANNET_RETURN_IF_ERROR(fs_->remove_file(join_path(dir_, ProducerStateTable::snapshot_name(offsets[i]))));
  }
  return {};
}

size_t Log::expire_producers() {
  std::lock_guard<std::mutex> l(append_mu_);
  return producers_.expire(clock_->now_ms(), config().producer_id_expiration_ms);
}

ProducerStateTable Log::producer_state() const {
  std::lock_guard<std::mutex> l(append_mu_);
  return producers_;
}

int64_t Log::first_dirty_offset() const {
  return std::clamp(first_dirty_.load(std::memory_order_acquire), log_start_offset(),
                    std::max(log_start_offset(), log_end_offset()));
}

void Log::set_first_dirty_offset(int64_t offset) {
  std::lock_guard<std::mutex> l(append_mu_);
  // Never past the log end: data appended there after a crash lost some is dirty.
  first_dirty_.store(std::min(offset, log_end_offset()), std::memory_order_release);
}

bool Log::try_begin_clean() {
  std::lock_guard<std::mutex> l(clean_mu_);
  if (cleaning_ || clean_aborted() || offline()) return false;
  cleaning_ = true;
  // Any truncation or retention from here on moves the generation: the swap then gives up, even
  // if a truncated source regrew to the same end (same Segment object, different contents).
  clean_generation_ = generation_.load(std::memory_order_acquire);
  return true;
}

void Log::end_clean() {
  std::lock_guard<std::mutex> l(clean_mu_);
  cleaning_ = false;
  clean_cv_.notify_all();
}

void Log::abort_and_wait_for_clean() {
  clean_abort_.store(true, std::memory_order_release);
  std::unique_lock<std::mutex> l(clean_mu_);
  clean_cv_.wait(l, [this] { return !cleaning_; });
}

Result<bool> Log::swap_cleaned_segments(const std::vector<CleanedSource>& sources,
                                        const SegmentList& cleaned, int64_t first_dirty) {
  auto abandon = [&](const std::string& why) -> Result<bool> {
    LOG(INFO) << dir_ << ": compaction swap abandoned: " << why;
    for (const auto& seg : cleaned) {
      Status st = seg->remove_files();
      if (!st.ok()) return st.error();
    }
    return false;
  };
  std::lock_guard<std::mutex> l(append_mu_);
  if (closed_ || offline() || clean_aborted()) return abandon("the log is closed");
  if (generation_.load() != clean_generation_) {
    return abandon("the log was truncated or retention ran during the clean");
  }
  const auto current = segments();
  if (sources.empty() || cleaned.empty() || current->size() <= sources.size()) {
    return abandon("the log has fewer segments than were cleaned");
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    // A truncation cuts the segment in place or replaces it; retention and deletion replace the
    // list. Either way what was cleaned is not what the log holds any more.
    if ((*current)[i] != sources[i].segment ||
        sources[i].segment->end_position() != sources[i].end_position) {
      return abandon("segment " + std::to_string(sources[i].segment->base_offset()) +
                     " changed during the clean");
    }
  }
  DCHECK_EQ(cleaned.front()->base_offset(), sources.front().segment->base_offset());
  DCHECK_EQ(cleaned.back()->next_offset(), sources.back().segment->next_offset());
  // Commit: once the ".swap" names are durable, recovery finishes the swap (in offset order, so
  // a file system that persisted only some renames holds a prefix of them, which is a valid
  // log too: each cleaned segment drops only records with a later copy or an expired
  // tombstone).
  for (const auto& seg : cleaned) {
    Status st = seg->rename_files(".swap");
    if (!st.ok()) return fail(st.error()).error();
  }
  Status st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error()).error();
  // The replaced segments go durably before the new files take their names: a stale index of
  // an old segment with the same base offset, or an old segment overlapping a new one, never
  // survives a crash. Readers holding the old segments keep reading them through open handles.
  for (const auto& src : sources) {
    std::erase(pending_sync_, src.segment);
    st = src.segment->remove_files();
    if (!st.ok()) return fail(st.error()).error();
  }
  st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error()).error();
  for (const auto& seg : cleaned) {
    st = seg->rename_files("");
    if (!st.ok()) return fail(st.error()).error();
  }
  st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error()).error();
  SegmentList next = cleaned;
  next.insert(next.end(), current->begin() + static_cast<ptrdiff_t>(sources.size()), current->end());
  publish_segments_locked(std::move(next));
  int64_t cur = first_dirty_.load();
  while (first_dirty > cur && !first_dirty_.compare_exchange_weak(cur, first_dirty)) {
  }
  return true;
}

Status Log::check_keys_for_compaction(std::span<const uint8_t> batches,
                                      const std::vector<BatchInfo>& infos) const {
  for (const BatchInfo& b : infos) {
    RecordBatchView v(batches.data() + b.position, b.size);
    if (v.is_control()) continue;  // transaction markers carry their own keys
    GANNET_ASSIGN_OR_RETURN(RecordIterator it, RecordIterator::create(v));
    Record rec;
    for (int i = 0;; ++i) {
      GANNET_ASSIGN_OR_RETURN(bool more, it.next(&rec));
      if (!more) break;
      if (!rec.key) {
        return make_error(Errc::kInvalidRecord,
                          "compacted topic: record " + std::to_string(i) + " of the batch at byte " +
                              std::to_string(b.position) +
                              " has a null key (cleanup.policy=compact keeps the latest record "
                              "per key, so every record needs one)");
      }
    }
  }
  return {};
}

LogConfig Log::config() const {
  std::lock_guard<std::mutex> l(config_mu_);
  return config_;
}

void Log::set_config(const LogConfig& config) {
  std::lock_guard<std::mutex> a(append_mu_);  // append_mu_ before config_mu_, as appends take them
  producers_.set_max_producers(static_cast<size_t>(config.max_producers_per_partition));
  std::lock_guard<std::mutex> l(config_mu_);
  config_ = config;
}

std::shared_ptr<const Log::SegmentList> Log::segments() const {
  std::lock_guard<std::mutex> l(segments_mu_);
  return segments_;
}

void Log::publish_segments_locked(SegmentList list) {
  auto snapshot = std::make_shared<const SegmentList>(std::move(list));
  std::lock_guard<std::mutex> l(segments_mu_);
  segments_ = std::move(snapshot);
}

size_t Log::segment_count() const { return segments()->size(); }

uint64_t Log::size_bytes() const {
  uint64_t total = 0;
  for (const auto& s : *segments()) total += s->size_bytes();
  return total;
}

std::vector<int64_t> Log::segment_base_offsets() const {
  std::vector<int64_t> out;
  for (const auto& s : *segments()) out.push_back(s->base_offset());
  return out;
}

int64_t Log::durable_offset() const {
  std::lock_guard<std::mutex> l(flush_mu_);
  return recovery_point_;
}

void Log::update_high_watermark(int64_t hw) {
  int64_t cur = high_watermark_.load();
  while (hw > cur && !high_watermark_.compare_exchange_weak(cur, hw)) {
  }
}

Status Log::fail(Error e) {
  if (!offline_.exchange(true)) {
    LOG(ERROR) << dir_ << ": log is offline after an I/O error: " << e.to_string();
  }
  return e;
}

Status Log::parse_batches(std::span<uint8_t> batches, std::vector<BatchInfo>* infos,
                          size_t max_batch_bytes, bool from_client) const {
  if (batches.empty()) return make_error(Errc::kInvalidRecord, "no record batch to append");
  size_t pos = 0;
  while (pos < batches.size()) {
    const uint8_t* p = batches.data() + pos;
    const size_t avail = batches.size() - pos;
    GANNET_ASSIGN_OR_RETURN(size_t size, peek_batch_size(p, avail, max_batch_bytes));
    if (size > avail) {
      return make_error(Errc::kCorruptMessage, "batch at byte " + std::to_string(pos) +
                                                   " declares " + std::to_string(size) +
                                                   " bytes but only " + std::to_string(avail) +
                                                   " remain");
    }
    GANNET_RETURN_IF_ERROR(validate_batch(p, size));
    RecordBatchView v(p, size);
    if (from_client && (v.record_count() <= 0 ||
                        static_cast<int64_t>(v.record_count()) != int64_t{v.last_offset_delta()} + 1)) {
      // A producer's batch holds exactly one record per offset it spans (only compaction, on a
      // leader, leaves gaps).
      return make_error(Errc::kInvalidRecord,
                        "batch at byte " + std::to_string(pos) + " has " +
                            std::to_string(v.record_count()) + " records but spans " +
                            std::to_string(int64_t{v.last_offset_delta()} + 1) + " offsets");
    }
    if (!from_client && (v.base_offset() < 0 || v.base_offset() > INT64_MAX / 2)) {
      return make_error(Errc::kInvalidOffset,
                        "batch at byte " + std::to_string(pos) + " has base offset " +
                            std::to_string(v.base_offset()));
    }
    infos->push_back(BatchInfo::of(v, pos, size));
    pos += size;
  }
  return {};
}

Result<AppendResult> Log::append(std::span<uint8_t> batches, int32_t leader_epoch, bool defer_flush) {
  std::vector<BatchInfo> infos;
  const LogConfig cfg = config();
  GANNET_RETURN_IF_ERROR(parse_batches(batches, &infos,
                                       static_cast<size_t>(cfg.max_message_bytes),
                                       /*from_client=*/true));
  if (cfg.cleanup_compact) GANNET_RETURN_IF_ERROR(check_keys_for_compaction(batches, infos));
  Result<AppendResult> result = AppendResult{};
  int64_t flush_target = -1;
  {
    std::lock_guard<std::mutex> l(append_mu_);
    GANNET_RETURN_IF_ERROR(check_writable_locked());
    // Offsets come from the log end and each batch's own span, never from the client's base
    // offset (which may be anything). An idempotent producer's retry of batches already here
    // (a prefix of the request: sequences only go up) is answered with their offsets instead.
    int64_t next = log_end_offset();
    const int64_t now = clock_->now_ms();
    ProducerStateTable::Pending pending;
    size_t dups = 0;
    int64_t dup_first = -1, dup_last = -1;
    for (size_t i = 0; i < infos.size(); ++i) {
      BatchInfo& b = infos[i];
      const int64_t span = RecordBatchView(batches.data() + b.position, b.size).last_offset_delta();
      b.base_offset = next;
      b.last_offset = next + span;
      b.leader_epoch = leader_epoch;
      if (track_producers_) {
        GANNET_ASSIGN_OR_RETURN(std::optional<ProducerBatch> dup,
                                producers_.check(ProducerBatchInfo::of(b), now, &pending));
        if (dup) {
          if (i != dups) {
            return make_error(Errc::kOutOfOrderSequence, "a retried batch follows new batches of its producer");
          }
          if (dups++ == 0) dup_first = dup->first_offset;
          dup_last = dup->last_offset;
          continue;
        }
      }
      next = b.last_offset + 1;
    }
    if (dups == infos.size()) {
      AppendResult r;
      r.base_offset = dup_first;
      r.last_offset = dup_last;
      r.duplicate = true;
      // Acknowledged only as durably as the original would be.
      if (cfg.flush_messages <= 1 && durable_offset() <= dup_last) flush_target = dup_last + 1;
      result = r;
    } else {
      if (dups > 0) {
        const uint64_t cut = infos[dups].position;
        infos.erase(infos.begin(), infos.begin() + static_cast<ptrdiff_t>(dups));
        for (BatchInfo& b : infos) b.position -= cut;
        batches = batches.subspan(cut);
      }
      result = append_locked(batches, infos, leader_epoch);
      if (result.ok()) {
        producers_.commit(std::move(pending));
        if (dups > 0) result->base_offset = dup_first;
      }
      if (result.ok() && unflushed_messages_ >= config().flush_messages) flush_target = next;
    }
  }
  if (defer_flush) {
    if (result.ok()) result->flush_to = flush_target;
    return result;
  }
  if (flush_target >= 0) GANNET_RETURN_IF_ERROR(flush_to(flush_target));
  return result;
}

Result<AppendResult> Log::append_as_follower(std::span<uint8_t> batches) {
  std::vector<BatchInfo> infos;
  // A follower stores what its leader accepted, whatever its own max.message.bytes.
  GANNET_RETURN_IF_ERROR(parse_batches(batches, &infos, kMaxBatchBytes, /*from_client=*/false));
  Result<AppendResult> result = AppendResult{};
  int64_t flush_target = -1;
  {
    std::lock_guard<std::mutex> l(append_mu_);
    GANNET_RETURN_IF_ERROR(check_writable_locked());
    int64_t expected = log_end_offset();
    // Check the whole request before changing anything.
    for (const BatchInfo& b : infos) {
      if (b.base_offset < expected || b.last_offset < b.base_offset) {
        return make_error(Errc::kInvalidOffset,
                          "follower batch at offset " + std::to_string(b.base_offset) +
                              " does not follow offset " + std::to_string(expected - 1));
      }
      expected = b.last_offset + 1;
    }
    // A compacted leader may skip offsets, but a segment holds 32-bit relative offsets and starts
    // where its predecessor ends: a request that no segment rolled at the log end could hold is
    // refused, except on an empty log, which simply restarts at the request's first offset.
    const std::shared_ptr<Segment> active = segments()->back();
    if (infos.back().last_offset - log_end_offset() > INT32_MAX) {
      if (segments()->size() == 1 && active->empty() &&
          infos.back().last_offset - infos.front().base_offset <= INT32_MAX) {
        GANNET_RETURN_IF_ERROR(truncate_fully_locked(infos.front().base_offset));
        GANNET_RETURN_IF_ERROR(notify_recovery_point_lowered_locked());
      } else {
        return make_error(Errc::kInvalidOffset,
                          "follower request up to offset " + std::to_string(infos.back().last_offset) +
                              " is too far past the log end " + std::to_string(log_end_offset()));
      }
    }
    result = append_locked(batches, infos, /*leader_epoch=*/-1);
    if (result.ok() && track_producers_) {
      const int64_t now = clock_->now_ms();
      for (const BatchInfo& b : infos) producers_.update(ProducerBatchInfo::of(b), now);
    }
    if (result.ok() && unflushed_messages_ >= config().flush_messages) flush_target = expected;
  }
  if (flush_target >= 0) GANNET_RETURN_IF_ERROR(flush_to(flush_target));
  return result;
}

Status Log::check_writable_locked() const {
  if (offline()) return make_error(Errc::kLogOffline, dir_ + " is offline");
  if (closed_) return make_error(Errc::kLogOffline, dir_ + " is closed");
  return {};
}

Result<AppendResult> Log::append_locked(std::span<uint8_t> batches, std::vector<BatchInfo>& infos,
                                        int32_t leader_epoch) {
  const LogConfig cfg = config();
  GANNET_RETURN_IF_ERROR(maybe_roll_locked(batches.size(), infos.back().last_offset));
  std::shared_ptr<Segment> active = segments()->back();
  if (infos.back().last_offset - active->base_offset() > INT32_MAX) {
    // One request spanning more offsets than a segment can index (rolling did not help).
    return make_error(Errc::kInvalidRecord, "request spans more than 2^31 offsets");
  }
  // The epochs go into the checkpoint before the batches that start them reach the log (also an
  // epoch a new leader assigned in memory only).
  for (const BatchInfo& b : infos) {
    const int32_t epoch = leader_epoch >= 0 ? leader_epoch : b.leader_epoch;
    auto latest = epoch_cache_->latest();
    if (epoch >= 0 && (!latest || epoch > latest->epoch)) {
      Status st = epoch_cache_->assign(epoch, b.base_offset);
      if (!st.ok()) return fail(st.error()).error();
    }
  }
  if (Status st = epoch_cache_->persist_if_dirty(); !st.ok()) return fail(st.error()).error();
  if (leader_epoch >= 0) {
    for (const BatchInfo& b : infos) {
      uint8_t* p = batches.data() + b.position;
      set_base_offset(p, b.base_offset);
      set_leader_epoch(p, leader_epoch);
    }
  }
  Status st = active->append(batches.data(), batches.size(), infos, cfg.index_interval_bytes,
                             std::min(cfg.segment_preallocate_bytes, cfg.segment_bytes));
  if (!st.ok()) return fail(st.error()).error();
  AppendResult r;
  r.base_offset = infos.front().base_offset;
  r.last_offset = infos.back().last_offset;
  r.batch_count = static_cast<int32_t>(infos.size());
  r.bytes = batches.size();
  for (const BatchInfo& b : infos) {
    r.record_count += b.record_count;
    r.max_timestamp = std::max(r.max_timestamp, b.max_timestamp);
  }
  unflushed_messages_ += r.record_count;
  log_end_.store(r.last_offset + 1, std::memory_order_release);
  return r;
}

Status Log::maybe_roll_locked(size_t incoming, int64_t last_offset) {
  const LogConfig cfg = config();
  const std::shared_ptr<Segment>& active = segments()->back();
  if (active->empty()) return {};
  const bool full = active->size_bytes() + incoming > static_cast<uint64_t>(cfg.segment_bytes);
  const bool old = clock_->now_ms() - active->roll_base_ms() >= cfg.segment_ms;
  // Index entries hold 32-bit relative offsets and positions.
  const bool offsets_overflow = last_offset - active->base_offset() > INT32_MAX;
  const bool position_overflow = active->size_bytes() + incoming > UINT32_MAX;
  if (!full && !old && !offsets_overflow && !position_overflow) return {};
  return roll_locked(log_end_offset());
}

Status Log::roll_locked(int64_t base_offset) {
  auto current = segments();
  auto created = Segment::create(fs_, dir_, base_offset);
  if (!created.ok()) return fail(created.error());
  std::shared_ptr<Segment> seg = std::move(created).value();
  seg->set_roll_base_ms(clock_->now_ms());
  // The new file's name must be durable before anything synced into it can count.
  Status st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error());
  // The old active segment's indexes are complete now; flush() syncs them with its log.
  current->back()->release_preallocated();
  st = current->back()->write_indexes(/*sync=*/false);
  if (!st.ok()) return fail(st.error());
  pending_sync_.push_back(current->back());
  SegmentList next = *current;
  next.push_back(std::move(seg));
  publish_segments_locked(std::move(next));
  // A snapshot of the producers at the new segment's base, so a restart replays one segment.
  // Best effort: without it a restart replays from an older one.
  st = write_producer_snapshot_locked();
  if (!st.ok()) LOG(WARNING) << dir_ << ": producer snapshot at roll: " << st.error().to_string();
  return {};
}

Status Log::flush() { return flush_to(log_end_offset()); }

Status Log::flush_to(int64_t offset) {
  std::unique_lock<std::mutex> fl(flush_mu_);
  while (true) {
    if (offline()) return make_error(Errc::kLogOffline, dir_ + " is offline");
    if (recovery_point_ >= offset) return {};
    if (!flushing_) break;
    flush_cv_.wait(fl);
  }
  flushing_ = true;
  fl.unlock();

  int64_t target;
  uint64_t generation;
  SegmentList rolled;
  std::shared_ptr<Segment> active;
  {
    std::lock_guard<std::mutex> l(append_mu_);
    target = log_end_offset();
    generation = generation_.load();
    rolled.swap(pending_sync_);
    active = segments()->back();
    unflushed_messages_ = 0;
    last_flush_ms_ = clock_->monotonic_ms();
  }
  // Syncing outside append_mu_ lets appends continue; they join the next group commit.
  Status st;
  for (const auto& seg : rolled) {
    st = seg->sync_log();
    if (st.ok()) st = seg->write_indexes(/*sync=*/true);
    if (!st.ok()) break;
  }
  if (st.ok()) st = active->sync_log();
  // A new segment's name (or a new log's first segment, see defer_new_dir_sync) must be durable
  // before what was synced into it counts.
  const bool new_dir = dir_sync_pending_.exchange(false);
  if (st.ok() && new_dir && before_new_dir_sync_) st = before_new_dir_sync_();
  if (st.ok() && (new_dir || !rolled.empty())) st = fs_->sync_dir(dir_);
  if (!st.ok()) (void)fail(st.error());  // after a failed fsync the page cache cannot be trusted

  fl.lock();
  flushing_ = false;
  if (st.ok() && generation_.load() == generation) {
    recovery_point_ = std::max(recovery_point_, target);
  }
  flush_cv_.notify_all();
  if (!st.ok()) return st;
  fl.unlock();
  // If a truncation raced with this sync, or offset was beyond target, go again.
  return flush_to(std::min(offset, log_end_offset()));
}

Status Log::flush_if_due() {
  {
    std::lock_guard<std::mutex> l(append_mu_);
    if (unflushed_messages_ == 0) return {};
    // Compare elapsed time, never last + flush.ms: the default flush.ms is INT64_MAX.
    if (clock_->monotonic_ms() - last_flush_ms_ < config().flush_ms) return {};
  }
  return flush();
}

Result<ReadResult> Log::read(int64_t offset, size_t max_bytes, const ReadOptions& options) const {
  for (int attempt = 0;; ++attempt) {
    // Writers that shrink the log (truncation, retention) bump generation_ before and after the
    // change (a seqlock): an odd value or a change during the read means retry.
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    auto r = read_once(offset, max_bytes, options);
    const bool stable = generation % 2 == 0 &&
                        generation_.load(std::memory_order_acquire) == generation;
    if (stable) return r;
    if (attempt >= 50) {
      // Starved by a stream of truncations: read once with writers held off.
      std::lock_guard<std::mutex> l(append_mu_);
      return read_once(offset, max_bytes, options);
    }
    std::this_thread::yield();
  }
}

Result<ReadResult> Log::read_once(int64_t offset, size_t max_bytes,
                                  const ReadOptions& options) const {
  auto list = segments();
  ReadResult out;
  out.log_start_offset = log_start_offset();
  out.log_end_offset = log_end_offset();
  if (offset < out.log_start_offset || offset > out.log_end_offset) {
    return make_error(Errc::kOffsetOutOfRange,
                      "offset " + std::to_string(offset) + " is outside [" +
                          std::to_string(out.log_start_offset) + ", " +
                          std::to_string(out.log_end_offset) + "]");
  }
  const int64_t upper = std::min(out.log_end_offset, options.max_offset);
  auto it = std::upper_bound(list->begin(), list->end(), offset,
                             [](int64_t o, const std::shared_ptr<Segment>& s) {
                               return o < s->base_offset();
                             });
  if (it != list->begin()) --it;
  size_t remaining = max_bytes;
  bool first = true;
  for (; it != list->end() && offset < upper; ++it) {
    const Segment& seg = **it;
    uint64_t start = 0;
    if (first) {
      GANNET_ASSIGN_OR_RETURN(start, seg.position_of(offset));
    }
    first = false;
    uint64_t end = seg.end_position();
    if (upper < seg.next_offset()) {
      GANNET_ASSIGN_OR_RETURN(end, seg.position_of(upper));
    }
    if (end <= start) continue;
    bool limited = false;
    if (end - start > remaining) {
      if ((out.bytes > 0 || !options.min_one_batch) && remaining == 0) break;
      GANNET_ASSIGN_OR_RETURN(uint64_t b, seg.batch_boundary_before(start, start + remaining));
      if (b - start > remaining && (out.bytes > 0 || !options.min_one_batch)) break;
      end = std::min(end, b);
      limited = true;
    }
    if (end > start) {
      out.slices.push_back(FileSlice{seg.log_file(), start, end - start});
      out.bytes += end - start;
      remaining -= std::min<uint64_t>(remaining, end - start);
    }
    if (limited || remaining == 0) break;
  }
  return out;
}

Result<std::optional<TimestampOffset>> Log::offset_for_timestamp(int64_t timestamp) const {
  auto list = segments();
  for (const auto& seg : *list) {
    uint64_t from = 0;
    while (true) {
      GANNET_ASSIGN_OR_RETURN(std::optional<BatchInfo> b,
                              seg->first_batch_with_timestamp(timestamp, from));
      if (!b) break;
      std::string bytes(b->size, '\0');
      GANNET_ASSIGN_OR_RETURN(size_t n, seg->log_file()->read_at(b->position, bytes.data(), b->size));
      if (n != b->size) return make_error(Errc::kIoError, "short read of a log segment");
      RecordBatchView view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      GANNET_ASSIGN_OR_RETURN(RecordIterator iter, RecordIterator::create(view));
      Record rec;
      while (true) {
        GANNET_ASSIGN_OR_RETURN(bool more, iter.next(&rec));
        if (!more) break;
        if (rec.timestamp >= timestamp) {
          return std::optional<TimestampOffset>({rec.timestamp, rec.offset});
        }
      }
      // The header's max timestamp promised more than its records hold: go on after it.
      from = b->position + b->size;
    }
  }
  return std::optional<TimestampOffset>();
}

Status Log::truncate_to(int64_t offset) {
  std::lock_guard<std::mutex> l(append_mu_);
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  if (offset >= log_end_offset()) return {};
  GANNET_RETURN_IF_ERROR(offset <= log_start_offset() ? truncate_fully_locked(offset)
                                                      : truncate_locked(offset));
  return notify_recovery_point_lowered_locked();
}

Status Log::notify_recovery_point_lowered_locked() {
  // Still under append_mu_: no append can slip in between the truncation and the checkpoint.
  if (!on_recovery_point_lowered_) return {};
  Status st = on_recovery_point_lowered_();
  if (!st.ok()) return fail(st.error());
  return {};
}

void Log::detach_recovery_point_listener() {
  std::lock_guard<std::mutex> l(append_mu_);
  on_recovery_point_lowered_ = nullptr;
}

void Log::mark_deleted() {
  {
    std::lock_guard<std::mutex> l(append_mu_);
    closed_ = true;
    on_recovery_point_lowered_ = nullptr;
  }
  // The directory is about to be renamed and removed: no cleaner may write into it after this.
  abort_and_wait_for_clean();
}

Status Log::truncate_locked(int64_t offset) {
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  // Crash safety: at every step the files on disk hold a prefix of the old log. Whole segments
  // go first, from the last one back, and their removal is made durable before the segment
  // that keeps a part is cut; the cut is synced before the epoch cache forgets the epochs.
  SegmentList list = *segments();
  SegmentList doomed;
  while (list.size() > 1 && list.back()->base_offset() >= offset) {
    doomed.push_back(list.back());
    list.pop_back();
  }
  GenerationWrite generation_write(generation_);  // odd until this function returns
  publish_segments_locked(list);
  for (const auto& seg : doomed) {
    std::erase(pending_sync_, seg);
    Status st = seg->remove_files();
    if (!st.ok()) return fail(st.error());
  }
  if (!doomed.empty()) {
    Status st = fs_->sync_dir(dir_);
    if (!st.ok()) return fail(st.error());
  }
  Status st = list.back()->truncate_to(offset);
  if (st.ok()) st = list.back()->sync_log();
  if (!st.ok()) return fail(st.error());
  log_end_.store(list.back()->next_offset());
  // What is appended here next was never seen by the cleaner.
  first_dirty_.store(std::min(first_dirty_.load(), log_end_offset()));
  st = epoch_cache_->truncate_from_end(log_end_offset());
  if (!st.ok()) return fail(st.error());
  // The producers as of the new end: from a snapshot below the cut plus the batches after it.
  st = rebuild_producer_state_locked();
  if (!st.ok()) return fail(st.error());
  std::lock_guard<std::mutex> fl(flush_mu_);
  recovery_point_ = std::min(recovery_point_, log_end_offset());
  return {};
}

Status Log::truncate_fully_and_start_at(int64_t offset) {
  std::lock_guard<std::mutex> l(append_mu_);
  GANNET_RETURN_IF_ERROR(truncate_fully_locked(offset));
  return notify_recovery_point_lowered_locked();
}

Status Log::truncate_fully_locked(int64_t offset) {
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  // Every old segment is removed durably before the new one exists, so a crash in between
  // leaves an empty log rather than old data followed by a gap.
  SegmentList old = *segments();
  GenerationWrite generation_write(generation_);  // odd until this function returns
  pending_sync_.clear();
  for (const auto& seg : old) {
    Status st = seg->remove_files();
    if (!st.ok()) return fail(st.error());
  }
  Status st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error());
  st = epoch_cache_->clear();
  if (!st.ok()) return fail(st.error());
  producers_.clear();
  if (track_producers_) {
    auto names = fs_->list_dir(dir_);
    if (!names.ok()) return fail(names.error());
    for (const std::string& name : *names) {
      if (!ProducerStateTable::parse_snapshot_name(name)) continue;
      st = fs_->remove_file(join_path(dir_, name));
      if (!st.ok()) return fail(st.error());
    }
  }
  auto created = Segment::create(fs_, dir_, offset);
  if (!created.ok()) return fail(created.error());
  (*created)->set_roll_base_ms(clock_->now_ms());
  st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error());
  publish_segments_locked(SegmentList{*created});
  log_start_.store(offset);
  log_end_.store(offset);
  first_dirty_.store(offset);
  std::lock_guard<std::mutex> fl(flush_mu_);
  recovery_point_ = offset;
  return {};
}

Result<int> Log::enforce_retention() {
  std::lock_guard<std::mutex> l(append_mu_);
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  const LogConfig cfg = config();
  producers_.expire(clock_->now_ms(), cfg.producer_id_expiration_ms);
  // A compact-only log keeps whatever the cleaner keeps.
  if (!cfg.cleanup_delete) return 0;
  SegmentList list = *segments();
  const int64_t hw = high_watermark();
  const int64_t bound = hw >= 0 ? std::min(hw, log_end_offset()) : log_end_offset();
  const int64_t now = clock_->now_ms();
  uint64_t total = 0;
  for (const auto& s : list) total += s->size_bytes();
  size_t drop = 0;
  while (drop + 1 < list.size()) {
    const Segment& seg = *list[drop];
    if (list[drop + 1]->base_offset() > bound) break;
    const bool expired = cfg.retention_ms >= 0 && !seg.empty() &&
                         seg.max_timestamp() < now - cfg.retention_ms;
    const bool over_size = cfg.retention_bytes >= 0 &&
                           total - seg.size_bytes() >= static_cast<uint64_t>(cfg.retention_bytes);
    if (!expired && !over_size) break;
    total -= seg.size_bytes();
    ++drop;
  }
  return drop_front_segments_locked(std::move(list), drop, "retention");
}

Result<int> Log::delete_segments_below(int64_t offset) {
  std::lock_guard<std::mutex> l(append_mu_);
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  SegmentList list = *segments();
  const int64_t bound = std::min(offset, log_end_offset());
  size_t drop = 0;
  while (drop + 1 < list.size() && list[drop + 1]->base_offset() <= bound) ++drop;
  return drop_front_segments_locked(std::move(list), drop, "compaction below " + std::to_string(offset));
}

Result<int> Log::drop_front_segments_locked(SegmentList list, size_t drop, const std::string& why) {
  if (drop == 0) return 0;
  SegmentList doomed(list.begin(), list.begin() + drop);
  list.erase(list.begin(), list.begin() + drop);
  GenerationWrite generation_write(generation_);  // odd until this function returns
  log_start_.store(list.front()->base_offset());
  publish_segments_locked(std::move(list));
  for (const auto& seg : doomed) {
    std::erase(pending_sync_, seg);
    Status st = seg->remove_files();
    if (!st.ok()) return fail(st.error()).error();
  }
  Status st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error()).error();
  st = epoch_cache_->truncate_from_start(log_start_offset());
  if (!st.ok()) return fail(st.error()).error();
  LOG(INFO) << dir_ << ": " << why << " deleted " << drop << " segment(s); log start is now "
            << log_start_offset();
  return static_cast<int>(drop);
}

Status Log::close() {
  {
    std::lock_guard<std::mutex> l(append_mu_);
    if (closed_) return {};
  }
  // After close nothing may change the files, so a clean in progress stops first (its
  // unfinished ".cleaned" files are removed by it; never swapped in).
  abort_and_wait_for_clean();
  GANNET_RETURN_IF_ERROR(flush());
  std::lock_guard<std::mutex> l(append_mu_);
  GANNET_RETURN_IF_ERROR(check_writable_locked());
  GANNET_RETURN_IF_ERROR(epoch_cache_->persist_if_dirty());
  segments()->back()->release_preallocated();
  Status st = segments()->back()->write_indexes(/*sync=*/true);
  if (!st.ok()) return fail(st.error());
  // The next start loads the producers from here and replays nothing.
  st = write_producer_snapshot_locked();
  if (!st.ok()) return fail(st.error());
  if (dir_sync_pending_.exchange(false) && before_new_dir_sync_) {
    st = before_new_dir_sync_();
    if (!st.ok()) return fail(st.error());
  }
  st = fs_->sync_dir(dir_);
  if (!st.ok()) return fail(st.error());
  // After close nothing may change the files: a clean-shutdown marker written next trusts them.
  closed_ = true;
  return {};
}

}  // namespace gannet::storage
