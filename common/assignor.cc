#include "common/assignor.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <set>

namespace gannet::client {
namespace {

// The members in member id order (the first of any duplicate id kept), each with the subset of
// its subscription that exists in partitions_per_topic.
struct Member {
  const AssignorMember* in;
  std::set<std::string> topics;
};

std::vector<Member> prepare(const std::map<std::string, int32_t>& partitions_per_topic,
                            const std::vector<AssignorMember>& members) {
  std::map<std::string_view, const AssignorMember*> by_id;
  for (const AssignorMember& m : members) by_id.try_emplace(m.member_id, &m);
  std::vector<Member> out;
  out.reserve(by_id.size());
  for (const auto& [id, m] : by_id) {
    Member pm{m, {}};
    for (const std::string& t : m->topics) {
      auto it = partitions_per_topic.find(t);
      if (it != partitions_per_topic.end() && it->second > 0) pm.topics.insert(t);
    }
    out.push_back(std::move(pm));
  }
  return out;
}

// Every member present, possibly with nothing.
GroupAssignment empty_assignment(const std::vector<Member>& members) {
  GroupAssignment out;
  for (const Member& m : members) out[m.in->member_id];
  return out;
}

void sort_lists(GroupAssignment* a) {
  for (auto& [id, tps] : *a) std::sort(tps.begin(), tps.end());
}

// The topics some member subscribes to (and that exist), sorted, with their partition counts.
std::map<std::string, int32_t> subscribed_topics(const std::map<std::string, int32_t>& partitions_per_topic,
                                                 const std::vector<Member>& members) {
  std::map<std::string, int32_t> out;
  for (const Member& m : members) {
    for (const std::string& t : m.topics) out.emplace(t, partitions_per_topic.at(t));
  }
  return out;
}

}  // namespace

GroupAssignment RangeAssignor::assign(const std::map<std::string, int32_t>& partitions_per_topic,
                                      const std::vector<AssignorMember>& members) const {
  const std::vector<Member> ms = prepare(partitions_per_topic, members);
  GroupAssignment out = empty_assignment(ms);
  for (const auto& [topic, n] : subscribed_topics(partitions_per_topic, ms)) {
    std::vector<const Member*> subscribers;  // in member id order, as `ms` is
    for (const Member& m : ms) {
      if (m.topics.contains(topic)) subscribers.push_back(&m);
    }
    const int32_t count = static_cast<int32_t>(subscribers.size());
    const int32_t each = n / count;
    const int32_t extra = n % count;
    int32_t next = 0;
    for (int32_t i = 0; i < count; ++i) {
      const int32_t take = each + (i < extra ? 1 : 0);
      auto& list = out[subscribers[i]->in->member_id];
      for (int32_t p = next; p < next + take; ++p) list.push_back({topic, p});
      next += take;
    }
  }
  sort_lists(&out);
  return out;
}

GroupAssignment RoundRobinAssignor::assign(const std::map<std::string, int32_t>& partitions_per_topic,
                                           const std::vector<AssignorMember>& members) const {
  const std::vector<Member> ms = prepare(partitions_per_topic, members);
  GroupAssignment out = empty_assignment(ms);
  size_t next = 0;  // the circle's position: it keeps going from topic to topic, as Kafka's does
  for (const auto& [topic, n] : subscribed_topics(partitions_per_topic, ms)) {
    for (int32_t p = 0; p < n; ++p) {
      // Some member subscribes to `topic` (that is how it got here), so this ends within a lap.
      while (!ms[next].topics.contains(topic)) next = (next + 1) % ms.size();
      out[ms[next].in->member_id].push_back({topic, p});
      next = (next + 1) % ms.size();
    }
  }
  sort_lists(&out);
  return out;
}

namespace {

// The sticky assignment as a min-cost flow, with topics as the unit of choice: partitions of
// one topic differ only in who owned them, so the flow decides how many partitions of each topic
// each member gets (and how many of them it keeps), and the partitions are picked afterwards.
//
//   source -> topic t           capacity: t's partition count, cost 0
//   topic t -> member m (kept)  capacity: partitions of t that m validly owned, cost 0
//   topic t -> member m (new)   capacity: unbounded, cost 1 (a partition moves)
//   member m -> sink            convex: the k-th partition costs kBalance * (2k - 1)
//
// The member -> sink costs add up to kBalance * load^2, so the total cost is
// kBalance * sum(load^2) + moves. With kBalance above any possible number of moves, the minimum
// is the most balanced assignment first and the stickiest of those second. Successive shortest
// paths, one partition at a time, reach that minimum for convex costs: the member -> sink arc
// always offers its next unit's marginal cost forward and its last unit's refund backward.
// The graph has one node per topic and member, and one augmentation per partition; ties are
// broken by arc order, so the result is deterministic.
class StickyFlow {
 public:
  StickyFlow(int topics, int members, int64_t total_partitions)
      : topics_(topics), members_(members), balance_(total_partitions + 1), graph_(topics + members + 2) {}

