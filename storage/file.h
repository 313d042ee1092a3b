// File and FileSystem: the only way storage/ touches the disk. PosixFileSystem is the real one;
// SimFileSystem (sim_file_system.h) keeps files in memory, injects EIO/ENOSPC and simulates a
// crash that drops unsynced bytes and tears the last write.
//
// Thread safety: a File may be read (read_at, size) from many threads while one thread appends,
// truncates or syncs it. FileSystem methods are thread safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/error.h"

namespace gannet::storage {

class File {
 public:
  virtual ~File() = default;

  // Writes n bytes at the current end of the file. On failure some prefix may have been written;
  // size() then tells how much.
  virtual Status append(const void* data, size_t n) = 0;
  // Reads up to n bytes at `offset`; returns the count read, short only at end of file.
  virtual Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const = 0;
  // Makes every byte appended so far durable (fdatasync).
  virtual Status sync() = 0;
  // Cuts the file to `size` bytes (not durable until sync()).
  virtual Status truncate(uint64_t size) = 0;
  // Bytes in the file, including unsynced ones.
  virtual uint64_t size() const = 0;
  // Reserves disk blocks for [offset, offset + len) without changing size() (an optimization:
  // later appends skip block allocation). Returns false when the file system cannot; never fails
  // otherwise visible.
  virtual bool preallocate(uint64_t offset, uint64_t len) { return false; }
  // Gives back blocks reserved past size() (at roll and close).
  virtual void release_preallocated() {}
  // The OS file descriptor, for zero-copy transfer (sendfile); -1 when the file is not a real one.
  virtual int fd() const { return -1; }
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for reading and appending, creating it empty if `create` and missing.
  virtual Result<std::shared_ptr<File>> open(const std::string& path, bool create) = 0;
  // mkdir -p. Directory creation is durable at once.
  virtual Status create_dirs(const std::string& path) = 0;
  // mkdir -p, durable only after a later sync_dir of the parent (for creating many directories
  // with one sync). The default is create_dirs.
  virtual Status create_dirs_unsynced(const std::string& path) { return create_dirs(path); }
  // Names (not paths) of the entries in a directory, in no particular order.
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  virtual Status remove_file(const std::string& path) = 0;
  // Removes a directory and everything under it.
  virtual Status remove_all(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (not durable until sync_dir of the parent).
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Makes the directory's entries (creations, removals, renames) durable.
  virtual Status sync_dir(const std::string& path) = 0;
};

// The process-wide real file system.
FileSystem* posix_file_system();

// Writes `contents` to `path` so that after a crash the file holds either its old or its new
// contents: write to path.tmp, sync, rename over path, sync the directory.
Status write_file_atomic(FileSystem* fs, const std::string& path, const std::string& contents);

// Reads a whole (small) file.
Result<std::string> read_file(FileSystem* fs, const std::string& path);

std::string parent_dir(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace gannet::storage
