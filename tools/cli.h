// The plumbing of the gannet command line, apart from any RPC: the argument parser, a JSON writer
// (no external JSON library) and a text table. tools/gannet.cc holds the commands.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace gannet::tools {

// ---- Arguments ----------------------------------------------------------------------------------

// A parsed command line: `gannet GROUP COMMAND OPERAND... --flag value ...`.
struct Args {
  std::vector<std::string> positional;                    // command words, then operands
  std::map<std::string, std::vector<std::string>> flags;  // every value of each flag, in order

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  // The last value given (a repeated single-valued flag: the last one wins).
  std::optional<std::string> last(const std::string& flag) const;
  // Every value given, in order (repeatable flags such as --config).
  std::vector<std::string> all(const std::string& flag) const;
  // The positionals after the two command words.
  std::vector<std::string> operands() const;
};

// Parses `args` (without the program name). A flag is `--name value` or `--name=value`, except
// the `boolean_flags`, which take no value (`--name`; `--name=x` is an error). Every occurrence
// of a flag is kept. `-h` is `--help`. Anything else not starting with "--" is a positional (so
// "-5" is an operand), and so is everything after a lone `--`. The error is a usage message.
Result<Args, std::string> parse_args(const std::vector<std::string>& args,
                                     const std::set<std::string>& boolean_flags);

// A whole decimal int32 (optional '-'), or nullopt.
std::optional<int32_t> parse_int32(std::string_view s);

// `s` cut at every `sep` ("" gives one empty part).
std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// ---- Output -------------------------------------------------------------------------------------

// A JSON document written front to back; it places the commas. Strings are escaped (quote,
// backslash, control characters as \n, \t, ... or \u00XX); other bytes pass through unchanged
// (the strings printed come from protobuf, which guarantees UTF-8). Callers keep begin/end
// balanced and put a key before each value inside an object.
class Json {
 public:
  Json& begin_object() { return open('{'); }
  Json& end_object() { return close('}'); }
  Json& begin_array() { return open('['); }
  Json& end_array() { return close(']'); }
  Json& key(std::string_view k);
  Json& string(std::string_view v);
  Json& number(int64_t v);
  Json& boolean(bool v);

  Json& field(std::string_view k, std::string_view v) { return key(k).string(v); }
  Json& field(std::string_view k, int64_t v) { return key(k).number(v); }
  // Not an overload of field(): a string literal would convert to bool.
  Json& field_bool(std::string_view k, bool v) { return key(k).boolean(v); }
  template <typename Ints>
  Json& int_array(std::string_view k, const Ints& values) {
    key(k).begin_array();
    for (int64_t v : values) number(v);
    return end_array();
  }

  const std::string& str() const { return out_; }
  // Prints the document and a newline on stdout.
  void print() const;

 private:
  Json& open(char c);
  Json& close(char c);
  void separate();
  void quote(std::string_view s);

  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;   // a key was just written: its value needs no comma
};

// `s` as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

// A text table: left-aligned columns two spaces apart, header first, no trailing spaces.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Every row, each line starting with `indent` and ending with '\n'.
  std::string render(std::string_view indent = "") const;
  void print(std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A topic id: 16 bytes as UUID text, 8-4-4-4-12 lowercase hex; other lengths as plain hex.
std::string uuid_text(std::string_view bytes);

}  // namespace gannet::tools
