// Fiber-local storage: weft::FiberLocal<T>, a thread_local whose value
// belongs to the running fiber instead of the OS thread.
//
//   weft::FiberLocal<std::string> request_id{weft::Propagation::copy};
//
//   rt.block_on([&] {
//     request_id.set("req-42");
//     auto h = weft::spawn([&] { log(request_id.get()); });    // "req-42" (a copy)
//     auto b = weft::spawn_blocking([&] { log(request_id.get()); });  // "req-42" too
//     h.join();
//     b.join();
//   });
//
// A FiberLocal object is a *key*; each fiber holds its own value for it, made
// on first use. Where the caller is not a fiber the value belongs to:
//   * a spawn_blocking task: the task (it inherits from its spawner like a
//     fiber does, and its values die when it ends);
//   * any other thread: the thread (plain thread_local semantics; the values
//     die at thread exit).
// A Generator body uses the values of whoever resumes it (fiber or thread).
// The key's Propagation says what a fiber or spawn_blocking task starts with
// (see the enum). A fiber's values are destroyed on that fiber when its
// function has returned, before its JoinHandle's join() returns.
//
// Models: pthread keys (values outlive their key; destructors run at thread
// exit in rounds), folly's FiberLocal and Boost.Fiber's fiber_specific_ptr
// (per-fiber values), Go's context.Context and Java's InheritableThreadLocal
// (values that flow from a task to the tasks it starts). Design notes:
// docs/design/fiber-local-storage.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace weft {

/// What a fiber (or spawn_blocking task) starts with for a key, given the
/// value its spawner holds at the moment of the spawn. The spawner is the
/// fiber, spawn_blocking task or plain thread that calls weft::spawn,
/// Runtime::spawn, Runtime::block_on or weft::spawn_blocking. Values set by
/// the spawner after the spawn are never seen by the child, and vice versa.
///
/// Spelled like an enum (`FiberLocal<T> key{Propagation::copy}`), but each
/// constant is a tag of its own type (as std::execution::par is), so that a
/// copy key of a non-copyable T is a compile error (a static_assert), and the
/// constants pass through std::make_unique, emplace() and the like. Each tag
/// converts to the enum Propagation::Mode, the runtime value
/// (FiberLocal::propagation(), and a FiberLocal constructor for modes chosen
/// at run time).
struct Propagation {
  /// How a value passes from a spawner to the fiber it spawns.
  enum class Mode : std::uint8_t {
    /// The child starts without a value (get() makes a default one). Like
    /// thread_local.
    none,
    /// The child starts with its own copy of the spawner's value, made by
    /// T's copy constructor on the spawning side, during the spawn call
    /// (which rethrows what the copy throws, with nothing spawned). Parent
    /// and child then change their values independently. Requires a
    /// copy-constructible T.
    copy,
    /// The child refers to the same object as its spawner (reference
    /// counted: the object dies with the last fiber, task or thread holding
    /// it, on that one). Changes through get() are seen by every holder;
    /// set(), emplace() and reset() only rebind the caller. Concurrent access
    /// to the shared object from several fibers is the user's to synchronise
    /// (they may run in parallel on different workers).
    share,
  };
  /// The type of each constant below.
  template <Mode M>
  struct Tag {
    /// The Mode this tag stands for.
    constexpr operator Mode() const noexcept { return M; }  // NOLINT: implicit on purpose
  };
  /// Mode::none as a compile-time tag.
  static constexpr Tag<Mode::none> none{};
  /// Mode::copy as a compile-time tag.
  static constexpr Tag<Mode::copy> copy{};
  /// Mode::share as a compile-time tag.
  static constexpr Tag<Mode::share> share{};
};

namespace detail::fls {

/// One value with its type-erased destructor and copier, so that a value
/// outlives its key. Reference counted for Propagation::share.
class Cell {
 public:
  Cell() = default;
  Cell(const Cell&) = delete;
  Cell& operator=(const Cell&) = delete;
  // noexcept(false): a value's destructor may throw (the runtime catches it).
  virtual ~Cell() noexcept(false) = default;
  /// A new cell holding a copy of the value. Called only for copy keys.
  virtual Cell* clone() const = 0;

