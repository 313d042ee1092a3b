#include "client/producer.h"

#include <stdexcept>

#include <algorithm>
#include <chrono>
#include <grpcpp/grpcpp.h>

namespace gannet::client {

using gannet::v1::ErrorCode;

// ---- Connection: one ProduceStream to a leader ---------------------------------------------------
//
// Requests are written one at a time (gRPC allows one write outstanding), queued behind each
// other; answers are matched to requests by correlation id, as they come. gRPC runs the
// reactions (OnWriteDone, OnReadDone, OnDone) on its own threads. A hold keeps the stream open
// for writes started from outside a reaction; it is let go when the stream fails or closes, and
// after that nothing new is written. OnDone fails whatever was still unanswered.
class Producer::Connection final : public grpc::ClientBidiReactor<bv1::ProduceRequest, bv1::ProduceResponse> {
 public:
  Connection(Producer* p, bv1::Broker::Stub* stub)
      : p_(p), max_in_flight_(static_cast<size_t>(std::max(1, p->config_.max_in_flight_requests))) {
    stub->async()->ProduceStream(&ctx_, this);
    AddHold();
    StartRead(&resp_);
    StartCall();
  }

  // Queues `r` for writing; false (and `r` untouched) if the stream has failed.
  bool send(std::unique_ptr<Request>& r) {
    Request* first = nullptr;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (failed_) return false;
      r->req.set_correlation_id(++next_id_);
      r->sent_ms = p_->now_ms();
      Request* raw = r.get();
      pending_.emplace(next_id_, std::move(r));
      unwritten_.push_back(raw);
      if (writing_) return true;
      writing_ = true;
      first = raw;
      AddHold();  // the base hold is still ours (failed_ is false): the stream cannot finish here
    }
    StartWrite(&first->req);
    RemoveHold();
    return true;
  }

