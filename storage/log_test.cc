// Tests of the partition log (storage/log.h): appends, reads, rolling, indexes, truncation,
// follower appends, input validation, flushing and group commit, retention, I/O faults, crashes
// and reopening. Most run on SimFileSystem with a ManualClock; a few on the real disk.
#include "storage/log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "common/byte_order.h"
#include "common/clock.h"
#include "storage/leader_epoch_cache.h"
#include "storage/record_batch.h"
#include "storage/segment.h"
#include "storage/segment_index.h"
#include "storage/sim_file_system.h"

namespace gannet::storage {
namespace {

using Op = SimFileSystem::Op;
namespace f = batch_field;

// ---- Helpers -----------------------------------------------------------------------------------

std::span<uint8_t> as_span(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

// One batch of records whose values are `values`, timestamps ts, ts + step, ...
std::string make_batch(const std::vector<std::string>& values, int64_t ts, int64_t step = 1,
                       BatchOptions options = {}) {
  RecordBatchBuilder b(options);
  for (size_t i = 0; i < values.size(); ++i) {
    b.add(ts + static_cast<int64_t>(i) * step, std::string_view("key"), std::string_view(values[i]));
  }
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

// One batch with explicit per-record timestamps.
std::string make_batch_ts(const std::vector<std::string>& values, const std::vector<int64_t>& ts,
                          BatchOptions options = {}) {
  RecordBatchBuilder b(options);
  for (size_t i = 0; i < values.size(); ++i) {
    b.add(ts[i], std::nullopt, std::string_view(values[i]));
  }
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

std::vector<std::string> values(const std::string& prefix, int n, size_t pad = 0) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i) + std::string(pad, 'x'));
  return out;
}

struct Rec {
  int64_t offset;
  int64_t timestamp;
  std::string value;
  int32_t epoch;
  bool operator==(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{off=" << r.offset << " ts=" << r.timestamp << " v=" << r.value << " ep=" << r.epoch
            << "}";
}

struct Meta {
  int64_t base;
  int64_t last;
  int32_t epoch;
  int32_t count;
  size_t size;
  int64_t max_ts;
};

// Parses a buffer that must hold only whole, valid batches.
::testing::AssertionResult decode(const std::string& bytes, std::vector<Rec>* recs,
                                  std::vector<Meta>* metas = nullptr) {
  size_t pos = 0;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  while (pos < bytes.size()) {
    const uint8_t* p = data + pos;
    auto size = peek_batch_size(p, bytes.size() - pos, SIZE_MAX);
    if (!size.ok()) {
      return ::testing::AssertionFailure() << "bad header at " << pos << ": " << size.error().to_string();
    }
    if (*size > bytes.size() - pos) {
      return ::testing::AssertionFailure() << "partial batch at " << pos << ": " << *size << " > "
                                           << bytes.size() - pos;
    }
    Status valid = validate_batch(p, *size);
    if (!valid.ok()) {
      return ::testing::AssertionFailure() << "invalid batch at " << pos << ": " << valid.error().to_string();
    }
    RecordBatchView v(p, *size);
    if (metas != nullptr) {
      metas->push_back(Meta{v.base_offset(), v.last_offset(), v.leader_epoch(), v.record_count(), *size,
                            v.max_timestamp()});
    }
    auto it = RecordIterator::create(v);
    if (!it.ok()) return ::testing::AssertionFailure() << it.error().to_string();
    Record r;
    while (true) {
      auto more = it->next(&r);
      if (!more.ok()) return ::testing::AssertionFailure() << more.error().to_string();
      if (!*more) break;
      recs->push_back(Rec{r.offset, r.timestamp, r.value ? std::string(*r.value) : "<null>", v.leader_epoch()});
    }
    pos += *size;
  }
  return ::testing::AssertionSuccess();
}

Result<std::string> read_bytes(const Log& log, int64_t offset, size_t max_bytes,
                               const ReadOptions& options = {}) {
  auto r = log.read(offset, max_bytes, options);
  if (!r.ok()) return r.error();
  std::string out;
  Status st = r->copy_to(&out);
  if (!st.ok()) return st.error();
  if (out.size() != r->bytes) return make_error(Errc::kIoError, "copy_to size mismatch");
  return out;
}

// Batches returned by one read.
std::vector<Meta> read_metas(const Log& log, int64_t offset, size_t max_bytes,
                             const ReadOptions& options = {}) {
  auto bytes = read_bytes(log, offset, max_bytes, options);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().to_string());
  if (!bytes.ok()) return {};
  std::vector<Rec> recs;
  std::vector<Meta> metas;
  EXPECT_TRUE(decode(*bytes, &recs, &metas));
  return metas;
}

// Every record in the log, read in one go; checks offsets are contiguous from the log start.
std::vector<Rec> all_records(const Log& log) {
  auto bytes = read_bytes(log, log.log_start_offset(), 1u << 30);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().to_string());
  if (!bytes.ok()) return {};
  std::vector<Rec> recs;
  EXPECT_TRUE(decode(*bytes, &recs));
  return recs;
}

// Reads the whole log in small steps (exercising the index) and returns the records.
std::vector<Rec> records_by_small_reads(const Log& log, size_t max_bytes) {
  std::vector<Rec> out;
  int64_t next = log.log_start_offset();
  for (int guard = 0; next < log.log_end_offset() && guard < 100000; ++guard) {
    auto bytes = read_bytes(log, next, max_bytes);
    EXPECT_TRUE(bytes.ok());
    if (!bytes.ok()) break;
    std::vector<Rec> recs;
    EXPECT_TRUE(decode(*bytes, &recs));
    EXPECT_FALSE(recs.empty());
    if (recs.empty()) break;
    for (const Rec& r : recs) {
      if (r.offset >= next) out.push_back(r);
    }
    next = recs.back().offset + 1;
  }
  return out;
}

std::string file_contents(FileSystem* fs, const std::string& path) {
  auto r = read_file(fs, path);
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? *r : std::string();
}

void overwrite_file(FileSystem* fs, const std::string& path, const std::string& bytes) {
  auto f = fs->open(path, /*create=*/true);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->truncate(0).ok());
  ASSERT_TRUE((*f)->append(bytes.data(), bytes.size()).ok());
  ASSERT_TRUE((*f)->sync().ok());
}

void append_to_file(FileSystem* fs, const std::string& path, const std::string& bytes) {
  auto f = fs->open(path, /*create=*/false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->append(bytes.data(), bytes.size()).ok());
  ASSERT_TRUE((*f)->sync().ok());
}

uint64_t file_size(FileSystem* fs, const std::string& path) {
  auto f = fs->open(path, /*create=*/false);
  EXPECT_TRUE(f.ok()) << path;
  return f.ok() ? (*f)->size() : 0;
}

std::string seg_path(const std::string& dir, int64_t base, const char* suffix) {
  return join_path(dir, Segment::file_name(base, suffix));
}

// Directory listing of one kind of file.
std::set<std::string> files_with_suffix(FileSystem* fs, const std::string& dir, const std::string& suffix) {
  std::set<std::string> out;
  auto names = fs->list_dir(dir);
  EXPECT_TRUE(names.ok());
  if (!names.ok()) return out;
  for (const auto& n : *names) {
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.insert(n);
    }
  }
  return out;
}

std::string fresh_tmp_dir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base = tmp != nullptr ? tmp : "/tmp";
  static std::atomic<int> counter{0};
  std::string dir = base + "/" + name + "_" + std::to_string(counter.fetch_add(1));
  EXPECT_TRUE(posix_file_system()->remove_all(dir).ok());
  EXPECT_TRUE(posix_file_system()->create_dirs(dir).ok());
  return dir;
}

// ---- Fixture -----------------------------------------------------------------------------------

class LogTest : public ::testing::Test {
 protected:
  std::unique_ptr<Log> open_log(const LogConfig& config, std::optional<int64_t> recovery_point = std::nullopt,
                                bool clean_shutdown = false) {
    return open_log_at(fs(), dir_, config, recovery_point, clean_shutdown);
  }

  std::unique_ptr<Log> open_log_at(FileSystem* fs, const std::string& dir, const LogConfig& config,
                                   std::optional<int64_t> recovery_point = std::nullopt,
                                   bool clean_shutdown = false) {
    Log::Options o;
    o.fs = fs;
    o.clock = &clock_;
    o.config = config;
    o.recovery_point = recovery_point;
    o.clean_shutdown = clean_shutdown;
    auto r = Log::open(dir, o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  virtual FileSystem* fs() { return &sim_; }

  AppendResult append_ok(Log& log, std::string batch, int32_t epoch = 0) {
    auto r = log.append(as_span(batch), epoch);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : AppendResult{};
  }

  AppendResult follower_ok(Log& log, std::string batches) {
    auto r = log.append_as_follower(as_span(batches));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    return r.ok() ? *r : AppendResult{};
  }

  // Appends `n` one-record batches "v<i>" with timestamps now, now+1, ...
  void append_singles(Log& log, int n, int32_t epoch = 0, const std::string& prefix = "v") {
    for (int i = 0; i < n; ++i) {
      append_ok(log, make_batch({prefix + std::to_string(i)}, clock_.now_ms() + i), epoch);
    }
  }

  // The size of a one-record batch made by append_singles (all of them have the same size).
  size_t single_size() { return make_batch({"v0"}, 0).size(); }

  SimFileSystem sim_;
  ManualClock clock_;
  const std::string dir_ = "/data/topic-0";
};

// ---- Append ------------------------------------------------------------------------------------

TEST_F(LogTest, AppendAssignsConsecutiveOffsetsAndStampsEpoch) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 0);

  // The producer's base offset (77) and epoch are overwritten by the leader.
  BatchOptions o;
  o.base_offset = 77;
  o.leader_epoch = 99;
  AppendResult a = append_ok(*log, make_batch(values("a", 3), 1000, 1, o), 5);
  EXPECT_EQ(a.base_offset, 0);
  EXPECT_EQ(a.last_offset, 2);
  EXPECT_EQ(a.batch_count, 1);
  EXPECT_EQ(a.record_count, 3);
  EXPECT_EQ(a.max_timestamp, 1002);
  EXPECT_EQ(log->log_end_offset(), 3);

  AppendResult b = append_ok(*log, make_batch(values("b", 2), 2000), 5);
  EXPECT_EQ(b.base_offset, 3);
  EXPECT_EQ(b.last_offset, 4);
  EXPECT_EQ(log->log_end_offset(), 5);

  // Two batches in one buffer.
  std::string two = make_batch(values("c", 4), 3000, 1, o) + make_batch(values("d", 1), 4000, 1, o);
  const size_t two_size = two.size();
  AppendResult c = append_ok(*log, two, 7);
  EXPECT_EQ(c.base_offset, 5);
  EXPECT_EQ(c.last_offset, 9);
  EXPECT_EQ(c.batch_count, 2);
  EXPECT_EQ(c.record_count, 5);
  EXPECT_EQ(c.max_timestamp, 4000);
  EXPECT_EQ(c.bytes, two_size);
  EXPECT_EQ(log->log_end_offset(), 10);

