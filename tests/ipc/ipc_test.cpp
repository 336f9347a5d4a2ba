// weft::ipc on both I/O backends: codecs (bytes, JSON, a user codec),
// frame limits with their exact messages, close propagation, backpressure,
// cancellation that loses nothing, and two real processes (this binary run
// as a child through weft::process), including kill -9 of the child
// mid-stream.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/ipc_json.hpp"
#include "weft/net.hpp"
#include "weft/process.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::net::UnixListener;
using weft::net::UnixStream;
using weft::test::IoTest;
using weft::test::kPatience;
namespace ipc = weft::ipc;

std::string g_self;  // this binary, for the child processes

struct Job {
  int id = 0;
  std::string name;
  std::vector<double> weights;
  friend bool operator==(const Job&, const Job&) = default;
};
void to_json(nlohmann::json& j, const Job& v) {
  j = nlohmann::json{{"id", v.id}, {"name", v.name}, {"weights", v.weights}};
}
void from_json(const nlohmann::json& j, Job& v) {
  j.at("id").get_to(v.id);
  j.at("name").get_to(v.name);
  j.at("weights").get_to(v.weights);
}

// A user codec: a 64-bit integer as 8 raw bytes.
struct U64Codec {
  static std::string encode(std::uint64_t v) { return std::string(reinterpret_cast<char*>(&v), 8); }
  static std::uint64_t decode(std::string_view b) {
    if (b.size() != 8) throw std::runtime_error("want 8 bytes, got " + std::to_string(b.size()));
    std::uint64_t v;
    std::memcpy(&v, b.data(), 8);
    return v;
  }
};
static_assert(ipc::Codec<U64Codec, std::uint64_t>);
static_assert(ipc::Codec<ipc::JsonCodec<Job>, Job>);
static_assert(!ipc::Codec<U64Codec, std::string>);

using weft::test::message_of;

class IpcTest : public IoTest {};
WEFT_INSTANTIATE_IO(IpcTest);

TEST_P(IpcTest, BytesJsonAndUserCodecsRoundTrip) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<std::string>(std::move(a));
      auto [btx, brx] = ipc::channel<std::string>(std::move(b));
      for (std::string s : {std::string(), std::string("hello"), std::string(1 << 20, 'x'),
                            std::string("\0\1\2", 3)}) {
        ASSERT_TRUE(atx.send(s).ok());
        EXPECT_EQ(brx.recv(), std::optional<std::string>(s));
      }
      ASSERT_TRUE(btx.send("back").ok());
      EXPECT_EQ(arx.recv(), std::optional<std::string>("back"));
    }
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<std::vector<std::byte>>(std::move(a));
      auto [btx, brx] = ipc::channel<std::vector<std::byte>>(std::move(b));
      std::vector<std::byte> v{std::byte{0}, std::byte{255}, std::byte{7}};
      ASSERT_TRUE(atx.send(v).ok());
      EXPECT_EQ(brx.recv(), std::optional(v));
    }
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<Job>(std::move(a));
      auto [btx, brx] = ipc::channel<Job>(std::move(b));
      const Job j{42, "resize", {0.5, 1.5}};
      ASSERT_TRUE(atx.send(j).ok());
      EXPECT_EQ(brx.recv(), std::optional(j));
    }
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<std::uint64_t, U64Codec>(std::move(a));
      auto [btx, brx] = ipc::channel<std::uint64_t, U64Codec>(std::move(b));
      for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(atx.send(i * 7919).ok());
      for (std::uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(brx.recv(), std::optional(i * 7919));
    }
  });
}

TEST_P(IpcTest, ClosePropagatesBothWays) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto [a, b] = UnixStream::pair();
    auto [atx, arx] = ipc::channel<std::string>(std::move(a));
    auto [btx, brx] = ipc::channel<std::string>(std::move(b));
    ASSERT_TRUE(atx.send("one").ok());
    ASSERT_TRUE(atx.send("two").ok());
    EXPECT_TRUE(atx.drain(kPatience));
    EXPECT_TRUE(atx.is_closed());
    auto r = atx.send("three");
    EXPECT_EQ(r.status(), weft::ChannelStatus::closed);
    EXPECT_EQ(r.value(), "three");  // handed back
    // The peer drains, then sees the end; a clean close leaves no error.
    EXPECT_EQ(brx.recv(), std::optional<std::string>("one"));
    EXPECT_EQ(brx.recv(), std::optional<std::string>("two"));
    EXPECT_EQ(brx.recv(), std::nullopt);
    EXPECT_EQ(brx.error(), std::nullopt);
    // The other direction still works (a half close).
    ASSERT_TRUE(btx.send("still open").ok());
    EXPECT_EQ(arx.recv(), std::optional<std::string>("still open"));
    // Dropping every sender closes too.
    { auto gone = std::move(btx); }
    EXPECT_EQ(arx.recv(), std::nullopt);
  });
}

