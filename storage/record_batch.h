// Record batches in Kafka's RecordBatch v2 ("magic 2") layout: the unit Gannet stores on disk,
// replicates to followers and hands to consumers, byte for byte. See FORMAT.md for the layout.
//
// RecordBatchView reads a batch in place (no copy, no decoding of records); validate_batch()
// checks an untrusted one; set_base_offset()/set_leader_epoch() rewrite the two header fields
// the CRC does not cover, so a leader assigns offsets without re-checksumming.
// RecordBatchBuilder makes batches; RecordIterator decodes (and decompresses) their records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_order.h"
#include "storage/error.h"

namespace gannet::storage {

// Byte offsets of the v2 header fields.
namespace batch_field {
inline constexpr size_t kBaseOffset = 0;        // int64
inline constexpr size_t kLength = 8;            // int32: bytes after this field
inline constexpr size_t kLeaderEpoch = 12;      // int32: partition leader epoch
inline constexpr size_t kMagic = 16;            // int8: 2
inline constexpr size_t kCrc = 17;              // uint32: CRC-32C of [kAttributes, end)
inline constexpr size_t kAttributes = 21;       // int16
inline constexpr size_t kLastOffsetDelta = 23;  // int32
inline constexpr size_t kBaseTimestamp = 27;    // int64
inline constexpr size_t kMaxTimestamp = 35;     // int64
inline constexpr size_t kProducerId = 43;       // int64
inline constexpr size_t kProducerEpoch = 51;    // int16
inline constexpr size_t kBaseSequence = 53;     // int32
inline constexpr size_t kRecordCount = 57;      // int32
inline constexpr size_t kRecords = 61;          // records start here
}  // namespace batch_field

inline constexpr size_t kBatchHeaderSize = batch_field::kRecords;  // 61
inline constexpr size_t kLogOverhead = 12;  // base offset + length: bytes not counted in length
inline constexpr int8_t kMagicV2 = 2;
// No batch, from a client or a leader, may be larger: scans treat a larger length as garbage.
inline constexpr size_t kMaxBatchBytes = size_t{1} << 30;

enum class Compression : uint8_t { kNone = 0, kGzip = 1, kSnappy = 2, kLz4 = 3, kZstd = 4 };
enum class TimestampType : uint8_t { kCreateTime = 0, kLogAppendTime = 1 };

const char* compression_name(Compression c);
// "none", "gzip", "snappy", "lz4", "zstd" -> codec; nullopt for anything else.
std::optional<Compression> parse_compression(std::string_view name);

// Attribute bits.
inline constexpr int16_t kCompressionMask = 0x07;
inline constexpr int16_t kTimestampTypeBit = 0x08;
inline constexpr int16_t kTransactionalBit = 0x10;
inline constexpr int16_t kControlBit = 0x20;
inline constexpr int16_t kDeleteHorizonBit = 0x40;

// A view of one whole batch; does not own the bytes, which must outlive it.
class RecordBatchView {
 public:
  RecordBatchView(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  const uint8_t* data() const { return data_; }
  size_t size_bytes() const { return size_; }

  int64_t base_offset() const { return i64(batch_field::kBaseOffset); }
  int32_t length() const { return i32(batch_field::kLength); }
  int32_t leader_epoch() const { return i32(batch_field::kLeaderEpoch); }
  int8_t magic() const { return static_cast<int8_t>(data_[batch_field::kMagic]); }
  uint32_t crc() const { return load_be32(data_ + batch_field::kCrc); }
  int16_t attributes() const { return static_cast<int16_t>(load_be16(data_ + batch_field::kAttributes)); }
  Compression compression() const { return static_cast<Compression>(attributes() & kCompressionMask); }
  TimestampType timestamp_type() const {
    return (attributes() & kTimestampTypeBit) ? TimestampType::kLogAppendTime : TimestampType::kCreateTime;
  }
  bool is_transactional() const { return attributes() & kTransactionalBit; }
  bool is_control() const { return attributes() & kControlBit; }
  int32_t last_offset_delta() const { return i32(batch_field::kLastOffsetDelta); }
  // Wrapping arithmetic: a hostile header must not be undefined behaviour; callers reject
  // offsets that wrapped (see Log's checks).
  int64_t last_offset() const {
    return static_cast<int64_t>(static_cast<uint64_t>(base_offset()) +
                                static_cast<uint64_t>(static_cast<int64_t>(last_offset_delta())));
  }
  int64_t next_offset() const {
    return static_cast<int64_t>(static_cast<uint64_t>(last_offset()) + 1);
  }
  int64_t base_timestamp() const { return i64(batch_field::kBaseTimestamp); }
  int64_t max_timestamp() const { return i64(batch_field::kMaxTimestamp); }
  int64_t producer_id() const { return i64(batch_field::kProducerId); }
  int16_t producer_epoch() const { return static_cast<int16_t>(load_be16(data_ + batch_field::kProducerEpoch)); }
  int32_t base_sequence() const { return i32(batch_field::kBaseSequence); }
  int32_t record_count() const { return i32(batch_field::kRecordCount); }
  std::span<const uint8_t> records_bytes() const {
    return {data_ + kBatchHeaderSize, size_ - kBatchHeaderSize};
  }

  // CRC-32C over [attributes, end), as stored in the crc field of a valid batch.
  uint32_t compute_crc() const;

 private:
  int32_t i32(size_t off) const { return static_cast<int32_t>(load_be32(data_ + off)); }
  int64_t i64(size_t off) const { return static_cast<int64_t>(load_be64(data_ + off)); }

  const uint8_t* data_;
  size_t size_;
};

// Reads the header of the batch at the front of [data, data + avail) and returns the batch's
// total size (length + 12). Fails with kCorruptMessage when fewer than 17 bytes are available or
// the length is negative or below the header size; kInvalidRecord when the magic is not 2;
// kRecordTooLarge when the batch is larger than `max_batch_bytes`. Does not check the CRC and
// does not require the whole batch to be available.
Result<size_t> peek_batch_size(const uint8_t* data, size_t avail, size_t max_batch_bytes);

// Full check of one untrusted batch occupying exactly [data, data + size): header sanity (magic,
// length == size - 12, last offset delta >= 0, record count in [0, last offset delta + 1]: else
// kInvalidRecord), then the CRC (kCorruptMessage), then the codec (kUnsupportedCompression).
// Does not decode records.
Status validate_batch(const uint8_t* data, size_t size);

// In-place rewrites of the fields outside the CRC.
inline void set_base_offset(uint8_t* batch, int64_t offset) {
  store_be64(batch + batch_field::kBaseOffset, static_cast<uint64_t>(offset));
}
inline void set_leader_epoch(uint8_t* batch, int32_t epoch) {
  store_be32(batch + batch_field::kLeaderEpoch, static_cast<uint32_t>(epoch));
}
// Rewrites an idempotent producer's fields of a whole, valid batch of `size` bytes and its CRC
// (they are covered by it): a producer stamps its sequence when the batch first goes out.
inline void set_producer_fields(uint8_t* batch, size_t size, int64_t producer_id, int16_t producer_epoch,
                                int32_t base_sequence) {
  store_be64(batch + batch_field::kProducerId, static_cast<uint64_t>(producer_id));
  store_be16(batch + batch_field::kProducerEpoch, static_cast<uint16_t>(producer_epoch));
  store_be32(batch + batch_field::kBaseSequence, static_cast<uint32_t>(base_sequence));
  store_be32(batch + batch_field::kCrc, RecordBatchView(batch, size).compute_crc());
}

// ---- Records -------------------------------------------------------------------------------

struct RecordHeader {
  std::string_view key;
  std::optional<std::string_view> value;  // nullopt: null value
};

// One decoded record; the views point into the batch or the iterator's decompressed buffer and
// live as long as the iterator.
struct Record {
  int64_t offset = 0;     // base offset + offset delta
  int64_t timestamp = 0;  // base timestamp + timestamp delta (or max timestamp for LogAppendTime)
  std::optional<std::string_view> key;    // nullopt: null key
  std::optional<std::string_view> value;  // nullopt: null value (a tombstone)
  std::vector<RecordHeader> headers;
};

// Decodes the records of a batch that passed validate_batch(), decompressing when needed (into a
// buffer of at most `max_decompressed_bytes`, so a hostile batch cannot exhaust memory).
class RecordIterator {
 public:
  static Result<RecordIterator> create(RecordBatchView batch,
                                       size_t max_decompressed_bytes = 64 << 20);

