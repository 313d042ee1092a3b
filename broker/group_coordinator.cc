#include "broker/group_coordinator.h"

#include <future>

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "broker/group_records.h"
#include "storage/log_manager.h"
#include "storage/record_batch.h"

namespace gannet::broker {

namespace ev1 = gannet::v1;
using ev1::ErrorCode;

namespace {

constexpr int kTimerTickMs = 20;
// Blocked calls return by these bounds even if the group never moves on (the client retries).
constexpr int64_t kJoinSlackMs = 5'000;

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s(16, '0');
  uint64_t v = rng();
  for (char& c : s) {
    c = hex[v & 15];
    v >>= 4;
  }
  return s;
}

// What a failed append of group records means to the client (Kafka's mapping).
ErrorCode coordinator_error(ErrorCode e) {
  switch (e) {
    case ev1::NONE:
      return ev1::NONE;
    case ev1::NOT_LEADER_OR_FOLLOWER:
    case ev1::FENCED_LEADER_EPOCH:
    case ev1::KAFKA_STORAGE_ERROR:
      return ev1::NOT_COORDINATOR;
    case ev1::UNKNOWN_TOPIC_OR_PARTITION:
    case ev1::NOT_ENOUGH_REPLICAS:
    case ev1::NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case ev1::REQUEST_TIMED_OUT:
      return ev1::COORDINATOR_NOT_AVAILABLE;
    case ev1::MESSAGE_TOO_LARGE:
    case ev1::RECORD_LIST_TOO_LARGE:
      return ev1::INVALID_COMMIT_OFFSET_SIZE;
    default:
      return ev1::UNKNOWN_SERVER_ERROR;
  }
}

std::chrono::steady_clock::time_point after_ms(int64_t ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, ms));
}

}  // namespace

const char* GroupCoordinator::state_name(State s) {
  switch (s) {
    case State::kEmpty:
      return "Empty";
    case State::kPreparingRebalance:
      return "PreparingRebalance";
    case State::kCompletingRebalance:
      return "CompletingRebalance";
    case State::kStable:
      return "Stable";
    case State::kDead:
      return "Dead";
  }
  return "Unknown";
}

int32_t GroupCoordinator::partition_for(const std::string& group, int32_t partitions) {
  int32_t h = 0;
  for (unsigned char c : group) h = static_cast<int32_t>(31u * static_cast<uint32_t>(h) + c);
  const int32_t positive = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
  return positive % std::max(1, partitions);
}

GroupCoordinator::GroupCoordinator(GroupCoordinatorOptions options, PartitionLookup partition, Clock* clock)
    : options_(std::move(options)),
      partition_(std::move(partition)),
      clock_(clock ? clock : SystemClock::instance()),
      partition_count_(options_.offsets_partitions) {
  next_offset_expiry_ms_ = now_ms() + options_.offsets_retention_check_interval_ms;
  timer_thread_ = std::thread([this] { timer_loop(); });
  loader_thread_ = std::thread([this] { loader_loop(); });
  writer_thread_ = std::thread([this] { writer_loop(); });
}

GroupCoordinator::~GroupCoordinator() {
  stop();
  // Commits still parked end now (their timeouts run at once: REQUEST_TIMED_OUT), and their
  // answers are given before the members they use go.
  commit_timer_.stop(/*run_pending=*/true);
  completions_.stop();
}

void GroupCoordinator::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    notify_locked();  // parked heartbeats answer NOT_COORDINATOR
  }
  cv_.notify_all();
  timer_cv_.notify_all();
  load_cv_.notify_all();
  writer_cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
  if (loader_thread_.joinable()) loader_thread_.join();
  if (writer_thread_.joinable()) writer_thread_.join();
}

size_t GroupCoordinator::group_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return groups_.size();
}

std::vector<GroupCoordinator::Committed> GroupCoordinator::committed_offsets(size_t limit) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Committed> out;
  for (const auto& [id, g] : groups_) {
    for (const auto& [tp, c] : g.offsets) {
      if (out.size() >= limit) return out;
      out.push_back({id, tp.first, tp.second, c.offset});
    }
  }
  return out;
}

// ---- Partition leadership and loading ---------------------------------------------------------

void GroupCoordinator::on_leadership(int32_t p, int32_t leader_epoch, int32_t partition_count) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return;
  if (partition_count > 0) partition_count_ = partition_count;
  auto it = partitions_.find(p);
  const int32_t had = it == partitions_.end() ? -1 : it->second.epoch;
  if (had == leader_epoch) return;
  // Another epoch (or no longer leading): what we hold may be stale. Forget this partition's
  // groups; blocked calls see their group gone and answer NOT_COORDINATOR.
  size_t dropped = 0;
  for (auto g = groups_.begin(); g != groups_.end();) {
    if (g->second.partition == p) {
      g = groups_.erase(g);
      ++dropped;
    } else {
      ++g;
    }
  }
  if (leader_epoch < 0) {
    partitions_.erase(p);
    if (had >= 0) LOG(INFO) << "group coordinator " << options_.node_id << ": resigned offsets partition " << p
                            << " (" << dropped << " group(s) unloaded)";
  } else {
    partitions_[p] = PartitionLoad{leader_epoch, false};
    load_queue_.emplace_back(p, leader_epoch);
    load_cv_.notify_all();
  }
  notify_locked();
}

void GroupCoordinator::loader_loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    load_cv_.wait(l, [&] { return stopping_ || !load_queue_.empty(); });
    if (stopping_) return;
    auto [p, epoch] = load_queue_.front();
    load_queue_.pop_front();
    auto it = partitions_.find(p);
    if (it == partitions_.end() || it->second.epoch != epoch || it->second.loaded) continue;
    l.unlock();
    load_partition(p, epoch);
    l.lock();
  }
}

