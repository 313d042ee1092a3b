#include "storage/sim_file_system.h"

#include <algorithm>
#include <cstring>

namespace gannet::storage {

namespace {
bool has_prefix(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
}  // namespace

class SimFile final : public File {
 public:
  SimFile(SimFileSystem* fs, std::shared_ptr<SimFileSystem::Inode> inode, std::string path,
          uint64_t epoch)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)), epoch_(epoch) {}

  Status append(const void* data, size_t n) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    GANNET_RETURN_IF_ERROR(check_alive());
    size_t partial = 0;
    if (auto e = fs_->take_fault(SimFileSystem::Op::kAppend, path_, &partial)) {
      inode_->data.append(static_cast<const char*>(data), std::min(partial, n));
      return *e;
    }
    inode_->data.append(static_cast<const char*>(data), n);
    return {};
  }

  Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    GANNET_RETURN_IF_ERROR(check_alive());
    if (auto e = fs_->take_fault(SimFileSystem::Op::kRead, path_, nullptr)) return *e;
    if (offset >= inode_->data.size()) return size_t{0};
    size_t k = std::min<uint64_t>(n, inode_->data.size() - offset);
    std::memcpy(buf, inode_->data.data() + offset, k);
    return k;
  }

  Status sync() override {
    if (auto hook = fs_->sync_hook()) hook(path_);  // outside mu_: it may block (a slow disk)
    std::lock_guard<std::mutex> l(fs_->mu_);
    GANNET_RETURN_IF_ERROR(check_alive());
    if (auto e = fs_->take_fault(SimFileSystem::Op::kSync, path_, nullptr)) return *e;
    inode_->durable = inode_->data;
    ++fs_->syncs_;
    return {};
  }

  Status truncate(uint64_t size) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    GANNET_RETURN_IF_ERROR(check_alive());
    if (auto e = fs_->take_fault(SimFileSystem::Op::kTruncate, path_, nullptr)) return *e;
    inode_->data.resize(size, '\0');
    return {};
  }

  uint64_t size() const override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    return inode_->data.size();
  }

 private:
  Status check_alive() const {
    if (epoch_ != fs_->epoch_) {
      return make_error(Errc::kIoError, "handle of " + path_ + " died in a simulated crash");
    }
    return {};
  }

  SimFileSystem* fs_;
  std::shared_ptr<SimFileSystem::Inode> inode_;
  std::string path_;
  uint64_t epoch_;
};

SimFileSystem::SimFileSystem() { dirs_.insert("/"); }
SimFileSystem::~SimFileSystem() = default;

void SimFileSystem::inject_fault(Op op, int skip, Errc code, size_t partial_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  faults_.push_back(Fault{op, skip, code, partial_bytes});
}

void SimFileSystem::clear_faults() {
  std::lock_guard<std::mutex> l(mu_);
  faults_.clear();
}

std::optional<Error> SimFileSystem::take_fault(Op op, const std::string& path,
                                               size_t* partial_bytes) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op) continue;
    if (it->skip > 0) {
      --it->skip;
      continue;
    }
    Error e = make_error(it->code, "injected fault on " + path);
    if (partial_bytes != nullptr) *partial_bytes = it->partial_bytes;
    faults_.erase(it);
    return e;
  }
  return std::nullopt;
}

void SimFileSystem::crash(std::mt19937_64& rng) {
  std::lock_guard<std::mutex> l(mu_);
  ++epoch_;
  faults_.clear();
  files_ = durable_files_;
  std::set<Inode*> seen;
  for (auto& [path, inode] : files_) {
    if (!seen.insert(inode.get()).second) continue;
    std::string& data = inode->data;
    const std::string& durable = inode->durable;
    if (data.size() > durable.size() && has_prefix(data, durable)) {
      // Unsynced appends: none, some or all of them survive; the last surviving bytes may be
      // garbage (a torn sector).
      size_t tail = data.size() - durable.size();
      size_t keep = 0;
      switch (rng() % 3) {
        case 0: keep = 0; break;
        case 1: keep = tail; break;
        default: keep = rng() % (tail + 1); break;
      }
      std::string result = durable + data.substr(durable.size(), keep);
      if (keep > 0 && rng() % 2 == 0) {
        size_t garbage = 1 + rng() % std::min<size_t>(keep, 512);
        for (size_t i = result.size() - garbage; i < result.size(); ++i)
          result[i] = static_cast<char>(rng());
      }
      data = std::move(result);
    } else if (data != durable) {
      // A truncation or rewrite that was never synced: it may or may not have reached the disk.
      if (rng() % 2 == 0) data = durable;
    }
    inode->durable = inode->data;
  }
}

