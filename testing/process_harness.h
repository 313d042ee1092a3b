// Test harness for multi-process tests: free loopback ports, starting real binaries with their
// output in files, and stopping every process the test started, also when it fails.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace gannet::testing {

// A loopback port nothing is bound to right now, chosen at random below the kernel's ephemeral
// range (so no outgoing connection takes it before the server binds it), never the same twice in
// one process.
int free_port();

// Where Bazel put a binary of this workspace (under $TEST_SRCDIR/$TEST_WORKSPACE).
std::string runfile(const std::string& path);

// A scratch directory unique to this test run.
std::string test_dir(const std::string& name);

// Writes `contents` to `path`, creating missing parent directories.
void write_file(const std::string& path, const std::string& contents);

// Polls `done` every `step` until it is true or `timeout` passes; returns whether it became true.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50));

class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { kill(SIGKILL); }

  // Starts `argv[0]` with `argv`, stdout and stderr appended to `log_path`.
  void start(const std::vector<std::string>& argv, const std::string& log_path);
  // Sends `sig` and, for SIGKILL/SIGTERM, reaps the process (bounded wait).
  void kill(int sig);
  // Reaps the process if it has exited on its own (its wait status in *status); false if it runs.
  bool reap(int* status);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace gannet::testing
