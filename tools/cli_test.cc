// Tests of tools/cli.h: flag parsing (both flag forms, repeated flags accumulating, boolean
// flags, operands that look like numbers, `--`, missing values), int parsing, the JSON writer's
// commas and escaping, table layout and topic-id text.
#include "tools/cli.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gannet::tools {
namespace {

const std::set<std::string> kBoolean = {"help", "ignore-formatted"};

Args parse_ok(const std::vector<std::string>& args) {
  auto r = parse_args(args, kBoolean);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? *r : Args{};
}

std::string parse_error(const std::vector<std::string>& args) {
  auto r = parse_args(args, kBoolean);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error();
}

TEST(ParseArgsTest, RepeatedFlagsAccumulateInOrder) {
  Args a = parse_ok({"topic", "create", "orders", "--config", "a=1", "--partitions=3",
                     "--config=b=2=3", "--partitions", "4", "--config", "c="});
  EXPECT_EQ(a.positional, (std::vector<std::string>{"topic", "create", "orders"}));
  EXPECT_EQ(a.operands(), (std::vector<std::string>{"orders"}));
  EXPECT_EQ(a.all("config"), (std::vector<std::string>{"a=1", "b=2=3", "c="}));
  EXPECT_EQ(a.all("partitions"), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(a.last("partitions"), "4");
  EXPECT_FALSE(a.last("replication-factor").has_value());
  EXPECT_TRUE(a.all("replication-factor").empty());
}

TEST(ParseArgsTest, BooleanFlagsTakeNoValue) {
  Args a = parse_ok({"storage", "format", "--ignore-formatted", "--config", "f"});
  EXPECT_TRUE(a.has("ignore-formatted"));
  EXPECT_EQ(a.last("config"), "f");
  EXPECT_TRUE(a.operands().empty());
  EXPECT_EQ(parse_error({"--ignore-formatted=yes"}), "flag --ignore-formatted takes no value");
  EXPECT_TRUE(parse_ok({"topic", "-h"}).has("help"));
  EXPECT_TRUE(parse_ok({"--help"}).has("help"));
}

TEST(ParseArgsTest, OperandsAndDoubleDash) {
  Args a = parse_ok({"quorum", "append", "-5", "x", "--", "--not-a-flag", "-h"});
  EXPECT_EQ(a.operands(), (std::vector<std::string>{"-5", "x", "--not-a-flag", "-h"}));
  EXPECT_TRUE(a.flags.empty());
}

TEST(ParseArgsTest, Errors) {
  EXPECT_EQ(parse_error({"topic", "list", "--bootstrap-server"}),
            "flag --bootstrap-server needs a value");
  EXPECT_EQ(parse_error({"--=x"}), "bad flag --=x");
  // An empty value is a value.
  EXPECT_EQ(parse_ok({"--output="}).last("output"), "");
}

TEST(ParseInt32Test, WholeDecimalOnly) {
  EXPECT_EQ(parse_int32("0"), 0);
  EXPECT_EQ(parse_int32("30000"), 30000);
  EXPECT_EQ(parse_int32("-1"), -1);
  EXPECT_EQ(parse_int32("2147483647"), 2147483647);
  EXPECT_FALSE(parse_int32("2147483648").has_value());
  EXPECT_FALSE(parse_int32("").has_value());
  EXPECT_FALSE(parse_int32("12x").has_value());
  EXPECT_FALSE(parse_int32(" 1").has_value());
  EXPECT_FALSE(parse_int32("+1").has_value());
}

TEST(SplitJoinTest, Basics) {
  EXPECT_EQ(split("a:1,b:2", ','), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(split("a,,b,", ','), (std::vector<std::string>{"a", "", "b", ""}));
  EXPECT_EQ(split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(join({}, ", "), "");
}

TEST(JsonTest, CommasAndNesting) {
  Json j;
  j.begin_object().field("a", int64_t{1}).field("b", "x").field_bool("c", false);
  j.key("d").begin_array().number(1).begin_object().end_object().begin_array().end_array();
  j.string("s").end_array();
  j.int_array("e", std::vector<int>{3, -4}).key("f").begin_object().field("g", "").end_object();
  j.end_object();
  EXPECT_EQ(j.str(), R"({"a":1,"b":"x","c":false,"d":[1,{},[],"s"],"e":[3,-4],"f":{"g":""}})");
  Json empty;
  empty.begin_array().end_array();
  EXPECT_EQ(empty.str(), "[]");
}

TEST(JsonTest, Escaping) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("q\"b\\s/"), R"("q\"b\\s/")");
  EXPECT_EQ(json_quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quote(std::string("\x01\x1f\0", 3)), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(json_quote("caf\xc3\xa9 \x7f"), "\"caf\xc3\xa9 \x7f\"");
  Json j;
  j.begin_object().field("k\"ey", "v\nal").end_object();
  EXPECT_EQ(j.str(), R"({"k\"ey":"v\nal"})");
}

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table t({"ID", "NAME", "STATUS"});
  t.add({"1", "alpha", ""});
  t.add({"100", "b", "fenced"});
  EXPECT_EQ(t.render(),
            "ID   NAME   STATUS\n"
            "1    alpha\n"
            "100  b      fenced\n");
  EXPECT_EQ(Table({"A"}).render("  "), "  A\n");
}

TEST(UuidTextTest, Formats) {
  std::string id;
  for (int i = 0; i < 16; ++i) id += static_cast<char>(i * 17);
  EXPECT_EQ(uuid_text(id), "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(uuid_text(""), "");
  EXPECT_EQ(uuid_text("\x01\xfe"), "01fe");
}

}  // namespace
}  // namespace gannet::tools
