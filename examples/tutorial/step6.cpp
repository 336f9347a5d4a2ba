// Tutorial step 6 (docs/tutorial/06-metrics-and-dumps.md): what the server
// is doing, from outside: SIGUSR1 writes a few counters, the Prometheus
// metrics and the fiber dump to stderr (SIGQUIT writes the dump alone).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "rooms.hpp"
#include "weft/metrics.hpp"
#include "weft/signal.hpp"

// [report]
// Runs until cancelled: on each SIGUSR1, writes the runtime's counters, its
// metrics in Prometheus' text format and a dump of every fiber to stderr.
void report_on_sigusr1(const weft::Runtime& rt) {
  weft::signal::Listener usr1({SIGUSR1});
  for (;;) {
    usr1.wait();
    const weft::RuntimeStats stats = rt.stats();
    std::string report = "chat: " + std::to_string(stats.fibers_alive) + " fibers alive, " +
                         std::to_string(stats.fibers_parked) + " parked, " +
                         std::to_string(stats.fibers_spawned) + " spawned\n";
    weft::metrics::write_prometheus(report);
    report += rt.dump();
    report += "chat: end of report\n";
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
  }
}
// [report end]

int main(int argc, char** argv) try {
  weft::Runtime rt;
  rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::seconds(5));
  chat::Rooms rooms(chat::idle_limit(argc, argv));
  try {
    rt.block_on([&] {
      weft::net::TcpListener listener = chat::listen(argc, argv);
      weft::scope([&](weft::Scope& server) {
        // [spawn_report]
        server.spawn(weft::FiberOptions{.name = "report"}, [&rt] { report_on_sigusr1(rt); });
        // [spawn_report end]
        chat::accept_clients(listener, server, rooms);
      });
    });
  } catch (const weft::Cancelled&) {
    std::printf("chat: shut down\n");
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
