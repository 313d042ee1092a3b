// ControllerLogic: the quorum controller's decisions as plain code (STYLE.md: events in, records
// out). It reads the current MetadataImage, keeps only the soft state the log does not hold
// (broker heartbeat times), and returns the records to append; the controller driver appends
// them through the Raft quorum and replays them like every other node. No I/O, no clock: time
// comes in as an argument.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "metadata/metadata_image.h"

namespace gannet::metadata {

// Errors a controller request can get; each maps onto one of Kafka's codes (noted).
enum class ApiError {
  kNone,
  kTopicAlreadyExists,         // TOPIC_ALREADY_EXISTS
  kInvalidTopic,               // INVALID_TOPIC_EXCEPTION
  kInvalidPartitions,          // INVALID_PARTITIONS
  kInvalidReplicationFactor,   // INVALID_REPLICATION_FACTOR
  kInvalidConfig,              // INVALID_CONFIG
  kUnknownTopic,               // UNKNOWN_TOPIC_OR_PARTITION
  kStaleBrokerEpoch,           // STALE_BROKER_EPOCH
  kFencedLeaderEpoch,          // FENCED_LEADER_EPOCH
  kInvalidUpdateVersion,       // INVALID_UPDATE_VERSION (stale partition epoch)
  kIneligibleReplica,          // INELIGIBLE_REPLICA
  kNotLeaderOrFollower,        // NOT_LEADER_OR_FOLLOWER
  kInvalidRequest,             // INVALID_REQUEST
  kTopicAuthorizationFailed,   // TOPIC_AUTHORIZATION_FAILED
  kPolicyViolation,            // POLICY_VIOLATION
  kDuplicateBrokerRegistration,  // DUPLICATE_BROKER_REGISTRATION
  kUnsupportedSaslMechanism,     // UNSUPPORTED_SASL_MECHANISM
  kResourceNotFound,             // RESOURCE_NOT_FOUND
  kDuplicateResource,            // DUPLICATE_RESOURCE
  kUnacceptableCredential,       // UNACCEPTABLE_CREDENTIAL
};
const char* api_error_name(ApiError e);

// Kafka's internal topics, which the brokers themselves depend on: `__consumer_offsets` (the group
// coordinator hashes each group to one of its partitions). They cannot be deleted or given more
// partitions, must be created compacted, and keep configs the coordinator can live with.
bool is_internal_topic(const std::string& name);

struct Decision {
  ApiError error = ApiError::kNone;
  std::string message;
  std::vector<v1::MetadataRecord> records;
  bool ok() const { return error == ApiError::kNone; }
};

struct ControllerConfig {
  int64_t session_timeout_ms = 9000;  // broker.session.timeout.ms
  bool unclean_leader_election = false;
  int32_t default_partitions = 1;
  int16_t default_replication_factor = 1;
  // reserved.broker.max.id: brokers register with ids 0..max_node_id, so registrations (which
  // stay in the metadata, fenced, until unregistered) are bounded by the id range.
  int32_t max_node_id = 1000;
};

class ControllerLogic {
 public:
  ControllerLogic(ControllerConfig config, uint64_t seed) : config_(config), rng_(seed) {}

  // CreateTopics: validates the name (Kafka's rules), counts and configs, places replicas over
  // unfenced brokers (balanced; rack-aware when racks are set; the first replica is the
  // preferred leader, rotated so each broker leads an equal share) and returns Topic, Partition
  // and Config records. partitions / replication_factor <= 0 mean the defaults.
  Decision create_topic(const MetadataImage& image, const std::string& name, int32_t partitions,
                        int16_t replication_factor,
                        const std::map<std::string, std::string>& configs);
  Decision delete_topic(const MetadataImage& image, const std::string& name);
  Decision create_partitions(const MetadataImage& image, const std::string& name, int32_t total);

