// The fiber control block.
//
// A Fiber lives inside its task's allocation (TaskBase::fiber_storage), so a
// spawn costs one allocation. Its stack is attached lazily, when the fiber first runs
// (Worker::ensure_stack), from the running worker's stack cache: a spawned fiber that has not
// started yet costs no stack, and short fibers run one after another on the same warm stack. (An
// earlier design put the control block at the top of an eagerly mapped stack; spawning 10^5 fibers
// then cost a fresh mapping and a page fault each, ~10 us, against ~0.2 us now.)
//
// Lifecycle (FiberState), asserted in debug builds at every transition:
//
//   created --schedule--> runnable --resume--> running --+--yield--> runnable
//                                                ^       |
//                                                |       +--park--> parked --unpark--> runnable
//                                                |       |
//                                                +-------+--exit--> finished (stack recycled
//                                                                   by the next context)
//
//   created   : initialised, no stack yet, on no queue.
//   runnable  : on exactly one of: a worker's deque, its LIFO slot or
//               yielded lists, the injector, or the list a driver's park
//               hands back (until the worker queues that list).
//   running   : executing on exactly one worker (Worker::current_).
//   parked    : switched out; reachable only through the Waiter it parked on
//               (a primitive's wait queue, a timer, a cancellation request).
//   finished  : its task completed; the context that ran next releases it.
//
// Park/unpark protocol (park_, the only field written by other threads to
// move a fiber). Exactly one unpark answers each park (the winner of a
// Waiter's state CAS sends it), and park consumes exactly one:
//
//   kRunning  --park()-------> kParking  (the fiber starts switching out)
//   kParking  --post-switch--> kParked   (the next context commits the park)
//   kRunning  --unpark-------> kNotified (woken before it parked: park() then
//                                         returns at once)
//   kParking  --unpark-------> kNotified (the commit sees it and requeues)
//   kParked   --unpark-------> kRunnable (the unparker queues the fiber)
//
// A fiber dump (src/obs/dump.cpp) pins a parked fiber while it reads its
// stack, so that the fiber cannot run (and change or free that stack)
// meanwhile:
//
//   kParked   --dump pins------> kDumping
//   kDumping  --unpark---------> kDumpWoken (the unparker leaves it to the dumper)
//   kDumping  --dump unpins----> kParked
//   kDumpWoken --dump unpins---> kRunnable (the dumper queues the fiber)
//
// The commit happens only once the fiber's registers are saved, so no other
// worker can resume a fiber that is still switching out.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/assert.hpp"
#include "base/spinlock.hpp"
#include "context/context.hpp"
#include "fiber/stack.hpp"
#include "weft/fiber.hpp"

namespace weft::detail {

class LocalStore;
class RuntimeImpl;
class Waiter;

enum class FiberState : std::uint8_t { created, runnable, running, parked, finished };

enum ParkState : std::uint8_t {
  kRunning = 0,
  kNotified = 1,
  kParking = 2,
  kParked = 3,
  kRunnable = 4,
  kDumping = 5,
  kDumpWoken = 6,
};

/// User labels of a fiber (this_fiber::set_label), in the order first set.
using FiberLabels = std::vector<std::pair<std::string, std::string>>;

struct Fiber {
  Context ctx;
  Stack stack;  // empty until the fiber first runs
  // The stack of the generator this fiber is running right now (src/gen),
  // or nullptr while it runs on its own stack. Written only by the fiber
  // itself around a generator resume; read by the overflow handler on the
  // thread running the fiber.
  const Stack* generator_stack = nullptr;
  // Usable stack bytes wanted (at most 1 GiB: RuntimeImpl::spawn checks),
  // 32 bits so that the sampled-latency stamp below shares its word.
  std::uint32_t stack_size = 0;
  // Sampled metrics (obs/metrics.hpp), 0 when not sampled. runnable_stamp:
  // when a worker queued it, in the units of latency_stamp() (written by
  // the queuing worker, read by the one that runs it: the run queue's
  // hand-off orders them). started_ns: its first switch-in, CLOCK_MONOTONIC
  // ns (written and read by whoever holds it running).
  std::uint32_t runnable_stamp = 0;
  std::int64_t started_ns = 0;
  RuntimeImpl* runtime = nullptr;
  TaskBase* task = nullptr;  // the owning task; the runner's reference is ours
  // Fiber-local values (fiber/fls.hpp): null until the fiber holds one. Only
  // the fiber itself touches it once running (spawn sets it before).
  LocalStore* locals = nullptr;
  FiberId id = 0;
  FiberId parent_id = 0;
  Priority priority = Priority::normal;
  FiberState state = FiberState::created;  // owned by whoever holds the fiber
  std::atomic<std::uint8_t> park{kRunning};
  std::uint32_t queued_ms = 0;  // worker clock when it joined a yielded list (owner-only)
  std::string name;

