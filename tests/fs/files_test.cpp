// File::seek/tell/set_len, fs::read_dir (lazy), copy_file, symlink/read_link,
// set_permissions, and io::BufReader/BufWriter over files, TCP streams and
// pipes, on both I/O backends; every error with its exact message.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/bufio.hpp"
#include "weft/fs.hpp"
#include "weft/net.hpp"
#include "weft/process.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::test::IoTest;
using weft::test::kPatience;
using weft::test::TempDir;
namespace fs = weft::fs;

using weft::test::message_of;

class FilesTest : public IoTest {};
WEFT_INSTANTIATE_IO(FilesTest);

TEST_P(FilesTest, SeekTellAndSetLen) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  rt.block_on([&] {
    const auto p = dir.path() / "f";
    fs::File f = fs::File::open(p, fs::OpenMode::read | fs::OpenMode::write | fs::OpenMode::create);
    f.write_all("0123456789");
    EXPECT_EQ(f.tell(), 10u);
    EXPECT_EQ(f.seek(2), 2u);
    char buf[3];
    EXPECT_EQ(f.read_exact(buf, 3), 3u);
    EXPECT_EQ(std::string(buf, 3), "234");
    EXPECT_EQ(f.seek(-2, fs::File::Whence::end), 8u);
    EXPECT_EQ(f.read_exact(buf, 3), 2u);
    EXPECT_EQ(f.seek(1, fs::File::Whence::current), 11u);  // past the end is allowed
    f.write_all("x");                                      // leaves a hole at 10
    EXPECT_EQ(f.size(), 12u);
    f.set_len(4);
    EXPECT_EQ(f.size(), 4u);
    EXPECT_EQ(fs::read_file(p), "0123");
    EXPECT_EQ(message_of([&] { f.seek(-1); }), "weft: fs::File::seek: Invalid argument");
    f.close();
    EXPECT_EQ(message_of([&] { f.tell(); }), "weft: fs::File::seek: Bad file descriptor");
  });
}

TEST_P(FilesTest, ReadDirListsLazilyWithTypes) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  rt.block_on([&] {
    const int n = static_cast<int>(weft::test::scaled(3000, 300));  // several getdents blocks
    std::set<std::string> want;
    for (int i = 0; i < n; ++i) {
      const std::string name = "file-with-a-longish-name-" + std::to_string(i);
      fs::write_file(dir.path() / name, "x");
      want.insert(name);
    }
    fs::create_dirs(dir.path() / "sub");
    fs::symlink("file-with-a-longish-name-0", dir.path() / "link");
    std::set<std::string> got;
    int dirs = 0, links = 0;
    for (const fs::DirEntry& e : fs::read_dir(dir.path())) {
      if (e.type == fs::FileType::directory) {
        ++dirs;
        EXPECT_EQ(e.name, "sub");
      } else if (e.type == fs::FileType::symlink) {
        ++links;
        EXPECT_EQ(e.path, dir.path() / "link");
      } else {
        EXPECT_EQ(e.type, fs::FileType::regular);
        got.insert(e.name);
      }
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(dirs, 1);
    EXPECT_EQ(links, 1);
    fs::ReadDir empty = fs::read_dir(dir.path() / "sub");
    EXPECT_EQ(empty.next(), std::nullopt);
    EXPECT_EQ(
        message_of([&] { (void)fs::read_dir(dir.path() / "missing"); }),
        "weft: read_dir '" + (dir.path() / "missing").string() + "': No such file or directory");
    EXPECT_EQ(message_of([&] { (void)fs::read_dir(dir.path() / "link"); }),
              "weft: read_dir '" + (dir.path() / "link").string() + "': Not a directory");
  });
}

TEST_P(FilesTest, CopyLinksAndPermissions) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  rt.block_on([&] {
    const auto a = dir.path() / "a", b = dir.path() / "b";
    const std::string data(3 << 20, 'd');
    fs::write_file(a, data, 0640);
    fs::set_permissions(a, 0751);
    EXPECT_EQ(fs::metadata(a).permissions, 0751u);
    EXPECT_EQ(fs::copy_file(a, b), data.size());
    EXPECT_EQ(fs::read_file(b), data);
    EXPECT_EQ(fs::metadata(b).permissions, 0751u);
    EXPECT_EQ(message_of([&] { fs::copy_file(a, b); }),
              "weft: copy_file '" + a.string() + "' -> '" + b.string() + "': File exists");
    fs::write_file(a, "short");
    EXPECT_EQ(fs::copy_file(a, b, /*overwrite=*/true), 5u);
    EXPECT_EQ(fs::read_file(b), "short");
    EXPECT_EQ(
        message_of([&] { fs::copy_file(dir.path(), b, true); }),
        "weft: copy_file '" + dir.path().string() + "' -> '" + b.string() + "': Is a directory");

    fs::symlink("a", dir.path() / "l");
    EXPECT_EQ(fs::read_link(dir.path() / "l"), std::filesystem::path("a"));
    EXPECT_EQ(fs::read_file(dir.path() / "l"), "short");
    const std::string long_target(1000, 't');
    fs::symlink(long_target, dir.path() / "dangling");
    EXPECT_EQ(fs::read_link(dir.path() / "dangling").string(), long_target);
    EXPECT_EQ(message_of([&] { fs::symlink("a", dir.path() / "l"); }),
              "weft: symlink 'a' -> '" + (dir.path() / "l").string() + "': File exists");
    EXPECT_EQ(message_of([&] { (void)fs::read_link(a); }),
              "weft: read_link '" + a.string() + "': Invalid argument");
    EXPECT_EQ(message_of([&] { fs::set_permissions(dir.path() / "nope", 0600); }),
              "weft: set_permissions '" + (dir.path() / "nope").string() +
                  "': No such file or directory");
    EXPECT_EQ(message_of([&] { fs::set_permissions(a, 010000); }),
              "weft: set_permissions: bits outside 07777");
  });
}