  // Holders: the stores (fiber, task, thread) that bind this cell. Above 1
  // only for share keys (and, during a spawn, for copy keys whose copy is
  // being made). See release() in src/fiber/fls.cpp for the orderings.
  std::atomic<std::uint32_t> refs{1};
};

/// A default-value factory for FiberLocal<T>.
template <class F, class T>
concept FactoryOf = std::is_invocable_r_v<T, F&>;

/// Tag: make the value from the result of a call (no move: guaranteed elision).
struct FromCall {};

template <class T>
class TypedCell final : public Cell {
 public:
  template <class... A>
  explicit TypedCell(std::in_place_t, A&&... args) : value(std::forward<A>(args)...) {}
  template <class F>
  TypedCell(FromCall, F& make) : value(make()) {}
  Cell* clone() const override {
    if constexpr (std::is_copy_constructible_v<T>) {
      return new TypedCell(std::in_place, value);
    } else {
      // Unreachable: a key of a non-copyable T cannot be a copy key
      // (FiberLocal's constructors). Null makes the spawn throw.
      return nullptr;
    }
  }
  T value;
};

// Library side (src/fiber/fls.cpp). "The caller's store" is the running
// fiber's, else the running spawn_blocking task's, else the thread's.

/// A fresh key id: process-wide, never 0, never reused.
std::uint64_t new_key() noexcept;
/// The caller's cell for key, or nullptr. Never allocates.
Cell* find(std::uint64_t key) noexcept;
/// Binds key to cell in the caller's store (made on first use), taking
/// ownership of cell even when it throws; then drops the previous binding.
/// @throws std::bad_alloc (nothing changed, cell destroyed); what the
/// previous value's destructor throws (cell is bound).
void install(std::uint64_t key, Propagation::Mode mode, Cell* cell);
/// Unbinds key in the caller's store; returns whether it was bound.
/// @throws what the value's destructor throws (it is unbound).
bool remove(std::uint64_t key);
/// remove() for ~FiberLocal: a throwing destructor is reported on stderr.
void remove_noexcept(std::uint64_t key) noexcept;

}  // namespace detail::fls

