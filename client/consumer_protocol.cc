#include "client/consumer_protocol.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

namespace gannet::client {
namespace {

// A caller bug (see the header's preconditions), not bad input: stop loudly rather than write
// bytes every reader would misparse.
[[noreturn]] void precondition_failed(const char* what) {
  std::fprintf(stderr, "consumer_protocol: precondition failed: %s\n", what);
  std::abort();
}

class Writer {
 public:
  void i16(int16_t v) { be(static_cast<uint16_t>(v), 2); }
  void i32(int32_t v) { be(static_cast<uint32_t>(v), 4); }
  void string(std::string_view s) {
    if (s.size() > static_cast<size_t>(std::numeric_limits<int16_t>::max())) precondition_failed("string over 32767 bytes");
    i16(static_cast<int16_t>(s.size()));
    out_.append(s);
  }
  void nullable_string(const std::optional<std::string>& s) {
    if (!s) return i16(-1);
    string(*s);
  }
  void nullable_bytes(const std::optional<std::string>& b) {
    if (!b) return i32(-1);
    if (b->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) precondition_failed("bytes over 2^31-1");
    i32(static_cast<int32_t>(b->size()));
    out_.append(*b);
  }
  void count(size_t n) {
    if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) precondition_failed("array over 2^31-1 items");
    i32(static_cast<int32_t>(n));
  }
  // The [TopicPartition] arrays: one entry per topic, in order of the topic's first appearance.
  void topic_partitions(const std::vector<TopicPartition>& tps) {
    std::vector<std::pair<std::string_view, std::vector<int32_t>>> grouped;
    for (const TopicPartition& tp : tps) {
      if (tp.partition < 0) precondition_failed("negative partition id");
      auto it = grouped.begin();
      while (it != grouped.end() && it->first != tp.topic) ++it;  // few topics per member
      if (it == grouped.end()) it = grouped.insert(grouped.end(), {tp.topic, {}});
      it->second.push_back(tp.partition);
    }
    count(grouped.size());
    for (const auto& [topic, partitions] : grouped) {
      string(topic);
      count(partitions.size());
      for (int32_t p : partitions) i32(p);
    }
  }
  std::string take() { return std::move(out_); }

 private:
  void be(uint32_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Reads untrusted bytes: every read checks the bytes left first, and a failed read poisons the
// reader (later reads fail too), so callers check ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }

  int16_t i16() { return static_cast<int16_t>(be(2)); }
  int32_t i32() { return static_cast<int32_t>(be(4)); }
  std::string string() {
    const int16_t n = i16();
    if (n < 0) return fail<std::string>();  // null where the schema allows none
    return std::string(take(static_cast<size_t>(n)));
  }
  std::optional<std::string> nullable_string() {
    const int16_t n = i16();
    if (!ok_ || n == -1) return std::nullopt;
    if (n < 0) return fail<std::optional<std::string>>();
    return std::string(take(static_cast<size_t>(n)));
  }
  std::optional<std::string> nullable_bytes() {
    const int32_t n = i32();
    if (!ok_ || n == -1) return std::nullopt;
    if (n < 0) return fail<std::optional<std::string>>();
    return std::string(take(static_cast<size_t>(n)));
  }
  // An array count, checked against the bytes left (each item takes at least `min_item_bytes`)
  // so a forged count cannot make us reserve or loop for billions of items.
  size_t count(size_t min_item_bytes) {
    const int32_t n = i32();
    if (!ok_) return 0;
    if (n < 0 || static_cast<size_t>(n) > (in_.size() - pos_) / min_item_bytes) return fail<size_t>();
    return static_cast<size_t>(n);
  }
  std::vector<TopicPartition> topic_partitions() {
    std::vector<TopicPartition> out;
    const size_t topics = count(2 + 4);  // an empty topic name and an empty partition list
    for (size_t i = 0; i < topics && ok_; ++i) {
      std::string topic = string();
      const size_t partitions = count(4);
      for (size_t j = 0; j < partitions && ok_; ++j) {
        const int32_t p = i32();
        if (p < 0) return fail<std::vector<TopicPartition>>();
        out.push_back({topic, p});
      }
    }
    return out;
  }

 private:
  template <typename T>
  T fail() {
    ok_ = false;
    return T{};
  }
  uint32_t be(int bytes) {
    const std::string_view b = take(static_cast<size_t>(bytes));
    uint32_t v = 0;
    for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }
  std::string_view take(size_t n) {
    if (!ok_ || n > in_.size() - pos_) return fail<std::string_view>();
    const std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

int16_t writable_version(int16_t version, int16_t highest) {
  if (version < 0) precondition_failed("negative version");
  return version > highest ? highest : version;
}

}  // namespace

std::string encode_subscription(const Subscription& s, int16_t version) {
  version = writable_version(version, kSubscriptionMaxVersion);
  Writer w;
  w.i16(version);
  w.count(s.topics.size());
  for (const std::string& t : s.topics) w.string(t);
  w.nullable_bytes(s.user_data);
  if (version >= 1) w.topic_partitions(s.owned_partitions);
  if (version >= 2) w.i32(s.generation_id);
  if (version >= 3) w.nullable_string(s.rack_id);
  return w.take();
}

std::string encode_assignment(const MemberAssignment& a, int16_t version) {
  version = writable_version(version, kAssignmentMaxVersion);
  Writer w;
  w.i16(version);
  w.topic_partitions(a.partitions);
  w.nullable_bytes(a.user_data);
  return w.take();
}

std::optional<Subscription> decode_subscription(std::string_view bytes) {
  Reader r(bytes);
  const int16_t version = r.i16();
  if (!r.ok() || version < 0) return std::nullopt;
  Subscription s;
  const size_t topics = r.count(2);
  for (size_t i = 0; i < topics && r.ok(); ++i) s.topics.push_back(r.string());
  s.user_data = r.nullable_bytes();
  if (version >= 1) s.owned_partitions = r.topic_partitions();
  if (version >= 2) s.generation_id = r.i32();
  if (version >= 3) s.rack_id = r.nullable_string();
  if (!r.ok()) return std::nullopt;
  // A newer version appends fields we cannot read; a known one must have nothing left over.
  if (version <= kSubscriptionMaxVersion && !r.at_end()) return std::nullopt;
  return s;
}

std::optional<MemberAssignment> decode_assignment(std::string_view bytes) {
  Reader r(bytes);
  const int16_t version = r.i16();
  if (!r.ok() || version < 0) return std::nullopt;
  MemberAssignment a;
  a.partitions = r.topic_partitions();
  a.user_data = r.nullable_bytes();
  if (!r.ok()) return std::nullopt;
  if (version <= kAssignmentMaxVersion && !r.at_end()) return std::nullopt;
  return a;
}

}  // namespace gannet::client
