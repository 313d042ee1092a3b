// LatencyHistogram: a request-duration histogram with fixed upper bounds (0.5 ms to 10 s, and
// +Inf), recorded without a lock and rendered as Prometheus histogram samples. The Kafka
// listener's per-API and the gRPC server's per-method figures use it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gannet::broker {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  void record(std::chrono::steady_clock::duration took) {
    const double secs = std::chrono::duration<double>(took).count();
    micros_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()),
                      std::memory_order_relaxed);
    size_t b = 0;
    while (b < kBounds.size() && secs > kBounds[b]) ++b;
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
  }

  // Appends `name`_bucket{labels,le=...} (cumulative), `name`_sum and `name`_count lines.
  void render(const std::string& name, const std::string& labels, std::string* out) const {
    uint64_t cumulative = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      cumulative += buckets_[b].load(std::memory_order_relaxed);
      char le[32];
      if (b < kBounds.size()) {
        std::snprintf(le, sizeof(le), "%g", kBounds[b]);
      } else {
        std::snprintf(le, sizeof(le), "+Inf");
      }
      *out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    char sum[48];
    std::snprintf(sum, sizeof(sum), "%.6f", static_cast<double>(micros_.load(std::memory_order_relaxed)) / 1e6);
    *out += name + "_sum{" + labels + "} " + sum + "\n";
    *out += name + "_count{" + labels + "} " + std::to_string(cumulative) + "\n";
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> micros_{0};
};

}  // namespace gannet::broker
