#include "tools/data_commands.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/consumer.h"
#include "client/producer.h"

namespace gannet::tools {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int usage(const std::string& message) {
  std::fprintf(stderr, "gannet: %s\n", message.c_str());
  return kExitUsage;
}

// SIGINT / SIGTERM: `consume` stops at its next poll, commits and leaves its group cleanly.
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::string> bootstrap(const Args& a) {
  std::vector<std::string> out;
  if (auto s = a.last("bootstrap-server")) {
    for (const auto& x : split(*s, ',')) {
      if (!x.empty()) out.push_back(x);
    }
  }
  return out;
}

// Common producer flags: --acks (all|-1|1|0), --batch-size, --linger-ms, --compression.
std::optional<std::string> producer_config(const Args& a, client::ProducerConfig* c) {
  c->bootstrap_servers = bootstrap(a);
  if (c->bootstrap_servers.empty()) return "--bootstrap-server is required";
  if (auto acks = a.last("acks")) {
    if (*acks == "all" || *acks == "-1") {
      c->acks = -1;
    } else if (*acks == "1" || *acks == "0") {
      c->acks = std::stoi(*acks);
    } else {
      return "--acks " + *acks + ": expected all, -1, 1 or 0";
    }
  }
  if (auto v = a.last("batch-size")) {
    auto n = parse_int32(*v);
    if (!n || *n <= 0) return "--batch-size " + *v + ": expected a positive number";
    c->batch_size = static_cast<size_t>(*n);
  }
  if (auto v = a.last("linger-ms")) {
    auto n = parse_int32(*v);
    if (!n || *n < 0) return "--linger-ms " + *v + ": expected a number >= 0";
    c->linger_ms = *n;
  }
  if (auto v = a.last("compression")) {
    auto comp = storage::parse_compression(*v);
    if (!comp) return "--compression " + *v + ": expected none, gzip, snappy, lz4 or zstd";
    c->compression = *comp;
  }
  if (auto v = a.last("buffer-memory")) {
    auto n = parse_int32(*v);
    if (!n || *n <= 0) return "--buffer-memory " + *v + ": expected a positive number";
    c->buffer_memory = static_cast<size_t>(*n);
  }
  return std::nullopt;
}

std::string code_name(gannet::v1::ErrorCode e) {
  const std::string& n = gannet::v1::ErrorCode_Name(e);
  return n.empty() ? "ERROR_" + std::to_string(static_cast<int>(e)) : n;
}

}  // namespace

int produce_command(const Args& a) {
  if (a.positional.size() < 2) return usage("produce: a topic is required");
  const std::string topic = a.positional[1];
  client::ProducerConfig cfg;
  if (auto e = producer_config(a, &cfg)) return usage(*e);
  std::optional<int32_t> partition;
  if (auto p = a.last("partition")) {
    partition = parse_int32(*p);
    if (!partition || *partition < 0) return usage("--partition " + *p + ": expected a number >= 0");
  }
  const std::string sep = a.last("key-separator").value_or("");
  client::Producer producer(cfg);
  std::atomic<int64_t> ok{0}, failed{0};
  std::mutex err_mu;
  std::string first_error;
  std::string line;
  while (std::getline(std::cin, line)) {
    client::ProducerRecord r;
    r.topic = topic;
    r.partition = partition;
    if (!sep.empty()) {
      auto at = line.find(sep);
      if (at != std::string::npos) {
        r.key = line.substr(0, at);
        line = line.substr(at + sep.size());
      }
    }
    r.value = line;
    producer.send(std::move(r), [&](const client::RecordMetadata& m) {
      if (m.ok()) {
        ++ok;
      } else {
        ++failed;
        std::lock_guard<std::mutex> l(err_mu);
        if (first_error.empty()) first_error = m.topic + ": " + code_name(m.error) + ": " + m.message;
      }
    });
  }
  producer.flush();
  producer.close();
  if (failed > 0) {
    std::fprintf(stderr, "gannet: %lld record(s) failed; first: %s\n", static_cast<long long>(failed.load()),
                 first_error.c_str());
    return kExitError;
  }
  std::fprintf(stderr, "produced %lld record(s) to %s\n", static_cast<long long>(ok.load()), topic.c_str());
  return 0;
}

