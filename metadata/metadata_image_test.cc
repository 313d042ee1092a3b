#include "metadata/metadata_image.h"

#include <gtest/gtest.h>

namespace gannet::metadata {
namespace {

std::string id(char c) { return std::string(16, c); }

v1::MetadataRecord topic(const std::string& name, const std::string& tid) {
  v1::MetadataRecord r;
  r.mutable_topic()->set_name(name);
  r.mutable_topic()->set_topic_id(tid);
  return r;
}

v1::MetadataRecord partition(const std::string& tid, int p, std::vector<int32_t> replicas) {
  v1::MetadataRecord r;
  auto* pr = r.mutable_partition();
  pr->set_topic_id(tid);
  pr->set_partition_id(p);
  for (int32_t x : replicas) {
    pr->add_replicas(x);
    pr->add_isr(x);
  }
  pr->set_leader(replicas.front());
  return r;
}

v1::MetadataRecord broker(int32_t bid, int64_t epoch) {
  v1::MetadataRecord r;
  auto* b = r.mutable_register_broker();
  b->set_broker_id(bid);
  b->set_broker_epoch(epoch);
  b->set_incarnation_id(std::string(16, static_cast<char>('a' + bid)));
  b->set_fenced(true);
  auto* e = b->add_endpoints();
  e->set_name("CLIENT");
  e->set_host("127.0.0.1");
  e->set_port(9000 + bid);
  return r;
}

TEST(MetadataImage, ReplayBuildsTheImageAndTheDeltaSaysWhatChanged) {
  MetadataDelta d(nullptr);
  int64_t o = 0;
  for (int b = 1; b <= 3; ++b) ASSERT_TRUE(d.replay(broker(b, 10 + b), o++).ok());
  ASSERT_TRUE(d.replay(topic("orders", id('o')), o++).ok());
  ASSERT_TRUE(d.replay(partition(id('o'), 0, {1, 2, 3}), o++).ok());
  ASSERT_TRUE(d.replay(partition(id('o'), 1, {2, 3, 1}), o++).ok());
  auto img = d.apply();
  EXPECT_EQ(img->offset(), o);
  EXPECT_EQ(img->brokers().size(), 3u);
  EXPECT_TRUE(img->brokers().at(2).fenced);
  ASSERT_NE(img->topic_by_name("orders"), nullptr);
  EXPECT_EQ(img->topic_by_name("orders")->partitions.at(1).leader, 2);
  EXPECT_EQ(d.created_topics(), std::set<std::string>{id('o')});
  EXPECT_EQ(d.changed_partitions().at(id('o')), (std::set<int32_t>{0, 1}));

  // Next delta: a sparse change moves leadership and shrinks the ISR.
  MetadataDelta d2(img);
  v1::MetadataRecord c;
  c.mutable_partition_change()->set_topic_id(id('o'));
  c.mutable_partition_change()->set_partition_id(0);
  c.mutable_partition_change()->set_leader(2);
  c.mutable_partition_change()->mutable_isr()->add_ids(2);
  c.mutable_partition_change()->mutable_isr()->add_ids(3);
  ASSERT_TRUE(d2.replay(c, o++).ok());
  v1::MetadataRecord isr_only;
  isr_only.mutable_partition_change()->set_topic_id(id('o'));
  isr_only.mutable_partition_change()->set_partition_id(0);
  isr_only.mutable_partition_change()->mutable_isr()->add_ids(2);
  ASSERT_TRUE(d2.replay(isr_only, o++).ok());
  v1::MetadataRecord unfence;
  unfence.mutable_broker_registration_change()->set_broker_id(1);
  unfence.mutable_broker_registration_change()->set_broker_epoch(11);
  unfence.mutable_broker_registration_change()->set_change(v1::BrokerRegistrationChangeRecord::UNFENCE);
  ASSERT_TRUE(d2.replay(unfence, o++).ok());
  auto img2 = d2.apply();
  const PartitionState& p0 = img2->topic_by_name("orders")->partitions.at(0);
  EXPECT_EQ(p0.leader, 2);
  EXPECT_EQ(p0.leader_epoch, 1) << "a leader change bumps the leader epoch";
  EXPECT_EQ(p0.partition_epoch, 2) << "every change bumps the partition epoch";
  EXPECT_EQ(p0.isr, std::vector<int32_t>{2});
  EXPECT_EQ(p0.replicas, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(img2->brokers().at(1).fenced);
  EXPECT_EQ(d2.changed_partitions().at(id('o')), std::set<int32_t>{0});
  EXPECT_EQ(d2.changed_brokers(), std::set<int32_t>{1});
  EXPECT_TRUE(d2.created_topics().empty());
  // The old image is untouched (images are immutable; topics are copied on write).
  EXPECT_EQ(img->topic_by_name("orders")->partitions.at(0).leader, 1);
  // Untouched topics are shared, not copied.
  MetadataDelta d3(img2);
  ASSERT_TRUE(d3.replay(topic("other", id('x')), o++).ok());
  auto img3 = d3.apply();
  EXPECT_EQ(img3->topics().at(id('o')).get(), img2->topics().at(id('o')).get());
}

TEST(MetadataImage, ContradictoryRecordsAreRefusedAndChangeNothing) {
  MetadataDelta d(nullptr);
  ASSERT_TRUE(d.replay(topic("t", id('t')), 0).ok());
  EXPECT_FALSE(d.replay(topic("t", id('u')), 1).ok()) << "duplicate name";
  EXPECT_FALSE(d.replay(topic("short", "abc"), 1).ok()) << "id not 16 bytes";
  EXPECT_FALSE(d.replay(partition(id('z'), 0, {1}), 1).ok()) << "unknown topic";
  v1::MetadataRecord c;
  c.mutable_partition_change()->set_topic_id(id('t'));
  c.mutable_partition_change()->set_partition_id(7);
  EXPECT_FALSE(d.replay(c, 1).ok()) << "unknown partition";
  v1::MetadataRecord u;
  u.mutable_unregister_broker()->set_broker_id(5);
  EXPECT_FALSE(d.replay(u, 1).ok()) << "unknown broker";
  auto img = d.apply();
  EXPECT_EQ(img->topics().size(), 1u);
  EXPECT_EQ(img->offset(), 1);
}

TEST(MetadataImage, DeletingATopicDropsItsPartitionsAndConfigs) {
  MetadataDelta d(nullptr);
  ASSERT_TRUE(d.replay(topic("t", id('t')), 0).ok());
  ASSERT_TRUE(d.replay(partition(id('t'), 0, {1}), 1).ok());
  v1::MetadataRecord cfg;
  cfg.mutable_config()->set_resource_type(v1::ConfigRecord::TOPIC);
  cfg.mutable_config()->set_resource_name("t");
  cfg.mutable_config()->set_name("retention.ms");
  cfg.mutable_config()->set_value("1000");
  ASSERT_TRUE(d.replay(cfg, 2).ok());
  auto img = d.apply();
  EXPECT_EQ(img->configs({v1::ConfigRecord::TOPIC, "t"}).at("retention.ms"), "1000");
  MetadataDelta d2(img);
  v1::MetadataRecord rm;
  rm.mutable_remove_topic()->set_topic_id(id('t'));
  ASSERT_TRUE(d2.replay(rm, 3).ok());
  auto img2 = d2.apply();
  EXPECT_EQ(img2->topic_by_name("t"), nullptr);
  EXPECT_TRUE(img2->configs({v1::ConfigRecord::TOPIC, "t"}).empty());
  EXPECT_EQ(d2.deleted_topics(), std::set<std::string>{id('t')});
  // Created and deleted within one delta: neither created nor deleted for listeners.
  MetadataDelta d3(img2);
  ASSERT_TRUE(d3.replay(topic("n", id('n')), 4).ok());
  v1::MetadataRecord rm2;
  rm2.mutable_remove_topic()->set_topic_id(id('n'));
  ASSERT_TRUE(d3.replay(rm2, 5).ok());
  EXPECT_TRUE(d3.created_topics().empty());
  EXPECT_TRUE(d3.deleted_topics().empty());
}

TEST(MetadataImage, SnapshotRoundTripsAndSkipsUnknownRecordTypes) {
  MetadataDelta d(nullptr);
  int64_t o = 0;
  for (int b = 1; b <= 3; ++b) ASSERT_TRUE(d.replay(broker(b, b), o++).ok());
  v1::MetadataRecord shutdown;
  shutdown.mutable_broker_registration_change()->set_broker_id(2);
  shutdown.mutable_broker_registration_change()->set_broker_epoch(2);
  shutdown.mutable_broker_registration_change()->set_change(
      v1::BrokerRegistrationChangeRecord::CONTROLLED_SHUTDOWN);
  ASSERT_TRUE(d.replay(shutdown, o++).ok());
  ASSERT_TRUE(d.replay(topic("a", id('a')), o++).ok());
  ASSERT_TRUE(d.replay(partition(id('a'), 0, {3, 1}), o++).ok());
  v1::MetadataRecord feature;
  feature.mutable_feature_level()->set_name("metadata.version");
  feature.mutable_feature_level()->set_feature_level(1);
  ASSERT_TRUE(d.replay(feature, o++).ok());
  v1::MetadataRecord future;  // a record type this release does not know
  future.set_version(3);
  ASSERT_TRUE(d.replay(future, o++).ok());
  auto img = d.apply();
  auto back = decode_snapshot(encode_snapshot(*img));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(**back == *img);
  EXPECT_TRUE((*back)->brokers().at(2).in_controlled_shutdown);
  auto bad = decode_snapshot(encode_snapshot(*img).substr(0, 20));
  EXPECT_FALSE(bad.ok());
}

// SCRAM credentials: upserted per (user, mechanism), removed one mechanism at a time, and kept
// by snapshots (a broker that starts from a snapshot must still authenticate the same users).
TEST(MetadataImage, ScramCredentialsReplayAndSnapshot) {
  MetadataDelta d(nullptr);
  auto cred = [](const std::string& user, int mech, const std::string& key) {
    v1::MetadataRecord r;
    auto* u = r.mutable_user_scram_credential();
    u->set_name(user);
    u->set_mechanism(mech);
    u->set_salt("salt");
    u->set_stored_key(key);
    u->set_server_key("server-" + key);
    u->set_iterations(4096);
    return r;
  };
  ASSERT_TRUE(d.replay(cred("alice", 1, "a1"), 0).ok());
  ASSERT_TRUE(d.replay(cred("alice", 2, "a2"), 1).ok());
  ASSERT_TRUE(d.replay(cred("bob", 2, "b2"), 2).ok());
  ASSERT_TRUE(d.replay(cred("alice", 2, "a2-new"), 3).ok());  // a new password
  v1::MetadataRecord rm;
  rm.mutable_remove_user_scram_credential()->set_name("alice");
  rm.mutable_remove_user_scram_credential()->set_mechanism(1);
  ASSERT_TRUE(d.replay(rm, 4).ok());
  auto img = d.apply();
  EXPECT_EQ(img->scram_credentials().size(), 2u);
  EXPECT_EQ(img->scram_credential("alice", 1), nullptr);
  ASSERT_NE(img->scram_credential("alice", 2), nullptr);
  EXPECT_EQ(img->scram_credential("alice", 2)->stored_key, "a2-new");
  EXPECT_EQ(img->scram_credential("bob", 2)->server_key, "server-b2");
  auto back = decode_snapshot(encode_snapshot(*img));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(**back == *img);
  EXPECT_EQ((*back)->scram_credential("bob", 2)->iterations, 4096);
}

}  // namespace
}  // namespace gannet::metadata
