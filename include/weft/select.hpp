// select: wait on several channel operations at once; exactly one completes.
//
//   weft::select(weft::on_recv(rx_a, [](int v) { ... }),
//                weft::on_recv(rx_b, [](std::optional<std::string> s) { ... }),
//                weft::on_send(tx, value, [] { ... }),
//                weft::on_timeout(50ms, [] { ... }));
//
// Exactly one case fires and runs its handler (after every channel lock is
// released); a case that does not fire consumes nothing: its send leaves the
// value where it was, its receive takes no value. When several cases are
// ready, the one that fires is chosen uniformly at random, so none starves.
//
// Algorithm (crossbeam-channel's, on weft's Waiter): poll the cases in a
// random order; if none is ready, link one node per case, all sharing one
// Waiter, into the channels' wait queues (again in a random order) and park.
// A counterpart that completes a case first claims the shared Waiter (one CAS,
// the single winner), then transfers the value, then unparks; the other nodes
// are unlinked. If a case turns ready while registering, the select claims
// its own Waiter to abort, unlinks, and polls again. No two channel locks are
// ever held at once. docs/design/channels.md has the proofs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/channel.hpp"
#include "weft/detail/deadline.hpp"

namespace weft {

/// select() result when every case was disabled by a closed channel and
/// there is no default or timeout case (nothing could ever fire).
inline constexpr std::size_t select_all_closed = static_cast<std::size_t>(-1);

namespace detail {

/// One channel operation of a select, type-erased for select_impl.
struct SelectOp {
  ChanCore* chan = nullptr;  ///< nullptr: the case is disabled
  void* slot = nullptr;      ///< send: the T to move from; recv: the std::optional<T> to fill
  bool is_send = false;
  bool fire_on_closed = false;  ///< a closed channel fires this case (else disables it)
  bool closed = false;          ///< out: fired because the channel is closed
};

/// Runs the select protocol over ops[0..n). Returns the index of the op that
/// completed (ops[i].closed tells whether by closure), n for the default case
/// (only if has_default and nothing was ready), n + 1 for the deadline, or
/// select_all_closed. deadline_ns: CLOCK_MONOTONIC ns, -1 none.
/// @throws weft::Cancelled if the fiber is cancelled while it waits (no case
/// has fired then).
std::size_t select_impl(SelectOp* ops, std::size_t n, bool has_default, std::int64_t deadline_ns);

template <class T, class F>
struct RecvCase {
  const Receiver<T>* rx;
  F fn;
  std::optional<T> value;
  static constexpr bool kWantsOptional = std::is_invocable_v<F&, std::optional<T>&&>;
  static_assert(kWantsOptional || std::is_invocable_v<F&, T&&>,
                "on_recv handler must take T or std::optional<T>");
  static constexpr bool kIsOp = true;
  void fill(SelectOp& op) {
    op.chan = rx->raw();
    op.slot = &value;
    op.is_send = false;
    op.fire_on_closed = kWantsOptional;
  }
  void fire(const SelectOp&) {
    if constexpr (kWantsOptional) {
      fn(std::move(value));
    } else {
      fn(std::move(*value));
    }
  }
};

template <class T, class F>
struct SendCase {
  const Sender<T>* tx;
  std::optional<T> owned;  // set when the value was given as an rvalue
  T* value;
  F fn;
  static constexpr bool kWantsStatus = std::is_invocable_v<F&, bool>;
  static_assert(kWantsStatus || std::is_invocable_v<F&>,
                "on_send handler must take () or (bool sent)");
  static constexpr bool kIsOp = true;
  void fill(SelectOp& op) {
    if (owned) value = &*owned;
    op.chan = tx->raw();
    op.slot = value;
    op.is_send = true;
    op.fire_on_closed = kWantsStatus;
  }
  void fire(const SelectOp& op) {
    if constexpr (kWantsStatus) {
      fn(!op.closed);
    } else {
      fn();
    }
  }
};

template <class F>
struct DefaultCase {
  F fn;
  static constexpr bool kIsOp = false;
};

template <class F>
struct DeadlineCase {
  std::int64_t deadline_ns;
  F fn;
  static constexpr bool kIsOp = false;
};

template <class C>
struct IsDefault : std::false_type {};
template <class F>
struct IsDefault<DefaultCase<F>> : std::true_type {};
template <class C>
struct IsDeadline : std::false_type {};
template <class F>
struct IsDeadline<DeadlineCase<F>> : std::true_type {};

}  // namespace detail

/// A receive case. `fn` takes T (the case is disabled once the channel is
/// closed and drained) or std::optional<T> (it then fires with nullopt on a
/// closed, drained channel). A generic lambda gets std::optional<T>.
template <class T, class F>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Receiver<T>& rx, F&& fn) {
  return {&rx, std::forward<F>(fn), std::nullopt};
}

