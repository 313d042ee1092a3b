// BrokerServer::render_metrics: what the `metrics.http.listener` serves (broker/metrics_http.h), in
// Prometheus' text exposition format (names and units after Prometheus' conventions). Read from
// the broker's state without stopping it: each partition's log under partitions_mu_ (briefly),
// the metadata image, the group coordinator's count, and /proc for the process.
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "broker/broker_server.h"
#include "broker/group_coordinator.h"
#include "broker/kafka/listener.h"

namespace gannet::broker {

namespace {

// One metric family: its HELP and TYPE lines, then its samples.
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)), type_(std::move(type)), help_(std::move(help)) {}
  void add(const std::string& labels, double value) {
    std::ostringstream s;
    s.precision(17);
    s << value;
    samples_ += name_ + (labels.empty() ? "" : "{" + labels + "}") + " " + s.str() + "\n";
  }
  std::string text() const { return "# HELP " + name_ + " " + help_ + "\n# TYPE " + name_ + " " + type_ + "\n" + samples_; }

 private:
  std::string name_, type_, help_, samples_;
};

std::string label(const std::string& k, const std::string& v) {
  std::string escaped;
  for (char c : v) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return k + "=\"" + escaped + "\"";
}

// A field of /proc/self/status ("Threads", "VmRSS"), as a number (kB for VmRSS), -1 if absent.
double proc_status(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(field + ":", 0) == 0) return std::stod(l.substr(field.size() + 1));
  }
  return -1;
}

double open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  double n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own descriptor
}

}  // namespace

BrokerServer::TopicCounters* BrokerServer::topic_counters(const std::string& topic) {
  std::lock_guard<std::mutex> l(counters_mu_);
  auto it = topic_counters_.find(topic);
  if (it != topic_counters_.end()) return it->second.get();
  const std::string key = topic_counters_.size() < kMaxTopicSeries ? topic : "other";
  auto& slot = topic_counters_[key];
  if (!slot) slot = std::make_unique<TopicCounters>();
  return slot.get();
}

void BrokerServer::count_topic_out(const std::string& topic, uint64_t bytes) {
  topic_counters(topic)->bytes_out.fetch_add(bytes, std::memory_order_relaxed);
}

void BrokerServer::count_topic_in(const std::string& topic, uint64_t bytes, uint64_t records) {
  TopicCounters* c = topic_counters(topic);
  c->bytes_in.fetch_add(bytes, std::memory_order_relaxed);
  c->records_in.fetch_add(records, std::memory_order_relaxed);
}

std::vector<BrokerServer::GroupOffset> BrokerServer::group_offsets(size_t limit) {
  std::vector<GroupOffset> out;
  if (!groups_) return out;
  std::map<std::pair<std::string, int32_t>, int64_t> hws;
  {
    std::lock_guard<std::mutex> l(partitions_mu_);
    for (const auto& [tp, part] : partitions_) hws[{tp.topic, tp.partition}] = part->high_watermark();
  }
  for (const auto& c : groups_->committed_offsets(limit)) {
    auto it = hws.find({c.topic, c.partition});
    out.push_back({c.group, c.topic, c.partition, c.offset, it == hws.end() ? -1 : it->second});
  }
  return out;
}

void BrokerServer::count_error(const char* api, ErrorCode code) {
  std::lock_guard<std::mutex> l(counters_mu_);
  ++error_counts_[{api, static_cast<int>(code)}];
}