  // Broker lifecycle. register_broker's record gets broker epoch `next_offset` (the offset it
  // will have); the broker starts fenced. A heartbeat keeps the session; it unfences the broker
  // once its metadata image includes its own registration (metadata_offset > broker epoch), so
  // an unfenced broker always knows the partitions it was given.
  //
  // A new incarnation of a node id whose registered incarnation is unfenced and still within its
  // session (a heartbeat less than broker.session.timeout.ms ago) is refused with
  // kDuplicateBrokerRegistration, unless it names that incarnation as `previous_incarnation`
  // (a restart of the same broker, which read it from its own data directory): one forged or
  // misconfigured registration can no longer evict a live broker, and a restart is still at once.
  Decision register_broker(const MetadataImage& image, int32_t id, const std::string& incarnation,
                           const std::vector<Endpoint>& endpoints, const std::string& rack,
                           int64_t next_offset, int64_t now_ms, const std::string& previous_incarnation = "");
  Decision heartbeat(const MetadataImage& image, int32_t id, int64_t broker_epoch,
                     int64_t metadata_offset, bool want_shutdown, int64_t now_ms);
  // Fences brokers whose session expired and moves their leaderships away (ISR shrinks too),
  // one broker after the other on the image the previous evictions produced; also repairs any
  // partition still led by (or listing in its ISR) a fenced broker. `arrivals`: heartbeats that
  // arrived (wall ms) but may not have been processed yet; they keep a session alive too.
  Decision tick(const MetadataImage& image, int64_t now_ms,
                const std::map<int32_t, int64_t>& arrivals = {});

  // AlterPartition from a partition leader: accepted only with the current leader epoch and
  // partition epoch, and an ISR of live replicas that includes the leader.
  Decision alter_partition(const MetadataImage& image, const std::string& topic_id,
                           int32_t partition, int32_t leader, int32_t leader_epoch,
                           int32_t partition_epoch, const std::vector<int32_t>& new_isr);

  // A block of `block_size` producer ids for a registered, unfenced broker with `broker_epoch`:
  // the ids [image.next_producer_id(), + block_size), recorded as the new next id (so no later
  // block, from this controller or the next one, overlaps it). kStaleBrokerEpoch otherwise.
  Decision allocate_producer_ids(const MetadataImage& image, int32_t broker, int64_t broker_epoch,
                                 int32_t block_size);

  // Moves leadership back to the preferred replica where it is in the ISR and unfenced.
  Decision rebalance_preferred_leaders(const MetadataImage& image);

  // Incremental AlterConfigs of a topic: `set` adds or replaces, `remove` resets to the default.
  Decision alter_topic_configs(const MetadataImage& image, const std::string& topic,
                               const std::map<std::string, std::string>& set,
                               const std::vector<std::string>& remove);

  // One user's SCRAM credential changes (AlterUserScramCredentials): `deletions` are mechanisms
  // to remove (each must exist), `upsertions` mechanisms with their new credential (computed
  // from the salted password by the caller; an empty stored key means the salted password was
  // empty). All or nothing for the user: a mechanism named twice, an unknown mechanism, a bad
  // credential or a missing deletion refuses the user's whole change.
  Decision alter_user_scram_credentials(const MetadataImage& image, const std::string& user,
                                        const std::vector<int32_t>& deletions,
                                        const std::vector<std::pair<int32_t, ScramCredential>>& upsertions);

  // CreateAcls: one binding, stored under a new random id (an identical binding already stored
  // is not stored twice: the answer is success with no record). kInvalidRequest with why.
  Decision create_acl(const MetadataImage& image, const acl::Binding& binding);
  // DeleteAcls: removes every binding `filter` selects; `removed` gets them.
  Decision delete_acls(const MetadataImage& image, const acl::Filter& filter, std::vector<acl::Binding>* removed);

  // The metadata offset each broker reported in its last heartbeat (soft state).
  const std::map<int32_t, int64_t>& broker_offsets() const { return broker_offsets_; }

 private:
  bool live(const MetadataImage& image, int32_t broker) const;
  // Replica lists for partitions [first_partition, first_partition + count) over live brokers.
  Result<std::vector<std::vector<int32_t>>> place(const MetadataImage& image,
                                                  int32_t first_partition, int32_t count,
                                                  int16_t rf);
  // Records that take `broker` out of every partition's leadership and ISR.
  void evict_broker(const MetadataImage& image, int32_t broker, std::vector<v1::MetadataRecord>* out);
  // A random version-4 UUID not used by any topic in `image`.
  std::string new_topic_id(const MetadataImage& image);
  // Validates topic configs (the log's keys through storage::LogConfig, plus cleanup.policy and
  // min.insync.replicas against the replication factor).
  Decision validate_topic_configs(const std::map<std::string, std::string>& configs,
                                  int replication_factor) const;

  ControllerConfig config_;
  std::mt19937_64 rng_;
  std::map<int32_t, int64_t> last_heartbeat_ms_;  // soft state: rebuilt from heartbeats
  std::map<int32_t, int64_t> broker_offsets_;
};

}  // namespace gannet::metadata
