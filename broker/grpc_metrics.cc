#include "broker/grpc_metrics.h"

#include <cstdio>

namespace gannet::broker {

namespace {

constexpr double kBounds[GrpcMetrics::kBuckets] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};

class Interceptor : public grpc::experimental::Interceptor {
 public:
  Interceptor(GrpcMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), method_(info->method() ? info->method() : ""), start_(std::chrono::steady_clock::now()) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->observe(method_, std::chrono::steady_clock::now() - start_, !m->GetSendStatus().ok());
    }
    m->Proceed();
  }

 private:
  GrpcMetrics* const metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(GrpcMetrics* m) : m_(m) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new Interceptor(m_, info);
  }

 private:
  GrpcMetrics* const m_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> GrpcMetrics::interceptor_factory() {
  return std::make_unique<Factory>(this);
}

GrpcMetrics::Method* GrpcMetrics::method(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = methods_.find(name);
  if (it != methods_.end()) return it->second.get();
  const std::string key = methods_.size() < kMaxMethods ? name : std::string("other");
  auto& slot = methods_[key];
  if (!slot) slot = std::make_unique<Method>();
  return slot.get();
}

void GrpcMetrics::observe(const std::string& name, std::chrono::steady_clock::duration took, bool error) {
  Method* m = method(name);
  const double secs = std::chrono::duration<double>(took).count();
  m->calls.fetch_add(1, std::memory_order_relaxed);
  if (error) m->errors.fetch_add(1, std::memory_order_relaxed);
  m->micros.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()),
                      std::memory_order_relaxed);
  int b = 0;
  while (b < kBuckets && secs > kBounds[b]) ++b;
  m->buckets[static_cast<size_t>(b)].fetch_add(1, std::memory_order_relaxed);
}

std::string GrpcMetrics::metrics_text() const {
  std::string calls = "# HELP gannet_grpc_requests_total Calls finished on the broker's gRPC server, by method.\n"
                      "# TYPE gannet_grpc_requests_total counter\n";
  std::string errors = "# HELP gannet_grpc_request_errors_total Calls finished with a non-OK gRPC status, by method.\n"
                       "# TYPE gannet_grpc_request_errors_total counter\n";
  std::string hist = "# HELP gannet_grpc_request_duration_seconds From a gRPC call's start to its status, by method.\n"
                     "# TYPE gannet_grpc_request_duration_seconds histogram\n";
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [name, m] : methods_) {
    // "/gannet.broker.v1.Broker/Metadata" -> method="Metadata", service="gannet.broker.v1.Broker"
    std::string service, method = name;
    const size_t slash = name.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      service = name.substr(1, slash - 1);
      method = name.substr(slash + 1);
    }
    std::string safe;
    for (char c : method + "\x01" + service) {
      if (c == '"' || c == '\\' || c == '\n') continue;  // names from clients: nothing that breaks the format
      safe += c;
    }
    const size_t sep = safe.find('\x01');
    const std::string labels = "method=\"" + safe.substr(0, sep) + "\",service=\"" + safe.substr(sep + 1) + "\"";
    calls += "gannet_grpc_requests_total{" + labels + "} " + std::to_string(m->calls.load()) + "\n";
    errors += "gannet_grpc_request_errors_total{" + labels + "} " + std::to_string(m->errors.load()) + "\n";
    uint64_t cumulative = 0;
    for (int b = 0; b <= kBuckets; ++b) {
      cumulative += m->buckets[static_cast<size_t>(b)].load();
      char le[32];
      if (b < kBuckets) {
        std::snprintf(le, sizeof(le), "%g", kBounds[b]);
      } else {
        std::snprintf(le, sizeof(le), "+Inf");
      }
      hist += "gannet_grpc_request_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
              std::to_string(cumulative) + "\n";
    }
    char sum[48];
    std::snprintf(sum, sizeof(sum), "%.6f", static_cast<double>(m->micros.load()) / 1e6);
    hist += "gannet_grpc_request_duration_seconds_sum{" + labels + "} " + sum + "\n";
    hist += "gannet_grpc_request_duration_seconds_count{" + labels + "} " + std::to_string(cumulative) + "\n";
  }
  return calls + errors + hist;
}

}  // namespace gannet::broker
