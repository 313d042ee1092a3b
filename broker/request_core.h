// RequestCore: the broker's request core as its front-ends see it (DESIGN.md, "Requests: one
// core, two front-ends"). The gRPC service (broker_server.cc) and the Kafka listener
// (broker/kafka/) both decode their requests into these protobuf messages and encode the answers
// from them, so there is one produce path, one fetch path, one coordinator and one set of errors.
//
// Threads: the methods marked "never blocks" may be called on an event loop; the others may wait
// (on the controller, or on a record write) and are called through run_blocking().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "metadata/metadata_image.h"
#include "proto/broker.grpc.pb.h"
#include "storage/log.h"

namespace gannet::broker {

class GroupCoordinator;

// A parked request a front-end can drop when its client goes away: it is answered at once (with
// what there is), and the answer is discarded.
struct Cancellable {
  virtual ~Cancellable() = default;
  virtual void cancel() = 0;
};

// A fetch answer's records as file ranges, one list per partition of the response (in its
// order), for a front-end that sends them with sendfile instead of copying them.
using FetchSlices = std::vector<std::vector<storage::FileSlice>>;

class RequestCore {
 public:
  virtual ~RequestCore() = default;

  virtual int32_t node_id() const = 0;
  // Never blocks. Brokers are described with their endpoint on `listener` (brokers without one
  // are left out when `only_with_listener`).
  virtual void metadata(const v1::MetadataRequest& req, const std::string& listener, bool only_with_listener,
                        v1::MetadataResponse* resp) = 0;
  // Never blocks (acks=-1 parks). `done` runs once, on some thread, when `resp` is complete; `req`
  // is stamped in place (offsets, epochs) and not used after this returns.
  virtual void produce(v1::ProduceRequest* req, v1::ProduceResponse* resp, std::function<void()> done) = 0;
  // Never blocks (a long poll parks). `done` runs once when `resp` is complete. The returned
  // handle holds the call (and the fetch memory its records use): release it after the answer
  // has been encoded. `req` and `resp` must live until `done` has run. With `slices`, the
  // records are not read: each partition's are given as file ranges in (*slices)[i] (resp's
  // records stay empty), and must be sent before the handle is released.
  virtual std::shared_ptr<Cancellable> fetch(const v1::FetchRequest* req, v1::FetchResponse* resp,
                                             FetchSlices* slices, std::function<void()> done) = 0;
  // Never blocks.
  virtual void list_offsets(const v1::ListOffsetsRequest& req, v1::ListOffsetsResponse* resp) = 0;
  // May block (creates the offsets topic on first use).
  virtual void find_coordinator(const v1::FindCoordinatorRequest& req, const std::string& listener,
                                v1::FindCoordinatorResponse* resp) = 0;
  // JoinGroup, Heartbeat and OffsetCommit park; SyncGroup, LeaveGroup and DeleteGroups may block.
  virtual GroupCoordinator* groups() = 0;
  // Admin requests, forwarded to the active controller: may block.
  virtual void create_topics(const controller::v1::CreateTopicsRequest& req, controller::v1::CreateTopicsResponse* resp) = 0;
  virtual void delete_topics(const controller::v1::DeleteTopicsRequest& req, controller::v1::DeleteTopicsResponse* resp) = 0;
  virtual void create_partitions(const controller::v1::CreatePartitionsRequest& req,
                                 controller::v1::CreatePartitionsResponse* resp) = 0;
  virtual void alter_configs(const controller::v1::AlterConfigsRequest& req, controller::v1::AlterConfigsResponse* resp) = 0;
  // Users' SCRAM credentials: changes are forwarded to the active controller (may block); the
  // description and the lookup a SASL exchange makes come from the local image (never block).
  virtual void alter_user_scram_credentials(const controller::v1::AlterUserScramCredentialsRequest& req,
                                            controller::v1::AlterUserScramCredentialsResponse* resp) = 0;
  virtual void describe_user_scram_credentials(const controller::v1::DescribeUserScramCredentialsRequest& req,
                                               controller::v1::DescribeUserScramCredentialsResponse* resp) = 0;
  virtual std::optional<metadata::ScramCredential> scram_credential(const std::string& user, int32_t mechanism) const = 0;
  // Whether `password` is `user`'s, against its SCRAM credential (SASL/PLAIN, passwords on gRPC
  // calls); a checked password is remembered, so PBKDF2 runs once per password. Never blocks.
  virtual bool password_ok(const std::string& user, const std::string& password) const = 0;
  // ACLs. authorize() answers for a connection's principal and address (always true when no
  // authorizer is configured); never blocks (the local image's bindings). Changes are forwarded
  // to the active controller (may block); descriptions come from the local image.
  virtual bool authorizer_enabled() const = 0;
  virtual bool authorize(const std::string& principal, const std::string& host, acl::Operation op,
                         acl::ResourceType type, const std::string& name) const = 0;
  virtual void create_acls(const controller::v1::CreateAclsRequest& req, controller::v1::CreateAclsResponse* resp) = 0;
  virtual void delete_acls(const controller::v1::DeleteAclsRequest& req, controller::v1::DeleteAclsResponse* resp) = 0;
  virtual void describe_acls(const controller::v1::DescribeAclsRequest& req, controller::v1::DescribeAclsResponse* resp) = 0;
  // A producer id from this broker's block; may block (asks the controller for the next block).
  virtual void init_producer_id(const v1::InitProducerIdRequest& req, v1::InitProducerIdResponse* resp) = 0;
  // Never blocks (from the local image).
  virtual void describe_configs(const controller::v1::DescribeConfigsRequest& req,
                                controller::v1::DescribeConfigsResponse* resp) = 0;
  // Every topic config key with the value a topic gets when it does not set it (the broker's
  // log.* keys and min.insync.replicas), for DescribeConfigs' DEFAULT entries. Never blocks.
  virtual std::map<std::string, std::string> topic_config_defaults() const = 0;
  // Runs `work` on the core's blocking pool (a bounded number of threads), never on the caller's.
  virtual void run_blocking(std::function<void()> work) = 0;
  // The same for admin requests forwarded to the controller (their own pool: a slow controller
  // must not hold up the group requests on the other).
  virtual void run_admin(std::function<void()> work) = 0;
};

}  // namespace gannet::broker