void GroupCoordinator::load_partition(int32_t p, int32_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  auto part = partition_(p);
  std::map<std::string, Group> loaded;
  int64_t records = 0;
  bool ok = part != nullptr;
  if (ok) {
    auto log = part->log();
    int64_t offset = log->log_start_offset();
    // Everything in this leader's log: after the election it is the partition's history.
    const int64_t end = log->log_end_offset();
    std::string buf;
    while (ok && offset < end) {
      auto r = log->read(offset, 8 << 20);
      if (!r.ok()) {
        LOG(ERROR) << "group coordinator: reading offsets partition " << p << " at " << offset << ": "
                   << r.error().to_string();
        ok = false;
        break;
      }
      if (r->empty()) break;
      buf.clear();
      if (!r->copy_to(&buf).ok()) {
        ok = false;
        break;
      }
      size_t pos = 0;
      while (pos < buf.size()) {
        auto size = storage::peek_batch_size(reinterpret_cast<const uint8_t*>(buf.data()) + pos, buf.size() - pos,
                                             storage::kMaxBatchBytes);
        if (!size.ok() || pos + *size > buf.size()) break;
        storage::RecordBatchView batch(reinterpret_cast<const uint8_t*>(buf.data()) + pos, *size);
        pos += *size;
        offset = std::max(offset, batch.next_offset());
        if (batch.is_control()) continue;
        auto it = storage::RecordIterator::create(batch);
        if (!it.ok()) continue;
        storage::Record rec;
        while (true) {
          auto more = it->next(&rec);
          if (!more.ok() || !*more) break;
          ++records;
          if (!rec.key) continue;
          auto key = decode_key(*rec.key);
          if (!key) {
            LOG(WARNING) << "offsets partition " << p << " offset " << rec.offset << ": unknown key, skipped";
            continue;
          }
          if (auto* ok_key = std::get_if<OffsetKey>(&*key)) {
            Group& g = loaded[ok_key->group];
            g.id = ok_key->group;
            g.partition = p;
            if (!rec.value) {
              g.offsets.erase({ok_key->topic, ok_key->partition});
              continue;
            }
            auto v = decode_offset_value(*rec.value);
            if (!v) continue;
            g.offsets[{ok_key->topic, ok_key->partition}] =
                CommittedOffset{v->offset, v->leader_epoch, v->metadata, v->commit_timestamp_ms, rec.offset};
          } else {
            const auto& gk = std::get<GroupKey>(*key);
            Group& g = loaded[gk.group];
            g.id = gk.group;
            g.partition = p;
            if (!rec.value) {
              // A deleted group: its offsets were deleted with it (tombstones before this one).
              g.members.clear();
              g.has_metadata_record = false;
              g.generation = 0;
              g.state = State::kEmpty;
              g.consumer.reset();
              g.consumer_written_epoch = -1;
              continue;
            }
            auto v = decode_group_value(*rec.value);
            if (!v) continue;
            // Generations only go forward (a tombstone resets to 0): a record of an older
            // generation appended after a newer one (two writers racing) is stale.
            if (v->generation_id() < g.generation) continue;
            g.has_metadata_record = true;
            g.protocol_type = v->protocol_type();
            g.generation = v->generation_id();
            g.protocol_name = v->protocol_name();
            g.leader = v->leader();
            g.state_timestamp_ms = v->state_timestamp_ms();
            g.members.clear();
            for (const auto& m : v->members()) {
              Member mm;
              mm.id = m.member_id();
              mm.client_id = m.client_id();
              mm.client_host = m.client_host();
              mm.rebalance_timeout_ms = m.rebalance_timeout_ms();
              mm.session_timeout_ms = m.session_timeout_ms();
              mm.protocol_type = v->protocol_type();
              mm.protocols.emplace_back(v->protocol_name(), m.subscription());
              mm.assignment = m.assignment();
              g.members.emplace(mm.id, std::move(mm));
            }
            g.state = g.members.empty() ? State::kEmpty : State::kStable;
            g.consumer.reset();
            g.consumer_written_epoch = -1;
            if (v->has_consumer()) {
              // A broker-assigned group: its members resume at their epochs with their partitions.
              const auto& cg = v->consumer();
              ConsumerGroupSnapshot snap;
              snap.group_epoch = cg.group_epoch();
              snap.assignment_epoch = cg.assignment_epoch();
              for (const auto& [t, n] : cg.subscribed_partition_counts()) snap.subscribed_counts[t] = n;
              for (const auto& m : cg.members()) {
                ConsumerGroupSnapshot::Member sm;
                sm.id = m.member_id();
                sm.client_id = m.client_id();
                sm.client_host = m.client_host();
                sm.rack_id = m.rack_id();
                sm.assignor = m.assignor();
                sm.epoch = m.member_epoch();
                sm.rebalance_timeout_ms = m.rebalance_timeout_ms();
                sm.topics.assign(m.topics().begin(), m.topics().end());
                for (const auto& tp : m.partitions()) sm.assigned[tp.topic()].insert(tp.partitions().begin(), tp.partitions().end());
                snap.members.push_back(std::move(sm));
              }
              g.consumer = std::make_unique<ConsumerGroup>(gk.group, options_.consumer);
              g.consumer->restore(snap, clock_->monotonic_ms());
              g.consumer_written_epoch = snap.group_epoch;
            }
          }
        }
      }
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = partitions_.find(p);
  if (it == partitions_.end() || it->second.epoch != epoch) return;  // moved on meanwhile
  if (!ok) {
    // Cannot read our own log: stay "loading" (clients retry); the next leadership change or a
    // restart tries again.
    LOG(ERROR) << "group coordinator " << options_.node_id << ": cannot load offsets partition " << p;
    return;
  }
  const int64_t now = clock_->monotonic_ms();
  size_t count = 0;
  for (auto& [id, g] : loaded) {
    // Groups with nothing left (every offset and the group deleted) are not resurrected.
    if (g.members.empty() && g.offsets.empty() && !g.has_metadata_record) continue;
    // Restored members get a full session to find the new coordinator.
    for (auto& [mid, m] : g.members) m.session_deadline_ms = now + m.session_timeout_ms;
    groups_[id] = std::move(g);
    ++count;
  }
  it->second.loaded = true;
  notify_locked();
  LOG(INFO) << "group coordinator " << options_.node_id << ": loaded offsets partition " << p << " in epoch " << epoch
            << ": " << count << " group(s) from " << records << " record(s) in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()
            << " ms";
}

// ---- Helpers ------------------------------------------------------------------------------------

namespace {

std::string wrong_generation(int32_t asked, int32_t current) {
  return "generation " + std::to_string(asked) + " is not the group's (" + std::to_string(current) + ")";
}

}  // namespace

ErrorCode GroupCoordinator::check_coordinator_locked(const std::string& group, int32_t* partition) const {
  if (stopping_) return ev1::NOT_COORDINATOR;
  if (group.empty() || group.size() > 255) return ev1::INVALID_GROUP_ID;
  const int32_t p = partition_for(group, partition_count_);
  *partition = p;
  auto it = partitions_.find(p);
  if (it == partitions_.end()) return ev1::NOT_COORDINATOR;
  if (!it->second.loaded) return ev1::COORDINATOR_LOAD_IN_PROGRESS;
  return ev1::NONE;
}

GroupCoordinator::Group* GroupCoordinator::find_group_locked(const std::string& id) {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : &it->second;
}

GroupCoordinator::Group* GroupCoordinator::claim_record_write_locked(std::unique_lock<std::mutex>& l,
                                                                    const std::string& id) {
  while (true) {
    Group* g = find_group_locked(id);
    if (stopping_ || !g) return nullptr;
    if (!g->record_write_in_flight) {
      g->record_write_in_flight = true;
      return g;
    }
    cv_.wait_for(l, std::chrono::milliseconds(100));
  }
}

void GroupCoordinator::release_record_write_locked(const std::string& id) {
  if (Group* g = find_group_locked(id)) g->record_write_in_flight = false;
  notify_locked();
}

ErrorCode GroupCoordinator::find_member_locked(const std::string& group, const std::string& member, Group** g,
                                               std::string* why) {
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(group, &p); e != ev1::NONE) {
    *why = "not the coordinator of this group now";
    return e;
  }
  *g = find_group_locked(group);
  if (!*g || !(*g)->members.count(member)) {
    *why = "unknown member " + member;
    return ev1::UNKNOWN_MEMBER_ID;
  }
  return ev1::NONE;
}

ErrorCode GroupCoordinator::check_new_group_locked(const std::string& id, std::string* why) const {
  if (groups_.count(id) || static_cast<int64_t>(groups_.size()) < options_.max_groups) return ev1::NONE;
  *why = "this coordinator holds group.max.groups (" + std::to_string(options_.max_groups) +
         ") groups; no new group until some expire or are deleted";
  return ev1::GROUP_MAX_SIZE_REACHED;
}

bool GroupCoordinator::is_vacant(const Group& g) {
  return g.state == State::kEmpty && g.members.empty() && g.pending_members.empty() && g.offsets.empty() &&
         !g.has_metadata_record && !g.record_write_in_flight && !g.empty_unwritten && !is_consumer_group(g);
}

GroupCoordinator::Group& GroupCoordinator::get_or_create_group_locked(const std::string& id, int32_t partition) {
  auto [it, inserted] = groups_.try_emplace(id);
  if (inserted) {
    it->second.id = id;
    it->second.partition = partition;
    it->second.state_timestamp_ms = clock_->now_ms();
  }
  return it->second;
}

bool GroupCoordinator::supports_protocols_locked(const Group& g, const v1::JoinGroupRequest& req) const {
  if (req.protocol_type().empty() || req.protocols().empty()) return false;
  if (g.members.empty()) return true;
  if (req.protocol_type() != g.protocol_type) return false;
  // At least one of the member's protocols is supported by every current member.
  for (const auto& p : req.protocols()) {
    bool all = true;
    for (const auto& [id, m] : g.members) {
      if (id == req.member_id()) continue;
      if (std::none_of(m.protocols.begin(), m.protocols.end(), [&](const auto& mp) { return mp.first == p.name(); })) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

std::string GroupCoordinator::select_protocol_locked(const Group& g) const {
  // Candidates: protocols every member supports. Each member votes for its most preferred
  // candidate; the most votes wins (ties: the name first in order, for determinism).
  std::map<std::string, int> votes;
  std::set<std::string> candidates;
  bool first = true;
  for (const auto& [id, m] : g.members) {
    std::set<std::string> mine;
    for (const auto& p : m.protocols) mine.insert(p.first);
    if (first) {
      candidates = mine;
      first = false;
    } else {
      std::set<std::string> both;
      std::set_intersection(candidates.begin(), candidates.end(), mine.begin(), mine.end(),
                            std::inserter(both, both.begin()));
      candidates.swap(both);
    }
  }
  for (const auto& [id, m] : g.members) {
    for (const auto& p : m.protocols) {
      if (candidates.count(p.first)) {
        ++votes[p.first];
        break;
      }
    }
  }
  std::string best;
  int best_votes = -1;
  for (const auto& [name, n] : votes) {
    if (n > best_votes) {
      best = name;
      best_votes = n;
    }
  }
  return best;
}

v1::GroupMetadataValue GroupCoordinator::group_value_locked(const Group& g) const {
  v1::GroupMetadataValue v;
  v.set_protocol_type(g.protocol_type);
  v.set_generation_id(g.generation);
  v.set_protocol_name(g.protocol_name);
  v.set_leader(g.leader);
  v.set_state_timestamp_ms(clock_->now_ms());
  for (const auto& [id, m] : g.members) {
    auto* mm = v.add_members();
    mm->set_member_id(id);
    mm->set_client_id(m.client_id);
    mm->set_client_host(m.client_host);
    mm->set_rebalance_timeout_ms(m.rebalance_timeout_ms);
    mm->set_session_timeout_ms(m.session_timeout_ms);
    for (const auto& p : m.protocols) {
      if (p.first == g.protocol_name) mm->set_subscription(p.second);
    }
    mm->set_assignment(m.assignment);
  }
  return v;
}

void GroupCoordinator::prepare_rebalance_locked(Group& g, const std::string& reason) {
  const int64_t now = clock_->monotonic_ms();
  if (g.state == State::kCompletingRebalance) {
    // The assignment being synced is void: members waiting for it rejoin.
    for (auto& [id, m] : g.members) {
      m.assignment.clear();
      if (m.awaiting_sync) {
        v1::SyncGroupResponse r;
        r.set_error_code(ev1::REBALANCE_IN_PROGRESS);
        r.set_error_message("the group is rebalancing: rejoin");
        m.sync_result = r;
        m.awaiting_sync = false;
      }
    }
  }
  const bool was_empty = g.state == State::kEmpty;
  int32_t rebalance_timeout = 0;
  for (const auto& [id, m] : g.members) rebalance_timeout = std::max(rebalance_timeout, m.rebalance_timeout_ms);
  g.state = State::kPreparingRebalance;
  g.state_timestamp_ms = clock_->now_ms();
  g.join_deadline_ms = now + rebalance_timeout;
  g.initial_delay_until_ms = was_empty ? std::min(g.join_deadline_ms, now + options_.initial_rebalance_delay_ms) : 0;
  VLOG(1) << "group " << g.id << ": rebalance (generation " << g.generation << "): " << reason;
  notify_locked();
}

void GroupCoordinator::remove_member_locked(Group& g, const std::string& member_id, const std::string& reason) {
  g.members.erase(member_id);
  if (g.leader == member_id) g.leader.clear();
  notify_locked();
  switch (g.state) {
    case State::kStable:
    case State::kCompletingRebalance:
      prepare_rebalance_locked(g, reason);
      maybe_complete_join_locked(g, clock_->monotonic_ms());  // the last one left: Empty now
      break;
    case State::kPreparingRebalance:
      maybe_complete_join_locked(g, clock_->monotonic_ms());
      break;
    default:
      break;
  }
}

void GroupCoordinator::maybe_complete_join_locked(Group& g, int64_t now) {
  if (g.state != State::kPreparingRebalance) return;
  const bool all = std::all_of(g.members.begin(), g.members.end(), [](const auto& m) { return m.second.awaiting_join; });
  if ((all && now >= g.initial_delay_until_ms) || now >= g.join_deadline_ms || g.members.empty()) {
    complete_join_locked(g, now);
  }
}

void GroupCoordinator::complete_join_locked(Group& g, int64_t now) {
  // Members that did not rejoin in time are out.
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (!it->second.awaiting_join) {
      LOG(INFO) << "group " << g.id << ": member " << it->first << " did not rejoin in time; removed";
      if (g.leader == it->first) g.leader.clear();
      it = g.members.erase(it);
    } else {
      ++it;
    }
  }
  ++g.generation;
  g.state_timestamp_ms = clock_->now_ms();
  if (g.members.empty()) {
    g.state = State::kEmpty;
    g.protocol_name.clear();
    g.leader.clear();
    if (g.has_metadata_record) {
      g.empty_unwritten = true;
      writer_cv_.notify_all();
    }
    VLOG(1) << "group " << g.id << ": empty at generation " << g.generation;
    notify_locked();
    return;
  }
  g.protocol_name = select_protocol_locked(g);
  g.protocol_type = g.members.begin()->second.protocol_type;
  if (g.leader.empty() || !g.members.count(g.leader)) g.leader = g.members.begin()->first;
  g.state = State::kCompletingRebalance;
  {
    int32_t rebalance_timeout = 0;
    for (const auto& [id, m] : g.members) rebalance_timeout = std::max(rebalance_timeout, m.rebalance_timeout_ms);
    g.sync_deadline_ms = now + rebalance_timeout;
  }
  for (auto& [id, m] : g.members) {
    v1::JoinGroupResponse r;
    r.set_generation_id(g.generation);
    r.set_protocol_type(g.protocol_type);
    r.set_protocol_name(g.protocol_name);
    r.set_leader(g.leader);
    r.set_member_id(id);
    if (id == g.leader) {
      for (const auto& [oid, o] : g.members) {
        auto* mm = r.add_members();
        mm->set_member_id(oid);
        for (const auto& p : o.protocols) {
          if (p.first == g.protocol_name) mm->set_metadata(p.second);
        }
      }
    }
    m.join_result = std::move(r);
    m.awaiting_join = false;
    m.is_new = false;
    m.assignment.clear();
    m.session_deadline_ms = now + m.session_timeout_ms;
  }
  VLOG(1) << "group " << g.id << ": generation " << g.generation << " with " << g.members.size()
          << " member(s), protocol " << g.protocol_name << ", leader " << g.leader;
  notify_locked();
}

ErrorCode GroupCoordinator::append_records(
    int32_t p, int32_t epoch, const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
    int64_t* base_offset) {
  std::promise<std::pair<ErrorCode, int64_t>> result;
  append_records_async(p, epoch, records, [&result](ErrorCode e, int64_t base) { result.set_value({e, base}); });
  const auto [e, base] = result.get_future().get();
  if (e == ev1::NONE) *base_offset = base;
  return e;
}

void GroupCoordinator::append_records_async(
    int32_t p, int32_t epoch, const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
    std::function<void(ErrorCode, int64_t)> done) {
  // Every way out runs `done` on the completions_ thread (or here, once stopping).
  auto finish = [this](std::function<void(ErrorCode, int64_t)> d, ErrorCode e, int64_t base) {
    auto task = [d = std::move(d), e, base] { d(e, base); };
    if (!completions_.post(task)) task();
  };
  auto part = partition_(p);
  if (!part || !part->is_leader() || part->leader_epoch() != epoch) return finish(std::move(done), ev1::NOT_COORDINATOR, 0);
  storage::RecordBatchBuilder builder;
  const int64_t ts = clock_->now_ms();
  for (const auto& [k, v] : records) {
    builder.add(ts, std::string_view(k), v ? std::optional<std::string_view>(*v) : std::nullopt);
  }
  auto batch = builder.build();
  if (!batch.ok()) return finish(std::move(done), ev1::UNKNOWN_SERVER_ERROR, 0);
  ProduceOutcome o = part->append_as_leader(&*batch, -1);
  if (o.error != ev1::NONE) {
    VLOG(1) << "group coordinator: append to offsets partition " << p << ": " << o.message;
    return finish(std::move(done), coordinator_error(o.error), 0);
  }
  if (o.leader_epoch != epoch) return finish(std::move(done), ev1::NOT_COORDINATOR, 0);
  struct Wait {
    std::mutex mu;
    bool fired = false;
    uint64_t timer = 0;
  };
  auto wait = std::make_shared<Wait>();
  const int64_t base = o.base_offset;
  const uint64_t id = part->on_replicated(o.last_offset, epoch, [this, wait, done, base, finish](ErrorCode e) {
    uint64_t t;
    {
      std::lock_guard<std::mutex> l(wait->mu);
      wait->fired = true;
      t = wait->timer;
    }
    if (t != 0) commit_timer_.cancel(t);
    finish(done, e == ev1::NONE ? ev1::NONE : coordinator_error(e), base);
  });
  if (id == 0) return;  // answered already
  const uint64_t t = commit_timer_.schedule(
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.offset_commit_timeout_ms),
      [part, id] { part->expire_replication_wait(id); });
  std::lock_guard<std::mutex> l(wait->mu);
  if (wait->fired) {
    commit_timer_.cancel(t);
  } else {
    wait->timer = t;
  }
}

// ---- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ---------------------------------------------

void GroupCoordinator::join_group(const v1::JoinGroupRequest& req, const std::string& client_host,
                                  v1::JoinGroupResponse* resp) {
  std::promise<void> answered;
  join_group(req, client_host, resp, [&answered] { answered.set_value(); });
  answered.get_future().wait();
}

uint64_t GroupCoordinator::join_group(const v1::JoinGroupRequest& req, const std::string& client_host,
                                      v1::JoinGroupResponse* resp, std::function<void()> done) {
  std::unique_lock<std::mutex> l(mu_);
  // Every answer given at once goes out through here (after mu_ is released).
  auto answered_now = [&]() -> uint64_t {
    l.unlock();
    done();
    return 0;
  };
  auto fail = [&](ErrorCode e, std::string msg) -> uint64_t {
    resp->set_error_code(e);
    resp->set_error_message(std::move(msg));
    return answered_now();
  };
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(req.group_id(), &p); e != ev1::NONE) {
    return fail(e, e == ev1::INVALID_GROUP_ID ? "a group id is 1 to 255 bytes" : "not the coordinator of this group now");
  }
  if (req.session_timeout_ms() < options_.min_session_timeout_ms || req.session_timeout_ms() > options_.max_session_timeout_ms) {
    return fail(ev1::INVALID_SESSION_TIMEOUT, "session.timeout.ms must be in [" + std::to_string(options_.min_session_timeout_ms) +
                                                  ", " + std::to_string(options_.max_session_timeout_ms) + "]");
  }
  const int32_t rebalance_timeout = req.rebalance_timeout_ms() > 0 ? req.rebalance_timeout_ms() : req.session_timeout_ms();
  const int64_t now = clock_->monotonic_ms();
  Group* g = find_group_locked(req.group_id());
  if (g && g->state == State::kDead) return fail(ev1::COORDINATOR_NOT_AVAILABLE, "the group is being deleted");
  if (g && is_consumer_group(*g)) {
    return fail(ev1::INCONSISTENT_GROUP_PROTOCOL,
                "group " + req.group_id() + " has members using the consumer (broker-assigned) protocol");
  }
  if (req.member_id().empty()) {
    // Validated before the group is created: a refused join leaves nothing behind.
    static const Group kNoGroup;
    if (!supports_protocols_locked(g ? *static_cast<const Group*>(g) : kNoGroup, req)) {
      return fail(ev1::INCONSISTENT_GROUP_PROTOCOL, "the member's protocols do not match the group's");
    }
    std::string why;
    if (ErrorCode e = check_new_group_locked(req.group_id(), &why); e != ev1::NONE) return fail(e, why);
    Group& ng = get_or_create_group_locked(req.group_id(), p);
    if (static_cast<int64_t>(ng.members.size() + ng.pending_members.size()) >= options_.max_group_size) {
      return fail(ev1::GROUP_MAX_SIZE_REACHED, "the group has group.max.size members");
    }
    const std::string id = (req.client_id().empty() ? std::string("member") : req.client_id()) + "-" + random_suffix();
    ng.pending_members[id] = now + req.session_timeout_ms();
    resp->set_member_id(id);
    return fail(ev1::MEMBER_ID_REQUIRED, "join again with the member id given");
  }
  if (!g) return fail(ev1::UNKNOWN_MEMBER_ID, "unknown member " + req.member_id());
  if (!supports_protocols_locked(*g, req)) {
    return fail(ev1::INCONSISTENT_GROUP_PROTOCOL, "the member's protocols do not match the group's");
  }
  const std::string member_id = req.member_id();
  std::vector<std::pair<std::string, std::string>> protocols;
  for (const auto& pr : req.protocols()) protocols.emplace_back(pr.name(), pr.metadata());
  if (auto pend = g->pending_members.find(member_id); pend != g->pending_members.end()) {
    g->pending_members.erase(pend);
    Member m;
    m.id = member_id;
    m.client_id = req.client_id();
    m.client_host = client_host;
    m.protocol_type = req.protocol_type();
    m.session_timeout_ms = req.session_timeout_ms();
    m.rebalance_timeout_ms = rebalance_timeout;
    m.protocols = std::move(protocols);
    m.awaiting_join = true;
    m.is_new = true;
    m.session_deadline_ms = now + req.session_timeout_ms();
    if (g->members.empty()) g->protocol_type = req.protocol_type();
    g->members.emplace(member_id, std::move(m));
    if (g->state == State::kPreparingRebalance) {
      // A new group still gathering members waits a little longer for the next one.
      if (g->initial_delay_until_ms > 0) {
        g->initial_delay_until_ms = std::min(g->join_deadline_ms, now + options_.initial_rebalance_delay_ms);
      }
      g->join_deadline_ms = std::max(g->join_deadline_ms, now + rebalance_timeout);
    } else {
      prepare_rebalance_locked(*g, "member " + member_id + " joined");
    }
  } else if (auto mit = g->members.find(member_id); mit != g->members.end()) {
    Member& m = mit->second;
    const bool changed = m.protocols != protocols;
    m.protocols = std::move(protocols);
    m.session_timeout_ms = req.session_timeout_ms();
    m.rebalance_timeout_ms = rebalance_timeout;
    m.session_deadline_ms = now + req.session_timeout_ms();
    m.join_result.reset();
    auto current = [&] {
      resp->set_generation_id(g->generation);
      resp->set_protocol_type(g->protocol_type);
      resp->set_protocol_name(g->protocol_name);
      resp->set_leader(g->leader);
      resp->set_member_id(member_id);
      if (member_id == g->leader) {
        for (const auto& [oid, o] : g->members) {
          auto* mm = resp->add_members();
          mm->set_member_id(oid);
          for (const auto& pr : o.protocols) {
            if (pr.first == g->protocol_name) mm->set_metadata(pr.second);
          }
        }
      }
    };
    switch (g->state) {
      case State::kPreparingRebalance:
        m.awaiting_join = true;
        break;
      case State::kCompletingRebalance:
        if (!changed) {
          current();
          return answered_now();
        }  // a retried join: the same answer again
        m.awaiting_join = true;
        prepare_rebalance_locked(*g, "member " + member_id + " changed its subscription");
        break;
      case State::kStable:
        if (!changed && member_id != g->leader) {
          current();
          return answered_now();
        }
        m.awaiting_join = true;
        prepare_rebalance_locked(*g, "member " + member_id + (changed ? " changed its subscription" : " (the leader) rejoined"));
        break;
      default:
        return fail(ev1::UNKNOWN_MEMBER_ID, "unknown member " + member_id);
    }
  } else {
    return fail(ev1::UNKNOWN_MEMBER_ID, "unknown member " + member_id);
  }
  maybe_complete_join_locked(*g, now);
  // Parked until the join phase ends with an answer for this member.
  ParkedCall call;
  call.check = [this, group = req.group_id(), member_id, resp](bool at_deadline) {
    auto answer = [resp](ErrorCode e, std::string msg) {
      resp->set_error_code(e);
      resp->set_error_message(std::move(msg));
      return true;
    };
    Group* cur = find_group_locked(group);
    if (stopping_ || !cur) return answer(ev1::NOT_COORDINATOR, "the coordinator moved");
    auto mit = cur->members.find(member_id);
    if (mit == cur->members.end()) return answer(ev1::UNKNOWN_MEMBER_ID, "member " + member_id + " was removed from the group");
    if (mit->second.join_result) {
      *resp = std::move(*mit->second.join_result);
      mit->second.join_result.reset();
      return true;
    }
    if (at_deadline) return answer(ev1::REBALANCE_IN_PROGRESS, "the join phase did not end in time; rejoin");
    return false;
  };
  if (call.check(/*at_deadline=*/false)) return answered_now();
  call.done = std::move(done);
  // In 64 bits: both are client- or operator-chosen int32s (INT32_MAX is a valid rebalance timeout).
  return park_locked(std::move(call),
                     int64_t{rebalance_timeout} + int64_t{options_.initial_rebalance_delay_ms} + kJoinSlackMs);
}

void GroupCoordinator::sync_group(const v1::SyncGroupRequest& req, v1::SyncGroupResponse* resp) {
  std::promise<void> answered;
  sync_group(req, resp, [&answered] { answered.set_value(); });
  answered.get_future().wait();
}

uint64_t GroupCoordinator::sync_group(const v1::SyncGroupRequest& req, v1::SyncGroupResponse* resp,
                                      std::function<void()> done) {
  std::unique_lock<std::mutex> l(mu_);
  auto answered_now = [&]() -> uint64_t {
    l.unlock();
    done();
    return 0;
  };
  auto fail = [&](ErrorCode e, std::string msg) -> uint64_t {
    resp->set_error_code(e);
    resp->set_error_message(std::move(msg));
    return answered_now();
  };
  Group* g = nullptr;
  std::string why;
  if (ErrorCode e = find_member_locked(req.group_id(), req.member_id(), &g, &why); e != ev1::NONE) return fail(e, why);
  if (req.generation_id() != g->generation) {
    return fail(ev1::ILLEGAL_GENERATION, wrong_generation(req.generation_id(), g->generation));
  }
  if ((!req.protocol_type().empty() && req.protocol_type() != g->protocol_type) ||
      (!req.protocol_name().empty() && req.protocol_name() != g->protocol_name)) {
    return fail(ev1::INCONSISTENT_GROUP_PROTOCOL, "protocol differs from the group's");
  }
  Member& m = g->members.at(req.member_id());
  m.session_deadline_ms = clock_->monotonic_ms() + m.session_timeout_ms;
  switch (g->state) {
    case State::kPreparingRebalance:
      return fail(ev1::REBALANCE_IN_PROGRESS, "the group is rebalancing: rejoin");
    case State::kStable:
      resp->set_protocol_type(g->protocol_type);
      resp->set_protocol_name(g->protocol_name);
      resp->set_assignment(m.assignment);
      return answered_now();
    case State::kCompletingRebalance:
      break;
    default:
      return fail(ev1::UNKNOWN_MEMBER_ID, "unknown member " + req.member_id());
  }
  m.awaiting_sync = true;
  const int32_t generation = g->generation;
  const std::string member_id = req.member_id();
  const int64_t bound_ms = int64_t{std::max(m.session_timeout_ms, m.rebalance_timeout_ms)} + kJoinSlackMs;
  std::function<void()> write;
  if (member_id == g->leader) {
    std::vector<std::pair<std::string, std::string>> assignments;
    for (const auto& a : req.assignments()) assignments.emplace_back(a.member_id(), a.assignment());
    write = leader_sync_write_locked(req.group_id(), generation, member_id, std::move(assignments));
  }
  // Parked until the leader's assignment is written (every member, the leader too), the group
  // moves on, or the bound passes.
  ParkedCall call;
  call.check = [this, group = req.group_id(), member_id, generation, resp](bool at_deadline) {
    auto answer = [resp](ErrorCode e, std::string msg) {
      resp->set_error_code(e);
      resp->set_error_message(std::move(msg));
      return true;
    };
    Group* cur = find_group_locked(group);
    if (stopping_ || !cur) return answer(ev1::NOT_COORDINATOR, "the coordinator moved");
    auto mit = cur->members.find(member_id);
    if (mit == cur->members.end()) return answer(ev1::UNKNOWN_MEMBER_ID, "member " + member_id + " was removed from the group");
    if (mit->second.sync_result) {
      *resp = std::move(*mit->second.sync_result);
      mit->second.sync_result.reset();
      return true;
    }
    // A member that joined the group in a stable generation after our sync arrived (it got the
    // assignment of the existing generation) is served from the stable state.
    if (cur->generation != generation) return answer(ev1::REBALANCE_IN_PROGRESS, "the group is rebalancing: rejoin");
    if (cur->state == State::kStable) {
      resp->set_protocol_type(cur->protocol_type);
      resp->set_protocol_name(cur->protocol_name);
      resp->set_assignment(mit->second.assignment);
      mit->second.awaiting_sync = false;
      return true;
    }
    if (at_deadline) {
      mit->second.awaiting_sync = false;
      return answer(ev1::REBALANCE_IN_PROGRESS, "the leader did not send the assignment in time; rejoin");
    }
    return false;
  };
  if (call.check(/*at_deadline=*/false)) {
    l.unlock();
    if (write) write();
    done();
    return 0;
  }
  call.done = std::move(done);
  const uint64_t id = park_locked(std::move(call), bound_ms);
  l.unlock();
  if (write) write();  // outside mu_; its completion moves the group to Stable and answers
  return id;
}

std::function<void()> GroupCoordinator::leader_sync_write_locked(
    const std::string& id, int32_t generation, const std::string& leader,
    std::vector<std::pair<std::string, std::string>> assignments) {
  Group* g = find_group_locked(id);
  if (stopping_ || !g || g->generation != generation || g->state != State::kCompletingRebalance || g->leader != leader) {
    return nullptr;  // the group moved on: the parked syncs report how
  }
  auto pl = partitions_.find(g->partition);
  if (pl == partitions_.end() || !pl->second.loaded) return nullptr;
  if (g->record_write_in_flight) {
    // One write of the group's record at a time (the writer thread may be writing its Empty
    // record): else the older of two could land last, and be all compaction keeps of the group.
    // Try again shortly, on the timer's thread.
    commit_timer_.schedule(std::chrono::steady_clock::now() + std::chrono::milliseconds(10),
                           [this, id, generation, leader, assignments] {
                             std::unique_lock<std::mutex> l(mu_);
                             auto write = leader_sync_write_locked(id, generation, leader, assignments);
                             l.unlock();
                             if (write) write();
                           });
    return nullptr;
  }
  g->record_write_in_flight = true;
  for (auto& [mid, mm] : g->members) mm.assignment.clear();
  for (const auto& [mid, a] : assignments) {
    if (auto it = g->members.find(mid); it != g->members.end()) it->second.assignment = a;
  }
  // The generation is complete once written: a new coordinator then resumes it as is.
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  records.emplace_back(encode_group_key({g->id}), encode_group_value(group_value_locked(*g)));
  const int32_t p = g->partition, epoch = pl->second.epoch;
  return [this, id, generation, p, epoch, records = std::move(records)] {
    append_records_async(p, epoch, records, [this, id, generation](ErrorCode e, int64_t) {
      std::lock_guard<std::mutex> l(mu_);
      release_record_write_locked(id);
      Group* g = find_group_locked(id);
      if (!g || g->generation != generation || g->state != State::kCompletingRebalance) return;
      if (e == ev1::NONE) {
        g->state = State::kStable;
        g->has_metadata_record = true;
        g->state_timestamp_ms = clock_->now_ms();
        for (auto& [mid, mm] : g->members) {
          if (!mm.awaiting_sync) continue;
          v1::SyncGroupResponse r;
          r.set_protocol_type(g->protocol_type);
          r.set_protocol_name(g->protocol_name);
          r.set_assignment(mm.assignment);
          mm.sync_result = std::move(r);
          mm.awaiting_sync = false;
        }
      } else {
        for (auto& [mid, mm] : g->members) {
          if (!mm.awaiting_sync) continue;
          v1::SyncGroupResponse r;
          r.set_error_code(e);
          r.set_error_message("the group's assignment could not be written");
          mm.sync_result = std::move(r);
          mm.awaiting_sync = false;
        }
        prepare_rebalance_locked(*g, "the assignment could not be written");
      }
      notify_locked();
    });
  };
}

void GroupCoordinator::heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp) {
  std::promise<void> answered;
  heartbeat(req, resp, [&answered] { answered.set_value(); });
  answered.get_future().wait();
}

