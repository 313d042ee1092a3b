// The leader's HW and ISR rules with no I/O: metadata and fetches in, HW and ISR proposals out.
#include "broker/partition_state.h"

#include <gtest/gtest.h>

namespace gannet::broker {
namespace {

PartitionMetadata meta(int32_t leader, int32_t epoch, std::vector<int32_t> isr, int32_t pepoch = 0) {
  return PartitionMetadata{{1, 2, 3}, std::move(isr), leader, epoch, pepoch};
}

TEST(PartitionState, HighWatermarkIsTheLowestLogEndOverTheIsrAndNeverMovesBack) {
  PartitionState s(1);
  EXPECT_TRUE(s.apply_metadata(meta(1, 5, {1, 2, 3}), /*log_end=*/10, /*hw=*/4, 0));
  EXPECT_EQ(s.high_watermark(), 4);
  EXPECT_EQ(s.epoch_start_offset(), 10);
  // Until every ISR member has fetched in this term, the HW stays.
  EXPECT_FALSE(s.on_follower_fetch(2, 10, 1));
  EXPECT_EQ(s.high_watermark(), 4);
  EXPECT_TRUE(s.on_follower_fetch(3, 7, 1));
  EXPECT_EQ(s.high_watermark(), 7);
  EXPECT_FALSE(s.on_local_append(20));
  EXPECT_TRUE(s.on_follower_fetch(3, 15, 2));
  EXPECT_EQ(s.high_watermark(), 10) << "follower 2 holds only 10";
  // A follower fetching lower again (it truncated) does not move the HW back.
  EXPECT_FALSE(s.on_follower_fetch(2, 8, 3));
  EXPECT_EQ(s.high_watermark(), 10);
  // A replica outside the ISR does not hold the HW back.
  s.apply_metadata(meta(1, 5, {1, 3}, 1), 20, 10, 4);
  EXPECT_TRUE(s.on_follower_fetch(3, 20, 5));
  EXPECT_EQ(s.high_watermark(), 20);
}

TEST(PartitionState, LaggingFollowersLeaveTheIsrAndCaughtUpOnesReturn) {
  const int64_t lag = 1000;
  PartitionState s(1);
  s.apply_metadata(meta(1, 1, {1, 2, 3}), 0, 0, 0);
  s.on_local_append(100);
  s.on_follower_fetch(2, 100, 10);
  s.on_follower_fetch(3, 50, 10);
  EXPECT_EQ(s.wanted_isr(500, lag), std::nullopt) << "nobody lags yet";
  // Follower 3 keeps fetching but never reaches the log end; 2 stays caught up.
  for (int64_t t = 200; t <= 1500; t += 100) {
    s.on_local_append(100 + t);
    s.on_follower_fetch(2, 100 + t, t);
    s.on_follower_fetch(3, 50, t);
  }
  auto shrink = s.wanted_isr(1500, lag);
  ASSERT_TRUE(shrink);
  EXPECT_EQ(*shrink, (std::vector<int32_t>{1, 2}));
  // In flight: no second proposal; the HW still counts follower 3.
  s.set_pending_isr(*shrink);
  EXPECT_EQ(s.wanted_isr(1600, lag), std::nullopt);
  EXPECT_EQ(s.high_watermark(), 50);
  // The controller committed it (a new partition epoch): the HW moves past 3.
  s.apply_metadata(meta(1, 1, {1, 2}, 1), 1600, 50, 1600);
  s.on_follower_fetch(2, 1600, 1600);
  EXPECT_EQ(s.high_watermark(), 1600);
  EXPECT_FALSE(s.isr_change_pending());
  // Follower 3 catches up to the HW: it comes back.
  s.on_follower_fetch(3, 1600, 1700);
  auto expand = s.wanted_isr(1700, lag);
  ASSERT_TRUE(expand);
  EXPECT_EQ(*expand, (std::vector<int32_t>{1, 2, 3}));
}

TEST(PartitionState, AFollowerRejoinsOnlyPastTheLeadersEpochStart) {
  PartitionState s(1);
  s.apply_metadata(meta(1, 2, {1, 2}), /*log_end=*/100, /*hw=*/80, 0);
  s.on_follower_fetch(2, 100, 1);
  EXPECT_EQ(s.high_watermark(), 100);
  // Replica 3 holds everything below the HW but not the whole of the previous term.
  s.on_follower_fetch(3, 100, 2);
  EXPECT_TRUE(s.wanted_isr(3, 1000).has_value());
  PartitionState t(1);
  t.apply_metadata(meta(1, 2, {1, 2}), 100, 100, 0);
  t.on_follower_fetch(3, 99, 2);
  EXPECT_EQ(t.wanted_isr(3, 1000), std::nullopt) << "3 is below the epoch start";
}

TEST(PartitionState, AFollowerForgetsTheLeadersView) {
  PartitionState s(2);
  EXPECT_FALSE(s.apply_metadata(meta(1, 1, {1, 2, 3}), 10, 5, 0));
  EXPECT_FALSE(s.is_leader());
  EXPECT_FALSE(s.on_follower_fetch(3, 10, 1)) << "only a leader tracks followers";
  EXPECT_EQ(s.wanted_isr(10'000, 1), std::nullopt);
  // Leadership moves here in a new epoch.
  EXPECT_TRUE(s.apply_metadata(meta(2, 2, {2, 3}), 12, 8, 2));
  EXPECT_TRUE(s.is_leader());
  EXPECT_EQ(s.high_watermark(), 8);
}

// Issue 14.3: a leader alone in its ISR holds every committed record itself, so its HW is its log
// end from the moment it leads. A restarted RF=1 leader kept HW 0 until its next append: consumers
// read nothing of the 100 records it held and ListOffsets(latest) said 0.
TEST(PartitionState, ALeaderAloneInItsIsrAdvancesTheHighWatermarkAtOnce) {
  PartitionState s(1);
  s.apply_metadata(PartitionMetadata{{1}, {1}, 1, 3, 3}, /*log_end=*/100, /*hw=*/0, 0);
  EXPECT_EQ(s.high_watermark(), 100);
  // With followers in the ISR it waits for them.
  PartitionState t(1);
  t.apply_metadata(meta(1, 3, {1, 2}), 100, 40, 0);
  EXPECT_EQ(t.high_watermark(), 40);
  EXPECT_TRUE(t.on_follower_fetch(2, 100, 1));
  EXPECT_EQ(t.high_watermark(), 100);
}

}  // namespace
}  // namespace gannet::broker
