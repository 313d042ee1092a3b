// Running the `gannet` command line from multi-process tests: one run to completion with its
// exit status and output, and soft accessors for its `--output json` documents (a missing field
// reads as empty, so a malformed document fails the assertions that look at it, not the test
// binary).
#pragma once

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "testing/process_harness.h"

namespace gannet::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'') {
      out += "'\\''";
    } else {
      out += ch;
    }
  }
  return out + "'";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// One run of the gannet binary (not "Run": that is a member of testing::Test).
struct CliRun {
  std::string command;  // as run, for failure messages
  int code = -1;        // exit status; -1 when it did not exit normally; 124 when `timeout` hit
  std::string out;      // stdout
  std::string err;      // stderr

  // Everything, for assertion messages.
  std::string dump() const {
    return "\n$ " + command + "\nexit " + std::to_string(code) + "\n--- stdout ---\n" + out +
           "--- stderr ---\n" + err;
  }
};

// The non-empty lines of `text`.
inline std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

// The whitespace-separated words of `line`.
inline std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Runs a shell command (bounded by `timeout 60`) with `input` on stdin; stdout and stderr captured.
inline CliRun shell_run(const std::string& command, const std::string& input = "") {
  static const std::string dir = test_dir("shell-runs");
  static std::atomic<int> counter{0};
  const std::string base = dir + "/" + std::to_string(++counter);
  {
    std::ofstream in(base + ".in");
    in << input;
  }
  CliRun r;
  r.command = command;
  const std::string cmd = "timeout 60 " + command + " <" + base + ".in >" + base + ".out 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  r.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  return r;
}

// Runs `gannet ARGS...` (bounded by `timeout 60`), stdout and stderr captured separately.
inline CliRun gannet_cli(const std::vector<std::string>& args) {
  static const std::string dir = test_dir("cli-runs");
  static std::atomic<int> counter{0};
  const int n = ++counter;
  const std::string out_path = dir + "/" + std::to_string(n) + ".out";
  const std::string err_path = dir + "/" + std::to_string(n) + ".err";
  CliRun r;
  r.command = "gannet";
  std::string cmd = "timeout 60 " + shell_quote(runfile("tools/gannet"));
  for (const std::string& a : args) {
    cmd += " " + shell_quote(a);
    r.command += " " + shell_quote(a);
  }
  cmd += " </dev/null >" + shell_quote(out_path) + " 2>" + shell_quote(err_path);
  const int status = std::system(cmd.c_str());
  r.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// stdout as a JSON object, or nullopt if it is not one.
inline std::optional<google::protobuf::Struct> parse_json(const std::string& text) {
  google::protobuf::Struct s;
  if (!google::protobuf::util::JsonStringToMessage(text, &s, {}).ok()) return std::nullopt;
  return s;
}

inline const google::protobuf::Value& field(const google::protobuf::Struct& s, const std::string& key) {
  static const google::protobuf::Value kNull;
  auto it = s.fields().find(key);
  return it == s.fields().end() ? kNull : it->second;
}
inline std::string str(const google::protobuf::Struct& s, const std::string& key) {
  return field(s, key).string_value();
}
inline std::vector<google::protobuf::Struct> objects(const google::protobuf::Struct& s, const std::string& key) {
  std::vector<google::protobuf::Struct> out;
  for (const auto& v : field(s, key).list_value().values()) out.push_back(v.struct_value());
  return out;
}

}  // namespace gannet::testing
