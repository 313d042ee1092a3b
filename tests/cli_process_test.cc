// The `gannet` command line against a real cluster: three gannetd processes on loopback, each a
// combined node (broker + controller), driven only through the binary (exit status, stdout and
// stderr checked separately). Cluster info until every broker is unfenced; the topic lifecycle
// (create, list, describe, alter-config, add-partitions, delete) with text and JSON output;
// every error path's typed code and exit status (cluster errors 1, usage errors 2, an
// unreachable address 1 naming it); a dead first bootstrap address; deleted topics' directories
// going from the live nodes; `storage format` / `storage random-uuid`, and a node formatted by
// the CLI that starts and reports the formatted cluster id.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testing/cli_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr const char* kClusterId = "gannet-cli-test-cluster";

using testing::CliRun;
using testing::contains;
using testing::field;
using testing::gannet_cli;
using testing::objects;
using testing::parse_json;
using testing::read_file;
using testing::shell_quote;
using testing::str;

// More soft accessors (a missing number reads as -1).
int num(const Struct& s, const std::string& key) {
  const Value& v = field(s, key);
  return v.kind_case() == Value::kNumberValue ? static_cast<int>(v.number_value()) : -1;
}
std::vector<int> ints(const Struct& s, const std::string& key) {
  std::vector<int> out;
  for (const Value& v : field(s, key).list_value().values()) out.push_back(static_cast<int>(v.number_value()));
  return out;
}
std::map<std::string, std::string> string_map(const Struct& s, const std::string& key) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : field(s, key).struct_value().fields()) out[k] = v.string_value();
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
using testing::words;

// "1,2,3" as {1, 2, 3}.
std::set<int> id_set(const std::string& list) {
  std::set<int> out;
  std::istringstream in(list);
  for (std::string id; std::getline(in, id, ',');) out.insert(std::atoi(id.c_str()));
  return out;
}