uint64_t GroupCoordinator::heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp,
                                     std::function<void()> done) {
  auto fail = [&](ErrorCode e, std::string msg) {
    resp->set_error_code(e);
    resp->set_error_message(std::move(msg));
  };
  std::unique_lock<std::mutex> l(mu_);
  auto answer = [&](std::optional<std::pair<ErrorCode, std::string>> e) -> uint64_t {
    if (e) fail(e->first, std::move(e->second));
    l.unlock();
    done();
    return 0;
  };
  Group* g = nullptr;
  std::string why;
  if (ErrorCode e = find_member_locked(req.group_id(), req.member_id(), &g, &why); e != ev1::NONE) {
    return answer(std::make_pair(e, why));
  }
  Member* m = &g->members.at(req.member_id());
  m->session_deadline_ms = clock_->monotonic_ms() + m->session_timeout_ms;
  if (g->state == State::kPreparingRebalance) {
    return answer(std::make_pair(ev1::REBALANCE_IN_PROGRESS, "the group is rebalancing: rejoin"));
  }
  if (req.generation_id() != g->generation) {
    return answer(std::make_pair(ev1::ILLEGAL_GENERATION, wrong_generation(req.generation_id(), g->generation)));
  }
  if (g->state != State::kStable || req.max_wait_ms() <= 0 || stopping_) return answer(std::nullopt);
  // Long poll: answer at once when a rebalance starts; wait at most a third of the session so the
  // session never runs out while we hold the member's heartbeat. The session is renewed when a
  // heartbeat arrives, not while it is held: a member that died during the hold is still removed
  // session.timeout.ms after its last heartbeat.
  const int64_t wait = std::min<int64_t>(req.max_wait_ms(), m->session_timeout_ms / 3);
  ParkedCall call;
  call.check = [this, group = req.group_id(), member = req.member_id(), generation = g->generation,
                resp](bool at_deadline) {
    auto answer = [resp](ErrorCode e, std::string msg) {
      resp->set_error_code(e);
      resp->set_error_message(std::move(msg));
      return true;
    };
    auto it = groups_.find(group);
    if (stopping_ || it == groups_.end()) return answer(ev1::NOT_COORDINATOR, "the coordinator moved");
    const Group& cur = it->second;
    if (!cur.members.count(member)) return answer(ev1::UNKNOWN_MEMBER_ID, "member " + member + " was removed from the group");
    if (cur.state == State::kPreparingRebalance) return answer(ev1::REBALANCE_IN_PROGRESS, "the group is rebalancing: rejoin");
    if (!at_deadline && cur.generation != generation) {
      return answer(ev1::ILLEGAL_GENERATION, "the group moved to another generation");
    }
    return at_deadline;  // nothing changed: a plain answer at the end of the hold
  };
  call.done = std::move(done);
  return park_locked(std::move(call), wait);
}

