// Tests of broker/server_config.h: the properties syntax (separators, comments, continuations,
// escapes, line numbers), file loading and overrides, every required key, every validation rule
// with the key and value named in the error, the voters and listeners forms, retention
// precedence, Kafka's defaults, and describe()/to_properties() round trips.
#include "broker/server_config.h"

#include <gtest/gtest.h>

#include <tuple>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

namespace gannet::broker {
namespace {

// ---- Helpers -----------------------------------------------------------------------------------

ConfigMap parse_ok(std::string_view text) {
  auto r = parse_properties(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : ConfigMap{};
}

std::string parse_error(std::string_view text) {
  auto r = parse_properties(text);
  EXPECT_FALSE(r.ok()) << "parsed: " << text;
  return r.ok() ? "" : r.error().message;
}

// A valid combined-mode (broker,controller) node 1 of a three-voter quorum.
ConfigMap combined() {
  return {
      {"node.id", "1"},
      {"process.roles", "broker,controller"},
      {"controller.quorum.voters", "1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093"},
      {"listeners", "GRPC://127.0.0.1:9092,CONTROLLER://127.0.0.1:19091"},
      {"log.dirs", "/var/lib/gannet/data"},
  };
}

// A valid broker-only node 4 of the same cluster.
ConfigMap broker_only() {
  ConfigMap m = combined();
  m["node.id"] = "4";
  m["process.roles"] = "broker";
  m["listeners"] = "GRPC://127.0.0.1:9094";
  return m;
}

// A valid controller-only node 2.
ConfigMap controller_only() {
  ConfigMap m = combined();
  m["node.id"] = "2";
  m["process.roles"] = "controller";
  m["listeners"] = "CONTROLLER://127.0.0.1:19092";
  return m;
}

ServerConfig build_ok(const ConfigMap& props) {
  auto r = ServerConfig::from_properties(props);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : ServerConfig{};
}

std::string build_error(const ConfigMap& props) {
  auto r = ServerConfig::from_properties(props);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << (r.ok() ? r->describe() : "");
  return r.ok() ? "" : r.error().message;
}

ConfigMap with(ConfigMap m, const std::string& key, const std::string& value) {
  m[key] = value;
  return m;
}

ConfigMap without(ConfigMap m, const std::string& key) {
  m.erase(key);
  return m;
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

void write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
  ASSERT_EQ(std::fclose(f), 0);
}

// ---- Properties syntax -------------------------------------------------------------------------

TEST(ParseProperties, EmptyTextIsEmptyMap) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("\n\n   \n\t\n").empty());
}

TEST(ParseProperties, ThreeSeparatorsAreEquivalent) {
  ConfigMap m = parse_ok(
      "a=1\n"
      "b: 2\n"
      "c 3\n"
      "d = 4\n"
      "e  :  5\n"
      "f\t6\n"
      "g\f=\f7\n");
  EXPECT_EQ(m, (ConfigMap{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"},
                          {"f", "6"}, {"g", "7"}}));
}

TEST(ParseProperties, OnlyOneSeparatorIsConsumed) {
  ConfigMap m = parse_ok("a==b\nc:=d\ne = :f\ng: =h\ni=j=k\n");
  EXPECT_EQ(m["a"], "=b");
  EXPECT_EQ(m["c"], "=d");
  EXPECT_EQ(m["e"], ":f");
  EXPECT_EQ(m["g"], "=h");
  EXPECT_EQ(m["i"], "j=k");
}

TEST(ParseProperties, KeyWithoutValueIsEmptyValue) {
  ConfigMap m = parse_ok("flag\nother=\nthird:   \n");
  EXPECT_EQ(m, (ConfigMap{{"flag", ""}, {"other", ""}, {"third", ""}}));
}

TEST(ParseProperties, CommentsAndBlankLines) {
  ConfigMap m = parse_ok(
      "# a comment\n"
      "! another comment\n"
      "   # indented comment\n"
      "\t! indented bang\n"
      "\n"
      "   \n"
      "k=v # not a comment: part of the value\n"
      "x=#value starting with hash\n");
  EXPECT_EQ(m, (ConfigMap{{"k", "v # not a comment: part of the value"},
                          {"x", "#value starting with hash"}}));
}

TEST(ParseProperties, SurroundingWhitespaceTrimmed) {
  ConfigMap m = parse_ok("   key   =   value with  inner spaces \t \n\t other\t:\tv2\t\n");
  EXPECT_EQ(m, (ConfigMap{{"key", "value with  inner spaces"}, {"other", "v2"}}));
}

TEST(ParseProperties, LineContinuations) {
  ConfigMap m = parse_ok(
      "list=one, \\\n"
      "     two, \\\n"
      "\t\tthree\n"
      "after=yes\n");
  EXPECT_EQ(m["list"], "one, two, three");
  EXPECT_EQ(m["after"], "yes");
  // The key itself may continue.
  EXPECT_EQ(parse_ok("lo\\\n   ng=v\n"), (ConfigMap{{"long", "v"}}));
}

TEST(ParseProperties, ContinuationLineIsNeverAComment) {
  EXPECT_EQ(parse_ok("a=x\\\n  #y\n"), (ConfigMap{{"a", "x#y"}}));
  EXPECT_EQ(parse_ok("a=x\\\n  !y\n"), (ConfigMap{{"a", "x!y"}}));
}

TEST(ParseProperties, CommentLineDoesNotContinue) {
  EXPECT_EQ(parse_ok("# comment \\\nk=v\n"), (ConfigMap{{"k", "v"}}));
}

TEST(ParseProperties, EvenBackslashesDoNotContinue) {
  ConfigMap m = parse_ok("a=c:\\\\\nb=2\n");
  EXPECT_EQ(m["a"], "c:\\");
  EXPECT_EQ(m["b"], "2");
  // Three: an escaped backslash and then a continuation.
  EXPECT_EQ(parse_ok("a=x\\\\\\\ny\n")["a"], "x\\y");
}

TEST(ParseProperties, ContinuationIntoBlankLineOrEndOfText) {
  EXPECT_EQ(parse_ok("a=x\\\n\nb=y\n"), (ConfigMap{{"a", "x"}, {"b", "y"}}));
  EXPECT_EQ(parse_ok("a=x\\"), (ConfigMap{{"a", "x"}}));
  EXPECT_EQ(parse_ok("a=x\\\n   "), (ConfigMap{{"a", "x"}}));
}

TEST(ParseProperties, Escapes) {
  ConfigMap m = parse_ok("a=tab\\there\\nnl\\\\bs\\=eq\\:col\\rcr\\fff\\qq\n");
  EXPECT_EQ(m["a"], "tab\there\nnl\\bs=eq:col\rcr\fffqq");
}

TEST(ParseProperties, EscapesInKeys) {
  ConfigMap m = parse_ok("my\\ key\\=x\\:y = v\n\\#notcomment=1\n\\!bang=2\n");
  EXPECT_EQ(m, (ConfigMap{{"my key=x:y", "v"}, {"#notcomment", "1"}, {"!bang", "2"}}));
}

TEST(ParseProperties, EscapedWhitespaceIsKept) {
  EXPECT_EQ(parse_ok("a=x\\ \n")["a"], "x ");
  EXPECT_EQ(parse_ok("a=\\  x\n")["a"], "  x");
  EXPECT_EQ(parse_ok("a=x\\t\n")["a"], "x\t");
}

TEST(ParseProperties, UnicodeEscapes) {
  EXPECT_EQ(parse_ok("a=caf\\u00e9\n")["a"], "caf\xc3\xa9");
  EXPECT_EQ(parse_ok("a=\\u0041\\u20AC\n")["a"], "A\xe2\x82\xac");
  EXPECT_EQ(parse_ok("a=\\uD83D\\uDE00\n")["a"], "\xf0\x9f\x98\x80");  // surrogate pair
  EXPECT_NE(parse_error("ok=1\na=\\u12g4\n").find("line 2"), std::string::npos);
  EXPECT_NE(parse_error("a=\\u12").find("line 1"), std::string::npos);
  EXPECT_NE(parse_error("a=\\uD83Dx\n").find("surrogate"), std::string::npos);
  EXPECT_NE(parse_error("a=\\uDE00\n").find("surrogate"), std::string::npos);
}

TEST(ParseProperties, LineEndings) {
  EXPECT_EQ(parse_ok("a=1\r\nb=2\rc=3\nd=4"),
            (ConfigMap{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_EQ(parse_ok("a=x\\\r\n  y\r\n"), (ConfigMap{{"a", "xy"}}));
}

TEST(ParseProperties, DuplicateKeyLastWins) {
  EXPECT_EQ(parse_ok("a=1\nb=2\na=3\n"), (ConfigMap{{"a", "3"}, {"b", "2"}}));
}

TEST(ParseProperties, EmptyKeyIsAnErrorWithItsLineNumber) {
  std::string e = parse_error("a=1\n\n# comment\n=oops\n");
  EXPECT_NE(e.find("line 4"), std::string::npos) << e;
  EXPECT_NE(e.find("empty key"), std::string::npos) << e;
  EXPECT_NE(parse_error(": x\n").find("line 1"), std::string::npos);
  EXPECT_NE(parse_error("a=1\r\nb=2\r\n  = x\r\n").find("line 3"), std::string::npos);
  // A logical line is numbered by its first natural line.
  EXPECT_NE(parse_error("a=1\n\\\n=x\n").find("line 2"), std::string::npos);
  // A continued line before it counts its lines.
  EXPECT_NE(parse_error("a=1\\\n2\\\n3\n=x\n").find("line 4"), std::string::npos);
}

// ---- Files and overrides -----------------------------------------------------------------------

TEST(LoadPropertiesFile, ReadsAFile) {
  std::string path = temp_path("server.properties");
  write_file(path, "# Gannet\nnode.id=3\nlog.dirs = /a, /b\n");
  auto r = load_properties_file(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (ConfigMap{{"node.id", "3"}, {"log.dirs", "/a, /b"}}));
}

TEST(LoadPropertiesFile, UnreadableFileIsAClearError) {
  std::string path = temp_path("does-not-exist.properties");
  auto r = load_properties_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot read properties file " + path), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;

  auto dir = load_properties_file(temp_path(""));
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("cannot read properties file"), std::string::npos)
      << dir.error().message;
}

TEST(LoadPropertiesFile, SyntaxErrorNamesFileAndLine) {
  std::string path = temp_path("bad.properties");
  write_file(path, "node.id=1\n=2\n");
  auto r = load_properties_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path + ": line 2"), std::string::npos) << r.error().message;
}

TEST(ApplyOverrides, OverridesWinInOrder) {
  ConfigMap file = {{"node.id", "1"}, {"num.partitions", "3"}};
  auto r = apply_overrides(file, {"num.partitions=6", "new.key = spaced value ", "node.id=2",
                                  "node.id=5", "eq=a=b", "empty="});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (ConfigMap{{"node.id", "5"},
                           {"num.partitions", "6"},
                           {"new.key", "spaced value"},
                           {"eq", "a=b"},
                           {"empty", ""}}));
}