  int source() const { return 0; }
  int topic(int t) const { return 1 + t; }
  int member(int m) const { return 1 + topics_ + m; }
  int sink() const { return 1 + topics_ + members_; }

  // Returns the index of the arc in graph_[from].
  size_t add_arc(int from, int to, int64_t cap, int64_t cost) {
    graph_[from].push_back({to, cap, cost, graph_[to].size()});
    graph_[to].push_back({from, 0, -cost, graph_[from].size() - 1});
    return graph_[from].size() - 1;
  }
  void add_member_sinks() {
    for (int m = 0; m < members_; ++m) {
      sink_arc_.push_back(add_arc(member(m), sink(), std::numeric_limits<int64_t>::max() / 4, balance_));
      load_.push_back(0);
    }
  }
  // Pushes one unit along a shortest path; false if no path is left.
  bool augment() {
    const int n = static_cast<int>(graph_.size());
    constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;
    std::vector<int64_t> dist(n, kInf);
    std::vector<std::pair<int, size_t>> via(n, {-1, 0});  // previous node, arc index there
    // Bellman-Ford driven by a FIFO queue of nodes whose distance dropped (SPFA): most nodes
    // settle at once, so this visits far fewer arcs than full rounds. The residual graph of a
    // min-cost flow has no negative cycle, so no node is queued n times; the bound is there so
    // a bug cannot loop forever.
    std::vector<int> queued_times(n, 0);
    std::vector<bool> in_queue(n, false);
    std::deque<int> queue = {source()};
    dist[source()] = 0;
    in_queue[source()] = true;
    while (!queue.empty()) {
      const int u = queue.front();
      queue.pop_front();
      in_queue[u] = false;
      for (size_t i = 0; i < graph_[u].size(); ++i) {
        const Arc& a = graph_[u][i];
        if (a.cap <= 0 || dist[u] + a.cost >= dist[a.to]) continue;
        dist[a.to] = dist[u] + a.cost;
        via[a.to] = {u, i};
        if (!in_queue[a.to]) {
          if (++queued_times[a.to] > n) return false;  // a negative cycle: cannot happen
          in_queue[a.to] = true;
          queue.push_back(a.to);
        }
      }
    }
    if (dist[sink()] == kInf) return false;
    for (int v = sink(); v != source(); v = via[v].first) {
      Arc& a = graph_[via[v].first][via[v].second];
      a.cap -= 1;
      graph_[a.to][a.rev].cap += 1;
    }
    // Reprice the member -> sink arcs to the new loads' marginal costs.
    for (int m = 0; m < members_; ++m) {
      Arc& fwd = graph_[member(m)][sink_arc_[m]];
      Arc& back = graph_[sink()][fwd.rev];
      load_[m] = back.cap;
      fwd.cost = balance_ * (2 * load_[m] + 1);
      back.cost = -balance_ * (2 * load_[m] - 1);
    }
    return true;
  }
  // Units that flowed along arc `index` out of `from`.
  int64_t flow(int from, size_t index) const {
    const Arc& a = graph_[from][index];
    return graph_[a.to][a.rev].cap;
  }

