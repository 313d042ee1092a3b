// BrokerServer: the broker role of gannetd (DESIGN.md, "Processes and roles").
//
//  - Lifecycle: registers with the active controller (a broker epoch per process incarnation),
//    then heartbeats every broker.heartbeat.interval.ms with the offset of its metadata image;
//    the controller unfences it once that image includes its registration. A stale epoch (the
//    controller fenced and forgot this incarnation) means register again. Controlled shutdown
//    asks the controller to move leaderships away and waits until it says none are left.
//  - Replica manager: follows the metadata log (MetadataPublisher; an observer of the quorum, or
//    a voter in combined mode) and keeps the partition logs this broker hosts in step with the
//    image: creates the logs of replicas assigned here, deletes those of deleted topics. Work is
//    done on its own thread, never on the quorum's. Stray logs (a topic deleted while this broker
//    was down) are only deleted once the controller has unfenced this broker, i.e. once its image
//    is known to be current; a log whose recorded topic id differs from the image's is a former
//    incarnation of the topic and is replaced.
//  - Client API (proto/broker.proto) on the client listener: Metadata from the local image; admin
//    requests forwarded to the active controller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/byte_budget.h"
#include "broker/controller_channel.h"
#include "broker/deadline_timer.h"
#include "broker/executor.h"
#include "broker/fetch_waiter.h"
#include "broker/group_coordinator.h"
#include "broker/grpc_metrics.h"
#include "broker/console.h"
#include "broker/kafka/tls.h"
#include "common/grpc_security.h"
#include "broker/partition.h"
#include "broker/request_core.h"
#include "common/call_watchdog.h"
#include "metadata/metadata_publisher.h"
#include "storage/log_manager.h"

namespace grpc {
class Server;
}

namespace gannet::broker {

namespace kafka {
class KafkaListener;
}
class MetricsHttpServer;

// A listener speaking Kafka's wire protocol (broker/kafka/listener.h).
struct KafkaEndpoint {
  std::string name;             // PLAINTEXT, ...
  std::string bind_host;        // "" : every interface
  int port = 0;                 // 0: any free port
  std::string advertised_host;  // what Metadata tells clients
  int advertised_port = 0;      // 0: the bound port
  std::string protocol = "PLAINTEXT";  // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
};

struct BrokerServerOptions {
  int32_t node_id = -1;
  std::string cluster_id;
  std::map<int32_t, std::string> voters;   // controller listeners, id -> host:port
  std::string listener_name = "PLAINTEXT";
  std::string listen_address;               // host:port of the client listener (port 0: any)
  std::string advertised_host;              // what other nodes and clients dial
  // Kafka's wire protocol: these listeners, on num.network.threads event loops.
  std::vector<KafkaEndpoint> kafka_listeners;
  int kafka_io_threads = 2;                        // num.network.threads
  int32_t socket_request_max_bytes = 100 << 20;    // socket.request.max.bytes
  int64_t connections_max_idle_ms = 600'000;       // connections.max.idle.ms
  int32_t max_connections = 100'000;               // max.connections
  int32_t max_connections_per_ip = 100'000;        // max.connections.per.ip
  bool auto_create_topics = true;                  // auto.create.topics.enable
  std::vector<std::string> sasl_mechanisms = {"SCRAM-SHA-256", "SCRAM-SHA-512"};  // sasl.enabled.mechanisms
  kafka::TlsOptions kafka_tls;                     // ssl.* (SSL and SASL_SSL Kafka listeners)
  // TLS on the gRPC listener (and toward other brokers' gRPC listeners), and toward the
  // controllers; null: plaintext. With TLS on the gRPC listener, replica fetches are taken only
  // from `cluster_principals` (super.users).
  std::shared_ptr<const GrpcTls> grpc_tls;
  std::shared_ptr<const GrpcTls> controller_tls;
  std::vector<std::string> cluster_principals;
  bool authorizer_enabled = false;                 // authorizer.class.name set
  acl::AuthorizerOptions authorizer;               // super.users, allow.everyone.if.no.acl.found
  std::string rack;
  std::string data_dir;
  storage::LogConfig default_log_config;
  int64_t heartbeat_interval_ms = 2000;
  int32_t min_insync_replicas = 1;           // min.insync.replicas (topics may override)
  // metrics.http.listener (Gannet's key): "host:port" serving Prometheus' /metrics; "" off.
  std::string metrics_listen;
  int64_t replica_lag_time_max_ms = 30'000;  // replica.lag.time.max.ms
  int64_t replica_fetch_wait_max_ms = 500;   // replica.fetch.wait.max.ms
  // replica.fetch.max.bytes: per partition per follower fetch. Kafka's 1 MiB is one producer
  // batch of 1 MiB per round trip; 4 MiB lets a follower catch up with the leader's queued
  // batches in one (acks=all RF=3 1 KiB: 255-271 -> 255-304 MB/s in data_bench).
  int64_t replica_fetch_max_bytes = 4 << 20;
  int64_t retention_check_interval_ms = 300'000;  // log.retention.check.interval.ms
  int64_t hw_checkpoint_interval_ms = 5'000;       // replica.high.watermark.checkpoint.interval.ms
  // fetch.max.bytes: one fetch answer's record bytes at most (Kafka: 55 MiB; here at most 48 MiB,
  // so an answer fits gRPC's 64 MiB message).
  int64_t fetch_max_bytes = 48 << 20;
  // Gannet's fetch.response.memory.max.bytes: the record bytes all fetch answers being built may
  // hold at once, broker-wide (each may pass it by one batch). A fetch that finds it spent waits
  // for bytes to come back, within its max_wait.
  int64_t fetch_response_memory_max_bytes = 256 << 20;
  GroupCoordinatorOptions group;                  // node_id is filled in from node_id
  int16_t offsets_topic_replication_factor = 3;   // offsets.topic.replication.factor
  int64_t offsets_topic_segment_bytes = 100LL << 20;  // offsets.topic.segment.bytes
};

struct BrokerStatus {
  int64_t broker_epoch = -1;
  bool registered = false;
  bool fenced = true;
  int64_t metadata_offset = 0;
  size_t local_logs = 0;
};

class BrokerServer final : public RequestCore {
 public:
  // Opens the data directory's logs and subscribes to `publisher` (call before the quorum starts
  // so no change is missed), then serves the client listener.
  static Result<std::unique_ptr<BrokerServer>, std::string> create(BrokerServerOptions options,
                                                                    metadata::MetadataPublisher* publisher);
  ~BrokerServer();

