#include "storage/producer_state.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "common/byte_order.h"
#include "common/crc32c.h"
#include "storage/record_batch.h"

namespace gannet::storage {

namespace {

bool in_sequence(int32_t last, int32_t next) {
  return (last == std::numeric_limits<int32_t>::max() && next == 0) ||
         (last < std::numeric_limits<int32_t>::max() && next == last + 1);
}

constexpr char kMagic[4] = {'G', 'N', 'P', 'S'};
constexpr uint16_t kVersion = 1;
// magic, version, offset, count | entries | crc
constexpr size_t kFileHeader = 4 + 2 + 8 + 4;
constexpr size_t kEntryHeader = 8 + 2 + 8 + 1;
constexpr size_t kBatchBytes = 4 + 4 + 8 + 8;

void put16(std::string* out, uint16_t v) {
  uint8_t b[2];
  store_be16(b, v);
  out->append(reinterpret_cast<const char*>(b), 2);
}
void put32(std::string* out, uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  out->append(reinterpret_cast<const char*>(b), 4);
}
void put64(std::string* out, uint64_t v) {
  uint8_t b[8];
  store_be64(b, v);
  out->append(reinterpret_cast<const char*>(b), 8);
}

}  // namespace

int32_t last_sequence(int32_t first, int32_t last_offset_delta) {
  const int64_t last = int64_t{first} + last_offset_delta;
  return static_cast<int32_t>(last > std::numeric_limits<int32_t>::max()
                                  ? last - std::numeric_limits<int32_t>::max() - 1
                                  : last);
}

ProducerBatchInfo ProducerBatchInfo::of(const BatchInfo& b) {
  ProducerBatchInfo p;
  p.producer_id = b.producer_id;
  p.producer_epoch = b.producer_epoch;
  p.base_sequence = b.base_sequence;
  p.last_offset_delta = static_cast<int32_t>(b.last_offset - b.base_offset);
  p.base_offset = b.base_offset;
  p.last_offset = b.last_offset;
  p.transactional = (b.attributes & kTransactionalBit) != 0;
  p.control = (b.attributes & kControlBit) != 0;
  return p;
}

void ProducerStateTable::apply(ProducerEntry& e, const ProducerBatchInfo& b, int64_t now_ms) const {
  if (b.producer_epoch != e.epoch) {
    e.epoch = b.producer_epoch;
    e.batches.clear();
  }
  if (e.batches.size() == ProducerEntry::kMaxBatches) e.batches.erase(e.batches.begin());
  e.batches.push_back({b.base_sequence, last_sequence(b.base_sequence, b.last_offset_delta), b.base_offset,
                       b.last_offset});
  e.last_active_ms = std::max(e.last_active_ms, now_ms);
}

Result<std::optional<ProducerBatch>> ProducerStateTable::check(const ProducerBatchInfo& b, int64_t now_ms,
                                                               Pending* pending) const {
  if (b.transactional || b.control) {
    return make_error(Errc::kTransactionalBatch,
                      "transactional and control batches are refused: Gannet has no transactions yet");
  }
  if (b.producer_id < 0) return std::optional<ProducerBatch>();
  // Only for error messages: not built for a batch that is accepted.
  auto who = [&] { return "producer " + std::to_string(b.producer_id); };
  if (b.producer_epoch < 0 || b.base_sequence < 0) {
    return make_error(Errc::kInvalidRecord, who() + ": an idempotent batch needs an epoch and a sequence (got " +
                                                std::to_string(b.producer_epoch) + ", " +
                                                std::to_string(b.base_sequence) + ")");
  }
  // The producer as this request left it so far, else as the table has it.
  ProducerEntry* e;
  if (auto p = pending->find(b.producer_id); p != pending->end()) {
    e = &p->second;
  } else {
    auto it = entries_.find(b.producer_id);
    e = &(*pending)[b.producer_id];
    if (it != entries_.end()) *e = it->second;
  }
  const bool known = e->epoch >= 0;
  if (known) {
    if (b.producer_epoch < e->epoch) {
      return make_error(Errc::kInvalidProducerEpoch, who() + ": epoch " + std::to_string(b.producer_epoch) +
                                                         " is older than its current epoch " +
                                                         std::to_string(e->epoch));
    }
    const int32_t last = last_sequence(b.base_sequence, b.last_offset_delta);
    if (b.producer_epoch == e->epoch) {
      for (const ProducerBatch& old : e->batches) {
        if (old.first_seq == b.base_sequence && old.last_seq == last) return std::optional<ProducerBatch>(old);
      }
      if (!e->batches.empty() && !in_sequence(e->batches.back().last_seq, b.base_sequence)) {
        return make_error(Errc::kOutOfOrderSequence,
                          who() + " epoch " + std::to_string(b.producer_epoch) + ": sequence " +
                              std::to_string(b.base_sequence) + " does not follow " +
                              std::to_string(e->batches.back().last_seq));
      }
    } else if (b.base_sequence != 0) {
      return make_error(Errc::kOutOfOrderSequence, who() + ": the first batch of new epoch " +
                                                       std::to_string(b.producer_epoch) + " has sequence " +
                                                       std::to_string(b.base_sequence) + ", not 0");
    }
  }
  apply(*e, b, now_ms);
  return std::optional<ProducerBatch>();
}

void ProducerStateTable::commit(Pending&& pending) {
  for (auto& [pid, e] : pending) {
    if (e.epoch < 0) continue;  // a duplicate's lookup of a producer never seen: nothing changed
    const bool fresh = !entries_.count(pid);
    entries_[pid] = std::move(e);
    if (fresh) evict_if_full();
  }
}

void ProducerStateTable::update(const ProducerBatchInfo& b, int64_t now_ms) {
  if (b.producer_id < 0 || b.producer_epoch < 0 || b.base_sequence < 0 || b.control) return;
  auto [it, fresh] = entries_.try_emplace(b.producer_id);
  apply(it->second, b, now_ms);
  if (fresh) evict_if_full();
}

void ProducerStateTable::evict_if_full() {
  while (entries_.size() > max_producers_ && !entries_.empty()) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.last_active_ms < oldest->second.last_active_ms) oldest = it;
    }
    entries_.erase(oldest);
  }
}

