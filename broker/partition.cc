#include "broker/partition.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>

#include "storage/error_code.h"

namespace gannet::broker {

namespace {

ErrorCode storage_code(const storage::Error& e) { return storage::to_error_code(e.code); }

}  // namespace

Partition::Partition(storage::TopicPartition tp, std::string topic_id, std::shared_ptr<storage::Log> log, int32_t me)
    : tp_(std::move(tp)), topic_id_(std::move(topic_id)), log_(std::move(log)), me_(me), state_(me) {}

bool Partition::apply_metadata(const PartitionMetadata& m, int32_t min_insync_replicas, int64_t now_ms) {
  bool became_leader;
  {
    std::lock_guard<std::mutex> l(mu_);
    min_insync_ = std::max(1, min_insync_replicas);
    became_leader = state_.apply_metadata(m, leader_end_locked(), log_->high_watermark(), now_ms);
    if (!state_.is_leader()) {
      // A follower's epoch cache ends with its last record: drop epochs it led without writing.
      auto st = log_->epoch_cache().truncate_from_end(log_->log_end_offset(), /*persist=*/false);
      if (!st.ok()) LOG(ERROR) << tp_.dir_name() << ": cannot trim the epoch cache: " << st.error().to_string();
    }
    if (became_leader) {
      // The new epoch starts at the log end: followers of an older epoch are told to truncate
      // to where this leader's history and theirs agree. Written to disk with the epoch's first
      // batch (Log::append), not here: a failover moving N leaderships costs no fsync.
      auto st = log_->epoch_cache().assign(m.leader_epoch, log_->log_end_offset(), /*persist=*/false);
      if (!st.ok()) LOG(ERROR) << tp_.dir_name() << ": cannot record leader epoch: " << st.error().to_string();
    }
    // A new term, or an ISR change in this one, can move the HW (a leader alone in its ISR
    // commits its whole log at once).
    if (state_.is_leader()) log_->update_high_watermark(state_.high_watermark());
  }
  hw_changed();  // acks=all waiters re-check their leader epoch
  wake_watchers();
  return became_leader;
}

ErrorCode Partition::check_epoch_locked(int32_t current_leader_epoch) const {
  if (current_leader_epoch < 0) return gannet::v1::NONE;
  if (current_leader_epoch < state_.leader_epoch()) return gannet::v1::FENCED_LEADER_EPOCH;
  if (current_leader_epoch > state_.leader_epoch()) return gannet::v1::UNKNOWN_LEADER_EPOCH;
  return gannet::v1::NONE;
}

int64_t Partition::leader_end_locked() const {
  // With flush.messages=1 (fsync before ack) only synced records count towards the HW: an append
  // another producer has not synced yet must not become committed through this one's progress.
  const int64_t end = log_->log_end_offset();
  return log_->config().flush_messages <= 1 ? std::min(end, log_->durable_offset()) : end;
}

bool Partition::count_local_append_locked() {
  const bool moved = state_.on_local_append(leader_end_locked());
  if (moved) log_->update_high_watermark(state_.high_watermark());
  return moved;
}

ProduceOutcome Partition::append_as_leader(std::string* batches, int acks) {
  ProduceOutcome out;
  bool moved = false;
  int64_t flush_to = -1;
  {
    std::lock_guard<std::mutex> l(mu_);
    out.leader = state_.leader();
    out.leader_epoch = state_.leader_epoch();
    if (!state_.is_leader()) {
      out.error = gannet::v1::NOT_LEADER_OR_FOLLOWER;
      out.message = "broker " + std::to_string(me_) + " does not lead " + tp_.dir_name();
      return out;
    }
    if (acks == -1 && static_cast<int>(state_.isr().size()) < min_insync_) {
      out.error = gannet::v1::NOT_ENOUGH_REPLICAS;
      out.message = tp_.dir_name() + " has " + std::to_string(state_.isr().size()) +
                    " in-sync replicas; min.insync.replicas is " + std::to_string(min_insync_);
      return out;
    }
    // flush.messages due: the fsync happens below, outside mu_, so concurrent producers share it
    // (the log's group commit) and fetches are not held up by it.
    auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(batches->data()), batches->size()),
                          state_.leader_epoch(), /*defer_flush=*/true);
    if (!r.ok()) {
      out.error = storage_code(r.error());
      out.message = r.error().to_string();
      return out;
    }
    out.base_offset = r->base_offset;
    out.last_offset = r->last_offset;
    flush_to = r->flush_to;
    if (flush_to < 0) moved = count_local_append_locked();
  }
  if (flush_to >= 0) {
    auto st = log_->flush_to(flush_to);
    if (!st.ok()) {
      out.error = storage_code(st.error());
      out.message = st.error().to_string();
      return out;
    }
    std::lock_guard<std::mutex> l(mu_);
    moved = count_local_append_locked();
  }
  if (moved) hw_changed();
  wake_watchers();
  return out;
}

