// ConsumerGroup: one consumer group under the broker-assigned protocol (Kafka's KIP-848), as a
// plain state machine (STYLE.md: events in, decisions out; no I/O, no clock, no locks, no
// threads). The GroupCoordinator drives it under its lock: heartbeats and offset-commit checks
// in, answers out; its timer calls expire().
//
// The model:
//  - Members only heartbeat. A heartbeat carries the member's epoch, its subscription (topic
//    names, sent on join and when it changes), the server assignor it asks for, and the
//    partitions it owns now (after applying what it was last given).
//  - The group epoch moves whenever the inputs of the assignment change: a member joins, leaves
//    or is removed, a subscription or the assignor changes, or a subscribed topic's partition
//    count changes. The target assignment is computed at once for the new group epoch with a
//    server-side assignor ("uniform": balanced and sticky; "range": contiguous ranges per topic,
//    co-partitioned topics line up), and its epoch becomes the assignment epoch.
//  - Each member moves toward its target on its own heartbeats, incrementally (Kafka's
//    reconciliation): a member that owns partitions outside its target is first told to give
//    them up and keeps its epoch (state "unrevoked") until a heartbeat shows it no longer owns
//    them; then it takes the assignment epoch and is given the target partitions that no other
//    member still owns ("unreleased" while some are withheld; they are given on a later
//    heartbeat once released). So a partition is never given to a member while another still
//    owns it, and members keep consuming every partition they keep (no stop-the-world).
//  - Fencing: a heartbeat with an epoch other than the member's current one gets
//    FENCED_MEMBER_EPOCH, unless it is the member's previous epoch and the partitions it reports
//    are among those it holds (the answer that moved it was lost); an unknown member gets
//    UNKNOWN_MEMBER_ID. A member is removed (its partitions released) when its session passes
//    without a heartbeat, or when it holds partitions to give up past its rebalance timeout.
//  - Offset commits must carry the member's current epoch (STALE_MEMBER_EPOCH otherwise).
//
// Across coordinators: the coordinator writes snapshot() to __consumer_offsets whenever the group
// becomes Stable or empty, and a new coordinator restore()s it (docs/design-notes.md §23).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/errors.pb.h"

namespace gannet::broker {

// topic -> partitions, ordered: an assignment, or what a member owns.
using TopicPartitionSet = std::map<std::string, std::set<int32_t>>;

// The partition count of a topic now, or -1 if it does not exist.
using TopicPartitionCounts = std::function<int32_t(const std::string&)>;

struct ConsumerGroupConfig {
  int32_t session_timeout_ms = 45'000;     // group.consumer.session.timeout.ms
  int32_t heartbeat_interval_ms = 5'000;   // group.consumer.heartbeat.interval.ms
  int32_t max_size = 1'000;                // group.consumer.max.size (Kafka: Integer.MAX_VALUE)
  // group.consumer.assignors: the server assignors offered; the first is the default.
  std::vector<std::string> assignors = {"uniform", "range"};
};

struct ConsumerHeartbeat {
  std::string member_id;      // "" on a first join: one is handed out
  int32_t member_epoch = 0;   // 0: join; -1: leave; -2: leave (static); else the current epoch
  std::string client_id;
  std::string client_host;
  std::string rack_id;
  int32_t rebalance_timeout_ms = -1;                      // -1: unchanged
  std::optional<std::vector<std::string>> subscribed_topics;  // nullopt: unchanged
  std::optional<std::string> server_assignor;             // nullopt: unchanged ("" = the default)
  std::optional<TopicPartitionSet> owned;                 // nullopt: unchanged
};

struct ConsumerHeartbeatAnswer {
  gannet::v1::ErrorCode error = gannet::v1::NONE;
  std::string message;
  std::string member_id;
  int32_t member_epoch = 0;
  int32_t heartbeat_interval_ms = 0;
  std::optional<TopicPartitionSet> assignment;  // set when it differs from what was last sent
};

// What a new coordinator needs to resume a Stable (or empty) group: taken by snapshot(), given
// to restore().
struct ConsumerGroupSnapshot {
  int32_t group_epoch = 0;
  int32_t assignment_epoch = 0;
  struct Member {
    std::string id, client_id, client_host, rack_id, assignor;
    int32_t epoch = 0;
    int32_t rebalance_timeout_ms = 300'000;
    std::vector<std::string> topics;
    TopicPartitionSet assigned;
  };
  std::vector<Member> members;
  std::map<std::string, int32_t> subscribed_counts;
};

class ConsumerGroup {
 public:
  enum class MemberState { kStable, kUnrevoked, kUnreleased };

