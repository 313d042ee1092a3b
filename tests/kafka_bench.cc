// kafka_bench: the Kafka listener's figures (issue 16) on a local cluster of three combined
// gannetd nodes, each beside its floor measured in the same run.
//
//   bazel build -c opt //tests:kafka_bench && ./bazel-bin/tests/kafka_bench \
//       [--records N] [--dir DIR] [--phase all|throughput|consume|zerocopy|latency|idle] [--output json]
//
//  - throughput: librdkafka (Debian's) produces N 1 KiB records, acks=1 to an RF=1 topic and
//    acks=all to an RF=3 topic, and consumes the RF=1 topic; beside `gannet perf produce` (gRPC,
//    our C++ client) with the same records in the same run.
//  - zerocopy: a fetch loop that does not decode records (it walks batch headers only) reads the
//    RF=1 topic through the Kafka listener, beside pread() of the same segment files.
//  - latency: a minimal client with one Produce in flight (one 100 B record), acks=1 RF=1 and
//    acks=all RF=3, beside the machine's blocking TCP round trip.
//  - idle: 10,000 connections to one broker, each after one ApiVersions: the broker's threads
//    and its resident memory per connection.
//  - security: librdkafka produce and consume through an SSL listener beside the PLAINTEXT one
//    (same records, same run) and the machine's AES-GCM rate; the cost of a connection's TLS
//    handshake and of its SASL SCRAM-SHA-512 / PLAIN authentication beside a plain connection's
//    first answer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/scram.h"
#include "storage/record_batch.h"
#include "testing/bench_harness.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/kafka_wire.h"

namespace gannet {
namespace {

using testing::loopback_round_trip;
using testing::p50_p99;

using Clock = std::chrono::steady_clock;
using testing::secs_since;

FILE* text_out = stdout;
testing::Figures figures;
void figure(const std::string& name, double value, const std::string& unit) {
  figures.emplace_back(name, value, unit);
  std::fprintf(text_out, "  %-62s %12.1f %s\n", name.c_str(), value, unit.c_str());
  std::fflush(text_out);
}

// ---- A minimal Kafka client: blocking socket, one request at a time --------------------------------

using testing::kafka_wire::put16;
using testing::kafka_wire::put32;
using testing::kafka_wire::put_str;

uint32_t get32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}
int64_t get64(const char* p) { return static_cast<int64_t>((uint64_t{get32(p)} << 32) | get32(p + 4)); }

int dial(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}
// Reads one answer into `buf` (reused); false on EOF.
bool read_answer(int fd, std::string* buf) {
  char size[4];
  size_t got = 0;
  while (got < 4) {
    ssize_t r = ::read(fd, size + got, 4 - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  const uint32_t n = get32(size);
  buf->resize(n);
  got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf->data() + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// ---- Floors ----------------------------------------------------------------------------------------

// One TCP stream on loopback: 1 MiB writes of `bytes` in all, read by another thread (what any
// network read path, zero copy or not, is bounded by here): bytes/s.
double loopback_stream(uint64_t bytes) {
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(ls, 1);
  ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread sender([&] {
    int c = ::accept(ls, nullptr, nullptr);
    std::vector<char> b(1 << 20, 'x');
    for (uint64_t sent = 0; sent < bytes;) {
      ssize_t w = ::write(c, b.data(), b.size());
      if (w <= 0) break;
      sent += static_cast<uint64_t>(w);
    }
    ::close(c);
  });
  int s = dial(ntohs(a.sin_port));
  std::vector<char> b(1 << 20);
  uint64_t got = 0;
  const auto t0 = Clock::now();
  for (;;) {
    ssize_t r = ::read(s, b.data(), b.size());
    if (r <= 0) break;
    got += static_cast<uint64_t>(r);
  }
  const double rate = static_cast<double>(got) / secs_since(t0);
  ::close(s);
  sender.join();
  ::close(ls);
  return rate;
}

// pread() of every segment file of `topic` on every node, 1 MiB at a time: bytes/s.
double pread_rate(testing::Cluster& c, const std::string& topic, uint64_t* bytes_out) {
  std::vector<std::string> files;
  for (int id : c.ids()) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(c.data_dir(id))) {
      const std::string p = e.path().string();
      if (p.find("/" + topic + "-") != std::string::npos && p.size() > 4 && p.substr(p.size() - 4) == ".log") {
        files.push_back(p);
      }
    }
  }
  std::vector<char> buf(1 << 20);
  uint64_t bytes = 0;
  const auto t0 = Clock::now();
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY);
    for (off_t off = 0;; off += static_cast<off_t>(buf.size())) {
      ssize_t r = ::pread(fd, buf.data(), buf.size(), off);
      if (r <= 0) break;
      bytes += static_cast<uint64_t>(r);
    }
    ::close(fd);
  }
  *bytes_out = bytes;
  return static_cast<double>(bytes) / secs_since(t0);
}

