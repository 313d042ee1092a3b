// MetadataImage: the cluster's metadata as of one offset of the metadata log: brokers, topics and
// their partitions, configs and feature levels. Immutable once built; every node (controller or
// broker) replays committed records into a MetadataDelta and publishes delta.apply() as the next
// image. Topics are shared between consecutive images, so an image costs O(changed topics).
//
// MetadataDelta also says exactly what changed (brokers, topics created/deleted, partitions,
// configs), in commit order, so listeners (replica manager, group coordinator) act on the change
// instead of diffing whole images.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/acl.h"
#include "common/result.h"
#include "proto/metadata.pb.h"

namespace gannet::metadata {

struct Error {
  std::string message;
};
template <typename T>
using Result = gannet::Result<T, Error>;
using Status = gannet::Result<void, Error>;

inline constexpr int32_t kNoLeader = -1;

struct Endpoint {
  std::string name, host;
  int32_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

struct BrokerRegistration {
  int32_t id = -1;
  std::string incarnation_id;
  int64_t epoch = -1;
  std::vector<Endpoint> endpoints;
  std::string rack;
  bool fenced = true;
  bool in_controlled_shutdown = false;
  bool operator==(const BrokerRegistration&) const = default;
};

struct PartitionState {
  std::vector<int32_t> replicas;  // replicas[0] is the preferred leader
  std::vector<int32_t> isr;
  int32_t leader = kNoLeader;
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;
  bool operator==(const PartitionState&) const = default;
};

struct TopicImage {
  std::string name;
  std::string id;  // 16 bytes
  std::map<int32_t, PartitionState> partitions;
  bool operator==(const TopicImage&) const = default;
};

// A user's SCRAM credential for one mechanism (UserScramCredentialRecord).
struct ScramCredential {
  std::string salt, stored_key, server_key;
  int32_t iterations = 0;
  bool operator==(const ScramCredential&) const = default;
};
// (user, mechanism as Kafka numbers it: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512)
using ScramKey = std::pair<std::string, int32_t>;

// Config resources: (type, name); type as in ConfigRecord.
using ConfigResource = std::pair<int, std::string>;

class MetadataImage {
 public:
  // The offset of the last record applied plus one (0: nothing yet).
  int64_t offset() const { return offset_; }
  const std::map<int32_t, BrokerRegistration>& brokers() const { return brokers_; }
  const TopicImage* topic_by_id(const std::string& id) const;
  const TopicImage* topic_by_name(const std::string& name) const;
  const std::map<std::string, std::shared_ptr<const TopicImage>>& topics() const { return topics_; }
  const std::map<std::string, std::string>& configs(const ConfigResource& r) const;
  const std::map<std::string, int32_t>& features() const { return features_; }
  // The first producer id no broker has been given yet (ProducerIdsRecord).
  int64_t next_producer_id() const { return next_producer_id_; }
  // ACL bindings, by id (16 bytes).
  const std::map<std::string, acl::Binding>& acls() const { return acls_; }
  // Users' SCRAM credentials, by (user, mechanism).
  const std::map<ScramKey, ScramCredential>& scram_credentials() const { return scram_; }
  const ScramCredential* scram_credential(const std::string& user, int32_t mechanism) const {
    auto it = scram_.find({user, mechanism});
    return it == scram_.end() ? nullptr : &it->second;
  }

  // The image as records (for snapshots); replaying them into an empty delta rebuilds it.
  std::vector<v1::MetadataRecord> to_records() const;
  bool operator==(const MetadataImage& o) const;

 private:
  friend class MetadataDelta;
  int64_t offset_ = 0;
  std::map<int32_t, BrokerRegistration> brokers_;
  std::map<std::string, std::shared_ptr<const TopicImage>> topics_;  // by id
  std::map<std::string, std::string> topic_ids_;                     // name -> id
  std::map<ConfigResource, std::map<std::string, std::string>> configs_;
  std::map<std::string, int32_t> features_;
  int64_t next_producer_id_ = 0;
  std::map<ScramKey, ScramCredential> scram_;
  std::map<std::string, acl::Binding> acls_;
};

class MetadataDelta {
 public:
  explicit MetadataDelta(std::shared_ptr<const MetadataImage> base);

  // Applies one committed record at `offset`. A record that contradicts the state (a change to
  // an unknown topic, a partition of a deleted topic, ...) is refused with an error and changes
  // nothing: the controller never writes one, so it means a bug or a corrupt log.
  Status replay(const v1::MetadataRecord& record, int64_t offset);

  std::shared_ptr<const MetadataImage> apply() const;

  // What changed since the base image.
  const std::set<int32_t>& changed_brokers() const { return changed_brokers_; }
  const std::set<std::string>& created_topics() const { return created_topics_; }  // ids
  const std::set<std::string>& deleted_topics() const { return deleted_topics_; }  // ids
  // topic id -> partitions created or changed (of topics that still exist)
  const std::map<std::string, std::set<int32_t>>& changed_partitions() const { return changed_partitions_; }
  const std::set<ConfigResource>& changed_configs() const { return changed_configs_; }
  bool acls_changed() const { return acls_changed_; }
  bool empty() const;
  // Built from nothing (a snapshot being loaded): the next image replaces the previous one
  // wholesale, so subscribers must compare everything, not just the change sets.
  bool replaces_image() const { return replaces_image_; }

 private:
  TopicImage* mutable_topic(const std::string& id);
  bool replaces_image_ = false;

  std::shared_ptr<const MetadataImage> base_;
  MetadataImage next_;  // copy-on-write of base_: topics are cloned when first changed
  std::set<std::string> cloned_topics_;
  std::set<int32_t> changed_brokers_;
  std::set<std::string> created_topics_, deleted_topics_;
  std::map<std::string, std::set<int32_t>> changed_partitions_;
  std::set<ConfigResource> changed_configs_;
  bool acls_changed_ = false;
};

// Snapshot bytes of an image: varint-length-prefixed MetadataRecords, then the offset.
std::string encode_snapshot(const MetadataImage& image);
Result<std::shared_ptr<const MetadataImage>> decode_snapshot(const std::string& bytes);

}  // namespace gannet::metadata
