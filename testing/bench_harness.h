// Helpers the benchmark binaries share (data_bench, kafka_bench): percentiles, the machine's
// blocking loopback TCP round trip (the floor request latencies are set beside), and running a
// binary straight from bazel-bin with its runfiles found beside it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace gannet::testing {

// Seconds since `t`.
inline double secs_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A benchmark's figures (name, value, unit) for --output json.
using Figures = std::vector<std::tuple<std::string, double, std::string>>;

// Prints `figures` as one JSON object on stdout: {"figures": [{"name", "value", "unit"}, ...]}.
inline void print_figures_json(const Figures& figures) {
  std::printf("{\"figures\": [");
  for (size_t i = 0; i < figures.size(); ++i) {
    const auto& [name, value, unit] = figures[i];
    std::string escaped;
    for (char c : name) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    std::printf("%s{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}", i ? ", " : "", escaped.c_str(), value,
                unit.c_str());
  }
  std::printf("]}\n");
}

// p50 and p99 of `us` ({-1, -1} if empty).
inline std::pair<double, double> p50_p99(std::vector<int64_t>& us) {
  if (us.empty()) return {-1, -1};
  std::sort(us.begin(), us.end());
  return {static_cast<double>(us[us.size() / 2]), static_cast<double>(us[us.size() * 99 / 100])};
}

// The machine's own floor under any request/answer: a 200-byte TCP ping-pong on loopback between
// two threads that block in read() (as every RPC stack's threads do), p50/p99 in us. In a VM each
// wake-up of a sleeping thread costs tens of microseconds; this is two of them.
inline std::pair<double, double> loopback_round_trip(int n) {
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(ls, 1) != 0 ||
      ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(ls);
    return {-1, -1};
  }
  const int one = 1;
  std::thread echo([&] {
    int c = ::accept(ls, nullptr, nullptr);
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char b[200];
    for (;;) {
      ssize_t r = ::read(c, b, sizeof(b));
      if (r <= 0 || ::write(c, b, static_cast<size_t>(r)) != r) break;
    }
    ::close(c);
  });
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  std::vector<int64_t> us;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char b[200] = {};
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      if (::write(s, b, sizeof(b)) != static_cast<ssize_t>(sizeof(b))) break;
      size_t got = 0;
      while (got < sizeof(b)) {
        ssize_t r = ::read(s, b + got, sizeof(b) - got);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      if (got < sizeof(b)) break;
      us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  ::close(s);
  echo.join();
  ::close(ls);
  return p50_p99(us);
}

// A benchmark run as ./bazel-bin/tests/X finds its runfiles (gannetd, the CLI) beside it.
inline void use_runfiles_beside_binary() {
  if (std::getenv("TEST_SRCDIR")) return;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  setenv("TEST_SRCDIR", (self + ".runfiles").c_str(), 1);
  setenv("TEST_WORKSPACE", "gannet", 1);
}

}  // namespace gannet::testing
