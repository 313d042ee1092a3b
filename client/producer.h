// Producer: batches records per partition and sends them to partition leaders (DESIGN.md,
// "Write path"). Records are appended to a batch of their partition (a Kafka v2 record batch,
// optionally compressed); a batch is sent when it reaches batch.size or has waited linger.ms, in
// one Produce request per leader broker carrying every ready partition. At most one request per
// partition is in flight, so retries never reorder a partition; batches that queued up behind it
// meanwhile go together in the partition's next request (up to max_partition_request_bytes), so
// under load a partition's throughput is not one batch per round trip. Requests to a broker go on
// one long-lived ProduceStream, up to max_in_flight_requests of them at a time, each answered by
// its correlation id (a request not answered within request.timeout.ms gives up the stream, and
// what was in flight on it is retried). Retriable errors (leader moved,
// not enough replicas, timeouts) refresh the metadata and retry with backoff until
// delivery.timeout.ms. Memory: the batches' buffers (their whole capacity, for the records
// buffered and in flight) never exceed buffer.memory; send() blocks (up to max.block.ms) when
// they would. As with Kafka's buffer.memory, what the transport holds while a request is written
// (gRPC's serialized copy, and the joined bytes when several batches of a partition share a
// request) is not counted: at most max_in_flight_requests requests per broker.
//
// Thread safety: every method may be called from any thread. Callbacks run on gRPC's threads as
// answers arrive (as Kafka's run on its I/O thread), possibly several at once for different
// brokers: synchronize what they share, keep them short, and do not block in them (a send() that
// waits for buffer.memory inside a callback holds up the answers that would free it). Never call
// flush() or close(), or destroy the producer, from a callback: they wait for answers that
// callback's thread would deliver.
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
  // Requests in flight to one broker (max.in.flight.requests.per.connection). Each partition
  // still has at most one in flight, so this never reorders a partition.
  int max_in_flight_requests = 5;
  // enable.idempotence (KIP-98): the producer gets a producer id (InitProducerId) and numbers
  // each partition's batches, so a retry the broker already wrote is answered with its first
  // offsets and never written twice. Unset: on unless acks is not -1 or more than 5 requests may
  // be in flight (as Kafka's Java client decides); true with either of those is a config error
  // (the constructor throws std::invalid_argument). With it, a partition's request carries at
  // most 5 batches (the broker remembers a producer's last five) and a retried batch goes alone;
  // after a batch of a partition fails for good, the partition's epoch is bumped and its
  // sequences restart at 0 (KIP-360), so later batches are not refused for the gap.
  std::optional<bool> enable_idempotence;
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
    size_t bytes = 0;    // records' sizes (64 + key + value each): what batch.size limits
    size_t charged = 0;  // what its buffers take, counted in buffered_ (buffer.memory)
    int64_t created_ms = 0;
    int64_t retry_at_ms = 0;
    int attempts = 0;
    // Resent in a request of its own: the broker refused the append it shared with other batches
    // of its partition (it validates them together), and this batch's verdict must be its own.
    bool alone = false;
    // Idempotence: what the batch was stamped with when it first went out (-1: not yet).
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
  };
  using Key = std::pair<std::string, int32_t>;
  // One ProduceRequest and what it carries: batches[i] is in the request's entry group[i], its
  // first record offset_in_group[i] after the entry's base offset; lent_size[i] > 0 when the
  // entry's records buffer is batch i's own bytes, lent to the request (taken back afterwards).
  struct Request {
    int32_t leader = -1;
    bv1::ProduceRequest req;
    std::vector<std::unique_ptr<Batch>> batches;
    std::vector<int> group;
    std::vector<int> group_batches;  // per entry: how many batches share it
    std::vector<int64_t> offset_in_group;
    std::vector<size_t> lent_size;
    int64_t sent_ms = 0;
    // Its answer, when it came before gRPC reported the write done (the request must stay
    // untouched until then): handled once it has.
    std::unique_ptr<bv1::ProduceResponse> early_answer;
  };
  class Connection;

  void sender_loop();
  std::unique_ptr<Request> build_request(int32_t leader, std::vector<std::unique_ptr<Batch>> batches);
  // Completes or requeues every batch of `r`: from its answer (`resp`), or failed with `st`.
  void handle_response(Request& r, const grpc::Status& st, const bv1::ProduceResponse* resp);
  // The open stream to `leader` (a new one when there is none or it failed); nullptr when the
  // broker's address is unknown. With mu_ held.
  Connection* connection_locked(int32_t leader);
  void complete(Batch& b, int64_t base_offset, gannet::v1::ErrorCode error, const std::string& message);
  static bool retriable(gannet::v1::ErrorCode e);
  int64_t now_ms() const;
  // Idempotence: gets a producer id from any broker (InitProducerId); false if none answered.
  bool init_producer_id();
  // Stamps `b` with its partition's producer id, epoch and next sequence, unless it already
  // carries the partition's current id and epoch (a retry keeps its sequence).
  void stamp(Batch& b);
  // A stamped batch of the partition failed for good: its sequences are no longer known to
  // follow on, so the partition's epoch goes up and its sequences restart at 0. With mu_ held.
  void bump_epoch_locked(const Batch& b);

  const ProducerConfig config_;
  const bool idempotent_;
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
  int waiting_for_memory_ = 0;  // send() calls waiting for buffer.memory: every batch is ready
  bool closing_ = false;
  bool refresh_wanted_ = false;  // a retriable error: the sender refreshes the metadata
  // Idempotence (with mu_): this producer's id from InitProducerId (-1: not yet), and each
  // partition's id, epoch and next sequence.
  struct Sequence {
    int64_t producer_id = -1;
    int16_t epoch = 0;
    int32_t next = 0;
  };
  int64_t producer_id_ = -1;
  std::map<Key, Sequence> sequences_;
  // Shared: send() may write on one without mu_ held; only the sender thread and close() drop them.
  std::map<int32_t, std::shared_ptr<Connection>> connections_;  // by leader broker
  std::vector<std::shared_ptr<Connection>> closed_connections_;  // failed, until gRPC is done with them
  std::thread sender_;
};

}  // namespace gannet::client
