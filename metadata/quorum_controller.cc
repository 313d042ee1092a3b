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
  if (!node) {
    out.not_controller = true;
    out.message = "the controller is starting";
    return out;
  }
  *status = node->status();
  if (status->role != raft::Role::kLeader) {
    out.not_controller = true;
    out.leader = status->leader;
    out.message = "node " + std::to_string(status->id) + " is not the active controller";
    return out;
  }
  if (status->epoch != active_epoch_) {
    // A new term: soft state starts over (every broker gets a full session).
    logic_ = std::make_unique<ControllerLogic>(options_.logic, seed_ ^ static_cast<uint64_t>(status->epoch));
    active_epoch_ = status->epoch;
    LOG(INFO) << "controller " << status->id << " active in quorum epoch " << status->epoch;
  }
  // Everything in this leader's log must be in the image before deciding on it.
  const int64_t wait = deadline_ms - clock_->monotonic_ms();
  if (!publisher_->wait_for_offset(status->log_end_offset, wait)) {
    out.timed_out = true;
    out.message = "the controller's metadata image did not catch up with offset " +
                  std::to_string(status->log_end_offset) + " in time";
    return out;
  }
  return out;
}

WriteOutcome QuorumController::read(const Inspect& inspect, int64_t timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.write_timeout_ms;
  const int64_t deadline = clock_->monotonic_ms() + timeout_ms;
  std::lock_guard<std::mutex> l(mu_);
  raft::QuorumStatus status;
  WriteOutcome out = prepare_locked(deadline, &status);
  if (out.not_controller || out.timed_out) return out;
  inspect(*logic_, *publisher_->image(), status);
  return out;
}

WriteOutcome QuorumController::write(const Decide& decide, int64_t timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.write_timeout_ms;
  const int64_t deadline = clock_->monotonic_ms() + timeout_ms;
  std::lock_guard<std::mutex> l(mu_);
  raft::QuorumStatus status;
  WriteOutcome out = prepare_locked(deadline, &status);
  if (out.not_controller || out.timed_out) return out;
  auto image = publisher_->image();
  Decision d = decide(*logic_, *image, status.log_end_offset, clock_->now_ms());
  out.error = d.error;
  out.message = d.message;
  if (!d.ok() || d.records.empty()) return out;
  std::vector<std::string> encoded;
  encoded.reserve(d.records.size());
  for (auto& r : d.records) encoded.push_back(encode_record(r));
  out.records = encoded.size();
  raft::AppendOutcome a = node_.load()->append(encoded, std::max<int64_t>(1, deadline - clock_->monotonic_ms()),
                                        status.epoch);
  out.last_offset = a.last_offset;
  if (!a.ok) {
    if (!a.proposed) {
      out.not_controller = true;
      out.leader = a.leader;
      out.message = a.too_large ? "a metadata record is larger than the quorum accepts" : a.error;
      if (a.too_large) {
        out.not_controller = false;
        out.error = ApiError::kInvalidConfig;
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

void QuorumController::periodic() {
  int64_t last_rebalance = clock_->monotonic_ms();
  std::unique_lock<std::mutex> l(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(l, std::chrono::milliseconds(options_.tick_interval_ms));
    if (stopping_) break;
    l.unlock();
    if (raft::RaftNode* node = node_.load(); node && node->status().role == raft::Role::kLeader) {
      WriteOutcome o = write([](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t now) {
        return logic.tick(image, now);
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