class Cluster {
 public:
  explicit Cluster(int n) : dir_(testing::test_dir("cluster")) {
    for (int i = 1; i <= n; ++i) {
      controller_ports_[i] = testing::free_port();
      client_ports_[i] = testing::free_port();
    }
    std::string voters;
    for (const auto& [id, port] : controller_ports_) {
      voters += (voters.empty() ? "" : ",") + std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    for (int id = 1; id <= n; ++id) {
      testing::write_file(config(id),
                          "node.id=" + std::to_string(id) +
                              "\nprocess.roles=broker,controller\ncontroller.quorum.voters=" + voters +
                              "\nlisteners=CONTROLLER://127.0.0.1:" + std::to_string(controller_ports_[id]) +
                              ",GRPC://127.0.0.1:" + std::to_string(client_ports_[id]) +
                              "\ncontroller.listener.names=CONTROLLER\nlog.dirs=" + data_dir(id) +
                              "\ncontroller.quorum.election.timeout.ms=500"
                              "\ncontroller.quorum.fetch.timeout.ms=1000"
                              "\nbroker.heartbeat.interval.ms=500"
                              "\nbroker.session.timeout.ms=4000\n");
      testing::write_file(data_dir(id) + "/meta.properties",
                          std::string("version=1\ncluster.id=") + kClusterId + "\nnode.id=" + std::to_string(id) + "\n");
      procs_[id] = std::make_unique<testing::Process>();
    }
  }

  std::string config(int id) const { return dir_ + "/node" + std::to_string(id) + ".properties"; }
  std::string data_dir(int id) const { return dir_ + "/data" + std::to_string(id); }
  std::string log_path(int id) const { return dir_ + "/node" + std::to_string(id) + ".log"; }
  std::string address(int id) const { return "127.0.0.1:" + std::to_string(client_ports_.at(id)); }
  std::vector<int> ids() const {
    std::vector<int> v;
    for (const auto& [id, p] : procs_) v.push_back(id);
    return v;
  }
  // Every client address, in node id order.
  std::string bootstrap() const {
    std::string s;
    for (int id : ids()) s += (s.empty() ? "" : ",") + address(id);
    return s;
  }

  void start_all() {
    for (int id : ids()) {
      procs_[id]->start({testing::runfile("broker/gannetd"), "--config", config(id)}, log_path(id));
    }
  }
  void kill(int id, int sig) { procs_[id]->kill(sig); }
  std::string controller_address(int id) const { return "127.0.0.1:" + std::to_string(controller_ports_.at(id)); }

  bool partition_dir_exists(int id, const std::string& topic, int p) const {
    return std::filesystem::exists(data_dir(id) + "/" + topic + "-" + std::to_string(p));
  }

 private:
  std::string dir_;
  std::map<int, int> controller_ports_, client_ports_;
  std::map<int, std::unique_ptr<testing::Process>> procs_;  // killed on destruction
};

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

// The brokers `cluster info --output json` lists as unfenced, or nullopt if the command failed.
std::optional<std::set<int>> unfenced_brokers(const std::string& bootstrap, CliRun* last = nullptr) {
  CliRun r = gannet_cli({"cluster", "info", "--bootstrap-server", bootstrap, "--output", "json", "--timeout-ms", "3000"});
  if (last != nullptr) *last = r;
  if (r.code != 0) return std::nullopt;
  auto j = parse_json(r.out);
  if (!j) return std::nullopt;
  std::set<int> unfenced;
  for (const Struct& b : objects(*j, "brokers")) {
    if (!field(b, "fenced").bool_value() && str(b, "status") == "unfenced") unfenced.insert(num(b, "broker_id"));
  }
  return unfenced;
}

TEST(CliProcess, TopicLifecycleErrorsAndFailover) {
  Cluster c(3);
  c.start_all();
  const std::string all = c.bootstrap();
  const auto t0 = std::chrono::steady_clock::now();

  // ---- cluster info: all three brokers register and unfence ------------------------------------
  CliRun last;
  ASSERT_TRUE(testing::wait_until([&] {
    auto u = unfenced_brokers(all, &last);
    return u && *u == std::set<int>{1, 2, 3};
  }, 45s, 200ms)) << "cluster info never showed brokers 1-3 unfenced" << last.dump();
  std::cout << "cluster info: 3 unfenced brokers " << ms_since(t0) << " ms after start" << std::endl;
  {
    CliRun r = gannet_cli({"cluster", "info", "--bootstrap-server", all, "--output", "json"});
    ASSERT_EQ(r.code, 0) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "not JSON" << r.dump();
    EXPECT_EQ(str(*j, "cluster_id"), kClusterId) << r.dump();
    EXPECT_EQ(str(*j, "error_code"), "NONE") << r.dump();
    const int controller = num(*j, "controller_id");
    EXPECT_TRUE(controller >= 1 && controller <= 3) << r.dump();
    auto brokers = objects(*j, "brokers");
    ASSERT_EQ(brokers.size(), 3u) << r.dump();
    for (const Struct& b : brokers) {
      const int id = num(b, "broker_id");
      auto eps = objects(b, "endpoints");
      ASSERT_EQ(eps.size(), 1u) << r.dump();
      EXPECT_EQ(str(eps[0], "host") + ":" + std::to_string(num(eps[0], "port")), c.address(id))
          << "broker " << id << " advertises another client address" << r.dump();
      EXPECT_GE(num(b, "broker_epoch"), 0) << r.dump();
    }
    EXPECT_TRUE(r.err.empty()) << r.dump();
  }
  {
    CliRun r = gannet_cli({"cluster", "info", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, std::string("Cluster ID:        ") + kClusterId)) << r.dump();
    std::set<int> unfenced_rows;
    for (const std::string& l : lines(r.out)) {
      auto w = words(l);
      if (w.size() >= 2 && w[1] == "unfenced") unfenced_rows.insert(std::atoi(w[0].c_str()));
    }
    EXPECT_EQ(unfenced_rows, (std::set<int>{1, 2, 3})) << "a row per broker: id, then unfenced" << r.dump();
  }

  // ---- topic create / list / describe ----------------------------------------------------------
  {
    CliRun r = gannet_cli({"topic", "create", "clicks", "--partitions", "6", "--replication-factor", "3", "--config",
                        "retention.ms=3600000", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "Created topic clicks")) << r.dump();
    EXPECT_TRUE(contains(r.out, "6 partitions")) << r.dump();
    EXPECT_TRUE(contains(r.out, "replication factor 3")) << r.dump();
    EXPECT_TRUE(r.err.empty()) << r.dump();
  }
  std::string clicks_id;
  {
    CliRun r = gannet_cli({"topic", "list", "--bootstrap-server", all, "--output", "json"});
    ASSERT_EQ(r.code, 0) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "not JSON" << r.dump();
    bool found = false;
    for (const Struct& t : objects(*j, "topics")) {
      if (str(t, "name") != "clicks") continue;
      found = true;
      EXPECT_EQ(num(t, "partitions"), 6) << r.dump();
      EXPECT_EQ(num(t, "replication_factor"), 3) << r.dump();
      EXPECT_EQ(str(t, "error_code"), "NONE") << r.dump();
      clicks_id = str(t, "topic_id");
    }
    EXPECT_TRUE(found) << "topic list --output json does not list clicks" << r.dump();
    EXPECT_EQ(clicks_id.size(), 36u) << "topic id as UUID text" << r.dump();
  }
  {
    CliRun r = gannet_cli({"topic", "list", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    bool found = false;
    for (const std::string& l : lines(r.out)) {
      auto w = words(l);
      if (!w.empty() && w[0] == "clicks") {
        found = true;
        EXPECT_EQ(w, (std::vector<std::string>{"clicks", clicks_id, "6", "3"})) << r.dump();
      }
    }
    EXPECT_TRUE(found) << "topic list does not list clicks" << r.dump();
  }
  auto describe_json = [&](const std::string& topic, CliRun* run) -> std::optional<Struct> {
    *run = gannet_cli({"topic", "describe", topic, "--bootstrap-server", all, "--output", "json"});
    if (run->code != 0) return std::nullopt;
    auto j = parse_json(run->out);
    if (!j) return std::nullopt;
    auto topics = objects(*j, "topics");
    if (topics.size() != 1) return std::nullopt;
    return topics[0];
  };
  {
    CliRun r;
    auto t = describe_json("clicks", &r);
    ASSERT_TRUE(t) << r.dump();
    EXPECT_EQ(str(*t, "name"), "clicks");
    EXPECT_EQ(str(*t, "topic_id"), clicks_id);
    EXPECT_EQ(num(*t, "replication_factor"), 3) << r.dump();
    EXPECT_EQ(string_map(*t, "configs"), (std::map<std::string, std::string>{{"retention.ms", "3600000"}})) << r.dump();
    auto parts = objects(*t, "partitions");
    ASSERT_EQ(parts.size(), 6u) << r.dump();
    std::map<int, int> leads;
    for (size_t i = 0; i < parts.size(); ++i) {
      const Struct& p = parts[i];
      EXPECT_EQ(num(p, "partition"), static_cast<int>(i)) << r.dump();
      EXPECT_EQ(str(p, "error_code"), "NONE") << r.dump();
      auto replicas = ints(p, "replicas");
      auto isr = ints(p, "isr");
      EXPECT_EQ(replicas.size(), 3u) << r.dump();
      EXPECT_EQ(std::set<int>(replicas.begin(), replicas.end()), (std::set<int>{1, 2, 3})) << r.dump();
      EXPECT_EQ(std::set<int>(isr.begin(), isr.end()), (std::set<int>{1, 2, 3})) << r.dump();
      EXPECT_TRUE(ints(p, "offline_replicas").empty()) << r.dump();
      ++leads[num(p, "leader")];
    }
    EXPECT_EQ(leads, (std::map<int, int>{{1, 2}, {2, 2}, {3, 2}})) << "leaders 2 per broker" << r.dump();
  }
  {
    CliRun r = gannet_cli({"topic", "describe", "clicks", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "Topic: clicks\n")) << r.dump();
    EXPECT_TRUE(contains(r.out, "  Topic ID:           " + clicks_id + "\n")) << r.dump();
    EXPECT_TRUE(contains(r.out, "  Partitions:         6\n")) << r.dump();
    EXPECT_TRUE(contains(r.out, "  Replication factor: 3\n")) << r.dump();
    EXPECT_TRUE(contains(r.out, "  Configs:            retention.ms=3600000\n")) << r.dump();
    // The table: PARTITION LEADER "LEADER EPOCH" REPLICAS ISR OFFLINE, a row per partition.
    std::map<int, int> rows;
    bool header = false;
    for (const std::string& l : lines(r.out)) {
      auto w = words(l);
      if (!w.empty() && w[0] == "PARTITION") header = true;
      if (!header || w.size() != 6 || w[0] == "PARTITION") continue;
      ++rows[std::atoi(w[0].c_str())];
      EXPECT_EQ(w[5], "-") << "no offline replicas: " << l;
      EXPECT_EQ(id_set(w[3]), (std::set<int>{1, 2, 3})) << "REPLICAS as a,b,c: " << l;
      EXPECT_EQ(id_set(w[4]), (std::set<int>{1, 2, 3})) << "ISR as a,b,c: " << l;
      EXPECT_EQ(w[1], w[3].substr(0, w[3].find(','))) << "the leader is the preferred replica: " << l;
    }
    EXPECT_TRUE(header) << r.dump();
    EXPECT_EQ(rows, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}})) << r.dump();
  }
  // Every broker creates the logs.
  for (int id : c.ids()) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 6; ++p) {
        if (!c.partition_dir_exists(id, "clicks", p)) return false;
      }
      return true;
    }, 10s)) << "node " << id << " did not create the clicks logs";
  }

  // ---- alter-config ----------------------------------------------------------------------------
  {
    CliRun r = gannet_cli({"topic", "alter-config", "clicks", "--set", "cleanup.policy=compact", "--delete",
                        "retention.ms", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "set cleanup.policy=compact")) << r.dump();
    EXPECT_TRUE(contains(r.out, "deleted retention.ms")) << r.dump();
    CliRun d;
    auto t = describe_json("clicks", &d);
    ASSERT_TRUE(t) << d.dump();
    EXPECT_EQ(string_map(*t, "configs"), (std::map<std::string, std::string>{{"cleanup.policy", "compact"}}))
        << d.dump();
    CliRun text = gannet_cli({"topic", "describe", "clicks", "--bootstrap-server", all});
    EXPECT_EQ(text.code, 0) << text.dump();
    EXPECT_TRUE(contains(text.out, "  Configs:            cleanup.policy=compact\n")) << text.dump();
  }

  // ---- add-partitions --------------------------------------------------------------------------
  {
    CliRun r = gannet_cli({"topic", "add-partitions", "clicks", "--partitions", "8", "--bootstrap-server", all});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "now has 8 partitions")) << r.dump();
    CliRun d;
    auto t = describe_json("clicks", &d);
    ASSERT_TRUE(t) << d.dump();
    auto parts = objects(*t, "partitions");
    EXPECT_EQ(parts.size(), 8u) << d.dump();
    for (const Struct& p : parts) EXPECT_EQ(ints(p, "replicas").size(), 3u) << d.dump();

    CliRun shrink = gannet_cli({"topic", "add-partitions", "clicks", "--partitions", "4", "--bootstrap-server", all});
    EXPECT_EQ(shrink.code, 1) << shrink.dump();
    EXPECT_TRUE(contains(shrink.err, "INVALID_PARTITIONS")) << shrink.dump();
    EXPECT_TRUE(contains(shrink.err, "clicks")) << shrink.dump();
    EXPECT_TRUE(shrink.out.empty()) << shrink.dump();
    auto after = describe_json("clicks", &d);
    ASSERT_TRUE(after) << d.dump();
    EXPECT_EQ(objects(*after, "partitions").size(), 8u) << "a refused shrink changed the topic" << d.dump();
  }
  for (int id : c.ids()) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 8; ++p) {
        if (!c.partition_dir_exists(id, "clicks", p)) return false;
      }
      return true;
    }, 10s)) << "node " << id << " did not create the logs of the added partitions";
  }

  // ---- errors from the cluster: exit 1, the code on stderr -------------------------------------
  auto expect_error = [&](const std::vector<std::string>& args, const std::string& code) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--bootstrap-server", all});
    CliRun r = gannet_cli(full);
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, code)) << "expected " << code << r.dump();
    EXPECT_TRUE(contains(r.err, "gannet: ")) << r.dump();
    return r;
  };
  expect_error({"topic", "create", "clicks", "--partitions", "6", "--replication-factor", "3"}, "TOPIC_ALREADY_EXISTS");
  expect_error({"topic", "create", "bad name"}, "INVALID_TOPIC_EXCEPTION");
  expect_error({"topic", "create", "wide", "--replication-factor", "4"}, "INVALID_REPLICATION_FACTOR");
  expect_error({"topic", "create", "strict", "--replication-factor", "3", "--config", "min.insync.replicas=9"},
               "INVALID_CONFIG");
  expect_error({"topic", "describe", "nope"}, "UNKNOWN_TOPIC_OR_PARTITION");
  expect_error({"topic", "delete", "nope"}, "UNKNOWN_TOPIC_OR_PARTITION");
  expect_error({"topic", "alter-config", "nope", "--set", "retention.ms=1000"}, "UNKNOWN_TOPIC_OR_PARTITION");
  expect_error({"topic", "add-partitions", "nope", "--partitions", "9"}, "UNKNOWN_TOPIC_OR_PARTITION");
  {
    // describe of several names: the known one is printed, the unknown one fails the command.
    CliRun r = expect_error({"topic", "describe", "clicks", "nope"}, "UNKNOWN_TOPIC_OR_PARTITION");
    EXPECT_TRUE(contains(r.out, "Topic: clicks\n")) << r.dump();
    EXPECT_TRUE(contains(r.err, "nope")) << r.dump();
  }
  {
    // Refused topics do not exist.
    CliRun r = gannet_cli({"topic", "list", "--bootstrap-server", all, "--output", "json"});
    ASSERT_EQ(r.code, 0) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << r.dump();
    std::set<std::string> names;
    for (const Struct& t : objects(*j, "topics")) names.insert(str(t, "name"));
    EXPECT_EQ(names, (std::set<std::string>{"clicks"})) << r.dump();
  }

  // ---- errors in --output json: still a JSON object on stdout, exit 1 ---------------------------
  {
    CliRun r = gannet_cli({"topic", "create", "clicks", "--bootstrap-server", all, "--output", "json"});
    EXPECT_EQ(r.code, 1) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "stdout is not JSON" << r.dump();
    EXPECT_TRUE(contains(r.out, "TOPIC_ALREADY_EXISTS")) << r.dump();
    auto topics = objects(*j, "topics");
    ASSERT_EQ(topics.size(), 1u) << r.dump();
    EXPECT_EQ(str(topics[0], "name"), "clicks");
    EXPECT_EQ(str(topics[0], "error_code"), "TOPIC_ALREADY_EXISTS") << r.dump();
  }
  {
    // perf produce to a topic that does not exist stops at once with the error, instead of
    // sending a million records that all fail (it used to run for minutes, "0 acknowledged").
    const auto t0 = std::chrono::steady_clock::now();
    CliRun r = gannet_cli({"perf", "produce", "nope", "--num-records", "1000000", "--bootstrap-server", all});
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_NE(r.err.find("UNKNOWN_TOPIC_OR_PARTITION"), std::string::npos) << r.dump();
    EXPECT_LT(secs, 20.0) << r.dump();
  }
  {
    CliRun r = gannet_cli({"topic", "describe", "nope", "--bootstrap-server", all, "--output", "json"});
    EXPECT_EQ(r.code, 1) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "stdout is not JSON" << r.dump();
    auto topics = objects(*j, "topics");
    ASSERT_EQ(topics.size(), 1u) << r.dump();
    EXPECT_EQ(str(topics[0], "name"), "nope");
    EXPECT_EQ(str(topics[0], "error_code"), "UNKNOWN_TOPIC_OR_PARTITION") << r.dump();
  }
  {
    CliRun r = gannet_cli({"topic", "add-partitions", "clicks", "--partitions", "4", "--bootstrap-server", all,
                        "--output", "json"});
    EXPECT_EQ(r.code, 1) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "stdout is not JSON" << r.dump();
    EXPECT_TRUE(contains(r.out, "INVALID_PARTITIONS")) << r.dump();
  }

  // ---- usage errors: exit 2, nothing on stdout --------------------------------------------------
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"topic", "create", "--bootstrap-server", all},
           {"topic", "create", "--partitions", "3", "--bootstrap-server", all},
           {"topic", "list", "--bootstrap-server", all, "--no-such-flag", "x"},
           {"topic", "create", "x", "--partitions", "0", "--bootstrap-server", all},
           {"topic", "create", "x", "--partitions", "many", "--bootstrap-server", all},
           {"topic", "create", "x", "--config", "novalue", "--bootstrap-server", all},
           {"topic", "alter-config", "clicks", "--bootstrap-server", all},
           {"topic", "add-partitions", "clicks", "--bootstrap-server", all},
           {"topic", "list"},
           {"topic", "list", "--bootstrap-server", all, "--output", "yaml"},
           {"topic", "frobnicate", "--bootstrap-server", all},
           {"cluster", "info", "--bootstrap-server", all, "--partitions", "3"},
       }) {
    CliRun r = gannet_cli(args);
    EXPECT_EQ(r.code, 2) << r.dump();
    EXPECT_TRUE(contains(r.err, "usage:")) << r.dump();
    EXPECT_TRUE(r.out.empty()) << r.dump();
  }
  {
    // A usage error changed nothing: "x" was never created.
    expect_error({"topic", "describe", "x"}, "UNKNOWN_TOPIC_OR_PARTITION");
  }

  // ---- an unreachable bootstrap address: exit 1, named -----------------------------------------
  {
    const std::string dead = "127.0.0.1:" + std::to_string(testing::free_port());
    const auto start = std::chrono::steady_clock::now();
    CliRun r = gannet_cli({"topic", "list", "--bootstrap-server", dead, "--timeout-ms", "5000"});
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, dead)) << "the message must name the address" << r.dump();
    EXPECT_TRUE(r.out.empty()) << r.dump();
    EXPECT_LT(ms_since(start), 15000) << r.dump();
    // In JSON mode too, with an error object on stdout for scripts.
    CliRun j = gannet_cli({"cluster", "info", "--bootstrap-server", dead, "--timeout-ms", "5000", "--output", "json"});
    EXPECT_EQ(j.code, 1) << j.dump();
    EXPECT_TRUE(contains(j.err, dead)) << j.dump();
    EXPECT_TRUE(contains(j.out, "NETWORK_EXCEPTION")) << j.dump();
    EXPECT_TRUE(parse_json(j.out).has_value()) << j.dump();
  }

  // ---- a dead first bootstrap address ----------------------------------------------------------
  // SIGKILL node 1 (broker and controller, perhaps the active one) and put its client address
  // first: every command moves on to the next address.
  {
    CliRun info = gannet_cli({"cluster", "info", "--bootstrap-server", all, "--output", "json"});
    auto j = parse_json(info.out);
    std::cout << "active controller before SIGKILL of node 1: " << (j ? num(*j, "controller_id") : -1) << std::endl;
  }
  c.kill(1, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const std::string dead_first = c.address(1) + "," + c.address(2) + "," + c.address(3);
  {
    CliRun r = gannet_cli({"topic", "list", "--bootstrap-server", dead_first});
    EXPECT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "clicks")) << r.dump();
    CliRun d = gannet_cli({"topic", "describe", "clicks", "--bootstrap-server", dead_first, "--output", "json"});
    EXPECT_EQ(d.code, 0) << d.dump();
    EXPECT_TRUE(parse_json(d.out)) << d.dump();
    CliRun info = gannet_cli({"cluster", "info", "--bootstrap-server", dead_first, "--output", "json"});
    EXPECT_EQ(info.code, 0) << info.dump();
    auto j = parse_json(info.out);
    ASSERT_TRUE(j) << info.dump();
    EXPECT_EQ(str(*j, "cluster_id"), kClusterId) << info.dump();
    std::cout << "cluster info through a dead first address answered " << ms_since(killed)
              << " ms after SIGKILL of node 1" << std::endl;
    // quorum status takes a list of controllers too, and tries each (issue 20: a list used to be
    // looked up as one host name).
    const std::string controllers =
        c.controller_address(1) + "," + c.controller_address(2) + "," + c.controller_address(3);
    CliRun q;
    EXPECT_TRUE(testing::wait_until([&] {
      q = gannet_cli({"quorum", "status", "--bootstrap-controller", controllers, "--output", "json"});
      auto jq = parse_json(q.out);
      return q.code == 0 && jq && num(*jq, "leader") >= 2;
    }, 20s, 200ms)) << q.dump();
    CliRun dead_only = gannet_cli({"quorum", "status", "--bootstrap-controller", c.controller_address(1)});
    EXPECT_NE(dead_only.code, 0);
    EXPECT_TRUE(contains(dead_only.err, c.controller_address(1))) << dead_only.dump();
  }
  {
    // An admin write: forwarded to whichever controller is active now. (Node 1 is not fenced
    // yet, its session has 4 s to run, so the placement may still use it.)
    CliRun r = gannet_cli({"topic", "create", "views", "--partitions", "2", "--replication-factor", "2",
                           "--bootstrap-server", dead_first});
    EXPECT_EQ(r.code, 0) << r.dump();
    std::cout << "topic create through a dead first address done " << ms_since(killed)
              << " ms after SIGKILL of node 1" << std::endl;
    CliRun d = gannet_cli({"topic", "describe", "views", "--bootstrap-server", dead_first, "--output", "json"});
    EXPECT_EQ(d.code, 0) << d.dump();
    auto j = parse_json(d.out);
    ASSERT_TRUE(j) << d.dump();
    auto topics = objects(*j, "topics");
    ASSERT_EQ(topics.size(), 1u) << d.dump();
    EXPECT_EQ(objects(topics[0], "partitions").size(), 2u) << d.dump();
  }
  // Node 1 is fenced after its session times out (4 s), and cluster info says so.
  {
    CliRun info;
    EXPECT_TRUE(testing::wait_until([&] {
      auto u = unfenced_brokers(dead_first, &info);
      return u && *u == std::set<int>{2, 3};
    }, 20s, 200ms)) << "node 1 was not fenced" << info.dump();
    CliRun r = gannet_cli({"cluster", "info", "--bootstrap-server", dead_first});
    EXPECT_EQ(r.code, 0) << r.dump();
    std::map<int, std::string> status;
    for (const std::string& l : lines(r.out)) {
      auto w = words(l);
      if (w.size() >= 2 && (w[1] == "fenced" || w[1] == "unfenced")) status[std::atoi(w[0].c_str())] = w[1];
    }
    EXPECT_EQ(status, (std::map<int, std::string>{{1, "fenced"}, {2, "unfenced"}, {3, "unfenced"}})) << r.dump();
  }
  // Once fenced, node 1 leads nothing and is out of every ISR (as describe shows), and new
  // topics are placed on the live brokers only.
  {
    CliRun d;
    EXPECT_TRUE(testing::wait_until([&] {
      d = gannet_cli({"topic", "describe", "clicks", "views", "--bootstrap-server", dead_first, "--output", "json"});
      auto j = parse_json(d.out);
      if (d.code != 0 || !j) return false;
      for (const Struct& t : objects(*j, "topics")) {
        for (const Struct& p : objects(t, "partitions")) {
          auto isr = ints(p, "isr");
          auto replicas = ints(p, "replicas");
          auto offline = ints(p, "offline_replicas");
          const bool on1 = std::count(replicas.begin(), replicas.end(), 1) > 0;
          if (num(p, "leader") == 1 || std::count(isr.begin(), isr.end(), 1) > 0) return false;
          if (on1 != (std::count(offline.begin(), offline.end(), 1) > 0)) return false;
        }
      }
      return true;
    }, 10s, 200ms)) << "the fenced node 1 still leads or is in an ISR, or is not listed offline" << d.dump();
    CliRun text = gannet_cli({"topic", "describe", "clicks", "--bootstrap-server", dead_first});
    EXPECT_EQ(text.code, 0) << text.dump();
    int rows = 0;
    for (const std::string& l : lines(text.out)) {
      auto w = words(l);
      if (w.size() == 6 && w[0] != "PARTITION") {
        ++rows;
        EXPECT_EQ(w[5], "1") << "OFFLINE column: " << l;
        EXPECT_EQ(id_set(w[4]), (std::set<int>{2, 3})) << "ISR column: " << l;
      }
    }
    EXPECT_EQ(rows, 8) << text.dump();

    CliRun r = gannet_cli({"topic", "create", "late", "--partitions", "4", "--replication-factor", "2",
                           "--bootstrap-server", dead_first, "--output", "json"});
    EXPECT_EQ(r.code, 0) << r.dump();
    auto created = parse_json(r.out);
    ASSERT_TRUE(created) << r.dump();
    auto results = objects(*created, "topics");
    ASSERT_EQ(results.size(), 1u) << r.dump();
    EXPECT_EQ(str(results[0], "error_code"), "NONE") << r.dump();
    EXPECT_EQ(num(results[0], "num_partitions"), 4) << r.dump();
    EXPECT_EQ(str(results[0], "topic_id").size(), 36u) << r.dump();
    d = gannet_cli({"topic", "describe", "late", "--bootstrap-server", dead_first, "--output", "json"});
    auto j = parse_json(d.out);
    ASSERT_TRUE(j) << d.dump();
    auto topics = objects(*j, "topics");
    ASSERT_EQ(topics.size(), 1u) << d.dump();
    for (const Struct& p : objects(topics[0], "partitions")) {
      auto replicas = ints(p, "replicas");
      EXPECT_EQ(std::set<int>(replicas.begin(), replicas.end()), (std::set<int>{2, 3}))
          << "a new topic placed on the fenced node 1" << d.dump();
    }
    // A replication factor the live brokers cannot meet.
    CliRun wide = gannet_cli({"topic", "create", "wide3", "--replication-factor", "3", "--bootstrap-server", dead_first});
    EXPECT_EQ(wide.code, 1) << wide.dump();
    EXPECT_TRUE(contains(wide.err, "INVALID_REPLICATION_FACTOR")) << wide.dump();
  }

  // ---- topic delete ----------------------------------------------------------------------------
  {
    CliRun r = gannet_cli({"topic", "delete", "clicks", "--bootstrap-server", dead_first});
    ASSERT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "Deleted topic clicks.")) << r.dump();
    CliRun d = gannet_cli({"topic", "describe", "clicks", "--bootstrap-server", dead_first});
    EXPECT_EQ(d.code, 1) << d.dump();
    EXPECT_TRUE(contains(d.err, "UNKNOWN_TOPIC_OR_PARTITION")) << d.dump();
    CliRun again = gannet_cli({"topic", "delete", "clicks", "--bootstrap-server", dead_first});
    EXPECT_EQ(again.code, 1) << again.dump();
    EXPECT_TRUE(contains(again.err, "UNKNOWN_TOPIC_OR_PARTITION")) << again.dump();
    CliRun list = gannet_cli({"topic", "list", "--bootstrap-server", dead_first});
    EXPECT_EQ(list.code, 0) << list.dump();
    for (const std::string& l : lines(list.out)) {
      auto w = words(l);
      EXPECT_FALSE(!w.empty() && w[0] == "clicks") << list.dump();
    }
  }
  for (int id : {2, 3}) {
    EXPECT_TRUE(testing::wait_until([&] {
      for (int p = 0; p < 8; ++p) {
        if (c.partition_dir_exists(id, "clicks", p)) return false;
      }
      return true;
    }, 10s)) << "node " << id << " kept the deleted topic's directories";
  }
  std::cout << "whole lifecycle test: " << ms_since(t0) << " ms" << std::endl;
}

