// Fiber-local storage (weft::FiberLocal): per-fiber values, propagation
// modes (none/copy/share) into child fibers, grandchildren, spawn_blocking
// and Runtime::spawn from plain threads, destruction (exactly once, on the
// holder, before join returns), keys dying before their values, key ids never
// reused, isolation across migrations, move-only types, thread_local
// behaviour on plain threads, and the request-id example of issue 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::FiberLocal;
using weft::JoinHandle;
using weft::Propagation;
using weft::Runtime;
using weft::test::Checker;
using weft::test::eventually;
using weft::test::expect_no_live_fibers;
namespace tf = weft::this_fiber;

class Fls : public weft::test::WorkersTest {};
WEFT_INSTANTIATE_WORKERS(Fls);

// --- counting types ---------------------------------------------------------

/// Counters shared by the Counted values of one test.
struct Counts {
  std::atomic<int> made{0};       // every constructor, copies included
  std::atomic<int> copies{0};     // copy constructors only
  std::atomic<int> destroyed{0};  // destructors
  std::atomic<weft::FiberId> last_copier{0};
  std::atomic<weft::FiberId> last_destroyer{0};
  std::atomic<bool> last_destroyed_in_fiber{false};
  int live() const { return made.load() - destroyed.load(); }
};

struct Counted {
  Counts* c;
  int v;
  Counted(Counts& counts, int value) : c(&counts), v(value) { ++c->made; }
  Counted(const Counted& o) : c(o.c), v(o.v) {
    ++c->made;
    ++c->copies;
    c->last_copier = tf::id();
  }
  Counted& operator=(const Counted&) = default;
  ~Counted() {
    c->last_destroyer = tf::id();
    c->last_destroyed_in_fiber = tf::in_fiber();
    ++c->destroyed;
  }
};

/// Factory for FiberLocal<Counted> (Counted has no default constructor).
auto counted_factory(Counts& c, int v = 0) {
  return [&c, v] { return Counted(c, v); };
}

struct DtorError : std::runtime_error {
  DtorError() : std::runtime_error("fiber-local destructor threw") {}
};

/// A value whose destructor throws DtorError.
struct Thrower {
  std::atomic<int>* destroyed;
  explicit Thrower(std::atomic<int>& d) : destroyed(&d) {}
  Thrower(const Thrower&) = default;
  ~Thrower() noexcept(false) {
    ++*destroyed;
    throw DtorError();
  }
};

// --- plain threads: thread_local semantics -----------------------------------

TEST(FlsPlainThread, BehavesLikeThreadLocal) {
  Counts c;
  {
    FiberLocal<Counted> key(Propagation::none, counted_factory(c, 7));
    EXPECT_FALSE(key.has_value());
    EXPECT_EQ(key.try_get(), nullptr);
    EXPECT_EQ(c.made, 0) << "has_value/try_get must not create a value";
    Counted& v = key.get();
    EXPECT_EQ(v.v, 7);
    EXPECT_EQ(&key.get(), &v) << "get() must return the same object each time";
    EXPECT_EQ(c.made, 1) << "the factory result must be the value (no copy, no second call)";
    key.set(Counted(c, 8));
    EXPECT_EQ(key.get().v, 8);
    EXPECT_EQ(c.live(), 1) << "set() must destroy the previous value";

    // Another thread starts without a value, and its value dies with it.
    int other_seen = -1;
    bool other_had_value = true;
    std::thread t([&] {
      other_had_value = key.has_value();
      key.emplace(c, 9);
      other_seen = key.get().v;
    });
    t.join();
    EXPECT_FALSE(other_had_value);
    EXPECT_EQ(other_seen, 9);
    EXPECT_EQ(c.live(), 1) << "the other thread's value must be destroyed at its exit";
    EXPECT_EQ(key.get().v, 8) << "the other thread changed this thread's value";

    key.reset();
    EXPECT_FALSE(key.has_value());
    EXPECT_EQ(c.live(), 0);
    key.reset();  // no value: no effect
    EXPECT_EQ(key.get().v, 7) << "after reset(), get() makes a fresh default";
  }
  EXPECT_EQ(c.live(), 0) << "destroying the key must destroy the calling thread's value";
}

TEST(FlsPlainThread, ThreadExitDestroysValuesMadeByDestructors) {
  // A value whose destructor (run at thread exit) sets another FiberLocal:
  // that value is destroyed as well, and the first key's value is still
  // readable from the second value's destructor if the second key is newer.
  static Counts c;  // outlives the thread's exit handlers
  c.made = c.destroyed = 0;
  FiberLocal<Counted> inner(Propagation::none, counted_factory(c, 1));
  struct MakesInner {
    FiberLocal<Counted>* inner;
    ~MakesInner() { inner->get().v = 2; }
  };
  FiberLocal<std::optional<MakesInner>> outer;
  std::thread t([&] { outer.get().emplace(MakesInner{&inner}); });
  t.join();
  EXPECT_EQ(c.made, 1) << "the destructor's get() should have made one value";
  EXPECT_EQ(c.live(), 0) << "a value made during thread-exit destruction leaked";
}