  // next: intrusive link for the injector queue (guarded by the injector's
  // lock), a worker's yielded list or a driver's woken list (FiberList;
  // owned by whoever holds the list). A parked fiber is on no list, so the
  // same word then holds parked_on: the Waiter of its park (on its stack:
  // WaitReason, argument, time), written by the fiber itself in
  // Waiter::wait just before it parks. A fiber dump reads it only while it
  // has the fiber pinned (kDumping), when that park is the current one and
  // its frame holds still (the pin's acquire orders the write before); the
  // next list to take the fiber writes `next` first (every push does). The
  // control block is full at 256 bytes: this costs it nothing.
  union {
    Fiber* next = nullptr;
    const Waiter* parked_on;
  };
  // Registry links (guarded by the registry shard lock; see RuntimeImpl).
  Fiber* reg_prev = nullptr;
  Fiber* reg_next = nullptr;

  // Cancellation (base/asymmetric_barrier.hpp; read through is_cancelled()).
  // A waiting fiber publishes the waiter it sleeps on in current_waiter, then checks
  // cancel_requested (light barrier between); a canceller sets cancel_requested, then wakes
  // current_waiter under wait_lock (heavy barrier between). A fiber that
  // clears current_waiter and then sees cancel_requested takes wait_lock once
  // to wait out a canceller that may still be touching its waiter.
  //
  // cancel_requested mirrors the fiber's innermost cancel scope
  // (cancel_scope, a node of the cancellation tree): a node cancels the
  // fiber bound to it, and leaving a scope recomputes the flag under the
  // enclosing node's lock (src/cancel/cancel_node.cpp). hard_cancel is the
  // runtime's forced cancellation at shutdown, which shields do not stop.
  // A canceller that collected the fiber outside the node's lock pins it
  // (cancel_pins) until its wake-up is done; the fiber's control block is
  // not destroyed while pinned.
  std::atomic<Waiter*> current_waiter{nullptr};
  SpinLock wait_lock;
  std::atomic<bool> cancel_requested{false};
  std::atomic<bool> hard_cancel{false};
  // The fiber has labels (this_fiber::set_label; they live in its registry
  // shard, RuntimeImpl). Owner-only: written by the fiber, read by it and
  // by the worker that recycles it.
  bool has_labels = false;
  // The index of the worker the fiber is bound to under
  // Strategy::thread_per_core (its spawner's, or the one placement chose
  // for a spawn from outside; Worker::owns). Written once by spawn before
  // the fiber is queued, read by whoever queues it (the queue hand-off
  // orders the two). Unused under work stealing. 16 bits: at most 1024
  // workers (Config::workers).
  std::uint16_t home = 0;
  // 16 bits, so that home fits the control block's 256 bytes: a pin is held
  // by one cancellation batch (cancel_node.cpp) for one wake-up, so the
  // count is at most the threads cancelling this fiber at once.
  std::atomic<std::uint16_t> cancel_pins{0};
  CancelNode* cancel_scope = nullptr;  // owner-only: the innermost scope

  /// Lifecycle transition, checked in debug builds (and WEFT_DEBUG_CHECKS).
  void transition([[maybe_unused]] FiberState from, FiberState to) noexcept {
#if !defined(NDEBUG) || defined(WEFT_DEBUG_CHECKS)
    if (state != from) fatal("weft: fiber lifecycle violated (unexpected state at transition)");
#endif
    state = to;
  }
};

/// A 32-bit stamp of CLOCK_MONOTONIC ns for Fiber::runnable_stamp: units of
/// 1024 ns, never 0; differences of two stamps are exact (mod 2^32 units,
/// ~73 minutes, far above any queueing delay) to within one unit.
inline std::uint32_t latency_stamp(std::int64_t now_ns) noexcept {
  const auto s = static_cast<std::uint32_t>(static_cast<std::uint64_t>(now_ns) >> 10);
  return s != 0 ? s : 1;
}

/// A CLOCK_MONOTONIC time in ns as a park stamp (Waiter::parked_since):
/// units of 2^20 ns (~1.05 ms); differences are exact modulo 2^32 units
/// (~52 days). A parking fiber takes its stamp from the clock its runtime's
/// monitor publishes each period (RuntimeImpl::park_stamp), not from a
/// clock read of its own.
inline std::uint32_t park_stamp_of(std::int64_t ns) noexcept {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(ns) >> 20);
}

/// True once cancellation has been requested for f (its innermost cancel
/// scope, or the runtime's forced cancellation at shutdown); false for
/// nullptr. The one reading of Fiber::cancel_requested outside the
/// cancellation machinery: this_fiber::is_cancelled, the I/O and sleep entry
/// checks, and par_* polling its caller's state from helper fibers all use
/// it. Any thread, while f is alive. acquire: the flag mirrors the fiber's
/// scope (cancellation.md); nothing else is published with it, so an
/// acquire load is enough and costs nothing more than a plain one on x86.
inline bool is_cancelled(const Fiber* f) noexcept {
  return f != nullptr && f->cancel_requested.load(std::memory_order_acquire);
}

}  // namespace weft::detail
