#include "common/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <cstring>

namespace gannet::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // reflected Castagnoli polynomial

struct Tables {
  // Byte-at-a-time table for the software path.
  std::array<uint32_t, 256> byte;
  // shift[k][b]: the raw CRC register after running kBlock zero bytes from state (b << 8k).
  // The register update is linear over GF(2), so four lookups advance any state by kBlock bytes.
  std::array<std::array<uint32_t, 256>, 4> shift;
};

constexpr size_t kBlock = 4096;  // bytes per stream per round of the three-stream loop

uint32_t sw_update(const Tables& t, uint32_t crc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) crc = t.byte[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t.byte[i] = c;
  }
  // Advance each single-bit state through kBlock zero bytes, then combine bits into byte tables.
  static const uint8_t zeros[kBlock] = {};
  std::array<uint32_t, 32> bit{};
  for (int b = 0; b < 32; ++b) bit[b] = sw_update(t, 1u << b, zeros, kBlock);
  for (int k = 0; k < 4; ++k) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t r = 0;
      for (int b = 0; b < 8; ++b)
        if (v & (1u << b)) r ^= bit[8 * k + b];
      t.shift[k][v] = r;
    }
  }
  return t;
}

const Tables& tables() {
  static const Tables t = make_tables();
  return t;
}

inline uint32_t shift_block(const Tables& t, uint32_t c) {
  return t.shift[0][c & 0xff] ^ t.shift[1][(c >> 8) & 0xff] ^ t.shift[2][(c >> 16) & 0xff] ^
         t.shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t hw_update(const Tables& t, uint32_t crc,
                                                     const uint8_t* p, size_t n) {
  uint64_t c0 = crc;
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* p1 = p + kBlock;
    const uint8_t* p2 = p + 2 * kBlock;
    for (size_t i = 0; i < kBlock; i += 8) {
      uint64_t a, b, c;
      std::memcpy(&a, p + i, 8);
      std::memcpy(&b, p1 + i, 8);
      std::memcpy(&c, p2 + i, 8);
      c0 = _mm_crc32_u64(c0, a);
      c1 = _mm_crc32_u64(c1, b);
      c2 = _mm_crc32_u64(c2, c);
    }
    uint32_t s = shift_block(t, static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    c0 = shift_block(t, s) ^ static_cast<uint32_t>(c2);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  while (n >= 8) {
    uint64_t a;
    std::memcpy(&a, p, 8);
    c0 = _mm_crc32_u64(c0, a);
    p += 8;
    n -= 8;
  }
  uint32_t c = static_cast<uint32_t>(c0);
  while (n > 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  return c;
}

bool detect() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

}  // namespace

bool hardware_accelerated() {
  static const bool hw = detect();
  return hw;
}

uint32_t extend(uint32_t crc, const void* data, size_t n) {
  const Tables& t = tables();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  c = hardware_accelerated() ? hw_update(t, c, p, n) : sw_update(t, c, p, n);
  return ~c;
}

}  // namespace gannet::crc32c
