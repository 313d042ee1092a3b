// Edge cases found by an independent review of storage/: hostile headers, offsets near 2^31 and
// 2^63, oversized batches, reads racing truncation, writes after close or delete, and the order
// of truncation and recovery-point checkpoints. Each test failed before its fix.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/byte_order.h"
#include "common/clock.h"
#include "storage/log.h"
#include "storage/log_manager.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

namespace f = batch_field;

std::span<uint8_t> as_span(std::string& s) { return {reinterpret_cast<uint8_t*>(s.data()), s.size()}; }

std::string batch(const std::string& value, int64_t ts, BatchOptions o = {}) {
  RecordBatchBuilder b(o);
  b.add(ts, std::string_view("k"), std::string_view(value));
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

// Rewrites header fields of a built batch and fixes its CRC (what any producer can send).
void patch(std::string& b, std::optional<int32_t> last_offset_delta, std::optional<int32_t> record_count,
           std::optional<int64_t> base_offset = std::nullopt) {
  auto* p = reinterpret_cast<uint8_t*>(b.data());
  if (last_offset_delta) store_be32(p + f::kLastOffsetDelta, static_cast<uint32_t>(*last_offset_delta));
  if (record_count) store_be32(p + f::kRecordCount, static_cast<uint32_t>(*record_count));
  if (base_offset) store_be64(p + f::kBaseOffset, static_cast<uint64_t>(*base_offset));
  store_be32(p + f::kCrc, RecordBatchView(p, b.size()).compute_crc());
}

std::unique_ptr<Log> open_log(FileSystem* fs, Clock* clock, const std::string& dir, const LogConfig& cfg,
                              std::optional<int64_t> rp = std::nullopt,
                              std::function<Status()> on_lowered = nullptr) {
  Log::Options o;
  o.fs = fs;
  o.clock = clock;
  o.config = cfg;
  o.recovery_point = rp;
  o.on_recovery_point_lowered = std::move(on_lowered);
  auto r = Log::open(dir, o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? std::move(r).value() : nullptr;
}

// Every batch served from the log start, checked for CRC validity.
::testing::AssertionResult all_valid(const Log& log, int64_t* batches = nullptr) {
  if (log.log_end_offset() == log.log_start_offset()) return ::testing::AssertionSuccess();
  auto r = log.read(log.log_start_offset(), size_t{1} << 30);
  if (!r.ok()) return ::testing::AssertionFailure() << "read: " << r.error().to_string();
  std::string bytes;
  auto st = r->copy_to(&bytes);
  if (!st.ok()) return ::testing::AssertionFailure() << "copy: " << st.error().to_string();
  size_t pos = 0;
  int64_t n = 0;
  while (pos < bytes.size()) {
    auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, SIZE_MAX);
    if (!size.ok() || *size > bytes.size() - pos) return ::testing::AssertionFailure() << "bad header at " << pos;
    auto v = validate_batch(p, *size);
    if (!v.ok()) return ::testing::AssertionFailure() << "served batch at " << pos << ": " << v.error().to_string();
    pos += *size;
    ++n;
  }
  if (batches) *batches = n;
  return ::testing::AssertionSuccess();
}

// ---- 1. A segment can span more than 2^31 offsets; recovery then cuts flushed data ------------
//
// FORMAT.md: "Relative offsets ... are 32-bit: a segment rolls before either would overflow."
// maybe_roll_locked (log.cc) checks the span only per request and rolls to the log end, so one
// request whose own offsets span > INT32_MAX lands in one segment. Segment::rebuild (segment.cc)
// then treats `last_offset - base_offset_ > INT32_MAX` as corruption and truncates: an
// acknowledged, flushed batch is lost at the next unclean start. The leader accepts any
// lastOffsetDelta >= recordCount - 1 from a client, so one produce request triggers it.
TEST(LogEdgeTest, LeaderAppendSpanningOver2To31OffsetsIsRefusedAndLeavesTheLogUntouched) {
  // Fixed by refusing: a producer batch must hold one record per offset it spans, so a request
  // can never span more offsets than a segment can index.
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-0", LogConfig{});
  ASSERT_NE(log, nullptr);
  std::string req = batch("a", clock.now_ms());
  std::string wide = batch("b", clock.now_ms());
  patch(wide, INT32_MAX, 1);  // one record, offsets [base, base + 2^31 - 1]
  req += wide;
  auto r = log->append(as_span(req), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidRecord);
  EXPECT_EQ(log->log_end_offset(), 0);
  std::string ok = batch("c", clock.now_ms());
  ASSERT_TRUE(log->append(as_span(ok), 0).ok());
  ASSERT_TRUE(log->flush().ok());
  log.reset();
  log = open_log(&fs, &clock, "/d/t-0", LogConfig{}, /*rp=*/0);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 1);
}

