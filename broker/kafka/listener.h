// KafkaListener: Kafka's wire protocol on an event loop of our own (DESIGN.md, "Requests: one core,
// two front-ends").
//
//  - Threads: `io_threads` (num.network.threads) epoll loops, nothing else. The first also accepts.
//    A loop never blocks: it reads frames, hands each to KafkaApi (which calls the request core,
//    whose waits are parked), and writes answers; work that may block runs on the core's own pool.
//  - Per connection: requests are pipelined and answered in request order (a slot per request;
//    a completion fills its slot from any thread and wakes the connection's loop, which writes
//    the answers at the front that are complete). acks=0 produces get no answer. End of stream
//    from the client closes the connection at once: its parked requests (long polls, joins,
//    syncs) are cancelled and answers still owed are dropped, as a Kafka broker does.
//  - Bounds (Kafka's keys): a frame longer than socket.request.max.bytes closes the connection,
//    checked from the 4-byte size before anything is allocated; connections.max.idle.ms closes
//    connections idle that long; max.connections and max.connections.per.ip refuse more (the
//    socket is closed at once). A connection with kMaxUnansweredRequests requests unanswered, or
//    kMaxQueuedResponseBytes of answers unsent, is not read until they drain.
//  - Security (listener.security.protocol.map): SSL and SASL_SSL endpoints speak TLS (tls.h) on the
//    same loop: the handshake runs inside SSL_read as bytes arrive, a segment's bytes are read
//    into memory and encrypted (no sendfile), and an SSL_read or SSL_write that must wait for the
//    other direction arms that event. SASL_* endpoints require SASL before any other request
//    (Session in kafka_api.h).
//  - Memory per idle connection: its Connection object and socket buffers (stated in the README).
//
// start() sets SIGPIPE to be ignored, process-wide (a write to a socket its client closed must
// fail with EPIPE, not end the process).
//
// Lock discipline: each IoThread's `mu_` guards only its hand-off queues (new connections,
// connections with completed answers); each Connection's `mu_` guards only its answer slots.
// Neither is held while calling out. Everything else is the owning loop's alone.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/kafka/kafka_api.h"
#include "broker/kafka/tls.h"
#include "common/result.h"

namespace gannet::broker::kafka {

struct KafkaListenerOptions {
  struct Endpoint {
    std::string name;  // the listener's name (PLAINTEXT, ...)
    std::string host;  // bind address ("" or 0.0.0.0: every interface)
    int port = 0;      // 0: any free port (see port())
    // listener.security.protocol.map's entry: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    std::string protocol = "PLAINTEXT";
  };
  std::vector<Endpoint> endpoints;
  std::vector<std::string> sasl_mechanisms = {"SCRAM-SHA-256", "SCRAM-SHA-512"};  // sasl.enabled.mechanisms
  TlsOptions tls;  // for SSL and SASL_SSL endpoints
  int io_threads = 2;                                 // num.network.threads
  int32_t socket_request_max_bytes = 100 << 20;       // socket.request.max.bytes (Kafka's 104857600)
  int64_t connections_max_idle_ms = 600'000;          // connections.max.idle.ms
  int32_t max_connections = 100'000;                  // max.connections (Kafka: unbounded)
  int32_t max_connections_per_ip = 100'000;           // max.connections.per.ip (Kafka: unbounded)
  bool auto_create_topics = true;                     // auto.create.topics.enable
};

class KafkaListener {
 public:
  static constexpr size_t kMaxUnansweredRequests = 256;
  static constexpr size_t kMaxQueuedResponseBytes = 64 << 20;

  static Result<std::unique_ptr<KafkaListener>, std::string> start(KafkaListenerOptions options, RequestCore* core);
  ~KafkaListener();

  // The port listener `name` is bound to.
  int port(const std::string& name) const;
  // Open connections now.
  int64_t connections() const { return open_.load(); }
  // Prometheus text: per-API counters and durations, and the open connections.
  std::string metrics_text() const {
    return api_.metrics_text() +
           "# HELP gannet_kafka_connections Open connections on the Kafka listeners.\n"
           "# TYPE gannet_kafka_connections gauge\ngannet_kafka_connections " +
           std::to_string(open_.load()) + "\n";
  }
  // Closes every socket and joins the loops. Completions that come later are dropped.
  void stop();

  class IoThread;
  struct Connection;

 private:
  KafkaListener(KafkaListenerOptions options, RequestCore* core);
  bool admit(const std::string& ip);
  void release(const std::string& ip);
  friend class IoThread;

  const KafkaListenerOptions options_;
  KafkaApi api_;
  // Reloads the TLS context when the keystore or truststore file changed (at most once a second;
  // the accepting loop's): new connections get the new certificate, open ones keep theirs.
  void maybe_reload_tls();
  std::shared_ptr<SSL_CTX> tls_;  // set when an endpoint is SSL or SASL_SSL; the accepting loop's
  int64_t tls_checked_ms_ = 0;
  std::string tls_stamp_;         // the files' modification times and sizes when tls_ was built
  std::vector<std::shared_ptr<IoThread>> threads_;
  std::vector<int> listen_fds_;
  std::map<std::string, int> ports_;
  std::atomic<int64_t> open_{0};
  std::mutex ip_mu_;
  std::map<std::string, int32_t> per_ip_;  // with ip_mu_
  size_t next_thread_ = 0;                 // the accepting loop's
  bool stopped_ = false;
};

}  // namespace gannet::broker::kafka
