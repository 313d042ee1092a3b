// Edge cases of the quorum found by an independent review; each test failed before its fix.
// Core tests script RaftCores by hand (instant network, instant disk); RaftNode tests run a real
// node in this process against fake peers (a gRPC Quorum service the test scripts) or real nodes.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "proto/raft.grpc.pb.h"
#include "raft/raft_core.h"
#include "raft/raft_node.h"
#include "testing/local_quorum.h"
#include "testing/process_harness.h"

namespace gannet::raft {
namespace {

using namespace std::chrono_literals;

// ---- A scripted network of cores: messages delivered at once, every write synced at once. ----

class Net {
 public:
  void add(NodeId id, std::vector<NodeId> voters, RaftCore::Restored r = {}) {
    Config c;
    c.id = id;
    c.voters = std::move(voters);
    c.election_timeout_ms = 300;
    c.fetch_timeout_ms = 600;
    c.fetch_max_wait_ms = 150;
    c.request_timeout_ms = 400;
    c.seed = 7;
    nodes_[id] = std::make_unique<RaftCore>(c, std::move(r), now_);
    pump(id);
  }
  RaftCore& at(NodeId id) { return *nodes_.at(id); }
  void crash(NodeId id) { down_.insert(id); }

  // Takes every Ready, syncs it at once and puts its messages on the wire.
  void pump(NodeId id) {
    RaftCore& c = *nodes_.at(id);
    for (int i = 0; i < 100 && c.has_ready(); ++i) {
      Ready rd = c.take_ready();
      for (Message& m : rd.messages) {
        sent_.push_back(m);
        wire_.push_back(std::move(m));
      }
      if (rd.truncate_to || !rd.append.empty() || rd.snapshot) c.on_synced(rd.write_id, now_);
    }
  }
  void step(NodeId id, const Message& m) {
    if (down_.count(id)) return;
    nodes_.at(id)->step(m, now_);
    pump(id);
  }
  // Delivers everything on the wire (and what it causes), without advancing time.
  void deliver_all() {
    for (int guard = 0; !wire_.empty() && guard < 100000; ++guard) {
      Message m = std::move(wire_.front());
      wire_.pop_front();
      if (down_.count(m.from) || down_.count(m.to) || !nodes_.count(m.to)) continue;
      step(m.to, m);
    }
  }
  void run(int64_t ms) {
    for (int64_t end = now_ + ms; now_ < end;) {
      now_ += 10;
      for (auto& [id, c] : nodes_) {
        if (down_.count(id)) continue;
        c->tick(now_);
        pump(id);
      }
      deliver_all();
    }
  }
  NodeId leader() {
    NodeId found = kNoNode;
    Epoch best = -1;
    for (auto& [id, c] : nodes_) {
      if (!down_.count(id) && c->role() == Role::kLeader && c->epoch() > best) {
        best = c->epoch();
        found = id;
      }
    }
    return found;
  }
  const std::vector<Message>& sent() const { return sent_; }
  int64_t now() const { return now_; }

 private:
  int64_t now_ = 0;
  std::map<NodeId, std::unique_ptr<RaftCore>> nodes_;
  std::set<NodeId> down_;
  std::deque<Message> wire_;
  std::vector<Message> sent_;
};

// An observer whose leader dies keeps fetching from the dead leader forever: observers have no
// fetch timeout, fetch_target() returns hs_.leader whenever one is set, and neither
// BeginQuorumEpoch nor EndQuorumEpoch is sent to observers. (The simulator restarts every node at
// heal time, so the old leader always comes back and tells the observer; a voter that is gone
// for good is never noticed.)
TEST(RaftCoreEdge, ObserverFindsTheNewLeaderAfterItsLeaderDies) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.add(4, {1, 2, 3});  // observer
  net.run(5000);
  const NodeId old_leader = net.leader();
  ASSERT_NE(old_leader, kNoNode);
  ASSERT_EQ(net.at(4).leader(), old_leader) << "the observer did not find the first leader";

