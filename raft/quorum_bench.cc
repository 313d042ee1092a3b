// Quorum benchmark: three voters in this process, on loopback gRPC, every append synced on every
// voter before it counts. Reports committed appends/s and commit latency p50/p99 for 1 KiB
// records with 1 and 64 appends in flight, next to this machine's own fdatasync rate and latency
// measured in the same run on the same file system.
//
//   bazel run -c opt //raft:quorum_bench -- [--dir DIR] [--seconds N] [--output json]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "raft/raft_node.h"
#include "testing/local_quorum.h"
#include "testing/process_harness.h"

namespace gannet::raft {
namespace {

using Clock = std::chrono::steady_clock;

struct Latencies {
  std::vector<double> us;
  double pct(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  }
};

// fdatasync after each 1 KiB write, for `seconds`.
void fsync_baseline(const std::string& dir, double seconds, double* rate, Latencies* lat) {
  const std::string path = dir + "/fsync.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  std::string buf(1024, 'x');
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  int n = 0;
  const auto start = Clock::now();
  while (Clock::now() < end) {
    auto t = Clock::now();
    if (::write(fd, buf.data(), buf.size()) != 1024 || ::fdatasync(fd) != 0) break;
    lat->us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    ++n;
  }
  *rate = n / std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  std::filesystem::remove(path);
}

struct BenchResult {
  double rate = 0;
  Latencies lat;
};

BenchResult run_appends(RaftNode* leader, int in_flight, double seconds) {
  BenchResult r;
  std::mutex mu;
  std::atomic<int64_t> done{0};
  const std::string record(1024, 'r');
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < in_flight; ++i) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      while (Clock::now() < end) {
        auto t = Clock::now();
        AppendOutcome o = leader->append({record}, 10'000);
        if (!o.ok) break;
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
        done.fetch_add(1);
      }
      std::lock_guard<std::mutex> l(mu);
      r.lat.us.insert(r.lat.us.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  r.rate = done.load() / std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace
}  // namespace gannet::raft

int main(int argc, char** argv) {
  using namespace gannet;
  using namespace gannet::raft;
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  std::string dir = std::string(ws ? ws : "/tmp") + "/.gannet/quorum-bench";
  double seconds = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    else if (a == "--output" && i + 1 < argc) json = std::string(argv[++i]) == "json";
    else {
      std::fprintf(stderr, "usage: quorum_bench [--dir DIR] [--seconds N] [--output text|json]\n");
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::fprintf(stderr, "quorum_bench: fdatasync baseline...\n");
  double fsync_rate = 0;
  Latencies fsync_lat;
  fsync_baseline(dir, std::min(seconds, 3.0), &fsync_rate, &fsync_lat);
  const double fsync_p50 = fsync_lat.pct(0.5), fsync_p99 = fsync_lat.pct(0.99);

  std::fprintf(stderr, "quorum_bench: starting 3 voters...\n");
  std::map<NodeId, std::string> voters = loopback_voters(3);
  std::vector<std::unique_ptr<RaftNode>> nodes;
  for (NodeId id = 1; id <= 3; ++id) {
    RaftNodeOptions o = local_node_options(id, voters, dir);
    o.fetch_timeout_ms = 1000;
    o.fetch_max_wait_ms = 200;
    auto n = RaftNode::start(o);
    if (!n.ok()) {
      std::fprintf(stderr, "quorum_bench: %s\n", n.error().to_string().c_str());
      return 1;
    }
    nodes.push_back(std::move(n).value());
  }
  RaftNode* leader = nullptr;
  const bool elected = testing::wait_until(
      [&] {
        for (auto& n : nodes) {
          if (n->status().role == Role::kLeader) {
            leader = n.get();
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(10));
  if (!elected) {
    std::fprintf(stderr, "quorum_bench: no leader\n");
    return 1;
  }
  run_appends(leader, 4, 0.5);  // warm up
  std::fprintf(stderr, "quorum_bench: 1 append in flight...\n");
  BenchResult one = run_appends(leader, 1, seconds);
  std::fprintf(stderr, "quorum_bench: 64 appends in flight...\n");
  BenchResult many = run_appends(leader, 64, seconds);
  for (auto& n : nodes) n->shutdown();
  std::filesystem::remove_all(dir);

  const double one_p50 = one.lat.pct(0.5), one_p99 = one.lat.pct(0.99);
  const double many_p50 = many.lat.pct(0.5), many_p99 = many.lat.pct(0.99);
  if (json) {
    std::printf("{\"fdatasync_per_s\":%.0f,\"fdatasync_p50_us\":%.0f,\"fdatasync_p99_us\":%.0f,"
                "\"inflight1_per_s\":%.0f,\"inflight1_p50_us\":%.0f,\"inflight1_p99_us\":%.0f,"
                "\"inflight64_per_s\":%.0f,\"inflight64_p50_us\":%.0f,\"inflight64_p99_us\":%.0f}\n",
                fsync_rate, fsync_p50, fsync_p99, one.rate, one_p50, one_p99, many.rate, many_p50,
                many_p99);
    return 0;
  }
  std::printf("machine fdatasync (1 KiB write + fdatasync): %8.0f /s   p50 %7.0f us   p99 %7.0f us\n",
              fsync_rate, fsync_p50, fsync_p99);
  std::printf("quorum, 1 append in flight:                 %8.0f /s   p50 %7.0f us   p99 %7.0f us\n",
              one.rate, one_p50, one_p99);
  std::printf("quorum, 64 appends in flight:               %8.0f /s   p50 %7.0f us   p99 %7.0f us\n",
              many.rate, many_p50, many_p99);
  std::printf("ratio inflight64_rate_vs_fdatasync_rate %.2f\n", many.rate / fsync_rate);
  std::printf("ratio inflight1_p50_vs_fdatasync_p50 %.2f\n", one_p50 / fsync_p50);
  std::printf("ratio inflight1_p99_vs_fdatasync_p50 %.2f\n", one_p99 / fsync_p50);
  return 0;
}
