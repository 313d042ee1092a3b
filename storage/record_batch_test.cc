#include "storage/record_batch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/byte_order.h"
#include "common/crc32c.h"
#include "common/varint.h"
#include "storage/compression.h"

namespace gannet::storage {
namespace {

namespace f = batch_field;

const std::vector<Compression> kAllCodecs = {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                                             Compression::kLz4, Compression::kZstd};

// ---- Helpers -----------------------------------------------------------------------------------

// An owning copy of a record, for building inputs and comparing decoded output.
struct OwnedRecord {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;

  bool operator==(const OwnedRecord&) const = default;
};

std::ostream& operator<<(std::ostream& os, const OwnedRecord& r) {
  os << "{offset=" << r.offset << " ts=" << r.timestamp << " key=" << (r.key ? "'" + *r.key + "'" : "null")
     << " value=" << (r.value ? std::to_string(r.value->size()) + " bytes" : "null") << " headers=" << r.headers.size()
     << "}";
  return os;
}

std::optional<std::string_view> view(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return std::string_view(*s);
}

std::optional<std::string> own(const std::optional<std::string_view>& s) {
  if (!s) return std::nullopt;
  return std::string(*s);
}

uint8_t* bytes(std::string& s) { return reinterpret_cast<uint8_t*>(s.data()); }
const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string build(const BatchOptions& options, const std::vector<OwnedRecord>& records) {
  RecordBatchBuilder b(options);
  for (const OwnedRecord& r : records) {
    std::vector<RecordHeader> headers;
    for (const auto& [k, v] : r.headers) headers.push_back(RecordHeader{k, view(v)});
    b.add(r.timestamp, view(r.key), view(r.value), headers);
  }
  auto batch = b.build();
  EXPECT_TRUE(batch.ok()) << batch.error().to_string();
  return batch.ok() ? *batch : std::string();
}

Status validate(const std::string& batch) { return validate_batch(bytes(batch), batch.size()); }

RecordBatchView view_of(const std::string& batch) { return RecordBatchView(bytes(batch), batch.size()); }

// Decodes every record, or returns the first error.
Result<std::vector<OwnedRecord>> decode_all(const std::string& batch, size_t max_decompressed = 64 << 20) {
  auto it = RecordIterator::create(view_of(batch), max_decompressed);
  if (!it.ok()) return it.error();
  std::vector<OwnedRecord> out;
  Record r;
  while (true) {
    auto more = it->next(&r);
    if (!more.ok()) return more.error();
    if (!*more) break;
    OwnedRecord o{r.offset, r.timestamp, own(r.key), own(r.value), {}};
    for (const RecordHeader& h : r.headers) o.headers.emplace_back(std::string(h.key), own(h.value));
    out.push_back(std::move(o));
  }
  return out;
}

// Rewrites the CRC so validate_batch() passes whatever was edited in [attributes, end).
void fix_crc(std::string* batch) { store_be32(bytes(*batch) + f::kCrc, view_of(*batch).compute_crc()); }

// Replaces a batch's records section (and the length field and CRC to match).
std::string with_records(const std::string& batch, std::string_view records) {
  std::string out = batch.substr(0, kBatchHeaderSize);
  out.append(records);
  store_be32(bytes(out) + f::kLength, static_cast<uint32_t>(out.size() - kLogOverhead));
  fix_crc(&out);
  return out;
}

void set_i32(std::string* batch, size_t field, int32_t v) { store_be32(bytes(*batch) + field, static_cast<uint32_t>(v)); }

uint32_t reference_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
  }
  return ~c;
}

