// See backtrace.hpp.
#include "obs/backtrace.hpp"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace weft::detail::obs {
namespace {

// The request protocol (one at a time, process-wide):
//   idle --sampler--> requested --handler--> taking --handler--> done
//   requested --sampler, out of patience--> idle (a late signal finds idle)
//   done --sampler, after reading--> idle
// The sampler publishes the target (g_out, g_still, g_arg) before its
// release store of `requested`; the handler's acquire CAS to `taking`
// pairs with it. The handler's release store of `done` publishes the
// frames to the sampler's acquire load.
enum : int { kIdle = 0, kRequested = 1, kTaking = 2, kDone = 3 };
std::atomic<int> g_state{kIdle};
std::atomic<RawBacktrace*> g_out{nullptr};
std::atomic<bool (*)(const void*)> g_still{nullptr};
std::atomic<const void*> g_arg{nullptr};
std::atomic<bool> g_installed{false};
std::mutex g_sampler_mu;  // one sampler at a time
std::once_flag g_install_once;

// The handler's own frame and the kernel's signal trampoline.
constexpr int kHandlerFrames = 2;

void on_sample(int, siginfo_t*, void*) noexcept {
  const int saved_errno = errno;
  int expected = kRequested;
  if (g_state.compare_exchange_strong(expected, kTaking, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    RawBacktrace* out = g_out.load(std::memory_order_relaxed);
    const auto still = g_still.load(std::memory_order_relaxed);
    out->count = 0;
    if (still == nullptr || still(g_arg.load(std::memory_order_relaxed))) {
      void* frames[kMaxFrames + kHandlerFrames];
      const int n = ::backtrace(frames, kMaxFrames + kHandlerFrames);
      for (int i = kHandlerFrames; i < n; ++i) out->frames[out->count++] = frames[i];
    }
    g_state.store(kDone, std::memory_order_release);
  }
  errno = saved_errno;
}

void install() noexcept {
  struct sigaction old {};
  if (::sigaction(sample_signal(), nullptr, &old) != 0) return;
  const bool owned = (old.sa_flags & SA_SIGINFO) != 0
                         ? old.sa_sigaction != nullptr
                         : (old.sa_handler != SIG_DFL && old.sa_handler != nullptr);
  if (owned) return;  // the program's: never replaced
  // Warm-up: backtrace()'s first call loads libgcc_s (dlopen, malloc).
  void* warm[4];
  (void)::backtrace(warm, 4);
  struct sigaction sa {};
  sa.sa_sigaction = &on_sample;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(sample_signal(), &sa, nullptr) == 0) {
    g_installed.store(true, std::memory_order_release);
  }
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || d == nullptr) return name;
  std::string s(d);
  std::free(d);
  return s;
}

}  // namespace

int sample_signal() noexcept {
  return SIGRTMAX - 1;
}

bool install_sample_handler() noexcept {
  std::call_once(g_install_once, install);
  return g_installed.load(std::memory_order_acquire);
}

bool sample_thread(pthread_t t, bool (*still)(const void* arg), const void* arg,
                   std::chrono::milliseconds patience, RawBacktrace& out) noexcept {
  out.count = 0;
  if (!g_installed.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::mutex> g(g_sampler_mu);
  g_out.store(&out, std::memory_order_relaxed);
  g_still.store(still, std::memory_order_relaxed);
  g_arg.store(arg, std::memory_order_relaxed);
  g_state.store(kRequested, std::memory_order_release);
  if (::pthread_kill(t, sample_signal()) != 0) {
    g_state.store(kIdle, std::memory_order_relaxed);
    return false;
  }
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const int s = g_state.load(std::memory_order_acquire);
    if (s == kDone) break;
    if (s == kRequested && std::chrono::steady_clock::now() >= give_up) {
      int expected = kRequested;
      // relaxed: withdrawing publishes nothing; a handler that won the
      // race is let finish (it writes into `out`, still ours).
      if (g_state.compare_exchange_strong(expected, kIdle, std::memory_order_relaxed)) {
        return false;
      }
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  g_state.store(kIdle, std::memory_order_relaxed);
  return out.count > 0;
}

void symbolize(const RawBacktrace& bt, std::string& out) {
  static const Dwfl_Callbacks callbacks = {
      .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = nullptr,
      .debuginfo_path = nullptr,
  };
  Dwfl* dwfl = dwfl_begin(&callbacks);
  if (dwfl != nullptr && (dwfl_linux_proc_report(dwfl, ::getpid()) != 0 ||
                          dwfl_report_end(dwfl, nullptr, nullptr) != 0)) {
    dwfl_end(dwfl);
    dwfl = nullptr;
  }
  for (int i = 0; i < bt.count; ++i) {
    const auto addr = reinterpret_cast<std::uintptr_t>(bt.frames[i]);
    // A return address points after the call; look up the call itself.
    const Dwarf_Addr pc = i == 0 ? addr : addr - 1;
    char head[48];
    std::snprintf(head, sizeof head, "    #%-2d 0x%016" PRIxPTR " ", i, addr);
    out += head;
    Dwfl_Module* m = dwfl != nullptr ? dwfl_addrmodule(dwfl, pc) : nullptr;
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* name = m != nullptr
                           ? dwfl_module_addrinfo(m, pc, &offset, &sym, nullptr, nullptr, nullptr)
                           : nullptr;
    if (name != nullptr) {
      out += demangle(name);
      char off[24];
      std::snprintf(off, sizeof off, "+0x%" PRIx64, static_cast<std::uint64_t>(offset));
      out += off;
    } else {
      out += "??";
    }
    if (m != nullptr) {
      int line = 0;
      const char* file = nullptr;
      if (Dwfl_Line* l = dwfl_module_getsrc(m, pc))
        file = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
      if (file != nullptr) {
        out += " (";
        out += file;
        out += ':';
        out += std::to_string(line);
        out += ')';
      } else if (const char* mod = dwfl_module_info(m, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                    nullptr, nullptr)) {
        out += " (";
        out += mod;
        out += ')';
      }
    }
    out += '\n';
  }
  if (dwfl != nullptr) dwfl_end(dwfl);
}

}  // namespace weft::detail::obs
