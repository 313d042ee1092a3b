// group_bench: the consumer-group figures of issue 6 on a local cluster of three combined gannetd
// nodes, next to this machine's unary RPC rate measured in the same run.
//
//   bazel run -c opt //tests:group_bench -- [--members 10] [--partitions 60] [--session-ms 3000]
//                                           [--commit-seconds 3] [--output json]
//
// 1. Rebalance time: `members` consumers (in this process, one thread each) share a topic of
//    `partitions` partitions; then one more joins, later leaves cleanly, and then a consumer
//    process (`gannet consume --group`) joins and is SIGKILLed. Each time: from the event until
//    every partition is owned again, by the members of one new generation.
// 2. Offset commits per second to one coordinator: 16 threads (--commit-threads), each committing one partition of
//    its own group per request (acks=all, RF 3), beside the rate of a trivial unary RPC
//    (ListGroups) with the same threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

namespace bv1 = broker::v1;
using Clock = std::chrono::steady_clock;
double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A consumer polling on its own thread, publishing its generation and assignment the moment it
// gets them (its rebalance listener), not after the poll returns.
class Member : public client::RebalanceListener {
 public:
  void on_revoked(const std::vector<client::TopicPartition>&) override {
    std::lock_guard<std::mutex> l(mu_);
    assignment_.clear();
  }
  void on_assigned(const std::vector<client::TopicPartition>& parts) override {
    std::lock_guard<std::mutex> l(mu_);
    generation_ = consumer_->generation();
    assignment_ = std::set<client::TopicPartition>(parts.begin(), parts.end());
  }

  Member(const std::string& bootstrap, const std::string& group, const std::string& topic, int32_t session_ms) {
    client::ConsumerConfig cfg;
    cfg.bootstrap_servers = testing::split_addresses(bootstrap);
    cfg.group_id = group;
    cfg.session_timeout_ms = session_ms;
    cfg.heartbeat_interval_ms = session_ms / 3;
    cfg.auto_offset_reset = "earliest";
    cfg.fetch_max_wait_ms = 100;
    consumer_ = std::make_unique<client::Consumer>(cfg);
    consumer_->subscribe({topic}, this);
    thread_ = std::thread([this] {
      while (!stop_) consumer_->poll(100);
      consumer_->close();
    });
  }
  ~Member() {
    stop_ = true;
    thread_.join();
  }
  std::pair<int32_t, std::set<client::TopicPartition>> state() {
    std::lock_guard<std::mutex> l(mu_);
    return {generation_, assignment_};
  }

 private:
  std::unique_ptr<client::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int32_t generation_ = -1;
  std::set<client::TopicPartition> assignment_;
  std::thread thread_;
};

// Every in-process member in the same generation (newer than `after`), their assignments
// disjoint, and together owning `want` partitions.
bool settled(std::vector<std::unique_ptr<Member>>& members, int32_t after, size_t want, int32_t* generation) {
  int32_t gen = -1;
  std::set<client::TopicPartition> all;
  size_t total = 0;
  for (auto& m : members) {
    auto [g, a] = m->state();
    if (g <= after) return false;
    if (gen >= 0 && g != gen) return false;
    gen = g;
    total += a.size();
    all.insert(a.begin(), a.end());
  }
  if (all.size() != total || all.size() != want) return false;
  *generation = gen;
  return true;
}

// Waits (bounded) for settled(); returns the seconds it took or -1.
double time_to_settle(std::vector<std::unique_ptr<Member>>& members, int32_t after, size_t want, int32_t* generation,
                      Clock::time_point since, double limit_s = 60) {
  while (secs_since(since) < limit_s) {
    if (settled(members, after, want, generation)) return secs_since(since);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

// The coordinator of `group`, through broker `via`.
int32_t coordinator_of(testing::Cluster& c, const std::string& group) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    bv1::FindCoordinatorRequest req;
    req.set_key(group);
    bv1::FindCoordinatorResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (c.broker(c.any_live())->FindCoordinator(&ctx, req, &resp).ok() && resp.error_code() == gannet::v1::NONE) {
      return resp.node_id();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return -1;
}

// Calls of `call` per second from `threads` threads for `seconds`; failures counted apart.
template <typename F>
std::pair<double, int64_t> rate(int threads, double seconds, F call) {
  std::atomic<int64_t> ok{0}, failed{0};
  std::vector<std::thread> ts;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      while (secs_since(start) < seconds) (call(t) ? ok : failed)++;
    });
  }
  for (auto& t : ts) t.join();
  return {static_cast<double>(ok.load()) / secs_since(start), failed.load()};
}

