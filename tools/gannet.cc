// gannet: the command line for a Gannet cluster.
//
// Topic and cluster commands talk to a broker's client listener (gannet.broker.v1.Broker in
// proto/broker.proto; the broker forwards admin writes to the active controller):
//
//   gannet topic create NAME [--partitions N] [--replication-factor R] [--config KEY=VALUE]...
//   gannet topic list
//   gannet topic describe NAME...
//   gannet topic delete NAME
//   gannet topic alter-config NAME [--set KEY=VALUE]... [--delete KEY]...
//   gannet topic add-partitions NAME --partitions TOTAL
//   gannet cluster info
//
// each with --bootstrap-server HOST:PORT[,HOST:PORT...] (required), --timeout-ms N (default 30000)
// and --output text|json (default text). The addresses are tried in order until one answers at
// the gRPC level (UNAVAILABLE and DEADLINE_EXCEEDED move on to the next). --timeout-ms goes into
// the request as its timeout_ms, and the RPC deadline is that plus a grace (2 s, or the timeout
// itself if shorter), so that the controller's own REQUEST_TIMED_OUT answer arrives before the
// client gives up.
//
// Quorum commands talk to a controller (gannet.raft.v1.Quorum in proto/raft.proto):
//
//   gannet quorum status --bootstrap-controller HOST:PORT [--output text|json]
//   gannet quorum append --bootstrap-controller HOST:PORT [--timeout-ms N] RECORD...
//
// `quorum status` asks the given controller, then the leader it names, and prints the leader,
// epoch and high watermark and, per voter and observer, its log end offset, lag and last fetch.
//
// Storage commands are local and run before a node first starts (Kafka's kafka-storage):
//
//   gannet storage format --cluster-id ID --config FILE [--override KEY=VALUE]...
//                         [--ignore-formatted]
//   gannet storage random-uuid
//
// `storage format` writes meta.properties (broker/meta_properties.h) into every directory of the
// node's log.dirs. It checks them all before writing any: a directory formatted for another
// cluster or node fails the command; one already formatted identically fails it too unless
// --ignore-formatted is given (then it is left as it is).
//
// Flags take their value as `--flag VALUE` or `--flag=VALUE`; a repeated flag keeps every value
// (--config, --set, --delete, --override accumulate; elsewhere the last one wins). `--` ends the
// flags. Exit status: 0 success; 1 an error (an error code from the cluster, printed as
// `gannet: TOPIC: CODE: message` on stderr, an unreachable cluster, a storage failure); 2 a usage
// error. With --output json the JSON object is printed on stdout even when the exit status is 1.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>
#include <unistd.h>
#include <thread>

#include "broker/meta_properties.h"
#include "broker/server_config.h"
#include "common/acl.h"
#include "common/grpc_security.h"
#include "common/result.h"
#include "common/scram.h"
#include "proto/broker.grpc.pb.h"
#include "proto/controller.pb.h"
#include "proto/errors.pb.h"
#include "proto/raft.grpc.pb.h"
#include "tools/data_commands.h"
#include "tools/cli.h"

namespace {

using gannet::tools::Args;
using gannet::tools::join;
using gannet::tools::json_quote;
using gannet::tools::Json;
using gannet::tools::parse_int32;
using gannet::tools::split;
using gannet::tools::Table;
using gannet::tools::uuid_text;
namespace bv1 = gannet::broker::v1;
namespace cv1 = gannet::controller::v1;
using gannet::raft::v1::Quorum;
using gannet::v1::ErrorCode;
namespace scram = gannet::scram;
namespace acl = gannet::acl;
template <typename T>
using Result = gannet::Result<T, std::string>;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int32_t kDefaultTimeoutMs = 30000;
// Added to --timeout-ms for the RPC deadline, at most doubling it (see the top of the file).
constexpr int32_t kDeadlineGraceMs = 2000;

// Flags that take no value.
const std::set<std::string> kBooleanFlags = {"help", "ignore-formatted", "from-beginning", "print-key",
                                             "print-timestamp", "to-earliest", "to-latest", "dry-run", "cluster"};

// ---- Output helpers -----------------------------------------------------------------------------

// The name of an error code; codes this build does not know (a newer server) as ERROR_<n>.
std::string code_name(int code) {
  const std::string& name = gannet::v1::ErrorCode_Name(code);
  return name.empty() ? "ERROR_" + std::to_string(code) : name;
}

template <typename Ints>
std::string id_list(const Ints& ids) {
  std::string out;
  for (int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out.empty() ? "-" : out;
}

const char* grpc_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "gRPC error";
  }
}

// ---- Commands: the table and usage --------------------------------------------------------------

struct Command {
  const char* group;     // first word: topic, cluster, quorum, storage
  const char* name;      // second word
  const char* synopsis;  // what follows "gannet GROUP NAME"
  bool cluster;          // takes --bootstrap-server, --timeout-ms, --output
  std::set<std::string> flags;  // the flags it accepts, besides the cluster ones and --help
  int (*run)(const Args&);
};

const std::vector<Command>& commands();

constexpr const char* kClusterFlagsHelp =
    "  Every topic and cluster command also takes:\n"
    "    --bootstrap-server HOST:PORT[,HOST:PORT...]  brokers to try in order (required)\n"
    "    --timeout-ms N                               request timeout (default 30000)\n"
    "    --output text|json                           output format (default text)\n"
    "    --command-config FILE                        client properties: security.protocol=SSL,\n"
    "                                                 ssl.truststore.location, ssl.keystore.location,\n"
    "                                                 ssl.key.password (TLS to the gRPC listeners)\n";

// "gannet GROUP NAME SYNOPSIS", with the cluster flags when `cluster_flags` and it takes them.
std::string synopsis(const Command& c, bool cluster_flags) {
  std::string out = std::string("gannet ") + c.group + " " + c.name;
  if (*c.synopsis) out += std::string(" ") + c.synopsis;
  if (cluster_flags && c.cluster) {
    out += " --bootstrap-server HOST:PORT[,...] [--timeout-ms N] [--output text|json]";
  }
  return out;
}

void print_usage(std::FILE* to) {
  static const std::map<std::string_view, const char*> kGroupTitles = {
      {"topic", "Topics (through a broker's client listener):"},
      {"cluster", "Cluster:"},
      {"user", "Users: SASL/SCRAM credentials (through the brokers):"},
      {"acl", "ACLs: who may do what (through the brokers; enforced with authorizer.class.name):"},
      {"quorum", "Metadata quorum (through a controller's listener):"},
      {"storage", "Storage (local, before a node first starts):"},
      {"perf", "Performance (through the brokers):"},
      {"group", "Consumer groups (through the brokers):"},
  };
  std::fprintf(to, "usage: gannet GROUP COMMAND [OPERANDS] [FLAGS]\n");
  std::string_view group;
  for (const Command& c : commands()) {
    if (group != c.group) {
      if (group == "cluster") std::fprintf(to, "%s", kClusterFlagsHelp);
      group = c.group;
      std::fprintf(to, "\n%s\n", kGroupTitles.at(group));
    }
    std::fprintf(to, "  %s\n", synopsis(c, false).c_str());
  }
  std::fprintf(to,
               "\nRecords:\n"
               "  gannet produce TOPIC [--key-separator SEP] [--partition N] [--acks all|1|0] [--linger-ms MS]"
               " [--batch-size BYTES] [--compression C]   (lines from stdin)\n"
               "  gannet consume TOPIC [--from-beginning] [--partition N] [--offset N] [--max-messages N]"
               " [--timeout-ms IDLE_MS] [--print-key] [--print-timestamp] [--output json]\n"
               "      [--group G [--commit auto|sync] [--auto-commit-interval-ms MS] [--session-timeout-ms MS] [--assignment-strategy range|roundrobin|sticky]"
               " [--group-protocol classic|consumer] [--client-id ID]]   (TOPIC may list several, comma-separated, with --group)\n");
  std::fprintf(to,
               "\nExit status: 0 ok; 1 error (from the cluster, cluster unreachable, storage);"
               " 2 usage error.\n");
}

// Reports a usage error (with the command's synopsis when known) and returns kExitUsage.
int usage_error(const std::string& message, const Command* c = nullptr) {
  std::fprintf(stderr, "gannet: %s\n", message.c_str());
  if (c == nullptr) {
    print_usage(stderr);
  } else {
    std::fprintf(stderr, "usage: %s\n", synopsis(*c, true).c_str());
  }
  return kExitUsage;
}

const Command* find_command(const std::string& group, const std::string& name) {
  for (const Command& c : commands()) {
    if (group == c.group && name == c.name) return &c;
  }
  return nullptr;
}