  // max_in_flight_requests are unanswered: the next request waits.
  bool full() const {
    std::lock_guard<std::mutex> l(mu_);
    return pending_.size() >= max_in_flight_;
  }
  bool failed() const {
    std::lock_guard<std::mutex> l(mu_);
    return failed_;
  }
  bool done() const {
    std::lock_guard<std::mutex> l(mu_);
    return done_;
  }
  // When the oldest unanswered request was sent (-1: none).
  int64_t oldest_sent_ms() const {
    std::lock_guard<std::mutex> l(mu_);
    int64_t oldest = -1;
    for (const auto& [id, r] : pending_) {
      if (oldest < 0 || r->sent_ms < oldest) oldest = r->sent_ms;
    }
    return oldest;
  }
  // Gives the stream up: what is unanswered fails (and is retried by the producer).
  void cancel() {
    {
      std::lock_guard<std::mutex> l(mu_);
      cancelled_ = true;
    }
    ctx_.TryCancel();
  }
  bool cancelled() const {
    std::lock_guard<std::mutex> l(mu_);
    return cancelled_;
  }
  // Ends the stream cleanly (nothing is in flight: the producer flushed): no more writes.
  void half_close() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (failed_ || writing_ || half_closed_) return;
      half_closed_ = true;
      AddHold();
    }
    StartWritesDone();
    RemoveHold();
  }
  // Waits up to `timeout_ms` for the broker to end its side, cancels the stream after that;
  // returns once gRPC is done with it.
  void wait_closed(int64_t timeout_ms) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return done_; })) {
      l.unlock();
      ctx_.TryCancel();
      l.lock();
      cv_.wait(l, [&] { return done_; });
    }
  }

  void OnWriteDone(bool ok) override {
    Request* next = nullptr;
    std::unique_ptr<Request> finished;  // acks=0 (written is done), or already answered
    {
      std::lock_guard<std::mutex> l(mu_);
      Request* written = unwritten_.front();
      unwritten_.pop_front();
      if (ok && (written->req.acks() == 0 || written->early_answer)) {
        auto it = pending_.find(written->req.correlation_id());
        finished = std::move(it->second);
        pending_.erase(it);
      }
      if (ok && !unwritten_.empty()) {
        next = unwritten_.front();
      } else {
        writing_ = false;
      }
    }
    if (next) StartWrite(&next->req);
    if (!ok) fail();
    if (finished) p_->handle_response(*finished, grpc::Status::OK, finished->early_answer.get());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      fail();
      return;
    }
    auto resp = std::make_unique<bv1::ProduceResponse>();
    resp->Swap(&resp_);
    std::unique_ptr<Request> r;
    bool known = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pending_.find(resp->correlation_id());
      if (it != pending_.end() && !it->second->early_answer) {
        known = true;
        if (std::find(unwritten_.begin(), unwritten_.end(), it->second.get()) != unwritten_.end()) {
          // Answered before OnWriteDone: the request is gRPC's until then; OnWriteDone handles it.
          it->second->early_answer = std::move(resp);
        } else {
          r = std::move(it->second);
          pending_.erase(it);
        }
      }
    }
    if (!known) {
      // An answer to nothing we sent: the stream cannot be trusted.
      ctx_.TryCancel();
      fail();
      return;
    }
    StartRead(&resp_);  // the next answer may come while this one is handled
    if (r) p_->handle_response(*r, grpc::Status::OK, resp.get());
  }

  void OnDone(const grpc::Status& s) override {
    std::map<int64_t, std::unique_ptr<Request>> unanswered;
    {
      std::lock_guard<std::mutex> l(mu_);
      failed_ = true;
      unanswered.swap(pending_);
      unwritten_.clear();
    }
    const grpc::Status st = s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended") : s;
    for (auto& [id, r] : unanswered) p_->handle_response(*r, st, nullptr);
    p_->cv_.notify_one();  // the sender may open a new stream for what is retried
    // Last: once done_ is seen, this Connection (and the Producer) may be destroyed at once.
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  // The stream is broken (or closing): let go of the base hold so gRPC can finish it.
  void fail() {
    bool release = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      failed_ = true;
      release = !hold_released_;
      hold_released_ = true;
    }
    if (release) RemoveHold();
  }

  Producer* const p_;
  const size_t max_in_flight_;
  grpc::ClientContext ctx_;
  bv1::ProduceResponse resp_;  // the read in progress
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_id_ = 0;
  std::map<int64_t, std::unique_ptr<Request>> pending_;  // sent or queued, not answered
  std::deque<Request*> unwritten_;                        // of pending_, in write order
  bool writing_ = false;
  bool failed_ = false;
  bool hold_released_ = false;
  bool half_closed_ = false;
  bool cancelled_ = false;  // given up for a late answer
  bool done_ = false;
};

namespace {

bool resolve_idempotence(const ProducerConfig& c) {
  const bool compatible = c.acks == -1 && c.max_in_flight_requests <= 5;
  if (!c.enable_idempotence) return compatible;
  if (*c.enable_idempotence && !compatible) {
    throw std::invalid_argument("enable.idempotence=true needs acks=all (-1) and at most 5 requests in flight");
  }
  return *c.enable_idempotence;
}

// A partition's request carries at most this many batches with idempotence: the broker keeps
// a producer's last five, so a retry of all of them is recognised as duplicates.
constexpr int kMaxIdempotentBatchesPerRequest = 5;

}  // namespace

Producer::Producer(ProducerConfig config)
    : config_(std::move(config)),
      idempotent_(resolve_idempotence(config_)),
      partitioner_(config_.partitioner ? config_.partitioner : std::make_shared<DefaultPartitioner>()),
      metadata_(config_.bootstrap_servers) {
  sender_ = std::thread([this] { sender_loop(); });
}

Producer::~Producer() { close(); }

