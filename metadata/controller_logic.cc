#include "metadata/controller_logic.h"

#include <algorithm>
#include <set>
#include <string>

#include "storage/log_config.h"
#include "storage/log_manager.h"

namespace gannet::metadata {
namespace {

Decision refuse(ApiError e, std::string message) {
  Decision d;
  d.error = e;
  d.message = std::move(message);
  return d;
}

v1::MetadataRecord partition_record(const std::string& topic_id, int32_t partition,
                                    const std::vector<int32_t>& replicas) {
  v1::MetadataRecord r;
  auto* pr = r.mutable_partition();
  pr->set_topic_id(topic_id);
  pr->set_partition_id(partition);
  for (int32_t x : replicas) {
    pr->add_replicas(x);
    pr->add_isr(x);
  }
  pr->set_leader(replicas.front());
  return r;
}

v1::MetadataRecord change_record(const std::string& topic_id, int32_t partition,
                                 std::optional<int32_t> leader,
                                 std::optional<std::vector<int32_t>> isr) {
  v1::MetadataRecord r;
  auto* c = r.mutable_partition_change();
  c->set_topic_id(topic_id);
  c->set_partition_id(partition);
  if (leader) c->set_leader(*leader);
  if (isr) {
    for (int32_t x : *isr) c->mutable_isr()->add_ids(x);
  }
  return r;
}

bool contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

const char* api_error_name(ApiError e) {
  switch (e) {
    case ApiError::kNone: return "NONE";
    case ApiError::kTopicAlreadyExists: return "TOPIC_ALREADY_EXISTS";
    case ApiError::kInvalidTopic: return "INVALID_TOPIC_EXCEPTION";
    case ApiError::kInvalidPartitions: return "INVALID_PARTITIONS";
    case ApiError::kInvalidReplicationFactor: return "INVALID_REPLICATION_FACTOR";
    case ApiError::kInvalidConfig: return "INVALID_CONFIG";
    case ApiError::kUnknownTopic: return "UNKNOWN_TOPIC_OR_PARTITION";
    case ApiError::kStaleBrokerEpoch: return "STALE_BROKER_EPOCH";
    case ApiError::kDuplicateBrokerRegistration: return "DUPLICATE_BROKER_REGISTRATION";
    case ApiError::kUnsupportedSaslMechanism: return "UNSUPPORTED_SASL_MECHANISM";
    case ApiError::kResourceNotFound: return "RESOURCE_NOT_FOUND";
    case ApiError::kDuplicateResource: return "DUPLICATE_RESOURCE";
    case ApiError::kUnacceptableCredential: return "UNACCEPTABLE_CREDENTIAL";
    case ApiError::kFencedLeaderEpoch: return "FENCED_LEADER_EPOCH";
    case ApiError::kInvalidUpdateVersion: return "INVALID_UPDATE_VERSION";
    case ApiError::kIneligibleReplica: return "INELIGIBLE_REPLICA";
    case ApiError::kNotLeaderOrFollower: return "NOT_LEADER_OR_FOLLOWER";
    case ApiError::kInvalidRequest: return "INVALID_REQUEST";
    case ApiError::kTopicAuthorizationFailed: return "TOPIC_AUTHORIZATION_FAILED";
    case ApiError::kPolicyViolation: return "POLICY_VIOLATION";
  }
  return "?";
}

bool is_internal_topic(const std::string& name) {
  return name == "__consumer_offsets" || name == "__transaction_state";
}

namespace {

// The configs an internal topic must keep: compaction only (time or size retention would drop
// live groups' offsets), and a min.insync.replicas that still lets commits through with one
// replica down.
std::optional<std::string> internal_topic_config_problem(const std::string& name,
                                                         const std::map<std::string, std::string>& configs,
                                                         int replication_factor) {
  auto policy = configs.find("cleanup.policy");
  if (policy == configs.end() || policy->second != "compact") {
    return "internal topic " + name + " must keep cleanup.policy=compact";
  }
  if (auto m = configs.find("min.insync.replicas"); m != configs.end()) {
    int64_t v = 0;
    try {
      v = std::stoll(m->second);
    } catch (...) {
      return std::nullopt;  // validate_topic_configs names the bad number
    }
    const int64_t most = std::max(1, replication_factor - 1);
    if (v > most) {
      return "internal topic " + name + ": min.insync.replicas=" + m->second +
             " would stop every offset commit while one of its " + std::to_string(replication_factor) +
             " replicas is down; at most " + std::to_string(most);
    }
  }
  return std::nullopt;
}

}  // namespace

bool ControllerLogic::live(const MetadataImage& image, int32_t broker) const {
  auto it = image.brokers().find(broker);
  return it != image.brokers().end() && !it->second.fenced && !it->second.in_controlled_shutdown;
}

std::string ControllerLogic::new_topic_id(const MetadataImage& image) {
  // From the OS's entropy, not the placement generator: a generator seeded per controller term
  // could repeat ids across terms or nodes, and a repeated id would merge two topics.
  static thread_local std::random_device entropy;
  for (;;) {
    std::string id(16, '\0');
    for (size_t i = 0; i < 16; i += 4) {
      const uint32_t v = entropy();
      for (size_t j = 0; j < 4; ++j) id[i + j] = static_cast<char>(v >> (8 * j));
    }
    id[6] = static_cast<char>((id[6] & 0x0f) | 0x40);  // a version-4 UUID
    id[8] = static_cast<char>((id[8] & 0x3f) | 0x80);
    if (!image.topic_by_id(id)) return id;
  }
}

Decision ControllerLogic::create_topic(const MetadataImage& image, const std::string& name,
                                       int32_t partitions, int16_t replication_factor,
                                       const std::map<std::string, std::string>& configs) {
  if (!storage::valid_topic_name(name)) {
    return refuse(ApiError::kInvalidTopic,
                  "topic name '" + name + "' must be 1-249 characters of [a-zA-Z0-9._-], not . or ..");
  }
  if (storage::is_internal_metadata_topic(name)) {
    return refuse(ApiError::kInvalidTopic, "topic name '" + name + "' is reserved for the metadata log");
  }
  if (image.topic_by_name(name)) return refuse(ApiError::kTopicAlreadyExists, "topic " + name + " already exists");
  if (partitions <= 0) partitions = config_.default_partitions;
  if (replication_factor <= 0) replication_factor = config_.default_replication_factor;
  if (partitions > 100'000) return refuse(ApiError::kInvalidPartitions, "too many partitions");
  auto placement = place(image, 0, partitions, replication_factor);
  if (!placement.ok()) return refuse(ApiError::kInvalidReplicationFactor, placement.error().message);
  if (Decision v = validate_topic_configs(configs, replication_factor); !v.ok()) return v;
  if (is_internal_topic(name)) {
    if (auto problem = internal_topic_config_problem(name, configs, replication_factor)) {
      return refuse(ApiError::kInvalidRequest, *problem);
    }
  }

  Decision d;
  const std::string id = new_topic_id(image);
  v1::MetadataRecord t;
  t.mutable_topic()->set_name(name);
  t.mutable_topic()->set_topic_id(id);
  d.records.push_back(std::move(t));
  for (int32_t p = 0; p < partitions; ++p) d.records.push_back(partition_record(id, p, (*placement)[p]));
  for (const auto& [k, v] : configs) {
    v1::MetadataRecord c;
    c.mutable_config()->set_resource_type(v1::ConfigRecord::TOPIC);
    c.mutable_config()->set_resource_name(name);
    c.mutable_config()->set_name(k);
    c.mutable_config()->set_value(v);
    d.records.push_back(std::move(c));
  }
  return d;
}

Decision ControllerLogic::delete_topic(const MetadataImage& image, const std::string& name) {
  const TopicImage* t = image.topic_by_name(name);
  if (!t) return refuse(ApiError::kUnknownTopic, "unknown topic " + name);
  if (is_internal_topic(name)) {
    return refuse(ApiError::kTopicAuthorizationFailed,
                  "internal topic " + name + " cannot be deleted: the brokers depend on it");
  }
  Decision d;
  v1::MetadataRecord r;
  r.mutable_remove_topic()->set_topic_id(t->id);
  d.records.push_back(std::move(r));
  return d;
}

Decision ControllerLogic::create_partitions(const MetadataImage& image, const std::string& name,
                                            int32_t total) {
  const TopicImage* t = image.topic_by_name(name);
  if (!t) return refuse(ApiError::kUnknownTopic, "unknown topic " + name);
  if (is_internal_topic(name)) {
    return refuse(ApiError::kInvalidRequest,
                  "internal topic " + name + " cannot be given more partitions: every consumer group "
                  "would hash to another partition and lose its committed offsets");
  }
  const int32_t have = static_cast<int32_t>(t->partitions.size());
  if (have == 0) return refuse(ApiError::kInvalidPartitions, "topic " + name + " has no partitions to copy the replication factor from");
  if (total <= have || total > 100'000) {
    return refuse(ApiError::kInvalidPartitions, "topic " + name + " has " + std::to_string(have) +
                                                    " partitions; cannot go to " + std::to_string(total));
  }
  const int16_t rf = static_cast<int16_t>(t->partitions.begin()->second.replicas.size());
  auto placement = place(image, have, total - have, rf);
  if (!placement.ok()) return refuse(ApiError::kInvalidReplicationFactor, placement.error().message);
  Decision d;
  for (int32_t i = 0; i < total - have; ++i) {
    d.records.push_back(partition_record(t->id, have + i, (*placement)[i]));
  }
  return d;
}

Decision ControllerLogic::validate_topic_configs(const std::map<std::string, std::string>& configs,
                                                int replication_factor) const {
  // The log's keys (validated by storage), plus the topic-level ones.
  std::map<std::string, std::string> log_keys;
  for (const auto& [k, v] : configs) {
    if (k == "cleanup.policy") {
      if (v != "delete" && v != "compact" && v != "compact,delete" && v != "delete,compact") {
        return refuse(ApiError::kInvalidConfig, "cleanup.policy=" + v + ": must be delete and/or compact");
      }
      log_keys[k] = v;  // storage parses it too (LogConfig::cleanup_compact/cleanup_delete)
    } else if (k == "min.insync.replicas") {
      int64_t m = 0;
      try {
        m = std::stoll(v);
      } catch (...) {
        return refuse(ApiError::kInvalidConfig, "min.insync.replicas=" + v + ": not a number");
      }
      if (m < 1 || m > replication_factor) {
        return refuse(ApiError::kInvalidConfig, "min.insync.replicas=" + v + ": must be in [1, " +
                                                    std::to_string(replication_factor) + "]");
      }
    } else if (k == "compression.type") {
      // Kafka's values; applied to the batches the broker builds (records sent as messages).
      if (v != "producer" && v != "uncompressed" && v != "gzip" && v != "snappy" && v != "lz4" && v != "zstd") {
        return refuse(ApiError::kInvalidConfig,
                      "compression.type=" + v + ": must be producer, uncompressed, gzip, snappy, lz4 or zstd");
      }
    } else if (k == "retention.ms" || k == "retention.bytes" || k == "segment.bytes" ||
               k == "segment.ms" || k == "max.message.bytes" || k == "flush.messages" ||
               k == "flush.ms" || k == "index.interval.bytes" || k == "segment.preallocate.bytes" ||
               k == "delete.retention.ms" || k == "min.compaction.lag.ms" ||
               k == "min.cleanable.dirty.ratio") {
      log_keys[k] = v;
    } else {
      return refuse(ApiError::kInvalidConfig, "unknown topic config " + k);
    }
  }
  auto lc = storage::LogConfig::from_properties(log_keys, storage::LogConfig{});
  if (!lc.ok()) return refuse(ApiError::kInvalidConfig, lc.error().message);

  return {};
}

Decision ControllerLogic::alter_topic_configs(const MetadataImage& image, const std::string& topic,
                                              const std::map<std::string, std::string>& set,
                                              const std::vector<std::string>& remove) {
  const TopicImage* t = image.topic_by_name(topic);
  if (!t) return refuse(ApiError::kUnknownTopic, "unknown topic " + topic);
  const int rf = t->partitions.empty() ? 1 : static_cast<int>(t->partitions.begin()->second.replicas.size());
  // Validate the configuration as it will be: current overrides, minus removals, plus sets.
  std::map<std::string, std::string> next = image.configs({v1::ConfigRecord::TOPIC, topic});
  for (const std::string& k : remove) next.erase(k);
  for (const auto& [k, v] : set) next[k] = v;
  if (Decision v = validate_topic_configs(next, rf); !v.ok()) return v;
  if (is_internal_topic(topic)) {
    if (auto problem = internal_topic_config_problem(topic, next, rf)) return refuse(ApiError::kInvalidRequest, *problem);
  }
  Decision d;
  auto record = [&](const std::string& k, const std::string* v) {
    v1::MetadataRecord c;
    c.mutable_config()->set_resource_type(v1::ConfigRecord::TOPIC);
    c.mutable_config()->set_resource_name(topic);
    c.mutable_config()->set_name(k);
    if (v) c.mutable_config()->set_value(*v);
    d.records.push_back(std::move(c));
  };
  for (const std::string& k : remove) {
    if (!set.count(k)) record(k, nullptr);
  }
  for (const auto& [k, v] : set) record(k, &v);
  return d;
}

Decision ControllerLogic::alter_user_scram_credentials(
    const MetadataImage& image, const std::string& user, const std::vector<int32_t>& deletions,
    const std::vector<std::pair<int32_t, ScramCredential>>& upsertions) {
  // Kafka's bounds: SCRAM-SHA-256 (1) and SCRAM-SHA-512 (2); 4096..16384 iterations.
  constexpr int32_t kMinIterations = 4096, kMaxIterations = 16384;
  if (user.empty()) return refuse(ApiError::kUnacceptableCredential, "the user name is empty");
  std::set<int32_t> named;
  auto check_mechanism = [&](int32_t m) -> Decision {
    if (m != 1 && m != 2) return refuse(ApiError::kUnsupportedSaslMechanism, "unknown SCRAM mechanism " + std::to_string(m));
    if (!named.insert(m).second) {
      return refuse(ApiError::kDuplicateResource, "a mechanism of user " + user + " is named twice in one request");
    }
    return {};
  };
  Decision d;
  for (int32_t m : deletions) {
    if (Decision c = check_mechanism(m); !c.ok()) return c;
    if (!image.scram_credential(user, m)) {
      return refuse(ApiError::kResourceNotFound, "user " + user + " has no credential for mechanism " + std::to_string(m));
    }
    v1::MetadataRecord r;
    r.mutable_remove_user_scram_credential()->set_name(user);
    r.mutable_remove_user_scram_credential()->set_mechanism(m);
    d.records.push_back(std::move(r));
  }
  for (const auto& [m, c] : upsertions) {
    if (Decision k = check_mechanism(m); !k.ok()) return k;
    if (c.iterations < kMinIterations || c.iterations > kMaxIterations) {
      return refuse(ApiError::kUnacceptableCredential,
                    "iterations must be within 4096..16384, not " + std::to_string(c.iterations));
    }
    if (c.salt.empty() || c.stored_key.empty() || c.server_key.empty()) {
      return refuse(ApiError::kUnacceptableCredential, "the salt and the salted password must not be empty");
    }
    v1::MetadataRecord r;
    auto* u = r.mutable_user_scram_credential();
    u->set_name(user);
    u->set_mechanism(m);
    u->set_salt(c.salt);
    u->set_stored_key(c.stored_key);
    u->set_server_key(c.server_key);
    u->set_iterations(c.iterations);
    d.records.push_back(std::move(r));
  }
  if (d.records.empty()) return refuse(ApiError::kInvalidRequest, "no change for user " + user);
  return d;
}

Decision ControllerLogic::create_acl(const MetadataImage& image, const acl::Binding& binding) {
  if (std::string why = acl::invalid_reason(binding); !why.empty()) return refuse(ApiError::kInvalidRequest, why);
  for (const auto& [id, b] : image.acls()) {
    if (b == binding) return {};  // already there
  }
  std::string id(16, '\0');
  do {
    for (char& c : id) c = static_cast<char>(rng_() & 0xff);
  } while (image.acls().count(id));
  Decision d;
  v1::MetadataRecord r;
  auto* a = r.mutable_access_control_entry();
  a->set_id(id);
  a->set_resource_type(static_cast<int32_t>(binding.resource_type));
  a->set_resource_name(binding.resource_name);
  a->set_pattern_type(static_cast<int32_t>(binding.pattern_type));
  a->set_principal(binding.principal);
  a->set_host(binding.host);
  a->set_operation(static_cast<int32_t>(binding.operation));
  a->set_permission_type(static_cast<int32_t>(binding.permission));
  d.records.push_back(std::move(r));
  return d;
}

Decision ControllerLogic::delete_acls(const MetadataImage& image, const acl::Filter& filter,
                                      std::vector<acl::Binding>* removed) {
  Decision d;
  for (const auto& [id, b] : image.acls()) {
    if (!acl::matches(filter, b)) continue;
    removed->push_back(b);
    v1::MetadataRecord r;
    r.mutable_remove_access_control_entry()->set_id(id);
    d.records.push_back(std::move(r));
  }
  return d;
}

Result<std::vector<std::vector<int32_t>>> ControllerLogic::place(const MetadataImage& image,
                                                                  int32_t first_partition,
                                                                  int32_t count, int16_t rf) {
  // The live (registered, unfenced) brokers, racks alternating, so consecutive brokers sit in
  // different racks when racks are set.
  std::map<std::string, std::vector<int32_t>> by_rack;
  for (const auto& [id, b] : image.brokers()) {
    if (live(image, id)) by_rack[b.rack].push_back(id);
  }
  std::vector<int32_t> order;
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (auto& [rack, ids] : by_rack) {
      if (i < ids.size()) {
        order.push_back(ids[i]);
        any = true;
      }
    }
    if (!any) break;
  }
  const int n = static_cast<int>(order.size());
  if (rf <= 0 || rf > n) {
    return Error{"replication factor " + std::to_string(rf) + " needs that many live brokers; " +
                 std::to_string(n) + " available"};
  }
  // Leaders rotate over the brokers from a random start, so each leads an equal share; the
  // followers are the next brokers in rack order, shifted every full round so that the same
  // brokers do not always replicate together.
  const int start = static_cast<int>(rng_() % static_cast<uint64_t>(n));
  std::vector<std::vector<int32_t>> out;
  for (int32_t k = 0; k < count; ++k) {
    const int32_t p = first_partition + k;
    const int first = (start + p) % n;
    const int shift = n > 1 ? 1 + (p / n) % (n - 1) : 0;
    std::vector<int32_t> replicas{order[first]};
    std::set<std::string> racks{image.brokers().at(order[first]).rack};
    // First pass: brokers in racks this partition does not use yet; then anyone left.
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; static_cast<int>(replicas.size()) < rf && i < n; ++i) {
        const int32_t b = order[(first + shift + i) % n];
        if (contains(replicas, b)) continue;
        const std::string& rack = image.brokers().at(b).rack;
        if (pass == 0 && racks.count(rack)) continue;
        replicas.push_back(b);
        racks.insert(rack);
      }
    }
    out.push_back(std::move(replicas));
  }
  return out;
}

