#include "metadata/metadata_publisher.h"

#include <glog/logging.h>

namespace gannet::metadata {

std::string encode_batch(const std::vector<v1::MetadataRecord>& records) {
  v1::MetadataBatch b;
  for (const auto& r : records) *b.add_records() = r;
  return b.SerializeAsString();
}

size_t encoded_size(const v1::MetadataRecord& r) {
  const size_t body = r.ByteSizeLong();
  size_t len = 1;  // the length's varint
  for (size_t v = body; v >= 0x80; v >>= 7) ++len;
  return 1 + len + body;  // field 1's tag is one byte
}

void MetadataPublisher::subscribe(Subscriber s) {
  std::lock_guard<std::mutex> l(mu_);
  subscribers_.push_back(std::move(s));
}

void MetadataPublisher::set_snapshot_sink(std::function<void(raft::Snapshot)> sink) {
  std::lock_guard<std::mutex> l(mu_);
  snapshot_sink_ = std::move(sink);
}

std::shared_ptr<const MetadataImage> MetadataPublisher::image() const {
  std::lock_guard<std::mutex> l(mu_);
  return image_;
}

bool MetadataPublisher::wait_for_offset(int64_t offset, int64_t timeout_ms) const {
  std::unique_lock<std::mutex> l(mu_);
  return published_.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)),
                             [&] { return image_->offset() >= offset; });
}

raft::NodeId MetadataPublisher::leader() const {
  std::lock_guard<std::mutex> l(mu_);
  return leader_;
}

int64_t MetadataPublisher::records_skipped() const {
  std::lock_guard<std::mutex> l(mu_);
  return skipped_;
}

void MetadataPublisher::publish(const MetadataDelta& delta,
                                std::shared_ptr<const MetadataImage> image) {
  std::vector<Subscriber> subs;
  {
    std::lock_guard<std::mutex> l(mu_);
    image_ = image;
    subs = subscribers_;
  }
  for (const auto& s : subs) s(delta, image);
  published_.notify_all();
}

void MetadataPublisher::on_snapshot(const raft::Snapshot& s) {
  auto image = decode_snapshot(s.data);
  if (!image.ok()) {
    // A snapshot the quorum accepted but that does not decode: nothing sensible to serve.
    LOG(FATAL) << "metadata snapshot at " << s.id.end_offset << " is unreadable: " << image.error().message;
  }
  // Subscribers see a snapshot as a delta from the empty image to it.
  MetadataDelta delta(nullptr);
  for (const auto& r : (*image)->to_records()) (void)delta.replay(r, s.id.end_offset - 1);
  publish(delta, *image);
  std::lock_guard<std::mutex> l(mu_);
  since_snapshot_ = 0;
}

void MetadataPublisher::on_commit(const std::vector<raft::Entry>& entries) {
  MetadataDelta delta(image());
  int64_t applied = 0;
  for (const raft::Entry& e : entries) {
    last_epoch_ = e.epoch;
    if (e.control) continue;
    v1::MetadataBatch batch;
    if (!batch.ParseFromString(e.data)) {
      LOG(ERROR) << "metadata offset " << e.offset << " does not parse; skipped";
      std::lock_guard<std::mutex> l(mu_);
      ++skipped_;
      continue;
    }
    for (const v1::MetadataRecord& r : batch.records()) {
      auto st = delta.replay(r, e.offset);
      if (!st.ok()) {
        LOG(ERROR) << "metadata offset " << e.offset << ": a record was refused: " << st.error().message;
        std::lock_guard<std::mutex> l(mu_);
        ++skipped_;
        continue;
      }
      ++applied;
    }
  }
  // Control entries advance the offset too (replay never saw them).
  if (!entries.empty()) {
    v1::MetadataRecord noop;
    noop.mutable_no_op();
    (void)delta.replay(noop, entries.back().offset);
  }
  auto image = delta.apply();
  publish(delta, image);
  std::function<void(raft::Snapshot)> sink;
  {
    std::lock_guard<std::mutex> l(mu_);
    since_snapshot_ += applied;
    if (since_snapshot_ < snapshot_every_ || !snapshot_sink_) return;
    since_snapshot_ = 0;
    sink = snapshot_sink_;
  }
  sink(raft::Snapshot{{image->offset(), last_epoch_}, encode_snapshot(*image)});
}

void MetadataPublisher::on_leader_change(raft::Epoch epoch, raft::NodeId leader) {
  std::lock_guard<std::mutex> l(mu_);
  leader_ = leader;
}

}  // namespace gannet::metadata