// --- propagation: none --------------------------------------------------------

TEST_P(Fls, NoneChildrenStartWithoutAValue) {
  Runtime rt(config());
  FiberLocal<int> key;  // Propagation::none
  EXPECT_EQ(key.propagation(), Propagation::none);
  struct Seen {
    bool child = true, grandchild = true, blocking = true, fiber_of_blocking = true;
    int child_default = -1, parent_after = -1;
  };
  Seen s = rt.block_on([&] {
    Seen r;
    key.set(1);
    auto child = weft::spawn([&] {
      r.child = key.has_value();
      r.child_default = key.get();
      key.set(5);
      weft::spawn([&] { r.grandchild = key.has_value(); }).join();
    });
    child.join();
    weft::spawn_blocking([&] {
      r.blocking = key.has_value();
      key.set(6);
      weft::spawn([&] { r.fiber_of_blocking = key.has_value(); }).join();
    }).join();
    r.parent_after = key.get();
    return r;
  });
  EXPECT_FALSE(s.child);
  EXPECT_EQ(s.child_default, 0) << "get() without a value must make T{}";
  EXPECT_FALSE(s.grandchild);
  EXPECT_FALSE(s.blocking);
  EXPECT_FALSE(s.fiber_of_blocking);
  EXPECT_EQ(s.parent_after, 1) << "children changed the parent's value";

  // From a plain thread.
  key.set(9);
  EXPECT_FALSE(rt.spawn([&] { return key.has_value(); }).join());
  EXPECT_EQ(key.get(), 9);
  expect_no_live_fibers(rt);
}

// --- propagation: copy --------------------------------------------------------

TEST_P(Fls, CopyChildrenGetIndependentCopiesMadeAtSpawn) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<Counted> key(Propagation::copy, counted_factory(c));
  EXPECT_EQ(key.propagation(), Propagation::copy);
  struct Seen {
    int child_first = -1, child_after_grandchild = -1, grandchild = -1, blocking = -1;
    int fiber_of_blocking = -1, blocking_after = -1, parent_after = -1;
    int copies_right_after_spawn = -1;
    weft::FiberId parent = 0, copier = 0, child = 0, copier_for_grandchild = 0;
    const Counted* parent_addr = nullptr;
    const Counted* child_addr = nullptr;
  };
  Seen s = rt.block_on([&] {
    Seen r;
    r.parent = tf::id();
    key.emplace(c, 1);
    r.parent_addr = &key.get();
    weft::Event go;
    auto child = weft::spawn([&] {
      go.wait();  // the parent changes its value meanwhile
      r.child = tf::id();
      r.child_addr = &key.get();
      r.child_first = key.get().v;
      key.get().v = 10;
      weft::spawn([&] {
        r.grandchild = key.get().v;
        key.get().v = 20;
      }).join();
      r.copier_for_grandchild = c.last_copier;
      r.child_after_grandchild = key.get().v;
      weft::spawn_blocking([&] {
        r.blocking = key.get().v;
        key.get().v = 30;
        weft::spawn([&] { r.fiber_of_blocking = key.get().v; }).join();
        r.blocking_after = key.get().v;
      }).join();
    });
    r.copies_right_after_spawn = c.copies;
    r.copier = c.last_copier;
    key.get().v = 2;
    go.set();
    child.join();
    r.parent_after = key.get().v;
    return r;
  });
  EXPECT_EQ(s.copies_right_after_spawn, 1) << "the copy must be made during spawn()";
  EXPECT_EQ(s.copier, s.parent) << "the copy must be made on the spawning fiber";
  EXPECT_EQ(s.child_first, 1) << "the child must see the value as of its spawn";
  EXPECT_NE(s.child_addr, s.parent_addr);
  EXPECT_EQ(s.grandchild, 10) << "a grandchild copies its parent's value";
  EXPECT_EQ(s.copier_for_grandchild, s.child);
  EXPECT_EQ(s.child_after_grandchild, 10) << "the grandchild changed the child's value";
  EXPECT_EQ(s.blocking, 10) << "spawn_blocking must get a copy of the spawner's value";
  EXPECT_EQ(s.fiber_of_blocking, 30) << "a fiber spawned by a blocking task copies the task's";
  EXPECT_EQ(s.blocking_after, 30);
  EXPECT_EQ(s.parent_after, 2) << "a child's change reached the parent";
  EXPECT_EQ(c.copies, 4);  // child, grandchild, blocking task, its fiber
  EXPECT_EQ(c.live(), 0) << "every copy must die with its holder";
  expect_no_live_fibers(rt);
}

