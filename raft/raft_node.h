// RaftNode: runs a RaftCore for real: wall-clock ticks, RaftStore on disk, gRPC between voters.
//
// Threads: one loop thread owns the core (every core call happens on it, under mu_); the gRPC
// server's threads hand inbound messages to it and wait for the matching response; per peer, two
// sender threads (one for the long-polling Fetch, one for everything else) make the outbound
// calls and feed the responses back. Each Ready is handled as the core's contract requires: hard
// state and snapshot saved (synced) first, then log writes, a sync (one fdatasync shared by
// everything in the Ready), then messages are sent and committed entries published.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/grpc_security.h"
#include "raft/raft_core.h"
#include "raft/raft_store.h"

namespace grpc {
class Server;
class Service;
}

namespace gannet::raft {

// What the metadata layer plugs in. Called from the node's loop thread, one call at a time, in
// log order, never with the node's lock held (a listener may call append() or snapshot_taken()).
class RaftListener {
 public:
  virtual ~RaftListener() = default;
  // Load this state: it covers every entry below s.id.end_offset (at start, and when a leader
  // sends a snapshot because this node fell behind the log start).
  virtual void on_snapshot(const Snapshot& s) = 0;
  // Newly committed entries, in offset order, continuing the last snapshot or commit.
  virtual void on_commit(const std::vector<Entry>& entries) = 0;
  virtual void on_leader_change(Epoch epoch, NodeId leader) = 0;
};

struct RaftNodeOptions {
  NodeId id = kNoNode;
  std::map<NodeId, std::string> voters;  // id -> host:port (all voters, this node included)
  std::string listen_address;            // host:port to serve on ("host:0": pick a port)
  std::string data_dir;
  int64_t election_timeout_ms = 1000;
  int64_t fetch_timeout_ms = 2000;
  int64_t fetch_max_wait_ms = 500;
  int64_t tick_ms = 10;
  NodeId max_node_id = 1000;  // reserved.broker.max.id: fetches naming other ids are refused
  RaftListener* listener = nullptr;  // optional; must outlive the node
  // Serve the Append RPC (raw records into the log, for tests and quorum debugging). gannetd
  // turns it off unless quorum.append.rpc.enable=true: raw records bypass the controller.
  bool allow_append_rpc = true;
  // More gRPC services to serve on listen_address (the controller API); must outlive the node.
  std::vector<grpc::Service*> services;
  // TLS on listen_address and toward the other voters (mTLS); null: plaintext. With TLS, the
  // quorum's RPCs (other than DescribeQuorum) are answered only for `cluster_principals`.
  std::shared_ptr<const GrpcTls> tls;
  std::vector<std::string> cluster_principals;
};

struct AppendOutcome {
  bool ok = false;          // committed
  bool proposed = false;    // appended to the leader's log (maybe not committed yet)
  bool too_large = false;   // refused: a record exceeds the quorum's limit
  NodeId leader = kNoNode;  // when not ok because this node does not lead
  int64_t last_offset = -1;
  std::string error;
  bool timed_out = false;
};

struct QuorumStatus {
  NodeId id = kNoNode;
  Role role = Role::kUnattached;
  NodeId leader = kNoNode;
  Epoch epoch = 0;
  int64_t high_watermark = 0;
  int64_t log_end_offset = 0;
  int64_t log_start_offset = 0;
  std::vector<ReplicaStatus> replicas;  // leader only
  int64_t now_ms = 0;
};

class RaftNode {
 public:
  static storage::Result<std::unique_ptr<RaftNode>> start(RaftNodeOptions options);
  ~RaftNode();

  // Appends records if this node leads and waits until they are committed (HW past them).
  // With expected_epoch > 0 the records are refused (as from a non-leader) unless this node
  // leads in exactly that epoch: a controller that decided on an image of one term never
  // appends its decision into another.
  AppendOutcome append(const std::vector<std::string>& records, int64_t timeout_ms,
                       Epoch expected_epoch = 0);
  QuorumStatus status();
  // The state machine captured every committed entry below s.id.end_offset in s.data: the
  // quorum keeps it (and serves it to replicas behind) and may drop the log below it.
  void snapshot_taken(Snapshot s);
  // The port the server listens on.
  int port() const { return port_; }
  // Graceful stop: a leader first hands leadership over (EndQuorumEpoch).
  void shutdown();

  // Internal (gRPC service): an inbound request; waits for the core's response to it.
  bool exchange(const Message& in, Body* response, int64_t wait_ms);
  void deliver(Message m);  // an inbound message that needs no response

 private:
  class Service;
  struct Peer;

  explicit RaftNode(RaftNodeOptions options);
  void loop();
  void handle_ready_locked(std::unique_lock<std::mutex>& l);
  // Logs (at most every 5 s) fetches refused because two processes share a node id.
  void report_duplicates_locked(int64_t now);
  void send_locked(Message m);
  int64_t now_ms() const;

  RaftNodeOptions options_;
  std::unique_ptr<RaftStore> store_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Service> service_;
  int port_ = 0;

  std::mutex mu_;
  int64_t next_duplicate_report_ms_ = 0;
  uint64_t reported_refusals_ = 0, reported_fetches_ = 0;
  std::condition_variable cv_;        // the loop waits here
  std::condition_variable waiters_;   // responses and commits
  std::unique_ptr<RaftCore> core_;
  std::deque<Message> inbox_;
  bool stopping_ = false;
  // Responses the core produced for requests a gRPC handler is waiting on, by (peer, kind).
  std::map<std::pair<NodeId, size_t>, Body> responses_;
  std::map<std::pair<NodeId, size_t>, uint64_t> waiting_;  // handler ticket per slot
  uint64_t next_ticket_ = 1;
  std::map<NodeId, std::unique_ptr<Peer>> peers_;
  std::thread loop_thread_;
  std::atomic<bool> shutdown_started_{false};
};

}  // namespace gannet::raft
