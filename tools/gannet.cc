// gannet: the command line for a Gannet cluster.
//
//   gannet quorum status --bootstrap-controller HOST:PORT [--output text|json]
//   gannet quorum append --bootstrap-controller HOST:PORT [--timeout-ms N] RECORD...
//
// `quorum status` asks the given controller, then the leader it names, and prints the leader,
// epoch and high watermark and, per voter and observer, its log end offset, lag and last fetch.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "proto/raft.grpc.pb.h"

namespace {

using gannet::raft::v1::Quorum;

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
};

Args parse(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        a.flags[s.substr(2, eq - 2)] = s.substr(eq + 1);
      } else if (i + 1 < argc) {
        a.flags[s.substr(2)] = argv[++i];
      } else {
        a.flags[s.substr(2)] = "";
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

int usage() {
  std::fprintf(stderr,
               "usage:\n"
               "  gannet quorum status --bootstrap-controller HOST:PORT [--output text|json]\n"
               "  gannet quorum append --bootstrap-controller HOST:PORT [--timeout-ms N] RECORD...\n");
  return 2;
}

std::unique_ptr<Quorum::Stub> stub_for(const std::string& address) {
  return Quorum::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

bool describe(const std::string& address, gannet::raft::v1::DescribeQuorumResponse* out,
              std::string* error) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status st = stub_for(address)->DescribeQuorum(&ctx, {}, out);
  if (!st.ok()) *error = address + ": " + st.error_message();
  return st.ok();
}

std::string replica_json(const gannet::raft::v1::ReplicaState& r) {
  return "{\"id\":" + std::to_string(r.id()) + ",\"log_end_offset\":" +
         std::to_string(r.log_end_offset()) + ",\"lag\":" + std::to_string(r.lag()) +
         ",\"last_fetch_ms_ago\":" + std::to_string(r.last_fetch_ms_ago()) + "}";
}

int quorum_status(const Args& a) {
  auto it = a.flags.find("bootstrap-controller");
  if (it == a.flags.end()) return usage();
  const bool json = a.flags.count("output") && a.flags.at("output") == "json";
  gannet::raft::v1::DescribeQuorumResponse d;
  std::string error;
  if (!describe(it->second, &d, &error)) {
    std::fprintf(stderr, "gannet: %s\n", error.c_str());
    return 1;
  }
  // Replica states come from the leader: ask it if the bootstrap controller is not it.
  if (d.role() != "leader" && !d.leader_address().empty()) {
    gannet::raft::v1::DescribeQuorumResponse l;
    if (describe(d.leader_address(), &l, &error)) d = l;
  }
  if (json) {
    std::string voters, observers;
    for (const auto& r : d.voters()) voters += (voters.empty() ? "" : ",") + replica_json(r);
    for (const auto& r : d.observers()) observers += (observers.empty() ? "" : ",") + replica_json(r);
    std::printf("{\"leader\":%d,\"epoch\":%d,\"high_watermark\":%lld,\"log_end_offset\":%lld,"
                "\"answered_by\":%d,\"role\":\"%s\",\"voters\":[%s],\"observers\":[%s]}\n",
                d.leader(), d.epoch(), static_cast<long long>(d.high_watermark()),
                static_cast<long long>(d.log_end_offset()), d.node_id(), d.role().c_str(),
                voters.c_str(), observers.c_str());
    return 0;
  }
  std::printf("leader:         %d%s\n", d.leader(), d.leader() < 0 ? " (none)" : "");
  std::printf("epoch:          %d\n", d.epoch());
  std::printf("high watermark: %lld\n", static_cast<long long>(d.high_watermark()));
  std::printf("answered by:    node %d (%s)\n", d.node_id(), d.role().c_str());
  std::printf("\n%-10s %-6s %16s %10s %18s\n", "replica", "id", "log end offset", "lag", "last fetch (ms ago)");
  auto row = [](const char* kind, const gannet::raft::v1::ReplicaState& r) {
    std::printf("%-10s %-6d %16lld %10lld %18lld\n", kind, r.id(),
                static_cast<long long>(r.log_end_offset()), static_cast<long long>(r.lag()),
                static_cast<long long>(r.last_fetch_ms_ago()));
  };
  for (const auto& r : d.voters()) row("voter", r);
  for (const auto& r : d.observers()) row("observer", r);
  return 0;
}

int quorum_append(const Args& a) {
  auto it = a.flags.find("bootstrap-controller");
  if (it == a.flags.end() || a.positional.size() < 3) return usage();
  std::string address = it->second;
  gannet::raft::v1::AppendRequest req;
  for (size_t i = 2; i < a.positional.size(); ++i) req.add_records(a.positional[i]);
  if (a.flags.count("timeout-ms")) req.set_timeout_ms(std::stoi(a.flags.at("timeout-ms")));
  for (int attempt = 0; attempt < 3; ++attempt) {
    gannet::raft::v1::AppendResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status st = stub_for(address)->Append(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "gannet: %s: %s\n", address.c_str(), st.error_message().c_str());
      return 1;
    }
    if (resp.error() == gannet::v1::NONE) {
      std::printf("committed up to offset %lld\n", static_cast<long long>(resp.last_offset()));
      return 0;
    }
    if (resp.error() != gannet::v1::NOT_CONTROLLER) {
      std::fprintf(stderr, "gannet: %s\n", resp.message().c_str());
      return 1;
    }
    // Follow the leader.
    gannet::raft::v1::DescribeQuorumResponse d;
    std::string error;
    if (!describe(address, &d, &error) || d.leader_address().empty()) {
      std::fprintf(stderr, "gannet: no quorum leader known (%s)\n", resp.message().c_str());
      return 1;
    }
    address = d.leader_address();
  }
  std::fprintf(stderr, "gannet: the quorum leader kept moving\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv, 1);
  if (a.positional.size() >= 2 && a.positional[0] == "quorum") {
    if (a.positional[1] == "status") return quorum_status(a);
    if (a.positional[1] == "append") return quorum_append(a);
  }
  return usage();
}
