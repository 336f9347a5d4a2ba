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
#include <unordered_map>

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
  // The unwinder (saved stacks).
  decltype(&dwfl_attach_state) attach_state = nullptr;
  decltype(&dwfl_getthread_frames) getthread_frames = nullptr;
  decltype(&dwfl_frame_pc) frame_pc = nullptr;
  decltype(&dwfl_thread_state_registers) state_registers = nullptr;
  decltype(&dwfl_thread_state_register_pc) state_register_pc = nullptr;
  bool ok = false;
  bool unwinder = false;
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
    d.unwinder = d.ok && bind(lib, "dwfl_attach_state", d.attach_state) &&
                 bind(lib, "dwfl_getthread_frames", d.getthread_frames) &&
                 bind(lib, "dwfl_frame_pc", d.frame_pc) &&
                 bind(lib, "dwfl_thread_state_registers", d.state_registers) &&
                 bind(lib, "dwfl_thread_state_register_pc", d.state_register_pc);
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

// --- Symbolizer ----------------------------------------------------------

namespace {

// The unwinder's view of one saved stack: libdw asks for the initial
// registers and for memory words through the thread callbacks below; the
// "thread" is the saved context, the only one it is ever asked about.
struct UnwindTarget {
  const Libdw* dw = nullptr;
  SavedStack stack;
  RawBacktrace* out = nullptr;
};

// A word of the saved stack. Not instrumented: ASan poisons the redzones
// between a parked frame's locals, and reading them is what unwinding is.
__attribute__((no_sanitize("address", "thread"))) bool read_stack_word(
    const SavedStack& s, std::uintptr_t addr, std::uint64_t& word) noexcept {
  const auto lo = reinterpret_cast<std::uintptr_t>(s.lo);
  const auto hi = reinterpret_cast<std::uintptr_t>(s.hi);
  if (addr < lo || addr > hi - sizeof word || addr % alignof(std::uint64_t) != 0) return false;
  word = *reinterpret_cast<const volatile std::uint64_t*>(addr);
  return true;
}

pid_t no_next_thread(Dwfl*, void*, void**) {
  return 0;
}

bool get_saved_thread(Dwfl*, pid_t, void* arg, void** thread_arg) {
  *thread_arg = arg;
  return true;
}

bool read_memory(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  std::uint64_t w = 0;
  if (!read_stack_word(static_cast<UnwindTarget*>(arg)->stack, addr, w)) return false;
  *result = w;
  return true;
}

bool set_saved_registers(Dwfl_Thread* thread, void* arg) {
#if defined(__x86_64__)
  // The frame weft_context_swap saved (switch_x86_64.S): from sp up, the
  // control words, r12, r13, r14, r15, rbx, rbp and the return address;
  // the caller's stack pointer is just above. DWARF numbers: rbx 3, rbp 6,
  // rsp 7, r12..r15 12..15.
  const auto* t = static_cast<UnwindTarget*>(arg);
  const auto sp = reinterpret_cast<std::uintptr_t>(t->stack.sp);
  std::uint64_t w[8];
  for (int i = 0; i < 8; ++i) {
    if (!read_stack_word(t->stack, sp + 8 * static_cast<std::uintptr_t>(i), w[i])) return false;
  }
  const Dwarf_Word rbx = w[5];
  const Dwarf_Word rbp_rsp[2] = {w[6], sp + 64};
  const Dwarf_Word r12_r15[4] = {w[1], w[2], w[3], w[4]};
  if (!t->dw->state_registers(thread, 3, 1, &rbx) ||
      !t->dw->state_registers(thread, 6, 2, rbp_rsp) ||
      !t->dw->state_registers(thread, 12, 4, r12_r15)) {
    return false;
  }
  t->dw->state_register_pc(thread, w[7]);
  return true;
#else
  (void)thread;
  (void)arg;
  return false;  // only x86-64's saved frame is described here
#endif
}

int take_frame(Dwfl_Frame* frame, void* arg) {
  auto* t = static_cast<UnwindTarget*>(arg);
  Dwarf_Addr pc = 0;
  if (!t->dw->frame_pc(frame, &pc, nullptr) || pc == 0) return DWARF_CB_ABORT;
  t->out->frames[t->out->count++] = reinterpret_cast<void*>(pc);
  return t->out->count < kMaxFrames ? DWARF_CB_OK : DWARF_CB_ABORT;
}

const Dwfl_Thread_Callbacks kSavedThread = {
    .next_thread = no_next_thread,
    .get_thread = get_saved_thread,
    .memory_read = read_memory,
    .set_initial_registers = set_saved_registers,
    .detach = nullptr,
    .thread_detach = nullptr,
};

}  // namespace

