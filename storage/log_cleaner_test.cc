// Tests of log compaction (storage/log_cleaner.h) on SimFileSystem with a ManualClock: what a
// clean keeps, reads and follower appends across the gaps it leaves, tombstones and their
// delete horizon, compressed batches, null keys, appends and reads racing a clean, a swap
// abandoned after a truncation, the map's byte budget, crashes at every step of a clean and at
// random points (seeded), and the log manager's cleaner pass and checkpoint.
//
// Randomized tests print their seed; GANNET_SEED=N replays one, GANNET_CLEANER_SEEDS=N sets how
// many the randomized crash test runs (default 150).
#include "storage/log_cleaner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "storage/log_manager.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

using Op = SimFileSystem::Op;
using KV = std::pair<std::string, std::optional<std::string>>;  // key, value (nullopt: tombstone)

int64_t env_int(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v ? std::strtoll(v, nullptr, 10) : def;
}

struct Rec {
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  bool operator==(const Rec&) const = default;
};

struct ServedBatch {
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int32_t epoch = 0;
  int16_t attributes = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  std::string bytes;
  std::vector<Rec> records;
};

// Every record appended, by offset.
using Model = std::map<int64_t, Rec>;

LogConfig compact_config() {
  LogConfig c;
  c.cleanup_compact = true;
  c.cleanup_delete = false;
  c.segment_bytes = 1200;
  c.index_interval_bytes = 200;
  c.delete_retention_ms = 10'000;
  c.segment_preallocate_bytes = 0;
  return c;
}

std::string build_batch(const std::vector<KV>& recs, int64_t ts, Compression codec = Compression::kNone) {
  BatchOptions o;
  o.compression = codec;
  RecordBatchBuilder b(o);
  for (const auto& [k, v] : recs) {
    b.add(ts, std::string_view(k),
          v ? std::optional<std::string_view>(*v) : std::optional<std::string_view>());
  }
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

// Splits and decodes a read's bytes; fails the test on anything malformed.
std::vector<ServedBatch> decode_all(const std::string& bytes) {
  std::vector<ServedBatch> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, kMaxBatchBytes);
    if (!size.ok() || pos + *size > bytes.size()) {
      ADD_FAILURE() << "malformed batch at byte " << pos;
      return out;
    }
    EXPECT_TRUE(validate_batch(p, *size).ok()) << "batch at byte " << pos << " fails validation";
    RecordBatchView v(p, *size);
    ServedBatch b{v.base_offset(), v.last_offset(), v.leader_epoch(), v.attributes(),
                  v.base_timestamp(), v.max_timestamp(), bytes.substr(pos, *size), {}};
    auto it = RecordIterator::create(v);
    EXPECT_TRUE(it.ok());
    if (!it.ok()) return out;
    Record r;
    while (true) {
      auto more = it->next(&r);
      EXPECT_TRUE(more.ok()) << (more.ok() ? "" : more.error().to_string());
      if (!more.ok() || !*more) break;
      Rec rec{r.offset, r.key ? std::optional<std::string>(std::string(*r.key)) : std::nullopt,
              r.value ? std::optional<std::string>(std::string(*r.value)) : std::nullopt};
      b.records.push_back(rec);
    }
    out.push_back(std::move(b));
    pos += *size;
  }
  return out;
}

std::vector<ServedBatch> read_batches(const Log& log, int64_t from) {
  if (from >= log.log_end_offset()) return {};
  auto r = log.read(from, size_t{1} << 30);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return {};
  std::string bytes;
  EXPECT_TRUE(r->copy_to(&bytes).ok());
  return decode_all(bytes);
}

std::vector<Rec> read_records(const Log& log) {
  std::vector<Rec> out;
  for (auto& b : read_batches(log, log.log_start_offset())) {
    for (auto& r : b.records) out.push_back(r);
  }
  return out;
}

// Checks what a log serves against the model: offsets strictly increase, every served record is
// the one appended at its offset, and batches tile the offsets without overlap.
void expect_valid(const Log& log, const Model& model) {
  int64_t prev_batch_end = -1;
  int64_t prev = -1;
  for (const auto& b : read_batches(log, log.log_start_offset())) {
    EXPECT_GT(b.base_offset, prev_batch_end) << "batches overlap";
    prev_batch_end = b.last_offset;
    for (const auto& r : b.records) {
      EXPECT_GT(r.offset, prev) << "offsets do not increase";
      EXPECT_GE(r.offset, b.base_offset);
      EXPECT_LE(r.offset, b.last_offset);
      prev = r.offset;
      auto it = model.find(r.offset);
      ASSERT_NE(it, model.end()) << "served offset " << r.offset << " was never appended";
      EXPECT_EQ(r, it->second) << "offset " << r.offset << " changed";
    }
  }
}

// The latest record of each key among the model's offsets in [from, to).
std::map<std::string, Rec> latest_per_key(const Model& model, int64_t from, int64_t to) {
  std::map<std::string, Rec> out;
  for (const auto& [o, r] : model) {
    if (o < from || o >= to || !r.key) continue;
    out[*r.key] = r;
  }
  return out;
}

// After a clean that covered [log start, end): below `end` exactly the latest record of each key
// (tombstones included unless `tombstones_gone`, then none), at and past it everything.
void expect_compacted(const Log& log, const Model& model, int64_t end, bool tombstones_gone = false) {
  expect_valid(log, model);
  std::vector<Rec> expected;
  for (const auto& [k, r] : latest_per_key(model, log.log_start_offset(), end)) {
    if (tombstones_gone && !r.value) continue;
    expected.push_back(r);
  }
  std::sort(expected.begin(), expected.end(), [](const Rec& a, const Rec& b) { return a.offset < b.offset; });
  for (const auto& [o, r] : model) {
    if (o >= end && o < log.log_end_offset()) expected.push_back(r);
  }
  EXPECT_EQ(read_records(log), expected);
}

