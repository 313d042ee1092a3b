// KafkaApi: Kafka's request and response layouts, decoded into the request core's messages and
// encoded from its answers (DESIGN.md, "Requests: one core, two front-ends"). Transport-free: the
// listener (listener.h) hands it whole request frames and sends what it answers.
//
// The layouts follow Kafka's message definitions (clients/src/main/resources/common/message/*.json
// in Apache Kafka), read for the facts; the codecs are ours. Only the version ranges in
// supported_apis() are accepted; of those, ApiVersions 3, IncrementalAlterConfigs 1 and
// DescribeCluster 0 are flexible (KIP-482: compact types, tagged fields, request header v2).
//
// Errors: an unknown API key, an unsupported version (other than ApiVersions') or a request that
// does not decode closes the connection, as Kafka does; an unsupported ApiVersions version gets a
// v0 answer with UNSUPPORTED_VERSION and the supported ranges (KIP-511).
#pragma once

#include <array>
#include <atomic>
#include <chrono>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "broker/latency_histogram.h"
#include "broker/request_core.h"

namespace gannet::broker::kafka {

struct ApiRange {
  int16_t key;
  int16_t min_version;
  int16_t max_version;
  int16_t first_flexible;  // the first flexible version (request header v2, response header v1)
  const char* name;
};
// Every API this broker answers, with the versions it advertises.
const std::vector<ApiRange>& supported_apis();
const ApiRange* find_api(int16_t key);

struct RequestHeader {
  int16_t api_key = -1;
  int16_t api_version = -1;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// A piece of an answer: bytes, or a range of a segment file sent with sendfile (zero copy).
struct Chunk {
  std::string bytes;
  std::shared_ptr<storage::File> file;  // set: `size` bytes of it from `position`
  uint64_t position = 0;
  uint64_t size = 0;
  std::shared_ptr<void> keep;  // held until this chunk is sent or dropped (a fetch's budget)
  uint64_t length() const { return file ? size : bytes.size(); }
};

// What becomes of one request frame.
struct Answer {
  enum Kind { kRespond, kNoResponse, kClose } kind = kRespond;
  std::vector<Chunk> chunks;  // kRespond: the response (header and body), without the 4-byte size
  std::string reason;         // kClose: why, for the log
  bool close_after = false;   // kRespond: close the connection once this answer is written
};

// One connection's identity: SASL on SASL_PLAINTEXT and SASL_SSL listeners (SaslHandshake, then
// SaslAuthenticate, or the raw tokens of SaslHandshake v0), or the client certificate on SSL
// ones. Until SASL has finished, only ApiVersions, SaslHandshake and SaslAuthenticate are
// answered; any other request closes the connection, as Kafka does. A failed authentication is
// answered (SASL_AUTHENTICATION_FAILED) and the connection closed. Touched only by the thread
// that hands the connection's frames to KafkaApi::handle(), in order, so it needs no lock.
struct Session {
  enum class Sasl { kHandshake, kAuthenticate, kRawTokens, kDone };
  bool sasl = false;                    // the listener requires SASL
  std::vector<std::string> mechanisms;  // sasl.enabled.mechanisms
  Sasl state = Sasl::kHandshake;
  std::string mechanism;                // chosen by SaslHandshake
  std::shared_ptr<void> exchange;       // the SCRAM exchange under way (a scram::ScramServer)
  std::string principal = "User:ANONYMOUS";  // User:<name> after SASL; User:<DN> from a certificate
  bool authenticated() const { return !sasl || state == Sasl::kDone; }
};

// The parked requests of one connection, dropped when it closes (a client gone is not waited
// for). A token is reserved before the core is called, released when the answer comes, and armed
// with the cancel once the core has returned it; whichever of release and arm comes second wins.
class Cancels {
 public:
  uint64_t reserve() {
    std::lock_guard<std::mutex> l(mu_);
    return next_++;
  }
  void arm(uint64_t token, std::function<void()> cancel) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (released_.erase(token) || !cancel) return;  // already answered, or nothing parked
      if (!closed_) {
        armed_[token] = std::move(cancel);
        return;
      }
    }
    cancel();  // the connection closed while the request was being parked
  }
  void release(uint64_t token) {
    std::lock_guard<std::mutex> l(mu_);
    if (!armed_.erase(token)) released_.insert(token);
  }
  void cancel_all() {
    std::map<uint64_t, std::function<void()>> armed;
    {
      std::lock_guard<std::mutex> l(mu_);
      closed_ = true;
      armed.swap(armed_);
    }
    for (auto& [t, cancel] : armed) cancel();
  }

 private:
  std::mutex mu_;
  bool closed_ = false;
  uint64_t next_ = 1;
  std::map<uint64_t, std::function<void()>> armed_;
  std::set<uint64_t> released_;  // answered before they were armed
};

struct ConnectionInfo {
  std::string listener;     // the listener's name: Metadata describes brokers by their endpoint on it
  std::string client_host;  // the peer's address
  bool auto_create_topics = true;  // auto.create.topics.enable
  int32_t default_partitions = -1;  // what an auto-created topic gets (-1: the cluster's num.partitions)
  std::shared_ptr<Cancels> cancels;  // null: nothing is cancelled
  std::shared_ptr<Session> session;  // null: a PLAINTEXT listener's anonymous connection
};

class KafkaApi {
 public:
  explicit KafkaApi(RequestCore* core) : core_(core) {}

  // Parses the request header only (for the log and for ordering); false when the frame is too
  // short to hold one.
  static bool parse_header(const std::string& frame, RequestHeader* header, size_t* body_offset);

  // Handles one request frame (without its size). `answer` runs exactly once, on this thread or
  // on whichever completes the request; the frame's bytes are not used after handle() returns.
  void handle(std::string frame, const ConnectionInfo& conn, std::function<void(Answer)> answer);

  // Per API: requests answered, connections closed for one, and the time from a request's frame
  // to its answer, as Prometheus text (counters and a histogram; the metrics listener serves it).
  std::string metrics_text() const;

 private:
  static constexpr int kMaxApiKey = 128;
  struct ApiStats {
    std::atomic<uint64_t> answered{0};
    std::atomic<uint64_t> closed{0};  // answered by closing the connection (a refused request)
    LatencyHistogram latency;
  };
  void observe(int16_t key, std::chrono::steady_clock::duration took, bool closed);

  RequestCore* const core_;
  std::array<ApiStats, kMaxApiKey> stats_;
};

}  // namespace gannet::broker::kafka