std::optional<ErrorCode> Partition::replication_result_locked(int64_t last_offset, int32_t leader_epoch) const {
  if (state_.high_watermark() > last_offset && state_.leader_epoch() == leader_epoch) {
    // The ISR may have shrunk while we waited: fewer copies than promised is not a success.
    if (static_cast<int>(state_.isr().size()) < min_insync_) return gannet::v1::NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    return gannet::v1::NONE;
  }
  if (stopping_) return gannet::v1::REQUEST_TIMED_OUT;
  if (!state_.is_leader() || state_.leader_epoch() != leader_epoch) {
    // Leadership moved before the ISR had it: the records may or may not survive.
    return gannet::v1::NOT_LEADER_OR_FOLLOWER;
  }
  return std::nullopt;
}

ErrorCode Partition::wait_for_replication(int64_t last_offset, int32_t leader_epoch, int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::optional<ErrorCode> r;
  hw_cv_.wait_until(l, deadline, [&] { return (r = replication_result_locked(last_offset, leader_epoch)).has_value(); });
  return r.value_or(gannet::v1::REQUEST_TIMED_OUT);
}

uint64_t Partition::on_replicated(int64_t last_offset, int32_t leader_epoch, ReplicationDone done) {
  std::optional<ErrorCode> now;
  {
    std::lock_guard<std::mutex> l(mu_);
    now = replication_result_locked(last_offset, leader_epoch);
    if (!now) {
      const uint64_t id = next_waiter_id_++;
      auto it = repl_waiters_.emplace(last_offset, ReplicationWaiter{id, leader_epoch, std::move(done)});
      repl_waiter_ids_[id] = it;
      return id;
    }
  }
  done(*now);
  return 0;
}

void Partition::expire_replication_wait(uint64_t id) {
  ReplicationDone done;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = repl_waiter_ids_.find(id);
    if (it == repl_waiter_ids_.end()) return;
    done = std::move(it->second->second.done);
    repl_waiters_.erase(it->second);
    repl_waiter_ids_.erase(it);
  }
  done(gannet::v1::REQUEST_TIMED_OUT);
}

void Partition::hw_changed() {
  hw_cv_.notify_all();
  std::vector<std::pair<ReplicationDone, ErrorCode>> ready;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Waiters are by last offset: in the current leadership the HW completes them from the front;
    // any other change (a new epoch, no longer leader, stopping) may complete any of them.
    const bool scan_all = stopping_ || !state_.is_leader() || state_.leader_epoch() != waiters_scanned_epoch_;
    waiters_scanned_epoch_ = state_.leader_epoch();
    for (auto it = repl_waiters_.begin(); it != repl_waiters_.end();) {
      auto r = replication_result_locked(it->first, it->second.leader_epoch);
      if (!r) {
        if (!scan_all) break;
        ++it;
        continue;
      }
      ready.emplace_back(std::move(it->second.done), *r);
      repl_waiter_ids_.erase(it->second.id);
      it = repl_waiters_.erase(it);
    }
  }
  for (auto& [done, code] : ready) done(code);
}

