#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
// Review findings on BrokerServer's replica manager (partition logs following the metadata image).
// No controller and no quorum: the test plays the quorum and calls the MetadataPublisher's
// listener methods itself (on_snapshot at start, on_commit as records commit). The broker is
// never started (no registration, so it is never unfenced: "strays" must stay untouched).
// Each test fails because of the bug named in its comment.
#include "broker/broker_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <span>
#include <thread>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>

#include "metadata/metadata_image.h"
#include "proto/broker.grpc.pb.h"
#include "metadata/metadata_publisher.h"
#include "storage/record_batch.h"
#include "testing/kafka_wire.h"
#include "testing/process_harness.h"

namespace gannet::broker {
namespace {

using namespace std::chrono_literals;
using metadata::v1::MetadataRecord;

constexpr int32_t kMe = 1;

std::string topic_id(char c) { return std::string(16, c); }

MetadataRecord register_me() {
  MetadataRecord r;
  r.mutable_register_broker()->set_broker_id(kMe);
  r.mutable_register_broker()->set_incarnation_id("inc");
  r.mutable_register_broker()->set_broker_epoch(0);
  r.mutable_register_broker()->set_fenced(true);
  return r;
}

MetadataRecord topic(const std::string& name, const std::string& id) {
  MetadataRecord r;
  r.mutable_topic()->set_name(name);
  r.mutable_topic()->set_topic_id(id);
  return r;
}

MetadataRecord partition_here(const std::string& id, int32_t p) {
  MetadataRecord r;
  auto* pr = r.mutable_partition();
  pr->set_topic_id(id);
  pr->set_partition_id(p);
  pr->add_replicas(kMe);
  pr->add_isr(kMe);
  pr->set_leader(kMe);
  return r;
}

MetadataRecord remove_topic(const std::string& id) {
  MetadataRecord r;
  r.mutable_remove_topic()->set_topic_id(id);
  return r;
}

// Plays the quorum: commits records at increasing offsets, or installs snapshots.
class FakeQuorum {
 public:
  explicit FakeQuorum(metadata::MetadataPublisher* pub) : pub_(pub) {}
  void commit(const std::vector<MetadataRecord>& records) {
    std::vector<raft::Entry> entries;
    for (const auto& r : records) {
      raft::Entry e;
      e.offset = next_++;
      e.epoch = 1;
      e.data = metadata::encode_batch({r});
      entries.push_back(std::move(e));
    }
    pub_->on_commit(entries);
  }
  // A snapshot of the image made of `records`, ending at `end_offset`.
  void snapshot(const std::vector<MetadataRecord>& records, int64_t end_offset) {
    metadata::MetadataDelta d(nullptr);
    for (const auto& r : records) ASSERT_TRUE(d.replay(r, end_offset - 1).ok());
    raft::Snapshot s;
    s.id = raft::SnapshotId{end_offset, 1};
    s.data = metadata::encode_snapshot(*d.apply());
    pub_->on_snapshot(s);
    next_ = end_offset;
  }

