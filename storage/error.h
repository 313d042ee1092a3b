// storage::Errc: every way a storage operation can fail, each mapping onto one client-facing
// Kafka error code (noted per value) so the broker can answer without guessing.
#pragma once

#include <string>

#include "common/result.h"

namespace gannet::storage {

enum class Errc {
  kCorruptMessage,          // CRC mismatch, impossible length, malformed records: CORRUPT_MESSAGE
  kInvalidRecord,           // wrong magic, bad offsets/counts in a header: INVALID_RECORD
  kRecordTooLarge,          // batch larger than max.message.bytes: RECORD_TOO_LARGE
  kUnsupportedCompression,  // compression codec we do not implement: UNSUPPORTED_COMPRESSION_TYPE
  kOffsetOutOfRange,        // read below log start or above log end: OFFSET_OUT_OF_RANGE
  kInvalidOffset,           // follower append not contiguous with the log end: UNKNOWN_SERVER_ERROR
  kIoError,                 // EIO or any other failed syscall: KAFKA_STORAGE_ERROR
  kNoSpace,                 // ENOSPC: KAFKA_STORAGE_ERROR
  kLogOffline,              // an earlier I/O error took the log offline: KAFKA_STORAGE_ERROR
  kNotFound,                // no such file, partition or directory: UNKNOWN_TOPIC_OR_PARTITION
  kAlreadyExists,           // partition directory already exists: TOPIC_ALREADY_EXISTS
  kInvalidConfig,           // a config value out of range: INVALID_CONFIG
  kOutOfOrderSequence,      // an idempotent batch's sequence leaves a gap: OUT_OF_ORDER_SEQUENCE_NUMBER
  kInvalidProducerEpoch,    // an idempotent batch from an older producer epoch: INVALID_PRODUCER_EPOCH
  kTransactionalBatch,      // a transactional batch (no transactions yet): INVALID_TXN_STATE
};

const char* errc_name(Errc c);

struct Error {
  Errc code;
  std::string message;

  std::string to_string() const { return std::string(errc_name(code)) + ": " + message; }
};

template <typename T>
using Result = gannet::Result<T, Error>;
using Status = gannet::Result<void, Error>;

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace gannet::storage
