#include "broker/broker_server.h"

#include "common/acl.h"
#include "common/scram.h"

#include "broker/kafka/listener.h"

#include <signal.h>
#include <unistd.h>

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <future>
#include <random>

#include "common/call_watchdog.h"
#include "common/clock.h"
#include "common/grpc_transport.h"

#include "broker/controller_service.h"
#include "broker/record_messages.h"
#include "broker/subscription.h"
#include "broker/metrics_http.h"
#include "broker/grpc_metrics.h"
#include "storage/file.h"
#include "proto/broker.grpc.pb.h"

namespace gannet::broker {

namespace bv1 = gannet::broker::v1;
using metadata::MetadataImage;

namespace {

constexpr int64_t kForwardTimeoutMs = 60'000;
// acks=-1 answers one ProduceStream may owe before its next request is read (our producer keeps
// at most max.in.flight.requests.per.connection = 5 out; Kafka reads one request per connection
// at a time).
constexpr size_t kProduceStreamMaxWaiting = 32;
// Threads that finish parked fetches (a woken long poll reads its partitions there).
constexpr int kCoreThreads = 2;
// The request core's blocking pool: forwarded admin requests, SyncGroup, LeaveGroup and the
// first FindCoordinator (which creates the offsets topic) from the Kafka listener.
constexpr int kBlockingThreads = 4;
// Admin requests from the Kafka listener, forwarded to the controller (each may wait up to
// kForwardTimeoutMs): their own threads, so they never hold up the group requests above.
constexpr int kAdminThreads = 2;

// "ipv4:127.0.0.1:5555" or "ipv6:[::1]:5555" -> the host part, for DescribeGroups.
std::string peer_host(const std::string& peer) {
  std::string s = peer;
  if (auto c = s.find(':'); c != std::string::npos && (s.rfind("ipv4", 0) == 0 || s.rfind("ipv6", 0) == 0)) s = s.substr(c + 1);
  if (auto c = s.rfind(':'); c != std::string::npos) s = s.substr(0, c);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return s;
}

std::string random_incarnation() {
  std::random_device rd;
  std::string id(16, '\0');
  for (char& c : id) c = static_cast<char>(rd());
  return id;
}

}  // namespace

// ---- Client API -------------------------------------------------------------------------------

// A unary call's reactor on gRPC's callback API: Finish() sends the answer; a client that goes
// away first runs the cancel hook (which ends the parked request at once); `keep` holds the core's
// call object until the answer has been sent.
class CallReactor final : public grpc::ServerUnaryReactor {
 public:
  void set_on_cancel(std::function<void()> f) {
    bool now;
    {
      std::lock_guard<std::mutex> l(mu_);
      on_cancel_ = f;
      now = cancelled_;
    }
    if (now) f();
  }
  void keep(std::shared_ptr<void> p) { keep_ = std::move(p); }
  void OnCancel() override {
    std::function<void()> f;
    {
      std::lock_guard<std::mutex> l(mu_);
      cancelled_ = true;
      f = on_cancel_;
    }
    if (f) f();
  }
  void OnDone() override { delete this; }

 private:
  std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> on_cancel_;
  std::shared_ptr<void> keep_;
};

class BrokerServer::Service final
    // The methods that never wait, and those whose waits are parked (Produce, Fetch, OffsetCommit,
    // Heartbeat, JoinGroup, SyncGroup, LeaveGroup), run on gRPC's callback API; the streams and the admin
    // calls forwarded to the controller are still synchronous (issue 15 continues).
    : public
      bv1::Broker::WithCallbackMethod_ConsumerGroupHeartbeat<
      bv1::Broker::WithCallbackMethod_ConsumerGroupDescribe<
      bv1::Broker::WithCallbackMethod_ProduceRecords<
      bv1::Broker::WithCallbackMethod_FetchRecords<
      bv1::Broker::WithCallbackMethod_LeaveGroup<
      bv1::Broker::WithCallbackMethod_SyncGroup<
      bv1::Broker::WithCallbackMethod_JoinGroup<
      bv1::Broker::WithCallbackMethod_Heartbeat<
      bv1::Broker::WithCallbackMethod_Produce<
        bv1::Broker::WithCallbackMethod_Fetch<
          bv1::Broker::WithCallbackMethod_OffsetCommit<
            bv1::Broker::WithCallbackMethod_Metadata<
              bv1::Broker::WithCallbackMethod_ListOffsets<
                bv1::Broker::WithCallbackMethod_ListGroups<
                  bv1::Broker::WithCallbackMethod_OffsetFetch<
                    bv1::Broker::WithCallbackMethod_DescribeGroups<
                      bv1::Broker::WithCallbackMethod_DescribeConfigs<
                        bv1::Broker::Service>>>>>>>>>>>>>>>>> {
 public:
  explicit Service(BrokerServer* b) : b_(b) {}

  // The methods that answer at once (the *_now functions) run on the callback API, on the
  // calling gRPC thread.
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* answer_now(grpc::CallbackServerContext* ctx,
                                       grpc::Status (Service::*method)(const Req*, Resp*), const Req* req,
                                       Resp* resp) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish((this->*method)(req, resp));
    return reactor;
  }