// ---- librdkafka -------------------------------------------------------------------------------------

rd_kafka_conf_t* conf(const std::vector<std::pair<std::string, std::string>>& kv) {
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : kv) {
    if (rd_kafka_conf_set(c, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "kafka_bench: %s=%s: %s\n", k.c_str(), v.c_str(), err);
    }
  }
  return c;
}

std::atomic<int64_t> delivered{0}, delivery_failed{0};
void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err) {
    delivery_failed.fetch_add(1);
  } else {
    delivered.fetch_add(1);
  }
}

// Records/s of librdkafka producing n records of `size` bytes, keyless, to `topic`.
using Kv = std::vector<std::pair<std::string, std::string>>;
double rdkafka_produce(const std::string& bootstrap, const std::string& topic, int64_t n, size_t size, const char* acks,
                       Kv extra = {}) {
  Kv kv = {{"bootstrap.servers", bootstrap},
           {"acks", acks},
           {"linger.ms", "5"},
           {"batch.size", "1000000"},
           {"queue.buffering.max.kbytes", "1048576"},
           {"queue.buffering.max.messages", "1000000"}};
  kv.insert(kv.end(), extra.begin(), extra.end());
  rd_kafka_conf_t* c = conf(kv);
  rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
  delivered = 0;
  delivery_failed = 0;
  std::string value(size, 'x');
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_VALUE(value.data(), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 10);
    }
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 300'000);
  const double secs = secs_since(t0);
  rd_kafka_destroy(rk);
  if (delivery_failed > 0) std::fprintf(stderr, "kafka_bench: %lld deliveries failed\n", static_cast<long long>(delivery_failed.load()));
  return static_cast<double>(delivered.load()) / secs;
}

// Records/s of a librdkafka consumer reading `partitions` of `topic` from the beginning until
// `n` records (no group).
double rdkafka_consume(const std::string& bootstrap, const std::string& topic, int partitions, int64_t n, Kv extra = {}) {
  Kv kv = {{"bootstrap.servers", bootstrap}, {"group.id", "kafka-bench"},
           {"enable.auto.commit", "false"}, {"fetch.max.bytes", "52428800"},
           {"max.partition.fetch.bytes", "8388608"}, {"queued.max.messages.kbytes", "262144"},
           {"queued.min.messages", "1000000"}};
  kv.insert(kv.end(), extra.begin(), extra.end());
  rd_kafka_conf_t* c = conf(kv);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  int64_t got = 0;
  const auto t0 = Clock::now();
  // Batches off the consumer queue (librdkafka's cheapest way to take messages).
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> batch(10'000);
  while (got < n && secs_since(t0) < 300) {
    const ssize_t k = rd_kafka_consume_batch_queue(q, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < k; ++i) {
      if (!batch[i]->err) ++got;
      rd_kafka_message_destroy(batch[i]);
    }
  }
  rd_kafka_queue_destroy(q);
  const double secs = secs_since(t0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return static_cast<double>(got) / secs;
}

// ---- Security --------------------------------------------------------------------------------------

// The machine's AES-128-GCM encryption rate (what TLS's bulk cost is bounded by): bytes/s.
double aes_gcm_rate() {
  std::string in(16 << 20, 'x'), out(in.size() + 64, '\0');
  unsigned char key[16] = {1}, iv[12] = {2};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const auto t0 = Clock::now();
  uint64_t done = 0;
  while (secs_since(t0) < 1.0) {
    int n = 0;
    EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key, iv);
    EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                      reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    done += in.size();
  }
  const double secs = secs_since(t0);
  EVP_CIPHER_CTX_free(ctx);
  return static_cast<double>(done) / secs;
}

// Mean microseconds to connect and finish a TLS handshake with the SSL listener on `port`.
double tls_handshake_us(int port, const std::string& ca, int n) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const auto t0 = Clock::now();
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    int fd = dial(port);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) ++ok;
    SSL_free(ssl);
    ::close(fd);
  }
  const double us = secs_since(t0) * 1e6 / n;
  SSL_CTX_free(ctx);
  if (ok != n) std::fprintf(stderr, "kafka_bench: %d of %d TLS handshakes failed\n", n - ok, n);
  return us;
}

