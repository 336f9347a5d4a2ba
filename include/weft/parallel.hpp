// Parallel algorithms on the runtime's workers: par_for_each, par_map,
// par_reduce and par_filter over random-access ranges.
//
// The work is split adaptively by lazy binary splitting (A. Tzannes, G. C.
// Caragea, R. Barua, U. Vishkin, "Lazy Binary-Splitting: A Run-Time Adaptive
// Work-Stealing Scheduler", PPoPP 2010), not cut into a fixed chunk per
// worker: a leaf walks its range grain by grain, and before each grain, if
// its worker's stealable run queue is empty (what it offered before has been
// stolen or run, so peers are hungry) and more than one grain remains, it
// splits the rest in half and spawns the upper half as a new fiber, which
// idle workers steal. Busy workers never split, so a call spawns few fibers
// (none on a one-worker runtime when the caller is a fiber of it), and the
// split pattern follows the load actually seen at run time.
// docs/design/parallel.md has the whole story.
//
//   std::vector<double> v = ...;
//   weft::par_for_each(v, [](double& x) { x = std::sqrt(x); });
//   auto lens = weft::par_map(words, [](const std::string& w) { return w.size(); });
//   long sum = weft::par_reduce(v, 0.0, std::plus<>{});
//   auto odd = weft::par_filter(std::views::iota(0, 1000), [](int i) { return i % 2; });
//   weft::par_for_each(rt, v, f);  // from a plain thread: name the runtime
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <new>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/fiber.hpp"
#include "weft/runtime.hpp"

namespace weft {

/// Tuning of one par_* call. Every field has a working default; pass
/// ParOptions as the last argument of any par_* function.
struct ParOptions {
  /// Elements a leaf processes between two checks (split, a failure
  /// elsewhere, cancellation of the caller, this_fiber::checkpoint()), and
  /// the smallest piece ever split off. 0 = auto: n / (8 x workers), clamped
  /// to 1..1024. Set it when elements are very cheap (make a grain worth a
  /// microsecond or more) or very expensive (a grain bounds how late a
  /// failure or a cancellation is noticed).
  std::size_t grain = 0;
  /// The most fibers working on the call at once, the caller included when
  /// it works itself (it does when it is a fiber of the runtime used).
  /// 0 = no bound beyond what lazy splitting creates (about two per busy
  /// worker for CPU-bound bodies; more if bodies park). 1 = sequential, on one
  /// fiber.
  std::size_t max_fibers = 0;
  /// Stack size of the helper fibers in bytes; 0 = the runtime's
  /// Config::stack_size. Same range as FiberOptions::stack_size.
  std::size_t stack_size = 0;
};

namespace detail {

class Waiter;
struct Fiber;

/// Ranges the par_* functions take: random access, size known up front
/// (std::vector, std::array, std::deque, std::span, C arrays,
/// std::views::iota, ...).
template <class R>
concept ParRange = std::ranges::random_access_range<R> && std::ranges::sized_range<R>;

/// The non-template core of one par_* call, living in the caller's frame
/// (src/scope/parallel.cpp). Leaves reach it by reference: the caller
/// outlives them because join() waits for every one of them, on every path.
///
/// pending_ counts references: one for the caller until join(), one per
/// helper fiber spawned and not yet done. The last to drop its reference
/// wakes the caller's waiter.
class ParJob {
 public:
  /// What a leaf does before its next grain.
  enum class Step : unsigned char { run, split, stop };

  /// Resolves the runtime (rt, or the current one), the grain and the helper
  /// options. @throws std::logic_error outside a runtime with rt == nullptr;
  /// std::invalid_argument for a bad ParOptions::stack_size;
  /// weft::Cancelled if the calling fiber's cancellation is already pending.
  ParJob(Runtime* rt, std::size_t n, const ParOptions& opts);
  ParJob(const ParJob&) = delete;
  ParJob& operator=(const ParJob&) = delete;

  /// True when the caller processes the root range itself (it is a fiber of
  /// the runtime used); otherwise the root range runs in a spawned fiber.
  bool runs_inline() const noexcept { return inline_root_; }
  std::size_t grain() const noexcept { return grain_; }
  Runtime* runtime() const noexcept { return rt_; }
  const FiberOptions& leaf_options() const noexcept { return leaf_opts_; }