uint64_t test_seed() {
  if (const char* env = std::getenv("GANNET_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// A varied set of records: null and empty keys/values, headers (with null and empty values),
// binary bytes, out-of-order timestamps.
std::vector<OwnedRecord> varied_records(int n, int64_t base_ts) {
  std::vector<OwnedRecord> out;
  for (int i = 0; i < n; ++i) {
    OwnedRecord r;
    r.offset = i;
    r.timestamp = base_ts + (i % 7) * 13 - (i % 3) * 29;  // deltas go negative too
    switch (i % 5) {
      case 0: r.key = std::nullopt; r.value = "value-" + std::to_string(i); break;
      case 1: r.key = "key-" + std::to_string(i); r.value = std::nullopt; break;  // tombstone
      case 2: r.key = ""; r.value = ""; break;
      case 3: r.key = std::string("\0k\xff", 3); r.value = std::string(300 + i, static_cast<char>(i)); break;
      case 4: r.key = "k"; r.value = "v"; r.headers = {{"h1", "x"}, {"", std::nullopt}, {"trace", ""}}; break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

void expect_records(const std::string& batch, const std::vector<OwnedRecord>& want, const std::string& what) {
  auto got = decode_all(batch);
  ASSERT_TRUE(got.ok()) << what << ": " << got.error().to_string();
  ASSERT_EQ(got->size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ((*got)[i], want[i]) << what << " record " << i;
}

// ---- Round trips -------------------------------------------------------------------------------

class BatchCodecTest : public ::testing::TestWithParam<Compression> {};

TEST_P(BatchCodecTest, RoundTripVariedRecords) {
  BatchOptions o;
  o.compression = GetParam();
  o.base_offset = 1000;
  o.leader_epoch = 3;
  o.producer_id = 77;
  o.producer_epoch = 2;
  o.base_sequence = 500;
  std::vector<OwnedRecord> records = varied_records(25, 1'700'000'000'000);
  const std::string batch = build(o, records);
  ASSERT_TRUE(validate(batch).ok()) << validate(batch).error().to_string();

  RecordBatchView v = view_of(batch);
  EXPECT_EQ(v.base_offset(), 1000);
  EXPECT_EQ(v.leader_epoch(), 3);
  EXPECT_EQ(v.magic(), 2);
  EXPECT_EQ(v.length(), static_cast<int32_t>(batch.size() - 12));
  EXPECT_EQ(v.compression(), GetParam());
  EXPECT_EQ(v.timestamp_type(), TimestampType::kCreateTime);
  EXPECT_FALSE(v.is_transactional());
  EXPECT_FALSE(v.is_control());
  EXPECT_EQ(v.last_offset_delta(), 24);
  EXPECT_EQ(v.last_offset(), 1024);
  EXPECT_EQ(v.next_offset(), 1025);
  EXPECT_EQ(v.record_count(), 25);
  EXPECT_EQ(v.producer_id(), 77);
  EXPECT_EQ(v.producer_epoch(), 2);
  EXPECT_EQ(v.base_sequence(), 500);
  EXPECT_EQ(v.base_timestamp(), records[0].timestamp);
  int64_t max_ts = records[0].timestamp;
  for (const auto& r : records) max_ts = std::max(max_ts, r.timestamp);
  EXPECT_EQ(v.max_timestamp(), max_ts);

  for (auto& r : records) r.offset += 1000;
  expect_records(batch, records, compression_name(GetParam()));
}

TEST_P(BatchCodecTest, RoundTripManyRecords) {
  BatchOptions o;
  o.compression = GetParam();
  std::vector<OwnedRecord> records;
  for (int i = 0; i < 5000; ++i) {
    records.push_back(OwnedRecord{i, 1000 + i, "user-" + std::to_string(i % 100),
                                  "{\"event\":\"click\",\"n\":" + std::to_string(i) + "}", {}});
  }
  const std::string batch = build(o, records);
  ASSERT_TRUE(validate(batch).ok());
  EXPECT_EQ(view_of(batch).record_count(), 5000);
  EXPECT_EQ(view_of(batch).max_timestamp(), 1000 + 4999);
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(batch.size(), build({}, records).size() / 2) << "compressed batch is not smaller";
  }
  expect_records(batch, records, compression_name(GetParam()));
}

TEST_P(BatchCodecTest, ExtremeTimestampsRoundTrip) {
  BatchOptions o;
  o.compression = GetParam();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<OwnedRecord> records = {{0, kMax, "a", "1", {}}, {1, kMin, "b", "2", {}}, {2, -1, "c", "3", {}},
                                      {3, 0, std::nullopt, std::nullopt, {}}};
  const std::string batch = build(o, records);
  ASSERT_TRUE(validate(batch).ok());
  EXPECT_EQ(view_of(batch).base_timestamp(), kMax);
  EXPECT_EQ(view_of(batch).max_timestamp(), kMax);
  expect_records(batch, records, compression_name(GetParam()));
}

TEST_P(BatchCodecTest, LogAppendTimeYieldsMaxTimestamp) {
  BatchOptions o;
  o.compression = GetParam();
  o.timestamp_type = TimestampType::kLogAppendTime;
  std::vector<OwnedRecord> records = {{0, 50, "a", "1", {}}, {1, 90, "b", "2", {}}, {2, 70, "c", "3", {}}};
  const std::string batch = build(o, records);
  ASSERT_TRUE(validate(batch).ok());
  RecordBatchView v = view_of(batch);
  EXPECT_EQ(v.timestamp_type(), TimestampType::kLogAppendTime);
  EXPECT_TRUE(v.attributes() & kTimestampTypeBit);
  EXPECT_EQ(v.base_timestamp(), 50);
  EXPECT_EQ(v.max_timestamp(), 90);
  for (auto& r : records) r.timestamp = 90;
  expect_records(batch, records, compression_name(GetParam()));
}

TEST_P(BatchCodecTest, IteratorSurvivesBeingMoved) {
  // A tiny batch: its decompressed records section is about as short as std::string's inline
  // buffer, the case where a move could relocate the bytes the iterator points into.
  BatchOptions o;
  o.compression = GetParam();
  RecordBatchBuilder b(o);
  b.add(5, std::nullopt, std::nullopt);
  b.add(6, "k", "v");
  auto batch = b.build();
  ASSERT_TRUE(batch.ok());
  auto created = RecordIterator::create(view_of(*batch));
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  RecordIterator it = std::move(created).value();
  Record r;
  auto more = it.next(&r);
  ASSERT_TRUE(more.ok() && *more);
  RecordIterator moved = std::move(it);
  more = moved.next(&r);
  ASSERT_TRUE(more.ok() && *more) << (more.ok() ? "" : more.error().to_string());
  EXPECT_EQ(r.key, std::optional<std::string_view>("k"));
  EXPECT_EQ(r.value, std::optional<std::string_view>("v"));
  more = moved.next(&r);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
}

TEST_P(BatchCodecTest, AttributeBits) {
  BatchOptions o;
  o.compression = GetParam();
  o.transactional = true;
  o.control = true;
  const std::string batch = build(o, {{0, 1, "k", "v", {}}});
  ASSERT_TRUE(validate(batch).ok());
  RecordBatchView v = view_of(batch);
  EXPECT_TRUE(v.is_transactional());
  EXPECT_TRUE(v.is_control());
  EXPECT_EQ(v.attributes(), static_cast<int16_t>(static_cast<int>(GetParam()) | kTransactionalBit | kControlBit));
}

TEST_P(BatchCodecTest, DecompressionIsBounded) {
  BatchOptions o;
  o.compression = GetParam();
  const std::string batch = build(o, {{0, 1, "k", std::string(100000, 'z'), {}}});
  ASSERT_TRUE(validate(batch).ok());
  auto got = decode_all(batch, 1000);
  if (GetParam() == Compression::kNone) {
    EXPECT_TRUE(got.ok()) << "uncompressed batches are read in place";
  } else {
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, Errc::kCorruptMessage);
  }
}

// take() hands over the builder's buffer (no copy when uncompressed); its bytes are exactly
// build()'s, and the builder starts over empty with the same options.
TEST_P(BatchCodecTest, TakeEqualsBuildAndEmptiesTheBuilder) {
  BatchOptions o;
  o.compression = GetParam();
  o.base_offset = 7;
  RecordBatchBuilder b(o);
  b.reserve(1 << 16);
  std::vector<OwnedRecord> want;
  for (int i = 0; i < 50; ++i) {
    std::string v(static_cast<size_t>(i * 37 % 300), static_cast<char>('a' + i % 26));
    b.add(1000 + i, i % 3 == 0 ? std::nullopt : std::optional<std::string_view>("key" + std::to_string(i)), v);
    want.push_back({7 + i, 1000 + i, i % 3 == 0 ? std::nullopt : std::optional<std::string>("key" + std::to_string(i)),
                    v, {}});
  }
  auto built = b.build();
  ASSERT_TRUE(built.ok());
  auto taken = b.take();
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, *built);
  ASSERT_TRUE(validate(*taken).ok());
  expect_records(*taken, want, "taken batch");
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size_bytes(), kBatchHeaderSize);
  EXPECT_FALSE(b.take().ok()) << "an empty builder has nothing to take";
  b.add(5, "k", "again");
  auto second = b.take();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(view_of(*second).base_offset(), 7);
  expect_records(*second, {{7, 5, "k", "again", {}}}, "second batch");
}

std::string codec_param_name(const ::testing::TestParamInfo<Compression>& info) {
  return compression_name(info.param);
}
INSTANTIATE_TEST_SUITE_P(AllCodecs, BatchCodecTest, ::testing::ValuesIn(kAllCodecs), codec_param_name);

// ---- Builder -----------------------------------------------------------------------------------

TEST(RecordBatchBuilder, EmptyBuildIsInvalid) {
  RecordBatchBuilder b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.record_count(), 0);
  EXPECT_EQ(b.size_bytes(), kBatchHeaderSize);
  auto batch = b.build();
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.error().code, Errc::kInvalidRecord);
}

TEST(RecordBatchBuilder, SizeTracksUncompressedBytes) {
  RecordBatchBuilder b;
  b.add(1, "k", "v");
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.record_count(), 1);
  auto batch = b.build();
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(b.size_bytes(), batch->size());
}