struct Symbolizer::Impl {
  const Libdw& dw = libdw();
  Dwfl_Callbacks callbacks{};
  Dwfl* dwfl = nullptr;
  bool attached = false;
  UnwindTarget target;  // the stack being unwound (the Dwfl's state argument)
  std::unordered_map<std::uintptr_t, Frame> cache;
};

Symbolizer::Symbolizer() : impl_(new Impl) {
  Impl& m = *impl_;
  m.target.dw = &m.dw;
  if (!m.dw.ok) return;
  m.callbacks.find_elf = m.dw.proc_find_elf;
  m.callbacks.find_debuginfo = m.dw.find_debuginfo;
  m.dwfl = m.dw.begin(&m.callbacks);
  if (m.dwfl != nullptr && (m.dw.proc_report(m.dwfl, ::getpid()) != 0 ||
                            m.dw.report_end(m.dwfl, nullptr, nullptr) != 0)) {
    m.dw.end(m.dwfl);
    m.dwfl = nullptr;
  }
  if (m.dwfl != nullptr && m.dw.unwinder) {
    m.attached = m.dw.attach_state(m.dwfl, nullptr, ::getpid(), &kSavedThread, &m.target);
  }
}

Symbolizer::~Symbolizer() {
  if (impl_->dwfl != nullptr) impl_->dw.end(impl_->dwfl);
  delete impl_;
}

bool Symbolizer::unwind(const SavedStack& s, RawBacktrace& out) noexcept {
  out.count = 0;
  Impl& m = *impl_;
  if (!m.attached || s.sp == nullptr) return false;
  m.target.stack = s;
  m.target.out = &out;
  // The result only says where the walk ended (no CFI, the stack's base,
  // an unreadable word): every frame before that is good.
  (void)m.dw.getthread_frames(m.dwfl, ::getpid(), take_frame, &m.target);
  m.target.out = nullptr;
  return out.count > 0;
}

const Frame& Symbolizer::frame(std::uintptr_t addr, bool return_address) {
  Impl& m = *impl_;
  // A return address points after the call; look up the call itself.
  const std::uintptr_t pc = return_address ? addr - 1 : addr;
  auto [it, fresh] = m.cache.try_emplace(pc);
  Frame& f = it->second;
  if (!fresh) return f;
  f.pc = addr;
  Dwfl_Module* mod = m.dwfl != nullptr ? m.dw.addrmodule(m.dwfl, pc) : nullptr;
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = mod != nullptr
                         ? m.dw.module_addrinfo(mod, pc, &offset, &sym, nullptr, nullptr, nullptr)
                         : nullptr;
  Dl_info info{};
  if (m.dwfl == nullptr && ::dladdr(reinterpret_cast<void*>(pc), &info) != 0 &&
      info.dli_sname != nullptr) {
    name = info.dli_sname;
    offset = pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr);
  }
  if (name != nullptr) {
    f.function = demangle(name);
    char off[24];
    std::snprintf(off, sizeof off, "+0x%" PRIx64, static_cast<std::uint64_t>(offset));
    f.function += off;
  } else {
    f.function = "??";
  }
  const char* file = nullptr;
  int line = 0;
  if (mod != nullptr) {
    if (Dwfl_Line* l = m.dw.module_getsrc(mod, pc))
      file = m.dw.lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
  }
  if (file != nullptr) {
    f.location = file;
    f.location += ':';
    f.location += std::to_string(line);
  } else if (const char* path = mod != nullptr
                                    ? m.dw.module_info(mod, nullptr, nullptr, nullptr, nullptr,
                                                       nullptr, nullptr, nullptr)
                                    : info.dli_fname) {
    f.location = path;
  }
  return f;
}

void Symbolizer::append(const RawBacktrace& bt, std::string& out) {
  for (int i = 0; i < bt.count; ++i) {
    const auto addr = reinterpret_cast<std::uintptr_t>(bt.frames[i]);
    append_frame_line(static_cast<std::size_t>(i), frame(addr, i != 0), out);
  }
}

void append_frame_line(std::size_t i, const Frame& f, std::string& out) {
  char head[48];
  std::snprintf(head, sizeof head, "    #%-2zu 0x%016" PRIxPTR " ", i, f.pc);
  out += head;
  out += f.function;
  if (!f.location.empty()) {
    out += " (";
    out += f.location;
    out += ')';
  }
  out += '\n';
}

void symbolize(const RawBacktrace& bt, std::string& out) {
  Symbolizer().append(bt, out);
}

}  // namespace weft::detail::obs