  auto bytes = read_bytes(*log, 0, 1 << 20);
  ASSERT_TRUE(bytes.ok());
  std::vector<Rec> recs;
  std::vector<Meta> metas;
  ASSERT_TRUE(decode(*bytes, &recs, &metas));  // includes validate_batch (CRC) of every batch
  ASSERT_EQ(metas.size(), 4u);
  EXPECT_EQ(metas[0].base, 0);
  EXPECT_EQ(metas[1].base, 3);
  EXPECT_EQ(metas[2].base, 5);
  EXPECT_EQ(metas[3].base, 9);
  EXPECT_EQ(metas[0].epoch, 5);
  EXPECT_EQ(metas[1].epoch, 5);
  EXPECT_EQ(metas[2].epoch, 7);
  EXPECT_EQ(metas[3].epoch, 7);
  ASSERT_EQ(recs.size(), 10u);
  const std::vector<std::string> expected_values = {"a0", "a1", "a2", "b0", "b1", "c0", "c1", "c2", "c3", "d0"};
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(recs[i].value, expected_values[i]);
  }
  EXPECT_EQ(recs[2].timestamp, 1002);
  EXPECT_EQ(recs[9].timestamp, 4000);

  // The epoch cache records where each epoch began.
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{5, 0}, {7, 5}}));
}

TEST_F(LogTest, StoredBytesKeepTheProducersCrc) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 3);
  const std::string batch = make_batch(values("z", 4), 123);
  const uint32_t crc = RecordBatchView(reinterpret_cast<const uint8_t*>(batch.data()), batch.size()).crc();
  append_ok(*log, batch, 8);
  auto bytes = read_bytes(*log, 3, 1 << 20);
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), batch.size());
  RecordBatchView v(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
  EXPECT_EQ(v.base_offset(), 3);
  EXPECT_EQ(v.leader_epoch(), 8);
  EXPECT_EQ(v.crc(), crc);
  EXPECT_TRUE(validate_batch(v.data(), v.size_bytes()).ok());
  // Everything but the two rewritten fields is byte-identical.
  EXPECT_EQ(bytes->substr(f::kMagic), batch.substr(f::kMagic));
  EXPECT_EQ(bytes->substr(f::kLength, 4), batch.substr(f::kLength, 4));
}

// ---- Read --------------------------------------------------------------------------------------

TEST_F(LogTest, ReadStartsWithTheBatchHoldingTheOffset) {
  LogConfig cfg;
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 6; ++i) append_ok(*log, make_batch(values("b" + std::to_string(i) + "_", 5), 1000 * i));
  ASSERT_EQ(log->log_end_offset(), 30);

  for (int64_t offset = 0; offset < 30; ++offset) {
    auto metas = read_metas(*log, offset, 1 << 20);
    ASSERT_FALSE(metas.empty()) << offset;
    EXPECT_EQ(metas.front().base, offset / 5 * 5) << offset;
    EXPECT_EQ(metas.back().last, 29);
    for (size_t i = 1; i < metas.size(); ++i) EXPECT_EQ(metas[i].base, metas[i - 1].last + 1);
  }
  // An offset in the middle of a multi-record batch returns that whole batch.
  auto bytes = read_bytes(*log, 12, 1);
  ASSERT_TRUE(bytes.ok());
  std::vector<Rec> recs;
  ASSERT_TRUE(decode(*bytes, &recs));
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs.front().offset, 10);
  EXPECT_EQ(recs.front().value, "b2_0");
  EXPECT_EQ(recs.back().offset, 14);
}

TEST_F(LogTest, ReadAcrossSegmentBoundaries) {
  const std::string sample = make_batch(values("s", 3), 0);
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * sample.size());  // two batches per segment
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 9; ++i) append_ok(*log, make_batch(values("s", 3), i));
  ASSERT_EQ(log->log_end_offset(), 27);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 6, 12, 18, 24}));

  auto all = all_records(*log);
  ASSERT_EQ(all.size(), 27u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].offset, static_cast<int64_t>(i));

  // From the middle of the second segment to the end.
  auto metas = read_metas(*log, 10, 1 << 20);
  ASSERT_EQ(metas.size(), 6u);
  EXPECT_EQ(metas.front().base, 9);
  EXPECT_EQ(metas.back().last, 26);

  // A read starting at the last batch of a segment continues into the next one.
  metas = read_metas(*log, 3, 3 * sample.size());
  ASSERT_EQ(metas.size(), 3u);
  EXPECT_EQ(metas[0].base, 3);
  EXPECT_EQ(metas[1].base, 6);
  EXPECT_EQ(metas[2].base, 9);

  // Reading in small steps visits every record exactly once.
  EXPECT_EQ(records_by_small_reads(*log, sample.size()), all);
}

TEST_F(LogTest, ReadHonorsMaxBytes) {
  const size_t s = make_batch(values("m", 2), 0).size();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(3 * s);  // three batches per segment
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 8; ++i) append_ok(*log, make_batch(values("m", 2), i));
  ASSERT_GE(log->segment_count(), 3u);

  struct Case {
    int64_t offset;
    size_t max_bytes;
    size_t batches;
  };
  for (const Case& c : std::vector<Case>{{0, s, 1},
                                         {0, 2 * s, 2},
                                         {0, 2 * s + s / 2, 2},
                                         {0, 3 * s, 3},
                                         {0, 3 * s + 1, 3},
                                         {0, 4 * s, 4},          // crosses into segment 2
                                         {0, 5 * s - 1, 4},
                                         {2, 4 * s, 4},
                                         {4, 2 * s, 2},          // last batch of a segment + next
                                         {6, 100 * s, 5},
                                         {14, 100 * s, 1}}) {
    auto bytes = read_bytes(*log, c.offset, c.max_bytes);
    ASSERT_TRUE(bytes.ok());
    EXPECT_LE(bytes->size(), c.max_bytes) << c.offset << "/" << c.max_bytes;
    std::vector<Rec> recs;
    std::vector<Meta> metas;
    ASSERT_TRUE(decode(*bytes, &recs, &metas)) << c.offset << "/" << c.max_bytes;
    EXPECT_EQ(metas.size(), c.batches) << c.offset << "/" << c.max_bytes;
    if (!metas.empty()) {
      EXPECT_EQ(metas.front().base, c.offset / 2 * 2);
    }
  }

  // A limit below one batch: min_one_batch returns the whole first batch, otherwise nothing.
  for (size_t max_bytes : {size_t{0}, size_t{1}, s - 1}) {
    auto metas = read_metas(*log, 5, max_bytes);
    ASSERT_EQ(metas.size(), 1u) << max_bytes;
    EXPECT_EQ(metas[0].base, 4);
    ReadOptions strict;
    strict.min_one_batch = false;
    auto r = log->read(5, max_bytes, strict);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty()) << max_bytes;
    EXPECT_EQ(r->bytes, 0u);
    EXPECT_TRUE(r->slices.empty());
  }
  ReadOptions strict;
  strict.min_one_batch = false;
  auto metas = read_metas(*log, 5, 2 * s + 3, strict);
  EXPECT_EQ(metas.size(), 2u);
}

TEST_F(LogTest, ReadNeverReturnsAPartialBatchOfMixedSizes) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  const std::string small = make_batch({"s"}, 1);
  const std::string big = make_batch({std::string(5000, 'B')}, 2);
  append_ok(*log, small);  // offset 0
  append_ok(*log, big);    // offset 1
  append_ok(*log, small);  // offset 2

  // Room for the small batch and part of the big one: only the small one comes back.
  auto metas = read_metas(*log, 0, small.size() + 100);
  ASSERT_EQ(metas.size(), 1u);
  EXPECT_EQ(metas[0].base, 0);
  // An oversized batch at the start: returned whole with min_one_batch.
  metas = read_metas(*log, 1, 100);
  ASSERT_EQ(metas.size(), 1u);
  EXPECT_EQ(metas[0].base, 1);
  EXPECT_EQ(metas[0].size, big.size());
  ReadOptions strict;
  strict.min_one_batch = false;
  auto r = log->read(1, 100, strict);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  // Exactly both.
  metas = read_metas(*log, 1, big.size() + small.size());
  EXPECT_EQ(metas.size(), 2u);
}

TEST_F(LogTest, ReadHonorsMaxOffset) {
  const size_t s = make_batch(values("x", 5), 0).size();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * s);
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 6; ++i) append_ok(*log, make_batch(values("x", 5), i));  // [0,5) ... [25,30)
  ASSERT_EQ(log->log_end_offset(), 30);

  auto bases = [&](int64_t offset, int64_t max_offset) {
    ReadOptions o;
    o.max_offset = max_offset;
    std::vector<int64_t> out;
    for (const Meta& m : read_metas(*log, offset, 1 << 20, o)) out.push_back(m.base);
    return out;
  };
  EXPECT_EQ(bases(0, 10), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(bases(0, 12), (std::vector<int64_t>{0, 5}));  // batch [10,15) is not wholly below 12
  EXPECT_EQ(bases(0, 15), (std::vector<int64_t>{0, 5, 10}));
  EXPECT_EQ(bases(0, 16), (std::vector<int64_t>{0, 5, 10}));
  EXPECT_EQ(bases(7, 20), (std::vector<int64_t>{5, 10, 15}));
  EXPECT_EQ(bases(12, 30), (std::vector<int64_t>{10, 15, 20, 25}));
  EXPECT_EQ(bases(12, 100), (std::vector<int64_t>{10, 15, 20, 25}));
  EXPECT_EQ(bases(0, 0), (std::vector<int64_t>{}));
  EXPECT_EQ(bases(0, 4), (std::vector<int64_t>{}));
  EXPECT_EQ(bases(12, 12), (std::vector<int64_t>{}));
  EXPECT_EQ(bases(12, 14), (std::vector<int64_t>{}));
}

TEST_F(LogTest, ReadAtLogEndIsEmptyAndOutsideIsOutOfRange) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  {
    auto r = log->read(0, 1000);  // empty log: start == end == 0
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
  }
  append_singles(*log, 4);
  auto r = log->read(4, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(r->log_start_offset, 0);
  EXPECT_EQ(r->log_end_offset, 4);

  for (int64_t bad : {int64_t{5}, int64_t{100}, int64_t{-1}, INT64_MAX, INT64_MIN}) {
    auto e = log->read(bad, 1000);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.error().code, Errc::kOffsetOutOfRange) << bad;
  }
}

// ---- Rolling -----------------------------------------------------------------------------------

