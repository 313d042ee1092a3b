#include "storage/error.h"

namespace gannet::storage {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::kCorruptMessage: return "CORRUPT_MESSAGE";
    case Errc::kInvalidRecord: return "INVALID_RECORD";
    case Errc::kRecordTooLarge: return "RECORD_TOO_LARGE";
    case Errc::kUnsupportedCompression: return "UNSUPPORTED_COMPRESSION_TYPE";
    case Errc::kOffsetOutOfRange: return "OFFSET_OUT_OF_RANGE";
    case Errc::kInvalidOffset: return "INVALID_OFFSET";
    case Errc::kIoError: return "IO_ERROR";
    case Errc::kNoSpace: return "NO_SPACE";
    case Errc::kLogOffline: return "LOG_OFFLINE";
    case Errc::kNotFound: return "NOT_FOUND";
    case Errc::kAlreadyExists: return "ALREADY_EXISTS";
    case Errc::kInvalidConfig: return "INVALID_CONFIG";
    case Errc::kOutOfOrderSequence: return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case Errc::kInvalidProducerEpoch: return "INVALID_PRODUCER_EPOCH";
    case Errc::kTransactionalBatch: return "INVALID_TXN_STATE";
  }
  return "UNKNOWN";
}

}  // namespace gannet::storage
