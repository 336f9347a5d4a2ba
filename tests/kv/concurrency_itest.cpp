// Atomicity under concurrent clients (one weft fiber each): Redis runs one
// command at a time, so every command is atomic, multi-key ones included. A
// multi-threaded server must keep that: INCRs are never lost, MGET never
// sees half of an MSET, exactly one SET NX and one DEL win, APPENDs all
// land, and GETSET hands every value over exactly once.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::Checker;

class Concurrency : public SharedServerTest {
 protected:
  void run_clients(int n, const std::function<void(Client&, int)>& body) {
    kv::itest::run_clients(port(), n, check_, body);
  }
  Checker check_;
};

TEST_F(Concurrency, IncrNeverLosesAnUpdate) {
  constexpr int kClients = 16;
  constexpr int kRounds = 10;
  constexpr int kDepth = 100;  // a pipeline of 100 INCRs per round
  run_clients(kClients, [&](Client& c, int) {
    const std::string batch = [] {
      std::string b;
      for (int i = 0; i < kDepth; ++i) b += kv::itest::encode({"INCR", "shared"});
      return b;
    }();
    std::int64_t last = 0;
    for (int r = 0; r < kRounds; ++r) {
      c.send(batch);
      for (int i = 0; i < kDepth; ++i) {
        const Reply n = c.read_reply();
        check_.check(n.type == Reply::Type::integer && n.integer > last,
                     "INCR replies grow on one connection: " + n.describe() + " after " +
                         std::to_string(last));
        last = n.integer;
      }
    }
  });
  WEFT_EXPECT_NO_FAILURES(check_);
  Client c(port());
  EXPECT_EQ(c.call({"GET", "shared"}).describe(),
            "\"" + std::to_string(kClients * kRounds * kDepth) + "\"");
}

TEST_F(Concurrency, MgetNeverSeesHalfAnMset) {
  // Eight keys, so that a sharded keyspace puts them on different shards.
  std::vector<std::string> keys;
  for (int i = 0; i < 8; ++i)
    keys.push_back("atomic:" + std::to_string(i) + ":" + std::string(i, 'x'));
  {
    Client c(port());
    std::vector<std::string> mset = {"MSET"};
    for (const auto& k : keys) mset.insert(mset.end(), {k, "init"});
    ASSERT_EQ(c.call(mset).describe(), "+OK");
  }
  constexpr int kWriters = 4;
  constexpr int kReaders = 4;
  constexpr int kOps = 1500;
  run_clients(kWriters + kReaders, [&](Client& c, int id) {
    if (id < kWriters) {
      for (int i = 0; i < kOps; ++i) {
        std::vector<std::string> mset = {"MSET"};
        const std::string v = std::to_string(id) + ":" + std::to_string(i);
        for (const auto& k : keys) mset.insert(mset.end(), {k, v});
        check_.equal(c.call(mset).describe(), std::string("+OK"), "MSET");
      }
    } else {
      std::vector<std::string> mget = {"MGET"};
      mget.insert(mget.end(), keys.begin(), keys.end());
      for (int i = 0; i < kOps; ++i) {
        const Reply r = c.call(mget);
        bool same = r.type == Reply::Type::array && r.elements.size() == keys.size();
        for (std::size_t j = 1; same && j < r.elements.size(); ++j) {
          same = r.elements[j].describe() == r.elements[0].describe();
        }
        if (!check_.check(same, "MGET saw a partial MSET: " + r.describe())) return;
      }
    }
  });
  WEFT_EXPECT_NO_FAILURES(check_);
}