class CleanerTest : public ::testing::Test {
 protected:
  void open(LogConfig config = compact_config(), std::string dir = "/data/t-0") {
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config;
    auto log = Log::open(dir, o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(log).value();
  }

  AppendResult append(const std::vector<KV>& recs, Compression codec = Compression::kNone,
                      int32_t epoch = 0) {
    std::string bytes = build_batch(recs, clock_.now_ms(), codec);
    auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), epoch);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return {};
    // A single-replica leader: everything appended is committed (the cleaner cleans only below
    // the high watermark, and nothing while it is unknown).
    if (auto_hw_) log_->update_high_watermark(log_->log_end_offset());
    for (size_t i = 0; i < recs.size(); ++i) {
      model_[r->base_offset + static_cast<int64_t>(i)] = Rec{r->base_offset + static_cast<int64_t>(i),
                                                           recs[i].first, recs[i].second};
    }
    return *r;
  }

  // `batches` batches of 1..4 records over `keys` keys, some tombstones when `tombstones`.
  void random_appends(std::mt19937_64& rng, int batches, int keys, bool tombstones,
                      bool compressed = false, int32_t epoch = 0) {
    static const Compression kCodecs[] = {Compression::kNone, Compression::kLz4, Compression::kZstd};
    for (int i = 0; i < batches; ++i) {
      std::vector<KV> recs;
      const int n = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < n; ++j) {
        std::string key = "key" + std::to_string(rng() % keys);
        if (tombstones && rng() % 8 == 0) {
          recs.emplace_back(key, std::nullopt);
        } else {
          recs.emplace_back(key, "v" + std::to_string(++counter_) + std::string(rng() % 40, 'x'));
        }
      }
      append(recs, compressed ? kCodecs[rng() % 3] : Compression::kNone, epoch);
    }
  }

  CleanStats clean(CleanerOptions o = {}) {
    auto r = LogCleaner::clean(*log_, o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : CleanStats{};
  }

  int64_t cleanable_end() {
    auto r = LogCleaner::cleanable_range(*log_);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->cleanable_end : -1;
  }

  SimFileSystem fs_;
  ManualClock clock_;
  std::unique_ptr<Log> log_;
  Model model_;
  int64_t counter_ = 0;
  bool auto_hw_ = true;  // append() raises the high watermark to the log end
};

TEST_F(CleanerTest, KeepsExactlyTheLatestRecordOfEachKeyAndLeavesTheActiveSegment) {
  std::mt19937_64 rng(1);
  open();
  random_appends(rng, 120, 15, /*tombstones=*/false);
  ASSERT_GT(log_->segment_count(), 4u);
  const int64_t end = cleanable_end();
  EXPECT_EQ(end, log_->segment_base_offsets().back());
  const auto active_before = read_batches(*log_, end);
  const uint64_t size_before = log_->size_bytes();
  CleanStats st = clean();
  EXPECT_EQ(st.logs_cleaned, 1);
  EXPECT_GT(st.batches_dropped, 0);
  EXPECT_LT(log_->size_bytes(), size_before);
  expect_compacted(*log_, model_, end);
  // The active segment is byte for byte what it was.
  const auto active_after = read_batches(*log_, end);
  ASSERT_EQ(active_after.size(), active_before.size());
  for (size_t i = 0; i < active_after.size(); ++i) EXPECT_EQ(active_after[i].bytes, active_before[i].bytes);
  EXPECT_EQ(log_->first_dirty_offset(), end);
  // Nothing dirty is left: a second pass does nothing.
  EXPECT_EQ(clean().logs_cleaned, 0);
  // Small segments were grouped.
  EXPECT_LT(st.segments_written, st.segments_read);

  // The log still takes appends, and the next clean folds them in.
  random_appends(rng, 60, 15, false);
  const int64_t end2 = cleanable_end();
  EXPECT_EQ(clean().logs_cleaned, 1);
  expect_compacted(*log_, model_, end2);

  // Reopening (clean shutdown or not) serves the same.
  const auto before = read_records(*log_);
  ASSERT_TRUE(log_->close().ok());
  open();
  EXPECT_EQ(read_records(*log_), before);
}

TEST_F(CleanerTest, ReadsFromEveryOffsetIncludingGapsReturnTheNextBatch) {
  std::mt19937_64 rng(2);
  open();
  random_appends(rng, 100, 6, false);
  clean();
  const auto all = read_batches(*log_, log_->log_start_offset());
  ASSERT_FALSE(all.empty());
  for (int64_t o = log_->log_start_offset(); o < log_->log_end_offset(); ++o) {
    auto got = read_batches(*log_, o);
    ASSERT_FALSE(got.empty()) << "read at " << o;
    // The first batch served is the first whose last offset is >= o.
    auto want = std::find_if(all.begin(), all.end(), [&](const ServedBatch& b) { return b.last_offset >= o; });
    ASSERT_NE(want, all.end());
    EXPECT_EQ(got.front().base_offset, want->base_offset) << "read at " << o;
    // A small read still returns one whole batch.
    auto small = log_->read(o, 1);
    ASSERT_TRUE(small.ok());
    EXPECT_GT(small->bytes, 0u);
  }
  // Reading with a max offset inside a gap stops before the batch past it.
  auto bounded = log_->read(log_->log_start_offset(), 1 << 20, ReadOptions{all[1].base_offset, true});
  ASSERT_TRUE(bounded.ok());
  std::string bytes;
  ASSERT_TRUE(bounded->copy_to(&bytes).ok());
  EXPECT_EQ(decode_all(bytes).size(), 1u);
}

