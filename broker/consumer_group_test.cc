// ConsumerGroup (KIP-848's broker-assigned protocol) driven by scripts of heartbeats and timer
// ticks: no threads, no I/O, a clock that only moves when the script says.
#include "broker/consumer_group.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>

namespace gannet::broker {
namespace {

using gannet::v1::ErrorCode;

class ConsumerGroupTest : public ::testing::Test {
 protected:
  ConsumerGroupTest() : g_("g", config()) {}
  static ConsumerGroupConfig config() {
    ConsumerGroupConfig c;
    c.session_timeout_ms = 10'000;
    c.heartbeat_interval_ms = 1'000;
    c.max_size = 8;
    return c;
  }

  TopicPartitionCounts counts() {
    return [this](const std::string& t) {
      auto it = topics_.find(t);
      return it == topics_.end() ? -1 : it->second;
    };
  }

  // A member's heartbeat at epoch `epoch`, reporting `owned`.
  ConsumerHeartbeatAnswer beat(const std::string& id, int32_t epoch, std::optional<TopicPartitionSet> owned,
                               std::optional<std::vector<std::string>> topics = std::nullopt,
                               std::optional<std::string> assignor = std::nullopt) {
    ConsumerHeartbeat hb;
    hb.member_id = id;
    hb.member_epoch = epoch;
    hb.subscribed_topics = std::move(topics);
    hb.server_assignor = std::move(assignor);
    hb.owned = std::move(owned);
    hb.rebalance_timeout_ms = 5'000;
    return g_.heartbeat(hb, now_, counts(), "generated-" + std::to_string(++ids_));
  }
  ConsumerHeartbeatAnswer join(const std::string& id, std::vector<std::string> topics,
                               std::optional<std::string> assignor = std::nullopt) {
    return beat(id, 0, TopicPartitionSet{}, std::move(topics), std::move(assignor));
  }

  static size_t count(const TopicPartitionSet& s) {
    size_t n = 0;
    for (const auto& [t, ps] : s) n += ps.size();
    return n;
  }

  // No partition is held by two members (assigned or pending revocation).
  void expect_exclusive() {
    std::map<std::pair<std::string, int32_t>, std::string> seen;
    for (const auto& [id, m] : g_.members()) {
      for (const auto* s : {&m.assigned, &m.pending_revocation}) {
        for (const auto& [t, ps] : *s) {
          for (int32_t p : ps) {
            auto [it, fresh] = seen.emplace(std::make_pair(t, p), id);
            EXPECT_TRUE(fresh) << t << "-" << p << " held by " << it->second << " and " << id;
          }
        }
      }
    }
  }

