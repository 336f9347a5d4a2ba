// weft gen layer: stackful generators driven by their caller.
//
// Problem. A generator is an asymmetric coroutine (de Moura & Ierusalimschy,
// "Revisiting Coroutines", 2009): resume() runs its body on a stack of its own
// until the body yields, and a yield always returns to whoever resumed it. No
// scheduler is involved, and the resumer may be a plain thread, a fiber, or
// another generator, a different one on each resume.
//
// Protocol. Two Contexts per generator: `self` (the body's stack) and
// `caller`, re-bound before every resume to whatever is running then.
// resume() switches caller -> self; a yield switches self -> caller; the
// body's end switches self -> caller for the last time (switch_to_final).
// Both directions go through one function with a single call to the switch
// (switch_context), which halves the return mispredictions of a round trip
// (see there).
// Context::switch_to already saves and restores the per-thread C++ exception
// globals at every switch (context.hpp), so a body suspended in a catch block
// and a resumer with an exception in flight never see each other's state.
//
// Destruction of a suspended generator: set `unwinding`, resume it; the
// pending yield sees the flag and throws GeneratorExit, which unwinds the
// body's frames (running the destructors of its locals) up to the entry
// function, which catches it. Boost.Context's forced_unwind does the same;
// the alternative, dropping the stack unwound, leaks whatever the body owns.
// A body that swallows GeneratorExit and yields again is a fatal error: it
// could never be destroyed, and resuming it forever is no better.
//
// Fibers. A fiber F that resumes a generator G keeps being the running fiber
// (Worker::current()) while G's body runs on G's stack. If the body parks
// (sleep, channel, mutex, I/O...), the worker saves the registers into
// F->ctx, which then points into G's stack; whoever resumes F later lands back
// in G's body, possibly on another worker, and the body's yield then returns
// to F's frame in resume(). That composes without any help, except for what
// the sanitizers and the overflow handler know about F->ctx: its stack bounds
// (ASan) and TSan fiber describe F's stack, not G's. So for as long as G
// runs, F->ctx carries G's sanitizer identity and F->generator_stack names
// G's stack; resume() restores both when G switches back (stack discipline,
// so nested generators compose). Rejected: forbidding parks inside a body (a
// fatal check in park): it would make generators useless around I/O, and the
// context switch is already correct for it.
//
// ASan needs the bounds of the stack it switches *to*. For `caller` those are
// not known statically (a fiber's stack, a thread's, another generator's);
// ASan itself reports the bounds of the stack a switch came from when it
// finishes, so the generator side records them into `caller` on every switch
// in (Context::switch_to(to, note), on_first_entry(note)).
//
// Stacks come from StackAllocator (guard page, MAP_NORESERVE) through a small
// per-thread cache of default-size stacks, so a generator in steady state
// costs no mmap. A finished body's stack goes back at once, not at
// destruction.
#include "weft/generator.hpp"

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/assert.hpp"
#include "base/sanitizers.hpp"
#include "context/context.hpp"
#include "fiber/fiber.hpp"
#include "fiber/stack.hpp"
#include "sched/current.hpp"

#if WEFT_ASAN
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

