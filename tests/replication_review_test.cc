// Review finding, end to end on three real combined nodes: a broker that loses a leadership
// without restarting (paused past its session: SIGSTOP / GC pause / partition from the
// controller) before anything was produced in its epoch never catches up as a follower, so it
// never rejoins the ISR (see broker/partition_test.cc, FollowerThatLedAnEmptyEpoch*).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "storage/record_batch.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;

std::string batch_of(const std::vector<std::string>& values) {
  storage::RecordBatchBuilder b;
  for (const auto& v : values) b.add(1'700'000'000'000, std::nullopt, v);
  return *b.build();
}

TEST(ReplicationReview, LeaderPausedBeforeItsFirstProduceRejoinsTheIsr) {
  Cluster c(3, "replica.lag.time.max.ms=3000\nreplica.fetch.wait.max.ms=200\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("t", 1, 3, {{"min.insync.replicas", "2"}}), gannet::v1::NONE);
  auto leader_of = [&](int avoid) {
    auto md = c.metadata({"t"}, c.any_live(avoid));
    return md.topics_size() == 1 && md.topics(0).partitions_size() == 1 ? md.topics(0).partitions(0).leader() : -1;
  };
  int victim = -1;
  ASSERT_TRUE(testing::wait_until([&] { return (victim = leader_of(-1)) >= 1; }, 30s));
  // Let the victim act on its leadership (assign its leader epoch) before pausing it.
  std::this_thread::sleep_for(1s);
  std::cout << "pausing leader " << victim << std::endl;
  c.kill(victim, SIGSTOP);
  int leader = -1;
  ASSERT_TRUE(testing::wait_until([&] { leader = leader_of(victim); return leader >= 1 && leader != victim; }, 30s));
  // Produce to the new leader (two in-sync replicas; min.insync.replicas=2).
  bool produced = false;
  for (int attempt = 0; attempt < 100 && !produced; ++attempt) {
    testing::bv1::ProduceRequest req;
    req.set_acks(-1);
    req.set_timeout_ms(5000);
    auto* pd = req.add_partitions();
    pd->set_topic("t");
    pd->set_partition(0);
    pd->set_records(batch_of({"a", "b", "c"}));
    testing::bv1::ProduceResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    produced = c.broker(leader)->Produce(&ctx, req, &resp).ok() && resp.partitions_size() == 1 &&
               resp.partitions(0).error_code() == gannet::v1::NONE;
    if (!produced) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(produced);
  std::cout << "resuming broker " << victim << std::endl;
  c.kill(victim, SIGCONT);
  EXPECT_TRUE(testing::wait_until([&] {
    auto md = c.metadata({"t"}, c.any_live(victim));
    return md.topics_size() == 1 && md.topics(0).partitions(0).isr_size() == 3;
  }, 30s)) << "broker " << victim << " never rejoined the ISR: "
           << c.metadata({"t"}, c.any_live(victim)).ShortDebugString() << "\n(see " << c.log_path(victim)
           << " for 'diverged from leader' repeated at its own log end)";
  // Evidence from the victim's log: the same truncation, over and over.
  std::ifstream in(c.log_path(victim));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  size_t n = 0;
  for (size_t at = log.find("diverged from leader"); at != std::string::npos; at = log.find("diverged from leader", at + 1)) ++n;
  std::cout << "broker " << victim << " logged 'diverged from leader' " << n << " times" << std::endl;
  EXPECT_LT(n, 10u);
}

}  // namespace
}  // namespace gannet
