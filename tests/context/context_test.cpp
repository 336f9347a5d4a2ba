// Unit tests of weft::detail::Context with no scheduler: raw switches between
// a thread's own context and contexts on malloc'd stacks.
#include "context/context.hpp"

#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/test_util.hpp"
#include "context/state_util.hpp"

namespace {

using weft::detail::Context;
using weft::test::churn_registers;
using weft::test::current_message;
using weft::test::one_third;
using weft::test::sse_rounding;

constexpr std::size_t kStackSize = 64 * 1024;

/// A 64 KiB, 16-byte aligned heap block used as a fiber stack.
class Stack {
 public:
  Stack() : mem_(std::aligned_alloc(16, kStackSize)) {}
  ~Stack() { std::free(mem_); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  void* lo() const { return mem_; }
  bool contains(const void* p) const {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    auto lo = reinterpret_cast<std::uintptr_t>(mem_);
    return a >= lo && a < lo + kStackSize;
  }

 private:
  void* mem_;
};

// ---------------------------------------------------------------------------
// Ping-pong

struct PingPong {
  Context thread_ctx;
  Context fiber_ctx;
  const Stack* stack = nullptr;
  int rounds = 0;
  int counter = 0;
  bool on_own_stack = true;
  bool aligned = true;
  bool finished = false;
};

void ping_pong_entry(void* arg) {
  Context::on_first_entry();
  auto* p = static_cast<PingPong*>(arg);
  for (int i = 0; i < p->rounds; ++i) {
    alignas(16) volatile char probe[16] = {};
    probe[0] = static_cast<char>(i);
    if (!p->stack->contains(const_cast<char*>(&probe[0]))) p->on_own_stack = false;
    if (reinterpret_cast<std::uintptr_t>(&probe[0]) % 16 != 0) p->aligned = false;
    EXPECT_EQ(p->counter, 2 * i) << "fiber resumed out of turn";
    p->counter = 2 * i + 1;
    p->fiber_ctx.switch_to(p->thread_ctx);
  }
  p->finished = true;
  p->fiber_ctx.switch_to_final(p->thread_ctx);
}

void run_ping_pong(int rounds) {
  Stack stack;
  PingPong p;
  p.stack = &stack;
  p.rounds = rounds;
  p.thread_ctx.bind_to_current_thread();
  p.fiber_ctx.make(stack.lo(), kStackSize, &ping_pong_entry, &p);
  for (int i = 0; i < rounds; ++i) {
    p.thread_ctx.switch_to(p.fiber_ctx);
    ASSERT_EQ(p.counter, 2 * i + 1) << "the fiber did not run in round " << i;
    p.counter = 2 * i + 2;
  }
  EXPECT_FALSE(p.finished);
  p.thread_ctx.switch_to(p.fiber_ctx);  // fiber finishes with switch_to_final
  EXPECT_TRUE(p.finished);
  EXPECT_TRUE(p.on_own_stack) << "fiber locals were not on the stack given to make()";
  EXPECT_TRUE(p.aligned) << "fiber stack misaligned (ABI needs 16 bytes at calls)";
  p.fiber_ctx.release();
}

TEST(Context, PingPongWithThreadContext) {
  run_ping_pong(1000);
}

TEST(Context, PingPongOnASecondThread) {
  std::thread t([] { run_ping_pong(500); });
  t.join();
}

TEST(Context, FreshContextRunsOnlyWhenSwitchedTo) {
  Stack stack;
  PingPong p;
  p.stack = &stack;
  p.rounds = 0;
  p.thread_ctx.bind_to_current_thread();
  p.fiber_ctx.make(stack.lo(), kStackSize, &ping_pong_entry, &p);
  EXPECT_FALSE(p.finished) << "make() must not run the entry";
  p.thread_ctx.switch_to(p.fiber_ctx);
  EXPECT_TRUE(p.finished);
  p.fiber_ctx.release();
}

// ---------------------------------------------------------------------------
// A ring of fibers switching directly to each other (no thread in between).

struct Ring {
  Context thread_ctx;
  std::vector<Context> ctx;
  std::vector<int> trace;
  int laps = 0;
};

struct RingArg {
  Ring* ring;
  int index;
};

void ring_entry(void* arg) {
  Context::on_first_entry();
  auto* a = static_cast<RingArg*>(arg);
  Ring& r = *a->ring;
  const int n = static_cast<int>(r.ctx.size());
  for (int lap = 0; lap < r.laps; ++lap) {
    r.trace.push_back(a->index);
    // The last fiber hands back to the thread at the end of each lap.
    Context& next = a->index == n - 1 ? r.thread_ctx : r.ctx[a->index + 1];
    r.ctx[a->index].switch_to(next);
  }
  r.ctx[a->index].switch_to_final(a->index == n - 1 ? r.thread_ctx : r.ctx[a->index + 1]);
}

TEST(Context, RingOfContextsSwitchingDirectly) {
  constexpr int kFibers = 16;
  constexpr int kLaps = 50;
  Ring r;
  r.laps = kLaps;
  r.ctx = std::vector<Context>(kFibers);
  std::vector<Stack> stacks(kFibers);
  std::vector<RingArg> args(kFibers);
  r.thread_ctx.bind_to_current_thread();
  for (int i = 0; i < kFibers; ++i) {
    args[i] = {&r, i};
    r.ctx[i].make(stacks[i].lo(), kStackSize, &ring_entry, &args[i]);
  }
  for (int lap = 0; lap <= kLaps; ++lap) r.thread_ctx.switch_to(r.ctx[0]);
  ASSERT_EQ(r.trace.size(), static_cast<std::size_t>(kFibers * kLaps));
  for (std::size_t i = 0; i < r.trace.size(); ++i) {
    EXPECT_EQ(r.trace[i], static_cast<int>(i % kFibers)) << "at " << i;
  }
  for (auto& c : r.ctx) c.release();
}

// ---------------------------------------------------------------------------
// Callee-saved registers: many values kept live in registers across switches.

constexpr int kRegisterRounds = 500;

struct RegisterDuel {
  Context thread_ctx;
  Context fiber_ctx;
  std::uint64_t fiber_sum = 0;
};

void register_duel_entry(void* arg) {
  Context::on_first_entry();
  auto* d = static_cast<RegisterDuel*>(arg);
  d->fiber_sum =
      churn_registers(0xF1BE5, kRegisterRounds, [d] { d->fiber_ctx.switch_to(d->thread_ctx); });
  d->fiber_ctx.switch_to_final(d->thread_ctx);
}

TEST(Context, CalleeSavedRegistersSurviveSwitches) {
  const std::uint64_t want_thread = churn_registers(0x7EAD, kRegisterRounds, [] {});
  const std::uint64_t want_fiber = churn_registers(0xF1BE5, kRegisterRounds, [] {});
  ASSERT_NE(want_thread, want_fiber);

  Stack stack;
  RegisterDuel d;
  d.thread_ctx.bind_to_current_thread();
  d.fiber_ctx.make(stack.lo(), kStackSize, &register_duel_entry, &d);
  // Each thread round switches into the fiber, which runs one of its rounds
  // and switches back; one extra switch lets the fiber finish.
  std::uint64_t got_thread =
      churn_registers(0x7EAD, kRegisterRounds, [&d] { d.thread_ctx.switch_to(d.fiber_ctx); });
  d.thread_ctx.switch_to(d.fiber_ctx);
  EXPECT_EQ(got_thread, want_thread);
  EXPECT_EQ(d.fiber_sum, want_fiber);
  d.fiber_ctx.release();
}

#if defined(__x86_64__)
// ---------------------------------------------------------------------------
// MXCSR and the x87 control word separately: the switch loads each only when
// the incoming context's value differs from the outgoing one's (issue 21), so
// a fiber that changes one of them and not the other must get each back
// exactly (fesetround changes both, so the test above cannot tell).

std::uint16_t x87_control_word() {
  std::uint16_t cw;
  asm volatile("fnstcw %0" : "=m"(cw));
  return cw;
}

void set_x87_control_word(std::uint16_t cw) {
  asm volatile("fldcw %0" : : "m"(cw));
}

// The MXCSR control bits (DAZ, exception masks, rounding, FZ), not the
// sticky exception flags of bits 0-5.
constexpr std::uint32_t kMxcsrControl = 0xFFC0;

struct FpWordDuel {
  Context thread_ctx;
  Context fiber_ctx;
  bool change_x87 = false;  // else MXCSR
  std::uint16_t fiber_cw = 0, fiber_cw_after = 0;
  std::uint32_t fiber_mxcsr = 0, fiber_mxcsr_after = 0;
};

void fp_word_entry(void* arg) {
  Context::on_first_entry();
  auto* d = static_cast<FpWordDuel*>(arg);
  if (d->change_x87) {
    set_x87_control_word(static_cast<std::uint16_t>(x87_control_word() | 0x0C00));  // truncate
  } else {
    _mm_setcsr(_mm_getcsr() | 0x6000);  // round toward zero
  }
  d->fiber_cw = x87_control_word();
  d->fiber_mxcsr = _mm_getcsr() & kMxcsrControl;
  d->fiber_ctx.switch_to(d->thread_ctx);
  d->fiber_cw_after = x87_control_word();
  d->fiber_mxcsr_after = _mm_getcsr() & kMxcsrControl;
  set_x87_control_word(0x037F);
  _mm_setcsr(0x1F80);
  d->fiber_ctx.switch_to_final(d->thread_ctx);
}

void fp_word_duel(bool change_x87) {
  Stack stack;
  FpWordDuel d;
  d.change_x87 = change_x87;
  d.thread_ctx.bind_to_current_thread();
  d.fiber_ctx.make(stack.lo(), kStackSize, &fp_word_entry, &d);
  const std::uint16_t cw = x87_control_word();
  const std::uint32_t mxcsr = _mm_getcsr() & kMxcsrControl;
  d.thread_ctx.switch_to(d.fiber_ctx);
  // Back from the fiber, which changed one of the two words.
  EXPECT_EQ(x87_control_word(), cw) << "the fiber's x87 control word leaked into the thread";
  EXPECT_EQ(_mm_getcsr() & kMxcsrControl, mxcsr) << "the fiber's MXCSR leaked into the thread";
  d.thread_ctx.switch_to(d.fiber_ctx);
  EXPECT_EQ(d.fiber_cw_after, d.fiber_cw) << "the fiber lost its x87 control word";
  EXPECT_EQ(d.fiber_mxcsr_after, d.fiber_mxcsr) << "the fiber lost its MXCSR";
  EXPECT_EQ(x87_control_word(), cw);
  EXPECT_EQ(_mm_getcsr() & kMxcsrControl, mxcsr);
  d.fiber_ctx.release();
}

TEST(Context, X87ControlWordAloneIsPerContext) {
  fp_word_duel(true);
}

TEST(Context, MxcsrAloneIsPerContext) {
  fp_word_duel(false);
}
#endif

// ---------------------------------------------------------------------------
// Floating-point control state (rounding mode, MXCSR) belongs to a context.

struct FpDuel {
  Context thread_ctx;
  Context fiber_ctx;
  int fiber_initial_round = -1;
  int fiber_initial_sse_round = -1;
  int fiber_after_resume = -1;
  int fiber_sse_after_resume = -1;
  double fiber_third_after_resume = 0;
};

void fp_duel_entry(void* arg) {
  Context::on_first_entry();
  auto* d = static_cast<FpDuel*>(arg);
  d->fiber_initial_round = fegetround();
  d->fiber_initial_sse_round = sse_rounding();
  fesetround(FE_TOWARDZERO);
  d->fiber_ctx.switch_to(d->thread_ctx);
  d->fiber_after_resume = fegetround();
  d->fiber_sse_after_resume = sse_rounding();
  d->fiber_third_after_resume = one_third();
  fesetround(FE_TONEAREST);
  d->fiber_ctx.switch_to_final(d->thread_ctx);
}

TEST(Context, RoundingModeIsPerContext) {
  fesetround(FE_UPWARD);
  const double upward = one_third();
  fesetround(FE_TOWARDZERO);
  const double toward_zero = one_third();
  fesetround(FE_TONEAREST);
  ASSERT_NE(upward, toward_zero) << "rounding mode has no effect here?";
  ASSERT_EQ(toward_zero, static_cast<double>(std::nextafter(upward, 0.0)));

  Stack stack;
  FpDuel d;
  d.thread_ctx.bind_to_current_thread();
  d.fiber_ctx.make(stack.lo(), kStackSize, &fp_duel_entry, &d);

  fesetround(FE_UPWARD);
  d.thread_ctx.switch_to(d.fiber_ctx);
  // Back from the fiber, which set round-toward-zero before switching.
  const int thread_round = fegetround();
  const int thread_sse_round = sse_rounding();
  const double thread_third = one_third();
  d.thread_ctx.switch_to(d.fiber_ctx);
  const int thread_round_end = fegetround();
  fesetround(FE_TONEAREST);

  EXPECT_EQ(d.fiber_initial_round, FE_TONEAREST) << "a new context must start in the default mode";
  EXPECT_EQ(d.fiber_initial_sse_round, FE_TONEAREST)
      << "a new context must start with default MXCSR";
  EXPECT_EQ(thread_round, FE_UPWARD) << "the fiber's rounding mode leaked into the thread";
  EXPECT_EQ(thread_sse_round, FE_UPWARD) << "the fiber's MXCSR leaked into the thread";
  EXPECT_EQ(thread_third, upward);
  EXPECT_EQ(d.fiber_after_resume, FE_TOWARDZERO) << "the fiber lost its rounding mode";
  EXPECT_EQ(d.fiber_sse_after_resume, FE_TOWARDZERO) << "the fiber lost its MXCSR";
  EXPECT_EQ(d.fiber_third_after_resume, toward_zero);
  EXPECT_EQ(thread_round_end, FE_UPWARD);
  d.fiber_ctx.release();
}

#if defined(__x86_64__)
struct CsrDuel {
  Context thread_ctx;
  Context fiber_ctx;
  unsigned fiber_first = 0;
  unsigned fiber_resumed = 0;
};

constexpr unsigned kCsrMask = 0xFFC0;  // control bits only, not sticky flags
constexpr unsigned kDefaultCsr = 0x1F80;
constexpr unsigned kFtzDaz = 0x8040;  // flush-to-zero | denormals-are-zero

void csr_duel_entry(void* arg) {
  Context::on_first_entry();
  auto* d = static_cast<CsrDuel*>(arg);
  d->fiber_first = _mm_getcsr() & kCsrMask;
  _mm_setcsr(kDefaultCsr | kFtzDaz);
  d->fiber_ctx.switch_to(d->thread_ctx);
  d->fiber_resumed = _mm_getcsr() & kCsrMask;
  _mm_setcsr(kDefaultCsr);
  d->fiber_ctx.switch_to_final(d->thread_ctx);
}

TEST(Context, MxcsrFlushToZeroIsPerContext) {
  const unsigned saved = _mm_getcsr();
  Stack stack;
  CsrDuel d;
  d.thread_ctx.bind_to_current_thread();
  d.fiber_ctx.make(stack.lo(), kStackSize, &csr_duel_entry, &d);
  _mm_setcsr(kDefaultCsr | (2u << 13));  // round up, no FTZ
  d.thread_ctx.switch_to(d.fiber_ctx);
  const unsigned thread_csr = _mm_getcsr() & kCsrMask;
  d.thread_ctx.switch_to(d.fiber_ctx);
  _mm_setcsr(saved);
  EXPECT_EQ(d.fiber_first, kDefaultCsr & kCsrMask);
  EXPECT_EQ(thread_csr, (kDefaultCsr | (2u << 13)) & kCsrMask);
  EXPECT_EQ(d.fiber_resumed, (kDefaultCsr | kFtzDaz) & kCsrMask);
  d.fiber_ctx.release();
}
#endif

// ---------------------------------------------------------------------------
// C++ exception state (caught-exception chain, uncaught count) per context.

struct EhDuel {
  Context thread_ctx;
  Context fiber_ctx;
  std::string fiber_first_seen;
  int fiber_first_uncaught = -1;
  std::string fiber_after_resume;
  std::string fiber_rethrown;
  std::string fiber_after_catch;
  int fiber_uncaught_in_dtor_before = -1;
  int fiber_uncaught_in_dtor_after = -1;
};

struct SwitchInDestructor {
  EhDuel* d;
  ~SwitchInDestructor() {
    d->fiber_uncaught_in_dtor_before = std::uncaught_exceptions();
    d->fiber_ctx.switch_to(d->thread_ctx);
    d->fiber_uncaught_in_dtor_after = std::uncaught_exceptions();
  }
};

void eh_duel_entry(void* arg) {
  Context::on_first_entry();
  auto* d = static_cast<EhDuel*>(arg);
  d->fiber_first_seen = current_message();
  d->fiber_first_uncaught = std::uncaught_exceptions();
  try {
    throw std::logic_error("fiber exception");
  } catch (const std::logic_error&) {
    d->fiber_ctx.switch_to(d->thread_ctx);  // (1) parked inside catch
    d->fiber_after_resume = current_message();
    try {
      throw;
    } catch (const std::exception& e) {
      d->fiber_rethrown = e.what();
    }
  }
  d->fiber_after_catch = current_message();
  try {
    SwitchInDestructor s{d};
    throw std::runtime_error("unwinding");  // (2) switches while unwinding
  } catch (const std::runtime_error&) {
  }
  d->fiber_ctx.switch_to_final(d->thread_ctx);
}

TEST(Context, ExceptionStateIsPerContext) {
  Stack stack;
  EhDuel d;
  d.thread_ctx.bind_to_current_thread();
  d.fiber_ctx.make(stack.lo(), kStackSize, &eh_duel_entry, &d);
  std::string thread_after_first, thread_rethrown, thread_after_second;
  int thread_uncaught_in_dtor = -1;
  try {
    throw std::runtime_error("thread exception");
  } catch (const std::runtime_error&) {
    d.thread_ctx.switch_to(d.fiber_ctx);  // fiber parks at (1)
    thread_after_first = current_message();
    d.thread_ctx.switch_to(d.fiber_ctx);  // fiber parks at (2), mid-unwind
    thread_after_second = current_message();
    thread_uncaught_in_dtor = std::uncaught_exceptions();
    try {
      throw;
    } catch (const std::exception& e) {
      thread_rethrown = e.what();
    }
  }
  const std::string thread_outside = current_message();
  d.thread_ctx.switch_to(d.fiber_ctx);  // fiber finishes

  EXPECT_EQ(d.fiber_first_seen, "<none>") << "a new context must start with no caught exception";
  EXPECT_EQ(d.fiber_first_uncaught, 0);
  EXPECT_EQ(thread_after_first, "thread exception");
  EXPECT_EQ(thread_after_second, "thread exception");
  EXPECT_EQ(thread_rethrown, "thread exception");
  EXPECT_EQ(thread_uncaught_in_dtor, 0) << "fiber's unwinding leaked into the thread";
  EXPECT_EQ(thread_outside, "<none>");
  EXPECT_EQ(d.fiber_after_resume, "fiber exception");
  EXPECT_EQ(d.fiber_rethrown, "fiber exception");
  EXPECT_EQ(d.fiber_after_catch, "<none>");
  EXPECT_EQ(d.fiber_uncaught_in_dtor_before, 1);
  EXPECT_EQ(d.fiber_uncaught_in_dtor_after, 1);
  d.fiber_ctx.release();
}

// ---------------------------------------------------------------------------
// A context resumed on a different thread (what work stealing does).

struct Migrant {
  Context first_thread_ctx;
  Context second_thread_ctx;
  Context fiber_ctx;
  Context* back = nullptr;  // where the fiber switches to next
  std::thread::id before, after;
  std::string exception_after_move;
  int sum = 0;
};

void migrant_entry(void* arg) {
  Context::on_first_entry();
  auto* m = static_cast<Migrant*>(arg);
  int local = 41;
  try {
    throw std::runtime_error("travels with the fiber");
  } catch (const std::exception&) {
    m->before = weft::test::current_thread_id();
    m->fiber_ctx.switch_to(*m->back);
    m->after = weft::test::current_thread_id();
    m->exception_after_move = current_message();
  }
  m->sum = local + 1;
  m->fiber_ctx.switch_to_final(*m->back);
}

TEST(Context, ContextResumesOnAnotherThread) {
  Stack stack;
  Migrant m;
  // The first thread stays alive until the end: a finished thread's id may
  // be reused by the next one.
  std::promise<void> first_parked, second_done;
  std::thread first([&] {
    m.first_thread_ctx.bind_to_current_thread();
    m.fiber_ctx.make(stack.lo(), kStackSize, &migrant_entry, &m);
    m.back = &m.first_thread_ctx;
    m.first_thread_ctx.switch_to(m.fiber_ctx);
    first_parked.set_value();
    second_done.get_future().wait();
  });
  first_parked.get_future().wait();
  std::thread second([&] {
    m.second_thread_ctx.bind_to_current_thread();
    m.back = &m.second_thread_ctx;
    try {
      throw std::logic_error("second thread's own");
    } catch (const std::exception&) {
      m.second_thread_ctx.switch_to(m.fiber_ctx);
      EXPECT_EQ(current_message(), "second thread's own");
    }
  });
  second.join();
  second_done.set_value();
  first.join();
  EXPECT_NE(m.before, m.after);
  EXPECT_EQ(m.exception_after_move, "travels with the fiber");
  EXPECT_EQ(m.sum, 42);
  m.fiber_ctx.release();
}

}  // namespace
