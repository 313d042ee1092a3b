// PartitionState: a partition replica's view of itself as a plain state machine (STYLE.md: events
// in, decisions out; no I/O, no clock, no locks), DESIGN.md "Write path" 5:
//  - metadata in: who leads, in which leader and partition epoch, the replicas and the ISR;
//  - as leader: the local log end after appends, and each follower's fetch offset (a follower
//    fetching at offset o holds every record below o);
//  - out: the high watermark (the lowest log end over the ISR, never moving back in a term) and
//    the ISR the leader should propose (AlterPartition): followers lagging for longer than
//    replica.lag.time.max.ms leave, followers that reached the HW (and the leader's epoch start)
//    come back. While a change is in flight the HW counts the union of both ISRs, so neither a
//    shrink nor an expansion can move it past a replica that does not hold the records.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace gannet::broker {

struct PartitionMetadata {
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  int32_t leader = -1;
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;
};

class PartitionState {
 public:
  explicit PartitionState(int32_t me) : me_(me) {}

  // The metadata log's view changed. `log_end` and `high_watermark` are the local log's.
  // Returns true if this replica became leader (of a new leader epoch).
  bool apply_metadata(const PartitionMetadata& m, int64_t log_end, int64_t high_watermark, int64_t now_ms);

  bool is_leader() const { return meta_.leader == me_; }
  int32_t leader() const { return meta_.leader; }
  int32_t leader_epoch() const { return meta_.leader_epoch; }
  int32_t partition_epoch() const { return meta_.partition_epoch; }
  const std::vector<int32_t>& isr() const { return meta_.isr; }
  const std::vector<int32_t>& replicas() const { return meta_.replicas; }
  // The log end when this replica became leader: followers rejoin the ISR only past it.
  int64_t epoch_start_offset() const { return epoch_start_offset_; }

  // Leader: the local log end after an append. Returns true if the HW moved.
  bool on_local_append(int64_t log_end);
  // Leader: follower `replica` fetched at `fetch_offset` at `now_ms`. Returns true if the HW moved.
  bool on_follower_fetch(int32_t replica, int64_t fetch_offset, int64_t now_ms);
  int64_t high_watermark() const { return hw_; }
  int64_t follower_log_end(int32_t replica) const;

  // Leader: the ISR to propose now, or nullopt (no change, or one already in flight).
  std::optional<std::vector<int32_t>> wanted_isr(int64_t now_ms, int64_t lag_time_max_ms) const;
  // Leader: a proposal went out / was refused (the metadata log then tells the outcome).
  void set_pending_isr(std::vector<int32_t> isr) { pending_isr_ = std::move(isr); }
  void clear_pending_isr() { pending_isr_.reset(); }
  bool isr_change_pending() const { return pending_isr_.has_value(); }

 private:
  struct Follower {
    int64_t log_end = -1;         // -1: not fetched yet in this term
    int64_t last_caught_up_ms = 0;
    int64_t leader_end_at_last_fetch = -1;
    int64_t last_fetch_ms = -1;
  };
  bool maybe_advance_hw();

  const int32_t me_;
  PartitionMetadata meta_;
  int64_t log_end_ = 0;
  int64_t hw_ = 0;
  int64_t epoch_start_offset_ = 0;
  std::map<int32_t, Follower> followers_;
  std::optional<std::vector<int32_t>> pending_isr_;
};

}  // namespace gannet::broker
