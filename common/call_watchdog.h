// CallWatchdog: cancels gRPC calls that outlive a deadline given per wait.
//
// A call's own deadline covers its whole life, which for a long-lived stream (ProduceStream,
// FetchStream) is not what bounds a request on it: a request sent on a stream is answered in
// time or the stream is given up (as a Kafka client closes a connection whose request timed
// out). Whoever waits arms the watchdog for that wait and disarms it when the answer comes; one
// thread cancels whatever expires. TryCancel is thread-safe and never blocks, and it is only
// called under the watchdog's lock, so a context disarmed (or never armed) is never touched.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace gannet {

class CallWatchdog {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  CallWatchdog() : thread_([this] { run(); }) {}
  ~CallWatchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  CallWatchdog(const CallWatchdog&) = delete;
  CallWatchdog& operator=(const CallWatchdog&) = delete;

  // Cancels `ctx` at `deadline` unless disarm(token) comes first. After cancel_all(), cancels
  // at once.
  uint64_t arm(grpc::ClientContext* ctx, TimePoint deadline) {
    std::lock_guard<std::mutex> l(mu_);
    const uint64_t token = ++next_token_;
    if (cancelled_all_) {
      ctx->TryCancel();
      return token;
    }
    const bool earliest = armed_.empty() || deadline < armed_.begin()->first.first;
    armed_.emplace(std::make_pair(deadline, token), ctx);
    if (earliest) cv_.notify_all();
    return token;
  }

  // After this returns the watchdog will not touch the context armed with `token`. Call it
  // before the context is destroyed, also when the call ended because the watchdog cancelled it:
  // the cancel may still be running (TryCancel holds the context's own lock) when the call's
  // failure reaches the caller.
  void disarm(uint64_t token) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = armed_.begin(); it != armed_.end(); ++it) {
      if (it->first.second == token) {
        armed_.erase(it);
        return;
      }
    }
  }

  // Cancels every armed call now, and every call armed from now on (the owner is stopping).
  void cancel_all() {
    std::lock_guard<std::mutex> l(mu_);
    cancelled_all_ = true;
    for (auto& [key, ctx] : armed_) ctx->TryCancel();
    armed_.clear();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      if (armed_.empty()) {
        cv_.wait(l);
        continue;
      }
      const TimePoint next = armed_.begin()->first.first;
      if (std::chrono::steady_clock::now() < next) {
        cv_.wait_until(l, next);
        continue;
      }
      armed_.begin()->second->TryCancel();
      armed_.erase(armed_.begin());
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<TimePoint, uint64_t>, grpc::ClientContext*> armed_;  // by (deadline, token)
  uint64_t next_token_ = 0;
  bool cancelled_all_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace gannet
