// CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2 and of our own files.
// Picks the fastest path the CPU has: carry-less multiplication folding with AVX-512 VPCLMULQDQ
// (for buffers of 1 KiB and more), the SSE4.2 crc32 instruction over three interleaved streams
// (about 8 bytes per cycle), or a table; all give identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gannet::crc32c {

// Returns the CRC-32C of data[0, n) continuing from `crc`, the CRC of the preceding bytes
// (0 for none): extend(extend(0, a), b) == value(a ++ b).
uint32_t extend(uint32_t crc, const void* data, size_t n);

inline uint32_t value(const void* data, size_t n) { return extend(0, data, n); }

// True when a hardware path is in use; implementation() names it (for benchmarks).
bool hardware_accelerated();
const char* implementation();

namespace testing {
// Runs one implementation: 0 table, 1 crc32 instruction, 2 carry-less folding (needs the CPU
// features; tests check implementation() first).
uint32_t extend_with(int which, uint32_t crc, const void* data, size_t n);
}  // namespace testing

}  // namespace gannet::crc32c