TEST(RecordBatchBuilder, DefaultsMatchKafkaSentinels) {
  const std::string batch = build({}, {{0, 1, "k", "v", {}}});
  RecordBatchView v = view_of(batch);
  EXPECT_EQ(v.base_offset(), 0);
  EXPECT_EQ(v.leader_epoch(), -1);
  EXPECT_EQ(v.producer_id(), -1);
  EXPECT_EQ(v.producer_epoch(), -1);
  EXPECT_EQ(v.base_sequence(), -1);
  EXPECT_EQ(v.attributes(), 0);
}

// ---- Golden ------------------------------------------------------------------------------------

TEST(RecordBatchGolden, SingleRecordBytes) {
  BatchOptions o;
  o.base_offset = 0x0102030405060708;
  o.leader_epoch = 9;
  o.producer_id = 0x1122334455667788;
  o.producer_epoch = 0x0a0b;
  o.base_sequence = 0x01020304;
  const std::string batch = build(o, {{0, 1000, "k", "v", {{"h", "x"}}}});

  // Record: length 12 -> zig-zag 24 (0x18); attributes 0; timestamp delta 0; offset delta 0;
  // key length 1 -> 0x02, "k"; value length 1 -> 0x02, "v"; 1 header -> 0x02; header key length
  // 1 -> 0x02, "h"; header value length 1 -> 0x02, "x".
  const std::vector<uint8_t> want_records = {0x18, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v',
                                             0x02, 0x02, 'h',  0x02, 'x'};
  // Header, with the CRC bytes (17..20) zeroed; the CRC is checked separately below.
  const std::vector<uint8_t> want_header = {
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // base offset
      0x00, 0x00, 0x00, 0x3e,                          // length = 61 + 13 - 12 = 62
      0x00, 0x00, 0x00, 0x09,                          // leader epoch
      0x02,                                            // magic
      0x00, 0x00, 0x00, 0x00,                          // crc (zeroed here)
      0x00, 0x00,                                      // attributes
      0x00, 0x00, 0x00, 0x00,                          // last offset delta
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8,  // base timestamp 1000
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8,  // max timestamp 1000
      0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // producer id
      0x0a, 0x0b,                                      // producer epoch
      0x01, 0x02, 0x03, 0x04,                          // base sequence
      0x00, 0x00, 0x00, 0x01,                          // record count
  };
  ASSERT_EQ(want_header.size(), kBatchHeaderSize);
  ASSERT_EQ(batch.size(), kBatchHeaderSize + want_records.size());

  std::vector<uint8_t> got(bytes(batch), bytes(batch) + batch.size());
  EXPECT_EQ(got[f::kMagic], 2);
  EXPECT_EQ(load_be32(got.data() + f::kLength), batch.size() - 12);
  const uint32_t want_crc = reference_crc32c(got.data() + 21, got.size() - 21);
  EXPECT_EQ(load_be32(got.data() + f::kCrc), want_crc);
  EXPECT_EQ(view_of(batch).compute_crc(), want_crc);
  std::fill(got.begin() + f::kCrc, got.begin() + f::kCrc + 4, 0);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + kBatchHeaderSize), want_header);
  EXPECT_EQ(std::vector<uint8_t>(got.begin() + kBatchHeaderSize, got.end()), want_records);
  EXPECT_TRUE(validate(batch).ok());
}