  // Decodes the next record into *out. Returns true if one was decoded, false at the end (after
  // exactly record_count() records); kCorruptMessage if the records are malformed.
  Result<bool> next(Record* out);

 private:
  RecordIterator(RecordBatchView batch) : batch_(batch) {}

  RecordBatchView batch_;
  std::string decompressed_;  // owned records section when the batch is compressed
  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  int32_t remaining_ = 0;
};

// Builds one batch. Typical use: add() records, then build(). Offsets in the built batch start at
// `base_offset` (the leader reassigns them on append).
struct BatchOptions {
  Compression compression = Compression::kNone;
  TimestampType timestamp_type = TimestampType::kCreateTime;
  int64_t base_offset = 0;
  int32_t leader_epoch = -1;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  bool transactional = false;
  bool control = false;
};

class RecordBatchBuilder {
 public:
  explicit RecordBatchBuilder(BatchOptions options = {});

  // Room for `bytes` of batch (header included) without growing: a producer that knows its
  // batch.size reserves it once instead of copying the buffer each time it doubles. Exactly
  // `bytes` (std::string::reserve would round a small growth up to twice the old capacity), so
  // a producer can count what it holds. No-op when the buffer already has the room.
  void reserve(size_t bytes) {
    if (bytes <= buf_.capacity()) return;
    std::string grown;
    grown.reserve(bytes);  // from an empty string: exactly `bytes`
    grown.append(buf_);
    buf_.swap(grown);
  }
  // Bytes the buffer holds (what it costs in memory, >= size_bytes()).
  size_t capacity() const { return buf_.capacity(); }
  // Upper bound on how many bytes add() appends for a record with these sizes (no headers):
  // length 5 + attributes 1 + timestamp delta 10 + offset delta 5 + key and value lengths 5 each
  // + header count 1 (zigzag varints; sizes below 2^31).
  static size_t max_record_bytes(size_t key_size, size_t value_size) { return key_size + value_size + 32; }

  void add(int64_t timestamp, std::optional<std::string_view> key,
           std::optional<std::string_view> value, std::span<const RecordHeader> headers = {});

  int record_count() const { return count_; }
  // Uncompressed size of the batch so far (header + records): what batch.size limits.
  size_t size_bytes() const { return buf_.size(); }
  bool empty() const { return count_ == 0; }

  // Compresses the records if asked, writes the header and CRC. kInvalidRecord if empty.
  Result<std::string> build() const;
  // As build(), but hands over the builder's own buffer when nothing is compressed (the header
  // is written into the room left for it): no copy of the records. The builder is empty after.
  Result<std::string> take();

 private:
  // Writes the header and CRC over `batch` (header room + `records` bytes after it).
  void finish(uint8_t* batch, size_t total) const;

  BatchOptions options_;
  std::string buf_;  // kBatchHeaderSize bytes of room for the header, then the encoded records
  int count_ = 0;
  int64_t base_timestamp_ = 0;
  int64_t max_timestamp_ = -1;
};

}  // namespace gannet::storage
