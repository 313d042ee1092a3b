// Security on the Kafka listener (issue 19), judged by Kafka's own clients against a real
// three-node cluster: SASL (SCRAM-SHA-256/512 and PLAIN) on SASL_PLAINTEXT and SASL_SSL listeners,
// TLS with and without client certificates (made here by openssl), users managed with the gannet
// CLI and with Kafka's AlterUserScramCredentials, and raw frames for what clients never send
// (requests before authentication, SaslHandshake v0's bare tokens, credentials out of range).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "common/grpc_security.h"
#include "common/scram.h"
#include "proto/raft.grpc.pb.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/kafka_wire.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::Cluster;
namespace bv1 = gannet::broker::v1;
namespace cv1 = gannet::controller::v1;
namespace wire = testing::kafka_wire;

testing::CliRun sh(const std::string& command, const std::string& input = "") {
  return testing::shell_run(command, input);
}
std::vector<std::string> lines(const std::string& s) { return testing::nonempty_lines(s); }

// A CA, a server certificate for 127.0.0.1 with an encrypted key, a client certificate from the
// same CA, and a client certificate from a CA the brokers do not trust.
struct Certs {
  std::string dir, ca, server, client_cert, client_key, rogue_cert, rogue_key;
};

Certs make_certs() {
  Certs c;
  c.dir = testing::test_dir("certs");
  const std::string d = c.dir + "/";
  const std::string script =
      "set -e; cd " + c.dir + "\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=gannet-test-ca 2>/dev/null\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=rogue-ca 2>/dev/null\n"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext\n"
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null\n"
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null\n"
      "openssl pkey -in server.key -aes256 -passout pass:keypass -out server.enc.key\n"
      "cat server.enc.key server.crt > server.pem\n"
      "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /O=gannet/CN=alice-app 2>/dev/null\n"
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null\n"
      "openssl req -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.csr -subj /CN=mallory 2>/dev/null\n"
      "openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -out rogue.crt -days 2 2>/dev/null\n";
  auto r = sh("bash -c " + testing::shell_quote(script));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  c.ca = d + "ca.pem";
  c.server = d + "server.pem";
  c.client_cert = d + "client.crt";
  c.client_key = d + "client.key";
  c.rogue_cert = d + "rogue.crt";
  c.rogue_key = d + "rogue.key";
  return c;
}

class KafkaSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v kcat >/dev/null && command -v openssl >/dev/null"), 0)
        << "kcat and openssl are needed (scripts/install_deps.sh installs them)";
    certs_ = make_certs();
    cluster_ = std::make_unique<Cluster>(3,
                                         "num.partitions=1\ndefault.replication.factor=3\n"
                                         "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN\n"
                                         "ssl.keystore.type=PEM\nssl.keystore.location=" + certs_.server +
                                             "\nssl.key.password=keypass\nssl.truststore.location=" + certs_.ca +
                                             "\nssl.client.auth=requested\n",
                                         0, std::vector<std::string>{"SASL_SSL", "SASL_PLAINTEXT", "SSL"});
    cluster_->start_all();
    ASSERT_TRUE(cluster_->wait_unfenced({1, 2, 3}, 60s));
  }
  void TearDown() override {
    if (HasFailure()) cluster_->dump_logs();
  }

  testing::CliRun gannet(std::vector<std::string> args) {
    args.push_back("--bootstrap-server");
    args.push_back(cluster_->bootstrap());
    return testing::gannet_cli(args);
  }
  // kcat on listener `listener` as `user`/`password` with `mechanism` (SASL_*), or with a client
  // certificate (SSL).
  std::string kcat_sasl(const std::string& listener, const std::string& mechanism, const std::string& user,
                        const std::string& password, const std::string& args) {
    std::string cmd = "timeout 30 kcat -b " + cluster_->kafka_bootstrap(listener) + " -X security.protocol=" + listener +
                      " -X sasl.mechanisms=" + mechanism + " -X sasl.username=" + user + " -X sasl.password=" + password;
    if (listener == "SASL_SSL") cmd += " -X ssl.ca.location=" + certs_.ca;
    return cmd + " " + args;
  }
  std::string kcat_ssl(const std::string& cert, const std::string& key, const std::string& ca, const std::string& args) {
    std::string cmd = "timeout 30 kcat -b " + cluster_->kafka_bootstrap("SSL") + " -X security.protocol=SSL -X ssl.ca.location=" + ca;
    if (!cert.empty()) cmd += " -X ssl.certificate.location=" + cert + " -X ssl.key.location=" + key;
    return cmd + " " + args;
  }

  Certs certs_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(KafkaSecurityTest, ScramAndPlainOverSaslListenersAndUsersFromTheCli) {
  // Users are created with the CLI; the password never leaves it (only a salted hash does).
  auto created = gannet({"user", "create", "alice", "--password", "alice-secret"});
  ASSERT_EQ(created.code, 0) << created.out << created.err;
  auto listed = gannet({"user", "list", "--output", "json"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"user\":\"alice\""), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("SCRAM-SHA-256"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("SCRAM-SHA-512"), std::string::npos) << listed.out;
  ASSERT_EQ(cluster_->create("secure", 1, 3).topics(0).error_code(), gannet::v1::NONE);

  // kcat over SASL_SSL with SCRAM-SHA-512 produces; another login reads it back, byte for byte.
  auto p = sh(kcat_sasl("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret", "-P -t secure -K '\t' -X acks=all"),
              "k1\tv1\nk2\tv2\nk3\tv3\n");
  ASSERT_EQ(p.code, 0) << p.out << p.err;
  auto c = sh(kcat_sasl("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret", "-C -t secure -o beginning -e -q -f '%k=%s\\n'"));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(lines(c.out), (std::vector<std::string>{"k1=v1", "k2=v2", "k3=v3"}));

  // A wrong password and an unknown user are refused alike.
  for (auto [user, password] : std::vector<std::pair<std::string, std::string>>{{"alice", "wrong"}, {"bob", "x"}}) {
    auto bad = sh(kcat_sasl("SASL_SSL", "SCRAM-SHA-512", user, password, "-L -t secure -m 10"));
    EXPECT_NE(bad.code, 0) << user;
    EXPECT_NE((bad.out + bad.err).find("Authentication failed"), std::string::npos) << bad.out << bad.err;
  }
  // PLAIN over SASL_SSL, checked against the same credentials.
  auto plain = sh(kcat_sasl("SASL_SSL", "PLAIN", "alice", "alice-secret", "-C -t secure -o beginning -e -q"));
  EXPECT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(lines(plain.out).size(), 3u);
  auto plain_bad = sh(kcat_sasl("SASL_SSL", "PLAIN", "alice", "alice-secrets", "-L -m 10"));
  EXPECT_NE(plain_bad.code, 0);

  // confluent-kafka with SCRAM-SHA-512 over SASL_SSL: produce and read back.
  const std::string py =
      "import sys\n"
      "from confluent_kafka import Producer, Consumer\n"
      "conf = {'bootstrap.servers': sys.argv[1], 'security.protocol': 'SASL_SSL', 'ssl.ca.location': sys.argv[3],\n"
      "        'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': 'alice', 'sasl.password': sys.argv[2]}\n"
      "p = Producer(dict(conf, acks='all'))\n"
      "for i in range(5): p.produce('secure', value=('py%d' % i).encode())\n"
      "assert p.flush(30) == 0\n"
      "c = Consumer(dict(conf, **{'group.id': 'py', 'auto.offset.reset': 'earliest'}))\n"
      "c.subscribe(['secure'])\n"
      "got = []\n"
      "import time\n"
      "deadline = time.time() + 30\n"
      "while len(got) < 8 and time.time() < deadline:\n"
      "    m = c.poll(1.0)\n"
      "    if m is None: continue\n"
      "    if m.error(): print('error', m.error()); continue\n"
      "    got.append(m.value().decode())\n"
      "c.close()\n"
      "print('read', len(got), ','.join(got[3:]))\n";
  auto pyr = sh("/usr/bin/python3 - " + cluster_->kafka_bootstrap("SASL_SSL") + " alice-secret " + certs_.ca, py);
  EXPECT_EQ(pyr.code, 0) << pyr.out << pyr.err;
  EXPECT_NE(pyr.out.find("read 8 py0,py1,py2,py3,py4"), std::string::npos) << pyr.out << pyr.err;

  // Deleting one mechanism: SCRAM-SHA-256 logins fail, SCRAM-SHA-512 ones still work.
  auto del = gannet({"user", "delete", "alice", "--mechanism", "SCRAM-SHA-256"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_NE(sh(kcat_sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret", "-L -m 10")).code, 0);
  EXPECT_EQ(sh(kcat_sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "alice-secret", "-L -t secure -m 10")).code, 0);
  auto gone = gannet({"user", "delete", "nobody"});
  EXPECT_NE(gone.code, 0);
  EXPECT_NE(gone.err.find("RESOURCE_NOT_FOUND"), std::string::npos) << gone.err;

  // After the active controller dies, the users it stored still log in, on another broker.
  auto d = cluster_->describe_cluster();
  ASSERT_TRUE(d);
  const int controller = d->controller_id();
  cluster_->kill(controller, SIGKILL);
  const int other = controller == 1 ? 2 : 1;
  const std::string survivor = "127.0.0.1:" + std::to_string(cluster_->kafka_port(other, "SASL_SSL"));
  bool ok = false;
  for (int i = 0; i < 30 && !ok; ++i) {
    auto r = sh("timeout 30 kcat -b " + survivor +
                " -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice"
                " -X sasl.password=alice-secret -X ssl.ca.location=" + certs_.ca + " -C -t secure -o beginning -e -q");
    ok = r.code == 0 && lines(r.out).size() == 8;
    if (!ok) std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(ok) << "alice could not read through broker " << other << " after controller " << controller << " died";
}

TEST_F(KafkaSecurityTest, MutualTlsAcceptsTrustedCertificatesAndRefusesOthers) {
  ASSERT_EQ(cluster_->create("tls", 1, 3).topics(0).error_code(), gannet::v1::NONE);
  // A client certificate from the trusted CA, and none at all (ssl.client.auth=requested).
  auto p = sh(kcat_ssl(certs_.client_cert, certs_.client_key, certs_.ca, "-P -t tls -X acks=all"), "one\ntwo\n");
  ASSERT_EQ(p.code, 0) << p.out << p.err;
  auto c = sh(kcat_ssl("", "", certs_.ca, "-C -t tls -o beginning -e -q"));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(lines(c.out), (std::vector<std::string>{"one", "two"}));
  // A certificate from a CA the brokers do not trust is refused in the handshake.
  auto rogue = sh(kcat_ssl(certs_.rogue_cert, certs_.rogue_key, certs_.ca, "-L -m 10"));
  EXPECT_NE(rogue.code, 0) << rogue.out;
  // A client that does not trust the broker's CA refuses the broker.
  auto untrusting = sh(kcat_ssl("", "", certs_.dir + "/rogue-ca.pem", "-L -m 10"));
  EXPECT_NE(untrusting.code, 0) << untrusting.out;
  // Plaintext Kafka spoken to the TLS port gets nowhere, and the broker keeps serving.
  auto plain = sh("timeout 20 kcat -b " + cluster_->kafka_bootstrap("SSL") + " -L -m 5");
  EXPECT_NE(plain.code, 0);
  EXPECT_EQ(sh(kcat_ssl("", "", certs_.ca, "-L -t tls -m 10")).code, 0);
}

// A renewed certificate written over the keystore file is served to new connections without a
// restart; open connections and clients keep working.
TEST_F(KafkaSecurityTest, ARenewedCertificateIsServedWithoutARestart) {
  const std::string port = std::to_string(cluster_->kafka_port(1, "SSL"));
  // The certificate the listener presents: s_client's " 0 s:" line.
  auto subject = [&] {
    const std::string out =
        sh("timeout 10 openssl s_client -connect 127.0.0.1:" + port + " -CAfile " + certs_.ca + " </dev/null").out;
    const size_t at = out.find(" 0 s:");
    return at == std::string::npos ? std::string() : out.substr(at + 5, out.find('\n', at) - at - 5);
  };
  EXPECT_EQ(subject(), "CN = localhost");
  const std::string renew =
      "set -e; cd " + certs_.dir + "\n"
      "openssl req -newkey rsa:2048 -nodes -keyout new.key -out new.csr -subj /CN=renewed 2>/dev/null\n"
      "openssl x509 -req -in new.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out new.crt -days 2 -extfile san.ext 2>/dev/null\n"
      "openssl pkey -in new.key -aes256 -passout pass:keypass -out new.enc.key\n"
      "cat new.enc.key new.crt > server.pem.tmp && mv server.pem.tmp server.pem\n";
  ASSERT_EQ(sh("bash -c " + testing::shell_quote(renew)).code, 0);
  bool renewed = false;
  for (int i = 0; i < 20 && !renewed; ++i) {
    std::this_thread::sleep_for(500ms);
    renewed = subject() == "CN = renewed";
  }
  EXPECT_TRUE(renewed) << subject();
  ASSERT_EQ(cluster_->create("renewed", 1, 3).topics(0).error_code(), gannet::v1::NONE);
  auto p = sh(kcat_ssl("", "", certs_.ca, "-P -t renewed -X acks=all"), "after\n");
  EXPECT_EQ(p.code, 0) << p.err;
}

// ---- Raw frames ---------------------------------------------------------------------------------

int connect_to(int port) { return wire::connect_loopback(port, 10); }
using wire::closed_by_server;
using wire::read_frame;
using wire::send_all;
using In = wire::BodyReader;

std::string handshake_body(const std::string& mechanism) {
  std::string b;
  wire::put_str(b, mechanism);
  return b;
}
std::string authenticate_body(const std::string& token) {
  std::string b;
  wire::put32(b, static_cast<int32_t>(token.size()));
  return b + token;
}
// SaslAuthenticate v1's answer: error, message, token.
struct AuthAnswer {
  int16_t error = -1;
  std::string message, token;
};
std::optional<AuthAnswer> authenticate(int fd, int32_t correlation, const std::string& token) {
  if (!send_all(fd, wire::frame(36, 1, correlation, authenticate_body(token)))) return std::nullopt;
  auto f = read_frame(fd);
  if (!f) return std::nullopt;
  In in(*f);
  if (in.i32() != correlation) return std::nullopt;
  AuthAnswer a;
  a.error = in.i16();
  a.message = in.str();
  a.token = in.bytes();
  return !in.failed() ? std::optional<AuthAnswer>(a) : std::nullopt;
}

// Kafka's AlterUserScramCredentials v0 (flexible): upsert (user, mechanism, iterations) with
// `password`, delete (user, mechanism). Returns (user, error) per result.
std::vector<std::pair<std::string, int16_t>> alter_users(int fd, const std::vector<std::tuple<std::string, int, int>>& upserts,
                                                         const std::vector<std::pair<std::string, int>>& deletes,
                                                         const std::string& password) {
  std::string b;
  wire::put_compact_len(b, deletes.size());
  for (const auto& [user, mech] : deletes) {
    wire::put_compact_str(b, user);
    b.push_back(static_cast<char>(mech));
    wire::put_no_tags(b);
  }
  wire::put_compact_len(b, upserts.size());
  for (const auto& [user, mech, iterations] : upserts) {
    wire::put_compact_str(b, user);
    b.push_back(static_cast<char>(mech));
    wire::put32(b, iterations);
    const std::string salt = scram::random_bytes(16);
    wire::put_compact_str(b, salt);
    wire::put_compact_str(b, scram::salted_password(static_cast<scram::Mechanism>(mech), password, salt, iterations));
    wire::put_no_tags(b);
  }
  wire::put_no_tags(b);
  std::vector<std::pair<std::string, int16_t>> out;
  if (!send_all(fd, wire::frame_v2(51, 0, 77, b))) return out;
  auto f = read_frame(fd);
  if (!f) return out;
  In in(*f);
  in.i32();      // correlation
  in.uvarint();  // header tags
  in.i32();      // throttle
  const uint32_t n = in.uvarint();
  for (uint32_t i = 0; i + 1 < n && !in.failed(); ++i) {
    std::string user = in.compact_str().value_or("");
    const int16_t error = in.i16();
    in.compact_str();
    in.uvarint();
    out.emplace_back(user, error);
  }
  return out;
}

TEST_F(KafkaSecurityTest, RawFramesOnlyApiVersionsAndSaslBeforeAuthenticationAndKafkasUserApis) {
  const int plain_port = cluster_->kafka_port(1);
  const int sasl_port = cluster_->kafka_port(1, "SASL_PLAINTEXT");
  // Kafka's user APIs on the plaintext listener: bob gets SCRAM-SHA-512; deleting a credential that
  // does not exist and too few iterations get Kafka's errors.
  int fd = connect_to(plain_port);
  ASSERT_GE(fd, 0);
  auto results = alter_users(fd, {{"bob", 2, 4096}, {"carol", 1, 100}}, {{"dave", 1}}, "bob-pw");
  ::close(fd);
  std::map<std::string, int16_t> by_user(results.begin(), results.end());
  EXPECT_EQ(by_user["bob"], 0);
  EXPECT_EQ(by_user["carol"], 93);  // UNACCEPTABLE_CREDENTIAL
  EXPECT_EQ(by_user["dave"], 91);   // RESOURCE_NOT_FOUND
  // DescribeUserScramCredentials (null: every user) names bob's mechanism and iterations.
  fd = connect_to(plain_port);
  std::string body;
  wire::put_compact_null(body);
  wire::put_no_tags(body);
  ASSERT_TRUE(send_all(fd, wire::frame_v2(50, 0, 5, body)));
  auto described = read_frame(fd);
  ::close(fd);
  ASSERT_TRUE(described);
  In d(*described);
  d.i32();
  d.uvarint();
  d.i32();
  EXPECT_EQ(d.i16(), 0);
  d.compact_str();
  ASSERT_EQ(d.uvarint(), 2u);  // one user
  EXPECT_EQ(d.compact_str().value_or(""), "bob");
  EXPECT_EQ(d.i16(), 0);
  d.compact_str();
  ASSERT_EQ(d.uvarint(), 2u);  // one credential
  EXPECT_EQ(d.i8(), 2);  // SCRAM-SHA-512
  EXPECT_EQ(d.i32(), 4096);

  // On the SASL listener: ApiVersions is answered before authentication, Metadata closes.
  fd = connect_to(sasl_port);
  ASSERT_TRUE(send_all(fd, wire::frame(18, 0, 1, "")));
  EXPECT_TRUE(read_frame(fd));
  std::string meta;
  wire::put32(meta, 0);
  ASSERT_TRUE(send_all(fd, wire::frame(3, 1, 2, meta)));
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
  // An unknown mechanism is refused with UNSUPPORTED_SASL_MECHANISM and the enabled list.
  fd = connect_to(sasl_port);
  ASSERT_TRUE(send_all(fd, wire::frame(17, 1, 3, handshake_body("GSSAPI"))));
  auto h = read_frame(fd);
  ASSERT_TRUE(h);
  In hi(*h);
  hi.i32();
  EXPECT_EQ(hi.i16(), 33);
  EXPECT_EQ(hi.i32(), 3);
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
  // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then closed.
  fd = connect_to(sasl_port);
  auto early = authenticate(fd, 4, "n,,n=bob,r=abc");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->error, 34);
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);

  // SCRAM-SHA-512 with SaslAuthenticate v1: the server proves it knows bob's key too.
  fd = connect_to(sasl_port);
  ASSERT_TRUE(send_all(fd, wire::frame(17, 1, 5, handshake_body("SCRAM-SHA-512"))));
  auto ok = read_frame(fd);
  ASSERT_TRUE(ok);
  In oi(*ok);
  oi.i32();
  EXPECT_EQ(oi.i16(), 0);
  scram::ScramClient client(scram::Mechanism::kSha512, "bob", "bob-pw");
  auto first = authenticate(fd, 6, client.client_first());
  ASSERT_TRUE(first);
  ASSERT_EQ(first->error, 0) << first->message;
  auto final_msg = client.client_final(first->token);
  ASSERT_TRUE(final_msg);
  auto second = authenticate(fd, 7, *final_msg);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->error, 0) << second->message;
  EXPECT_TRUE(client.server_final(second->token));
  ASSERT_TRUE(send_all(fd, wire::frame(3, 1, 8, meta)));
  EXPECT_TRUE(read_frame(fd));  // authenticated: Metadata is answered
  // A second authentication on the same connection is out of order.
  auto again = authenticate(fd, 9, "x");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->error, 34);
  ::close(fd);

  // SaslHandshake v0: then bare tokens, no Kafka header. A wrong password closes the connection.
  for (const std::string& password : {std::string("bob-pw"), std::string("nope")}) {
    fd = connect_to(sasl_port);
    ASSERT_TRUE(send_all(fd, wire::frame(17, 0, 10, handshake_body("SCRAM-SHA-512"))));
    ASSERT_TRUE(read_frame(fd));
    scram::ScramClient raw(scram::Mechanism::kSha512, "bob", password);
    auto token = [](const std::string& t) {
      std::string f;
      wire::put32(f, static_cast<int32_t>(t.size()));
      return f + t;
    };
    ASSERT_TRUE(send_all(fd, token(raw.client_first())));
    auto server_first = read_frame(fd);
    ASSERT_TRUE(server_first);
    auto fin = raw.client_final(*server_first);
    ASSERT_TRUE(fin);
    ASSERT_TRUE(send_all(fd, token(*fin)));
    auto server_final = read_frame(fd);
    if (password == "bob-pw") {
      ASSERT_TRUE(server_final);
      EXPECT_TRUE(raw.server_final(*server_final));
      ASSERT_TRUE(send_all(fd, wire::frame(3, 1, 11, meta)));
      EXPECT_TRUE(read_frame(fd));
    } else {
      EXPECT_FALSE(server_final);
    }
    ::close(fd);
  }
  // The broker kept serving everyone.
  EXPECT_EQ(sh("timeout 20 kcat -b 127.0.0.1:" + std::to_string(plain_port) + " -L -m 10").code, 0);
}

// ---- ACLs -----------------------------------------------------------------------------------------

// Three brokers with the authorizer on, SASL/SCRAM on a SASL_PLAINTEXT listener, User:admin and
// the nodes' certificate (User:CN=localhost, on the TLS gRPC and controller listeners) super users;
// users and ACLs are managed with the CLI (gRPC, with the nodes' certificate) and with Kafka's ACL
// APIs (kafkajs).
class KafkaAclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v kcat >/dev/null"), 0);
    certs_ = make_certs();
    auto node = load_grpc_tls(certs_.server, "keypass", certs_.ca, "required");
    ASSERT_TRUE(node.ok()) << node.error();
    Cluster::credentials() = channel_credentials(*node);
    props_ = certs_.dir + "/admin.properties";
    std::ofstream(props_) << "security.protocol=SSL\nssl.truststore.location=" << certs_.ca
                          << "\nssl.keystore.location=" << certs_.server << "\nssl.key.password=keypass\n";
    cluster_ = std::make_unique<Cluster>(3,
                                         "num.partitions=1\ndefault.replication.factor=3\n"
                                         "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
                                         "super.users=User:admin;User:CN=localhost\n"
                                         "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,GRPC:SSL,"
                                         "SASL_PLAINTEXT:SASL_PLAINTEXT\n"
                                         "ssl.keystore.location=" + certs_.server +
                                             "\nssl.key.password=keypass\nssl.truststore.location=" + certs_.ca + "\n",
                                         0, std::vector<std::string>{"SASL_PLAINTEXT"});
    cluster_->start_all();
    ASSERT_TRUE(cluster_->wait_unfenced({1, 2, 3}, 60s));
    for (const char* user : {"admin", "alice", "bob"}) {
      auto r = gannet({"user", "create", user, "--password", std::string(user) + "-pw", "--mechanism", "SCRAM-SHA-256"});
      ASSERT_EQ(r.code, 0) << r.err;
    }
  }
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->dump_logs();
    cluster_.reset();
    Cluster::credentials() = nullptr;
  }
  testing::CliRun gannet(std::vector<std::string> args) {
    args.insert(args.end(), {"--bootstrap-server", cluster_->bootstrap(), "--command-config", props_});
    return testing::gannet_cli(args);
  }
  std::string kcat(const std::string& user, const std::string& args, const std::string& bootstrap = "") {
    return "timeout 30 kcat -b " + (bootstrap.empty() ? cluster_->kafka_bootstrap("SASL_PLAINTEXT") : bootstrap) +
           " -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=" + user +
           " -X sasl.password=" + user + "-pw " + args;
  }
  // Produces one line as `user`; true when it was acknowledged.
  bool produces(const std::string& user, const std::string& topic, const std::string& value, std::string* why = nullptr,
                const std::string& bootstrap = "") {
    auto r = sh(kcat(user, "-P -t " + topic + " -X acks=all -X message.timeout.ms=10000", bootstrap), value + "\n");
    if (why) *why = r.out + r.err;
    return r.code == 0 && (r.out + r.err).find("failed") == std::string::npos;
  }
  Certs certs_;
  std::string props_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(KafkaAclTest, WriteReadGroupPrefixedAndDenyRulesHoldOnEveryBrokerAndAfterFailover) {
  for (const char* t : {"orders", "payments"}) ASSERT_EQ(cluster_->create(t, 1, 3).topics(0).error_code(), gannet::v1::NONE);
  // alice may write orders, nothing else.
  auto add = gannet({"acl", "add", "--allow-principal", "User:alice", "--operation", "WRITE", "--topic", "orders"});
  ASSERT_EQ(add.code, 0) << add.out << add.err;
  std::string why;
  EXPECT_TRUE(produces("alice", "orders", "o1", &why)) << why;
  EXPECT_FALSE(produces("alice", "payments", "p1", &why));
  EXPECT_NE(why.find("authorization failed"), std::string::npos) << why;
  EXPECT_FALSE(produces("bob", "orders", "b1", &why));  // no ACL for bob at all
  EXPECT_TRUE(produces("admin", "payments", "p-admin", &why)) << why;  // super user
  // Metadata shows alice the topics she may describe (WRITE implies DESCRIBE), not the others.
  auto listed = sh(kcat("alice", "-L"));
  EXPECT_NE(listed.out.find("\"orders\""), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("\"payments\""), std::string::npos) << listed.out;

  // A prefixed ACL covers topics created later; a DENY overrides it.
  ASSERT_EQ(gannet({"acl", "add", "--allow-principal", "User:alice", "--operation", "ALL", "--topic", "logs-",
                    "--resource-pattern-type", "prefixed"}).code, 0);
  ASSERT_EQ(gannet({"acl", "add", "--deny-principal", "User:alice", "--operation", "WRITE", "--topic", "logs-secret"}).code, 0);
  for (const char* t : {"logs-app", "logs-secret"}) ASSERT_EQ(cluster_->create(t, 1, 3).topics(0).error_code(), gannet::v1::NONE);
  EXPECT_TRUE(produces("alice", "logs-app", "l1", &why)) << why;
  EXPECT_FALSE(produces("alice", "logs-secret", "s1", &why));

  // A consumer needs READ on its group as well as on the topic.
  ASSERT_EQ(gannet({"acl", "add", "--allow-principal", "User:bob", "--operation", "READ", "--topic", "orders"}).code, 0);
  auto refused = sh(kcat("bob", "-G readers orders -o beginning -e -q -X enable.partition.eof=true -X session.timeout.ms=6000"));
  EXPECT_NE(refused.code, 0);
  // (librdkafka prints FindCoordinator's GROUP_AUTHORIZATION_FAILED by its message.)
  EXPECT_NE((refused.out + refused.err).find("not authorized to describe group readers"), std::string::npos)
      << refused.out << refused.err;
  ASSERT_EQ(gannet({"acl", "add", "--allow-principal", "User:bob", "--operation", "READ", "--group", "readers"}).code, 0);
  auto read = sh(kcat("bob", "-G readers orders -o beginning -e -q -X enable.partition.eof=true -X auto.offset.reset=earliest"));
  EXPECT_EQ(read.code, 0) << read.err;
  EXPECT_EQ(lines(read.out), std::vector<std::string>{"o1"});

  // The CLI lists what was added, and Kafka's ACL APIs see the same bindings.
  auto acls = gannet({"acl", "list", "--principal", "User:alice", "--output", "json"});
  ASSERT_EQ(acls.code, 0) << acls.err;
  EXPECT_NE(acls.out.find("\"resource_name\":\"logs-\",\"pattern_type\":\"PREFIXED\""), std::string::npos) << acls.out;
  EXPECT_NE(acls.out.find("\"permission\":\"DENY\""), std::string::npos) << acls.out;

  // After the active controller dies, every surviving broker enforces the same ACLs.
  auto d = cluster_->describe_cluster();
  ASSERT_TRUE(d);
  const int controller = d->controller_id();
  cluster_->kill(controller, SIGKILL);
  for (int id : {1, 2, 3}) {
    if (id == controller) continue;
    const std::string one = "127.0.0.1:" + std::to_string(cluster_->kafka_port(id, "SASL_PLAINTEXT"));
    bool wrote = false;
    for (int i = 0; i < 20 && !wrote; ++i) {
      wrote = produces("alice", "orders", "after-" + std::to_string(id), &why, one);
      if (!wrote) std::this_thread::sleep_for(1s);
    }
    EXPECT_TRUE(wrote) << "broker " << id << ": " << why;
    EXPECT_FALSE(produces("alice", "payments", "nope", &why, one)) << "broker " << id;
  }
  // ACLs can still change after the failover (the new controller stores them).
  auto removed = gannet({"acl", "remove", "--topic", "orders", "--principal", "User:alice"});
  ASSERT_EQ(removed.code, 0) << removed.err;
  EXPECT_NE(removed.out.find("WRITE"), std::string::npos) << removed.out;
  bool refused_now = false;
  for (int i = 0; i < 20 && !refused_now; ++i) {
    refused_now = !produces("alice", "orders", "after-removal", &why);
    if (!refused_now) std::this_thread::sleep_for(500ms);
  }
  EXPECT_TRUE(refused_now);
}

