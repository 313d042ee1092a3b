// ServerConfig: the settings of one `gannetd` process (DESIGN.md, "Processes and roles"), read
// from a Kafka-style properties file plus `key=value` command-line overrides. Key names, defaults
// and validation rules are Kafka's (KRaft mode) wherever Kafka has the key (the quorum timeouts
// are the deliberate exception, see below), so a Kafka
// server.properties mostly carries over; keys this module does not know are kept in `extra` for
// later layers.
//
// Flow: parse_properties or load_properties_file, then apply_overrides, then
// ServerConfig::from_properties.
// Every step returns errors as values (ConfigError); nothing here throws or aborts on bad input.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/log_config.h"

namespace gannet::broker {

// A configuration that cannot be used. `message` names the key and the offending value (or the
// line, for a properties-file syntax error), ready to print before exiting.
struct ConfigError {
  std::string message;
};

using ConfigMap = std::map<std::string, std::string>;

// ---- Properties text ----------------------------------------------------------------------------

// Parses java.util.Properties-style text:
//  - natural lines end at \n, \r\n or \r; a line ending in an odd number of backslashes continues
//    on the next one (the backslash and the next line's leading whitespace are dropped);
//  - leading whitespace is skipped; blank lines and lines starting with '#' or '!' are comments
//    (a continuation line is never a comment);
//  - the key ends at the first unescaped '=', ':' or whitespace; whitespace around one '=' or ':'
//    separator is skipped, so `k=v`, `k: v` and `k v` are the same; trailing unescaped whitespace
//    of the value is trimmed (Kafka trims every value);
//  - escapes in keys and values: \t \n \r \f, \uXXXX (written as UTF-8), and backslash + any
//    other character is that character (\\ \= \: \# \! "\ ").
// A later duplicate key replaces the earlier one. An empty key ("=v") or a malformed \u escape is
// an error naming the (first) line number of the logical line.
Result<ConfigMap, ConfigError> parse_properties(std::string_view text);

// Reads and parses the file at `path`; errors are prefixed with the path (unreadable file:
// "cannot read properties file <path>: <reason>").
Result<ConfigMap, ConfigError> load_properties_file(const std::string& path);

// Returns `props` with each `key=value` of `overrides` applied in order (split at the first '=',
// key and value trimmed, no escape processing: the shell has already done that). An override
// without '=' or with an empty key is an error, and then nothing is applied.
Result<ConfigMap, ConfigError> apply_overrides(ConfigMap props,
                                               const std::vector<std::string>& overrides);

// ---- Server configuration -----------------------------------------------------------------------

enum class ProcessRole { kBroker, kController };

// One listener: `NAME://host:port` in `listeners`.
struct Endpoint {
  std::string name;   // listener name, upper-cased (Kafka normalises listener names); unique
  std::string host;   // without IPv6 brackets; "" = all interfaces (Kafka's meaning)
  uint16_t port = 0;  // 0 = pick a free port when binding

  // "host:port", "[v6::addr]:port", or ":port" for all interfaces.
  std::string address() const;
  // "NAME://host:port", the form `listeners` takes.
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

// One member of `controller.quorum.voters`: `id@host:port`.
struct QuorumVoter {
  int32_t id = -1;    // >= 0, unique among the voters
  std::string host;   // non-empty, without IPv6 brackets
  uint16_t port = 0;  // 1..65535 (peers must know the real port)

