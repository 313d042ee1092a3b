// rebalance_bench: a consumer-group rebalance under the broker-assigned protocol (KIP-848) beside
// Kafka's classic protocol, in the same run, on a local cluster of three combined gannetd nodes.
//
//   bazel run -c opt //tests:rebalance_bench -- [--members 100] [--partitions 1000] [--session-ms 3000]
//                                               [--output json]
//
// For each protocol (classic: Gannet's C++ consumer, eager, sticky assignor; consumer: the broker
// assigns with "uniform"): `members` consumers in this process share one topic of `partitions`
// partitions (RF 1) while a producer writes to every partition. Then:
//  1. one more member joins: the time until every partition is owned again, exactly once, with
//     the newcomer owning its share; and the records the other members read meanwhile;
//  2. a member process (`gannet consume --group`) that holds a share is SIGKILLed: the time until
//     its partitions are owned again (bounded below by the session timeout, the same for both);
//     and the records the others read meanwhile.
// Each is also timed from the first change of any member's partitions (the rebalance itself, after
// the coordinator noticed), with the records the other members read in that phase: > 0 means the
// rest of the group kept consuming while partitions moved (no stop-the-world).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "client/producer.h"
#include "testing/bench_harness.h"
#include "testing/cluster_harness.h"
#include "testing/process_harness.h"

namespace gannet {
namespace {

using Clock = std::chrono::steady_clock;
using testing::secs_since;
using Parts = std::set<client::TopicPartition>;

// A consumer polling on its own thread; what it owns follows its listener (partition by partition
// under the consumer protocol, all at once under the eager classic one).
class Member : public client::RebalanceListener {
 public:
  Member(const std::string& bootstrap, const std::string& group, const std::string& topic, const std::string& protocol,
         int32_t session_ms, int n) {
    client::ConsumerConfig cfg;
    cfg.bootstrap_servers = testing::split_addresses(bootstrap);
    cfg.group_id = group;
    cfg.client_id = "member-" + std::to_string(n);
    cfg.group_protocol = protocol;
    cfg.partition_assignment_strategy = {"sticky"};
    cfg.session_timeout_ms = session_ms;
    cfg.heartbeat_interval_ms = session_ms / 3;
    cfg.auto_offset_reset = "latest";
    cfg.fetch_max_wait_ms = 100;
    consumer_ = std::make_unique<client::Consumer>(cfg);
    consumer_->subscribe(std::vector<std::string>{topic}, this);
    thread_ = std::thread([this] {
      while (!stop_) records_ += static_cast<int64_t>(consumer_->poll(100).size());
      consumer_->close();
    });
  }
  ~Member() {
    stop_ = true;
    thread_.join();
  }
  void on_revoked(const std::vector<client::TopicPartition>& parts) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& tp : parts) owned_.erase(tp);
  }
  void on_assigned(const std::vector<client::TopicPartition>& parts) override {
    std::lock_guard<std::mutex> l(mu_);
    owned_.insert(parts.begin(), parts.end());
  }
  Parts owned() {
    std::lock_guard<std::mutex> l(mu_);
    return owned_;
  }
  int64_t records() const { return records_.load(); }

 private:
  std::unique_ptr<client::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> records_{0};
  std::mutex mu_;
  Parts owned_;
  std::thread thread_;
};

using Members = std::vector<std::unique_ptr<Member>>;
std::atomic<int64_t>* g_produced = nullptr;

// Every member's partitions disjoint and together `want` partitions; each member in `must_own`
// (indexes) owns some.
bool settled(Members& ms, size_t want, const std::set<size_t>& must_own = {}) {
  Parts all;
  size_t total = 0;
  for (size_t i = 0; i < ms.size(); ++i) {
    auto o = ms[i]->owned();
    if (must_own.count(i) && o.empty()) return false;
    total += o.size();
    all.insert(o.begin(), o.end());
  }
  return all.size() == total && all.size() == want;
}

int64_t records_of(Members& ms, size_t first, size_t last) {
  int64_t n = 0;
  for (size_t i = first; i < last && i < ms.size(); ++i) n += ms[i]->records();
  return n;
}

