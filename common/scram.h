// SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka's KIP-84 use them) and SASL
// PLAIN (RFC 4616): the credential arithmetic and the server's side of the exchange. OpenSSL's
// libcrypto does the hashing; no I/O, no clock, no threads (a ScramServer is one connection's).
//
// What is stored per user and mechanism (never the password, never the salted password):
//   salt, iterations, StoredKey = H(HMAC(SaltedPassword, "Client Key")),
//   ServerKey = HMAC(SaltedPassword, "Server Key"),  SaltedPassword = PBKDF2(password, salt, i).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gannet::scram {

// Kafka's ScramMechanism numbers (DescribeUserScramCredentials, AlterUserScramCredentials).
enum class Mechanism : int8_t { kUnknown = 0, kSha256 = 1, kSha512 = 2 };

// "SCRAM-SHA-256" / "SCRAM-SHA-512" and back (kUnknown for anything else).
const char* mechanism_name(Mechanism m);
Mechanism mechanism_from_name(std::string_view name);

// Kafka's bounds on a credential's iteration count (4096 <= i <= 16384).
inline constexpr int32_t kMinIterations = 4096;
inline constexpr int32_t kMaxIterations = 16384;

struct Credential {
  std::string salt;
  std::string stored_key;
  std::string server_key;
  int32_t iterations = 0;
};

// Hash and HMAC of the mechanism's digest.
std::string hash(Mechanism m, std::string_view data);
std::string hmac(Mechanism m, std::string_view key, std::string_view data);
// PBKDF2-HMAC with the mechanism's digest; the output is one digest long.
std::string salted_password(Mechanism m, std::string_view password, std::string_view salt, int32_t iterations);
// The stored credential for a salted password (what AlterUserScramCredentials carries).
Credential credential_from_salted(Mechanism m, std::string_view salted, std::string_view salt, int32_t iterations);
// Does `password` match the credential? (SASL PLAIN is checked against the SCRAM credentials.)
bool password_matches(Mechanism m, const Credential& c, std::string_view password);

std::string random_bytes(size_t n);
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// The server's half of one SCRAM exchange: client-first -> server-first, client-final ->
// server-final. Any step that fails leaves the exchange failed, with a reason for the log and for
// the client's error message (never which part of a credential was wrong).
class ScramServer {
 public:
  explicit ScramServer(Mechanism m) : mech_(m) {}

  // Parses client-first-message; on success the user name is known (for the credential lookup).
  bool client_first(std::string_view message, std::string* error);
  const std::string& user() const { return user_; }
  // The server-first-message for the user's credential; `known` false answers with a made-up
  // salt, so a client cannot tell unknown users from wrong passwords, and the exchange fails at
  // the end.
  std::string server_first(const Credential& c, bool known);
  // Verifies client-final-message; on success returns the server-final-message.
  std::optional<std::string> client_final(std::string_view message, std::string* error);

 private:
  Mechanism mech_;
  std::string user_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // the client's nonce followed by ours
  Credential cred_;
  bool known_ = false;
  int step_ = 0;
};

// The client's half (the CLI and tests use it; brokers never do).
class ScramClient {
 public:
  ScramClient(Mechanism m, std::string user, std::string password);
  // `nonce`: the client nonce (empty: a random one; tests pass RFC 7677's).
  std::string client_first(std::string nonce = {});
  // From server-first, the client-final-message (nullopt: malformed, or too few iterations).
  std::optional<std::string> client_final(std::string_view server_first);
  // Checks the server's signature.
  bool server_final(std::string_view message) const;

 private:
  Mechanism mech_;
  std::string user_, password_, nonce_, client_first_bare_, auth_message_, salted_;
};

// SASL PLAIN's one message: [authzid] NUL authcid NUL passwd. False when malformed; an authzid
// other than empty or the user itself is refused (no impersonation).
bool parse_plain(std::string_view message, std::string* user, std::string* password);

}  // namespace gannet::scram
