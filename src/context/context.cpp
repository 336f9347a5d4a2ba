#include "context/context.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <cstring>

#include "base/sanitizers.hpp"

extern "C" {
void weft_context_swap(void** save_sp, void* load_sp);
void weft_context_trampoline();
}

#if WEFT_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
}
#endif
#if WEFT_TSAN
extern "C" {
void* __tsan_get_current_fiber();
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace weft::detail {
namespace {

// __cxa_get_globals() is declared __attribute__((const)), so a compiler may
// compute it once and reuse the pointer after a switch that moved us to
// another thread (DESIGN.md, TLS hazard). Every access goes through this
// out-of-line function whose empty asm makes it impure. The pointer is fixed
// for a thread's life, so it is cached in an initial-exec TLS slot: two
// __tls_get_addr calls per switch were a tenth of a yield's instructions.
thread_local EhState* tls_eh_globals [[gnu::tls_model("initial-exec")]] = nullptr;

[[gnu::noinline]] EhState* current_eh_globals() {
  asm volatile("" ::: "memory");
  EhState* g = tls_eh_globals;
  if (__builtin_expect(g == nullptr, 0)) {
    g = reinterpret_cast<EhState*>(abi::__cxa_get_globals());
    tls_eh_globals = g;
  }
  return g;
}

// The pointer returned by __cxa_get_globals points at libstdc++'s
// struct __cxa_eh_globals { __cxa_exception* caughtExceptions;
// unsigned int uncaughtExceptions; } (non-ARM-EHABI layout).
static_assert(sizeof(EhState) == sizeof(void*) + sizeof(void*));

}  // namespace

void Context::make(void* stack_lo, std::size_t size, Entry entry, void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(stack_lo) + size;
  top &= ~std::uintptr_t{15};
  stack_lo_ = stack_lo;
  stack_size_ = size;
  eh_ = {};
#if defined(__x86_64__)
  // Frame popped by weft_context_swap: fpu word, r12, r13, r14, r15, rbx,
  // rbp (56 bytes), then the return address. After its `ret` the stack
  // pointer is frame + 64, which must be 16-byte aligned for the trampoline's
  // call: frame = top - 80 puts the return slot at top - 24.
  auto* frame = reinterpret_cast<std::uint64_t*>(top - 24 - 7 * 8);
  std::uint32_t mxcsr = 0x1F80;  // all exceptions masked, round to nearest
  std::uint16_t fcw = 0x037F;    // x87 default control word
  std::memcpy(reinterpret_cast<char*>(frame), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(frame) + 4, &fcw, 2);
  frame[1] = reinterpret_cast<std::uint64_t>(entry);  // r12
  frame[2] = reinterpret_cast<std::uint64_t>(arg);    // r13
  frame[3] = 0;                                       // r14
  frame[4] = 0;                                       // r15
  frame[5] = 0;                                       // rbx
  frame[6] = 0;                                       // rbp
  frame[7] = reinterpret_cast<std::uint64_t>(&weft_context_trampoline);
  sp_ = frame;
#elif defined(__aarch64__)
  auto* frame = reinterpret_cast<std::uint64_t*>(top - 176);
  std::memset(frame, 0, 176);
  frame[0] = reinterpret_cast<std::uint64_t>(entry);                      // x19
  frame[1] = reinterpret_cast<std::uint64_t>(arg);                        // x20
  frame[11] = reinterpret_cast<std::uint64_t>(&weft_context_trampoline);  // x30
  sp_ = frame;
#else
#error "weft: unsupported architecture"
#endif
#if WEFT_TSAN
  tsan_fiber_ = __tsan_create_fiber(0);
  owns_tsan_fiber_ = true;
#endif
}

void Context::bind_to_current_thread() {
#if WEFT_ASAN
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &lo, &size);
    stack_lo_ = lo;
    stack_size_ = size;
    pthread_attr_destroy(&attr);
  }
#endif
#if WEFT_TSAN
  tsan_fiber_ = __tsan_get_current_fiber();
  owns_tsan_fiber_ = false;
#endif
}

void Context::switch_to(Context& to) {
  eh_ = *current_eh_globals();
#if WEFT_ASAN
  __sanitizer_start_switch_fiber(&asan_fake_stack_, to.stack_lo_, to.stack_size_);
#endif
#if WEFT_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  weft_context_swap(&sp_, to.sp_);
  // Resumed, perhaps on another thread.
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
#endif
  *current_eh_globals() = eh_;
}

void Context::switch_to(Context& to, Context& note) {
  eh_ = *current_eh_globals();
#if WEFT_ASAN
  __sanitizer_start_switch_fiber(&asan_fake_stack_, to.stack_lo_, to.stack_size_);
#endif
#if WEFT_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  weft_context_swap(&sp_, to.sp_);
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(asan_fake_stack_, &note.stack_lo_, &note.stack_size_);
#else
  (void)note;
#endif
  *current_eh_globals() = eh_;
}

void Context::switch_to_final(Context& to) {
#if WEFT_ASAN
  // nullptr: this context's fake stack is destroyed with it.
  __sanitizer_start_switch_fiber(nullptr, to.stack_lo_, to.stack_size_);
#endif
#if WEFT_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  weft_context_swap(&sp_, to.sp_);
  __builtin_trap();  // a finished context was resumed
}

void Context::on_first_entry() {
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  *current_eh_globals() = EhState{};
}

void Context::on_first_entry(Context& note) {
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &note.stack_lo_, &note.stack_size_);
#else
  (void)note;
#endif
  *current_eh_globals() = EhState{};
}

void Context::bind_to_running() noexcept {
#if WEFT_TSAN
  tsan_fiber_ = __tsan_get_current_fiber();
  owns_tsan_fiber_ = false;
#endif
}

void Context::release() {
#if WEFT_TSAN
  if (owns_tsan_fiber_ && tsan_fiber_ != nullptr) __tsan_destroy_fiber(tsan_fiber_);
#endif
  tsan_fiber_ = nullptr;
  owns_tsan_fiber_ = false;
}

}  // namespace weft::detail
