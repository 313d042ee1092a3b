// PosixFileSystem and the helpers declared in file.h.
#include "storage/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace gannet::storage {
namespace {

Error errno_error(const std::string& what, const std::string& path, int err) {
  return make_error(err == ENOSPC || err == EDQUOT ? Errc::kNoSpace
                    : err == ENOENT               ? Errc::kNotFound
                                                  : Errc::kIoError,
                    what + " " + path + ": " + std::strerror(err));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixFile() override { ::close(fd_); }

  Status append(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    uint64_t at = size_.load(std::memory_order_relaxed);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        size_.store(at, std::memory_order_release);
        return errno_error("write", path_, err);
      }
      p += w;
      n -= static_cast<size_t>(w);
      at += static_cast<uint64_t>(w);
    }
    size_.store(at, std::memory_order_release);
    return {};
  }

  Result<size_t> read_at(uint64_t offset, void* buf, size_t n) const override {
    char* p = static_cast<char*>(buf);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno_error("read", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_error("fdatasync", path_, errno);
    return {};
  }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return errno_error("truncate", path_, errno);
    size_.store(size, std::memory_order_release);
    return {};
  }

  uint64_t size() const override { return size_.load(std::memory_order_acquire); }
  bool preallocate(uint64_t offset, uint64_t len) override {
    return ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                       static_cast<off_t>(len)) == 0;
  }

  void release_preallocated() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return;
    const uint64_t size = size_.load(std::memory_order_acquire);
    const uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
    if (allocated <= size) return;
    // Truncating to the current size frees blocks reserved past it (ext4, xfs); a hole punched
    // past the end would not (ext4 ignores holes beyond i_size).
    (void)::ftruncate(fd_, static_cast<off_t>(size));
  }

  int fd() const override { return fd_; }

 private:
  const int fd_;
  const std::string path_;
  std::atomic<uint64_t> size_;  // bytes written so far; only the appender moves it
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::shared_ptr<File>> open(const std::string& path, bool create) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_error("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return errno_error("stat", path, err);
    }
    return std::shared_ptr<File>(new PosixFile(fd, path, static_cast<uint64_t>(st.st_size)));
  }

  Status create_dirs(const std::string& path) override {
    // The directories this call creates, deepest first.
    std::vector<std::string> created;
    for (std::string p = path; !p.empty() && p != "/" && p != "." && !exists(p); p = parent_dir(p)) {
      created.push_back(p);
    }
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return errno_error("mkdir", path, ec.value());
    // Durable at once (file.h): each new entry's parent is synced, outermost first.
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      GANNET_RETURN_IF_ERROR(sync_dir(parent_dir(*it)));
    }
    return {};
  }

  Status create_dirs_unsynced(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return errno_error("mkdir", path, ec.value());
    return {};
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return errno_error("opendir", path, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
    return names;
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  bool is_dir(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Status remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_error("unlink", path, errno);
    return {};
  }

  Status remove_all(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return errno_error("remove", path, ec.value());
    return {};
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_error("rename", from, errno);
    return {};
  }

  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error("open dir", path, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_error("fsync dir", path, err);
    return {};
  }
};

}  // namespace

FileSystem* posix_file_system() {
  static PosixFileSystem fs;
  return &fs;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

Status write_file_atomic(FileSystem* fs, const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  if (fs->exists(tmp)) GANNET_RETURN_IF_ERROR(fs->remove_file(tmp));
  {
    GANNET_ASSIGN_OR_RETURN(std::shared_ptr<File> f, fs->open(tmp, /*create=*/true));
    GANNET_RETURN_IF_ERROR(f->truncate(0));
    GANNET_RETURN_IF_ERROR(f->append(contents.data(), contents.size()));
    GANNET_RETURN_IF_ERROR(f->sync());
  }
  GANNET_RETURN_IF_ERROR(fs->rename(tmp, path));
  return fs->sync_dir(parent_dir(path));
}

Result<std::string> read_file(FileSystem* fs, const std::string& path) {
  GANNET_ASSIGN_OR_RETURN(std::shared_ptr<File> f, fs->open(path, /*create=*/false));
  std::string out(f->size(), '\0');
  GANNET_ASSIGN_OR_RETURN(size_t n, f->read_at(0, out.data(), out.size()));
  out.resize(n);
  return out;
}

}  // namespace gannet::storage
