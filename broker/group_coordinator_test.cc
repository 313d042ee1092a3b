// GroupCoordinator against real Partitions on real storage::Logs (SimFileSystem): the classic
// group protocol (join, sync, heartbeat, leave, session expiry), offset commits as records, and a
// second coordinator replaying the same logs (the failover path).
#include "broker/group_coordinator.h"
#include "broker/group_coordinator_harness.h"
#include "testing/process_harness.h"

#include <gtest/gtest.h>

#include <atomic>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/group_records.h"
#include "storage/log.h"
#include "storage/sim_file_system.h"

namespace gannet::broker {
namespace {

using namespace testing;

class GroupCoordinatorTest : public testing::GroupCoordinatorHarness {
 protected:
  void SetUp() override {
    GroupCoordinatorHarness::SetUp();
    start_coordinator(/*epoch=*/1);
  }
};

TEST_F(GroupCoordinatorTest, PartitionForMatchesKafka) {
  // Java: "my-group".hashCode() = 1_436_270_711... computed by hand: s[0]*31^(n-1) + ... mod 2^32.
  int32_t h = 0;
  for (char c : std::string("my-group")) h = static_cast<int32_t>(31u * static_cast<uint32_t>(h) + static_cast<unsigned char>(c));
  EXPECT_EQ(GroupCoordinator::partition_for("my-group", 50), std::abs(h) % 50);
  EXPECT_EQ(GroupCoordinator::partition_for("", 50), 0);
  // Every id maps inside [0, N).
  for (int i = 0; i < 1000; ++i) {
    int32_t p = GroupCoordinator::partition_for("group-" + std::to_string(i * 7919), 7);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 7);
  }
}

TEST_F(GroupCoordinatorTest, OneMemberJoinsSyncsAndHeartbeats) {
  auto j = join("g");
  ASSERT_EQ(j.error_code(), ev1::NONE) << j.error_message();
  EXPECT_EQ(j.generation_id(), 1);
  EXPECT_EQ(j.leader(), j.member_id());
  EXPECT_EQ(j.protocol_name(), "range");
  ASSERT_EQ(j.members_size(), 1);
  EXPECT_EQ(j.members(0).metadata(), "sub");
  auto s = sync("g", j, {{j.member_id(), "assignment-1"}});
  ASSERT_EQ(s.error_code(), ev1::NONE) << s.error_message();
  EXPECT_EQ(s.assignment(), "assignment-1");
  EXPECT_EQ(heartbeat("g", j), ev1::NONE);
  auto d = describe("g");
  EXPECT_EQ(d.state(), "Stable");
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).assignment(), "assignment-1");
  EXPECT_EQ(d.members(0).client_host(), "127.0.0.1");
}

