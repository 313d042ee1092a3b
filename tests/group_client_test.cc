// Consumer groups through the C++ client library (client/consumer.h) on three real gannetd
// processes; consumers and producers run in this process. group_process_test covers the CLI;
// this covers what only the library exposes:
//
//   Pattern:        subscribe("orders-.*") owns orders-a; orders-b created later is owned after a
//                   rebalance within metadata.max.age.ms plus a margin; names that match only in
//                   part (xorders-c) and internal topics are never assigned.
//   PartitionCount: partitions added to a subscribed topic: the leader notices, the group
//                   rebalances and the new partitions are owned and read.
//   Listener:       on_revoked before on_assigned, with the partitions owned; a commit_sync inside
//                   on_revoked succeeds, and the next owner resumes exactly there.
//   Commits:        commit_async's callback runs in a later poll() (on the polling thread) with
//                   NONE; committed() shows it; explicit commit_sync offsets; a member thrown out
//                   by max.poll.interval.ms gets a generation error from commit_sync and its
//                   commit changes nothing; it rejoins at the next poll and consumes on from the
//                   committed offsets; a commit_async just before close() completes.
//   PauseResume:    a paused partition returns nothing while the other does; after resume it
//                   continues at its position with no gap and no duplicate.
//   Sticky:         3 members on 12 partitions, a 4th joins: only the 3 partitions the newcomer
//                   takes change owner. Range and roundrobin: the real group's assignment is
//                   exactly what each strategy prescribes (computed here from the member ids).
//   AutoCommit:     positions are committed every auto.commit.interval.ms and at close(); a new
//                   member starts right after the last record poll() returned.
//   Membership:     unsubscribe() revokes and leaves, subscribe() again joins with the new topics;
//                   close() leaves at once (the other member owns everything long before its
//                   10 s session timeout would have expired).
//   Consumer protocol (group.protocol=consumer, KIP-848): a second member takes half the
//                   partitions one by one while the first keeps consuming the rest (records
//                   keep arriving during the move); every record produced meanwhile is read; when
//                   the second closes, the first owns all again within a second or two; a classic
//                   member of the same group is refused with INCONSISTENT_GROUP_PROTOCOL.
//   Pending join:   poll(timeout) and close() do not wait out a join the coordinator holds; a join
//                   that finishes between polls keeps its session (heartbeats start at the sync),
//                   so no partition is read by two members; subscribe() during a pending join
//                   never takes the old topics' assignment.
//
// One cluster serves every test (each has its own topics and group). Every wait is bounded;
// consumers that must poll at the same time (members of one group during a rebalance) have a
// polling thread each (a Consumer is used from one thread).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/cluster_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using client::Consumer;
using client::ConsumerConfig;
using client::ConsumerRecord;
using client::TopicPartition;
using gannet::v1::ErrorCode;
using testing::Cluster;
using Clock = std::chrono::steady_clock;
using Parts = std::vector<TopicPartition>;
using Topics = std::vector<std::string>;  // subscribe({"t"}) alone would be ambiguous with a pattern

constexpr const char* kBrokerExtra =
    "group.initial.rebalance.delay.ms=100\n"
    "group.min.session.timeout.ms=500\n"
    "offsets.topic.num.partitions=6\n"
    "group.consumer.session.timeout.ms=3000\n"
    "group.consumer.heartbeat.interval.ms=200\n";

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string str(const Parts& ps) {
  std::string s;
  for (const auto& tp : ps) s += (s.empty() ? "" : ",") + tp.topic + "-" + std::to_string(tp.partition);
  return "[" + s + "]";
}

Parts partitions_of(const std::string& topic, int n) {
  Parts out;
  for (int p = 0; p < n; ++p) out.push_back({topic, p});
  return out;
}

Parts sorted(Parts ps) {
  std::sort(ps.begin(), ps.end());
  return ps;
}

Parts concat(Parts a, const Parts& b) {
  a.insert(a.end(), b.begin(), b.end());
  return sorted(a);
}

std::vector<int64_t> offsets_range(int64_t from, int64_t to) {  // [from, to)
  std::vector<int64_t> out;
  for (int64_t o = from; o < to; ++o) out.push_back(o);
  return out;
}

// Offsets read per partition, in the order poll() returned them.
std::map<TopicPartition, std::vector<int64_t>> by_partition(const std::vector<ConsumerRecord>& recs) {
  std::map<TopicPartition, std::vector<int64_t>> out;
  for (const auto& r : recs) out[{r.topic, r.partition}].push_back(r.offset);
  return out;
}

bool is_generation_error(ErrorCode e) {
  return e == gannet::v1::ILLEGAL_GENERATION || e == gannet::v1::UNKNOWN_MEMBER_ID ||
         e == gannet::v1::REBALANCE_IN_PROGRESS;
}

// ---- What a rebalance listener is told ----------------------------------------------------------

struct ListenerEvent {
  bool assigned = false;  // on_assigned; else on_revoked
  Parts partitions;
  int32_t generation = -1;                       // the consumer's generation when told
  std::map<TopicPartition, int64_t> positions;   // on_revoked: the positions then
  std::optional<ErrorCode> commit;               // on_revoked with commit_on_revoke: commit_sync()
};

// Records every callback in order; with commit_on_revoke, commits in on_revoked (the place Kafka's
// documentation tells applications with manual commits to do it). Callbacks run on the consumer's
// polling thread; the record is read from others.
class Recorder : public client::RebalanceListener {
 public:
  explicit Recorder(bool commit_on_revoke = false) : commit_on_revoke_(commit_on_revoke) {}
  void attach(Consumer* c) { consumer_ = c; }

  void on_revoked(const Parts& ps) override {
    ListenerEvent e;
    e.partitions = sorted(ps);
    e.generation = consumer_->generation();
    for (const auto& tp : ps) {
      if (auto p = consumer_->position(tp)) e.positions[tp] = *p;
    }
    if (commit_on_revoke_) e.commit = consumer_->commit_sync();
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(std::move(e));
  }
  void on_assigned(const Parts& ps) override {
    ListenerEvent e;
    e.assigned = true;
    e.partitions = sorted(ps);
    e.generation = consumer_->generation();
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(std::move(e));
  }

  std::vector<ListenerEvent> events() const {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }
  // The last event if it is an assignment (none while revoked).
  std::optional<ListenerEvent> holding() const {
    std::lock_guard<std::mutex> l(mu_);
    if (events_.empty() || !events_.back().assigned) return std::nullopt;
    return events_.back();
  }
  std::string dump() const {
    std::string s;
    for (const auto& e : events()) {
      s += std::string("\n  ") + (e.assigned ? "assigned " : "revoked ") + str(e.partitions) + " gen " +
           std::to_string(e.generation);
      if (e.commit) s += " commit " + gannet::v1::ErrorCode_Name(*e.commit);
    }
    return s;
  }

