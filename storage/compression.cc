// Codecs for the records section of a batch. Every decompressor here treats its input as hostile:
// it never reads outside `in`, never writes more than `max_out` bytes (allocating at most
// max_out + 1), and every loop either makes progress or returns an error, so garbage cannot crash
// or hang it.
#include "storage/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/byte_order.h"

namespace gannet::storage {
namespace {

// A batch's length field is an int32, so no records section can exceed this. Bounding inputs here
// also keeps sizes within zlib's 32-bit uInt.
constexpr size_t kMaxInput = static_cast<size_t>(std::numeric_limits<int32_t>::max());

// First output allocation of a streaming decompressor; doubled as needed up to the limit.
constexpr size_t kInitialOutput = 16 << 10;

Error corrupt(Compression codec, const std::string& what) {
  return make_error(Errc::kCorruptMessage, std::string(compression_name(codec)) + ": " + what);
}

Error unsupported(Compression codec) {
  return make_error(Errc::kUnsupportedCompression,
                    "compression codec " + std::to_string(static_cast<int>(codec)) +
                        " is not supported (expected 0..4: none, gzip, snappy, lz4, zstd)");
}

Error too_large_output(Compression codec, size_t max_out) {
  return corrupt(codec, "decompressed data exceeds the limit of " + std::to_string(max_out) + " bytes");
}

// Output buffer of a streaming decompressor. Invariants: used() <= buf.size() <= limit, where
// limit = max_out + 1; so a decoder that fills the buffer to the limit has proven the output is
// larger than max_out without us ever allocating more than max_out + 1 bytes.
class BoundedOutput {
 public:
  BoundedOutput(size_t max_out, size_t input_size)
      : max_out_(max_out),
        limit_(max_out == std::numeric_limits<size_t>::max() ? max_out : max_out + 1),
        hint_(std::max(kInitialOutput, std::min(input_size, kMaxInput) * 4)) {}

  // Makes room for at least one more byte. False when the buffer is already at the limit.
  bool reserve_room() {
    if (used_ < buf_.size()) return true;
    if (buf_.size() >= limit_) return false;
    size_t next = std::max(buf_.size() * 2, hint_);
    buf_.resize(std::min(next, limit_));
    return true;
  }
  uint8_t* cursor() { return reinterpret_cast<uint8_t*>(buf_.data()) + used_; }
  size_t room() const { return buf_.size() - used_; }
  void advance(size_t n) { used_ += n; }
  size_t used() const { return used_; }
  bool exceeded() const { return used_ > max_out_; }

  std::string finish() && {
    buf_.resize(used_);
    return std::move(buf_);
  }

 private:
  std::string buf_;
  size_t used_ = 0;
  size_t max_out_;
  size_t limit_;
  size_t hint_;
};

// ---- gzip (zlib) -------------------------------------------------------------------------------

constexpr int kGzipWindowBits = 15 + 16;       // deflate window 2^15, gzip wrapper
constexpr int kGzipOrZlibWindowBits = 15 + 32;  // inflate: detect gzip or zlib wrapper

Result<std::string> gzip_compress(std::string_view in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return corrupt(Compression::kGzip, "deflateInit2 failed");
  }
  // deflateBound() is an upper bound for a single Z_FINISH call, wrapper included.
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return corrupt(Compression::kGzip, "deflate failed: code " + std::to_string(rc));
  out.resize(produced);
  return out;
}

bool starts_gzip_member(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

Result<std::string> gzip_decompress(std::string_view in, size_t max_out) {
  constexpr Compression kCodec = Compression::kGzip;
  z_stream zs{};
  if (inflateInit2(&zs, kGzipOrZlibWindowBits) != Z_OK) return corrupt(kCodec, "inflateInit2 failed");
  struct Guard {
    z_stream* zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};

  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());  // in.size() <= kMaxInput, checked by the caller
  BoundedOutput out(max_out, in.size());
  while (true) {
    if (!out.reserve_room()) return too_large_output(kCodec, max_out);
    zs.next_out = out.cursor();
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.room(), UINT_MAX));
    const uInt room_before = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.advance(room_before - zs.avail_out);
    if (out.exceeded()) return too_large_output(kCodec, max_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Concatenated members decode as one stream (as gunzip does); anything else is junk.
      if (!starts_gzip_member(zs.next_in, zs.avail_in)) {
        return corrupt(kCodec, std::to_string(zs.avail_in) + " trailing bytes after the gzip stream");
      }
      if (inflateReset(&zs) != Z_OK) return corrupt(kCodec, "inflateReset failed");
      continue;
    }
    if (rc == Z_OK) continue;  // progress was made
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;  // output full: grow and retry
    if (rc == Z_BUF_ERROR) return corrupt(kCodec, "truncated stream (input ended before the gzip trailer)");
    return corrupt(kCodec, std::string("inflate failed: ") + (zs.msg ? zs.msg : std::to_string(rc)));
  }
  return std::move(out).finish();
}

