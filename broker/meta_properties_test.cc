// Tests of broker/meta_properties.h on the real file system (in $TEST_TMPDIR): the file's exact
// text, round trips, directory creation, absent files, every malformed case with what the error
// names, the startup check's three messages, atomic overwrite (stale .tmp, refused writes leave
// the old file), and the cluster id generator and validator.
#include "broker/meta_properties.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace gannet::broker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kClusterId = "MkU3OEVBNTcwNTJENDM2Qk";

// A new empty directory under $TEST_TMPDIR, unique per call.
std::string fresh_dir() {
  static int counter = 0;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / "meta_properties_test" /
                 (std::string(info->name()) + "." + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string meta_path(const std::string& dir) { return dir + "/" + kMetaPropertiesFile; }

// The error of read_meta_properties on a meta.properties holding `text`.
std::string read_error(const std::string& dir, const std::string& text) {
  spit(meta_path(dir), text);
  auto r = read_meta_properties(dir);
  EXPECT_FALSE(r.ok()) << "read a valid file from: " << text;
  return r.ok() ? "" : r.error().message;
}

// ---- Write and read -----------------------------------------------------------------------------

TEST(MetaPropertiesTest, WritesKafkaFormat) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {kClusterId, 3}).ok());
  EXPECT_EQ(slurp(meta_path(dir)),
            "# Written by gannet storage format. Do not edit.\n"
            "version=1\n"
            "cluster.id=MkU3OEVBNTcwNTJENDM2Qk\n"
            "node.id=3\n");
}

TEST(MetaPropertiesTest, RoundTrip) {
  std::string dir = fresh_dir();
  for (MetaProperties m : {MetaProperties{kClusterId, 0}, MetaProperties{"a", 2147483647},
                           MetaProperties{std::string(64, '_'), 7}}) {
    auto w = write_meta_properties(dir, m);
    ASSERT_TRUE(w.ok()) << w.error().message;
    auto r = read_meta_properties(dir);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, m);
  }
}

TEST(MetaPropertiesTest, CreatesMissingDirectoriesAndAcceptsTrailingSlash) {
  std::string base = fresh_dir();
  std::string dir = base + "/a/b/c/";
  ASSERT_FALSE(fs::exists(base + "/a"));
  auto w = write_meta_properties(dir, {kClusterId, 1});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(fs::is_regular_file(base + "/a/b/c/meta.properties"));
  auto r = read_meta_properties(base + "/a/b/c");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->node_id, 1);
}

TEST(MetaPropertiesTest, ReadsKafkaWrittenFile) {
  // What Kafka 3.x's storage tool writes: comment with a date, other key order, extra keys.
  std::string dir = fresh_dir();
  spit(meta_path(dir),
       "#\n#Thu Jan 04 10:00:00 UTC 2024\nnode.id=4\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\n"
       "version=1\ncluster.id=" + std::string(kClusterId) + "\n");
  auto r = read_meta_properties(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, (MetaProperties{kClusterId, 4}));
}

TEST(MetaPropertiesTest, AbsentIsNullopt) {
  std::string dir = fresh_dir();
  auto r = read_meta_properties(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->has_value());
  auto missing_dir = read_meta_properties(dir + "/does/not/exist");
  ASSERT_TRUE(missing_dir.ok()) << missing_dir.error().message;
  EXPECT_FALSE(missing_dir->has_value());
}

TEST(MetaPropertiesTest, LeftoverTmpIsNotRead) {
  // A crash before the rename leaves only meta.properties.tmp: the directory is not formatted.
  std::string dir = fresh_dir();
  spit(meta_path(dir) + ".tmp", "version=1\ncluster.id=abc\nnode.id=1\n");
  auto r = read_meta_properties(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->has_value());
}

// ---- Malformed files ----------------------------------------------------------------------------

