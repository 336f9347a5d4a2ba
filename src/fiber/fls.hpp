// Fiber-local storage: the per-fiber store behind weft::FiberLocal
// (include/weft/fls.hpp) and the hooks the scheduler calls.
//
// A LocalStore is a table of (key id, propagation, value cell) sorted by key
// id. Three kinds of holder own one:
//   * a fiber: Fiber::locals, null until the fiber first sets a value or is
//     spawned by a holder of copy/share values;
//   * a spawn_blocking task: TaskBase::locals(), installed as the blocking
//     thread's current store while the task runs;
//   * a plain thread: a thread_local pointer, destroyed at thread exit.
// fls.cpp explains the choices; docs/design/fiber-local-storage.md the whole.
//
// Hooks (the only FLS code in the scheduler; each is one line at its call
// site, and costs a null check when FLS is not used):
//   fls_inherit()         spawn / spawn_blocking: the child's store
//   fls_end(locals, task) fiber_entry: destroy a fiber's values on the fiber
//                         before complete() (so before join() returns)
//   BlockingLocals        blocking pool: install a task's store around run()
//   TaskBase::~TaskBase   a store that never reached a running fiber or task
//                         (failed spawn, fiber that could not get a stack)
#pragma once

#include <cstdint>
#include <exception>
#include <vector>

#include "weft/fls.hpp"

namespace weft::detail {

class TaskBase;

class LocalStore {
 public:
  LocalStore() = default;
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;
  /// Precondition: drained (a store with values left is only ever deleted
  /// after drain() gave up on a value that keeps coming back).
  ~LocalStore() = default;

  /// The cell bound to key, or nullptr.
  fls::Cell* find(std::uint64_t key) const noexcept;
  /// Binds key to cell and returns the cell it was bound to (or nullptr),
  /// for the caller to release once the store is consistent.
  /// @throws std::bad_alloc, with nothing changed (cell not taken).
  fls::Cell* exchange(std::uint64_t key, Propagation::Mode mode, fls::Cell* cell);
  /// Unbinds key; returns its cell (or nullptr) for the caller to release.
  fls::Cell* take(std::uint64_t key) noexcept;

  /// A store for a child of this one's holder: the copy and share values
  /// (copies made here, on the calling fiber), or nullptr if there are none.
  /// @throws what a copy constructor throws, std::bad_alloc (no store made).
  LocalStore* inherit() const;

  /// Destroys every value, the most recently created key's first, leaving
  /// the store in place meanwhile: a destructor may read values not yet
  /// destroyed, and a value it creates is destroyed in the next round (at
  /// most kRounds rounds; a value still coming back after that is leaked,
  /// with a message, as pthread keys do). Every destructor runs even if
  /// some throw; the first exception is returned, later ones reported.
  std::exception_ptr drain() noexcept;

  static constexpr int kRounds = 4;

 private:
  struct Slot {
    std::uint64_t key;
    fls::Cell* cell;  // null only while drain() runs: the value is being destroyed
    Propagation::Mode mode;
  };
  // Sorted by key. Keys are few per program, so a sorted vector (binary
  // search, contiguous) beats a hash map at every size that matters.
  std::vector<Slot> slots_;
};

/// Drops one holder's reference to cell; the last one destroys the value.
/// @throws what the value's destructor throws (the cell is freed).
void fls_release(fls::Cell* cell);

/// Reports an exception that a value's destructor threw and nobody can
/// receive, on stderr ("weft: a FiberLocal value's destructor threw ...").
void fls_report(const char* when, const std::exception_ptr& e) noexcept;

/// The store a fiber or spawn_blocking task spawned by the caller starts
/// with (see weft::Propagation), or nullptr. Runs on the spawning side;
/// may run copy constructors (which may throw, or even park the caller).
LocalStore* fls_inherit();

/// Destroys and frees a store that never ran; errors go to stderr.
void fls_destroy_store(LocalStore* store) noexcept;

/// Destroys the values of a fiber or blocking task that has finished
/// running (on that fiber or thread), storing a destructor's exception as
/// the task's error if it has none (reported on stderr otherwise).
void fls_end_slow(LocalStore*& locals, TaskBase* task) noexcept;
inline void fls_end(LocalStore*& locals, TaskBase* task) noexcept {
  if (locals != nullptr) fls_end_slow(locals, task);
}

/// Makes a spawn_blocking task's store the current one of the calling
/// (blocking pool) thread while the task runs: construct it before run(),
/// call end() after run() and before complete().
class BlockingLocals {
 public:
  explicit BlockingLocals(TaskBase* task) noexcept;
  ~BlockingLocals();
  BlockingLocals(const BlockingLocals&) = delete;
  BlockingLocals& operator=(const BlockingLocals&) = delete;
  /// Destroys the task's values (as fls_end) and restores the thread's own store.
  void end() noexcept;

 private:
  TaskBase* task_;
  LocalStore** saved_;
  bool ended_ = false;
};

}  // namespace weft::detail
