// RaftCore: the KRaft-style quorum algorithm (KIP-595 flavour of Raft) as a deterministic state
// machine, after etcd's raft: events go in (step(message), tick(now), propose(), on_synced()),
// effects come out in a Ready (state to persist, log writes, messages, committed entries), and
// nothing inside touches a clock, a socket, a thread or a file. The driver (real time, storage/,
// gRPC) and the simulator (virtual time, simulated network and disk) both run it.
//
// Protocol summary:
//  - Leadership is numbered by epoch. A voter that hears nothing from a leader within the fetch
//    timeout first runs a pre-vote (no state change anywhere), then a real vote at epoch + 1. A
//    vote is granted to a candidate whose log (last epoch, end offset) is at least as up to date,
//    once per epoch; a pre-vote only if the voter has no live leader either.
//  - The new leader appends a control entry in its epoch, sends BeginQuorumEpoch to every voter
//    and serves Fetch(fetch_offset, last_fetched_epoch). A fetch whose last epoch does not match
//    the leader's log gets the diverging epoch and end offset; the follower truncates and fetches
//    again. A fetch below the log start gets the snapshot id; FetchSnapshot transfers it in chunks.
//  - The high watermark is the largest offset that a majority of voters has durably reached, and
//    it only advances to an offset whose entry is of the current epoch. It never moves back.
//  - A leader that has not been fetched from by a majority within the fetch timeout resigns.
//
// Durability contract with the driver (checked by the simulator):
//  - Ready.hard_state and Ready.snapshot must be durable before any of Ready.messages is sent.
//  - Ready.truncate_to then Ready.append are applied to the log in order; the driver reports
//    on_synced(ready.write_id) once everything written up to that Ready is durable.
//  - The leader counts its own log only up to what is synced; a follower fetches from its synced
//    end, so a fetch offset always means "durably stored below here".
//
// Not thread safe: the driver serializes all calls.
#pragma once

#include <cstdint>
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/messages.h"

namespace gannet::raft {

// Test-only switches that reintroduce known bugs, so the simulator can show it catches them.
struct Bugs {
  bool vote_not_persisted = false;        // a granted vote is never part of the persisted state
  bool leader_counts_unsynced = false;    // the leader counts its unsynced log toward the HW
  bool hw_from_unchecked_offset = false;  // a fetch offset counts before the epoch check
};

struct Config {
  NodeId id = kNoNode;
  std::vector<NodeId> voters;
  int64_t election_timeout_ms = 1000;     // randomized in [t, 2t)
  int64_t fetch_timeout_ms = 2000;        // follower: no leader contact -> election; leader: resign
  int64_t fetch_max_wait_ms = 500;        // long poll at the leader
  int64_t hw_notify_wait_ms = 5;          // at most this late a follower learns a new HW
  int64_t request_timeout_ms = 1500;      // resend an unanswered fetch
  size_t max_fetch_bytes = 1 << 20;
  // Larger proposals are refused (kRecordTooLarge). One entry holds one whole controller decision
  // (a 100,000-partition CreateTopics is about 6 MB), as KRaft's 8 MiB batches; a fetch always
  // carries at least one entry, and RPCs allow 16 MiB.
  size_t max_record_bytes = 8 << 20;
  size_t snapshot_chunk_bytes = 64 << 10;
  // Node ids are 0..max_node_id (reserved.broker.max.id): a fetch naming another id is dropped
  // before it creates any state, so the leader's per-replica state is bounded by the id range.
  NodeId max_node_id = 1000;
  // This node's quorum data directory id, sent with its fetches (see FetchRequest::directory_id).
  std::string directory_id;
  uint64_t seed = 1;
  Bugs bugs;
};

// State that must survive a restart. Persisted (synced) before dependent messages go out.
struct HardState {
  Epoch epoch = 0;
  NodeId voted_for = kNoNode;
  NodeId leader = kNoNode;
  bool operator==(const HardState&) const = default;
};

struct Snapshot {
  SnapshotId id;
  std::string data;
};

struct LeaderChange {
  Epoch epoch = 0;
  NodeId leader = kNoNode;  // kNoNode: no leader known in this epoch
};

struct Ready {
  uint64_t write_id = 0;                 // report on_synced(write_id) when this Ready is durable
  std::optional<HardState> hard_state;   // persist before sending messages
  std::optional<Snapshot> snapshot;      // replaces the log (install, then load into the state machine)
  std::optional<int64_t> truncate_to;    // cut the log to this end first
  std::vector<Entry> append;             // then append these
  std::optional<int64_t> compact_before; // the log below this may be deleted (a snapshot covers it)
  std::vector<Message> messages;
  std::vector<Entry> committed;          // newly committed entries, in offset order
  std::optional<LeaderChange> leader_change;