std::string BrokerServer::render_metrics() {
  const std::string node = label("node_id", std::to_string(options_.node_id));
  Family info("gannet_broker_info", "gauge", "This broker: its node id and cluster id (value 1).");
  info.add(node + "," + label("cluster_id", options_.cluster_id), 1);

  Family end("gannet_partition_log_end_offset", "gauge", "The next offset to be written in this replica's log.");
  Family start("gannet_partition_log_start_offset", "gauge", "The first offset still in this replica's log.");
  Family hw("gannet_partition_high_watermark", "gauge", "The replica's high watermark: consumers read below it.");
  Family size("gannet_partition_log_size_bytes", "gauge", "Bytes of this replica's log segments.");
  Family segments("gannet_partition_log_segments", "gauge", "Segment files of this replica's log.");
  Family leader("gannet_partition_leader", "gauge", "1 if this broker leads the partition, else 0.");
  int64_t led = 0, hosted = 0, produce_waiting = 0;
  {
    std::lock_guard<std::mutex> l(partitions_mu_);
    for (const auto& [tp, part] : partitions_) {
      const std::string labels = label("topic", tp.topic) + "," + label("partition", std::to_string(tp.partition));
      const auto log = part->log();
      end.add(labels, static_cast<double>(log->log_end_offset()));
      start.add(labels, static_cast<double>(log->log_start_offset()));
      hw.add(labels, static_cast<double>(part->high_watermark()));
      size.add(labels, static_cast<double>(log->size_bytes()));
      segments.add(labels, static_cast<double>(log->segment_count()));
      const bool leads = part->is_leader();
      leader.add(labels, leads ? 1 : 0);
      led += leads ? 1 : 0;
      ++hosted;
      produce_waiting += static_cast<int64_t>(part->replication_waiters());
    }
  }
  // From the metadata image: the partitions this broker leads whose ISR is short.
  int64_t under_replicated = 0, under_min_isr = 0, offline = 0;
  const auto image = publisher_->image();
  for (const auto& [id, t] : image->topics()) {
    int32_t min_isr = options_.min_insync_replicas;
    const auto& configs = image->configs({metadata::v1::ConfigRecord::TOPIC, t->name});
    if (auto it = configs.find("min.insync.replicas"); it != configs.end()) {
      try {
        min_isr = std::stoi(it->second);
      } catch (...) {
      }
    }
    for (const auto& [p, st] : t->partitions) {
      if (st.leader < 0) ++offline;
      if (st.leader != options_.node_id) continue;
      if (st.isr.size() < st.replicas.size()) ++under_replicated;
      if (static_cast<int32_t>(st.isr.size()) < min_isr) ++under_min_isr;
    }
  }
  Family led_f("gannet_partitions_led", "gauge", "Partitions this broker leads.");
  led_f.add(node, static_cast<double>(led));
  Family hosted_f("gannet_partitions_hosted", "gauge", "Partition replicas this broker holds.");
  hosted_f.add(node, static_cast<double>(hosted));
  Family ur("gannet_partitions_under_replicated", "gauge",
            "Partitions led here whose in-sync replicas are fewer than their replicas.");
  ur.add(node, static_cast<double>(under_replicated));
  Family umi("gannet_partitions_under_min_isr", "gauge",
             "Partitions led here whose in-sync replicas are fewer than min.insync.replicas (acks=all is refused).");
  umi.add(node, static_cast<double>(under_min_isr));
  Family off("gannet_partitions_offline", "gauge", "Partitions of the cluster without a leader, as this broker's metadata says.");
  off.add(node, static_cast<double>(offline));
  Family offset("gannet_metadata_offset", "gauge", "The offset of this broker's metadata image (the next record to apply).");
  offset.add(node, static_cast<double>(image->offset()));
  Family groups("gannet_consumer_groups", "gauge", "Consumer groups this broker coordinates (classic and broker-assigned).");
  groups.add(node, static_cast<double>(groups_ ? groups_->group_count() : 0));
  // Lag of the committed offsets this broker coordinates, against the high watermark of the
  // partition's replica here (partitions without one here are left out). At most 10,000 series.
  Family lag("gannet_consumer_group_lag", "gauge",
             "Records between a group's committed offset and the partition's high watermark (groups coordinated here).");
  for (const GroupOffset& g : group_offsets(10'000)) {
    if (g.end < 0 || g.committed < 0) continue;
    lag.add(label("group", g.group) + "," + label("topic", g.topic) + "," + label("partition", std::to_string(g.partition)),
            static_cast<double>(std::max<int64_t>(0, g.end - g.committed)));
  }
  Family threads("gannet_process_threads", "gauge", "Threads of the gannetd process.");
  threads.add(node, proc_status("Threads"));
  Family rss("gannet_process_resident_memory_bytes", "gauge", "Resident memory of the gannetd process.");
  rss.add(node, proc_status("VmRSS") * 1024);
  Family fds("gannet_process_open_fds", "gauge", "Open file descriptors of the gannetd process.");
  fds.add(node, open_fds());
  Family bytes_in("gannet_topic_bytes_in_total", "counter", "Bytes of record batches appended as leader, by topic.");
  Family records_in("gannet_topic_records_in_total", "counter", "Records appended as leader, by topic.");
  Family bytes_out("gannet_topic_bytes_out_total", "counter", "Record bytes sent to consumers (not followers), by topic.");
  Family errors("gannet_partition_errors_total", "counter",
                "Partitions answered with an error by Produce or Fetch (both protocols), by API and Kafka's error name.");
  {
    std::lock_guard<std::mutex> l(counters_mu_);
    for (const auto& [topic, c] : topic_counters_) {
      bytes_in.add(label("topic", topic), static_cast<double>(c->bytes_in.load()));
      records_in.add(label("topic", topic), static_cast<double>(c->records_in.load()));
      bytes_out.add(label("topic", topic), static_cast<double>(c->bytes_out.load()));
    }
    for (const auto& [key, n] : error_counts_) {
      errors.add(label("api", key.first) + "," +
                     label("error", gannet::v1::ErrorCode_Name(static_cast<gannet::v1::ErrorCode>(key.second))),
                 static_cast<double>(n));
    }
  }
  Family purgatory("gannet_purgatory_size", "gauge",
                   "Requests parked until something happens: acks=all produces waiting for the in-sync replicas, "
                   "fetches waiting for data (long polls and fetch streams).");
  purgatory.add(node + "," + label("kind", "produce"), static_cast<double>(produce_waiting));
  purgatory.add(node + "," + label("kind", "fetch"), static_cast<double>(fetches_in_progress()));
  Family shrinks("gannet_isr_shrinks_total", "counter", "ISR shrinks this broker's partitions had accepted as leader.");
  shrinks.add(node, static_cast<double>(isr_shrinks_.load()));
  Family expands("gannet_isr_expands_total", "counter", "ISR expansions this broker's partitions had accepted as leader.");
  expands.add(node, static_cast<double>(isr_expands_.load()));
  std::string out = (kafka_ ? kafka_->metrics_text() : std::string()) + grpc_metrics_.metrics_text();
  for (const Family* f : {&bytes_in, &records_in, &bytes_out, &errors, &purgatory, &shrinks, &expands}) out += f->text();
  for (const Family* f : {&info, &led_f, &hosted_f, &ur, &umi, &off, &offset, &groups, &lag, &threads, &rss, &fds, &end,
                          &start, &hw, &size, &segments, &leader}) {
    out += f->text();
  }
  std::function<std::string()> extra;
  {
    std::lock_guard<std::mutex> l(extra_metrics_mu_);
    extra = extra_metrics_;
  }
  if (extra) out += extra();
  return out;
}

}  // namespace gannet::broker
