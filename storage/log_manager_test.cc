// Tests of LogManager (storage/log_manager.h) on the real file system (in $TEST_TMPDIR) and on
// SimFileSystem: partition lifecycle, topic-name rules, clean shutdown and recovery, leftover
// deletions, parallel startup, and the retention/flush passes with per-log configs.
#include "storage/log_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/record_batch.h"
#include "storage/segment.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

// ---- Helpers -----------------------------------------------------------------------------------

std::string make_batch(const std::string& value, int64_t ts) {
  RecordBatchBuilder b;
  b.add(ts, std::string_view("k"), std::string_view(value));
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

size_t batch_size() { return make_batch("v-00", 0).size(); }

void append(Log& log, const std::string& value, int64_t ts = 1000, int32_t epoch = 1) {
  std::string b = make_batch(value, ts);
  auto r = log.append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(b.data()), b.size()), epoch);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
}

// Values of every record in the log, in offset order.
std::vector<std::string> contents(const Log& log) {
  auto r = log.read(log.log_start_offset(), 1 << 30);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return {"<read error>"};
  std::string bytes;
  EXPECT_TRUE(r->copy_to(&bytes).ok());
  std::vector<std::string> out;
  size_t pos = 0;
  int64_t expected = log.log_start_offset();
  while (pos < bytes.size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, SIZE_MAX);
    if (!size.ok() || *size > bytes.size() - pos || !validate_batch(p, *size).ok()) {
      ADD_FAILURE() << "bad batch at " << pos;
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
      EXPECT_EQ(rec.offset, expected++);
      out.emplace_back(rec.value ? std::string(*rec.value) : "<null>");
    }
    pos += *size;
  }
  return out;
}

std::string fresh_tmp_dir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base = tmp != nullptr ? tmp : "/tmp";
  static std::atomic<int> counter{0};
  std::string clean = name;
  std::replace(clean.begin(), clean.end(), '/', '_');
  std::string dir = base + "/" + clean + "_" + std::to_string(counter.fetch_add(1));
  EXPECT_TRUE(posix_file_system()->remove_all(dir).ok());
  EXPECT_TRUE(posix_file_system()->create_dirs(dir).ok());
  return dir;
}

TopicPartition tp(const std::string& topic, int32_t partition) { return TopicPartition{topic, partition}; }

std::shared_ptr<Log> create_in(LogManager& m, int32_t partition) {
  auto r = m.create(TopicPartition{"c", partition});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? *r : nullptr;
}

// ---- Topic names (no file system) ----------------------------------------------------------------

TEST(TopicNameTest, ValidTopicName) {
  EXPECT_TRUE(valid_topic_name("a.b_c-D"));
  EXPECT_TRUE(valid_topic_name("a"));
  EXPECT_TRUE(valid_topic_name("..."));
  EXPECT_TRUE(valid_topic_name("__consumer_offsets"));
  EXPECT_TRUE(valid_topic_name(std::string(249, 'x')));
  EXPECT_FALSE(valid_topic_name(std::string(250, 'x')));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("."));
  EXPECT_FALSE(valid_topic_name(".."));
  EXPECT_FALSE(valid_topic_name("a/b"));
  EXPECT_FALSE(valid_topic_name("a b"));
  EXPECT_FALSE(valid_topic_name("a\\b"));
  EXPECT_FALSE(valid_topic_name("a:b"));
  EXPECT_FALSE(valid_topic_name(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_topic_name("caf\xc3\xa9"));
}

