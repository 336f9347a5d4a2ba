// Fiber-local storage (weft::FiberLocal): stores, inheritance, destruction.
//
// The problem. A thread_local is wrong for fibers twice over: fibers
// migrate between worker threads (a value would change under a fiber's feet,
// and its address could be cached across a switch: the TLS hazard of
// DESIGN.md), and many fibers share one thread. Request-scoped context (a
// request id, a tracing span, a deadline budget) also has to flow from a
// fiber into the fibers and blocking tasks it starts, which thread_local
// never does.
//
// Where values live. Each holder - a fiber, a spawn_blocking task, a plain
// thread - owns at most one LocalStore, allocated when it first needs one.
// The only per-fiber cost is one pointer in Fiber, null for a fiber that
// never uses FLS. The caller's store is found through current_slot(), an
// out-of-line function (TLS hazard: the slot of a thread is thread-local;
// that of a fiber is in its control block and so follows it to any worker).
//
// Rejected designs:
//   * a dense per-fiber array indexed by key (pthread_getspecific, folly):
//     O(1) lookup, but key indices must be recycled, and a recycled index
//     would show a new key an old key's value unless every store were swept
//     at key destruction (all fibers, on all workers). Ids here are 64-bit
//     and never reused, so a dead key's values are simply never looked up
//     again and die with their holders; lookup is a binary search over the
//     few keys a fiber holds values for.
//   * storing values in a std::unordered_map per fiber: an allocation per
//     node and a hash per lookup, for tables of a handful of entries.
//   * destroying a key's values when the key dies: the key cannot reach the
//     stores of other fibers without a registry of them all (locks on every
//     spawn). Instead every value carries its destructor (a virtual Cell),
//     and ~FiberLocal only destroys the caller's own value.
//
// Propagation. At spawn, on the spawning side, the child's store is built
// from the spawner's (LocalStore::inherit): share values gain a reference
// (the Cell's atomic count), copy values are cloned with T's copy
// constructor, none values are skipped. The new store travels with the task
// (TaskBase::locals) and is handed to Fiber::locals once the fiber exists; a
// spawn_blocking task keeps it and the blocking thread installs it while the
// task runs (tls_task_slot), so fibers spawned from there inherit from it.
//
// Destruction. A fiber's values are destroyed on the fiber itself, right
// after its function returned and before complete() publishes the result:
// a joiner sees every destructor's effects, and a destructor may still park,
// spawn or read other FiberLocals. A destructor's exception becomes the
// task's error when it has none (join rethrows it), else goes to stderr.
// Thread stores die at thread exit (__cxa_thread_atexit, registered when the
// store is made, so a store re-made by a later thread_local destructor is
// destroyed too).
#include "fiber/fls.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

#include "fiber/fiber.hpp"
#include "weft/detail/task.hpp"
#include "weft/log.hpp"

// The handle of the DSO this file is linked into (crtbegin.o), the third
// argument of __cxa_thread_atexit, exactly as compilers pass it for a
// thread_local with a destructor.
extern "C" void* __dso_handle __attribute__((visibility("hidden")));