TEST(CliProcess, StorageFormat) {
  const std::string dir = testing::test_dir("storage");

  // random-uuid: 22 URL-safe base64 characters, different every time.
  CliRun u1 = gannet_cli({"storage", "random-uuid"});
  CliRun u2 = gannet_cli({"storage", "random-uuid"});
  ASSERT_EQ(u1.code, 0) << u1.dump();
  ASSERT_EQ(u2.code, 0) << u2.dump();
  ASSERT_EQ(u1.out.size(), 23u) << "22 characters and a newline" << u1.dump();
  ASSERT_EQ(u1.out.back(), '\n');
  const std::string cluster_id = u1.out.substr(0, 22);
  for (char ch : cluster_id) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') << u1.dump();
  }
  EXPECT_NE(cluster_id[0], '-');
  EXPECT_NE(u1.out, u2.out);
  EXPECT_EQ(gannet_cli({"storage", "random-uuid", "extra"}).code, 2);

  // A single combined node, two data directories, formatted by the CLI.
  const int controller_port = testing::free_port();
  const int client_port = testing::free_port();
  const std::string cfg = dir + "/node1.properties";
  const std::string dir_a = dir + "/data-a";
  const std::string dir_b = dir + "/data-b";
  testing::write_file(cfg, "node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@127.0.0.1:" +
                               std::to_string(controller_port) + "\nlisteners=CONTROLLER://127.0.0.1:" +
                               std::to_string(controller_port) + ",GRPC://127.0.0.1:" +
                               std::to_string(client_port) +
                               "\ncontroller.listener.names=CONTROLLER\nlog.dirs=" + dir_a + "," + dir_b +
                               "\ncontroller.quorum.election.timeout.ms=500"
                               "\ncontroller.quorum.fetch.timeout.ms=1000"
                               "\nbroker.heartbeat.interval.ms=500\nbroker.session.timeout.ms=4000\n");
  auto meta = [&](const std::string& d) { return read_file(d + "/meta.properties"); };
  {
    CliRun r = gannet_cli({"storage", "format", "--cluster-id", cluster_id, "--config", cfg});
    ASSERT_EQ(r.code, 0) << r.dump();
    for (const std::string& d : {dir_a, dir_b}) {
      const std::string m = meta(d);
      EXPECT_TRUE(contains(m, "cluster.id=" + cluster_id + "\n")) << d << ":\n" << m;
      EXPECT_TRUE(contains(m, "node.id=1\n")) << d << ":\n" << m;
      EXPECT_TRUE(contains(m, "version=1\n")) << d << ":\n" << m;
      EXPECT_TRUE(contains(r.out, d)) << r.dump();
    }
  }
  const std::string formatted = meta(dir_a);
  {
    CliRun r = gannet_cli({"storage", "format", "--cluster-id", cluster_id, "--config", cfg});
    EXPECT_NE(r.code, 0) << "formatting twice without --ignore-formatted must fail" << r.dump();
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, "already formatted")) << r.dump();
  }
  {
    CliRun r = gannet_cli({"storage", "format", "--cluster-id", cluster_id, "--config", cfg, "--ignore-formatted"});
    EXPECT_EQ(r.code, 0) << r.dump();
    EXPECT_EQ(meta(dir_a), formatted);
  }
  {
    CliRun r = gannet_cli({"storage", "format", "--cluster-id", "another-cluster", "--config", cfg, "--ignore-formatted"});
    EXPECT_NE(r.code, 0) << "a directory of another cluster must never be reformatted" << r.dump();
    EXPECT_TRUE(contains(r.err, "another-cluster")) << r.dump();
    EXPECT_EQ(meta(dir_a), formatted) << "a refused format changed meta.properties";
    EXPECT_TRUE(contains(meta(dir_b), "cluster.id=" + cluster_id + "\n"));
  }
  {
    // Usage errors and a bad config file.
    EXPECT_EQ(gannet_cli({"storage", "format", "--config", cfg}).code, 2);
    EXPECT_EQ(gannet_cli({"storage", "format", "--cluster-id", cluster_id}).code, 2);
    EXPECT_EQ(gannet_cli({"storage", "format", "--cluster-id", "bad id!", "--config", cfg}).code, 2);
    CliRun missing = gannet_cli({"storage", "format", "--cluster-id", cluster_id, "--config", dir + "/missing.properties"});
    EXPECT_EQ(missing.code, 1) << missing.dump();
    EXPECT_TRUE(contains(missing.err, "missing.properties")) << missing.dump();
  }

  // The node formatted by the CLI starts, and reports the formatted cluster id.
  testing::Process node;
  node.start({testing::runfile("broker/gannetd"), "--config", cfg}, dir + "/node1.log");
  const std::string bootstrap = "127.0.0.1:" + std::to_string(client_port);
  CliRun info;
  EXPECT_TRUE(testing::wait_until([&] {
    auto u = unfenced_brokers(bootstrap, &info);
    return u && *u == std::set<int>{1};
  }, 30s, 200ms)) << "the CLI-formatted node did not come up" << info.dump() << "\n--- node log ---\n"
                  << read_file(dir + "/node1.log");
  auto j = parse_json(info.out);
  ASSERT_TRUE(j) << info.dump();
  EXPECT_EQ(str(*j, "cluster_id"), cluster_id) << info.dump();
  node.kill(SIGTERM);
}

}  // namespace
}  // namespace gannet