TEST(TopicNameTest, ParseDirectoryNames) {
  auto p = TopicPartition::parse("a.b_c-D-3");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->topic, "a.b_c-D");
  EXPECT_EQ(p->partition, 3);
  EXPECT_EQ(p->dir_name(), "a.b_c-D-3");

  p = TopicPartition::parse("orders-0");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->topic, "orders");
  EXPECT_EQ(p->partition, 0);
  p = TopicPartition::parse("--0");  // "-" is a legal topic name
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->topic, "-");
  EXPECT_EQ(p->partition, 0);
  p = TopicPartition::parse("orders-123456789");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->partition, 123456789);
  // Round trip.
  for (const TopicPartition& t : {tp("x", 0), tp("a-b-c", 17), tp(std::string(249, 'z'), 5)}) {
    auto back = TopicPartition::parse(t.dir_name());
    ASSERT_TRUE(back.has_value()) << t.dir_name();
    EXPECT_EQ(*back, t);
  }

  for (const std::string& bad :
       {std::string(""), std::string("orders"), std::string("orders-"), std::string("-0"),
        std::string(".-0"), std::string("..-0"), std::string("a b-0"), std::string("a/b-0"),
        std::string("orders-x"), std::string("orders-1x"), std::string("orders- 1"), std::string("orders-+1"),
        std::string("orders-1234567890"), std::string(250, 'x') + "-0",
        std::string("orders-0.1700000000000.1234-delete"), std::string("recovery-point-offset-checkpoint")}) {
    EXPECT_FALSE(TopicPartition::parse(bad).has_value()) << "parsed '" << bad << "'";
  }
}

// ---- LogManager on both file systems -------------------------------------------------------------

class LogManagerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      fs_ = &sim_;
      data_dir_ = "/data";
    } else {
      fs_ = posix_file_system();
      data_dir_ = fresh_tmp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
  }

  std::unique_ptr<LogManager> open_manager(int recovery_threads = 2, LogConfig config = {}) {
    LogManager::Options o;
    o.data_dir = data_dir_;
    o.fs = fs_;
    o.clock = &clock_;
    o.default_config = config;
    o.recovery_threads = recovery_threads;
    o.background = false;
    auto r = LogManager::open(o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  std::shared_ptr<Log> create(LogManager& m, const TopicPartition& t, std::optional<LogConfig> c = std::nullopt) {
    auto r = m.create(t, c);
    EXPECT_TRUE(r.ok()) << t.dir_name() << ": " << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : nullptr;
  }

  std::string path(const std::string& name) const { return join_path(data_dir_, name); }

  std::vector<std::string> dir_entries() {
    auto names = fs_->list_dir(data_dir_);
    EXPECT_TRUE(names.ok());
    if (!names.ok()) return {};
    std::sort(names->begin(), names->end());
    return *names;
  }

  // The recovery-point checkpoint as a map "<topic>-<partition>" -> offset.
  std::map<std::string, int64_t> read_checkpoint() {
    auto text = read_file(fs_, path(LogManager::kRecoveryPointFile));
    EXPECT_TRUE(text.ok());
    std::map<std::string, int64_t> out;
    if (!text.ok()) return out;
    std::istringstream in(*text);
    int version = -1;
    size_t count = 0;
    EXPECT_TRUE(in >> version >> count);
    EXPECT_EQ(version, 0);
    for (size_t i = 0; i < count; ++i) {
      std::string topic;
      int32_t partition;
      int64_t offset;
      EXPECT_TRUE(in >> topic >> partition >> offset);
      out[tp(topic, partition).dir_name()] = offset;
    }
    return out;
  }

  SimFileSystem sim_;
  FileSystem* fs_ = nullptr;
  std::string data_dir_;
  ManualClock clock_;
};

TEST_P(LogManagerTest, CreateGetAndRemove) {
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->partitions().empty());
  auto a = create(*m, tp("orders", 0));
  auto b = create(*m, tp("orders", 1));
  auto c = create(*m, tp("a.b_c-D", 7));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(m->get(tp("orders", 0)), a);
  EXPECT_EQ(m->get(tp("orders", 1)), b);
  EXPECT_EQ(m->get(tp("a.b_c-D", 7)), c);
  EXPECT_EQ(m->get(tp("orders", 2)), nullptr);
  EXPECT_EQ(m->get(tp("nope", 0)), nullptr);
  EXPECT_EQ(m->partitions(), (std::vector<TopicPartition>{tp("a.b_c-D", 7), tp("orders", 0), tp("orders", 1)}));
  EXPECT_TRUE(fs_->is_dir(path("orders-0")));
  EXPECT_TRUE(fs_->is_dir(path("a.b_c-D-7")));
  EXPECT_EQ(a->dir(), path("orders-0"));
  append(*a, "a0");
  append(*a, "a1");
  append(*b, "b0");

  Status st = m->remove(tp("orders", 0));
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(m->get(tp("orders", 0)), nullptr);
  EXPECT_FALSE(fs_->exists(path("orders-0")));
  EXPECT_EQ(m->partitions(), (std::vector<TopicPartition>{tp("a.b_c-D", 7), tp("orders", 1)}));
  for (const std::string& n : dir_entries()) {
    EXPECT_EQ(n.find("-delete"), std::string::npos) << "left behind: " << n;
  }
  // The other partitions are untouched.
  EXPECT_EQ(contents(*b), (std::vector<std::string>{"b0"}));

  Status again = m->remove(tp("orders", 0));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kNotFound);
  Status never = m->remove(tp("never", 0));
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.error().code, Errc::kNotFound);

  // Re-created empty.
  auto a2 = create(*m, tp("orders", 0));
  ASSERT_NE(a2, nullptr);
  EXPECT_EQ(a2->log_end_offset(), 0);
  EXPECT_TRUE(contents(*a2).empty());

  // And a removed partition does not come back after a restart.
  ASSERT_TRUE(m->remove(tp("orders", 1)).ok());
  ASSERT_TRUE(m->close().ok());
  m.reset();
  m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->partitions(), (std::vector<TopicPartition>{tp("a.b_c-D", 7), tp("orders", 0)}));
}

