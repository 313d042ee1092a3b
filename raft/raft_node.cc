#include "raft/raft_node.h"

#include "common/grpc_security.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "proto/raft.grpc.pb.h"
#include "raft/wire.h"

namespace gannet::raft {
namespace {

constexpr size_t kVoteResponse = 1;
constexpr size_t kFetchResponse = 5;
constexpr size_t kFetchSnapshotResponse = 7;
constexpr size_t kMaxQueued = 256;  // per peer lane: older messages are dropped past this
// A fetch response holds up to max_fetch_bytes plus one entry of at most max_record_bytes.
constexpr int kMaxRpcBytes = 16 << 20;

bool is_response(const Body& b) {
  return b.index() == kVoteResponse || b.index() == kFetchResponse ||
         b.index() == kFetchSnapshotResponse;
}

}  // namespace

// ---- Outbound: one peer, two lanes -------------------------------------------------------------

struct RaftNode::Peer {
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Message> queue;
    std::thread thread;
  };

  NodeId id;
  std::unique_ptr<v1::Quorum::Stub> stub;
  Lane fetch_lane;    // Fetch and FetchSnapshot: long polls
  Lane control_lane;  // votes and epoch announcements
  std::atomic<bool> stopping{false};

  void enqueue(Message m) {
    Lane& lane = (m.body.index() == 4 || m.body.index() == 6) ? fetch_lane : control_lane;
    std::lock_guard<std::mutex> l(lane.mu);
    if (lane.queue.size() >= kMaxQueued) lane.queue.pop_front();
    lane.queue.push_back(std::move(m));
    lane.cv.notify_one();
  }

  void run(Lane& lane, RaftNode* node, int64_t fetch_wait_ms) {
    while (true) {
      Message m;
      {
        std::unique_lock<std::mutex> l(lane.mu);
        lane.cv.wait(l, [&] { return stopping.load() || !lane.queue.empty(); });
        if (stopping.load()) return;
        m = std::move(lane.queue.front());
        lane.queue.pop_front();
      }
      grpc::ClientContext ctx;
      const int64_t deadline_ms = (m.body.index() == 4) ? fetch_wait_ms + 2000 : 2000;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
      Message reply{id, m.from, {}};
      grpc::Status st;
      bool has_reply = true;
      switch (m.body.index()) {
        case 0: {
          v1::VoteResponse resp;
          st = stub->Vote(&ctx, to_proto(std::get<VoteRequest>(m.body)), &resp);
          reply.body = from_proto(resp);
          break;
        }
        case 2: {
          v1::Ack ack;
          st = stub->BeginQuorumEpoch(&ctx, to_proto(std::get<BeginQuorumEpoch>(m.body)), &ack);
          has_reply = false;
          break;
        }
        case 3: {
          v1::Ack ack;
          st = stub->EndQuorumEpoch(&ctx, to_proto(std::get<EndQuorumEpoch>(m.body)), &ack);
          has_reply = false;
          break;
        }
        case 4: {
          v1::FetchResponse resp;
          st = stub->Fetch(&ctx, to_proto(std::get<FetchRequest>(m.body)), &resp);
          reply.body = from_proto(resp);
          break;
        }
        case 6: {
          v1::FetchSnapshotResponse resp;
          st = stub->FetchSnapshot(&ctx, to_proto(std::get<FetchSnapshotRequest>(m.body)), &resp);
          reply.body = from_proto(resp);
          break;
        }
        default:
          has_reply = false;
      }
      if (st.ok() && has_reply) node->deliver(std::move(reply));
      // Failures are not retried here: the core's timers resend what still matters.
    }
  }
};

// ---- Inbound: the gRPC service ----------------------------------------------------------------

class RaftNode::Service final : public v1::Quorum::Service {
 public:
  explicit Service(RaftNode* node) : node_(node) {}