FetchOutcome Partition::read(int32_t replica_id, int64_t fetch_offset, int32_t current_leader_epoch,
                             int32_t last_fetched_epoch, size_t max_bytes, int64_t now_ms, bool count_progress,
                             bool as_slices) {
  FetchOutcome out;
  {
    std::lock_guard<std::mutex> l(mu_);
    out.leader = state_.leader();
    out.leader_epoch = state_.leader_epoch();
    out.log_start_offset = log_->log_start_offset();
    out.log_end_offset = log_->log_end_offset();
    out.high_watermark = state_.is_leader() ? state_.high_watermark() : log_->high_watermark();
    if (!state_.is_leader()) {
      out.error = gannet::v1::NOT_LEADER_OR_FOLLOWER;
      return out;
    }
    if (ErrorCode e = check_epoch_locked(current_leader_epoch); e != gannet::v1::NONE) {
      out.error = e;
      return out;
    }
    if (replica_id >= 0) {
      const auto& replicas = state_.replicas();
      if (std::find(replicas.begin(), replicas.end(), replica_id) == replicas.end() || replica_id == me_) {
        out.error = gannet::v1::NOT_LEADER_OR_FOLLOWER;
        out.message = "broker " + std::to_string(replica_id) + " is not a follower of " + tp_.dir_name();
        return out;
      }
      // A follower: its history must match ours up to fetch_offset, else it truncates first.
      const int64_t end = log_->log_end_offset();
      if (fetch_offset < log_->log_start_offset()) {
        out.error = gannet::v1::OFFSET_OUT_OF_RANGE;  // it restarts at our log start
        return out;
      }
      if (last_fetched_epoch >= 0) {
        auto e = log_->epoch_cache().end_offset_for(last_fetched_epoch, end);
        if (!e || e->epoch != last_fetched_epoch || e->start_offset < fetch_offset) {
          out.diverging = e ? std::make_pair(e->epoch, e->start_offset) : std::make_pair(-1, log_->log_start_offset());
          return out;
        }
      } else if (fetch_offset > end) {
        out.diverging = std::make_pair(-1, end);
        return out;
      }
      if (fetch_offset > end) {
        out.diverging = std::make_pair(last_fetched_epoch, end);
        return out;
      }
      if (count_progress) out.hw_moved = state_.on_follower_fetch(replica_id, fetch_offset, now_ms);
      if (out.hw_moved) log_->update_high_watermark(state_.high_watermark());
      out.high_watermark = state_.high_watermark();
    }
  }
  if (out.hw_moved) {
    hw_changed();
    wake_watchers();
  }
  if (read_hook_for_test_) read_hook_for_test_();
  storage::ReadOptions ro;
  if (replica_id < 0) ro.max_offset = out.high_watermark;  // consumers see committed records only
  if (fetch_offset == out.log_end_offset || (replica_id < 0 && fetch_offset == out.high_watermark)) return out;
  auto r = log_->read(fetch_offset, max_bytes, ro);
  if (!r.ok()) {
    out.error = storage_code(r.error());
    out.message = r.error().to_string();
  } else if (as_slices) {
    out.slices = std::move(r->slices);
    out.slice_bytes = r->bytes;
  } else if (auto st = r->copy_to(&out.records); !st.ok()) {
    out.error = storage_code(st.error());
    out.records.clear();
  }
  // The log was read outside the lock. If this replica stopped leading meanwhile, it may have
  // truncated and appended another leader's history under these offsets: a follower still on
  // the old epoch would splice it onto a divergent prefix. Leadership epochs never come back, so
  // the same epoch now means nothing was truncated during the read.
  // (Also for a read that failed: an out-of-range answer caused by such a truncation must not
  // make a consumer reset its position.)
  std::lock_guard<std::mutex> l(mu_);
  if (!state_.is_leader() || state_.leader_epoch() != out.leader_epoch) {
    out.records.clear();
    out.slices.clear();
    out.slice_bytes = 0;
    out.message.clear();
    out.error = gannet::v1::NOT_LEADER_OR_FOLLOWER;
    out.leader = state_.leader();
    out.leader_epoch = state_.leader_epoch();
  }
  return out;
}

