// GroupCoordinator: the consumer-group coordinator of one broker (DESIGN.md, "Consumer groups").
//
// The coordinator of group G is the leader of `__consumer_offsets` partition
// partition_for(G, N). This broker coordinates the groups of the offsets partitions it leads:
// when it becomes leader of one, it replays that partition's log into memory (the latest group
// metadata and committed offset per key; requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS);
// when it stops leading one, it forgets those groups (requests get NOT_COORDINATOR).
//
// Group membership follows Kafka's classic protocol: states Empty, PreparingRebalance,
// CompletingRebalance, Stable, Dead; JoinGroup with MEMBER_ID_REQUIRED (KIP-394) on a first join;
// a join phase that ends when every member has rejoined or the rebalance timeout passes (members
// that did not rejoin are dropped); the first member of a new group waits
// group.initial.rebalance.delay.ms for others; SyncGroup hands out the leader's assignment once
// it is written to the offsets partition (so a new coordinator resumes the generation without a
// rebalance); sessions expire after session.timeout.ms without a heartbeat. Gannet's addition: a
// heartbeat may long-poll and returns as soon as a rebalance starts.
//
// Offset commits are records appended to the group's offsets partition with acks=all; the answer
// comes after the ISR has them, and only then does the cache show them.
//
// Threads: every RPC runs on its gRPC thread and may block (JoinGroup until the join phase ends,
// SyncGroup until the leader's assignment is written, a heartbeat's long poll), always bounded.
// mu_ guards all group state and is never held across log I/O or replication waits. One timer
// thread completes join phases and expires sessions (it never waits on the log, so a slow offsets
// partition cannot stall the groups of the others); one loader thread replays partitions; one
// writer thread expires offsets, removes groups left with nothing and writes the record of
// groups that became Empty.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/consumer_group.h"
#include "broker/deadline_timer.h"
#include "broker/executor.h"
#include "broker/partition.h"
#include "common/clock.h"
#include "proto/group.pb.h"

namespace gannet::broker {

inline constexpr const char* kOffsetsTopic = "__consumer_offsets";

struct GroupCoordinatorOptions {
  int32_t node_id = -1;
  int32_t offsets_partitions = 50;                // offsets.topic.num.partitions
  int32_t min_session_timeout_ms = 1'000;         // group.min.session.timeout.ms (Kafka: 6000)
  int32_t max_session_timeout_ms = 1'800'000;     // group.max.session.timeout.ms
  int32_t initial_rebalance_delay_ms = 1'000;     // group.initial.rebalance.delay.ms (Kafka: 3000)
  int32_t max_group_size = 1'000'000;             // group.max.size (members + pending ids)
  // Gannet's key, after KIP-932's group.share.max.groups: groups this coordinator holds in memory
  // at most. Past it a JoinGroup or OffsetCommit naming a new group gets GROUP_MAX_SIZE_REACHED;
  // groups loaded from the log always load.
  int32_t max_groups = 100'000;                   // group.max.groups
  int64_t offsets_retention_ms = 7LL * 24 * 3600 * 1000;  // offsets.retention.minutes
  int64_t offsets_retention_check_interval_ms = 600'000;  // offsets.retention.check.interval.ms
  int32_t offset_commit_timeout_ms = 5'000;       // offsets.commit.timeout.ms
  int32_t offset_metadata_max_bytes = 4'096;      // offset.metadata.max.bytes
  ConsumerGroupConfig consumer;                   // group.consumer.* (broker-assigned groups)
};

class GroupCoordinator {
 public:
  // `partition(p)`: this broker's replica of offsets partition p, or null.
  using PartitionLookup = std::function<std::shared_ptr<Partition>(int32_t)>;

  GroupCoordinator(GroupCoordinatorOptions options, PartitionLookup partition, Clock* clock = nullptr);
  ~GroupCoordinator();
  // Ends every blocked call (they answer NOT_COORDINATOR) and stops the threads. Idempotent.
  void stop();

  // Kafka's choice: Java's String.hashCode of the group id, made non-negative, mod N (the same
  // for ASCII group ids; other bytes are taken one by one).
  static int32_t partition_for(const std::string& group, int32_t partitions);

  // The replica manager saw offsets partition p's leadership: `leader_epoch` >= 0 when this
  // broker leads it in that epoch, -1 when it does not (or the replica is gone).
  // `partition_count`: the offsets topic's partitions (what partition_for() divides by), 0 to
  // leave it as it was.
  void on_leadership(int32_t p, int32_t leader_epoch, int32_t partition_count = 0);

