#include "metadata/quorum_controller.h"

#include <glog/logging.h>

#include <algorithm>

namespace gannet::metadata {

QuorumController::QuorumController(QuorumControllerOptions options, raft::RaftNode* node,
                                   MetadataPublisher* publisher, Clock* clock)
    : options_(std::move(options)),
      node_(node),
      publisher_(publisher),
      clock_(clock ? clock : SystemClock::instance()),
      seed_(options_.seed ? options_.seed : static_cast<uint64_t>(clock_->now_ms())) {}

QuorumController::~QuorumController() { stop(); }

void QuorumController::start() {
  thread_ = std::thread([this] { periodic(); });
}

void QuorumController::stop() {
  stopped_ = true;  // writes waiting for the image give up (a shutdown must not wait for them)
  {
    std::lock_guard<std::mutex> l(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

WriteOutcome QuorumController::prepare_locked(int64_t deadline_ms, raft::QuorumStatus* status) {
  WriteOutcome out;
  raft::RaftNode* node = node_.load();
  if (!node || stopped_.load()) {
    out.not_controller = true;
    out.message = node ? "the controller is stopping" : "the controller is starting";
    return out;
  }
  *status = node->status();
  auto not_leading = [&](const raft::QuorumStatus& s) {
    out.not_controller = true;
    out.leader = s.leader;
    out.message = "node " + std::to_string(s.id) + " is not the active controller";
    return out;
  };
  if (status->role != raft::Role::kLeader) return not_leading(*status);
  if (status->epoch != active_epoch_) {
    // A new term: soft state starts over (every broker gets a full session).
    logic_ = std::make_unique<ControllerLogic>(options_.logic, seed_ ^ static_cast<uint64_t>(status->epoch));
    active_epoch_ = status->epoch;
    LOG(INFO) << "controller " << status->id << " active in quorum epoch " << status->epoch;
  }
  // Everything in this leader's log must be in the image before deciding on it. Wait in short
  // slices, giving up as soon as this node stops leading.
  while (!publisher_->wait_for_offset(status->log_end_offset, std::min<int64_t>(100, std::max<int64_t>(0, deadline_ms - clock_->monotonic_ms())))) {
    raft::QuorumStatus now = node->status();
    if (now.role != raft::Role::kLeader || now.epoch != status->epoch || stopped_.load()) return not_leading(now);
    if (clock_->monotonic_ms() >= deadline_ms) {
      out.timed_out = true;
      out.message = "the controller's metadata image did not catch up with offset " +
                    std::to_string(status->log_end_offset) + " in time";
      return out;
    }
  }
  return out;
}

WriteOutcome QuorumController::read(const Inspect& inspect, int64_t timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.write_timeout_ms;
  const int64_t deadline = clock_->monotonic_ms() + timeout_ms;
  std::unique_lock<std::timed_mutex> l(mu_, std::defer_lock);
  if (!lock_until(l, deadline)) return busy();
  raft::QuorumStatus status;
  WriteOutcome out = prepare_locked(deadline, &status);
  if (out.not_controller || out.timed_out) return out;
  inspect(*logic_, *publisher_->image(), status);
  return out;
}

WriteOutcome QuorumController::write(const Decide& decide, int64_t timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.write_timeout_ms;
  const int64_t deadline = clock_->monotonic_ms() + timeout_ms;
  std::unique_lock<std::timed_mutex> l(mu_, std::defer_lock);
  if (!lock_until(l, deadline)) return busy();
  raft::QuorumStatus status;
  WriteOutcome out = prepare_locked(deadline, &status);
  if (out.not_controller || out.timed_out) return out;
  auto image = publisher_->image();
  Decision d = decide(*logic_, *image, status.log_end_offset, clock_->now_ms());
  out.error = d.error;
  out.message = d.message;
  if (!d.ok() || d.records.empty()) return out;
  // One decision, one quorum entry: it commits (and every node applies it) whole or not at all.
  out.records = d.records.size();
  raft::AppendOutcome a = node_.load()->append({encode_batch(d.records)},
                                               std::max<int64_t>(1, deadline - clock_->monotonic_ms()), status.epoch);
  out.last_offset = a.last_offset;
  if (!a.ok) {
    if (!a.proposed) {
      out.not_controller = true;
      out.leader = a.leader;
      out.message = a.too_large ? "the change is larger than one metadata log entry may be (8 MiB)" : a.error;
      if (a.too_large) {
        out.not_controller = false;
        out.error = ApiError::kInvalidRequest;
      }
    } else {
      // Proposed but not known committed: it may still commit (or vanish with a new leader).
      out.timed_out = true;
      out.message = a.error;
    }
    // Soft state decided with these records (heartbeat times) is harmless to keep; a new term
    // resets it anyway.
    return out;
  }
  if (!publisher_->wait_for_offset(a.last_offset + 1, std::max<int64_t>(0, deadline - clock_->monotonic_ms()))) {
    out.timed_out = true;
    out.message = "committed at offset " + std::to_string(a.last_offset) +
                  " but not yet applied to the controller's image";
  }
  return out;
}

bool QuorumController::lock_until(std::unique_lock<std::timed_mutex>& l, int64_t deadline_ms) {
  return l.try_lock_for(std::chrono::milliseconds(std::max<int64_t>(0, deadline_ms - clock_->monotonic_ms())));
}

WriteOutcome QuorumController::busy() {
  WriteOutcome out;
  out.timed_out = true;
  out.message = "the controller was busy with other changes until the request's deadline";
  return out;
}

void QuorumController::note_heartbeat(int32_t broker) {
  std::lock_guard<std::mutex> l(arrivals_mu_);
  arrivals_[broker] = clock_->now_ms();
}

void QuorumController::periodic() {
  int64_t last_rebalance = clock_->monotonic_ms();
  std::unique_lock<std::mutex> l(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(l, std::chrono::milliseconds(options_.tick_interval_ms));
    if (stopping_) break;
    l.unlock();
    if (raft::RaftNode* node = node_.load(); node && node->status().role == raft::Role::kLeader) {
      // Heartbeats that arrived but still wait for the lock count as alive.
      std::map<int32_t, int64_t> arrivals;
      {
        std::lock_guard<std::mutex> al(arrivals_mu_);
        arrivals = arrivals_;
      }
      WriteOutcome o = write([&arrivals](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t now) {
        return logic.tick(image, now, arrivals);
      }, std::max<int64_t>(options_.tick_interval_ms * 4, 2000));
      if (o.records > 0) {
        LOG(INFO) << "controller: session expiry wrote " << o.records << " record(s)"
                  << (o.ok() ? "" : ": " + o.message);
      }
      const int64_t now = clock_->monotonic_ms();
      if (options_.rebalance_interval_ms > 0 && now - last_rebalance >= options_.rebalance_interval_ms) {
        last_rebalance = now;
        WriteOutcome r = write([](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t) {
          return logic.rebalance_preferred_leaders(image);
        });
        if (r.records > 0) LOG(INFO) << "controller: moved " << r.records << " leadership(s) back to preferred replicas";
      }
    }
    l.lock();
  }
}

}  // namespace gannet::metadata
