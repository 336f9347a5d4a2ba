// weft::fs::File on both backends: transfers, positions, modes, close.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "fs/fs_test_util.hpp"
#include "weft/cancel.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

namespace weft::test {
namespace {

namespace fs = weft::fs;
using fs::OpenMode;
using namespace std::chrono_literals;

constexpr OpenMode kCreateRw = OpenMode::read | OpenMode::write | OpenMode::create;

class FileTest : public FsBackendTest {};
WEFT_INSTANTIATE_BACKENDS(FileTest);

TEST_P(FileTest, WriteReadFsyncRoundTrip) {
  const auto p = dir_ / "round";
  run([&] {
    fs::File w = fs::File::open(p, OpenMode::write | OpenMode::create | OpenMode::truncate);
    EXPECT_TRUE(w.is_open());
    EXPECT_GE(w.native_handle(), 0);
    const std::string data = "hello, weft file system\n";
    w.write_all(data, 10s);  // a deadline that never fires
    w.fsync();
    w.fdatasync();
    EXPECT_EQ(w.size(), data.size());
    w.close();
    EXPECT_FALSE(w.is_open());
    EXPECT_EQ(slurp(p), data);

    fs::File r = fs::File::open(p, OpenMode::read);
    std::string got(data.size() + 10, '?');
    EXPECT_EQ(r.read_exact(got.data(), got.size()), data.size());  // stops at EOF
    got.resize(data.size());
    EXPECT_EQ(got, data);
    char c;
    EXPECT_EQ(r.read(&c, 1), 0u);  // end of file
    const fs::Metadata m = r.stat();
    EXPECT_TRUE(m.is_file());
    EXPECT_EQ(m.size, data.size());
  });
}

TEST_P(FileTest, ReadAndWriteAdvanceThePosition) {
  const auto p = dir_ / "pos";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    EXPECT_EQ(f.write("hello ", 6), 6u);
    EXPECT_EQ(f.write("world", 5), 5u);  // continues where the first stopped
    char buf[16] = {};
    EXPECT_EQ(f.read(buf, sizeof buf), 0u);  // the position is at the end
    EXPECT_EQ(f.pread(buf, 5, 0), 5u);
    EXPECT_EQ(std::string(buf, 5), "hello");
    f.close();

    fs::File r = fs::File::open(p, OpenMode::read);
    EXPECT_EQ(r.read(buf, 5), 5u);
    EXPECT_EQ(std::string(buf, 5), "hello");
    EXPECT_EQ(r.read_exact(buf, 6), 6u);
    EXPECT_EQ(std::string(buf, 6), " world");
    EXPECT_EQ(r.read(buf, sizeof buf), 0u);
  });
}

TEST_P(FileTest, PreadPwriteAtOffsetsLeaveThePositionAlone) {
  const auto p = dir_ / "offsets";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    constexpr std::uint64_t kFar = 1 << 20;  // 1 MiB: leaves a hole
    f.pwrite_all("tail", 4, kFar);
    EXPECT_EQ(f.pwrite("head", 4, 0), 4u);
    f.pwrite_all("mid", 3, 4096);
    EXPECT_EQ(f.size(), kFar + 4);

    char buf[8] = {};
    EXPECT_EQ(f.pread(buf, 4, kFar), 4u);
    EXPECT_EQ(std::string(buf, 4), "tail");
    EXPECT_EQ(f.pread(buf, 3, 4096), 3u);
    EXPECT_EQ(std::string(buf, 3), "mid");
    EXPECT_EQ(f.pread(buf, 8, kFar + 2), 2u);  // short at end of file
    EXPECT_EQ(std::string(buf, 2), "il");
    EXPECT_EQ(f.pread(buf, 8, kFar + 4), 0u);    // at end of file
    EXPECT_EQ(f.pread(buf, 8, kFar * 2), 0u);    // past it
    EXPECT_EQ(f.pread_exact(buf, 4, 4094), 4u);  // hole then data
    EXPECT_EQ(std::string(buf, 4), std::string("\0\0mi", 4));
    std::string big(kFar + 100, 'x');
    EXPECT_EQ(f.pread_exact(big.data(), big.size(), 0), kFar + 4);

    // None of that moved the file position: read() starts at 0.
    EXPECT_EQ(f.read(buf, 4), 4u);
    EXPECT_EQ(std::string(buf, 4), "head");
    // And write() continues at the position (4), not after the pwrites.
    f.write_all("HEAD", 4);
    EXPECT_EQ(f.pread(buf, 8, 0), 8u);
    EXPECT_EQ(std::string(buf, 8), std::string("headHEAD", 8));
  });
  const std::string all = slurp(p);
  ASSERT_EQ(all.size(), (1u << 20) + 4);
  EXPECT_EQ(all.substr(0, 8), "headHEAD");
  EXPECT_EQ(all.substr(4096, 3), "mid");
  EXPECT_EQ(all.substr(1 << 20), "tail");
  EXPECT_EQ(all[2048], '\0');
}