  // The core drops fetches naming an id no node can have; the caller gets told why at once.
  // With TLS on the quorum's listener, only the cluster's own principals (super.users) may vote,
  // fetch the metadata log or change it: a forged fetch naming a voter would move its high
  // watermark. Without TLS, anyone who reaches the port is trusted (docs/design-notes.md §24).
  grpc::Status check_peer(grpc::ServerContext* ctx) const {
    if (!node_->options_.tls) return grpc::Status::OK;
    std::string principal;
    if (grpc_peer_is_one_of(ctx, node_->options_.cluster_principals, &principal)) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "the metadata quorum answers only the cluster's own principals (super.users), not " +
                            (principal.empty() ? std::string("an unauthenticated caller") : principal));
  }

  grpc::Status check_replica(int32_t replica) const {
    if (replica >= 0 && replica <= node_->options_.max_node_id) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "replica id " + std::to_string(replica) + " is outside [0, reserved.broker.max.id=" +
                            std::to_string(node_->options_.max_node_id) + "]");
  }

  grpc::Status Vote(grpc::ServerContext* ctx, const v1::VoteRequest* req, v1::VoteResponse* resp) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    Body out;
    if (!node_->exchange(Message{req->candidate(), node_->options_.id, from_proto(*req)}, &out, 2000)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no answer from the quorum core");
    }
    *resp = to_proto(std::get<VoteResponse>(out));
    return grpc::Status::OK;
  }

  grpc::Status BeginQuorumEpoch(grpc::ServerContext* ctx, const v1::BeginQuorumEpochRequest* req,
                                v1::Ack*) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    node_->deliver(Message{req->leader(), node_->options_.id, from_proto(*req)});
    return grpc::Status::OK;
  }

  grpc::Status EndQuorumEpoch(grpc::ServerContext* ctx, const v1::EndQuorumEpochRequest* req,
                              v1::Ack*) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    node_->deliver(Message{req->leader(), node_->options_.id, from_proto(*req)});
    return grpc::Status::OK;
  }

  grpc::Status Fetch(grpc::ServerContext* ctx, const v1::FetchRequest* req, v1::FetchResponse* resp) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    if (grpc::Status st = check_replica(req->replica()); !st.ok()) return st;
    Body out;
    if (!node_->exchange(Message{req->replica(), node_->options_.id, from_proto(*req)}, &out,
                         node_->options_.fetch_max_wait_ms + 1000)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no answer from the quorum core");
    }
    *resp = to_proto(std::get<FetchResponse>(out));
    return grpc::Status::OK;
  }

  grpc::Status FetchSnapshot(grpc::ServerContext* ctx, const v1::FetchSnapshotRequest* req,
                             v1::FetchSnapshotResponse* resp) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    if (grpc::Status st = check_replica(req->replica()); !st.ok()) return st;
    Body out;
    if (!node_->exchange(Message{req->replica(), node_->options_.id, from_proto(*req)}, &out, 2000)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no answer from the quorum core");
    }
    *resp = to_proto(std::get<FetchSnapshotResponse>(out));
    return grpc::Status::OK;
  }

  grpc::Status Append(grpc::ServerContext* ctx, const v1::AppendRequest* req, v1::AppendResponse* resp) override {
    if (grpc::Status st = check_peer(ctx); !st.ok()) return st;
    if (!node_->options_.allow_append_rpc) {
      // Raw records would bypass the controller's validation of metadata.
      resp->set_error(gannet::v1::INVALID_REQUEST);
      resp->set_message("raw appends are disabled on this node (quorum.append.rpc.enable=false)");
      return grpc::Status::OK;
    }
    std::vector<std::string> records(req->records().begin(), req->records().end());
    if (records.empty()) {
      resp->set_error(gannet::v1::INVALID_REQUEST);
      resp->set_message("no records");
      return grpc::Status::OK;
    }
    AppendOutcome r = node_->append(records, req->timeout_ms() > 0 ? req->timeout_ms() : 10000);
    resp->set_leader(r.leader);
    resp->set_last_offset(r.last_offset);
    if (r.ok) {
      resp->set_error(gannet::v1::NONE);
    } else {
      resp->set_error(r.too_large   ? gannet::v1::MESSAGE_TOO_LARGE
                      : r.timed_out ? gannet::v1::REQUEST_TIMED_OUT
                                    : gannet::v1::NOT_CONTROLLER);
      resp->set_message(r.error);
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeQuorum(grpc::ServerContext*, const v1::DescribeQuorumRequest*,
                              v1::DescribeQuorumResponse* resp) override {
    QuorumStatus s = node_->status();
    resp->set_node_id(s.id);
    resp->set_role(role_name(s.role));
    resp->set_leader(s.leader);
    resp->set_epoch(s.epoch);
    resp->set_high_watermark(s.high_watermark);
    resp->set_log_end_offset(s.log_end_offset);
    resp->set_log_start_offset(s.log_start_offset);
    if (auto it = node_->options_.voters.find(s.leader); it != node_->options_.voters.end()) {
      resp->set_leader_address(it->second);
    }
    for (const ReplicaStatus& r : s.replicas) {
      v1::ReplicaState* out = r.voter ? resp->add_voters() : resp->add_observers();
      out->set_id(r.id);
      out->set_log_end_offset(r.end_offset);
      out->set_lag(r.end_offset < 0 ? -1 : s.log_end_offset - r.end_offset);
      out->set_last_fetch_ms_ago(r.id == s.id ? 0 : (r.last_fetch_ms < 0 ? -1 : s.now_ms - r.last_fetch_ms));
    }
    return grpc::Status::OK;
  }

 private:
  RaftNode* node_;
};

// ---- The node ---------------------------------------------------------------------------------

int64_t RaftNode::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

storage::Result<std::unique_ptr<RaftNode>> RaftNode::start(RaftNodeOptions options) {
  std::unique_ptr<RaftNode> node(new RaftNode(std::move(options)));
  const RaftNodeOptions& o = node->options_;
  GANNET_ASSIGN_OR_RETURN(node->store_, RaftStore::open(o.data_dir));
  GANNET_ASSIGN_OR_RETURN(RaftCore::Restored restored, node->store_->load());
  Config c;
  c.id = o.id;
  GANNET_ASSIGN_OR_RETURN(c.directory_id, node->store_->directory_id());
  for (const auto& [id, addr] : o.voters) c.voters.push_back(id);
  c.election_timeout_ms = o.election_timeout_ms;
  c.fetch_timeout_ms = o.fetch_timeout_ms;
  c.fetch_max_wait_ms = o.fetch_max_wait_ms;
  c.max_node_id = o.max_node_id;
  // Resend an unanswered fetch well before the fetch timeout would start an election.
  c.request_timeout_ms = o.fetch_max_wait_ms +
                         std::max<int64_t>(50, std::min<int64_t>(1000, (o.fetch_timeout_ms - o.fetch_max_wait_ms) / 2));
  c.seed = static_cast<uint64_t>(node->now_ms()) ^ static_cast<uint64_t>(o.id);
  LOG(INFO) << "quorum node " << o.id << ": restored epoch " << restored.hard_state.epoch
            << ", vote " << restored.hard_state.voted_for << ", " << restored.log.size()
            << " log entries" << (restored.snapshot ? " and a snapshot" : "");
  if (o.listener && restored.snapshot) o.listener->on_snapshot(*restored.snapshot);
  node->core_ = std::make_unique<RaftCore>(c, std::move(restored), node->now_ms());

  node->service_ = std::make_unique<Service>(node.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen_address, server_credentials(o.tls), &node->port_);
  builder.SetMaxReceiveMessageSize(kMaxRpcBytes);
  // Never share the port with another process (gRPC sets SO_REUSEPORT by default): a second
  // server on it would silently take a share of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(kMaxRpcBytes);
  builder.RegisterService(node->service_.get());
  for (grpc::Service* extra : o.services) builder.RegisterService(extra);
  node->server_ = builder.BuildAndStart();
  if (!node->server_ || node->port_ == 0) {
    return storage::make_error(storage::Errc::kIoError, "cannot listen on " + o.listen_address);
  }
  for (const auto& [id, addr] : o.voters) {
    if (id == o.id) continue;
    auto peer = std::make_unique<Peer>();
    peer->id = id;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxRpcBytes);
    args.SetMaxSendMessageSize(kMaxRpcBytes);
    // Reconnect to a restarted peer within a fraction of a second, not after gRPC's default
    // exponential backoff (up to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    peer->stub = v1::Quorum::NewStub(
        grpc::CreateCustomChannel(addr, channel_credentials(o.tls), args));
    Peer* p = peer.get();
    RaftNode* self = node.get();
    const int64_t wait = o.fetch_max_wait_ms;
    p->fetch_lane.thread = std::thread([p, self, wait] { p->run(p->fetch_lane, self, wait); });
    p->control_lane.thread = std::thread([p, self, wait] { p->run(p->control_lane, self, wait); });
    node->peers_[id] = std::move(peer);
  }
  node->loop_thread_ = std::thread([n = node.get()] { n->loop(); });
  LOG(INFO) << "quorum node " << o.id << " serving on port " << node->port_;
  return node;
}

