#include "common/principal_rules.h"

#include <cctype>

namespace gannet {

namespace {

std::vector<PrincipalRule>& process_rules() {
  static std::vector<PrincipalRule> rules;
  return rules;
}

// Reads up to the next unescaped '/', unescaping "\/"; false at the end of the text.
bool read_part(const std::string& s, size_t* at, std::string* out) {
  out->clear();
  while (*at < s.size()) {
    const char c = s[*at];
    if (c == '\\' && *at + 1 < s.size() && s[*at + 1] == '/') {
      out->push_back('/');
      *at += 2;
      continue;
    }
    ++*at;
    if (c == '/') return true;
    out->push_back(c);
  }
  return false;
}

}  // namespace

std::optional<std::vector<PrincipalRule>> parse_principal_rules(const std::string& text, std::string* error) {
  std::vector<PrincipalRule> rules;
  size_t at = 0;
  auto skip_space = [&] {
    while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at]))) ++at;
  };
  skip_space();
  while (at < text.size()) {
    PrincipalRule r;
    if (text.compare(at, 7, "DEFAULT") == 0) {
      r.is_default = true;
      at += 7;
    } else if (text.compare(at, 5, "RULE:") == 0) {
      at += 5;
      if (!read_part(text, &at, &r.pattern) || !read_part(text, &at, &r.replacement)) {
        *error = "a RULE is RULE:pattern/replacement/[L|U]";
        return std::nullopt;
      }
      if (at < text.size() && (text[at] == 'L' || text[at] == 'U')) r.case_change = text[at++];
      try {
        r.re = std::regex(r.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        *error = "RULE pattern " + r.pattern + ": " + e.what();
        return std::nullopt;
      }
    } else {
      *error = "expected RULE:... or DEFAULT at \"" + text.substr(at, 20) + "\"";
      return std::nullopt;
    }
    rules.push_back(std::move(r));
    skip_space();
    if (at < text.size()) {
      if (text[at] != ',') {
        *error = "rules are separated by ','";
        return std::nullopt;
      }
      ++at;
      skip_space();
    }
  }
  return rules;
}

std::string apply_principal_rules(const std::vector<PrincipalRule>& rules, const std::string& dn) {
  for (const PrincipalRule& r : rules) {
    if (r.is_default) return dn;
    if (!std::regex_match(dn, r.re)) continue;
    std::string name = std::regex_replace(dn, r.re, r.replacement);
    if (r.case_change == 'L') {
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (r.case_change == 'U') {
      for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return name;
  }
  return dn;
}

void set_principal_rules(std::vector<PrincipalRule> rules) { process_rules() = std::move(rules); }

std::string certificate_principal(const std::string& dn) { return "User:" + apply_principal_rules(process_rules(), dn); }

}  // namespace gannet