TEST(MetaPropertiesTest, MalformedFilesAreErrorsNamingTheProblem) {
  std::string dir = fresh_dir();
  const std::string path = meta_path(dir);
  struct Case {
    std::string text;
    std::string expected;  // a substring of the error
  };
  for (const Case& c : {
           Case{"cluster.id=abc\nnode.id=1\n", "no version"},
           Case{"version=0\ncluster.id=abc\nnode.id=1\n", "version=0: unsupported"},
           Case{"version=2\ncluster.id=abc\nnode.id=1\n", "version=2: unsupported"},
           Case{"version=1\nnode.id=1\n", "no cluster.id"},
           Case{"version=1\ncluster.id=\nnode.id=1\n", "cluster.id=: not 1-64"},
           Case{"version=1\ncluster.id=a.b\nnode.id=1\n", "cluster.id=a.b: not 1-64"},
           Case{"version=1\ncluster.id=" + std::string(65, 'a') + "\nnode.id=1\n", "not 1-64"},
           Case{"version=1\ncluster.id=abc\n", "no node.id"},
           Case{"version=1\ncluster.id=abc\nnode.id=x\n", "node.id=x: not an integer"},
           Case{"version=1\ncluster.id=abc\nnode.id=-1\n", "node.id=-1: not an integer"},
           Case{"version=1\ncluster.id=abc\nnode.id=+1\n", "node.id=+1: not an integer"},
           Case{"version=1\ncluster.id=abc\nnode.id=2147483648\n", "node.id=2147483648"},
           Case{"version=1\ncluster.id=abc\nnode.id=\n", "node.id=: not an integer"},
       }) {
    std::string error = read_error(dir, c.text);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.text << " -> " << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
  }
  // A syntax error names the path and the line.
  std::string error = read_error(dir, "version=1\ncluster.id=abc\nnode.id=\\u12\n");
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("line 3"), std::string::npos) << error;
}

TEST(MetaPropertiesTest, UnreadableFileIsAnError) {
  std::string dir = fresh_dir();
  fs::create_directories(meta_path(dir));  // a directory where the file should be
  auto r = read_meta_properties(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot read"), std::string::npos) << r.error().message;

  // A data directory path that runs through a regular file.
  std::string file = fresh_dir() + "/plain";
  spit(file, "x");
  auto through_file = read_meta_properties(file + "/data");
  ASSERT_FALSE(through_file.ok());
  EXPECT_NE(through_file.error().message.find("cannot read"), std::string::npos);
  auto w = write_meta_properties(file, {kClusterId, 1});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find(file), std::string::npos) << w.error().message;
}

// ---- Atomic overwrite ---------------------------------------------------------------------------

TEST(MetaPropertiesTest, OverwriteReplacesWholeFileAndLeavesNoTmp) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {std::string(64, 'x'), 1234567}).ok());
  // A stale, longer .tmp from a writer that crashed before its rename.
  spit(meta_path(dir) + ".tmp", std::string(4096, '#') + "\nversion=9\n");
  ASSERT_TRUE(write_meta_properties(dir, {"short", 2}).ok());
  auto r = read_meta_properties(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, (MetaProperties{"short", 2}));
  EXPECT_EQ(slurp(meta_path(dir)),
            "# Written by gannet storage format. Do not edit.\nversion=1\ncluster.id=short\n"
            "node.id=2\n");
  EXPECT_FALSE(fs::exists(meta_path(dir) + ".tmp"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(MetaPropertiesTest, RefusedWriteLeavesOldFile) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {kClusterId, 1}).ok());
  const std::string before = slurp(meta_path(dir));
  auto bad_id = write_meta_properties(dir, {"not valid!", 1});
  ASSERT_FALSE(bad_id.ok());
  EXPECT_NE(bad_id.error().message.find("invalid cluster id 'not valid!'"), std::string::npos)
      << bad_id.error().message;
  auto empty_id = write_meta_properties(dir, {"", 1});
  EXPECT_FALSE(empty_id.ok());
  auto bad_node = write_meta_properties(dir, {kClusterId, -1});
  ASSERT_FALSE(bad_node.ok());
  EXPECT_NE(bad_node.error().message.find("invalid node id -1"), std::string::npos)
      << bad_node.error().message;
  EXPECT_EQ(slurp(meta_path(dir)), before);
  EXPECT_FALSE(fs::exists(meta_path(dir) + ".tmp"));

  // Nor does a refused write create the directory.
  std::string fresh = fresh_dir() + "/never";
  EXPECT_FALSE(write_meta_properties(fresh, {"", 1}).ok());
  EXPECT_FALSE(fs::exists(fresh));
}

