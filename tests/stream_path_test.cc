// The data path's streams on three real combined nodes: ProduceStream answers each request by
// its correlation id (bad input gets its typed error and the stream goes on; acks=0 gets no
// answer; an acks=1 answer is not held behind an acks=-1 one that waits for the ISR), and a
// FetchStream request that outlives its CallWatchdog deadline is cancelled while one answered in
// time is not; a long poll on a stream is answered when its own partition gets data, and not
// before (another partition's append on the same broker does not end it).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/call_watchdog.h"
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
using Stream = grpc::ClientReaderWriter<ProduceRequest, ProduceResponse>;

std::string batch_of(const std::vector<std::string>& values) {
  storage::RecordBatchBuilder b;
  for (const auto& v : values) b.add(1'700'000'000'000, std::nullopt, v);
  return *b.build();
}

ProduceRequest request(int64_t id, const std::string& topic, int partition, const std::string& records, int acks) {
  ProduceRequest req;
  req.set_correlation_id(id);
  req.set_acks(acks);
  req.set_timeout_ms(20'000);
  auto* pd = req.add_partitions();
  pd->set_topic(topic);
  pd->set_partition(partition);
  pd->set_records(records);
  return req;
}

// A consumer's fetch of one partition from `offset`, long-polling up to `wait_ms` for a byte.
FetchRequest fetch_request(int64_t id, const std::string& topic, int partition, int64_t offset, int wait_ms) {
  FetchRequest req;
  req.set_correlation_id(id);
  req.set_replica_id(-1);
  req.set_max_wait_ms(wait_ms);
  req.set_min_bytes(1);
  auto* pd = req.add_partitions();
  pd->set_topic(topic);
  pd->set_partition(partition);
  pd->set_fetch_offset(offset);
  pd->set_current_leader_epoch(-1);
  pd->set_last_fetched_epoch(-1);
  return req;
}

int leader_of(Cluster& c, const std::string& topic) {
  auto md = c.metadata({topic});
  if (md.topics_size() != 1 || md.topics(0).partitions_size() < 1) return -1;
  return md.topics(0).partitions(0).leader();
}

// Reads one answer; fails the test (and returns an empty answer) if none comes within `timeout`.
ProduceResponse read_answer(grpc::ClientContext& ctx, Stream& s, std::chrono::milliseconds timeout) {
  CallWatchdog dog;
  dog.arm(&ctx, std::chrono::steady_clock::now() + timeout);  // a lost answer fails, not hangs
  ProduceResponse resp;
  EXPECT_TRUE(s.Read(&resp)) << "no answer within " << timeout.count() << " ms";
  return resp;
}

TEST(StreamPath, BadInputOnAStreamGetsTypedErrorsAndTheStreamGoesOn) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("t", 1, 3, {{"max.message.bytes", "2000"}}), gannet::v1::NONE);
  const int leader = leader_of(c, "t");
  ASSERT_GE(leader, 1);
  // Until the leader acts on the metadata log it answers NOT_LEADER_OR_FOLLOWER (a refused batch
  // appends nothing): wait on unary calls so the stream below sees a settled leader.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        ProduceResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 5s);
        return c.broker(leader)->Produce(&ctx, request(0, "t", 0, "not a batch", 1), &resp).ok() &&
               resp.partitions_size() == 1 && resp.partitions(0).error_code() == gannet::v1::CORRUPT_MESSAGE;
      },
      10s));

  grpc::ClientContext ctx;
  auto s = c.broker(leader)->ProduceStream(&ctx);
  std::string corrupt = batch_of({"hello"});
  corrupt[corrupt.size() - 1] ^= 0x5a;
  // Pipelined: all written before any answer is read.
  const std::map<int64_t, ProduceRequest> sent = {
      {1, request(1, "t", 0, corrupt, 1)},
      {2, request(2, "nope", 0, batch_of({"x"}), 1)},
      {3, request(3, "t", 0, batch_of({std::string(5000, 'x')}), 1)},
      {4, request(4, "t", 0, batch_of({"ok"}), 5)},
      {5, request(5, "t", 0, batch_of({"a", "b"}), 1)},
      {6, request(6, "t", 0, batch_of({"c"}), -1)},
  };
  for (const auto& [id, req] : sent) ASSERT_TRUE(s->Write(req));
  std::map<int64_t, ProduceResponse> answers;
  for (size_t i = 0; i < sent.size(); ++i) {
    ProduceResponse resp = read_answer(ctx, *s, 15s);
    ASSERT_EQ(resp.partitions_size(), 1) << "answer " << i;
    EXPECT_TRUE(answers.emplace(resp.correlation_id(), resp).second) << "two answers to " << resp.correlation_id();
  }
  ASSERT_EQ(answers.size(), sent.size());
  EXPECT_EQ(answers[1].partitions(0).error_code(), gannet::v1::CORRUPT_MESSAGE);
  EXPECT_EQ(answers[2].partitions(0).error_code(), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION);
  EXPECT_EQ(answers[3].partitions(0).error_code(), gannet::v1::MESSAGE_TOO_LARGE);
  EXPECT_EQ(answers[4].partitions(0).error_code(), gannet::v1::INVALID_REQUIRED_ACKS);
  EXPECT_EQ(answers[5].partitions(0).error_code(), gannet::v1::NONE);
  EXPECT_EQ(answers[5].partitions(0).base_offset(), 0);
  EXPECT_EQ(answers[6].partitions(0).error_code(), gannet::v1::NONE);
  EXPECT_EQ(answers[6].partitions(0).base_offset(), 2);

  // acks=0 gets no answer: the next answer on the stream is the acks=1 request's, and its offset
  // shows the acks=0 batch was appended before it.
  ASSERT_TRUE(s->Write(request(7, "t", 0, batch_of({"d"}), 0)));
  ASSERT_TRUE(s->Write(request(8, "t", 0, batch_of({"e"}), 1)));
  ProduceResponse after = read_answer(ctx, *s, 10s);
  EXPECT_EQ(after.correlation_id(), 8);
  ASSERT_EQ(after.partitions_size(), 1);
  EXPECT_EQ(after.partitions(0).base_offset(), 4);

  // A second client's stream works alongside.
  grpc::ClientContext ctx2;
  auto s2 = c.broker(leader)->ProduceStream(&ctx2);
  ASSERT_TRUE(s2->Write(request(1, "t", 0, batch_of({"f"}), -1)));
  ProduceResponse other = read_answer(ctx2, *s2, 10s);
  EXPECT_EQ(other.correlation_id(), 1);
  ASSERT_EQ(other.partitions_size(), 1);
  EXPECT_EQ(other.partitions(0).error_code(), gannet::v1::NONE);
  EXPECT_EQ(other.partitions(0).base_offset(), 5);
  // Both end cleanly: half-close, and the broker finishes the stream with OK.
  for (auto* st : {s.get(), s2.get()}) {
    EXPECT_TRUE(st->WritesDone());
    EXPECT_TRUE(st->Finish().ok());
  }
}