RaftNode::RaftNode(RaftNodeOptions options) : options_(std::move(options)) {}

RaftNode::~RaftNode() { shutdown(); }

void RaftNode::shutdown() {
  // One caller does the work; the loop thread itself must not (it cannot join itself).
  if (shutdown_started_.exchange(true) || std::this_thread::get_id() == loop_thread_.get_id()) return;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (stopping_) return;
    if (core_ && core_->role() == Role::kLeader) {
      core_->resign(now_ms());
      cv_.notify_one();  // the loop persists the change and sends EndQuorumEpoch
    }
  }
  // Let the EndQuorumEpoch go out before the senders stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  waiters_.notify_all();
  if (loop_thread_.joinable()) loop_thread_.join();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  for (auto& [id, p] : peers_) {
    p->stopping = true;
    for (Peer::Lane* lane : {&p->fetch_lane, &p->control_lane}) {
      {
        std::lock_guard<std::mutex> l(lane->mu);
      }
      lane->cv.notify_all();
    }
  }
  for (auto& [id, p] : peers_) {
    if (p->fetch_lane.thread.joinable()) p->fetch_lane.thread.join();
    if (p->control_lane.thread.joinable()) p->control_lane.thread.join();
  }
}

void RaftNode::deliver(Message m) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return;
  inbox_.push_back(std::move(m));
  cv_.notify_one();
}

