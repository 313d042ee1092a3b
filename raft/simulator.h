// Simulator: runs a whole quorum of RaftCores single-threaded on virtual time from one seed
// (TigerBeetle's VOPR and FoundationDB's simulation are the models). The seed chooses the
// topology, the timing and the faults; the same seed replays the same run exactly.
//
// Faults: the network drops, duplicates, delays (so reorders) messages and makes symmetric and
// asymmetric partitions; nodes crash (losing writes not yet synced, except a random prefix of
// the unsynced entries: a torn tail as storage/ recovers it), restart and pause. The
// disk syncs after a random delay; hard state and snapshots are written synchronously, as the
// driver contract requires.
//
// After every step a checker verifies: at most one leader per epoch; log matching (periodically
// and at the end); leader completeness (a new leader holds every committed entry); committed
// entries never change or vanish; each node's HW never moves back within an incarnation. After
// the fault phase everything heals, and the quorum must elect a leader and commit a new entry
// within a bound, or the run fails.
#pragma once

#include <cstdint>
#include <string>

#include "raft/raft_core.h"

namespace gannet::raft {

struct SimOptions {
  uint64_t seed = 1;
  int voters = 3;                  // 0: chosen by the seed (3 or 5)
  int observers = -1;              // -1: chosen by the seed (0 or 1)
  Bugs bugs;
  int64_t fault_ms = 12'000;       // virtual time with faults
  int64_t heal_bound_ms = 12'000;  // after healing, progress must come within this
  bool trace = false;              // print every event (for replaying a seed)
  // At heal time the leader (or a random voter) crashes and never returns: the rest must elect
  // a leader among themselves and commit within heal_bound_ms.
  bool lose_leader_at_heal = false;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what the checker found, with the virtual time
  int64_t committed = 0;
  int64_t max_epoch = 0;
  int64_t elections = 0;
  int64_t crashes = 0;
  int64_t snapshots_installed = 0;
  int64_t messages = 0;
};

SimResult run_simulation(const SimOptions& options);

}  // namespace gannet::raft
