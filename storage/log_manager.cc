#include "storage/log_manager.h"

#include <glog/logging.h>

#include <atomic>
#include <sstream>

namespace gannet::storage {
namespace {

constexpr const char* kDeleteSuffix = "-delete";

Result<std::map<std::string, int64_t>> read_checkpoint(FileSystem* fs, const std::string& path) {
  std::map<std::string, int64_t> out;
  if (!fs->exists(path)) return out;
  GANNET_ASSIGN_OR_RETURN(std::string text, read_file(fs, path));
  std::istringstream in(text);
  int version = -1;
  size_t count = 0;
  if (!(in >> version) || version != 0 || !(in >> count)) {
    return make_error(Errc::kCorruptMessage, path + ": bad header");
  }
  for (size_t i = 0; i < count; ++i) {
    std::string topic;
    int32_t partition;
    int64_t offset;
    if (!(in >> topic >> partition >> offset)) {
      return make_error(Errc::kCorruptMessage, path + ": truncated at entry " + std::to_string(i));
    }
    out[TopicPartition{topic, partition}.dir_name()] = offset;
  }
  return out;
}

// Writes read_checkpoint's format atomically: version 0, the count, "<topic> <partition> <offset>".
Status write_checkpoint(FileSystem* fs, const std::string& path,
                        const std::vector<std::pair<TopicPartition, int64_t>>& entries) {
  std::string text = "0\n" + std::to_string(entries.size()) + "\n";
  for (const auto& [tp, offset] : entries) {
    text += tp.topic + " " + std::to_string(tp.partition) + " " + std::to_string(offset) + "\n";
  }
  return write_file_atomic(fs, path, text);
}

}  // namespace

bool valid_topic_name(const std::string& name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<TopicPartition> TopicPartition::parse(const std::string& dir_name) {
  auto dash = dir_name.find_last_of('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 >= dir_name.size()) return std::nullopt;
  std::string topic = dir_name.substr(0, dash);
  std::string num = dir_name.substr(dash + 1);
  if (!valid_topic_name(topic) || num.size() > 9) return std::nullopt;
  if (num.size() > 1 && num[0] == '0') return std::nullopt;  // one spelling per partition
  int32_t p = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  return TopicPartition{topic, p};
}

Result<std::unique_ptr<LogManager>> LogManager::open(Options options) {
  if (options.fs == nullptr) options.fs = posix_file_system();
  if (options.clock == nullptr) options.clock = SystemClock::instance();
  GANNET_RETURN_IF_ERROR(options.default_config.validate());
  std::unique_ptr<LogManager> m(new LogManager(std::move(options)));
  m->fs_ = m->options_.fs;
  m->clock_ = m->options_.clock;
  GANNET_RETURN_IF_ERROR(m->load_all());
  // Recovery may have cut logs below their checkpointed points: record where they are now.
  GANNET_RETURN_IF_ERROR(m->checkpoint_recovery_points());
  if (m->options_.background) m->bg_thread_ = std::thread([p = m.get()] { p->background_loop(); });
  if (m->options_.background && m->options_.cleaner_enable) {
    m->cleaner_thread_ = std::thread([p = m.get()] { p->cleaner_loop(); });
  }
  return m;
}

LogManager::~LogManager() {
  // Logs handed out may outlive the manager: they must not call back into it.
  for (const TopicPartition& tp : partitions()) {
    if (auto log = get(tp)) log->detach_recovery_point_listener();
  }
  stop_threads();
}

void LogManager::stop_threads() {
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    stopping_ = true;
  }
  cleaner_stop_ = true;  // a clean in progress stops at its next batch
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
  if (cleaner_thread_.joinable()) cleaner_thread_.join();
}

Status LogManager::load_all() {
  const std::string& dir = options_.data_dir;
  GANNET_RETURN_IF_ERROR(fs_->create_dirs(dir));
  const std::string marker = join_path(dir, kCleanShutdownFile);
  const bool clean = fs_->exists(marker);
  GANNET_ASSIGN_OR_RETURN(auto checkpoints,
                          read_checkpoint(fs_, join_path(dir, kRecoveryPointFile)));
  // A missing or unreadable HW checkpoint only means the HWs start at 0 (as before it existed).
  std::map<std::string, int64_t> hws;
  if (auto r = read_checkpoint(fs_, join_path(dir, kReplicationOffsetFile)); r.ok()) {
    hws = std::move(r).value();
  } else {
    LOG(WARNING) << r.error().to_string() << "; high watermarks start at 0";
  }
  GANNET_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->list_dir(dir));
  std::vector<std::pair<TopicPartition, std::string>> todo;
  for (const std::string& name : names) {
    const std::string path = join_path(dir, name);
    if (!fs_->is_dir(path)) continue;
    if (name.size() > strlen(kDeleteSuffix) &&
        name.compare(name.size() - strlen(kDeleteSuffix), strlen(kDeleteSuffix), kDeleteSuffix) == 0) {
      GANNET_RETURN_IF_ERROR(fs_->remove_all(path));  // a delete interrupted by a crash
      continue;
    }
    // The metadata quorum's log lives in the same directory but belongs to raft/, not here.
    if (auto tp = TopicPartition::parse(name); tp && !is_internal_metadata_topic(tp->topic)) {
      todo.emplace_back(*tp, path);
    }
  }
  // Open in parallel: recovery of a big active segment is I/O and CRC bound.
  std::atomic<size_t> next{0};
  std::mutex result_mu;
  std::optional<Error> first_error;
  auto worker = [&] {
    while (true) {
      size_t i = next.fetch_add(1);
      if (i >= todo.size()) return;
      const auto& [tp, path] = todo[i];
      Log::Options o;
      o.fs = fs_;
      o.clock = clock_;
      o.config = options_.default_config;
      o.clean_shutdown = clean;
      o.on_recovery_point_lowered = [this] { return checkpoint_recovery_points(); };
      if (auto it = checkpoints.find(tp.dir_name()); it != checkpoints.end()) {
        o.recovery_point = it->second;
      }
      auto log = Log::open(path, o);
      std::lock_guard<std::mutex> l(result_mu);
      if (!log.ok()) {
        if (!first_error) first_error = log.error();
        continue;
      }
      if (auto it = hws.find(tp.dir_name()); it != hws.end()) {
        (*log)->update_high_watermark(std::min(it->second, (*log)->log_end_offset()));
      }
      logs_[tp] = std::shared_ptr<Log>(std::move(log).value());
    }
  };
  std::vector<std::thread> threads;
  const int n = std::max(1, std::min<int>(options_.recovery_threads, static_cast<int>(todo.size())));
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) return *first_error;
  // Where each log's cleaner left off; a missing or unreadable file only means re-cleaning.
  const std::string cleaner_file = join_path(dir, kCleanerOffsetFile);
  cleaner_file_exists_ = fs_->exists(cleaner_file);
  if (auto offsets = read_checkpoint(fs_, cleaner_file); offsets.ok()) {
    for (const auto& [tp, log] : logs_) {
      if (auto it = offsets->find(tp.dir_name()); it != offsets->end()) {
        log->set_first_dirty_offset(it->second);
      }
    }
  } else {
    LOG(WARNING) << "ignoring " << cleaner_file << ": " << offsets.error().to_string();
  }
  if (clean) {
    GANNET_RETURN_IF_ERROR(fs_->remove_file(marker));
    GANNET_RETURN_IF_ERROR(fs_->sync_dir(dir));
  }
  LOG(INFO) << "log manager: opened " << logs_.size() << " log(s) under " << dir
            << (clean ? " after a clean shutdown" : " (recovered)");
  return {};
}