 private:
  metadata::MetadataPublisher* pub_;
  int64_t next_ = 0;
};

std::unique_ptr<BrokerServer> make_broker(const std::string& dir, metadata::MetadataPublisher* pub,
                                          BrokerServerOptions o = {}) {
  o.node_id = kMe;
  o.cluster_id = "c";
  o.voters = {{1, "127.0.0.1:1"}};
  o.listen_address = "127.0.0.1:0";
  o.advertised_host = "127.0.0.1";
  o.data_dir = dir;
  auto b = BrokerServer::create(o, pub);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error());
  return b.ok() ? std::move(b).value() : nullptr;
}

void append_records(storage::Log& log, int n) {
  for (int i = 0; i < n; ++i) {
    storage::RecordBatchBuilder b;
    b.add(1000, std::string_view("k"), std::string_view("value-" + std::to_string(i)));
    auto built = b.build();
    ASSERT_TRUE(built.ok());
    std::string bytes = *built;
    auto r = log.append(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 1);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
}

// BUG (data loss; contradicts docs/design-notes.md 9 "an old snapshot at startup can never
// delete live data"): at startup the publisher first publishes the quorum's last snapshot,
// which can be far behind the partition logs on disk. reconcile() runs on that stale image and
// its topic-id rule ("a log whose topic id differs from the image's is a former incarnation")
// deletes the log of the *current* incarnation of a topic that was deleted and re-created after
// the snapshot. The image then catches up and an empty log is created in its place.
TEST(BrokerServerReview, AnOldSnapshotAtStartupDoesNotDeleteTheLogOfARecreatedTopic) {
  const std::string dir = testing::test_dir("broker-old-snapshot");
  const storage::TopicPartition tp{"orders", 0};
  // Before the restart: "orders" was deleted (id A) and re-created (id B); this broker hosts
  // partition 0 of incarnation B with 5 records.
  {
    storage::LogManager::Options lo;
    lo.data_dir = dir;
    auto m = storage::LogManager::open(lo);
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    ASSERT_TRUE((*m)->create_many({{tp, std::nullopt, topic_id('B')}}).ok());
    append_records(*(*m)->get(tp), 5);
    ASSERT_TRUE((*m)->close().ok());
  }
  metadata::MetadataPublisher pub;
  auto broker = make_broker(dir, &pub);
  ASSERT_TRUE(broker);
  ASSERT_EQ(broker->log_manager()->get(tp)->log_end_offset(), 5);

  // The restart: the quorum's snapshot predates the deletion (orders is still incarnation A)...
  FakeQuorum q(&pub);
  q.snapshot({register_me(), topic("orders", topic_id('A')), partition_here(topic_id('A'), 0)}, 3);
  std::this_thread::sleep_for(500ms);  // the replica thread looks at the snapshot's image
  // ... then the log after it commits: the deletion and the re-creation.
  q.commit({remove_topic(topic_id('A')), topic("orders", topic_id('B')), partition_here(topic_id('B'), 0)});
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto log = broker->log_manager()->get(tp);
        return log && broker->log_manager()->topic_id(tp) == topic_id('B');
      },
      5s));
  std::this_thread::sleep_for(300ms);
  auto log = broker->log_manager()->get(tp);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->log_end_offset(), 5) << "the live log of orders (incarnation B) was deleted and re-created empty";
  broker->stop();
}

// BUG (disk leak): when a snapshot is installed while running (this node fell behind the
// leader's log start), MetadataPublisher::on_snapshot publishes a delta "from the empty image"
// with no deleted topics, so the replica thread only looks at the topics in the snapshot: the
// logs of topics deleted in the skipped part of the log are never deleted (until some later
// deletion or a restart happens to trigger a full pass).
TEST(BrokerServerReview, TopicsDeletedWhileASnapshotIsInstalledLoseTheirLogs) {
  const std::string dir = testing::test_dir("broker-snapshot-install");
  metadata::MetadataPublisher pub;
  auto broker = make_broker(dir, &pub);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  const storage::TopicPartition gone{"gone", 0}, kept{"kept", 0};
  q.commit({register_me(), topic("gone", topic_id('G')), partition_here(topic_id('G'), 0)});
  ASSERT_TRUE(testing::wait_until([&] { return broker->log_manager()->get(gone) != nullptr; }, 5s));
  // The node falls behind; the leader sends a snapshot at offset 100 in which "gone" was deleted
  // and "kept" created.
  q.snapshot({register_me(), topic("kept", topic_id('K')), partition_here(topic_id('K'), 0)}, 100);
  ASSERT_TRUE(testing::wait_until([&] { return broker->log_manager()->get(kept) != nullptr; }, 5s));
  q.commit({MetadataRecord()});  // life goes on
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(broker->log_manager()->get(gone), nullptr)
      << "the log of deleted topic 'gone' (id seen by this broker, absent from the image) is kept forever";
  broker->stop();
}