TEST_F(KafkaAclTest, KafkasAclApisFromKafkajsNeedAlterOnTheCluster) {
  const char* npm = std::getenv("GANNET_NPM_DIR");
  const std::string node_path = npm ? std::string(npm) + "/node_modules" : "";
  ASSERT_TRUE(npm && std::ifstream(node_path + "/kafkajs/package.json").good())
      << "kafkajs not found: scripts/install_deps.sh installs it and scripts/test.sh passes GANNET_NPM_DIR";
  const std::string js =
      "const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs');\n"
      "const [bootstrap, user] = process.argv.slice(2);\n"
      "const kafka = new Kafka({ clientId: 'acl-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING,\n"
      "  sasl: { mechanism: 'scram-sha-256', username: user, password: user + '-pw' } });\n"
      "(async () => {\n"
      "  const admin = kafka.admin();\n"
      "  await admin.connect();\n"
      "  try {\n"
      "    await admin.createAcls({ acl: [{ resourceType: AclResourceTypes.TOPIC, resourceName: 'js-topic',\n"
      "      resourcePatternType: ResourcePatternTypes.LITERAL, principal: 'User:bob', host: '*',\n"
      "      operation: AclOperationTypes.READ, permissionType: AclPermissionTypes.ALLOW }] });\n"
      "    const d = await admin.describeAcls({ resourceType: AclResourceTypes.TOPIC, resourceName: 'js-topic',\n"
      "      resourcePatternType: ResourcePatternTypes.LITERAL, operation: AclOperationTypes.ANY,\n"
      "      permissionType: AclPermissionTypes.ANY });\n"
      "    for (const r of d.resources) for (const a of r.acls) console.log('acl', r.resourceName, a.principal, a.operation, a.permissionType);\n"
      "    const del = await admin.deleteAcls({ filters: [{ resourceType: AclResourceTypes.TOPIC, resourceName: 'js-topic',\n"
      "      resourcePatternType: ResourcePatternTypes.LITERAL, operation: AclOperationTypes.ANY,\n"
      "      permissionType: AclPermissionTypes.ANY }] });\n"
      "    console.log('deleted', del.filterResponses[0].matchingAcls.length);\n"
      "  } catch (e) { console.log('error', e.type || e.message); }\n"
      "  await admin.disconnect();\n"
      "})();\n";
  const std::string dir = testing::test_dir("acl-js");
  const std::string script = dir + "/acl.js";
  { std::ofstream(script) << js; }
  const std::string node = "timeout 60 env NODE_PATH=" + testing::shell_quote(node_path) + " node " + script + " " +
                           cluster_->kafka_bootstrap("SASL_PLAINTEXT") + " ";
  auto admin = sh(node + "admin");
  EXPECT_EQ(admin.code, 0) << admin.out << admin.err;
  // kafkajs' numbers: TOPIC 2; READ 3; ALLOW 3.
  EXPECT_NE(admin.out.find("acl js-topic User:bob 3 3"), std::string::npos) << admin.out << admin.err;
  EXPECT_NE(admin.out.find("deleted 1"), std::string::npos) << admin.out;
  auto alice = sh(node + "alice");
  EXPECT_NE(alice.out.find("error CLUSTER_AUTHORIZATION_FAILED"), std::string::npos) << alice.out << alice.err;
  // Nothing alice tried was stored.
  auto listed = gannet({"acl", "list", "--topic", "js-topic", "--output", "json"});
  EXPECT_EQ(listed.out.find("User:bob"), std::string::npos) << listed.out;
}

