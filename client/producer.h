// Producer: batches records per partition and sends them to partition leaders (DESIGN.md,
// "Write path"). Records are appended to a batch of their partition (a Kafka v2 record batch,
// optionally compressed); a batch is sent when it reaches batch.size or has waited linger.ms, in
// one Produce request per leader broker carrying every ready partition. At most one request per
// partition is in flight, so retries never reorder a partition; batches that queued up behind it
// meanwhile go together in the partition's next request (up to max_partition_request_bytes), so
// under load a partition's throughput is not one batch per round trip. Retriable errors (leader moved,
// not enough replicas, timeouts) refresh the metadata and retry with backoff until
// delivery.timeout.ms. Memory: the records buffered and in flight never exceed buffer.memory;
// send() blocks (up to max.block.ms) when they would.
//
// Thread safety: every method may be called from any thread; callbacks run on the sender's
// worker threads (two per broker, so callbacks may run concurrently: synchronize what they
// share, and keep them short).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/metadata_cache.h"
#include "client/partitioner.h"
#include "proto/errors.pb.h"

#include "storage/record_batch.h"

namespace gannet::client {

struct ProducerConfig {
  std::vector<std::string> bootstrap_servers;
  int acks = -1;                       // 0, 1, -1 (all)
  size_t batch_size = 16 * 1024;       // batch.size (bytes, uncompressed)
  int64_t linger_ms = 5;               // linger.ms
  storage::Compression compression = storage::Compression::kNone;
  size_t buffer_memory = 32 << 20;     // buffer.memory
  int64_t max_block_ms = 60'000;       // max.block.ms
  int64_t request_timeout_ms = 30'000; // request.timeout.ms
  int64_t delivery_timeout_ms = 120'000;
  int64_t retry_backoff_ms = 100;
  // Ready batches of one partition that queued up behind its request in flight go together in
  // its next request, up to this many bytes (at least one batch always goes). Without an
  // idempotent producer (a later issue), a response lost to a broker crash makes the retry write
  // all of it again, so this bounds what one lost answer can duplicate per partition; set it to
  // batch.size for one batch per request (fewest duplicates, lowest throughput under load).
  size_t max_partition_request_bytes = 256 << 10;
  std::shared_ptr<Partitioner> partitioner;  // default: DefaultPartitioner
};

struct ProducerRecord {
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::optional<int32_t> partition;
  int64_t timestamp = -1;  // -1: now
};

struct RecordMetadata {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;  // -1 with acks=0
  gannet::v1::ErrorCode error = gannet::v1::NONE;
  std::string message;
  bool ok() const { return error == gannet::v1::NONE; }
};

class Producer {
 public:
  using Callback = std::function<void(const RecordMetadata&)>;

  explicit Producer(ProducerConfig config);
  ~Producer();  // close()

  // Asynchronous send; `cb` runs once the record is acknowledged or has failed.
  void send(ProducerRecord record, Callback cb);
  std::future<RecordMetadata> send(ProducerRecord record);
  // Sends everything buffered now and waits until all of it is acknowledged or failed.
  void flush();
  // flush(), then stops the sender.
  void close();

  size_t buffered_bytes() const;

 private:
  struct Pending {
    Callback cb;
    size_t bytes;
  };
  struct Batch {
    std::string topic;
    int32_t partition;
    std::unique_ptr<storage::RecordBatchBuilder> builder;  // null once built
    std::string built;  // the encoded batch, kept for retries (empty while in a request)
    std::string build_error;  // why it could not be encoded
    std::vector<Pending> records;
    size_t bytes = 0;
    int64_t created_ms = 0;
    int64_t retry_at_ms = 0;
    int attempts = 0;
    // Resent in a request of its own: the broker refused the append it shared with other batches
    // of its partition (it validates them together), and this batch's verdict must be its own.
    bool alone = false;
  };
  using Key = std::pair<std::string, int32_t>;
  static constexpr int kRequestsInFlightPerBroker = 2;

  struct Worker {
    std::vector<std::thread> threads;
    std::condition_variable cv;
    std::deque<std::vector<std::unique_ptr<Batch>>> queue;  // requests to send, in order
  };
  void sender_loop();
  void worker_loop(Worker* w, int32_t leader);
  void send_request(int32_t leader, std::vector<std::unique_ptr<Batch>>& batches);
  void complete(Batch& b, int64_t base_offset, gannet::v1::ErrorCode error, const std::string& message);
  static bool retriable(gannet::v1::ErrorCode e);
  int64_t now_ms() const;

  const ProducerConfig config_;
  std::shared_ptr<Partitioner> partitioner_;
  MetadataCache metadata_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // the sender waits here
  std::condition_variable space_cv_;  // send() waits here for buffer memory
  std::condition_variable idle_cv_;   // flush() waits here
  std::map<Key, std::deque<std::unique_ptr<Batch>>> queues_;
  std::map<Key, bool> in_flight_;
  size_t buffered_ = 0;     // bytes of records not yet completed
  size_t outstanding_ = 0;  // records not yet completed
  bool flushing_ = false;
  bool closing_ = false;
  std::thread sender_;
  std::map<int32_t, std::unique_ptr<Worker>> workers_;  // one per leader broker
  bool workers_stopping_ = false;
};

}  // namespace gannet::client
