// Randomised model tests of lists and sorted sets: a reference model in the
// test (std::deque per list, std::set of (score, member) plus a map per
// sorted set) predicts the reply of every command of a random sequence,
// which is compared with the server's. Keys of both types share one key
// space, so WRONGTYPE, key deletion when a value empties and STORE
// commands overwriting another type are all exercised.
//
// Single client: one long sequence. 50 concurrent clients: each owns the
// keys under its own prefix (so its model stays exact however the
// commands interleave on the server's shards, multi-key commands across
// shards included) and also works on shared keys whose contents are
// checked by conservation at the end: every value pushed is popped or
// still listed exactly once, and ZINCRBY's increments all add up.
//
// Scores are multiples of 0.5 and weights 0.5, 1, 2 or 3, so every sum is
// exact and the replies' %.17g text is the model's. The suite runs against
// redis-server too (the reference twin), which keeps the model honest.
#include <gtest/gtest.h>

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"
#include "kv/typed_model.hpp"
#include "weft/weft.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;
using weft::test::Checker;

using namespace kv::itest::model;

class ModelTest : public SharedServerTest {};

// Runs `ops` commands of one generator against the server and its model;
// records each disagreement in `check` (with the commands leading to it).
void run_model(Client& c, RefModel& model, Generator& gen, int ops, Checker& check,
               const std::string& who) {
  std::deque<std::string> recent;
  for (int i = 0; i < ops; ++i) {
    const std::vector<std::string> cmd = gen.next();
    std::string text;
    for (const auto& a : cmd) text += a + " ";
    recent.push_back(text);
    if (recent.size() > 8) recent.pop_front();
    const std::string want = model.apply(cmd);
    const std::string got = c.call(cmd).describe();
    if (got != want) {
      std::string history;
      for (const auto& r : recent) history += "\n  > " + r;
      check.check(false, who + " op " + std::to_string(i) + ": want " + want + ", got " + got +
                             " after:" + history);
      return;  // the model has diverged: later replies would be noise
    }
  }
  // Every key the model has, the server has, with the same contents.
  for (const std::string& k : model.keys()) {
    const std::string type = model.apply({"TYPE", k});
    if (!check.equal(c.call({"TYPE", k}).describe(), type, who + " TYPE " + k)) return;
    if (type == "+list")
      check.equal(c.call({"LRANGE", k, "0", "-1"}).describe(),
                  model.apply({"LRANGE", k, "0", "-1"}), who + " LRANGE " + k);
    else
      check.equal(c.call({"ZRANGE", k, "0", "-1", "WITHSCORES"}).describe(),
                  model.apply({"ZRANGE", k, "0", "-1", "WITHSCORES"}), who + " ZRANGE " + k);
  }
}

TEST_F(ModelTest, SingleClientRandomSequencesMatchTheModel) {
  Checker check;
  Client c(port());
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    c.call({"FLUSHALL"});
    RefModel model;
    Generator gen("k", seed);
    run_model(c, model, gen, 5000, check, "seed " + std::to_string(seed));
  }
  WEFT_EXPECT_NO_FAILURES(check);
}

TEST_F(ModelTest, FiftyConcurrentClientsMatchTheirModelsAndConserveSharedValues) {
  constexpr int kClients = 50;
  constexpr int kOps = 600;
  Checker check;
  std::vector<std::vector<std::string>> pushed(kClients), popped(kClients);
  std::vector<long long> increments(kClients, 0);
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> fibers;
    for (int id = 0; id < kClients; ++id) {
      fibers.push_back(weft::spawn([&, id] {
        try {
          Client c(port());
          RefModel model;
          Generator gen("c" + std::to_string(id) + ":", 1000 + static_cast<std::uint64_t>(id));
          // Own keys, checked reply by reply, interleaved with work on the
          // shared keys.
          for (int round = 0; round < kOps / 50; ++round) {
            run_model(c, model, gen, 50, check, "client " + std::to_string(id));
            for (int j = 0; j < 5; ++j) {
              const std::string v = std::to_string(id) + ":" + std::to_string(round * 5 + j);
              c.call({"RPUSH", "shared:a", v});
              pushed[id].push_back(v);
              const Reply moved = c.call({"LMOVE", "shared:a", "shared:b", "LEFT", "RIGHT"});
              check.check(moved.type == Reply::Type::bulk || moved.type == Reply::Type::nil,
                          "LMOVE replied " + moved.describe());
              if (gen.pick(2)) {
                const Reply r = c.call({"LPOP", "shared:b", "2"});
                for (const Reply& e : r.elements) popped[id].push_back(e.str);
              }
              c.call({"ZINCRBY", "shared:z", "1", "m" + std::to_string(gen.pick(10))});
              ++increments[id];
            }
          }
        } catch (const std::exception& e) {
          check.check(false, "client " + std::to_string(id) + ": " + e.what());
        }
      }));
    }
    for (auto& f : fibers) f.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  Client c(port());
  std::multiset<std::string> all_pushed, all_seen;
  for (int id = 0; id < kClients; ++id) {
    all_pushed.insert(pushed[id].begin(), pushed[id].end());
    all_seen.insert(popped[id].begin(), popped[id].end());
  }
  for (const char* k : {"shared:a", "shared:b"})
    for (const Reply& e : c.call({"LRANGE", k, "0", "-1"}).elements) all_seen.insert(e.str);
  EXPECT_EQ(all_seen, all_pushed) << "a shared value was lost or duplicated";
  long long total = 0, want = 0;
  for (const long long n : increments) want += n;
  const Reply z = c.call({"ZRANGE", "shared:z", "0", "-1", "WITHSCORES"});
  for (std::size_t i = 1; i < z.elements.size(); i += 2) total += std::stoll(z.elements[i].str);
  EXPECT_EQ(total, want) << "ZINCRBY increments lost";
}

}  // namespace