// BUG: the controller accepts topic names of up to 249 characters, but LogManager::remove renames
// the partition directory to "<topic>-<p>.<ms>.<n>-delete" first: past NAME_MAX (255) for names
// longer than about 225 characters the rename fails (ENAMETOOLONG). The log leaves the manager's
// map but its directory, with all its data, stays on disk; the next start opens it again as a
// partition log (a deleted topic's data resurrected, never cleaned up).
TEST(BrokerServerReview, DeletingATopicWithALongNameDeletesItsLogs) {
  const std::string dir = testing::test_dir("broker-long-name");
  const std::string name(240, 'x');
  const storage::TopicPartition tp{name, 0};
  {
    metadata::MetadataPublisher pub;
    auto broker = make_broker(dir, &pub);
    ASSERT_TRUE(broker);
    FakeQuorum q(&pub);
    q.commit({register_me(), topic(name, topic_id('A')), partition_here(topic_id('A'), 0)});
    ASSERT_TRUE(testing::wait_until([&] { return broker->log_manager()->get(tp) != nullptr; }, 5s));
    append_records(*broker->log_manager()->get(tp), 3);
    q.commit({remove_topic(topic_id('A'))});
    ASSERT_TRUE(testing::wait_until([&] { return broker->log_manager()->get(tp) == nullptr; }, 5s));
    std::this_thread::sleep_for(200ms);
    broker->stop();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/" + tp.dir_name()))
      << "the deleted topic's partition directory is still on disk";
  storage::LogManager::Options lo;
  lo.data_dir = dir;
  auto m = storage::LogManager::open(lo);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ((*m)->get(tp), nullptr) << "the deleted topic's log is back after a restart";
}

// ---- Bounds (issue 14 item 8) ------------------------------------------------------------------

std::string batch_of(size_t value_bytes, int records = 1) {
  storage::RecordBatchBuilder b;
  for (int i = 0; i < records; ++i) b.add(1000, std::string_view("k"), std::string_view(std::string(value_bytes, 'v')));
  auto built = b.build();
  EXPECT_TRUE(built.ok());
  return built.ok() ? *built : std::string();
}

std::unique_ptr<v1::Broker::Stub> stub_of(const BrokerServer& b) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::Broker::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(b.port()),
                                                       grpc::InsecureChannelCredentials(), args));
}