 private:
  struct Arc {
    int to;
    int64_t cap;
    int64_t cost;
    size_t rev;  // the reverse arc's index in graph_[to]
  };
  const int topics_;
  const int members_;
  const int64_t balance_;  // the weight of sum(load^2): more than any number of moves
  std::vector<std::vector<Arc>> graph_;
  std::vector<size_t> sink_arc_;
  std::vector<int64_t> load_;
};

}  // namespace

GroupAssignment StickyAssignor::assign(const std::map<std::string, int32_t>& partitions_per_topic,
                                       const std::vector<AssignorMember>& members) const {
  const std::vector<Member> ms = prepare(partitions_per_topic, members);
  GroupAssignment out = empty_assignment(ms);
  const std::map<std::string, int32_t> topics = subscribed_topics(partitions_per_topic, ms);
  if (topics.empty()) return out;

  // Valid previous owners: the member still subscribes, the partition still exists, and no
  // member of a higher generation claims it. Ties at the top generation void the claim.
  struct Claim {
    int32_t generation;
    int member;  // -1: void
  };
  std::map<TopicPartition, Claim> owner;
  for (int m = 0; m < static_cast<int>(ms.size()); ++m) {
    const AssignorMember& in = *ms[m].in;
    for (const TopicPartition& tp : in.owned_partitions) {
      auto t = topics.find(tp.topic);
      if (t == topics.end() || !ms[m].topics.contains(tp.topic) || tp.partition < 0 || tp.partition >= t->second) {
        continue;
      }
      auto [it, fresh] = owner.try_emplace(tp, Claim{in.generation, m});
      if (fresh || it->second.member == m) continue;  // the first claim, or a repeat of its own
      if (in.generation > it->second.generation) {
        it->second = {in.generation, m};
      } else if (in.generation == it->second.generation) {
        it->second.member = -1;
      }
    }
  }
  // owned[t][m]: the partitions of topic t member m keeps a claim on, ascending.
  std::vector<std::string_view> topic_names;
  std::map<std::string_view, int> topic_index;
  for (const auto& [t, n] : topics) {
    topic_index[t] = static_cast<int>(topic_names.size());
    topic_names.push_back(t);
  }
  std::vector<std::vector<std::vector<int32_t>>> owned(topics.size(), std::vector<std::vector<int32_t>>(ms.size()));
  for (const auto& [tp, claim] : owner) {
    if (claim.member >= 0) owned[topic_index.at(tp.topic)][claim.member].push_back(tp.partition);
  }

  int64_t total = 0;
  for (const auto& [t, n] : topics) total += n;
  StickyFlow flow(static_cast<int>(topics.size()), static_cast<int>(ms.size()), total);
  struct Edge {
    int t, m;
    size_t kept, fresh;  // arc indexes out of the topic node
  };
  std::vector<Edge> edges;
  for (const auto& [t, n] : topics) {
    const int ti = topic_index.at(t);
    flow.add_arc(flow.source(), flow.topic(ti), n, 0);
    for (int m = 0; m < static_cast<int>(ms.size()); ++m) {
      if (!ms[m].topics.contains(t)) continue;
      const size_t kept = flow.add_arc(flow.topic(ti), flow.member(m), static_cast<int64_t>(owned[ti][m].size()), 0);
      const size_t fresh = flow.add_arc(flow.topic(ti), flow.member(m), n, 1);
      edges.push_back({ti, m, kept, fresh});
    }
  }
  flow.add_member_sinks();
  for (int64_t i = 0; i < total; ++i) {
    // Every topic here has a subscriber, so every partition finds a path.
    if (!flow.augment()) break;
  }

  // Materialize: each member keeps the lowest of its owned partitions up to its kept count
  // (a cost-optimal flow fills the free kept arc before paying for a new one), then the
  // partitions nobody kept go, ascending, to members in id order up to their new counts.
  std::vector<std::vector<bool>> taken(topics.size());
  for (const auto& [t, n] : topics) taken[topic_index.at(t)].assign(n, false);
  for (const Edge& e : edges) {
    const int64_t keep = flow.flow(flow.topic(e.t), e.kept);
    auto& list = out[ms[e.m].in->member_id];
    for (int64_t i = 0; i < keep; ++i) {
      const int32_t p = owned[e.t][e.m][i];
      list.push_back({std::string(topic_names[e.t]), p});
      taken[e.t][p] = true;
    }
  }
  for (const Edge& e : edges) {
    int64_t fresh = flow.flow(flow.topic(e.t), e.fresh);
    auto& list = out[ms[e.m].in->member_id];
    for (int32_t p = 0; p < static_cast<int32_t>(taken[e.t].size()) && fresh > 0; ++p) {
      if (taken[e.t][p]) continue;
      list.push_back({std::string(topic_names[e.t]), p});
      taken[e.t][p] = true;
      --fresh;
    }
  }
  sort_lists(&out);
  return out;
}

std::unique_ptr<PartitionAssignor> make_assignor(std::string_view name) {
  if (name == "range") return std::make_unique<RangeAssignor>();
  if (name == "roundrobin") return std::make_unique<RoundRobinAssignor>();
  if (name == "sticky") return std::make_unique<StickyAssignor>();
  return nullptr;
}

}  // namespace gannet::client
