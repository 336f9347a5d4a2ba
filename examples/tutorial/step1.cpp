// Tutorial step 1 (docs/tutorial/01-one-fiber-per-connection.md): a server
// that greets each client and repeats its lines back, one fiber per
// connection.
#include <cstdio>
#include <exception>
#include <string>

#include "chat.hpp"

// [serve]
void serve(weft::net::TcpStream conn, int id) {
  const std::string name = "guest" + std::to_string(id);
  weft::io::BufReader in(conn);
  conn.write_all("welcome, " + name + "\n");
  while (auto line = in.read_line(1024)) {
    conn.write_all(name + ": " + *line + "\n");
  }
}
// [serve end]

int main(int argc, char** argv) try {
  // [main]
  weft::Runtime rt;
  rt.block_on([&] {
    weft::net::TcpListener listener = chat::listen(argc, argv);
    for (int id = 1;; ++id) {
      weft::net::TcpStream conn = listener.accept();
      weft::spawn([conn = std::move(conn), id]() mutable { serve(std::move(conn), id); }).detach();
    }
  });
  // [main end]
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