Decision ControllerLogic::register_broker(const MetadataImage& image, int32_t id,
                                          const std::string& incarnation,
                                          const std::vector<Endpoint>& endpoints,
                                          const std::string& rack, int64_t next_offset,
                                          int64_t now_ms, const std::string& previous_incarnation) {
  if (id < 0) return refuse(ApiError::kInvalidConfig, "broker id must be >= 0");
  if (id > config_.max_node_id) {
    return refuse(ApiError::kInvalidRequest, "broker id " + std::to_string(id) + " is above reserved.broker.max.id (" +
                                                 std::to_string(config_.max_node_id) + ")");
  }
  Decision d;
  // A new incarnation of a live broker: its old session's leaderships are void.
  auto it = image.brokers().find(id);
  if (it != image.brokers().end() && it->second.incarnation_id != incarnation && !it->second.fenced) {
    auto hb = last_heartbeat_ms_.find(id);
    const bool live = hb != last_heartbeat_ms_.end() && now_ms - hb->second < config_.session_timeout_ms;
    if (live && previous_incarnation != it->second.incarnation_id) {
      return refuse(ApiError::kDuplicateBrokerRegistration,
                    "node id " + std::to_string(id) + " is registered by another incarnation that is still " +
                        "heartbeating (last heartbeat " + std::to_string(now_ms - hb->second) +
                        " ms ago); two brokers must not share a node.id");
    }
    evict_broker(image, id, &d.records);
  }
  v1::MetadataRecord r;
  auto* rb = r.mutable_register_broker();
  rb->set_broker_id(id);
  rb->set_incarnation_id(incarnation);
  rb->set_broker_epoch(next_offset);  // the offset of the entry holding this decision
  rb->set_rack(rack);
  rb->set_fenced(true);
  for (const Endpoint& e : endpoints) {
    auto* pe = rb->add_endpoints();
    pe->set_name(e.name);
    pe->set_host(e.host);
    pe->set_port(e.port);
  }
  d.records.push_back(std::move(r));
  last_heartbeat_ms_[id] = now_ms;
  broker_offsets_[id] = -1;
  return d;
}