// --- propagation: share -------------------------------------------------------

TEST_P(Fls, ShareChildrenReferToTheSameObject) {
  Counts c, c2;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<Counted> key(Propagation::share, counted_factory(c));
  EXPECT_EQ(key.propagation(), Propagation::share);
  std::set<const Counted*> addrs;
  std::mutex mu;
  auto note = [&] {
    std::lock_guard g(mu);
    addrs.insert(&key.get());
  };
  int parent_sees = rt.block_on([&] {
    key.emplace(c, 1);
    note();
    weft::spawn([&] {
      note();
      key.get().v += 1;  // joins order these increments
      weft::spawn([&] {
        note();
        key.get().v += 10;
      }).join();
      weft::spawn_blocking([&] {
        note();
        key.get().v += 100;
        weft::spawn([&] {
          note();
          key.get().v += 1000;
        }).join();
      }).join();
    }).join();
    return key.get().v;
  });
  EXPECT_EQ(addrs.size(), 1u) << "share: every holder must see one object";
  EXPECT_EQ(parent_sees, 1112) << "changes by children must be visible to the parent";
  EXPECT_EQ(c.made, 1) << "share must never copy";
  EXPECT_EQ(c.live(), 0) << "the shared value must die with its last holder";

  // From a plain thread, and the object lives as long as its last holder.
  FiberLocal<Counted> key2(Propagation::share, counted_factory(c2));
  key2.emplace(c2, 5);
  const Counted* addr = &key2.get();
  weft::Event release;
  auto h = rt.spawn([&] {
    release.wait();
    return std::pair{&key2.get(), key2.get().v};
  });
  const weft::FiberId child_id = h.id();
  key2.reset();  // the child still holds it
  EXPECT_EQ(c2.destroyed, 0) << "a shared value died while a holder was alive";
  release.set();
  auto [child_addr, child_v] = h.join();
  EXPECT_EQ(child_addr, addr);
  EXPECT_EQ(child_v, 5);
  EXPECT_EQ(c2.destroyed, 1) << "the last holder's end must destroy it, before join returns";
  EXPECT_EQ(c2.last_destroyer, child_id) << "the last holder must destroy it, on its fiber";
  expect_no_live_fibers(rt);
}

TEST_P(Fls, ShareSetRebindsOnlyTheCaller) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<Counted> key(Propagation::share, counted_factory(c));
  auto [child_v, parent_v] = rt.block_on([&] {
    key.emplace(c, 1);
    weft::Event rebound;
    auto child = weft::spawn([&] {
      rebound.wait();
      return key.get().v;
    });
    key.set(Counted(c, 2));  // the parent now has a new object; the child keeps the old
    rebound.set();
    return std::pair{child.join(), key.get().v};
  });
  EXPECT_EQ(child_v, 1);
  EXPECT_EQ(parent_v, 2);
  EXPECT_EQ(c.live(), 0);
}

// --- Runtime::spawn and block_on from plain threads ---------------------------

TEST_P(Fls, RuntimeSpawnFromPlainThreadsInheritsTheThreadsValues) {
  Runtime rt(config());
  FiberLocal<std::string> copy_key{Propagation::copy};
  FiberLocal<std::string> share_key{Propagation::share};
  FiberLocal<std::string> none_key;
  struct Seen {
    std::string copy, share;
    bool none = true;
    const std::string* share_addr = nullptr;
    const std::string* copy_addr = nullptr;
  };
  auto probe = [&] {
    Seen s{copy_key.get(), share_key.get(), none_key.has_value(), &share_key.get(),
           &copy_key.get()};
    copy_key.get() = "changed by a fiber";
    share_key.get() += "+fiber";
    return s;
  };
  for (int pass = 0; pass < 2; ++pass) {
    std::thread t([&] {
      copy_key.set("thread-copy");
      share_key.set("thread-share");
      none_key.set("thread-none");
      // pass 0: Runtime::spawn; pass 1: block_on (the root fiber).
      Seen s = pass == 0 ? rt.spawn(probe).join() : rt.block_on(probe);
      EXPECT_EQ(s.copy, "thread-copy");
      EXPECT_NE(s.copy_addr, &copy_key.get());
      EXPECT_EQ(s.share, "thread-share");
      EXPECT_EQ(s.share_addr, &share_key.get());
      EXPECT_FALSE(s.none);
      EXPECT_EQ(copy_key.get(), "thread-copy") << "the fiber's copy change reached the thread";
      EXPECT_EQ(share_key.get(), "thread-share+fiber") << "share change must be visible";
      EXPECT_EQ(none_key.get(), "thread-none");
    });
    t.join();
  }
  // This thread has no values: a child starts empty and makes its own.
  auto [has_copy, has_share] = rt.spawn([&] {
                                   return std::pair{copy_key.has_value(), share_key.has_value()};
                                 }).join();
  EXPECT_FALSE(has_copy);
  EXPECT_FALSE(has_share);
  EXPECT_FALSE(copy_key.has_value());
  expect_no_live_fibers(rt);
}

