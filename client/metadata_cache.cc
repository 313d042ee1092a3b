#include "client/metadata_cache.h"

namespace gannet::client {

MetadataCache::MetadataCache(std::vector<std::string> bootstrap) : bootstrap_(std::move(bootstrap)) {}

bv1::Broker::Stub* MetadataCache::stub_for(const std::string& address) {
  auto& s = stubs_[address];
  if (!s) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    s = bv1::Broker::NewStub(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return s.get();
}

bool MetadataCache::refresh(const std::vector<std::string>& topics) {
  std::vector<std::string> addresses;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, a] : brokers_) addresses.push_back(a);
  }
  addresses.insert(addresses.end(), bootstrap_.begin(), bootstrap_.end());
  for (const std::string& address : addresses) {
    bv1::MetadataRequest req;
    for (const auto& t : topics) req.add_topics(t);
    bv1::MetadataResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    bv1::Broker::Stub* stub;
    {
      std::lock_guard<std::mutex> l(mu_);
      stub = stub_for(address);
    }
    if (!stub->Metadata(&ctx, req, &resp).ok()) continue;
    std::lock_guard<std::mutex> l(mu_);
    ++refreshes_;
    for (const auto& b : resp.brokers()) {
      if (!b.host().empty()) brokers_[b.broker_id()] = b.host() + ":" + std::to_string(b.port());
    }
    if (topics.empty()) {
      // A full answer lists every topic (for pattern subscriptions). Topics missing from it stay
      // cached: a broker that just restarted may answer from an image that is not current yet,
      // and forgetting a topic on its word would fail sends to it.
      all_topics_.clear();
      for (const auto& t : resp.topics()) all_topics_.push_back(t.name());
    }
    for (const auto& t : resp.topics()) {
      if (t.error_code() != gannet::v1::NONE) {
        topics_.erase(t.name());
        continue;
      }
      std::vector<PartitionInfo> parts(static_cast<size_t>(t.partitions_size()));
      for (const auto& p : t.partitions()) {
        if (p.partition() >= 0 && p.partition() < t.partitions_size()) {
          parts[static_cast<size_t>(p.partition())] = PartitionInfo{p.leader(), p.leader_epoch()};
        }
      }
      topics_[t.name()] = std::move(parts);
    }
    return true;
  }
  return false;
}

std::vector<PartitionInfo> MetadataCache::partitions(const std::string& topic) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = topics_.find(topic); it != topics_.end()) return it->second;
  }
  refresh({topic});
  std::lock_guard<std::mutex> l(mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? std::vector<PartitionInfo>{} : it->second;
}

int32_t MetadataCache::partition_count(const std::string& topic) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = topics_.find(topic); it != topics_.end()) return static_cast<int32_t>(it->second.size());
  }
  return static_cast<int32_t>(partitions(topic).size());
}

int32_t MetadataCache::leader(const std::string& topic, int32_t partition) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = topics_.find(topic); it != topics_.end()) {
      return partition >= 0 && partition < static_cast<int32_t>(it->second.size())
                 ? it->second[static_cast<size_t>(partition)].leader
                 : -1;
    }
  }
  auto parts = partitions(topic);
  return partition >= 0 && partition < static_cast<int32_t>(parts.size()) ? parts[static_cast<size_t>(partition)].leader : -1;
}

bv1::Broker::Stub* MetadataCache::broker(int32_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = brokers_.find(id);
  return it == brokers_.end() ? nullptr : stub_for(it->second);
}

bv1::Broker::Stub* MetadataCache::any_broker(size_t i) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> addresses;
  for (const auto& [id, a] : brokers_) addresses.push_back(a);
  addresses.insert(addresses.end(), bootstrap_.begin(), bootstrap_.end());
  if (addresses.empty()) return nullptr;
  return stub_for(addresses[i % addresses.size()]);
}

std::vector<std::string> MetadataCache::list_topics() {
  if (!refresh()) return {};
  std::lock_guard<std::mutex> l(mu_);
  return all_topics_;
}

int64_t MetadataCache::refreshes() const {
  std::lock_guard<std::mutex> l(mu_);
  return refreshes_;
}

}  // namespace gannet::client
