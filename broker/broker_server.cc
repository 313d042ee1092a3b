#include "broker/broker_server.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <random>

#include "broker/controller_service.h"
#include "proto/broker.grpc.pb.h"

namespace gannet::broker {

namespace bv1 = gannet::broker::v1;
using metadata::MetadataImage;

namespace {

constexpr int64_t kForwardTimeoutMs = 60'000;

std::string random_incarnation() {
  std::random_device rd;
  std::string id(16, '\0');
  for (char& c : id) c = static_cast<char>(rd());
  return id;
}

}  // namespace

// ---- Client API -------------------------------------------------------------------------------

class BrokerServer::Service final : public bv1::Broker::Service {
 public:
  explicit Service(BrokerServer* b) : b_(b) {}

  grpc::Status Metadata(grpc::ServerContext*, const bv1::MetadataRequest* req,
                        bv1::MetadataResponse* resp) override {
    auto image = b_->publisher_->image();
    resp->set_broker_id(b_->options_.node_id);
    resp->set_metadata_offset(image->offset());
    resp->set_cluster_id(b_->options_.cluster_id);
    resp->set_controller_id(b_->publisher_->leader());
    for (const auto& [id, reg] : image->brokers()) {
      auto* bi = resp->add_brokers();
      bi->set_broker_id(id);
      bi->set_rack(reg.rack);
      bi->set_fenced(reg.fenced);
      for (const auto& e : reg.endpoints) {
        if (e.name == b_->options_.listener_name || bi->host().empty()) {
          bi->set_host(e.host);
          bi->set_port(e.port);
        }
      }
    }
    auto describe = [&](const metadata::TopicImage& t) {
      auto* tm = resp->add_topics();
      tm->set_name(t.name);
      tm->set_topic_id(t.id);
      for (const auto& [pid, p] : t.partitions) {
        auto* pm = tm->add_partitions();
        pm->set_partition(pid);
        pm->set_leader(p.leader);
        pm->set_leader_epoch(p.leader_epoch);
        pm->set_partition_epoch(p.partition_epoch);
        if (p.leader < 0) pm->set_error_code(gannet::v1::LEADER_NOT_AVAILABLE);
        for (int32_t r : p.replicas) {
          pm->add_replicas(r);
          auto it = image->brokers().find(r);
          if (it == image->brokers().end() || it->second.fenced) pm->add_offline_replicas(r);
        }
        for (int32_t r : p.isr) pm->add_isr(r);
      }
      for (const auto& [k, v] : image->configs({metadata::v1::ConfigRecord::TOPIC, t.name})) {
        auto* c = tm->add_configs();
        c->set_name(k);
        c->set_value(v);
      }
    };
    if (req->topics().empty()) {
      for (const auto& [id, t] : image->topics()) describe(*t);
    } else {
      for (const std::string& name : req->topics()) {
        if (const auto* t = image->topic_by_name(name)) {
          describe(*t);
        } else {
          auto* tm = resp->add_topics();
          tm->set_name(name);
          tm->set_error_code(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
        }
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status CreateTopics(grpc::ServerContext*, const cv1::CreateTopicsRequest* req,
                            cv1::CreateTopicsResponse* resp) override {
    return forward<cv1::CreateTopicsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::CreateTopicsResponse* r) {
          return s->CreateTopics(c, *req, r);
        },
        resp);
  }
  grpc::Status DeleteTopics(grpc::ServerContext*, const cv1::DeleteTopicsRequest* req,
                            cv1::DeleteTopicsResponse* resp) override {
    return forward<cv1::DeleteTopicsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::DeleteTopicsResponse* r) {
          return s->DeleteTopics(c, *req, r);
        },
        resp);
  }
  grpc::Status CreatePartitions(grpc::ServerContext*, const cv1::CreatePartitionsRequest* req,
                                cv1::CreatePartitionsResponse* resp) override {
    return forward<cv1::CreatePartitionsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::CreatePartitionsResponse* r) {
          return s->CreatePartitions(c, *req, r);
        },
        resp);
  }
  grpc::Status AlterConfigs(grpc::ServerContext*, const cv1::AlterConfigsRequest* req,
                            cv1::AlterConfigsResponse* resp) override {
    return forward<cv1::AlterConfigsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::AlterConfigsResponse* r) {
          return s->AlterConfigs(c, *req, r);
        },
        resp);
  }
  grpc::Status DescribeConfigs(grpc::ServerContext*, const cv1::DescribeConfigsRequest* req,
                               cv1::DescribeConfigsResponse* resp) override {
    describe_configs(*b_->publisher_->image(), *req, resp);
    return grpc::Status::OK;
  }
  grpc::Status DescribeCluster(grpc::ServerContext*, const cv1::DescribeClusterRequest* req,
                               cv1::DescribeClusterResponse* resp) override {
    return forward<cv1::DescribeClusterResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::DescribeClusterResponse* r) {
          return s->DescribeCluster(c, *req, r);
        },
        resp, 10'000, /*read_back=*/false);
  }

 private:
  template <typename Resp>
  grpc::Status forward(const std::function<grpc::Status(ControllerChannel::Stub*, grpc::ClientContext*, Resp*)>& rpc,
                       Resp* resp, int64_t timeout_ms = kForwardTimeoutMs, bool read_back = true) {
    grpc::Status st = b_->controller_->call<Resp>(rpc, resp, timeout_ms);
    if (!st.ok()) {
      // The controller could not be reached: a typed answer, not a transport failure.
      resp->Clear();
      resp->set_error_code(gannet::v1::REQUEST_TIMED_OUT);
      resp->set_error_message("no active controller answered: " + st.error_message());
      return grpc::Status::OK;
    }
    // Read-your-writes: answer once this broker's image includes the change, so a Metadata
    // request to this broker right after shows it.
    if (read_back && !b_->publisher_->wait_for_offset(resp->metadata_offset(), 5'000)) {
      LOG(WARNING) << "broker " << b_->options_.node_id << ": metadata image did not reach offset "
                   << resp->metadata_offset() << " within 5 s of a forwarded change";
    }
    return grpc::Status::OK;
  }

  BrokerServer* b_;
};

