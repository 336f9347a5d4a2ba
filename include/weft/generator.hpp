// Stackful generators: a body that runs on a stack of its own and hands
// values to whoever resumes it. No scheduler is involved: the caller drives
// the generator (resume/yield), from a fiber or from a plain thread.
//
//   weft::Generator<int> g([](weft::Yield<int>& yield) {
//     for (int i = 0; i < 3; ++i) yield(i);
//   });
//   for (int v : g) std::printf("%d\n", v);  // 0 1 2
//
// The model is the asymmetric stackful coroutine of de Moura & Ierusalimschy,
// "Revisiting Coroutines" (TOPLAS 2009), as in Lua's coroutine.resume /
// coroutine.yield and the OmniLisp seed's fiber/resume/yield: resume() runs
// the body until it yields or returns, and a yield always goes back to the
// resumer. Because the body has its own stack, it may yield from any depth of
// ordinary (non-coroutine) function calls. Destroying a suspended generator
// unwinds its stack by throwing weft::GeneratorExit from the pending yield
// (Boost.Context's forced_unwind, Python's GeneratorExit). The iterator
// interface follows C++23 std::generator (P2502). Design notes:
// docs/design/generators.md.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace weft {

/// Per-generator options.
struct GeneratorOptions {
  /// Default usable stack size: 256 KiB, like a fiber's. Reserved with
  /// MAP_NORESERVE: only the pages the body touches cost memory.
  static constexpr std::size_t kDefaultStackSize = 256 * 1024;

  /// Usable stack bytes (rounded up to pages), 16 KiB..1 GiB; otherwise the
  /// constructor throws std::invalid_argument.
  std::size_t stack_size = kDefaultStackSize;
  /// A guard page below the stack, so that an overflow faults instead of
  /// corrupting memory (MADV_GUARD_INSTALL, or PROT_NONE on kernels older
  /// than 6.13; docs/design/fibers-and-stacks.md). Overflowing a guarded
  /// generator stack kills the process with SIGSEGV; inside a fiber it is
  /// reported first ("weft: stack overflow in a generator driven by fiber
  /// <id> '<name>'"). false saves a kernel mapping on old kernels; an overflow
  /// then corrupts whatever lies below the stack.
  bool guard_page = true;
};

namespace detail {
class GeneratorCore;
}

/// Thrown from a suspended generator's pending yield when the generator is
/// destroyed, so that the body's stack unwinds and the destructors of its
/// locals run. Not a std::exception: `catch (const std::exception&)` does not
/// see it. A body that catches everything must rethrow it:
///
///   try { ... yield(x); ... }
///   catch (const weft::GeneratorExit&) { throw; }
///   catch (...) { /* handle the rest */ }
///
/// What happens when a body does not let it through: if the body then
/// returns, the generator simply finishes (its destructors have run); if it
/// throws another exception instead, that exception is discarded (it cannot
/// leave a destructor); if it yields again, the process is terminated with a
/// message (the generator could otherwise never be destroyed).
/// Only weft constructs it.
class GeneratorExit final {
 public:
  /// "weft::GeneratorExit".
  const char* what() const noexcept { return "weft::GeneratorExit"; }

 private:
  GeneratorExit() noexcept = default;
  friend class detail::GeneratorCore;
};

template <class T>
class Yield;
template <class T>
class Generator;

namespace detail {

struct GeneratorImpl;

/// The type-erased engine under Generator<T> (src/gen/generator.cpp): owns a
/// generator's stack and context. Movable handle, one pointer. Not for direct
/// use; its rules are Generator's.
class GeneratorCore {
 public:
  /// The body: runs on the generator's stack, receives `arg`. May throw.
  using Body = void (*)(void* arg);

