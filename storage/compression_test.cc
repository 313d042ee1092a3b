#include "storage/compression.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "common/byte_order.h"

namespace gannet::storage {
namespace {

const std::vector<Compression> kAllCodecs = {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                                             Compression::kLz4, Compression::kZstd};
const std::vector<Compression> kRealCodecs = {Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                                              Compression::kZstd};

constexpr size_t kMiB = 1 << 20;

std::string compressible(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; s.size() < n; ++i) s += "record " + std::to_string(i % 1000) + " of a very repetitive log; ";
  s.resize(n);
  return s;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

uint64_t test_seed() {
  if (const char* env = std::getenv("GANNET_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

void append_be32(std::string* out, uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  out->append(reinterpret_cast<const char*>(b), 4);
}

std::string raw_snappy(std::string_view in) {
  std::string out(snappy::MaxCompressedLength(in.size()), '\0');
  size_t n = 0;
  snappy::RawCompress(in.data(), in.size(), out.data(), &n);
  out.resize(n);
  return out;
}

// What snappy-java's SnappyOutputStream writes: magic, version 1, compatible version 1, then
// [be32 length][raw block] per chunk.
std::string xerial_frame(const std::vector<std::string_view>& chunks) {
  std::string out("\x82SNAPPY\0", 8);
  append_be32(&out, 1);
  append_be32(&out, 1);
  for (std::string_view chunk : chunks) {
    std::string block = raw_snappy(chunk);
    append_be32(&out, static_cast<uint32_t>(block.size()));
    out += block;
  }
  return out;
}

std::string must_compress(Compression c, std::string_view in) {
  auto r = compress(c, in);
  EXPECT_TRUE(r.ok()) << compression_name(c) << ": " << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? *r : std::string();
}

// ---- Names -------------------------------------------------------------------------------------

TEST(CompressionNames, RoundTrip) {
  for (Compression c : kAllCodecs) {
    auto parsed = parse_compression(compression_name(c));
    ASSERT_TRUE(parsed.has_value()) << compression_name(c);
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_STREQ(compression_name(Compression::kNone), "none");
  EXPECT_STREQ(compression_name(Compression::kGzip), "gzip");
  EXPECT_STREQ(compression_name(Compression::kSnappy), "snappy");
  EXPECT_STREQ(compression_name(Compression::kLz4), "lz4");
  EXPECT_STREQ(compression_name(Compression::kZstd), "zstd");
}

TEST(CompressionNames, RejectsUnknownNames) {
  for (const char* name : {"", "GZIP", "Gzip", "lz4 ", "zst", "producer", "uncompressed", "brotli"}) {
    EXPECT_FALSE(parse_compression(name).has_value()) << "'" << name << "'";
  }
}

// ---- Round trips -------------------------------------------------------------------------------

class CodecTest : public ::testing::TestWithParam<Compression> {};

void expect_round_trip(Compression c, const std::string& in) {
  std::string packed = must_compress(c, in);
  auto out = decompress(c, packed, in.size());  // exactly enough room
  ASSERT_TRUE(out.ok()) << compression_name(c) << " size " << in.size() << ": " << out.error().to_string();
  EXPECT_TRUE(*out == in) << compression_name(c) << " size " << in.size();
}

TEST_P(CodecTest, RoundTripEmpty) { expect_round_trip(GetParam(), ""); }

TEST_P(CodecTest, RoundTripSmall) {
  expect_round_trip(GetParam(), "a");
  expect_round_trip(GetParam(), "hello, gannet");
  expect_round_trip(GetParam(), std::string("\0\x01\xff\0binary", 10));
}

TEST_P(CodecTest, RoundTripCompressibleMiB) {
  const std::string in = compressible(kMiB);
  expect_round_trip(GetParam(), in);
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(must_compress(GetParam(), in).size(), in.size() / 4) << compression_name(GetParam());
  }
}

TEST_P(CodecTest, RoundTripIncompressibleMiB) { expect_round_trip(GetParam(), random_bytes(kMiB, 7)); }

TEST_P(CodecTest, RoundTripManySizes) {
  for (size_t n : {2ul, 15ul, 16ul, 17ul, 4095ul, 65535ul, 65536ul, 65537ul, 200000ul}) {
    expect_round_trip(GetParam(), compressible(n));
    expect_round_trip(GetParam(), random_bytes(n, n));
  }
}

// ---- max_out -----------------------------------------------------------------------------------

TEST_P(CodecTest, MaxOutIsEnforced) {
  const Compression c = GetParam();
  for (const std::string& in : {compressible(kMiB), random_bytes(100000, 3), std::string("xy")}) {
    std::string packed = must_compress(c, in);
    auto too_small = decompress(c, packed, in.size() - 1);
    ASSERT_FALSE(too_small.ok()) << compression_name(c) << " size " << in.size();
    EXPECT_EQ(too_small.error().code, Errc::kCorruptMessage);
    EXPECT_NE(too_small.error().message.find("exceeds the limit"), std::string::npos)
        << too_small.error().message;
    auto zero = decompress(c, packed, 0);
    ASSERT_FALSE(zero.ok());
    EXPECT_EQ(zero.error().code, Errc::kCorruptMessage);
    auto exact = decompress(c, packed, in.size());
    ASSERT_TRUE(exact.ok()) << exact.error().to_string();
    EXPECT_EQ(exact->size(), in.size());
  }
}

TEST_P(CodecTest, EmptyOutputFitsInZeroMaxOut) {
  auto out = decompress(GetParam(), must_compress(GetParam(), ""), 0);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_TRUE(out->empty());
}

// ---- Garbage -----------------------------------------------------------------------------------

class RealCodecTest : public ::testing::TestWithParam<Compression> {};

void expect_corrupt(Compression c, std::string_view in, const std::string& what) {
  auto out = decompress(c, in, 64 * kMiB);
  ASSERT_FALSE(out.ok()) << compression_name(c) << ": " << what << " decoded to " << out->size() << " bytes";
  EXPECT_EQ(out.error().code, Errc::kCorruptMessage) << out.error().to_string();
  EXPECT_NE(out.error().message.find(compression_name(c)), std::string::npos) << out.error().message;
}

TEST_P(RealCodecTest, GarbageFailsCleanly) {
  const Compression c = GetParam();
  expect_corrupt(c, "", "empty input");
  expect_corrupt(c, "this is not compressed at all, just text", "plain text");
  expect_corrupt(c, std::string(64, '\xff'), "all ones");
  const std::string packed = must_compress(c, compressible(100000));
  expect_corrupt(c, std::string_view(packed).substr(0, packed.size() / 2), "first half");
  expect_corrupt(c, std::string_view(packed).substr(0, packed.size() - 1), "all but the last byte");
  expect_corrupt(c, std::string_view(packed).substr(0, 3), "first three bytes");
}

TEST_P(RealCodecTest, TrailingJunkIsRejected) {
  const Compression c = GetParam();
  std::string packed = must_compress(c, "some records");
  expect_corrupt(c, packed + "junk", "trailing junk");
}

TEST_P(RealCodecTest, RandomGarbageNeverCrashes) {
  const Compression c = GetParam();
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  const std::string valid = must_compress(c, compressible(5000));
  for (int i = 0; i < 2000; ++i) {
    std::string in;
    if (i % 2 == 0) {
      in = random_bytes(rng() % 300, rng());
    } else {  // a valid stream with a few bytes smashed, which reaches deeper decoder states
      in = valid;
      for (int k = 0, n = 1 + rng() % 4; k < n; ++k) in[rng() % in.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) in.resize(rng() % in.size());
    }
    auto out = decompress(c, in, 1 << 20);
    if (out.ok()) {
      EXPECT_LE(out->size(), 1u << 20);
    } else {
      EXPECT_EQ(out.error().code, Errc::kCorruptMessage) << out.error().to_string();
    }
  }
}

// ---- Codec-specific ----------------------------------------------------------------------------

TEST(Gzip, WritesGzipWrapperAndAcceptsConcatenatedMembers) {
  std::string a = must_compress(Compression::kGzip, "first member;");
  std::string b = must_compress(Compression::kGzip, "second member");
  ASSERT_GE(a.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(a[0]), 0x1f);
  EXPECT_EQ(static_cast<uint8_t>(a[1]), 0x8b);
  auto out = decompress(Compression::kGzip, a + b, 1000);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out, "first member;second member");
}

TEST(Lz4, WritesIndependentBlocksFrameAsKafkaDoes) {
  std::string f = must_compress(Compression::kLz4, compressible(300000));
  ASSERT_GE(f.size(), 6u);
  EXPECT_EQ(load_be32(reinterpret_cast<const uint8_t*>(f.data())), 0x04224D18u);  // LE magic 0x184D2204
  const uint8_t flg = static_cast<uint8_t>(f[4]);
  EXPECT_EQ(flg >> 6, 1) << "frame version";
  EXPECT_TRUE(flg & 0x20) << "block independence";
  EXPECT_FALSE(flg & 0x08) << "content size";
  EXPECT_EQ((static_cast<uint8_t>(f[5]) >> 4) & 7, 4) << "64 KB max block size";
}

TEST(Lz4, AcceptsConcatenatedFrames) {
  std::string two = must_compress(Compression::kLz4, "one,") + must_compress(Compression::kLz4, "two");
  auto out = decompress(Compression::kLz4, two, 100);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out, "one,two");
}

TEST(Zstd, WritesZstdFrameAndAcceptsConcatenatedFrames) {
  std::string a = must_compress(Compression::kZstd, "alpha ");
  EXPECT_EQ(load_be32(reinterpret_cast<const uint8_t*>(a.data())), 0x28B52FFDu);
  auto out = decompress(Compression::kZstd, a + must_compress(Compression::kZstd, "beta"), 100);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out, "alpha beta");
}

TEST(Snappy, AcceptsXerialFraming) {
  const std::string text = compressible(200000);
  const std::string_view v(text);
  std::string framed = xerial_frame({v.substr(0, 32768), v.substr(32768, 32768), v.substr(65536)});
  auto out = decompress(Compression::kSnappy, framed, text.size());
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_TRUE(*out == text);
}

TEST(Snappy, XerialWithNoBlocksIsEmpty) {
  auto out = decompress(Compression::kSnappy, xerial_frame({}), 10);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_TRUE(out->empty());
}

TEST(Snappy, XerialMaxOutCountsAllBlocks) {
  std::string framed = xerial_frame({"0123456789", "abcdefghij"});
  EXPECT_TRUE(decompress(Compression::kSnappy, framed, 20).ok());
  auto out = decompress(Compression::kSnappy, framed, 19);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kCorruptMessage);
}

TEST(Snappy, MalformedXerialIsCorrupt) {
  const std::string framed = xerial_frame({"0123456789", "abcdefghij"});
  expect_corrupt(Compression::kSnappy, framed.substr(0, 12), "truncated xerial header");
  expect_corrupt(Compression::kSnappy, framed.substr(0, framed.size() - 1), "truncated last block");
  expect_corrupt(Compression::kSnappy, framed + std::string("\0\0", 2), "truncated block length");
  std::string huge_len = framed.substr(0, 16);
  append_be32(&huge_len, 0x7fffffff);
  huge_len += "abc";
  expect_corrupt(Compression::kSnappy, huge_len, "block length past the end");
  std::string empty_block = framed.substr(0, 16);
  append_be32(&empty_block, 0);
  expect_corrupt(Compression::kSnappy, empty_block, "zero-length block");
}

TEST(Compression, UnknownCodecIsUnsupported) {
  for (int v : {5, 6, 7, 200}) {
    const auto c = static_cast<Compression>(v);
    auto packed = compress(c, "x");
    ASSERT_FALSE(packed.ok());
    EXPECT_EQ(packed.error().code, Errc::kUnsupportedCompression);
    auto out = decompress(c, "x", 100);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, Errc::kUnsupportedCompression);
  }
}

TEST(Compression, NoneCopiesAndEnforcesMaxOut) {
  auto out = decompress(Compression::kNone, "abc", 3);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "abc");
  auto small = decompress(Compression::kNone, "abc", 2);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code, Errc::kCorruptMessage);
}

std::string codec_param_name(const ::testing::TestParamInfo<Compression>& info) {
  return compression_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest, ::testing::ValuesIn(kAllCodecs), codec_param_name);
INSTANTIATE_TEST_SUITE_P(RealCodecs, RealCodecTest, ::testing::ValuesIn(kRealCodecs), codec_param_name);

}  // namespace
}  // namespace gannet::storage