bool RaftNode::exchange(const Message& in, Body* response, int64_t wait_ms) {
  const size_t kind = in.body.index() + 1;  // each request's response follows it in Body
  const auto slot = std::make_pair(in.from, kind);
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) return false;
  const uint64_t ticket = next_ticket_++;
  waiting_[slot] = ticket;
  responses_.erase(slot);
  inbox_.push_back(in);
  cv_.notify_one();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  const bool got = waiters_.wait_until(l, deadline, [&] {
    return stopping_ || responses_.count(slot) > 0 || waiting_[slot] != ticket;
  });
  if (!got || stopping_ || waiting_[slot] != ticket || !responses_.count(slot)) {
    if (waiting_[slot] == ticket) waiting_.erase(slot);
    return false;
  }
  *response = std::move(responses_[slot]);
  responses_.erase(slot);
  waiting_.erase(slot);
  return true;
}

void RaftNode::send_locked(Message m) {
  if (is_response(m.body)) {
    const auto slot = std::make_pair(m.to, m.body.index());
    if (waiting_.count(slot)) {
      responses_[slot] = std::move(m.body);
      waiters_.notify_all();
    }
    return;  // nobody waits for it any more: the requester has given up
  }
  auto it = peers_.find(m.to);
  if (it != peers_.end()) it->second->enqueue(std::move(m));
}