// Every fetch answer held its own copy of up to max_bytes (48 MiB) of records, with no bound on
// how many were held at once: N consumers with big fetches could make the broker hold N copies.
// Fetch answers now take their record bytes from one broker-wide budget
// (fetch.response.memory.max.bytes), and a fetch that finds it spent waits for bytes to come back.
TEST(BrokerServerBounds, ConcurrentFetchAnswersStayWithinTheBrokerWideBudget) {
  const std::string dir = testing::test_dir("broker-fetch-budget");
  metadata::MetadataPublisher pub;
  BrokerServerOptions o;
  o.fetch_response_memory_max_bytes = 4 << 20;
  auto broker = make_broker(dir, &pub, o);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  q.commit({register_me(), topic("big", topic_id('B')), partition_here(topic_id('B'), 0)});
  const storage::TopicPartition tp{"big", 0};
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp) && broker->partition(tp)->is_leader(); }, 5s));
  auto stub = stub_of(*broker);
  const std::string one = batch_of(256 << 10);  // 48 batches of 256 KiB: 12 MiB
  for (int i = 0; i < 48; ++i) {
    v1::ProduceRequest req;
    req.set_acks(1);
    auto* pd = req.add_partitions();
    pd->set_topic("big");
    pd->set_partition(0);
    pd->set_records(one);
    v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->Produce(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.partitions(0).error_code(), gannet::v1::NONE) << resp.partitions(0).error_message();
  }
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp)->high_watermark() == 48; }, 5s));
  // 16 consumers, each asking for all 12 MiB at once, again and again.
  std::atomic<int> empty{0}, answered{0};
  std::atomic<size_t> largest{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 16; ++c) {
    consumers.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        v1::FetchRequest req;
        req.set_replica_id(-1);
        req.set_max_wait_ms(10'000);
        req.set_max_bytes(12 << 20);
        auto* pd = req.add_partitions();
        pd->set_topic("big");
        pd->set_partition(0);
        pd->set_fetch_offset(0);
        pd->set_partition_max_bytes(12 << 20);
        v1::FetchResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 30s);
        if (!stub->Fetch(&ctx, req, &resp).ok() || resp.partitions_size() != 1) continue;
        ++answered;
        const size_t n = resp.partitions(0).records().size();
        if (n == 0) ++empty;
        size_t seen = largest.load();
        while (n > seen && !largest.compare_exchange_weak(seen, n)) {
        }
      }
    });
  }
  for (auto& t : consumers) t.join();
  EXPECT_EQ(answered.load(), 80);
  EXPECT_EQ(empty.load(), 0) << "a fetch that found the budget spent must wait for it, not answer empty";
  EXPECT_LE(largest.load(), static_cast<size_t>(4 << 20)) << "one answer holds more than the whole budget";
  EXPECT_GE(largest.load(), one.size());
  EXPECT_LE(broker->fetch_budget().peak(), (4 << 20) + static_cast<int64_t>(one.size()))
      << "the answers held more than fetch.response.memory.max.bytes (plus one batch) at once";
  // Given back when each answer's send completes (the call's OnDone), which may come just after
  // the client has the answer.
  EXPECT_TRUE(testing::wait_until([&] { return broker->fetch_budget().in_use() == 0; }, 5s))
      << broker->fetch_budget().in_use() << " bytes still held";
  broker->stop();
}

// The ProduceStream handler read and appended every request as it came and queued the acks=-1
// answers without bound: with the ISR stalled, a client could keep writing to the log and growing
// the queue until the produce timeouts ended. It now stops reading with 32 answers owed, so
// gRPC's flow control stops the client.
TEST(BrokerServerBounds, AProduceStreamIsNotReadWhileManyAnswersAreOwed) {
  const std::string dir = testing::test_dir("broker-produce-stream");
  metadata::MetadataPublisher pub;
  auto broker = make_broker(dir, &pub);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  MetadataRecord p = partition_here(topic_id('S'), 0);
  p.mutable_partition()->add_replicas(2);  // a follower that never fetches: acks=-1 waits
  p.mutable_partition()->add_isr(2);
  q.commit({register_me(), topic("slow", topic_id('S')), p});
  const storage::TopicPartition tp{"slow", 0};
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp) && broker->partition(tp)->is_leader(); }, 5s));
  auto stub = stub_of(*broker);
  grpc::ClientContext ctx;
  auto stream = stub->ProduceStream(&ctx);
  const std::string one = batch_of(10);
  std::atomic<int> written{0};
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 0; i < 200; ++i) {
      v1::ProduceRequest req;
      req.set_acks(-1);
      req.set_timeout_ms(60'000);
      req.set_correlation_id(i);
      auto* pd = req.add_partitions();
      pd->set_topic("slow");
      pd->set_partition(0);
      pd->set_records(one);
      if (!stream->Write(req)) return;
      ++written;
    }
  });
  ASSERT_TRUE(testing::wait_until([&] { return broker->log_manager()->get(tp)->log_end_offset() >= 32; }, 10s));
  std::this_thread::sleep_for(1s);
  const int64_t end = broker->log_manager()->get(tp)->log_end_offset();
  EXPECT_LE(end, 33) << "the broker appended " << end << " records while 32 acks=-1 answers were owed ("
                     << written.load() << " requests written)";
  ctx.TryCancel();
  writer.wait();
  stream->Finish();
  broker->stop();
}

// ---- The request core (issue 15): parked requests hold no thread ---------------------------------

