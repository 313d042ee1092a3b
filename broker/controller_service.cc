#include "broker/controller_service.h"

#include "common/grpc_security.h"
#include "common/scram.h"

#include <optional>

#include <glog/logging.h>

#include <set>

namespace gannet::broker {

using metadata::ApiError;
using metadata::ControllerLogic;
using metadata::Decision;
using metadata::MetadataImage;
using metadata::WriteOutcome;
using gannet::v1::ErrorCode;

namespace {

// A client's timeout, bounded: one request must not hold the controller for days.
int64_t timeout_of(int32_t requested) {
  return requested > 0 ? std::min<int64_t>(requested, 120'000) : 30'000;
}

void fill_topic(cv1::TopicResult* r, const MetadataImage& image) {
  if (const auto* t = image.topic_by_name(r->name())) {
    r->set_topic_id(t->id);
    r->set_num_partitions(static_cast<int32_t>(t->partitions.size()));
    if (!t->partitions.empty()) {
      r->set_replication_factor(static_cast<int32_t>(t->partitions.begin()->second.replicas.size()));
    }
  }
}

}  // namespace

ErrorCode to_error_code(ApiError e) {
  switch (e) {
    case ApiError::kNone: return gannet::v1::NONE;
    case ApiError::kTopicAlreadyExists: return gannet::v1::TOPIC_ALREADY_EXISTS;
    case ApiError::kInvalidTopic: return gannet::v1::INVALID_TOPIC_EXCEPTION;
    case ApiError::kInvalidPartitions: return gannet::v1::INVALID_PARTITIONS;
    case ApiError::kInvalidReplicationFactor: return gannet::v1::INVALID_REPLICATION_FACTOR;
    case ApiError::kInvalidConfig: return gannet::v1::INVALID_CONFIG;
    case ApiError::kUnknownTopic: return gannet::v1::UNKNOWN_TOPIC_OR_PARTITION;
    case ApiError::kStaleBrokerEpoch: return gannet::v1::STALE_BROKER_EPOCH;
    case ApiError::kDuplicateBrokerRegistration: return gannet::v1::DUPLICATE_BROKER_REGISTRATION;
    case ApiError::kFencedLeaderEpoch: return gannet::v1::FENCED_LEADER_EPOCH;
    case ApiError::kInvalidUpdateVersion: return gannet::v1::INVALID_UPDATE_VERSION;
    case ApiError::kIneligibleReplica: return gannet::v1::INELIGIBLE_REPLICA;
    case ApiError::kNotLeaderOrFollower: return gannet::v1::NOT_LEADER_OR_FOLLOWER;
    case ApiError::kInvalidRequest: return gannet::v1::INVALID_REQUEST;
    case ApiError::kTopicAuthorizationFailed: return gannet::v1::TOPIC_AUTHORIZATION_FAILED;
    case ApiError::kPolicyViolation: return gannet::v1::POLICY_VIOLATION;
    case ApiError::kUnsupportedSaslMechanism: return gannet::v1::UNSUPPORTED_SASL_MECHANISM;
    case ApiError::kResourceNotFound: return gannet::v1::RESOURCE_NOT_FOUND;
    case ApiError::kDuplicateResource: return gannet::v1::DUPLICATE_RESOURCE;
    case ApiError::kUnacceptableCredential: return gannet::v1::UNACCEPTABLE_CREDENTIAL;
  }
  return gannet::v1::UNKNOWN_SERVER_ERROR;
}

// With TLS on the controller listener, brokers' calls (registration, heartbeats, ISR changes,
// producer ids) and the admin writes brokers forward are taken only from the cluster's own
// principals (super.users): a client must go through a broker, whose front-end authorizes it.
template <typename Resp>
bool ControllerService::from_cluster(grpc::ServerContext* ctx, Resp* resp) const {
  if (!security_.tls) return true;
  std::string principal;
  if (grpc_peer_is_one_of(ctx, security_.cluster_principals, &principal)) return true;
  resp->set_error_code(gannet::v1::CLUSTER_AUTHORIZATION_FAILED);
  resp->set_error_message("the controller takes this only from the cluster's own principals (super.users), not " +
                          (principal.empty() ? std::string("an unauthenticated caller") : principal));
  return false;
}

template <typename Resp>
bool ControllerService::request_level(const WriteOutcome& o, Resp* resp) {
  if (o.not_controller) {
    resp->set_error_code(gannet::v1::NOT_CONTROLLER);
    resp->set_error_message(o.message);
    resp->mutable_controller()->set_controller_id(o.leader);
    if (auto it = voters_.find(o.leader); it != voters_.end()) {
      resp->mutable_controller()->set_controller_address(it->second);
    }
    return false;
  }
  if (o.timed_out) {
    resp->set_error_code(gannet::v1::REQUEST_TIMED_OUT);
    resp->set_error_message(o.message);
    return false;
  }
  return true;
}

// Admin requests are one decision each: every item is checked against the image as the earlier
// items of the same request leave it, the accepted items' records are appended as one entry
// (all or nothing), and each item gets its own result. A request cut short by a failover is
// then never half applied, and a retry meets a clean slate.
namespace {

struct ItemResult {
  std::string name;
  ApiError error = ApiError::kNone;
  std::string message;
};

std::string too_large_message() {
  return "the request's changes exceed what one metadata log entry holds (" +
         std::to_string(metadata::kMaxEntryBytes >> 20) + " MiB); send fewer or smaller items per request";
}

// Runs `decide_item(logic, image, i)` for each of n items inside one write; `image` already
// holds the records of the items accepted before i; `item_name(i)` names item i in its result.
// Items whose records would take the entry past metadata::kMaxEntryBytes are refused with
// POLICY_VIOLATION (also with validate_only), and once the limit is passed the remaining items
// are refused without being decided.
template <typename DecideItem, typename ItemName>
WriteOutcome write_items(metadata::QuorumController* controller, size_t n, DecideItem decide_item,
                         ItemName item_name, bool validate_only, int64_t timeout_ms,
                         std::vector<ItemResult>* results) {
  return controller->write(
      [&](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t) {
        results->assign(n, ItemResult{});
        Decision all;
        size_t bytes = 0;
        std::shared_ptr<const MetadataImage> cur = std::make_shared<const MetadataImage>(image);
        for (size_t i = 0; i < n; ++i) {
          ItemResult& result = (*results)[i];
          result.name = item_name(i);
          if (bytes > metadata::kMaxEntryBytes) {
            // Past the limit: the rest is not even decided (a request naming 1,000 topics of
            // 100,000 partitions must not build 10^8 records first).
            result.error = ApiError::kPolicyViolation;
            result.message = too_large_message();
            continue;
          }
          Decision d = decide_item(logic, *cur, i);
          result.error = d.error;
          result.message = d.message;
          if (!d.ok() || d.records.empty()) continue;
          for (const auto& r : d.records) bytes += metadata::encoded_size(r);
          if (bytes > metadata::kMaxEntryBytes) {
            result.error = ApiError::kPolicyViolation;
            result.message = too_large_message();
            continue;
          }
          metadata::MetadataDelta delta(cur);
          for (const auto& r : d.records) (void)delta.replay(r, cur->offset());
          cur = delta.apply();
          for (auto& r : d.records) all.records.push_back(std::move(r));
        }
        if (validate_only) all.records.clear();
        return all;
      },
      timeout_ms);
}

void set_item(cv1::TopicResult* r, const ItemResult& item) {
  r->set_name(item.name);
  r->set_error_code(to_error_code(item.error));
  if (item.error != ApiError::kNone) r->set_error_message(item.message);
}

Decision refused(ApiError e, std::string message) {
  Decision d;
  d.error = e;
  d.message = std::move(message);
  return d;
}

}  // namespace

grpc::Status ControllerService::CreateTopics(grpc::ServerContext* ctx, const cv1::CreateTopicsRequest* req,
                                             cv1::CreateTopicsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  std::set<std::string> seen;
  WriteOutcome o = write_items(
      controller_, req->topics_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        const cv1::CreatableTopic& t = req->topics(static_cast<int>(i));
        if (!seen.insert(t.name()).second) {
          return refused(ApiError::kInvalidRequest, "topic " + t.name() + " appears twice in the request");
        }
        if (t.replication_factor() > INT16_MAX) {
          return refused(ApiError::kInvalidReplicationFactor,
                         "replication factor " + std::to_string(t.replication_factor()) + " is too large");
        }
        std::map<std::string, std::string> configs;
        for (const auto& c : t.configs()) configs[c.name()] = c.value();
        // <= 0 means the cluster default; never narrow a negative value into a positive one.
        const int16_t rf = t.replication_factor() > 0 ? static_cast<int16_t>(t.replication_factor()) : 0;
        return logic.create_topic(image, t.name(), t.num_partitions(), rf, configs);
      },
      [&](size_t i) { return req->topics(static_cast<int>(i)).name(); }, req->validate_only(),
      timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  auto image = controller_->publisher()->image();
  for (const ItemResult& item : results) {
    auto* r = resp->add_topics();
    set_item(r, item);
    if (item.error == ApiError::kNone && !req->validate_only()) fill_topic(r, *image);
  }
  resp->set_metadata_offset(image->offset());
  return grpc::Status::OK;
}

grpc::Status ControllerService::DeleteTopics(grpc::ServerContext* ctx, const cv1::DeleteTopicsRequest* req,
                                             cv1::DeleteTopicsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  WriteOutcome o = write_items(
      controller_, req->names_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        return logic.delete_topic(image, req->names(static_cast<int>(i)));
      },
      [&](size_t i) { return req->names(static_cast<int>(i)); }, false, timeout_of(req->timeout_ms()),
      &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  for (const ItemResult& item : results) set_item(resp->add_topics(), item);
  resp->set_metadata_offset(controller_->publisher()->image()->offset());
  return grpc::Status::OK;
}

grpc::Status ControllerService::CreatePartitions(grpc::ServerContext* ctx, const cv1::CreatePartitionsRequest* req,
                                                 cv1::CreatePartitionsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  WriteOutcome o = write_items(
      controller_, req->topics_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        const auto& t = req->topics(static_cast<int>(i));
        return logic.create_partitions(image, t.name(), t.count());
      },
      [&](size_t i) { return req->topics(static_cast<int>(i)).name(); }, req->validate_only(),
      timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  auto image = controller_->publisher()->image();
  for (const ItemResult& item : results) {
    auto* r = resp->add_topics();
    set_item(r, item);
    if (item.error == ApiError::kNone) fill_topic(r, *image);
  }
  resp->set_metadata_offset(image->offset());
  return grpc::Status::OK;
}

grpc::Status ControllerService::AlterConfigs(grpc::ServerContext* ctx, const cv1::AlterConfigsRequest* req,
                                             cv1::AlterConfigsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  WriteOutcome o = write_items(
      controller_, req->resources_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        const auto& res = req->resources(static_cast<int>(i));
        std::map<std::string, std::string> set;
        for (const auto& c : res.set()) set[c.name()] = c.value();
        std::vector<std::string> remove(res.remove().begin(), res.remove().end());
        return logic.alter_topic_configs(image, res.topic(), set, remove);
      },
      [&](size_t i) { return req->resources(static_cast<int>(i)).topic(); }, req->validate_only(),
      timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  for (const ItemResult& item : results) set_item(resp->add_resources(), item);
  resp->set_metadata_offset(controller_->publisher()->image()->offset());
  return grpc::Status::OK;
}

// Users in the order they first appear (deletions, then upsertions), each one item of the write.
grpc::Status ControllerService::AlterUserScramCredentials(grpc::ServerContext* ctx,
                                                          const cv1::AlterUserScramCredentialsRequest* req,
                                                          cv1::AlterUserScramCredentialsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  struct UserChange {
    std::string user;
    std::vector<int32_t> deletions;
    std::vector<std::pair<int32_t, metadata::ScramCredential>> upsertions;
  };
  std::vector<UserChange> users;
  std::map<std::string, size_t> index;
  auto change_of = [&](const std::string& user) -> UserChange& {
    auto [it, fresh] = index.emplace(user, users.size());
    if (fresh) users.push_back(UserChange{user, {}, {}});
    return users[it->second];
  };
  for (const auto& d : req->deletions()) change_of(d.name()).deletions.push_back(d.mechanism());
  for (const auto& u : req->upsertions()) {
    metadata::ScramCredential c;
    c.iterations = u.iterations();
    c.salt = u.salt();
    const auto m = static_cast<scram::Mechanism>(u.mechanism());
    if ((m == scram::Mechanism::kSha256 || m == scram::Mechanism::kSha512) && !u.salted_password().empty() &&
        u.iterations() >= scram::kMinIterations && u.iterations() <= scram::kMaxIterations) {
      // Only the derived keys are kept; the salted password is dropped here.
      scram::Credential k = scram::credential_from_salted(m, u.salted_password(), u.salt(), u.iterations());
      c.stored_key = std::move(k.stored_key);
      c.server_key = std::move(k.server_key);
    }
    change_of(u.name()).upsertions.emplace_back(u.mechanism(), std::move(c));
  }
  std::vector<ItemResult> results;
  WriteOutcome o = write_items(
      controller_, users.size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        return logic.alter_user_scram_credentials(image, users[i].user, users[i].deletions, users[i].upsertions);
      },
      [&](size_t i) { return users[i].user; }, false, timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  for (const ItemResult& item : results) {
    auto* r = resp->add_results();
    r->set_user(item.name);
    r->set_error_code(to_error_code(item.error));
    if (item.error != ApiError::kNone) r->set_error_message(item.message);
  }
  resp->set_metadata_offset(controller_->publisher()->image()->offset());
  return grpc::Status::OK;
}

acl::Binding binding_from(const cv1::AclBinding& b) {
  acl::Binding out;
  out.resource_type = static_cast<acl::ResourceType>(b.resource_type());
  out.resource_name = b.resource_name();
  out.pattern_type = static_cast<acl::PatternType>(b.pattern_type());
  out.principal = b.principal();
  out.host = b.host();
  out.operation = static_cast<acl::Operation>(b.operation());
  out.permission = static_cast<acl::Permission>(b.permission_type());
  return out;
}

void binding_to(const acl::Binding& b, cv1::AclBinding* out) {
  out->set_resource_type(static_cast<int32_t>(b.resource_type));
  out->set_resource_name(b.resource_name);
  out->set_pattern_type(static_cast<int32_t>(b.pattern_type));
  out->set_principal(b.principal);
  out->set_host(b.host);
  out->set_operation(static_cast<int32_t>(b.operation));
  out->set_permission_type(static_cast<int32_t>(b.permission));
}

acl::Filter filter_from(const cv1::AclFilter& f) {
  acl::Filter out;
  out.resource_type = static_cast<acl::ResourceType>(f.resource_type());
  if (f.has_resource_name()) out.resource_name = f.resource_name();
  out.pattern_type = static_cast<acl::PatternType>(f.pattern_type());
  if (f.has_principal()) out.principal = f.principal();
  if (f.has_host()) out.host = f.host();
  out.operation = static_cast<acl::Operation>(f.operation());
  out.permission = static_cast<acl::Permission>(f.permission_type());
  return out;
}

void describe_acls(const MetadataImage& image, const cv1::DescribeAclsRequest& req, cv1::DescribeAclsResponse* resp) {
  const acl::Filter f = filter_from(req.filter());
  for (const auto& [id, b] : image.acls()) {
    if (acl::matches(f, b)) binding_to(b, resp->add_acls());
  }
}

grpc::Status ControllerService::CreateAcls(grpc::ServerContext* ctx, const cv1::CreateAclsRequest* req,
                                           cv1::CreateAclsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  WriteOutcome o = write_items(
      controller_, req->creations_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        return logic.create_acl(image, binding_from(req->creations(static_cast<int>(i))));
      },
      [&](size_t) { return std::string(); }, false, timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  for (const ItemResult& item : results) {
    auto* r = resp->add_results();
    r->set_error_code(to_error_code(item.error));
    if (item.error != ApiError::kNone) r->set_error_message(item.message);
  }
  resp->set_metadata_offset(controller_->publisher()->image()->offset());
  return grpc::Status::OK;
}

grpc::Status ControllerService::DeleteAcls(grpc::ServerContext* ctx, const cv1::DeleteAclsRequest* req,
                                           cv1::DeleteAclsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  std::vector<ItemResult> results;
  std::vector<std::vector<acl::Binding>> removed;
  WriteOutcome o = write_items(
      controller_, req->filters_size(),
      [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
        if (removed.size() <= i) removed.resize(i + 1);
        removed[i].clear();  // (a retried decision starts over)
        return logic.delete_acls(image, filter_from(req->filters(static_cast<int>(i))), &removed[i]);
      },
      [&](size_t) { return std::string(); }, false, timeout_of(req->timeout_ms()), &results);
  if (!request_level(o, resp)) return grpc::Status::OK;
  for (size_t i = 0; i < results.size(); ++i) {
    auto* r = resp->add_filter_results();
    r->set_error_code(to_error_code(results[i].error));
    if (results[i].error != ApiError::kNone) r->set_error_message(results[i].message);
    if (i < removed.size()) {
      for (const auto& b : removed[i]) binding_to(b, r->add_matching());
    }
  }
  resp->set_metadata_offset(controller_->publisher()->image()->offset());
  return grpc::Status::OK;
}

void describe_user_scram_credentials(const MetadataImage& image, const cv1::DescribeUserScramCredentialsRequest& req,
                                     cv1::DescribeUserScramCredentialsResponse* resp) {
  std::map<std::string, std::vector<std::pair<int32_t, int32_t>>> by_user;
  for (const auto& [key, c] : image.scram_credentials()) by_user[key.first].emplace_back(key.second, c.iterations);
  auto describe = [&](const std::string& user) {
    auto* r = resp->add_results();
    r->set_user(user);
    auto it = by_user.find(user);
    if (it == by_user.end()) {
      r->set_error_code(gannet::v1::RESOURCE_NOT_FOUND);
      r->set_error_message("user " + user + " has no SCRAM credential");
      return;
    }
    for (const auto& [m, i] : it->second) {
      auto* info = r->add_credentials();
      info->set_mechanism(m);
      info->set_iterations(i);
    }
  };
  if (req.users().empty()) {
    for (const auto& [user, creds] : by_user) describe(user);
    return;
  }
  std::map<std::string, int> count;
  for (const auto& u : req.users()) ++count[u];
  std::set<std::string> answered;
  for (const auto& u : req.users()) {
    if (!answered.insert(u).second) continue;
    if (count[u] > 1) {
      auto* r = resp->add_results();
      r->set_user(u);
      r->set_error_code(gannet::v1::DUPLICATE_RESOURCE);
      r->set_error_message("user " + u + " is named more than once");
      continue;
    }
    describe(u);
  }
}

void describe_configs(const MetadataImage& image, const cv1::DescribeConfigsRequest& req,
                      cv1::DescribeConfigsResponse* resp) {
  std::vector<std::string> names(req.topics().begin(), req.topics().end());
  if (names.empty()) {
    for (const auto& [id, t] : image.topics()) names.push_back(t->name);
  }
  for (const std::string& name : names) {
    auto* r = resp->add_resources();
    r->set_topic(name);
    if (!image.topic_by_name(name)) {
      r->set_error_code(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
      r->set_error_message("unknown topic " + name);
      continue;
    }
    for (const auto& [k, v] : image.configs({metadata::v1::ConfigRecord::TOPIC, name})) {
      auto* c = r->add_configs();
      c->set_name(k);
      c->set_value(v);
    }
  }
}

grpc::Status ControllerService::DescribeConfigs(grpc::ServerContext*, const cv1::DescribeConfigsRequest* req,
                                                cv1::DescribeConfigsResponse* resp) {
  describe_configs(*controller_->publisher()->image(), *req, resp);
  return grpc::Status::OK;
}

grpc::Status ControllerService::BrokerRegistration(grpc::ServerContext* ctx, const cv1::BrokerRegistrationRequest* req,
                                                   cv1::BrokerRegistrationResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  const std::string& cluster = controller_->options().cluster_id;
  if (!cluster.empty() && req->cluster_id() != cluster) {
    resp->set_error_code(gannet::v1::INCONSISTENT_CLUSTER_ID);
    resp->set_error_message("broker " + std::to_string(req->broker_id()) + " belongs to cluster '" +
                            req->cluster_id() + "', this is cluster '" + cluster + "'");
    return grpc::Status::OK;
  }
  if (req->incarnation_id().empty()) {
    resp->set_error_code(gannet::v1::INVALID_REQUEST);
    resp->set_error_message("incarnation_id is required");
    return grpc::Status::OK;
  }
  std::vector<metadata::Endpoint> eps;
  for (const auto& e : req->endpoints()) eps.push_back({e.name(), e.host(), e.port()});
  WriteOutcome o = controller_->write([&](ControllerLogic& logic, const MetadataImage& image,
                                          int64_t next_offset, int64_t now) {
    return logic.register_broker(image, req->broker_id(), req->incarnation_id(), eps, req->rack(),
                                 next_offset, now, req->previous_incarnation_id());
  });
  if (!request_level(o, resp)) return grpc::Status::OK;
  resp->set_error_code(to_error_code(o.error));
  resp->set_error_message(o.message);
  if (o.ok()) {
    auto image = controller_->publisher()->image();
    if (auto it = image->brokers().find(req->broker_id()); it != image->brokers().end()) {
      resp->set_broker_epoch(it->second.epoch);
    }
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::BrokerHeartbeat(grpc::ServerContext* ctx, const cv1::BrokerHeartbeatRequest* req,
                                                cv1::BrokerHeartbeatResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  controller_->note_heartbeat(req->broker_id());
  WriteOutcome o = controller_->write(
      [&](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t now) {
        return logic.heartbeat(image, req->broker_id(), req->broker_epoch(), req->metadata_offset(),
                               req->want_shut_down(), now);
      },
      10'000);
  if (!request_level(o, resp)) return grpc::Status::OK;
  resp->set_error_code(to_error_code(o.error));
  resp->set_error_message(o.message);
  auto image = controller_->publisher()->image();
  auto it = image->brokers().find(req->broker_id());
  if (o.error == ApiError::kStaleBrokerEpoch && it != image->brokers().end()) {
    resp->set_registered_by_another(it->second.incarnation_id != req->incarnation_id());
  }
  if (!o.ok()) return grpc::Status::OK;
  if (it == image->brokers().end()) return grpc::Status::OK;
  resp->set_is_fenced(it->second.fenced);
  if (it->second.in_controlled_shutdown) {
    bool leads = false;
    for (const auto& [tid, t] : image->topics()) {
      for (const auto& [pid, p] : t->partitions) leads = leads || p.leader == req->broker_id();
    }
    resp->set_should_shut_down(!leads);
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::AlterPartition(grpc::ServerContext* ctx, const cv1::AlterPartitionRequest* req,
                                               cv1::AlterPartitionResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  auto stale_broker = [&](const MetadataImage& image) -> std::optional<Decision> {
    auto b = image.brokers().find(req->broker_id());
    if (b != image.brokers().end() && b->second.epoch == req->broker_epoch()) return std::nullopt;
    Decision d;
    d.error = ApiError::kStaleBrokerEpoch;
    d.message = "broker " + std::to_string(req->broker_id()) + " epoch " + std::to_string(req->broker_epoch()) +
                " is not registered";
    return d;
  };
  // The partition's state as the image has it now, into one result.
  auto fill = [](const MetadataImage& image, const std::string& topic_id, int32_t partition, auto* r) {
    if (const auto* t = image.topic_by_id(topic_id)) {
      if (auto it = t->partitions.find(partition); it != t->partitions.end()) {
        r->set_leader(it->second.leader);
        r->set_leader_epoch(it->second.leader_epoch);
        r->set_partition_epoch(it->second.partition_epoch);
        for (int32_t x : it->second.isr) r->add_isr(x);
      }
    }
  };
  if (req->changes_size() > 0) {
    // Every change decided against the image the earlier ones leave, in one entry.
    std::vector<ItemResult> results;
    WriteOutcome o = write_items(
        controller_, req->changes_size(),
        [&](ControllerLogic& logic, const MetadataImage& image, size_t i) {
          if (auto stale = stale_broker(image)) return *stale;
          const auto& ch = req->changes(static_cast<int>(i));
          std::vector<int32_t> isr(ch.new_isr().begin(), ch.new_isr().end());
          return logic.alter_partition(image, ch.topic_id(), ch.partition(), req->broker_id(), ch.leader_epoch(),
                                       ch.partition_epoch(), isr);
        },
        [&](size_t i) { return std::to_string(req->changes(static_cast<int>(i)).partition()); },
        /*validate_only=*/false, 5'000, &results);
    if (!request_level(o, resp)) return grpc::Status::OK;
    auto image = controller_->publisher()->image();
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& ch = req->changes(static_cast<int>(i));
      auto* r = resp->add_results();
      r->set_topic_id(ch.topic_id());
      r->set_partition(ch.partition());
      r->set_error_code(to_error_code(results[i].error));
      r->set_error_message(results[i].message);
      fill(*image, ch.topic_id(), ch.partition(), r);
    }
    return grpc::Status::OK;
  }
  std::vector<int32_t> isr(req->new_isr().begin(), req->new_isr().end());
  WriteOutcome o = controller_->write([&](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t) {
    if (auto stale = stale_broker(image)) return *stale;
    return logic.alter_partition(image, req->topic_id(), req->partition(), req->broker_id(),
                                 req->leader_epoch(), req->partition_epoch(), isr);
  });
  if (!request_level(o, resp)) return grpc::Status::OK;
  resp->set_error_code(to_error_code(o.error));
  resp->set_error_message(o.message);
  fill(*controller_->publisher()->image(), req->topic_id(), req->partition(), resp);
  return grpc::Status::OK;
}

grpc::Status ControllerService::DescribeCluster(grpc::ServerContext*, const cv1::DescribeClusterRequest*,
                                                cv1::DescribeClusterResponse* resp) {
  WriteOutcome o = controller_->read([&](const ControllerLogic& logic, const MetadataImage& image,
                                         const raft::QuorumStatus& status) {
    resp->set_cluster_id(controller_->options().cluster_id);
    resp->set_controller_id(status.id);
    resp->set_metadata_offset(image.offset());
    resp->set_quorum_epoch(static_cast<int32_t>(status.epoch));
    std::map<int32_t, std::pair<int32_t, int32_t>> counts;  // broker -> (leaderships, replicas)
    for (const auto& [tid, t] : image.topics()) {
      for (const auto& [pid, p] : t->partitions) {
        if (p.leader >= 0) ++counts[p.leader].first;
        for (int32_t r : p.replicas) ++counts[r].second;
      }
    }
    for (const auto& [id, b] : image.brokers()) {
      auto* d = resp->add_brokers();
      d->set_broker_id(id);
      for (const auto& e : b.endpoints) {
        auto* pe = d->add_endpoints();
        pe->set_name(e.name);
        pe->set_host(e.host);
        pe->set_port(e.port);
      }
      d->set_rack(b.rack);
      d->set_fenced(b.fenced);
      d->set_in_controlled_shutdown(b.in_controlled_shutdown);
      d->set_broker_epoch(b.epoch);
      auto off = logic.broker_offsets().find(id);
      d->set_metadata_offset(off == logic.broker_offsets().end() ? -1 : off->second);
      d->set_leaderships(counts[id].first);
      d->set_replicas(counts[id].second);
    }
  }, 10'000);
  request_level(o, resp);
  return grpc::Status::OK;
}

// Kafka's block size: a broker asks again after giving out this many producer ids.
constexpr int32_t kProducerIdBlock = 1000;

grpc::Status ControllerService::AllocateProducerIds(grpc::ServerContext* ctx, const cv1::AllocateProducerIdsRequest* req,
                                                    cv1::AllocateProducerIdsResponse* resp) {
  if (!from_cluster(ctx, resp)) return grpc::Status::OK;
  int64_t start = -1;
  WriteOutcome o = controller_->write([&](ControllerLogic& logic, const MetadataImage& image, int64_t, int64_t) {
    start = image.next_producer_id();
    return logic.allocate_producer_ids(image, req->broker_id(), req->broker_epoch(), kProducerIdBlock);
  });
  if (!request_level(o, resp)) return grpc::Status::OK;
  resp->set_error_code(to_error_code(o.error));
  resp->set_error_message(o.message);
  if (o.error == ApiError::kNone) {
    resp->set_producer_id_start(start);
    resp->set_producer_id_len(kProducerIdBlock);
  }
  return grpc::Status::OK;
}

}  // namespace gannet::broker