// ---- Fields outside the CRC --------------------------------------------------------------------

TEST(RecordBatchRewrite, BaseOffsetAndLeaderEpochAreOutsideTheCrc) {
  for (Compression c : kAllCodecs) {
    BatchOptions o;
    o.compression = c;
    std::string batch = build(o, varied_records(10, 100));
    const uint32_t crc_before = view_of(batch).crc();
    set_base_offset(bytes(batch), 123456789);
    set_leader_epoch(bytes(batch), 42);
    ASSERT_TRUE(validate(batch).ok()) << compression_name(c);
    RecordBatchView v = view_of(batch);
    EXPECT_EQ(v.crc(), crc_before);
    EXPECT_EQ(v.base_offset(), 123456789);
    EXPECT_EQ(v.leader_epoch(), 42);
    EXPECT_EQ(v.last_offset(), 123456789 + 9);
    auto got = decode_all(batch);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    ASSERT_EQ(got->size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ((*got)[i].offset, 123456789 + i);
  }
}

// ---- Corruption --------------------------------------------------------------------------------

TEST(RecordBatchCorruption, AnyFlippedByteFromMagicOnFailsValidation) {
  for (Compression c : {Compression::kNone, Compression::kZstd}) {
    BatchOptions o;
    o.compression = c;
    const std::string good = build(o, {{0, 5, "key", "value", {{"h", "v"}}}, {1, 6, std::nullopt, "x", {}}});
    ASSERT_TRUE(validate(good).ok());
    for (size_t i = f::kMagic; i < good.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        EXPECT_FALSE(validate(bad).ok()) << compression_name(c) << " byte " << i << " ^ " << int(mask);
      }
    }
    // Bytes 0..11 (base offset, length) and 12..15 (epoch): only the length is checked.
    for (size_t i = 0; i < f::kMagic; ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      const bool in_length = i >= f::kLength && i < f::kLeaderEpoch;
      EXPECT_EQ(validate(bad).ok(), !in_length) << "byte " << i;
    }
  }
}

