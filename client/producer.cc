#include "client/producer.h"

#include <algorithm>
#include <chrono>

namespace gannet::client {

using gannet::v1::ErrorCode;

Producer::Producer(ProducerConfig config)
    : config_(std::move(config)),
      partitioner_(config_.partitioner ? config_.partitioner : std::make_shared<DefaultPartitioner>()),
      metadata_(config_.bootstrap_servers) {
  sender_ = std::thread([this] { sender_loop(); });
}

Producer::~Producer() { close(); }

int64_t Producer::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
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
  std::unique_lock<std::mutex> l(mu_);
  // Back-pressure: wait for room in buffer.memory.
  if (!space_cv_.wait_for(l, std::chrono::milliseconds(config_.max_block_ms),
                          [&] { return closing_ || buffered_ + bytes <= config_.buffer_memory; })) {
    l.unlock();
    return fail(gannet::v1::REQUEST_TIMED_OUT, "buffer.memory stayed full for max.block.ms");
  }
  if (closing_) {
    l.unlock();
    return fail(gannet::v1::UNKNOWN_SERVER_ERROR, "the producer is closed");
  }
  auto& q = queues_[{record.topic, p}];
  // A new batch when the last is full or is being resent (a resend carries exactly what failed).
  if (q.empty() || q.back()->attempts > 0 || q.back()->alone || q.back()->bytes + bytes > config_.batch_size) {
    auto b = std::make_unique<Batch>();
    b->topic = record.topic;
    b->partition = p;
    storage::BatchOptions o;
    o.compression = config_.compression;
    b->builder = std::make_unique<storage::RecordBatchBuilder>(o);
    // A batch started because the one before it filled up will likely fill too: room for all of
    // it now, not a copy each time its buffer doubles. (Not for a partition's first batch: with
    // many partitions and small sends, batch.size each would far exceed what they hold.)
    if (!q.empty() && q.back()->bytes + bytes > config_.batch_size) {
      b->builder->reserve(config_.batch_size + storage::kBatchHeaderSize);
    }
    b->created_ms = now_ms();
    q.push_back(std::move(b));
    if (!record.partition && !record.key && q.size() > 1) partitioner_->on_new_batch(record.topic, p);
  }
  Batch& b = *q.back();
  b.builder->add(ts, record.key ? std::optional<std::string_view>(*record.key) : std::nullopt,
                 record.value ? std::optional<std::string_view>(*record.value) : std::nullopt);
  b.records.push_back(Pending{std::move(cb), bytes});
  b.bytes += bytes;
  buffered_ += bytes;
  ++outstanding_;
  // Wake the sender when a batch fills, or when a new batch starts (its linger timer starts;
  // with linger.ms=0 it is ready now; the batch before it is full). Only on those transitions:
  // a wake per record would have the sender scan its queues once per send.
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
  buffered_ -= b.bytes;
  outstanding_ -= b.records.size();
  space_cv_.notify_all();
  if (outstanding_ == 0) idle_cv_.notify_all();
}

void Producer::sender_loop() {
  for (;;) {
    // Ready batches (the head of each partition's queue, none in flight), by leader.
    std::map<int32_t, std::vector<std::unique_ptr<Batch>>> by_leader;
    std::vector<std::unique_ptr<Batch>> expired, unroutable;
    bool need_metadata = false;
    {
      std::unique_lock<std::mutex> l(mu_);
      const int64_t now = now_ms();
      int64_t next_wake = now + 100;
      for (auto& [key, q] : queues_) {
        if (q.empty() || in_flight_[key]) continue;
        Batch& head = *q.front();
        const bool full = head.bytes >= config_.batch_size || q.size() > 1 || head.alone;
        const bool lingered = now - head.created_ms >= config_.linger_ms;
        if (!(full || lingered || flushing_ || closing_) || head.retry_at_ms > now) {
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
        in_flight_[key] = true;
        // The head, and the ready batches queued behind it (one request, one append: offsets
        // stay in order and a retry resends them together).
        size_t taken = 0;
        const bool alone = head.alone;
        do {
          taken += q.front()->bytes;
          by_leader[leader].push_back(std::move(q.front()));
          q.pop_front();
        } while (!alone && !q.empty() && !q.front()->alone &&
                 taken + q.front()->bytes <= config_.max_partition_request_bytes &&
                 q.front()->retry_at_ms <= now && now - q.front()->created_ms < config_.delivery_timeout_ms &&
                 (q.size() > 1 || q.front()->bytes >= config_.batch_size ||
                  now - q.front()->created_ms >= config_.linger_ms || flushing_ || closing_));
      }
      if (by_leader.empty() && expired.empty() && !need_metadata) {
        if (closing_ && outstanding_ == 0) return;
        cv_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(1, next_wake - now)));
        continue;
      }
    }
    for (auto& b : expired) complete(*b, -1, gannet::v1::REQUEST_TIMED_OUT, "delivery.timeout.ms passed");
    if (need_metadata) metadata_.refresh();
    // One request per leader, every ready partition in it, sent by that leader's worker, so the
    // brokers are written to in parallel.
    for (auto& [leader, batches] : by_leader) {
      Worker* w;
      {
        std::lock_guard<std::mutex> l(mu_);
        auto& slot = workers_[leader];
        if (!slot) {
          slot = std::make_unique<Worker>();
          Worker* raw = slot.get();
          // Two requests in flight per broker (each partition still has at most one batch in
          // flight, so no partition is reordered): one is sent while the other is answered.
          for (int t = 0; t < kRequestsInFlightPerBroker; ++t) {
            slot->threads.emplace_back([this, raw, id = leader] { worker_loop(raw, id); });
          }
        }
        w = slot.get();
        w->queue.push_back(std::move(batches));
      }
      w->cv.notify_one();
    }
  }
}