  std::string address() const;    // "host:port" or "[v6::addr]:port"
  std::string to_string() const;  // "id@host:port"
  bool operator==(const QuorumVoter&) const = default;
};

// A validated configuration: once from_properties has returned it, every invariant written on
// the fields below holds. Default-constructed, it holds Kafka's defaults but no node identity
// (node_id -1, no roles, no log dirs) and is not valid.
struct ServerConfig {
  // node.id (required): in [0, reserved.broker.max.id].
  int32_t node_id = -1;
  // reserved.broker.max.id (default 1000): node ids (brokers and voters) are 0..this. The
  // controller refuses registrations and the quorum fetches naming other ids, which bounds the
  // state they keep per node id. The same on every node.
  int32_t reserved_broker_max_id = 1000;
  // process.roles (required): non-empty, no duplicates, in the order given.
  std::vector<ProcessRole> process_roles;
  // controller.quorum.voters (required in every role, as in Kafka: a broker finds the quorum
  // through it): non-empty; ids in [0, reserved.broker.max.id]; contains node_id iff this node is
  // a controller.
  std::vector<QuorumVoter> quorum_voters;
  // listeners (default "PLAINTEXT://:9092,GRPC://:9192"): non-empty, unique names; no two share a
  // non-zero port on overlapping addresses. A controller listens on every controller listener
  // name; a controller-only node has only controller listeners; a broker-only node has none. A
  // broker has exactly one listener named in grpc.listener.names (its gRPC client API, also the
  // inter-broker listener); its other broker listeners speak Kafka's wire protocol.
  std::vector<Endpoint> listeners;
  // controller.listener.names (default "CONTROLLER"): non-empty, upper-cased, unique.
  std::vector<std::string> controller_listener_names = {"CONTROLLER"};
  // grpc.listener.names (Gannet's; default "GRPC"): the listeners that serve gRPC.
  std::vector<std::string> grpc_listener_names = {"GRPC"};
  // advertised.listeners (default: listeners, an empty host read as 127.0.0.1): what a broker
  // registers, so what Metadata tells clients. Each name is a broker listener; the host is
  // neither empty nor 0.0.0.0/:: (no client can dial those); port 0: the bound port.
  std::vector<Endpoint> advertised_listeners;
  // listener.security.protocol.map (Kafka's; default PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,
  // GRPC:PLAINTEXT, SSL:SSL, SASL_PLAINTEXT:SASL_PLAINTEXT, SASL_SSL:SASL_SSL): PLAINTEXT, SSL,
  // SASL_PLAINTEXT or SASL_SSL. TLS and SASL are served on the Kafka listeners; the gRPC and
  // controller listeners must map to PLAINTEXT (their TLS is not built yet).
  std::map<std::string, std::string> listener_security_protocol_map;
  // sasl.enabled.mechanisms (Kafka's; our default SCRAM-SHA-256,SCRAM-SHA-512, since Gannet has
  // no GSSAPI): any of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. PLAIN checks the password against the
  // user's SCRAM credentials.
  std::vector<std::string> sasl_enabled_mechanisms = {"SCRAM-SHA-256", "SCRAM-SHA-512"};
  // TLS for SSL and SASL_SSL listeners (Kafka's ssl.* keys; PEM files only):
  //   ssl.keystore.type (PEM), ssl.keystore.location (the private key and certificate chain, PEM;
  //   required by an SSL or SASL_SSL listener), ssl.key.password (of an encrypted key),
  //   ssl.truststore.type (PEM), ssl.truststore.location (CA certificates clients' certificates
  //   are checked against), ssl.client.auth (none | requested | required), ssl.enabled.protocols
  //   (TLSv1.2,TLSv1.3), ssl.cipher.suites (OpenSSL names; empty: OpenSSL's defaults).
  std::string ssl_keystore_location;
  std::string ssl_key_password;
  std::string ssl_truststore_location;
  std::string ssl_client_auth = "none";
  std::vector<std::string> ssl_enabled_protocols = {"TLSv1.2", "TLSv1.3"};
  std::string ssl_cipher_suites;
  // ssl.principal.mapping.rules (Kafka's; default DEFAULT): how a client certificate's subject DN
  // becomes the principal's name (common/principal_rules.h); checked at load.
  std::string ssl_principal_mapping_rules = "DEFAULT";
  // Authorization (Kafka's keys): authorizer.class.name (any value turns Gannet's authorizer on,
  // e.g. Kafka's org.apache.kafka.metadata.authorizer.StandardAuthorizer; empty: off, every
  // request allowed), super.users (principals separated by ';', allowed everything),
  // allow.everyone.if.no.acl.found (default false).
  std::string authorizer_class_name;
  std::vector<std::string> super_users;
  bool allow_everyone_if_no_acl_found = false;
  // inter.broker.listener.name (Kafka's; default: the gRPC listener): must be the gRPC listener,
  // over which followers fetch.
  std::string inter_broker_listener_name;
  // The Kafka listener's event loop and limits (Kafka's keys).
  int32_t num_network_threads = 2;                 // [1, 64] (Kafka's default: 3)
  int32_t socket_request_max_bytes = 104'857'600;  // [1024, 1 GiB]
  int64_t connections_max_idle_ms = 600'000;       // >= 1
  int32_t max_connections = 2'147'483'647;         // >= 1
  int32_t max_connections_per_ip = 2'147'483'647;  // >= 1
  // log.dirs, else log.dir (required): non-empty, no empty or duplicate entries.
  std::vector<std::string> log_dirs;
  // cluster.id (optional): non-empty when set.
  std::optional<std::string> cluster_id;

