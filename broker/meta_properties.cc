#include "broker/meta_properties.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

namespace gannet::broker {
namespace {

namespace fs = std::filesystem;

using Status = Result<void, ConfigError>;

constexpr size_t kMaxClusterIdChars = 64;

ConfigError make_error(std::string message) { return ConfigError{std::move(message)}; }

std::string errno_text(int err) { return std::generic_category().message(err); }

// `dir` without a trailing separator ("data/" and "data" are the same directory).
fs::path dir_path(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p;
}

// The directory holding `p`, for fsyncing the entry of `p` ("." for a bare relative name).
fs::path parent_of(const fs::path& p) {
  fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

Status sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open directory " + dir.string() + ": " + errno_text(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return make_error("cannot fsync directory " + dir.string() + ": " + errno_text(err));
  return {};
}

// Creates `dir` and any missing parents, then fsyncs the directory above each one it created, so
// the new entries survive a power cut along with the file written into `dir` afterwards.
Status create_dirs(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> missing;  // deepest first
  for (fs::path q = dir; !q.empty(); q = q.parent_path()) {
    if (fs::exists(q, ec)) break;
    missing.push_back(q);
    if (q == q.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec) return make_error("cannot create data directory " + dir.string() + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) {
    return make_error("cannot use data directory " + dir.string() + ": not a directory");
  }
  for (const fs::path& q : missing) GANNET_RETURN_IF_ERROR(sync_dir(parent_of(q)));
  return {};
}

// Writes `contents` to `path` (created or truncated) and fsyncs it.
Status write_synced(const fs::path& path, const std::string& contents) {
  auto failed = [&](const char* what, int err) {
    return make_error("cannot write " + path.string() + ": " + what + ": " + errno_text(err));
  };
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed("open", errno);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return failed("write", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return failed("fsync", err);
  }
  if (::close(fd) != 0) return failed("close", errno);
  return {};
}

// A decimal int32 >= 0, digits only.
std::optional<int32_t> parse_node_id(const std::string& s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (v > std::numeric_limits<int32_t>::max()) return std::nullopt;
  return static_cast<int32_t>(v);
}

}  // namespace

bool valid_cluster_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxClusterIdChars) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string random_cluster_id() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  while (true) {
    uint8_t bytes[16];
    for (size_t i = 0; i < sizeof(bytes); i += 4) {
      uint32_t r = rd();
      for (size_t j = 0; j < 4; ++j) bytes[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
    std::string out;
    out.reserve(22);
    // Base64 in 3-byte groups; the last group has one byte (two chars, no padding).
    for (size_t i = 0; i < sizeof(bytes); i += 3) {
      uint32_t group = static_cast<uint32_t>(bytes[i]) << 16;
      size_t n = std::min<size_t>(3, sizeof(bytes) - i);
      if (n > 1) group |= static_cast<uint32_t>(bytes[i + 1]) << 8;
      if (n > 2) group |= bytes[i + 2];
      for (size_t k = 0; k < n + 1; ++k) out += kAlphabet[(group >> (18 - 6 * k)) & 0x3f];
    }
    // Kafka redraws ids that start with '-' for the same reason (Uuid.randomUuid).
    if (out.front() != '-') return out;
  }
}

Result<void, ConfigError> write_meta_properties(const std::string& dir,
                                                const MetaProperties& meta) {
  if (!valid_cluster_id(meta.cluster_id)) {
    return make_error("cannot format data directory " + dir + ": invalid cluster id '" +
                      meta.cluster_id + "' (1-64 characters of A-Z a-z 0-9 _ -)");
  }
  if (meta.node_id < 0) {
    return make_error("cannot format data directory " + dir + ": invalid node id " +
                      std::to_string(meta.node_id) + " (must be >= 0)");
  }
  const fs::path d = dir_path(dir);
  GANNET_RETURN_IF_ERROR(create_dirs(d));
  const std::string contents = "# Written by gannet storage format. Do not edit.\n"
                               "version=1\n"
                               "cluster.id=" + meta.cluster_id + "\n" +
                               "node.id=" + std::to_string(meta.node_id) + "\n";
  const fs::path path = d / kMetaPropertiesFile;
  fs::path tmp = path;
  tmp += ".tmp";
  GANNET_RETURN_IF_ERROR(write_synced(tmp, contents));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return make_error("cannot rename " + tmp.string() + " to " + path.string() + ": " +
                      errno_text(errno));
  }
  return sync_dir(d);
}

Result<std::optional<MetaProperties>, ConfigError> read_meta_properties(const std::string& dir) {
  const std::string path = (dir_path(dir) / kMetaPropertiesFile).string();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<MetaProperties>();
    return make_error("cannot read " + path + ": " + errno_text(errno));
  }
  // Errors name the path (a read error or a syntax error with its line number).
  GANNET_ASSIGN_OR_RETURN(ConfigMap props, load_properties_file(path));
  auto malformed = [&](const std::string& why) {
    return make_error("malformed " + path + ": " + why);
  };
  auto version = props.find("version");
  if (version == props.end()) return malformed("no version");
  if (version->second != "1") {
    return malformed("version=" + version->second + ": unsupported (gannet reads version 1)");
  }
  MetaProperties meta;
  auto cluster = props.find("cluster.id");
  if (cluster == props.end()) return malformed("no cluster.id");
  if (!valid_cluster_id(cluster->second)) {
    return malformed("cluster.id=" + cluster->second + ": not 1-64 characters of A-Z a-z 0-9 _ -");
  }
  meta.cluster_id = cluster->second;
  auto node = props.find("node.id");
  if (node == props.end()) return malformed("no node.id");
  std::optional<int32_t> node_id = parse_node_id(node->second);
  if (!node_id) return malformed("node.id=" + node->second + ": not an integer in [0, 2^31)");
  meta.node_id = *node_id;
  return std::optional<MetaProperties>(std::move(meta));
}

Result<MetaProperties, ConfigError> check_meta_properties(
    const std::string& dir, int32_t node_id,
    const std::optional<std::string>& expected_cluster_id) {
  GANNET_ASSIGN_OR_RETURN(std::optional<MetaProperties> meta, read_meta_properties(dir));
  if (!meta) {
    return make_error("data directory " + dir +
                      " is not formatted: run `gannet storage format --cluster-id ID --config "
                      "FILE`");
  }
  if (meta->node_id != node_id) {
    return make_error("data directory " + dir + " belongs to node " +
                      std::to_string(meta->node_id) + ", but this is node.id " +
                      std::to_string(node_id));
  }
  if (expected_cluster_id && meta->cluster_id != *expected_cluster_id) {
    return make_error("data directory " + dir + " belongs to cluster " + meta->cluster_id +
                      ", but cluster.id is " + *expected_cluster_id);
  }
  return std::move(*meta);
}

Result<int, ConfigError> lock_data_directory(const std::string& dir) {
  const std::string path = dir + "/.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ConfigError{"cannot open " + path + ": " + std::strerror(errno)};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return ConfigError{"data directory " + dir + " is in use by another process (" + path + " is locked)"};
    }
    return ConfigError{"cannot lock " + path + ": " + std::strerror(err)};
  }
  return fd;  // held until the process exits
}

}  // namespace gannet::broker