void Producer::worker_loop(Worker* w, int32_t leader) {
  for (;;) {
    std::vector<std::unique_ptr<Batch>> batches;
    {
      std::unique_lock<std::mutex> l(mu_);
      w->cv.wait(l, [&] { return !w->queue.empty() || workers_stopping_; });
      if (w->queue.empty()) return;
      batches = std::move(w->queue.front());
      w->queue.pop_front();
    }
    send_request(leader, batches);
    cv_.notify_one();  // the sender may send the next batches of these partitions
  }
}

void Producer::send_request(int32_t leader, std::vector<std::unique_ptr<Batch>>& batches) {
  {
    {
      bv1::ProduceRequest req;
      req.set_acks(config_.acks);
      req.set_timeout_ms(static_cast<int32_t>(config_.request_timeout_ms));
      // Consecutive batches of one partition share its PartitionData (their bytes concatenated);
      // group[i] is batch i's entry in the request, offset_in_group[i] its first record's offset
      // from the entry's base (a batch that cannot be encoded is left out and takes no offsets).
      std::vector<int> group(batches.size());
      std::vector<int> group_batches;  // per entry: how many batches share it
      std::vector<int64_t> offset_in_group(batches.size(), 0);
      std::vector<size_t> lent_size(batches.size(), 0);  // batch i's bytes are the request's
      int64_t next_in_group = 0;
      for (size_t i = 0; i < batches.size(); ++i) {
        auto& b = batches[i];
        const bool same = i > 0 && batches[i - 1]->topic == b->topic && batches[i - 1]->partition == b->partition;
        if (!same) {
          auto* pd = req.add_partitions();
          pd->set_topic(b->topic);
          pd->set_partition(b->partition);
          group_batches.push_back(0);
          next_in_group = 0;
        }
        group[i] = req.partitions_size() - 1;
        ++group_batches[static_cast<size_t>(group[i])];
        offset_in_group[i] = next_in_group;
        if (b->builder) {  // encoded once; a retry resends the same bytes
          auto built = b->builder->take();
          if (built.ok()) {
            b->built = std::move(*built);
          } else {
            b->build_error = built.error().to_string();
          }
          b->builder.reset();
        }
        if (b->build_error.empty()) {
          std::string* records = req.mutable_partitions(group[i])->mutable_records();
          if (records->empty()) {
            lent_size[i] = b->built.size();
            records->swap(b->built);  // lent to the request (no copy); taken back below
          } else {
            records->append(b->built);
          }
          next_in_group += static_cast<int64_t>(b->records.size());  // only what was sent takes offsets
        }
      }
      bv1::ProduceResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(config_.request_timeout_ms + 5000));
      bv1::Broker::Stub* stub = metadata_.broker(leader);
      grpc::Status st = stub ? stub->Produce(&ctx, req, &resp) : grpc::Status(grpc::StatusCode::UNAVAILABLE, "no broker");
      // Each batch whose bytes the request borrowed takes them back (a retry resends them). A
      // lender is always its entry's first batch: its bytes are the entry's first lent_size[i].
      for (size_t i = 0; i < batches.size(); ++i) {
        if (lent_size[i] == 0) continue;
        std::string* records = req.mutable_partitions(group[i])->mutable_records();
        if (records->size() == lent_size[i]) {
          records->swap(batches[i]->built);
        } else {
          batches[i]->built.assign(*records, 0, lent_size[i]);
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
          message = "broker " + std::to_string(leader) + ": " + st.error_message();
        } else if (config_.acks != 0) {
          const auto* r = group[i] < resp.partitions_size() ? &resp.partitions(group[i]) : nullptr;
          if (!r) {
            e = gannet::v1::UNKNOWN_SERVER_ERROR;
            message = "no result for the partition";
          } else {
            e = r->error_code();
            message = r->error_message();
            // One append: the batches got consecutive offsets from the first one's base.
            base = r->base_offset() >= 0 ? r->base_offset() + offset_in_group[i] : -1;
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
        if (refused && st.ok() && b.build_error.empty() && group_batches[static_cast<size_t>(group[i])] > 1 &&
            now_ms() - b.created_ms < config_.delivery_timeout_ms) {
          b.alone = true;
          retry.push_back(std::move(batches[i]));
          continue;
        }
        complete(b, base, e, message);
      }
      {
        // Only now may the sender look at these partitions again: retried batches must be back at
        // the front of their queues first (else a later batch of the partition could go out
        // ahead of them), last first so each partition's order holds.
        std::lock_guard<std::mutex> l(mu_);
        for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
          const Key key{(*it)->topic, (*it)->partition};
          queues_[key].push_front(std::move(*it));
        }
        for (const auto& p : req.partitions()) in_flight_[{p.topic(), p.partition()}] = false;
      }
      if (refresh) metadata_.refresh();
    }
  }
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
  std::map<int32_t, std::unique_ptr<Worker>> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    workers_stopping_ = true;
    workers.swap(workers_);
  }
  for (auto& [id, w] : workers) {
    w->cv.notify_all();
    for (auto& t : w->threads) {
      if (t.joinable()) t.join();
    }
  }
}

size_t Producer::buffered_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return buffered_;
}

}  // namespace gannet::client
