// Executor: a fixed number of threads running posted tasks in order of posting (FIFO; with more
// than one thread, tasks run concurrently). The broker's request core posts the work that
// completes a parked request (a long-poll fetch woken by an append re-reads its partitions here,
// not on the appending thread), so that work runs on a stated, bounded set of threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gannet::broker {

class Executor {
 public:
  explicit Executor(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Executor() { stop(); }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // False (and `task` not run) once stop() began.
  bool post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return false;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }
  // Runs the tasks already posted, then joins the threads. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }
  size_t threads() const { return threads_.size(); }

 private:
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, and nothing left
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      l.unlock();
      task();
      l.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
};

}  // namespace gannet::broker
