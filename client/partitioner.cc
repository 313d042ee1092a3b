#include "client/partitioner.h"

namespace gannet::client {

int32_t DefaultPartitioner::partition(const std::string& topic, const std::optional<std::string>& key,
                                      int32_t partitions) {
  if (key) return partition_for_key(*key, partitions);
  std::lock_guard<std::mutex> l(mu_);
  auto it = sticky_.find(topic);
  if (it == sticky_.end() || it->second >= partitions) {
    it = sticky_.insert_or_assign(topic, static_cast<int32_t>(rng_() % static_cast<uint32_t>(partitions))).first;
  }
  return it->second;
}

void DefaultPartitioner::on_new_batch(const std::string& topic, int32_t previous) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = sticky_.find(topic);
  if (it != sticky_.end() && it->second == previous) sticky_.erase(it);  // next record picks anew
}

}  // namespace gannet::client
