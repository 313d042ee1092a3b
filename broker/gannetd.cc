// gannetd: the Gannet server. Reads a Kafka-style properties file (--config FILE) with
// --override key=value on top, and runs the roles it names: controller (a voter of the metadata
// quorum and, when it leads, the active controller), broker (partition logs and the client API;
// an observer of the metadata log), or both. Every data directory must carry the meta.properties
// that `gannet storage format` writes.
//
//   gannetd --config server.properties [--override key=value ...]
//
// Stops gracefully on SIGTERM or SIGINT: a broker first has the controller move its leaderships
// away (controlled shutdown), a quorum leader hands leadership over.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <glog/logging.h>
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker_server.h"
#include "broker/controller_service.h"
#include "broker/meta_properties.h"
#include "broker/server_config.h"
#include "common/principal_rules.h"
#include "metadata/metadata_publisher.h"
#include "metadata/quorum_controller.h"
#include "raft/raft_node.h"

namespace {

int usage() {
  std::fprintf(stderr, "usage: gannetd --config FILE [--override key=value ...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives threads up to 8 malloc arenas per core. gRPC's synchronous server runs a thread per
  // call in flight, so after a burst of concurrent requests the heap sits in many half-used arenas
  // and resident memory creeps up for a long time (data_bench --soak-seconds 60: +4% over the
  // last 40 s at ~100 MB). Two arenas keep it flat (+0.0-0.4%) at about half the size, with no
  // measurable cost in throughput on this machine. MALLOC_ARENA_MAX in the environment wins.
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
  // Batch-sized buffers (requests, fetch responses, record copies) come and go at the data
  // rate. By default glibc maps each large one afresh and trims freed heap tops, so every
  // megabyte moved is also a megabyte of page faults and zeroed pages (and, in a VM, of memory
  // the host must back again): about 10% of a broker's CPU under replication. Buffers up to
  // 32 MiB are served from the heap, and up to 64 MiB of free heap is kept per arena for reuse.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  // Every gRPC server of this process (the client listener, the controller's and the quorum's)
  // serves the standard health service (grpc.health.v1.Health: SERVING once it listens) and
  // server reflection, so generic gRPC tools can list and call the services.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 64 << 20);
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

  // Every data directory must have been formatted for this cluster and node.
  std::string cluster_id;
  for (const std::string& dir : cfg->log_dirs) {
    auto meta = broker::check_meta_properties(dir, cfg->node_id, cfg->cluster_id);
    if (!meta.ok()) {
      std::fprintf(stderr, "gannetd: %s\n", meta.error().message.c_str());
      return 2;
    }
    if (!cluster_id.empty() && meta->cluster_id != cluster_id) {
      std::fprintf(stderr, "gannetd: data directories of two clusters (%s, %s)\n", cluster_id.c_str(),
                   meta->cluster_id.c_str());
      return 2;
    }
    cluster_id = meta->cluster_id;
    auto lock = broker::lock_data_directory(dir);
    if (!lock.ok()) {
      std::fprintf(stderr, "gannetd: %s\n", lock.error().message.c_str());
      return 2;
    }
  }

  // Block the stop signals before any thread starts, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::map<int32_t, std::string> voters;
  for (const auto& v : cfg->quorum_voters) voters[v.id] = v.address();
  for (const std::string& w : cfg->security_warnings()) LOG(WARNING) << w;
  {
    std::string why;
    set_principal_rules(*parse_principal_rules(cfg->ssl_principal_mapping_rules, &why));  // checked at load
  }
  // Every key is read and checked by ServerConfig; what is left in `extra` is unknown here.
  for (const auto& [key, value] : cfg->extra) {
    LOG(WARNING) << "unknown config " << key << "=" << value << " (ignored; misspelled?)";
  }

  metadata::MetadataPublisher publisher(cfg->metadata_snapshot_every_records);

  // TLS on the gRPC and controller listeners (and toward them): the node's keystore is both its
  // server certificate and its client certificate (mTLS between nodes).
  std::shared_ptr<const GrpcTls> controller_tls, grpc_tls;
  {
    const bool controller_ssl = cfg->security_protocol(cfg->controller_listener_names.front()) == "SSL";
    const bool grpc_ssl = cfg->is_broker() && cfg->security_protocol(cfg->grpc_listener()->name) == "SSL";
    if (controller_ssl || grpc_ssl) {
      auto tls = load_grpc_tls(cfg->ssl_keystore_location, cfg->ssl_key_password, cfg->ssl_truststore_location,
                               "required");
      if (!tls.ok()) {
        std::fprintf(stderr, "gannetd: %s\n", tls.error().c_str());
        return 2;
      }
      if (controller_ssl) controller_tls = *tls;
      if (grpc_ssl) {
        // Clients may come without a certificate unless ssl.client.auth=required; followers
        // always present theirs.
        auto g = std::make_shared<GrpcTls>(**tls);
        g->client_auth = cfg->ssl_client_auth == "required" ? "required" : "requested";
        grpc_tls = g;
      }
    }
  }

  // The broker role: partition logs, the client listener, and (after the quorum starts)
  // registration and heartbeats.
  std::unique_ptr<broker::BrokerServer> broker_server;
  if (cfg->is_broker()) {
    const broker::Endpoint grpc_listener = *cfg->grpc_listener();
    broker::BrokerServerOptions bo;
    bo.node_id = cfg->node_id;
    bo.cluster_id = cluster_id;
    bo.voters = voters;
    bo.listener_name = grpc_listener.name;
    bo.listen_address = (grpc_listener.host.empty() ? "0.0.0.0" : grpc_listener.host) + ":" +
                        std::to_string(grpc_listener.port);
    bo.advertised_host = cfg->advertised(grpc_listener).host;
    for (const broker::Endpoint& k : cfg->kafka_listeners()) {
      const broker::Endpoint a = cfg->advertised(k);
      bo.kafka_listeners.push_back(
          {k.name, k.host, k.port, a.host, a.port == k.port ? 0 : a.port, cfg->security_protocol(k.name)});
    }
    bo.kafka_io_threads = cfg->num_network_threads;
    bo.socket_request_max_bytes = cfg->socket_request_max_bytes;
    bo.connections_max_idle_ms = cfg->connections_max_idle_ms;
    bo.max_connections = cfg->max_connections;
    bo.max_connections_per_ip = cfg->max_connections_per_ip;
    bo.auto_create_topics = cfg->auto_create_topics_enable;
    bo.sasl_mechanisms = cfg->sasl_enabled_mechanisms;
    bo.kafka_tls.keystore_location = cfg->ssl_keystore_location;
    bo.kafka_tls.key_password = cfg->ssl_key_password;
    bo.kafka_tls.truststore_location = cfg->ssl_truststore_location;
    bo.kafka_tls.client_auth = cfg->ssl_client_auth;
    bo.kafka_tls.enabled_protocols = cfg->ssl_enabled_protocols;
    bo.kafka_tls.cipher_suites = cfg->ssl_cipher_suites;
    bo.grpc_tls = grpc_tls;
    bo.controller_tls = controller_tls;
    bo.cluster_principals = cfg->super_users;
    bo.authorizer_enabled = !cfg->authorizer_class_name.empty();
    bo.authorizer.super_users = cfg->super_users;
    bo.authorizer.allow_if_no_acl = cfg->allow_everyone_if_no_acl_found;
    if (cfg->broker_rack) bo.rack = *cfg->broker_rack;
    bo.data_dir = cfg->log_dirs.front();
    bo.default_log_config = cfg->default_log_config;
    bo.heartbeat_interval_ms = cfg->broker_heartbeat_interval_ms;
    bo.min_insync_replicas = cfg->min_insync_replicas;
    bo.replica_lag_time_max_ms = cfg->replica_lag_time_max_ms;
    bo.replica_fetch_wait_max_ms = cfg->replica_fetch_wait_max_ms;
    bo.replica_fetch_max_bytes = cfg->replica_fetch_max_bytes;
    bo.fetch_max_bytes = cfg->fetch_max_bytes;
    bo.fetch_response_memory_max_bytes = cfg->fetch_response_memory_max_bytes;
    bo.retention_check_interval_ms = cfg->log_retention_check_interval_ms;
    bo.hw_checkpoint_interval_ms = cfg->replica_high_watermark_checkpoint_interval_ms;
    // Consumer groups (Kafka's keys; broker/group_coordinator.h has Gannet's defaults).
    bo.group.offsets_partitions = cfg->offsets_topic_num_partitions;
    bo.offsets_topic_replication_factor = cfg->offsets_topic_replication_factor;
    bo.offsets_topic_segment_bytes = cfg->offsets_topic_segment_bytes;
    bo.group.min_session_timeout_ms = cfg->group_min_session_timeout_ms;
    bo.group.max_session_timeout_ms = cfg->group_max_session_timeout_ms;
    bo.group.initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms;
    bo.group.max_group_size = cfg->group_max_size;
    bo.group.max_groups = cfg->group_max_groups;
    bo.group.consumer.session_timeout_ms = cfg->group_consumer_session_timeout_ms;
    bo.group.consumer.heartbeat_interval_ms = cfg->group_consumer_heartbeat_interval_ms;
    bo.group.consumer.max_size = cfg->group_consumer_max_size;
    bo.group.consumer.assignors = cfg->group_consumer_assignors;
    bo.metrics_listen = cfg->metrics_http_listener;
    bo.group.offsets_retention_ms = int64_t{cfg->offsets_retention_minutes} * 60'000;
    bo.group.offsets_retention_check_interval_ms = cfg->offsets_retention_check_interval_ms;
    bo.group.offset_commit_timeout_ms = cfg->offsets_commit_timeout_ms;
    bo.group.offset_metadata_max_bytes = cfg->offset_metadata_max_bytes;
    auto b = broker::BrokerServer::create(bo, &publisher);
    if (!b.ok()) {
      std::fprintf(stderr, "gannetd: cannot start the broker: %s\n", b.error().c_str());
      return 1;
    }
    broker_server = std::move(b).value();
  }

  // The controller role: the quorum controller, served next to the Raft service.
  std::unique_ptr<metadata::QuorumController> controller;
  std::unique_ptr<broker::ControllerService> controller_service;
  if (cfg->is_controller()) {
    metadata::QuorumControllerOptions co;
    co.cluster_id = cluster_id;
    co.logic.session_timeout_ms = cfg->broker_session_timeout_ms;
    co.logic.unclean_leader_election = cfg->unclean_leader_election_enable;
    co.logic.default_partitions = cfg->num_partitions;
    co.logic.default_replication_factor = cfg->default_replication_factor;
    co.logic.max_node_id = cfg->reserved_broker_max_id;
    co.tick_interval_ms = std::max<int64_t>(100, cfg->broker_heartbeat_interval_ms / 4);
    co.rebalance_interval_ms =
        cfg->auto_leader_rebalance_enable ? cfg->leader_imbalance_check_interval_seconds * 1000 : 0;
    controller = std::make_unique<metadata::QuorumController>(co, nullptr, &publisher);
    controller_service = std::make_unique<broker::ControllerService>(
        controller.get(), voters, broker::ControllerSecurity{controller_tls != nullptr, cfg->super_users});
  }

  raft::RaftNodeOptions o;
  o.id = cfg->node_id;
  o.voters = voters;
  o.max_node_id = cfg->reserved_broker_max_id;
  if (cfg->is_controller()) {
    auto listener = cfg->listener(cfg->controller_listener_names.front());
    if (!listener) {
      std::fprintf(stderr, "gannetd: no %s listener\n", cfg->controller_listener_names.front().c_str());
      return 2;
    }
    o.listen_address = (listener->host.empty() ? "0.0.0.0" : listener->host) + ":" +
                       std::to_string(listener->port);
    o.services.push_back(controller_service.get());
  } else {
    // An observer serves nothing the voters need; it still runs the node's server on any port.
    o.listen_address = "127.0.0.1:0";
  }
  o.data_dir = cfg->log_dirs.front();
  o.election_timeout_ms = cfg->controller_quorum_election_timeout_ms;
  o.fetch_timeout_ms = cfg->controller_quorum_fetch_timeout_ms;
  o.fetch_max_wait_ms = std::max<int64_t>(50, cfg->controller_quorum_fetch_timeout_ms / 4);
  o.listener = &publisher;
  o.allow_append_rpc = cfg->quorum_append_rpc_enable;
  o.tls = controller_tls;
  o.cluster_principals = cfg->super_users;
  auto node = raft::RaftNode::start(o);
  if (!node.ok()) {
    std::fprintf(stderr, "gannetd: cannot start the quorum: %s\n", node.error().to_string().c_str());
    return 1;
  }
  publisher.set_snapshot_sink([n = node->get()](raft::Snapshot s) { n->snapshot_taken(std::move(s)); });
  if (controller) {
    controller->set_node(node->get());
    controller->start();
  }
  if (broker_server) {
    // The metadata quorum as this node sees it, on the broker's /metrics.
    broker_server->set_extra_metrics([n = node->get(), id = o.id] {
      const raft::QuorumStatus s = n->status();
      const std::string node_label = "node_id=\"" + std::to_string(id) + "\"";
      std::string out;
      auto gauge = [&](const char* name, const char* help, const std::string& labels, double v) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + "{" + labels +
               "} " + std::to_string(static_cast<int64_t>(v)) + "\n";
      };
      gauge("gannet_quorum_role", "This node's role in the metadata quorum (value 1).",
            node_label + ",role=\"" + raft::role_name(s.role) + "\"", 1);
      gauge("gannet_quorum_epoch", "The metadata quorum's epoch (term) this node knows.", node_label, s.epoch);
      gauge("gannet_quorum_leader", "The node id of the quorum leader this node knows (-1: none).", node_label, s.leader);
      gauge("gannet_quorum_high_watermark", "The metadata log's high watermark on this node.", node_label, s.high_watermark);
      gauge("gannet_quorum_log_end_offset", "The end of this node's copy of the metadata log.", node_label,
            s.log_end_offset);
      if (!s.replicas.empty()) {
        out += "# HELP gannet_quorum_replica_lag_offsets The leader's log end minus each replica's fetched offset "
               "(on the leader only).\n# TYPE gannet_quorum_replica_lag_offsets gauge\n";
        for (const auto& r : s.replicas) {
          const int64_t lag = r.end_offset < 0 ? s.log_end_offset : std::max<int64_t>(0, s.log_end_offset - r.end_offset);
          out += "gannet_quorum_replica_lag_offsets{" + node_label + ",replica=\"" + std::to_string(r.id) +
                 "\",voter=\"" + (r.voter ? "true" : "false") + "\"} " + std::to_string(lag) + "\n";
        }
      }
      return out;
    });
    broker_server->start();
  }
  LOG(INFO) << "gannetd node " << o.id << " running (cluster " << cluster_id << "); quorum port "
            << (*node)->port() << (broker_server ? "; client port " + std::to_string(broker_server->port()) : "")
            << (broker_server && broker_server->metrics_port() > 0 ? "; metrics port " + std::to_string(broker_server->metrics_port()) : "");

  int sig = 0;
  sigwait(&stop, &sig);
  LOG(INFO) << "gannetd: signal " << sig << ", stopping";
  if (broker_server) broker_server->controlled_shutdown(10'000);
  if (controller) controller->stop();
  if (broker_server) broker_server->stop();
  (*node)->shutdown();
  if (broker_server && !broker_server->fatal_error().empty()) {
    std::fprintf(stderr, "gannetd: %s\n", broker_server->fatal_error().c_str());
    return 3;
  }
  LOG(INFO) << "gannetd node " << o.id << " stopped";
  return 0;
}
