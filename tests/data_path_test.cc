// The data path on three real combined nodes: acks=all produce to an RF=3 topic with
// min.insync.replicas=2, consumers read only committed records, a SIGKILLed partition leader is
// replaced and no acknowledged record is lost, the restarted broker catches up and rejoins the
// ISR, and bad produce input gets its typed error while others keep producing.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "client/producer.h"
#include "storage/record_batch.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::bv1::FetchRequest;
using testing::bv1::FetchResponse;
using testing::bv1::ProduceRequest;
using testing::bv1::ProduceResponse;
using testing::Cluster;

std::string batch_of(const std::vector<std::string>& values) {
  storage::RecordBatchBuilder b;
  for (const auto& v : values) b.add(1'700'000'000'000, std::nullopt, v);
  return *b.build();
}

struct ProduceResult {
  gannet::v1::ErrorCode error = gannet::v1::UNKNOWN_SERVER_ERROR;
  int64_t base_offset = -1;
  int32_t leader = -1;
};

class DataPath {
 public:
  explicit DataPath(Cluster& c) : c_(c) {}

  int leader_of(const std::string& topic, int partition) {
    auto md = c_.metadata({topic});
    if (md.topics_size() != 1 || partition >= md.topics(0).partitions_size()) return -1;
    return md.topics(0).partitions(partition).leader();
  }

  ProduceResult produce(const std::string& topic, int partition, const std::string& records, int acks,
                        int via = -1) {
    ProduceResult out;
    if (via < 0) via = leader_of(topic, partition);
    if (via < 0 || !c_.running(via)) return out;
    ProduceRequest req;
    req.set_acks(acks);
    req.set_timeout_ms(10'000);
    auto* pd = req.add_partitions();
    pd->set_topic(topic);
    pd->set_partition(partition);
    pd->set_records(records);
    ProduceResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 15s);
    if (!c_.broker(via)->Produce(&ctx, req, &resp).ok() || resp.partitions_size() != 1) return out;
    out.error = resp.partitions(0).error_code();
    out.base_offset = resp.partitions(0).base_offset();
    out.leader = resp.partitions(0).leader_id();
    return out;
  }

  // Every committed record of the partition, read from its leader.
  std::vector<std::string> consume(const std::string& topic, int partition) {
    std::vector<std::string> values;
    int64_t offset = 0;
    for (int round = 0; round < 1000; ++round) {
      const int leader = leader_of(topic, partition);
      if (leader < 0 || !c_.running(leader)) return values;
      FetchRequest req;
      req.set_replica_id(-1);
      req.set_max_wait_ms(0);
      auto* pd = req.add_partitions();
      pd->set_topic(topic);
      pd->set_partition(partition);
      pd->set_fetch_offset(offset);
      pd->set_current_leader_epoch(-1);
      pd->set_last_fetched_epoch(-1);
      FetchResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      if (!c_.broker(leader)->Fetch(&ctx, req, &resp).ok() || resp.partitions_size() != 1) continue;
      const auto& r = resp.partitions(0);
      if (r.error_code() != gannet::v1::NONE) continue;
      const std::string& data = r.records();
      size_t pos = 0;
      while (pos + storage::kBatchHeaderSize <= data.size()) {
        storage::RecordBatchView view(reinterpret_cast<const uint8_t*>(data.data()) + pos, data.size() - pos);
        const size_t size = static_cast<size_t>(view.length()) + 12;
        storage::RecordBatchView batch(reinterpret_cast<const uint8_t*>(data.data()) + pos, size);
        auto it = storage::RecordIterator::create(batch);
        EXPECT_TRUE(it.ok());
        storage::Record rec;
        while (it.ok() && *it->next(&rec)) {
          if (rec.offset >= offset) {
            values.emplace_back(*rec.value);
            offset = rec.offset + 1;
          }
        }
        pos += size;
      }
      if (offset >= r.high_watermark()) return values;
    }
    return values;
  }

 private:
  Cluster& c_;
};