int64_t Producer::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Producer::init_producer_id() {
  for (size_t i = 0; i < 3; ++i) {
    bv1::Broker::Stub* stub = metadata_.any_broker(i);
    if (!stub) return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(config_.request_timeout_ms));
    bv1::InitProducerIdRequest req;
    bv1::InitProducerIdResponse resp;
    grpc::Status st = stub->InitProducerId(&ctx, req, &resp);
    if (st.ok() && resp.error_code() == gannet::v1::NONE && resp.producer_id() >= 0) {
      std::lock_guard<std::mutex> l(mu_);
      producer_id_ = resp.producer_id();
      return true;
    }
  }
  return false;
}

void Producer::stamp(Batch& b) {
  int64_t pid;
  int16_t epoch;
  int32_t seq;
  {
    std::lock_guard<std::mutex> l(mu_);
    Sequence& s = sequences_[{b.topic, b.partition}];
    if (s.producer_id < 0) s = Sequence{producer_id_, 0, 0};
    if (b.producer_id == s.producer_id && b.producer_epoch == s.epoch) return;
    pid = s.producer_id;
    epoch = s.epoch;
    seq = s.next;
    const int64_t next = int64_t{s.next} + static_cast<int64_t>(b.records.size());
    s.next = static_cast<int32_t>(next > INT32_MAX ? next - INT32_MAX - 1 : next);  // wraps, as Kafka's
  }
  b.producer_id = pid;
  b.producer_epoch = epoch;
  storage::set_producer_fields(reinterpret_cast<uint8_t*>(b.built.data()), b.built.size(), pid, epoch, seq);
}

void Producer::bump_epoch_locked(const Batch& b) {
  if (!idempotent_ || b.producer_id < 0) return;
  auto it = sequences_.find({b.topic, b.partition});
  if (it == sequences_.end() || it->second.producer_id != b.producer_id || it->second.epoch != b.producer_epoch) {
    return;  // bumped already (another batch of the same request failed first)
  }
  if (it->second.epoch == INT16_MAX) {
    // Out of epochs (after 32767 failures): a new producer id for every partition. A batch in
    // flight under the old id that is retried then counts as new.
    producer_id_ = -1;
    sequences_.clear();
    return;
  }
  ++it->second.epoch;
  it->second.next = 0;
}

bool Producer::retriable(ErrorCode e) {
  switch (e) {
    case gannet::v1::NOT_LEADER_OR_FOLLOWER:
    case gannet::v1::LEADER_NOT_AVAILABLE:
    case gannet::v1::UNKNOWN_TOPIC_OR_PARTITION:
    case gannet::v1::NOT_ENOUGH_REPLICAS:
    case gannet::v1::NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case gannet::v1::REQUEST_TIMED_OUT:
    case gannet::v1::FENCED_LEADER_EPOCH:
    case gannet::v1::UNKNOWN_LEADER_EPOCH:
    case gannet::v1::KAFKA_STORAGE_ERROR:
    case gannet::v1::BROKER_NOT_AVAILABLE:
      return true;
    default:
      return false;
  }
}

std::future<RecordMetadata> Producer::send(ProducerRecord record) {
  auto promise = std::make_shared<std::promise<RecordMetadata>>();
  auto f = promise->get_future();
  send(std::move(record), [promise](const RecordMetadata& m) { promise->set_value(m); });
  return f;
}

