// Tutorial step 5 (docs/tutorial/05-shutdown-on-signals.md): SIGINT or
// SIGTERM cancels every fiber; sessions say goodbye in a shield and the
// server exits 0.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>

#include "rooms.hpp"

int main(int argc, char** argv) try {
  weft::Runtime rt;
  // [signals]
  rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::seconds(5));
  // [signals end]
  chat::Rooms rooms(chat::idle_limit(argc, argv));
  // [main]
  try {
    rt.block_on([&] {
      weft::net::TcpListener listener = chat::listen(argc, argv);
      weft::scope([&](weft::Scope& server) { chat::accept_clients(listener, server, rooms); });
    });
  } catch (const weft::Cancelled&) {  // a signal: every fiber has ended by now
    std::printf("chat: shut down\n");
  }
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
