// Test and benchmark helpers for quorums of RaftNodes in one process on loopback.
#pragma once

#include <map>
#include <string>

#include "raft/raft_node.h"
#include "testing/process_harness.h"

namespace gannet::raft {

// Voters 1..n, each on a free loopback port.
inline std::map<NodeId, std::string> loopback_voters(int n) {
  std::map<NodeId, std::string> voters;
  for (NodeId id = 1; id <= n; ++id) voters[id] = "127.0.0.1:" + std::to_string(testing::free_port());
  return voters;
}

// Options for voter `id` with short timeouts (elections in a few hundred ms) and its data in
// dir/node<id>.
inline RaftNodeOptions local_node_options(NodeId id, const std::map<NodeId, std::string>& voters,
                                          const std::string& dir, RaftListener* listener = nullptr) {
  RaftNodeOptions o;
  o.id = id;
  o.voters = voters;
  o.listen_address = voters.at(id);
  o.data_dir = dir + "/node" + std::to_string(id);
  o.election_timeout_ms = 300;
  o.fetch_timeout_ms = 800;
  o.fetch_max_wait_ms = 100;
  o.listener = listener;
  return o;
}

}  // namespace gannet::raft
