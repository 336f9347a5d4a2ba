// weft-kv keyspace: the chained table (growth, shrink, reverse-binary SCAN
// guarantee), shard bookkeeping (TTL list, counters, lazy and sampled
// expiry), Redis's glob matching and the command-line options.
#include "keyspace.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"

namespace {

std::string key(int i) {
  return "key:" + std::to_string(i);
}

// Table: all operations keep every key findable across growth and shrink.
TEST(KvTable, InsertFindUnlinkAcrossResizes) {
  kv::Table t;
  constexpr int kN = 5000;
  for (int i = 0; i < kN; ++i) {
    const std::string k = key(i);
    ASSERT_EQ(t.find(k, kv::Keyspace::hash(k)), nullptr);
    t.insert(k, kv::Keyspace::hash(k))->value = std::to_string(i);
  }
  EXPECT_EQ(t.size(), static_cast<std::size_t>(kN));
  for (int i = 0; i < kN; ++i) {
    const std::string k = key(i);
    const kv::Entry* e = t.find(k, kv::Keyspace::hash(k));
    ASSERT_NE(e, nullptr) << k;
    EXPECT_EQ(e->value, std::to_string(i));
  }
  for (int i = 0; i < kN; i += 2) {
    const std::string k = key(i);
    t.unlink(t.find(k, kv::Keyspace::hash(k)));  // the unique_ptr frees it
  }
  EXPECT_EQ(t.size(), static_cast<std::size_t>(kN / 2));
  for (int i = 0; i < kN; ++i) {
    const std::string k = key(i);
    EXPECT_EQ(t.find(k, kv::Keyspace::hash(k)) != nullptr, i % 2 == 1) << k;
  }
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.find(key(1), kv::Keyspace::hash(key(1))), nullptr);
}

// Collisions of the full hash: keys are compared, not only hashes.
TEST(KvTable, EqualHashesAreToldApartByKey) {
  kv::Table t;
  t.insert("a", 42)->value = "1";
  t.insert("b", 42)->value = "2";
  EXPECT_EQ(t.find("a", 42)->value, "1");
  EXPECT_EQ(t.find("b", 42)->value, "2");
  EXPECT_EQ(t.find("c", 42), nullptr);
}

std::set<std::string> scan_all(kv::Table& t, const std::function<void(int step)>& between) {
  std::set<std::string> seen;
  std::uint64_t cursor = 0;
  int step = 0;
  do {
    cursor = t.scan(cursor, [&](const kv::Entry& e) { seen.insert(e.key); });
    between(step++);
  } while (cursor != 0);
  return seen;
}

// dictScan's guarantee: a key present for the whole scan is returned,
// even when the table doubles or halves between calls.
TEST(KvTable, ScanReturnsEveryStableKeyWhileTheTableGrowsAndShrinks) {
  for (const bool grow : {true, false}) {
    kv::Table t;
    std::vector<std::string> stable;
    for (int i = 0; i < 300; ++i) {
      stable.push_back(key(i));
      t.insert(stable.back(), kv::Keyspace::hash(stable.back()));
    }
    std::vector<std::string> extra;
    if (!grow) {
      for (int i = 0; i < 30000; ++i) {
        extra.push_back("extra:" + std::to_string(i));
        t.insert(extra.back(), kv::Keyspace::hash(extra.back()));
      }
    }
    int next_extra = 0;
    const auto seen = scan_all(t, [&](int step) {
      if (grow && step < 20) {
        // Add 200 keys after each of the first steps: several doublings
        // mid-scan (a table that grows forever would never be covered).
        for (int i = 0; i < 200; ++i) {
          const std::string k = "extra:" + std::to_string(next_extra++);
          t.insert(k, kv::Keyspace::hash(k));
        }
      } else if (!grow && step == 1000) {
        // Remove every extra a good way into the scan: the table halves
        // several times (32768 -> 2048 buckets) under the cursor.
        while (!extra.empty()) {
          const std::string k = extra.back();
          extra.pop_back();
          t.unlink(t.find(k, kv::Keyspace::hash(k)));
        }
      }
    });
    for (const std::string& k : stable) EXPECT_EQ(seen.count(k), 1u) << k << " grow=" << grow;
  }
}

