// JoinHandle::release() and adoption: the handle's ownership held in a raw
// pointer (as the C ABI holds it) and given back to a JoinHandle.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

TEST(JoinHandleRelease, AdoptedBackAndJoined) {
  weft::Runtime rt(weft::test::workers_config(2));
  rt.block_on([] {
    auto h = weft::spawn([] { return std::string("kept"); });
    weft::detail::ResultTask<std::string>* raw = h.release();
    EXPECT_FALSE(h.joinable());
    EXPECT_EQ(h.id(), 0u);
    // The fiber ends while no handle holds it: its result is kept.
    weft::this_fiber::sleep_for(2ms);
    weft::JoinHandle<std::string> back(raw);
    EXPECT_TRUE(back.joinable());
    EXPECT_NE(back.id(), 0u);
    EXPECT_EQ(back.join(), "kept");
  });
}

TEST(JoinHandleRelease, AdoptedBackAndDetachedOrCancelled) {
  weft::Runtime rt(weft::test::workers_config(2));
  std::atomic<bool> ran{false};
  rt.block_on([&] {
    auto h = weft::spawn([&] { ran = true; });
    weft::JoinHandle<void>(h.release()).detach();
    // Cancellation through an adopted handle reaches the fiber; releasing
    // again keeps it alive for a later join.
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_until(weft::Deadline::none()); });
    auto* raw = sleeper.release();
    {
      weft::JoinHandle<void> tmp(raw);
      tmp.cancel();
      (void)tmp.release();
    }
    weft::JoinHandle<void> last(raw);
    EXPECT_THROW(last.join(), weft::Cancelled);
  });
  weft::test::eventually([&] { return ran.load(); });
  EXPECT_TRUE(ran.load());
}

}  // namespace
