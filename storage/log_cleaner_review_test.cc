// Review tests of log compaction (storage/log_cleaner.h): each test pins one bug found in review.
//   - A log whose high watermark is unknown (-1, e.g. right after a restart, before the first
//     fetch or election) must not be cleaned: a record appended after a key's committed value
//     may still be truncated away, and the committed value must then still be there.
//   - When the key->offset map fills, the rest of the last segment read stays dirty: its
//     tombstones must neither get a delete horizon nor be dropped (they were never in the map,
//     so older values of their keys were not removed), else a deleted key comes back.
//   - delete.retention.ms = INT64_MAX ("keep tombstones forever") must not overflow the horizon.
//   - A truncation that cuts into a segment being cleaned, followed by appends that regrow it to
//     the same size, must abandon the swap rather than swap stale contents back in.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/log_cleaner.h"
#include "storage/record_batch.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

using KV = std::pair<std::string, std::optional<std::string>>;

struct Rec {
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
};

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

std::string build_batch(const std::vector<KV>& recs, int64_t ts) {
  RecordBatchBuilder b(BatchOptions{});
  for (const auto& [k, v] : recs) {
    b.add(ts, std::string_view(k), v ? std::optional<std::string_view>(*v) : std::optional<std::string_view>());
  }
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

std::vector<Rec> read_records(const Log& log) {
  std::vector<Rec> out;
  if (log.log_start_offset() >= log.log_end_offset()) return out;
  auto r = log.read(log.log_start_offset(), size_t{1} << 30);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return out;
  std::string bytes;
  EXPECT_TRUE(r->copy_to(&bytes).ok());
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, kMaxBatchBytes);
    if (!size.ok() || pos + *size > bytes.size()) {
      ADD_FAILURE() << "malformed batch at byte " << pos;
      return out;
    }
    RecordBatchView v(p, *size);
    auto it = RecordIterator::create(v);
    EXPECT_TRUE(it.ok());
    if (!it.ok()) return out;
    Record rec;
    while (true) {
      auto more = it->next(&rec);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      out.push_back(Rec{rec.offset, rec.key ? std::optional<std::string>(std::string(*rec.key)) : std::nullopt,
                        rec.value ? std::optional<std::string>(std::string(*rec.value)) : std::nullopt});
    }
    pos += *size;
  }
  return out;
}

// The value a consumer replaying the whole log ends up with for `key` (nullopt: absent or deleted).
std::optional<std::string> replayed_value(const Log& log, const std::string& key) {
  std::optional<std::string> v;
  for (const Rec& r : read_records(log)) {
    if (r.key == key) v = r.value;
  }
  return v;
}

