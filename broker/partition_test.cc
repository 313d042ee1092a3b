// Review findings on broker::Partition (leader append / acks=all wait, follower fetch with
// last-fetched-epoch divergence, follower apply/truncate), against real storage::Logs on
// SimFileSystem. Two or three Partition objects play the replicas; `replicate` plays the replica
// fetcher (BrokerServer::fetch_loop) between them. Each test fails because of the bug it names.
#include "broker/partition.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::broker {
namespace {

using storage::Log;

std::string batch(int n, const std::string& tag = "v") {
  storage::RecordBatchBuilder b;
  for (int i = 0; i < n; ++i) b.add(1'700'000'000'000 + i, std::nullopt, std::string_view(tag + std::to_string(i)));
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

class PartitionTest : public ::testing::Test {
 protected:
  struct Replica {
    std::shared_ptr<Log> log;
    std::unique_ptr<Partition> part;
  };

  Replica& replica(int32_t id, storage::LogConfig config = {}) {
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config;
    auto r = Log::open("/data/" + std::to_string(id) + "/t-0", o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    Replica& rep = replicas_[id];
    rep.log = std::shared_ptr<Log>(std::move(r).value());
    rep.part = std::make_unique<Partition>(storage::TopicPartition{"t", 0}, "tid", rep.log, id);
    return rep;
  }
  Partition& p(int32_t id) { return *replicas_.at(id).part; }
  Log& log(int32_t id) { return *replicas_.at(id).log; }

  // Every replica learns the same metadata (as reconcile() does on each broker).
  void metadata(std::vector<int32_t> replicas, std::vector<int32_t> isr, int32_t leader, int32_t leader_epoch,
                int32_t partition_epoch, int32_t min_insync = 1) {
    for (auto& [id, r] : replicas_) {
      r.part->apply_metadata(PartitionMetadata{replicas, isr, leader, leader_epoch, partition_epoch}, min_insync,
                             now_);
    }
  }

  ProduceOutcome produce(int32_t leader, int records, int acks = 1) {
    std::string b = batch(records);
    ProduceOutcome o = p(leader).append_as_leader(&b, acks);
    EXPECT_EQ(o.error, gannet::v1::NONE) << o.message;
    return o;
  }

  // One replica-fetcher round trip from `follower` to `leader`, as fetch_loop does it.
  gannet::v1::ErrorCode fetch_once(int32_t follower, int32_t leader) {
    auto f = p(follower).follower_fetch_state(leader);
    if (!f) return gannet::v1::NOT_LEADER_OR_FOLLOWER;
    FetchOutcome r = p(leader).read(follower, f->fetch_offset, f->leader_epoch, f->last_fetched_epoch, 1 << 20, now_);
    return p(follower).apply_leader_response(f->leader_epoch, r);
  }
  gannet::v1::ErrorCode replicate(int32_t follower, int32_t leader, int rounds = 20) {
    gannet::v1::ErrorCode last = gannet::v1::NONE;
    for (int i = 0; i < rounds; ++i) {
      last = fetch_once(follower, leader);
      now_ += 10;
    }
    return last;
  }

  storage::SimFileSystem fs_;
  ManualClock clock_;
  int64_t now_ = 1000;
  std::map<int32_t, Replica> replicas_;
};

// Bug: a replica that led an epoch in which nothing was written keeps that epoch as the latest
// entry of its epoch cache (assigned at become-leader). As a follower of a leader that never saw
// that epoch it sends it as last_fetched_epoch; the leader answers "diverging" with an end offset
// equal to the follower's log end; the follower calls Log::truncate_to(log end), which returns
// early without touching the epoch cache, and the next fetch asks the same question again. The
// follower never fetches a record again (and never rejoins the ISR). Leadership moving away before
// the first produce (a leader crash or controlled shutdown right after topic creation, a
// preferred-leader election) is enough.
TEST_F(PartitionTest, FollowerThatLedAnEmptyEpochCatchesUpWithTheNewLeader) {
  replica(1);
  replica(2);
  // Epoch 0: broker 1 leads; nothing is produced. Broker 1 dies; broker 2 leads epoch 1.
  metadata({1, 2}, {1, 2}, /*leader=*/1, /*epoch=*/0, /*pepoch=*/0);
  metadata({1, 2}, {2}, /*leader=*/2, /*epoch=*/1, /*pepoch=*/1);
  produce(2, 5);
  EXPECT_EQ(replicate(1, 2), gannet::v1::NONE);
  EXPECT_EQ(log(1).log_end_offset(), log(2).log_end_offset())
      << "broker 1's epoch cache still ends with its empty epoch 0: "
      << log(1).epoch_cache().entries().size() << " entries, latest epoch "
      << log(1).epoch_cache().latest()->epoch;
}

// The same with data: leadership bounces 1 -> 2 -> 1 -> 2 with writes only in the first and last
// epochs (e.g. a controlled shutdown followed by a preferred-leader election).
TEST_F(PartitionTest, FollowerThatLedAnEmptyEpochInTheMiddleCatchesUp) {
  replica(1);
  replica(2);
  metadata({1, 2}, {1, 2}, 1, 0, 0);
  produce(1, 3);
  replicate(2, 1, 3);
  ASSERT_EQ(log(2).log_end_offset(), 3);
  metadata({1, 2}, {1, 2}, 2, 1, 1);  // 2 leads epoch 1, writes nothing
  replicate(1, 2, 3);
  metadata({1, 2}, {1, 2}, 1, 2, 2);  // 1 leads epoch 2 (preferred leader), writes nothing
  replicate(2, 1, 3);
  metadata({1, 2}, {1, 2}, 2, 3, 3);  // 2 leads again and takes writes
  produce(2, 4);
  replicate(1, 2);
  EXPECT_EQ(log(1).log_end_offset(), 7) << "broker 1 is stuck re-truncating to its own log end";
}

// Bug: a follower whose log ends below the leader's log start (it was down while retention
// deleted segments, or it is a new replica) is never repaired: the leader's read() returns
// OFFSET_OUT_OF_RANGE for the follower's fetch offset, apply_leader_response() just returns that
// error, and fetch_loop backs off and asks again, forever. (Kafka truncates the follower fully and
// restarts it at the leader's log start.)
TEST_F(PartitionTest, FollowerBelowTheLeadersLogStartRestartsThere) {
  storage::LogConfig small;
  small.segment_bytes = 512;
  small.segment_preallocate_bytes = 0;
  small.retention_bytes = 1024;
  small.retention_ms = -1;
  replica(2, small);
  // Broker 2 leads alone (broker 1 is down and out of the ISR); retention moves its log start.
  metadata({1, 2}, {2}, 2, 1, 0);
  for (int i = 0; i < 40; ++i) produce(2, 5);
  auto dropped = log(2).enforce_retention();
  ASSERT_TRUE(dropped.ok());
  ASSERT_GT(log(2).log_start_offset(), 0);
  // Broker 1 comes back with an empty log (or one ending below 2's log start).
  replica(1);
  metadata({1, 2}, {2}, 2, 1, 0);
  const auto last = replicate(1, 2);
  EXPECT_EQ(last, gannet::v1::NONE) << gannet::v1::ErrorCode_Name(last);
  EXPECT_EQ(log(1).log_end_offset(), log(2).log_end_offset())
      << "broker 1 is at " << log(1).log_end_offset() << ", broker 2's log starts at " << log(2).log_start_offset();
}

// Same, for a follower that has data (and an epoch the leader still knows) but ends below the
// leader's log start.
TEST_F(PartitionTest, LaggingFollowerWithDataBelowTheLeadersLogStartCatchesUp) {
  storage::LogConfig small;
  small.segment_bytes = 512;
  small.segment_preallocate_bytes = 0;
  small.retention_bytes = 1024;
  small.retention_ms = -1;
  replica(1);
  replica(2, small);
  metadata({1, 2}, {1, 2}, 2, 1, 0);
  produce(2, 5);
  replicate(1, 2, 3);
  ASSERT_EQ(log(1).log_end_offset(), 5);
  // Broker 1 stops fetching and leaves the ISR; 2 writes on and retention runs.
  metadata({1, 2}, {2}, 2, 1, 1);
  for (int i = 0; i < 40; ++i) produce(2, 5);
  ASSERT_TRUE(log(2).enforce_retention().ok());
  ASSERT_GT(log(2).log_start_offset(), 5);
  const auto last = replicate(1, 2);
  EXPECT_EQ(last, gannet::v1::NONE) << gannet::v1::ErrorCode_Name(last);
  EXPECT_EQ(log(1).log_end_offset(), log(2).log_end_offset());
}

// Bug: read() treats any replica_id >= 0 as a follower and reads up to the log end, whether or
// not that broker is a replica of the partition. A client (or a stray broker) that sets
// replica_id=7 reads records above the HW, which may never be committed (and may be truncated
// away after a leader change): consumers must only see offsets below the HW.
TEST_F(PartitionTest, FetchFromANonReplicaSeesNothingAboveTheHighWatermark) {
  replica(1);
  metadata({1, 2, 3}, {1, 2, 3}, 1, 0, 0);
  produce(1, 3, /*acks=*/1);
  ASSERT_LE(p(1).high_watermark(), 0) << "followers 2 and 3 have not fetched";
  FetchOutcome consumer = p(1).read(-1, 0, -1, -1, 1 << 20, now_);
  EXPECT_TRUE(consumer.records.empty());
  FetchOutcome stranger = p(1).read(/*replica_id=*/7, 0, -1, -1, 1 << 20, now_);
  EXPECT_NE(stranger.error, gannet::v1::NONE) << "broker 7 is not a replica";
  EXPECT_TRUE(stranger.records.empty()) << stranger.records.size()
                                        << " bytes of uncommitted records went to a non-replica";
}

// Bug: min.insync.replicas is only checked before the append. If the ISR then shrinks below it
// (followers stall past replica.lag.time.max.ms while the request waits), the HW moves to the
// leader's log end and the acks=all produce is acknowledged with one copy. Kafka answers
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (retriable in client/producer.cc, which expects it).
TEST_F(PartitionTest, AcksAllIsNotAcknowledgedAfterTheIsrShrankBelowMinInsync) {
  replica(1);
  metadata({1, 2, 3}, {1, 2, 3}, 1, 0, 0, /*min_insync=*/2);
  ProduceOutcome o = produce(1, 3, /*acks=*/-1);
  // Followers 2 and 3 stalled; the leader's shrink to {1} commits.
  metadata({1, 2, 3}, {1}, 1, 0, 1, /*min_insync=*/2);
  EXPECT_EQ(p(1).high_watermark(), 3);
  const auto e = p(1).wait_for_replication(o.last_offset, o.leader_epoch, 100);
  EXPECT_NE(e, gannet::v1::NONE) << "acknowledged with 1 in-sync replica, min.insync.replicas=2";
}

// Fixed bug (BrokerServer::isr_loop): when the AlterPartition call fails at the transport level
// (deadline, controller failover), the outcome is unknown — the controller may have committed it —
// but isr_loop called isr_proposal_failed(), which dropped the pending ISR. For an expansion, the HW then
// counts only the old ISR and can move past the joining follower's log end; when the committed
// expansion arrives, an ISR member lacks acknowledged records (and can be elected leader).
// The same sequence through the Partition API: proposal, "failed" (unknown outcome), appends
// the joining follower does not fetch, then the metadata with the expansion.
TEST_F(PartitionTest, UnknownOutcomeOfAnIsrExpansionDoesNotLetTheHwPassTheJoiningReplica) {
  replica(1);
  replica(2);
  replica(3);
  metadata({1, 2, 3}, {1, 2}, 1, 0, 0);
  produce(1, 5);
  replicate(2, 1, 2);
  replicate(3, 1, 2);
  ASSERT_EQ(p(1).high_watermark(), 5);
  auto proposal = p(1).isr_proposal(now_, 30'000);
  ASSERT_TRUE(proposal);
  ASSERT_EQ(proposal->isr, (std::vector<int32_t>{1, 2, 3}));
  p(1).isr_proposal_unknown(*proposal);  // what isr_loop does when the RPC's status is not OK
  // Follower 3 stalls at 5; the leader and follower 2 move on.
  produce(1, 5);
  replicate(2, 1, 2);
  // The controller had committed the expansion after all.
  metadata({1, 2, 3}, {1, 2, 3}, 1, 0, 1);
  EXPECT_LE(p(1).high_watermark(), log(3).log_end_offset())
      << "the HW passed ISR member 3's log end: losing leader 1 and electing 3 loses acknowledged records";
}

// Issue 14.1: the lost reply's resend is refused with INVALID_UPDATE_VERSION because the first
// send committed (the controller's partition epoch moved on). The leader dropped its pending ISR
// on that refusal, before its image showed the committed expansion, so in that window the HW
// counted only the old ISR and passed follower 3, which the controller already counts as in sync.
// The leader must keep counting the union (Kafka's "maximal ISR") until the metadata says which
// ISR holds.
TEST_F(PartitionTest, ARefusedResendOfALostIsrExpansionKeepsCountingTheUnionUntilTheMetadataTells) {
  replica(1);
  replica(2);
  replica(3);
  metadata({1, 2, 3}, {1, 2}, 1, 0, 0);
  produce(1, 5);
  replicate(2, 1, 2);
  replicate(3, 1, 2);
  auto proposal = p(1).isr_proposal(now_, 30'000);
  ASSERT_TRUE(proposal);
  ASSERT_EQ(proposal->isr, (std::vector<int32_t>{1, 2, 3}));
  p(1).isr_proposal_unknown(*proposal);  // the reply was lost; it committed
  auto resend = p(1).isr_proposal(now_, 30'000);
  ASSERT_TRUE(resend) << "the same proposal goes out again";
  EXPECT_EQ(resend->isr, proposal->isr);
  p(1).isr_proposal_failed(gannet::v1::INVALID_UPDATE_VERSION);  // the resend meets epoch 1
  // Follower 3 stalls at 5; the leader and follower 2 move on.
  produce(1, 5);
  replicate(2, 1, 2);
  EXPECT_EQ(p(1).high_watermark(), 5) << "the HW passed follower 3, whom the controller counts as in sync";
  // The metadata arrives: the expansion holds.
  metadata({1, 2, 3}, {1, 2, 3}, 1, 0, 1);
  EXPECT_LE(p(1).high_watermark(), log(3).log_end_offset());
  replicate(3, 1, 2);
  EXPECT_EQ(p(1).high_watermark(), 10);
}

// A refusal that says nothing about a newer partition state (INELIGIBLE_REPLICA: the controller
// saw the proposal and turned it down) ends the change: the HW counts the ISR the metadata names,
// and the next proposal can go out.
TEST_F(PartitionTest, AnIsrChangeRefusedOnItsMeritsIsDroppedAtOnce) {
  replica(1);
  replica(2);
  replica(3);
  metadata({1, 2, 3}, {1, 2}, 1, 0, 0);
  produce(1, 5);
  replicate(2, 1, 2);
  replicate(3, 1, 2);
  auto proposal = p(1).isr_proposal(now_, 30'000);
  ASSERT_TRUE(proposal);
  p(1).isr_proposal_failed(gannet::v1::INELIGIBLE_REPLICA);
  produce(1, 5);
  replicate(2, 1, 2);
  EXPECT_EQ(p(1).high_watermark(), 10) << "the refused expansion still holds the HW back";
  replicate(3, 1, 2);
  EXPECT_TRUE(p(1).isr_proposal(now_, 30'000)) << "a refused change blocks the next proposal";
}

// Issue 14.11: with flush.messages=1 the leader's append synced inside the partition lock, so a
// slow fsync stalled every follower fetch, consumer and other producer of the partition, and
// concurrent producers could not share fsyncs. The sync now runs outside the lock; the HW counts
// only synced records, so acks=all still means "on disk on every ISR member".
TEST_F(PartitionTest, AnAppendsFsyncDoesNotHoldThePartitionLock) {
  storage::LogConfig sync_each;
  sync_each.flush_messages = 1;
  replica(1, sync_each);
  metadata({1}, {1}, 1, 0, 0);
  produce(1, 2);
  EXPECT_EQ(p(1).high_watermark(), 2);
  std::promise<void> in_sync, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> armed{true};
  fs_.set_sync_hook([&](const std::string& path) {
    if (path.find(".log") == std::string::npos || !armed.exchange(false)) return;
    in_sync.set_value();
    released.wait();
  });
  auto producer = std::async(std::launch::async, [&] {
    std::string b = batch(3);
    return p(1).append_as_leader(&b, 1);
  });
  ASSERT_EQ(in_sync.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // The producer is inside its fsync. The partition answers meanwhile, and its HW does not yet
  // count the unsynced records.
  auto reader = std::async(std::launch::async, [&] { return p(1).high_watermark(); });
  const bool answered = reader.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
  EXPECT_TRUE(answered) << "the partition lock was held across the fsync";
  if (answered) {
    EXPECT_EQ(reader.get(), 2) << "the HW counted records not yet synced";
  }
  release.set_value();
  ProduceOutcome o = producer.get();
  EXPECT_EQ(o.error, gannet::v1::NONE) << o.message;
  EXPECT_EQ(p(1).high_watermark(), 5);
  fs_.set_sync_hook(nullptr);
}

// A long-polling follower request counts its fetch offset once, when it arrives: looks after a
// wake-up (when its sender may have died and restarted with fewer records) do not vouch again.
TEST_F(PartitionTest, OnlyAFetchsFirstLookCountsTheFollowersProgress) {
  replica(1);
  replica(2);
  metadata({1, 2}, {1, 2}, 1, 0, 0);
  produce(1, 5);
  EXPECT_EQ(p(1).high_watermark(), 0);
  FetchOutcome again = p(1).read(2, 5, 0, 0, 1 << 20, now_, /*count_progress=*/false);
  EXPECT_EQ(again.error, gannet::v1::NONE);
  EXPECT_EQ(p(1).high_watermark(), 0) << "a later look of a request vouched for the follower";
  FetchOutcome first = p(1).read(2, 5, 0, 0, 1 << 20, now_, /*count_progress=*/true);
  EXPECT_EQ(first.error, gannet::v1::NONE);
  EXPECT_EQ(p(1).high_watermark(), 5);
}

// The leader reads the log after its checks, outside its lock. If it stops leading in between and,
// as a follower of the new leader, truncates and appends the new leader's history under the same
// offsets, the read must not hand that history to a follower still on the old epoch (which would
// splice it onto its own divergent prefix, undetectably).
TEST_F(PartitionTest, AReadRacingALeadershipChangeServesNothing) {
  replica(1);
  replica(2);
  metadata({1, 2, 3}, {1, 2}, 1, 0, 0);
  produce(1, 10);
  replicate(2, 1, 1);
  bool fired = false;
  p(1).set_read_hook_for_test([&] {
    if (fired) return;
    fired = true;
    // Leadership moves to 3 (epoch 1); 1 truncates to 5 and takes 3's records 5..9.
    p(1).apply_metadata(PartitionMetadata{{1, 2, 3}, {1, 3}, 3, 1, 1}, 1, now_);
    ASSERT_TRUE(log(1).truncate_to(5).ok());
    storage::BatchOptions o;
    o.base_offset = 5;
    o.leader_epoch = 1;
    storage::RecordBatchBuilder b(o);
    for (int i = 0; i < 5; ++i) b.add(1'700'000'000'000, std::nullopt, std::string_view("new"));
    std::string data = *b.build();
    ASSERT_TRUE(log(1).append_as_follower(std::span<uint8_t>(reinterpret_cast<uint8_t*>(data.data()), data.size())).ok());
  });
  // Follower 2 (still on epoch 0) fetches from offset 5 of the old history.
  FetchOutcome r = p(1).read(2, 5, 0, 0, 1 << 20, now_);
  EXPECT_TRUE(r.records.empty()) << r.records.size() << " bytes of the new leader's history went to an old-epoch follower";
  EXPECT_EQ(r.error, gannet::v1::NOT_LEADER_OR_FOLLOWER);
}

// Long-poll wake-ups (FetchWaiter): an append, a HW move or a leadership change wakes the fetches
// watching that partition, and no other.

TEST_F(PartitionTest, AnAppendWakesTheFetchesWatchingItsPartitionOnly) {
  replica(1);
  replica(2);  // another partition, led by broker 2
  p(1).apply_metadata(PartitionMetadata{{1}, {1}, 1, 0, 0}, 1, now_);
  p(2).apply_metadata(PartitionMetadata{{2}, {2}, 2, 0, 0}, 1, now_);
  auto w = std::make_shared<FetchWaiter>();
  w->arm();
  p(1).watch(w);
  p(1).watch(w);  // watching twice is watching once
  produce(2, 1);
  EXPECT_FALSE(w->wait_until(std::chrono::steady_clock::now())) << "woken by another partition's append";
  produce(1, 1);
  EXPECT_TRUE(w->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  // One wake per watch: the next append finds nobody watching until the fetch watches again.
  w->arm();
  produce(1, 1);
  EXPECT_FALSE(w->wait_until(std::chrono::steady_clock::now()));
  p(1).watch(w);
  produce(1, 1);
  EXPECT_TRUE(w->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
}

TEST_F(PartitionTest, AHighWatermarkMoveOrALeaderChangeWakesTheWatchers) {
  replica(1);
  replica(2);
  metadata({1, 2}, {1, 2}, 1, 0, 0);
  produce(1, 2);
  auto consumer = std::make_shared<FetchWaiter>();
  consumer->arm();
  p(1).watch(consumer);  // a consumer waits at the HW, which the follower's next fetch moves
  fetch_once(2, 1);      // the follower copies the records: the HW does not move yet
  EXPECT_FALSE(consumer->wait_until(std::chrono::steady_clock::now()));
  fetch_once(2, 1);      // and reports having them: it does
  EXPECT_TRUE(consumer->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  consumer->arm();
  p(1).watch(consumer);
  metadata({1, 2}, {1, 2}, 2, 1, 1);  // leadership moves: the fetch must look again (and fail)
  EXPECT_TRUE(consumer->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
}

TEST_F(PartitionTest, ARetiredPartitionWakesItsWatchersAndEveryLaterWatchAtOnce) {
  replica(1);
  p(1).apply_metadata(PartitionMetadata{{1}, {1}, 1, 0, 0}, 1, now_);
  auto before = std::make_shared<FetchWaiter>();
  before->arm();
  p(1).watch(before);
  p(1).retire();  // the broker replaced or dropped it
  EXPECT_TRUE(before->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  // A fetch that looked the partition up before it was retired watches it afterwards: nothing
  // would ever wake it there, so the watch itself does.
  auto late = std::make_shared<FetchWaiter>();
  late->arm();
  p(1).watch(late);
  EXPECT_TRUE(late->wait_until(std::chrono::steady_clock::now()));
}

TEST_F(PartitionTest, AWaiterThatIsGoneIsDropped) {
  replica(1);
  p(1).apply_metadata(PartitionMetadata{{1}, {1}, 1, 0, 0}, 1, now_);
  // Fetches that ended without a wake (their deadline passed) on a partition that gets no data:
  // they must not pile up there.
  for (int i = 0; i < 1000; ++i) p(1).watch(std::make_shared<FetchWaiter>());  // each gone at once
  auto w = std::make_shared<FetchWaiter>();
  w->arm();
  p(1).watch(w);
  EXPECT_EQ(p(1).watchers_for_test(), 1u);
  produce(1, 1);
  EXPECT_TRUE(w->wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  EXPECT_EQ(p(1).watchers_for_test(), 0u);
}

// Issue 14 item 11: taking the lead wrote the leader-epoch checkpoint at once, with an fsync of
// the file and one of its directory, under the partition lock: a failover moving N leaderships to
// this broker cost 2N fsyncs one after the other before the last partition could serve. The new
// epoch is now written with its first batch: taking the lead costs no fsync, and the epoch is
// still on disk before any batch of it (a crash right after the append keeps both).
TEST_F(PartitionTest, TakingTheLeadCostsNoFsyncAndTheEpochIsDurableWithItsFirstBatch) {
  for (int32_t id = 1; id <= 20; ++id) replica(id);
  const uint64_t before = fs_.sync_count();
  for (int32_t id = 1; id <= 20; ++id) {
    p(id).apply_metadata(PartitionMetadata{{id}, {id}, id, 5, 5}, 1, now_);
    ASSERT_TRUE(p(id).is_leader());
  }
  EXPECT_EQ(fs_.sync_count(), before) << "taking 20 leaderships cost " << fs_.sync_count() - before << " fsyncs";
  EXPECT_EQ(log(1).epoch_cache().latest()->epoch, 5) << "the epoch is known in memory at once";
  produce(1, 3);
  ASSERT_TRUE(log(1).flush().ok());
  std::mt19937_64 rng(7);
  fs_.crash(rng);
  Log::Options o;
  o.fs = &fs_;
  o.clock = &clock_;
  auto reopened = Log::open("/data/1/t-0", o);
  ASSERT_TRUE(reopened.ok()) << reopened.error().to_string();
  EXPECT_EQ((*reopened)->log_end_offset(), 3);
  auto latest = (*reopened)->epoch_cache().latest();
  ASSERT_TRUE(latest.has_value()) << "a batch of epoch 5 survived the crash but its epoch did not";
  EXPECT_EQ(latest->epoch, 5);
  EXPECT_EQ(latest->start_offset, 0);
  // A leadership taken and lost without a batch leaves nothing on disk to undo.
  auto empty = Log::open("/data/2/t-0", o);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE((*empty)->epoch_cache().latest().has_value());
}

// The acks=-1 purgatory (issue 15): a parked wait completes exactly once, with the answer
// wait_for_replication gives, on the thread that moved the HW or the leadership, never under the
// partition's lock (the callbacks here call back into the partition).
TEST_F(PartitionTest, ReplicationWaitersCompleteOnceWithTheRightAnswer) {
  replica(1);
  replica(2);
  metadata({1, 2}, {1, 2}, 1, 1, 1, /*min_insync=*/2);
  std::vector<std::pair<int, gannet::v1::ErrorCode>> results;
  auto park = [&](int tag, int64_t last) {
    return p(1).on_replicated(last, 1, [&, tag](gannet::v1::ErrorCode e) {
      (void)p(1).high_watermark();  // would deadlock under the partition's lock
      results.emplace_back(tag, e);
    });
  };
  const ProduceOutcome o = produce(1, 5);  // offsets 0-4
  const uint64_t a = park(1, o.last_offset);
  const uint64_t b = park(2, o.last_offset);
  EXPECT_NE(a, 0u);
  EXPECT_EQ(p(1).replication_waiters(), 2u);
  p(1).expire_replication_wait(b);
  p(1).expire_replication_wait(b);  // once only
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], std::make_pair(2, gannet::v1::REQUEST_TIMED_OUT));
  // The follower fetches everything: the HW passes offset 4 and completes waiter 1.
  ASSERT_EQ(fetch_once(2, 1), gannet::v1::NONE);
  ASSERT_EQ(fetch_once(2, 1), gannet::v1::NONE);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1], std::make_pair(1, gannet::v1::NONE));
  p(1).expire_replication_wait(a);  // already completed: nothing happens
  EXPECT_EQ(results.size(), 2u);
  // Already replicated: answered at once, id 0.
  EXPECT_EQ(park(3, o.last_offset), 0u);
  EXPECT_EQ(results.back(), std::make_pair(3, gannet::v1::NONE));
  // A wait in a leadership that ends: NOT_LEADER_OR_FOLLOWER when the metadata moves the lead.
  const ProduceOutcome o2 = produce(1, 1);
  park(4, o2.last_offset);
  metadata({1, 2}, {1, 2}, 2, 2, 2, 2);
  EXPECT_EQ(results.back(), std::make_pair(4, gannet::v1::NOT_LEADER_OR_FOLLOWER));
  EXPECT_EQ(p(1).replication_waiters(), 0u);
}

}  // namespace
}  // namespace gannet::broker