  int32_t broker_heartbeat_interval_ms = 2000;              // >= 1
  int32_t broker_session_timeout_ms = 9000;                 // > broker_heartbeat_interval_ms
  // Gannet's defaults are half of Kafka's (1000, 2000): a controller failover takes about one
  // fetch timeout, and a C++ quorum has no GC pauses to ride out. (cluster_bench: failover
  // ~1.0 s with these, ~2-3 s with Kafka's.)
  int32_t controller_quorum_election_timeout_ms = 500;      // >= 1
  int32_t controller_quorum_fetch_timeout_ms = 1000;        // >= 1
  int32_t controller_quorum_election_backoff_max_ms = 1000; // >= 1
  int64_t replica_lag_time_max_ms = 30000;                  // >= 1
  int32_t num_partitions = 1;                               // >= 1
  int16_t default_replication_factor = 1;                   // >= 1
  int32_t min_insync_replicas = 1;                          // >= 1
  bool unclean_leader_election_enable = false;
  int32_t offsets_topic_num_partitions = 50;                // >= 1
  int16_t offsets_topic_replication_factor = 3;             // >= 1
  bool auto_create_topics_enable = true;

  // Broker tuning, each with Kafka's key and range where Kafka has the key (Gannet's own keys are
  // marked). Defaults are the components' own (broker/broker_server.h, broker/group_coordinator.h).
  int32_t replica_fetch_wait_max_ms = 500;                  // [0, 30000]
  int32_t replica_fetch_max_bytes = 4 << 20;                // [1024, 32 MiB]
  int32_t fetch_max_bytes = 48 << 20;                       // [1024, 48 MiB] (Kafka: 55 MiB)
  int64_t fetch_response_memory_max_bytes = 256 << 20;      // Gannet's: >= 1 MiB
  int64_t log_retention_check_interval_ms = 300'000;        // >= 1
  int64_t replica_high_watermark_checkpoint_interval_ms = 5'000;  // >= 1
  int32_t offsets_topic_segment_bytes = 100 << 20;          // >= 1
  int32_t group_min_session_timeout_ms = 1'000;             // >= 1 (Kafka's default: 6000)
  int32_t group_max_session_timeout_ms = 1'800'000;         // >= group.min.session.timeout.ms
  int32_t group_initial_rebalance_delay_ms = 1'000;         // >= 0 (Kafka's default: 3000)
  int32_t group_max_size = 1'000'000;                       // >= 1
  int32_t group_max_groups = 100'000;                       // Gannet's: >= 1
  // Broker-assigned consumer groups (KIP-848; broker/consumer_group.h).
  int32_t group_consumer_session_timeout_ms = 45'000;       // >= 1
  int32_t group_consumer_heartbeat_interval_ms = 5'000;     // >= 1, < the session timeout
  int32_t group_consumer_max_size = 1'000;                  // >= 1 (Kafka: Integer.MAX_VALUE)
  std::vector<std::string> group_consumer_assignors = {"uniform", "range"};  // of those two
  // metrics.http.listener (Gannet's key; Kafka has none): host:port of the HTTP listener serving
  // Prometheus' /metrics; unset: none.
  std::string metrics_http_listener;
  int32_t offsets_retention_minutes = 7 * 24 * 60;          // >= 1
  int64_t offsets_retention_check_interval_ms = 600'000;    // >= 1
  int32_t offsets_commit_timeout_ms = 5'000;                // >= 1
  int32_t offset_metadata_max_bytes = 4'096;                // >= 0
  bool auto_leader_rebalance_enable = true;
  int64_t leader_imbalance_check_interval_seconds = 300;    // >= 1
  std::optional<std::string> broker_rack;                   // broker.rack
  int64_t metadata_snapshot_every_records = 10'000;         // Gannet's: >= 1
  bool quorum_append_rpc_enable = false;                    // Gannet's: test-only append RPC

