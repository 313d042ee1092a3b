// Subscription: the broker's side of a Subscribe stream (broker.proto): one member of a
// broker-assigned consumer group (KIP-848) run for a client, so that a consumer is "open a stream,
// iterate, commit". Transport-agnostic: the calls it makes (the coordinator's heartbeat, offset
// fetch and commit; a partition's decoded fetch) are given to it, local or forwarded to another
// broker by the caller. One thread drives it (the stream's); it holds no lock of its own.
//
// Each step(): heartbeat when due (and at once after the partitions changed, so a partition given
// up is released without waiting for the interval); apply what the answer assigns (partitions left
// out are dropped without a commit; new ones start at the group's committed offset, else
// auto_offset_reset); then read each owned partition once. Commits from the client go out with the
// current member epoch (a stale epoch: heartbeat, then again). Fenced or unknown: everything is
// dropped and the member rejoins at epoch 0. Delivery is at least once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proto/broker.pb.h"

namespace gannet::broker {

class Subscription {
 public:
  // Each returns false when the call could not be made (no answer); the answer is in the second
  // argument otherwise.
  struct Calls {
    std::function<bool(const v1::ConsumerGroupHeartbeatRequest&, v1::ConsumerGroupHeartbeatResponse*)> heartbeat;
    std::function<bool(const v1::OffsetFetchRequest&, v1::OffsetFetchResponse*)> offset_fetch;
    std::function<bool(const v1::OffsetCommitRequest&, v1::OffsetCommitResponse*)> offset_commit;
    std::function<bool(const v1::FetchRecordsRequest&, v1::FetchRecordsResponse*)> fetch;
    std::function<int64_t()> now_ms;  // a monotonic clock
  };

  Subscription(v1::SubscribeRequest::Start start, Calls calls);

  // One round; messages to send are appended to *out. False once the stream must end (the last
  // message in *out is then an Error).
  bool step(std::vector<v1::SubscribeResponse>* out);
  // A client's commit; its CommitResult is appended to *out.
  void commit(const v1::SubscribeRequest::Commit& c, std::vector<v1::SubscribeResponse>* out);
  // Leaves the group (epoch -1): its partitions go to the others at once.
  void leave();

  const std::string& member_id() const { return member_id_; }
  int32_t member_epoch() const { return epoch_; }

 private:
  using TP = std::pair<std::string, int32_t>;
  // Heartbeats; false with a fatal error in *error.
  bool heartbeat(std::vector<v1::SubscribeResponse>* out, v1::SubscribeResponse* error);
  void set_owned(const std::set<TP>& next, std::vector<v1::SubscribeResponse>* out);

  const v1::SubscribeRequest::Start start_;
  const Calls calls_;
  std::string member_id_;
  int32_t epoch_ = 0;
  int64_t interval_ms_ = 1'000;
  int64_t next_beat_ms_ = 0;
  std::map<TP, int64_t> positions_;  // owned partitions -> next offset (-1: to be resolved)
};

}  // namespace gannet::broker
