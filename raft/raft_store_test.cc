// RaftStore on real files: compact_before deletes the whole segments a durable snapshot covers,
// and what load() restores after it (the snapshot, then the log from its end) is what it restored
// before.
#include "raft/raft_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "testing/process_harness.h"

namespace gannet::raft {
namespace {

size_t segment_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/__cluster_metadata-0")) {
    if (e.path().extension() == ".log") ++n;
  }
  return n;
}

TEST(RaftStore, TheDirectoryIdIsMadeOnceAndKept) {
  const std::string dir = testing::test_dir("raft_store_directory_id");
  std::string first;
  {
    auto s = RaftStore::open(dir);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    auto id = (*s)->directory_id();
    ASSERT_TRUE(id.ok()) << id.error().to_string();
    first = *id;
    EXPECT_EQ(first.size(), 32u);
    EXPECT_EQ(*(*s)->directory_id(), first);
  }
  auto s = RaftStore::open(dir);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*(*s)->directory_id(), first) << "a restart must keep the directory's id";
  auto other = RaftStore::open(testing::test_dir("raft_store_directory_id_2"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*(*other)->directory_id(), first);
  {
    std::ofstream f(dir + "/directory-id", std::ios::trunc);
    f << "not an id\n";
  }
  EXPECT_FALSE((*s)->directory_id().ok()) << "a damaged id must not be replaced silently";
}

TEST(RaftStore, CompactBeforeDeletesTheSegmentsASnapshotCoversAndLoadStillRestoresTheRest) {
  const std::string dir = testing::test_dir("raft_store");
  const int64_t n = 400;
  {
    auto s = RaftStore::open(dir, /*segment_bytes=*/16 << 10);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    for (int64_t i = 0; i < n; ++i) {  // one append each, as the quorum writes them (a log rolls between appends)
      ASSERT_TRUE((*s)->append({Entry{i, 1, false, std::string(300, 'a' + i % 26)}}).ok());
    }
    ASSERT_TRUE((*s)->sync().ok());
    const size_t before = segment_files(dir);
    ASSERT_GE(before, 5u) << "the test needs several segments";
    // A snapshot this node took at offset 250, then the compaction it allows.
    ASSERT_TRUE((*s)->save_snapshot(Snapshot{SnapshotId{250, 1}, "state at 250"}, /*installed=*/false).ok());
    ASSERT_TRUE((*s)->compact_before(250).ok());
    const size_t after = segment_files(dir);
    EXPECT_LT(after, before) << "nothing below the snapshot was deleted";
    EXPECT_GE(after, 2u) << "a segment holding offsets >= 250 was deleted";
    // Nothing at or above the snapshot went: load() restores it and every entry from 250 on.
    auto r = (*s)->load();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(r->snapshot.has_value());
    EXPECT_EQ(r->snapshot->id.end_offset, 250);
    ASSERT_EQ(static_cast<int64_t>(r->log.size()), n - 250);
    EXPECT_EQ(r->log.front().offset, 250);
    EXPECT_EQ(r->log.back().offset, n - 1);
    EXPECT_EQ(r->log.front().data, std::string(300, 'a' + 250 % 26));
  }
  // And after a restart.
  auto s = RaftStore::open(dir, 16 << 10);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  auto r = (*s)->load();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(static_cast<int64_t>(r->log.size()), n - 250);
  EXPECT_EQ(r->log.front().offset, 250);
  // Compacting again below the log start changes nothing.
  ASSERT_TRUE((*s)->compact_before(10).ok());
  auto again = (*s)->load();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->log.size(), r->log.size());
}

}  // namespace
}  // namespace gannet::raft
