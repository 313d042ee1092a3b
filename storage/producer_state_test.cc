// The idempotent producer's sequence rules (producer_state.h) and how a Log keeps the state:
// duplicates answered with their original offsets, rebuilt after a restart, a truncation and a
// corrupt snapshot, kept across a clean close, expired and bounded.
#include "storage/producer_state.h"

#include <gtest/gtest.h>

#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

ProducerBatchInfo batch(int64_t pid, int16_t epoch, int32_t seq, int32_t records, int64_t offset) {
  ProducerBatchInfo b;
  b.producer_id = pid;
  b.producer_epoch = epoch;
  b.base_sequence = seq;
  b.last_offset_delta = records - 1;
  b.base_offset = offset;
  b.last_offset = offset + records - 1;
  return b;
}

// Checks and, when accepted, commits one batch; returns the error code or "ok" / "dup@offset".
std::string offer(ProducerStateTable& t, const ProducerBatchInfo& b) {
  ProducerStateTable::Pending pending;
  auto r = t.check(b, 0, &pending);
  if (!r.ok()) return errc_name(r.error().code);
  if (*r) return "dup@" + std::to_string((*r)->first_offset);
  t.commit(std::move(pending));
  return "ok";
}

TEST(ProducerState, SequenceRules) {
  ProducerStateTable t;
  // A producer never seen starts anywhere (KIP-360: its state may have expired).
  EXPECT_EQ(offer(t, batch(7, 0, 40, 5, 100)), "ok");
  EXPECT_EQ(offer(t, batch(7, 0, 45, 2, 105)), "ok");
  // A retry of either of its last batches is a duplicate, answered with the original offsets.
  EXPECT_EQ(offer(t, batch(7, 0, 40, 5, 999)), "dup@100");
  EXPECT_EQ(offer(t, batch(7, 0, 45, 2, 999)), "dup@105");
  // A gap, a repeat that matches no batch, and an older epoch are refused.
  EXPECT_EQ(offer(t, batch(7, 0, 48, 1, 107)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  EXPECT_EQ(offer(t, batch(7, 0, 41, 1, 107)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  EXPECT_EQ(offer(t, batch(7, -1, 47, 1, 107)), "INVALID_RECORD");
  // A new epoch starts at sequence 0, and then the old epoch is fenced.
  EXPECT_EQ(offer(t, batch(7, 1, 5, 1, 107)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
  EXPECT_EQ(offer(t, batch(7, 1, 0, 3, 107)), "ok");
  EXPECT_EQ(offer(t, batch(7, 0, 47, 1, 110)), "INVALID_PRODUCER_EPOCH");
  EXPECT_EQ(offer(t, batch(7, 1, 3, 1, 110)), "ok");
  // Other producers are independent; a batch without a producer is not checked.
  EXPECT_EQ(offer(t, batch(8, 3, 0, 1, 111)), "ok");
  EXPECT_EQ(offer(t, batch(-1, -1, -1, 4, 112)), "ok");
  EXPECT_EQ(t.size(), 2u);
}

TEST(ProducerState, SequencesWrapAfterIntMax) {
  ProducerStateTable t;
  const int32_t max = std::numeric_limits<int32_t>::max();
  EXPECT_EQ(last_sequence(max - 1, 3), 1);
  EXPECT_EQ(offer(t, batch(1, 0, max - 1, 2, 0)), "ok");  // max-1, max
  EXPECT_EQ(offer(t, batch(1, 0, 0, 2, 2)), "ok");        // wraps to 0
  EXPECT_EQ(offer(t, batch(1, 0, max - 1, 2, 9)), "dup@0");
  EXPECT_EQ(offer(t, batch(1, 0, 3, 1, 4)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
}

TEST(ProducerState, KeepsOnlyTheLastFiveBatches) {
  ProducerStateTable t;
  for (int i = 0; i < 7; ++i) ASSERT_EQ(offer(t, batch(1, 0, i, 1, i)), "ok");
  EXPECT_EQ(t.find(1)->batches.size(), 5u);
  EXPECT_EQ(offer(t, batch(1, 0, 2, 1, 50)), "dup@2");
  // The sixth-newest is no longer known: a retry that old is out of order, not a duplicate.
  EXPECT_EQ(offer(t, batch(1, 0, 1, 1, 50)), "OUT_OF_ORDER_SEQUENCE_NUMBER");
}

TEST(ProducerState, TransactionalBatchesAreRefused) {
  ProducerStateTable t;
  ProducerBatchInfo b = batch(1, 0, 0, 1, 0);
  b.transactional = true;
  ProducerStateTable::Pending pending;
  auto r = t.check(b, 0, &pending);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTransactionalBatch);
}

TEST(ProducerState, ExpiryAndTheBoundOnProducers) {
  ProducerStateTable t(/*max_producers=*/3);
  for (int64_t pid = 1; pid <= 3; ++pid) t.update(batch(pid, 0, 0, 1, pid), /*now_ms=*/pid * 100);
  t.update(batch(4, 0, 0, 1, 4), 400);  // over the bound: the least recently active (1) goes
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_NE(t.find(4), nullptr);
  EXPECT_EQ(t.expire(/*now_ms=*/450, /*expiration_ms=*/200), 1u);  // 2 idle since 200
  EXPECT_EQ(t.find(2), nullptr);
  EXPECT_EQ(t.size(), 2u);
}

TEST(ProducerState, SnapshotRoundTripsAndRejectsCorruption) {
  ProducerStateTable t;
  for (int i = 0; i < 7; ++i) t.update(batch(1, 2, i * 3, 3, i * 3), 1000 + i);
  t.update(batch(99, 0, 5, 1, 30), 5000);
  const std::string bytes = t.encode_snapshot(31);
  ProducerStateTable back;
  auto at = back.load_snapshot(bytes);
  ASSERT_TRUE(at.ok()) << at.error().to_string();
  EXPECT_EQ(*at, 31);
  EXPECT_TRUE(back == t);
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x20;
    ProducerStateTable x;
    EXPECT_FALSE(x.load_snapshot(bad).ok()) << "a flipped byte at " << i << " went unnoticed";
  }
  EXPECT_FALSE(back.load_snapshot(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_EQ(ProducerStateTable::parse_snapshot_name(ProducerStateTable::snapshot_name(1234)), 1234);
  EXPECT_FALSE(ProducerStateTable::parse_snapshot_name("00000000000000001234.log").has_value());
}

// ---- In a Log ----------------------------------------------------------------------------------

class ProducerLogTest : public ::testing::Test {
 protected:
  void open() {
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config_;
    auto log = Log::open("/data/t-0", o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(log).value();
  }
  std::string make(int64_t pid, int16_t epoch, int32_t seq, int records) {
    BatchOptions o;
    o.producer_id = pid;
    o.producer_epoch = epoch;
    o.base_sequence = seq;
    RecordBatchBuilder b(o);
    for (int i = 0; i < records; ++i) b.add(clock_.now_ms(), "k" + std::to_string(i), std::string(100, 'v'));
    return *b.build();
  }
  Result<AppendResult> append(std::string bytes) {
    return log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0);
  }

  SimFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<Log> log_;
};

TEST_F(ProducerLogTest, ARetriedBatchIsNotWrittenTwice) {
  open();
  ASSERT_TRUE(append(make(-1, -1, -1, 2)).ok());
  auto first = append(make(5, 0, 0, 3));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->base_offset, 2);
  EXPECT_FALSE(first->duplicate);
  auto again = append(make(5, 0, 0, 3));
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->base_offset, 2);
  EXPECT_EQ(again->last_offset, 4);
  EXPECT_EQ(log_->log_end_offset(), 5);
  // A request whose first batch was written and whose second is new writes only the second.
  auto mixed = append(make(5, 0, 0, 3) + make(5, 0, 3, 2));
  ASSERT_TRUE(mixed.ok()) << mixed.error().to_string();
  EXPECT_FALSE(mixed->duplicate);
  EXPECT_EQ(mixed->base_offset, 2);
  EXPECT_EQ(mixed->last_offset, 6);
  EXPECT_EQ(log_->log_end_offset(), 7);
  // A gap writes nothing of the request.
  auto gap = append(make(5, 0, 5, 1) + make(5, 0, 7, 1));
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.error().code, Errc::kOutOfOrderSequence);
  EXPECT_EQ(log_->log_end_offset(), 7);
  EXPECT_EQ(log_->producer_state().find(5)->batches.back().last_seq, 4);
}

TEST_F(ProducerLogTest, StateSurvivesCrashesCleanClosesTruncationAndBadSnapshots) {
  config_.segment_bytes = 1024;  // a roll (and a snapshot) every few batches
  open();
  int32_t seq = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(append(make(1 + i % 3, 0, seq, 2)).ok());
    if (i % 3 == 2) seq += 2;
  }
  const ProducerStateTable before = log_->producer_state();
  ASSERT_EQ(before.size(), 3u);
  int snapshots = 0;
  const std::vector<std::string> names = *fs_.list_dir("/data/t-0");
  for (const auto& n : names) snapshots += ProducerStateTable::parse_snapshot_name(n).has_value();
  EXPECT_EQ(snapshots, 2) << "the two newest snapshots are kept";
  auto same = [](const ProducerStateTable& a, const ProducerStateTable& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [pid, e] : a.entries()) {
      const ProducerEntry* o = b.find(pid);
      if (!o || o->epoch != e.epoch || o->batches != e.batches) return false;
    }
    return true;
  };
  // A crash (no close): rebuilt from the newest snapshot plus the active segment.
  log_.reset();
  open();
  EXPECT_TRUE(same(log_->producer_state(), before));
  // A retry of producer 2's last batch after the restart is still a duplicate.
  const ProducerBatch last2 = before.find(2)->batches.back();
  auto dup = append(make(2, 0, last2.first_seq, 2));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, last2.first_offset);
  // A clean close leaves a snapshot at the log end; the next open replays nothing.
  ASSERT_TRUE(log_->close().ok());
  log_.reset();
  EXPECT_TRUE(fs_.exists("/data/t-0/" + ProducerStateTable::snapshot_name(80)));
  open();
  EXPECT_TRUE(same(log_->producer_state(), before));
  // Truncation: the state is what the remaining log says.
  ASSERT_TRUE(log_->truncate_to(41).ok());
  const ProducerStateTable after_cut = log_->producer_state();
  const ProducerEntry* p1 = after_cut.find(1);
  ASSERT_NE(p1, nullptr);
  EXPECT_LT(p1->batches.back().last_offset, 41);
  EXPECT_EQ(p1->batches.back().last_offset, 37);  // batches of 2 records, producer 1 every third
  // Every snapshot corrupt: ignored (and removed), the state replayed from the whole log.
  const ProducerStateTable truncated = log_->producer_state();
  log_.reset();
  const std::vector<std::string> now_names = *fs_.list_dir("/data/t-0");
  for (const auto& n : now_names) {
    if (ProducerStateTable::parse_snapshot_name(n)) {
      ASSERT_TRUE(write_file_atomic(&fs_, "/data/t-0/" + n, "garbage").ok());
    }
  }
  open();
  EXPECT_TRUE(same(log_->producer_state(), truncated));
}

TEST_F(ProducerLogTest, AFollowerLearnsProducersFromTheBatchesItCopies) {
  open();
  std::string b = make(9, 4, 10, 2);
  set_base_offset(reinterpret_cast<uint8_t*>(b.data()), 0);
  ASSERT_TRUE(log_->append_as_follower(std::span<uint8_t>(reinterpret_cast<uint8_t*>(b.data()), b.size())).ok());
  const ProducerStateTable state = log_->producer_state();
  const ProducerEntry* e = state.find(9);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 4);
  EXPECT_EQ(e->batches.back(), (ProducerBatch{10, 11, 0, 1}));
  // Became leader: the producer's retry is a duplicate here too.
  auto dup = append(make(9, 4, 10, 2));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
}

TEST_F(ProducerLogTest, IdleProducersExpireWithRetention) {
  config_.producer_id_expiration_ms = 60'000;
  open();
  ASSERT_TRUE(append(make(1, 0, 0, 1)).ok());
  clock_.advance_ms(30'000);
  ASSERT_TRUE(append(make(2, 0, 0, 1)).ok());
  clock_.advance_ms(40'000);
  ASSERT_TRUE(log_->enforce_retention().ok());
  EXPECT_EQ(log_->producer_state().find(1), nullptr);
  EXPECT_NE(log_->producer_state().find(2), nullptr);
}

}  // namespace
}  // namespace gannet::storage