TEST_P(FileTest, AppendAndTruncateModes) {
  const auto p = dir_ / "modes";
  run([&] {
    fs::write_file(p, "0123456789");
    {
      fs::File a = fs::File::open(p, OpenMode::append);
      a.write_all("ab", 2);
      a.write_all("cd", 2);
    }
    EXPECT_EQ(slurp(p), "0123456789abcd");
    {
      fs::File rw = fs::File::open(p, OpenMode::read | OpenMode::write);  // no truncation
      rw.write_all("XY", 2);
    }
    EXPECT_EQ(slurp(p), "XY23456789abcd");
    {
      fs::File t = fs::File::open(p, OpenMode::write | OpenMode::truncate);
      EXPECT_EQ(t.size(), 0u);
      t.write_all("new", 3);
    }
    EXPECT_EQ(slurp(p), "new");
    {
      // Raw O_* flags work too.
      fs::File raw = fs::File::open(p, O_WRONLY | O_APPEND);
      raw.write_all("!", 1);
    }
    EXPECT_EQ(slurp(p), "new!");
  });
}

TEST_P(FileTest, CreatePermissionsAndExclusive) {
  const auto p = dir_ / "perm";
  run([&] {
    const mode_t old = ::umask(022);
    fs::File f = fs::File::open(p, OpenMode::write | OpenMode::exclusive, 0640);
    ::umask(old);
    EXPECT_EQ(f.stat().permissions, 0640u);
    EXPECT_EQ(fs::metadata(p).permissions, 0640u);
    WEFT_EXPECT_ERRNO(fs::File::open(p, OpenMode::write | OpenMode::exclusive),
                      std::errc::file_exists, "open", p.native());
    // create without exclusive opens the existing file.
    EXPECT_NO_THROW(fs::File::open(p, OpenMode::write | OpenMode::create));
  });
}

TEST_P(FileTest, OpenErrorsCarryTheErrno) {
  run([&] {
    const auto missing = dir_ / "missing";
    WEFT_EXPECT_ERRNO(fs::File::open(missing, OpenMode::read), std::errc::no_such_file_or_directory,
                      "open", missing.native());
    WEFT_EXPECT_ERRNO(fs::File::open(dir_ / "no" / "such", OpenMode::write | OpenMode::create),
                      std::errc::no_such_file_or_directory);
    WEFT_EXPECT_ERRNO(fs::File::open(dir_.path(), OpenMode::write), std::errc::is_a_directory);
    fs::write_file(dir_ / "plain", "x");
    WEFT_EXPECT_ERRNO(fs::File::open(dir_ / "plain" / "child", OpenMode::read),
                      std::errc::not_a_directory);
    WEFT_EXPECT_ERRNO(fs::File::open(dir_ / "plain", O_RDONLY | O_DIRECTORY),
                      std::errc::not_a_directory);

    // A directory opens for reading, but reading it is EISDIR.
    fs::File d = fs::File::open(dir_.path(), OpenMode::read);
    char c;
    WEFT_EXPECT_ERRNO(d.read(&c, 1), std::errc::is_a_directory, "read");
    EXPECT_TRUE(d.stat().is_dir());

    // Read-only file written to: EBADF from the kernel.
    fs::File ro = fs::File::open(dir_ / "plain", OpenMode::read);
    WEFT_EXPECT_ERRNO(ro.write("y", 1), std::errc::bad_file_descriptor, "write");

    // Meaningless modes are programming errors.
    EXPECT_THROW(fs::File::open(dir_ / "plain", OpenMode::create), std::invalid_argument);
    EXPECT_THROW(fs::File::open(dir_ / "plain", OpenMode::none), std::invalid_argument);
    EXPECT_THROW(fs::File::open(dir_ / "plain", OpenMode::read | OpenMode::truncate),
                 std::invalid_argument);
  });
}