int run(int argc, char** argv) {
  int members_n = 10, partitions = 60, session_ms = 3000, threads = 16;
  double commit_seconds = 3;
  bool json = false, only_commits = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--members") members_n = std::stoi(next());
    else if (a == "--partitions") partitions = std::stoi(next());
    else if (a == "--session-ms") session_ms = std::stoi(next());
    else if (a == "--commit-seconds") commit_seconds = std::stod(next());
    else if (a == "--commit-threads") threads = std::stoi(next());
    else if (a == "--only-commits") only_commits = true;
    else if (a == "--output") json = next() == "json";
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  testing::Cluster c(3, "group.initial.rebalance.delay.ms=0\n");
  c.start_all();
  if (!c.wait_unfenced({1, 2, 3}, std::chrono::seconds(60))) {
    std::fprintf(stderr, "the cluster did not come up\n");
    return 1;
  }
  const std::string b = c.bootstrap();
  if (c.create_error("bench", partitions, 3) != gannet::v1::NONE) {
    std::fprintf(stderr, "cannot create the topic\n");
    return 1;
  }
  const std::string group = "bench-group";
  if (coordinator_of(c, group) < 0) {
    std::fprintf(stderr, "no coordinator\n");
    return 1;
  }
  std::fprintf(stderr, "group_bench: %d members, %d partitions, session %d ms\n", members_n, partitions, session_ms);

  // ---- Rebalance times ----
  double join_s = -1, leave_s = -1, death_s = -1;
  if (!only_commits) {
    std::vector<std::unique_ptr<Member>> members;
    for (int i = 0; i < members_n; ++i) members.push_back(std::make_unique<Member>(b, group, "bench", session_ms));
    int32_t gen = -1;
    const double initial = time_to_settle(members, -1, static_cast<size_t>(partitions), &gen, Clock::now());
    std::fprintf(stderr, "  %d members settled (generation %d) in %.2f s\n", members_n, gen, initial);
    // One joins.
    auto t0 = Clock::now();
    members.push_back(std::make_unique<Member>(b, group, "bench", session_ms));
    join_s = time_to_settle(members, gen, static_cast<size_t>(partitions), &gen, t0);
    std::fprintf(stderr, "  join: every partition owned again after %.0f ms (generation %d)\n", join_s * 1000, gen);
    // It leaves cleanly (close() sends LeaveGroup).
    t0 = Clock::now();
    members.pop_back();
    leave_s = time_to_settle(members, gen, static_cast<size_t>(partitions), &gen, t0);
    std::fprintf(stderr, "  clean leave: every partition owned again after %.0f ms\n", leave_s * 1000);
    // A consumer process joins, then dies without leaving (SIGKILL): its session must run out.
    testing::Process proc;
    proc.start({testing::runfile("tools/gannet"), "consume", "bench", "--group", group, "--bootstrap-server", b,
                "--session-timeout-ms", std::to_string(session_ms)},
               testing::test_dir("group_bench") + "/consumer.log");
    // Settled with the process in: the in-process members own all but the process's share.
    {
      const auto wait_start = Clock::now();
      int32_t g2 = -1;
      bool in = false;
      while (secs_since(wait_start) < 60) {
        // A new generation in which we own fewer than all partitions, disjointly.
        int32_t gg = -1;
        std::set<client::TopicPartition> all;
        size_t total = 0;
        bool same = true;
        for (auto& m : members) {
          auto [g, a] = m->state();
          if (g <= gen || (gg >= 0 && g != gg)) same = false;
          gg = g;
          total += a.size();
          all.insert(a.begin(), a.end());
        }
        if (same && all.size() == total && static_cast<int>(all.size()) < partitions && !all.empty()) {
          g2 = gg;
          in = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (in) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        t0 = Clock::now();
        proc.kill(SIGKILL);
        death_s = time_to_settle(members, g2, static_cast<size_t>(partitions), &gen, t0);
        std::fprintf(stderr, "  member SIGKILLed: every partition owned again after %.0f ms (session %d ms)\n",
                     death_s * 1000, session_ms);
      } else {
        std::fprintf(stderr, "  the consumer process never got a share; death not measured\n");
      }
    }
    members.clear();
  }

  // ---- Commits per second to one coordinator ----
  const int32_t coord = coordinator_of(c, group);
  std::vector<std::string> groups;  // 16 groups coordinated by `coord`
  for (int i = 0; groups.size() < static_cast<size_t>(threads) && i < 10'000; ++i) {
    const std::string g = "commit-" + std::to_string(i);
    if (coordinator_of(c, g) == coord) groups.push_back(g);
  }
  bv1::Broker::Stub* stub = c.broker(coord);
  auto commit_one = [&](int t) {
    static thread_local int64_t n = 0;
    bv1::OffsetCommitRequest req;
    req.set_group_id(groups[static_cast<size_t>(t)]);
    req.set_generation_id(-1);
    auto* tp = req.add_topics();
    tp->set_name("bench");
    auto* p = tp->add_partitions();
    p->set_partition(t % partitions);
    p->set_committed_offset(++n);
    bv1::OffsetCommitResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->OffsetCommit(&ctx, req, &resp).ok() && resp.topics(0).partitions(0).error_code() == gannet::v1::NONE;
  };
  constexpr int kBatch = 10;
  auto commit_batch = [&](int t) {
    static thread_local int64_t n = 0;
    bv1::OffsetCommitRequest req;
    req.set_group_id(groups[static_cast<size_t>(t)]);
    req.set_generation_id(-1);
    auto* tp = req.add_topics();
    tp->set_name("bench");
    ++n;
    for (int i = 0; i < kBatch; ++i) {
      auto* p = tp->add_partitions();
      p->set_partition(i);
      p->set_committed_offset(n);
    }
    bv1::OffsetCommitResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!stub->OffsetCommit(&ctx, req, &resp).ok()) return false;
    for (const auto& p : resp.topics(0).partitions()) {
      if (p.error_code() != gannet::v1::NONE) return false;
    }
    return true;
  };
  auto list_groups = [&](int) {
    bv1::ListGroupsRequest req;
    bv1::ListGroupsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->ListGroups(&ctx, req, &resp).ok();
  };
  rate(threads, 0.5, commit_one);  // warm up (offsets partitions loaded, channels open)
  auto [rpc_rate, rpc_failed] = rate(threads, commit_seconds, list_groups);
  auto [commit_rate, commit_failed] = rate(threads, commit_seconds, commit_one);
  auto [single_rate, single_failed] = rate(1, commit_seconds, commit_one);
  auto [batch_rate, batch_failed] = rate(threads, commit_seconds, commit_batch);
  std::fprintf(stderr, "  commits: %.0f/s with %d threads (%lld failed), %.0f/s with 1; unary RPC baseline %.0f/s\n",
               commit_rate, threads, static_cast<long long>(commit_failed), single_rate, rpc_rate);
  std::fprintf(stderr, "  commits of %d partitions per request: %.0f requests/s = %.0f offsets/s (%lld failed)\n", kBatch,
               batch_rate, batch_rate * kBatch, static_cast<long long>(batch_failed));

  if (json) {
    std::printf("{\"members\":%d,\"partitions\":%d,\"session_ms\":%d,\"join_ms\":%.0f,\"leave_ms\":%.0f,"
                "\"death_ms\":%.0f,\"commits_per_s\":%.0f,\"commits_per_s_1_thread\":%.0f,"
                "\"offsets_per_s_10_per_request\":%.0f,\"rpc_per_s\":%.0f}\n",
                members_n, partitions, session_ms, join_s * 1000, leave_s * 1000, death_s * 1000, commit_rate,
                single_rate, batch_rate * kBatch, rpc_rate);
  } else {
    std::printf("| measurement | result | target |\n|---|---|---|\n");
    std::printf("| rebalance, one member joins (%d members, %d partitions) | %.0f ms | < 1000 ms |\n", members_n,
                partitions, join_s * 1000);
    std::printf("| rebalance, one member leaves cleanly | %.0f ms | |\n", leave_s * 1000);
    std::printf("| rebalance, one member SIGKILLed (session %d ms) | %.0f ms | session + rebalance |\n", session_ms,
                death_s * 1000);
    std::printf("| offset commits, %d threads, one coordinator (acks=all, RF 3) | %.0f/s | >= 10,000/s |\n",
                threads, commit_rate);
    std::printf("| offset commits, 1 thread | %.0f/s | |\n", single_rate);
    std::printf("| offsets committed, 10 partitions per request, %d threads | %.0f/s | |\n", threads, batch_rate * kBatch);
    std::printf("| machine: unary RPC (ListGroups), %d threads, same broker | %.0f/s | |\n", threads, rpc_rate);
  }
  (void)rpc_failed;
  (void)single_failed;
  return 0;
}

}  // namespace
}  // namespace gannet

int main(int argc, char** argv) { return gannet::run(argc, argv); }