 private:
  const bool commit_on_revoke_;
  Consumer* consumer_ = nullptr;
  mutable std::mutex mu_;
  std::vector<ListenerEvent> events_;
};

// Events alternate assigned / revoked starting with an assignment, and each on_revoked names
// exactly the partitions of the on_assigned before it.
void expect_well_ordered(const Recorder& r, const std::string& who) {
  const auto ev = r.events();
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].assigned, i % 2 == 0) << who << ": event " << i << " out of order" << r.dump();
    if (!ev[i].assigned && i > 0) {
      EXPECT_EQ(ev[i].partitions, ev[i - 1].partitions) << who << ": revoked other partitions than assigned" << r.dump();
    }
  }
}

// ---- A group member with a polling thread of its own ---------------------------------------------

class Member {
 public:
  using Subscribe = std::function<void(Consumer&, client::RebalanceListener*)>;

  Member(std::string name, ConsumerConfig cfg, Subscribe subscribe, bool commit_on_revoke = false)
      : name_(std::move(name)), recorder_(commit_on_revoke), consumer_(std::make_unique<Consumer>(std::move(cfg))) {
    recorder_.attach(consumer_.get());
    thread_ = std::thread([this, subscribe] {
      subscribe(*consumer_, &recorder_);
      while (!stop_) {
        ErrorCode e = gannet::v1::NONE;
        auto recs = consumer_->poll(100, &e);
        std::lock_guard<std::mutex> l(mu_);
        for (auto& r : recs) records_.push_back(std::move(r));
        if (e != gannet::v1::NONE) ++errors_[e];
      }
      const auto t0 = Clock::now();
      consumer_->close();
      close_ms_ = ms_since(t0);
    });
  }
  ~Member() { stop(); }

  // Stops polling and closes the consumer (on its thread).
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  const std::string& name() const { return name_; }
  std::string member_id() const { return consumer_->member_id(); }
  const Recorder& recorder() const { return recorder_; }
  int64_t close_ms() const { return close_ms_; }
  // The errors poll() returned, with how often.
  std::string errors() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& [e, n] : errors_) s += " " + gannet::v1::ErrorCode_Name(e) + " x" + std::to_string(n);
    return s.empty() ? " none" : s;
  }
  std::vector<ConsumerRecord> records() const {
    std::lock_guard<std::mutex> l(mu_);
    return records_;
  }
  // What it owns now: its last assignment, if it still holds it in the generation it got it in.
  std::optional<ListenerEvent> owns() const {
    auto e = recorder_.holding();
    if (!e || consumer_->generation() != e->generation) return std::nullopt;
    return e;
  }

 private:
  const std::string name_;
  Recorder recorder_;  // outlives the consumer, which calls it
  std::unique_ptr<Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> close_ms_{-1};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<ConsumerRecord> records_;
  std::map<ErrorCode, int> errors_;
};

using Members = std::vector<std::unique_ptr<Member>>;

// Whether every member owns its part of one generation and together they own `all`, each
// partition once; then each member's partitions (in member order) in *out.
bool group_stable(const Members& ms, const Parts& all, std::vector<Parts>* out) {
  std::vector<Parts> parts;
  Parts every;
  int32_t gen = -1;
  for (const auto& m : ms) {
    auto e = m->owns();
    if (!e || (gen >= 0 && e->generation != gen)) return false;
    gen = e->generation;
    parts.push_back(e->partitions);
    every.insert(every.end(), e->partitions.begin(), e->partitions.end());
  }
  if (sorted(every) != sorted(all)) return false;
  if (out) *out = parts;
  return true;
}

std::string describe(const Members& ms) {
  std::string s;
  for (const auto& m : ms) {
    s += "\n" + m->name() + " (" + m->member_id() + "), " + std::to_string(m->records().size()) +
         " records, poll errors:" + m->errors() + m->recorder().dump();
  }
  return s;
}

// ---- The shared cluster -------------------------------------------------------------------------

class GroupClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new Cluster(3, kBrokerExtra);
    cluster_->start_all();
    ready_ = cluster_->wait_unfenced({1, 2, 3}, 60s);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(ready_) << "the cluster did not start";
    t0_ = Clock::now();
  }
  void TearDown() override {
    std::cout << ::testing::UnitTest::GetInstance()->current_test_info()->name() << ": " << ms_since(t0_) << " ms"
              << std::endl;
  }

  Cluster& c() { return *cluster_; }

  // Defaults chosen so every wait in these tests is short and bounded.
  ConsumerConfig config(const std::string& group) {
    ConsumerConfig cfg;
    cfg.bootstrap_servers = testing::split_addresses(cluster_->bootstrap());
    cfg.group_id = group;
    cfg.client_id = group;
    cfg.auto_offset_reset = "earliest";
    cfg.fetch_max_wait_ms = 100;
    cfg.session_timeout_ms = 6'000;
    cfg.heartbeat_interval_ms = 1'000;
    cfg.max_poll_interval_ms = 10'000;  // also the rebalance timeout: a stuck join ends in 10 s
    cfg.enable_auto_commit = false;
    cfg.metadata_max_age_ms = 500;
    cfg.default_api_timeout_ms = 10'000;
    return cfg;
  }

  // Creates the topic (RF 3) and waits until every partition has a leader.
  void create_topic(const std::string& topic, int partitions) {
    ASSERT_EQ(c().create_error(topic, partitions, 3), gannet::v1::NONE) << topic;
    ASSERT_TRUE(wait_led(topic, partitions)) << topic;
  }
  bool wait_led(const std::string& topic, int partitions) {
    return testing::wait_until([&] {
      auto md = c().metadata({topic});
      if (md.topics_size() != 1 || md.topics(0).partitions_size() != partitions) return false;
      for (const auto& p : md.topics(0).partitions()) {
        if (p.leader() < 0) return false;
      }
      return true;
    }, 30s, 100ms);
  }

  // Produces n records (acks=all) to one partition; asserts every one is acknowledged.
  void produce(const std::string& topic, int partition, int n) {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(cluster_->bootstrap());
    pc.acks = -1;
    pc.linger_ms = 1;
    pc.delivery_timeout_ms = 20'000;
    std::atomic<int> acked{0};
    {
      client::Producer p(pc);
      for (int i = 0; i < n; ++i) {
        client::ProducerRecord r;
        r.topic = topic;
        r.partition = partition;
        r.value = topic + "-" + std::to_string(partition) + "-" + std::to_string(i);
        p.send(std::move(r), [&](const client::RecordMetadata& m) {
          if (m.ok()) ++acked;
        });
      }
      p.flush();
    }
    ASSERT_EQ(acked.load(), n) << "produce to " << topic << "-" << partition;
  }

  // Polls k (on this thread) until done() or the timeout; records returned go to *out.
  bool poll_until(Consumer& k, std::vector<ConsumerRecord>* out, const std::function<bool()>& done,
                  std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= end) return false;
      for (auto& r : k.poll(100)) out->push_back(std::move(r));
    }
    return true;
  }

  // A consumer of the group that never joins it: reads committed offsets from outside.
  std::optional<int64_t> committed(const std::string& group, const TopicPartition& tp) {
    Consumer probe(config(group));
    return probe.committed(tp);
  }

  static Cluster* cluster_;
  static bool ready_;
  Clock::time_point t0_;
};

