#include "broker/server_config.h"

#include "common/principal_rules.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <limits>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>

namespace gannet::broker {
namespace {

using Status = Result<void, ConfigError>;

// A properties file larger than this is refused rather than read (a bound on the read loop;
// real ones are a few KiB).
constexpr size_t kMaxPropertiesFileBytes = 8 << 20;

// Kafka's defaults that are not already the defaults of a field.
constexpr const char* kDefaultListeners = "PLAINTEXT://:9092,GRPC://:9192";
constexpr int32_t kDefaultLogRetentionHours = 168;
constexpr int64_t kMsPerMinute = 60LL * 1000;
constexpr int64_t kMsPerHour = 3600LL * 1000;

ConfigError make_error(std::string message) { return ConfigError{std::move(message)}; }

// "<key>=<value>: <reason>", the shape of every value error.
ConfigError bad_value(std::string_view key, std::string_view value, std::string_view reason) {
  std::string m(key);
  m += '=';
  m += value;
  m += ": ";
  m += reason;
  return make_error(std::move(m));
}

// Whitespace as java.util.Properties sees it inside a line.
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f'; }

std::string_view trim(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n' || c == '\v';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

template <typename T, typename F>
std::string join(const std::vector<T>& items, F&& render, const char* separator = ",") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += render(items[i]);
  }
  return out;
}

// ---- Properties text ----------------------------------------------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the 4 hex digits of a \uXXXX escape starting at s[i].
bool read_hex4(std::string_view s, size_t i, uint32_t* out) {
  if (i + 4 > s.size()) return false;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    int d = hex_digit(s[i + k]);
    if (d < 0) return false;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

// `cp` is a Unicode scalar value (not a surrogate, <= 0x10FFFF).
void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string line_prefix(int line) { return "line " + std::to_string(line) + ": "; }

// Resolves the escapes of a raw key or value of the logical line starting at `line`, and drops
// trailing unescaped whitespace.
Result<std::string, ConfigError> unescape(std::string_view raw, int line) {
  std::string out;
  size_t keep = 0;  // out[0, keep) ends with a non-blank or escaped character
  size_t i = 0;
  while (i < raw.size()) {
    char c = raw[i++];
    if (c != '\\') {
      out.push_back(c);
      if (!is_blank(c)) keep = out.size();
      continue;
    }
    // A trailing odd backslash was taken as a line continuation by the caller, so an escape
    // always has its character; stay safe anyway.
    if (i == raw.size()) break;
    char e = raw[i++];
    switch (e) {
      case 't': out.push_back('\t'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 'f': out.push_back('\f'); break;
      case 'u': {
        uint32_t cp = 0;
        if (!read_hex4(raw, i, &cp)) {
          return make_error(line_prefix(line) + "malformed \\uXXXX escape");
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: its low half must follow
          uint32_t low = 0;
          if (i + 2 <= raw.size() && raw[i] == '\\' && raw[i + 1] == 'u' &&
              read_hex4(raw, i + 2, &low) && low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          } else {
            return make_error(line_prefix(line) + "\\u escape with an unpaired surrogate");
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return make_error(line_prefix(line) + "\\u escape with an unpaired surrogate");
        }
        append_utf8(cp, &out);
        break;
      }
      default: out.push_back(e); break;  // \\ \= \: \# \! "\ " and any other: the character
    }
    keep = out.size();
  }
  out.resize(keep);
  return out;
}

// Splits one logical line (continuations joined, leading whitespace gone, not a comment) into
// key and value and stores them.
Status parse_logical_line(std::string_view s, int line, ConfigMap* out) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    if (c == '=' || c == ':' || is_blank(c)) break;
    ++i;
  }
  i = std::min(i, s.size());
  std::string_view raw_key = s.substr(0, i);
  // At most one '=' or ':' separates key and value, with optional whitespace around it.
  if (i < s.size() && (s[i] == '=' || s[i] == ':')) {
    ++i;
  } else {
    while (i < s.size() && is_blank(s[i])) ++i;
    if (i < s.size() && (s[i] == '=' || s[i] == ':')) ++i;
  }
  while (i < s.size() && is_blank(s[i])) ++i;
  std::string_view raw_value = s.substr(i);

  GANNET_ASSIGN_OR_RETURN(std::string key, unescape(raw_key, line));
  if (key.empty()) {
    return make_error(line_prefix(line) + "empty key in '" + std::string(s) +
                      "' (expected key=value)");
  }
  GANNET_ASSIGN_OR_RETURN(std::string value, unescape(raw_value, line));
  (*out)[std::move(key)] = std::move(value);  // a later duplicate wins
  return {};
}

}  // namespace

Result<ConfigMap, ConfigError> parse_properties(std::string_view text) {
  ConfigMap out;
  std::string logical;      // the logical line being assembled
  int logical_line = 0;     // the natural line it started on
  bool continuing = false;  // the previous natural line ended in an odd backslash
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    std::string_view natural = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (end == std::string_view::npos) {
      pos = text.size();
    } else {
      pos = end + ((text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? 2 : 1);
    }
    ++line_no;
    while (!natural.empty() && is_blank(natural.front())) natural.remove_prefix(1);
    if (!continuing) {
      // Blank and comment lines; a comment never continues, whatever it ends with.
      if (natural.empty() || natural.front() == '#' || natural.front() == '!') continue;
      logical.clear();
      logical_line = line_no;
    }
    size_t backslashes = 0;
    while (backslashes < natural.size() && natural[natural.size() - 1 - backslashes] == '\\') {
      ++backslashes;
    }
    continuing = backslashes % 2 == 1;
    if (continuing) natural.remove_suffix(1);
    logical.append(natural);
    if (!continuing) GANNET_RETURN_IF_ERROR(parse_logical_line(logical, logical_line, &out));
  }
  // A continuation at the end of the text ends the line there (as Java does).
  if (continuing) GANNET_RETURN_IF_ERROR(parse_logical_line(logical, logical_line, &out));
  return out;
}

Result<ConfigMap, ConfigError> load_properties_file(const std::string& path) {
  auto cannot_read = [&](int err) {
    return make_error("cannot read properties file " + path + ": " +
                      std::generic_category().message(err));
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return cannot_read(errno);
  std::string text;
  char buf[8192];
  size_t n = 0;
  bool too_large = false;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxPropertiesFileBytes) {
      too_large = true;
      break;
    }
  }
  int err = errno;
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return cannot_read(err);
  if (too_large) {
    return make_error("cannot read properties file " + path + ": larger than " +
                      std::to_string(kMaxPropertiesFileBytes) + " bytes");
  }
  auto parsed = parse_properties(text);
  if (!parsed.ok()) return make_error(path + ": " + parsed.error().message);
  return parsed;
}

