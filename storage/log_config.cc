#include "storage/log_config.h"

#include <charconv>

#include "storage/record_batch.h"

namespace gannet::storage {
namespace {

Status check(bool ok, const char* key, int64_t value, const char* rule) {
  if (ok) return {};
  return make_error(Errc::kInvalidConfig,
                    std::string(key) + "=" + std::to_string(value) + ": must be " + rule);
}

}  // namespace

Status LogConfig::validate() const {
  GANNET_RETURN_IF_ERROR(check(segment_bytes >= 14, "segment.bytes", segment_bytes, ">= 14"));
  GANNET_RETURN_IF_ERROR(check(segment_ms >= 1, "segment.ms", segment_ms, ">= 1"));
  GANNET_RETURN_IF_ERROR(
      check(index_interval_bytes >= 0, "index.interval.bytes", index_interval_bytes, ">= 0"));
  GANNET_RETURN_IF_ERROR(check(flush_messages >= 1, "flush.messages", flush_messages, ">= 1"));
  GANNET_RETURN_IF_ERROR(check(flush_ms >= 0, "flush.ms", flush_ms, ">= 0"));
  GANNET_RETURN_IF_ERROR(check(retention_ms >= -1, "retention.ms", retention_ms, ">= -1"));
  GANNET_RETURN_IF_ERROR(check(retention_bytes >= -1, "retention.bytes", retention_bytes, ">= -1"));
  GANNET_RETURN_IF_ERROR(check(max_message_bytes >= 0 &&
                                   static_cast<size_t>(max_message_bytes) <= kMaxBatchBytes,
                               "max.message.bytes", max_message_bytes, "in [0, 1073741824]"));
  GANNET_RETURN_IF_ERROR(check(segment_preallocate_bytes >= 0, "segment.preallocate.bytes",
                               segment_preallocate_bytes, ">= 0"));
  return {};
}

Result<LogConfig> LogConfig::from_properties(const std::map<std::string, std::string>& props,
                                             const LogConfig& base) {
  LogConfig c = base;
  auto parse = [&](const char* key, auto* field) -> Status {
    auto it = props.find(key);
    if (it == props.end()) return {};
    int64_t v = 0;
    const std::string& s = it->second;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    using Field = std::remove_pointer_t<decltype(field)>;
    if (ec != std::errc() || ptr != s.data() + s.size() || v < std::numeric_limits<Field>::min() ||
        v > std::numeric_limits<Field>::max()) {
      return make_error(Errc::kInvalidConfig, std::string(key) + "=" + s + ": not an integer");
    }
    *field = static_cast<Field>(v);
    return {};
  };
  GANNET_RETURN_IF_ERROR(parse("segment.bytes", &c.segment_bytes));
  GANNET_RETURN_IF_ERROR(parse("segment.ms", &c.segment_ms));
  GANNET_RETURN_IF_ERROR(parse("index.interval.bytes", &c.index_interval_bytes));
  GANNET_RETURN_IF_ERROR(parse("flush.messages", &c.flush_messages));
  GANNET_RETURN_IF_ERROR(parse("flush.ms", &c.flush_ms));
  GANNET_RETURN_IF_ERROR(parse("retention.ms", &c.retention_ms));
  GANNET_RETURN_IF_ERROR(parse("retention.bytes", &c.retention_bytes));
  GANNET_RETURN_IF_ERROR(parse("max.message.bytes", &c.max_message_bytes));
  GANNET_RETURN_IF_ERROR(parse("segment.preallocate.bytes", &c.segment_preallocate_bytes));
  GANNET_RETURN_IF_ERROR(c.validate());
  return c;
}

}  // namespace gannet::storage
