#include "client/consumer.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include "common/assignor.h"
#include "client/consumer_protocol.h"
#include "storage/record_batch.h"

namespace gannet::client {

using gannet::v1::ErrorCode;
namespace ev1 = gannet::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kNone = -3;       // position: no offset and auto.offset.reset=none
constexpr int64_t kCommitted = -4;  // position: ask the group for its committed offset

int64_t ms_until(Clock::time_point t) {
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count());
}

// Errors after which the coordinator is to be found again.
bool coordinator_moved(ErrorCode e) {
  return e == ev1::NOT_COORDINATOR || e == ev1::COORDINATOR_NOT_AVAILABLE || e == ev1::COORDINATOR_LOAD_IN_PROGRESS ||
         e == ev1::REQUEST_TIMED_OUT;
}

// Errors meaning this member's generation is over: rejoin.
bool generation_over(ErrorCode e) {
  return e == ev1::REBALANCE_IN_PROGRESS || e == ev1::ILLEGAL_GENERATION || e == ev1::UNKNOWN_MEMBER_ID;
}

int64_t reset_code(const std::string& policy) {
  return policy == "earliest" ? -2 : (policy == "latest" ? -1 : kNone);
}

}  // namespace

Consumer::Consumer(ConsumerConfig config) : config_(std::move(config)), metadata_(config_.bootstrap_servers) {
  last_poll_ = Clock::now();
  if (config_.group_protocol != "classic" && config_.group_protocol != "consumer") {
    throw std::invalid_argument("group.protocol must be classic or consumer, not '" + config_.group_protocol + "'");
  }
  if (!config_.group_id.empty()) {
    heartbeat_thread_ = std::thread([this] { consumer_protocol() ? consumer_heartbeat_loop() : heartbeat_loop(); });
  }
}

Consumer::~Consumer() {
  close();
  prefetch_.clear();  // cancels what is still out
  // Fetch callbacks use this object: wait for the last (cancelled calls end at once).
  std::unique_lock<std::mutex> l(gmu_);
  gcv_.wait(l, [&] { return fetches_out_ == 0; });
}

void Consumer::assign(const std::vector<TopicPartition>& partitions) {
  std::map<TopicPartition, int64_t> next;
  // With a group id, a manually assigned partition starts from the group's committed offset.
  const int64_t start = config_.group_id.empty() ? reset_code(config_.auto_offset_reset) : kCommitted;
  for (const auto& tp : partitions) {
    auto it = positions_.find(tp);
    next[tp] = it == positions_.end() ? start : it->second;
  }
  positions_ = std::move(next);
}

void Consumer::subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) {
  subscribed_ = true;
  topics_ = topics;
  std::sort(topics_.begin(), topics_.end());
  pattern_.reset();
  pattern_text_.clear();
  listener_ = listener;
  next_metadata_check_ = Clock::now();
}

void Consumer::subscribe(const std::string& pattern, RebalanceListener* listener) {
  subscribed_ = true;
  topics_.clear();
  pattern_.emplace(pattern, std::regex::ECMAScript);
  pattern_text_ = pattern;
  listener_ = listener;
  next_metadata_check_ = Clock::now();
}

void Consumer::unsubscribe() {
  cancel_join();
  if (subscribed_) {
    revoke_all();
    leave_group("the consumer unsubscribed");
    std::lock_guard<std::mutex> l(gmu_);
    cg_subscribed_ = false;  // (consumer protocol) no heartbeats until the next subscription
    cg_owned_.clear();
  }
  subscribed_ = false;
  topics_.clear();
  pattern_.reset();
  positions_.clear();
}

std::vector<TopicPartition> Consumer::assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, pos] : positions_) out.push_back(tp);
  return out;
}

void Consumer::seek(const TopicPartition& tp, int64_t offset) { positions_[tp] = offset; }
void Consumer::seek_to_beginning(const TopicPartition& tp) { positions_[tp] = -2; }
void Consumer::seek_to_end(const TopicPartition& tp) { positions_[tp] = -1; }

void Consumer::pause(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    if (positions_.count(tp)) paused_.insert(tp);
  }
}

void Consumer::resume(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) paused_.erase(tp);
}

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

std::string Consumer::member_id() const {
  std::lock_guard<std::mutex> l(gmu_);
  return member_id_;
}

int32_t Consumer::generation() const {
  std::lock_guard<std::mutex> l(gmu_);
  return joined_ ? generation_ : -1;
}

void Consumer::wake() {
  {
    std::lock_guard<std::mutex> l(gmu_);
    ++wake_count_;
  }
  gcv_.notify_all();
}

// ---- Offsets reset --------------------------------------------------------------------------------