// Mean microseconds for a new connection to authenticate with SASL `mechanism` on `port`
// (SaslHandshake v1 and SaslAuthenticate v1, one request at a time), or, with an empty mechanism,
// to get its first ApiVersions answer.
double sasl_connection_us(int port, const std::string& mechanism, const std::string& user, const std::string& password,
                          int n) {
  auto authenticate = [](int fd, int32_t corr, const std::string& token, std::string* buf) -> std::optional<std::string> {
    std::string body;
    testing::kafka_wire::put32(body, static_cast<int32_t>(token.size()));
    body += token;
    if (!write_all(fd, testing::kafka_wire::frame(36, 1, corr, body)) || !read_answer(fd, buf)) return std::nullopt;
    // correlation(4) error(2) message(2+) bytes(4+)
    const char* p = buf->data() + 4;
    if (buf->size() < 12 || p[0] != 0 || p[1] != 0) return std::nullopt;
    const int16_t ml = static_cast<int16_t>((static_cast<uint8_t>(p[2]) << 8) | static_cast<uint8_t>(p[3]));
    const size_t at = 8 + (ml > 0 ? ml : 0);
    if (buf->size() < at + 4) return std::nullopt;
    const uint32_t bl = get32(buf->data() + at);
    return buf->substr(at + 4, bl);
  };
  std::string buf;
  int ok = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    int fd = dial(port);
    if (fd < 0) continue;
    bool good = false;
    if (mechanism.empty()) {
      good = write_all(fd, testing::kafka_wire::frame(18, 0, 1, "")) && read_answer(fd, &buf);
    } else {
      std::string hs;
      testing::kafka_wire::put_str(hs, mechanism);
      if (write_all(fd, testing::kafka_wire::frame(17, 1, 1, hs)) && read_answer(fd, &buf)) {
        if (mechanism == "PLAIN") {
          good = authenticate(fd, 2, std::string("\0", 1) + user + std::string("\0", 1) + password, &buf).has_value();
        } else {
          scram::ScramClient client(scram::mechanism_from_name(mechanism), user, password);
          auto first = authenticate(fd, 2, client.client_first(), &buf);
          auto fin = first ? client.client_final(*first) : std::nullopt;
          auto last = fin ? authenticate(fd, 3, *fin, &buf) : std::nullopt;
          good = last && client.server_final(*last);
        }
      }
    }
    ok += good ? 1 : 0;
    ::close(fd);
  }
  const double us = secs_since(t0) * 1e6 / n;
  if (ok != n) std::fprintf(stderr, "kafka_bench: %d of %d %s connections failed\n", n - ok, n, mechanism.c_str());
  return us;
}