int consume_command(const Args& a) {
  if (a.positional.size() < 2) return usage("consume: a topic is required");
  const std::string topic = a.positional[1];
  client::ConsumerConfig cfg;
  cfg.bootstrap_servers = bootstrap(a);
  if (cfg.bootstrap_servers.empty()) return usage("--bootstrap-server is required");
  cfg.auto_offset_reset = a.has("from-beginning") ? "earliest" : "latest";
  int64_t max_messages = -1;
  if (auto m = a.last("max-messages")) {
    auto n = parse_int32(*m);
    if (!n || *n < 0) return usage("--max-messages " + *m + ": expected a number >= 0");
    max_messages = *n;
  }
  int64_t idle_ms = -1;  // --timeout-ms: stop after this long without records
  if (auto t = a.last("timeout-ms")) {
    auto n = parse_int32(*t);
    if (!n || *n < 0) return usage("--timeout-ms " + *t + ": expected a number >= 0");
    idle_ms = *n;
  }
  const bool json = a.last("output").value_or("text") == "json";
  const bool print_key = a.has("print-key"), print_ts = a.has("print-timestamp");
  std::string group;
  if (auto g = a.last("group")) group = *g;
  cfg.group_id = group;
  if (auto v = a.last("session-timeout-ms")) {
    auto n = parse_int32(*v);
    if (!n || *n <= 0) return usage("--session-timeout-ms " + *v + ": expected a positive number");
    cfg.session_timeout_ms = *n;
    cfg.heartbeat_interval_ms = std::max(100, *n / 3);
  }
  if (auto v = a.last("assignment-strategy")) {
    cfg.partition_assignment_strategy = split(*v, ',');
    for (const auto& s : cfg.partition_assignment_strategy) {
      if (s != "range" && s != "roundrobin" && s != "sticky") {
        return usage("--assignment-strategy " + s + ": expected range, roundrobin or sticky");
      }
    }
  }
  if (auto v = a.last("group-protocol")) {
    if (*v != "classic" && *v != "consumer") return usage("--group-protocol " + *v + ": expected classic or consumer");
    cfg.group_protocol = *v;
  }
  if (auto v = a.last("client-id")) cfg.client_id = *v;
  // --commit auto (default: enable.auto.commit) or sync: commit what was printed after each
  // batch, before the next poll (at-least-once for whoever reads our output).
  const std::string commit_mode = a.last("commit").value_or("auto");
  if (commit_mode != "auto" && commit_mode != "sync") return usage("--commit " + commit_mode + ": expected auto or sync");
  // Only what was printed is committed (never a position past records left unprinted by
  // --max-messages): the consumer's own auto commit is off and we commit these ourselves.
  cfg.enable_auto_commit = false;
  std::map<client::TopicPartition, client::OffsetAndMetadata> printed;
  client::Consumer consumer(cfg);
  // Partitions taken away in a rebalance: commit what was printed of them first, so their next
  // owner starts right after.
  struct CommitOnRevoke : client::RebalanceListener {
    client::Consumer* c = nullptr;
    std::map<client::TopicPartition, client::OffsetAndMetadata>* printed = nullptr;
    void on_revoked(const std::vector<client::TopicPartition>& parts) override {
      std::map<client::TopicPartition, client::OffsetAndMetadata> mine;
      for (const auto& tp : parts) {
        if (auto it = printed->find(tp); it != printed->end()) mine.insert(*it);
      }
      if (!mine.empty()) c->commit_sync(mine);
      for (const auto& tp : parts) printed->erase(tp);
    }
    void on_assigned(const std::vector<client::TopicPartition>& parts) override {
      std::string list;
      for (const auto& tp : parts) list += (list.empty() ? "" : ",") + tp.topic + "-" + std::to_string(tp.partition);
      std::fprintf(stderr, "assigned: %s\n", list.empty() ? "(none)" : list.c_str());
    }
  } listener;
  listener.c = &consumer;
  listener.printed = &printed;
  // --commit auto commits every auto.commit.interval.ms (default 5 s, as Kafka's consumer), also
  // while no records arrive: a member that read everything and then idles has it committed on
  // schedule, not only at exit.
  int32_t commit_interval_ms = 5'000;
  if (auto v = a.last("auto-commit-interval-ms")) {
    auto n = parse_int32(*v);
    if (!n || *n <= 0) return usage("--auto-commit-interval-ms " + *v + ": expected a positive number");
    commit_interval_ms = *n;
  }
  auto next_commit = Clock::now() + std::chrono::milliseconds(commit_interval_ms);
  bool uncommitted = false;  // printed holds positions not committed yet
  // Commits what was printed when due (`now`: --commit sync after each batch).
  auto maybe_commit = [&](bool now) {
    if (group.empty() || !uncommitted || (!now && Clock::now() < next_commit)) return;
    next_commit = Clock::now() + std::chrono::milliseconds(commit_interval_ms);
    const auto e = consumer.commit_sync(printed);
    if (e == gannet::v1::NONE) {
      uncommitted = false;
    } else {
      std::fprintf(stderr, "gannet: commit: %s (will retry)\n", code_name(e).c_str());
    }
  };
  std::vector<client::TopicPartition> tps;
  if (!group.empty() && !a.has("partition")) {
    // Group membership: the group's coordinator hands out the partitions.
    if (a.has("offset")) return usage("--offset needs --partition");
    consumer.subscribe(split(topic, ','), &listener);
  } else {
    // Which partitions: one, or all of the topic.
    client::MetadataCache md(cfg.bootstrap_servers);
    const int32_t n = md.partition_count(topic);
    if (n <= 0) {
      std::fprintf(stderr, "gannet: %s: UNKNOWN_TOPIC_OR_PARTITION: unknown topic\n", topic.c_str());
      return kExitError;
    }
    if (auto p = a.last("partition")) {
      auto v = parse_int32(*p);
      if (!v || *v < 0 || *v >= n) return usage("--partition " + *p + ": the topic has " + std::to_string(n) + " partitions");
      tps.push_back({topic, *v});
    } else {
      for (int32_t i = 0; i < n; ++i) tps.push_back({topic, i});
    }
    consumer.assign(tps);
    if (auto o = a.last("offset")) {
      auto v = parse_int32(*o);
      if (!v || *v < 0 || tps.size() != 1) return usage("--offset needs --partition and a number >= 0");
      consumer.seek(tps[0], *v);
    }
  }
  int64_t count = 0;
  auto last = Clock::now();
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  while ((max_messages < 0 || count < max_messages) && !g_stop.load()) {
    gannet::v1::ErrorCode err;
    auto records = consumer.poll(std::min(500, commit_interval_ms), &err);
    if (err != gannet::v1::NONE) {
      std::fprintf(stderr, "gannet: %s: %s\n", topic.c_str(), code_name(err).c_str());
      return kExitError;
    }
    if (records.empty()) {
      maybe_commit(false);
      if (idle_ms >= 0 && secs_since(last) * 1000 >= idle_ms) break;
      continue;
    }
    last = Clock::now();
    for (const auto& r : records) {
      if (max_messages >= 0 && count >= max_messages) break;
      ++count;
      printed[{r.topic, r.partition}] = client::OffsetAndMetadata{r.offset + 1, ""};
      uncommitted = true;
      if (json) {
        Json j;
        j.begin_object().field("topic", r.topic).field("partition", r.partition).field("offset", r.offset);
        j.field("timestamp", r.timestamp);
        if (r.key) j.field("key", *r.key);
        if (r.value) j.field("value", *r.value);
        j.end_object().print();
        continue;
      }
      std::string out;
      if (print_ts) out += "CreateTime:" + std::to_string(r.timestamp) + "\t";
      if (print_key) out += (r.key ? *r.key : "null") + "\t";
      out += r.value ? *r.value : "null";
      std::printf("%s\n", out.c_str());
    }
    std::fflush(stdout);
    maybe_commit(commit_mode == "sync");
  }
  if (!group.empty() && !printed.empty()) consumer.commit_sync(printed);
  consumer.close();
  std::fprintf(stderr, "consumed %lld record(s)\n", static_cast<long long>(count));
  return 0;
}

