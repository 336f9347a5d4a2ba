#include "sched/worker.hpp"

#include <chrono>
#include <new>
#include <utility>

#include "base/assert.hpp"
#include "fiber/fls.hpp"
#include "fiber/overflow.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/waiter.hpp"
#include "weft/detail/task.hpp"
#include "weft/errors.hpp"

namespace weft::detail {
namespace {

// Per-thread runtime state. Reached only through the out-of-line accessors
// below (TLS hazard: a fiber may resume on another thread, and a compiler
// may keep a TLS address in a register across a call that switches).
// initial-exec: a direct %fs-relative access even in libweft.so.
thread_local Worker* tls_worker [[gnu::tls_model("initial-exec")]] = nullptr;
thread_local RuntimeImpl* tls_runtime [[gnu::tls_model("initial-exec")]] = nullptr;

// Global fiber id source; workers take blocks of ids to keep this line cold.
// relaxed: ids only need to be unique, they order nothing.
std::atomic<FiberId> g_next_fiber_id{1};
constexpr FiberId kIdBlock = 1024;

constexpr int level_of(Priority p) noexcept {
  return static_cast<int>(p);
}

// A fiber leaves the cancellation tree before its joiner (or its scope) can
// see it finished: its node unbinds and hands the children still running
// (detached fibers it spawned) to its parent scope.
void leave_cancel_tree(Fiber* f) noexcept {
  f->task->cancel_node().detach();
}

// Cancellers that collected the fiber keep it pinned until their wake-up
// is done (cancel_node.cpp): its control block must outlive that.
void wait_cancel_pins(Fiber* f) noexcept {
  while (f->cancel_pins.load(std::memory_order_acquire) != 0) cpu_relax();
}

// weft_fiber_cancelled_total: a fiber whose function ended with
// weft::Cancelled. Only fibers that ended with an exception pay for the
// rethrow.
void count_cancelled(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    obs::add(obs::Counter::fiber_cancelled);
  } catch (...) {
  }
}

// First code of every fiber (Context entry).
void fiber_entry(void* arg) noexcept {
  Context::on_first_entry();
  current_worker()->after_switch();
  auto* f = static_cast<Fiber*>(arg);
  f->task->run();
  if (f->task->error()) count_cancelled(f->task->error());
  // FLS hook: destroy the fiber's values on the fiber, before join() can return.
  fls_end(f->locals, f->task);
  leave_cancel_tree(f);
  // Before the joiner can wake: a fiber that joined this one and spawns at
  // once must find the slot free (max_fibers, max_stack_memory).
  f->runtime->retire_fiber(f->stack_size, current_worker());
  f->task->complete();  // may wake the joiner into this worker's LIFO slot
  current_worker()->exit_current();
}
constexpr int kNormal = level_of(Priority::normal);

}  // namespace

[[gnu::noinline]] Worker* current_worker() noexcept {
  asm volatile("" ::: "memory");
  return tls_worker;
}

[[gnu::noinline]] RuntimeImpl* current_runtime() noexcept {
  asm volatile("" ::: "memory");
  return tls_runtime;
}

[[gnu::noinline]] void set_current_runtime(RuntimeImpl* rt) noexcept {
  tls_runtime = rt;
}

Fiber* current_fiber() noexcept {
  Worker* w = current_worker();
  return w != nullptr ? w->current() : nullptr;
}

Reactor* current_reactor() noexcept {
  Worker* w = current_worker();
  return w != nullptr ? &w->driver().reactor() : nullptr;
}

TimerWheel* current_timers() noexcept {
  Worker* w = current_worker();
  return w != nullptr ? &w->driver().timers() : nullptr;
}

bool local_run_queue_empty() noexcept {
  Worker* w = current_worker();
  return w == nullptr || w->deques_empty();
}

FiberId allocate_fiber_id_global() noexcept {
  return g_next_fiber_id.fetch_add(1, std::memory_order_relaxed);
}

Worker::Worker(RuntimeImpl* rt, int index, std::unique_ptr<Reactor> reactor)
    : rt_(rt),
      index_(index),
      pinned_fibers_(rt->thread_per_core()),
      starve_ms_(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(rt->config().preemption_interval)
              .count())),
      driver_(rt->epoch_ns(), std::move(reactor)),
      rng_(0x9E3779B9u * static_cast<std::uint32_t>(index + 1)) {}

Worker::~Worker() = default;

FiberId Worker::next_fiber_id() noexcept {
  if (id_next_ == id_limit_) {
    id_next_ = g_next_fiber_id.fetch_add(kIdBlock, std::memory_order_relaxed);
    id_limit_ = id_next_ + kIdBlock;
  }
  return id_next_++;
}