  bool empty() const {
    return !hard_state && !snapshot && !truncate_to && append.empty() && !compact_before &&
           messages.empty() && committed.empty() && !leader_change;
  }
};

enum class Role { kUnattached, kProspective, kCandidate, kLeader, kFollower, kObserver };
const char* role_name(Role r);

struct ReplicaStatus {
  NodeId id = kNoNode;
  bool voter = false;
  int64_t end_offset = -1;     // last valid fetch offset (-1: none yet)
  int64_t last_fetch_ms = -1;  // when it last fetched (-1: never)
};

enum class ProposeError { kNotLeader, kRecordTooLarge };

// Epochs stop short of INT32_MAX so that epoch + 1 never overflows; messages claiming more are
// refused.
inline constexpr Epoch kMaxEpoch = INT32_MAX - 1;

class RaftCore {
 public:
  // What the driver recovered from disk; all of it durable.
  struct Restored {
    HardState hard_state;
    std::optional<Snapshot> snapshot;
    std::vector<Entry> log;  // entries from the snapshot end (or 0), dense
  };

  RaftCore(Config config, Restored restored, int64_t now_ms);

  void tick(int64_t now_ms);
  void step(const Message& m, int64_t now_ms);
  // Appends records on the leader; returns the offset of the last one.
  std::variant<int64_t, ProposeError> propose(const std::vector<std::string>& records,
                                              int64_t now_ms);
  // Everything written up to Ready `write_id` is durable.
  void on_synced(uint64_t write_id, int64_t now_ms);
  // The state machine captured every entry below id.end_offset (committed) in `data`.
  void snapshot_taken(Snapshot snapshot);
  // Graceful leader shutdown: stop leading and tell the voters to elect a successor now.
  void resign(int64_t now_ms);