void GroupCoordinator::cancel_parked(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  finish_parked_locked(id);
}

uint64_t GroupCoordinator::park_locked(ParkedCall call, int64_t wait_ms) {
  const uint64_t id = next_parked_id_++;
  ParkedCall& parked = parked_[id];
  parked = std::move(call);
  parked.timer = commit_timer_.schedule(std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms), [this, id] {
    std::lock_guard<std::mutex> l(mu_);
    auto it = parked_.find(id);
    if (it == parked_.end()) return;
    (void)it->second.check(/*at_deadline=*/true);
    finish_parked_locked(id);
  });
  return id;
}

void GroupCoordinator::finish_parked_locked(uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  ParkedCall call = std::move(it->second);
  parked_.erase(it);
  if (call.timer != 0) commit_timer_.cancel(call.timer);
  // Never under mu_: the completion may be anything (a gRPC Finish, a promise).
  if (!completions_.post(call.done)) call.done();
}

void GroupCoordinator::notify_locked() {
  cv_.notify_all();
  std::vector<uint64_t> answered;
  for (auto& [id, call] : parked_) {
    if (call.check(/*at_deadline=*/false)) answered.push_back(id);
  }
  for (uint64_t id : answered) finish_parked_locked(id);
}

void GroupCoordinator::leave_group(const v1::LeaveGroupRequest& req, v1::LeaveGroupResponse* resp) {
  std::promise<void> answered;
  leave_group(req, resp, [&answered] { answered.set_value(); });
  answered.get_future().wait();
}