namespace {

struct Latencies {
  std::vector<int64_t> us;
  double pct(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return static_cast<double>(us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))]);
  }
};

}  // namespace

int perf_produce_command(const Args& a) {
  if (a.positional.size() < 3) return usage("perf produce: a topic is required");
  const std::string topic = a.positional[2];
  client::ProducerConfig cfg;
  if (auto e = producer_config(a, &cfg)) return usage(*e);
  int64_t num = 1'000'000, size = 100, throughput = -1;
  if (auto v = a.last("num-records")) num = std::stoll(*v);
  if (auto v = a.last("record-size")) size = std::stoll(*v);
  if (auto v = a.last("throughput")) throughput = std::stoll(*v);
  if (num <= 0 || size <= 0) return usage("--num-records and --record-size must be positive");
  const bool json = a.last("output").value_or("text") == "json";
  client::Producer producer(cfg);
  const std::string payload(static_cast<size_t>(size), 'x');
  std::mutex lat_mu;
  Latencies lat;
  lat.us.reserve(static_cast<size_t>(num));
  std::atomic<int64_t> acked{0}, failed{0};
  std::string first_error;  // with lat_mu: the first failure's code and message
  gannet::v1::ErrorCode first_code = gannet::v1::NONE;
  const auto start = Clock::now();
  auto last_report = start;
  int64_t last_acked = 0;
  bool hopeless = false;
  for (int64_t i = 0; i < num; ++i) {
    if (failed.load() > 0 && acked.load() == 0) {
      // Nothing acknowledged and an error no retry can fix (no such topic): stop with it rather
      // than send every record into the same answer.
      std::lock_guard<std::mutex> l(lat_mu);
      hopeless = first_code == gannet::v1::UNKNOWN_TOPIC_OR_PARTITION ||
                 first_code == gannet::v1::INVALID_TOPIC_EXCEPTION;
      if (hopeless) break;
    }
    if (throughput > 0) {
      // Cap the send rate: sleep when ahead of schedule.
      const double due = static_cast<double>(i) / static_cast<double>(throughput);
      const double ahead = due - secs_since(start);
      if (ahead > 0.001) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
    }
    const auto sent = Clock::now();
    client::ProducerRecord r;
    r.topic = topic;
    r.value = payload;
    producer.send(std::move(r), [&, sent](const client::RecordMetadata& m) {
      const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count();
      std::lock_guard<std::mutex> l(lat_mu);
      if (m.ok()) {
        ++acked;
      } else {
        if (failed++ == 0) {
          first_code = m.error;
          first_error = gannet::v1::ErrorCode_Name(m.error) + ": " + m.message;
        }
      }
      lat.us.push_back(us);
    });
    if (!json && secs_since(last_report) >= 1.0) {  // progress; quiet for scripts (--output json)
      const int64_t now_acked = acked.load();
      std::fprintf(stderr, "  %lld sent, %lld acknowledged, %.0f records/s\n", static_cast<long long>(i + 1),
                   static_cast<long long>(now_acked), (now_acked - last_acked) / secs_since(last_report));
      last_report = Clock::now();
      last_acked = now_acked;
    }
  }
  producer.flush();
  const double secs = secs_since(start);
  producer.close();  // no callback runs after this
  if (hopeless) {
    std::fprintf(stderr, "gannet: perf produce: %s\n", first_error.c_str());
    return kExitError;
  }
  const double rps = static_cast<double>(num) / secs;
  const double mbps = rps * static_cast<double>(size) / 1e6;
  double avg = 0;
  for (int64_t v : lat.us) avg += static_cast<double>(v);
  avg /= std::max<size_t>(1, lat.us.size());
  const double p50 = lat.pct(0.5), p99 = lat.pct(0.99), p999 = lat.pct(0.999), max = lat.pct(1.0);
  if (json) {
    Json j;
    j.begin_object().field("records", num).field("record_size", size).field("failed", failed.load());
    j.key("seconds").number(static_cast<int64_t>(secs * 1000) / 1000);
    j.field("records_per_sec", static_cast<int64_t>(rps)).field("mb_per_sec_x1000", static_cast<int64_t>(mbps * 1000));
    j.field("latency_avg_us", static_cast<int64_t>(avg)).field("latency_p50_us", static_cast<int64_t>(p50));
    j.field("latency_p99_us", static_cast<int64_t>(p99)).field("latency_p999_us", static_cast<int64_t>(p999));
    j.field("latency_max_us", static_cast<int64_t>(max)).end_object().print();
  } else {
    std::printf("%lld records sent, %.0f records/s (%.2f MB/s), %lld failed; latency avg %.0f us, p50 %.0f us, "
                "p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
                static_cast<long long>(num), rps, mbps, static_cast<long long>(failed.load()), avg, p50, p99, p999, max);
  }
  return failed > 0 ? kExitError : 0;
}

