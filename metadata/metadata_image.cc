#include "metadata/metadata_image.h"

#include "common/varint.h"

namespace gannet::metadata {
namespace {

std::vector<int32_t> ids(const google::protobuf::RepeatedField<int32_t>& r) {
  return std::vector<int32_t>(r.begin(), r.end());
}

Error err(const std::string& m) { return Error{m}; }

std::string hex(const std::string& id) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

}  // namespace

const TopicImage* MetadataImage::topic_by_id(const std::string& id) const {
  auto it = topics_.find(id);
  return it == topics_.end() ? nullptr : it->second.get();
}

const TopicImage* MetadataImage::topic_by_name(const std::string& name) const {
  auto it = topic_ids_.find(name);
  return it == topic_ids_.end() ? nullptr : topic_by_id(it->second);
}

const std::map<std::string, std::string>& MetadataImage::configs(const ConfigResource& r) const {
  static const std::map<std::string, std::string> kEmpty;
  auto it = configs_.find(r);
  return it == configs_.end() ? kEmpty : it->second;
}

bool MetadataImage::operator==(const MetadataImage& o) const {
  if (offset_ != o.offset_ || brokers_ != o.brokers_ || topic_ids_ != o.topic_ids_ ||
      configs_ != o.configs_ || features_ != o.features_ || next_producer_id_ != o.next_producer_id_ || scram_ != o.scram_ || acls_ != o.acls_ ||
      topics_.size() != o.topics_.size()) {
    return false;
  }
  for (const auto& [id, t] : topics_) {
    auto it = o.topics_.find(id);
    if (it == o.topics_.end() || !(*t == *it->second)) return false;
  }
  return true;
}

std::vector<v1::MetadataRecord> MetadataImage::to_records() const {
  std::vector<v1::MetadataRecord> out;
  if (next_producer_id_ > 0) {
    v1::MetadataRecord r;
    r.mutable_producer_ids()->set_next_producer_id(next_producer_id_);
    out.push_back(std::move(r));
  }
  for (const auto& [name, level] : features_) {
    v1::MetadataRecord r;
    r.mutable_feature_level()->set_name(name);
    r.mutable_feature_level()->set_feature_level(level);
    out.push_back(std::move(r));
  }
  for (const auto& [id, b] : brokers_) {
    v1::MetadataRecord r;
    auto* rb = r.mutable_register_broker();
    rb->set_broker_id(b.id);
    rb->set_incarnation_id(b.incarnation_id);
    rb->set_broker_epoch(b.epoch);
    rb->set_rack(b.rack);
    rb->set_fenced(b.fenced);
    for (const Endpoint& e : b.endpoints) {
      auto* pe = rb->add_endpoints();
      pe->set_name(e.name);
      pe->set_host(e.host);
      pe->set_port(e.port);
    }
    out.push_back(std::move(r));
    if (b.in_controlled_shutdown) {
      v1::MetadataRecord c;
      auto* ch = c.mutable_broker_registration_change();
      ch->set_broker_id(b.id);
      ch->set_broker_epoch(b.epoch);
      ch->set_change(v1::BrokerRegistrationChangeRecord::CONTROLLED_SHUTDOWN);
      out.push_back(std::move(c));
    }
  }
  for (const auto& [id, t] : topics_) {
    v1::MetadataRecord r;
    r.mutable_topic()->set_name(t->name);
    r.mutable_topic()->set_topic_id(t->id);
    out.push_back(std::move(r));
    for (const auto& [pid, p] : t->partitions) {
      v1::MetadataRecord pr;
      auto* rp = pr.mutable_partition();
      rp->set_topic_id(t->id);
      rp->set_partition_id(pid);
      for (int32_t x : p.replicas) rp->add_replicas(x);
      for (int32_t x : p.isr) rp->add_isr(x);
      rp->set_leader(p.leader);
      rp->set_leader_epoch(p.leader_epoch);
      rp->set_partition_epoch(p.partition_epoch);
      out.push_back(std::move(pr));
    }
  }
  for (const auto& [res, kv] : configs_) {
    for (const auto& [k, v] : kv) {
      v1::MetadataRecord r;
      auto* c = r.mutable_config();
      c->set_resource_type(static_cast<v1::ConfigRecord::ResourceType>(res.first));
      c->set_resource_name(res.second);
      c->set_name(k);
      c->set_value(v);
      out.push_back(std::move(r));
    }
  }
  for (const auto& [key, c] : scram_) {
    v1::MetadataRecord r;
    auto* u = r.mutable_user_scram_credential();
    u->set_name(key.first);
    u->set_mechanism(key.second);
    u->set_salt(c.salt);
    u->set_stored_key(c.stored_key);
    u->set_server_key(c.server_key);
    u->set_iterations(c.iterations);
    out.push_back(std::move(r));
  }
  for (const auto& [id, b] : acls_) {
    v1::MetadataRecord r;
    auto* a = r.mutable_access_control_entry();
    a->set_id(id);
    a->set_resource_type(static_cast<int32_t>(b.resource_type));
    a->set_resource_name(b.resource_name);
    a->set_pattern_type(static_cast<int32_t>(b.pattern_type));
    a->set_principal(b.principal);
    a->set_host(b.host);
    a->set_operation(static_cast<int32_t>(b.operation));
    a->set_permission_type(static_cast<int32_t>(b.permission));
    out.push_back(std::move(r));
  }
  return out;
}

MetadataDelta::MetadataDelta(std::shared_ptr<const MetadataImage> base)
    : replaces_image_(base == nullptr),
      base_(base ? std::move(base) : std::make_shared<const MetadataImage>()),
      next_(*base_) {}

TopicImage* MetadataDelta::mutable_topic(const std::string& id) {
  auto it = next_.topics_.find(id);
  if (it == next_.topics_.end()) return nullptr;
  if (cloned_topics_.insert(id).second) it->second = std::make_shared<TopicImage>(*it->second);
  return const_cast<TopicImage*>(it->second.get());
}

Status MetadataDelta::replay(const v1::MetadataRecord& r, int64_t offset) {
  switch (r.record_case()) {
    case v1::MetadataRecord::kRegisterBroker: {
      const auto& rb = r.register_broker();
      BrokerRegistration b;
      b.id = rb.broker_id();
      b.incarnation_id = rb.incarnation_id();
      b.epoch = rb.broker_epoch();
      b.rack = rb.rack();
      b.fenced = rb.fenced();
      for (const auto& e : rb.endpoints()) b.endpoints.push_back(Endpoint{e.name(), e.host(), e.port()});
      next_.brokers_[b.id] = std::move(b);
      changed_brokers_.insert(rb.broker_id());
      break;
    }
    case v1::MetadataRecord::kBrokerRegistrationChange: {
      const auto& c = r.broker_registration_change();
      auto it = next_.brokers_.find(c.broker_id());
      if (it == next_.brokers_.end() || it->second.epoch != c.broker_epoch()) {
        return err("registration change for unknown broker " + std::to_string(c.broker_id()) +
                   " epoch " + std::to_string(c.broker_epoch()));
      }
      switch (c.change()) {
        case v1::BrokerRegistrationChangeRecord::FENCE: it->second.fenced = true; break;
        case v1::BrokerRegistrationChangeRecord::UNFENCE:
          it->second.fenced = false;
          it->second.in_controlled_shutdown = false;
          break;
        case v1::BrokerRegistrationChangeRecord::CONTROLLED_SHUTDOWN:
          it->second.in_controlled_shutdown = true;
          break;
        default: return err("unknown broker registration change");
      }
      changed_brokers_.insert(c.broker_id());
      break;
    }
    case v1::MetadataRecord::kUnregisterBroker: {
      const auto& u = r.unregister_broker();
      auto it = next_.brokers_.find(u.broker_id());
      if (it == next_.brokers_.end() || it->second.epoch != u.broker_epoch()) {
        return err("unregistering unknown broker " + std::to_string(u.broker_id()));
      }
      next_.brokers_.erase(it);
      changed_brokers_.insert(u.broker_id());
      break;
    }
    case v1::MetadataRecord::kTopic: {
      const auto& t = r.topic();
      if (t.topic_id().size() != 16) return err("topic " + t.name() + " has no 16-byte id");
      if (next_.topic_ids_.count(t.name()) || next_.topics_.count(t.topic_id())) {
        return err("topic " + t.name() + " already exists");
      }
      auto img = std::make_shared<TopicImage>();
      img->name = t.name();
      img->id = t.topic_id();
      next_.topics_[t.topic_id()] = img;
      next_.topic_ids_[t.name()] = t.topic_id();
      cloned_topics_.insert(t.topic_id());
      created_topics_.insert(t.topic_id());
      deleted_topics_.erase(t.topic_id());
      break;
    }
    case v1::MetadataRecord::kRemoveTopic: {
      const std::string& id = r.remove_topic().topic_id();
      auto it = next_.topics_.find(id);
      if (it == next_.topics_.end()) return err("removing unknown topic " + hex(id));
      next_.topic_ids_.erase(it->second->name);
      next_.configs_.erase(ConfigResource{v1::ConfigRecord::TOPIC, it->second->name});
      next_.topics_.erase(it);
      changed_partitions_.erase(id);
      if (created_topics_.erase(id) == 0) deleted_topics_.insert(id);
      break;
    }
    case v1::MetadataRecord::kPartition: {
      const auto& p = r.partition();
      TopicImage* t = mutable_topic(p.topic_id());
      if (t == nullptr) return err("partition of unknown topic " + hex(p.topic_id()));
      if (p.partition_id() < 0 || p.replicas().empty()) return err("malformed partition record");
      PartitionState s;
      s.replicas = ids(p.replicas());
      s.isr = ids(p.isr());
      s.leader = p.leader();
      s.leader_epoch = p.leader_epoch();
      s.partition_epoch = p.partition_epoch();
      t->partitions[p.partition_id()] = std::move(s);
      changed_partitions_[p.topic_id()].insert(p.partition_id());
      break;
    }
    case v1::MetadataRecord::kPartitionChange: {
      const auto& c = r.partition_change();
      TopicImage* t = mutable_topic(c.topic_id());
      if (t == nullptr) return err("change to a partition of unknown topic " + hex(c.topic_id()));
      auto it = t->partitions.find(c.partition_id());
      if (it == t->partitions.end()) {
        return err("change to unknown partition " + std::to_string(c.partition_id()) + " of " + t->name);
      }
      PartitionState& s = it->second;
      if (c.has_leader() && c.leader() != s.leader) {
        s.leader = c.leader();
        ++s.leader_epoch;
      }
      if (c.has_isr()) s.isr = ids(c.isr().ids());
      if (c.has_replicas()) s.replicas = ids(c.replicas().ids());
      ++s.partition_epoch;
      changed_partitions_[c.topic_id()].insert(c.partition_id());
      break;
    }
    case v1::MetadataRecord::kConfig: {
      const auto& c = r.config();
      ConfigResource res{c.resource_type(), c.resource_name()};
      if (c.has_value()) {
        next_.configs_[res][c.name()] = c.value();
      } else {
        auto it = next_.configs_.find(res);
        if (it != next_.configs_.end()) {
          it->second.erase(c.name());
          if (it->second.empty()) next_.configs_.erase(it);
        }
      }
      changed_configs_.insert(res);
      break;
    }
    case v1::MetadataRecord::kFeatureLevel:
      next_.features_[r.feature_level().name()] = r.feature_level().feature_level();
      break;
    case v1::MetadataRecord::kNoOp:
      break;
    case v1::MetadataRecord::kProducerIds:
      // Only ever raised: ids below it were given out, whatever order records arrive in.
      next_.next_producer_id_ = std::max(next_.next_producer_id_, r.producer_ids().next_producer_id());
      break;
    case v1::MetadataRecord::kUserScramCredential: {
      const auto& u = r.user_scram_credential();
      next_.scram_[{u.name(), u.mechanism()}] = ScramCredential{u.salt(), u.stored_key(), u.server_key(), u.iterations()};
      break;
    }
    case v1::MetadataRecord::kRemoveUserScramCredential:
      next_.scram_.erase({r.remove_user_scram_credential().name(), r.remove_user_scram_credential().mechanism()});
      break;
    case v1::MetadataRecord::kAccessControlEntry: {
      const auto& a = r.access_control_entry();
      acl::Binding b;
      b.resource_type = static_cast<acl::ResourceType>(a.resource_type());
      b.resource_name = a.resource_name();
      b.pattern_type = static_cast<acl::PatternType>(a.pattern_type());
      b.principal = a.principal();
      b.host = a.host();
      b.operation = static_cast<acl::Operation>(a.operation());
      b.permission = static_cast<acl::Permission>(a.permission_type());
      next_.acls_[a.id()] = std::move(b);
      acls_changed_ = true;
      break;
    }
    case v1::MetadataRecord::kRemoveAccessControlEntry:
      next_.acls_.erase(r.remove_access_control_entry().id());
      acls_changed_ = true;
      break;
    case v1::MetadataRecord::RECORD_NOT_SET:
      // A record type from a newer release: skipped, as a newer field would be.
      break;
  }
  next_.offset_ = std::max(next_.offset_, offset + 1);
  return {};
}

std::shared_ptr<const MetadataImage> MetadataDelta::apply() const {
  return std::make_shared<const MetadataImage>(next_);
}

bool MetadataDelta::empty() const {
  return changed_brokers_.empty() && created_topics_.empty() && deleted_topics_.empty() &&
         changed_partitions_.empty() && changed_configs_.empty() && next_.offset_ == base_->offset_;
}

std::string encode_snapshot(const MetadataImage& image) {
  std::string out;
  put_uvarint(&out, static_cast<uint64_t>(image.offset()));
  for (const auto& r : image.to_records()) {
    std::string bytes = r.SerializeAsString();
    put_uvarint(&out, bytes.size());
    out += bytes;
  }
  return out;
}

Result<std::shared_ptr<const MetadataImage>> decode_snapshot(const std::string& bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  uint64_t offset = 0;
  if (!get_uvarint(&p, end, &offset) || offset > INT64_MAX) return err("snapshot: bad offset");
  MetadataDelta delta(nullptr);
  while (p < end) {
    uint64_t n = 0;
    if (!get_uvarint(&p, end, &n) || n > static_cast<uint64_t>(end - p)) {
      return err("snapshot: truncated record");
    }
    v1::MetadataRecord r;
    if (!r.ParseFromArray(p, static_cast<int>(n))) return err("snapshot: unparsable record");
    p += n;
    GANNET_RETURN_IF_ERROR(delta.replay(r, static_cast<int64_t>(offset) - 1));
  }
  // Replaying at offset - 1 leaves the image at exactly the snapshot's offset.
  return delta.apply();
}

}  // namespace gannet::metadata
