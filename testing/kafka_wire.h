// Raw Kafka request frames for tests and benchmarks that talk to the Kafka listener without a
// client library: big-endian writers, a v1-header frame, and a Fetch v11 body.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gannet::testing::kafka_wire {

inline void put16(std::string& s, int16_t v) {
  s.push_back(static_cast<char>(static_cast<uint16_t>(v) >> 8));
  s.push_back(static_cast<char>(v & 0xff));
}
inline void put32(std::string& s, int32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(static_cast<uint32_t>(v) >> (8 * i)));
}
inline void put64(std::string& s, int64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
}
inline void put_str(std::string& s, const std::string& v) {
  put16(s, static_cast<int16_t>(v.size()));
  s += v;
}

// A whole frame: its size, then a request header v1 (key, version, correlation id, client id
// "t") and `body`.
inline std::string frame(int16_t key, int16_t version, int32_t correlation, const std::string& body) {
  std::string f;
  put16(f, key);
  put16(f, version);
  put32(f, correlation);
  put_str(f, "t");
  f += body;
  std::string out;
  put32(out, static_cast<int32_t>(f.size()));
  return out + f;
}

// A Fetch v11 body for partitions 0..offsets.size()-1 of `topic`, partition i from offsets[i]
// (a consumer's: replica -1, sessionless, min bytes 1).
inline std::string fetch_v11(const std::string& topic, const std::vector<int64_t>& offsets, int32_t max_wait_ms,
                             int32_t max_bytes, int32_t partition_max_bytes) {
  std::string b;
  put32(b, -1);  // replica_id
  put32(b, max_wait_ms);
  put32(b, 1);  // min_bytes
  put32(b, max_bytes);
  b.push_back(0);  // isolation_level
  put32(b, 0);     // session_id
  put32(b, -1);    // session_epoch
  put32(b, 1);
  put_str(b, topic);
  put32(b, static_cast<int32_t>(offsets.size()));
  for (size_t p = 0; p < offsets.size(); ++p) {
    put32(b, static_cast<int32_t>(p));
    put32(b, -1);  // current_leader_epoch
    put64(b, offsets[p]);
    put64(b, -1);  // log_start_offset
    put32(b, partition_max_bytes);
  }
  put32(b, 0);      // forgotten topics
  put_str(b, "");   // rack_id
  return b;
}

// ---- Flexible versions (KIP-482): compact types and tagged fields ----

inline void put_uvarint(std::string& s, uint32_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}
inline void put_compact_str(std::string& s, const std::string& v) {
  put_uvarint(s, static_cast<uint32_t>(v.size() + 1));
  s += v;
}
inline void put_compact_null(std::string& s) { put_uvarint(s, 0); }  // a null string or array
inline void put_compact_len(std::string& s, size_t n) { put_uvarint(s, static_cast<uint32_t>(n + 1)); }
inline void put_no_tags(std::string& s) { put_uvarint(s, 0); }

// A whole frame with request header v2 (flexible versions): key, version, correlation id,
// client id "t", no tagged fields.
inline std::string frame_v2(int16_t key, int16_t version, int32_t correlation, const std::string& body) {
  std::string f;
  put16(f, key);
  put16(f, version);
  put32(f, correlation);
  put_str(f, "t");
  put_no_tags(f);
  f += body;
  std::string out;
  put32(out, static_cast<int32_t>(f.size()));
  return out + f;
}

// Reads a response body; a read past the end sets failed() and returns zeros.
class BodyReader {
 public:
  explicit BodyReader(std::string s, size_t at = 0) : s_(std::move(s)), at_(at) {}
  bool failed() const { return failed_; }
  size_t left() const { return failed_ ? 0 : s_.size() - at_; }
  int8_t i8() { return static_cast<int8_t>(fixed(1)); }
  int16_t i16() { return static_cast<int16_t>(fixed(2)); }
  int32_t i32() { return static_cast<int32_t>(fixed(4)); }
  uint32_t uvarint() {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      const uint8_t b = static_cast<uint8_t>(fixed(1));
      v |= static_cast<uint32_t>(b & 0x7f) << shift;
      if (!(b & 0x80) || failed_) return v;
    }
    failed_ = true;
    return 0;
  }
  // A compact string (nullopt for null).
  std::optional<std::string> compact_str() {
    const uint32_t n = uvarint();
    if (n == 0) return std::nullopt;
    return take(n - 1);
  }
  int32_t compact_len() { return static_cast<int32_t>(uvarint()) - 1; }  // -1: null
  // A classic STRING (INT16 length; "" for null) and BYTES (INT32 length).
  std::string str() {
    const int16_t n = i16();
    return n < 0 ? std::string() : take(static_cast<size_t>(n));
  }
  std::string bytes() {
    const int32_t n = i32();
    return n < 0 ? std::string() : take(static_cast<size_t>(n));
  }
  std::string uuid() { return take(16); }
  void skip_tags() {
    const uint32_t n = uvarint();
    for (uint32_t i = 0; i < n && !failed_; ++i) {
      uvarint();
      take(uvarint());
    }
  }

 private:
  uint64_t fixed(size_t n) {
    uint64_t v = 0;
    for (char c : take(n)) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }
  std::string take(size_t n) {
    if (failed_ || s_.size() - at_ < n) {
      failed_ = true;
      return std::string(n, '\0');
    }
    std::string v = s_.substr(at_, n);
    at_ += n;
    return v;
  }
  std::string s_;
  size_t at_;
  bool failed_ = false;
};

// ---- A blocking loopback socket, for tests that write frames by hand ------------------------------

// A connection to 127.0.0.1:port whose reads give up after `timeout_s`; -1 when refused.
inline int connect_loopback(int port, int timeout_s = 5) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

inline bool send_all(int fd, const std::string& s) {
  return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

// One answer frame without its size (nullopt: the connection closed or the read timed out).
inline std::optional<std::string> read_frame(int fd) {
  auto read_n = [&](size_t n) -> std::optional<std::string> {
    std::string s(n, '\0');
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd, s.data() + got, n - got);
      if (r <= 0) return std::nullopt;
      got += static_cast<size_t>(r);
    }
    return s;
  };
  auto size = read_n(4);
  if (!size) return std::nullopt;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>((*size)[i]);
  if (n > (64u << 20)) return std::nullopt;
  return read_n(n);
}

// True when the server closes the connection (within the read timeout).
inline bool closed_by_server(int fd) {
  char b;
  return ::read(fd, &b, 1) == 0;
}

}  // namespace gannet::testing::kafka_wire
