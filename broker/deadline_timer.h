// DeadlineTimer: runs callbacks at deadlines, on one thread of its own, for the requests parked in
// the broker's purgatories (an acks=-1 produce's timeout, a long-poll fetch's max_wait). Nothing
// sleeps per request: a parked request is a callback here and one in the partition it waits on.
//
// Callbacks run on the timer's thread, one at a time, without the timer's lock: they must be
// short (complete a request, or post its work to an Executor). cancel() after the callback began
// returns false and does not wait for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace gannet::broker {

class DeadlineTimer {
 public:
  using Clock = std::chrono::steady_clock;

  DeadlineTimer() : thread_([this] { run(); }) {}
  ~DeadlineTimer() { stop(); }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Runs `fn` at `at` (at once if it passed); returns an id for cancel().
  uint64_t schedule(Clock::time_point at, std::function<void()> fn) {
    std::lock_guard<std::mutex> l(mu_);
    const uint64_t id = next_id_++;
    queue_.emplace(std::make_pair(at, id), std::move(fn));
    when_[id] = at;
    cv_.notify_one();
    return id;
  }
  // Drops a scheduled callback; false if it already ran, is running, or never existed.
  bool cancel(uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = when_.find(id);
    if (it == when_.end()) return false;
    queue_.erase({it->second, id});
    when_.erase(it);
    return true;
  }
  // Runs nothing more on schedule; callbacks still scheduled are dropped, or with `run_pending`
  // run now on this thread (as if their deadlines had come). Idempotent.
  void stop(bool run_pending = false) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> left;
    {
      std::lock_guard<std::mutex> l(mu_);
      left.swap(queue_);
      when_.clear();
    }
    if (run_pending) {
      for (auto& [when, fn] : left) fn();
    }
  }
  size_t pending() const {
    std::lock_guard<std::mutex> l(mu_);
    return queue_.size();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stopping_) {
      if (queue_.empty()) {
        cv_.wait(l);
        continue;
      }
      auto first = queue_.begin();
      if (first->first.first > Clock::now()) {
        cv_.wait_until(l, first->first.first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      when_.erase(first->first.second);
      queue_.erase(first);
      l.unlock();
      fn();
      l.lock();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> queue_;
  std::unordered_map<uint64_t, Clock::time_point> when_;
  std::thread thread_;  // last: starts after the fields it uses
};

}  // namespace gannet::broker
