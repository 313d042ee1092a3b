// Conversions between the core's messages (messages.h) and their Protobuf form (proto/raft.proto).
#pragma once

#include "proto/raft.pb.h"
#include "raft/messages.h"

namespace gannet::raft {

v1::VoteRequest to_proto(const VoteRequest& m);
v1::VoteResponse to_proto(const VoteResponse& m);
v1::BeginQuorumEpochRequest to_proto(const BeginQuorumEpoch& m);
v1::EndQuorumEpochRequest to_proto(const EndQuorumEpoch& m);
v1::FetchRequest to_proto(const FetchRequest& m);
v1::FetchResponse to_proto(const FetchResponse& m);
v1::FetchSnapshotRequest to_proto(const FetchSnapshotRequest& m);
v1::FetchSnapshotResponse to_proto(const FetchSnapshotResponse& m);

VoteRequest from_proto(const v1::VoteRequest& p);
VoteResponse from_proto(const v1::VoteResponse& p);
BeginQuorumEpoch from_proto(const v1::BeginQuorumEpochRequest& p);
EndQuorumEpoch from_proto(const v1::EndQuorumEpochRequest& p);
FetchRequest from_proto(const v1::FetchRequest& p);
FetchResponse from_proto(const v1::FetchResponse& p);
FetchSnapshotRequest from_proto(const v1::FetchSnapshotRequest& p);
FetchSnapshotResponse from_proto(const v1::FetchSnapshotResponse& p);

}  // namespace gannet::raft