Cluster* GroupClientTest::cluster_ = nullptr;
bool GroupClientTest::ready_ = false;

// ---- 1. Pattern subscription --------------------------------------------------------------------

TEST_F(GroupClientTest, PatternPicksUpNewTopicsAndNeverInternalOrPartialMatches) {
  create_topic("orders-a", 2);
  create_topic("xorders-c", 1);  // contains a match, but the whole name does not match
  create_topic("order-d", 1);
  auto cfg = config("g-pattern");
  cfg.metadata_max_age_ms = 500;
  Recorder rec;  // outlives the consumer (its destructor's close() calls it)
  Consumer k(cfg);
  rec.attach(&k);
  k.subscribe("orders-.*", &rec);
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return sorted(k.assignment()) == partitions_of("orders-a", 2); }, 20s))
      << str(k.assignment()) << rec.dump();

  // Internal topics are never matched, even by a pattern naming one.
  {
    auto md = c().metadata({"__consumer_offsets"});
    ASSERT_EQ(md.topics_size(), 1);
    ASSERT_EQ(md.topics(0).partitions_size(), 6) << "the offsets topic should exist by now";
    Recorder rec2;  // outlives the consumer (its destructor's close() calls it)
    Consumer k2(config("g-pattern-internal"));
    rec2.attach(&k2);
    k2.subscribe("__consumer_offsets|orders-a", &rec2);
    std::vector<ConsumerRecord> got2;
    ASSERT_TRUE(poll_until(k2, &got2, [&] { return !k2.assignment().empty(); }, 20s)) << rec2.dump();
    poll_until(k2, &got2, [] { return false; }, 700ms);  // past one metadata check
    EXPECT_EQ(sorted(k2.assignment()), partitions_of("orders-a", 2)) << rec2.dump();
    for (const auto& e : rec2.events()) {
      for (const auto& tp : e.partitions) EXPECT_NE(tp.topic, "__consumer_offsets") << rec2.dump();
    }
  }
  // k2 polled for a while: k's heartbeats kept it in the group (its max.poll.interval is 10 s).

  // A new matching topic: owned after the next metadata check's rebalance.
  const int64_t rebalances = k.rebalances();
  ASSERT_EQ(c().create_error("orders-b", 3, 3), gannet::v1::NONE);
  const auto created = Clock::now();
  const Parts want = concat(partitions_of("orders-a", 2), partitions_of("orders-b", 3));
  ASSERT_TRUE(poll_until(k, &got, [&] { return sorted(k.assignment()) == want; }, 10s))
      << str(k.assignment()) << rec.dump();
  const int64_t took = ms_since(created);
  std::cout << "orders-b owned " << took << " ms after it was created" << std::endl;
  EXPECT_LT(took, cfg.metadata_max_age_ms + 3'000) << "the new topic was picked up late";
  EXPECT_EQ(k.rebalances(), rebalances + 1);

  // And read: records of orders-b and orders-a arrive.
  ASSERT_TRUE(wait_led("orders-b", 3));
  produce("orders-b", 2, 3);
  produce("orders-a", 1, 2);
  produce("xorders-c", 0, 2);
  produce("order-d", 0, 2);
  got.clear();
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 5; }, 10s)) << got.size();
  poll_until(k, &got, [] { return false; }, 500ms);
  auto bp = by_partition(got);
  EXPECT_EQ((bp[TopicPartition{"orders-b", 2}]), offsets_range(0, 3));
  EXPECT_EQ((bp[TopicPartition{"orders-a", 1}]), offsets_range(0, 2));
  EXPECT_EQ(bp.size(), 2u) << "records of a topic the pattern does not match were returned";

  // Never assigned anything the pattern does not match.
  expect_well_ordered(rec, "k");
  for (const auto& e : rec.events()) {
    for (const auto& tp : e.partitions) {
      EXPECT_TRUE(tp.topic == "orders-a" || tp.topic == "orders-b") << tp.topic << rec.dump();
    }
  }
}

// ---- 2. Partition count change ------------------------------------------------------------------

TEST_F(GroupClientTest, AddedPartitionsAreNoticedByTheLeaderAndOwned) {
  create_topic("grow", 2);
  auto cfg = config("g-grow");
  Members ms;
  for (const char* n : {"m1", "m2"}) {
    ms.push_back(std::make_unique<Member>(n, cfg, [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"grow"}, l); }));
  }
  std::vector<Parts> before, after;
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, partitions_of("grow", 2), &before); }, 20s))
      << describe(ms);
  EXPECT_EQ(before[0].size(), 1u) << describe(ms);

  ASSERT_EQ(c().add_partitions("grow", 4), gannet::v1::NONE);
  const auto added = Clock::now();
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, partitions_of("grow", 4), &after); }, 15s))
      << describe(ms);
  const int64_t took = ms_since(added);
  std::cout << "4 partitions owned " << took << " ms after 2 were added" << std::endl;
  EXPECT_LT(took, cfg.metadata_max_age_ms + 4'000);
  EXPECT_EQ(after[0].size(), 2u) << describe(ms);
  EXPECT_EQ(after[1].size(), 2u) << describe(ms);

  // The new partitions are read by their owners.
  ASSERT_TRUE(wait_led("grow", 4));
  produce("grow", 2, 4);
  produce("grow", 3, 4);
  ASSERT_TRUE(testing::wait_until([&] { return ms[0]->records().size() + ms[1]->records().size() >= 8; }, 10s))
      << describe(ms);
  for (size_t i = 0; i < ms.size(); ++i) {
    auto bp = by_partition(ms[i]->records());
    for (const auto& tp : after[i]) {
      if (tp.partition >= 2) {
        EXPECT_EQ(bp[tp], offsets_range(0, 4)) << ms[i]->name() << " " << str({tp});
      }
    }
  }
  for (auto& m : ms) {
    m->stop();
    expect_well_ordered(m->recorder(), m->name());
  }
}

