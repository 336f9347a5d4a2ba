// JSON snapshots of fibers and of the cancellation tree (weft/snapshot.hpp;
// schema in docs/design/snapshots.md), over 1, 2 and 4 workers: exact JSON
// text, the shape of real trees (scopes, timeouts, sources, shields,
// blocking tasks), the limits, every error message, and snapshots taken
// while the tree changes under them.
#include "weft/snapshot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::CancelNodeKind;
using weft::CancelNodeSnapshot;
using weft::FiberState;
using weft::test::eventually;
using weft::test::message_of;
using weft::test::WorkersTest;

class SnapshotTest : public WorkersTest {};
WEFT_INSTANTIATE_WORKERS(SnapshotTest);

weft::FiberOptions named(std::string name, weft::Priority p = weft::Priority::normal) {
  weft::FiberOptions o;
  o.name = std::move(name);
  o.priority = p;
  return o;
}

// The first node of `kind` owned by fiber `id` (depth first), or null.
const CancelNodeSnapshot* find(const CancelNodeSnapshot& n, CancelNodeKind kind, weft::FiberId id) {
  if (n.kind == kind && n.fiber == id) return &n;
  for (const auto& c : n.children) {
    if (const CancelNodeSnapshot* r = find(c, kind, id)) return r;
  }
  return nullptr;
}

std::size_t count_nodes(const CancelNodeSnapshot& n) {
  std::size_t k = 1;
  for (const auto& c : n.children) k += count_nodes(c);
  return k;
}

std::size_t depth_of(const CancelNodeSnapshot& n) {
  std::size_t d = 0;
  for (const auto& c : n.children) d = std::max(d, 1 + depth_of(c));
  return d;
}

TEST(SnapshotJson, FiberSchemaIsExact) {
  weft::FiberSnapshot s;
  s.id = 42;
  s.parent_id = 7;
  s.name = "fetch \"a\"";
  s.state = FiberState::parked;
  s.priority = weft::Priority::high;
  s.cancelled = true;
  EXPECT_EQ(weft::to_json(s), R"({"cancelled":true,"id":42,"name":"fetch \"a\"","parent_id":7,)"
                              R"("priority":"high","state":"parked"})");
}

TEST(SnapshotJson, CancelTreeSchemaIsExact) {
  CancelNodeSnapshot scope;
  scope.kind = CancelNodeKind::scope;
  scope.fiber = 3;
  scope.bound_fiber = 3;
  scope.deadline_ns = 5'000'000'000;
  scope.deadline_in_ns = 250'000'000;
  scope.callbacks = 1;
  scope.omitted = 2;
  CancelNodeSnapshot child;
  child.kind = CancelNodeKind::fiber;
  child.fiber = 9;
  child.fiber_state = FiberState::runnable;
  child.cancelled = true;
  child.deadline_ns = 5'000'000'000;
  child.deadline_in_ns = -1;
  child.deadline_fired = false;
  scope.children.push_back(child);
  CancelNodeSnapshot root;  // kind root, nothing else set
  root.children.push_back(scope);
  EXPECT_EQ(weft::to_json(root),
            R"({"bound_fiber":null,"callbacks":0,"cancelled":false,"children":[)"
            R"({"bound_fiber":3,"callbacks":1,"cancelled":false,"children":[)"
            R"({"bound_fiber":null,"callbacks":0,"cancelled":true,"children":[],)"
            R"("deadline_fired":false,"deadline_in_ns":-1,"deadline_ns":5000000000,)"
            R"("fiber":9,"fiber_state":"runnable","kind":"fiber","omitted":0}],)"
            R"("deadline_fired":false,"deadline_in_ns":250000000,"deadline_ns":5000000000,)"
            R"("fiber":3,"fiber_state":null,"kind":"scope","omitted":2}],)"
            R"("deadline_fired":false,"deadline_in_ns":null,"deadline_ns":null,)"
            R"("fiber":null,"fiber_state":null,"kind":"root","omitted":0})");
}

