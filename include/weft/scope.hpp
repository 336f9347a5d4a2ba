// Structured concurrency: nurseries (weft::scope), timeouts, combinators.
//
// The model is Trio: a nursery's children cannot outlive it, the first
// failure cancels the rest and is rethrown once all have finished, and a
// timeout is a cancel scope with a deadline (docs/design/cancellation.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weft/cancel.hpp"
#include "weft/deadline.hpp"
#include "weft/detail/cancel_scope.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/this_fiber.hpp"

namespace weft {

class Scope;

/// The handle Scope::spawn returns: a JoinHandle<T> (join, cancel, ...)
/// that may be discarded without a warning, since the scope, not the
/// handle, owns its child's lifetime (Trio's start_soon).
template <class T>
class ScopedHandle : public JoinHandle<T> {
 public:
  using JoinHandle<T>::JoinHandle;
  /// Adopts h (what Scope::spawn returns).
  ScopedHandle(JoinHandle<T>&& h) noexcept : JoinHandle<T>(std::move(h)) {}  // NOLINT
};

namespace detail {

/// True if `e` holds a weft::Cancelled.
bool is_cancelled_error(const std::exception_ptr& e) noexcept;

/// A scope's count of running children and its failures (scope.cpp).
class ScopeState final : public TaskBase::CompletionHook {
 public:
  explicit ScopeState(CancelScope& cs) noexcept : cs_(cs) {}
  ScopeState(const ScopeState&) = delete;
  ScopeState& operator=(const ScopeState&) = delete;

  /// Counts a child about to be spawned (undo with task_completed(nullptr)).
  void child_starting() noexcept;
  /// A child ended (or, for null, failed to start).
  void task_completed(TaskBase* task) noexcept override;
  /// Records a failure; the first one cancels the scope.
  void fail(std::exception_ptr e) noexcept;
  /// Waits, uncancellably, until no child is running.
  void wait_children() noexcept;

  /// After wait_children(): the first failure recorded, if any.
  std::exception_ptr first_failure() const noexcept {
    LockGuard g(lock_);
    return first_;
  }
  /// After wait_children(): every failure recorded, moved out.
  std::vector<std::exception_ptr> take_failures() noexcept {
    LockGuard g(lock_);
    return std::move(failures_);
  }

 private:
  CancelScope& cs_;
  mutable SpinLock lock_;
  std::size_t live_ WEFT_GUARDED_BY(lock_) = 0;
  void* waiter_ WEFT_GUARDED_BY(lock_) = nullptr;  // the scope's parked Waiter
  std::exception_ptr first_ WEFT_GUARDED_BY(lock_);
  std::vector<std::exception_ptr> failures_ WEFT_GUARDED_BY(lock_);
};

/// What move_on_after returns for a function returning R.
template <class R>
using MoveOnResult = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;

template <class T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
ValueOrMonostate<T> join_value(JoinHandle<T>& h) {
  if constexpr (std::is_void_v<T>) {
    h.join();
    return {};
  } else {
    return h.join();
  }
}

/// Joins in argument order (braced initialisation evaluates left to right).
template <class... T>
std::tuple<ValueOrMonostate<T>...> join_values(JoinHandle<T>&... h) {
  return std::tuple<ValueOrMonostate<T>...>{join_value(h)...};
}

/// Runs fn on a new fiber of the current runtime and joins it: how the
/// structured APIs below run when called from a thread rather than a fiber.
template <class F>
decltype(auto) run_on_fiber(F&& fn) {
  return weft::spawn(std::forward<F>(fn)).join();
}

}  // namespace detail

/// A nursery: the handle through which weft::scope's body spawns children
/// that cannot outlive the scope. Only weft::scope creates one; pass it by
/// reference to children so they can spawn siblings. Every member is safe
/// from any fiber of the runtime while the scope is open (until scope()
/// returns); using a Scope after that is undefined.
class Scope {
 public:
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  /// Spawns a child fiber inside the scope: it is cancelled with the scope
  /// and the scope waits for it. Its handle gives its result as usual
  /// (join() returns or rethrows; a handle dropped or detached does not
  /// release the child from the scope, and its failure still counts). A
  /// child that ends with an exception other than weft::Cancelled cancels
  /// the scope; the first such exception is rethrown by scope().
  /// @throws as weft::spawn (the child then never ran and is not counted).
  template <class F>
  auto spawn(const FiberOptions& opts, F&& fn) {
    state_.child_starting();
    try {
      auto h = detail::make_task_and_start(std::forward<F>(fn), [&](detail::TaskBase* t) {
        detail::spawn_scoped_task(t, opts, cs_.node(), &state_);
      });
      return ScopedHandle<detail::TaskResult<F>>(std::move(h));
    } catch (...) {
      state_.task_completed(nullptr);
      throw;
    }
  }
  /// spawn() with default options.
  template <class F>
  auto spawn(F&& fn) {
    return spawn(FiberOptions{}, std::forward<F>(fn));
  }

