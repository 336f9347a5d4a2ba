#include "sched/runtime_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "base/assert.hpp"
#include "base/asymmetric_barrier.hpp"
#include "base/futex.hpp"
#include "fiber/fls.hpp"
#include "fiber/overflow.hpp"
#include "obs/backtrace.hpp"
#include "obs/trace.hpp"
#include "sched/cpu_budget.hpp"
#include "sched/current.hpp"
#include "sched/waiter.hpp"
#include "weft/detail/deadline.hpp"
#include "weft/errors.hpp"
#include "weft/log.hpp"

namespace weft::detail {

FiberId allocate_fiber_id_global() noexcept;  // worker.cpp

namespace {

// Writes to a closed socket or pipe must fail with EPIPE, not kill the
// process: sockets send with MSG_NOSIGNAL, and for pipes (process stdio)
// SIGPIPE is ignored once, unless the program installed its own handler.
void ignore_sigpipe() noexcept {
  struct sigaction old {};
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, nullptr);
  }
}

// What the stall sampler's handler checks on the worker's thread before
// taking the stack: the stalled fiber still runs there, without a switch
// since the monitor saw it. Signal-safe: TLS and relaxed atomics only.
struct StallTarget {
  const Worker* worker;
  const Fiber* fiber;
  std::uint64_t switches;
};

bool still_stalled(const void* arg) noexcept {
  const auto* t = static_cast<const StallTarget*>(arg);
  const Worker* w = current_worker();
  return w == t->worker && w->running.load(std::memory_order_relaxed) == t->fiber &&
         w->switch_count.load(std::memory_order_relaxed) == t->switches;
}

// Stall backtraces: at most one per runtime per kStallTraceGapNs, and the
// monitor waits at most kStallTracePatience for the worker's answer.
constexpr std::int64_t kStallTraceGapNs = 1'000'000'000;
// The monitor's idle wait (monitor_main): after this many samples in a row
// with every worker asleep and no fiber run, it waits kMonitorIdleWaitNs
// instead of its period (<= 5 ms), until a worker wakes.
constexpr std::uint32_t kMonitorQuietPeriods = 2;
constexpr std::int64_t kMonitorIdleWaitNs = 100'000'000;
constexpr std::chrono::milliseconds kStallTracePatience{100};

constexpr std::size_t kMinStack = 16 * 1024;
constexpr std::size_t kMaxStack = std::size_t{1} << 30;  // Fiber::stack_size holds it
}  // namespace

RuntimeImpl* g_debug_runtimes = nullptr;

const std::size_t RuntimeImpl::kTaskBlockCharge = sizeof(TaskBase);

namespace {

// memory_limit = auto: 90 % of the tightest cgroup memory limit, or a
// ConfigError naming where `auto` came from.
void resolve_auto_memory_limit(Config& c) {
  if (std::optional<MemoryBudget> budget = memory_budget()) {
    c.memory_limit = static_cast<std::size_t>(budget->limit_bytes);
    c.note_derived("memory_limit", std::move(budget->why));
    return;
  }
  std::string where = "Config::memory_limit";
  std::string allowed;
  const auto& schema = Config::schema();
  for (std::size_t i = 0; i < schema.size(); ++i) {
    if (schema[i].key != "memory_limit") continue;
    allowed = schema[i].allowed;
    if (i >= c.origins.size()) break;
    const ConfigOrigin& o = c.origins[i];
    if (o.loaded == "auto" && (o.source == ConfigSource::env || o.source == ConfigSource::file)) {
      where = o.where;
    }
  }
  throw ConfigError("weft: " + where +
                        ": memory_limit: auto needs a cgroup memory limit, and neither the "
                        "process's cgroup nor an ancestor sets one (memory.max, "
                        "memory.limit_in_bytes); set a size instead",
                    "memory_limit", where, allowed);
}

}  // namespace

namespace {
std::mutex g_debug_runtimes_mu;  // guards g_debug_runtimes and the debug_next_ links
}  // namespace

RuntimeImpl::RuntimeImpl(const Config& config, ReactorFactory make_reactors)
    : config_(config),
      stall_warning_ns_(config.stall_warning.count()),
      spin_before_park_ns_(config.spin_before_park.count()),
      limits_on_(config.max_fibers != 0 || config.max_stack_memory != 0),
      fiber_cap_(config.max_fibers != 0 ? config.max_fibers : UINT64_MAX),
      stack_cap_(config.max_stack_memory != 0 ? config.max_stack_memory : UINT64_MAX),
      memory_(0, static_cast<std::int64_t>(std::llround(config.memory_pressure_fraction * 1e6)),
              // A chunk: four default fibers, so a worker spawning and
              // joining in a loop refills rarely.
              4 * fiber_charge(StackAllocator::round_to_page(config.stack_size))),
      epoch_ns_(monotonic_ns()),
      park_clock_(park_stamp_of(epoch_ns_)),
      thread_per_core_(config.strategy == Strategy::thread_per_core),
      stacks_(config.guard_pages ? GuardMode::madvise : GuardMode::none),
      deadlock_report_ns_(config.deadlock_report.count()),
      blocking_(this, config.max_blocking_threads, config.blocking_keep_alive) {
  config_.validate();
  if (config_.strategy == Strategy::auto_select) {
    config_.strategy = Strategy::work_stealing;
    config_.note_derived("strategy", "auto: work_stealing");
  }
  if (config_.strategy == Strategy::single_threaded) {
    if (config_.workers != 1) {
      config_.workers = 1;
      config_.note_derived("workers", "strategy single_threaded");
    }
  } else if (config_.workers == 0) {
    CpuBudget budget = cpu_budget();
    config_.workers = budget.workers;
    config_.note_derived("workers", std::move(budget.why));
  }
  if (const std::size_t rounded = StackAllocator::round_to_page(config_.stack_size);
      rounded != config_.stack_size) {
    config_.stack_size = rounded;
    config_.note_derived("stack_size", "rounded up to the page size");
  }
  if (config_.memory_limit == Config::memory_limit_auto) resolve_auto_memory_limit(config_);
  memory_.set_limit(config_.memory_limit);
  if (config_.pin_workers) {
    allowed_cpus_ = affinity_cpus();
    if (allowed_cpus_.empty()) {
      throw std::system_error(errno, std::system_category(),
                              "weft: pin_workers: cannot read the affinity mask");
    }
  }
  install_overflow_handler(&current_fiber);
  obs::install_sample_handler();
  init_asymmetric_barriers();
  const std::size_t n = config_.workers;
  workers_.reserve(n);
  idle_.reserve(n);
  auto reactors = make_reactors(config_, n);
  io_backend_ = reactors.front()->kind();
  credits_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(this, static_cast<int>(i), std::move(reactors[i])));
    credits_.push_back(&workers_.back()->memory_credit);
  }
  ignore_sigpipe();
  try {
    for (std::size_t i = 0; i < n; ++i) {
      Worker* raw = workers_[i].get();
      raw->thread = std::thread([raw] { raw->run(); });
      if (!allowed_cpus_.empty()) {
        // Worker i on the i-th allowed CPU. Set from here, so that a
        // failure reaches the caller; the worker may run a moment on the
        // whole mask before, which only costs it a migration.
        const int cpu = allowed_cpus_[i % allowed_cpus_.size()];
        if (const int err = set_thread_affinity(raw->thread.native_handle(), {cpu}); err != 0) {
          throw std::system_error(err, std::system_category(),
                                  "weft: pin_workers: cannot pin worker " + std::to_string(i) +
                                      " to CPU " + std::to_string(cpu));
        }
      }
    }
    monitor_ = std::thread([this] { monitor_main(); });
  } catch (...) {
    exiting_.store(true, std::memory_order_release);
    for (auto& w : workers_) {
      w->wake();
      if (w->thread.joinable()) w->thread.join();
    }
    throw;
  }
  obs::register_source(this);
  std::lock_guard<std::mutex> g(g_debug_runtimes_mu);
  debug_next_ = g_debug_runtimes;
  g_debug_runtimes = this;
}

