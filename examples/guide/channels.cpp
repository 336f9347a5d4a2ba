// docs/guide/channels.md: channels, closing, select.
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "check.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [pipeline]
    auto [tx, rx] = weft::channel<int>(8);  // buffers 8 values; send parks when full
    auto producer = weft::spawn([tx = std::move(tx)] {
      for (int i = 1; i <= 100; ++i) (void)tx.send(i);
    });  // tx is destroyed when the producer ends: the channel closes
    long sum = 0;
    for (int v : rx) sum += v;  // ends once the channel is closed and drained
    producer.join();
    // [pipeline end]
    guide::check(sum == 5050, "every value received once");

    // [try_send]
    auto [small_tx, small_rx] = weft::channel<std::string>(1);
    guide::check(small_tx.try_send("first").ok(), "room for one");
    weft::SendResult<std::string> full = small_tx.try_send("second");
    // full.status() == weft::ChannelStatus::full; the value comes back:
    std::string again = std::move(full).value();
    // [try_send end]
    guide::check(full.status() == weft::ChannelStatus::full && again == "second",
                 "try_send on a full channel hands the value back");

    // [select]
    auto [jobs_tx, jobs] = weft::channel<int>(4);
    auto [quit_tx, quit] = weft::channel<int>(0);
    (void)jobs_tx.send(7);
    int got = 0;
    bool timed_out = false;
    for (int round = 0; round < 2; ++round) {
      std::size_t fired = weft::select(
          weft::on_recv(jobs, [&](int job) { got = job; }),
          weft::on_recv(quit, [&](std::optional<int>) { /* closed: fires with nullopt */ }),
          weft::on_timeout(20ms, [&] { timed_out = true; }));
      (void)fired;  // the position of the case that fired: 0, 1 or 2
    }
    // [select end]
    guide::check(got == 7 && timed_out, "a job, then the timeout");
  });
}
