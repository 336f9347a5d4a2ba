// A fiber that overflows its stack is reported by name (guard page + SIGSEGV
// handler on an alternate stack), never silently corrupts memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

volatile bool g_stop_recursion = false;

/// Recurses until the stack runs out. The volatile buffer keeps each frame
/// real (no tail call, no loop) and smaller than a page, so the frames walk
/// into the guard page instead of jumping over it.
[[gnu::noinline]] int recurse(int depth) {
  volatile char buf[256];
  buf[depth % sizeof(buf)] = static_cast<char>(depth);
  if (g_stop_recursion) return buf[0];
  return recurse(depth + 1) + buf[(depth * 7) % sizeof(buf)];
}

void overflow_in_named_fiber(std::size_t workers, std::size_t stack) {
  weft::Runtime rt(weft::test::workers_config(workers));
  rt.block_on([stack] {
    weft::FiberOptions opts{.name = "deep"};
    opts.stack_size = stack;
    auto h = weft::spawn(opts, [] { return recurse(0); });
    (void)h.join();
  });
}

using StackOverflowDeathTest = ::testing::TestWithParam<std::size_t>;

TEST_P(StackOverflowDeathTest, ReportsTheFiberByIdAndName) {
  if (weft::test::kSanitized) GTEST_SKIP() << "sanitizers intercept SIGSEGV";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::size_t workers = GetParam();
  EXPECT_DEATH(overflow_in_named_fiber(workers, 64 * 1024),
               "weft: stack overflow in fiber [0-9]+ 'deep'");
  // With the default stack size (256 KiB) too.
  EXPECT_DEATH(overflow_in_named_fiber(workers, 0), "weft: stack overflow in fiber [0-9]+ 'deep'");
}

INSTANTIATE_TEST_SUITE_P(Workers, StackOverflowDeathTest, ::testing::Values(1, 2),
                         [](const auto& info) { return "workers_" + std::to_string(info.param); });

using SegfaultDeathTest = ::testing::Test;

TEST(SegfaultDeathTest, OtherFaultsAreNotReportedAsOverflow) {
  if (weft::test::kSanitized) GTEST_SKIP() << "sanitizers intercept SIGSEGV";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // A null dereference inside a fiber must still crash, but not claim to be
  // a stack overflow.
  EXPECT_EXIT(
      {
        weft::Runtime rt(weft::test::workers_config(1));
        rt.block_on([] {
          volatile int* volatile p = nullptr;
          *p = 1;
        });
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), ::testing::Not(::testing::HasSubstr("stack overflow")));
}

}  // namespace
