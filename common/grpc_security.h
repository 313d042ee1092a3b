// TLS for Gannet's gRPC listeners (the broker's client listener, over which followers also fetch,
// and the controller listener, which carries the metadata quorum and the controller API), with
// the same PEM files and Kafka keys as the Kafka listener's TLS (ssl.keystore.location,
// ssl.key.password, ssl.truststore.location, ssl.client.auth). A node presents its keystore's
// certificate both as a server and when it dials another node, so nodes authenticate each other
// (mTLS); the principal of a verified certificate is User:<subject DN, RFC 2253>, as on the Kafka
// listener.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace gannet {

struct GrpcTls {
  std::string ca_pem;    // trusted CAs (ssl.truststore.location)
  std::string cert_pem;  // this node's (or client's) certificate chain
  std::string key_pem;   // its private key, decrypted
  std::string client_auth = "required";  // as a server: none | requested | required
};

// Reads the PEM files: `keystore` holds the private key (encrypted with `key_password`, or not)
// and the certificate chain; `truststore` the CA certificates. The error names the file.
Result<std::shared_ptr<const GrpcTls>, std::string> load_grpc_tls(const std::string& keystore,
                                                                  const std::string& key_password,
                                                                  const std::string& truststore,
                                                                  const std::string& client_auth);

// Plaintext when `tls` is null.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::shared_ptr<const GrpcTls>& tls);
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::shared_ptr<const GrpcTls>& tls);

// The caller's principal, User:<subject> of the certificate it presented and the server verified;
// "" on a plaintext connection or without a certificate.
std::string grpc_peer_principal(const grpc::ServerContextBase* ctx);

// Whether the caller's certificate names one of `principals` (the cluster's own: super.users);
// *principal gets the caller's ("" when unauthenticated), for the refusal's message.
bool grpc_peer_is_one_of(const grpc::ServerContextBase* ctx, const std::vector<std::string>& principals,
                         std::string* principal);

}  // namespace gannet
