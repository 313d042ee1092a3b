#include "raft/simulator.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <vector>

namespace gannet::raft {
namespace {

constexpr int64_t kTickMs = 10;
constexpr int64_t kMaxEvents = 5'000'000;  // every loop has a bound

struct Disk {
  HardState hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> durable;  // synced entries (from the snapshot end)
  std::vector<Entry> written;  // what the node wrote, synced or not
};

struct Node {
  NodeId id = kNoNode;
  bool voter = true;
  std::unique_ptr<RaftCore> core;  // null while crashed
  uint64_t incarnation = 0;
  uint64_t durable_write_id = 0;  // the latest Ready whose sync completed (this incarnation)
  bool paused = false;
  Disk disk;
  int64_t last_hw = 0;
  int64_t checked_upto = 0;          // the checker compared this node's log below here
  Epoch checked_leader_epoch = -1;   // the checker verified completeness for this epoch
  // The state machine: the committed entries applied, in order (data only).
  int64_t applied_end = 0;
  std::vector<std::string> state;  // applied data since the snapshot
  std::string snapshot_state;      // the state a snapshot holds
  int64_t applied_since_snapshot = 0;
};

enum class EventType { kDeliver, kSync, kTick, kCrash, kRestart, kPause, kResume, kPartition,
                       kHealPartition, kPropose, kHeal };

struct Event {
  int64_t time;
  uint64_t seq;
  EventType type;
  NodeId node = kNoNode;
  uint64_t incarnation = 0;
  uint64_t write_id = 0;
  std::vector<Entry> written;  // kSync: the node's written log as of that Ready
  int64_t written_start = 0;   // kSync: the offset of written[0]
  Message message;             // kDeliver
  bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

class Sim {
 public:
  explicit Sim(const SimOptions& o) : opt_(o), rng_(o.seed) {
    int voters = o.voters > 0 ? o.voters : (rng_() % 2 ? 5 : 3);
    int observers = o.observers >= 0 ? o.observers : static_cast<int>(rng_() % 2);
    for (int i = 1; i <= voters; ++i) voter_ids_.push_back(i);
    for (int i = 0; i < voters + observers; ++i) {
      Node n;
      n.id = i + 1;
      n.voter = i < voters;
      nodes_.push_back(std::move(n));
    }
    drop_p_ = 0.02 + (rng_() % 100) / 1000.0;  // 2%..12% during faults
    dup_p_ = (rng_() % 50) / 1000.0;
    max_latency_ = 2 + static_cast<int64_t>(rng_() % 30);
    snapshot_every_ = 20 + static_cast<int64_t>(rng_() % 60);
  }

  SimResult run() {
    for (Node& n : nodes_) start(n);
    for (Node& n : nodes_) schedule(static_cast<int64_t>(rng_() % kTickMs), EventType::kTick, n.id);
    schedule_faults();
    for (int64_t t = 50; t < opt_.fault_ms + opt_.heal_bound_ms; t += 20 + static_cast<int64_t>(rng_() % 60)) {
      schedule(t, EventType::kPropose, kNoNode);
    }
    schedule(opt_.fault_ms, EventType::kHeal, kNoNode);
    int64_t steps = 0;
    while (!queue_.empty() && result_.ok) {
      if (++steps > kMaxEvents) return fail("event bound exceeded");
      Event e = queue_.top();
      queue_.pop();
      now_ = e.time;
      if (healed_ && now_ > opt_.fault_ms + opt_.heal_bound_ms) break;
      handle(e);
      check(steps % 25 == 0);
      if (healed_ && progress_marker_ >= 0 && committed_upto() > progress_marker_) {
        // Progress after healing: a new entry committed. Run a little more, then stop.
        if (finish_at_ < 0) finish_at_ = now_ + 500;
      }
      if (finish_at_ >= 0 && now_ >= finish_at_) break;
    }
    if (!result_.ok) return result_;
    check(true);
    if (!result_.ok) return result_;
    if (progress_marker_ < 0 || committed_upto() <= progress_marker_) {
      return fail("no progress within " + std::to_string(opt_.heal_bound_ms) +
                  " ms after the faults healed (committed up to " +
                  std::to_string(committed_upto()) + ")");
    }
    result_.committed = committed_upto();
    return result_;
  }

 private:
  SimResult fail(const std::string& why) {
    if (result_.ok) {
      result_.ok = false;
      result_.failure = "t=" + std::to_string(now_) + "ms: " + why;
    }
    return result_;
  }