namespace weft::detail {

/// Generator lifecycle. Written only by the context that currently runs the
/// generator's control flow (the resumer, or the body while it runs), so no
/// atomics: handing a generator to another thread is the caller's
/// synchronization, like any non-thread-safe object.
///
///   created --resume--> running --yield--> suspended --resume--> running
///                          |                   |
///                          +--return/throw-----+--destroy (unwind)--> finished
enum class GenStatus : std::uint8_t {
  created,    // stack mapped, body not started
  running,    // the body runs (on some thread) between a resume and its yield
  suspended,  // the body waits in a yield
  finished,   // the body returned or threw; stack given back
};

struct GeneratorImpl {
  // ends[kCaller] is whoever resumed the generator last, ends[kSelf] the
  // body's context; switch_context picks them by index (no branch).
  static constexpr int kCaller = 0;
  static constexpr int kSelf = 1;
  Context ends[2];
  Context& caller() noexcept { return ends[kCaller]; }
  Context& self() noexcept { return ends[kSelf]; }
  Stack stack;
  GeneratorCore::Body body = nullptr;
  void* arg = nullptr;
  std::exception_ptr error;  // the body's exception, until resume() rethrows it
  GenStatus status = GenStatus::created;
  bool unwinding = false;  // set by destruction: the pending yield throws GeneratorExit
  bool cacheable = false;  // a default-size guarded stack: may go to the thread cache
  // Per resume, from prepare_resume to the switch back (a generator is never
  // resumed reentrantly, so one slot suffices): the driving fiber, the
  // sanitizer identity it lent to g's stack, and its previous generator_stack.
  Fiber* driver = nullptr;
  Context::SanitizerIdentity lent{};
  const Stack* outer_stack = nullptr;
  // The driving fiber's innermost cancel scope when it resumed us: the body
  // must be back in it when it yields (a scope it opened cannot stay open
  // across a yield, since the driver's code would then run inside it).
  const void* scope_at_resume = nullptr;
};

namespace {

constexpr std::size_t kMinStack = 16 * 1024;
constexpr std::size_t kMaxStack = std::size_t{1} << 30;

// Process-wide allocators, never destroyed: thread caches may outlive static
// destruction order. The budget against vm.max_map_count is separate from a
// runtime's allocator (each keeps 4096 mappings of headroom).
StackAllocator& allocator(bool guarded) {
  static StackAllocator* const with_guard = new StackAllocator(GuardMode::madvise);
  static StackAllocator* const without_guard = new StackAllocator(GuardMode::none);
  return guarded ? *with_guard : *without_guard;
}

void unpoison([[maybe_unused]] const Stack& s) noexcept {
#if WEFT_ASAN
  // A finished body's last frames (the entry and its final switch) never
  // return and leave their redzones poisoned.
  __asan_unpoison_memory_region(s.lo, s.usable_size());
#endif
}

// Per-thread cache of default-size guarded stacks. Owner-only; a generator
// destroyed on another thread than it was made on just fills that thread's
// cache. Fixed capacity, no allocation.
class ThreadStackCache {
 public:
  static constexpr int kCapacity = 16;
  ~ThreadStackCache();
  Stack take() noexcept { return n_ == 0 ? Stack{} : slots_[--n_]; }
  bool give(const Stack& s) noexcept {
    if (n_ == kCapacity) return false;
    slots_[n_++] = s;
    return true;
  }