TEST(DataPath, AcknowledgedRecordsSurviveTheLeadersDeath) {
  Cluster c(3, "replica.lag.time.max.ms=3000\nreplica.fetch.wait.max.ms=200\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("events", 3, 3, {{"min.insync.replicas", "2"}}), gannet::v1::NONE);
  DataPath d(c);
  const uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << std::endl;
  std::mt19937_64 rng(seed);

  std::map<int, std::vector<std::string>> acked;  // partition -> values acknowledged, in order
  int sent = 0;
  auto send_round = [&](int batches) {
    for (int i = 0; i < batches; ++i) {
      const int p = static_cast<int>(rng() % 3);
      std::vector<std::string> values;
      for (int j = 0; j < 5; ++j) values.push_back("m" + std::to_string(sent++));
      ProduceResult r;
      // Retry on a moved leader, as a producer would (a retry may duplicate; duplicates are allowed).
      for (int attempt = 0; attempt < 50; ++attempt) {
        r = d.produce("events", p, batch_of(values), -1);
        if (r.error == gannet::v1::NONE) break;
        std::this_thread::sleep_for(100ms);
      }
      if (r.error == gannet::v1::NONE) {
        for (auto& v : values) acked[p].push_back(v);
      }
    }
  };
  send_round(60);
  size_t acked_before = 0;
  for (auto& [p, v] : acked) acked_before += v.size();
  EXPECT_EQ(acked_before, 300u) << "every acks=all produce to a healthy cluster succeeds";

  // Consumers see exactly what was acknowledged, in order.
  for (int p = 0; p < 3; ++p) EXPECT_EQ(d.consume("events", p), acked[p]) << "partition " << p;

  // SIGKILL the leader of partition 0 while acks=all produces to it are outstanding and both of
  // its followers are stopped, so nothing written since is on any follower: if the leader
  // acknowledged before its ISR had the records (a HW that ignored the followers), those records
  // die with it. The followers resume before the controller elects one of them; then keep
  // producing and check nothing acknowledged is lost.
  const int victim = d.leader_of("events", 0);
  ASSERT_GE(victim, 1);
  std::vector<int> followers;
  for (int id : {1, 2, 3}) {
    if (id != victim) followers.push_back(id);
  }
  for (int f : followers) c.kill(f, SIGSTOP);
  std::vector<std::string> in_flight_acked;
  std::thread writer([&] {
    for (int i = 0; i < 5; ++i) {
      std::vector<std::string> values;
      for (int j = 0; j < 5; ++j) values.push_back("k" + std::to_string(i) + "-" + std::to_string(j));
      ProduceResult r = d.produce("events", 0, batch_of(values), -1, victim);  // one attempt each
      if (r.error == gannet::v1::NONE) in_flight_acked.insert(in_flight_acked.end(), values.begin(), values.end());
    }
  });
  std::this_thread::sleep_for(700ms);  // well inside replica.lag.time.max.ms: the ISR is still whole
  c.kill(victim, SIGKILL);
  for (int f : followers) c.kill(f, SIGCONT);
  writer.join();
  std::cout << "acknowledged while the followers were stopped: " << in_flight_acked.size() << std::endl;
  for (auto& v : in_flight_acked) acked[0].push_back(v);
  send_round(60);
  for (int p = 0; p < 3; ++p) {
    std::vector<std::string> got = d.consume("events", p);
    std::set<std::string> have(got.begin(), got.end());
    size_t missing = 0;
    for (const auto& v : acked[p]) missing += have.count(v) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "partition " << p << ": acknowledged records lost (seed " << seed << ")";
    // Per partition, acknowledged records appear in send order.
    std::map<std::string, size_t> first;
    for (size_t i = 0; i < got.size(); ++i) first.emplace(got[i], i);
    for (size_t i = 1; i < acked[p].size(); ++i) {
      EXPECT_LT(first[acked[p][i - 1]], first[acked[p][i]]) << "partition " << p << " out of order";
    }
    std::cout << "partition " << p << ": " << acked[p].size() << " acknowledged, " << got.size() << " read ("
              << got.size() - have.size() << " duplicates)" << std::endl;
  }

  // The killed broker comes back, catches up as a follower and rejoins every ISR.
  c.start(victim);
  EXPECT_TRUE(testing::wait_until([&] {
    auto md = c.metadata({"events"});
    for (const auto& p : md.topics(0).partitions()) {
      if (p.isr_size() != 3) return false;
    }
    return true;
  }, 30s)) << c.metadata({"events"}).ShortDebugString();
}

// Issue 14.5: a Fetch on the client port naming a follower's replica id with a broker epoch above
// the registered one moved the HW without the data: with both followers of an RF=3 partition
// stopped, one such fetch per follower at the log end took the HW from 50 to 51, and acks=all
// would then acknowledge a record only the leader holds. A follower's fetch counts only with
// exactly the registered broker epoch.
TEST(DataPath, AForgedReplicaFetchDoesNotMoveTheHighWatermark) {
  Cluster c(3, "replica.lag.time.max.ms=30000\nreplica.fetch.wait.max.ms=200\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("forge", 1, 3, {}), gannet::v1::NONE);
  DataPath d(c);
  std::vector<std::string> fifty;
  for (int i = 0; i < 50; ++i) fifty.push_back("r" + std::to_string(i));
  ProduceResult first;
  ASSERT_TRUE(testing::wait_until([&] {
    first = d.produce("forge", 0, batch_of(fifty), -1);
    return first.error == gannet::v1::NONE;
  }, 20s));
  auto md = c.metadata({"forge"});
  ASSERT_EQ(md.topics_size(), 1);
  const auto& pm = md.topics(0).partitions(0);
  const int leader = pm.leader();
  const int32_t epoch = pm.leader_epoch();
  std::vector<int> followers;
  for (int r : pm.replicas()) {
    if (r != leader) followers.push_back(r);
  }
  ASSERT_EQ(followers.size(), 2u);
  ASSERT_EQ(d.consume("forge", 0).size(), 50u);
  for (int f : followers) c.kill(f, SIGSTOP);
  ASSERT_EQ(d.produce("forge", 0, batch_of({"only-on-the-leader"}), 1, leader).error, gannet::v1::NONE);  // metadata could ask a stopped broker
  auto hw_now = [&] {
    FetchRequest req;
    req.set_replica_id(-1);
    auto* pd = req.add_partitions();
    pd->set_topic("forge");
    pd->set_partition(0);
    pd->set_fetch_offset(0);
    pd->set_current_leader_epoch(-1);
    pd->set_last_fetched_epoch(-1);
    FetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    if (!c.broker(leader)->Fetch(&ctx, req, &resp).ok() || resp.partitions_size() != 1) return int64_t{-1};
    return resp.partitions(0).high_watermark();
  };
  EXPECT_EQ(hw_now(), 50);
  for (int64_t forged_epoch : {int64_t{1} << 40, int64_t{-1} + (int64_t{1} << 62)}) {
    for (int f : followers) {
      FetchRequest req;
      req.set_replica_id(f);
      req.set_broker_epoch(forged_epoch);
      auto* pd = req.add_partitions();
      pd->set_topic("forge");
      pd->set_partition(0);
      pd->set_fetch_offset(51);
      pd->set_current_leader_epoch(epoch);
      pd->set_last_fetched_epoch(epoch);
      FetchResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      ASSERT_TRUE(c.broker(leader)->Fetch(&ctx, req, &resp).ok());
    }
  }
  EXPECT_EQ(hw_now(), 50) << "forged follower fetches moved the HW past records only the leader holds";
  for (int f : followers) c.kill(f, SIGCONT);
  EXPECT_TRUE(testing::wait_until([&] { return hw_now() == 51; }, 20s)) << "the real followers' fetches move it";
}

TEST(DataPath, BadProduceInputGetsTypedErrors) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("t", 1, 3, {{"max.message.bytes", "2000"}}), gannet::v1::NONE);
  DataPath d(c);
  const int leader = d.leader_of("t", 0);
  ASSERT_GE(leader, 1);
  // The leader acts on the metadata log a moment after the controller wrote it (clients retry
  // NOT_LEADER_OR_FOLLOWER): wait until it answers as the leader (a refused batch appends nothing).
  ASSERT_TRUE(testing::wait_until([&] { return d.produce("t", 0, "not a batch", 1).error == gannet::v1::CORRUPT_MESSAGE; }, 10s));
  EXPECT_EQ(d.produce("nope", 0, batch_of({"x"}), 1, leader).error, gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(d.produce("t", 7, batch_of({"x"}), 1, leader).error, gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  const int other = leader % 3 + 1;
  // (Each broker learns of the topic from the metadata log; wait until `other` has.)
  ASSERT_TRUE(testing::wait_until([&] { return c.metadata({"t"}, other).topics(0).error_code() == gannet::v1::NONE; }, 10s));
  ProduceResult nl = d.produce("t", 0, batch_of({"x"}), 1, other);
  EXPECT_EQ(nl.error, gannet::v1::NOT_LEADER_OR_FOLLOWER);
  EXPECT_EQ(nl.leader, leader) << "the answer names the leader";
  std::string corrupt = batch_of({"hello"});
  corrupt[corrupt.size() - 1] ^= 0x5a;
  EXPECT_EQ(d.produce("t", 0, corrupt, 1).error, gannet::v1::CORRUPT_MESSAGE);
  EXPECT_EQ(d.produce("t", 0, batch_of({std::string(5000, 'x')}), 1).error, gannet::v1::MESSAGE_TOO_LARGE);
  EXPECT_EQ(d.produce("t", 0, "not a batch", 1).error, gannet::v1::CORRUPT_MESSAGE);
  EXPECT_EQ(d.produce("t", 0, batch_of({"ok"}), 5).error, gannet::v1::INVALID_REQUIRED_ACKS);
  // Meanwhile good produces go on, and only they are in the log.
  ProduceResult a = d.produce("t", 0, batch_of({"a", "b"}), -1);
  ASSERT_EQ(a.error, gannet::v1::NONE);
  EXPECT_EQ(a.base_offset, 0);
  ProduceResult b = d.produce("t", 0, batch_of({"c"}), 1);
  ASSERT_EQ(b.error, gannet::v1::NONE);
  EXPECT_EQ(b.base_offset, 2);
  EXPECT_TRUE(testing::wait_until([&] { return d.consume("t", 0).size() == 3; }, 10s));
  EXPECT_EQ(d.consume("t", 0), (std::vector<std::string>{"a", "b", "c"}));
  // A fetch that names a stale leader epoch is fenced; one from the future is unknown.
  auto fetch_epoch = [&](int32_t epoch) {
    FetchRequest req;
    req.set_replica_id(-1);
    auto* pd = req.add_partitions();
    pd->set_topic("t");
    pd->set_partition(0);
    pd->set_fetch_offset(0);
    pd->set_current_leader_epoch(epoch);
    pd->set_last_fetched_epoch(-1);
    FetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    EXPECT_TRUE(c.broker(leader)->Fetch(&ctx, req, &resp).ok());
    return resp.partitions_size() == 1 ? resp.partitions(0).error_code() : gannet::v1::UNKNOWN_SERVER_ERROR;
  };
  const int32_t epoch = c.metadata({"t"}).topics(0).partitions(0).leader_epoch();
  EXPECT_EQ(fetch_epoch(epoch), gannet::v1::NONE);
  if (epoch > 0) EXPECT_EQ(fetch_epoch(epoch - 1), gannet::v1::FENCED_LEADER_EPOCH);
  EXPECT_EQ(fetch_epoch(epoch + 1), gannet::v1::UNKNOWN_LEADER_EPOCH);
  // Fetching past the log end is out of range.
  {
    FetchRequest req;
    req.set_replica_id(-1);
    auto* pd = req.add_partitions();
    pd->set_topic("t");
    pd->set_partition(0);
    pd->set_fetch_offset(1000);
    pd->set_current_leader_epoch(-1);
    FetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ASSERT_TRUE(c.broker(leader)->Fetch(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.partitions(0).error_code(), gannet::v1::OFFSET_OUT_OF_RANGE);
  }
}

// A send that waits for buffer.memory makes every batch ready (as Kafka's accumulator does), even
// with linger.ms far off: else a buffer full of lingering batches fails sends with a healthy
// cluster.
TEST(DataPath, ASendWaitingForBufferMemorySendsTheLingeringBatches) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("linger", 3, 1), gannet::v1::NONE);
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = 1;
  cfg.buffer_memory = 256 << 10;
  cfg.batch_size = 1 << 20;   // no batch fills
  cfg.linger_ms = 600'000;    // nor lingers out during the test
  cfg.max_block_ms = 3'000;
  client::Producer p(cfg);
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex mu;
  const auto t0 = std::chrono::steady_clock::now();
  const int n = 2'000;  // 2 MB of values: eight buffers' worth
  for (int i = 0; i < n; ++i) {
    client::ProducerRecord r;
    r.topic = "linger";
    r.value = std::string(1024, 'v');
    p.send(std::move(r), [&](const client::RecordMetadata& m) {
      if (m.ok()) {
        ++ok;
        return;
      }
      std::lock_guard<std::mutex> l(mu);
      if (failed++ == 0) first_error = m.message;
    });
    if (failed > 0) break;
  }
  p.flush();
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_EQ(ok.load(), n);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);
}

