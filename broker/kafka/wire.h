// Kafka's wire types (https://kafka.apache.org/protocol#protocol_types), read and written by hand:
// big-endian fixed-width integers, unsigned varints, zig-zag varints, INT16-length strings and
// INT32-length bytes, and the compact (length + 1, as an unsigned varint) forms of flexible
// versions (KIP-482) with their tagged-field sections.
//
// Reader never reads past its end and never allocates from a length it has not checked against
// the bytes left: a malformed or hostile request makes it fail (ok() turns false, sticky) and
// every later read returns zero values. Array counts are bounded by the bytes left (every element
// takes at least one byte), so a count of 2^31-1 in a 20-byte request costs nothing.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace gannet::broker::kafka {

class Reader {
 public:
  Reader(const char* data, size_t size) : p_(data), end_(data + size) {}
  explicit Reader(std::string_view s) : Reader(s.data(), s.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const char* position() const { return p_; }
  void fail() {
    ok_ = false;
    p_ = end_;
  }

  int8_t i8() { return static_cast<int8_t>(fixed<uint8_t>()); }
  bool boolean() { return i8() != 0; }
  int16_t i16() { return static_cast<int16_t>(fixed<uint16_t>()); }
  int32_t i32() { return static_cast<int32_t>(fixed<uint32_t>()); }
  int64_t i64() { return static_cast<int64_t>(fixed<uint64_t>()); }

  uint32_t uvarint() {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p_ >= end_) {
        fail();
        return 0;
      }
      const uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint32_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
    return 0;
  }

  // STRING (INT16 length, -1 is null: read as ""), NULLABLE_STRING.
  std::string str() { return nullable_str().value_or(""); }
  std::optional<std::string> nullable_str() {
    const int16_t n = i16();
    if (n < 0) {
      if (n != -1) fail();
      return std::nullopt;
    }
    return take(static_cast<size_t>(n));
  }
  // BYTES / NULLABLE_BYTES (INT32 length).
  std::optional<std::string> nullable_bytes() {
    const int32_t n = i32();
    if (n < 0) {
      if (n != -1) fail();
      return std::nullopt;
    }
    return take(static_cast<size_t>(n));
  }
  std::string bytes() { return nullable_bytes().value_or(""); }
  // COMPACT_STRING / COMPACT_NULLABLE_STRING / COMPACT_BYTES (length + 1 as an unsigned varint).
  std::optional<std::string> compact_nullable_str() {
    const uint32_t n = uvarint();
    if (n == 0) return std::nullopt;
    return take(n - 1);
  }
  std::string compact_str() { return compact_nullable_str().value_or(""); }
  std::string compact_bytes() { return compact_str(); }

  // ARRAY count (INT32; -1 is null): returns -1 for null, else a count no larger than the bytes
  // left (fails otherwise).
  int32_t array_len() {
    const int32_t n = i32();
    return checked_count(n);
  }
  // COMPACT_ARRAY count (length + 1 as an unsigned varint; 0 is null).
  int32_t compact_array_len() {
    const uint32_t n = uvarint();
    if (!ok_) return 0;
    if (n == 0) return -1;
    if (n - 1 > remaining() || n - 1 > 0x7fffffffu) {
      fail();
      return 0;
    }
    return static_cast<int32_t>(n - 1);
  }
  // A UUID (16 raw bytes), e.g. a topic id.
  std::string uuid() { return take(16); }
  // A tagged-field section: every field is skipped (we define none).
  void skip_tagged_fields() {
    const uint32_t n = uvarint();
    if (n > remaining()) return fail();
    for (uint32_t i = 0; i < n && ok_; ++i) {
      uvarint();  // tag
      const uint32_t size = uvarint();
      if (size > remaining()) return fail();
      p_ += size;
    }
  }

 private:
  template <typename T>
  T fixed() {
    if (remaining() < sizeof(T)) {
      fail();
      return 0;
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p_[i]));
    p_ += sizeof(T);
    return v;
  }
  std::string take(size_t n) {
    if (n > remaining()) {
      fail();
      return {};
    }
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  int32_t checked_count(int32_t n) {
    if (!ok_) return 0;
    if (n < -1 || (n > 0 && static_cast<size_t>(n) > remaining())) {
      fail();
      return 0;
    }
    return n;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

class Writer {
 public:
  std::string& buffer() { return buf_; }
  std::string take() { return std::move(buf_); }
  size_t size() const { return buf_.size(); }

  void i8(int8_t v) { buf_.push_back(static_cast<char>(v)); }
  void boolean(bool v) { i8(v ? 1 : 0); }
  void i16(int16_t v) { fixed(static_cast<uint16_t>(v)); }
  void i32(int32_t v) { fixed(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { fixed(static_cast<uint64_t>(v)); }
  void uvarint(uint32_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }

  // An INT16-length string: longer ones (a client-chosen id can reach that) are cut at 32,767
  // bytes rather than written with a length that does not match.
  void str(std::string_view s) {
    if (s.size() > 32767) s = s.substr(0, 32767);
    i16(static_cast<int16_t>(s.size()));
    buf_.append(s);
  }
  void nullable_str(const std::optional<std::string>& s) {
    if (!s) return i16(-1);
    str(*s);
  }
  void null_str() { i16(-1); }
  void bytes(std::string_view s) {
    i32(static_cast<int32_t>(s.size()));
    buf_.append(s);
  }
  void compact_str(std::string_view s) {
    uvarint(static_cast<uint32_t>(s.size() + 1));
    buf_.append(s);
  }
  void compact_nullable_str(const std::optional<std::string>& s) {
    if (!s) return uvarint(0);
    compact_str(*s);
  }
  void array_len(size_t n) { i32(static_cast<int32_t>(n)); }
  void compact_array_len(size_t n) { uvarint(static_cast<uint32_t>(n + 1)); }
  void empty_tagged_fields() { uvarint(0); }
  // A UUID: 16 raw bytes (all zero when `id` is not 16 bytes: Kafka's "no id").
  void uuid(std::string_view id) {
    if (id.size() == 16) {
      buf_.append(id);
    } else {
      buf_.append(16, '\0');
    }
  }

  // Reserves an INT32 to be filled in later (a frame's size).
  size_t reserve_i32() {
    const size_t at = buf_.size();
    i32(0);
    return at;
  }
  void patch_i32(size_t at, int32_t v) {
    const uint32_t u = static_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i) buf_[at + i] = static_cast<char>(u >> (24 - 8 * i));
  }

 private:
  template <typename T>
  void fixed(T v) {
    for (int i = sizeof(T) - 1; i >= 0; --i) buf_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string buf_;
};

}  // namespace gannet::broker::kafka
