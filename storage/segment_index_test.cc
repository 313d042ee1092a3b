// Tests of the sparse segment indexes (OffsetIndex, TimeIndex) and of LeaderEpochCache.
#include "storage/segment_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "common/byte_order.h"
#include "storage/leader_epoch_cache.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

// ---- Helpers -----------------------------------------------------------------------------------

std::string offset_bytes(const std::vector<std::pair<uint32_t, uint32_t>>& entries) {
  std::string out(entries.size() * 8, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const auto& [rel, pos] : entries) {
    store_be32(p, rel);
    store_be32(p + 4, pos);
    p += 8;
  }
  return out;
}

std::string time_bytes(const std::vector<std::pair<int64_t, uint32_t>>& entries) {
  std::string out(entries.size() * 12, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const auto& [ts, rel] : entries) {
    store_be64(p, static_cast<uint64_t>(ts));
    store_be32(p + 8, rel);
    p += 12;
  }
  return out;
}

void expect_offset_entry(const std::optional<OffsetEntry>& e, uint32_t rel, uint32_t pos) {
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->relative_offset, rel);
  EXPECT_EQ(e->position, pos);
}

void expect_time_entry(const std::optional<TimeEntry>& e, int64_t ts, uint32_t rel) {
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->timestamp, ts);
  EXPECT_EQ(e->relative_offset, rel);
}

// ---- OffsetIndex -------------------------------------------------------------------------------

TEST(OffsetIndexTest, LookupOffsetExactBetweenBeforeAndAfter) {
  OffsetIndex idx;
  idx.append({5, 100});
  idx.append({10, 250});
  idx.append({20, 700});
  ASSERT_EQ(idx.size(), 3u);

  // Exact hits.
  expect_offset_entry(idx.lookup_offset(5), 5, 100);
  expect_offset_entry(idx.lookup_offset(10), 10, 250);
  expect_offset_entry(idx.lookup_offset(20), 20, 700);
  // Between entries: the entry at or below.
  expect_offset_entry(idx.lookup_offset(6), 5, 100);
  expect_offset_entry(idx.lookup_offset(9), 5, 100);
  expect_offset_entry(idx.lookup_offset(19), 10, 250);
  // Before the first.
  EXPECT_FALSE(idx.lookup_offset(0).has_value());
  EXPECT_FALSE(idx.lookup_offset(4).has_value());
  // After the last.
  expect_offset_entry(idx.lookup_offset(21), 20, 700);
  expect_offset_entry(idx.lookup_offset(UINT32_MAX), 20, 700);

  expect_offset_entry(idx.last(), 20, 700);
}

TEST(OffsetIndexTest, LookupPositionExactBetweenBeforeAndAfter) {
  OffsetIndex idx;
  idx.append({5, 100});
  idx.append({10, 250});
  idx.append({20, 700});

  expect_offset_entry(idx.lookup_position(100), 5, 100);
  expect_offset_entry(idx.lookup_position(250), 10, 250);
  expect_offset_entry(idx.lookup_position(700), 20, 700);
  expect_offset_entry(idx.lookup_position(249), 5, 100);
  expect_offset_entry(idx.lookup_position(251), 10, 250);
  EXPECT_FALSE(idx.lookup_position(0).has_value());
  EXPECT_FALSE(idx.lookup_position(99).has_value());
  expect_offset_entry(idx.lookup_position(1ull << 40), 20, 700);
}

TEST(OffsetIndexTest, EmptyIndexHasNoEntries) {
  OffsetIndex idx;
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_FALSE(idx.lookup_offset(0).has_value());
  EXPECT_FALSE(idx.lookup_offset(100).has_value());
  EXPECT_FALSE(idx.lookup_position(100).has_value());
  EXPECT_FALSE(idx.last().has_value());
  EXPECT_EQ(idx.serialize(), "");
}

