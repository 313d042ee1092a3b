// Clock: the wall and monotonic time a component reads, injected so tests and the simulator can
// run on virtual time. SystemClock is the real one; ManualClock moves only when told.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace gannet {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (record timestamps, retention.ms, segment.ms).
  virtual int64_t now_ms() const = 0;
  // Monotonic milliseconds (flush.ms, timeouts). Never moves back.
  virtual int64_t monotonic_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t monotonic_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* instance() {
    static SystemClock clock;
    return &clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms), mono_(0) {}
  int64_t now_ms() const override { return now_.load(); }
  int64_t monotonic_ms() const override { return mono_.load(); }
  void advance_ms(int64_t d) {
    now_ += d;
    mono_ += d;
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_;
};

}  // namespace gannet
