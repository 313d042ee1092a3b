#include "storage/error_code.h"

#include <gtest/gtest.h>

namespace gannet::storage {
namespace {

TEST(ErrorCode, MapsStorageErrorsOntoKafkaNumbers) {
  // The numbers are Kafka's wire codes; a client library relies on them.
  EXPECT_EQ(to_error_code(Errc::kCorruptMessage), 2);
  EXPECT_EQ(to_error_code(Errc::kOffsetOutOfRange), 1);
  EXPECT_EQ(to_error_code(Errc::kRecordTooLarge), 10);
  EXPECT_EQ(to_error_code(Errc::kInvalidRecord), 87);
  EXPECT_EQ(to_error_code(Errc::kUnsupportedCompression), 76);
  EXPECT_EQ(to_error_code(Errc::kIoError), 56);
  EXPECT_EQ(to_error_code(Errc::kNoSpace), 56);
  EXPECT_EQ(to_error_code(Errc::kLogOffline), 56);
  EXPECT_EQ(to_error_code(Errc::kNotFound), 3);
  EXPECT_EQ(to_error_code(Errc::kAlreadyExists), 36);
  EXPECT_EQ(to_error_code(Errc::kInvalidConfig), 40);
  EXPECT_EQ(v1::ErrorCode_Name(to_error_code(Errc::kCorruptMessage)), "CORRUPT_MESSAGE");
}

}  // namespace
}  // namespace gannet::storage