TEST(OffsetIndexTest, AppendNeverBreaksMonotonicity) {
  OffsetIndex idx;
  idx.append({10, 100});
  idx.append({10, 200});  // same offset
  idx.append({5, 300});   // smaller offset
  idx.append({11, 100});  // same position
  idx.append({12, 50});   // smaller position
  ASSERT_EQ(idx.size(), 1u);
  idx.append({12, 150});
  ASSERT_EQ(idx.size(), 2u);
  expect_offset_entry(idx.last(), 12, 150);
}

TEST(OffsetIndexTest, TruncateToPosition) {
  OffsetIndex idx;
  idx.append({0, 0});
  idx.append({10, 100});
  idx.append({20, 200});
  idx.append({30, 300});

  idx.truncate_to_position(301);  // nothing at or past 301
  EXPECT_EQ(idx.size(), 4u);
  idx.truncate_to_position(300);  // drops the entry at exactly 300
  EXPECT_EQ(idx.size(), 3u);
  expect_offset_entry(idx.last(), 20, 200);
  idx.truncate_to_position(150);
  EXPECT_EQ(idx.size(), 2u);
  expect_offset_entry(idx.lookup_offset(25), 10, 100);
  idx.truncate_to_position(0);
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_FALSE(idx.lookup_offset(25).has_value());

  // Usable again after truncation.
  idx.append({3, 30});
  expect_offset_entry(idx.lookup_offset(4), 3, 30);
  idx.clear();
  EXPECT_EQ(idx.size(), 0u);
}

