// MetadataPublisher: plugs into the quorum (raft::RaftListener) on every node and turns committed
// metadata records into images: each on_commit() batch becomes one MetadataDelta, published as
// the next MetadataImage to the subscribers (replica manager, coordinator, controller), in commit
// order. Every `snapshot_every` records it encodes the image and hands it to `snapshot_sink`
// (RaftNode::snapshot_taken) so a restart does not replay the whole log.
//
// Thread safety: the quorum calls the listener methods from one thread; image() may be called
// from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "metadata/metadata_image.h"
#include "raft/raft_node.h"

namespace gannet::metadata {

class MetadataPublisher : public raft::RaftListener {
 public:
  using Subscriber = std::function<void(const MetadataDelta& delta,
                                        const std::shared_ptr<const MetadataImage>& image)>;

  explicit MetadataPublisher(int64_t snapshot_every = 10'000) : snapshot_every_(snapshot_every) {}

  // Subscribers registered before the quorum starts see every change.
  void subscribe(Subscriber s);
  void set_snapshot_sink(std::function<void(raft::Snapshot)> sink);
  std::shared_ptr<const MetadataImage> image() const;
  // Waits until the published image covers every offset below `offset`; false on timeout.
  bool wait_for_offset(int64_t offset, int64_t timeout_ms) const;
  raft::NodeId leader() const;
  int64_t records_skipped() const;

  // raft::RaftListener.
  void on_snapshot(const raft::Snapshot& s) override;
  void on_commit(const std::vector<raft::Entry>& entries) override;
  void on_leader_change(raft::Epoch epoch, raft::NodeId leader) override;

 private:
  void publish(const MetadataDelta& delta, std::shared_ptr<const MetadataImage> image);

  const int64_t snapshot_every_;
  mutable std::mutex mu_;
  mutable std::condition_variable published_;
  std::shared_ptr<const MetadataImage> image_ = std::make_shared<const MetadataImage>();
  std::vector<Subscriber> subscribers_;
  std::function<void(raft::Snapshot)> snapshot_sink_;
  raft::NodeId leader_ = raft::kNoNode;
  raft::Epoch last_epoch_ = 0;
  int64_t since_snapshot_ = 0;
  int64_t skipped_ = 0;
};

// The records of one decision as one quorum entry's data (a MetadataBatch).
std::string encode_batch(const std::vector<v1::MetadataRecord>& records);
// What `r` adds to encode_batch's output (its field tag, length and body).
size_t encoded_size(const v1::MetadataRecord& r);
// The largest quorum entry (raft::RaftConfig::max_record_bytes): one decision must fit in it.
inline constexpr size_t kMaxEntryBytes = 8 << 20;

}  // namespace gannet::metadata
