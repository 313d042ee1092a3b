// RecordBatch v2: header checks, the CRC, record encoding (builder) and decoding (iterator).
// Everything that reads a batch treats it as untrusted: every read is bounds-checked against the
// end of the buffer, and malformed input is reported as a typed error, never undefined behaviour.
#include "storage/record_batch.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/crc32c.h"
#include "common/varint.h"
#include "storage/compression.h"

namespace gannet::storage {
namespace {

// Bytes after the length field in a batch with no records.
constexpr int32_t kMinLength = static_cast<int32_t>(kBatchHeaderSize - kLogOverhead);  // 49
// Bytes peek_batch_size() needs: base offset, length, leader epoch and magic.
constexpr size_t kPeekSize = batch_field::kMagic + 1;  // 17
// Capacity reserved for a decompressed records section so its bytes live on the heap: a moved
// std::string keeps a heap buffer in place, while a short-string buffer would be copied.
constexpr size_t kMinHeapCapacity = 64;

Error corrupt(std::string message) { return make_error(Errc::kCorruptMessage, std::move(message)); }
Error invalid(std::string message) { return make_error(Errc::kInvalidRecord, std::move(message)); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08" PRIx32, v);
  return buf;
}

// Timestamp deltas are defined modulo 2^64, so the builder and the iterator agree for any pair
// of timestamps and hostile input cannot trigger signed overflow.
int64_t wrapping_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wrapping_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

// ---- Record decoding ---------------------------------------------------------------------------

// A cursor over [p, end) of one record's body. Every read checks the bound before touching memory.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;

  size_t left() const { return static_cast<size_t>(end - p); }
  bool varint32(int32_t* v) { return get_varint32(&p, end, v); }
  bool varint64(int64_t* v) { return get_varint(&p, end, v); }
  bool skip(size_t n) {
    if (n > left()) return false;
    p += n;
    return true;
  }
};

std::string record_prefix(int32_t index) { return "record " + std::to_string(index) + ": "; }

// Reads a varint length followed by that many bytes. -1 yields nullopt when `nullable`; any other
// negative length, or one running past the end of the record, is corrupt.
Status read_bytes(Reader* r, int32_t index, const char* field, bool nullable,
                  std::optional<std::string_view>* out) {
  int32_t len;
  if (!r->varint32(&len)) return corrupt(record_prefix(index) + field + " length varint is truncated or malformed");
  if (len == -1 && nullable) {
    *out = std::nullopt;
    return {};
  }
  if (len < 0) {
    return corrupt(record_prefix(index) + field + " length " + std::to_string(len) +
                   (nullable ? " is negative (only -1, null, is allowed)" : " is negative (this field cannot be null)"));
  }
  const uint8_t* start = r->p;
  if (!r->skip(static_cast<size_t>(len))) {
    return corrupt(record_prefix(index) + field + " length " + std::to_string(len) + " exceeds the " +
                   std::to_string(r->left()) + " bytes left in the record");
  }
  *out = std::string_view(reinterpret_cast<const char*>(start), static_cast<size_t>(len));
  return {};
}

// What a record body holds besides its key, value and headers (which decode straight into Record).
struct RecordPrefix {
  int64_t timestamp_delta = 0;
  int32_t offset_delta = 0;
};

Status read_headers(Reader* r, int32_t index, std::vector<RecordHeader>* headers) {
  int32_t count;
  if (!r->varint32(&count)) return corrupt(record_prefix(index) + "header count varint is truncated or malformed");
  // Each header takes at least two bytes (two one-byte lengths), which bounds a sane count and
  // keeps a hostile count from reserving unbounded memory.
  if (count < 0 || static_cast<size_t>(count) > r->left() / 2) {
    return corrupt(record_prefix(index) + "header count " + std::to_string(count) + " is impossible with " +
                   std::to_string(r->left()) + " bytes left in the record");
  }
  headers->clear();
  headers->reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    std::optional<std::string_view> key, value;
    GANNET_RETURN_IF_ERROR(read_bytes(r, index, "header key", /*nullable=*/false, &key));
    GANNET_RETURN_IF_ERROR(read_bytes(r, index, "header value", /*nullable=*/true, &value));
    headers->push_back(RecordHeader{*key, value});
  }
  return {};
}