TEST(OffsetIndexTest, SerializeParseRoundTrip) {
  OffsetIndex idx;
  idx.append({1, 61});
  idx.append({70000, 123456});
  idx.append({0x7fffffff, 0xfffffff0u});
  const std::string bytes = idx.serialize();
  ASSERT_EQ(bytes.size(), 3 * OffsetIndex::kEntrySize);
  EXPECT_EQ(bytes, offset_bytes({{1, 61}, {70000, 123456}, {0x7fffffff, 0xfffffff0u}}));

  auto parsed = OffsetIndex::parse(bytes, 1ull << 33);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].relative_offset, 1u);
  EXPECT_EQ((*parsed)[0].position, 61u);
  EXPECT_EQ((*parsed)[1].relative_offset, 70000u);
  EXPECT_EQ((*parsed)[1].position, 123456u);
  EXPECT_EQ((*parsed)[2].relative_offset, 0x7fffffffu);
  EXPECT_EQ((*parsed)[2].position, 0xfffffff0u);

  OffsetIndex copy;
  copy.assign(std::move(parsed).value());
  EXPECT_EQ(copy.serialize(), bytes);
  expect_offset_entry(copy.lookup_offset(70001), 70000, 123456);

  auto empty = OffsetIndex::parse("", 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(OffsetIndexTest, ParseRejectsBadFiles) {
  const std::string good = offset_bytes({{1, 10}, {2, 20}, {3, 30}});
  ASSERT_TRUE(OffsetIndex::parse(good, 31).ok());

  // Sizes that are not a multiple of 8.
  for (size_t n : {1u, 7u, 9u, 15u, 23u}) {
    std::string b = (good + good).substr(0, n);
    auto r = OffsetIndex::parse(b, 1000);
    ASSERT_FALSE(r.ok()) << "size " << n;
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
  // Out-of-order or repeated relative offsets.
  for (const auto& entries : std::vector<std::vector<std::pair<uint32_t, uint32_t>>>{
           {{2, 10}, {1, 20}}, {{2, 10}, {2, 20}}, {{1, 20}, {2, 10}}, {{1, 20}, {2, 20}},
           {{1, 10}, {5, 50}, {4, 60}}}) {
    auto r = OffsetIndex::parse(offset_bytes(entries), 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
  // Positions at or beyond the log size.
  for (uint64_t log_size : {0u, 10u, 25u, 30u}) {
    auto r = OffsetIndex::parse(good, log_size);
    ASSERT_FALSE(r.ok()) << "log size " << log_size;
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
}

// ---- TimeIndex ---------------------------------------------------------------------------------

TEST(TimeIndexTest, LookupBeforeExactBetweenBeforeAndAfter) {
  TimeIndex idx;
  idx.maybe_append({100, 0});
  idx.maybe_append({200, 5});
  idx.maybe_append({300, 9});
  ASSERT_EQ(idx.size(), 3u);

  // The entry with the largest timestamp strictly below the target.
  EXPECT_FALSE(idx.lookup_before(0).has_value());
  EXPECT_FALSE(idx.lookup_before(100).has_value());  // exact: not strictly below
  expect_time_entry(idx.lookup_before(101), 100, 0);
  expect_time_entry(idx.lookup_before(200), 100, 0);
  expect_time_entry(idx.lookup_before(201), 200, 5);
  expect_time_entry(idx.lookup_before(250), 200, 5);
  expect_time_entry(idx.lookup_before(300), 200, 5);
  expect_time_entry(idx.lookup_before(301), 300, 9);
  expect_time_entry(idx.lookup_before(INT64_MAX), 300, 9);
  expect_time_entry(idx.last(), 300, 9);
}

TEST(TimeIndexTest, MaybeAppendKeepsBothColumnsIncreasing) {
  TimeIndex idx;
  idx.maybe_append({100, 3});
  idx.maybe_append({100, 4});  // timestamp did not grow
  idx.maybe_append({90, 5});   // went back
  idx.maybe_append({150, 3});  // offset did not grow
  EXPECT_EQ(idx.size(), 1u);
  idx.maybe_append({150, 4});
  EXPECT_EQ(idx.size(), 2u);
  expect_time_entry(idx.last(), 150, 4);
}

TEST(TimeIndexTest, TruncateToOffset) {
  TimeIndex idx;
  idx.maybe_append({100, 0});
  idx.maybe_append({200, 5});
  idx.maybe_append({300, 9});
  idx.truncate_to_offset(10);
  EXPECT_EQ(idx.size(), 3u);
  idx.truncate_to_offset(9);  // drops the entry at relative offset 9
  EXPECT_EQ(idx.size(), 2u);
  expect_time_entry(idx.last(), 200, 5);
  idx.truncate_to_offset(1);
  EXPECT_EQ(idx.size(), 1u);
  expect_time_entry(idx.lookup_before(1000), 100, 0);
  idx.truncate_to_offset(0);
  EXPECT_EQ(idx.size(), 0u);
  EXPECT_FALSE(idx.lookup_before(1000).has_value());
  EXPECT_FALSE(idx.last().has_value());
}

TEST(TimeIndexTest, SerializeParseRoundTrip) {
  TimeIndex idx;
  idx.maybe_append({-5, 0});
  idx.maybe_append({1'700'000'000'000, 17});
  idx.maybe_append({INT64_MAX, 0x7ffffffe});
  const std::string bytes = idx.serialize();
  ASSERT_EQ(bytes.size(), 3 * TimeIndex::kEntrySize);
  EXPECT_EQ(bytes, time_bytes({{-5, 0}, {1'700'000'000'000, 17}, {INT64_MAX, 0x7ffffffe}}));

  auto parsed = TimeIndex::parse(bytes, INT32_MAX);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].timestamp, -5);
  EXPECT_EQ((*parsed)[1].timestamp, 1'700'000'000'000);
  EXPECT_EQ((*parsed)[1].relative_offset, 17u);
  EXPECT_EQ((*parsed)[2].timestamp, INT64_MAX);

  TimeIndex copy;
  copy.assign(std::move(parsed).value());
  EXPECT_EQ(copy.serialize(), bytes);
  expect_time_entry(copy.lookup_before(1'700'000'000'001), 1'700'000'000'000, 17);
}

TEST(TimeIndexTest, ParseRejectsBadFiles) {
  const std::string good = time_bytes({{100, 1}, {200, 2}, {300, 3}});
  ASSERT_TRUE(TimeIndex::parse(good, 4).ok());

  for (size_t n : {1u, 11u, 13u, 35u}) {
    auto r = TimeIndex::parse((good + good).substr(0, n), INT32_MAX);
    ASSERT_FALSE(r.ok()) << "size " << n;
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
  for (const auto& entries : std::vector<std::vector<std::pair<int64_t, uint32_t>>>{
           {{200, 1}, {100, 2}},  // timestamps go back
           {{200, 1}, {200, 2}},  // repeated timestamp
           {{100, 2}, {200, 1}},  // offsets go back
           {{100, 2}, {200, 2}},  // repeated offset
           {{100, 1}, {300, 5}, {250, 6}}}) {
    auto r = TimeIndex::parse(time_bytes(entries), INT32_MAX);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
  // Relative offsets at or beyond the limit.
  for (int64_t max_rel : {0, 1, 3}) {
    auto r = TimeIndex::parse(good, max_rel);
    ASSERT_FALSE(r.ok()) << "max relative offset " << max_rel;
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
}

// ---- LeaderEpochCache --------------------------------------------------------------------------

class LeaderEpochCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.create_dirs(dir_).ok()); }

  std::unique_ptr<LeaderEpochCache> load() {
    auto r = LeaderEpochCache::load(&fs_, dir_);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  // The entries a fresh load() of the checkpoint sees.
  std::vector<EpochEntry> reloaded() {
    auto c = load();
    if (!c) return {{-99, -99}};
    return c->entries();
  }

  void write_checkpoint(const std::string& text) {
    ASSERT_TRUE(write_file_atomic(&fs_, join_path(dir_, LeaderEpochCache::kFileName), text).ok());
  }

  SimFileSystem fs_;
  const std::string dir_ = "/data/t-0";
};

using Entries = std::vector<EpochEntry>;

TEST_F(LeaderEpochCacheTest, MissingFileIsEmpty) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->entries().empty());
  EXPECT_FALSE(c->latest().has_value());
  EXPECT_FALSE(c->end_offset_for(0, 10).has_value());
  EXPECT_FALSE(c->end_offset_for(INT32_MAX, 10).has_value());
  EXPECT_FALSE(c->epoch_for_offset(0).has_value());
}

TEST_F(LeaderEpochCacheTest, AssignKeepsEpochsAndOffsetsIncreasing) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->assign(1, 0).ok());
  ASSERT_TRUE(c->assign(1, 5).ok());   // same epoch: ignored
  ASSERT_TRUE(c->assign(0, 7).ok());   // older epoch: ignored
  ASSERT_TRUE(c->assign(-1, 8).ok());  // no epoch: ignored
  EXPECT_EQ(c->entries(), (Entries{{1, 0}}));
  ASSERT_TRUE(c->assign(3, 10).ok());
  ASSERT_TRUE(c->assign(4, 10).ok());  // epoch 3 wrote nothing: replaced
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {4, 10}}));
  ASSERT_TRUE(c->assign(5, 8).ok());  // starts before the latest: ignored
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {4, 10}}));
  ASSERT_TRUE(c->assign(6, 20).ok());
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {4, 10}, {6, 20}}));
  ASSERT_TRUE(c->latest().has_value());
  EXPECT_EQ(*c->latest(), (EpochEntry{6, 20}));
  EXPECT_EQ(reloaded(), (Entries{{1, 0}, {4, 10}, {6, 20}}));
}

