#include "broker/kafka/kafka_api.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <regex>
#include <memory>
#include <set>
#include <tuple>

#include "broker/group_coordinator.h"
#include "broker/kafka/wire.h"
#include "common/acl.h"
#include "common/scram.h"

namespace gannet::broker::kafka {

namespace bv1 = gannet::broker::v1;
namespace cv1 = gannet::controller::v1;
namespace ev1 = gannet::v1;

namespace {

enum ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kDescribeGroups = 15,
  kListGroups = 16,
  kApiVersions = 18,
  kCreateTopics = 19,
  kDeleteTopics = 20,
  kDescribeConfigs = 32,
  kAlterConfigs = 33,
  kInitProducerId = 22,
  kCreatePartitions = 37,
  kDeleteGroups = 42,
  kIncrementalAlterConfigs = 44,
  kDescribeCluster = 60,
  kConsumerGroupHeartbeat = 68,
  kConsumerGroupDescribe = 69,
  kSaslHandshake = 17,
  kSaslAuthenticate = 36,
  kDescribeUserScramCredentials = 50,
  kAlterUserScramCredentials = 51,
  kDescribeAcls = 29,
  kCreateAcls = 30,
  kDeleteAcls = 31,
};

constexpr int32_t kNoAuthorizedOperations = INT32_MIN;  // "not requested" in Metadata/DescribeGroups
constexpr int8_t kResourceTopic = 2;
constexpr int8_t kResourceBroker = 4;

// One request being answered: its header, and the writer of its answer.
struct Call {
  RequestHeader header;
  bool flexible = false;
  ConnectionInfo conn;
  std::function<void(Answer)> answer;

  int16_t v() const { return header.api_version; }
  // A response writer with the response header written.
  Writer begin() const {
    Writer w;
    w.i32(header.correlation_id);
    // Response header v1 (tagged fields) for flexible versions; ApiVersions' is always v0.
    if (flexible && header.api_key != kApiVersions) w.empty_tagged_fields();
    return w;
  }
  void send(Writer& w) const {
    Answer a;
    a.chunks.push_back(Chunk{w.take(), nullptr, 0, 0, nullptr});
    answer(std::move(a));
  }
  void close(std::string why) const { answer(Answer{Answer::kClose, {}, std::move(why)}); }
  // Sends the answer, then closes the connection (a failed authentication).
  void send_and_close(Writer& w, std::string why) const {
    Answer a;
    a.chunks.push_back(Chunk{w.take(), nullptr, 0, 0, nullptr});
    a.reason = std::move(why);
    a.close_after = true;
    answer(std::move(a));
  }
  // A token for a request that may park (see Cancels); 0 when nothing can be cancelled.
  uint64_t reserve_cancel() const { return conn.cancels ? conn.cancels->reserve() : 0; }
  void answered(uint64_t token) const {
    if (token != 0) conn.cancels->release(token);
  }
  void parked(uint64_t token, std::function<void()> cancel) const {
    if (token != 0) conn.cancels->arm(token, std::move(cancel));
  }
  // The same for a call parked in the group coordinator (`id` 0: answered at once).
  void parked_in(uint64_t token, GroupCoordinator* groups, uint64_t id) const {
    parked(token, id == 0 ? nullptr : std::function<void()>([groups, id] { groups->cancel_parked(id); }));
  }
};
using CallPtr = std::shared_ptr<Call>;

// Kafka's per-partition results come grouped by topic; the core's are flat, in request order.
// Consecutive results of one topic form one group (a topic named twice in a request stays twice).
template <typename Results, typename TopicOf>
std::vector<std::pair<std::string, std::vector<int>>> group_by_topic(const Results& results, TopicOf topic_of) {
  std::vector<std::pair<std::string, std::vector<int>>> out;
  for (int i = 0; i < results.size(); ++i) {
    const std::string& t = topic_of(results.Get(i));
    if (out.empty() || out.back().first != t) out.push_back({t, {}});
    out.back().second.push_back(i);
  }
  return out;
}

int16_t code(ev1::ErrorCode e) { return static_cast<int16_t>(e); }

// An error code's message field (NULLABLE_STRING): null when there is no error, as Kafka sends it.
void error_message(Writer& w, ev1::ErrorCode e, const std::string& message) {
  if (e == ev1::NONE) return w.null_str();
  w.str(message);
}

// ---- Authorization (ACLs: common/acl.h) -----------------------------------------------------------
// Every request is checked against the connection's principal (User:ANONYMOUS without SASL or a
// client certificate) and address, with Kafka's operation for that API. Without an authorizer
// (authorizer.class.name unset) every check passes.

const std::string& principal_of(const Call& c) {
  static const std::string kAnonymous = "User:ANONYMOUS";
  return c.conn.session ? c.conn.session->principal : kAnonymous;
}
bool allowed(RequestCore* core, const Call& c, acl::Operation op, acl::ResourceType type, const std::string& name) {
  return core->authorize(principal_of(c), c.conn.client_host, op, type, name);
}
bool allowed_topic(RequestCore* core, const Call& c, acl::Operation op, const std::string& topic) {
  return allowed(core, c, op, acl::ResourceType::kTopic, topic);
}
bool allowed_group(RequestCore* core, const Call& c, acl::Operation op, const std::string& group) {
  return allowed(core, c, op, acl::ResourceType::kGroup, group);
}
bool allowed_cluster(RequestCore* core, const Call& c, acl::Operation op) {
  return allowed(core, c, op, acl::ResourceType::kCluster, acl::kClusterName);
}
// CreateTopics and auto-creation: CREATE on the cluster, or on the topic.
bool may_create_topic(RequestCore* core, const Call& c, const std::string& topic) {
  return allowed_cluster(core, c, acl::Operation::kCreate) || allowed_topic(core, c, acl::Operation::kCreate, topic);
}

// ---- ApiVersions ---------------------------------------------------------------------------------

void write_api_versions(Writer& w, int16_t version, int16_t error) {
  const bool flexible = version >= 3;
  w.i16(error);
  const auto& apis = supported_apis();
  if (flexible) {
    w.compact_array_len(apis.size());
  } else {
    w.array_len(apis.size());
  }
  for (const ApiRange& a : apis) {
    w.i16(a.key);
    w.i16(a.min_version);
    w.i16(a.max_version);
    if (flexible) w.empty_tagged_fields();
  }
  if (version >= 1) w.i32(0);  // throttle_time_ms
  if (flexible) w.empty_tagged_fields();
}

void api_versions(const CallPtr& c, Reader& r) {
  if (c->v() >= 3) {
    r.compact_str();  // client_software_name
    r.compact_str();  // client_software_version
    r.skip_tagged_fields();
  }
  Writer w = c->begin();
  write_api_versions(w, c->v(), 0);
  c->send(w);
}

// ---- Metadata ------------------------------------------------------------------------------------

void write_metadata(const Call& c, const bv1::MetadataResponse& m, Writer& w) {
  const int16_t v = c.v();
  if (v >= 3) w.i32(0);  // throttle_time_ms
  w.array_len(m.brokers_size());
  for (const auto& b : m.brokers()) {
    w.i32(b.broker_id());
    w.str(b.host());
    w.i32(b.port());
    if (b.rack().empty()) {
      w.null_str();
    } else {
      w.str(b.rack());
    }
  }
  if (v >= 2) w.str(m.cluster_id());
  // In KRaft mode Kafka names a live broker as the controller (clients cannot reach the quorum);
  // admin requests sent to it are forwarded. This broker is live and forwards them.
  w.i32(m.broker_id());
  w.array_len(m.topics_size());
  for (const auto& t : m.topics()) {
    w.i16(code(t.error_code()));
    w.str(t.name());
    w.boolean(t.name() == "__consumer_offsets");  // is_internal
    w.array_len(t.partitions_size());
    for (const auto& p : t.partitions()) {
      w.i16(code(p.error_code()));
      w.i32(p.partition());
      w.i32(p.leader());
      if (v >= 7) w.i32(p.leader_epoch());
      w.array_len(p.replicas_size());
      for (int32_t r : p.replicas()) w.i32(r);
      w.array_len(p.isr_size());
      for (int32_t r : p.isr()) w.i32(r);
      if (v >= 5) {
        w.array_len(p.offline_replicas_size());
        for (int32_t r : p.offline_replicas()) w.i32(r);
      }
    }
    if (v >= 8) w.i32(kNoAuthorizedOperations);
  }
  if (v >= 8) w.i32(kNoAuthorizedOperations);
}

void metadata(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::MetadataRequest>();
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) req->add_topics(r.str());
  bool allow_create = true;
  if (c->v() >= 4) allow_create = r.boolean();
  if (c->v() >= 8) {
    r.boolean();  // include_cluster_authorized_operations
    r.boolean();  // include_topic_authorized_operations
  }
  if (!r.ok()) return c->close("malformed Metadata request");
  // A null array asks for every topic; an empty one for none (brokers only).
  req->set_no_topics(n == 0);
  bv1::MetadataResponse m;
  core->metadata(*req, c->conn.listener, /*only_with_listener=*/true, &m);
  // Topics the principal may not describe: hidden from "every topic", refused by name.
  const bool all_topics = n < 0;
  auto* topics = m.mutable_topics();
  for (int i = topics->size() - 1; i >= 0; --i) {
    auto* t = topics->Mutable(i);
    if (t->error_code() == ev1::UNKNOWN_TOPIC_OR_PARTITION) continue;
    if (allowed_topic(core, *c, acl::Operation::kDescribe, t->name())) continue;
    if (all_topics) {
      topics->DeleteSubrange(i, 1);
    } else {
      t->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
      t->clear_partitions();
    }
  }
  std::vector<std::string> missing;
  for (auto& t : *m.mutable_topics()) {
    if (t.error_code() != ev1::UNKNOWN_TOPIC_OR_PARTITION) continue;
    if (allow_create && c->conn.auto_create_topics && !may_create_topic(core, *c, t.name())) {
      t.set_error_code(allowed_topic(core, *c, acl::Operation::kDescribe, t.name()) ? ev1::UNKNOWN_TOPIC_OR_PARTITION
                                                                                    : ev1::TOPIC_AUTHORIZATION_FAILED);
      continue;
    }
    missing.push_back(t.name());
  }
  if (missing.empty() || !allow_create || !c->conn.auto_create_topics) {
    Writer w = c->begin();
    write_metadata(*c, m, w);
    return c->send(w);
  }
  // auto.create.topics.enable: create the unknown topics with the cluster's defaults, then answer
  // (they show LEADER_NOT_AVAILABLE until their leaders are elected; clients ask again).
  core->run_admin([core, c, req, missing] {
    cv1::CreateTopicsRequest cr;
    for (const std::string& name : missing) {
      auto* t = cr.add_topics();
      t->set_name(name);
      t->set_num_partitions(c->conn.default_partitions);
    }
    cv1::CreateTopicsResponse cresp;
    core->create_topics(cr, &cresp);
    bv1::MetadataResponse m2;
    core->metadata(*req, c->conn.listener, true, &m2);
    auto* topics2 = m2.mutable_topics();
    for (int i = topics2->size() - 1; i >= 0; --i) {
      if (topics2->Get(i).error_code() == ev1::UNKNOWN_TOPIC_OR_PARTITION) continue;
      if (allowed_topic(core, *c, acl::Operation::kDescribe, topics2->Get(i).name())) continue;
      if (req->topics_size() == 0) {
        topics2->DeleteSubrange(i, 1);
      } else {
        topics2->Mutable(i)->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
        topics2->Mutable(i)->clear_partitions();
      }
    }
    for (auto& t : *m2.mutable_topics()) {
      if (t.error_code() != ev1::UNKNOWN_TOPIC_OR_PARTITION) continue;
      if (std::find(missing.begin(), missing.end(), t.name()) == missing.end()) {
        t.set_error_code(allowed_topic(core, *c, acl::Operation::kDescribe, t.name()) ? ev1::UNKNOWN_TOPIC_OR_PARTITION
                                                                                      : ev1::TOPIC_AUTHORIZATION_FAILED);
        continue;
      }
      for (const auto& res : cresp.topics()) {
        if (res.name() != t.name()) continue;
        // Created (or racing with another creator): its leaders are not known here yet.
        if (res.error_code() == ev1::NONE || res.error_code() == ev1::TOPIC_ALREADY_EXISTS) {
          t.set_error_code(ev1::LEADER_NOT_AVAILABLE);
        } else if (res.error_code() == ev1::INVALID_TOPIC_EXCEPTION) {
          t.set_error_code(ev1::INVALID_TOPIC_EXCEPTION);
        }
      }
    }
    Writer w = c->begin();
    write_metadata(*c, m2, w);
    c->send(w);
  });
}