TEST_F(LogTest, RollsOnSegmentBytes) {
  const size_t s = single_size();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(3 * s);
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 3);
  EXPECT_EQ(log->segment_count(), 1u);  // exactly full: no roll yet
  append_singles(*log, 1);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 3}));
  append_singles(*log, 6);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 3, 6, 9}));

  // 20-digit names; every segment within segment.bytes.
  EXPECT_EQ(files_with_suffix(fs(), dir_, ".log"),
            (std::set<std::string>{"00000000000000000000.log", "00000000000000000003.log",
                                   "00000000000000000006.log", "00000000000000000009.log"}));
  for (int64_t base : log->segment_base_offsets()) {
    EXPECT_LE(file_size(fs(), seg_path(dir_, base, ".log")), 3 * s);
  }
  // Rolled segments have their index files, and they are well formed.
  for (int64_t base : {0, 3, 6}) {
    ASSERT_TRUE(fs()->exists(seg_path(dir_, base, ".index"))) << base;
    ASSERT_TRUE(fs()->exists(seg_path(dir_, base, ".timeindex"))) << base;
    const std::string idx = file_contents(fs(), seg_path(dir_, base, ".index"));
    auto parsed = OffsetIndex::parse(idx, file_size(fs(), seg_path(dir_, base, ".log")));
    ASSERT_TRUE(parsed.ok()) << base;
    EXPECT_EQ(parsed->size(), 2u) << base;  // batches 2 and 3 of the segment, not position 0
    auto times = TimeIndex::parse(file_contents(fs(), seg_path(dir_, base, ".timeindex")), INT32_MAX);
    ASSERT_TRUE(times.ok()) << base;
  }
  auto all = all_records(*log);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all.back().offset, 9);
}

TEST_F(LogTest, RollsOnSegmentMs) {
  LogConfig cfg;
  cfg.segment_ms = 1000;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 1);
  clock_.advance_ms(999);
  append_singles(*log, 1);
  EXPECT_EQ(log->segment_count(), 1u);
  clock_.advance_ms(1);
  append_singles(*log, 1);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 2}));
  // The new segment's age counts from its creation.
  clock_.advance_ms(500);
  append_singles(*log, 1);
  EXPECT_EQ(log->segment_count(), 2u);
  clock_.advance_ms(500);
  append_singles(*log, 1);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 2, 4}));
  // An idle log does not roll by itself; an empty active segment never rolls.
  clock_.advance_ms(10'000);
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_TRUE(fs()->exists(seg_path(dir_, 2, ".index")));
  auto all = all_records(*log);
  ASSERT_EQ(all.size(), 5u);
}

// The same appends with a dense, a default and a useless sparse index answer every read and
// timestamp lookup identically, before and after a reopen (which loads the index files).
TEST_F(LogTest, SparseIndexSpacingDoesNotChangeResults) {
  struct Variant {
    std::string dir;
    int32_t interval;
    std::unique_ptr<Log> log;
  };
  std::vector<Variant> variants;
  for (int32_t interval : {0, 1, 100, 4096, 1 << 30}) {
    Variant v{"/data/idx-" + std::to_string(interval), interval, nullptr};
    LogConfig cfg;
    cfg.index_interval_bytes = interval;
    cfg.segment_bytes = 4000;
    v.log = open_log_at(fs(), v.dir, cfg);
    ASSERT_NE(v.log, nullptr);
    variants.push_back(std::move(v));
  }
  std::mt19937_64 rng(7);
  int64_t ts = 1'000'000;
  for (int i = 0; i < 120; ++i) {
    const int n = 1 + static_cast<int>(rng() % 6);
    const size_t pad = rng() % 120;
    std::vector<int64_t> stamps;
    for (int k = 0; k < n; ++k) stamps.push_back(ts + static_cast<int64_t>(rng() % 50) - 10);
    ts += 20;
    const std::string batch = make_batch_ts(values("r" + std::to_string(i) + "_", n, pad), stamps);
    for (auto& v : variants) append_ok(*v.log, batch);
  }
  ASSERT_GT(variants[0].log->segment_count(), 3u);

  auto compare_all = [&](const char* phase) {
    const Log& ref = *variants[0].log;
    for (size_t k = 1; k < variants.size(); ++k) {
      const Log& other = *variants[k].log;
      ASSERT_EQ(other.log_end_offset(), ref.log_end_offset()) << phase;
      for (int64_t offset = 0; offset <= ref.log_end_offset(); offset += 1) {
        for (size_t max_bytes : {size_t{1}, size_t{700}, size_t{2500}, size_t{1} << 20}) {
          auto a = read_bytes(ref, offset, max_bytes);
          auto b = read_bytes(other, offset, max_bytes);
          ASSERT_TRUE(a.ok() && b.ok()) << phase;
          ASSERT_EQ(*a, *b) << phase << " interval " << variants[k].interval << " offset " << offset
                            << " max_bytes " << max_bytes;
        }
      }
      for (int64_t t = 1'000'000 - 20; t <= ts + 60; t += 7) {
        auto a = ref.offset_for_timestamp(t);
        auto b = other.offset_for_timestamp(t);
        ASSERT_TRUE(a.ok() && b.ok()) << phase;
        ASSERT_EQ(a->has_value(), b->has_value()) << phase << " ts " << t;
        if (a->has_value()) {
          ASSERT_EQ((*a)->offset, (*b)->offset) << phase << " interval " << variants[k].interval << " ts " << t;
          ASSERT_EQ((*a)->timestamp, (*b)->timestamp) << phase << " ts " << t;
        }
      }
    }
  };
  compare_all("live");
  for (auto& v : variants) {
    ASSERT_TRUE(v.log->close().ok());
    LogConfig cfg;
    cfg.index_interval_bytes = v.interval;
    cfg.segment_bytes = 4000;
    v.log.reset();
    v.log = open_log_at(fs(), v.dir, cfg, std::nullopt, /*clean_shutdown=*/true);
    ASSERT_NE(v.log, nullptr);
  }
  compare_all("reopened");
}

// ---- offset_for_timestamp ----------------------------------------------------------------------

TEST_F(LogTest, OffsetForTimestamp) {
  const size_t s = make_batch(values("t", 5), 0).size();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * s);
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_ok(*log, make_batch(values("t", 5), 1000, 10));  // offsets 0-4: ts 1000..1040
  append_ok(*log, make_batch(values("t", 5), 2000, 10));  // 5-9: 2000..2040
  append_ok(*log, make_batch(values("t", 5), 3000, 10));  // 10-14 (segment 2)
  append_ok(*log, make_batch(values("t", 5), 4000, 10));  // 15-19
  append_ok(*log, make_batch(values("t", 5), 5000, 10));  // 20-24 (segment 3)
  ASSERT_EQ(log->segment_count(), 3u);

  auto lookup = [&](int64_t ts) -> std::optional<std::pair<int64_t, int64_t>> {
    auto r = log->offset_for_timestamp(ts);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || !r->has_value()) return std::nullopt;
    return std::make_pair((*r)->offset, (*r)->timestamp);
  };
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(lookup(INT64_MIN), (P{0, 1000}));
  EXPECT_EQ(lookup(0), (P{0, 1000}));
  EXPECT_EQ(lookup(1000), (P{0, 1000}));
  EXPECT_EQ(lookup(1001), (P{1, 1010}));
  EXPECT_EQ(lookup(1025), (P{3, 1030}));   // inside a batch
  EXPECT_EQ(lookup(1040), (P{4, 1040}));
  EXPECT_EQ(lookup(1041), (P{5, 2000}));   // next batch
  EXPECT_EQ(lookup(2041), (P{10, 3000}));  // next segment
  EXPECT_EQ(lookup(3015), (P{12, 3020}));
  EXPECT_EQ(lookup(4040), (P{19, 4040}));
  EXPECT_EQ(lookup(4500), (P{20, 5000}));  // later segment
  EXPECT_EQ(lookup(5040), (P{24, 5040}));
  EXPECT_EQ(lookup(5041), std::nullopt);   // past the max
  EXPECT_EQ(lookup(INT64_MAX), std::nullopt);
}

TEST_F(LogTest, OffsetForTimestampWithUnorderedTimestamps) {
  LogConfig cfg;
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_ok(*log, make_batch_ts({"a", "b", "c"}, {500, 300, 600}));      // 0-2
  append_ok(*log, make_batch_ts({"d", "e"}, {100, 200}));                // 3-4: earlier than before
  append_ok(*log, make_batch_ts({"f", "g", "h"}, {700, 650, 900}));      // 5-7
  auto lookup = [&](int64_t ts) -> int64_t {
    auto r = log->offset_for_timestamp(ts);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || !r->has_value()) return -1;
    return (*r)->offset;
  };
  EXPECT_EQ(lookup(50), 0);    // first record with ts >= 50 is offset 0 (500)
  EXPECT_EQ(lookup(400), 0);
  EXPECT_EQ(lookup(550), 2);   // 600 at offset 2
  EXPECT_EQ(lookup(601), 5);   // 700 at offset 5
  EXPECT_EQ(lookup(701), 7);   // 900 at offset 7
  EXPECT_EQ(lookup(901), -1);
}

// ---- Truncation --------------------------------------------------------------------------------

TEST_F(LogTest, TruncateToMiddleOfSegment) {
  LogConfig cfg;
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 4, /*epoch=*/1);
  append_singles(*log, 4, /*epoch=*/2);
  append_singles(*log, 2, /*epoch=*/3);
  ASSERT_EQ(log->log_end_offset(), 10);
  ASSERT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {2, 4}, {3, 8}}));
  auto before = all_records(*log);

  ASSERT_TRUE(log->truncate_to(6).ok());
  EXPECT_EQ(log->log_end_offset(), 6);
  EXPECT_LE(log->durable_offset(), 6);
  auto after = all_records(*log);
  ASSERT_EQ(after.size(), 6u);
  EXPECT_TRUE(std::equal(after.begin(), after.end(), before.begin()));
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {2, 4}}));
  auto r = log->read(7, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kOffsetOutOfRange);

  // Appends continue from the new end.
  AppendResult a = append_ok(*log, make_batch({"new"}, 5), 4);
  EXPECT_EQ(a.base_offset, 6);
  EXPECT_EQ(log->log_end_offset(), 7);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {2, 4}, {4, 6}}));
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 7u);
  EXPECT_EQ(recs.back().value, "new");
  EXPECT_EQ(recs.back().offset, 6);

  // Truncating at or past the end does nothing.
  ASSERT_TRUE(log->truncate_to(7).ok());
  ASSERT_TRUE(log->truncate_to(100).ok());
  EXPECT_EQ(log->log_end_offset(), 7);

  // All of it survives a reopen, epoch cache included.
  ASSERT_TRUE(log->flush().ok());
  log.reset();
  log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), recs);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {2, 4}, {4, 6}}));
}