// ---- 3. Rebalance listener ----------------------------------------------------------------------

TEST_F(GroupClientTest, ListenerRevokesBeforeAssigningAndCommitsInsideOnRevoked) {
  const std::string group = "g-listen";
  create_topic("lsn", 4);
  for (int p = 0; p < 4; ++p) produce("lsn", p, 5);
  auto cfg = config(group);  // no auto commit: only on_revoked commits
  auto sub = [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"lsn"}, l); };
  Members ms;
  ms.push_back(std::make_unique<Member>("a", cfg, sub, /*commit_on_revoke=*/true));
  ASSERT_TRUE(testing::wait_until([&] { return ms[0]->records().size() == 20; }, 20s)) << describe(ms);
  ms.push_back(std::make_unique<Member>("b", cfg, sub, /*commit_on_revoke=*/true));
  std::vector<Parts> parts;
  ASSERT_TRUE(testing::wait_until([&] {
    return group_stable(ms, partitions_of("lsn", 4), &parts) && parts[0].size() == 2 && parts[1].size() == 2;
  }, 20s)) << describe(ms);

  // a: assigned all four, revoked all four (having read 5 of each, and committed them there, in
  // its generation), then assigned its two.
  const auto ev = ms[0]->recorder().events();
  ASSERT_GE(ev.size(), 3u) << describe(ms);
  EXPECT_TRUE(ev[0].assigned);
  EXPECT_EQ(ev[0].partitions, partitions_of("lsn", 4)) << describe(ms);
  EXPECT_FALSE(ev[1].assigned) << describe(ms);
  EXPECT_EQ(ev[1].partitions, partitions_of("lsn", 4)) << describe(ms);
  EXPECT_EQ(ev[1].generation, ev[0].generation) << "on_revoked ran outside the generation it revokes";
  ASSERT_TRUE(ev[1].commit.has_value());
  EXPECT_EQ(*ev[1].commit, gannet::v1::NONE) << "commit_sync inside on_revoked failed" << describe(ms);
  for (const auto& tp : partitions_of("lsn", 4)) EXPECT_EQ(ev[1].positions.at(tp), 5) << str({tp});
  EXPECT_TRUE(ev.back().assigned);
  EXPECT_GT(ev.back().generation, ev[0].generation);
  for (auto& m : ms) expect_well_ordered(m->recorder(), m->name());
  for (const auto& tp : partitions_of("lsn", 4)) EXPECT_EQ(committed(group, tp), 5) << str({tp});

  // Whoever owns a partition now resumes at the offset committed in on_revoked: every record is
  // read once in all.
  for (int p = 0; p < 4; ++p) produce("lsn", p, 5);
  ASSERT_TRUE(testing::wait_until([&] { return ms[0]->records().size() + ms[1]->records().size() >= 40; }, 15s))
      << ms[0]->records().size() << " + " << ms[1]->records().size();
  std::this_thread::sleep_for(300ms);  // anything extra (a re-read) would arrive now
  std::map<TopicPartition, std::vector<int64_t>> all;
  for (auto& m : ms) {
    for (const auto& [tp, offs] : by_partition(m->records())) all[tp].insert(all[tp].end(), offs.begin(), offs.end());
  }
  for (auto& [tp, offs] : all) {
    std::sort(offs.begin(), offs.end());
    EXPECT_EQ(offs, offsets_range(0, 10)) << str({tp}) << " read with gaps or twice";
  }
  // b never read what a had committed.
  for (const auto& [tp, offs] : by_partition(ms[1]->records())) EXPECT_EQ(offs, offsets_range(5, 10)) << str({tp});

  // close() tells the listener too, and a commit there still counts.
  ms[0]->stop();
  const auto last = ms[0]->recorder().events().back();
  EXPECT_FALSE(last.assigned) << "close() did not call on_revoked" << describe(ms);
  ASSERT_TRUE(last.commit.has_value());
  EXPECT_EQ(*last.commit, gannet::v1::NONE) << describe(ms);
  for (const auto& tp : parts[0]) EXPECT_EQ(committed(group, tp), 10) << str({tp});
}

// ---- 4. Commits ---------------------------------------------------------------------------------

TEST_F(GroupClientTest, CommitAsyncSyncExplicitAndAfterBeingThrownOut) {
  const std::string group = "g-commit";
  create_topic("cmt", 2);
  produce("cmt", 0, 10);
  produce("cmt", 1, 10);
  auto cfg = config(group);
  cfg.max_poll_interval_ms = 1'500;
  cfg.session_timeout_ms = 3'000;
  cfg.heartbeat_interval_ms = 300;
  Recorder rec;  // outlives the consumer (its destructor's close() calls it)
  Consumer k(cfg);
  rec.attach(&k);
  k.subscribe(Topics{"cmt"}, &rec);
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 20; }, 20s)) << got.size();
  const TopicPartition p0{"cmt", 0}, p1{"cmt", 1};
  {
    auto bp = by_partition(got);
    ASSERT_EQ(bp[p0], offsets_range(0, 10));
    ASSERT_EQ(bp[p1], offsets_range(0, 10));
  }

  // commit_async: the callback runs in a later poll(), on the polling thread.
  std::optional<ErrorCode> async_result;
  std::thread::id async_thread;
  k.commit_async([&](ErrorCode e) {
    async_result = e;
    async_thread = std::this_thread::get_id();
  });
  EXPECT_FALSE(async_result.has_value()) << "the callback ran inside commit_async()";
  ASSERT_TRUE(poll_until(k, &got, [&] { return async_result.has_value(); }, 10s));
  EXPECT_EQ(*async_result, gannet::v1::NONE);
  EXPECT_EQ(async_thread, std::this_thread::get_id());
  EXPECT_EQ(k.committed(p0), 10);
  EXPECT_EQ(k.committed(p1), 10);

  // Explicit offsets (with metadata) replace one partition's commit only.
  EXPECT_EQ(k.commit_sync({{p0, client::OffsetAndMetadata{5, "replay from 5"}}}), gannet::v1::NONE);
  EXPECT_EQ(k.committed(p0), 5);
  EXPECT_EQ(k.committed(p1), 10);

  // Not polled for twice max.poll.interval.ms: the heartbeat thread left the group. A commit now
  // belongs to no generation: it fails (Kafka's CommitFailedException) and changes nothing.
  const int32_t gen = k.generation();
  ASSERT_GE(gen, 0);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(k.generation(), -1) << "still a member after not polling for 2x max.poll.interval.ms";
  EXPECT_EQ(k.member_id(), "");
  const ErrorCode stale = k.commit_sync();  // positions 10 and 10
  EXPECT_TRUE(is_generation_error(stale)) << gannet::v1::ErrorCode_Name(stale);
  EXPECT_EQ(committed(group, p0), 5) << "a commit from outside any generation overwrote the group's offset";

  // The next poll rejoins and reads on from the committed offsets (p0 from 5, as committed).
  produce("cmt", 0, 5);
  produce("cmt", 1, 5);
  got.clear();
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 15; }, 15s)) << got.size() << rec.dump();
  poll_until(k, &got, [] { return false; }, 300ms);
  {
    auto bp = by_partition(got);
    EXPECT_EQ(bp[p0], offsets_range(5, 15));
    EXPECT_EQ(bp[p1], offsets_range(10, 15));
  }
  EXPECT_GT(k.generation(), gen);
  EXPECT_EQ(k.rebalances(), 2);
  expect_well_ordered(rec, "k");

  // A commit_async just before close() completes, and its callback runs inside close().
  std::optional<ErrorCode> last_async;
  k.commit_async([&](ErrorCode e) { last_async = e; });
  k.close();
  ASSERT_TRUE(last_async.has_value()) << "close() did not run the pending commit callback";
  EXPECT_EQ(*last_async, gannet::v1::NONE);
  EXPECT_EQ(committed(group, p0), 15);
  EXPECT_EQ(committed(group, p1), 15);
}