// ---- Produce -------------------------------------------------------------------------------------

void produce(RequestCore* core, const CallPtr& c, Reader& r) {
  bv1::ProduceRequest req;
  const std::optional<std::string> transactional_id = r.nullable_str();
  req.set_acks(r.i16());
  req.set_timeout_ms(r.i32());
  const int32_t topics = r.array_len();
  for (int32_t i = 0; i < topics && r.ok(); ++i) {
    const std::string topic = r.str();
    const int32_t parts = r.array_len();
    for (int32_t j = 0; j < parts && r.ok(); ++j) {
      auto* pd = req.add_partitions();
      pd->set_topic(topic);
      pd->set_partition(r.i32());
      pd->set_records(r.bytes());
    }
  }
  if (!r.ok()) return c->close("malformed Produce request");
  const int acks = req.acks();
  auto resp = std::make_shared<bv1::ProduceResponse>();
  // WRITE on each topic: the partitions of a topic the principal may not write get
  // TOPIC_AUTHORIZATION_FAILED (after the others, in the answer) and nothing is appended to them.
  auto denied = std::make_shared<std::vector<std::pair<std::string, int32_t>>>();
  if (core->authorizer_enabled()) {
    bv1::ProduceRequest kept = req;
    kept.clear_partitions();
    for (auto& pd : *req.mutable_partitions()) {
      if (allowed_topic(core, *c, acl::Operation::kWrite, pd.topic())) {
        *kept.add_partitions() = std::move(pd);
      } else {
        denied->emplace_back(pd.topic(), pd.partition());
      }
    }
    req = std::move(kept);
  }
  if (transactional_id) {
    // Transactions do not exist yet: refused with Kafka's error, nothing appended.
    for (const auto& pd : req.partitions()) {
      auto* pr = resp->add_partitions();
      pr->set_topic(pd.topic());
      pr->set_partition(pd.partition());
      pr->set_error_code(static_cast<ev1::ErrorCode>(53));  // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    }
  }
  auto done = [c, resp, acks, denied] {
    if (acks == 0) return c->answer(Answer{Answer::kNoResponse, {}, ""});
    for (const auto& [topic, partition] : *denied) {
      auto* pr = resp->add_partitions();
      pr->set_topic(topic);
      pr->set_partition(partition);
      pr->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
    }
    Writer w = c->begin();
    const auto groups = group_by_topic(resp->partitions(), [](const auto& p) -> const std::string& { return p.topic(); });
    w.array_len(groups.size());
    for (const auto& [topic, idx] : groups) {
      w.str(topic);
      w.array_len(idx.size());
      for (int i : idx) {
        const auto& p = resp->partitions(i);
        w.i32(p.partition());
        w.i16(code(p.error_code()));
        w.i64(p.error_code() == ev1::NONE ? p.base_offset() : -1);
        w.i64(-1);  // log_append_time_ms: -1, the records keep their CreateTime
        if (c->v() >= 5) w.i64(p.error_code() == ev1::NONE ? p.log_start_offset() : -1);
      }
    }
    w.i32(0);  // throttle_time_ms
    c->send(w);
  };
  if (transactional_id || req.partitions_size() == 0) return done();
  core->produce(&req, resp.get(), std::move(done));
}

// ---- Fetch ---------------------------------------------------------------------------------------

void fetch(RequestCore* core, const CallPtr& c, Reader& r) {
  const int16_t v = c->v();
  auto req = std::make_shared<bv1::FetchRequest>();
  r.i32();  // replica_id: followers fetch over gRPC; whatever is sent here reads as a consumer
  req->set_replica_id(-1);
  req->set_max_wait_ms(r.i32());
  req->set_min_bytes(r.i32());
  req->set_max_bytes(r.i32());
  r.i8();  // isolation_level: without transactions, read_committed reads what read_uncommitted does
  int32_t session_id = 0, session_epoch = -1;
  if (v >= 7) {
    session_id = r.i32();
    session_epoch = r.i32();
  }
  const int32_t topics = r.array_len();
  for (int32_t i = 0; i < topics && r.ok(); ++i) {
    const std::string topic = r.str();
    const int32_t parts = r.array_len();
    for (int32_t j = 0; j < parts && r.ok(); ++j) {
      auto* pd = req->add_partitions();
      pd->set_topic(topic);
      pd->set_partition(r.i32());
      pd->set_current_leader_epoch(v >= 9 ? r.i32() : -1);
      pd->set_fetch_offset(r.i64());
      if (v >= 5) r.i64();  // log_start_offset: a follower's
      const int32_t max = r.i32();
      pd->set_partition_max_bytes(max > 0 ? max : 1);
      pd->set_last_fetched_epoch(-1);
    }
  }
  if (v >= 7) {
    const int32_t forgotten = r.array_len();
    for (int32_t i = 0; i < forgotten && r.ok(); ++i) {
      r.str();
      const int32_t n = r.array_len();
      for (int32_t j = 0; j < n && r.ok(); ++j) r.i32();
    }
  }
  if (v >= 11) r.str();  // rack_id
  if (!r.ok()) return c->close("malformed Fetch request");
  if (req->max_bytes() <= 0) req->set_max_bytes(1);  // KIP-74: the first batch goes whole anyway
  // READ on each topic: the others' partitions are answered TOPIC_AUTHORIZATION_FAILED, after the rest.
  auto denied = std::make_shared<std::vector<std::pair<std::string, int32_t>>>();
  if (core->authorizer_enabled()) {
    auto* parts = req->mutable_partitions();
    for (int i = parts->size() - 1; i >= 0; --i) {
      if (allowed_topic(core, *c, acl::Operation::kRead, parts->Get(i).topic())) continue;
      denied->emplace(denied->begin(), parts->Get(i).topic(), parts->Get(i).partition());
      parts->DeleteSubrange(i, 1);
    }
  }
  // Sessionless (KIP-227's session id 0): a full fetch that asks for a session gets none; an
  // incremental fetch names a session that does not exist.
  if (session_id != 0 || session_epoch > 0) {
    Writer w = c->begin();
    w.i32(0);
    w.i16(70);  // FETCH_SESSION_ID_NOT_FOUND
    w.i32(0);
    w.array_len(0);
    return c->send(w);
  }
  auto resp = std::make_shared<bv1::FetchResponse>();
  auto slices = std::make_shared<FetchSlices>();
  // The core's handle on the call (it holds the fetch budget of the records) goes with the last
  // chunk of the answer, released once that is sent; the call may complete before fetch() has
  // even returned it.
  struct Holder {
    std::mutex mu;
    bool done = false;
    std::shared_ptr<Cancellable> call;
  };
  auto holder = std::make_shared<Holder>();
  const uint64_t token = c->reserve_cancel();
  auto done = [c, req, resp, slices, holder, token, denied] {
    c->answered(token);
    for (const auto& [topic, partition] : *denied) {
      auto* p = resp->add_partitions();
      p->set_topic(topic);
      p->set_partition(partition);
      p->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
    }
    Answer a;
    Writer w = c->begin();
    const int16_t v = c->v();
    w.i32(0);  // throttle_time_ms
    if (v >= 7) {
      w.i16(0);  // error_code
      w.i32(0);  // session_id: sessionless
    }
    const auto groups = group_by_topic(resp->partitions(), [](const auto& p) -> const std::string& { return p.topic(); });
    w.array_len(groups.size());
    for (const auto& [topic, idx] : groups) {
      w.str(topic);
      w.array_len(idx.size());
      for (int i : idx) {
        const auto& p = resp->partitions(i);
        w.i32(p.partition());
        w.i16(code(p.error_code()));
        const bool ok = p.error_code() == ev1::NONE;
        w.i64(ok ? p.high_watermark() : -1);
        w.i64(ok ? p.high_watermark() : -1);  // last_stable_offset: the HW until transactions exist
        if (v >= 5) w.i64(ok ? p.log_start_offset() : -1);
        w.array_len(0);  // aborted_transactions
        if (v >= 11) w.i32(-1);  // preferred_read_replica
        const auto& ranges = i < static_cast<int>(slices->size()) ? (*slices)[i] : std::vector<storage::FileSlice>{};
        if (ranges.empty()) {
          w.bytes(p.records());
          continue;
        }
        // Whole batches straight from the segment files (sendfile): the bytes so far, then the
        // file ranges, then the rest of the answer.
        uint64_t n = 0;
        for (const auto& r : ranges) n += r.size;
        w.i32(static_cast<int32_t>(n));
        a.chunks.push_back(Chunk{w.take(), nullptr, 0, 0, nullptr});
        for (const auto& r : ranges) a.chunks.push_back(Chunk{"", r.file, r.position, r.size, nullptr});
      }
    }
    a.chunks.push_back(Chunk{w.take(), nullptr, 0, 0, nullptr});
    {
      std::lock_guard<std::mutex> l(holder->mu);
      holder->done = true;
      a.chunks.back().keep = std::move(holder->call);
    }
    c->answer(std::move(a));
  };
  std::shared_ptr<Cancellable> call = core->fetch(req.get(), resp.get(), slices.get(), std::move(done));
  c->parked(token, [weak = std::weak_ptr<Cancellable>(call)] {
    if (auto f = weak.lock()) f->cancel();
  });
  std::lock_guard<std::mutex> l(holder->mu);
  if (!holder->done) holder->call = std::move(call);
}

// ---- ListOffsets ---------------------------------------------------------------------------------

void list_offsets(RequestCore* core, const CallPtr& c, Reader& r) {
  bv1::ListOffsetsRequest req;
  r.i32();  // replica_id
  if (c->v() >= 2) r.i8();  // isolation_level
  const int32_t topics = r.array_len();
  for (int32_t i = 0; i < topics && r.ok(); ++i) {
    const std::string topic = r.str();
    const int32_t parts = r.array_len();
    for (int32_t j = 0; j < parts && r.ok(); ++j) {
      auto* pd = req.add_partitions();
      pd->set_topic(topic);
      pd->set_partition(r.i32());
      pd->set_current_leader_epoch(-1);
      pd->set_timestamp(r.i64());
    }
  }
  if (!r.ok()) return c->close("malformed ListOffsets request");
  bv1::ListOffsetsResponse resp;
  core->list_offsets(req, &resp);
  // DESCRIBE on each topic (the core answered in request order, one result per partition).
  for (int i = 0; i < resp.partitions_size() && i < req.partitions_size(); ++i) {
    if (!allowed_topic(core, *c, acl::Operation::kDescribe, req.partitions(i).topic())) {
      resp.mutable_partitions(i)->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
    }
  }
  Writer w = c->begin();
  if (c->v() >= 2) w.i32(0);
  const auto groups = group_by_topic(resp.partitions(), [](const auto& p) -> const std::string& { return p.topic(); });
  w.array_len(groups.size());
  for (const auto& [topic, idx] : groups) {
    w.str(topic);
    w.array_len(idx.size());
    for (int i : idx) {
      const auto& p = resp.partitions(i);
      const bool ok = p.error_code() == ev1::NONE;
      w.i32(p.partition());
      w.i16(code(p.error_code()));
      const int64_t ts = req.partitions(i).timestamp();
      // The latest and earliest queries (-1, -2) answer timestamp -1, as Kafka does.
      w.i64(ok && ts >= 0 && p.offset() >= 0 ? p.timestamp() : -1);
      w.i64(ok ? p.offset() : -1);
    }
  }
  c->send(w);
}

// ---- Groups --------------------------------------------------------------------------------------

void find_coordinator(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::FindCoordinatorRequest>();
  req->set_key(r.str());
  if (c->v() >= 1) req->set_key_type(r.i8());
  if (!r.ok()) return c->close("malformed FindCoordinator request");
  core->run_blocking([core, c, req] {
    bv1::FindCoordinatorResponse resp;
    if (req->key_type() != 0) {
      resp.set_error_code(ev1::COORDINATOR_NOT_AVAILABLE);
      resp.set_error_message("transactions do not exist yet: there is no transaction coordinator");
    } else if (!allowed_group(core, *c, acl::Operation::kDescribe, req->key())) {
      resp.set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
      resp.set_error_message("not authorized to describe group " + req->key());
    } else {
      core->find_coordinator(*req, c->conn.listener, &resp);
    }
    Writer w = c->begin();
    if (c->v() >= 1) w.i32(0);
    w.i16(code(resp.error_code()));
    if (c->v() >= 1) error_message(w, resp.error_code(), resp.error_message());
    const bool ok = resp.error_code() == ev1::NONE;
    w.i32(ok ? resp.node_id() : -1);
    w.str(ok ? resp.host() : "");
    w.i32(ok ? resp.port() : -1);
    c->send(w);
  });
}

void write_join(const Call& c, const bv1::JoinGroupResponse& resp) {
  Writer w = c.begin();
  if (c.v() >= 2) w.i32(0);
  w.i16(code(resp.error_code()));
  w.i32(resp.error_code() == ev1::NONE ? resp.generation_id() : -1);
  w.str(resp.protocol_name());
  w.str(resp.leader());
  w.str(resp.member_id());
  w.array_len(resp.members_size());
  for (const auto& m : resp.members()) {
    w.str(m.member_id());
    if (c.v() >= 5) w.null_str();  // group_instance_id: static membership does not exist yet
    w.bytes(m.metadata());
  }
  c.send(w);
}

void join_group(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::JoinGroupRequest>();
  req->set_group_id(r.str());
  req->set_session_timeout_ms(r.i32());
  req->set_rebalance_timeout_ms(c->v() >= 1 ? r.i32() : req->session_timeout_ms());
  req->set_member_id(r.str());
  if (c->v() >= 5) r.nullable_str();  // group_instance_id: joins as a dynamic member
  req->set_protocol_type(r.str());
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* p = req->add_protocols();
    p->set_name(r.str());
    p->set_metadata(r.bytes());
  }
  if (!r.ok()) return c->close("malformed JoinGroup request");
  req->set_client_id(c->header.client_id.value_or(""));
  GroupCoordinator* groups = core->groups();
  auto resp = std::make_shared<bv1::JoinGroupResponse>();
  if (!allowed_group(core, *c, acl::Operation::kRead, req->group_id())) {
    resp->set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    return write_join(*c, *resp);
  }
  // Before v4 (KIP-394) a client cannot be asked to join again with a member id: it is given one
  // and joined with it at once, here, as the coordinator's two steps.
  const bool two_steps = c->v() < 4 && req->member_id().empty();
  const uint64_t token = c->reserve_cancel();
  const uint64_t id = groups->join_group(*req, c->conn.client_host, resp.get(), [c, req, resp, groups, two_steps, token] {
    c->answered(token);
    if (!two_steps || resp->error_code() != ev1::MEMBER_ID_REQUIRED) return write_join(*c, *resp);
    req->set_member_id(resp->member_id());
    resp->Clear();
    const uint64_t again = c->reserve_cancel();
    const uint64_t id2 = groups->join_group(*req, c->conn.client_host, resp.get(), [c, resp, again] {
      c->answered(again);
      write_join(*c, *resp);
    });
    c->parked_in(again, groups, id2);
  });
  c->parked_in(token, groups, id);
}