  // Starts registering and heartbeating.
  void start();
  // Controlled shutdown: asks the controller to move this broker's leaderships away; waits up
  // to timeout_ms for it. Returns whether the controller confirmed.
  bool controlled_shutdown(int64_t timeout_ms);
  // Stops serving, stops the threads, closes the logs cleanly.
  void stop();

  int port() const { return port_; }
  // The port Kafka listener `name` is bound to (0: none).
  int kafka_port(const std::string& name) const;
  // The metrics listener's port (0: none), and what it serves (Prometheus' text format).
  int metrics_port() const;
  std::string render_metrics();
  // The web console's page and JSON (broker/console.h), on the same listener.
  HttpResponse console(const HttpRequest& req);
  // Per topic: bytes and records appended as leader (at most kMaxTopicSeries topics, the rest as
  // topic="other"); per API and error code: partitions answered with that error.
  void count_topic_in(const std::string& topic, uint64_t bytes, uint64_t records);
  void count_topic_out(const std::string& topic, uint64_t bytes);  // sent to consumers
  void count_error(const char* api, ErrorCode code);
  // The committed offsets of the groups this broker coordinates (at most `limit`), each with the
  // high watermark of the partition's replica here (-1: none here), for lag (metrics, console).
  struct GroupOffset {
    std::string group, topic;
    int32_t partition;
    int64_t committed, end;
  };
  std::vector<GroupOffset> group_offsets(size_t limit);
  static constexpr size_t kMaxTopicSeries = 10'000;
  // More Prometheus text appended to /metrics (gannetd: the metadata quorum's state, known only
  // once the quorum node has started). Any thread.
  void set_extra_metrics(std::function<std::string()> render) {
    std::lock_guard<std::mutex> l(extra_metrics_mu_);
    extra_metrics_ = std::move(render);
  }

