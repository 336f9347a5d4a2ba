// Tutorial step 6 (docs/tutorial/06-metrics-and-dumps.md): what the server
// is doing, from outside: SIGUSR1 writes a few counters, the Prometheus
// metrics and the fiber dump to stderr (SIGQUIT writes the dump alone).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
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
  const std::chrono::milliseconds idle = chat::idle_limit(argc, argv);
  chat::Rooms rooms([&rooms, idle](chat::Client& client, chat::Room& room) {
    chat::serve(client, room, rooms, idle);
  });
  try {
    rt.block_on([&] {
      weft::net::TcpListener listener = chat::listen(argc, argv);
      weft::scope([&](weft::Scope& server) {
        // [spawn_report]
        server.spawn(weft::FiberOptions{.name = "report"}, [&rt] { report_on_sigusr1(rt); });
        // [spawn_report end]
        for (int id = 1;; ++id) {
          auto client = std::make_unique<chat::Client>(listener.accept(), id);
          server.spawn([&server, &rooms, client = std::move(client)]() mutable {
            chat::greet(server, rooms, std::move(client));
          });
        }
      });
    });
  } catch (const weft::Cancelled&) {
    std::printf("chat: shut down\n");
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
