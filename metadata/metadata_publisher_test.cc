// The publisher on a real three-node quorum: records appended through the leader become the same
// image on every node, subscribers see the deltas, and snapshots taken every few records let a
// node that was away catch up through a snapshot into the same image.
#include "metadata/metadata_publisher.h"

#include <gtest/gtest.h>

#include "metadata/controller_logic.h"
#include "testing/local_quorum.h"
#include "testing/process_harness.h"

namespace gannet::metadata {
namespace {

using namespace std::chrono_literals;

struct Node {
  std::unique_ptr<MetadataPublisher> pub;
  std::unique_ptr<raft::RaftNode> raft;
  int created = 0;  // topics created, as subscribers saw them
};

TEST(MetadataPublisher, EveryNodeBuildsTheSameImageAndSnapshotsCatchUpALaggard) {
  const std::string dir = testing::test_dir("publisher");
  std::map<raft::NodeId, std::string> voters = raft::loopback_voters(3);
  std::map<raft::NodeId, Node> nodes;
  auto start = [&](raft::NodeId id) {
    Node& n = nodes[id];
    n.pub = std::make_unique<MetadataPublisher>(/*snapshot_every=*/5);
    n.pub->subscribe([&n](const MetadataDelta& d, const std::shared_ptr<const MetadataImage>&) {
      n.created += static_cast<int>(d.created_topics().size());
    });
    raft::RaftNodeOptions o = raft::local_node_options(id, voters, dir, n.pub.get());
    auto r = raft::RaftNode::start(o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    n.raft = std::move(r).value();
    raft::RaftNode* node = n.raft.get();
    n.pub->set_snapshot_sink([node](raft::Snapshot s) { node->snapshot_taken(std::move(s)); });
  };
  for (raft::NodeId id = 1; id <= 3; ++id) start(id);
  raft::RaftNode* leader = nullptr;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (auto& [id, n] : nodes) {
          if (n.raft && n.raft->status().role == raft::Role::kLeader) leader = n.raft.get();
        }
        return leader != nullptr;
      },
      10s));
  const raft::NodeId lid = leader->status().id;
  const raft::NodeId away = lid == 3 ? 2 : 3;

  auto create = [&](const std::string& name) {
    v1::MetadataRecord t;
    t.mutable_topic()->set_name(name);
    t.mutable_topic()->set_topic_id(std::string(15, 'x') + name.back());
    auto o = leader->append({encode_batch({t})}, 5000);
    ASSERT_TRUE(o.ok) << o.error;
  };
  create("t1");
  ASSERT_TRUE(testing::wait_until([&] { return nodes[away].pub->image()->topics().size() == 1; }, 5s));
  nodes[away].raft->shutdown();
  nodes[away].raft.reset();
  for (int i = 2; i <= 9; ++i) create("t" + std::to_string(i));
  ASSERT_TRUE(testing::wait_until([&] { return leader->status().log_start_offset > 0; }, 5s))
      << "the leader never compacted after a snapshot";

  const int away_created_before = nodes[away].created;
  nodes[away].pub.reset();
  start(away);
  auto same = [&] {
    auto a = nodes[lid].pub->image();
    auto b = nodes[away].pub->image();
    return a->topics().size() == 9 && b->topics().size() == 9;
  };
  ASSERT_TRUE(testing::wait_until(same, 10s)) << "the restarted node did not catch up";
  for (raft::NodeId id = 1; id <= 3; ++id) {
    ASSERT_NE(nodes[id].pub->image()->topic_by_name("t9"), nullptr) << id;
    EXPECT_EQ(nodes[id].pub->records_skipped(), 0) << id;
  }
  EXPECT_EQ(nodes[lid].created, 9);
  EXPECT_GE(away_created_before, 1);
  for (auto& [id, n] : nodes) n.raft.reset();
}

}  // namespace
}  // namespace gannet::metadata
