#include "raft/raft_store.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "storage/record_batch.h"

namespace gannet::raft {

using storage::Errc;
using storage::make_error;

storage::Result<std::unique_ptr<RaftStore>> RaftStore::open(const std::string& dir, int64_t segment_bytes) {
  std::unique_ptr<RaftStore> s(new RaftStore(dir));
  GANNET_RETURN_IF_ERROR(storage::posix_file_system()->create_dirs(dir));
  storage::Log::Options o;
  o.config.retention_ms = -1;
  o.config.segment_bytes = segment_bytes;
  o.config.segment_preallocate_bytes = std::min<int64_t>(segment_bytes, 1 << 20);
  o.config.max_message_bytes = 9 << 20;  // an entry of max_record_bytes (8 MiB) plus its batch framing
  o.track_producers = false;
  GANNET_ASSIGN_OR_RETURN(s->log_, storage::Log::open(storage::join_path(dir, "__cluster_metadata-0"), o));
  return s;
}

storage::Result<std::string> RaftStore::directory_id() {
  auto* fs = storage::posix_file_system();
  const std::string path = storage::join_path(dir_, "directory-id");
  if (fs->exists(path)) {
    GANNET_ASSIGN_OR_RETURN(std::string text, storage::read_file(fs, path));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.size() != 32 || text.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return make_error(Errc::kCorruptMessage, path + ": malformed directory id");
    }
    return text;
  }
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  char id[33];
  std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  GANNET_RETURN_IF_ERROR(storage::write_file_atomic(fs, path, std::string(id) + "\n"));
  return std::string(id);
}

storage::Result<RaftCore::Restored> RaftStore::load() {
  RaftCore::Restored r;
  auto* fs = storage::posix_file_system();
  const std::string hs_path = storage::join_path(dir_, "quorum-state");
  if (fs->exists(hs_path)) {
    GANNET_ASSIGN_OR_RETURN(std::string text, storage::read_file(fs, hs_path));
    std::istringstream in(text);
    int version = -1;
    if (!(in >> version >> r.hard_state.epoch >> r.hard_state.voted_for >> r.hard_state.leader) ||
        version != 0) {
      return make_error(Errc::kCorruptMessage, hs_path + ": malformed quorum state");
    }
  }
  const std::string snap_path = storage::join_path(dir_, "snapshot");
  if (fs->exists(snap_path)) {
    GANNET_ASSIGN_OR_RETURN(std::string text, storage::read_file(fs, snap_path));
    const size_t nl = text.find('\n');
    std::istringstream in(text.substr(0, nl));
    Snapshot s;
    int version = -1;
    if (nl == std::string::npos || !(in >> version >> s.id.end_offset >> s.id.epoch) || version != 0) {
      return make_error(Errc::kCorruptMessage, snap_path + ": malformed snapshot");
    }
    s.data = text.substr(nl + 1);
    r.snapshot = std::move(s);
  }
  // The log: every batch is one entry. Entries below the snapshot are skipped.
  const int64_t from = std::max(log_->log_start_offset(), r.snapshot ? r.snapshot->id.end_offset : 0);
  int64_t offset = from;
  while (offset < log_->log_end_offset()) {
    GANNET_ASSIGN_OR_RETURN(storage::ReadResult rd, log_->read(offset, 4 << 20));
    std::string bytes;
    GANNET_RETURN_IF_ERROR(rd.copy_to(&bytes));
    size_t pos = 0;
    while (pos < bytes.size()) {
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
      storage::RecordBatchView v(p, bytes.size() - pos);
      const size_t size = static_cast<size_t>(v.length()) + storage::kLogOverhead;
      storage::RecordBatchView batch(p, size);
      GANNET_ASSIGN_OR_RETURN(storage::RecordIterator it, storage::RecordIterator::create(batch));
      storage::Record rec;
      GANNET_ASSIGN_OR_RETURN(bool any, it.next(&rec));
      if (!any) return make_error(Errc::kCorruptMessage, "empty quorum log batch");
      if (batch.base_offset() >= offset) {
        r.log.push_back(Entry{batch.base_offset(), batch.leader_epoch(), batch.is_control(),
                              std::string(rec.value.value_or(""))});
      }
      offset = batch.next_offset();
      pos += size;
    }
  }
  if (r.snapshot && !r.log.empty() && r.log.front().offset != r.snapshot->id.end_offset) {
    r.log.clear();  // the log does not continue the snapshot: fetch from the leader instead
  }
  return r;
}

storage::Status RaftStore::save_hard_state(const HardState& hs) {
  return storage::write_file_atomic(storage::posix_file_system(),
                                    storage::join_path(dir_, "quorum-state"),
                                    "0 " + std::to_string(hs.epoch) + " " +
                                        std::to_string(hs.voted_for) + " " +
                                        std::to_string(hs.leader) + "\n");
}

storage::Status RaftStore::save_snapshot(const Snapshot& s, bool installed) {
  GANNET_RETURN_IF_ERROR(storage::write_file_atomic(
      storage::posix_file_system(), storage::join_path(dir_, "snapshot"),
      "0 " + std::to_string(s.id.end_offset) + " " + std::to_string(s.id.epoch) + "\n" + s.data));
  // An installed snapshot replaces the log.
  if (installed &&
      (log_->log_end_offset() != s.id.end_offset || log_->log_start_offset() > s.id.end_offset)) {
    GANNET_RETURN_IF_ERROR(log_->truncate_fully_and_start_at(s.id.end_offset));
  }
  return {};
}

storage::Status RaftStore::truncate(int64_t end) { return log_->truncate_to(end); }

storage::Status RaftStore::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return {};
  std::string bytes;
  for (const Entry& e : entries) {
    storage::BatchOptions o;
    o.base_offset = e.offset;
    o.leader_epoch = e.epoch;
    o.control = e.control;
    storage::RecordBatchBuilder b(o);
    b.add(0, std::nullopt, e.data);
    GANNET_ASSIGN_OR_RETURN(std::string batch, b.build());
    bytes += batch;
  }
  auto r = log_->append_as_follower(
      std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()));
  if (!r.ok()) return r.error();
  return {};
}

storage::Status RaftStore::compact_before(int64_t offset) {
  // Whole segments below the snapshot go (it is durable before this is called); the rest of the
  // prefix stays until its segment is wholly covered.
  auto r = log_->delete_segments_below(offset);
  if (!r.ok()) return r.error();
  return {};
}

storage::Status RaftStore::sync() { return log_->flush(); }

}  // namespace gannet::raft