TEST_P(FileTest, OperationsAfterCloseFailWithEbadf) {
  const auto p = dir_ / "closed";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    f.write_all("data", 4);
    f.close();
    EXPECT_FALSE(f.is_open());
    EXPECT_EQ(f.native_handle(), -1);
    EXPECT_NO_THROW(f.close());  // idempotent
    char buf[4];
    WEFT_EXPECT_ERRNO(f.read(buf, 4), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.read_exact(buf, 4), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.write(buf, 4), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.write_all(buf, 4), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.pread(buf, 4, 0), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.pwrite(buf, 4, 0), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.fsync(), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.fdatasync(), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.size(), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.stat(), std::errc::bad_file_descriptor);
    // Zero-length calls still report the closed file.
    WEFT_EXPECT_ERRNO(f.read(buf, 0), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(f.write(buf, 0), std::errc::bad_file_descriptor);

    // Default-constructed and moved-from Files behave the same.
    fs::File none;
    EXPECT_FALSE(none.is_open());
    EXPECT_EQ(none.native_handle(), -1);
    WEFT_EXPECT_ERRNO(none.read(buf, 4), std::errc::bad_file_descriptor);
    WEFT_EXPECT_ERRNO(none.fsync(), std::errc::bad_file_descriptor);
    EXPECT_NO_THROW(none.close());

    fs::File a = fs::File::open(p, OpenMode::read);
    fs::File b = std::move(a);
    EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): the point
    WEFT_EXPECT_ERRNO(a.pread(buf, 4, 0), std::errc::bad_file_descriptor);
    EXPECT_EQ(b.pread(buf, 4, 0), 4u);
    fs::File c = fs::File::open(p, OpenMode::read);
    c = std::move(b);  // closes c's own descriptor
    EXPECT_EQ(c.pread(buf, 4, 0), 4u);
    EXPECT_EQ(std::string(buf, 4), "data");
  });
}

TEST_P(FileTest, CloseReleasesTheDescriptor) {
  const auto p = dir_ / "fd";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    const int fd = f.native_handle();
    ASSERT_GE(fd, 0);
    EXPECT_NE(::fcntl(fd, F_GETFD), -1);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);  // O_CLOEXEC added
    f.close();
    // Nothing else in this test opens files, so the number is free (other
    // tests' runtimes are gone): fcntl must say EBADF.
    errno = 0;
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
    {
      fs::File g = fs::File::open(p, OpenMode::read);
      const int fd2 = g.native_handle();
      EXPECT_NE(::fcntl(fd2, F_GETFD), -1);
      // the destructor closes
      g = fs::File();
      errno = 0;
      EXPECT_EQ(::fcntl(fd2, F_GETFD), -1);
    }
  });
}