TEST_F(CleanerTest, TombstonesStayForDeleteRetentionThenGo) {
  open();
  append({{"a", "1"}, {"b", "1"}});
  append({{"a", std::nullopt}});  // tombstone for a
  for (int i = 0; i < 30; ++i) append({{"filler" + std::to_string(i % 3), std::string(60, 'f')}});
  int64_t end = cleanable_end();
  ASSERT_GT(end, 2);
  CleanStats st = clean();
  EXPECT_EQ(st.logs_cleaned, 1);
  EXPECT_EQ(st.tombstones_dropped, 0);
  expect_compacted(*log_, model_, end);
  // The tombstone's batch now carries the delete horizon: now + delete.retention.ms.
  const int64_t first_clean = clock_.now_ms();
  bool found = false;
  for (const auto& b : read_batches(*log_, 0)) {
    for (const auto& r : b.records) {
      if (r.key == "a") {
        EXPECT_FALSE(r.value.has_value());
        EXPECT_TRUE(b.attributes & kDeleteHorizonBit);
        EXPECT_EQ(b.base_timestamp, first_clean + 10'000);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);

  // Before the horizon a later pass keeps it.
  clock_.advance_ms(9'999);
  for (int i = 0; i < 30; ++i) append({{"filler" + std::to_string(i % 3), std::string(60, 'g')}});
  end = cleanable_end();
  st = clean();
  EXPECT_EQ(st.logs_cleaned, 1);
  EXPECT_EQ(st.tombstones_dropped, 0);
  expect_compacted(*log_, model_, end);

  // At the horizon it goes; b's value and the active segment stay.
  clock_.advance_ms(1);
  for (int i = 0; i < 30; ++i) append({{"filler" + std::to_string(i % 3), std::string(60, 'h')}});
  end = cleanable_end();
  st = clean();
  EXPECT_EQ(st.tombstones_dropped, 1);
  expect_compacted(*log_, model_, end, /*tombstones_gone=*/true);
  bool b_present = false;
  for (const auto& r : read_records(*log_)) {
    EXPECT_NE(r.key, std::optional<std::string>("a"));
    b_present |= r.key == "b";
  }
  EXPECT_TRUE(b_present);
}

TEST_F(CleanerTest, CompressedBatchesAreCleanedKeepingTheirCodecAndHeaders) {
  std::mt19937_64 rng(3);
  open();
  std::map<int64_t, int16_t> attributes;  // base offset -> attributes as appended
  random_appends(rng, 150, 10, /*tombstones=*/true, /*compressed=*/true, /*epoch=*/3);
  for (const auto& b : read_batches(*log_, 0)) attributes[b.base_offset] = b.attributes;
  const int64_t end = cleanable_end();
  std::map<int64_t, int64_t> last_offsets;
  for (const auto& b : read_batches(*log_, 0)) last_offsets[b.base_offset] = b.last_offset;
  CleanStats st = clean();
  EXPECT_EQ(st.logs_cleaned, 1);
  expect_compacted(*log_, model_, end);
  int rewritten_compressed = 0;
  for (const auto& b : read_batches(*log_, 0)) {
    ASSERT_TRUE(attributes.count(b.base_offset)) << "batch base offsets are kept";
    EXPECT_EQ(b.attributes & ~kDeleteHorizonBit, attributes[b.base_offset]);
    EXPECT_EQ(b.last_offset, last_offsets[b.base_offset]) << "last offset delta is kept";
    EXPECT_EQ(b.epoch, 3);
    const int16_t codec = b.attributes & kCompressionMask;
    if (codec != 0 && static_cast<int64_t>(b.records.size()) < b.last_offset - b.base_offset + 1) {
      ++rewritten_compressed;
    }
  }
  EXPECT_GT(rewritten_compressed, 0);
}

TEST_F(CleanerTest, ASegmentsEmptiedLastBatchStaysWithNoRecordsInItsCodec) {
  LogConfig c = compact_config();
  c.segment_bytes = 100;  // one batch per segment, never grouped
  for (Compression codec : {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                            Compression::kLz4, Compression::kZstd}) {
    SCOPED_TRACE(compression_name(codec));
    model_.clear();
    const std::string dir = std::string("/data/e-") + std::to_string(static_cast<int>(codec));
    open(c, dir);
    append({{"k", "v1"}}, codec);
    append({{"k", "v2"}});
    append({{"x", "y"}});
    ASSERT_EQ(log_->segment_count(), 3u);
    EXPECT_EQ(clean().logs_cleaned, 1);
    auto batches = read_batches(*log_, 0);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[0].base_offset, 0);
    EXPECT_TRUE(batches[0].records.empty());
    EXPECT_EQ(batches[0].attributes & kCompressionMask, static_cast<int16_t>(codec));
    EXPECT_EQ(batches[1].records, (std::vector<Rec>{{1, "k", "v2"}}));
    // The segments still tile the offsets, so recovery (with CRC checks) keeps all of them.
    log_.reset();
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = c;
    auto reopened = Log::open(dir, o);
    ASSERT_TRUE(reopened.ok());
    log_ = std::move(reopened).value();
    EXPECT_EQ(log_->segment_count(), 3u);
    EXPECT_EQ(read_batches(*log_, 0).size(), 3u);
  }
}

TEST_F(CleanerTest, ReadersHoldingOldSegmentsKeepReadingThem) {
  std::mt19937_64 rng(9);
  open();
  random_appends(rng, 60, 5, false);
  auto before = log_->read(0, 1 << 20);
  ASSERT_TRUE(before.ok());
  std::string expected;
  ASSERT_TRUE(before->copy_to(&expected).ok());
  EXPECT_EQ(clean().logs_cleaned, 1);
  std::string after;
  ASSERT_TRUE(before->copy_to(&after).ok()) << "the replaced files are gone but open handles read on";
  EXPECT_EQ(after, expected);
}

TEST_F(CleanerTest, CompactedLogsRefuseNullKeysOnLeaderAppend) {
  open();
  BatchOptions o;
  RecordBatchBuilder b(o);
  b.add(clock_.now_ms(), std::nullopt, std::string_view("v"));
  std::string bytes = *b.build();
  auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
  auto r = log_->append(span, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidRecord);
  EXPECT_NE(r.error().message.find("null key"), std::string::npos) << r.error().message;
  EXPECT_EQ(log_->log_end_offset(), 0);
  // A delete-policy log takes them.
  LogConfig plain;
  open(plain, "/data/plain-0");
  std::string again = *b.build();
  EXPECT_TRUE(log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(again.data()), again.size()), 0).ok());
}

TEST_F(CleanerTest, RetentionDeletesOnlyWithTheDeletePolicy) {
  LogConfig c = compact_config();
  c.retention_ms = 1;
  open(c);
  for (int i = 0; i < 40; ++i) append({{"k" + std::to_string(i), std::string(50, 'x')}});
  clock_.advance_ms(1000);
  ASSERT_GT(log_->segment_count(), 2u);
  auto r = log_->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0) << "compact-only logs keep everything";
  c.cleanup_delete = true;
  log_->set_config(c);
  r = log_->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0) << "compact,delete also deletes by time";
}