// `gannet perf produce` (gRPC, our C++ client): records/s.
double grpc_perf_produce(const std::string& bootstrap, const std::string& topic, int64_t n, size_t size, const char* acks) {
  auto r = testing::gannet_cli({"perf", "produce", topic, "--num-records", std::to_string(n), "--record-size",
                                std::to_string(size), "--acks", acks, "--output", "json", "--bootstrap-server", bootstrap});
  auto j = testing::parse_json(r.out);
  if (r.code != 0 || !j) {
    std::fprintf(stderr, "kafka_bench: gannet perf produce failed:%s\n", r.dump().c_str());
    return 0;
  }
  return testing::field(*j, "records_per_sec").number_value();
}

// ---- Zero copy: a fetch loop that reads batch headers only ------------------------------------------

// Reads every batch of partitions 0..parts-1 of `topic` (Fetch v11 through the Kafka listener of
// `port`, which must lead them all or answer NOT_LEADER) until `total` bytes of batches: bytes/s.
double fetch_loop(int port, const std::string& topic, int parts, uint64_t total, uint64_t* got_out) {
  int fd = dial(port);
  std::vector<int64_t> offsets(parts, 0);
  std::string buf;
  uint64_t got = 0;
  int32_t corr = 0;
  const auto t0 = Clock::now();
  while (got < total && secs_since(t0) < 120) {
    const std::string body = testing::kafka_wire::fetch_v11(topic, offsets, 0, 64 << 20, 16 << 20);
    if (!write_all(fd, testing::kafka_wire::frame(1, 11, ++corr, body)) || !read_answer(fd, &buf)) break;
    // correlation(4) throttle(4) error(2) session(4) topics(4), then the topic's name (2 + n)
    // and its partition count (4).
    size_t at = 4 + 4 + 2 + 4 + 4;
    const uint16_t name_len = static_cast<uint16_t>((static_cast<uint8_t>(buf[at]) << 8) | static_cast<uint8_t>(buf[at + 1]));
    at += 2 + name_len;
    const uint32_t n = get32(buf.data() + at);
    at += 4;
    bool progress = false;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t p = get32(buf.data() + at);
      at += 4 + 2 + 8 + 8 + 8;  // partition, error, hw, lso, log start
      at += 4;                  // aborted transactions (empty)
      at += 4;                  // preferred read replica
      const uint32_t len = get32(buf.data() + at);
      at += 4;
      // Walk the batch headers: base offset (8), length (4), ..., last offset delta at 23.
      size_t b = at;
      while (b + 27 <= at + len) {
        const int64_t base = get64(buf.data() + b);
        const uint32_t blen = get32(buf.data() + b + 8);
        if (b + 12 + blen > at + len) break;
        const int32_t delta = static_cast<int32_t>(get32(buf.data() + b + 23));
        offsets[p] = base + delta + 1;
        got += 12 + blen;
        b += 12 + blen;
        progress = true;
      }
      at += len;
    }
    if (!progress) break;
  }
  const double secs = secs_since(t0);
  ::close(fd);
  *got_out = got;
  return static_cast<double>(got) / secs;
}

// ---- Latency: one Produce in flight ------------------------------------------------------------------

std::pair<double, double> produce_latency(int port, const std::string& topic, int16_t acks, int n) {
  storage::RecordBatchBuilder builder;
  builder.add(0, std::nullopt, std::string(100, 'x'));
  const std::string batch = builder.build().value();
  int fd = dial(port);
  std::string buf;
  std::vector<int64_t> us;
  for (int i = 0; i < n; ++i) {
    std::string body;
    put16(body, -1);  // transactional_id: null
    put16(body, acks);
    put32(body, 30'000);
    put32(body, 1);
    put_str(body, topic);
    put32(body, 1);
    put32(body, 0);
    put32(body, static_cast<int32_t>(batch.size()));
    body += batch;
    const std::string req = testing::kafka_wire::frame(0, 7, i, body);
    const auto t0 = Clock::now();
    if (!write_all(fd, req) || !read_answer(fd, &buf)) break;
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  ::close(fd);
  return p50_p99(us);
}

int64_t proc_status(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(key, 0) == 0) return std::stoll(l.substr(std::strlen(key)));
  }
  return -1;
}

