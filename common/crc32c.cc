#include "common/crc32c.h"

#include <immintrin.h>
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

// ---- Carry-less multiplication folding (AVX-512 VPCLMULQDQ) ---------------------------------
//
// Representation: 16 message bytes loaded little-endian as a 128-bit value have bit p holding the
// coefficient of x^(127-p) (a reflected CRC takes bit 0 of byte 0 first, as the highest power).
// For 64-bit words w = rev64(W) and a constant C of degree < 32,
//   clmul(w, rev64(C)) = rev127(W * C) = rev128(W * C * x),
// so with C = x^(N-1) mod P the product is, in the same 128-bit representation, a value congruent
// to W * x^N modulo P. Folding a 16-byte block A = W_lo * x^64 + W_hi forward by D bits (onto the
// block D bits later) is then clmul(w_lo, rev64(x^(64+D-1) mod P)) ^ clmul(w_hi,
// rev64(x^(D-1) mod P)). Everything folds onto the last 16 bytes, which (CRC being linear and
// blind to congruent substitutes at the same position) have the CRC of the whole message; the
// crc32 instruction finishes them and the tail. The initial state is XORed into the first 4
// bytes, exactly as the crc32 instruction does.

constexpr uint64_t kPolyNormal = 0x11EDC6F41ull;  // Castagnoli, x^32 + ..., not reflected

uint32_t xpow_mod(uint64_t n) {  // x^n mod P, normal representation
  uint64_t r = 1;
  for (uint64_t i = 0; i < n; ++i) {
    r <<= 1;
    if (r & (1ull << 32)) r ^= kPolyNormal;
  }
  return static_cast<uint32_t>(r);
}

uint64_t rev64(uint64_t v) {
  uint64_t r = 0;
  for (int i = 0; i < 64; ++i)
    if (v & (1ull << i)) r |= 1ull << (63 - i);
  return r;
}

struct FoldConstants {
  // {lo-word constant, hi-word constant} for folding forward by D bits.
  static std::pair<uint64_t, uint64_t> for_distance(uint64_t d_bits) {
    return {rev64(xpow_mod(64 + d_bits - 1)), rev64(xpow_mod(d_bits - 1))};
  }
  std::pair<uint64_t, uint64_t> by256b, by64b, by48b, by32b, by16b;
};

const FoldConstants& fold_constants() {
  static const FoldConstants k = [] {
    FoldConstants f;
    f.by256b = FoldConstants::for_distance(256 * 8);
    f.by64b = FoldConstants::for_distance(64 * 8);
    f.by48b = FoldConstants::for_distance(48 * 8);
    f.by32b = FoldConstants::for_distance(32 * 8);
    f.by16b = FoldConstants::for_distance(16 * 8);
    return f;
  }();
  return k;
}

constexpr size_t kFoldMin = 1024;  // below this the crc32 loop is as fast

#define GANNET_CRC_AVX512 __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

GANNET_CRC_AVX512 inline __m512i fold512(__m512i acc, __m512i k, __m512i next) {
  __m512i a = _mm512_clmulepi64_epi128(acc, k, 0x00);
  __m512i b = _mm512_clmulepi64_epi128(acc, k, 0x11);
  return _mm512_ternarylogic_epi64(a, b, next, 0x96);  // a ^ b ^ next
}

GANNET_CRC_AVX512 inline __m128i fold128(__m128i acc, std::pair<uint64_t, uint64_t> k,
                                         __m128i next) {
  const __m128i kk = _mm_set_epi64x(static_cast<int64_t>(k.second), static_cast<int64_t>(k.first));
  __m128i a = _mm_clmulepi64_si128(acc, kk, 0x00);
  __m128i b = _mm_clmulepi64_si128(acc, kk, 0x11);
  return _mm_xor_si128(_mm_xor_si128(a, b), next);
}

GANNET_CRC_AVX512 inline __m512i bcast(std::pair<uint64_t, uint64_t> c) {
  return _mm512_broadcast_i32x4(
      _mm_set_epi64x(static_cast<int64_t>(c.second), static_cast<int64_t>(c.first)));
}

