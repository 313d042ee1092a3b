// The controller's decisions with no network: build an image, ask, replay the records it returns.
#include "metadata/controller_logic.h"

#include <gtest/gtest.h>

namespace gannet::metadata {
namespace {

class ControllerLogicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = std::make_shared<const MetadataImage>();
    for (int b = 1; b <= 3; ++b) register_and_unfence(b, b == 3 ? "r2" : (b == 1 ? "r1" : "r2"));
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

  void register_and_unfence(int32_t id, const std::string& rack) {
    apply(logic_.register_broker(*image_, id, "inc-" + std::to_string(id),
                                 {Endpoint{"CLIENT", "127.0.0.1", 9000 + id}}, rack,
                                 image_->offset(), now_));
    const int64_t epoch = image_->brokers().at(id).epoch;
    apply(logic_.heartbeat(*image_, id, epoch, image_->offset(), false, now_));
  }

  const PartitionState& part(const std::string& topic, int p) {
    return image_->topic_by_name(topic)->partitions.at(p);
  }

  ControllerLogic logic_{ControllerConfig{}, 7};
  std::shared_ptr<const MetadataImage> image_;
  int64_t now_ = 1'000'000;
};

TEST_F(ControllerLogicTest, CreateTopicPlacesBalancedAndRackAwareReplicas) {
  apply(logic_.create_topic(*image_, "orders", 6, 3, {{"retention.ms", "60000"}}));
  std::map<int32_t, int> leaders;
  for (int p = 0; p < 6; ++p) {
    const PartitionState& s = part("orders", p);
    ASSERT_EQ(s.replicas.size(), 3u);
    EXPECT_EQ(std::set<int32_t>(s.replicas.begin(), s.replicas.end()).size(), 3u) << "distinct";
    EXPECT_EQ(s.leader, s.replicas.front()) << "the preferred replica leads";
    EXPECT_EQ(s.isr, s.replicas);
    ++leaders[s.leader];
  }
  EXPECT_EQ(leaders, (std::map<int32_t, int>{{1, 2}, {2, 2}, {3, 2}})) << "each broker leads 2";
  EXPECT_EQ(image_->configs({v1::ConfigRecord::TOPIC, "orders"}).at("retention.ms"), "60000");
  // RF 2 over racks r1 {1} and r2 {2, 3}: every partition spans both racks.
  apply(logic_.create_topic(*image_, "racked", 4, 2, {}));
  for (int p = 0; p < 4; ++p) {
    const auto& r = part("racked", p).replicas;
    const bool has_r1 = std::count(r.begin(), r.end(), 1) == 1;
    EXPECT_TRUE(has_r1) << "partition " << p << " is not rack-aware";
  }
}

// Issue 14.7: every registration stays in the metadata (fenced once its session ends) until the
// broker is unregistered, so registrations of arbitrary ids would grow the metadata without end.
// Node ids are 0..reserved.broker.max.id (default 1000); other ids are refused before any record.
TEST_F(ControllerLogicTest, RegistrationsOfIdsAboveReservedBrokerMaxIdAreRefused) {
  const std::vector<Endpoint> ep{Endpoint{"CLIENT", "127.0.0.1", 9004}};
  for (int32_t id : {1001, 5000, INT32_MAX}) {
    Decision d = logic_.register_broker(*image_, id, "inc", ep, "", image_->offset(), now_);
    EXPECT_EQ(d.error, ApiError::kInvalidRequest) << id;
    EXPECT_TRUE(d.records.empty()) << id;
    EXPECT_NE(d.message.find("reserved.broker.max.id"), std::string::npos) << d.message;
  }
  apply(logic_.register_broker(*image_, 1000, "inc-1000", ep, "", image_->offset(), now_));
  EXPECT_TRUE(image_->brokers().count(1000));
  ControllerConfig wide;
  wide.max_node_id = 5000;
  ControllerLogic logic(wide, 7);
  EXPECT_TRUE(logic.register_broker(*image_, 5000, "inc", ep, "", image_->offset(), now_).ok());
}

TEST_F(ControllerLogicTest, CreateTopicRefusesBadRequestsWithTypedErrors) {
  apply(logic_.create_topic(*image_, "t", 1, 1, {}));
  EXPECT_EQ(logic_.create_topic(*image_, "t", 1, 1, {}).error, ApiError::kTopicAlreadyExists);
  for (const std::string& bad : {std::string(""), std::string("."), std::string(".."),
                                 std::string(250, 'x'), std::string("a/b"), std::string("a b")}) {
    EXPECT_EQ(logic_.create_topic(*image_, bad, 1, 1, {}).error, ApiError::kInvalidTopic) << bad;
  }
  EXPECT_EQ(logic_.create_topic(*image_, std::string(249, 'y'), 1, 1, {}).error, ApiError::kNone);
  EXPECT_EQ(logic_.create_topic(*image_, "rf4", 1, 4, {}).error, ApiError::kInvalidReplicationFactor);
  EXPECT_EQ(logic_.create_topic(*image_, "c1", 1, 1, {{"cleanup.policy", "shred"}}).error,
            ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.create_topic(*image_, "c2", 1, 2, {{"min.insync.replicas", "3"}}).error,
            ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.create_topic(*image_, "c3", 1, 1, {{"retention.ms", "-7"}}).error,
            ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.create_topic(*image_, "c4", 1, 1, {{"no.such.config", "1"}}).error,
            ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.delete_topic(*image_, "missing").error, ApiError::kUnknownTopic);
}

TEST_F(ControllerLogicTest, CompactionConfigsAreValidatedByStorage) {
  EXPECT_EQ(logic_.create_topic(*image_, "k1", 1, 1,
                                {{"cleanup.policy", "compact,delete"},
                                 {"delete.retention.ms", "1000"},
                                 {"min.compaction.lag.ms", "0"},
                                 {"min.cleanable.dirty.ratio", "0.25"}})
                .error,
            ApiError::kNone);
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"delete.retention.ms", "-1"},
           {"min.compaction.lag.ms", "x"},
           {"min.cleanable.dirty.ratio", "1.5"},
           {"min.cleanable.dirty.ratio", "half"},
           {"cleanup.policy", "compact,shred"}}) {
    auto d = logic_.create_topic(*image_, "k2", 1, 1, {{k, v}});
    EXPECT_EQ(d.error, ApiError::kInvalidConfig) << k << "=" << v;
  }
}