Result<ConfigMap, ConfigError> apply_overrides(ConfigMap props,
                                               const std::vector<std::string>& overrides) {
  // Check them all first so that a bad one leaves nothing half-applied.
  std::vector<std::pair<std::string, std::string>> parsed;
  parsed.reserve(overrides.size());
  for (const std::string& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos) {
      return make_error("override '" + o + "': expected key=value");
    }
    std::string_view key = trim(std::string_view(o).substr(0, eq));
    if (key.empty()) return make_error("override '" + o + "': empty key");
    parsed.emplace_back(std::string(key), std::string(trim(std::string_view(o).substr(eq + 1))));
  }
  for (auto& [key, value] : parsed) props[key] = std::move(value);
  return props;
}

// ---- Value parsers ------------------------------------------------------------------------------

namespace {

// Reads settings by key and remembers which keys it was asked about, so the rest can go to
// ServerConfig::extra.
class Reader {
 public:
  explicit Reader(const ConfigMap& props) : props_(props) {}

  // The trimmed value of `key`, or nullopt when it is not set. Marks `key` as known.
  std::optional<std::string> get(const char* key) {
    known_.insert(key);
    auto it = props_.find(key);
    if (it == props_.end()) return std::nullopt;
    return std::string(trim(it->second));
  }

  ConfigMap unknown() const {
    ConfigMap out;
    for (const auto& [key, value] : props_) {
      if (known_.count(key) == 0) out.emplace(key, value);
    }
    return out;
  }