TEST_F(CleanerTest, FollowerAppendsAndEpochCacheWorkAcrossGaps) {
  std::mt19937_64 rng(4);
  open();
  for (int32_t epoch = 1; epoch <= 4; ++epoch) random_appends(rng, 30, 8, true, false, epoch);
  clean();
  auto leader_batches = read_batches(*log_, 0);
  // Every served batch's epoch agrees with the leader's epoch cache.
  for (const auto& b : leader_batches) {
    EXPECT_EQ(log_->epoch_cache().epoch_for_offset(b.base_offset), b.epoch);
  }
  auto leader = std::move(log_);
  open(compact_config(), "/data/t-1");  // the follower
  // Replicate in a few fetches, the way a follower does.
  int64_t next = 0;
  while (next < leader->log_end_offset()) {
    auto r = leader->read(next, 700);
    ASSERT_TRUE(r.ok());
    std::string bytes;
    ASSERT_TRUE(r->copy_to(&bytes).ok());
    auto appended = log_->append_as_follower(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()));
    ASSERT_TRUE(appended.ok()) << appended.error().to_string();
    next = appended->last_offset + 1;
  }
  EXPECT_EQ(log_->log_end_offset(), leader->log_end_offset());
  auto follower_batches = read_batches(*log_, 0);
  ASSERT_EQ(follower_batches.size(), leader_batches.size());
  for (size_t i = 0; i < follower_batches.size(); ++i) {
    EXPECT_EQ(follower_batches[i].bytes, leader_batches[i].bytes);
  }
  // The follower's cache starts each epoch at its first surviving batch, the leader's where the
  // epoch began: they differ only inside gaps, which a divergence check cannot tell apart.
  for (const auto& b : follower_batches) {
    EXPECT_EQ(log_->epoch_cache().epoch_for_offset(b.base_offset), b.epoch);
  }
  for (int32_t epoch = 1; epoch <= 4; ++epoch) {
    auto f = log_->epoch_cache().end_offset_for(epoch, log_->log_end_offset());
    auto l = leader->epoch_cache().end_offset_for(epoch, leader->log_end_offset());
    ASSERT_TRUE(f && l);
    EXPECT_EQ(f->epoch, l->epoch);
    const int64_t lo = std::min(f->start_offset, l->start_offset);
    const int64_t hi = std::max(f->start_offset, l->start_offset);
    for (const auto& b : leader_batches) {
      EXPECT_FALSE(b.base_offset >= lo && b.base_offset < hi)
          << "epoch " << epoch << " ends at " << f->start_offset << " on the follower, "
          << l->start_offset << " on the leader, with batch " << b.base_offset << " between";
    }
  }
  // The follower cleans its own copy too, and it stays valid.
  clean();
  expect_valid(*log_, model_);
}

TEST_F(CleanerTest, AppendsAndReadsRunWhileCleaning) {
  std::mt19937_64 rng(5);
  LogConfig c = compact_config();
  c.segment_bytes = 4000;
  open(c);
  random_appends(rng, 200, 20, false);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> appended{0};
  std::mutex model_mu;
  std::thread writer([&] {
    std::mt19937_64 wrng(55);
    while (!stop) {
      std::vector<KV> recs{{"w" + std::to_string(wrng() % 30), "val" + std::to_string(appended.load())}};
      std::string bytes = build_batch(recs, clock_.now_ms());
      auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      log_->update_high_watermark(r->last_offset + 1);
      {
        std::lock_guard<std::mutex> l(model_mu);
        model_[r->base_offset] = Rec{r->base_offset, recs[0].first, recs[0].second};
      }
      ++appended;
      // Reads from the start see a valid log (old or new segments, never a mix that breaks).
      auto rd = log_->read(log_->log_start_offset(), 1 << 20);
      ASSERT_TRUE(rd.ok()) << rd.error().to_string();
      std::string bytes2;
      ASSERT_TRUE(rd->copy_to(&bytes2).ok());
      decode_all(bytes2);
    }
  });
  int cleaned = 0;
  for (int pass = 0; pass < 30 && !HasFailure(); ++pass) {
    // Make sure each pass has dirty data and grows while it runs.
    while (appended.load() < (pass + 1) * 60) std::this_thread::yield();
    auto r = LogCleaner::clean(*log_);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    cleaned += static_cast<int>(r->logs_cleaned);
  }
  stop = true;
  writer.join();
  EXPECT_GT(cleaned, 5);
  std::lock_guard<std::mutex> l(model_mu);
  // Nothing lost: every key's latest record is there; what is there is what was appended.
  expect_valid(*log_, model_);
  const int64_t end = cleanable_end();
  clean();
  expect_compacted(*log_, model_, end);
}

