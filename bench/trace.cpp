// weft-bench-trace: what a recording trace costs per event (issue 15 §4).
// Two fibers on a 1-worker runtime alternate with this_fiber::yield(), n
// yields per run, in paired rounds: one run with no trace, one with a trace
// recording (each yield records a slice end and a slice begin). Prints the
// median over rounds of (traced - plain) / events recorded, the plain yield
// for scale, and the cost of writing the JSON per event (stop_trace).
// Fails if the trace dropped events (the buffer is sized for the run).
//   weft-bench-trace n=200000 rounds=7
#include <string>
#include <vector>

#include "common.hpp"

namespace {

double yields(long per) {
  auto body = [per] {
    for (long i = 0; i < per; ++i) weft::this_fiber::yield();
  };
  const auto t0 = wb::clock::now();
  auto f1 = weft::spawn(body);
  auto f2 = weft::spawn(body);
  f1.join();
  f2.join();
  return wb::ns_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"n", "rounds"});
    const long per = a.num("n", 200000) / 2;
    const long total = 2 * per;
    const int rounds = static_cast<int>(a.num("rounds", 7));

    weft::Config cfg = weft::Config::from_env();
    cfg.workers = 1;
    // Two events per yield, plus the spawns, joins and parks around them.
    cfg.trace_buffer_events = static_cast<std::size_t>(2 * total + 1024);
    weft::Runtime rt(cfg);

    std::vector<double> per_event, plain_yield, write_per_event;
    std::uint64_t events = 0;
    rt.block_on([&] { yields(per); });  // warm-up: stacks, caches
    for (int r = 0; r < rounds; ++r) {
      const double plain = rt.block_on([&] { return yields(per); });
      std::string json;
      rt.start_trace([&json](std::string_view j) { json.assign(j); });
      const double traced = rt.block_on([&] { return yields(per); });
      const auto t0 = wb::clock::now();
      const weft::TraceSummary sum = rt.stop_trace();
      const double write = wb::ns_since(t0);
      if (sum.dropped != 0)
        wb::die("the trace dropped %llu events", (unsigned long long)sum.dropped);
      events = sum.events;
      per_event.push_back((traced - plain) / double(sum.events));
      plain_yield.push_back(plain / double(total));
      write_per_event.push_back(write / double(sum.events));
    }
    wb::comment(
        "weft-bench-trace: 2 fibers alternate with yield on a 1-worker runtime (%s); n=%ld "
        "yields per run; %d paired rounds (plain, traced); %llu events per traced run; medians",
        wb::shape(rt).c_str(), total, rounds, (unsigned long long)events);
    wb::line("trace_record_ns_per_event", wb::median(per_event), "ns");
    wb::line("yield_switch_ns", wb::median(plain_yield), "ns");
    wb::line("trace_write_ns_per_event", wb::median(write_per_event), "ns");
    return 0;
  });
}