 private:
  const ConfigMap& props_;
  std::set<std::string> known_;
};

ConfigError missing(std::string_view key, std::string_view hint = {}) {
  std::string m = "missing required config " + std::string(key);
  if (!hint.empty()) m += " (" + std::string(hint) + ")";
  return make_error(std::move(m));
}

// A decimal integer of type T in [min, max]. Java's parseInt also takes a leading '+'.
template <typename T>
Result<T, ConfigError> parse_int(std::string_view key, std::string_view value, int64_t min,
                                 int64_t max = std::numeric_limits<T>::max()) {
  std::string_view s = value;
  if (s.size() > 1 && s[0] == '+' && s[1] >= '0' && s[1] <= '9') s.remove_prefix(1);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  bool whole = ptr == s.data() + s.size();
  if (ec == std::errc::result_out_of_range && whole) {
    v = s[0] == '-' ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  } else if (ec != std::errc() || !whole) {
    return bad_value(key, value, "not an integer");
  }
  if (v < min) return bad_value(key, value, "must be >= " + std::to_string(min));
  if (v > max) return bad_value(key, value, "must be <= " + std::to_string(max));
  return static_cast<T>(v);
}

// Sets *field from `key` when it is set. T is the key's type (its range); F the field's.
template <typename T, typename F>
Status read_int(Reader& r, const char* key, int64_t min, F* field) {
  auto value = r.get(key);
  if (!value) return {};
  GANNET_ASSIGN_OR_RETURN(*field, parse_int<T>(key, *value, min));
  return {};
}

// "true" or "false" in any case, as Kafka's ConfigDef reads booleans.
Status read_bool(Reader& r, const char* key, bool* field) {
  auto value = r.get(key);
  if (!value) return {};
  std::string lower = to_lower(*value);
  if (lower == "true") {
    *field = true;
  } else if (lower == "false") {
    *field = false;
  } else {
    return bad_value(key, *value, "must be true or false");
  }
  return {};
}

// A comma-separated list, entries trimmed; "" is the empty list; an empty entry is an error.
Result<std::vector<std::string>, ConfigError> parse_list(std::string_view key,
                                                         std::string_view value) {
  std::vector<std::string> out;
  if (value.empty()) return out;
  size_t pos = 0;
  while (true) {
    size_t comma = value.find(',', pos);
    std::string_view entry =
        trim(value.substr(pos, comma == std::string_view::npos ? comma : comma - pos));
    if (entry.empty()) return bad_value(key, value, "empty entry in the list");
    out.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Listener names: letters, digits, '_' and '-', upper-cased.
Result<std::string, ConfigError> parse_listener_name(std::string_view key, std::string_view value,
                                                     std::string_view name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return is_alnum(c) || c == '_' || c == '-';
      })) {
    return bad_value(key, value,
                     "bad listener name '" + std::string(name) + "' (letters, digits, _ and -)");
  }
  return to_upper(name);
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port" or "[ipv6]:port", one `entry` of the setting `key`=`value`; ports below
// `min_port` are refused. The host may be empty here; callers that need one check it.
Result<HostPort, ConfigError> parse_host_port(std::string_view key, std::string_view value,
                                              std::string_view entry, int min_port) {
  auto fail = [&](const std::string& reason) {
    return bad_value(key, value, "'" + std::string(entry) + "': " + reason);
  };
  std::string_view host;
  std::string_view port;
  if (!entry.empty() && entry.front() == '[') {
    size_t close = entry.find(']');
    if (close == std::string_view::npos || close + 1 >= entry.size() || entry[close + 1] != ':') {
      return fail("expected [ipv6-address]:port");
    }
    host = entry.substr(1, close - 1);
    port = entry.substr(close + 2);
    if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
          return hex_digit(c) >= 0 || c == ':' || c == '.' || c == '%' || is_alnum(c);
        })) {
      return fail("bad IPv6 address");
    }
  } else {
    size_t colon = entry.rfind(':');
    if (colon == std::string_view::npos) return fail("expected host:port");
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("an IPv6 address must be in brackets, [addr]:port");
    }
    if (!std::all_of(host.begin(), host.end(), [](char c) {
          return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '%';
        })) {
      return fail("bad host name");
    }
  }
  int64_t p = -1;
  if (!port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    p = 0;
    for (char c : port) p = p * 10 + (c - '0');
  }
  if (p < min_port || p > 65535) {
    return fail("port must be " + std::to_string(min_port) + "..65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

std::string render_address(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool is_wildcard_host(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

Result<std::vector<ProcessRole>, ConfigError> parse_roles(std::string_view key,
                                                          std::string_view value) {
  GANNET_ASSIGN_OR_RETURN(auto names, parse_list(key, value));
  if (names.empty()) return bad_value(key, value, "must contain broker and/or controller");
  std::vector<ProcessRole> roles;
  for (const std::string& name : names) {
    ProcessRole role;
    if (name == "broker") {
      role = ProcessRole::kBroker;
    } else if (name == "controller") {
      role = ProcessRole::kController;
    } else {
      return bad_value(key, value,
                       "unknown role '" + name + "' (expected broker and/or controller)");
    }
    if (std::find(roles.begin(), roles.end(), role) != roles.end()) {
      return bad_value(key, value, "duplicate role '" + name + "'");
    }
    roles.push_back(role);
  }
  return roles;
}

Result<std::vector<QuorumVoter>, ConfigError> parse_voters(std::string_view key,
                                                           std::string_view value) {
  GANNET_ASSIGN_OR_RETURN(auto entries, parse_list(key, value));
  std::vector<QuorumVoter> voters;
  for (const std::string& entry : entries) {
    size_t at = entry.find('@');
    if (at == std::string::npos) {
      return bad_value(key, value, "'" + entry + "': expected id@host:port");
    }
    auto id = parse_int<int32_t>(key, entry.substr(0, at), 0);
    if (!id.ok()) {
      return bad_value(key, value, "'" + entry + "': voter id must be an integer >= 0");
    }
    GANNET_ASSIGN_OR_RETURN(HostPort hp,
                            parse_host_port(key, value, std::string_view(entry).substr(at + 1), 1));
    if (hp.host.empty()) return bad_value(key, value, "'" + entry + "': empty host");
    for (const QuorumVoter& v : voters) {
      if (v.id == *id) {
        return bad_value(key, value, "duplicate voter id " + std::to_string(*id));
      }
    }
    voters.push_back(QuorumVoter{*id, std::move(hp.host), hp.port});
  }
  return voters;
}

Result<std::vector<Endpoint>, ConfigError> parse_listeners(std::string_view key,
                                                           std::string_view value) {
  GANNET_ASSIGN_OR_RETURN(auto entries, parse_list(key, value));
  if (entries.empty()) return bad_value(key, value, "must name at least one listener");
  std::vector<Endpoint> out;
  for (const std::string& entry : entries) {
    size_t sep = entry.find("://");
    if (sep == std::string::npos) {
      return bad_value(key, value, "'" + entry + "': expected NAME://host:port");
    }
    std::string_view name_part = std::string_view(entry).substr(0, sep);
    std::string_view rest = std::string_view(entry).substr(sep + 3);
    GANNET_ASSIGN_OR_RETURN(std::string name, parse_listener_name(key, value, name_part));
    GANNET_ASSIGN_OR_RETURN(HostPort hp, parse_host_port(key, value, rest, 0));
    for (const Endpoint& e : out) {
      if (e.name == name) return bad_value(key, value, "duplicate listener name " + name);
      // Two sockets cannot bind one port on overlapping addresses (port 0 picks a free one).
      if (hp.port != 0 && e.port == hp.port &&
          (e.host == hp.host || is_wildcard_host(e.host) || is_wildcard_host(hp.host))) {
        return bad_value(key, value,
                         "listeners " + e.name + " and " + name + " both bind port " +
                             std::to_string(hp.port));
      }
    }
    out.push_back(Endpoint{std::move(name), std::move(hp.host), hp.port});
  }
  return out;
}

Result<std::vector<std::string>, ConfigError> parse_listener_names(std::string_view key,
                                                                   std::string_view value) {
  GANNET_ASSIGN_OR_RETURN(auto entries, parse_list(key, value));
  if (entries.empty()) return bad_value(key, value, "must name at least one listener");
  std::vector<std::string> names;
  for (const std::string& entry : entries) {
    GANNET_ASSIGN_OR_RETURN(std::string name, parse_listener_name(key, value, entry));
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return bad_value(key, value, "duplicate listener name " + name);
    }
    names.push_back(std::move(name));
  }
  return names;
}

// Kafka's retention precedence: log.retention.ms, else .minutes, else .hours (default 168). Every
// key that is set must parse, used or not. A negative result means keep forever (-1); 0 is
// refused, as Kafka does.
Result<int64_t, ConfigError> read_retention_ms(Reader& r) {
  auto ms = r.get("log.retention.ms");
  auto minutes = r.get("log.retention.minutes");
  auto hours = r.get("log.retention.hours");
  int64_t ms_v = 0;
  int32_t minutes_v = 0;
  int32_t hours_v = kDefaultLogRetentionHours;
  if (ms) {
    GANNET_ASSIGN_OR_RETURN(ms_v, parse_int<int64_t>("log.retention.ms", *ms,
                                                     std::numeric_limits<int64_t>::min()));
  }
  if (minutes) {
    GANNET_ASSIGN_OR_RETURN(minutes_v, parse_int<int32_t>("log.retention.minutes", *minutes,
                                                          std::numeric_limits<int32_t>::min()));
  }
  if (hours) {
    GANNET_ASSIGN_OR_RETURN(hours_v, parse_int<int32_t>("log.retention.hours", *hours,
                                                        std::numeric_limits<int32_t>::min()));
  }
  // int32 * 3.6e6 fits easily in int64.
  const char* used_key = "log.retention.hours";
  std::string used_value = hours ? *hours : std::to_string(hours_v);
  int64_t result = hours_v * kMsPerHour;
  if (ms) {
    used_key = "log.retention.ms";
    used_value = *ms;
    result = ms_v;
  } else if (minutes) {
    used_key = "log.retention.minutes";
    used_value = *minutes;
    result = minutes_v * kMsPerMinute;
  }
  if (result == 0) return bad_value(used_key, used_value, "must be -1 (keep forever) or >= 1");
  return result < 0 ? storage::LogConfig::kNoLimit : result;
}

// Kafka's roll precedence: log.roll.ms, else log.roll.hours (default 168).
Result<int64_t, ConfigError> read_roll_ms(Reader& r) {
  auto ms = r.get("log.roll.ms");
  auto hours = r.get("log.roll.hours");
  int64_t result = storage::LogConfig().segment_ms;
  if (hours) {
    GANNET_ASSIGN_OR_RETURN(int32_t h, parse_int<int32_t>("log.roll.hours", *hours, 1));
    result = h * kMsPerHour;
  }
  if (ms) {
    GANNET_ASSIGN_OR_RETURN(result, parse_int<int64_t>("log.roll.ms", *ms, 1));
  }
  return result;
}

Result<storage::LogConfig, ConfigError> read_log_config(Reader& r) {
  storage::LogConfig c;  // storage's defaults are Kafka's broker defaults
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "log.segment.bytes", 14, &c.segment_bytes));
  GANNET_ASSIGN_OR_RETURN(c.segment_ms, read_roll_ms(r));
  GANNET_ASSIGN_OR_RETURN(c.retention_ms, read_retention_ms(r));
  if (auto v = r.get("log.retention.bytes")) {
    GANNET_ASSIGN_OR_RETURN(int64_t bytes, parse_int<int64_t>("log.retention.bytes", *v,
                                                              std::numeric_limits<int64_t>::min()));
    c.retention_bytes = bytes < 0 ? storage::LogConfig::kNoLimit : bytes;
  }
  GANNET_RETURN_IF_ERROR(
      read_int<int64_t>(r, "log.flush.interval.messages", 1, &c.flush_messages));
  GANNET_RETURN_IF_ERROR(read_int<int64_t>(r, "log.flush.interval.ms", 0, &c.flush_ms));
  GANNET_RETURN_IF_ERROR(
      read_int<int32_t>(r, "log.index.interval.bytes", 0, &c.index_interval_bytes));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "message.max.bytes", 0, &c.max_message_bytes));
  GANNET_RETURN_IF_ERROR(read_int<int64_t>(r, "producer.id.expiration.ms", 1, &c.producer_id_expiration_ms));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "producer.state.max.producers.per.partition", 1,
                                           &c.max_producers_per_partition));
  // The checks above cover storage's; this only guards against the two drifting apart.
  auto valid = c.validate();
  if (!valid.ok()) return make_error("log defaults: " + valid.error().message);
  return c;
}