TEST_F(CleanerTest, SwapIsAbandonedWhenATruncationRacesWithTheClean) {
  std::mt19937_64 rng(6);
  open();
  random_appends(rng, 80, 10, false);
  ASSERT_GT(log_->segment_count(), 3u);
  const auto bases = log_->segment_base_offsets();
  const int64_t cut = bases[1] + 1;  // inside the second segment
  CleanerOptions o;
  o.before_swap = [&] { ASSERT_TRUE(log_->truncate_to(cut).ok()); };
  CleanStats st = clean(o);
  EXPECT_EQ(st.logs_cleaned, 0);
  EXPECT_EQ(st.swaps_abandoned, 1);
  // The log is the truncated original: nothing was cleaned away, nothing came back.
  for (auto it = model_.begin(); it != model_.end();) it = it->first >= log_->log_end_offset() ? model_.erase(it) : std::next(it);
  std::vector<Rec> all;
  for (const auto& [o2, r] : model_) all.push_back(r);
  EXPECT_EQ(read_records(*log_), all);
  EXPECT_LE(log_->log_end_offset(), cut);
  // No cleaner files are left behind.
  auto names = fs_.list_dir("/data/t-0");
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) {
    EXPECT_EQ(n.find(".cleaned"), std::string::npos) << n;
    EXPECT_EQ(n.find(".swap"), std::string::npos) << n;
  }
  // A truncation inside the very segment being cleaned, with new appends rolling past it: the
  // segment object is the same, only its end moved.
  {
    const int64_t first_batch_end = read_batches(*log_, 0).front().last_offset + 1;
    CleanerOptions o2;
    o2.dedupe_buffer_bytes = 1;  // one batch: only the first segment is rewritten
    o2.before_swap = [&] {
      ASSERT_TRUE(log_->truncate_to(first_batch_end).ok());
      for (auto it = model_.begin(); it != model_.end();) {
        it = it->first >= first_batch_end ? model_.erase(it) : std::next(it);
      }
      random_appends(rng, 40, 10, false);
      ASSERT_GT(log_->segment_count(), 2u);
    };
    st = clean(o2);
    EXPECT_EQ(st.swaps_abandoned, 1);
    EXPECT_EQ(st.logs_cleaned, 0);
    std::vector<Rec> now;
    for (const auto& [o3, r] : model_) now.push_back(r);
    EXPECT_EQ(read_records(*log_), now);
  }
  // The log still cleans afterwards.
  random_appends(rng, 40, 10, false);
  const int64_t end = cleanable_end();
  EXPECT_EQ(clean().logs_cleaned, 1);
  expect_compacted(*log_, model_, end);
  // A close() that comes during a clean waits for it, and the clean abandons its swap.
  random_appends(rng, 40, 10, false);
  const auto before = read_records(*log_);
  std::thread closer;
  CleanerOptions close_during;
  close_during.before_swap = [&] {
    closer = std::thread([&] { EXPECT_TRUE(log_->close().ok()); });
    while (!log_->clean_aborted()) std::this_thread::yield();
  };
  st = clean(close_during);
  closer.join();
  EXPECT_EQ(st.logs_cleaned, 0);
  EXPECT_EQ(st.swaps_abandoned, 1);
  EXPECT_EQ(read_records(*log_), before);
  EXPECT_FALSE(LogCleaner::clean(*log_).ok());
}

TEST_F(CleanerTest, ByteBudgetShortensThePassAndLaterPassesFinish) {
  std::mt19937_64 rng(7);
  open();
  random_appends(rng, 150, 40, false);
  const int64_t end = cleanable_end();
  CleanerOptions o;
  o.dedupe_buffer_bytes = 12 * 70;  // about a dozen keys
  CleanStats st = clean(o);
  EXPECT_TRUE(st.map_full);
  EXPECT_LE(st.map_entries, 14);
  EXPECT_GT(log_->first_dirty_offset(), 0);
  EXPECT_LT(log_->first_dirty_offset(), end);
  expect_valid(*log_, model_);
  int passes = 1;
  while (log_->first_dirty_offset() < end && passes < 100) {
    const int64_t before = log_->first_dirty_offset();
    clean(o);
    ASSERT_GT(log_->first_dirty_offset(), before) << "a pass made no progress";
    expect_valid(*log_, model_);
    ++passes;
  }
  EXPECT_GT(passes, 2);
  expect_compacted(*log_, model_, end);
}