  net.crash(old_leader);
  net.run(20000);
  const NodeId new_leader = net.leader();
  ASSERT_NE(new_leader, kNoNode);
  ASSERT_NE(new_leader, old_leader);
  EXPECT_EQ(net.at(4).leader(), new_leader)
      << "observer still follows dead node " << net.at(4).leader() << " in epoch "
      << net.at(4).epoch() << "; the quorum moved to node " << new_leader << " in epoch "
      << net.at(new_leader).epoch();
  EXPECT_GT(net.at(4).high_watermark(), 0);
}

// A FetchRequest with a negative fetch_offset passes every check in answer_fetch on a leader
// without a snapshot (fetch_offset < log_start_ but no snapshot; not > end; not > 0) and the copy
// loop reads log_[fetch_offset - log_start_], out of bounds. Run in a child process: the child
// either crashes or returns garbage entries; a correct leader answers with no entries.
TEST(RaftCoreEdge, NegativeFetchOffsetGetsAnAnswerNotAnOutOfBoundsRead) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.run(3000);
  const NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  ASSERT_EQ(net.at(l).log_start(), 0);
  auto child = [&] {
    RaftCore& c = net.at(l);
    FetchRequest bad{c.epoch(), /*replica=*/l == 1 ? 2 : 1, /*fetch_offset=*/-1000, 0};
    c.step(Message{bad.replica, l, bad}, net.now());
    Ready rd = c.take_ready();
    for (const Message& m : rd.messages) {
      if (const auto* r = std::get_if<FetchResponse>(&m.body)) {
        std::_Exit(r->entries.empty() ? 0 : 3);
      }
    }
    std::_Exit(0);  // not answered at all (parked or dropped): no harm done
  };
  EXPECT_EXIT(child(), ::testing::ExitedWithCode(0), "");
}

// A FetchRequest from an id that is not a voter (or any node) with epoch INT32_MAX is adopted by
// whoever receives it: handle(FetchRequest) calls become_unattached(r.epoch) before looking at who
// asks (raft_core.cc:382). One such message to the leader deposes it; its fenced answers then
// carry INT32_MAX to every voter, and no election can ever succeed again: a pre-vote asks for
// hs_.epoch + 1, which overflows (UB; wraps to INT32_MIN here) and is never "> hs_.epoch".
TEST(RaftCoreEdge, FetchFromUnknownReplicaCannotWedgeTheQuorumAtMaxEpoch) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.run(3000);
  const NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  net.step(l, Message{99, l, FetchRequest{INT32_MAX, 99, 0, 0}});
  EXPECT_EQ(net.at(l).role(), Role::kLeader) << "a fetch from unknown node 99 deposed the leader";
  net.run(20000);
  EXPECT_NE(net.leader(), kNoNode) << "no leader 20 s after one hostile fetch; epochs "
                                   << net.at(1).epoch() << ", " << net.at(2).epoch() << ", "
                                   << net.at(3).epoch();
}

// Issue 14.7: the leader kept fetch state (peers_, and a parked long poll) for every replica id
// any fetch named, so fetches naming fresh ids grew its memory without end. Node ids are
// 0..max_node_id (reserved.broker.max.id); a fetch naming another id leaves nothing behind, and
// an observer within the range is still served.
TEST(RaftCoreEdge, FetchesNamingIdsOutsideTheNodeRangeLeaveNoState) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.run(3000);
  const NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  const size_t before = net.at(l).peer_count();
  for (NodeId id = 1001; id < 11001; ++id) net.step(l, Message{id, l, FetchRequest{net.at(l).epoch(), id, 0, 0}});
  net.step(l, Message{-5, l, FetchRequest{net.at(l).epoch(), -5, 0, 0}});
  net.step(l, Message{5000, l, FetchSnapshotRequest{net.at(l).epoch(), 5000, {}, 0}});
  EXPECT_EQ(net.at(l).peer_count(), before);
  EXPECT_EQ(net.at(l).role(), Role::kLeader);
  net.step(l, Message{1000, l, FetchRequest{net.at(l).epoch(), 1000, 0, 0}});
  EXPECT_EQ(net.at(l).peer_count(), before + 1) << "an observer with id 1000 is a node";
}

