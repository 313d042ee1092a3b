// Codecs for the compression attribute of a record batch: the records section is compressed as
// one unit. Formats follow what Kafka clients write: gzip (RFC 1952), snappy (raw; the Java
// client's "xerial" framing is also accepted on decompress), lz4 (the LZ4 frame format) and zstd
// (a zstd frame).
#pragma once

#include <string>
#include <string_view>

#include "storage/error.h"
#include "storage/record_batch.h"

namespace gannet::storage {

// Compresses `in` with `codec` (kNone copies).
Result<std::string> compress(Compression codec, std::string_view in);

// Decompresses `in`. Fails with kCorruptMessage when the input is malformed or would expand past
// `max_out` bytes, kUnsupportedCompression for an unknown codec.
Result<std::string> decompress(Compression codec, std::string_view in, size_t max_out);

}  // namespace gannet::storage
