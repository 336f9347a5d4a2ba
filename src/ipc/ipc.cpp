// weft::ipc: the frame pumps behind ipc::channel (design: docs/design/ipc.md).
//
// A channel is two in-process channels of encoded frames and two fibers:
//   writer pump: out channel -> socket. Batches the frames queued at that
//     moment (up to kBatch bytes) into one write. When every local Sender
//     is gone or closed it shuts the socket down for writing: the peer's
//     reader sees the end at a frame boundary and closes its Receiver.
//   reader pump: socket -> in channel. Parses the 4-byte length, refuses a
//     length over max_frame before allocating anything, and sends each
//     frame into the in channel, whose bound stops it reading the socket
//     while the local Receiver lags (the kernel's socket buffer then fills
//     and the peer's writes, then sends, wait: backpressure end to end).
// Everything a user sees (bounded waits, close, cancellation that loses
// nothing) is therefore the in-process channels' behaviour; the pumps only
// translate. Neither pump lets an exception escape: the first failure is
// recorded in the Link for Receiver::error(), and the pump closes its
// channel, so the user's sends or receives end with `closed`.
//
// A dead peer (killed, crashed): its socket is closed by the kernel. The
// reader sees end of stream (or ECONNRESET) and closes the in channel;
// the writer's next write fails with EPIPE and closes the out channel, so
// later sends return `closed`. A frame accepted by send() just before that
// may be lost with the peer, as with any send into a socket buffer.
#include "weft/ipc.hpp"

#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "weft/fiber.hpp"
#include "weft/sync.hpp"

namespace weft::ipc::detail {

namespace {
constexpr std::size_t kBatch = 64 * 1024;
constexpr std::size_t kMaxFrameLimit = std::size_t{1} << 30;

void put_u32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  out.append(b, 4);
}

std::uint32_t get_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(u[0]) | static_cast<std::uint32_t>(u[1]) << 8 |
         static_cast<std::uint32_t>(u[2]) << 16 | static_cast<std::uint32_t>(u[3]) << 24;
}
}  // namespace

class Link {
 public:
  Link(net::UnixStream s, std::size_t max) : stream(std::move(s)), max_frame(max) {}

  void fail(std::string why) {
    std::lock_guard g(mu);
    if (!error) error = std::move(why);
  }

  net::UnixStream stream;
  const std::size_t max_frame;
  mutable std::mutex mu;             // guards error (taken briefly, never across a park)
  std::optional<std::string> error;  // guarded by mu
  // Set by the writer pump when it ends; `written` (set before, read after
  // the Event, which orders them) says whether it wrote everything.
  Event writer_done;
  bool written = false;
};

namespace {

void write_pump(const std::shared_ptr<Link>& link, weft::Receiver<std::string> out) noexcept {
  try {
    std::string batch;
    while (std::optional<std::string> f = out.recv()) {
      batch.clear();
      put_u32(batch, static_cast<std::uint32_t>(f->size()));
      batch += *f;
      while (batch.size() < kBatch) {
        RecvResult<std::string> more = out.try_recv();
        if (!more.ok()) break;
        put_u32(batch, static_cast<std::uint32_t>(more->size()));
        batch += *more;
      }
      link->stream.write_all(batch);
    }
    link->stream.shutdown(net::Shutdown::write);  // every local Sender is gone
    link->written = true;
  } catch (const Cancelled&) {
    // The runtime is shutting down (or the fiber's scope was cancelled).
  } catch (const std::system_error& e) {
    link->fail("weft: ipc: write: " + e.code().message());
  } catch (const std::exception& e) {
    link->fail(std::string("weft: ipc: write: ") + e.what());
  }
  out.close();  // later sends see `closed`; queued frames are dropped
  link->writer_done.set();
}

void read_pump(const std::shared_ptr<Link>& link, weft::Sender<std::string> in) noexcept {
  try {
    std::string buf(kBatch, '\0');
    std::size_t have = 0;  // bytes of buf holding unparsed input from `start`
    std::size_t start = 0;
    auto fill = [&]() -> bool {  // false at end of stream
      if (start > 0) {
        std::memmove(buf.data(), buf.data() + start, have);
        start = 0;
      }
      const std::size_t n = link->stream.read(buf.data() + have, buf.size() - have);
      have += n;
      return n > 0;
    };
    for (;;) {
      while (have < 4) {
        if (!fill()) {
          if (have > 0)
            link->fail("weft: ipc: the peer closed the connection in the middle of a frame");
          in.close();
          return;
        }
      }
      const std::size_t len = get_u32(buf.data() + start);
      if (len > link->max_frame) {
        link->fail("weft: ipc: the peer sent a frame of " + std::to_string(len) +
                   " bytes, over the limit of " + std::to_string(link->max_frame) + " bytes");
        link->stream.shutdown(net::Shutdown::read);
        in.close();
        return;
      }
      std::string frame;
      frame.reserve(len);
      start += 4;
      have -= 4;
      while (frame.size() < len) {
        const std::size_t take = std::min(have, len - frame.size());
        frame.append(buf.data() + start, take);
        start += take;
        have -= take;
        if (frame.size() < len && !fill()) {
          link->fail("weft: ipc: the peer closed the connection in the middle of a frame");
          in.close();
          return;
        }
      }
      if (!in.send(std::move(frame)).ok()) return;  // the local Receiver is gone
    }
  } catch (const Cancelled&) {
  } catch (const std::system_error& e) {
    link->fail("weft: ipc: read: " + e.code().message());
  } catch (const std::exception& e) {
    link->fail(std::string("weft: ipc: read: ") + e.what());
  }
  in.close();
}

}  // namespace

Endpoints open(net::UnixStream stream, const Options& o) {
  if (o.capacity == 0)
    throw std::invalid_argument("weft: ipc: Options::capacity must be at least 1");
  if (o.max_frame == 0 || o.max_frame > kMaxFrameLimit) {
    throw std::invalid_argument("weft: ipc: Options::max_frame must be 1..1073741824 bytes");
  }
  auto link = std::make_shared<Link>(std::move(stream), o.max_frame);
  auto [out_tx, out_rx] = weft::channel<std::string>(o.capacity);
  auto [in_tx, in_rx] = weft::channel<std::string>(o.capacity);
  FiberOptions writer;
  writer.name = "ipc-writer";
  FiberOptions reader;
  reader.name = "ipc-reader";
  weft::spawn(writer, [link, rx = std::move(out_rx)]() mutable {
    write_pump(link, std::move(rx));
  }).detach();
  weft::spawn(reader, [link, tx = std::move(in_tx)]() mutable {
    read_pump(link, std::move(tx));
  }).detach();
  return Endpoints{std::move(out_tx), std::move(in_rx), std::move(link)};
}

std::size_t max_frame(const Link& link) noexcept {
  return link.max_frame;
}

std::optional<std::string> error(const Link& link) {
  std::lock_guard g(link.mu);
  return link.error;
}

bool wait_written(Link& link, Deadline deadline) {
  if (!link.writer_done.wait_until(deadline.when())) throw TimedOut();
  return link.written;
}

void receiver_gone(Link& link) noexcept {
  try {
    link.stream.shutdown(net::Shutdown::read);
  } catch (...) {
    // Already closed or never connected: the reader pump ends anyway.
  }
}

void throw_decode_error(const char* what) {
  throw Error(std::string("weft: ipc: cannot decode a frame: ") + what);
}

}  // namespace weft::ipc::detail