TEST_F(GroupCoordinatorTest, ASecondMemberRebalancesAndTheLongPollingHeartbeatReturnsAtOnce) {
  auto a = join("g");
  ASSERT_EQ(a.error_code(), ev1::NONE);
  ASSERT_EQ(sync("g", a, {{a.member_id(), "all"}}).error_code(), ev1::NONE);
  // A's long-polling heartbeat is waiting when B arrives.
  auto hb = std::async(std::launch::async, [&] {
    auto t0 = std::chrono::steady_clock::now();
    auto e = heartbeat("g", a, 10'000);
    return std::make_pair(e, std::chrono::steady_clock::now() - t0);
  });
  std::this_thread::sleep_for(50ms);
  auto b = std::async(std::launch::async, [&] { return join("g"); });
  auto [e, took] = hb.get();
  EXPECT_EQ(e, ev1::REBALANCE_IN_PROGRESS);
  EXPECT_LT(took, 1s);  // not the whole wait (a third of the 600 ms session at most anyway)
  auto a2 = join("g", a.member_id());
  auto b2 = b.get();
  ASSERT_EQ(a2.error_code(), ev1::NONE) << a2.error_message();
  ASSERT_EQ(b2.error_code(), ev1::NONE) << b2.error_message();
  EXPECT_EQ(a2.generation_id(), 2);
  EXPECT_EQ(b2.generation_id(), 2);
  EXPECT_EQ(a2.leader(), a.member_id());  // the leader stays the leader
  EXPECT_EQ(a2.members_size(), 2);
  EXPECT_EQ(b2.members_size(), 0);  // only the leader gets the member list
  // B syncs first and waits for the leader's assignment.
  auto bs = std::async(std::launch::async, [&] { return sync("g", b2); });
  std::this_thread::sleep_for(50ms);
  auto as = sync("g", a2, {{a2.member_id(), "first-half"}, {b2.member_id(), "second-half"}});
  EXPECT_EQ(as.assignment(), "first-half");
  EXPECT_EQ(bs.get().assignment(), "second-half");
  // The old generation is refused.
  EXPECT_EQ(heartbeat("g", a), ev1::ILLEGAL_GENERATION);
  EXPECT_EQ(heartbeat("g", a2), ev1::NONE);
}

TEST_F(GroupCoordinatorTest, AMemberWhoseSessionExpiresIsRemoved) {
  auto a = join("g", "", 300);
  auto b = std::async(std::launch::async, [&] { return join("g", "", 300); });
  std::this_thread::sleep_for(30ms);
  // B joined while A was alone in a group in PreparingRebalance? No: A's group was completing
  // its first generation; A must rejoin.
  auto a2 = join("g", a.member_id(), 300);
  auto b2 = b.get();
  ASSERT_EQ(b2.error_code(), ev1::NONE) << b2.error_message();
  ASSERT_EQ(a2.generation_id(), b2.generation_id());
  const auto& leader = a2.leader() == a2.member_id() ? a2 : b2;
  std::map<std::string, std::string> asg{{a2.member_id(), "x"}, {b2.member_id(), "y"}};
  auto other = std::async(std::launch::async, [&] { return sync("g", &leader == &a2 ? b2 : a2); });
  ASSERT_EQ(sync("g", leader, asg).error_code(), ev1::NONE);
  ASSERT_EQ(other.get().error_code(), ev1::NONE);
  // Only A heartbeats; B's 300 ms session runs out and A is told to rejoin.
  ev1::ErrorCode e = ev1::NONE;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (e == ev1::NONE && std::chrono::steady_clock::now() < deadline) {
    e = heartbeat("g", a2, 100);
  }
  EXPECT_EQ(e, ev1::REBALANCE_IN_PROGRESS);
  auto a3 = join("g", a2.member_id(), 300);
  ASSERT_EQ(a3.error_code(), ev1::NONE);
  EXPECT_EQ(a3.generation_id(), a2.generation_id() + 1);
  EXPECT_EQ(a3.members_size(), 1);
  EXPECT_EQ(heartbeat("g", b2), ev1::UNKNOWN_MEMBER_ID);
}

// A leader that joins but never sends the assignment (while it keeps heartbeating) cannot hold
// the group: after the rebalance timeout it is removed and the others rebalance without it.
TEST_F(GroupCoordinatorTest, ALeaderThatNeverSyncsIsRemovedAfterTheRebalanceTimeout) {
  auto first = join("g");
  ASSERT_EQ(first.error_code(), ev1::NONE);
  ASSERT_EQ(sync("g", first, {{first.member_id(), "x"}}).error_code(), ev1::NONE);
  auto second = std::async(std::launch::async, [&] { return join("g"); });
  std::this_thread::sleep_for(50ms);
  auto j1 = join("g", first.member_id());
  auto j2 = second.get();
  ASSERT_EQ(j1.error_code(), ev1::NONE);
  ASSERT_EQ(j2.error_code(), ev1::NONE);
  const auto& leader = j1.leader() == j1.member_id() ? j1 : j2;
  const auto& follower = j1.leader() == j1.member_id() ? j2 : j1;
  // The follower waits for the assignment; the leader only heartbeats.
  const auto t0 = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async, [&] { return sync("g", follower); });
  while (waiting.wait_for(100ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - t0 < 10s) {
    heartbeat("g", leader);
  }
  ASSERT_EQ(waiting.wait_for(0s), std::future_status::ready) << "the group waited for the leader's sync forever";
  EXPECT_EQ(waiting.get().error_code(), ev1::REBALANCE_IN_PROGRESS);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1500ms);  // the 2 s rebalance timeout, not at once
  EXPECT_EQ(heartbeat("g", leader), ev1::UNKNOWN_MEMBER_ID);
  auto again = join("g", follower.member_id());
  ASSERT_EQ(again.error_code(), ev1::NONE);
  EXPECT_EQ(again.leader(), follower.member_id());
  EXPECT_EQ(again.members_size(), 1);
}