void RaftNode::handle_ready_locked(std::unique_lock<std::mutex>& l) {
  // Loop thread only. The disk work runs without mu_, so proposals and inbound messages keep
  // arriving meanwhile and the next Ready carries all of them: one fdatasync for many appends
  // (group commit). Nothing else calls take_ready(), so Readies are handled in order.
  for (int guard = 0; core_->has_ready() && guard < 100; ++guard) {
    Ready rd = core_->take_ready();
    const bool wrote = rd.truncate_to || !rd.append.empty() || rd.snapshot;
    // A snapshot this node's state machine took (compact_before) is persisted with the Ready.
    std::optional<Snapshot> local_snapshot;
    if (rd.compact_before && core_->snapshot()) local_snapshot = core_->snapshot();
    l.unlock();
    storage::Status st;
    // The order is the core's durability contract: hard state and snapshot are durable before
    // any message goes out; log writes need not be (the leader counts only what on_synced
    // reports, a follower fetches only from its synced end), so the messages go out before the
    // log's fdatasync and followers work while the leader syncs.
    if (rd.hard_state) st = store_->save_hard_state(*rd.hard_state);
    if (st.ok() && rd.snapshot) st = store_->save_snapshot(*rd.snapshot, /*installed=*/true);
    if (st.ok() && rd.truncate_to) st = store_->truncate(*rd.truncate_to);
    if (st.ok() && !rd.append.empty()) st = store_->append(rd.append);
    // A quorum member that cannot persist must stop: going on could break the protocol.
    CHECK(st.ok()) << "quorum storage failed: " << st.error().to_string();
    l.lock();
    for (Message& m : rd.messages) send_locked(std::move(m));
    l.unlock();
    if (wrote) st = store_->sync();
    if (st.ok() && rd.compact_before && local_snapshot) {
      st = store_->save_snapshot(*local_snapshot, /*installed=*/false);
    }
    if (st.ok() && rd.compact_before) st = store_->compact_before(*rd.compact_before);
    CHECK(st.ok()) << "quorum storage failed: " << st.error().to_string();
    // The listener runs without the lock, in log order (only this thread calls it).
    if (options_.listener) {
      if (rd.leader_change) options_.listener->on_leader_change(rd.leader_change->epoch, rd.leader_change->leader);
      if (rd.snapshot) options_.listener->on_snapshot(*rd.snapshot);
      if (!rd.committed.empty()) options_.listener->on_commit(rd.committed);
    }
    l.lock();
    if (wrote) core_->on_synced(rd.write_id, now_ms());
    if (rd.leader_change) {
      LOG(INFO) << "quorum node " << options_.id << ": epoch " << rd.leader_change->epoch
                << ", leader " << rd.leader_change->leader;
    }
    if (!rd.committed.empty() || rd.leader_change) waiters_.notify_all();
  }
}

void RaftNode::loop() {
  std::unique_lock<std::mutex> l(mu_);
  int64_t last_tick = now_ms();
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(options_.tick_ms),
                 [&] { return stopping_ || !inbox_.empty() || core_->has_ready(); });
    if (stopping_) break;
    while (!inbox_.empty()) {
      Message m = std::move(inbox_.front());
      inbox_.pop_front();
      core_->step(m, now_ms());
    }
    const int64_t now = now_ms();
    if (now - last_tick >= options_.tick_ms) {
      core_->tick(now);
      last_tick = now;
      report_duplicates_locked(now);
    }
    handle_ready_locked(l);
  }
}

