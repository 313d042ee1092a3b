#include "common/grpc_security.h"

#include "common/principal_rules.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

namespace gannet {

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int password_cb(char* buf, int size, int, void* userdata) {
  const auto* password = static_cast<const std::string*>(userdata);
  const int n = std::min<int>(size, static_cast<int>(password->size()));
  std::copy_n(password->data(), n, buf);
  return n;
}

}  // namespace

Result<std::shared_ptr<const GrpcTls>, std::string> load_grpc_tls(const std::string& keystore,
                                                                  const std::string& key_password,
                                                                  const std::string& truststore,
                                                                  const std::string& client_auth) {
  auto tls = std::make_shared<GrpcTls>();
  tls->client_auth = client_auth;
  auto pem = read_file(keystore);
  if (!pem) return "ssl.keystore.location=" + keystore + ": cannot read the file";
  // The certificate chain: every CERTIFICATE block, in order.
  for (size_t at = 0;;) {
    const size_t begin = pem->find("-----BEGIN CERTIFICATE-----", at);
    if (begin == std::string::npos) break;
    const std::string end_marker = "-----END CERTIFICATE-----";
    const size_t end = pem->find(end_marker, begin);
    if (end == std::string::npos) break;
    tls->cert_pem += pem->substr(begin, end + end_marker.size() - begin) + "\n";
    at = end + end_marker.size();
  }
  if (tls->cert_pem.empty()) return "ssl.keystore.location=" + keystore + ": no certificate";
  // The private key, decrypted (gRPC takes it in clear, in memory only).
  ERR_clear_error();
  BIO* in = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  std::string password = key_password;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, password_cb, &password);
  BIO_free(in);
  if (!key) return "ssl.keystore.location=" + keystore + ": no private key (or ssl.key.password is wrong)";
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  tls->key_pem.assign(data, static_cast<size_t>(n));
  BIO_free(out);
  EVP_PKEY_free(key);
  if (!truststore.empty()) {
    auto ca = read_file(truststore);
    if (!ca) return "ssl.truststore.location=" + truststore + ": cannot read the file";
    tls->ca_pem = *ca;
  }
  return std::shared_ptr<const GrpcTls>(std::move(tls));
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::shared_ptr<const GrpcTls>& tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = tls->ca_pem;
  o.pem_private_key = tls->key_pem;
  o.pem_cert_chain = tls->cert_pem;
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::shared_ptr<const GrpcTls>& tls) {
  if (!tls) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions o(
      tls->client_auth == "required"    ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : tls->client_auth == "requested" ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                        : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  o.pem_root_certs = tls->ca_pem;
  o.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
  return grpc::SslServerCredentials(o);
}

std::string grpc_peer_principal(const grpc::ServerContextBase* ctx) {
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return "";
  auto subject = auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (subject.empty()) return "";
  return certificate_principal(std::string(subject.front().data(), subject.front().size()));
}

bool grpc_peer_is_one_of(const grpc::ServerContextBase* ctx, const std::vector<std::string>& principals,
                         std::string* principal) {
  *principal = grpc_peer_principal(ctx);
  return !principal->empty() && std::find(principals.begin(), principals.end(), *principal) != principals.end();
}

}  // namespace gannet