  struct Member {
    std::string id;
    std::string client_id;
    std::string client_host;
    std::string rack_id;
    int32_t epoch = 0;
    int32_t previous_epoch = -1;
    int32_t rebalance_timeout_ms = 300'000;
    std::vector<std::string> topics;  // sorted, unique
    std::string assignor;             // as asked ("" = the group's default)
    MemberState state = MemberState::kStable;
    TopicPartitionSet assigned;            // what it was given (and may consume)
    TopicPartitionSet pending_revocation;  // what it must give up before moving on
    int64_t session_deadline_ms = 0;
    int64_t revocation_deadline_ms = 0;  // kUnrevoked: removed if still owning them by then
    std::optional<TopicPartitionSet> last_sent;  // the assignment in the last answer
  };

  ConsumerGroup(std::string id, ConsumerGroupConfig config);

  // One heartbeat at now_ms. `counts` gives the partition counts of subscribed topics.
  // `new_member_id` is used when a joining member sent none.
  ConsumerHeartbeatAnswer heartbeat(const ConsumerHeartbeat& hb, int64_t now_ms, const TopicPartitionCounts& counts,
                                    const std::string& new_member_id);
  // Removes members whose session or revocation deadline passed; returns their ids.
  std::vector<std::string> expire(int64_t now_ms, const TopicPartitionCounts& counts);
  // The earliest deadline of any member (INT64_MAX with none).
  int64_t next_deadline_ms() const;
  // The error an OffsetCommit by (member, epoch) gets: NONE, UNKNOWN_MEMBER_ID or
  // STALE_MEMBER_EPOCH.
  gannet::v1::ErrorCode check_commit(const std::string& member_id, int32_t epoch) const;

  bool empty() const { return members_.empty(); }
  const std::string& id() const { return id_; }
  int32_t group_epoch() const { return group_epoch_; }
  int32_t assignment_epoch() const { return assignment_epoch_; }
  const std::map<std::string, Member>& members() const { return members_; }
  const TopicPartitionSet& target(const std::string& member_id) const;
  // The assignor the target assignment is computed with.
  std::string assignor_name() const;
  // Kafka's ConsumerGroupDescribe states: "Empty", "Assigning", "Reconciling", "Stable".
  std::string state_name() const;
  // The group as it is (meant for a Stable or empty group: each member's partitions are then its
  // target). restore() takes it back in a new coordinator: every member Stable at its epoch with
  // those partitions, its session starting at now_ms.
  ConsumerGroupSnapshot snapshot() const;
  void restore(const ConsumerGroupSnapshot& s, int64_t now_ms);
  // Who owns (holds as assigned or pending revocation) a partition, "" if no one: for tests.
  std::string owner(const std::string& topic, int32_t partition) const;
  static const char* member_state_name(MemberState s);

 private:
  void remove_member(const std::string& id);
  // Recomputes the subscribed topics' partition counts; bumps the group epoch if they changed.
  void refresh_subscription_metadata(const TopicPartitionCounts& counts);
  void maybe_compute_target();
  // Moves `m` toward its target (see the header comment). `owned`: what it reports owning.
  void reconcile(Member& m, const std::optional<TopicPartitionSet>& owned, int64_t now_ms);
  void set_owned(Member& m, TopicPartitionSet assigned, TopicPartitionSet pending);

  const std::string id_;
  const ConsumerGroupConfig config_;
  int32_t group_epoch_ = 0;
  int32_t assignment_epoch_ = 0;
  std::map<std::string, Member> members_;
  std::map<std::string, TopicPartitionSet> target_;  // member id -> target partitions
  std::map<std::string, int32_t> subscribed_counts_;  // topic -> partitions, as last assigned with
  std::map<std::pair<std::string, int32_t>, std::string> owners_;  // partition -> member holding it
};

}  // namespace gannet::broker