  GeneratorCore() noexcept = default;
  /// Maps the stack and prepares the context; the body does not start yet.
  /// @throws std::invalid_argument for a stack size out of range;
  /// std::system_error(ENOMEM) when no stack can be mapped (address space or
  /// vm.max_map_count; the message names the remedy); std::bad_alloc.
  GeneratorCore(const GeneratorOptions& opts, Body body, void* arg);
  GeneratorCore(GeneratorCore&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
  GeneratorCore& operator=(GeneratorCore&& other) noexcept {
    if (this != &other) {
      reset();
      impl_ = std::exchange(other.impl_, nullptr);
    }
    return *this;
  }
  GeneratorCore(const GeneratorCore&) = delete;
  GeneratorCore& operator=(const GeneratorCore&) = delete;
  ~GeneratorCore() { reset(); }

  /// Runs the body until it yields (true) or ends (false). An empty or
  /// finished core returns false. Rethrows the exception the body ended with.
  /// @throws std::logic_error if the generator is running (resumed from its
  /// own body).
  bool resume() { return impl_ != nullptr && prepare_resume(impl_) && switch_context(impl_, true); }
  /// True when empty or the body has ended.
  bool done() const noexcept;
  /// Unwinds a suspended body (GeneratorExit), then frees the stack. Empty
  /// afterwards. Fatal error if the generator is running.
  void reset() noexcept;
  GeneratorImpl* handle() const noexcept { return impl_; }

  /// Suspends the running generator `g` back to its resumer; returns when it
  /// is resumed. Must run on g's own stack.
  /// @throws GeneratorExit when g is being destroyed; std::logic_error when
  /// called outside g's body.
  static void suspend(GeneratorImpl* g) {
    prepare_yield(g);
    (void)switch_context(g, false);
  }

 private:
  // Checks and bookkeeping before a switch. prepare_resume returns false
  // when there is nothing to run (finished).
  static bool prepare_resume(GeneratorImpl* g);
  static void prepare_yield(GeneratorImpl* g);
  // The one function both directions switch through (resuming: resumer ->
  // body; else body -> resumer), called from these inline functions so that
  // only its own return lands on different code on the two sides of a
  // switch: the CPU's return predictor then misses once per switch
  // (src/gen/generator.cpp).
  static bool switch_context(GeneratorImpl* g, bool resuming);
  GeneratorImpl* impl_ = nullptr;
};

/// Where a yield leaves its value: the address of the yielded object, which
/// lives in the body's (suspended) frame until the next resume.
template <class T>
struct GeneratorSlot {
  std::remove_reference_t<T>* current = nullptr;
  GeneratorImpl* core = nullptr;
};

template <class T>
struct GeneratorFrameBase {
  GeneratorSlot<T> slot;
  virtual ~GeneratorFrameBase() = default;
};

/// The body's closure and the value slot: one heap allocation per generator.
template <class T, class F>
struct GeneratorFrame final : GeneratorFrameBase<T> {
  F fn;
  template <class G>
  explicit GeneratorFrame(G&& g) : fn(std::forward<G>(g)) {}
  static void run(void* arg);
};

}  // namespace detail

/// The yield operation handed to a generator's body: `yield(v)` makes v the
/// generator's current value and suspends the body until the next resume.
/// Callable only from that body (any depth of calls below it); anywhere else
/// it throws std::logic_error. Not copyable; pass it down by reference.
/// A cancel scope the body opens (weft::scope, shield, move_on_after, ...)
/// must be closed before the body yields, since the resumer's code would
/// otherwise run inside it: yield throws std::logic_error then. Blocking
/// calls in the body are cancellation points of the driving fiber.
///
/// For an object type T, `yield(rvalue)` hands out the object itself without
/// a copy (the resumer may move from it: next() does) and `yield(lvalue)`
/// hands out a copy, so the body's variable is never moved from behind its
/// back. For T = U&, `yield(u)` hands out a reference to u.
///
/// @throws GeneratorExit from the yield when the generator is destroyed while
/// suspended there (let it propagate; see GeneratorExit).
template <class T>
class Yield {
 public:
  Yield(const Yield&) = delete;
  Yield& operator=(const Yield&) = delete;

  /// Yields v (moved) to the consumer and parks until it asks for the next value.
  void operator()(T&& v) requires(std::is_object_v<T>) {
    slot_->current = std::addressof(v);
    detail::GeneratorCore::suspend(slot_->core);
  }
  /// Yields a copy of v, as above.
  void operator()(const T& v) requires(std::is_object_v<T>&& std::copy_constructible<T>) {
    T copy(v);
    slot_->current = std::addressof(copy);
    detail::GeneratorCore::suspend(slot_->core);
  }
  /// Yields the reference v (a Generator<T&>), as above.
  void operator()(T v) requires(std::is_lvalue_reference_v<T>) {
    slot_->current = std::addressof(v);
    detail::GeneratorCore::suspend(slot_->core);
  }