TEST_F(ControllerLogicTest, SessionExpiryFencesAndMovesLeadershipWithinTheIsr) {
  apply(logic_.create_topic(*image_, "t", 3, 3, {}));
  // Brokers 2 and 3 keep heartbeating; broker 1 goes silent.
  for (int step = 0; step < 10; ++step) {
    now_ += 1000;
    for (int b : {2, 3}) {
      apply(logic_.heartbeat(*image_, b, image_->brokers().at(b).epoch, image_->offset(),
                             false, now_));
    }
    apply(logic_.tick(*image_, now_));
  }
  EXPECT_TRUE(image_->brokers().at(1).fenced);
  for (int p = 0; p < 3; ++p) {
    const PartitionState& s = part("t", p);
    EXPECT_NE(s.leader, 1);
    EXPECT_NE(s.leader, kNoLeader);
    EXPECT_EQ(std::count(s.isr.begin(), s.isr.end(), 1), 0) << "fenced broker left the ISR";
  }
  // The partition broker 1 led got a new leader epoch.
  bool moved = false;
  for (int p = 0; p < 3; ++p) moved |= part("t", p).leader_epoch > 0;
  EXPECT_TRUE(moved);
  // Broker 1 comes back (heartbeat, caught up): unfenced; preferred leaders return when its
  // leader re-adds it to the ISR and a rebalance runs.
  apply(logic_.heartbeat(*image_, 1, image_->brokers().at(1).epoch, image_->offset(),
                         false, now_));
  EXPECT_FALSE(image_->brokers().at(1).fenced);
  for (int p = 0; p < 3; ++p) {
    const PartitionState s = part("t", p);
    std::vector<int32_t> isr = s.isr;
    isr.push_back(1);
    apply(logic_.alter_partition(*image_, image_->topic_by_name("t")->id, p, s.leader,
                                 s.leader_epoch, s.partition_epoch, isr));
  }
  apply(logic_.rebalance_preferred_leaders(*image_));
  for (int p = 0; p < 3; ++p) EXPECT_EQ(part("t", p).leader, part("t", p).replicas.front());
}