TEST(StreamPath, AnAcksOneAnswerIsNotHeldBehindAnAcksAllWait) {
  // The ISR shrinks only after 20 s: meanwhile acks=-1 waits for the stopped follower.
  Cluster c(3, "replica.lag.time.max.ms=20000\n");
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("w", 1, 3), gannet::v1::NONE);
  const int leader = leader_of(c, "w");
  ASSERT_GE(leader, 1);
  grpc::ClientContext ctx;
  auto s = c.broker(leader)->ProduceStream(&ctx);
  // Settled: a first acks=-1 write with every replica up is answered.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        static int64_t id = 100;
        if (!s->Write(request(++id, "w", 0, batch_of({"warm"}), -1))) return false;
        ProduceResponse r = read_answer(ctx, *s, 15s);
        return r.partitions_size() == 1 && r.partitions(0).error_code() == gannet::v1::NONE;
      },
      15s));
  const int follower = leader % 3 + 1;
  c.kill(follower, SIGSTOP);
  struct Resume {
    Cluster& c;
    int id;
    ~Resume() { c.kill(id, SIGCONT); }
  } resume{c, follower};
  ASSERT_TRUE(s->Write(request(1, "w", 0, batch_of({"waits"}), -1)));
  ASSERT_TRUE(s->Write(request(2, "w", 0, batch_of({"at once"}), 1)));
  const auto t0 = std::chrono::steady_clock::now();
  ProduceResponse first = read_answer(ctx, *s, 10s);
  EXPECT_EQ(first.correlation_id(), 2) << "the acks=1 answer must not wait for the acks=-1 one";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ASSERT_EQ(first.partitions_size(), 1);
  EXPECT_EQ(first.partitions(0).error_code(), gannet::v1::NONE);
  c.kill(follower, SIGCONT);
  ProduceResponse second = read_answer(ctx, *s, 25s);
  EXPECT_EQ(second.correlation_id(), 1);
  ASSERT_EQ(second.partitions_size(), 1);
  EXPECT_EQ(second.partitions(0).error_code(), gannet::v1::NONE) << second.partitions(0).error_message();
  EXPECT_EQ(second.partitions(0).base_offset() + 1, first.partitions(0).base_offset()) << "appended in request order";
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST(StreamPath, TheWatchdogCancelsALateFetchOnAStreamAndLeavesATimelyOneAlone) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("idle", 1, 1), gannet::v1::NONE);
  const int leader = leader_of(c, "idle");
  ASSERT_GE(leader, 1);
  // A long poll at the (empty) log's end: answered only when max_wait_ms runs out.
  auto long_poll = [](int64_t id, int wait_ms) { return fetch_request(id, "idle", 0, 0, wait_ms); };
  // The leader must know the partition first (else it answers at once with an error).
  ASSERT_TRUE(testing::wait_until(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 5s);
        FetchResponse resp;
        return c.broker(leader)->Fetch(&ctx, long_poll(0, 0), &resp).ok() && resp.partitions_size() == 1 &&
               resp.partitions(0).error_code() == gannet::v1::NONE;
      },
      10s));
  CallWatchdog dog;
  {
    // Armed for 300 ms, the leader holds the answer 10 s: cancelled.
    grpc::ClientContext ctx;
    auto s = c.broker(leader)->FetchStream(&ctx);
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t token = dog.arm(&ctx, t0 + 300ms);
    FetchResponse resp;
    EXPECT_FALSE(s->Write(long_poll(1, 10'000)) && s->Read(&resp)) << "answered before its 10 s long poll?";
    dog.disarm(token);  // waits out a TryCancel still running: only then may ctx go
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    EXPECT_EQ(s->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  {
    // Armed for 5 s and disarmed once answered: two long polls of 500 ms on one stream.
    grpc::ClientContext ctx;
    auto s = c.broker(leader)->FetchStream(&ctx);
    for (int64_t id = 1; id <= 2; ++id) {
      const uint64_t token = dog.arm(&ctx, std::chrono::steady_clock::now() + 5s);
      FetchResponse resp;
      const bool answered = s->Write(long_poll(id, 500)) && s->Read(&resp);
      dog.disarm(token);  // before any early return: ctx must not be armed when it goes
      ASSERT_TRUE(answered);
      EXPECT_EQ(resp.correlation_id(), id);
      ASSERT_EQ(resp.partitions_size(), 1);
      EXPECT_EQ(resp.partitions(0).error_code(), gannet::v1::NONE);
    }
    std::this_thread::sleep_for(5500ms);  // past the disarmed deadlines: the stream still works
    FetchResponse resp;
    ASSERT_TRUE(s->Write(long_poll(3, 0)));
    ASSERT_TRUE(s->Read(&resp));
    EXPECT_EQ(resp.correlation_id(), 3);
    // cancel_all(): what is armed now, and whatever is armed later, is cancelled at once.
    dog.cancel_all();
    dog.arm(&ctx, std::chrono::steady_clock::now() + 60s);
    EXPECT_FALSE(s->Write(long_poll(4, 10'000)) && s->Read(&resp));
    EXPECT_EQ(s->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
}

TEST(StreamPath, ALongPollOnAStreamIsAnsweredWhenItsOwnPartitionGetsData) {
  Cluster c(3);
  c.start_all();
  ASSERT_TRUE(c.wait_unfenced({1, 2, 3}, 30s));
  ASSERT_EQ(c.create_error("lp", 6, 1), gannet::v1::NONE);
  // Two partitions on one leader: `a` is long-polled, `b` gets an append meanwhile.
  int leader = -1, a = -1, b = -1;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto md = c.metadata({"lp"});
        if (md.topics_size() != 1) return false;
        std::map<int, std::vector<int>> by_leader;
        for (const auto& p : md.topics(0).partitions()) {
          if (p.leader() >= 1) by_leader[p.leader()].push_back(p.partition());
        }
        for (const auto& [l, ps] : by_leader) {
          if (ps.size() >= 2) {
            leader = l, a = ps[0], b = ps[1];
            return true;
          }
        }
        return false;
      },
      15s));
  auto fetch_at = [](int64_t id, int partition, int64_t offset, int wait_ms) {
    return fetch_request(id, "lp", partition, offset, wait_ms);
  };
  auto produce = [&](int partition, const std::string& value) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ProduceResponse resp;
    auto st = c.broker(leader)->Produce(&ctx, request(0, "lp", partition, batch_of({value}), 1), &resp);
    return st.ok() && resp.partitions_size() == 1 && resp.partitions(0).error_code() == gannet::v1::NONE;
  };
  ASSERT_TRUE(testing::wait_until(
      [&] {  // the leader knows both partitions (else it answers at once with an error)
        for (int p : {a, b}) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 5s);
          FetchResponse resp;
          if (!c.broker(leader)->Fetch(&ctx, fetch_at(0, p, 0, 0), &resp).ok() || resp.partitions_size() != 1 ||
              resp.partitions(0).error_code() != gannet::v1::NONE) {
            return false;
          }
        }
        return true;
      },
      10s));
  grpc::ClientContext ctx;
  CallWatchdog dog;
  dog.arm(&ctx, std::chrono::steady_clock::now() + 60s);  // a lost answer fails, not hangs
  auto s = c.broker(leader)->FetchStream(&ctx);
  // Two long polls on one stream (its fetches share one waiter), each of 10 s at `a`'s end.
  for (int64_t round = 0; round < 2; ++round) {
    ASSERT_TRUE(s->Write(fetch_at(round + 1, a, round, 10'000)));
    const auto t0 = std::chrono::steady_clock::now();
    bool produced = true;
    std::thread producer([&] {
      std::this_thread::sleep_for(300ms);
      produced &= produce(b, "elsewhere " + std::to_string(round));
      std::this_thread::sleep_for(700ms);
      produced &= produce(a, "here " + std::to_string(round));
    });
    FetchResponse resp;
    const bool answered = s->Read(&resp);
    const auto took = std::chrono::steady_clock::now() - t0;
    producer.join();
    ASSERT_TRUE(produced);
    ASSERT_TRUE(answered) << "round " << round;
    EXPECT_EQ(resp.correlation_id(), round + 1);
    ASSERT_EQ(resp.partitions_size(), 1);
    EXPECT_EQ(resp.partitions(0).error_code(), gannet::v1::NONE);
    EXPECT_FALSE(resp.partitions(0).records().empty())
        << "round " << round << ": answered empty after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
        << " ms: the append to partition " << b << " ended the long poll on " << a << "?";
    EXPECT_GE(took, 900ms) << "answered before `a` had data";
    EXPECT_LT(took, 5s) << "the append to `a` did not end the long poll";
  }
  s->WritesDone();
  dog.cancel_all();
  s->Finish();
}

}  // namespace
}  // namespace gannet