int run(int argc, char** argv) {
  // 1 GiB of 1 KiB records: with fewer, a client's start (metadata, connections, the first
  // fetches) is a visible share of the time (200,000 records: librdkafka consumed at 280 MB/s).
  int64_t records = 1'000'000;
  std::string phase = "all";
  std::string dir = "/tmp/gannet-kafka-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--records") records = std::stoll(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--phase") phase = argv[i + 1];
    if (a == "--output" && std::string(argv[i + 1]) == "json") text_out = stderr;
  }
  auto want = [&](const char* p) { return phase == "all" || phase == p; };
  // Room for 10,000 connections in this process and in the brokers it starts (they inherit it).
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
  setrlimit(RLIMIT_NOFILE, &rl);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  setenv("TEST_TMPDIR", dir.c_str(), 1);
  // A CA and the brokers' certificate, for the SSL and SASL listeners of the security phase.
  const std::string certs = dir + "/certs";
  std::filesystem::create_directories(certs);
  const std::string make_certs =
      "set -e; cd " + certs + "; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null; "
      "openssl req -newkey rsa:2048 -nodes -keyout b.key -out b.csr -subj /CN=localhost 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext; "
      "openssl x509 -req -in b.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out b.crt -days 2 -extfile san.ext 2>/dev/null; "
      "cat b.key b.crt > broker.pem";
  if (std::system(("bash -c " + testing::shell_quote(make_certs)).c_str()) != 0) {
    std::fprintf(stderr, "kafka_bench: openssl could not make the certificates\n");
    return 1;
  }
  testing::Cluster c(3,
                     "log.retention.check.interval.ms=5000\nsasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n"
                     "ssl.keystore.location=" + certs + "/broker.pem\nssl.truststore.location=" + certs + "/ca.pem\n",
                     0, {"SSL", "SASL_PLAINTEXT"});
  c.start_all();
  if (!c.wait_unfenced({1, 2, 3}, std::chrono::seconds(60))) {
    std::fprintf(stderr, "kafka_bench: the cluster did not come up\n");
    return 1;
  }
  c.create("rf1", 3, 1);
  c.create("grpc1", 3, 1);
  c.create("rf3", 3, 3, {{"min.insync.replicas", "2"}});
  c.create("grpc3", 3, 3, {{"min.insync.replicas", "2"}});
  c.create("zc", 3, 1);
  c.create("lat1", 1, 1);
  c.create("lat3", 1, 3, {{"min.insync.replicas", "2"}});
  c.create("sec-plain", 3, 1);
  c.create("sec-tls", 3, 1);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string kb = c.kafka_bootstrap();
  std::fprintf(text_out, "kafka_bench: 3 combined nodes on loopback; clients in this process (2 cores shared)\n");

  // First, on fresh brokers: after the other phases the allocator reuses their freed memory and
  // the connections' cost does not show in the resident size.
  if (want("idle")) {
    const pid_t pid = c.pid(1);
    const int64_t threads0 = proc_status(pid, "Threads:"), rss0 = proc_status(pid, "VmRSS:");
    std::vector<int> fds;
    std::string buf;
    const int kConnections = 10'000;
    for (int i = 0; i < kConnections; ++i) {
      int fd = dial(c.kafka_port(1));
      if (fd < 0) break;
      if (!write_all(fd, testing::kafka_wire::frame(18, 0, i, "")) || !read_answer(fd, &buf)) {
        ::close(fd);
        break;
      }
      fds.push_back(fd);
      if ((i + 1) % 2000 == 0) std::fprintf(stderr, "  %d connections open\n", i + 1);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const int64_t threads1 = proc_status(pid, "Threads:"), rss1 = proc_status(pid, "VmRSS:");
    figure("idle Kafka connections open to broker 1", static_cast<double>(fds.size()), "connections");
    figure("  broker threads before", static_cast<double>(threads0), "threads");
    figure("  broker threads with them open", static_cast<double>(threads1), "threads");
    figure("  broker resident memory per connection",
           fds.empty() ? 0 : static_cast<double>(rss1 - rss0) * 1024 / static_cast<double>(fds.size()), "bytes");
    for (int fd : fds) ::close(fd);
  }
  if (want("throughput")) {
    const double k1 = rdkafka_produce(kb, "rf1", records, 1024, "1");
    const double g1 = grpc_perf_produce(c.bootstrap(), "grpc1", records, 1024, "1");
    figure("librdkafka produce 1 KiB, acks=1 RF=1 (Kafka listener)", k1 * 1024 / 1e6, "MB/s");
    figure("  beside: gannet perf produce, same records (gRPC)", g1 * 1024 / 1e6, "MB/s");
    const double k3 = rdkafka_produce(kb, "rf3", records, 1024, "all");
    const double g3 = grpc_perf_produce(c.bootstrap(), "grpc3", records, 1024, "all");
    figure("librdkafka produce 1 KiB, acks=all RF=3 (Kafka listener)", k3 * 1024 / 1e6, "MB/s");
    figure("  beside: gannet perf produce, same records (gRPC)", g3 * 1024 / 1e6, "MB/s");
    const double kc = rdkafka_consume(kb, "rf1", 3, records);
    figure("librdkafka consume 1 KiB, RF=1 from the beginning", kc * 1024 / 1e6, "MB/s");
    auto gc = testing::gannet_cli({"perf", "consume", "grpc1", "--num-records", std::to_string(records), "--output", "json",
                                   "--bootstrap-server", c.bootstrap()});
    auto gj = testing::parse_json(gc.out);
    const double gcr = gj && gc.code == 0 ? testing::field(*gj, "records_per_sec").number_value() : 0;
    if (!gj) std::fprintf(stderr, "kafka_bench: gannet perf consume failed:%s\n", gc.dump().c_str());
    figure("  beside: gannet perf consume, same records (gRPC)", gcr * 1024 / 1e6, "MB/s");
  }
  if (phase == "consume") {  // for profiling: the consume alone
    rdkafka_produce(kb, "rf1", records, 1024, "1");
    std::fprintf(text_out, "  consuming...\n");
    std::fflush(text_out);
    const double kc = rdkafka_consume(kb, "rf1", 3, records);
    figure("librdkafka consume 1 KiB, RF=1 from the beginning", kc * 1024 / 1e6, "MB/s");
  }
  if (want("zerocopy")) {
    // The topic's three partitions, each led by some broker: fetch each from its leader.
    rdkafka_produce(kb, "zc", records, 1024, "1");
    uint64_t file_bytes = 0;
    const double floor = pread_rate(c, "zc", &file_bytes);
    // Each broker serves the partitions it leads (the others answer NOT_LEADER, no records).
    uint64_t got = 0;
    double secs = 0;
    for (int id : c.ids()) {
      uint64_t g = 0;
      const double r = fetch_loop(c.kafka_port(id), "zc", 3, file_bytes, &g);
      got += g;
      if (g > 0) secs += static_cast<double>(g) / r;
    }
    const double best = secs > 0 ? static_cast<double>(got) / secs : 0;
    const double stream = loopback_stream(4ull << 30);
    figure("machine: pread() of the topic's segment files (1 MiB reads)", floor / 1e6, "MB/s");
    figure("machine: one loopback TCP stream (1 MiB writes and reads)", stream / 1e6, "MB/s");
    figure("fetch loop through the Kafka listener, batches not decoded", best / 1e6, "MB/s");
    figure("  ratio to pread()", best / floor, "x");
    figure("  ratio to the loopback TCP stream", best / stream, "x");
    figure("  bytes fetched (all leaders) / segment bytes", static_cast<double>(got) / static_cast<double>(file_bytes), "x");
  }
  if (want("latency")) {
    auto [tp50, tp99] = loopback_round_trip(5000);
    figure("machine: loopback TCP round trip (blocking) p50", tp50, "us");
    figure("machine: loopback TCP round trip (blocking) p99", tp99, "us");
    auto leader_of = [&](const std::string& t) {
      auto md = c.metadata({t});
      return md.topics(0).partitions(0).leader();
    };
    auto [a1p50, a1p99] = produce_latency(c.kafka_port(leader_of("lat1")), "lat1", 1, 5000);
    figure("1 Produce in flight, acks=1 RF=1 p50", a1p50, "us");
    figure("1 Produce in flight, acks=1 RF=1 p99", a1p99, "us");
    figure("  p50 / TCP round trip p50", a1p50 / tp50, "x");
    figure("  p99 / TCP round trip p99", a1p99 / tp99, "x");
    auto [a3p50, a3p99] = produce_latency(c.kafka_port(leader_of("lat3")), "lat3", -1, 5000);
    figure("1 Produce in flight, acks=all RF=3 p50", a3p50, "us");
    figure("1 Produce in flight, acks=all RF=3 p99", a3p99, "us");
  }
  if (want("security")) {
    const Kv tls = {{"security.protocol", "SSL"}, {"ssl.ca.location", certs + "/ca.pem"}};
    const int64_t n = records / 2;
    const double aes = aes_gcm_rate();
    const double pp = rdkafka_produce(kb, "sec-plain", n, 1024, "1");
    const double tp = rdkafka_produce(c.kafka_bootstrap("SSL"), "sec-tls", n, 1024, "1", tls);
    figure("machine: AES-128-GCM encryption, one core", aes / 1e6, "MB/s");
    figure("librdkafka produce 1 KiB acks=1 RF=1, PLAINTEXT listener", pp * 1024 / 1e6, "MB/s");
    figure("librdkafka produce 1 KiB acks=1 RF=1, SSL listener", tp * 1024 / 1e6, "MB/s");
    figure("  TLS / plaintext", tp / pp, "x");
    const double pc = rdkafka_consume(kb, "sec-plain", 3, n);
    const double tc = rdkafka_consume(c.kafka_bootstrap("SSL"), "sec-tls", 3, n, tls);
    figure("librdkafka consume 1 KiB, PLAINTEXT listener", pc * 1024 / 1e6, "MB/s");
    figure("librdkafka consume 1 KiB, SSL listener (no sendfile: read and encrypted)", tc * 1024 / 1e6, "MB/s");
    figure("  TLS / plaintext", tc / pc, "x");
    auto u = testing::gannet_cli({"user", "create", "bench", "--password", "bench-pw", "--mechanism", "SCRAM-SHA-512",
                                  "--bootstrap-server", c.bootstrap()});
    if (u.code != 0) std::fprintf(stderr, "kafka_bench: gannet user create failed:%s\n", u.dump().c_str());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const int kConns = 300;
    const double plain_us = sasl_connection_us(c.kafka_port(1), "", "", "", kConns);
    const double tls_us = tls_handshake_us(c.kafka_port(1, "SSL"), certs + "/ca.pem", kConns);
    const double scram_us = sasl_connection_us(c.kafka_port(1, "SASL_PLAINTEXT"), "SCRAM-SHA-512", "bench", "bench-pw", kConns);
    const double plain_sasl_us = sasl_connection_us(c.kafka_port(1, "SASL_PLAINTEXT"), "PLAIN", "bench", "bench-pw", kConns);
    figure("new connection + first answer (ApiVersions), PLAINTEXT", plain_us, "us");
    figure("new connection + TLS handshake (TLS 1.3, RSA-2048)", tls_us, "us");
    figure("new connection + SASL SCRAM-SHA-512 (4096 iterations)", scram_us, "us");
    figure("new connection + SASL PLAIN (checked against SCRAM-SHA-512)", plain_sasl_us, "us");
  }
  if (text_out == stderr) testing::print_figures_json(figures);
  return 0;
}

}  // namespace
}  // namespace gannet

int main(int argc, char** argv) {
  gannet::testing::use_runfiles_beside_binary();
  return gannet::run(argc, argv);
}
