// The wake-up of one long-polling fetch.
//
// A fetch that found too little to answer watches the partitions it reads (Partition::watch) and
// sleeps here; the first of them to get data, move its HW or change leader (or to be dropped by
// the broker) wakes it. So an append wakes only the fetches that read its partition, not every
// fetch on the broker (a broker-wide wake-up woke every follower's and consumer's long poll on each
// produce, most of them to find nothing). Like Kafka's fetch purgatory keyed by partition.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace gannet::broker {

class FetchWaiter {
 public:
  FetchWaiter() = default;
  // A parked fetch of the request core: wake() calls `on_wake` (on the waking thread, without any
  // lock held; it must be short, e.g. post the fetch's next look to an executor) instead of
  // waking a sleeping thread. It runs at most once per arm().
  explicit FetchWaiter(std::function<void()> on_wake) : on_wake_(std::move(on_wake)) {}

  // Forgets earlier wake-ups: call before watching and reading the partitions, so a change that
  // lands between the read and the sleep still ends the sleep.
  void arm() {
    std::lock_guard<std::mutex> l(mu_);
    woken_ = false;
  }
  void wake() {
    bool first;
    {
      std::lock_guard<std::mutex> l(mu_);
      first = !woken_;
      woken_ = true;
    }
    if (on_wake_) {
      if (first) on_wake_();
      return;
    }
    cv_.notify_one();
  }
  // Sleeps until wake() (since arm()) or the deadline; says whether it was woken.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_until(l, deadline, [&] { return woken_; });
  }

 private:
  const std::function<void()> on_wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

}  // namespace gannet::broker
