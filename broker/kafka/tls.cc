#include "broker/kafka/tls.h"

#include "common/principal_rules.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>

namespace gannet::broker::kafka {

std::string last_tls_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

namespace {

int version_of(const std::string& name) { return name == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION; }

// The key's password, for OpenSSL's PEM callback.
int password_cb(char* buf, int size, int, void* userdata) {
  const auto* password = static_cast<const std::string*>(userdata);
  const int n = std::min<int>(size, static_cast<int>(password->size()));
  std::copy_n(password->data(), n, buf);
  return n;
}

}  // namespace

Result<std::shared_ptr<SSL_CTX>, std::string> make_server_context(const TlsOptions& o) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) return "cannot create a TLS context: " + last_tls_error();
  std::shared_ptr<SSL_CTX> ctx(raw, SSL_CTX_free);
  int lo = TLS1_3_VERSION, hi = TLS1_2_VERSION;
  for (const std::string& p : o.enabled_protocols) {
    lo = std::min(lo, version_of(p));
    hi = std::max(hi, version_of(p));
  }
  SSL_CTX_set_min_proto_version(raw, lo);
  SSL_CTX_set_max_proto_version(raw, hi);
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Partial writes: a large answer goes out as the socket takes it, from a buffer that may move.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // Read ahead: one read(2) takes what the socket holds (many records) instead of two per record
  // (header, then body). The listener reads until OpenSSL would block, so nothing it buffered is
  // left unseen by epoll.
  SSL_CTX_set_read_ahead(raw, 1);
  SSL_CTX_set_default_read_buffer_len(raw, 64 << 10);
  if (!o.key_password.empty()) {
    // The context outlives this call: it keeps its own copy of the password.
    auto* password = new std::string(o.key_password);
    ctx = std::shared_ptr<SSL_CTX>(ctx.get(), [keep = ctx, password](SSL_CTX*) { delete password; });
    SSL_CTX_set_default_passwd_cb(raw, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(raw, password);
  }
  if (SSL_CTX_use_certificate_chain_file(raw, o.keystore_location.c_str()) != 1) {
    return "ssl.keystore.location=" + o.keystore_location + ": no certificate chain: " + last_tls_error();
  }
  if (SSL_CTX_use_PrivateKey_file(raw, o.keystore_location.c_str(), SSL_FILETYPE_PEM) != 1) {
    return "ssl.keystore.location=" + o.keystore_location +
           ": no private key (or ssl.key.password is wrong): " + last_tls_error();
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    return "ssl.keystore.location=" + o.keystore_location + ": the private key does not match the certificate";
  }
  if (!o.truststore_location.empty() &&
      SSL_CTX_load_verify_locations(raw, o.truststore_location.c_str(), nullptr) != 1) {
    return "ssl.truststore.location=" + o.truststore_location + ": " + last_tls_error();
  }
  if (o.client_auth != "none") {
    if (o.truststore_location.empty()) {
      return "ssl.client.auth=" + o.client_auth + " needs ssl.truststore.location (the CAs client certificates are checked against)";
    }
    int mode = SSL_VERIFY_PEER;
    if (o.client_auth == "required") mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(raw, mode, nullptr);
    static const unsigned char kSessionContext[] = "gannet-kafka";
    SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof(kSessionContext) - 1);
  }
  if (!o.cipher_suites.empty()) {
    // TLS 1.2 ciphers and TLS 1.3 suites have separate lists in OpenSSL: each name goes to the
    // one that accepts it.
    const bool v12 = SSL_CTX_set_cipher_list(raw, o.cipher_suites.c_str()) == 1;
    const bool v13 = SSL_CTX_set_ciphersuites(raw, o.cipher_suites.c_str()) == 1;
    ERR_clear_error();
    if (!v12 && !v13) return "ssl.cipher.suites=" + o.cipher_suites + ": OpenSSL knows none of these names";
  }
  return ctx;
}

std::string peer_principal(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  X509_free(cert);
  return certificate_principal(out);
}

}  // namespace gannet::broker::kafka
