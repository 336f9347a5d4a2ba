// See backtrace.hpp.
#include "obs/backtrace.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
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

// libdw's functions, loaded with dlopen at the first symbolization rather
// than linked: libweft.so and the Blood runtime's self-contained archive
// (which a C program links with -lpthread -ldl -lm alone) then carry no
// dependency on elfutils. Without libdw.so.1 the names come from dladdr:
// exported symbols only, no static functions, no file:line.
struct Libdw {
  decltype(&dwfl_begin) begin = nullptr;
  decltype(&dwfl_end) end = nullptr;
  decltype(&dwfl_linux_proc_report) proc_report = nullptr;
  decltype(&dwfl_report_end) report_end = nullptr;
  decltype(&dwfl_addrmodule) addrmodule = nullptr;
  decltype(&dwfl_module_addrinfo) module_addrinfo = nullptr;
  decltype(&dwfl_module_getsrc) module_getsrc = nullptr;
  decltype(&dwfl_lineinfo) lineinfo = nullptr;
  decltype(&dwfl_module_info) module_info = nullptr;
  decltype(&dwfl_linux_proc_find_elf) proc_find_elf = nullptr;
  decltype(&dwfl_standard_find_debuginfo) find_debuginfo = nullptr;
  bool ok = false;
};

template <class F>
bool bind(void* lib, const char* name, F& f) noexcept {
  f = reinterpret_cast<F>(::dlsym(lib, name));
  return f != nullptr;
}

const Libdw& libdw() noexcept {
  static const Libdw dw = [] {
    Libdw d;
    void* lib = ::dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return d;  // kept loaded for the process's life
    d.ok = bind(lib, "dwfl_begin", d.begin) && bind(lib, "dwfl_end", d.end) &&
           bind(lib, "dwfl_linux_proc_report", d.proc_report) &&
           bind(lib, "dwfl_report_end", d.report_end) &&
           bind(lib, "dwfl_addrmodule", d.addrmodule) &&
           bind(lib, "dwfl_module_addrinfo", d.module_addrinfo) &&
           bind(lib, "dwfl_module_getsrc", d.module_getsrc) &&
           bind(lib, "dwfl_lineinfo", d.lineinfo) && bind(lib, "dwfl_module_info", d.module_info) &&
           bind(lib, "dwfl_linux_proc_find_elf", d.proc_find_elf) &&
           bind(lib, "dwfl_standard_find_debuginfo", d.find_debuginfo);
    return d;
  }();
  return dw;
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
  const Libdw& dw = libdw();
  Dwfl* dwfl = nullptr;
  Dwfl_Callbacks callbacks{};
  if (dw.ok) {
    callbacks.find_elf = dw.proc_find_elf;
    callbacks.find_debuginfo = dw.find_debuginfo;
    dwfl = dw.begin(&callbacks);
    if (dwfl != nullptr &&
        (dw.proc_report(dwfl, ::getpid()) != 0 || dw.report_end(dwfl, nullptr, nullptr) != 0)) {
      dw.end(dwfl);
      dwfl = nullptr;
    }
  }
  for (int i = 0; i < bt.count; ++i) {
    const auto addr = reinterpret_cast<std::uintptr_t>(bt.frames[i]);
    // A return address points after the call; look up the call itself.
    const Dwarf_Addr pc = i == 0 ? addr : addr - 1;
    char head[48];
    std::snprintf(head, sizeof head, "    #%-2d 0x%016" PRIxPTR " ", i, addr);
    out += head;
    Dwfl_Module* m = dwfl != nullptr ? dw.addrmodule(dwfl, pc) : nullptr;
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* name = m != nullptr
                           ? dw.module_addrinfo(m, pc, &offset, &sym, nullptr, nullptr, nullptr)
                           : nullptr;
    Dl_info info{};
    if (dwfl == nullptr && ::dladdr(reinterpret_cast<void*>(pc), &info) != 0 &&
        info.dli_sname != nullptr) {
      name = info.dli_sname;
      offset = pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr);
    }
    if (name != nullptr) {
      out += demangle(name);
      char off[24];
      std::snprintf(off, sizeof off, "+0x%" PRIx64, static_cast<std::uint64_t>(offset));
      out += off;
    } else {
      out += "??";
    }
    const char* file = nullptr;
    int line = 0;
    if (m != nullptr) {
      if (Dwfl_Line* l = dw.module_getsrc(m, pc))
        file = dw.lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
    }
    if (file != nullptr) {
      out += " (";
      out += file;
      out += ':';
      out += std::to_string(line);
      out += ')';
    } else if (const char* mod = m != nullptr ? dw.module_info(m, nullptr, nullptr, nullptr,
                                                               nullptr, nullptr, nullptr, nullptr)
                                              : info.dli_fname) {
      out += " (";
      out += mod;
      out += ')';
    }
    out += '\n';
  }
  if (dwfl != nullptr) dw.end(dwfl);
}

}  // namespace weft::detail::obs
