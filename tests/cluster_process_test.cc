// Three real gannetd processes on loopback, each a combined node (broker + controller), driven
// over the client and controller APIs: topics are created with balanced replicas and leaders and
// their logs appear on the brokers; a SIGKILLed broker is fenced, loses its leaderships and ISR
// memberships, and is unfenced after a restart; deleted topics' directories go; every bad input
// gets its typed error; a controller failover and a controlled shutdown; data directories of
// another node or cluster are refused.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "proto/broker.grpc.pb.h"
#include "proto/controller.grpc.pb.h"
#include "proto/raft.grpc.pb.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
namespace bv1 = broker::v1;
namespace cv1 = controller::v1;
using gannet::v1::ErrorCode;
using gannet::v1::ErrorCode_Name;

using testing::Cluster;
using testing::kClusterId;

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

std::set<int> as_set(const google::protobuf::RepeatedField<int32_t>& v) { return {v.begin(), v.end()}; }

TEST(ClusterProcess, TopicsFencingAndRestart) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s)) << "the three brokers did not all register and unfence";

  // A 6-partition RF=3 topic: 3 replicas, full ISR, 2 leaderships per broker.
  auto created = c.create("events", 6, 3);
  ASSERT_EQ(created.error_code(), gannet::v1::NONE) << created.error_message();
  ASSERT_EQ(created.topics_size(), 1);
  ASSERT_EQ(created.topics(0).error_code(), gannet::v1::NONE) << created.topics(0).error_message();
  EXPECT_EQ(created.topics(0).num_partitions(), 6);
  EXPECT_EQ(created.topics(0).topic_id().size(), 16u);
  auto md = c.metadata({"events"});
  ASSERT_EQ(md.topics_size(), 1);
  ASSERT_EQ(md.topics(0).partitions_size(), 6);
  std::map<int, int> leads;
  for (const auto& p : md.topics(0).partitions()) {
    EXPECT_EQ(p.replicas_size(), 3);
    EXPECT_EQ(as_set(p.replicas()), (std::set<int>{1, 2, 3}));
    EXPECT_EQ(as_set(p.isr()), (std::set<int>{1, 2, 3}));
    EXPECT_EQ(p.leader(), p.replicas(0)) << "the leader is the preferred replica";
    ++leads[p.leader()];
  }
  EXPECT_EQ(leads, (std::map<int, int>{{1, 2}, {2, 2}, {3, 2}}));
  // Every broker creates the six logs.
  for (int id : c.ids()) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 6; ++p) {
        if (!c.partition_dir_exists(id, "events", p)) return false;
      }
      return true;
    }, 10s)) << "broker " << id << " did not create the partition logs";
  }

  // SIGKILL a broker that is not the active controller: fenced within 15 s, its leaderships
  // moved, out of every ISR.
  auto d = c.describe_cluster();
  ASSERT_TRUE(d);
  const int victim = d->controller_id() == 3 ? 2 : 3;
  c.kill(victim, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  std::set<int> rest;
  for (int id : c.ids()) {
    if (id != victim) rest.insert(id);
  }
  ASSERT_TRUE(c.wait_unfenced(rest, 15s)) << "broker " << victim << " was not fenced within 15 s";
  std::cout << "broker " << victim << " fenced " << ms_since(killed) << " ms after SIGKILL" << std::endl;
  ASSERT_TRUE(testing::wait_until([&] {
    auto m = c.metadata({"events"});
    for (const auto& p : m.topics(0).partitions()) {
      if (p.leader() == victim || p.leader() < 0 || as_set(p.isr()).count(victim)) return false;
    }
    return true;
  }, 5s)) << "leaderships or ISR memberships of the fenced broker remain";
  md = c.metadata({"events"});
  for (const auto& p : md.topics(0).partitions()) {
    EXPECT_EQ(p.isr_size(), 2);
    EXPECT_TRUE(as_set(p.offline_replicas()).count(victim));
  }

  // Restarted, it registers again (a new broker epoch) and is unfenced.
  const int64_t old_epoch = [&] {
    for (const auto& b : d->brokers()) {
      if (b.broker_id() == victim) return b.broker_epoch();
    }
    return int64_t{-1};
  }();
  c.start(victim);
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 15s)) << "the restarted broker was not unfenced";
  d = c.describe_cluster();
  ASSERT_TRUE(d);
  for (const auto& b : d->brokers()) {
    if (b.broker_id() == victim) EXPECT_GT(b.broker_epoch(), old_epoch);
    EXPECT_GE(b.metadata_offset(), 0) << "broker " << b.broker_id() << " reported no metadata offset";
  }

  // Deleting the topic removes its directories everywhere.
  ASSERT_EQ(c.delete_topic("events"), gannet::v1::NONE);
  EXPECT_EQ(c.metadata({"events"}).topics(0).error_code(), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  for (int id : c.ids()) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 6; ++p) {
        if (c.partition_dir_exists(id, "events", p)) return false;
      }
      return true;
    }, 10s)) << "broker " << id << " kept the deleted topic's directories";
  }
}