TEST_F(Concurrency, SetNxAndDelHaveOneWinner) {
  constexpr int kClients = 8;
  constexpr int kKeys = 300;
  std::vector<std::vector<int>> set_wins(kClients), del_wins(kClients);
  run_clients(kClients, [&](Client& c, int id) {
    for (int k = 0; k < kKeys; ++k) {
      const Reply r = c.call({"SET", "lock:" + std::to_string(k), std::to_string(id), "NX"});
      if (r.describe() == "+OK") {
        set_wins[id].push_back(k);
      } else {
        check_.equal(r.describe(), std::string("(nil)"), "SET NX that lost");
      }
    }
  });
  std::map<int, int> owner;
  for (int id = 0; id < kClients; ++id) {
    for (const int k : set_wins[id]) {
      EXPECT_EQ(owner.count(k), 0u) << "two SET NX won lock:" << k;
      owner[k] = id;
    }
  }
  EXPECT_EQ(owner.size(), static_cast<std::size_t>(kKeys));
  {
    Client c(port());
    for (const auto& [k, id] : owner) {
      EXPECT_EQ(c.call({"GET", "lock:" + std::to_string(k)}).describe(),
                "\"" + std::to_string(id) + "\"");
    }
  }
  run_clients(kClients, [&](Client& c, int id) {
    for (int k = 0; k < kKeys; ++k) {
      const Reply r = c.call({"DEL", "lock:" + std::to_string(k)});
      if (r.describe() == ":1") del_wins[id].push_back(k);
    }
  });
  std::map<int, int> deleted;
  for (int id = 0; id < kClients; ++id) {
    for (const int k : del_wins[id]) ++deleted[k];
  }
  EXPECT_EQ(deleted.size(), static_cast<std::size_t>(kKeys));
  for (const auto& [k, n] : deleted)
    EXPECT_EQ(n, 1) << "DEL lock:" << k << " won " << n << " times";
  WEFT_EXPECT_NO_FAILURES(check_);
}

TEST_F(Concurrency, AppendsAllLand) {
  constexpr int kClients = 8;
  constexpr int kOps = 500;
  run_clients(kClients, [&](Client& c, int id) {
    const std::string piece(1, static_cast<char>('a' + id));
    for (int i = 0; i < kOps; ++i) c.call({"APPEND", "log", piece});
  });
  WEFT_EXPECT_NO_FAILURES(check_);
  Client c(port());
  const Reply r = c.call({"GET", "log"});
  ASSERT_EQ(r.type, Reply::Type::bulk) << r;
  ASSERT_EQ(r.str.size(), static_cast<std::size_t>(kClients * kOps));
  for (int id = 0; id < kClients; ++id) {
    EXPECT_EQ(std::count(r.str.begin(), r.str.end(), static_cast<char>('a' + id)), kOps);
  }
}

// GETSET is an exchange: every value written is handed to exactly one
// later GETSET (or is the final value), never lost or seen twice.
TEST_F(Concurrency, GetsetHandsEveryValueOverOnce) {
  constexpr int kClients = 8;
  constexpr int kOps = 400;
  {
    Client c(port());
    ASSERT_EQ(c.call({"SET", "baton", "init"}).describe(), "+OK");
  }
  std::vector<std::vector<std::string>> seen(kClients);
  run_clients(kClients, [&](Client& c, int id) {
    for (int i = 0; i < kOps; ++i) {
      const Reply r = c.call({"GETSET", "baton", std::to_string(id) + ":" + std::to_string(i)});
      if (!check_.check(r.type == Reply::Type::bulk, "GETSET replied " + r.describe())) return;
      seen[id].push_back(r.str);
    }
  });
  WEFT_EXPECT_NO_FAILURES(check_);
  std::map<std::string, int> count;
  for (const auto& s : seen) {
    for (const auto& v : s) ++count[v];
  }
  Client c(port());
  ++count[c.call({"GET", "baton"}).str];
  EXPECT_EQ(count.size(), static_cast<std::size_t>(kClients * kOps + 1));
  EXPECT_EQ(count["init"], 1);
  for (const auto& [v, n] : count) EXPECT_EQ(n, 1) << v << " handed over " << n << " times";
}

}  // namespace