void sync_group(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::SyncGroupRequest>();
  req->set_group_id(r.str());
  req->set_generation_id(r.i32());
  req->set_member_id(r.str());
  if (c->v() >= 3) r.nullable_str();  // group_instance_id
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* a = req->add_assignments();
    a->set_member_id(r.str());
    a->set_assignment(r.bytes());
  }
  if (!r.ok()) return c->close("malformed SyncGroup request");
  // Parked in the coordinator until the leader's assignment is written (never on a thread: a
  // group of many members syncing at once must not hold a pool the leader's sync waits behind).
  auto resp = std::make_shared<bv1::SyncGroupResponse>();
  GroupCoordinator* groups = core->groups();
  const uint64_t token = c->reserve_cancel();
  auto finish = [c, resp, token] {
    c->answered(token);
    Writer w = c->begin();
    if (c->v() >= 1) w.i32(0);
    w.i16(code(resp->error_code()));
    w.bytes(resp->assignment());
    c->send(w);
  };
  if (!allowed_group(core, *c, acl::Operation::kRead, req->group_id())) {
    resp->set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    return finish();
  }
  const uint64_t id = groups->sync_group(*req, resp.get(), std::move(finish));
  c->parked_in(token, groups, id);
}

void heartbeat(RequestCore* core, const CallPtr& c, Reader& r) {
  bv1::HeartbeatRequest req;
  req.set_group_id(r.str());
  req.set_generation_id(r.i32());
  req.set_member_id(r.str());
  if (c->v() >= 3) r.nullable_str();
  if (!r.ok()) return c->close("malformed Heartbeat request");
  req.set_max_wait_ms(0);  // Kafka's heartbeats answer at once
  auto resp = std::make_shared<bv1::HeartbeatResponse>();
  auto finish = [c, resp] {
    Writer w = c->begin();
    if (c->v() >= 1) w.i32(0);
    w.i16(code(resp->error_code()));
    c->send(w);
  };
  if (!allowed_group(core, *c, acl::Operation::kRead, req.group_id())) {
    resp->set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    return finish();
  }
  core->groups()->heartbeat(req, resp.get(), std::move(finish));
}

void leave_group(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::LeaveGroupRequest>();
  req->set_group_id(r.str());
  if (c->v() >= 3) {
    const int32_t n = r.array_len();
    for (int32_t i = 0; i < n && r.ok(); ++i) {
      req->add_member_ids(r.str());
      r.nullable_str();  // group_instance_id
    }
  } else {
    req->add_member_ids(r.str());
  }
  if (!r.ok()) return c->close("malformed LeaveGroup request");
  // Answered once the group's Empty record is written when the last member leaves (never on a
  // thread of ours).
  auto resp = std::make_shared<bv1::LeaveGroupResponse>();
  auto finish = [c, resp] {
    Writer w = c->begin();
    if (c->v() >= 1) w.i32(0);
    ev1::ErrorCode top = resp->error_code();
    if (c->v() < 3 && top == ev1::NONE && resp->members_size() == 1) top = resp->members(0).error_code();
    w.i16(code(top));
    if (c->v() >= 3) {
      w.array_len(resp->members_size());
      for (const auto& m : resp->members()) {
        w.str(m.member_id());
        w.null_str();
        w.i16(code(m.error_code()));
      }
    }
    c->send(w);
  };
  if (!allowed_group(core, *c, acl::Operation::kRead, req->group_id())) {
    resp->set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    return finish();
  }
  core->groups()->leave_group(*req, resp.get(), std::move(finish));
}

// OffsetCommit 2-9 (flexible from 8). From v9 a broker-assigned group's members send their member
// epoch as the generation (KIP-848); every version is checked the same way here.
void offset_commit(RequestCore* core, const CallPtr& c, Reader& r) {
  const int16_t v = c->v();
  const bool flex = c->flexible;
  auto s = [&] { return flex ? r.compact_str() : r.str(); };
  auto ns = [&] { return flex ? r.compact_nullable_str() : r.nullable_str(); };
  auto len = [&] { return flex ? r.compact_array_len() : r.array_len(); };
  bv1::OffsetCommitRequest req;
  req.set_group_id(s());
  req.set_generation_id(r.i32());
  req.set_member_id(s());
  if (v >= 7) ns();               // group_instance_id
  if (v >= 2 && v <= 4) r.i64();  // retention_time_ms: offsets.retention.minutes applies
  const int32_t topics = len();
  for (int32_t i = 0; i < topics && r.ok(); ++i) {
    auto* t = req.add_topics();
    t->set_name(s());
    const int32_t parts = len();
    for (int32_t j = 0; j < parts && r.ok(); ++j) {
      auto* p = t->add_partitions();
      p->set_partition(r.i32());
      p->set_committed_offset(r.i64());
      p->set_committed_leader_epoch(v >= 6 ? r.i32() : -1);
      p->set_metadata(ns().value_or(""));
      if (flex) r.skip_tagged_fields();
    }
    if (flex) r.skip_tagged_fields();
  }
  if (flex) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed OffsetCommit request");
  auto resp = std::make_shared<bv1::OffsetCommitResponse>();
  // READ on the group (else every partition: GROUP_AUTHORIZATION_FAILED) and on each topic.
  auto refused = std::make_shared<bv1::OffsetCommitResponse>();
  if (core->authorizer_enabled()) {
    const bool group_ok = allowed_group(core, *c, acl::Operation::kRead, req.group_id());
    auto* topics = req.mutable_topics();
    for (int i = topics->size() - 1; i >= 0; --i) {
      const auto& t = topics->Get(i);
      if (group_ok && allowed_topic(core, *c, acl::Operation::kRead, t.name())) continue;
      auto* rt = refused->add_topics();
      rt->set_name(t.name());
      for (const auto& p : t.partitions()) {
        auto* rp = rt->add_partitions();
        rp->set_partition(p.partition());
        rp->set_error_code(group_ok ? ev1::TOPIC_AUTHORIZATION_FAILED : ev1::GROUP_AUTHORIZATION_FAILED);
      }
      topics->DeleteSubrange(i, 1);
    }
  }
  const bool nothing_left = core->authorizer_enabled() && req.topics_size() == 0;
  auto finish = [c, resp, refused] {
    for (const auto& t : refused->topics()) *resp->add_topics() = t;
    const bool flex = c->flexible;
    Writer w = c->begin();
    if (c->v() >= 3) w.i32(0);
    flex ? w.compact_array_len(resp->topics_size()) : w.array_len(resp->topics_size());
    for (const auto& t : resp->topics()) {
      flex ? w.compact_str(t.name()) : w.str(t.name());
      flex ? w.compact_array_len(t.partitions_size()) : w.array_len(t.partitions_size());
      for (const auto& p : t.partitions()) {
        w.i32(p.partition());
        w.i16(code(p.error_code()));
        if (flex) w.empty_tagged_fields();
      }
      if (flex) w.empty_tagged_fields();
    }
    if (flex) w.empty_tagged_fields();
    c->send(w);
  };
  if (nothing_left) return finish();
  core->groups()->offset_commit(req, resp.get(), std::move(finish));
}

