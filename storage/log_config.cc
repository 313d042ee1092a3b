#include "storage/log_config.h"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string_view>

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
  if (!cleanup_delete && !cleanup_compact) {
    return make_error(Errc::kInvalidConfig, "cleanup.policy: must be delete and/or compact");
  }
  GANNET_RETURN_IF_ERROR(
      check(delete_retention_ms >= 0, "delete.retention.ms", delete_retention_ms, ">= 0"));
  GANNET_RETURN_IF_ERROR(
      check(min_compaction_lag_ms >= 0, "min.compaction.lag.ms", min_compaction_lag_ms, ">= 0"));
  GANNET_RETURN_IF_ERROR(check(producer_id_expiration_ms >= 1, "producer.id.expiration.ms",
                               producer_id_expiration_ms, ">= 1"));
  GANNET_RETURN_IF_ERROR(check(max_producers_per_partition >= 1, "producer.state.max.producers.per.partition",
                               max_producers_per_partition, ">= 1"));
  // Written so that NaN fails too.
  if (!(min_cleanable_dirty_ratio >= 0.0 && min_cleanable_dirty_ratio <= 1.0)) {
    return make_error(Errc::kInvalidConfig, "min.cleanable.dirty.ratio=" +
                                                std::to_string(min_cleanable_dirty_ratio) +
                                                ": must be in [0, 1]");
  }
  return {};
}

std::string LogConfig::cleanup_policy() const {
  if (cleanup_compact && cleanup_delete) return "compact,delete";
  return cleanup_compact ? "compact" : "delete";
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
  GANNET_RETURN_IF_ERROR(parse("delete.retention.ms", &c.delete_retention_ms));
  GANNET_RETURN_IF_ERROR(parse("min.compaction.lag.ms", &c.min_compaction_lag_ms));
  if (auto it = props.find("cleanup.policy"); it != props.end()) {
    // A comma-separated list of "delete" and "compact" (Kafka's spelling; spaces around the
    // names are allowed, as Kafka's list parser allows them).
    bool del = false, compact = false;
    std::string_view rest = it->second;
    while (true) {
      const size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item == "delete") {
        del = true;
      } else if (item == "compact") {
        compact = true;
      } else {
        return make_error(Errc::kInvalidConfig,
                          "cleanup.policy=" + it->second + ": must be delete and/or compact");
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    c.cleanup_delete = del;
    c.cleanup_compact = compact;
  }
  if (auto it = props.find("min.cleanable.dirty.ratio"); it != props.end()) {
    const std::string& s = it->second;
    char* end = nullptr;
    errno = 0;
    const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno != 0) {
      return make_error(Errc::kInvalidConfig, "min.cleanable.dirty.ratio=" + s + ": not a number");
    }
    c.min_cleanable_dirty_ratio = v;
  }
  GANNET_RETURN_IF_ERROR(c.validate());
  return c;
}

}  // namespace gannet::storage
