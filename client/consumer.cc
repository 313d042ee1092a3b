#include "client/consumer.h"

#include <chrono>
#include <future>
#include <thread>

#include "storage/record_batch.h"

namespace gannet::client {

using gannet::v1::ErrorCode;

Consumer::Consumer(ConsumerConfig config) : config_(std::move(config)), metadata_(config_.bootstrap_servers) {}

void Consumer::assign(const std::vector<TopicPartition>& partitions) {
  std::map<TopicPartition, int64_t> next;
  const int64_t reset = config_.auto_offset_reset == "earliest" ? -2 : (config_.auto_offset_reset == "latest" ? -1 : -3);
  for (const auto& tp : partitions) {
    auto it = positions_.find(tp);
    next[tp] = it == positions_.end() ? reset : it->second;
  }
  positions_ = std::move(next);
}

void Consumer::seek(const TopicPartition& tp, int64_t offset) { positions_[tp] = offset; }
void Consumer::seek_to_beginning(const TopicPartition& tp) { positions_[tp] = -2; }
void Consumer::seek_to_end(const TopicPartition& tp) { positions_[tp] = -1; }

std::optional<int64_t> Consumer::position(const TopicPartition& tp) const {
  auto it = positions_.find(tp);
  if (it == positions_.end() || it->second < 0) return std::nullopt;
  return it->second;
}

std::optional<int64_t> Consumer::high_watermark(const TopicPartition& tp) const {
  auto it = hws_.find(tp);
  if (it == hws_.end()) return std::nullopt;
  return it->second;
}

bool Consumer::reset_offsets(std::vector<TopicPartition>* failed) {
  bool ok = true;
  for (auto& [tp, pos] : positions_) {
    if (pos >= 0) continue;
    if (pos == -3) {
      failed->push_back(tp);
      ok = false;
      continue;
    }
    auto parts = metadata_.partitions(tp.topic);
    if (tp.partition >= static_cast<int32_t>(parts.size())) {
      failed->push_back(tp);
      ok = false;
      continue;
    }
    bv1::Broker::Stub* stub = metadata_.broker(parts[static_cast<size_t>(tp.partition)].leader);
    if (!stub) {
      metadata_.refresh({tp.topic});
      ok = false;
      continue;
    }
    bv1::ListOffsetsRequest req;
    auto* pd = req.add_partitions();
    pd->set_topic(tp.topic);
    pd->set_partition(tp.partition);
    pd->set_timestamp(pos);  // -1 latest, -2 earliest
    pd->set_current_leader_epoch(-1);
    bv1::ListOffsetsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!stub->ListOffsets(&ctx, req, &resp).ok() || resp.partitions_size() != 1 ||
        resp.partitions(0).error_code() != gannet::v1::NONE) {
      metadata_.refresh({tp.topic});
      ok = false;
      continue;
    }
    pos = resp.partitions(0).offset();
  }
  return ok;
}

std::future<Consumer::FetchCall> Consumer::launch(bv1::Broker::Stub* stub, const Wanted& wanted, int64_t wait_ms,
                                                  int64_t slack_ms) {
  bv1::FetchRequest req;
  req.set_replica_id(-1);
  req.set_max_wait_ms(static_cast<int32_t>(wait_ms));
  req.set_min_bytes(config_.fetch_min_bytes);
  req.set_max_bytes(config_.fetch_max_bytes);
  for (const auto& [tp, offset] : wanted) {
    auto* pd = req.add_partitions();
    pd->set_topic(tp.topic);
    pd->set_partition(tp.partition);
    pd->set_fetch_offset(offset);
    pd->set_current_leader_epoch(-1);
    pd->set_last_fetched_epoch(-1);
    pd->set_partition_max_bytes(config_.max_partition_fetch_bytes);
  }
  return std::async(std::launch::async, [stub, req = std::move(req), wait_ms, slack_ms] {
    FetchCall c;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(wait_ms + slack_ms));
    c.ok = stub->Fetch(&ctx, req, &c.resp).ok();
    return c;
  });
}