ProduceOutcome Partition::list_offset(int64_t timestamp, int32_t current_leader_epoch) {
  ProduceOutcome out;
  std::lock_guard<std::mutex> l(mu_);
  out.leader = state_.leader();
  out.leader_epoch = state_.leader_epoch();
  if (!state_.is_leader()) {
    out.error = gannet::v1::NOT_LEADER_OR_FOLLOWER;
    return out;
  }
  if (ErrorCode e = check_epoch_locked(current_leader_epoch); e != gannet::v1::NONE) {
    out.error = e;
    return out;
  }
  if (timestamp == -1) {
    out.base_offset = state_.high_watermark();
  } else if (timestamp == -2) {
    out.base_offset = log_->log_start_offset();
  } else {
    auto r = log_->offset_for_timestamp(timestamp);
    if (!r.ok()) {
      out.error = storage_code(r.error());
      out.message = r.error().to_string();
      return out;
    }
    // Only committed records are visible.
    out.base_offset = (*r && (*r)->offset < state_.high_watermark()) ? (*r)->offset : -1;
    out.last_offset = *r ? (*r)->timestamp : -1;
  }
  return out;
}

std::optional<Partition::FollowerFetch> Partition::follower_fetch_state(int32_t leader) const {
  std::lock_guard<std::mutex> l(mu_);
  if (state_.is_leader() || state_.leader() != leader) return std::nullopt;
  FollowerFetch f;
  f.fetch_offset = log_->log_end_offset();
  // The epoch of the last record held (not the latest epoch entry: a leadership this replica
  // held without writing anything left an entry no other replica knows).
  auto last = f.fetch_offset > log_->log_start_offset() ? log_->epoch_cache().epoch_for_offset(f.fetch_offset - 1)
                                                         : std::nullopt;
  f.last_fetched_epoch = last ? *last : -1;
  f.leader_epoch = state_.leader_epoch();
  return f;
}

ErrorCode Partition::apply_leader_response(int32_t leader_epoch, const FetchOutcome& r) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (state_.is_leader() || state_.leader_epoch() != leader_epoch) return gannet::v1::NONE;  // stale
    const bool below_start = log_->log_end_offset() < r.log_start_offset;
    if ((r.error == gannet::v1::OFFSET_OUT_OF_RANGE && below_start) || (r.diverging && r.diverging->first < 0)) {
      // Nothing here is in the leader's log (retention removed it, or no epoch is shared):
      // start over, empty, at the leader's log start.
      auto st = log_->truncate_fully_and_start_at(r.log_start_offset);
      if (!st.ok()) return storage_code(st.error());
      LOG(INFO) << tp_.dir_name() << ": restarted at the leader's log start " << r.log_start_offset;
      return gannet::v1::NONE;
    }
    if (r.error != gannet::v1::NONE) return r.error;
    if (r.diverging) {
      // Truncate to where both histories agree: the leader's end of that epoch, or ours if lower.
      int64_t to = std::min(r.diverging->second, log_->log_end_offset());
      if (r.diverging->first >= 0) {
        if (auto mine = log_->epoch_cache().end_offset_for(r.diverging->first, log_->log_end_offset())) {
          to = std::min(to, mine->start_offset);
        }
      }
      auto st = to <= log_->log_start_offset() && to < log_->log_end_offset()
                    ? log_->truncate_fully_and_start_at(std::max(to, r.log_start_offset))
                    : log_->truncate_to(to);
      if (!st.ok()) {
        LOG(ERROR) << tp_.dir_name() << ": truncation to " << to << " failed: " << st.error().to_string();
        return storage_code(st.error());
      }
      LOG(INFO) << tp_.dir_name() << ": diverged from leader " << state_.leader() << " (epoch "
                << r.diverging->first << " ends at " << r.diverging->second << "); truncated to " << to;
      return gannet::v1::NONE;
    }
    if (!r.records.empty()) {
      std::string copy = r.records;
      auto a = log_->append_as_follower(std::span<uint8_t>(reinterpret_cast<uint8_t*>(copy.data()), copy.size()));
      if (!a.ok()) {
        LOG(WARNING) << tp_.dir_name() << ": follower append failed: " << a.error().to_string();
        return storage_code(a.error());
      }
      changed = true;
    }
    const int64_t hw = std::min(r.high_watermark, log_->log_end_offset());
    if (hw > log_->high_watermark()) {
      log_->update_high_watermark(hw);
      changed = true;
    }
  }
  if (changed) wake_watchers();
  return gannet::v1::NONE;
}

