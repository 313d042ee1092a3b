#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "common/byte_order.h"
#include "common/crc32c.h"
#include "common/result.h"
#include "common/varint.h"

namespace gannet {
namespace {

uint32_t reference_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78 : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c::value("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c::value("", 0), 0u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c::value(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  std::vector<uint8_t> ones(32, 0xff);
  EXPECT_EQ(crc32c::value(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(Crc32c, MatchesBitwiseReferenceAcrossSizesAndSplits) {
  std::mt19937_64 rng(42);
  // Sizes straddle the three-stream block boundary (3 * 4096) and odd tails.
  for (size_t n : {0ul, 1ul, 7ul, 8ul, 9ul, 4095ul, 12287ul, 12288ul, 12289ul, 40000ul, 100003ul}) {
    std::vector<uint8_t> buf(n);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    uint32_t want = reference_crc32c(buf.data(), n);
    EXPECT_EQ(crc32c::value(buf.data(), n), want) << "n=" << n;
    size_t split = n / 3;
    uint32_t c = crc32c::extend(0, buf.data(), split);
    c = crc32c::extend(c, buf.data() + split, n - split);
    EXPECT_EQ(c, want) << "split n=" << n;
  }
}

TEST(Crc32c, EveryImplementationAgreesAcrossLengthsAndAlignments) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(70000 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  const bool fold = std::string(crc32c::implementation()) == "avx512 vpclmulqdq";
  for (size_t n : {256ul, 257ul, 300ul, 319ul, 320ul, 511ul, 512ul, 1000ul, 1024ul, 4096ul,
                   16384ul, 16447ul, 65536ul, 70000ul}) {
    for (size_t align : {0ul, 1ul, 7ul, 33ul}) {
      const uint8_t* p = buf.data() + align;
      uint32_t want = reference_crc32c(p, n);
      EXPECT_EQ(crc32c::testing::extend_with(0, 0, p, n), want) << n;
      if (crc32c::hardware_accelerated()) {
        EXPECT_EQ(crc32c::testing::extend_with(1, 0, p, n), want) << n;
      }
      if (fold) {
        EXPECT_EQ(crc32c::testing::extend_with(2, 0, p, n), want) << "n=" << n << " align=" << align;
        // A non-zero starting state goes into the first bytes.
        uint32_t head = crc32c::value(p, 5);
        EXPECT_EQ(crc32c::testing::extend_with(2, head, p + 5, n - 5), want) << n;
      }
    }
  }
  std::cout << "crc32c implementation: " << crc32c::implementation() << std::endl;
}

TEST(Varint, RoundTripsAndRejectsTruncation) {
  std::vector<int64_t> values = {0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN,
                                 INT64_MAX, INT64_MIN};
  for (int64_t v : values) {
    std::string s;
    put_varint(&s, v);
    EXPECT_EQ(static_cast<int>(s.size()), varint_size(v));
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    int64_t got;
    ASSERT_TRUE(get_varint(&p, p + s.size(), &got));
    EXPECT_EQ(got, v);
    const auto* q = reinterpret_cast<const uint8_t*>(s.data());
    EXPECT_FALSE(get_varint(&q, q + s.size() - 1, &got)) << v;
  }
  // -1 as a zig-zag varint is a single 0x01 byte (Kafka's null key length).
  std::string s;
  put_varint(&s, -1);
  EXPECT_EQ(s, std::string("\x01", 1));
  // More than ten continuation bytes is malformed, not an endless read.
  std::string bad(11, '\xff');
  const auto* p = reinterpret_cast<const uint8_t*>(bad.data());
  uint64_t u;
  EXPECT_FALSE(get_uvarint(&p, p + bad.size(), &u));
  // A varint32 that does not fit is rejected.
  std::string big;
  put_varint(&big, int64_t{1} << 40);
  p = reinterpret_cast<const uint8_t*>(big.data());
  int32_t v32;
  EXPECT_FALSE(get_varint32(&p, p + big.size(), &v32));
}

TEST(ByteOrder, BigEndian) {
  uint8_t b[8];
  store_be32(b, 0x01020304);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(load_be32(b), 0x01020304u);
  store_be64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[7], 8);
  EXPECT_EQ(load_be64(b), 0x0102030405060708ull);
}

struct TestError {
  int code;
};

Result<int, TestError> half(int v) {
  if (v % 2) return TestError{v};
  return v / 2;
}

Result<int, TestError> quarter(int v) {
  GANNET_ASSIGN_OR_RETURN(int h, half(v));
  return half(h);
}

TEST(Result, ValueOrError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, 3);
}

}  // namespace
}  // namespace gannet
