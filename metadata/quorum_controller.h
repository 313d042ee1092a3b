// QuorumController: runs ControllerLogic on the node that leads the metadata quorum (the active
// controller, DESIGN.md "Metadata"). Every write is one step, serialized by one lock:
//   1. this node must lead; else the caller learns who does;
//   2. wait until the published image covers the whole of this leader's log (at the start of a
//      term that includes every entry an earlier leader wrote), so decisions never act on a
//      stale image;
//   3. decide (ControllerLogic: image in, records out);
//   4. append the records, as one quorum entry, in that same quorum epoch and wait for them to
//      commit (a decision is applied whole or not at all);
//   5. wait until the image includes them, so the next write (and the caller) sees its effect.
// A background thread runs the periodic decisions: fencing brokers whose session expired, and
// preferred-leader rebalancing.
//
// The soft state (heartbeat times, each broker's metadata offset) is reset whenever this node
// starts a new term as leader: every broker gets a full session from a new controller.
//
// No gRPC here (metadata/ knows nothing of servers); broker/controller_service serves it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "metadata/controller_logic.h"
#include "metadata/metadata_publisher.h"
#include "raft/raft_node.h"

namespace gannet::metadata {

struct QuorumControllerOptions {
  ControllerConfig logic;
  std::string cluster_id;
  int64_t write_timeout_ms = 30'000;        // default bound of one write
  int64_t tick_interval_ms = 500;           // session-expiry check
  int64_t rebalance_interval_ms = 300'000;  // leader.imbalance.check.interval.seconds; <= 0: off
  uint64_t seed = 0;                        // topic ids and placement; 0: from the clock
};

// What a write got. not_controller: this node does not lead (leader: who does, or kNoNode).
struct WriteOutcome {
  ApiError error = ApiError::kNone;
  std::string message;
  bool not_controller = false;
  bool timed_out = false;
  raft::NodeId leader = raft::kNoNode;
  int64_t last_offset = -1;  // of the last record appended
  size_t records = 0;
  bool ok() const { return error == ApiError::kNone && !not_controller && !timed_out; }
};

class QuorumController {
 public:
  // decide() runs under the controller's lock with the current logic and image, the offset the
  // first record will get, and the wall time.
  using Decide = std::function<Decision(ControllerLogic& logic, const MetadataImage& image,
                                        int64_t next_offset, int64_t now_ms)>;
  // Read-only view under the lock, as of an up-to-date image.
  using Inspect = std::function<void(const ControllerLogic& logic, const MetadataImage& image,
                                     const raft::QuorumStatus& status)>;

  QuorumController(QuorumControllerOptions options, raft::RaftNode* node,
                   MetadataPublisher* publisher, Clock* clock = nullptr);
  ~QuorumController();

  // The node may be given after construction (the node's gRPC server serves this controller's
  // API, so each needs the other); until then every request answers "not controller".
  void set_node(raft::RaftNode* node) { node_.store(node); }
  void start();
  void stop();

  // Waits at most timeout_ms in all (for the lock, the image, the commit).
  WriteOutcome write(const Decide& decide, int64_t timeout_ms = 0);
  WriteOutcome read(const Inspect& inspect, int64_t timeout_ms = 0);

  // A heartbeat from `broker` arrived (called before it queues for the lock): session expiry
  // counts it even if a long write delays its processing.
  void note_heartbeat(int32_t broker);

  const QuorumControllerOptions& options() const { return options_; }
  MetadataPublisher* publisher() const { return publisher_; }

 private:
  // Steps 1-2: returns an outcome with not_controller/timed_out set when the write cannot go on.
  WriteOutcome prepare_locked(int64_t deadline_ms, raft::QuorumStatus* status);
  void periodic();
  bool lock_until(std::unique_lock<std::timed_mutex>& l, int64_t deadline_ms);
  static WriteOutcome busy();

  const QuorumControllerOptions options_;
  std::atomic<raft::RaftNode*> node_;
  MetadataPublisher* const publisher_;
  Clock* const clock_;

  std::timed_mutex mu_;  // one write at a time
  std::unique_ptr<ControllerLogic> logic_;
  raft::Epoch active_epoch_ = 0;  // the term logic_'s soft state belongs to
  uint64_t seed_;

  std::mutex arrivals_mu_;
  std::map<int32_t, int64_t> arrivals_;  // broker -> wall time its last heartbeat arrived

  std::atomic<bool> stopped_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gannet::metadata
