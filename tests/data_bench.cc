// data_bench: the data path's figures on a local cluster of three combined gannetd nodes
// (issue 5), next to this machine's raw sequential-write bandwidth measured in the same run.
//
//   bazel run -c opt //tests:data_bench -- [--records N] [--dir DIR] [--output json] [--phase P]
//
// Runs, with the C++ client in this process (sharing the two cores with the brokers):
// produce acks=1 to an RF=1 topic and acks=all to an RF=3 topic with 1 KiB and 100 B records,
// then consume an RF=1 topic from the beginning; and the latency of one produce in flight.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/bench_harness.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using testing::loopback_round_trip;
using testing::p50_p99;

using Clock = std::chrono::steady_clock;
using testing::secs_since;

// --output json: the text goes to stderr and every figure is also kept here, printed as one JSON
// object on stdout at the end ({"figures": [{"name", "value", "unit"}, ...]}).
FILE* text_out = stdout;
testing::Figures figures;
void figure(const std::string& name, double value, const std::string& unit) { figures.emplace_back(name, value, unit); }
// One latency line: printed, and kept as two figures.
void latency_line(const char* name, double p50, double p99) {
  std::fprintf(text_out, "  %-44s p50 %.0f us  p99 %.0f us\n", name, p50, p99);
  figure(std::string(name) + " p50", p50, "us");
  figure(std::string(name) + " p99", p99, "us");
}

// Raw sequential write(): 1 MiB writes of `bytes` total into the page cache (what a broker's
// append costs, as storage/log_bench's raw baseline); bytes/s.
// With `to_disk` the time includes the final fdatasync(): the device's sustained sequential write.
double raw_write(const std::string& dir, size_t bytes, bool to_disk = false) {
  const std::string path = dir + "/raw.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  std::vector<char> buf(1 << 20, 'x');
  const auto start = Clock::now();
  for (size_t done = 0; done < bytes; done += buf.size()) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) break;
  }
  double rate = static_cast<double>(bytes) / secs_since(start);
  ::fdatasync(fd);  // untimed unless `to_disk`: the next run starts without this one's dirty pages
  if (to_disk) rate = static_cast<double>(bytes) / secs_since(start);
  ::close(fd);
  std::filesystem::remove(path);
  return rate;
}

// First touch of fresh anonymous memory (mmap, write every page, unmap), bytes/s: what the
// kernel pays to hand out a new page, which each new page-cache page of a log also costs. In a
// VM this includes the host backing the page; it is often far below memcpy.
double fresh_memory(size_t bytes) {
  const auto start = Clock::now();
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  std::memset(p, 1, bytes);
  const double rate = static_cast<double>(bytes) / secs_since(start);
  ::munmap(p, bytes);
  return rate;
}

// A Produce of one prebuilt 100 B record to partition 0 of `topic`, and that partition's leader
// (-1 if unknown): what the bare-request floors send.
std::pair<int32_t, broker::v1::ProduceRequest> bare_produce(testing::Cluster& c, const std::string& topic, int acks) {
  auto md = c.metadata({topic});
  int32_t leader = -1;
  if (md.topics_size() == 1 && md.topics(0).partitions_size() > 0) leader = md.topics(0).partitions(0).leader();
  storage::RecordBatchBuilder builder;
  builder.add(0, std::nullopt, std::string(100, 'x'));
  broker::v1::ProduceRequest req;
  req.set_acks(acks);
  req.set_timeout_ms(10'000);
  auto* pd = req.add_partitions();
  pd->set_topic(topic);
  pd->set_partition(0);
  pd->set_records(*builder.build());
  return {leader, std::move(req)};
}

// The floor under the client's one-in-flight latency: bare unary Produce calls (one 100 B record
// in a prebuilt batch) from this thread straight to the partition's leader, p50/p99 in us. What
// the producer adds on top is its own threads and batching.
std::pair<double, double> raw_produce_latency(testing::Cluster& c, const std::string& topic, int acks, int n) {
  auto [leader, req] = bare_produce(c, topic, acks);
  if (leader < 0) return {-1, -1};
  std::vector<int64_t> us;
  for (int i = 0; i < n; ++i) {
    broker::v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const auto t0 = Clock::now();
    if (!c.broker(leader)->Produce(&ctx, req, &resp).ok()) continue;
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  return p50_p99(us);
}

// The machine's fsync floor: 1 KiB write() + fdatasync() in a loop on one file in `dir` (where
// the brokers' logs are), for `seconds`; syncs/s.
double fdatasync_rate(const std::string& dir, double seconds) {
  const std::string path = dir + "/sync.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  std::vector<char> buf(1024, 'x');
  int64_t n = 0;
  const auto start = Clock::now();
  while (secs_since(start) < seconds) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) || ::fdatasync(fd) != 0) break;
    ++n;
  }
  const double rate = static_cast<double>(n) / secs_since(start);
  ::close(fd);
  std::filesystem::remove(path);
  return rate;
}