  ConsumerGroup g_;
  std::map<std::string, int32_t> topics_ = {{"t", 6}, {"u", 6}};
  int64_t now_ = 1'000'000;
  int ids_ = 0;
};

TEST_F(ConsumerGroupTest, AFirstMemberGetsEveryPartitionAndAnIdWhenItSendsNone) {
  auto a = join("", {"t"});
  ASSERT_EQ(a.error, gannet::v1::NONE) << a.message;
  EXPECT_EQ(a.member_id, "generated-1");
  EXPECT_GT(a.member_epoch, 0);
  EXPECT_EQ(a.heartbeat_interval_ms, 1'000);
  ASSERT_TRUE(a.assignment);
  EXPECT_EQ((*a.assignment)["t"], (std::set<int32_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(g_.state_name(), "Stable");
  // Nothing changed: no assignment in the answer, same epoch.
  auto b = beat(a.member_id, a.member_epoch, *a.assignment);
  EXPECT_EQ(b.error, gannet::v1::NONE);
  EXPECT_EQ(b.member_epoch, a.member_epoch);
  EXPECT_FALSE(b.assignment);
}

TEST_F(ConsumerGroupTest, APartitionMovesOnlyAfterItsOwnerGaveItUp) {
  auto a = join("A", {"t"});
  auto b = join("B", {"t"});
  // B is in the new epoch, but everything is still A's: B gets nothing yet.
  ASSERT_EQ(b.error, gannet::v1::NONE);
  EXPECT_EQ(count(*b.assignment), 0u);
  EXPECT_EQ(g_.state_name(), "Reconciling");
  // A is told to give three up, and keeps its epoch until it has.
  auto a2 = beat("A", a.member_epoch, *a.assignment);
  ASSERT_EQ(a2.error, gannet::v1::NONE);
  EXPECT_EQ(a2.member_epoch, a.member_epoch);
  ASSERT_TRUE(a2.assignment);
  EXPECT_EQ(count(*a2.assignment), 3u);
  expect_exclusive();
  // B still gets nothing while A holds them.
  auto b2 = beat("B", b.member_epoch, TopicPartitionSet{});
  EXPECT_FALSE(b2.assignment);
  EXPECT_EQ(g_.members().at("B").state, ConsumerGroup::MemberState::kUnreleased);
  // A reports it let them go: it moves to B's epoch; B then gets the three.
  auto a3 = beat("A", a.member_epoch, *a2.assignment);
  EXPECT_EQ(a3.member_epoch, b.member_epoch);
  auto b3 = beat("B", b.member_epoch, TopicPartitionSet{});
  ASSERT_TRUE(b3.assignment);
  EXPECT_EQ(count(*b3.assignment), 3u);
  for (const auto& [t, ps] : *b3.assignment) {
    for (int32_t p : ps) EXPECT_FALSE((*a2.assignment)[t].count(p)) << t << "-" << p << " given to both";
  }
  EXPECT_EQ(g_.state_name(), "Stable");
  expect_exclusive();
}

TEST_F(ConsumerGroupTest, StaleEpochsAreFencedButALostAnswerIsForgiven) {
  auto a = join("A", {"t"});
  auto fenced = beat("A", a.member_epoch + 5, *a.assignment);
  EXPECT_EQ(fenced.error, gannet::v1::FENCED_MEMBER_EPOCH);
  auto unknown = beat("Z", 3, TopicPartitionSet{});
  EXPECT_EQ(unknown.error, gannet::v1::UNKNOWN_MEMBER_ID);
  // A topic grows: A moves to a new epoch, but the answer is lost; A heartbeats at the old one.
  topics_["t"] = 8;
  auto moved = beat("A", a.member_epoch, *a.assignment);
  ASSERT_GT(moved.member_epoch, a.member_epoch);
  EXPECT_EQ(count(*moved.assignment), 8u);
  auto again = beat("A", a.member_epoch, *a.assignment);
  EXPECT_EQ(again.error, gannet::v1::NONE) << again.message;
  EXPECT_EQ(again.member_epoch, moved.member_epoch);
  ASSERT_TRUE(again.assignment) << "the lost assignment is sent again";
  EXPECT_EQ(count(*again.assignment), 8u);
  // Claiming a partition it does not hold at its previous epoch is fenced.
  TopicPartitionSet foreign = {{"u", {0}}};
  EXPECT_EQ(beat("A", a.member_epoch, foreign).error, gannet::v1::FENCED_MEMBER_EPOCH);
}

TEST_F(ConsumerGroupTest, CommitsNeedTheCurrentEpoch) {
  auto a = join("A", {"t"});
  EXPECT_EQ(g_.check_commit("A", a.member_epoch), gannet::v1::NONE);
  EXPECT_EQ(g_.check_commit("A", a.member_epoch - 1), gannet::v1::STALE_MEMBER_EPOCH);
  EXPECT_EQ(g_.check_commit("B", a.member_epoch), gannet::v1::UNKNOWN_MEMBER_ID);
}

TEST_F(ConsumerGroupTest, ADeadMembersPartitionsGoToTheOthersAfterItsSession) {
  auto a = join("A", {"t"});
  auto b = join("B", {"t"});
  auto a2 = beat("A", a.member_epoch, *a.assignment);
  beat("A", a.member_epoch, *a2.assignment);
  auto b2 = beat("B", b.member_epoch, TopicPartitionSet{});
  ASSERT_EQ(count(*b2.assignment), 3u);
  // B stops heartbeating; A keeps on.
  now_ += 6'000;
  auto a3 = beat("A", b.member_epoch, *a2.assignment);
  EXPECT_FALSE(a3.assignment);
  EXPECT_TRUE(g_.expire(now_, counts()).empty());
  now_ += 5'000;
  EXPECT_EQ(g_.next_deadline_ms(), now_ - 1'000);
  EXPECT_EQ(g_.expire(now_, counts()), std::vector<std::string>{"B"});
  auto a4 = beat("A", b.member_epoch, *a2.assignment);
  ASSERT_TRUE(a4.assignment);
  EXPECT_EQ(count(*a4.assignment), 6u);
  EXPECT_GT(a4.member_epoch, b.member_epoch);
}

TEST_F(ConsumerGroupTest, AMemberThatNeverGivesUpItsPartitionsIsRemovedAfterItsRebalanceTimeout) {
  auto a = join("A", {"t"});
  join("B", {"t"});
  auto a2 = beat("A", a.member_epoch, *a.assignment);
  ASSERT_EQ(g_.members().at("A").state, ConsumerGroup::MemberState::kUnrevoked);
  // A keeps heartbeating but keeps reporting all six.
  now_ += 4'000;
  beat("A", a.member_epoch, *a.assignment);
  EXPECT_TRUE(g_.expire(now_, counts()).empty());
  now_ += 1'001;
  EXPECT_EQ(g_.expire(now_, counts()), std::vector<std::string>{"A"});
  EXPECT_EQ(g_.owner("t", 0), "");
  (void)a2;
}

TEST_F(ConsumerGroupTest, ALeavingMemberReleasesItsPartitionsAtOnce) {
  auto a = join("A", {"t"});
  auto b = join("B", {"t"});
  auto a2 = beat("A", a.member_epoch, *a.assignment);
  beat("A", a.member_epoch, *a2.assignment);
  auto b2 = beat("B", b.member_epoch, TopicPartitionSet{});
  auto left = beat("B", -1, std::nullopt);
  EXPECT_EQ(left.member_epoch, -1);
  EXPECT_EQ(g_.members().count("B"), 0u);
  auto a3 = beat("A", b.member_epoch, *a2.assignment);
  EXPECT_EQ(count(*a3.assignment), 6u);
  (void)b2;
}

TEST_F(ConsumerGroupTest, RangeLinesUpCoPartitionedTopicsAndUniformBalances) {
  auto a = join("A", {"t", "u"}, "range");
  auto b = join("B", {"t", "u"}, "range");
  EXPECT_EQ(g_.assignor_name(), "range");
  auto a2 = beat("A", a.member_epoch, *a.assignment);
  beat("A", a.member_epoch, *a2.assignment);
  auto b2 = beat("B", b.member_epoch, TopicPartitionSet{});
  EXPECT_EQ((*a2.assignment)["t"], (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ((*a2.assignment)["u"], (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ((*b2.assignment)["t"], (std::set<int32_t>{3, 4, 5}));
  EXPECT_EQ((*b2.assignment)["u"], (std::set<int32_t>{3, 4, 5}));
  auto bad = join("C", {"t"}, "roundrobin");
  EXPECT_EQ(bad.error, gannet::v1::UNSUPPORTED_ASSIGNOR);
  auto no_topics = beat("D", 0, TopicPartitionSet{});
  EXPECT_EQ(no_topics.error, gannet::v1::INVALID_REQUEST);
}

TEST_F(ConsumerGroupTest, TheGroupHasABoundedSize) {
  for (int i = 0; i < 8; i++) ASSERT_EQ(join("m" + std::to_string(i), {"t"}).error, gannet::v1::NONE);
  EXPECT_EQ(join("m8", {"t"}).error, gannet::v1::GROUP_MAX_SIZE_REACHED);
  // A member already in may rejoin.
  EXPECT_EQ(join("m3", {"t"}).error, gannet::v1::NONE);
}

// Random members join, heartbeat (each applying what it is told before its next heartbeat),
// crash, leave and change subscriptions while topics grow. At every step no partition is held
// by two clients; once the churn stops, every partition is owned exactly once and the group is
// Stable. Replay with GANNET_SEED=<seed>.
TEST_F(ConsumerGroupTest, RandomChurnNeverGivesAPartitionToTwoClients) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("GANNET_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::cout << "seed " << seed << " (replay: GANNET_SEED=" << seed << ")" << std::endl;
  std::mt19937_64 rng(seed);
  struct Client {
    int32_t epoch = 0;
    TopicPartitionSet owned;  // what the client consumes now
    // Told to give these up; it stops consuming them only just before its next heartbeat (a
    // slow client), so a coordinator that hands them on too early is caught meanwhile.
    TopicPartitionSet releasing;
    std::vector<std::string> topics;
    bool alive = false;
  };
  std::map<std::string, Client> clients;
  const std::vector<std::vector<std::string>> subscriptions = {{"t"}, {"u"}, {"t", "u"}};
  auto apply = [](Client& c, const TopicPartitionSet& x) {
    c.releasing.clear();
    for (const auto& [t, ps] : c.owned) {
      for (int32_t p : ps) {
        auto it = x.find(t);
        if (it == x.end() || !it->second.count(p)) c.releasing[t].insert(p);
      }
    }
    for (const auto& [t, ps] : x) c.owned[t].insert(ps.begin(), ps.end());
  };
  auto release = [](Client& c) {
    for (const auto& [t, ps] : c.releasing) {
      for (int32_t p : ps) c.owned[t].erase(p);
    }
    c.releasing.clear();
  };
  auto step = [&](const std::string& id, Client& c) {
    release(c);
    auto a = beat(id, c.epoch, c.owned, c.epoch == 0 ? std::optional(c.topics) : std::nullopt);
    if (a.error == gannet::v1::UNKNOWN_MEMBER_ID || a.error == gannet::v1::FENCED_MEMBER_EPOCH) {
      c.owned.clear();  // it lost everything: rejoin
      c.releasing.clear();
      c.epoch = 0;
      return;
    }
    if (a.error == gannet::v1::GROUP_MAX_SIZE_REACHED) {  // crashed members still count until expired
      c.alive = false;
      return;
    }
    ASSERT_EQ(a.error, gannet::v1::NONE) << a.message;
    c.epoch = a.member_epoch;
    if (a.assignment) apply(c, *a.assignment);
  };
  auto check_clients = [&]() {
    std::map<std::pair<std::string, int32_t>, std::string> seen;
    for (const auto& [id, c] : clients) {
      if (!c.alive) continue;
      for (const auto& [t, ps] : c.owned) {
        for (int32_t p : ps) {
          auto [it, fresh] = seen.emplace(std::make_pair(t, p), id);
          ASSERT_TRUE(fresh) << "seed " << seed << ": " << t << "-" << p << " consumed by " << it->second << " and "
                             << id;
        }
      }
    }
  };
  for (int i = 0; i < 3000; i++) {
    std::string id = "c" + std::to_string(rng() % 10);
    Client& c = clients[id];
    int action = static_cast<int>(rng() % 100);
    now_ += static_cast<int64_t>(rng() % 400);
    if (!c.alive) {
      if (action < 50) {
        c = Client{};
        c.topics = subscriptions[rng() % subscriptions.size()];
        c.alive = true;
        step(id, c);
      }
    } else if (action < 2) {
      c.alive = false;  // crash: it stops consuming at once and never heartbeats again
      c.owned.clear();
    } else if (action < 4) {
      beat(id, -1, std::nullopt);
      c.alive = false;
      c.owned.clear();
    } else if (action < 6) {
      c.topics = subscriptions[rng() % subscriptions.size()];
      release(c);
      auto a = beat(id, c.epoch, c.owned, c.topics);
      if (a.error == gannet::v1::NONE) {
        c.epoch = a.member_epoch;
        if (a.assignment) apply(c, *a.assignment);
      } else {
        c.owned.clear();
        c.releasing.clear();
        c.epoch = 0;
      }
    } else if (action < 7) {
      topics_[rng() % 2 ? "t" : "u"] += 1;
    } else {
      step(id, c);
    }
    if (HasFatalFailure()) return;
    g_.expire(now_, counts());
    // A client whose session has passed has been removed: it finds out at its next heartbeat,
    // and meanwhile it must have stopped by itself (Kafka's clients stop when a session could
    // have passed without an answer); model that by dropping what it owns.
    for (auto& [cid, cl] : clients) {
      if (cl.alive && !g_.members().count(cid) && cl.epoch != 0) {
        cl.owned.clear();
        cl.releasing.clear();
        cl.epoch = 0;
      }
    }
    check_clients();
    expect_exclusive();
    if (HasFailure()) return;
  }
  // Quiet: the crashed members' sessions pass (and so do the live ones', who rejoin), then the
  // live clients heartbeat in turn until nothing changes.
  now_ += 20'000;
  g_.expire(now_, counts());
  for (auto& [id, c] : clients) {
    c.owned.clear();
    c.releasing.clear();
    c.epoch = 0;
  }
  for (int round = 0; round < 20; round++) {
    for (auto& [id, c] : clients) {
      if (c.alive) step(id, c);
    }
    check_clients();
  }
  if (g_.empty()) return;
  EXPECT_EQ(g_.state_name(), "Stable") << "seed " << seed;
  std::set<std::string> subscribed;
  for (const auto& [id, m] : g_.members()) subscribed.insert(m.topics.begin(), m.topics.end());
  for (const auto& t : subscribed) {
    for (int32_t p = 0; p < topics_[t]; p++) {
      EXPECT_NE(g_.owner(t, p), "") << "seed " << seed << ": " << t << "-" << p << " has no owner";
    }
  }
}

}  // namespace
}  // namespace gannet::broker
