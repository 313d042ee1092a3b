// LogManager: owns every partition log under one data directory: opens them all at startup in
// parallel, creates and deletes them, checkpoints recovery points, and runs the background
// flush (flush.ms) and retention tasks, and the log cleaner (compaction). Files in FORMAT.md.
//
// Startup: if `.clean-shutdown` exists the previous process closed every log cleanly, so logs
// open without re-validation; otherwise each log re-validates from its checkpointed recovery
// point. The marker is removed before any log is handed out.
//
// Thread safety: all methods are thread safe; mu_ guards the partition map.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "storage/log.h"
#include "storage/log_cleaner.h"

namespace gannet::storage {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  // "<topic>-<partition>", the partition's directory name.
  std::string dir_name() const { return topic + "-" + std::to_string(partition); }
  // Parses a directory name; nullopt for anything that is not "<valid topic>-<number>".
  static std::optional<TopicPartition> parse(const std::string& dir_name);
  auto operator<=>(const TopicPartition&) const = default;
};

// Kafka's topic name rule: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
bool valid_topic_name(const std::string& name);

// `__cluster_metadata`: the metadata quorum's log (raft/) shares the data directory; the log
// manager never opens, creates or deletes it, and no topic may take the name.
inline bool is_internal_metadata_topic(const std::string& topic) { return topic == "__cluster_metadata"; }

class LogManager {
 public:
  struct Options {
    std::string data_dir;
    FileSystem* fs = nullptr;     // default: the real file system
    Clock* clock = nullptr;       // default: the system clock
    LogConfig default_config;
    int recovery_threads = 2;     // logs opened in parallel at startup
    bool background = true;       // run the flush/retention/checkpoint thread
    int64_t retention_check_interval_ms = 300'000;  // log.retention.check.interval.ms
    int64_t flush_check_interval_ms = 1'000;        // how often flush.ms is looked at
    int64_t checkpoint_interval_ms = 60'000;        // recovery-point checkpoint period
    int64_t hw_checkpoint_interval_ms = 5'000;      // replica.high.watermark.checkpoint.interval.ms
    // Log compaction (log_cleaner.h), on a thread of its own so a long clean never delays
    // flushes or retention: every cleaner_backoff_ms, each log with cleanup.policy compact whose
    // dirty ratio reaches its min.cleanable.dirty.ratio is cleaned (log.cleaner.enable,
    // log.cleaner.backoff.ms, log.cleaner.dedupe.buffer.size).
    bool cleaner_enable = true;
    int64_t cleaner_backoff_ms = 15'000;
    size_t cleaner_dedupe_buffer_bytes = size_t{128} << 20;
  };

  static constexpr const char* kCleanShutdownFile = ".clean-shutdown";
  static constexpr const char* kRecoveryPointFile = "recovery-point-offset-checkpoint";
  static constexpr const char* kCleanerOffsetFile = "cleaner-offset-checkpoint";
  // Each log's high watermark (Kafka's replication-offset checkpoint), same format as the
  // recovery points: written with them, every hw_checkpoint_interval_ms and at close; read back
  // at open, clamped to the log end.
  static constexpr const char* kReplicationOffsetFile = "replication-offset-checkpoint";

  static Result<std::unique_ptr<LogManager>> open(Options options);
  // Stops the background thread; does not close logs (a crash). Call close() for a clean stop.
  ~LogManager();

  // kAlreadyExists if the partition has a log; kInvalidConfig for a bad topic name.
  Result<std::shared_ptr<Log>> create(const TopicPartition& tp,
                                      std::optional<LogConfig> config = std::nullopt);
  // Creates many logs at once (a broker given thousands of partitions): in parallel, with one
  // directory sync and one recovery-point checkpoint for all. `topic_id` (16 bytes, may be empty)
  // is kept in the partition's `partition.metadata` file so a later incarnation of the topic
  // (deleted and re-created under the same name) is told apart from this one. The file is not
  // synced: a new log is empty, and a lost id reads back as "" (unknown). Logs that already
  // exist are skipped. Returns the first error; the other logs are still created.
  struct NewLog {
    TopicPartition tp;
    std::optional<LogConfig> config;
    std::string topic_id;
  };
  Status create_many(const std::vector<NewLog>& logs);
  // The topic id recorded for the partition's log ("" if none or unreadable).
  std::string topic_id(const TopicPartition& tp) const;
  static constexpr const char* kPartitionMetadataFile = "partition.metadata";

  std::shared_ptr<Log> get(const TopicPartition& tp) const;
  // Deletes the partition's log and directory; kNotFound if there is none.
  Status remove(const TopicPartition& tp);
  std::vector<TopicPartition> partitions() const;

  // One pass of each background task (also callable from tests with background = false).
  // checkpoint_recovery_points() writes the high watermarks too.
  Status checkpoint_recovery_points();
  Status checkpoint_high_watermarks();
  Result<int> run_retention();
  Status run_flush();
  // One cleaner pass: cleans, dirtiest first, every compacted log (not offline, closed or
  // deleted) whose dirty ratio is at least its min.cleanable.dirty.ratio, then checkpoints the
  // logs' first dirty offsets. A log whose clean fails is logged and skipped.
  Result<CleanStats> run_cleaner();

  // Flushes and closes every log, writes the checkpoint and the clean-shutdown marker.
  Status close();

  const std::string& data_dir() const { return options_.data_dir; }

 private:
  explicit LogManager(Options options) : options_(std::move(options)) {}
  Status load_all();
  Result<std::shared_ptr<Log>> create_locked(const TopicPartition& tp,
                                             std::optional<LogConfig> config);
  // Opens a new, empty log (no data-directory sync, no checkpoint); mu_ not held.
  Result<std::shared_ptr<Log>> open_new(const TopicPartition& tp, std::optional<LogConfig> config,
                                        const std::string& topic_id);
  void background_loop();
  void cleaner_loop();
  // Writes kCleanerOffsetFile with every compacted log's first dirty offset (when there is one
  // or the file exists). Caller holds checkpoint_mu_.
  Status checkpoint_cleaner_offsets_locked();
  Status checkpoint_high_watermarks_locked();
  void stop_threads();

  Options options_;
  FileSystem* fs_ = nullptr;
  Clock* clock_ = nullptr;
  mutable std::mutex mu_;
  std::map<TopicPartition, std::shared_ptr<Log>> logs_;
  std::mutex checkpoint_mu_;  // serializes checkpoint writers

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::thread bg_thread_;
  std::thread cleaner_thread_;
  std::atomic<bool> cleaner_stop_{false};  // aborts a clean in progress (close, destruction)
  std::mutex cleaner_mu_;                  // one run_cleaner() at a time
  bool cleaner_file_exists_ = false;       // guarded by checkpoint_mu_
};

}  // namespace gannet::storage
