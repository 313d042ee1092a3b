// Consumer groups end to end (issue 6): three combined gannetd processes on loopback, consumers run
// as real `gannet consume TOPIC --group G` processes whose stdout (the records) and stderr (their
// `assigned:` lines, errors and the final `consumed N record(s)` of a clean exit) go to files of
// their own, and the group read back through `gannet group describe --output json` (or, where
// timing matters, a DescribeGroups RPC to the coordinator found with FindCoordinator).
//
//   Balance:          3 members of a 6-partition group get 2 partitions each; 6 get one each; a
//                     7th gets none (6 members with one partition, one with zero).
//   Failover:         a SIGKILLed member's partitions move to the others within the session
//                     timeout plus a bounded margin (the time is printed).
//   Resume:           --commit sync and a SIGTERM stop: restarted members print exactly the
//                     records produced meanwhile (no old one, no duplicate) and the lag ends at 0.
//   TwoGroups:        two groups on one topic each read every record.
//   CoordinatorCrash: producers (acks=all) and a group of 3 run while the group's coordinator is
//                     SIGKILLed and restarted, two or three times, each time with one member
//                     SIGKILLed too and replaced (so partitions resume from offsets committed
//                     through the dead coordinator): every acknowledged record is read by some
//                     member (members re-reading from the last commit print some twice: those
//                     are counted and printed; GANNET_SEED replays the choices), and the topic's
//                     log holds no record twice (the producers are idempotent).
//   Admin:            reset-offsets and delete refused (NON_EMPTY_GROUP, exit 1) while members
//                     run, done when they stopped (the group then re-reads from the new offsets);
//                     list shows the state; GROUP_ID_NOT_FOUND for unknown or deleted groups.
//
// One cluster serves every test (each has its own topic and group); the crash test, which
// restarts brokers, is declared last so it runs last. Every wait is bounded and every process is killed when its test
// ends, also when it fails.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "client/consumer_protocol.h"
#include "client/producer.h"
#include "testing/cli_harness.h"
#include "testing/cluster_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using namespace std::chrono_literals;
using testing::CliRun;
using testing::contains;
using testing::field;
using testing::gannet_cli;
using testing::objects;
using testing::parse_json;
using testing::read_file;
using testing::shell_quote;
using testing::str;

using google::protobuf::Struct;
using google::protobuf::Value;
using testing::Cluster;
namespace bv1 = broker::v1;
using Clock = std::chrono::steady_clock;