Result<std::shared_ptr<Log>> LogManager::create(const TopicPartition& tp,
                                                std::optional<LogConfig> config) {
  if (!valid_topic_name(tp.topic) || tp.partition < 0 || is_internal_metadata_topic(tp.topic)) {
    return make_error(Errc::kInvalidConfig, "invalid topic partition '" + tp.dir_name() + "'");
  }
  std::shared_ptr<Log> shared;
  {
    std::lock_guard<std::mutex> l(mu_);
    GANNET_ASSIGN_OR_RETURN(shared, create_locked(tp, config));
  }
  // A checkpoint entry left by an earlier log of the same partition must not be trusted for
  // this one.
  GANNET_RETURN_IF_ERROR(checkpoint_recovery_points());
  return shared;
}

Result<std::shared_ptr<Log>> LogManager::create_locked(const TopicPartition& tp,
                                                       std::optional<LogConfig> config) {
  if (logs_.count(tp)) return make_error(Errc::kAlreadyExists, tp.dir_name() + " already exists");
  Log::Options o;
  o.fs = fs_;
  o.clock = clock_;
  o.config = config.value_or(options_.default_config);
  o.on_recovery_point_lowered = [this] { return checkpoint_recovery_points(); };
  const std::string path = join_path(options_.data_dir, tp.dir_name());
  if (fs_->exists(path)) GANNET_RETURN_IF_ERROR(fs_->remove_all(path));  // stray leftovers
  GANNET_ASSIGN_OR_RETURN(std::unique_ptr<Log> log, Log::open(path, o));
  GANNET_RETURN_IF_ERROR(fs_->sync_dir(options_.data_dir));
  auto shared = std::shared_ptr<Log>(std::move(log));
  logs_[tp] = shared;
  return shared;
}

