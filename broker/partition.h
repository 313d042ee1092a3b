// Partition: one partition replica hosted by this broker: its log and its PartitionState, with the
// I/O and waiting around them (DESIGN.md, "Write path" and "Read path").
//
// Leader: appends producers' batches in its leader epoch; acks=all waits (on a condition
// variable, no polling) until the HW passes the batch; answers followers' fetches, checking their
// last fetched epoch against its epoch cache (a diverging follower is told where to truncate),
// and consumers' fetches below the HW. Follower: appends what the leader sends, truncates where
// told, and takes the leader's HW up to its own log end.
//
// Thread safety: every method locks mu_; appends are serialized per partition.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/fetch_waiter.h"
#include "broker/partition_state.h"
#include "proto/errors.pb.h"
#include "storage/log.h"
#include "storage/log_manager.h"

namespace gannet::broker {

using gannet::v1::ErrorCode;

struct ProduceOutcome {
  ErrorCode error = gannet::v1::NONE;
  std::string message;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  int32_t leader = -1;
  int32_t leader_epoch = -1;
};

struct FetchOutcome {
  ErrorCode error = gannet::v1::NONE;
  std::string message;
  int64_t high_watermark = 0;
  int64_t log_start_offset = 0;
  int64_t log_end_offset = 0;
  std::optional<std::pair<int32_t, int64_t>> diverging;  // epoch, end offset
  int32_t leader = -1;
  int32_t leader_epoch = -1;
  std::string records;
  // With as_slices: the records as file ranges instead (not read; a front-end sends them with
  // sendfile), `slice_bytes` in all.
  std::vector<storage::FileSlice> slices;
  uint64_t slice_bytes = 0;
  bool hw_moved = false;  // a follower's fetch advanced the HW
};

class Partition {
 public:
  Partition(storage::TopicPartition tp, std::string topic_id, std::shared_ptr<storage::Log> log, int32_t me);

  const storage::TopicPartition& tp() const { return tp_; }
  const std::string& topic_id() const { return topic_id_; }
  std::shared_ptr<storage::Log> log() const { return log_; }

  // Metadata changed (leader, epochs, ISR). Returns true if this replica became leader.
  bool apply_metadata(const PartitionMetadata& m, int32_t min_insync_replicas, int64_t now_ms);

  // Leader: appends `batches` (rewritten in place: offsets, epoch). acks=-1 first checks the ISR
  // against min.insync.replicas.
  ProduceOutcome append_as_leader(std::string* batches, int acks);
  // Leader: waits until the HW passes `last_offset` in `leader_epoch`, or the deadline.
  ErrorCode wait_for_replication(int64_t last_offset, int32_t leader_epoch, int64_t timeout_ms);

  // The acks=-1 purgatory: parks `done` until the answer wait_for_replication would give is known
  // (the HW passes `last_offset` in `leader_epoch`: NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND if
  // the ISR shrank below min.insync.replicas; the leadership moves: NOT_LEADER_OR_FOLLOWER; the
  // broker stops: REQUEST_TIMED_OUT), or expire_replication_wait(id) (REQUEST_TIMED_OUT). `done`
  // runs exactly once, never under the partition's locks, on the thread that completed it (this
  // one, at once, if the answer is already known; then the id is 0). Returns the waiter's id.
  using ReplicationDone = std::function<void(ErrorCode)>;
  uint64_t on_replicated(int64_t last_offset, int32_t leader_epoch, ReplicationDone done);
  // Completes the waiter with REQUEST_TIMED_OUT if it is still parked.
  void expire_replication_wait(uint64_t id);
  size_t replication_waiters() const {
    std::lock_guard<std::mutex> l(mu_);
    return repl_waiters_.size();
  }

  // A fetch: replica_id < 0 a consumer (below the HW), else a follower (its progress counts).
  // `count_progress`: a follower's fetch offset counts toward the HW and ISR only the first time
  // a long-polling request looks (a request still waiting after its sender died and restarted
  // must not vouch again for records the new incarnation may have lost). `as_slices`: the
  // records as file ranges (FetchOutcome::slices), not read.
  FetchOutcome read(int32_t replica_id, int64_t fetch_offset, int32_t current_leader_epoch,
                    int32_t last_fetched_epoch, size_t max_bytes, int64_t now_ms, bool count_progress = true,
                    bool as_slices = false);