// OffsetFetch 1-9 (flexible from 6; from 8 several groups per request; from 9 a broker-assigned
// group's member id and epoch, checked).
void offset_fetch(RequestCore* core, const CallPtr& c, Reader& r) {
  const int16_t v = c->v();
  const bool flex = c->flexible;
  auto s = [&] { return flex ? r.compact_str() : r.str(); };
  auto len = [&] { return flex ? r.compact_array_len() : r.array_len(); };
  struct One {
    bv1::OffsetFetchRequest req;
    bool all = false;   // null topics: every committed offset
    bool none = false;  // an empty list: nothing
  };
  std::vector<One> groups;
  auto read_topics = [&](One* g) {
    const int32_t topics = len();
    g->all = topics < 0;
    g->none = topics == 0;
    for (int32_t i = 0; i < topics && r.ok(); ++i) {
      auto* t = g->req.add_topics();
      t->set_name(s());
      const int32_t parts = len();
      for (int32_t j = 0; j < parts && r.ok(); ++j) t->add_partitions(r.i32());
      if (flex) r.skip_tagged_fields();
    }
  };
  if (v >= 8) {
    const int32_t n = len();
    for (int32_t i = 0; i < n && r.ok(); ++i) {
      One g;
      g.req.set_group_id(s());
      if (v >= 9) {
        if (auto m = r.compact_nullable_str()) g.req.set_member_id(*m);
        g.req.set_member_epoch(r.i32());
      }
      read_topics(&g);
      r.skip_tagged_fields();
      groups.push_back(std::move(g));
    }
  } else {
    One g;
    g.req.set_group_id(s());
    read_topics(&g);
    if (g.all && v < 2) return c->close("OffsetFetch below v2 cannot ask for every topic");
    groups.push_back(std::move(g));
  }
  if (v >= 7) r.boolean();  // require_stable: every offset here is stable (no transactions yet)
  if (flex) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed OffsetFetch request");
  std::vector<bv1::OffsetFetchResponse> answers(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    // DESCRIBE on the group, and on each topic (unauthorized topics: refused by name, left out of
    // "every topic").
    if (!allowed_group(core, *c, acl::Operation::kDescribe, groups[i].req.group_id())) {
      answers[i].set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
      continue;
    }
    if (!groups[i].none) core->groups()->offset_fetch(groups[i].req, &answers[i]);
    if (!core->authorizer_enabled()) continue;
    auto* topics = answers[i].mutable_topics();
    for (int t = topics->size() - 1; t >= 0; --t) {
      if (allowed_topic(core, *c, acl::Operation::kDescribe, topics->Get(t).name())) continue;
      if (groups[i].all) {
        topics->DeleteSubrange(t, 1);
        continue;
      }
      for (auto& p : *topics->Mutable(t)->mutable_partitions()) {
        p.set_committed_offset(-1);
        p.set_metadata("");
        p.set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
      }
    }
  }
  Writer w = c->begin();
  if (v >= 3) w.i32(0);
  auto write_topics = [&](const bv1::OffsetFetchResponse& resp) {
    // Below v2 a group-level error is given on every partition.
    const ev1::ErrorCode top = resp.error_code();
    flex ? w.compact_array_len(resp.topics_size()) : w.array_len(resp.topics_size());
    for (const auto& t : resp.topics()) {
      flex ? w.compact_str(t.name()) : w.str(t.name());
      flex ? w.compact_array_len(t.partitions_size()) : w.array_len(t.partitions_size());
      for (const auto& p : t.partitions()) {
        w.i32(p.partition());
        w.i64(p.committed_offset());
        if (v >= 5) w.i32(p.committed_leader_epoch());
        flex ? w.compact_str(p.metadata()) : w.str(p.metadata());
        w.i16(code(v < 2 && top != ev1::NONE ? top : p.error_code()));
        if (flex) w.empty_tagged_fields();
      }
      if (flex) w.empty_tagged_fields();
    }
  };
  if (v >= 8) {
    w.compact_array_len(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      w.compact_str(groups[i].req.group_id());
      write_topics(answers[i]);
      w.i16(code(answers[i].error_code()));
      w.empty_tagged_fields();
    }
  } else {
    write_topics(answers[0]);
    if (v >= 2) w.i16(code(answers[0].error_code()));
  }
  if (flex) w.empty_tagged_fields();
  c->send(w);
}

void describe_groups(RequestCore* core, const CallPtr& c, Reader& r) {
  const int16_t v = c->v();
  bv1::DescribeGroupsRequest req;
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) req.add_group_ids(r.str());
  if (v >= 3) r.boolean();
  if (!r.ok()) return c->close("malformed DescribeGroups request");
  bv1::DescribeGroupsResponse resp;
  core->groups()->describe_groups(req, &resp);
  for (auto& g : *resp.mutable_groups()) {
    if (allowed_group(core, *c, acl::Operation::kDescribe, g.group_id())) continue;
    const std::string id = g.group_id();
    g.Clear();
    g.set_group_id(id);
    g.set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
  }
  Writer w = c->begin();
  if (v >= 1) w.i32(0);
  w.array_len(resp.groups_size());
  for (const auto& g : resp.groups()) {
    w.i16(code(g.error_code()));
    w.str(g.group_id());
    w.str(g.state());
    w.str(g.protocol_type());
    w.str(g.protocol());
    w.array_len(g.members_size());
    for (const auto& m : g.members()) {
      w.str(m.member_id());
      if (v >= 4) w.null_str();
      w.str(m.client_id());
      w.str(m.client_host());
      w.bytes(m.metadata());
      w.bytes(m.assignment());
    }
    if (v >= 3) w.i32(kNoAuthorizedOperations);
  }
  c->send(w);
}

void list_groups(RequestCore* core, const CallPtr& c, Reader&) {
  bv1::ListGroupsResponse resp;
  core->groups()->list_groups(bv1::ListGroupsRequest(), &resp);
  // DESCRIBE on the cluster lists every group; else only the groups the principal may describe.
  if (!allowed_cluster(core, *c, acl::Operation::kDescribe)) {
    auto* groups = resp.mutable_groups();
    for (int i = groups->size() - 1; i >= 0; --i) {
      if (!allowed_group(core, *c, acl::Operation::kDescribe, groups->Get(i).group_id())) groups->DeleteSubrange(i, 1);
    }
  }
  Writer w = c->begin();
  if (c->v() >= 1) w.i32(0);
  w.i16(code(resp.error_code()));
  w.array_len(resp.groups_size());
  for (const auto& g : resp.groups()) {
    w.str(g.group_id());
    w.str(g.protocol_type());
  }
  c->send(w);
}

void delete_groups(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::DeleteGroupsRequest>();
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) req->add_group_ids(r.str());
  if (!r.ok()) return c->close("malformed DeleteGroups request");
  core->run_blocking([core, c, req] {
    bv1::DeleteGroupsResponse resp;
    bv1::DeleteGroupsRequest allowed_req;
    for (const auto& g : req->group_ids()) {
      if (allowed_group(core, *c, acl::Operation::kDelete, g)) allowed_req.add_group_ids(g);
    }
    if (allowed_req.group_ids_size() > 0) core->groups()->delete_groups(allowed_req, &resp);
    for (const auto& g : req->group_ids()) {
      if (allowed_group(core, *c, acl::Operation::kDelete, g)) continue;
      auto* res = resp.add_results();
      res->set_group_id(g);
      res->set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    }
    Writer w = c->begin();
    w.i32(0);
    w.array_len(resp.results_size());
    for (const auto& res : resp.results()) {
      w.str(res.group_id());
      w.i16(code(res.error_code()));
    }
    c->send(w);
  });
}

// ---- Admin (forwarded to the active controller) --------------------------------------------------

// A request-level error of a forwarded admin call is every topic's error.
template <typename Resp>
void spread_request_error(Resp* resp, const std::vector<std::string>& names) {
  if (resp->error_code() == ev1::NONE) return;
  std::map<std::string, int> have;
  for (int i = 0; i < resp->topics_size(); ++i) have[resp->topics(i).name()] = i;
  for (const std::string& n : names) {
    cv1::TopicResult* t = have.count(n) ? resp->mutable_topics(have[n]) : resp->add_topics();
    t->set_name(n);
    if (t->error_code() == ev1::NONE) {
      t->set_error_code(resp->error_code());
      t->set_error_message(resp->error_message());
    }
  }
}

const cv1::TopicResult* result_for(const google::protobuf::RepeatedPtrField<cv1::TopicResult>& results,
                                   const std::string& name) {
  for (const auto& t : results) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

void create_topics(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<cv1::CreateTopicsRequest>();
  auto names = std::make_shared<std::vector<std::string>>();
  auto refused = std::make_shared<std::set<std::string>>();  // manual assignments: not supported yet
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* t = req->add_topics();
    t->set_name(r.str());
    names->push_back(t->name());
    t->set_num_partitions(r.i32());
    t->set_replication_factor(r.i16());
    const int32_t assignments = r.array_len();
    for (int32_t j = 0; j < assignments && r.ok(); ++j) {
      r.i32();
      const int32_t brokers = r.array_len();
      for (int32_t k = 0; k < brokers && r.ok(); ++k) r.i32();
    }
    if (assignments > 0) refused->insert(t->name());
    const int32_t configs = r.array_len();
    for (int32_t j = 0; j < configs && r.ok(); ++j) {
      auto* e = t->add_configs();
      e->set_name(r.str());
      e->set_value(r.nullable_str().value_or(""));
    }
  }
  req->set_timeout_ms(r.i32());
  req->set_validate_only(r.boolean());
  if (!r.ok()) return c->close("malformed CreateTopics request");
  auto denied = std::make_shared<std::set<std::string>>();
  for (const auto& t : req->topics()) {
    if (!may_create_topic(core, *c, t.name())) denied->insert(t.name());
  }
  core->run_admin([core, c, req, names, refused, denied] {
    cv1::CreateTopicsRequest to_create = *req;
    to_create.clear_topics();
    for (const auto& t : req->topics()) {
      if (!refused->count(t.name()) && !denied->count(t.name())) *to_create.add_topics() = t;
    }
    cv1::CreateTopicsResponse resp;
    if (to_create.topics_size() > 0) core->create_topics(to_create, &resp);
    spread_request_error(&resp, *names);
    Writer w = c->begin();
    w.i32(0);
    w.array_len(names->size());
    for (const std::string& name : *names) {
      w.str(name);
      const cv1::TopicResult* t = result_for(resp.topics(), name);
      if (denied->count(name)) {
        w.i16(code(ev1::TOPIC_AUTHORIZATION_FAILED));
        w.str("not authorized to create topic " + name);
      } else if (refused->count(name)) {
        w.i16(code(ev1::INVALID_REPLICA_ASSIGNMENT));
        w.str("manual replica assignments are not supported yet");
      } else if (!t) {
        w.i16(code(ev1::UNKNOWN_SERVER_ERROR));
        w.str("no result for this topic");
      } else {
        w.i16(code(t->error_code()));
        error_message(w, t->error_code(), t->error_message());
      }
    }
    c->send(w);
  });
}

void delete_topics(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<cv1::DeleteTopicsRequest>();
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) req->add_names(r.str());
  req->set_timeout_ms(r.i32());
  if (!r.ok()) return c->close("malformed DeleteTopics request");
  core->run_admin([core, c, req] {
    cv1::DeleteTopicsResponse resp;
    cv1::DeleteTopicsRequest to_delete = *req;
    to_delete.clear_names();
    std::set<std::string> denied;
    for (const auto& name : req->names()) {
      if (allowed_topic(core, *c, acl::Operation::kDelete, name)) {
        to_delete.add_names(name);
      } else {
        denied.insert(name);
      }
    }
    if (to_delete.names_size() > 0) core->delete_topics(to_delete, &resp);
    std::vector<std::string> names(to_delete.names().begin(), to_delete.names().end());
    spread_request_error(&resp, names);
    for (const std::string& name : denied) {
      auto* t = resp.add_topics();
      t->set_name(name);
      t->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
    }
    names.assign(req->names().begin(), req->names().end());
    Writer w = c->begin();
    if (c->v() >= 1) w.i32(0);
    w.array_len(names.size());
    for (const std::string& name : names) {
      w.str(name);
      const cv1::TopicResult* t = result_for(resp.topics(), name);
      w.i16(t ? code(t->error_code()) : code(ev1::UNKNOWN_SERVER_ERROR));
    }
    c->send(w);
  });
}

