// A cluster of real gannetd processes on free loopback ports for multi-process tests: combined
// nodes by default, or controller-only plus broker-only nodes; data directories formatted for
// the test cluster; stubs that reconnect quickly to restarted nodes; helpers for the admin API.
// Every process is killed when the Cluster goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/broker.grpc.pb.h"
#include "proto/controller.grpc.pb.h"
#include "testing/process_harness.h"

// The harness is used by benchmarks too (no GoogleTest there): a failed call is reported, and the
// caller's own checks of the (empty) answer fail.
#define GANNET_HARNESS_CHECK(x)                                                  \
  do {                                                                           \
    if (!(x)) std::fprintf(stderr, "cluster harness: call failed: %s\n", #x);  \
  } while (0)

namespace gannet::testing {

using namespace std::chrono_literals;
namespace bv1 = broker::v1;
namespace cv1 = controller::v1;
using gannet::v1::ErrorCode;

inline constexpr const char* kClusterId = "gannet-test-cluster";

// "a,b,c" -> {a, b, c}.
inline std::vector<std::string> split_addresses(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    const std::string part = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

class Cluster {
 public:
  // n combined nodes; or, with `controllers` > 0, nodes 1..controllers controller-only and the
  // rest broker-only (observers of the metadata log). `kafka_listeners`: more Kafka listeners on
  // every broker (names such as SASL_SSL, mapped to protocols by listener.security.protocol.map's
  // default or by `extra`), each on a free port (kafka_port(id, name)).
  explicit Cluster(int n, const std::string& extra = "", int controllers = 0,
                   const std::vector<std::string>& kafka_listeners = {})
      : dir_(test_dir("cluster")) {
    for (int i = 1; i <= n; ++i) {
      const bool controller = controllers == 0 || i <= controllers;
      const bool broker = controllers == 0 || i > controllers;
      if (controller) controller_ports_[i] = free_port();
      if (broker) client_ports_[i] = free_port();
      if (broker) kafka_ports_[i] = free_port();
      if (broker) metrics_ports_[i] = free_port();
      if (broker) {
        for (const std::string& name : kafka_listeners) named_kafka_ports_[{i, name}] = free_port();
      }
    }
    std::string voters;
    for (const auto& [id, port] : controller_ports_) {
      voters += (voters.empty() ? "" : ",") + std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    for (int id = 1; id <= n; ++id) {
      const bool controller = controller_ports_.count(id) > 0;
      const bool broker = client_ports_.count(id) > 0;
      std::string listeners, roles;
      if (controller) listeners = "CONTROLLER://127.0.0.1:" + std::to_string(controller_ports_[id]);
      if (broker) {
        listeners += (listeners.empty() ? "" : ",") + std::string("GRPC://127.0.0.1:") +
                     std::to_string(client_ports_[id]) + ",PLAINTEXT://127.0.0.1:" + std::to_string(kafka_ports_[id]);
        for (const std::string& name : kafka_listeners) {
          listeners += "," + name + "://127.0.0.1:" + std::to_string(named_kafka_ports_[{id, name}]);
        }
      }
      roles = controller && broker ? "broker,controller" : (controller ? "controller" : "broker");
      write_file(config(id),
                          "node.id=" + std::to_string(id) + "\nprocess.roles=" + roles +
                              "\ncontroller.quorum.voters=" + voters + "\nlisteners=" + listeners +
                              "\ncontroller.listener.names=CONTROLLER\nlog.dirs=" + data_dir(id) +
                              "\ncontroller.quorum.election.timeout.ms=500"
                              "\ncontroller.quorum.fetch.timeout.ms=1000"
                              "\nbroker.heartbeat.interval.ms=500"
                              "\nbroker.session.timeout.ms=4000\n" +
                              (broker ? "metrics.http.listener=127.0.0.1:" + std::to_string(metrics_ports_[id]) + "\n"
                                      : std::string()) +
                              extra);
      write_file(data_dir(id) + "/meta.properties",
                          std::string("version=1\ncluster.id=") + kClusterId + "\nnode.id=" + std::to_string(id) + "\n");
      if (broker) broker_stubs_[id] = bv1::Broker::NewStub(channel(client_ports_[id]));
      if (controller) controller_stubs_[id] = cv1::Controller::NewStub(channel(controller_ports_[id]));
      procs_[id] = std::make_unique<Process>();
    }
  }

  // A channel that reconnects quickly to a (re)started server.
  static std::shared_ptr<grpc::Channel> channel(int port) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    auto& tls = credentials();
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                     tls ? tls : grpc::InsecureChannelCredentials(), args);
  }
  // How the harness dials the nodes: plaintext unless a test of TLS listeners sets its client
  // credentials here before it builds the cluster (and resets them to null after).
  static std::shared_ptr<grpc::ChannelCredentials>& credentials() {
    static std::shared_ptr<grpc::ChannelCredentials> c;
    return c;
  }

  std::string config(int id) const { return dir_ + "/node" + std::to_string(id) + ".properties"; }
  std::string data_dir(int id) const { return dir_ + "/data" + std::to_string(id); }
  std::string log_path(int id) const { return dir_ + "/node" + std::to_string(id) + ".log"; }
  std::vector<int> ids() const {
    std::vector<int> v;
    for (const auto& [id, p] : procs_) v.push_back(id);
    return v;
  }
  bool running(int id) const { return procs_.at(id)->running(); }
  pid_t pid(int id) const { return procs_.at(id)->pid(); }
  std::string bootstrap() const {
    std::string s;
    for (const auto& [id, port] : client_ports_) s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
    return s;
  }

  // Kafka's protocol: node `id`'s PLAINTEXT listener, and every broker's, for -b / bootstrap.servers.
  int kafka_port(int id) const { return kafka_ports_.at(id); }
  int kafka_port(int id, const std::string& listener) const { return named_kafka_ports_.at({id, listener}); }
  std::string kafka_bootstrap(const std::string& listener) const {
    std::string s;
    for (const auto& [key, port] : named_kafka_ports_) {
      if (key.second == listener) s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
    }
    return s;
  }
  std::string kafka_bootstrap() const {
    std::string s;
    for (const auto& [id, port] : kafka_ports_) s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
    return s;
  }

  void start(int id) {
    procs_[id]->start({runfile("broker/gannetd"), "--config", config(id)}, log_path(id));
  }
  void start_all() {
    for (int id : ids()) start(id);
  }
  void kill(int id, int sig) { procs_[id]->kill(sig); }
  // Whether node `id` has exited on its own (reaped; its wait status in *status).
  bool exited(int id, int* status) { return procs_[id]->reap(status); }

  // A live broker to ask.
  int any_live(int avoid = -1) const {
    for (const auto& [id, p] : procs_) {
      if (p->running() && id != avoid && broker_stubs_.count(id)) return id;
    }
    return -1;
  }

  std::optional<cv1::DescribeClusterResponse> describe_cluster(int via = -1) {
    if (via < 0) via = any_live();
    cv1::DescribeClusterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    grpc::Status st = broker_stubs_[via]->DescribeCluster(&ctx, {}, &resp);
    if (!st.ok()) return std::nullopt;
    if (resp.error_code() != gannet::v1::NONE) return std::nullopt;
    return resp;
  }

  // Waits until exactly the given brokers are unfenced.
  bool wait_unfenced(const std::set<int>& want, std::chrono::milliseconds timeout) {
    const bool ok = wait_until([&] {
      auto d = describe_cluster();
      if (!d) return false;
      std::set<int> unfenced;
      for (const auto& b : d->brokers()) {
        if (!b.fenced()) unfenced.insert(b.broker_id());
      }
      return unfenced == want;
    }, timeout, 100ms);
    if (!ok) dump_logs();  // why, for the failure that follows
    return ok;
  }

  // The last lines of every node's log, on stderr.
  void dump_logs(size_t lines = 30) const {
    for (const auto& [id, p] : procs_) {
      std::ifstream in(log_path(id));
      std::vector<std::string> tail;
      for (std::string l; std::getline(in, l);) {
        tail.push_back(l);
        if (tail.size() > lines) tail.erase(tail.begin());
      }
      std::fprintf(stderr, "---- node %d (%s), last %zu lines of %s ----\n", id, p->running() ? "running" : "not running",
                   tail.size(), log_path(id).c_str());
      for (const auto& l : tail) std::fprintf(stderr, "%s\n", l.c_str());
    }
  }

  bv1::MetadataResponse metadata(const std::vector<std::string>& topics, int via = -1) {
    if (via < 0) via = any_live();
    bv1::MetadataRequest req;
    for (const auto& t : topics) req.add_topics(t);
    bv1::MetadataResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    GANNET_HARNESS_CHECK(broker_stubs_[via]->Metadata(&ctx, req, &resp).ok());
    return resp;
  }

  cv1::CreateTopicsResponse create(const std::string& name, int partitions, int rf,
                                   const std::map<std::string, std::string>& configs = {}, int via = -1) {
    if (via < 0) via = any_live();
    cv1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_num_partitions(partitions);
    t->set_replication_factor(rf);
    for (const auto& [k, v] : configs) {
      auto* c = t->add_configs();
      c->set_name(k);
      c->set_value(v);
    }
    cv1::CreateTopicsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    grpc::Status st = broker_stubs_[via]->CreateTopics(&ctx, req, &resp);
    if (!st.ok()) resp.set_error_message("gRPC: " + st.error_message());
    return resp;
  }

  // The per-topic error of a one-topic create (or the request-level one).
  ErrorCode create_error(const std::string& name, int partitions, int rf,
                         const std::map<std::string, std::string>& configs = {}) {
    auto r = create(name, partitions, rf, configs);
    if (r.error_code() != gannet::v1::NONE || r.topics_size() != 1) return r.error_code();
    return r.topics(0).error_code();
  }

  ErrorCode delete_topic(const std::string& name) {
    cv1::DeleteTopicsRequest req;
    req.add_names(name);
    cv1::DeleteTopicsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    GANNET_HARNESS_CHECK(broker_stubs_[any_live()]->DeleteTopics(&ctx, req, &resp).ok());
    if (resp.error_code() != gannet::v1::NONE || resp.topics_size() != 1) return resp.error_code();
    return resp.topics(0).error_code();
  }

  ErrorCode add_partitions(const std::string& name, int total) {
    cv1::CreatePartitionsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_count(total);
    cv1::CreatePartitionsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    GANNET_HARNESS_CHECK(broker_stubs_[any_live()]->CreatePartitions(&ctx, req, &resp).ok());
    if (resp.error_code() != gannet::v1::NONE || resp.topics_size() != 1) return resp.error_code();
    return resp.topics(0).error_code();
  }

  ErrorCode alter_config(const std::string& topic, const std::map<std::string, std::string>& set,
                         const std::vector<std::string>& remove = {}) {
    cv1::AlterConfigsRequest req;
    auto* r = req.add_resources();
    r->set_topic(topic);
    for (const auto& [k, v] : set) {
      auto* c = r->add_set();
      c->set_name(k);
      c->set_value(v);
    }
    for (const auto& k : remove) r->add_remove(k);
    cv1::AlterConfigsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // a node just (re)started: wait for it to listen
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    GANNET_HARNESS_CHECK(broker_stubs_[any_live()]->AlterConfigs(&ctx, req, &resp).ok());
    if (resp.error_code() != gannet::v1::NONE || resp.resources_size() != 1) return resp.error_code();
    return resp.resources(0).error_code();
  }

  cv1::Controller::Stub* controller(int id) { return controller_stubs_[id].get(); }
  // Broker `id`'s metrics.http.listener port.
  int metrics_port(int id) { return metrics_ports_[id]; }
  bv1::Broker::Stub* broker(int id) { return broker_stubs_[id].get(); }

  // Commits `offset` of topic-partition for `group`, from outside the group, on the group's
  // coordinator (found first, through a live broker). Returns the coordinator's node id, or -1
  // when that did not succeed within 30 s.
  int commit_offset(const std::string& group, const std::string& topic, int32_t partition, int64_t offset) {
    int32_t coordinator = -1;
    const bool found = wait_until([&] {
      bv1::FindCoordinatorRequest req;
      req.set_key(group);
      bv1::FindCoordinatorResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      if (!broker_stubs_[any_live()]->FindCoordinator(&ctx, req, &resp).ok() ||
          resp.error_code() != gannet::v1::NONE) {
        return false;
      }
      coordinator = resp.node_id();
      return true;
    }, std::chrono::seconds(30), std::chrono::milliseconds(200));
    if (!found || !broker_stubs_.count(coordinator)) return -1;
    const bool committed = wait_until([&] {
      bv1::OffsetCommitRequest req;
      req.set_group_id(group);
      req.set_generation_id(-1);
      auto* t = req.add_topics();
      t->set_name(topic);
      auto* p = t->add_partitions();
      p->set_partition(partition);
      p->set_committed_offset(offset);
      p->set_committed_leader_epoch(-1);
      bv1::OffsetCommitResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      return broker_stubs_[coordinator]->OffsetCommit(&ctx, req, &resp).ok() && resp.topics_size() == 1 &&
             resp.topics(0).partitions(0).error_code() == gannet::v1::NONE;
    }, std::chrono::seconds(30), std::chrono::milliseconds(200));
    return committed ? coordinator : -1;
  }
  int controller_port(int id) const { return controller_ports_.at(id); }
  int client_port(int id) const { return client_ports_.at(id); }

  bool partition_dir_exists(int id, const std::string& topic, int p) const {
    return std::filesystem::exists(data_dir(id) + "/" + topic + "-" + std::to_string(p));
  }

 private:
  std::string dir_;
  std::map<int, int> controller_ports_, client_ports_, kafka_ports_, metrics_ports_;
  std::map<std::pair<int, std::string>, int> named_kafka_ports_;
  std::map<int, std::unique_ptr<bv1::Broker::Stub>> broker_stubs_;
  std::map<int, std::unique_ptr<cv1::Controller::Stub>> controller_stubs_;
  std::map<int, std::unique_ptr<Process>> procs_;  // killed on destruction
};

}  // namespace gannet::testing
