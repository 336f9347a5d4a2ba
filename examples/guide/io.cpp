// docs/guide/io.md: sockets, files, processes and signals, all parking only
// the calling fiber.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>

#include "check.hpp"
#include "weft/bufio.hpp"
#include "weft/net.hpp"
#include "weft/signal.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

int main() {
  weft::Runtime rt;
  rt.block_on([] {
    // [tcp]
    auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    weft::spawn([&listener] {
      weft::net::TcpStream conn = listener.accept();
      char buf[256];
      while (std::size_t n = conn.read(buf, sizeof buf, 5s))  // 0: the peer closed
        conn.write_all(buf, n);
    }).detach();

    weft::net::TcpStream client = weft::net::TcpStream::connect(listener.local_address(), 5s);
    client.write_all("ping\n");
    weft::io::BufReader in(client);
    std::optional<std::string> echoed = in.read_line(64, 5s);
    client.shutdown(weft::net::Shutdown::write);  // the echo fiber reads 0 and ends
    // [tcp end]
    guide::check(echoed == "ping", "echo over TCP");

    // [files]
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("weft-guide-" + std::to_string(::getpid()));
    weft::fs::create_dirs(dir);
    weft::fs::write_file_atomic(dir / "state.json", "{\"n\": 1}");  // temp + fsync + rename
    std::string state = weft::fs::read_file(dir / "state.json");
    weft::fs::remove_all(dir);
    // [files end]
    guide::check(state == "{\"n\": 1}", "file round trip");

    // [process]
    weft::process::Output out =
        weft::process::Command("sh").args({"-c", "echo hi; exit 3"}).output();
    // out.out == "hi\n", out.status.code() == 3
    // [process end]
    guide::check(out.out == "hi\n" && !out.status.success(), "a child process");

    // [signals]
    weft::signal::Listener usr1({SIGUSR1});  // counts SIGUSR1 from now on
    ::raise(SIGUSR1);
    int sig = usr1.wait(5s);  // parks this fiber only
    // [signals end]
    guide::check(sig == SIGUSR1, "a signal");
  });
}