void create_partitions(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<cv1::CreatePartitionsRequest>();
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* t = req->add_topics();
    t->set_name(r.str());
    t->set_count(r.i32());
    const int32_t assignments = r.array_len();
    for (int32_t j = 0; j < assignments && r.ok(); ++j) {
      const int32_t brokers = r.array_len();
      for (int32_t k = 0; k < brokers && r.ok(); ++k) r.i32();
    }
  }
  req->set_timeout_ms(r.i32());
  req->set_validate_only(r.boolean());
  if (!r.ok()) return c->close("malformed CreatePartitions request");
  core->run_admin([core, c, req] {
    cv1::CreatePartitionsResponse resp;
    cv1::CreatePartitionsRequest to_alter = *req;
    to_alter.clear_topics();
    std::vector<std::string> names, denied;
    for (const auto& t : req->topics()) {
      if (allowed_topic(core, *c, acl::Operation::kAlter, t.name())) {
        *to_alter.add_topics() = t;
        names.push_back(t.name());
      } else {
        denied.push_back(t.name());
      }
    }
    if (to_alter.topics_size() > 0) core->create_partitions(to_alter, &resp);
    spread_request_error(&resp, names);
    for (const std::string& name : denied) {
      auto* t = resp.add_topics();
      t->set_name(name);
      t->set_error_code(ev1::TOPIC_AUTHORIZATION_FAILED);
      t->set_error_message("not authorized to alter topic " + name);
    }
    names.clear();
    for (const auto& t : req->topics()) names.push_back(t.name());
    Writer w = c->begin();
    w.i32(0);
    w.array_len(names.size());
    for (const std::string& name : names) {
      w.str(name);
      const cv1::TopicResult* t = result_for(resp.topics(), name);
      const ev1::ErrorCode e = t ? t->error_code() : ev1::UNKNOWN_SERVER_ERROR;
      w.i16(code(e));
      error_message(w, e, t ? t->error_message() : "no result for this topic");
    }
    c->send(w);
  });
}

void describe_configs(RequestCore* core, const CallPtr& c, Reader& r) {
  const int16_t v = c->v();
  struct Resource {
    int8_t type;
    std::string name;
    std::optional<std::set<std::string>> keys;
  };
  std::vector<Resource> resources;
  const int32_t n = r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    Resource res;
    res.type = r.i8();
    res.name = r.str();
    const int32_t k = r.array_len();
    if (k >= 0) res.keys.emplace();
    for (int32_t j = 0; j < k && r.ok(); ++j) res.keys->insert(r.str());
    resources.push_back(std::move(res));
  }
  if (v >= 1) r.boolean();  // include_synonyms
  if (!r.ok()) return c->close("malformed DescribeConfigs request");
  Writer w = c->begin();
  w.i32(0);
  w.array_len(resources.size());
  // A topic's configs: its own overrides (DYNAMIC_TOPIC_CONFIG) and, for every other key, the
  // broker's default (DEFAULT_CONFIG), as Kafka lists them.
  constexpr int8_t kDynamicTopicConfig = 1, kDefaultConfig = 5;
  struct Entry {
    std::string name, value;
    int8_t source;
  };
  for (const Resource& res : resources) {
    std::vector<Entry> entries;
    ev1::ErrorCode err = ev1::NONE;
    std::string message;
    const bool may = res.type == kResourceTopic
                         ? allowed_topic(core, *c, acl::Operation::kDescribeConfigs, res.name)
                         : allowed_cluster(core, *c, acl::Operation::kDescribeConfigs);
    if (!may) {
      err = res.type == kResourceTopic ? ev1::TOPIC_AUTHORIZATION_FAILED : ev1::CLUSTER_AUTHORIZATION_FAILED;
      message = "not authorized to describe the configs of " + res.name;
    } else if (res.type == kResourceTopic) {
      cv1::DescribeConfigsRequest req;
      req.add_topics(res.name);
      cv1::DescribeConfigsResponse resp;
      core->describe_configs(req, &resp);
      if (resp.resources_size() == 1) {
        err = resp.resources(0).error_code();
        message = resp.resources(0).error_message();
        std::map<std::string, std::string> own;
        for (const auto& e : resp.resources(0).configs()) own[e.name()] = e.value();
        if (err == ev1::NONE) {
          std::map<std::string, Entry> all;
          for (const auto& [k, v] : core->topic_config_defaults()) all[k] = Entry{k, v, kDefaultConfig};
          for (const auto& [k, v] : own) all[k] = Entry{k, v, kDynamicTopicConfig};
          for (auto& [k, e] : all) entries.push_back(std::move(e));
        }
      }
    } else if (res.type != kResourceBroker) {
      err = ev1::INVALID_REQUEST;
      message = "only topic and broker configs can be described";
    }
    w.i16(code(err));
    error_message(w, err, message);
    w.i8(res.type);
    w.str(res.name);
    std::vector<Entry> shown;
    for (auto& e : entries) {
      if (!res.keys || res.keys->count(e.name)) shown.push_back(e);
    }
    w.array_len(shown.size());
    for (const Entry& e : shown) {
      w.str(e.name);
      w.str(e.value);
      w.boolean(false);  // read_only
      if (v == 0) {
        w.boolean(e.source == kDefaultConfig);  // is_default
      } else {
        w.i8(e.source);
      }
      w.boolean(false);  // is_sensitive
      if (v >= 1) w.array_len(0);  // synonyms
    }
  }
  c->send(w);
}

// AlterConfigs (the whole set of a topic's overrides) and IncrementalAlterConfigs (SET and DELETE).
void alter_configs(RequestCore* core, const CallPtr& c, Reader& r, bool incremental) {
  const bool flexible = c->flexible;
  auto req = std::make_shared<cv1::AlterConfigsRequest>();
  struct Resource {
    int8_t type;
    std::string name;
    ev1::ErrorCode error = ev1::NONE;
    std::string message;
  };
  auto resources = std::make_shared<std::vector<Resource>>();
  const int32_t n = flexible ? r.compact_array_len() : r.array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    Resource res;
    res.type = r.i8();
    res.name = flexible ? r.compact_str() : r.str();
    cv1::AlterConfigsRequest::Resource ar;
    ar.set_topic(res.name);
    const int32_t k = flexible ? r.compact_array_len() : r.array_len();
    for (int32_t j = 0; j < k && r.ok(); ++j) {
      const std::string name = flexible ? r.compact_str() : r.str();
      const int8_t op = incremental ? r.i8() : 0;
      const std::optional<std::string> value = flexible ? r.compact_nullable_str() : r.nullable_str();
      if (flexible) r.skip_tagged_fields();
      if (op == 0 && value) {
        auto* e = ar.add_set();
        e->set_name(name);
        e->set_value(*value);
      } else if (op == 1 || (op == 0 && !value)) {
        ar.add_remove(name);
      } else {
        res.error = ev1::INVALID_REQUEST;
        res.message = "APPEND and SUBTRACT apply to list configs, which topics do not have yet";
      }
    }
    if (flexible) r.skip_tagged_fields();
    if (res.type != kResourceTopic && res.error == ev1::NONE) {
      res.error = ev1::INVALID_REQUEST;
      res.message = "only topic configs can be altered";
    }
    if (res.type == kResourceTopic && res.error == ev1::NONE &&
        !allowed_topic(core, *c, acl::Operation::kAlterConfigs, res.name)) {
      res.error = ev1::TOPIC_AUTHORIZATION_FAILED;
      res.message = "not authorized to alter the configs of topic " + res.name;
    }
    if (res.error == ev1::NONE) *req->add_resources() = std::move(ar);
    resources->push_back(std::move(res));
  }
  req->set_validate_only(r.boolean());
  if (flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed AlterConfigs request");
  core->run_admin([core, c, req, resources, incremental, flexible] {
    if (!incremental) {
      // AlterConfigs replaces a topic's overrides: those not named again are removed.
      for (auto& ar : *req->mutable_resources()) {
        cv1::DescribeConfigsRequest dreq;
        dreq.add_topics(ar.topic());
        cv1::DescribeConfigsResponse dresp;
        core->describe_configs(dreq, &dresp);
        std::set<std::string> keep;
        for (const auto& e : ar.set()) keep.insert(e.name());
        for (const auto& res : dresp.resources()) {
          for (const auto& e : res.configs()) {
            if (!keep.count(e.name())) ar.add_remove(e.name());
          }
        }
      }
    }
    cv1::AlterConfigsResponse resp;
    if (req->resources_size() > 0) core->alter_configs(*req, &resp);
    Writer w = c->begin();
    w.i32(0);
    if (flexible) {
      w.compact_array_len(resources->size());
    } else {
      w.array_len(resources->size());
    }
    for (const Resource& res : *resources) {
      ev1::ErrorCode err = res.error;
      std::string message = res.message;
      if (err == ev1::NONE) {
        err = resp.error_code();
        message = resp.error_message();
        if (err == ev1::NONE) {
          for (const auto& t : resp.resources()) {
            if (t.name() == res.name) {
              err = t.error_code();
              message = t.error_message();
            }
          }
        }
      }
      w.i16(code(err));
      const std::optional<std::string> msg = err == ev1::NONE ? std::nullopt : std::optional<std::string>(message);
      if (flexible) {
        w.compact_nullable_str(msg);
      } else {
        w.nullable_str(msg);
      }
      w.i8(res.type);
      if (flexible) {
        w.compact_str(res.name);
        w.empty_tagged_fields();
      } else {
        w.str(res.name);
      }
    }
    if (flexible) w.empty_tagged_fields();
    c->send(w);
  });
}

void describe_cluster(RequestCore* core, const CallPtr& c, Reader& r) {
  r.boolean();  // include_cluster_authorized_operations
  r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed DescribeCluster request");
  bv1::MetadataRequest mreq;
  mreq.set_no_topics(true);
  bv1::MetadataResponse m;
  core->metadata(mreq, c->conn.listener, true, &m);
  Writer w = c->begin();
  w.i32(0);
  if (!allowed_cluster(core, *c, acl::Operation::kDescribe)) {
    m.clear_brokers();
    m.set_broker_id(-1);
    w.i16(code(ev1::CLUSTER_AUTHORIZATION_FAILED));
    w.compact_nullable_str("not authorized to describe the cluster");
  } else {
    w.i16(0);
    w.compact_nullable_str(std::nullopt);
  }
  w.compact_str(m.cluster_id());
  w.i32(m.broker_id());
  w.compact_array_len(m.brokers_size());
  for (const auto& b : m.brokers()) {
    w.i32(b.broker_id());
    w.compact_str(b.host());
    w.i32(b.port());
    w.compact_nullable_str(b.rack().empty() ? std::nullopt : std::optional<std::string>(b.rack()));
    w.empty_tagged_fields();
  }
  w.i32(kNoAuthorizedOperations);
  w.empty_tagged_fields();
  c->send(w);
}

// ---- InitProducerId (KIP-98; v3+ names the producer's current id and epoch, KIP-360) ---------