Decision ControllerLogic::heartbeat(const MetadataImage& image, int32_t id, int64_t broker_epoch,
                                   int64_t metadata_offset, bool want_shutdown, int64_t now_ms) {
  auto it = image.brokers().find(id);
  if (it == image.brokers().end() || it->second.epoch != broker_epoch) {
    return refuse(ApiError::kStaleBrokerEpoch, "broker " + std::to_string(id) + " epoch " +
                                                   std::to_string(broker_epoch) + " is not registered");
  }
  last_heartbeat_ms_[id] = now_ms;
  broker_offsets_[id] = metadata_offset;
  const BrokerRegistration& b = it->second;
  Decision d;
  auto change = [&](v1::BrokerRegistrationChangeRecord::Change c) {
    v1::MetadataRecord r;
    r.mutable_broker_registration_change()->set_broker_id(id);
    r.mutable_broker_registration_change()->set_broker_epoch(broker_epoch);
    r.mutable_broker_registration_change()->set_change(c);
    d.records.push_back(std::move(r));
  };
  if (want_shutdown) {
    if (!b.in_controlled_shutdown) {
      change(v1::BrokerRegistrationChangeRecord::CONTROLLED_SHUTDOWN);
      evict_broker(image, id, &d.records);
    }
    return d;
  }
  if (b.fenced && metadata_offset > b.epoch) {
    change(v1::BrokerRegistrationChangeRecord::UNFENCE);
    // Partitions left without a leader get one back if this broker is in their ISR.
    for (const auto& [tid, t] : image.topics()) {
      for (const auto& [pid, p] : t->partitions) {
        if (p.leader == kNoLeader && contains(p.isr, id)) {
          d.records.push_back(change_record(tid, pid, id, std::nullopt));
        }
      }
    }
  }
  return d;
}