// Issue 14 item 5: a quorum Fetch naming a voter counted toward the metadata log's HW whoever
// sent it: a second process configured with a voter's node id (or a node re-created on an empty
// disk while the old one still runs) could make the leader count a log that does not hold the
// entries. Each fetch carries its quorum directory's id (KIP-853); a leadership counts one
// directory per replica id, the first to fetch, and refuses the others.
TEST(RaftCoreEdge, AFetchFromASecondDirectoryWithAVotersIdDoesNotCount) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.run(3000);
  const NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  const NodeId a = l == 1 ? 2 : 1, b = 6 - l - a;
  net.crash(a);
  net.crash(b);
  RaftCore& leader = net.at(l);
  ASSERT_TRUE(std::holds_alternative<int64_t>(leader.propose({"x"}, net.now())));
  net.run(50);
  const int64_t hw = leader.high_watermark();
  ASSERT_LT(hw, leader.end_offset()) << "committed without a follower";
  // Both followers fetched (empty directory ids in this simulated net) before they stopped. An
  // impostor claims follower a's id from another directory, at the leader's log end.
  FetchRequest forged{leader.epoch(), a, leader.end_offset(), leader.epoch(), hw, "ffffffffffffffffffffffffffffffff"};
  net.step(l, Message{a, l, forged});
  EXPECT_EQ(leader.high_watermark(), hw) << "a fetch from another directory moved the HW";
  EXPECT_EQ(leader.duplicate_replica_fetches(), 1u);
  bool refused = false;
  for (const Message& m : net.sent()) {
    if (const auto* r = std::get_if<FetchResponse>(&m.body); r && m.to == a && r->duplicate_replica) refused = true;
  }
  EXPECT_TRUE(refused) << "the impostor was not told";
  // The directory the leadership counts still counts.
  FetchRequest real = forged;
  real.directory_id = "";
  net.step(l, Message{a, l, real});
  EXPECT_EQ(leader.high_watermark(), leader.end_offset());
  // Observers count for nothing: a broker re-created on a new disk is served from either one.
  for (const char* dir : {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}) {
    net.step(l, Message{50, l, FetchRequest{leader.epoch(), 50, 0, 0, 0, dir}});
  }
  EXPECT_EQ(leader.duplicate_replica_fetches(), 1u);
}

// The comment in maybe_advance_hw says followers learn a new HW without waiting, but the fetch
// whose offset advanced the HW is parked after wake_parked(all) ran, so that follower (the one
// that completed the majority) learns the HW only when the long poll expires (fetch_max_wait_ms)
// or the next proposal arrives: every commit reaches it fetch_max_wait_ms late.
TEST(RaftCoreEdge, FollowerWhoseFetchAdvancesTheHwLearnsItWithoutWaiting) {
  Net net;
  for (NodeId id : {1, 2, 3}) net.add(id, {1, 2, 3});
  net.run(3000);
  const NodeId l = net.leader();
  ASSERT_NE(l, kNoNode);
  ASSERT_TRUE(std::holds_alternative<int64_t>(net.at(l).propose({"x"}, net.now())));
  net.pump(l);
  net.deliver_all();
  // Far less than a long poll (fetch_max_wait_ms) passes: a HW notice is due within
  // hw_notify_wait_ms (plus a tick).
  net.run(30);
  const int64_t hw = net.at(l).high_watermark();
  ASSERT_EQ(hw, net.at(l).end_offset()) << "the record did not commit";
  int behind = 0;
  for (NodeId id : {1, 2, 3}) {
    if (id != l && net.at(id).high_watermark() < hw) ++behind;
  }
  EXPECT_EQ(behind, 0) << behind << " follower(s) hold all entries but wait "
                       << "fetch_max_wait_ms to learn HW " << hw;
}

