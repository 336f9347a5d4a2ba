// Tutorial step 4 (docs/tutorial/04-a-scope-per-room.md): rooms, each a
// weft::scope holding its members' sessions; /close cancels a room.
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>

#include "rooms.hpp"

int main(int argc, char** argv) try {
  // [main]
  weft::Runtime rt;
  const std::chrono::milliseconds idle = chat::idle_limit(argc, argv);
  chat::Rooms rooms([&rooms, idle](chat::Client& client, chat::Room& room) {
    chat::serve(client, room, rooms, idle);
  });
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
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