  /// Cancels the scope: its children and the scope's body (its blocking
  /// calls throw weft::Cancelled). scope() absorbs the cancellation it
  /// caused itself (see scope()). Never throws; any thread.
  void cancel() noexcept { cs_.cancel(); }

  /// Cancels the scope once `deadline` passes (the earliest of several
  /// calls wins). Must be called from a fiber of the runtime.
  /// @throws std::logic_error from a plain thread; std::bad_alloc.
  void cancel_after(Deadline deadline) {
    if (!deadline.is_none()) cs_.cancel_at(deadline.ns());
  }

  /// True once the scope is cancelled (by cancel(), cancel_after(), a
  /// failing child, or an enclosing scope).
  bool is_cancelled() const noexcept { return cs_.node()->is_cancelled(); }

  /// A token that is cancelled with the scope.
  CancellationToken token() const noexcept {
    cs_.node()->add_ref();
    return CancellationToken::adopt(cs_.node());
  }

 private:
  template <class F>
  friend auto scope(F&& body, std::vector<std::exception_ptr>* failures)
      -> std::invoke_result_t<F&&, Scope&>;

  Scope() : cs_(detail::CancelScope::Kind::nested, -1), state_(cs_) {}

  detail::CancelScope cs_;
  detail::ScopeState state_;
};

/// Runs body(scope) on the calling fiber inside a new nursery and returns
/// its result once the body and every child spawned through the Scope have
/// finished (Trio's nursery; Kotlin's coroutineScope).
///
/// - The first failure - a child or the body ending with an exception other
///   than weft::Cancelled - cancels the scope (the body and the other
///   children); scope() waits for all of them and rethrows that first
///   exception. If `failures` is given, it receives every failure, in the
///   order they happened (the first one first), so that none is lost.
/// - Cancelling an enclosing scope (or this fiber) cancels the children and
///   the body; scope() waits for all, then rethrows weft::Cancelled (even
///   if the body had already returned: the scope's exit is a cancellation
///   point).
/// - A cancellation the scope caused itself (Scope::cancel, cancel_after,
///   a failure) is absorbed: if there was no failure and the body ended
///   with Cancelled, a void body's scope() returns normally, while a body
///   with a result rethrows Cancelled (there is no value to return).
/// - Waiting for the children is not interruptible: scope() never returns
///   while a child runs.
///
/// From a thread that is not a fiber (a spawn_blocking thread), the whole
/// scope runs on a new fiber of the current runtime, joined.
/// @throws std::logic_error outside a runtime; std::bad_alloc; the first
/// failure; weft::Cancelled as above.
template <class F>
auto scope(F&& body, std::vector<std::exception_ptr>* failures)
    -> std::invoke_result_t<F&&, Scope&> {
  using R = std::invoke_result_t<F&&, Scope&>;
  if (!this_fiber::in_fiber()) {
    return detail::run_on_fiber([&]() -> R { return scope(std::forward<F>(body), failures); });
  }
  Scope s;
  std::optional<detail::ValueOrMonostate<R>> result;
  std::exception_ptr body_error;
  try {
    if constexpr (std::is_void_v<R>) {
      std::forward<F>(body)(s);
      result.emplace();
    } else {
      result.emplace(std::forward<F>(body)(s));
    }
  } catch (...) {
    body_error = std::current_exception();
    if (!detail::is_cancelled_error(body_error)) s.state_.fail(body_error);
  }
  s.state_.wait_children();
  s.cs_.close();
  if (failures != nullptr) *failures = s.state_.take_failures();
  if (std::exception_ptr first = s.state_.first_failure()) std::rethrow_exception(first);
  if (s.cs_.outer_cancelled()) {
    // Cancelled from outside: even if the body returned, its children were
    // cancelled, so the scope did not complete.
    if (body_error) std::rethrow_exception(body_error);
    throw Cancelled();
  }
  if (body_error) {
    if (std::is_void_v<R> && s.cs_.cancelled_here())
      result.emplace();
    else
      std::rethrow_exception(body_error);
  }
  if constexpr (!std::is_void_v<R>) return std::move(*result);
}

/// scope(body) without collecting the failures.
template <class F>
auto scope(F&& body) -> std::invoke_result_t<F&&, Scope&> {
  return scope(std::forward<F>(body), nullptr);
}

namespace detail {
/// Runs fn inside a cancel scope with a deadline. Returns fn's result, or
/// nullopt/false when the scope's own deadline cancelled it (timed_out set).
template <class F>
auto run_with_deadline(Deadline deadline, F&& fn, bool& timed_out) {
  using R = std::invoke_result_t<F&&>;
  using Out = MoveOnResult<R>;
  timed_out = false;
  CancelScope cs(CancelScope::Kind::nested, deadline.ns());
  try {
    if constexpr (std::is_void_v<R>) {
      std::forward<F>(fn)();
      cs.close();
      return Out(true);
    } else {
      Out out(std::forward<F>(fn)());
      cs.close();
      return out;
    }
  } catch (const Cancelled&) {
    cs.close();
    if (!cs.cancelled_here()) throw;
    timed_out = true;
    return Out();
  }
}
}  // namespace detail

/// Runs fn() on the calling fiber and gives up on it once `deadline`
/// passes. fn's blocking calls (and every fiber spawned inside, including
/// nested scopes) are cancelled, and once fn has unwound, move_on_after
/// returns an empty std::optional (false for a void fn; true if it
/// completed). Trio's move_on_after. A deadline already passed still runs fn,
/// whose first blocking call then throws inside. Nested deadlines: the
/// earliest wins; an enclosing scope's cancellation (or deadline)
/// propagates as weft::Cancelled rather than being absorbed here. If fn
/// swallows the cancellation and returns a value, that value is returned.
/// Never returns before the deadline because of it (lower bound only);
/// timers have 1 ms resolution. From a thread, runs fn on a new fiber.
/// @throws what fn throws; weft::Cancelled from an enclosing scope.
template <class F>
auto move_on_after(Deadline deadline, F&& fn) -> detail::MoveOnResult<std::invoke_result_t<F&&>> {
  if (!this_fiber::in_fiber()) {
    return detail::run_on_fiber([&] { return move_on_after(deadline, std::forward<F>(fn)); });
  }
  bool timed_out;
  return detail::run_with_deadline(deadline, std::forward<F>(fn), timed_out);
}

/// Like move_on_after, but throws weft::TimedOut when the deadline cancelled
/// fn, and returns fn's result (void allowed) otherwise. Trio's fail_after.
/// @throws weft::TimedOut; what fn throws; weft::Cancelled from an
/// enclosing scope.
template <class F>
auto fail_after(Deadline deadline, F&& fn) -> std::invoke_result_t<F&&> {
  using R = std::invoke_result_t<F&&>;
  if (!this_fiber::in_fiber()) {
    return detail::run_on_fiber([&]() -> R { return fail_after(deadline, std::forward<F>(fn)); });
  }
  bool timed_out;
  auto out = detail::run_with_deadline(deadline, std::forward<F>(fn), timed_out);
  if (timed_out) throw TimedOut();
  if constexpr (!std::is_void_v<R>) return std::move(*out);
}

/// weft::with_timeout(d, fn): fn runs with a deadline; if it runs past it,
/// everything it is doing is cancelled and joined (its fiber's blocking
/// calls throw Cancelled, fibers it spawned in scopes are joined by those
/// scopes), then weft::TimedOut is thrown. Same as fail_after.
template <class F>
auto with_timeout(Deadline deadline, F&& fn) -> std::invoke_result_t<F&&> {
  return fail_after(deadline, std::forward<F>(fn));
}

/// Joins every handle, in order, and returns their results in that order
/// (nothing for void). All are waited for even if some failed; then the
/// first failure (in handle order) is rethrown. If the calling fiber is
/// cancelled while waiting, the fibers not yet joined are cancelled and
/// waited for, and weft::Cancelled is rethrown.
/// @throws std::logic_error for an empty handle; a child's exception;
/// weft::Cancelled.
template <class T>
auto join_all(std::vector<JoinHandle<T>> handles)
    -> std::conditional_t<std::is_void_v<T>, void, std::vector<detail::ValueOrMonostate<T>>> {
  std::vector<detail::ValueOrMonostate<T>> results;
  if constexpr (!std::is_void_v<T>) results.reserve(handles.size());
  std::exception_ptr first;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    try {
      if constexpr (std::is_void_v<T>) {
        handles[i].join();
      } else {
        results.push_back(handles[i].join());
      }
    } catch (...) {
      if (handles[i].joinable()) {
        // Our own cancellation (the handle was not consumed): structured
        // to the end, cancel and wait for the rest.
        for (std::size_t j = i; j < handles.size(); ++j) handles[j].cancel();
        shield([&] {
          for (std::size_t j = i; j < handles.size(); ++j) {
            try {
              handles[j].join();
            } catch (...) {
            }
          }
        });
        throw;
      }
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  if constexpr (!std::is_void_v<T>) return results;
}

/// Runs every fn concurrently, each on its own fiber in a scope, and
/// returns all their results as a tuple in argument order (std::monostate
/// for a void fn). The first failure cancels the others and is rethrown
/// once all have finished (scope() semantics); nothing is returned then.
/// @throws as weft::scope.
template <class... Fs>
auto when_all(Fs&&... fns) {
  return scope([&](Scope& s) {
    auto handles = std::make_tuple(s.spawn(std::forward<Fs>(fns))...);
    return std::apply([](auto&... h) { return detail::join_values(h...); }, handles);
  });
}

namespace detail {
template <class V, class... Fs, std::size_t... I>
V race_impl(std::index_sequence<I...>, Fs&&... fns) {
  // Claimed once by the first contestant to finish; winner/error are then
  // written by it alone and read after scope() joined everyone (the join
  // orders them), so the exchange only has to be atomic.
  std::atomic<bool> decided{false};
  std::optional<V> winner;
  std::exception_ptr error;
  // Declared outside the scope's body: the contestants outlive the body
  // (it returns right after spawning them), not race_impl's frame.
  auto run = [&](auto index, auto& fn, Scope& s) {
    constexpr std::size_t kI = decltype(index)::value;
    using R = std::invoke_result_t<decltype(fn)>;
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        if (!decided.exchange(true, std::memory_order_acq_rel)) {
          winner.emplace(std::in_place_index<kI>);
          s.cancel();
        }
      } else {
        R r = fn();
        if (!decided.exchange(true, std::memory_order_acq_rel)) {
          winner.emplace(std::in_place_index<kI>, std::move(r));
          s.cancel();
        }
      }
    } catch (const Cancelled&) {
      // Lost (cancelled after someone won), or an enclosing cancellation:
      // not a finish.
    } catch (...) {
      if (!decided.exchange(true, std::memory_order_acq_rel)) {
        error = std::current_exception();
        s.cancel();
      }
    }
  };
  scope([&](Scope& s) {
    (s.spawn([&run, &fns, &s] { run(std::integral_constant<std::size_t, I>{}, fns, s); }), ...);
  });
  // scope() waited for every contestant: winner/error are final.
  if (error) std::rethrow_exception(error);
  if (!winner) throw Cancelled();
  return std::move(*winner);
}
}  // namespace detail

