// Tutorial step 4 (docs/tutorial/04-a-scope-per-room.md): rooms, each a
// weft::scope holding its members' sessions; /close cancels a room.
#include <cstdio>
#include <exception>

#include "rooms.hpp"

int main(int argc, char** argv) try {
  // [main]
  weft::Runtime rt;
  chat::Rooms rooms(chat::idle_limit(argc, argv));
  rt.block_on([&] {
    weft::net::TcpListener listener = chat::listen(argc, argv);
    weft::scope([&](weft::Scope& server) { chat::accept_clients(listener, server, rooms); });
  });
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