// ---- Nodes authenticate each other (mTLS on the gRPC and controller listeners) -------------------

// Three nodes whose controller and gRPC listeners speak TLS with client certificates; the nodes'
// certificate (CN=localhost) is the one super user. A client with a certificate from the same CA
// (User:CN=alice-app,O=gannet) can connect, but the quorum, the controller's broker RPCs and
// replica fetches refuse it; a client with no certificate, or plaintext, gets nowhere.
class ClusterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = make_certs();
    auto node = load_grpc_tls(certs_.server, "keypass", certs_.ca, "required");
    ASSERT_TRUE(node.ok()) << node.error();
    node_tls_ = *node;
    // (the client's key and certificate are in two files: join them)
    {
      std::ofstream(certs_.dir + "/alice.pem") << testing::read_file(certs_.client_key) << testing::read_file(certs_.client_cert);
    }
    auto a = load_grpc_tls(certs_.dir + "/alice.pem", "", certs_.ca, "required");
    ASSERT_TRUE(a.ok()) << a.error();
    alice_tls_ = *a;
    Cluster::credentials() = channel_credentials(node_tls_);
    cluster_ = std::make_unique<Cluster>(3,
                                         "num.partitions=1\ndefault.replication.factor=3\n"
                                         "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,GRPC:SSL\n"
                                         "ssl.keystore.location=" + certs_.server +
                                             "\nssl.key.password=keypass\nssl.truststore.location=" + certs_.ca +
                                             "\nsuper.users=User:CN=localhost\n" + extra_config());
    cluster_->start_all();
    ASSERT_TRUE(cluster_->wait_unfenced({1, 2, 3}, 60s));
  }
  void TearDown() override {
    if (HasFailure()) cluster_->dump_logs();
    cluster_.reset();
    Cluster::credentials() = nullptr;
  }
  std::shared_ptr<grpc::Channel> dial(int port, const std::shared_ptr<const GrpcTls>& tls) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), channel_credentials(tls));
  }
  static void deadline(grpc::ClientContext* ctx) { ctx->set_deadline(std::chrono::system_clock::now() + 5s); }
  virtual std::string extra_config() const { return ""; }
  std::string client_properties(const std::string& keystore) {
    const std::string props = certs_.dir + "/client-" + std::to_string(++props_) + ".properties";
    std::ofstream(props) << "security.protocol=SSL\nssl.truststore.location=" << certs_.ca
                         << "\nssl.keystore.location=" << keystore << "\nssl.key.password=keypass\n";
    return props;
  }

  int props_ = 0;
  Certs certs_;
  std::shared_ptr<const GrpcTls> node_tls_, alice_tls_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(ClusterTlsTest, OnlyTheClustersOwnPrincipalsRegisterFetchOrVoteAndTheClusterStaysUp) {
  // Data crosses the TLS gRPC listeners between replicas; Kafka clients use the PLAINTEXT one.
  ASSERT_EQ(cluster_->create("t", 1, 3).topics(0).error_code(), gannet::v1::NONE);
  auto p = sh("timeout 30 kcat -b " + cluster_->kafka_bootstrap() + " -P -t t -X acks=all", "a\nb\nc\n");
  ASSERT_EQ(p.code, 0) << p.err;
  // The CLI reaches the TLS listener with Kafka's client keys in --command-config.
  const std::string props = certs_.dir + "/client.properties";
  {
    std::ofstream(props) << "security.protocol=SSL\nssl.truststore.location=" << certs_.ca
                         << "\nssl.keystore.location=" << certs_.dir << "/alice.pem\n";
  }
  auto listed = testing::gannet_cli({"topic", "list", "--bootstrap-server", cluster_->bootstrap(), "--command-config", props});
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("t"), std::string::npos);
  auto plain_cli = testing::gannet_cli({"topic", "list", "--bootstrap-server", cluster_->bootstrap(), "--timeout-ms", "3000"});
  EXPECT_NE(plain_cli.code, 0);

  const int victim = 2;
  // A forged registration of a live broker, from a certificate the CA signed but not a node's.
  for (int c : {1, 2, 3}) {
    auto stub = cv1::Controller::NewStub(dial(cluster_->controller_port(c), alice_tls_));
    cv1::BrokerRegistrationRequest reg;
    reg.set_broker_id(victim);
    reg.set_cluster_id(testing::kClusterId);
    reg.set_incarnation_id(std::string(16, 'x'));
    cv1::BrokerRegistrationResponse resp;
    grpc::ClientContext ctx;
    deadline(&ctx);
    ASSERT_TRUE(stub->BrokerRegistration(&ctx, reg, &resp).ok());
    EXPECT_EQ(resp.error_code(), gannet::v1::CLUSTER_AUTHORIZATION_FAILED) << "controller " << c;
    EXPECT_NE(resp.error_message().find("User:CN=alice-app,O=gannet"), std::string::npos) << resp.error_message();
    cv1::AllocateProducerIdsRequest ids;
    ids.set_broker_id(victim);
    cv1::AllocateProducerIdsResponse ids_resp;
    grpc::ClientContext ctx2;
    deadline(&ctx2);
    ASSERT_TRUE(stub->AllocateProducerIds(&ctx2, ids, &ids_resp).ok());
    EXPECT_EQ(ids_resp.error_code(), gannet::v1::CLUSTER_AUTHORIZATION_FAILED);
  }
  // A quorum fetch naming a voter.
  {
    auto stub = raft::v1::Quorum::NewStub(dial(cluster_->controller_port(1), alice_tls_));
    raft::v1::FetchRequest f;
    f.set_replica(victim);
    f.set_fetch_offset(1'000'000);
    f.set_high_watermark(1'000'000);
    raft::v1::FetchResponse resp;
    grpc::ClientContext ctx;
    deadline(&ctx);
    EXPECT_EQ(stub->Fetch(&ctx, f, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // A replica fetch naming a follower, on each broker's gRPC listener.
  for (int b : {1, 2, 3}) {
    auto stub = bv1::Broker::NewStub(dial(cluster_->client_port(b), alice_tls_));
    bv1::FetchRequest f;
    f.set_replica_id(victim);
    auto* pd = f.add_partitions();
    pd->set_topic("t");
    pd->set_partition(0);
    pd->set_fetch_offset(3);
    pd->set_partition_max_bytes(1024);
    bv1::FetchResponse resp;
    grpc::ClientContext ctx;
    deadline(&ctx);
    EXPECT_EQ(stub->Fetch(&ctx, f, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << "broker " << b;
  }
  // A certificate from a CA the cluster does not trust: the gRPC listener refuses the handshake.
  {
    std::ofstream(certs_.dir + "/rogue.pem") << testing::read_file(certs_.rogue_key) << testing::read_file(certs_.rogue_cert);
    auto rogue = load_grpc_tls(certs_.dir + "/rogue.pem", "", certs_.ca, "required");
    ASSERT_TRUE(rogue.ok()) << rogue.error();
    auto stub = bv1::Broker::NewStub(dial(cluster_->client_port(1), *rogue));
    bv1::MetadataResponse md;
    grpc::ClientContext ctx;
    deadline(&ctx);
    EXPECT_FALSE(stub->Metadata(&ctx, {}, &md).ok());
  }
  // No certificate at all, and plaintext: the controller listener does not even answer.
  {
    auto anon = std::make_shared<GrpcTls>(*alice_tls_);
    anon->cert_pem.clear();
    anon->key_pem.clear();
    for (auto creds : {channel_credentials(anon), grpc::InsecureChannelCredentials()}) {
      auto stub = cv1::Controller::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(cluster_->controller_port(1)), creds));
      cv1::DescribeClusterResponse resp;
      grpc::ClientContext ctx;
      deadline(&ctx);
      EXPECT_FALSE(stub->DescribeCluster(&ctx, {}, &resp).ok());
    }
  }
  // The cluster's own RPCs kept working: every broker is up and unfenced, and data flows.
  std::this_thread::sleep_for(3s);
  for (int id : {1, 2, 3}) EXPECT_TRUE(cluster_->running(id)) << "node " << id;
  EXPECT_TRUE(cluster_->wait_unfenced({1, 2, 3}, 10s));
  auto c = sh("timeout 30 kcat -b " + cluster_->kafka_bootstrap() + " -C -t t -o beginning -e -q");
  EXPECT_EQ(lines(c.out), (std::vector<std::string>{"a", "b", "c"}));
}

// With ACLs on, the gRPC API authorizes each call for the principal of the client's certificate
// (named by ssl.principal.mapping.rules), as the Kafka listener does for its clients.
class ClusterTlsAuthorizerTest : public ClusterTlsTest {
 protected:
  std::string extra_config() const override {
    // Certificates of the "gannet" organization are named by their CN alone.
    return "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
           "ssl.principal.mapping.rules=RULE:^CN=([^,]+),O=gannet$/$1/,DEFAULT\n";
  }
};

TEST_F(ClusterTlsAuthorizerTest, TheGrpcApiAuthorizesEachCallForTheCertificatesPrincipal) {
  ASSERT_EQ(cluster_->create("t", 1, 3).topics(0).error_code(), gannet::v1::NONE);
  const std::string node = client_properties(certs_.server), alice = client_properties(certs_.dir + "/alice.pem");
  auto cli = [&](std::vector<std::string> args, const std::string& props) {
    args.insert(args.end(), {"--bootstrap-server", cluster_->bootstrap(), "--command-config", props});
    return testing::gannet_cli(args);
  };
  // Kafka clients on the PLAINTEXT listener are User:ANONYMOUS: given t, they use it.
  auto grant = cli({"acl", "add", "--allow-principal", "User:ANONYMOUS", "--operation", "ALL", "--topic", "t"}, node);
  ASSERT_EQ(grant.code, 0) << grant.err;
  auto p = sh("timeout 30 kcat -b " + cluster_->kafka_bootstrap() + " -P -t t -X acks=all", "x\n");
  EXPECT_EQ(p.code, 0) << p.err;
  auto c = sh("timeout 30 kcat -b " + cluster_->kafka_bootstrap() + " -C -t t -o beginning -e -q");
  EXPECT_EQ(lines(c.out), std::vector<std::string>{"x"});
  // alice's certificate is hers: she sees no topic she may not describe, creates none until
  // allowed, and cannot touch ACLs.
  auto listed = cli({"topic", "list", "--output", "json"}, alice);
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_EQ(listed.out.find("\"t\""), std::string::npos) << listed.out;
  EXPECT_NE(cli({"topic", "list", "--output", "json"}, node).out.find("\"t\""), std::string::npos);
  auto refused = cli({"topic", "create", "x2"}, alice);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("TOPIC_AUTHORIZATION_FAILED: User:alice-app may not CREATE TOPIC x2"),
            std::string::npos) << refused.err;
  auto acl_refused = cli({"acl", "add", "--allow-principal", "User:alice-app", "--operation", "ALL", "--cluster"}, alice);
  EXPECT_NE(acl_refused.code, 0);
  EXPECT_NE(acl_refused.err.find("CLUSTER_AUTHORIZATION_FAILED"), std::string::npos) << acl_refused.err;
  ASSERT_EQ(cli({"acl", "add", "--allow-principal", "User:alice-app", "--operation", "CREATE", "--cluster"}, node).code, 0);
  auto created = cli({"topic", "create", "x2", "--partitions", "1", "--replication-factor", "3"}, alice);
  EXPECT_EQ(created.code, 0) << created.err;
}

// Python and Node gRPC clients (clients/) over TLS: a user and password on every call, checked
// against the user's SCRAM credential, or a client certificate; the same ACLs apply to either.
TEST_F(ClusterTlsAuthorizerTest, PythonAndNodeClientsAuthenticateWithAPasswordOrACertificate) {
  ASSERT_EQ(cluster_->create("u", 1, 3).topics(0).error_code(), gannet::v1::NONE);
  const std::string node = client_properties(certs_.server);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--bootstrap-server", cluster_->bootstrap(), "--command-config", node});
    return testing::gannet_cli(args);
  };
  ASSERT_EQ(cli({"user", "create", "carol", "--password", "carol-pw"}).code, 0);
  ASSERT_EQ(cli({"acl", "add", "--allow-principal", "User:carol", "--operation", "WRITE", "--topic", "u"}).code, 0);
  const std::string proto = testing::runfile("proto/broker.proto");
  const std::string proto_root = proto.substr(0, proto.size() - std::string("/proto/broker.proto").size());
  const std::string first = cluster_->bootstrap().substr(0, cluster_->bootstrap().find(','));
  auto python = [&](const std::string& env) {
    return sh("timeout 120 env GANNET_PROTO_ROOT=" + testing::shell_quote(proto_root) +
                  " XDG_CACHE_HOME=" + testing::shell_quote(testing::test_dir("pystubs")) + " GANNET_TLS_CA=" + certs_.ca +
                  " " + env + " /usr/bin/python3 " + testing::shell_quote(testing::runfile("clients/python/produce.py")) +
                  " " + first + " u",
              "k1:v1\n");
  };
  auto ok = python("GANNET_USER=carol GANNET_PASSWORD=carol-pw");
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("0 0 k1"), std::string::npos) << ok.out << ok.err;
  auto wrong = python("GANNET_USER=carol GANNET_PASSWORD=nope");
  EXPECT_NE((wrong.out + wrong.err).find("UNAUTHENTICATED"), std::string::npos) << wrong.out << wrong.err;
  EXPECT_NE((wrong.out + wrong.err).find("SASL_AUTHENTICATION_FAILED"), std::string::npos) << wrong.out << wrong.err;

  const char* npm = std::getenv("GANNET_NPM_DIR");
  ASSERT_TRUE(npm) << "scripts/test.sh passes GANNET_NPM_DIR (kafkajs and @grpc/grpc-js)";
  auto node_js = [&]() {
    return sh("timeout 60 env NODE_PATH=" + testing::shell_quote(std::string(npm) + "/node_modules") +
                  " GANNET_PROTO_ROOT=" + testing::shell_quote(proto_root) + " GANNET_TLS_CA=" + certs_.ca +
                  " GANNET_TLS_CERT=" + certs_.client_cert + " GANNET_TLS_KEY=" + certs_.client_key + " node " +
                  testing::shell_quote(testing::runfile("clients/node/produce.js")) + " " + first + " u",
              "k2:v2\n");
  };
  auto refused = node_js();  // alice's certificate: no WRITE on u yet
  EXPECT_NE((refused.out + refused.err).find("TOPIC_AUTHORIZATION_FAILED"), std::string::npos)
      << refused.out << refused.err;
  ASSERT_EQ(cli({"acl", "add", "--allow-principal", "User:alice-app", "--operation", "WRITE", "--topic", "u"}).code, 0);
  auto allowed = node_js();
  EXPECT_EQ(allowed.code, 0) << allowed.out << allowed.err;
  EXPECT_NE(allowed.out.find("0 1 k2"), std::string::npos) << allowed.out << allowed.err;
}

}  // namespace
}  // namespace gannet
