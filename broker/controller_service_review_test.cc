// Review findings on ControllerService (the controller API) on a one-voter quorum in this
// process; the methods are called directly, without gRPC. Each test fails because of the bug
// named in its comment.
#include "broker/controller_service.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <chrono>
#include <iostream>

#include "testing/local_quorum.h"
#include "testing/process_harness.h"

namespace gannet::broker {
namespace {

using namespace std::chrono_literals;

class ControllerServiceReviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto voters = raft::loopback_voters(1);
    pub_ = std::make_unique<metadata::MetadataPublisher>();
    metadata::QuorumControllerOptions o;
    o.seed = 1;
    o.tick_interval_ms = 1'000'000;
    o.rebalance_interval_ms = 0;
    o.logic.default_replication_factor = 1;
    controller_ = std::make_unique<metadata::QuorumController>(o, nullptr, pub_.get());
    service_ = std::make_unique<ControllerService>(controller_.get(), voters);
    auto r = raft::RaftNode::start(raft::local_node_options(1, voters, testing::test_dir("cs"), pub_.get()));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    node_ = std::move(r).value();
    controller_->set_node(node_.get());
    ASSERT_TRUE(testing::wait_until([&] { return node_->status().role == raft::Role::kLeader; }, 10s));
    for (int b = 1; b <= 3; ++b) register_and_unfence(b);
  }

  void TearDown() override {
    node_.reset();
    service_.reset();
    controller_.reset();
  }

  void register_and_unfence(int32_t id) {
    cv1::BrokerRegistrationRequest req;
    req.set_broker_id(id);
    req.set_incarnation_id("inc-" + std::to_string(id));
    cv1::BrokerRegistrationResponse resp;
    ASSERT_TRUE(service_->BrokerRegistration(nullptr, &req, &resp).ok());
    ASSERT_EQ(resp.error_code(), gannet::v1::NONE) << resp.error_message();
    cv1::BrokerHeartbeatRequest hb;
    hb.set_broker_id(id);
    hb.set_broker_epoch(resp.broker_epoch());
    hb.set_metadata_offset(pub_->image()->offset());
    cv1::BrokerHeartbeatResponse hr;
    ASSERT_TRUE(service_->BrokerHeartbeat(nullptr, &hb, &hr).ok());
    ASSERT_EQ(hr.error_code(), gannet::v1::NONE) << hr.error_message();
    ASSERT_FALSE(hr.is_fenced());
  }

  cv1::TopicResult create(const std::string& name, int32_t partitions, int32_t rf) {
    cv1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_num_partitions(partitions);
    t->set_replication_factor(rf);
    cv1::CreateTopicsResponse resp;
    EXPECT_TRUE(service_->CreateTopics(nullptr, &req, &resp).ok());
    EXPECT_EQ(resp.topics_size(), 1);
    return resp.topics_size() ? resp.topics(0) : cv1::TopicResult();
  }

  std::unique_ptr<metadata::MetadataPublisher> pub_;
  std::unique_ptr<metadata::QuorumController> controller_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<raft::RaftNode> node_;
};

// BUG: CreateTopics refuses replication factors above INT16_MAX but narrows the others with a
// plain static_cast<int16_t>: -65533 becomes 3. A negative replication factor means "the
// default" (controller.proto) -- here 1 -- or is an error; it must never pick 3.
TEST_F(ControllerServiceReviewTest, ANegativeReplicationFactorDoesNotWrapAround) {
  cv1::TopicResult r = create("wrapped", 1, -65533);
  if (r.error_code() == gannet::v1::NONE) {
    EXPECT_EQ(r.replication_factor(), 1) << "replication factor -65533 was taken as "
                                         << r.replication_factor();
  } else {
    EXPECT_EQ(r.error_code(), gannet::v1::INVALID_REPLICATION_FACTOR);
  }
}