// Decodes one record body occupying exactly [r.p, r.end).
Status decode_body(Reader r, int32_t index, RecordPrefix* prefix, Record* out) {
  if (!r.skip(1)) return corrupt(record_prefix(index) + "missing attributes byte");  // unused in v2
  if (!r.varint64(&prefix->timestamp_delta)) {
    return corrupt(record_prefix(index) + "timestamp delta varlong is truncated or malformed");
  }
  if (!r.varint32(&prefix->offset_delta)) {
    return corrupt(record_prefix(index) + "offset delta varint is truncated or malformed");
  }
  GANNET_RETURN_IF_ERROR(read_bytes(&r, index, "key", /*nullable=*/true, &out->key));
  GANNET_RETURN_IF_ERROR(read_bytes(&r, index, "value", /*nullable=*/true, &out->value));
  GANNET_RETURN_IF_ERROR(read_headers(&r, index, &out->headers));
  if (r.p != r.end) {
    return corrupt(record_prefix(index) + std::to_string(r.left()) +
                   " bytes left over after the last field: the length varint does not match the fields");
  }
  return {};
}

// ---- Record encoding ---------------------------------------------------------------------------

void put_bytes(std::string* out, std::optional<std::string_view> bytes) {
  if (!bytes) {
    put_varint(out, -1);
    return;
  }
  put_varint(out, static_cast<int64_t>(bytes->size()));
  out->append(bytes->data(), bytes->size());
}

int16_t attributes_for(const BatchOptions& o) {
  int16_t a = static_cast<int16_t>(static_cast<int16_t>(o.compression) & kCompressionMask);
  if (o.timestamp_type == TimestampType::kLogAppendTime) a |= kTimestampTypeBit;
  if (o.transactional) a |= kTransactionalBit;
  if (o.control) a |= kControlBit;
  return a;
}

}  // namespace

// ---- Codec names -------------------------------------------------------------------------------

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kSnappy: return "snappy";
    case Compression::kLz4: return "lz4";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

std::optional<Compression> parse_compression(std::string_view name) {
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                        Compression::kZstd}) {
    if (name == compression_name(c)) return c;
  }
  return std::nullopt;
}

// ---- Header checks -----------------------------------------------------------------------------

uint32_t RecordBatchView::compute_crc() const {
  // Callers guarantee size_ >= kBatchHeaderSize (> kAttributes).
  return crc32c::extend(0, data_ + batch_field::kAttributes, size_ - batch_field::kAttributes);
}

Result<size_t> peek_batch_size(const uint8_t* data, size_t avail, size_t max_batch_bytes) {
  if (avail < kPeekSize) {
    return corrupt("truncated header: " + std::to_string(avail) + " bytes available, need " +
                   std::to_string(kPeekSize) + " to read the length and magic fields");
  }
  const int32_t length = static_cast<int32_t>(load_be32(data + batch_field::kLength));
  if (length < kMinLength) {
    return corrupt("length field is " + std::to_string(length) + ", below the minimum of " +
                   std::to_string(kMinLength) + " for a v2 batch header");
  }
  const int8_t magic = static_cast<int8_t>(data[batch_field::kMagic]);
  if (magic != kMagicV2) {
    return invalid("magic field is " + std::to_string(magic) + ", expected 2 (only RecordBatch v2 is supported)");
  }
  const size_t total = static_cast<size_t>(length) + kLogOverhead;
  if (total > max_batch_bytes) {
    return make_error(Errc::kRecordTooLarge, "batch size " + std::to_string(total) + " (length field " +
                                                 std::to_string(length) + " + 12) exceeds the limit of " +
                                                 std::to_string(max_batch_bytes) + " bytes");
  }
  return total;
}

Status validate_batch(const uint8_t* data, size_t size) {
  if (size < kBatchHeaderSize) {
    return corrupt("batch of " + std::to_string(size) + " bytes is shorter than the " +
                   std::to_string(kBatchHeaderSize) + "-byte v2 header");
  }
  RecordBatchView b(data, size);
  if (static_cast<int64_t>(b.length()) != static_cast<int64_t>(size - kLogOverhead)) {
    return corrupt("length field is " + std::to_string(b.length()) + " but the batch has " +
                   std::to_string(size) + " bytes (expected length " + std::to_string(size - kLogOverhead) + ")");
  }
  if (b.magic() != kMagicV2) {
    return invalid("magic field is " + std::to_string(b.magic()) + ", expected 2 (only RecordBatch v2 is supported)");
  }
  if (b.last_offset_delta() < 0) {
    return invalid("last offset delta field is " + std::to_string(b.last_offset_delta()) + ", must be >= 0");
  }
  // Offset deltas are distinct and in [0, last offset delta], so at most last_offset_delta + 1
  // records fit; compaction may leave fewer, even none.
  const int64_t max_records = static_cast<int64_t>(b.last_offset_delta()) + 1;
  if (b.record_count() < 0 || b.record_count() > max_records) {
    return invalid("record count field is " + std::to_string(b.record_count()) + ", must be in [0, " +
                   std::to_string(max_records) + "] (last offset delta + 1)");
  }
  const uint32_t computed = b.compute_crc();
  if (computed != b.crc()) {
    return corrupt("CRC mismatch: crc field is " + hex32(b.crc()) + " but the batch's CRC-32C is " + hex32(computed));
  }
  // Checked after the CRC: a bad codec in a checksummed header is a real codec, not corruption.
  if ((b.attributes() & kCompressionMask) > static_cast<int16_t>(Compression::kZstd)) {
    return make_error(Errc::kUnsupportedCompression,
                      "attributes field names compression codec " + std::to_string(b.attributes() & kCompressionMask) +
                          " (supported: 0..4: none, gzip, snappy, lz4, zstd)");
  }
  return {};
}

