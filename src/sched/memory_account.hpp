// MemoryAccount: the runtime's own memory, counted for Config::memory_limit.
//
// Problem. A spawn storm grows the runtime's memory (stacks, control blocks)
// faster than anything can react after the fact, so the limit must be
// checked on the spawn path itself; and that path costs ~100 ns in total,
// so the check must not be a read-modify-write of one word shared by every
// worker (a cache line bouncing between cores on every spawn).
//
// Rejected: one global atomic counter (contended on every spawn and every
// fiber end); summing per-worker counters on every spawn (O(workers) remote
// cache lines per spawn); checking only from the monitor thread (a storm
// spawns ~5,000 fibers, over a GiB of stack reservations, in one 5 ms
// monitor period).
//
// Chosen: the batched per-CPU counter of the Linux kernel (percpu_counter)
// and Go's per-P page cache (mcache refills from mcentral). A global
// `charged_` counts bytes handed out; each worker holds a credit of bytes
// charged to it but not yet used (Worker::memory_credit), taken from the
// global in chunks. A charge on a worker with enough credit is a load and a
// store of its own credit; a release adds to it and gives the excess back
// above two chunks. Only a refill (one RMW per chunk, a chunk being four
// default stacks) and a charge from a thread that is not a worker touch
// `charged_`. The limit is checked on every refill against `charged_`, so
// the memory in use never exceeds the limit by the bytes that may not be
// refused (stacks entering a worker's cache): usage <= charged_ <= limit
// for what spawn admits. In return a refusal can come up to two chunks per
// other busy worker early (their unused credit; a worker gives all of it
// back when it runs out of work: return_credit), and usage() (charged_ minus
// the credits, summed at read time) is exact only while nothing runs.
//
// Refusal has hysteresis: once a spawn is refused, spawns are refused
// until usage() falls below the low-water mark (90 % of the limit), so a
// server under pressure does not flap at the limit. Pressure callbacks fire
// once per upward crossing of limit x memory_pressure_fraction, judged on
// `charged_` at refills and give-backs, and re-arm when it falls below.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace weft::detail {

/// See the top of this file. Thread-safe; the per-worker credits are
/// passed in by their owners.
class MemoryAccount {
 public:
  /// A worker's credit: bytes charged to `charged_` that the worker has not
  /// used yet. Written only by its owner (relaxed load + store, no RMW);
  /// read by usage() from any thread (relaxed: a statistic).
  using Credit = std::atomic<std::int64_t>;

  /// `limit`: bytes, 0 = off; `pressure_ppm`: the pressure fraction in
  /// parts per million; `chunk`: bytes a refill takes (> 0).
  MemoryAccount(std::uint64_t limit, std::int64_t pressure_ppm, std::int64_t chunk) noexcept
      : limit_(limit), pressure_ppm_(pressure_ppm), chunk_(chunk) {}

  /// Charges n bytes that may be refused (a spawn). `credit` is the
  /// calling worker's, or nullptr on any other thread. True if admitted;
  /// false if the limit is hit or refusal is in force (nothing charged),
  /// after which the caller trims and asks again with retry_after_trim().
  bool try_charge(Credit* credit, std::int64_t n) noexcept {
    if (credit != nullptr && !refusing_.load(std::memory_order_relaxed)) {
      const std::int64_t c = credit->load(std::memory_order_relaxed);
      if (c >= n) {
        credit->store(c - n, std::memory_order_relaxed);
        return true;
      }
    }
    return charge_slow(credit, n, true);
  }

  /// Charges n bytes that cannot be refused (a stack entering a cache).
  void charge(Credit* credit, std::int64_t n) noexcept {
    if (credit != nullptr) {
      const std::int64_t c = credit->load(std::memory_order_relaxed);
      if (c >= n) {
        credit->store(c - n, std::memory_order_relaxed);
        return;
      }
    }
    charge_slow(credit, n, false);
  }

  /// Releases n bytes charged before (by any thread).
  void release(Credit* credit, std::int64_t n) noexcept {
    if (credit == nullptr) {
      give_back(n);
      return;
    }
    const std::int64_t c = credit->load(std::memory_order_relaxed) + n;
    if (c <= 2 * chunk_) {
      credit->store(c, std::memory_order_relaxed);
      return;
    }
    credit->store(chunk_, std::memory_order_relaxed);
    give_back(c - chunk_);
  }

