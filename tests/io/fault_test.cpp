// The I/O layer's fault injection (src/io/fault.hpp) on both backends:
// failures reach callers as the real errors would (fs, net), short
// transfers are completed by the write_all/read_exact loops, EAGAIN storms
// only delay, and after=/count=/path= select the operations hit.
#include "io/fault.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <system_error>

#include "common/io_util.hpp"
#include "weft/fs.hpp"
#include "weft/net.hpp"
#include "weft/process.hpp"
#include "weft/weft.hpp"

namespace {

namespace fault = weft::detail::io::fault;
using weft::test::IoTest;

// Installs rules for one test and removes them at its end.
class FaultTest : public IoTest {
 protected:
  void SetUp() override {
    fault::clear();
    if (!fault::add(fault::parse_rule("op=statx,errno=EIO,path=/nonexistent-probe")))
      GTEST_SKIP() << "fault injection compiled out (WEFT_FAULT_INJECTION=OFF)";
    fault::clear();
  }
  void TearDown() override { fault::clear(); }
  static void rule(const char* text) { ASSERT_TRUE(fault::add(fault::parse_rule(text))); }
};
WEFT_INSTANTIATE_IO_BACKENDS(FaultTest);

int code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

TEST_P(FaultTest, FileWriteAndFsyncFailWithTheInjectedErrorOnTheMatchingPathOnly) {
  weft::test::TempDir dir;
  const std::string target = (dir.path() / "data.aof").string();
  const std::string other = (dir.path() / "other").string();
  rule(("op=write,path=" + target + ",errno=ENOSPC,after=1,count=2").c_str());
  rule(("op=fsync,path=" + target + ",errno=EIO,count=1").c_str());
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    namespace wfs = weft::fs;
    auto f = wfs::File::open(target, wfs::OpenMode::write | wfs::OpenMode::create, 0644);
    auto g = wfs::File::open(other, wfs::OpenMode::write | wfs::OpenMode::create, 0644);
    f.write_all(std::string("first"));  // after=1: passes
    EXPECT_EQ(code_of([&] { f.write_all(std::string("second")); }), ENOSPC);
    EXPECT_EQ(code_of([&] { f.write_all(std::string("third")); }), ENOSPC);
    f.write_all(std::string("fourth"));  // count=2 used up
    g.write_all(std::string("never hit"));
    EXPECT_EQ(code_of([&] { f.fdatasync(); }), EIO);
    f.fdatasync();
    g.fsync();
  });
  EXPECT_GE(fault::injected(), 3u);
  std::ifstream in(target, std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "firstfourth");
}

TEST_P(FaultTest, ShortWritesAndReadsAreCompletedByTheLoops) {
  rule("op=send|write|recv|read,short=3");
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    const auto addr = listener.local_address();
    const std::string msg(10000, 'x');
    auto sender = weft::spawn([&] {
      auto c = weft::net::TcpStream::connect(addr);
      c.write_all(msg);
      c.shutdown(weft::net::Shutdown::write);
    });
    auto s = listener.accept();
    std::string got(msg.size(), '\0');
    s.read_exact(got.data(), got.size());
    EXPECT_EQ(got, msg);
    char one = 0;
    EXPECT_EQ(s.read(&one, 1), 0u);
    sender.join();
  });
}

TEST_P(FaultTest, ResetAndBrokenPipeMidReplyReachTheWriter) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    auto c = weft::net::TcpStream::connect(listener.local_address());
    auto s = listener.accept();
    rule("op=send,errno=ECONNRESET,after=2,count=1");
    const std::string chunk(100, 'y');
    s.write_all(chunk);
    s.write_all(chunk);
    EXPECT_EQ(code_of([&] { s.write_all(chunk); }), ECONNRESET);
    rule("op=send,errno=EPIPE,count=1");
    EXPECT_EQ(code_of([&] { s.write_all(chunk); }), EPIPE);
    s.write_all(chunk);
  });
}

TEST_P(FaultTest, AcceptRetriesThroughEmfile) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    rule("op=accept,errno=EMFILE,count=3");
    auto client =
        weft::spawn([&] { return weft::net::TcpStream::connect(listener.local_address()); });
    auto s = listener.accept();  // backs off and retries, as for a real EMFILE
    EXPECT_TRUE(s.is_open());
    (void)client.join();
  });
  EXPECT_GE(fault::injected(), 3u);
}

TEST_P(FaultTest, EagainStormsOnlyDelay) {
  rule("op=recv|send,errno=EAGAIN,prob=0.5");
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto listener = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    const auto addr = listener.local_address();
    auto echo = weft::spawn([&] {
      auto s = listener.accept();
      char buf[256];
      for (;;) {
        const std::size_t n = s.read(buf, sizeof buf);
        if (n == 0) return;
        s.write_all(buf, n);
      }
    });
    auto c = weft::net::TcpStream::connect(addr);
    for (int i = 0; i < 200; ++i) {
      const std::string m = "message " + std::to_string(i);
      c.write_all(m);
      std::string back(m.size(), '\0');
      c.read_exact(back.data(), back.size());
      ASSERT_EQ(back, m);
    }
    c.shutdown(weft::net::Shutdown::write);
    echo.join();
  });
}

// A child's pipes (weft::process) under short transfers: the data goes
// through whole; an injected EIO on the pipe read reaches the reader.
TEST_P(FaultTest, ChildPipesSurviveShortTransfersAndReportErrors) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    using weft::process::Stdio;
    auto child = weft::process::Command("cat").std_in(Stdio::pipe).std_out(Stdio::pipe).spawn();
    rule("op=write|read,short=5");
    const std::string msg(20000, 'p');
    auto writer = weft::spawn([&] {
      child.stdin_pipe().write_all(msg);
      child.stdin_pipe().close();
    });
    EXPECT_EQ(child.stdout_pipe().read_to_end(), msg);
    writer.join();
    fault::clear();
    child.wait();
    auto other = weft::process::Command("cat").std_in(Stdio::pipe).std_out(Stdio::pipe).spawn();
    rule("op=read,errno=EIO,count=1");
    other.stdin_pipe().write_all(std::string("x"));
    EXPECT_EQ(code_of([&] { (void)other.stdout_pipe().read_to_end(); }), EIO);
    other.stdin_pipe().close();
    other.wait();
  });
}

TEST(FaultRules, ParseErrorsNameTheField) {
  EXPECT_THROW(fault::parse_rule("errno=EIO"), std::invalid_argument);  // no op
  EXPECT_THROW(fault::parse_rule("op=write"), std::invalid_argument);   // no effect
  EXPECT_THROW(fault::parse_rule("op=bogus,errno=EIO"), std::invalid_argument);
  EXPECT_THROW(fault::parse_rule("op=write,errno=EIO,count=x"), std::invalid_argument);
  EXPECT_THROW(fault::parse_rule("op=write,colour=red"), std::invalid_argument);
  const fault::Rule r = fault::parse_rule("op=write|fsync,errno=EDQUOT,path=*.aof,after=2,count=5");
  EXPECT_EQ(r.error, EDQUOT);
  EXPECT_EQ(r.path, "*.aof");
  EXPECT_EQ(r.after, 2u);
  EXPECT_EQ(r.count, 5u);
}

}  // namespace