TEST(RecordBatchCorruption, CrcMismatchNamesBothCrcs) {
  std::string batch = build({}, {{0, 5, "k", "v", {}}});
  const uint32_t stored = view_of(batch).crc();
  batch.back() ^= 0x20;
  const uint32_t computed = view_of(batch).compute_crc();
  auto st = validate(batch);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kCorruptMessage);
  char want_stored[16], want_computed[16];
  std::snprintf(want_stored, sizeof(want_stored), "0x%08x", stored);
  std::snprintf(want_computed, sizeof(want_computed), "0x%08x", computed);
  EXPECT_NE(st.error().message.find(want_stored), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find(want_computed), std::string::npos) << st.error().message;
}

TEST(RecordBatchCorruption, WrongMagicIsInvalidRecord) {
  for (int magic : {0, 1, 3, -1}) {
    std::string batch = build({}, {{0, 5, "k", "v", {}}});
    batch[f::kMagic] = static_cast<char>(magic);
    auto st = validate(batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::kInvalidRecord) << st.error().to_string();
    EXPECT_NE(st.error().message.find("magic"), std::string::npos);
    auto peek = peek_batch_size(bytes(batch), batch.size(), 1 << 20);
    ASSERT_FALSE(peek.ok());
    EXPECT_EQ(peek.error().code, Errc::kInvalidRecord);
  }
}

TEST(RecordBatchCorruption, HeaderCountsAreChecked) {
  const std::string good = build({}, {{0, 5, "k", "v", {}}, {1, 6, "k", "v", {}}});
  struct Case {
    size_t field;
    int32_t value;
    const char* name;
  };
  for (const Case& c : {Case{f::kLastOffsetDelta, -1, "last offset delta"},
                        Case{f::kRecordCount, -1, "record count"},
                        Case{f::kRecordCount, 3, "record count"}}) {
    std::string bad = good;
    set_i32(&bad, c.field, c.value);
    fix_crc(&bad);
    auto st = validate(bad);
    ASSERT_FALSE(st.ok()) << c.name << " = " << c.value;
    EXPECT_EQ(st.error().code, Errc::kInvalidRecord) << st.error().to_string();
    EXPECT_NE(st.error().message.find(c.name), std::string::npos) << st.error().message;
  }
  // Fewer records than last offset delta + 1 is legal (compaction), even zero.
  std::string compacted = good;
  set_i32(&compacted, f::kLastOffsetDelta, 10);
  fix_crc(&compacted);
  EXPECT_TRUE(validate(compacted).ok());
}