// Heap bytes in use in this process (small chunks and mmapped large ones).
size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// buffer.memory bounds the memory the batches take, not the records' sizes: a batch's buffer
// grows by doubling (and a batch started after a full one reserves batch.size), so counting
// record sizes let the heap grow to ~1.5x buffer.memory here. The process's heap is measured.
TEST(DataPath, BufferMemoryBoundsTheBatchesBuffersNotJustTheirRecords) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("heap", 5, 1), gannet::v1::NONE);
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = 1;
  cfg.buffer_memory = 8 << 20;
  cfg.batch_size = 4 << 20;  // no batch fills: nothing is sent while the brokers are stopped
  cfg.linger_ms = 600'000;
  cfg.max_block_ms = 0;  // fail at once when full: a send that waits would drain the batches
  client::Producer p(cfg);
  // Warm up (metadata, streams), then stop every broker: what is sent now stays buffered.
  for (int i = 0; i < 5; ++i) {
    client::ProducerRecord r;
    r.topic = "heap";
    r.partition = i;
    r.value = "warm";
    p.send(std::move(r), nullptr);
  }
  ASSERT_TRUE(testing::wait_until([&] { return p.flush(), p.buffered_bytes() == 0; }, 20s));
  struct Resume {
    Cluster& c;
    ~Resume() {
      for (int id : {1, 2, 3}) c.kill(id, SIGCONT);
    }
  } resume{c};
  for (int id : {1, 2, 3}) c.kill(id, SIGSTOP);
  const size_t before = heap_in_use();
  std::atomic<int> failed{0};
  size_t accepted = 0;
  size_t peak_buffered = 0;
  const std::string value(1024, 'v');
  for (int i = 0; i < 40'000 && failed == 0; ++i) {
    client::ProducerRecord r;
    r.topic = "heap";
    r.partition = i % 5;
    r.value = value;
    p.send(std::move(r), [&](const client::RecordMetadata& m) { failed += m.ok() ? 0 : 1; });
    if (failed == 0) accepted += value.size();
    peak_buffered = std::max(peak_buffered, p.buffered_bytes());
  }
  const size_t grown = heap_in_use() - std::min(before, heap_in_use());
  std::cout << "accepted " << accepted << " bytes of values; heap grew " << grown << " bytes; buffer.memory "
            << cfg.buffer_memory << std::endl;
  EXPECT_GT(failed.load(), 0) << "with max.block.ms=0, a send into a full buffer fails";
  EXPECT_LE(peak_buffered, cfg.buffer_memory);
  EXPECT_LE(grown, cfg.buffer_memory + (512 << 10)) << "the batches took more than buffer.memory";
  EXPECT_GE(accepted, cfg.buffer_memory / 2) << "buffer.memory counted far more than the batches take";
  for (int id : {1, 2, 3}) c.kill(id, SIGCONT);
  p.flush();
  EXPECT_EQ(p.buffered_bytes(), 0u);
}

