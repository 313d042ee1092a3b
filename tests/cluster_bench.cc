// cluster_bench: the metadata layer's figures on a real local cluster of three combined gannetd
// nodes (issue 4), next to this machine's own limits measured in the same run.
//
//   bazel run -c opt //tests:cluster_bench -- [--partitions 10000] [--topics 100] [--rf 3]
//                                             [--dir DIR] [--failovers 3] [--output json]
//                                             [--server-config KEY=VALUE]...  (every node)
//
// Reports:
//   - partitions created per second: CreateTopics acknowledged by the controller (records
//     committed), and end to end (every broker has created every partition log on disk);
//   - the machine's limits: fdatasync rate, and raw partition-directory creation (mkdir, three
//     empty files, fsync of the directory; 8 threads);
//   - each broker's resident memory per partition replica (RSS growth / replicas hosted);
//   - a restarted broker: clean shutdown time, then start to serving the current metadata image
//     (image loaded) and to unfenced;
//   - controller failover: SIGKILL of the active controller until CreateTopics succeeds again.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/broker.grpc.pb.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
namespace bv1 = broker::v1;
namespace cv1 = controller::v1;
using Clock = std::chrono::steady_clock;

double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::shared_ptr<grpc::Channel> channel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(256 << 20);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
}

int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// fdatasync after each 1 KiB write.
double fsync_rate(const std::string& dir, double seconds) {
  const std::string path = dir + "/fsync.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  std::vector<char> buf(1024, 'x');
  int64_t n = 0;
  const auto start = Clock::now();
  while (secs_since(start) < seconds) {
    if (::write(fd, buf.data(), buf.size()) != 1024 || ::fdatasync(fd) != 0) break;
    ++n;
  }
  ::close(fd);
  std::filesystem::remove(path);
  return n / secs_since(start);
}

// What creating an empty partition costs the file system at least: a directory, its three
// files, and a sync of the directory; 8 threads, like the log manager.
double raw_partition_dirs_per_sec(const std::string& dir, int count) {
  const std::string base = dir + "/rawdirs";
  std::filesystem::create_directories(base);
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        const std::string d = base + "/t-" + std::to_string(i);
        ::mkdir(d.c_str(), 0755);
        for (const char* f : {"/00000000000000000000.log", "/00000000000000000000.index", "/00000000000000000000.timeindex"}) {
          int fd = ::open((d + f).c_str(), O_CREAT | O_WRONLY, 0644);
          ::close(fd);
        }
        int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
        ::fsync(dfd);
        ::close(dfd);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double rate = count / secs_since(start);
  std::filesystem::remove_all(base);
  return rate;
}