void ProducerStateTable::set_max_producers(size_t n) {
  max_producers_ = std::max<size_t>(1, n);
  evict_if_full();
}

size_t ProducerStateTable::expire(int64_t now_ms, int64_t expiration_ms) {
  return std::erase_if(entries_, [&](const auto& kv) { return now_ms - kv.second.last_active_ms >= expiration_ms; });
}

const ProducerEntry* ProducerStateTable::find(int64_t producer_id) const {
  auto it = entries_.find(producer_id);
  return it == entries_.end() ? nullptr : &it->second;
}

std::string ProducerStateTable::encode_snapshot(int64_t offset) const {
  std::string out(kMagic, 4);
  put16(&out, kVersion);
  put64(&out, static_cast<uint64_t>(offset));
  put32(&out, static_cast<uint32_t>(entries_.size()));
  // By producer id, so equal states give equal files.
  std::vector<int64_t> ids;
  ids.reserve(entries_.size());
  for (const auto& [pid, e] : entries_) ids.push_back(pid);
  std::sort(ids.begin(), ids.end());
  for (int64_t pid : ids) {
    const ProducerEntry& e = entries_.at(pid);
    put64(&out, static_cast<uint64_t>(pid));
    put16(&out, static_cast<uint16_t>(e.epoch));
    put64(&out, static_cast<uint64_t>(e.last_active_ms));
    out.push_back(static_cast<char>(e.batches.size()));
    for (const ProducerBatch& b : e.batches) {
      put32(&out, static_cast<uint32_t>(b.first_seq));
      put32(&out, static_cast<uint32_t>(b.last_seq));
      put64(&out, static_cast<uint64_t>(b.first_offset));
      put64(&out, static_cast<uint64_t>(b.last_offset));
    }
  }
  put32(&out, crc32c::value(out.data(), out.size()));
  return out;
}

Result<int64_t> ProducerStateTable::load_snapshot(const std::string& bytes) {
  auto bad = [](const std::string& why) { return make_error(Errc::kCorruptMessage, "producer snapshot: " + why); };
  if (bytes.size() < kFileHeader + 4) return bad("too short");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t body = bytes.size() - 4;
  if (load_be32(p + body) != crc32c::value(p, body)) return bad("CRC mismatch");
  if (std::string_view(bytes.data(), 4) != std::string_view(kMagic, 4)) return bad("bad magic");
  if (load_be16(p + 4) != kVersion) return bad("unknown version " + std::to_string(load_be16(p + 4)));
  const int64_t offset = static_cast<int64_t>(load_be64(p + 6));
  const uint32_t count = load_be32(p + 14);
  std::unordered_map<int64_t, ProducerEntry> entries;
  size_t pos = kFileHeader;
  for (uint32_t i = 0; i < count; ++i) {
    if (pos + kEntryHeader > body) return bad("truncated entry");
    const int64_t pid = static_cast<int64_t>(load_be64(p + pos));
    ProducerEntry e;
    e.epoch = static_cast<int16_t>(load_be16(p + pos + 8));
    e.last_active_ms = static_cast<int64_t>(load_be64(p + pos + 10));
    const size_t n = p[pos + 18];
    pos += kEntryHeader;
    if (n > ProducerEntry::kMaxBatches || pos + n * kBatchBytes > body) return bad("bad batch count");
    for (size_t j = 0; j < n; ++j, pos += kBatchBytes) {
      e.batches.push_back({static_cast<int32_t>(load_be32(p + pos)), static_cast<int32_t>(load_be32(p + pos + 4)),
                           static_cast<int64_t>(load_be64(p + pos + 8)),
                           static_cast<int64_t>(load_be64(p + pos + 16))});
    }
    entries[pid] = std::move(e);
  }
  if (pos != body) return bad("trailing bytes");
  entries_ = std::move(entries);
  evict_if_full();
  return offset;
}

std::string ProducerStateTable::snapshot_name(int64_t offset) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld.snapshot", static_cast<long long>(offset));
  return buf;
}

std::optional<int64_t> ProducerStateTable::parse_snapshot_name(const std::string& name) {
  static const std::string kSuffix = ".snapshot";
  if (name.size() != 20 + kSuffix.size() || name.compare(20, kSuffix.size(), kSuffix) != 0) return std::nullopt;
  int64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    if (v > (std::numeric_limits<int64_t>::max() - (name[i] - '0')) / 10) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

}  // namespace gannet::storage