// Issue 14.6: a CreateTopics request whose records exceed one metadata log entry (8 MiB) stopped
// nothing: the controller built and replayed every record of every topic first (with 1,000 topics
// of 100,000 partitions, 10^8 records) and only then had the whole append refused, also with
// validate_only. Now the items that fit are decided and the rest get POLICY_VIOLATION undecided.
TEST_F(ControllerServiceReviewTest, CreateTopicsStopsDecidingPastOneMetadataEntry) {
  for (bool validate_only : {true, false}) {
    cv1::CreateTopicsRequest req;
    req.set_validate_only(validate_only);
    constexpr int kTopics = 40;
    for (int i = 0; i < kTopics; ++i) {
      auto* t = req.add_topics();
      t->set_name(std::string(validate_only ? "v" : "c") + std::to_string(i));
      t->set_num_partitions(100'000);
      t->set_replication_factor(1);
    }
    cv1::CreateTopicsResponse resp;
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(service_->CreateTopics(nullptr, &req, &resp).ok());
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(resp.error_code(), gannet::v1::NONE) << resp.error_message();
    ASSERT_EQ(resp.topics_size(), kTopics);
    int accepted = 0;
    for (int i = 0; i < kTopics; ++i) {
      const auto& r = resp.topics(i);
      EXPECT_EQ(r.name(), req.topics(i).name());
      if (r.error_code() == gannet::v1::NONE) {
        EXPECT_EQ(accepted, i) << "an item after a refused one was accepted";
        ++accepted;
      } else {
        EXPECT_EQ(r.error_code(), gannet::v1::POLICY_VIOLATION) << r.name() << ": " << r.error_message();
      }
    }
    EXPECT_GE(accepted, 1) << "the first topic fits in one entry";
    EXPECT_LT(accepted, kTopics) << "40 x 100,000 partition records cannot fit in one 8 MiB entry";
    const auto image = pub_->image();
    for (int i = 0; i < kTopics; ++i) {
      const bool exists = image->topic_by_name(req.topics(i).name()) != nullptr;
      EXPECT_EQ(exists, !validate_only && i < accepted) << req.topics(i).name();
    }
    std::cout << (validate_only ? "validate_only" : "create") << ": " << accepted << " of " << kTopics
              << " topics accepted in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  }
}

// Issue 15: a leader's ISR proposer sent one AlterPartition per partition, each a round trip with
// a 5 s timeout: a failover shrinking N ISRs took N in a row. One request now carries every
// change, decided in one metadata entry with a result per partition.
TEST_F(ControllerServiceReviewTest, OneAlterPartitionChangesManyIsrsInOneEntry) {
  cv1::TopicResult t = create("many", 4, 3);
  ASSERT_EQ(t.error_code(), gannet::v1::NONE) << t.error_message();
  auto image = pub_->image();
  const auto* topic = image->topic_by_name("many");
  ASSERT_NE(topic, nullptr);
  // Broker 1's partitions; each drops one follower. Partition of another leader: NOT the
  // leader's to change.
  cv1::AlterPartitionRequest req;
  req.set_broker_id(1);
  req.set_broker_epoch(image->brokers().at(1).epoch);
  std::vector<int32_t> expect_ok;
  for (const auto& [p, ps] : topic->partitions) {
    auto* ch = req.add_changes();
    ch->set_topic_id(topic->id);
    ch->set_partition(p);
    ch->set_leader_epoch(ps.leader_epoch);
    ch->set_partition_epoch(ps.partition_epoch);
    for (int32_t r : ps.isr) {
      if (r == ps.leader || r != ps.isr.back()) ch->add_new_isr(r);
    }
    if (ps.leader == 1) expect_ok.push_back(p);
  }
  ASSERT_FALSE(expect_ok.empty());
  // And one stale change: an old partition epoch.
  auto* stale = req.add_changes();
  *stale = req.changes(0);
  stale->set_partition(expect_ok.front());
  stale->set_partition_epoch(-7);
  const int64_t before = image->offset();
  cv1::AlterPartitionResponse resp;
  ASSERT_TRUE(service_->AlterPartition(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.error_code(), gannet::v1::NONE) << resp.error_message();
  ASSERT_EQ(resp.results_size(), req.changes_size());
  for (int i = 0; i < resp.results_size(); ++i) {
    const auto& r = resp.results(i);
    const bool mine = i < req.changes_size() - 1 &&
                      std::find(expect_ok.begin(), expect_ok.end(), r.partition()) != expect_ok.end();
    if (mine) {
      EXPECT_EQ(r.error_code(), gannet::v1::NONE) << r.partition() << ": " << r.error_message();
      EXPECT_EQ(r.isr_size(), 2) << r.partition();
    } else {
      EXPECT_NE(r.error_code(), gannet::v1::NONE) << "change " << i << " of partition " << r.partition();
    }
  }
  // One metadata entry for all of them.
  ASSERT_TRUE(testing::wait_until([&] { return pub_->image()->offset() > before; }, 5s));
  EXPECT_EQ(pub_->image()->offset(), before + 1);
}

}  // namespace
}  // namespace gannet::broker