// ---- Cluster connection -------------------------------------------------------------------------

struct ClusterOptions {
  std::vector<std::string> addresses;  // in the order given
  int32_t timeout_ms = kDefaultTimeoutMs;
  bool json = false;
};

// How the CLI dials the cluster: plaintext, or TLS from --command-config's Kafka client keys
// (security.protocol=SSL, ssl.truststore.location, ssl.keystore.location, ssl.key.password).
std::shared_ptr<grpc::ChannelCredentials>& credentials() {
  static std::shared_ptr<grpc::ChannelCredentials> c = grpc::InsecureChannelCredentials();
  return c;
}

Result<bool> load_command_config(const Args& a) {
  auto path = a.last("command-config");
  if (!path) return true;
  auto props = gannet::broker::load_properties_file(*path);
  if (!props.ok()) return "--command-config " + *path + ": " + props.error().message;
  auto get = [&](const char* k) {
    auto it = props->find(k);
    return it == props->end() ? std::string() : it->second;
  };
  const std::string protocol = get("security.protocol");
  if (protocol.empty() || protocol == "PLAINTEXT") return true;
  if (protocol != "SSL") return "--command-config: security.protocol " + protocol + ": PLAINTEXT or SSL (gRPC)";
  const std::string keystore = get("ssl.keystore.location"), truststore = get("ssl.truststore.location");
  if (truststore.empty()) return std::string("--command-config: ssl.truststore.location is required with SSL");
  if (keystore.empty()) {
    std::ifstream in(truststore);
    if (!in) return "ssl.truststore.location=" + truststore + ": cannot read the file";
    std::string ca((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    grpc::SslCredentialsOptions so;
    so.pem_root_certs = ca;
    credentials() = grpc::SslCredentials(so);
    return true;
  }
  auto tls = gannet::load_grpc_tls(keystore, get("ssl.key.password"), truststore, "required");
  if (!tls.ok()) return "--command-config: " + tls.error();
  credentials() = gannet::channel_credentials(*tls);
  return true;
}

// The cluster flags of `a`; the error is a usage message.
gannet::Result<ClusterOptions, std::string> cluster_options(const Args& a) {
  ClusterOptions o;
  if (auto loaded = load_command_config(a); !loaded.ok()) return loaded.error();
  auto servers = a.last("bootstrap-server");
  if (!servers) return std::string("--bootstrap-server is required");
  for (const std::string& s : split(*servers, ',')) {
    if (!s.empty()) o.addresses.push_back(s);
  }
  if (o.addresses.empty()) return std::string("--bootstrap-server: no address given");
  if (auto t = a.last("timeout-ms")) {
    auto v = parse_int32(*t);
    if (!v || *v <= 0) return std::string("--timeout-ms " + *t + ": not a positive integer");
    o.timeout_ms = *v;
  }
  if (auto out = a.last("output")) {
    if (*out != "text" && *out != "json") {
      return std::string("--output " + *out + ": expected text or json");
    }
    o.json = *out == "json";
  }
  return o;
}

// Runs `call(stub, context, resp)` against the first address that answers; UNAVAILABLE and
// DEADLINE_EXCEEDED move on to the next one. On failure prints why (every address tried) and
// returns false.
template <typename Resp, typename Call>
bool call_cluster(const ClusterOptions& o, Call call, Resp* resp) {
  std::vector<std::string> tried;
  for (const std::string& address : o.addresses) {
    auto stub =
        bv1::Broker::NewStub(grpc::CreateChannel(address, credentials()));
    grpc::ClientContext ctx;
    const int64_t deadline_ms = int64_t{o.timeout_ms} + std::min(o.timeout_ms, kDeadlineGraceMs);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    *resp = Resp();
    grpc::Status st = call(stub.get(), &ctx, resp);
    if (st.ok()) return true;
    std::string why = grpc_code_name(st.error_code());
    if (!st.error_message().empty()) why += ": " + st.error_message();
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
        st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      tried.push_back(address + " (" + why + ")");
      continue;
    }
    const std::string hint = st.error_code() == grpc::StatusCode::UNIMPLEMENTED
                                 ? " (is this a broker's client listener?)"
                                 : "";
    std::fprintf(stderr, "gannet: %s: %s%s\n", address.c_str(), why.c_str(), hint.c_str());
    if (o.json) {
      std::printf("{\"error_code\":\"UNKNOWN_SERVER_ERROR\",\"error_message\":%s}\n",
                  json_quote(address + ": " + why + hint).c_str());
    }
    return false;
  }
  const std::string message = "cannot reach the cluster; tried " + join(tried, ", ");
  std::fprintf(stderr, "gannet: %s\n", message.c_str());
  // Scripts reading --output json get an object even now (Kafka's name for a lost connection).
  if (o.json) std::printf("{\"error_code\":\"NETWORK_EXCEPTION\",\"error_message\":%s}\n", json_quote(message).c_str());
  return false;
}

// ---- Error reporting ----------------------------------------------------------------------------

// Prints a request-level error, if there is one, and says whether there was.
bool report_request_error(ErrorCode code, const std::string& message,
                          const cv1::ControllerHint* hint) {
  if (code == gannet::v1::NONE) return false;
  std::string line = "gannet: " + code_name(code);
  if (!message.empty()) line += ": " + message;
  if (hint != nullptr && code == gannet::v1::NOT_CONTROLLER && hint->controller_id() >= 0) {
    line += " (active controller: " + std::to_string(hint->controller_id()) +
            (hint->controller_address().empty() ? "" : " at " + hint->controller_address()) + ")";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  return true;
}

void report_topic_error(const std::string& topic, int code, const std::string& message) {
  std::fprintf(stderr, "gannet: %s: %s%s%s\n", topic.c_str(), code_name(code).c_str(),
               message.empty() ? "" : ": ", message.c_str());
}

void json_request_error(Json& j, ErrorCode code, const std::string& message,
                        const cv1::ControllerHint& hint) {
  j.field("error_code", code_name(code)).field("error_message", message);
  if (code == gannet::v1::NOT_CONTROLLER) {
    j.key("controller").begin_object();
    j.field("controller_id", hint.controller_id());
    j.field("controller_address", hint.controller_address());
    j.end_object();
  }
}

// ---- Admin writes: create, delete, alter-config, add-partitions ---------------------------------

using TopicResults = google::protobuf::RepeatedPtrField<cv1::TopicResult>;

// The answer to an admin write: a request-level error and one TopicResult per topic.
struct WriteAnswer {
  ErrorCode error_code = gannet::v1::NONE;
  std::string error_message;
  cv1::ControllerHint controller;
  std::vector<cv1::TopicResult> topics;

  template <typename Resp>
  static WriteAnswer of(const Resp& r, const TopicResults& results) {
    WriteAnswer w;
    w.error_code = r.error_code();
    w.error_message = r.error_message();
    w.controller = r.controller();
    w.topics.assign(results.begin(), results.end());
    return w;
  }
};

// Prints the answer for `topic` (JSON, or `success` in text when it succeeded) and every error;
// returns the exit status.
int finish_write(const ClusterOptions& o, const WriteAnswer& w, const std::string& topic,
                 const std::string& success) {
  if (o.json) {
    Json j;
    j.begin_object();
    json_request_error(j, w.error_code, w.error_message, w.controller);
    j.key("topics").begin_array();
    for (const cv1::TopicResult& t : w.topics) {
      j.begin_object();
      j.field("name", t.name()).field("error_code", code_name(t.error_code()));
      j.field("error_message", t.error_message());
      if (!t.topic_id().empty()) j.field("topic_id", uuid_text(t.topic_id()));
      if (t.num_partitions() > 0) j.field("num_partitions", t.num_partitions());
      if (t.replication_factor() > 0) j.field("replication_factor", t.replication_factor());
      j.end_object();
    }
    j.end_array().end_object().print();
  }
  if (report_request_error(w.error_code, w.error_message, &w.controller)) return kExitError;
  bool failed = false;
  bool answered = false;
  for (const cv1::TopicResult& t : w.topics) {
    answered = answered || t.name() == topic;
    if (t.error_code() != gannet::v1::NONE) {
      report_topic_error(t.name(), t.error_code(), t.error_message());
      failed = true;
    }
  }
  if (!answered) {
    report_topic_error(topic, gannet::v1::UNKNOWN_SERVER_ERROR,
                       "the response has no result for this topic");
    failed = true;
  }
  if (failed) return kExitError;
  if (!o.json) std::printf("%s\n", success.c_str());
  return 0;
}

// `KEY=VALUE` of a --config or --set flag; the error is a usage message.
gannet::Result<cv1::TopicConfigEntry, std::string> config_entry(const std::string& flag,
                                                                const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) {
    return std::string("--" + flag + " " + s + ": expected KEY=VALUE");
  }
  cv1::TopicConfigEntry e;
  e.set_name(s.substr(0, eq));
  e.set_value(s.substr(eq + 1));
  return e;
}

// The single NAME operand of a topic command; the error is the exit status of the usage error
// already reported.
gannet::Result<std::string, int> one_topic(const Args& a, const Command* c) {
  auto ops = a.operands();
  if (ops.size() != 1) {
    return usage_error(ops.empty() ? "a topic name is required" : "expected one topic name", c);
  }
  return ops[0];
}

int topic_create(const Args& a) {
  const Command* c = find_command("topic", "create");
  auto name = one_topic(a, c);
  if (!name.ok()) return name.error();
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  cv1::CreateTopicsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  cv1::CreatableTopic* t = req.add_topics();
  t->set_name(*name);
  for (const char* flag : {"partitions", "replication-factor"}) {
    auto v = a.last(flag);
    if (!v) continue;
    auto n = parse_int32(*v);
    if (!n || *n <= 0) {
      return usage_error("--" + std::string(flag) + " " + *v + ": not a positive integer", c);
    }
    if (std::string_view(flag) == "partitions") {
      t->set_num_partitions(*n);
    } else {
      t->set_replication_factor(*n);
    }
  }
  for (const std::string& s : a.all("config")) {
    auto e = config_entry("config", s);
    if (!e.ok()) return usage_error(e.error(), c);
    *t->add_configs() = *e;
  }
  cv1::CreateTopicsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::CreateTopicsResponse* r) {
    return s->CreateTopics(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  std::string success = "Created topic " + *name + ".";
  for (const cv1::TopicResult& r : resp.topics()) {
    if (r.name() != *name) continue;
    std::vector<std::string> details;
    if (!r.topic_id().empty()) details.push_back("id " + uuid_text(r.topic_id()));
    if (r.num_partitions() > 0) {
      details.push_back(std::to_string(r.num_partitions()) + " partitions");
    }
    if (r.replication_factor() > 0) {
      details.push_back("replication factor " + std::to_string(r.replication_factor()));
    }
    if (!details.empty()) success = "Created topic " + *name + " (" + join(details, ", ") + ").";
  }
  return finish_write(*o, WriteAnswer::of(resp, resp.topics()), *name, success);
}

int topic_delete(const Args& a) {
  const Command* c = find_command("topic", "delete");
  auto name = one_topic(a, c);
  if (!name.ok()) return name.error();
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  cv1::DeleteTopicsRequest req;
  req.add_names(*name);
  req.set_timeout_ms(o->timeout_ms);
  cv1::DeleteTopicsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DeleteTopicsResponse* r) {
    return s->DeleteTopics(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  return finish_write(*o, WriteAnswer::of(resp, resp.topics()), *name,
                      "Deleted topic " + *name + ".");
}

int topic_alter_config(const Args& a) {
  const Command* c = find_command("topic", "alter-config");
  auto name = one_topic(a, c);
  if (!name.ok()) return name.error();
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  cv1::AlterConfigsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  cv1::AlterConfigsRequest::Resource* res = req.add_resources();
  res->set_topic(*name);
  std::set<std::string> keys;
  std::vector<std::string> changes;
  for (const std::string& s : a.all("set")) {
    auto e = config_entry("set", s);
    if (!e.ok()) return usage_error(e.error(), c);
    if (!keys.insert(e->name()).second) {
      return usage_error(e->name() + " is given more than once", c);
    }
    *res->add_set() = *e;
    changes.push_back("set " + s);
  }
  for (const std::string& k : a.all("delete")) {
    if (k.empty()) return usage_error("--delete: empty key", c);
    if (!keys.insert(k).second) return usage_error(k + " is given more than once", c);
    res->add_remove(k);
    changes.push_back("deleted " + k);
  }
  if (changes.empty()) return usage_error("nothing to change: give --set or --delete", c);
  cv1::AlterConfigsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::AlterConfigsResponse* r) {
    return s->AlterConfigs(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  return finish_write(*o, WriteAnswer::of(resp, resp.resources()), *name,
                      "Updated the configs of topic " + *name + ": " + join(changes, ", ") + ".");
}

int topic_add_partitions(const Args& a) {
  const Command* c = find_command("topic", "add-partitions");
  auto name = one_topic(a, c);
  if (!name.ok()) return name.error();
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  auto total = a.last("partitions");
  if (!total) return usage_error("--partitions TOTAL is required", c);
  auto n = parse_int32(*total);
  if (!n || *n <= 0) return usage_error("--partitions " + *total + ": not a positive integer", c);
  cv1::CreatePartitionsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  cv1::CreatePartitionsRequest::Topic* t = req.add_topics();
  t->set_name(*name);
  t->set_count(*n);
  cv1::CreatePartitionsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx,
                 cv1::CreatePartitionsResponse* r) { return s->CreatePartitions(ctx, req, r); };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  return finish_write(*o, WriteAnswer::of(resp, resp.topics()), *name,
                      "Topic " + *name + " now has " + std::to_string(*n) + " partitions.");
}

// ---- Rolling restarts: wait until brokers are back ---------------------------------------------

// Asks each address in turn, quietly (a broker being restarted does not answer); true on the
// first answer.
template <typename Resp, typename Call>
bool try_cluster(const ClusterOptions& o, Call call, Resp* resp) {
  for (const std::string& address : o.addresses) {
    auto stub = bv1::Broker::NewStub(grpc::CreateChannel(address, credentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(std::min(o.timeout_ms, 3000)));
    *resp = Resp();
    if (!call(stub.get(), &ctx, resp).ok()) continue;
    if constexpr (requires { resp->error_code(); }) {
      if (resp->error_code() != gannet::v1::NONE) continue;
    }
    return true;
  }
  return false;
}

// One look at the cluster: why it is not ready yet ("" when it is). Ready: every broker named
// (else every registered one) is registered, unfenced and not shutting down, and no partition has
// fewer in-sync replicas than replicas (Kafka's UnderReplicatedPartitions = 0).
std::string not_ready(const ClusterOptions& o, const std::vector<int32_t>& wanted, int64_t* under) {
  cv1::DescribeClusterResponse cluster;
  auto describe = [](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DescribeClusterResponse* r) {
    return s->DescribeCluster(ctx, cv1::DescribeClusterRequest(), r);
  };
  if (!try_cluster(o, describe, &cluster)) return "no broker answers";
  std::map<int32_t, const cv1::BrokerDescription*> by_id;
  for (const auto& b : cluster.brokers()) by_id[b.broker_id()] = &b;
  std::vector<int32_t> ids = wanted;
  if (ids.empty()) {
    for (const auto& [id, b] : by_id) ids.push_back(id);
  }
  for (int32_t id : ids) {
    auto it = by_id.find(id);
    if (it == by_id.end()) return "broker " + std::to_string(id) + " is not registered";
    if (it->second->fenced()) return "broker " + std::to_string(id) + " is fenced";
    if (it->second->in_controlled_shutdown()) return "broker " + std::to_string(id) + " is shutting down";
  }
  bv1::MetadataResponse md;
  auto metadata = [](bv1::Broker::Stub* s, grpc::ClientContext* ctx, bv1::MetadataResponse* r) {
    return s->Metadata(ctx, bv1::MetadataRequest(), r);
  };
  if (!try_cluster(o, metadata, &md)) return "no broker answers Metadata";
  *under = 0;
  for (const auto& t : md.topics()) {
    for (const auto& p : t.partitions()) {
      if (p.isr_size() < p.replicas_size() || p.leader() < 0) ++*under;
    }
  }
  if (*under > 0) return std::to_string(*under) + " partition(s) under-replicated";
  return "";
}

int cluster_wait_ready(const Args& a) {
  const Command* c = find_command("cluster", "wait-ready");
  if (!a.operands().empty()) return usage_error("cluster wait-ready takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  std::vector<int32_t> wanted;
  for (const std::string& b : a.all("broker")) {
    auto id = parse_int32(b);
    if (!id || *id < 0) return usage_error("--broker " + b + ": not a broker id", c);
    wanted.push_back(*id);
  }
  int64_t wait_ms = 300'000;
  if (auto w = a.last("wait-ms")) {
    auto v = parse_int32(*w);
    if (!v || *v <= 0) return usage_error("--wait-ms " + *w + ": not a positive integer", c);
    wait_ms = *v;
  }
  // Progress on a terminal, one line rewritten; quiet under --output json or into a pipe.
  const bool progress = !o->json && isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  auto waited = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  };
  std::string why;
  int64_t under = -1;
  for (;;) {
    why = not_ready(*o, wanted, &under);
    if (why.empty() || waited() >= wait_ms) break;
    if (progress) std::fprintf(stderr, "\r\033[Kwaiting %.1f s: %s", waited() / 1000.0, why.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (progress) std::fprintf(stderr, "\r\033[K");
  const bool ready = why.empty();
  if (o->json) {
    Json j;
    j.begin_object().field_bool("ready", ready).field("waited_ms", waited()).field("under_replicated", under);
    j.field("reason", why).end_object().print();
  } else if (ready) {
    std::printf("Ready after %.1f s: brokers unfenced, every partition fully in sync.\n", waited() / 1000.0);
  }
  if (!ready) std::fprintf(stderr, "gannet: not ready after %.1f s: %s\n", waited() / 1000.0, why.c_str());
  return ready ? 0 : kExitError;
}

// ---- Users (SASL/SCRAM credentials) -------------------------------------------------------------

// The mechanisms of --mechanism (default: both SCRAM mechanisms, so every client can log in).
Result<std::vector<scram::Mechanism>> mechanisms_of(const Args& a) {
  std::vector<scram::Mechanism> out;
  for (const std::string& m : a.all("mechanism")) {
    const scram::Mechanism mech = scram::mechanism_from_name(m);
    if (mech == scram::Mechanism::kUnknown) return "--mechanism " + m + ": SCRAM-SHA-256 or SCRAM-SHA-512";
    if (std::find(out.begin(), out.end(), mech) == out.end()) out.push_back(mech);
  }
  return out;
}

// Prints each user's result (JSON: {"users": [...]}); returns the exit status.
int finish_users(const ClusterOptions& o, const cv1::AlterUserScramCredentialsResponse& resp,
                 const std::string& success) {
  if (o.json) {
    Json j;
    j.begin_object();
    json_request_error(j, resp.error_code(), resp.error_message(), resp.controller());
    j.key("users").begin_array();
    for (const auto& r : resp.results()) {
      j.begin_object().field("user", r.user()).field("error_code", code_name(r.error_code()));
      j.field("error_message", r.error_message()).end_object();
    }
    j.end_array().end_object().print();
  }
  if (report_request_error(resp.error_code(), resp.error_message(), &resp.controller())) return kExitError;
  bool failed = false;
  for (const auto& r : resp.results()) {
    if (r.error_code() != gannet::v1::NONE) {
      report_topic_error(r.user(), r.error_code(), r.error_message());
      failed = true;
    }
  }
  if (failed) return kExitError;
  if (!o.json) std::printf("%s\n", success.c_str());
  return 0;
}

int user_create(const Args& a) {
  const Command* c = find_command("user", "create");
  if (a.operands().size() != 1) return usage_error("expected one user name", c);
  const std::string name = a.operands()[0];
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  std::string password;
  if (auto p = a.last("password")) {
    password = *p;
  } else if (auto f = a.last("password-file")) {
    std::ifstream in(*f);
    if (!in || !std::getline(in, password)) return usage_error("--password-file " + *f + ": cannot read a line", c);
  } else {
    return usage_error("give --password or --password-file", c);
  }
  if (password.empty()) return usage_error("the password is empty", c);
  auto mechs = mechanisms_of(a);
  if (!mechs.ok()) return usage_error(mechs.error(), c);
  if (mechs->empty()) *mechs = {scram::Mechanism::kSha256, scram::Mechanism::kSha512};
  int32_t iterations = 4096;
  if (auto v = a.last("iterations")) {
    auto n = parse_int32(*v);
    if (!n || *n < scram::kMinIterations || *n > scram::kMaxIterations) {
      return usage_error("--iterations " + *v + ": between 4096 and 16384", c);
    }
    iterations = *n;
  }
  // The password never leaves this process: the controller gets a salt and the salted password
  // (PBKDF2), as Kafka's AlterUserScramCredentials carries them, and keeps only keys derived from it.
  cv1::AlterUserScramCredentialsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  std::vector<std::string> names;
  for (scram::Mechanism m : *mechs) {
    auto* u = req.add_upsertions();
    u->set_name(name);
    u->set_mechanism(static_cast<int32_t>(m));
    u->set_iterations(iterations);
    u->set_salt(scram::random_bytes(32));
    u->set_salted_password(scram::salted_password(m, password, u->salt(), iterations));
    names.push_back(scram::mechanism_name(m));
  }
  cv1::AlterUserScramCredentialsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::AlterUserScramCredentialsResponse* r) {
    return s->AlterUserScramCredentials(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  return finish_users(*o, resp, "Set the credentials of user " + name + " (" + join(names, ", ") + ").");
}

int user_delete(const Args& a) {
  const Command* c = find_command("user", "delete");
  if (a.operands().size() != 1) return usage_error("expected one user name", c);
  const std::string name = a.operands()[0];
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  auto mechs = mechanisms_of(a);
  if (!mechs.ok()) return usage_error(mechs.error(), c);
  if (mechs->empty()) {
    // Every credential the user has.
    cv1::DescribeUserScramCredentialsRequest dreq;
    dreq.add_users(name);
    cv1::DescribeUserScramCredentialsResponse dresp;
    auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DescribeUserScramCredentialsResponse* r) {
      return s->DescribeUserScramCredentials(ctx, dreq, r);
    };
    if (!call_cluster(*o, rpc, &dresp)) return kExitError;
    for (const auto& r : dresp.results()) {
      if (r.error_code() != gannet::v1::NONE) {
        report_topic_error(r.user(), r.error_code(), r.error_message());
        return kExitError;
      }
      for (const auto& info : r.credentials()) mechs->push_back(static_cast<scram::Mechanism>(info.mechanism()));
    }
  }
  cv1::AlterUserScramCredentialsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  for (scram::Mechanism m : *mechs) {
    auto* d = req.add_deletions();
    d->set_name(name);
    d->set_mechanism(static_cast<int32_t>(m));
  }
  cv1::AlterUserScramCredentialsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::AlterUserScramCredentialsResponse* r) {
    return s->AlterUserScramCredentials(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  return finish_users(*o, resp, "Deleted the credentials of user " + name + ".");
}

int user_list(const Args& a) {
  const Command* c = find_command("user", "list");
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  cv1::DescribeUserScramCredentialsRequest req;
  for (const std::string& u : a.operands()) req.add_users(u);
  cv1::DescribeUserScramCredentialsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DescribeUserScramCredentialsResponse* r) {
    return s->DescribeUserScramCredentials(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  auto mech_list = [](const cv1::UserScramCredentials& u) {
    std::vector<std::string> out;
    for (const auto& info : u.credentials()) {
      out.push_back(std::string(scram::mechanism_name(static_cast<scram::Mechanism>(info.mechanism()))) + " (" +
                    std::to_string(info.iterations()) + " iterations)");
    }
    return out;
  };
  if (o->json) {
    Json j;
    j.begin_object().key("users").begin_array();
    for (const auto& u : resp.results()) {
      j.begin_object().field("user", u.user()).field("error_code", code_name(u.error_code()));
      j.key("credentials").begin_array();
      for (const auto& info : u.credentials()) {
        j.begin_object()
            .field("mechanism", scram::mechanism_name(static_cast<scram::Mechanism>(info.mechanism())))
            .field("iterations", info.iterations())
            .end_object();
      }
      j.end_array().end_object();
    }
    j.end_array().end_object().print();
  } else {
    std::printf("%-24s %s\n", "USER", "CREDENTIALS");
    for (const auto& u : resp.results()) {
      if (u.error_code() != gannet::v1::NONE) continue;
      std::printf("%-24s %s\n", u.user().c_str(), join(mech_list(u), ", ").c_str());
    }
  }
  bool failed = false;
  for (const auto& u : resp.results()) {
    if (u.error_code() != gannet::v1::NONE) {
      report_topic_error(u.user(), u.error_code(), u.error_message());
      failed = true;
    }
  }
  return failed ? kExitError : 0;
}

// ---- ACLs ---------------------------------------------------------------------------------------

// The resource of --topic, --group, --transactional-id or --cluster (with
// --resource-pattern-type), for add (exactly one) and for list/remove filters (at most one).
struct AclResource {
  acl::ResourceType type = acl::ResourceType::kAny;
  std::optional<std::string> name;
  acl::PatternType pattern = acl::PatternType::kAny;
};

Result<AclResource> acl_resource(const Args& a, bool required) {
  AclResource r;
  int given = 0;
  for (auto [flag, type] : std::vector<std::pair<const char*, acl::ResourceType>>{
           {"topic", acl::ResourceType::kTopic},
           {"group", acl::ResourceType::kGroup},
           {"transactional-id", acl::ResourceType::kTransactionalId}}) {
    if (auto v = a.last(flag)) {
      ++given;
      r.type = type;
      r.name = *v;
    }
  }
  if (a.has("cluster")) {
    ++given;
    r.type = acl::ResourceType::kCluster;
    r.name = acl::kClusterName;
  }
  if (given > 1) return std::string("give one of --topic, --group, --transactional-id, --cluster");
  if (required && given == 0) return std::string("a resource is required: --topic, --group, --transactional-id or --cluster");
  if (auto p = a.last("resource-pattern-type")) {
    r.pattern = acl::pattern_type_from(*p);
    if (r.pattern == acl::PatternType::kUnknown || (required && r.pattern != acl::PatternType::kLiteral &&
                                                    r.pattern != acl::PatternType::kPrefixed)) {
      return "--resource-pattern-type " + *p + ": literal or prefixed" + (required ? "" : " (or any, match)");
    }
  } else if (required) {
    r.pattern = acl::PatternType::kLiteral;
  } else if (r.name) {
    r.pattern = acl::PatternType::kLiteral;
  }
  return r;
}

Result<std::vector<acl::Operation>> acl_operations(const Args& a) {
  std::vector<acl::Operation> out;
  for (const std::string& o : a.all("operation")) {
    const acl::Operation op = acl::operation_from(o);
    if (op == acl::Operation::kUnknown || op == acl::Operation::kAny) {
      return "--operation " + o + ": one of ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, "
                                  "DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE";
    }
    out.push_back(op);
  }
  return out;
}

void print_bindings(const ClusterOptions& o, const std::vector<cv1::AclBinding>& bindings) {
  auto row = [](const cv1::AclBinding& b) {
    return std::vector<std::string>{
        acl::name_of(static_cast<acl::ResourceType>(b.resource_type())), b.resource_name(),
        acl::name_of(static_cast<acl::PatternType>(b.pattern_type())), b.principal(), b.host(),
        acl::name_of(static_cast<acl::Operation>(b.operation())),
        acl::name_of(static_cast<acl::Permission>(b.permission_type()))};
  };
  if (o.json) {
    Json j;
    j.begin_object().key("acls").begin_array();
    for (const auto& b : bindings) {
      const auto r = row(b);
      j.begin_object()
          .field("resource_type", r[0])
          .field("resource_name", r[1])
          .field("pattern_type", r[2])
          .field("principal", r[3])
          .field("host", r[4])
          .field("operation", r[5])
          .field("permission", r[6])
          .end_object();
    }
    j.end_array().end_object().print();
    return;
  }
  std::printf("%-16s %-24s %-9s %-20s %-10s %-16s %s\n", "RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST",
              "OPERATION", "PERMISSION");
  for (const auto& b : bindings) {
    const auto r = row(b);
    std::printf("%-16s %-24s %-9s %-20s %-10s %-16s %s\n", r[0].c_str(), r[1].c_str(), r[2].c_str(), r[3].c_str(),
                r[4].c_str(), r[5].c_str(), r[6].c_str());
  }
}

int acl_add(const Args& a) {
  const Command* c = find_command("acl", "add");
  if (!a.operands().empty()) return usage_error("acl add takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  auto res = acl_resource(a, true);
  if (!res.ok()) return usage_error(res.error(), c);
  auto ops = acl_operations(a);
  if (!ops.ok()) return usage_error(ops.error(), c);
  if (ops->empty()) return usage_error("--operation is required", c);
  const auto allow = a.all("allow-principal"), deny = a.all("deny-principal");
  if (allow.empty() && deny.empty()) return usage_error("give --allow-principal or --deny-principal", c);
  const std::string host = a.last("host").value_or("*");
  cv1::CreateAclsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  for (auto [principals, permission] : {std::make_pair(allow, acl::Permission::kAllow),
                                        std::make_pair(deny, acl::Permission::kDeny)}) {
    for (const std::string& p : principals) {
      for (acl::Operation op : *ops) {
        auto* b = req.add_creations();
        b->set_resource_type(static_cast<int32_t>(res->type));
        b->set_resource_name(*res->name);
        b->set_pattern_type(static_cast<int32_t>(res->pattern));
        b->set_principal(p);
        b->set_host(host);
        b->set_operation(static_cast<int32_t>(op));
        b->set_permission_type(static_cast<int32_t>(permission));
      }
    }
  }
  cv1::CreateAclsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::CreateAclsResponse* r) {
    return s->CreateAcls(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  if (report_request_error(resp.error_code(), resp.error_message(), &resp.controller())) return kExitError;
  bool failed = false;
  std::vector<cv1::AclBinding> added;
  for (int i = 0; i < req.creations_size(); ++i) {
    const auto* r = i < resp.results_size() ? &resp.results(i) : nullptr;
    if (!r || r->error_code() != gannet::v1::NONE) {
      report_topic_error("acl", r ? r->error_code() : gannet::v1::UNKNOWN_SERVER_ERROR,
                         r ? r->error_message() : "no result");
      failed = true;
    } else {
      added.push_back(req.creations(i));
    }
  }
  print_bindings(*o, added);
  return failed ? kExitError : 0;
}

cv1::AclFilter acl_filter(const AclResource& res, const Args& a) {
  cv1::AclFilter f;
  f.set_resource_type(static_cast<int32_t>(res.type));
  if (res.name) f.set_resource_name(*res.name);
  f.set_pattern_type(static_cast<int32_t>(res.pattern));
  if (auto p = a.last("principal")) f.set_principal(*p);
  if (auto h = a.last("host")) f.set_host(*h);
  f.set_operation(static_cast<int32_t>(acl::Operation::kAny));
  f.set_permission_type(static_cast<int32_t>(acl::Permission::kAny));
  return f;
}

int acl_list(const Args& a) {
  const Command* c = find_command("acl", "list");
  if (!a.operands().empty()) return usage_error("acl list takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  auto res = acl_resource(a, false);
  if (!res.ok()) return usage_error(res.error(), c);
  cv1::DescribeAclsRequest req;
  *req.mutable_filter() = acl_filter(*res, a);
  cv1::DescribeAclsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DescribeAclsResponse* r) {
    return s->DescribeAcls(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  if (report_request_error(resp.error_code(), resp.error_message(), nullptr)) return kExitError;
  print_bindings(*o, {resp.acls().begin(), resp.acls().end()});
  return 0;
}

int acl_remove(const Args& a) {
  const Command* c = find_command("acl", "remove");
  if (!a.operands().empty()) return usage_error("acl remove takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  auto res = acl_resource(a, false);
  if (!res.ok()) return usage_error(res.error(), c);
  if (!res->name && !a.last("principal")) {
    return usage_error("name a resource or a --principal", c);
  }
  auto ops = acl_operations(a);
  if (!ops.ok()) return usage_error(ops.error(), c);
  cv1::DeleteAclsRequest req;
  req.set_timeout_ms(o->timeout_ms);
  if (ops->empty()) {
    *req.add_filters() = acl_filter(*res, a);
  } else {
    for (acl::Operation op : *ops) {
      auto* f = req.add_filters();
      *f = acl_filter(*res, a);
      f->set_operation(static_cast<int32_t>(op));
    }
  }
  cv1::DeleteAclsResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, cv1::DeleteAclsResponse* r) {
    return s->DeleteAcls(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  if (report_request_error(resp.error_code(), resp.error_message(), &resp.controller())) return kExitError;
  std::vector<cv1::AclBinding> removed;
  bool failed = false;
  for (const auto& fr : resp.filter_results()) {
    if (fr.error_code() != gannet::v1::NONE) {
      report_topic_error("acl", fr.error_code(), fr.error_message());
      failed = true;
    }
    removed.insert(removed.end(), fr.matching().begin(), fr.matching().end());
  }
  print_bindings(*o, removed);
  return failed ? kExitError : 0;
}

// ---- Metadata reads: list, describe -------------------------------------------------------------

// The replication factor of a topic: its largest replica set (they differ only while partitions
// are being reassigned).
int replication_factor(const bv1::TopicMetadata& t) {
  int rf = 0;
  for (const auto& p : t.partitions()) rf = std::max(rf, p.replicas_size());
  return rf;
}

void json_metadata_header(Json& j, const bv1::MetadataResponse& m) {
  j.field("broker_id", m.broker_id()).field("metadata_offset", m.metadata_offset());
  j.field("cluster_id", m.cluster_id()).field("controller_id", m.controller_id());
}

// Prints each topic error; says whether there was one.
bool report_metadata_errors(const std::vector<const bv1::TopicMetadata*>& topics) {
  bool failed = false;
  for (const bv1::TopicMetadata* t : topics) {
    if (t->error_code() == gannet::v1::NONE) continue;
    report_topic_error(t->name(), t->error_code(),
                       t->error_code() == gannet::v1::UNKNOWN_TOPIC_OR_PARTITION
                           ? "no such topic"
                           : "");
    failed = true;
  }
  return failed;
}

std::vector<const bv1::TopicMetadata*> sorted_topics(const bv1::MetadataResponse& m) {
  std::vector<const bv1::TopicMetadata*> out;
  for (const auto& t : m.topics()) out.push_back(&t);
  std::sort(out.begin(), out.end(), [](auto* x, auto* y) { return x->name() < y->name(); });
  return out;
}

int topic_list(const Args& a) {
  const Command* c = find_command("topic", "list");
  if (!a.operands().empty()) return usage_error("topic list takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  bv1::MetadataRequest req;  // no topics: all of them
  bv1::MetadataResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, bv1::MetadataResponse* r) {
    return s->Metadata(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  auto topics = sorted_topics(resp);
  if (o->json) {
    Json j;
    j.begin_object();
    json_metadata_header(j, resp);
    j.key("topics").begin_array();
    for (const bv1::TopicMetadata* t : topics) {
      j.begin_object();
      j.field("name", t->name()).field("error_code", code_name(t->error_code()));
      j.field("topic_id", uuid_text(t->topic_id()));
      j.field("partitions", t->partitions_size());
      j.field("replication_factor", replication_factor(*t));
      j.end_object();
    }
    j.end_array().end_object().print();
  } else if (topics.empty()) {
    std::printf("(no topics)\n");
  } else {
    Table table({"TOPIC", "TOPIC ID", "PARTITIONS", "REPLICATION FACTOR"});
    for (const bv1::TopicMetadata* t : topics) {
      if (t->error_code() != gannet::v1::NONE) continue;
      table.add({t->name(), uuid_text(t->topic_id()), std::to_string(t->partitions_size()),
                 std::to_string(replication_factor(*t))});
    }
    table.print();
  }
  return report_metadata_errors(topics) ? kExitError : 0;
}

void print_topic_text(const bv1::TopicMetadata& t) {
  std::vector<std::string> configs;
  for (const auto& e : t.configs()) configs.push_back(e.name() + "=" + e.value());
  std::sort(configs.begin(), configs.end());
  std::vector<const bv1::PartitionMetadata*> parts;
  bool any_error = false;
  for (const auto& p : t.partitions()) {
    parts.push_back(&p);
    any_error = any_error || p.error_code() != gannet::v1::NONE;
  }
  std::sort(parts.begin(), parts.end(),
            [](auto* x, auto* y) { return x->partition() < y->partition(); });
  std::printf("Topic: %s\n", t.name().c_str());
  std::printf("  Topic ID:           %s\n", uuid_text(t.topic_id()).c_str());
  std::printf("  Partitions:         %d\n", t.partitions_size());
  std::printf("  Replication factor: %d\n", replication_factor(t));
  std::printf("  Configs:            %s\n",
              configs.empty() ? "(none: broker defaults)" : join(configs, ", ").c_str());
  std::printf("\n");
  std::vector<std::string> header = {"PARTITION", "LEADER", "LEADER EPOCH", "REPLICAS", "ISR",
                                     "OFFLINE"};
  if (any_error) header.push_back("STATUS");
  Table table(header);
  for (const bv1::PartitionMetadata* p : parts) {
    std::vector<std::string> row = {
        std::to_string(p->partition()),
        p->leader() < 0 ? "none" : std::to_string(p->leader()),
        std::to_string(p->leader_epoch()),
        id_list(p->replicas()),
        id_list(p->isr()),
        id_list(p->offline_replicas())};
    if (any_error) {
      row.push_back(p->error_code() == gannet::v1::NONE ? "" : code_name(p->error_code()));
    }
    table.add(std::move(row));
  }
  table.print("  ");
}

void print_topic_json(Json& j, const bv1::TopicMetadata& t) {
  j.begin_object();
  j.field("name", t.name()).field("error_code", code_name(t.error_code()));
  if (t.error_code() != gannet::v1::NONE) {
    j.end_object();
    return;
  }
  j.field("topic_id", uuid_text(t.topic_id()));
  j.field("replication_factor", replication_factor(t));
  j.key("configs").begin_object();
  for (const auto& e : t.configs()) j.field(e.name(), e.value());
  j.end_object();
  std::vector<const bv1::PartitionMetadata*> parts;
  for (const auto& p : t.partitions()) parts.push_back(&p);
  std::sort(parts.begin(), parts.end(),
            [](auto* x, auto* y) { return x->partition() < y->partition(); });
  j.key("partitions").begin_array();
  for (const bv1::PartitionMetadata* p : parts) {
    j.begin_object();
    j.field("partition", p->partition()).field("error_code", code_name(p->error_code()));
    j.field("leader", p->leader()).field("leader_epoch", p->leader_epoch());
    j.field("partition_epoch", p->partition_epoch());
    j.int_array("replicas", p->replicas()).int_array("isr", p->isr());
    j.int_array("offline_replicas", p->offline_replicas());
    j.end_object();
  }
  j.end_array().end_object();
}

int topic_describe(const Args& a) {
  const Command* c = find_command("topic", "describe");
  auto names = a.operands();
  if (names.empty()) return usage_error("a topic name is required", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  bv1::MetadataRequest req;
  for (const std::string& n : names) req.add_topics(n);
  bv1::MetadataResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx, bv1::MetadataResponse* r) {
    return s->Metadata(ctx, req, r);
  };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  // In the order asked; a name the response leaves out counts as unknown.
  std::vector<const bv1::TopicMetadata*> topics;
  std::vector<bv1::TopicMetadata> missing;
  missing.reserve(names.size());
  for (const std::string& n : names) {
    const bv1::TopicMetadata* found = nullptr;
    for (const auto& t : resp.topics()) {
      if (t.name() == n) found = &t;
    }
    if (found == nullptr) {
      bv1::TopicMetadata& m = missing.emplace_back();
      m.set_name(n);
      m.set_error_code(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
      found = &m;
    }
    topics.push_back(found);
  }
  if (o->json) {
    Json j;
    j.begin_object();
    json_metadata_header(j, resp);
    j.key("topics").begin_array();
    for (const bv1::TopicMetadata* t : topics) print_topic_json(j, *t);
    j.end_array().end_object().print();
  } else {
    bool first = true;
    for (const bv1::TopicMetadata* t : topics) {
      if (t->error_code() != gannet::v1::NONE) continue;
      if (!first) std::printf("\n");
      first = false;
      print_topic_text(*t);
    }
  }
  return report_metadata_errors(topics) ? kExitError : 0;
}

// ---- Cluster ------------------------------------------------------------------------------------

const char* broker_status(const cv1::BrokerDescription& b) {
  if (b.in_controlled_shutdown()) return "controlled-shutdown";
  return b.fenced() ? "fenced" : "unfenced";
}

int cluster_info(const Args& a) {
  const Command* c = find_command("cluster", "info");
  if (!a.operands().empty()) return usage_error("cluster info takes no operands", c);
  auto o = cluster_options(a);
  if (!o.ok()) return usage_error(o.error(), c);
  cv1::DescribeClusterRequest req;
  cv1::DescribeClusterResponse resp;
  auto rpc = [&](bv1::Broker::Stub* s, grpc::ClientContext* ctx,
                 cv1::DescribeClusterResponse* r) { return s->DescribeCluster(ctx, req, r); };
  if (!call_cluster(*o, rpc, &resp)) return kExitError;
  std::vector<const cv1::BrokerDescription*> brokers;
  for (const auto& b : resp.brokers()) brokers.push_back(&b);
  std::sort(brokers.begin(), brokers.end(),
            [](auto* x, auto* y) { return x->broker_id() < y->broker_id(); });
  auto endpoints = [](const cv1::BrokerDescription& b) {
    std::vector<std::string> out;
    for (const auto& e : b.endpoints()) {
      out.push_back(e.name() + "://" + e.host() + ":" + std::to_string(e.port()));
    }
    return out;
  };
  if (o->json) {
    Json j;
    j.begin_object();
    json_request_error(j, resp.error_code(), resp.error_message(), resp.controller());
    j.field("cluster_id", resp.cluster_id()).field("controller_id", resp.controller_id());
    j.field("quorum_epoch", resp.quorum_epoch()).field("metadata_offset", resp.metadata_offset());
    j.key("brokers").begin_array();
    for (const cv1::BrokerDescription* b : brokers) {
      j.begin_object();
      j.field("broker_id", b->broker_id());
      j.key("endpoints").begin_array();
      for (const auto& e : b->endpoints()) {
        j.begin_object().field("name", e.name()).field("host", e.host());
        j.field("port", e.port()).end_object();
      }
      j.end_array();
      j.field("rack", b->rack()).field("status", broker_status(*b));
      j.field_bool("fenced", b->fenced());
      j.field_bool("in_controlled_shutdown", b->in_controlled_shutdown());
      j.field("broker_epoch", b->broker_epoch()).field("metadata_offset", b->metadata_offset());
      j.field("leaderships", b->leaderships()).field("replicas", b->replicas());
      j.end_object();
    }
    j.end_array().end_object().print();
  }
  if (report_request_error(resp.error_code(), resp.error_message(), &resp.controller())) {
    return kExitError;
  }
  if (o->json) return 0;
  std::printf("Cluster ID:        %s\n", resp.cluster_id().c_str());
  std::printf("Active controller: %s\n",
              resp.controller_id() < 0 ? "none" : std::to_string(resp.controller_id()).c_str());
  std::printf("Quorum epoch:      %d\n", resp.quorum_epoch());
  std::printf("Metadata offset:   %lld\n", static_cast<long long>(resp.metadata_offset()));
  std::printf("\n");
  if (brokers.empty()) {
    std::printf("(no brokers registered)\n");
    return 0;
  }
  Table table({"BROKER", "STATUS", "EPOCH", "METADATA OFFSET", "LEADERS", "REPLICAS", "RACK",
               "ENDPOINTS"});
  for (const cv1::BrokerDescription* b : brokers) {
    auto eps = endpoints(*b);
    table.add({std::to_string(b->broker_id()), broker_status(*b),
               std::to_string(b->broker_epoch()),
               b->metadata_offset() < 0 ? "unknown" : std::to_string(b->metadata_offset()),
               std::to_string(b->leaderships()), std::to_string(b->replicas()),
               b->rack().empty() ? "-" : b->rack(), eps.empty() ? "-" : join(eps, ",")});
  }
  table.print();
  return 0;
}

// ---- Storage ------------------------------------------------------------------------------------

int storage_format(const Args& a) {
  namespace broker = gannet::broker;
  const Command* c = find_command("storage", "format");
  if (!a.operands().empty()) return usage_error("storage format takes no operands", c);
  auto cluster_id = a.last("cluster-id");
  auto config_path = a.last("config");
  if (!cluster_id) return usage_error("--cluster-id is required", c);
  if (!config_path) return usage_error("--config is required", c);
  if (!broker::valid_cluster_id(*cluster_id)) {
    return usage_error("--cluster-id " + *cluster_id +
                           ": expected 1-64 characters of A-Z a-z 0-9 _ - (`gannet storage "
                           "random-uuid` makes one)",
                       c);
  }
  auto props = broker::load_properties_file(*config_path);
  if (!props.ok()) {
    std::fprintf(stderr, "gannet: %s\n", props.error().message.c_str());
    return kExitError;
  }
  auto overridden = broker::apply_overrides(std::move(*props), a.all("override"));
  if (!overridden.ok()) return usage_error(overridden.error().message, c);
  auto config = broker::ServerConfig::from_properties(*overridden);
  if (!config.ok()) {
    std::fprintf(stderr, "gannet: %s: %s\n", config_path->c_str(),
                 config.error().message.c_str());
    return kExitError;
  }
  if (config->cluster_id && *config->cluster_id != *cluster_id) {
    std::fprintf(stderr, "gannet: --cluster-id is %s, but %s sets cluster.id=%s\n",
                 cluster_id->c_str(), config_path->c_str(), config->cluster_id->c_str());
    return kExitError;
  }
  const broker::MetaProperties meta{*cluster_id, config->node_id};
  const bool ignore_formatted = a.has("ignore-formatted");

  // Check every directory before writing to any, so that a failure changes nothing.
  std::vector<std::string> to_format;
  bool failed = false;
  for (const std::string& dir : config->log_dirs) {
    auto existing = broker::read_meta_properties(dir);
    if (!existing.ok()) {
      std::fprintf(stderr, "gannet: %s\n", existing.error().message.c_str());
      failed = true;
    } else if (!existing->has_value()) {
      to_format.push_back(dir);
    } else if (**existing != meta) {
      std::fprintf(stderr,
                   "gannet: data directory %s is already formatted for cluster %s, node %d "
                   "(not cluster %s, node %d); not touching it\n",
                   dir.c_str(), (*existing)->cluster_id.c_str(), (*existing)->node_id,
                   meta.cluster_id.c_str(), meta.node_id);
      failed = true;
    } else if (!ignore_formatted) {
      std::fprintf(stderr,
                   "gannet: data directory %s is already formatted (cluster.id %s, node.id %d);"
                   " use --ignore-formatted to skip it and format the others\n",
                   dir.c_str(), meta.cluster_id.c_str(), meta.node_id);
      failed = true;
    } else {
      std::printf("Data directory %s is already formatted (cluster.id %s, node.id %d): skipped.\n",
                  dir.c_str(), meta.cluster_id.c_str(), meta.node_id);
    }
  }
  if (failed) return kExitError;
  for (const std::string& dir : to_format) {
    auto w = broker::write_meta_properties(dir, meta);
    if (!w.ok()) {
      std::fprintf(stderr, "gannet: %s\n", w.error().message.c_str());
      return kExitError;
    }
    std::printf("Formatted data directory %s (cluster.id %s, node.id %d).\n", dir.c_str(),
                meta.cluster_id.c_str(), meta.node_id);
  }
  return 0;
}

int storage_random_uuid(const Args& a) {
  if (!a.operands().empty()) {
    return usage_error("storage random-uuid takes no operands",
                       find_command("storage", "random-uuid"));
  }
  std::printf("%s\n", gannet::broker::random_cluster_id().c_str());
  return 0;
}

// ---- Quorum -------------------------------------------------------------------------------------

std::unique_ptr<Quorum::Stub> quorum_stub(const std::string& address) {
  return Quorum::NewStub(grpc::CreateChannel(address, credentials()));
}

bool describe_quorum(const std::string& address, gannet::raft::v1::DescribeQuorumResponse* out,
                     std::string* error) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status st = quorum_stub(address)->DescribeQuorum(&ctx, {}, out);
  if (!st.ok()) *error = address + ": " + st.error_message();
  return st.ok();
}

// DescribeQuorum from the first of a comma-separated list of controllers that answers (as Kafka's
// --bootstrap-controller); *answered is the address that did. The error names every address tried.
bool describe_any(const std::string& list, gannet::raft::v1::DescribeQuorumResponse* out, std::string* answered,
                  std::string* error) {
  std::vector<std::string> tried;
  for (const std::string& address : split(list, ',')) {
    if (address.empty()) continue;
    std::string why;
    if (describe_quorum(address, out, &why)) {
      *answered = address;
      return true;
    }
    tried.push_back(why);
  }
  *error = tried.empty() ? std::string("--bootstrap-controller: no address given") : join(tried, "; ");
  return false;
}

void replica_json(Json& j, const gannet::raft::v1::ReplicaState& r) {
  j.begin_object().field("id", r.id()).field("log_end_offset", r.log_end_offset());
  j.field("lag", r.lag()).field("last_fetch_ms_ago", r.last_fetch_ms_ago()).end_object();
}

int quorum_status(const Args& a) {
  const Command* c = find_command("quorum", "status");
  if (auto loaded = load_command_config(a); !loaded.ok()) return usage_error(loaded.error(), c);
  auto address = a.last("bootstrap-controller");
  if (!address) return usage_error("--bootstrap-controller is required", c);
  if (!a.operands().empty()) return usage_error("quorum status takes no operands", c);
  auto output = a.last("output").value_or("text");
  if (output != "text" && output != "json") {
    return usage_error("--output " + output + ": expected text or json", c);
  }
  gannet::raft::v1::DescribeQuorumResponse d;
  std::string error, answered;
  if (!describe_any(*address, &d, &answered, &error)) {
    std::fprintf(stderr, "gannet: %s\n", error.c_str());
    return kExitError;
  }
  // Replica states come from the leader: ask it if the bootstrap controller is not it.
  if (d.role() != "leader" && !d.leader_address().empty()) {
    gannet::raft::v1::DescribeQuorumResponse l;
    if (describe_quorum(d.leader_address(), &l, &error)) d = l;
  }
  if (output == "json") {
    Json j;
    j.begin_object().field("leader", d.leader()).field("epoch", d.epoch());
    j.field("high_watermark", d.high_watermark()).field("log_end_offset", d.log_end_offset());
    j.field("answered_by", d.node_id()).field("role", d.role());
    j.key("voters").begin_array();
    for (const auto& r : d.voters()) replica_json(j, r);
    j.end_array().key("observers").begin_array();
    for (const auto& r : d.observers()) replica_json(j, r);
    j.end_array().end_object().print();
    return 0;
  }
  std::printf("leader:         %d%s\n", d.leader(), d.leader() < 0 ? " (none)" : "");
  std::printf("epoch:          %d\n", d.epoch());
  std::printf("high watermark: %lld\n", static_cast<long long>(d.high_watermark()));
  std::printf("answered by:    node %d (%s)\n", d.node_id(), d.role().c_str());
  std::printf("\n%-10s %-6s %16s %10s %18s\n", "replica", "id", "log end offset", "lag",
              "last fetch (ms ago)");
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
  const Command* c = find_command("quorum", "append");
  if (auto loaded = load_command_config(a); !loaded.ok()) return usage_error(loaded.error(), c);
  auto bootstrap = a.last("bootstrap-controller");
  if (!bootstrap) return usage_error("--bootstrap-controller is required", c);
  auto records = a.operands();
  if (records.empty()) return usage_error("at least one RECORD is required", c);
  // Start at the leader the first answering controller names (or that controller).
  std::string address;
  {
    gannet::raft::v1::DescribeQuorumResponse d;
    std::string error;
    if (!describe_any(*bootstrap, &d, &address, &error)) {
      std::fprintf(stderr, "gannet: %s\n", error.c_str());
      return kExitError;
    }
    if (!d.leader_address().empty()) address = d.leader_address();
  }
  gannet::raft::v1::AppendRequest req;
  for (const std::string& r : records) req.add_records(r);
  if (auto t = a.last("timeout-ms")) {
    auto v = parse_int32(*t);
    if (!v || *v <= 0) return usage_error("--timeout-ms " + *t + ": not a positive integer", c);
    req.set_timeout_ms(*v);
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    gannet::raft::v1::AppendResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status st = quorum_stub(address)->Append(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "gannet: %s: %s\n", address.c_str(), st.error_message().c_str());
      return kExitError;
    }
    if (resp.error() == gannet::v1::NONE) {
      std::printf("committed up to offset %lld\n", static_cast<long long>(resp.last_offset()));
      return 0;
    }
    if (resp.error() != gannet::v1::NOT_CONTROLLER) {
      std::fprintf(stderr, "gannet: %s\n", resp.message().c_str());
      return kExitError;
    }
    // Follow the leader.
    gannet::raft::v1::DescribeQuorumResponse d;
    std::string error;
    if (!describe_quorum(address, &d, &error) || d.leader_address().empty()) {
      std::fprintf(stderr, "gannet: no quorum leader known (%s)\n", resp.message().c_str());
      return kExitError;
    }
    address = d.leader_address();
  }
  std::fprintf(stderr, "gannet: the quorum leader kept moving\n");
  return kExitError;
}

// ---- The command table --------------------------------------------------------------------------

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"topic", "create",
       "NAME [--partitions N] [--replication-factor R] [--config KEY=VALUE]...", true,
       {"partitions", "replication-factor", "config"}, topic_create},
      {"topic", "list", "", true, {}, topic_list},
      {"topic", "describe", "NAME...", true, {}, topic_describe},
      {"topic", "delete", "NAME", true, {}, topic_delete},
      {"topic", "alter-config", "NAME [--set KEY=VALUE]... [--delete KEY]...", true,
       {"set", "delete"}, topic_alter_config},
      {"topic", "add-partitions", "NAME --partitions TOTAL", true, {"partitions"},
       topic_add_partitions},
      {"cluster", "info", "", true, {}, cluster_info},
      {"cluster", "wait-ready", "[--broker ID]... [--wait-ms MS]", true, {"broker", "wait-ms"}, cluster_wait_ready},
      {"user", "create",
       "NAME --password P|--password-file FILE [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]... [--iterations N]", true,
       {"password", "password-file", "mechanism", "iterations"}, user_create},
      {"user", "delete", "NAME [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]...", true, {"mechanism"}, user_delete},
      {"user", "list", "[NAME...]", true, {}, user_list},
      {"acl", "add",
       "(--allow-principal P | --deny-principal P)... --operation OP... (--topic T | --group G | --transactional-id X | "
       "--cluster) [--resource-pattern-type literal|prefixed] [--host H]",
       true, {"allow-principal", "deny-principal", "operation", "topic", "group", "transactional-id", "cluster",
              "resource-pattern-type", "host"}, acl_add},
      {"acl", "list", "[--topic T | --group G | --transactional-id X | --cluster] [--resource-pattern-type any|match|literal|prefixed] [--principal P]",
       true, {"topic", "group", "transactional-id", "cluster", "resource-pattern-type", "principal", "host"}, acl_list},
      {"acl", "remove",
       "[--topic T | --group G | --transactional-id X | --cluster] [--resource-pattern-type ...] [--principal P] "
       "[--operation OP]...",
       true, {"topic", "group", "transactional-id", "cluster", "resource-pattern-type", "principal", "host", "operation"},
       acl_remove},
      {"quorum", "status", "--bootstrap-controller HOST:PORT[,HOST:PORT...] [--output text|json]", false,
       {"bootstrap-controller", "output", "command-config"}, quorum_status},
      {"quorum", "append", "--bootstrap-controller HOST:PORT[,HOST:PORT...] [--timeout-ms N] RECORD...", false,
       {"bootstrap-controller", "timeout-ms", "command-config"}, quorum_append},
      {"storage", "format",
       "--cluster-id ID --config FILE [--override KEY=VALUE]... [--ignore-formatted]", false,
       {"cluster-id", "config", "override", "ignore-formatted"}, storage_format},
      {"storage", "random-uuid", "", false, {}, storage_random_uuid},
      {"perf", "produce",
       "TOPIC [--num-records N] [--record-size BYTES] [--throughput RECORDS_PER_SEC] [--acks all|1|0] "
       "[--batch-size BYTES] [--linger-ms MS] [--compression none|gzip|snappy|lz4|zstd] [--buffer-memory BYTES]",
       true, {"num-records", "record-size", "throughput", "acks", "batch-size", "linger-ms", "compression", "buffer-memory"},
       gannet::tools::perf_produce_command},
      {"perf", "consume", "TOPIC [--num-records N]", true, {"num-records"}, gannet::tools::perf_consume_command},
      {"group", "list", "", true, {}, gannet::tools::group_list_command},
      {"group", "describe", "GROUP", true, {}, gannet::tools::group_describe_command},
      {"group", "reset-offsets",
       "GROUP --topic TOPIC [--partition P] --to-earliest|--to-latest|--to-offset N|--shift-by N|--to-datetime T "
       "[--dry-run]",
       true, {"topic", "partition", "to-earliest", "to-latest", "to-offset", "shift-by", "to-datetime", "dry-run"},
       gannet::tools::group_reset_offsets_command},
      {"group", "delete", "GROUP", true, {}, gannet::tools::group_delete_command},
  };
  return kCommands;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = gannet::tools::parse_args(std::vector<std::string>(argv + 1, argv + argc),
                                          kBooleanFlags);
  if (!parsed.ok()) return usage_error(parsed.error());
  const Args& a = *parsed;
  if (a.positional.empty()) {
    if (a.has("help")) {
      print_usage(stdout);
      return 0;
    }
    return usage_error("no command given");
  }
  // The one-word record commands.
  if (a.positional[0] == "produce") return gannet::tools::produce_command(a);
  if (a.positional[0] == "consume") return gannet::tools::consume_command(a);
  if (a.positional.size() < 2) {
    if (a.has("help")) {
      print_usage(stdout);
      return 0;
    }
    return usage_error("incomplete command: " + a.positional[0]);
  }
  const Command* c = find_command(a.positional[0], a.positional[1]);
  if (c == nullptr) {
    return usage_error("unknown command: " + a.positional[0] + " " + a.positional[1]);
  }
  if (a.has("help")) {
    std::printf("usage: %s\n", synopsis(*c, false).c_str());
    if (c->cluster) std::printf("%s", kClusterFlagsHelp);
    return 0;
  }
  for (const auto& [flag, values] : a.flags) {
    bool cluster_flag = flag == "bootstrap-server" || flag == "timeout-ms" || flag == "output" || flag == "command-config";
    if (!c->flags.count(flag) && !(c->cluster && cluster_flag)) {
      return usage_error(std::string(c->group) + " " + c->name + " does not take --" + flag, c);
    }
  }
  return c->run(a);
}