void RaftNode::report_duplicates_locked(int64_t now) {
  if (now < next_duplicate_report_ms_) return;
  const uint64_t refused = core_->duplicate_replica_refusals(), seen = core_->duplicate_replica_fetches();
  if (refused != reported_refusals_) {
    LOG(ERROR) << "quorum node " << options_.id << ": the leader counts another process with node id " << options_.id
               << " (another quorum directory); this one's fetches are refused (" << refused - reported_refusals_
               << " since the last report). Two nodes must never share a node.id.";
  }
  if (seen != reported_fetches_) {
    LOG(ERROR) << "quorum node " << options_.id << ": refused " << seen - reported_fetches_
               << " fetch(es) naming a voter id from a second quorum directory: two processes share a node.id";
  }
  reported_refusals_ = refused;
  reported_fetches_ = seen;
  next_duplicate_report_ms_ = now + 5'000;
}

AppendOutcome RaftNode::append(const std::vector<std::string>& records, int64_t timeout_ms,
                               Epoch expected_epoch) {
  AppendOutcome out;
  std::unique_lock<std::mutex> l(mu_);
  if (expected_epoch > 0 && core_->epoch() != expected_epoch) {
    out.leader = core_->leader();
    out.error = "the quorum epoch is " + std::to_string(core_->epoch()) + ", not " +
                std::to_string(expected_epoch);
    return out;
  }
  auto r = core_->propose(records, now_ms());
  if (std::holds_alternative<ProposeError>(r)) {
    out.leader = core_->leader();
    out.too_large = std::get<ProposeError>(r) == ProposeError::kRecordTooLarge;
    out.error = out.too_large ? "a record is larger than the quorum accepts"
                              : "node " + std::to_string(options_.id) + " is not the quorum leader";
    return out;
  }
  const int64_t last = std::get<int64_t>(r);
  const Epoch epoch = core_->epoch();
  out.last_offset = last;
  out.proposed = true;
  cv_.notify_one();  // the loop writes, syncs and replicates it
  if (std::this_thread::get_id() == loop_thread_.get_id()) {
    // Called from a listener on the loop thread: only that thread can commit it, so do not wait.
    out.error = "proposed from the quorum thread; commit is not awaited";
    return out;
  }
  // Committed means: the HW passed it and the entry there is still ours (a later leader may
  // have replaced it; its epoch then ends before `last`).
  auto committed = [&] {
    if (core_->high_watermark() <= last) return false;
    auto e = core_->end_offset_for_epoch(epoch);
    return e && e->epoch == epoch && e->end_offset > last;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  // Stop waiting when this node no longer leads (a new epoch, or check-quorum resigned it in
  // this one): nothing it proposed can commit through it any more.
  waiters_.wait_until(l, deadline, [&] {
    return stopping_ || committed() || core_->epoch() != epoch || core_->role() != Role::kLeader;
  });
  out.leader = core_->leader();
  if (committed()) {
    out.ok = true;
  } else {
    out.timed_out = true;
    out.error = core_->epoch() != epoch || core_->role() != Role::kLeader
                    ? "leadership changed before the records committed"
                    : "timed out waiting for the records to commit";
  }
  return out;
}

void RaftNode::snapshot_taken(Snapshot s) {
  std::lock_guard<std::mutex> l(mu_);
  core_->snapshot_taken(std::move(s));
  cv_.notify_one();
}

QuorumStatus RaftNode::status() {
  std::lock_guard<std::mutex> l(mu_);
  QuorumStatus s;
  s.id = options_.id;
  s.role = core_->role();
  s.leader = core_->leader();
  s.epoch = core_->epoch();
  s.high_watermark = core_->high_watermark();
  s.log_end_offset = core_->end_offset();
  s.log_start_offset = core_->log_start();
  s.now_ms = now_ms();
  if (s.role == Role::kLeader) s.replicas = core_->replica_status();
  return s;
}

}  // namespace gannet::raft