std::vector<ConsumerRecord> Consumer::poll(int64_t timeout_ms, ErrorCode* error) {
  std::vector<ConsumerRecord> out;
  if (error) *error = gannet::v1::NONE;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    std::vector<TopicPartition> failed;
    if (!reset_offsets(&failed) && !failed.empty()) {
      if (error) *error = gannet::v1::OFFSET_OUT_OF_RANGE;
      return out;
    }
    // One fetch per leader.
    std::map<int32_t, std::vector<TopicPartition>> by_leader;
    for (const auto& [tp, pos] : positions_) {
      if (pos < 0) continue;
      auto parts = metadata_.partitions(tp.topic);
      if (tp.partition < static_cast<int32_t>(parts.size())) by_leader[parts[static_cast<size_t>(tp.partition)].leader].push_back(tp);
    }
    const int64_t left = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  deadline - std::chrono::steady_clock::now()).count());
    bool refresh = by_leader.empty();
    // Prefetches of leaders no longer asked (partitions moved or unassigned) are dropped.
    for (auto it = prefetch_.begin(); it != prefetch_.end();) {
      it = by_leader.count(it->first) ? std::next(it) : prefetch_.erase(it);
    }
    // One fetch per leader, all in flight at once (or already in flight: prefetched).
    std::vector<std::pair<int32_t, std::future<FetchCall>>> calls;
    for (const auto& [leader, tps] : by_leader) {
      bv1::Broker::Stub* stub = metadata_.broker(leader);
      if (!stub) {
        refresh = true;
        continue;
      }
      Wanted wanted;
      for (const auto& tp : tps) wanted.emplace_back(tp, positions_[tp]);
      auto pre = prefetch_.find(leader);
      if (pre != prefetch_.end()) {
        std::future<FetchCall> f = std::move(pre->second.call);
        const bool matches = pre->second.wanted == wanted;
        prefetch_.erase(pre);
        if (matches) {
          calls.emplace_back(leader, std::move(f));
          continue;
        }
        if (f.valid()) f.wait();  // a stale prefetch: let it finish, drop its answer
      }
      calls.emplace_back(leader, launch(stub, wanted, std::min<int64_t>(left, config_.fetch_max_wait_ms), 10'000));
    }
    // Answers, then at once the next fetch of every leader whose partitions all returned data.
    std::vector<FetchCall> answers;
    for (auto& [leader, f] : calls) {
      answers.push_back(f.get());
      const FetchCall& call = answers.back();
      if (!call.ok) continue;
      Wanted next;
      bool all_data = call.resp.partitions_size() > 0;
      for (const auto& r : call.resp.partitions()) {
        const std::string& data = r.records();
        int64_t end = -1;
        for (size_t at = 0; at + storage::kBatchHeaderSize <= data.size();) {
          storage::RecordBatchView head(reinterpret_cast<const uint8_t*>(data.data()) + at, data.size() - at);
          if (head.length() <= 0) break;
          const size_t size = static_cast<size_t>(head.length()) + 12;
          if (at + size > data.size()) break;
          end = head.last_offset() + 1;
          at += size;
        }
        if (r.error_code() != gannet::v1::NONE || end < 0) {
          all_data = false;
          break;
        }
        next.emplace_back(TopicPartition{r.topic(), r.partition()}, end);
      }
      if (all_data) {
        if (bv1::Broker::Stub* stub = metadata_.broker(leader)) {
          // No long poll: it answers at once with what is there, so neither the next poll's
          // timeout, a seek, nor the consumer's destruction ever waits on it for long.
          prefetch_[leader] = Prefetch{next, launch(stub, next, /*wait_ms=*/0, /*slack_ms=*/2'000)};
        }
      }
    }
    for (auto& call : answers) {
      if (!call.ok) {
        refresh = true;
        continue;
      }
      const bv1::FetchResponse& resp = call.resp;
      for (const auto& r : resp.partitions()) {
        const TopicPartition tp{r.topic(), r.partition()};
        if (r.error_code() == gannet::v1::OFFSET_OUT_OF_RANGE) {
          positions_[tp] = config_.auto_offset_reset == "earliest" ? -2 : (config_.auto_offset_reset == "latest" ? -1 : -3);
          continue;
        }
        if (r.error_code() != gannet::v1::NONE) {
          refresh = true;
          continue;
        }
        hws_[tp] = r.high_watermark();
        const std::string& data = r.records();
        bytes_ += data.size();
        int64_t& pos = positions_[tp];
        size_t at = 0;
        while (at + storage::kBatchHeaderSize <= data.size()) {
          storage::RecordBatchView head(reinterpret_cast<const uint8_t*>(data.data()) + at, data.size() - at);
          const size_t size = static_cast<size_t>(head.length()) + 12;
          if (head.length() <= 0 || at + size > data.size()) break;
          storage::RecordBatchView batch(reinterpret_cast<const uint8_t*>(data.data()) + at, size);
          at += size;
          if (batch.last_offset() < pos) continue;
          auto it = storage::RecordIterator::create(batch);
          if (!it.ok()) break;
          storage::Record rec;
          for (;;) {
            auto more = it->next(&rec);
            if (!more.ok() || !*more) break;
            if (rec.offset < pos) continue;
            ConsumerRecord c;
            c.topic = tp.topic;
            c.partition = tp.partition;
            c.offset = rec.offset;
            c.timestamp = rec.timestamp;
            if (rec.key) c.key = std::string(*rec.key);
            if (rec.value) c.value = std::string(*rec.value);
            out.push_back(std::move(c));
            pos = rec.offset + 1;
          }
        }
      }
    }
    if (refresh) {
      metadata_.refresh();
      if (out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } while (out.empty() && std::chrono::steady_clock::now() < deadline);
  return out;
}

}  // namespace gannet::client