TEST(SnapshotJson, NamesOfEveryEnumerator) {
  EXPECT_STREQ(weft::to_string(weft::Priority::low), "low");
  EXPECT_STREQ(weft::to_string(weft::Priority::normal), "normal");
  EXPECT_STREQ(weft::to_string(weft::Priority::high), "high");
  EXPECT_STREQ(weft::to_string(weft::Priority::critical), "critical");
  const std::pair<CancelNodeKind, const char*> kinds[] = {
      {CancelNodeKind::root, "root"},         {CancelNodeKind::fiber, "fiber"},
      {CancelNodeKind::blocking, "blocking"}, {CancelNodeKind::scope, "scope"},
      {CancelNodeKind::shield, "shield"},     {CancelNodeKind::source, "source"}};
  for (auto [k, name] : kinds) EXPECT_STREQ(weft::to_string(k), name);
}

TEST(SnapshotErrors, ExactMessages) {
  EXPECT_EQ(message_of([] { (void)weft::cancel_tree(weft::CancellationToken()); }),
            "weft: cancel_tree() of an empty token");
  EXPECT_EQ(message_of([] { (void)weft::cancel_tree(weft::FiberRef()); }),
            "weft: cancel_tree() of an empty FiberRef");
  EXPECT_EQ(message_of([] { (void)weft::runtime_cancel_tree(); }),
            "weft: runtime_cancel_tree() outside a runtime");
  EXPECT_EQ(message_of([] { (void)weft::this_fiber::snapshot(); }),
            "weft: this_fiber::snapshot() outside a fiber");
  weft::CancellationSource src;
  weft::SnapshotLimits deep;
  deep.max_depth = 65;
  EXPECT_EQ(message_of([&] { (void)weft::cancel_tree(src.token(), deep); }),
            "weft: SnapshotLimits::max_depth must be at most 64");
  weft::SnapshotLimits none;
  none.max_nodes = 0;
  EXPECT_EQ(message_of([&] { (void)weft::cancel_tree(src.token(), none); }),
            "weft: SnapshotLimits::max_nodes must be at least 1");
  // An empty FiberRef is a snapshot of no fiber, not an error.
  const weft::FiberSnapshot s = weft::snapshot(weft::FiberRef());
  EXPECT_EQ(s.id, 0u);
  EXPECT_EQ(s.state, FiberState::finished);
}

TEST_P(SnapshotTest, FiberThroughItsLife) {
  weft::Runtime rt(config());
  rt.block_on([] {
    const weft::FiberId me = weft::this_fiber::id();
    const weft::FiberSnapshot self = weft::this_fiber::snapshot();
    EXPECT_EQ(self.id, me);
    EXPECT_EQ(self.state, FiberState::running);
    EXPECT_FALSE(self.cancelled);

    auto [tx, rx] = weft::channel<int>(0);
    weft::FiberRef child_ref;
    std::atomic<bool> have_ref{false};
    auto child = weft::spawn(named("snap-child", weft::Priority::high), [&, rx = rx] {
      child_ref = weft::this_fiber::handle();
      have_ref.store(true);
      (void)rx.recv();
    });
    ASSERT_TRUE(eventually([&] { return have_ref.load(); }));
    ASSERT_TRUE(eventually([&] { return weft::snapshot(child_ref).state == FiberState::parked; }));
    weft::FiberSnapshot s = weft::snapshot(child_ref);
    EXPECT_EQ(s.id, child.id());
    EXPECT_EQ(s.parent_id, me);
    EXPECT_EQ(s.name, "snap-child");
    EXPECT_EQ(s.priority, weft::Priority::high);
    EXPECT_FALSE(s.cancelled);
    EXPECT_EQ(weft::to_json(s), R"({"cancelled":false,"id":)" + std::to_string(child.id()) +
                                    R"(,"name":"snap-child","parent_id":)" + std::to_string(me) +
                                    R"(,"priority":"high","state":"parked"})");
    child.cancel();
    EXPECT_THROW(child.join(), weft::Cancelled);
    s = weft::snapshot(child_ref);
    EXPECT_EQ(s.state, FiberState::finished);
    EXPECT_TRUE(s.cancelled);
  });
}

