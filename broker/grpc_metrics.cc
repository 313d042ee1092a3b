#include "broker/grpc_metrics.h"


namespace gannet::broker {

namespace {

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
  m->calls.fetch_add(1, std::memory_order_relaxed);
  if (error) m->errors.fetch_add(1, std::memory_order_relaxed);
  m->latency.record(took);
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
    m->latency.render("gannet_grpc_request_duration_seconds", labels, &hist);
  }
  return calls + errors + hist;
}

}  // namespace gannet::broker