// The producer never holds more than buffer.memory: with the only replica's broker stopped,
// send() blocks (up to max.block.ms) and then fails instead of buffering without bound.
TEST(DataPath, TheProducerStaysWithinBufferMemory) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("solo", 1, 1), gannet::v1::NONE);
  DataPath d(c);
  const int leader = d.leader_of("solo", 0);
  ASSERT_GE(leader, 1);
  ASSERT_TRUE(testing::wait_until([&] { return d.produce("solo", 0, batch_of({"x"}), 1).error == gannet::v1::NONE; }, 10s));
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = 1;
  cfg.buffer_memory = 256 * 1024;
  cfg.max_block_ms = 300;
  cfg.request_timeout_ms = 2000;
  cfg.delivery_timeout_ms = 4000;
  client::Producer p(cfg);
  c.kill(leader, SIGSTOP);
  std::atomic<int> failed{0};
  size_t peak = 0;
  for (int i = 0; i < 2000; ++i) {
    client::ProducerRecord r;
    r.topic = "solo";
    r.value = std::string(1024, 'v');
    p.send(std::move(r), [&](const client::RecordMetadata& m) { failed += m.ok() ? 0 : 1; });
    peak = std::max(peak, p.buffered_bytes());
    if (failed > 0 && i > 400) break;
  }
  EXPECT_LE(peak, cfg.buffer_memory) << "buffered beyond buffer.memory";
  EXPECT_GT(failed.load(), 0) << "sends into a full buffer must fail after max.block.ms";
  c.kill(leader, SIGCONT);
  p.flush();
  EXPECT_EQ(p.buffered_bytes(), 0u);
}