// close() from one fiber while another loops on pread/pwrite: the other
// either completes or gets EBADF, and after close every call fails.
TEST_P(FileTest, CloseRacesWithOperationsInOtherFibers) {
  const auto p = dir_ / "race";
  run([&] {
    for (int round = 0; round < scaled(20, 4); ++round) {
      fs::File f = fs::File::open(p, kCreateRw | OpenMode::truncate);
      f.write_all(std::string(4096, 'r'));
      std::atomic<long> done{0};
      std::vector<JoinHandle<int>> users;
      for (int k = 0; k < 4; ++k) {
        users.push_back(weft::spawn([&f, &done, k]() -> int {
          char buf[4096];
          for (;;) {
            try {
              if (k % 2 == 0) {
                if (f.pread(buf, sizeof buf, 0) != sizeof buf) return -1;
              } else {
                f.pwrite_all(buf, 512, 512 * static_cast<unsigned>(k));
              }
              done.fetch_add(1, std::memory_order_relaxed);
            } catch (const std::system_error& e) {
              return e.code() == std::errc::bad_file_descriptor ? 1 : -2;
            }
          }
        }));
      }
      ASSERT_TRUE(eventually([&] { return done.load() >= 8; }));
      f.close();
      for (auto& u : users) EXPECT_EQ(u.join(), 1) << "round " << round;
    }
  });
}

TEST_P(FileTest, LargeFileRoundTripByHash) {
  const auto p = dir_ / "large";
  constexpr std::size_t kSize = 16u << 20;  // 16 MiB
  const std::string data = random_bytes(kSize, 42);
  const std::uint64_t want = fnv1a(data);
  run([&] {
    {
      // Written in uneven pieces through write_all.
      fs::File w = fs::File::open(p, OpenMode::write | OpenMode::create | OpenMode::truncate);
      std::size_t off = 0;
      std::size_t piece = 1;
      while (off < data.size()) {
        const std::size_t n = std::min(piece, data.size() - off);
        w.write_all(data.data() + off, n);
        off += n;
        piece = piece * 3 + 7;
      }
      w.fsync();
      EXPECT_EQ(w.size(), kSize);
    }
    // Read back in odd-sized chunks through read().
    fs::File r = fs::File::open(p, OpenMode::read);
    std::string got;
    std::string chunk((1 << 20) + 7, '\0');
    for (;;) {
      const std::size_t n = r.read(chunk.data(), chunk.size());
      if (n == 0) break;
      got.append(chunk.data(), n);
    }
    EXPECT_EQ(got.size(), kSize);
    EXPECT_EQ(fnv1a(got), want);
    // Whole-file helpers, and a single 16 MiB pread_exact.
    const std::string whole = fs::read_file(p);
    EXPECT_EQ(whole.size(), kSize);
    EXPECT_EQ(fnv1a(whole), want);
    std::string direct(kSize, '\0');
    EXPECT_EQ(r.pread_exact(direct.data(), kSize, 0), kSize);
    EXPECT_EQ(fnv1a(direct), want);
    fs::write_file(dir_ / "large2", data);
  });
  EXPECT_EQ(fnv1a(slurp(p)), want);
  EXPECT_EQ(fnv1a(slurp(dir_ / "large2")), want);
}

TEST_P(FileTest, TruncateShrinksAndGrowsWithoutMovingThePosition) {
  const auto p = dir_ / "trunc";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    f.write_all("0123456789");
    f.truncate(4);
    EXPECT_EQ(f.size(), 4u);
    EXPECT_EQ(slurp(p), "0123");
    char buf[16] = {};
    EXPECT_EQ(f.pread(buf, sizeof buf, 0), 4u);
    EXPECT_EQ(std::string(buf, 4), "0123");

    // Growing adds a hole of zeros.
    f.truncate(8, 10s);
    EXPECT_EQ(f.size(), 8u);
    EXPECT_EQ(slurp(p), std::string("0123\0\0\0\0", 8));

    // The position stayed at 10 (after the first write): writing there
    // leaves a hole from 8 to 10.
    f.write_all("ab");
    EXPECT_EQ(slurp(p), std::string("0123\0\0\0\0\0\0ab", 12));

    f.truncate(0);
    EXPECT_EQ(f.size(), 0u);
    EXPECT_EQ(f.pread(buf, sizeof buf, 0), 0u);
    f.truncate(0);  // to the size it has: nothing to do, no error
    f.fdatasync();
    EXPECT_EQ(slurp(p), "");
  });
}

