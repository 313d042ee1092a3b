#include "broker/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace gannet::broker {

Result<std::unique_ptr<MetricsHttpServer>, std::string> MetricsHttpServer::start(const std::string& host, int port,
                                                                              std::function<std::string()> render,
                                                                              std::function<HttpResponse(const HttpRequest&)> handler) {
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->render_ = std::move(render);
  s->handler_ = std::move(handler);
  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return std::string("metrics listener: socket: ") + std::strerror(errno);
  const int one = 1;
  ::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.empty() ? "0.0.0.0" : host.c_str(), &a.sin_addr) != 1) {
    return "metrics listener: '" + host + "' is not an IPv4 address";
  }
  socklen_t len = sizeof(a);
  if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s->listen_fd_, 16) != 0 ||
      ::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::string why = std::strerror(errno);
    ::close(s->listen_fd_);
    s->listen_fd_ = -1;
    return "metrics listener: cannot listen on " + host + ":" + std::to_string(port) + ": " + why;
  }
  s->port_ = ntohs(a.sin_port);
  MetricsHttpServer* self = s.get();
  s->thread_ = std::thread([self] { self->loop(); });
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void MetricsHttpServer::loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;  // wakes to see stop_
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(fd);
    ::close(fd);
  }
}

void MetricsHttpServer::serve(int fd) {
  // The request head, within 2 s and 8 KiB.
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char buf[1024];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stop_) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  std::string status = "404 Not Found", body = "not found: try GET /metrics\n";
  std::string type = "text/plain; charset=utf-8";
  const size_t head_end = head.find("\r\n\r\n");
  if (head.rfind("GET /metrics ", 0) == 0 || head.rfind("GET /metrics?", 0) == 0) {
    status = "200 OK";
    body = render_();
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (head_end == std::string::npos) {
    status = "431 Request Header Fields Too Large";
    body = "request head over 8 KiB\n";
  } else if (handler_) {
    HttpRequest req;
    const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    const std::string target = sp1 == std::string::npos || sp2 == std::string::npos ? "" : head.substr(sp1 + 1, sp2 - sp1 - 1);
    req.method = head.substr(0, sp1);
    req.path = target.substr(0, target.find('?'));
    if (target.find('?') != std::string::npos) req.query = target.substr(target.find('?') + 1);
    // The body, by Content-Length (at most 64 KiB, within the same 2 s).
    size_t length = 0;
    for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
      const size_t at = head.find(name);
      if (at != std::string::npos && at < head_end) length = std::strtoul(head.c_str() + at + std::strlen(name), nullptr, 10);
    }
    req.body = head.substr(head_end + 4);
    bool complete = length <= (64u << 10);
    while (complete && req.body.size() < length) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        complete = false;
        break;
      }
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        complete = false;
        break;
      }
      req.body.append(buf, static_cast<size_t>(n));
    }
    if (!complete) {
      status = "413 Content Too Large";
      body = "request body over 64 KiB or incomplete\n";
    } else {
      req.body.resize(std::min(req.body.size(), length));
      HttpResponse r = handler_(req);
      status = r.status;
      body = r.body;
      type = r.type;
    }
  }
  std::string out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  size_t off = 0;
  while (off < out.size()) {
    const ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace gannet::broker
