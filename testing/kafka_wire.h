// Raw Kafka request frames for tests and benchmarks that talk to the Kafka listener without a
// client library: big-endian writers, a v1-header frame, and a Fetch v11 body.
#pragma once

#include <cstdint>
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

}  // namespace gannet::testing::kafka_wire