Result<std::shared_ptr<Log>> LogManager::open_new(const TopicPartition& tp,
                                                  std::optional<LogConfig> config,
                                                  const std::string& topic_id) {
  Log::Options o;
  o.fs = fs_;
  o.clock = clock_;
  o.config = config.value_or(options_.default_config);
  o.on_recovery_point_lowered = [this] { return checkpoint_recovery_points(); };
  o.defer_new_dir_sync = true;  // create_many syncs the data directory once for all
  // The topic id file is written unsynced below; it becomes durable with the log's first sync.
  const std::string path = join_path(options_.data_dir, tp.dir_name());
  o.before_new_dir_sync = [fs = fs_, file = join_path(path, kPartitionMetadataFile)]() -> Status {
    if (!fs->exists(file)) return {};
    GANNET_ASSIGN_OR_RETURN(auto f, fs->open(file, false));
    return f->sync();
  };
  if (fs_->exists(path)) GANNET_RETURN_IF_ERROR(fs_->remove_all(path));  // stray leftovers
  GANNET_RETURN_IF_ERROR(fs_->create_dirs_unsynced(path));
  if (!topic_id.empty()) {
    std::string hex;
    static const char* kHex = "0123456789abcdef";
    for (unsigned char c : topic_id) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    GANNET_ASSIGN_OR_RETURN(auto f, fs_->open(join_path(path, kPartitionMetadataFile), true));
    const std::string text = "version: 0\ntopic_id: " + hex + "\n";
    GANNET_RETURN_IF_ERROR(f->append(text.data(), text.size()));
  }
  GANNET_ASSIGN_OR_RETURN(std::unique_ptr<Log> log, Log::open(path, o));
  return std::shared_ptr<Log>(std::move(log));
}

Status LogManager::create_many(const std::vector<NewLog>& logs) {
  std::vector<const NewLog*> todo;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const NewLog& n : logs) {
      if (!valid_topic_name(n.tp.topic) || n.tp.partition < 0 || is_internal_metadata_topic(n.tp.topic)) {
        return make_error(Errc::kInvalidConfig, "invalid topic partition '" + n.tp.dir_name() + "'");
      }
      if (!logs_.count(n.tp)) todo.push_back(&n);
    }
  }
  std::atomic<size_t> next{0};
  std::mutex result_mu;
  std::optional<Error> first_error;
  auto worker = [&] {
    for (size_t i = next++; i < todo.size(); i = next++) {
      auto log = open_new(todo[i]->tp, todo[i]->config, todo[i]->topic_id);
      std::lock_guard<std::mutex> l(result_mu);
      if (!log.ok()) {
        if (!first_error) first_error = log.error();
        continue;
      }
      std::lock_guard<std::mutex> ml(mu_);
      if (!logs_.count(todo[i]->tp)) logs_[todo[i]->tp] = *log;
    }
  };
  std::vector<std::thread> threads;
  const int n = std::max(1, std::min<int>(8, static_cast<int>(todo.size())));
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!todo.empty()) {
    GANNET_RETURN_IF_ERROR(fs_->sync_dir(options_.data_dir));
    GANNET_RETURN_IF_ERROR(checkpoint_recovery_points());
  }
  if (first_error) return *first_error;
  return {};
}

std::string LogManager::topic_id(const TopicPartition& tp) const {
  auto text = read_file(fs_, join_path(join_path(options_.data_dir, tp.dir_name()), kPartitionMetadataFile));
  if (!text.ok()) return "";
  const std::string key = "topic_id: ";
  auto at = text->find(key);
  if (at == std::string::npos || at + key.size() + 32 > text->size()) return "";
  std::string id;
  for (size_t i = at + key.size(); i < at + key.size() + 32; i += 2) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = nib((*text)[i]), lo = nib((*text)[i + 1]);
    if (hi < 0 || lo < 0) return "";
    id += static_cast<char>(hi << 4 | lo);
  }
  return id;
}

