// Select completed: cases built at run time (weft::Selector), joins as
// select cases (weft::on_join), racing handles (weft::wait_any), and a
// reference to a running fiber (weft::FiberRef, this_fiber::handle()).
//
//   weft::Selector sel;
//   for (auto& rx : inputs) sel.add_recv(rx, [&](Msg m) { ... });
//   sel.add_join(worker, [](int result) { ... });
//   sel.add_timeout(1s, [] { ... });
//   std::size_t fired = sel.wait();            // the index add_* returned
//
// Selector runs the same protocol as the variadic weft::select
// (select.hpp; docs/design/channels.md): exactly one case fires, a case
// that does not fire consumes nothing, and among ready cases the one that
// fires is chosen uniformly at random (Go's select; seed 000 §1.3's
// SelectBuilder). A join is a channel too: each task owns a channel that
// its completion closes (TaskBase::done_channel), so waiting for a fiber to
// end is a receive case that fires on closure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/channel.hpp"
#include "weft/deadline.hpp"
#include "weft/fiber.hpp"
#include "weft/select.hpp"

namespace weft {

/// Where a fiber is in its life, as seen from outside (a snapshot: it may
/// have moved on by the time the caller looks).
enum class FiberState : std::uint8_t {
  runnable,  ///< queued to run (or not started yet)
  running,   ///< on a worker right now
  parked,    ///< waiting (channel, lock, sleep, I/O, join...)
  finished,  ///< ended (its result is ready)
};

/// "runnable", "running", "parked" or "finished".
const char* to_string(FiberState s) noexcept;

namespace detail {
/// The state of a task's fiber (src/api/fiber_ref.cpp). A spawn_blocking
/// task is running until finished.
weft::FiberState task_state(TaskBase* task) noexcept;
}  // namespace detail

/// The state of the fiber behind a JoinHandle (finished for an empty one).
template <class T>
FiberState state_of(const JoinHandle<T>& h) noexcept {
  return h.joinable() ? detail::task_state(h.task_base()) : FiberState::finished;
}

/// A counted reference to a fiber (seed 000 §8.1 `current()`): its id, name
/// and priority, a state query, and cancellation. Keeps the fiber's result
/// storage alive, not the fiber: a FiberRef may outlive the fiber (state()
/// is then finished). Copyable; every member is thread-safe.
class FiberRef {
 public:
  /// Refers to no fiber: id() is 0, state() finished, cancel() does nothing.
  FiberRef() noexcept = default;
  /// Another reference to the same fiber.
  FiberRef(const FiberRef& o) noexcept;
  /// Takes over o's reference; o refers to no fiber afterwards.
  FiberRef(FiberRef&& o) noexcept
      : task_(std::exchange(o.task_, nullptr)),
        name_(std::move(o.name_)),
        priority_(o.priority_),
        parent_id_(o.parent_id_) {}
  /// Refers to o's fiber instead (copy-and-swap).
  FiberRef& operator=(FiberRef o) noexcept {
    std::swap(task_, o.task_);
    std::swap(name_, o.name_);
    std::swap(priority_, o.priority_);
    std::swap(parent_id_, o.parent_id_);
    return *this;
  }
  ~FiberRef();

  /// The fiber's id (0 for an empty ref).
  FiberId id() const noexcept;
  /// The fiber's name (FiberOptions::name), copied when the ref was made.
  const std::string& name() const noexcept { return name_; }
  /// The fiber's priority when the ref was made.
  Priority priority() const noexcept { return priority_; }
  /// The id of the fiber that spawned it (0 if it was spawned from outside
  /// the runtime's fibers, or for an empty ref).
  FiberId parent_id() const noexcept { return parent_id_; }
  /// Where the fiber is now (see FiberState).
  FiberState state() const noexcept {
    return task_ != nullptr ? detail::task_state(task_) : FiberState::finished;
  }
  /// Requests cancellation of the fiber and of everything running inside
  /// it, as JoinHandle::cancel(). Never throws.
  void cancel() const noexcept;
  /// True once cancel() (or an enclosing scope) cancelled the fiber's own
  /// node.
  bool is_cancelled() const noexcept;
  /// False for an empty ref.
  explicit operator bool() const noexcept { return task_ != nullptr; }