class Cluster {
 public:
  Cluster(const std::string& dir, int n, const std::string& extra) : dir_(dir) {
    for (int i = 1; i <= n; ++i) {
      cports_[i] = testing::free_port();
      bports_[i] = testing::free_port();
    }
    std::string voters;
    for (const auto& [id, port] : cports_) {
      voters += (voters.empty() ? "" : ",") + std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    for (int id = 1; id <= n; ++id) {
      testing::write_file(cfg(id), "node.id=" + std::to_string(id) +
                                       "\nprocess.roles=broker,controller\ncontroller.quorum.voters=" + voters +
                                       "\nlisteners=CONTROLLER://127.0.0.1:" + std::to_string(cports_[id]) +
                                       ",GRPC://127.0.0.1:" + std::to_string(bports_[id]) +
                                       "\nlog.dirs=" + dir_ + "/data" + std::to_string(id) + "\n" + extra);
      testing::write_file(dir_ + "/data" + std::to_string(id) + "/meta.properties",
                          "version=1\ncluster.id=bench\nnode.id=" + std::to_string(id) + "\n");
      stubs_[id] = bv1::Broker::NewStub(channel(bports_[id]));
      procs_[id] = std::make_unique<testing::Process>();
    }
  }
  std::string cfg(int id) const { return dir_ + "/node" + std::to_string(id) + ".properties"; }
  std::string data(int id) const { return dir_ + "/data" + std::to_string(id); }
  void start(int id) { procs_[id]->start({testing::runfile("broker/gannetd"), "--config", cfg(id)}, dir_ + "/node" + std::to_string(id) + ".log"); }
  void kill(int id, int sig) { procs_[id]->kill(sig); }
  pid_t pid(int id) { return procs_[id]->pid(); }
  int live(int avoid = -1) {
    for (auto& [id, p] : procs_) {
      if (p->running() && id != avoid) return id;
    }
    return -1;
  }
  bv1::Broker::Stub* stub(int id) { return stubs_[id].get(); }

  std::optional<cv1::DescribeClusterResponse> describe(int via) {
    cv1::DescribeClusterResponse r;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    if (!stubs_[via]->DescribeCluster(&ctx, {}, &r).ok() || r.error_code() != gannet::v1::NONE) return std::nullopt;
    return r;
  }
  bool unfenced(int broker, int64_t min_epoch, int via) {
    auto d = describe(via);
    if (!d) return false;
    for (const auto& b : d->brokers()) {
      if (b.broker_id() == broker) return !b.fenced() && b.broker_epoch() >= min_epoch;
    }
    return false;
  }
  int64_t metadata_offset(int id) {
    bv1::MetadataRequest req;
    req.add_topics("__none__");
    bv1::MetadataResponse r;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    if (!stubs_[id]->Metadata(&ctx, req, &r).ok()) return -1;
    return r.metadata_offset();
  }
  gannet::v1::ErrorCode create(int via, const std::string& name, int partitions, int rf) {
    cv1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_num_partitions(partitions);
    t->set_replication_factor(rf);
    cv1::CreateTopicsResponse r;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    if (!stubs_[via]->CreateTopics(&ctx, req, &r).ok()) return gannet::v1::REQUEST_TIMED_OUT;
    if (r.error_code() != gannet::v1::NONE) return r.error_code();
    return r.topics_size() == 1 ? r.topics(0).error_code() : gannet::v1::UNKNOWN_SERVER_ERROR;
  }
  // Partition directories on a broker's disk.
  int64_t partition_dirs(int id) {
    int64_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(data(id), ec)) {
      const std::string name = e.path().filename();
      if (e.is_directory() && name.rfind("bench", 0) == 0) ++n;
    }
    return n;
  }
  std::vector<int> ids() const {
    std::vector<int> v;
    for (const auto& [id, p] : procs_) v.push_back(id);
    return v;
  }

 private:
  std::string dir_;
  std::map<int, int> cports_, bports_;
  std::map<int, std::unique_ptr<bv1::Broker::Stub>> stubs_;
  std::map<int, std::unique_ptr<testing::Process>> procs_;
};

