// The scope layer's parallel algorithms (weft/parallel.hpp): the
// non-template core of one par_* call.
//
// Problem. Spread a loop over the workers so that it balances whatever the
// cost per element and whatever else the workers are doing, without paying
// for that when nobody could help (one worker, or every worker busy).
//
// Rejected: a fixed chunk per worker (one straggler element or one busy
// worker leaves the others idle at the end); eager binary splitting down to
// a grain, as Cilk's cilk_for does (n / grain spawns even when every worker
// is busy; fibers are cheap, but not free: ~0.2 us and a stack each); a
// shared atomic index that workers grab grains from (one contended RMW per
// grain, and it needs a fiber per worker up front).
//
// Chosen: lazy binary splitting (A. Tzannes, G. C. Caragea, R. Barua,
// U. Vishkin, "Lazy Binary-Splitting: A Run-Time Adaptive Work-Stealing
// Scheduler", PPoPP 2010). A leaf walks its range a grain at a time; before
// each grain it asks the scheduler whether its worker's stealable run queue
// is empty (sched: local_run_queue_empty(), a few relaxed loads). Empty means
// what it offered last has been stolen or run, so somebody is hungry: if more
// than one grain remains it splits the rest in half and spawns the upper half
// as a fiber (which lands in that same deque, where idle workers steal it).
// Not empty means its offer is still waiting: nobody needs more. So a busy
// runtime sees almost no spawns, an idle one sees the range halved at the
// rate thieves take it, and the split tree follows the load actually
// observed. The caller works as the root leaf when it is a fiber of the
// runtime used; with one worker nothing is ever split.
//
// Protocol of one call (ParJob, in the caller's frame):
//   pending_: references. The caller holds one until join(); the root, when
//     it runs in a spawned fiber, holds one from the constructor; every
//     helper gets one reserved (try_reserve_leaf) before its spawn by the
//     leaf that splits, which itself holds a reference meanwhile, so the
//     count never touches zero while somebody may still add to it.
//   leaf_done(): a helper's last touch of the job (and of the algorithm's
//     context): the fetch_sub that may let the caller return.
//   join(): publishes the caller's Waiter, drops the caller's reference, and
//     unless it was last, waits (not cancellably: helpers hold pointers into
//     this frame) until the last leaf_done() wakes it.
//   Failures: fail() elects the first exception (failed_ exchange) and
//     raises stop_, which every leaf polls before each grain; finish()
//     rethrows it after join(). The caller's cancellation, polled through
//     is_cancelled() on the caller's fiber (fiber/fiber.hpp), is recorded
//     as a weft::Cancelled failure.
#include "weft/parallel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "fiber/fiber.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"