void Producer::send(ProducerRecord record, Callback cb) {
  auto fail = [&](ErrorCode e, std::string message) {
    RecordMetadata m;
    m.topic = record.topic;
    m.partition = record.partition.value_or(-1);
    m.error = e;
    m.message = std::move(message);
    if (cb) cb(m);  // fire-and-forget sends pass no callback
  };
  const int32_t n = metadata_.partition_count(record.topic);
  if (n <= 0) return fail(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION, "unknown topic " + record.topic);
  int32_t p = record.partition.value_or(-1);
  if (record.partition && (p < 0 || p >= n)) {
    return fail(gannet::v1::UNKNOWN_TOPIC_OR_PARTITION, "topic " + record.topic + " has " + std::to_string(n) + " partitions");
  }
  if (!record.partition) p = partitioner_->partition(record.topic, record.key, n);
  const size_t bytes = 64 + (record.key ? record.key->size() : 0) + (record.value ? record.value->size() : 0);
  if (bytes > config_.buffer_memory) return fail(gannet::v1::MESSAGE_TOO_LARGE, "the record is larger than buffer.memory");
  const int64_t ts = record.timestamp >= 0
                         ? record.timestamp
                         : std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  // What buffer.memory counts is what the batches' buffers take (their capacity, slack
  // included), so the record's room is worked out for the batch it will go into: a new batch's
  // buffer, or the growth of the last one's. Growth is planned here and made exact by reserve().
  const size_t record_bytes = storage::RecordBatchBuilder::max_record_bytes(
      record.key ? record.key->size() : 0, record.value ? record.value->size() : 0);
  const size_t batch_room = config_.batch_size + storage::kBatchHeaderSize;
  std::unique_lock<std::mutex> l(mu_);
  auto& q = queues_[{record.topic, p}];  // (a map's entries stay put while send() waits)
  bool fresh = false;
  size_t reserve_to = 0;  // the buffer's capacity after this record (0: no change)
  size_t need = 0;        // bytes of buffer.memory this record takes
  auto plan = [&] {
    // A new batch when the last is full or is being resent (a resend carries exactly what failed).
    fresh = q.empty() || q.back()->attempts > 0 || q.back()->alone || q.back()->bytes + bytes > config_.batch_size;
    if (fresh) {
      const size_t records_growth = sizeof(Pending);  // a new batch's vector: one element
      // A batch started because the one before it filled up will likely fill too: room for all
      // of it now, not a copy each time its buffer doubles. (Not for a partition's first batch:
      // with many partitions and small sends, batch.size each would far exceed what they hold.)
      const bool will_fill = !q.empty() && q.back()->bytes + bytes > config_.batch_size;
      const size_t first = storage::kBatchHeaderSize + record_bytes;
      reserve_to = first;
      // (Only if that room is there now: else the batch grows as it fills, as any first batch.)
      if (will_fill && batch_room > first && buffered_ + batch_room + records_growth <= config_.buffer_memory) {
        reserve_to = batch_room;
      }
      need = reserve_to + records_growth;
      return;
    }
    const std::vector<Pending>& recs = q.back()->records;
    const size_t records_growth = recs.size() < recs.capacity() ? 0 : std::max<size_t>(1, recs.capacity()) * sizeof(Pending);
    const storage::RecordBatchBuilder& builder = *q.back()->builder;
    const size_t size = builder.size_bytes() + record_bytes;
    if (size <= builder.capacity()) {
      reserve_to = 0;
    } else {
      // Doubling, but not past batch.size unless this record needs it (nor past the room left:
      // then just what this record needs).
      reserve_to = std::max(size, std::min(2 * builder.capacity(), batch_room));
      if (buffered_ + (reserve_to - builder.capacity()) + records_growth > config_.buffer_memory) reserve_to = size;
    }
    need = (reserve_to ? reserve_to - builder.capacity() : 0) + records_growth;
  };
  // Back-pressure: wait for room in buffer.memory.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.max_block_ms);
  for (bool timed_out = false;;) {
    if (closing_) {
      l.unlock();
      return fail(gannet::v1::UNKNOWN_SERVER_ERROR, "the producer is closed");
    }
    plan();
    if (buffered_ + need <= config_.buffer_memory) break;
    // (Growing the open batch may never fit, but a new batch will once that one is sent: only a
    // record that does not fit a batch of its own is refused.)
    if (storage::kBatchHeaderSize + record_bytes + sizeof(Pending) > config_.buffer_memory) {
      l.unlock();
      return fail(gannet::v1::MESSAGE_TOO_LARGE, "the record's batch is larger than buffer.memory");
    }
    if (timed_out || config_.max_block_ms <= 0) {
      l.unlock();
      return fail(gannet::v1::REQUEST_TIMED_OUT, "buffer.memory stayed full for max.block.ms");
    }
    // Like Kafka's accumulator: while a send waits for memory, every batch is ready (linger.ms
    // or not), since only sending them frees any. (max.block.ms=0: no wait, so no drain.) After
    // the wait the room is looked at once more.
    ++waiting_for_memory_;
    cv_.notify_one();
    timed_out = space_cv_.wait_until(l, give_up) == std::cv_status::timeout;
    --waiting_for_memory_;
  }
  if (fresh) {
    auto b = std::make_unique<Batch>();
    b->topic = record.topic;
    b->partition = p;
    storage::BatchOptions o;
    o.compression = config_.compression;
    b->builder = std::make_unique<storage::RecordBatchBuilder>(o);
    b->created_ms = now_ms();
    q.push_back(std::move(b));
    if (!record.partition && !record.key && q.size() > 1) partitioner_->on_new_batch(record.topic, p);
  }
  Batch& b = *q.back();
  if (reserve_to) b.builder->reserve(reserve_to);
  b.builder->add(ts, record.key ? std::optional<std::string_view>(*record.key) : std::nullopt,
                 record.value ? std::optional<std::string_view>(*record.value) : std::nullopt);
  b.records.push_back(Pending{std::move(cb), bytes});
  b.bytes += bytes;
  const size_t held = b.builder->capacity() + b.records.capacity() * sizeof(Pending);
  buffered_ += held - b.charged;
  b.charged = held;
  ++outstanding_;
  // Wake the sender when a batch fills, or when a new batch starts (its linger timer starts;
  // with linger.ms=0 it is ready now; the batch before it is full). Only on those transitions:
  // a wake per record would have the sender scan its queues once per send.
  const Key key{record.topic, p};
  // linger.ms=0 with the partition idle: this batch goes out now, from this thread, on the
  // leader's open stream (StartWrite does not wait for the network). That saves the sender
  // thread's wake-up, about a fifth of a one-record round trip here. Anything else (no stream
  // yet, the stream full, a retry) is the sender's.
  if (config_.linger_ms == 0 && b.records.size() == 1 && q.size() == 1 && !b.alone && b.attempts == 0 &&
      !in_flight_[key] && (!idempotent_ || producer_id_ >= 0)) {
    const int32_t leader = metadata_.leader(record.topic, p);
    auto it = connections_.find(leader);
    if (leader >= 0 && it != connections_.end() && it->second && !it->second->failed() && !it->second->full()) {
      std::shared_ptr<Connection> c = it->second;
      in_flight_[key] = true;
      std::vector<std::unique_ptr<Batch>> batches;
      batches.push_back(std::move(q.front()));
      q.pop_front();
      l.unlock();
      std::unique_ptr<Request> req = build_request(leader, std::move(batches));
      if (!c->send(req)) {
        handle_response(*req, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream to the broker failed"), nullptr);
      }
      return;
    }
  }
  if (b.bytes >= config_.batch_size || b.records.size() == 1) cv_.notify_one();
}

void Producer::complete(Batch& b, int64_t base_offset, ErrorCode error, const std::string& message) {
  RecordMetadata m;
  m.topic = b.topic;
  m.partition = b.partition;
  m.error = error;
  m.message = message;
  for (size_t i = 0; i < b.records.size(); ++i) {
    m.offset = error == gannet::v1::NONE && base_offset >= 0 ? base_offset + static_cast<int64_t>(i) : -1;
    if (b.records[i].cb) b.records[i].cb(m);
  }
  std::lock_guard<std::mutex> l(mu_);
  buffered_ -= b.charged;
  outstanding_ -= b.records.size();
  space_cv_.notify_all();
  if (outstanding_ == 0) idle_cv_.notify_all();
}

Producer::Connection* Producer::connection_locked(int32_t leader) {
  auto& slot = connections_[leader];
  if (slot && slot->failed()) closed_connections_.push_back(std::move(slot));
  if (!slot) {
    bv1::Broker::Stub* stub = metadata_.broker(leader);
    if (!stub) return nullptr;
    slot = std::make_shared<Connection>(this, stub);
  }
  return slot.get();
}

void Producer::sender_loop() {
  for (;;) {
    // Ready batches (the head of each partition's queue, none in flight), by leader.
    std::map<int32_t, std::vector<std::unique_ptr<Batch>>> by_leader;
    std::vector<std::unique_ptr<Batch>> expired, unroutable;
    bool need_metadata = false;
    std::vector<Connection*> overdue;
    bool need_producer_id = false;
    {
      std::unique_lock<std::mutex> l(mu_);
      const int64_t now = now_ms();
      int64_t next_wake = now + 100;
      need_producer_id = idempotent_ && producer_id_ < 0 && outstanding_ > 0;
      need_metadata = refresh_wanted_;
      refresh_wanted_ = false;
      // A request unanswered past request.timeout.ms (plus the broker's own wait, which the
      // timeout also bounds) gives up its stream, as Kafka's client closes the connection.
      for (auto& [id, c] : connections_) {
        const int64_t oldest = c && !c->cancelled() ? c->oldest_sent_ms() : -1;
        if (oldest >= 0 && now - oldest > config_.request_timeout_ms + 5000) overdue.push_back(c.get());
      }
      std::erase_if(closed_connections_,
                    [](const std::shared_ptr<Connection>& c) { return c.use_count() == 1 && c->done(); });
      std::map<int32_t, bool> room;  // whether a leader's stream takes another request
      for (auto& [key, q] : queues_) {
        if (q.empty() || in_flight_[key]) continue;
        Batch& head = *q.front();
        if (need_producer_id && now - head.created_ms < config_.delivery_timeout_ms) continue;
        const bool full = head.bytes >= config_.batch_size || q.size() > 1 || head.alone;
        const bool lingered = now - head.created_ms >= config_.linger_ms;
        const bool drain = flushing_ || closing_ || waiting_for_memory_ > 0;
        if (!(full || lingered || drain) || head.retry_at_ms > now) {
          next_wake = std::min(next_wake, head.retry_at_ms > now ? head.retry_at_ms : head.created_ms + config_.linger_ms);
          continue;
        }
        if (now - head.created_ms >= config_.delivery_timeout_ms) {
          expired.push_back(std::move(q.front()));
          q.pop_front();
          continue;
        }
        const int32_t leader = metadata_.leader(key.first, key.second);
        if (leader < 0 || !metadata_.broker(leader)) {
          need_metadata = true;
          head.retry_at_ms = now + config_.retry_backoff_ms;
          continue;
        }
        auto r = room.find(leader);
        if (r == room.end()) {
          auto c = connections_.find(leader);
          const bool has_room = c == connections_.end() || !c->second || c->second->failed() || !c->second->full();
          r = room.emplace(leader, has_room).first;
        }
        if (!r->second) continue;  // an answer wakes the sender
        in_flight_[key] = true;
        // The head, and the ready batches queued behind it (one request, one append: offsets
        // stay in order and a retry resends them together).
        size_t taken = 0;
        int count = 0;
        // With idempotence a retried batch goes alone: its answer is then either all duplicate
        // (its original offsets) or all new, never a mix whose offsets are not consecutive.
        const bool alone = head.alone || (idempotent_ && head.attempts > 0);
        do {
          taken += q.front()->bytes;
          ++count;
          by_leader[leader].push_back(std::move(q.front()));
          q.pop_front();
        } while (!alone && !q.empty() && !q.front()->alone &&
                 (!idempotent_ || (count < kMaxIdempotentBatchesPerRequest && q.front()->attempts == 0)) &&
                 taken + q.front()->bytes <= config_.max_partition_request_bytes &&
                 q.front()->retry_at_ms <= now && now - q.front()->created_ms < config_.delivery_timeout_ms &&
                 (q.size() > 1 || q.front()->bytes >= config_.batch_size ||
                  now - q.front()->created_ms >= config_.linger_ms || drain));
      }
      if (by_leader.empty() && expired.empty() && !need_metadata && overdue.empty() && !need_producer_id) {
        if (closing_ && outstanding_ == 0) return;
        cv_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(1, next_wake - now)));
        continue;
      }
      for (auto& b : expired) bump_epoch_locked(*b);  // sent before: its outcome is unknown
    }
    if (need_producer_id && !init_producer_id()) {
      metadata_.refresh();
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(config_.retry_backoff_ms));
    }
    for (Connection* c : overdue) c->cancel();  // (connections are only destroyed by this thread)
    for (auto& b : expired) complete(*b, -1, gannet::v1::REQUEST_TIMED_OUT, "delivery.timeout.ms passed");
    if (need_metadata) metadata_.refresh();
    // One request per leader, every ready partition in it, on that leader's stream: the brokers
    // are written to in parallel, and nothing here waits for an answer.
    for (auto& [leader, batches] : by_leader) {
      std::unique_ptr<Request> r = build_request(leader, std::move(batches));
      Connection* c;
      {
        std::lock_guard<std::mutex> l(mu_);
        c = connection_locked(leader);
      }
      if (!c || !c->send(r)) {
        handle_response(*r, grpc::Status(grpc::StatusCode::UNAVAILABLE, "no stream to the broker"), nullptr);
      }
    }
  }
}