/// A fiber-local variable of type T (see the top of this file).
///
/// Every member acts on the caller's own value (fiber, spawn_blocking task,
/// or thread, as above) and may be called concurrently from any number of
/// fibers and threads: each touches only its own store. A value reached
/// through get() of a share key may be reached by other fibers too (see
/// Propagation::share). References returned by get()/try_get()/emplace()
/// stay valid until the caller's value is replaced or reset, or the caller
/// ends; they may be kept across parks, yields and migrations to other
/// workers (the value lives on the heap, not in thread-local memory).
///
/// Costs: get()/try_get()/has_value() are an out-of-line call, a few loads
/// and a binary search over the keys the caller holds values for (no
/// allocation, no atomic operation once the value exists). The first value a
/// fiber sets allocates its store (one allocation for the store and one for
/// its key table); each value is one allocation. A spawn copies the
/// spawner's copy values and takes a reference on its share values; a
/// spawner holding no copy/share values pays one null check. A fiber that
/// never uses FiberLocal pays one null check when it ends.
///
/// Lifetime: a key may be destroyed while fibers still hold values for it;
/// those values are destroyed when their holders end, as usual (each value
/// carries its own destructor). Key ids are never reused, so a new key never
/// sees a value of an old one, even at the same address. The key must
/// outlive every call on it.
///
/// T: an object type (not an array, not cv-qualified), destructible.
/// Move-only types work with Propagation::none and Propagation::share.
template <class T>
class FiberLocal {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> &&
                    std::is_same_v<T, std::remove_cv_t<T>> && std::is_destructible_v<T>,
                "weft::FiberLocal<T>: T must be a destructible, non-const, non-array object type");
  using Cell = detail::fls::TypedCell<T>;

 public:
  /// A key with Propagation::none. Values are made by T's default
  /// constructor when get() finds none. Never throws, allocates nothing.
  FiberLocal() noexcept : FiberLocal(Propagation::none) {}

  /// A key with propagation mode M, e.g. `FiberLocal<T> key{Propagation::copy}`.
  /// Values are made by T's default constructor when get() finds none.
  /// Propagation::copy with a non-copyable T does not compile. Never throws.
  template <Propagation::Mode M>
  explicit FiberLocal(Propagation::Tag<M>) noexcept : id_(detail::fls::new_key()), mode_(M) {
    static_assert(M != Propagation::Mode::copy || std::is_copy_constructible_v<T>,
                  "weft::FiberLocal<T>: Propagation::copy needs a copy-constructible T "
                  "(use Propagation::share to hand children the same object, or "
                  "Propagation::none)");
  }

  /// A key whose mode is chosen at run time (copy-constructible T only).
  /// @throws std::invalid_argument if mode is not one of Propagation::Mode's.
  explicit FiberLocal(Propagation::Mode mode) requires std::is_copy_constructible_v<T>
      : id_(detail::fls::new_key()), mode_(checked(mode)) {}

  /// A key whose missing values get() makes with factory() instead of T{}
  /// (called on the caller's fiber or thread; possibly concurrently from
  /// several threads, so it must be safe to call that way). factory is
  /// copied into a std::function. Modes as above.
  /// @throws what copying factory throws.
  template <Propagation::Mode M, detail::fls::FactoryOf<T> F>
  FiberLocal(Propagation::Tag<M> mode, F factory) : FiberLocal(mode) {
    factory_ = std::move(factory);
  }
  /// Same with a mode chosen at run time (copy-constructible T only).
  template <detail::fls::FactoryOf<T> F>
  FiberLocal(Propagation::Mode mode, F factory) requires std::is_copy_constructible_v<T>
      : FiberLocal(mode) {
    factory_ = std::move(factory);
  }
  /// Same with Propagation::none.
  template <detail::fls::FactoryOf<T> F>
  explicit FiberLocal(F factory) : FiberLocal(Propagation::none, std::move(factory)) {}

  /// Destroys the caller's value for this key, if any (values of other
  /// fibers, tasks and threads stay until their holders end). A throwing
  /// destructor is reported on stderr, not propagated.
  ~FiberLocal() { detail::fls::remove_noexcept(id_); }

  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  /// The caller's value, made first (by the factory, or T{}) if it has none.
  /// @throws what the factory or T's constructor throws, std::bad_alloc;
  /// std::logic_error if there is no value, no factory and T is not default
  /// constructible. Nothing changes when it throws.
  T& get() const {
    if (detail::fls::Cell* c = detail::fls::find(id_)) return static_cast<Cell*>(c)->value;
    return make_default();
  }

  /// The caller's value, or nullptr if it has none. Never allocates.
  T* try_get() const noexcept {
    detail::fls::Cell* c = detail::fls::find(id_);
    return c != nullptr ? &static_cast<Cell*>(c)->value : nullptr;
  }

  /// True if the caller has a value for this key. Never allocates.
  bool has_value() const noexcept { return detail::fls::find(id_) != nullptr; }

  /// Replaces the caller's value with `value` (moved in). The previous value,
  /// if any, is destroyed after the new one is in place (for a share key:
  /// the caller stops sharing it, and it dies only with its last holder).
  /// @throws std::bad_alloc (nothing changed); what T's move constructor
  /// throws (nothing changed); what the previous value's destructor throws
  /// (the new value is in place).
  void set(T value) { emplace(std::move(value)); }

  /// Replaces the caller's value with T(args...) and returns it. Same
  /// guarantees as set().
  template <class... A>
  T& emplace(A&&... args) {
    auto* cell = new Cell(std::in_place, std::forward<A>(args)...);
    T& v = cell->value;
    detail::fls::install(id_, mode_, cell);
    return v;
  }

  /// Destroys the caller's value (a share key: drops the caller's reference);
  /// the next get() makes a fresh one. No effect without a value.
  /// @throws what the value's destructor throws (the value is gone).
  void reset() { detail::fls::remove(id_); }

  /// This key's propagation mode (compares equal to Propagation::none etc.).
  Propagation::Mode propagation() const noexcept { return mode_; }

 private:
  static Propagation::Mode checked(Propagation::Mode m) {
    if (m != Propagation::none && m != Propagation::copy && m != Propagation::share) {
      throw std::invalid_argument("weft::FiberLocal: not a Propagation::Mode");
    }
    return m;
  }

  T& make_default() const {
    Cell* cell;
    if (factory_) {
      cell = new Cell(detail::fls::FromCall{}, factory_);
    } else if constexpr (std::is_default_constructible_v<T>) {
      cell = new Cell(std::in_place);
    } else {
      throw std::logic_error(
          "weft::FiberLocal::get: no value, no factory, and T is not default constructible");
    }
    T& v = cell->value;
    detail::fls::install(id_, mode_, cell);
    return v;
  }

  const std::uint64_t id_;
  const Propagation::Mode mode_;
  std::function<T()> factory_;
};

}  // namespace weft