// ---- Lifecycle --------------------------------------------------------------------------------

BrokerServer::BrokerServer(BrokerServerOptions options, metadata::MetadataPublisher* publisher)
    : options_(std::move(options)), publisher_(publisher), incarnation_id_(random_incarnation()) {}

Result<std::unique_ptr<BrokerServer>, std::string> BrokerServer::create(
    BrokerServerOptions options, metadata::MetadataPublisher* publisher) {
  std::unique_ptr<BrokerServer> b(new BrokerServer(std::move(options), publisher));
  storage::LogManager::Options lo;
  lo.data_dir = b->options_.data_dir;
  lo.default_config = b->options_.default_log_config;
  auto logs = storage::LogManager::open(lo);
  if (!logs.ok()) return "cannot open the partition logs: " + logs.error().to_string();
  b->logs_ = std::move(logs).value();
  b->controller_ = std::make_unique<ControllerChannel>(b->options_.voters,
                                                       [publisher] { return publisher->leader(); });
  BrokerServer* self = b.get();
  publisher->subscribe([self](const metadata::MetadataDelta& delta,
                              const std::shared_ptr<const MetadataImage>& image) {
    // On the quorum's thread: hand the newest image, and which topics changed since the replica
    // thread last looked, to the replica thread and return.
    std::lock_guard<std::mutex> l(self->mu_);
    self->pending_image_ = image;
    // A loaded snapshot replaces the image wholesale (topics may have gone in between); a
    // deletion leaves logs to remove: both need a full pass.
    if (delta.replaces_image() || !delta.deleted_topics().empty()) self->pending_full_ = true;
    for (const std::string& id : delta.created_topics()) self->pending_topics_.insert(id);
    for (const auto& [id, parts] : delta.changed_partitions()) self->pending_topics_.insert(id);
    for (const auto& [type, name] : delta.changed_configs()) {
      if (const auto* t = image->topic_by_name(name)) self->pending_topics_.insert(t->id);
    }
    self->cv_.notify_all();
  });
  b->replica_thread_ = std::thread([self] { self->replica_loop(); });

  b->service_ = std::make_unique<Service>(self);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(b->options_.listen_address, grpc::InsecureServerCredentials(), &b->port_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // Never share the port with another process (gRPC sets SO_REUSEPORT by default): a second
  // server on it would silently take a share of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(b->service_.get());
  b->server_ = builder.BuildAndStart();
  if (!b->server_ || b->port_ == 0) return "cannot listen on " + b->options_.listen_address;
  LOG(INFO) << "broker " << b->options_.node_id << " serving clients on port " << b->port_ << " ("
            << b->logs_->partitions().size() << " partition log(s) under " << b->options_.data_dir << ")";
  return b;
}

BrokerServer::~BrokerServer() { stop(); }

void BrokerServer::start() {
  lifecycle_thread_ = std::thread([this] { lifecycle_loop(); });
}

BrokerStatus BrokerServer::status() const {
  std::lock_guard<std::mutex> l(mu_);
  BrokerStatus s;
  s.broker_epoch = broker_epoch_;
  s.registered = broker_epoch_ >= 0;
  s.fenced = fenced_;
  s.metadata_offset = publisher_->image()->offset();
  s.local_logs = logs_ ? logs_->partitions().size() : 0;
  return s;
}

bool BrokerServer::register_once() {
  cv1::BrokerRegistrationRequest req;
  req.set_broker_id(options_.node_id);
  req.set_cluster_id(options_.cluster_id);
  req.set_incarnation_id(incarnation_id_);
  req.set_rack(options_.rack);
  auto* e = req.add_endpoints();
  e->set_name(options_.listener_name);
  e->set_host(options_.advertised_host);
  e->set_port(port_);
  cv1::BrokerRegistrationResponse resp;
  grpc::Status st = controller_->call<cv1::BrokerRegistrationResponse>(
      [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::BrokerRegistrationResponse* r) {
        return s->BrokerRegistration(c, req, r);
      },
      &resp, 10'000);
  if (!st.ok() || resp.error_code() != gannet::v1::NONE) {
    LOG_EVERY_N(WARNING, 10) << "broker " << options_.node_id << ": registration failed: "
                             << (st.ok() ? gannet::v1::ErrorCode_Name(resp.error_code()) + ": " + resp.error_message()
                                         : st.error_message());
    if (st.ok() && resp.error_code() == gannet::v1::INCONSISTENT_CLUSTER_ID) {
      LOG(ERROR) << resp.error_message();
    }
    return false;
  }
  std::lock_guard<std::mutex> l(mu_);
  broker_epoch_ = resp.broker_epoch();
  fenced_ = true;
  LOG(INFO) << "broker " << options_.node_id << " registered with broker epoch " << broker_epoch_;
  return true;
}

void BrokerServer::heartbeat_once() {
  cv1::BrokerHeartbeatRequest req;
  {
    std::lock_guard<std::mutex> l(mu_);
    req.set_broker_id(options_.node_id);
    req.set_broker_epoch(broker_epoch_);
    req.set_want_shut_down(want_shutdown_);
  }
  req.set_metadata_offset(publisher_->image()->offset());
  cv1::BrokerHeartbeatResponse resp;
  grpc::Status st = controller_->call<cv1::BrokerHeartbeatResponse>(
      [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::BrokerHeartbeatResponse* r) {
        return s->BrokerHeartbeat(c, req, r);
      },
      &resp, std::max<int64_t>(1000, options_.heartbeat_interval_ms));
  std::lock_guard<std::mutex> l(mu_);
  if (!st.ok()) return;  // the next heartbeat tries again (the session is several intervals)
  if (resp.error_code() == gannet::v1::STALE_BROKER_EPOCH) {
    LOG(WARNING) << "broker " << options_.node_id << ": epoch " << broker_epoch_
                 << " is stale; registering again";
    broker_epoch_ = -1;
    fenced_ = true;
    return;
  }
  if (resp.error_code() != gannet::v1::NONE) return;
  if (fenced_ && !resp.is_fenced()) {
    LOG(INFO) << "broker " << options_.node_id << " unfenced at metadata offset " << req.metadata_offset();
    unfenced_once_ = true;
    cv_.notify_all();  // the replica thread may now delete strays
  }
  fenced_ = resp.is_fenced();
  if (resp.should_shut_down()) shutdown_confirmed_ = true;
  cv_.notify_all();
}

void BrokerServer::lifecycle_loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    const bool registered = broker_epoch_ >= 0;
    l.unlock();
    bool ok = registered ? (heartbeat_once(), true) : register_once();
    l.lock();
    // Fenced (catching up) or shutting down: heartbeat more often so the change lands quickly.
    int64_t wait = options_.heartbeat_interval_ms;
    if (!ok) wait = 250;
    if (fenced_ || want_shutdown_) wait = std::min<int64_t>(wait, 200);
    cv_.wait_for(l, std::chrono::milliseconds(wait), [&] { return stopping_; });
  }
}