TEST_P(FileTest, TruncateInAppendModeThenWritesGoToTheNewEnd) {
  const auto p = dir_ / "trunc-append";
  run([&] {
    fs::File f = fs::File::open(p, OpenMode::read | OpenMode::append | OpenMode::create);
    f.write_all("record-1;record-2;torn-rec");
    f.truncate(18);  // cut the torn record, as an append-only log does
    f.write_all("record-3;");
    f.fsync();
    EXPECT_EQ(f.size(), 27u);
  });
  EXPECT_EQ(slurp(p), "record-1;record-2;record-3;");
}

TEST_P(FileTest, TruncateErrors) {
  const auto p = dir_ / "trunc-errors";
  run([&] {
    fs::write_file(p, "data");
    // Not open for writing: EINVAL from ftruncate(2).
    fs::File ro = fs::File::open(p, OpenMode::read);
    WEFT_EXPECT_ERRNO(ro.truncate(0), std::errc::invalid_argument, "truncate");
    // A directory opened for reading: EINVAL too (not a regular file).
    fs::File d = fs::File::open(dir_.path(), OpenMode::read);
    WEFT_EXPECT_ERRNO(d.truncate(0), std::errc::invalid_argument, "truncate");
    // A size off_t cannot hold.
    fs::File rw = fs::File::open(p, OpenMode::read | OpenMode::write);
    WEFT_EXPECT_ERRNO(rw.truncate(~std::uint64_t{0}), std::errc::invalid_argument, "truncate");
    WEFT_EXPECT_ERRNO(rw.truncate(std::uint64_t{1} << 63), std::errc::invalid_argument);
    EXPECT_EQ(rw.size(), 4u);  // none of that changed the file
    // Closed, default-constructed.
    rw.close();
    WEFT_EXPECT_ERRNO(rw.truncate(0), std::errc::bad_file_descriptor, "truncate");
    fs::File none;
    WEFT_EXPECT_ERRNO(none.truncate(0), std::errc::bad_file_descriptor);
  });
  EXPECT_EQ(slurp(p), "data");
}

// A cancelled fiber's truncate throws before it starts: the file is intact.
TEST_P(FileTest, TruncateIsACancellationPoint) {
  const auto p = dir_ / "trunc-cancel";
  run([&] {
    fs::write_file(p, "keep me");
    fs::File f = fs::File::open(p, OpenMode::write);
    weft::Event cancelled;
    auto h = weft::spawn([&] {
      // The cancel arrives while the fiber is shielded; truncate is the
      // first blocking call after the shield, so it must see it.
      weft::shield([&] { cancelled.wait(); });
      f.truncate(0);
    });
    h.cancel();
    cancelled.set();
    EXPECT_THROW(h.join(), weft::Cancelled);
    EXPECT_EQ(f.size(), 7u);
  });
  EXPECT_EQ(slurp(p), "keep me");
}

// On both backends truncate runs on the blocking pool (io_uring: no opcode
// in liburing 2.3), and from a plain thread it is the plain system call.
TEST_P(FileTest, TruncateRunsOnTheBlockingPoolAndOnPlainThreads) {
  const auto p = dir_ / "trunc-routed";
  {
    weft::Runtime rt(config());
    rt.block_on([&] { fs::write_file(p, "0123456789"); });
    fs::File f = rt.block_on([&] { return fs::File::open(p, OpenMode::write); });
    const RuntimeStats before = rt.stats();
    rt.block_on([&] { f.truncate(5); });
    const RuntimeStats after = rt.stats();
    EXPECT_GE(after.blocking_tasks - before.blocking_tasks, 1u);
    EXPECT_EQ(slurp(p), "01234");
    // The same File from this plain thread.
    f.truncate(2);
    EXPECT_EQ(slurp(p), "01");
  }
  fs::File g = fs::File::open(p, OpenMode::write);  // no runtime at all
  g.truncate(1);
  EXPECT_EQ(g.size(), 1u);
  EXPECT_EQ(slurp(p), "0");
}