RuntimeImpl::~RuntimeImpl() {
  {
    std::lock_guard<std::mutex> g(g_debug_runtimes_mu);
    for (RuntimeImpl** p = &g_debug_runtimes; *p != nullptr; p = &(*p)->debug_next_) {
      if (*p == this) {
        *p = debug_next_;
        break;
      }
    }
  }
  // Steps 1-3 of the shutdown protocol (header).
  stopping_.store(true, std::memory_order_release);
  root_cancel_.cancel();  // fibers spawned from now on start cancelled
  for (int waited_ms = 0; alive() != 0 && waited_ms < kShieldGraceMs; ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (;;) {
    while (alive() != 0) {
      force_cancel_all();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    closed_.store(true, std::memory_order_release);
    if (alive() == 0) break;
  }
  // Step 4.
  {
    std::lock_guard<std::mutex> g(monitor_mu_);
    monitor_stop_ = true;
  }
  monitor_cv_.notify_all();
  wake_idle_monitor();  // and out of its idle wait (a futex, not the condvar)
  if (monitor_.joinable()) monitor_.join();
  // Step 5.
  exiting_.store(true, std::memory_order_release);
  for (auto& w : workers_) w->wake();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Step 6.
  blocking_.shutdown();
  obs::unregister_source(this);  // keeps this runtime's counts in the totals
  // A plain thread that unparked one of our fibers may still be inside
  // notify_work, waking a worker (an eventfd write). The fiber it woke was
  // alive when it began (so that began before step 2 ended): wait it out
  // before the workers and their backends are freed.
  while (external_wakes_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

namespace {

// The refusals of admit_fiber, out of line so that the admission itself
// stays a few instructions (the messages need a frame and strings).
[[noreturn, gnu::noinline, gnu::cold]] void throw_fiber_limit(std::uint64_t max,
                                                              std::uint64_t alive) {
  throw ResourceExhausted("max_fibers", max,
                          "weft: cannot spawn: max_fibers is " + std::to_string(max) + " and " +
                              std::to_string(alive) +
                              " fibers are alive (Config::max_fibers, WEFT_MAX_FIBERS)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_stack_limit(std::uint64_t max,
                                                              std::uint64_t bytes,
                                                              std::size_t need) {
  throw ResourceExhausted("max_stack_memory", max,
                          "weft: cannot spawn: max_stack_memory is " + std::to_string(max) +
                              " bytes, the stacks of the fibers alive take " +
                              std::to_string(bytes) + " and this fiber's needs " +
                              std::to_string(need) +
                              " (Config::max_stack_memory, WEFT_MAX_STACK_MEMORY)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_memory_limit(std::uint64_t max,
                                                               std::uint64_t usage,
                                                               std::int64_t need) {
  throw ResourceExhausted("memory_limit", max,
                          "weft: cannot spawn: memory_limit is " + std::to_string(max) +
                              " bytes and the runtime's memory in use is " + std::to_string(usage) +
                              " (this fiber needs " + std::to_string(need) +
                              "; spawns are refused until it is below 90 % of the limit) "
                              "(Config::memory_limit, WEFT_MEMORY_LIMIT)");
}

}  // namespace

void RuntimeImpl::admit_fiber(std::size_t stack_bytes, Worker* w) {
  MemoryAccount::Credit* credit = w != nullptr ? &w->memory_credit : nullptr;
  const std::int64_t charge = fiber_charge(stack_bytes);
  if (!memory_.try_charge(credit, charge)) [[unlikely]] {
    admit_memory_slow(credit, charge, w);  // throws, or charged
  }
  if (!limits_on_) return;
  try {
    admit_counted(stack_bytes);
  } catch (...) {
    memory_.release(credit, charge);
    throw;
  }
}

void RuntimeImpl::admit_memory_slow(MemoryAccount::Credit* credit, std::int64_t charge, Worker* w) {
  // First the caches (their memory is ours to give back), then refusal.
  trim_caches(w);
  if (!memory_.refusing()) {
    if (memory_.try_charge(credit, charge)) return;
    memory_.refuse();
  } else if (memory_.end_refusal_if_below(static_cast<std::int64_t>(memory_usage())) &&
             memory_.try_charge(credit, charge)) {
    return;
  } else {
    memory_.refuse();
  }
  throw_memory_limit(memory_.limit(), memory_usage(), charge);
}

void RuntimeImpl::set_memory_limit(std::size_t bytes) {
  if (bytes == Config::memory_limit_auto) {
    Config c;  // no origins: an error names Config::memory_limit
    c.memory_limit = bytes;
    resolve_auto_memory_limit(c);
    bytes = c.memory_limit;
  }
  memory_.set_limit(bytes);
}

std::uint64_t RuntimeImpl::memory_usage() const noexcept {
  return static_cast<std::uint64_t>(memory_.usage(credits_.data(), credits_.size()));
}

bool RuntimeImpl::refusing_new_work_slow() noexcept {
  Worker* w = current_worker();
  trim_caches(w != nullptr && w->runtime() == this ? w : nullptr);
  return !memory_.end_refusal_if_below(static_cast<std::int64_t>(memory_usage()));
}

void RuntimeImpl::trim_caches(Worker* w) noexcept {
  memory_.count_trim();
  trim_requests_.fetch_add(1, std::memory_order_relaxed);
  if (w != nullptr) w->trim_stack_cache();
  TaskBase::trim_block_cache();
}

void RuntimeImpl::admit_counted(std::size_t stack_bytes) {
  // Count first, then compare (one RMW per counter, no loop) and take a
  // refused fiber back out. So a spawn racing a refused one at the limit
  // may see its provisional count and be refused too: only at the limit,
  // where one of them would be anyway. relaxed: see retire_fiber.
  const std::uint64_t alive = live_fibers_.fetch_add(1, std::memory_order_relaxed);
  if (alive >= fiber_cap_) [[unlikely]] {
    live_fibers_.fetch_sub(1, std::memory_order_relaxed);
    throw_fiber_limit(config_.max_fibers, alive);
  }
  const std::uint64_t bytes = live_stack_bytes_.fetch_add(stack_bytes, std::memory_order_relaxed);
  if (bytes + stack_bytes > stack_cap_) [[unlikely]] {
    live_stack_bytes_.fetch_sub(stack_bytes, std::memory_order_relaxed);
    live_fibers_.fetch_sub(1, std::memory_order_relaxed);
    throw_stack_limit(config_.max_stack_memory, bytes, stack_bytes);
  }
}

EffectiveDeadline effective_deadline(std::int64_t deadline_ns, TimeoutKind kind) noexcept {
  if (deadline_ns != kNoDeadline) return {deadline_ns, false};
  const RuntimeImpl* rt = current_runtime();
  if (rt == nullptr) return {deadline_ns, false};
  const Config& c = rt->config();  // immutable once the runtime runs
  std::int64_t timeout = 0;
  switch (kind) {
    case TimeoutKind::operation:
      timeout = c.default_operation_timeout.count();
      break;
    case TimeoutKind::network:
      timeout = c.network_timeout.count();
      break;
    case TimeoutKind::io:
      timeout = c.io_timeout.count();
      break;
  }
  if (timeout <= 0) return {deadline_ns, false};
  return {monotonic_ns() + timeout, true};
}

void RuntimeImpl::unpin_current_thread() const noexcept {
  if (!allowed_cpus_.empty()) set_thread_affinity(pthread_self(), allowed_cpus_);
}

void RuntimeImpl::spawn(TaskBase* task, const FiberOptions& opts, CancelNode* parent_node) {
  if (closed_.load(std::memory_order_acquire)) {
    throw std::logic_error("weft: spawn on a runtime that has shut down");
  }
  std::size_t size = config_.stack_size;
  if (opts.stack_size != 0) {
    if (opts.stack_size < kMinStack || opts.stack_size > kMaxStack) {
      throw std::invalid_argument(
          "weft: FiberOptions::stack_size must be between 16 KiB and 1 GiB, got " +
          std::to_string(opts.stack_size));
    }
    size = StackAllocator::round_to_page(opts.stack_size);
  }
  if (opts.worker < -1 || opts.worker >= static_cast<int>(workers_.size())) {
    throw std::invalid_argument("weft: FiberOptions::worker must be -1 or a worker index below " +
                                std::to_string(workers_.size()) + ", got " +
                                std::to_string(opts.worker));
  }
  // FLS hook: the child's copy/share values, made on the spawning side. May
  // run copy constructors (throw, park): before anything below is read.
  task->locals() = fls_inherit();
  Worker* w = current_worker();
  if (w != nullptr && w->runtime() != this) w = nullptr;
  // w is used after admit_fiber, which may run pressure callbacks (user
  // code): they must not park (Runtime::on_memory_pressure says so), since
  // this fiber could resume on another worker and w would be stale.
  stacks_.check_budget();  // throws std::system_error naming vm.max_map_count
  admit_fiber(size, w);    // throws ResourceExhausted (max_fibers, max_stack_memory, memory_limit)

  Fiber* f = new (task->fiber_storage()) Fiber();
  try {
    f->name = opts.name;
  } catch (...) {
    f->~Fiber();
    retire_fiber(size, w);
    throw;
  }
  f->locals = std::exchange(task->locals(), nullptr);  // FLS hook
  f->stack_size = static_cast<std::uint32_t>(size);    // <= kMaxStack
  f->runtime = this;
  f->task = task;
  f->priority = opts.priority;
  f->id = w != nullptr ? w->next_fiber_id() : allocate_fiber_id_global();
  Fiber* parent = w != nullptr ? w->current() : nullptr;
  f->parent_id = parent != nullptr ? parent->id : 0;
  task->set_fiber_id(f->id);
  register_fiber(f);
  // The child's node hangs under the spawner's innermost cancel scope (a
  // fiber's, a spawn_blocking task's, or the root's from outside).
  CancelNode& node = task->cancel_node();
  node.attach(parent_node != nullptr ? parent_node : spawn_parent_node(parent));
  f->cancel_scope = &node;
  node.bind_fiber(f);
  f->transition(FiberState::created, FiberState::runnable);
  f->park.store(kRunnable, std::memory_order_relaxed);
  if (obs::trace::on()) {
    obs::trace::record(obs::trace::Kind::spawn, parent != nullptr ? parent->id : 0, f->id, 0,
                       nullptr, f->name);
  }
  if (thread_per_core_ && opts.worker >= 0 && (w == nullptr || w->index() != opts.worker)) {
    // thread_per_core, placed by the caller on another worker: its inbox.
    if (w != nullptr) {
      w->bump_spawned();
    } else {
      spawned_outside_.fetch_add(1, std::memory_order_relaxed);
    }
    Worker& home = *workers_[static_cast<std::size_t>(opts.worker)];
    f->home = static_cast<std::uint16_t>(home.index());
    home.post(f);
  } else if (w != nullptr) {
    // thread_per_core: a fiber spawned by a fiber stays on its spawner's
    // worker (unused under work stealing).
    f->home = static_cast<std::uint16_t>(w->index());
    w->bump_spawned();
    w->schedule_local(f, false);
  } else {
    spawned_outside_.fetch_add(1, std::memory_order_relaxed);
    // As an unpark from outside (queue_unparked): once queued, f may run
    // and end, and shutdown may pass alive() == 0, while this thread still
    // wakes a worker (post's wake, notify_work): ~RuntimeImpl must wait for
    // that before it frees the workers.
    begin_external_wake();
    if (thread_per_core_) {
      place_outside_spawn(f);
    } else {
      inject(f);
    }
    end_external_wake();
  }
}

void RuntimeImpl::place_outside_spawn(Fiber* f) noexcept {
  // Round-robin: every worker gets the same share of the spawns from
  // outside, without reading any worker's load (a least-loaded choice would
  // read racy queue sizes, and the inboxes have none). relaxed: the counter
  // only spreads the fibers; the inbox push publishes the fiber.
  const std::uint32_t turn = next_home_.fetch_add(1, std::memory_order_relaxed);
  Worker& home = *workers_[turn % workers_.size()];
  f->home = static_cast<std::uint16_t>(home.index());
  home.post(f);
}

// --- injector ---------------------------------------------------------------

void RuntimeImpl::inject(Fiber* f) noexcept {
  f->next = nullptr;
  inject_batch(f, f, 1);
}

void RuntimeImpl::inject_batch(Fiber* head, Fiber* tail, std::size_t n) noexcept {
  {
    LockGuard g(inject_lock_);
    if (inject_tail_ != nullptr) {
      inject_tail_->next = head;
    } else {
      inject_head_ = head;
    }
    inject_tail_ = tail;
    inject_len_.fetch_add(n, std::memory_order_relaxed);
  }
  notify_work();
}

std::size_t RuntimeImpl::take_injected(Fiber** head, std::size_t max) noexcept {
  LockGuard g(inject_lock_);
  std::size_t n = 0;
  Fiber* first = inject_head_;
  Fiber* last = nullptr;
  Fiber* f = inject_head_;
  while (f != nullptr && n < max) {
    last = f;
    f = f->next;
    ++n;
  }
  if (n == 0) {
    *head = nullptr;
    return 0;
  }
  last->next = nullptr;
  inject_head_ = f;
  if (f == nullptr) inject_tail_ = nullptr;
  inject_len_.fetch_sub(n, std::memory_order_relaxed);
  *head = first;
  return n;
}

// --- idle workers -----------------------------------------------------------

void RuntimeImpl::notify_work() noexcept {
  // thread_per_core: no worker can take another's fibers, so there is
  // nobody to wake (Worker::post wakes the one worker concerned).
  if (thread_per_core_) return;
  // seq_cst fence: orders our push (before) against the idle-count load
  // (after); pairs with the seq_cst RMW in add_idle() followed by the
  // sleeper's re-check. Either we see the sleeper, or it sees our work.
  full_fence();
  if (idle_count_.load(std::memory_order_relaxed) == 0) return;
  if (searching_.load(std::memory_order_relaxed) != 0) return;
  wake_one_idle();
}

bool RuntimeImpl::try_begin_search() noexcept {
  // At most half of the workers search at once (Tokio's idle.rs rule), so an
  // idle runtime does not burn every core spinning.
  const std::uint32_t s = searching_.load(std::memory_order_relaxed);
  if (2 * s >= workers_.size()) return false;
  searching_.fetch_add(1, std::memory_order_seq_cst);
  return true;
}

bool RuntimeImpl::end_search() noexcept {
  // seq_cst: a worker that stops searching re-checks the queues afterwards
  // (find_work -> sleep), the other half of notify_work's pattern.
  return searching_.fetch_sub(1, std::memory_order_seq_cst) == 1;
}

void RuntimeImpl::add_idle(Worker* w) noexcept {
  LockGuard g(idle_lock_);
  if (!w->idle_listed) {
    w->idle_listed = true;
    idle_.push_back(w);
    idle_count_.fetch_add(1, std::memory_order_seq_cst);
  }
}

void RuntimeImpl::remove_idle(Worker* w) noexcept {
  {
    LockGuard g(idle_lock_);
    if (!w->idle_listed) return;
    w->idle_listed = false;
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (*it == w) {
        idle_.erase(it);
        break;
      }
    }
    idle_count_.fetch_sub(1, std::memory_order_seq_cst);
  }
  wake_idle_monitor();
}

bool RuntimeImpl::wake_one_idle() noexcept {
  Worker* w = nullptr;
  {
    LockGuard g(idle_lock_);
    if (idle_.empty()) return false;
    w = idle_.back();
    idle_.pop_back();
    w->idle_listed = false;
    idle_count_.fetch_sub(1, std::memory_order_seq_cst);
  }
  wake_idle_monitor();
  w->wake();
  return true;
}

void RuntimeImpl::wake_idle_monitor() noexcept {
  // seq_cst: the second half of the Dekker pair with monitor_main's idle
  // wait (monitor_idle_); the caller's idle_count_ RMW comes first. Nearly
  // always 0: one load on the path out of sleep. The wait is a futex on the
  // flag itself, so no lock is taken here: callers wake fibers under
  // registry and wait-list locks, which the monitor may take under
  // monitor_mu_ (report_stall). A futex_wait that starts after our
  // exchange sees 0 and returns at once.
  if (monitor_idle_.load(std::memory_order_seq_cst) == 0) return;
  if (monitor_idle_.exchange(0, std::memory_order_seq_cst) == 0) return;
  futex_wake(&monitor_idle_, 1);
}

bool RuntimeImpl::has_queued_work() const noexcept {
  if (injector_size() != 0) return true;
  for (const auto& w : workers_) {
    if (w->queued() != 0 || !w->inbox_empty()) return true;
  }
  return false;
}

// --- time -------------------------------------------------------------------

std::uint64_t RuntimeImpl::now_tick() const noexcept {
  return static_cast<std::uint64_t>(monotonic_ns() - epoch_ns_) / 1'000'000;
}

std::uint64_t RuntimeImpl::deadline_to_tick(std::int64_t deadline_ns) const noexcept {
  if (deadline_ns <= epoch_ns_) return 0;
  // Round up: a timer never fires before its deadline.
  return (static_cast<std::uint64_t>(deadline_ns - epoch_ns_) + 999'999) / 1'000'000;
}

std::uint64_t RuntimeImpl::uncovered_timer_tick() const noexcept {
  // A timer needs a sleeper's wake-up only when its owner will not wake
  // for it: a worker parked until a tick at or before that timer's fires
  // it itself when its park ends. Waking every sleeper for the earliest
  // timer of any worker (the rule before issue 21) woke both workers of an
  // idle weft-kv for each tick of its 10 Hz cron. A busy owner (no timed
  // park) fires its timers at its fairness ticks; one that runs a single
  // fiber for long is helped by the sleeper that wakes for its timer here
  // (help_timers). An owner woken early from its park that then runs one
  // fiber for long, past a timer a sleeper left out as covered, is the
  // backstop's case (monitor_backstop).
  std::uint64_t best = TimerWheel::kNone;
  for (const auto& w : workers_) {
    const std::uint64_t t = w->driver().timers().next_expiry_hint();
    if (t < best && w->parked_tick() > t) best = t;
  }
  return best;
}

std::uint64_t RuntimeImpl::earliest_timer_tick() const noexcept {
  std::uint64_t best = TimerWheel::kNone;
  for (const auto& w : workers_) {
    const std::uint64_t t = w->driver().timers().next_expiry_hint();
    if (t < best) best = t;
  }
  return best;
}

// --- registry ---------------------------------------------------------------

void RuntimeImpl::register_fiber(Fiber* f) noexcept {
  RegistryShard& s = registry_[shard_of(f)];
  LockGuard g(s.lock);
  f->reg_prev = nullptr;
  f->reg_next = s.head;
  if (s.head != nullptr) s.head->reg_prev = f;
  s.head = f;
}

void RuntimeImpl::unregister_fiber(Fiber* f) noexcept {
  RegistryShard& s = registry_[shard_of(f)];
  LockGuard g(s.lock);
  if (f->has_labels) s.labels.erase(f);  // frees, under the lock: rare
  if (f->reg_prev != nullptr) {
    f->reg_prev->reg_next = f->reg_next;
  } else {
    s.head = f->reg_next;
  }
  if (f->reg_next != nullptr) f->reg_next->reg_prev = f->reg_prev;
  f->reg_prev = f->reg_next = nullptr;
}

void RuntimeImpl::spawn_blocking(TaskBase* task) {
  Worker* w = current_worker();
  Fiber* parent = w != nullptr && w->runtime() == this ? w->current() : nullptr;
  task->locals() = fls_inherit();  // FLS hook: the task's copy/share values
  CancelNode& node = task->cancel_node();
  node.attach(spawn_parent_node(parent));
  try {
    blocking_.submit(task);
  } catch (...) {
    node.detach();
    throw;
  }
}

CancelNode* RuntimeImpl::spawn_parent_node(Fiber* parent) noexcept {
  if (parent != nullptr) return parent->cancel_scope;
  if (current_runtime() == this) {
    if (TaskBase* t = current_blocking_task()) return &t->cancel_node();
  }
  return &root_cancel_;
}

void RuntimeImpl::wake_cancelled(Fiber* f) noexcept {
  // After cancel_requested was set and a heavy barrier: a fiber that
  // published its waiter before the barrier is woken here; one that
  // publishes later sees the request itself (Waiter::wait_fiber).
  LockGuard g(f->wait_lock);
  // acquire: pairs with the release publication in Waiter::wait_fiber, so
  // the waiter's fields (fiber_) are visible - and so is everything the
  // fiber did before publishing it, including leaving the cancelled scope
  // (which may have cleared cancel_requested): read the flag second.
  Waiter* w = f->current_waiter.load(std::memory_order_acquire);
  if (w != nullptr && f->cancel_requested.load(std::memory_order_acquire)) {
    w->wake(Waiter::kCancelled);
  }
}

void RuntimeImpl::force_cancel_all() noexcept {
  // Mark everyone, one heavy barrier for all, then wake.
  for (auto& shard : registry_) {
    LockGuard g(shard.lock);
    for (Fiber* f = shard.head; f != nullptr; f = f->reg_next) {
      f->hard_cancel.store(true, std::memory_order_relaxed);
      f->cancel_requested.store(true, std::memory_order_relaxed);
    }
  }
  heavy_barrier();
  for (auto& shard : registry_) {
    LockGuard g(shard.lock);
    for (Fiber* f = shard.head; f != nullptr; f = f->reg_next) wake_cancelled(f);
  }
}

// --- fiber dumps --------------------------------------------------------------

void RuntimeImpl::visit_fibers(FiberVisitor& v) noexcept {
  for (auto& shard : registry_) {
    Fiber* place = nullptr;  // pinned: still registered, its links valid under the lock
    for (;;) {
      Fiber* pinned = nullptr;
      {
        LockGuard g(shard.lock);
        Fiber* f = place != nullptr ? place->reg_next : shard.head;
        // Unpinned under the lock: if it is queued and ends at once, its
        // unregister waits for us, and we are done with its links.
        if (place != nullptr) unpin_parked(place);
        for (; f != nullptr; f = f->reg_next) {
          const bool p = pin_parked(f);
          const FiberLabels* labels = nullptr;
          if (!shard.labels.empty()) {
            if (auto it = shard.labels.find(f); it != shard.labels.end()) labels = &it->second;
          }
          v.see(*f, p, labels);
          if (p) {
            pinned = f;
            break;
          }
        }
      }
      if (pinned == nullptr) break;
      v.inspect_pinned(*pinned);
      place = pinned;
    }
  }
}

void RuntimeImpl::set_label(Fiber* f, std::string_view key, std::string_view value) {
  RegistryShard& shard = registry_[shard_of(f)];
  // The new set is built outside the lock from our own (only f writes its
  // entry) and swapped in under it; the old one is freed after.
  FiberLabels next;
  if (const FiberLabels* own = own_labels(f)) next = *own;
  const auto it =
      std::find_if(next.begin(), next.end(), [&](const auto& l) { return l.first == key; });
  if (value.empty()) {
    if (it == next.end()) return;
    next.erase(it);
  } else if (it != next.end()) {
    it->second = value;
  } else {
    next.emplace_back(key, value);
  }
  const bool any = !next.empty();
  // The map node is made here: under the lock only the buckets may grow.
  std::unordered_map<const Fiber*, FiberLabels> fresh;
  if (any) fresh.emplace(f, std::move(next));
  {
    LockGuard g(shard.lock);
    if (!any) {
      shard.labels.erase(f);
    } else if (auto old = shard.labels.find(f); old != shard.labels.end()) {
      old->second.swap(fresh.begin()->second);
    } else {
      shard.labels.insert(fresh.extract(fresh.begin()));
    }
  }
  f->has_labels = any;
}

const FiberLabels* RuntimeImpl::own_labels(const Fiber* f) const noexcept {
  if (!f->has_labels) return nullptr;
  const RegistryShard& shard = registry_[shard_of(f)];
  LockGuard g(shard.lock);
  // Elements of an unordered_map stay put when others are inserted: the
  // entry is valid until f changes it or ends.
  const auto it = shard.labels.find(f);
  return it != shard.labels.end() ? &it->second : nullptr;
}

int RuntimeImpl::worker_running(const Fiber* f, std::uint64_t& switches) const noexcept {
  for (const auto& w : workers_) {
    switches = w->switch_count.load(std::memory_order_relaxed);
    if (w->running.load(std::memory_order_relaxed) == f) return w->index();
  }
  return -1;
}

bool RuntimeImpl::sample_running(int worker, const Fiber* f, std::uint64_t switches,
                                 std::chrono::milliseconds patience,
                                 obs::RawBacktrace& out) noexcept {
  Worker& w = *workers_[static_cast<std::size_t>(worker)];
  const StallTarget target{&w, f, switches};
  return obs::sample_thread(w.thread.native_handle(), &still_stalled, &target, patience, out);
}

namespace {
// Dump signals received so far (process-wide), and per monitor the count
// it has answered.
std::atomic<std::uint64_t> g_dump_signals{0};
}  // namespace

void RuntimeImpl::note_dump_signal() noexcept {
  // relaxed: the monitors poll it; nothing is published with it.
  g_dump_signals.fetch_add(1, std::memory_order_relaxed);
}

// --- stats ------------------------------------------------------------------

std::uint64_t RuntimeImpl::alive() const noexcept {
  std::uint64_t spawned = spawned_outside_.load(std::memory_order_relaxed);
  std::uint64_t completed = 0;
  for (const auto& w : workers_) {
    spawned += w->spawned_.load(std::memory_order_relaxed);
    completed += w->completed_.load(std::memory_order_relaxed);
  }
  return spawned > completed ? spawned - completed : 0;
}

RuntimeStats RuntimeImpl::stats() const {
  RuntimeStats s;
  s.fibers_spawned = spawned_outside_.load(std::memory_order_relaxed);
  for (const auto& w : workers_) {
    WorkerStats ws;
    ws.fibers_spawned = w->spawned_.load(std::memory_order_relaxed);
    ws.fibers_completed = w->completed_.load(std::memory_order_relaxed);
    ws.switches = w->switch_count.load(std::memory_order_relaxed);
    ws.steals = w->steals_.load(std::memory_order_relaxed);
    ws.fiber_parks = w->parks_.load(std::memory_order_relaxed);
    ws.sleeps = w->sleeps_.load(std::memory_order_relaxed);
    ws.runnable = w->queued() + w->yielded();
    ws.io_requests = w->driver().reactor().submitted();
    ws.io_blocking_waits = w->driver().reactor().blocking_waits();
    s.io_requests += ws.io_requests;
    s.fibers_spawned += ws.fibers_spawned;
    s.fibers_completed += ws.fibers_completed;
    s.steals += ws.steals;
    s.fiber_parks += ws.fiber_parks;
    s.fibers_runnable += ws.runnable;
    s.workers.push_back(ws);
  }
  s.injector_depth = injector_size();
  s.fibers_runnable += s.injector_depth;
  s.fibers_alive =
      s.fibers_spawned > s.fibers_completed ? s.fibers_spawned - s.fibers_completed : 0;
  // Alive fibers are running, runnable or parked; running ones are few.
  std::uint64_t running = 0;
  for (const auto& w : workers_) running += w->running.load(std::memory_order_relaxed) != nullptr;
  const std::uint64_t busy = s.fibers_runnable + running;
  s.fibers_parked = s.fibers_alive > busy ? s.fibers_alive - busy : 0;
  s.blocking_threads = blocking_.threads();
  s.blocking_tasks = blocking_.completed();
  s.monitor_wakeups = monitor_wakeups_.load(std::memory_order_relaxed);
  return s;
}

void RuntimeImpl::collect(obs::RuntimeTotals& out) const noexcept {
  const std::int64_t now = monotonic_ns();
  out.fibers_spawned = spawned_outside_.load(std::memory_order_relaxed);
  for (const auto& w : workers_) {
    out.fibers_spawned += w->spawned_.load(std::memory_order_relaxed);
    out.fibers_completed += w->completed_.load(std::memory_order_relaxed);
    out.steal_attempts += w->steal_attempts_.load(std::memory_order_relaxed);
    out.steals += w->steal_successes_.load(std::memory_order_relaxed);
    out.stolen_fibers += w->steals_.load(std::memory_order_relaxed);
    out.fiber_parks += w->parks_.load(std::memory_order_relaxed);
    out.worker_parks += w->sleeps_.load(std::memory_order_relaxed);
    out.noop_unparks += w->noop_unparks_.load(std::memory_order_relaxed);
    out.busy_ns += w->busy_ns(now);
    out.queued += w->queued() + w->yielded();
  }
  out.fibers_active =
      out.fibers_spawned > out.fibers_completed ? out.fibers_spawned - out.fibers_completed : 0;
  out.injector = injector_size();
  out.queued += out.injector;
  out.stalls = stalls_.load(std::memory_order_relaxed);
  // The pool's lock is a std::mutex held only briefly by its threads.
  out.blocking_threads = blocking_.threads();
  out.blocking_queued = blocking_.queued();
  out.blocking_tasks = blocking_.completed();
  out.stack_reserved_bytes = stacks_.reserved_bytes();
  out.stacks_live = stacks_.live_stacks();
  out.workers = workers_.size();
  out.memory_used_bytes = memory_usage();
  out.memory_limit_bytes = memory_.limit();
  out.memory_refusals = memory_.refusals();
  out.memory_trims = memory_.trims();
  out.memory_pressure_events = memory_.pressure_events();
}

// --- monitor ----------------------------------------------------------------

void RuntimeImpl::monitor_main() noexcept {
  // Samples every worker each period. A worker whose switch count has not
  // moved while it runs a fiber is running that fiber without a break:
  // past preemption_interval the fiber is flagged (checkpoint() yields),
  // past stall_warning it is reported once. Then the wake-up backstop runs
  // (monitor_backstop), unless Config::wake_backstop is off.
  const std::size_t n = workers_.size();
  struct Sample {
    std::uint64_t switches = ~std::uint64_t{0};
    std::int64_t since_ns = 0;
    bool warned = false;
  };
  std::vector<Sample> samples(n);
  auto period = config_.preemption_interval / 2;
  if (period > std::chrono::milliseconds(5)) period = std::chrono::milliseconds(5);
  if (period < std::chrono::microseconds(500)) period = std::chrono::microseconds(500);

  // The idle wait: once every worker has slept through kMonitorQuietPeriods
  // samples in a row with no fiber run in between, nothing can stall and
  // nothing needs flagging, so the monitor waits kMonitorIdleWaitNs instead
  // of its period (Go's sysmon, which stops polling while every P is idle,
  // likewise). A worker leaving the idle count ends the wait at once
  // (wake_idle_monitor). The backstop then looks every kMonitorIdleWaitNs,
  // and a dump signal is seen within it. An idle weft-kv's monitor went
  // from ~190 wake-ups a second to 10 (docs/benchmarks.md, series I21).
  std::uint32_t quiet_periods = 0;
  std::uint64_t last_switches = switch_sum();
  std::uint64_t dumps_seen = g_dump_signals.load(std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(monitor_mu_);
  while (!monitor_stop_) {
    bool idle_wait = false;
    if (quiet_periods >= kMonitorQuietPeriods) {
      // seq_cst store, then seq_cst load: see monitor_idle_.
      monitor_idle_.store(1, std::memory_order_seq_cst);
      idle_wait = idle_count_.load(std::memory_order_seq_cst) == n;
      if (idle_wait) {
        // Unlocked: ~RuntimeImpl sets monitor_stop_ under the lock and then
        // ends this wait through wake_idle_monitor.
        lock.unlock();
        futex_wait(&monitor_idle_, 1, kMonitorIdleWaitNs);
        lock.lock();
      }
      monitor_idle_.store(0, std::memory_order_relaxed);
    }
    if (!idle_wait && !monitor_stop_) monitor_cv_.wait_for(lock, period);
    monitor_wakeups_.store(monitor_wakeups_.load(std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
    if (monitor_stop_) break;
    {
      const std::uint64_t sw = switch_sum();
      const bool quiet = sw == last_switches && idle_count_.load(std::memory_order_relaxed) == n;
      last_switches = sw;
      quiet_periods = quiet ? quiet_periods + 1 : 0;
    }
    if (const std::uint64_t d = g_dump_signals.load(std::memory_order_relaxed); d != dumps_seen) {
      dumps_seen = d;
      // acquire: pairs with set_dump_writer's release.
      if (auto* writer = dump_writer_.load(std::memory_order_acquire)) {
        lock.unlock();  // a dump takes up to a second: shutdown must not wait on it
        writer(*this);
        lock.lock();
        if (monitor_stop_) break;
      }
    }
    const std::int64_t now = monotonic_ns();
    park_clock_.store(park_stamp_of(now), std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      Worker& w = *workers_[i];
      Sample& s = samples[i];
      const std::uint64_t sw = w.switch_count.load(std::memory_order_relaxed);
      Fiber* f = w.running.load(std::memory_order_relaxed);
      if (f == nullptr || sw != s.switches) {
        s.switches = sw;
        s.since_ns = now;
        s.warned = false;
        continue;
      }
      const std::int64_t ran = now - s.since_ns;
      if (ran >= config_.preemption_interval.count()) {
        w.preempt_.store(true, std::memory_order_relaxed);
      }
      if (!s.warned && ran >= stall_warning_ns()) {
        s.warned = true;
        report_stall(w, f, sw, ran);
      }
    }
    if (deadlock_due_ms_.load(std::memory_order_relaxed) >= 0) {
      lock.unlock();  // a dump takes up to a second: shutdown must not wait on it
      write_deadlock_report();
      lock.lock();
      if (monitor_stop_) break;
    }
    monitor_backstop();
  }
}

// --- the deadlock report ---------------------------------------------------

std::uint64_t RuntimeImpl::switch_sum() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& w : workers_) sum += w->switch_count.load(std::memory_order_relaxed);
  return sum;
}

RuntimeImpl::Quiet RuntimeImpl::quiet_now() const noexcept {
  if (stopping() || exiting()) return Quiet::no;
  if (idle_count_.load(std::memory_order_relaxed) != workers_.size()) return Quiet::no;
  if (has_queued_work() || earliest_timer_tick() != TimerWheel::kNone) return Quiet::no;
  if (alive() == 0) return Quiet::no;
  // These end without waking a worker (a plain thread's wake-up returns
  // after its fiber may have run and parked again; a pool thread goes idle
  // after its joiner woke): the watcher looks again a period later.
  // relaxed: a hint, as the rest.
  if (external_wakes_.load(std::memory_order_relaxed) != 0 || blocking_.busy()) {
    return Quiet::not_yet;
  }
  return Quiet::yes;
}

std::int64_t RuntimeImpl::deadlock_watch() noexcept {
  const Quiet quiet = quiet_now();
  const std::uint64_t sw = switch_sum();
  const std::int64_t now = monotonic_ns();
  LockGuard g(deadlock_lock_);
  if (quiet != Quiet::yes) {
    quiet_since_ns_ = 0;
    return quiet == Quiet::not_yet ? deadlock_report_ns_ : -1;
  }
  if (sw == reported_switches_) return -1;  // reported: wait for a fiber to run
  if (quiet_since_ns_ == 0 || sw != quiet_switches_) {
    quiet_since_ns_ = now;
    quiet_switches_ = sw;
  }
  const std::int64_t left = quiet_since_ns_ + deadlock_report_ns_ - now;
  return left > 0 ? left : 0;
}

void RuntimeImpl::deadlock_check() noexcept {
  if (quiet_now() != Quiet::yes) return;
  const std::uint64_t sw = switch_sum();
  const std::int64_t now = monotonic_ns();
  std::int64_t quiet_ms = 0;
  {
    LockGuard g(deadlock_lock_);
    if (quiet_since_ns_ == 0 || sw != quiet_switches_ || sw == reported_switches_ ||
        now - quiet_since_ns_ < deadlock_report_ns_) {
      return;
    }
    reported_switches_ = sw;
    quiet_ms = (now - quiet_since_ns_) / 1'000'000;
  }
  deadlock_due_ms_.store(quiet_ms, std::memory_order_relaxed);  // see deadlock_due_ms_
  monitor_cv_.notify_one();  // else the monitor sees it within its period (<= 5 ms)
  wake_idle_monitor();       // or within its idle wait (100 ms)
}

void RuntimeImpl::write_deadlock_report() noexcept {
  const std::int64_t ms = deadlock_due_ms_.exchange(-1, std::memory_order_relaxed);
  if (ms < 0) return;
  // acquire: pairs with set_deadlock_reporter's release.
  DeadlockReporter report = deadlock_reporter_.load(std::memory_order_acquire);
  const bool reported = report != nullptr && report(*this, ms);
  if (reported && config_.deadlock_abort) std::abort();
}

void RuntimeImpl::monitor_backstop() noexcept {
  // A safety net, not part of the wake-up protocol: queued work or an
  // overdue timer while workers sleep and none searches means a wake-up
  // was lost or is late (a sleeper's timeout rounds to the next ms; a
  // stale timer hint). Waking one idle worker turns such a bug into a delay
  // of at most one monitor period instead of a hang, which also hides it:
  // the tests that must catch lost wake-ups run with it off
  // (Config::wake_backstop), so a lost wake-up hangs there, and are listed
  // with their mutants in tests/mutants/.
  if (thread_per_core_) {
    // Only a fiber's own worker can run it: wake that one.
    if (!config_.wake_backstop) return;
    const std::uint64_t now = now_tick();
    for (const auto& w : workers_) {
      if (w->asleep() && (!w->inbox_empty() || w->driver().timers().next_expiry_hint() <= now)) {
        w->wake();
      }
    }
    return;
  }
  // A due timer whose owner is parked until its tick is being fired by
  // that owner (its park ends at the tick, rounded to the ms): waking
  // another worker for it cost an idle weft-kv a wasted wake-up per cron
  // tick. Such a timer counts once it is a tick late.
  if (config_.wake_backstop && idle_count_.load(std::memory_order_relaxed) != 0 &&
      searching_.load(std::memory_order_relaxed) == 0) {
    const std::uint64_t now = now_tick();
    const std::uint64_t earliest = earliest_timer_tick();  // kNone when none
    if (has_queued_work() || uncovered_timer_tick() <= now ||
        (earliest < now && now - earliest > 1)) {
      wake_one_idle();
    }
  }
}

void RuntimeImpl::report_stall(Worker& w, Fiber* f, std::uint64_t switches,
                               std::int64_t ran_ns) noexcept {
  // Read the fiber's id and name only while it provably still runs: a fiber
  // is unregistered (under its shard lock) only after its worker switched
  // away from it, which changes switch_count. Holding the shard lock and
  // seeing the same count and fiber means it has not been recycled.
  RegistryShard& shard = registry_[shard_of(f)];
  char name[64] = {};
  FiberId id = 0;
  {
    LockGuard g(shard.lock);
    if (w.switch_count.load(std::memory_order_acquire) != switches ||
        w.running.load(std::memory_order_acquire) != f) {
      return;
    }
    id = f->id;
    std::snprintf(name, sizeof(name), "%s", f->name.c_str());
  }
  stalls_.store(stalls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // The fiber's stack, taken on its worker (obs/backtrace.hpp), rate-limited.
  std::string trace;
  const std::int64_t now = monotonic_ns();
  if (last_stall_trace_ns_ != 0 && now - last_stall_trace_ns_ < kStallTraceGapNs) {
    trace = "  (backtrace skipped: at most one a second)\n";
  } else {
    last_stall_trace_ns_ = now;
    obs::RawBacktrace bt;
    try {
      if (sample_running(w.index(), f, switches, kStallTracePatience, bt)) {
        trace = "  backtrace of the stalled fiber (innermost first):\n";
        obs::symbolize(bt, trace);
      } else {
        trace = "  (no backtrace: the fiber switched meanwhile, or the worker did not answer)\n";
      }
    } catch (...) {
      trace.clear();  // out of memory: the warning alone
    }
  }
  // One log line per report: the backtrace's lines are escaped into it in
  // the text format (\n), a JSON string in the JSON format.
  log::logf(log::Level::warn,
            "weft: worker %d has run fiber %" PRIu64 " '%s' for %" PRId64
            " ms without a switch; other fibers queued on it are stalled "
            "(blocking call? use weft::spawn_blocking, or call this_fiber::checkpoint())\n%s",
            w.index(), id, name, ran_ns / 1'000'000, trace.c_str());
}

}  // namespace weft::detail