void ControllerLogic::evict_broker(const MetadataImage& image, int32_t broker,
                                   std::vector<v1::MetadataRecord>* out) {
  for (const auto& [tid, t] : image.topics()) {
    for (const auto& [pid, p] : t->partitions) {
      if (!contains(p.isr, broker) && p.leader != broker) continue;
      std::vector<int32_t> isr;
      for (int32_t x : p.isr) {
        if (x != broker) isr.push_back(x);
      }
      std::optional<int32_t> leader;
      if (p.leader == broker) {
        leader = kNoLeader;
        for (int32_t r : p.replicas) {  // preference order
          if (r != broker && contains(isr, r) && live(image, r)) {
            leader = r;
            break;
          }
        }
        if (*leader == kNoLeader && config_.unclean_leader_election) {
          for (int32_t r : p.replicas) {
            if (r != broker && live(image, r)) {
              leader = r;
              isr = {r};
              break;
            }
          }
        }
      }
      // The ISR never empties: with no other member the last one stays (it holds the data).
      if (isr.empty()) isr = {broker};
      if (isr == p.isr && (!leader || *leader == p.leader)) continue;  // nothing would change
      out->push_back(change_record(tid, pid, leader, isr));
    }
  }
}

Decision ControllerLogic::tick(const MetadataImage& image, int64_t now_ms,
                               const std::map<int32_t, int64_t>& arrivals) {
  Decision d;
  // Each eviction is decided on the image the previous ones produce: two brokers expiring
  // together must not elect each other.
  std::shared_ptr<const MetadataImage> cur = std::make_shared<const MetadataImage>(image);
  auto advance = [&](size_t from) {
    MetadataDelta delta(cur);
    for (size_t i = from; i < d.records.size(); ++i) (void)delta.replay(d.records[i], cur->offset());
    cur = delta.apply();
  };
  for (const auto& [id, b] : image.brokers()) {
    if (b.fenced) continue;
    auto it = last_heartbeat_ms_.find(id);
    if (it == last_heartbeat_ms_.end()) {
      last_heartbeat_ms_[id] = now_ms;  // a new controller gives every broker a full session
      continue;
    }
    if (auto a = arrivals.find(id); a != arrivals.end()) it->second = std::max(it->second, a->second);
    if (now_ms - it->second < config_.session_timeout_ms) continue;
    const size_t from = d.records.size();
    v1::MetadataRecord r;
    r.mutable_broker_registration_change()->set_broker_id(id);
    r.mutable_broker_registration_change()->set_broker_epoch(b.epoch);
    r.mutable_broker_registration_change()->set_change(v1::BrokerRegistrationChangeRecord::FENCE);
    d.records.push_back(std::move(r));
    advance(from);
    const size_t moves = d.records.size();
    evict_broker(*cur, id, &d.records);
    advance(moves);
  }
  // Repair: a fenced broker never leads and never stays in an ISR with other members (a decision
  // cut short, or an older controller's mistake, must not leave it there forever).
  for (const auto& [id, b] : cur->brokers()) {
    if (!b.fenced) continue;
    const size_t from = d.records.size();
    evict_broker(*cur, id, &d.records);
    if (d.records.size() > from) advance(from);
  }
  return d;
}

