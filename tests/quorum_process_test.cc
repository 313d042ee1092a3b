// Three real gannetd controllers on loopback: a leader is elected; after SIGKILL of the leader a
// new one with a higher epoch takes over within 5 s and commits appends; the killed node comes
// back and catches up.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "proto/raft.grpc.pb.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using raft::v1::Quorum;

class QuorumCluster {
 public:
  explicit QuorumCluster(int n) : dir_(testing::test_dir("quorum")) {
    for (int i = 1; i <= n; ++i) ports_[i] = testing::free_port();
    std::string voters;
    for (const auto& [id, port] : ports_) {
      voters += (voters.empty() ? "" : ",") + std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    for (const auto& [id, port] : ports_) {
      const std::string cfg = dir_ + "/node" + std::to_string(id) + ".properties";
      testing::write_file(cfg, "node.id=" + std::to_string(id) +
                                   "\nprocess.roles=controller\ncontroller.quorum.voters=" + voters +
                                   "\nlisteners=CONTROLLER://127.0.0.1:" + std::to_string(port) +
                                   "\ncontroller.listener.names=CONTROLLER\nlog.dirs=" + dir_ +
                                   "/data" + std::to_string(id) +
                                   "\ncontroller.quorum.election.timeout.ms=500"
                                   "\ncontroller.quorum.fetch.timeout.ms=1000"
                                   "\nquorum.append.rpc.enable=true\n");
      testing::write_file(dir_ + "/data" + std::to_string(id) + "/meta.properties",
                          "version=1\ncluster.id=quorum-test\nnode.id=" + std::to_string(id) + "\n");
      // Reconnect quickly to a restarted node (gRPC's default backoff grows to minutes).
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
      stubs_[id] = Quorum::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                                             grpc::InsecureChannelCredentials(), args));
      procs_[id] = std::make_unique<testing::Process>();
    }
  }

  void start(int id) {
    procs_[id]->start({testing::runfile("broker/gannetd"), "--config",
                       dir_ + "/node" + std::to_string(id) + ".properties"},
                      dir_ + "/node" + std::to_string(id) + ".log");
  }
  void kill(int id, int sig) { procs_[id]->kill(sig); }

  std::optional<raft::v1::DescribeQuorumResponse> describe(int id) {
    raft::v1::DescribeQuorumResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(procs_[id]->running());  // a restarted node: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 1s);
    if (!stubs_[id]->DescribeQuorum(&ctx, {}, &resp).ok()) return std::nullopt;
    return resp;
  }

  // The node that says it leads, if exactly one live node does.
  std::optional<raft::v1::DescribeQuorumResponse> leader(int min_epoch = 0) {
    for (const auto& [id, p] : procs_) {
      if (!p->running()) continue;
      auto d = describe(id);
      if (d && d->role() == "leader" && d->epoch() >= min_epoch) return d;
    }
    return std::nullopt;
  }

  raft::v1::AppendResponse append(int id, const std::vector<std::string>& records) {
    raft::v1::AppendRequest req;
    for (const auto& r : records) req.add_records(r);
    req.set_timeout_ms(5000);
    raft::v1::AppendResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::Status st = stubs_[id]->Append(&ctx, req, &resp);
    if (!st.ok()) resp.set_message(st.error_message());
    return resp;
  }

  const std::map<int, int>& ports() const { return ports_; }

 private:
  std::string dir_;
  std::map<int, int> ports_;
  std::map<int, std::unique_ptr<Quorum::Stub>> stubs_;
  std::map<int, std::unique_ptr<testing::Process>> procs_;  // killed on destruction
};

TEST(QuorumProcess, LeaderFailoverAndCatchUp) {
  QuorumCluster c(3);
  for (int id : {1, 2, 3}) c.start(id);
  std::optional<raft::v1::DescribeQuorumResponse> first;
  ASSERT_TRUE(testing::wait_until([&] { return (first = c.leader()).has_value(); }, 15s))
      << "no leader elected";
  const int old_leader = first->node_id();
  const int old_epoch = first->epoch();
  auto a = c.append(old_leader, {"before-1", "before-2"});
  ASSERT_EQ(a.error(), gannet::v1::NONE) << a.message();
  const int64_t committed = a.last_offset() + 1;

  c.kill(old_leader, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  std::optional<raft::v1::DescribeQuorumResponse> next;
  ASSERT_TRUE(testing::wait_until([&] { return (next = c.leader(old_epoch + 1)).has_value(); }, 10s))
      << "no new leader after the leader was killed";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed_at);
  std::cout << "new leader " << next->node_id() << " in epoch " << next->epoch() << " after "
            << took.count() << " ms" << std::endl;
  EXPECT_NE(next->node_id(), old_leader);
  EXPECT_GT(next->epoch(), old_epoch);
  EXPECT_LE(took.count(), 5000) << "failover took longer than 5 s";
  // Everything committed before survives on the new leader.
  EXPECT_GE(next->high_watermark(), 0);
  EXPECT_GE(next->log_end_offset(), committed);

  auto b = c.append(next->node_id(), {"after-1", "after-2", "after-3"});
  ASSERT_EQ(b.error(), gannet::v1::NONE) << b.message();
  const int64_t end = b.last_offset() + 1;

  c.start(old_leader);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto d = c.describe(old_leader);
        return d && d->log_end_offset() >= end && d->high_watermark() >= end;
      },
      15s))
      << "the restarted node did not catch up";
  auto d = c.describe(old_leader);
  EXPECT_EQ(d->leader(), next->node_id());
  // The leader sees it with no lag (once the follower's next fetch has told it: the follower's
  // own log end moves first).
  bool found = false;
  int64_t seen = -1;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        auto l = c.describe(next->node_id());
        if (!l) return false;
        for (const auto& v : l->voters()) {
          if (v.id() == old_leader) {
            found = true;
            seen = v.log_end_offset();
          }
        }
        return seen >= end;
      },
      5s))
      << "the leader sees the restarted voter at log end " << seen << ", not " << end;
  EXPECT_TRUE(found);
  for (int id : {1, 2, 3}) c.kill(id, SIGTERM);
}

}  // namespace
}  // namespace gannet