uint64_t SimFileSystem::unsynced_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t total = 0;
  std::set<Inode*> seen;
  for (const auto& [path, inode] : files_) {
    if (!seen.insert(inode.get()).second) continue;
    if (inode->data.size() > inode->durable.size()) total += inode->data.size() - inode->durable.size();
  }
  return total;
}

uint64_t SimFileSystem::sync_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return syncs_;
}

Result<std::shared_ptr<File>> SimFileSystem::open(const std::string& path, bool create) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto e = take_fault(Op::kOpen, path, nullptr)) return *e;
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!create) return make_error(Errc::kNotFound, "open " + path + ": no such file");
    if (dirs_.count(parent_dir(path)) == 0) {
      return make_error(Errc::kNotFound, "open " + path + ": no such directory");
    }
    it = files_.emplace(path, std::make_shared<Inode>()).first;
  }
  return std::shared_ptr<File>(new SimFile(this, it->second, path, epoch_));
}

Status SimFileSystem::create_dirs(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  std::string p = path;
  while (!p.empty() && p != "/" && p != ".") {
    if (files_.count(p)) return make_error(Errc::kIoError, "mkdir " + p + ": is a file");
    dirs_.insert(p);
    p = parent_dir(p);
  }
  return {};
}

Result<std::vector<std::string>> SimFileSystem::list_dir(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (dirs_.count(path) == 0) return make_error(Errc::kNotFound, "list " + path + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [p, inode] : files_)
    if (parent_dir(p) == path) names.push_back(p.substr(p.find_last_of('/') + 1));
  for (const auto& d : dirs_)
    if (d != path && parent_dir(d) == path) names.push_back(d.substr(d.find_last_of('/') + 1));
  return names;
}

bool SimFileSystem::exists(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return files_.count(path) > 0 || dirs_.count(path) > 0;
}

bool SimFileSystem::is_dir(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return dirs_.count(path) > 0;
}

Status SimFileSystem::remove_file(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto e = take_fault(Op::kRemove, path, nullptr)) return *e;
  if (files_.erase(path) == 0) return make_error(Errc::kNotFound, "unlink " + path + ": no such file");
  return {};
}

Status SimFileSystem::remove_all(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto e = take_fault(Op::kRemove, path, nullptr)) return *e;
  auto under = [&](const std::string& p) { return p == path || has_prefix(p, path + "/"); };
  std::erase_if(files_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(durable_files_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(dirs_, [&](const std::string& d) { return under(d); });
  return {};
}

Status SimFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto e = take_fault(Op::kRename, from, nullptr)) return *e;
  if (dirs_.count(from)) {
    // A directory moves with everything under it, at once and durably (like its creation).
    if (dirs_.count(to) || files_.count(to)) {
      return make_error(Errc::kAlreadyExists, "rename " + from + ": " + to + " exists");
    }
    auto moved = [&](const std::string& p) { return to + p.substr(from.size()); };
    auto under = [&](const std::string& p) { return p == from || has_prefix(p, from + "/"); };
    for (auto* m : {&files_, &durable_files_}) {
      std::map<std::string, std::shared_ptr<Inode>> next;
      for (auto& [p, inode] : *m) next[under(p) ? moved(p) : p] = inode;
      *m = std::move(next);
    }
    std::set<std::string> dirs;
    for (const auto& d : dirs_) dirs.insert(under(d) ? moved(d) : d);
    dirs_ = std::move(dirs);
    return {};
  }
  auto it = files_.find(from);
  if (it == files_.end()) return make_error(Errc::kNotFound, "rename " + from + ": no such file");
  auto inode = it->second;
  files_.erase(it);
  files_[to] = std::move(inode);
  return {};
}

Status SimFileSystem::sync_dir(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto e = take_fault(Op::kSyncDir, path, nullptr)) return *e;
  std::erase_if(durable_files_, [&](const auto& kv) { return parent_dir(kv.first) == path; });
  for (const auto& [p, inode] : files_)
    if (parent_dir(p) == path) durable_files_[p] = inode;
  return {};
}

}  // namespace gannet::storage