namespace weft::detail {

// Provided by the scheduler (sched/worker.cpp): the fiber running on this
// thread, or nullptr. The only thing this layer needs from above.
Fiber* current_fiber() noexcept;

namespace {

// The calling thread's own store (plain threads), and the store slot of the
// spawn_blocking task it runs (blocking pool threads). initial-exec: one
// %fs-relative access, also in libweft.so.
thread_local LocalStore* tls_thread_store [[gnu::tls_model("initial-exec")]] = nullptr;
thread_local LocalStore** tls_task_slot [[gnu::tls_model("initial-exec")]] = nullptr;

// relaxed: ids need only be unique; they order nothing. 2^64 never wraps.
std::atomic<std::uint64_t> g_next_key{1};

// The caller's store slot: the running fiber's, else the running blocking
// task's, else the thread's. Out of line and impure (TLS hazard). The
// result may be a thread-local address only when no fiber runs here, and
// plain threads never migrate, so callers may keep it while they run user
// code; a fiber's slot lives in its Fiber and follows it.
[[gnu::noinline]] LocalStore** current_slot() noexcept {
  if (Fiber* f = current_fiber()) return &f->locals;
  asm volatile("" ::: "memory");
  LocalStore** task = tls_task_slot;
  return task != nullptr ? task : &tls_thread_store;
}

[[gnu::noinline]] LocalStore** thread_slot() noexcept {
  asm volatile("" ::: "memory");
  return &tls_thread_store;
}

[[gnu::noinline]] LocalStore** exchange_task_slot(LocalStore** slot) noexcept {
  asm volatile("" ::: "memory");
  return std::exchange(tls_task_slot, slot);
}

// Thread exit: destroys the thread's store. The store stays current while
// its values die (their destructors may use FiberLocals); if a later
// thread_local destructor makes a new one, make_store registers this again.
void thread_exit(void*) noexcept {
  LocalStore** slot = thread_slot();
  LocalStore* s = *slot;
  if (s == nullptr) return;
  std::exception_ptr e = s->drain();
  *slot = nullptr;
  delete s;
  if (e) fls_report("at thread exit", e);
}

LocalStore* make_store(LocalStore** slot) {
  auto s = std::make_unique<LocalStore>();
  if (slot == thread_slot() &&
      __cxxabiv1::__cxa_thread_atexit(&thread_exit, nullptr, &__dso_handle) != 0) {
    throw std::bad_alloc();
  }
  *slot = s.get();
  return s.release();
}

void add_ref(fls::Cell* cell) noexcept {
  // relaxed: the new holder receives the cell through the spawn hand-off
  // (queue push/pop), which orders it; as std::shared_ptr's copy.
  cell->refs.fetch_add(1, std::memory_order_relaxed);
}

struct StoreDeleter {
  void operator()(LocalStore* s) const noexcept { fls_destroy_store(s); }
};

}  // namespace

// --- LocalStore -------------------------------------------------------------

fls::Cell* LocalStore::find(std::uint64_t key) const noexcept {
  auto it = std::lower_bound(slots_.begin(), slots_.end(), key,
                             [](const Slot& s, std::uint64_t k) { return s.key < k; });
  return it != slots_.end() && it->key == key ? it->cell : nullptr;
}

fls::Cell* LocalStore::exchange(std::uint64_t key, Propagation::Mode mode, fls::Cell* cell) {
  auto it = std::lower_bound(slots_.begin(), slots_.end(), key,
                             [](const Slot& s, std::uint64_t k) { return s.key < k; });
  if (it != slots_.end() && it->key == key) return std::exchange(it->cell, cell);
  slots_.insert(it, Slot{key, cell, mode});  // strong guarantee (Slot is trivial)
  return nullptr;
}

fls::Cell* LocalStore::take(std::uint64_t key) noexcept {
  auto it = std::lower_bound(slots_.begin(), slots_.end(), key,
                             [](const Slot& s, std::uint64_t k) { return s.key < k; });
  if (it == slots_.end() || it->key != key) return nullptr;
  fls::Cell* c = it->cell;
  slots_.erase(it);
  return c;
}

LocalStore* LocalStore::inherit() const {
  std::size_t n = 0;
  for (const Slot& s : slots_) n += s.cell != nullptr && s.mode != Propagation::Mode::none;
  if (n == 0) return nullptr;
  std::unique_ptr<LocalStore, StoreDeleter> child(new LocalStore);
  child->slots_.reserve(n);
  // First take a reference on every inherited cell, without running user
  // code, so the parent's table cannot change under the loop. A copy slot
  // borrows the parent's cell until its copy is made.
  for (const Slot& s : slots_) {
    if (s.cell == nullptr || s.mode == Propagation::Mode::none) continue;
    add_ref(s.cell);
    child->slots_.push_back(s);  // reserved: cannot throw
  }
  // Then copy. A copy constructor may do anything, even touch the parent's
  // store; the child's is reachable only from here. If one throws, the
  // child's deleter drops what it holds (copies, and borrowed cells).
  for (Slot& s : child->slots_) {
    if (s.mode != Propagation::Mode::copy) continue;
    fls::Cell* src = s.cell;
    fls::Cell* copy = src->clone();
    if (copy == nullptr) throw std::logic_error("weft: FiberLocal copy key of a non-copyable type");
    s.cell = copy;
    fls_release(src);  // the borrowed reference
  }
  return child.release();
}

std::exception_ptr LocalStore::drain() noexcept {
  std::exception_ptr first;
  for (int round = 0; round < kRounds; ++round) {
    // Highest key first (the most recently created key): later keys are
    // often built on earlier ones. Index-based and re-checked on every
    // step, since destructors may add or remove slots; a slot they shift
    // past the loop keeps its value for the next round.
    for (std::size_t i = slots_.size(); i-- > 0;) {
      if (i >= slots_.size()) continue;
      fls::Cell* c = std::exchange(slots_[i].cell, nullptr);
      if (c == nullptr) continue;
      try {
        fls_release(c);
      } catch (...) {
        if (!first) {
          first = std::current_exception();
        } else {
          fls_report("when its holder ended (a later one)", std::current_exception());
        }
      }
    }
    std::erase_if(slots_, [](const Slot& s) { return s.cell == nullptr; });
    if (slots_.empty()) return first;
  }
  log::logf(log::Level::error,
            "weft: %zu FiberLocal value(s) still re-created by destructors after %d rounds of "
            "destruction; leaked",
            slots_.size(), kRounds);
  slots_.clear();
  return first;
}

// --- values -----------------------------------------------------------------

void fls_release(fls::Cell* cell) {
  // The usual reference-count protocol (std::shared_ptr): each holder's
  // release-decrement publishes its writes to a shared value; the acquire
  // of the last one makes them all visible before the destructor runs.
  // Shortcut: a count of 1 read by a holder means it is the only holder,
  // and only a holder adds references (inherit, on its own fiber), so the
  // count cannot change under us; the acquire load pairs with the other
  // holders' earlier release-decrements.
  if (cell->refs.load(std::memory_order_acquire) == 1 ||
      cell->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete cell;
  }
}

void fls_report(const char* when, const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log::logf(log::Level::error, "weft: a FiberLocal value's destructor threw %s: %s (ignored)",
              when, x.what());
  } catch (...) {
    log::logf(log::Level::error,
              "weft: a FiberLocal value's destructor threw %s: a non-std exception (ignored)",
              when);
  }
}