// --- buffered streams ------------------------------------------------------------

TEST_P(FilesTest, BufReaderLinesAndLimitsOverAFile) {
  WEFT_IO_RUNTIME(rt);
  TempDir dir;
  rt.block_on([&] {
    const auto p = dir.path() / "lines";
    fs::write_file(p, "one\ntwo\r\n\nthree-is-long\nlast");
    fs::File f = fs::File::open(p, fs::OpenMode::read);
    weft::io::BufReader in(f, 4);  // a tiny buffer: lines span refills
    EXPECT_EQ(in.read_line(100), std::optional<std::string>("one"));
    EXPECT_EQ(in.read_line(100), std::optional<std::string>("two"));
    EXPECT_EQ(in.read_line(100), std::optional<std::string>(""));
    EXPECT_EQ(message_of([&] { (void)in.read_line(5); }),
              "weft: io: no '\\n' within the limit of 5 bytes");
    (void)in.read_until('\n', 100);                                    // the rest of the long line
    EXPECT_EQ(in.read_line(100), std::optional<std::string>("last"));  // no newline at the end
    EXPECT_EQ(in.read_line(100), std::nullopt);

    fs::File g = fs::File::open(p, fs::OpenMode::read);
    weft::io::BufReader all(g);
    EXPECT_EQ(all.read_until(';', 100), std::optional<std::string>(fs::read_file(p)));
    fs::File h = fs::File::open(p, fs::OpenMode::read);
    weft::io::BufReader r2(h);
    EXPECT_EQ(message_of([&] { (void)r2.read_to_end(10); }),
              "weft: io: more than 10 bytes before the end of the stream");
    fs::File k = fs::File::open(p, fs::OpenMode::read);
    weft::io::BufReader r3(k);
    EXPECT_EQ(r3.read_to_end(1000), fs::read_file(p));
    // read_until itself stops at the limit (read_line's own check of the
    // line's length would hide a read_until that read on): exactly `limit`
    // bytes are consumed, the rest stays readable.
    fs::File m = fs::File::open(p, fs::OpenMode::read);
    weft::io::BufReader r4(m, 4);
    EXPECT_EQ(message_of([&] { (void)r4.read_until(';', 10); }),
              "weft: io: no ';' within the limit of 10 bytes");
    EXPECT_EQ(r4.read_until('\n', 100), std::optional<std::string>("three-is-long\n"));
    EXPECT_EQ(message_of([&] { weft::io::BufReader<fs::File> bad(k, 0); }),
              "weft: io::BufReader capacity must be at least 1");
  });
}

TEST_P(FilesTest, BufWriterAndReaderOverTcpAndPipes) {
  WEFT_IO_RUNTIME(rt);
  rt.block_on([&] {
    auto l = weft::net::TcpListener::bind(weft::net::Address::loopback_ipv4(0));
    auto client = weft::net::TcpStream::connect(l.local_address(), kPatience);
    auto server = l.accept(kPatience);
    const int lines = 10000;
    auto writer = weft::spawn([&] {
      weft::io::BufWriter out(client, 1000);
      for (int i = 0; i < lines; ++i) out.write("line " + std::to_string(i) + "\n", kPatience);
      EXPECT_GT(out.buffered(), 0u);
      out.flush(kPatience);
      EXPECT_EQ(out.buffered(), 0u);
      client.shutdown(weft::net::Shutdown::write);
    });
    weft::io::BufReader in(server);
    for (int i = 0; i < lines; ++i) {
      ASSERT_EQ(in.read_line(64, kPatience),
                std::optional<std::string>("line " + std::to_string(i)));
    }
    EXPECT_EQ(in.read_line(64, kPatience), std::nullopt);
    writer.join();
    // A deadline applies to the reads a call makes.
    auto c2 = weft::net::TcpStream::connect(l.local_address(), kPatience);
    auto s2 = l.accept(kPatience);
    c2.write_all("partial line", kPatience);
    weft::io::BufReader r2(s2);
    EXPECT_THROW((void)r2.read_line(100, 20ms), weft::TimedOut);

    auto child = weft::process::Command("printf")
                     .arg("a\\nb\\nc")
                     .std_out(weft::process::Stdio::pipe)
                     .spawn();
    weft::io::BufReader pr(child.stdout_pipe());
    EXPECT_EQ(pr.read_line(10, kPatience), std::optional<std::string>("a"));
    EXPECT_EQ(pr.read_to_end(10, kPatience), "b\nc");
    EXPECT_TRUE(child.wait(kPatience).success());
  });
}

}  // namespace