TEST(RecordBatchCorruption, UnknownCodecIsUnsupported) {
  std::string batch = build({}, {{0, 5, "k", "v", {}}});
  store_be16(bytes(batch) + f::kAttributes, 5);
  fix_crc(&batch);
  auto st = validate(batch);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnsupportedCompression);
  auto it = RecordIterator::create(view_of(batch));
  ASSERT_FALSE(it.ok());
  EXPECT_EQ(it.error().code, Errc::kUnsupportedCompression);
}

// ---- Sizes and truncation ----------------------------------------------------------------------

TEST(PeekBatchSize, ReadsTheSizeFromTheFirst17Bytes) {
  const std::string batch = build({}, {{0, 5, "k", "v", {}}});
  for (size_t avail = 17; avail <= batch.size(); ++avail) {
    auto n = peek_batch_size(bytes(batch), avail, 1 << 20);
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    EXPECT_EQ(*n, batch.size());
  }
  EXPECT_TRUE(peek_batch_size(bytes(batch), batch.size(), batch.size()).ok()) << "the limit is inclusive";
}

TEST(PeekBatchSize, TruncatedHeaderIsCorrupt) {
  const std::string batch = build({}, {{0, 5, "k", "v", {}}});
  for (size_t avail = 0; avail < 17; ++avail) {
    auto n = peek_batch_size(bytes(batch), avail, 1 << 20);
    ASSERT_FALSE(n.ok()) << avail;
    EXPECT_EQ(n.error().code, Errc::kCorruptMessage);
    EXPECT_NE(n.error().message.find("truncated header"), std::string::npos);
  }
}

TEST(PeekBatchSize, BadLengths) {
  std::string batch = build({}, {{0, 5, "k", "v", {}}});
  for (int32_t len : {-1, std::numeric_limits<int32_t>::min(), 0, 48}) {
    set_i32(&batch, f::kLength, len);
    auto n = peek_batch_size(bytes(batch), batch.size(), 1 << 20);
    ASSERT_FALSE(n.ok()) << len;
    EXPECT_EQ(n.error().code, Errc::kCorruptMessage) << len;
    EXPECT_NE(n.error().message.find("length"), std::string::npos);
  }
  set_i32(&batch, f::kLength, 49);  // an empty-records header is the smallest plausible batch
  auto n = peek_batch_size(bytes(batch), batch.size(), 1 << 20);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 61u);
  for (int32_t len : {(1 << 20) - 11, std::numeric_limits<int32_t>::max()}) {
    set_i32(&batch, f::kLength, len);
    auto big = peek_batch_size(bytes(batch), batch.size(), 1 << 20);
    ASSERT_FALSE(big.ok()) << len;
    EXPECT_EQ(big.error().code, Errc::kRecordTooLarge) << len;
  }
}

TEST(ValidateBatch, TruncatedAndPaddedBatchesAreCorrupt) {
  const std::string batch = build({}, {{0, 5, "k", "v", {}}, {1, 6, "k2", "v2", {}}});
  for (size_t n = 0; n < batch.size(); ++n) {
    auto st = validate_batch(bytes(batch), n);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.error().code, Errc::kCorruptMessage) << n << ": " << st.error().to_string();
  }
  std::string padded = batch + "x";
  auto st = validate(padded);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kCorruptMessage);
  EXPECT_NE(st.error().message.find("length"), std::string::npos);
}

TEST(RecordIterator, RejectsShortBuffersWithoutReadingThem) {
  std::string batch = build({}, {{0, 5, "k", "v", {}}});
  for (size_t n = 0; n < kBatchHeaderSize; ++n) {
    auto it = RecordIterator::create(RecordBatchView(bytes(batch), n));
    ASSERT_FALSE(it.ok());
    EXPECT_EQ(it.error().code, Errc::kCorruptMessage);
  }
}

// ---- Malformed records the CRC cannot catch ----------------------------------------------------

// Encodes one record body exactly as the builder does, with fields under the test's control.
std::string record_body(int64_t ts_delta, int64_t offset_delta, int64_t key_len, std::string_view key,
                        int64_t value_len, std::string_view value, int64_t header_count, std::string_view rest = {}) {
  std::string b(1, '\0');
  put_varint(&b, ts_delta);
  put_varint(&b, offset_delta);
  put_varint(&b, key_len);
  b += key;
  put_varint(&b, value_len);
  b += value;
  put_varint(&b, header_count);
  b += rest;
  return b;
}

std::string framed(std::string_view body, int64_t declared_len) {
  std::string out;
  put_varint(&out, declared_len);
  out += body;
  return out;
}

