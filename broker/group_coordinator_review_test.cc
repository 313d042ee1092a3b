// Review findings on the group coordinator: each test fails because of the bug it names (see the
// comment above each). Same harness as group_coordinator_test: real Partitions over real
// storage::Logs on a SimFileSystem, a second coordinator over the same logs for failover.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/group_coordinator.h"
#include "broker/group_coordinator_harness.h"
#include "broker/group_records.h"
#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::broker {
namespace {

using namespace testing;

using GroupCoordinatorReviewTest = testing::GroupCoordinatorHarness;

// Bug: a group that becomes Empty (its last member leaves, or every session expires) is not
// written to the offsets partition, so the log's last word on it is its last Stable generation
// with members. A new coordinator (failover) restores those members as Stable and waits a full
// session for each before the group is Empty again; meanwhile the group is shown with members
// that left long ago, `group delete` answers NON_EMPTY_GROUP and offset resets from outside
// (`group reset-offsets`) answer UNKNOWN_MEMBER_ID. Kafka writes the Empty group's metadata when
// the join phase ends with nobody (GroupCoordinator.onCompleteJoin -> storeGroup).
TEST_F(GroupCoordinatorReviewTest, AGroupLeftEmptyStaysEmptyAfterFailover) {
  start_coordinator(1);
  const std::string g = group_on(0);
  auto a = join(g, "", /*session_ms=*/60'000);
  ASSERT_EQ(a.error_code(), ev1::NONE) << a.error_message();
  ASSERT_EQ(sync(g, a, {{a.member_id(), "x"}}).error_code(), ev1::NONE);
  ASSERT_EQ(commit(g, "t", 0, 5, a.generation_id(), a.member_id()), ev1::NONE);
  ASSERT_EQ(leave(g, a.member_id()), ev1::NONE);
  ASSERT_EQ(describe(g).state(), "Empty");
  start_coordinator(2);
  auto d = describe(g);
  EXPECT_EQ(d.state(), "Empty");
  EXPECT_EQ(d.members_size(), 0);
  EXPECT_EQ(commit(g, "t", 0, 0), ev1::NONE);  // an offset reset while nobody is in the group
  EXPECT_EQ(fetch(g, "t", 0), 0);
  v1::DeleteGroupsRequest del;
  del.add_group_ids(g);
  v1::DeleteGroupsResponse dr;
  coord_->delete_groups(del, &dr);
  EXPECT_EQ(dr.results(0).error_code(), ev1::NONE) << dr.results(0).error_message();
}

// The fix writes the Empty group record: it must not let an older generation's record, appended
// after a newer one, roll the group back on reload (generations never go backwards).
TEST_F(GroupCoordinatorReviewTest, AReloadNeverRollsAGroupBackToAnOlderGeneration) {
  start_coordinator(1);
  const std::string g = group_on(1);
  v1::GroupMetadataValue newer;
  newer.set_protocol_type("consumer");
  newer.set_generation_id(7);
  newer.set_protocol_name("range");
  newer.set_leader("m");
  auto* m = newer.add_members();
  m->set_member_id("m");
  m->set_session_timeout_ms(60'000);
  m->set_assignment("a");
  v1::GroupMetadataValue older;
  older.set_protocol_type("consumer");
  older.set_generation_id(6);
  storage::RecordBatchBuilder b;
  const std::string key = encode_group_key({g});
  b.add(0, key, std::optional<std::string_view>(encode_group_value(newer)));
  b.add(0, key, std::optional<std::string_view>(encode_group_value(older)));
  auto batch = b.build();
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(parts_[1]->append_as_leader(&*batch, -1).error, ev1::NONE);
  start_coordinator(2);
  auto d = describe(g);
  EXPECT_EQ(d.generation_id(), 7);
  EXPECT_EQ(d.state(), "Stable");
}

// Bug: offsets of an Empty consumer group expire offsets.retention.ms after their *commit*, so a
// group that ran for longer than the retention and committed a partition early (no new data
// there since) loses that commit the moment its members leave (a deploy, a restart): the
// consumers come back to auto.offset.reset. KIP-211 (Kafka 2.1+): a consumer group's offsets
// expire retention after the group became Empty (currentStateTimestamp); only groups without a
// protocol (commits from outside, no members ever) count from the commit timestamp.
TEST_F(GroupCoordinatorReviewTest, OffsetsExpireRetentionAfterTheGroupEmptiedNotAfterTheCommit) {
  ManualClock clock;
  clock_ = &clock;
  options_.offsets_retention_ms = 24LL * 3600 * 1000;               // one day
  options_.offsets_retention_check_interval_ms = 1'000'000'000'000;  // only when the test says
  options_.max_session_timeout_ms = 10 * 24 * 3600 * 1000;
  start_coordinator(1);
  const std::string g = group_on(0);
  auto a = join(g, "", /*session_ms=*/10 * 24 * 3600 * 1000, /*rebalance_ms=*/10 * 24 * 3600 * 1000);
  ASSERT_EQ(a.error_code(), ev1::NONE) << a.error_message();
  ASSERT_EQ(sync(g, a, {{a.member_id(), "x"}}).error_code(), ev1::NONE);
  ASSERT_EQ(commit(g, "quiet", 0, 42, a.generation_id(), a.member_id()), ev1::NONE);
  // The group runs two days (the member is alive all along), then its member leaves.
  clock.advance_ms(2 * 24 * 3600 * 1000LL);
  ASSERT_EQ(leave(g, a.member_id()), ev1::NONE);
  ASSERT_EQ(describe(g).state(), "Empty");
  // An hour later the consumer restarts: its commit must still be there.
  clock.advance_ms(3600 * 1000LL);
  coord_->run_offset_expiry_for_test();
  EXPECT_EQ(fetch(g, "quiet", 0), 42);
  // A day after the group emptied it is gone.
  clock.advance_ms(24 * 3600 * 1000LL);
  coord_->run_offset_expiry_for_test();
  EXPECT_EQ(fetch(g, "quiet", 0), -1);
}

// Bug: a JoinGroup creates the group before it is validated and never removes it: a join with no
// protocols (INCONSISTENT_GROUP_PROTOCOL), or a first join (MEMBER_ID_REQUIRED) that is never
// followed up, leaves an Empty group with no members, no offsets and no record, forever (nothing
// ever deletes a group without offsets). Memory grows with every such group id and `group list`
// shows them. Kafka's cleanup turns Empty groups without offsets into Dead and removes them.
TEST_F(GroupCoordinatorReviewTest, FailedAndAbandonedJoinsLeaveNoGroupBehind) {
  options_.offsets_retention_check_interval_ms = 1'000'000'000;
  start_coordinator(1);
  for (int i = 0; i < 20; ++i) {
    v1::JoinGroupRequest req;
    req.set_group_id("bad-" + std::to_string(i));
    req.set_session_timeout_ms(1'000);
    req.set_protocol_type("consumer");  // no protocols
    v1::JoinGroupResponse resp;
    coord_->join_group(req, "h", &resp);
    ASSERT_EQ(resp.error_code(), ev1::INCONSISTENT_GROUP_PROTOCOL);
  }
  EXPECT_EQ(coord_->group_count(), 0u);
  // A first join whose member never comes back: its pending id expires with the session...
  v1::JoinGroupRequest req;
  req.set_group_id("abandoned");
  req.set_session_timeout_ms(100);
  req.set_protocol_type("consumer");
  req.add_protocols()->set_name("range");
  v1::JoinGroupResponse resp;
  coord_->join_group(req, "h", &resp);
  ASSERT_EQ(resp.error_code(), ev1::MEMBER_ID_REQUIRED);
  std::this_thread::sleep_for(300ms);
  // ... and the group with nothing in it goes at the next cleanup.
  coord_->run_offset_expiry_for_test();
  EXPECT_EQ(coord_->group_count(), 0u);
  v1::ListGroupsRequest lr;
  v1::ListGroupsResponse ls;
  coord_->list_groups(lr, &ls);
  EXPECT_EQ(ls.groups_size(), 0);
}

// Bug: offset expiry runs on the timer thread, which appends the tombstones with acks=all and
// waits for the ISR (up to offsets.commit.timeout.ms per group) while it is the only thread that
// ends join phases and expires sessions. With a slow follower on one offsets partition, every
// group on every partition stops rebalancing: here a join phase that should end at its
// rebalance timeout (2 s) is still open when the join call gives up (7 s).
TEST_F(GroupCoordinatorReviewTest, OffsetExpiryDoesNotStallJoinPhasesOfOtherGroups) {
  options_.offsets_retention_ms = 1;
  options_.offsets_retention_check_interval_ms = 1'500;
  options_.offset_commit_timeout_ms = 3'000;
  start_coordinator(1);
  // Three idle groups with old offsets on partition 0.
  for (int n = 0; n < 3; ++n) ASSERT_EQ(commit(group_on(0, n), "t", 0, 1), ev1::NONE);
  // A live group on partition 1 with two members.
  const std::string g = group_on(1);
  auto a = join(g, "", 60'000);
  auto bf = std::async(std::launch::async, [&] { return join(g, "", 60'000); });
  std::this_thread::sleep_for(100ms);
  auto a2 = join(g, a.member_id(), 60'000);
  auto b2 = bf.get();
  ASSERT_EQ(a2.error_code(), ev1::NONE);
  ASSERT_EQ(b2.error_code(), ev1::NONE);
  const auto& leader = a2.leader() == a2.member_id() ? a2 : b2;
  const auto& follower = &leader == &a2 ? b2 : a2;
  auto fs = std::async(std::launch::async, [&] { return sync(g, follower); });
  ASSERT_EQ(sync(g, leader, {{a2.member_id(), "x"}, {b2.member_id(), "y"}}).error_code(), ev1::NONE);
  ASSERT_EQ(fs.get().error_code(), ev1::NONE);
  // Partition 0 gets a follower that never fetches: its appends wait the whole commit timeout.
  parts_[0]->apply_metadata(PartitionMetadata{{kMe, 2}, {kMe, 2}, kMe, 1, 2}, 1, 0);
  std::this_thread::sleep_for(2'000ms);  // the expiry pass has begun
  // The leader rejoins (a rebalance); the other member does not: the phase ends at the 2 s
  // rebalance timeout without it.
  const auto t0 = std::chrono::steady_clock::now();
  auto a3 = join(g, leader.member_id(), 60'000);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(a3.error_code(), ev1::NONE) << a3.error_message();
  EXPECT_LT(took, 4s);
  EXPECT_EQ(a3.members_size(), 1);
}

// Bound: every JoinGroup with a new group id and no member id creates a group holding one pending
// member id, and an OffsetCommit to a new group id creates a group too: one client naming fresh
// ids could grow the coordinator's memory without end. Past group.max.groups a new group is
// refused with GROUP_MAX_SIZE_REACHED (existing groups keep working), and a group whose only
// content was a pending member id goes when that id expires, not at the next retention pass.
TEST_F(GroupCoordinatorReviewTest, GroupsNamedByClientsAreBoundedAndGoWithTheirPendingMembers) {
  options_.max_groups = 5;
  options_.offsets_retention_check_interval_ms = 1'000'000'000;
  start_coordinator(1);
  auto first_join = [&](const std::string& group) {
    v1::JoinGroupRequest req;
    req.set_group_id(group);
    req.set_session_timeout_ms(200);
    req.set_protocol_type("consumer");
    req.add_protocols()->set_name("range");
    v1::JoinGroupResponse resp;
    coord_->join_group(req, "h", &resp);
    return resp;
  };
  for (int i = 0; i < 5; ++i) ASSERT_EQ(first_join("g" + std::to_string(i)).error_code(), ev1::MEMBER_ID_REQUIRED);
  EXPECT_EQ(coord_->group_count(), 5u);
  auto over = first_join("g5");
  EXPECT_EQ(over.error_code(), ev1::GROUP_MAX_SIZE_REACHED);
  EXPECT_NE(over.error_message().find("group.max.groups"), std::string::npos) << over.error_message();
  EXPECT_EQ(commit("new-group", "t", 0, 1), ev1::GROUP_MAX_SIZE_REACHED);
  EXPECT_EQ(coord_->group_count(), 5u);
  // An existing group still takes members.
  EXPECT_EQ(first_join("g0").error_code(), ev1::MEMBER_ID_REQUIRED);
  // The pending ids expire with their session (200 ms) and their groups go with them.
  for (int i = 0; i < 100 && coord_->group_count() > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(coord_->group_count(), 0u);
  EXPECT_EQ(first_join("g5").error_code(), ev1::MEMBER_ID_REQUIRED);
  EXPECT_EQ(commit("new-group", "t", 0, 1), ev1::NONE);
}

}  // namespace
}  // namespace gannet::broker