 private:
  explicit Yield(detail::GeneratorSlot<T>* slot) noexcept : slot_(slot) {}
  template <class, class>
  friend struct detail::GeneratorFrame;
  detail::GeneratorSlot<T>* slot_;
};

/// A stackful generator of values of type T (an object type, possibly
/// move-only or const, or an lvalue reference type U&). Move-only.
///
/// The body `fn(Yield<T>&)` runs on the generator's own stack (an mmap'ed
/// stack with a guard page, GeneratorOptions), only while someone resumes the
/// generator, on the resumer's thread. It starts at the first resume, not at
/// construction.
///
/// Exceptions: an exception that leaves the body propagates to the resumer
/// (out of resume(), next(), begin() or the iterator's ++), and the
/// generator is done afterwards. Each context has its own C++ exception
/// state: a body suspended inside a catch block, or an exception in flight
/// in it, never shows in the resumer's std::current_exception() or
/// std::uncaught_exceptions(), and the other way round.
///
/// Destruction (or move-assignment over it) of a suspended generator resumes
/// it one last time with GeneratorExit thrown from its pending yield, so the
/// destructors of the body's locals run; see GeneratorExit for a body that
/// swallows it. A generator that never started is destroyed without running
/// its body.
///
/// Thread-safety: a generator may be resumed from different threads and
/// fibers over time, never concurrently (the caller orders the hand-over, as
/// for any non-thread-safe object; a resume from within its own body throws
/// std::logic_error). A body resumed from another thread than last time
/// continues on that thread: like a fiber's, it must not keep a pointer to
/// thread_local state (errno included) or a pthread_self() value across a
/// yield (DESIGN.md, TLS hazard).
///
/// Blocking inside the body: when a fiber drives the generator, the body may
/// call any weft blocking operation (sleep_for, channel and sync waits,
/// join, I/O, this_fiber::yield). It parks the driving fiber together with
/// the generator's stack; the fiber may resume on another worker, and the
/// body with it. this_fiber::* inside the body refers to the driving fiber.
/// When a plain thread drives it, those operations block that thread, as
/// they do for any plain-thread caller.
template <class T>
class [[nodiscard]] Generator {
  static_assert(std::is_object_v<T> || std::is_lvalue_reference_v<T>,
                "weft::Generator<T>: T must be an object type or an lvalue reference");
  static_assert(!std::is_array_v<T>, "weft::Generator<T>: T must not be an array");

 public:
  using value_type = std::remove_cvref_t<T>;
  /// What value() and the iterator's * return: T& for an object type, U& for
  /// T = U&.
  using reference = std::add_lvalue_reference_t<T>;

  /// Input iterator over the remaining values (std::input_iterator; the
  /// generator is a std::ranges::input_range). ++ resumes the body; equal to
  /// end() once the body has ended. Valid while the generator is alive and
  /// not moved.
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = Generator::value_type;
    using difference_type = std::ptrdiff_t;
    using reference = Generator::reference;

    iterator() noexcept = default;
    /// The current value. @throws std::logic_error at the end.
    reference operator*() const { return gen_->value(); }
    /// Resumes the body for the next value; rethrows its exception.
    iterator& operator++() {
      gen_->resume();
      return *this;
    }
    /// As prefix ++.
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.at_end();
    }