bool Consumer::reset_offsets(std::vector<TopicPartition>* failed) {
  bool ok = true;
  for (auto& [tp, pos] : positions_) {
    if (pos >= 0 || pos == kCommitted) continue;
    if (pos == kNone) {
      failed->push_back(tp);
      ok = false;
      continue;
    }
    auto parts = metadata_.partitions(tp.topic);
    if (tp.partition >= static_cast<int32_t>(parts.size())) {
      // Not in our metadata (yet): e.g. a partition just added, assigned by a leader that has
      // seen it. Not an out-of-range offset: look again and resolve it at a later poll.
      metadata_.refresh({tp.topic});
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

// ---- Group membership -----------------------------------------------------------------------------

bv1::Broker::Stub* Consumer::coordinator(Clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> l(gmu_);
    if (coordinator_id_ >= 0) {
      if (auto* s = metadata_.broker(coordinator_id_)) return s;
    }
  }
  size_t attempt = 0;
  while (Clock::now() < deadline) {
    bv1::Broker::Stub* any = metadata_.any_broker(attempt++);
    if (!any) return nullptr;
    bv1::FindCoordinatorRequest req;
    req.set_key(config_.group_id);
    bv1::FindCoordinatorResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(std::min<int64_t>(ms_until(deadline) + 1, 15'000)));
    if (any->FindCoordinator(&ctx, req, &resp).ok()) {
      if (resp.error_code() == ev1::NONE) {
        if (!metadata_.broker(resp.node_id())) metadata_.refresh();
        if (auto* s = metadata_.broker(resp.node_id())) {
          std::lock_guard<std::mutex> l(gmu_);
          coordinator_id_ = resp.node_id();
          return s;
        }
      } else if (resp.error_code() == ev1::INVALID_GROUP_ID) {
        return nullptr;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(100, ms_until(deadline))));
  }
  return nullptr;
}

void Consumer::forget_coordinator() {
  std::lock_guard<std::mutex> l(gmu_);
  coordinator_id_ = -1;
}

std::vector<std::string> Consumer::subscribed_topics() {
  if (!pattern_) return topics_;
  std::vector<std::string> out;
  for (const std::string& t : metadata_.list_topics()) {
    if (t.rfind("__", 0) == 0) continue;  // internal topics are never matched by a pattern
    if (std::regex_match(t, *pattern_)) out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Consumer::revoke_all() {
  if (positions_.empty()) return;
  if (config_.enable_auto_commit && !config_.group_id.empty()) {
    do_commit(current_positions(), Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms),
              in_group_mode());
  }
  std::vector<TopicPartition> revoked = assignment();
  if (listener_) listener_->on_revoked(revoked);
  positions_.clear();
  paused_.clear();
  prefetch_.clear();
}

bool Consumer::ensure_active_group(Clock::time_point deadline, ErrorCode* error) {
  while (true) {
    {
      std::lock_guard<std::mutex> l(gmu_);
      if (joined_ && !rejoin_needed_ && !join_task_.valid()) return true;
    }
    if (!join_task_.valid()) {
      // Eager rebalance: commit and give up every partition before joining again.
      revoke_all();
      {
        std::lock_guard<std::mutex> l(gmu_);
        joined_ = false;
        rejoin_needed_ = false;
        join_cancelled_ = false;
      }
      // The join and sync run on their own thread: the coordinator holds a JoinGroup until every
      // member has rejoined (up to the rebalance timeout), and poll(timeout) must not wait that
      // long, nor close() or a signal wait for it.
      JoinInput in;
      in.topics = subscribed_topics();
      in.pattern = pattern_text_;
      in.owned = previous_assignment_;
      in.generation = previous_generation_;
      join_task_ = std::async(std::launch::async, [this, in = std::move(in)] { return run_join(in); });
    }
    if (join_task_.wait_until(deadline) != std::future_status::ready) return false;
    JoinOutcome out = join_task_.get();
    if (out.error != ev1::NONE) {
      if (error) *error = out.error;
      return false;
    }
    if (!out.joined) return false;  // cancelled or out of time: the next poll starts again
    {
      // The sync may have answered long before this poll. Since then (heartbeats ran) the
      // generation may have ended, or the application subscribed to something else: then the
      // assignment is not taken (nothing was assigned, so nothing is revoked); rejoin at once.
      std::lock_guard<std::mutex> l(gmu_);
      const bool resubscribed = out.pattern != pattern_text_ || (!pattern_ && out.topics != topics_);
      if (!joined_ || rejoin_needed_ || generation_ != out.generation || member_id_ != out.member_id ||
          resubscribed) {
        rejoin_needed_ = true;
        continue;
      }
    }
    is_leader_ = out.leader;
    assigned_counts_ = std::move(out.assigned_counts);
    positions_.clear();
    for (const auto& tp : out.partitions) positions_[tp] = kCommitted;
    previous_assignment_ = out.partitions;
    previous_generation_ = out.generation;
    joined_topics_ = std::move(out.topics);
    ++rebalances_;
    if (listener_) listener_->on_assigned(out.partitions);
    next_auto_commit_ = Clock::now() + std::chrono::milliseconds(config_.auto_commit_interval_ms);
    return true;
  }
}

Consumer::JoinOutcome Consumer::run_join(const JoinInput& in) {
  JoinOutcome out;
  out.topics = in.topics;
  out.pattern = in.pattern;
  // Bounded: a join phase ends within the rebalance timeout; a few attempts more at most.
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.max_poll_interval_ms + 30'000);
  // Runs one call with a context close() can cancel; false if cancelled.
  auto call = [&](auto&& rpc, int64_t timeout_ms) -> grpc::Status {
    auto ctx = std::make_shared<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    {
      std::lock_guard<std::mutex> l(gmu_);
      if (join_cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      join_ctx_ = ctx;
    }
    grpc::Status st = rpc(ctx.get());
    std::lock_guard<std::mutex> l(gmu_);
    join_ctx_.reset();
    return st;
  };
  auto cancelled = [&] {
    std::lock_guard<std::mutex> l(gmu_);
    return join_cancelled_;
  };
  auto pause = [&] {
    std::unique_lock<std::mutex> l(gmu_);
    gcv_.wait_for(l, std::chrono::milliseconds(100), [&] { return join_cancelled_; });
  };
  while (Clock::now() < deadline && !cancelled()) {
    bv1::Broker::Stub* coord = coordinator(std::min(deadline, Clock::now() + std::chrono::seconds(5)));
    if (!coord) {
      pause();
      continue;
    }
    std::string member;
    {
      std::lock_guard<std::mutex> l(gmu_);
      member = member_id_;
    }
    bv1::JoinGroupRequest req;
    req.set_group_id(config_.group_id);
    req.set_session_timeout_ms(config_.session_timeout_ms);
    req.set_rebalance_timeout_ms(config_.max_poll_interval_ms);
    req.set_member_id(member);
    req.set_protocol_type("consumer");
    req.set_client_id(config_.client_id);
    for (const std::string& name : config_.partition_assignment_strategy) {
      Subscription sub;
      sub.topics = in.topics;
      sub.owned_partitions = in.owned;
      sub.generation_id = in.generation;
      auto* p = req.add_protocols();
      p->set_name(name);
      p->set_metadata(encode_subscription(sub));
    }
    bv1::JoinGroupResponse join;
    // The coordinator holds the call until every member has rejoined (up to the rebalance
    // timeout), so the deadline is that, not the poll's.
    if (!call([&](grpc::ClientContext* c) { return coord->JoinGroup(c, req, &join); },
              config_.max_poll_interval_ms + 10'000)
             .ok()) {
      forget_coordinator();
      pause();
      continue;
    }
    const ErrorCode je = join.error_code();
    if (je == ev1::MEMBER_ID_REQUIRED) {
      std::lock_guard<std::mutex> l(gmu_);
      member_id_ = join.member_id();
      continue;
    }
    if (je == ev1::UNKNOWN_MEMBER_ID || je == ev1::ILLEGAL_GENERATION) {
      std::lock_guard<std::mutex> l(gmu_);
      member_id_.clear();
      continue;
    }
    if (je == ev1::REBALANCE_IN_PROGRESS) continue;
    if (coordinator_moved(je)) {
      forget_coordinator();
      pause();
      continue;
    }
    if (je != ev1::NONE) {
      out.error = je;
      return out;
    }
    {
      std::lock_guard<std::mutex> l(gmu_);
      member_id_ = join.member_id();
      generation_ = join.generation_id();
    }
    // The leader assigns.
    bv1::SyncGroupRequest sreq;
    sreq.set_group_id(config_.group_id);
    sreq.set_generation_id(join.generation_id());
    sreq.set_member_id(join.member_id());
    sreq.set_protocol_type("consumer");
    sreq.set_protocol_name(join.protocol_name());
    out.leader = join.leader() == join.member_id();
    out.assigned_counts.clear();
    if (out.leader) {
      auto assignor = make_assignor(join.protocol_name());
      if (!assignor) {
        out.error = ev1::INCONSISTENT_GROUP_PROTOCOL;
        return out;
      }
      std::vector<AssignorMember> members;
      std::set<std::string> all_topics;
      for (const auto& m : join.members()) {
        auto sub = decode_subscription(m.metadata());
        AssignorMember am;
        am.member_id = m.member_id();
        if (sub) {
          am.topics = sub->topics;
          am.owned_partitions = sub->owned_partitions;
          am.generation = sub->generation_id;
          am.user_data = sub->user_data;
        }
        all_topics.insert(am.topics.begin(), am.topics.end());
        members.push_back(std::move(am));
      }
      metadata_.refresh(std::vector<std::string>(all_topics.begin(), all_topics.end()));
      for (const std::string& t : all_topics) {
        const int32_t n = metadata_.partition_count(t);
        if (n > 0) out.assigned_counts[t] = n;
      }
      GroupAssignment result = assignor->assign(out.assigned_counts, members);
      for (const auto& [mid, parts] : result) {
        auto* a = sreq.add_assignments();
        a->set_member_id(mid);
        MemberAssignment ma;
        ma.partitions = parts;
        a->set_assignment(encode_assignment(ma));
      }
    }
    bv1::SyncGroupResponse sync;
    if (!call([&](grpc::ClientContext* c) { return coord->SyncGroup(c, sreq, &sync); },
              std::max(config_.session_timeout_ms, config_.max_poll_interval_ms) + 10'000)
             .ok()) {
      forget_coordinator();
      continue;
    }
    if (sync.error_code() != ev1::NONE) {
      if (sync.error_code() == ev1::UNKNOWN_MEMBER_ID) {
        std::lock_guard<std::mutex> l(gmu_);
        member_id_.clear();
      }
      if (coordinator_moved(sync.error_code())) forget_coordinator();
      if (generation_over(sync.error_code()) || coordinator_moved(sync.error_code())) continue;
      out.error = sync.error_code();
      return out;
    }
    auto assigned = decode_assignment(sync.assignment());
    out.partitions = assigned ? assigned->partitions : std::vector<TopicPartition>{};
    std::sort(out.partitions.begin(), out.partitions.end());
    out.generation = join.generation_id();
    out.member_id = join.member_id();
    out.joined = true;
    {
      std::lock_guard<std::mutex> l(gmu_);
      // In the generation now: heartbeats start at once, not at the next poll (which applies the
      // assignment; the application may not poll again for up to max.poll.interval.ms). A
      // rebalance that began while we synced is seen by the next heartbeat.
      joined_ = true;
    }
    gcv_.notify_all();  // the heartbeat thread starts
    return out;
  }
  return out;
}

void Consumer::cancel_join() {
  if (!join_task_.valid()) return;
  {
    std::lock_guard<std::mutex> l(gmu_);
    join_cancelled_ = true;
    if (join_ctx_) join_ctx_->TryCancel();
  }
  gcv_.notify_all();
  join_task_.wait();
  join_task_ = {};
}

bool Consumer::fetch_committed_positions(Clock::time_point deadline) {
  std::vector<TopicPartition> want;
  for (const auto& [tp, pos] : positions_) {
    if (pos == kCommitted) want.push_back(tp);
  }
  if (want.empty()) return true;
  while (Clock::now() < deadline) {
    bv1::Broker::Stub* coord = coordinator(deadline);
    if (!coord) return false;
    bv1::OffsetFetchRequest req;
    req.set_group_id(config_.group_id);
    std::map<std::string, bv1::OffsetFetchRequest::Topic*> by_topic;
    for (const auto& tp : want) {
      auto*& t = by_topic[tp.topic];
      if (!t) {
        t = req.add_topics();
        t->set_name(tp.topic);
      }
      t->add_partitions(tp.partition);
    }
    bv1::OffsetFetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!coord->OffsetFetch(&ctx, req, &resp).ok() || coordinator_moved(resp.error_code())) {
      forget_coordinator();
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(100, ms_until(deadline))));
      continue;
    }
    if (resp.error_code() != ev1::NONE) return false;
    const int64_t reset = reset_code(config_.auto_offset_reset);
    for (const auto& t : resp.topics()) {
      for (const auto& p : t.partitions()) {
        auto it = positions_.find({t.name(), p.partition()});
        if (it == positions_.end() || it->second != kCommitted) continue;
        it->second = p.committed_offset() >= 0 ? p.committed_offset() : reset;
      }
    }
    return true;
  }
  return false;
}

std::map<TopicPartition, OffsetAndMetadata> Consumer::current_positions() const {
  std::map<TopicPartition, OffsetAndMetadata> out;
  for (const auto& [tp, pos] : positions_) {
    if (pos >= 0) out[tp] = OffsetAndMetadata{pos, ""};
  }
  return out;
}

ErrorCode Consumer::do_commit(const std::map<TopicPartition, OffsetAndMetadata>& offsets, Clock::time_point deadline,
                             bool as_member, std::optional<std::pair<int32_t, std::string>> pinned) {
  if (config_.group_id.empty()) return ev1::INVALID_GROUP_ID;
  if (offsets.empty()) return ev1::NONE;
  while (true) {
    bv1::Broker::Stub* coord = coordinator(deadline);
    if (!coord) return ev1::COORDINATOR_NOT_AVAILABLE;
    bv1::OffsetCommitRequest req;
    req.set_group_id(config_.group_id);
    {
      std::lock_guard<std::mutex> l(gmu_);
      // A member commits in its generation; outside a group (assign()), as nobody. A subscribed
      // consumer between generations (thrown out by max.poll.interval.ms, or rejoining) has no
      // right to commit: as nobody, the coordinator would take it whenever the group is Empty
      // and overwrite offsets the partitions' next owner relies on (Kafka fails such a commit
      // in the client too).
      if (pinned) {
        req.set_generation_id(pinned->first);
        req.set_member_id(pinned->second);
      } else if (as_member && !joined_) {
        return member_id_.empty() ? ev1::UNKNOWN_MEMBER_ID : ev1::REBALANCE_IN_PROGRESS;
      } else if (as_member) {
        req.set_generation_id(generation_);
        req.set_member_id(member_id_);
      } else {
        req.set_generation_id(-1);
      }
    }
    std::map<std::string, bv1::OffsetCommitRequest::Topic*> by_topic;
    for (const auto& [tp, om] : offsets) {
      auto*& t = by_topic[tp.topic];
      if (!t) {
        t = req.add_topics();
        t->set_name(tp.topic);
      }
      auto* p = t->add_partitions();
      p->set_partition(tp.partition);
      p->set_committed_offset(om.offset);
      p->set_committed_leader_epoch(-1);
      p->set_metadata(om.metadata);
    }
    bv1::OffsetCommitResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(std::min<int64_t>(ms_until(deadline) + 1, 30'000)));
    ErrorCode e = ev1::NONE;
    if (!coord->OffsetCommit(&ctx, req, &resp).ok()) {
      e = ev1::REQUEST_TIMED_OUT;
    } else {
      for (const auto& t : resp.topics()) {
        for (const auto& p : t.partitions()) {
          if (p.error_code() != ev1::NONE) e = p.error_code();
        }
      }
    }
    if (e == ev1::NONE) return e;
    if (consumer_protocol() && as_member) {
      // The epoch moved between the commit and its answer (a heartbeat answered meanwhile):
      // commit again with the new one while the member is the same. Other refusals are the
      // heartbeat thread's to act on.
      if (e == ev1::STALE_MEMBER_EPOCH && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::lock_guard<std::mutex> l(gmu_);
        if (member_id_ == req.member_id() && joined_) {
          if (pinned) pinned->first = generation_;
          continue;
        }
      }
      return e;
    }
    if (generation_over(e)) {
      // Only if the membership the commit was made in is still ours: a late answer to an old
      // (e.g. asynchronous) commit must not throw out the generation joined since.
      std::lock_guard<std::mutex> l(gmu_);
      if (req.generation_id() >= 0 && req.generation_id() == generation_ && req.member_id() == member_id_) {
        rejoin_needed_ = true;
        if (e == ev1::UNKNOWN_MEMBER_ID) member_id_.clear();
        ++wake_count_;
        gcv_.notify_all();
      }
      return e;
    }
    if (!coordinator_moved(e) || Clock::now() >= deadline) return e;
    forget_coordinator();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(100, ms_until(deadline))));
  }
}

ErrorCode Consumer::commit_sync(const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
  // After every commit_async made before it (as Kafka's commitSync).
  if (last_async_commit_.valid()) last_async_commit_.wait();
  return do_commit(offsets.empty() ? current_positions() : offsets,
                   Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms), in_group_mode());
}

void Consumer::commit_async(std::function<void(ErrorCode)> callback,
                            const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
  auto what = offsets.empty() ? current_positions() : offsets;
  const bool as_member = in_group_mode();
  std::optional<std::pair<int32_t, std::string>> pinned;
  if (as_member) {
    std::lock_guard<std::mutex> l(gmu_);
    if (!joined_) {
      // Between generations: refused at once, as commit_sync would be (the callback still runs
      // in a later poll).
      std::promise<ErrorCode> refused;
      refused.set_value(member_id_.empty() ? ev1::UNKNOWN_MEMBER_ID : ev1::REBALANCE_IN_PROGRESS);
      async_commits_.emplace_back(refused.get_future().share(), std::move(callback));
      return;
    }
    pinned.emplace(generation_, member_id_);
  }
  // Goes out once the previous commit_async is answered: one commit in flight at a time, in call
  // order (concurrent ones could land in any order, an older offset last).
  std::shared_future<ErrorCode> previous = last_async_commit_;
  auto f = std::async(std::launch::async, [this, what, as_member, pinned, previous] {
             if (previous.valid()) previous.wait();
             return do_commit(what, Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms), as_member,
                              pinned);
           }).share();
  last_async_commit_ = f;
  async_commits_.emplace_back(std::move(f), std::move(callback));
}

void Consumer::run_async_callbacks(bool wait) {
  // Callbacks run in call order: stop at the first commit still out.
  for (auto it = async_commits_.begin(); it != async_commits_.end();) {
    if (!wait && it->first.wait_for(std::chrono::seconds(0)) != std::future_status::ready) break;
    ErrorCode e = it->first.get();
    if (it->second) it->second(e);
    it = async_commits_.erase(it);
  }
}

std::optional<int64_t> Consumer::committed(const TopicPartition& tp) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms);
  while (Clock::now() < deadline) {
    bv1::Broker::Stub* coord = coordinator(deadline);
    if (!coord) return std::nullopt;
    bv1::OffsetFetchRequest req;
    req.set_group_id(config_.group_id);
    auto* t = req.add_topics();
    t->set_name(tp.topic);
    t->add_partitions(tp.partition);
    bv1::OffsetFetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!coord->OffsetFetch(&ctx, req, &resp).ok() || coordinator_moved(resp.error_code())) {
      forget_coordinator();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (resp.error_code() != ev1::NONE || resp.topics_size() != 1 || resp.topics(0).partitions_size() != 1) return std::nullopt;
    const int64_t o = resp.topics(0).partitions(0).committed_offset();
    return o >= 0 ? std::optional<int64_t>(o) : std::nullopt;
  }
  return std::nullopt;
}

void Consumer::maybe_auto_commit() {
  if (!config_.enable_auto_commit || config_.group_id.empty() || !in_group_mode()) return;
  if (Clock::now() < next_auto_commit_) return;
  next_auto_commit_ = Clock::now() + std::chrono::milliseconds(config_.auto_commit_interval_ms);
  {
    std::lock_guard<std::mutex> l(gmu_);
    if (!joined_ || rejoin_needed_) return;
  }
  do_commit(current_positions(), Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms), true);
}