std::unique_ptr<Producer::Request> Producer::build_request(int32_t leader,
                                                           std::vector<std::unique_ptr<Batch>> batches) {
  auto r = std::make_unique<Request>();
  r->leader = leader;
  r->batches = std::move(batches);
  bv1::ProduceRequest& req = r->req;
  req.set_acks(config_.acks);
  req.set_timeout_ms(static_cast<int32_t>(config_.request_timeout_ms));
  // Consecutive batches of one partition share its PartitionData (their bytes concatenated; a
  // batch that cannot be encoded is left out and takes no offsets).
  const size_t n = r->batches.size();
  r->group.assign(n, 0);
  r->offset_in_group.assign(n, 0);
  r->lent_size.assign(n, 0);
  int64_t next_in_group = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& b = r->batches[i];
    const bool same = i > 0 && r->batches[i - 1]->topic == b->topic && r->batches[i - 1]->partition == b->partition;
    if (!same) {
      auto* pd = req.add_partitions();
      pd->set_topic(b->topic);
      pd->set_partition(b->partition);
      r->group_batches.push_back(0);
      next_in_group = 0;
    }
    r->group[i] = req.partitions_size() - 1;
    ++r->group_batches[static_cast<size_t>(r->group[i])];
    r->offset_in_group[i] = next_in_group;
    if (b->builder) {  // encoded once; a retry resends the same bytes
      auto built = b->builder->take();
      if (built.ok()) {
        b->built = std::move(*built);
      } else {
        b->build_error = built.error().to_string();
      }
      b->builder.reset();
    }
    if (idempotent_ && b->build_error.empty()) stamp(*b);
    if (b->build_error.empty()) {
      std::string* records = req.mutable_partitions(r->group[i])->mutable_records();
      if (records->empty()) {
        r->lent_size[i] = b->built.size();
        records->swap(b->built);  // lent to the request (no copy); taken back in handle_response
      } else {
        records->append(b->built);
      }
      next_in_group += static_cast<int64_t>(b->records.size());  // only what was sent takes offsets
    }
  }
  return r;
}

