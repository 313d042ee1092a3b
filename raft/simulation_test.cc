// Deterministic simulation of the quorum (see simulator.h). Seeds: GANNET_SEED=N replays one seed
// with a trace of every event; GANNET_RAFT_SEEDS=N runs N seeds (default 1000) from
// GANNET_SEED_BASE (default 1). A failure prints the seed to replay.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "raft/simulator.h"

namespace gannet::raft {
namespace {

int64_t env_int(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v ? std::strtoll(v, nullptr, 10) : def;
}

// Runs the seeds (GANNET_SEED / GANNET_SEED_BASE / GANNET_RAFT_SEEDS) with `options` (seed and
// trace filled in per run); stops at the first failure and prints what the runs covered.
void run_seeds(const char* title, SimOptions options) {
  const int64_t single = env_int("GANNET_SEED", -1);
  const int64_t base = single >= 0 ? single : env_int("GANNET_SEED_BASE", 1);
  const int64_t count = single >= 0 ? 1 : env_int("GANNET_RAFT_SEEDS", 1000);
  std::cout << title << ": seeds " << base << ".." << base + count - 1 << " (replay one with GANNET_SEED=N)"
            << std::endl;
  int64_t committed = 0, elections = 0, crashes = 0, snapshots = 0, max_epoch = 0;
  for (int64_t s = base; s < base + count; ++s) {
    SimOptions o = options;
    o.seed = static_cast<uint64_t>(s);
    o.trace = single >= 0;
    SimResult r = run_simulation(o);
    if (!r.ok) {
      ADD_FAILURE() << "seed " << s << ": " << r.failure << "\nreplay with GANNET_SEED=" << s;
      return;
    }
    committed += r.committed;
    elections += r.elections;
    crashes += r.crashes;
    snapshots += r.snapshots_installed;
    max_epoch = std::max(max_epoch, r.max_epoch);
  }
  std::cout << "  committed entries " << committed << ", elections " << elections << ", crashes "
            << crashes << ", snapshots installed " << snapshots << ", highest epoch " << max_epoch
            << std::endl;
  EXPECT_GT(committed, count * 10) << "the runs made too little progress to mean anything";
  EXPECT_GT(snapshots, 0) << "no run exercised snapshot transfer";
}

TEST(Simulation, RandomizedFaultsKeepEveryInvariantAndRecover) {
  SimOptions o;
  o.voters = 0;  // 3 or 5, by seed
  run_seeds("raft simulation", o);
}

// After the faults the leader dies for good (a lost machine): the others still follow it and
// must notice, elect a leader among themselves and commit. (Found in a real cluster: two
// followers kept vouching for the dead leader to each other in pre-vote answers.)
TEST(Simulation, RandomizedPermanentLeaderLossIsSurvived) {
  SimOptions o;
  o.voters = 0;
  o.lose_leader_at_heal = true;
  run_seeds("raft simulation, leader lost for good at heal", o);
}

// Test the tests: each known bug, switched back on, must be caught within a bounded number of
// seeds.
void expect_caught(const char* name, Bugs bugs, int max_seeds) {
  for (int s = 1; s <= max_seeds; ++s) {
    SimOptions o;
    o.seed = static_cast<uint64_t>(s);
    o.voters = 0;
    o.bugs = bugs;
    SimResult r = run_simulation(o);
    if (!r.ok) {
      std::cout << name << ": caught by seed " << s << ": " << r.failure << std::endl;
      return;
    }
  }
  ADD_FAILURE() << name << " was not caught in " << max_seeds << " seeds";
}

TEST(Simulation, CatchesVoteNotPersistedBeforeReplying) {
  Bugs b;
  b.vote_not_persisted = true;
  expect_caught("vote not persisted", b, 2000);
}

TEST(Simulation, CatchesLeaderCountingUnsyncedEntries) {
  Bugs b;
  b.leader_counts_unsynced = true;
  expect_caught("leader counts unsynced entries", b, 2000);
}

TEST(Simulation, CatchesHighWatermarkFromUncheckedFetchOffset) {
  Bugs b;
  b.hw_from_unchecked_offset = true;
  expect_caught("HW from unchecked fetch offset", b, 2000);
}

}  // namespace
}  // namespace gannet::raft