void Consumer::heartbeat_loop() {
  std::unique_lock<std::mutex> l(gmu_);
  while (!closed_) {
    // Heartbeats run while this member holds a generation, including while poll() revokes its
    // partitions before rejoining (commits and the listener may take longer than a session);
    // they stop when the JoinGroup goes out.
    gcv_.wait(l, [&] { return closed_ || joined_; });
    if (closed_) return;
    // max.poll.interval.ms: an application that stopped polling leaves, so its partitions move.
    if (Clock::now() - last_poll_ > std::chrono::milliseconds(config_.max_poll_interval_ms)) {
      l.unlock();
      leave_group("poll() was not called within max.poll.interval.ms");
      l.lock();
      continue;
    }
    const int32_t generation = generation_;
    const std::string member = member_id_;
    const int32_t coord_id = coordinator_id_;
    // Already told to rejoin: the coordinator answers at once now, so heartbeat at the interval.
    const bool rejoining = rejoin_needed_;
    l.unlock();
    bv1::Broker::Stub* coord = coord_id >= 0 ? metadata_.broker(coord_id) : nullptr;
    ErrorCode e = ev1::NOT_COORDINATOR;
    if (coord) {
      bv1::HeartbeatRequest req;
      req.set_group_id(config_.group_id);
      req.set_generation_id(generation);
      req.set_member_id(member);
      req.set_max_wait_ms(rejoining ? 0 : config_.heartbeat_interval_ms);
      bv1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(config_.heartbeat_interval_ms + 5'000));
      e = coord->Heartbeat(&ctx, req, &resp).ok() ? resp.error_code() : ev1::REQUEST_TIMED_OUT;
    }
    l.lock();
    if (closed_ || generation != generation_ || !joined_) continue;
    if (generation_over(e)) {
      if (!rejoin_needed_) {
        rejoin_needed_ = true;
        if (e == ev1::UNKNOWN_MEMBER_ID) member_id_.clear();
        ++wake_count_;
        gcv_.notify_all();  // poll() rejoins now
      } else {
        gcv_.wait_for(l, std::chrono::milliseconds(config_.heartbeat_interval_ms),
                      [&] { return closed_ || !joined_ || generation != generation_; });
      }
      continue;
    }
    if (rejoining && e == ev1::NONE) {
      gcv_.wait_for(l, std::chrono::milliseconds(config_.heartbeat_interval_ms),
                    [&] { return closed_ || !joined_ || generation != generation_; });
      continue;
    }
    if (e != ev1::NONE) {
      // Coordinator gone or unreachable: find it again and retry soon, within the session.
      const bool moved = coordinator_moved(e) || e == ev1::REQUEST_TIMED_OUT;
      if (moved) coordinator_id_ = -1;
      l.unlock();
      // Rediscovery uses the metadata channels (thread safe); bounded by the session.
      if (moved) coordinator(Clock::now() + std::chrono::milliseconds(config_.session_timeout_ms / 2));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      l.lock();
    }
  }
}

void Consumer::leave_group(const std::string& reason) {
  // Out of the group here first, then told to the coordinator (best effort: its session ends it
  // otherwise). Under the consumer protocol, what this consumer still holds is dropped at the next
  // poll, as lost: the others may have it by then.
  std::string member;
  int32_t coord_id;
  bool joined;
  {
    std::lock_guard<std::mutex> l(gmu_);
    member = member_id_;
    coord_id = coordinator_id_;
    joined = joined_;
    joined_ = false;
    rejoin_needed_ = true;
    member_id_.clear();
    generation_ = -1;
    if (consumer_protocol()) cg_lost_ = true;
    ++wake_count_;
  }
  gcv_.notify_all();
  if (member.empty() || config_.group_id.empty()) return;
  bv1::Broker::Stub* coord = coord_id >= 0 ? metadata_.broker(coord_id) : nullptr;
  if (!coord) return;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (consumer_protocol()) {
    // A heartbeat with epoch -1: the partitions go to the others at once.
    if (!joined) return;
    bv1::ConsumerGroupHeartbeatRequest req;
    req.set_group_id(config_.group_id);
    req.set_member_id(member);
    req.set_member_epoch(-1);
    bv1::ConsumerGroupHeartbeatResponse resp;
    coord->ConsumerGroupHeartbeat(&ctx, req, &resp);
    return;
  }
  bv1::LeaveGroupRequest req;
  req.set_group_id(config_.group_id);
  req.add_member_ids(member);
  req.set_reason(reason);
  bv1::LeaveGroupResponse resp;
  coord->LeaveGroup(&ctx, req, &resp);
}

void Consumer::close() {
  {
    std::lock_guard<std::mutex> l(gmu_);
    if (closed_) return;
  }
  cancel_join();  // a join in flight ends now (the coordinator drops the member at leave)
  if (in_group_mode()) {
    bool joined;
    {
      std::lock_guard<std::mutex> l(gmu_);
      joined = joined_ && (consumer_protocol() || !rejoin_needed_);
    }
    if (joined && config_.enable_auto_commit) {
      do_commit(current_positions(), Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms), true);
    }
    // Commits still in flight finish in this generation, before the member leaves (as Kafka's).
    run_async_callbacks(/*wait=*/true);
    if (listener_ && !positions_.empty()) listener_->on_revoked(assignment());
    leave_group("the consumer is closing");
  }
  run_async_callbacks(/*wait=*/true);
  {
    std::lock_guard<std::mutex> l(gmu_);
    closed_ = true;
  }
  gcv_.notify_all();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  prefetch_.clear();
}