  /// Called by a leaf before each grain, `remaining` elements left in its
  /// range: runs this_fiber::checkpoint(), then answers stop (a leaf failed,
  /// or the caller's cancellation is pending: then it records Cancelled),
  /// split (lazy binary splitting's probe says so and remaining > grain) or
  /// run. Cheap: relaxed/acquire loads, no locked instruction.
  Step before_grain(std::size_t remaining) noexcept;
  /// Takes a reference for a helper about to be spawned; false if
  /// ParOptions::max_fibers forbids one more.
  bool try_reserve_leaf() noexcept;
  /// Gives back a reservation (or the root's reference) whose spawn failed.
  void unreserve_leaf() noexcept;
  /// A helper's last touch of the job: drops its reference, waking the
  /// caller if it was the last.
  void leaf_done() noexcept;
  /// Records e if it is the first failure, and makes every leaf stop at its
  /// next grain.
  void fail(std::exception_ptr e) noexcept;
  /// Drops the caller's reference and waits, not cancellably, until every
  /// helper is done (parks a fiber, blocks a thread). Call exactly once.
  void join() noexcept;
  /// After join(): rethrows the first failure recorded, if any.
  void finish();

 private:
  Runtime* rt_;                  // the Runtime& given, or nullptr: the current runtime
  const detail::Fiber* caller_;  // the calling fiber, whose cancellation leaves poll; or null
  std::size_t grain_;            // >= 1
  std::size_t max_pending_ = 0;  // exclusive bound on pending_ before a reservation; 0 = none
  bool inline_root_ = false;
  bool split_enabled_ = false;  // workers > 1 and max_fibers != 1
  FiberOptions leaf_opts_;
  // The caller's reference, plus the root's when it runs in a spawned fiber
  // (set by the constructor). Orders: see parallel.cpp (join / leaf_done
  // form the release chain that publishes every leaf's writes to the caller).
  std::atomic<std::size_t> pending_{1};
  std::atomic<bool> stop_{false};    // hint only: leaves poll it relaxed
  std::atomic<bool> failed_{false};  // the exchange that wins owns error_
  std::exception_ptr error_;         // written by the winner of failed_; read after join()
  Waiter* waiter_ = nullptr;         // the caller's, published before its reference drops
};

/// Partial results of the leaves, keyed by the first index of the range
/// each leaf processed: a lock-free stack (push only, no user code under any
/// lock), read by the caller after join().
template <class V>
class ParResults {
 public:
  ParResults() = default;
  ParResults(const ParResults&) = delete;
  ParResults& operator=(const ParResults&) = delete;
  ~ParResults() {
    for (Node* n = head_.load(std::memory_order_relaxed); n != nullptr;)
      delete std::exchange(n, n->next);
  }

