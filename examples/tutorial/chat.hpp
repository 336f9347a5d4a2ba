// The pieces of the tutorial's chat server (docs/tutorial/) that stay the
// same from the step that introduces them on; every stepN.cpp includes it.
// The text between "// [name]" and "// [name end]" markers is quoted by the
// tutorial (tests/tutorial/check_quotes.py keeps the two in sync).
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "weft/bufio.hpp"
#include "weft/net.hpp"
#include "weft/weft.hpp"

namespace chat {

// The index-th command-line argument as a number in lo..hi; `fallback`
// when there are fewer arguments.
inline long number_arg(int argc, char** argv, int index, long fallback, long lo, long hi) {
  if (argc <= index) return fallback;
  const std::string_view arg = argv[index];
  long v = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
  if (ec != std::errc() || end != arg.data() + arg.size() || v < lo || v > hi) {
    throw std::invalid_argument("chat: argument " + std::to_string(index) + " must be in " +
                                std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
                                std::string(arg) + "'");
  }
  return v;
}

// [listen]
// Binds 127.0.0.1 on the port given as the first argument (default 0: the
// kernel picks a free one) and prints the address it got.
inline weft::net::TcpListener listen(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(number_arg(argc, argv, 1, 0, 0, 65535));
  auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(port));
  std::printf("chat: listening on %s\n", listener.local_address().to_string().c_str());
  std::fflush(stdout);
  return listener;
}
// [listen end]

// [broadcast]
// A broadcast channel: each subscriber gets a bounded channel of its own and
// publish() offers every message to all of them without waiting. A
// subscriber more than 64 messages behind loses messages instead of slowing
// everyone down. Any fiber may call any member at any time.
class Broadcast {
 public:
  weft::Receiver<std::string> subscribe(int id) {
    auto [tx, rx] = weft::channel<std::string>(64);
    subscribers_.lock()->insert_or_assign(id, std::move(tx));
    return std::move(rx);
  }
  // Dropping the subscriber's Sender closes its channel: its receiver sees
  // the end once it has drained what was already queued.
  void unsubscribe(int id) { subscribers_.lock()->erase(id); }
  void publish(const std::string& message) {
    auto subscribers = subscribers_.lock();
    for (auto& [id, tx] : *subscribers) (void)tx.try_send(message);
  }

 private:
  weft::Synchronized<std::map<int, weft::Sender<std::string>>> subscribers_;
};
// [broadcast end]

// [client]
// A connection and the buffered reader over it, kept together (and at a
// stable address: the reader refers to the stream) so that a client can be
// handed from one fiber to another without losing bytes already buffered.
struct Client {
  Client(weft::net::TcpStream stream, int id)
      : conn(std::move(stream)), in(conn), id(id), name("guest" + std::to_string(id)) {}
  weft::net::TcpStream conn;
  weft::io::BufReader<weft::net::TcpStream> in;
  int id;
  std::string name;
};
// [client end]

// [read_lines]
// Sends each line the client writes to `lines`, until the client closes
// its end (or sends a line longer than 1 KiB); `lines` is closed when this
// returns, since its only Sender goes with it.
inline void read_lines(Client& client, weft::Sender<std::string> lines) {
  try {
    while (auto line = client.in.read_line(1024)) {
      if (!lines.send(std::move(*line))) return;  // nobody listens any more
    }
  } catch (const weft::io::LimitExceeded&) {
  } catch (const std::system_error&) {  // the connection was reset
  }
}
// [read_lines end]

// How long a client may stay silent, in ms: the second argument, default
// 60000.
inline std::chrono::milliseconds idle_limit(int argc, char** argv) {
  return std::chrono::milliseconds(number_arg(argc, argv, 2, 60000, 1, 86400000));
}

}  // namespace chat