TEST_F(LeaderEpochCacheTest, EndOffsetForAndEpochForOffset) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->assign(2, 5).ok());
  ASSERT_TRUE(c->assign(4, 10).ok());
  ASSERT_TRUE(c->assign(7, 30).ok());
  const int64_t leo = 42;

  EXPECT_FALSE(c->end_offset_for(0, leo).has_value());
  EXPECT_FALSE(c->end_offset_for(1, leo).has_value());
  EXPECT_EQ(c->end_offset_for(2, leo), (EpochEntry{2, 10}));
  EXPECT_EQ(c->end_offset_for(3, leo), (EpochEntry{2, 10}));
  EXPECT_EQ(c->end_offset_for(4, leo), (EpochEntry{4, 30}));
  EXPECT_EQ(c->end_offset_for(6, leo), (EpochEntry{4, 30}));
  EXPECT_EQ(c->end_offset_for(7, leo), (EpochEntry{7, leo}));
  EXPECT_EQ(c->end_offset_for(100, leo), (EpochEntry{7, leo}));

  EXPECT_FALSE(c->epoch_for_offset(0).has_value());
  EXPECT_FALSE(c->epoch_for_offset(4).has_value());
  EXPECT_EQ(c->epoch_for_offset(5), 2);
  EXPECT_EQ(c->epoch_for_offset(9), 2);
  EXPECT_EQ(c->epoch_for_offset(10), 4);
  EXPECT_EQ(c->epoch_for_offset(29), 4);
  EXPECT_EQ(c->epoch_for_offset(30), 7);
  EXPECT_EQ(c->epoch_for_offset(1'000'000), 7);
}