// ---- snappy ------------------------------------------------------------------------------------

// The Java client's snappy-java "xerial" stream: this 8-byte magic, int32 version, int32 minimum
// compatible version, then blocks of [int32 big-endian compressed length][raw snappy block].
constexpr char kXerialMagic[8] = {'\x82', 'S', 'N', 'A', 'P', 'P', 'Y', '\0'};
constexpr size_t kXerialHeaderSize = 16;

bool is_xerial(std::string_view in) {
  return in.size() >= sizeof(kXerialMagic) && std::memcmp(in.data(), kXerialMagic, sizeof(kXerialMagic)) == 0;
}

Result<std::string> snappy_compress(std::string_view in) {
  std::string out(snappy::MaxCompressedLength(in.size()), '\0');
  size_t n = 0;
  snappy::RawCompress(in.data(), in.size(), out.data(), &n);
  out.resize(n);
  return out;
}

// Appends the raw snappy block `in` to *out, failing if *out would grow past max_out.
Status snappy_raw_append(std::string_view in, size_t max_out, std::string* out) {
  constexpr Compression kCodec = Compression::kSnappy;
  size_t len = 0;
  if (!snappy::GetUncompressedLength(in.data(), in.size(), &len)) {
    return corrupt(kCodec, "malformed uncompressed-length preamble");
  }
  if (len > max_out - out->size()) return too_large_output(kCodec, max_out);  // out->size() <= max_out
  const size_t at = out->size();
  out->resize(at + len);
  if (!snappy::RawUncompress(in.data(), in.size(), out->data() + at)) {
    return corrupt(kCodec, "malformed compressed block");
  }
  return {};
}

Result<std::string> xerial_decompress(std::string_view in, size_t max_out) {
  constexpr Compression kCodec = Compression::kSnappy;
  if (in.size() < kXerialHeaderSize) {
    return corrupt(kCodec, "truncated xerial header (" + std::to_string(in.size()) + " of 16 bytes)");
  }
  std::string out;
  size_t pos = kXerialHeaderSize;
  while (pos < in.size()) {
    if (in.size() - pos < 4) return corrupt(kCodec, "truncated xerial block length at byte " + std::to_string(pos));
    const size_t block = load_be32(reinterpret_cast<const uint8_t*>(in.data()) + pos);
    pos += 4;
    if (block > in.size() - pos) {
      return corrupt(kCodec, "xerial block of " + std::to_string(block) + " bytes exceeds the " +
                                 std::to_string(in.size() - pos) + " bytes left");
    }
    GANNET_RETURN_IF_ERROR(snappy_raw_append(in.substr(pos, block), max_out, &out));
    pos += block;
  }
  return out;
}

Result<std::string> snappy_decompress(std::string_view in, size_t max_out) {
  if (is_xerial(in)) return xerial_decompress(in, max_out);
  std::string out;
  GANNET_RETURN_IF_ERROR(snappy_raw_append(in, max_out, &out));
  return out;
}

// ---- lz4 (frame format) ------------------------------------------------------------------------