TEST(KvShard, TtlListCountersAndLazyExpiry) {
  kv::Shard sh;
  std::lock_guard lk(sh.mu);
  const std::int64_t now = 1'000'000;
  for (int i = 0; i < 100; ++i) {
    const std::string k = key(i);
    kv::Entry* e = sh.insert(k, kv::Keyspace::hash(k));
    sh.assign(e, "value");
    if (i % 2 == 0) sh.set_expire(e, now + (i < 50 ? -1 : 1000));  // 25 already expired
  }
  EXPECT_EQ(sh.counters().keys.load(), 100);
  EXPECT_EQ(sh.counters().expires.load(), 50);
  // Lazy: an expired key is gone on access and counted.
  const std::string k0 = key(0);
  EXPECT_EQ(sh.find(k0, kv::Keyspace::hash(k0), now), nullptr);
  EXPECT_EQ(sh.counters().keys.load(), 99);
  EXPECT_EQ(sh.counters().expires.load(), 49);
  EXPECT_EQ(sh.counters().expired.load(), 1u);
  // A live key with a TTL is found; persisting it leaves the TTL list.
  const std::string k60 = key(60);
  kv::Entry* e60 = sh.find(k60, kv::Keyspace::hash(k60), now);
  ASSERT_NE(e60, nullptr);
  sh.set_expire(e60, -1);
  EXPECT_EQ(sh.counters().expires.load(), 48);
  // Active: sampling deletes exactly the 24 expired ones that are left.
  std::size_t deleted = 0;
  for (int round = 0; round < 200; ++round) deleted += sh.expire_sample(20, now).second;
  EXPECT_EQ(deleted, 24u);
  EXPECT_EQ(sh.counters().keys.load(), 75);
  EXPECT_EQ(sh.counters().expires.load(), 24);
  EXPECT_EQ(sh.counters().expired.load(), 25u);
  // Bytes go back to zero when everything is gone.
  EXPECT_GT(sh.counters().bytes.load(), 0);
  EXPECT_EQ(sh.clear(), 75u);
  EXPECT_EQ(sh.counters().bytes.load(), 0);
  EXPECT_EQ(sh.counters().expires.load(), 0);
}

// The expiry listener (the `expired` keyspace event, notify.hpp) hears
// every key expiry deletes, lazily in find() and actively in
// expire_sample(), once each and while the key is still readable; not a
// key deleted otherwise, nor one found alive.
TEST(KvShard, ExpiryListenerHearsLazyAndActiveExpiry) {
  struct Heard final : kv::ExpiryListener {
    std::vector<std::string> keys;
    void expired(std::string_view k) noexcept override { keys.emplace_back(k); }
  } heard;
  kv::Shard sh;
  sh.use_expiry_listener(&heard);
  std::lock_guard lk(sh.mu);
  const std::int64_t now = 1'000'000;
  for (int i = 0; i < 10; ++i) {
    const std::string k = key(i);
    kv::Entry* e = sh.insert(k, kv::Keyspace::hash(k));
    sh.assign(e, "value");
    if (i < 6) sh.set_expire(e, i < 4 ? now - 1 : now + 1000);  // keys 0..3 expired
  }
  const std::string k0 = key(0), k5 = key(5), k9 = key(9);
  EXPECT_EQ(sh.find(k0, kv::Keyspace::hash(k0), now), nullptr);
  EXPECT_NE(sh.find(k5, kv::Keyspace::hash(k5), now), nullptr);
  EXPECT_EQ(heard.keys, std::vector<std::string>{k0}) << "lazy expiry";
  sh.erase(sh.find(k9, kv::Keyspace::hash(k9), now));
  std::size_t deleted = 0;
  for (int round = 0; round < 100 && deleted < 3; ++round)
    deleted += sh.expire_sample(5, now).second;
  ASSERT_EQ(deleted, 3u);
  std::sort(heard.keys.begin() + 1, heard.keys.end());
  EXPECT_EQ(heard.keys, (std::vector<std::string>{k0, key(1), key(2), key(3)})) << "active expiry";
}

TEST(KvShard, ByteAccountingFollowsAssignAppendErase) {
  kv::Shard sh;
  std::lock_guard lk(sh.mu);
  kv::Entry* e = sh.insert("k", kv::Keyspace::hash("k"));
  // The allocator's view (malloc_usable_size): the node, its bucket
  // pointer, and the heap buffers of key and value (none while inline).
  const std::int64_t base = sh.counters().bytes.load();
  EXPECT_EQ(base, static_cast<std::int64_t>(::malloc_usable_size(e) + sizeof(void*)));
  sh.assign(e, std::string(100, 'x'));
  EXPECT_EQ(sh.counters().bytes.load(),
            base + static_cast<std::int64_t>(::malloc_usable_size(e->value.data())));
  EXPECT_GE(sh.counters().bytes.load(), base + 101);
  sh.append(e, "yz");
  EXPECT_EQ(sh.counters().bytes.load(),
            base + static_cast<std::int64_t>(::malloc_usable_size(e->value.data())));
  EXPECT_GE(sh.counters().bytes.load(), base + 103);
  sh.assign(e, "");
  EXPECT_EQ(sh.counters().bytes.load(), kv::Shard::cost(*e));  // the buffer is kept
  EXPECT_EQ(sh.counters().bytes.load(), sh.recount());
  sh.erase(e);
  EXPECT_EQ(sh.counters().bytes.load(), 0);
  EXPECT_EQ(sh.counters().keys.load(), 0);
}