// --- spawn_blocking -----------------------------------------------------------

struct BlockingSeen {
  bool none_first = true, none_second = true;
  int copy_first = -1, copy_second = -1;
  std::thread::id thread_first, thread_second, destroyer_thread;
  bool destroyed_in_fiber = true;
  int live_after_first_join = -1;
};

/// Records where it is destroyed.
struct BlockingProbe {
  explicit BlockingProbe(BlockingSeen* seen) : r(seen) {}
  BlockingProbe(const BlockingProbe&) = default;
  ~BlockingProbe() {
    r->destroyer_thread = weft::test::current_thread_id();
    r->destroyed_in_fiber = tf::in_fiber();
  }
  BlockingSeen* r;
};

TEST_P(Fls, SpawnBlockingTasksHaveTheirOwnStore) {
  Counts c;  // before the runtime: values may die as late as its threads
  BlockingSeen s;
  weft::Config cfg = config();
  cfg.max_blocking_threads = 1;  // both tasks below run on the same pool thread
  Runtime rt(cfg);
  FiberLocal<Counted> none_key(Propagation::none, counted_factory(c));
  FiberLocal<Counted> copy_key(Propagation::copy, counted_factory(c));
  FiberLocal<std::optional<BlockingProbe>> probe;
  rt.block_on([&] {
    BlockingSeen& r = s;
    copy_key.emplace(c, 1);
    const int live_before = c.live();
    weft::spawn_blocking([&] {
      r.thread_first = weft::test::current_thread_id();
      r.none_first = none_key.has_value();
      r.copy_first = copy_key.get().v;
      copy_key.get().v = 50;  // must not leak into the next task on this thread
      none_key.emplace(c, 7);
      probe.get().emplace(&r);
    }).join();
    r.live_after_first_join = c.live() - live_before;
    copy_key.get().v = 2;
    weft::spawn_blocking([&] {
      r.thread_second = weft::test::current_thread_id();
      r.none_second = none_key.has_value();
      r.copy_second = copy_key.get().v;
    }).join();
  });
  EXPECT_FALSE(s.none_first);
  EXPECT_EQ(s.copy_first, 1);
  EXPECT_EQ(s.live_after_first_join, 0) << "a blocking task's values must die before join returns";
  EXPECT_EQ(s.destroyer_thread, s.thread_first) << "values must die on the task's thread";
  EXPECT_FALSE(s.destroyed_in_fiber);
  EXPECT_EQ(s.thread_second, s.thread_first) << "test setup: expected one pool thread";
  EXPECT_FALSE(s.none_second) << "a value of the previous task leaked through the pool thread";
  EXPECT_EQ(s.copy_second, 2) << "the second task must copy its spawner's current value";
  EXPECT_EQ(c.live(), 0);
  expect_no_live_fibers(rt);
}

// --- destruction ----------------------------------------------------------------

TEST_P(Fls, ValuesDieOnceOnTheirFiberBeforeJoinReturns) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<int> earlier;  // created before `key`: still readable from its destructor
  struct Probe {
    Counted counted;
    FiberLocal<int>* earlier;
    std::atomic<int>* earlier_seen;
    Probe(Counts& c, FiberLocal<int>* e, std::atomic<int>* seen)
        : counted(c, 0), earlier(e), earlier_seen(seen) {}
    Probe(const Probe&) = default;
    ~Probe() {
      // A destructor may park and read other values of its fiber.
      tf::sleep_for(1ms);
      tf::yield();
      *earlier_seen = earlier->has_value() ? earlier->get() : -1;
    }
  };
  std::atomic<int> earlier_seen{0};
  for (Propagation::Mode mode : {Propagation::Mode::none, Propagation::Mode::share}) {
    FiberLocal<std::optional<Probe>> key_none;
    FiberLocal<std::optional<Probe>> key_share{Propagation::share};
    FiberLocal<std::optional<Probe>>& key = mode == Propagation::none ? key_none : key_share;
    c.made = c.destroyed = 0;
    auto h = rt.spawn([&] {
      earlier.set(41);
      key.get().emplace(c, &earlier, &earlier_seen);
      tf::yield();
      return tf::id();
    });
    const weft::FiberId fid = h.id();
    EXPECT_EQ(h.join(), fid);
    EXPECT_EQ(c.made, 1);
    EXPECT_EQ(c.destroyed, 1) << "value not destroyed (exactly once) before join returned";
    EXPECT_EQ(c.last_destroyer, fid) << "the value must be destroyed on its own fiber";
    EXPECT_TRUE(c.last_destroyed_in_fiber);
    EXPECT_EQ(earlier_seen, 41) << "an earlier key's value must outlive a later key's";
  }
  // A fiber that throws: its values still die before join rethrows.
  c.made = c.destroyed = 0;
  FiberLocal<Counted> key(Propagation::none, counted_factory(c));
  auto h = rt.spawn([&] {
    key.emplace(c, 3);
    throw std::logic_error("body");
  });
  EXPECT_THROW(h.join(), std::logic_error);
  EXPECT_EQ(c.destroyed, 1);
  // A detached fiber: its values die when it ends.
  c.made = c.destroyed = 0;
  rt.spawn([&] { key.emplace(c, 4); }).detach();
  EXPECT_TRUE(eventually([&] { return c.destroyed.load() == 1; }));
  EXPECT_EQ(c.made, 1);
  expect_no_live_fibers(rt);
}

