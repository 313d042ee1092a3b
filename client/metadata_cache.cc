#include "client/metadata_cache.h"

#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "common/grpc_transport.h"

namespace gannet::client {

MetadataCache::MetadataCache(std::vector<std::string> bootstrap) : bootstrap_(std::move(bootstrap)) {}

namespace {

// One channel per broker address for the whole process, never destroyed. gRPC's callback API
// finishes a call on the channel's own completion queue after our last callback has returned
// (releasing the call and its captures there); destroying the channel meanwhile shuts that
// queue down under it, and gRPC aborts ("ref_counted.h:183 assertion failed: prior > 0" in
// grpc_cq_internal_unref). That happened to a consumer destroyed right after its long-poll
// fetches were cancelled, about 1 run in 10 under load. Channels that outlive their clients
// close the window, and clients of one process share connections (a channel reconnects by
// itself to a restarted broker).
std::shared_ptr<grpc::Channel> shared_channel(const std::string& address) {
  static std::mutex mu;
  static auto* channels = new std::map<std::string, std::shared_ptr<grpc::Channel>>();  // never freed
  std::lock_guard<std::mutex> l(mu);
  auto& c = (*channels)[address];
  if (!c) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    apply_data_transport(args);
    c = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  return c;
}

}  // namespace

bv1::Broker::Stub* MetadataCache::stub_for(const std::string& address) {
  auto& s = stubs_[address];
  if (!s) s = bv1::Broker::NewStub(shared_channel(address));
  return s.get();
}

bool MetadataCache::refresh(const std::vector<std::string>& topics) {
  std::vector<std::string> addresses;
  int64_t newest;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, a] : brokers_) addresses.push_back(a);
    newest = newest_offset_;
  }
  addresses.insert(addresses.end(), bootstrap_.begin(), bootstrap_.end());
  // The first answer from an image at least as new as any seen before; else the newest answer.
  // A broker that just restarted answers from an image that may be behind: its word is used only
  // if nobody newer answers, and then never to forget a topic.
  std::optional<bv1::MetadataResponse> best;
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
    if (!best || resp.metadata_offset() > best->metadata_offset()) best = std::move(resp);
    if (best->metadata_offset() >= newest) break;
  }
  if (!best) return false;
  const bv1::MetadataResponse& resp = *best;
  std::lock_guard<std::mutex> l(mu_);
  ++refreshes_;
  const bool current = resp.metadata_offset() >= newest_offset_;
  newest_offset_ = std::max(newest_offset_, resp.metadata_offset());
  for (const auto& b : resp.brokers()) {
    if (!b.host().empty()) brokers_[b.broker_id()] = b.host() + ":" + std::to_string(b.port());
  }
  if (topics.empty()) {
    // A full answer lists every topic (for pattern subscriptions); a current one also tells us
    // which cached topics are gone (deleted: sends to them fail at once).
    all_topics_.clear();
    std::set<std::string> listed;
    for (const auto& t : resp.topics()) {
      all_topics_.push_back(t.name());
      listed.insert(t.name());
    }
    if (current) {
      for (auto it = topics_.begin(); it != topics_.end();) it = listed.count(it->first) ? std::next(it) : topics_.erase(it);
    }
  }
  for (const auto& t : resp.topics()) {
    if (t.error_code() != gannet::v1::NONE) {
      if (current) topics_.erase(t.name());
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