int run(int argc, char** argv) {
  int partitions = 10'000, topics = 100, rf = 3, failovers = 3;
  std::string dir = "/tmp/gannet-cluster-bench";
  bool json = false;
  std::string extra;  // more server properties for every node
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--partitions") partitions = std::stoi(next());
    else if (a == "--topics") topics = std::stoi(next());
    else if (a == "--rf") rf = std::stoi(next());
    else if (a == "--failovers") failovers = std::stoi(next());
    else if (a == "--dir") dir = next();
    else if (a == "--output") json = next() == "json";
    else if (a == "--server-config") extra += next() + "\n";
    else {
      std::fprintf(stderr, "usage: cluster_bench [--partitions N] [--topics N] [--rf N] [--failovers N] [--dir DIR] [--server-config KEY=VALUE]... [--output json]\n");
      return 2;
    }
  }
  topics = std::max(1, std::min(topics, partitions));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::fprintf(stderr, "cluster_bench: machine baselines...\n");
  const double fsyncs = fsync_rate(dir, 2.0);
  const double raw_dirs = raw_partition_dirs_per_sec(dir, 5000);

  Cluster c(dir, 3, extra);
  for (int id : c.ids()) c.start(id);
  auto t0 = Clock::now();
  while (!(c.unfenced(1, 0, 1) && c.unfenced(2, 0, 1) && c.unfenced(3, 0, 1))) {
    if (secs_since(t0) > 60) {
      std::fprintf(stderr, "cluster_bench: the brokers did not come up\n");
      return 1;
    }
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(1s);
  std::map<int, int64_t> rss_before;
  for (int id : c.ids()) rss_before[id] = rss_kib(c.pid(id));

  std::fprintf(stderr, "cluster_bench: creating %d partitions (RF=%d) in %d topics...\n", partitions, rf, topics);
  const auto create_start = Clock::now();
  for (int t = 0; t < topics; ++t) {
    const int n = partitions / topics + (t < partitions % topics ? 1 : 0);
    auto e = c.create(1 + t % 3, "bench-" + std::to_string(t), n, rf);
    if (e != gannet::v1::NONE) {
      std::fprintf(stderr, "cluster_bench: create failed: %s\n", gannet::v1::ErrorCode_Name(e).c_str());
      return 1;
    }
  }
  const double acked_s = secs_since(create_start);
  const int64_t per_broker = static_cast<int64_t>(partitions) * rf / 3;
  int64_t last_report = 0;
  while (true) {
    int64_t done = 0;
    for (int id : c.ids()) done += std::min<int64_t>(c.partition_dirs(id), per_broker);
    if (done >= per_broker * 3) break;
    if (secs_since(create_start) > 600) {
      std::fprintf(stderr, "cluster_bench: brokers did not create every log in 600 s\n");
      return 1;
    }
    if (done - last_report >= per_broker / 4) {
      std::fprintf(stderr, "  %lld of %lld partition logs on disk (%.1f s)\n", static_cast<long long>(done),
                   static_cast<long long>(per_broker * 3), secs_since(create_start));
      last_report = done;
    }
    std::this_thread::sleep_for(20ms);
  }
  const double on_disk_s = secs_since(create_start);
  std::this_thread::sleep_for(2s);
  std::map<int, double> kib_per_replica;
  double worst_kib = 0;
  for (int id : c.ids()) {
    kib_per_replica[id] = double(rss_kib(c.pid(id)) - rss_before[id]) / per_broker;
    worst_kib = std::max(worst_kib, kib_per_replica[id]);
  }

  // Restart a broker that is not the active controller.
  auto d = c.describe(1);
  const int victim = d && d->controller_id() == 3 ? 2 : 3;
  const int64_t controller_offset = d ? d->metadata_offset() : 0;
  std::fprintf(stderr, "cluster_bench: restarting broker %d...\n", victim);
  auto stop_start = Clock::now();
  c.kill(victim, SIGTERM);
  const double stop_s = secs_since(stop_start);
  auto restart = Clock::now();
  c.start(victim);
  double image_s = -1, unfenced_s = -1;
  while (secs_since(restart) < 120 && (image_s < 0 || unfenced_s < 0)) {
    if (image_s < 0 && c.metadata_offset(victim) >= controller_offset) image_s = secs_since(restart);
    if (unfenced_s < 0 && c.unfenced(victim, (d ? d->metadata_offset() : 0), c.live(victim))) unfenced_s = secs_since(restart);
    std::this_thread::sleep_for(20ms);
  }

  // Controller failovers.
  std::vector<double> failover_ms;
  for (int round = 0; round < failovers; ++round) {
    int via = c.live();
    auto dd = c.describe(via);
    if (!dd) break;
    const int ctl = dd->controller_id();
    via = c.live(ctl);
    std::fprintf(stderr, "cluster_bench: failover %d: SIGKILL of controller %d...\n", round + 1, ctl);
    c.kill(ctl, SIGKILL);
    auto k = Clock::now();
    int attempt = 0;
    while (c.create(via, "failover-" + std::to_string(round) + "-" + std::to_string(attempt++), 1, 1) != gannet::v1::NONE) {
      if (secs_since(k) > 60) break;
      std::this_thread::sleep_for(10ms);
    }
    failover_ms.push_back(secs_since(k) * 1000);
    c.start(ctl);
    auto w = Clock::now();
    while (!c.unfenced(ctl, dd->metadata_offset(), via) && secs_since(w) < 60) std::this_thread::sleep_for(50ms);
  }
  for (int id : c.ids()) c.kill(id, SIGTERM);

  const double max_failover = failover_ms.empty() ? -1 : *std::max_element(failover_ms.begin(), failover_ms.end());
  if (json) {
    std::printf("{\"partitions\":%d,\"replication_factor\":%d,\"topics\":%d,\"create_acked_s\":%.3f,"
                "\"create_acked_per_s\":%.0f,\"logs_on_disk_s\":%.3f,\"logs_on_disk_per_s\":%.0f,"
                "\"machine_fsync_per_s\":%.0f,\"machine_raw_partition_dirs_per_s\":%.0f,"
                "\"rss_kib_per_replica_max\":%.2f,\"restart_stop_s\":%.3f,\"restart_image_s\":%.3f,"
                "\"restart_unfenced_s\":%.3f,\"failover_ms\":[",
                partitions, rf, topics, acked_s, partitions / acked_s, on_disk_s, partitions / on_disk_s, fsyncs,
                raw_dirs, worst_kib, stop_s, image_s, unfenced_s);
    for (size_t i = 0; i < failover_ms.size(); ++i) std::printf("%s%.0f", i ? "," : "", failover_ms[i]);
    std::printf("]}\n");
    return 0;
  }
  std::printf("cluster_bench: 3 combined nodes, %d partitions x RF %d in %d topics\n", partitions, rf, topics);
  std::printf("  machine: fdatasync %.0f/s; raw partition dirs (mkdir + 3 files + dir fsync, 8 threads) %.0f/s\n",
              fsyncs, raw_dirs);
  std::printf("  create, acknowledged by the controller: %.2f s = %.0f partitions/s\n", acked_s, partitions / acked_s);
  std::printf("  create, every log on every broker's disk: %.2f s = %.0f partitions/s (%.0f replica logs/s over the "
              "3 brokers sharing the disk; ratio to raw dirs %.2f)\n",
              on_disk_s, partitions / on_disk_s, 3 * per_broker / on_disk_s, 3 * per_broker / on_disk_s / raw_dirs);
  for (const auto& [id, kib] : kib_per_replica) {
    std::printf("  broker %d resident memory: %.2f KiB per partition replica (%lld replicas)\n", id, kib,
                static_cast<long long>(per_broker));
  }
  std::printf("  restart of broker %d: clean stop %.2f s; start to current image %.2f s; start to unfenced %.2f s\n",
              victim, stop_s, image_s, unfenced_s);
  for (size_t i = 0; i < failover_ms.size(); ++i) {
    std::printf("  controller failover %zu: CreateTopics accepted %.0f ms after SIGKILL\n", i + 1, failover_ms[i]);
  }
  std::printf("  targets: 10,000 partitions < 10 s; < 100 KiB per idle replica; failover < 2000 ms (max %.0f ms)\n",
              max_failover);
  return 0;
}

}  // namespace
}  // namespace gannet

int main(int argc, char** argv) {
  // Under `bazel run` the runfiles sit next to the binary.
  if (!std::getenv("TEST_SRCDIR")) {
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    setenv("TEST_SRCDIR", (self + ".runfiles").c_str(), 1);
    setenv("TEST_WORKSPACE", "gannet", 1);
  }
  return gannet::run(argc, argv);
}