Decision ControllerLogic::allocate_producer_ids(const MetadataImage& image, int32_t broker, int64_t broker_epoch,
                                               int32_t block_size) {
  auto it = image.brokers().find(broker);
  if (it == image.brokers().end() || it->second.epoch != broker_epoch || it->second.fenced) {
    return refuse(ApiError::kStaleBrokerEpoch, "broker " + std::to_string(broker) + " epoch " +
                                                   std::to_string(broker_epoch) +
                                                   " is not a registered, unfenced broker");
  }
  if (block_size <= 0 || image.next_producer_id() > INT64_MAX - block_size) {
    return refuse(ApiError::kInvalidRequest, "producer ids exhausted");
  }
  Decision d;
  v1::MetadataRecord r;
  r.mutable_producer_ids()->set_broker_id(broker);
  r.mutable_producer_ids()->set_broker_epoch(broker_epoch);
  r.mutable_producer_ids()->set_next_producer_id(image.next_producer_id() + block_size);
  d.records.push_back(std::move(r));
  return d;
}

Decision ControllerLogic::alter_partition(const MetadataImage& image, const std::string& topic_id,
                                          int32_t partition, int32_t leader, int32_t leader_epoch,
                                          int32_t partition_epoch,
                                          const std::vector<int32_t>& new_isr) {
  const TopicImage* t = image.topic_by_id(topic_id);
  if (!t || !t->partitions.count(partition)) {
    return refuse(ApiError::kUnknownTopic, "unknown partition " + std::to_string(partition));
  }
  const PartitionState& p = t->partitions.at(partition);
  if (leader != p.leader) {
    return refuse(ApiError::kNotLeaderOrFollower, "broker " + std::to_string(leader) +
                                                      " does not lead " + t->name + "-" + std::to_string(partition));
  }
  if (leader_epoch != p.leader_epoch) {
    return refuse(ApiError::kFencedLeaderEpoch, "leader epoch " + std::to_string(leader_epoch) +
                                                    " is not the current " + std::to_string(p.leader_epoch));
  }
  if (partition_epoch != p.partition_epoch) {
    return refuse(ApiError::kInvalidUpdateVersion,
                  "partition epoch " + std::to_string(partition_epoch) + " is not the current " +
                      std::to_string(p.partition_epoch));
  }
  if (!contains(new_isr, leader)) return refuse(ApiError::kIneligibleReplica, "the ISR must hold the leader");
  if (std::set<int32_t>(new_isr.begin(), new_isr.end()).size() != new_isr.size()) {
    return refuse(ApiError::kIneligibleReplica, "the ISR lists a replica twice");
  }
  for (int32_t x : new_isr) {
    if (!contains(p.replicas, x)) {
      return refuse(ApiError::kIneligibleReplica, "broker " + std::to_string(x) + " is not a replica");
    }
    // Adding a member requires it to be live; keeping one that already is in the ISR does not.
    if (!contains(p.isr, x) && !live(image, x)) {
      return refuse(ApiError::kIneligibleReplica, "broker " + std::to_string(x) + " is fenced");
    }
  }
  Decision d;
  d.records.push_back(change_record(topic_id, partition, std::nullopt, new_isr));
  return d;
}

Decision ControllerLogic::rebalance_preferred_leaders(const MetadataImage& image) {
  Decision d;
  for (const auto& [tid, t] : image.topics()) {
    for (const auto& [pid, p] : t->partitions) {
      const int32_t preferred = p.replicas.front();
      if (p.leader != preferred && contains(p.isr, preferred) && live(image, preferred)) {
        d.records.push_back(change_record(tid, pid, preferred, std::nullopt));
      }
    }
  }
  return d;
}

}  // namespace gannet::metadata