std::uint32_t Worker::next_random() noexcept {
  // xorshift32: victim selection only needs to be cheap and spread out.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

std::size_t Worker::queued() const noexcept {
  std::size_t n = 0;
  for (const auto& q : queues_) n += q.stealer().size();
  return n;
}

bool Worker::deques_empty() const noexcept {
  // A clear bit in nonempty_ means the level is empty (only the owner
  // pushes, and it sets the bit first; see pop_local), so only levels with a
  // set bit need their (relaxed, possibly stale) size read.
  for (std::uint32_t mask = nonempty_; mask != 0; mask &= mask - 1) {
    if (!queues_[__builtin_ctz(mask)].stealer().empty()) return false;
  }
  return true;
}

std::uint64_t Worker::busy_ns(std::int64_t now_ns) const noexcept {
  const std::int64_t start = start_ns_.load(std::memory_order_relaxed);
  if (start == 0) return 0;
  const std::int64_t stop = stop_ns_.load(std::memory_order_relaxed);
  const std::int64_t end = stop != 0 ? stop : now_ns;
  // Seqlock read (the owner's writes are in note_idle): idle_ns_ and
  // sleep_since_ns_ from one moment, so a park that ends meanwhile is
  // counted once. acquire on the first load pairs with the owner's release
  // store of the even value; the data loads are acquire so that the
  // re-check cannot move before them (no fence: TSan does not model them),
  // and a value from a newer write carries the odd store with it.
  std::uint64_t idle = 0;
  std::int64_t since = 0;
  for (;;) {
    const std::uint32_t s1 = idle_seq_.load(std::memory_order_acquire);
    idle = idle_ns_.load(std::memory_order_acquire);
    since = sleep_since_ns_.load(std::memory_order_acquire);
    if ((s1 & 1) == 0 && idle_seq_.load(std::memory_order_relaxed) == s1) break;
    cpu_relax();
  }
  if (since != 0 && stop == 0 && end > since) idle += static_cast<std::uint64_t>(end - since);
  const std::int64_t span = end - start;
  return span > 0 && static_cast<std::uint64_t>(span) > idle
             ? static_cast<std::uint64_t>(span) - idle
             : 0;
}

void Worker::note_idle(std::int64_t since_ns, std::uint64_t add_ns) noexcept {
  // Seqlock write (owner only): odd while the two words change. The data
  // stores are release so that the odd value cannot move after them; the
  // release store of the even value publishes them (pairs with busy_ns()'s
  // acquire load).
  const std::uint32_t s = idle_seq_.load(std::memory_order_relaxed);
  idle_seq_.store(s + 1, std::memory_order_relaxed);
  sleep_since_ns_.store(since_ns, std::memory_order_release);
  idle_ns_.store(idle_ns_.load(std::memory_order_relaxed) + add_ns, std::memory_order_release);
  idle_seq_.store(s + 2, std::memory_order_release);
}

// The sampled scheduler histograms (obs/metrics.hpp). The hot paths only
// test a flag or count down a worker field (a few instructions per switch:
// measured with callgrind, see docs/benchmarks.md); the work is in these
// out-of-line functions, run once per sample period.

[[gnu::noinline, gnu::cold]] void Worker::begin_sample() noexcept {
  sample_left_ = obs::Shard::sample_period();
  slice_start_ns_ = monotonic_ns();  // this slice is timed (ended in switch_away)
  stamp_next_ = true;                // and the next fiber queued here is stamped
}

[[gnu::noinline, gnu::cold]] void Worker::stamp_runnable_now(Fiber* f) noexcept {
  // The fiber's first queuing since it last ran (a fiber re-queued on
  // overflow, or stolen, keeps its stamp). With a period of 1 every
  // queuing is stamped.
  stamp_next_ = obs::Shard::sample_period() == 1;
  if (f->runnable_stamp == 0) f->runnable_stamp = latency_stamp(monotonic_ns());
}

[[gnu::noinline, gnu::cold]] void Worker::observe_latency(Fiber* f) noexcept {
  const std::uint32_t units = latency_stamp(monotonic_ns()) - f->runnable_stamp;
  metrics_->observe(obs::Hist::sched_latency, std::uint64_t{units} << 10);
  f->runnable_stamp = 0;
}

void Worker::wake() noexcept {
  // release: pairs with the acquire load in sleep(), so the waker's queued
  // work is visible once the sleeper sees the flag.
  wake_requested_.store(true, std::memory_order_release);
  driver_.unpark();
}

void Worker::post(Fiber* f) noexcept {
  inbox_.push(f);  // seq_cst: first half of the Dekker pair (inbox.hpp)
  // seq_cst load: second half (pairs with sleep()'s seq_cst store of true
  // followed by its seq_cst re-check of the inbox). Either we see the owner
  // asleep here, or its re-check sees our push. The exchange lets one
  // producer of a burst pay for the wake-up; the owner stores false once
  // awake, so a later push finds it awake and drained later (the owner
  // re-checks its inbox before every sleep).
  if (sleeping_.load(std::memory_order_seq_cst) &&
      sleeping_.exchange(false, std::memory_order_seq_cst)) {
    wake();
  }
}

void Worker::pull_inbox() noexcept {
  FiberList taken;
  inbox_.take_all(taken);
  while (Fiber* f = taken.pop_front()) push_deque(f);
}

// ---------------------------------------------------------------------------
// Picking the next fiber (owner only).

Fiber* Worker::pop_local() noexcept {
  // nonempty_ has a bit per level that may hold fibers: set by the owner's
  // pushes (the only way in), cleared by the owner when it finds the level
  // empty. Thieves may empty a level behind its back; that only costs a
  // failed pop. So no runnable fiber is ever hidden by a clear bit.
  for (int level = kLevels - 1; level >= 0; --level) {
    if (level == kNormal && lifo_ != nullptr) return std::exchange(lifo_, nullptr);
    if ((nonempty_ & (1u << level)) == 0) continue;
    if (Fiber* f = own(level).pop()) return f;
    if (Fiber* f = take_yielded(level)) return f;
    if (own(level).empty()) nonempty_ &= ~(1u << level);
  }
  return nullptr;
}

Fiber* Worker::take_yielded(int level) noexcept {
  Fiber* f = yielded_[level].pop_front();
  if (f == nullptr) return nullptr;
  yielded_len_.store(yielded_len_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  return f;
}

void Worker::spill_yielded() noexcept {
  bool any = false;
  for (int level = 0; level < kLevels; ++level) {
    while (Fiber* f = take_yielded(level)) {
      push_deque(f);
      any = true;
    }
  }
  if (any) rt_->notify_work();
}

Fiber* Worker::take_oldest(int min_level) noexcept {
  if (lifo_ != nullptr) nonempty_ |= 1u << kNormal;  // the slot counts as level normal
  // Visit only the levels whose bit is set, highest first.
  for (std::uint32_t mask = nonempty_ & ~((1u << min_level) - 1); mask != 0;) {
    const int level = 31 - __builtin_clz(mask);
    mask &= ~(1u << level);
    if (level == kNormal && lifo_ != nullptr) return std::exchange(lifo_, nullptr);
    if (Fiber* f = own(level).pop_oldest()) return f;
    if (Fiber* f = take_yielded(level)) return f;
    if (own(level).empty()) nonempty_ &= ~(1u << level);
  }
  return nullptr;
}

Fiber* Worker::pick_local() noexcept {
  if (fairness_tick()) {
    maintenance();
    if (Fiber* f = take_starved()) return f;
  }
  return pop_local();
}

Fiber* Worker::take_starved() noexcept {
  // Fairness against LIFO popping: the oldest fiber of a level is taken
  // ahead of newer ones only once it has waited longer than the preemption
  // interval. Taking it unconditionally every 61 picks (Go's cadence, but Go
  // pops FIFO) started a fresh subtree of a fork-join program each time:
  // skynet's live set then overflowed the deques (~5k mmap/munmap per run,
  // 2-3x the time). Waiting fibers are bounded by ~preemption_interval plus
  // one fairness period.
  const std::uint32_t now = coarse_ms_;
  for (std::uint32_t mask = nonempty_; mask != 0;) {
    const int level = 31 - __builtin_clz(mask);
    mask &= ~(1u << level);
    std::uint32_t stamp = 0;
    if (own(level).oldest_stamp(stamp) && now - stamp >= starve_ms_) {
      if (Fiber* f = own(level).pop_oldest()) return f;
    }
    Fiber* y = yielded_[level].front();
    if (y != nullptr && now - y->queued_ms >= starve_ms_) return take_yielded(level);
  }
  return nullptr;
}

void Worker::maintenance() noexcept {
  coarse_ms_ = static_cast<std::uint32_t>(rt_->now_tick());
  in_maintenance_ = true;
  poll_driver();
  if (pinned_fibers_) {
    pull_inbox();
  } else {
    pull_injector();
    if (rt_->idle_workers() != 0 && yielded_len_.load(std::memory_order_relaxed) != 0) {
      spill_yielded();
    }
  }
  in_maintenance_ = false;
}

void Worker::poll_driver() noexcept {
  FiberList woken;
  driver_.park(0, woken);
  schedule_woken(woken);
}

void Worker::schedule_woken(FiberList& woken) noexcept {
  if (woken.empty()) return;
  if (pinned_fibers_) {
    schedule_woken_pinned(woken);
    return;
  }
  // Wake a worker only for surplus work (Go's findrunnable keeps one netpoll
  // result and injects the rest): one fiber woken while this worker has
  // nothing else to run is run here next, and the wake-up would be wasted -
  // an eventfd write to another worker, which then competes for it. Only
  // whom to wake changes: the fibers are queued all the same. A stale bit in
  // nonempty_ errs towards waking; so does a poll made while a fiber is
  // current (yield_current's maintenance). sleep() queues its list after
  // leaving the idle list, so the wake cannot pick this worker itself.
  const bool had_work = current_ != nullptr || lifo_ != nullptr || nonempty_ != 0;
  const bool single = woken.single();
  // Newest wake first (driver.hpp): pushing front to back leaves the
  // earliest on top of the LIFO-popped deque, so timers run in deadline
  // order and completions in completion order.
  while (Fiber* f = woken.pop_front()) push_deque(f);
  if (had_work || !single) rt_->notify_work();
}

void Worker::schedule_woken_pinned(FiberList& woken) noexcept {
  // This driver's reactor and wheel serve this worker's fibers only (they
  // are armed by the fibers running here, which never leave), but a timer
  // callback may wake any fiber; one of another worker goes home. Same
  // order as schedule_woken; no notify_work (nobody else may run them).
  while (Fiber* f = woken.pop_front()) {
    if (owns(f)) {
      push_deque(f);
    } else {
      rt_->worker(f->home).post(f);
    }
  }
}

void Worker::pull_injector() noexcept {
  if (rt_->injector_size() == 0) return;
  // Take a fair share, leaving room in the deques.
  const std::size_t share = rt_->injector_size() / rt_->worker_count() + 1;
  Fiber* head = nullptr;
  const std::size_t n = rt_->take_injected(&head, share < 32 ? share : 32);
  for (std::size_t i = 0; i < n && head != nullptr; ++i) {
    Fiber* f = head;
    head = f->next;
    f->next = nullptr;
    push_deque(f);
  }
  if (n > 1) rt_->notify_work();
}

void Worker::push_deque(Fiber* f) noexcept {
  stamp_runnable(f);
  const int level = level_of(f->priority);
  Deque::Owner q = own(level);
  nonempty_ |= 1u << level;
  if (q.push(f, coarse_ms_)) return;
  push_overflow(f);
}

void Worker::push_overflow(Fiber* f) noexcept {
  const int level = level_of(f->priority);
  if (pinned_fibers_) {
    // No other worker may run f: it waits in the level's owner-only FIFO,
    // taken when the level's deque is empty (pop_local) or when it has
    // waited a preemption interval (take_starved). Never spilled back
    // (spill_yielded is work stealing's).
    f->queued_ms = coarse_ms_;
    yielded_[level].push_back(f);
    yielded_len_.store(yielded_len_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  // Overflow: move the older half plus f to the injector in one batch
  // (Tokio's push_overflow), so the next pushes are cheap again.
  Deque::Owner q = own(level);
  Fiber* head = f;
  Fiber* tail = f;
  f->next = nullptr;
  std::size_t n = 1;
  for (std::size_t i = 0; i < Deque::kCapacity / 2; ++i) {
    Fiber* g = q.pop_oldest();
    if (g == nullptr) break;
    g->next = nullptr;
    tail->next = g;
    tail = g;
    ++n;
  }
  rt_->inject_batch(head, tail, n);
}

void Worker::schedule_local(Fiber* f, bool lifo) noexcept {
  if (lifo && f->priority == Priority::normal) {
    stamp_runnable(f);
    f = std::exchange(lifo_, f);
    if (f == nullptr) return;  // the slot is not stealable: nobody to notify
  }
  push_deque(f);
  rt_->notify_work();
}

// ---------------------------------------------------------------------------
// Switching.

// Always inlined into its two callers (switch_away, resume): outlined, its
// call costs more than its body on the yield path (callgrind).
[[gnu::always_inline]] inline void Worker::begin_run(Fiber* f) noexcept {
  f->transition(FiberState::runnable, FiberState::running);
  // relaxed: the fiber's queue hand-off (release push / acquire pop) already
  // ordered everything before; only this thread reads it until it parks.
  f->park.store(kRunning, std::memory_order_relaxed);
  current_ = f;
  running.store(f, std::memory_order_relaxed);
  switch_count.store(switch_count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  preempt_.store(false, std::memory_order_relaxed);
  // Sampled histograms: a stamped fiber's wait in the run queue, and every
  // sample_period()-th slice.
  if (__builtin_expect(f->runnable_stamp != 0, 0)) observe_latency(f);
  if (__builtin_expect(--sample_left_ == 0, 0)) begin_sample();
}

[[gnu::noinline, gnu::cold]] void Worker::trace_switch(const Fiber* next) noexcept {
  if (const Fiber* self = pending_fiber_) {
    const char* why = pending_action_ == PostAction::commit_park ? "park"
                      : pending_action_ == PostAction::recycle   ? "exit"
                                                                 : "yield";
    obs::trace::record(obs::trace::Kind::slice_end, self->id, 0, 0, why);
  }
  if (next != nullptr) {
    obs::trace::record(obs::trace::Kind::slice_begin, next->id, 0, 0, nullptr, next->name);
  }
}

void Worker::account_stack_cache(std::size_t before) noexcept {
  const std::size_t after = stacks_.resident_bytes();
  if (after > before) {
    rt_->memory().charge(&memory_credit, static_cast<std::int64_t>(after - before));
  } else if (after < before) {
    rt_->memory().release(&memory_credit, static_cast<std::int64_t>(before - after));
  }
}

void Worker::trim_stack_cache() noexcept {
  const std::size_t cached = stacks_.resident_bytes();
  const std::uint64_t requests = rt_->trim_requests();
  if (requests != trims_seen_) {
    trims_seen_ = requests;
    stacks_.trim(0);
  } else {
    stacks_.trim();
  }
  account_stack_cache(cached);
}

[[gnu::noinline, gnu::cold]] void Worker::end_slice() noexcept {
  metrics_->observe(obs::Hist::run_slice,
                    static_cast<std::uint64_t>(monotonic_ns() - slice_start_ns_));
  slice_start_ns_ = 0;
}

bool Worker::ensure_stack(Fiber* f) noexcept {
  if (f->stack) return true;
  const std::size_t cached = stacks_.resident_bytes();
  Stack s = stacks_.take(f->stack_size);
  account_stack_cache(cached);
  if (!s) {
    try {
      s = rt_->stack_allocator().allocate(f->stack_size);
    } catch (...) {
      // The fiber cannot start: end it with the error, as if its function
      // had thrown it.
      f->transition(FiberState::runnable, FiberState::finished);
      TaskBase* task = f->task;
      task->error() = std::current_exception();
      leave_cancel_tree(f);
      rt_->retire_fiber(f->stack_size, this);
      task->complete();
      rt_->unregister_fiber(f);
      wait_cancel_pins(f);
      task->locals() = std::exchange(f->locals, nullptr);  // FLS hook: freed with the task
      f->~Fiber();
      task->drop_runner();
      bump(completed_);
      return false;
    }
  }
  f->stack = s;
  f->ctx.make(s.lo, s.usable_size(), &fiber_entry, f);
  if (metrics_->sample(obs::Hist::fiber_execution)) f->started_ns = monotonic_ns();
  return true;
}

Fiber* Worker::startable(Fiber* f) noexcept {
  while (f != nullptr && !f->stack && !ensure_stack(f)) f = pop_local();
  return f;
}

void Worker::switch_away(Fiber* self, Fiber* next, PostAction action) noexcept {
  if (__builtin_expect(slice_start_ns_ != 0, 0)) end_slice();
  if (next != nullptr && !next->stack) next = startable(next);
  pending_action_ = action;
  pending_fiber_ = self;
  // One branch per switch for both of the trace's slice events; they read
  // self and action back from the fields just written (fewer live values
  // here: callgrind counted 2-3 more instructions per switch otherwise).
  if (obs::trace::on()) trace_switch(next);
  Context* to = &sched_ctx_;
  if (next != nullptr) {
    begin_run(next);
    to = &next->ctx;
  } else {
    current_ = nullptr;
    running.store(nullptr, std::memory_order_relaxed);
  }
  if (action == PostAction::recycle) self->ctx.switch_to_final(*to);
  self->ctx.switch_to(*to);
  // Resumed, possibly on another worker: `this` is stale from here on.
  current_worker()->after_switch();
}

void Worker::after_switch() noexcept {
  const PostAction action = pending_action_;
  Fiber* f = pending_fiber_;
  pending_action_ = PostAction::none;
  pending_fiber_ = nullptr;
  switch (action) {
    case PostAction::none:
      break;
    case PostAction::commit_park:
      commit_park(f);
      break;
    case PostAction::recycle:
      recycle(f);
      break;
  }
}

void Worker::commit_park(Fiber* f) noexcept {
  // state first: once the CAS publishes kParked an unparker owns the fiber.
  f->transition(FiberState::running, FiberState::parked);
  std::uint8_t expected = kParking;
  // acq_rel: release publishes the saved context and state to the unparker's
  // acquire in unpark(); acquire on failure pairs with the unparker's CAS to
  // kNotified.
  if (f->park.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
    bump(parks_);
    return;
  }
  WEFT_DEBUG_ASSERT(expected == kNotified, "park commit found an impossible state");
  // Woken while switching out: nobody queued it, so we do.
  f->transition(FiberState::parked, FiberState::runnable);
  f->park.store(kRunnable, std::memory_order_relaxed);
  bump(parks_);
  schedule_local(f, false);
}

void Worker::recycle(Fiber* f) noexcept {
  f->ctx.release();
  rt_->unregister_fiber(f);
  const std::size_t cached = stacks_.resident_bytes();
  stacks_.give(f->stack, rt_->config().stack_size, rt_->stack_allocator());
  account_stack_cache(cached);
  TaskBase* task = f->task;
  wait_cancel_pins(f);
  f->~Fiber();
  task->drop_runner();  // may free the fiber's storage: last use of f above
  bump(completed_);
}

void Worker::resume(Fiber* f) noexcept {
  f = startable(f);
  if (f == nullptr) return;
  woke_idle_ = false;
  pending_action_ = PostAction::none;
  pending_fiber_ = nullptr;
  if (obs::trace::on()) trace_switch(f);
  begin_run(f);
  sched_ctx_.switch_to(f->ctx);
  // The scheduler context never migrates: this is still our thread.
  after_switch();
}

void Worker::yield_current() noexcept {
  Fiber* self = current_;
  if (fairness_tick()) maintenance();
  // Idle workers cannot steal from the yielded lists: hand them over
  // (under thread_per_core nobody may take them).
  if (rt_->idle_workers() != 0 && yielded_len_.load(std::memory_order_relaxed) != 0 &&
      !pinned_fibers_) {
    spill_yielded();
  }
  Fiber* next = take_oldest(level_of(self->priority));
  if (next == nullptr) {
    preempt_.store(false, std::memory_order_relaxed);
    return;
  }
  // The yielder joins the back of its level's yielded list *before* the
  // switch: that list is owner-only, and only this worker's thread can move
  // it where others see it (spill_yielded), which cannot happen before our
  // registers are saved. So no post-switch action is needed.
  self->transition(FiberState::running, FiberState::runnable);
  const int level = level_of(self->priority);
  self->queued_ms = coarse_ms_;
  stamp_runnable(self);
  yielded_[level].push_back(self);
  nonempty_ |= 1u << level;
  yielded_len_.store(yielded_len_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  switch_away(self, next, PostAction::none);
}

void Worker::park_current() noexcept {
  Fiber* self = current_;
  std::uint8_t expected = kRunning;
  // acq_rel: on failure we read kNotified, written by the unparker's CAS; the
  // acquire makes its effects (e.g. the waiter's result) visible.
  if (!self->park.compare_exchange_strong(expected, kParking, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    WEFT_DEBUG_ASSERT(expected == kNotified, "park from an impossible state");
    self->park.store(kRunning, std::memory_order_relaxed);
    return;
  }
  switch_away(self, pick_local(), PostAction::commit_park);
}

void Worker::exit_current() noexcept {
  Fiber* self = current_;
  if (self->started_ns != 0) {
    metrics_->observe(obs::Hist::fiber_execution,
                      static_cast<std::uint64_t>(monotonic_ns() - self->started_ns));
  }
  self->transition(FiberState::running, FiberState::finished);
  switch_away(self, pick_local(), PostAction::recycle);
  __builtin_unreachable();
}

// ---------------------------------------------------------------------------
// Waking.

namespace {

// The park-state half of an unpark: true if the caller now holds f as a
// runnable fiber and must queue it; false if f had not switched out yet
// and the notification left here will make it run again by itself.
bool make_runnable(Fiber* f) noexcept {
  // acquire: pairs with the release of commit_park's CAS (the fiber's saved
  // context must be visible before anyone resumes it).
  std::uint8_t s = f->park.load(std::memory_order_acquire);
  for (;;) {
    switch (s) {
      case kRunning:
      case kParking:
        // Not switched out yet: leave a notification for park_current() or
        // commit_park() to act on.
        if (f->park.compare_exchange_weak(s, kNotified, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
          return false;
        }
        break;
      case kParked:
        if (f->park.compare_exchange_weak(s, kRunnable, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
          f->transition(FiberState::parked, FiberState::runnable);
          return true;
        }
        break;
      case kDumping:
        // Pinned by a dump: unpin_parked() queues it.
        if (f->park.compare_exchange_weak(s, kDumpWoken, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
          return false;
        }
        break;
      default:
        // kNotified / kRunnable / kDumpWoken: a second unpark for one park
        // breaks the single-winner rule of Waiter.
        fatal("weft: fiber unparked twice for one park");
    }
  }
}

// The queueing half of an unpark: f is runnable and ours to queue.
// `by_fiber_code`: the running fiber's own code woke it (it may take the
// LIFO slot: message-passing locality); false for a dump's unpin, whose
// caller may keep its worker busy for long.
void queue_unparked(Fiber* f, bool by_fiber_code) noexcept {
  Worker* w = current_worker();
  if (w != nullptr && w->runtime() == f->runtime) {
    if (w->owns(f)) {
      w->schedule_local(f, by_fiber_code && w->in_fiber_code());
    } else {
      // thread_per_core, another worker's fiber. The workers outlive
      // every fiber (~RuntimeImpl), so no external-wake bracket.
      w->runtime()->worker(f->home).post(f);
    }
    return;
  }
  RuntimeImpl* rt = f->runtime;  // f may end once queued
  rt->begin_external_wake();
  if (rt->thread_per_core()) {
    rt->worker(f->home).post(f);
  } else {
    rt->inject(f);
  }
  rt->end_external_wake();
}

}  // namespace

// The unpark event: `waker` is the fiber whose code woke f (0 when none:
// a plain thread, a timer, a completion). Recorded before f is queued, so
// it precedes f's next run slice (the trace's flow arrow needs that order).
namespace {
[[gnu::noinline, gnu::cold]] void trace_unpark(const Fiber* f, const Fiber* waker) noexcept {
  obs::trace::record(obs::trace::Kind::unpark, waker != nullptr ? waker->id : 0, f->id);
}
}  // namespace

void unpark(Fiber* f) noexcept {
  if (make_runnable(f)) {
    if (obs::trace::on()) trace_unpark(f, current_fiber());
    queue_unparked(f, true);
  }
}

bool pin_parked(Fiber* f) noexcept {
  std::uint8_t expected = kParked;
  // acquire: pairs with the release of commit_park's CAS, so the saved
  // context and the stack below it are visible to the dump.
  return f->park.compare_exchange_strong(expected, kDumping, std::memory_order_acquire,
                                         std::memory_order_relaxed);
}

void unpin_parked(Fiber* f) noexcept {
  std::uint8_t expected = kDumping;
  // release: the dump's reads of the stack happen before the fiber runs
  // again (the next unparker's acquire in make_runnable). acquire on
  // failure: pairs with the unparker's CAS to kDumpWoken (its wake's
  // effects, e.g. the waiter's result, before we queue the fiber).
  if (f->park.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
    return;
  }
  WEFT_DEBUG_ASSERT(expected == kDumpWoken, "dump unpin found an impossible state");
  f->transition(FiberState::parked, FiberState::runnable);
  f->park.store(kRunnable, std::memory_order_relaxed);
  queue_unparked(f, false);
}

void unpark(Fiber* f, FiberList& woken) noexcept {
  if (make_runnable(f)) {
    if (obs::trace::on()) trace_unpark(f, nullptr);
    woken.push_front(f);
  }
}

// ---------------------------------------------------------------------------
// Stealing, searching, sleeping.

Fiber* Worker::steal_half_into(Worker& thief) noexcept {
  for (int level = kLevels - 1; level >= 0; --level) {
    Deque::Stealer q = queues_[static_cast<std::size_t>(level)].stealer();
    const std::size_t size = q.size();
    if (size == 0) continue;
    Fiber* first = q.steal();
    if (first == nullptr) continue;
    std::size_t taken = 1;
    const std::size_t want = (size + 1) / 2;
    while (taken < want) {
      Fiber* f = q.steal();
      if (f == nullptr) break;
      thief.push_deque(f);
      ++taken;
    }
    thief.steals_.store(thief.steals_.load(std::memory_order_relaxed) + taken,
                        std::memory_order_relaxed);
    if (obs::trace::on()) {
      obs::trace::record(obs::trace::Kind::steal, first->id, static_cast<std::uint64_t>(index_),
                         taken);
    }
    return first;
  }
  return nullptr;
}

Fiber* Worker::steal_from_others() noexcept {
  const std::size_t n = rt_->worker_count();
  if (n < 2) return nullptr;
  const std::size_t start = next_random() % n;
  for (std::size_t i = 0; i < n; ++i) {
    Worker& victim = rt_->worker((start + i) % n);
    if (&victim == this) continue;
    bump(steal_attempts_);
    if (Fiber* f = victim.steal_half_into(*this)) {
      bump(steal_successes_);
      return f;
    }
  }
  return nullptr;
}

bool Worker::help_timers() noexcept {
  // Fire overdue timers of workers that are busy running a long fiber; the
  // fibers they wake run here.
  const std::uint64_t now = rt_->now_tick();
  bool fired = false;
  FiberList woken;
  for (std::size_t i = 0; i < rt_->worker_count(); ++i) {
    TimerWheel& wheel = rt_->worker(i).driver_.timers();
    if (&wheel == &driver_.timers() || wheel.next_expiry_hint() > now) continue;
    fired |= wheel.try_advance(now, woken);
  }
  schedule_woken(woken);
  return fired;
}

Fiber* Worker::find_work() noexcept {
  const std::int64_t spin_ns = rt_->spin_before_park_ns();
  const std::int64_t give_up = monotonic_ns() + spin_ns;
  // thread_per_core: only this worker's driver and inbox can hold work for
  // it; it never counts as searching (notify_work wakes nobody there).
  bool searching = !pinned_fibers_ && rt_->try_begin_search();
  for (;;) {
    coarse_ms_ = static_cast<std::uint32_t>(rt_->now_tick());
    poll_driver();
    if (pinned_fibers_) {
      pull_inbox();
    } else {
      pull_injector();
    }
    Fiber* f = pop_local();
    if (f == nullptr && searching) f = steal_from_others();
    if (f == nullptr && !pinned_fibers_ && help_timers()) f = pop_local();
    if (f != nullptr) {
      // Go's rule: the last searcher to find work wakes another worker to
      // keep looking, so that parallelism ramps up.
      if (searching && rt_->end_search()) rt_->notify_work();
      return f;
    }
    if (rt_->exiting() || monotonic_ns() >= give_up) break;
    for (int i = 0; i < 32; ++i) cpu_relax();
    if (!searching && !pinned_fibers_) searching = rt_->try_begin_search();
  }
  if (searching) rt_->end_search();
  // Out of work for a whole spin: a burst (if any) is over, so give the
  // pages of the stacks it left cached back to the kernel now, off every
  // fiber's path (StackCache explains the policy); all of them if the
  // runtime is over its memory limit. Then the credit: an idle worker
  // holds none, so that its bytes count against nobody's next spawn (one
  // RMW per sleep, and the next spawn here refills: both off the busy path).
  trim_stack_cache();
  rt_->memory().return_credit(&memory_credit);
  sleep();
  return nullptr;
}

bool Worker::work_after_idle() noexcept {
  if (driver_.timers().next_expiry_hint() <= rt_->now_tick()) return true;
  if (!pinned_fibers_) return rt_->has_queued_work();
  // thread_per_core: only our own queues (pop_local found them empty, but
  // a timer callback run since may have queued here) and our inbox.
  return !inbox_.empty() || lifo_ != nullptr || !deques_empty() ||
         yielded_len_.load(std::memory_order_relaxed) != 0;
}

void Worker::sleep() noexcept {
  wake_requested_.store(false, std::memory_order_relaxed);
  rt_->add_idle(this);  // seq_cst RMW inside: first half of the Dekker pair
  // thread_per_core: the same pattern per worker, with post(): store the
  // flag (seq_cst), then re-check the inbox (seq_cst load in
  // work_after_idle); the producer pushes (seq_cst RMW), then loads the
  // flag. One of the two sees the other.
  if (pinned_fibers_) sleeping_.store(true, std::memory_order_seq_cst);
  // Re-check after announcing idleness: a producer that pushed before it
  // read the idle count (or the flag) would not wake us (see notify_work).
  if (rt_->exiting() || work_after_idle()) {
    if (pinned_fibers_) sleeping_.store(false, std::memory_order_relaxed);
    rt_->remove_idle(this);
    return;
  }
  std::int64_t timeout = -1;
  // thread_per_core: only our own timers wake us (nobody else's are ours
  // to fire).
  // Work stealing: the timers nobody else wakes for (our own among them:
  // parked_tick_ is kNone here).
  const std::uint64_t tick =
      pinned_fibers_ ? driver_.timers().next_expiry_hint() : rt_->uncovered_timer_tick();
  if (tick != TimerWheel::kNone) {
    const std::int64_t due = rt_->epoch_ns() + static_cast<std::int64_t>(tick) * 1'000'000;
    timeout = due - monotonic_ns();
    if (timeout < 0) timeout = 0;
  }
  // The deadlock report's seam (RuntimeImpl::deadlock_watch): a park that
  // would last forever lasts until the report is due, if all is quiet.
  bool watching = false;
  if (timeout < 0 && rt_->deadlock_report_on()) {
    timeout = rt_->deadlock_watch();
    watching = timeout >= 0;
  }
  // One wait: a wake-up (wake_requested_ is set before the driver is
  // unparked), I/O, or the timer deadline all end it.
  FiberList woken;
  if (!wake_requested_.load(std::memory_order_acquire)) {
    bump(sleeps_);
    // A worker woken from its last sleep that ran nothing since.
    if (woke_idle_) bump(noop_unparks_);
    const std::int64_t t0 = monotonic_ns();
    note_idle(t0, 0);
    if (timeout >= 0) parked_tick_.store(tick, std::memory_order_relaxed);
    driver_.park(timeout, woken);
    parked_tick_.store(TimerWheel::kNone, std::memory_order_relaxed);
    const std::int64_t t1 = monotonic_ns();
    note_idle(0, static_cast<std::uint64_t>(t1 - t0));
    woke_idle_ = true;
    if (watching && woken.empty()) rt_->deadlock_check();
  }
  if (pinned_fibers_) sleeping_.store(false, std::memory_order_relaxed);
  rt_->remove_idle(this);
  schedule_woken(woken);
}

void Worker::run() noexcept {
  tls_worker = this;
  tls_runtime = rt_;
  metrics_ = &obs::local();
  obs::trace::set_thread_track(rt_, index_);
  start_ns_.store(monotonic_ns(), std::memory_order_relaxed);
  sched_ctx_.bind_to_current_thread();
  AltSignalStack alt_stack;
  driver_.attach();
  while (!rt_->exiting()) {
    Fiber* f = pick_local();
    if (f == nullptr) f = find_work();
    if (f != nullptr) resume(f);
  }
  stacks_.drain(rt_->stack_allocator());
  stop_ns_.store(monotonic_ns(), std::memory_order_relaxed);
  tls_worker = nullptr;
  tls_runtime = nullptr;
}

}  // namespace weft::detail