  void trace(const std::string& s) {
    if (opt_.trace) std::printf("[%7lld] %s\n", static_cast<long long>(now_), s.c_str());
  }

  Node& node(NodeId id) { return nodes_[static_cast<size_t>(id - 1)]; }

  void schedule(int64_t at, EventType type, NodeId node, Event extra = {}) {
    extra.time = at;
    extra.seq = seq_++;
    extra.type = type;
    extra.node = node;
    queue_.push(std::move(extra));
  }

  Config config_for(const Node& n) {
    Config c;
    c.id = n.id;
    c.voters = voter_ids_;
    c.election_timeout_ms = 300;
    c.fetch_timeout_ms = 600;
    c.fetch_max_wait_ms = 150;
    c.request_timeout_ms = 400;
    c.max_fetch_bytes = 4096;
    c.snapshot_chunk_bytes = 256;
    c.seed = opt_.seed * 1000 + n.incarnation;
    c.bugs = opt_.bugs;
    return c;
  }

  void start(Node& n) {
    ++n.incarnation;
    n.durable_write_id = 0;
    n.disk.written = n.disk.durable;
    RaftCore::Restored r{n.disk.hard_state, n.disk.snapshot, n.disk.durable};
    n.core = std::make_unique<RaftCore>(config_for(n), std::move(r), now_);
    n.last_hw = n.core->high_watermark();
    n.checked_upto = 0;
    n.checked_leader_epoch = -1;
    // The state machine restarts from its snapshot and replays committed entries again.
    n.state.clear();
    n.snapshot_state = n.disk.snapshot ? n.disk.snapshot->data : "";
    n.applied_end = n.disk.snapshot ? n.disk.snapshot->id.end_offset : 0;
    n.applied_since_snapshot = 0;
    trace("node " + std::to_string(n.id) + " starts (incarnation " + std::to_string(n.incarnation) +
          ", epoch " + std::to_string(n.disk.hard_state.epoch) + ", log end " +
          std::to_string(n.core->end_offset()) + ")");
    drain(n);
  }

  // Processes everything the node's core has to say, honouring the durability contract.
  void drain(Node& n) {
    for (int guard = 0; n.core && n.core->has_ready() && guard < 100; ++guard) {
      Ready rd = n.core->take_ready();
      if (rd.hard_state) n.disk.hard_state = *rd.hard_state;  // synchronous, before messages
      if (rd.snapshot) {
        n.disk.snapshot = rd.snapshot;  // synchronous
        n.disk.durable.clear();
        n.disk.written.clear();
        n.snapshot_state = rd.snapshot->data;
        n.state.clear();
        n.applied_end = rd.snapshot->id.end_offset;
        ++result_.snapshots_installed;
      }
      if (rd.truncate_to) {
        const int64_t start = log_start(n.disk);
        auto keep = static_cast<size_t>(std::max<int64_t>(0, *rd.truncate_to - start));
        if (n.disk.written.size() > keep) n.disk.written.resize(keep);
      }
      for (const Entry& e : rd.append) n.disk.written.push_back(e);
      if (rd.compact_before) {
        // The snapshot this node took covers the log below compact_before.
        const int64_t start = log_start(n.disk);
        auto drop_w = static_cast<size_t>(std::clamp<int64_t>(*rd.compact_before - start, 0, n.disk.written.size()));
        auto drop_d = static_cast<size_t>(std::clamp<int64_t>(*rd.compact_before - start, 0, n.disk.durable.size()));
        n.disk.written.erase(n.disk.written.begin(), n.disk.written.begin() + drop_w);
        n.disk.durable.erase(n.disk.durable.begin(), n.disk.durable.begin() + drop_d);
        n.disk.snapshot = n.core->snapshot();
      }
      if (rd.truncate_to || !rd.append.empty() || rd.snapshot) {
        Event s;
        s.incarnation = n.incarnation;
        s.write_id = rd.write_id;
        s.written = n.disk.written;
        s.written_start = log_start(n.disk);
        // Most syncs are quick; some stall (a slow disk), which widens every unsynced window.
        const int64_t latency = rng_() % 10 == 0 ? 20 + static_cast<int64_t>(rng_() % 150)
                                                 : 1 + static_cast<int64_t>(rng_() % 4);
        schedule(now_ + latency, EventType::kSync, n.id, std::move(s));
        // Nemesis: crash a leader while its writes are in flight.
        if (!healed_ && n.core->role() == Role::kLeader && rng_() % 100 == 0) {
          crash_soon(n.id, static_cast<int64_t>(rng_() % static_cast<uint64_t>(latency + 1)));
        }
      }
      for (Message& m : rd.messages) {
        // Nemesis: crash a voter just after it granted a vote, before the candidate can win.
        if (!healed_ && std::holds_alternative<VoteResponse>(m.body)) {
          const auto& v = std::get<VoteResponse>(m.body);
          if (v.granted && !v.pre_vote && rng_() % 4 == 0) {
            crash_soon(n.id, static_cast<int64_t>(rng_() % 3), /*max_down=*/40);
          }
        }
        send(std::move(m));
      }
      for (const Entry& e : rd.committed) apply(n, e);
      if (rd.leader_change && rd.leader_change->leader == n.id) {
        ++result_.elections;
        trace("node " + std::to_string(n.id) + " leads epoch " + std::to_string(rd.leader_change->epoch));
      }
    }
  }

