// Storage benchmark: the partition log's hot paths next to this machine's own limits, measured
// in the same run on the same file system (README "Benchmarks" records the figures).
//
//   bazel run -c opt //storage:log_bench -- [--dir DIR] [--total-mb N] [--synced-ops N]
//                                           [--rounds N] [--only buffered|synced|read|producers] [--verbose]
//                                           [--output text|json]
//
// Measures:
//   raw write            write() of the batch-sized buffer, the same total bytes (also with
//                        blocks reserved ahead by fallocate, as the log does)
//   append 16KiB / 1MiB  Log::append of 1 KiB records in 16 KiB and 1 MiB batches (CRC checked,
//                        offsets assigned, indexed)
//   synced               append + flush() per batch, next to write() + fdatasync() per batch;
//                        also with 4 appenders sharing fsyncs (group commit)
//   read                 Log::read + copy of 1 MiB ranges, next to pread() of the same bytes
//   producers            heap bytes per idempotent producer's state (--only producers)
// Each comparison prints "ratio <name> <log/raw>" on a line of its own.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/crc32c.h"
#include "storage/log.h"
#include "storage/record_batch.h"

namespace gannet::storage {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Options {
  std::string dir;
  uint64_t total_bytes = 1ull << 30;
  int synced_ops = 4000;
  int rounds = 7;
  bool verbose = false;  // print every round
  bool json = false;
  std::string only;  // run one part: "buffered", "synced" or "read"

};

struct Report {
  bool json;
  std::vector<std::pair<std::string, double>> figures;
  std::vector<std::pair<std::string, double>> ratios;

  void figure(const std::string& name, double value, const char* unit) {
    figures.emplace_back(name, value);
    if (!json) std::printf("%-40s %12.1f %s\n", name.c_str(), value, unit);
    std::fflush(stdout);
  }
  void ratio(const std::string& name, double value) {
    ratios.emplace_back(name, value);
    if (!json) std::printf("ratio %s %.3f\n", name.c_str(), value);
    std::fflush(stdout);
  }
  void progress(const std::string& what) {
    std::fprintf(stderr, "log_bench: %s...\n", what.c_str());
  }
  void finish() {
    if (!json) return;
    std::printf("{\"figures\":{");
    for (size_t i = 0; i < figures.size(); ++i)
      std::printf("%s\"%s\":%.3f", i ? "," : "", figures[i].first.c_str(), figures[i].second);
    std::printf("},\"ratios\":{");
    for (size_t i = 0; i < ratios.size(); ++i)
      std::printf("%s\"%s\":%.4f", i ? "," : "", ratios[i].first.c_str(), ratios[i].second);
    std::printf("}}\n");
  }
};

std::string make_batch(size_t batch_bytes) {
  RecordBatchBuilder b;
  std::string value(1000, 'x');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + (i * 7) % 26);
  while (b.size_bytes() + 1024 <= batch_bytes) {
    b.add(1'700'000'000'000, std::nullopt, value);
  }
  return *b.build();
}

// Waits for the kernel's writeback and deferred deletes, so they do not land in the next timing.
void settle() {
  ::sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void fresh_dir(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

void die(const std::string& what) {
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  std::exit(1);
}

// MB/s of writing `total` bytes in `chunk`-sized write() calls, optionally fdatasync after each.
// With `prealloc`, reserves blocks 16 MiB ahead as the log does (fallocate, size unchanged).
double raw_write(const std::string& path, const std::string& chunk, uint64_t total, bool sync_each,
                 bool prealloc = false) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) die("open " + path);
  const uint64_t n = total / chunk.size();
  const uint64_t step = 16 << 20;
  uint64_t reserved = 0;
  auto t = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    if (prealloc && (i + 1) * chunk.size() > reserved) {
      if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(reserved), step) != 0) die("fallocate");
      reserved += step;
    }
    if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) die("write");
    if (sync_each && ::fdatasync(fd) != 0) die("fdatasync");
  }
  double s = seconds_since(t);
  ::close(fd);
  return n * chunk.size() / s / 1e6;
}