  // ---- Authorization (ACLs) on the gRPC API --------------------------------------------------
  // The caller is User:<subject> of its verified certificate (a TLS listener), else
  // User:ANONYMOUS; each method checks Kafka's operation for it (docs/kafka.md's table) before
  // any work. A refusal is PERMISSION_DENIED naming Kafka's error and the resource; a request
  // naming several resources is refused whole if any is refused (Metadata, ListGroups and
  // DescribeConfigs of "everything" leave out what the caller may not describe).
  //
  // A client without a certificate may name a user on the call instead: metadata
  // `authorization: Basic base64(user:password)`, over TLS only, checked against the user's SCRAM
  // credential as SASL/PLAIN is (docs/grpc.md). Wrong credentials, or credentials on a plaintext
  // connection, leave no principal: the call is refused UNAUTHENTICATED.
  std::string principal(const grpc::ServerContextBase* ctx) const {
    std::string p = grpc_peer_principal(ctx);
    if (!p.empty()) return p;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) return "User:ANONYMOUS";
    const std::string value(it->second.data(), it->second.size());
    if (!b_->options_.grpc_tls || value.rfind("Basic ", 0) != 0) return "";
    auto decoded = scram::base64_decode(value.substr(6));
    if (!decoded) return "";
    const size_t colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) return "";
    const std::string user = decoded->substr(0, colon);
    return b_->password_ok(user, decoded->substr(colon + 1)) ? "User:" + user : "";
  }
  bool may(const grpc::ServerContextBase* ctx, acl::Operation op, acl::ResourceType type, const std::string& name) const {
    if (!b_->options_.authorizer_enabled) return true;
    const std::string p = principal(ctx);
    if (p.empty()) return false;
    return b_->authorize(p, peer_host(const_cast<grpc::ServerContextBase*>(ctx)->peer()), op, type, name);
  }
  grpc::Status allow(const grpc::ServerContextBase* ctx, acl::Operation op, acl::ResourceType type,
                     const std::string& name) const {
    if (may(ctx, op, type, name)) return grpc::Status::OK;
    if (principal(ctx).empty()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          b_->options_.grpc_tls ? "SASL_AUTHENTICATION_FAILED: invalid user name or password"
                                                : "SASL_AUTHENTICATION_FAILED: credentials are taken only over TLS");
    }
    const char* error = type == acl::ResourceType::kTopic   ? "TOPIC_AUTHORIZATION_FAILED"
                        : type == acl::ResourceType::kGroup ? "GROUP_AUTHORIZATION_FAILED"
                                                            : "CLUSTER_AUTHORIZATION_FAILED";
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(error) + ": " + principal(ctx) + " may not " +
                                                                 acl::name_of(op) + " " + acl::name_of(type) + " " + name);
  }
  grpc::Status allow_cluster(const grpc::ServerContextBase* ctx, acl::Operation op) const {
    return allow(ctx, op, acl::ResourceType::kCluster, acl::kClusterName);
  }
  template <typename Names>
  grpc::Status allow_each(const grpc::ServerContextBase* ctx, acl::Operation op, acl::ResourceType type,
                          const Names& names) const {
    for (const auto& n : names) {
      if (grpc::Status st = allow(ctx, op, type, n); !st.ok()) return st;
    }
    return grpc::Status::OK;
  }
  template <typename Partitions>
  grpc::Status allow_topics_of(const grpc::ServerContextBase* ctx, acl::Operation op, const Partitions& parts) const {
    for (const auto& p : parts) {
      if (grpc::Status st = allow(ctx, op, acl::ResourceType::kTopic, p.topic()); !st.ok()) return st;
    }
    return grpc::Status::OK;
  }
  static grpc::ServerUnaryReactor* refuse(grpc::CallbackServerContext* ctx, grpc::Status st) {
    auto* r = ctx->DefaultReactor();
    r->Finish(std::move(st));
    return r;
  }

  grpc::ServerUnaryReactor* Metadata(grpc::CallbackServerContext* ctx, const bv1::MetadataRequest* req,
                                     bv1::MetadataResponse* resp) override {
    Metadata_now(req, resp);
    auto* topics = resp->mutable_topics();
    for (int i = topics->size() - 1; i >= 0; --i) {
      if (may(ctx, acl::Operation::kDescribe, acl::ResourceType::kTopic, topics->Get(i).name())) continue;
      if (req->topics_size() == 0) {
        topics->DeleteSubrange(i, 1);
      } else {
        topics->Mutable(i)->set_error_code(gannet::v1::TOPIC_AUTHORIZATION_FAILED);
        topics->Mutable(i)->clear_partitions();
        topics->Mutable(i)->clear_configs();
      }
    }
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::Status Metadata_now(const bv1::MetadataRequest* req, bv1::MetadataResponse* resp) {
    b_->metadata(*req, b_->options_.listener_name, /*only_with_listener=*/false, resp);
    return grpc::Status::OK;
  }

  grpc::Status CreateTopics(grpc::ServerContext* ctx, const cv1::CreateTopicsRequest* req,
                            cv1::CreateTopicsResponse* resp) override {
    if (grpc::Status st = [&] {
      for (const auto& t : req->topics()) {
        if (!may(ctx, acl::Operation::kCreate, acl::ResourceType::kCluster, acl::kClusterName)) {
          if (grpc::Status st = allow(ctx, acl::Operation::kCreate, acl::ResourceType::kTopic, t.name()); !st.ok()) return st;
        }
      }
      return grpc::Status::OK;
    }(); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::CreateTopics, *req, resp);
  }
  grpc::Status DeleteTopics(grpc::ServerContext* ctx, const cv1::DeleteTopicsRequest* req,
                            cv1::DeleteTopicsResponse* resp) override {
    if (grpc::Status st = allow_each(ctx, acl::Operation::kDelete, acl::ResourceType::kTopic, req->names()); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::DeleteTopics, *req, resp);
  }
  grpc::Status CreatePartitions(grpc::ServerContext* ctx, const cv1::CreatePartitionsRequest* req,
                                cv1::CreatePartitionsResponse* resp) override {
    if (grpc::Status st = [&] {
      for (const auto& t : req->topics()) {
        if (grpc::Status st = allow(ctx, acl::Operation::kAlter, acl::ResourceType::kTopic, t.name()); !st.ok()) return st;
      }
      return grpc::Status::OK;
    }(); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::CreatePartitions, *req, resp);
  }
  grpc::Status AlterConfigs(grpc::ServerContext* ctx, const cv1::AlterConfigsRequest* req,
                            cv1::AlterConfigsResponse* resp) override {
    if (grpc::Status st = [&] {
      for (const auto& r : req->resources()) {
        if (grpc::Status st = allow(ctx, acl::Operation::kAlterConfigs, acl::ResourceType::kTopic, r.topic()); !st.ok()) return st;
      }
      return grpc::Status::OK;
    }(); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::AlterConfigs, *req, resp);
  }
  grpc::Status AlterUserScramCredentials(grpc::ServerContext* ctx, const cv1::AlterUserScramCredentialsRequest* req,
                                         cv1::AlterUserScramCredentialsResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kAlter); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::AlterUserScramCredentials, *req, resp);
  }
  grpc::Status DescribeUserScramCredentials(grpc::ServerContext* ctx, const cv1::DescribeUserScramCredentialsRequest* req,
                                            cv1::DescribeUserScramCredentialsResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kDescribe); !st.ok()) return st;
    broker::describe_user_scram_credentials(*b_->publisher_->image(), *req, resp);
    return grpc::Status::OK;
  }
  grpc::Status CreateAcls(grpc::ServerContext* ctx, const cv1::CreateAclsRequest* req, cv1::CreateAclsResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kAlter); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::CreateAcls, *req, resp);
  }
  grpc::Status DeleteAcls(grpc::ServerContext* ctx, const cv1::DeleteAclsRequest* req, cv1::DeleteAclsResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kAlter); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::DeleteAcls, *req, resp);
  }
  grpc::Status DescribeAcls(grpc::ServerContext* ctx, const cv1::DescribeAclsRequest* req,
                            cv1::DescribeAclsResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kDescribe); !st.ok()) return st;
    b_->describe_acls(*req, resp);
    return grpc::Status::OK;
  }
  grpc::Status InitProducerId(grpc::ServerContext* ctx, const bv1::InitProducerIdRequest* req,
                              bv1::InitProducerIdResponse* resp) override {
    if (grpc::Status st = [&] {
      if (may(ctx, acl::Operation::kIdempotentWrite, acl::ResourceType::kCluster, acl::kClusterName)) return grpc::Status::OK;
      for (const auto& [id, t] : b_->publisher_->image()->topics()) {
        if (may(ctx, acl::Operation::kWrite, acl::ResourceType::kTopic, t->name)) return grpc::Status::OK;
      }
      return allow_cluster(ctx, acl::Operation::kIdempotentWrite);
    }(); !st.ok()) return st;
    b_->init_producer_id(*req, resp);
    return grpc::Status::OK;
  }
  grpc::ServerUnaryReactor* DescribeConfigs(grpc::CallbackServerContext* ctx, const cv1::DescribeConfigsRequest* req,
                                            cv1::DescribeConfigsResponse* resp) override {
    if (grpc::Status st = allow_each(ctx, acl::Operation::kDescribeConfigs, acl::ResourceType::kTopic, req->topics());
        !st.ok()) {
      return refuse(ctx, st);
    }
    DescribeConfigs_now(req, resp);
    auto* res = resp->mutable_resources();
    for (int i = res->size() - 1; i >= 0; --i) {
      if (!may(ctx, acl::Operation::kDescribeConfigs, acl::ResourceType::kTopic, res->Get(i).topic())) res->DeleteSubrange(i, 1);
    }
    return refuse(ctx, grpc::Status::OK);
  }
  grpc::Status DescribeConfigs_now(const cv1::DescribeConfigsRequest* req, cv1::DescribeConfigsResponse* resp) {
    broker::describe_configs(*b_->publisher_->image(), *req, resp);
    return grpc::Status::OK;
  }
  grpc::Status DescribeCluster(grpc::ServerContext* ctx, const cv1::DescribeClusterRequest* req,
                               cv1::DescribeClusterResponse* resp) override {
    if (grpc::Status st = allow_cluster(ctx, acl::Operation::kDescribe); !st.ok()) return st;
    return forward(&ControllerChannel::Stub::DescribeCluster, *req, resp, 10'000, /*read_back=*/false);
  }

  // ---- Consumer groups: answered by this broker's coordinator (NOT_COORDINATOR if it is not
  // the group's).
  grpc::Status FindCoordinator(grpc::ServerContext* ctx, const bv1::FindCoordinatorRequest* req,
                               bv1::FindCoordinatorResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kDescribe, acl::ResourceType::kGroup, req->key()); !st.ok()) return st;
    if (req->key_type() != 0) {
      resp->set_error_code(gannet::v1::INVALID_REQUEST);
      resp->set_error_message("only group coordinators (key_type 0) exist");
      return grpc::Status::OK;
    }
    b_->find_coordinator(req->key(), b_->options_.listener_name, resp);
    return grpc::Status::OK;
  }
  // A join waiting for its phase to end, a sync waiting for the leader's assignment and a
  // long-polling heartbeat are parked in the coordinator, holding no thread; a cancelled call's
  // parked wait is dropped.
  template <typename Start>
  grpc::ServerUnaryReactor* parked_in_coordinator(Start start) {
    auto* reactor = new CallReactor();
    GroupCoordinator* groups = b_->groups_.get();
    const uint64_t id = start(groups, [reactor] { reactor->Finish(grpc::Status::OK); });
    if (id != 0) reactor->set_on_cancel([groups, id] { groups->cancel_parked(id); });
    return reactor;
  }
  grpc::ServerUnaryReactor* JoinGroup(grpc::CallbackServerContext* ctx, const bv1::JoinGroupRequest* req,
                                      bv1::JoinGroupResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    return parked_in_coordinator([&](GroupCoordinator* g, std::function<void()> done) {
      return g->join_group(*req, peer_host(ctx->peer()), resp, std::move(done));
    });
  }
  grpc::ServerUnaryReactor* SyncGroup(grpc::CallbackServerContext* ctx, const bv1::SyncGroupRequest* req,
                                      bv1::SyncGroupResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    return parked_in_coordinator(
        [&](GroupCoordinator* g, std::function<void()> done) { return g->sync_group(*req, resp, std::move(done)); });
  }
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx, const bv1::HeartbeatRequest* req,
                                      bv1::HeartbeatResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    return parked_in_coordinator(
        [&](GroupCoordinator* g, std::function<void()> done) { return g->heartbeat(*req, resp, std::move(done)); });
  }
  // Answered once the group's Empty record is written when the last member leaves, holding no
  // thread meanwhile.
  grpc::ServerUnaryReactor* LeaveGroup(grpc::CallbackServerContext* ctx, const bv1::LeaveGroupRequest* req,
                                       bv1::LeaveGroupResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    auto* reactor = new CallReactor();
    b_->groups_->leave_group(*req, resp, [reactor] { reactor->Finish(grpc::Status::OK); });
    return reactor;
  }
  // On the callback API: a commit parks in its offsets partition's purgatory, holding no thread.
  grpc::ServerUnaryReactor* OffsetCommit(grpc::CallbackServerContext* ctx, const bv1::OffsetCommitRequest* req,
                                         bv1::OffsetCommitResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    for (const auto& t : req->topics()) {
      if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kTopic, t.name()); !st.ok()) {
        return refuse(ctx, st);
      }
    }
    auto* reactor = new CallReactor();
    b_->groups_->offset_commit(*req, resp, [reactor] { reactor->Finish(grpc::Status::OK); });
    return reactor;
  }
  grpc::ServerUnaryReactor* OffsetFetch(grpc::CallbackServerContext* ctx, const bv1::OffsetFetchRequest* req,
                                        bv1::OffsetFetchResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kDescribe, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    OffsetFetch_now(req, resp);
    auto* topics = resp->mutable_topics();
    for (int i = topics->size() - 1; i >= 0; --i) {
      if (!may(ctx, acl::Operation::kDescribe, acl::ResourceType::kTopic, topics->Get(i).name())) topics->DeleteSubrange(i, 1);
    }
    return refuse(ctx, grpc::Status::OK);
  }
  grpc::Status OffsetFetch_now(const bv1::OffsetFetchRequest* req, bv1::OffsetFetchResponse* resp) {
    b_->groups_->offset_fetch(*req, resp);
    return grpc::Status::OK;
  }
  // Broker-assigned groups: answered at once (no I/O, nothing to wait for).
  grpc::ServerUnaryReactor* ConsumerGroupHeartbeat(grpc::CallbackServerContext* ctx,
                                                   const bv1::ConsumerGroupHeartbeatRequest* req,
                                                   bv1::ConsumerGroupHeartbeatResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, req->group_id()); !st.ok()) {
      return refuse(ctx, st);
    }
    b_->groups_->consumer_group_heartbeat(*req, peer_host(ctx->peer()), resp);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ConsumerGroupDescribe(grpc::CallbackServerContext* ctx,
                                                  const bv1::ConsumerGroupDescribeRequest* req,
                                                  bv1::ConsumerGroupDescribeResponse* resp) override {
    if (grpc::Status st = allow_each(ctx, acl::Operation::kDescribe, acl::ResourceType::kGroup, req->group_ids()); !st.ok()) {
      return refuse(ctx, st);
    }
    b_->groups_->consumer_group_describe(*req, resp);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* ctx, const bv1::ListGroupsRequest* req,
                                       bv1::ListGroupsResponse* resp) override {
    ListGroups_now(req, resp);
    if (!may(ctx, acl::Operation::kDescribe, acl::ResourceType::kCluster, acl::kClusterName)) {
      auto* groups = resp->mutable_groups();
      for (int i = groups->size() - 1; i >= 0; --i) {
        if (!may(ctx, acl::Operation::kDescribe, acl::ResourceType::kGroup, groups->Get(i).group_id())) {
          groups->DeleteSubrange(i, 1);
        }
      }
    }
    return refuse(ctx, grpc::Status::OK);
  }
  grpc::Status ListGroups_now(const bv1::ListGroupsRequest* req, bv1::ListGroupsResponse* resp) {
    b_->groups_->list_groups(*req, resp);
    return grpc::Status::OK;
  }
  grpc::ServerUnaryReactor* DescribeGroups(grpc::CallbackServerContext* ctx, const bv1::DescribeGroupsRequest* req,
                                           bv1::DescribeGroupsResponse* resp) override {
    if (grpc::Status st = allow_each(ctx, acl::Operation::kDescribe, acl::ResourceType::kGroup, req->group_ids()); !st.ok()) {
      return refuse(ctx, st);
    }
    return answer_now(ctx, &Service::DescribeGroups_now, req, resp);
  }
  grpc::Status DescribeGroups_now(const bv1::DescribeGroupsRequest* req, bv1::DescribeGroupsResponse* resp) {
    b_->groups_->describe_groups(*req, resp);
    return grpc::Status::OK;
  }
  grpc::Status DeleteGroups(grpc::ServerContext* ctx, const bv1::DeleteGroupsRequest* req,
                            bv1::DeleteGroupsResponse* resp) override {
    if (grpc::Status st = allow_each(ctx, acl::Operation::kDelete, acl::ResourceType::kGroup, req->group_ids()); !st.ok()) return st;
    b_->groups_->delete_groups(*req, resp);
    return grpc::Status::OK;
  }

  // Produce and Fetch run on gRPC's callback API: a parked request holds no thread (its answer is
  // sent by whatever completes it: the HW moving, the deadline timer, the executor).
  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* ctx, const bv1::ProduceRequest* req,
                                    bv1::ProduceResponse* resp) override {
    if (grpc::Status st = allow_topics_of(ctx, acl::Operation::kWrite, req->partitions()); !st.ok()) return refuse(ctx, st);
    auto* reactor = new CallReactor();
    auto call = new_produce_call([reactor] { reactor->Finish(grpc::Status::OK); });
    std::weak_ptr<ProduceCall> weak = call;
    reactor->set_on_cancel([weak] {
      if (auto c = weak.lock()) c->expire();
    });
    // The batches are stamped (offsets, epoch) in place, in the request's own buffer: the request
    // is this handler's to use until Finish, and a copy of every produced byte would cost more.
    produce(call, const_cast<bv1::ProduceRequest*>(req), resp);
    return reactor;
  }

  // Produce requests on one stream. This thread reads and appends each request as it comes
  // (through the same produce() as the unary call), while fewer than kProduceStreamMaxWaiting
  // acks=-1 answers are owed; answers that need no waiting are written at once, the others by a
  // writer thread as their waits complete (answers carry the request's correlation id, so they may
  // come out of request order). A producer's pipelined requests are appended back to back while
  // earlier ones replicate.
  grpc::Status ProduceStream(grpc::ServerContext* ctx,
                             grpc::ServerReaderWriter<bv1::ProduceResponse, bv1::ProduceRequest>* stream) override {
    // mu: the fields below; write_mu: Write (by both threads). A completing wait (on the thread
    // that moved the HW: never to be held up by a slow client) takes only mu, briefly.
    std::mutex mu, write_mu;
    std::condition_variable cv;       // the writer: an answer is ready, or reading ended
    std::condition_variable room_cv;  // the reader: fewer answers are owed
    std::deque<std::shared_ptr<bv1::ProduceResponse>> ready;
    size_t owed = 0;  // acks=-1 answers not written yet
    bool reading_done = false;
    bool write_failed = false;
    std::vector<std::weak_ptr<ProduceCall>> calls;  // to end at once when the client is gone
    std::thread writer;
    auto write = [&](const bv1::ProduceResponse& resp) {
      std::lock_guard<std::mutex> wl(write_mu);
      if (!write_failed && !stream->Write(resp)) write_failed = true;
    };
    auto writer_loop = [&] {
      std::unique_lock<std::mutex> l(mu);
      for (;;) {
        cv.wait(l, [&] { return !ready.empty() || (reading_done && owed == 0); });
        if (ready.empty()) return;
        std::shared_ptr<bv1::ProduceResponse> resp = std::move(ready.front());
        ready.pop_front();
        l.unlock();
        if (!ctx->IsCancelled()) write(*resp);  // nobody reads the answers of a cancelled stream
        l.lock();
        --owed;
        room_cv.notify_one();
      }
    };
    bv1::ProduceRequest req;
    while (stream->Read(&req)) {
      auto resp = std::make_shared<bv1::ProduceResponse>();
      resp->set_correlation_id(req.correlation_id());
      if (!allow_topics_of(ctx, acl::Operation::kWrite, req.partitions()).ok()) {
        // Refused whole (ACLs), answered like any request: each partition TOPIC_AUTHORIZATION_FAILED.
        for (const auto& pd : req.partitions()) {
          auto* pr = resp->add_partitions();
          pr->set_topic(pd.topic());
          pr->set_partition(pd.partition());
          pr->set_error_code(may(ctx, acl::Operation::kWrite, acl::ResourceType::kTopic, pd.topic())
                                 ? gannet::v1::NONE
                                 : gannet::v1::TOPIC_AUTHORIZATION_FAILED);
          if (pr->error_code() == gannet::v1::NONE) {
            pr->set_error_code(gannet::v1::TOPIC_AUTHORIZATION_FAILED);
            pr->set_error_message("another topic of the request is refused; nothing was appended");
          }
        }
        if (req.acks() != 0) write(*resp);
        continue;
      }
      auto parked = std::make_shared<bool>(false);  // with mu
      const int acks = req.acks();
      auto call = new_produce_call([&mu, &ready, &cv, resp, parked] {
        std::lock_guard<std::mutex> l(mu);
        if (*parked) {
          ready.push_back(resp);
          cv.notify_one();
        }
      });
      produce(call, &req, resp.get());
      std::unique_lock<std::mutex> l(mu);
      if (acks == 0) continue;
      // Answered (at once, or it completed between produce() and here): written now, by this
      // thread. Else its answer is owed, written by the writer once its waits complete.
      if (call->remaining_.load() == 0) {
        l.unlock();
        write(*resp);
        continue;
      }
      *parked = true;
      ++owed;
      calls.push_back(call);
      if (!writer.joinable()) writer = std::thread(writer_loop);
      // Back-pressure: with kProduceStreamMaxWaiting answers owed, the next request is not read
      // (nor appended) until one is written; gRPC's flow control then stops the client.
      // (A cancel is not signalled to a synchronous stream: looked at every 200 ms.)
      while (!room_cv.wait_for(l, std::chrono::milliseconds(200), [&] { return owed < kProduceStreamMaxWaiting; })) {
        if (ctx->IsCancelled() || b_->stopping()) break;
      }
      calls.erase(std::remove_if(calls.begin(), calls.end(), [](const auto& w) { return w.expired(); }), calls.end());
    }
    std::vector<std::weak_ptr<ProduceCall>> left;
    {
      std::lock_guard<std::mutex> l(mu);
      reading_done = true;
      left.swap(calls);
    }
    cv.notify_one();
    // The answers still owed are written if the client is still reading (it half-closed); if it
    // is gone, their waits end now.
    if (ctx->IsCancelled()) {
      for (auto& w : left) {
        if (auto c = w.lock()) c->expire();
      }
    }
    if (writer.joinable()) writer.join();
    return grpc::Status::OK;
  }

  // With TLS on this listener, a fetch naming a replica (a follower's) is taken only from the
  // cluster's own principals: a forged one could move a high watermark.
  grpc::Status check_replica_fetch(grpc::ServerContextBase* ctx, const bv1::FetchRequest& req) const {
    if (req.replica_id() < 0 || !b_->options_.grpc_tls) return grpc::Status::OK;
    std::string principal;
    if (grpc_peer_is_one_of(ctx, b_->options_.cluster_principals, &principal)) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "replica fetches are taken only from the cluster's own principals (super.users), not " +
                            (principal.empty() ? std::string("an unauthenticated caller") : principal));
  }

  grpc::ServerUnaryReactor* Fetch(grpc::CallbackServerContext* ctx, const bv1::FetchRequest* req,
                                  bv1::FetchResponse* resp) override {
    if (grpc::Status st = check_replica_fetch(ctx, *req); !st.ok()) return refuse(ctx, st);
    if (req->replica_id() < 0) {
      if (grpc::Status st = allow_topics_of(ctx, acl::Operation::kRead, req->partitions()); !st.ok()) return refuse(ctx, st);
    }
    auto* reactor = new CallReactor();
    auto call = std::make_shared<FetchCall>(this, req, resp, [reactor] { reactor->Finish(grpc::Status::OK); });
    reactor->keep(call);  // its budget bytes stay held until the answer is sent
    std::weak_ptr<FetchCall> weak = call;
    reactor->set_on_cancel([weak] {
      if (auto c = weak.lock()) c->cancel();
    });
    call->start();
    return reactor;
  }

  // Records as messages (record_messages.h): partitioned and batched here and appended through
  // the same produce path; the records of partitions another broker leads are forwarded to it
  // (once: a forwarded request is never forwarded again).
  grpc::ServerUnaryReactor* ProduceRecords(grpc::CallbackServerContext* ctx, const bv1::ProduceRecordsRequest* req,
                                           bv1::ProduceRecordsResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kWrite, acl::ResourceType::kTopic, req->topic()); !st.ok()) {
      return refuse(ctx, st);
    }
    auto* reactor = new CallReactor();
    produce_records(req, resp, [reactor] { reactor->Finish(grpc::Status::OK); });
    return reactor;
  }

  // The same on a stream: each request answered, in order, before the next is read.
  grpc::Status ProduceRecordsStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<bv1::ProduceRecordsResponse, bv1::ProduceRecordsRequest>* stream) override {
    bv1::ProduceRecordsRequest req;
    while (!b_->stopping() && !ctx->IsCancelled() && stream->Read(&req)) {
      if (grpc::Status st = allow(ctx, acl::Operation::kWrite, acl::ResourceType::kTopic, req.topic()); !st.ok()) return st;
      bv1::ProduceRecordsResponse resp;
      std::promise<void> answered;
      produce_records(&req, &resp, [&answered] { answered.set_value(); });
      answered.get_future().wait();
      if (!stream->Write(resp)) break;
    }
    return grpc::Status::OK;
  }

  // Decoded records of one partition: the consumers' fetch path (parked long poll and all).
  grpc::ServerUnaryReactor* FetchRecords(grpc::CallbackServerContext* ctx, const bv1::FetchRecordsRequest* req,
                                         bv1::FetchRecordsResponse* resp) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kTopic, req->topic()); !st.ok()) {
      return refuse(ctx, st);
    }
    auto* reactor = new CallReactor();
    auto call = fetch_records(req, resp, [reactor] { reactor->Finish(grpc::Status::OK); });
    reactor->keep(call);
    std::weak_ptr<FetchCall> weak = call;
    reactor->set_on_cancel([weak] {
      if (auto c = weak.lock()) c->cancel();
    });
    call->start();
    return reactor;
  }

  // A consumer stream: records of one partition from `offset` on, as they arrive, each answer
  // holding what one fetch found (long polls of max_wait_ms, 500 ms when unset), until the client
  // cancels, an error (answered, then the stream ends) or the broker stops.
  grpc::Status ConsumeRecords(grpc::ServerContext* ctx, const bv1::FetchRecordsRequest* first,
                              grpc::ServerWriter<bv1::FetchRecordsResponse>* writer) override {
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kTopic, first->topic()); !st.ok()) return st;
    bv1::FetchRecordsRequest req = *first;
    if (req.max_wait_ms() <= 0) req.set_max_wait_ms(500);
    while (!b_->stopping() && !ctx->IsCancelled()) {
      bv1::FetchRecordsResponse resp;
      std::promise<void> answered;
      auto call = fetch_records(&req, &resp, [&answered] { answered.set_value(); });
      call->start();
      answered.get_future().wait();
      if (resp.error_code() != gannet::v1::NONE) {
        writer->Write(resp);
        break;
      }
      if (resp.records_size() > 0 && !writer->Write(resp)) break;
      req.set_offset(resp.next_offset());
    }
    return grpc::Status::OK;
  }

  // A member of a broker-assigned group on one stream (broker/subscription.h). Synchronous, as the
  // other streams (issue 15): the stream holds a thread; a reader thread takes the client's commits
  // while records go out.
  grpc::Status Subscribe(grpc::ServerContext* ctx,
                         grpc::ServerReaderWriter<bv1::SubscribeResponse, bv1::SubscribeRequest>* stream) override {
    bv1::SubscribeRequest first;
    if (!stream->Read(&first)) return grpc::Status::OK;
    if (!first.has_start()) {
      bv1::SubscribeResponse e;
      e.mutable_error()->set_error_code(gannet::v1::INVALID_REQUEST);
      e.mutable_error()->set_error_message("the first message of a Subscribe stream is a Start");
      stream->Write(e);
      return grpc::Status::OK;
    }
    if (grpc::Status st = allow(ctx, acl::Operation::kRead, acl::ResourceType::kGroup, first.start().group_id()); !st.ok()) {
      return st;
    }
    if (grpc::Status st = allow_each(ctx, acl::Operation::kRead, acl::ResourceType::kTopic, first.start().topics());
        !st.ok()) {
      return st;
    }
    struct Inbox {
      std::mutex mu;
      std::condition_variable cv;
      std::deque<bv1::SubscribeRequest::Commit> commits;
      bool closed = false;
    };
    auto inbox = std::make_shared<Inbox>();
    std::thread reader([stream, inbox] {
      bv1::SubscribeRequest r;
      while (stream->Read(&r)) {
        if (!r.has_commit()) continue;  // a second Start changes nothing
        std::lock_guard<std::mutex> l(inbox->mu);
        inbox->commits.push_back(r.commit());
        inbox->cv.notify_all();
      }
      std::lock_guard<std::mutex> l(inbox->mu);
      inbox->closed = true;  // the client closed its side: the member leaves
      inbox->cv.notify_all();
    });
    const std::string group = first.start().group_id();
    const std::string host = peer_host(ctx->peer());
    auto deadline_in = [](grpc::ClientContext* c, int ms) {
      c->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
    };
    // The group's coordinator: this broker, or a stub for the one that is.
    auto coordinator = [this, group]() -> std::pair<bool, bv1::Broker::Stub*> {
      bv1::FindCoordinatorResponse fc;
      b_->find_coordinator(group, b_->options_.listener_name, &fc);
      if (fc.error_code() != gannet::v1::NONE) return {false, nullptr};
      if (fc.node_id() == b_->options_.node_id) return {true, nullptr};
      return {false, peer_stub(fc.node_id())};
    };
    Subscription::Calls calls;
    calls.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
    calls.heartbeat = [&](const bv1::ConsumerGroupHeartbeatRequest& req, bv1::ConsumerGroupHeartbeatResponse* resp) {
      auto [local, stub] = coordinator();
      if (local) {
        b_->groups_->consumer_group_heartbeat(req, host, resp);
        return true;
      }
      if (!stub) return false;
      grpc::ClientContext c;
      deadline_in(&c, 5'000);
      return stub->ConsumerGroupHeartbeat(&c, req, resp).ok();
    };
    calls.offset_fetch = [&](const bv1::OffsetFetchRequest& req, bv1::OffsetFetchResponse* resp) {
      auto [local, stub] = coordinator();
      if (local) {
        b_->groups_->offset_fetch(req, resp);
        return true;
      }
      if (!stub) return false;
      grpc::ClientContext c;
      deadline_in(&c, 10'000);
      return stub->OffsetFetch(&c, req, resp).ok();
    };
    calls.offset_commit = [&](const bv1::OffsetCommitRequest& req, bv1::OffsetCommitResponse* resp) {
      auto [local, stub] = coordinator();
      if (local) {
        b_->groups_->offset_commit(req, resp);
        return true;
      }
      if (!stub) return false;
      grpc::ClientContext c;
      deadline_in(&c, 15'000);
      return stub->OffsetCommit(&c, req, resp).ok();
    };
    calls.fetch = [&](const bv1::FetchRecordsRequest& req, bv1::FetchRecordsResponse* resp) {
      // Here if this broker leads the partition, else from its leader.
      std::promise<void> answered;
      auto call = fetch_records(&req, resp, [&answered] { answered.set_value(); });
      call->start();
      answered.get_future().wait();
      if (resp->error_code() != gannet::v1::NOT_LEADER_OR_FOLLOWER || resp->leader_id() < 0 ||
          resp->leader_id() == b_->options_.node_id) {
        return true;
      }
      bv1::Broker::Stub* stub = peer_stub(resp->leader_id());
      if (!stub) return true;
      resp->Clear();
      grpc::ClientContext c;
      deadline_in(&c, 10'000);
      return stub->FetchRecords(&c, req, resp).ok();
    };
    Subscription sub(first.start(), std::move(calls));
    bool open = true;
    while (open && !b_->stopping() && !ctx->IsCancelled()) {
      std::vector<bv1::SubscribeResponse> out;
      std::deque<bv1::SubscribeRequest::Commit> commits;
      bool closed;
      {
        std::lock_guard<std::mutex> l(inbox->mu);
        commits.swap(inbox->commits);
        closed = inbox->closed;
      }
      for (const auto& c : commits) sub.commit(c, &out);
      if (!closed) open = sub.step(&out);
      bool records = false;
      for (const auto& m : out) {
        records |= m.has_records();
        if (!stream->Write(m)) open = false;
      }
      if (closed) break;
      if (!records) {
        // Nothing new: wait a little, or less if a commit or the client's close comes.
        std::unique_lock<std::mutex> l(inbox->mu);
        inbox->cv.wait_for(l, std::chrono::milliseconds(50), [&] { return inbox->closed || !inbox->commits.empty(); });
      }
    }
    sub.leave();
    bool client_closed;
    {
      // After an error (sent), the client closes its side; the stream then ends with OK. A client
      // that does not within 10 s (or a broker stopping) has the call cancelled.
      std::unique_lock<std::mutex> l(inbox->mu);
      if (!open && !b_->stopping() && !ctx->IsCancelled()) {
        inbox->cv.wait_for(l, std::chrono::seconds(10), [&] { return inbox->closed; });
      }
      client_closed = inbox->closed;
    }
    if (!client_closed) ctx->TryCancel();  // ends the reader's Read: the client still holds its side open
    reader.join();
    return grpc::Status::OK;
  }

  // Fetch requests on one stream, each answered before the next is read (a follower's replica
  // fetcher: one long poll out at a time, without a call's setup per round trip).
  grpc::Status FetchStream(grpc::ServerContext* ctx,
                           grpc::ServerReaderWriter<bv1::FetchResponse, bv1::FetchRequest>* stream) override {
    FetchRegistration waiting(b_);
    bv1::FetchRequest req;
    while (!b_->stopping() && stream->Read(&req)) {
      if (grpc::Status st = check_replica_fetch(ctx, req); !st.ok()) return st;
      if (req.replica_id() < 0) {
        if (grpc::Status st = allow_topics_of(ctx, acl::Operation::kRead, req.partitions()); !st.ok()) return st;
      }
      bv1::FetchResponse resp;
      fetch(ctx, &req, &resp, waiting.waiter);
      resp.set_correlation_id(req.correlation_id());
      if (!stream->Write(resp)) break;
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* ListOffsets(grpc::CallbackServerContext* ctx, const bv1::ListOffsetsRequest* req,
                                        bv1::ListOffsetsResponse* resp) override {
    if (grpc::Status st = allow_topics_of(ctx, acl::Operation::kDescribe, req->partitions()); !st.ok()) return refuse(ctx, st);
    return answer_now(ctx, &Service::ListOffsets_now, req, resp);
  }
  grpc::Status ListOffsets_now(const bv1::ListOffsetsRequest* req, bv1::ListOffsetsResponse* resp) {
    for (const auto& pd : req->partitions()) {
      auto* r = resp->add_partitions();
      r->set_topic(pd.topic());
      r->set_partition(pd.partition());
      auto part = b_->partition({pd.topic(), pd.partition()});
      if (!part) {
        not_here(pd.topic(), pd.partition(), r);
        continue;
      }
      ProduceOutcome o = part->list_offset(pd.timestamp(), pd.current_leader_epoch());
      r->set_error_code(o.error);
      r->set_error_message(o.message);
      r->set_offset(o.base_offset);
      r->set_timestamp(o.last_offset);
      r->set_leader_id(o.leader);
      r->set_leader_epoch(o.leader_epoch);
    }
    return grpc::Status::OK;
  }

 private:
  class FetchCall;  // below

  // Records as messages (record_messages.h): partitioned and batched here and appended through
  // the same produce path; the records of partitions another broker leads are forwarded to it
  // (once: a forwarded request is never forwarded again). `done` runs once `resp` is complete.
  void produce_records(const bv1::ProduceRecordsRequest* req, bv1::ProduceRecordsResponse* resp,
                       std::function<void()> finish) {
    struct Join {
      ProducePlan plan;
      bv1::ProduceResponse core;
      std::mutex mu;  // resp is filled by several completions
      std::atomic<int> left{1};
      std::function<void()> finish;
    };
    auto j = std::make_shared<Join>();
    j->finish = std::move(finish);
    j->plan = plan_produce_records(*b_->publisher_->image(), *req, b_->options_.node_id,
                                   sticky_.fetch_add(1, std::memory_order_relaxed), resp);
    if (j->plan.refused) return j->finish();
    auto done_one = [j] {
      if (j->left.fetch_sub(1) == 1) j->finish();
    };
    if (j->plan.local.partitions_size() > 0) {
      j->left.fetch_add(1);
      b_->produce(&j->plan.local, &j->core, [j, resp, done_one] {
        {
          std::lock_guard<std::mutex> l(j->mu);
          finish_local_records(j->plan, j->core, resp);
        }
        done_one();
      });
    }
    for (auto& [leader, f] : j->plan.forwards) {
      j->left.fetch_add(1);
      const ProducePlan::Forward* fwd = &f;  // j owns it (std::map: stable)
      bv1::Broker::Stub* stub = peer_stub(leader);
      if (!stub) {
        {
          std::lock_guard<std::mutex> l(j->mu);
          finish_forwarded_records(*fwd, nullptr, gannet::v1::BROKER_NOT_AVAILABLE,
                                   "no address for broker " + std::to_string(leader), resp);
        }
        done_one();
        continue;
      }
      auto ctx = std::make_shared<grpc::ClientContext>();
      const int timeout = fwd->req.timeout_ms() > 0 ? std::min(fwd->req.timeout_ms(), 300'000) : 30'000;
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout + 5'000));
      auto answer = std::make_shared<bv1::ProduceRecordsResponse>();
      stub->async()->ProduceRecords(ctx.get(), &fwd->req, answer.get(),
                                    [j, fwd, ctx, answer, resp, done_one, leader](grpc::Status st) {
                                      {
                                        std::lock_guard<std::mutex> l(j->mu);
                                        finish_forwarded_records(
                                            *fwd, st.ok() ? answer.get() : nullptr,
                                            st.ok() ? gannet::v1::NONE : gannet::v1::REQUEST_TIMED_OUT,
                                            "forwarded to broker " + std::to_string(leader) + ": " + st.error_message(),
                                            resp);
                                      }
                                      done_one();
                                    });
    }
    done_one();
  }

  // A fetch of decoded records, not started yet (start() it after keeping the handle). `done`
  // runs once `resp` is complete.
  std::shared_ptr<FetchCall> fetch_records(const bv1::FetchRecordsRequest* req, bv1::FetchRecordsResponse* resp,
                                           std::function<void()> done) {
    struct Fetched {
      bv1::FetchRequest req;
      bv1::FetchResponse resp;
    };
    auto f = std::make_shared<Fetched>();
    f->req = fetch_request_for(*req);
    return std::make_shared<FetchCall>(this, &f->req, &f->resp, [f, req, resp, done = std::move(done)] {
      decode_fetched_records(*req, f->resp, resp);
      done();
    });
  }

  // A stub for another broker's gRPC listener (forwarding records to a partition's leader),
  // cached by address; nullptr when the image has no address for it.
  bv1::Broker::Stub* peer_stub(int32_t id) {
    auto image = b_->publisher_->image();
    auto it = image->brokers().find(id);
    if (it == image->brokers().end()) return nullptr;
    std::string address;
    for (const auto& e : it->second.endpoints) {
      if (e.name == b_->options_.listener_name) address = e.host + ":" + std::to_string(e.port);
    }
    if (address.empty()) return nullptr;
    std::lock_guard<std::mutex> l(peers_mu_);
    auto& stub = peers_[address];
    if (!stub) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(64 << 20);
      args.SetMaxSendMessageSize(64 << 20);
      stub = bv1::Broker::NewStub(grpc::CreateCustomChannel(address, channel_credentials(b_->options_.grpc_tls), args));
    }
    return stub.get();
  }
  std::mutex peers_mu_;
  std::map<std::string, std::unique_ptr<bv1::Broker::Stub>> peers_;  // never shrinks: one per broker address
  std::atomic<uint64_t> sticky_{static_cast<uint64_t>(std::random_device{}())};  // keyless records' partition

  // An acks=-1 append waiting for the ISR: its result in the answer, and what it waits for.
  struct ReplicationWait {
    bv1::ProduceResponse::PartitionResult* result;
    std::shared_ptr<Partition> part;
    int64_t last_offset;
    int32_t epoch;
  };

  static std::chrono::steady_clock::time_point produce_deadline(const bv1::ProduceRequest& req) {
    const int64_t timeout = req.timeout_ms() > 0 ? std::min(req.timeout_ms(), 300'000) : 30'000;
    return std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
  }

  // Appends each partition's batches as leader (stamping them in `req`'s own buffer) and fills
  // `resp`; acks=-1 appends that succeeded are added to `waits`.
  void append(bv1::ProduceRequest* req, bv1::ProduceResponse* resp, std::vector<ReplicationWait>* waits) {
    const int acks = req->acks();
    if (acks != 0 && acks != 1 && acks != -1) {
      for (const auto& pd : req->partitions()) {
        auto* r = resp->add_partitions();
        r->set_topic(pd.topic());
        r->set_partition(pd.partition());
        r->set_error_code(gannet::v1::INVALID_REQUIRED_ACKS);
        r->set_error_message("acks must be 0, 1 or -1");
      }
      return;
    }
    for (int i = 0; i < req->partitions_size(); ++i) {
      bv1::ProduceRequest::PartitionData& pd = *req->mutable_partitions(i);
      auto* r = resp->add_partitions();
      r->set_topic(pd.topic());
      r->set_partition(pd.partition());
      auto part = b_->partition({pd.topic(), pd.partition()});
      if (!part) {
        not_here(pd.topic(), pd.partition(), r);
        continue;
      }
      const size_t bytes = pd.records().size();
      ProduceOutcome o = part->append_as_leader(pd.mutable_records(), acks);
      if (o.error == gannet::v1::NONE) {
        b_->count_topic_in(pd.topic(), bytes, static_cast<uint64_t>(o.last_offset - o.base_offset + 1));
      } else {
        b_->count_error("produce", o.error);
      }
      r->set_error_code(o.error);
      r->set_error_message(o.message);
      r->set_base_offset(o.base_offset);
      r->set_leader_id(o.leader);
      r->set_leader_epoch(o.leader_epoch);
      r->set_log_start_offset(part->log()->log_start_offset());
      if (o.error == gannet::v1::NONE && acks == -1) waits->push_back({r, part, o.last_offset, o.leader_epoch});
    }
  }

  // A fetch handler's waiter, known to the broker (which wakes it when it stops) while it lives.
  struct FetchRegistration {
    explicit FetchRegistration(BrokerServer* b) : b(b), waiter(std::make_shared<FetchWaiter>()) { b->add_fetch(waiter.get()); }
    ~FetchRegistration() { b->remove_fetch(waiter.get()); }
    BrokerServer* const b;
    const std::shared_ptr<FetchWaiter> waiter;
  };

  // ---- Fetch: one read pass, shared by the parked (callback) fetch and the stream's loop ----

  // What a fetch request may read: its size bound and whether a follower's progress counts.
  struct FetchPlan {
    size_t max_bytes = 0;
    bool counts = true;
  };
  // Checks a follower's broker epoch; false when the request is answered already (stale epoch).
  bool plan_fetch(const bv1::FetchRequest* req, bv1::FetchResponse* resp, FetchPlan* plan) {
    // Bounded by fetch.max.bytes (at most 48 MiB: one response must fit the 64 MiB send limit).
    const size_t broker_max = static_cast<size_t>(b_->options_.fetch_max_bytes);
    plan->max_bytes = req->max_bytes() > 0 ? std::min<size_t>(static_cast<size_t>(req->max_bytes()), broker_max)
                                           : broker_max;
    // A follower's request from an earlier incarnation (the broker restarted since, maybe losing
    // unsynced records) must not count its progress (KIP-903). Its progress counts (HW, ISR) only
    // with exactly the broker epoch the image registered for that replica, from a registered,
    // unfenced broker: a fetch naming a follower's id with any other epoch (a newer one: this
    // image is behind, or a forged request) still gets the records but vouches for nothing.
    plan->counts = true;
    if (req->replica_id() >= 0) {
      auto image = b_->publisher_->image();
      auto it = image->brokers().find(req->replica_id());
      plan->counts = it != image->brokers().end() && !it->second.fenced && req->broker_epoch() == it->second.epoch;
      if (it != image->brokers().end() && req->broker_epoch() < it->second.epoch) {
        for (const auto& pd : req->partitions()) {
          auto* r = resp->add_partitions();
          r->set_topic(pd.topic());
          r->set_partition(pd.partition());
          r->set_error_code(gannet::v1::STALE_BROKER_EPOCH);
          r->set_error_message("broker epoch " + std::to_string(req->broker_epoch()) + " of broker " +
                               std::to_string(req->replica_id()) + " is stale");
        }
        return false;
      }
    }
    return true;
  }

  struct FetchPass {
    size_t total = 0;
    bool errors = false;
    bool starved = false;  // a partition got no bytes because the broker-wide budget was spent
    std::vector<std::pair<std::string, uint64_t>> consumed;  // a consumer's bytes, by topic (for metrics)
    // The pass answers the fetch: count what goes out to consumers.
    void answered(BrokerServer* b) const {
      for (const auto& [topic, bytes] : consumed) b->count_topic_out(topic, bytes);
    }
  };
  // Reads every partition of `req` into a fresh `resp`, its record bytes from `held` (the
  // broker-wide fetch.response.memory.max.bytes). With `waiter`, watches each partition first, so
  // an append, a HW move or a leader change after the read wakes it.
  FetchPass read_pass(const bv1::FetchRequest* req, bv1::FetchResponse* resp, const FetchPlan& plan,
                      ByteBudget::Holding& held, bool count_progress, const std::shared_ptr<FetchWaiter>& waiter,
                      FetchSlices* slices = nullptr) {
    if (waiter) waiter->arm();
    resp->Clear();
    held.reset();
    if (slices) slices->assign(req->partitions_size(), {});
    FetchPass pass;
    const int64_t now = SystemClock::instance()->monotonic_ms();
    for (const auto& pd : req->partitions()) {
      auto* r = resp->add_partitions();
      r->set_topic(pd.topic());
      r->set_partition(pd.partition());
      auto part = b_->partition({pd.topic(), pd.partition()});
      if (!part) {
        not_here(pd.topic(), pd.partition(), r);
        pass.errors = true;
        continue;
      }
      if (waiter) part->watch(waiter);  // before the read: a later append wakes this fetch
      const size_t part_max = pd.partition_max_bytes() > 0 ? static_cast<size_t>(pd.partition_max_bytes()) : (1u << 20);
      const size_t room = pass.total >= plan.max_bytes ? 0 : plan.max_bytes - pass.total;
      const int64_t granted = room == 0 ? 0 : held.try_take(static_cast<int64_t>(std::min(part_max, room)));
      pass.starved |= room > 0 && granted == 0;
      // With nothing granted the read still runs (for the HW, errors and the follower's
      // progress), on one batch that is dropped at once.
      FetchOutcome o = part->read(req->replica_id(), pd.fetch_offset(), pd.current_leader_epoch(),
                                  pd.last_fetched_epoch(), granted == 0 ? 1 : static_cast<size_t>(granted), now,
                                  count_progress && plan.counts, slices != nullptr);
      // Records as file ranges hold no memory of ours; they still count against the budget
      // while the answer is sent (a bound on what the broker promises to send at once).
      const size_t got = slices ? static_cast<size_t>(o.slice_bytes) : o.records.size();
      if (granted == 0) {
        o.records.clear();  // over this response's size or the broker's budget
        o.slices.clear();
      } else {
        held.settle(granted, static_cast<int64_t>(got));
      }
      r->set_error_code(o.error);
      r->set_error_message(o.message);
      r->set_high_watermark(o.high_watermark);
      r->set_log_start_offset(o.log_start_offset);
      r->set_log_end_offset(o.log_end_offset);
      r->set_leader_id(o.leader);
      r->set_leader_epoch(o.leader_epoch);
      if (o.diverging) {
        r->mutable_diverging_epoch()->set_epoch(o.diverging->first);
        r->mutable_diverging_epoch()->set_end_offset(o.diverging->second);
        pass.errors = true;
      }
      pass.errors |= o.error != gannet::v1::NONE;
      if (o.error != gannet::v1::NONE) b_->count_error("fetch", o.error);
      pass.total += granted == 0 ? 0 : got;
      if (granted > 0 && got > 0 && req->replica_id() < 0) pass.consumed.emplace_back(r->topic(), got);
      if (slices) (*slices)[resp->partitions_size() - 1] = std::move(o.slices);
      r->set_records(std::move(o.records));
    }
    return pass;
  }

  // The stream's fetch (a follower's replica fetcher: one request at a time on its own thread):
  // read, and while there is too little, sleep until woken (or the deadline, cancel or stop).
  // `waiter` is the stream's.
  void fetch(grpc::ServerContext* ctx, const bv1::FetchRequest* req, bv1::FetchResponse* resp,
             const std::shared_ptr<FetchWaiter>& waiter) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(std::clamp(req->max_wait_ms(), 0, 30'000));
    FetchPlan plan;
    if (!plan_fetch(req, resp, &plan)) return;
    const bool may_wait = req->max_wait_ms() > 0;
    // (Given back when the handler returns, before gRPC serializes the answer.)
    ByteBudget::Holding held(&b_->fetch_budget_);
    for (bool first_look = true;; first_look = false) {
      const FetchPass pass = read_pass(req, resp, plan, held, first_look, may_wait ? waiter : nullptr);
      if (pass.total >= static_cast<size_t>(std::max(1, req->min_bytes())) || pass.errors ||
          std::chrono::steady_clock::now() >= deadline || ctx->IsCancelled()) {
        pass.answered(b_);
        return;
      }
      held.reset();
      // Budget spent: wait for bytes to come back (what there is to read has not been read).
      // Else long poll until new data, a HW move or a leader change in one of these partitions.
      // In slices, so a fetch its client gave up frees this thread soon.
      for (;;) {
        if (b_->stopping() || ctx->IsCancelled()) return;
        const auto now = std::chrono::steady_clock::now();
        const auto until = std::min(deadline, now + std::chrono::milliseconds(100));
        if (now >= deadline) break;
        if (pass.starved && pass.total == 0 ? b_->fetch_budget_.wait_free(until) : waiter->wait_until(until)) break;
      }
      if (b_->stopping()) return;
    }
  }

  // The parked fetch of the request core (unary Fetch; the Kafka listener's next): one read pass
  // on the calling thread; if it must wait, nothing waits but this object, watched by its
  // partitions and the deadline timer. A wake-up posts the next pass to the broker's executor;
  // the deadline, a cancel or the broker stopping completes it. `done` runs exactly once.
  class FetchCall : public Cancellable, public std::enable_shared_from_this<FetchCall> {
   public:
    FetchCall(Service* s, const bv1::FetchRequest* req, bv1::FetchResponse* resp, std::function<void()> done,
              FetchSlices* slices = nullptr)
        : s_(s),
          req_(req),
          resp_(resp),
          slices_(slices),
          done_(std::move(done)),
          deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(std::clamp(req->max_wait_ms(), 0, 30'000))),
          held_(&s->b_->fetch_budget_) {}
    ~FetchCall() {
      if (waiter_) s_->b_->remove_fetch(waiter_.get());
    }

    void start() {
      if (!s_->plan_fetch(req_, resp_, &plan_)) return finish();
      if (req_->max_wait_ms() > 0) {
        std::weak_ptr<FetchCall> weak = weak_from_this();
        waiter_ = std::make_shared<FetchWaiter>([weak] {
          if (auto c = weak.lock()) c->poke();
        });
        s_->b_->add_fetch(waiter_.get());
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        running_ = true;
      }
      run();
    }
    // The client went away: answer now with what there is (nobody will read it).
    void cancel() override {
      cancelled_ = true;
      poke();
    }

   private:
    // Something changed (a watched partition, the deadline, a cancel, the budget): look again,
    // on the executor, unless a look is running (it then looks once more).
    void poke() {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (finished_) return;
        if (running_) {
          again_ = true;
          return;
        }
        running_ = true;
      }
      auto self = shared_from_this();
      if (!s_->b_->executor_->post([self] { self->run(); })) run();
    }
    void run() {
      for (;;) {
        const bool complete = look();
        std::lock_guard<std::mutex> l(mu_);
        if (complete || finished_ || !again_) {
          running_ = false;
          return;
        }
        again_ = false;
      }
    }
    // One read pass; true once the call is answered.
    bool look() {
      const bool final = std::chrono::steady_clock::now() >= deadline_ || cancelled_ || s_->b_->stopping();
      const FetchPass pass = s_->read_pass(req_, resp_, plan_, held_, first_look_, final ? nullptr : waiter_, slices_);
      first_look_ = false;
      if (final || !waiter_ || pass.total >= static_cast<size_t>(std::max(1, req_->min_bytes())) || pass.errors) {
        pass.answered(s_->b_);
        finish();
        return true;
      }
      held_.reset();
      std::weak_ptr<FetchCall> weak = weak_from_this();
      auto poke_later = [weak] {
        if (auto c = weak.lock()) c->poke();
      };
      if (pass.starved && pass.total == 0) {
        // The broker-wide budget is spent: look again soon (what there is has not been read).
        s_->b_->timer_->schedule(std::min(deadline_, std::chrono::steady_clock::now() + std::chrono::milliseconds(10)),
                                 poke_later);
      } else if (deadline_timer_ == 0) {
        deadline_timer_ = s_->b_->timer_->schedule(deadline_, poke_later);
      }
      return false;
    }
    void finish() {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (finished_) return;
        finished_ = true;
      }
      if (deadline_timer_ != 0) s_->b_->timer_->cancel(deadline_timer_);
      done_();
    }

    Service* const s_;
    const bv1::FetchRequest* const req_;
    bv1::FetchResponse* const resp_;
    FetchSlices* const slices_;  // null: the records are read into resp_
    const std::function<void()> done_;
    const std::chrono::steady_clock::time_point deadline_;
    FetchPlan plan_;
    ByteBudget::Holding held_;  // given back when the call is destroyed: after its answer was sent
    std::shared_ptr<FetchWaiter> waiter_;
    bool first_look_ = true;         // look() runs one at a time (running_)
    uint64_t deadline_timer_ = 0;    // likewise
    std::atomic<bool> cancelled_{false};
    std::mutex mu_;
    bool running_ = false, again_ = false, finished_ = false;
  };

  // ---- Produce: the request core's, transport-agnostic ----
 public:
  friend class BrokerServer;

  // An acks=-1 produce parked in its partitions' purgatories until each has its answer, its
  // timeout passes or it is cancelled; then `done` runs, once.
  class ProduceCall {
   public:
    ProduceCall(DeadlineTimer* timer, std::function<void()> done) : timer_(timer), done_(std::move(done)) {}
    // Every wait is known (or the last one completed): the request is answered.
    void arrive() {
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      uint64_t t;
      {
        std::lock_guard<std::mutex> l(mu_);
        t = timer_id_;
      }
      if (t != 0) timer_->cancel(t);
      done_();
    }
    // Ends every wait still parked (timeout, cancel): they answer REQUEST_TIMED_OUT.
    void expire() {
      std::vector<std::pair<std::shared_ptr<Partition>, uint64_t>> parked;
      {
        std::lock_guard<std::mutex> l(mu_);
        parked = parked_;
      }
      for (auto& [part, id] : parked) part->expire_replication_wait(id);
    }
    std::atomic<int> remaining_{1};  // the waits, and one for the registration itself
    std::mutex mu_;
    std::vector<std::pair<std::shared_ptr<Partition>, uint64_t>> parked_;
    uint64_t timer_id_ = 0;

   private:
    DeadlineTimer* const timer_;
    const std::function<void()> done_;
  };

  std::shared_ptr<ProduceCall> new_produce_call(std::function<void()> done) {
    return std::make_shared<ProduceCall>(b_->timer_.get(), std::move(done));
  }
  // Appends (stamping the batches in `req`'s own buffer) and answers in `resp`; the call's `done`
  // runs once every acks=-1 partition has its answer (at once, on this thread, when nothing
  // waits). Never blocks on other brokers. `req` is not used after this returns.
  void produce(const std::shared_ptr<ProduceCall>& call, bv1::ProduceRequest* req, bv1::ProduceResponse* resp) {
    std::vector<ReplicationWait> waits;
    append(req, resp, &waits);
    if (req->acks() == 0) resp->Clear();  // nobody waits for it
    if (waits.empty()) return call->arrive();
    call->remaining_.fetch_add(static_cast<int>(waits.size()));
    {
      std::weak_ptr<ProduceCall> weak = call;
      std::lock_guard<std::mutex> l(call->mu_);
      call->timer_id_ = b_->timer_->schedule(produce_deadline(*req), [weak] {
        if (auto c = weak.lock()) c->expire();
      });
    }
    for (const ReplicationWait& w : waits) {
      auto* r = w.result;
      const uint64_t id = w.part->on_replicated(w.last_offset, w.epoch, [call, r](ErrorCode e) {
        if (e != gannet::v1::NONE) set_replication_error(r, e);
        call->arrive();
      });
      if (id != 0) {
        std::lock_guard<std::mutex> l(call->mu_);
        call->parked_.emplace_back(w.part, id);
      }
    }
    call->arrive();
  }

  static void set_replication_error(bv1::ProduceResponse::PartitionResult* r, ErrorCode e) {
    r->set_error_code(e);
    r->set_error_message(e == gannet::v1::REQUEST_TIMED_OUT
                             ? "the in-sync replicas did not all have the records in time"
                             : "leadership moved before the in-sync replicas had the records");
  }

  // A partition this broker does not host: unknown, or led elsewhere (named). For the per-partition
  // results of Produce, Fetch and ListOffsets alike.
  template <typename PartitionResult>
  void not_here(const std::string& topic, int32_t partition, PartitionResult* r) {
    auto image = b_->publisher_->image();
    const metadata::TopicImage* t = image->topic_by_name(topic);
    if (!t || !t->partitions.count(partition)) {
      r->set_error_code(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
      r->set_error_message("unknown topic or partition " + topic + "-" + std::to_string(partition));
      return;
    }
    const auto& p = t->partitions.at(partition);
    r->set_error_code(gannet::v1::NOT_LEADER_OR_FOLLOWER);
    r->set_error_message("broker " + std::to_string(b_->options_.node_id) + " does not lead " + topic + "-" +
                         std::to_string(partition));
    r->set_leader_id(p.leader);
    r->set_leader_epoch(p.leader_epoch);
  }

  // Sends `req` to the active controller's `method` (following NOT_CONTROLLER) and answers with
  // its response.
  template <typename Req, typename Resp>
  grpc::Status forward(grpc::Status (ControllerChannel::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                       const Req& req, Resp* resp, int64_t timeout_ms = kForwardTimeoutMs, bool read_back = true) {
    grpc::Status st = b_->controller_->call<Resp>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, Resp* r) { return (s->*method)(c, req, r); }, resp,
        timeout_ms);
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

void BrokerServer::metadata(const v1::MetadataRequest& req, const std::string& listener, bool only_with_listener,
                            v1::MetadataResponse* resp) {
    auto image = publisher_->image();
    resp->set_broker_id(options_.node_id);
    resp->set_metadata_offset(image->offset());
    resp->set_cluster_id(options_.cluster_id);
    resp->set_controller_id(publisher_->leader());
    for (const auto& [id, reg] : image->brokers()) {
      const metadata::Endpoint* ep = nullptr;
      for (const auto& e : reg.endpoints) {
        if (e.name == listener || (!ep && !only_with_listener)) ep = &e;
      }
      // Kafka's clients see live brokers with an endpoint on the listener they asked on.
      if (only_with_listener && (!ep || ep->name != listener || reg.fenced)) continue;
      auto* bi = resp->add_brokers();
      bi->set_broker_id(id);
      bi->set_rack(reg.rack);
      bi->set_fenced(reg.fenced);
      if (ep) {
        bi->set_host(ep->host);
        bi->set_port(ep->port);
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
    if (req.no_topics()) {
    } else if (req.topics().empty()) {
      for (const auto& [id, t] : image->topics()) describe(*t);
    } else {
      for (const std::string& name : req.topics()) {
        if (const auto* t = image->topic_by_name(name)) {
          describe(*t);
        } else {
          auto* tm = resp->add_topics();
          tm->set_name(name);
          tm->set_error_code(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
        }
      }
    }
}


// ---- The request core (request_core.h) ------------------------------------------------------------

void BrokerServer::produce(v1::ProduceRequest* req, v1::ProduceResponse* resp, std::function<void()> done) {
  service_->produce(service_->new_produce_call(std::move(done)), req, resp);
}

std::shared_ptr<Cancellable> BrokerServer::fetch(const v1::FetchRequest* req, v1::FetchResponse* resp,
                                                 FetchSlices* slices, std::function<void()> done) {
  auto call = std::make_shared<Service::FetchCall>(service_.get(), req, resp, std::move(done), slices);
  call->start();
  return call;
}

void BrokerServer::list_offsets(const v1::ListOffsetsRequest& req, v1::ListOffsetsResponse* resp) {
  service_->ListOffsets_now(&req, resp);
}

void BrokerServer::find_coordinator(const v1::FindCoordinatorRequest& req, const std::string& listener,
                                    v1::FindCoordinatorResponse* resp) {
  find_coordinator(req.key(), listener, resp);
}

void BrokerServer::create_topics(const cv1::CreateTopicsRequest& req, cv1::CreateTopicsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::CreateTopics, req, resp);
}
void BrokerServer::delete_topics(const cv1::DeleteTopicsRequest& req, cv1::DeleteTopicsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::DeleteTopics, req, resp);
}
void BrokerServer::create_partitions(const cv1::CreatePartitionsRequest& req, cv1::CreatePartitionsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::CreatePartitions, req, resp);
}
void BrokerServer::alter_configs(const cv1::AlterConfigsRequest& req, cv1::AlterConfigsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::AlterConfigs, req, resp);
}
void BrokerServer::describe_configs(const cv1::DescribeConfigsRequest& req, cv1::DescribeConfigsResponse* resp) {
  broker::describe_configs(*publisher_->image(), req, resp);
}
void BrokerServer::alter_user_scram_credentials(const cv1::AlterUserScramCredentialsRequest& req,
                                                cv1::AlterUserScramCredentialsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::AlterUserScramCredentials, req, resp);
}
void BrokerServer::describe_user_scram_credentials(const cv1::DescribeUserScramCredentialsRequest& req,
                                                   cv1::DescribeUserScramCredentialsResponse* resp) {
  broker::describe_user_scram_credentials(*publisher_->image(), req, resp);
}
bool BrokerServer::authorize(const std::string& principal, const std::string& host, acl::Operation op,
                             acl::ResourceType type, const std::string& name) const {
  if (!options_.authorizer_enabled) return true;
  return acl::authorize(publisher_->image()->acls(), options_.authorizer, principal, host, op, type, name);
}
void BrokerServer::create_acls(const cv1::CreateAclsRequest& req, cv1::CreateAclsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::CreateAcls, req, resp);
}
void BrokerServer::delete_acls(const cv1::DeleteAclsRequest& req, cv1::DeleteAclsResponse* resp) {
  service_->forward(&ControllerChannel::Stub::DeleteAcls, req, resp);
}
void BrokerServer::describe_acls(const cv1::DescribeAclsRequest& req, cv1::DescribeAclsResponse* resp) {
  broker::describe_acls(*publisher_->image(), req, resp);
}
bool BrokerServer::password_ok(const std::string& user, const std::string& password) const {
  // PBKDF2 costs milliseconds: a password already checked against the same credential is
  // remembered (by a hash of user, password and stored key), at most kVerifiedPasswords of them.
  static constexpr size_t kVerifiedPasswords = 1024;
  for (int32_t m : {2, 1}) {
    auto cred = scram_credential(user, m);
    if (!cred) continue;
    const std::string key = scram::hash(scram::Mechanism::kSha256, user + '\0' + password + '\0' + cred->stored_key);
    {
      std::lock_guard<std::mutex> l(verified_mu_);
      if (verified_.count(key)) return true;
    }
    if (!scram::password_matches(static_cast<scram::Mechanism>(m),
                                 {cred->salt, cred->stored_key, cred->server_key, cred->iterations}, password)) {
      return false;
    }
    std::lock_guard<std::mutex> l(verified_mu_);
    if (verified_.size() >= kVerifiedPasswords) verified_.clear();
    verified_.insert(key);
    return true;
  }
  return false;
}

std::optional<metadata::ScramCredential> BrokerServer::scram_credential(const std::string& user,
                                                                        int32_t mechanism) const {
  const auto image = publisher_->image();
  const metadata::ScramCredential* c = image->scram_credential(user, mechanism);
  return c ? std::optional<metadata::ScramCredential>(*c) : std::nullopt;
}

void BrokerServer::init_producer_id(const v1::InitProducerIdRequest& req, v1::InitProducerIdResponse* resp) {
  if (req.has_transactional_id()) {
    resp->set_error_code(gannet::v1::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    resp->set_error_message("transactional id '" + req.transactional_id() +
                            "' refused: Gannet has no transactions yet (idempotent producers need no "
                            "transactional.id)");
    return;
  }
  std::lock_guard<std::mutex> pl(pid_mu_);
  if (next_producer_id_ >= producer_id_end_) {
    cv1::AllocateProducerIdsRequest areq;
    areq.set_broker_id(options_.node_id);
    {
      std::lock_guard<std::mutex> l(mu_);
      areq.set_broker_epoch(broker_epoch_);
    }
    cv1::AllocateProducerIdsResponse aresp;
    grpc::Status st = controller_->call<cv1::AllocateProducerIdsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::AllocateProducerIdsResponse* r) {
          return s->AllocateProducerIds(c, areq, r);
        },
        &aresp, 10'000);
    if (!st.ok() || aresp.error_code() != gannet::v1::NONE || aresp.producer_id_len() <= 0) {
      // Retriable for clients: they ask again (as for a coordinator that is loading).
      resp->set_error_code(gannet::v1::COORDINATOR_NOT_AVAILABLE);
      resp->set_error_message("no producer id block from the controller: " +
                              (st.ok() ? gannet::v1::ErrorCode_Name(aresp.error_code()) + " " + aresp.error_message()
                                       : st.error_message()));
      return;
    }
    next_producer_id_ = aresp.producer_id_start();
    producer_id_end_ = aresp.producer_id_start() + aresp.producer_id_len();
    LOG(INFO) << "broker " << options_.node_id << ": producer ids [" << next_producer_id_ << ", "
              << producer_id_end_ << ") from the controller";
  }
  resp->set_producer_id(next_producer_id_++);
  resp->set_producer_epoch(0);
}

void BrokerServer::run_blocking(std::function<void()> work) {
  if (!blocking_->post(work)) work();  // stopping: run it here rather than drop its answer
}

void BrokerServer::run_admin(std::function<void()> work) {
  if (!admin_->post(work)) work();
}

std::map<std::string, std::string> BrokerServer::topic_config_defaults() const {
  const storage::LogConfig& c = options_.default_log_config;
  char ratio[32];
  std::snprintf(ratio, sizeof(ratio), "%g", c.min_cleanable_dirty_ratio);
  return {
      {"cleanup.policy", c.cleanup_policy()},
      {"compression.type", "producer"},
      {"delete.retention.ms", std::to_string(c.delete_retention_ms)},
      {"flush.messages", std::to_string(c.flush_messages)},
      {"flush.ms", std::to_string(c.flush_ms)},
      {"index.interval.bytes", std::to_string(c.index_interval_bytes)},
      {"max.message.bytes", std::to_string(c.max_message_bytes)},
      {"min.cleanable.dirty.ratio", ratio},
      {"min.compaction.lag.ms", std::to_string(c.min_compaction_lag_ms)},
      {"min.insync.replicas", std::to_string(options_.min_insync_replicas)},
      {"retention.bytes", std::to_string(c.retention_bytes)},
      {"retention.ms", std::to_string(c.retention_ms)},
      {"segment.bytes", std::to_string(c.segment_bytes)},
      {"segment.ms", std::to_string(c.segment_ms)},
      {"segment.preallocate.bytes", std::to_string(c.segment_preallocate_bytes)},
  };
}

int BrokerServer::kafka_port(const std::string& name) const { return kafka_ ? kafka_->port(name) : 0; }

// ---- Lifecycle --------------------------------------------------------------------------------

BrokerServer::BrokerServer(BrokerServerOptions options, metadata::MetadataPublisher* publisher)
    : options_(std::move(options)),
      publisher_(publisher),
      fetch_budget_(options_.fetch_response_memory_max_bytes),
      incarnation_id_(random_incarnation()) {}

Result<std::unique_ptr<BrokerServer>, std::string> BrokerServer::create(
    BrokerServerOptions options, metadata::MetadataPublisher* publisher) {
  std::unique_ptr<BrokerServer> b(new BrokerServer(std::move(options), publisher));
  storage::LogManager::Options lo;
  lo.data_dir = b->options_.data_dir;
  lo.default_config = b->options_.default_log_config;
  lo.retention_check_interval_ms = b->options_.retention_check_interval_ms;
  lo.hw_checkpoint_interval_ms = b->options_.hw_checkpoint_interval_ms;
  auto logs = storage::LogManager::open(lo);
  if (!logs.ok()) return "cannot open the partition logs: " + logs.error().to_string();
  b->logs_ = std::move(logs).value();
  {
    // This data directory's previous incarnation, then ours in its place (durably, before we
    // register: a crash right after registering must still let the next start name us).
    storage::FileSystem* fs = storage::posix_file_system();
    const std::string path = storage::join_path(b->options_.data_dir, "broker-incarnation");
    if (fs->exists(path)) {
      auto prev = storage::read_file(fs, path);
      if (prev.ok() && prev->size() == 16) b->previous_incarnation_id_ = *prev;
    }
    auto st = storage::write_file_atomic(fs, path, b->incarnation_id_);
    if (!st.ok()) return "cannot record the broker's incarnation: " + st.error().to_string();
  }
  b->controller_ = std::make_unique<ControllerChannel>(b->options_.voters,
                                                       [publisher] { return publisher->leader(); },
                                                       channel_credentials(b->options_.controller_tls));
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
  GroupCoordinatorOptions go = b->options_.group;
  go.node_id = b->options_.node_id;
  b->groups_ = std::make_unique<GroupCoordinator>(go, [self](int32_t p) { return self->partition({kOffsetsTopic, p}); });
  b->groups_->set_topic_counts([self]() -> TopicPartitionCounts {
    std::shared_ptr<const MetadataImage> image = self->publisher_->image();
    return [image](const std::string& topic) -> int32_t {
      const auto* t = image ? image->topic_by_name(topic) : nullptr;
      return t ? static_cast<int32_t>(t->partitions.size()) : -1;
    };
  });
  b->watchdog_ = std::make_unique<CallWatchdog>();
  b->replica_thread_ = std::thread([self] { self->replica_loop(); });

  b->timer_ = std::make_unique<DeadlineTimer>();
  b->executor_ = std::make_unique<Executor>(kCoreThreads);
  if (!b->options_.metrics_listen.empty()) {
    const std::string& m = b->options_.metrics_listen;
    const size_t colon = m.rfind(':');
    int port = -1;
    try {
      port = colon == std::string::npos ? -1 : std::stoi(m.substr(colon + 1));
    } catch (...) {
    }
    if (port < 0 || port > 65535) return "metrics.http.listener '" + m + "' is not host:port";
    auto server = MetricsHttpServer::start(m.substr(0, colon), port, [self] { return self->render_metrics(); },
                                           [self](const HttpRequest& r) { return self->console(r); });
    if (!server.ok()) return server.error();
    b->metrics_http_ = std::move(server).value();
  }
  b->service_ = std::make_unique<Service>(self);
  grpc::ServerBuilder builder;
  {
    // Per-method counts and durations for the metrics listener.
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(b->grpc_metrics_.interceptor_factory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.AddListeningPort(b->options_.listen_address, server_credentials(b->options_.grpc_tls), &b->port_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // Never share the port with another process (gRPC sets SO_REUSEPORT by default): a second
  // server on it would silently take a share of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(64 << 20);
  apply_data_transport(builder);
  builder.RegisterService(b->service_.get());
  b->server_ = builder.BuildAndStart();
  if (!b->server_ || b->port_ == 0) return "cannot listen on " + b->options_.listen_address;
  b->blocking_ = std::make_unique<Executor>(kBlockingThreads);
  b->admin_ = std::make_unique<Executor>(kAdminThreads);
  if (!b->options_.kafka_listeners.empty()) {
    kafka::KafkaListenerOptions ko;
    for (const KafkaEndpoint& k : b->options_.kafka_listeners) {
      ko.endpoints.push_back({k.name, k.bind_host, k.port, k.protocol});
    }
    ko.sasl_mechanisms = b->options_.sasl_mechanisms;
    ko.tls = b->options_.kafka_tls;
    ko.io_threads = b->options_.kafka_io_threads;
    ko.socket_request_max_bytes = b->options_.socket_request_max_bytes;
    ko.connections_max_idle_ms = b->options_.connections_max_idle_ms;
    ko.max_connections = b->options_.max_connections;
    ko.max_connections_per_ip = b->options_.max_connections_per_ip;
    ko.auto_create_topics = b->options_.auto_create_topics;
    auto kl = kafka::KafkaListener::start(std::move(ko), self);
    if (!kl.ok()) return "cannot start the Kafka listener: " + kl.error();
    b->kafka_ = std::move(kl).value();
    for (const KafkaEndpoint& k : b->options_.kafka_listeners) {
      LOG(INFO) << "broker " << b->options_.node_id << " serving Kafka's protocol on " << k.name << " port "
                << b->kafka_->port(k.name) << " (" << k.protocol << ")";
    }
  }
  LOG(INFO) << "broker " << b->options_.node_id << " serving clients on port " << b->port_ << " ("
            << b->logs_->partitions().size() << " partition log(s) under " << b->options_.data_dir << ")";
  return b;
}

BrokerServer::~BrokerServer() { stop(); }

void BrokerServer::start() {
  lifecycle_thread_ = std::thread([this] { lifecycle_loop(); });
  isr_thread_ = std::thread([this] { isr_loop(); });
}

std::shared_ptr<Partition> BrokerServer::partition(const storage::TopicPartition& tp) const {
  std::lock_guard<std::mutex> l(partitions_mu_);
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? nullptr : it->second;
}

void BrokerServer::add_fetch(FetchWaiter* w) {
  std::lock_guard<std::mutex> l(fetches_mu_);
  fetches_.insert(w);
}

void BrokerServer::remove_fetch(FetchWaiter* w) {
  std::lock_guard<std::mutex> l(fetches_mu_);
  fetches_.erase(w);
}

void BrokerServer::wake_all_fetches() {
  std::lock_guard<std::mutex> l(fetches_mu_);
  for (FetchWaiter* w : fetches_) w->wake();
}

void BrokerServer::fetch_loop(int32_t leader) {
  std::unique_ptr<bv1::Broker::Stub> stub;
  std::string stub_address;
  // One FetchStream to the leader, a request and its answer at a time; given up (and opened
  // again) when an answer is late or the leader moves.
  std::unique_ptr<grpc::ClientContext> stream_ctx;
  std::unique_ptr<grpc::ClientReaderWriter<bv1::FetchRequest, bv1::FetchResponse>> stream;
  auto close_stream = [&] {
    if (stream) {
      stream_ctx->TryCancel();
      stream->Finish();
    }
    stream.reset();
    stream_ctx.reset();  // a context is used for one stream only
  };
  int64_t correlation_id = 0;
  int failures = 0;
  size_t rounds = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (stopping_) {
        l.unlock();
        close_stream();
        return;
      }
      if (failures > 0) {
        cv_.wait_for(l, std::chrono::milliseconds(std::min(1000, 50 * failures)), [&] { return stopping_; });
        if (stopping_) continue;
      }
    }
    // Every partition this broker follows `leader` in, with where to fetch from.
    std::vector<std::pair<std::shared_ptr<Partition>, Partition::FollowerFetch>> work;
    {
      std::lock_guard<std::mutex> l(partitions_mu_);
      for (const auto& [tp, part] : partitions_) {
        if (auto f = part->follower_fetch_state(leader)) work.emplace_back(part, *f);
      }
    }
    if (work.empty()) {
      std::unique_lock<std::mutex> l(mu_);
      fetch_cv_.wait_for(l, std::chrono::milliseconds(500), [&] { return stopping_; });
      continue;
    }
    // The leader fills the response's byte budget in request order: each round starts at the
    // next partition, so a few partitions with a backlog cannot starve the rest (as Kafka's
    // fetch sessions rotate their partitions).
    std::rotate(work.begin(), work.begin() + static_cast<std::ptrdiff_t>(rounds++ % work.size()), work.end());
    std::string address;
    {
      auto image = publisher_->image();
      auto b = image->brokers().find(leader);
      if (b != image->brokers().end()) {
        for (const auto& e : b->second.endpoints) {
          if (e.name == options_.listener_name || address.empty()) address = e.host + ":" + std::to_string(e.port);
        }
      }
    }
    if (address.empty()) {
      ++failures;
      continue;
    }
    if (address != stub_address) {
      close_stream();
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(64 << 20);
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      apply_data_transport(args);
      stub = bv1::Broker::NewStub(grpc::CreateCustomChannel(address, channel_credentials(options_.grpc_tls), args));
      stub_address = address;
    }
    bv1::FetchRequest req;
    req.set_replica_id(options_.node_id);
    {
      std::lock_guard<std::mutex> l(mu_);
      req.set_broker_epoch(broker_epoch_);
    }
    req.set_max_wait_ms(static_cast<int32_t>(options_.replica_fetch_wait_max_ms));
    req.set_min_bytes(1);
    req.set_max_bytes(16 << 20);
    std::map<storage::TopicPartition, size_t> index;
    for (size_t i = 0; i < work.size(); ++i) {
      auto* pd = req.add_partitions();
      pd->set_topic(work[i].first->tp().topic);
      pd->set_partition(work[i].first->tp().partition);
      pd->set_fetch_offset(work[i].second.fetch_offset);
      pd->set_current_leader_epoch(work[i].second.leader_epoch);
      pd->set_last_fetched_epoch(work[i].second.last_fetched_epoch);
      pd->set_partition_max_bytes(static_cast<int32_t>(options_.replica_fetch_max_bytes));
      index[work[i].first->tp()] = i;
    }
    req.set_correlation_id(++correlation_id);
    if (!stream_ctx) stream_ctx = std::make_unique<grpc::ClientContext>();
    bv1::FetchResponse resp;
    // Armed before the stream opens: opening it waits for the connection too.
    const uint64_t token = watchdog_->arm(
        stream_ctx.get(),
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.replica_fetch_wait_max_ms + 5000));
    if (!stream) stream = stub->FetchStream(stream_ctx.get());
    const bool answered = stream->Write(req) && stream->Read(&resp);
    watchdog_->disarm(token);
    if (!answered || resp.correlation_id() != req.correlation_id()) {
      close_stream();
      ++failures;
      continue;
    }
    size_t errors = 0;
    for (const auto& pd : resp.partitions()) {
      auto it = index.find({pd.topic(), pd.partition()});
      if (it == index.end()) continue;
      auto& [part, f] = work[it->second];
      FetchOutcome o;
      o.error = pd.error_code();
      o.high_watermark = pd.high_watermark();
      o.log_start_offset = pd.log_start_offset();
      if (pd.has_diverging_epoch()) o.diverging = std::make_pair(pd.diverging_epoch().epoch(), pd.diverging_epoch().end_offset());
      o.records = pd.records();
      errors += part->apply_leader_response(f.leader_epoch, o) != gannet::v1::NONE ? 1 : 0;
    }
    // Back off only when nothing worked (one stuck partition must not slow the others).
    failures = errors > 0 && errors == work.size() ? failures + 1 : 0;
  }
}

void BrokerServer::isr_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(std::clamp<int64_t>(options_.replica_lag_time_max_ms / 4, 50, 1000)),
                   [&] { return stopping_; });
      if (stopping_) return;
    }
    std::vector<std::shared_ptr<Partition>> led;
    {
      std::lock_guard<std::mutex> l(partitions_mu_);
      for (const auto& [tp, part] : partitions_) {
        if (part->is_leader()) led.push_back(part);
      }
    }
    const int64_t now = SystemClock::instance()->monotonic_ms();
    // Every ISR change of this round in one AlterPartition (decided in one metadata entry):
    // a failover that shrinks N ISRs costs one round trip, not N.
    std::vector<std::pair<std::shared_ptr<Partition>, Partition::IsrProposal>> proposals;
    cv1::AlterPartitionRequest req;
    req.set_broker_id(options_.node_id);
    {
      std::lock_guard<std::mutex> l(mu_);
      req.set_broker_epoch(broker_epoch_);
    }
    for (const auto& part : led) {
      auto proposal = part->isr_proposal(now, options_.replica_lag_time_max_ms);
      if (!proposal) continue;
      auto* ch = req.add_changes();
      ch->set_topic_id(part->topic_id());
      ch->set_partition(part->tp().partition);
      ch->set_leader_epoch(proposal->leader_epoch);
      ch->set_partition_epoch(proposal->partition_epoch);
      for (int32_t r : proposal->isr) ch->add_new_isr(r);
      proposals.emplace_back(part, *proposal);
    }
    if (proposals.empty()) continue;
    cv1::AlterPartitionResponse resp;
    grpc::Status st = controller_->call<cv1::AlterPartitionResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::AlterPartitionResponse* r) {
          return s->AlterPartition(c, req, r);
        },
        &resp, 5000);
    const bool unknown = !st.ok() || resp.error_code() == gannet::v1::REQUEST_TIMED_OUT ||
                         resp.error_code() == gannet::v1::NOT_CONTROLLER ||
                         resp.results_size() != static_cast<int>(proposals.size());
    for (size_t i = 0; i < proposals.size(); ++i) {
      const auto& [part, proposal] = proposals[i];
      if (unknown) {
        // It may have committed: keep both ISRs counting for the HW and send it again.
        part->isr_proposal_unknown(proposal);
        continue;
      }
      const auto& r = resp.results(static_cast<int>(i));
      if (r.error_code() != gannet::v1::NONE) {
        LOG(WARNING) << "broker " << options_.node_id << ": ISR change of " << part->tp().dir_name() << " refused: "
                     << gannet::v1::ErrorCode_Name(r.error_code()) << ": " << r.error_message();
        part->isr_proposal_failed(r.error_code());
      } else {
        (proposal.isr.size() < proposal.from_size ? isr_shrinks_ : isr_expands_).fetch_add(1, std::memory_order_relaxed);
        std::string isr;
        for (int32_t x : proposal.isr) isr += (isr.empty() ? "" : ",") + std::to_string(x);
        LOG(INFO) << "broker " << options_.node_id << ": ISR of " << part->tp().dir_name() << " is now {" << isr << "}";
      }
    }
  }
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
  req.set_previous_incarnation_id(previous_incarnation_id_);
  req.set_rack(options_.rack);
  auto* e = req.add_endpoints();
  e->set_name(options_.listener_name);
  e->set_host(options_.advertised_host);
  e->set_port(port_);
  for (const KafkaEndpoint& k : options_.kafka_listeners) {
    auto* ke = req.add_endpoints();
    ke->set_name(k.name);
    ke->set_host(k.advertised_host);
    ke->set_port(k.advertised_port > 0 ? k.advertised_port : kafka_port(k.name));
  }
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
    if (st.ok() && (resp.error_code() == gannet::v1::INCONSISTENT_CLUSTER_ID ||
                    resp.error_code() == gannet::v1::DUPLICATE_BROKER_REGISTRATION)) {
      // DUPLICATE_BROKER_REGISTRATION: another process runs as this node id; this one keeps
      // asking, and takes over once that one's session has expired.
      LOG_EVERY_N(ERROR, 10) << "broker " << options_.node_id << ": " << gannet::v1::ErrorCode_Name(resp.error_code())
                             << ": " << resp.error_message();
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
    req.set_incarnation_id(incarnation_id_);
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
  if (resp.error_code() == gannet::v1::STALE_BROKER_EPOCH && resp.registered_by_another()) {
    // Another process registered with this node.id since (this one never registers twice under
    // another incarnation): two brokers with one id would both serve its partitions. This one,
    // the older, gives way (registering again would only evict the other, and so on).
    auto hex = [](const std::string& b) {
      static const char* digits = "0123456789abcdef";
      std::string out;
      for (unsigned char ch : b) out += {digits[ch >> 4], digits[ch & 15]};
      return out;
    };
    fatal_error_ = "another broker registered with node.id " + std::to_string(options_.node_id) +
                   " (this one's incarnation is " + hex(incarnation_id_) +
                   "): two brokers must not share a node.id; this one stops";
    LOG(ERROR) << "broker " << options_.node_id << ": " << fatal_error_;
    broker_epoch_ = -1;
    fenced_ = true;
    stopping_for_fatal_ = true;
    ::kill(::getpid(), SIGTERM);  // gannetd's stop path (it exits non-zero, see fatal_error())
    return;
  }
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
  while (!stopping_ && !stopping_for_fatal_) {
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

int BrokerServer::metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }

void BrokerServer::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  metrics_http_.reset();  // its thread reads the broker's state: first to go
  if (kafka_) kafka_->stop();  // no new Kafka requests; answers still owed are dropped
  if (groups_) groups_->stop();  // blocked group calls answer now
  if (controller_) controller_->cancel_all();  // forwarded calls and heartbeats end now
  {
    std::lock_guard<std::mutex> pl(partitions_mu_);
    for (auto& [tp, part] : partitions_) part->shutdown();  // acks=all waiters return now
  }
  if (watchdog_) watchdog_->cancel_all();  // replica fetchers' streams end now
  wake_all_fetches();  // long-polling fetches see stopping() and return (before Shutdown waits for them)
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  if (executor_) executor_->stop();  // after the server: parked calls finish through them
  if (blocking_) blocking_->stop();
  if (admin_) admin_->stop();
  if (timer_) timer_->stop();
  fetch_cv_.notify_all();
  if (lifecycle_thread_.joinable()) lifecycle_thread_.join();
  if (replica_thread_.joinable()) replica_thread_.join();
  if (isr_thread_.joinable()) isr_thread_.join();
  std::map<int32_t, std::thread> fetchers;
  {
    std::lock_guard<std::mutex> l(partitions_mu_);
    fetchers.swap(fetchers_);
  }
  for (auto& [leader, t] : fetchers) t.join();
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
    if (tp.topic == kOffsetsTopic) groups_->on_leadership(tp.partition, -1);
    ++removed;
    std::lock_guard<std::mutex> pl(partitions_mu_);
    if (auto it = partitions_.find(tp); it != partitions_.end()) {
      it->second->retire();  // its fetches look again and find it gone
      partitions_.erase(it);
    }
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
  // Leader or follower, in which epochs, with which ISR: every replica looked at learns it.
  const int64_t now = SystemClock::instance()->monotonic_ms();
  for (const auto& [tp, t] : want) {
    auto log = logs_->get(tp);
    if (!log) continue;
    std::shared_ptr<Partition> part;
    {
      std::lock_guard<std::mutex> pl(partitions_mu_);
      auto& slot = partitions_[tp];
      if (!slot || slot->log() != log || slot->topic_id() != t->id) {
        if (slot) slot->retire();  // its fetches look again, at the new one
        slot = std::make_shared<Partition>(tp, t->id, log, me);
      }
      part = slot;
    }
    const metadata::PartitionState& ps = t->partitions.at(tp.partition);
    int32_t min_insync = options_.min_insync_replicas;
    const auto& cfg = image->configs({metadata::v1::ConfigRecord::TOPIC, t->name});
    if (auto m = cfg.find("min.insync.replicas"); m != cfg.end()) min_insync = std::atoi(m->second.c_str());
    if (part->apply_metadata(PartitionMetadata{ps.replicas, ps.isr, ps.leader, ps.leader_epoch, ps.partition_epoch},
                             min_insync, now)) {
      VLOG(1) << "broker " << me << " leads " << tp.dir_name() << " in epoch " << ps.leader_epoch;
    }
    if (tp.topic == kOffsetsTopic) {
      groups_->on_leadership(tp.partition, part->is_leader() ? part->leader_epoch() : -1,
                             static_cast<int32_t>(t->partitions.size()));
    }
  }
  {
    // Replica fetchers: one per leader broker, for every partition this broker follows.
    std::lock_guard<std::mutex> pl(partitions_mu_);
    for (auto& [tp, part] : partitions_) {
      const int32_t leader = part->leader();
      if (leader >= 0 && leader != me && !fetchers_.count(leader)) {
        fetchers_[leader] = std::thread([this, leader] { fetch_loop(leader); });
      }
    }
  }
  fetch_cv_.notify_all();
}

// ---- Group coordinator discovery ----------------------------------------------------------------

void BrokerServer::find_coordinator(const std::string& key, const std::string& listener,
                                    v1::FindCoordinatorResponse* resp) {
  if (key.empty() || key.size() > 255) {
    resp->set_error_code(gannet::v1::INVALID_GROUP_ID);
    resp->set_error_message("a group id is 1 to 255 bytes");
    return;
  }
  auto image = publisher_->image();
  const metadata::TopicImage* t = image->topic_by_name(kOffsetsTopic);
  if (!t) {
    // First use: create the offsets topic (compacted), replicated as configured or on every
    // registered broker if there are fewer. Not before that many are live: a cluster still
    // starting must not get an offsets topic with fewer replicas for good. Concurrent creators
    // race harmlessly (TOPIC_ALREADY_EXISTS).
    int32_t live = 0, registered = 0;
    for (const auto& [id, reg] : image->brokers()) {
      ++registered;
      live += reg.fenced ? 0 : 1;
    }
    const int32_t rf = std::max<int32_t>(1, std::min<int32_t>(options_.offsets_topic_replication_factor, registered));
    if (live < rf) {
      resp->set_error_code(gannet::v1::COORDINATOR_NOT_AVAILABLE);
      resp->set_error_message("the offsets topic needs " + std::to_string(rf) + " live brokers; " +
                              std::to_string(live) + " are live");
      return;
    }
    cv1::CreateTopicsRequest req;
    auto* ct = req.add_topics();
    ct->set_name(kOffsetsTopic);
    ct->set_num_partitions(options_.group.offsets_partitions);
    ct->set_replication_factor(rf);
    auto cfg = [&](const char* k, std::string v) {
      auto* c = ct->add_configs();
      c->set_name(k);
      c->set_value(std::move(v));
    };
    cfg("cleanup.policy", "compact");
    cfg("segment.bytes", std::to_string(options_.offsets_topic_segment_bytes));
    cv1::CreateTopicsResponse cr;
    grpc::Status st = controller_->call<cv1::CreateTopicsResponse>(
        [&](ControllerChannel::Stub* s, grpc::ClientContext* c, cv1::CreateTopicsResponse* r) {
          return s->CreateTopics(c, req, r);
        },
        &cr, 10'000);
    if (st.ok() && cr.error_code() == gannet::v1::NONE && cr.topics_size() == 1) {
      LOG(INFO) << "broker " << options_.node_id << ": created " << kOffsetsTopic << " ("
                << gannet::v1::ErrorCode_Name(cr.topics(0).error_code()) << ")";
      publisher_->wait_for_offset(cr.metadata_offset(), 5'000);
      image = publisher_->image();
      t = image->topic_by_name(kOffsetsTopic);
    }
    if (!t) {
      resp->set_error_code(gannet::v1::COORDINATOR_NOT_AVAILABLE);
      resp->set_error_message("the offsets topic is being created");
      return;
    }
  }
  const int32_t p = GroupCoordinator::partition_for(key, static_cast<int32_t>(t->partitions.size()));
  auto pit = t->partitions.find(p);
  const int32_t leader = pit == t->partitions.end() ? -1 : pit->second.leader;
  auto bit = image->brokers().find(leader);
  if (leader < 0 || bit == image->brokers().end() || bit->second.fenced) {
    resp->set_error_code(gannet::v1::COORDINATOR_NOT_AVAILABLE);
    resp->set_error_message(std::string(kOffsetsTopic) + "-" + std::to_string(p) + " has no leader now");
    return;
  }
  resp->set_node_id(leader);
  for (const auto& e : bit->second.endpoints) {
    if (e.name == listener || resp->host().empty()) {
      resp->set_host(e.host);
      resp->set_port(e.port);
    }
  }
}

}  // namespace gannet::broker