  // ---- RequestCore (request_core.h): what both front-ends call ----
  int32_t node_id() const override { return options_.node_id; }
  void metadata(const v1::MetadataRequest& req, const std::string& listener, bool only_with_listener,
                v1::MetadataResponse* resp) override;
  void produce(v1::ProduceRequest* req, v1::ProduceResponse* resp, std::function<void()> done) override;
  std::shared_ptr<Cancellable> fetch(const v1::FetchRequest* req, v1::FetchResponse* resp, FetchSlices* slices,
                                     std::function<void()> done) override;
  void list_offsets(const v1::ListOffsetsRequest& req, v1::ListOffsetsResponse* resp) override;
  void find_coordinator(const v1::FindCoordinatorRequest& req, const std::string& listener,
                        v1::FindCoordinatorResponse* resp) override;
  GroupCoordinator* groups() override { return groups_.get(); }
  void create_topics(const controller::v1::CreateTopicsRequest& req, controller::v1::CreateTopicsResponse* resp) override;
  void delete_topics(const controller::v1::DeleteTopicsRequest& req, controller::v1::DeleteTopicsResponse* resp) override;
  void create_partitions(const controller::v1::CreatePartitionsRequest& req,
                         controller::v1::CreatePartitionsResponse* resp) override;
  void alter_configs(const controller::v1::AlterConfigsRequest& req, controller::v1::AlterConfigsResponse* resp) override;
  void alter_user_scram_credentials(const controller::v1::AlterUserScramCredentialsRequest& req,
                                    controller::v1::AlterUserScramCredentialsResponse* resp) override;
  void describe_user_scram_credentials(const controller::v1::DescribeUserScramCredentialsRequest& req,
                                       controller::v1::DescribeUserScramCredentialsResponse* resp) override;
  std::optional<metadata::ScramCredential> scram_credential(const std::string& user, int32_t mechanism) const override;
  bool authorizer_enabled() const override { return options_.authorizer_enabled; }
  bool password_ok(const std::string& user, const std::string& password) const override;
  bool authorize(const std::string& principal, const std::string& host, acl::Operation op, acl::ResourceType type,
                 const std::string& name) const override;
  void create_acls(const controller::v1::CreateAclsRequest& req, controller::v1::CreateAclsResponse* resp) override;
  void delete_acls(const controller::v1::DeleteAclsRequest& req, controller::v1::DeleteAclsResponse* resp) override;
  void describe_acls(const controller::v1::DescribeAclsRequest& req, controller::v1::DescribeAclsResponse* resp) override;
  void describe_configs(const controller::v1::DescribeConfigsRequest& req,
                        controller::v1::DescribeConfigsResponse* resp) override;
  void init_producer_id(const v1::InitProducerIdRequest& req, v1::InitProducerIdResponse* resp) override;
  void run_blocking(std::function<void()> work) override;
  void run_admin(std::function<void()> work) override;
  std::map<std::string, std::string> topic_config_defaults() const override;
  bool stopping() const {
    std::lock_guard<std::mutex> l(mu_);
    return stopping_;
  }
  BrokerStatus status() const;
  // Why this broker stopped itself (it raised SIGTERM), or "": another process registered with
  // its node.id.
  std::string fatal_error() const {
    std::lock_guard<std::mutex> l(mu_);
    return fatal_error_;
  }
  storage::LogManager* log_manager() { return logs_.get(); }
  const ByteBudget& fetch_budget() const { return fetch_budget_; }
  // Fetches in progress (parked long polls and fetch streams).
  size_t fetches_in_progress() {
    std::lock_guard<std::mutex> l(fetches_mu_);
    return fetches_.size();
  }
  GroupCoordinator* group_coordinator() { return groups_.get(); }
  // The partition replica hosted here, if any.
  std::shared_ptr<Partition> partition(const storage::TopicPartition& tp) const;

 private:
  class Service;
  BrokerServer(BrokerServerOptions options, metadata::MetadataPublisher* publisher);