namespace weft::detail {
namespace {

constexpr std::size_t kAutoGrainMax = 1024;
constexpr std::size_t kGrainsPerWorker = 8;
constexpr std::size_t kMinStack = 16 * 1024;  // as FiberOptions::stack_size
constexpr std::size_t kMaxStack = std::size_t{1} << 30;

// Enough grains per worker that the last ones balance the load, while a
// grain of cheap elements stays long enough (up to 1024 elements) that the
// per-grain probe (a call and a few loads) is noise.
std::size_t auto_grain(std::size_t n, std::size_t workers) noexcept {
  return std::clamp<std::size_t>(n / (kGrainsPerWorker * workers), 1, kAutoGrainMax);
}

}  // namespace

ParJob::ParJob(Runtime* rt, std::size_t n, const ParOptions& opts)
    : rt_(rt), caller_(nullptr), grain_(1) {
  RuntimeImpl* current = current_runtime();
  std::size_t workers = 1;
  if (rt != nullptr) {
    workers = rt->workers();
    // Runtime::config() is a reference into the runtime's RuntimeImpl: equal
    // addresses mean the calling thread is one of rt's.
    inline_root_ =
        current != nullptr && current_fiber() != nullptr && &current->config() == &rt->config();
  } else {
    if (current == nullptr) {
      throw std::logic_error(
          "weft::par_* called outside a runtime: call it from a fiber or a spawn_blocking "
          "thread, or pass the weft::Runtime& to use as the first argument");
    }
    workers = current->worker_count();
    inline_root_ = current_fiber() != nullptr;
  }
  if (opts.stack_size != 0 && (opts.stack_size < kMinStack || opts.stack_size > kMaxStack)) {
    throw std::invalid_argument(
        "weft::ParOptions::stack_size must be 0 or between 16 KiB and 1 GiB, got " +
        std::to_string(opts.stack_size));
  }
  // The caller, if a fiber: helpers poll its cancellation (it outlives
  // them, since join() waits for every helper). Plain and blocking-pool
  // threads cannot be cancelled here.
  caller_ = current_fiber();
  if (is_cancelled(caller_)) throw Cancelled();
  grain_ = opts.grain != 0 ? opts.grain : auto_grain(n, workers);
  split_enabled_ = workers > 1 && opts.max_fibers != 1;
  // Working leaves = (pending_ - 1) + (1 if the caller works inline); a
  // reservation is allowed while that stays <= max_fibers.
  if (opts.max_fibers != 0) max_pending_ = opts.max_fibers + (inline_root_ ? 0 : 1);
  leaf_opts_.name = "weft-par";
  leaf_opts_.priority = this_fiber::priority();
  leaf_opts_.stack_size = opts.stack_size;
  // relaxed: nobody else sees the job yet.
  if (!inline_root_) pending_.store(2, std::memory_order_relaxed);
}

ParJob::Step ParJob::before_grain(std::size_t remaining) noexcept {
  this_fiber::checkpoint();
  // relaxed: stop_ is only a hint to stop early; the failure itself reaches
  // the caller through the leaf_done()/join() chain.
  if (stop_.load(std::memory_order_relaxed)) return Step::stop;
  if (is_cancelled(caller_)) {
    if (!failed_.load(std::memory_order_relaxed)) fail(std::make_exception_ptr(Cancelled()));
    stop_.store(true, std::memory_order_relaxed);
    return Step::stop;
  }
  if (split_enabled_ && remaining > grain_ && local_run_queue_empty()) return Step::split;
  return Step::run;
}

bool ParJob::try_reserve_leaf() noexcept {
  // relaxed: the reserving leaf holds a reference of its own, so the count
  // cannot reach zero meanwhile (RMWs of one atomic are totally ordered, and
  // its own decrement comes after this increment); the new fiber's start is
  // ordered after this by the spawn's run-queue hand-off.
  if (max_pending_ == 0) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::size_t cur = pending_.load(std::memory_order_relaxed);
  do {
    if (cur >= max_pending_) return false;
  } while (!pending_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed,
                                           std::memory_order_relaxed));
  return true;
}

void ParJob::unreserve_leaf() noexcept {
  // relaxed: the caller of this still holds its own reference, so this
  // never drops the last one.
  pending_.fetch_sub(1, std::memory_order_relaxed);
}

void ParJob::leaf_done() noexcept {
  // acq_rel. release: this leaf's writes (results, error_) are published
  // along the RMW chain of pending_ to whoever drops the last reference.
  // acquire (when last): pairs with join()'s release, so waiter_ is
  // visible, and with every earlier leaf's release, so that the wake below
  // (a release CAS on the waiter) passes all of them on to the caller.
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    // The caller is parked in join() until this wake: the job is alive.
    waiter_->wake(Waiter::kNotified);
  }
}

void ParJob::fail(std::exception_ptr e) noexcept {
  // relaxed: the exchange only elects who writes error_; error_ reaches the
  // caller through the leaf_done()/join() chain (or is the caller's own
  // write, for the inline root).
  if (!failed_.exchange(true, std::memory_order_relaxed)) error_ = std::move(e);
  stop_.store(true, std::memory_order_relaxed);
}

void ParJob::join() noexcept {
  Waiter w(WaitReason::parallel);  // binds to the calling fiber, or to the calling thread
  waiter_ = &w;
  // acq_rel. release: publishes waiter_ to the last leaf_done(). acquire: if
  // this drops the last reference, every leaf's writes are visible now.
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) return;
  // Not cancellable: the helpers point into this frame, so the wait must
  // finish. The caller's cancellation reaches them through caller_ and
  // makes them stop at their next grain instead. The waker's release CAS
  // pairs with the acquire in Waiter::result().
  w.wait(-1, /*cancellable=*/false);
}

void ParJob::finish() {
  // relaxed: join() already ordered every leaf's writes before this.
  if (failed_.load(std::memory_order_relaxed)) {
    std::rethrow_exception(std::exchange(error_, nullptr));
  }
}

}  // namespace weft::detail
