#include "fiber/overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "fiber/fiber.hpp"

namespace weft::detail {
namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;
// Set once, before the handler is installed (call_once orders it).
RunningFiberFn g_running_fiber = nullptr;

void write_str(const char* s) noexcept {
  const ssize_t ignored = ::write(2, s, std::strlen(s));
  (void)ignored;
}

void write_u64(std::uint64_t v) noexcept {
  char buf[24];
  int i = sizeof(buf);
  buf[--i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  write_str(buf + i);
}

void pass_on(int sig, siginfo_t* info, void* uctx, const struct sigaction& prev) noexcept {
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, uctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs
  // again and the kernel delivers the signal with its normal effect.
  signal(sig, SIG_DFL);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  // The scheduler's current_fiber() reads a TLS slot the worker thread has
  // already touched, so no allocation happens here.
  Fiber* f = g_running_fiber();
  if (f != nullptr && info != nullptr) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const auto guard_lo = reinterpret_cast<std::uintptr_t>(f->stack.mapping);
    const auto guard_hi = reinterpret_cast<std::uintptr_t>(f->stack.lo);
    if (f->stack.guard != 0 && addr >= guard_lo && addr < guard_hi) {
      write_str("weft: stack overflow in fiber ");
      write_u64(f->id);
      write_str(" '");
      write_str(f->name.c_str());
      write_str("' (stack of ");
      write_u64(f->stack.usable_size());
      write_str(" bytes; raise FiberOptions::stack_size or WEFT_STACK_SIZE)\n");
      signal(SIGABRT, SIG_DFL);
      std::abort();
    }
    // A generator the fiber drives (src/gen) runs on a stack of its own.
    if (const Stack* g = f->generator_stack; g != nullptr && g->guard != 0) {
      const auto gen_lo = reinterpret_cast<std::uintptr_t>(g->mapping);
      const auto gen_hi = reinterpret_cast<std::uintptr_t>(g->lo);
      if (addr >= gen_lo && addr < gen_hi) {
        write_str("weft: stack overflow in a generator driven by fiber ");
        write_u64(f->id);
        write_str(" '");
        write_str(f->name.c_str());
        write_str("' (generator stack of ");
        write_u64(g->usable_size());
        write_str(" bytes; raise GeneratorOptions::stack_size)\n");
        signal(SIGABRT, SIG_DFL);
        std::abort();
      }
    }
  }
  pass_on(sig, info, uctx, sig == SIGBUS ? g_previous_bus : g_previous_segv);
}

}  // namespace

void install_overflow_handler(RunningFiberFn running_fiber) noexcept {
  static std::once_flag once;
  std::call_once(once, [running_fiber] {
    g_running_fiber = running_fiber;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    sigaction(SIGBUS, &sa, &g_previous_bus);
  });
}

AltSignalStack::AltSignalStack() noexcept {
  void* p =
      mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = p;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) == 0) {
    mem_ = p;
    installed_ = true;
  } else {
    munmap(p, kAltStackSize);
  }
}

AltSignalStack::~AltSignalStack() {
  if (!installed_) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem_, kAltStackSize);
}

}  // namespace weft::detail