   private:
    explicit iterator(Generator* g) noexcept : gen_(g) {}
    bool at_end() const noexcept { return gen_ == nullptr || !gen_->has_value_; }
    friend class Generator;
    Generator* gen_ = nullptr;
  };

  /// An empty generator: done(), yields nothing.
  Generator() noexcept = default;

  /// Creates a suspended generator that will run `fn(yield)` on its own
  /// stack; fn (decay-copied or moved into the generator) runs at the first
  /// resume. Its return value, if any, is ignored.
  /// @throws std::invalid_argument for a stack size out of range;
  /// std::system_error(ENOMEM) when no stack can be mapped (the message names
  /// vm.max_map_count and the remedies); std::bad_alloc; whatever copying or
  /// moving fn throws.
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, Generator> &&
           std::invocable<std::decay_t<F>&,
                          Yield<T>&>) explicit Generator(F&& fn, const GeneratorOptions& opts = {})
      : frame_(std::make_unique<detail::GeneratorFrame<T, std::decay_t<F>>>(std::forward<F>(fn))),
        core_(opts, &detail::GeneratorFrame<T, std::decay_t<F>>::run, frame_.get()) {
    frame_->slot.core = core_.handle();
  }

  /// Takes over other's state (suspended body included; no resume happens);
  /// other becomes empty.
  Generator(Generator&& other) noexcept
      : frame_(std::move(other.frame_)),
        core_(std::move(other.core_)),
        has_value_(std::exchange(other.has_value_, false)) {}

  /// Destroys this generator's state (unwinding a suspended body, as the
  /// destructor does), then takes over other's.
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      core_ = std::move(other.core_);  // unwinds our body while frame_ lives
      frame_ = std::move(other.frame_);
      has_value_ = std::exchange(other.has_value_, false);
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  /// Unwinds a suspended body (GeneratorExit from its yield; destructors of
  /// its locals run), then frees the stack. Never throws. Destroying a
  /// generator from its own body (while it runs) is a fatal error.
  ~Generator() = default;

  /// Runs the body until its next yield (returns true: value() is that value)
  /// or until it ends (returns false). A finished or empty generator returns
  /// false at once.
  /// @throws whatever the body threw (the generator is done afterwards);
  /// std::logic_error if called from the generator's own body.
  bool resume() {
    has_value_ = false;
    has_value_ = core_.resume();
    return has_value_;
  }

  /// The value of the last yield, until the next resume (an lvalue the
  /// caller may modify or move from: it is the body's yielded temporary or a
  /// copy, never the body's named variable, unless T is a reference).
  /// @throws std::logic_error when there is none: before the first resume,
  /// after the body ended, or after next() took it.
  reference value() const {
    if (!has_value_) throw std::logic_error("weft: Generator::value() without a current value");
    return static_cast<reference>(*frame_->slot.current);
  }

  /// Resumes and moves the yielded value out; std::nullopt once the body has
  /// ended. Only for object types T (use resume()/value() for references).
  /// @throws like resume().
  std::optional<value_type> next() requires(std::is_object_v<T>) {
    if (!resume()) return std::nullopt;
    has_value_ = false;
    return std::optional<value_type>(std::move(*frame_->slot.current));
  }

  /// True when the body has ended (returned or threw) or the generator is
  /// empty. False before the first resume, and after the last value was
  /// yielded until a resume finds that the body returns.
  bool done() const noexcept { return core_.done(); }

  /// An iterator at the current value: resumes the body first unless a
  /// yielded value is still unconsumed (so iteration continues where next()
  /// or an earlier loop stopped, and a fresh generator starts).
  /// @throws like resume().
  iterator begin() {
    if (!has_value_) resume();
    return iterator(this);
  }
  /// The end sentinel.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  // Order matters: core_ is destroyed (the body unwound) before frame_ (the
  // closure and value slot the body uses).
  std::unique_ptr<detail::GeneratorFrameBase<T>> frame_;
  detail::GeneratorCore core_;
  bool has_value_ = false;  // value() is valid
};

/// Factory: `auto g = weft::generator<int>([](weft::Yield<int>& y) { ... });`
/// Same as the Generator constructor, same exceptions.
template <class T, class F>
requires std::invocable < std::decay_t<F>
&, Yield<T>& > Generator<T> generator(F&& fn, const GeneratorOptions& opts = {}) {
  return Generator<T>(std::forward<F>(fn), opts);
}

template <class T, class F>
void detail::GeneratorFrame<T, F>::run(void* arg) {
  auto* self = static_cast<GeneratorFrame*>(arg);
  Yield<T> yield(&self->slot);
  std::invoke(self->fn, yield);
}

}  // namespace weft
