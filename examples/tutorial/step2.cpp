// Tutorial step 2 (docs/tutorial/02-broadcast.md): every line a client
// writes goes to every client, through a broadcast channel.
#include <cstdio>
#include <exception>
#include <string>

#include "chat.hpp"

// [serve]
void serve(weft::net::TcpStream conn, int id, chat::Broadcast& room) {
  const std::string name = "guest" + std::to_string(id);
  weft::Receiver<std::string> inbox = room.subscribe(id);
  // A second fiber writes to the client whatever reaches its inbox, while
  // this one reads what the client says.
  weft::JoinHandle<void> writer = weft::spawn([&conn, inbox] {
    try {
      for (std::string& message : inbox) conn.write_all(message);
    } catch (const std::system_error&) {  // the client went away
    }
  });
  room.publish("* " + name + " joined\n");
  weft::io::BufReader in(conn);
  try {
    while (auto line = in.read_line(1024)) room.publish(name + ": " + *line + "\n");
  } catch (const weft::io::LimitExceeded&) {
  } catch (const std::system_error&) {
  }
  room.unsubscribe(id);  // closes the inbox: the writer drains it and ends
  writer.join();
  room.publish("* " + name + " left\n");
}
// [serve end]

int main(int argc, char** argv) try {
  // [main]
  weft::Runtime rt;
  chat::Broadcast room;
  rt.block_on([&] {
    weft::net::TcpListener listener = chat::listen(argc, argv);
    for (int id = 1;; ++id) {
      weft::net::TcpStream conn = listener.accept();
      weft::spawn([conn = std::move(conn), id, &room]() mutable {
        serve(std::move(conn), id, room);
      }).detach();
    }
  });
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