/// Runs every fn concurrently, each on its own fiber in a scope; the first
/// to finish wins. The others are cancelled (their blocking calls throw
/// weft::Cancelled, their destructors run) and joined before it returns.
/// Returns a std::variant whose index() says which fn won, holding its
/// result (std::monostate for void).
///
/// First failure: finishing includes failing. If the first fn to finish
/// ends with an exception (other than weft::Cancelled), the others are
/// cancelled and joined and that exception is rethrown; exceptions of fns
/// that finish after the winner are discarded. If every fn ends cancelled
/// (an enclosing scope was cancelled), weft::Cancelled is thrown.
/// @throws as described; std::logic_error outside a runtime.
template <class... Fs>
auto when_any(Fs&&... fns) {
  static_assert(sizeof...(Fs) > 0, "weft::when_any needs at least one function");
  using V = std::variant<detail::ValueOrMonostate<std::invoke_result_t<Fs&>>...>;
  return detail::race_impl<V>(std::index_sequence_for<Fs...>{}, std::forward<Fs>(fns)...);
}

/// when_any for functions with one common result type R: returns the
/// winner's R (nothing for void). Same first-failure rule as when_any.
template <class... Fs>
auto race(Fs&&... fns) {
  using R = std::common_type_t<std::invoke_result_t<Fs&>...>;
  auto v = when_any(std::forward<Fs>(fns)...);
  if constexpr (!std::is_void_v<R>) {
    return std::visit([](auto&& x) -> R { return R(std::move(x)); }, std::move(v));
  }
}

}  // namespace weft