// ---- group.protocol=consumer (KIP-848) --------------------------------------------------------

namespace {

std::vector<TopicPartition> from_set(const bv1::PartitionSet& ps) {
  std::vector<TopicPartition> out;
  for (const auto& t : ps.topics()) {
    for (int32_t p : t.partitions()) out.push_back({t.topic(), p});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

void Consumer::consumer_heartbeat_loop() {
  std::unique_lock<std::mutex> l(gmu_);
  int32_t interval_ms = config_.heartbeat_interval_ms;
  while (!closed_) {
    // Heartbeats run while subscribed; after a loss, only once poll() has dropped everything.
    gcv_.wait(l, [&] { return closed_ || (cg_subscribed_ && !cg_lost_); });
    if (closed_) return;
    if (joined_ && Clock::now() - last_poll_ > std::chrono::milliseconds(config_.max_poll_interval_ms)) {
      l.unlock();
      leave_group("poll() was not called within max.poll.interval.ms");
      l.lock();
      continue;
    }
    bv1::ConsumerGroupHeartbeatRequest req;
    req.set_group_id(config_.group_id);
    req.set_member_id(member_id_);
    req.set_member_epoch(joined_ ? generation_ : 0);
    req.set_client_id(config_.client_id);
    req.set_rebalance_timeout_ms(config_.max_poll_interval_ms);
    req.set_server_assignor(config_.group_remote_assignor);
    // Sent in full every time: a lost answer costs nothing, and it is how giving up is told.
    for (const auto& t : cg_topics_) req.add_subscribed_topic_names(t);
    auto* owned = req.mutable_owned();
    std::map<std::string, bv1::TopicPartitions*> by_topic;
    for (const auto& tp : cg_owned_) {
      auto*& t = by_topic[tp.topic];
      if (!t) {
        t = owned->add_topics();
        t->set_topic(tp.topic);
      }
      t->add_partitions(tp.partition);
    }
    cg_ack_now_ = false;
    const int32_t coord_id = coordinator_id_;
    l.unlock();
    bv1::Broker::Stub* coord = coord_id >= 0 ? metadata_.broker(coord_id) : nullptr;
    if (!coord) coord = coordinator(Clock::now() + std::chrono::milliseconds(5'000));
    ErrorCode e = ev1::COORDINATOR_NOT_AVAILABLE;
    bv1::ConsumerGroupHeartbeatResponse resp;
    if (coord) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      e = coord->ConsumerGroupHeartbeat(&ctx, req, &resp).ok() ? resp.error_code() : ev1::REQUEST_TIMED_OUT;
    }
    l.lock();
    if (closed_) return;
    if (cg_lost_) continue;  // left meanwhile (max.poll.interval.ms, unsubscribe)
    if (e == ev1::NONE) {
      member_id_ = resp.member_id();
      generation_ = resp.member_epoch();
      joined_ = true;
      if (resp.heartbeat_interval_ms() > 0) interval_ms = resp.heartbeat_interval_ms();
      if (resp.has_assignment()) {
        cg_assignment_ = from_set(resp.assignment());
        rejoin_needed_ = true;  // poll() applies it
        ++wake_count_;
        gcv_.notify_all();
      }
    } else if (e == ev1::UNKNOWN_MEMBER_ID || e == ev1::FENCED_MEMBER_EPOCH) {
      // Out of the group: what it holds may be another member's by now. Drop it all, rejoin.
      joined_ = false;
      generation_ = -1;
      member_id_.clear();
      cg_lost_ = true;
      cg_assignment_.reset();
      rejoin_needed_ = true;
      ++wake_count_;
      gcv_.notify_all();
      continue;
    } else if (coordinator_moved(e)) {
      coordinator_id_ = -1;
      interval_ms = std::min(interval_ms, 200);
    } else {
      // A refusal to report (UNSUPPORTED_ASSIGNOR, GROUP_ID_NOT_FOUND, GROUP_MAX_SIZE_REACHED,
      // INVALID_REQUEST...): poll() returns it; heartbeats go on at the interval.
      cg_fatal_ = e;
      rejoin_needed_ = true;
      ++wake_count_;
      gcv_.notify_all();
    }
    gcv_.wait_for(l, std::chrono::milliseconds(interval_ms), [&] { return closed_ || cg_ack_now_ || cg_lost_; });
    if (e != ev1::NONE && coordinator_moved(e)) interval_ms = config_.heartbeat_interval_ms;
  }
}

bool Consumer::apply_assignment(ErrorCode* error) {
  // A pattern is matched against the topics every metadata.max.age.ms (it reads the metadata).
  std::optional<std::vector<std::string>> topics;
  if (!pattern_) {
    topics = topics_;
  } else if (Clock::now() >= next_metadata_check_) {
    next_metadata_check_ = Clock::now() + std::chrono::milliseconds(config_.metadata_max_age_ms);
    topics = subscribed_topics();
  }
  std::optional<std::vector<TopicPartition>> target;
  bool lost;
  {
    std::lock_guard<std::mutex> l(gmu_);
    if (topics && (!cg_subscribed_ || *topics != cg_topics_)) {
      cg_topics_ = *topics;
      cg_subscribed_ = true;
      cg_ack_now_ = true;
      gcv_.notify_all();
    }
    if (cg_fatal_ != ev1::NONE) {
      *error = cg_fatal_;
      cg_fatal_ = ev1::NONE;
      rejoin_needed_ = false;
      return false;
    }
    lost = cg_lost_;
    target = std::move(cg_assignment_);
    cg_assignment_.reset();
    rejoin_needed_ = false;
  }
  if (lost) {
    // No commit: the partitions may be another member's already.
    if (listener_ && !positions_.empty()) listener_->on_revoked(assignment());
    positions_.clear();
    paused_.clear();
    prefetch_.clear();
    std::lock_guard<std::mutex> l(gmu_);
    cg_owned_.clear();
    cg_lost_ = false;
    gcv_.notify_all();  // the heartbeat thread rejoins
    return true;
  }
  if (!target) return true;
  const std::vector<TopicPartition> current = assignment();
  std::vector<TopicPartition> revoked, added;
  std::set_difference(current.begin(), current.end(), target->begin(), target->end(), std::back_inserter(revoked));
  std::set_difference(target->begin(), target->end(), current.begin(), current.end(), std::back_inserter(added));
  if (!revoked.empty()) {
    // Commit what was read of them, then give them up.
    if (config_.enable_auto_commit) {
      std::map<TopicPartition, OffsetAndMetadata> offsets;
      for (const auto& tp : revoked) {
        auto it = positions_.find(tp);
        if (it != positions_.end() && it->second >= 0) offsets[tp] = OffsetAndMetadata{it->second, ""};
      }
      do_commit(offsets, Clock::now() + std::chrono::milliseconds(config_.default_api_timeout_ms), true);
    }
    if (listener_) listener_->on_revoked(revoked);
    for (const auto& tp : revoked) {
      positions_.erase(tp);
      paused_.erase(tp);
    }
    prefetch_.clear();
  }
  for (const auto& tp : added) positions_[tp] = kCommitted;
  if (!added.empty() && listener_) listener_->on_assigned(added);
  if (!revoked.empty() || !added.empty()) ++rebalances_;
  if (next_auto_commit_ == Clock::time_point{}) {
    next_auto_commit_ = Clock::now() + std::chrono::milliseconds(config_.auto_commit_interval_ms);
  }
  std::lock_guard<std::mutex> l(gmu_);
  if (cg_owned_ != *target) {
    // Tell the coordinator at once (that is what releases what we gave up). An answer that only
    // repeats the assignment (every answer to a full heartbeat does) changes nothing: no extra
    // heartbeat, else members would heartbeat in a loop.
    cg_owned_ = *target;
    cg_ack_now_ = true;
    gcv_.notify_all();
  }
  return true;
}

// ---- Fetching ---------------------------------------------------------------------------------

Consumer::InFlight Consumer::launch(bv1::Broker::Stub* stub, const Wanted& wanted, int64_t wait_ms, int64_t slack_ms) {
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
  InFlight f;
  f.ctx = std::make_shared<grpc::ClientContext>();
  f.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(wait_ms + slack_ms));
  f.done = std::make_shared<std::atomic<bool>>(false);
  // gRPC's callback API: no thread of our own per fetch. The answer is decoded on the gRPC
  // thread that receives it (in parallel with the application and the other leaders' fetches).
  struct State {
    bv1::FetchRequest req;
    FetchCall call;
    std::promise<FetchCall> promise;
  };
  auto st = std::make_shared<State>();
  st->req = std::move(req);
  f.call = st->promise.get_future();
  {
    std::lock_guard<std::mutex> l(gmu_);
    ++fetches_out_;
  }
  stub->async()->Fetch(f.ctx.get(), &st->req, &st->call.resp,
                       [this, st, ctx = f.ctx, done = f.done](grpc::Status status) {
                         st->call.ok = status.ok();
                         if (st->call.ok) decode(st->req, &st->call);
                         st->promise.set_value(std::move(st->call));  // ready before `done` says so
                         done->store(true);
                         {
                           // The last touch of the consumer: its destructor waits for this.
                           std::lock_guard<std::mutex> l(gmu_);
                           ++wake_count_;
                           --fetches_out_;
                           gcv_.notify_all();
                         }
                       });
  return f;
}

void Consumer::decode(const bv1::FetchRequest& req, FetchCall* call) {
  std::map<std::pair<std::string, int32_t>, int64_t> asked;
  for (const auto& pd : req.partitions()) asked[{pd.topic(), pd.partition()}] = pd.fetch_offset();
  call->decoded.resize(static_cast<size_t>(call->resp.partitions_size()));
  for (int i = 0; i < call->resp.partitions_size(); ++i) {
    const auto& r = call->resp.partitions(i);
    if (r.error_code() != gannet::v1::NONE) continue;
    auto a = asked.find({r.topic(), r.partition()});
    if (a == asked.end()) continue;
    Decoded& d = call->decoded[static_cast<size_t>(i)];
    int64_t pos = a->second;
    const std::string& data = r.records();
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
        ConsumerRecord& c = d.records.emplace_back();
        c.topic = r.topic();
        c.partition = r.partition();
        c.offset = rec.offset;
        c.timestamp = rec.timestamp;
        if (rec.key) c.key = std::string(*rec.key);
        if (rec.value) c.value = std::string(*rec.value);
        pos = rec.offset + 1;
      }
      // A batch whose records were all compacted away still moves the position past it.
      pos = std::max(pos, batch.next_offset());
      d.end = pos;
    }
  }
}

std::vector<ConsumerRecord> Consumer::poll(int64_t timeout_ms, ErrorCode* error) {
  std::vector<ConsumerRecord> out;
  if (error) *error = gannet::v1::NONE;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  {
    std::lock_guard<std::mutex> l(gmu_);
    // A closed consumer reads nothing and joins nothing (Kafka throws here).
    if (closed_) {
      if (error) *error = gannet::v1::INVALID_REQUEST;
      return out;
    }
    last_poll_ = Clock::now();
  }
  run_async_callbacks(/*wait=*/false);
  do {
    if (in_group_mode() && consumer_protocol()) {
      maybe_auto_commit();
      ErrorCode ge = ev1::NONE;
      if (!apply_assignment(&ge)) {
        if (error) *error = ge;
        return out;
      }
      if (!fetch_committed_positions(deadline)) return out;
    } else if (in_group_mode()) {
      // The subscription may have changed under us: a pattern matching other topics, or (for the
      // leader) a subscribed topic with more partitions. Either way: rejoin.
      if (Clock::now() >= next_metadata_check_) {
        next_metadata_check_ = Clock::now() + std::chrono::milliseconds(config_.metadata_max_age_ms);
        bool changed = false;
        bool joined;
        {
          std::lock_guard<std::mutex> l(gmu_);
          // Not while a join outcome waits to be applied (joined_topics_ and is_leader_ are the
          // old generation's; ensure_active_group checks the subscription then).
          joined = joined_ && !join_task_.valid();
        }
        if (joined) {
          if (pattern_ || topics_ != joined_topics_) changed = subscribed_topics() != joined_topics_;
          if (!changed && is_leader_) {
            metadata_.refresh(std::vector<std::string>(joined_topics_.begin(), joined_topics_.end()));
            for (const auto& [t, n] : assigned_counts_) {
              if (metadata_.partition_count(t) != n) changed = true;
            }
          }
        }
        if (changed) {
          std::lock_guard<std::mutex> l(gmu_);
          rejoin_needed_ = true;
        }
      }
      maybe_auto_commit();
      ErrorCode ge = ev1::NONE;
      if (!ensure_active_group(deadline, &ge)) {
        if (error) *error = ge;
        return out;
      }
      if (!fetch_committed_positions(deadline)) return out;
    } else if (!config_.group_id.empty()) {
      if (!fetch_committed_positions(deadline)) return out;
    }
    std::vector<TopicPartition> failed;
    if (!reset_offsets(&failed) && !failed.empty()) {
      if (error) *error = gannet::v1::OFFSET_OUT_OF_RANGE;
      return out;
    }
    // One fetch per leader.
    std::map<int32_t, std::vector<TopicPartition>> by_leader;
    bool unknown_partition = false;
    for (const auto& [tp, pos] : positions_) {
      if (pos < 0 || paused_.count(tp)) continue;
      auto parts = metadata_.partitions(tp.topic);
      if (tp.partition < static_cast<int32_t>(parts.size())) {
        by_leader[parts[static_cast<size_t>(tp.partition)].leader].push_back(tp);
      } else {
        unknown_partition = true;  // assigned before our metadata shows it: refresh below
      }
    }
    const int64_t left = ms_until(deadline);
    bool refresh = unknown_partition || (by_leader.empty() && !positions_.empty() && paused_.size() < positions_.size());
    // Prefetches of leaders no longer asked (partitions moved or unassigned) are dropped.
    for (auto it = prefetch_.begin(); it != prefetch_.end();) {
      it = by_leader.count(it->first) ? std::next(it) : prefetch_.erase(it);
    }
    // One fetch per leader, all in flight at once (or already in flight: prefetched).
    struct Call {
      int32_t leader;
      Wanted wanted;
      InFlight f;
    };
    std::vector<Call> calls;
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
        InFlight f = std::move(pre->second.call);
        const bool matches = pre->second.wanted == wanted;
        prefetch_.erase(pre);
        if (matches) {
          calls.push_back(Call{leader, std::move(wanted), std::move(f)});
          continue;
        }
        // A stale prefetch is dropped here (cancelled, its answer unread).
      }
      InFlight f = launch(stub, wanted, std::min<int64_t>(left, config_.fetch_max_wait_ms), 10'000);
      calls.push_back(Call{leader, std::move(wanted), std::move(f)});
    }
    if (calls.empty() && !refresh) {
      // Nothing to fetch (no partitions, or all paused): wait for a rebalance or the deadline.
      std::unique_lock<std::mutex> l(gmu_);
      gcv_.wait_until(l, deadline, [&] { return rejoin_needed_ || closed_; });
      continue;
    }
    // Wait for the first answer, or for a rebalance to start (the fetches are cancelled then: the
    // member must rejoin within the rebalance timeout, not after a long poll). Every answer in by
    // then is used; the calls still out stay in flight as the next poll's prefetches, so one
    // leader's long poll (nothing new there) never holds back another leader's records.
    bool rejoining = false;
    {
      std::unique_lock<std::mutex> l(gmu_);
      // A stashed fetch may long-poll past this poll's deadline (it was sent by an earlier
      // poll): the deadline ends the wait, and so does a pending metadata refresh (a leader
      // moved: find it now, not after the others' long polls).
      while (!refresh && Clock::now() < deadline) {
        if (std::any_of(calls.begin(), calls.end(), [](const Call& c) { return c.f.done->load(); })) break;
        if (rejoin_needed_ && in_group_mode()) break;
        const int64_t seen = wake_count_;
        gcv_.wait_until(l, std::min(deadline, Clock::now() + std::chrono::milliseconds(200)),
                        [&] { return wake_count_ != seen; });
      }
      // (Under the consumer protocol a new assignment only ends the wait: fetches of partitions
      // kept go on, as the protocol means them to.)
      rejoining = rejoin_needed_ && in_group_mode() && !consumer_protocol();
      if (rejoining) {
        for (auto& c : calls) c.f.ctx->TryCancel();  // answers unwanted: rejoin at once
      }
    }
    // Answers, then at once the next fetch of every leader whose partitions all returned data.
    std::vector<FetchCall> answers;
    for (Call& c : calls) {
      if (!rejoining && !c.f.done->load()) {
        prefetch_[c.leader] = Prefetch{std::move(c.wanted), std::move(c.f)};
        continue;
      }
      const int32_t leader = c.leader;
      answers.push_back(c.f.call.get());
      const FetchCall& call = answers.back();
      if (!call.ok || rejoining) continue;
      Wanted next;
      bool all_data = call.resp.partitions_size() > 0;
      for (int i = 0; i < call.resp.partitions_size(); ++i) {
        const auto& r = call.resp.partitions(i);
        const int64_t end = call.decoded[static_cast<size_t>(i)].end;
        if (r.error_code() != gannet::v1::NONE || end < 0) {
          all_data = false;
          break;
        }
        next.emplace_back(TopicPartition{r.topic(), r.partition()}, end);
      }
      if (all_data) {
        if (bv1::Broker::Stub* stub = metadata_.broker(leader)) {
          // A long poll like any fetch: a record produced before the next poll comes in on this
          // one, not on a fetch sent after an empty answer. Dropping it (a seek, a rebalance,
          // the consumer's end) cancels it without waiting.
          prefetch_[leader] = Prefetch{next, launch(stub, next, config_.fetch_max_wait_ms, /*slack_ms=*/10'000)};
        }
      }
    }
    for (auto& call : answers) {
      if (!call.ok) {
        if (!rejoining) refresh = true;
        continue;
      }
      const bv1::FetchResponse& resp = call.resp;
      for (int i = 0; i < resp.partitions_size(); ++i) {
        const auto& r = resp.partitions(i);
        const TopicPartition tp{r.topic(), r.partition()};
        auto pit = positions_.find(tp);
        if (pit == positions_.end()) continue;  // no longer assigned
        if (r.error_code() == gannet::v1::OFFSET_OUT_OF_RANGE) {
          pit->second = reset_code(config_.auto_offset_reset);
          continue;
        }
        if (r.error_code() != gannet::v1::NONE) {
          refresh = true;
          continue;
        }
        hws_[tp] = r.high_watermark();
        bytes_ += r.records().size();
        int64_t& pos = pit->second;
        // Decoded from the offset the fetch asked for, which is this position: a fetch is only
        // used while the positions it was made for still hold (prefetches are matched above).
        Decoded& d = call.decoded[static_cast<size_t>(i)];
        for (ConsumerRecord& c : d.records) {
          if (c.offset < pos) continue;
          pos = c.offset + 1;
          out.push_back(std::move(c));
        }
        pos = std::max(pos, d.end);
      }
    }
    if (refresh) {
      metadata_.refresh();
      if (out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, ms_until(deadline))));
    }
  } while (out.empty() && Clock::now() < deadline);
  return out;
}

}  // namespace gannet::client
