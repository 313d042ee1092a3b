// Three RaftNodes in this process over loopback gRPC and real disks: the listener interface the
// metadata layer uses (commits in order on every node, leader changes), and snapshots: a node
// that was down while the leader compacted its log comes back through the snapshot.
#include "raft/raft_node.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "testing/local_quorum.h"
#include "testing/process_harness.h"

namespace gannet::raft {
namespace {

using namespace std::chrono_literals;

class Recorder : public RaftListener {
 public:
  void on_snapshot(const Snapshot& s) override {
    std::lock_guard<std::mutex> l(mu_);
    state_ = s.data;
    next_ = s.id.end_offset;
    ++snapshots_;
  }
  void on_commit(const std::vector<Entry>& entries) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const Entry& e : entries) {
      if (e.offset != next_) order_ok_ = false;  // gaps or repeats
      next_ = e.offset + 1;
      if (!e.control) state_ += e.data + ";";
    }
  }
  void on_leader_change(Epoch epoch, NodeId leader) override {
    std::lock_guard<std::mutex> l(mu_);
    if (leader != kNoNode) last_leader_ = leader;
  }
  std::string state() {
    std::lock_guard<std::mutex> l(mu_);
    return state_;
  }
  int64_t next() {
    std::lock_guard<std::mutex> l(mu_);
    return next_;
  }
  int snapshots() {
    std::lock_guard<std::mutex> l(mu_);
    return snapshots_;
  }
  bool order_ok() {
    std::lock_guard<std::mutex> l(mu_);
    return order_ok_;
  }
  NodeId last_leader() {
    std::lock_guard<std::mutex> l(mu_);
    return last_leader_;
  }

 private:
  std::mutex mu_;
  std::string state_;
  int64_t next_ = 0;
  int snapshots_ = 0;
  bool order_ok_ = true;
  NodeId last_leader_ = kNoNode;
};

class ThreeNodes {
 public:
  ThreeNodes() : dir_(testing::test_dir("raft_node")) {
    voters_ = loopback_voters(3);
  }
  void start(NodeId id) {
    recorders_[id] = std::make_unique<Recorder>();
    RaftNodeOptions o = local_node_options(id, voters_, dir_, recorders_[id].get());
    auto n = RaftNode::start(o);
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    nodes_[id] = std::move(n).value();
  }
  void stop(NodeId id) { nodes_[id].reset(); }
  RaftNode* leader() {
    for (auto& [id, n] : nodes_) {
      if (n && n->status().role == Role::kLeader) return n.get();
    }
    return nullptr;
  }
  RaftNode* node(NodeId id) { return nodes_[id].get(); }
  Recorder& recorder(NodeId id) { return *recorders_[id]; }
  ~ThreeNodes() {
    for (auto& [id, n] : nodes_) n.reset();  // nodes before their listeners
  }

 private:
  std::string dir_;
  std::map<NodeId, std::string> voters_;
  std::map<NodeId, std::unique_ptr<Recorder>> recorders_;
  std::map<NodeId, std::unique_ptr<RaftNode>> nodes_;
};

TEST(RaftNode, ListenersSeeTheSameCommitsAndASnapshotCatchesUpALaggard) {
  ThreeNodes c;
  for (NodeId id = 1; id <= 3; ++id) c.start(id);
  RaftNode* leader = nullptr;
  ASSERT_TRUE(testing::wait_until([&] { return (leader = c.leader()) != nullptr; }, 10s));
  for (int i = 0; i < 10; ++i) {
    AppendOutcome o = leader->append({"r" + std::to_string(i)}, 5000);
    ASSERT_TRUE(o.ok) << o.error;
  }
  const NodeId lid = leader->status().id;
  const int64_t end = leader->status().high_watermark;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (NodeId id = 1; id <= 3; ++id) {
          if (c.recorder(id).next() < end) return false;
        }
        return true;
      },
      5s));
  for (NodeId id = 1; id <= 3; ++id) {
    EXPECT_TRUE(c.recorder(id).order_ok()) << id;
    EXPECT_EQ(c.recorder(id).state(), c.recorder(lid).state()) << id;
    EXPECT_EQ(c.recorder(id).last_leader(), lid) << id;
  }
  EXPECT_EQ(c.recorder(lid).state(), "r0;r1;r2;r3;r4;r5;r6;r7;r8;r9;");

  // A follower goes away; the quorum commits more and the leader snapshots and compacts.
  const NodeId lagger = lid == 3 ? 2 : 3;
  c.stop(lagger);
  for (int i = 10; i < 20; ++i) {
    AppendOutcome o = leader->append({"r" + std::to_string(i)}, 5000);
    ASSERT_TRUE(o.ok) << o.error;
  }
  const QuorumStatus st = leader->status();
  const std::string state = c.recorder(lid).state();
  ASSERT_TRUE(testing::wait_until([&] { return c.recorder(lid).next() == st.high_watermark; }, 5s));
  leader->snapshot_taken(Snapshot{{st.high_watermark, st.epoch}, c.recorder(lid).state()});
  ASSERT_TRUE(testing::wait_until([&] { return leader->status().log_start_offset == st.high_watermark; }, 5s));

  c.start(lagger);
  ASSERT_TRUE(testing::wait_until(
      [&] { return c.recorder(lagger).next() >= st.high_watermark; }, 10s))
      << "the restarted follower did not catch up";
  EXPECT_GE(c.recorder(lagger).snapshots(), 1) << "it caught up without the snapshot";
  EXPECT_EQ(c.recorder(lagger).state(), c.recorder(lid).state());
  // And it keeps following.
  AppendOutcome o = leader->append({"r20"}, 5000);
  ASSERT_TRUE(o.ok) << o.error;
  ASSERT_TRUE(testing::wait_until([&] { return c.recorder(lagger).next() > o.last_offset; }, 5s));
  EXPECT_EQ(c.recorder(lagger).state(), c.recorder(lid).state());
}

}  // namespace
}  // namespace gannet::raft