TEST_P(SnapshotTest, TreeOfScopesTimeoutsAndChildren) {
  weft::Runtime rt(config());
  rt.block_on([] {
    const weft::FiberId me = weft::this_fiber::id();
    weft::scope([&](weft::Scope& s) {
      std::vector<weft::FiberId> kids;
      std::atomic<int> parked{0};
      for (int i = 0; i < 3; ++i) {
        auto h = s.spawn([&] {
          weft::move_on_after(1h, [&] {
            parked.fetch_add(1);
            weft::this_fiber::sleep_for(1h);
          });
        });
        kids.push_back(h.id());
      }
      ASSERT_TRUE(eventually([&] { return parked.load() == 3; }));
      const CancelNodeSnapshot t = weft::cancel_tree(weft::this_fiber::handle());
      // me -> scope (opened by me, my innermost: bound) -> 3 fibers, each
      // -> its move_on_after scope (opened by it, bound to it).
      EXPECT_EQ(t.kind, CancelNodeKind::fiber);
      EXPECT_EQ(t.fiber, me);
      EXPECT_EQ(t.fiber_state, FiberState::running);
      EXPECT_EQ(t.bound_fiber, 0u);  // my innermost scope is the nursery's
      ASSERT_EQ(t.children.size(), 1u);
      const CancelNodeSnapshot& nursery = t.children[0];
      EXPECT_EQ(nursery.kind, CancelNodeKind::scope);
      EXPECT_EQ(nursery.fiber, me);
      EXPECT_EQ(nursery.bound_fiber, me);
      EXPECT_EQ(nursery.deadline_ns, -1);
      EXPECT_EQ(nursery.children.size(), 3u);
      EXPECT_EQ(nursery.omitted, 0u);
      for (weft::FiberId k : kids) {
        const CancelNodeSnapshot* f = find(nursery, CancelNodeKind::fiber, k);
        ASSERT_NE(f, nullptr) << k;
        EXPECT_FALSE(f->cancelled);
        ASSERT_TRUE(eventually([&] {
          const auto again = weft::cancel_tree(weft::this_fiber::handle());
          const auto* g = find(again, CancelNodeKind::fiber, k);
          return g != nullptr && g->fiber_state == FiberState::parked;
        }));
        ASSERT_EQ(f->children.size(), 1u);
        const CancelNodeSnapshot& timeout = f->children[0];
        EXPECT_EQ(timeout.kind, CancelNodeKind::scope);
        EXPECT_EQ(timeout.fiber, k);
        EXPECT_EQ(timeout.bound_fiber, k);
        EXPECT_GT(timeout.deadline_ns, 0);
        EXPECT_GT(timeout.deadline_in_ns, 0);
        EXPECT_LE(timeout.deadline_in_ns, std::int64_t{3600} * 1'000'000'000);
        EXPECT_FALSE(timeout.deadline_fired);
        EXPECT_EQ(timeout.callbacks, 0u);
      }
      // The same tree as JSON parses and carries the same facts.
      const nlohmann::json j = nlohmann::json::parse(weft::to_json(t));
      EXPECT_EQ(j["kind"], "fiber");
      EXPECT_EQ(j["children"][0]["kind"], "scope");
      EXPECT_EQ(j["children"][0]["children"].size(), 3u);
      EXPECT_EQ(j["children"][0]["deadline_ns"], nullptr);
      s.cancel();
    });
    // After the nursery: cancelled and gone, nothing left under me.
    const CancelNodeSnapshot after = weft::cancel_tree(weft::this_fiber::handle());
    EXPECT_TRUE(after.children.empty());
    EXPECT_FALSE(after.cancelled);
  });
}

TEST_P(SnapshotTest, FiredDeadlineAndCancelledSubtree) {
  weft::Runtime rt(config());
  rt.block_on([] {
    weft::move_on_after(1ms, [] {
      weft::this_fiber::sleep_for(1h);  // the deadline cancels it
    });
    weft::move_on_after(1h, [] {
      weft::CancellationSource src(weft::this_fiber::cancellation_token());
      weft::CancellationSource grandchild(src.token());
      weft::CancellationCallback cb(grandchild.token(), [] {});
      CancelNodeSnapshot t = weft::cancel_tree(src.token());
      EXPECT_EQ(t.kind, CancelNodeKind::source);
      EXPECT_EQ(t.fiber, 0u);
      EXPECT_GT(t.deadline_ns, 0);  // inherited from the scope it hangs under
      ASSERT_EQ(t.children.size(), 1u);
      EXPECT_EQ(t.children[0].kind, CancelNodeKind::source);
      EXPECT_EQ(t.children[0].callbacks, 1u);
      src.cancel();
      t = weft::cancel_tree(src.token());
      EXPECT_TRUE(t.cancelled);
      EXPECT_TRUE(t.children.empty());  // a cancelled node lets go of its children
      EXPECT_TRUE(weft::cancel_tree(grandchild.token()).cancelled);
      EXPECT_EQ(weft::cancel_tree(grandchild.token()).callbacks, 0u);  // it ran
      EXPECT_FALSE(weft::this_fiber::is_cancelled());  // cancelling a child never reaches up
    });
    // A deadline that fired is reported on its node; the fiber's own node
    // is untouched.
    weft::move_on_after(1ms, [&] {
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::Cancelled&) {
        const CancelNodeSnapshot t = weft::cancel_tree(weft::this_fiber::cancellation_token());
        EXPECT_EQ(t.kind, CancelNodeKind::scope);
        EXPECT_TRUE(t.cancelled);
        EXPECT_TRUE(t.deadline_fired);
        EXPECT_LE(t.deadline_in_ns, 0);
        throw;
      }
    });
    EXPECT_FALSE(weft::snapshot(weft::this_fiber::handle()).cancelled);
  });
}