// ---- Startup check ------------------------------------------------------------------------------

TEST(MetaPropertiesTest, CheckAcceptsMatchingDirectory) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {kClusterId, 1}).ok());
  auto any_cluster = check_meta_properties(dir, 1, std::nullopt);
  ASSERT_TRUE(any_cluster.ok()) << any_cluster.error().message;
  EXPECT_EQ(*any_cluster, (MetaProperties{kClusterId, 1}));
  auto same_cluster = check_meta_properties(dir, 1, std::string(kClusterId));
  ASSERT_TRUE(same_cluster.ok()) << same_cluster.error().message;
  EXPECT_EQ(same_cluster->cluster_id, kClusterId);
}

TEST(MetaPropertiesTest, CheckUnformatted) {
  std::string dir = fresh_dir();
  auto r = check_meta_properties(dir, 1, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "data directory " + dir +
                                   " is not formatted: run `gannet storage format --cluster-id "
                                   "ID --config FILE`");
}

TEST(MetaPropertiesTest, CheckWrongNode) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {kClusterId, 2}).ok());
  auto r = check_meta_properties(dir, 1, std::string(kClusterId));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "data directory " + dir + " belongs to node 2, but this is node.id 1");
}

TEST(MetaPropertiesTest, CheckWrongCluster) {
  std::string dir = fresh_dir();
  ASSERT_TRUE(write_meta_properties(dir, {"X", 1}).ok());
  auto r = check_meta_properties(dir, 1, std::string("Y"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "data directory " + dir + " belongs to cluster X, but cluster.id is Y");
}

TEST(MetaPropertiesTest, CheckMalformedPassesTheReadError) {
  std::string dir = fresh_dir();
  spit(meta_path(dir), "version=1\ncluster.id=abc\n");
  auto r = check_meta_properties(dir, 1, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "malformed " + meta_path(dir) + ": no node.id");
}

// ---- Cluster ids --------------------------------------------------------------------------------

TEST(MetaPropertiesTest, RandomClusterIdIsKafkaShaped) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::set<std::string> seen;
  std::set<char> last_chars;
  for (int i = 0; i < 1000; ++i) {
    std::string id = random_cluster_id();
    ASSERT_EQ(id.size(), 22u) << id;
    EXPECT_TRUE(valid_cluster_id(id)) << id;
    EXPECT_NE(id.front(), '-') << id;
    // 22 chars carry 132 bits, 128 of them data: the last char's low 4 bits are padding, 0.
    size_t last = alphabet.find(id.back());
    ASSERT_NE(last, std::string::npos);
    EXPECT_EQ(last % 16, 0u) << id;
    last_chars.insert(id.back());
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // All four possible last chars ('A', 'Q', 'g', 'w') show up: the top bits are random too.
  EXPECT_EQ(last_chars.size(), 4u);
}

TEST(MetaPropertiesTest, ValidClusterId) {
  EXPECT_TRUE(valid_cluster_id("a"));
  EXPECT_TRUE(valid_cluster_id(kClusterId));
  EXPECT_TRUE(valid_cluster_id("-_AZaz09"));
  EXPECT_TRUE(valid_cluster_id(std::string(64, 'a')));
  EXPECT_FALSE(valid_cluster_id(""));
  EXPECT_FALSE(valid_cluster_id(std::string(65, 'a')));
  EXPECT_FALSE(valid_cluster_id("a b"));
  EXPECT_FALSE(valid_cluster_id("a.b"));
  EXPECT_FALSE(valid_cluster_id("a=b"));
  EXPECT_FALSE(valid_cluster_id("a/b"));
  EXPECT_FALSE(valid_cluster_id("caf\xc3\xa9"));
  EXPECT_FALSE(valid_cluster_id(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace gannet::broker