// Issue 14.4: each commit_async ran on a std::async thread of its own, so commits raced and
// commit(10) could land after commit(20) and overwrite it. They land, and their callbacks run,
// in call order; a commit_sync after them lands last.
TEST_F(GroupClientTest, CommitAsyncCallsLandInCallOrder) {
  const std::string group = "g-order";
  create_topic("ord", 1);
  produce("ord", 0, 50);
  auto cfg = config(group);
  cfg.enable_auto_commit = false;  // only the commits below
  Consumer k(cfg);
  k.subscribe(Topics{"ord"});
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 50; }, 20s)) << got.size();
  const TopicPartition p0{"ord", 0};
  constexpr int kCommits = 40;
  std::vector<int> order;
  std::vector<ErrorCode> results;
  for (int i = 1; i <= kCommits; ++i) {
    k.commit_async(
        [&, i](ErrorCode e) {
          order.push_back(i);
          results.push_back(e);
        },
        {{p0, client::OffsetAndMetadata{i, ""}}});
  }
  ASSERT_TRUE(poll_until(k, &got, [&] { return order.size() == kCommits; }, 20s)) << order.size();
  std::vector<int> want(kCommits);
  for (int i = 0; i < kCommits; ++i) want[i] = i + 1;
  EXPECT_EQ(order, want) << "callbacks out of call order";
  for (ErrorCode e : results) EXPECT_EQ(e, gannet::v1::NONE);
  EXPECT_EQ(committed(group, p0), kCommits) << "an earlier commit_async overwrote a later one";
  // Async commits then a sync one: the sync one lands last.
  for (int i = 1; i <= 10; ++i) k.commit_async(nullptr, {{p0, client::OffsetAndMetadata{100 + i, ""}}});
  EXPECT_EQ(k.commit_sync({{p0, client::OffsetAndMetadata{7, ""}}}), gannet::v1::NONE);
  EXPECT_EQ(committed(group, p0), 7) << "an async commit made before commit_sync landed after it";
  k.close();
}

// ---- 5. Pause / resume --------------------------------------------------------------------------

TEST_F(GroupClientTest, PausedPartitionReturnsNothingAndResumesWithoutGapOrDuplicate) {
  create_topic("pz", 2);
  produce("pz", 0, 10);
  produce("pz", 1, 10);
  Consumer k(config("g-pause"));
  k.subscribe(Topics{"pz"});
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 20; }, 20s)) << got.size();
  const TopicPartition p0{"pz", 0}, p1{"pz", 1};

  k.pause({p0});
  EXPECT_EQ(k.paused(), std::set<TopicPartition>{p0});
  produce("pz", 0, 10);
  produce("pz", 1, 10);
  std::vector<ConsumerRecord> while_paused;
  ASSERT_TRUE(poll_until(k, &while_paused, [&] { return while_paused.size() >= 10; }, 10s));
  poll_until(k, &while_paused, [] { return false; }, 1s);
  {
    auto bp = by_partition(while_paused);
    EXPECT_EQ(bp.count(p0), 0u) << "a paused partition returned records";
    EXPECT_EQ(bp[p1], offsets_range(10, 20));
  }
  EXPECT_EQ(k.position(p0), 10);

  // Everything paused: poll() waits out its timeout and returns nothing.
  k.pause({p1});
  const auto t = Clock::now();
  EXPECT_TRUE(k.poll(300).empty());
  EXPECT_GE(ms_since(t), 250);

  k.resume({p0, p1});
  EXPECT_TRUE(k.paused().empty());
  produce("pz", 0, 5);
  produce("pz", 1, 5);
  std::vector<ConsumerRecord> after;
  ASSERT_TRUE(poll_until(k, &after, [&] { return after.size() >= 20; }, 10s)) << after.size();
  poll_until(k, &after, [] { return false; }, 300ms);
  auto bp = by_partition(after);
  EXPECT_EQ(bp[p0], offsets_range(10, 25)) << "resume did not continue at the paused position";
  EXPECT_EQ(bp[p1], offsets_range(20, 25));
}

// ---- 6. Assignment strategies through the real group --------------------------------------------

