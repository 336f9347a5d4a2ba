// weft::fs free functions on both backends: whole-file helpers, atomic
// replacement, directories, metadata, errors.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "fs/fs_test_util.hpp"

namespace weft::test {
namespace {

namespace fs = weft::fs;
using namespace std::chrono_literals;
using Names = std::vector<std::string>;

class PathTest : public FsBackendTest {};
WEFT_INSTANTIATE_BACKENDS(PathTest);

TEST_P(PathTest, WriteFileThenReadFile) {
  const auto p = dir_ / "data.txt";
  run([&] {
    fs::write_file(p, "first version, rather long\n");
    EXPECT_EQ(fs::read_file(p), "first version, rather long\n");
    fs::write_file(p, "short");  // truncates
    EXPECT_EQ(fs::read_file(p), "short");
    fs::write_file(p, "");
    EXPECT_EQ(fs::read_file(p), "");
    EXPECT_EQ(fs::metadata(p).size, 0u);
    // Binary data, NULs included, larger than the initial read buffer.
    const std::string bin = random_bytes(100'003, 7);
    fs::write_file(p, bin, 0600, 10s);
    EXPECT_EQ(fs::read_file(p, 10s), bin);
  });
  EXPECT_EQ(slurp(p).size(), 100'003u);
}

// /proc files report size 0: read_file must read to end of file anyway.
TEST_P(PathTest, ReadFileIgnoresAWrongSize) {
  run([&] {
    const std::string status = fs::read_file("/proc/self/status");
    EXPECT_NE(status.find("Pid:"), std::string::npos);
    EXPECT_EQ(status.back(), '\n');
    const std::string maps = fs::read_file("/proc/self/maps");  // usually > 4 KiB
    EXPECT_GT(maps.size(), 0u);
  });
}

// A FIFO reports size 0 and delivers its data in pieces, with pauses:
// read_file must keep reading until the writer closes it.
TEST_P(PathTest, ReadFileReadsAFifoUntilTheWriterCloses) {
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string data = random_bytes(200'000, 3);
  // O_RDWR never blocks on Linux, and keeps a writer on the FIFO from the
  // start, so the reader cannot see end of file before the data. It also
  // keeps a reader, so a broken read_file that stops early leaves the
  // writer with a full pipe: non-blocking writes and `stop` let it give up.
  const int wfd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(wfd, 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the reader wait first
    std::size_t off = 0;
    while (off < data.size() && !stop.load()) {
      const std::size_t n = std::min<std::size_t>(5000, data.size() - off);
      const ssize_t k = ::write(wfd, data.data() + off, n);
      if (k > 0) {
        off += static_cast<std::size_t>(k);
      } else {
        pollfd p{wfd, POLLOUT, 0};
        ::poll(&p, 1, 10);
      }
    }
    ::close(wfd);
  });
  run([&] {
    const std::string got = fs::read_file(fifo);
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
  });
  stop = true;
  writer.join();
}

TEST_P(PathTest, WholeFileErrors) {
  run([&] {
    const auto missing = dir_ / "missing";
    WEFT_EXPECT_ERRNO(fs::read_file(missing), std::errc::no_such_file_or_directory, "open",
                      missing.native());
    WEFT_EXPECT_ERRNO(fs::read_file(dir_.path()), std::errc::is_a_directory, "read_file",
                      dir_.path().native());
    WEFT_EXPECT_ERRNO(fs::write_file(dir_.path(), "x"), std::errc::is_a_directory);
    WEFT_EXPECT_ERRNO(fs::write_file(dir_ / "nodir" / "f", "x"),
                      std::errc::no_such_file_or_directory);
  });
}

TEST_P(PathTest, WriteFileAtomicReplacesAndCleansUp) {
  const auto p = dir_ / "config";
  run([&] {
    fs::write_file_atomic(p, "v1");  // creates
    EXPECT_EQ(fs::read_file(p), "v1");
    const fs::Metadata m1 = fs::metadata(p);
    fs::write_file_atomic(p, "version two", 0600);
    EXPECT_EQ(fs::read_file(p), "version two");
    const fs::Metadata m2 = fs::metadata(p);
    EXPECT_NE(m1.inode, m2.inode);  // a new file was renamed over the old
    const mode_t old = ::umask(022);
    fs::write_file_atomic(p, "v3", 0640);
    ::umask(old);
    EXPECT_EQ(fs::metadata(p).permissions, 0640u);
    // A relative path (temporary file in ".").
    fs::write_file_atomic(p.lexically_relative(std::filesystem::current_path()), "v4");
    EXPECT_EQ(fs::read_file(p), "v4");
    fs::write_file_atomic(p, std::string(1 << 20, 'z'));
    EXPECT_EQ(fs::read_file(p), std::string(1 << 20, 'z'));
  });
  EXPECT_EQ(dir_.list(), Names{"config"});  // no temporary file left behind
}

TEST_P(PathTest, WriteFileAtomicFailureLeavesNothingBehind) {
  run([&] {
    // The target is a non-empty directory: the rename fails, after the
    // temporary file was written and synced.
    fs::create_dirs(dir_ / "target" / "inside");
    WEFT_EXPECT_ERRNO(fs::write_file_atomic(dir_ / "target", "data"), std::errc::is_a_directory,
                      "write_file_atomic", (dir_ / "target").native());
    EXPECT_TRUE(fs::metadata(dir_ / "target").is_dir());
    // A missing directory: the temporary file cannot even be created.
    WEFT_EXPECT_ERRNO(fs::write_file_atomic(dir_ / "nodir" / "f", "data"),
                      std::errc::no_such_file_or_directory);
    // A path that names a directory.
    WEFT_EXPECT_ERRNO(fs::write_file_atomic(dir_.path() / "", "data"), std::errc::is_a_directory);
  });
  EXPECT_EQ(dir_.list(), Names{"target"});
  EXPECT_EQ(TempDir::list_dir(dir_ / "target"), Names{"inside"});
}

// Readers never see a partial file while a writer keeps replacing it: every
// read returns one complete version.
TEST_P(PathTest, WriteFileAtomicReadersNeverSeeAPartialFile) {
  const auto p = dir_ / "shared";
  constexpr std::size_t kSize = 256 * 1024;
  const std::string a(kSize, 'a');
  const std::string b(kSize, 'b');
  Checker check;
  run([&] {
    fs::write_file_atomic(p, a);
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    auto writer = weft::spawn([&] {
      for (int i = 0; i < scaled(200, 20); ++i) fs::write_file_atomic(p, i % 2 == 0 ? b : a);
      stop = true;
    });
    std::vector<JoinHandle<void>> readers;
    for (int r = 0; r < 3; ++r) {
      readers.push_back(weft::spawn([&] {
        while (!stop.load()) {
          const std::string got = fs::read_file(p);
          reads.fetch_add(1, std::memory_order_relaxed);
          if (!check.check(got == a || got == b,
                           "partial read of size " + std::to_string(got.size()))) {
            return;
          }
        }
      }));
    }
    writer.join();
    for (auto& r : readers) r.join();
    EXPECT_GT(reads.load(), 0);
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(dir_.list(), Names{"shared"});
}

TEST_P(PathTest, CreateDirsIsMkdirP) {
  run([&] {
    const auto deep = dir_ / "a" / "b" / "c";
    EXPECT_TRUE(fs::create_dirs(deep));
    EXPECT_TRUE(fs::metadata(deep).is_dir());
    EXPECT_FALSE(fs::create_dirs(deep));                    // already there
    EXPECT_FALSE(fs::create_dirs(dir_ / "a"));              // an existing parent
    EXPECT_TRUE(fs::create_dirs(dir_ / "a" / "b" / "d/"));  // trailing slash
    EXPECT_TRUE(fs::metadata(dir_ / "a/b/d").is_dir());
    EXPECT_TRUE(fs::create_dirs(dir_ / "x/../y"));  // ".." through a missing dir
    EXPECT_TRUE(fs::metadata(dir_ / "y").is_dir());
    EXPECT_FALSE(fs::create_dirs("/"));

    const mode_t old = ::umask(0);
    EXPECT_TRUE(fs::create_dirs(dir_ / "p" / "q", 0710));
    ::umask(old);
    EXPECT_EQ(fs::metadata(dir_ / "p").permissions, 0710u);
    EXPECT_EQ(fs::metadata(dir_ / "p/q").permissions, 0710u);

    fs::write_file(dir_ / "file", "x");
    WEFT_EXPECT_ERRNO(fs::create_dirs(dir_ / "file"), std::errc::file_exists, "create_dirs");
    WEFT_EXPECT_ERRNO(fs::create_dirs(dir_ / "file" / "sub"), std::errc::not_a_directory);
    // Through a symlink to a directory: fine.
    ASSERT_EQ(::symlink((dir_ / "a").c_str(), (dir_ / "link").c_str()), 0);
    EXPECT_FALSE(fs::create_dirs(dir_ / "link"));
    EXPECT_TRUE(fs::create_dirs(dir_ / "link" / "viaLink"));
    EXPECT_TRUE(fs::metadata(dir_ / "a" / "viaLink").is_dir());
  });
}

TEST_P(PathTest, CreateDirsConcurrentlyFromManyFibers) {
  Checker check;
  run([&] {
    std::atomic<int> created{0};
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 16; ++i) {
      hs.push_back(weft::spawn([&, i] {
        try {
          if (fs::create_dirs(dir_ / "s" / "t" / "u")) created.fetch_add(1);
          fs::create_dirs(dir_ / "s" / "t" / ("own" + std::to_string(i)));
        } catch (const std::exception& e) {
          check.check(false, e.what());
        }
      }));
    }
    for (auto& h : hs) h.join();
    EXPECT_EQ(created.load(), 1);  // exactly one fiber created the leaf
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_EQ(TempDir::list_dir(dir_ / "s" / "t").size(), 17u);
}

TEST_P(PathTest, RemoveFilesAndEmptyDirectories) {
  run([&] {
    fs::write_file(dir_ / "f", "x");
    fs::create_dirs(dir_ / "d" / "sub");
    fs::write_file(dir_ / "d" / "sub" / "g", "y");
    ASSERT_EQ(::symlink((dir_ / "d").c_str(), (dir_ / "l").c_str()), 0);

    EXPECT_TRUE(fs::remove(dir_ / "f"));
    EXPECT_FALSE(fs::exists(dir_ / "f"));
    EXPECT_FALSE(fs::remove(dir_ / "f"));  // nothing there any more
    WEFT_EXPECT_ERRNO(fs::remove(dir_ / "d"), std::errc::directory_not_empty, "remove");
    EXPECT_TRUE(fs::remove(dir_ / "l"));  // the link, not its target
    EXPECT_TRUE(fs::exists(dir_ / "d" / "sub" / "g"));
    EXPECT_TRUE(fs::remove(dir_ / "d" / "sub" / "g"));
    EXPECT_TRUE(fs::remove(dir_ / "d" / "sub"));  // empty directory
    EXPECT_TRUE(fs::remove(dir_ / "d/"));
    EXPECT_FALSE(fs::exists(dir_ / "d"));

    fs::create_dirs(dir_ / "tree" / "x" / "y");
    fs::write_file(dir_ / "tree" / "x" / "f1", "1");
    fs::write_file(dir_ / "tree" / "f2", "2");
    EXPECT_EQ(fs::remove_all(dir_ / "tree"), 5u);
    EXPECT_FALSE(fs::exists(dir_ / "tree"));
    EXPECT_EQ(fs::remove_all(dir_ / "tree"), 0u);
  });
  EXPECT_TRUE(dir_.list().empty());
}

TEST_P(PathTest, RenameMovesAndReplaces) {
  run([&] {
    fs::write_file(dir_ / "a", "A");
    fs::write_file(dir_ / "b", "B");
    fs::rename(dir_ / "a", dir_ / "c");
    EXPECT_FALSE(fs::exists(dir_ / "a"));
    EXPECT_EQ(fs::read_file(dir_ / "c"), "A");
    fs::rename(dir_ / "c", dir_ / "b");  // replaces
    EXPECT_EQ(fs::read_file(dir_ / "b"), "A");
    fs::create_dirs(dir_ / "d1");
    fs::rename(dir_ / "d1", dir_ / "d2");
    EXPECT_TRUE(fs::metadata(dir_ / "d2").is_dir());
    fs::rename(dir_ / "b", dir_ / "d2" / "b");  // into a directory
    EXPECT_EQ(fs::read_file(dir_ / "d2" / "b"), "A");

    WEFT_EXPECT_ERRNO(fs::rename(dir_ / "missing", dir_ / "x"),
                      std::errc::no_such_file_or_directory, "rename", "missing");
    fs::create_dirs(dir_ / "full" / "inner");
    WEFT_EXPECT_ERRNO(fs::rename(dir_ / "d2" / "b", dir_ / "full"), std::errc::is_a_directory);
    fs::create_dirs(dir_ / "empty");
    WEFT_EXPECT_ERRNO(fs::rename(dir_ / "empty", dir_ / "d2" / "b"), std::errc::not_a_directory);
    WEFT_EXPECT_ERRNO(fs::rename(dir_ / "d2", dir_ / "full"), std::errc::directory_not_empty);
  });
  EXPECT_EQ(dir_.list(), (Names{"d2", "empty", "full"}));
}

TEST_P(PathTest, MetadataAndExists) {
  const auto f = dir_ / "meta";
  run([&] {
    const auto before = std::chrono::system_clock::now() - 5s;  // coarse fs clocks
    fs::write_file(f, "12345");
    ASSERT_EQ(::chmod(f.c_str(), 0604), 0);
    const fs::Metadata m = fs::metadata(f);
    EXPECT_TRUE(m.is_file());
    EXPECT_FALSE(m.is_dir());
    EXPECT_FALSE(m.is_symlink());
    EXPECT_EQ(m.type, fs::FileType::regular);
    EXPECT_EQ(m.size, 5u);
    EXPECT_EQ(m.permissions, 0604u);
    EXPECT_EQ(m.nlink, 1u);
    EXPECT_EQ(m.uid, ::getuid());
    EXPECT_EQ(m.gid, ::getegid());
    EXPECT_GE(m.mtime, before);
    EXPECT_LE(m.mtime, std::chrono::system_clock::now() + 5s);

    // Against stat(2), field by field.
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(m.inode, st.st_ino);
    EXPECT_EQ(m.device, st.st_dev);
    EXPECT_EQ(m.mtime.time_since_epoch(), std::chrono::seconds(st.st_mtim.tv_sec) +
                                              std::chrono::nanoseconds(st.st_mtim.tv_nsec));

    const fs::Metadata d = fs::metadata(dir_.path());
    EXPECT_TRUE(d.is_dir());
    EXPECT_EQ(d.type, fs::FileType::directory);

    ASSERT_EQ(::symlink(f.c_str(), (dir_ / "link").c_str()), 0);
    EXPECT_TRUE(fs::metadata(dir_ / "link").is_file());  // followed
    const fs::Metadata l = fs::symlink_metadata(dir_ / "link");
    EXPECT_TRUE(l.is_symlink());
    EXPECT_EQ(l.size, f.native().size());  // length of the target path
    EXPECT_TRUE(fs::symlink_metadata(f).is_file());

    ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
    EXPECT_EQ(fs::metadata(dir_ / "fifo").type, fs::FileType::fifo);
    EXPECT_EQ(fs::metadata("/dev/null").type, fs::FileType::char_device);

    EXPECT_TRUE(fs::exists(f));
    EXPECT_TRUE(fs::exists(dir_.path()));
    EXPECT_TRUE(fs::exists(dir_ / "link"));
    EXPECT_FALSE(fs::exists(dir_ / "missing"));
    EXPECT_FALSE(fs::exists(dir_ / "meta" / "below-a-file"));  // ENOTDIR
    ASSERT_EQ(::symlink((dir_ / "missing").c_str(), (dir_ / "dangling").c_str()), 0);
    EXPECT_FALSE(fs::exists(dir_ / "dangling"));
    EXPECT_TRUE(fs::symlink_metadata(dir_ / "dangling").is_symlink());

    const auto missing = dir_ / "missing";
    WEFT_EXPECT_ERRNO(fs::metadata(missing), std::errc::no_such_file_or_directory, "metadata",
                      missing.native());
    WEFT_EXPECT_ERRNO(fs::metadata(dir_ / "dangling"), std::errc::no_such_file_or_directory);
    WEFT_EXPECT_ERRNO(fs::metadata(dir_ / "meta" / "x"), std::errc::not_a_directory);
  });
}

// EACCES only bites unprivileged users: root bypasses permission bits.
TEST_P(PathTest, PermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores permission bits";
  run([&] {
    fs::create_dirs(dir_ / "locked");
    fs::write_file(dir_ / "locked" / "f", "x");
    ASSERT_EQ(::chmod((dir_ / "locked").c_str(), 0), 0);
    WEFT_EXPECT_ERRNO(fs::read_file(dir_ / "locked" / "f"), std::errc::permission_denied);
    WEFT_EXPECT_ERRNO(fs::exists(dir_ / "locked" / "f"), std::errc::permission_denied);
    ASSERT_EQ(::chmod((dir_ / "locked").c_str(), 0700), 0);
  });
}

}  // namespace
}  // namespace weft::test