void Producer::handle_response(Request& r, const grpc::Status& st, const bv1::ProduceResponse* resp) {
  auto& batches = r.batches;
  // Each batch whose bytes the request borrowed takes them back (a retry resends them). A
  // lender is always its entry's first batch: its bytes are the entry's first lent_size[i].
  for (size_t i = 0; i < batches.size(); ++i) {
    if (r.lent_size[i] == 0) continue;
    std::string* records = r.req.mutable_partitions(r.group[i])->mutable_records();
    if (records->size() == r.lent_size[i]) {
      records->swap(batches[i]->built);
    } else {
      batches[i]->built.assign(*records, 0, r.lent_size[i]);
    }
  }
  bool refresh = false;
  std::vector<std::unique_ptr<Batch>> retry;
  for (size_t i = 0; i < batches.size(); ++i) {
    Batch& b = *batches[i];
    ErrorCode e = gannet::v1::NONE;
    std::string message;
    int64_t base = -1;
    if (!b.build_error.empty()) {
      e = gannet::v1::INVALID_RECORD;  // never sent: not retriable, nothing to resend
      message = "cannot encode the batch: " + b.build_error;
    } else if (!st.ok()) {
      e = gannet::v1::REQUEST_TIMED_OUT;
      message = "broker " + std::to_string(r.leader) + ": " + st.error_message();
    } else if (config_.acks != 0) {
      const auto* pr = resp && r.group[i] < resp->partitions_size() ? &resp->partitions(r.group[i]) : nullptr;
      if (!pr) {
        e = gannet::v1::UNKNOWN_SERVER_ERROR;
        message = "no result for the partition";
      } else {
        e = pr->error_code();
        message = pr->error_message();
        // One append: the batches got consecutive offsets from the first one's base.
        base = pr->base_offset() >= 0 ? pr->base_offset() + r.offset_in_group[i] : -1;
      }
    }
    if (e != gannet::v1::NONE && retriable(e) && now_ms() - b.created_ms < config_.delivery_timeout_ms) {
      refresh = true;
      b.attempts++;
      b.retry_at_ms = now_ms() + config_.retry_backoff_ms;
      retry.push_back(std::move(batches[i]));
      continue;
    }
    // The broker validates a partition's batches together and refuses them all (writing
    // nothing) when one is bad: resend each alone, at once, so only the bad one fails.
    const bool refused = e == gannet::v1::MESSAGE_TOO_LARGE || e == gannet::v1::INVALID_RECORD ||
                         e == gannet::v1::CORRUPT_MESSAGE;
    if (refused && st.ok() && b.build_error.empty() && r.group_batches[static_cast<size_t>(r.group[i])] > 1 &&
        now_ms() - b.created_ms < config_.delivery_timeout_ms) {
      b.alone = true;
      retry.push_back(std::move(batches[i]));
      continue;
    }
    if (e != gannet::v1::NONE) {
      std::lock_guard<std::mutex> l(mu_);
      bump_epoch_locked(b);
    }
    complete(b, base, e, message);
  }
  {
    // Only now may the sender look at these partitions again: retried batches must be back at
    // the front of their queues first (else a later batch of the partition could go out ahead
    // of them), last first so each partition's order holds.
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
      const Key key{(*it)->topic, (*it)->partition};
      queues_[key].push_front(std::move(*it));
    }
    for (const auto& p : r.req.partitions()) in_flight_[{p.topic(), p.partition()}] = false;
    if (refresh) refresh_wanted_ = true;  // by the sender: this may be one of gRPC's threads
  }
  cv_.notify_one();  // the sender may send the next batches of these partitions
}

void Producer::flush() {
  std::unique_lock<std::mutex> l(mu_);
  flushing_ = true;
  cv_.notify_all();
  idle_cv_.wait(l, [&] { return outstanding_ == 0; });
  flushing_ = false;
}

void Producer::close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closing_ && !sender_.joinable()) return;
    closing_ = true;
  }
  cv_.notify_all();
  space_cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  // Everything is answered (the sender stops only then): end the streams.
  std::map<int32_t, std::shared_ptr<Connection>> connections;
  std::vector<std::shared_ptr<Connection>> closed;
  {
    std::lock_guard<std::mutex> l(mu_);
    connections.swap(connections_);
    closed.swap(closed_connections_);
  }
  for (auto& [id, c] : connections) {
    if (c) c->half_close();
  }
  for (auto& [id, c] : connections) {
    if (c) c->wait_closed(2000);
  }
  for (auto& c : closed) c->wait_closed(0);
}

size_t Producer::buffered_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return buffered_;
}

}  // namespace gannet::client
