// Consumer: reads records from partitions, either assigned by hand (assign/seek) or as a member
// of a consumer group (subscribe), like Kafka's KafkaConsumer.
//
// Fetching: a poll sends one Fetch per leader broker for all its assigned, unpaused partitions
// (long-polling up to fetch.max.wait.ms), as gRPC callback calls; the gRPC thread that receives
// an answer also decodes its batches. The poll returns as soon as any answer is in, with the
// records from each partition's position on; fetches still out stay in flight for the next poll,
// and the next fetch of each leader that answered with data is sent at once (prefetch).
// Positions without an offset come from the group's committed offset, else auto.offset.reset
// (earliest, latest or none).
//
// Groups (DESIGN.md, "Consumer groups"): with group.id set, subscribe() joins the group through
// its coordinator: JoinGroup (the leader runs the assignor named by the group's chosen protocol
// over every member's subscription), SyncGroup (each member gets its partitions), then a
// heartbeat thread keeps the session and learns of rebalances at once (Gannet's heartbeat
// long-polls). The eager protocol: before rejoining, the consumer commits (with auto commit) and
// revokes every partition (the listener's on_revoked), then gets its new ones (on_assigned). The
// group leader rejoins when a subscribed topic's partition count changes, and every member when
// its pattern matches a different set of topics. If poll() is not called for max.poll.interval.ms
// the heartbeat thread leaves the group (the next poll rejoins). The join and sync run on a task
// of their own (the coordinator may hold a join until the slowest member rejoins), so poll(timeout)
// returns within its timeout during a rebalance, and close() ends a pending join at once.
// Heartbeats start when the sync answers; the next poll takes the assignment only if that
// generation still holds and the subscription is the one joined with (else it rejoins at once).
//
// Threads: the consumer is used from one thread (as Kafka's); the heartbeat thread is internal.
// Rebalance listener callbacks and commit_async callbacks run inside poll() / close().
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/metadata_cache.h"
#include "common/topic_partition.h"
#include "proto/errors.pb.h"

namespace gannet::client {

struct ConsumerConfig {
  std::vector<std::string> bootstrap_servers;
  std::string client_id = "gannet-consumer";
  std::string auto_offset_reset = "latest";  // earliest | latest | none
  int32_t fetch_max_wait_ms = 500;
  int32_t fetch_min_bytes = 1;
  int32_t max_partition_fetch_bytes = 1 << 20;
  int32_t fetch_max_bytes = 50 << 20;
  // Groups.
  std::string group_id;                      // "" : no group (assign() only)
  // group.protocol: "classic" (JoinGroup/SyncGroup, the assignor runs in the group leader) or
  // "consumer" (KIP-848: the broker assigns; members only heartbeat, and partitions move one by
  // one while the others keep being consumed).
  std::string group_protocol = "classic";
  std::string group_remote_assignor;         // group.remote.assignor (consumer): uniform | range | "" (the group's)
  int32_t session_timeout_ms = 10'000;       // session.timeout.ms (Kafka: 45000)
  int32_t heartbeat_interval_ms = 3'000;     // heartbeat.interval.ms: the long poll's length
  int32_t max_poll_interval_ms = 300'000;    // max.poll.interval.ms (also the rebalance timeout)
  std::vector<std::string> partition_assignment_strategy = {"range"};  // range | roundrobin | sticky
  bool enable_auto_commit = true;            // enable.auto.commit (with a group)
  int32_t auto_commit_interval_ms = 5'000;   // auto.commit.interval.ms
  int32_t default_api_timeout_ms = 60'000;   // bound of commit_sync / committed / close
  int32_t metadata_max_age_ms = 5'000;       // how often a subscription re-reads topics
};

struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
};

struct OffsetAndMetadata {
  int64_t offset = -1;
  std::string metadata;
};

// Told when partitions are taken away (before the rejoin; commit what was processed here) and
// given (after the assignment).
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void on_revoked(const std::vector<TopicPartition>& partitions) = 0;
  virtual void on_assigned(const std::vector<TopicPartition>& partitions) = 0;
};

class Consumer {
 public:
  explicit Consumer(ConsumerConfig config);
  // close() if not yet closed.
  ~Consumer();

  // Manual assignment (no group membership; commits, if any, are made from outside the group).
  void assign(const std::vector<TopicPartition>& partitions);
  // Group membership (needs group.id): these topics, or every topic matching the pattern
  // (ECMAScript syntax, matched against the whole name). Takes effect at the next poll.
  void subscribe(const std::vector<std::string>& topics, RebalanceListener* listener = nullptr);
  void subscribe(const std::string& pattern, RebalanceListener* listener = nullptr);
  void unsubscribe();
  std::vector<TopicPartition> assignment() const;