// ---- RaftNode against scripted peers ----------------------------------------------------------

class FakePeer final : public v1::Quorum::Service {
 public:
  std::function<v1::VoteResponse(const v1::VoteRequest&)> on_vote;
  std::function<v1::FetchResponse(const v1::FetchRequest&)> on_fetch;

  explicit FakePeer(const std::string& address) {
    grpc::ServerBuilder b;
    b.AddListeningPort(address, grpc::InsecureServerCredentials());
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakePeer() override { stop(); }
  void stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 200ms);
    server_.reset();
  }

  grpc::Status Vote(grpc::ServerContext*, const v1::VoteRequest* req, v1::VoteResponse* resp) override {
    std::function<v1::VoteResponse(const v1::VoteRequest&)> f;
    {
      std::lock_guard<std::mutex> l(mu_);
      f = on_vote;
    }
    if (!f) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake");
    *resp = f(*req);
    return grpc::Status::OK;
  }
  grpc::Status BeginQuorumEpoch(grpc::ServerContext*, const v1::BeginQuorumEpochRequest*, v1::Ack*) override {
    return grpc::Status::OK;
  }
  grpc::Status EndQuorumEpoch(grpc::ServerContext*, const v1::EndQuorumEpochRequest*, v1::Ack*) override {
    return grpc::Status::OK;
  }
  grpc::Status Fetch(grpc::ServerContext*, const v1::FetchRequest* req, v1::FetchResponse* resp) override {
    std::function<v1::FetchResponse(const v1::FetchRequest&)> f;
    {
      std::lock_guard<std::mutex> l(mu_);
      f = on_fetch;
    }
    if (!f) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake");
    *resp = f(*req);
    return grpc::Status::OK;
  }
  void set_fetch(std::function<v1::FetchResponse(const v1::FetchRequest&)> f) {
    std::lock_guard<std::mutex> l(mu_);
    on_fetch = std::move(f);
  }
  void set_vote(std::function<v1::VoteResponse(const v1::VoteRequest&)> f) {
    std::lock_guard<std::mutex> l(mu_);
    on_vote = std::move(f);
  }

 private:
  std::mutex mu_;
  std::unique_ptr<grpc::Server> server_;
};

class Commits : public RaftListener {
 public:
  std::function<void(const std::vector<Entry>&)> hook;
  void on_snapshot(const Snapshot&) override {}
  void on_commit(const std::vector<Entry>& entries) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const Entry& e : entries) log_[e.offset] = e;
    }
    if (hook) hook(entries);
  }
  void on_leader_change(Epoch, NodeId) override {}
  std::optional<Entry> at(int64_t offset) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = log_.find(offset);
    if (it == log_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::map<int64_t, Entry> log_;
};

v1::Entry proto_entry(int64_t offset, Epoch epoch, bool control, const std::string& data) {
  v1::Entry e;
  e.set_offset(offset);
  e.set_epoch(epoch);
  e.set_control(control);
  e.set_data(data);
  return e;
}