TEST_F(ControllerLogicTest, NoUncleanElectionUnlessEnabled) {
  apply(logic_.create_topic(*image_, "t", 1, 2, {}));
  const PartitionState s = part("t", 0);
  const std::string tid = image_->topic_by_name("t")->id;
  // Shrink the ISR to the leader alone, then let the leader's session expire.
  apply(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch, {s.leader}));
  now_ += 20'000;
  for (int b = 1; b <= 3; ++b) {
    if (b != s.leader) {
      apply(logic_.heartbeat(*image_, b, image_->brokers().at(b).epoch, image_->offset(),
                             false, now_));
    }
  }
  apply(logic_.tick(*image_, now_));
  EXPECT_EQ(part("t", 0).leader, kNoLeader) << "an out-of-sync replica must not lead";
  EXPECT_EQ(part("t", 0).isr, std::vector<int32_t>{s.leader}) << "the last ISR member stays";
  // When the old leader returns and catches up it leads again.
  apply(logic_.heartbeat(*image_, s.leader, image_->brokers().at(s.leader).epoch, image_->offset(),
                         false, now_));
  EXPECT_EQ(part("t", 0).leader, s.leader);
}

TEST_F(ControllerLogicTest, AlterPartitionChecksEpochsAndMembers) {
  apply(logic_.create_topic(*image_, "t", 1, 3, {}));
  const PartitionState s = part("t", 0);
  const std::string tid = image_->topic_by_name("t")->id;
  std::vector<int32_t> smaller(s.isr.begin(), s.isr.end() - 1);
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch + 1, s.partition_epoch, smaller).error,
            ApiError::kFencedLeaderEpoch);
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch - 1, smaller).error,
            ApiError::kInvalidUpdateVersion);
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.replicas[1], s.leader_epoch, s.partition_epoch, smaller).error,
            ApiError::kNotLeaderOrFollower);
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch, {s.replicas[1]}).error,
            ApiError::kIneligibleReplica);
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch, {s.leader, 42}).error,
            ApiError::kIneligibleReplica);
  EXPECT_EQ(logic_.alter_partition(*image_, "nope", 0, 1, 0, 0, {1}).error, ApiError::kUnknownTopic);
  apply(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch, {s.leader}));
  EXPECT_EQ(part("t", 0).isr, std::vector<int32_t>{s.leader});
  EXPECT_EQ(part("t", 0).partition_epoch, s.partition_epoch + 1);
  // The old partition epoch is now stale.
  EXPECT_EQ(logic_.alter_partition(*image_, tid, 0, s.leader, s.leader_epoch, s.partition_epoch, s.isr).error,
            ApiError::kInvalidUpdateVersion);
}

TEST_F(ControllerLogicTest, ControlledShutdownMovesLeadershipAndCreatePartitionsGrows) {
  apply(logic_.create_topic(*image_, "t", 3, 2, {}));
  const int32_t leaving = part("t", 0).leader;
  apply(logic_.heartbeat(*image_, leaving, image_->brokers().at(leaving).epoch, image_->offset(),
                         /*want_shutdown=*/true, now_));
  EXPECT_TRUE(image_->brokers().at(leaving).in_controlled_shutdown);
  for (int p = 0; p < 3; ++p) EXPECT_NE(part("t", p).leader, leaving);
  apply(logic_.create_partitions(*image_, "t", 5));
  EXPECT_EQ(image_->topic_by_name("t")->partitions.size(), 5u);
  for (int p = 3; p < 5; ++p) {
    EXPECT_EQ(part("t", p).replicas.size(), 2u);
    EXPECT_EQ(std::count(part("t", p).replicas.begin(), part("t", p).replicas.end(), leaving), 0)
        << "a broker shutting down gets no new replicas";
  }
  EXPECT_EQ(logic_.create_partitions(*image_, "t", 4).error, ApiError::kInvalidPartitions);
}

