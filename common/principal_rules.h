// ssl.principal.mapping.rules (Kafka's KIP-371): how a client certificate's subject DN (RFC 2253,
// "CN=alice,OU=apps,O=example") becomes a principal's name. A comma-separated list of rules,
// the first that matches wins:
//   RULE:pattern/replacement/[L|U]   the whole DN must match the regular expression (ECMAScript);
//                                    the name is the replacement ($1, $2: groups), lower- or
//                                    upper-cased with L or U
//   DEFAULT                          the whole DN
// No rule matching: the whole DN. Set once at start (set_principal_rules), read by the Kafka
// listener's TLS and by the gRPC listeners when they name a certificate's principal.
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace gannet {

struct PrincipalRule {
  bool is_default = false;
  std::string pattern, replacement;  // as written (for error messages)
  std::regex re;
  char case_change = 0;  // 'L', 'U' or 0
};

// Parses the rules; nullopt with *error set when they do not parse.
std::optional<std::vector<PrincipalRule>> parse_principal_rules(const std::string& text, std::string* error);
// The name `dn` maps to under `rules`.
std::string apply_principal_rules(const std::vector<PrincipalRule>& rules, const std::string& dn);

// The process's rules (at start, before any listener opens; not synchronized with certificate_principal).
void set_principal_rules(std::vector<PrincipalRule> rules);
// "User:" + the name of certificate subject `dn` under the process's rules.
std::string certificate_principal(const std::string& dn);

}  // namespace gannet