  void seek(const TopicPartition& tp, int64_t offset);
  void seek_to_beginning(const TopicPartition& tp);  // -2: resolved at the next poll
  void seek_to_end(const TopicPartition& tp);        // -1
  // The next offset to read; nullopt until known.
  std::optional<int64_t> position(const TopicPartition& tp) const;
  void pause(const std::vector<TopicPartition>& partitions);
  void resume(const std::vector<TopicPartition>& partitions);
  std::set<TopicPartition> paused() const { return paused_; }

  // Records from every assigned partition, waiting up to timeout_ms for some. An error (e.g.
  // OFFSET_OUT_OF_RANGE with auto.offset.reset=none, INCONSISTENT_GROUP_PROTOCOL) is returned in
  // *error.
  std::vector<ConsumerRecord> poll(int64_t timeout_ms, gannet::v1::ErrorCode* error = nullptr);

  // Commits the current positions of every assigned partition (or `offsets`) to the group and
  // waits for the answer. ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / REBALANCE_IN_PROGRESS: the
  // partitions were reassigned meanwhile, or a subscribed consumer is in no generation now (e.g.
  // it left after max.poll.interval.ms; nothing is committed then) (Kafka's
  // CommitFailedException); the consumer rejoins.
  gannet::v1::ErrorCode commit_sync(const std::map<TopicPartition, OffsetAndMetadata>& offsets = {});
  // The same without waiting; `callback` runs in a later poll() or close().
  void commit_async(std::function<void(gannet::v1::ErrorCode)> callback = nullptr,
                    const std::map<TopicPartition, OffsetAndMetadata>& offsets = {});
  // The group's committed offset of a partition (nullopt: none).
  std::optional<int64_t> committed(const TopicPartition& tp);

  // Commits (with auto commit), waits for commit_async calls in flight (their callbacks run
  // here), leaves the group, stops the heartbeat thread. Idempotent. A poll() after close()
  // returns nothing, with INVALID_REQUEST.
  void close();

  // The last high watermark seen per partition (for lag).
  std::optional<int64_t> high_watermark(const TopicPartition& tp) const;
  uint64_t bytes_fetched() const { return bytes_; }
  // Group state, for tools and tests.
  std::string member_id() const;
  int32_t generation() const;
  int64_t rebalances() const { return rebalances_; }

 private:
  // A partition's records in a fetch answer, decoded on the fetch's own thread (in parallel
  // with the application and the other leaders' fetches) from the offset it asked for.
  struct Decoded {
    std::vector<ConsumerRecord> records;
    int64_t end = -1;  // the next offset after the last whole, readable batch (-1: none)
  };
  struct FetchCall {
    bv1::FetchResponse resp;
    std::vector<Decoded> decoded;  // per entry of resp.partitions()
    bool ok = false;
  };
  static void decode(const bv1::FetchRequest& req, FetchCall* call);
  using Wanted = std::vector<std::pair<TopicPartition, int64_t>>;  // partition, fetch offset
  // A fetch in flight. `done` is set once its answer is decoded and `call` is ready, before the
  // waiting poll is woken. Dropping one cancels it (without waiting), so nothing waits out a long
  // poll whose answer is unwanted.
  struct InFlight {
    std::shared_ptr<grpc::ClientContext> ctx;
    std::shared_ptr<std::atomic<bool>> done;
    std::future<FetchCall> call;
    InFlight() = default;
    InFlight(InFlight&&) = default;
    InFlight& operator=(InFlight&& o) {
      if (this != &o) {
        cancel();  // the call this one held is dropped
        ctx = std::move(o.ctx);
        done = std::move(o.done);
        call = std::move(o.call);
      }
      return *this;
    }
    ~InFlight() { cancel(); }
    void cancel() {
      if (ctx && call.valid() && !done->load()) ctx->TryCancel();
    }
  };
  InFlight launch(bv1::Broker::Stub* stub, const Wanted& wanted, int64_t wait_ms, int64_t slack_ms);
  struct Prefetch {
    Wanted wanted;
    InFlight call;
  };