bool BrokerServer::controlled_shutdown(int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  if (broker_epoch_ < 0 || !lifecycle_thread_.joinable()) return false;
  want_shutdown_ = true;
  cv_.notify_all();
  const bool ok = cv_.wait_for(l, std::chrono::milliseconds(timeout_ms),
                               [&] { return shutdown_confirmed_ || stopping_; });
  LOG(INFO) << "broker " << options_.node_id << ": controlled shutdown "
            << (shutdown_confirmed_ ? "confirmed by the controller" : "not confirmed; stopping anyway");
  return ok && shutdown_confirmed_;
}

void BrokerServer::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (controller_) controller_->cancel_all();  // forwarded calls and heartbeats end now
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  if (lifecycle_thread_.joinable()) lifecycle_thread_.join();
  if (replica_thread_.joinable()) replica_thread_.join();
  if (logs_) {
    auto st = logs_->close();
    if (!st.ok()) LOG(ERROR) << "closing the partition logs: " << st.error().to_string();
  }
}

// ---- Replica manager --------------------------------------------------------------------------

void BrokerServer::replica_loop() {
  std::unique_lock<std::mutex> l(mu_);
  bool last_unfenced = false;
  bool first = true;
  std::shared_ptr<const MetadataImage> current;
  while (true) {
    cv_.wait(l, [&] { return stopping_ || pending_image_ || (unfenced_once_ && !last_unfenced); });
    if (stopping_) return;
    if (pending_image_) current = std::move(pending_image_);
    pending_image_ = nullptr;
    // A full pass (every local log against the image) at the first image, when this broker is
    // first unfenced (strays may go now) and after topic deletions; else only changed topics.
    const bool full = first || pending_full_ || (unfenced_once_ && !last_unfenced);
    std::set<std::string> topics;
    topics.swap(pending_topics_);
    pending_full_ = false;
    last_unfenced = unfenced_once_;
    // Whether the image is known current, read together with the image it applies to.
    const bool current_known = unfenced_once_;
    l.unlock();
    if (current) {
      reconcile(current, full ? nullptr : &topics, current_known);
      first = false;
    }
    l.lock();
  }
}