struct Outcome {
  double initial_s = -1, join_s = -1, death_s = -1;
  int64_t join_records = -1, death_records = -1;
  // From the first change of any member's partitions until settled, and the others' records then.
  double join_phase_s = -1, death_phase_s = -1;
  int64_t join_phase_records = -1, death_phase_records = -1;
};

// Waits (bounded) until settled, noting when the first member's partitions changed from `before`
// and how many records members [0, n_old) had read by then.
struct Phase {
  bool done = false;
  Clock::time_point changed{};
  int64_t records_at_change = -1;
};
Phase watch(Members& ms, size_t n_old, const std::vector<Parts>& before, const std::function<bool()>& settled_now,
            double limit_s) {
  Phase ph;
  const auto start = Clock::now();
  while (secs_since(start) < limit_s) {
    if (ph.records_at_change < 0) {
      for (size_t i = 0; i < n_old && i < before.size(); ++i) {
        if (ms[i]->owned() != before[i]) {
          ph.changed = Clock::now();
          ph.records_at_change = records_of(ms, 0, n_old);
          break;
        }
      }
    }
    if (settled_now()) {
      ph.done = true;
      if (ph.records_at_change < 0) {
        ph.changed = Clock::now();
        ph.records_at_change = records_of(ms, 0, n_old);
      }
      return ph;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ph;
}

std::vector<Parts> owned_now(Members& ms) {
  std::vector<Parts> out;
  for (auto& m : ms) out.push_back(m->owned());
  return out;
}

Outcome measure(testing::Cluster& c, const std::string& protocol, const std::string& topic, int members_n,
                int partitions, int32_t session_ms) {
  Outcome out;
  const std::string b = c.bootstrap();
  const std::string group = "rebalance-" + protocol;
  const size_t want = static_cast<size_t>(partitions);
  Members ms;
  auto t0 = Clock::now();
  for (int i = 0; i < members_n; ++i) ms.push_back(std::make_unique<Member>(b, group, topic, protocol, session_ms, i));
  auto wait = [&](const std::function<bool()>& done, double limit_s) {
    const auto start = Clock::now();
    while (secs_since(start) < limit_s) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  };
  if (!wait([&] { return settled(ms, want); }, 120)) {
    std::fprintf(stderr, "  %s: %d members never owned every partition\n", protocol.c_str(), members_n);
    return out;
  }
  out.initial_s = secs_since(t0);
  std::fprintf(stderr, "  %s: %d members own all %d partitions after %.2f s\n", protocol.c_str(), members_n, partitions,
               out.initial_s);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  {
    const int64_t r0 = records_of(ms, 0, ms.size());
    const int64_t p0 = g_produced->load();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::fprintf(stderr, "  %s: steady state: the group read %lld records/s while %lld were produced\n", protocol.c_str(),
                 static_cast<long long>(records_of(ms, 0, ms.size()) - r0), static_cast<long long>(g_produced->load() - p0));
  }
  // 1. One joins.
  const int64_t before = records_of(ms, 0, ms.size());
  const size_t n_old = ms.size();
  const auto snapshot = owned_now(ms);
  t0 = Clock::now();
  ms.push_back(std::make_unique<Member>(b, group, topic, protocol, session_ms, members_n));
  Phase ph = watch(ms, n_old, snapshot, [&] { return settled(ms, want, {ms.size() - 1}); }, 60);
  if (ph.done) {
    out.join_s = secs_since(t0);
    out.join_records = records_of(ms, 0, n_old) - before;
    out.join_phase_s = secs_since(ph.changed);
    out.join_phase_records = records_of(ms, 0, n_old) - ph.records_at_change;
    std::fprintf(stderr, "  %s: a member joined; every partition owned again after %.0f ms (%.0f ms from the first move); "
                 "the others read %lld records meanwhile (%lld during the moves)\n",
                 protocol.c_str(), out.join_s * 1000, out.join_phase_s * 1000, static_cast<long long>(out.join_records),
                 static_cast<long long>(out.join_phase_records));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // 2. A member process takes a share, then is SIGKILLed (no leave: its session must pass).
  testing::Process proc;
  proc.start({testing::runfile("tools/gannet"), "consume", topic, "--group", group, "--bootstrap-server", b,
              "--group-protocol", protocol, "--assignment-strategy", "sticky", "--session-timeout-ms",
              std::to_string(session_ms), "--client-id", "victim"},
             testing::test_dir("rebalance_bench") + "/" + protocol + "-victim.log");
  auto in_process_share = [&] {
    Parts all;
    size_t total = 0;
    for (auto& m : ms) {
      auto o = m->owned();
      total += o.size();
      all.insert(o.begin(), o.end());
    }
    return all.size() == total && !all.empty() && all.size() < want && all.size() >= want - want / ms.size() - 1;
  };
  if (wait(in_process_share, 60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const int64_t before_death = records_of(ms, 0, ms.size());
    const auto snap = owned_now(ms);
    t0 = Clock::now();
    proc.kill(SIGKILL);
    Phase dp = watch(ms, ms.size(), snap, [&] { return settled(ms, want); }, 60);
    if (dp.done) {
      out.death_s = secs_since(t0);
      out.death_records = records_of(ms, 0, ms.size()) - before_death;
      out.death_phase_s = secs_since(dp.changed);
      out.death_phase_records = records_of(ms, 0, ms.size()) - dp.records_at_change;
      std::fprintf(stderr, "  %s: a member SIGKILLed; every partition owned again after %.0f ms (%.0f ms from the first move); "
                   "the others read %lld records meanwhile (%lld during the moves)\n",
                   protocol.c_str(), out.death_s * 1000, out.death_phase_s * 1000,
                   static_cast<long long>(out.death_records), static_cast<long long>(out.death_phase_records));
    }
  } else {
    std::fprintf(stderr, "  %s: the member process never got a share; death not measured\n", protocol.c_str());
  }
  ms.clear();
  return out;
}

int run(int argc, char** argv) {
  int members_n = 100, partitions = 1000;
  int32_t session_ms = 3000;
  bool json = false;
  std::string protocols = "classic,consumer";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--members") members_n = std::stoi(next());
    else if (a == "--partitions") partitions = std::stoi(next());
    else if (a == "--session-ms") session_ms = std::stoi(next());
    else if (a == "--output") json = next() == "json";
    else if (a == "--protocols") protocols = next();
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  testing::Cluster c(3, "group.initial.rebalance.delay.ms=0\ngroup.min.session.timeout.ms=500\n"
                        "group.consumer.session.timeout.ms=" + std::to_string(session_ms) +
                        "\ngroup.consumer.heartbeat.interval.ms=" + std::to_string(std::max(100, session_ms / 6)) +
                        "\ngroup.consumer.max.size=10000\n");
  c.start_all();
  if (!c.wait_unfenced({1, 2, 3}, std::chrono::seconds(60))) {
    std::fprintf(stderr, "the cluster did not come up\n");
    return 1;
  }
  const std::string topic = "rebalance";
  if (c.create_error(topic, partitions, 1) != gannet::v1::NONE) {
    std::fprintf(stderr, "cannot create the topic\n");
    return 1;
  }
  // Every partition led before the producer starts (it would fail records of unknown partitions).
  const auto led_by = Clock::now();
  while (secs_since(led_by) < 120) {
    auto md = c.metadata({topic});
    int led = 0;
    if (md.topics_size() == 1) {
      for (const auto& p : md.topics(0).partitions()) led += p.leader() >= 0 ? 1 : 0;
    }
    if (led == partitions) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "rebalance_bench: %d members, %d partitions (RF 1), session %d ms, a producer writing to every partition\n",
               members_n, partitions, session_ms);
  // A steady producer over every partition (about 20k records/s).
  std::atomic<bool> producing{true};
  static std::atomic<int64_t> produced{0};
  g_produced = &produced;
  std::thread producer([&] {
    client::ProducerConfig pc;
    pc.bootstrap_servers = testing::split_addresses(c.bootstrap());
    pc.acks = 1;
    pc.linger_ms = 5;
    client::Producer p(pc);
    for (int64_t i = 0; producing; ++i) {
      client::ProducerRecord r;
      r.topic = topic;
      r.partition = static_cast<int32_t>(i % partitions);
      r.value = "v";
      p.send(std::move(r), [&](const client::RecordMetadata& m) {
        if (m.ok()) ++produced;
      });
      if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    p.flush();
  });
  // The producer is up to speed (every partition's leader found) before anything is measured.
  const auto warm = Clock::now();
  while (produced.load() < 20 * partitions && secs_since(warm) < 60) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::fprintf(stderr, "  the producer acknowledged %lld records in %.1f s of warm-up\n", static_cast<long long>(produced.load()),
               secs_since(warm));
  Outcome classic, consumer;
  if (protocols.find("classic") != std::string::npos) classic = measure(c, "classic", topic, members_n, partitions, session_ms);
  if (protocols.find("consumer") != std::string::npos) consumer = measure(c, "consumer", topic, members_n, partitions, session_ms);
  producing = false;
  producer.join();
  if (json) {
    testing::print_figures_json({
        {"classic: partitions owned again after a join", classic.join_s * 1000, "ms"},
        {"classic: records the others read during the join", static_cast<double>(classic.join_records), "records"},
        {"classic: partitions owned again after a SIGKILL", classic.death_s * 1000, "ms"},
        {"classic: records the others read meanwhile", static_cast<double>(classic.death_records), "records"},
        {"consumer: partitions owned again after a join", consumer.join_s * 1000, "ms"},
        {"consumer: records the others read during the join", static_cast<double>(consumer.join_records), "records"},
        {"consumer: partitions owned again after a SIGKILL", consumer.death_s * 1000, "ms"},
        {"consumer: records the others read meanwhile", static_cast<double>(consumer.death_records), "records"},
        {"classic: join, from the first move until settled", classic.join_phase_s * 1000, "ms"},
        {"classic: records the others read during those moves", static_cast<double>(classic.join_phase_records), "records"},
        {"classic: SIGKILL, from the first move until settled", classic.death_phase_s * 1000, "ms"},
        {"classic: records the others read during those moves (SIGKILL)", static_cast<double>(classic.death_phase_records), "records"},
        {"consumer: join, from the first move until settled", consumer.join_phase_s * 1000, "ms"},
        {"consumer: records the others read during those moves", static_cast<double>(consumer.join_phase_records), "records"},
        {"consumer: SIGKILL, from the first move until settled", consumer.death_phase_s * 1000, "ms"},
        {"consumer: records the others read during those moves (SIGKILL)", static_cast<double>(consumer.death_phase_records), "records"},
        {"session timeout", static_cast<double>(session_ms), "ms"},
    });
    return 0;
  }
  std::printf("| %d members, %d partitions | classic (eager, sticky) | consumer (KIP-848, uniform) |\n|---|---|---|\n",
              members_n, partitions);
  std::printf("| a member joins: every partition owned again | %.0f ms | %.0f ms |\n", classic.join_s * 1000,
              consumer.join_s * 1000);
  std::printf("| records the others read meanwhile | %lld | %lld |\n", static_cast<long long>(classic.join_records),
              static_cast<long long>(consumer.join_records));
  std::printf("| a member SIGKILLed: owned again (session %d ms) | %.0f ms | %.0f ms |\n", session_ms,
              classic.death_s * 1000, consumer.death_s * 1000);
  std::printf("| records the others read meanwhile | %lld | %lld |\n", static_cast<long long>(classic.death_records),
              static_cast<long long>(consumer.death_records));
  std::printf("| join: from the first move until settled | %.0f ms | %.0f ms |\n", classic.join_phase_s * 1000,
              consumer.join_phase_s * 1000);
  std::printf("| records the others read during those moves | %lld | %lld |\n",
              static_cast<long long>(classic.join_phase_records), static_cast<long long>(consumer.join_phase_records));
  std::printf("| SIGKILL: from the first move until settled | %.0f ms | %.0f ms |\n", classic.death_phase_s * 1000,
              consumer.death_phase_s * 1000);
  std::printf("| records the others read during those moves | %lld | %lld |\n",
              static_cast<long long>(classic.death_phase_records), static_cast<long long>(consumer.death_phase_records));
  return 0;
}

}  // namespace
}  // namespace gannet

int main(int argc, char** argv) { return gannet::run(argc, argv); }