TEST_F(LogTest, TruncateInsideABatchRemovesTheWholeBatch) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 4; ++i) append_ok(*log, make_batch(values("q", 5), i));
  ASSERT_TRUE(log->truncate_to(7).ok());
  EXPECT_EQ(log->log_end_offset(), 5);
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs.back().offset, 4);
  EXPECT_EQ(append_ok(*log, make_batch({"n"}, 1)).base_offset, 5);
}

TEST_F(LogTest, TruncateToSegmentBoundary) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * single_size());
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 10, 1);
  ASSERT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 2, 4, 6, 8}));
  ASSERT_TRUE(log->flush().ok());
  auto before = all_records(*log);

  ASSERT_TRUE(log->truncate_to(6).ok());
  EXPECT_EQ(log->log_end_offset(), 6);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(log->durable_offset(), 6);
  for (int64_t base : {6, 8}) {
    for (const char* suffix : {".log", ".index", ".timeindex"}) {
      EXPECT_FALSE(fs()->exists(seg_path(dir_, base, suffix))) << base << suffix;
    }
  }
  auto after = all_records(*log);
  ASSERT_EQ(after.size(), 6u);
  EXPECT_TRUE(std::equal(after.begin(), after.end(), before.begin()));

  append_singles(*log, 3, 2, "w");
  EXPECT_EQ(log->log_end_offset(), 9);
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 9u);
  for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].offset, static_cast<int64_t>(i));
  EXPECT_EQ(recs[6].value, "w0");
  EXPECT_EQ(recs[8].value, "w2");
  for (int64_t offset = 0; offset < 9; ++offset) {
    auto metas = read_metas(*log, offset, 1);
    ASSERT_EQ(metas.size(), 1u);
    EXPECT_EQ(metas[0].base, offset);
  }

  ASSERT_TRUE(log->close().ok());
  log.reset();
  log = open_log(cfg, std::nullopt, /*clean_shutdown=*/true);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), recs);
  log.reset();
  log = open_log(cfg);  // full recovery
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), recs);
}

TEST_F(LogTest, TruncateBelowTheFirstSegmentRestartsTheLog) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * single_size());
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->truncate_fully_and_start_at(100).ok());
  append_singles(*log, 5, 1);
  ASSERT_EQ(log->log_start_offset(), 100);
  ASSERT_EQ(log->log_end_offset(), 105);
  ASSERT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 100}}));

  ASSERT_TRUE(log->truncate_to(50).ok());
  EXPECT_EQ(log->log_start_offset(), 50);
  EXPECT_EQ(log->log_end_offset(), 50);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{50}));
  EXPECT_EQ(files_with_suffix(fs(), dir_, ".log"), (std::set<std::string>{"00000000000000000050.log"}));
  EXPECT_TRUE(log->epoch_cache().entries().empty());
  auto r = log->read(50, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  auto e = log->read(100, 1000);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kOffsetOutOfRange);

  AppendResult a = append_ok(*log, make_batch({"x"}, 1), 2);
  EXPECT_EQ(a.base_offset, 50);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{2, 50}}));

  // Truncating to exactly the log start also empties the log there.
  append_singles(*log, 2, 2);
  ASSERT_TRUE(log->truncate_to(50).ok());
  EXPECT_EQ(log->log_start_offset(), 50);
  EXPECT_EQ(log->log_end_offset(), 50);
  EXPECT_TRUE(all_records(*log).empty());
  EXPECT_EQ(append_ok(*log, make_batch({"y"}, 1), 3).base_offset, 50);

  log.reset();
  log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 50);
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "y");
}

TEST_F(LogTest, TruncateFullyAndStartAt) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(3 * single_size());
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 10, 3);
  ASSERT_TRUE(log->flush().ok());

  ASSERT_TRUE(log->truncate_fully_and_start_at(1000).ok());
  EXPECT_EQ(log->log_start_offset(), 1000);
  EXPECT_EQ(log->log_end_offset(), 1000);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{1000}));
  EXPECT_EQ(log->durable_offset(), 1000);
  EXPECT_TRUE(log->epoch_cache().entries().empty());
  EXPECT_EQ(files_with_suffix(fs(), dir_, ".log"), (std::set<std::string>{"00000000000000001000.log"}));
  EXPECT_TRUE(files_with_suffix(fs(), dir_, ".index").empty());
  auto r = log->read(1000, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  auto e = log->read(0, 100);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kOffsetOutOfRange);

  EXPECT_EQ(append_ok(*log, make_batch({"first"}, 1), 4).base_offset, 1000);
  EXPECT_EQ(append_ok(*log, make_batch({"second"}, 1), 4).base_offset, 1001);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{4, 1000}}));
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].offset, 1000);
  EXPECT_EQ(recs[0].value, "first");

  log.reset();
  log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 1000);
  EXPECT_EQ(log->log_end_offset(), 1002);
  EXPECT_EQ(all_records(*log), recs);
}

// ---- Follower append ---------------------------------------------------------------------------

std::string follower_batch(int64_t base, int32_t epoch, int n, int64_t ts) {
  BatchOptions o;
  o.base_offset = base;
  o.leader_epoch = epoch;
  return make_batch(values("f" + std::to_string(base) + "_", n), ts, 1, o);
}

TEST_F(LogTest, AppendAsFollowerKeepsOffsetsAndEpochs) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  AppendResult a = follower_ok(*log, follower_batch(0, 1, 3, 10) + follower_batch(3, 1, 2, 20));
  EXPECT_EQ(a.base_offset, 0);
  EXPECT_EQ(a.last_offset, 4);
  EXPECT_EQ(a.batch_count, 2);
  follower_ok(*log, follower_batch(5, 4, 5, 30));
  follower_ok(*log, follower_batch(10, 6, 1, 40) + follower_batch(11, 9, 2, 50));
  EXPECT_EQ(log->log_end_offset(), 13);

  auto bytes = read_bytes(*log, 0, 1 << 20);
  ASSERT_TRUE(bytes.ok());
  std::vector<Rec> recs;
  std::vector<Meta> metas;
  ASSERT_TRUE(decode(*bytes, &recs, &metas));
  ASSERT_EQ(metas.size(), 5u);
  const std::vector<std::pair<int64_t, int32_t>> expected = {{0, 1}, {3, 1}, {5, 4}, {10, 6}, {11, 9}};
  for (size_t i = 0; i < metas.size(); ++i) {
    EXPECT_EQ(metas[i].base, expected[i].first);
    EXPECT_EQ(metas[i].epoch, expected[i].second);
  }

  LeaderEpochCache& cache = log->epoch_cache();
  EXPECT_EQ(cache.entries(), (std::vector<EpochEntry>{{1, 0}, {4, 5}, {6, 10}, {9, 11}}));
  const int64_t leo = log->log_end_offset();
  EXPECT_FALSE(cache.end_offset_for(0, leo).has_value());
  EXPECT_EQ(cache.end_offset_for(1, leo), (EpochEntry{1, 5}));
  EXPECT_EQ(cache.end_offset_for(2, leo), (EpochEntry{1, 5}));
  EXPECT_EQ(cache.end_offset_for(4, leo), (EpochEntry{4, 10}));
  EXPECT_EQ(cache.end_offset_for(5, leo), (EpochEntry{4, 10}));
  EXPECT_EQ(cache.end_offset_for(6, leo), (EpochEntry{6, 11}));
  EXPECT_EQ(cache.end_offset_for(8, leo), (EpochEntry{6, 11}));
  EXPECT_EQ(cache.end_offset_for(9, leo), (EpochEntry{9, 13}));
  EXPECT_EQ(cache.end_offset_for(100, leo), (EpochEntry{9, 13}));
  EXPECT_EQ(cache.epoch_for_offset(7), 4);

  // The cache is persisted with the log.
  log.reset();
  log = open_log({});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {4, 5}, {6, 10}, {9, 11}}));
}

TEST_F(LogTest, AppendAsFollowerRejectsBatchesBeforeTheLogEnd) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  follower_ok(*log, follower_batch(0, 1, 5, 10) + follower_batch(5, 2, 5, 20));
  ASSERT_EQ(log->log_end_offset(), 10);
  const auto entries = log->epoch_cache().entries();
  const auto before = all_records(*log);

  auto expect_rejected = [&](std::string batches) {
    auto r = log->append_as_follower(as_span(batches));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kInvalidOffset);
    EXPECT_EQ(log->log_end_offset(), 10);
    EXPECT_EQ(log->epoch_cache().entries(), entries);
    EXPECT_EQ(all_records(*log), before);
  };
  expect_rejected(follower_batch(8, 3, 5, 30));                                 // overlaps
  expect_rejected(follower_batch(9, 3, 1, 30));                                 // last offset
  expect_rejected(follower_batch(0, 3, 1, 30));                                 // far back
  expect_rejected(follower_batch(10, 3, 3, 30) + follower_batch(11, 3, 1, 40));  // second overlaps first
  expect_rejected(follower_batch(10, 3, 3, 30) + follower_batch(10, 3, 3, 40));  // repeated

  // A batch exactly at the log end is fine.
  EXPECT_EQ(follower_ok(*log, follower_batch(10, 3, 1, 30)).base_offset, 10);
}

// A follower of a compacted leader may receive a batch whose offset is more than 2^31 past its
// log end. Index entries hold 32-bit relative offsets, so the batch must land in a segment whose
// base offset keeps it representable (Kafka rolls at the batch's own base offset); the data must
// then survive a reopen that re-validates the log.
// A gap no segment can span (relative offsets are 32-bit) is refused on a non-empty log with a
// typed error and leaves the log untouched; Gannet has no gapped segments (see FORMAT.md).
TEST_F(LogTest, FollowerGapBeyondSegmentRangeIsRefusedOnANonEmptyLog) {
  SimFileSystem fs;
  auto log = open_log_at(&fs, "/d/gap-refused", {});
  ASSERT_NE(log, nullptr);
  follower_ok(*log, follower_batch(0, 1, 3, 10));
  const auto before = all_records(*log);
  std::string far = follower_batch(5'000'000'000, 2, 2, 20);
  auto r = log->append_as_follower(as_span(far));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidOffset);
  EXPECT_EQ(log->log_end_offset(), 3);
  EXPECT_EQ(all_records(*log), before);
  follower_ok(*log, follower_batch(3, 1, 1, 30));  // and the log keeps working
  EXPECT_EQ(log->log_end_offset(), 4);
}

