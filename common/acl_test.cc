#include "common/acl.h"

#include <gtest/gtest.h>

namespace gannet::acl {
namespace {

Binding allow(ResourceType t, const std::string& name, Operation op, const std::string& principal = "User:alice",
              PatternType p = PatternType::kLiteral) {
  return Binding{t, name, p, principal, "*", op, Permission::kAllow};
}

bool can(const std::vector<Binding>& bs, const std::string& principal, Operation op, ResourceType t,
         const std::string& name, AuthorizerOptions o = {}, const std::string& host = "10.0.0.1") {
  std::vector<const Binding*> ptrs;
  for (const auto& b : bs) ptrs.push_back(&b);
  return authorize(ptrs, o, principal, host, op, t, name);
}

TEST(Acl, LiteralPrefixedWildcardAndImpliedOperations) {
  std::vector<Binding> bs = {allow(ResourceType::kTopic, "a", Operation::kWrite),
                             allow(ResourceType::kTopic, "logs-", Operation::kRead, "User:alice", PatternType::kPrefixed),
                             allow(ResourceType::kGroup, "*", Operation::kRead, "User:*")};
  EXPECT_TRUE(can(bs, "User:alice", Operation::kWrite, ResourceType::kTopic, "a"));
  EXPECT_TRUE(can(bs, "User:alice", Operation::kDescribe, ResourceType::kTopic, "a"));  // WRITE implies DESCRIBE
  EXPECT_FALSE(can(bs, "User:alice", Operation::kRead, ResourceType::kTopic, "a"));
  EXPECT_FALSE(can(bs, "User:alice", Operation::kWrite, ResourceType::kTopic, "b"));
  EXPECT_FALSE(can(bs, "User:bob", Operation::kWrite, ResourceType::kTopic, "a"));
  EXPECT_TRUE(can(bs, "User:alice", Operation::kRead, ResourceType::kTopic, "logs-new-topic"));
  EXPECT_FALSE(can(bs, "User:alice", Operation::kRead, ResourceType::kTopic, "log"));
  EXPECT_TRUE(can(bs, "User:bob", Operation::kRead, ResourceType::kGroup, "anything"));
  EXPECT_FALSE(can(bs, "User:bob", Operation::kDelete, ResourceType::kGroup, "anything"));
}

TEST(Acl, DenyBeatsAllowAndHostsMatter) {
  std::vector<Binding> bs = {allow(ResourceType::kTopic, "*", Operation::kAll)};
  Binding deny = allow(ResourceType::kTopic, "secret", Operation::kRead);
  deny.permission = Permission::kDeny;
  bs.push_back(deny);
  EXPECT_TRUE(can(bs, "User:alice", Operation::kRead, ResourceType::kTopic, "public"));
  EXPECT_FALSE(can(bs, "User:alice", Operation::kRead, ResourceType::kTopic, "secret"));
  EXPECT_TRUE(can(bs, "User:alice", Operation::kDescribe, ResourceType::kTopic, "secret"));  // only READ denied
  Binding from_host = allow(ResourceType::kGroup, "g", Operation::kRead);
  from_host.host = "10.0.0.9";
  EXPECT_FALSE(can({from_host}, "User:alice", Operation::kRead, ResourceType::kGroup, "g"));
  EXPECT_TRUE(can({from_host}, "User:alice", Operation::kRead, ResourceType::kGroup, "g", {}, "10.0.0.9"));
}

TEST(Acl, SuperUsersAndNoAclFound) {
  std::vector<Binding> bs = {allow(ResourceType::kTopic, "a", Operation::kRead)};
  AuthorizerOptions o;
  o.super_users = {"User:admin"};
  EXPECT_TRUE(can(bs, "User:admin", Operation::kDelete, ResourceType::kTopic, "a", o));
  EXPECT_FALSE(can(bs, "User:bob", Operation::kRead, ResourceType::kTopic, "untouched", o));
  o.allow_if_no_acl = true;
  EXPECT_TRUE(can(bs, "User:bob", Operation::kRead, ResourceType::kTopic, "untouched", o));
  EXPECT_FALSE(can(bs, "User:bob", Operation::kRead, ResourceType::kTopic, "a", o));  // a has ACLs
}

TEST(Acl, FiltersAndValidation) {
  Binding lit = allow(ResourceType::kTopic, "orders", Operation::kRead);
  Binding pre = allow(ResourceType::kTopic, "ord", Operation::kWrite, "User:bob", PatternType::kPrefixed);
  Filter any;
  EXPECT_TRUE(matches(any, lit));
  Filter match;
  match.resource_name = "orders";
  match.pattern_type = PatternType::kMatch;
  EXPECT_TRUE(matches(match, lit));
  EXPECT_TRUE(matches(match, pre));
  Filter exact;
  exact.resource_name = "ord";
  exact.pattern_type = PatternType::kLiteral;
  EXPECT_FALSE(matches(exact, pre));
  exact.pattern_type = PatternType::kPrefixed;
  EXPECT_TRUE(matches(exact, pre));
  Filter bob;
  bob.principal = "User:bob";
  EXPECT_FALSE(matches(bob, lit));
  EXPECT_EQ(invalid_reason(lit), "");
  Binding bad = lit;
  bad.principal = "alice";
  EXPECT_NE(invalid_reason(bad), "");
  bad = lit;
  bad.resource_type = ResourceType::kCluster;
  EXPECT_NE(invalid_reason(bad), "");
  bad.resource_name = kClusterName;
  EXPECT_EQ(invalid_reason(bad), "");
  EXPECT_EQ(operation_from("idempotent_write"), Operation::kIdempotentWrite);
  EXPECT_EQ(resource_type_from("Topic"), ResourceType::kTopic);
}

}  // namespace
}  // namespace gannet::acl
