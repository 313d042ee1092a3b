// ByteBudget: a broker-wide count of bytes that requests in progress may hold, with a capacity.
//
// Fetch responses take their record bytes from one budget (fetch.response.memory.max.bytes), so
// many concurrent fetches cannot make the broker hold an unbounded number of copies of the log:
// a read asks for what it may use, gets what is free (maybe 0), and gives it back when its answer
// is done. A first batch larger than what was granted is still sent whole (Kafka's KIP-74: a
// consumer must always make progress), so the budget can be passed by at most one batch per
// reader; that is the bound stated in the README.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace gannet::broker {

class ByteBudget {
 public:
  explicit ByteBudget(int64_t capacity) : capacity_(capacity) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Takes up to `want` bytes; returns how many it took (0 when nothing is free).
  int64_t try_take(int64_t want) {
    std::lock_guard<std::mutex> l(mu_);
    const int64_t got = std::clamp<int64_t>(capacity_ - in_use_, 0, std::max<int64_t>(want, 0));
    in_use_ += got;
    peak_ = std::max(peak_, in_use_);
    return got;
  }
  // Takes `n` more bytes whatever is free (a first batch larger than its grant).
  void force_take(int64_t n) {
    std::lock_guard<std::mutex> l(mu_);
    in_use_ += n;
    peak_ = std::max(peak_, in_use_);
  }
  void give_back(int64_t n) {
    if (n <= 0) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      in_use_ -= n;
    }
    cv_.notify_all();
  }
  // Sleeps until some bytes are free or the deadline passes; says whether some are.
  bool wait_free(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_until(l, deadline, [&] { return in_use_ < capacity_; });
  }

  int64_t capacity() const { return capacity_; }
  int64_t in_use() const {
    std::lock_guard<std::mutex> l(mu_);
    return in_use_;
  }
  // The most ever held at once (tests check it against the capacity).
  int64_t peak() const {
    std::lock_guard<std::mutex> l(mu_);
    return peak_;
  }

  // The bytes one request holds; given back when it is destroyed or reset.
  class Holding {
   public:
    explicit Holding(ByteBudget* b) : b_(b) {}
    ~Holding() { reset(); }
    Holding(const Holding&) = delete;
    Holding& operator=(const Holding&) = delete;
    int64_t try_take(int64_t want) {
      const int64_t got = b_->try_take(want);
      held_ += got;
      return got;
    }
    void force_take(int64_t n) {
      b_->force_take(n);
      held_ += n;
    }
    // Keeps `used` of `granted` bytes just taken and gives the rest back at once.
    void settle(int64_t granted, int64_t used) {
      if (used > granted) {
        force_take(used - granted);
      } else {
        b_->give_back(granted - used);
        held_ -= granted - used;
      }
    }
    void reset() {
      b_->give_back(held_);
      held_ = 0;
    }

   private:
    ByteBudget* const b_;
    int64_t held_ = 0;
  };

 private:
  const int64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
};

}  // namespace gannet::broker