TEST_F(LogTest, FollowerBatchFarPastTheLogEndSurvivesRecovery) {
  for (int prefix : {0}) {
    SCOPED_TRACE("records before the gap: " + std::to_string(prefix));
    SimFileSystem fs;
    const std::string dir = "/d/gap-" + std::to_string(prefix);
    auto log = open_log_at(&fs, dir, {});
    ASSERT_NE(log, nullptr);
    if (prefix > 0) follower_ok(*log, follower_batch(0, 1, prefix, 10));
    const int64_t far = 5'000'000'000;
    follower_ok(*log, follower_batch(far, 2, 2, 20));
    follower_ok(*log, follower_batch(far + 2, 2, 1, 30));
    ASSERT_EQ(log->log_end_offset(), far + 3);
    auto metas = read_metas(*log, far + 1, 1);
    ASSERT_EQ(metas.size(), 1u);
    EXPECT_EQ(metas[0].base, far);
    const auto recs = all_records(*log);
    ASSERT_EQ(recs.size(), static_cast<size_t>(prefix + 3));
    ASSERT_TRUE(log->flush().ok());

    log.reset();
    log = open_log_at(&fs, dir, {});  // no recovery point: every segment is re-validated
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_end_offset(), far + 3) << "recovery dropped the replicated batches";
    EXPECT_EQ(all_records(*log), recs);
    if (log->log_end_offset() == far + 3) {
      metas = read_metas(*log, far + 2, 1);
      ASSERT_EQ(metas.size(), 1u);
      EXPECT_EQ(metas[0].base, far + 2);
    }
  }
}

// ---- Bad input ---------------------------------------------------------------------------------

class BadInputTest : public LogTest {
 protected:
  void SetUp() override {
    cfg_.max_message_bytes = 600;
    cfg_.segment_bytes = 5 * 1024;
    log_ = open_log(cfg_);
    ASSERT_NE(log_, nullptr);
    for (int i = 0; i < 30; ++i) append_ok(*log_, make_batch(values("ok", 3, 40), i), 1);
    ASSERT_GT(log_->segment_count(), 1u);
    end_ = log_->log_end_offset();
    records_ = all_records(*log_);
    entries_ = log_->epoch_cache().entries();
    snapshot_ = snapshot();
  }

  std::map<std::string, std::string> snapshot() {
    std::map<std::string, std::string> out;
    auto names = fs()->list_dir(dir_);
    EXPECT_TRUE(names.ok());
    for (const auto& n : *names) out[n] = file_contents(fs(), join_path(dir_, n));
    return out;
  }

  void expect_rejected(std::string batches, Errc code, const char* what) {
    SCOPED_TRACE(what);
    auto r = log_->append(as_span(batches), /*leader_epoch=*/7);  // a new epoch must not stick
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, code) << r.error().to_string();
    EXPECT_FALSE(log_->offline());
    EXPECT_EQ(log_->log_end_offset(), end_);
    EXPECT_EQ(log_->epoch_cache().entries(), entries_);
    EXPECT_EQ(all_records(*log_), records_);
    EXPECT_EQ(snapshot(), snapshot_);
  }

  static void flip(std::string& s, size_t at) { s[at] = static_cast<char>(s[at] ^ 0x5a); }

  LogConfig cfg_;
  std::unique_ptr<Log> log_;
  int64_t end_ = 0;
  std::vector<Rec> records_;
  std::vector<EpochEntry> entries_;
  std::map<std::string, std::string> snapshot_;
};

TEST_F(BadInputTest, CorruptBatchesLeaveTheLogUntouched) {
  const std::string good = make_batch(values("new", 4), 99);
  {
    std::string b = good;
    flip(b, f::kCrc + 1);
    expect_rejected(b, Errc::kCorruptMessage, "flipped CRC byte");
  }
  {
    std::string b = good;
    flip(b, b.size() - 3);  // in the records
    expect_rejected(b, Errc::kCorruptMessage, "flipped record byte");
  }
  {
    std::string b = good;
    flip(b, f::kMaxTimestamp + 7);  // in the CRC-covered header
    expect_rejected(b, Errc::kCorruptMessage, "flipped header byte");
  }
  {
    std::string b = good;
    b[f::kMagic] = 1;
    expect_rejected(b, Errc::kInvalidRecord, "magic 1");
  }
  {
    std::string b = good;
    store_be32(reinterpret_cast<uint8_t*>(b.data()) + f::kLength,
               static_cast<uint32_t>(b.size() - kLogOverhead + 50));
    expect_rejected(b, Errc::kCorruptMessage, "length larger than the buffer");
  }
  {
    std::string b = good.substr(0, good.size() - 10);
    expect_rejected(b, Errc::kCorruptMessage, "truncated batch");
  }
  {
    std::string b = good.substr(0, 10);
    expect_rejected(b, Errc::kCorruptMessage, "truncated header");
  }
  {
    std::string b = make_batch({std::string(700, 'L')}, 1);
    ASSERT_GT(b.size(), 600u);
    expect_rejected(b, Errc::kRecordTooLarge, "over max.message.bytes");
  }
  {
    std::string bad = good;
    flip(bad, bad.size() - 1);
    expect_rejected(good + bad, Errc::kCorruptMessage, "valid batch then corrupt batch");
  }
  {
    std::string b = good + good + good.substr(0, 30);
    expect_rejected(b, Errc::kCorruptMessage, "valid batches then a torn one");
  }
  {
    std::string b = good + make_batch({std::string(700, 'L')}, 1);
    expect_rejected(b, Errc::kRecordTooLarge, "valid batch then an oversized one");
  }
  expect_rejected("", Errc::kInvalidRecord, "empty buffer");

  // The follower path validates too.
  {
    std::string b = follower_batch(end_, 9, 2, 5);
    flip(b, b.size() - 2);
    auto r = log_->append_as_follower(as_span(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kCorruptMessage);
    EXPECT_EQ(log_->log_end_offset(), end_);
    EXPECT_EQ(log_->epoch_cache().entries(), entries_);
  }

  // A reopen shows exactly the accepted data.
  log_.reset();
  log_ = open_log(cfg_);
  ASSERT_NE(log_, nullptr);
  EXPECT_EQ(log_->log_end_offset(), end_);
  EXPECT_EQ(all_records(*log_), records_);
  EXPECT_EQ(log_->epoch_cache().entries(), entries_);
  // And the log still takes good data.
  EXPECT_EQ(append_ok(*log_, good, 7).base_offset, end_);
}

TEST_F(BadInputTest, FollowerIgnoresMaxMessageBytes) {
  BatchOptions o;
  o.base_offset = end_;
  o.leader_epoch = 1;
  std::string big = make_batch({std::string(700, 'L')}, 5, 1, o);
  ASSERT_GT(big.size(), 600u);
  EXPECT_EQ(follower_ok(*log_, big).base_offset, end_);
}

// ---- Flush -------------------------------------------------------------------------------------

TEST_F(LogTest, FlushMakesEverythingDurable) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(3 * single_size());
  cfg.index_interval_bytes = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->durable_offset(), 0);
  append_singles(*log, 2);
  EXPECT_EQ(log->durable_offset(), 0);
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  ASSERT_TRUE(log->flush().ok());
  EXPECT_EQ(log->durable_offset(), 2);
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);

  // With rolls in between: logs and index files of the rolled segments are synced too.
  append_singles(*log, 10);
  ASSERT_GT(log->segment_count(), 3u);
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  ASSERT_TRUE(log->flush().ok());
  EXPECT_EQ(log->durable_offset(), 12);
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);

  // flush_to a point already durable does no I/O.
  const uint64_t syncs = sim_.sync_count();
  ASSERT_TRUE(log->flush_to(5).ok());
  ASSERT_TRUE(log->flush().ok());
  EXPECT_EQ(sim_.sync_count(), syncs);
}

TEST_F(LogTest, FlushMessagesFlushesAfterNMessages) {
  LogConfig cfg;
  cfg.flush_messages = 5;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  auto two = [&] { append_ok(*log, make_batch(values("p", 2), 1)); };
  two();  // 2 unflushed
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 0);
  two();  // 4
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  two();  // 6 >= 5: flushed
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 6);
  two();  // 2 since the flush
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 6);
  two();
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  two();
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 12);
  // One batch of 5 at once.
  append_ok(*log, make_batch(values("p", 5), 1));
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 17);
}

TEST_F(LogTest, FlushIfDueRespectsFlushMs) {
  LogConfig cfg;
  cfg.flush_ms = 1000;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 1);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  clock_.advance_ms(999);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 0);
  clock_.advance_ms(1);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 1);

  // Nothing unflushed: no sync even when due.
  const uint64_t syncs = sim_.sync_count();
  clock_.advance_ms(5000);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_EQ(sim_.sync_count(), syncs);

  // The interval counts from the last flush. (The previous one was at t=1000.)
  append_singles(*log, 1);
  ASSERT_TRUE(log->flush().ok());  // t=6000
  append_singles(*log, 1);
  clock_.advance_ms(600);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_GT(sim_.unsynced_bytes(), 0u);
  clock_.advance_ms(400);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 3);
}

// flush.ms defaults to "never" (INT64_MAX): flush_if_due must not flush however much time passes.
TEST_F(LogTest, FlushIfDueWithDefaultFlushMsNeverFlushes) {
  clock_.advance_ms(10);  // like any real monotonic clock, not at zero when the log opens
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 1);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_GT(sim_.unsynced_bytes(), 0u) << "flush_if_due flushed with flush.ms = never";
  EXPECT_EQ(log->durable_offset(), 0);
  clock_.advance_ms(24LL * 3600 * 1000);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_GT(sim_.unsynced_bytes(), 0u) << "flush_if_due flushed with flush.ms = never";
  EXPECT_EQ(log->durable_offset(), 0);
}

TEST_F(LogTest, FlushIfDueWithZeroFlushMsAlwaysFlushes) {
  LogConfig cfg;
  cfg.flush_ms = 0;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 1);
  ASSERT_TRUE(log->flush_if_due().ok());
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  EXPECT_EQ(log->durable_offset(), 1);
}

