#include "common/principal_rules.h"

#include <gtest/gtest.h>

namespace gannet {
namespace {

TEST(PrincipalRules, KafkasSyntaxFirstMatchWins) {
  std::string error;
  auto rules = parse_principal_rules(
      "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L, DEFAULT", &error);
  ASSERT_TRUE(rules) << error;
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ(apply_principal_rules(*rules, "CN=kafka-broker1,OU=ServiceUsers,O=Example"), "kafka-broker1");
  EXPECT_EQ(apply_principal_rules(*rules, "CN=Alice,OU=Apps,O=Example"), "alice@apps");
  EXPECT_EQ(apply_principal_rules(*rules, "CN=bob,O=Example"), "CN=bob,O=Example");  // DEFAULT
  auto upper = parse_principal_rules("RULE:^CN=([a-z]+)$/$1/U", &error);
  ASSERT_TRUE(upper) << error;
  EXPECT_EQ(apply_principal_rules(*upper, "CN=carol"), "CAROL");
  EXPECT_EQ(apply_principal_rules(*upper, "CN=Dave,O=x"), "CN=Dave,O=x");  // no rule matched
  auto slash = parse_principal_rules("RULE:^CN=(.*)\\/x$/$1/", &error);
  ASSERT_TRUE(slash) << error;
  EXPECT_EQ(apply_principal_rules(*slash, "CN=a/x"), "a");
}

TEST(PrincipalRules, Refused) {
  std::string error;
  EXPECT_FALSE(parse_principal_rules("RULE:^CN=(.*$/$1/", &error));  // bad regex
  EXPECT_NE(error.find("RULE pattern"), std::string::npos);
  EXPECT_FALSE(parse_principal_rules("RULE:^CN=x$", &error));
  EXPECT_FALSE(parse_principal_rules("SOMETHING", &error));
  EXPECT_FALSE(parse_principal_rules("DEFAULT DEFAULT", &error));
  EXPECT_TRUE(parse_principal_rules("", &error));
}

}  // namespace
}  // namespace gannet
