#include "tools/cli.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace gannet::tools {

// ---- Arguments ----------------------------------------------------------------------------------

std::optional<std::string> Args::last(const std::string& flag) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::all(const std::string& flag) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::string> Args::operands() const {
  if (positional.size() <= 2) return {};
  return std::vector<std::string>(positional.begin() + 2, positional.end());
}

Result<Args, std::string> parse_args(const std::vector<std::string>& args,
                                     const std::set<std::string>& boolean_flags) {
  Args a;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string s = args[i];
    if (!flags_done && s == "-h") s = "--help";
    if (flags_done || s.rfind("--", 0) != 0) {
      a.positional.push_back(s);
      continue;
    }
    if (s == "--") {
      flags_done = true;
      continue;
    }
    std::string name = s.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      if (boolean_flags.count(name)) return std::string("flag --" + name + " takes no value");
    } else if (!boolean_flags.count(name)) {
      if (i + 1 == args.size()) return std::string("flag --" + name + " needs a value");
      value = args[++i];
    }
    if (name.empty()) return std::string("bad flag " + s);
    a.flags[name].push_back(std::move(value));
  }
  return a;
}

std::optional<int32_t> parse_int32(std::string_view s) {
  int32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// ---- Json ---------------------------------------------------------------------------------------

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

Json& Json::key(std::string_view k) {
  separate();
  out_ += json_quote(k);
  out_ += ':';
  after_key_ = true;
  return *this;
}

Json& Json::string(std::string_view v) {
  separate();
  out_ += json_quote(v);
  return *this;
}

Json& Json::number(int64_t v) {
  separate();
  out_ += std::to_string(v);
  return *this;
}

Json& Json::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}

void Json::print() const { std::printf("%s\n", out_.c_str()); }

Json& Json::open(char c) {
  separate();
  out_ += c;
  first_.push_back(true);
  return *this;
}

Json& Json::close(char c) {
  out_ += c;
  if (!first_.empty()) first_.pop_back();
  return *this;
}

// A comma before every element but the first of its container; none between key and value.
void Json::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (first_.empty()) return;
  if (!first_.back()) out_ += ',';
  first_.back() = false;
}

// ---- Table --------------------------------------------------------------------------------------

std::string Table::render(std::string_view indent) const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line(indent);
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

void Table::print(std::string_view indent) const { std::fputs(render(indent).c_str(), stdout); }

std::string uuid_text(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes.size() == 16 && (i == 4 || i == 6 || i == 8 || i == 10)) out += '-';
    auto b = static_cast<unsigned char>(bytes[i]);
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

}  // namespace gannet::tools
