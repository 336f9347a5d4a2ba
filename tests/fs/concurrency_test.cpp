// weft::fs under load (many fibers on 2 workers, both backends) and from
// threads that are not fibers.
#include <fcntl.h>

#include <string>
#include <thread>

#include "fs/fs_test_util.hpp"

namespace weft::test {
namespace {

namespace fs = weft::fs;
using fs::OpenMode;
using Names = std::vector<std::string>;

class FsConcurrencyTest : public FsBackendTest {};
WEFT_INSTANTIATE_BACKENDS(FsConcurrencyTest);

// 200 fibers on 2 workers, each with its own file: create, write in pieces,
// fsync, read back through several APIs, rename, remove.
TEST_P(FsConcurrencyTest, ManyFibersEachWithItsOwnFile) {
  constexpr int kFibers = 200;
  Checker check;
  run([&] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&, i] {
        try {
          const std::string name = "f" + std::to_string(i);
          const std::string data =
              random_bytes(8192 + static_cast<std::size_t>(i) * 37, static_cast<std::uint64_t>(i));
          {
            fs::File f = fs::File::open(dir_ / name,
                                        OpenMode::write | OpenMode::create | OpenMode::exclusive);
            // Second half first, at its offset, then the first half.
            const std::size_t half = data.size() / 2;
            f.pwrite_all(data.data() + half, data.size() - half, half);
            f.write_all(data.data(), half);
            f.fdatasync();
            check.equal(f.size(), data.size(), name + " size");
          }
          check.equal(fs::metadata(dir_ / name).size, data.size(), name + " metadata");
          check.check(fs::read_file(dir_ / name) == data, name + ": read_file differs");
          fs::File r = fs::File::open(dir_ / name, OpenMode::read);
          std::string back(data.size(), '\0');
          check.equal(r.read_exact(back.data(), back.size()), data.size(), name + " read");
          check.check(back == data, name + ": read differs");
          r.close();
          fs::rename(dir_ / name, dir_ / (name + ".done"));
          check.check(fs::exists(dir_ / (name + ".done")), name + " renamed");
          check.check(fs::remove(dir_ / (name + ".done")), name + " removed");
        } catch (const std::exception& e) {
          check.check(false, "fiber " + std::to_string(i) + ": " + e.what());
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
  EXPECT_TRUE(dir_.list().empty());
}

// 200 fibers share one File and pwrite disjoint records into it, then
// pread each other's.
TEST_P(FsConcurrencyTest, ManyFibersShareOneFile) {
  constexpr int kFibers = 200;
  constexpr std::size_t kRecord = 4096;
  const auto p = dir_ / "shared";
  Checker check;
  run([&] {
    fs::File f = fs::File::open(p, OpenMode::read | OpenMode::write | OpenMode::create);
    auto record = [](int i) { return random_bytes(kRecord, 1000 + static_cast<unsigned>(i)); };
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&, i] {
        try {
          f.pwrite_all(record(i).data(), kRecord, static_cast<std::uint64_t>(i) * kRecord);
        } catch (const std::exception& e) {
          check.check(false, e.what());
        }
      }));
    }
    for (auto& h : hs) h.join();
    hs.clear();
    f.fsync();
    check.equal(f.size(), kFibers * kRecord, "size");
    for (int i = 0; i < kFibers; ++i) {
      hs.push_back(weft::spawn([&, i] {
        try {
          const int j = (i * 7 + 3) % kFibers;  // someone else's record
          std::string got(kRecord, '\0');
          check.equal(f.pread_exact(got.data(), kRecord, static_cast<std::uint64_t>(j) * kRecord),
                      kRecord, "pread");
          check.check(got == record(j), "record " + std::to_string(j) + " differs");
        } catch (const std::exception& e) {
          check.check(false, e.what());
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  WEFT_EXPECT_NO_FAILURES(check);
}

// --- plain threads (no runtime) ---------------------------------------------

TEST(FsPlainThread, EverythingWorksWithoutARuntime) {
  TempDir dir;
  ASSERT_FALSE(weft::this_fiber::in_fiber());
  const auto p = dir / "plain";
  {
    fs::File f = fs::File::open(p, OpenMode::read | OpenMode::write | OpenMode::create);
    f.write_all("plain thread");
    f.fsync();
    char buf[5];
    EXPECT_EQ(f.pread(buf, 5, 6), 5u);
    EXPECT_EQ(std::string(buf, 5), "threa");
    EXPECT_EQ(f.stat().size, 12u);
    f.close();
    WEFT_EXPECT_ERRNO(f.read(buf, 1), std::errc::bad_file_descriptor);
  }
  EXPECT_EQ(fs::read_file(p), "plain thread");
  fs::write_file_atomic(p, "atomic");
  EXPECT_EQ(slurp(p), "atomic");
  EXPECT_TRUE(fs::create_dirs(dir / "x" / "y"));
  fs::rename(p, dir / "x" / "moved");
  EXPECT_TRUE(fs::metadata(dir / "x" / "moved").is_file());
  WEFT_EXPECT_ERRNO(fs::read_file(p), std::errc::no_such_file_or_directory);
  WEFT_EXPECT_ERRNO(fs::File::open(dir / "x" / "moved", OpenMode::write | OpenMode::exclusive),
                    std::errc::file_exists);
  EXPECT_EQ(fs::remove_all(dir / "x"), 3u);
  EXPECT_FALSE(fs::exists(dir / "x"));
  EXPECT_TRUE(dir.list().empty());
}

// A spawn_blocking thread of a runtime is not a fiber either: fs calls there
// run as plain system calls. And a File opened in a fiber can be used from
// a plain thread and the other way round.
TEST(FsPlainThread, FilesCrossBetweenFibersAndThreads) {
  TempDir dir;
  const auto p = dir / "cross";
  fs::File f = fs::File::open(p, OpenMode::read | OpenMode::write | OpenMode::create);
  for (auto backend : {weft::IoBackend::io_uring, weft::IoBackend::epoll}) {
    weft::Config c = workers_config(2);
    c.io_backend = backend;
    weft::Runtime rt(c);
    rt.block_on([&] {
      f.pwrite_all("fiber", 5, 0);
      const std::size_t n = weft::spawn_blocking([&] {
                              f.pwrite_all("BLOCK", 5, 5);
                              return fs::read_file(p).size();
                            }).join();
      EXPECT_EQ(n, 10u);
    });
  }
  std::thread([&] { f.pwrite_all("!", 1, 10); }).join();
  EXPECT_EQ(fs::read_file(p), "fiberBLOCK!");
  f.close();
  EXPECT_EQ(dir.list(), Names{"cross"});
}

}  // namespace
}  // namespace weft::test