TEST(ClusterProcess, BadInputsGetTypedErrors) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));

  for (const std::string& bad : {std::string(""), std::string("a b"), std::string("."), std::string(".."),
                                 std::string(250, 'a'), std::string("x/y"), std::string("__cluster_metadata")}) {
    EXPECT_EQ(c.create_error(bad, 1, 1), gannet::v1::INVALID_TOPIC_EXCEPTION) << "name '" << bad << "'";
  }
  ASSERT_EQ(c.create_error("orders", 3, 2), gannet::v1::NONE);
  EXPECT_EQ(c.create_error("orders", 3, 2), gannet::v1::TOPIC_ALREADY_EXISTS);
  EXPECT_EQ(c.create_error("wide", 1, 4), gannet::v1::INVALID_REPLICATION_FACTOR);
  EXPECT_EQ(c.create_error("huge", 1'000'000, 1), gannet::v1::INVALID_PARTITIONS);
  EXPECT_EQ(c.create_error("cfg1", 1, 1, {{"retention.ms", "soon"}}), gannet::v1::INVALID_CONFIG);
  EXPECT_EQ(c.create_error("cfg2", 1, 3, {{"min.insync.replicas", "4"}}), gannet::v1::INVALID_CONFIG);
  EXPECT_EQ(c.create_error("cfg3", 1, 1, {{"no.such.config", "1"}}), gannet::v1::INVALID_CONFIG);
  EXPECT_EQ(c.create_error("cfg4", 1, 1, {{"cleanup.policy", "shred"}}), gannet::v1::INVALID_CONFIG);
  EXPECT_EQ(c.metadata({"cfg1"}).topics(0).error_code(), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION)
      << "a refused topic must not exist";

  EXPECT_EQ(c.delete_topic("nope"), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(c.add_partitions("nope", 4), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(c.add_partitions("orders", 2), gannet::v1::INVALID_PARTITIONS);
  EXPECT_EQ(c.add_partitions("orders", 3), gannet::v1::INVALID_PARTITIONS);
  ASSERT_EQ(c.add_partitions("orders", 5), gannet::v1::NONE);
  EXPECT_EQ(c.metadata({"orders"}).topics(0).partitions_size(), 5);

  EXPECT_EQ(c.alter_config("nope", {{"retention.ms", "1000"}}), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(c.alter_config("orders", {{"retention.ms", "-5x"}}), gannet::v1::INVALID_CONFIG);
  EXPECT_EQ(c.alter_config("orders", {{"min.insync.replicas", "3"}}), gannet::v1::INVALID_CONFIG);
  ASSERT_EQ(c.alter_config("orders", {{"retention.ms", "3600000"}, {"cleanup.policy", "compact"}}), gannet::v1::NONE);
  ASSERT_EQ(c.alter_config("orders", {}, {"cleanup.policy"}), gannet::v1::NONE);
  auto md = c.metadata({"orders"});
  std::map<std::string, std::string> cfg;
  for (const auto& e : md.topics(0).configs()) cfg[e.name()] = e.value();
  EXPECT_EQ(cfg, (std::map<std::string, std::string>{{"retention.ms", "3600000"}}));

  // Straight to the controllers: a follower says NOT_CONTROLLER and names the active one.
  auto d = c.describe_cluster();
  ASSERT_TRUE(d);
  const int active = d->controller_id();
  const int follower = active == 1 ? 2 : 1;
  {
    cv1::CreateTopicsRequest req;
    req.add_topics()->set_name("direct");
    cv1::CreateTopicsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.controller(follower)->CreateTopics(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error_code(), gannet::v1::NOT_CONTROLLER);
    EXPECT_EQ(resp.controller().controller_id(), active);
    EXPECT_FALSE(resp.controller().controller_address().empty());
  }
  // AlterPartition with stale epochs, heartbeats and registrations that do not fit.
  md = c.metadata({"orders"});
  const auto& p0 = md.topics(0).partitions(0);
  int64_t leader_epoch_of_broker = -1;
  for (const auto& b : d->brokers()) {
    if (b.broker_id() == p0.leader()) leader_epoch_of_broker = b.broker_epoch();
  }
  auto alter = [&](int32_t leader_epoch, int32_t partition_epoch, int64_t broker_epoch) {
    cv1::AlterPartitionRequest req;
    req.set_broker_id(p0.leader());
    req.set_broker_epoch(broker_epoch);
    req.set_topic_id(md.topics(0).topic_id());
    req.set_partition(0);
    req.set_leader_epoch(leader_epoch);
    req.set_partition_epoch(partition_epoch);
    req.add_new_isr(p0.leader());
    cv1::AlterPartitionResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    EXPECT_TRUE(c.controller(active)->AlterPartition(&ctx, req, &resp).ok());
    return resp.error_code();
  };
  EXPECT_EQ(alter(p0.leader_epoch() - 1, p0.partition_epoch(), leader_epoch_of_broker), gannet::v1::FENCED_LEADER_EPOCH);
  EXPECT_EQ(alter(p0.leader_epoch(), p0.partition_epoch() + 7, leader_epoch_of_broker), gannet::v1::INVALID_UPDATE_VERSION);
  EXPECT_EQ(alter(p0.leader_epoch(), p0.partition_epoch(), leader_epoch_of_broker + 1000), gannet::v1::STALE_BROKER_EPOCH);
  // A valid shrink is accepted and bumps the partition epoch (brokers learn it from the log). The
  // real leader may already have taken its caught-up follower back (another AlterPartition, one
  // more epoch) by the time a broker's image is read: either state shows the shrink committed.
  EXPECT_EQ(alter(p0.leader_epoch(), p0.partition_epoch(), leader_epoch_of_broker), gannet::v1::NONE);
  EXPECT_TRUE(testing::wait_until([&] {
    auto after = c.metadata({"orders"}).topics(0).partitions(0);
    const bool shrunk = after.isr_size() == 1 && after.partition_epoch() == p0.partition_epoch() + 1;
    const bool shrunk_and_rejoined = after.isr_size() == 2 && after.partition_epoch() == p0.partition_epoch() + 2;
    return (shrunk || shrunk_and_rejoined) && after.leader_epoch() == p0.leader_epoch();
  }, 5s)) << c.metadata({"orders"}).topics(0).partitions(0).ShortDebugString();
  // The same request again is stale now.
  EXPECT_EQ(alter(p0.leader_epoch(), p0.partition_epoch(), leader_epoch_of_broker), gannet::v1::INVALID_UPDATE_VERSION);
  {
    cv1::BrokerHeartbeatRequest req;
    req.set_broker_id(1);
    req.set_broker_epoch(123456789);
    cv1::BrokerHeartbeatResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.controller(active)->BrokerHeartbeat(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error_code(), gannet::v1::STALE_BROKER_EPOCH);
  }
  {
    cv1::BrokerRegistrationRequest req;
    req.set_broker_id(9);
    req.set_cluster_id("some-other-cluster");
    req.set_incarnation_id(std::string(16, 'x'));
    cv1::BrokerRegistrationResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.controller(active)->BrokerRegistration(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error_code(), gannet::v1::INCONSISTENT_CLUSTER_ID);
  }
  // Garbage bytes on the wire get a gRPC error, and the cluster keeps serving.
  {
    auto channel = grpc::CreateChannel(c.bootstrap().substr(0, c.bootstrap().find(',')), grpc::InsecureChannelCredentials());
    grpc::GenericStub generic(channel);
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    grpc::Slice junk(std::string("\xff\xff\xff\xff\x0f garbage", 14));
    grpc::ByteBuffer in(&junk, 1), out;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status st;
    generic.UnaryCall(&ctx, "/gannet.broker.v1.Broker/CreateTopics", grpc::StubOptions(), &in, &out,
                      [&](grpc::Status s) {
                        std::lock_guard<std::mutex> l(mu);
                        st = s;
                        done = true;
                        cv.notify_all();
                      });
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, 10s, [&] { return done; }));
    EXPECT_FALSE(st.ok()) << "a request that does not parse must fail";
  }
  // Raw appends to the metadata log (a debugging RPC) are off by default: they would bypass the
  // controller's validation.
  {
    auto quorum = raft::v1::Quorum::NewStub(Cluster::channel(c.controller_port(active)));
    raft::v1::AppendRequest req;
    req.add_records("garbage");
    raft::v1::AppendResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(quorum->Append(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error(), gannet::v1::INVALID_REQUEST) << resp.message();
  }
  EXPECT_EQ(c.create_error("still-serving", 2, 3), gannet::v1::NONE);
  EXPECT_TRUE(c.wait_unfenced({1, 2, 3}, 1s));
}

// What generic gRPC tools need: the standard health service answers SERVING, and server
// reflection lists the services, on the client listener and on the controller's.
TEST(ClusterProcess, HealthAndReflectionServeGenericTools) {
  Cluster c(1);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1}, 30s));
  for (int port : {c.client_port(1), c.controller_port(1)}) {
    SCOPED_TRACE("port " + std::to_string(port));
    auto channel = Cluster::channel(port);
    grpc::GenericStub generic(channel);
    // grpc.health.v1.Health/Check with an empty HealthCheckRequest (service ""): status 1 SERVING.
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      grpc::ByteBuffer in, out;
      grpc::Slice empty("", 0);
      in = grpc::ByteBuffer(&empty, 1);
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      grpc::Status st;
      generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
        std::lock_guard<std::mutex> l(mu);
        st = s;
        done = true;
        cv.notify_all();
      });
      std::unique_lock<std::mutex> l(mu);
      ASSERT_TRUE(cv.wait_for(l, 15s, [&] { return done; }));
      ASSERT_TRUE(st.ok()) << st.error_message();
      std::vector<grpc::Slice> slices;
      ASSERT_TRUE(out.Dump(&slices).ok());
      std::string bytes;
      for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";
    }
    // grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo with list_services (field 7).
    {
      grpc::CompletionQueue cq;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      auto call = generic.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
      auto step = [&](int tag) {
        void* got = nullptr;
        bool ok = false;
        EXPECT_TRUE(cq.Next(&got, &ok));
        EXPECT_EQ(got, reinterpret_cast<void*>(static_cast<intptr_t>(tag)));
        return ok;
      };
      call->StartCall(reinterpret_cast<void*>(1));
      ASSERT_TRUE(step(1));
      grpc::Slice req(std::string("\x3a\x00", 2));
      grpc::ByteBuffer bb(&req, 1);
      call->Write(bb, reinterpret_cast<void*>(2));
      ASSERT_TRUE(step(2));
      grpc::ByteBuffer resp;
      call->Read(&resp, reinterpret_cast<void*>(3));
      ASSERT_TRUE(step(3));
      call->WritesDone(reinterpret_cast<void*>(4));
      step(4);
      grpc::Status st;
      call->Finish(&st, reinterpret_cast<void*>(5));
      step(5);
      std::vector<grpc::Slice> slices;
      ASSERT_TRUE(resp.Dump(&slices).ok());
      std::string bytes;
      for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
      if (port == c.client_port(1)) {
        EXPECT_NE(bytes.find("gannet.broker.v1.Broker"), std::string::npos) << "reflection lists the client API";
      } else {
        EXPECT_NE(bytes.find("gannet.controller.v1.Controller"), std::string::npos);
      }
      cq.Shutdown();
      void* t;
      bool ok;
      while (cq.Next(&t, &ok)) {
      }
    }
  }
}

