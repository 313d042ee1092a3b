// gannetd: the Gannet server. Reads a Kafka-style properties file (--config FILE) with
// --override key=value on top, and runs the roles it names. Today: the metadata quorum
// (process.roles=controller); the broker role arrives with the metadata layer.
//
//   gannetd --config server.properties [--override key=value ...]
//
// Stops gracefully on SIGTERM or SIGINT (a quorum leader hands leadership over first).
#include <glog/logging.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "broker/server_config.h"
#include "raft/raft_node.h"

namespace {

int usage() {
  std::fprintf(stderr, "usage: gannetd --config FILE [--override key=value ...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  std::string config_path;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "--override") && i + 1 < argc) {
      (a == "--config" ? config_path : overrides.emplace_back()) = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a.rfind("--override=", 0) == 0) {
      overrides.push_back(a.substr(11));
    } else {
      return usage();
    }
  }
  if (config_path.empty()) return usage();
  using namespace gannet;
  auto props = broker::load_properties_file(config_path);
  if (!props.ok()) {
    std::fprintf(stderr, "gannetd: %s\n", props.error().message.c_str());
    return 2;
  }
  auto merged = broker::apply_overrides(*props, overrides);
  if (!merged.ok()) {
    std::fprintf(stderr, "gannetd: %s\n", merged.error().message.c_str());
    return 2;
  }
  auto cfg = broker::ServerConfig::from_properties(*merged);
  if (!cfg.ok()) {
    std::fprintf(stderr, "gannetd: invalid configuration: %s\n", cfg.error().message.c_str());
    return 2;
  }
  LOG(INFO) << "gannetd starting with:\n" << cfg->describe();
  if (!cfg->is_controller()) {
    std::fprintf(stderr, "gannetd: process.roles=broker alone is not supported yet; "
                         "run with process.roles=controller (or broker,controller)\n");
    return 2;
  }
  if (cfg->is_broker()) {
    LOG(WARNING) << "the broker role is not implemented yet; running the controller role only";
  }

  // Block the stop signals before any thread starts, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  raft::RaftNodeOptions o;
  o.id = cfg->node_id;
  for (const auto& v : cfg->quorum_voters) o.voters[v.id] = v.address();
  auto listener = cfg->listener(cfg->controller_listener_names.front());
  if (!listener) {
    std::fprintf(stderr, "gannetd: no %s listener\n", cfg->controller_listener_names.front().c_str());
    return 2;
  }
  o.listen_address = (listener->host.empty() ? "0.0.0.0" : listener->host) + ":" +
                     std::to_string(listener->port);
  o.data_dir = cfg->log_dirs.front();
  o.election_timeout_ms = cfg->controller_quorum_election_timeout_ms;
  o.fetch_timeout_ms = cfg->controller_quorum_fetch_timeout_ms;
  o.fetch_max_wait_ms = std::max<int64_t>(50, cfg->controller_quorum_fetch_timeout_ms / 4);
  auto node = raft::RaftNode::start(o);
  if (!node.ok()) {
    std::fprintf(stderr, "gannetd: cannot start the quorum: %s\n", node.error().to_string().c_str());
    return 1;
  }
  LOG(INFO) << "gannetd node " << o.id << " running; quorum listener on port " << (*node)->port();
  int sig = 0;
  sigwait(&stop, &sig);
  LOG(INFO) << "gannetd: signal " << sig << ", stopping";
  (*node)->shutdown();
  return 0;
}
