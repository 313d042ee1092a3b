// The harness of the group coordinator's unit tests: real Partitions (one replica, leading) over
// real storage::Logs on a SimFileSystem, a coordinator over them, and one call per RPC. A second
// coordinator over the same logs plays a failover.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/group_coordinator.h"
#include "storage/log.h"
#include "storage/sim_file_system.h"

namespace gannet::broker::testing {

namespace ev1 = gannet::v1;
using namespace std::chrono_literals;

inline constexpr int32_t kMe = 1;
inline constexpr int32_t kPartitions = 3;

class GroupCoordinatorHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int32_t p = 0; p < kPartitions; ++p) {
      storage::Log::Options o;
      o.fs = &fs_;
      o.clock = SystemClock::instance();
      auto r = storage::Log::open("/data/__consumer_offsets-" + std::to_string(p), o);
      ASSERT_TRUE(r.ok());
      logs_.push_back(std::shared_ptr<storage::Log>(std::move(r).value()));
    }
    options_.node_id = kMe;
    options_.offsets_partitions = kPartitions;
    options_.min_session_timeout_ms = 100;
    options_.initial_rebalance_delay_ms = 0;
  }
  void TearDown() override { coord_.reset(); }

  // A (new) coordinator over the same logs, leading every partition in `epoch`, with options_
  // and (if set) clock_.
  void start_coordinator(int32_t epoch) {
    coord_.reset();
    parts_.clear();
    for (int32_t p = 0; p < kPartitions; ++p) {
      auto part = std::make_shared<Partition>(storage::TopicPartition{kOffsetsTopic, p}, "id", logs_[p], kMe);
      part->apply_metadata(PartitionMetadata{{kMe}, {kMe}, kMe, epoch, epoch}, 1, 0);
      parts_.push_back(part);
    }
    coord_ = std::make_unique<GroupCoordinator>(options_, [this](int32_t p) { return parts_.at(p); }, clock_);
    for (int32_t p = 0; p < kPartitions; ++p) coord_->on_leadership(p, epoch, kPartitions);
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (int32_t p = 0; p < kPartitions; ++p) {
        v1::OffsetFetchRequest req;
        req.set_group_id(group_on(p));
        v1::OffsetFetchResponse resp;
        coord_->offset_fetch(req, &resp);
        all = all && resp.error_code() != ev1::COORDINATOR_LOAD_IN_PROGRESS;
      }
      if (all) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "the offsets partitions did not load";
  }

  // A group id whose offsets partition is p (the n-th such id).
  static std::string group_on(int32_t p, int n = 0) {
    for (int i = 0;; ++i) {
      std::string g = "grp-" + std::to_string(i);
      if (GroupCoordinator::partition_for(g, kPartitions) == p && n-- == 0) return g;
    }
  }

  // JoinGroup as Kafka's client does: a first join for a member id, then the real one.
  v1::JoinGroupResponse join(const std::string& group, std::string member_id = "", int32_t session_ms = 600,
                             int32_t rebalance_ms = 2'000) {
    v1::JoinGroupRequest req;
    req.set_group_id(group);
    req.set_session_timeout_ms(session_ms);
    req.set_rebalance_timeout_ms(rebalance_ms);
    req.set_protocol_type("consumer");
    req.set_client_id("c");
    auto* pr = req.add_protocols();
    pr->set_name("range");
    pr->set_metadata("sub");
    v1::JoinGroupResponse resp;
    if (member_id.empty()) {
      coord_->join_group(req, "127.0.0.1", &resp);
      EXPECT_EQ(resp.error_code(), ev1::MEMBER_ID_REQUIRED);
      member_id = resp.member_id();
      resp.Clear();
    }
    req.set_member_id(member_id);
    coord_->join_group(req, "127.0.0.1", &resp);
    return resp;
  }

  v1::SyncGroupResponse sync(const std::string& group, const v1::JoinGroupResponse& j,
                             std::map<std::string, std::string> assignments = {}) {
    v1::SyncGroupRequest req;
    req.set_group_id(group);
    req.set_generation_id(j.generation_id());
    req.set_member_id(j.member_id());
    for (const auto& [m, a] : assignments) {
      auto* x = req.add_assignments();
      x->set_member_id(m);
      x->set_assignment(a);
    }
    v1::SyncGroupResponse resp;
    coord_->sync_group(req, &resp);
    return resp;
  }

  ev1::ErrorCode heartbeat(const std::string& group, const v1::JoinGroupResponse& j, int32_t wait_ms = 0) {
    v1::HeartbeatRequest req;
    req.set_group_id(group);
    req.set_generation_id(j.generation_id());
    req.set_member_id(j.member_id());
    req.set_max_wait_ms(wait_ms);
    v1::HeartbeatResponse resp;
    coord_->heartbeat(req, &resp);
    return resp.error_code();
  }

  // Waits (bounded) until `group`'s offsets partition has loaded.
  void wait_loaded(const std::string& group) {
    for (int i = 0; i < 500; ++i) {
      v1::OffsetFetchRequest req;
      req.set_group_id(group);
      v1::OffsetFetchResponse resp;
      coord_->offset_fetch(req, &resp);
      if (resp.error_code() != ev1::COORDINATOR_LOAD_IN_PROGRESS) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "the offsets partitions did not load";
  }

  ev1::ErrorCode leave(const std::string& group, const std::string& member) {
    v1::LeaveGroupRequest req;
    req.set_group_id(group);
    req.add_member_ids(member);
    v1::LeaveGroupResponse resp;
    coord_->leave_group(req, &resp);
    return resp.error_code() != ev1::NONE ? resp.error_code() : resp.members(0).error_code();
  }

  ev1::ErrorCode commit(const std::string& group, const std::string& topic, int32_t partition, int64_t offset,
                        int32_t generation = -1, const std::string& member = "") {
    v1::OffsetCommitRequest req;
    req.set_group_id(group);
    req.set_generation_id(generation);
    req.set_member_id(member);
    auto* t = req.add_topics();
    t->set_name(topic);
    auto* p = t->add_partitions();
    p->set_partition(partition);
    p->set_committed_offset(offset);
    v1::OffsetCommitResponse resp;
    coord_->offset_commit(req, &resp);
    return resp.topics(0).partitions(0).error_code();
  }

  int64_t fetch(const std::string& group, const std::string& topic, int32_t partition) {
    v1::OffsetFetchRequest req;
    req.set_group_id(group);
    auto* t = req.add_topics();
    t->set_name(topic);
    t->add_partitions(partition);
    v1::OffsetFetchResponse resp;
    coord_->offset_fetch(req, &resp);
    EXPECT_EQ(resp.error_code(), ev1::NONE);
    return resp.topics(0).partitions(0).committed_offset();
  }

  v1::DescribedGroup describe(const std::string& group) {
    v1::DescribeGroupsRequest req;
    req.add_group_ids(group);
    v1::DescribeGroupsResponse resp;
    coord_->describe_groups(req, &resp);
    return resp.groups(0);
  }

  GroupCoordinatorOptions options_;
  Clock* clock_ = nullptr;
  storage::SimFileSystem fs_;
  std::vector<std::shared_ptr<storage::Log>> logs_;
  std::vector<std::shared_ptr<Partition>> parts_;
  std::unique_ptr<GroupCoordinator> coord_;
};

}  // namespace gannet::broker::testing