  /// Any leaf. @throws what allocating or moving V throws (nothing pushed).
  void push(std::size_t lo, V&& value) {
    Node* n = new Node{lo, std::move(value), head_.load(std::memory_order_relaxed)};
    // release: publishes the node's contents to the acquire load in
    // in_order() (join() already orders them; this keeps the stack sound on
    // its own).
    while (!head_.compare_exchange_weak(n->next, n, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
  }

  /// Caller, after join(): the values, by increasing lo.
  std::vector<V*> in_order() {
    std::vector<Node*> nodes;
    for (Node* n = head_.load(std::memory_order_acquire); n != nullptr; n = n->next) {
      nodes.push_back(n);
    }
    std::sort(nodes.begin(), nodes.end(),
              [](const Node* a, const Node* b) { return a->lo < b->lo; });
    std::vector<V*> values;
    values.reserve(nodes.size());
    for (Node* n : nodes) values.push_back(&n->value);
    return values;
  }

 private:
  struct Node {
    std::size_t lo;
    V value;
    Node* next;
  };
  std::atomic<Node*> head_{nullptr};
};

template <class It>
decltype(auto) par_at(const It& first, std::size_t i) {
  return first[static_cast<std::iter_difference_t<It>>(i)];
}

template <class Ctx>
bool par_spawn(ParJob& job, Ctx& ctx, std::size_t lo, std::size_t hi);

/// One leaf of lazy binary splitting over [lo, hi): grain by grain, asking
/// the job before each one; on a split the upper half of what remains goes
/// to a new fiber and this leaf keeps the lower half, so every leaf
/// processes one contiguous range [lo, end). Never throws: a failure is
/// recorded in the job (and stops every leaf).
template <class Ctx>
void par_leaf(ParJob& job, Ctx& ctx, std::size_t lo, std::size_t hi) noexcept {
  try {
    typename Ctx::Leaf leaf(ctx, lo);
    const std::size_t grain = job.grain();
    std::size_t i = lo;
    std::size_t end = hi;
    while (i < end) {
      const ParJob::Step step = job.before_grain(end - i);
      if (step == ParJob::Step::stop) return;
      if (step == ParJob::Step::split) {
        const std::size_t mid = i + (end - i) / 2;
        if (par_spawn(job, ctx, mid, end)) end = mid;
      }
      const std::size_t stop = end - i > grain ? i + grain : end;
      leaf.run(i, stop);
      i = stop;
    }
    leaf.finish(lo, end);
  } catch (...) {
    job.fail(std::current_exception());
  }
}

/// Starts a detached helper fiber running par_leaf over [lo, hi), holding a
/// reference the caller has already taken for it. Throws as weft::spawn
/// (then nothing was started).
template <class Ctx>
void par_start(ParJob& job, Ctx& ctx, std::size_t lo, std::size_t hi) {
  auto body = [&job, &ctx, lo, hi]() noexcept {
    par_leaf(job, ctx, lo, hi);
    job.leaf_done();  // last touch of job and ctx: the caller may return now
  };
  if (Runtime* rt = job.runtime()) {
    rt->spawn(job.leaf_options(), std::move(body)).detach();
  } else {
    weft::spawn(job.leaf_options(), std::move(body)).detach();
  }
}

/// Spawns a helper for the split-off range [lo, hi). False (and nothing
/// spawned) if max_fibers forbids it or the spawn fails (no stack: the
/// calling leaf then just keeps the work).
template <class Ctx>
bool par_spawn(ParJob& job, Ctx& ctx, std::size_t lo, std::size_t hi) {
  if (!job.try_reserve_leaf()) return false;
  try {
    par_start(job, ctx, lo, hi);
    return true;
  } catch (...) {
    job.unreserve_leaf();
    return false;
  }
}

/// Runs a whole call: the root leaf inline or in a spawned fiber (whose
/// reference the job holds from its construction), the join, then the first
/// failure rethrown.
template <class Ctx>
void par_run(ParJob& job, Ctx& ctx, std::size_t n) {
  if (job.runs_inline()) {
    par_leaf(job, ctx, 0, n);
  } else {
    try {
      par_start(job, ctx, 0, n);
    } catch (...) {
      job.unreserve_leaf();
      throw;  // nothing ran: the call fails with the spawn's error
    }
  }
  job.join();
  job.finish();
}

// --- per-algorithm leaves ----------------------------------------------------

template <class It, class Fn>
struct ForEachCtx {
  It first;
  Fn* fn;
  struct Leaf {
    ForEachCtx& c;
    Leaf(ForEachCtx& ctx, std::size_t) noexcept : c(ctx) {}
    void run(std::size_t b, std::size_t e) {
      for (; b < e; ++b) std::invoke(*c.fn, par_at(c.first, b));
    }
    void finish(std::size_t, std::size_t) noexcept {}
  };
};

/// Results land in out[i]: assigned to an R (kViaOptional false), or
/// emplaced into a std::optional<R> (true).
template <class It, class Fn, class Out, bool kViaOptional>
struct MapCtx {
  using Slot = std::conditional_t<kViaOptional, std::optional<Out>, Out>;
  It first;
  Fn* fn;
  Slot* out;
  struct Leaf {
    MapCtx& c;
    Leaf(MapCtx& ctx, std::size_t) noexcept : c(ctx) {}
    void run(std::size_t b, std::size_t e) {
      for (; b < e; ++b) {
        if constexpr (kViaOptional) {
          c.out[b].emplace(std::invoke(*c.fn, par_at(c.first, b)));
        } else {
          c.out[b] = std::invoke(*c.fn, par_at(c.first, b));
        }
      }
    }
    void finish(std::size_t, std::size_t) noexcept {}
  };
};

template <class It, class T, class Op>
struct ReduceCtx {
  It first;
  Op* op;
  T* init;
  ParResults<T> results;
  struct Leaf {
    ReduceCtx& c;
    std::size_t next;  // first index not folded into acc yet
    T acc;
    // Only the root leaf starts at 0 (a split point is always > its leaf's
    // start), so init is used exactly once, leftmost. Any other leaf starts
    // from its first element.
    Leaf(ReduceCtx& ctx, std::size_t lo)
        : c(ctx),
          next(lo == 0 ? 0 : lo + 1),
          acc(lo == 0 ? T(std::move(*ctx.init)) : T(par_at(ctx.first, lo))) {}
    void run(std::size_t b, std::size_t e) {
      for (b = std::max(b, next); b < e; ++b) {
        decltype(auto) x = par_at(c.first, b);
        if constexpr (std::is_invocable_r_v<T, Op&, T, decltype(x)>) {
          acc = std::invoke(*c.op, std::move(acc), std::forward<decltype(x)>(x));
        } else {
          acc = std::invoke(*c.op, std::move(acc), T(std::forward<decltype(x)>(x)));
        }
      }
    }
    void finish(std::size_t lo, std::size_t) { c.results.push(lo, std::move(acc)); }
  };
};

template <class It, class Pred, class V>
struct FilterCtx {
  It first;
  Pred* pred;
  ParResults<std::vector<V>> results;
  struct Leaf {
    FilterCtx& c;
    std::vector<V> kept;
    Leaf(FilterCtx& ctx, std::size_t) noexcept : c(ctx) {}
    void run(std::size_t b, std::size_t e) {
      for (; b < e; ++b) {
        auto&& x = par_at(c.first, b);
        if (std::invoke(*c.pred, x)) kept.emplace_back(std::forward<decltype(x)>(x));
      }
    }
    void finish(std::size_t lo, std::size_t) {
      if (!kept.empty()) c.results.push(lo, std::move(kept));
    }
  };
};

template <class R, class Fn>
using ParMapResult =
    std::remove_cvref_t<std::invoke_result_t<Fn&, std::ranges::range_reference_t<R>>>;

template <class R, class Fn>
void par_for_each_impl(Runtime* rt, R& range, Fn& fn, const ParOptions& opts) {
  const auto n = static_cast<std::size_t>(std::ranges::size(range));
  ParJob job(rt, n, opts);
  if (n == 0) return;
  ForEachCtx<std::ranges::iterator_t<R>, Fn> ctx{std::ranges::begin(range), &fn};
  par_run(job, ctx, n);
}

template <class R, class Fn>
auto par_map_impl(Runtime* rt, R& range, Fn& fn, const ParOptions& opts) {
  using Out = ParMapResult<R, Fn>;
  using It = std::ranges::iterator_t<R>;
  const auto n = static_cast<std::size_t>(std::ranges::size(range));
  ParJob job(rt, n, opts);
  std::vector<Out> out;
  if (n == 0) return out;
  // Leaves write their slots in place. vector<bool> packs elements into
  // shared words, so bool takes the optional path too.
  if constexpr (std::is_default_constructible_v<Out> && std::is_move_assignable_v<Out> &&
                !std::is_same_v<Out, bool>) {
    out.resize(n);
    MapCtx<It, Fn, Out, false> ctx{std::ranges::begin(range), &fn, out.data()};
    par_run(job, ctx, n);
  } else {
    std::vector<std::optional<Out>> slots(n);
    MapCtx<It, Fn, Out, true> ctx{std::ranges::begin(range), &fn, slots.data()};
    par_run(job, ctx, n);
    out.reserve(n);
    for (auto& s : slots) out.push_back(std::move(*s));
  }
  return out;
}

template <class R, class T, class Op>
T par_reduce_impl(Runtime* rt, R& range, T& init, Op& op, const ParOptions& opts) {
  const auto n = static_cast<std::size_t>(std::ranges::size(range));
  ParJob job(rt, n, opts);
  if (n == 0) return std::move(init);
  ReduceCtx<std::ranges::iterator_t<R>, T, Op> ctx{std::ranges::begin(range), &op, &init, {}};
  par_run(job, ctx, n);
  // Partials in range order, the root's (which holds init) first:
  // associativity alone makes this equal to the sequential left fold.
  const std::vector<T*> parts = ctx.results.in_order();
  T acc = std::move(*parts.front());
  for (std::size_t k = 1; k < parts.size(); ++k) {
    acc = std::invoke(op, std::move(acc), std::move(*parts[k]));
  }
  return acc;
}

template <class R, class Pred>
auto par_filter_impl(Runtime* rt, R& range, Pred& pred, const ParOptions& opts) {
  using V = std::ranges::range_value_t<R>;
  const auto n = static_cast<std::size_t>(std::ranges::size(range));
  ParJob job(rt, n, opts);
  std::vector<V> out;
  if (n == 0) return out;
  FilterCtx<std::ranges::iterator_t<R>, Pred, V> ctx{std::ranges::begin(range), &pred, {}};
  par_run(job, ctx, n);
  const std::vector<std::vector<V>*> parts = ctx.results.in_order();
  std::size_t total = 0;
  for (const auto* part : parts) total += part->size();
  out.reserve(total);
  for (auto* part : parts) {
    for (V& v : *part) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace detail

// Common contract of the par_* functions below.
//
// Where they run: called from a fiber or a spawn_blocking thread of a runtime
// with no Runtime& argument, they use that runtime; the overloads taking a
// weft::Runtime& first use that one and are callable from anywhere (plain
// threads, fibers of any runtime). A fiber of the runtime used works on the
// range itself and spawns helper fibers as lazy binary splitting asks; any
// other caller (a plain or blocking-pool thread, a fiber of another runtime)
// spawns one root fiber and waits for it (a thread blocks, a fiber parks).
// With one worker nothing is ever split: cost = a sequential loop plus a few
// loads per grain (and one spawn if the caller is not a fiber of it).
//
// Elements are passed by reference (range_reference_t), never copied, and in
// no particular order or thread; each element is visited exactly once (if
// the call completes). Callables are shared by every helper and called
// concurrently from several threads: they must be safe to call that way.
// Bodies may block (they park only their fiber) and may call par_*
// themselves (nested calls split on the same workers). Do not mutate a
// std::vector<bool> through par_for_each: its elements share words.
//
// Failures: the first exception thrown by a callable (or by copying a kept
// element, or allocating) stops the other leaves at their next grain; every
// helper fiber is joined; then that exception is rethrown. No helper fiber
// runs user code or touches the call's state once the call has returned or
// thrown (its exit bookkeeping, e.g. Runtime::stats().fibers_alive, may lag
// by a moment). Results of a failed call are discarded.
//
// Cancellation: each call is a cancellation point of the calling fiber. If
// its cancellation is pending on entry, the call throws weft::Cancelled at
// once; if it is requested while the call runs, leaves stop at their next
// grain, every helper is joined (the wait itself is never abandoned), and
// weft::Cancelled is thrown, unless a callable's exception was recorded
// first (then that one is). A request that arrives after every grain has
// started may let the call complete normally. Helpers poll the caller's
// state, not their own. Plain threads are never cancelled.
//
// Other errors: std::logic_error when called outside any runtime without a
// Runtime&; std::invalid_argument for a bad ParOptions::stack_size; when the
// root fiber cannot be spawned (plain-thread callers), the spawn's error
// (as weft::spawn). A helper that cannot be spawned (no stack) is not an
// error: its leaf keeps the work.

/// Calls fn(x) for every element x of `range` (by reference: mutating
/// through a non-const range is fine), in parallel on the runtime's workers,
/// split by lazy binary splitting (Tzannes et al., PPoPP 2010). O(n) calls of
/// fn, O(n / grain) checks; helper fibers: none with one worker, few
/// otherwise. Contract, errors and cancellation: see above.
template <detail::ParRange R, class Fn>
requires std::invocable<Fn&, std::ranges::range_reference_t<R>>
void par_for_each(R&& range, Fn fn, const ParOptions& opts = {}) {
  detail::par_for_each_impl(nullptr, range, fn, opts);
}

/// par_for_each on the workers of `rt`, callable from any thread.
template <detail::ParRange R, class Fn>
requires std::invocable<Fn&, std::ranges::range_reference_t<R>>
void par_for_each(Runtime& rt, R&& range, Fn fn, const ParOptions& opts = {}) {
  detail::par_for_each_impl(&rt, range, fn, opts);
}

/// Returns {fn(x) for x in range} as a std::vector<R>, in input order, where
/// R is fn's result type without cv/reference (references are copied). R
/// may be move-only. When R is default-constructible and move-assignable
/// (and not bool) each result is assigned into its slot of the vector;
/// otherwise results go through std::optional<R> slots and are moved into
/// the vector at the end (one sequential move per element). O(n) calls of
/// fn. Contract, errors and cancellation: see above.
template <detail::ParRange R, class Fn>
requires std::invocable<Fn&, std::ranges::range_reference_t<R>> &&
    (!std::is_void_v<std::invoke_result_t<Fn&, std::ranges::range_reference_t<R>>>)
        std::vector<detail::ParMapResult<R, Fn>> par_map(R&& range, Fn fn,
                                                         const ParOptions& opts = {}) {
  return detail::par_map_impl(nullptr, range, fn, opts);
}

/// par_map on the workers of `rt`, callable from any thread.
template <detail::ParRange R, class Fn>
requires std::invocable<Fn&, std::ranges::range_reference_t<R>> &&
    (!std::is_void_v<std::invoke_result_t<Fn&, std::ranges::range_reference_t<R>>>)
        std::vector<detail::ParMapResult<R, Fn>> par_map(Runtime& rt, R&& range, Fn fn,
                                                         const ParOptions& opts = {}) {
  return detail::par_map_impl(&rt, range, fn, opts);
}

/// Folds `range` with op, starting from init. The value is
/// op(...op(op(init, x0), x1)..., xn-1) for an associative op, which need
/// NOT be commutative: each leaf folds its contiguous piece left to right
/// (starting from its first element converted to T; the leftmost from
/// init), and the pieces' results are combined in range order on the
/// calling thread. init is used exactly once (moved); an empty range
/// returns init. Requirements: T is move-constructible and move-assignable
/// and constructible from the range's reference type; op(T, T) returns
/// something convertible to T; op(T, x) is used when valid, else
/// op(T, T(x)). O(n) calls of op, plus one per helper fiber to combine.
/// Contract, errors and cancellation: see above.
template <detail::ParRange R, class T, class Op>
requires std::move_constructible<T> && std::is_move_assignable_v<T> &&
    std::constructible_from<T, std::ranges::range_reference_t<R>> &&
    std::is_invocable_r_v<T, Op&, T, T>
        T par_reduce(R&& range, T init, Op op, const ParOptions& opts = {}) {
  return detail::par_reduce_impl(nullptr, range, init, op, opts);
}

/// par_reduce on the workers of `rt`, callable from any thread.
template <detail::ParRange R, class T, class Op>
requires std::move_constructible<T> && std::is_move_assignable_v<T> &&
    std::constructible_from<T, std::ranges::range_reference_t<R>> &&
    std::is_invocable_r_v<T, Op&, T, T>
        T par_reduce(Runtime& rt, R&& range, T init, Op op, const ParOptions& opts = {}) {
  return detail::par_reduce_impl(&rt, range, init, op, opts);
}

/// Returns the elements x of `range` for which pred(x) is true, as a
/// std::vector of the range's value type, in input order. Kept elements are
/// copied (moved if the range's reference is an rvalue) into per-leaf
/// buffers, then moved into the result on the calling thread (one
/// sequential move per kept element). O(n) calls of pred. Contract, errors
/// and cancellation: see above.
template <detail::ParRange R, class Pred>
requires std::predicate<Pred&, std::ranges::range_reference_t<R>> &&
    std::constructible_from<std::ranges::range_value_t<R>, std::ranges::range_reference_t<R>>
        std::vector<std::ranges::range_value_t<R>> par_filter(R&& range, Pred pred,
                                                              const ParOptions& opts = {}) {
  return detail::par_filter_impl(nullptr, range, pred, opts);
}

/// par_filter on the workers of `rt`, callable from any thread.
template <detail::ParRange R, class Pred>
requires std::predicate<Pred&, std::ranges::range_reference_t<R>> &&
    std::constructible_from<std::ranges::range_value_t<R>, std::ranges::range_reference_t<R>>
        std::vector<std::ranges::range_value_t<R>> par_filter(Runtime& rt, R&& range, Pred pred,
                                                              const ParOptions& opts = {}) {
  return detail::par_filter_impl(&rt, range, pred, opts);
}

}  // namespace weft
