// The hash and set value types on their own (types/hash.hpp, types/set.hpp):
// their encodings and conversions at Redis's thresholds, the orders Redis
// answers in (listpack: insertion; intset: ascending), byte accounting that
// returns to zero, deep copies, and the scan guarantee of the hashtable
// encoding (every element present for a whole scan is returned at least
// once, while the table grows and shrinks under the scan).
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "types/hash.hpp"
#include "types/set.hpp"

namespace {

using kv::HashObject;
using kv::SetObject;

std::vector<std::string> members(const SetObject& s) {
  std::vector<std::string> out;
  s.for_each([&](std::string_view m) { out.emplace_back(m); });
  return out;
}

TEST(SetObject, IntsetKeepsAscendingOrderUpToItsLimitThenBecomesAHashtable) {
  SetObject s("5");
  EXPECT_STREQ(s.encoding(), "intset");
  for (const char* m : {"5", "-3", "10", "0"}) s.add(m, 4);
  EXPECT_EQ(members(s), (std::vector<std::string>{"-3", "0", "5", "10"}));
  EXPECT_FALSE(s.add("10", 4));
  EXPECT_STREQ(s.encoding(), "intset");
  EXPECT_TRUE(s.add("11", 4));  // a fifth member: past the limit
  EXPECT_STREQ(s.encoding(), "hashtable");
  EXPECT_TRUE(s.contains("-3"));
  EXPECT_FALSE(s.contains("-03"));
  SetObject t("x");
  EXPECT_STREQ(t.encoding(), "hashtable");
  SetObject u("1");
  u.add("1", 512);
  u.add("007", 512);  // not canonical: not an integer to Redis
  EXPECT_STREQ(u.encoding(), "hashtable");
  EXPECT_TRUE(u.contains("007"));
  EXPECT_FALSE(u.contains("7"));
}

TEST(SetObject, BytesReturnToZeroAndCopiesAreDeep) {
  SetObject s("a");
  for (int i = 0; i < 1000; ++i) s.add("m" + std::to_string(i), 512);
  EXPECT_GT(s.bytes(), 1000 * 3);
  auto copy = s.clone();
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(s.remove("m" + std::to_string(i)));
  EXPECT_EQ(s.bytes(), 0);
  EXPECT_EQ(static_cast<SetObject&>(*copy).size(), 1000u);
  EXPECT_GT(copy->bytes(), 1000 * 3);
}

TEST(SetObject, ScanReturnsEveryMemberPresentThroughoutWhileTheTableResizes) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    SetObject s("x");
    std::set<std::string> stable;
    for (int i = 0; i < 200; ++i) {
      const std::string m = "s" + std::to_string(i);
      s.add(m, 512);
      stable.insert(m);
    }
    std::set<std::string> seen;
    std::uint64_t cursor = 0;
    int step = 0;
    do {
      cursor = s.scan(cursor, [&](std::string_view m) { seen.emplace(m); });
      // Between steps the table grows (adds) or shrinks (removes) a lot.
      if (++step % 2 == 0) {
        for (int i = 0; i < 300; ++i) s.add("t" + std::to_string(rng() % 5000), 512);
      } else {
        for (int i = 0; i < 5000; ++i) s.remove("t" + std::to_string(i));
      }
    } while (cursor != 0);
    for (const std::string& m : stable)
      EXPECT_TRUE(seen.count(m)) << "round " << round << ": " << m;
  }
}

std::vector<std::string> flat(const HashObject& h) {
  std::vector<std::string> out;
  h.for_each([&](std::string_view f, std::string_view v) {
    out.emplace_back(f);
    out.emplace_back(v);
  });
  return out;
}

TEST(HashObject, ListpackKeepsInsertionOrderAndConvertsAtTheLimits) {
  const HashObject::Limits lim{3, 8};
  HashObject h;
  EXPECT_TRUE(h.set("b", "1", lim));
  EXPECT_TRUE(h.set("a", "2", lim));
  EXPECT_FALSE(h.set("b", "3", lim));  // updated in place, keeps its position
  EXPECT_TRUE(h.set("c", "4", lim));
  EXPECT_EQ(flat(h), (std::vector<std::string>{"b", "3", "a", "2", "c", "4"}));
  EXPECT_STREQ(h.encoding(), "listpack");
  EXPECT_TRUE(h.erase("a"));
  EXPECT_EQ(flat(h), (std::vector<std::string>{"b", "3", "c", "4"}));
  h.set("d", "12345678", lim);  // at the value limit: still a listpack
  EXPECT_STREQ(h.encoding(), "listpack");
  h.set("e", "5", lim);  // a fourth field
  EXPECT_STREQ(h.encoding(), "hashtable");
  EXPECT_EQ(*h.get("d"), "12345678");
  HashObject g;
  g.set("f", "123456789", lim);  // a value past the limit
  EXPECT_STREQ(g.encoding(), "hashtable");
  HashObject k;
  const std::string_view args[] = {"field", "v", "longer-than-8", "v"};
  k.prepare(args, lim);  // HSET's check before it sets anything
  EXPECT_STREQ(k.encoding(), "hashtable");
}

TEST(HashObject, BytesFollowTheFieldsInBothEncodingsAndCopiesAreDeep) {
  const HashObject::Limits lim{4, 64};
  HashObject h;
  for (int i = 0; i < 100; ++i) h.set("f" + std::to_string(i), std::string(50, 'v'), lim);
  EXPECT_STREQ(h.encoding(), "hashtable");
  EXPECT_GT(h.bytes(), 100 * 50);
  auto copy = h.clone();
  h.set("f0", "short", lim);
  EXPECT_EQ(*static_cast<HashObject&>(*copy).get("f0"), std::string(50, 'v'));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(h.erase("f" + std::to_string(i)));
  EXPECT_EQ(h.bytes(), 0);
  HashObject small;
  small.set("a", "1", lim);
  small.set("a", "12345", lim);
  small.erase("a");
  EXPECT_EQ(small.bytes(), 0);
}

}  // namespace