TEST_P(SnapshotTest, RuntimeTreeShowsFibersShieldsAndBlockingTasks) {
  weft::Runtime rt(config());
  rt.block_on([] {
    const weft::FiberId me = weft::this_fiber::id();
    std::atomic<bool> blocking_in{false}, release_blocking{false};
    auto b = weft::spawn_blocking([&] {
      blocking_in.store(true);
      while (!release_blocking.load()) std::this_thread::sleep_for(1ms);
    });
    ASSERT_TRUE(eventually([&] { return blocking_in.load(); }));
    const CancelNodeSnapshot t = weft::runtime_cancel_tree();
    EXPECT_EQ(t.kind, CancelNodeKind::root);
    EXPECT_FALSE(t.cancelled);
    const CancelNodeSnapshot* mine = find(t, CancelNodeKind::fiber, me);
    ASSERT_NE(mine, nullptr);
    EXPECT_EQ(mine->fiber_state, FiberState::running);
    EXPECT_EQ(mine->bound_fiber, me);
    ASSERT_EQ(mine->children.size(), 1u);
    EXPECT_EQ(mine->children[0].kind, CancelNodeKind::blocking);
    EXPECT_EQ(mine->children[0].fiber, 0u);
    release_blocking.store(true);
    b.join();

    weft::shield([&] {
      // A shield is not attached to the scopes around it: invisible from
      // the root, visible from inside.
      const CancelNodeSnapshot from_root = weft::runtime_cancel_tree();
      const CancelNodeSnapshot* m = find(from_root, CancelNodeKind::fiber, me);
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m->bound_fiber, 0u);
      EXPECT_TRUE(m->children.empty());
      const CancelNodeSnapshot inside = weft::cancel_tree(weft::this_fiber::cancellation_token());
      EXPECT_EQ(inside.kind, CancelNodeKind::shield);
      EXPECT_EQ(inside.fiber, me);
      EXPECT_EQ(inside.bound_fiber, me);
    });
  });
}