std::shared_ptr<Log> LogManager::get(const TopicPartition& tp) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = logs_.find(tp);
  return it == logs_.end() ? nullptr : it->second;
}

Status LogManager::remove(const TopicPartition& tp) {
  std::shared_ptr<Log> log;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = logs_.find(tp);
    if (it == logs_.end()) return make_error(Errc::kNotFound, tp.dir_name() + " has no log");
    log = it->second;
    logs_.erase(it);
  }
  // Fence the log first: a handle someone still holds must not write into the directory (or a
  // re-created partition's directory of the same name).
  log->mark_deleted();
  // Rename first (durably), so a crash mid-delete finishes the delete at the next startup
  // instead of resurrecting a half-deleted partition.
  const std::string path = join_path(options_.data_dir, tp.dir_name());
  // The doomed name must fit in a file name (255 bytes) even for a 249-character topic name.
  const std::string doomed =
      join_path(options_.data_dir, tp.dir_name().substr(0, 200)) + "." + std::to_string(clock_->now_ms()) + "." +
      std::to_string(reinterpret_cast<uintptr_t>(log.get()) & 0xffff) + kDeleteSuffix;
  GANNET_RETURN_IF_ERROR(fs_->rename(path, doomed));
  GANNET_RETURN_IF_ERROR(fs_->sync_dir(options_.data_dir));
  GANNET_RETURN_IF_ERROR(fs_->remove_all(doomed));
  return checkpoint_recovery_points();
}

std::vector<TopicPartition> LogManager::partitions() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, log] : logs_) out.push_back(tp);
  return out;
}

Status LogManager::checkpoint_recovery_points() {
  std::lock_guard<std::mutex> cl(checkpoint_mu_);
  std::vector<std::pair<TopicPartition, int64_t>> points;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [tp, log] : logs_) points.emplace_back(tp, log->durable_offset());
  }
  GANNET_RETURN_IF_ERROR(write_checkpoint(fs_, join_path(options_.data_dir, kRecoveryPointFile), points));
  // Kept in step with the partition set, so a re-created partition never inherits the cleaned
  // offset or the high watermark of an earlier log of the same name.
  GANNET_RETURN_IF_ERROR(checkpoint_high_watermarks_locked());
  return checkpoint_cleaner_offsets_locked();
}

Status LogManager::checkpoint_high_watermarks() {
  std::lock_guard<std::mutex> cl(checkpoint_mu_);
  return checkpoint_high_watermarks_locked();
}

Status LogManager::checkpoint_high_watermarks_locked() {
  std::vector<std::pair<TopicPartition, int64_t>> hws;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [tp, log] : logs_) {
      hws.emplace_back(tp, std::max<int64_t>(0, std::min(log->high_watermark(), log->log_end_offset())));
    }
  }
  return write_checkpoint(fs_, join_path(options_.data_dir, kReplicationOffsetFile), hws);
}

Status LogManager::checkpoint_cleaner_offsets_locked() {
  std::vector<std::pair<TopicPartition, int64_t>> points;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [tp, log] : logs_) {
      if (log->config().cleanup_compact) points.emplace_back(tp, log->first_dirty_offset());
    }
  }
  if (points.empty() && !cleaner_file_exists_) return {};  // no compaction here: no file
  GANNET_RETURN_IF_ERROR(write_checkpoint(fs_, join_path(options_.data_dir, kCleanerOffsetFile), points));
  cleaner_file_exists_ = true;
  return {};
}