TEST_F(GroupClientTest, StickyMovesOnlyWhatTheNewMemberTakes) {
  create_topic("stk", 12);
  auto cfg = config("g-sticky");
  cfg.partition_assignment_strategy = {"sticky"};
  auto sub = [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"stk"}, l); };
  Members ms;
  for (const char* n : {"s1", "s2", "s3"}) ms.push_back(std::make_unique<Member>(n, cfg, sub));
  const Parts all = partitions_of("stk", 12);
  std::vector<Parts> before, after;
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, all, &before); }, 20s)) << describe(ms);
  for (const auto& ps : before) EXPECT_EQ(ps.size(), 4u) << describe(ms);

  ms.push_back(std::make_unique<Member>("s4", cfg, sub));
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, all, &after); }, 20s)) << describe(ms);
  std::map<TopicPartition, size_t> owner_before, owner_after;
  for (size_t i = 0; i < before.size(); ++i) {
    for (const auto& tp : before[i]) owner_before[tp] = i;
  }
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].size(), 3u) << describe(ms);
    for (const auto& tp : after[i]) owner_after[tp] = i;
  }
  int moved = 0;
  for (const auto& tp : all) moved += owner_before[tp] != owner_after[tp] ? 1 : 0;
  EXPECT_LE(moved, 3) << describe(ms);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(std::includes(before[i].begin(), before[i].end(), after[i].begin(), after[i].end()))
        << ms[i]->name() << " got a partition another original member had" << describe(ms);
  }
  for (auto& m : ms) m->stop();
}

TEST_F(GroupClientTest, RangeAndRoundRobinAssignAsSpecified) {
  create_topic("rr-a", 4);
  create_topic("rr-b", 4);
  auto sub = [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"rr-a", "rr-b"}, l); };
  const Parts all = concat(partitions_of("rr-a", 4), partitions_of("rr-b", 4));
  std::map<std::string, Members> groups;
  for (const std::string strategy : {"range", "roundrobin"}) {
    auto cfg = config("g-" + strategy);
    cfg.partition_assignment_strategy = {strategy};
    for (int i = 1; i <= 3; ++i) groups[strategy].push_back(std::make_unique<Member>(strategy + std::to_string(i), cfg, sub));
  }
  for (auto& [strategy, ms] : groups) {
    std::vector<Parts> got;
    ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, all, &got); }, 20s)) << strategy << describe(ms);
    // Members in member id order, as both assignors order them.
    std::vector<std::pair<std::string, Parts>> by_id;
    for (size_t i = 0; i < ms.size(); ++i) by_id.emplace_back(ms[i]->member_id(), got[i]);
    std::sort(by_id.begin(), by_id.end());
    std::vector<Parts> want;
    if (strategy == "range") {
      // Per topic, 4 partitions over 3 members: the first takes 2, the others 1 each (4, 2, 2).
      want = {{{"rr-a", 0}, {"rr-a", 1}, {"rr-b", 0}, {"rr-b", 1}}, {{"rr-a", 2}, {"rr-b", 2}}, {{"rr-a", 3}, {"rr-b", 3}}};
    } else {
      // a0 a1 a2 a3 b0 b1 b2 b3 dealt round the circle (3, 3, 2).
      want = {{{"rr-a", 0}, {"rr-a", 3}, {"rr-b", 2}}, {{"rr-a", 1}, {"rr-b", 0}, {"rr-b", 3}}, {{"rr-a", 2}, {"rr-b", 1}}};
    }
    for (size_t i = 0; i < by_id.size(); ++i) {
      EXPECT_EQ(str(by_id[i].second), str(want[i])) << strategy << " member " << i << describe(ms);
    }
  }
  for (auto& [strategy, ms] : groups) {
    for (auto& m : ms) m->stop();
  }
}

// ---- 7. Auto commit -----------------------------------------------------------------------------

TEST_F(GroupClientTest, AutoCommitCommitsWhatPollReturnedAndAtClose) {
  const std::string group = "g-auto";
  create_topic("ac", 2);
  produce("ac", 0, 10);
  produce("ac", 1, 10);
  auto cfg = config(group);
  cfg.enable_auto_commit = true;
  cfg.auto_commit_interval_ms = 200;
  const TopicPartition p0{"ac", 0}, p1{"ac", 1};
  {
    Consumer k(cfg);
    k.subscribe(Topics{"ac"});
    std::vector<ConsumerRecord> got;
    ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 20; }, 20s)) << got.size();
    // Polling on: within a few intervals the positions are committed without being asked.
    ASSERT_TRUE(poll_until(k, &got, [&] { return committed(group, p0) == 10 && committed(group, p1) == 10; }, 5s))
        << "no auto commit within 5 s at auto.commit.interval.ms=200";
    // Three more each, read, then close() at once (well within an interval): close commits them.
    produce("ac", 0, 3);
    produce("ac", 1, 3);
    got.clear();
    ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 6; }, 10s)) << got.size();
    const auto t = Clock::now();
    k.close();
    EXPECT_LT(ms_since(t), 3'000) << "close() was slow";
  }
  EXPECT_EQ(committed(group, p0), 13);
  EXPECT_EQ(committed(group, p1), 13);

  // A new member starts right after them.
  produce("ac", 0, 2);
  produce("ac", 1, 2);
  Consumer k2(cfg);
  k2.subscribe(Topics{"ac"});
  std::vector<ConsumerRecord> got2;
  ASSERT_TRUE(poll_until(k2, &got2, [&] { return got2.size() >= 4; }, 20s)) << got2.size();
  poll_until(k2, &got2, [] { return false; }, 500ms);
  auto bp = by_partition(got2);
  EXPECT_EQ(bp[p0], offsets_range(13, 15)) << "re-read or skipped records after the auto-committed position";
  EXPECT_EQ(bp[p1], offsets_range(13, 15));
}

// ---- 8. Membership: unsubscribe / subscribe, close ------------------------------------------------

TEST_F(GroupClientTest, UnsubscribeThenSubscribeAgain) {
  create_topic("us-a", 2);
  create_topic("us-b", 2);
  produce("us-b", 1, 3);
  Recorder rec;  // outlives the consumer (its destructor's close() calls it)
  Consumer k(config("g-unsub"));
  rec.attach(&k);
  k.subscribe(Topics{"us-a"}, &rec);
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return sorted(k.assignment()) == partitions_of("us-a", 2); }, 20s))
      << rec.dump();
  const std::string first_member = k.member_id();
  EXPECT_FALSE(first_member.empty());

  k.unsubscribe();
  EXPECT_TRUE(k.assignment().empty());
  EXPECT_EQ(k.generation(), -1);
  auto ev = rec.events();
  ASSERT_EQ(ev.size(), 2u) << rec.dump();
  EXPECT_FALSE(ev[1].assigned);
  EXPECT_EQ(ev[1].partitions, partitions_of("us-a", 2));
  EXPECT_TRUE(k.poll(200).empty());  // nothing subscribed: nothing read, no error

  k.subscribe(Topics{"us-b"}, &rec);
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 3; }, 20s)) << rec.dump();
  EXPECT_EQ(sorted(k.assignment()), partitions_of("us-b", 2));
  EXPECT_NE(k.member_id(), first_member) << "rejoined with the member id it left with";
  EXPECT_EQ(by_partition(got)[(TopicPartition{"us-b", 1})], offsets_range(0, 3));
  for (const auto& r : got) EXPECT_EQ(r.topic, "us-b");
  expect_well_ordered(rec, "k");
}