  bool reset_offsets(std::vector<TopicPartition>* failed);
  // Groups.
  bool in_group_mode() const { return !config_.group_id.empty() && subscribed_; }
  // Joins (or rejoins) the group if needed, within the deadline. False if not done in time or
  // on a fatal error (*error).
  bool ensure_active_group(std::chrono::steady_clock::time_point deadline, gannet::v1::ErrorCode* error);
  // The join and sync of one rebalance, run on a task of their own (see ensure_active_group).
  struct JoinInput {
    std::vector<std::string> topics;
    std::string pattern;  // the subscription joined with (pattern_text_, "" for a topic list)
    std::vector<TopicPartition> owned;
    int32_t generation = -1;
  };
  struct JoinOutcome {
    bool joined = false;
    gannet::v1::ErrorCode error = gannet::v1::NONE;  // fatal (INCONSISTENT_GROUP_PROTOCOL, ...)
    std::vector<TopicPartition> partitions;
    int32_t generation = -1;
    bool leader = false;
    std::map<std::string, int32_t> assigned_counts;
    std::vector<std::string> topics;
    std::string pattern;
    std::string member_id;
  };
  JoinOutcome run_join(const JoinInput& in);
  // Cancels a join in flight and waits for its task (close, unsubscribe).
  void cancel_join();
  bv1::Broker::Stub* coordinator(std::chrono::steady_clock::time_point deadline);
  void forget_coordinator();
  std::vector<std::string> subscribed_topics();
  void revoke_all();
  bool fetch_committed_positions(std::chrono::steady_clock::time_point deadline);
  // `as_member`: commit in the current generation (read on the poll thread: async commits run
  // elsewhere and must not read the subscription).
  // `pinned`: the (generation, member id) to commit in, taken when commit_async was called (a
  // rebalance before the request goes out must not lend old positions the new generation).
  gannet::v1::ErrorCode do_commit(const std::map<TopicPartition, OffsetAndMetadata>& offsets,
                                  std::chrono::steady_clock::time_point deadline, bool as_member,
                                  std::optional<std::pair<int32_t, std::string>> pinned = std::nullopt);
  std::map<TopicPartition, OffsetAndMetadata> current_positions() const;
  void maybe_auto_commit();
  void run_async_callbacks(bool wait);
  void heartbeat_loop();
  // group.protocol=consumer: the heartbeat thread (ConsumerGroupHeartbeat), and the poll thread's
  // side: apply the newest assignment (commit and give up what it leaves out, start what it adds)
  // and tell the heartbeat thread what is owned now. False with a fatal error in *error.
  bool consumer_protocol() const { return config_.group_protocol == "consumer"; }
  void consumer_heartbeat_loop();
  bool apply_assignment(gannet::v1::ErrorCode* error);
  void leave_group(const std::string& reason);
  void wake();  // a fetch finished or a rebalance is due: poll() looks again

  const ConsumerConfig config_;
  MetadataCache metadata_;
  std::map<TopicPartition, int64_t> positions_;  // -1: latest, -2: earliest, -3: none, -4: committed
  std::map<TopicPartition, int64_t> hws_;
  std::set<TopicPartition> paused_;
  uint64_t bytes_ = 0;

  // Subscription (poll thread only).
  bool subscribed_ = false;
  std::vector<std::string> topics_;
  std::optional<std::regex> pattern_;
  std::string pattern_text_;
  RebalanceListener* listener_ = nullptr;
  std::vector<std::string> joined_topics_;            // the subscription of the current generation
  std::map<std::string, int32_t> assigned_counts_;    // leader: partition counts it assigned with
  bool is_leader_ = false;
  std::chrono::steady_clock::time_point next_metadata_check_{};
  std::chrono::steady_clock::time_point next_auto_commit_{};
  std::vector<TopicPartition> previous_assignment_;   // for the sticky assignor
  int32_t previous_generation_ = -1;
  std::atomic<int64_t> rebalances_{0};
  // commit_async calls not yet reported, in call order. Each waits for the one before it, so
  // commits land in call order (a later commit is never overwritten by an earlier one);
  // commit_sync waits for the last one first.
  std::vector<std::pair<std::shared_future<gannet::v1::ErrorCode>, std::function<void(gannet::v1::ErrorCode)>>>
      async_commits_;
  std::shared_future<gannet::v1::ErrorCode> last_async_commit_;

  // Shared with the heartbeat thread.
  mutable std::mutex gmu_;
  std::condition_variable gcv_;
  int32_t coordinator_id_ = -1;
  std::string member_id_;
  int32_t generation_ = -1;
  bool joined_ = false;        // in a stable generation: heartbeats run
  bool rejoin_needed_ = false;
  bool closed_ = false;
  int64_t wake_count_ = 0;
  int fetches_out_ = 0;  // fetch calls whose callback has not run yet
  std::chrono::steady_clock::time_point last_poll_{};
  std::thread heartbeat_thread_;
  bool join_cancelled_ = false;
  // group.protocol=consumer (with gmu_). The member epoch is generation_; joined_ once it has one.
  bool cg_subscribed_ = false;                  // the poll thread has a subscription: heartbeat
  std::vector<std::string> cg_topics_;          // the subscription to send
  std::vector<TopicPartition> cg_owned_;        // what the poll thread consumes now
  std::optional<std::vector<TopicPartition>> cg_assignment_;  // received, not yet applied
  bool cg_lost_ = false;     // fenced or unknown: poll drops everything (no commit), then rejoin
  bool cg_ack_now_ = false;  // the owned partitions changed: heartbeat now
  gannet::v1::ErrorCode cg_fatal_ = gannet::v1::NONE;      // a refusal the application must see

  std::shared_ptr<grpc::ClientContext> join_ctx_;  // the join task's call in flight
  std::future<JoinOutcome> join_task_;            // poll thread only

  // The next fetch of each leader, sent while the previous answer is decoded (used if the
  // positions still match when the next poll comes). Declared last: destroyed first, waiting
  // for calls in flight before the stubs they use go away.
  std::map<int32_t, Prefetch> prefetch_;
};

}  // namespace gannet::client
