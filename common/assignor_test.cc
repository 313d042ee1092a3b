#include "common/assignor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <set>

namespace gannet::client {
namespace {

using Partitions = std::vector<TopicPartition>;

uint64_t test_seed() {
  if (const char* env = std::getenv("GANNET_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

AssignorMember member(std::string id, std::vector<std::string> topics, Partitions owned = {}, int32_t generation = -1) {
  return AssignorMember{std::move(id), std::move(topics), std::move(owned), generation, std::nullopt};
}

Partitions tps(const std::string& topic, std::initializer_list<int32_t> ps) {
  Partitions out;
  for (int32_t p : ps) out.push_back({topic, p});
  return out;
}

Partitions cat(Partitions a, const Partitions& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The promises every assignor makes (assignor.h), checked against the input.
void check_valid(const std::map<std::string, int32_t>& counts, const std::vector<AssignorMember>& members,
                 const GroupAssignment& got) {
  std::map<std::string, std::set<std::string>> subs;
  for (const AssignorMember& m : members) subs[m.member_id].insert(m.topics.begin(), m.topics.end());
  ASSERT_EQ(got.size(), subs.size()) << "every member present, nobody else";
  std::set<std::string> wanted_topics;
  for (const auto& [id, topics] : subs) {
    for (const std::string& t : topics) {
      if (auto it = counts.find(t); it != counts.end() && it->second > 0) wanted_topics.insert(t);
    }
  }
  std::map<TopicPartition, int> times;
  for (const auto& [id, list] : got) {
    ASSERT_TRUE(subs.contains(id)) << id;
    EXPECT_TRUE(std::is_sorted(list.begin(), list.end())) << id;
    for (const TopicPartition& tp : list) {
      ++times[tp];
      EXPECT_TRUE(subs[id].contains(tp.topic)) << id << " got " << tp.topic << " without subscribing";
    }
  }
  size_t total = 0;
  for (const std::string& t : wanted_topics) {
    for (int32_t p = 0; p < counts.at(t); ++p) {
      EXPECT_EQ(times[(TopicPartition{t, p})], 1) << t << "-" << p << " assigned that many times";
      ++total;
    }
  }
  EXPECT_EQ(times.size(), total) << "only partitions of subscribed, existing topics";
}

int64_t sum_squares(const GroupAssignment& a) {
  int64_t s = 0;
  for (const auto& [id, list] : a) s += static_cast<int64_t>(list.size()) * static_cast<int64_t>(list.size());
  return s;
}

// Balance as sticky promises it: identical subscriptions differ by at most one, and no partition
// could move to a member subscribed to its topic holding two or more fewer.
void check_balanced(const std::vector<AssignorMember>& members, const GroupAssignment& got) {
  std::map<std::string, std::set<std::string>> subs;
  for (const AssignorMember& m : members) subs[m.member_id].insert(m.topics.begin(), m.topics.end());
  for (const auto& [a, la] : got) {
    for (const auto& [b, lb] : got) {
      if (subs[a] == subs[b]) {
        EXPECT_LE(la.size(), lb.size() + 1) << a << " vs " << b << " with the same subscription";
      }
      if (la.size() < lb.size() + 2) continue;
      for (const TopicPartition& tp : la) {
        EXPECT_FALSE(subs[b].contains(tp.topic))
            << tp.topic << "-" << tp.partition << " could move from " << a << " (" << la.size() << ") to " << b
            << " (" << lb.size() << ")";
      }
    }
  }
}

// Previous owners as the next generation reports them.
std::vector<AssignorMember> with_owned(std::vector<AssignorMember> members, const GroupAssignment& previous,
                                       int32_t generation) {
  for (AssignorMember& m : members) {
    auto it = previous.find(m.member_id);
    m.owned_partitions = it == previous.end() ? Partitions{} : it->second;
    m.generation = generation;
  }
  return members;
}

// Partitions whose owner differs between two assignments (including ones whose owner left).
int moved(const GroupAssignment& before, const GroupAssignment& after) {
  std::map<TopicPartition, std::string> was;
  for (const auto& [id, list] : before) {
    for (const TopicPartition& tp : list) was[tp] = id;
  }
  int n = 0;
  for (const auto& [id, list] : after) {
    for (const TopicPartition& tp : list) n += was.contains(tp) && was[tp] != id;
  }
  return n;
}

// Kafka's documented examples (RangeAssignor and RoundRobinAssignor javadoc).

TEST(RangeAssignor, KafkaDocExampleTwoMembersTwoTopicsOfThree) {
  const std::map<std::string, int32_t> counts = {{"t0", 3}, {"t1", 3}};
  const std::vector<AssignorMember> members = {member("C1", {"t0", "t1"}), member("C0", {"t0", "t1"})};
  const GroupAssignment got = RangeAssignor().assign(counts, members);
  EXPECT_EQ(got.at("C0"), cat(tps("t0", {0, 1}), tps("t1", {0, 1})));
  EXPECT_EQ(got.at("C1"), cat(tps("t0", {2}), tps("t1", {2})));
}

TEST(RangeAssignor, TheFirstMembersTakeTheRemainder) {
  const std::map<std::string, int32_t> counts = {{"t", 8}};
  const GroupAssignment got =
      RangeAssignor().assign(counts, {member("c", {"t"}), member("a", {"t"}), member("b", {"t"})});
  EXPECT_EQ(got.at("a"), tps("t", {0, 1, 2}));
  EXPECT_EQ(got.at("b"), tps("t", {3, 4, 5}));
  EXPECT_EQ(got.at("c"), tps("t", {6, 7}));
}

TEST(RoundRobinAssignor, KafkaDocExampleTwoMembersTwoTopicsOfThree) {
  const std::map<std::string, int32_t> counts = {{"t0", 3}, {"t1", 3}};
  const std::vector<AssignorMember> members = {member("C0", {"t0", "t1"}), member("C1", {"t0", "t1"})};
  const GroupAssignment got = RoundRobinAssignor().assign(counts, members);
  EXPECT_EQ(got.at("C0"), cat(tps("t0", {0, 2}), tps("t1", {1})));
  EXPECT_EQ(got.at("C1"), cat(tps("t0", {1}), tps("t1", {0, 2})));
}

TEST(RoundRobinAssignor, KafkaDocExampleUnevenSubscriptions) {
  const std::map<std::string, int32_t> counts = {{"t0", 1}, {"t1", 2}, {"t2", 3}};
  const std::vector<AssignorMember> members = {member("C0", {"t0"}), member("C1", {"t0", "t1"}),
                                               member("C2", {"t0", "t1", "t2"})};
  const GroupAssignment got = RoundRobinAssignor().assign(counts, members);
  EXPECT_EQ(got.at("C0"), tps("t0", {0}));
  EXPECT_EQ(got.at("C1"), tps("t1", {0}));
  EXPECT_EQ(got.at("C2"), cat(tps("t1", {1}), tps("t2", {0, 1, 2})));
}

// Kafka's StickyAssignor javadoc example: where round robin gives C0 t0p0, C1 t1p0 and C2
// everything else, sticky balances what the subscriptions allow; when C0 leaves only its
// partition moves.
TEST(StickyAssignor, KafkaDocExampleUnevenSubscriptions) {
  const std::map<std::string, int32_t> counts = {{"t0", 1}, {"t1", 2}, {"t2", 3}};
  std::vector<AssignorMember> members = {member("C0", {"t0"}), member("C1", {"t0", "t1"}),
                                         member("C2", {"t0", "t1", "t2"})};
  const GroupAssignment first = StickyAssignor().assign(counts, members);
  EXPECT_EQ(first.at("C0"), tps("t0", {0}));
  EXPECT_EQ(first.at("C1"), tps("t1", {0, 1}));
  EXPECT_EQ(first.at("C2"), tps("t2", {0, 1, 2}));
  members = with_owned(members, first, 1);
  members.erase(members.begin());
  const GroupAssignment second = StickyAssignor().assign(counts, members);
  EXPECT_EQ(second.at("C1"), cat(tps("t0", {0}), tps("t1", {0, 1})));
  EXPECT_EQ(second.at("C2"), tps("t2", {0, 1, 2}));
}

TEST(AllAssignors, ThreeMembersOnSixPartitionsGetTwoEachAndASeventhMemberGetsNone) {
  const std::map<std::string, int32_t> counts = {{"t", 6}};
  for (const char* name : {"range", "roundrobin", "sticky"}) {
    SCOPED_TRACE(name);
    auto assignor = make_assignor(name);
    ASSERT_TRUE(assignor);
    EXPECT_EQ(assignor->name(), name);
    std::vector<AssignorMember> members;
    for (int i = 0; i < 3; ++i) members.push_back(member("m" + std::to_string(i), {"t"}));
    GroupAssignment got = assignor->assign(counts, members);
    for (const auto& [id, list] : got) EXPECT_EQ(list.size(), 2u) << id;
    for (int i = 3; i < 7; ++i) members.push_back(member("m" + std::to_string(i), {"t"}));
    got = assignor->assign(counts, members);
    check_valid(counts, members, got);
    int empty = 0;
    for (const auto& [id, list] : got) {
      EXPECT_LE(list.size(), 1u) << id;
      empty += list.empty();
    }
    EXPECT_EQ(empty, 1);
  }
  EXPECT_EQ(make_assignor("cooperative-sticky"), nullptr);
  EXPECT_EQ(make_assignor(""), nullptr);
}

TEST(AllAssignors, MissingTopicsAreSkippedAndMembersWithNothingArePresent) {
  const std::map<std::string, int32_t> counts = {{"t", 2}, {"empty", 0}};
  const std::vector<AssignorMember> members = {member("a", {"t", "gone"}), member("b", {"gone", "empty"}),
                                               member("c", {})};
  for (const char* name : {"range", "roundrobin", "sticky"}) {
    SCOPED_TRACE(name);
    const GroupAssignment got = make_assignor(name)->assign(counts, members);
    check_valid(counts, members, got);
    EXPECT_EQ(got.at("a"), tps("t", {0, 1}));
    EXPECT_TRUE(got.at("b").empty());
    EXPECT_TRUE(got.at("c").empty());
  }
  EXPECT_TRUE(StickyAssignor().assign(counts, {}).empty());
}

TEST(StickyAssignor, TheHigherGenerationWinsAClaimAndStaleClaimsCountWhenUncontested) {
  const std::map<std::string, int32_t> counts = {{"t", 4}};
  // a (generation 5) and b (generation 3) both claim t-0: a keeps it. b's uncontested t-2 from
  // its older generation still counts.
  const std::vector<AssignorMember> members = {member("a", {"t"}, tps("t", {0, 1}), 5),
                                               member("b", {"t"}, tps("t", {0, 2}), 3)};
  const GroupAssignment got = StickyAssignor().assign(counts, members);
  EXPECT_EQ(got.at("a"), tps("t", {0, 1}));
  EXPECT_EQ(got.at("b"), tps("t", {2, 3}));
  // The same with the generations swapped: b keeps t-0, and a keeps t-1 (its other claim).
  const GroupAssignment swapped = StickyAssignor().assign(
      counts, {member("a", {"t"}, tps("t", {0, 1}), 3), member("b", {"t"}, tps("t", {0, 2}), 5)});
  EXPECT_EQ(swapped.at("a"), tps("t", {1, 3}));
  EXPECT_EQ(swapped.at("b"), tps("t", {0, 2}));
}

TEST(StickyAssignor, ClaimsOnUnsubscribedOrVanishedPartitionsAreDropped) {
  // a owned u-0 (it no longer subscribes to u) and t-5 (t shrank to 3 partitions).
  const std::map<std::string, int32_t> counts = {{"t", 3}, {"u", 1}};
  const std::vector<AssignorMember> members = {
      member("a", {"t"}, cat(tps("t", {2, 5}), tps("u", {0})), 2),
      member("b", {"t", "u"}, tps("t", {0, 1}), 2),
  };
  const GroupAssignment got = StickyAssignor().assign(counts, members);
  check_valid(counts, members, got);
  EXPECT_EQ(got.at("a"), tps("t", {1, 2})) << "a keeps t-2 and takes one of b's to balance";
  EXPECT_EQ(got.at("b"), cat(tps("t", {0}), tps("u", {0})));
}

TEST(StickyAssignor, ATieInTheTopGenerationVoidsTheClaim) {
  // Both claim t-1 in generation 4: neither claim counts, so t-1 goes like an unowned partition
  // (the lowest unowned goes to the first member that needs one); b's t-2 stays.
  const std::map<std::string, int32_t> counts = {{"t", 3}};
  const GroupAssignment got = StickyAssignor().assign(
      counts, {member("a", {"t"}, tps("t", {1}), 4), member("b", {"t"}, tps("t", {1, 2}), 4), member("c", {"t"})});
  EXPECT_EQ(got.at("a"), tps("t", {0}));
  EXPECT_EQ(got.at("b"), tps("t", {2}));
  EXPECT_EQ(got.at("c"), tps("t", {1}));
}

// A random group: members subscribe to random subsets of the topics, some of which do not exist.
struct RandomGroup {
  std::map<std::string, int32_t> counts;
  std::vector<AssignorMember> members;
};

RandomGroup random_group(std::mt19937_64& rng, int max_members, int max_topics, int max_partitions,
                         bool identical_subscriptions) {
  RandomGroup g;
  const int topics = 1 + static_cast<int>(rng() % max_topics);
  std::vector<std::string> names;
  for (int t = 0; t < topics; ++t) {
    names.push_back("topic" + std::to_string(t));
    if (rng() % 8 != 0 || identical_subscriptions) g.counts[names.back()] = 1 + static_cast<int32_t>(rng() % max_partitions);
  }
  const int members = 1 + static_cast<int>(rng() % max_members);
  std::vector<std::string> shared;
  for (const std::string& t : names) {
    if (rng() % 2 == 0) shared.push_back(t);
  }
  if (shared.empty()) shared.push_back(names[0]);
  for (int m = 0; m < members; ++m) {
    std::vector<std::string> subs;
    if (identical_subscriptions) {
      subs = shared;
    } else {
      for (const std::string& t : names) {
        if (rng() % 3 == 0) subs.push_back(t);
      }
    }
    g.members.push_back(member("member-" + std::to_string(rng() % 100000) + "-" + std::to_string(m), subs));
  }
  return g;
}

TEST(AllAssignors, RandomGroupsKeepEveryPromise) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 300 && !HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const RandomGroup g = random_group(rng, 50, 10, 64, rng() % 4 == 0);
    for (const char* name : {"range", "roundrobin", "sticky"}) {
      SCOPED_TRACE(name);
      auto assignor = make_assignor(name);
      const GroupAssignment got = assignor->assign(g.counts, g.members);
      check_valid(g.counts, g.members, got);
      // Deterministic, and independent of the order members are listed in.
      std::vector<AssignorMember> shuffled = g.members;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      EXPECT_EQ(assignor->assign(g.counts, shuffled), got);
    }
    const GroupAssignment sticky = StickyAssignor().assign(g.counts, g.members);
    check_balanced(g.members, sticky);
    // Nobody changed: a balanced assignment fed back as owned comes back unchanged.
    EXPECT_EQ(StickyAssignor().assign(g.counts, with_owned(g.members, sticky, 1)), sticky);
  }
}

// Sticky on small groups against exhaustive search over every valid assignment: the same
// balance (sum of squared loads) and the same number of partitions kept by their previous owner.
TEST(StickyAssignor, MatchesExhaustiveSearchOnSmallGroups) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  int searched = 0;  // rounds with a real choice to make
  for (int round = 0; round < 2000 && !HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    RandomGroup g = random_group(rng, 4, 3, 3, false);
    // Random previous owners, one per partition at most, each a member that still subscribes.
    std::map<TopicPartition, std::string> prev;
    std::vector<TopicPartition> all;
    for (const auto& [t, n] : g.counts) {
      for (int32_t p = 0; p < n; ++p) {
        std::vector<AssignorMember*> subs;
        for (AssignorMember& m : g.members) {
          if (std::find(m.topics.begin(), m.topics.end(), t) != m.topics.end()) subs.push_back(&m);
        }
        if (subs.empty()) continue;
        all.push_back({t, p});
        if (rng() % 3 == 0) continue;  // unowned
        AssignorMember* owner = subs[rng() % subs.size()];
        owner->owned_partitions.push_back({t, p});
        owner->generation = 1;
        prev[{t, p}] = owner->member_id;
      }
    }
    if (all.size() > 8) continue;  // keeps the search at most 4^8
    searched += all.size() >= 3 && g.members.size() >= 2;
    const GroupAssignment got = StickyAssignor().assign(g.counts, g.members);
    check_valid(g.counts, g.members, got);
    auto kept = [&](const GroupAssignment& a) {
      int k = 0;
      for (const auto& [id, list] : a) {
        for (const TopicPartition& tp : list) k += prev.contains(tp) && prev[tp] == id;
      }
      return k;
    };
    // Exhaustive: each partition to each subscriber in turn, scoring loads and kept partitions
    // directly (a map per candidate would make this the slowest test here).
    std::pair<int64_t, int> best = {std::numeric_limits<int64_t>::max(), 0};  // (sum of squares, -kept)
    std::vector<std::vector<size_t>> choices;  // per partition: indexes of its subscribers
    std::vector<int> prev_owner;               // per partition: index of its previous owner or -1
    for (const TopicPartition& tp : all) {
      choices.emplace_back();
      prev_owner.push_back(-1);
      for (size_t m = 0; m < g.members.size(); ++m) {
        const auto& topics = g.members[m].topics;
        if (std::find(topics.begin(), topics.end(), tp.topic) != topics.end()) choices.back().push_back(m);
        if (prev.contains(tp) && prev[tp] == g.members[m].member_id) prev_owner.back() = static_cast<int>(m);
      }
    }
    std::vector<size_t> pick(all.size(), 0);
    std::vector<int64_t> load(g.members.size());
    while (true) {
      std::fill(load.begin(), load.end(), 0);
      int k = 0;
      for (size_t i = 0; i < all.size(); ++i) {
        const size_t m = choices[i][pick[i]];
        ++load[m];
        k += prev_owner[i] == static_cast<int>(m);
      }
      int64_t sq = 0;
      for (int64_t l : load) sq += l * l;
      best = std::min(best, std::make_pair(sq, -k));
      size_t i = 0;
      while (i < pick.size() && ++pick[i] == choices[i].size()) pick[i++] = 0;
      if (i == pick.size()) break;
    }
    EXPECT_EQ(sum_squares(got), best.first) << "not the most balanced";
    EXPECT_EQ(kept(got), -best.second) << "not the stickiest of the most balanced";
  }
  EXPECT_GT(searched, 500) << "the generator should make real choices";
}

// With identical subscriptions: a join moves at most ceil(P / (N + 1)) partitions (just what the
// newcomer needs) and a leave moves only the departed member's partitions.
TEST(StickyAssignor, AJoinOrALeaveMovesOnlyWhatItMust) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE("GANNET_SEED=" + std::to_string(seed));
  std::cout << "GANNET_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 200 && !HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    RandomGroup g = random_group(rng, 30, 10, 64, true);
    int total = 0;
    for (const std::string& t : g.members[0].topics) total += g.counts.at(t);
    GroupAssignment current = StickyAssignor().assign(g.counts, g.members);
    int32_t generation = 1;
    for (int step = 0; step < 6; ++step) {
      std::vector<AssignorMember> next = with_owned(g.members, current, generation++);
      const size_t n = next.size();
      const bool join = n == 1 || rng() % 2 == 0;
      std::string left;
      if (join) {
        next.push_back(member("joiner-" + std::to_string(round) + "-" + std::to_string(step), g.members[0].topics));
      } else {
        const size_t i = rng() % n;
        left = next[i].member_id;
        next.erase(next.begin() + static_cast<long>(i));
      }
      const GroupAssignment after = StickyAssignor().assign(g.counts, next);
      check_valid(g.counts, next, after);
      check_balanced(next, after);
      if (join) {
        EXPECT_LE(moved(current, after), (total + static_cast<int>(n)) / static_cast<int>(n + 1)) << "join of " << n + 1;
      } else {
        EXPECT_EQ(moved(current, after), static_cast<int>(current.at(left).size())) << "leave of " << left;
      }
      current = after;
      g.members = next;
      for (AssignorMember& m : g.members) m.owned_partitions.clear();
    }
  }
}

}  // namespace
}  // namespace gannet::client