TEST(KvGlob, MatchesLikeRedis) {
  using kv::glob_match;
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "heeeello"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(glob_match("h[b-a]llo", "hallo"));  // reversed range, as Redis
  EXPECT_TRUE(glob_match("h\\*llo", "h*llo"));
  EXPECT_FALSE(glob_match("h\\*llo", "hello"));
  EXPECT_TRUE(glob_match("key:*:end", "key:1:2:end"));
  EXPECT_FALSE(glob_match("key:*:end", "key:1:2:en"));
  EXPECT_TRUE(glob_match("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(glob_match("*a*b*c*", "xxaxxcxxbxx"));
  EXPECT_FALSE(glob_match("abc", "ABC"));
  EXPECT_TRUE(glob_match("[\\]]", "]"));
  // A hostile pattern finishes (no exponential backtracking).
  const std::string text(5000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*b", text));
}

kv::Options parse(std::vector<std::string> args, bool* help = nullptr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  bool h = false;
  kv::Options o = kv::parse_options(argv, &h);
  if (help != nullptr) *help = h;
  return o;
}

TEST(KvOptions, DefaultsAndEveryFlag) {
  const kv::Options d = parse({});
  EXPECT_EQ(d.bind, "127.0.0.1");
  EXPECT_EQ(d.port, 6380);
  EXPECT_FALSE(d.appendonly);
  EXPECT_EQ(d.maxmemory, 0u);
  const kv::Options o = parse(
      {"--bind",       "0.0.0.0",      "--port",      "7000",          "--workers", "3",     "--io",
       "epoll",        "--appendonly", "yes",         "--appendfsync", "always",    "--dir", "/tmp",
       "--maxclients", "50",           "--maxmemory", "2mb",           "--timeout", "9"});
  EXPECT_EQ(o.bind, "0.0.0.0");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.workers, 3u);
  EXPECT_EQ(o.io, weft::IoBackend::epoll);
  EXPECT_TRUE(o.appendonly);
  EXPECT_EQ(o.appendfsync, kv::FsyncPolicy::always);
  EXPECT_EQ(o.dir, "/tmp");
  EXPECT_EQ(o.maxclients, 50u);
  EXPECT_EQ(o.maxmemory, 2u * 1024 * 1024);
  EXPECT_EQ(o.timeout_s, 9u);
  EXPECT_EQ(parse({"--maxmemory", "1000"}).maxmemory, 1000u);
  EXPECT_EQ(parse({"--maxmemory", "3k"}).maxmemory, 3000u);
  EXPECT_EQ(parse({"--maxmemory", "1GB"}).maxmemory, 1024u * 1024 * 1024);
  bool help = false;
  parse({"--help"}, &help);
  EXPECT_TRUE(help);
}

TEST(KvOptions, BadValuesAreClearErrors) {
  const std::vector<std::vector<std::string>> bad = {{"--port", "0"},
                                                     {"--port", "65536"},
                                                     {"--port", "x"},
                                                     {"--port"},
                                                     {"--workers", "0"},
                                                     {"--io", "kqueue"},
                                                     {"--appendonly", "on"},
                                                     {"--appendfsync", "often"},
                                                     {"--dir", "/nonexistent/dir"},
                                                     {"--maxclients", "-1"},
                                                     {"--maxmemory", "1tb"},
                                                     {"--maxmemory", "12x"},
                                                     {"--timeout", "1.5"},
                                                     {"--bind", "localhost"},
                                                     {"--frobnicate", "1"},
                                                     {"--maxmemory", "99999999999999999999"}};
  for (const auto& args : bad) {
    try {
      parse(args);
      ADD_FAILURE() << "accepted " << args[0] << (args.size() > 1 ? " " + args[1] : "");
    } catch (const std::invalid_argument& e) {
      // The message names the flag, so the user knows what to fix.
      EXPECT_NE(std::string(e.what()).find(args[0]), std::string::npos) << e.what();
    }
  }
}

}  // namespace