// Under load a partition's queued batches go out together in one request (one append): every
// record's acknowledged offset must still be the offset it was written at, in send order.
TEST(DataPath, BatchesSentTogetherReportEachRecordsOwnOffset) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("many", 1, 3), gannet::v1::NONE);
  client::ProducerConfig cfg;
  cfg.bootstrap_servers = testing::split_addresses(c.bootstrap());
  cfg.acks = -1;
  cfg.batch_size = 1024;  // ~10 records a batch: many batches queue behind each request
  cfg.linger_ms = 0;
  client::Producer p(cfg);
  constexpr int kRecords = 20'000;
  std::mutex mu;
  std::map<int64_t, std::string> acked;  // offset -> value
  std::atomic<int> failed{0};
  for (int i = 0; i < kRecords; ++i) {
    client::ProducerRecord r;
    r.topic = "many";
    r.partition = 0;
    r.value = "v" + std::to_string(i) + std::string(80, '.');
    const std::string value = *r.value;
    p.send(std::move(r), [&, value](const client::RecordMetadata& m) {
      if (!m.ok()) {
        ++failed;
        return;
      }
      std::lock_guard<std::mutex> l(mu);
      EXPECT_TRUE(acked.emplace(m.offset, value).second) << "offset " << m.offset << " acknowledged twice";
    });
  }
  p.flush();
  ASSERT_EQ(failed.load(), 0);
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRecords));
  // Send order = offset order, and each offset holds the record acknowledged for it.
  int i = 0;
  for (const auto& [offset, value] : acked) {
    ASSERT_EQ(offset, i) << "offsets not contiguous from 0 in send order";
    ASSERT_EQ(value.substr(0, value.find('.')), "v" + std::to_string(i));
    ++i;
  }
  client::ConsumerConfig cc;
  cc.bootstrap_servers = cfg.bootstrap_servers;
  cc.auto_offset_reset = "earliest";
  client::Consumer consumer(cc);
  consumer.assign({{"many", 0}});
  int64_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (got < kRecords && std::chrono::steady_clock::now() < deadline) {
    for (const auto& r : consumer.poll(1000)) {
      ASSERT_EQ(*r.value, acked.at(r.offset)) << "offset " << r.offset << " holds another record than acknowledged";
      ++got;
    }
  }
  EXPECT_EQ(got, kRecords);
}

}  // namespace
}  // namespace gannet