TEST_F(ControllerLogicTest, UnfenceWaitsUntilTheBrokerHasAppliedItsOwnRegistration) {
  apply(logic_.register_broker(*image_, 4, "inc-4", {Endpoint{"CLIENT", "127.0.0.1", 9004}}, "",
                               image_->offset(), now_));
  const int64_t epoch = image_->brokers().at(4).epoch;
  ASSERT_TRUE(image_->brokers().at(4).fenced);
  // Its image ends just before its registration: still fenced, nothing written.
  Decision early = logic_.heartbeat(*image_, 4, epoch, epoch, false, now_);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early.records.empty());
  EXPECT_EQ(logic_.broker_offsets().at(4), epoch);
  // Once it includes the registration: unfenced.
  apply(logic_.heartbeat(*image_, 4, epoch, epoch + 1, false, now_));
  EXPECT_FALSE(image_->brokers().at(4).fenced);
  // A heartbeat of another epoch is stale.
  EXPECT_EQ(logic_.heartbeat(*image_, 4, epoch + 100, epoch + 1, false, now_).error, ApiError::kStaleBrokerEpoch);
}

TEST_F(ControllerLogicTest, AlterTopicConfigsSetsRemovesAndValidatesTheResult) {
  apply(logic_.create_topic(*image_, "logs", 2, 3, {{"retention.ms", "60000"}}));
  const ConfigResource res{v1::ConfigRecord::TOPIC, "logs"};
  apply(logic_.alter_topic_configs(*image_, "logs", {{"cleanup.policy", "compact"}, {"min.insync.replicas", "2"}}, {}));
  EXPECT_EQ(image_->configs(res), (std::map<std::string, std::string>{
                                      {"cleanup.policy", "compact"}, {"min.insync.replicas", "2"}, {"retention.ms", "60000"}}));
  apply(logic_.alter_topic_configs(*image_, "logs", {}, {"retention.ms", "cleanup.policy"}));
  EXPECT_EQ(image_->configs(res), (std::map<std::string, std::string>{{"min.insync.replicas", "2"}}));
  // Refused: bad values, min.insync.replicas above the replication factor, unknown keys and
  // topics; nothing changes.
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "logs", {{"retention.ms", "soon"}}, {}).error, ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "logs", {{"min.insync.replicas", "4"}}, {}).error, ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "logs", {{"no.such.key", "1"}}, {}).error, ApiError::kInvalidConfig);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "nope", {{"retention.ms", "1"}}, {}).error, ApiError::kUnknownTopic);
  EXPECT_EQ(image_->configs(res), (std::map<std::string, std::string>{{"min.insync.replicas", "2"}}));
}

TEST_F(ControllerLogicTest, TheMetadataLogsNameIsReserved) {
  EXPECT_EQ(logic_.create_topic(*image_, "__cluster_metadata", 1, 1, {}).error, ApiError::kInvalidTopic);
}