void init_producer_id(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<bv1::InitProducerIdRequest>();
  std::optional<std::string> txn = c->flexible ? r.compact_nullable_str() : r.nullable_str();
  if (txn) req->set_transactional_id(*txn);
  req->set_transaction_timeout_ms(r.i32());
  if (c->v() >= 3) {
    req->set_producer_id(r.i64());
    req->set_producer_epoch(r.i16());
  }
  if (c->flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed InitProducerId request");
  // May ask the controller for a block of ids: off the event loop.
  core->run_admin([core, c, req] {
    bv1::InitProducerIdResponse resp;
    // IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
    bool may = !core->authorizer_enabled() || allowed_cluster(core, *c, acl::Operation::kIdempotentWrite);
    if (!may) {
      bv1::MetadataRequest mreq;
      bv1::MetadataResponse m;
      core->metadata(mreq, c->conn.listener, true, &m);
      for (const auto& t : m.topics()) {
        if (allowed_topic(core, *c, acl::Operation::kWrite, t.name())) {
          may = true;
          break;
        }
      }
    }
    if (!may) {
      resp.set_error_code(ev1::CLUSTER_AUTHORIZATION_FAILED);
    } else {
      core->init_producer_id(*req, &resp);
    }
    Writer w = c->begin();
    w.i32(0);
    w.i16(code(resp.error_code()));
    w.i64(resp.error_code() == ev1::NONE ? resp.producer_id() : -1);
    w.i16(static_cast<int16_t>(resp.error_code() == ev1::NONE ? resp.producer_epoch() : -1));
    if (c->flexible) w.empty_tagged_fields();
    c->send(w);
  });
}

// ---- Broker-assigned groups (KIP-848): ConsumerGroupHeartbeat, ConsumerGroupDescribe --------
//
// Kafka names topics by id in these APIs; the coordinator works with names. Both are flexible
// from v0. v1 of the heartbeat adds SubscribedTopicRegex (resolved here against the topics that
// exist now, as ECMAScript regular expressions) and requires the client to choose its member id.

// Topic names and ids, from one metadata image.
struct TopicIds {
  std::map<std::string, std::string> by_id;    // id -> name
  std::map<std::string, std::string> by_name;  // name -> id
};

TopicIds topic_ids(RequestCore* core, const std::string& listener) {
  bv1::MetadataRequest mreq;  // no topics named: every topic
  bv1::MetadataResponse m;
  core->metadata(mreq, listener, true, &m);
  TopicIds ids;
  for (const auto& t : m.topics()) {
    if (t.topic_id().size() != 16) continue;
    ids.by_id[t.topic_id()] = t.name();
    ids.by_name[t.name()] = t.topic_id();
  }
  return ids;
}

void consumer_group_heartbeat(RequestCore* core, const CallPtr& c, Reader& r) {
  bv1::ConsumerGroupHeartbeatRequest req;
  req.set_group_id(r.compact_str());
  req.set_member_id(r.compact_str());
  req.set_member_epoch(r.i32());
  const std::optional<std::string> instance_id = r.compact_nullable_str();
  if (auto rack = r.compact_nullable_str()) req.set_rack_id(*rack);
  req.set_rebalance_timeout_ms(r.i32());
  std::optional<std::vector<std::string>> names;
  if (int32_t n = r.compact_array_len(); n >= 0) {
    names.emplace();
    for (int32_t i = 0; i < n && r.ok(); ++i) names->push_back(r.compact_str());
  }
  std::optional<std::string> regex;
  if (c->v() >= 1) regex = r.compact_nullable_str();
  if (auto assignor = r.compact_nullable_str()) req.set_server_assignor(*assignor);
  std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>> owned;
  if (int32_t n = r.compact_array_len(); n >= 0) {
    owned.emplace();
    for (int32_t i = 0; i < n && r.ok(); ++i) {
      std::string id = r.uuid();
      std::vector<int32_t> parts;
      const int32_t np = r.compact_array_len();
      for (int32_t j = 0; j < np && r.ok(); ++j) parts.push_back(r.i32());
      r.skip_tagged_fields();
      owned->emplace_back(std::move(id), std::move(parts));
    }
  }
  r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed ConsumerGroupHeartbeat request");
  bv1::ConsumerGroupHeartbeatResponse resp;
  auto refuse = [&](ev1::ErrorCode e, std::string why) {
    resp.set_error_code(e);
    resp.set_error_message(std::move(why));
  };
  const TopicIds ids = topic_ids(core, c->conn.listener);
  if (!allowed_group(core, *c, acl::Operation::kRead, req.group_id())) {
    refuse(ev1::GROUP_AUTHORIZATION_FAILED, "not authorized to read group " + req.group_id());
  } else if (c->v() >= 1 && req.member_id().empty()) {
    refuse(ev1::INVALID_REQUEST, "from version 1 on, the client chooses its member id");
  } else if (instance_id) {
    refuse(ev1::INVALID_REQUEST, "static membership (group.instance.id) is not supported with the consumer protocol yet");
  } else {
    std::set<std::string> topics;
    if (names) topics.insert(names->begin(), names->end());
    if (regex) {
      try {
        const std::regex re(*regex, std::regex::ECMAScript);
        for (const auto& [name, id] : ids.by_name) {
          if (name.rfind("__", 0) != 0 && std::regex_match(name, re)) topics.insert(name);
        }
      } catch (const std::regex_error&) {
        refuse(ev1::INVALID_REQUEST, "SubscribedTopicRegex '" + *regex + "' is not a regular expression");
      }
    }
    for (const auto& t : topics) req.add_subscribed_topic_names(t);
    if ((names || regex) && topics.empty() && req.member_epoch() != 0) {
      // An empty subscription is not "unchanged": say so by subscribing to no existing topic.
      req.add_subscribed_topic_names("");
    }
    if (owned) {
      auto* set = req.mutable_owned();
      for (const auto& [id, parts] : *owned) {
        auto it = ids.by_id.find(id);
        if (it == ids.by_id.end()) continue;  // a topic deleted meanwhile: nothing to give up
        auto* t = set->add_topics();
        t->set_topic(it->second);
        for (int32_t p : parts) t->add_partitions(p);
      }
    }
    if (resp.error_code() == ev1::NONE) core->groups()->consumer_group_heartbeat(req, c->conn.client_host, &resp);
  }
  Writer w = c->begin();
  w.i32(0);  // throttle_time_ms
  w.i16(code(resp.error_code()));
  w.compact_nullable_str(resp.error_code() == ev1::NONE ? std::nullopt : std::optional<std::string>(resp.error_message()));
  w.compact_nullable_str(resp.member_id().empty() ? std::nullopt : std::optional<std::string>(resp.member_id()));
  w.i32(resp.member_epoch());
  w.i32(resp.heartbeat_interval_ms());
  if (!resp.has_assignment()) {
    w.i8(-1);
  } else {
    w.i8(1);
    std::vector<const bv1::TopicPartitions*> known;
    for (const auto& t : resp.assignment().topics()) {
      if (ids.by_name.count(t.topic())) known.push_back(&t);
    }
    w.compact_array_len(known.size());
    for (const auto* t : known) {
      w.uuid(ids.by_name.at(t->topic()));
      w.compact_array_len(static_cast<size_t>(t->partitions_size()));
      for (int32_t p : t->partitions()) w.i32(p);
      w.empty_tagged_fields();
    }
    w.empty_tagged_fields();
  }
  w.empty_tagged_fields();
  c->send(w);
}

void consumer_group_describe(RequestCore* core, const CallPtr& c, Reader& r) {
  bv1::ConsumerGroupDescribeRequest req;
  const int32_t n = r.compact_array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) req.add_group_ids(r.compact_str());
  r.boolean();  // include_authorized_operations
  r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed ConsumerGroupDescribe request");
  bv1::ConsumerGroupDescribeResponse resp;
  core->groups()->consumer_group_describe(req, &resp);
  for (auto& g : *resp.mutable_groups()) {
    if (allowed_group(core, *c, acl::Operation::kDescribe, g.group_id())) continue;
    const std::string id = g.group_id();
    g.Clear();
    g.set_group_id(id);
    g.set_error_code(ev1::GROUP_AUTHORIZATION_FAILED);
    g.set_error_message("not authorized to describe group " + id);
  }
  const TopicIds ids = topic_ids(core, c->conn.listener);
  auto assignment = [&](Writer& w, const google::protobuf::RepeatedPtrField<bv1::TopicPartitions>& tps) {
    w.compact_array_len(static_cast<size_t>(tps.size()));
    for (const auto& t : tps) {
      auto it = ids.by_name.find(t.topic());
      w.uuid(it == ids.by_name.end() ? std::string() : it->second);
      w.compact_str(t.topic());
      w.compact_array_len(static_cast<size_t>(t.partitions_size()));
      for (int32_t p : t.partitions()) w.i32(p);
      w.empty_tagged_fields();
    }
    w.empty_tagged_fields();
  };
  Writer w = c->begin();
  w.i32(0);
  w.compact_array_len(static_cast<size_t>(resp.groups_size()));
  for (const auto& g : resp.groups()) {
    w.i16(code(g.error_code()));
    w.compact_nullable_str(g.error_code() == ev1::NONE ? std::nullopt : std::optional<std::string>(g.error_message()));
    w.compact_str(g.group_id());
    w.compact_str(g.state().empty() ? "Dead" : g.state());
    w.i32(g.group_epoch());
    w.i32(g.assignment_epoch());
    w.compact_str(g.assignor_name());
    w.compact_array_len(static_cast<size_t>(g.members_size()));
    for (const auto& m : g.members()) {
      w.compact_str(m.member_id());
      w.compact_nullable_str(std::nullopt);  // instance id
      w.compact_nullable_str(m.rack_id().empty() ? std::nullopt : std::optional<std::string>(m.rack_id()));
      w.i32(m.member_epoch());
      w.compact_str(m.client_id());
      w.compact_str(m.client_host());
      w.compact_array_len(static_cast<size_t>(m.subscribed_topic_names_size()));
      for (const auto& t : m.subscribed_topic_names()) w.compact_str(t);
      w.compact_nullable_str(std::nullopt);  // subscribed regex (resolved at the heartbeat)
      assignment(w, m.assignment());
      assignment(w, m.target_assignment());
      if (c->v() >= 1) w.i8(1);  // member type: consumer
      w.empty_tagged_fields();
    }
    w.i32(kNoAuthorizedOperations);
    w.empty_tagged_fields();
  }
  w.empty_tagged_fields();
  c->send(w);
}

// ---- SASL (SaslHandshake, SaslAuthenticate; SCRAM credentials, KIP-554) ------------------------

struct SaslStep {
  ev1::ErrorCode error = ev1::NONE;
  std::string message;
  std::string token;  // the server's answer to the client's token
};

// One step of the exchange the handshake chose; on success with nothing left to say, the session
// is authenticated.
SaslStep sasl_step(RequestCore* core, Session& s, const std::string& token) {
  SaslStep out;
  auto fail = [&](std::string message) {
    out.error = ev1::SASL_AUTHENTICATION_FAILED;
    out.message = std::move(message);
    out.token.clear();
    return out;
  };
  if (s.mechanism == "PLAIN") {
    std::string user, password;
    if (!scram::parse_plain(token, &user, &password)) return fail("Authentication failed: invalid SASL/PLAIN message");
    // The password is checked against the user's SCRAM credential.
    if (!core->password_ok(user, password)) return fail("Authentication failed: Invalid username or password");
    s.state = Session::Sasl::kDone;
    s.principal = "User:" + user;
    return out;
  }
  const scram::Mechanism m = scram::mechanism_from_name(s.mechanism);
  if (!s.exchange) {
    auto server = std::make_shared<scram::ScramServer>(m);
    std::string error;
    if (!server->client_first(token, &error)) return fail(error);
    auto cred = core->scram_credential(server->user(), static_cast<int32_t>(m));
    scram::Credential c;
    if (cred) c = {cred->salt, cred->stored_key, cred->server_key, cred->iterations};
    out.token = server->server_first(c, cred.has_value());
    s.exchange = server;
    return out;
  }
  auto* server = static_cast<scram::ScramServer*>(s.exchange.get());
  std::string error;
  auto final = server->client_final(token, &error);
  if (!final) return fail(error);
  s.state = Session::Sasl::kDone;
  s.principal = "User:" + server->user();
  s.exchange.reset();
  out.token = *final;
  return out;
}