TEST_P(LogManagerTest, CreateOfAnExistingPartitionIsAlreadyExists) {
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  auto a = create(*m, tp("t", 0));
  ASSERT_NE(a, nullptr);
  append(*a, "keep");
  auto dup = m->create(tp("t", 0));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(m->get(tp("t", 0)), a);
  EXPECT_EQ(contents(*a), (std::vector<std::string>{"keep"}));

  // Also for a partition found on disk at startup.
  ASSERT_TRUE(m->close().ok());
  m.reset();
  m = open_manager();
  ASSERT_NE(m, nullptr);
  dup = m->create(tp("t", 0));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kAlreadyExists);
  auto log = m->get(tp("t", 0));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(contents(*log), (std::vector<std::string>{"keep"}));
}

TEST_P(LogManagerTest, InvalidTopicNamesAreRejected) {
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  for (const std::string& bad : {std::string(""), std::string("."), std::string(".."), std::string(250, 'x'),
                                std::string("a/b"), std::string("a b"), std::string("../escape")}) {
    auto r = m->create(tp(bad, 0));
    ASSERT_FALSE(r.ok()) << "created '" << bad << "'";
    EXPECT_EQ(r.error().code, Errc::kInvalidConfig);
  }
  auto neg = m->create(tp("ok", -1));
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().code, Errc::kInvalidConfig);
  EXPECT_TRUE(m->partitions().empty());
  // Nothing but the (empty) recovery-point and HW checkpoints the manager writes at open.
  EXPECT_EQ(dir_entries(),
            (std::vector<std::string>{LogManager::kRecoveryPointFile, LogManager::kReplicationOffsetFile}));

  EXPECT_NE(create(*m, tp("a.b_c-D", 0)), nullptr);
  EXPECT_NE(create(*m, tp(std::string(249, 'y'), 0)), nullptr);
  EXPECT_EQ(m->partitions().size(), 2u);
}