constexpr int kSessionMs = 3000;  // the consumers' --session-timeout-ms
constexpr const char* kBrokerExtra =
    "group.initial.rebalance.delay.ms=200\n"
    "group.min.session.timeout.ms=1000\n"
    "offsets.topic.num.partitions=6\n"
    "offsets.topic.replication.factor=3\n"
    "replica.fetch.wait.max.ms=100\n"
    "replica.lag.time.max.ms=3000\n";

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// The lines of `text` that are complete (a writer may be half way through the last one).
std::vector<std::string> complete_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
bool alive(pid_t pid) {
  if (pid <= 0) return false;
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// ---- The gannet binary, run to completion -----------------------------------------------------------

int64_t num(const Struct& s, const std::string& key) {
  const Value& v = field(s, key);
  return v.kind_case() == Value::kNumberValue ? static_cast<int64_t>(v.number_value()) : -999;
}

// `gannet group describe G --output json`, parsed.
struct GroupView {
  struct Member {
    std::string member_id, client_id;
    std::set<std::string> partitions;  // "topic-p"
  };
  struct Offset {
    int64_t committed = -1, log_end = -1, lag = -1;
  };
  std::string state;
  std::vector<Member> members;
  std::map<std::string, Offset> offsets;  // "topic-p"
  CliRun run;                             // for failure messages

  std::set<std::string> assigned() const {
    std::set<std::string> all;
    for (const auto& m : members) all.insert(m.partitions.begin(), m.partitions.end());
    return all;
  }
  size_t assigned_count() const {
    size_t n = 0;
    for (const auto& m : members) n += m.partitions.size();
    return n;
  }
  const Member* by_client(const std::string& client_id) const {
    for (const auto& m : members) {
      if (m.client_id == client_id) return &m;
    }
    return nullptr;
  }
};

std::optional<GroupView> describe_cli(const std::string& bootstrap, const std::string& group, CliRun* last = nullptr) {
  GroupView v;
  v.run = gannet_cli({"group", "describe", group, "--bootstrap-server", bootstrap, "--output", "json", "--timeout-ms", "10000"});
  if (last) *last = v.run;
  if (v.run.code != 0) return std::nullopt;
  auto j = parse_json(v.run.out);
  if (!j || str(*j, "group") != group) return std::nullopt;
  v.state = str(*j, "state");
  for (const Struct& m : objects(*j, "members")) {
    GroupView::Member mv;
    mv.member_id = str(m, "member_id");
    mv.client_id = str(m, "client_id");
    for (const Struct& p : objects(m, "partitions")) mv.partitions.insert(str(p, "topic") + "-" + std::to_string(num(p, "partition")));
    v.members.push_back(std::move(mv));
  }
  for (const Struct& o : objects(*j, "offsets")) {
    v.offsets[str(o, "topic") + "-" + std::to_string(num(o, "partition"))] =
        GroupView::Offset{num(o, "committed_offset"), num(o, "log_end_offset"), num(o, "lag")};
  }
  return v;
}

std::set<std::string> partitions_of(const std::string& topic, int n) {
  std::set<std::string> out;
  for (int p = 0; p < n; ++p) out.insert(topic + "-" + std::to_string(p));
  return out;
}

// ---- A `gannet consume --group` process -------------------------------------------------------------

class ConsumerProcess {
 public:
  // Output files under `dir`, named after `name` (also the --client-id).
  ConsumerProcess(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {}

  void start(const std::string& bootstrap, const std::string& topic, const std::string& group,
             const std::vector<std::string>& more = {"--commit", "sync", "--from-beginning"}) {
    std::vector<std::string> args = {testing::runfile("tools/gannet"), "consume", topic, "--bootstrap-server", bootstrap,
                                     "--group", group, "--session-timeout-ms", std::to_string(kSessionMs),
                                     "--client-id", name_};
    args.insert(args.end(), more.begin(), more.end());
    std::string cmd = "exec";
    for (const auto& a : args) cmd += " " + shell_quote(a);
    // exec: the pid is gannet's own, so signals reach it directly; stdout and stderr apart.
    cmd += " </dev/null >>" + shell_quote(out_path()) + " 2>>" + shell_quote(err_path());
    command_ = cmd;
    proc_.start({"/bin/sh", "-c", cmd}, dir_ + "/" + name_ + ".sh.log");
  }

  // Sends SIGTERM without waiting (to stop several members at once).
  void signal_stop() {
    if (proc_.running()) ::kill(proc_.pid(), SIGTERM);
  }
  // SIGTERM and reap (SIGKILL after 10 s); returns how long it took.
  int64_t stop() {
    const auto t = Clock::now();
    proc_.kill(SIGTERM);
    return ms_since(t);
  }
  void crash() { proc_.kill(SIGKILL); }
  bool alive() const { return proc_.running() && gannet::alive(proc_.pid()); }

  const std::string& name() const { return name_; }
  std::string out_path() const { return dir_ + "/" + name_ + ".out"; }
  std::string err_path() const { return dir_ + "/" + name_ + ".err"; }
  std::vector<std::string> records() const { return complete_lines(read_file(out_path())); }
  std::string err() const { return read_file(err_path()); }
  // A clean exit prints this last, after the final commit and LeaveGroup.
  bool exited_cleanly() const { return contains(err(), "\nconsumed ") || err().rfind("consumed ", 0) == 0; }

  // The partitions of the last `assigned:` line ("(none)": empty); nullopt before the first.
  std::optional<std::set<std::string>> last_assignment() const {
    std::optional<std::set<std::string>> last;
    for (const std::string& l : complete_lines(err())) {
      if (l.rfind("assigned: ", 0) != 0) continue;
      std::set<std::string> parts;
      const std::string list = l.substr(10);
      if (list != "(none)") {
        std::istringstream in(list);
        for (std::string p; std::getline(in, p, ',');) parts.insert(p);
      }
      last = parts;
    }
    return last;
  }

  std::string dump() const {
    auto recs = records();
    std::string tail = err();
    if (tail.size() > 3000) tail = "..." + tail.substr(tail.size() - 3000);
    return "\n--- consumer " + name_ + " (" + std::to_string(recs.size()) + " records on stdout): " + command_ +
           "\n--- its stderr ---\n" + tail;
  }

 private:
  std::string dir_, name_, command_;
  testing::Process proc_;  // killed on destruction
};

using Consumers = std::vector<std::unique_ptr<ConsumerProcess>>;

std::string dump_all(const Consumers& cs) {
  std::string s;
  for (const auto& c : cs) s += c->dump();
  return s;
}

// Every record line of these consumers, and how often each was printed.
std::map<std::string, int> printed(const Consumers& cs) {
  std::map<std::string, int> out;
  for (const auto& c : cs) {
    for (const auto& r : c->records()) ++out[r];
  }
  return out;
}
int64_t total(const std::map<std::string, int>& m) {
  int64_t n = 0;
  for (const auto& [v, k] : m) n += k;
  return n;
}

// Stops them all at once (SIGTERM to each, then reap each) and checks each exited cleanly.
void stop_all(Consumers& cs) {
  for (auto& c : cs) c->signal_stop();
  for (auto& c : cs) {
    const int64_t took = c->stop();
    EXPECT_LT(took, 10'000) << c->name() << " ignored SIGTERM for 10 s and was killed" << c->dump();
    EXPECT_TRUE(c->exited_cleanly()) << c->name() << " did not exit cleanly on SIGTERM" << c->dump();
  }
}

// ---- The shared cluster -------------------------------------------------------------------------

class GroupProcessTest : public ::testing::Test {
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
    ASSERT_TRUE(cluster_->wait_unfenced({1, 2, 3}, 30s)) << "not every broker is unfenced";
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = testing::test_dir("group-" + name);
  }

  Cluster& c() { return *cluster_; }
  std::string bootstrap() { return cluster_->bootstrap(); }

  ConsumerProcess& add(Consumers& cs, const std::string& name) {
    cs.push_back(std::make_unique<ConsumerProcess>(dir_, name));
    return *cs.back();
  }

  void create_topic(const std::string& topic, int partitions, const std::map<std::string, std::string>& configs = {}) {
    ASSERT_EQ(c().create_error(topic, partitions, 3, configs), gannet::v1::NONE);
    // Every partition led before anyone reads or writes it.
    ASSERT_TRUE(testing::wait_until([&] {
      auto md = c().metadata({topic});
      if (md.topics_size() != 1 || md.topics(0).partitions_size() != partitions) return false;
      for (const auto& p : md.topics(0).partitions()) {
        if (p.leader() < 0) return false;
      }
      return true;
    }, 30s, 100ms)) << "topic " << topic << " has partitions without a leader";
  }

  // Produces `values` (acks=all), to `partition` if given, keyed by key(i) otherwise; returns how
  // many were acknowledged.
  int64_t produce(const std::string& topic, const std::vector<std::string>& values, std::optional<int> partition = {}) {
    client::ProducerConfig cfg;
    cfg.bootstrap_servers = testing::split_addresses(bootstrap());
    cfg.acks = -1;
    cfg.linger_ms = 2;
    std::atomic<int64_t> acked{0};
    {
      client::Producer p(cfg);
      for (size_t i = 0; i < values.size(); ++i) {
        client::ProducerRecord r;
        r.topic = topic;
        r.partition = partition;
        if (!partition) r.key = "k" + std::to_string(i % 17);
        r.value = values[i];
        p.send(std::move(r), [&](const client::RecordMetadata& m) {
          if (m.ok()) ++acked;
        });
      }
      p.flush();
    }
    return acked.load();
  }

  // The group's coordinator (FindCoordinator through a live broker), -1 if none answers in time.
  int coordinator_of(const std::string& group, std::chrono::milliseconds timeout = 30s) {
    int found = -1;
    testing::wait_until([&] {
      const int via = c().any_live();
      if (via < 0) return false;
      bv1::FindCoordinatorRequest req;
      req.set_key(group);
      bv1::FindCoordinatorResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 2s);
      if (!c().broker(via)->FindCoordinator(&ctx, req, &resp).ok() || resp.error_code() != gannet::v1::NONE) return false;
      if (!c().running(resp.node_id())) return false;  // a stale answer naming a dead broker
      found = resp.node_id();
      return true;
    }, timeout, 100ms);
    return found;
  }

  // DescribeGroups straight to the coordinator (cheaper than the CLI, for timing): the state and
  // each member's partitions ("topic-p"), keyed by client id.
  struct RpcView {
    std::string state;
    std::map<std::string, std::set<std::string>> by_client;
    std::set<std::string> assigned() const {
      std::set<std::string> all;
      for (const auto& [c, ps] : by_client) all.insert(ps.begin(), ps.end());
      return all;
    }
  };
  std::optional<RpcView> describe_rpc(const std::string& group) {
    const int coord = coordinator_of(group, 2s);
    if (coord < 0) return std::nullopt;
    bv1::DescribeGroupsRequest req;
    req.add_group_ids(group);
    bv1::DescribeGroupsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    if (!c().broker(coord)->DescribeGroups(&ctx, req, &resp).ok() || resp.groups_size() != 1 ||
        resp.groups(0).error_code() != gannet::v1::NONE) {
      return std::nullopt;
    }
    RpcView v;
    v.state = resp.groups(0).state();
    for (const auto& m : resp.groups(0).members()) {
      auto& parts = v.by_client[m.client_id()];
      if (auto a = client::decode_assignment(m.assignment())) {
        for (const auto& tp : a->partitions) parts.insert(tp.topic + "-" + std::to_string(tp.partition));
      }
    }
    return v;
  }

  // Waits until `gannet group describe` shows the group Stable with `members` members whose
  // partitions are `partitions` exactly (each once) and `ok(view)`; the last view in *last.
  bool wait_stable(const std::string& group, size_t members, const std::set<std::string>& partitions,
                   std::chrono::milliseconds timeout, GroupView* last,
                   const std::function<bool(const GroupView&)>& ok = nullptr) {
    return testing::wait_until([&] {
      auto v = describe_cli(bootstrap(), group, &last->run);
      if (!v) return false;
      *last = *v;
      return v->state == "Stable" && v->members.size() == members && v->assigned() == partitions &&
             v->assigned_count() == partitions.size() && (!ok || ok(*v));
    }, timeout, 200ms);
  }

  static Cluster* cluster_;
  static bool ready_;
  std::string dir_;
};

Cluster* GroupProcessTest::cluster_ = nullptr;
bool GroupProcessTest::ready_ = false;

// Each member's last `assigned:` line agrees with what describe says it owns.
void expect_assigned_lines_match(const Consumers& cs, const GroupView& v) {
  for (const auto& c : cs) {
    const GroupView::Member* m = v.by_client(c->name());
    ASSERT_NE(m, nullptr) << c->name() << " is not a member" << v.run.dump();
    std::optional<std::set<std::string>> lines;
    // The line is printed right after SyncGroup: give it a moment to reach the file.
    testing::wait_until([&] {
      lines = c->last_assignment();
      return lines && *lines == m->partitions;
    }, 5s);
    ASSERT_TRUE(lines) << c->name() << " printed no assigned: line" << c->dump();
    EXPECT_EQ(*lines, m->partitions) << c->name() << "'s last assigned: line is not its describe row" << c->dump()
                                     << v.run.dump();
  }
}

// ---- 1. Balance ---------------------------------------------------------------------------------

TEST_F(GroupProcessTest, MembersSharePartitionsEvenlyAndASeventhGetsNone) {
  create_topic("bal", 6);
  const auto all = partitions_of("bal", 6);
  Consumers cs;
  for (int i = 1; i <= 3; ++i) add(cs, "bal-c" + std::to_string(i)).start(bootstrap(), "bal", "g-bal");
  GroupView v;
  const auto t0 = Clock::now();
  ASSERT_TRUE(wait_stable("g-bal", 3, all, 60s, &v, [](const GroupView& g) {
    return std::all_of(g.members.begin(), g.members.end(), [](const auto& m) { return m.partitions.size() == 2; });
  })) << "3 members never held 2 partitions each" << v.run.dump() << dump_all(cs);
  std::cout << "3 members stable with 2 partitions each " << ms_since(t0) << " ms after starting them" << std::endl;
  expect_assigned_lines_match(cs, v);

  // Three more: one partition each.
  for (int i = 4; i <= 6; ++i) add(cs, "bal-c" + std::to_string(i)).start(bootstrap(), "bal", "g-bal");
  ASSERT_TRUE(wait_stable("g-bal", 6, all, 60s, &v, [](const GroupView& g) {
    return std::all_of(g.members.begin(), g.members.end(), [](const auto& m) { return m.partitions.size() == 1; });
  })) << "6 members never held one partition each" << v.run.dump() << dump_all(cs);
  expect_assigned_lines_match(cs, v);

  // A seventh: one member (whichever the assignor leaves out) gets nothing.
  add(cs, "bal-c7").start(bootstrap(), "bal", "g-bal");
  ASSERT_TRUE(wait_stable("g-bal", 7, all, 60s, &v)) << "7 members never became stable" << v.run.dump() << dump_all(cs);
  int with_one = 0, with_none = 0;
  std::string idle;
  for (const auto& m : v.members) {
    if (m.partitions.size() == 1) ++with_one;
    if (m.partitions.empty()) {
      ++with_none;
      idle = m.client_id;
    }
  }
  EXPECT_EQ(with_one, 6) << v.run.dump();
  EXPECT_EQ(with_none, 1) << v.run.dump();
  expect_assigned_lines_match(cs, v);
  for (const auto& c : cs) {
    if (c->name() == idle) {
      EXPECT_EQ(c->last_assignment().value_or(std::set<std::string>{"?"}), std::set<std::string>{})
          << "the idle member should print assigned: (none)" << c->dump();
    }
  }
  std::cout << "7 members: 6 with one partition, " << idle << " with none" << std::endl;
  stop_all(cs);
}

// ---- 2. Failover after SIGKILL --------------------------------------------------------------------

TEST_F(GroupProcessTest, KilledMembersPartitionsMoveWithinTheSessionTimeout) {
  create_topic("fo", 6);
  const auto all = partitions_of("fo", 6);
  Consumers cs;
  for (int i = 1; i <= 3; ++i) add(cs, "fo-c" + std::to_string(i)).start(bootstrap(), "fo", "g-fo");
  GroupView v;
  ASSERT_TRUE(wait_stable("g-fo", 3, all, 60s, &v)) << v.run.dump() << dump_all(cs);
  const GroupView::Member* victim_row = v.by_client("fo-c2");
  ASSERT_NE(victim_row, nullptr) << v.run.dump();
  const std::set<std::string> orphaned = victim_row->partitions;
  ASSERT_EQ(orphaned.size(), 2u) << v.run.dump();

  // Kill one member; measure until the two others own every partition.
  const auto killed_at = Clock::now();
  cs[1]->crash();
  std::optional<RpcView> rv;
  const bool moved = testing::wait_until([&] {
    rv = describe_rpc("g-fo");
    return rv && rv->state == "Stable" && rv->by_client.size() == 2 && !rv->by_client.count("fo-c2") &&
           rv->assigned() == all;
  }, std::chrono::milliseconds(kSessionMs + 15'000), 50ms);
  const int64_t failover_ms = ms_since(killed_at);
  ASSERT_TRUE(moved) << "the killed member's partitions did not move in " << failover_ms << " ms" << dump_all(cs);
  std::cout << "failover: every partition owned again " << failover_ms << " ms after SIGKILL of a member (session timeout "
            << kSessionMs << " ms)" << std::endl;
  EXPECT_LE(failover_ms, kSessionMs + 5'000) << "slower than the session timeout plus a 5 s margin";
  // Not before the session could have expired (a member that died without leaving is only noticed
  // by its silence).
  EXPECT_GE(failover_ms, kSessionMs - 1'000);

  // The survivors say so too, and between them read records produced after the kill.
  Consumers survivors;
  survivors.push_back(std::move(cs[0]));
  survivors.push_back(std::move(cs[2]));
  ASSERT_TRUE(wait_stable("g-fo", 2, all, 20s, &v)) << v.run.dump();
  expect_assigned_lines_match(survivors, v);
  std::set<std::string> took_over;
  for (const auto& c : survivors) {
    for (const auto& p : c->last_assignment().value_or(std::set<std::string>{})) {
      if (orphaned.count(p)) took_over.insert(p);
    }
  }
  EXPECT_EQ(took_over, orphaned) << dump_all(survivors);
  std::vector<std::string> values;
  for (int i = 0; i < 120; ++i) values.push_back("fo-" + std::to_string(i));
  ASSERT_EQ(produce("fo", values), 120);
  std::map<std::string, int> got;
  EXPECT_TRUE(testing::wait_until([&] {
    got = printed(survivors);
    return std::all_of(values.begin(), values.end(), [&](const std::string& x) { return got.count(x) > 0; });
  }, 30s)) << "the survivors did not read every record produced after the failover (" << got.size() << " of 120)"
           << dump_all(survivors);
  stop_all(survivors);
}

// ---- 3. Resume from committed offsets -------------------------------------------------------------

TEST_F(GroupProcessTest, RestartedGroupResumesFromCommittedOffsets) {
  create_topic("rs", 6);
  const auto all = partitions_of("rs", 6);
  constexpr int kOld = 300, kNew = 120;
  std::vector<std::string> old_values, new_values;
  for (int i = 0; i < kOld; ++i) old_values.push_back("old-" + std::to_string(i));
  for (int i = 0; i < kNew; ++i) new_values.push_back("new-" + std::to_string(i));
  ASSERT_EQ(produce("rs", old_values), kOld);

  Consumers first;
  for (int i = 1; i <= 3; ++i) add(first, "rs-a" + std::to_string(i)).start(bootstrap(), "rs", "g-rs");
  std::map<std::string, int> got;
  ASSERT_TRUE(testing::wait_until([&] {
    got = printed(first);
    return got.size() >= static_cast<size_t>(kOld);
  }, 60s)) << "the group read " << got.size() << " of " << kOld << dump_all(first);
  for (const auto& [x, n] : got) EXPECT_TRUE(x.rfind("old-", 0) == 0) << "unexpected record " << x;
  EXPECT_EQ(got.size(), static_cast<size_t>(kOld));
  GroupView v;
  ASSERT_TRUE(wait_stable("g-rs", 3, all, 30s, &v)) << v.run.dump() << dump_all(first);
  stop_all(first);
  const int64_t first_dups = total(printed(first)) - static_cast<int64_t>(printed(first).size());
  std::cout << "resume: first run read " << kOld << " records with " << first_dups << " duplicate(s)" << std::endl;

  // Stopped: Empty, every partition committed at its end.
  CliRun last;
  ASSERT_TRUE(testing::wait_until([&] {
    auto d = describe_cli(bootstrap(), "g-rs", &last);
    if (!d || d->state != "Empty" || !d->members.empty() || d->offsets.size() != 6) return false;
    int64_t committed = 0;
    for (const auto& [tp, o] : d->offsets) {
      if (o.lag != 0) return false;
      committed += o.committed;
    }
    return committed == kOld;
  }, 20s)) << "after a clean stop the group should be Empty with lag 0 on every partition" << last.dump();

  ASSERT_EQ(produce("rs", new_values), kNew);
  Consumers second;
  for (int i = 1; i <= 3; ++i) add(second, "rs-b" + std::to_string(i)).start(bootstrap(), "rs", "g-rs");
  ASSERT_TRUE(testing::wait_until([&] {
    got = printed(second);
    return std::all_of(new_values.begin(), new_values.end(), [&](const std::string& x) { return got.count(x) > 0; });
  }, 60s)) << "the restarted group did not read every new record" << dump_all(second);
  // Let all three join and the rebalances settle, so a re-read (were there one) shows.
  ASSERT_TRUE(wait_stable("g-rs", 3, all, 30s, &v)) << v.run.dump() << dump_all(second);
  std::this_thread::sleep_for(1500ms);
  got = printed(second);
  int64_t old_reread = 0, dups = 0;
  for (const auto& [x, n] : got) {
    if (x.rfind("old-", 0) == 0) old_reread += n;
    dups += n - 1;
  }
  std::cout << "resume: restarted group printed " << total(got) << " record(s): " << old_reread << " old, " << dups
            << " duplicate(s)" << std::endl;
  EXPECT_EQ(old_reread, 0) << "records committed before the stop were read again" << dump_all(second);
  EXPECT_EQ(dups, 0) << "--commit sync with clean stops should print each new record once" << dump_all(second);
  EXPECT_EQ(total(got), kNew);

  // Lag 0 once the members committed what they printed.
  EXPECT_TRUE(testing::wait_until([&] {
    auto d = describe_cli(bootstrap(), "g-rs", &last);
    if (!d || d->offsets.size() != 6) return false;
    int64_t committed = 0;
    for (const auto& [tp, o] : d->offsets) {
      if (o.lag != 0) return false;
      committed += o.committed;
    }
    return committed == kOld + kNew;
  }, 20s)) << "describe should show lag 0 on every partition" << last.dump();
  stop_all(second);
}

// Issue 14.4: `gannet consume --group` with auto commit committed only after a poll that returned
// records, and only once 5 s had passed since the last commit: a member that read everything and
// then idled kept it uncommitted until it exited, and a SIGKILL then re-read it all. Auto commit
// runs on schedule, records or not.
TEST_F(GroupProcessTest, AnIdleMemberCommitsOnSchedule) {
  create_topic("idle", 3);
  constexpr int kRecords = 30;
  std::vector<std::string> values;
  for (int i = 0; i < kRecords; ++i) values.push_back("idle-" + std::to_string(i));
  ASSERT_EQ(produce("idle", values), kRecords);
  const std::string bs = bootstrap();
  Consumers cs;
  add(cs, "idle-c1").start(bs, "idle", "g-idle", {"--from-beginning", "--auto-commit-interval-ms", "1000"});
  std::map<std::string, int> got;
  ASSERT_TRUE(testing::wait_until([&] {
    got = printed(cs);
    return got.size() >= static_cast<size_t>(kRecords);
  }, 60s)) << dump_all(cs);
  // It now idles: within a few intervals its positions are committed while it still runs.
  CliRun run;
  int64_t committed = 0;
  const bool all_committed = testing::wait_until([&] {
    auto d = describe_cli(bs, "g-idle", &run);
    if (!d) return false;
    committed = 0;
    for (const auto& [tp, o] : d->offsets) committed += std::max<int64_t>(0, o.committed);
    return committed == kRecords;
  }, 15s);
  EXPECT_TRUE(all_committed) << "an idle member committed " << committed << " of " << kRecords << " read" << run.dump();
  cs.back()->crash();
  auto d = describe_cli(bs, "g-idle", &run);
  ASSERT_TRUE(d) << run.dump();
  committed = 0;
  for (const auto& [tp, o] : d->offsets) committed += std::max<int64_t>(0, o.committed);
  EXPECT_EQ(committed, kRecords) << "after the SIGKILL a new member would re-read " << kRecords - committed << run.dump();
}

// ---- 4. Two groups --------------------------------------------------------------------------------

TEST_F(GroupProcessTest, TwoGroupsEachReadEveryRecord) {
  create_topic("two", 3);
  Consumers a, b;
  add(a, "two-a1").start(bootstrap(), "two", "g-two-a");
  add(a, "two-a2").start(bootstrap(), "two", "g-two-a");
  add(b, "two-b1").start(bootstrap(), "two", "g-two-b");
  GroupView v;
  ASSERT_TRUE(wait_stable("g-two-a", 2, partitions_of("two", 3), 60s, &v)) << v.run.dump() << dump_all(a);
  ASSERT_TRUE(wait_stable("g-two-b", 1, partitions_of("two", 3), 60s, &v)) << v.run.dump() << dump_all(b);
  constexpr int kN = 300;
  std::vector<std::string> values;
  for (int i = 0; i < kN; ++i) values.push_back("two-" + std::to_string(i));
  ASSERT_EQ(produce("two", values), kN);
  for (Consumers* g : {&a, &b}) {
    std::map<std::string, int> got;
    EXPECT_TRUE(testing::wait_until([&] {
      got = printed(*g);
      return std::all_of(values.begin(), values.end(), [&](const std::string& x) { return got.count(x) > 0; });
    }, 30s)) << "a group read " << got.size() << " of " << kN << " distinct records" << dump_all(*g);
    EXPECT_EQ(got.size(), static_cast<size_t>(kN)) << "records nobody produced" << dump_all(*g);
    std::cout << "two groups: " << (*g)[0]->name() << "'s group read " << total(got) << " record(s), "
              << total(got) - static_cast<int64_t>(got.size()) << " duplicate(s)" << std::endl;
  }
  stop_all(a);
  stop_all(b);
}

// ---- 6. Admin paths -------------------------------------------------------------------------------

TEST_F(GroupProcessTest, AdminResetDeleteListAndUnknownGroups) {
  create_topic("adm", 3);
  constexpr int kPerPartition = 10;
  for (int p = 0; p < 3; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < kPerPartition; ++i) values.push_back("adm-" + std::to_string(p) + "-" + std::to_string(i));
    ASSERT_EQ(produce("adm", values, p), kPerPartition);
  }
  const std::string bs = bootstrap();
  Consumers cs;
  add(cs, "adm-c1").start(bs, "adm", "g-adm");
  std::map<std::string, int> got;
  ASSERT_TRUE(testing::wait_until([&] {
    got = printed(cs);
    return got.size() >= 3 * kPerPartition;
  }, 60s)) << dump_all(cs);
  GroupView v;
  ASSERT_TRUE(wait_stable("g-adm", 1, partitions_of("adm", 3), 30s, &v)) << v.run.dump();

  // While a member runs: refused, exit 1, NON_EMPTY_GROUP (text and JSON).
  {
    CliRun r = gannet_cli({"group", "reset-offsets", "g-adm", "--topic", "adm", "--to-earliest", "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, "NON_EMPTY_GROUP")) << r.dump();
    r = gannet_cli({"group", "reset-offsets", "g-adm", "--topic", "adm", "--to-offset", "5", "--bootstrap-server", bs,
                    "--output", "json"});
    EXPECT_EQ(r.code, 1) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << "not JSON" << r.dump();
    EXPECT_EQ(str(*j, "error_code"), "NON_EMPTY_GROUP") << r.dump();
    r = gannet_cli({"group", "delete", "g-adm", "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, "NON_EMPTY_GROUP")) << r.dump();
  }
  auto listed_state = [&](const std::string& group, CliRun* run) -> std::optional<std::string> {
    *run = gannet_cli({"group", "list", "--bootstrap-server", bs, "--output", "json"});
    if (run->code != 0) return std::nullopt;
    auto j = parse_json(run->out);
    if (!j) return std::nullopt;
    for (const Struct& g : objects(*j, "groups")) {
      if (str(g, "group") == group) return str(g, "state");
    }
    return std::nullopt;
  };
  CliRun run;
  EXPECT_EQ(listed_state("g-adm", &run).value_or("(not listed)"), "Stable") << run.dump();
  {
    CliRun r = gannet_cli({"group", "list", "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 0) << r.dump();
    bool row = false;
    for (const auto& l : complete_lines(r.out)) {
      std::istringstream in(l);
      std::string g, kind, state, type;
      in >> g >> kind >> state >> type;
      if (g == "g-adm") row = kind == "classic" && state == "Stable" && type == "consumer";
    }
    EXPECT_TRUE(row) << "group list should show g-adm classic Stable consumer" << r.dump();
  }
  // The refused reset changed nothing.
  ASSERT_TRUE(testing::wait_until([&] {
    auto d = describe_cli(bs, "g-adm", &run);
    if (!d || d->offsets.size() != 3) return false;
    return std::all_of(d->offsets.begin(), d->offsets.end(), [](const auto& o) { return o.second.committed == kPerPartition; });
  }, 20s)) << run.dump();

  // Issue 14.2: admin mistakes on the offsets topic are refused with Kafka's errors; with more
  // partitions every group would hash to another partition and its offsets would vanish.
  for (const auto& [args, code] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"topic", "add-partitions", "__consumer_offsets", "--partitions", "51"}, "INVALID_REQUEST"},
           {{"topic", "delete", "__consumer_offsets"}, "TOPIC_AUTHORIZATION_FAILED"},
           {{"topic", "alter-config", "__consumer_offsets", "--set", "cleanup.policy=delete"}, "INVALID_REQUEST"}}) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--bootstrap-server", bs});
    CliRun r = gannet_cli(a);
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, code)) << r.dump();
  }
  {
    auto d = describe_cli(bs, "g-adm", &run);
    ASSERT_TRUE(d) << "the group's offsets are gone" << run.dump();
    EXPECT_EQ(d->offsets.size(), 3u) << run.dump();
    for (const auto& [tp, o] : d->offsets) EXPECT_EQ(o.committed, kPerPartition) << tp << run.dump();
  }

  // Stopped: Empty; the reset works and the group re-reads from there.
  stop_all(cs);
  EXPECT_TRUE(testing::wait_until([&] { return listed_state("g-adm", &run).value_or("") == "Empty"; }, 20s)) << run.dump();
  {
    CliRun r = gannet_cli({"group", "reset-offsets", "g-adm", "--topic", "adm", "--to-offset", "6", "--bootstrap-server", bs,
                           "--output", "json"});
    ASSERT_EQ(r.code, 0) << r.dump();
    auto j = parse_json(r.out);
    ASSERT_TRUE(j) << r.dump();
    auto offs = objects(*j, "offsets");
    EXPECT_EQ(offs.size(), 3u) << r.dump();
    for (const Struct& o : offs) EXPECT_EQ(num(o, "offset"), 6) << r.dump();
  }
  {
    auto d = describe_cli(bs, "g-adm", &run);
    ASSERT_TRUE(d) << run.dump();
    EXPECT_EQ(d->state, "Empty") << run.dump();
    for (const auto& [tp, o] : d->offsets) {
      EXPECT_EQ(o.committed, 6) << tp << run.dump();
      EXPECT_EQ(o.lag, kPerPartition - 6) << tp << run.dump();
    }
  }
  add(cs, "adm-c2").start(bs, "adm", "g-adm");
  std::set<std::string> expected;
  for (int p = 0; p < 3; ++p) {
    for (int i = 6; i < kPerPartition; ++i) expected.insert("adm-" + std::to_string(p) + "-" + std::to_string(i));
  }
  ConsumerProcess& again = *cs.back();
  std::vector<std::string> reread;
  EXPECT_TRUE(testing::wait_until([&] {
    reread = again.records();
    return reread.size() >= expected.size();
  }, 60s)) << again.dump();
  std::this_thread::sleep_for(1s);  // anything beyond the expected shows now
  reread = again.records();
  EXPECT_EQ(std::set<std::string>(reread.begin(), reread.end()), expected) << again.dump();
  EXPECT_EQ(reread.size(), expected.size()) << again.dump();
  // --to-earliest and --to-latest on the stopped group.
  again.stop();
  EXPECT_TRUE(again.exited_cleanly()) << again.dump();
  for (const auto& [flag, want] : std::vector<std::pair<std::string, int64_t>>{{"--to-earliest", 0}, {"--to-latest", kPerPartition}}) {
    CliRun r = gannet_cli({"group", "reset-offsets", "g-adm", "--topic", "adm", flag, "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 0) << r.dump();
    auto d = describe_cli(bs, "g-adm", &run);
    ASSERT_TRUE(d) << run.dump();
    for (const auto& [tp, o] : d->offsets) EXPECT_EQ(o.committed, want) << flag << " " << tp << run.dump();
  }

  // Delete works on the stopped group; afterwards it is unknown.
  {
    CliRun r = gannet_cli({"group", "delete", "g-adm", "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 0) << r.dump();
    EXPECT_TRUE(contains(r.out, "deleted group g-adm")) << r.dump();
  }
  EXPECT_FALSE(listed_state("g-adm", &run)) << "a deleted group is still listed" << run.dump();
  for (const std::string& g : {std::string("g-adm"), std::string("g-never-existed")}) {
    CliRun r = gannet_cli({"group", "describe", g, "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, "GROUP_ID_NOT_FOUND")) << r.dump();
    r = gannet_cli({"group", "describe", g, "--bootstrap-server", bs, "--output", "json"});
    EXPECT_EQ(r.code, 1) << r.dump();
    auto j = parse_json(r.out);
    EXPECT_TRUE(j && str(*j, "error_code") == "GROUP_ID_NOT_FOUND") << r.dump();
    r = gannet_cli({"group", "delete", g, "--bootstrap-server", bs});
    EXPECT_EQ(r.code, 1) << r.dump();
    EXPECT_TRUE(contains(r.err, "GROUP_ID_NOT_FOUND")) << r.dump();
  }
}

// ---- 5. At-least-once while the coordinator crashes (last: it restarts brokers) ---------------------

TEST_F(GroupProcessTest, CoordinatorCrashLosesNoAcknowledgedRecord) {
  const char* env = std::getenv("GANNET_SEED");
  const uint64_t seed = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "coordinator crash test: seed " << seed << " (replay with GANNET_SEED=" << seed << ")" << std::endl;
  std::mt19937_64 rng(seed);

  create_topic("cc", 3, {{"min.insync.replicas", "2"}});
  const auto all = partitions_of("cc", 3);
  Consumers cs;
  for (int i = 1; i <= 3; ++i) add(cs, "cc-c" + std::to_string(i)).start(bootstrap(), "cc", "g-cc");
  GroupView v;
  ASSERT_TRUE(wait_stable("g-cc", 3, all, 60s, &v)) << v.run.dump() << dump_all(cs);

  // Producers: sequence-numbered values, acks=all.
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int64_t> failed{0}, sent{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> producers;
  const std::string bs = bootstrap();
  for (int t = 0; t < 2; ++t) {
    producers.emplace_back([&, t] {
      client::ProducerConfig cfg;
      cfg.bootstrap_servers = testing::split_addresses(bs);
      cfg.acks = -1;
      cfg.linger_ms = 2;
      cfg.request_timeout_ms = 5'000;
      cfg.delivery_timeout_ms = 60'000;
      client::Producer p(cfg);
      for (int64_t seq = 0; !stop.load(); ++seq) {
        client::ProducerRecord r;
        r.topic = "cc";
        r.key = "k" + std::to_string(t) + "-" + std::to_string(seq % 7);
        const std::string value = "p" + std::to_string(t) + "-" + std::to_string(seq);
        r.value = value;
        ++sent;
        p.send(std::move(r), [&, value](const client::RecordMetadata& m) {
          if (!m.ok()) {
            ++failed;
            return;
          }
          std::lock_guard<std::mutex> l(mu);
          acked.insert(value);
        });
        if (seq % 10 == 9) std::this_thread::sleep_for(10ms);  // ~1000 records/s per producer
      }
      p.flush();
    });
  }
  struct StopProducers {
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~StopProducers() {
      stop->store(true);
      for (auto& t : *threads) {
        if (t.joinable()) t.join();
      }
    }
  } stop_producers{&stop, &producers};

  // Nemesis, two or three rounds: SIGKILL the group's coordinator and, at the same moment, one
  // member, whose replacement joins while the coordinator moves; restart the broker. The killed
  // member's partitions then resume from offsets committed through the dead coordinator, so a
  // commit lost (or one ahead of what was printed) in the failover shows as a gap.
  const auto nemesis_start = Clock::now();
  int crashes = 0;
  std::vector<int64_t> coordinator_ms, recovery_ms;
  std::vector<size_t> live = {0, 1, 2};  // indexes into cs of the running members
  for (int round = 0; round < 3; ++round) {
    if (round == 2 && ms_since(nemesis_start) > 30'000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    const int coord = coordinator_of("g-cc");
    ASSERT_GT(coord, 0) << "no coordinator for g-cc";
    const size_t pick = static_cast<size_t>(rng() % live.size());
    ConsumerProcess& victim = *cs[live[pick]];
    std::cout << "nemesis: SIGKILL broker " << coord << " (the coordinator of g-cc) and member " << victim.name()
              << std::endl;
    const auto killed_at = Clock::now();
    c().kill(coord, SIGKILL);
    victim.crash();
    ++crashes;
    ConsumerProcess& replacement = add(cs, "cc-r" + std::to_string(round + 1));
    replacement.start(bs, "cc", "g-cc");
    live[pick] = cs.size() - 1;
    // A new coordinator answers for the group.
    const bool answered = testing::wait_until([&] { return describe_rpc("g-cc").has_value(); }, 30s, 50ms);
    coordinator_ms.push_back(ms_since(killed_at));
    ASSERT_TRUE(answered) << "no coordinator took over g-cc" << dump_all(cs);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 1500));
    c().start(coord);
    // Recovered: the group Stable with the two survivors and the replacement, every partition
    // assigned.
    std::set<std::string> want_members;
    for (size_t i : live) want_members.insert(cs[i]->name());
    std::optional<RpcView> rv;
    const bool back = testing::wait_until([&] {
      rv = describe_rpc("g-cc");
      if (!rv || rv->state != "Stable" || rv->assigned() != all) return false;
      std::set<std::string> members;
      for (const auto& [client, parts] : rv->by_client) members.insert(client);
      return members == want_members;
    }, 45s, 100ms);
    recovery_ms.push_back(ms_since(killed_at));
    ASSERT_TRUE(back) << "the group did not recover from the coordinator's crash" << dump_all(cs);
    std::cout << "nemesis: a new coordinator answered " << coordinator_ms.back() << " ms after the kill; group stable "
              << "with the replacement " << recovery_ms.back() << " ms after it (coordinator now " << coordinator_of("g-cc")
              << ")" << std::endl;
    ASSERT_TRUE(c().wait_unfenced({1, 2, 3}, 30s)) << "broker " << coord << " did not come back";
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  for (auto& t : producers) t.join();

  // Every acknowledged record is printed by some member.
  std::map<std::string, int> got;
  size_t missing = 0;
  const bool complete = testing::wait_until([&] {
    got = printed(cs);
    missing = 0;
    for (const auto& x : acked) missing += got.count(x) ? 0 : 1;
    return missing == 0;
  }, 60s, 200ms);
  for (size_t i : live) EXPECT_TRUE(cs[i]->alive()) << cs[i]->name() << " exited" << cs[i]->dump();
  size_t unacked_read = 0;
  for (const auto& [x, n] : got) unacked_read += acked.count(x) ? 0 : 1;
  const int64_t dups = total(got) - static_cast<int64_t>(got.size());
  std::string recoveries;
  for (size_t i = 0; i < recovery_ms.size(); ++i) {
    recoveries += (i ? ", " : "") + std::to_string(coordinator_ms[i]) + "/" + std::to_string(recovery_ms[i]) + " ms";
  }
  std::cout << "coordinator crash: " << crashes << " crash(es) (new coordinator / group stable after " << recoveries
            << "); sent "
            << sent.load() << ", acknowledged " << acked.size() << ", failed " << failed.load() << "; printed "
            << total(got) << " (" << got.size() << " distinct, " << dups << " duplicate(s), " << unacked_read
            << " unacknowledged but written); missing " << missing << " (seed " << seed << ")" << std::endl;
  EXPECT_TRUE(complete) << missing << " acknowledged record(s) never printed by any member (seed " << seed << ")"
                        << dump_all(cs);
  // The log itself: every record once, however often the producers retried through the crashes.
  {
    client::ConsumerConfig ccfg;
    ccfg.bootstrap_servers = testing::split_addresses(bs);
    ccfg.auto_offset_reset = "earliest";
    client::Consumer reader(ccfg);
    std::vector<client::TopicPartition> tps;
    for (int p = 0; p < 3; ++p) tps.push_back({"cc", p});
    reader.assign(tps);
    std::map<std::string, int> in_log;
    for (int round = 0; round < 200; ++round) {
      for (auto& r : reader.poll(500)) ++in_log[*r.value];
      bool done = true;
      for (const auto& tp : tps) {
        auto h = reader.high_watermark(tp);
        auto pos = reader.position(tp);
        if (!h || !pos || *pos < *h) done = false;
      }
      if (done) break;
    }
    size_t twice = 0;
    for (const auto& [v, n] : in_log) twice += n > 1 ? 1 : 0;
    size_t logged_acked = 0;
    for (const auto& x : acked) logged_acked += in_log.count(x);
    std::cout << "coordinator crash: the log holds " << in_log.size() << " distinct record(s), " << twice
              << " of them more than once" << std::endl;
    EXPECT_EQ(logged_acked, acked.size()) << "an acknowledged record is missing from the log (seed " << seed << ")";
    EXPECT_EQ(twice, 0u) << "an idempotent producer's retry was written twice (seed " << seed << ")";
  }
  EXPECT_GT(acked.size(), 1000u);
  EXPECT_GE(crashes, 2);
  Consumers running;
  for (size_t i : live) running.push_back(std::move(cs[i]));
  stop_all(running);
}

}  // namespace
}  // namespace gannet