  // Waits for the answer (the synchronous form of the one below).
  void join_group(const v1::JoinGroupRequest& req, const std::string& client_host, v1::JoinGroupResponse* resp);
  // Answers in `resp` and runs `done` once: at once, or when the join phase ends with an answer
  // for this member (parked meanwhile, holding no thread). Returns the parked call's id (0 when
  // answered at once), for cancel_parked.
  uint64_t join_group(const v1::JoinGroupRequest& req, const std::string& client_host, v1::JoinGroupResponse* resp,
                      std::function<void()> done);
  void sync_group(const v1::SyncGroupRequest& req, v1::SyncGroupResponse* resp);
  // Answers in `resp` and runs `done` once: at once, or once the leader's assignment is written
  // (the leader's own sync writes it, asynchronously), the group moves on or the bound passes.
  // Returns the parked call's id (0: answered at once) for cancel_parked. Never blocks.
  uint64_t sync_group(const v1::SyncGroupRequest& req, v1::SyncGroupResponse* resp, std::function<void()> done);
  // Waits for the answer (the synchronous form of the one below).
  void heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp);
  // Answers in `resp` and runs `done` once: at once, or, for a long poll (max_wait_ms > 0 in a
  // Stable group), when a rebalance starts, the member or the group goes, the generation moves,
  // or the wait ends (at most a third of the session). A held heartbeat is parked, holding no
  // thread. Returns the parked heartbeat's id (0 when answered at once), for cancel_parked.
  uint64_t heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp, std::function<void()> done);
  // The client went away: a parked call (a held heartbeat, a join) answers now.
  void cancel_parked(uint64_t id);
  void leave_group(const v1::LeaveGroupRequest& req, v1::LeaveGroupResponse* resp);
  // Answers in `resp` and runs `done` once: at once, or, when the last member left, once the
  // group's Empty record is written (asynchronously). Never blocks.
  void leave_group(const v1::LeaveGroupRequest& req, v1::LeaveGroupResponse* resp, std::function<void()> done);
  // Waits for the answer (the synchronous form of the one below).
  void offset_commit(const v1::OffsetCommitRequest& req, v1::OffsetCommitResponse* resp);
  // Answers in `resp`, then runs `done` once: at once for a refusal, else once the records are on
  // the offsets partition's ISR (or failed). Never blocks on replication: the wait is parked in the
  // partition's purgatory. `req` and `resp` must live until `done`.
  void offset_commit(const v1::OffsetCommitRequest& req, v1::OffsetCommitResponse* resp, std::function<void()> done);
  void offset_fetch(const v1::OffsetFetchRequest& req, v1::OffsetFetchResponse* resp);
  void list_groups(const v1::ListGroupsRequest& req, v1::ListGroupsResponse* resp);
  void describe_groups(const v1::DescribeGroupsRequest& req, v1::DescribeGroupsResponse* resp);
  void delete_groups(const v1::DeleteGroupsRequest& req, v1::DeleteGroupsResponse* resp);

  // Broker-assigned groups (KIP-848; broker/consumer_group.h): answered at once, never blocks.
  // `client_host`: where the call came from (shown by describe).
  void consumer_group_heartbeat(const v1::ConsumerGroupHeartbeatRequest& req, const std::string& client_host,
                                v1::ConsumerGroupHeartbeatResponse* resp);
  void consumer_group_describe(const v1::ConsumerGroupDescribeRequest& req, v1::ConsumerGroupDescribeResponse* resp);
  // Where broker-assigned groups read topics' partition counts: `source()` is called without
  // the coordinator's lock and returns a lookup over one metadata image. Set before requests come.
  void set_topic_counts(std::function<TopicPartitionCounts()> source) { topic_counts_ = std::move(source); }

  // Test hooks: expire offsets now; the groups currently held.
  void run_offset_expiry_for_test();
  // Runs `task` on the thread that completes record writes (tests hold it to order a completion).
  void post_completion_for_test(std::function<void()> task) { completions_.post(std::move(task)); }
  size_t group_count() const;
  // The committed offsets this coordinator holds, at most `limit` of them (group, topic,
  // partition, offset), for the metrics listener's lag figures.
  struct Committed {
    std::string group, topic;
    int32_t partition;
    int64_t offset;
  };
  std::vector<Committed> committed_offsets(size_t limit) const;

 private:
  enum class State { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable, kDead };
  static const char* state_name(State s);

  struct Member {
    std::string id;
    std::string client_id;
    std::string client_host;
    std::string protocol_type;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::vector<std::pair<std::string, std::string>> protocols;  // name, metadata
    std::string assignment;
    int64_t session_deadline_ms = 0;
    bool awaiting_join = false;
    bool awaiting_sync = false;
    bool is_new = false;  // joined in the current rebalance
    // The answers of the current generation's phases, for the blocked calls to pick up.
    std::optional<v1::JoinGroupResponse> join_result;
    std::optional<v1::SyncGroupResponse> sync_result;
  };

  struct CommittedOffset {
    int64_t offset = -1;
    int32_t leader_epoch = -1;
    std::string metadata;
    int64_t commit_timestamp_ms = 0;
    int64_t log_offset = -1;  // where the record is, to keep the cache in log order
  };

  struct Group {
    std::string id;
    int32_t partition = 0;
    State state = State::kEmpty;
    std::string protocol_type;
    std::string protocol_name;
    int32_t generation = 0;
    std::string leader;
    std::map<std::string, Member> members;
    std::map<std::string, int64_t> pending_members;  // MEMBER_ID_REQUIRED handed out: id -> expiry
    int64_t join_deadline_ms = 0;  // the join phase ends by then
    // CompletingRebalance: members that have not sent SyncGroup by then are removed (a leader
    // that never sends the assignment must not hold the group forever while it heartbeats).
    int64_t sync_deadline_ms = 0;
    int64_t initial_delay_until_ms = 0;  // a new group's join phase waits at least until then
    int64_t state_timestamp_ms = 0;
    std::map<std::pair<std::string, int32_t>, CommittedOffset> offsets;
    bool has_metadata_record = false;  // a group metadata record exists in the log
    // Empty now, but the log's last group record still has members: write_empty_groups() writes
    // the Empty generation (else a new coordinator would restore members that left).
    bool empty_unwritten = false;
    // Set once a member heartbeats under the broker-assigned protocol (KIP-848). While it has
    // members the group is a consumer group: classic joins get INCONSISTENT_GROUP_PROTOCOL.
    std::unique_ptr<ConsumerGroup> consumer;
    // The group epoch of the last consumer-group record written (-1: none), and whether a newer
    // Stable (or empty) state waits for the writer thread.
    int32_t consumer_written_epoch = -1;
    bool consumer_dirty = false;
    // A write of this group's record (its metadata or its tombstone) is in flight: the next
    // waits (claim_record_write_locked), so they land in the order their contents were decided.
    bool record_write_in_flight = false;
  };

  // A call parked until the groups change in a way it reports (a held heartbeat, a join waiting
  // for its phase to end), or its deadline.
  struct ParkedCall {
    // Under mu_: fills the answer and returns true once the call is answered; `at_deadline`: the
    // wait is over, so it must answer.
    std::function<bool(bool at_deadline)> check;
    std::function<void()> done;
    uint64_t timer = 0;
  };

  struct PartitionLoad {
    int32_t epoch = -1;
    bool loaded = false;
  };

  // Checks that this broker coordinates the group's partition now; NONE or the error to return.
  gannet::v1::ErrorCode check_coordinator_locked(const std::string& group, int32_t* partition) const;
  Group* find_group_locked(const std::string& id);
  // The group and member a request names, checked: NONE, or the error to answer (with *why).
  ErrorCode find_member_locked(const std::string& group, const std::string& member, Group** g, std::string* why);
  // Waits until no write of group `id`'s record is in flight and claims it; nullptr if the group
  // went away meanwhile. mu_ is held through `l` (released while waiting).
  Group* claim_record_write_locked(std::unique_lock<std::mutex>& l, const std::string& id);
  void release_record_write_locked(const std::string& id);
  // The Empty record of group `id` if it needs one: claims the record-write slot (or retries on
  // the timer while another write holds it) and returns the write to run outside mu_, which runs
  // `done` when it completes; with nothing to write, returns `done` itself.
  std::function<void()> empty_write_locked(const std::string& id, std::function<void()> done);
  // The leader's SyncGroup: claims the group's record-write slot (or retries on the timer while
  // another write holds it), sets the assignments, and returns the write to run outside mu_
  // (null when there is nothing to write now). Its completion moves the group to Stable.
  std::function<void()> leader_sync_write_locked(const std::string& id, int32_t generation, const std::string& leader,
                                                 std::vector<std::pair<std::string, std::string>> assignments);
  Group& get_or_create_group_locked(const std::string& id, int32_t partition);
  // A group changed: blocked calls re-check (cv_), parked calls that can answer do.
  void notify_locked();
  // Parks `call` (answered by notify_locked, or by its check at the deadline); returns its id.
  uint64_t park_locked(ParkedCall call, int64_t wait_ms);
  // Takes parked call `id` out and hands its `done` to completions_ (never run under mu_).
  void finish_parked_locked(uint64_t id);
  // A new group would pass group.max.groups: the error to answer (with *why), else NONE.
  ErrorCode check_new_group_locked(const std::string& id, std::string* why) const;
  // Nothing of the group remains (no members, pending ids, offsets, record or write in flight).
  static bool is_vacant(const Group& g);
  // The group has members under the broker-assigned protocol.
  static bool is_consumer_group(const Group& g) { return g.consumer && !g.consumer->empty(); }
  // The group has classic members (or is in a classic rebalance).
  static bool is_classic_active(const Group& g) {
    return !g.members.empty() || !g.pending_members.empty() || g.state != State::kEmpty;
  }
  TopicPartitionCounts topic_counts() const;
  // A broker-assigned group that became Stable or empty since its last record: flag it for the
  // writer thread (write_consumer_groups).
  void mark_consumer_record_locked(Group& g);
  // Writes the record of every flagged broker-assigned group (as write_empty_groups).
  void write_consumer_groups(std::unique_lock<std::mutex>& l);
  void prepare_rebalance_locked(Group& g, const std::string& reason);
  void maybe_complete_join_locked(Group& g, int64_t now);
  void complete_join_locked(Group& g, int64_t now);
  void remove_member_locked(Group& g, const std::string& member_id, const std::string& reason);
  std::string select_protocol_locked(const Group& g) const;
  bool supports_protocols_locked(const Group& g, const v1::JoinGroupRequest& req) const;
  v1::GroupMetadataValue group_value_locked(const Group& g) const;

  // Appends records (key, value or nullopt) to offsets partition p as its leader in `epoch`,
  // waiting for the ISR (append_records_async, waited on). Without mu_ held; never on the
  // completions_ thread. Returns the error to answer with and the first offset.
  gannet::v1::ErrorCode append_records(int32_t p, int32_t epoch,
                                       const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
                                       int64_t* base_offset);
  // append_records without the wait: `done(error, base offset)` runs once the ISR has the records
  // (or on an error, the commit timeout, or stop), on the completions_ thread.
  void append_records_async(int32_t p, int32_t epoch,
                            const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
                            std::function<void(ErrorCode, int64_t)> done);
  void timer_loop();
  void loader_loop();
  void writer_loop();
  // Writes the record of every group flagged empty_unwritten. Takes and gives back mu_ (held by
  // `l` on entry and exit; released around the appends).
  void write_empty_groups(std::unique_lock<std::mutex>& l);
  void load_partition(int32_t p, int32_t epoch);
  void expire_offsets(int64_t now);
  int64_t now_ms() const { return clock_->now_ms(); }

  const GroupCoordinatorOptions options_;
  const PartitionLookup partition_;
  Clock* const clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;   // any group changed: blocked calls re-check
  std::condition_variable timer_cv_;
  std::condition_variable writer_cv_;  // write_empty_groups() has work
  bool stopping_ = false;
  std::map<std::string, Group> groups_;
  std::map<int32_t, PartitionLoad> partitions_;
  std::deque<std::pair<int32_t, int32_t>> load_queue_;  // (partition, epoch) to load
  std::condition_variable load_cv_;
  int64_t next_offset_expiry_ms_ = 0;
  int32_t partition_count_;  // of the offsets topic, as the image says once it exists
  std::thread timer_thread_, loader_thread_, writer_thread_;
  // Parked offset commits: their commit timeouts, and the thread that finishes them (never the
  // thread that moved the HW, which may hold the broker's locks).
  DeadlineTimer commit_timer_;  // also the deadlines of parked heartbeats
  std::map<uint64_t, ParkedCall> parked_;  // with mu_
  uint64_t next_parked_id_ = 1;
  Executor completions_{1};
  std::function<TopicPartitionCounts()> topic_counts_;
};

}  // namespace gannet::broker