// Group commit on SimFileSystem: in each round all threads append, then all flush; the round's
// flushes share one fdatasync, so syncs are far fewer than flush calls.
TEST_F(LogTest, GroupCommitSharesOneSyncAmongConcurrentFlushes) {
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  append_ok(*log, make_batch({"warm"}, 1), 1);  // epoch checkpoint written before counting
  ASSERT_TRUE(log->flush().ok());
  const uint64_t syncs_before = sim_.sync_count();

  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  std::barrier phase(kThreads);
  std::atomic<int> failures{0};
  std::atomic<int> flush_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::string b = make_batch({"t" + std::to_string(t) + "r" + std::to_string(round)}, round);
        auto r = log->append(as_span(b), 1);
        if (!r.ok()) failures.fetch_add(1);
        phase.arrive_and_wait();  // every append of the round is in
        flush_calls.fetch_add(1);
        if (!r.ok() || !log->flush_to(r->last_offset + 1).ok()) failures.fetch_add(1);
        if (r.ok() && log->durable_offset() <= r->last_offset) failures.fetch_add(1);
        phase.arrive_and_wait();  // every flush of the round is done
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const uint64_t syncs = sim_.sync_count() - syncs_before;
  EXPECT_EQ(flush_calls.load(), kThreads * kRounds);
  EXPECT_LT(syncs, static_cast<uint64_t>(flush_calls.load()));
  EXPECT_LE(syncs, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(log->durable_offset(), log->log_end_offset());
  EXPECT_EQ(log->log_end_offset(), 1 + kThreads * kRounds);
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
}

// ---- Retention ---------------------------------------------------------------------------------

class RetentionTest : public LogTest {
 protected:
  // One single-record batch per segment.
  std::unique_ptr<Log> open_one_per_segment(LogConfig cfg) {
    cfg.segment_bytes = static_cast<int64_t>(single_size());
    return open_log(cfg);
  }
};

TEST_F(RetentionTest, RetentionBytesDeletesOldestWholeSegments) {
  const size_t s = single_size();
  LogConfig cfg;
  auto log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 10, 1);
  ASSERT_EQ(log->segment_count(), 10u);
  ASSERT_EQ(log->size_bytes(), 10 * s);
  auto before = all_records(*log);

  // No limit: nothing goes (retention.ms is a week and the records are new).
  auto r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);

  cfg.segment_bytes = static_cast<int64_t>(s);
  cfg.retention_bytes = static_cast<int64_t>(3 * s + s / 2);
  log->set_config(cfg);
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 6);  // 10 -> 4 segments: deleting one more would leave 3s < 3.5s
  EXPECT_EQ(log->log_start_offset(), 6);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{6, 7, 8, 9}));
  EXPECT_EQ(log->size_bytes(), 4 * s);
  for (int64_t base = 0; base < 6; ++base) {
    EXPECT_FALSE(fs()->exists(seg_path(dir_, base, ".log"))) << base;
    EXPECT_FALSE(fs()->exists(seg_path(dir_, base, ".index"))) << base;
  }
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_TRUE(std::equal(recs.begin(), recs.end(), before.begin() + 6));
  for (int64_t below : {0, 5}) {
    auto e = log->read(below, 1000);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, Errc::kOffsetOutOfRange);
  }
  auto ok = log->read(6, 1000);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->log_start_offset, 6);

  // Idempotent.
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);

  // The new start survives a reopen.
  log.reset();
  log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 6);
  EXPECT_EQ(all_records(*log), recs);
}

TEST_F(RetentionTest, ActiveSegmentIsNeverDeleted) {
  LogConfig cfg;
  cfg.retention_bytes = 0;
  auto log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 5);
  auto r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{4}));
  EXPECT_EQ(log->log_start_offset(), 4);
  EXPECT_EQ(log->log_end_offset(), 5);
  ASSERT_EQ(all_records(*log).size(), 1u);

  // Old by time as well: still kept.
  cfg.retention_ms = 1;
  cfg.segment_bytes = static_cast<int64_t>(single_size());
  log->set_config(cfg);
  clock_.advance_ms(100'000);
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_end_offset(), 5);
}

TEST_F(RetentionTest, RetentionMsDeletesSegmentsWithOldMaxTimestamp) {
  LogConfig cfg;
  cfg.retention_ms = 3000;
  auto log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  const int64_t now = clock_.now_ms();
  append_ok(*log, make_batch({"a"}, now - 10'000));  // segment 0
  append_ok(*log, make_batch({"b"}, now - 5'000));   // segment 1
  append_ok(*log, make_batch({"c"}, now - 100));     // segment 2
  append_ok(*log, make_batch({"d"}, now - 20'000));  // segment 3: old but active
  ASSERT_EQ(log->segment_count(), 4u);

  auto r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  EXPECT_EQ(log->log_start_offset(), 2);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{2, 3}));

  clock_.advance_ms(2'899);  // segment 2's max timestamp is now 2999 ms old
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  clock_.advance_ms(2);  // 3001 ms old
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{3}));
  EXPECT_EQ(log->log_start_offset(), 3);

  // retention.ms = -1 keeps everything.
  LogConfig keep;
  keep.retention_ms = -1;
  keep.segment_bytes = static_cast<int64_t>(single_size());
  log->set_config(keep);
  append_ok(*log, make_batch({"e"}, now - 50'000));
  append_ok(*log, make_batch({"f"}, now - 50'000));
  clock_.advance_ms(1'000'000);
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
}

TEST_F(RetentionTest, HighWatermarkBoundsRetention) {
  LogConfig cfg;
  cfg.retention_bytes = 0;
  auto log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 10);
  log->update_high_watermark(4);
  EXPECT_EQ(log->high_watermark(), 4);
  log->update_high_watermark(2);  // never moves back
  EXPECT_EQ(log->high_watermark(), 4);

  auto r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4);  // segments 0-3 lie wholly below the HW; segment 4 holds offset 4
  EXPECT_EQ(log->log_start_offset(), 4);
  EXPECT_LE(log->log_start_offset(), log->high_watermark());
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);

  log->update_high_watermark(7);
  r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
  EXPECT_EQ(log->log_start_offset(), 7);
  auto e = log->read(6, 100);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kOffsetOutOfRange);
}

TEST_F(RetentionTest, RetentionMovesTheEpochCacheStart) {
  LogConfig cfg;
  cfg.retention_bytes = 0;
  auto log = open_one_per_segment(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 3, 1);
  append_singles(*log, 3, 2);
  append_singles(*log, 3, 3);
  log->update_high_watermark(5);
  auto r = log->enforce_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(log->log_start_offset(), 5);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{2, 5}, {3, 6}}));
}

// ---- Faults ------------------------------------------------------------------------------------

class FaultTest : public LogTest, public ::testing::WithParamInterface<Errc> {};

TEST_P(FaultTest, FailedAppendTakesTheLogOfflineAndLosesNothing) {
  const Errc code = GetParam();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(4 * single_size());
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 7, 1);
  ASSERT_TRUE(log->flush().ok());
  append_singles(*log, 1, 1, "unflushed");
  const auto records = all_records(*log);
  const int64_t end = log->log_end_offset();
  const int64_t active = log->segment_base_offsets().back();
  ASSERT_EQ(active, 7);  // the failing append goes to this segment without a roll
  const uint64_t active_size = file_size(fs(), seg_path(dir_, active, ".log"));

  sim_.inject_fault(Op::kAppend, 0, code, /*partial_bytes=*/10);
  std::string b = make_batch({"doomed"}, 1);
  auto r = log->append(as_span(b), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code);
  EXPECT_TRUE(log->offline());
  EXPECT_EQ(log->log_end_offset(), end);

  // Refuses writes from now on.
  std::string b2 = make_batch({"later"}, 1);
  auto r2 = log->append(as_span(b2), 1);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, Errc::kLogOffline);
  std::string fb = follower_batch(end, 1, 1, 1);
  auto r3 = log->append_as_follower(as_span(fb));
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.error().code, Errc::kLogOffline);
  auto t = log->truncate_to(2);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::kLogOffline);

  // Reads of what was appended still work.
  EXPECT_EQ(all_records(*log), records);
  EXPECT_EQ(records_by_small_reads(*log, 1), records);

  // A new Log on the same files has everything and not the partial write.
  log.reset();
  sim_.clear_faults();
  log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(log->offline());
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(all_records(*log), records);
  EXPECT_EQ(file_size(fs(), seg_path(dir_, active, ".log")), active_size);
  EXPECT_EQ(append_ok(*log, make_batch({"after"}, 1), 1).base_offset, end);
}

// The best-effort cut of the partial write fails too: the garbage stays in the file until a
// recovering open removes it.
TEST_P(FaultTest, PartialWriteThatCannotBeCutIsRemovedByRecovery) {
  const Errc code = GetParam();
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 5, 1);
  ASSERT_TRUE(log->flush().ok());
  const auto records = all_records(*log);
  const uint64_t size = file_size(fs(), seg_path(dir_, 0, ".log"));

  sim_.inject_fault(Op::kAppend, 0, code, /*partial_bytes=*/single_size() - 5);
  sim_.inject_fault(Op::kTruncate, 0, Errc::kIoError);
  std::string b = make_batch({"doomed"}, 1);
  auto r = log->append(as_span(b), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code);
  EXPECT_EQ(all_records(*log), records);  // reads stop at the last whole batch
  sim_.clear_faults();

  for (std::optional<int64_t> rp : {std::optional<int64_t>(), std::optional<int64_t>(5)}) {
    log.reset();
    log = open_log({}, rp);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_end_offset(), 5);
    EXPECT_EQ(all_records(*log), records);
    EXPECT_EQ(file_size(fs(), seg_path(dir_, 0, ".log")), size);
  }
}

TEST_P(FaultTest, FailedRollTakesTheLogOffline) {
  const Errc code = GetParam();
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * single_size());
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 2, 1);
  const auto records = all_records(*log);
  sim_.inject_fault(Op::kOpen, 0, code);
  std::string b = make_batch({"roll"}, 1);
  auto r = log->append(as_span(b), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code);
  EXPECT_TRUE(log->offline());
  EXPECT_EQ(log->log_end_offset(), 2);
  EXPECT_EQ(all_records(*log), records);
  sim_.clear_faults();
  log.reset();
  log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), records);
  EXPECT_EQ(append_ok(*log, make_batch({"x"}, 1), 1).base_offset, 2);
}

TEST_P(FaultTest, FailedSyncFailsFlush) {
  const Errc code = GetParam();
  auto log = open_log({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 3, 1);
  ASSERT_TRUE(log->flush().ok());
  append_singles(*log, 2, 1);
  sim_.inject_fault(Op::kSync, 0, code);
  Status st = log->flush();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, code);
  EXPECT_EQ(log->durable_offset(), 3);
  EXPECT_TRUE(log->offline());
  std::string b = make_batch({"x"}, 1);
  auto r = log->append(as_span(b), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kLogOffline);
  EXPECT_FALSE(log->flush().ok());
  EXPECT_EQ(all_records(*log).size(), 5u);
}

TEST_P(FaultTest, FailedSyncFailsAppendWithFlushMessages) {
  const Errc code = GetParam();
  LogConfig cfg;
  cfg.flush_messages = 1;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 2, 1);
  ASSERT_EQ(log->durable_offset(), 2);
  sim_.inject_fault(Op::kSync, 0, code);
  std::string b = make_batch({"x"}, 1);
  auto r = log->append(as_span(b), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code);
  EXPECT_EQ(log->durable_offset(), 2);
  EXPECT_TRUE(log->offline());
}

INSTANTIATE_TEST_SUITE_P(Errors, FaultTest, ::testing::Values(Errc::kIoError, Errc::kNoSpace),
                         [](const ::testing::TestParamInfo<Errc>& info) {
                           return std::string(info.param == Errc::kIoError ? "EIO" : "ENOSPC");
                         });

// ---- Crashes -----------------------------------------------------------------------------------