Result<CleanStats> LogManager::run_cleaner() {
  std::lock_guard<std::mutex> cl(cleaner_mu_);
  struct Candidate {
    double ratio;
    TopicPartition tp;
    std::shared_ptr<Log> log;
  };
  std::vector<Candidate> todo;
  for (const TopicPartition& tp : partitions()) {
    auto log = get(tp);
    if (!log || log->offline() || log->clean_aborted()) continue;
    const LogConfig cfg = log->config();
    if (!cfg.cleanup_compact) continue;
    auto range = LogCleaner::cleanable_range(*log);
    if (!range.ok()) {
      LOG(ERROR) << "cleaner: " << tp.dir_name() << ": " << range.error().to_string();
      continue;
    }
    if (range->dirty_bytes == 0 || range->dirty_ratio() < cfg.min_cleanable_dirty_ratio) continue;
    todo.push_back({range->dirty_ratio(), tp, std::move(log)});
  }
  std::stable_sort(todo.begin(), todo.end(),
                   [](const Candidate& a, const Candidate& b) { return a.ratio > b.ratio; });
  CleanStats total;
  for (const Candidate& c : todo) {
    if (cleaner_stop_) break;
    CleanerOptions o;
    o.dedupe_buffer_bytes = options_.cleaner_dedupe_buffer_bytes;
    o.should_abort = [this] { return cleaner_stop_.load(); };
    auto r = LogCleaner::clean(*c.log, o);
    if (!r.ok()) {
      LOG(ERROR) << "cleaner: " << c.tp.dir_name() << ": " << r.error().to_string();
      continue;
    }
    total += *r;
  }
  if (total.logs_cleaned > 0) {
    std::lock_guard<std::mutex> l(checkpoint_mu_);
    GANNET_RETURN_IF_ERROR(checkpoint_cleaner_offsets_locked());
  }
  return total;
}

void LogManager::cleaner_loop() {
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(options_.cleaner_backoff_ms));
    if (stopping_) break;
    l.unlock();
    auto r = run_cleaner();
    if (!r.ok()) LOG(ERROR) << "cleaner checkpoint: " << r.error().to_string();
    l.lock();
  }
}

Result<int> LogManager::run_retention() {
  int deleted = 0;
  for (const TopicPartition& tp : partitions()) {
    auto log = get(tp);
    if (!log || log->offline()) continue;
    auto r = log->enforce_retention();
    if (!r.ok()) {
      LOG(ERROR) << "retention of " << tp.dir_name() << ": " << r.error().to_string();
      continue;
    }
    deleted += *r;
  }
  return deleted;
}

Status LogManager::run_flush() {
  for (const TopicPartition& tp : partitions()) {
    auto log = get(tp);
    if (!log || log->offline()) continue;
    Status st = log->flush_if_due();
    if (!st.ok()) LOG(ERROR) << "flush of " << tp.dir_name() << ": " << st.error().to_string();
  }
  return {};
}

void LogManager::background_loop() {
  int64_t next_retention = clock_->monotonic_ms() + options_.retention_check_interval_ms;
  int64_t next_checkpoint = clock_->monotonic_ms() + options_.checkpoint_interval_ms;
  int64_t next_hw_checkpoint = clock_->monotonic_ms() + options_.hw_checkpoint_interval_ms;
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(options_.flush_check_interval_ms));
    if (stopping_) break;
    l.unlock();
    (void)run_flush();
    const int64_t now = clock_->monotonic_ms();
    if (now >= next_retention) {
      (void)run_retention();
      next_retention = now + options_.retention_check_interval_ms;
    }
    if (now >= next_checkpoint) {
      Status st = checkpoint_recovery_points();
      if (!st.ok()) LOG(ERROR) << "recovery point checkpoint: " << st.error().to_string();
      next_checkpoint = now + options_.checkpoint_interval_ms;
      next_hw_checkpoint = now + options_.hw_checkpoint_interval_ms;  // written with it
    } else if (now >= next_hw_checkpoint) {
      Status st = checkpoint_high_watermarks();
      if (!st.ok()) LOG(ERROR) << "high watermark checkpoint: " << st.error().to_string();
      next_hw_checkpoint = now + options_.hw_checkpoint_interval_ms;
    }
    l.lock();
  }
}

Status LogManager::close() {
  stop_threads();
  // In parallel: each close syncs a few files, and concurrent syncs share journal commits, so
  // thousands of partitions close in a fraction of the time.
  const std::vector<TopicPartition> tps = partitions();
  std::atomic<bool> all_clean{true};
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < tps.size(); i = next++) {
      auto log = get(tps[i]);
      Status st = log->close();
      if (!st.ok()) {
        all_clean = false;
        LOG(ERROR) << "close of " << tps[i].dir_name() << ": " << st.error().to_string();
      }
    }
  };
  std::vector<std::thread> threads;
  const int n = std::max(1, std::min<int>(8, static_cast<int>(tps.size())));
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  GANNET_RETURN_IF_ERROR(checkpoint_recovery_points());
  if (!all_clean) return make_error(Errc::kIoError, "some logs did not close cleanly");
  GANNET_RETURN_IF_ERROR(
      write_file_atomic(fs_, join_path(options_.data_dir, kCleanShutdownFile), "clean\n"));
  return {};
}

}  // namespace gannet::storage
