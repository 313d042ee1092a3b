#include "broker/subscription.h"

#include <algorithm>
#include <climits>

namespace gannet::broker {

namespace ev1 = gannet::v1;

namespace {

bool coordinator_moved(ev1::ErrorCode e) {
  return e == ev1::NOT_COORDINATOR || e == ev1::COORDINATOR_NOT_AVAILABLE || e == ev1::COORDINATOR_LOAD_IN_PROGRESS;
}

v1::SubscribeResponse error_message(ev1::ErrorCode e, const std::string& why) {
  v1::SubscribeResponse r;
  r.mutable_error()->set_error_code(e);
  r.mutable_error()->set_error_message(why);
  return r;
}

}  // namespace

Subscription::Subscription(v1::SubscribeRequest::Start start, Calls calls)
    : start_(std::move(start)), calls_(std::move(calls)) {}

bool Subscription::heartbeat(std::vector<v1::SubscribeResponse>* out, v1::SubscribeResponse* error) {
  v1::ConsumerGroupHeartbeatRequest req;
  req.set_group_id(start_.group_id());
  req.set_member_id(member_id_);
  req.set_member_epoch(epoch_);
  req.set_client_id(start_.client_id().empty() ? "subscribe-stream" : start_.client_id());
  req.set_server_assignor(start_.server_assignor());
  for (const auto& t : start_.topics()) req.add_subscribed_topic_names(t);
  auto* owned = req.mutable_owned();
  v1::TopicPartitions* cur = nullptr;
  for (const auto& [tp, pos] : positions_) {
    if (!cur || cur->topic() != tp.first) {
      cur = owned->add_topics();
      cur->set_topic(tp.first);
    }
    cur->add_partitions(tp.second);
  }
  v1::ConsumerGroupHeartbeatResponse resp;
  const int64_t now = calls_.now_ms();
  if (!calls_.heartbeat(req, &resp) || coordinator_moved(resp.error_code())) {
    next_beat_ms_ = now + 200;  // the coordinator is found again by the call; soon
    return true;
  }
  if (resp.error_code() == ev1::UNKNOWN_MEMBER_ID || resp.error_code() == ev1::FENCED_MEMBER_EPOCH) {
    // Out of the group: what it held may be another member's by now. Drop it all, rejoin.
    member_id_.clear();
    epoch_ = 0;
    next_beat_ms_ = 0;
    set_owned({}, out);
    return true;
  }
  if (resp.error_code() != ev1::NONE) {
    *error = error_message(resp.error_code(), resp.error_message());
    return false;
  }
  member_id_ = resp.member_id();
  epoch_ = resp.member_epoch();
  interval_ms_ = std::max(50, resp.heartbeat_interval_ms());
  next_beat_ms_ = now + interval_ms_;
  if (resp.has_assignment()) {
    std::set<TP> next;
    for (const auto& t : resp.assignment().topics()) {
      for (int32_t p : t.partitions()) next.insert({t.topic(), p});
    }
    std::set<TP> current;
    for (const auto& [tp, pos] : positions_) current.insert(tp);
    if (next != current) {
      set_owned(next, out);
      next_beat_ms_ = 0;  // say so at once: that releases what was given up
    }
  }
  return true;
}

void Subscription::set_owned(const std::set<TP>& next, std::vector<v1::SubscribeResponse>* out) {
  for (auto it = positions_.begin(); it != positions_.end();) {
    it = next.count(it->first) ? std::next(it) : positions_.erase(it);
  }
  std::vector<TP> added;
  for (const auto& tp : next) {
    if (!positions_.count(tp)) added.push_back(tp);
  }
  if (!added.empty()) {
    // The group's committed offsets; -1 where there is none (resolved at the first read).
    v1::OffsetFetchRequest req;
    req.set_group_id(start_.group_id());
    v1::OffsetFetchRequest::Topic* t = nullptr;
    for (const auto& tp : added) {
      if (!t || t->name() != tp.first) {
        t = req.add_topics();
        t->set_name(tp.first);
      }
      t->add_partitions(tp.second);
    }
    v1::OffsetFetchResponse resp;
    std::map<TP, int64_t> committed;
    if (calls_.offset_fetch(req, &resp) && resp.error_code() == ev1::NONE) {
      for (const auto& rt : resp.topics()) {
        for (const auto& p : rt.partitions()) committed[{rt.name(), p.partition()}] = p.committed_offset();
      }
    }
    for (const auto& tp : added) {
      auto it = committed.find(tp);
      positions_[tp] = it != committed.end() && it->second >= 0 ? it->second : -1;
    }
  }
  v1::SubscribeResponse a;
  auto* as = a.mutable_assignment();
  as->set_member_id(member_id_);
  as->set_member_epoch(epoch_);
  v1::TopicPartitions* cur = nullptr;
  for (const auto& [tp, pos] : positions_) {
    if (!cur || cur->topic() != tp.first) {
      cur = as->add_partitions();
      cur->set_topic(tp.first);
    }
    cur->add_partitions(tp.second);
  }
  out->push_back(std::move(a));
}

bool Subscription::step(std::vector<v1::SubscribeResponse>* out) {
  if (start_.group_id().empty() || start_.topics().empty()) {
    out->push_back(error_message(ev1::INVALID_REQUEST, "Start needs a group_id and at least one topic"));
    return false;
  }
  if (calls_.now_ms() >= next_beat_ms_) {
    v1::SubscribeResponse error;
    if (!heartbeat(out, &error)) {
      out->push_back(std::move(error));
      return false;
    }
  }
  const int32_t max_records = start_.max_records() > 0 ? start_.max_records() : 500;
  for (auto& [tp, pos] : positions_) {
    v1::FetchRecordsRequest req;
    req.set_topic(tp.first);
    req.set_partition(tp.second);
    if (pos < 0) {
      // No committed offset: ask past the end; the refusal carries the bounds to start from.
      req.set_offset(INT64_MAX);
      v1::FetchRecordsResponse r;
      if (!calls_.fetch(req, &r)) continue;
      if (r.error_code() == ev1::OFFSET_OUT_OF_RANGE || r.error_code() == ev1::NONE) {
        pos = start_.auto_offset_reset() == "earliest" ? r.log_start_offset() : r.high_watermark();
      }
      continue;
    }
    req.set_offset(pos);
    req.set_max_records(max_records);
    v1::FetchRecordsResponse r;
    if (!calls_.fetch(req, &r)) continue;
    if (r.error_code() == ev1::OFFSET_OUT_OF_RANGE) {
      // Retention passed it (or the log was truncated): auto_offset_reset again.
      pos = start_.auto_offset_reset() == "earliest" ? r.log_start_offset() : r.high_watermark();
      continue;
    }
    if (r.error_code() != ev1::NONE) continue;  // a leader moving: the next round asks again
    if (r.records_size() > 0) {
      v1::SubscribeResponse m;
      auto* recs = m.mutable_records();
      recs->set_topic(tp.first);
      recs->set_partition(tp.second);
      recs->mutable_records()->Swap(r.mutable_records());
      out->push_back(std::move(m));
    }
    pos = std::max(pos, r.next_offset());
  }
  return true;
}

void Subscription::commit(const v1::SubscribeRequest::Commit& c, std::vector<v1::SubscribeResponse>* out) {
  v1::SubscribeResponse m;
  auto* result = m.mutable_commit();
  std::map<std::string, std::vector<std::pair<int32_t, int64_t>>> by_topic;
  for (const auto& o : c.offsets()) by_topic[o.topic()].emplace_back(o.partition(), o.offset());
  for (int attempt = 0; attempt < 20 && !by_topic.empty(); ++attempt) {
    if (member_id_.empty()) {
      result->set_error_code(ev1::UNKNOWN_MEMBER_ID);
      result->set_error_message("the member is not in the group now (it rejoins): commit again after its assignment");
      break;
    }
    v1::OffsetCommitRequest req;
    req.set_group_id(start_.group_id());
    req.set_member_id(member_id_);
    req.set_generation_id(epoch_);
    for (const auto& [topic, offsets] : by_topic) {
      auto* t = req.add_topics();
      t->set_name(topic);
      for (const auto& [p, o] : offsets) {
        auto* pp = t->add_partitions();
        pp->set_partition(p);
        pp->set_committed_offset(o);
        pp->set_committed_leader_epoch(-1);
      }
    }
    v1::OffsetCommitResponse resp;
    ev1::ErrorCode e = ev1::NONE;
    std::string why;
    if (!calls_.offset_commit(req, &resp)) {
      e = ev1::REQUEST_TIMED_OUT;
      why = "the coordinator did not answer";
    } else {
      for (const auto& t : resp.topics()) {
        for (const auto& p : t.partitions()) {
          if (p.error_code() != ev1::NONE && e == ev1::NONE) e = p.error_code();
        }
      }
      why = resp.error_message();
    }
    if (e == ev1::STALE_MEMBER_EPOCH || coordinator_moved(e)) {
      // The epoch moved (or the coordinator did): learn it, then commit again.
      v1::SubscribeResponse error;
      if (!heartbeat(out, &error)) {
        result->set_error_code(error.error().error_code());
        result->set_error_message(error.error().error_message());
        break;
      }
      continue;
    }
    result->set_error_code(e);
    result->set_error_message(e == ev1::NONE ? "" : why);
    break;
  }
  out->push_back(std::move(m));
}

void Subscription::leave() {
  if (member_id_.empty()) return;
  v1::ConsumerGroupHeartbeatRequest req;
  req.set_group_id(start_.group_id());
  req.set_member_id(member_id_);
  req.set_member_epoch(-1);
  v1::ConsumerGroupHeartbeatResponse resp;
  calls_.heartbeat(req, &resp);
  member_id_.clear();
  epoch_ = 0;
}

}  // namespace gannet::broker
