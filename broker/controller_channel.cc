#include "broker/controller_channel.h"

namespace gannet::broker {

ControllerChannel::ControllerChannel(const std::map<int32_t, std::string>& voters,
                                     std::function<int32_t()> leader_hint,
                                     std::shared_ptr<grpc::ChannelCredentials> credentials)
    : leader_hint_(std::move(leader_hint)) {
  for (const auto& [id, address] : voters) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // A restarted controller is reached again within a second (gRPC's default backoff grows to
    // 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stubs_[id] = gannet::controller::v1::Controller::NewStub(
        grpc::CreateCustomChannel(address, credentials, args));
    ids_.push_back(id);
  }
}

int32_t ControllerChannel::pick(int attempt) {
  std::lock_guard<std::mutex> l(mu_);
  if (attempt == 0) {
    if (known_ >= 0) return known_;
    const int32_t hint = leader_hint_ ? leader_hint_() : -1;
    if (stubs_.count(hint)) return hint;
  }
  return ids_[rotate_++ % ids_.size()];
}

void ControllerChannel::remember(int32_t id) {
  std::lock_guard<std::mutex> l(mu_);
  known_ = id;
}

void ControllerChannel::forget(int32_t id) {
  std::lock_guard<std::mutex> l(mu_);
  if (known_ == id) known_ = -1;
}

bool ControllerChannel::track(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_.load()) return false;
  active_.insert(ctx);
  return true;
}

void ControllerChannel::untrack(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> l(mu_);
  active_.erase(ctx);
}

void ControllerChannel::cancel_all() {
  std::lock_guard<std::mutex> l(mu_);
  stopping_ = true;
  for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
}

}  // namespace gannet::broker