  // Crashes `id` after `delay` ms and restarts it shortly after (during the fault phase only).
  void crash_soon(NodeId id, int64_t delay, int64_t max_down = 200) {
    const int64_t at = now_ + delay;
    if (at >= opt_.fault_ms - 1) return;
    schedule(at, EventType::kCrash, id);
    schedule(std::min(at + 5 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(max_down)),
                      opt_.fault_ms - 1),
             EventType::kRestart, id);
  }

  static int64_t log_start(const Disk& d) { return d.snapshot ? d.snapshot->id.end_offset : 0; }

  void apply(Node& n, const Entry& e) {
    if (e.offset != n.applied_end) {
      fail("node " + std::to_string(n.id) + " applied offset " + std::to_string(e.offset) +
           " but expected " + std::to_string(n.applied_end));
      return;
    }
    n.applied_end = e.offset + 1;
    n.state.push_back(e.data);
    if (++n.applied_since_snapshot >= snapshot_every_ && !n.core->entries().empty()) {
      // Take a snapshot of the applied state (the HW covers it).
      n.applied_since_snapshot = 0;
      std::string data = n.snapshot_state;
      for (const auto& s : n.state) data += s + ";";
      const int64_t end = n.applied_end;
      const auto& log = n.core->entries();
      const int64_t start = n.core->log_start();
      if (end > start && end <= start + static_cast<int64_t>(log.size())) {
        n.core->snapshot_taken(Snapshot{{end, log[end - 1 - start].epoch}, data});
        n.snapshot_state = data;
        n.state.clear();
      }
    }
  }

  void send(Message m) {
    ++result_.messages;
    if (!healed_) {
      if (blocked_.count({m.from, m.to})) return;
      if (std::uniform_real_distribution<>(0, 1)(rng_) < drop_p_) return;
    }
    int copies = (!healed_ && std::uniform_real_distribution<>(0, 1)(rng_) < dup_p_) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      Event e;
      e.message = m;
      schedule(now_ + 1 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(max_latency_)),
               EventType::kDeliver, m.to, std::move(e));
    }
  }

