// The messages of the KRaft-style quorum protocol (KIP-595 flavour of Raft), as the pure core sees
// them. The gRPC transport maps them onto proto/raft.proto one to one; the simulator passes them
// as they are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace gannet::raft {

using NodeId = int32_t;
using Epoch = int32_t;
inline constexpr NodeId kNoNode = -1;

// One log entry. Offsets are dense; each entry carries the epoch of the leader that wrote it.
struct Entry {
  int64_t offset = 0;
  Epoch epoch = 0;
  bool control = false;  // leader-change record written at the start of each epoch
  std::string data;
  bool operator==(const Entry&) const = default;
};

// A snapshot covers every entry below end_offset; `epoch` is the epoch of entry end_offset - 1.
struct SnapshotId {
  int64_t end_offset = 0;
  Epoch epoch = 0;
  bool operator==(const SnapshotId&) const = default;
};

struct VoteRequest {
  Epoch epoch = 0;           // the epoch the candidate asks for (current + 1 for a pre-vote)
  NodeId candidate = kNoNode;
  Epoch last_epoch = 0;      // epoch of the candidate's last entry
  int64_t end_offset = 0;    // the candidate's log end
  bool pre_vote = false;
};

struct VoteResponse {
  Epoch epoch = 0;  // the responder's epoch
  bool granted = false;
  bool pre_vote = false;
  NodeId leader = kNoNode;  // the leader the responder follows in `epoch`, if any
};

// Sent by a new leader to every voter so they follow it at once.
struct BeginQuorumEpoch {
  Epoch epoch = 0;
  NodeId leader = kNoNode;
};

// Sent by a leader that resigns (shutdown): voters start an election sooner, the preferred
// successors (in order) first.
struct EndQuorumEpoch {
  Epoch epoch = 0;
  NodeId leader = kNoNode;
  std::vector<NodeId> preferred_successors;
};

struct FetchRequest {
  Epoch epoch = 0;  // the fetcher's current epoch
  NodeId replica = kNoNode;
  int64_t fetch_offset = 0;     // the fetcher holds (durably) every entry below this
  Epoch last_fetched_epoch = 0;  // epoch of entry fetch_offset - 1 (0 if none)
  int64_t high_watermark = 0;    // the fetcher's HW: a leader with a newer one answers at once
  std::string directory_id;      // the fetcher's data directory (KIP-853): one counts per replica id
};

struct DivergingEpoch {
  Epoch epoch = 0;
  int64_t end_offset = 0;  // truncate to this, then fetch again
};

struct FetchResponse {
  Epoch epoch = 0;
  NodeId leader = kNoNode;   // kNoNode: the responder does not know one
  bool not_leader = false;   // the responder is not the leader of `epoch`; retry at `leader`
  bool fenced = false;       // the request's epoch is older than `epoch`: nothing was checked
  int64_t fetch_offset = 0;  // echoes the request, so a stale response can be recognised
  int64_t high_watermark = 0;
  int64_t log_start_offset = 0;
  std::optional<DivergingEpoch> diverging;
  std::optional<SnapshotId> snapshot;  // fetch_offset is below the log start: fetch this
  std::vector<Entry> entries;
  // The leader counts another directory for this replica id in this epoch: nothing was read.
  bool duplicate_replica = false;
};

struct FetchSnapshotRequest {
  Epoch epoch = 0;
  NodeId replica = kNoNode;
  SnapshotId id;
  int64_t position = 0;
};

struct FetchSnapshotResponse {
  Epoch epoch = 0;
  NodeId leader = kNoNode;
  bool not_leader = false;
  bool unknown_snapshot = false;
  SnapshotId id;
  int64_t position = 0;
  int64_t size = 0;  // total snapshot bytes
  std::string chunk;
};

using Body = std::variant<VoteRequest, VoteResponse, BeginQuorumEpoch, EndQuorumEpoch, FetchRequest,
                          FetchResponse, FetchSnapshotRequest, FetchSnapshotResponse>;

struct Message {
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Body body;
};

const char* message_name(const Body& b);

}  // namespace gannet::raft