// Issue 14 item 11: `producers` threads each sending one small acks=1 Produce at a time, for
// `seconds`, to a one-partition topic with flush.messages=1 (every append is fsynced before its
// answer); appends/s. Concurrent producers share fsyncs (the log's group commit), so with 4 of
// them the rate can pass the machine's one-thread fdatasync rate.
double synced_appends(testing::Cluster& c, const std::string& topic, int producers, double seconds) {
  auto [leader, req] = bare_produce(c, topic, 1);
  if (leader < 0) return -1;
  std::atomic<int64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, req = req] {
      while (secs_since(start) < seconds) {
        broker::v1::ProduceResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        if (!c.broker(leader)->Produce(&ctx, req, &resp).ok() || resp.partitions_size() != 1 ||
            resp.partitions(0).error_code() != gannet::v1::NONE) {
          ++failed;
          continue;
        }
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed > 0) std::fprintf(stderr, "data_bench: %lld synced produce(s) failed\n", static_cast<long long>(failed.load()));
  return static_cast<double>(done.load()) / secs_since(start);
}

// Records as messages (ProduceRecords: the broker partitions and builds the batch) against raw
// batches (Produce with one prebuilt batch of the same records, the client's encoding excluded),
// `threads` callers each with one request of `per_request` 1 KiB records in flight, acks=1, for
// `seconds` each; records/s of both. Keyless records go to a partition the receiving broker leads.
std::pair<double, double> messages_vs_batches(testing::Cluster& c, const std::string& topic, int threads,
                                              int per_request, double seconds) {
  auto md = c.metadata({topic});
  if (md.topics_size() != 1 || md.topics(0).partitions_size() == 0) return {-1, -1};
  const int32_t leader = md.topics(0).partitions(0).leader();
  const std::string value(1024, 'x');
  broker::v1::ProduceRecordsRequest msgs;
  msgs.set_topic(topic);
  msgs.set_acks(1);
  for (int i = 0; i < per_request; ++i) msgs.add_records()->set_value(value);
  storage::RecordBatchBuilder builder;
  for (int i = 0; i < per_request; ++i) builder.add(0, std::nullopt, value);
  broker::v1::ProduceRequest raw;
  raw.set_acks(1);
  auto* pd = raw.add_partitions();
  pd->set_topic(topic);
  pd->set_partition(0);
  pd->set_records(*builder.build());
  auto run = [&](bool messages) {
    std::atomic<int64_t> done{0}, failed{0};
    std::vector<std::thread> ts;
    const auto start = Clock::now();
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&] {
        while (secs_since(start) < seconds) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          bool ok;
          if (messages) {
            broker::v1::ProduceRecordsResponse resp;
            ok = c.broker(leader)->ProduceRecords(&ctx, msgs, &resp).ok() && resp.error_code() == gannet::v1::NONE &&
                 resp.results_size() == per_request && resp.results(0).error_code() == gannet::v1::NONE;
          } else {
            broker::v1::ProduceResponse resp;
            ok = c.broker(leader)->Produce(&ctx, raw, &resp).ok() && resp.partitions_size() == 1 &&
                 resp.partitions(0).error_code() == gannet::v1::NONE;
          }
          (ok ? done : failed) += ok ? per_request : 1;
        }
      });
    }
    for (auto& t : ts) t.join();
    if (failed > 0) std::fprintf(stderr, "data_bench: %lld request(s) failed\n", static_cast<long long>(failed.load()));
    return static_cast<double>(done.load()) / secs_since(start);
  };
  const double batches = run(false);
  const double messages = run(true);
  return {messages, batches};
}