Result<std::string> lz4_compress(std::string_view in) {
  // What Kafka's Java client writes and can read back: independent 64 KB blocks, no content size.
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  std::string out(LZ4F_compressFrameBound(in.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
  if (LZ4F_isError(n)) return corrupt(Compression::kLz4, std::string("compression failed: ") + LZ4F_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::string> lz4_decompress(std::string_view in, size_t max_out) {
  constexpr Compression kCodec = Compression::kLz4;
  LZ4F_dctx* dctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
    return corrupt(kCodec, "cannot create a decompression context");
  }
  struct Guard {
    LZ4F_dctx* d;
    ~Guard() { LZ4F_freeDecompressionContext(d); }
  } guard{dctx};

  // With null options (stableDst = 0) lz4frame keeps its own copy of the history, so the output
  // buffer may move between calls.
  BoundedOutput out(max_out, in.size());
  size_t consumed = 0;
  while (true) {
    if (!out.reserve_room()) return too_large_output(kCodec, max_out);
    size_t dst_size = out.room();
    size_t src_size = in.size() - consumed;
    size_t hint = LZ4F_decompress(dctx, out.cursor(), &dst_size, in.data() + consumed, &src_size, nullptr);
    if (LZ4F_isError(hint)) return corrupt(kCodec, LZ4F_getErrorName(hint));
    consumed += src_size;
    out.advance(dst_size);
    if (out.exceeded()) return too_large_output(kCodec, max_out);
    if (hint == 0 && consumed == in.size()) break;  // frame complete, input used up
    if (hint == 0) continue;                        // another frame follows
    if (src_size == 0 && dst_size == 0) {           // no progress despite room for output
      if (consumed == in.size()) return corrupt(kCodec, "truncated frame");
      return corrupt(kCodec, "decoder stalled at byte " + std::to_string(consumed));
    }
  }
  return std::move(out).finish();
}

// ---- zstd --------------------------------------------------------------------------------------

constexpr int kZstdLevel = 3;

Result<std::string> zstd_compress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), kZstdLevel);
  if (ZSTD_isError(n)) return corrupt(Compression::kZstd, std::string("compression failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

// Streaming, so frames without a content size (as some producers write) decode too. The decoder's
// default window limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT) bounds its own memory.
Result<std::string> zstd_decompress(std::string_view in, size_t max_out) {
  constexpr Compression kCodec = Compression::kZstd;
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (dctx == nullptr) return corrupt(kCodec, "cannot create a decompression context");
  struct Guard {
    ZSTD_DCtx* d;
    ~Guard() { ZSTD_freeDCtx(d); }
  } guard{dctx};

  BoundedOutput out(max_out, in.size());
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  while (true) {
    if (!out.reserve_room()) return too_large_output(kCodec, max_out);
    ZSTD_outBuffer output{out.cursor(), out.room(), 0};
    const size_t in_before = input.pos;
    size_t hint = ZSTD_decompressStream(dctx, &output, &input);
    if (ZSTD_isError(hint)) return corrupt(kCodec, ZSTD_getErrorName(hint));
    out.advance(output.pos);
    if (out.exceeded()) return too_large_output(kCodec, max_out);
    if (hint == 0 && input.pos == input.size) break;  // frame complete and flushed, input used up
    if (hint == 0) continue;                          // another frame follows
    if (input.pos == in_before && output.pos == 0) {  // no progress despite room for output
      if (input.pos == input.size) return corrupt(kCodec, "truncated frame");
      return corrupt(kCodec, "decoder stalled at byte " + std::to_string(input.pos));
    }
  }
  return std::move(out).finish();
}

bool known_codec(Compression c) { return static_cast<uint8_t>(c) <= static_cast<uint8_t>(Compression::kZstd); }

}  // namespace

Result<std::string> compress(Compression codec, std::string_view in) {
  if (!known_codec(codec)) return unsupported(codec);
  if (in.size() > kMaxInput) {
    return make_error(Errc::kRecordTooLarge, std::string(compression_name(codec)) + ": input of " +
                                                 std::to_string(in.size()) + " bytes exceeds the " +
                                                 std::to_string(kMaxInput) + "-byte batch limit");
  }
  switch (codec) {
    case Compression::kNone: return std::string(in);
    case Compression::kGzip: return gzip_compress(in);
    case Compression::kSnappy: return snappy_compress(in);
    case Compression::kLz4: return lz4_compress(in);
    case Compression::kZstd: return zstd_compress(in);
  }
  return unsupported(codec);
}

Result<std::string> decompress(Compression codec, std::string_view in, size_t max_out) {
  if (!known_codec(codec)) return unsupported(codec);
  if (in.size() > kMaxInput) {
    return corrupt(codec, "compressed input of " + std::to_string(in.size()) + " bytes exceeds the " +
                              std::to_string(kMaxInput) + "-byte batch limit");
  }
  switch (codec) {
    case Compression::kNone:
      if (in.size() > max_out) return too_large_output(codec, max_out);
      return std::string(in);
    case Compression::kGzip: return gzip_decompress(in, max_out);
    case Compression::kSnappy: return snappy_decompress(in, max_out);
    case Compression::kLz4: return lz4_decompress(in, max_out);
    case Compression::kZstd: return zstd_decompress(in, max_out);
  }
  return unsupported(codec);
}

}  // namespace gannet::storage