TEST(ApplyOverrides, MalformedOverrideIsAnError) {
  auto r = apply_overrides({{"a", "1"}}, {"a=2", "node.id"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'node.id'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("key=value"), std::string::npos) << r.error().message;
  auto empty = apply_overrides({}, {" =x"});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty key"), std::string::npos);
}

TEST(ApplyOverrides, OverridesBeatTheFileEndToEnd) {
  std::string path = temp_path("node.properties");
  write_file(path,
             "node.id=1\n"
             "process.roles=broker,controller\n"
             "controller.quorum.voters=1@127.0.0.1:19091\n"
             "listeners=GRPC://127.0.0.1:9092,CONTROLLER://127.0.0.1:19091\n"
             "log.dirs=/data/one\n"
             "num.partitions=3\n");
  auto file = load_properties_file(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto merged = apply_overrides(*file, {"num.partitions=12", "log.dirs=/data/two"});
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  ServerConfig c = build_ok(*merged);
  EXPECT_EQ(c.num_partitions, 12);
  EXPECT_EQ(c.log_dirs, std::vector<std::string>{"/data/two"});
  EXPECT_EQ(c.node_id, 1);
}

// ---- Defaults and required keys ----------------------------------------------------------------

TEST(ServerConfig, DefaultsAreKafkas) {
  ServerConfig c = build_ok(combined());
  EXPECT_EQ(c.controller_listener_names, std::vector<std::string>{"CONTROLLER"});
  EXPECT_FALSE(c.cluster_id.has_value());
  EXPECT_EQ(c.broker_heartbeat_interval_ms, 2000);
  EXPECT_EQ(c.broker_session_timeout_ms, 9000);
  EXPECT_EQ(c.controller_quorum_election_timeout_ms, 500);
  EXPECT_EQ(c.controller_quorum_fetch_timeout_ms, 1000);
  EXPECT_EQ(c.controller_quorum_election_backoff_max_ms, 1000);
  EXPECT_EQ(c.replica_lag_time_max_ms, 30000);
  EXPECT_EQ(c.num_partitions, 1);
  EXPECT_EQ(c.default_replication_factor, 1);
  EXPECT_EQ(c.min_insync_replicas, 1);
  EXPECT_FALSE(c.unclean_leader_election_enable);
  EXPECT_EQ(c.offsets_topic_num_partitions, 50);
  EXPECT_EQ(c.offsets_topic_replication_factor, 3);
  EXPECT_TRUE(c.auto_create_topics_enable);
  const storage::LogConfig& lc = c.default_log_config;
  EXPECT_EQ(lc.segment_bytes, 1073741824);                    // log.segment.bytes
  EXPECT_EQ(lc.segment_ms, 168LL * 3600 * 1000);              // log.roll.hours=168
  EXPECT_EQ(lc.retention_ms, 168LL * 3600 * 1000);            // log.retention.hours=168
  EXPECT_EQ(lc.retention_bytes, -1);                          // log.retention.bytes
  EXPECT_EQ(lc.flush_messages, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(lc.flush_ms, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(lc.index_interval_bytes, 4096);                   // log.index.interval.bytes
  EXPECT_EQ(lc.max_message_bytes, 1048588);                   // message.max.bytes
  EXPECT_TRUE(c.extra.empty());
}

TEST(ServerConfig, DefaultListenersAreKafkas) {
  ServerConfig c = build_ok(without(broker_only(), "listeners"));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0], (Endpoint{"PLAINTEXT", "", 9092}));
  EXPECT_EQ(c.listeners[0].to_string(), "PLAINTEXT://:9092");
  EXPECT_EQ(c.listeners[1], (Endpoint{"GRPC", "", 9192}));
  // Kafka's protocol on PLAINTEXT, gRPC on GRPC; clients are told 127.0.0.1 for an empty host.
  ASSERT_EQ(c.kafka_listeners().size(), 1u);
  EXPECT_EQ(c.kafka_listeners()[0].name, "PLAINTEXT");
  EXPECT_EQ(c.grpc_listener()->name, "GRPC");
  EXPECT_EQ(c.advertised(c.listeners[0]).host, "127.0.0.1");
  // The default has no controller listener, so a controller must set listeners.
  std::string e = build_error(without(combined(), "listeners"));
  EXPECT_NE(e.find("controller.listener.names=CONTROLLER"), std::string::npos) << e;
  EXPECT_NE(e.find("listeners=PLAINTEXT://:9092,GRPC://:9192"), std::string::npos) << e;
}

TEST(ServerConfig, KafkaListenersAdvertisedAndChecked) {
  ServerConfig c = build_ok(with(with(broker_only(), "listeners", "PLAINTEXT://0.0.0.0:9092,GRPC://:9192"),
                                 "advertised.listeners", "PLAINTEXT://broker1.example:19092"));
  EXPECT_EQ(c.advertised(*c.listener("PLAINTEXT")), (Endpoint{"PLAINTEXT", "broker1.example", 19092}));
  EXPECT_EQ(c.advertised(*c.listener("GRPC")).host, "127.0.0.1");
  // An address no client can dial is refused.
  std::string e = build_error(with(broker_only(), "advertised.listeners", "GRPC://0.0.0.0:9094"));
  EXPECT_NE(e.find("must name a host clients can dial"), std::string::npos) << e;
  // A broker needs exactly one gRPC listener.
  e = build_error(with(broker_only(), "listeners", "PLAINTEXT://:9092"));
  EXPECT_NE(e.find("exactly one listener named in grpc.listener.names"), std::string::npos) << e;
  // SASL is on the Kafka listeners only; an SSL gRPC listener needs a truststore and the nodes'
  // principals; unknown protocols are refused.
  e = build_error(with(broker_only(), "listener.security.protocol.map", "GRPC:SASL_SSL,PLAINTEXT:PLAINTEXT"));
  EXPECT_NE(e.find("SASL is served on Kafka listeners only"), std::string::npos) << e;
  ConfigMap ssl_grpc = with(with(broker_only(), "listener.security.protocol.map", "GRPC:SSL,PLAINTEXT:PLAINTEXT"),
                            "ssl.keystore.location", "/k.pem");
  e = build_error(ssl_grpc);
  EXPECT_NE(e.find("ssl.truststore.location must name the CA"), std::string::npos) << e;
  e = build_error(with(ssl_grpc, "ssl.truststore.location", "/ca.pem"));
  EXPECT_NE(e.find("super.users must name the nodes' own principals"), std::string::npos) << e;
  build_ok(with(with(ssl_grpc, "ssl.truststore.location", "/ca.pem"), "super.users", "User:CN=node"));
  e = build_error(with(broker_only(), "listener.security.protocol.map", "GRPC:PLAINTEXT,PLAINTEXT:KERBEROS"));
  EXPECT_NE(e.find("protocols are PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL"), std::string::npos) << e;
  // Followers fetch over gRPC.
  e = build_error(with(with(broker_only(), "listeners", "PLAINTEXT://:9092,GRPC://:9192"),
                       "inter.broker.listener.name", "PLAINTEXT"));
  EXPECT_NE(e.find("must be the gRPC listener"), std::string::npos) << e;
}

// Kafka's security keys: SASL mechanisms, PEM-only TLS, and a keystore for every TLS listener.
TEST(ServerConfig, SecurityKeys) {
  ConfigMap m = with(broker_only(), "listeners", "SASL_SSL://:9093,SASL_PLAINTEXT://:9094,GRPC://:9192");
  std::string e = build_error(m);
  EXPECT_NE(e.find("ssl.keystore.location must name a PEM file"), std::string::npos) << e;
  m["ssl.keystore.location"] = "/etc/gannet/broker.pem";
  m["ssl.key.password"] = "k3y";
  m["ssl.client.auth"] = "Required";
  m["sasl.enabled.mechanisms"] = "scram-sha-512,PLAIN";
  ServerConfig c = build_ok(m);
  EXPECT_EQ(c.security_protocol("SASL_SSL"), "SASL_SSL");
  EXPECT_EQ(c.security_protocol("SASL_PLAINTEXT"), "SASL_PLAINTEXT");
  EXPECT_EQ(c.security_protocol("GRPC"), "PLAINTEXT");
  EXPECT_EQ(c.ssl_client_auth, "required");
  EXPECT_EQ(c.sasl_enabled_mechanisms, (std::vector<std::string>{"SCRAM-SHA-512", "PLAIN"}));
  EXPECT_EQ(c.kafka_listeners().size(), 2u);
  // Round trip, and the key's password never shows in the startup log.
  EXPECT_EQ(build_ok(c.to_properties()).to_properties(), c.to_properties());
  EXPECT_EQ(c.describe().find("k3y"), std::string::npos);
  EXPECT_NE(c.describe().find("ssl.key.password=[hidden]"), std::string::npos);
  EXPECT_EQ(c.ssl_principal_mapping_rules, "DEFAULT");
  EXPECT_EQ(build_ok(with(m, "ssl.principal.mapping.rules", "RULE:^CN=(.*)$/$1/L,DEFAULT")).ssl_principal_mapping_rules,
            "RULE:^CN=(.*)$/$1/L,DEFAULT");
  for (auto [key, value, why] : std::vector<std::tuple<const char*, const char*, const char*>>{
           {"ssl.principal.mapping.rules", "RULE:^CN=(.*$/$1/", "RULE pattern"},
           {"sasl.enabled.mechanisms", "GSSAPI", "mechanisms are PLAIN"},
           {"ssl.keystore.type", "JKS", "only PEM files"},
           {"ssl.client.auth", "maybe", "none, requested or required"},
           {"ssl.enabled.protocols", "TLSv1.1", "TLSv1.2 and TLSv1.3"}}) {
    e = build_error(with(m, key, value));
    EXPECT_NE(e.find(why), std::string::npos) << key << ": " << e;
  }
}

// Listeners nobody authenticates on, off loopback, are warned about; so is a PLAINTEXT gRPC
// listener beside ACLs.
TEST(ServerConfig, SecurityWarnings) {
  ServerConfig local = build_ok(with(broker_only(), "listeners", "PLAINTEXT://127.0.0.1:9092,GRPC://127.0.0.1:9192"));
  EXPECT_TRUE(local.security_warnings().empty());
  ServerConfig open = build_ok(with(broker_only(), "listeners", "PLAINTEXT://:9092,GRPC://10.0.0.1:9192"));
  ASSERT_EQ(open.security_warnings().size(), 2u);
  EXPECT_NE(open.security_warnings()[0].find("PLAINTEXT (PLAINTEXT) on every interface:9092 authenticates nobody"),
            std::string::npos) << open.security_warnings()[0];
  ConfigMap m = with(broker_only(), "listeners", "SASL_SSL://10.0.0.1:9093,GRPC://127.0.0.1:9192");
  m["ssl.keystore.location"] = "/k.pem";
  m["authorizer.class.name"] = "x";
  ServerConfig acl = build_ok(m);
  ASSERT_EQ(acl.security_warnings().size(), 1u);
  EXPECT_NE(acl.security_warnings()[0].find("bypass the ACLs"), std::string::npos);
  ServerConfig console = build_ok(with(with(broker_only(), "listeners", "PLAINTEXT://127.0.0.1:9092,GRPC://127.0.0.1:9192"),
                                       "metrics.http.listener", "0.0.0.0:9404"));
  ASSERT_EQ(console.security_warnings().size(), 1u);
  EXPECT_NE(console.security_warnings()[0].find("without authentication"), std::string::npos);
}

TEST(ServerConfig, EveryRequiredKeyMissing) {
  for (const ConfigMap& base : {combined(), broker_only(), controller_only()}) {
    for (const char* key :
         {"node.id", "process.roles", "controller.quorum.voters", "log.dirs"}) {
      std::string e = build_error(without(base, key));
      EXPECT_NE(e.find("missing required config " + std::string(key)), std::string::npos)
          << key << ": " << e;
    }
  }
  // Kafka's default for the voters is "", which is the same as unset.
  std::string e = build_error(with(combined(), "controller.quorum.voters", ""));
  EXPECT_NE(e.find("missing required config controller.quorum.voters"), std::string::npos) << e;
}

TEST(ServerConfig, LogDirAliasAndPrecedence) {
  ConfigMap m = without(combined(), "log.dirs");
  m["log.dir"] = "/single";
  EXPECT_EQ(build_ok(m).log_dirs, std::vector<std::string>{"/single"});
  m["log.dirs"] = " /a ,/b,  /c";
  ServerConfig c = build_ok(m);
  EXPECT_EQ(c.log_dirs, (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(c.extra.count("log.dir"), 0u);  // known, not extra
}

TEST(ServerConfig, LogDirsRules) {
  for (const char* bad : {"", "/a,,/b", "/a,", "/a,/b,/a"}) {
    std::string e = build_error(with(combined(), "log.dirs", bad));
    EXPECT_NE(e.find("log.dirs=" + std::string(bad) + ":"), std::string::npos) << e;
  }
  std::string e = build_error(with(without(combined(), "log.dirs"), "log.dir", ""));
  EXPECT_NE(e.find("log.dir=:"), std::string::npos) << e;
}

// ---- Roles -------------------------------------------------------------------------------------

TEST(ServerConfig, Roles) {
  ServerConfig both = build_ok(combined());
  EXPECT_TRUE(both.is_broker());
  EXPECT_TRUE(both.is_controller());
  ServerConfig broker = build_ok(broker_only());
  EXPECT_TRUE(broker.is_broker());
  EXPECT_FALSE(broker.is_controller());
  ServerConfig controller = build_ok(controller_only());
  EXPECT_FALSE(controller.is_broker());
  EXPECT_TRUE(controller.is_controller());
  // Order as given; whitespace allowed.
  ServerConfig reversed = build_ok(with(combined(), "process.roles", " controller , broker "));
  EXPECT_EQ(reversed.process_roles,
            (std::vector<ProcessRole>{ProcessRole::kController, ProcessRole::kBroker}));
}

TEST(ServerConfig, BadRoles) {
  struct Case {
    const char* value;
    const char* reason;
  };
  for (const Case& k : {Case{"", "must contain"}, Case{"broker,broker", "duplicate role"},
                        Case{"broker,controller,broker", "duplicate role"},
                        Case{"broker,observer", "unknown role 'observer'"},
                        Case{"Broker", "unknown role 'Broker'"},
                        Case{"broker,", "empty entry"}}) {
    std::string e = build_error(with(combined(), "process.roles", k.value));
    EXPECT_NE(e.find("process.roles=" + std::string(k.value) + ":"), std::string::npos) << e;
    EXPECT_NE(e.find(k.reason), std::string::npos) << e;
  }
}

TEST(ServerConfig, ControllerMustBeAVoter) {
  std::string e = build_error(with(combined(), "node.id", "7"));
  EXPECT_NE(e.find("node.id=7 is not in controller.quorum.voters="), std::string::npos) << e;
  e = build_error(with(controller_only(), "node.id", "9"));
  EXPECT_NE(e.find("node.id=9 is not in controller.quorum.voters"), std::string::npos) << e;
}

TEST(ServerConfig, BrokerOnlyMustNotBeAVoter) {
  std::string e = build_error(with(broker_only(), "node.id", "2"));
  EXPECT_NE(e.find("node.id=2 is in controller.quorum.voters"), std::string::npos) << e;
}

TEST(ServerConfig, ControllerListenerMustExist) {
  std::string e = build_error(with(combined(), "controller.listener.names", "RAFT"));
  EXPECT_NE(e.find("controller.listener.names=RAFT: no listener RAFT"), std::string::npos) << e;
  // Every name, not just one.
  e = build_error(with(combined(), "controller.listener.names", "CONTROLLER,RAFT"));
  EXPECT_NE(e.find("no listener RAFT"), std::string::npos) << e;
  // Names are case-insensitive, as Kafka normalises listener names.
  ServerConfig c = build_ok(with(combined(), "controller.listener.names", "controller"));
  EXPECT_EQ(c.controller_listener_names, std::vector<std::string>{"CONTROLLER"});
}

TEST(ServerConfig, ControllerListenerNamesRules) {
  for (const char* bad : {"", "CONTROLLER,CONTROLLER", "CONTROLLER,controller", "BAD NAME",
                          "A,,B"}) {
    std::string e = build_error(with(combined(), "controller.listener.names", bad));
    EXPECT_NE(e.find("controller.listener.names=" + std::string(bad) + ":"), std::string::npos)
        << e;
  }
}

TEST(ServerConfig, BrokerNeedsANonControllerListener) {
  std::string e =
      build_error(with(combined(), "listeners", "CONTROLLER://127.0.0.1:19091"));
  EXPECT_NE(e.find("a broker needs a listener not in controller.listener.names"),
            std::string::npos)
      << e;
}

TEST(ServerConfig, BrokerOnlyHasNoControllerListener) {
  std::string e = build_error(
      with(broker_only(), "listeners", "GRPC://127.0.0.1:9094,CONTROLLER://127.0.0.1:19094"));
  EXPECT_NE(e.find("controller listener CONTROLLER"), std::string::npos) << e;
  EXPECT_NE(e.find("process.roles=broker"), std::string::npos) << e;
}

TEST(ServerConfig, ControllerOnlyHasOnlyControllerListeners) {
  std::string e = build_error(
      with(controller_only(), "listeners", "CONTROLLER://127.0.0.1:19092,GRPC://127.0.0.1:9092"));
  EXPECT_NE(e.find("listener GRPC is not in controller.listener.names"), std::string::npos)
      << e;
}

// ---- Voters ------------------------------------------------------------------------------------

TEST(ServerConfig, VotersParse) {
  ServerConfig c = build_ok(with(
      combined(), "controller.quorum.voters",
      "1@127.0.0.1:19091, 2@host-b.example.com:19092 ,3@[::1]:19093,40@[fe80::1%eth0]:65535"));
  ASSERT_EQ(c.quorum_voters.size(), 4u);
  EXPECT_EQ(c.quorum_voters[0], (QuorumVoter{1, "127.0.0.1", 19091}));
  EXPECT_EQ(c.quorum_voters[1], (QuorumVoter{2, "host-b.example.com", 19092}));
  EXPECT_EQ(c.quorum_voters[2], (QuorumVoter{3, "::1", 19093}));
  EXPECT_EQ(c.quorum_voters[3], (QuorumVoter{40, "fe80::1%eth0", 65535}));
  EXPECT_EQ(c.quorum_voters[0].address(), "127.0.0.1:19091");
  EXPECT_EQ(c.quorum_voters[2].address(), "[::1]:19093");
  EXPECT_EQ(c.quorum_voters[2].to_string(), "3@[::1]:19093");
  EXPECT_EQ(c.quorum_voters[1].to_string(), "2@host-b.example.com:19092");
}

TEST(ServerConfig, BadVoters) {
  for (const char* bad : {
           "1@127.0.0.1",            // no port
           "1127.0.0.1:19091",       // no id
           "x@h:1",                  // id not a number
           "-1@h:1",                 // negative id
           "2147483648@h:1",         // id out of int32
           "@h:1",                   // empty id
           "1@:19091",               // empty host
           "1@h:0",                  // port 0 is not a real port for a peer
           "1@h:65536",              // port too high
           "1@h:99999999999",        // port far too high
           "1@h:",                   // empty port
           "1@h:9x",                 // junk port
           "1@h:-5",                 // negative port
           "1@h:9,1@g:10",           // duplicate id
           "1@h:9,,2@g:10",          // empty entry
           "1@::1:9",                // IPv6 without brackets
           "1@[::1:9",               // unclosed bracket
           "1@[]:9",                 // empty IPv6
           "1@bad host:9",           // space in host
       }) {
    std::string e = build_error(with(combined(), "controller.quorum.voters", bad));
    EXPECT_NE(e.find("controller.quorum.voters=" + std::string(bad) + ":"), std::string::npos)
        << bad << " -> " << e;
  }
}

// ---- Listeners ---------------------------------------------------------------------------------

TEST(ServerConfig, ListenersParse) {
  ServerConfig c = build_ok(with(with(
      combined(), "listeners",
      "grpc://127.0.0.1:9092, CONTROLLER://[::1]:19091,EXTERNAL://:0,replication://0.0.0.0:0"),
      "listener.security.protocol.map", "GRPC:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT,REPLICATION:plaintext"));
  ASSERT_EQ(c.listeners.size(), 4u);
  EXPECT_EQ(c.listeners[0], (Endpoint{"GRPC", "127.0.0.1", 9092}));
  EXPECT_EQ(c.listeners[1], (Endpoint{"CONTROLLER", "::1", 19091}));
  EXPECT_EQ(c.listeners[2], (Endpoint{"EXTERNAL", "", 0}));  // port 0: pick a free port
  EXPECT_EQ(c.listeners[3], (Endpoint{"REPLICATION", "0.0.0.0", 0}));
  EXPECT_EQ(c.listeners[1].address(), "[::1]:19091");
  EXPECT_EQ(c.listeners[1].to_string(), "CONTROLLER://[::1]:19091");
  EXPECT_EQ(c.listeners[2].address(), ":0");

  ASSERT_TRUE(c.listener("GRPC").has_value());
  EXPECT_EQ(c.listener("grpc")->port, 9092);
  EXPECT_EQ(c.listener("Controller")->host, "::1");
  EXPECT_FALSE(c.listener("nope").has_value());

  std::vector<Endpoint> broker = c.broker_listeners();
  ASSERT_EQ(broker.size(), 3u);
  EXPECT_EQ(broker[0].name, "GRPC");
  EXPECT_EQ(broker[1].name, "EXTERNAL");
  EXPECT_EQ(broker[2].name, "REPLICATION");
}

TEST(ServerConfig, ListenersMayShareAPortOnDistinctAddresses) {
  ServerConfig c = build_ok(with(combined(), "listeners",
                                 "GRPC://127.0.0.1:9092,CONTROLLER://127.0.0.2:9092"));
  EXPECT_EQ(c.listeners.size(), 2u);
}

TEST(ServerConfig, BadListeners) {
  for (const char* bad : {
           "",                                                       // none
           "CLIENT//127.0.0.1:9092,CONTROLLER://127.0.0.1:19091",    // no ://
           "://127.0.0.1:9092,CONTROLLER://127.0.0.1:19091",         // no name
           "BAD NAME://h:1,CONTROLLER://127.0.0.1:19091",            // space in name
           "GRPC://h,CONTROLLER://127.0.0.1:19091",                // no port
           "GRPC://h:65536,CONTROLLER://127.0.0.1:19091",          // port too high
           "GRPC://h:-1,CONTROLLER://127.0.0.1:19091",             // negative port
           "GRPC://h:1,grpc://h:2,CONTROLLER://127.0.0.1:19091",  // duplicate name
           "GRPC://127.0.0.1:19091,CONTROLLER://127.0.0.1:19091",  // same port, same host
           "GRPC://:19091,CONTROLLER://127.0.0.1:19091",           // wildcard overlaps
           "GRPC://0.0.0.0:19091,CONTROLLER://127.0.0.1:19091",    // wildcard overlaps
           "GRPC://::1:9092,CONTROLLER://127.0.0.1:19091",         // IPv6 without brackets
           "GRPC://127.0.0.1:9092,,CONTROLLER://127.0.0.1:19091",  // empty entry
       }) {
    std::string e = build_error(with(combined(), "listeners", bad));
    EXPECT_NE(e.find("listeners=" + std::string(bad) + ":"), std::string::npos)
        << bad << " -> " << e;
  }
}

// ---- Numbers and booleans ----------------------------------------------------------------------

TEST(ServerConfig, EveryKeyParsedAndMapped) {
  ConfigMap m = combined();
  m["cluster.id"] = "MkU3OEVBNTcwNTJENDM2Qk";
  m["broker.heartbeat.interval.ms"] = "500";
  m["broker.session.timeout.ms"] = "3000";
  m["controller.quorum.election.timeout.ms"] = "1500";
  m["controller.quorum.fetch.timeout.ms"] = "2500";
  m["controller.quorum.election.backoff.max.ms"] = "700";
  m["replica.lag.time.max.ms"] = "10000";
  m["num.partitions"] = "8";
  m["default.replication.factor"] = "3";
  m["min.insync.replicas"] = "2";
  m["unclean.leader.election.enable"] = "true";
  m["offsets.topic.num.partitions"] = "10";
  m["offsets.topic.replication.factor"] = "1";
  m["auto.create.topics.enable"] = "false";
  m["log.segment.bytes"] = "1048576";
  m["log.roll.ms"] = "60000";
  m["log.retention.ms"] = "86400000";
  m["log.retention.bytes"] = "1000000000";
  m["log.flush.interval.messages"] = "1000";
  m["log.flush.interval.ms"] = "50";
  m["log.index.interval.bytes"] = "1024";
  m["message.max.bytes"] = "2000000";
  ServerConfig c = build_ok(m);
  EXPECT_EQ(c.node_id, 1);
  EXPECT_EQ(c.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
  EXPECT_EQ(c.broker_heartbeat_interval_ms, 500);
  EXPECT_EQ(c.broker_session_timeout_ms, 3000);
  EXPECT_EQ(c.controller_quorum_election_timeout_ms, 1500);
  EXPECT_EQ(c.controller_quorum_fetch_timeout_ms, 2500);
  EXPECT_EQ(c.controller_quorum_election_backoff_max_ms, 700);
  EXPECT_EQ(c.replica_lag_time_max_ms, 10000);
  EXPECT_EQ(c.num_partitions, 8);
  EXPECT_EQ(c.default_replication_factor, 3);
  EXPECT_EQ(c.min_insync_replicas, 2);
  EXPECT_TRUE(c.unclean_leader_election_enable);
  EXPECT_EQ(c.offsets_topic_num_partitions, 10);
  EXPECT_EQ(c.offsets_topic_replication_factor, 1);
  EXPECT_FALSE(c.auto_create_topics_enable);
  const storage::LogConfig& lc = c.default_log_config;
  EXPECT_EQ(lc.segment_bytes, 1048576);
  EXPECT_EQ(lc.segment_ms, 60000);
  EXPECT_EQ(lc.retention_ms, 86400000);
  EXPECT_EQ(lc.retention_bytes, 1000000000);
  EXPECT_EQ(lc.flush_messages, 1000);
  EXPECT_EQ(lc.flush_ms, 50);
  EXPECT_EQ(lc.index_interval_bytes, 1024);
  EXPECT_EQ(lc.max_message_bytes, 2000000);
  EXPECT_TRUE(c.extra.empty());
}

TEST(ServerConfig, ValuesAreTrimmedAndJavaLenient) {
  ServerConfig c = build_ok(with(with(with(combined(), "num.partitions", "  7 "),
                                      "min.insync.replicas", "+2"),
                                 "unclean.leader.election.enable", " TRUE"));
  EXPECT_EQ(c.num_partitions, 7);
  EXPECT_EQ(c.min_insync_replicas, 2);
  EXPECT_TRUE(c.unclean_leader_election_enable);
  EXPECT_FALSE(build_ok(with(combined(), "auto.create.topics.enable", "False"))
                   .auto_create_topics_enable);
}

TEST(ServerConfig, BadValuesNameKeyAndValue) {
  struct Case {
    const char* key;
    const char* value;
  };
  for (const Case& k : {
           Case{"node.id", "-1"},
           Case{"node.id", "abc"},
           Case{"node.id", ""},
           Case{"node.id", "1.0"},
           Case{"node.id", "2147483648"},
           Case{"node.id", "99999999999999999999999"},
           Case{"node.id", "+-1"},
           Case{"node.id", "0x1"},
           Case{"broker.heartbeat.interval.ms", "0"},
           Case{"broker.session.timeout.ms", "0"},
           Case{"broker.session.timeout.ms", "2000"},  // not above the 2000 ms heartbeat
           Case{"controller.quorum.election.timeout.ms", "0"},
           Case{"controller.quorum.fetch.timeout.ms", "-3"},
           Case{"controller.quorum.election.backoff.max.ms", "0"},
           Case{"replica.lag.time.max.ms", "0"},
           Case{"num.partitions", "0"},
           Case{"num.partitions", "1.5"},
           Case{"default.replication.factor", "0"},
           Case{"default.replication.factor", "40000"},  // a replication factor is an int16
           Case{"min.insync.replicas", "0"},
           Case{"offsets.topic.num.partitions", "0"},
           Case{"offsets.topic.replication.factor", "0"},
           Case{"offsets.topic.replication.factor", "32768"},
           Case{"unclean.leader.election.enable", "yes"},
           Case{"unclean.leader.election.enable", "1"},
           Case{"unclean.leader.election.enable", ""},
           Case{"auto.create.topics.enable", "0"},
           Case{"cluster.id", ""},
           Case{"log.segment.bytes", "13"},
           Case{"log.segment.bytes", "2147483648"},  // Kafka's log.segment.bytes is an int
           Case{"log.roll.ms", "0"},
           Case{"log.roll.hours", "0"},
           Case{"log.retention.ms", "0"},
           Case{"log.retention.ms", "forever"},
           Case{"log.retention.minutes", "0"},
           Case{"log.retention.hours", "0"},
           Case{"log.retention.hours", "x"},
           Case{"log.retention.bytes", "1GB"},
           Case{"log.flush.interval.messages", "0"},
           Case{"log.flush.interval.ms", "-5"},
           Case{"log.index.interval.bytes", "-1"},
           Case{"message.max.bytes", "-1"},
       }) {
    std::string e = build_error(with(combined(), k.key, k.value));
    EXPECT_NE(e.find(std::string(k.key) + "=" + k.value + ":"), std::string::npos)
        << k.key << "=" << k.value << " -> " << e;
  }
}

TEST(ServerConfig, SessionTimeoutMustExceedHeartbeat) {
  std::string e = build_error(with(with(combined(), "broker.heartbeat.interval.ms", "5000"),
                                   "broker.session.timeout.ms", "4000"));
  EXPECT_NE(e.find("broker.session.timeout.ms=4000: must be greater than "
                   "broker.heartbeat.interval.ms=5000"),
            std::string::npos)
      << e;
}

// ---- Retention and roll precedence -------------------------------------------------------------

int64_t retention(const ConfigMap& extra_keys) {
  ConfigMap m = combined();
  for (const auto& [k, v] : extra_keys) m[k] = v;
  return build_ok(m).default_log_config.retention_ms;
}

TEST(ServerConfig, RetentionPrecedence) {
  constexpr int64_t kHour = 3600LL * 1000;
  EXPECT_EQ(retention({}), 168 * kHour);
  EXPECT_EQ(retention({{"log.retention.hours", "24"}}), 24 * kHour);
  EXPECT_EQ(retention({{"log.retention.minutes", "30"}}), 30LL * 60 * 1000);
  EXPECT_EQ(retention({{"log.retention.ms", "1234"}}), 1234);
  // ms over minutes over hours.
  EXPECT_EQ(retention({{"log.retention.hours", "24"}, {"log.retention.minutes", "30"}}),
            30LL * 60 * 1000);
  EXPECT_EQ(retention({{"log.retention.hours", "24"},
                       {"log.retention.minutes", "30"},
                       {"log.retention.ms", "1234"}}),
            1234);
  EXPECT_EQ(retention({{"log.retention.hours", "24"}, {"log.retention.ms", "1234"}}), 1234);
  // Negative means keep forever, whichever key says it.
  EXPECT_EQ(retention({{"log.retention.ms", "-1"}}), -1);
  EXPECT_EQ(retention({{"log.retention.ms", "-100"}}), -1);
  EXPECT_EQ(retention({{"log.retention.hours", "-1"}}), -1);
  EXPECT_EQ(retention({{"log.retention.minutes", "-1"}, {"log.retention.hours", "5"}}), -1);
  // A large hours value does not overflow.
  EXPECT_EQ(retention({{"log.retention.hours", "2147483647"}}), 2147483647LL * kHour);
  // A set key must parse even when a higher-precedence key overrides it.
  std::string e = build_error(with(with(combined(), "log.retention.ms", "1000"),
                                   "log.retention.hours", "soon"));
  EXPECT_NE(e.find("log.retention.hours=soon"), std::string::npos) << e;
  // 0 is refused, named by the key that produced it; a 0 that is overridden does not matter.
  e = build_error(with(with(combined(), "log.retention.minutes", "0"), "log.retention.hours", "5"));
  EXPECT_NE(e.find("log.retention.minutes=0: must be -1 (keep forever) or >= 1"),
            std::string::npos)
      << e;
  EXPECT_EQ(retention({{"log.retention.ms", "5"}, {"log.retention.minutes", "0"}}), 5);
}

TEST(ServerConfig, RetentionBytesNegativeIsNoLimit) {
  ServerConfig c = build_ok(with(combined(), "log.retention.bytes", "-7"));
  EXPECT_EQ(c.default_log_config.retention_bytes, storage::LogConfig::kNoLimit);
}

TEST(ServerConfig, RollPrecedence) {
  EXPECT_EQ(build_ok(with(combined(), "log.roll.hours", "2")).default_log_config.segment_ms,
            2LL * 3600 * 1000);
  EXPECT_EQ(build_ok(with(with(combined(), "log.roll.hours", "2"), "log.roll.ms", "900"))
                .default_log_config.segment_ms,
            900);
}

// Issue 14.7: node ids bound what the controller and the quorum keep per node (registrations,
// replica fetch state), so they have a range, Kafka's reserved.broker.max.id (default 1000).
TEST(ServerConfig, NodeIdsAreWithinReservedBrokerMaxId) {
  EXPECT_EQ(build_ok(combined()).reserved_broker_max_id, 1000);
  ConfigMap b = broker_only();
  b["node.id"] = "1001";
  std::string e = build_error(b);
  EXPECT_NE(e.find("reserved.broker.max.id"), std::string::npos) << e;
  EXPECT_EQ(build_ok(with(b, "reserved.broker.max.id", "5000")).node_id, 1001);
  e = build_error(with(combined(), "controller.quorum.voters", "1@127.0.0.1:19091,2000@127.0.0.1:19092"));
  EXPECT_NE(e.find("2000"), std::string::npos) << e;
  EXPECT_NE(e.find("reserved.broker.max.id"), std::string::npos) << e;
  e = build_error(with(combined(), "reserved.broker.max.id", "-1"));
  EXPECT_NE(e.find("reserved.broker.max.id"), std::string::npos) << e;
}

// Issue 14.10: 18 broker keys were read by gannetd from `extra` with std::stoll and no check: a
// bad value was a warning (or, for booleans, silently false) and a misspelled key went unnoticed.
// Every key is now typed and ranged here; a bad value is an error naming the key.
TEST(ServerConfig, TuningKeysAreTypedAndRanged) {
  ConfigMap m = combined();
  m["replica.fetch.wait.max.ms"] = "200";
  m["replica.fetch.max.bytes"] = "1048576";
  m["group.max.size"] = "10";
  m["group.max.groups"] = "50";
  m["fetch.max.bytes"] = "2048";
  m["fetch.response.memory.max.bytes"] = "1073741824";
  m["group.initial.rebalance.delay.ms"] = "0";
  m["offsets.retention.minutes"] = "60";
  m["auto.leader.rebalance.enable"] = "FALSE";
  m["leader.imbalance.check.interval.seconds"] = "7";
  m["broker.rack"] = "r1";
  m["replica.high.watermark.checkpoint.interval.ms"] = "1000";
  ServerConfig c = build_ok(m);
  EXPECT_TRUE(c.extra.empty()) << "known keys left for later layers";
  EXPECT_EQ(c.replica_fetch_wait_max_ms, 200);
  EXPECT_EQ(c.replica_fetch_max_bytes, 1 << 20);
  EXPECT_EQ(c.group_max_size, 10);
  EXPECT_EQ(c.group_max_groups, 50);
  EXPECT_EQ(c.fetch_max_bytes, 2048);
  EXPECT_EQ(c.fetch_response_memory_max_bytes, 1LL << 30);
  EXPECT_EQ(c.group_initial_rebalance_delay_ms, 0);
  EXPECT_EQ(c.offsets_retention_minutes, 60);
  EXPECT_FALSE(c.auto_leader_rebalance_enable);
  EXPECT_EQ(c.leader_imbalance_check_interval_seconds, 7);
  EXPECT_EQ(c.broker_rack, "r1");
  EXPECT_EQ(c.replica_high_watermark_checkpoint_interval_ms, 1000);
  EXPECT_EQ(build_ok(c.to_properties()).to_properties(), c.to_properties());
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"replica.fetch.max.bytes", "12"},
           {"replica.fetch.wait.max.ms", "-1"},
           {"replica.fetch.wait.max.ms", "99999999999"},
           {"group.max.size", "0"},
           {"group.max.groups", "0"},
           {"fetch.max.bytes", "57671680"},
           {"fetch.response.memory.max.bytes", "1000"},
           {"offsets.retention.minutes", "soon"},
           {"auto.leader.rebalance.enable", "yes"},
           {"group.max.session.timeout.ms", "500"},
           {"metadata.snapshot.every.records", "0"},
           {"broker.rack", ""}}) {
    const std::string e = build_error(with(combined(), k, v));
    EXPECT_NE(e.find(k), std::string::npos) << k << "=" << v << ": " << e;
  }
}

// ---- Unknown keys, describe, round trips -------------------------------------------------------

TEST(ServerConfig, UnknownKeysKeptInExtra) {
  ConfigMap m = combined();
  m["some.future.key"] = " raw value ";
  m["log.retention.hours"] = "10";
  m["log.dir"] = "/ignored-because-log.dirs-is-set";
  ServerConfig c = build_ok(m);
  EXPECT_EQ(c.extra, (ConfigMap{{"some.future.key", " raw value "}}));
}

TEST(ServerConfig, DescribeIsSortedKeyValueLines) {
  ConfigMap m = combined();
  m["zz.custom"] = "line1\nline2";
  m["aa.custom"] = " padded ";
  m["ssl.keystore.password"] = "hunter2";
  m["cluster.id"] = "abc";
  ServerConfig c = build_ok(m);
  std::string d = c.describe();
  EXPECT_NE(d.find("node.id=1\n"), std::string::npos) << d;
  EXPECT_NE(d.find("process.roles=broker,controller\n"), std::string::npos) << d;
  EXPECT_NE(d.find("listeners=GRPC://127.0.0.1:9092,CONTROLLER://127.0.0.1:19091\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("log.retention.ms=604800000\n"), std::string::npos) << d;
  EXPECT_NE(d.find("zz.custom=line1\\nline2\n"), std::string::npos) << d;
  EXPECT_NE(d.find("ssl.keystore.password=[hidden]\n"), std::string::npos) << d;
  EXPECT_EQ(d.find("hunter2"), std::string::npos) << d;

  // One key=value per line, keys strictly increasing.
  std::vector<std::string> keys;
  size_t pos = 0;
  while (pos < d.size()) {
    size_t nl = d.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    std::string line = d.substr(pos, nl - pos);
    size_t eq = line.find('=');
    ASSERT_NE(eq, std::string::npos) << line;
    keys.push_back(line.substr(0, eq));
    pos = nl + 1;
  }
  ASSERT_GT(keys.size(), 25u);
  for (size_t i = 1; i < keys.size(); ++i) EXPECT_LT(keys[i - 1], keys[i]);
  EXPECT_EQ(keys.front(), "aa.custom");
}

TEST(ServerConfig, DescribeParsesBackToTheSameConfig) {
  ConfigMap m = broker_only();
  m["listeners"] = "grpc://[::1]:0,OTHER://:9095";
  m["listener.security.protocol.map"] = "GRPC:PLAINTEXT,OTHER:PLAINTEXT";
  m["advertised.listeners"] = "OTHER://broker.example:19095";
  m["log.dirs"] = "/a b/c,/d";
  m["log.retention.minutes"] = "90";
  m["log.roll.hours"] = "3";
  m["weird key=x"] = "  tab\there, back\\slash, #hash  ";
  m["#starts.with.hash"] = "1";
  ServerConfig c = build_ok(m);
  auto reparsed = parse_properties(c.describe());
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(*reparsed, c.to_properties());
  ServerConfig again = build_ok(*reparsed);
  EXPECT_EQ(again.to_properties(), c.to_properties());
  EXPECT_EQ(again.listeners, c.listeners);
  EXPECT_EQ(again.quorum_voters, c.quorum_voters);
  EXPECT_EQ(again.extra, c.extra);
  EXPECT_EQ(again.default_log_config.retention_ms, 90LL * 60 * 1000);
  EXPECT_EQ(again.default_log_config.segment_ms, 3LL * 3600 * 1000);
}

}  // namespace
}  // namespace gannet::broker
