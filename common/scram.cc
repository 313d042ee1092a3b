#include "common/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <vector>

namespace gannet::scram {

namespace {

const EVP_MD* digest(Mechanism m) { return m == Mechanism::kSha512 ? EVP_sha512() : EVP_sha256(); }

// "=2C" -> ",", "=3D" -> "=" (RFC 5802's saslname); nullopt for any other '='.
std::optional<std::string> decode_saslname(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out.push_back(s[i]);
      continue;
    }
    if (s.substr(i, 3) == "=2C") {
      out.push_back(',');
    } else if (s.substr(i, 3) == "=3D") {
      out.push_back('=');
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

std::string encode_saslname(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The comma-separated attributes of a SCRAM message ("k=v").
std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  for (;;) {
    size_t comma = s.find(',', at);
    parts.push_back(s.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at));
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return parts;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// A secret of this process: unknown users get a salt derived from it, stable across attempts.
const std::string& process_secret() {
  static const std::string secret = random_bytes(32);
  return secret;
}

}  // namespace

const char* mechanism_name(Mechanism m) {
  switch (m) {
    case Mechanism::kSha256: return "SCRAM-SHA-256";
    case Mechanism::kSha512: return "SCRAM-SHA-512";
    default: return "UNKNOWN";
  }
}

Mechanism mechanism_from_name(std::string_view name) {
  if (name == "SCRAM-SHA-256") return Mechanism::kSha256;
  if (name == "SCRAM-SHA-512") return Mechanism::kSha512;
  return Mechanism::kUnknown;
}

std::string hash(Mechanism m, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, digest(m), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string hmac(Mechanism m, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(digest(m), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string salted_password(Mechanism m, std::string_view password, std::string_view salt, int32_t iterations) {
  std::string out(static_cast<size_t>(EVP_MD_get_size(digest(m))), '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                    digest(m), static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

Credential credential_from_salted(Mechanism m, std::string_view salted, std::string_view salt, int32_t iterations) {
  Credential c;
  c.salt = std::string(salt);
  c.iterations = iterations;
  c.stored_key = hash(m, hmac(m, salted, "Client Key"));
  c.server_key = hmac(m, salted, "Server Key");
  return c;
}

bool password_matches(Mechanism m, const Credential& c, std::string_view password) {
  if (c.iterations <= 0 || c.iterations > kMaxIterations) return false;
  const std::string salted = salted_password(m, password, c.salt, c.iterations);
  return equal_ct(hash(m, hmac(m, salted, "Client Key")), c.stored_key);
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding's bytes as zeros: take them off.
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && len > 0; --i) --len;
  out.resize(len);
  return out;
}

// ---- Server -------------------------------------------------------------------------------------

bool ScramServer::client_first(std::string_view message, std::string* error) {
  if (step_ != 0) {
    *error = "unexpected SCRAM message";
    return false;
  }
  step_ = -1;  // failed unless we get to the end
  // gs2-header: "n," or "y," (no channel binding; "p=" asks for it and is refused), then an
  // optional "a=authzid", then ",".
  if (message.size() < 3 || (message[0] != 'n' && message[0] != 'y') || message[1] != ',') {
    *error = "SCRAM: channel binding is not supported, or the message is malformed";
    return false;
  }
  const size_t second = message.find(',', 2);
  if (second == std::string_view::npos) {
    *error = "SCRAM: malformed client-first-message";
    return false;
  }
  const std::string_view authzid = message.substr(2, second - 2);
  client_first_bare_ = std::string(message.substr(second + 1));
  auto parts = split(client_first_bare_);
  if (parts.size() < 2 || parts[0].substr(0, 2) != "n=" || parts[1].substr(0, 2) != "r=" || parts[1].size() <= 2) {
    *error = "SCRAM: malformed client-first-message";
    return false;
  }
  auto user = decode_saslname(parts[0].substr(2));
  if (!user || user->empty()) {
    *error = "SCRAM: malformed user name";
    return false;
  }
  if (!authzid.empty() && (authzid.substr(0, 2) != "a=" || decode_saslname(authzid.substr(2)) != *user)) {
    *error = "SCRAM: an authorization id other than the user is not allowed";
    return false;
  }
  for (size_t i = 2; i < parts.size(); ++i) {
    if (parts[i] == "tokenauth=true") {
      *error = "SCRAM: delegation tokens are not supported";
      return false;
    }
  }
  user_ = *user;
  nonce_ = std::string(parts[1].substr(2)) + base64_encode(random_bytes(18));
  step_ = 1;
  return true;
}

std::string ScramServer::server_first(const Credential& c, bool known) {
  known_ = known;
  cred_ = c;
  if (!known) {
    cred_ = Credential{};
    cred_.salt = hmac(Mechanism::kSha256, process_secret(), user_).substr(0, 16);
    cred_.iterations = kMinIterations;
  }
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(cred_.salt) + ",i=" + std::to_string(cred_.iterations);
  step_ = 2;
  return server_first_;
}

std::optional<std::string> ScramServer::client_final(std::string_view message, std::string* error) {
  if (step_ != 2) {
    *error = "unexpected SCRAM message";
    return std::nullopt;
  }
  step_ = -1;
  const size_t p = message.rfind(",p=");
  if (p == std::string_view::npos) {
    *error = "SCRAM: malformed client-final-message";
    return std::nullopt;
  }
  const std::string_view without_proof = message.substr(0, p);
  auto parts = split(without_proof);
  if (parts.size() < 2 || parts[0].substr(0, 2) != "c=" || parts[1].substr(0, 2) != "r=") {
    *error = "SCRAM: malformed client-final-message";
    return std::nullopt;
  }
  // The nonce must end with the one we sent: librdkafka sends its own nonce again in front of it
  // (client nonce + the whole server-first nonce), and Kafka's brokers accept that, so we do too.
  const std::string_view nonce = parts[1].substr(2);
  if (nonce.size() < nonce_.size() || nonce.substr(nonce.size() - nonce_.size()) != nonce_) {
    *error = "SCRAM: the nonce does not match";
    return std::nullopt;
  }
  auto proof = base64_decode(message.substr(p + 3));
  if (!proof) {
    *error = "SCRAM: malformed proof";
    return std::nullopt;
  }
  const std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const std::string client_signature = hmac(mech_, cred_.stored_key, auth_message);
  const std::string client_key = xor_bytes(*proof, client_signature);
  if (!known_ || proof->size() != client_signature.size() || !equal_ct(hash(mech_, client_key), cred_.stored_key)) {
    *error = "Authentication failed during authentication due to invalid credentials with SASL mechanism " +
             std::string(mechanism_name(mech_));
    return std::nullopt;
  }
  step_ = 3;
  return "v=" + base64_encode(hmac(mech_, cred_.server_key, auth_message));
}

// ---- Client -------------------------------------------------------------------------------------

ScramClient::ScramClient(Mechanism m, std::string user, std::string password)
    : mech_(m), user_(std::move(user)), password_(std::move(password)) {}

std::string ScramClient::client_first(std::string nonce) {
  nonce_ = nonce.empty() ? base64_encode(random_bytes(18)) : std::move(nonce);
  client_first_bare_ = "n=" + encode_saslname(user_) + ",r=" + nonce_;
  return "n,," + client_first_bare_;
}

std::optional<std::string> ScramClient::client_final(std::string_view server_first) {
  auto parts = split(server_first);
  if (parts.size() < 3 || parts[0].substr(0, 2) != "r=" || parts[1].substr(0, 2) != "s=" ||
      parts[2].substr(0, 2) != "i=") {
    return std::nullopt;
  }
  const std::string_view nonce = parts[0].substr(2);
  if (nonce.substr(0, nonce_.size()) != nonce_) return std::nullopt;
  auto salt = base64_decode(parts[1].substr(2));
  const int32_t iterations = std::atoi(std::string(parts[2].substr(2)).c_str());
  if (!salt || iterations < kMinIterations || iterations > kMaxIterations) return std::nullopt;
  salted_ = salted_password(mech_, password_, *salt, iterations);
  const std::string without_proof = "c=biws,r=" + std::string(nonce);
  auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const std::string client_key = hmac(mech_, salted_, "Client Key");
  const std::string signature = hmac(mech_, hash(mech_, client_key), auth_message_);
  return without_proof + ",p=" + base64_encode(xor_bytes(client_key, signature));
}

bool ScramClient::server_final(std::string_view message) const {
  if (message.substr(0, 2) != "v=") return false;
  auto v = base64_decode(message.substr(2));
  return v && equal_ct(*v, hmac(mech_, hmac(mech_, salted_, "Server Key"), auth_message_));
}

bool parse_plain(std::string_view message, std::string* user, std::string* password) {
  const size_t a = message.find('\0');
  if (a == std::string_view::npos) return false;
  const size_t b = message.find('\0', a + 1);
  if (b == std::string_view::npos) return false;
  const std::string_view authzid = message.substr(0, a);
  *user = std::string(message.substr(a + 1, b - a - 1));
  *password = std::string(message.substr(b + 1));
  if (user->empty() || password->empty()) return false;
  return authzid.empty() || authzid == *user;
}

}  // namespace gannet::scram