  void lifecycle_loop();
  bool register_once();
  void heartbeat_once();
  void replica_loop();
  void fetch_loop(int32_t leader);  // a replica fetcher: every partition this broker follows `leader` in
  void isr_loop();                  // proposes ISR changes of the partitions led here
  // Long-polling fetches, for the wake-ups that are no one partition's: the broker stops.
  void add_fetch(FetchWaiter* w);
  void remove_fetch(FetchWaiter* w);
  void wake_all_fetches();
  // Brings the local logs in step with the image: every local log when `only` is null, else
  // just the logs of those topic ids.
  void reconcile(const std::shared_ptr<const metadata::MetadataImage>& image,
                 const std::set<std::string>* only, bool image_current);
  // FindCoordinator: the broker leading the group's offsets partition (its endpoint on
  // `listener`); creates the offsets topic on first use.
  void find_coordinator(const std::string& key, const std::string& listener, v1::FindCoordinatorResponse* resp);

  BrokerServerOptions options_;
  metadata::MetadataPublisher* const publisher_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<ControllerChannel> controller_;
  std::unique_ptr<CallWatchdog> watchdog_;  // bounds each replica fetch on its stream
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;  // with metrics.http.listener
  struct TopicCounters {
    std::atomic<uint64_t> bytes_in{0}, records_in{0}, bytes_out{0};
  };
  TopicCounters* topic_counters(const std::string& topic);  // created on first use, never freed
  std::mutex counters_mu_;
  std::map<std::string, std::unique_ptr<TopicCounters>> topic_counters_;  // with counters_mu_
  std::map<std::pair<std::string, int>, uint64_t> error_counts_;          // with counters_mu_
  std::atomic<uint64_t> isr_shrinks_{0}, isr_expands_{0};
  std::mutex extra_metrics_mu_;
  std::function<std::string()> extra_metrics_;  // with extra_metrics_mu_
  GrpcMetrics grpc_metrics_;  // the gRPC server's per-method figures (its interceptor's)
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  ByteBudget fetch_budget_;  // fetch.response.memory.max.bytes
  // The request core's purgatory machinery: deadlines of parked requests, and the threads that
  // finish parked fetches (kCoreThreads). Stopped after the server, which waits for its calls.
  std::unique_ptr<DeadlineTimer> timer_;
  std::unique_ptr<Executor> executor_;
  // The request core's blocking pool (kBlockingThreads): what a front-end's event loop must not
  // wait on (admin requests forwarded to the controller, SyncGroup, LeaveGroup).
  std::unique_ptr<Executor> blocking_;
  std::unique_ptr<Executor> admin_;  // kAdminThreads: forwarded admin requests from the Kafka listener
  std::unique_ptr<kafka::KafkaListener> kafka_;
  int port_ = 0;
  std::string incarnation_id_;
  // The incarnation that ran from this data directory before this process (file
  // `broker-incarnation`, replaced by ours at start): a restart names it when registering.
  std::string previous_incarnation_id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool want_shutdown_ = false;
  bool stopping_for_fatal_ = false;  // with mu_: fatal_error_ is set, the process is stopping
  std::string fatal_error_;          // with mu_
  bool shutdown_confirmed_ = false;
  int64_t broker_epoch_ = -1;
  bool fenced_ = true;
  // Producer ids this broker may give out: [next_producer_id_, producer_id_end_), a block from
  // the controller. pid_mu_ is held while a new block is asked for (one request at a time).
  mutable std::mutex verified_mu_;
  mutable std::set<std::string> verified_;  // with verified_mu_: hashes of checked passwords
  std::mutex pid_mu_;
  int64_t next_producer_id_ = 0;
  int64_t producer_id_end_ = 0;
  bool unfenced_once_ = false;  // the image was current at least once in this process
  std::shared_ptr<const metadata::MetadataImage> pending_image_;  // newest, for the replica thread
  std::set<std::string> pending_topics_;  // topic ids changed since the replica thread looked
  bool pending_full_ = false;             // a topic was deleted: look at every local log
  std::set<std::string> seen_topic_ids_;                           // every topic id ever in an image
  std::map<storage::TopicPartition, std::string> local_ids_;       // replica thread only
  std::thread lifecycle_thread_, replica_thread_, isr_thread_;

  mutable std::mutex partitions_mu_;
  std::map<storage::TopicPartition, std::shared_ptr<Partition>> partitions_;
  std::map<int32_t, std::thread> fetchers_;  // by leader broker id
  std::condition_variable fetch_cv_;         // with mu_: the fetchers' idle wait

  std::mutex fetches_mu_;
  std::set<FetchWaiter*> fetches_;  // every fetch in progress
};

}  // namespace gannet::broker