// A field of /proc/self/status ("Threads:", "VmRSS:" in KiB).
int64_t status_field(const std::string& name) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) == 0) return std::stoll(line.substr(name.size()));
  }
  return -1;
}
int threads_of_this_process() { return static_cast<int>(status_field("Threads:")); }

// Every long-poll Fetch held a gRPC thread while it waited (the synchronous server grows a thread
// per call in progress): 2,000 idle consumers were 2,000 threads. A Fetch is now a parked call
// (watched by its partitions and the deadline timer); an append wakes every one of them, and each
// is answered well within its max_wait.
TEST(BrokerServerCore, ParkedFetchesHoldNoThreadAndAnAppendAnswersThemAll) {
  const std::string dir = testing::test_dir("broker-parked-fetches");
  metadata::MetadataPublisher pub;
  auto broker = make_broker(dir, &pub);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  q.commit({register_me(), topic("idle", topic_id('I')), partition_here(topic_id('I'), 0)});
  const storage::TopicPartition tp{"idle", 0};
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp) && broker->partition(tp)->is_leader(); }, 5s));
  auto stub = stub_of(*broker);
  const int before = threads_of_this_process();
  const int64_t rss_before = status_field("VmRSS:");
  constexpr int kFetches = 5000;
  struct Call {
    grpc::ClientContext ctx;
    v1::FetchRequest req;
    v1::FetchResponse resp;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, with_records = 0;
  for (int i = 0; i < kFetches; ++i) {
    auto c = std::make_unique<Call>();
    c->req.set_replica_id(-1);
    c->req.set_max_wait_ms(20'000);
    auto* pd = c->req.add_partitions();
    pd->set_topic("idle");
    pd->set_partition(0);
    pd->set_fetch_offset(0);
    c->ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    Call* raw = c.get();
    stub->async()->Fetch(&raw->ctx, &raw->req, &raw->resp, [&, raw](grpc::Status st) {
      std::lock_guard<std::mutex> l(mu);
      ++answered;
      if (st.ok() && raw->resp.partitions_size() == 1 && !raw->resp.partitions(0).records().empty()) ++with_records;
      cv.notify_all();
    });
    calls.push_back(std::move(c));
  }
  // All parked: the broker holds them without a thread each.
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp)->watchers_for_test() >= kFetches; }, 20s))
      << broker->partition(tp)->watchers_for_test() << " parked";
  const int parked_threads = threads_of_this_process();
  const int64_t rss_parked = status_field("VmRSS:");
  EXPECT_LT(parked_threads - before, 100) << before << " threads before, " << parked_threads << " with " << kFetches
                                          << " fetches parked";
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(answered, 0) << "a parked fetch was answered before its max_wait with nothing to read";
  }
  // One append answers them all, long before their 20 s max_wait.
  const auto t0 = std::chrono::steady_clock::now();
  v1::ProduceRequest preq;
  preq.set_acks(1);
  auto* ppd = preq.add_partitions();
  ppd->set_topic("idle");
  ppd->set_partition(0);
  ppd->set_records(batch_of(100));
  v1::ProduceResponse presp;
  grpc::ClientContext pctx;
  ASSERT_TRUE(stub->Produce(&pctx, preq, &presp).ok());
  ASSERT_EQ(presp.partitions(0).error_code(), gannet::v1::NONE);
  std::unique_lock<std::mutex> l(mu);
  EXPECT_TRUE(cv.wait_for(l, 15s, [&] { return answered == kFetches; })) << answered << " of " << kFetches << " answered";
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(with_records, kFetches);
  EXPECT_LT(took, 10.0);
  // The client's side of each call lives in this process too: an upper bound for the broker's.
  std::printf("parked fetches: %d threads before, %d with %d parked (%.1f KiB resident per parked fetch, client and "
              "broker); all answered %.2f s after one append\n",
              before, parked_threads, kFetches, static_cast<double>(rss_parked - rss_before) / kFetches, took);
  l.unlock();
  broker->stop();
}