// Everything flushed survives a crash; what survives beyond is an intact prefix of what was
// appended; the log takes appends afterwards.
TEST_F(LogTest, CrashKeepsFlushedDataAndAnIntactPrefix) {
  LogConfig cfg;
  cfg.segment_bytes = 700;
  cfg.index_interval_bytes = 100;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFileSystem fs;
    std::mt19937_64 rng(seed);
    auto log = open_log_at(&fs, "/d/t-0", cfg);
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 15; ++i) {
      append_ok(*log, make_batch(values("s" + std::to_string(i) + "_", 1 + static_cast<int>(rng() % 4)), i),
                1 + i / 5);
    }
    ASSERT_TRUE(log->flush().ok());
    const int64_t durable = log->durable_offset();
    ASSERT_EQ(durable, log->log_end_offset());
    for (int i = 15; i < 25; ++i) {
      append_ok(*log, make_batch(values("u" + std::to_string(i) + "_", 1 + static_cast<int>(rng() % 4)), i), 4);
    }
    const auto appended = all_records(*log);
    fs.crash(rng);
    log.reset();

    log = open_log_at(&fs, "/d/t-0", cfg, durable);
    ASSERT_NE(log, nullptr);
    ASSERT_GE(log->log_end_offset(), durable);
    const auto recs = all_records(*log);
    ASSERT_EQ(recs.size(), static_cast<size_t>(log->log_end_offset()));
    ASSERT_LE(recs.size(), appended.size());
    EXPECT_TRUE(std::equal(recs.begin(), recs.end(), appended.begin()));
    // The epoch cache never points past the log end.
    for (const EpochEntry& e : log->epoch_cache().entries()) EXPECT_LT(e.start_offset, log->log_end_offset());
    const int64_t end = log->log_end_offset();
    EXPECT_EQ(append_ok(*log, make_batch({"after"}, 1), 9).base_offset, end);
    ASSERT_TRUE(log->flush().ok());
  }
}

TEST_F(LogTest, CrashAfterTruncationDoesNotResurrectData) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(3 * single_size());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFileSystem fs;
    std::mt19937_64 rng(seed);
    auto log = open_log_at(&fs, "/d/t-0", cfg);
    ASSERT_NE(log, nullptr);
    append_singles(*log, 5, 1);
    append_singles(*log, 5, 2);
    ASSERT_TRUE(log->flush().ok());
    ASSERT_TRUE(log->truncate_to(4).ok());
    ASSERT_EQ(log->durable_offset(), 4);
    fs.crash(rng);
    log.reset();
    log = open_log_at(&fs, "/d/t-0", cfg, 4);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_end_offset(), 4);
    EXPECT_EQ(all_records(*log).size(), 4u);
    EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}}));
  }
}

TEST_F(LogTest, CrashAfterTruncateFullyKeepsTheNewStart) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFileSystem fs;
    std::mt19937_64 rng(seed);
    auto log = open_log_at(&fs, "/d/t-0", {});
    ASSERT_NE(log, nullptr);
    append_singles(*log, 5, 1);
    ASSERT_TRUE(log->flush().ok());
    ASSERT_TRUE(log->truncate_fully_and_start_at(1000).ok());
    fs.crash(rng);
    log.reset();
    log = open_log_at(&fs, "/d/t-0", {}, 1000);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->log_start_offset(), 1000);
    EXPECT_EQ(log->log_end_offset(), 1000);
    EXPECT_TRUE(log->epoch_cache().entries().empty());
  }
}

// ---- Reopen ------------------------------------------------------------------------------------

class ReopenTest : public LogTest {
 protected:
  void SetUp() override {
    cfg_.segment_bytes = 1500;
    cfg_.index_interval_bytes = 150;
    log_ = open_log(cfg_);
    ASSERT_NE(log_, nullptr);
    for (int i = 0; i < 40; ++i) {
      append_ok(*log_, make_batch(values("r" + std::to_string(i) + "_", 1 + i % 3, 20), 10'000 + 100 * i, 7),
                1 + i / 10);
    }
    ASSERT_GE(log_->segment_count(), 4u);
  }

  struct State {
    int64_t start, end;
    std::vector<int64_t> bases;
    std::vector<Rec> records;
    std::vector<EpochEntry> epochs;
    std::vector<std::string> reads;  // read(offset, 1 byte) for every offset
    std::vector<int64_t> by_time;
    bool operator==(const State&) const = default;
  };

  State state(const Log& log) {
    State s{log.log_start_offset(), log.log_end_offset(), log.segment_base_offsets(), all_records(log),
            const_cast<Log&>(log).epoch_cache().entries(), {}, {}};
    for (int64_t o = s.start; o <= s.end; ++o) {
      auto b = read_bytes(log, o, 1);
      EXPECT_TRUE(b.ok());
      s.reads.push_back(b.ok() ? *b : "<error>");
    }
    for (int64_t t = 9'990; t < 10'000 + 100 * 41; t += 33) {
      auto r = log.offset_for_timestamp(t);
      EXPECT_TRUE(r.ok());
      s.by_time.push_back(r.ok() && r->has_value() ? (*r)->offset : -1);
    }
    return s;
  }

  static void expect_same(const State& a, const State& b) {
    EXPECT_EQ(a.start, b.start);
    EXPECT_EQ(a.end, b.end);
    EXPECT_EQ(a.bases, b.bases);
    EXPECT_EQ(a.records, b.records);
    EXPECT_TRUE(a.epochs == b.epochs);
    EXPECT_TRUE(a.reads == b.reads) << "per-offset reads differ";
    EXPECT_EQ(a.by_time, b.by_time);
  }

  void reopen(std::optional<int64_t> rp, bool clean) {
    log_.reset();
    log_ = open_log(cfg_, rp, clean);
    ASSERT_NE(log_, nullptr);
  }

  LogConfig cfg_;
  std::unique_ptr<Log> log_;
};

TEST_F(ReopenTest, CleanCloseAndReopenGivesIdenticalLog) {
  const State before = state(*log_);
  ASSERT_TRUE(log_->close().ok());
  EXPECT_EQ(sim_.unsynced_bytes(), 0u);
  reopen(std::nullopt, /*clean=*/true);
  expect_same(state(*log_), before);
  EXPECT_EQ(log_->durable_offset(), before.end);
  const int64_t end = log_->log_end_offset();
  EXPECT_EQ(append_ok(*log_, make_batch({"next"}, 1), 4).base_offset, end);

  // Also after a close with the log left usable, and then a full recovery.
  ASSERT_TRUE(log_->close().ok());
  const State again = state(*log_);
  reopen(std::nullopt, /*clean=*/false);
  expect_same(state(*log_), again);
  reopen(log_->log_end_offset(), /*clean=*/false);
  expect_same(state(*log_), again);
}

TEST_F(ReopenTest, MissingIndexFilesOfOlderSegmentsAreRebuilt) {
  ASSERT_TRUE(log_->close().ok());
  const State before = state(*log_);
  const auto bases = log_->segment_base_offsets();
  for (size_t i = 0; i + 1 < bases.size(); i += 2) {
    ASSERT_TRUE(fs()->remove_file(seg_path(dir_, bases[i], ".index")).ok());
    ASSERT_TRUE(fs()->remove_file(seg_path(dir_, bases[i], ".timeindex")).ok());
  }
  reopen(std::nullopt, /*clean=*/true);
  expect_same(state(*log_), before);
  const int64_t end = log_->log_end_offset();
  EXPECT_EQ(append_ok(*log_, make_batch({"next"}, 1), 4).base_offset, end);
}

TEST_F(ReopenTest, GarbageIndexFilesAreRebuilt) {
  ASSERT_TRUE(log_->close().ok());
  const State before = state(*log_);
  const auto bases = log_->segment_base_offsets();
  const std::vector<std::pair<std::string, std::string>> garbage = {
      {std::string(7, '\xff'), std::string(5, '\x01')},                       // not whole entries
      {std::string(16, '\xff'), std::string(24, '\xee')},                     // out of order
      {std::string("\x00\x00\x00\x01\x00\x00\x00\x01", 8), std::string(12, '\0')},  // not a batch start
      {std::string(8, '\0'), std::string("\x7f\xff\xff\xff\xff\xff\xff\xff\x7f\xff\xff\xf0", 12)},
  };
  for (const auto& [index, timeindex] : garbage) {
    for (int64_t base : {bases[1], bases.back()}) {  // an older segment and the active one
      overwrite_file(fs(), seg_path(dir_, base, ".index"), index);
      overwrite_file(fs(), seg_path(dir_, base, ".timeindex"), timeindex);
    }
    reopen(std::nullopt, /*clean=*/true);
    expect_same(state(*log_), before);
  }
}

// After an index file was found missing or corrupt and rebuilt in memory, the files on disk are
// rewritten (at the latest by the next clean close) so the next start does not rebuild again.
TEST_F(ReopenTest, RebuiltIndexFilesAreWrittenBack) {
  ASSERT_TRUE(log_->close().ok());
  const int64_t base = log_->segment_base_offsets()[1];
  const std::string index = file_contents(fs(), seg_path(dir_, base, ".index"));
  const std::string timeindex = file_contents(fs(), seg_path(dir_, base, ".timeindex"));
  ASSERT_FALSE(index.empty());
  ASSERT_TRUE(fs()->remove_file(seg_path(dir_, base, ".index")).ok());
  overwrite_file(fs(), seg_path(dir_, base, ".timeindex"), "junk");
  reopen(std::nullopt, /*clean=*/true);
  ASSERT_TRUE(log_->close().ok());
  ASSERT_TRUE(fs()->exists(seg_path(dir_, base, ".index"))) << "the rebuilt .index was never written";
  EXPECT_EQ(file_contents(fs(), seg_path(dir_, base, ".index")), index);
  EXPECT_EQ(file_contents(fs(), seg_path(dir_, base, ".timeindex")), timeindex);
}

TEST_F(ReopenTest, GarbageAtTheEndOfTheLastSegmentIsCutOff) {
  ASSERT_TRUE(log_->flush().ok());
  const State before = state(*log_);
  const int64_t active = log_->segment_base_offsets().back();
  const std::string path = seg_path(dir_, active, ".log");
  const uint64_t size = file_size(fs(), path);
  auto last = read_bytes(*log_, log_->log_end_offset() - 1, 1);
  ASSERT_TRUE(last.ok());
  ASSERT_FALSE(last->empty());

  std::string bad_crc = *last;
  bad_crc[bad_crc.size() - 1] ^= 1;
  std::string next_bad_crc = bad_crc;  // at the right next offset, but corrupt
  set_base_offset(reinterpret_cast<uint8_t*>(next_bad_crc.data()), log_->log_end_offset());
  std::mt19937_64 rng(3);
  std::string random(300, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  const std::vector<std::pair<const char*, std::string>> tails = {
      {"random bytes", random},
      {"zeros", std::string(200, '\0')},
      {"corrupt copy of the last batch", bad_crc},
      {"corrupt batch at the next offset", next_bad_crc},
      {"duplicate of the last batch", *last},
      {"torn batch", last->substr(0, last->size() / 2)},
      {"lone header fragment", last->substr(0, 9)},
  };
  for (const auto& [what, tail] : tails) {
    SCOPED_TRACE(what);
    append_to_file(fs(), path, tail);
    reopen(std::nullopt, /*clean=*/false);
    EXPECT_EQ(file_size(fs(), path), size);
    expect_same(state(*log_), before);
    EXPECT_EQ(log_->log_end_offset(), before.end);
  }
  // The checkpointed recovery point puts the last segment up for validation too.
  append_to_file(fs(), path, bad_crc);
  reopen(before.end, /*clean=*/false);
  EXPECT_EQ(file_size(fs(), path), size);
  expect_same(state(*log_), before);

  EXPECT_EQ(append_ok(*log_, make_batch({"next"}, 1), 4).base_offset, before.end);
  auto recs = all_records(*log_);
  EXPECT_EQ(recs.back().value, "next");
}

TEST_F(ReopenTest, CorruptionInsideAnOlderUnflushedSegmentDropsEverythingAfter) {
  // Nothing was flushed: the whole log is re-validated; a bad batch in segment 1 ends the log
  // there and later segments go.
  const auto bases = log_->segment_base_offsets();
  const std::string path = seg_path(dir_, bases[1], ".log");
  std::string bytes = file_contents(fs(), path);
  bytes[bytes.size() - 5] ^= 0x40;  // inside the last batch of segment 1
  overwrite_file(fs(), path, bytes);
  reopen(std::nullopt, /*clean=*/false);
  EXPECT_LT(log_->log_end_offset(), bases[2]);
  EXPECT_GT(log_->log_end_offset(), bases[1]);
  EXPECT_EQ(log_->segment_count(), 2u);
  for (size_t i = 2; i < bases.size(); ++i) EXPECT_FALSE(fs()->exists(seg_path(dir_, bases[i], ".log")));
  auto recs = all_records(*log_);
  EXPECT_EQ(recs.size(), static_cast<size_t>(log_->log_end_offset()));
  for (const EpochEntry& e : log_->epoch_cache().entries()) EXPECT_LT(e.start_offset, log_->log_end_offset());
  const int64_t end = log_->log_end_offset();
  EXPECT_EQ(append_ok(*log_, make_batch({"next"}, 1), 9).base_offset, end);
}

// ---- Concurrency -------------------------------------------------------------------------------

TEST_F(LogTest, ReadersSeeWholeBatchesWhileAppending) {
  LogConfig cfg;
  cfg.segment_bytes = 2000;
  cfg.index_interval_bytes = 200;
  auto log = open_log(cfg);
  ASSERT_NE(log, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      while (!done.load()) {
        const int64_t end = log->log_end_offset();
        const int64_t offset = end == 0 ? 0 : static_cast<int64_t>(rng() % (end + 1));
        auto bytes = read_bytes(*log, offset, 1 + rng() % 3000);
        if (!bytes.ok()) {
          errors.fetch_add(1);
          continue;
        }
        std::vector<Rec> recs;
        if (!decode(*bytes, &recs)) errors.fetch_add(1);
        if (offset < end && (recs.empty() || recs.front().offset > offset)) errors.fetch_add(1);
        for (size_t i = 1; i < recs.size(); ++i) {
          if (recs[i].offset != recs[i - 1].offset + 1) errors.fetch_add(1);
        }
        for (const Rec& r : recs) {
          if (r.value != "c" + std::to_string(r.offset)) errors.fetch_add(1);
        }
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 400; ++i) {
    const int n = 1 + i % 3;
    std::vector<std::string> vals;
    for (int k = 0; k < n; ++k) vals.push_back("c" + std::to_string(log->log_end_offset() + k));
    append_ok(*log, make_batch(vals, i), 1);
  }
  done.store(true);
  for (auto& th : readers) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// ---- Real file system --------------------------------------------------------------------------

class PosixLogTest : public LogTest {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    real_dir_ = fresh_tmp_dir(info->name()) + "/topic-3";
  }
  FileSystem* fs() override { return posix_file_system(); }
  std::unique_ptr<Log> open_real(const LogConfig& cfg, std::optional<int64_t> rp = std::nullopt,
                                 bool clean = false) {
    return open_log_at(posix_file_system(), real_dir_, cfg, rp, clean);
  }
  std::string real_dir_;
};

TEST_F(PosixLogTest, AppendReadRollTruncateAndReopen) {
  LogConfig cfg;
  cfg.segment_bytes = static_cast<int64_t>(2 * single_size() + 10);
  cfg.index_interval_bytes = 1;
  auto log = open_real(cfg);
  ASSERT_NE(log, nullptr);
  append_singles(*log, 10, 1);
  append_ok(*log, make_batch(values("m", 5), 100), 2);  // 10-14
  EXPECT_EQ(log->log_end_offset(), 15);
  EXPECT_EQ(log->segment_base_offsets(), (std::vector<int64_t>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(files_with_suffix(posix_file_system(), real_dir_, ".log").size(), 6u);
  EXPECT_TRUE(posix_file_system()->exists(seg_path(real_dir_, 4, ".index")));
  auto metas = read_metas(*log, 12, 1);
  ASSERT_EQ(metas.size(), 1u);
  EXPECT_EQ(metas[0].base, 10);
  auto r = log->read(15, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  ASSERT_FALSE(log->read(16, 100).ok());
  // Slices carry the real file descriptor for sendfile.
  auto slices = log->read(0, 1 << 20);
  ASSERT_TRUE(slices.ok());
  ASSERT_FALSE(slices->slices.empty());
  EXPECT_GE(slices->slices[0].file->fd(), 0);

  ASSERT_TRUE(log->truncate_to(8).ok());
  EXPECT_EQ(log->log_end_offset(), 8);
  EXPECT_FALSE(posix_file_system()->exists(seg_path(real_dir_, 8, ".log")));
  EXPECT_EQ(append_ok(*log, make_batch({"z"}, 1), 3).base_offset, 8);
  const auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), 9u);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {3, 8}}));

  ASSERT_TRUE(log->close().ok());
  log.reset();
  log = open_real(cfg, std::nullopt, /*clean=*/true);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), recs);
  log.reset();
  log = open_real(cfg);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(all_records(*log), recs);
  EXPECT_EQ(log->epoch_cache().entries(), (std::vector<EpochEntry>{{1, 0}, {3, 8}}));
}