// A single follower batch whose span (from the log end) no segment rolled at the log end could
// index is refused with a typed error, and the log is untouched.
TEST(LogEdgeTest, FollowerBatchSpanningOver2To31OffsetsIsRefused) {
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-1", LogConfig{});
  ASSERT_NE(log, nullptr);
  std::string first = batch("a", clock.now_ms());
  patch(first, 0, 1, /*base=*/0);
  ASSERT_TRUE(log->append_as_follower(as_span(first)).ok());
  std::string wide = batch("b", clock.now_ms());
  patch(wide, 1'200'000'000, 1, /*base=*/1'000'000'000);
  auto r = log->append_as_follower(as_span(wide));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidOffset);
  EXPECT_EQ(log->log_end_offset(), 1);
  ASSERT_TRUE(log->flush().ok());
  log.reset();
  log = open_log(&fs, &clock, "/d/t-1", LogConfig{});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 1);
}

// ---- 2. Batches over 1 GiB are accepted but cannot be read or recovered ----------------------
//
// segment.cc kMaxScannableBatch = 1 GiB ("the log never accepts one (the largest
// max.message.bytes is below it)"), but LogConfig::validate allows max.message.bytes up to
// INT32_MAX and append_as_follower uses INT32_MAX. Such a batch is written, then every scan
// (position_of, recovery) rejects it: reads fail with kRecordTooLarge and recovery truncates it.
TEST(LogEdgeTest, BatchesLargerThan1GiBAreRefusedEverywhere) {
  // Fixed by capping: max.message.bytes may not exceed 1 GiB and neither may a follower batch,
  // so every accepted batch is one recovery can scan.
  LogConfig cfg;
  cfg.max_message_bytes = INT32_MAX;
  EXPECT_FALSE(cfg.validate().ok());
  cfg.max_message_bytes = 1 << 30;
  EXPECT_TRUE(cfg.validate().ok());
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/big", LogConfig{});
  ASSERT_NE(log, nullptr);
  // A header claiming 1 GiB + 1 KiB: refused before anything is read past the header.
  std::string b = batch("x", clock.now_ms());
  const uint32_t length = (1u << 30) + 1024 - 12;
  b[8] = static_cast<char>(length >> 24);
  b[9] = static_cast<char>(length >> 16);
  b[10] = static_cast<char>(length >> 8);
  b[11] = static_cast<char>(length);
  auto r = log->append_as_follower(as_span(b));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kRecordTooLarge);
  EXPECT_EQ(log->log_end_offset(), 0);
}

