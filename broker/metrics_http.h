// MetricsHttpServer: the `metrics.http.listener` (Gannet's key): a small HTTP/1.1 server that
// answers GET /metrics with Prometheus' text exposition (what `render` returns) and every other
// request with what `handler` answers (the web console, broker/console.h). One thread; one
// connection at a time, each closed after its answer; a request must arrive within 2 s, its head
// fit 8 KiB and its body 64 KiB, so a slow or hostile client holds the thread at most that long
// and memory stays bounded.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "broker/console.h"
#include "common/result.h"

namespace gannet::broker {

class MetricsHttpServer {
 public:
  // Binds host:port (port 0: any free one) and starts serving.
  static Result<std::unique_ptr<MetricsHttpServer>, std::string> start(const std::string& host, int port,
                                                                       std::function<std::string()> render,
                                                                       std::function<HttpResponse(const HttpRequest&)> handler = {});
  ~MetricsHttpServer();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void loop();
  void serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::function<std::string()> render_;
  std::function<HttpResponse(const HttpRequest&)> handler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gannet::broker
