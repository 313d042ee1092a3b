// ControllerService: the controller API (proto/controller.proto) over gRPC, served next to the
// Raft service on a controller's listener. Writes go through metadata::QuorumController; a node
// that is not the active controller answers NOT_CONTROLLER with the active one's address.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "metadata/quorum_controller.h"
#include "proto/controller.grpc.pb.h"

namespace gannet::broker {

namespace cv1 = gannet::controller::v1;

gannet::v1::ErrorCode to_error_code(metadata::ApiError e);

// ACL bindings and filters between the proto and common/acl.h.
acl::Binding binding_from(const cv1::AclBinding& b);
void binding_to(const acl::Binding& b, cv1::AclBinding* out);
acl::Filter filter_from(const cv1::AclFilter& f);
// DescribeAcls from an image.
void describe_acls(const metadata::MetadataImage& image, const cv1::DescribeAclsRequest& req,
                   cv1::DescribeAclsResponse* resp);

// DescribeUserScramCredentials from an image (brokers answer it from their own).
void describe_user_scram_credentials(const metadata::MetadataImage& image,
                                     const cv1::DescribeUserScramCredentialsRequest& req,
                                     cv1::DescribeUserScramCredentialsResponse* resp);

// Who may call the brokers' RPCs: with TLS on the controller listener, only these principals.
struct ControllerSecurity {
  bool tls = false;
  std::vector<std::string> cluster_principals;  // super.users
};

class ControllerService final : public cv1::Controller::Service {
 public:
  // voters: id -> host:port of each controller listener (for NOT_CONTROLLER hints).
  ControllerService(metadata::QuorumController* controller, std::map<int32_t, std::string> voters,
                    ControllerSecurity security = {})
      : controller_(controller), voters_(std::move(voters)), security_(std::move(security)) {}

  grpc::Status CreateTopics(grpc::ServerContext*, const cv1::CreateTopicsRequest*, cv1::CreateTopicsResponse*) override;
  grpc::Status DeleteTopics(grpc::ServerContext*, const cv1::DeleteTopicsRequest*, cv1::DeleteTopicsResponse*) override;
  grpc::Status CreatePartitions(grpc::ServerContext*, const cv1::CreatePartitionsRequest*,
                                cv1::CreatePartitionsResponse*) override;
  grpc::Status AlterConfigs(grpc::ServerContext*, const cv1::AlterConfigsRequest*, cv1::AlterConfigsResponse*) override;
  grpc::Status DescribeConfigs(grpc::ServerContext*, const cv1::DescribeConfigsRequest*,
                               cv1::DescribeConfigsResponse*) override;
  grpc::Status BrokerRegistration(grpc::ServerContext*, const cv1::BrokerRegistrationRequest*,
                                  cv1::BrokerRegistrationResponse*) override;
  grpc::Status BrokerHeartbeat(grpc::ServerContext*, const cv1::BrokerHeartbeatRequest*,
                               cv1::BrokerHeartbeatResponse*) override;
  grpc::Status AlterPartition(grpc::ServerContext*, const cv1::AlterPartitionRequest*,
                              cv1::AlterPartitionResponse*) override;
  grpc::Status DescribeCluster(grpc::ServerContext*, const cv1::DescribeClusterRequest*,
                               cv1::DescribeClusterResponse*) override;
  grpc::Status AlterUserScramCredentials(grpc::ServerContext*, const cv1::AlterUserScramCredentialsRequest*,
                                         cv1::AlterUserScramCredentialsResponse*) override;
  grpc::Status CreateAcls(grpc::ServerContext*, const cv1::CreateAclsRequest*, cv1::CreateAclsResponse*) override;
  grpc::Status DeleteAcls(grpc::ServerContext*, const cv1::DeleteAclsRequest*, cv1::DeleteAclsResponse*) override;
  grpc::Status AllocateProducerIds(grpc::ServerContext*, const cv1::AllocateProducerIdsRequest*,
                                   cv1::AllocateProducerIdsResponse*) override;

 private:
  // Fills the request-level fields of `resp` from a write outcome; false if the request failed
  // as a whole (not controller, timed out).
  template <typename Resp>
  bool request_level(const metadata::WriteOutcome& o, Resp* resp);
  // False (with CLUSTER_AUTHORIZATION_FAILED in `resp`) when the caller is not one of the
  // cluster's principals and the listener has TLS.
  template <typename Resp>
  bool from_cluster(grpc::ServerContext* ctx, Resp* resp) const;

  metadata::QuorumController* const controller_;
  const std::map<int32_t, std::string> voters_;
  const ControllerSecurity security_;
};

// Describe-configs from any node's image (controller or broker).
void describe_configs(const metadata::MetadataImage& image, const cv1::DescribeConfigsRequest& req,
                      cv1::DescribeConfigsResponse* resp);

}  // namespace gannet::broker