// An acks=-1 produce waits in its partition's purgatory: a client that gives up (its deadline
// passes) ends the wait at once, and the broker holds no waiter for it afterwards.
TEST(BrokerServerCore, ACancelledProduceLeavesNoWaiterBehind) {
  const std::string dir = testing::test_dir("broker-cancelled-produce");
  metadata::MetadataPublisher pub;
  auto broker = make_broker(dir, &pub);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  MetadataRecord p = partition_here(topic_id('C'), 0);
  p.mutable_partition()->add_replicas(2);  // a follower that never fetches: acks=-1 waits
  p.mutable_partition()->add_isr(2);
  q.commit({register_me(), topic("stuck", topic_id('C')), p});
  const storage::TopicPartition tp{"stuck", 0};
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp) && broker->partition(tp)->is_leader(); }, 5s));
  auto stub = stub_of(*broker);
  v1::ProduceRequest req;
  req.set_acks(-1);
  req.set_timeout_ms(60'000);
  auto* pd = req.add_partitions();
  pd->set_topic("stuck");
  pd->set_partition(0);
  pd->set_records(batch_of(10));
  v1::ProduceResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 500ms);
  const grpc::Status st = stub->Produce(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(testing::wait_until([&] { return broker->partition(tp)->replication_waiters() == 0; }, 2s))
      << "the cancelled produce still waits in the purgatory";
  // A produce that times out on its own answers REQUEST_TIMED_OUT.
  req.set_timeout_ms(300);
  grpc::ClientContext ctx2;
  v1::ProduceResponse resp2;
  ASSERT_TRUE(stub->Produce(&ctx2, req, &resp2).ok());
  EXPECT_EQ(resp2.partitions(0).error_code(), gannet::v1::REQUEST_TIMED_OUT);
  EXPECT_EQ(broker->partition(tp)->replication_waiters(), 0u);
  broker->stop();
}