// ---- 3. A read racing with a truncation fails with kCorruptMessage instead of retrying -------
//
// Log::read retries on a generation change only when it reaches the end; an error from
// Segment::position_of / batch_boundary_before (a scan that hits the bytes truncate_to just cut,
// log.cc GANNET_ASSIGN_OR_RETURN inside the loop) is returned at once, so a consumer sees
// CORRUPT_MESSAGE for a healthy log.
TEST(LogEdgeTest, ReadsRacingWithTruncationNeverFail) {
  SimFileSystem fs;
  ManualClock clock;
  LogConfig cfg;
  cfg.index_interval_bytes = 1 << 20;  // no index entries: every lookup scans from position 0
  auto log = open_log(&fs, &clock, "/d/t-2", cfg);
  ASSERT_NE(log, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::atomic<int> reads{0};
  std::string first_error;
  std::mutex mu;
  std::thread reader([&] {
    while (!done.load()) {
      const int64_t end = log->log_end_offset();
      if (end == 0) continue;
      auto r = log->read(end - 1, 1 << 20);
      reads.fetch_add(1);
      if (!r.ok() && r.error().code != Errc::kOffsetOutOfRange) {
        std::lock_guard<std::mutex> l(mu);
        if (errors.fetch_add(1) == 0) first_error = r.error().to_string();
      }
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int rounds = 0;
  while (std::chrono::steady_clock::now() < deadline && errors.load() == 0) {
    for (int i = 0; i < 40; ++i) {
      std::string b = batch(std::string(100, 'a' + i % 26), clock.now_ms());
      ASSERT_TRUE(log->append(as_span(b), 0).ok());
    }
    ASSERT_TRUE(log->truncate_to(log->log_end_offset() - 30).ok());
    ++rounds;
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(errors.load(), 0) << "after " << rounds << " truncations and " << reads.load()
                              << " reads, first error: " << first_error;
}

// ---- 4. LogManager::close() does not fence its logs -----------------------------------------
//
// Log::close() leaves the log usable, and LogManager::close() writes .clean-shutdown after
// closing them; an append that arrives after close() (a fetcher or producer not yet stopped)
// succeeds, is never synced, and the next start trusts every segment without a CRC check
// (clean_shutdown => recover_from = bases.size()). After a power loss the torn batch is served.
TEST(LogEdgeTest, AppendAfterLogManagerCloseIsNotTrustedAfterACrash) {
  int corrupt = 0, appended_after_close = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SimFileSystem fs;
    ManualClock clock;
    LogManager::Options o;
    o.data_dir = "/data";
    o.fs = &fs;
    o.clock = &clock;
    o.background = false;
    auto m = LogManager::open(o);
    ASSERT_TRUE(m.ok());
    auto log = (*m)->create(TopicPartition{"t", 0});
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) {
      std::string b = batch(std::string(300, 'a' + i), clock.now_ms());
      ASSERT_TRUE((*log)->append(as_span(b), 0).ok());
    }
    ASSERT_TRUE((*m)->close().ok());
    for (int i = 0; i < 5; ++i) {
      std::string b = batch(std::string(300, 'k' + i), clock.now_ms());
      if ((*log)->append(as_span(b), 0).ok()) ++appended_after_close;
    }
    std::mt19937_64 rng(seed);
    fs.crash(rng);
    log->reset();
    m->reset();
    auto m2 = LogManager::open(o);
    ASSERT_TRUE(m2.ok()) << m2.error().to_string();
    auto l2 = (*m2)->get(TopicPartition{"t", 0});
    ASSERT_NE(l2, nullptr);
    if (!all_valid(*l2)) ++corrupt;
  }
  EXPECT_EQ(appended_after_close, 0) << "appends after LogManager::close() succeed";
  EXPECT_EQ(corrupt, 0) << "seeds whose log served a torn batch after a 'clean' restart";
}

// ---- 5. record_count is trusted and summed in int32 -----------------------------------------
//
// append_locked: `r.record_count += b.record_count` (int32, UB on overflow) with record counts
// straight from the client's header (never checked against the records). The wrapped negative sum
// goes into unflushed_messages_, so flush.messages=1 does not flush.
TEST(LogEdgeTest, FlushMessagesHoldsForHostileRecordCounts) {
  SimFileSystem fs;
  ManualClock clock;
  LogConfig cfg;
  cfg.flush_messages = 1;
  auto log = open_log(&fs, &clock, "/d/t-3", cfg);
  ASSERT_NE(log, nullptr);
  std::string req = batch("a", clock.now_ms());
  patch(req, INT32_MAX - 1, INT32_MAX);  // claims 2^31-1 records; holds one
  req += batch("b", clock.now_ms());
  auto r = log->append(as_span(req), 0);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_GE(r->record_count, 0) << "record count overflowed";
  EXPECT_EQ(log->durable_offset(), log->log_end_offset()) << "flush.messages=1 did not flush";
}

// ---- 6. The truncation's checkpoint callback runs after append_mu_ is released ---------------
//
// Log::truncate_to lowers recovery_point_, releases append_mu_, then calls
// on_recovery_point_lowered. Appends (and rolls) may run in that window; if the machine dies
// before the callback persisted the lower value, the stale checkpoint makes recovery trust the
// unsynced segments written after the truncation (design-notes.md #3 promises it cannot).
// The callback below plays the concurrent appender and "dies" before persisting.
TEST(LogEdgeTest, NoAppendCanRunBetweenTruncationAndItsCheckpoint) {
  // Fixed by calling the listener under the append lock: an append started from another thread
  // while the checkpoint is being written waits until it is written.
  SimFileSystem fs;
  ManualClock clock;
  Log* raw = nullptr;
  std::atomic<bool> appended{false};
  bool appended_during_callback = true;
  std::thread producer;
  auto cb = [&]() -> Status {
    producer = std::thread([&] {
      std::string b = batch(std::string(200, 'n'), clock.now_ms());
      EXPECT_TRUE(raw->append(as_span(b), 1).ok());
      appended.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    appended_during_callback = appended.load();
    return {};
  };
  auto log = open_log(&fs, &clock, "/d/t-4", LogConfig{}, std::nullopt, cb);
  ASSERT_NE(log, nullptr);
  raw = log.get();
  for (int i = 0; i < 20; ++i) {
    std::string b = batch(std::string(200, 'o'), clock.now_ms());
    ASSERT_TRUE(log->append(as_span(b), 0).ok());
  }
  ASSERT_TRUE(log->truncate_to(2).ok());
  producer.join();
  EXPECT_FALSE(appended_during_callback) << "an append ran before the checkpoint was written";
  EXPECT_TRUE(appended.load());
  EXPECT_EQ(log->log_end_offset(), 3);
}

// ---- 7. leader-epoch-checkpoint parsing is not exact ----------------------------------------
//
// FORMAT.md: "Anything that does not parse exactly is reported as corruption rather than guessed
// at." LeaderEpochCache::load uses istream >>, which accepts signs, any whitespace layout and
// negative epochs/offsets.
TEST(LogEdgeTest, LeaderEpochCheckpointIsParsedExactly) {
  SimFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/d/t-5").ok());
  for (const char* text : {"0 1 +3 +7", "0\n1\n-3 -7\n", "00\n01\n3\n7\n"}) {
    ASSERT_TRUE(write_file_atomic(&fs, "/d/t-5/leader-epoch-checkpoint", text).ok());
    auto c = LeaderEpochCache::load(&fs, "/d/t-5");
    EXPECT_FALSE(c.ok()) << "accepted malformed checkpoint: " << ::testing::PrintToString(std::string(text));
  }
}

// ---- 8. offset_for_timestamp gives up on a segment after one batch with a lying header -------
//
// log.cc offset_for_timestamp: when the first batch whose header maxTimestamp >= T holds no
// record >= T (the leader stores client headers unverified, so maxTimestamp can be anything), the
// record loop `break`s and the outer loop `continue`s with the NEXT SEGMENT, skipping later
// batches of the same segment that do qualify.
TEST(LogEdgeTest, OffsetForTimestampLooksPastABatchWithAnInflatedMaxTimestamp) {
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-6", LogConfig{});
  ASSERT_NE(log, nullptr);
  std::string b1 = batch("a", 100);
  store_be64(reinterpret_cast<uint8_t*>(b1.data()) + f::kMaxTimestamp, 1'000'000);
  patch(b1, std::nullopt, std::nullopt);
  ASSERT_TRUE(log->append(as_span(b1), 0).ok());
  std::string b2 = batch("b", 200);
  ASSERT_TRUE(log->append(as_span(b2), 0).ok());
  auto r = log->offset_for_timestamp(150);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_TRUE(r->has_value()) << "record at offset 1 (ts 200) not found";
  EXPECT_EQ((*r)->offset, 1);
  EXPECT_EQ((*r)->timestamp, 200);
}

// ---- 9. Signed overflow on a client-chosen base offset (UB; visible under UBSan) ------------
//
// The leader ignores the producer's baseOffset, but BatchInfo::of (segment.h) computes
// RecordBatchView::last_offset() = base_offset() + last_offset_delta() on it first
// (record_batch.h), which overflows int64 for baseOffset near INT64_MAX. Functionally the wrap
// cancels out at -O0, so this test passes in a normal build; run it with
// --copt=-fsanitize=signed-integer-overflow to see "runtime error: signed integer overflow".
TEST(LogEdgeTest, LeaderAppendWithHostileBaseOffsetHasNoSignedOverflow) {
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-7", LogConfig{});
  ASSERT_NE(log, nullptr);
  RecordBatchBuilder b;
  b.add(1, std::nullopt, std::string_view("a"));
  b.add(2, std::nullopt, std::string_view("b"));
  std::string req = *b.build();
  patch(req, std::nullopt, std::nullopt, INT64_MAX);
  auto r = log->append(as_span(req), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, 0);
  EXPECT_EQ(r->last_offset, 1);
}

// ---- 10. A refused follower request has already restarted the log ---------------------------
//
// append_as_follower (log.cc) calls truncate_fully_locked() for a far first batch on an empty
// log BEFORE it checks that the request's batches increase; a request then refused with
// kInvalidOffset has moved the log's start and end and cleared its epoch cache.
TEST(LogEdgeTest, RefusedFollowerRequestLeavesTheLogUnchanged) {
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-8", LogConfig{});
  ASSERT_NE(log, nullptr);
  std::string req = batch("a", 1);
  patch(req, 0, 1, 5'000'000'000);
  std::string back = batch("b", 2);
  patch(back, 0, 1, 4'999'999'000);  // goes backwards: the request is invalid
  req += back;
  auto r = log->append_as_follower(as_span(req));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidOffset);
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 0) << "a refused append restarted the log";
}

// ---- 11. Follower gaps between 2^30 and 2^31 are refused though they fit a new segment -------
//
// design-notes.md #4: only a batch "more than 2^31 past the log end" is refused on a non-empty
// log. log.cc refuses at `infos.front().base_offset - expected > INT32_MAX / 2` (2^30), even
// when rolling at the log end would leave the batch well inside a segment's 32-bit range: the
// follower can never replicate past it.
TEST(LogEdgeTest, FollowerGapBelow2To31IsAccepted) {
  SimFileSystem fs;
  ManualClock clock;
  auto log = open_log(&fs, &clock, "/d/t-9", LogConfig{});
  ASSERT_NE(log, nullptr);
  std::string a = batch("a", 1);
  patch(a, 0, 1, 0);
  ASSERT_TRUE(log->append_as_follower(as_span(a)).ok());
  std::string b = batch("b", 2);
  patch(b, 0, 1, 1'000'000'000);  // a compaction gap that fits the active segment
  ASSERT_TRUE(log->append_as_follower(as_span(b)).ok());
  std::string c = batch("c", 3);
  const int64_t far = int64_t{1'000'000'001} + 1'500'000'000;  // 1.5e9 (< 2^31) past the log end
  patch(c, 0, 1, far);
  auto r = log->append_as_follower(as_span(c));
  EXPECT_TRUE(r.ok()) << r.error().to_string();
}

// ---- 12. A removed log stays writable and writes into its successor's directory -------------
//
// LogManager::remove (log_manager.cc) renames and deletes the directory but does not close or
// fence the Log, which still holds its old path (Log::dir_). A holder that appends afterwards
// (a fetcher or producer not yet stopped) rolls a segment by path; if the partition was created
// again meanwhile, that file lands in the new log's directory, and the next start adopts the old
// incarnation's data when the new log reaches its base offset (contiguity holds).
TEST(LogEdgeTest, RemovedLogCannotWriteIntoARecreatedPartition) {
  SimFileSystem fs;
  ManualClock clock;
  LogManager::Options o;
  o.data_dir = "/data";
  o.fs = &fs;
  o.clock = &clock;
  o.background = false;
  o.default_config.segment_bytes = 3 * static_cast<int64_t>(batch(std::string(50, 'x'), 0).size());
  auto m = LogManager::open(o);
  ASSERT_TRUE(m.ok());
  const TopicPartition tp{"t", 0};
  auto old_log = (*m)->create(tp);
  ASSERT_TRUE(old_log.ok());
  for (int i = 0; i < 3; ++i) {
    std::string b = batch(std::string(50, 'o'), clock.now_ms());
    ASSERT_TRUE((*old_log)->append(as_span(b), 0).ok());
  }
  ASSERT_TRUE((*m)->remove(tp).ok());
  auto new_log = (*m)->create(tp);
  ASSERT_TRUE(new_log.ok());
  std::string b = batch(std::string(50, 'o'), clock.now_ms());
  auto late = (*old_log)->append(as_span(b), 0);  // rolls: creates 00000000000000000003.log
  EXPECT_FALSE(late.ok()) << "append to a removed log succeeded";
  auto names = fs.list_dir("/data/t-0");
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) {
    EXPECT_NE(n, "00000000000000000003.log") << "the removed log wrote into the new partition directory";
  }
  // The new incarnation reaches offset 3; after an unclean restart it serves the old data.
  for (int i = 0; i < 3; ++i) {
    std::string nb = batch(std::string(50, 'n'), clock.now_ms());
    ASSERT_TRUE((*new_log)->append(as_span(nb), 0).ok());
  }
  ASSERT_TRUE((*new_log)->flush().ok());
  ASSERT_TRUE((*m)->checkpoint_recovery_points().ok());
  old_log->reset();
  new_log->reset();
  m->reset();
  auto m2 = LogManager::open(o);
  ASSERT_TRUE(m2.ok()) << m2.error().to_string();
  auto l2 = (*m2)->get(tp);
  ASSERT_NE(l2, nullptr);
  EXPECT_EQ(l2->log_end_offset(), 3) << "the recreated partition adopted the removed log's segment";
}

// ---- 13. Logs outlive their LogManager, but their callback does not ---------------------------
//
// LogManager hands out shared_ptr<Log> whose on_recovery_point_lowered captures the raw `this`
// of the manager (log_manager.cc, load_all and create_locked). A truncation after the manager is
// destroyed (shutdown ordering in the broker) calls checkpoint_recovery_points() on freed memory:
// heap-use-after-free (reported by --copt=-fsanitize=address; a plain build may pass or crash).
TEST(LogEdgeTest, TruncatingALogAfterItsManagerIsGoneIsSafe) {
  SimFileSystem fs;
  ManualClock clock;
  LogManager::Options o;
  o.data_dir = "/data";
  o.fs = &fs;
  o.clock = &clock;
  o.background = false;
  std::shared_ptr<Log> log;
  {
    auto m = LogManager::open(o);
    ASSERT_TRUE(m.ok());
    auto l = (*m)->create(TopicPartition{"t", 0});
    ASSERT_TRUE(l.ok());
    log = *l;
    for (int i = 0; i < 3; ++i) {
      std::string b = batch("x", clock.now_ms());
      ASSERT_TRUE(log->append(as_span(b), 0).ok());
    }
  }
  (void)log->truncate_to(1);
  SUCCEED();
}

// ---- create_many defers directory syncs -----------------------------------------------------
//
// LogManager::create_many opens new logs without syncing their directories (defer_new_dir_sync)
// and syncs the data directory once. The first flush() of such a log must make its segment's
// name durable: a crash after a flush may not lose what was flushed. (Today the first append's
// leader-epoch checkpoint also syncs the directory; this test guards the property either way.)
TEST(LogEdgeTest, CreateManyKeepsFlushedDataAcrossACrash) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SimFileSystem fs;
    ManualClock clock;
    LogManager::Options o;
    o.data_dir = "/data";
    o.fs = &fs;
    o.clock = &clock;
    o.background = false;
    auto m = LogManager::open(o);
    ASSERT_TRUE(m.ok());
    std::vector<LogManager::NewLog> logs;
    for (int p = 0; p < 8; ++p) logs.push_back({TopicPartition{"t", p}, std::nullopt, std::string(16, char('a' + p))});
    ASSERT_TRUE((*m)->create_many(logs).ok());
    EXPECT_EQ((*m)->partitions().size(), 8u);
    EXPECT_EQ((*m)->topic_id(TopicPartition{"t", 3}), std::string(16, 'd'));
    // Logs 0-3 get a flushed batch; 4-7 stay empty.
    for (int p = 0; p < 4; ++p) {
      auto log = (*m)->get(TopicPartition{"t", p});
      std::string b = batch("v" + std::to_string(p), clock.now_ms());
      ASSERT_TRUE(log->append(as_span(b), 0).ok());
      ASSERT_TRUE(log->flush().ok());
    }
    std::mt19937_64 rng(seed);
    fs.crash(rng);
    m->reset();
    auto m2 = LogManager::open(o);
    ASSERT_TRUE(m2.ok()) << m2.error().to_string();
    for (int p = 0; p < 8; ++p) {
      auto log = (*m2)->get(TopicPartition{"t", p});
      ASSERT_NE(log, nullptr) << "seed " << seed << ": partition " << p << " vanished";
      EXPECT_EQ(log->log_end_offset(), p < 4 ? 1 : 0) << "seed " << seed << ": partition " << p;
    }
  }
}

}  // namespace
}  // namespace gannet::storage
