// Tutorial step 5 (docs/tutorial/05-shutdown-on-signals.md): SIGINT or
// SIGTERM cancels every fiber; sessions say goodbye in a shield and the
// server exits 0.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>

#include "rooms.hpp"

int main(int argc, char** argv) try {
  weft::Runtime rt;
  // [signals]
  rt.shutdown_on_signals({SIGINT, SIGTERM}, std::chrono::seconds(5));
  // [signals end]
  const std::chrono::milliseconds idle = chat::idle_limit(argc, argv);
  chat::Rooms rooms([&rooms, idle](chat::Client& client, chat::Room& room) {
    chat::serve(client, room, rooms, idle);
  });
  // [main]
  try {
    rt.block_on([&] {
      weft::net::TcpListener listener = chat::listen(argc, argv);
      weft::scope([&](weft::Scope& server) {
        for (int id = 1;; ++id) {
          auto client = std::make_unique<chat::Client>(listener.accept(), id);
          server.spawn([&server, &rooms, client = std::move(client)]() mutable {
            chat::greet(server, rooms, std::move(client));
          });
        }
      });
    });
  } catch (const weft::Cancelled&) {  // a signal: every fiber has ended by now
    std::printf("chat: shut down\n");
  }
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