TEST_P(Fls, NewValuesMadeByDestructorsAreDestroyedToo) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<Counted> made_late(Propagation::none, counted_factory(c, 5));
  struct MakesOne {
    explicit MakesOne(FiberLocal<Counted>* l) : late(l) {}
    ~MakesOne() { late->get(); }  // creates made_late's value while the fiber ends
    FiberLocal<Counted>* late;
  };
  FiberLocal<std::optional<MakesOne>> key;  // newer key: destroyed first
  rt.spawn([&] {
      key.get().emplace(&made_late);
      if (made_late.has_value()) throw std::logic_error("test setup: made too early");
    }).join();
  EXPECT_EQ(c.made, 1);
  EXPECT_EQ(c.live(), 0) << "a value made by a destructor at fiber end leaked";
}

TEST_P(Fls, ThrowingDestructorsBecomeTheJoinError) {
  std::atomic<int> thrown{0};  // before the runtime: values may die as late as its threads
  Counts c;
  Runtime rt(config());
  FiberLocal<Thrower> thrower(Propagation::none, [&thrown] { return Thrower(thrown); });
  FiberLocal<Counted> other(Propagation::none, counted_factory(c));
  // A fiber that returned a value: join() rethrows the destructor's error,
  // and the fiber's other values are still destroyed.
  auto h = rt.spawn([&] {
    thrower.emplace(thrown);
    other.emplace(c, 1);
    return 5;
  });
  EXPECT_THROW(h.join(), DtorError);
  EXPECT_EQ(thrown, 1);
  EXPECT_EQ(c.live(), 0);
  // A fiber that threw first keeps its own error (the destructor's is
  // reported on stderr).
  auto h2 = rt.spawn([&]() -> int {
    thrower.emplace(thrown);
    throw std::logic_error("body");
  });
  EXPECT_THROW(h2.join(), std::logic_error);
  EXPECT_EQ(thrown, 2);
  // Same for spawn_blocking.
  int v = rt.block_on([&] {
    auto b = weft::spawn_blocking([&] {
      thrower.emplace(thrown);
      return 1;
    });
    try {
      b.join();
      return 0;
    } catch (const DtorError&) {
      return 2;
    }
  });
  EXPECT_EQ(v, 2);
  EXPECT_EQ(thrown, 3);
  // reset() propagates; destroying a key reports instead.
  rt.block_on([&] {
    thrower.emplace(thrown);
    EXPECT_THROW(thrower.reset(), DtorError);
    EXPECT_FALSE(thrower.has_value());
    auto k = std::make_unique<FiberLocal<Thrower>>();
    k->emplace(thrown);
    k.reset();  // reported on stderr, not thrown
  });
  EXPECT_EQ(thrown, 5);
  // A plain thread's throwing value at thread exit: reported, no crash.
  std::thread([&] { thrower.emplace(thrown); }).join();
  EXPECT_EQ(thrown, 6);
  // The runtime still works.
  EXPECT_EQ(rt.spawn([] { return 7; }).join(), 7);
  expect_no_live_fibers(rt);
}