// --- hooks --------------------------------------------------------------------

LocalStore* fls_inherit() {
  const LocalStore* s = *current_slot();
  return s != nullptr ? s->inherit() : nullptr;
}

void fls_destroy_store(LocalStore* store) noexcept {
  std::exception_ptr e = store->drain();
  delete store;
  if (e) fls_report("when an unstarted fiber or task was freed", e);
}

void fls_end_slow(LocalStore*& locals, TaskBase* task) noexcept {
  // locals stays installed while its values die (see drain()).
  std::exception_ptr e = locals->drain();
  delete std::exchange(locals, nullptr);
  if (!e) return;
  std::exception_ptr& error = task->error();
  if (!error) {
    error = std::move(e);  // join() rethrows it
  } else {
    fls_report("when its fiber or task ended with an error already", e);
  }
}

BlockingLocals::BlockingLocals(TaskBase* task) noexcept
    : task_(task), saved_(exchange_task_slot(&task->locals())) {}

BlockingLocals::~BlockingLocals() {
  end();
}

void BlockingLocals::end() noexcept {
  if (ended_) return;
  ended_ = true;
  fls_end(task_->locals(), task_);
  exchange_task_slot(saved_);
}

// --- weft::FiberLocal's library side -----------------------------------------

namespace fls {

std::uint64_t new_key() noexcept {
  return g_next_key.fetch_add(1, std::memory_order_relaxed);
}

Cell* find(std::uint64_t key) noexcept {
  const LocalStore* s = *current_slot();
  return s != nullptr ? s->find(key) : nullptr;
}

void install(std::uint64_t key, Propagation::Mode mode, Cell* cell) {
  Cell* old = nullptr;
  try {
    LocalStore** slot = current_slot();
    LocalStore* s = *slot != nullptr ? *slot : make_store(slot);
    old = s->exchange(key, mode, cell);
  } catch (...) {
    delete cell;
    throw;
  }
  if (old != nullptr) fls_release(old);
}

bool remove(std::uint64_t key) {
  LocalStore* s = *current_slot();
  Cell* c = s != nullptr ? s->take(key) : nullptr;
  if (c == nullptr) return false;
  fls_release(c);
  return true;
}

void remove_noexcept(std::uint64_t key) noexcept {
  try {
    remove(key);
  } catch (...) {
    fls_report("when its FiberLocal key was destroyed", std::current_exception());
  }
}

}  // namespace fls
}  // namespace weft::detail