void GroupCoordinator::leave_group(const v1::LeaveGroupRequest& req, v1::LeaveGroupResponse* resp,
                                   std::function<void()> done) {
  std::unique_lock<std::mutex> l(mu_);
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(req.group_id(), &p); e != ev1::NONE) {
    resp->set_error_code(e);
    resp->set_error_message("not the coordinator of this group now");
    l.unlock();
    return done();
  }
  Group* g = find_group_locked(req.group_id());
  for (const std::string& id : req.member_ids()) {
    auto* r = resp->add_members();
    r->set_member_id(id);
    if (!g) {
      r->set_error_code(ev1::UNKNOWN_MEMBER_ID);
      continue;
    }
    if (g->pending_members.erase(id)) continue;
    if (!g->members.count(id)) {
      r->set_error_code(ev1::UNKNOWN_MEMBER_ID);
      continue;
    }
    remove_member_locked(*g, id, "member " + id + " left" + (req.reason().empty() ? "" : ": " + req.reason()));
  }
  // The last member left: the Empty group is in the log before the answer (a clean shutdown then
  // survives a coordinator failover). Written asynchronously; the answer waits for it.
  auto write = empty_write_locked(req.group_id(), std::move(done));
  l.unlock();
  write();
}

std::function<void()> GroupCoordinator::empty_write_locked(const std::string& id, std::function<void()> done) {
  Group* g = find_group_locked(id);
  auto pl = g ? partitions_.find(g->partition) : partitions_.end();
  if (stopping_ || !g || !g->empty_unwritten || g->state != State::kEmpty || pl == partitions_.end() || !pl->second.loaded) {
    return done;  // nothing to write: answer at once
  }
  if (g->record_write_in_flight) {
    // One write of the group's record at a time: try again shortly, on the timer's thread.
    commit_timer_.schedule(std::chrono::steady_clock::now() + std::chrono::milliseconds(10), [this, id, done] {
      std::unique_lock<std::mutex> l(mu_);
      auto write = empty_write_locked(id, done);
      l.unlock();
      write();
    });
    return [] {};
  }
  g->record_write_in_flight = true;
  g->empty_unwritten = false;
  const int32_t p = g->partition, epoch = pl->second.epoch, generation = g->generation;
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  records.emplace_back(encode_group_key({id}), encode_group_value(group_value_locked(*g)));
  return [this, id, p, epoch, generation, records = std::move(records), done = std::move(done)] {
    append_records_async(p, epoch, records, [this, id, generation, done](ErrorCode e, int64_t) {
      {
        std::lock_guard<std::mutex> l(mu_);
        release_record_write_locked(id);
        if (e != ev1::NONE && e != ev1::NOT_COORDINATOR) {
          // Not written (the ISR is short): the writer thread tries again while nothing newer happened.
          Group* g = find_group_locked(id);
          if (g && g->state == State::kEmpty && g->generation == generation) g->empty_unwritten = true;
        }
      }
      done();
    });
  };
}

// ---- Offsets --------------------------------------------------------------------------------------

void GroupCoordinator::offset_commit(const v1::OffsetCommitRequest& req, v1::OffsetCommitResponse* resp) {
  std::promise<void> answered;
  offset_commit(req, resp, [&answered] { answered.set_value(); });
  answered.get_future().wait();
}

