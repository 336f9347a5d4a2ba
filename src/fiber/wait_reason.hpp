// What a parked fiber waits for: carried by the Waiter it parks on
// (sched/waiter.hpp; Fiber::parked_on points to it), printed by fiber dumps
// (src/obs/dump.cpp).
#pragma once

#include <cstdint>

namespace weft::detail {

/// What a parked fiber waits for (fiber dumps: src/obs/dump.cpp). Set by
/// the Waiter it parks on; the Waiter's arg() means what this says.
enum class WaitReason : std::uint8_t {
  other,      ///< a wait not described (arg 0)
  chan_send,  ///< arg: the channel core's address
  chan_recv,  ///< arg: the channel core's address
  select,     ///< arg: the number of cases
  mutex,      ///< arg: the Mutex's address
  condvar,    ///< arg: the CondVar's address
  rwlock,     ///< arg: the RwLock's address
  semaphore,  ///< arg: the Semaphore's address
  barrier,    ///< arg: the Barrier's address
  event,      ///< arg: the primitive's address (Event, Latch, WaitGroup, ...)
  join,       ///< arg: the id of the fiber joined
  blocking,   ///< a spawn_blocking task (arg 0)
  sleep,      ///< arg: the deadline, CLOCK_MONOTONIC ns, or -1 (forever)
  io_read,    ///< readiness or completion of a read-side operation; arg: the fd
  io_write,   ///< readiness or completion of a write-side operation; arg: the fd
  scope,      ///< a scope waiting for its children; arg: the scope's address
  parallel,   ///< a par_* call waiting for its leaves (arg 0)
  signal,     ///< weft::signal wait (arg 0)
};

/// The name a dump prints for `r`, e.g. "chan_recv".
const char* to_string(WaitReason r) noexcept;

}  // namespace weft::detail