std::optional<Partition::IsrProposal> Partition::isr_proposal(int64_t now_ms, int64_t lag_time_max_ms) {
  std::lock_guard<std::mutex> l(mu_);
  if (resend_) {
    // The last proposal's outcome is unknown: send the same one again (the HW keeps counting both
    // ISRs until the metadata log says which holds).
    if (!state_.isr_change_pending()) {
      resend_.reset();
    } else if (resend_->partition_epoch == state_.partition_epoch() && resend_->leader_epoch == state_.leader_epoch()) {
      return resend_;
    } else {
      resend_.reset();
    }
  }
  auto isr = state_.wanted_isr(now_ms, lag_time_max_ms);
  if (!isr) return std::nullopt;
  state_.set_pending_isr(*isr);
  return IsrProposal{*isr, state_.leader_epoch(), state_.partition_epoch(), state_.isr().size()};
}

void Partition::isr_proposal_failed(ErrorCode code) {
  std::lock_guard<std::mutex> l(mu_);
  resend_.reset();
  // INVALID_UPDATE_VERSION / FENCED_LEADER_EPOCH: the controller holds a newer partition state
  // than this leader's image, perhaps the one an earlier send of this very proposal committed
  // (its reply lost). Until the metadata shows which ISR holds, the HW keeps counting the union
  // (Kafka's "maximal ISR"); apply_metadata drops the pending ISR when the partition epoch moves.
  // Any other refusal means the proposal was seen and turned down: the ISR is the image's.
  const bool newer_state_exists = code == gannet::v1::INVALID_UPDATE_VERSION ||
                                  code == gannet::v1::FENCED_LEADER_EPOCH ||
                                  code == gannet::v1::UNKNOWN_TOPIC_OR_PARTITION;
  if (!newer_state_exists) state_.clear_pending_isr();
}

void Partition::isr_proposal_unknown(const IsrProposal& p) {
  std::lock_guard<std::mutex> l(mu_);
  if (state_.isr_change_pending()) resend_ = p;
}

void Partition::shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  hw_changed();
  retire();
}

void Partition::watch(const std::shared_ptr<FetchWaiter>& w) {
  std::unique_lock<std::mutex> l(watchers_mu_);
  if (retired_) {
    l.unlock();
    w->wake();
    return;
  }
  bool present = false;
  std::erase_if(watchers_, [&](const std::weak_ptr<FetchWaiter>& x) {
    auto p = x.lock();
    if (p == w) present = true;
    return !p;
  });
  if (!present) watchers_.push_back(w);
}

void Partition::retire() {
  {
    std::lock_guard<std::mutex> l(watchers_mu_);
    retired_ = true;
  }
  wake_watchers();
}

void Partition::wake_watchers() {
  std::vector<std::weak_ptr<FetchWaiter>> ws;
  {
    std::lock_guard<std::mutex> l(watchers_mu_);
    if (watchers_.empty()) return;
    ws.swap(watchers_);
  }
  for (const auto& x : ws) {
    if (auto w = x.lock()) w->wake();
  }
}

bool Partition::is_leader() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.is_leader();
}

int32_t Partition::leader() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.leader();
}

int32_t Partition::leader_epoch() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.leader_epoch();
}

int64_t Partition::high_watermark() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.is_leader() ? state_.high_watermark() : log_->high_watermark();
}

}  // namespace gannet::broker
