// weft::Deadline is accepted by every timed API (issue 4 §3).
#include <gtest/gtest.h>

#include <chrono>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

// Each timed call is given a short Deadline; none may return before it.
TEST(DeadlineOverloads, EveryTimedWaitHonoursADeadline) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    auto check = [](const char* what, auto&& call) {
      const auto t0 = Clock::now();
      const Deadline d = t0 + 5ms;
      const bool ok = call(d);
      EXPECT_FALSE(ok) << what << " succeeded although nothing could satisfy it";
      EXPECT_GE(Clock::now(), d.when()) << what << " returned before its deadline";
    };
    auto tx_rx = channel<int>(1);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    ASSERT_TRUE(tx.try_send(1).ok());
    check("send_until", [&](Deadline d) { return tx.send_until(2, d).ok(); });
    ASSERT_TRUE(rx.try_recv().ok());
    check("recv_until", [&](Deadline d) { return rx.recv_until(d).ok(); });
    Mutex m;
    m.lock();
    spawn([&] {
      check("Mutex::try_lock_until", [&](Deadline d) { return m.try_lock_until(d); });
    }).join();
    m.unlock();
    SharedMutex rw;
    rw.lock();
    spawn([&] {
      check("SharedMutex::try_lock_until", [&](Deadline d) { return rw.try_lock_until(d); });
      check("SharedMutex::try_lock_shared_until",
            [&](Deadline d) { return rw.try_lock_shared_until(d); });
    }).join();
    rw.unlock();
    Semaphore sem(0);
    check("Semaphore::acquire_until", [&](Deadline d) { return sem.acquire_until(d); });
    Event ev;
    check("Event::wait_until", [&](Deadline d) { return ev.wait_until(d); });
    Mutex cm;
    CondVar cv;
    check("CondVar::wait_until", [&](Deadline d) {
      std::unique_lock<Mutex> lk(cm);
      return cv.wait_until(lk, d, [] { return false; });
    });
    check("select on_deadline", [&](Deadline d) {
      return select(on_recv(rx, [](std::optional<int>) {}), on_deadline(d, [] {})) == 0;
    });
    check("sleep_until", [&](Deadline d) {
      this_fiber::sleep_until(d);
      return false;
    });
  });
}

TEST(DeadlineOverloads, NoneMeansNoLimit) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    auto tx_rx = channel<int>(0);  // not a structured binding: clang 14 cannot capture those
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    auto h = spawn([rx = rx] { return rx.recv_until(Deadline::none()).ok(); });
    this_fiber::sleep_for(20ms);
    EXPECT_FALSE(h.is_finished());
    ASSERT_TRUE(tx.send(5).ok());
    EXPECT_TRUE(h.join());
    // sleep_until(none) parks until cancelled.
    auto s = spawn([] { this_fiber::sleep_until(Deadline::none()); });
    this_fiber::sleep_for(10ms);
    EXPECT_FALSE(s.is_finished());
    s.cancel();
    EXPECT_THROW(s.join(), Cancelled);
  });
}

}  // namespace
}  // namespace weft::test
