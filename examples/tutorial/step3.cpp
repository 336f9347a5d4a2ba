// Tutorial step 3 (docs/tutorial/03-select-and-idle-clients.md): one fiber
// per client waits for whichever comes first - a line from the client, a
// message for it, or its idle deadline - with weft::select.
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "chat.hpp"

// [serve]
void serve(chat::Client& client, chat::Broadcast& room, std::chrono::milliseconds idle) {
  weft::Receiver<std::string> inbox = room.subscribe(client.id);
  room.publish("* " + client.name + " joined\n");
  try {
    weft::scope([&](weft::Scope& s) {
      auto [lines_tx, lines] = weft::channel<std::string>(16);
      s.spawn([&client, tx = std::move(lines_tx)]() mutable {
        chat::read_lines(client, std::move(tx));
      });
      auto deadline = weft::Clock::now() + idle;
      for (bool open = true; open;) {
        weft::select(
            weft::on_recv(lines,
                          [&](std::optional<std::string> line) {
                            if (!line) {  // the client closed its end
                              open = false;
                              return;
                            }
                            room.publish(client.name + ": " + *line + "\n");
                            deadline = weft::Clock::now() + idle;
                          }),
            weft::on_recv(inbox, [&](std::string message) { client.conn.write_all(message); }),
            weft::on_deadline(deadline, [&] {
              client.conn.write_all("* you were idle too long, bye\n");
              open = false;
            }));
      }
      s.cancel();  // the reader may be blocked in read(): cancel it
    });
  } catch (const std::system_error&) {  // a write failed: the client went away
  }
  room.unsubscribe(client.id);
  room.publish("* " + client.name + " left\n");
}
// [serve end]

int main(int argc, char** argv) try {
  // [main]
  weft::Runtime rt;
  chat::Broadcast room;
  const std::chrono::milliseconds idle = chat::idle_limit(argc, argv);
  rt.block_on([&] {
    weft::net::TcpListener listener = chat::listen(argc, argv);
    for (int id = 1;; ++id) {
      auto client = std::make_unique<chat::Client>(listener.accept(), id);
      weft::spawn([client = std::move(client), &room, idle] {
        serve(*client, room, idle);
      }).detach();
    }
  });
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
