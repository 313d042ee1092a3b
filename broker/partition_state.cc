#include "broker/partition_state.h"

#include <algorithm>
#include <set>

namespace gannet::broker {

namespace {
bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

bool PartitionState::apply_metadata(const PartitionMetadata& m, int64_t log_end, int64_t high_watermark,
                                    int64_t now_ms) {
  const bool new_term = m.leader_epoch != meta_.leader_epoch || m.leader != meta_.leader;
  const bool became_leader = m.leader == me_ && (new_term || meta_.leader != me_);
  if (m.partition_epoch != meta_.partition_epoch) pending_isr_.reset();  // the outcome is known
  meta_ = m;
  log_end_ = log_end;
  if (became_leader) {
    // A new term: followers must fetch again before they count; each gets a full lag allowance.
    followers_.clear();
    for (int32_t r : m.replicas) {
      if (r != me_) followers_[r] = Follower{-1, now_ms, -1, -1};
    }
    epoch_start_offset_ = log_end;
    hw_ = std::max<int64_t>(0, std::min(high_watermark, log_end));
    pending_isr_.reset();
    maybe_advance_hw();  // alone in the ISR, the whole log is committed now
  } else if (m.leader == me_) {
    // Same term, new replica set or ISR: keep what we know of the followers.
    for (int32_t r : m.replicas) {
      if (r != me_ && !followers_.count(r)) followers_[r] = Follower{-1, now_ms, -1, -1};
    }
    maybe_advance_hw();
  } else {
    followers_.clear();
    pending_isr_.reset();
    hw_ = high_watermark;
  }
  return became_leader;
}

bool PartitionState::on_local_append(int64_t log_end) {
  log_end_ = log_end;
  return maybe_advance_hw();
}

bool PartitionState::on_follower_fetch(int32_t replica, int64_t fetch_offset, int64_t now_ms) {
  auto it = followers_.find(replica);
  if (!is_leader() || it == followers_.end()) return false;
  Follower& f = it->second;
  // Caught up: it asks for everything we have, or for what we had at its previous fetch.
  if (fetch_offset >= log_end_) {
    f.last_caught_up_ms = now_ms;
  } else if (f.leader_end_at_last_fetch >= 0 && fetch_offset >= f.leader_end_at_last_fetch) {
    f.last_caught_up_ms = std::max(f.last_caught_up_ms, f.last_fetch_ms);
  }
  f.log_end = std::min(fetch_offset, log_end_);
  f.leader_end_at_last_fetch = log_end_;
  f.last_fetch_ms = now_ms;
  return maybe_advance_hw();
}

int64_t PartitionState::follower_log_end(int32_t replica) const {
  auto it = followers_.find(replica);
  return it == followers_.end() ? -1 : it->second.log_end;
}

bool PartitionState::maybe_advance_hw() {
  if (!is_leader()) return false;
  // Over the ISR, and over the proposed one too while a change is in flight.
  std::set<int32_t> members(meta_.isr.begin(), meta_.isr.end());
  if (pending_isr_) members.insert(pending_isr_->begin(), pending_isr_->end());
  int64_t low = log_end_;
  for (int32_t r : members) {
    if (r == me_) continue;
    auto it = followers_.find(r);
    const int64_t end = it == followers_.end() ? -1 : it->second.log_end;
    low = std::min(low, end);
  }
  if (low > hw_) {
    hw_ = low;
    return true;
  }
  return false;
}

std::optional<std::vector<int32_t>> PartitionState::wanted_isr(int64_t now_ms, int64_t lag_time_max_ms) const {
  if (!is_leader() || pending_isr_) return std::nullopt;
  std::vector<int32_t> next;
  bool changed = false;
  for (int32_t r : meta_.replicas) {
    const bool in = contains(meta_.isr, r);
    if (r == me_) {
      next.push_back(r);
      changed |= !in;
      continue;
    }
    auto it = followers_.find(r);
    if (it == followers_.end()) continue;
    const Follower& f = it->second;
    if (in) {
      if (now_ms - f.last_caught_up_ms > lag_time_max_ms) {
        changed = true;  // lagging: out
      } else {
        next.push_back(r);
      }
    } else if (f.log_end >= 0 && f.log_end >= hw_ && f.log_end >= epoch_start_offset_ &&
               now_ms - f.last_caught_up_ms <= lag_time_max_ms) {
      next.push_back(r);  // caught up: back in
      changed = true;
    }
  }
  // Members the replica list no longer has go too.
  for (int32_t r : meta_.isr) changed |= !contains(meta_.replicas, r);
  if (!changed) return std::nullopt;
  return next;
}

}  // namespace gannet::broker