// RaftNode::append() waits for "HW > last || epoch changed" and then reports success whenever
// HW > last, without checking that the entry at `last` is still the one it proposed; and nothing
// wakes it on an epoch change (waiters_ is notified only for commits). So a leader that proposes
// at offset N, loses leadership, and then follows a new leader whose log has a different entry at
// N, reports the lost record as committed as soon as the new leader's HW passes N.
TEST(RaftNodeEdge, AppendNeverReportsARecordThatALaterLeaderReplacedAsCommitted) {
  const std::string dir = testing::test_dir("raft_review_append");
  std::map<NodeId, std::string> voters;
  for (NodeId id = 1; id <= 3; ++id) voters[id] = "127.0.0.1:" + std::to_string(testing::free_port());
  FakePeer peer2(voters[2]);  // node 3 is down: nothing listens on its port
  peer2.set_vote([](const v1::VoteRequest& r) {
    v1::VoteResponse resp;
    resp.set_epoch(r.pre_vote() ? 0 : r.epoch());
    resp.set_granted(true);
    resp.set_pre_vote(r.pre_vote());
    resp.set_leader(-1);
    return resp;
  });

  Commits commits;
  RaftNodeOptions o;
  o.id = 1;
  o.voters = voters;
  o.listen_address = voters[1];
  o.data_dir = dir + "/node1";
  o.election_timeout_ms = 200;
  o.fetch_timeout_ms = 10000;  // no check-quorum resignation during the test
  o.fetch_max_wait_ms = 100;
  o.listener = &commits;
  auto started = RaftNode::start(o);
  ASSERT_TRUE(started.ok()) << started.error().to_string();
  std::unique_ptr<RaftNode> node = std::move(started).value();
  ASSERT_TRUE(testing::wait_until([&] { return node->status().role == Role::kLeader; }, 10s));
  const Epoch e1 = node->status().epoch;

  // Peer 2 fetches as a follower so that the leader's control entry commits.
  auto stub = v1::Quorum::NewStub(grpc::CreateChannel(voters[1], grpc::InsecureChannelCredentials()));
  auto fetch = [&](int64_t offset, Epoch last) {
    grpc::ClientContext ctx;
    v1::FetchRequest req;
    req.set_epoch(e1);
    req.set_replica(2);
    req.set_fetch_offset(offset);
    req.set_last_fetched_epoch(last);
    v1::FetchResponse resp;
    EXPECT_TRUE(stub->Fetch(&ctx, req, &resp).ok());
    return resp;
  };
  fetch(0, 0);
  fetch(1, e1);
  ASSERT_TRUE(testing::wait_until([&] { return node->status().high_watermark == 1; }, 5s));

  // The leader proposes "mine" at offset 1; it cannot commit (peer 2 does not fetch past it).
  auto outcome = std::async(std::launch::async, [&] { return node->append({"mine"}, 8000); });
  ASSERT_TRUE(testing::wait_until([&] { return node->status().log_end_offset == 2; }, 5s));

  // Peer 2 wins epoch e1 + 1 with a log that lacks "mine" and has its own entries instead.
  const Epoch e2 = e1 + 1;
  peer2.set_fetch([&](const v1::FetchRequest& r) {
    v1::FetchResponse resp;
    resp.set_epoch(e2);
    resp.set_leader(2);
    resp.set_fetch_offset(r.fetch_offset());
    resp.set_high_watermark(3);
    if (r.fetch_offset() > 1 && r.last_fetched_epoch() != e2) {
      resp.mutable_diverging()->set_epoch(e1);
      resp.mutable_diverging()->set_end_offset(1);
    } else if (r.fetch_offset() == 1) {
      *resp.add_entries() = proto_entry(1, e2, true, "leader-change:2");
      *resp.add_entries() = proto_entry(2, e2, false, "theirs");
    } else {
      std::this_thread::sleep_for(50ms);  // long poll
    }
    return resp;
  });
  {
    grpc::ClientContext ctx;
    v1::BeginQuorumEpochRequest req;
    req.set_epoch(e2);
    req.set_leader(2);
    v1::Ack ack;
    ASSERT_TRUE(stub->BeginQuorumEpoch(&ctx, req, &ack).ok());
  }
  ASSERT_TRUE(testing::wait_until([&] { return commits.at(2).has_value(); }, 5s))
      << "node 1 did not follow the new leader";
  ASSERT_EQ(commits.at(1)->data, "leader-change:2") << "offset 1 was replaced";

  AppendOutcome r = outcome.get();
  EXPECT_FALSE(r.ok) << "append() reported \"mine\" committed at offset " << r.last_offset
                     << ", which now holds \"" << commits.at(r.last_offset)->data << "\"";
  node.reset();
  peer2.stop();
}