  // ListOffsets: -1 latest (HW), -2 earliest, else by timestamp.
  ProduceOutcome list_offset(int64_t timestamp, int32_t current_leader_epoch);

  // Follower: where to fetch from next (offset, epoch of the batch before it or -1), if this
  // replica follows `leader` in some epoch.
  struct FollowerFetch {
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int32_t leader_epoch;
  };
  std::optional<FollowerFetch> follower_fetch_state(int32_t leader) const;
  // Follower: apply the leader's answer. Returns an error to back off on.
  ErrorCode apply_leader_response(int32_t leader_epoch, const FetchOutcome& r);

  // Leader: an ISR change to propose, with the epochs it is guarded by.
  struct IsrProposal {
    std::vector<int32_t> isr;
    int32_t leader_epoch;
    int32_t partition_epoch;
    size_t from_size = 0;  // the ISR's size it replaces (a shrink or an expansion, for metrics)
  };
  std::optional<IsrProposal> isr_proposal(int64_t now_ms, int64_t lag_time_max_ms);
  // The controller refused it with `code`. A refusal that says the controller holds a newer
  // partition state (INVALID_UPDATE_VERSION, FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION)
  // keeps the proposal counting for the HW until the metadata moves the partition epoch; any
  // other refusal ends it.
  void isr_proposal_failed(ErrorCode code);
  // Its outcome is unknown (the call failed in transit; it may have committed): keep counting
  // both ISRs for the HW, and send the same proposal again.
  void isr_proposal_unknown(const IsrProposal& p);
  // The broker stops: acks=all waiters return now.
  void shutdown();

  bool is_leader() const;
  int32_t leader() const;
  int32_t leader_epoch() const;
  int64_t high_watermark() const;

  // Fault injection for tests: runs inside read(), after the checks, before the log is read.
  void set_read_hook_for_test(std::function<void()> f) { read_hook_for_test_ = std::move(f); }

  // Wakes `w` once, at the next append, HW move or leadership change here (or shutdown). A
  // waiter watches a partition at most once at a time; expired waiters are dropped as it goes.
  void watch(const std::shared_ptr<FetchWaiter>& w);
  // Wakes the waiters watching here (called without mu_ held).
  void wake_watchers();
  // The broker dropped or replaced this object: wakes its watchers, and any later watch() at
  // once (a fetch may still hold it), so their fetches look again at what is there now.
  void retire();
  size_t watchers_for_test() {
    std::lock_guard<std::mutex> l(watchers_mu_);
    return watchers_.size();
  }

 private:
  // The leader's log end as the HW may count it (synced records only under flush.messages=1).
  int64_t leader_end_locked() const;
  // The leader's own progress after an append (synced, where that is due): moves the HW if it
  // can. Returns whether it moved.
  bool count_local_append_locked();
  ErrorCode check_epoch_locked(int32_t current_leader_epoch) const;
  // The answer to a replication wait, if it is known now.
  std::optional<ErrorCode> replication_result_locked(int64_t last_offset, int32_t leader_epoch) const;
  // Wakes the acks=-1 waiters (threads on hw_cv_, parked callbacks) after the HW, the leadership
  // or stopping_ changed. Without mu_ held.
  void hw_changed();

  const storage::TopicPartition tp_;
  const std::string topic_id_;
  const std::shared_ptr<storage::Log> log_;
  const int32_t me_;
  mutable std::mutex mu_;
  std::condition_variable hw_cv_;
  PartitionState state_;
  int32_t min_insync_ = 1;
  bool stopping_ = false;
  std::optional<IsrProposal> resend_;
  // Parked acks=-1 waits (with mu_), by last offset: the HW completes them from the front.
  struct ReplicationWaiter {
    uint64_t id;
    int32_t leader_epoch;
    ReplicationDone done;
  };
  std::multimap<int64_t, ReplicationWaiter> repl_waiters_;
  std::unordered_map<uint64_t, std::multimap<int64_t, ReplicationWaiter>::iterator> repl_waiter_ids_;
  uint64_t next_waiter_id_ = 1;
  int32_t waiters_scanned_epoch_ = -1;  // the leader epoch hw_changed() last looked in

  std::mutex watchers_mu_;
  std::vector<std::weak_ptr<FetchWaiter>> watchers_;
  bool retired_ = false;  // with watchers_mu_
  std::function<void()> read_hook_for_test_;
};

}  // namespace gannet::broker
