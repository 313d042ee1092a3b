// Review findings on ControllerService (the controller API) on a one-voter quorum in this
// process; the methods are called directly, without gRPC. Each test fails because of the bug
// named in its comment.
#include "broker/controller_service.h"

#include <gtest/gtest.h>

#include "raft/local_quorum.h"
#include "tests/process_harness.h"

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

}  // namespace
}  // namespace gannet::broker