TEST(ClusterProcess, ControllerFailoverAndControlledShutdown) {
  Cluster c(3, "leader.imbalance.check.interval.seconds=1\n");
  c.start_all();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  std::cout << "all three unfenced " << ms_since(t0) << " ms after start" << std::endl;
  ASSERT_EQ(c.create_error("before", 6, 3), gannet::v1::NONE);
  auto d = c.describe_cluster();
  ASSERT_TRUE(d);
  const int old_controller = d->controller_id();

  // Producer ids: every broker gives them from its own block, so none repeats.
  auto init_producer_id = [&](int id, std::optional<std::string> txn = std::nullopt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 15s);
    bv1::InitProducerIdRequest req;
    if (txn) req.set_transactional_id(*txn);
    bv1::InitProducerIdResponse resp;
    grpc::Status st = c.broker(id)->InitProducerId(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  std::set<int64_t> pids;
  int64_t highest = -1;
  for (int round = 0; round < 3; ++round) {
    for (int id : c.ids()) {
      auto r = init_producer_id(id);
      ASSERT_EQ(r.error_code(), gannet::v1::NONE) << r.error_message();
      EXPECT_EQ(r.producer_epoch(), 0);
      EXPECT_TRUE(pids.insert(r.producer_id()).second) << "producer id " << r.producer_id() << " given twice";
      highest = std::max(highest, r.producer_id());
    }
  }
  EXPECT_EQ(init_producer_id(1, "tx").error_code(), gannet::v1::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
      << "a transactional id is refused until transactions exist";

  // SIGKILL the active controller; a new one accepts CreateTopics.
  c.kill(old_controller, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  int64_t took = -1;
  ASSERT_TRUE(testing::wait_until([&] {
    if (c.create_error("after", 3, 2) != gannet::v1::NONE) return false;
    took = ms_since(killed);
    return true;
  }, 20s, 20ms)) << "no controller accepted CreateTopics after the active one was killed";
  std::cout << "controller failover: CreateTopics accepted " << took << " ms after SIGKILL of controller "
            << old_controller << std::endl;
  EXPECT_LT(took, 5000);
  auto d2 = c.describe_cluster();
  ASSERT_TRUE(d2);
  EXPECT_NE(d2->controller_id(), old_controller);
  EXPECT_GT(d2->quorum_epoch(), d->quorum_epoch());
  // The restarted node registers again: a new broker epoch, then unfenced.
  c.start(old_controller);
  ASSERT_TRUE(testing::wait_until([&] {
    auto now = c.describe_cluster();
    if (!now) return false;
    for (const auto& b : now->brokers()) {
      if (b.broker_id() == old_controller) {
        for (const auto& old : d->brokers()) {
          if (old.broker_id() == old_controller && b.broker_epoch() > old.broker_epoch() && !b.fenced()) return true;
        }
      }
    }
    return false;
  }, 20s)) << "the restarted controller's broker did not register again and unfence";
  // The restarted broker's first producer id comes from a block the new controller allocated:
  // above every block the old one gave out.
  auto fresh = init_producer_id(old_controller);
  ASSERT_EQ(fresh.error_code(), gannet::v1::NONE) << fresh.error_message();
  EXPECT_GT(fresh.producer_id(), highest) << "a producer id block was given out twice across a controller failover";
  EXPECT_FALSE(pids.count(fresh.producer_id()));

  // Controlled shutdown: SIGTERM; the broker leaves leading nothing and exits promptly.
  auto md = c.metadata({"before"});
  int target = -1;
  for (const auto& p : md.topics(0).partitions()) {
    if (p.leader() >= 0 && p.leader() != d2->controller_id()) target = p.leader();
  }
  if (target < 0) target = md.topics(0).partitions(0).leader();
  ASSERT_GE(target, 0);
  // Partitions with another ISR member must get a new leader; the rest go leaderless (unclean
  // election is off) rather than stay with the stopped broker.
  std::map<std::string, bool> other_in_isr;
  const auto before_stop = c.metadata({"before", "after"});
  for (const auto& t : before_stop.topics()) {
    for (const auto& p : t.partitions()) {
      other_in_isr[t.name() + "-" + std::to_string(p.partition())] = p.isr_size() > 1;
    }
  }
  const auto term = std::chrono::steady_clock::now();
  c.kill(target, SIGTERM);
  const int64_t stop_ms = ms_since(term);
  std::cout << "controlled shutdown of broker " << target << " took " << stop_ms << " ms" << std::endl;
  EXPECT_LT(stop_ms, 15000);
  md = c.metadata({"before", "after"});
  for (const auto& t : md.topics()) {
    for (const auto& p : t.partitions()) {
      EXPECT_NE(p.leader(), target) << t.name() << "-" << p.partition() << " is still led by the stopped broker";
      if (other_in_isr[t.name() + "-" + std::to_string(p.partition())]) {
        EXPECT_GE(p.leader(), 0) << t.name() << "-" << p.partition() << " has no leader";
      }
    }
  }
  std::ifstream log(c.log_path(target));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("controlled shutdown confirmed"), std::string::npos);
}

// Separate roles: three controller-only nodes (the quorum) and two broker-only nodes that follow
// the metadata log as observers. Only the brokers host partitions; losing a broker fences it.
TEST(ClusterProcess, ControllerOnlyAndBrokerOnlyNodes) {
  Cluster c(5, "", /*controllers=*/3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({4, 5}, 30s)) << "the broker-only nodes did not register and unfence";
  auto d = c.describe_cluster();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->brokers_size(), 2) << "controller-only nodes are not brokers";
  EXPECT_GE(d->controller_id(), 1);
  EXPECT_LE(d->controller_id(), 3);
  EXPECT_EQ(c.create_error("wide", 1, 3), gannet::v1::INVALID_REPLICATION_FACTOR) << "only 2 brokers";
  ASSERT_EQ(c.create_error("pair", 4, 2), gannet::v1::NONE);
  auto md = c.metadata({"pair"});
  std::map<int, int> leads;
  for (const auto& p : md.topics(0).partitions()) {
    EXPECT_EQ(as_set(p.replicas()), (std::set<int>{4, 5}));
    ++leads[p.leader()];
  }
  EXPECT_EQ(leads, (std::map<int, int>{{4, 2}, {5, 2}}));
  for (int id : {4, 5}) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 4; ++p) {
        if (!c.partition_dir_exists(id, "pair", p)) return false;
      }
      return true;
    }, 10s)) << "broker " << id << " did not create its logs";
  }
  for (int id : {1, 2, 3}) EXPECT_FALSE(c.partition_dir_exists(id, "pair", 0)) << "controller " << id << " hosts a log";
  // SIGKILL of a broker-only node: fenced, leadership moves to the other.
  c.kill(5, SIGKILL);
  ASSERT_TRUE(c.wait_unfenced({4}, 15s)) << "broker 5 was not fenced";
  ASSERT_TRUE(testing::wait_until([&] {
    const auto m = c.metadata({"pair"});
    for (const auto& p : m.topics(0).partitions()) {
      if (p.leader() != 4) return false;
    }
    return true;
  }, 5s));
  // The active controller dies too: the other two controllers carry on, and broker 4 follows.
  d = c.describe_cluster();
  ASSERT_TRUE(d);
  c.kill(d->controller_id(), SIGKILL);
  EXPECT_TRUE(testing::wait_until([&] { return c.create_error("after", 2, 1) == gannet::v1::NONE; }, 20s));
  EXPECT_TRUE(testing::wait_until([&] { return c.partition_dir_exists(4, "after", 0) || c.partition_dir_exists(4, "after", 1); }, 10s));
  c.start(5);
  EXPECT_TRUE(c.wait_unfenced({4, 5}, 20s)) << "broker 5 did not come back";
}