  void handle(Event& e) {
    switch (e.type) {
      case EventType::kDeliver: {
        Node& n = node(e.node);
        if (!n.core) return;  // lost: the node is down
        if (n.paused) {       // held until the node resumes
          schedule(now_ + 5, EventType::kDeliver, e.node, e);
          return;
        }
        if (!healed_ && blocked_.count({e.message.from, e.message.to})) return;
        if (opt_.trace) {
          trace("deliver " + std::string(message_name(e.message.body)) + " " +
                std::to_string(e.message.from) + "->" + std::to_string(e.message.to));
        }
        n.core->step(e.message, now_);
        drain(n);
        break;
      }
      case EventType::kSync: {
        Node& n = node(e.node);
        if (!n.core || n.incarnation != e.incarnation) return;
        // Syncs may complete out of order; one that started earlier makes nothing new durable.
        if (e.write_id <= n.durable_write_id) return;
        n.durable_write_id = e.write_id;
        // Everything written up to that Ready is now durable (later writes may still be pending).
        // A snapshot taken since then may have compacted the log's front away.
        n.disk.durable = e.written;
        const int64_t drop = log_start(n.disk) - e.written_start;
        if (drop > 0) {
          n.disk.durable.erase(n.disk.durable.begin(),
                               n.disk.durable.begin() + std::min<int64_t>(drop, n.disk.durable.size()));
        }
        // Later truncations already applied to `written` must not be undone by an older sync.
        const size_t common = std::min(n.disk.durable.size(), n.disk.written.size());
        size_t match = 0;
        while (match < common && n.disk.durable[match] == n.disk.written[match]) ++match;
        if (match < n.disk.durable.size()) n.disk.durable.resize(match);
        n.core->on_synced(e.write_id, now_);
        drain(n);
        break;
      }
      case EventType::kTick: {
        Node& n = node(e.node);
        if (opt_.trace && e.node == 1 && now_ / 500 != last_status_ / 500) {
          last_status_ = now_;
          status();
        }
        if (n.core && !n.paused) {
          n.core->tick(now_);
          drain(n);
        }
        schedule(now_ + kTickMs, EventType::kTick, e.node);
        break;
      }
      case EventType::kCrash: {
        Node& n = node(e.node);
        if (!n.core) return;
        crash_now(n);
        break;
      }
      case EventType::kRestart: {
        Node& n = node(e.node);
        if (n.core || n.id == lost_) return;
        start(n);
        break;
      }
      case EventType::kPause:
        if (node(e.node).core) {
          trace("node " + std::to_string(e.node) + " pauses");
          node(e.node).paused = true;
        }
        break;
      case EventType::kResume:
        node(e.node).paused = false;
        break;
      case EventType::kPartition: {
        const Partition& p = partitions_[e.write_id];
        blocked_.insert(p.links.begin(), p.links.end());
        trace("partition: " + std::to_string(p.links.size()) + " links cut");
        schedule(p.to, EventType::kHealPartition, kNoNode);
        break;
      }
      case EventType::kHealPartition:
        blocked_.clear();
        break;
      case EventType::kPropose:
        propose();
        break;
      case EventType::kHeal:
        heal();
        break;
    }
  }

  void crash_now(Node& n) {
    ++result_.crashes;
    trace("node " + std::to_string(n.id) + " crashes");
    // Unsynced writes are lost, except that a prefix of the entries appended since the last
    // sync may have reached the disk anyway (the storage layer cuts a torn batch, so what
    // survives is whole entries). The hard state and snapshots were written synchronously.
    {
      Disk& d = n.disk;
      const size_t common = std::min(d.durable.size(), d.written.size());
      if (d.written.size() > d.durable.size() &&
          std::equal(d.durable.begin(), d.durable.begin() + common, d.written.begin())) {
        const size_t extra = d.written.size() - d.durable.size();
        const size_t keep = rng_() % 3 == 0 ? rng_() % (extra + 1) : 0;
        d.durable.insert(d.durable.end(), d.written.begin() + d.durable.size(),
                         d.written.begin() + d.durable.size() + keep);
      }
    }
    n.core.reset();
    n.paused = false;
  }

  void status() {
    std::string line = "status:";
    for (const Node& n : nodes_) {
      line += " [" + std::to_string(n.id) + " ";
      if (!n.core) {
        line += "down]";
        continue;
      }
      const RaftCore& c = *n.core;
      line += std::string(role_name(c.role())) + (n.paused ? "(paused)" : "") + " e" +
              std::to_string(c.epoch()) + " L" + std::to_string(c.leader()) + " v" +
              std::to_string(n.disk.hard_state.voted_for) + " hw" + std::to_string(c.high_watermark()) +
              " end" + std::to_string(c.end_offset()) + " sync" + std::to_string(c.synced_end()) +
              " last_ep" + std::to_string(c.last_epoch()) + "]";
    }
    trace(line);
  }

  void propose() {
    for (Node& n : nodes_) {
      if (!n.core || n.paused || n.core->role() != Role::kLeader) continue;
      std::string data = "p" + std::to_string(proposal_++) + "@" + std::to_string(n.id);
      auto r = n.core->propose({data}, now_);
      if (opt_.trace && std::holds_alternative<int64_t>(r)) {
        trace("node " + std::to_string(n.id) + " proposes " + data);
      }
      drain(n);
    }
  }