// Truncates from several fibers on both workers, interleaved with preads of
// the same File: every call succeeds and sizes stay within what was set.
TEST_P(FileTest, ConcurrentTruncatesAndReads) {
  const auto p = dir_ / "trunc-concurrent";
  run([&] {
    fs::File f = fs::File::open(p, kCreateRw);
    f.write_all(std::string(4096, 't'));
    std::vector<JoinHandle<void>> hs;
    for (int k = 0; k < 8; ++k) {
      hs.push_back(weft::spawn([&f, k] {
        char buf[4096];
        for (int i = 0; i < scaled(50, 5); ++i) {
          if (k % 2 == 0) {
            f.truncate(static_cast<std::uint64_t>(1024 * (1 + (i + k) % 4)));
          } else {
            const std::size_t n = f.pread(buf, sizeof buf, 0);
            EXPECT_LE(n, 4096u);
            EXPECT_GE(n, 1024u);  // never below the smallest size set
          }
        }
      }));
    }
    for (auto& h : hs) h.join();
    const std::uint64_t size = f.size();
    EXPECT_TRUE(size == 1024 || size == 2048 || size == 3072 || size == 4096) << size;
  });
}

// The operations really go through the runtime's reactor: io_uring
// requests on io_uring, the blocking pool on epoll.
TEST_P(FileTest, OperationsGoThroughTheBackend) {
  const auto p = dir_ / "routed";
  weft::Runtime rt(config());
  const RuntimeStats before = rt.stats();
  rt.block_on([&] {
    fs::File f = fs::File::open(p, kCreateRw);  // 1
    f.write_all("x", 1);                        // 2
    f.fsync();                                  // 3
    char c;
    EXPECT_EQ(f.pread(&c, 1, 0), 1u);  // 4
    (void)f.stat();                    // 5
    (void)fs::metadata(p);             // 6
  });
  const RuntimeStats after = rt.stats();
  if (GetParam() == weft::IoBackend::io_uring) {
    EXPECT_GE(after.io_requests - before.io_requests, 6u);
  } else {
    EXPECT_GE(after.blocking_tasks - before.blocking_tasks, 6u);
  }
}

// A read that has to wait (a FIFO with a writer but no data) gives up at its
// deadline with TimedOut on io_uring, where the request is cancellable, and
// nothing is lost: data written afterwards is read normally. (On epoll a
// File's read runs on the blocking pool to completion: not tested there.)
// Note: a FIFO is used because no regular-file operation waits; opening one
// read-only does not wait either on io_uring (the kernel opens it
// non-blocking inline), so O_RDWR it is, which never waits on Linux.
TEST_P(FileTest, DeadlineOnABlockedReadTimesOut) {
  if (GetParam() != weft::IoBackend::io_uring) GTEST_SKIP() << "epoll file ops ignore deadlines";
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  run([&] {
    fs::File f = fs::File::open(fifo, OpenMode::read | OpenMode::write);
    char buf[8] = {};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(f.read(buf, sizeof buf, 50ms), weft::TimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);  // not before the deadline
    EXPECT_THROW(f.read(buf, sizeof buf, std::chrono::steady_clock::now() - 1s), weft::TimedOut);
    EXPECT_EQ(f.write("ping", 4), 4u);
    EXPECT_EQ(f.read(buf, sizeof buf, 10s), 4u);
    EXPECT_EQ(std::string(buf, 4), "ping");
    // A read blocked without deadline ends with EBADF when another fiber
    // closes the file.
    auto reader = weft::spawn([&] {
      try {
        (void)f.read(buf, sizeof buf);
        return 0;
      } catch (const std::system_error& e) {
        return e.code() == std::errc::bad_file_descriptor ? 1 : -1;
      }
    });
    weft::this_fiber::sleep_for(20ms);
    f.close();
    EXPECT_EQ(reader.join(), 1);
  });
}

}  // namespace
}  // namespace weft::test