// Runs gannetd to completion (it must refuse to start); returns its exit code and output.
std::pair<int, std::string> run_to_exit(const std::string& config, const std::string& out) {
  const std::string cmd = "timeout 20 " + testing::runfile("broker/gannetd") + " --config " + config + " > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

TEST(ClusterProcess, DataDirectoryIdentityIsChecked) {
  const std::string dir = testing::test_dir("identity");
  const int port = testing::free_port();
  const std::string cfg = dir + "/node1.properties";
  auto write_config = [&](const std::string& extra) {
    testing::write_file(cfg, "node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@127.0.0.1:" +
                                 std::to_string(port) + "\nlisteners=CONTROLLER://127.0.0.1:" + std::to_string(port) +
                                 ",GRPC://127.0.0.1:0\nlog.dirs=" + dir + "/data\n" + extra);
  };
  write_config("");
  auto [code, out] = run_to_exit(cfg, dir + "/out1");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("not formatted"), std::string::npos) << out;

  testing::write_file(dir + "/data/meta.properties", "version=1\ncluster.id=abc\nnode.id=2\n");
  std::tie(code, out) = run_to_exit(cfg, dir + "/out2");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("node 2"), std::string::npos) << out;

  // A second process on a directory in use is refused.
  testing::write_file(dir + "/data/meta.properties", "version=1\ncluster.id=abc\nnode.id=1\n");
  {
    testing::Process first;
    first.start({testing::runfile("broker/gannetd"), "--config", cfg}, dir + "/first.log");
    ASSERT_TRUE(testing::wait_until([&] {
      std::ifstream in(dir + "/first.log");
      std::stringstream t;
      t << in.rdbuf();
      return t.str().find("running") != std::string::npos;
    }, 20s));
    std::tie(code, out) = run_to_exit(cfg, dir + "/out-locked");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("in use by another process"), std::string::npos) << out;
    first.kill(SIGKILL);
  }

  write_config("cluster.id=xyz\n");
  std::tie(code, out) = run_to_exit(cfg, dir + "/out3");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("abc"), std::string::npos) << out;
  EXPECT_NE(out.find("xyz"), std::string::npos) << out;
}