  // The broker-wide defaults for every partition log, from Kafka's broker keys:
  //   log.segment.bytes -> segment_bytes          log.roll.ms | log.roll.hours -> segment_ms
  //   log.retention.ms | .minutes | .hours -> retention_ms (first one set wins; negative: -1,
  //     keep forever; 0 is refused as in Kafka)
  //   log.retention.bytes -> retention_bytes (negative: -1, no limit)
  //   log.flush.interval.messages -> flush_messages   log.flush.interval.ms -> flush_ms
  //   log.index.interval.bytes -> index_interval_bytes   message.max.bytes -> max_message_bytes
  // Always passes storage::LogConfig::validate().
  storage::LogConfig default_log_config;

  // Keys this module does not know, verbatim: gannetd warns about each at start (a misspelled key
  // is ignored, never silently taken for another).
  ConfigMap extra;

  // Builds and validates a configuration. Values are trimmed; integers are decimal (an optional
  // '+' as in Java); booleans are "true" or "false" in any case, as in Kafka. A missing required
  // key, a malformed or out-of-range value, or a rule between keys broken gives an error naming
  // the key(s) and value(s).
  static Result<ServerConfig, ConfigError> from_properties(const ConfigMap& props);

  bool is_broker() const;
  bool is_controller() const;
  // The security protocol listener `name` maps to (PLAINTEXT when the map does not name it).
  std::string security_protocol(const std::string& listener) const;
  // What gannetd warns about at start: a listener on a non-loopback address where nobody
  // authenticates (PLAINTEXT, or a Kafka SSL listener without ssl.client.auth=required), and a
  // PLAINTEXT gRPC listener while ACLs are on (it would bypass them).
  std::vector<std::string> security_warnings() const;
  // The listener called `name` (case-insensitive), if any.
  std::optional<Endpoint> listener(std::string_view name) const;
  // The listeners clients and follower brokers use: those not named in controller_listener_names.
  std::vector<Endpoint> broker_listeners() const;
  // The broker's gRPC listener, and its Kafka listeners (broker listeners not in
  // grpc.listener.names).
  std::optional<Endpoint> grpc_listener() const;
  std::vector<Endpoint> kafka_listeners() const;
  // Where clients reach listener `name`: its advertised.listeners entry, else the listener's own
  // host (127.0.0.1 when empty) and port.
  Endpoint advertised(const Endpoint& listener) const;

  // Every setting in canonical form (including defaults and `extra`), keyed by Kafka's names.
  // from_properties(to_properties()) gives back an equal configuration.
  ConfigMap to_properties() const;
  // to_properties() as one escaped `key=value` per line, sorted by key, for the startup log.
  // Values of `extra` keys containing "password" or "secret" are shown as [hidden].
  std::string describe() const;
};

}  // namespace gannet::broker