void GroupCoordinator::offset_commit(const v1::OffsetCommitRequest& req, v1::OffsetCommitResponse* resp,
                                     std::function<void()> done) {
  // Every partition gets a result, in request order.
  std::vector<v1::OffsetCommitResponse::PartitionResult*> results;
  for (const auto& t : req.topics()) {
    auto* tr = resp->add_topics();
    tr->set_name(t.name());
    for (const auto& pp : t.partitions()) {
      auto* r = tr->add_partitions();
      r->set_partition(pp.partition());
      results.push_back(r);
    }
  }
  auto fail_all = [&](ErrorCode e, std::string msg) {
    for (auto* r : results) r->set_error_code(e);
    resp->set_error_message(std::move(msg));
    done();
  };
  std::unique_lock<std::mutex> l(mu_);
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(req.group_id(), &p); e != ev1::NONE) {
    return fail_all(e, e == ev1::INVALID_GROUP_ID ? "a group id is 1 to 255 bytes" : "not the coordinator of this group now");
  }
  Group* g = find_group_locked(req.group_id());
  if (g && is_consumer_group(*g)) {
    // A broker-assigned group: the generation is the member's epoch, which must be its current one.
    if (req.member_id().empty()) {
      return fail_all(ev1::UNKNOWN_MEMBER_ID, "the group has active members; commit as one of them");
    }
    if (ErrorCode e = g->consumer->check_commit(req.member_id(), req.generation_id()); e != ev1::NONE) {
      return fail_all(e, e == ev1::UNKNOWN_MEMBER_ID
                             ? "unknown member " + req.member_id()
                             : "member epoch " + std::to_string(req.generation_id()) +
                                   " is not the member's current one: heartbeat, then commit with the new epoch");
    }
  } else if (req.generation_id() < 0 && req.member_id().empty()) {
    // From outside the group (manual assignment, an offset reset): only while it has no members.
    if (g && g->state != State::kEmpty) {
      return fail_all(ev1::UNKNOWN_MEMBER_ID, "the group has active members; commit as one of them");
    }
  } else {
    if (!g || !g->members.count(req.member_id())) return fail_all(ev1::UNKNOWN_MEMBER_ID, "unknown member " + req.member_id());
    if (req.generation_id() != g->generation) {
      return fail_all(ev1::ILLEGAL_GENERATION, wrong_generation(req.generation_id(), g->generation));
    }
    if (g->state == State::kCompletingRebalance) return fail_all(ev1::REBALANCE_IN_PROGRESS, "the group is rebalancing");
    Member& m = g->members.at(req.member_id());
    m.session_deadline_ms = clock_->monotonic_ms() + m.session_timeout_ms;
  }
  if (g && g->state == State::kDead) return fail_all(ev1::COORDINATOR_NOT_AVAILABLE, "the group is being deleted");
  if (std::string why; check_new_group_locked(req.group_id(), &why) != ev1::NONE) {
    return fail_all(ev1::GROUP_MAX_SIZE_REACHED, why);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  std::vector<std::pair<std::pair<std::string, int32_t>, CommittedOffset>> entries;
  std::vector<v1::OffsetCommitResponse::PartitionResult*> written;
  const int64_t ts = clock_->now_ms();
  size_t i = 0;
  for (const auto& t : req.topics()) {
    for (const auto& pp : t.partitions()) {
      auto* r = results[i++];
      if (static_cast<int32_t>(pp.metadata().size()) > options_.offset_metadata_max_bytes) {
        r->set_error_code(ev1::OFFSET_METADATA_TOO_LARGE);
        continue;
      }
      if (!storage::valid_topic_name(t.name())) {
        // Checked before the record key is built (its topic length is an int16): a longer name
        // would be cut while the commit was acknowledged.
        r->set_error_code(ev1::INVALID_TOPIC_EXCEPTION);
        continue;
      }
      if (pp.partition() < 0) {
        r->set_error_code(ev1::UNKNOWN_TOPIC_OR_PARTITION);
        continue;
      }
      OffsetValue v{pp.committed_offset(), pp.committed_leader_epoch(), pp.metadata(), ts};
      records.emplace_back(encode_offset_key({req.group_id(), t.name(), pp.partition()}), encode_offset_value(v));
      entries.push_back({{t.name(), pp.partition()}, CommittedOffset{v.offset, v.leader_epoch, v.metadata, ts, -1}});
      written.push_back(r);
    }
  }
  if (records.empty()) {
    l.unlock();
    return done();
  }
  const int32_t epoch = partitions_.at(p).epoch;
  l.unlock();
  auto state = std::make_shared<std::pair<decltype(entries), decltype(written)>>(std::move(entries), std::move(written));
  // The request is not used after this returns (the front-end may free it): the group id is copied.
  append_records_async(p, epoch, records, [this, state, group_id = req.group_id(), resp, p, epoch, done](ErrorCode e, int64_t base) {
    auto& [entries, written] = *state;
    if (e != ev1::NONE) {
      for (auto* r : written) r->set_error_code(e);
      resp->set_error_message("the commit was not written to the offsets partition's in-sync replicas");
      return done();
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      auto pl = partitions_.find(p);
      if (pl != partitions_.end() && pl->second.epoch == epoch && pl->second.loaded) {  // else reloaded: the log has it
        Group& cur = get_or_create_group_locked(group_id, p);
        for (size_t k = 0; k < entries.size(); ++k) {
          entries[k].second.log_offset = base + static_cast<int64_t>(k);
          auto& slot = cur.offsets[entries[k].first];
          // Two commits of one partition in flight: the later record in the log wins, as on reload.
          if (slot.log_offset < entries[k].second.log_offset) slot = entries[k].second;
        }
      }
    }
    done();
  });
}

void GroupCoordinator::offset_fetch(const v1::OffsetFetchRequest& req, v1::OffsetFetchResponse* resp) {
  std::lock_guard<std::mutex> l(mu_);
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(req.group_id(), &p); e != ev1::NONE) {
    resp->set_error_code(e);
    resp->set_error_message("not the coordinator of this group now");
    return;
  }
  const Group* g = find_group_locked(req.group_id());
  if (!req.member_id().empty() && g && is_consumer_group(*g)) {
    if (ErrorCode e = g->consumer->check_commit(req.member_id(), req.member_epoch()); e != ev1::NONE) {
      resp->set_error_code(e);
      resp->set_error_message("member " + req.member_id() + " at epoch " + std::to_string(req.member_epoch()) +
                              " is not the group's now");
      return;
    }
  }
  auto fill = [](v1::OffsetFetchResponse::PartitionResult* r, const CommittedOffset* c) {
    r->set_committed_offset(c ? c->offset : -1);
    r->set_committed_leader_epoch(c ? c->leader_epoch : -1);
    if (c) r->set_metadata(c->metadata);
  };
  if (req.topics().empty()) {
    if (!g) return;
    v1::OffsetFetchResponse::TopicResult* tr = nullptr;
    for (const auto& [tp, c] : g->offsets) {
      if (!tr || tr->name() != tp.first) {
        tr = resp->add_topics();
        tr->set_name(tp.first);
      }
      auto* r = tr->add_partitions();
      r->set_partition(tp.second);
      fill(r, &c);
    }
    return;
  }
  for (const auto& t : req.topics()) {
    auto* tr = resp->add_topics();
    tr->set_name(t.name());
    for (int32_t part : t.partitions()) {
      auto* r = tr->add_partitions();
      r->set_partition(part);
      const CommittedOffset* c = nullptr;
      if (g) {
        auto it = g->offsets.find({t.name(), part});
        if (it != g->offsets.end()) c = &it->second;
      }
      fill(r, c);
    }
  }
}

// ---- Administration -------------------------------------------------------------------------------

void GroupCoordinator::list_groups(const v1::ListGroupsRequest& req, v1::ListGroupsResponse* resp) {
  std::lock_guard<std::mutex> l(mu_);
  std::set<std::string> filter(req.states_filter().begin(), req.states_filter().end());
  for (const auto& [id, g] : groups_) {
    auto pl = partitions_.find(g.partition);
    if (pl == partitions_.end() || !pl->second.loaded || g.state == State::kDead) continue;
    const bool consumer = is_consumer_group(g);
    const std::string state = consumer ? g.consumer->state_name() : state_name(g.state);
    if (!filter.empty() && !filter.count(state)) continue;
    auto* r = resp->add_groups();
    r->set_group_id(id);
    r->set_protocol_type(consumer ? "consumer" : g.protocol_type);
    r->set_state(state);
    r->set_group_type(consumer ? "consumer" : "classic");
  }
}

void GroupCoordinator::describe_groups(const v1::DescribeGroupsRequest& req, v1::DescribeGroupsResponse* resp) {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::string& id : req.group_ids()) {
    auto* d = resp->add_groups();
    d->set_group_id(id);
    int32_t p = 0;
    if (ErrorCode e = check_coordinator_locked(id, &p); e != ev1::NONE) {
      d->set_error_code(e);
      continue;
    }
    const Group* g = find_group_locked(id);
    if (!g || g->state == State::kDead) {
      d->set_error_code(ev1::GROUP_ID_NOT_FOUND);
      d->set_state("Dead");
      continue;
    }
    if (is_consumer_group(*g)) {
      // The classic view of a broker-assigned group: its members, its epoch as the generation
      // (ConsumerGroupDescribe has the assignments).
      d->set_state(g->consumer->state_name());
      d->set_protocol_type("consumer");
      d->set_protocol(g->consumer->assignor_name());
      d->set_generation_id(g->consumer->group_epoch());
      for (const auto& [mid, m] : g->consumer->members()) {
        auto* mm = d->add_members();
        mm->set_member_id(mid);
        mm->set_client_id(m.client_id);
        mm->set_client_host(m.client_host);
      }
      continue;
    }
    d->set_state(state_name(g->state));
    d->set_protocol_type(g->protocol_type);
    d->set_protocol(g->protocol_name);
    d->set_generation_id(g->generation);
    d->set_leader(g->leader);
    for (const auto& [mid, m] : g->members) {
      auto* mm = d->add_members();
      mm->set_member_id(mid);
      mm->set_client_id(m.client_id);
      mm->set_client_host(m.client_host);
      for (const auto& pr : m.protocols) {
        if (pr.first == g->protocol_name) mm->set_metadata(pr.second);
      }
      // Only a stable group's assignment is the current one.
      if (g->state == State::kStable) mm->set_assignment(m.assignment);
    }
  }
}