GANNET_CRC_AVX512 uint32_t fold_update(const Tables& t, uint32_t crc, const uint8_t* p, size_t n) {
  const FoldConstants& k = fold_constants();
  const __m512i k256 = bcast(k.by256b);
  const __m512i k64 = bcast(k.by64b);
  // Four 64-byte accumulators over 256-byte strides; the state goes into the first 4 bytes.
  __m512i a0 = _mm512_loadu_si512(p);
  __m512i a1 = _mm512_loadu_si512(p + 64);
  __m512i a2 = _mm512_loadu_si512(p + 128);
  __m512i a3 = _mm512_loadu_si512(p + 192);
  a0 = _mm512_xor_si512(a0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(crc))));
  size_t i = 256;
  for (; i + 256 <= n; i += 256) {
    a0 = fold512(a0, k256, _mm512_loadu_si512(p + i));
    a1 = fold512(a1, k256, _mm512_loadu_si512(p + i + 64));
    a2 = fold512(a2, k256, _mm512_loadu_si512(p + i + 128));
    a3 = fold512(a3, k256, _mm512_loadu_si512(p + i + 192));
  }
  // Four accumulators -> one (each 64 bytes before the next).
  a1 = fold512(a0, k64, a1);
  a2 = fold512(a1, k64, a2);
  a3 = fold512(a2, k64, a3);
  // Then whole 64-byte blocks left, one at a time.
  for (; i + 64 <= n; i += 64) a3 = fold512(a3, k64, _mm512_loadu_si512(p + i));
  // The four 16-byte lanes of a3 -> the last one.
  __m128i l0 = _mm512_extracti32x4_epi32(a3, 0);
  __m128i l1 = _mm512_extracti32x4_epi32(a3, 1);
  __m128i l2 = _mm512_extracti32x4_epi32(a3, 2);
  __m128i x = _mm512_extracti32x4_epi32(a3, 3);
  x = fold128(l0, k.by48b, x);
  x = fold128(l1, k.by32b, x);
  x = fold128(l2, k.by16b, x);
  // The folded 16 bytes stand where the message's bytes [i - 16, i) stood.
  uint64_t c = 0;
  c = _mm_crc32_u64(c, static_cast<uint64_t>(_mm_cvtsi128_si64(x)));
  c = _mm_crc32_u64(c, static_cast<uint64_t>(_mm_extract_epi64(x, 1)));
  return hw_update(t, static_cast<uint32_t>(c), p + i, n - i);
}

enum class Impl { kTable, kCrc32, kFold };

Impl detect() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sse4.2")) return Impl::kTable;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul")) {
    return Impl::kFold;
  }
  return Impl::kCrc32;
}

Impl impl() {
  static const Impl i = detect();
  return i;
}

}  // namespace

bool hardware_accelerated() { return impl() != Impl::kTable; }

const char* implementation() {
  switch (impl()) {
    case Impl::kTable: return "table";
    case Impl::kCrc32: return "sse4.2 crc32";
    case Impl::kFold: return "avx512 vpclmulqdq";
  }
  return "?";
}

uint32_t extend(uint32_t crc, const void* data, size_t n) {
  const Tables& t = tables();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  switch (impl()) {
    case Impl::kFold:
      c = n >= kFoldMin ? fold_update(t, c, p, n) : hw_update(t, c, p, n);
      break;
    case Impl::kCrc32:
      c = hw_update(t, c, p, n);
      break;
    case Impl::kTable:
      c = sw_update(t, c, p, n);
      break;
  }
  return ~c;
}

namespace testing {
uint32_t extend_with(int which, uint32_t crc, const void* data, size_t n) {
  const Tables& t = tables();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  if (which == 0) c = sw_update(t, c, p, n);
  else if (which == 1) c = hw_update(t, c, p, n);
  else c = n >= 256 ? fold_update(t, c, p, n) : hw_update(t, c, p, n);
  return ~c;
}
}  // namespace testing

}  // namespace gannet::crc32c
