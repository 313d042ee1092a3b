// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2 and of our own files.
// Uses the SSE4.2 crc32 instruction over three interleaved streams when the CPU has it (about
// 8 bytes per cycle), else a table-driven fallback; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gannet::crc32c {

// Returns the CRC-32C of data[0, n) continuing from `crc`, the CRC of the preceding bytes
// (0 for none): extend(extend(0, a), b) == value(a ++ b).
uint32_t extend(uint32_t crc, const void* data, size_t n);

inline uint32_t value(const void* data, size_t n) { return extend(0, data, n); }

// True when the hardware path is in use (reported by benchmarks).
bool hardware_accelerated();

}  // namespace gannet::crc32c