TEST_F(LeaderEpochCacheTest, TruncateFromEnd) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->assign(1, 0).ok());
  ASSERT_TRUE(c->assign(2, 10).ok());
  ASSERT_TRUE(c->assign(3, 20).ok());

  ASSERT_TRUE(c->truncate_from_end(21).ok());
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {2, 10}, {3, 20}}));
  ASSERT_TRUE(c->truncate_from_end(20).ok());  // epoch 3 started at 20: gone
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {2, 10}}));
  EXPECT_EQ(reloaded(), (Entries{{1, 0}, {2, 10}}));
  ASSERT_TRUE(c->truncate_from_end(11).ok());
  EXPECT_EQ(c->entries(), (Entries{{1, 0}, {2, 10}}));
  ASSERT_TRUE(c->truncate_from_end(5).ok());
  EXPECT_EQ(c->entries(), (Entries{{1, 0}}));
  EXPECT_EQ(c->end_offset_for(2, 5), (EpochEntry{1, 5}));
  ASSERT_TRUE(c->truncate_from_end(0).ok());
  EXPECT_TRUE(c->entries().empty());
  EXPECT_TRUE(reloaded().empty());

  // After truncation, a new epoch can start where the log now ends.
  ASSERT_TRUE(c->assign(5, 0).ok());
  EXPECT_EQ(reloaded(), (Entries{{5, 0}}));
}

TEST_F(LeaderEpochCacheTest, TruncateFromStart) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->assign(1, 5).ok());
  ASSERT_TRUE(c->assign(4, 10).ok());
  ASSERT_TRUE(c->assign(6, 20).ok());

  ASSERT_TRUE(c->truncate_from_start(3).ok());  // before the first: nothing changes
  EXPECT_EQ(c->entries(), (Entries{{1, 5}, {4, 10}, {6, 20}}));
  ASSERT_TRUE(c->truncate_from_start(5).ok());
  EXPECT_EQ(c->entries(), (Entries{{1, 5}, {4, 10}, {6, 20}}));
  ASSERT_TRUE(c->truncate_from_start(12).ok());  // epoch 4 covers 12: clamped
  EXPECT_EQ(c->entries(), (Entries{{4, 12}, {6, 20}}));
  EXPECT_EQ(reloaded(), (Entries{{4, 12}, {6, 20}}));
  ASSERT_TRUE(c->truncate_from_start(20).ok());
  EXPECT_EQ(c->entries(), (Entries{{6, 20}}));
  ASSERT_TRUE(c->truncate_from_start(25).ok());
  EXPECT_EQ(c->entries(), (Entries{{6, 25}}));
  EXPECT_EQ(reloaded(), (Entries{{6, 25}}));
  EXPECT_EQ(c->epoch_for_offset(25), 6);
  EXPECT_FALSE(c->epoch_for_offset(24).has_value());
}