  /// Internal: adopts a reference to `task` (this_fiber::handle()).
  FiberRef(detail::TaskBase* task, std::string name, Priority p, FiberId parent_id) noexcept
      : task_(task), name_(std::move(name)), priority_(p), parent_id_(parent_id) {}
  /// Internal: the fiber's task (snapshots); null for an empty ref.
  detail::TaskBase* task_base() const noexcept { return task_; }

 private:
  detail::TaskBase* task_ = nullptr;
  std::string name_;
  Priority priority_ = Priority::normal;
  FiberId parent_id_ = 0;
};

namespace this_fiber {
/// A reference to the calling fiber. @throws std::logic_error outside a
/// fiber ("weft: this_fiber::handle() outside a fiber").
FiberRef handle();
}  // namespace this_fiber

namespace detail {

/// A select case that fires when a fiber ends (a receive on its task's done
/// channel, which only ever closes).
template <class T, class F>
struct JoinCase {
  JoinHandle<T>* handle;
  F fn;
  std::optional<char> unused;  // the receive slot; never filled
  static constexpr bool kIsOp = true;
  void fill(SelectOp& op) {
    if (!handle->joinable()) throw std::logic_error("weft: on_join on an empty JoinHandle");
    op.chan = handle->task_base()->done_channel();
    op.slot = &unused;
    op.is_send = false;
    op.fire_on_closed = true;
  }
  void fire(const SelectOp&) {
    if constexpr (std::is_void_v<T>) {
      if constexpr (std::is_invocable_v<F&, JoinHandle<T>&>) {
        fn(*handle);
      } else {
        handle->join();
        fn();
      }
    } else if constexpr (std::is_invocable_v<F&, JoinHandle<T>&>) {
      fn(*handle);
    } else {
      fn(handle->join());
    }
  }
};

}  // namespace detail

/// A select case that fires once the fiber of `h` has ended. The handler
/// takes the fiber's result (join() runs first, so the fiber's exception
/// propagates out of select after the case fired), nothing for a void
/// fiber, or the JoinHandle itself (to join later or inspect).
/// @throws std::logic_error (from select) for an empty handle.
template <class T, class F>
detail::JoinCase<T, std::decay_t<F>> on_join(JoinHandle<T>& h, F&& fn) {
  return {&h, std::forward<F>(fn), std::nullopt};
}

/// Waits until one of `handles` has finished and returns its index, without
/// joining it (join() it for the value or the exception). When several are
/// finished, one of them is picked at random (fairness, as select). Seed 000
/// §8.1's await_first / select over handles.
/// @throws std::logic_error for an empty span or an empty handle;
/// weft::Cancelled if the caller is cancelled while it waits; std::bad_alloc.
template <class T>
std::size_t wait_any(std::span<JoinHandle<T>> handles) {
  if (handles.empty()) throw std::logic_error("weft: wait_any over no handles");
  std::vector<detail::SelectOp> ops(handles.size());
  std::vector<std::optional<char>> slots(handles.size());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (!handles[i].joinable()) throw std::logic_error("weft: wait_any over an empty JoinHandle");
    ops[i].chan = handles[i].task_base()->done_channel();
    ops[i].slot = &slots[i];
    ops[i].fire_on_closed = true;
  }
  return detail::select_impl(ops.data(), ops.size(), false, detail::kNoDeadline);
}

/// A select over cases added at run time. add_* register cases and return
/// their index (0, 1, ... in the order added); wait() blocks until one
/// fires, runs its handler and returns its index. The cases stay
/// registered: wait() may be called again (a send case's value is then
/// gone once it was sent: add it again). Values given to add_send are held
/// by the Selector until sent or destroyed. Used by one fiber at a time.
class Selector {
 public:
  Selector() = default;
  Selector(const Selector&) = delete;
  Selector& operator=(const Selector&) = delete;
  /// Move-only.
  Selector(Selector&&) noexcept = default;
  /// Move-only.
  Selector& operator=(Selector&&) noexcept = default;