void BrokerServer::reconcile(const std::shared_ptr<const MetadataImage>& image,
                             const std::set<std::string>* only, bool image_current) {
  const int32_t me = options_.node_id;
  // Until the image is known to be current (the controller unfenced this broker after it applied
  // its registration), it may be an old snapshot: nothing is deleted on its word except logs of
  // topics seen and then deleted.
  const bool strays_ok = image_current;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (only) {
      for (const std::string& id : *only) seen_topic_ids_.insert(id);
    } else {
      for (const auto& [id, t] : image->topics()) seen_topic_ids_.insert(id);
    }
  }
  // What should be here: every partition (of the topics looked at) that lists this broker as a
  // replica.
  std::map<storage::TopicPartition, const metadata::TopicImage*> want;
  for (const auto& [id, t] : image->topics()) {
    if (only && !only->count(id)) continue;
    for (const auto& [pid, p] : t->partitions) {
      if (std::find(p.replicas.begin(), p.replicas.end(), me) != p.replicas.end()) {
        want[{t->name, pid}] = t.get();
      }
    }
  }
  std::set<storage::TopicPartition> have;
  if (only) {
    for (const auto& [tp, t] : want) {
      if (logs_->get(tp)) have.insert(tp);
    }
  } else {
    for (const auto& tp : logs_->partitions()) have.insert(tp);
  }
  std::set<storage::TopicPartition> removed_tps;
  // Remove what should not be here.
  int removed = 0;
  for (const auto& tp : have) {
    auto it = want.find(tp);
    auto cached = local_ids_.find(tp);
    if (cached == local_ids_.end()) cached = local_ids_.emplace(tp, logs_->topic_id(tp)).first;
    const std::string local_id = cached->second;
    bool remove = false;
    if (it == want.end()) {
      // Known deleted (we saw its topic id and it is gone), or a stray once the image is current.
      remove = (!local_id.empty() && seen_topic_ids_.count(local_id) && !image->topic_by_id(local_id)) || strays_ok;
    } else if (!local_id.empty() && local_id != it->second->id) {
      // A former incarnation of a topic of the same name, or (with an old image) a newer one:
      // only a current image can tell.
      remove = strays_ok || (seen_topic_ids_.count(local_id) && !image->topic_by_id(local_id));
    }
    if (!remove) continue;
    auto st = logs_->remove(tp);
    if (!st.ok()) {
      LOG(ERROR) << "broker " << me << ": cannot delete " << tp.dir_name() << ": " << st.error().to_string();
      continue;
    }
    local_ids_.erase(tp);
    removed_tps.insert(tp);
    ++removed;
  }
  // Create what is missing, with the topic's configs over the broker defaults.
  std::vector<storage::LogManager::NewLog> create;
  std::map<std::string, storage::LogConfig> configs;
  for (const auto& [tp, t] : want) {
    auto c = configs.find(t->name);
    if (c == configs.end()) {
      auto lc = storage::LogConfig::from_properties(image->configs({metadata::v1::ConfigRecord::TOPIC, t->name}),
                                                    options_.default_log_config);
      c = configs.emplace(t->name, lc.ok() ? *lc : options_.default_log_config).first;
    }
    if (have.count(tp) && !removed_tps.count(tp)) {
      // Topic config changes (AlterConfigs) apply to the live log.
      if (auto log = logs_->get(tp); log && !(log->config() == c->second)) log->set_config(c->second);
      continue;
    }
    create.push_back({tp, c->second, t->id});
    local_ids_[tp] = t->id;
  }
  if (!create.empty()) {
    auto st = logs_->create_many(create);
    if (!st.ok()) LOG(ERROR) << "broker " << me << ": creating partition logs: " << st.error().to_string();
  }
  if (removed || !create.empty()) {
    LOG(INFO) << "broker " << me << " at metadata offset " << image->offset() << ": created "
              << create.size() << ", deleted " << removed << " partition log(s); hosting "
              << logs_->partitions().size();
  }
}

}  // namespace gannet::broker
