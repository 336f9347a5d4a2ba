// The program tools/gdb/weft.py is tested on (tests/obs/gdb_test.sh): a
// runtime with fibers parked in known functions. Prints "READY <id>" (the
// id of the fiber parked in weft_gdb_test::wait_in_recv) once they are all
// parked, then waits until stdin closes (the test attaches gdb and takes a
// core meanwhile).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "weft/weft.hpp"

namespace weft_gdb_test {
[[gnu::noinline]] int wait_in_recv(const weft::Receiver<int>& rx) {
  const std::optional<int> v = rx.recv();
  asm volatile("" ::: "memory");
  return v.value_or(0);
}
[[gnu::noinline]] void wait_in_event(weft::Event& e) {
  e.wait();
  asm volatile("" ::: "memory");
}
}  // namespace weft_gdb_test

int main() {
  weft::Config c = weft::Config::from_env();  // the test may turn guard pages off
  c.workers = 2;
  weft::Runtime rt(c);
  auto ch = weft::channel<int>(0);
  weft::Event ev;
  auto recv = rt.spawn(weft::FiberOptions{.name = "receiver"},
                       [rx = ch.second] { return weft_gdb_test::wait_in_recv(rx); });
  auto evw = rt.spawn(weft::FiberOptions{.name = "event-waiter"},
                      [&] { weft_gdb_test::wait_in_event(ev); });
  while (rt.stats().fibers_parked < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::printf("READY %llu\n", static_cast<unsigned long long>(recv.id()));
  std::fflush(stdout);
  char buf[16];
  while (::read(0, buf, sizeof buf) > 0) {
  }
  (void)ch.first.send(1);
  ev.set();
  recv.join();
  evw.join();
  return 0;
}
