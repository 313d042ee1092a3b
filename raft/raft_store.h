// RaftStore: the quorum's durable state on disk, for the driver: the log (a storage::Log of
// record batches, one entry per batch, offsets and epochs kept; the control bit marks leader-change
// entries), the hard state (epoch, vote, leader) in `quorum-state`, and the latest snapshot in
// `snapshot` (formats in storage/FORMAT.md's spirit: small text header, atomically replaced).
#pragma once

#include <memory>
#include <string>

#include "raft/raft_core.h"
#include "storage/log.h"

namespace gannet::raft {

class RaftStore {
 public:
  static storage::Result<std::unique_ptr<RaftStore>> open(const std::string& dir,
                                                          int64_t segment_bytes = 64 << 20);

  // This quorum directory's id: random, written (atomically, synced) at its first use and the
  // same ever after (KIP-853's directory id; FetchRequest::directory_id).
  storage::Result<std::string> directory_id();

  // Everything durable, for RaftCore's constructor.
  storage::Result<RaftCore::Restored> load();

  storage::Status save_hard_state(const HardState& hs);
  // `installed`: a leader's snapshot that replaces the whole log; else one this node took, which
  // only lets the log below it go.
  storage::Status save_snapshot(const Snapshot& s, bool installed);
  storage::Status truncate(int64_t end);
  storage::Status append(const std::vector<Entry>& entries);
  // The log below `offset` may go (a durable snapshot covers it): whole segments are deleted.
  storage::Status compact_before(int64_t offset);
  storage::Status sync();

 private:
  explicit RaftStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::unique_ptr<storage::Log> log_;
};

}  // namespace gannet::raft