TEST_P(IpcTest, FrameLimitsAreEnforcedWithoutAllocating) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    ipc::Options o;
    o.max_frame = 1000;
    auto [a, b] = UnixStream::pair();
    auto [atx, arx] = ipc::channel<std::string>(std::move(a), o);
    EXPECT_EQ(message_of([&tx = atx] { (void)tx.send(std::string(1001, 'x')); }),
              "weft: ipc: a frame of 1001 bytes exceeds the limit of 1000 bytes");
    EXPECT_THROW((void)atx.send(std::string(2000, 'x')), ipc::FrameTooLarge);
    EXPECT_TRUE(atx.send(std::string(1000, 'x')).ok());  // the limit itself is fine
    // A raw peer that claims a 4 GiB frame: refused before any allocation.
    const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 'x'};
    b.write_all(huge, sizeof huge, kPatience);
    EXPECT_EQ(arx.recv(), std::nullopt);
    EXPECT_EQ(arx.error(),
              std::optional<std::string>(
                  "weft: ipc: the peer sent a frame of 4294967295 bytes, over the limit of 1000 "
                  "bytes"));
    EXPECT_EQ(message_of([] { (void)ipc::channel<std::string>(UnixStream::pair().first, {0}); }),
              "weft: ipc: Options::capacity must be at least 1");
    ipc::Options big;
    big.max_frame = (std::size_t{1} << 30) + 1;
    EXPECT_EQ(message_of([&] { (void)ipc::channel<std::string>(UnixStream::pair().first, big); }),
              "weft: ipc: Options::max_frame must be 1..1073741824 bytes");
  });
}

TEST_P(IpcTest, TruncatedFramesAndBadJsonAreReported) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<std::string>(std::move(a));
      const unsigned char partial[] = {10, 0, 0, 0, 'a', 'b'};
      b.write_all(partial, sizeof partial, kPatience);
      b.close();
      EXPECT_EQ(arx.recv(), std::nullopt);
      EXPECT_EQ(arx.error(), std::optional<std::string>(
                                 "weft: ipc: the peer closed the connection in the middle of a "
                                 "frame"));
    }
    {
      auto [a, b] = UnixStream::pair();
      auto [atx, arx] = ipc::channel<Job>(std::move(a));
      const unsigned char frame[] = {5, 0, 0, 0, '{', '"', 'i', 'd', '"'};
      b.write_all(frame, sizeof frame, kPatience);
      const std::string m = message_of([&rx = arx] { (void)rx.recv_until(kPatience); });
      EXPECT_EQ(m.rfind("weft: ipc: cannot decode a frame: [json.exception.parse_error", 0), 0u)
          << m;
    }
  });
}

TEST_P(IpcTest, BoundedBackpressureAndCancellationLoseNothing) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    ipc::Options o;
    o.capacity = 2;
    auto [a, b] = UnixStream::pair();
    auto [atx, arx] = ipc::channel<std::string>(std::move(a), o);
    auto [btx, brx] = ipc::channel<std::string>(std::move(b), o);
    // Nobody receives on b: the local queues and the socket fill up, then
    // sends wait and time out.
    const std::string chunk(64 * 1024, 'q');
    int sent = 0;
    for (;;) {
      auto r = atx.send_until(chunk, 50ms);
      if (r.status() == weft::ChannelStatus::timed_out) break;
      ASSERT_TRUE(r.ok());
      ASSERT_LT(++sent, 100000);
    }
    EXPECT_GT(sent, 2);
    // A cancelled recv takes nothing.
    auto [c, d] = UnixStream::pair();
    auto [ctx, crx] = ipc::channel<std::string>(std::move(c));
    auto [dtx, drx] = ipc::channel<std::string>(std::move(d));
    auto waiter = weft::spawn([&rx = drx] { return rx.recv(); });
    weft::this_fiber::sleep_for(20ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), weft::Cancelled);
    ASSERT_TRUE(ctx.send("kept").ok());
    EXPECT_EQ(drx.recv(), std::optional<std::string>("kept"));
    // Everything the first sender managed to send arrives, in order.
    int got = 0;
    while (got < sent) {
      auto v = brx.recv_until(kPatience);
      ASSERT_TRUE(v.has_value());
      ASSERT_EQ(*v, chunk);
      ++got;
    }
    EXPECT_THROW((void)brx.recv_until(20ms), weft::TimedOut);
  });
}