TEST_F(GroupCoordinatorTest, BadRequestsGetTypedErrors) {
  v1::JoinGroupRequest req;
  req.set_session_timeout_ms(1000);
  req.set_protocol_type("consumer");
  req.add_protocols()->set_name("range");
  v1::JoinGroupResponse bad;
  coord_->join_group(req, "h", &bad);  // no group id
  EXPECT_EQ(bad.error_code(), ev1::INVALID_GROUP_ID);
  req.Clear();
  req.set_group_id("g");
  req.set_session_timeout_ms(10);  // below the minimum
  req.set_protocol_type("consumer");
  req.add_protocols()->set_name("range");
  v1::JoinGroupResponse resp;
  coord_->join_group(req, "h", &resp);
  EXPECT_EQ(resp.error_code(), ev1::INVALID_SESSION_TIMEOUT);
  resp.Clear();
  req.set_session_timeout_ms(1000);
  req.set_member_id("nobody");
  coord_->join_group(req, "h", &resp);
  EXPECT_EQ(resp.error_code(), ev1::UNKNOWN_MEMBER_ID);
  // A member whose protocols the group does not support.
  auto a = join("g");
  ASSERT_EQ(a.error_code(), ev1::NONE);
  resp.Clear();
  req.set_member_id("");
  req.clear_protocols();
  req.add_protocols()->set_name("other");
  coord_->join_group(req, "h", &resp);
  EXPECT_EQ(resp.error_code(), ev1::INCONSISTENT_GROUP_PROTOCOL);
  // A commit from outside while the group has members.
  EXPECT_EQ(commit("g", "t", 0, 5), ev1::UNKNOWN_MEMBER_ID);
  EXPECT_EQ(commit("g", "t", 0, 5, a.generation_id() + 7, a.member_id()), ev1::ILLEGAL_GENERATION);
  // Too much metadata.
  v1::OffsetCommitRequest big;
  big.set_group_id("solo");
  big.set_generation_id(-1);
  auto* bp = big.add_topics();
  bp->set_name("t");
  auto* bpp = bp->add_partitions();
  bpp->set_committed_offset(1);
  bpp->set_metadata(std::string(5000, 'x'));
  v1::OffsetCommitResponse br;
  coord_->offset_commit(big, &br);
  EXPECT_EQ(br.topics(0).partitions(0).error_code(), ev1::OFFSET_METADATA_TOO_LARGE);
}