  /// A receive case. `fn` takes T (the case is disabled once the channel
  /// is closed and drained) or std::optional<T> (then fires with nullopt).
  /// The Receiver must outlive the Selector's use. @throws std::logic_error
  /// for an empty handle; std::bad_alloc.
  template <class T, class F>
  std::size_t add_recv(const Receiver<T>& rx, F&& fn) {
    if (!rx) throw std::logic_error("weft: Selector::add_recv on an empty channel handle");
    return add(std::make_unique<Op<detail::RecvCase<T, std::decay_t<F>>>>(
        on_recv(rx, std::forward<F>(fn))));
  }
  /// A send case for `value` (held by the Selector until sent). `fn` takes
  /// () (disabled on a closed channel) or (bool sent).
  template <class T, class V, class F>
  std::size_t add_send(const Sender<T>& tx, V&& value, F&& fn) {
    if (!tx) throw std::logic_error("weft: Selector::add_send on an empty channel handle");
    return add(std::make_unique<Op<detail::SendCase<T, std::decay_t<F>>>>(
        detail::SendCase<T, std::decay_t<F>>{&tx, std::optional<T>(std::forward<V>(value)), nullptr,
                                             std::forward<F>(fn)}));
  }
  /// A join case (see on_join). The handle must outlive the Selector's use.
  template <class T, class F>
  std::size_t add_join(JoinHandle<T>& h, F&& fn) {
    if (!h.joinable()) throw std::logic_error("weft: Selector::add_join on an empty JoinHandle");
    return add(std::make_unique<Op<detail::JoinCase<T, std::decay_t<F>>>>(
        on_join(h, std::forward<F>(fn))));
  }
  /// A deadline case: fires if nothing else did by `deadline`. Several are
  /// allowed; the earliest counts (the first added among equal ones).
  template <class F>
  std::size_t add_timeout(Deadline deadline, F&& fn) {
    auto c = std::make_unique<Timed<std::decay_t<F>>>(std::forward<F>(fn));
    c->deadline = deadline;
    return add(std::move(c));
  }
  /// The default case: wait() never blocks; it fires when nothing else is
  /// ready. At most one. @throws std::logic_error for a second one.
  template <class F>
  std::size_t add_default(F&& fn) {
    if (default_ != kNone) throw std::logic_error("weft: Selector has a default case already");
    default_ = cases_.size();
    return add(std::make_unique<Timed<std::decay_t<F>>>(std::forward<F>(fn)));
  }

  /// Waits until exactly one case fires, runs its handler and returns its
  /// index. Returns select_all_closed (running nothing) when every channel
  /// case is disabled by closure and there is no deadline or default case.
  /// @throws std::logic_error for a Selector without cases;
  /// weft::Cancelled (no case fired); what the handler throws (after the
  /// case fired).
  std::size_t wait();

  /// The number of cases.
  std::size_t size() const noexcept { return cases_.size(); }
  /// Removes every case.
  void clear() noexcept {
    cases_.clear();
    default_ = kNone;
  }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  struct Case {
    virtual ~Case() = default;
    virtual bool is_op() const noexcept = 0;
    virtual void fill(detail::SelectOp& op) = 0;
    virtual void fire(const detail::SelectOp& op) = 0;
    Deadline deadline;  // timed cases only
  };
  template <class C>
  struct Op final : Case {
    explicit Op(C c) : c(std::move(c)) {}
    bool is_op() const noexcept override { return true; }
    void fill(detail::SelectOp& op) override { c.fill(op); }
    void fire(const detail::SelectOp& op) override { c.fire(op); }
    C c;
  };
  template <class F>
  struct Timed final : Case {
    explicit Timed(F f) : fn(std::move(f)) {}
    bool is_op() const noexcept override { return false; }
    void fill(detail::SelectOp&) override {}
    void fire(const detail::SelectOp&) override { fn(); }
    F fn;
  };
  std::size_t add(std::unique_ptr<Case> c) {
    cases_.push_back(std::move(c));
    return cases_.size() - 1;
  }

  std::vector<std::unique_ptr<Case>> cases_;
  std::size_t default_ = kNone;
};

}  // namespace weft
