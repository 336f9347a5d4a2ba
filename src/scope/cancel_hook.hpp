// How weft::par_* (src/scope/parallel.cpp) learns that its caller has been
// cancelled: the ONE place that reads a fiber's cancellation state for the
// scope layer. When the public cancellation API (this_fiber::is_cancelled,
// JoinHandle::cancel) lands, re-point these two functions at it; nothing else
// in src/scope reads Fiber::cancel_requested.
#pragma once

namespace weft::detail {

/// Opaque handle on the calling fiber's cancellation state, for other fibers
/// to poll while the caller is alive (it is: par_* joins every helper before
/// it returns); nullptr outside a fiber (plain and blocking-pool threads
/// cannot be cancelled).
const void* cancel_source() noexcept;

/// True once cancellation has been requested for the fiber behind `src`
/// (from any thread, while that fiber is alive); false for nullptr. One
/// acquire load, no locked instruction.
bool cancel_pending(const void* src) noexcept;

}  // namespace weft::detail