std::unique_ptr<Log> open_log(const std::string& dir) {
  Log::Options o;
  o.config.max_message_bytes = 2 << 20;
  o.config.retention_ms = -1;
  auto log = Log::open(dir, o);
  if (!log.ok()) die(log.error().to_string());
  return std::move(log).value();
}

// MB/s of appending `total` bytes of copies of `batch`, one batch per append call.
double log_append(const std::string& dir, const std::string& batch, uint64_t total, bool flush_each) {
  fresh_dir(dir);
  auto log = open_log(dir);
  std::string buf = batch;
  auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size());
  const uint64_t n = total / batch.size();
  auto t = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    auto r = log->append(span, 0);
    if (!r.ok()) die(r.error().to_string());
    if (flush_each) {
      Status st = log->flush();
      if (!st.ok()) die(st.error().to_string());
    }
  }
  double s = seconds_since(t);
  return n * batch.size() / s / 1e6;
}

// Batches/s with `threads` appenders each doing append + flush (sharing fsyncs).
double group_commit(const std::string& dir, const std::string& batch, int ops, int threads,
                    uint64_t* fsyncs_saved_pct) {
  fresh_dir(dir);
  auto log = open_log(dir);
  std::atomic<int> next{0};
  auto t = Clock::now();
  std::vector<std::thread> ts;
  for (int k = 0; k < threads; ++k) {
    ts.emplace_back([&] {
      std::string buf = batch;
      auto span = std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size());
      while (next.fetch_add(1) < ops) {
        auto r = log->append(span, 0);
        if (!r.ok()) die(r.error().to_string());
        Status st = log->flush_to(r->last_offset + 1);
        if (!st.ok()) die(st.error().to_string());
      }
    });
  }
  for (auto& th : ts) th.join();
  double s = seconds_since(t);
  (void)fsyncs_saved_pct;
  return ops / s;
}

double raw_read(const std::string& path, size_t chunk) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) die("open " + path);
  std::string buf(chunk, '\0');
  uint64_t total = 0;
  auto t = Clock::now();
  while (true) {
    ssize_t r = ::pread(fd, buf.data(), chunk, static_cast<off_t>(total));
    if (r < 0) die("pread");
    if (r == 0) break;
    total += static_cast<uint64_t>(r);
  }
  double s = seconds_since(t);
  ::close(fd);
  return total / s / 1e6;
}

double log_read(const std::string& dir, size_t chunk, uint64_t* bytes_read) {
  auto log = open_log(dir);
  // Like the raw reader, copy into one preallocated buffer (a consumer's fetch buffer).
  std::vector<uint8_t> buf(chunk * 2 + 4096);
  int64_t offset = log->log_start_offset();
  uint64_t total = 0;
  auto t = Clock::now();
  while (offset < log->log_end_offset()) {
    auto r = log->read(offset, chunk);
    if (!r.ok()) die(r.error().to_string());
    // Place the bytes at the same offset within a page as in the file, so the kernel's copy out
    // of the page cache runs aligned (as it does for the raw reader's page-aligned reads).
    const size_t skew = r->slices.empty() ? 0 : r->slices.front().position % 4096;
    if (r->bytes + skew > buf.size()) buf.resize(r->bytes + skew);
    uint8_t* dst = buf.data() + skew;
    Status st = r->copy_to(dst);
    if (!st.ok()) die(st.error().to_string());
    total += r->bytes;
    // The next offset follows the last batch read: walk the headers (no record decoding).
    size_t pos = 0;
    int64_t next = offset;
    while (pos < r->bytes) {
      RecordBatchView v(dst + pos, r->bytes - pos);
      next = v.next_offset();
      pos += static_cast<size_t>(v.length()) + kLogOverhead;
    }
    offset = next;
  }
  double s = seconds_since(t);
  *bytes_read = total;
  return total / s / 1e6;
}

double memcpy_bandwidth() {
  std::string a(64 << 20, 'a'), b(64 << 20, 'b');
  auto t = Clock::now();
  for (int i = 0; i < 8; ++i) {
    std::memcpy(b.data(), a.data(), a.size());
    a[i] = b[i + 1];
  }
  return 8.0 * a.size() / seconds_since(t) / 1e6;
}

