// Review findings on ControllerLogic: each test fails because of a bug (see the comment on it).
#include <gtest/gtest.h>

#include <algorithm>

#include "metadata/controller_logic.h"

namespace gannet::metadata {
namespace {

class ControllerLogicReviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = std::make_shared<const MetadataImage>();
    for (int b = 1; b <= 3; ++b) register_and_unfence(b);
  }

  void apply(const Decision& d) {
    ASSERT_TRUE(d.ok()) << api_error_name(d.error) << ": " << d.message;
    MetadataDelta delta(image_);
    for (const auto& r : d.records) {
      auto st = delta.replay(r, image_->offset() + (&r - d.records.data()));
      ASSERT_TRUE(st.ok()) << st.error().message;
    }
    image_ = delta.apply();
  }

  void register_and_unfence(int32_t id) {
    apply(logic_.register_broker(*image_, id, "inc-" + std::to_string(id),
                                 {Endpoint{"CLIENT", "127.0.0.1", 9000 + id}}, "", image_->offset(), now_));
    const int64_t epoch = image_->brokers().at(id).epoch;
    apply(logic_.heartbeat(*image_, id, epoch, image_->offset(), false, now_));
  }

  void heartbeat(int32_t id) {
    apply(logic_.heartbeat(*image_, id, image_->brokers().at(id).epoch, image_->offset(), false, now_));
  }

  const PartitionState& part(const std::string& topic, int p) {
    return image_->topic_by_name(topic)->partitions.at(p);
  }

  static bool has(const std::vector<int32_t>& v, int32_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  ControllerLogic logic_{ControllerConfig{}, 7};
  std::shared_ptr<const MetadataImage> image_;
  int64_t now_ = 1'000'000;
};

// BUG: tick() computes every expired broker's eviction against the same (pre-tick) image. When
// two brokers expire in one tick, the second eviction ignores the first: it may elect the other
// expiring broker (still "live" in the old image) and it rewrites the ISR from the old ISR,
// putting back the first evicted broker and dropping the leader the first eviction elected.
TEST_F(ControllerLogicReviewTest, TwoBrokersExpiringInOneTickLeaveALiveLeaderInsideTheIsr) {
  apply(logic_.create_topic(*image_, "t", 3, 3, {}));
  // Brokers 1 and 2 go silent together; broker 3 keeps heartbeating.
  now_ += 20'000;
  heartbeat(3);
  apply(logic_.tick(*image_, now_));
  ASSERT_TRUE(image_->brokers().at(1).fenced);
  ASSERT_TRUE(image_->brokers().at(2).fenced);
  for (int p = 0; p < 3; ++p) {
    const PartitionState& s = part("t", p);
    EXPECT_EQ(s.leader, 3) << "partition " << p << ": broker 3 is the only live ISR member; leader "
                           << s.leader << ", ISR size " << s.isr.size();
    EXPECT_TRUE(has(s.isr, s.leader)) << "partition " << p << ": leader " << s.leader << " is outside its ISR";
    EXPECT_FALSE(has(s.isr, 1)) << "partition " << p << ": fenced broker 1 is back in the ISR";
    EXPECT_FALSE(has(s.isr, 2)) << "partition " << p << ": fenced broker 2 is back in the ISR";
  }
}

// BUG (consequence of the above, and permanent): tick() skips brokers that are already fenced,
// so a fenced broker left as leader by that tick is never evicted again; the partition stays led
// by a dead broker although a live ISR member exists.
TEST_F(ControllerLogicReviewTest, AFencedLeaderLeftByATickIsNeverReplaced) {
  apply(logic_.create_topic(*image_, "t", 3, 3, {}));
  now_ += 20'000;
  heartbeat(3);
  apply(logic_.tick(*image_, now_));
  for (int i = 0; i < 5; ++i) {
    now_ += 20'000;
    heartbeat(3);
    apply(logic_.tick(*image_, now_));
  }
  for (int p = 0; p < 3; ++p) {
    const int32_t leader = part("t", p).leader;
    ASSERT_TRUE(leader == kNoLeader || image_->brokers().count(leader));
    EXPECT_FALSE(leader != kNoLeader && image_->brokers().at(leader).fenced)
        << "partition " << p << " is still led by fenced broker " << leader;
  }
}


// BUG: topic ids come from a std::mt19937_64 seeded, per controller term, with
// QuorumController's seed_ ^ epoch, where seed_ defaults to the node's start time in ms, and
// create_topic never checks the id against the image. Two nodes started 1 ms apart (seed S even
// and S + 1, e.g. by run.sh) derive the same seed for epochs 2 and 3 ((S ^ 2) == ((S + 1) ^ 3)),
// so the controller of epoch 3 replays the id stream of the controller of epoch 2. Its first
// topic gets the id of the other's first topic: the Topic record is refused on replay ("already
// exists"), the client is told NONE, and the Partition records that follow are applied to the
// *other* topic, overwriting its assignment.
TEST_F(ControllerLogicReviewTest, ANewControllerTermNeverReusesATopicId) {
  const uint64_t start_ms = 1'763'770'000'000;  // even
  ControllerLogic epoch2(ControllerConfig{}, start_ms ^ 2);        // node A, quorum epoch 2
  ControllerLogic epoch3(ControllerConfig{}, (start_ms + 1) ^ 3);  // node B, quorum epoch 3
  Decision x = epoch2.create_topic(*image_, "x", 3, 1, {});
  apply(x);
  const std::map<int32_t, PartitionState> x_before = image_->topic_by_name("x")->partitions;
  Decision y = epoch3.create_topic(*image_, "y", 3, 3, {});
  ASSERT_TRUE(y.ok());
  EXPECT_NE(y.records.front().topic().topic_id(), image_->topic_by_name("x")->id)
      << "topic y was given the id of existing topic x";
  // What every node then replays (the publisher skips refused records and goes on).
  MetadataDelta delta(image_);
  int refused = 0;
  for (const auto& r : y.records) refused += !delta.replay(r, image_->offset()).ok();
  image_ = delta.apply();
  EXPECT_EQ(refused, 0);
  EXPECT_NE(image_->topic_by_name("y"), nullptr) << "topic y, reported created, does not exist";
  EXPECT_EQ(image_->topic_by_name("x")->partitions, x_before) << "topic x's partitions were overwritten by y's";
}


// BUG: alter_partition accepts an ISR that names a broker twice ({leader, leader}): the ISR then
// counts 2 members with one broker in sync, so min.insync.replicas=2 (and acks=all) would be met
// by the leader alone. The request comes from the network (AlterPartition).
TEST_F(ControllerLogicReviewTest, AlterPartitionRefusesDuplicateIsrMembers) {
  apply(logic_.create_topic(*image_, "t", 1, 3, {{"min.insync.replicas", "2"}}));
  const PartitionState s = part("t", 0);
  Decision d = logic_.alter_partition(*image_, image_->topic_by_name("t")->id, 0, s.leader, s.leader_epoch,
                                      s.partition_epoch, {s.leader, s.leader});
  EXPECT_EQ(d.error, ApiError::kIneligibleReplica) << "an ISR of {" << s.leader << ", " << s.leader << "} was accepted";
}

}  // namespace
}  // namespace gannet::metadata