// Escapes `s` so that parse_properties reads it back unchanged.
std::string escape(std::string_view s, bool is_key) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\f': out += "\\f"; break;
      case ' ':
        // Spaces end a key, and the parser trims them around a value.
        out += (is_key || i == 0 || i + 1 == s.size()) ? "\\ " : " ";
        break;
      case '=':
      case ':':
        if (is_key) out += '\\';
        out += c;
        break;
      case '#':
      case '!':
        if (is_key && i == 0) out += '\\';
        out += c;
        break;
      default: out += c; break;
    }
  }
  return out;
}

}  // namespace

// ---- Endpoint, QuorumVoter ----------------------------------------------------------------------

std::string Endpoint::address() const { return render_address(host, port); }

std::string Endpoint::to_string() const { return name + "://" + address(); }

std::string QuorumVoter::address() const { return render_address(host, port); }

std::string QuorumVoter::to_string() const { return std::to_string(id) + "@" + address(); }

// ---- ServerConfig -------------------------------------------------------------------------------

Result<ServerConfig, ConfigError> ServerConfig::from_properties(const ConfigMap& props) {
  Reader r(props);
  ServerConfig c;

  // Identity and roles.
  auto node_id = r.get("node.id");
  if (!node_id) return missing("node.id");
  GANNET_ASSIGN_OR_RETURN(c.node_id, parse_int<int32_t>("node.id", *node_id, 0));

  auto roles = r.get("process.roles");
  if (!roles) return missing("process.roles", "broker, controller or broker,controller");
  GANNET_ASSIGN_OR_RETURN(c.process_roles, parse_roles("process.roles", *roles));

  // Kafka's default is "", which means unset.
  auto voters = r.get("controller.quorum.voters");
  if (!voters || voters->empty()) {
    return missing("controller.quorum.voters", "id@host:port,... of the metadata quorum");
  }
  GANNET_ASSIGN_OR_RETURN(c.quorum_voters, parse_voters("controller.quorum.voters", *voters));

  std::string listeners = r.get("listeners").value_or(kDefaultListeners);
  GANNET_ASSIGN_OR_RETURN(c.listeners, parse_listeners("listeners", listeners));

  std::string controller_names = r.get("controller.listener.names").value_or("CONTROLLER");
  GANNET_ASSIGN_OR_RETURN(c.controller_listener_names,
                          parse_listener_names("controller.listener.names", controller_names));
  std::string grpc_names = r.get("grpc.listener.names").value_or("GRPC");
  GANNET_ASSIGN_OR_RETURN(c.grpc_listener_names, parse_listener_names("grpc.listener.names", grpc_names));
  std::string advertised = r.get("advertised.listeners").value_or("");
  if (!advertised.empty()) {
    GANNET_ASSIGN_OR_RETURN(c.advertised_listeners, parse_listeners("advertised.listeners", advertised));
  }
  const std::string protocol_map =
      r.get("listener.security.protocol.map")
          .value_or("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,GRPC:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                    "SASL_SSL:SASL_SSL");
  {
    GANNET_ASSIGN_OR_RETURN(auto entries, parse_list("listener.security.protocol.map", protocol_map));
    for (const std::string& entry : entries) {
      const size_t colon = entry.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size()) {
        return bad_value("listener.security.protocol.map", protocol_map, "entries are NAME:PROTOCOL");
      }
      const std::string protocol = to_upper(entry.substr(colon + 1));
      if (protocol != "PLAINTEXT" && protocol != "SSL" && protocol != "SASL_PLAINTEXT" && protocol != "SASL_SSL") {
        return bad_value("listener.security.protocol.map", protocol_map,
                         "protocols are PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL, not " + protocol);
      }
      c.listener_security_protocol_map[to_upper(entry.substr(0, colon))] = protocol;
    }
  }
  c.inter_broker_listener_name = to_upper(r.get("inter.broker.listener.name").value_or(""));
  if (auto v = r.get("sasl.enabled.mechanisms")) {
    GANNET_ASSIGN_OR_RETURN(c.sasl_enabled_mechanisms, parse_list("sasl.enabled.mechanisms", *v));
    for (std::string& m : c.sasl_enabled_mechanisms) {
      m = to_upper(m);
      if (m != "PLAIN" && m != "SCRAM-SHA-256" && m != "SCRAM-SHA-512") {
        return bad_value("sasl.enabled.mechanisms", *v, "mechanisms are PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512");
      }
    }
  }
  for (const char* key : {"ssl.keystore.type", "ssl.truststore.type"}) {
    if (auto v = r.get(key); v && to_upper(*v) != "PEM") return bad_value(key, *v, "only PEM files are supported");
  }
  c.authorizer_class_name = r.get("authorizer.class.name").value_or("");
  if (auto v = r.get("super.users")) {
    size_t at = 0;
    while (at <= v->size()) {
      size_t semi = v->find(';', at);
      if (semi == std::string::npos) semi = v->size();
      std::string p = v->substr(at, semi - at);
      p.erase(0, p.find_first_not_of(" \t"));
      p.erase(p.find_last_not_of(" \t") + 1);
      if (!p.empty()) {
        if (p.find(':') == std::string::npos || p.front() == ':' || p.back() == ':') {
          return bad_value("super.users", *v, "principals are Type:name (User:admin), separated by ';'");
        }
        c.super_users.push_back(p);
      }
      at = semi + 1;
    }
  }
  GANNET_RETURN_IF_ERROR(read_bool(r, "allow.everyone.if.no.acl.found", &c.allow_everyone_if_no_acl_found));
  c.ssl_keystore_location = r.get("ssl.keystore.location").value_or("");
  c.ssl_key_password = r.get("ssl.key.password").value_or("");
  c.ssl_truststore_location = r.get("ssl.truststore.location").value_or("");
  c.ssl_cipher_suites = r.get("ssl.cipher.suites").value_or("");
  if (auto v = r.get("ssl.principal.mapping.rules")) {
    std::string why;
    if (!parse_principal_rules(*v, &why)) return bad_value("ssl.principal.mapping.rules", *v, why);
    c.ssl_principal_mapping_rules = *v;
  }
  if (auto v = r.get("ssl.client.auth")) {
    c.ssl_client_auth = to_lower(*v);
    if (c.ssl_client_auth != "none" && c.ssl_client_auth != "requested" && c.ssl_client_auth != "required") {
      return bad_value("ssl.client.auth", *v, "none, requested or required");
    }
  }
  if (auto v = r.get("ssl.enabled.protocols")) {
    GANNET_ASSIGN_OR_RETURN(c.ssl_enabled_protocols, parse_list("ssl.enabled.protocols", *v));
    if (c.ssl_enabled_protocols.empty()) return bad_value("ssl.enabled.protocols", *v, "must name a protocol");
    for (const std::string& p : c.ssl_enabled_protocols) {
      if (p != "TLSv1.2" && p != "TLSv1.3") return bad_value("ssl.enabled.protocols", *v, "TLSv1.2 and TLSv1.3");
    }
  }

  // Storage: log.dirs wins over log.dir.
  auto log_dirs = r.get("log.dirs");
  auto log_dir = r.get("log.dir");
  const char* dirs_key = log_dirs ? "log.dirs" : "log.dir";
  if (!log_dirs && !log_dir) return missing("log.dirs", "or log.dir");
  const std::string& dirs_value = log_dirs ? *log_dirs : *log_dir;
  GANNET_ASSIGN_OR_RETURN(c.log_dirs, parse_list(dirs_key, dirs_value));
  if (c.log_dirs.empty()) return bad_value(dirs_key, dirs_value, "must name a directory");
  for (size_t i = 0; i < c.log_dirs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.log_dirs[i] == c.log_dirs[j]) {
        return bad_value(dirs_key, dirs_value, "duplicate directory " + c.log_dirs[i]);
      }
    }
  }

  if (auto cluster_id = r.get("cluster.id")) {
    if (cluster_id->empty()) return bad_value("cluster.id", "", "must not be empty when set");
    c.cluster_id = *cluster_id;
  }

  // Timers and defaults for new topics.
  GANNET_RETURN_IF_ERROR(
      read_int<int32_t>(r, "broker.heartbeat.interval.ms", 1, &c.broker_heartbeat_interval_ms));
  GANNET_RETURN_IF_ERROR(
      read_int<int32_t>(r, "broker.session.timeout.ms", 1, &c.broker_session_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "controller.quorum.election.timeout.ms", 1,
                                           &c.controller_quorum_election_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "controller.quorum.fetch.timeout.ms", 1,
                                           &c.controller_quorum_fetch_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "controller.quorum.election.backoff.max.ms", 1,
                                           &c.controller_quorum_election_backoff_max_ms));
  GANNET_RETURN_IF_ERROR(
      read_int<int64_t>(r, "replica.lag.time.max.ms", 1, &c.replica_lag_time_max_ms));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "num.partitions", 1, &c.num_partitions));
  GANNET_RETURN_IF_ERROR(
      read_int<int16_t>(r, "default.replication.factor", 1, &c.default_replication_factor));
  GANNET_RETURN_IF_ERROR(read_int<int32_t>(r, "min.insync.replicas", 1, &c.min_insync_replicas));
  GANNET_RETURN_IF_ERROR(
      read_bool(r, "unclean.leader.election.enable", &c.unclean_leader_election_enable));
  GANNET_RETURN_IF_ERROR(
      read_int<int32_t>(r, "offsets.topic.num.partitions", 1, &c.offsets_topic_num_partitions));
  GANNET_RETURN_IF_ERROR(read_int<int16_t>(r, "offsets.topic.replication.factor", 1,
                                           &c.offsets_topic_replication_factor));
  GANNET_RETURN_IF_ERROR(read_bool(r, "auto.create.topics.enable", &c.auto_create_topics_enable));
  GANNET_ASSIGN_OR_RETURN(c.default_log_config, read_log_config(r));

  // Broker tuning.
  auto read_ranged = [&](const char* key, int64_t min, int64_t max, auto* field) -> Status {
    auto value = r.get(key);
    if (!value) return {};
    using F = std::remove_pointer_t<decltype(field)>;
    GANNET_ASSIGN_OR_RETURN(*field, parse_int<F>(key, *value, min, max));
    return {};
  };
  GANNET_RETURN_IF_ERROR(read_ranged("replica.fetch.wait.max.ms", 0, 30'000, &c.replica_fetch_wait_max_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("replica.fetch.max.bytes", 1024, 32 << 20, &c.replica_fetch_max_bytes));
  GANNET_RETURN_IF_ERROR(read_ranged("fetch.max.bytes", 1024, 48 << 20, &c.fetch_max_bytes));
  GANNET_RETURN_IF_ERROR(read_ranged("num.network.threads", 1, 64, &c.num_network_threads));
  GANNET_RETURN_IF_ERROR(read_ranged("socket.request.max.bytes", 1024, 1 << 30, &c.socket_request_max_bytes));
  GANNET_RETURN_IF_ERROR(read_ranged("connections.max.idle.ms", 1, INT64_MAX, &c.connections_max_idle_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("max.connections", 1, INT32_MAX, &c.max_connections));
  GANNET_RETURN_IF_ERROR(read_ranged("max.connections.per.ip", 1, INT32_MAX, &c.max_connections_per_ip));
  GANNET_RETURN_IF_ERROR(read_ranged("fetch.response.memory.max.bytes", 1 << 20, INT64_MAX,
                                     &c.fetch_response_memory_max_bytes));
  GANNET_RETURN_IF_ERROR(read_ranged("log.retention.check.interval.ms", 1, INT64_MAX, &c.log_retention_check_interval_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("replica.high.watermark.checkpoint.interval.ms", 1, INT64_MAX,
                                     &c.replica_high_watermark_checkpoint_interval_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("offsets.topic.segment.bytes", 1, INT32_MAX, &c.offsets_topic_segment_bytes));
  GANNET_RETURN_IF_ERROR(read_ranged("group.min.session.timeout.ms", 1, INT32_MAX, &c.group_min_session_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("group.max.session.timeout.ms", 1, INT32_MAX, &c.group_max_session_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("group.initial.rebalance.delay.ms", 0, INT32_MAX, &c.group_initial_rebalance_delay_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("group.max.size", 1, INT32_MAX, &c.group_max_size));
  GANNET_RETURN_IF_ERROR(read_ranged("reserved.broker.max.id", 0, INT32_MAX - 1, &c.reserved_broker_max_id));
  GANNET_RETURN_IF_ERROR(read_ranged("group.max.groups", 1, INT32_MAX, &c.group_max_groups));
  GANNET_RETURN_IF_ERROR(read_ranged("group.consumer.session.timeout.ms", 1, INT32_MAX,
                                     &c.group_consumer_session_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("group.consumer.heartbeat.interval.ms", 1, INT32_MAX,
                                     &c.group_consumer_heartbeat_interval_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("group.consumer.max.size", 1, INT32_MAX, &c.group_consumer_max_size));
  if (auto v = r.get("metrics.http.listener")) {
    const size_t colon = v->rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon + 1 < v->size() &&
        std::all_of(v->begin() + static_cast<long>(colon) + 1, v->end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
        v->size() - colon - 1 <= 5) {
      port = std::stoi(v->substr(colon + 1));
    }
    if (port < 0 || port > 65535) return bad_value("metrics.http.listener", *v, "expected host:port, e.g. 127.0.0.1:9404");
    c.metrics_http_listener = *v;
  }
  if (auto v = r.get("group.consumer.assignors")) {
    GANNET_ASSIGN_OR_RETURN(auto names, parse_list("group.consumer.assignors", *v));
    if (names.empty()) return bad_value("group.consumer.assignors", *v, "must name at least one assignor");
    for (const auto& n : names) {
      if (n != "uniform" && n != "range") {
        return bad_value("group.consumer.assignors", *v, "'" + n + "' is not an assignor: uniform or range");
      }
    }
    c.group_consumer_assignors = names;
  }
  if (c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms) {
    return bad_value("group.consumer.heartbeat.interval.ms", std::to_string(c.group_consumer_heartbeat_interval_ms),
                     "must be less than group.consumer.session.timeout.ms=" +
                         std::to_string(c.group_consumer_session_timeout_ms));
  }
  // In minutes, as Kafka's key; kept below 2^63 ms.
  GANNET_RETURN_IF_ERROR(read_ranged("offsets.retention.minutes", 1, INT32_MAX, &c.offsets_retention_minutes));
  GANNET_RETURN_IF_ERROR(read_ranged("offsets.retention.check.interval.ms", 1, INT64_MAX,
                                     &c.offsets_retention_check_interval_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("offsets.commit.timeout.ms", 1, INT32_MAX, &c.offsets_commit_timeout_ms));
  GANNET_RETURN_IF_ERROR(read_ranged("offset.metadata.max.bytes", 0, INT32_MAX, &c.offset_metadata_max_bytes));
  GANNET_RETURN_IF_ERROR(read_bool(r, "auto.leader.rebalance.enable", &c.auto_leader_rebalance_enable));
  // Seconds, as Kafka's key; kept below 2^63 ms.
  GANNET_RETURN_IF_ERROR(read_ranged("leader.imbalance.check.interval.seconds", 1, INT64_MAX / 1000,
                                     &c.leader_imbalance_check_interval_seconds));
  if (auto rack = r.get("broker.rack")) {
    if (rack->empty()) return bad_value("broker.rack", "", "must not be empty when set");
    c.broker_rack = *rack;
  }
  GANNET_RETURN_IF_ERROR(read_ranged("metadata.snapshot.every.records", 1, INT64_MAX, &c.metadata_snapshot_every_records));
  GANNET_RETURN_IF_ERROR(read_bool(r, "quorum.append.rpc.enable", &c.quorum_append_rpc_enable));
  if (c.group_max_session_timeout_ms < c.group_min_session_timeout_ms) {
    return bad_value("group.max.session.timeout.ms", std::to_string(c.group_max_session_timeout_ms),
                     "must be >= group.min.session.timeout.ms=" + std::to_string(c.group_min_session_timeout_ms));
  }

  c.extra = r.unknown();

  // Rules between keys (Kafka's KRaft checks).
  if (c.broker_session_timeout_ms <= c.broker_heartbeat_interval_ms) {
    return bad_value("broker.session.timeout.ms", std::to_string(c.broker_session_timeout_ms),
                     "must be greater than broker.heartbeat.interval.ms=" +
                         std::to_string(c.broker_heartbeat_interval_ms));
  }
  if (c.node_id > c.reserved_broker_max_id) {
    return make_error("node.id=" + *node_id + " is above reserved.broker.max.id=" +
                      std::to_string(c.reserved_broker_max_id) + ": node ids are 0 to reserved.broker.max.id");
  }
  for (const QuorumVoter& v : c.quorum_voters) {
    if (v.id > c.reserved_broker_max_id) {
      return make_error("controller.quorum.voters=" + *voters + " names node " + std::to_string(v.id) +
                        ", above reserved.broker.max.id=" + std::to_string(c.reserved_broker_max_id));
    }
  }
  const bool voter = std::any_of(c.quorum_voters.begin(), c.quorum_voters.end(),
                                 [&](const QuorumVoter& v) { return v.id == c.node_id; });
  if (c.is_controller() && !voter) {
    return make_error("node.id=" + *node_id + " is not in controller.quorum.voters=" + *voters +
                      ": a controller must be one of the voters");
  }
  if (!c.is_controller() && voter) {
    return make_error("node.id=" + *node_id + " is in controller.quorum.voters=" + *voters +
                      ": a node without the controller role must not be a voter");
  }
  auto is_controller_listener = [&](const Endpoint& e) {
    return std::find(c.controller_listener_names.begin(), c.controller_listener_names.end(),
                     e.name) != c.controller_listener_names.end();
  };
  if (c.is_controller()) {
    for (const std::string& name : c.controller_listener_names) {
      if (!c.listener(name)) {
        return make_error("controller.listener.names=" + controller_names + ": no listener " +
                          name + " in listeners=" + listeners +
                          " (a controller listens on every controller listener)");
      }
    }
  }
  for (const Endpoint& e : c.listeners) {
    if (c.is_controller() && !c.is_broker() && !is_controller_listener(e)) {
      return make_error("listeners=" + listeners + ": listener " + e.name +
                        " is not in controller.listener.names=" + controller_names +
                        " (process.roles=controller has only controller listeners)");
    }
    if (c.is_broker() && !c.is_controller() && is_controller_listener(e)) {
      return make_error("listeners=" + listeners + ": controller listener " + e.name +
                        " (controller.listener.names=" + controller_names +
                        ") on a node with process.roles=broker");
    }
  }
  if (c.is_broker() && c.broker_listeners().empty()) {
    return make_error("listeners=" + listeners +
                      ": a broker needs a listener not in controller.listener.names=" +
                      controller_names);
  }
  if (c.is_broker()) {
    int grpc = 0;
    for (const Endpoint& e : c.broker_listeners()) {
      grpc += std::count(c.grpc_listener_names.begin(), c.grpc_listener_names.end(), e.name) > 0 ? 1 : 0;
    }
    if (grpc != 1) {
      return make_error("listeners=" + listeners + ": a broker needs exactly one listener named in grpc.listener.names=" +
                        grpc_names + " (its gRPC API, over which followers fetch); it has " + std::to_string(grpc));
    }
    if (!c.inter_broker_listener_name.empty() && c.inter_broker_listener_name != c.grpc_listener()->name) {
      return make_error("inter.broker.listener.name=" + c.inter_broker_listener_name + " must be the gRPC listener " +
                        c.grpc_listener()->name + " (followers fetch over gRPC)");
    }
  }
  for (const Endpoint& e : c.listeners) {
    if (!c.listener_security_protocol_map.count(e.name) && e.name != "PLAINTEXT") {
      return make_error("listener " + e.name + " of listeners=" + listeners +
                        " is not in listener.security.protocol.map=" + protocol_map);
    }
    const std::string protocol = c.security_protocol(e.name);
    const bool kafka = std::count(c.controller_listener_names.begin(), c.controller_listener_names.end(), e.name) == 0 &&
                       std::count(c.grpc_listener_names.begin(), c.grpc_listener_names.end(), e.name) == 0;
    if (protocol != "PLAINTEXT" && protocol != "SSL" && !kafka) {
      return make_error("listener " + e.name + " maps to " + protocol +
                        " in listener.security.protocol.map, but SASL is served on Kafka listeners only "
                        "(the gRPC and controller listeners are PLAINTEXT or SSL)");
    }
    if (protocol == "SSL" && !kafka) {
      if (c.ssl_truststore_location.empty()) {
        return make_error("listener " + e.name + " is SSL: ssl.truststore.location must name the CA certificates "
                          "the nodes' certificates are checked against (nodes authenticate each other)");
      }
      if (c.super_users.empty()) {
        return make_error("listener " + e.name + " is SSL: super.users must name the nodes' own principals "
                          "(User:<certificate subject>), the only callers the quorum, the controller and replica "
                          "fetches answer");
      }
    }
    if ((protocol == "SSL" || protocol == "SASL_SSL") && c.ssl_keystore_location.empty()) {
      return make_error("listener " + e.name + " is " + protocol +
                        ": ssl.keystore.location must name a PEM file with its private key and certificate");
    }
  }
  for (const Endpoint& a : c.advertised_listeners) {
    auto l = c.listener(a.name);
    if (!l || std::count(c.controller_listener_names.begin(), c.controller_listener_names.end(), a.name)) {
      return make_error("advertised.listeners=" + advertised + ": " + a.name + " is not a broker listener");
    }
    if (a.host.empty() || a.host == "0.0.0.0" || a.host == "::") {
      return make_error("advertised.listeners=" + advertised + ": " + a.name +
                        " must name a host clients can dial, not \"" + a.host + "\"");
    }
  }
  return c;
}

std::vector<std::string> ServerConfig::security_warnings() const {
  std::vector<std::string> out;
  auto loopback = [](const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  };
  for (const Endpoint& e : listeners) {
    const std::string protocol = security_protocol(e.name);
    const bool kafka = std::count(controller_listener_names.begin(), controller_listener_names.end(), e.name) == 0 &&
                       std::count(grpc_listener_names.begin(), grpc_listener_names.end(), e.name) == 0;
    const bool authenticated = protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL" ||
                               (protocol == "SSL" && (!kafka || ssl_client_auth == "required"));
    if (!authenticated && !loopback(e.host)) {
      out.push_back("listener " + e.name + " (" + protocol + ") on " + (e.host.empty() ? "every interface" : e.host) +
                    ":" + std::to_string(e.port) +
                    " authenticates nobody: anyone who reaches it may use it (see the README's \"Securing a cluster\")");
    }
    if (!authorizer_class_name.empty() && !kafka && protocol == "PLAINTEXT" &&
        std::count(grpc_listener_names.begin(), grpc_listener_names.end(), e.name) > 0) {
      out.push_back("authorizer.class.name is set but gRPC listener " + e.name +
                    " is PLAINTEXT: its callers are not authorized, so they bypass the ACLs (map it to SSL)");
    }
  }
  if (!metrics_http_listener.empty()) {
    const std::string host = metrics_http_listener.substr(0, metrics_http_listener.rfind(':'));
    if (!loopback(host)) {
      out.push_back("metrics.http.listener=" + metrics_http_listener +
                    " serves metrics and the web console without authentication: bind it to loopback or a "
                    "management network");
    }
  }
  return out;
}

std::string ServerConfig::security_protocol(const std::string& listener) const {
  auto it = listener_security_protocol_map.find(listener);
  return it == listener_security_protocol_map.end() ? "PLAINTEXT" : it->second;
}

bool ServerConfig::is_broker() const {
  return std::find(process_roles.begin(), process_roles.end(), ProcessRole::kBroker) !=
         process_roles.end();
}

bool ServerConfig::is_controller() const {
  return std::find(process_roles.begin(), process_roles.end(), ProcessRole::kController) !=
         process_roles.end();
}

std::optional<Endpoint> ServerConfig::listener(std::string_view name) const {
  std::string wanted = to_upper(name);
  for (const Endpoint& e : listeners) {
    if (e.name == wanted) return e;
  }
  return std::nullopt;
}

std::vector<Endpoint> ServerConfig::broker_listeners() const {
  std::vector<Endpoint> out;
  for (const Endpoint& e : listeners) {
    if (std::find(controller_listener_names.begin(), controller_listener_names.end(), e.name) ==
        controller_listener_names.end()) {
      out.push_back(e);
    }
  }
  return out;
}

std::optional<Endpoint> ServerConfig::grpc_listener() const {
  for (const Endpoint& e : broker_listeners()) {
    if (std::find(grpc_listener_names.begin(), grpc_listener_names.end(), e.name) != grpc_listener_names.end()) return e;
  }
  return std::nullopt;
}

std::vector<Endpoint> ServerConfig::kafka_listeners() const {
  std::vector<Endpoint> out;
  for (const Endpoint& e : broker_listeners()) {
    if (std::find(grpc_listener_names.begin(), grpc_listener_names.end(), e.name) == grpc_listener_names.end()) {
      out.push_back(e);
    }
  }
  return out;
}

Endpoint ServerConfig::advertised(const Endpoint& listener) const {
  for (const Endpoint& a : advertised_listeners) {
    if (a.name == listener.name) return a;
  }
  Endpoint e = listener;
  if (e.host.empty() || e.host == "0.0.0.0" || e.host == "::") e.host = "127.0.0.1";
  return e;
}

ConfigMap ServerConfig::to_properties() const {
  ConfigMap m = extra;  // unknown keys never collide with the known ones below
  auto set = [&](const char* key, std::string value) { m[key] = std::move(value); };
  auto num = [&](const char* key, int64_t value) { m[key] = std::to_string(value); };
  auto flag = [&](const char* key, bool value) { m[key] = value ? "true" : "false"; };

  num("node.id", node_id);
  num("reserved.broker.max.id", reserved_broker_max_id);
  set("process.roles", join(process_roles, [](ProcessRole role) {
        return std::string(role == ProcessRole::kBroker ? "broker" : "controller");
      }));
  set("controller.quorum.voters", join(quorum_voters, [](const QuorumVoter& v) {
        return v.to_string();
      }));
  set("listeners", join(listeners, [](const Endpoint& e) { return e.to_string(); }));
  set("controller.listener.names",
      join(controller_listener_names, [](const std::string& s) { return s; }));
  set("grpc.listener.names", join(grpc_listener_names, [](const std::string& s) { return s; }));
  if (!advertised_listeners.empty()) {
    set("advertised.listeners", join(advertised_listeners, [](const Endpoint& e) { return e.to_string(); }));
  }
  {
    std::vector<std::string> entries;
    for (const auto& [name, protocol] : listener_security_protocol_map) entries.push_back(name + ":" + protocol);
    set("listener.security.protocol.map", join(entries, [](const std::string& s) { return s; }));
  }
  if (!inter_broker_listener_name.empty()) set("inter.broker.listener.name", inter_broker_listener_name);
  set("sasl.enabled.mechanisms", join(sasl_enabled_mechanisms, [](const std::string& s) { return s; }));
  if (!ssl_keystore_location.empty()) set("ssl.keystore.location", ssl_keystore_location);
  if (!ssl_key_password.empty()) set("ssl.key.password", ssl_key_password);
  if (!ssl_truststore_location.empty()) set("ssl.truststore.location", ssl_truststore_location);
  set("ssl.client.auth", ssl_client_auth);
  if (!authorizer_class_name.empty()) set("authorizer.class.name", authorizer_class_name);
  if (!super_users.empty()) set("super.users", join(super_users, [](const std::string& s) { return s; }, ";"));
  flag("allow.everyone.if.no.acl.found", allow_everyone_if_no_acl_found);
  set("ssl.enabled.protocols", join(ssl_enabled_protocols, [](const std::string& s) { return s; }));
  if (!ssl_cipher_suites.empty()) set("ssl.cipher.suites", ssl_cipher_suites);
  set("ssl.principal.mapping.rules", ssl_principal_mapping_rules);
  num("num.network.threads", num_network_threads);
  num("socket.request.max.bytes", socket_request_max_bytes);
  num("connections.max.idle.ms", connections_max_idle_ms);
  num("max.connections", max_connections);
  num("max.connections.per.ip", max_connections_per_ip);
  set("log.dirs", join(log_dirs, [](const std::string& s) { return s; }));
  if (cluster_id) set("cluster.id", *cluster_id);

  num("broker.heartbeat.interval.ms", broker_heartbeat_interval_ms);
  num("broker.session.timeout.ms", broker_session_timeout_ms);
  num("controller.quorum.election.timeout.ms", controller_quorum_election_timeout_ms);
  num("controller.quorum.fetch.timeout.ms", controller_quorum_fetch_timeout_ms);
  num("controller.quorum.election.backoff.max.ms", controller_quorum_election_backoff_max_ms);
  num("replica.lag.time.max.ms", replica_lag_time_max_ms);
  num("num.partitions", num_partitions);
  num("default.replication.factor", default_replication_factor);
  num("min.insync.replicas", min_insync_replicas);
  flag("unclean.leader.election.enable", unclean_leader_election_enable);
  num("offsets.topic.num.partitions", offsets_topic_num_partitions);
  num("offsets.topic.replication.factor", offsets_topic_replication_factor);
  flag("auto.create.topics.enable", auto_create_topics_enable);
  num("replica.fetch.wait.max.ms", replica_fetch_wait_max_ms);
  num("replica.fetch.max.bytes", replica_fetch_max_bytes);
  num("fetch.max.bytes", fetch_max_bytes);
  num("fetch.response.memory.max.bytes", fetch_response_memory_max_bytes);
  num("log.retention.check.interval.ms", log_retention_check_interval_ms);
  num("replica.high.watermark.checkpoint.interval.ms", replica_high_watermark_checkpoint_interval_ms);
  num("offsets.topic.segment.bytes", offsets_topic_segment_bytes);
  num("group.min.session.timeout.ms", group_min_session_timeout_ms);
  num("group.max.session.timeout.ms", group_max_session_timeout_ms);
  num("group.initial.rebalance.delay.ms", group_initial_rebalance_delay_ms);
  num("group.max.size", group_max_size);
  num("group.max.groups", group_max_groups);
  num("group.consumer.session.timeout.ms", group_consumer_session_timeout_ms);
  num("group.consumer.heartbeat.interval.ms", group_consumer_heartbeat_interval_ms);
  num("group.consumer.max.size", group_consumer_max_size);
  set("group.consumer.assignors", join(group_consumer_assignors, [](const std::string& s) { return s; }));
  if (!metrics_http_listener.empty()) set("metrics.http.listener", metrics_http_listener);
  num("offsets.retention.minutes", offsets_retention_minutes);
  num("offsets.retention.check.interval.ms", offsets_retention_check_interval_ms);
  num("offsets.commit.timeout.ms", offsets_commit_timeout_ms);
  num("offset.metadata.max.bytes", offset_metadata_max_bytes);
  flag("auto.leader.rebalance.enable", auto_leader_rebalance_enable);
  num("leader.imbalance.check.interval.seconds", leader_imbalance_check_interval_seconds);
  if (broker_rack) set("broker.rack", *broker_rack);
  num("metadata.snapshot.every.records", metadata_snapshot_every_records);
  flag("quorum.append.rpc.enable", quorum_append_rpc_enable);

  const storage::LogConfig& lc = default_log_config;
  num("log.segment.bytes", lc.segment_bytes);
  num("log.roll.ms", lc.segment_ms);
  num("log.retention.ms", lc.retention_ms);
  num("log.retention.bytes", lc.retention_bytes);
  num("log.flush.interval.messages", lc.flush_messages);
  num("log.flush.interval.ms", lc.flush_ms);
  num("log.index.interval.bytes", lc.index_interval_bytes);
  num("message.max.bytes", lc.max_message_bytes);
  num("producer.id.expiration.ms", lc.producer_id_expiration_ms);
  num("producer.state.max.producers.per.partition", lc.max_producers_per_partition);
  return m;
}

std::string ServerConfig::describe() const {
  std::string out;
  for (const auto& [key, value] : to_properties()) {  // std::map: sorted by key
    std::string lower = to_lower(key);
    bool hidden = key == "ssl.key.password" ||
                  (extra.count(key) != 0 &&
                   (lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos));
    out += escape(key, /*is_key=*/true);
    out += '=';
    out += hidden ? "[hidden]" : escape(value, /*is_key=*/false);
    out += '\n';
  }
  return out;
}

}  // namespace gannet::broker