int perf_consume_command(const Args& a) {
  if (a.positional.size() < 3) return usage("perf consume: a topic is required");
  const std::string topic = a.positional[2];
  client::ConsumerConfig cfg;
  cfg.bootstrap_servers = bootstrap(a);
  if (cfg.bootstrap_servers.empty()) return usage("--bootstrap-server is required");
  cfg.auto_offset_reset = "earliest";
  cfg.max_partition_fetch_bytes = 8 << 20;
  int64_t num = 1'000'000;
  if (auto v = a.last("num-records")) num = std::stoll(*v);
  const bool json = a.last("output").value_or("text") == "json";
  client::Consumer consumer(cfg);
  client::MetadataCache md(cfg.bootstrap_servers);
  const int32_t n = md.partition_count(topic);
  if (n <= 0) {
    std::fprintf(stderr, "gannet: %s: UNKNOWN_TOPIC_OR_PARTITION\n", topic.c_str());
    return kExitError;
  }
  std::vector<client::TopicPartition> tps;
  for (int32_t i = 0; i < n; ++i) tps.push_back({topic, i});
  consumer.assign(tps);
  int64_t count = 0;
  const auto start = Clock::now();
  auto last_report = start;
  auto last_data = start;
  while (count < num) {
    auto records = consumer.poll(1000);
    if (records.empty()) {
      if (secs_since(last_data) > 10) break;  // nothing more is coming
      continue;
    }
    last_data = Clock::now();
    count += static_cast<int64_t>(records.size());
    if (!json && secs_since(last_report) >= 1.0) {  // progress; quiet for scripts (--output json)
      std::fprintf(stderr, "  %lld records consumed\n", static_cast<long long>(count));
      last_report = Clock::now();
    }
  }
  const double secs = secs_since(start);
  const double rps = static_cast<double>(count) / secs;
  const double mbps = static_cast<double>(consumer.bytes_fetched()) / secs / 1e6;
  if (json) {
    Json j;
    j.begin_object().field("records", count).field("records_per_sec", static_cast<int64_t>(rps));
    j.field("mb_per_sec_x1000", static_cast<int64_t>(mbps * 1000)).end_object().print();
  } else {
    std::printf("%lld records consumed in %.2f s: %.0f records/s, %.2f MB/s (batches as fetched)\n",
                static_cast<long long>(count), secs, rps, mbps);
  }
  return count < num ? kExitError : 0;
}

}  // namespace gannet::tools