// Issue 14.9: client numbers never overflow, names are checked before they are written. A join
// with rebalance_timeout_ms = INT32_MAX computed its wait as an int32 sum (timeout + initial delay +
// slack) that wrapped negative, so it gave up at once (REBALANCE_IN_PROGRESS) instead of waiting
// for the other member; and an OffsetCommit topic name longer than the record key's int16 length
// was cut at 32,767 bytes while the commit was acknowledged.
TEST_F(GroupCoordinatorTest, ClientNumbersNeverOverflowAndNamesAreCheckedBeforeTheyAreWritten) {
  options_.initial_rebalance_delay_ms = 100;  // the sum overflows only with a delay (default 1 s)
  start_coordinator(2);
  auto a = join("big");
  ASSERT_EQ(a.error_code(), ev1::NONE);
  ASSERT_EQ(sync("big", a, {{a.member_id(), "all"}}).error_code(), ev1::NONE);
  auto b = std::async(std::launch::async, [&] { return join("big", "", 600, INT32_MAX); });
  std::this_thread::sleep_for(200ms);
  auto a2 = join("big", a.member_id());
  auto b2 = b.get();
  EXPECT_EQ(b2.error_code(), ev1::NONE) << b2.error_message();
  EXPECT_EQ(a2.error_code(), ev1::NONE) << a2.error_message();

  wait_loaded("solo");
  for (const std::string& bad : {std::string(40'000, 't'), std::string(250, 'u'), std::string("a b"), std::string("..")}) {
    EXPECT_EQ(commit("solo", bad, 0, 5), ev1::INVALID_TOPIC_EXCEPTION) << bad.substr(0, 20) << " (" << bad.size() << " bytes)";
    EXPECT_EQ(fetch("solo", bad, 0), -1) << "a refused commit was stored";
  }
  EXPECT_EQ(commit("solo", std::string(249, 'v'), 0, 5), ev1::NONE);
  EXPECT_EQ(fetch("solo", std::string(249, 'v'), 0), 5);
}

TEST_F(GroupCoordinatorTest, NotTheCoordinatorOnceLeadershipMoves) {
  ASSERT_EQ(commit("solo", "t", 0, 10), ev1::NONE);
  const int32_t p = GroupCoordinator::partition_for("solo", kPartitions);
  coord_->on_leadership(p, -1);
  EXPECT_EQ(commit("solo", "t", 0, 11), ev1::NOT_COORDINATOR);
  v1::OffsetFetchRequest req;
  req.set_group_id("solo");
  v1::OffsetFetchResponse resp;
  coord_->offset_fetch(req, &resp);
  EXPECT_EQ(resp.error_code(), ev1::NOT_COORDINATOR);
  // Leading again (a later epoch) reloads from the log: the commit is there.
  parts_[p]->apply_metadata(PartitionMetadata{{kMe}, {kMe}, kMe, 2, 2}, 1, 0);
  coord_->on_leadership(p, 2);
  wait_loaded("solo");
  EXPECT_EQ(fetch("solo", "t", 0), 10);
}

TEST_F(GroupCoordinatorTest, ANewCoordinatorResumesGroupsAndOffsetsFromTheLog) {
  auto a = join("g");
  ASSERT_EQ(sync("g", a, {{a.member_id(), "mine"}}).error_code(), ev1::NONE);
  ASSERT_EQ(commit("g", "t", 0, 42, a.generation_id(), a.member_id()), ev1::NONE);
  ASSERT_EQ(commit("g", "t", 0, 43, a.generation_id(), a.member_id()), ev1::NONE);
  ASSERT_EQ(commit("g", "t", 1, 7, a.generation_id(), a.member_id()), ev1::NONE);
  EXPECT_EQ(fetch("g", "t", 0), 43);
  ASSERT_EQ(commit("other", "u", 3, 1000), ev1::NONE);
  // Failover: a new coordinator (a new leader epoch) replays the same logs.
  start_coordinator(2);
  wait_loaded("other");
  EXPECT_EQ(fetch("g", "t", 0), 43);
  EXPECT_EQ(fetch("g", "t", 1), 7);
  EXPECT_EQ(fetch("g", "t", 2), -1);
  EXPECT_EQ(fetch("other", "u", 3), 1000);
  // The member carries on in its generation without a rebalance.
  EXPECT_EQ(heartbeat("g", a), ev1::NONE);
  auto d = describe("g");
  EXPECT_EQ(d.state(), "Stable");
  EXPECT_EQ(d.generation_id(), a.generation_id());
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).assignment(), "mine");
}

TEST_F(GroupCoordinatorTest, DeleteGroupsWritesTombstones) {
  auto a = join("g");
  ASSERT_EQ(sync("g", a, {{a.member_id(), "x"}}).error_code(), ev1::NONE);
  ASSERT_EQ(commit("g", "t", 0, 5, a.generation_id(), a.member_id()), ev1::NONE);
  v1::DeleteGroupsRequest del;
  del.add_group_ids("g");
  del.add_group_ids("missing");
  v1::DeleteGroupsResponse dr;
  coord_->delete_groups(del, &dr);
  EXPECT_EQ(dr.results(0).error_code(), ev1::NON_EMPTY_GROUP);
  EXPECT_EQ(dr.results(1).error_code(), ev1::GROUP_ID_NOT_FOUND);
  v1::LeaveGroupRequest leave;
  leave.set_group_id("g");
  leave.add_member_ids(a.member_id());
  v1::LeaveGroupResponse lr;
  coord_->leave_group(leave, &lr);
  ASSERT_EQ(lr.members(0).error_code(), ev1::NONE);
  // The leave ends the join phase at once (nobody left to wait for).
  EXPECT_EQ(describe("g").state(), "Empty");
  dr.Clear();
  coord_->delete_groups(del, &dr);
  EXPECT_EQ(dr.results(0).error_code(), ev1::NONE) << dr.results(0).error_message();
  EXPECT_EQ(describe("g").error_code(), ev1::GROUP_ID_NOT_FOUND);
  EXPECT_EQ(fetch("g", "t", 0), -1);
  // And it stays deleted after a reload.
  start_coordinator(2);
  EXPECT_EQ(fetch("g", "t", 0), -1);
  EXPECT_EQ(describe("g").error_code(), ev1::GROUP_ID_NOT_FOUND);
}