// The same bare Produce, as messages on one ProduceStream: the stream's round trip without a
// call's setup (what the producer pays per request now), p50/p99 in us. With `empty`, the request
// names no partition: the broker appends nothing, so what is left is gRPC and the threads.
std::pair<double, double> stream_produce_latency(testing::Cluster& c, const std::string& topic, int acks, int n, bool empty = false) {
  auto [leader, req] = bare_produce(c, topic, acks);
  if (leader < 0) return {-1, -1};
  if (empty) req.clear_partitions();
  grpc::ClientContext ctx;
  auto stream = c.broker(leader)->ProduceStream(&ctx);
  std::vector<int64_t> us;
  for (int i = 0; i < n; ++i) {
    req.set_correlation_id(i);
    broker::v1::ProduceResponse resp;
    const auto t0 = Clock::now();
    if (!stream->Write(req) || !stream->Read(&resp)) break;
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  stream->WritesDone();
  stream->Finish();
  return p50_p99(us);
}


// A unary RPC that does no work (ListGroups on a broker with no groups): the RPC stack's own
// round trip, p50/p99 in us.
std::pair<double, double> noop_rpc_latency(testing::Cluster& c, int n) {
  std::vector<int64_t> us;
  for (int i = 0; i < n; ++i) {
    broker::v1::ListGroupsRequest req;
    broker::v1::ListGroupsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const auto t0 = Clock::now();
    if (!c.broker(1)->ListGroups(&ctx, req, &resp).ok()) continue;
    us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }
  return p50_p99(us);
}

// End-to-end latency: one 100 B record at a time from a producer (acks=1, linger.ms=0) to a
// consumer long-polling the same partition (both in this process), send to poll() returning it,
// p50/p99 in us. What a pipeline's next stage waits for a record.
std::pair<double, double> end_to_end_latency(const std::string& bootstrap, const std::string& topic, int n) {
  client::ConsumerConfig ccfg;
  ccfg.bootstrap_servers = testing::split_addresses(bootstrap);
  ccfg.auto_offset_reset = "latest";
  client::Consumer consumer(ccfg);
  consumer.assign({{topic, 0}});
  consumer.poll(200);  // the position resolves to the log end
  client::ProducerConfig pcfg;
  pcfg.bootstrap_servers = ccfg.bootstrap_servers;
  pcfg.acks = 1;
  pcfg.linger_ms = 0;
  client::Producer producer(pcfg);
  std::vector<int64_t> us;
  const std::string pad(90, 'x');
  for (int i = 0; i < n; ++i) {
    const std::string tag = std::to_string(i) + ":" + pad;
    client::ProducerRecord r;
    r.topic = topic;
    r.partition = 0;
    r.value = tag;
    const auto sent = Clock::now();
    auto ack = producer.send(std::move(r));
    bool seen = false;
    while (!seen && secs_since(sent) < 10) {
      for (const auto& rec : consumer.poll(1000)) seen |= rec.value == tag;
    }
    if (seen) us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count());
    ack.wait();
  }
  return p50_p99(us);
}

struct Result {
  double records_per_s = 0, bytes_per_s = 0, p50_us = 0, p99_us = 0, max_us = 0;
  int64_t failed = 0;
};