 private:
  Stack slots_[kCapacity];
  int n_ = 0;
};

// Set once the thread's cache is destroyed (thread exit), so that a generator
// destroyed by a later thread_local destructor frees its stack directly.
thread_local bool tls_cache_gone = false;

ThreadStackCache::~ThreadStackCache() {
  tls_cache_gone = true;
  while (n_ > 0) {
    Stack s = slots_[--n_];
    allocator(true).release(s);
  }
}

// Out of line and impure (TLS hazard, DESIGN.md): a body that migrated with
// its fiber must reach the cache of the thread it runs on now.
[[gnu::noinline]] ThreadStackCache* thread_stack_cache() noexcept {
  asm volatile("" ::: "memory");
  if (tls_cache_gone) return nullptr;
  thread_local ThreadStackCache cache;
  return &cache;
}

Stack acquire_stack(std::size_t usable, bool cacheable, bool guarded) {
  if (cacheable) {
    if (ThreadStackCache* c = thread_stack_cache()) {
      Stack s = c->take();
      if (s) {
        unpoison(s);
        return s;
      }
    }
  }
  return allocator(guarded).allocate(usable);
}

void give_back(Stack& s, bool cacheable) noexcept {
  if (!s) return;
  unpoison(s);
  if (cacheable) {
    if (ThreadStackCache* c = thread_stack_cache(); c != nullptr && c->give(s)) {
      s = Stack{};
      return;
    }
  }
  allocator(s.guard != static_cast<std::uint8_t>(GuardMode::none)).release(s);
}

// First code on the generator's stack.
void generator_entry(void* arg) noexcept {
  auto* g = static_cast<GeneratorImpl*>(arg);
  Context::on_first_entry(g->caller());
  try {
    g->body(g->arg);
  } catch (const GeneratorExit&) {
    // Destruction unwound the body: the expected end.
  } catch (...) {
    // During destruction there is nobody to hand an exception to (the
    // destructor cannot throw): it is dropped, as documented.
    if (!g->unwinding) g->error = std::current_exception();
  }
  g->status = GenStatus::finished;
  g->self().switch_to_final(g->caller());
}

// After the final switch out of g: its TSan fiber and stack can go.
void release_stack(GeneratorImpl* g) noexcept {
  if (!g->stack) return;
  g->self().release();
  give_back(g->stack, g->cacheable);
}

// True when the calling frame lies on g's stack. The frame address, not a
// local's: under ASan's use-after-return detection locals live on a fake
// stack on the heap.
[[gnu::always_inline]] inline bool on_stack_of(const GeneratorImpl* g) noexcept {
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return sp >= reinterpret_cast<std::uintptr_t>(g->stack.lo) &&
         sp < reinterpret_cast<std::uintptr_t>(g->stack.hi);
}

}  // namespace

GeneratorCore::GeneratorCore(const GeneratorOptions& opts, Body body, void* arg) {
  if (opts.stack_size < kMinStack || opts.stack_size > kMaxStack) {
    throw std::invalid_argument("weft: GeneratorOptions::stack_size must be 16 KiB..1 GiB, got " +
                                std::to_string(opts.stack_size));
  }
  const std::size_t usable = StackAllocator::round_to_page(opts.stack_size);
  auto* g = new GeneratorImpl;
  g->body = body;
  g->arg = arg;
  g->cacheable = opts.guard_page &&
                 usable == StackAllocator::round_to_page(GeneratorOptions::kDefaultStackSize);
  try {
    g->stack = acquire_stack(usable, g->cacheable, opts.guard_page);
  } catch (...) {
    delete g;
    throw;
  }
  g->self().make(g->stack.lo, g->stack.usable_size(), &generator_entry, g);
  impl_ = g;
}

bool GeneratorCore::done() const noexcept {
  return impl_ == nullptr || impl_->status == GenStatus::finished;
}

void GeneratorCore::reset() noexcept {
  GeneratorImpl* g = std::exchange(impl_, nullptr);
  if (g == nullptr) return;
  WEFT_CHECK(g->status != GenStatus::running,
             "a generator was destroyed while it runs (by its own body?)");
  if (g->status == GenStatus::suspended) {
    g->unwinding = true;
    // Returns once the body has unwound (a yield now is fatal, see transfer),
    // and cannot throw: the entry drops exceptions while unwinding.
    try {
      if (prepare_resume(g)) (void)switch_context(g, true);
    } catch (...) {
      fatal("weft: generator unwinding threw (broken invariant)");
    }
  }
  release_stack(g);
  delete g;
}

bool GeneratorCore::prepare_resume(GeneratorImpl* g) {
  switch (g->status) {
    case GenStatus::finished:
      return false;
    case GenStatus::running:
      throw std::logic_error("weft: generator resumed while it runs (from its own body?)");
    case GenStatus::created:
    case GenStatus::suspended:
      break;
  }
  g->status = GenStatus::running;
  g->caller().bind_to_running();
  // The driving fiber lends its Context to g's stack while g runs (see the
  // top of this file). Read before the switch: after it we may be on another
  // thread (the body parked), but this is still the driving fiber.
  Fiber* f = current_fiber();
  g->driver = f;
  if (f != nullptr) {
    g->lent = f->ctx.sanitizer_identity();
    f->ctx.set_sanitizer_identity(g->self().sanitizer_identity());
    g->outer_stack = std::exchange(f->generator_stack, &g->stack);
    g->scope_at_resume = f->cancel_scope;
  }
  return true;
}

void GeneratorCore::prepare_yield(GeneratorImpl* g) {
  if (g == nullptr || g->status != GenStatus::running || !on_stack_of(g)) {
    throw std::logic_error("weft: Yield called outside its generator's body");
  }
  WEFT_CHECK(!g->unwinding,
             "a generator body caught weft::GeneratorExit and yielded again; rethrow it (see "
             "include/weft/generator.hpp)");
  if (g->driver != nullptr && g->driver->cancel_scope != g->scope_at_resume) {
    throw std::logic_error(
        "weft: a generator body yielded inside a cancel scope it opened (weft::scope, shield, "
        "move_on_after, ...); close the scope before yielding");
  }
  g->status = GenStatus::suspended;
}

// Both directions of every switch go through here, with nothing but index
// arithmetic before the one call to Context::switch_to: each side of a switch
// then returns through the same two return addresses (weft_context_swap ->
// switch_to -> here), which the CPU's return-stack predictor gets right
// although the stacks differ, and only the return out of this function (into
// the resumer, or into the body) mispredicts. With a resume and a yield
// function each calling switch_to, or with any branch before the call (GCC
// then duplicates the call into both paths), a round trip cost about twice
// as much (docs/design/generators.md).
bool GeneratorCore::switch_context(GeneratorImpl* g, bool resuming) {
  static_assert(GeneratorImpl::kSelf == 1 && GeneratorImpl::kCaller == 0);
  int to = resuming;
  // Opaque from here on: the optimizer cannot specialize the code below on
  // `resuming`, which would mean one switch call per direction.
  asm volatile("" : "+r"(to));
  // `note` is the target itself: the yielding side records whoever resumes
  // it next into `caller`; the resuming side records the stack it comes back
  // from, always g's, into `self` (the same values again).
  g->ends[to ^ 1].switch_to(g->ends[to], g->ends[to]);
  // Back, perhaps on another thread: only g and locals from here, no TLS.
  if (to == GeneratorImpl::kCaller) {
    if (g->unwinding) throw GeneratorExit();
    return true;
  }
  if (Fiber* f = g->driver; f != nullptr) {
    f->ctx.set_sanitizer_identity(g->lent);
    f->generator_stack = g->outer_stack;
  }
  if (g->status == GenStatus::suspended) return true;
  release_stack(g);
  if (g->error) std::rethrow_exception(std::exchange(g->error, nullptr));
  return false;
}

}  // namespace weft::detail
