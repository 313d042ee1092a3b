#include "storage/error_code.h"

namespace gannet::storage {

v1::ErrorCode to_error_code(Errc code) {
  switch (code) {
    case Errc::kCorruptMessage: return v1::CORRUPT_MESSAGE;
    case Errc::kInvalidRecord: return v1::INVALID_RECORD;
    case Errc::kRecordTooLarge: return v1::MESSAGE_TOO_LARGE;
    case Errc::kUnsupportedCompression: return v1::UNSUPPORTED_COMPRESSION_TYPE;
    case Errc::kOffsetOutOfRange: return v1::OFFSET_OUT_OF_RANGE;
    case Errc::kInvalidOffset: return v1::UNKNOWN_SERVER_ERROR;
    case Errc::kIoError:
    case Errc::kNoSpace:
    case Errc::kLogOffline: return v1::KAFKA_STORAGE_ERROR;
    case Errc::kNotFound: return v1::UNKNOWN_TOPIC_OR_PARTITION;
    case Errc::kAlreadyExists: return v1::TOPIC_ALREADY_EXISTS;
    case Errc::kInvalidConfig: return v1::INVALID_CONFIG;
    case Errc::kOutOfOrderSequence: return v1::OUT_OF_ORDER_SEQUENCE_NUMBER;
    case Errc::kInvalidProducerEpoch: return v1::INVALID_PRODUCER_EPOCH;
    case Errc::kTransactionalBatch: return v1::INVALID_TXN_STATE;
  }
  return v1::UNKNOWN_SERVER_ERROR;
}

}  // namespace gannet::storage