// ---- RecordIterator ----------------------------------------------------------------------------

Result<RecordIterator> RecordIterator::create(RecordBatchView batch, size_t max_decompressed_bytes) {
  // The view's accessors read the header, so it must be there even if validate_batch() was skipped.
  if (batch.size_bytes() < kBatchHeaderSize) {
    return corrupt("batch of " + std::to_string(batch.size_bytes()) + " bytes is shorter than the " +
                   std::to_string(kBatchHeaderSize) + "-byte v2 header");
  }
  if (batch.record_count() < 0) {
    return corrupt("record count field is " + std::to_string(batch.record_count()) + ", must be >= 0");
  }
  RecordIterator it(batch);
  it.remaining_ = batch.record_count();
  const std::span<const uint8_t> raw = batch.records_bytes();
  if (batch.compression() == Compression::kNone) {
    it.pos_ = raw.data();
    it.end_ = raw.data() + raw.size();
    return it;
  }
  std::string_view compressed(reinterpret_cast<const char*>(raw.data()), raw.size());
  GANNET_ASSIGN_OR_RETURN(it.decompressed_, decompress(batch.compression(), compressed, max_decompressed_bytes));
  it.decompressed_.reserve(std::max(it.decompressed_.size(), kMinHeapCapacity));
  it.pos_ = reinterpret_cast<const uint8_t*>(it.decompressed_.data());
  it.end_ = it.pos_ + it.decompressed_.size();
  return it;
}

Result<bool> RecordIterator::next(Record* out) {
  if (batch_.compression() != Compression::kNone) {
    // The iterator may have been moved since create() (it is returned by value), and a moved
    // std::string may relocate its bytes. The distance to the end survives any move, so re-derive
    // the cursor from it. Invariant: pos_ and end_ always point into the current decompressed_.
    const size_t left = reinterpret_cast<uintptr_t>(end_) - reinterpret_cast<uintptr_t>(pos_);
    end_ = reinterpret_cast<const uint8_t*>(decompressed_.data()) + decompressed_.size();
    pos_ = end_ - left;
  }
  const int32_t count = batch_.record_count();
  const int32_t index = count - remaining_;
  if (remaining_ == 0) {
    if (pos_ != end_) {
      return corrupt(std::to_string(end_ - pos_) + " bytes left over after the last of " + std::to_string(count) +
                     " records (record count field too small?)");
    }
    return false;
  }
  if (pos_ == end_) {
    return corrupt("records section ends after " + std::to_string(index) + " of " + std::to_string(count) +
                   " records (record count field too large?)");
  }
  Reader r{pos_, end_};
  int32_t length;
  if (!r.varint32(&length)) return corrupt(record_prefix(index) + "length varint is truncated or malformed");
  if (length < 0) return corrupt(record_prefix(index) + "length " + std::to_string(length) + " is negative");
  if (static_cast<size_t>(length) > r.left()) {
    return corrupt(record_prefix(index) + "length " + std::to_string(length) + " exceeds the " +
                   std::to_string(r.left()) + " bytes left in the records section");
  }
  const uint8_t* record_end = r.p + length;
  RecordPrefix prefix;
  GANNET_RETURN_IF_ERROR(decode_body(Reader{r.p, record_end}, index, &prefix, out));
  if (prefix.offset_delta < 0 || prefix.offset_delta > batch_.last_offset_delta()) {
    return corrupt(record_prefix(index) + "offset delta " + std::to_string(prefix.offset_delta) +
                   " is outside [0, " + std::to_string(batch_.last_offset_delta()) + "] (last offset delta)");
  }
  out->offset = wrapping_add(batch_.base_offset(), prefix.offset_delta);
  out->timestamp = batch_.timestamp_type() == TimestampType::kLogAppendTime
                       ? batch_.max_timestamp()
                       : wrapping_add(batch_.base_timestamp(), prefix.timestamp_delta);
  // Commit only now: a failed next() leaves the iterator where it was.
  pos_ = record_end;
  --remaining_;
  return true;
}

