// ControllerChannel: how a broker reaches the active controller. It keeps one gRPC channel per
// voter (controller.quorum.voters), starts with the controller the metadata log names (or the
// last one that answered), follows NOT_CONTROLLER hints, and moves on to the next voter when
// one does not answer, until the call's deadline.
#pragma once

#include <chrono>
#include <atomic>
#include <functional>
#include <set>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "proto/controller.grpc.pb.h"

namespace gannet::broker {

class ControllerChannel {
 public:
  using Stub = gannet::controller::v1::Controller::Stub;

  // voters: id -> host:port; leader_hint: the quorum leader this node knows of (-1: none).
  ControllerChannel(const std::map<int32_t, std::string>& voters, std::function<int32_t()> leader_hint,
                    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials());

  // Calls `rpc` on the active controller until it answers something other than NOT_CONTROLLER
  // (or a transport error), or until timeout_ms. Returns the last gRPC status; `resp` holds the
  // last answer.
  template <typename Resp>
  grpc::Status call(const std::function<grpc::Status(Stub*, grpc::ClientContext*, Resp*)>& rpc,
                    Resp* resp, int64_t timeout_ms) {
    const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms);
    grpc::Status st(grpc::StatusCode::DEADLINE_EXCEEDED, "no controller answered");
    int attempt = 0;
    while (std::chrono::system_clock::now() < deadline && !stopping_.load()) {
      const int32_t target = pick(attempt++);
      grpc::ClientContext ctx;
      // One try gets a bounded slice of the time, so a dead voter does not eat all of it.
      ctx.set_deadline(std::min(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(
                                                                              std::max<int64_t>(2000, timeout_ms / 2))));
      if (!track(&ctx)) break;
      resp->Clear();
      st = rpc(stubs_.at(target).get(), &ctx, resp);
      untrack(&ctx);
      if (st.ok() && resp->error_code() != gannet::v1::NOT_CONTROLLER) {
        remember(target);
        return st;
      }
      if (st.ok() && resp->controller().controller_id() >= 0 && stubs_.count(resp->controller().controller_id())) {
        remember(resp->controller().controller_id());
        attempt = 0;
      } else {
        forget(target);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt > static_cast<int>(stubs_.size()) ? 100 : 10));
    }
    if (stopping_.load()) st = grpc::Status(grpc::StatusCode::CANCELLED, "the broker is stopping");
    return st;
  }

  // Cancels calls in flight and refuses new ones (the broker is stopping).
  void cancel_all();

 private:
  bool track(grpc::ClientContext* ctx);
  void untrack(grpc::ClientContext* ctx);
  int32_t pick(int attempt);
  void remember(int32_t id);
  void forget(int32_t id);

  std::map<int32_t, std::unique_ptr<Stub>> stubs_;
  std::vector<int32_t> ids_;
  std::function<int32_t()> leader_hint_;
  std::mutex mu_;
  int32_t known_ = -1;
  std::atomic<bool> stopping_{false};
  std::set<grpc::ClientContext*> active_;
  size_t rotate_ = 0;
};

}  // namespace gannet::broker