Result produce(const std::string& bootstrap, const std::string& topic, int64_t n, size_t size, int acks,
               size_t batch_size, int64_t in_flight_cap = -1, std::optional<bool> idempotence = std::nullopt) {
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(bootstrap);
  cfg.acks = acks;
  cfg.enable_idempotence = idempotence;
  cfg.batch_size = batch_size;
  cfg.linger_ms = in_flight_cap == 1 ? 0 : 2;
  cfg.buffer_memory = 64 << 20;
  client::Producer p(cfg);
  const std::string payload(size, 'x');
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(n));
  std::mutex mu;
  std::condition_variable cap_cv;
  std::atomic<int64_t> failed{0}, done{0};
  const auto start = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    if (in_flight_cap > 0) {
      // Wait (not spin: the brokers need the cores) until fewer than the cap are in flight.
      std::unique_lock<std::mutex> l(mu);
      cap_cv.wait(l, [&] { return i - done.load() < in_flight_cap; });
    }
    client::ProducerRecord r;
    r.topic = topic;
    r.value = payload;
    const auto sent = Clock::now();
    p.send(std::move(r), [&, sent](const client::RecordMetadata& m) {
      const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count();
      if (!m.ok()) ++failed;
      {
        std::lock_guard<std::mutex> l(mu);
        lat.push_back(us);
        ++done;
      }
      cap_cv.notify_one();
    });
  }
  p.flush();
  Result res;
  const double s = secs_since(start);
  res.records_per_s = static_cast<double>(n) / s;
  res.bytes_per_s = res.records_per_s * static_cast<double>(size);
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    res.p50_us = static_cast<double>(lat[lat.size() / 2]);
    res.p99_us = static_cast<double>(lat[std::min(lat.size() - 1, lat.size() * 99 / 100)]);
    res.max_us = static_cast<double>(lat.back());
  }
  res.failed = failed;
  return res;
}

Result consume(const std::string& bootstrap, const std::string& topic, int partitions, int64_t n, size_t size) {
  client::ConsumerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(bootstrap);
  cfg.auto_offset_reset = "earliest";
  cfg.max_partition_fetch_bytes = 8 << 20;
  client::Consumer c(cfg);
  std::vector<client::TopicPartition> tps;
  for (int p = 0; p < partitions; ++p) tps.push_back({topic, p});
  c.assign(tps);
  int64_t got = 0;
  const auto start = Clock::now();
  const bool trace = std::getenv("DATA_BENCH_TRACE") != nullptr;
  while (got < n && secs_since(start) < 120) {
    const auto t = Clock::now();
    auto recs = c.poll(1000);
    got += static_cast<int64_t>(recs.size());
    if (trace) {
      std::map<int, int> per;
      for (const auto& r : recs) per[r.partition]++;
      std::fprintf(stderr, "poll %.1f ms:", secs_since(t) * 1e3);
      for (auto [p, k] : per) std::fprintf(stderr, " p%d=%d", p, k);
      std::fprintf(stderr, "\n");
    }
  }
  Result r;
  const double s = secs_since(start);
  r.records_per_s = static_cast<double>(got) / s;
  r.bytes_per_s = r.records_per_s * static_cast<double>(size);
  return r;
}

