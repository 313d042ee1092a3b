#include "broker/record_messages.h"

#include <chrono>

#include "common/murmur2.h"
#include "storage/record_batch.h"

namespace gannet::broker {

namespace {

using gannet::v1::ErrorCode;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void set_error(v1::ProduceRecordsResponse::RecordResult* r, ErrorCode e, const std::string& message) {
  r->set_offset(-1);
  r->set_error_code(e);
  r->set_error_message(message);
}

// The topic's compression.type for batches the broker builds: a codec, or none for
// "producer" / "uncompressed" / unset.
storage::Compression topic_compression(const metadata::MetadataImage& image, const std::string& topic) {
  const auto& cfg = image.configs({metadata::v1::ConfigRecord::TOPIC, topic});
  auto it = cfg.find("compression.type");
  if (it == cfg.end()) return storage::Compression::kNone;
  return storage::parse_compression(it->second).value_or(storage::Compression::kNone);
}

}  // namespace

ProducePlan plan_produce_records(const metadata::MetadataImage& image, const v1::ProduceRecordsRequest& req,
                                 int32_t me, uint64_t sticky, v1::ProduceRecordsResponse* resp) {
  ProducePlan plan;
  resp->Clear();
  const int n = req.records_size();
  for (int i = 0; i < n; ++i) resp->add_results()->set_offset(-1);
  auto refuse = [&](ErrorCode e, const std::string& message) {
    resp->set_error_code(e);
    resp->set_error_message(message);
    for (auto& r : *resp->mutable_results()) set_error(&r, e, message);
    plan.refused = true;
    return plan;
  };
  const int32_t acks = req.has_acks() ? req.acks() : -1;
  if (acks != 0 && acks != 1 && acks != -1) return refuse(gannet::v1::INVALID_REQUIRED_ACKS, "acks must be 0, 1 or -1");
  const metadata::TopicImage* t = image.topic_by_name(req.topic());
  if (!t || t->partitions.empty()) {
    return refuse(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION, "unknown topic '" + req.topic() + "'");
  }
  const int32_t partitions = static_cast<int32_t>(t->partitions.size());
  // Keyless records: one partition for the request, one this broker leads when there is one.
  std::vector<int32_t> led_here;
  for (const auto& [p, s] : t->partitions) {
    if (s.leader == me) led_here.push_back(p);
  }
  const int32_t keyless = led_here.empty() ? static_cast<int32_t>(sticky % static_cast<uint64_t>(partitions))
                                           : led_here[sticky % led_here.size()];
  std::map<int32_t, std::vector<int>> local;  // partition -> request indexes, in order
  for (int i = 0; i < n; ++i) {
    const v1::ProducerRecord& r = req.records(i);
    int32_t p;
    if (r.has_partition()) {
      p = r.partition();
      if (p < 0 || p >= partitions) {
        set_error(resp->mutable_results(i), gannet::v1::UNKNOWN_TOPIC_OR_PARTITION,
                  "topic '" + req.topic() + "' has " + std::to_string(partitions) + " partitions, not partition " +
                      std::to_string(p));
        continue;
      }
    } else if (r.has_key()) {
      p = partition_for_key(r.key(), partitions);
    } else {
      p = keyless;
    }
    resp->mutable_results(i)->set_partition(p);
    const int32_t leader = t->partitions.at(p).leader;
    if (leader < 0) {
      set_error(resp->mutable_results(i), gannet::v1::LEADER_NOT_AVAILABLE,
                req.topic() + "-" + std::to_string(p) + " has no leader now");
      continue;
    }
    if (leader == me) {
      local[p].push_back(i);
      continue;
    }
    if (req.forwarded()) {
      set_error(resp->mutable_results(i), gannet::v1::NOT_LEADER_OR_FOLLOWER,
                "broker " + std::to_string(me) + " does not lead " + req.topic() + "-" + std::to_string(p));
      continue;
    }
    ProducePlan::Forward& f = plan.forwards[leader];
    if (f.req.topic().empty()) {
      f.req.set_topic(req.topic());
      f.req.set_acks(acks);
      f.req.set_timeout_ms(req.timeout_ms());
      f.req.set_forwarded(true);
    }
    v1::ProducerRecord* fr = f.req.add_records();
    *fr = r;
    fr->set_partition(p);
    f.index.push_back(i);
  }
  plan.local.set_acks(acks);
  plan.local.set_timeout_ms(req.timeout_ms());
  const storage::Compression codec = topic_compression(image, req.topic());
  const int64_t now = wall_ms();
  for (auto& [p, idx] : local) {
    storage::BatchOptions o;
    o.compression = codec;
    storage::RecordBatchBuilder b(o);
    std::vector<storage::RecordHeader> headers;
    for (int i : idx) {
      const v1::ProducerRecord& r = req.records(i);
      headers.clear();
      for (const auto& h : r.headers()) {
        headers.push_back({h.key(), h.has_value() ? std::optional<std::string_view>(h.value()) : std::nullopt});
      }
      b.add(r.timestamp() > 0 ? r.timestamp() : now,
            r.has_key() ? std::optional<std::string_view>(r.key()) : std::nullopt,
            r.has_value() ? std::optional<std::string_view>(r.value()) : std::nullopt, headers);
    }
    auto built = b.take();
    if (!built.ok()) {
      for (int i : idx) {
        set_error(resp->mutable_results(i), gannet::v1::INVALID_RECORD, "cannot encode: " + built.error().to_string());
      }
      continue;
    }
    auto* pd = plan.local.add_partitions();
    pd->set_topic(req.topic());
    pd->set_partition(p);
    pd->set_records(std::move(*built));
    plan.local_index.push_back(std::move(idx));
  }
  return plan;
}

void finish_local_records(const ProducePlan& plan, const v1::ProduceResponse& core, v1::ProduceRecordsResponse* resp) {
  for (size_t e = 0; e < plan.local_index.size(); ++e) {
    const auto* pr = static_cast<int>(e) < core.partitions_size() ? &core.partitions(static_cast<int>(e)) : nullptr;
    for (size_t k = 0; k < plan.local_index[e].size(); ++k) {
      auto* r = resp->mutable_results(plan.local_index[e][k]);
      if (!pr) {
        set_error(r, gannet::v1::UNKNOWN_SERVER_ERROR, "no answer for the partition");
      } else if (pr->error_code() != gannet::v1::NONE) {
        set_error(r, pr->error_code(), pr->error_message());
      } else {
        r->set_offset(pr->base_offset() >= 0 ? pr->base_offset() + static_cast<int64_t>(k) : -1);
      }
    }
  }
}

void finish_forwarded_records(const ProducePlan::Forward& f, const v1::ProduceRecordsResponse* answer,
                              gannet::v1::ErrorCode error, const std::string& message,
                              v1::ProduceRecordsResponse* resp) {
  for (size_t k = 0; k < f.index.size(); ++k) {
    auto* r = resp->mutable_results(f.index[k]);
    if (!answer || static_cast<int>(k) >= answer->results_size()) {
      set_error(r, error != gannet::v1::NONE ? error : gannet::v1::UNKNOWN_SERVER_ERROR, message);
      continue;
    }
    const int32_t p = r->partition();
    *r = answer->results(static_cast<int>(k));
    r->set_partition(p);
  }
}

v1::FetchRequest fetch_request_for(const v1::FetchRecordsRequest& req) {
  v1::FetchRequest f;
  f.set_replica_id(-1);
  f.set_max_wait_ms(std::max(0, req.max_wait_ms()));
  f.set_min_bytes(1);
  const int32_t max_bytes = req.max_bytes() > 0 ? req.max_bytes() : (1 << 20);
  f.set_max_bytes(max_bytes);
  auto* pd = f.add_partitions();
  pd->set_topic(req.topic());
  pd->set_partition(req.partition());
  pd->set_fetch_offset(req.offset());
  pd->set_current_leader_epoch(-1);
  pd->set_last_fetched_epoch(-1);
  pd->set_partition_max_bytes(max_bytes);
  return f;
}

void decode_fetched_records(const v1::FetchRecordsRequest& req, const v1::FetchResponse& core,
                            v1::FetchRecordsResponse* resp) {
  resp->set_next_offset(req.offset());
  if (core.partitions_size() != 1) {
    resp->set_error_code(gannet::v1::UNKNOWN_SERVER_ERROR);
    resp->set_error_message("no answer for the partition");
    return;
  }
  const auto& pd = core.partitions(0);
  resp->set_error_code(pd.error_code());
  resp->set_error_message(pd.error_message());
  resp->set_high_watermark(pd.high_watermark());
  resp->set_log_start_offset(pd.log_start_offset());
  resp->set_leader_id(pd.leader_id());
  if (pd.error_code() != gannet::v1::NONE) return;
  const std::string& bytes = pd.records();
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t pos = 0;
  const int max_records = req.max_records() > 0 ? req.max_records() : INT32_MAX;
  while (pos < bytes.size() && resp->records_size() < max_records) {
    auto size = storage::peek_batch_size(p + pos, bytes.size() - pos, storage::kMaxBatchBytes);
    if (!size.ok() || *size > bytes.size() - pos) break;  // a partial batch at the end: next time
    storage::RecordBatchView v(p + pos, *size);
    pos += *size;
    if (v.is_control()) {
      resp->set_next_offset(std::max(resp->next_offset(), v.next_offset()));
      continue;
    }
    auto it = storage::RecordIterator::create(v);
    if (!it.ok()) {
      resp->set_error_code(gannet::v1::CORRUPT_MESSAGE);
      resp->set_error_message(it.error().to_string());
      return;
    }
    storage::Record rec;
    bool stopped = false;
    while (true) {
      auto more = it->next(&rec);
      if (!more.ok()) {
        resp->set_error_code(gannet::v1::CORRUPT_MESSAGE);
        resp->set_error_message(more.error().to_string());
        return;
      }
      if (!*more) break;
      if (rec.offset < req.offset()) continue;
      if (resp->records_size() >= max_records) {
        stopped = true;
        break;
      }
      auto* out = resp->add_records();
      out->set_partition(req.partition());
      out->set_offset(rec.offset);
      out->set_timestamp(rec.timestamp);
      if (rec.key) out->set_key(std::string(*rec.key));
      if (rec.value) out->set_value(std::string(*rec.value));
      for (const auto& h : rec.headers) {
        auto* oh = out->add_headers();
        oh->set_key(std::string(h.key));
        if (h.value) oh->set_value(std::string(*h.value));
      }
      resp->set_next_offset(rec.offset + 1);
    }
    // Past a whole batch (also offsets compaction removed), unless max_records cut it short.
    if (!stopped) resp->set_next_offset(std::max(resp->next_offset(), v.next_offset()));
  }
}

}  // namespace gannet::broker