TEST_F(CleanerTest, CleanableEndRespectsHighWatermarkAndCompactionLag) {
  std::mt19937_64 rng(8);
  open();
  auto_hw_ = false;
  EXPECT_EQ(cleanable_end(), 0) << "nothing is cleanable while the high watermark is unknown";
  random_appends(rng, 100, 10, false);
  EXPECT_EQ(cleanable_end(), 0) << "nothing is cleanable while the high watermark is unknown";
  const auto bases = log_->segment_base_offsets();
  ASSERT_GT(bases.size(), 4u);
  log_->update_high_watermark(bases[2] + 1);  // inside the third segment
  EXPECT_EQ(cleanable_end(), bases[2]);
  clean();
  expect_compacted(*log_, model_, bases[2]);
  EXPECT_EQ(read_batches(*log_, bases[2]).front().base_offset, bases[2]);
  log_->update_high_watermark(log_->log_end_offset());

  LogConfig c = compact_config();
  c.min_compaction_lag_ms = 60'000;
  log_->set_config(c);
  clock_.advance_ms(30'000);
  random_appends(rng, 60, 10, false);
  // The segments written before the clock moved are older than 30 s, none older than 60 s.
  EXPECT_EQ(cleanable_end(), log_->segment_base_offsets().front());
  clock_.advance_ms(40'000);
  const int64_t end = cleanable_end();
  EXPECT_GT(end, bases[2]);
  EXPECT_LT(end, log_->segment_base_offsets().back());
}

// ---- Crashes -------------------------------------------------------------------------------------

// Builds a compacted log, flushes it, cleans it with a fault injected at one step (or none),
// crashes, reopens, and checks that nothing durable was lost and nothing was duplicated. Returns
// false when the clean finished without the fault firing.
class CrashHarness {
 public:
  explicit CrashHarness(uint64_t seed) : seed_(seed), rng_(seed) {
    config_ = compact_config();
    config_.segment_bytes = 600 + static_cast<int64_t>(rng_() % 1500);
    config_.index_interval_bytes = static_cast<int32_t>(rng_() % 400);
    config_.delete_retention_ms = 5'000;
  }

  void open() {
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config_;
    auto log = Log::open("/data/c-0", o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(log).value();
  }

  void appends(int batches) {
    for (int i = 0; i < batches; ++i) {
      std::vector<KV> recs;
      const int n = 1 + static_cast<int>(rng_() % 3);
      for (int j = 0; j < n; ++j) {
        std::string key = "k" + std::to_string(rng_() % 12);
        if (rng_() % 7 == 0) {
          recs.emplace_back(key, std::nullopt);
        } else {
          recs.emplace_back(key, "v" + std::to_string(++counter_) + std::string(rng_() % 30, 'y'));
        }
      }
      static const Compression kCodecs[] = {Compression::kNone, Compression::kLz4, Compression::kZstd};
      std::string bytes = build_batch(recs, clock_.now_ms(), kCodecs[rng_() % 3]);
      auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), epoch_);
      if (!r.ok()) return;  // offline after an injected fault
      for (size_t k = 0; k < recs.size(); ++k) {
        const int64_t o = r->base_offset + static_cast<int64_t>(k);
        model_[o] = Rec{o, recs[k].first, recs[k].second};
      }
    }
  }

  void flush() {
    ASSERT_TRUE(log_->flush().ok());
    durable_ = log_->log_end_offset();
  }

  // Crashes and reopens, then checks: the log end covers everything flushed; every served record
  // is the one appended at its offset, offsets strictly increase; every key's latest record
  // (among those that survived) is served, tombstones included (the clock has not passed their
  // horizon unless `tombstones_may_go`).
  void crash_and_check(bool tombstones_may_go) {
    log_.reset();
    fs_.crash(rng_);
    open();
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_GE(log_->log_end_offset(), durable_) << "flushed data lost";
    // Unflushed appends past the recovered end are gone; the model follows.
    for (auto it = model_.begin(); it != model_.end();) {
      it = it->first >= log_->log_end_offset() ? model_.erase(it) : std::next(it);
    }
    durable_ = log_->log_end_offset();
    expect_valid(*log_, model_);
    std::set<int64_t> served;
    for (const auto& r : read_records(*log_)) served.insert(r.offset);
    for (const auto& [k, r] : latest_per_key(model_, 0, log_->log_end_offset())) {
      if (tombstones_may_go && !r.value) continue;
      EXPECT_TRUE(served.count(r.offset)) << "latest record of " << k << " at " << r.offset << " lost (seed " << seed_ << ")";
    }
    auto names = fs_.list_dir("/data/c-0");
    ASSERT_TRUE(names.ok());
    for (const auto& n : *names) {
      EXPECT_EQ(n.find(".cleaned"), std::string::npos) << n;
      EXPECT_EQ(n.find(".swap"), std::string::npos) << n;
    }
  }

  Result<CleanStats> clean() {
    log_->update_high_watermark(log_->log_end_offset());
    return LogCleaner::clean(*log_);
  }

  SimFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  std::unique_ptr<Log> log_;
  Model model_;
  int64_t durable_ = 0;
  int64_t counter_ = 0;
  int32_t epoch_ = 0;
};

TEST(CleanerCrashTest, CrashAtEveryStepOfACleanLosesNothing) {
  const Op kOps[] = {Op::kOpen, Op::kAppend, Op::kSync, Op::kRename, Op::kRemove, Op::kSyncDir,
                     Op::kTruncate, Op::kRead};
  int fired = 0;
  for (Op op : kOps) {
    for (int skip = 0; skip < 60; ++skip) {
      CrashHarness h(1000 + static_cast<uint64_t>(op) * 100 + static_cast<uint64_t>(skip));
      h.open();
      h.appends(60);
      h.flush();
      h.appends(3);  // an unflushed tail in the active segment
      h.fs_.inject_fault(op, skip, Errc::kIoError);
      auto r = h.clean();
      const bool completed = r.ok() && r->logs_cleaned == 1 && !h.log_->offline();
      h.fs_.clear_faults();
      if (!completed) ++fired;
      h.crash_and_check(false);
      if (::testing::Test::HasFailure()) {
        std::cout << "FAILED: fault on op " << static_cast<int>(op) << " after " << skip << " ops" << std::endl;
        return;
      }
      // After recovery a clean runs to the end and compacts fully.
      h.log_->update_high_watermark(h.log_->log_end_offset());
      auto again = h.clean();
      ASSERT_TRUE(again.ok()) << again.error().to_string();
      auto range = LogCleaner::cleanable_range(*h.log_);
      ASSERT_TRUE(range.ok());
      expect_compacted(*h.log_, h.model_, range->cleanable_end);
      if (completed && skip > 0) break;  // later skips would not fire either
    }
  }
  EXPECT_GT(fired, 20) << "the faults must land inside the clean";
}

TEST(CleanerCrashTest, RandomizedCrashesDuringCleaningLoseNothing) {
  const int64_t single = env_int("GANNET_SEED", -1);
  const int64_t base = single >= 0 ? single : env_int("GANNET_SEED_BASE", 1);
  const int64_t count = single >= 0 ? 1 : env_int("GANNET_CLEANER_SEEDS", 150);
  std::cout << "cleaner crash test: seeds " << base << ".." << base + count - 1
            << " (replay one with GANNET_SEED=N)" << std::endl;
  for (int64_t s = base; s < base + count; ++s) {
    CrashHarness h(static_cast<uint64_t>(s));
    std::mt19937_64 rng(static_cast<uint64_t>(s) * 7919);
    h.open();
    const int cycles = 2 + static_cast<int>(rng() % 3);
    for (int c = 0; c < cycles && !::testing::Test::HasFailure(); ++c) {
      h.appends(20 + static_cast<int>(rng() % 50));
      if (rng() % 4 != 0) h.flush();
      h.appends(static_cast<int>(rng() % 4));
      if (rng() % 3 == 0) h.clock_.advance_ms(static_cast<int64_t>(rng() % 8'000));
      if (rng() % 5 == 0) ++h.epoch_;
      // Fault somewhere in the next clean (or nowhere), then a crash.
      static const Op kOps[] = {Op::kOpen, Op::kAppend, Op::kSync, Op::kRename, Op::kRemove, Op::kSyncDir};
      if (rng() % 4 != 0) {
        h.fs_.inject_fault(kOps[rng() % 6], static_cast<int>(rng() % 30),
                           rng() % 2 ? Errc::kIoError : Errc::kNoSpace);
      }
      for (int passes = 1 + static_cast<int>(rng() % 2); passes > 0; --passes) (void)h.clean();
      h.fs_.clear_faults();
      h.crash_and_check(/*tombstones_may_go=*/true);
    }
    if (::testing::Test::HasFailure()) {
      std::cout << "FAILED seed " << s << ": replay with GANNET_SEED=" << s << std::endl;
      return;
    }
  }
}

// ---- Log manager ---------------------------------------------------------------------------------

class CleanerManagerTest : public ::testing::Test {
 protected:
  void open_manager() {
    LogManager::Options o;
    o.data_dir = "/data";
    o.fs = &fs_;
    o.clock = &clock_;
    o.background = false;
    o.default_config = compact_config();
    auto m = LogManager::open(o);
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    manager_ = std::move(m).value();
  }

  void fill(Log& log, int batches, int keys, const std::string& tag) {
    for (int i = 0; i < batches; ++i) {
      std::string bytes = build_batch({{"k" + std::to_string(i % keys), tag + std::to_string(i) + std::string(40, 'z')}},
                                      clock_.now_ms());
      ASSERT_TRUE(log.append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0).ok());
      log.update_high_watermark(log.log_end_offset());
    }
  }

  SimFileSystem fs_;
  ManualClock clock_;
  std::unique_ptr<LogManager> manager_;
};

TEST_F(CleanerManagerTest, RunCleanerPicksCompactedLogsByDirtyRatioAndCheckpoints) {
  open_manager();
  LogConfig compact = compact_config();
  LogConfig lazy = compact;
  lazy.min_cleanable_dirty_ratio = 1.0;  // never dirty enough once anything was cleaned
  LogConfig plain;
  plain.segment_bytes = 1200;
  plain.segment_preallocate_bytes = 0;
  auto a = manager_->create({"a", 0}, compact);
  auto b = manager_->create({"b", 0}, plain);
  auto c = manager_->create({"c", 0}, lazy);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  fill(**a, 80, 5, "a");
  fill(**b, 80, 5, "b");
  fill(**c, 80, 5, "c");
  const uint64_t b_size = (*b)->size_bytes();
  auto st = manager_->run_cleaner();
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  // a and c (everything dirty: ratio 1) are cleaned; b is delete-policy and untouched.
  EXPECT_EQ(st->logs_cleaned, 2);
  EXPECT_EQ((*b)->size_bytes(), b_size);
  EXPECT_GT((*a)->first_dirty_offset(), 0);
  const int64_t a_dirty = (*a)->first_dirty_offset();
  const int64_t c_dirty = (*c)->first_dirty_offset();

  // A little more data: a's ratio passes 0.5 again only after enough of it; c's never reaches 1.
  fill(**a, 10, 5, "a2");
  fill(**c, 10, 5, "c2");
  auto ra = LogCleaner::cleanable_range(**a);
  ASSERT_TRUE(ra.ok());
  auto rc = LogCleaner::cleanable_range(**c);
  ASSERT_TRUE(rc.ok());
  ASSERT_GT(rc->dirty_bytes, 0u);
  ASSERT_LT(rc->dirty_ratio(), 1.0);
  st = manager_->run_cleaner();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->logs_cleaned, ra->dirty_ratio() >= 0.5 ? 1 : 0) << "a's ratio " << ra->dirty_ratio();
  EXPECT_EQ((*c)->first_dirty_offset(), c_dirty) << "c's dirty ratio is below 1";
  fill(**a, 200, 5, "a3");
  st = manager_->run_cleaner();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->logs_cleaned, 1);
  EXPECT_GT((*a)->first_dirty_offset(), a_dirty);

  // The checkpoint names the compacted logs and survives a restart (clean or not).
  auto text = read_file(&fs_, "/data/cleaner-offset-checkpoint");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("a 0 " + std::to_string((*a)->first_dirty_offset())), std::string::npos) << *text;
  EXPECT_EQ(text->find("b 0"), std::string::npos) << *text;
  const int64_t a_final = (*a)->first_dirty_offset();
  ASSERT_TRUE(manager_->close().ok());
  manager_.reset();
  open_manager();
  // Topic configs come back from the metadata layer, as the broker re-applies them.
  manager_->get({"b", 0})->set_config(plain);
  manager_->get({"c", 0})->set_config(lazy);
  EXPECT_EQ(manager_->get({"a", 0})->first_dirty_offset(), a_final);
  EXPECT_EQ(manager_->get({"c", 0})->first_dirty_offset(), c_dirty);
  // Nothing new is dirty, so the next pass cleans nothing.
  st = manager_->run_cleaner();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->logs_cleaned, 0);

  // Removing and re-creating a partition does not inherit its cleaned offset.
  ASSERT_TRUE(manager_->remove({"a", 0}).ok());
  auto a2 = manager_->create({"a", 0}, compact);
  ASSERT_TRUE(a2.ok());
  manager_.reset();  // crash-like: no close
  open_manager();
  EXPECT_EQ(manager_->get({"a", 0})->first_dirty_offset(), 0);
}