// CRC-32C over a buffer of one batch's size, as the append path checks it (cache-warm).
double crc_bandwidth(size_t size) {
  std::string a(size, 'a');
  const int n = static_cast<int>((1u << 30) / size);
  auto t = Clock::now();
  uint32_t c = 0;
  for (int i = 0; i < n; ++i) c = crc32c::extend(c, a.data(), a.size());
  double s = seconds_since(t);
  if (c == 42) std::printf("!");
  return static_cast<double>(n) * a.size() / s / 1e6;
}

template <typename F>
double best_of(int n, F f) {
  double best = 0;
  for (int i = 0; i < n; ++i) best = std::max(best, f());
  return best;
}

int run(const Options& opt) {
  Report rep{opt.json, {}, {}};
  fresh_dir(opt.dir);
  const std::string raw_path = opt.dir + "/raw.bin";
  const std::string log_dir = opt.dir + "/bench-0";
  const int rounds = opt.rounds;

  rep.progress("memcpy and CRC-32C");
  rep.figure("memcpy MB/s", memcpy_bandwidth(), "MB/s");
  for (size_t size : {size_t{16} << 10, size_t{1} << 20}) {
    rep.figure(std::string("crc32c ") + (size == (16u << 10) ? "16KiB" : "1MiB") + " MB/s (" +
                   crc32c::implementation() + ")",
               crc_bandwidth(size), "MB/s");
  }

  auto want = [&](const char* part) { return opt.only.empty() || opt.only == part; };
  for (size_t batch_size : {size_t{16} << 10, size_t{1} << 20}) {
    if (!want("buffered")) break;
    const std::string batch = make_batch(batch_size);
    const std::string label = batch_size == (16u << 10) ? "16KiB" : "1MiB";
    rep.progress("buffered writes, " + label + " batches");
    // Interleave raw and log rounds, alternating which goes first, and let the kernel finish
    // writeback and deletes between them, so background work hits both alike. Best of each.
    double raw = 0, log = 0, raw_prealloc = 0;
    for (int i = 0; i < rounds; ++i) {
      for (int j = 0; j < 3; ++j) {
        if (j == 2) {
          double v = raw_write(raw_path, batch, opt.total_bytes, false, /*prealloc=*/true);
          if (opt.verbose) std::fprintf(stderr, "  round %d raw+fallocate %.0f MB/s\n", i, v);
          raw_prealloc = std::max(raw_prealloc, v);
          std::filesystem::remove(raw_path);
        } else if ((i + j) % 2 == 0) {
          double v = raw_write(raw_path, batch, opt.total_bytes, false);
          if (opt.verbose) std::fprintf(stderr, "  round %d raw %.0f MB/s\n", i, v);
          raw = std::max(raw, v);
          std::filesystem::remove(raw_path);
        } else {
          double v = log_append(log_dir, batch, opt.total_bytes, false);
          if (opt.verbose) std::fprintf(stderr, "  round %d log %.0f MB/s\n", i, v);
          log = std::max(log, v);
          std::filesystem::remove_all(log_dir);
        }
        settle();
      }
    }
    rep.figure("raw write " + label + " MB/s", raw, "MB/s");
    rep.figure("raw write+fallocate " + label + " MB/s", raw_prealloc, "MB/s");
    rep.figure("log append " + label + " MB/s", log, "MB/s");
    rep.ratio("append_" + label, log / raw);
    // The log reserves blocks ahead; against a raw writer that does the same:
    rep.ratio("append_" + label + "_vs_raw_fallocate", log / raw_prealloc);
  }

  if (want("synced")) {
    const std::string batch = make_batch(16 << 10);
    const uint64_t synced_total = static_cast<uint64_t>(opt.synced_ops) * batch.size();
    rep.progress("synced writes, 16KiB batches");
    double raw = 0, log = 0;
    for (int i = 0; i < rounds; ++i) {
      raw = std::max(raw, raw_write(raw_path, batch, synced_total, true));
      std::filesystem::remove(raw_path);
      log = std::max(log, log_append(log_dir, batch, synced_total, true));
      std::filesystem::remove_all(log_dir);
    }
    rep.figure("raw write+fdatasync 16KiB MB/s", raw, "MB/s");
    rep.figure("raw fdatasync/s", raw * 1e6 / batch.size(), "/s");
    rep.figure("log append+flush 16KiB MB/s", log, "MB/s");
    rep.ratio("synced_append_16KiB", log / raw);
    rep.progress("group commit, 4 appenders");
    double gc = best_of(rounds, [&] {
      double v = group_commit(log_dir, batch, opt.synced_ops, 4, nullptr);
      std::filesystem::remove_all(log_dir);
      return v;
    });
    rep.figure("log synced appends/s, 4 appenders", gc, "/s");
    rep.ratio("group_commit_4_vs_raw_fdatasync", gc / (raw * 1e6 / batch.size()));
  }

  if (want("read")) {
    rep.progress("sequential reads");
    const std::string batch = make_batch(16 << 10);
    log_append(log_dir, batch, opt.total_bytes, false);
    // The raw reader reads the very same bytes: the log's own segment files, in order.
    std::vector<std::string> segs;
    for (auto& e : std::filesystem::directory_iterator(log_dir))
      if (e.path().extension() == ".log") segs.push_back(e.path());
    std::sort(segs.begin(), segs.end());
    uint64_t seg_bytes = 0;
    for (auto& p : segs) seg_bytes += std::filesystem::file_size(p);
    auto raw_read_all = [&] {
      double mb = 0, secs = 0;
      for (auto& p : segs) {
        double r = raw_read(p, 1 << 20);
        double b = std::filesystem::file_size(p) / 1e6;
        mb += b;
        secs += b / r;
      }
      return mb / secs;
    };
    double raw = 0, log = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < rounds; ++i) {
      raw = std::max(raw, raw_read_all());
      log = std::max(log, log_read(log_dir, 1 << 20, &bytes));
    }
    if (bytes != seg_bytes) die("log read returned a different size");
    rep.figure("raw pread 1MiB MB/s", raw, "MB/s");
    rep.figure("log read 1MiB MB/s", log, "MB/s");
    rep.ratio("read_1MiB", log / raw);
  }
  if (opt.only.empty() || opt.only == "producers") {
    // Idempotent producers' state: heap bytes per producer id, idle (one batch remembered) and
    // busy (five), from malloc's own count of bytes in use.
    for (int batches : {1, 5}) {
      constexpr int kProducers = 100'000;
      const size_t before = mallinfo2().uordblks;
      auto table = std::make_unique<ProducerStateTable>(kProducers);
      for (int64_t pid = 0; pid < kProducers; ++pid) {
        for (int b = 0; b < batches; ++b) {
          ProducerBatchInfo info;
          info.producer_id = pid;
          info.producer_epoch = 0;
          info.base_sequence = b * 10;
          info.last_offset_delta = 9;
          info.base_offset = pid * 100 + b * 10;
          info.last_offset = info.base_offset + 9;
          table->update(info, 0);
        }
      }
      const double per = static_cast<double>(mallinfo2().uordblks - before) / kProducers;
      rep.figure(std::string("producer state bytes per producer, ") + (batches == 1 ? "idle (1 batch)" : "5 batches"),
                 per, "bytes");
    }
  }
  std::filesystem::remove_all(opt.dir);
  rep.finish();
  return 0;
}

}  // namespace
}  // namespace gannet::storage

int main(int argc, char** argv) {
  gannet::storage::Options opt;
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  opt.dir = std::string(ws ? ws : "/tmp") + "/.gannet/bench";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") opt.dir = value();
    else if (a == "--total-mb") opt.total_bytes = std::stoull(value()) << 20;
    else if (a == "--synced-ops") opt.synced_ops = std::stoi(value());
    else if (a == "--output") opt.json = value() == "json";
    else if (a == "--only") opt.only = value();
    else if (a == "--verbose") opt.verbose = true;
    else if (a == "--rounds") opt.rounds = std::max(1, std::stoi(value()));
    else {
      std::fprintf(stderr,
                   "usage: log_bench [--dir DIR] [--total-mb N] [--synced-ops N] [--output text|json]\n"
                   "                 [--rounds N] [--only buffered|synced|read|producers] [--verbose]\n");
      return 2;
    }
  }
  return gannet::storage::run(opt);
}