TEST_F(GroupClientTest, CloseLeavesTheGroupAtOnce) {
  create_topic("cl", 4);
  auto cfg = config("g-close");
  cfg.session_timeout_ms = 10'000;  // a member that merely vanished would hold its partitions 10 s
  auto sub = [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"cl"}, l); };
  Members ms;
  for (const char* n : {"x", "y"}) ms.push_back(std::make_unique<Member>(n, cfg, sub));
  const Parts all = partitions_of("cl", 4);
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(ms, all, nullptr); }, 20s)) << describe(ms);

  const auto t = Clock::now();
  ms[0]->stop();
  Members rest;
  rest.push_back(std::move(ms[1]));
  ASSERT_TRUE(testing::wait_until([&] { return group_stable(rest, all, nullptr); }, 15s)) << describe(rest);
  const int64_t took = ms_since(t);
  std::cout << "the remaining member owned every partition " << took << " ms after close() began (close took "
            << ms[0]->close_ms() << " ms)" << std::endl;
  EXPECT_LT(took, 3'000) << "close() did not leave the group (the session timeout is 10 s)";
  EXPECT_LT(ms[0]->close_ms(), 2'000);
  rest[0]->stop();
}

// While a rebalance waits for a slow member (one that has not polled: the coordinator holds the
// join up to the rebalance timeout), a joining consumer's poll(timeout) still returns within its
// timeout, and close() ends the pending join at once instead of waiting it out.
TEST_F(GroupClientTest, PollAndCloseDoNotWaitOutAPendingJoin) {
  create_topic("slow", 2);
  auto cfg = config("g-slow");
  cfg.max_poll_interval_ms = 20'000;  // the rebalance timeout: how long a join may be held
  Consumer a(cfg);
  a.subscribe(Topics{"slow"});
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(a, &got, [&] { return a.assignment().size() == 2; }, 20s));
  // `a` now stops polling (busy elsewhere); its heartbeats go on, so it stays in the group and the
  // next join phase waits for it.
  Consumer b(cfg);
  b.subscribe(Topics{"slow"});
  int64_t worst = 0;
  for (int i = 0; i < 10; ++i) {
    const auto t = Clock::now();
    b.poll(200);
    worst = std::max(worst, ms_since(t));
  }
  std::cout << "slowest poll(200) while the join was held: " << worst << " ms" << std::endl;
  EXPECT_LT(worst, 1'500) << "poll(200) waited for the join phase";
  EXPECT_TRUE(b.assignment().empty()) << "b cannot be assigned before a rejoins";
  const auto t = Clock::now();
  b.close();
  std::cout << "close() with a join pending: " << ms_since(t) << " ms" << std::endl;
  EXPECT_LT(ms_since(t), 3'000) << "close() waited for the pending join";
  // a polls again: it rejoins, and with b gone owns both partitions.
  ASSERT_TRUE(poll_until(a, &got, [&] { return a.assignment().size() == 2 && a.generation() > 0; }, 30s));
  a.close();
}

// A member whose join and sync finish while it is not polling (the join task completed between
// two polls) keeps its session: heartbeats start when the sync answers, not at the next poll. Else
// the coordinator expires it, the other member owns everything, and at its next poll the member
// takes the stale assignment and reads partitions that now belong to the other (duplicates).
TEST_F(GroupClientTest, JoinFinishedBetweenPollsKeepsTheSessionAndReadsNothingOwnedElsewhere) {
  create_topic("gap", 2);
  auto cfg = config("g-gap");
  cfg.session_timeout_ms = 2'000;
  cfg.heartbeat_interval_ms = 500;
  cfg.max_poll_interval_ms = 10'000;
  Consumer a(cfg);
  a.subscribe(Topics{"gap"});
  std::vector<ConsumerRecord> got_a;
  ASSERT_TRUE(poll_until(a, &got_a, [&] { return a.assignment().size() == 2; }, 20s));
  auto sub = [](Consumer& k, client::RebalanceListener* l) { k.subscribe(Topics{"gap"}, l); };
  Members ms;
  ms.push_back(std::make_unique<Member>("b", cfg, sub));
  // a polls (poll(0): it never waits for the join) until it has revoked for the rebalance b began;
  // its join then completes on the join task while a does not poll.
  const auto until = Clock::now() + 10s;
  while (!a.assignment().empty() && Clock::now() < until) {
    for (auto& r : a.poll(0)) got_a.push_back(std::move(r));
  }
  ASSERT_TRUE(a.assignment().empty()) << "a never began to rejoin" << describe(ms);
  got_a.clear();
  produce("gap", 0, 5);
  produce("gap", 1, 5);
  std::this_thread::sleep_for(5s);  // > 2 session timeouts, < max.poll.interval.ms
  auto b_owns = ms[0]->owns();
  ASSERT_TRUE(b_owns.has_value()) << describe(ms);
  EXPECT_EQ(b_owns->partitions.size(), 1u) << "a's session expired while its join outcome waited for a poll"
                                           << describe(ms);
  const auto t = Clock::now();
  while (ms_since(t) < 2'000) {
    for (auto& r : a.poll(100)) got_a.push_back(std::move(r));
  }
  // No offset is read by both members.
  auto ra = by_partition(got_a);
  auto rb = by_partition(ms[0]->records());
  for (const auto& [tp, offs] : ra) {
    for (int64_t o : offs) {
      const auto& other = rb[tp];
      EXPECT_TRUE(std::find(other.begin(), other.end(), o) == other.end())
          << "a and b both read " << tp.topic << "-" << tp.partition << "@" << o << describe(ms);
    }
  }
  ms[0]->stop();
  a.close();
}

// subscribe() to other topics while a join (for the old ones) is pending: the consumer never takes
// the old subscription's assignment nor returns its records.
TEST_F(GroupClientTest, SubscribeDuringAPendingJoinNeverAssignsTheOldTopics) {
  create_topic("resub-old", 1);
  create_topic("resub-new", 1);
  produce("resub-old", 0, 3);
  produce("resub-new", 0, 3);
  Recorder rec;
  Consumer k(config("g-resub"));
  rec.attach(&k);
  k.subscribe(Topics{"resub-old"}, &rec);
  k.poll(0);  // the join for resub-old begins
  k.subscribe(Topics{"resub-new"}, &rec);
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(poll_until(k, &got, [&] { return got.size() >= 3; }, 10s)) << rec.dump();
  for (const auto& r : got) EXPECT_EQ(r.topic, "resub-new") << "read " << r.topic << "@" << r.offset;
  for (const auto& e : rec.events()) {
    for (const auto& tp : e.partitions) EXPECT_EQ(tp.topic, "resub-new") << rec.dump();
  }
  k.close();
}

// ---- Broker-assigned groups (group.protocol=consumer) ---------------------------------------------

// Partitions come and go one by one under the consumer protocol: it tracks what the consumer owns
// from the listener's calls, and the records its polling thread reads.
class IncrementalMember : public client::RebalanceListener {
 public:
  IncrementalMember(ConsumerConfig cfg, std::vector<std::string> topics) : consumer_(std::move(cfg)) {
    thread_ = std::thread([this, topics] {
      consumer_.subscribe(topics, this);
      while (!stop_) {
        ErrorCode e = gannet::v1::NONE;
        auto recs = consumer_.poll(100, &e);
        std::lock_guard<std::mutex> l(mu_);
        for (auto& r : recs) records_.push_back(std::move(r));
        if (e != gannet::v1::NONE) ++errors_[e];
      }
      consumer_.close();
    });
  }
  ~IncrementalMember() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void on_revoked(const Parts& ps) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& tp : ps) {
      EXPECT_TRUE(owned_.erase(tp)) << "revoked " << tp.topic << "-" << tp.partition << " it did not own";
    }
  }
  void on_assigned(const Parts& ps) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& tp : ps) {
      EXPECT_TRUE(owned_.insert(tp).second) << "assigned " << tp.topic << "-" << tp.partition << " twice";
    }
  }
  Parts owned() const {
    std::lock_guard<std::mutex> l(mu_);
    return Parts(owned_.begin(), owned_.end());
  }
  std::vector<ConsumerRecord> records() const {
    std::lock_guard<std::mutex> l(mu_);
    return records_;
  }
  int errors(ErrorCode e) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = errors_.find(e);
    return it == errors_.end() ? 0 : it->second;
  }

 private:
  Consumer consumer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::set<TopicPartition> owned_;
  std::vector<ConsumerRecord> records_;
  std::map<ErrorCode, int> errors_;
};