// Every long-polling Heartbeat held a gRPC thread for up to a third of the session: 1,000 idle
// group members were 1,000 threads. A held heartbeat is now parked in the coordinator.
TEST(BrokerServerCore, HeldHeartbeatsHoldNoThread) {
  const std::string dir = testing::test_dir("broker-parked-heartbeats");
  metadata::MetadataPublisher pub;
  BrokerServerOptions o;
  o.group.offsets_partitions = 1;
  o.group.initial_rebalance_delay_ms = 0;
  auto broker = make_broker(dir, &pub, o);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  q.commit({register_me(), topic("__consumer_offsets", topic_id('O')), partition_here(topic_id('O'), 0)});
  auto stub = stub_of(*broker);
  constexpr int kMembers = 1000;
  struct Member {
    std::string group, id;
    int32_t generation = 0;
  };
  std::vector<Member> members;
  for (int i = 0; i < kMembers; ++i) {
    Member m;
    m.group = "g" + std::to_string(i);
    v1::JoinGroupRequest jr;
    jr.set_group_id(m.group);
    jr.set_session_timeout_ms(15'000);
    jr.set_rebalance_timeout_ms(15'000);
    jr.set_protocol_type("consumer");
    jr.add_protocols()->set_name("range");
    v1::JoinGroupResponse resp;
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      resp.Clear();
      ASSERT_TRUE(stub->JoinGroup(&ctx, jr, &resp).ok());
      if (resp.error_code() == gannet::v1::MEMBER_ID_REQUIRED) {
        jr.set_member_id(resp.member_id());
        continue;
      }
      if (resp.error_code() != gannet::v1::COORDINATOR_LOAD_IN_PROGRESS &&
          resp.error_code() != gannet::v1::NOT_COORDINATOR) {
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(resp.error_code(), gannet::v1::NONE) << resp.error_message();
    m.id = resp.member_id();
    m.generation = resp.generation_id();
    v1::SyncGroupRequest sr;
    sr.set_group_id(m.group);
    sr.set_generation_id(m.generation);
    sr.set_member_id(m.id);
    auto* a = sr.add_assignments();
    a->set_member_id(m.id);
    a->set_assignment("x");
    v1::SyncGroupResponse sresp;
    grpc::ClientContext sctx;
    ASSERT_TRUE(stub->SyncGroup(&sctx, sr, &sresp).ok());
    ASSERT_EQ(sresp.error_code(), gannet::v1::NONE) << sresp.error_message();
    members.push_back(m);
  }
  const int before = threads_of_this_process();
  struct Call {
    grpc::ClientContext ctx;
    v1::HeartbeatRequest req;
    v1::HeartbeatResponse resp;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, ok = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Member& m : members) {
    auto c = std::make_unique<Call>();
    c->req.set_group_id(m.group);
    c->req.set_member_id(m.id);
    c->req.set_generation_id(m.generation);
    c->req.set_max_wait_ms(60'000);  // held a third of the 15 s session: 5 s
    Call* raw = c.get();
    stub->async()->Heartbeat(&raw->ctx, &raw->req, &raw->resp, [&, raw](grpc::Status st) {
      std::lock_guard<std::mutex> l(mu);
      ++answered;
      if (st.ok() && raw->resp.error_code() == gannet::v1::NONE) ++ok;
      cv.notify_all();
    });
    calls.push_back(std::move(c));
  }
  std::this_thread::sleep_for(1s);
  const int held_threads = threads_of_this_process();
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(answered, 0) << "heartbeats answered before their hold ended";
  }
  EXPECT_LT(held_threads - before, 100) << before << " threads before, " << held_threads << " with " << kMembers
                                        << " heartbeats held";
  std::unique_lock<std::mutex> l(mu);
  EXPECT_TRUE(cv.wait_for(l, 30s, [&] { return answered == kMembers; })) << answered << " answered";
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ok, kMembers);
  EXPECT_GT(took, 4.0) << "a held heartbeat came back before its hold";
  std::printf("held heartbeats: %d threads before, %d with %d held; all answered after %.2f s\n", before, held_threads,
              kMembers, took);
  l.unlock();
  broker->stop();
}

// A Kafka client that goes away: its parked long-poll fetches end at once (not at their max wait),
// like a cancelled gRPC call's.
TEST(BrokerServerCore, AClosedKafkaConnectionDropsItsParkedFetches) {
  const std::string dir = testing::test_dir("broker-kafka-cancel");
  metadata::MetadataPublisher pub;
  BrokerServerOptions o;
  o.kafka_listeners.push_back({"PLAINTEXT", "127.0.0.1", 0, "127.0.0.1", 0});
  auto broker = make_broker(dir, &pub, o);
  ASSERT_TRUE(broker);
  FakeQuorum q(&pub);
  q.commit({register_me(), topic("quiet", topic_id('Q')), partition_here(topic_id('Q'), 0)});
  const storage::TopicPartition tp{"quiet", 0};
  ASSERT_TRUE(testing::wait_until([&] { return broker->partition(tp) && broker->partition(tp)->is_leader(); }, 5s));
  const int port = broker->kafka_port("PLAINTEXT");
  ASSERT_GT(port, 0);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  // Ten Fetch v11 requests, each a 30 s long poll on the empty partition.
  std::string wire;
  for (int i = 0; i < 10; ++i) {
    wire += testing::kafka_wire::frame(1, 11, i, testing::kafka_wire::fetch_v11("quiet", {0}, 30'000, 1 << 20, 1 << 20));
  }
  ASSERT_EQ(::write(fd, wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  ASSERT_TRUE(testing::wait_until([&] { return broker->fetches_in_progress() == 10; }, 5s))
      << broker->fetches_in_progress() << " fetches parked";
  ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(testing::wait_until([&] { return broker->fetches_in_progress() == 0; }, 5s))
      << broker->fetches_in_progress() << " fetches still parked 5 s after their client left (max wait 30 s)";
  std::fprintf(stderr, "10 parked fetches ended %.0f ms after their connection closed\n",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
}  // namespace gannet::broker
