#include "broker/consumer_group.h"

#include <algorithm>
#include <climits>

#include "common/assignor.h"

namespace gannet::broker {
namespace {

using gannet::v1::ErrorCode;

TopicPartitionSet minus(const TopicPartitionSet& a, const TopicPartitionSet& b) {
  TopicPartitionSet out;
  for (const auto& [topic, parts] : a) {
    auto it = b.find(topic);
    for (int32_t p : parts) {
      if (it == b.end() || !it->second.count(p)) out[topic].insert(p);
    }
  }
  return out;
}

TopicPartitionSet intersect(const TopicPartitionSet& a, const TopicPartitionSet& b) {
  TopicPartitionSet out;
  for (const auto& [topic, parts] : a) {
    auto it = b.find(topic);
    if (it == b.end()) continue;
    for (int32_t p : parts) {
      if (it->second.count(p)) out[topic].insert(p);
    }
  }
  return out;
}

bool is_empty(const TopicPartitionSet& s) {
  for (const auto& [topic, parts] : s) {
    if (!parts.empty()) return false;
  }
  return true;
}

// Equal as sets (a topic with no partitions counts as absent).
bool same(const TopicPartitionSet& a, const TopicPartitionSet& b) { return is_empty(minus(a, b)) && is_empty(minus(b, a)); }

bool overlaps(const TopicPartitionSet& a, const TopicPartitionSet& b) { return !is_empty(intersect(a, b)); }

std::vector<std::string> normalized(std::vector<std::string> topics) {
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  topics.erase(std::remove(topics.begin(), topics.end(), std::string()), topics.end());
  return topics;
}

const TopicPartitionSet kNone;

}  // namespace

ConsumerGroup::ConsumerGroup(std::string id, ConsumerGroupConfig config) : id_(std::move(id)), config_(std::move(config)) {}

const char* ConsumerGroup::member_state_name(MemberState s) {
  switch (s) {
    case MemberState::kStable: return "stable";
    case MemberState::kUnrevoked: return "unrevoked_partitions";
    case MemberState::kUnreleased: return "unreleased_partitions";
  }
  return "unknown";
}

const TopicPartitionSet& ConsumerGroup::target(const std::string& member_id) const {
  auto it = target_.find(member_id);
  return it == target_.end() ? kNone : it->second;
}

std::string ConsumerGroup::owner(const std::string& topic, int32_t partition) const {
  auto it = owners_.find({topic, partition});
  return it == owners_.end() ? "" : it->second;
}

std::string ConsumerGroup::assignor_name() const {
  // The one most members ask for; ties (and "" = default) go to the configured order.
  std::map<std::string, int> votes;
  for (const auto& [id, m] : members_) votes[m.assignor.empty() ? config_.assignors.front() : m.assignor]++;
  std::string best = config_.assignors.front();
  int best_votes = -1;
  for (const auto& name : config_.assignors) {
    auto it = votes.find(name);
    int v = it == votes.end() ? 0 : it->second;
    if (v > best_votes) {
      best = name;
      best_votes = v;
    }
  }
  return best;
}

std::string ConsumerGroup::state_name() const {
  if (members_.empty()) return "Empty";
  if (group_epoch_ > assignment_epoch_) return "Assigning";
  for (const auto& [id, m] : members_) {
    if (m.epoch != assignment_epoch_ || m.state != MemberState::kStable) return "Reconciling";
  }
  return "Stable";
}

int64_t ConsumerGroup::next_deadline_ms() const {
  int64_t next = INT64_MAX;
  for (const auto& [id, m] : members_) {
    next = std::min(next, m.session_deadline_ms);
    if (m.state == MemberState::kUnrevoked) next = std::min(next, m.revocation_deadline_ms);
  }
  return next;
}

ErrorCode ConsumerGroup::check_commit(const std::string& member_id, int32_t epoch) const {
  auto it = members_.find(member_id);
  if (it == members_.end()) return gannet::v1::UNKNOWN_MEMBER_ID;
  if (it->second.epoch != epoch) return gannet::v1::STALE_MEMBER_EPOCH;
  return gannet::v1::NONE;
}

void ConsumerGroup::set_owned(Member& m, TopicPartitionSet assigned, TopicPartitionSet pending) {
  for (const auto* s : {&m.assigned, &m.pending_revocation}) {
    for (const auto& [topic, parts] : *s) {
      for (int32_t p : parts) {
        auto it = owners_.find({topic, p});
        if (it != owners_.end() && it->second == m.id) owners_.erase(it);
      }
    }
  }
  m.assigned = std::move(assigned);
  m.pending_revocation = std::move(pending);
  for (const auto* s : {&m.assigned, &m.pending_revocation}) {
    for (const auto& [topic, parts] : *s) {
      for (int32_t p : parts) owners_[{topic, p}] = m.id;
    }
  }
}

void ConsumerGroup::remove_member(const std::string& id) {
  auto it = members_.find(id);
  if (it == members_.end()) return;
  set_owned(it->second, {}, {});
  members_.erase(it);
  target_.erase(id);
  group_epoch_++;
}

void ConsumerGroup::refresh_subscription_metadata(const TopicPartitionCounts& counts) {
  std::map<std::string, int32_t> now;
  for (const auto& [id, m] : members_) {
    for (const auto& t : m.topics) {
      if (now.count(t)) continue;
      int32_t n = counts(t);
      if (n > 0) now[t] = n;
    }
  }
  if (now != subscribed_counts_) {
    subscribed_counts_ = std::move(now);
    group_epoch_++;
  }
}

void ConsumerGroup::maybe_compute_target() {
  if (group_epoch_ <= assignment_epoch_) return;
  std::vector<client::AssignorMember> in;
  in.reserve(members_.size());
  for (const auto& [id, m] : members_) {
    client::AssignorMember a;
    a.member_id = id;
    a.topics = m.topics;
    // The previous target is the claim: the sticky assignor keeps it where the balance allows.
    auto t = target_.find(id);
    if (t != target_.end()) {
      for (const auto& [topic, parts] : t->second) {
        for (int32_t p : parts) a.owned_partitions.push_back({topic, p});
      }
      a.generation = assignment_epoch_;
    }
    in.push_back(std::move(a));
  }
  client::GroupAssignment out;
  if (assignor_name() == "range") {
    out = client::RangeAssignor().assign(subscribed_counts_, in);
  } else {
    out = client::StickyAssignor().assign(subscribed_counts_, in);
  }
  target_.clear();
  for (const auto& [id, parts] : out) {
    auto& t = target_[id];
    for (const auto& tp : parts) t[tp.topic].insert(tp.partition);
  }
  assignment_epoch_ = group_epoch_;
}

void ConsumerGroup::reconcile(Member& m, const std::optional<TopicPartitionSet>& owned, int64_t now_ms) {
  if (m.state == MemberState::kUnrevoked) {
    // It moves on once it reports owning none of what it must give up.
    if (!owned || overlaps(*owned, m.pending_revocation)) return;
    set_owned(m, m.assigned, {});
    m.state = MemberState::kStable;
  }
  const TopicPartitionSet& target = this->target(m.id);
  if (m.epoch == assignment_epoch_ && m.state == MemberState::kStable) return;
  TopicPartitionSet revoke = minus(m.assigned, target);
  // What it reports no longer owning is given up already.
  if (!is_empty(revoke) && owned && !overlaps(*owned, revoke)) {
    set_owned(m, intersect(m.assigned, target), {});
    revoke.clear();
  }
  if (!is_empty(revoke)) {
    // First give up what is no longer its own; keep the epoch until it has.
    set_owned(m, intersect(m.assigned, target), std::move(revoke));
    m.state = MemberState::kUnrevoked;
    m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms;
    return;
  }
  // Take the assignment epoch, and each target partition no other member still holds.
  TopicPartitionSet next = m.assigned;
  bool withheld = false;
  for (const auto& [topic, parts] : target) {
    for (int32_t p : parts) {
      auto it = owners_.find({topic, p});
      if (it == owners_.end() || it->second == m.id) {
        next[topic].insert(p);
      } else {
        withheld = true;
      }
    }
  }
  if (m.epoch != assignment_epoch_) {
    m.previous_epoch = m.epoch;
    m.epoch = assignment_epoch_;
  }
  set_owned(m, std::move(next), {});
  m.state = withheld ? MemberState::kUnreleased : MemberState::kStable;
}

ConsumerHeartbeatAnswer ConsumerGroup::heartbeat(const ConsumerHeartbeat& hb, int64_t now_ms,
                                                 const TopicPartitionCounts& counts, const std::string& new_member_id) {
  ConsumerHeartbeatAnswer a;
  a.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  if (hb.server_assignor && !hb.server_assignor->empty() &&
      std::find(config_.assignors.begin(), config_.assignors.end(), *hb.server_assignor) == config_.assignors.end()) {
    a.error = gannet::v1::UNSUPPORTED_ASSIGNOR;
    a.message = "server assignor '" + *hb.server_assignor + "' is not one of group.consumer.assignors";
    return a;
  }
  if (hb.member_epoch == -1 || hb.member_epoch == -2) {
    // Leaving. An unknown member leaving is answered the same: it is gone either way.
    remove_member(hb.member_id);
    a.member_id = hb.member_id;
    a.member_epoch = -1;
    refresh_subscription_metadata(counts);
    maybe_compute_target();
    return a;
  }
  if (hb.member_epoch < -2) {
    a.error = gannet::v1::INVALID_REQUEST;
    a.message = "member epoch " + std::to_string(hb.member_epoch) + " is below -2";
    return a;
  }
  Member* m = nullptr;
  if (hb.member_epoch == 0) {
    if (!hb.subscribed_topics) {
      a.error = gannet::v1::INVALID_REQUEST;
      a.message = "a joining member must send its subscribed topic names";
      return a;
    }
    std::string id = hb.member_id.empty() ? new_member_id : hb.member_id;
    // A member that rejoins at epoch 0 starts over: what it held is released first.
    if (members_.count(id)) {
      remove_member(id);
    } else if (static_cast<int64_t>(members_.size()) >= config_.max_size) {
      a.error = gannet::v1::GROUP_MAX_SIZE_REACHED;
      a.message = "group " + id_ + " has group.consumer.max.size=" + std::to_string(config_.max_size) + " members";
      return a;
    }
    m = &members_[id];
    m->id = id;
    m->client_id = hb.client_id;
    m->client_host = hb.client_host;
    m->rack_id = hb.rack_id;
    group_epoch_++;
  } else {
    auto it = members_.find(hb.member_id);
    if (it == members_.end()) {
      a.error = gannet::v1::UNKNOWN_MEMBER_ID;
      a.message = "member '" + hb.member_id + "' is not in group " + id_ + ": rejoin with epoch 0";
      return a;
    }
    m = &it->second;
    if (hb.member_epoch != m->epoch) {
      // Its previous epoch is accepted while what it owns is among what it holds: the answer
      // that moved it on was lost.
      bool lost_answer = hb.member_epoch == m->previous_epoch && hb.owned &&
                         is_empty(minus(minus(*hb.owned, m->assigned), m->pending_revocation));
      if (!lost_answer) {
        a.error = gannet::v1::FENCED_MEMBER_EPOCH;
        a.message = "member '" + m->id + "' sent epoch " + std::to_string(hb.member_epoch) + " but is at " +
                    std::to_string(m->epoch) + ": rejoin with epoch 0";
        return a;
      }
      m->last_sent.reset();  // send the assignment again
    }
  }
  m->session_deadline_ms = now_ms + config_.session_timeout_ms;
  if (hb.rebalance_timeout_ms > 0) m->rebalance_timeout_ms = hb.rebalance_timeout_ms;
  if (hb.subscribed_topics) {
    auto topics = normalized(*hb.subscribed_topics);
    if (topics != m->topics) {
      m->topics = std::move(topics);
      if (hb.member_epoch != 0) group_epoch_++;
    }
  }
  if (hb.server_assignor && *hb.server_assignor != m->assignor) {
    std::string before = assignor_name();
    m->assignor = *hb.server_assignor;
    if (assignor_name() != before) group_epoch_++;
  }
  refresh_subscription_metadata(counts);
  maybe_compute_target();
  const std::string id = m->id;
  reconcile(*m, hb.owned, now_ms);
  // Withheld partitions of the others may have been released by this heartbeat's revocation:
  // they learn it on their next heartbeat (reconcile runs for them then).
  a.member_id = id;
  a.member_epoch = m->epoch;
  // Sent when it changed, on a join, and to a full heartbeat (subscription and owned partitions
  // both sent), as Kafka does; else the member keeps what it has.
  const bool full = hb.subscribed_topics && hb.owned;
  if (!m->last_sent || !same(*m->last_sent, m->assigned) || hb.member_epoch == 0 || full) {
    a.assignment = m->assigned;
    m->last_sent = m->assigned;
  }
  return a;
}

ConsumerGroupSnapshot ConsumerGroup::snapshot() const {
  ConsumerGroupSnapshot s;
  s.group_epoch = group_epoch_;
  s.assignment_epoch = assignment_epoch_;
  s.subscribed_counts = subscribed_counts_;
  for (const auto& [id, m] : members_) {
    ConsumerGroupSnapshot::Member sm;
    sm.id = id;
    sm.client_id = m.client_id;
    sm.client_host = m.client_host;
    sm.rack_id = m.rack_id;
    sm.assignor = m.assignor;
    sm.epoch = m.epoch;
    sm.rebalance_timeout_ms = m.rebalance_timeout_ms;
    sm.topics = m.topics;
    sm.assigned = m.assigned;
    s.members.push_back(std::move(sm));
  }
  return s;
}

void ConsumerGroup::restore(const ConsumerGroupSnapshot& s, int64_t now_ms) {
  members_.clear();
  target_.clear();
  owners_.clear();
  group_epoch_ = s.group_epoch;
  assignment_epoch_ = s.assignment_epoch;
  subscribed_counts_ = s.subscribed_counts;
  for (const auto& sm : s.members) {
    Member& m = members_[sm.id];
    m.id = sm.id;
    m.client_id = sm.client_id;
    m.client_host = sm.client_host;
    m.rack_id = sm.rack_id;
    m.assignor = sm.assignor;
    m.epoch = sm.epoch;
    m.rebalance_timeout_ms = sm.rebalance_timeout_ms;
    m.topics = normalized(sm.topics);
    m.state = MemberState::kStable;
    m.session_deadline_ms = now_ms + config_.session_timeout_ms;
    m.last_sent = sm.assigned;
    target_[sm.id] = sm.assigned;
    set_owned(m, sm.assigned, {});
  }
}

std::vector<std::string> ConsumerGroup::expire(int64_t now_ms, const TopicPartitionCounts& counts) {
  std::vector<std::string> gone;
  for (const auto& [id, m] : members_) {
    if (m.session_deadline_ms <= now_ms ||
        (m.state == MemberState::kUnrevoked && m.revocation_deadline_ms <= now_ms)) {
      gone.push_back(id);
    }
  }
  for (const auto& id : gone) remove_member(id);
  if (!gone.empty()) {
    refresh_subscription_metadata(counts);
    maybe_compute_target();
  }
  return gone;
}

}  // namespace gannet::broker
