#include "raft/wire.h"

namespace gannet::raft {
namespace {

void fill(v1::Entry* p, const Entry& e) {
  p->set_offset(e.offset);
  p->set_epoch(e.epoch);
  p->set_control(e.control);
  p->set_data(e.data);
}

void fill(v1::SnapshotId* p, const SnapshotId& id) {
  p->set_end_offset(id.end_offset);
  p->set_epoch(id.epoch);
}

SnapshotId from(const v1::SnapshotId& p) { return SnapshotId{p.end_offset(), p.epoch()}; }

}  // namespace

v1::VoteRequest to_proto(const VoteRequest& m) {
  v1::VoteRequest p;
  p.set_epoch(m.epoch);
  p.set_candidate(m.candidate);
  p.set_last_epoch(m.last_epoch);
  p.set_end_offset(m.end_offset);
  p.set_pre_vote(m.pre_vote);
  return p;
}

v1::VoteResponse to_proto(const VoteResponse& m) {
  v1::VoteResponse p;
  p.set_epoch(m.epoch);
  p.set_granted(m.granted);
  p.set_pre_vote(m.pre_vote);
  p.set_leader(m.leader);
  return p;
}

v1::BeginQuorumEpochRequest to_proto(const BeginQuorumEpoch& m) {
  v1::BeginQuorumEpochRequest p;
  p.set_epoch(m.epoch);
  p.set_leader(m.leader);
  return p;
}

v1::EndQuorumEpochRequest to_proto(const EndQuorumEpoch& m) {
  v1::EndQuorumEpochRequest p;
  p.set_epoch(m.epoch);
  p.set_leader(m.leader);
  for (NodeId n : m.preferred_successors) p.add_preferred_successors(n);
  return p;
}

v1::FetchRequest to_proto(const FetchRequest& m) {
  v1::FetchRequest p;
  p.set_epoch(m.epoch);
  p.set_replica(m.replica);
  p.set_fetch_offset(m.fetch_offset);
  p.set_last_fetched_epoch(m.last_fetched_epoch);
  p.set_high_watermark(m.high_watermark);
  p.set_replica_directory_id(m.directory_id);
  return p;
}

v1::FetchResponse to_proto(const FetchResponse& m) {
  v1::FetchResponse p;
  p.set_epoch(m.epoch);
  p.set_leader(m.leader);
  p.set_not_leader(m.not_leader);
  p.set_fenced(m.fenced);
  p.set_fetch_offset(m.fetch_offset);
  p.set_high_watermark(m.high_watermark);
  p.set_log_start_offset(m.log_start_offset);
  p.set_duplicate_replica(m.duplicate_replica);
  if (m.diverging) {
    p.mutable_diverging()->set_epoch(m.diverging->epoch);
    p.mutable_diverging()->set_end_offset(m.diverging->end_offset);
  }
  if (m.snapshot) fill(p.mutable_snapshot(), *m.snapshot);
  for (const Entry& e : m.entries) fill(p.add_entries(), e);
  return p;
}

v1::FetchSnapshotRequest to_proto(const FetchSnapshotRequest& m) {
  v1::FetchSnapshotRequest p;
  p.set_epoch(m.epoch);
  p.set_replica(m.replica);
  fill(p.mutable_id(), m.id);
  p.set_position(m.position);
  return p;
}

v1::FetchSnapshotResponse to_proto(const FetchSnapshotResponse& m) {
  v1::FetchSnapshotResponse p;
  p.set_epoch(m.epoch);
  p.set_leader(m.leader);
  p.set_not_leader(m.not_leader);
  p.set_unknown_snapshot(m.unknown_snapshot);
  fill(p.mutable_id(), m.id);
  p.set_position(m.position);
  p.set_size(m.size);
  p.set_chunk(m.chunk);
  return p;
}

VoteRequest from_proto(const v1::VoteRequest& p) {
  return VoteRequest{p.epoch(), p.candidate(), p.last_epoch(), p.end_offset(), p.pre_vote()};
}

VoteResponse from_proto(const v1::VoteResponse& p) {
  return VoteResponse{p.epoch(), p.granted(), p.pre_vote(), p.leader()};
}

BeginQuorumEpoch from_proto(const v1::BeginQuorumEpochRequest& p) {
  return BeginQuorumEpoch{p.epoch(), p.leader()};
}

EndQuorumEpoch from_proto(const v1::EndQuorumEpochRequest& p) {
  EndQuorumEpoch m{p.epoch(), p.leader(), {}};
  for (int32_t n : p.preferred_successors()) m.preferred_successors.push_back(n);
  return m;
}

FetchRequest from_proto(const v1::FetchRequest& p) {
  return FetchRequest{p.epoch(), p.replica(), p.fetch_offset(), p.last_fetched_epoch(),
                      p.high_watermark(), p.replica_directory_id()};
}

FetchResponse from_proto(const v1::FetchResponse& p) {
  FetchResponse m;
  m.epoch = p.epoch();
  m.leader = p.leader();
  m.not_leader = p.not_leader();
  m.fenced = p.fenced();
  m.duplicate_replica = p.duplicate_replica();
  m.fetch_offset = p.fetch_offset();
  m.high_watermark = p.high_watermark();
  m.log_start_offset = p.log_start_offset();
  if (p.has_diverging()) m.diverging = DivergingEpoch{p.diverging().epoch(), p.diverging().end_offset()};
  if (p.has_snapshot()) m.snapshot = from(p.snapshot());
  for (const auto& e : p.entries()) m.entries.push_back(Entry{e.offset(), e.epoch(), e.control(), e.data()});
  return m;
}

FetchSnapshotRequest from_proto(const v1::FetchSnapshotRequest& p) {
  return FetchSnapshotRequest{p.epoch(), p.replica(), from(p.id()), p.position()};
}

FetchSnapshotResponse from_proto(const v1::FetchSnapshotResponse& p) {
  FetchSnapshotResponse m;
  m.epoch = p.epoch();
  m.leader = p.leader();
  m.not_leader = p.not_leader();
  m.unknown_snapshot = p.unknown_snapshot();
  m.id = from(p.id());
  m.position = p.position();
  m.size = p.size();
  m.chunk = p.chunk();
  return m;
}

}  // namespace gannet::raft
