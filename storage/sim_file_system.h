// SimFileSystem: an in-memory FileSystem for fault injection and crash tests (a fake, used only
// where the real disk cannot be made to fail on cue).
//
// Durability model: a file's bytes become durable on File::sync(); a directory's entries
// (creations, removals, renames) become durable on sync_dir() of that directory. Directories
// themselves and remove_all() are durable at once. crash() throws away everything not durable:
// each file reverts to its synced bytes, except that a random prefix of the unsynced appended
// bytes may survive with garbage at its end (a torn write), and the namespace reverts to what the
// last sync_dir() calls made durable. Handles opened before a crash are dead afterwards: every
// operation on them fails with kIoError, so a crashed component cannot write into the new world.
//
// Thread safe: one mutex guards everything (tests, not speed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/file.h"

namespace gannet::storage {

class SimFileSystem final : public FileSystem {
 public:
  enum class Op { kOpen, kAppend, kRead, kSync, kTruncate, kRename, kRemove, kSyncDir };

  SimFileSystem();
  ~SimFileSystem() override;

  // Fault injection: after `skip` more successful operations of kind `op`, the next one fails
  // with `code` (kIoError or kNoSpace); a failing append first writes `partial_bytes` of its data.
  void inject_fault(Op op, int skip, Errc code, size_t partial_bytes = 0);
  void clear_faults();

  // Simulates power loss as described above, drawing torn-write choices from `rng`.
  void crash(std::mt19937_64& rng);

  // Total bytes appended but not yet synced, over all files (tests assert flush policies).
  uint64_t unsynced_bytes() const;
  uint64_t sync_count() const;
  // Called with the file's path before each File::sync(), outside the file system's lock: a test
  // can stall a sync there to see who waits for it.
  void set_sync_hook(std::function<void(const std::string&)> hook) {
    std::lock_guard<std::mutex> l(mu_);
    sync_hook_ = std::move(hook);
  }
  std::function<void(const std::string&)> sync_hook() const {
    std::lock_guard<std::mutex> l(mu_);
    return sync_hook_;
  }

  // FileSystem.
  Result<std::shared_ptr<File>> open(const std::string& path, bool create) override;
  Status create_dirs(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  bool exists(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  Status remove_file(const std::string& path) override;
  Status remove_all(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& path) override;

  struct Inode {
    std::string data;     // current contents
    std::string durable;  // contents as of the last sync
  };

 private:
  friend class SimFile;
  struct Fault {
    Op op;
    int skip;
    Errc code;
    size_t partial_bytes;
  };

  // Returns the injected error for `op`, if one fires now. Caller holds mu_.
  std::optional<Error> take_fault(Op op, const std::string& path, size_t* partial_bytes);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Inode>> files_;          // current namespace
  std::map<std::string, std::shared_ptr<Inode>> durable_files_;  // namespace after a crash
  std::set<std::string> dirs_;
  std::vector<Fault> faults_;
  uint64_t epoch_ = 0;  // bumped by crash(); handles of older epochs are dead
  uint64_t syncs_ = 0;
  std::function<void(const std::string&)> sync_hook_;
};

}  // namespace gannet::storage