  Ready take_ready();
  bool has_ready() const;

  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Epoch epoch() const { return hs_.epoch; }
  NodeId leader() const { return hs_.leader; }
  bool is_voter() const { return voters_.count(config_.id) > 0; }
  int64_t high_watermark() const { return hw_; }
  int64_t log_start() const { return log_start_; }
  int64_t end_offset() const { return log_start_ + static_cast<int64_t>(log_.size()); }
  int64_t synced_end() const { return synced_end_; }
  Epoch last_epoch() const;
  // Entries from log_start(); the entry at offset o is entries()[o - log_start()].
  const std::vector<Entry>& entries() const { return log_; }
  // Replicas (voters and observers) the leader keeps fetch state for.
  size_t peer_count() const { return peers_.size(); }
  // Fetches this leader refused because another directory holds their replica id; fetches of
  // this node refused so.
  uint64_t duplicate_replica_fetches() const { return duplicate_replica_fetches_; }
  uint64_t duplicate_replica_refusals() const { return duplicate_replica_refusals_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  std::vector<ReplicaStatus> replica_status() const;  // leader: every replica it has heard from

  // Kafka's OffsetsForLeaderEpoch on this log: the largest epoch <= `epoch` and where it ends.
  std::optional<DivergingEpoch> end_offset_for_epoch(Epoch epoch) const;

 private:
  struct Peer {
    int64_t end_offset = -1;
    int64_t last_fetch_ms = -1;
    // The directory this leadership counts for the replica: the first to fetch.
    std::optional<std::string> directory_id;
  };
  struct ParkedFetch {
    FetchRequest request;
    int64_t deadline_ms;
  };

  // The leader we can vouch for now: ourselves, or one that answered within the fetch timeout.
  NodeId live_leader(int64_t now_ms) const;
  // A fetch answer's header: this node's epoch, leader, HW and log start, the request's offset.
  FetchResponse fetch_response_base(const FetchRequest& r) const;
  bool majority(size_t n) const { return n * 2 > voters_.size(); }
  Epoch epoch_at(int64_t offset) const;  // epoch of the entry at offset (snapshot epoch at start-1)
  void send(NodeId to, Body body);
  void set_hard_state(Epoch epoch, NodeId voted_for, NodeId leader);
  void reset_election_timer(int64_t now_ms, double scale = 1.0);

  void become_unattached(Epoch epoch, int64_t now_ms);
  void become_follower(Epoch epoch, NodeId leader, int64_t now_ms);
  void become_prospective(int64_t now_ms);
  void become_candidate(int64_t now_ms);
  void become_leader(int64_t now_ms);
  void maybe_step_down(Epoch epoch, NodeId leader, int64_t now_ms);

  void handle(const Message& m, const VoteRequest& r, int64_t now_ms);
  void handle(const Message& m, const VoteResponse& r, int64_t now_ms);
  void handle(const Message& m, const BeginQuorumEpoch& r, int64_t now_ms);
  void handle(const Message& m, const EndQuorumEpoch& r, int64_t now_ms);
  void handle(const Message& m, const FetchRequest& r, int64_t now_ms);
  void handle(const Message& m, const FetchResponse& r, int64_t now_ms);
  void handle(const Message& m, const FetchSnapshotRequest& r, int64_t now_ms);
  void handle(const Message& m, const FetchSnapshotResponse& r, int64_t now_ms);

  FetchResponse answer_fetch(const FetchRequest& r);
  void wake_parked(int64_t now_ms, bool all);
  void maybe_advance_hw(int64_t now_ms);
  void set_hw(int64_t hw);
  void maybe_send_fetch(int64_t now_ms);
  NodeId fetch_target();
  void append_entries(std::vector<Entry> entries);
  void truncate(int64_t end);

  const Config config_;
  const std::set<NodeId> voters_;
  std::mt19937_64 rng_;

  // Durable state as this core believes it (pending persistence until the next take_ready()).
  HardState hs_;
  HardState persisted_hs_;  // what the last Ready asked to persist
  Role role_ = Role::kUnattached;

  // The log: entries_[i] holds offset log_start_ + i. Invariant: offsets dense, epochs
  // non-decreasing. synced_end_ <= end_offset(); the HW only increases.
  std::vector<Entry> log_;
  int64_t log_start_ = 0;
  std::optional<Snapshot> snapshot_;
  int64_t synced_end_ = 0;
  int64_t hw_ = 0;
  int64_t applied_ = 0;  // committed entries below this were handed out in a Ready

  // Pending output.
  uint64_t next_write_id_ = 1;
  std::optional<int64_t> pending_truncate_;
  std::vector<Entry> pending_append_;
  std::optional<Snapshot> pending_snapshot_;
  std::optional<int64_t> pending_compact_;
  std::vector<Message> msgs_;
  std::optional<LeaderChange> pending_leader_change_;
  std::map<uint64_t, int64_t> unsynced_writes_;  // write id -> log end it covers

  // Timers.
  int64_t election_deadline_ms_ = 0;
  int64_t last_leader_contact_ms_ = -1;  // follower: its fetch timer (reset on following anew)
  // The last time the leader itself answered (a valid fetch or snapshot response, or its
  // BeginQuorumEpoch). Only this vouches for a live leader to candidates (live_leader()): a
  // node that follows a leader on someone else's word has not heard it. Otherwise two
  // followers of a dead leader keep sending each other back to it through pre-vote answers
  // and never elect (seen in a real cluster; the simulator's lose_leader_at_heal runs).
  int64_t last_heard_from_leader_ms_ = std::numeric_limits<int64_t>::min() / 2;

  // Elections.
  std::set<NodeId> votes_;
  std::set<NodeId> responded_;  // voters that answered this round (not asked again)
  int64_t last_vote_send_ms_ = 0;
  int64_t vote_retry_ms() const { return std::max<int64_t>(config_.election_timeout_ms / 4, 1); }
  void send_vote_requests(bool pre_vote, int64_t now_ms);

  // Leader.
  std::map<NodeId, Peer> peers_;
  std::map<NodeId, ParkedFetch> parked_;
  int64_t leader_since_ms_ = 0;

  // Follower / observer fetch state.
  bool fetch_in_flight_ = false;
  int64_t fetch_sent_ms_ = 0;
  int64_t fetch_sent_offset_ = -1;
  NodeId fetch_sent_to_ = kNoNode;
  size_t observer_probe_ = 0;
  uint64_t duplicate_replica_fetches_ = 0;
  uint64_t duplicate_replica_refusals_ = 0;
  // Snapshot download.
  std::optional<SnapshotId> downloading_;
  std::string download_;
};

}  // namespace gannet::raft