int run(int argc, char** argv) {
  int64_t records = 300'000;
  int64_t soak_seconds = 0;
  // --phase produce / small / rf3 / idempotence / messages / consume / fsync: only that figure (for profiling); --phase soak:
  // only the soak; --phase latency: only the one-in-flight latencies and their floors.
  std::string phase = "all";
  // --soak-seconds: produce at full speed this long, sampling brokers' RSS.
  std::string dir = "/tmp/gannet-data-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--records") records = std::stoll(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
    if (a == "--soak-seconds") soak_seconds = std::stoll(argv[i + 1]);
    if (a == "--phase") phase = argv[i + 1];
    if (a == "--output" && std::string(argv[i + 1]) == "json") text_out = stderr;
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  setenv("TEST_TMPDIR", dir.c_str(), 1);
  // Best of three 1 GiB runs (as storage/log_bench's raw baseline): this VM's page-cache
  // writeback makes single runs swing widely.
  double raw = 0;
  for (int i = 0; i < 3; ++i) raw = std::max(raw, raw_write(dir, 1ull << 30));
  // And the disk's own rate: 2 GiB written and synced (what the page cache drains to).
  const double disk = phase == "all" ? raw_write(dir, 2ull << 30, /*to_disk=*/true) : 0;
  testing::Cluster c(3, "log.retention.check.interval.ms=5000\n");
  c.start_all();
  if (!c.wait_unfenced({1, 2, 3}, std::chrono::seconds(60))) {
    std::fprintf(stderr, "data_bench: the cluster did not come up\n");
    return 1;
  }
  c.create("rf1", 3, 1);
  c.create("rf1small", 3, 1);
  c.create("rf3", 3, 3, {{"min.insync.replicas", "2"}});
  c.create("lat1", 1, 1);
  c.create("lat3", 1, 3, {{"min.insync.replicas", "2"}});
  c.create("synced", 1, 1, {{"flush.messages", "1"}});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string b = c.bootstrap();
  std::fprintf(text_out, "data_bench: 3 combined nodes on loopback; client in this process (2 cores shared)\n");
  std::fprintf(text_out, "  machine: raw sequential write() %.0f MB/s (page cache, 1 GiB in 1 MiB writes)\n", raw / 1e6);
  figure("machine: raw sequential write()", raw / 1e6, "MB/s");
  if (phase == "all") {
    const double fresh = fresh_memory(1ull << 30);
    std::fprintf(text_out, "  machine: first touch of fresh memory %.0f MB/s (1 GiB, each page new)\n", fresh / 1e6);
    figure("machine: first touch of fresh memory", fresh / 1e6, "MB/s");
  }
  if (disk > 0) {
    std::fprintf(text_out, "  machine: raw sequential write to disk %.0f MB/s (2 GiB + fdatasync)\n", disk / 1e6);
    figure("machine: raw sequential write to disk", disk / 1e6, "MB/s");
  }
  auto show = [&](const char* name, const Result& r) {
    char vs_disk[32] = "";
    if (disk > 0) std::snprintf(vs_disk, sizeof(vs_disk), " (disk %.2f)", r.bytes_per_s / disk);
    figure(std::string(name) + " records/s", r.records_per_s, "records/s");
    figure(std::string(name) + " MB/s", r.bytes_per_s / 1e6, "MB/s");
    figure(std::string(name) + " p50", r.p50_us, "us");
    figure(std::string(name) + " p99", r.p99_us, "us");
    std::fprintf(text_out, "  %-44s %9.0f records/s %8.1f MB/s  ratio %.2f%s  p50 %.0f us  p99 %.0f us  max %.0f us%s\n", name,
                r.records_per_s, r.bytes_per_s / 1e6, r.bytes_per_s / raw, vs_disk, r.p50_us, r.p99_us, r.max_us,
                r.failed ? "  (FAILURES)" : "");
    std::fflush(text_out);
  };
  // One produce in flight at a time, each beside its floor (the bare RPC).
  auto one_in_flight = [&] {
    auto [lp50, lp99] = loopback_round_trip(5000);
    latency_line("machine: loopback TCP round trip (blocking)", lp50, lp99);
    show("1 produce in flight, acks=1 (latency)", produce(b, "lat1", 5000, 100, 1, 16384, 1));
    auto [s1p50, s1p99] = stream_produce_latency(c, "lat1", 1, 5000);
    latency_line("  floor: bare request on ProduceStream, acks=1", s1p50, s1p99);
    auto [e1p50, e1p99] = stream_produce_latency(c, "lat1", 1, 5000, /*empty=*/true);
    latency_line("  floor: empty request on ProduceStream", e1p50, e1p99);
    auto [r1p50, r1p99] = raw_produce_latency(c, "lat1", 1, 2000);
    latency_line("  (unary Produce call, acks=1)", r1p50, r1p99);
    auto [e2e50, e2e99] = end_to_end_latency(b, "lat1", 2000);
    latency_line("produce -> consume, 1 record at a time", e2e50, e2e99);
    show("1 produce in flight, acks=all RF=3 (latency)", produce(b, "lat3", 5000, 100, -1, 16384, 1));
    auto [s3p50, s3p99] = stream_produce_latency(c, "lat3", -1, 5000);
    latency_line("  floor: bare request on ProduceStream, acks=all", s3p50, s3p99);
    auto [r3p50, r3p99] = raw_produce_latency(c, "lat3", -1, 2000);
    latency_line("  (unary Produce call, acks=all)", r3p50, r3p99);
  };
  auto stop = [&] {
    for (int id : c.ids()) c.kill(id, SIGTERM);
    if (text_out != stdout) testing::print_figures_json(figures);
    return 0;
  };
  // flush.messages=1: synced appends/s with 1 and 4 producers, beside the fdatasync rate.
  auto synced = [&] {
    const double floor = fdatasync_rate(dir, 3.0);
    std::fprintf(text_out, "  %-44s %9.0f syncs/s\n", "machine: write 1 KiB + fdatasync, one thread", floor);
    figure("machine: write 1 KiB + fdatasync, one thread", floor, "syncs/s");
    for (int producers : {1, 4}) {
      const double r = synced_appends(c, "synced", producers, 5.0);
      char name[64];
      std::snprintf(name, sizeof(name), "flush.messages=1, %d producer%s, acks=1", producers, producers > 1 ? "s" : "");
      std::fprintf(text_out, "  %-44s %9.0f appends/s  ratio %.2f\n", name, r, r / floor);
      figure(name, r, "appends/s");
    }
    // The same requests to a topic without flush.messages: what the RPCs and the CPUs allow.
    const double unsynced = synced_appends(c, "lat1", 4, 5.0);
    std::fprintf(text_out, "  %-44s %9.0f appends/s\n", "  floor: the same, 4 producers, no fsync", unsynced);
    figure("floor: the same, 4 producers, no fsync", unsynced, "appends/s");
    std::fflush(text_out);
  };
  if (phase == "fsync") {
    synced();
    return stop();
  }
  if (phase == "latency") {
    auto [np50, np99] = noop_rpc_latency(c, 2000);
    latency_line("machine: unary RPC doing nothing (ListGroups)", np50, np99);
    one_in_flight();
    return stop();
  }
  if (phase == "produce") {
    // Only the acks=1 1 KiB produce, three times as long (for profiling).
    std::fprintf(stderr, "data_bench: producing\n");
    show("produce 1 KiB, acks=1, RF=1", produce(b, "rf1", records * 3, 1024, 1, 1 << 20));
    return stop();
  }
  if (phase == "small") {
    std::fprintf(stderr, "data_bench: producing\n");
    show("produce 100 B, acks=1, RF=1", produce(b, "rf1small", records * 3, 100, 1, 1 << 20));
    return stop();
  }
  // Idempotence's cost: acks=all RF=3 without and with it in the same run, in the order off, on,
  // on, off (so a drift over the run, as the page cache fills, weighs on both alike), each on a
  // fresh topic deleted after it.
  auto idempotence = [&] {
    Result off[2], on[2];
    int n = 0;
    auto run = [&](bool idem) {
      const std::string topic = "idem" + std::to_string(n++);
      c.create(topic, 3, 3, {{"min.insync.replicas", "2"}});
      std::this_thread::sleep_for(std::chrono::seconds(1));
      Result r = produce(b, topic, records, 1024, -1, 1 << 20, -1, idem);
      c.delete_topic(topic);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      return r;
    };
    off[0] = run(false);
    on[0] = run(true);
    on[1] = run(true);
    off[1] = run(false);
    show("produce 1 KiB, acks=all, RF=3, not idempotent", off[0]);
    show("produce 1 KiB, acks=all, RF=3, idempotent", on[0]);
    show("produce 1 KiB, acks=all, RF=3, idempotent (again)", on[1]);
    show("produce 1 KiB, acks=all, RF=3, not idempotent (again)", off[1]);
    const double ratio = (on[0].bytes_per_s + on[1].bytes_per_s) / (off[0].bytes_per_s + off[1].bytes_per_s);
    std::fprintf(text_out, "  %-44s %9.3f\n", "idempotent / not idempotent (throughput)", ratio);
    figure("idempotent / not idempotent, acks=all RF=3", ratio, "ratio");
  };
  if (phase == "rf3") {
    std::fprintf(stderr, "data_bench: producing\n");
    show("produce 1 KiB, acks=all, RF=3", produce(b, "rf3", records, 1024, -1, 1 << 20));
    return stop();
  }
  auto messages = [&] {
    auto [m, r] = messages_vs_batches(c, "rf1", 4, 500, 5.0);
    std::fprintf(text_out, "  %-44s %9.0f records/s  %7.1f MB/s\n", "produce 1 KiB as messages (ProduceRecords)", m, m * 1024 / 1e6);
    std::fprintf(text_out, "  %-44s %9.0f records/s  %7.1f MB/s  messages/raw %.2f\n",
                 "  floor: the same records as a prebuilt batch", r, r * 1024 / 1e6, m / r);
    figure("produce 1 KiB as messages, acks=1 RF=1", m, "records/s");
    figure("floor: prebuilt batch of the same records", r, "records/s");
  };
  if (phase == "messages") {
    messages();
    return stop();
  }
  if (phase == "idempotence") {
    std::fprintf(stderr, "data_bench: producing, with and without idempotence\n");
    idempotence();
    return stop();
  }
  if (phase == "consume") {
    produce(b, "rf1", records, 1024, 1, 1 << 20);
    std::fprintf(stderr, "data_bench: consuming\n");
    show("consume 1 KiB, RF=1 topic, from the beginning", consume(b, "rf1", 3, records, 1024));
    return stop();
  }
  if (phase != "soak") {
    show("produce 1 KiB, acks=1, RF=1", produce(b, "rf1", records, 1024, 1, 1 << 20));
    show("produce 100 B, acks=1, RF=1", produce(b, "rf1small", records * 3, 100, 1, 1 << 20));
    show("produce 1 KiB, acks=all, RF=3", produce(b, "rf3", records, 1024, -1, 1 << 20));
    idempotence();
    messages();
    show("consume 1 KiB, RF=1 topic, from the beginning", consume(b, "rf1", 3, records, 1024));
    one_in_flight();
    show("1000 in flight, acks=all RF=3 (latency)", produce(b, "lat3", 100'000, 100, -1, 16384, 1000));
    synced();
  }
  if (soak_seconds > 0) {
    // Full speed for soak_seconds; retention keeps the disk bounded. RSS sampled every 5 s.
    c.create("soak", 3, 1, {{"retention.bytes", "268435456"}, {"segment.bytes", "67108864"}});
    std::this_thread::sleep_for(std::chrono::seconds(2));
    auto rss = [&](int id) {
      std::ifstream in("/proc/" + std::to_string(c.pid(id)) + "/status");
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
      }
      return -1LL;
    };
    std::atomic<bool> stop{false};
    std::thread load([&] {
      client::ProducerConfig cfg;
      cfg.bootstrap_servers = testing::split_addresses(b);
      cfg.acks = 1;
      cfg.batch_size = 1 << 20;
      client::Producer p(cfg);
      const std::string payload(1024, 'x');
      while (!stop) {
        client::ProducerRecord r;
        r.topic = "soak";
        r.value = payload;
        p.send(std::move(r), nullptr);
      }
      p.flush();
    });
    std::map<int, std::vector<long long>> samples;
    const auto start = Clock::now();
    while (secs_since(start) < static_cast<double>(soak_seconds)) {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      for (int id : c.ids()) samples[id].push_back(rss(id));
    }
    stop = true;
    load.join();
    for (const auto& [id, v] : samples) {
      // After warm-up (the first third): growth from the first to the last sample.
      const size_t warm = v.size() / 3;
      std::fprintf(text_out, "  soak %llds, broker %d RSS KiB:", static_cast<long long>(soak_seconds), id);
      for (long long x : v) std::fprintf(text_out, " %lld", x);
      std::fprintf(text_out, "  (after warm-up %+.1f%%)\n", v.size() > warm + 1 ? 100.0 * (v.back() - v[warm]) / v[warm] : 0.0);
    }
  }
  return stop();
}

}  // namespace
}  // namespace gannet

int main(int argc, char** argv) {
  gannet::testing::use_runfiles_beside_binary();
  return gannet::run(argc, argv);
}
