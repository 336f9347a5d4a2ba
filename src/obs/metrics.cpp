// See metrics.hpp.
#include "obs/metrics.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace weft::detail::obs {
namespace {

// relaxed: a tuning knob; a shard picks up a new period at its next reset.
std::atomic<std::uint32_t> g_sample_period{64};

// The registry: live shards and sources, and what dead ones left. Never
// destroyed, because threads may record events (and exit) while static
// destructors run.
struct Registry {
  std::mutex mu;
  Shard* shards = nullptr;  // guarded by mu (a std::mutex: not annotated)
  Totals retired;           // guarded by mu
  std::vector<const Source*> sources;
  RuntimeTotals retired_runtimes;
};

Registry& registry() {
  static auto* r = new Registry();
  return *r;
}

void fold(Totals& into, const Shard& s) noexcept {
  for (std::size_t i = 0; i < kCounters; ++i) {
    into.counters[i] += s.counters[i].load(std::memory_order_relaxed);
  }
  for (std::size_t h = 0; h < kHists; ++h) {
    for (std::size_t b = 0; b < kBuckets; ++b) {
      into.buckets[h][b] += s.hists[h].counts[b].load(std::memory_order_relaxed);
    }
    into.sum_ns[h] += s.hists[h].sum_ns.load(std::memory_order_relaxed);
  }
}

// The thread's shard, as local() reads it: a trivially destructible
// pointer, so that reading it is one load from the thread's block (a
// thread_local with a destructor is reached through a wrapper that checks
// its initialization on every access: local() took 11 instructions, now 8
// with the return, paid by every counter off the workers' own paths;
// docs/benchmarks.md, series O3). Null
// until the first event and again once the holder below is gone.
thread_local constinit Shard* tls_current = nullptr;
// Set when the holder's destructor ran (trivially destructible, so it
// outlives the holder).
thread_local constinit bool tls_holder_gone = false;

// Owns the thread's shard, touched (so constructed, its destructor
// registered) only by make_local. Its destructor (at thread exit) retires
// the shard. A thread that records an event after that (from another
// thread_local's destructor) gets a fresh shard that stays registered for
// good: a few KiB, and no count is lost.
struct ShardHolder {
  Shard* shard = nullptr;
  ~ShardHolder() {
    tls_holder_gone = true;
    tls_current = nullptr;
    if (shard == nullptr) return;
    Registry& r = registry();
    {
      std::lock_guard<std::mutex> g(r.mu);
      fold(r.retired, *shard);
      for (Shard** p = &r.shards; *p != nullptr; p = &(*p)->next) {
        if (*p == shard) {
          *p = shard->next;
          break;
        }
      }
    }
    delete std::exchange(shard, nullptr);
  }
};

thread_local ShardHolder tls_shard;

// Shared by threads that could not get a shard of their own (no memory):
// such threads race on its words, so counts may be lost there, never
// memory. Registered like any shard.
Shard& overflow_shard() {
  static Shard* s = [] {
    auto* fresh = new Shard();
    Registry& r = registry();
    std::lock_guard<std::mutex> g(r.mu);
    fresh->next = r.shards;
    r.shards = fresh;
    return fresh;
  }();
  return *s;
}

[[gnu::noinline]] Shard& make_local() noexcept {
  auto* s = new (std::nothrow) Shard();
  if (s == nullptr) return overflow_shard();  // the next event tries again
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> g(r.mu);
    s->next = r.shards;
    r.shards = s;
  }
  // After the holder is gone the shard is the thread's for good (never
  // freed); before, the holder retires it at thread exit.
  if (!tls_holder_gone) tls_shard.shard = s;
  tls_current = s;
  return *s;
}

}  // namespace

std::uint64_t bucket_bound_ns(std::size_t i) noexcept {
  const std::uint64_t octave = std::uint64_t{1024} << (i / 2);
  return i % 2 == 0 ? octave : octave + octave / 2;
}

std::uint32_t Shard::sample_period() noexcept {
  return g_sample_period.load(std::memory_order_relaxed);
}

void set_sample_period(std::uint32_t n) noexcept {
  g_sample_period.store(n == 0 ? 1 : n, std::memory_order_relaxed);
}

[[gnu::noinline]] Shard& local() noexcept {
  asm volatile("" ::: "memory");  // TLS hazard: read the thread pointer afresh
  Shard* s = tls_current;
  return s != nullptr ? *s : make_local();
}

void RuntimeTotals::add_monotonic(const RuntimeTotals& o) noexcept {
  fibers_spawned += o.fibers_spawned;
  fibers_completed += o.fibers_completed;
  steal_attempts += o.steal_attempts;
  steals += o.steals;
  stolen_fibers += o.stolen_fibers;
  fiber_parks += o.fiber_parks;
  worker_parks += o.worker_parks;
  noop_unparks += o.noop_unparks;
  busy_ns += o.busy_ns;
  stalls += o.stalls;
  blocking_tasks += o.blocking_tasks;
  memory_refusals += o.memory_refusals;
  memory_trims += o.memory_trims;
  memory_pressure_events += o.memory_pressure_events;
}

void RuntimeTotals::add_all(const RuntimeTotals& o) noexcept {
  add_monotonic(o);
  fibers_active += o.fibers_active;
  queued += o.queued;
  injector += o.injector;
  blocking_threads += o.blocking_threads;
  blocking_queued += o.blocking_queued;
  stack_reserved_bytes += o.stack_reserved_bytes;
  stacks_live += o.stacks_live;
  workers += o.workers;
  memory_used_bytes += o.memory_used_bytes;
  memory_limit_bytes += o.memory_limit_bytes;
}

void register_source(const Source* s) noexcept {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  try {
    r.sources.push_back(s);
  } catch (...) {
    // Out of memory: the runtime runs unobserved rather than not at all.
  }
}

void unregister_source(const Source* s) noexcept {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  auto it = std::find(r.sources.begin(), r.sources.end(), s);
  if (it == r.sources.end()) return;
  RuntimeTotals last;
  s->collect(last);
  r.retired_runtimes.add_monotonic(last);
  r.sources.erase(it);
}

void collect(Totals& shards, RuntimeTotals& runtimes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  shards = r.retired;
  for (const Shard* s = r.shards; s != nullptr; s = s->next) fold(shards, *s);
  runtimes = r.retired_runtimes;
  for (const Source* s : r.sources) {
    RuntimeTotals t;
    s->collect(t);
    runtimes.add_all(t);
  }
}

}  // namespace weft::detail::obs