TEST_F(GroupClientTest, ConsumerProtocolMovesPartitionsWhileTheOthersKeepBeingConsumed) {
  create_topic("cp-moves", 6);
  // A steady producer, round robin over the six partitions.
  std::atomic<bool> producing{true};
  std::atomic<int64_t> acked{0};
  std::array<std::atomic<int64_t>, 6> acked_in{};
  std::thread producer([&] {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(cluster_->bootstrap());
    pc.acks = -1;
    pc.linger_ms = 1;
    client::Producer p(pc);
    for (int i = 0; producing; ++i) {
      client::ProducerRecord r;
      r.topic = "cp-moves";
      r.partition = i % 6;
      r.value = "v" + std::to_string(i);
      p.send(std::move(r), [&](const client::RecordMetadata& m) {
        if (m.ok()) {
          ++acked;
          ++acked_in[static_cast<size_t>(m.partition)];
        }
      });
      std::this_thread::sleep_for(2ms);
    }
    p.flush();
  });
  auto cfg = config("g-cp-moves");
  cfg.group_protocol = "consumer";
  cfg.enable_auto_commit = true;
  cfg.auto_commit_interval_ms = 200;
  auto a = std::make_unique<IncrementalMember>(cfg, Topics{"cp-moves"});
  ASSERT_TRUE(testing::wait_until([&] { return a->owned().size() == 6; }, 20s, 20ms)) << str(a->owned());
  ASSERT_TRUE(testing::wait_until([&] { return a->records().size() > 100; }, 20s, 20ms));
  // B joins: A gives three up, B gets them; meanwhile A goes on reading its other three.
  const auto before = a->records().size();
  const auto t_join = Clock::now();
  auto cfg_b = cfg;
  cfg_b.client_id = "second";
  auto b = std::make_unique<IncrementalMember>(cfg_b, Topics{"cp-moves"});
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto pa = a->owned(), pb = b->owned();
        return pa.size() == 3 && pb.size() == 3 && sorted(concat(pa, pb)) == partitions_of("cp-moves", 6);
      },
      20s, 10ms))
      << "A " << str(a->owned()) << " B " << str(b->owned());
  const int64_t moved_ms = ms_since(t_join);
  const auto during = a->records().size() - before;
  std::cout << "consumer protocol: a member joined; every partition owned again after " << moved_ms
            << " ms; the first member read " << during << " records meanwhile" << std::endl;
  EXPECT_GT(during, 0u) << "the first member stopped consuming during the move";
  // B closes (leaves): A owns all six again, well within the 3 s session.
  const auto t_leave = Clock::now();
  b->stop();
  ASSERT_TRUE(testing::wait_until([&] { return a->owned().size() == 6; }, 10s, 10ms)) << str(a->owned());
  EXPECT_LT(ms_since(t_leave), 2'500);
  // A classic member cannot join the group.
  {
    Consumer classic(config("g-cp-moves"));
    classic.subscribe(Topics{"cp-moves"});
    ErrorCode e = gannet::v1::NONE;
    const auto end = Clock::now() + 10s;
    while (e == gannet::v1::NONE && Clock::now() < end) classic.poll(100, &e);
    EXPECT_EQ(e, gannet::v1::INCONSISTENT_GROUP_PROTOCOL);
    classic.close();
  }
  producing = false;
  producer.join();
  // Every acknowledged record is read by A or B (at least once). The topic is new and the
  // producer idempotent: partition p holds offsets [0, acked in p).
  auto hw = [&](int p) { return acked_in[static_cast<size_t>(p)].load(); };
  std::map<int, std::set<int64_t>> seen;
  for (const auto* m : {a.get(), b.get()}) {
    for (const auto& r : m->records()) seen[r.partition].insert(r.offset);
  }
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (const auto& r : a->records()) seen[r.partition].insert(r.offset);
        for (int p = 0; p < 6; ++p) {
          if (static_cast<int64_t>(seen[p].size()) < hw(p)) return false;
        }
        return true;
      },
      20s, 50ms));
  int64_t total = 0;
  for (int p = 0; p < 6; ++p) {
    const int64_t end = hw(p);
    total += end;
    for (int64_t o = 0; o < end; ++o) ASSERT_TRUE(seen[p].count(o)) << "cp-moves-" << p << "@" << o << " never read";
  }
  EXPECT_EQ(total, acked.load());
  a->stop();
}

}  // namespace
}  // namespace gannet