  /// Gives the whole of a worker's credit back; its owner calls this when
  /// it runs out of work. Without it an idle worker kept up to two chunks
  /// charged for ever, which every other thread's refill counts against the
  /// limit: with (workers x two chunks) near the limit, spawns stayed
  /// refused after the load was gone, with nothing in use.
  void return_credit(Credit* credit) noexcept {
    const std::int64_t c = credit->load(std::memory_order_relaxed);
    if (c == 0) return;
    credit->store(0, std::memory_order_relaxed);
    give_back(c);
  }

  /// Bytes in use: charged_ minus the credits of `credits` (every worker's).
  std::int64_t usage(const Credit* const* credits, std::size_t n) const noexcept;
  /// Bytes charged, credits included (>= usage()).
  std::int64_t charged() const noexcept { return charged_.load(std::memory_order_relaxed); }

  std::uint64_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
  /// Changes the limit (0 = off). A refusal in force ends, unless the
  /// bytes charged already pass the new limit: then refusal starts (the
  /// workers' credits, granted under the old limit, admit nothing more).
  /// Re-arms the pressure callbacks.
  void set_limit(std::uint64_t limit) noexcept;
  /// True while spawns are refused (until usage < 90 % of the limit).
  bool refusing() const noexcept { return refusing_.load(std::memory_order_relaxed); }
  /// Ends the refusal if usage (as given) is below the low-water mark;
  /// returns whether spawns are admitted now.
  bool end_refusal_if_below(std::int64_t usage) noexcept;
  /// Starts refusing; counts one refusal.
  void refuse() noexcept {
    refusing_.store(true, std::memory_order_relaxed);
    refusals_.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t refusals() const noexcept { return refusals_.load(std::memory_order_relaxed); }
  std::uint64_t trims() const noexcept { return trims_.load(std::memory_order_relaxed); }
  void count_trim() noexcept { trims_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t pressure_events() const noexcept {
    return pressure_events_.load(std::memory_order_relaxed);
  }

  /// Registers a pressure callback; returns its id (> 0). @throws std::bad_alloc.
  std::uint64_t add_callback(std::function<void(std::uint64_t usage, std::uint64_t limit)> fn);
  /// Removes it; false if no callback has that id. Waits for a call of it
  /// in progress on another thread to return.
  bool remove_callback(std::uint64_t id);

 private:
  bool charge_slow(Credit* credit, std::int64_t n, bool refusable) noexcept;
  void give_back(std::int64_t n) noexcept;
  /// Fires the callbacks if `charged` has just crossed the pressure mark
  /// upwards; re-arms them if it is below.
  void check_pressure(std::int64_t charged) noexcept;

  // charged_: every charge and release of every thread, with a worker's
  // credit moving in chunks. relaxed: a count; the limit check needs only
  // the RMW's atomicity (no two refills can both see room that is not
  // there), and no other data is published with it.
  alignas(64) std::atomic<std::int64_t> charged_{0};
  // Read on every spawn; written rarely (set_limit, refusal start and end):
  // its own cache line, apart from charged_'s RMWs. relaxed: lone flags and
  // tunables, re-read on every use.
  alignas(64) std::atomic<bool> refusing_{false};
  std::atomic<std::uint64_t> limit_;
  const std::int64_t pressure_ppm_;
  const std::int64_t chunk_;
  // True between an upward crossing of the pressure mark and the next fall
  // below it; the exchange to true picks the one thread that fires.
  std::atomic<bool> above_pressure_{false};
  std::atomic<std::uint64_t> refusals_{0};
  std::atomic<std::uint64_t> trims_{0};
  std::atomic<std::uint64_t> pressure_events_{0};

  // The callbacks, called under callbacks_mu_ (so that remove_callback
  // returns only when no call of the removed one is running).
  std::mutex callbacks_mu_;
  std::vector<std::pair<std::uint64_t, std::function<void(std::uint64_t, std::uint64_t)>>>
      callbacks_;              // guarded by callbacks_mu_
  std::uint64_t next_id_ = 1;  // guarded by callbacks_mu_
};

}  // namespace weft::detail