std::string framed(std::string_view body) { return framed(body, static_cast<int64_t>(body.size())); }

class MalformedRecordsTest : public ::testing::TestWithParam<Compression> {
 protected:
  // A two-record batch whose records section is replaced by `records` (compressed with the
  // parameter codec), with a correct CRC: validate_batch() passes and only the iterator can object.
  std::string craft(std::string_view records) {
    BatchOptions o;
    o.compression = GetParam();
    const std::string base = build(o, {{0, 5, "k", "v", {}}, {1, 6, "k", "v", {}}});
    auto packed = compress(GetParam(), records);
    EXPECT_TRUE(packed.ok());
    std::string batch = with_records(base, *packed);
    EXPECT_TRUE(validate(batch).ok()) << validate(batch).error().to_string();
    return batch;
  }

  void expect_iterator_rejects(std::string_view records, const std::string& what) {
    auto got = decode_all(craft(records));
    ASSERT_FALSE(got.ok()) << what;
    EXPECT_EQ(got.error().code, Errc::kCorruptMessage) << what << ": " << got.error().to_string();
    std::cout << "  " << compression_name(GetParam()) << " / " << what << " -> " << got.error().message << "\n";
  }
};

TEST_P(MalformedRecordsTest, WellFormedCraftedRecordsDecode) {
  const std::string good = record_body(0, 0, 1, "k", 1, "v", 0);
  std::string records = framed(good) + framed(record_body(1, 1, -1, "", -1, "", 0));
  auto got = decode_all(craft(records));
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[1].timestamp, 6);
  EXPECT_FALSE((*got)[1].key.has_value());
}

TEST_P(MalformedRecordsTest, BogusLengths) {
  const std::string good = record_body(0, 0, 1, "k", 1, "v", 0);
  const std::string second = framed(record_body(1, 1, 1, "k", 1, "v", 0));
  const int64_t n = static_cast<int64_t>(good.size());
  expect_iterator_rejects(framed(good, n + 1) + second, "length one too long");
  expect_iterator_rejects(framed(good, n - 1) + second, "length one too short");
  expect_iterator_rejects(framed(good, 1'000'000) + second, "length past the end");
  expect_iterator_rejects(framed(good, -5) + second, "negative length");
  expect_iterator_rejects(std::string(10, '\xff') + second, "overlong varint");
  expect_iterator_rejects(framed(good, int64_t{1} << 40) + second, "length beyond int32");
  expect_iterator_rejects(std::string("\x80", 1), "truncated length varint");
}

TEST_P(MalformedRecordsTest, BogusFields) {
  const std::string second = framed(record_body(1, 1, 1, "k", 1, "v", 0));
  expect_iterator_rejects(framed(record_body(0, 0, -2, "", 1, "v", 0)) + second, "key length -2");
  expect_iterator_rejects(framed(record_body(0, 0, 1, "k", -7, "", 0)) + second, "value length -7");
  expect_iterator_rejects(framed(record_body(0, 0, 50, "k", 1, "v", 0)) + second, "key longer than record");
  expect_iterator_rejects(framed(record_body(0, 0, 1, "k", 1, "v", 1'000'000)) + second, "huge header count");
  expect_iterator_rejects(framed(record_body(0, 0, 1, "k", 1, "v", -1)) + second, "negative header count");
  std::string null_header_key;
  put_varint(&null_header_key, -1);
  put_varint(&null_header_key, 0);
  expect_iterator_rejects(framed(record_body(0, 0, 1, "k", 1, "v", 1, null_header_key)) + second,
                          "null header key");
  expect_iterator_rejects(framed(record_body(0, 2, 1, "k", 1, "v", 0)) + second, "offset delta past last");
  expect_iterator_rejects(framed(record_body(0, -1, 1, "k", 1, "v", 0)) + second, "negative offset delta");
  expect_iterator_rejects(framed(std::string(1, '\0')) + second, "body with only attributes");
  expect_iterator_rejects(framed("") + second, "empty body");
}

TEST_P(MalformedRecordsTest, RecordCountMismatch) {
  const std::string one = framed(record_body(0, 0, 1, "k", 1, "v", 0));
  const std::string two = framed(record_body(1, 1, 1, "k", 1, "v", 0));
  expect_iterator_rejects(one, "records run out early");
  expect_iterator_rejects(one + two + two, "extra record after record_count");
  expect_iterator_rejects(one + two + "z", "trailing byte");
  expect_iterator_rejects("", "empty records section");
}

