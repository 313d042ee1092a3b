// Kafka's ACL model (KIP-11, KIP-290's prefixed patterns): bindings of (resource pattern, principal,
// host, operation, permission), filters over them, and the authorization rule. Pure: the
// bindings come from the metadata image (AccessControlEntryRecord); the broker asks.
//
// The rule, as Kafka's StandardAuthorizer has it:
//   - a super user (super.users) may do anything;
//   - a DENY binding that matches (its operation, or ALL) beats every ALLOW;
//   - else an ALLOW binding that matches allows; READ, WRITE, DELETE and ALTER imply DESCRIBE, and
//     ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation;
//   - else, when no binding at all names the resource, allow.everyone.if.no.acl.found decides;
//   - else deny.
// A binding matches a resource when the types agree and its pattern is LITERAL with the same name
// or "*", or PREFIXED with a prefix of the name; its principal is the caller's or "User:*"; its
// host is the caller's address or "*".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gannet::acl {

// Kafka's numbers, as the protocol carries them.
enum class ResourceType : int8_t { kUnknown = 0, kAny = 1, kTopic = 2, kGroup = 3, kCluster = 4, kTransactionalId = 5 };
enum class PatternType : int8_t { kUnknown = 0, kAny = 1, kMatch = 2, kLiteral = 3, kPrefixed = 4 };
enum class Operation : int8_t {
  kUnknown = 0,
  kAny = 1,
  kAll = 2,
  kRead = 3,
  kWrite = 4,
  kCreate = 5,
  kDelete = 6,
  kAlter = 7,
  kDescribe = 8,
  kClusterAction = 9,
  kDescribeConfigs = 10,
  kAlterConfigs = 11,
  kIdempotentWrite = 12,
};
enum class Permission : int8_t { kUnknown = 0, kAny = 1, kDeny = 2, kAllow = 3 };

// The cluster resource's one name.
inline constexpr const char* kClusterName = "kafka-cluster";

struct Binding {
  ResourceType resource_type = ResourceType::kUnknown;
  std::string resource_name;
  PatternType pattern_type = PatternType::kLiteral;
  std::string principal;  // "User:alice", "User:*"
  std::string host = "*";
  Operation operation = Operation::kUnknown;
  Permission permission = Permission::kUnknown;
  bool operator==(const Binding&) const = default;
};

// DescribeAcls' and DeleteAcls' filter: kAny (and null strings) match everything; pattern kMatch
// matches the bindings that would apply to resource_name (literal, "*", and prefixes of it).
struct Filter {
  ResourceType resource_type = ResourceType::kAny;
  std::optional<std::string> resource_name;
  PatternType pattern_type = PatternType::kAny;
  std::optional<std::string> principal;
  std::optional<std::string> host;
  Operation operation = Operation::kAny;
  Permission permission = Permission::kAny;
};

bool matches(const Filter& f, const Binding& b);

// Why a binding cannot be stored ("" when it can): concrete types only, a name, a principal
// of the form Type:name, the cluster named kafka-cluster.
std::string invalid_reason(const Binding& b);

struct AuthorizerOptions {
  std::vector<std::string> super_users;  // super.users (principals)
  bool allow_if_no_acl = false;          // allow.everyone.if.no.acl.found
};

bool authorize(const std::vector<const Binding*>& bindings, const AuthorizerOptions& options,
               const std::string& principal, const std::string& host, Operation op, ResourceType type,
               const std::string& name);
// The same over the metadata image's bindings (by id).
bool authorize(const std::map<std::string, Binding>& bindings, const AuthorizerOptions& options,
               const std::string& principal, const std::string& host, Operation op, ResourceType type,
               const std::string& name);

const char* name_of(ResourceType t);
const char* name_of(PatternType t);
const char* name_of(Operation o);
const char* name_of(Permission p);
// Case-insensitive parse of the names above (kUnknown when none matches).
ResourceType resource_type_from(const std::string& s);
PatternType pattern_type_from(const std::string& s);
Operation operation_from(const std::string& s);
Permission permission_from(const std::string& s);

}  // namespace gannet::acl