TEST_P(Fls, FailedCopyFailsTheSpawnAndLeaksNothing) {
  struct Fragile {
    Counts* c;
    bool fail_copy;
    Fragile(Counts& counts, bool fail) : c(&counts), fail_copy(fail) { ++c->made; }
    Fragile(const Fragile& o) : c(o.c), fail_copy(o.fail_copy) {
      if (fail_copy) throw std::runtime_error("copy failed");
      ++c->made;
    }
    ~Fragile() { ++c->destroyed; }
  };
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  FiberLocal<Counted> fine_copy(Propagation::copy, counted_factory(c));
  FiberLocal<Counted> shared(Propagation::share, counted_factory(c));
  FiberLocal<std::optional<Fragile>> fragile{Propagation::copy};  // newest: copied last
  std::atomic<bool> ran{false};
  rt.block_on([&] {
    fine_copy.emplace(c, 1);
    shared.emplace(c, 2);
    fragile.get().emplace(c, true);
    EXPECT_THROW((void)weft::spawn([&] { ran = true; }), std::runtime_error);
    EXPECT_THROW((void)weft::spawn_blocking([&] { ran = true; }), std::runtime_error);
    EXPECT_EQ(c.live(), 3) << "a failed spawn must release what it copied or shared";
    EXPECT_EQ(&shared.get(), &shared.get());
    fragile.get().reset();  // now copyable (an empty optional)
    EXPECT_TRUE(weft::spawn([&] { return shared.get().v; }).join() == 2);
  });
  EXPECT_FALSE(ran) << "a fiber whose values could not be copied must not run";
  // From a plain thread too.
  fragile.get().emplace(c, true);
  EXPECT_THROW((void)rt.spawn([&] { ran = true; }), std::runtime_error);
  fragile.reset();
  EXPECT_FALSE(ran);
  EXPECT_EQ(c.live(), 0);
  expect_no_live_fibers(rt);
}

// --- keys -------------------------------------------------------------------------

TEST_P(Fls, KeyDestroyedBeforeTheFibersHoldingItsValues) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  constexpr int kHolders = 16;
  rt.block_on([&] {
    auto copy_key = std::make_unique<FiberLocal<Counted>>(Propagation::copy, counted_factory(c));
    auto share_key = std::make_unique<FiberLocal<Counted>>(Propagation::share, counted_factory(c));
    auto none_key = std::make_unique<FiberLocal<Counted>>(Propagation::none, counted_factory(c));
    copy_key->emplace(c, 1);
    share_key->emplace(c, 2);
    weft::Latch ready(kHolders);
    weft::Event keys_gone;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kHolders; ++i) {
      hs.push_back(weft::spawn([&, i, nk = none_key.get()] {
        nk->emplace(c, i);
        ready.count_down();
        keys_gone.wait();
        // Values of dead keys still propagate and die correctly.
        weft::spawn([] { tf::yield(); }).join();
      }));
    }
    ready.wait();
    copy_key.reset();  // each destroys the root's own value only
    share_key.reset();
    none_key.reset();
    EXPECT_GT(c.live(), 0) << "holders' values must outlive the keys";
    keys_gone.set();
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(c.live(), 0) << "values of destroyed keys were not destroyed with their holders";
  expect_no_live_fibers(rt);
}

TEST_P(Fls, KeyIdsAreNeverReused) {
  Counts c;  // before the runtime: values may die as late as its threads
  Runtime rt(config());
  const int kKeys = static_cast<int>(weft::test::scaled(2000, 200));
  // One storage for every key, so each new key sits at the old one's
  // address. A holder fiber keeps a value for every old key (destroying a
  // key does not reach other fibers' values); each new key must look empty
  // to it.
  std::optional<FiberLocal<Counted>> key;
  auto to_holder = weft::channel<int>(0);
  auto to_root = weft::channel<bool>(0);
  rt.block_on([&] {
    auto holder = weft::spawn([&] {
      while (auto i = to_holder.second.recv()) {
        const bool saw_old = key->has_value();
        key->emplace(c, *i);
        (void)to_root.first.send(!saw_old && key->get().v == *i);
      }
    });
    int bad = 0;
    for (int i = 0; i < kKeys; ++i) {
      key.emplace(Propagation::copy, counted_factory(c));
      if (key->has_value()) ++bad;
      (void)to_holder.first.send(i);
      if (!to_root.second.recv().value_or(false)) ++bad;
      key.reset();
    }
    to_holder.first.close();
    holder.join();
    EXPECT_EQ(bad, 0) << "a new key saw a value of an old key";
  });
  EXPECT_EQ(c.made, kKeys);
  EXPECT_EQ(c.live(), 0) << "the holder's values of dead keys must die with it";

  // On a plain thread: the key's destructor destroys this thread's value,
  // so creating and destroying keys does not accumulate values.
  c.made = c.destroyed = 0;
  for (int i = 0; i < kKeys; ++i) {
    key.emplace(Propagation::none, counted_factory(c, i));
    ASSERT_FALSE(key->has_value()) << "key " << i;
    ASSERT_EQ(key->get().v, i);
    key.reset();
    ASSERT_EQ(c.live(), 0) << "key " << i;
  }
  expect_no_live_fibers(rt);
}

