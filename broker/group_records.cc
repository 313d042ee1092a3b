#include "broker/group_records.h"

#include "common/byte_order.h"

namespace gannet::broker {

namespace {

class Writer {
 public:
  void i16(int16_t v) {
    uint8_t b[2];
    store_be16(b, static_cast<uint16_t>(v));
    out_.append(reinterpret_cast<char*>(b), 2);
  }
  void i32(int32_t v) {
    uint8_t b[4];
    store_be32(b, static_cast<uint32_t>(v));
    out_.append(reinterpret_cast<char*>(b), 4);
  }
  void i64(int64_t v) {
    uint8_t b[8];
    store_be64(b, static_cast<uint64_t>(v));
    out_.append(reinterpret_cast<char*>(b), 8);
  }
  // Strings longer than int16 allows are cut: group ids, topic names and metadata are all
  // bounded far below that by the coordinator's checks.
  void str(std::string_view s) {
    const size_t n = std::min<size_t>(s.size(), 32767);
    i16(static_cast<int16_t>(n));
    out_.append(s.data(), n);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool i16(int16_t* v) {
    if (in_.size() < 2) return false;
    *v = static_cast<int16_t>(load_be16(reinterpret_cast<const uint8_t*>(in_.data())));
    in_.remove_prefix(2);
    return true;
  }
  bool i32(int32_t* v) {
    if (in_.size() < 4) return false;
    *v = static_cast<int32_t>(load_be32(reinterpret_cast<const uint8_t*>(in_.data())));
    in_.remove_prefix(4);
    return true;
  }
  bool i64(int64_t* v) {
    if (in_.size() < 8) return false;
    *v = static_cast<int64_t>(load_be64(reinterpret_cast<const uint8_t*>(in_.data())));
    in_.remove_prefix(8);
    return true;
  }
  bool str(std::string* s) {
    int16_t n = 0;
    if (!i16(&n) || n < 0 || in_.size() < static_cast<size_t>(n)) return false;
    s->assign(in_.data(), static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

}  // namespace

std::string encode_offset_key(const OffsetKey& k) {
  Writer w;
  w.i16(kOffsetKeyVersion);
  w.str(k.group);
  w.str(k.topic);
  w.i32(k.partition);
  return w.take();
}

std::string encode_group_key(const GroupKey& k) {
  Writer w;
  w.i16(kGroupKeyVersion);
  w.str(k.group);
  return w.take();
}

std::string encode_offset_value(const OffsetValue& v) {
  Writer w;
  w.i16(kOffsetValueVersion);
  w.i64(v.offset);
  w.i32(v.leader_epoch);
  w.str(v.metadata);
  w.i64(v.commit_timestamp_ms);
  return w.take();
}

std::string encode_group_value(const broker::v1::GroupMetadataValue& v) {
  Writer w;
  w.i16(kGroupValueVersion);
  std::string out = w.take();
  v.AppendToString(&out);
  return out;
}

std::optional<std::variant<OffsetKey, GroupKey>> decode_key(std::string_view key) {
  Reader r(key);
  int16_t version = 0;
  if (!r.i16(&version)) return std::nullopt;
  if (version == 0 || version == 1) {
    OffsetKey k;
    if (!r.str(&k.group) || !r.str(&k.topic) || !r.i32(&k.partition)) return std::nullopt;
    return k;
  }
  if (version == kGroupKeyVersion) {
    GroupKey k;
    if (!r.str(&k.group)) return std::nullopt;
    return k;
  }
  return std::nullopt;
}

std::optional<OffsetValue> decode_offset_value(std::string_view value) {
  Reader r(value);
  int16_t version = 0;
  if (!r.i16(&version) || version < 0 || version > 3) return std::nullopt;
  OffsetValue v;
  if (!r.i64(&v.offset)) return std::nullopt;
  if (version >= 3 && !r.i32(&v.leader_epoch)) return std::nullopt;
  if (!r.str(&v.metadata) || !r.i64(&v.commit_timestamp_ms)) return std::nullopt;
  if (version == 1) {
    int64_t expire = 0;  // v1's expire timestamp: not used
    if (!r.i64(&expire)) return std::nullopt;
  }
  return v;
}

std::optional<broker::v1::GroupMetadataValue> decode_group_value(std::string_view value) {
  Reader r(value);
  int16_t version = 0;
  if (!r.i16(&version) || version != kGroupValueVersion) return std::nullopt;
  broker::v1::GroupMetadataValue v;
  if (!v.ParseFromArray(r.rest().data(), static_cast<int>(r.rest().size()))) return std::nullopt;
  return v;
}

}  // namespace gannet::broker