TEST_F(GroupCoordinatorTest, ConcurrentCommitsKeepTheLatestInLogOrder) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) EXPECT_EQ(commit("busy", "t", t % 2, t * 1000 + i), ev1::NONE);
    });
  }
  for (auto& t : ts) t.join();
  const int64_t cached0 = fetch("busy", "t", 0), cached1 = fetch("busy", "t", 1);
  start_coordinator(2);
  wait_loaded("busy");
  // What the cache said is what the log says (the last record wins in both).
  EXPECT_EQ(fetch("busy", "t", 0), cached0);
  EXPECT_EQ(fetch("busy", "t", 1), cached1);
}

TEST_F(GroupCoordinatorTest, RecordsRoundTripAndRejectGarbage) {
  auto k = decode_key(encode_offset_key({"g", "topic", 7}));
  ASSERT_TRUE(k);
  auto ok = std::get<OffsetKey>(*k);
  EXPECT_EQ(ok.group, "g");
  EXPECT_EQ(ok.topic, "topic");
  EXPECT_EQ(ok.partition, 7);
  // Kafka's layout, written out by hand: version 1, "g", "t", partition 2.
  const std::string want("\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x02", 12);
  EXPECT_EQ(encode_offset_key({"g", "t", 2}), want);
  auto v = decode_offset_value(encode_offset_value({99, 3, "meta", 1234}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->offset, 99);
  EXPECT_EQ(v->leader_epoch, 3);
  EXPECT_EQ(v->metadata, "meta");
  EXPECT_EQ(v->commit_timestamp_ms, 1234);
  EXPECT_FALSE(decode_key(""));
  EXPECT_FALSE(decode_key(std::string("\x00\x01\x00\x09g", 5)));  // string runs past the end
  EXPECT_FALSE(decode_key(std::string("\x00\x09", 2)));           // unknown version
  EXPECT_FALSE(decode_offset_value(std::string("\x00\x03\x00", 3)));
  EXPECT_FALSE(decode_group_value(std::string("\x00\x03", 2)));
}

// Issue 15: a join waiting for its phase to end is a parked call, not a blocked thread: the
// call returns at once with an id, its completion runs when the phase ends (here: when the
// second member's join completes it), and a cancelled one is answered at once.
TEST_F(GroupCoordinatorTest, AJoinWaitingForItsPhaseIsParked) {
  start_coordinator(1);
  const std::string g = group_on(0);
  auto a = join(g);  // a group of one: its first generation
  ASSERT_EQ(a.error_code(), ev1::NONE);
  auto request = [&](const std::string& member) {
    v1::JoinGroupRequest req;
    req.set_group_id(g);
    req.set_session_timeout_ms(5'000);
    req.set_rebalance_timeout_ms(5'000);
    req.set_protocol_type("consumer");
    req.add_protocols()->set_name("range");
    req.set_member_id(member);
    return req;
  };
  // A second member: MEMBER_ID_REQUIRED is answered at once (id 0).
  v1::JoinGroupResponse r0;
  std::atomic<int> done0{0};
  EXPECT_EQ(coord_->join_group(request(""), "h", &r0, [&] { ++done0; }), 0u);
  ASSERT_TRUE(gannet::testing::wait_until([&] { return done0.load() == 1; }, 2s));
  ASSERT_EQ(r0.error_code(), ev1::MEMBER_ID_REQUIRED);
  // Its join starts a rebalance and waits for member a: parked.
  v1::JoinGroupResponse rb;
  std::atomic<int> done_b{0};
  const uint64_t id_b = coord_->join_group(request(r0.member_id()), "h", &rb, [&] { ++done_b; });
  EXPECT_NE(id_b, 0u);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(done_b.load(), 0) << "answered before the phase ended";
  // Member a rejoins: the phase ends; both answered, b once.
  auto a2 = join(g, a.member_id());
  EXPECT_EQ(a2.error_code(), ev1::NONE);
  ASSERT_TRUE(gannet::testing::wait_until([&] { return done_b.load() == 1; }, 5s));
  EXPECT_EQ(rb.error_code(), ev1::NONE) << rb.error_message();
  EXPECT_EQ(rb.generation_id(), a2.generation_id());
  coord_->cancel_parked(id_b);  // already answered: nothing happens
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(done_b.load(), 1);
  // A parked join whose client goes away is answered at once.
  v1::JoinGroupResponse r1, rc;
  std::atomic<int> done1{0}, done_c{0};
  coord_->join_group(request(""), "h", &r1, [&] { ++done1; });
  ASSERT_TRUE(gannet::testing::wait_until([&] { return done1.load() == 1; }, 2s));
  const uint64_t id_c = coord_->join_group(request(r1.member_id()), "h", &rc, [&] { ++done_c; });
  ASSERT_NE(id_c, 0u);
  coord_->cancel_parked(id_c);
  EXPECT_TRUE(gannet::testing::wait_until([&] { return done_c.load() == 1; }, 1s));
}

// The asynchronous commit uses nothing of its request after it returns (a front-end may free it:
// the Kafka listener decodes into a request that lives only for the call). Before the fix, the
// completion read the freed request's group id and the broker crashed under kcat -G.
TEST_F(GroupCoordinatorTest, AnAsyncCommitNeedsNoRequestAfterItReturns) {
  for (int i = 0; i < 5; ++i) {
    auto resp = std::make_shared<v1::OffsetCommitResponse>();
    auto answered = std::make_shared<std::promise<void>>();
    // The completion thread is held until the request is gone.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    coord_->post_completion_for_test([released] { released.wait(); });
    {
      auto req = std::make_unique<v1::OffsetCommitRequest>();
      req->set_group_id("short-lived-" + std::string(64, 'x'));
      req->set_generation_id(-1);
      auto* t = req->add_topics();
      t->set_name("t");
      auto* p = t->add_partitions();
      p->set_partition(0);
      p->set_committed_offset(100 + i);
      coord_->offset_commit(*req, resp.get(), [answered] { answered->set_value(); });
      // Scribble over the request and free it before the write completes.
      req->set_group_id(std::string(64, '#'));
    }
    release.set_value();
    ASSERT_EQ(answered->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(resp->topics(0).partitions(0).error_code(), ev1::NONE);
    EXPECT_EQ(fetch("short-lived-" + std::string(64, 'x'), "t", 0), 100 + i);
  }
}

// ---- Broker-assigned groups (KIP-848) through the coordinator ----------------------------------

class ConsumerProtocolTest : public testing::GroupCoordinatorHarness {
 protected:
  void SetUp() override {
    GroupCoordinatorHarness::SetUp();
    options_.consumer.session_timeout_ms = 400;
    options_.consumer.heartbeat_interval_ms = 100;
    start_coordinator(/*epoch=*/1);
    coord_->set_topic_counts([] {
      return TopicPartitionCounts([](const std::string& t) { return t == "t" ? 4 : -1; });
    });
  }
  v1::ConsumerGroupHeartbeatResponse beat(const std::string& group, const std::string& member, int32_t epoch,
                                          std::optional<std::vector<int32_t>> owned) {
    v1::ConsumerGroupHeartbeatRequest req;
    req.set_group_id(group);
    req.set_member_id(member);
    req.set_member_epoch(epoch);
    req.set_client_id("c");
    if (epoch == 0) req.add_subscribed_topic_names("t");
    if (owned) {
      auto* t = req.mutable_owned()->add_topics();
      t->set_topic("t");
      for (int32_t p : *owned) t->add_partitions(p);
    }
    v1::ConsumerGroupHeartbeatResponse resp;
    coord_->consumer_group_heartbeat(req, "10.0.0.1", &resp);
    return resp;
  }
  static std::vector<int32_t> parts(const v1::ConsumerGroupHeartbeatResponse& r) {
    std::vector<int32_t> out;
    for (const auto& t : r.assignment().topics()) out.insert(out.end(), t.partitions().begin(), t.partitions().end());
    return out;
  }
};

TEST_F(ConsumerProtocolTest, MembersHeartbeatCommitWithTheirEpochAndDescribeShowsThem) {
  auto a = beat("cg", "", 0, std::vector<int32_t>{});
  ASSERT_EQ(a.error_code(), ev1::NONE) << a.error_message();
  ASSERT_FALSE(a.member_id().empty());
  EXPECT_EQ(parts(a), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(a.heartbeat_interval_ms(), 100);
  // Commits carry the member epoch; an old one is STALE_MEMBER_EPOCH, none is refused.
  EXPECT_EQ(commit("cg", "t", 0, 5, a.member_epoch(), a.member_id()), ev1::NONE);
  EXPECT_EQ(commit("cg", "t", 0, 6, a.member_epoch() - 1, a.member_id()), ev1::STALE_MEMBER_EPOCH);
  EXPECT_EQ(commit("cg", "t", 0, 6, a.member_epoch(), "someone"), ev1::UNKNOWN_MEMBER_ID);
  EXPECT_EQ(commit("cg", "t", 0, 6), ev1::UNKNOWN_MEMBER_ID);
  // A classic member cannot join it, and a consumer heartbeat cannot take a classic group.
  v1::JoinGroupRequest jr;
  jr.set_group_id("cg");
  jr.set_session_timeout_ms(600);
  jr.set_protocol_type("consumer");
  jr.add_protocols()->set_name("range");
  v1::JoinGroupResponse j;
  coord_->join_group(jr, "127.0.0.1", &j);
  EXPECT_EQ(j.error_code(), ev1::INCONSISTENT_GROUP_PROTOCOL);
  auto classic = join("classic");
  ASSERT_EQ(classic.error_code(), ev1::NONE);
  EXPECT_EQ(beat("classic", "", 0, std::vector<int32_t>{}).error_code(), ev1::GROUP_ID_NOT_FOUND);
  // A second member: describe shows both, the move in progress, and ListGroups the type.
  auto b = beat("cg", "", 0, std::vector<int32_t>{});
  ASSERT_EQ(b.error_code(), ev1::NONE);
  auto a2 = beat("cg", a.member_id(), a.member_epoch(), parts(a));
  EXPECT_EQ(parts(a2).size(), 2u);
  v1::ConsumerGroupDescribeRequest dr;
  dr.add_group_ids("cg");
  dr.add_group_ids("classic");
  v1::ConsumerGroupDescribeResponse d;
  coord_->consumer_group_describe(dr, &d);
  ASSERT_EQ(d.groups_size(), 2);
  EXPECT_EQ(d.groups(0).error_code(), ev1::NONE);
  EXPECT_EQ(d.groups(0).state(), "Reconciling");
  EXPECT_EQ(d.groups(0).assignor_name(), "uniform");
  ASSERT_EQ(d.groups(0).members_size(), 2);
  for (const auto& m : d.groups(0).members()) {
    EXPECT_EQ(m.client_host(), "10.0.0.1");
    if (m.member_id() == a.member_id()) {
      EXPECT_EQ(m.state(), "unrevoked_partitions");
      ASSERT_EQ(m.pending_revocation_size(), 1);
      EXPECT_EQ(m.pending_revocation(0).partitions_size(), 2);
    }
  }
  EXPECT_EQ(d.groups(1).error_code(), ev1::GROUP_ID_NOT_FOUND);
  v1::ListGroupsResponse lr;
  coord_->list_groups(v1::ListGroupsRequest(), &lr);
  std::map<std::string, std::string> types;
  for (const auto& g : lr.groups()) types[g.group_id()] = g.group_type();
  EXPECT_EQ(types["cg"], "consumer");
  EXPECT_EQ(types["classic"], "classic");
  // A non-empty consumer group cannot be deleted.
  v1::DeleteGroupsRequest del;
  del.add_group_ids("cg");
  v1::DeleteGroupsResponse dresp;
  coord_->delete_groups(del, &dresp);
  EXPECT_EQ(dresp.results(0).error_code(), ev1::NON_EMPTY_GROUP);
}

TEST_F(ConsumerProtocolTest, TheTimerRemovesASilentMemberAndTheOtherGetsItsPartitions) {
  auto a = beat("cg", "", 0, std::vector<int32_t>{});
  auto b = beat("cg", "", 0, std::vector<int32_t>{});
  auto a2 = beat("cg", a.member_id(), a.member_epoch(), parts(a));
  auto a3 = beat("cg", a.member_id(), a.member_epoch(), parts(a2));
  auto b2 = beat("cg", b.member_id(), b.member_epoch(), std::vector<int32_t>{});
  ASSERT_EQ(parts(b2).size(), 2u);
  // Only A heartbeats now; B's 400 ms session passes and A gets all four.
  std::vector<int32_t> owned = parts(a2);
  int32_t epoch = a3.member_epoch();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (owned.size() != 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    auto r = beat("cg", a.member_id(), epoch, owned);
    ASSERT_EQ(r.error_code(), ev1::NONE) << r.error_message();
    epoch = r.member_epoch();
    if (r.has_assignment()) owned = parts(r);
  }
  EXPECT_EQ(owned, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(beat("cg", b.member_id(), b2.member_epoch(), parts(b2)).error_code(), ev1::UNKNOWN_MEMBER_ID);
  // Leaving empties the group (its record says so once written).
  auto left = beat("cg", a.member_id(), -1, std::nullopt);
  EXPECT_EQ(left.member_epoch(), -1);
  v1::ConsumerGroupDescribeRequest dr;
  dr.add_group_ids("cg");
  v1::ConsumerGroupDescribeResponse d;
  coord_->consumer_group_describe(dr, &d);
  EXPECT_EQ(d.groups(0).state(), "Empty");
  EXPECT_EQ(d.groups(0).members_size(), 0);
}

TEST_F(ConsumerProtocolTest, AStableGroupResumesOnANewCoordinatorWithItsEpochsAndPartitions) {
  // Sessions long enough for the failover below (the log write, a new coordinator loading).
  options_.consumer.session_timeout_ms = 2'000;
  start_coordinator(/*epoch=*/1);
  coord_->set_topic_counts([] { return TopicPartitionCounts([](const std::string& t) { return t == "t" ? 4 : -1; }); });
  const std::string group = group_on(0);
  auto a = beat(group, "", 0, std::vector<int32_t>{});
  auto b = beat(group, "", 0, std::vector<int32_t>{});
  auto a2 = beat(group, a.member_id(), a.member_epoch(), parts(a));
  auto a3 = beat(group, a.member_id(), a.member_epoch(), parts(a2));
  const int64_t before = logs_[0]->log_end_offset();
  auto b2 = beat(group, b.member_id(), b.member_epoch(), std::vector<int32_t>{});  // now Stable
  ASSERT_EQ(parts(b2).size(), 2u);
  ASSERT_EQ(a3.member_epoch(), b2.member_epoch());
  ASSERT_EQ(commit(group, "t", 0, 7, a3.member_epoch(), a.member_id()), ev1::NONE);
  // The Stable group's record (the writer thread's) and the commit reach the log, then the
  // coordinator fails over.
  ASSERT_TRUE(gannet::testing::wait_until([&] { return logs_[0]->log_end_offset() >= before + 2; }, 1500ms, 5ms));
  start_coordinator(/*epoch=*/2);
  coord_->set_topic_counts([] { return TopicPartitionCounts([](const std::string& t) { return t == "t" ? 4 : -1; }); });
  // Both heartbeat on at their epochs with their partitions: nothing moves, nobody rejoins.
  auto a4 = beat(group, a.member_id(), a3.member_epoch(), parts(a2));
  ASSERT_EQ(a4.error_code(), ev1::NONE) << a4.error_message();
  EXPECT_EQ(a4.member_epoch(), a3.member_epoch());
  EXPECT_FALSE(a4.has_assignment() && parts(a4) != parts(a2)) << "A's partitions moved";
  auto b3 = beat(group, b.member_id(), b2.member_epoch(), parts(b2));
  ASSERT_EQ(b3.error_code(), ev1::NONE) << b3.error_message();
  EXPECT_EQ(b3.member_epoch(), b2.member_epoch());
  // Commits with the epochs go on; the offset committed before is there.
  EXPECT_EQ(commit(group, "t", 0, 8, a4.member_epoch(), a.member_id()), ev1::NONE);
  EXPECT_EQ(commit(group, "t", 0, 9, a4.member_epoch() - 1, a.member_id()), ev1::STALE_MEMBER_EPOCH);
  // A member that stops heartbeating still goes when its session ends on the new coordinator.
  std::vector<int32_t> owned = parts(a2);
  int32_t epoch = a4.member_epoch();
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (owned.size() != 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    auto r = beat(group, a.member_id(), epoch, owned);
    ASSERT_EQ(r.error_code(), ev1::NONE) << r.error_message();
    epoch = r.member_epoch();
    if (r.has_assignment()) owned = parts(r);
  }
  EXPECT_EQ(owned, (std::vector<int32_t>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace gannet::broker