void GroupCoordinator::delete_groups(const v1::DeleteGroupsRequest& req, v1::DeleteGroupsResponse* resp) {
  std::unique_lock<std::mutex> l(mu_);
  for (const std::string& id : req.group_ids()) {
    auto* r = resp->add_results();
    r->set_group_id(id);
    int32_t p = 0;
    if (ErrorCode e = check_coordinator_locked(id, &p); e != ev1::NONE) {
      r->set_error_code(e);
      continue;
    }
    // After any write of the group's record in flight (e.g. its Empty record).
    Group* g = claim_record_write_locked(l, id);
    auto pl = partitions_.find(p);
    if (!g || g->state == State::kDead || pl == partitions_.end() || !pl->second.loaded) {
      if (g) release_record_write_locked(id);
      r->set_error_code(pl == partitions_.end() ? ev1::NOT_COORDINATOR : ev1::GROUP_ID_NOT_FOUND);
      r->set_error_message("no group " + id);
      continue;
    }
    if (g->state != State::kEmpty || is_consumer_group(*g)) {
      release_record_write_locked(id);
      r->set_error_code(ev1::NON_EMPTY_GROUP);
      r->set_error_message("group " + id + " has active members (state " +
                           (is_consumer_group(*g) ? g->consumer->state_name() : state_name(g->state)) + ")");
      continue;
    }
    // Dead while the tombstones are written: joins and commits meanwhile are refused.
    g->state = State::kDead;
    g->empty_unwritten = false;  // the tombstone supersedes it
    std::vector<std::pair<std::string, std::optional<std::string>>> tombstones;
    for (const auto& [tp, c] : g->offsets) {
      tombstones.emplace_back(encode_offset_key({id, tp.first, tp.second}), std::nullopt);
    }
    tombstones.emplace_back(encode_group_key({id}), std::nullopt);
    const int32_t epoch = pl->second.epoch;
    l.unlock();
    int64_t base = 0;
    ErrorCode e = append_records(p, epoch, tombstones, &base);
    l.lock();
    release_record_write_locked(id);
    g = find_group_locked(id);
    if (e != ev1::NONE) {
      if (g && g->state == State::kDead) g->state = State::kEmpty;
      r->set_error_code(e);
      r->set_error_message("the deletion was not written to the offsets partition's in-sync replicas");
      continue;
    }
    if (g) groups_.erase(id);
    notify_locked();
  }
}

// ---- Broker-assigned groups (KIP-848) ---------------------------------------------------------

namespace {

TopicPartitionSet to_set(const v1::PartitionSet& ps) {
  TopicPartitionSet out;
  for (const auto& t : ps.topics()) out[t.topic()].insert(t.partitions().begin(), t.partitions().end());
  return out;
}

void fill_partitions(const TopicPartitionSet& s, google::protobuf::RepeatedPtrField<v1::TopicPartitions>* out) {
  for (const auto& [topic, parts] : s) {
    if (parts.empty()) continue;
    auto* t = out->Add();
    t->set_topic(topic);
    for (int32_t p : parts) t->add_partitions(p);
  }
}

}  // namespace

TopicPartitionCounts GroupCoordinator::topic_counts() const {
  if (topic_counts_) return topic_counts_();
  return [](const std::string&) { return -1; };
}

void GroupCoordinator::consumer_group_heartbeat(const v1::ConsumerGroupHeartbeatRequest& req,
                                                const std::string& client_host,
                                                v1::ConsumerGroupHeartbeatResponse* resp) {
  const TopicPartitionCounts counts = topic_counts();  // before mu_: it reads the metadata image
  std::lock_guard<std::mutex> l(mu_);
  auto fail = [&](ErrorCode e, std::string msg) {
    resp->set_error_code(e);
    resp->set_error_message(std::move(msg));
  };
  int32_t p = 0;
  if (ErrorCode e = check_coordinator_locked(req.group_id(), &p); e != ev1::NONE) {
    return fail(e, e == ev1::INVALID_GROUP_ID ? "a group id is 1 to 255 bytes" : "not the coordinator of this group now");
  }
  Group* g = find_group_locked(req.group_id());
  if (g && g->state == State::kDead) return fail(ev1::COORDINATOR_NOT_AVAILABLE, "the group is being deleted");
  if (g && is_classic_active(*g)) {
    return fail(ev1::GROUP_ID_NOT_FOUND, "group " + req.group_id() + " is a classic group with members");
  }
  if (!g) {
    if (req.member_epoch() == -1 || req.member_epoch() == -2) {
      // Leaving a group that is not here (e.g. after a coordinator change): gone either way.
      resp->set_member_id(req.member_id());
      resp->set_member_epoch(-1);
      return;
    }
    if (req.member_epoch() != 0) {
      // Kafka says GROUP_ID_NOT_FOUND; a group lives in one coordinator's memory here, so after a
      // coordinator change its members get UNKNOWN_MEMBER_ID and rejoin.
      return fail(ev1::UNKNOWN_MEMBER_ID, "member '" + req.member_id() + "' is not in group " + req.group_id() +
                                              " (the coordinator may have changed): rejoin with epoch 0");
    }
    std::string why;
    if (ErrorCode e = check_new_group_locked(req.group_id(), &why); e != ev1::NONE) return fail(e, why);
    g = &get_or_create_group_locked(req.group_id(), p);
  }
  if (!g->consumer) g->consumer = std::make_unique<ConsumerGroup>(req.group_id(), options_.consumer);
  ConsumerHeartbeat hb;
  hb.member_id = req.member_id();
  hb.member_epoch = req.member_epoch();
  hb.client_id = req.client_id();
  hb.client_host = client_host;
  hb.rack_id = req.rack_id();
  hb.rebalance_timeout_ms = req.rebalance_timeout_ms() > 0 ? req.rebalance_timeout_ms() : -1;
  if (req.member_epoch() == 0 || req.subscribed_topic_names_size() > 0) {
    hb.subscribed_topics.emplace(req.subscribed_topic_names().begin(), req.subscribed_topic_names().end());
  }
  if (!req.server_assignor().empty()) hb.server_assignor = req.server_assignor();
  if (req.has_owned()) hb.owned = to_set(req.owned());
  // A handed-out id: unique without coordination, as Kafka's (a UUID-like random string).
  const std::string new_id = (req.client_id().empty() ? std::string("member") : req.client_id()) + "-" +
                             random_suffix() + random_suffix();
  const int32_t epoch_before = g->consumer->group_epoch();
  ConsumerHeartbeatAnswer a = g->consumer->heartbeat(hb, clock_->monotonic_ms(), counts, new_id);
  if (a.error != ev1::NONE && a.error != ev1::NOT_COORDINATOR) {
    LOG(INFO) << "group " << req.group_id() << ": consumer heartbeat of '" << req.member_id() << "' at epoch "
              << req.member_epoch() << ": " << ev1::ErrorCode_Name(a.error) << " (" << a.message << ")";
  } else if (g->consumer->group_epoch() != epoch_before) {
    LOG(INFO) << "group " << req.group_id() << ": epoch " << g->consumer->group_epoch() << " after a heartbeat of '"
              << a.member_id << "' at epoch " << req.member_epoch() << " (" << g->consumer->members().size()
              << " members)";
  }
  resp->set_error_code(a.error);
  resp->set_error_message(a.message);
  if (a.error == ev1::NONE) {
    resp->set_member_id(a.member_id);
    resp->set_member_epoch(a.member_epoch);
    resp->set_heartbeat_interval_ms(a.heartbeat_interval_ms);
    if (a.assignment) fill_partitions(*a.assignment, resp->mutable_assignment()->mutable_topics());
    if (a.assignment && !resp->has_assignment()) resp->mutable_assignment();
  }
  mark_consumer_record_locked(*g);
  if (is_vacant(*g)) groups_.erase(req.group_id());
}

void GroupCoordinator::mark_consumer_record_locked(Group& g) {
  if (!g.consumer || g.consumer->group_epoch() == g.consumer_written_epoch) return;
  const std::string st = g.consumer->state_name();
  if (st != "Stable" && st != "Empty") return;
  if (st == "Empty" && g.consumer_written_epoch < 0) return;  // never written: nothing to undo
  g.consumer_dirty = true;
  writer_cv_.notify_one();
}

void GroupCoordinator::write_consumer_groups(std::unique_lock<std::mutex>& l) {
  std::vector<std::string> candidates;
  for (auto& [id, g] : groups_) {
    if (g.consumer_dirty) candidates.push_back(id);
  }
  for (const std::string& id : candidates) {
    Group* g = claim_record_write_locked(l, id);
    if (!g) continue;
    g->consumer_dirty = false;
    auto pl = partitions_.find(g->partition);
    const std::string st = g->consumer ? g->consumer->state_name() : "";
    if (!g->consumer || (st != "Stable" && st != "Empty") || pl == partitions_.end() || !pl->second.loaded ||
        g->consumer->group_epoch() == g->consumer_written_epoch) {
      release_record_write_locked(id);
      continue;
    }
    v1::GroupMetadataValue v;
    v.set_protocol_type("consumer");
    v.set_generation_id(g->generation);
    v.set_state_timestamp_ms(clock_->now_ms());
    const ConsumerGroupSnapshot snap = g->consumer->snapshot();
    auto* cg = v.mutable_consumer();
    cg->set_group_epoch(snap.group_epoch);
    cg->set_assignment_epoch(snap.assignment_epoch);
    for (const auto& [t, n] : snap.subscribed_counts) (*cg->mutable_subscribed_partition_counts())[t] = n;
    for (const auto& sm : snap.members) {
      auto* m = cg->add_members();
      m->set_member_id(sm.id);
      m->set_client_id(sm.client_id);
      m->set_client_host(sm.client_host);
      m->set_rack_id(sm.rack_id);
      m->set_member_epoch(sm.epoch);
      m->set_rebalance_timeout_ms(sm.rebalance_timeout_ms);
      for (const auto& t : sm.topics) m->add_topics(t);
      m->set_assignor(sm.assignor);
      fill_partitions(sm.assigned, m->mutable_partitions());
    }
    const int32_t p = g->partition, epoch = pl->second.epoch;
    l.unlock();
    int64_t base = 0;
    ErrorCode e = append_records(p, epoch, {{encode_group_key({id}), encode_group_value(v)}}, &base);
    l.lock();
    release_record_write_locked(id);
    g = find_group_locked(id);
    if (!g) continue;
    if (e == ev1::NONE) {
      g->has_metadata_record = true;
      g->consumer_written_epoch = snap.group_epoch;
    }
    if (e != ev1::NOT_COORDINATOR) mark_consumer_record_locked(*g);  // newer since, or not written: again
  }
}