TEST_F(PosixLogTest, GarbageAtTheEndIsCutOffOnReopen) {
  auto log = open_real({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 6, 1);
  ASSERT_TRUE(log->flush().ok());
  const auto recs = all_records(*log);
  const std::string path = seg_path(real_dir_, 0, ".log");
  const uint64_t size = file_size(posix_file_system(), path);
  log.reset();
  append_to_file(posix_file_system(), path, std::string("\x00\x00\x00\x00\x00\x00\x00\x06garbage!", 15));
  log = open_real({});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), 6);
  EXPECT_EQ(all_records(*log), recs);
  EXPECT_EQ(file_size(posix_file_system(), path), size);
  EXPECT_EQ(append_ok(*log, make_batch({"x"}, 1), 1).base_offset, 6);
}

TEST_F(PosixLogTest, TruncateFullyAndStartAtOnDisk) {
  auto log = open_real({});
  ASSERT_NE(log, nullptr);
  append_singles(*log, 3, 1);
  ASSERT_TRUE(log->truncate_fully_and_start_at(1000).ok());
  EXPECT_EQ(files_with_suffix(posix_file_system(), real_dir_, ".log"),
            (std::set<std::string>{"00000000000000001000.log"}));
  EXPECT_EQ(append_ok(*log, make_batch({"x"}, 1), 2).base_offset, 1000);
  log.reset();
  log = open_real({});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), 1000);
  EXPECT_EQ(log->log_end_offset(), 1001);
}

// Group commit on the real disk: concurrent append + flush_to from 8 threads all succeed, each
// caller's data is durable when its flush returns, and nothing is lost or duplicated.
TEST_F(PosixLogTest, ConcurrentAppendAndFlushToAllSucceed) {
  auto log = open_real({});
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string b = make_batch({"t" + std::to_string(t) + "_" + std::to_string(i)}, i);
        auto r = log->append(as_span(b), 1);
        if (!r.ok()) {
          failures.fetch_add(1);
          continue;
        }
        if (!log->flush_to(r->last_offset + 1).ok()) failures.fetch_add(1);
        if (log->durable_offset() < r->last_offset + 1) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log->log_end_offset(), kThreads * kPerThread);
  EXPECT_EQ(log->durable_offset(), log->log_end_offset());
  auto recs = all_records(*log);
  ASSERT_EQ(recs.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> seen;
  for (const Rec& r : recs) seen.insert(r.value);
  EXPECT_EQ(seen.size(), recs.size());
}

}  // namespace
}  // namespace gannet::storage

// ---- Preallocation (real file system) ----------------------------------------------------------

namespace gannet::storage {
namespace {

TEST(PreallocationTest, ReservesAheadKeepsTheLogicalSizeAndReleasesAtClose) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/prealloc-0";
  ASSERT_TRUE(posix_file_system()->remove_all(dir).ok());
  LogConfig cfg;
  cfg.segment_preallocate_bytes = 4 << 20;
  Log::Options o;
  o.config = cfg;
  auto opened = Log::open(dir, o);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  auto log = std::move(opened).value();
  std::string batch = make_batch({"a", "b", "c"}, 1'700'000'000'000);
  auto r = log->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(batch.data()), batch.size()), 0);
  ASSERT_TRUE(r.ok());
  const std::string seg = dir + "/" + Segment::file_name(0, ".log");
  struct stat st;
  ASSERT_EQ(::stat(seg.c_str(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), batch.size()) << "preallocation changed the size";
  const bool supported = static_cast<uint64_t>(st.st_blocks) * 512 >= (4u << 20);
  if (!supported) GTEST_SKIP() << "this file system does not preallocate";
  ASSERT_TRUE(log->close().ok());
  ASSERT_EQ(::stat(seg.c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "close kept the reserved blocks";
  // A closed log refuses writes; a reopened one reserves again, and a crash with blocks
  // reserved leaves the logical size intact: reopen without recovery hints.
  r = log->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(batch.data()), batch.size()), 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kLogOffline);
  log.reset();
  auto reopened = Log::open(dir, o);
  ASSERT_TRUE(reopened.ok());
  log = std::move(reopened).value();
  r = log->append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(batch.data()), batch.size()), 0);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(log->flush().ok());
  log.reset();
  auto again = Log::open(dir, o);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ((*again)->log_end_offset(), 6);
}

}  // namespace
}  // namespace gannet::storage
