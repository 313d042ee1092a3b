// gRPC transport settings for channels and servers that carry record batches.
//
// gRPC's HTTP/2 defaults suit small messages: a 64 KiB stream window that BDP probing grows
// only after several round trips, and 16 KiB frames. A produce or fetch of a megabyte then waits
// on window updates and is cut into 64 frames. Batches are what Gannet moves, so its data
// channels open with windows and frames sized for them (docs/design-notes.md §14).
#pragma once

#include <grpcpp/grpcpp.h>

namespace gannet {

// Bytes a receiver lets a stream send before it reads them (HTTP/2 initial window).
inline constexpr int kGrpcStreamWindowBytes = 8 << 20;
// Largest HTTP/2 DATA frame a peer may send us.
inline constexpr int kGrpcMaxFrameBytes = 1 << 20;

inline void apply_data_transport(grpc::ChannelArguments& args) {
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kGrpcStreamWindowBytes);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kGrpcMaxFrameBytes);
}

inline void apply_data_transport(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kGrpcStreamWindowBytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kGrpcMaxFrameBytes);
}

}  // namespace gannet
