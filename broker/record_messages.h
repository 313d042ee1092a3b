// Records as protobuf messages (ProduceRecords / FetchRecords in broker.proto): the conversions
// between a client's records and the core's record batches, as plain functions (no I/O, no
// threads), so a client in any language needs no batch encoding.
//
// Produce: each record's partition is its own if given (checked), else Kafka's default
// partitioner's: murmur2 of the key, or for keyless records one partition per request (sticky),
// preferring one this broker leads so they need no forwarding. Records are then grouped by the
// leader of their partition: this broker's into one ProduceRequest of the core (one batch per
// partition, built with the topic's compression.type), the others' into one ProduceRecords
// request per leader with explicit partitions, which the service forwards. Each record's answer is
// its batch's base offset plus its index in the batch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metadata/metadata_image.h"
#include "proto/broker.pb.h"

namespace gannet::broker {

struct ProducePlan {
  // Request-level refusal (unknown topic, bad acks): `resp` is complete, nothing to send.
  bool refused = false;
  // Records this broker leads, as the core's request; local_index[p][i]: the request index of
  // the i-th record of local partition entry p.
  v1::ProduceRequest local;
  std::vector<std::vector<int>> local_index;
  // Records other brokers lead, by broker id: a request with explicit partitions, and the
  // request index of each of its records.
  struct Forward {
    v1::ProduceRecordsRequest req;
    std::vector<int> index;
  };
  std::map<int32_t, Forward> forwards;
};

// Plans `req` against `image` on broker `me`. Fills `resp` with one result per record (errors for
// records that cannot go anywhere: a bad explicit partition, a partition with no leader, a batch
// that cannot be encoded) and the request-level error when refused. `sticky` picks the partition of
// keyless records.
ProducePlan plan_produce_records(const metadata::MetadataImage& image, const v1::ProduceRecordsRequest& req,
                                 int32_t me, uint64_t sticky, v1::ProduceRecordsResponse* resp);

// Copies the core's answer for the local records into `resp`.
void finish_local_records(const ProducePlan& plan, const v1::ProduceResponse& core, v1::ProduceRecordsResponse* resp);
// Copies a forwarded request's answer (or its failure, as `error`) into `resp`.
void finish_forwarded_records(const ProducePlan::Forward& f, const v1::ProduceRecordsResponse* answer,
                              gannet::v1::ErrorCode error, const std::string& message,
                              v1::ProduceRecordsResponse* resp);

// The core's fetch request for `req` (a consumer's, below the HW).
v1::FetchRequest fetch_request_for(const v1::FetchRecordsRequest& req);
// Decodes the core's fetch answer into records at or after req.offset (at most max_records).
void decode_fetched_records(const v1::FetchRecordsRequest& req, const v1::FetchResponse& core,
                            v1::FetchRecordsResponse* resp);

}  // namespace gannet::broker