// Two brokers with one node.id would both serve that broker's partitions. The second one's
// registration evicts the first; the first, refused as stale and told that another incarnation
// holds its id, stops itself (exit 3) instead of registering again (which would evict the
// second, and so on, each time either heartbeats).
// A second process with a live broker's node.id (its own data directory), and a forged
// BrokerRegistration naming a live broker: both refused with DUPLICATE_BROKER_REGISTRATION, and
// the live brokers keep serving (before issue 19 the live one was evicted and stopped itself). The
// twin takes the id only once the first one has died and its session has expired.
TEST(ClusterProcess, ABrokerIdALiveBrokerHoldsIsRefusedUntilItsSessionEnds) {
  Cluster c(4, "", /*controllers=*/1);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({2, 3, 4}, 60s));
  // The twin: node.id 3 again, with its own data directory and client port.
  std::ifstream in(c.config(3));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string cfg = buf.str();
  const std::string dir = c.data_dir(3), twin_dir = dir + "-twin";
  cfg.replace(cfg.find(dir), dir.size(), twin_dir);
  auto d = c.describe_cluster();
  ASSERT_TRUE(d.has_value());
  int old_port = -1;
  for (const auto& b : d->brokers()) {
    if (b.broker_id() == 3 && b.endpoints_size() > 0) old_port = b.endpoints(0).port();
  }
  ASSERT_GT(old_port, 0);
  const std::string old_listener = "GRPC://127.0.0.1:" + std::to_string(old_port);
  const int twin_port = testing::free_port();
  ASSERT_NE(cfg.find(old_listener), std::string::npos) << cfg;
  cfg.replace(cfg.find(old_listener), old_listener.size(), "GRPC://127.0.0.1:" + std::to_string(twin_port));
  // And a Kafka listener of its own (the first broker holds its port).
  const std::string old_kafka = "PLAINTEXT://127.0.0.1:" + std::to_string(c.kafka_port(3));
  ASSERT_NE(cfg.find(old_kafka), std::string::npos) << cfg;
  cfg.replace(cfg.find(old_kafka), old_kafka.size(), "PLAINTEXT://127.0.0.1:" + std::to_string(testing::free_port()));
  // And a metrics listener of its own.
  const std::string old_metrics = "metrics.http.listener=127.0.0.1:" + std::to_string(c.metrics_port(3));
  ASSERT_NE(cfg.find(old_metrics), std::string::npos) << cfg;
  cfg.replace(cfg.find(old_metrics), old_metrics.size(),
              "metrics.http.listener=127.0.0.1:" + std::to_string(testing::free_port()));
  const std::string twin_config = c.config(3) + "-twin", twin_log = c.log_path(3) + "-twin";
  testing::write_file(twin_config, cfg);
  testing::write_file(twin_dir + "/meta.properties",
                      std::string("version=1\ncluster.id=") + kClusterId + "\nnode.id=3\n");
  testing::Process twin;
  twin.start({testing::runfile("broker/gannetd"), "--config", twin_config}, twin_log);

  // The twin is refused while broker 3 heartbeats: broker 3 keeps its registration and serves.
  ASSERT_TRUE(testing::wait_until([&] { return testing::contains(testing::read_file(twin_log), "DUPLICATE_BROKER_REGISTRATION"); },
                                  30s))
      << testing::read_file(twin_log);
  std::this_thread::sleep_for(3s);  // several heartbeats and twin retries
  int status = 0;
  EXPECT_FALSE(c.exited(3, &status)) << "the live broker 3 stopped";
  auto serves = [&](int port) {
    auto now = c.describe_cluster();
    if (!now) return false;
    for (const auto& b : now->brokers()) {
      if (b.broker_id() == 3) return !b.fenced() && b.endpoints_size() > 0 && b.endpoints(0).port() == port;
    }
    return false;
  };
  EXPECT_TRUE(serves(old_port)) << "broker 3's registration changed";
  // A forged registration naming broker 2 (a new incarnation id, nothing else): refused.
  {
    cv1::BrokerRegistrationRequest req;
    req.set_broker_id(2);
    req.set_cluster_id(kClusterId);
    req.set_incarnation_id(std::string(16, 'x'));
    auto* e = req.add_endpoints();
    e->set_name("GRPC");
    e->set_host("127.0.0.1");
    e->set_port(1);
    cv1::BrokerRegistrationResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.controller(1)->BrokerRegistration(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error_code(), gannet::v1::DUPLICATE_BROKER_REGISTRATION) << resp.error_message();
    std::this_thread::sleep_for(2s);
    EXPECT_FALSE(c.exited(2, &status)) << "a forged registration stopped broker 2";
    auto d2 = c.describe_cluster();
    ASSERT_TRUE(d2.has_value());
    for (const auto& b : d2->brokers()) {
      if (b.broker_id() == 2) EXPECT_FALSE(b.fenced()) << "broker 2 was fenced by a forged registration";
    }
  }
  // A forged heartbeat naming broker 2 learns nothing it could forge a registration with: the
  // answer does not carry broker 2's incarnation id (it once did).
  {
    const std::string incarnation = testing::read_file(c.data_dir(2) + "/broker-incarnation");
    ASSERT_EQ(incarnation.size(), 16u);
    cv1::BrokerHeartbeatRequest req;
    req.set_broker_id(2);
    req.set_broker_epoch(424242);
    req.set_incarnation_id(std::string(16, 'y'));
    cv1::BrokerHeartbeatResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.controller(1)->BrokerHeartbeat(&ctx, req, &resp).ok());
    if (resp.error_code() == gannet::v1::NOT_CONTROLLER) {
      // Asked a follower: ask the active controller it names.
      grpc::ClientContext ctx2;
      ctx2.set_deadline(std::chrono::system_clock::now() + 10s);
      ASSERT_TRUE(c.controller(resp.controller().controller_id())->BrokerHeartbeat(&ctx2, req, &resp).ok());
    }
    EXPECT_EQ(resp.error_code(), gannet::v1::STALE_BROKER_EPOCH) << resp.error_message();
    EXPECT_TRUE(resp.registered_by_another());
    EXPECT_EQ(resp.SerializeAsString().find(incarnation), std::string::npos) << "the answer carries broker 2's incarnation id";
    EXPECT_EQ(resp.error_message().find(incarnation), std::string::npos);
  }
  // Broker 3 dies: once its session has expired, the twin registers and serves as broker 3.
  c.kill(3, SIGKILL);
  EXPECT_TRUE(testing::wait_until([&] { return serves(twin_port); }, 40s)) << testing::read_file(twin_log);
  int twin_status = 0;
  EXPECT_FALSE(twin.reap(&twin_status)) << "the twin exited";
  twin.kill(SIGTERM);
}

}  // namespace
}  // namespace gannet
