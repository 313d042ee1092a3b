// The client-facing code (proto/errors.proto, Kafka's numbering) for each storage error.
#pragma once

#include "proto/errors.pb.h"
#include "storage/error.h"

namespace gannet::storage {

v1::ErrorCode to_error_code(Errc code);

}  // namespace gannet::storage
