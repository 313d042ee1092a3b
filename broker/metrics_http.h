// MetricsHttpServer: the `metrics.http.listener` (Gannet's key): a small HTTP/1.1 server that
// answers GET /metrics with Prometheus' text exposition (what `render` returns) and 404 to
// anything else. One thread; one connection at a time, each closed after its answer (scrapers
// connect every few seconds); a request must arrive within 2 s and fit 8 KiB, so a slow or
// hostile client holds the thread at most that long and memory stays bounded.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

namespace gannet::broker {

class MetricsHttpServer {
 public:
  // Binds host:port (port 0: any free one) and starts serving.
  static Result<std::unique_ptr<MetricsHttpServer>, std::string> start(const std::string& host, int port,
                                                                       std::function<std::string()> render);
  ~MetricsHttpServer();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void loop();
  void serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::function<std::string()> render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gannet::broker