class CleanerReviewTest : public ::testing::Test {
 protected:
  void open(LogConfig config = compact_config()) {
    log_.reset();
    Log::Options o;
    o.fs = &fs_;
    o.clock = &clock_;
    o.config = config;
    auto log = Log::open("/data/t-0", o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(log).value();
  }

  AppendResult append(const std::vector<KV>& recs) {
    std::string bytes = build_batch(recs, clock_.now_ms());
    auto r = log_->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : AppendResult{};
  }

  // Distinct-key filler batches until `segments` more segments were rolled.
  void roll(int segments, const std::string& tag) {
    const size_t target = log_->segment_count() + static_cast<size_t>(segments);
    for (int i = 0; log_->segment_count() < target; ++i) {
      append({{tag + std::to_string(i), std::string(60, 'f')}});
    }
  }

  CleanStats clean(CleanerOptions o = {}) {
    auto r = LogCleaner::clean(*log_, o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : CleanStats{};
  }

  SimFileSystem fs_;
  ManualClock clock_;
  std::unique_ptr<Log> log_;
};

// A broker restarts: the high watermark is unknown (-1) until the partition's first fetch or
// election. The log's tail holds a later value of K that was never committed (it was appended
// while this broker led, not replicated). The cleaner must not drop K's committed value because
// of it: the follower then truncates the uncommitted tail away.
TEST_F(CleanerReviewTest, UnknownHighWatermarkDoesNotLetUncommittedRecordsShadowCommittedOnes) {
  open();
  append({{"K", "committed"}});
  roll(1, "a");
  log_->update_high_watermark(log_->log_end_offset());  // K=committed is committed
  const int64_t uncommitted = append({{"K", "uncommitted"}}).base_offset;
  roll(2, "b");
  ASSERT_TRUE(log_->close().ok());
  open();  // restart: high watermark unknown
  ASSERT_EQ(log_->high_watermark(), -1);

  clean();  // the background cleaner runs before the partition's first fetch
  // The new leader never had the uncommitted record: the follower truncates to where it diverged.
  ASSERT_TRUE(log_->truncate_to(uncommitted).ok());
  EXPECT_EQ(replayed_value(*log_, "K"), std::optional<std::string>("committed"))
      << "a committed value was dropped because of a record that was later truncated";
}

// The map fills in the middle of a segment: the records after the map's end stay dirty. A
// tombstone there was never mapped, so older values of its key were not removed by this pass: it
// must not get a delete horizon yet, nor be dropped by a later pass that still has not mapped it.
TEST_F(CleanerReviewTest, TombstonePastTheMapEndIsNotDroppedBeforeItWasMapped) {
  open();
  append({{"K", "v"}});   // offset 0
  append({{"A", "1"}});   // offset 1
  append({{"B", "1"}});   // offset 2
  append({{"K", std::nullopt}});  // offset 3: K deleted
  roll(2, "f");
  ASSERT_EQ(log_->segment_base_offsets()[1] > 3, true) << "the four batches share the first segment";
  log_->update_high_watermark(log_->log_end_offset());

  CleanerOptions tiny;
  tiny.dedupe_buffer_bytes = 100;  // one one-byte key per pass
  CleanStats st = clean(tiny);
  ASSERT_TRUE(st.map_full);
  ASSERT_EQ(log_->first_dirty_offset(), 1);
  clock_.advance_ms(compact_config().delete_retention_ms + 1);
  clean(tiny);  // maps offset 1 only: the tombstone at 3 is still unmapped
  EXPECT_EQ(replayed_value(*log_, "K"), std::nullopt) << "K was deleted at offset 3 but is back";
  // However many passes follow, K stays deleted.
  for (int i = 0; i < 20; ++i) {
    clock_.advance_ms(compact_config().delete_retention_ms + 1);
    clean();
  }
  EXPECT_EQ(replayed_value(*log_, "K"), std::nullopt) << "K was deleted at offset 3 but is back";
}

// delete.retention.ms may be as large as Kafka allows (Long.MAX_VALUE: keep tombstones forever).
TEST_F(CleanerReviewTest, HugeDeleteRetentionKeepsTombstonesForever) {
  LogConfig c = compact_config();
  c.delete_retention_ms = INT64_MAX;
  open(c);
  append({{"K", "v"}});
  append({{"K", std::nullopt}});
  roll(2, "f");
  log_->update_high_watermark(log_->log_end_offset());
  clean();  // the tombstone gets its delete horizon
  clock_.advance_ms(1000);
  roll(2, "g");  // more dirty data, so the next pass rewrites the first segment again
  log_->update_high_watermark(log_->log_end_offset());
  clean();
  bool tombstone = false;
  for (const Rec& r : read_records(*log_)) tombstone |= r.key == "K" && !r.value;
  EXPECT_TRUE(tombstone) << "the tombstone of K was dropped with delete.retention.ms = INT64_MAX";
}

// A follower truncates into a segment the cleaner is reading and then appends the leader's
// (different) records, which happen to regrow that segment to exactly its old size, and rolls.
// The segment is the same object with the same end, but its contents are new: the swap must be
// abandoned, not put the cleaned copy of the old contents back.
TEST_F(CleanerReviewTest, SwapIsAbandonedWhenASourceWasTruncatedAndRegrownToTheSameSize) {
  open();
  auto rec = [](const std::string& tag, int i) {
    char key[8];
    std::snprintf(key, sizeof(key), "k%03d", i);
    return KV{key, tag + std::string(57, 'x')};  // every batch the same size
  };
  int i = 0;
  while (log_->segment_count() < 3) append({rec("old", i++)});
  const auto bases = log_->segment_base_offsets();
  ASSERT_EQ(bases.size(), 3u);
  log_->update_high_watermark(log_->log_end_offset());
  const int64_t cut = bases[1] + 2;
  const int64_t s1_end = bases[2];

  CleanerOptions o;
  o.before_swap = [&] {
    ASSERT_TRUE(log_->truncate_to(cut).ok());
    for (int64_t off = cut; off < s1_end; ++off) append({rec("new", static_cast<int>(off))});
    ASSERT_EQ(log_->segment_count(), 2u);
    append({rec("new", static_cast<int>(s1_end))});  // rolls: segment 1 is full again
    ASSERT_EQ(log_->segment_count(), 3u);
  };
  clean(o);
  for (const Rec& r : read_records(*log_)) {
    if (r.offset >= cut) {
      ASSERT_TRUE(r.value.has_value());
      EXPECT_EQ(r.value->substr(0, 3), "new") << "offset " << r.offset << " serves truncated data";
    }
  }
}

}  // namespace
}  // namespace gannet::storage