// --- two processes -----------------------------------------------------------------

// The child: connects to argv path, then per mode: "echo" answers each Job
// with id+1 until the end; "stream" sends Jobs forever.
int child_main(const std::string& mode, const std::string& path) {
  weft::Runtime rt;
  return rt.block_on([&] {
    auto [tx, rx] = ipc::channel<Job>(UnixStream::connect(path, kPatience));
    if (mode == "echo") {
      while (std::optional<Job> j = rx.recv()) {
        j->id += 1;
        if (!tx.send(*j).ok()) return 3;
      }
      return tx.drain(kPatience) ? 0 : 5;  // before the process exits
    }
    for (int i = 0;; ++i) {
      if (!tx.send(Job{i, "tick", {}}).ok()) return 4;
    }
  });
}

weft::process::Child spawn_child(const std::string& mode, const std::string& path) {
  return weft::process::Command(g_self).args({"--ipc-child", mode, path}).spawn();
}

class IpcProcessTest : public IoTest {};
WEFT_INSTANTIATE_IO_BACKENDS(IpcProcessTest);

TEST_P(IpcProcessTest, JsonJobsToAChildProcessAndBack) {
  WEFT_IO_RUNTIME(rt);
  weft::test::TempDir dir;
  const std::string path = (dir.path() / "ipc.sock").string();
  rt.block_on([&] {
    UnixListener l = UnixListener::bind(path);
    weft::process::Child child = spawn_child("echo", path);
    auto [tx, rx] = ipc::channel<Job>(l.accept(kPatience));
    const int n = static_cast<int>(weft::test::scaled(2000, 200));
    auto sender = weft::spawn([&, tx = tx] {
      for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(Job{i, "job", {double(i)}}).ok());
      tx.close();
    });
    for (int i = 0; i < n; ++i) {
      std::optional<Job> j = rx.recv_until(kPatience);
      ASSERT_TRUE(j.has_value());
      EXPECT_EQ(j->id, i + 1);
      EXPECT_EQ(j->weights, std::vector<double>{double(i)});
    }
    sender.join();
    EXPECT_EQ(rx.recv_until(kPatience), std::nullopt);  // the child's clean end
    EXPECT_EQ(child.wait(kPatience).code(), std::optional<int>(0));
  });
}

TEST_P(IpcProcessTest, KillNineOfThePeerClosesTheChannel) {
  WEFT_IO_RUNTIME(rt);
  weft::test::TempDir dir;
  const std::string path = (dir.path() / "ipc.sock").string();
  rt.block_on([&] {
    UnixListener l = UnixListener::bind(path);
    weft::process::Child child = spawn_child("stream", path);
    auto [tx, rx] = ipc::channel<Job>(l.accept(kPatience));
    for (int i = 0; i < 100; ++i) {
      std::optional<Job> j = rx.recv_until(kPatience);
      ASSERT_TRUE(j.has_value());
      EXPECT_EQ(j->id, i);
    }
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(kPatience).signal(), std::optional<int>(SIGKILL));
    // What was in flight still arrives, in order, then the end.
    int next = 100;
    for (;;) {
      std::optional<Job> j = rx.recv_until(kPatience);
      if (!j) break;
      EXPECT_EQ(j->id, next++);
    }
    // Sends fail once the writer hits the dead socket (at the latest at the
    // second send: the first may still be queued).
    bool closed = false;
    for (int i = 0; i < 1000 && !closed; ++i) {
      closed = tx.send_until(Job{}, kPatience).status() == weft::ChannelStatus::closed;
      if (!closed) weft::this_fiber::sleep_for(1ms);
    }
    EXPECT_TRUE(closed);
  });
}

}  // namespace

int main(int argc, char** argv) {
  g_self = argv[0];
  if (argc == 4 && std::strcmp(argv[1], "--ipc-child") == 0) return child_main(argv[2], argv[3]);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