void GroupCoordinator::consumer_group_describe(const v1::ConsumerGroupDescribeRequest& req,
                                               v1::ConsumerGroupDescribeResponse* resp) {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::string& id : req.group_ids()) {
    auto* d = resp->add_groups();
    d->set_group_id(id);
    int32_t p = 0;
    if (ErrorCode e = check_coordinator_locked(id, &p); e != ev1::NONE) {
      d->set_error_code(e);
      continue;
    }
    const Group* g = find_group_locked(id);
    if (!g || g->state == State::kDead || is_classic_active(*g)) {
      d->set_error_code(ev1::GROUP_ID_NOT_FOUND);
      d->set_error_message(g && is_classic_active(*g) ? "group " + id + " is a classic group: see DescribeGroups"
                                                      : "no consumer group " + id);
      continue;
    }
    if (!g->consumer) {
      d->set_state("Empty");  // only offsets: either protocol may take it
      continue;
    }
    const ConsumerGroup& c = *g->consumer;
    d->set_state(c.state_name());
    d->set_group_epoch(c.group_epoch());
    d->set_assignment_epoch(c.assignment_epoch());
    d->set_assignor_name(c.assignor_name());
    for (const auto& [mid, m] : c.members()) {
      auto* mm = d->add_members();
      mm->set_member_id(mid);
      mm->set_client_id(m.client_id);
      mm->set_client_host(m.client_host);
      mm->set_rack_id(m.rack_id);
      mm->set_member_epoch(m.epoch);
      mm->set_state(ConsumerGroup::member_state_name(m.state));
      for (const auto& t : m.topics) mm->add_subscribed_topic_names(t);
      fill_partitions(m.assigned, mm->mutable_assignment());
      fill_partitions(c.target(mid), mm->mutable_target_assignment());
      fill_partitions(m.pending_revocation, mm->mutable_pending_revocation());
    }
  }
}

// ---- Timers -----------------------------------------------------------------------------------

void GroupCoordinator::timer_loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    timer_cv_.wait_for(l, std::chrono::milliseconds(kTimerTickMs));
    if (stopping_) return;
    // Partition counts for broker-assigned groups whose members expire (read without mu_).
    l.unlock();
    const TopicPartitionCounts counts = topic_counts();
    l.lock();
    if (stopping_) return;
    const int64_t now = clock_->monotonic_ms();
    for (auto git = groups_.begin(); git != groups_.end();) {
      const std::string& id = git->first;
      Group& g = git->second;
      auto pl = partitions_.find(g.partition);
      if (pl == partitions_.end() || !pl->second.loaded) {
        ++git;
        continue;
      }
      if (g.consumer && g.consumer->next_deadline_ms() <= now) {
        for (const std::string& mid : g.consumer->expire(now, counts)) {
          LOG(INFO) << "group " << id << ": consumer member " << mid << " removed (session or rebalance timeout)";
        }
        mark_consumer_record_locked(g);
        if (is_vacant(g)) {
          git = groups_.erase(git);
          continue;
        }
      }
      bool expired_pending = false;
      for (auto it = g.pending_members.begin(); it != g.pending_members.end();) {
        expired_pending |= it->second <= now;
        it = it->second <= now ? g.pending_members.erase(it) : std::next(it);
      }
      if (expired_pending && is_vacant(g)) {
        // A first join never followed up: nothing of the group is left anywhere.
        git = groups_.erase(git);
        continue;
      }
      // Sessions: a member blocked in a join or sync call is alive (its call is its heartbeat).
      std::vector<std::string> expired;
      for (const auto& [mid, m] : g.members) {
        if (!m.awaiting_join && !m.awaiting_sync && m.session_deadline_ms <= now) expired.push_back(mid);
      }
      for (const std::string& mid : expired) {
        LOG(INFO) << "group " << id << ": member " << mid << " session expired";
        remove_member_locked(g, mid, "member " + mid + "'s session expired");
      }
      // Sync phase over time (Kafka's pending-sync timeout): unless the leader's assignment is
      // being written, members that never sent SyncGroup are out, and the group rebalances.
      if (g.state == State::kCompletingRebalance && now >= g.sync_deadline_ms) {
        auto leader = g.members.find(g.leader);
        if (leader == g.members.end() || !leader->second.awaiting_sync) {
          std::vector<std::string> late;
          for (const auto& [mid, m] : g.members) {
            if (!m.awaiting_sync) late.push_back(mid);
          }
          for (const std::string& mid : late) {
            LOG(INFO) << "group " << id << ": member " << mid << " did not sync within the rebalance timeout";
            remove_member_locked(g, mid, "member " + mid + " did not sync in time");
          }
        }
      }
      maybe_complete_join_locked(g, now);
      ++git;
    }
  }
}

void GroupCoordinator::writer_loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    writer_cv_.wait_for(l, std::chrono::milliseconds(5 * kTimerTickMs));
    if (stopping_) return;
    write_empty_groups(l);
    write_consumer_groups(l);
    if (clock_->now_ms() >= next_offset_expiry_ms_) {
      next_offset_expiry_ms_ = clock_->now_ms() + options_.offsets_retention_check_interval_ms;
      l.unlock();
      expire_offsets(clock_->now_ms());
      l.lock();
    }
  }
}

void GroupCoordinator::write_empty_groups(std::unique_lock<std::mutex>& l) {
  struct Write {
    std::string group;
    int32_t p, epoch, generation;
    std::string value;
  };
  std::vector<std::string> candidates;
  for (auto& [id, g] : groups_) {
    if (g.empty_unwritten) candidates.push_back(id);
  }
  for (const std::string& id : candidates) {
    // One write of the group's record at a time; what to write is decided once the slot is ours.
    Group* g = claim_record_write_locked(l, id);
    if (!g) continue;
    auto pl = partitions_.find(g->partition);
    const bool write = g->empty_unwritten && g->state == State::kEmpty && pl != partitions_.end() && pl->second.loaded;
    g->empty_unwritten = false;
    if (!write) {
      release_record_write_locked(id);
      continue;
    }
    const Write w{id, g->partition, pl->second.epoch, g->generation, encode_group_value(group_value_locked(*g))};
    l.unlock();
    int64_t base = 0;
    ErrorCode e = append_records(w.p, w.epoch, {{encode_group_key({w.group}), w.value}}, &base);
    l.lock();
    release_record_write_locked(id);
    if (e == ev1::NONE || e == ev1::NOT_COORDINATOR) continue;
    // Not written (the ISR is short): the writer thread tries again while nothing newer happened.
    g = find_group_locked(w.group);
    if (g && g->state == State::kEmpty && g->generation == w.generation) g->empty_unwritten = true;
  }
}

void GroupCoordinator::run_offset_expiry_for_test() { expire_offsets(clock_->now_ms()); }

void GroupCoordinator::expire_offsets(int64_t now) {
  // Offsets of groups without members expire offsets.retention.ms after the group became Empty
  // (KIP-211), or after their commit if that is later (an offset reset of an Empty group) or the
  // group never had members (no protocol type: commits from outside only). A group left with
  // nothing (no offsets, no members, no member id handed out) is deleted, as Kafka's cleanup does.
  struct Work {
    int32_t p, epoch;
    std::string group;
    std::vector<std::pair<std::string, int32_t>> keys;
    bool delete_group;
  };
  std::vector<Work> work;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = groups_.begin(); it != groups_.end();) {
      Group& g = it->second;
      auto pl = partitions_.find(g.partition);
      if (pl == partitions_.end() || !pl->second.loaded || g.state != State::kEmpty || !g.pending_members.empty()) {
        ++it;
        continue;
      }
      if (g.offsets.empty() && !g.has_metadata_record) {
        it = groups_.erase(it);  // nothing of it in the log either
        continue;
      }
      Work w{g.partition, pl->second.epoch, it->first, {}, false};
      for (const auto& [tp, c] : g.offsets) {
        const int64_t since = g.protocol_type.empty() ? c.commit_timestamp_ms
                                                      : std::max(c.commit_timestamp_ms, g.state_timestamp_ms);
        if (since + options_.offsets_retention_ms <= now) w.keys.push_back(tp);
      }
      w.delete_group = w.keys.size() == g.offsets.size();
      if (w.delete_group) g.empty_unwritten = false;  // the tombstone supersedes it
      if (w.delete_group || !w.keys.empty()) work.push_back(std::move(w));
      ++it;
    }
  }
  for (Work& w : work) {
    bool claimed = false;
    if (w.delete_group) {
      // The group's tombstone waits for any write of its record in flight, and is written only if
      // the group is still empty once the slot is ours.
      std::unique_lock<std::mutex> l(mu_);
      Group* g = claim_record_write_locked(l, w.group);
      claimed = g != nullptr;
      if (!g || g->state != State::kEmpty || !g->pending_members.empty()) w.delete_group = false;
      if (claimed && !w.delete_group) {
        release_record_write_locked(w.group);
        claimed = false;
      }
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> tombstones;
    for (const auto& tp : w.keys) tombstones.emplace_back(encode_offset_key({w.group, tp.first, tp.second}), std::nullopt);
    if (w.delete_group) tombstones.emplace_back(encode_group_key({w.group}), std::nullopt);
    int64_t base = 0;
    const ErrorCode e = append_records(w.p, w.epoch, tombstones, &base);
    std::lock_guard<std::mutex> l(mu_);
    if (claimed) release_record_write_locked(w.group);
    if (e != ev1::NONE) continue;
    Group* g = find_group_locked(w.group);
    if (!g) continue;
    for (const auto& tp : w.keys) {
      auto it = g->offsets.find(tp);
      if (it != g->offsets.end() && it->second.log_offset < base) g->offsets.erase(it);
    }
    if (w.delete_group && g->state == State::kEmpty && g->offsets.empty() && g->pending_members.empty()) {
      groups_.erase(w.group);
    }
    LOG(INFO) << "group " << w.group << ": expired " << w.keys.size() << " committed offset(s)";
  }
}

}  // namespace gannet::broker
