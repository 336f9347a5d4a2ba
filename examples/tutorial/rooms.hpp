// Rooms for the tutorial's chat server (docs/tutorial/04-a-scope-per-room.md):
// each room runs its members' sessions in a weft::scope of its own, so that
// closing a room cancels everything in it. Steps 4 to 6 include it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "chat.hpp"

namespace chat {

// [room]
struct Room {
  std::string name;
  Broadcast broadcast;
  weft::Scope* members = nullptr;  // the scope its sessions run in
};
// [room end]

class Rooms;
inline void serve(Client& client, Room& room, Rooms& rooms, std::chrono::milliseconds idle);

// [rooms]
// The open rooms by name. The first client to name a room starts it: a
// fiber "room <name>" in the server's scope, whose own scope runs the
// sessions of the room's members. close() ends a room.
class Rooms {
 public:
  // `idle`: how long a member may stay silent (serve()).
  explicit Rooms(std::chrono::milliseconds idle) : idle_(idle) {}

  void enter(weft::Scope& server, const std::string& name, std::unique_ptr<Client> client) {
    auto rooms = rooms_.lock();
    auto it = rooms->find(name);
    if (it == rooms->end()) {
      auto [tx, rx] = weft::unbounded_channel<std::unique_ptr<Client>>();
      it = rooms->emplace(name, std::move(tx)).first;
      server.spawn(weft::FiberOptions{.name = "room " + name},
                   [this, name, arrivals = std::move(rx)] { run(name, arrivals); });
    }
    (void)it->second.send(std::move(client));  // unbounded: never waits
  }

  // No one enters the room any more, and every session in it is cancelled.
  void close(Room& room) {
    rooms_.lock()->erase(room.name);
    room.members->cancel();
  }

 private:
  void run(const std::string& name, weft::Receiver<std::unique_ptr<Client>> arrivals) {
    Room room;
    room.name = name;
    weft::scope([&](weft::Scope& members) {
      room.members = &members;
      for (std::unique_ptr<Client>& client : arrivals) {
        const std::string fiber_name = "session " + client->name;
        members.spawn(
            weft::FiberOptions{.name = fiber_name},
            [this, &room, client = std::move(client)] { serve(*client, room, *this, idle_); });
      }
    });
  }

  std::chrono::milliseconds idle_;
  weft::Synchronized<std::map<std::string, weft::Sender<std::unique_ptr<Client>>>> rooms_;
};
// [rooms end]

// [greet]
// Asks a new client which room it wants and hands it over. Runs in the
// server's scope, so it must not fail: a failing child would cancel the
// whole server.
inline void greet(weft::Scope& server, Rooms& rooms, std::unique_ptr<Client> client) {
  try {
    client->conn.write_all("room? ");
    std::optional<std::string> name = client->in.read_line(64, std::chrono::seconds(10));
    if (name && !name->empty()) rooms.enter(server, *name, std::move(client));
  } catch (const weft::io::LimitExceeded&) {
  } catch (const weft::TimedOut&) {
  } catch (const std::system_error&) {
  }
}
// [greet end]

// [accept]
// The server's accept loop: each new client gets a greet() fiber in the
// server's scope. Returns only by an exception (Cancelled at shutdown).
inline void accept_clients(weft::net::TcpListener& listener, weft::Scope& server, Rooms& rooms) {
  for (int id = 1;; ++id) {
    auto client = std::make_unique<Client>(listener.accept(), id);
    server.spawn([&server, &rooms, client = std::move(client)]() mutable {
      greet(server, rooms, std::move(client));
    });
  }
}
// [accept end]

// [serve]
// A member's session: step 3's loop, plus /close, and a goodbye when the
// room is closed under it (its blocking calls then throw weft::Cancelled).
inline void serve(Client& client, Room& room, Rooms& rooms, std::chrono::milliseconds idle) {
  weft::this_fiber::set_label("user", client.name);  // shown in fiber dumps (step 6)
  weft::Receiver<std::string> inbox = room.broadcast.subscribe(client.id);
  room.broadcast.publish("* " + client.name + " joined " + room.name + "\n");
  std::optional<std::string> unsent;  // taken from the inbox, not yet written
  try {
    weft::scope([&](weft::Scope& s) {
      auto [lines_tx, lines] = weft::channel<std::string>(16);
      s.spawn([&client, tx = std::move(lines_tx)]() mutable { read_lines(client, std::move(tx)); });
      auto deadline = weft::Clock::now() + idle;
      for (bool open = true; open;) {
        weft::select(
            weft::on_recv(lines,
                          [&](std::optional<std::string> line) {
                            if (!line) {
                              open = false;
                            } else if (*line == "/close") {
                              room.broadcast.publish("* " + client.name + " closed the room\n");
                              rooms.close(room);  // cancels this session too
                            } else {
                              room.broadcast.publish(client.name + ": " + *line + "\n");
                              deadline = weft::Clock::now() + idle;
                            }
                          }),
            weft::on_recv(inbox,
                          [&](std::string message) {
                            unsent = std::move(message);
                            client.conn.write_all(*unsent);  // may throw Cancelled
                            unsent.reset();
                          }),
            weft::on_deadline(deadline, [&] {
              client.conn.write_all("* you were idle too long, bye\n");
              open = false;
            }));
      }
      s.cancel();  // the reader may be blocked in read(): cancel it
    });
  } catch (const std::system_error&) {  // a write failed: the client went away
  } catch (const weft::Cancelled&) {
    // The room is closing (or the server is): blocking calls would throw
    // again, so the goodbye runs in a shield, with a deadline of its own.
    weft::shield([&] {
      room.broadcast.unsubscribe(client.id);
      try {
        if (unsent) client.conn.write_all(*unsent, std::chrono::seconds(1));
        for (std::string& message : inbox) client.conn.write_all(message, std::chrono::seconds(1));
        client.conn.write_all("* bye\n", std::chrono::seconds(1));
      } catch (const std::exception&) {  // TimedOut, or the client went away
      }
    });
    throw;  // a cancelled fiber ends with Cancelled
  }
  room.broadcast.unsubscribe(client.id);
  room.broadcast.publish("* " + client.name + " left\n");
}
// [serve end]

}  // namespace chat
