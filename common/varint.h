// Zig-zag varints (protobuf's sint32/sint64 encoding), as Kafka's v2 records use for every
// per-record field. Decoders never read past `end` and report malformed input instead.
#pragma once

#include <cstdint>
#include <string>

namespace gannet {

inline uint64_t zigzag_encode(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t zigzag_decode(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Appends the unsigned varint encoding of `v` (at most 10 bytes).
inline void put_uvarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
inline void put_varint(std::string* out, int64_t v) { put_uvarint(out, zigzag_encode(v)); }

inline int uvarint_size(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline int varint_size(int64_t v) { return uvarint_size(zigzag_encode(v)); }

// Decodes an unsigned varint from [*p, end). On success advances *p and returns true; returns
// false (leaving *p unspecified) when the input ends early or the value exceeds 64 bits.
inline bool get_uvarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (*p >= end) return false;
    uint8_t byte = **p;
    ++*p;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}
inline bool get_varint(const uint8_t** p, const uint8_t* end, int64_t* v) {
  uint64_t u;
  if (!get_uvarint(p, end, &u)) return false;
  *v = zigzag_decode(u);
  return true;
}
// A varint that must fit in 32 bits (Kafka's "varint", as opposed to "varlong").
inline bool get_varint32(const uint8_t** p, const uint8_t* end, int32_t* v) {
  int64_t w;
  if (!get_varint(p, end, &w)) return false;
  if (w < INT32_MIN || w > INT32_MAX) return false;
  *v = static_cast<int32_t>(w);
  return true;
}

}  // namespace gannet