TEST_F(LeaderEpochCacheTest, ClearPersists) {
  auto c = load();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->assign(1, 0).ok());
  ASSERT_TRUE(c->assign(2, 3).ok());
  EXPECT_EQ(reloaded(), (Entries{{1, 0}, {2, 3}}));
  ASSERT_TRUE(c->clear().ok());
  EXPECT_TRUE(c->entries().empty());
  EXPECT_TRUE(reloaded().empty());
}

TEST_F(LeaderEpochCacheTest, PersistsAcrossLoadOnRealFileSystem) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ASSERT_NE(tmp, nullptr);
  const std::string dir = std::string(tmp) + "/epoch_cache_real";
  FileSystem* fs = posix_file_system();
  ASSERT_TRUE(fs->remove_all(dir).ok());
  ASSERT_TRUE(fs->create_dirs(dir).ok());
  {
    auto c = LeaderEpochCache::load(fs, dir);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->assign(3, 0).ok());
    ASSERT_TRUE((*c)->assign(9, 100).ok());
    ASSERT_TRUE((*c)->assign(12, 250).ok());
    ASSERT_TRUE((*c)->truncate_from_end(250).ok());
  }
  auto c = LeaderEpochCache::load(fs, dir);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ((*c)->entries(), (Entries{{3, 0}, {9, 100}}));
  EXPECT_EQ((*c)->end_offset_for(5, 300), (EpochEntry{3, 100}));
  EXPECT_FALSE(fs->exists(join_path(dir, std::string(LeaderEpochCache::kFileName) + ".tmp")));
}

TEST_F(LeaderEpochCacheTest, MalformedFileIsCorruptMessage) {
  for (const std::string& text : {
           std::string(""),
           std::string("garbage"),
           std::string("1\n1\n1 0\n"),           // unknown version
           std::string("0\n"),                   // no count
           std::string("0\nabc\n"),              // bad count
           std::string("0\n-1\n"),               // negative count
           std::string("0\n2\n1 0\n"),           // fewer entries than the count
           std::string("0\n1\n1\n"),             // entry missing its offset
           std::string("0\n1\nx 0\n"),           // non-numeric epoch
           std::string("0\n2\n5 10\n3 20\n"),    // epochs go back
           std::string("0\n2\n5 10\n5 20\n"),    // repeated epoch
           std::string("0\n2\n1 10\n2 5\n"),     // start offsets go back
       }) {
    write_checkpoint(text);
    auto r = LeaderEpochCache::load(&fs_, dir_);
    ASSERT_FALSE(r.ok()) << "accepted: '" << text << "'";
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage) << text;
  }
  write_checkpoint("0\n2\n1 0\n4 10\n");
  EXPECT_EQ(reloaded(), (Entries{{1, 0}, {4, 10}}));
}

// A checkpoint holding more entries than its count (or trailing junk) is malformed too: silently
// dropping the extra epochs would make end_offset_for() answer wrongly after a restart.
TEST_F(LeaderEpochCacheTest, ExtraEntriesOrTrailingJunkIsCorruptMessage) {
  for (const std::string& text : {
           std::string("0\n1\n1 0\n2 5\n"),
           std::string("0\n1\n1 0\njunk\n"),
       }) {
    write_checkpoint(text);
    auto r = LeaderEpochCache::load(&fs_, dir_);
    ASSERT_FALSE(r.ok()) << "accepted: '" << text << "' as "
                         << (r.ok() ? std::to_string((*r)->entries().size()) : "") << " entries";
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
  }
}

// The class invariant says start offsets strictly increase; a checkpoint with two epochs
// starting at the same offset violates it (assign() never writes one: it drops the empty epoch).
TEST_F(LeaderEpochCacheTest, RepeatedStartOffsetIsCorruptMessage) {
  write_checkpoint("0\n2\n1 5\n2 5\n");
  auto r = LeaderEpochCache::load(&fs_, dir_);
  ASSERT_FALSE(r.ok()) << "accepted two epochs starting at offset 5";
  EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
}

}  // namespace
}  // namespace gannet::storage