TEST_P(SnapshotTest, LimitsBoundDepthAndCount) {
  weft::Config cfg = config();
  // ASan's redzones make each level's frames several times larger: 64
  // levels overflowed the default 256 KiB stack under ASan (workers_1).
  if (weft::test::kSanitized) cfg.stack_size = std::size_t{1} << 20;
  weft::Runtime rt(cfg);
  rt.block_on([] {
    // A chain of 200 sources: depth stops at max_depth, the rest omitted.
    std::vector<weft::CancellationSource> chain;
    chain.emplace_back();
    for (int i = 1; i < 200; ++i) chain.emplace_back(chain.back().token());
    weft::SnapshotLimits lim;
    CancelNodeSnapshot t = weft::cancel_tree(chain.front().token(), lim);
    EXPECT_EQ(depth_of(t), 32u);
    const CancelNodeSnapshot* n = &t;
    while (!n->children.empty()) n = &n->children[0];
    EXPECT_EQ(n->omitted, 1u);
    lim.max_depth = 64;  // the most allowed, on a stack of the default size
    std::string text = weft::spawn([&] {
                         return weft::to_json(weft::cancel_tree(chain.front().token(), lim));
                       }).join();
    EXPECT_EQ(depth_of(weft::cancel_tree(chain.front().token(), lim)), 64u);
    EXPECT_EQ(nlohmann::json::parse(text)["kind"], "source");
    lim.max_depth = 0;
    t = weft::cancel_tree(chain.front().token(), lim);
    EXPECT_TRUE(t.children.empty());
    EXPECT_EQ(t.omitted, 1u);

    // 100 children: max_nodes counts the first node too.
    weft::CancellationSource wide;
    std::vector<weft::CancellationSource> leaves;
    for (int i = 0; i < 100; ++i) leaves.emplace_back(wide.token());
    lim = {};
    lim.max_nodes = 10;
    t = weft::cancel_tree(wide.token(), lim);
    EXPECT_EQ(t.children.size(), 9u);
    EXPECT_EQ(t.omitted, 91u);
    EXPECT_EQ(count_nodes(t), 10u);
    lim.max_nodes = 1;
    t = weft::cancel_tree(wide.token(), lim);
    EXPECT_EQ(count_nodes(t), 1u);
    EXPECT_EQ(t.omitted, 100u);
    t = weft::cancel_tree(wide.token());
    EXPECT_EQ(t.children.size(), 100u);

    // The node bound holds across levels: 10 sources of 10 children each.
    weft::CancellationSource top;
    std::vector<weft::CancellationSource> mids, lows;
    for (int i = 0; i < 10; ++i) {
      mids.emplace_back(top.token());
      for (int j = 0; j < 10; ++j) lows.emplace_back(mids.back().token());
    }
    lim = {};
    lim.max_nodes = 20;
    t = weft::cancel_tree(top.token(), lim);
    EXPECT_EQ(count_nodes(t), 20u);
    std::size_t omitted = t.omitted;
    for (const auto& c : t.children) omitted += c.omitted;
    EXPECT_EQ(omitted, 111u - 20u);  // every node left out is counted once
  });
}

// Snapshots taken while fibers spawn, open scopes, get cancelled and end
// under them: every snapshot is a well-formed tree within its limits, and
// nothing leaks or races (ASan, TSan).
TEST_P(SnapshotTest, SnapshotsWhileTheTreeChanges) {
  weft::Runtime rt(config());
  rt.block_on([] {
    const long rounds = weft::test::scaled(200, 20);
    std::atomic<bool> stop{false};
    weft::test::Checker check;
    auto observer = weft::spawn([&] {
      weft::SnapshotLimits lim;
      lim.max_nodes = 500;
      while (!stop.load()) {
        const CancelNodeSnapshot t = weft::runtime_cancel_tree(lim);
        check.check(count_nodes(t) <= 500, "node bound");
        check.check(t.kind == CancelNodeKind::root, "root kind");
        const nlohmann::json j = nlohmann::json::parse(weft::to_json(t));
        check.check(j["kind"] == "root", "json root");
        weft::this_fiber::yield();
      }
    });
    for (long r = 0; r < rounds; ++r) {
      weft::scope([&](weft::Scope& s) {
        for (int i = 0; i < 8; ++i) {
          s.spawn([i] {
            weft::move_on_after(std::chrono::microseconds(50 * i), [] {
              weft::CancellationSource src(weft::this_fiber::cancellation_token());
              weft::this_fiber::sleep_for(1ms);
            });
          });
        }
        if (r % 3 == 0) s.cancel();
      });
    }
    stop.store(true);
    observer.join();
    WEFT_EXPECT_NO_FAILURES(check);
  });
}

}  // namespace