// ---- RecordBatchBuilder ------------------------------------------------------------------------

RecordBatchBuilder::RecordBatchBuilder(BatchOptions options) : options_(options), buf_(kBatchHeaderSize, '\0') {}

void RecordBatchBuilder::add(int64_t timestamp, std::optional<std::string_view> key,
                             std::optional<std::string_view> value, std::span<const RecordHeader> headers) {
  if (count_ == 0) {
    base_timestamp_ = timestamp;
    max_timestamp_ = timestamp;
  } else {
    max_timestamp_ = std::max(max_timestamp_, timestamp);
  }
  // The body's length prefixes it, so it is sized first, then encoded straight into the buffer.
  auto bytes_size = [](std::optional<std::string_view> b) -> size_t {
    return b ? static_cast<size_t>(varint_size(static_cast<int64_t>(b->size()))) + b->size() : 1;
  };
  const int64_t ts_delta = wrapping_sub(timestamp, base_timestamp_);
  size_t body = 1 + static_cast<size_t>(varint_size(ts_delta)) + static_cast<size_t>(varint_size(count_)) +
                bytes_size(key) + bytes_size(value) +
                static_cast<size_t>(varint_size(static_cast<int64_t>(headers.size())));
  for (const RecordHeader& h : headers) body += bytes_size(h.key) + bytes_size(h.value);
  put_varint(&buf_, static_cast<int64_t>(body));
  buf_.push_back('\0');  // record attributes: unused in v2
  put_varint(&buf_, ts_delta);
  put_varint(&buf_, count_);  // offset delta: records are numbered 0, 1, ... within the batch
  put_bytes(&buf_, key);
  put_bytes(&buf_, value);
  put_varint(&buf_, static_cast<int64_t>(headers.size()));
  for (const RecordHeader& h : headers) {
    put_bytes(&buf_, h.key);
    put_bytes(&buf_, h.value);
  }
  ++count_;
}

void RecordBatchBuilder::finish(uint8_t* p, size_t total) const {
  namespace f = batch_field;
  store_be64(p + f::kBaseOffset, static_cast<uint64_t>(options_.base_offset));
  store_be32(p + f::kLength, static_cast<uint32_t>(total - kLogOverhead));
  store_be32(p + f::kLeaderEpoch, static_cast<uint32_t>(options_.leader_epoch));
  p[f::kMagic] = static_cast<uint8_t>(kMagicV2);
  store_be16(p + f::kAttributes, static_cast<uint16_t>(attributes_for(options_)));
  store_be32(p + f::kLastOffsetDelta, static_cast<uint32_t>(count_ - 1));
  store_be64(p + f::kBaseTimestamp, static_cast<uint64_t>(base_timestamp_));
  store_be64(p + f::kMaxTimestamp, static_cast<uint64_t>(max_timestamp_));
  store_be64(p + f::kProducerId, static_cast<uint64_t>(options_.producer_id));
  store_be16(p + f::kProducerEpoch, static_cast<uint16_t>(options_.producer_epoch));
  store_be32(p + f::kBaseSequence, static_cast<uint32_t>(options_.base_sequence));
  store_be32(p + f::kRecordCount, static_cast<uint32_t>(count_));
  // The CRC covers [attributes, end), so it is computed last.
  store_be32(p + f::kCrc, RecordBatchView(p, total).compute_crc());
}

Result<std::string> RecordBatchBuilder::build() const {
  if (count_ == 0) return invalid("cannot build a batch with no records");
  std::string compressed;
  std::string_view records = std::string_view(buf_).substr(kBatchHeaderSize);
  if (options_.compression != Compression::kNone) {
    GANNET_ASSIGN_OR_RETURN(compressed, compress(options_.compression, records));
    records = compressed;
  }
  const size_t total = kBatchHeaderSize + records.size();
  if (total - kLogOverhead > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return make_error(Errc::kRecordTooLarge,
                      "batch of " + std::to_string(total) + " bytes does not fit the int32 length field");
  }
  std::string out(kBatchHeaderSize, '\0');
  out.reserve(total);
  out.append(records);
  finish(reinterpret_cast<uint8_t*>(out.data()), total);
  return out;
}

Result<std::string> RecordBatchBuilder::take() {
  if (options_.compression != Compression::kNone || count_ == 0 ||
      buf_.size() - kLogOverhead > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    auto built = build();
    if (built.ok()) *this = RecordBatchBuilder(options_);
    return built;
  }
  finish(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size());
  std::string out = std::move(buf_);
  *this = RecordBatchBuilder(options_);
  return out;
}

}  // namespace gannet::storage