// raft_node.h: "a listener may call append() or snapshot_taken()". The listener runs on the loop
// thread, which alone can commit: append() from there must not wait (it used to freeze the node).
TEST(RaftNodeEdge, ListenerMayCallAppend) {
  const std::string dir = testing::test_dir("raft_review_listener");
  std::map<NodeId, std::string> voters{{1, "127.0.0.1:" + std::to_string(testing::free_port())}};
  Commits commits;
  std::atomic<RaftNode*> self{nullptr};
  std::promise<std::pair<AppendOutcome, int64_t>> nested;
  std::atomic<bool> fired{false};
  commits.hook = [&](const std::vector<Entry>& entries) {
    for (const Entry& e : entries) {
      if (e.data == "trigger" && !fired.exchange(true)) {
        const auto t0 = std::chrono::steady_clock::now();
        AppendOutcome o = self.load()->append({"nested"}, 2000);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - t0).count();
        nested.set_value({o, ms});
      }
    }
  };
  RaftNodeOptions o;
  o.id = 1;
  o.voters = voters;
  o.listen_address = voters[1];
  o.data_dir = dir + "/node1";
  o.election_timeout_ms = 100;
  o.listener = &commits;
  auto started = RaftNode::start(o);
  ASSERT_TRUE(started.ok()) << started.error().to_string();
  std::unique_ptr<RaftNode> node = std::move(started).value();
  self = node.get();
  ASSERT_TRUE(testing::wait_until([&] { return node->status().role == Role::kLeader; }, 10s));
  auto fut = nested.get_future();
  AppendOutcome first = node->append({"trigger"}, 5000);
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  auto [result, ms] = fut.get();
  // From the quorum thread append() proposes and returns at once (it cannot wait for a commit
  // only that thread can make); the record then commits like any other.
  EXPECT_TRUE(result.proposed) << result.error;
  EXPECT_LT(ms, 500) << "append() from the listener blocked the quorum thread";
  EXPECT_TRUE(first.ok) << first.error;
  ASSERT_TRUE(testing::wait_until([&] { return commits.at(result.last_offset).has_value(); }, 5s))
      << "the record proposed from the listener never committed";
  EXPECT_EQ(commits.at(result.last_offset)->data, "nested");
  node.reset();
}

// An entry the leader accepts must be one every follower can fetch: records are capped
// (max_record_bytes) and the gRPC limits sit above the largest fetch response.
TEST(RaftNodeEdge, AnEntryTheLeaderAcceptsCanBeReplicated) {
  const std::string dir = testing::test_dir("raft_review_big");
  std::map<NodeId, std::string> voters = loopback_voters(3);
  std::map<NodeId, std::unique_ptr<Commits>> commits;
  std::map<NodeId, std::unique_ptr<RaftNode>> nodes;
  for (NodeId id = 1; id <= 3; ++id) {
    commits[id] = std::make_unique<Commits>();
    RaftNodeOptions o = local_node_options(id, voters, dir, commits[id].get());
    auto n = RaftNode::start(o);
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    nodes[id] = std::move(n).value();
  }
  RaftNode* leader = nullptr;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (auto& [id, n] : nodes) {
          if (n->status().role == Role::kLeader) return (leader = n.get()) != nullptr;
        }
        return false;
      },
      10s));
  AppendOutcome small = leader->append({"small"}, 5000);
  ASSERT_TRUE(small.ok) << small.error;
  // Records above the quorum's limit are refused with a typed error; one at the limit replicates.
  AppendOutcome too_big = leader->append({std::string((8 << 20) + 1, 'x')}, 5000);
  EXPECT_FALSE(too_big.ok);
  EXPECT_TRUE(too_big.too_large) << too_big.error;
  const std::string big(8 << 20, 'x');
  AppendOutcome r = leader->append({big}, 8000);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        int stored = 0;
        for (NodeId id = 1; id <= 3; ++id) {
          auto e = commits[id]->at(r.last_offset);
          if (e && e->data == big) ++stored;
        }
        return stored == 3;
      },
      10s))
      << "the 1 MiB record did not reach every node";
  for (auto& [id, n] : nodes) n.reset();
}

}  // namespace
}  // namespace gannet::raft