// Issue 14.2: the offsets topic is internal. Deleting it drops every group's offsets; more
// partitions move every group to another partition (its offsets vanish); cleanup.policy=delete
// expires offsets by time; min.insync.replicas equal to the replication factor stops every commit
// when one broker is down. Each is refused with Kafka's error; harmless changes still work.
TEST_F(ControllerLogicTest, TheOffsetsTopicIsProtected) {
  EXPECT_EQ(logic_.create_topic(*image_, "__consumer_offsets", 3, 3, {}).error, ApiError::kInvalidRequest)
      << "created without cleanup.policy=compact";
  apply(logic_.create_topic(*image_, "__consumer_offsets", 3, 3, {{"cleanup.policy", "compact"}}));
  EXPECT_EQ(logic_.delete_topic(*image_, "__consumer_offsets").error, ApiError::kTopicAuthorizationFailed);
  EXPECT_EQ(logic_.create_partitions(*image_, "__consumer_offsets", 51).error, ApiError::kInvalidRequest);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "__consumer_offsets", {{"cleanup.policy", "delete"}}, {}).error,
            ApiError::kInvalidRequest);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "__consumer_offsets", {{"cleanup.policy", "compact,delete"}}, {}).error,
            ApiError::kInvalidRequest);
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "__consumer_offsets", {}, {"cleanup.policy"}).error,
            ApiError::kInvalidRequest)
      << "removing the override falls back to delete";
  EXPECT_EQ(logic_.alter_topic_configs(*image_, "__consumer_offsets", {{"min.insync.replicas", "3"}}, {}).error,
            ApiError::kInvalidRequest);
  apply(logic_.alter_topic_configs(*image_, "__consumer_offsets", {{"min.insync.replicas", "2"}}, {}));
  apply(logic_.alter_topic_configs(*image_, "__consumer_offsets", {{"segment.bytes", "1048576"}}, {}));
  EXPECT_EQ(image_->topic_by_name("__consumer_offsets")->partitions.size(), 3u);
  // Other topics are not affected.
  apply(logic_.create_topic(*image_, "__mine", 1, 1, {}));
  apply(logic_.create_partitions(*image_, "__mine", 2));
  apply(logic_.delete_topic(*image_, "__mine"));
}

// Issue 14.6: the controller does not build records past what one metadata log entry can hold.
TEST_F(ControllerLogicTest, ATopicTooLargeForOneMetadataEntryIsRefusedBeforeItsRecordsAreBuilt) {
  // 100,000 partitions at RF 3 fit; 10^8 never reaches the placement.
  EXPECT_EQ(logic_.create_topic(*image_, "huge", 100'000'000, 3, {}).error, ApiError::kInvalidPartitions);
  apply(logic_.create_topic(*image_, "small", 1, 1, {}));
  EXPECT_EQ(logic_.create_partitions(*image_, "small", 2'000'000'000).error, ApiError::kInvalidPartitions);
}

}  // namespace
}  // namespace gannet::metadata

namespace gannet::metadata {
namespace {

// Issue 19: a registration of a node id whose incarnation still heartbeats is refused
// (DUPLICATE_BROKER_REGISTRATION, as Kafka does) instead of evicting the live broker; a restart
// that names the registered incarnation as its previous one takes over at once, and anyone may
// register once the old session has expired.
TEST_F(ControllerLogicTest, ALiveBrokerIsNotEvictedByAnotherRegistrationOfItsId) {
  const std::vector<Endpoint> ep{Endpoint{"CLIENT", "127.0.0.1", 9002}};
  const int64_t epoch = image_->brokers().at(2).epoch;
  now_ += 1000;
  apply(logic_.heartbeat(*image_, 2, epoch, image_->offset(), false, now_));
  Decision forged = logic_.register_broker(*image_, 2, "someone-else", ep, "", image_->offset(), now_ + 500);
  EXPECT_EQ(forged.error, ApiError::kDuplicateBrokerRegistration);
  EXPECT_TRUE(forged.records.empty());
  EXPECT_EQ(image_->brokers().at(2).incarnation_id, "inc-2");
  EXPECT_FALSE(image_->brokers().at(2).fenced);
  // The same broker restarted names its previous incarnation: accepted at once.
  apply(logic_.register_broker(*image_, 2, "inc-2b", ep, "", image_->offset(), now_ + 600, "inc-2"));
  EXPECT_EQ(image_->brokers().at(2).incarnation_id, "inc-2b");
  EXPECT_TRUE(image_->brokers().at(2).fenced) << "a new registration starts fenced";
  const int64_t epoch_b = image_->brokers().at(2).epoch;
  apply(logic_.heartbeat(*image_, 2, epoch_b, image_->offset(), false, now_ + 700));
  // Another node with the id, once that session has expired (no heartbeat for the session
  // timeout): accepted.
  EXPECT_EQ(logic_.register_broker(*image_, 2, "other", ep, "", image_->offset(), now_ + 1000).error,
            ApiError::kDuplicateBrokerRegistration);
  apply(logic_.register_broker(*image_, 2, "other", ep, "", image_->offset(),
                               now_ + 700 + ControllerConfig{}.session_timeout_ms));
  EXPECT_EQ(image_->brokers().at(2).incarnation_id, "other");
}

}  // namespace
}  // namespace gannet::metadata

