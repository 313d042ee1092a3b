// meta.properties: the identity of a data directory, Kafka's (KRaft) format. `gannet storage
// format` writes one into every directory of `log.dirs`; gannetd checks them all before it opens
// any log, so a node never serves data that belongs to another node or another cluster.
//
// Format (a java.util.Properties text file, read back with parse_properties):
//
//   # Written by gannet storage format. Do not edit.
//   version=1
//   cluster.id=<id>      the cluster's id: 1-64 chars of [A-Za-z0-9_-] (valid_cluster_id)
//   node.id=<n>          the node.id of the node that owns the directory, >= 0
//
// Keys other than these three are ignored when read (newer Kafka versions add some). The file is
// replaced atomically: the new contents go to `meta.properties.tmp`, which is fsynced and renamed
// over `meta.properties`, and the directory is fsynced. A crash leaves either the old file or the
// new one; a leftover `.tmp` is never read and is overwritten by the next write.
//
// Every function returns errors as values (ConfigError, whose message names the directory and
// says what is wrong); nothing here throws or aborts on a bad file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "broker/server_config.h"
#include "common/result.h"

namespace gannet::broker {

// The file name inside each data directory.
inline constexpr const char* kMetaPropertiesFile = "meta.properties";

struct MetaProperties {
  std::string cluster_id;  // valid_cluster_id() once read or written
  int32_t node_id = -1;    // >= 0 once read or written

  bool operator==(const MetaProperties&) const = default;
};

// Writes `meta` to `dir`/meta.properties, creating `dir` (and its parents) if missing, atomically
// (see above). Refuses an invalid cluster id or a negative node id without touching the disk.
Result<void, ConfigError> write_meta_properties(const std::string& dir, const MetaProperties& meta);

// Reads `dir`/meta.properties: nullopt when there is no such file (or no such directory); an
// error when it cannot be read or is malformed (syntax error, a key missing, version other than
// 1, an invalid cluster.id or node.id).
Result<std::optional<MetaProperties>, ConfigError> read_meta_properties(const std::string& dir);

// The check a node runs on each data directory at startup: the directory must be formatted, for
// `node_id`, and, when `expected_cluster_id` is set (the cluster.id setting), for that cluster.
// Returns what the file says; the error message says what is wrong and how to fix it.
Result<MetaProperties, ConfigError> check_meta_properties(
    const std::string& dir, int32_t node_id, const std::optional<std::string>& expected_cluster_id);

// Takes an exclusive lock (flock) on `dir`/.lock for the life of the process, so two processes
// never use one data directory. The error names the directory when another process holds it.
Result<int, ConfigError> lock_data_directory(const std::string& dir);

// A new cluster id as Kafka makes them: 16 random bytes in URL-safe base64 without padding
// (22 chars). Never starts with '-' (it would read as a command-line flag).
std::string random_cluster_id();

// Non-empty, at most 64 chars, each of [A-Za-z0-9_-].
bool valid_cluster_id(const std::string& id);

}  // namespace gannet::broker