/// A send case. `value` given as an lvalue is moved from only if this case
/// fires with the value sent, so nothing is lost; given as an rvalue, it is
/// held by the case and destroyed unsent if another case fires. `fn` takes
/// () (the case is disabled if the channel is closed) or (bool sent) (it then
/// fires with false on a closed channel, the value left in place).
template <class T, class V, class F>
detail::SendCase<T, std::decay_t<F>> on_send(const Sender<T>& tx, V&& value, F&& fn) {
  if constexpr (std::is_lvalue_reference_v<V> && std::is_same_v<std::remove_cvref_t<V>, T> &&
                !std::is_const_v<std::remove_reference_t<V>>) {
    return {&tx, std::nullopt, &value, std::forward<F>(fn)};
  } else {
    return {&tx, std::optional<T>(std::forward<V>(value)), nullptr, std::forward<F>(fn)};
  }
}

/// The default case: fires if no other case is ready at once, so select()
/// never blocks. At most one per select.
template <class F>
detail::DefaultCase<std::decay_t<F>> on_default(F&& fn) {
  return {std::forward<F>(fn)};
}

/// A timeout case: fires if nothing else did within `timeout` (1 ms timer
/// resolution in fibers, never early). At most one deadline/timeout case.
template <class Rep, class Period, class F>
detail::DeadlineCase<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> timeout,
                                                 F&& fn) {
  return {detail::timeout_to_deadline_ns(timeout), std::forward<F>(fn)};
}

/// A deadline case: fires if nothing else did by `deadline`.
template <class C, class D, class F>
detail::DeadlineCase<std::decay_t<F>> on_deadline(std::chrono::time_point<C, D> deadline, F&& fn) {
  return {detail::to_deadline_ns(deadline), std::forward<F>(fn)};
}
/// The same with a weft::Deadline (none: no time limit).
template <class F>
detail::DeadlineCase<std::decay_t<F>> on_deadline(Deadline deadline, F&& fn) {
  return {detail::to_deadline_ns(deadline), std::forward<F>(fn)};
}

/// Waits until exactly one case can complete, completes it, runs its handler
/// and returns the case's position among the arguments (0-based). With a
/// default case it never waits. Returns select_all_closed (running nothing)
/// if every channel case is disabled by closure and there is no default or
/// deadline case. Safe from fibers (parks) and plain threads (blocks); any
/// number of selects and plain operations may race on the same channels.
/// An exception from a handler propagates after the case has completed.
/// @throws weft::Cancelled if the fiber is cancelled while waiting (no case
/// fired); std::logic_error for an empty channel handle.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "select needs at least one case");
  static_assert((0 + ... + (detail::IsDefault<std::remove_cvref_t<Cases>>::value ? 1 : 0)) <= 1,
                "at most one on_default case");
  static_assert((0 + ... + (detail::IsDeadline<std::remove_cvref_t<Cases>>::value ? 1 : 0)) <= 1,
                "at most one on_timeout/on_deadline case");
  constexpr std::size_t kOps = (0 + ... + (std::remove_cvref_t<Cases>::kIsOp ? 1 : 0));
  constexpr bool kHasDefault =
      (false || ... || detail::IsDefault<std::remove_cvref_t<Cases>>::value);

  auto refs = std::forward_as_tuple(cases...);
  detail::SelectOp ops[kOps > 0 ? kOps : 1];
  std::size_t op_arg[kOps > 0 ? kOps : 1] = {};  // op index -> argument index
  std::int64_t deadline_ns = detail::kNoDeadline;
  std::size_t default_arg = 0, deadline_arg = 0;

  [&]<std::size_t... I>(std::index_sequence<I...>) {
    std::size_t k = 0;
    auto visit = [&](auto& c, std::size_t arg) {
      using C = std::remove_cvref_t<decltype(c)>;
      if constexpr (C::kIsOp) {
        c.fill(ops[k]);
        if (ops[k].chan == nullptr)
          throw std::logic_error("weft: select on an empty channel handle");
        op_arg[k++] = arg;
      } else if constexpr (detail::IsDefault<C>::value) {
        default_arg = arg;
      } else {
        deadline_ns = c.deadline_ns;
        deadline_arg = arg;
      }
    };
    (visit(std::get<I>(refs), I), ...);
  }
  (std::index_sequence_for<Cases...>{});

  const std::size_t r = detail::select_impl(ops, kOps, kHasDefault, deadline_ns);
  if (r == select_all_closed) return r;
  std::size_t fired_arg;
  if (r < kOps) {
    fired_arg = op_arg[r];
  } else if (r == kOps) {
    fired_arg = default_arg;
  } else {
    fired_arg = deadline_arg;
  }

  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto run = [&](auto& c, std::size_t arg) {
      if (arg != fired_arg) return;
      using C = std::remove_cvref_t<decltype(c)>;
      if constexpr (C::kIsOp) {
        c.fire(ops[r]);
      } else {
        c.fn();
      }
    };
    (run(std::get<I>(refs), I), ...);
  }
  (std::index_sequence_for<Cases...>{});
  return fired_arg;
}

}  // namespace weft