TEST_P(LogManagerTest, CleanCloseWritesMarkerAndCheckpointAndReopenRestoresEverything) {
  LogConfig small;
  small.segment_bytes = static_cast<int64_t>(2 * batch_size());
  auto m = open_manager(2, small);
  ASSERT_NE(m, nullptr);
  std::map<std::string, std::vector<std::string>> expected;
  for (int p = 0; p < 3; ++p) {
    auto log = create(*m, tp("events", p));
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 3 + 2 * p; ++i) {
      std::string v = "p" + std::to_string(p) + "-" + std::to_string(i);
      append(*log, v);
      expected[log->dir()].push_back(v);
    }
  }
  auto empty = create(*m, tp("empty", 0));
  ASSERT_NE(empty, nullptr);
  EXPECT_FALSE(fs_->exists(path(LogManager::kCleanShutdownFile)));

  ASSERT_TRUE(m->close().ok());
  EXPECT_TRUE(fs_->exists(path(LogManager::kCleanShutdownFile)));
  ASSERT_TRUE(fs_->exists(path(LogManager::kRecoveryPointFile)));
  EXPECT_EQ(read_checkpoint(), (std::map<std::string, int64_t>{
                                   {"empty-0", 0}, {"events-0", 3}, {"events-1", 5}, {"events-2", 7}}));
  if (GetParam()) {
    EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  }
  m.reset();

  m = open_manager(2, small);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(fs_->exists(path(LogManager::kCleanShutdownFile))) << "marker must go at startup";
  EXPECT_EQ(m->partitions(),
            (std::vector<TopicPartition>{tp("empty", 0), tp("events", 0), tp("events", 1), tp("events", 2)}));
  for (int p = 0; p < 3; ++p) {
    auto log = m->get(tp("events", p));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(contents(*log), expected[log->dir()]);
    EXPECT_EQ(log->log_end_offset(), 3 + 2 * p);
    EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}}));
  }
  auto e = m->get(tp("empty", 0));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->log_end_offset(), 0);

  // Appends continue, and a crash now (no close) is recovered without the marker.
  auto log = m->get(tp("events", 1));
  append(*log, "after");
  ASSERT_TRUE(log->flush().ok());
  m.reset();
  m = open_manager(2, small);
  ASSERT_NE(m, nullptr);
  log = m->get(tp("events", 1));
  ASSERT_NE(log, nullptr);
  auto want = expected[log->dir()];
  want.push_back("after");
  EXPECT_EQ(contents(*log), want);
}

// Issue 14.3: the high watermark survives a restart (Kafka's replication-offset checkpoint). A
// restarted leader served nothing until its next append (its HW was 0), ListOffsets(latest) said
// 0, and compaction, which stops at the HW, did nothing. Written with the recovery points and at
// close; read back clamped to the log end (a crash may have cut the tail below it); a partition
// deleted and created again never inherits the old log's HW.
TEST_P(LogManagerTest, TheHighWatermarkSurvivesARestart) {
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  auto a = create(*m, tp("a", 0));
  auto b = create(*m, tp("b", 0));
  auto gone = create(*m, tp("gone", 0));
  ASSERT_TRUE(a && b && gone);
  for (int i = 0; i < 5; ++i) append(*a, "a" + std::to_string(i));
  for (int i = 0; i < 3; ++i) append(*b, "b" + std::to_string(i));
  for (int i = 0; i < 4; ++i) append(*gone, "g" + std::to_string(i));
  a->update_high_watermark(4);
  b->update_high_watermark(3);
  gone->update_high_watermark(4);
  ASSERT_TRUE(m->close().ok());
  ASSERT_TRUE(fs_->exists(path(LogManager::kReplicationOffsetFile)));
  m.reset();
  m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->get(tp("a", 0))->high_watermark(), 4) << "clean restart";
  EXPECT_EQ(m->get(tp("b", 0))->high_watermark(), 3);

  // A crash after a checkpoint: the checkpointed HW comes back.
  a = m->get(tp("a", 0));
  append(*a, "a5");
  a->update_high_watermark(6);
  ASSERT_TRUE(a->flush().ok());
  ASSERT_TRUE(m->checkpoint_recovery_points().ok());
  // The partition is deleted and created again; its new log holds two records, none committed.
  ASSERT_TRUE(m->remove(tp("gone", 0)).ok());
  gone = create(*m, tp("gone", 0));
  ASSERT_NE(gone, nullptr);
  append(*gone, "new0");
  append(*gone, "new1");
  ASSERT_TRUE(gone->flush().ok());
  a.reset();
  gone.reset();
  m.reset();  // no close()
  m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->get(tp("a", 0))->high_watermark(), 6) << "unclean restart after a checkpoint";
  EXPECT_LE(m->get(tp("gone", 0))->high_watermark(), 0) << "the re-created log inherited the old HW";

  // The checkpoint says more than the log holds (its tail was lost): clamped to the log end.
  m.reset();
  const std::string cp = "0\n1\nb 0 9\n";
  ASSERT_TRUE(write_file_atomic(fs_, path(LogManager::kReplicationOffsetFile), cp).ok());
  m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->get(tp("b", 0))->high_watermark(), 3);
}