void sasl_handshake(const CallPtr& c, Reader& r) {
  const std::string mechanism = r.str();
  if (!r.ok()) return c->close("malformed SaslHandshake request");
  Session* s = c->conn.session.get();
  const std::vector<std::string> enabled = s && s->sasl ? s->mechanisms : std::vector<std::string>{};
  Writer w = c->begin();
  auto finish = [&](ev1::ErrorCode e, const char* why) {
    w.i16(code(e));
    w.array_len(enabled.size());
    for (const std::string& m : enabled) w.str(m);
    if (e == ev1::NONE) return c->send(w);
    // On a listener without SASL the connection stays; on a SASL listener a wrong step ends it.
    if (!s || !s->sasl) return c->send(w);
    c->send_and_close(w, why);
  };
  if (!s || !s->sasl || s->state != Session::Sasl::kHandshake) {
    return finish(ev1::ILLEGAL_SASL_STATE, "SaslHandshake out of order");
  }
  if (std::find(enabled.begin(), enabled.end(), mechanism) == enabled.end()) {
    return finish(ev1::UNSUPPORTED_SASL_MECHANISM, "unsupported SASL mechanism");
  }
  s->mechanism = mechanism;
  s->state = c->v() == 0 ? Session::Sasl::kRawTokens : Session::Sasl::kAuthenticate;
  finish(ev1::NONE, "");
}

void sasl_authenticate(RequestCore* core, const CallPtr& c, Reader& r) {
  const std::string token = c->flexible ? r.compact_bytes() : r.bytes();
  if (c->flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed SaslAuthenticate request");
  Session* s = c->conn.session.get();
  SaslStep step;
  if (!s || !s->sasl || s->state != Session::Sasl::kAuthenticate) {
    step.error = ev1::ILLEGAL_SASL_STATE;
    step.message = s && s->sasl && s->state == Session::Sasl::kDone
                       ? "SaslAuthenticate after authentication finished"
                       : "SaslAuthenticate without a SaslHandshake first";
  } else {
    step = sasl_step(core, *s, token);
  }
  Writer w = c->begin();
  w.i16(code(step.error));
  if (c->flexible) {
    w.compact_nullable_str(step.error == ev1::NONE ? std::nullopt : std::optional<std::string>(step.message));
    w.compact_str(step.token);
  } else {
    error_message(w, step.error, step.message);
    w.bytes(step.token);
  }
  if (c->v() >= 1) w.i64(0);  // session_lifetime_ms: no re-authentication (KIP-368) required
  if (c->flexible) w.empty_tagged_fields();
  if (step.error == ev1::NONE) return c->send(w);
  if (!s || !s->sasl) return c->send(w);
  c->send_and_close(w, "SASL authentication failed: " + step.message);
}

// DescribeUserScramCredentials v0 (flexible): null users = every user.
void describe_user_scram_credentials(RequestCore* core, const CallPtr& c, Reader& r) {
  cv1::DescribeUserScramCredentialsRequest req;
  const int32_t n = r.compact_array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    req.add_users(r.compact_str());
    r.skip_tagged_fields();
  }
  r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed DescribeUserScramCredentials request");
  cv1::DescribeUserScramCredentialsResponse resp;
  const bool may = allowed_cluster(core, *c, acl::Operation::kDescribe);
  if (n != 0 && may) core->describe_user_scram_credentials(req, &resp);  // an empty list describes no one
  Writer w = c->begin();
  w.i32(0);
  w.i16(may ? 0 : code(ev1::CLUSTER_AUTHORIZATION_FAILED));
  w.compact_nullable_str(may ? std::nullopt : std::optional<std::string>("not authorized to describe users"));
  w.compact_array_len(resp.results_size());
  for (const auto& u : resp.results()) {
    w.compact_str(u.user());
    w.i16(static_cast<int16_t>(u.error_code()));
    w.compact_nullable_str(u.error_code() == ev1::NONE ? std::nullopt : std::optional<std::string>(u.error_message()));
    w.compact_array_len(u.credentials_size());
    for (const auto& info : u.credentials()) {
      w.i8(static_cast<int8_t>(info.mechanism()));
      w.i32(info.iterations());
      w.empty_tagged_fields();
    }
    w.empty_tagged_fields();
  }
  w.empty_tagged_fields();
  c->send(w);
}

// AlterUserScramCredentials v0 (flexible), forwarded to the active controller.
void alter_user_scram_credentials(RequestCore* core, const CallPtr& c, Reader& r) {
  auto req = std::make_shared<cv1::AlterUserScramCredentialsRequest>();
  int32_t n = r.compact_array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* d = req->add_deletions();
    d->set_name(r.compact_str());
    d->set_mechanism(r.i8());
    r.skip_tagged_fields();
  }
  n = r.compact_array_len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* u = req->add_upsertions();
    u->set_name(r.compact_str());
    u->set_mechanism(r.i8());
    u->set_iterations(r.i32());
    u->set_salt(r.compact_bytes());
    u->set_salted_password(r.compact_bytes());
    r.skip_tagged_fields();
  }
  r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed AlterUserScramCredentials request");
  core->run_admin([core, c, req] {
    cv1::AlterUserScramCredentialsResponse resp;
    if (!allowed_cluster(core, *c, acl::Operation::kAlter)) {
      resp.set_error_code(ev1::CLUSTER_AUTHORIZATION_FAILED);
      resp.set_error_message("not authorized to alter users");
    } else if (req->deletions_size() + req->upsertions_size() > 0) {
      core->alter_user_scram_credentials(*req, &resp);
    }
    // A request-level error (no controller) is every user's.
    std::vector<std::string> users;
    for (const auto& d : req->deletions()) users.push_back(d.name());
    for (const auto& u : req->upsertions()) users.push_back(u.name());
    Writer w = c->begin();
    w.i32(0);
    if (resp.error_code() != ev1::NONE) {
      std::set<std::string> seen;
      std::vector<std::string> unique;
      for (const auto& u : users) {
        if (seen.insert(u).second) unique.push_back(u);
      }
      w.compact_array_len(unique.size());
      for (const auto& u : unique) {
        w.compact_str(u);
        w.i16(static_cast<int16_t>(resp.error_code()));
        w.compact_nullable_str(resp.error_message());
        w.empty_tagged_fields();
      }
    } else {
      w.compact_array_len(resp.results_size());
      for (const auto& res : resp.results()) {
        w.compact_str(res.user());
        w.i16(static_cast<int16_t>(res.error_code()));
        w.compact_nullable_str(res.error_code() == ev1::NONE ? std::nullopt
                                                            : std::optional<std::string>(res.error_message()));
        w.empty_tagged_fields();
      }
    }
    w.empty_tagged_fields();
    c->send(w);
  });
}

// ---- ACLs: CreateAcls, DescribeAcls, DeleteAcls (v1-3; flexible from 2) -------------------------

struct AclCodec {
  Reader& r;
  bool flex;
  std::string str() { return flex ? r.compact_str() : r.str(); }
  std::optional<std::string> nstr() { return flex ? r.compact_nullable_str() : r.nullable_str(); }
  int32_t len() { return flex ? r.compact_array_len() : r.array_len(); }
  cv1::AclFilter filter() {
    cv1::AclFilter f;
    f.set_resource_type(r.i8());
    if (auto n = nstr()) f.set_resource_name(*n);
    f.set_pattern_type(r.i8());
    if (auto p = nstr()) f.set_principal(*p);
    if (auto h = nstr()) f.set_host(*h);
    f.set_operation(r.i8());
    f.set_permission_type(r.i8());
    return f;
  }
};

void put_str(Writer& w, bool flex, const std::string& s) { flex ? w.compact_str(s) : w.str(s); }
void put_nstr(Writer& w, bool flex, ev1::ErrorCode e, const std::string& s) {
  if (flex) return w.compact_nullable_str(e == ev1::NONE ? std::nullopt : std::optional<std::string>(s));
  error_message(w, e, s);
}
void put_len(Writer& w, bool flex, size_t n) { flex ? w.compact_array_len(n) : w.array_len(n); }

// SECURITY_DISABLED without an authorizer; CLUSTER_AUTHORIZATION_FAILED without `op` on the cluster.
ev1::ErrorCode acl_api_error(RequestCore* core, const Call& c, acl::Operation op, std::string* message) {
  if (!core->authorizer_enabled()) {
    *message = "no authorizer is configured (authorizer.class.name)";
    return ev1::SECURITY_DISABLED;
  }
  if (!allowed_cluster(core, c, op)) {
    *message = "not authorized to " + std::string(op == acl::Operation::kAlter ? "alter" : "describe") + " ACLs";
    return ev1::CLUSTER_AUTHORIZATION_FAILED;
  }
  return ev1::NONE;
}

void describe_acls(RequestCore* core, const CallPtr& c, Reader& r) {
  AclCodec in{r, c->flexible};
  cv1::DescribeAclsRequest req;
  *req.mutable_filter() = in.filter();
  if (c->flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed DescribeAcls request");
  std::string message;
  ev1::ErrorCode e = acl_api_error(core, *c, acl::Operation::kDescribe, &message);
  cv1::DescribeAclsResponse resp;
  if (e == ev1::NONE) core->describe_acls(req, &resp);
  // Grouped by resource pattern, as Kafka answers.
  std::map<std::tuple<int32_t, std::string, int32_t>, std::vector<const cv1::AclBinding*>> by_resource;
  for (const auto& b : resp.acls()) by_resource[{b.resource_type(), b.resource_name(), b.pattern_type()}].push_back(&b);
  const bool flex = c->flexible;
  Writer w = c->begin();
  w.i32(0);
  w.i16(code(e));
  put_nstr(w, flex, e, message);
  put_len(w, flex, by_resource.size());
  for (const auto& [res, bindings] : by_resource) {
    w.i8(static_cast<int8_t>(std::get<0>(res)));
    put_str(w, flex, std::get<1>(res));
    w.i8(static_cast<int8_t>(std::get<2>(res)));
    put_len(w, flex, bindings.size());
    for (const cv1::AclBinding* b : bindings) {
      put_str(w, flex, b->principal());
      put_str(w, flex, b->host());
      w.i8(static_cast<int8_t>(b->operation()));
      w.i8(static_cast<int8_t>(b->permission_type()));
      if (flex) w.empty_tagged_fields();
    }
    if (flex) w.empty_tagged_fields();
  }
  if (flex) w.empty_tagged_fields();
  c->send(w);
}

void create_acls(RequestCore* core, const CallPtr& c, Reader& r) {
  AclCodec in{r, c->flexible};
  auto req = std::make_shared<cv1::CreateAclsRequest>();
  const int32_t n = in.len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    auto* b = req->add_creations();
    b->set_resource_type(r.i8());
    b->set_resource_name(in.str());
    b->set_pattern_type(r.i8());
    b->set_principal(in.str());
    b->set_host(in.str());
    b->set_operation(r.i8());
    b->set_permission_type(r.i8());
    if (c->flexible) r.skip_tagged_fields();
  }
  if (c->flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed CreateAcls request");
  core->run_admin([core, c, req] {
    std::string message;
    const ev1::ErrorCode e = acl_api_error(core, *c, acl::Operation::kAlter, &message);
    cv1::CreateAclsResponse resp;
    if (e == ev1::NONE && req->creations_size() > 0) core->create_acls(*req, &resp);
    const bool flex = c->flexible;
    Writer w = c->begin();
    w.i32(0);
    put_len(w, flex, req->creations_size());
    for (int i = 0; i < req->creations_size(); ++i) {
      ev1::ErrorCode ie = e;
      std::string im = message;
      if (ie == ev1::NONE && resp.error_code() != ev1::NONE) {
        ie = resp.error_code();
        im = resp.error_message();
      } else if (ie == ev1::NONE && i < resp.results_size()) {
        ie = resp.results(i).error_code();
        im = resp.results(i).error_message();
      }
      w.i16(code(ie));
      put_nstr(w, flex, ie, im);
      if (flex) w.empty_tagged_fields();
    }
    if (flex) w.empty_tagged_fields();
    c->send(w);
  });
}

void delete_acls(RequestCore* core, const CallPtr& c, Reader& r) {
  AclCodec in{r, c->flexible};
  auto req = std::make_shared<cv1::DeleteAclsRequest>();
  const int32_t n = in.len();
  for (int32_t i = 0; i < n && r.ok(); ++i) {
    *req->add_filters() = in.filter();
    if (c->flexible) r.skip_tagged_fields();
  }
  if (c->flexible) r.skip_tagged_fields();
  if (!r.ok()) return c->close("malformed DeleteAcls request");
  core->run_admin([core, c, req] {
    std::string message;
    const ev1::ErrorCode e = acl_api_error(core, *c, acl::Operation::kAlter, &message);
    cv1::DeleteAclsResponse resp;
    if (e == ev1::NONE && req->filters_size() > 0) core->delete_acls(*req, &resp);
    const bool flex = c->flexible;
    Writer w = c->begin();
    w.i32(0);
    put_len(w, flex, req->filters_size());
    for (int i = 0; i < req->filters_size(); ++i) {
      ev1::ErrorCode fe = e != ev1::NONE ? e : resp.error_code();
      std::string fm = e != ev1::NONE ? message : resp.error_message();
      const cv1::DeleteAclsResponse::FilterResult* fr = nullptr;
      if (fe == ev1::NONE && i < resp.filter_results_size()) {
        fr = &resp.filter_results(i);
        fe = fr->error_code();
        fm = fr->error_message();
      }
      w.i16(code(fe));
      put_nstr(w, flex, fe, fm);
      put_len(w, flex, fr ? fr->matching_size() : 0);
      if (fr) {
        for (const auto& b : fr->matching()) {
          w.i16(0);
          put_nstr(w, flex, ev1::NONE, "");
          w.i8(static_cast<int8_t>(b.resource_type()));
          put_str(w, flex, b.resource_name());
          w.i8(static_cast<int8_t>(b.pattern_type()));
          put_str(w, flex, b.principal());
          put_str(w, flex, b.host());
          w.i8(static_cast<int8_t>(b.operation()));
          w.i8(static_cast<int8_t>(b.permission_type()));
          if (flex) w.empty_tagged_fields();
        }
      }
      if (flex) w.empty_tagged_fields();
    }
    if (flex) w.empty_tagged_fields();
    c->send(w);
  });
}

}  // namespace