TEST_P(MalformedRecordsTest, ErrorDoesNotAdvanceAndEndIsSticky) {
  const std::string batch = craft(framed(record_body(0, 0, 1, "k", 1, "v", 0)) + "\xff");
  auto it = RecordIterator::create(view_of(batch));
  ASSERT_TRUE(it.ok());
  Record r;
  auto first = it->next(&r);
  ASSERT_TRUE(first.ok() && *first);
  EXPECT_FALSE(it->next(&r).ok());
  EXPECT_FALSE(it->next(&r).ok()) << "a failed next() leaves the iterator where it was";
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, MalformedRecordsTest, ::testing::ValuesIn(kAllCodecs), codec_param_name);

TEST(RecordIterator, EndIsSticky) {
  const std::string batch = build({}, {{0, 5, "k", "v", {}}});
  auto it = RecordIterator::create(view_of(batch));
  ASSERT_TRUE(it.ok());
  Record r;
  ASSERT_TRUE(*it->next(&r));
  for (int i = 0; i < 3; ++i) {
    auto more = it->next(&r);
    ASSERT_TRUE(more.ok());
    EXPECT_FALSE(*more);
  }
}

TEST(RecordIterator, EmptyCompactedBatchYieldsNothing) {
  std::string batch = build({}, {{0, 5, "k", "v", {}}});
  batch = with_records(batch, "");
  set_i32(&batch, f::kRecordCount, 0);
  fix_crc(&batch);
  ASSERT_TRUE(validate(batch).ok());
  auto got = decode_all(batch);
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_TRUE(got->empty());
}

// ---- Robustness --------------------------------------------------------------------------------

// Runs every reader over `data`; none may crash, hang or read out of bounds, whatever the bytes.
void exercise(const std::string& data) {
  const uint8_t* p = bytes(data);
  auto peek = peek_batch_size(p, data.size(), 1 << 20);
  if (peek.ok()) {
    EXPECT_GE(*peek, kBatchHeaderSize);
  }
  (void)validate_batch(p, data.size()).ok();
  auto it = RecordIterator::create(RecordBatchView(p, data.size()), 1 << 20);
  if (!it.ok()) return;
  Record r;
  for (int64_t n = 0;; ++n) {
    auto more = it->next(&r);
    if (!more.ok()) {
      EXPECT_EQ(more.error().code, Errc::kCorruptMessage);
      return;
    }
    if (!*more) return;
    // Each record takes at least one byte, so a loop longer than the input would be a hang.
    ASSERT_LT(n, static_cast<int64_t>(data.size()) * 8 + 8);
  }
}

TEST(RecordBatchRobustness, RandomGarbageNeverCrashes) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);

  std::vector<std::string> valid;
  for (Compression c : kAllCodecs) {
    BatchOptions o;
    o.compression = c;
    valid.push_back(build(o, varied_records(12, 1000)));
  }

  for (int i = 0; i < 20000; ++i) {
    std::string data;
    switch (i % 4) {
      case 0: {  // pure noise
        data.resize(rng() % 200);
        for (auto& ch : data) ch = static_cast<char>(rng());
        break;
      }
      case 1: {  // noise behind a plausible header, CRC fixed so the iterator sees it
        data.resize(kBatchHeaderSize + rng() % 200);
        for (auto& ch : data) ch = static_cast<char>(rng());
        store_be32(bytes(data) + f::kLength, static_cast<uint32_t>(data.size() - kLogOverhead));
        data[f::kMagic] = 2;
        set_i32(&data, f::kRecordCount, static_cast<int32_t>(rng() % 20));
        set_i32(&data, f::kLastOffsetDelta, static_cast<int32_t>(rng() % 20));
        store_be16(bytes(data) + f::kAttributes, static_cast<uint16_t>(rng() % 5));
        fix_crc(&data);
        break;
      }
      default: {  // a valid batch with a few bytes smashed, sometimes truncated, CRC sometimes fixed
        data = valid[rng() % valid.size()];
        for (int k = 0, n = 1 + rng() % 4; k < n; ++k) data[rng() % data.size()] = static_cast<char>(rng());
        if (rng() % 4 == 0) data.resize(rng() % data.size());
        if (data.size() >= kBatchHeaderSize && rng() % 2 == 0) fix_crc(&data);
        break;
      }
    }
    exercise(data);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace gannet::storage