TEST_F(CleanerManagerTest, BackgroundCleanerRunsAndCloseStopsIt) {
  LogManager::Options o;
  o.data_dir = "/data";
  o.fs = &fs_;
  o.clock = &clock_;
  o.background = true;
  o.cleaner_backoff_ms = 5;
  o.default_config = compact_config();
  auto m = LogManager::open(o);
  ASSERT_TRUE(m.ok());
  auto log = (*m)->create({"bg", 0});
  ASSERT_TRUE(log.ok());
  fill(**log, 100, 4, "x");
  for (int i = 0; i < 2000 && (*log)->first_dirty_offset() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT((*log)->first_dirty_offset(), 0) << "the background cleaner never ran";
  fill(**log, 100, 4, "y");
  ASSERT_TRUE((*m)->close().ok());
  // After close the log's files no longer change: no cleaner output is left or appears.
  auto names = fs_.list_dir("/data/bg-0");
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) EXPECT_EQ(n.find(".cleaned"), std::string::npos) << n;
  EXPECT_FALSE(LogCleaner::clean(**log).ok());
}

}  // namespace
}  // namespace gannet::storage

namespace gannet::storage {
namespace {

// An idempotent producer's last batch stays, without records, when compaction removes every record
// of it: a replay of the cleaned log still finds the producer's epoch and sequence (so its retry
// after a restart is still a duplicate). A batch that is not a producer's last goes as usual.
TEST_F(CleanerTest, AnIdempotentProducersLastBatchOutlivesItsRecords) {
  LogConfig c = compact_config();
  c.segment_bytes = 250;  // three batches per segment: [0, 3), [3, 6), [6, ...)
  open(c, "/data/p-0");
  auto idem = [&](int64_t pid, int32_t seq, const std::string& key, const std::string& value) {
    BatchOptions o;
    o.producer_id = pid;
    o.producer_epoch = 3;
    o.base_sequence = seq;
    RecordBatchBuilder b(o);
    b.add(clock_.now_ms(), key, value);
    std::string bytes = *b.build();
    auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    log_->update_high_watermark(log_->log_end_offset());
  };
  idem(7, 0, "a", "p7");     // offset 0: producer 7's last batch; its record is superseded below
  idem(8, 0, "b", "p8-1");   // offset 1: producer 8's first batch, superseded, not its last
  idem(8, 1, "c", "p8-2");   // offset 2: producer 8's last batch
  append({{"a", "v2"}});     // 3
  append({{"b", "v2"}});     // 4
  append({{"c", "v2"}});     // 5
  append({{"z", "end"}});    // 6 (the active segment)
  ASSERT_EQ(log_->segment_base_offsets(), (std::vector<int64_t>{0, 3, 6}));
  ASSERT_NE(log_->producer_state().find(7), nullptr);
  EXPECT_EQ(clean().logs_cleaned, 1);
  std::vector<int64_t> bases;
  for (const auto& b : read_batches(*log_, 0)) bases.push_back(b.base_offset);
  EXPECT_TRUE(std::find(bases.begin(), bases.end(), 0) != bases.end()) << "producer 7's last batch went";
  EXPECT_TRUE(std::find(bases.begin(), bases.end(), 2) != bases.end()) << "producer 8's last batch went";
  EXPECT_TRUE(std::find(bases.begin(), bases.end(), 1) == bases.end()) << "a superseded batch that is no producer's last stayed";
  // Rebuilt from the cleaned log alone (no snapshot): both producers are known as before.
  log_.reset();
  const std::vector<std::string> names = *fs_.list_dir("/data/p-0");
  for (const auto& n : names) {
    if (ProducerStateTable::parse_snapshot_name(n)) ASSERT_TRUE(fs_.remove_file("/data/p-0/" + n).ok());
  }
  open(c, "/data/p-0");
  const ProducerStateTable state = log_->producer_state();
  ASSERT_NE(state.find(7), nullptr);
  EXPECT_EQ(state.find(7)->batches.back(), (ProducerBatch{0, 0, 0, 0}));
  ASSERT_NE(state.find(8), nullptr);
  EXPECT_EQ(state.find(8)->batches.back(), (ProducerBatch{1, 1, 2, 2}));
  EXPECT_EQ(state.find(8)->epoch, 3);
}

}  // namespace
}  // namespace gannet::storage