namespace gannet::metadata {
namespace {

// AlterUserScramCredentials: per-user, all or nothing, with Kafka's error for each refusal.
TEST_F(ControllerLogicTest, UserScramCredentials) {
  ScramCredential good{"salt", "stored", "server", 4096};
  Decision d = logic_.alter_user_scram_credentials(*image_, "alice", {}, {{2, good}, {1, good}});
  ASSERT_TRUE(d.ok()) << d.message;
  apply(d);
  EXPECT_EQ(image_->scram_credentials().size(), 2u);

  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "", {}, {{2, good}}).error, ApiError::kUnacceptableCredential);
  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "bob", {}, {{3, good}}).error,
            ApiError::kUnsupportedSaslMechanism);
  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "bob", {}, {{2, {"salt", "s", "k", 1000}}}).error,
            ApiError::kUnacceptableCredential);
  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "bob", {}, {{2, {"salt", "s", "k", 20000}}}).error,
            ApiError::kUnacceptableCredential);
  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "bob", {}, {{2, {"", "s", "k", 4096}}}).error,
            ApiError::kUnacceptableCredential);
  EXPECT_EQ(logic_.alter_user_scram_credentials(*image_, "bob", {2}, {}).error, ApiError::kResourceNotFound);
  // A mechanism both deleted and upserted: refused whole, nothing half done.
  Decision dup = logic_.alter_user_scram_credentials(*image_, "alice", {1}, {{1, good}});
  EXPECT_EQ(dup.error, ApiError::kDuplicateResource);
  EXPECT_TRUE(dup.records.empty());

  apply(logic_.alter_user_scram_credentials(*image_, "alice", {1}, {}));
  EXPECT_EQ(image_->scram_credential("alice", 1), nullptr);
  ASSERT_NE(image_->scram_credential("alice", 2), nullptr);
}

}  // namespace
}  // namespace gannet::metadata

namespace gannet::metadata {
namespace {

// CreateAcls and DeleteAcls: stored by id, validated, the same binding never twice, filters
// remove exactly what they select.
TEST_F(ControllerLogicTest, Acls) {
  acl::Binding read_a{acl::ResourceType::kTopic, "a", acl::PatternType::kLiteral, "User:alice", "*",
                      acl::Operation::kRead, acl::Permission::kAllow};
  acl::Binding write_pre = read_a;
  write_pre.pattern_type = acl::PatternType::kPrefixed;
  write_pre.resource_name = "logs-";
  write_pre.operation = acl::Operation::kWrite;
  apply(logic_.create_acl(*image_, read_a));
  apply(logic_.create_acl(*image_, write_pre));
  EXPECT_TRUE(logic_.create_acl(*image_, read_a).records.empty());  // already there
  EXPECT_EQ(image_->acls().size(), 2u);
  acl::Binding bad = read_a;
  bad.principal = "alice";
  EXPECT_EQ(logic_.create_acl(*image_, bad).error, ApiError::kInvalidRequest);

  acl::Filter prefixed;
  prefixed.pattern_type = acl::PatternType::kPrefixed;
  std::vector<acl::Binding> removed;
  apply(logic_.delete_acls(*image_, prefixed, &removed));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], write_pre);
  ASSERT_EQ(image_->acls().size(), 1u);
  EXPECT_EQ(image_->acls().begin()->second, read_a);
}

}  // namespace
}  // namespace gannet::metadata
