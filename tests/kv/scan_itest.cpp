// SCAN walked to the end: cursor until "0", with and without MATCH and
// COUNT. What is compared is the set of keys (SCAN may return a key twice
// and in any order, and where the cursor goes is the server's business), and
// the guarantee of SCAN: every key present for the whole walk is returned.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;

struct Walk {
  std::set<std::string> keys;
  long calls = 0;
};

// Walks SCAN from cursor 0 until it returns "0"; `between` runs after each
// call (to change the keyspace mid-walk). Fails the test on a malformed
// reply or a walk that does not end.
Walk scan_all(Client& c, const std::vector<std::string>& options,
              const std::function<void(long)>& between = {}) {
  Walk w;
  std::string cursor = "0";
  do {
    std::vector<std::string> argv = {"SCAN", cursor};
    argv.insert(argv.end(), options.begin(), options.end());
    const Reply r = c.call(argv);
    ++w.calls;
    EXPECT_EQ(r.type, Reply::Type::array) << r;
    if (r.type != Reply::Type::array || r.elements.size() != 2 ||
        r.elements[0].type != Reply::Type::bulk || r.elements[1].type != Reply::Type::array) {
      ADD_FAILURE() << "SCAN reply is not [cursor, [keys...]]: " << r;
      return w;
    }
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].elements) {
      EXPECT_EQ(k.type, Reply::Type::bulk) << r;
      w.keys.insert(k.str);
    }
    if (between) between(w.calls);
    if (w.calls > 200000) {
      ADD_FAILURE() << "SCAN did not reach cursor 0 after " << w.calls << " calls";
      return w;
    }
  } while (cursor != "0");
  return w;
}

class Scan : public SharedServerTest {
 protected:
  // key:0..key:999 and other:0..other:99.
  static std::set<std::string> fill(Client& c) {
    std::set<std::string> all;
    std::vector<std::string> mset = {"MSET"};
    for (int i = 0; i < 1000; ++i) {
      mset.push_back("key:" + std::to_string(i));
      mset.push_back("v");
    }
    for (int i = 0; i < 100; ++i) {
      mset.push_back("other:" + std::to_string(i));
      mset.push_back("v");
    }
    EXPECT_EQ(c.call(mset).describe(), "+OK");
    for (std::size_t i = 1; i < mset.size(); i += 2) all.insert(mset[i]);
    return all;
  }
};

TEST_F(Scan, EmptyDatabaseEndsWithNoKeys) {
  Client c(port());
  EXPECT_TRUE(scan_all(c, {}).keys.empty());
}

TEST_F(Scan, ReturnsEveryKey) {
  Client c(port());
  const auto all = fill(c);
  EXPECT_EQ(scan_all(c, {}).keys, all);
  const Walk small = scan_all(c, {"COUNT", "10"});
  EXPECT_EQ(small.keys, all);
  // COUNT is a hint, but 1,100 keys at 10 per call cannot come in one.
  EXPECT_GT(small.calls, 1);
  EXPECT_EQ(scan_all(c, {"COUNT", "100000"}).keys, all);
}

TEST_F(Scan, MatchFiltersKeys) {
  Client c(port());
  const auto all = fill(c);
  std::set<std::string> want;
  for (const auto& k : all) {
    if (k.rfind("key:1", 0) == 0) want.insert(k);  // key:1, key:10..19, key:100..199
  }
  ASSERT_EQ(want.size(), 111u);
  EXPECT_EQ(scan_all(c, {"MATCH", "key:1*"}).keys, want);
  EXPECT_EQ(scan_all(c, {"MATCH", "key:1*", "COUNT", "7"}).keys, want);
  EXPECT_EQ(scan_all(c, {"COUNT", "7", "MATCH", "key:1*"}).keys, want);
  EXPECT_EQ(scan_all(c, {"MATCH", "other:?"}).keys,
            (std::set<std::string>{"other:0", "other:1", "other:2", "other:3", "other:4", "other:5",
                                   "other:6", "other:7", "other:8", "other:9"}));
  EXPECT_TRUE(scan_all(c, {"MATCH", "nothing*"}).keys.empty());
}

// Keys present for the whole walk are returned even while others are
// added and deleted between the calls.
TEST_F(Scan, KeysPresentThroughoutAreReturnedDespiteChanges) {
  Client c(port());
  const auto all = fill(c);
  Client writer(port());
  int added = 0;
  const Walk w = scan_all(c, {"COUNT", "20"}, [&](long call) {
    // Delete one other:N and add two new keys per call.
    if (call <= 100) {
      EXPECT_EQ(writer.call({"DEL", "other:" + std::to_string(call - 1)}).describe(), ":1");
    }
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(writer.call({"SET", "new:" + std::to_string(added++), "v"}).describe(), "+OK");
    }
  });
  for (const auto& k : all) {
    if (k.rfind("key:", 0) == 0) {
      EXPECT_TRUE(w.keys.count(k)) << k << " missing from the walk";
    }
  }
  for (const auto& k : w.keys) {
    EXPECT_TRUE(k.rfind("key:", 0) == 0 || k.rfind("other:", 0) == 0 || k.rfind("new:", 0) == 0)
        << "SCAN returned a key that never existed: " << k;
  }
}

}  // namespace
