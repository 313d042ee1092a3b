#include "common/acl.h"

#include <algorithm>
#include <cctype>

namespace gannet::acl {

namespace {

bool name_matches(const Binding& b, const std::string& name) {
  if (b.pattern_type == PatternType::kLiteral) return b.resource_name == name || b.resource_name == "*";
  if (b.pattern_type == PatternType::kPrefixed) return name.compare(0, b.resource_name.size(), b.resource_name) == 0;
  return false;
}

bool operation_covers(Operation granted, Operation wanted) {
  if (granted == Operation::kAll || granted == wanted) return true;
  if (wanted == Operation::kDescribe) {
    return granted == Operation::kRead || granted == Operation::kWrite || granted == Operation::kDelete ||
           granted == Operation::kAlter;
  }
  if (wanted == Operation::kDescribeConfigs) return granted == Operation::kAlterConfigs;
  return false;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool matches(const Filter& f, const Binding& b) {
  if (f.resource_type != ResourceType::kAny && f.resource_type != b.resource_type) return false;
  if (f.principal && *f.principal != b.principal) return false;
  if (f.host && *f.host != b.host) return false;
  if (f.operation != Operation::kAny && f.operation != b.operation) return false;
  if (f.permission != Permission::kAny && f.permission != b.permission) return false;
  switch (f.pattern_type) {
    case PatternType::kAny:
      return !f.resource_name || *f.resource_name == b.resource_name;
    case PatternType::kMatch:
      return !f.resource_name || name_matches(b, *f.resource_name);
    case PatternType::kLiteral:
    case PatternType::kPrefixed:
      return b.pattern_type == f.pattern_type && (!f.resource_name || *f.resource_name == b.resource_name);
    default:
      return false;
  }
}

std::string invalid_reason(const Binding& b) {
  if (b.resource_type != ResourceType::kTopic && b.resource_type != ResourceType::kGroup &&
      b.resource_type != ResourceType::kCluster && b.resource_type != ResourceType::kTransactionalId) {
    return "the resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID";
  }
  if (b.pattern_type != PatternType::kLiteral && b.pattern_type != PatternType::kPrefixed) {
    return "the pattern type must be LITERAL or PREFIXED";
  }
  if (b.resource_name.empty()) return "the resource name is empty";
  if (b.resource_type == ResourceType::kCluster &&
      (b.resource_name != kClusterName || b.pattern_type != PatternType::kLiteral)) {
    return "the cluster resource is LITERAL kafka-cluster";
  }
  const size_t colon = b.principal.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == b.principal.size()) {
    return "the principal must be Type:name (User:alice, User:*)";
  }
  if (b.host.empty()) return "the host is empty (\"*\" is every host)";
  if (b.operation == Operation::kUnknown || b.operation == Operation::kAny ||
      static_cast<int>(b.operation) > static_cast<int>(Operation::kIdempotentWrite)) {
    return "unknown operation";
  }
  if (b.permission != Permission::kAllow && b.permission != Permission::kDeny) return "the permission must be ALLOW or DENY";
  return "";
}

namespace {

const Binding& deref(const Binding* b) { return *b; }
const Binding& deref(const std::pair<const std::string, Binding>& kv) { return kv.second; }

template <typename Range>
bool authorize_over(const Range& bindings, const AuthorizerOptions& options, const std::string& principal,
                    const std::string& host, Operation op, ResourceType type, const std::string& name) {
  if (std::find(options.super_users.begin(), options.super_users.end(), principal) != options.super_users.end()) {
    return true;
  }
  bool any_for_resource = false, allowed = false;
  for (const auto& entry : bindings) {
    const Binding* b = &deref(entry);
    if (b->resource_type != type || !name_matches(*b, name)) continue;
    any_for_resource = true;
    if (b->principal != principal && b->principal != "User:*") continue;
    if (b->host != "*" && b->host != host) continue;
    if (b->permission == Permission::kDeny) {
      // Deny beats allow; implications are for ALLOW only (denying READ leaves DESCRIBE alone).
      if (b->operation == Operation::kAll || b->operation == op) return false;
      continue;
    }
    if (!operation_covers(b->operation, op)) continue;
    if (b->permission == Permission::kAllow) allowed = true;
  }
  if (allowed) return true;
  return !any_for_resource && options.allow_if_no_acl;
}

}  // namespace

bool authorize(const std::vector<const Binding*>& bindings, const AuthorizerOptions& options,
               const std::string& principal, const std::string& host, Operation op, ResourceType type,
               const std::string& name) {
  return authorize_over(bindings, options, principal, host, op, type, name);
}

bool authorize(const std::map<std::string, Binding>& bindings, const AuthorizerOptions& options,
               const std::string& principal, const std::string& host, Operation op, ResourceType type,
               const std::string& name) {
  return authorize_over(bindings, options, principal, host, op, type, name);
}

const char* name_of(ResourceType t) {
  switch (t) {
    case ResourceType::kAny: return "ANY";
    case ResourceType::kTopic: return "TOPIC";
    case ResourceType::kGroup: return "GROUP";
    case ResourceType::kCluster: return "CLUSTER";
    case ResourceType::kTransactionalId: return "TRANSACTIONAL_ID";
    default: return "UNKNOWN";
  }
}
const char* name_of(PatternType t) {
  switch (t) {
    case PatternType::kAny: return "ANY";
    case PatternType::kMatch: return "MATCH";
    case PatternType::kLiteral: return "LITERAL";
    case PatternType::kPrefixed: return "PREFIXED";
    default: return "UNKNOWN";
  }
}
const char* name_of(Operation o) {
  static const char* const kNames[] = {"UNKNOWN", "ANY",   "ALL",      "READ",           "WRITE",
                                       "CREATE",  "DELETE", "ALTER",   "DESCRIBE",       "CLUSTER_ACTION",
                                       "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"};
  const int i = static_cast<int>(o);
  return i >= 0 && i <= 12 ? kNames[i] : "UNKNOWN";
}
const char* name_of(Permission p) {
  switch (p) {
    case Permission::kAny: return "ANY";
    case Permission::kDeny: return "DENY";
    case Permission::kAllow: return "ALLOW";
    default: return "UNKNOWN";
  }
}

ResourceType resource_type_from(const std::string& s) {
  const std::string u = upper(s);
  for (int i = 1; i <= 5; ++i) {
    if (u == name_of(static_cast<ResourceType>(i))) return static_cast<ResourceType>(i);
  }
  return ResourceType::kUnknown;
}
PatternType pattern_type_from(const std::string& s) {
  const std::string u = upper(s);
  for (int i = 1; i <= 4; ++i) {
    if (u == name_of(static_cast<PatternType>(i))) return static_cast<PatternType>(i);
  }
  return PatternType::kUnknown;
}
Operation operation_from(const std::string& s) {
  const std::string u = upper(s);
  for (int i = 1; i <= 12; ++i) {
    if (u == name_of(static_cast<Operation>(i))) return static_cast<Operation>(i);
  }
  return Operation::kUnknown;
}
Permission permission_from(const std::string& s) {
  const std::string u = upper(s);
  for (int i = 1; i <= 3; ++i) {
    if (u == name_of(static_cast<Permission>(i))) return static_cast<Permission>(i);
  }
  return Permission::kUnknown;
}

}  // namespace gannet::acl