const std::vector<ApiRange>& supported_apis() {
  static const std::vector<ApiRange> apis = {
      {kProduce, 3, 7, 9, "Produce"},
      {kFetch, 4, 11, 12, "Fetch"},
      {kListOffsets, 1, 3, 6, "ListOffsets"},
      {kMetadata, 1, 8, 9, "Metadata"},
      {kOffsetCommit, 2, 9, 8, "OffsetCommit"},
      {kOffsetFetch, 1, 9, 6, "OffsetFetch"},
      {kFindCoordinator, 0, 2, 3, "FindCoordinator"},
      {kJoinGroup, 0, 5, 6, "JoinGroup"},
      {kHeartbeat, 0, 3, 4, "Heartbeat"},
      {kLeaveGroup, 0, 3, 4, "LeaveGroup"},
      {kSyncGroup, 0, 3, 4, "SyncGroup"},
      {kDescribeGroups, 0, 4, 5, "DescribeGroups"},
      {kListGroups, 0, 2, 3, "ListGroups"},
      {kApiVersions, 0, 3, 3, "ApiVersions"},
      {kCreateTopics, 2, 4, 5, "CreateTopics"},
      {kDeleteTopics, 0, 1, 4, "DeleteTopics"},
      {kInitProducerId, 0, 4, 2, "InitProducerId"},
      {kDescribeConfigs, 0, 2, 4, "DescribeConfigs"},
      {kAlterConfigs, 0, 1, 2, "AlterConfigs"},
      {kCreatePartitions, 0, 1, 2, "CreatePartitions"},
      {kDeleteGroups, 0, 1, 2, "DeleteGroups"},
      {kIncrementalAlterConfigs, 0, 1, 1, "IncrementalAlterConfigs"},
      {kDescribeCluster, 0, 0, 0, "DescribeCluster"},
      {kConsumerGroupHeartbeat, 0, 1, 0, "ConsumerGroupHeartbeat"},
      {kConsumerGroupDescribe, 0, 1, 0, "ConsumerGroupDescribe"},
      {kSaslHandshake, 0, 1, 2, "SaslHandshake"},
      {kSaslAuthenticate, 0, 2, 2, "SaslAuthenticate"},
      {kDescribeUserScramCredentials, 0, 0, 0, "DescribeUserScramCredentials"},
      {kAlterUserScramCredentials, 0, 0, 0, "AlterUserScramCredentials"},
      {kDescribeAcls, 1, 3, 2, "DescribeAcls"},
      {kCreateAcls, 1, 3, 2, "CreateAcls"},
      {kDeleteAcls, 1, 3, 2, "DeleteAcls"},
  };
  return apis;
}

const ApiRange* find_api(int16_t key) {
  for (const ApiRange& a : supported_apis()) {
    if (a.key == key) return &a;
  }
  return nullptr;
}

bool KafkaApi::parse_header(const std::string& frame, RequestHeader* header, size_t* body_offset) {
  Reader r(frame);
  header->api_key = r.i16();
  header->api_version = r.i16();
  header->correlation_id = r.i32();
  // The client id is a nullable INT16 string in every header version (also v2, KIP-482).
  header->client_id = r.nullable_str();
  if (!r.ok()) return false;
  const ApiRange* api = find_api(header->api_key);
  if (api && header->api_version >= api->first_flexible && header->api_version <= api->max_version) {
    r.skip_tagged_fields();
    if (!r.ok()) return false;
  }
  *body_offset = frame.size() - r.remaining();
  return true;
}

void KafkaApi::handle(std::string frame, const ConnectionInfo& conn, std::function<void(Answer)> answer) {
  auto c = std::make_shared<Call>();
  c->conn = conn;
  c->answer = std::move(answer);
  Session* session = conn.session.get();
  if (session && session->state == Session::Sasl::kRawTokens) {
    // After SaslHandshake v0 the client's frames are bare SASL tokens, answered bare (no header).
    SaslStep step = sasl_step(core_, *session, frame);
    if (step.error != ev1::NONE) return c->close("SASL authentication failed: " + step.message);
    Answer a;
    a.chunks.push_back(Chunk{std::move(step.token), nullptr, 0, 0, nullptr});
    return c->answer(std::move(a));
  }
  size_t body = 0;
  if (!parse_header(frame, &c->header, &body)) return c->close("truncated request header");
  const ApiRange* api = find_api(c->header.api_key);
  if (!api) return c->close("unknown API key " + std::to_string(c->header.api_key));
  if (session && !session->authenticated() && c->header.api_key != kApiVersions &&
      c->header.api_key != kSaslHandshake && c->header.api_key != kSaslAuthenticate) {
    return c->close(std::string(api->name) + " before SASL authentication finished");
  }
  if (c->header.api_version < api->min_version || c->header.api_version > api->max_version) {
    if (c->header.api_key == kApiVersions) {
      // KIP-511: a v0 answer naming UNSUPPORTED_VERSION and our ranges; the client asks again.
      Writer w;
      w.i32(c->header.correlation_id);
      write_api_versions(w, 0, code(ev1::UNSUPPORTED_VERSION));
      return c->send(w);  // (begin() is not used: the header is v0 whatever the version)
    }
    return c->close(std::string(api->name) + " v" + std::to_string(c->header.api_version) + " is not supported");
  }
  c->flexible = c->header.api_version >= api->first_flexible;
  if (c->header.api_key >= 0 && c->header.api_key < kMaxApiKey) {
    // Timed until its answer goes to the connection, whichever thread completes it.
    c->answer = [this, key = c->header.api_key, start = std::chrono::steady_clock::now(),
                 inner = std::move(c->answer)](Answer a) {
      observe(key, std::chrono::steady_clock::now() - start, a.kind == Answer::kClose);
      inner(std::move(a));
    };
  }
  Reader r(frame.data() + body, frame.size() - body);
  switch (c->header.api_key) {
    case kApiVersions: return api_versions(c, r);
    case kMetadata: return metadata(core_, c, r);
    case kProduce: return produce(core_, c, r);
    case kFetch: return fetch(core_, c, r);
    case kListOffsets: return list_offsets(core_, c, r);
    case kFindCoordinator: return find_coordinator(core_, c, r);
    case kJoinGroup: return join_group(core_, c, r);
    case kSyncGroup: return sync_group(core_, c, r);
    case kHeartbeat: return heartbeat(core_, c, r);
    case kLeaveGroup: return leave_group(core_, c, r);
    case kOffsetCommit: return offset_commit(core_, c, r);
    case kOffsetFetch: return offset_fetch(core_, c, r);
    case kDescribeGroups: return describe_groups(core_, c, r);
    case kListGroups: return list_groups(core_, c, r);
    case kDeleteGroups: return delete_groups(core_, c, r);
    case kCreateTopics: return create_topics(core_, c, r);
    case kDeleteTopics: return delete_topics(core_, c, r);
    case kCreatePartitions: return create_partitions(core_, c, r);
    case kDescribeConfigs: return describe_configs(core_, c, r);
    case kAlterConfigs: return alter_configs(core_, c, r, false);
    case kIncrementalAlterConfigs: return alter_configs(core_, c, r, true);
    case kDescribeCluster: return describe_cluster(core_, c, r);
    case kConsumerGroupHeartbeat: return consumer_group_heartbeat(core_, c, r);
    case kConsumerGroupDescribe: return consumer_group_describe(core_, c, r);
    case kInitProducerId: return init_producer_id(core_, c, r);
    case kSaslHandshake: return sasl_handshake(c, r);
    case kSaslAuthenticate: return sasl_authenticate(core_, c, r);
    case kDescribeUserScramCredentials: return describe_user_scram_credentials(core_, c, r);
    case kAlterUserScramCredentials: return alter_user_scram_credentials(core_, c, r);
    case kDescribeAcls: return describe_acls(core_, c, r);
    case kCreateAcls: return create_acls(core_, c, r);
    case kDeleteAcls: return delete_acls(core_, c, r);
    default: return c->close("unhandled API key");
  }
}

void KafkaApi::observe(int16_t key, std::chrono::steady_clock::duration took, bool closed) {
  ApiStats& st = stats_[static_cast<size_t>(key)];
  st.answered.fetch_add(1, std::memory_order_relaxed);
  if (closed) st.closed.fetch_add(1, std::memory_order_relaxed);
  st.latency.record(took);
}

std::string KafkaApi::metrics_text() const {
  std::string requests = "# HELP gannet_kafka_requests_total Requests answered on the Kafka listener, by API.\n"
                         "# TYPE gannet_kafka_requests_total counter\n";
  std::string refused = "# HELP gannet_kafka_requests_refused_total Requests answered by closing the connection "
                        "(malformed, unsupported), by API.\n# TYPE gannet_kafka_requests_refused_total counter\n";
  std::string hist = "# HELP gannet_kafka_request_duration_seconds From a Kafka request's frame to its answer, by API.\n"
                     "# TYPE gannet_kafka_request_duration_seconds histogram\n";
  for (const ApiRange& api : supported_apis()) {
    if (api.key < 0 || api.key >= kMaxApiKey) continue;
    const ApiStats& st = stats_[static_cast<size_t>(api.key)];
    const std::string l = std::string("api=\"") + api.name + "\"";
    requests += "gannet_kafka_requests_total{" + l + "} " + std::to_string(st.answered.load()) + "\n";
    refused += "gannet_kafka_requests_refused_total{" + l + "} " + std::to_string(st.closed.load()) + "\n";
    st.latency.render("gannet_kafka_request_duration_seconds", l, &hist);
  }
  return requests + refused + hist;
}

}  // namespace gannet::broker::kafka
