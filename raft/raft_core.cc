#include "raft/raft_core.h"

#include <algorithm>
#include <cassert>

namespace gannet::raft {

const char* message_name(const Body& b) {
  static const char* kNames[] = {"VoteRequest",     "VoteResponse", "BeginQuorumEpoch",
                                 "EndQuorumEpoch",  "FetchRequest", "FetchResponse",
                                 "FetchSnapshotRequest", "FetchSnapshotResponse"};
  return kNames[b.index()];
}

const char* role_name(Role r) {
  switch (r) {
    case Role::kUnattached: return "unattached";
    case Role::kProspective: return "prospective";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
    case Role::kFollower: return "follower";
    case Role::kObserver: return "observer";
  }
  return "?";
}

RaftCore::RaftCore(Config config, Restored restored, int64_t now_ms)
    : config_(std::move(config)),
      voters_(config_.voters.begin(), config_.voters.end()),
      rng_(config_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(config_.id)),
      hs_(restored.hard_state),
      persisted_hs_(restored.hard_state) {
  if (restored.snapshot) {
    snapshot_ = std::move(restored.snapshot);
    log_start_ = snapshot_->id.end_offset;
  }
  log_ = std::move(restored.log);
  if (!log_.empty()) log_start_ = log_.front().offset;
  synced_end_ = end_offset();
  applied_ = log_start_;
  hw_ = log_start_;  // committed state below the snapshot is known; the rest is learned again
  role_ = is_voter() ? Role::kUnattached : Role::kObserver;
  // A restarted voter does not resume leadership; it waits to hear from the quorum.
  if (hs_.leader == config_.id) hs_.leader = kNoNode;
  reset_election_timer(now_ms);
  if (snapshot_) pending_leader_change_ = LeaderChange{hs_.epoch, kNoNode};
}

Epoch RaftCore::last_epoch() const {
  if (!log_.empty()) return log_.back().epoch;
  return snapshot_ ? snapshot_->id.epoch : 0;
}

Epoch RaftCore::epoch_at(int64_t offset) const {
  if (offset >= log_start_ && offset < end_offset()) return log_[offset - log_start_].epoch;
  if (snapshot_ && offset == log_start_ - 1) return snapshot_->id.epoch;
  return 0;
}

std::optional<DivergingEpoch> RaftCore::end_offset_for_epoch(Epoch epoch) const {
  // Entries' epochs are non-decreasing: find the last entry with epoch <= `epoch`.
  auto it = std::upper_bound(log_.begin(), log_.end(), epoch,
                             [](Epoch e, const Entry& x) { return e < x.epoch; });
  if (it == log_.begin()) {
    if (snapshot_ && snapshot_->id.epoch <= epoch) {
      return DivergingEpoch{snapshot_->id.epoch, log_start_};
    }
    if (!snapshot_ && log_start_ == 0) return DivergingEpoch{0, 0};
    return std::nullopt;
  }
  Epoch found = (it - 1)->epoch;
  int64_t end = (it == log_.end()) ? end_offset() : it->offset;
  return DivergingEpoch{found, end};
}

void RaftCore::send(NodeId to, Body body) { msgs_.push_back(Message{config_.id, to, std::move(body)}); }

void RaftCore::set_hard_state(Epoch epoch, NodeId voted_for, NodeId leader) {
  const bool leader_changed = epoch != hs_.epoch || leader != hs_.leader;
  hs_ = HardState{epoch, voted_for, leader};
  if (leader_changed) pending_leader_change_ = LeaderChange{epoch, leader};
}

void RaftCore::reset_election_timer(int64_t now_ms, double scale) {
  const int64_t t = config_.election_timeout_ms;
  const int64_t jitter = static_cast<int64_t>(rng_() % static_cast<uint64_t>(std::max<int64_t>(t, 1)));
  election_deadline_ms_ = now_ms + static_cast<int64_t>(static_cast<double>(t + jitter) * scale);
}

// ---- Role transitions ------------------------------------------------------------------------

void RaftCore::become_unattached(Epoch epoch, int64_t now_ms) {
  role_ = is_voter() ? Role::kUnattached : Role::kObserver;
  const NodeId vote = epoch == hs_.epoch ? hs_.voted_for : kNoNode;
  set_hard_state(epoch, vote, kNoNode);
  votes_.clear();
  peers_.clear();
  parked_.clear();
  fetch_in_flight_ = false;
  downloading_.reset();
  reset_election_timer(now_ms);
}

void RaftCore::become_follower(Epoch epoch, NodeId leader, int64_t now_ms) {
  const NodeId vote = epoch == hs_.epoch ? hs_.voted_for : kNoNode;
  const bool same = role_ == (is_voter() ? Role::kFollower : Role::kObserver) &&
                    hs_.epoch == epoch && hs_.leader == leader;
  role_ = is_voter() ? Role::kFollower : Role::kObserver;
  set_hard_state(epoch, vote, leader);
  if (!same) {
    votes_.clear();
    peers_.clear();
    parked_.clear();
    fetch_in_flight_ = false;
    last_leader_contact_ms_ = now_ms;  // give the new leader a full fetch timeout
    last_heard_from_leader_ms_ = std::numeric_limits<int64_t>::min() / 2;  // not heard it yet
  }
  reset_election_timer(now_ms);
  maybe_send_fetch(now_ms);
}

void RaftCore::become_prospective(int64_t now_ms) {
  role_ = Role::kProspective;
  // Whatever leader we knew is gone as far as we can tell: stop naming it to others.
  if (hs_.leader != kNoNode) set_hard_state(hs_.epoch, hs_.voted_for, kNoNode);
  fetch_in_flight_ = false;
  votes_ = {config_.id};
  responded_.clear();
  reset_election_timer(now_ms);
  if (majority(votes_.size())) {
    become_candidate(now_ms);
    return;
  }
  send_vote_requests(/*pre_vote=*/true, now_ms);
}

void RaftCore::send_vote_requests(bool pre_vote, int64_t now_ms) {
  last_vote_send_ms_ = now_ms;
  const Epoch epoch = pre_vote ? hs_.epoch + 1 : hs_.epoch;
  for (NodeId v : voters_) {
    if (v == config_.id || responded_.count(v)) continue;
    send(v, VoteRequest{epoch, config_.id, last_epoch(), end_offset(), pre_vote});
  }
}

void RaftCore::become_candidate(int64_t now_ms) {
  role_ = Role::kCandidate;
  set_hard_state(hs_.epoch + 1, config_.id, kNoNode);
  votes_ = {config_.id};
  responded_.clear();
  peers_.clear();
  parked_.clear();
  reset_election_timer(now_ms);
  if (majority(votes_.size())) {
    become_leader(now_ms);
    return;
  }
  send_vote_requests(/*pre_vote=*/false, now_ms);
}

void RaftCore::become_leader(int64_t now_ms) {
  role_ = Role::kLeader;
  set_hard_state(hs_.epoch, hs_.voted_for, config_.id);
  votes_.clear();
  peers_.clear();
  parked_.clear();
  leader_since_ms_ = now_ms;
  for (NodeId v : voters_) {
    if (v != config_.id) peers_[v] = Peer{};
  }
  // The epoch starts with a control entry: the HW can only advance to an offset of this epoch.
  Entry control;
  control.offset = end_offset();
  control.epoch = hs_.epoch;
  control.control = true;
  control.data = "leader-change:" + std::to_string(config_.id);
  append_entries({control});
  for (NodeId v : voters_) {
    if (v != config_.id) send(v, BeginQuorumEpoch{hs_.epoch, config_.id});
  }
  maybe_advance_hw(now_ms);
}

void RaftCore::maybe_step_down(Epoch epoch, NodeId leader, int64_t now_ms) {
  if (epoch >= kMaxEpoch || (leader != kNoNode && !voters_.count(leader))) return;
  if (epoch > hs_.epoch) {
    if (leader != kNoNode && leader != config_.id) {
      become_follower(epoch, leader, now_ms);
    } else {
      become_unattached(epoch, now_ms);
    }
  } else if (epoch == hs_.epoch && leader != kNoNode && leader != config_.id &&
             role_ != Role::kLeader &&
             (hs_.leader == kNoNode || role_ == Role::kProspective || role_ == Role::kCandidate ||
              role_ == Role::kUnattached)) {
    become_follower(epoch, leader, now_ms);
  }
}

// ---- Inputs ----------------------------------------------------------------------------------

void RaftCore::tick(int64_t now_ms) {
  switch (role_) {
    case Role::kLeader: {
      // Check quorum: resign if a majority has not fetched within the fetch timeout.
      if (now_ms - leader_since_ms_ >= config_.fetch_timeout_ms && voters_.size() > 1) {
        size_t live = 1;
        for (const auto& [id, p] : peers_) {
          if (voters_.count(id) && p.last_fetch_ms >= 0 &&
              now_ms - p.last_fetch_ms < config_.fetch_timeout_ms) {
            ++live;
          }
        }
        if (!majority(live)) {
          become_unattached(hs_.epoch, now_ms);
          return;
        }
      }
      wake_parked(now_ms, /*all=*/false);
      break;
    }
    case Role::kFollower:
      if (now_ms - last_leader_contact_ms_ >= config_.fetch_timeout_ms) {
        become_prospective(now_ms);
        return;
      }
      maybe_send_fetch(now_ms);
      break;
    case Role::kObserver:
      // An observer whose leader went quiet asks the voters again (it never votes, and the
      // announcements of a new epoch go to voters only).
      if (hs_.leader != kNoNode && now_ms - last_leader_contact_ms_ >= config_.fetch_timeout_ms) {
        become_unattached(hs_.epoch, now_ms);
      }
      maybe_send_fetch(now_ms);
      break;
    case Role::kUnattached:
    case Role::kProspective:
    case Role::kCandidate:
      if (now_ms >= election_deadline_ms_) {
        become_prospective(now_ms);
      } else if (role_ != Role::kUnattached && now_ms - last_vote_send_ms_ >= vote_retry_ms()) {
        // Ask again the voters that have not answered (their request or answer may be lost).
        send_vote_requests(role_ == Role::kProspective, now_ms);
      }
      break;
  }
}

void RaftCore::step(const Message& m, int64_t now_ms) {
  std::visit([&](const auto& body) { handle(m, body, now_ms); }, m.body);
}

std::variant<int64_t, ProposeError> RaftCore::propose(const std::vector<std::string>& records,
                                                      int64_t now_ms) {
  if (role_ != Role::kLeader) return ProposeError::kNotLeader;
  for (const std::string& r : records) {
    if (r.size() > config_.max_record_bytes) return ProposeError::kRecordTooLarge;
  }
  std::vector<Entry> entries;
  for (const std::string& r : records) {
    Entry e;
    e.offset = end_offset() + static_cast<int64_t>(entries.size());
    e.epoch = hs_.epoch;
    e.data = r;
    entries.push_back(std::move(e));
  }
  append_entries(std::move(entries));
  wake_parked(now_ms, /*all=*/true);
  maybe_advance_hw(now_ms);
  return end_offset() - 1;
}

void RaftCore::on_synced(uint64_t write_id, int64_t now_ms) {
  auto it = unsynced_writes_.upper_bound(write_id);
  int64_t end = synced_end_;
  for (auto i = unsynced_writes_.begin(); i != it; ++i) end = std::max(end, i->second);
  unsynced_writes_.erase(unsynced_writes_.begin(), it);
  synced_end_ = std::min(std::max(synced_end_, end), end_offset());
  if (role_ == Role::kLeader) {
    maybe_advance_hw(now_ms);
  } else {
    maybe_send_fetch(now_ms);
  }
}

void RaftCore::snapshot_taken(Snapshot snapshot) {
  const int64_t end = snapshot.id.end_offset;
  if (end <= log_start_ || end > hw_ || end > end_offset()) return;
  if (epoch_at(end - 1) != snapshot.id.epoch) return;
  log_.erase(log_.begin(), log_.begin() + (end - log_start_));
  log_start_ = end;
  snapshot_ = std::move(snapshot);
  pending_compact_ = end;
}

void RaftCore::resign(int64_t now_ms) {
  if (role_ != Role::kLeader) return;
  // Successors: the voters that are most caught up first.
  std::vector<std::pair<int64_t, NodeId>> order;
  for (const auto& [id, p] : peers_) {
    if (voters_.count(id)) order.emplace_back(-p.end_offset, id);
  }
  std::sort(order.begin(), order.end());
  EndQuorumEpoch end{hs_.epoch, config_.id, {}};
  for (const auto& [neg, id] : order) end.preferred_successors.push_back(id);
  for (NodeId v : voters_) {
    if (v != config_.id) send(v, end);
  }
  become_unattached(hs_.epoch, now_ms);
  // Do not compete with the successors.
  election_deadline_ms_ = now_ms + 2 * config_.fetch_timeout_ms;
}

// ---- Votes -----------------------------------------------------------------------------------

NodeId RaftCore::live_leader(int64_t now_ms) const {
  if (role_ == Role::kLeader) return config_.id;
  if ((role_ == Role::kFollower || role_ == Role::kObserver) &&
      now_ms - last_heard_from_leader_ms_ < config_.fetch_timeout_ms) {
    return hs_.leader;
  }
  return kNoNode;
}

void RaftCore::handle(const Message& m, const VoteRequest& r, int64_t now_ms) {
  const bool up_to_date = std::make_pair(r.last_epoch, r.end_offset) >=
                          std::make_pair(last_epoch(), end_offset());
  if (!voters_.count(r.candidate) || !is_voter()) {
    send(m.from, VoteResponse{hs_.epoch, false, r.pre_vote, live_leader(now_ms)});
    return;
  }
  if (r.pre_vote) {
    // Grant only if we would vote for it and we have no live leader ourselves: a node cut off
    // from the quorum cannot disturb it when it comes back.
    const NodeId leader = live_leader(now_ms);
    const bool granted = r.epoch > hs_.epoch && up_to_date && leader == kNoNode;
    send(m.from, VoteResponse{hs_.epoch, granted, true, leader});
    return;
  }
  if (r.epoch < hs_.epoch) {
    send(m.from, VoteResponse{hs_.epoch, false, false, live_leader(now_ms)});
    return;
  }
  if (r.epoch >= kMaxEpoch) {
    send(m.from, VoteResponse{hs_.epoch, false, false, live_leader(now_ms)});
    return;
  }
  if (r.epoch > hs_.epoch) become_unattached(r.epoch, now_ms);
  bool granted = false;
  if ((hs_.voted_for == kNoNode || hs_.voted_for == r.candidate) && hs_.leader == kNoNode &&
      up_to_date && role_ != Role::kLeader && role_ != Role::kCandidate) {
    granted = true;
    set_hard_state(hs_.epoch, r.candidate, kNoNode);
    reset_election_timer(now_ms);
  }
  send(m.from, VoteResponse{hs_.epoch, granted, false, live_leader(now_ms)});
}

void RaftCore::handle(const Message& m, const VoteResponse& r, int64_t now_ms) {
  if (r.epoch > hs_.epoch || (r.leader != kNoNode && r.epoch == hs_.epoch)) {
    maybe_step_down(r.epoch, r.leader, now_ms);
    if (role_ != Role::kProspective && role_ != Role::kCandidate) return;
  }
  if (r.pre_vote && role_ == Role::kProspective) {
    responded_.insert(m.from);
    if (r.granted) votes_.insert(m.from);
    if (majority(votes_.size())) become_candidate(now_ms);
  } else if (!r.pre_vote && role_ == Role::kCandidate && r.epoch == hs_.epoch) {
    responded_.insert(m.from);
    if (r.granted) votes_.insert(m.from);
    if (majority(votes_.size())) become_leader(now_ms);
  }
}

void RaftCore::handle(const Message& m, const BeginQuorumEpoch& r, int64_t now_ms) {
  if (r.epoch < hs_.epoch || r.epoch >= kMaxEpoch || m.from != r.leader || !voters_.count(r.leader)) {
    return;
  }
  if (r.epoch == hs_.epoch && role_ == Role::kLeader) return;  // cannot happen: one leader per epoch
  become_follower(r.epoch, r.leader, now_ms);
  last_heard_from_leader_ms_ = now_ms;  // from the leader itself
}

void RaftCore::handle(const Message& m, const EndQuorumEpoch& r, int64_t now_ms) {
  if (r.epoch != hs_.epoch || r.leader != hs_.leader || role_ == Role::kLeader) return;
  become_unattached(hs_.epoch, now_ms);
  // The preferred successors go first, in order; everyone else waits a full timeout.
  auto pos = std::find(r.preferred_successors.begin(), r.preferred_successors.end(), config_.id);
  if (pos != r.preferred_successors.end()) {
    const double rank = static_cast<double>(pos - r.preferred_successors.begin());
    election_deadline_ms_ = now_ms + static_cast<int64_t>(rank * config_.election_timeout_ms / 2);
  }
}

// ---- Fetch: the leader's side ----------------------------------------------------------------

void RaftCore::handle(const Message& m, const FetchRequest& r, int64_t now_ms) {
  if (r.replica != m.from || r.replica == config_.id) return;  // malformed
  if (r.replica < 0 || r.replica > config_.max_node_id) return;  // no such node can exist
  if (r.epoch > hs_.epoch && voters_.count(r.replica) && r.epoch < kMaxEpoch) {
    // A voter knows a newer epoch than we do: we are stale. (A non-voter's claim is not
    // trusted: one hostile fetch must not depose the leader or push the epoch to its limit.)
    become_unattached(r.epoch, now_ms);
  }
  if (role_ != Role::kLeader || r.epoch != hs_.epoch) {
    FetchResponse resp;
    resp.epoch = hs_.epoch;
    resp.leader = hs_.leader;
    resp.not_leader = role_ != Role::kLeader;
    resp.fenced = r.epoch < hs_.epoch;
    resp.fetch_offset = r.fetch_offset;
    resp.high_watermark = hw_;
    resp.log_start_offset = log_start_;
    send(m.from, std::move(resp));
    return;
  }
  Peer& peer = peers_[r.replica];
  // A voter's fetches count for the HW from one directory at a time: the first to fetch in this
  // leadership, or a new one once the pinned one has been silent for a fetch timeout (a voter
  // moved to a new disk). Observers count for nothing; any of their directories is served.
  const bool voter = voters_.count(r.replica) > 0;
  if (!voter || !peer.directory_id ||
      (*peer.directory_id != r.directory_id && now_ms - peer.last_fetch_ms > config_.fetch_timeout_ms)) {
    peer.directory_id = r.directory_id;
  } else if (*peer.directory_id != r.directory_id) {
    // A second process with this node id (a copy of a node's config, a node re-created on an
    // empty disk while the old one runs): its log is not the one counted, and must not count.
    FetchResponse resp = fetch_response_base(r);
    resp.duplicate_replica = true;
    ++duplicate_replica_fetches_;
    send(m.from, std::move(resp));
    return;
  }
  peer.last_fetch_ms = now_ms;
  if (config_.bugs.hw_from_unchecked_offset) {
    peer.end_offset = std::min(r.fetch_offset, end_offset());
    maybe_advance_hw(now_ms);
  }
  FetchResponse resp = answer_fetch(r);
  if (!resp.diverging && !resp.snapshot) {
    // A valid fetch: the replica holds every entry below fetch_offset, as we do.
    peer.end_offset = r.fetch_offset;
    maybe_advance_hw(now_ms);
    if (resp.entries.empty() && r.fetch_offset == end_offset()) {
      // Nothing new: long poll until data or a HW change arrives. A fetcher that does not know
      // the current HW yet (it may have just completed the majority) waits only briefly: new
      // entries within that time carry the HW for free, else it gets an answer of its own.
      const bool stale_hw = r.high_watermark < std::min(hw_, r.fetch_offset);
      const int64_t wait = stale_hw ? std::min<int64_t>(config_.hw_notify_wait_ms, config_.fetch_max_wait_ms)
                                    : config_.fetch_max_wait_ms;
      parked_[r.replica] = ParkedFetch{r, now_ms + wait};
      return;
    }
    resp.high_watermark = hw_;  // this fetch may have moved it
  }
  send(m.from, std::move(resp));
}

FetchResponse RaftCore::fetch_response_base(const FetchRequest& r) const {
  FetchResponse resp;
  resp.epoch = hs_.epoch;
  resp.leader = hs_.leader;
  resp.fetch_offset = r.fetch_offset;
  resp.high_watermark = hw_;
  resp.log_start_offset = log_start_;
  return resp;
}

FetchResponse RaftCore::answer_fetch(const FetchRequest& r) {
  FetchResponse resp = fetch_response_base(r);
  resp.leader = config_.id;
  if (r.fetch_offset < log_start_ || r.fetch_offset > end_offset()) {
    if (r.fetch_offset < log_start_) {
      // Below the log: the snapshot covers it; with none (or a negative offset), start over at
      // the log start.
      if (snapshot_ && r.fetch_offset >= 0) {
        resp.snapshot = snapshot_->id;
      } else {
        resp.diverging = DivergingEpoch{0, log_start_};
      }
      return resp;
    }
    if (r.fetch_offset > end_offset()) {
      // The follower has more than we do: it diverges at (at most) our end.
      auto d = end_offset_for_epoch(r.last_fetched_epoch);
      resp.diverging = d ? DivergingEpoch{d->epoch, std::min(d->end_offset, end_offset())}
                         : DivergingEpoch{0, log_start_};
      return resp;
    }
  }
  if (r.fetch_offset > 0) {
    auto d = end_offset_for_epoch(r.last_fetched_epoch);
    if (!d) {
      if (snapshot_) {
        resp.snapshot = snapshot_->id;
      } else {
        resp.diverging = DivergingEpoch{0, 0};
      }
      return resp;
    }
    if (d->epoch != r.last_fetched_epoch || d->end_offset < r.fetch_offset) {
      resp.diverging = DivergingEpoch{d->epoch, std::min(d->end_offset, r.fetch_offset)};
      return resp;
    }
  }
  size_t bytes = 0;
  for (int64_t o = r.fetch_offset; o < end_offset(); ++o) {
    const Entry& e = log_[o - log_start_];
    if (!resp.entries.empty() && bytes + e.data.size() > config_.max_fetch_bytes) break;
    bytes += e.data.size() + 16;
    resp.entries.push_back(e);
  }
  return resp;
}

void RaftCore::wake_parked(int64_t now_ms, bool all) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (all || now_ms >= it->second.deadline_ms) {
      send(it->first, answer_fetch(it->second.request));
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftCore::maybe_advance_hw(int64_t now_ms) {
  if (role_ != Role::kLeader) return;
  std::vector<int64_t> ends;
  ends.push_back(config_.bugs.leader_counts_unsynced ? end_offset() : synced_end_);
  for (NodeId v : voters_) {
    if (v == config_.id) continue;
    auto it = peers_.find(v);
    ends.push_back(it == peers_.end() ? -1 : it->second.end_offset);
  }
  std::sort(ends.begin(), ends.end(), std::greater<>());
  const int64_t candidate = ends[voters_.size() / 2];  // reached by a majority
  if (candidate > hw_ && candidate <= end_offset() && epoch_at(candidate - 1) == hs_.epoch) {
    set_hw(candidate);
    wake_parked(now_ms, /*all=*/true);  // followers learn the new HW without waiting
  }
}

void RaftCore::set_hw(int64_t hw) {
  if (hw > hw_) hw_ = hw;  // never moves back
}

// ---- Fetch: the follower's side ----------------------------------------------------------------

NodeId RaftCore::fetch_target() {
  if (hs_.leader != kNoNode && hs_.leader != config_.id) return hs_.leader;
  if (role_ != Role::kObserver || voters_.empty()) return kNoNode;
  // An observer with no known leader asks the voters in turn; their answers name the leader.
  std::vector<NodeId> v(voters_.begin(), voters_.end());
  return v[observer_probe_++ % v.size()];
}

void RaftCore::maybe_send_fetch(int64_t now_ms) {
  if (role_ != Role::kFollower && role_ != Role::kObserver) return;
  if (fetch_in_flight_ && now_ms - fetch_sent_ms_ < config_.request_timeout_ms) return;
  // Fetch only from a durable end: the offset tells the leader what we have stored.
  if (synced_end_ < end_offset() && !downloading_) return;
  const NodeId target = fetch_target();
  if (target == kNoNode) return;
  fetch_in_flight_ = true;
  fetch_sent_ms_ = now_ms;
  fetch_sent_to_ = target;
  if (downloading_) {
    fetch_sent_offset_ = -1;
    send(target, FetchSnapshotRequest{hs_.epoch, config_.id, *downloading_,
                                      static_cast<int64_t>(download_.size())});
    return;
  }
  fetch_sent_offset_ = end_offset();
  send(target, FetchRequest{hs_.epoch, config_.id, end_offset(), epoch_at(end_offset() - 1), hw_, config_.directory_id});
}

void RaftCore::handle(const Message& m, const FetchResponse& r, int64_t now_ms) {
  if (r.epoch < hs_.epoch) return;  // stale
  if (r.epoch > hs_.epoch || (r.leader != kNoNode && hs_.leader != r.leader)) {
    // A newer epoch or another leader: follow it. The response answered a request of the old
    // state, so nothing in it was validated for us; become_follower sends a fresh fetch.
    maybe_step_down(r.epoch, r.leader, now_ms);
    return;
  }
  if (role_ != Role::kFollower && role_ != Role::kObserver) return;
  if (m.from != fetch_sent_to_ || r.fetch_offset != fetch_sent_offset_) return;  // not our fetch
  fetch_in_flight_ = false;
  if (r.duplicate_replica) {
    ++duplicate_replica_refusals_;  // the next tick asks again; the node logs it
    return;
  }
  if (r.fenced) {
    maybe_send_fetch(now_ms);
    return;
  }
  if (r.not_leader) {
    if (r.leader != kNoNode && r.leader != hs_.leader) {
      maybe_step_down(r.epoch, r.leader, now_ms);
    } else if (m.from == hs_.leader && r.epoch == hs_.epoch) {
      // Our leader says it no longer leads this epoch: stop following it.
      become_unattached(hs_.epoch, now_ms);
    }
    return;  // an observer with no leader asks another voter at the next tick
  }
  if (m.from != hs_.leader) return;
  last_leader_contact_ms_ = now_ms;
  last_heard_from_leader_ms_ = now_ms;
  if (r.snapshot) {
    downloading_ = r.snapshot;
    download_.clear();
  } else if (r.diverging) {
    // The leader's log ends epoch `diverging.epoch` at `diverging.end_offset`; ours may end that
    // epoch earlier (later entries of ours belong to epochs the leader never had). Truncate to
    // where both agree, the lower of the two ends (KIP-595), or the next fetch gets the same
    // answer forever.
    int64_t to = std::min(r.diverging->end_offset, end_offset());
    if (auto mine = end_offset_for_epoch(r.diverging->epoch)) to = std::min(to, mine->end_offset);
    truncate(to);
  } else {
    // The leader validated our log below fetch_offset: it matches the leader's, so what it now
    // sends extends it and its HW applies to it.
    if (!r.entries.empty() && r.entries.front().offset == end_offset()) append_entries(r.entries);
    set_hw(std::min(r.high_watermark, end_offset()));
  }
  maybe_send_fetch(now_ms);
}

void RaftCore::handle(const Message& m, const FetchSnapshotRequest& r, int64_t now_ms) {
  if (r.replica < 0 || r.replica > config_.max_node_id) return;
  FetchSnapshotResponse resp;
  resp.epoch = hs_.epoch;
  resp.leader = hs_.leader;
  resp.id = r.id;
  resp.position = r.position;
  if (role_ != Role::kLeader || r.epoch != hs_.epoch) {
    resp.not_leader = true;
  } else if (!snapshot_ || !(snapshot_->id == r.id)) {
    resp.unknown_snapshot = true;
  } else {
    peers_[r.replica].last_fetch_ms = now_ms;
    const auto& data = snapshot_->data;
    resp.size = static_cast<int64_t>(data.size());
    const size_t pos = static_cast<size_t>(std::clamp<int64_t>(r.position, 0, resp.size));
    resp.chunk = data.substr(pos, config_.snapshot_chunk_bytes);
  }
  send(m.from, std::move(resp));
}

void RaftCore::handle(const Message& m, const FetchSnapshotResponse& r, int64_t now_ms) {
  if (r.epoch > hs_.epoch) maybe_step_down(r.epoch, r.leader, now_ms);
  if (!downloading_ || m.from != fetch_sent_to_ || !(r.id == *downloading_)) return;
  fetch_in_flight_ = false;
  if (r.not_leader || r.unknown_snapshot) {
    downloading_.reset();  // fetch again; the leader names the current snapshot
    maybe_send_fetch(now_ms);
    return;
  }
  last_leader_contact_ms_ = now_ms;
  last_heard_from_leader_ms_ = now_ms;
  if (r.position != static_cast<int64_t>(download_.size())) return;
  download_ += r.chunk;
  if (static_cast<int64_t>(download_.size()) >= r.size) {
    // Complete: the snapshot replaces the whole log.
    Snapshot s{*downloading_, std::move(download_)};
    downloading_.reset();
    download_.clear();
    log_.clear();
    log_start_ = s.id.end_offset;
    synced_end_ = log_start_;
    hw_ = std::max(hw_, log_start_);
    applied_ = log_start_;
    pending_truncate_.reset();
    pending_append_.clear();
    unsynced_writes_.clear();
    snapshot_ = s;
    pending_snapshot_ = std::move(s);
  }
  maybe_send_fetch(now_ms);
}

// ---- Log changes -----------------------------------------------------------------------------

void RaftCore::append_entries(std::vector<Entry> entries) {
  for (Entry& e : entries) {
    assert(e.offset == end_offset());
    log_.push_back(e);
    pending_append_.push_back(std::move(e));
  }
}

void RaftCore::truncate(int64_t end) {
  end = std::max(end, log_start_);
  if (end >= end_offset()) return;
  // Where the disk's log will end once the pending Ready is applied, before this cut.
  const int64_t disk_end = pending_truncate_ ? *pending_truncate_
                           : pending_append_.empty() ? end_offset()
                                                     : pending_append_.front().offset;
  log_.resize(static_cast<size_t>(end - log_start_));
  synced_end_ = std::min(synced_end_, end);
  for (auto& [id, covered] : unsynced_writes_) covered = std::min(covered, end);
  // Pending appends past the cut never reach the disk; written entries past it are cut there.
  std::erase_if(pending_append_, [&](const Entry& e) { return e.offset >= end; });
  if (end < disk_end) pending_truncate_ = end;
}

// ---- Output ----------------------------------------------------------------------------------

bool RaftCore::has_ready() const {
  return !(hs_ == persisted_hs_) || pending_snapshot_ || pending_truncate_ ||
         !pending_append_.empty() || pending_compact_ || !msgs_.empty() ||
         std::min(hw_, end_offset()) > applied_ || pending_leader_change_;
}

Ready RaftCore::take_ready() {
  Ready rd;
  rd.write_id = next_write_id_++;
  if (!(hs_ == persisted_hs_)) {
    HardState out = hs_;
    if (config_.bugs.vote_not_persisted) out.voted_for = persisted_hs_.voted_for;
    rd.hard_state = out;
    persisted_hs_ = out;
    if (config_.bugs.vote_not_persisted) persisted_hs_.voted_for = hs_.voted_for;
  }
  rd.snapshot = std::move(pending_snapshot_);
  pending_snapshot_.reset();
  rd.truncate_to = pending_truncate_;
  pending_truncate_.reset();
  rd.append = std::move(pending_append_);
  pending_append_.clear();
  rd.compact_before = pending_compact_;
  pending_compact_.reset();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.leader_change = pending_leader_change_;
  pending_leader_change_.reset();
  const int64_t commit_to = std::min(hw_, end_offset());
  for (int64_t o = std::max(applied_, log_start_); o < commit_to; ++o) {
    rd.committed.push_back(log_[o - log_start_]);
  }
  applied_ = std::max(applied_, commit_to);
  if (!rd.append.empty() || rd.truncate_to || rd.snapshot) {
    unsynced_writes_[rd.write_id] = end_offset();
  }
  return rd;
}

std::vector<ReplicaStatus> RaftCore::replica_status() const {
  std::vector<ReplicaStatus> out;
  out.push_back(ReplicaStatus{config_.id, is_voter(), synced_end_, -1});
  for (const auto& [id, p] : peers_) {
    out.push_back(ReplicaStatus{id, voters_.count(id) > 0, p.end_offset, p.last_fetch_ms});
  }
  return out;
}

}  // namespace gannet::raft
