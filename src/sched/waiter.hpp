// The one park mechanism every blocking operation reduces to
// (docs/design/parking.md).
//
// A Waiter is an intrusive node that lives on the stack of the fiber (or
// plain thread) that waits. Whoever wants to wake it - a notifier, a timer, a
// canceller - calls wake(reason), which is a single CAS from kWaiting to the
// reason. Exactly one caller wins; only the winner unparks the fiber (or
// futex-wakes the thread). Losers touch nothing further.
//
// Lifetime rule. A waker may only touch a Waiter while something guarantees
// the waiting side has not returned:
//   * a primitive's wait queue: the waker holds the queue lock, and the
//     waiting side unlinks itself under that lock before returning;
//   * a timer: fired under the timer wheel's lock, and the waiting fiber
//     cancels its timer (Timer::cancel, same lock) before returning;
//   * cancellation: under Fiber::wait_lock; a fiber that clears
//     Fiber::current_waiter and sees a cancellation request takes that lock
//     before returning (fiber.hpp, base/asymmetric_barrier.hpp).
// A fiber's wait() returns only after consuming the winner's unpark, so the
// winner's unpark never reaches a fiber that has moved on.
//
// Claim, then complete. A waker that must hand something to the waiter (a
// channel value, a lock, a permit) may do so only if it wins, and must do it
// before the waiting side can run. So it claims first (kWaiting -> kClaimed,
// the single winning CAS), writes into the waiting side's node, and then
// complete()s (final state + unpark). Timers and cancellation lose against a
// claim exactly as against wake(). A select claims its own waiter to abort a
// blocking attempt when a case turns out ready while it registers.
#pragma once

#include <atomic>
#include <cstdint>

#include "fiber/wait_reason.hpp"

namespace weft::detail {

struct Fiber;
class FiberList;

class Waiter {
 public:
  enum Result : std::uint32_t {
    kWaiting = 0,
    kNotified = 1,
    kTimedOut = 2,
    kCancelled = 3,
    kClaimed = 4,  // transient: a claimer won and has not complete()d yet
  };

  /// Binds the waiter to the calling fiber, or to the calling thread outside
  /// a fiber. `reason` and `arg` say what a fiber parked on it waits for
  /// (fiber dumps: fiber/wait_reason.hpp).
  explicit Waiter(WaitReason reason = WaitReason::other, std::uint64_t arg = 0) noexcept;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  /// Tries to complete the wait with `reason` (kNotified, kTimedOut or
  /// kCancelled). Returns true if this call won; then it has unparked the
  /// waiting fiber or thread. See the lifetime rule above.
  bool wake(Result reason) noexcept;
  /// As wake(reason), for the driver's reactor and timer wheel: a fiber this
  /// makes runnable is prepended to `woken` (unpark(f, woken)) for the
  /// calling worker to queue, instead of going to a run queue here.
  bool wake(Result reason, FiberList& woken) noexcept;

  /// Wins the waiter without finishing it yet (kWaiting -> kClaimed). True if
  /// this call won; the caller must then call complete() promptly, and until
  /// it does the waiting side cannot return. Used by wakers that hand over a
  /// value, and by the waiting fiber itself to abort before wait().
  bool claim() noexcept;

  /// Finishes a claim() with `reason` and unparks the waiting fiber or
  /// thread. The waiter may be gone as soon as this returns.
  void complete(Result reason) noexcept;
  /// As complete(reason), leaving a fiber it makes runnable in `woken`
  /// (see wake(reason, woken)).
  void complete(Result reason, FiberList& woken) noexcept;

  /// Waits until woken or until deadline_ns (CLOCK_MONOTONIC ns; < 0: none)
  /// passes, and returns how the wait ended. A fiber is parked (its worker
  /// runs other fibers); a thread sleeps on a futex. A fiber whose
  /// cancellation was requested before or during the wait gets kCancelled
  /// unless a notification won first. With cancellable=false cancellation
  /// is ignored (for waits that must finish, such as a condition variable
  /// relocking its mutex before Cancelled propagates). Never throws.
  Result wait(std::int64_t deadline_ns, bool cancellable = true) noexcept;

  Result result() const noexcept {
    return static_cast<Result>(state_.load(std::memory_order_acquire));
  }
  Fiber* fiber() const noexcept { return fiber_; }
  /// What a fiber parked on it waits for, and the WaitReason's argument.
  WaitReason reason() const noexcept { return reason_; }
  std::uint64_t arg() const noexcept { return arg_; }
  /// When its fiber parked (fiber.hpp, park_stamp_of; to within the
  /// runtime monitor's period); unset before. Read by fiber dumps while they
  /// have the fiber pinned.
  std::uint32_t parked_since() const noexcept { return since_; }

  // Intrusive links for the wait queue that holds this waiter (guarded by
  // that queue's lock).
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;

 private:
  Result wait_fiber(std::int64_t deadline_ns, bool cancellable) noexcept;
  /// Records the trace's park event for `self` (tracing on only).
  void trace_park(const Fiber* self) const noexcept;
  /// The winner's unpark: of fiber_ (into *woken if given), or of the
  /// thread. `f` was read before the winning write (the node may be gone).
  void unpark_waiter(Fiber* f, FiberList* woken) noexcept;
  Result wait_thread(std::int64_t deadline_ns) noexcept;

  Fiber* const fiber_;
  const std::uint64_t arg_;
  std::uint32_t since_;  // written by its fiber before it parks (only then read)
  const WaitReason reason_;
  // kWaiting until the single winning wake(). Release on the CAS publishes
  // whatever the waker wrote for the waiter (e.g. a handed-off value) to the
  // acquire in result().
  std::atomic<std::uint32_t> state_{kWaiting};
};

/// CLOCK_MONOTONIC now, in ns (the clock of every deadline_ns).
std::int64_t monotonic_ns() noexcept;

/// Which default timeout of the runtime a wait falls under
/// (Config::default_operation_timeout, network_timeout, io_timeout).
enum class TimeoutKind : std::uint8_t { operation, network, io };

/// A wait's deadline once the runtime's default timeout is applied.
struct EffectiveDeadline {
  std::int64_t ns;    ///< the deadline to wait with (< 0: none)
  bool from_default;  ///< ns is the default timeout's: its expiry throws TimedOut
};

/// `deadline_ns`, unless it is kNoDeadline (the caller gave none;
/// kNeverDeadline is an explicit none and stays) and the calling thread
/// belongs to a runtime (a worker or a blocking-pool thread) with a default
/// timeout of `kind`: then now + that timeout, from_default set. Reads the
/// clock only then. Call it once per operation, when it is about to wait,
/// so that the timeout runs from the start of the wait.
EffectiveDeadline effective_deadline(std::int64_t deadline_ns, TimeoutKind kind) noexcept;

}  // namespace weft::detail