TEST_P(LogManagerTest, UncleanRestartRecoversEveryPartition) {
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  auto a = create(*m, tp("a", 0));
  auto b = create(*m, tp("b", 0));
  ASSERT_TRUE(a && b);
  append(*a, "a0");
  append(*a, "a1");
  append(*b, "b0");
  ASSERT_TRUE(a->flush().ok());
  ASSERT_TRUE(b->flush().ok());
  ASSERT_TRUE(m->checkpoint_recovery_points().ok());
  EXPECT_EQ(read_checkpoint(), (std::map<std::string, int64_t>{{"a-0", 2}, {"b-0", 1}}));
  a.reset();
  b.reset();
  m.reset();  // no close(): like a crash of the process (the sim keeps unsynced data)

  // A torn tail in one partition's active segment.
  {
    auto f = fs_->open(join_path(path("a-0"), Segment::file_name(0, ".log")), false);
    ASSERT_TRUE(f.ok());
    const std::string junk("\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x40torn", 16);
    ASSERT_TRUE((*f)->append(junk.data(), junk.size()).ok());
  }
  m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(fs_->exists(path(LogManager::kCleanShutdownFile)));
  a = m->get(tp("a", 0));
  b = m->get(tp("b", 0));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(contents(*a), (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(a->log_end_offset(), 2);
  EXPECT_EQ(contents(*b), (std::vector<std::string>{"b0"}));
  append(*a, "a2");
  EXPECT_EQ(a->log_end_offset(), 3);
}

TEST_P(LogManagerTest, LeftoverDeleteDirectoryIsRemovedAtOpen) {
  {
    auto m = open_manager();
    ASSERT_NE(m, nullptr);
    auto log = create(*m, tp("live", 0));
    ASSERT_NE(log, nullptr);
    append(*log, "x");
    ASSERT_TRUE(m->close().ok());
  }
  // What remove() leaves if the process dies between its rename and the removal.
  const std::string doomed = path("gone-0.1700000000000.4242-delete");
  ASSERT_TRUE(fs_->create_dirs(doomed).ok());
  {
    auto f = fs_->open(join_path(doomed, Segment::file_name(0, ".log")), true);
    ASSERT_TRUE(f.ok());
    std::string b = make_batch("old", 1);
    ASSERT_TRUE((*f)->append(b.data(), b.size()).ok());
  }
  // Something that is not a partition directory is left alone.
  ASSERT_TRUE(fs_->create_dirs(path("not a partition")).ok());

  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(fs_->exists(doomed));
  EXPECT_EQ(m->partitions(), (std::vector<TopicPartition>{tp("live", 0)}));
  EXPECT_TRUE(fs_->is_dir(path("not a partition")));
  EXPECT_EQ(m->get(tp("gone", 0)), nullptr);
}

TEST_P(LogManagerTest, ManyPartitionsOpenInParallel) {
  constexpr int kPartitions = 50;
  LogConfig small;
  small.segment_bytes = static_cast<int64_t>(3 * batch_size());
  {
    auto m = open_manager(4, small);
    ASSERT_NE(m, nullptr);
    for (int p = 0; p < kPartitions; ++p) {
      auto log = create(*m, tp("many", p));
      ASSERT_NE(log, nullptr);
      for (int i = 0; i <= p % 7; ++i) append(*log, "m" + std::to_string(p) + "-" + std::to_string(i));
    }
    ASSERT_TRUE(m->close().ok());
  }
  auto check = [&](LogManager& m) {
    ASSERT_EQ(m.partitions().size(), static_cast<size_t>(kPartitions));
    for (int p = 0; p < kPartitions; ++p) {
      auto log = m.get(tp("many", p));
      ASSERT_NE(log, nullptr) << p;
      std::vector<std::string> want;
      for (int i = 0; i <= p % 7; ++i) want.push_back("m" + std::to_string(p) + "-" + std::to_string(i));
      EXPECT_EQ(contents(*log), want) << p;
    }
  };
  {
    auto m = open_manager(4, small);  // clean
    ASSERT_NE(m, nullptr);
    check(*m);
  }
  {
    auto m = open_manager(4, small);  // unclean: the previous manager did not close
    ASSERT_NE(m, nullptr);
    check(*m);
    ASSERT_TRUE(m->close().ok());
  }
  {
    auto m = open_manager(1, small);
    ASSERT_NE(m, nullptr);
    check(*m);
  }
}

TEST_P(LogManagerTest, RunRetentionAppliesEachLogsConfig) {
  const size_t s = batch_size();
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  LogConfig one_per_segment;
  one_per_segment.segment_bytes = static_cast<int64_t>(s);
  LogConfig bounded = one_per_segment;
  bounded.retention_bytes = static_cast<int64_t>(2 * s);
  LogConfig timed = one_per_segment;
  timed.retention_ms = 60'000;
  auto keep = create(*m, tp("keep", 0), one_per_segment);
  auto small = create(*m, tp("small", 0), bounded);
  auto old = create(*m, tp("old", 0), timed);
  ASSERT_TRUE(keep && small && old);
  const int64_t now = clock_.now_ms();
  for (int i = 0; i < 6; ++i) {
    const std::string v = "v-0" + std::to_string(i);
    append(*keep, v, now - 120'000);
    append(*small, v, now - 120'000);
    append(*old, v, i < 4 ? now - 120'000 : now);
  }
  ASSERT_EQ(keep->segment_count(), 6u);

  auto r = m->run_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4 + 4);
  EXPECT_EQ(keep->log_start_offset(), 0);
  EXPECT_EQ(keep->segment_count(), 6u);
  EXPECT_EQ(small->log_start_offset(), 4);
  EXPECT_EQ(contents(*small), (std::vector<std::string>{"v-04", "v-05"}));
  EXPECT_EQ(old->log_start_offset(), 4);
  EXPECT_EQ(contents(*old), (std::vector<std::string>{"v-04", "v-05"}));

  r = m->run_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
}

TEST_P(LogManagerTest, RunFlushAppliesEachLogsFlushMs) {
  clock_.advance_ms(5'000);  // a monotonic clock is not at zero when logs open
  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  LogConfig fast;
  fast.flush_ms = 1'000;
  auto flushed = create(*m, tp("fast", 0), fast);
  auto lazy = create(*m, tp("lazy", 0));  // flush.ms: never
  ASSERT_TRUE(flushed && lazy);
  append(*flushed, "f");
  append(*lazy, "l");
  ASSERT_TRUE(m->run_flush().ok());
  EXPECT_EQ(flushed->durable_offset(), 0);
  EXPECT_EQ(lazy->durable_offset(), 0);
  clock_.advance_ms(1'000);
  ASSERT_TRUE(m->run_flush().ok());
  EXPECT_EQ(flushed->durable_offset(), 1);
  EXPECT_EQ(lazy->durable_offset(), 0) << "a log with flush.ms = never was flushed by run_flush";
}

// ---- Crashes (SimFileSystem) ----------------------------------------------------------------------

class LogManagerCrashTest : public ::testing::Test {
 protected:
  std::unique_ptr<LogManager> open(SimFileSystem& fs, ManualClock& clock) {
    LogManager::Options o;
    o.data_dir = "/data";
    o.fs = &fs;
    o.clock = &clock;
    o.default_config.segment_bytes = static_cast<int64_t>(3 * batch_size());
    o.background = false;
    auto r = LogManager::open(o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  static std::string value(char prefix, int i) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%c-%02d", prefix, i);  // all the same size as batch_size()
    return buf;
  }
};

// Flushed and checkpointed data survives a crash; beyond it, each partition holds a valid prefix
// of what was appended.
TEST_F(LogManagerCrashTest, CrashKeepsCheckpointedDataAndAValidPrefix) {
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFileSystem fs;
    ManualClock clock;
    std::mt19937_64 rng(seed);
    auto m = open(fs, clock);
    ASSERT_NE(m, nullptr);
    std::vector<std::string> appended;
    for (int p = 0; p < 3; ++p) {
      auto log = create_in(*m, p);
      ASSERT_NE(log, nullptr);
      for (int i = 0; i < 7; ++i) append(*log, value('a', i));
      ASSERT_TRUE(log->flush().ok());
      for (int i = 7; i < 17; ++i) append(*log, value('a', i));
    }
    for (int i = 0; i < 17; ++i) appended.push_back(value('a', i));
    ASSERT_TRUE(m->checkpoint_recovery_points().ok());
    fs.crash(rng);
    m.reset();

    m = open(fs, clock);
    ASSERT_NE(m, nullptr);
    for (int p = 0; p < 3; ++p) {
      auto log = m->get(tp("c", p));
      ASSERT_NE(log, nullptr);
      auto got = contents(*log);
      ASSERT_GE(got.size(), 7u);
      ASSERT_LE(got.size(), appended.size());
      EXPECT_TRUE(std::equal(got.begin(), got.end(), appended.begin()));
    }
  }
}

// A follower truncates below the checkpointed recovery point and appends new data, then the
// machine crashes before the next checkpoint. Recovery must not trust the segments written after
// the truncation (they were never synced): the log must come back as a valid prefix of
// [kept records, new records], never with torn batches or holes.
TEST_F(LogManagerCrashTest, CrashAfterTruncationBelowTheCheckpointLeavesAValidPrefix) {
  for (uint64_t seed = 1; seed <= 30 && !::testing::Test::HasFailure(); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFileSystem fs;
    ManualClock clock;
    std::mt19937_64 rng(seed);
    auto m = open(fs, clock);
    ASSERT_NE(m, nullptr);
    auto log = create_in(*m, 0);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 12; ++i) append(*log, value('o', i));
    ASSERT_TRUE(log->flush().ok());
    ASSERT_TRUE(m->checkpoint_recovery_points().ok());  // recovery point 12
    ASSERT_TRUE(log->truncate_to(2).ok());
    for (int i = 0; i < 10; ++i) append(*log, value('n', i));  // offsets 2..11, unflushed
    std::vector<std::string> expected = {value('o', 0), value('o', 1)};
    for (int i = 0; i < 10; ++i) expected.push_back(value('n', i));
    fs.crash(rng);
    log.reset();
    m.reset();

    m = open(fs, clock);
    ASSERT_NE(m, nullptr);
    log = m->get(tp("c", 0));
    ASSERT_NE(log, nullptr);
    auto got = contents(*log);  // fails on invalid batches or offset holes
    EXPECT_GE(got.size(), 2u);
    EXPECT_LE(got.size(), expected.size());
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + std::min(got.size(), expected.size()), expected.begin()))
        << "recovered log is not a prefix of what was written";
    EXPECT_EQ(log->log_end_offset(), log->log_start_offset() + static_cast<int64_t>(got.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(FileSystems, LogManagerTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "Sim" : "Posix");
                         });

}  // namespace
}  // namespace gannet::storage