// --- isolation across workers ------------------------------------------------------

class FlsMigration : public weft::test::WorkersTest {};
INSTANTIATE_TEST_SUITE_P(Workers, FlsMigration, ::testing::Values(2, 4), weft::test::workers_name);

void spin_for(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST_P(FlsMigration, ValuesStayWithTheirFiberAcrossYieldsSleepsAndMigrations) {
  Runtime rt(config());
  FiberLocal<int> mine;
  FiberLocal<std::string> path{Propagation::copy};
  Checker check;
  bool some_fiber_moved = false;
  int rounds = 0;
  const auto deadline = std::chrono::steady_clock::now() + weft::test::kPatience;
  while (!some_fiber_moved && std::chrono::steady_clock::now() < deadline && rounds < 50) {
    ++rounds;
    some_fiber_moved = rt.block_on([&] {
      constexpr int kFibers = 32;
      constexpr int kSteps = 40;
      path.set("root");
      std::vector<JoinHandle<bool>> hs;
      for (int f = 0; f < kFibers; ++f) {
        hs.push_back(weft::spawn([&, f] {
          const std::string want = "root/" + std::to_string(f);
          check.equal(mine.has_value(), false, "fresh fiber has a none value");
          mine.set(f);
          path.get() += "/" + std::to_string(f);
          const int* addr = &mine.get();
          std::set<int> workers;
          for (int s = 0; s < kSteps; ++s) {
            workers.insert(tf::worker_index());
            check.equal(mine.get(), f, "none value after a switch");
            check.equal(path.get(), want, "copy value after a switch");
            check.check(&mine.get() == addr, "value moved in memory");
            spin_for(20us);
            if ((s + f) % 8 == 0) {
              tf::sleep_for(1ms);
            } else {
              tf::yield();
            }
          }
          workers.insert(tf::worker_index());
          check.equal(mine.get(), f, "none value at the end");
          return workers.size() > 1;
        }));
      }
      bool moved = false;
      for (auto& h : hs) moved |= h.join();
      check.equal(path.get(), std::string("root"), "root's copy value");
      return moved;
    });
  }
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_TRUE(some_fiber_moved) << "no fiber migrated in " << rounds << " rounds";
  expect_no_live_fibers(rt);
}

TEST_P(FlsMigration, ManyFibersManyKeys) {
  Runtime rt(config());
  constexpr int kKeys = 12;
  std::vector<std::unique_ptr<FiberLocal<long>>> keys;
  for (int k = 0; k < kKeys; ++k) {
    // A mode chosen at run time (the Propagation::Mode constructor).
    keys.push_back(std::make_unique<FiberLocal<long>>(k % 3 == 0   ? Propagation::Mode::none
                                                      : k % 3 == 1 ? Propagation::Mode::copy
                                                                   : Propagation::Mode::share));
  }
  Checker check;
  const int kFibers = static_cast<int>(weft::test::scaled(2000, 200));
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(weft::spawn([&, f] {
        // Set keys in a fiber-dependent order (table inserts in any order).
        for (int i = 0; i < kKeys; ++i) {
          const int k = (i * 5 + f) % kKeys;
          keys[k]->set(static_cast<long>(f) * 100 + k);
        }
        tf::yield();
        for (int k = 0; k < kKeys; ++k) {
          check.equal(keys[k]->get(), static_cast<long>(f) * 100 + k, "value of key");
        }
        if (f % 4 == 0) {
          // A child: copy/share keys as of now, none keys empty.
          weft::spawn([&, f] {
            for (int k = 0; k < kKeys; ++k) {
              if (k % 3 == 0) {
                check.equal(keys[k]->has_value(), false, "child none key");
              } else {
                check.equal(keys[k]->get(), static_cast<long>(f) * 100 + k, "child key");
              }
            }
          }).join();
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  expect_no_live_fibers(rt);
}

// --- types ----------------------------------------------------------------------------

TEST_P(Fls, MoveOnlyAndImmovableTypes) {
  Runtime rt(config());
  FiberLocal<std::unique_ptr<int>> none_key;
  FiberLocal<std::unique_ptr<int>> share_key{Propagation::share};
  FiberLocal<std::mutex> immovable;  // made in place: default, emplace
  struct Seen {
    bool none_had = true;
    bool none_default_null = false;
    int* share_ptr = nullptr;
    std::mutex* mutex = nullptr;
  };
  auto [seen, root_ptr, root_value, root_mutex] = rt.block_on([&] {
    none_key.set(std::make_unique<int>(1));
    share_key.set(std::make_unique<int>(2));
    std::mutex* m = &immovable.get();
    Seen s = weft::spawn([&] {
               Seen r;
               r.none_had = none_key.has_value();
               r.none_default_null = none_key.get() == nullptr;
               r.share_ptr = share_key.get().get();
               if (r.share_ptr != nullptr) *r.share_ptr = 3;
               r.mutex = &immovable.emplace();
               std::lock_guard g(*r.mutex);
               return r;
             }).join();
    return std::tuple{s, share_key.get().get(), *share_key.get(), m};
  });
  EXPECT_FALSE(seen.none_had);
  EXPECT_TRUE(seen.none_default_null);
  EXPECT_EQ(seen.share_ptr, root_ptr);
  EXPECT_EQ(root_value, 3);
  EXPECT_NE(seen.mutex, root_mutex);
  expect_no_live_fibers(rt);
}

TEST_P(Fls, FactoryRunsOncePerHolderAndOnlyWhenNeeded) {
  Runtime rt(config());
  std::atomic<int> calls{0};
  struct NoDefault {
    explicit NoDefault(int x) : v(x) {}
    int v;
  };
  FiberLocal<NoDefault> key([&calls] { return NoDefault(++calls); });
  FiberLocal<NoDefault> no_factory;
  constexpr int kFibers = 20;
  rt.block_on([&] {
    std::vector<JoinHandle<bool>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&] {
        if (key.try_get() != nullptr || key.has_value()) return false;
        NoDefault& a = key.get();
        tf::yield();
        return &key.get() == &a && a.v >= 1;
      }));
    }
    for (auto& h : hs) EXPECT_TRUE(h.join());
    EXPECT_THROW(no_factory.get(), std::logic_error);
    EXPECT_FALSE(no_factory.has_value());
    EXPECT_EQ(no_factory.emplace(4).v, 4);
  });
  EXPECT_EQ(calls, kFibers);
}

TEST_P(Fls, GeneratorBodiesSeeTheValuesOfWhoeverResumesThem) {
  Runtime rt(config());
  FiberLocal<int> key;
  weft::Generator<int> g([&](weft::Yield<int>& yield) {
    for (;;) yield(key.has_value() ? key.get() : -1);
  });
  auto step = [&] { return g.next().value_or(-2); };
  key.set(3);  // the plain thread's value
  EXPECT_EQ(step(), 3);
  auto a = rt.spawn([&] {
    key.set(1);
    return step();
  });
  EXPECT_EQ(a.join(), 1);
  auto b = rt.spawn([&] { return step(); });  // no value in this fiber
  EXPECT_EQ(b.join(), -1);
  EXPECT_EQ(step(), 3);
}

// --- the example: a request id through a whole request ------------------------

// A request handler fiber sets the request id; everything it starts
// (sub-fibers, nested sub-fibers, a spawn_blocking task and the fibers that
// task spawns) logs with the id, while other requests run concurrently.
FiberLocal<std::string> request_id{Propagation::copy};

struct Log {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> lines;  // (expected id, seen id)
  void line(const std::string& expected) {
    std::lock_guard g(mu);
    lines.emplace_back(expected, request_id.has_value() ? request_id.get() : "<none>");
  }
};

void handle_request(const std::string& id, Log& log) {
  request_id.set(id);
  log.line(id);
  std::vector<JoinHandle<void>> parts;
  for (int i = 0; i < 3; ++i) {
    parts.push_back(weft::spawn([&log, id] {
      tf::yield();
      log.line(id);
      weft::spawn([&log, id] {
        tf::sleep_for(1ms);
        log.line(id);
      }).join();
    }));
  }
  parts.push_back(weft::spawn([&log, id] {
    weft::spawn_blocking([&log, id] {
      log.line(id);  // a blocking thread: the task's copy
      weft::spawn([&log, id] { log.line(id); }).join();
    }).join();
  }));
  for (auto& p : parts) p.join();
  log.line(id);
}

TEST_P(Fls, RequestIdIsVisibleInEveryFiberOfItsRequest) {
  Runtime rt(config());
  Log log;
  const int kRequests = 8;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> requests;
    for (int r = 0; r < kRequests; ++r) {
      requests.push_back(
          weft::spawn([&log, r] { handle_request("req-" + std::to_string(r), log); }));
    }
    for (auto& h : requests) h.join();
    EXPECT_FALSE(request_id.has_value()) << "a request's id leaked into the root";
  });
  // Per request: handler twice, 3 sub-fibers, 3 nested, blocking task, its fiber.
  EXPECT_EQ(log.lines.size(), static_cast<std::size_t>(kRequests * 10));
  for (const auto& [want, seen] : log.lines) EXPECT_EQ(seen, want);
  expect_no_live_fibers(rt);
}

}  // namespace
