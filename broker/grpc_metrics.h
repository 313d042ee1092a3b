// GrpcMetrics: per-method counts and durations of the broker's gRPC server, kept by a server
// interceptor (gRPC's experimental interceptor API) and rendered as Prometheus text for the
// metrics listener. A call is timed from when gRPC starts it to when its status is sent; a non-OK
// gRPC status counts as an error (Kafka-numbered errors travel inside OK answers and are not
// counted here). At most kMaxMethods method names are kept; calls to names past that (a client
// inventing them) count under method="other", so memory stays bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/support/server_interceptor.h>

#include "broker/latency_histogram.h"

namespace gannet::broker {

class GrpcMetrics {
 public:
  static constexpr size_t kMaxMethods = 128;

  // The factory to give ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor_factory();
  void observe(const std::string& method, std::chrono::steady_clock::duration took, bool error);
  std::string metrics_text() const;

 private:
  struct Method {
    std::atomic<uint64_t> calls{0}, errors{0};
    LatencyHistogram latency;
  };
  Method* method(const std::string& name);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Method>> methods_;  // never shrinks; at most kMaxMethods + 1
};

}  // namespace gannet::broker
