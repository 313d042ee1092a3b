// TLS for the Kafka listener's SSL and SASL_SSL endpoints (OpenSSL 3), configured with Kafka's
// ssl.* keys, PEM files only. The listener drives each connection's SSL object on its own
// non-blocking socket inside its event loop (listener.cc); this file builds the shared context and
// names a client certificate's principal.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace gannet::broker::kafka {

struct TlsOptions {
  std::string keystore_location;    // ssl.keystore.location: private key and certificate chain (PEM)
  std::string key_password;         // ssl.key.password: of an encrypted private key
  std::string truststore_location;  // ssl.truststore.location: CA certificates (PEM) for client certificates
  std::string client_auth = "none";  // ssl.client.auth: none | requested | required
  std::vector<std::string> enabled_protocols = {"TLSv1.2", "TLSv1.3"};  // ssl.enabled.protocols
  std::string cipher_suites;  // ssl.cipher.suites: OpenSSL names, TLS 1.2 ciphers and/or TLS 1.3 suites
};

// A server context with the key and certificate loaded and checked against each other; an error
// names the file or setting that failed and OpenSSL's reason.
Result<std::shared_ptr<SSL_CTX>, std::string> make_server_context(const TlsOptions& options);

// "User:<subject DN, RFC 2253>" of the peer's verified certificate; "" when it sent none.
std::string peer_principal(SSL* ssl);

// OpenSSL's reason for the last failure on this thread (and clears the queue).
std::string last_tls_error();

}  // namespace gannet::broker::kafka
