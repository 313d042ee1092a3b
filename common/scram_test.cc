#include "common/scram.h"

#include <gtest/gtest.h>

#include <vector>

namespace gannet::scram {
namespace {

// RFC 7677, section 3: SCRAM-SHA-256 for user "user" with password "pencil".
TEST(Scram, Rfc7677Vector) {
  ScramClient client(Mechanism::kSha256, "user", "pencil");
  EXPECT_EQ(client.client_first("rOprNGfwEbeRWgbNEkqO"), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const std::string server_first =
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  auto final = client.client_final(server_first);
  ASSERT_TRUE(final);
  EXPECT_EQ(*final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_TRUE(client.server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_FALSE(client.server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
}

Credential make(Mechanism m, const std::string& password, int32_t iterations = 4096) {
  const std::string salt = random_bytes(16);
  return credential_from_salted(m, salted_password(m, password, salt, iterations), salt, iterations);
}

// Runs a whole exchange; returns whether the server accepted and the client verified the server.
bool exchange(Mechanism m, const std::string& user, const std::string& password, const Credential& stored,
              bool known, std::string* error) {
  ScramClient client(m, user, password);
  ScramServer server(m);
  if (!server.client_first(client.client_first(), error)) return false;
  EXPECT_EQ(server.user(), user);
  auto final = client.client_final(server.server_first(stored, known));
  if (!final) return false;
  auto server_final = server.client_final(*final, error);
  if (!server_final) return false;
  return client.server_final(*server_final);
}

TEST(Scram, ExchangeBothMechanisms) {
  for (Mechanism m : {Mechanism::kSha256, Mechanism::kSha512}) {
    SCOPED_TRACE(mechanism_name(m));
    const Credential c = make(m, "s3cret");
    std::string error;
    EXPECT_TRUE(exchange(m, "alice", "s3cret", c, true, &error)) << error;
    EXPECT_FALSE(exchange(m, "alice", "wrong", c, true, &error));
    EXPECT_NE(error.find("invalid credentials"), std::string::npos);
    // An unknown user fails at the same step, with the same message.
    std::string unknown_error;
    EXPECT_FALSE(exchange(m, "mallory", "s3cret", Credential{}, false, &unknown_error));
    EXPECT_EQ(unknown_error, error);
  }
}

TEST(Scram, UnknownUserSaltIsStable) {
  ScramServer a(Mechanism::kSha512), b(Mechanism::kSha512);
  std::string error;
  ASSERT_TRUE(a.client_first("n,,n=ghost,r=abc", &error));
  ASSERT_TRUE(b.client_first("n,,n=ghost,r=def", &error));
  const std::string fa = a.server_first({}, false), fb = b.server_first({}, false);
  EXPECT_EQ(fa.substr(fa.find(",s=")), fb.substr(fb.find(",s=")));
}

TEST(Scram, NamesWithCommasAndEquals) {
  const Credential c = make(Mechanism::kSha256, "pw");
  std::string error;
  EXPECT_TRUE(exchange(Mechanism::kSha256, "a,b=c", "pw", c, true, &error)) << error;
}

TEST(Scram, RefusesMalformedAndReplayedMessages) {
  std::string error;
  for (const char* bad : {"", "p=tls-unique,,n=u,r=x", "n,,r=x,n=u", "n,,n=u", "n,,n=a=41,r=x", "n,a=bob,n=alice,r=x",
                          "n,,n=u,r=x,tokenauth=true"}) {
    ScramServer s(Mechanism::kSha256);
    EXPECT_FALSE(s.client_first(bad, &error)) << bad;
  }
  // A client-final naming another nonce, or with a garbled proof, fails; so does a second try.
  const Credential c = make(Mechanism::kSha256, "pw");
  ScramClient client(Mechanism::kSha256, "u", "pw");
  ScramServer server(Mechanism::kSha256);
  ASSERT_TRUE(server.client_first(client.client_first(), &error));
  auto final = client.client_final(server.server_first(c, true));
  ASSERT_TRUE(final);
  std::string tampered = *final;
  tampered.replace(tampered.find(",r=") + 3, 1, "Z");
  EXPECT_FALSE(server.client_final(tampered, &error));
  EXPECT_FALSE(server.client_final(*final, &error));  // the exchange is over once it failed
}

// librdkafka's client-final repeats its own nonce before the server's whole nonce; Kafka accepts
// a nonce that ends with the server's, and so do we (kcat failed against the exact check).
TEST(Scram, AcceptsLibrdkafkasRepeatedClientNonce) {
  const Credential c = make(Mechanism::kSha512, "pw");
  ScramServer server(Mechanism::kSha512);
  std::string error;
  const std::string cnonce = "abcdef";
  const std::string bare = "n=u,r=" + cnonce;
  ASSERT_TRUE(server.client_first("n,," + bare, &error));
  const std::string server_first = server.server_first(c, true);
  const std::string full_nonce = server_first.substr(2, server_first.find(',') - 2);
  // The client's arithmetic, over the message librdkafka sends.
  const std::string without_proof = "c=biws,r=" + cnonce + full_nonce;
  const std::string auth = bare + "," + server_first + "," + without_proof;
  const std::string salted = salted_password(Mechanism::kSha512, "pw", c.salt, c.iterations);
  const std::string client_key = hmac(Mechanism::kSha512, salted, "Client Key");
  const std::string sig = hmac(Mechanism::kSha512, hash(Mechanism::kSha512, client_key), auth);
  std::string proof(client_key.size(), '\0');
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(client_key[i] ^ sig[i]);
  EXPECT_TRUE(server.client_final(without_proof + ",p=" + base64_encode(proof), &error)) << error;
}

TEST(Scram, ClientRefusesTooFewIterations) {
  ScramClient client(Mechanism::kSha256, "u", "pw");
  client.client_first("abc");
  EXPECT_FALSE(client.client_final("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1"));
  EXPECT_FALSE(client.client_final("r=zzz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));  // not our nonce
}

TEST(Scram, PasswordMatches) {
  const Credential c = make(Mechanism::kSha512, "hunter2");
  EXPECT_TRUE(password_matches(Mechanism::kSha512, c, "hunter2"));
  EXPECT_FALSE(password_matches(Mechanism::kSha512, c, "hunter3"));
  EXPECT_FALSE(password_matches(Mechanism::kSha256, c, "hunter2"));
}

TEST(Scram, Plain) {
  std::string user, password;
  EXPECT_TRUE(parse_plain(std::string("\0alice\0pw", 9), &user, &password));
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(password, "pw");
  EXPECT_TRUE(parse_plain(std::string("alice\0alice\0pw", 14), &user, &password));
  EXPECT_FALSE(parse_plain(std::string("bob\0alice\0pw", 12), &user, &password));
  EXPECT_FALSE(parse_plain(std::string("\0alice", 6), &user, &password));
  EXPECT_FALSE(parse_plain(std::string("\0\0pw", 4), &user, &password));
}

TEST(Scram, Base64) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, s);
  }
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab!="));
  EXPECT_EQ(mechanism_from_name("SCRAM-SHA-512"), Mechanism::kSha512);
  EXPECT_EQ(mechanism_from_name("PLAIN"), Mechanism::kUnknown);
}

}  // namespace
}  // namespace gannet::scram