  void schedule_faults() {
    // Faults are chosen up front from the seed: crashes, pauses and partitions.
    const int64_t end = opt_.fault_ms - 500;
    const int count = 3 + static_cast<int>(rng_() % 10);
    for (int i = 0; i < count; ++i) {
      const int64_t at = 200 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(end - 200));
      const NodeId victim = 1 + static_cast<NodeId>(rng_() % nodes_.size());
      const int64_t len = 100 + static_cast<int64_t>(rng_() % 2000);
      switch (rng_() % 4) {
        case 0:
        case 1:
          schedule(at, EventType::kCrash, victim);
          schedule(std::min(at + len, opt_.fault_ms - 1), EventType::kRestart, victim);
          break;
        case 2:
          schedule(at, EventType::kPause, victim);
          schedule(std::min(at + len, opt_.fault_ms - 1), EventType::kResume, victim);
          break;
        case 3: {
          // Partition: cut `victim` off from some others, one way or both.
          const bool symmetric = rng_() % 2;
          std::set<std::pair<NodeId, NodeId>> links;
          for (const Node& other : nodes_) {
            if (other.id == victim || rng_() % 3 == 0) continue;
            links.insert({victim, other.id});
            if (symmetric) links.insert({other.id, victim});
          }
          partitions_.push_back({at, std::min(at + len, opt_.fault_ms - 1), links});
          break;
        }
      }
    }
    // A partition event carries its index in write_id.
    for (size_t i = 0; i < partitions_.size(); ++i) {
      Event on;
      on.write_id = i;
      schedule(partitions_[i].from, EventType::kPartition, kNoNode, on);
    }
  }

  void heal() {
    trace("heal");
    healed_ = true;
    blocked_.clear();
    if (opt_.lose_leader_at_heal) {
      // The leader (or, with none, a random voter) dies for good, as a machine that never comes
      // back: the others still follow it and must notice and elect among themselves.
      Node* victim = nullptr;
      Epoch best = -1;
      for (Node& n : nodes_) {
        if (n.core && n.core->role() == Role::kLeader && n.core->epoch() > best) {
          victim = &n;
          best = n.core->epoch();
        }
      }
      if (!victim) victim = &node(voter_ids_[rng_() % voter_ids_.size()]);
      lost_ = victim->id;
      trace("node " + std::to_string(lost_) + " is lost for good");
      if (victim->core) crash_now(*victim);
    }
    for (Node& n : nodes_) {
      n.paused = false;
      if (!n.core && n.id != lost_) start(n);
    }
    progress_marker_ = committed_upto();
  }

  int64_t committed_upto() const {
    return committed_.empty() ? 0 : committed_.rbegin()->first + 1;
  }

  // ---- Checker -------------------------------------------------------------------------------

  void check(bool full) {
    for (Node& n : nodes_) {
      if (!n.core) continue;
      const RaftCore& c = *n.core;
      if (c.epoch() > result_.max_epoch) result_.max_epoch = c.epoch();
      // At most one leader per epoch.
      if (c.role() == Role::kLeader) {
        auto [it, fresh] = leaders_.emplace(c.epoch(), n.id);
        if (it->second != n.id) {
          fail("two leaders in epoch " + std::to_string(c.epoch()) + ": nodes " +
               std::to_string(it->second) + " and " + std::to_string(n.id));
          return;
        }
      }
      // A leader's log only grows during its epoch, so completeness is checked when it is first
      // seen leading (and again in the periodic full check).
      if (c.role() == Role::kLeader && (full || n.checked_leader_epoch != c.epoch())) {
        n.checked_leader_epoch = c.epoch();
        // Leader completeness: a leader holds every entry committed in an earlier epoch. (A
        // stale leader of an old epoch may lack what later epochs committed.)
        for (auto ci = committed_.lower_bound(c.log_start()); ci != committed_.end(); ++ci) {
          const int64_t o = ci->first;
          if (commit_epoch_[o] >= c.epoch()) continue;
          if (o >= c.end_offset() || !(c.entries()[o - c.log_start()] == ci->second)) {
            fail("leader " + std::to_string(n.id) + " of epoch " + std::to_string(c.epoch()) +
                 " lacks committed offset " + std::to_string(o));
            return;
          }
        }
      }
      // HW monotonic within an incarnation.
      if (c.high_watermark() < n.last_hw) {
        fail("node " + std::to_string(n.id) + " HW moved back from " + std::to_string(n.last_hw) +
             " to " + std::to_string(c.high_watermark()));
        return;
      }
      n.last_hw = c.high_watermark();
      // Committed entries never change: below a node's HW, its log is the committed log. Each
      // step looks at what the HW newly covers; the full check looks at everything.
      const int64_t hw = std::min(c.high_watermark(), c.end_offset());
      for (int64_t o = std::max(c.log_start(), n.checked_upto); o < hw; ++o) {
        const Entry& e = c.entries()[o - c.log_start()];
        auto found = committed_.find(o);
        if (found != committed_.end()) {
          if (!(found->second == e)) {
            fail("committed offset " + std::to_string(o) + " changed on node " +
                 std::to_string(n.id) + " (epoch " + std::to_string(found->second.epoch) + " -> " +
                 std::to_string(e.epoch) + ")");
            return;
          }
          continue;
        }
        auto [it, fresh] = committed_.emplace(o, e);
        // The epoch in which the commit was first seen bounds the epoch that committed it.
        if (fresh) commit_epoch_[o] = c.epoch();
        if (!(it->second == e)) {
          fail("committed offset " + std::to_string(o) + " changed on node " + std::to_string(n.id) +
               " (epoch " + std::to_string(it->second.epoch) + " -> " + std::to_string(e.epoch) + ")");
          return;
        }
      }
      n.checked_upto = std::max(n.checked_upto, hw);
    }
    if (full) check_full();
  }

  void check_full() {
    // Every committed entry below each node's HW matches, and log matching holds pairwise.
    for (Node& n : nodes_) {
      if (!n.core) continue;
      const RaftCore& c = *n.core;
      const int64_t hw = std::min(c.high_watermark(), c.end_offset());
      for (int64_t o = c.log_start(); o < hw; ++o) {
        const Entry& e = c.entries()[o - c.log_start()];
        auto [it, fresh] = committed_.emplace(o, e);
        if (fresh) commit_epoch_[o] = c.epoch();
        if (!(it->second == e)) {
          fail("committed offset " + std::to_string(o) + " differs on node " + std::to_string(n.id));
          return;
        }
      }
      // Committed entries are never lost: each node's durable log holds none that contradict.
    }
    for (size_t a = 0; a < nodes_.size(); ++a) {
      for (size_t b = a + 1; b < nodes_.size(); ++b) {
        if (!nodes_[a].core || !nodes_[b].core) continue;
        const RaftCore& x = *nodes_[a].core;
        const RaftCore& y = *nodes_[b].core;
        const int64_t lo = std::max(x.log_start(), y.log_start());
        const int64_t hi = std::min(x.end_offset(), y.end_offset());
        // The last offset where both have an entry of the same epoch: everything up to it
        // must be identical.
        int64_t last_same = -1;
        for (int64_t o = hi - 1; o >= lo; --o) {
          if (x.entries()[o - x.log_start()].epoch == y.entries()[o - y.log_start()].epoch) {
            last_same = o;
            break;
          }
        }
        for (int64_t o = lo; o <= last_same; ++o) {
          if (!(x.entries()[o - x.log_start()] == y.entries()[o - y.log_start()])) {
            fail("log matching violated between nodes " + std::to_string(nodes_[a].id) + " and " +
                 std::to_string(nodes_[b].id) + " at offset " + std::to_string(o));
            return;
          }
        }
      }
    }
  }

 public:
  std::function<void(const Event&)> partition_handler_;

 private:
  struct Partition {
    int64_t from, to;
    std::set<std::pair<NodeId, NodeId>> links;
  };

  const SimOptions opt_;
  std::mt19937_64 rng_;
  std::vector<NodeId> voter_ids_;
  std::vector<Node> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t seq_ = 0;
  int64_t now_ = 0;
  double drop_p_ = 0;
  double dup_p_ = 0;
  int64_t max_latency_ = 5;
  int64_t snapshot_every_ = 50;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::vector<Partition> partitions_;
  bool healed_ = false;
  NodeId lost_ = kNoNode;  // lose_leader_at_heal: never restarted
  int64_t progress_marker_ = -1;
  int64_t finish_at_ = -1;
  uint64_t proposal_ = 0;
  int64_t last_status_ = -1;
  std::map<Epoch, NodeId> leaders_;
  std::map<int64_t, Entry> committed_;
  std::map<int64_t, Epoch> commit_epoch_;  // epoch of the node that first saw the commit
  SimResult result_;
};

}  // namespace

SimResult run_simulation(const SimOptions& options) {
  Sim sim(options);
  return sim.run();
}

}  // namespace gannet::raft
