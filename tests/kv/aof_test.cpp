// weft-kv's append-only file (examples/weft-kv/aof.hpp) on both I/O
// backends: round trips, torn and corrupt files, group commit under
// concurrency, the fsync policies, failures.
//
// Expected file contents are encoded here independently of aof.cpp, and
// files are read and damaged with stdio, not with the code under test.
#include "aof.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"
#include "fs/fs_test_util.hpp"
#include "io/fault.hpp"
#include "weft/this_fiber.hpp"

namespace kv {
namespace {

using weft::test::random_bytes;
using weft::test::scaled;
using weft::test::slurp;
using weft::test::TempDir;
using Args = std::vector<std::string>;

// --- helpers -------------------------------------------------------------------

std::string encode(const Args& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& a : argv) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

std::string encode_all(const std::vector<Args>& records) {
  std::string out;
  for (const auto& r : records) out += encode(r);
  return out;
}

void write_raw(const std::filesystem::path& p, std::string_view bytes) {
  FILE* f = std::fopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr) << p;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

std::uint64_t append(Aof& aof, const Args& argv) {
  const std::vector<std::string_view> views(argv.begin(), argv.end());
  return aof.append(views);
}

struct Replayed {
  std::vector<Args> records;
  ReplayResult result;
  std::string err;  // what replay printed on stderr
};

// Opens the AOF in `dir` and replays it, capturing stderr.
Replayed replay(const std::filesystem::path& dir, FsyncPolicy policy = FsyncPolicy::no) {
  Replayed out;
  auto aof = Aof::open(dir, policy);
  ::testing::internal::CaptureStderr();
  try {
    out.result = aof->replay([&](std::span<const std::string_view> argv) {
      out.records.emplace_back(argv.begin(), argv.end());
    });
  } catch (...) {
    out.err = ::testing::internal::GetCapturedStderr();
    throw;
  }
  out.err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(aof->size(), std::filesystem::file_size(dir / "appendonly.aof"));
  return out;
}

// Records with awkward arguments: empty, CR/LF, NULs, RESP look-alikes,
// every byte value, a bulk over replay's read chunk.
std::vector<Args> awkward_records() {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  return {
      {"SET", "k", ""},
      {"SET", "crlf\r\n", "\r\n\r\n"},
      {"SET", std::string("nul\0key", 7), std::string(3, '\0')},
      {"SET", "resp", "*1\r\n$4\r\nPING\r\n"},
      {"SET", "$3\r\n", "*"},
      {"SET", "bytes", all_bytes},
      {"SET", "big", random_bytes((1u << 20) + 3, 7)},
      {"PING"},
      {"MSET", "a", "1", "b", "2", "c", "3"},
  };
}

// --- fixture ---------------------------------------------------------------------

class AofTest : public ::testing::TestWithParam<weft::IoBackend> {
 protected:
  weft::Config config(std::size_t workers = 2) const {
    weft::Config c = weft::test::workers_config(workers);
    c.io_backend = GetParam();
    return c;
  }
  // Runs fn as the root fiber of a fresh 2-worker runtime.
  template <class F>
  void run(F&& fn) {
    weft::Runtime rt(config());
    rt.block_on(std::forward<F>(fn));
  }
  std::filesystem::path file() const { return dir_ / "appendonly.aof"; }

  TempDir dir_;
};

std::string backend_name(const ::testing::TestParamInfo<weft::IoBackend>& info) {
  return info.param == weft::IoBackend::io_uring ? "io_uring" : "epoll";
}
INSTANTIATE_TEST_SUITE_P(Backends, AofTest,
                         ::testing::Values(weft::IoBackend::io_uring, weft::IoBackend::epoll),
                         backend_name);

// --- round trips -------------------------------------------------------------------

TEST_P(AofTest, EmptyAndMissingFilesReplayNothing) {
  run([&] {
    // Missing: created empty.
    Replayed r = replay(dir_.path());
    EXPECT_EQ(r.result.commands, 0u);
    EXPECT_EQ(r.result.truncated_bytes, 0u);
    EXPECT_TRUE(r.records.empty());
    EXPECT_EQ(r.err, "");
    ASSERT_TRUE(std::filesystem::exists(file()));
    EXPECT_EQ(std::filesystem::file_size(file()), 0u);
    // Existing and empty.
    r = replay(dir_.path());
    EXPECT_EQ(r.result.commands, 0u);
    EXPECT_EQ(r.result.truncated_bytes, 0u);
  });
}

TEST_P(AofTest, RoundTripOfManyRecordsWithBinaryArguments) {
  std::vector<Args> want = awkward_records();
  for (int i = 0; i < scaled(3000, 300); ++i) {
    want.push_back({"SET", "key:" + std::to_string(i),
                    random_bytes(static_cast<std::size_t>(i % 97), static_cast<std::uint64_t>(i))});
  }
  for (FsyncPolicy policy : {FsyncPolicy::always, FsyncPolicy::everysec, FsyncPolicy::no}) {
    std::filesystem::remove(file());
    run([&] {
      auto aof = Aof::open(dir_.path(), policy);
      EXPECT_EQ(aof->replay([](auto) { ADD_FAILURE() << "empty file"; }).commands, 0u);
      std::uint64_t last = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        const std::uint64_t seq = append(*aof, want[i]);
        EXPECT_EQ(seq, last + 1);  // 1, 2, 3, ...
        last = seq;
        if (i % 100 == 0) aof->wait_durable(seq);
      }
      aof->wait_durable(last);
      EXPECT_EQ(aof->size(), encode_all(want).size());
      aof->flush_and_sync();
    });
    ASSERT_EQ(slurp(file()), encode_all(want));  // byte for byte what Redis writes
    run([&] {
      const Replayed r = replay(dir_.path());
      EXPECT_EQ(r.result.commands, want.size());
      EXPECT_EQ(r.result.truncated_bytes, 0u);
      EXPECT_EQ(r.err, "");
      EXPECT_TRUE(r.records == want);
    });
  }
}

// Records appended after a replay follow the replayed ones.
TEST_P(AofTest, AppendsAfterReplayFollowTheOldRecords) {
  const std::vector<Args> old = {{"SET", "a", "1"}, {"DEL", "b"}};
  write_raw(file(), encode_all(old));
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::always);
    EXPECT_EQ(aof->size(), encode_all(old).size());
    EXPECT_EQ(aof->replay([](auto) {}).commands, 2u);
    aof->wait_durable(append(*aof, {"INCR", "c"}));
    EXPECT_EQ(aof->size(), encode_all(old).size() + encode({"INCR", "c"}).size());
  });
  EXPECT_EQ(slurp(file()), encode_all(old) + encode({"INCR", "c"}));
}

// --- torn and corrupt files -----------------------------------------------------------

// The last record cut at every byte offset: the cut part goes (with the
// warning), the rest is replayed, and a second replay finds a clean file.
// The good part is larger than replay's read chunk, so cuts are found across
// chunk boundaries too.
TEST_P(AofTest, TornTailAtEveryByteOffsetIsTruncated) {
  std::vector<Args> good;
  for (int i = 0; i < 700; ++i)
    good.push_back({"SET", "k" + std::to_string(i), random_bytes(400, i)});
  const std::string good_bytes = encode_all(good);
  ASSERT_GT(good_bytes.size(), 256u << 10);
  const Args last = {"SET", "torn\r\n", "*1\r\n$4\r\nPING\r\n", std::string("\0\r", 2), ""};
  const std::string last_bytes = encode(last);
  run([&] {
    for (std::size_t cut = 1; cut < last_bytes.size(); ++cut) {
      // (no SCOPED_TRACE in fibers: gtest keeps traces per thread)
      const std::string at = "cut after " + std::to_string(cut) + " bytes";
      write_raw(file(), good_bytes + last_bytes.substr(0, cut));
      Replayed r = replay(dir_.path());
      EXPECT_EQ(r.result.commands, good.size()) << at;
      EXPECT_EQ(r.result.truncated_bytes, cut) << at;
      EXPECT_TRUE(r.records == good) << at;
      EXPECT_EQ(r.err, "weft-kv: AOF: truncated " + std::to_string(cut) +
                           " bytes of a torn last record at offset " +
                           std::to_string(good_bytes.size()) + "\n")
          << at;
      ASSERT_EQ(std::filesystem::file_size(file()), good_bytes.size()) << at;

      r = replay(dir_.path());  // clean now
      EXPECT_EQ(r.result.commands, good.size()) << at;
      EXPECT_EQ(r.result.truncated_bytes, 0u) << at;
      EXPECT_EQ(r.err, "") << at;
    }
    // Not cut at all: every record is there.
    write_raw(file(), good_bytes + last_bytes);
    const Replayed r = replay(dir_.path());
    EXPECT_EQ(r.result.commands, good.size() + 1);
    EXPECT_EQ(r.records.back(), last);
  });
}

// A record bigger than the read chunk, cut in its middle.
TEST_P(AofTest, TornBigRecordIsTruncated) {
  const Args first = {"SET", "a", "1"};
  const std::string big = encode({"SET", "big", random_bytes(3u << 20, 3)});
  for (std::size_t cut : {std::size_t{20}, big.size() / 2, big.size() - 2}) {
    write_raw(file(), encode(first) + big.substr(0, cut));
    run([&] {
      const Replayed r = replay(dir_.path());
      EXPECT_EQ(r.result.commands, 1u);
      EXPECT_EQ(r.result.truncated_bytes, cut);
      EXPECT_EQ(r.records, std::vector<Args>{first});
    });
    EXPECT_EQ(slurp(file()), encode(first));
  }
}

// A crash can leave the last block zero-filled (the size reached the disk,
// the data did not): a malformed tail, cut like a torn one.
TEST_P(AofTest, ZeroFilledTailIsTruncated) {
  const std::vector<Args> good = {{"SET", "a", "1"}, {"SET", "b", "2"}};
  const std::string last = encode({"SET", "c", "3"});
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, last.size()}) {
    const std::string tail = last.substr(0, cut) + std::string(4096, '\0');
    write_raw(file(), encode_all(good) + tail);
    std::vector<Args> kept_records = good;
    if (cut == last.size()) kept_records.push_back({"SET", "c", "3"});
    run([&] {
      const Replayed r = replay(dir_.path());
      EXPECT_EQ(r.records, kept_records);
      EXPECT_EQ(r.result.truncated_bytes, tail.size() - (cut == last.size() ? last.size() : 0));
      EXPECT_NE(r.err.find("weft-kv: AOF: truncated"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("of a torn last record at offset"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("malformed"), std::string::npos) << r.err;
    });
    const std::string kept = encode_all(good) + (cut == last.size() ? last : "");
    EXPECT_EQ(slurp(file()), kept);
  }
}

// Garbage after the last record (nothing well-formed after it) is a tail too.
TEST_P(AofTest, GarbageTailIsTruncated) {
  const std::vector<Args> good = {{"SET", "a", "1"}};
  const std::string tail = "garbage\r\n*2\r\n$3\r\nGET";  // ends torn too
  write_raw(file(), encode(good[0]) + tail);
  run([&] {
    const Replayed r = replay(dir_.path());
    EXPECT_EQ(r.records, good);
    EXPECT_EQ(r.result.truncated_bytes, tail.size());
    EXPECT_NE(r.err.find("truncated " + std::to_string(tail.size()) +
                         " bytes of a torn last record at offset " +
                         std::to_string(encode(good[0]).size()) + " (malformed"),
              std::string::npos)
        << r.err;
  });
  EXPECT_EQ(slurp(file()), encode(good[0]));
}

// Corruption with well-formed records after it: replay refuses (as Redis
// does), says where, and leaves the file alone; nothing is applied past it.
TEST_P(AofTest, GarbageInTheMiddleThrowsAndLeavesTheFileAlone) {
  const std::string a = encode({"SET", "a", "1"});
  const std::string b = encode({"SET", "b", "2"});
  const std::string c = encode({"SET", "c", "3"});
  std::string flipped_length = b;
  flipped_length[5] = '7';  // "$3" -> "$7": the data no longer ends in \r\n
  std::string flipped_type = b;
  flipped_type[4] = '%';  // '$' -> '%'
  std::string zero_count = b;
  zero_count[1] = '0';  // "*3" -> "*0"
  struct Case {
    std::string name, bytes;
  };
  const std::vector<Case> cases = {
      {"garbage line", a + "garbage\r\n" + b + c}, {"flipped length", a + flipped_length + c},
      {"flipped type", a + flipped_type + c},      {"zero count", a + zero_count + c},
      {"zeros", a + std::string(100, '\0') + b},   {"huge count", a + "*99999999999\r\n" + b},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    write_raw(file(), k.bytes);
    run([&] {
      try {
        (void)replay(dir_.path());
        ADD_FAILURE() << "replay did not throw";
      } catch (const AofFormatError& e) {
        EXPECT_EQ(e.offset(), a.size());
        EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(a.size())),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find(file().native()), std::string::npos) << e.what();
      }
    });
    EXPECT_EQ(slurp(file()), k.bytes);  // untouched
  }
}

// Random damage (a byte overwritten, a cut, zeros or garbage appended):
// replay either refuses with AofFormatError and leaves the file alone, or
// keeps a prefix of whole records; either way a second replay agrees with
// the first and cuts nothing.
TEST_P(AofTest, RandomDamageEndsInACleanFileOrARefusal) {
  std::vector<Args> records;
  for (int i = 0; i < 40; ++i) {
    records.push_back({"SET", "k" + std::to_string(i), random_bytes(i % 13, i)});
  }
  const std::string bytes = encode_all(records);
  std::uint64_t x = 88172645463325252ull;
  auto rnd = [&](std::uint64_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % n;
  };
  run([&] {
    int refused = 0, cut = 0;
    for (int iter = 0; iter < scaled(300, 60); ++iter) {
      std::string damaged = bytes;
      switch (rnd(4)) {
        case 0:
          damaged[rnd(damaged.size())] = static_cast<char>(rnd(256));
          break;
        case 1:
          damaged.resize(rnd(damaged.size()));
          break;
        case 2:
          damaged += std::string(rnd(600), '\0');
          break;
        default:
          damaged += random_bytes(rnd(600), iter);
          break;
      }
      const std::string at = "iteration " + std::to_string(iter);
      write_raw(file(), damaged);
      try {
        const Replayed first = replay(dir_.path());
        const std::string kept = slurp(file());
        EXPECT_EQ(kept, damaged.substr(0, kept.size())) << at;  // a prefix
        EXPECT_EQ(kept.size() + first.result.truncated_bytes, damaged.size()) << at;
        if (first.result.truncated_bytes > 0) ++cut;
        const Replayed second = replay(dir_.path());
        EXPECT_EQ(second.result.truncated_bytes, 0u) << at;
        EXPECT_TRUE(second.records == first.records) << at;
        EXPECT_EQ(encode_all(first.records), kept) << at;  // whole records only
      } catch (const AofFormatError&) {
        ++refused;
        EXPECT_EQ(slurp(file()), damaged) << at;
      }
    }
    EXPECT_GT(cut, 0);
    EXPECT_GT(refused, 0);
  });
}

// MULTI ... EXEC is replayed all or nothing: applied once EXEC is read; an
// open transaction at the end of the file is cut off with its MULTI.
TEST_P(AofTest, TransactionsAreAllOrNothing) {
  const std::vector<Args> before = {{"SET", "a", "1"}};
  const std::vector<Args> tx = {{"MULTI"}, {"SET", "b", "2"}, {"INCR", "c"}, {"EXEC"}};
  const std::vector<Args> after = {{"SET", "d", "4"}};
  run([&] {
    // Complete: everything, in order.
    write_raw(file(), encode_all(before) + encode_all(tx) + encode_all(after));
    Replayed r = replay(dir_.path());
    std::vector<Args> all = before;
    all.insert(all.end(), tx.begin(), tx.end());
    all.insert(all.end(), after.begin(), after.end());
    EXPECT_EQ(r.records, all);
    EXPECT_EQ(r.result.commands, all.size());
    EXPECT_EQ(r.result.truncated_bytes, 0u);

    // Lower-case names count too, and EXEC outside a transaction is a
    // plain record.
    write_raw(file(), encode_all({{"multi"}, {"SET", "x", "1"}, {"exec"}, {"EXEC"}}));
    r = replay(dir_.path());
    EXPECT_EQ(r.result.commands, 4u);

    // Open at the end (cut before EXEC, or inside it): cut at MULTI.
    const std::string whole_tx = encode_all(tx);
    for (std::size_t cut : {encode_all({tx[0]}).size(), encode_all({tx[0], tx[1], tx[2]}).size(),
                            whole_tx.size() - 1}) {
      const std::string at = "transaction cut after " + std::to_string(cut);
      write_raw(file(), encode_all(before) + whole_tx.substr(0, cut));
      r = replay(dir_.path());
      EXPECT_EQ(r.records, before) << at;
      EXPECT_EQ(r.result.truncated_bytes, cut) << at;
      EXPECT_EQ(r.err, "weft-kv: AOF: truncated " + std::to_string(cut) +
                           " bytes of an incomplete MULTI/EXEC transaction at offset " +
                           std::to_string(encode_all(before).size()) + "\n")
          << at;
      EXPECT_EQ(slurp(file()), encode_all(before)) << at;
    }
  });
}

// --- group commit -------------------------------------------------------------------

// 1000 fibers on 2 workers append records while holding one of a few
// "shard" locks (as the server does) and wait for durability: every record
// is in the file exactly once, each fiber's in its own order, and the
// fdatasyncs were shared (far fewer requests than records).
TEST_P(AofTest, GroupCommitOf1000ConcurrentFibers) {
  const int kFibers = 1000;
  const int kPerFiber = static_cast<int>(scaled(5, 2));
  weft::Runtime rt(config());
  const weft::RuntimeStats before = rt.stats();
  rt.block_on([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::always);
    aof->replay([](auto) {});
    std::mutex shards[4];
    std::vector<weft::JoinHandle<void>> fibers;
    for (int f = 0; f < kFibers; ++f) {
      fibers.push_back(weft::spawn([&, f] {
        for (int i = 0; i < kPerFiber; ++i) {
          std::uint64_t seq;
          {
            std::lock_guard g(shards[(f + i) % 4]);
            seq = append(*aof, {"SET", "f" + std::to_string(f), std::to_string(i)});
          }
          aof->wait_durable(seq);
        }
      }));
    }
    for (auto& h : fibers) h.join();
    aof->flush_and_sync();
  });
  const weft::RuntimeStats after = rt.stats();
  const std::uint64_t records = static_cast<std::uint64_t>(kFibers) * kPerFiber;
  // Each round costs a write and an fdatasync (io_uring requests, or
  // blocking-pool tasks under epoll); one per record would be 2 * records.
  const std::uint64_t io = GetParam() == weft::IoBackend::io_uring
                               ? after.io_requests - before.io_requests
                               : after.blocking_tasks - before.blocking_tasks;
  EXPECT_LT(io, records) << "group commit did not group";

  rt.block_on([&] {
    const Replayed r = replay(dir_.path());
    ASSERT_EQ(r.records.size(), records);
    std::map<std::string, int> next;  // per fiber: the next record expected
    for (const auto& rec : r.records) {
      ASSERT_EQ(rec.size(), 3u);
      EXPECT_EQ(rec[2], std::to_string(next[rec[1]]++)) << rec[1];
    }
    EXPECT_EQ(next.size(), static_cast<std::size_t>(kFibers));
    for (const auto& [fiber, n] : next) EXPECT_EQ(n, kPerFiber) << fiber;
  });
}

// Fibers cancelled while they append and wait: nothing is lost or written
// twice. Every record appended is in the file after flush_and_sync.
TEST_P(AofTest, CancelledWaitersLoseNothing) {
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::always);
    aof->replay([](auto) {});
    std::mutex mu;
    std::vector<std::string> appended;
    std::vector<weft::JoinHandle<void>> fibers;
    for (int f = 0; f < 300; ++f) {
      fibers.push_back(weft::spawn([&, f] {
        for (int i = 0;; ++i) {
          // A fiber that keeps winning the writer role never parks in a
          // cancellable call: look for the cancellation here.
          weft::this_fiber::check_cancelled();
          const std::string key = std::to_string(f) + ":" + std::to_string(i);
          {
            std::lock_guard g(mu);
            (void)append(*aof, {"SET", key, "v"});
            appended.push_back(key);
          }
          aof->wait_durable(aof->append(std::vector<std::string_view>{"PING"}));
        }
      }));
    }
    weft::this_fiber::sleep_for(std::chrono::milliseconds(20));
    for (auto& h : fibers) h.cancel();
    int cancelled = 0;
    for (auto& h : fibers) {
      try {
        h.join();
      } catch (const weft::Cancelled&) {
        ++cancelled;
      }
    }
    EXPECT_EQ(cancelled, 300);
    aof->flush_and_sync();
    aof.reset();
    const Replayed r = replay(dir_.path());
    std::vector<std::string> in_file;
    for (const auto& rec : r.records) {
      if (rec[0] == "SET") in_file.push_back(rec[1]);
    }
    EXPECT_EQ(in_file, appended);  // same records, same order
  });
}

// --- policies -------------------------------------------------------------------------

// everysec: wait_durable returns once written; a background fiber
// fdatasyncs within about a second, and ends in flush_and_sync.
TEST_P(AofTest, EverysecWritesBeforeTheReplyAndSyncsInTheBackground) {
  weft::Runtime rt(config());
  rt.block_on([&] {
    const std::uint64_t fibers_before = rt.stats().fibers_alive;
    auto aof = Aof::open(dir_.path(), FsyncPolicy::everysec);
    EXPECT_EQ(rt.stats().fibers_alive, fibers_before + 1);  // the syncer
    aof->replay([](auto) {});
    aof->wait_durable(append(*aof, {"SET", "a", "1"}));
    EXPECT_EQ(slurp(file()), encode({"SET", "a", "1"}));  // written, before any sync

    // The syncer's fdatasync shows up as I/O while this fiber does none.
    auto io = [&] {
      const weft::RuntimeStats s = rt.stats();
      return GetParam() == weft::IoBackend::io_uring ? s.io_requests : s.blocking_tasks;
    };
    const std::uint64_t io_before = io();
    EXPECT_TRUE(weft::test::eventually([&] { return io() > io_before; }));

    aof->flush_and_sync();
    EXPECT_TRUE(weft::test::eventually([&] { return rt.stats().fibers_alive == fibers_before; }));
    aof->flush_and_sync();  // idempotent
    // Still usable after a flush: written, and synced by the next flush.
    aof->wait_durable(append(*aof, {"SET", "b", "2"}));
    aof->flush_and_sync();
  });
  EXPECT_EQ(slurp(file()), encode_all({{"SET", "a", "1"}, {"SET", "b", "2"}}));
}

TEST_P(AofTest, NoPolicyWritesBeforeTheReply) {
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::no);
    aof->replay([](auto) {});
    const std::uint64_t s1 = append(*aof, {"SET", "a", "1"});
    const std::uint64_t s2 = append(*aof, {"SET", "b", "2"});
    EXPECT_EQ(slurp(file()), "");  // append() only buffers
    aof->wait_durable(s1);         // writes everything buffered
    EXPECT_EQ(slurp(file()), encode_all({{"SET", "a", "1"}, {"SET", "b", "2"}}));
    aof->wait_durable(s2);  // already covered
    aof->wait_durable(0);
  });
}

TEST_P(AofTest, WaitDurableAfterFlushAndRepeatedFlushes) {
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::always);
    aof->replay([](auto) {});
    aof->flush_and_sync();  // nothing yet
    const std::uint64_t s1 = append(*aof, {"SET", "a", "1"});
    aof->flush_and_sync();
    aof->flush_and_sync();
    aof->wait_durable(s1);  // covered by the flush
    const std::uint64_t s2 = append(*aof, {"SET", "b", "2"});
    aof->wait_durable(s2);
    EXPECT_EQ(aof->size(), encode_all({{"SET", "a", "1"}, {"SET", "b", "2"}}).size());
  });
  EXPECT_EQ(slurp(file()), encode_all({{"SET", "a", "1"}, {"SET", "b", "2"}}));
}

// The destructor writes and syncs what is still buffered.
TEST_P(AofTest, DestructorFlushes) {
  for (FsyncPolicy policy : {FsyncPolicy::always, FsyncPolicy::everysec, FsyncPolicy::no}) {
    std::filesystem::remove(file());
    run([&] {
      auto aof = Aof::open(dir_.path(), policy);
      aof->replay([](auto) {});
      (void)append(*aof, {"SET", "a", "1"});
    });
    EXPECT_EQ(slurp(file()), encode({"SET", "a", "1"}));
  }
}

// --- misuse and errors -----------------------------------------------------------------

TEST_P(AofTest, Misuse) {
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::no);
    aof->replay([](auto) {});
    EXPECT_THROW(aof->replay([](auto) {}), std::logic_error);  // twice
    EXPECT_THROW(aof->append(std::vector<std::string_view>{}), std::invalid_argument);
    const std::uint64_t s = append(*aof, {"PING"});
    EXPECT_THROW(aof->wait_durable(s + 5), std::invalid_argument);
    aof->wait_durable(s);
    EXPECT_EQ(slurp(file()), encode({"PING"}));

    auto fresh = Aof::open(dir_.path(), FsyncPolicy::no);  // the same file again
    (void)append(*fresh, {"PING"});
    EXPECT_THROW(fresh->replay([](auto) {}), std::logic_error);  // after append
  });
}

TEST_P(AofTest, ReplayPropagatesExceptionsFromApplyAndTruncatesNothing) {
  std::string bytes = encode_all({{"SET", "a", "1"}, {"BAD"}}) + "*1\r\n$4\r\nPI";  // torn tail
  write_raw(file(), bytes);
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::no);
    EXPECT_THROW(aof->replay([](std::span<const std::string_view> argv) {
      if (argv[0] == "BAD") throw std::runtime_error("bad command");
    }),
                 std::runtime_error);
  });
  EXPECT_EQ(slurp(file()), bytes);
}

TEST_P(AofTest, OpenFailuresAreSystemErrorsNamingThePath) {
  run([&] {
    const auto missing = dir_ / "missing";
    WEFT_EXPECT_ERRNO(Aof::open(missing, FsyncPolicy::always), std::errc::no_such_file_or_directory,
                      "weft-kv: AOF", (missing / "appendonly.aof").native());
    write_raw(dir_ / "plain", "x");
    WEFT_EXPECT_ERRNO(Aof::open(dir_ / "plain", FsyncPolicy::always), std::errc::not_a_directory,
                      "appendonly.aof");
    std::filesystem::create_directory(dir_ / "d");
    std::filesystem::create_directory(dir_ / "d" / "appendonly.aof");
    WEFT_EXPECT_ERRNO(Aof::open(dir_ / "d", FsyncPolicy::always), std::errc::is_a_directory,
                      "appendonly.aof");
  });
}

// A write that fails (appendonly.aof is /dev/full: ENOSPC) fails every
// later wait_durable and flush_and_sync too, and append keeps working
// (dropping what it is given).
// A file that cannot be cut back after a failed write (/dev/full: ENOSPC
// on write, ftruncate refused) is a permanent failure: a retry could
// duplicate records, so every waiter gets the error, none hangs.
TEST_P(AofTest, FailuresThatCannotBeCutBackArePermanent) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::filesystem::create_symlink("/dev/full", file());
  for (FsyncPolicy policy : {FsyncPolicy::always, FsyncPolicy::everysec, FsyncPolicy::no}) {
    run([&] {
      auto aof = Aof::open(dir_.path(), policy);
      EXPECT_EQ(aof->replay([](auto) {}).commands, 0u);
      const std::uint64_t s1 = append(*aof, {"SET", "a", "1"});
      WEFT_EXPECT_ERRNO(aof->wait_durable(s1), std::errc::no_space_on_device, "weft-kv: AOF",
                        "appendonly.aof");
      try {
        aof->wait_durable(s1);
        ADD_FAILURE() << "no error";
      } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "weft-kv: AOF: write to '" + file().native() +
                      "' failed (record 1 was discarded): " + e.code().message());
      }
      EXPECT_FALSE(aof->status().ok);
      EXPECT_FALSE(aof->healthy());
      EXPECT_EQ(aof->status().error, ENOSPC);
      const std::uint64_t s2 = append(*aof, {"SET", "b", "2"});
      EXPECT_EQ(s2, s1 + 1);
      WEFT_EXPECT_ERRNO(aof->wait_durable(s2), std::errc::no_space_on_device);
      WEFT_EXPECT_ERRNO(aof->flush_and_sync(), std::errc::no_space_on_device);
      // Many concurrent waiters all get the error, none hangs.
      std::vector<weft::JoinHandle<int>> hs;
      for (int i = 0; i < 50; ++i) {
        hs.push_back(weft::spawn([&] {
          try {
            aof->wait_durable(append(*aof, {"PING"}));
            return 0;
          } catch (const std::system_error& e) {
            return e.code() == std::errc::no_space_on_device ? 1 : -1;
          }
        }));
      }
      for (auto& h : hs) EXPECT_EQ(h.join(), 1);
      ::testing::internal::CaptureStderr();
      aof.reset();  // no flush attempt; says what it could not write
      EXPECT_NE(::testing::internal::GetCapturedStderr().find("closed while failing"),
                std::string::npos);
    });
  }
}

// Injected ENOSPC or EIO at each write and fdatasync site (the group
// commit's write, its fdatasync under always, everysec's background
// fdatasync), each policy: the waiters of a failed batch get AofWriteError
// (their records are lost(), never written), the others return once their
// records are in the file; the status says err until a retry on the timer
// succeeds. The file then holds exactly the acknowledged records, each
// once.
TEST_P(AofTest, WriteAndFsyncFailuresAreRetriedAndLoseNothing) {
  namespace fault = weft::detail::io::fault;
  struct Case {
    const char* name;
    FsyncPolicy policy;
    std::string rule;
    std::uint64_t min_errors = 1;
  };
  const std::string path = "path=*/appendonly.aof";
  const std::vector<Case> cases = {
      {"write ENOSPC, always", FsyncPolicy::always,
       "op=write,errno=ENOSPC,after=1,count=2," + path},
      {"write EIO, everysec", FsyncPolicy::everysec, "op=write,errno=EIO,after=1,count=2," + path},
      {"write EDQUOT, no", FsyncPolicy::no, "op=write,errno=EDQUOT,after=1,count=2," + path},
      {"short writes, always", FsyncPolicy::always, "op=write,short=7,after=1,count=50," + path, 0},
      {"fdatasync EIO, always", FsyncPolicy::always, "op=fsync,errno=EIO,after=1,count=2," + path},
      {"background fdatasync EIO, everysec", FsyncPolicy::everysec,
       "op=fsync,errno=EIO,count=2," + path},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    std::filesystem::remove(file());
    fault::clear();
    for (std::size_t at = 0; at < k.rule.size();) {
      const std::size_t semi = std::min(k.rule.find(';', at), k.rule.size());
      if (!fault::add(fault::parse_rule(k.rule.substr(at, semi - at))))
        GTEST_SKIP() << "fault injection compiled out";
      at = semi + 1;
    }
    std::vector<Args> want;
    run([&] {
      auto aof = Aof::open(dir_.path(), k.policy);
      aof->replay([](auto) {});
      // The first record goes through (after=1 lets one write pass).
      want.push_back({"SET", "k0", "v0"});
      aof->wait_durable(append(*aof, want.back()));
      // Then batches of 20 concurrent writers until the faults are used
      // up: some land in failed rounds.
      const auto until = std::chrono::steady_clock::now() + weft::test::kPatience;
      int next = 1;
      do {
        std::vector<std::pair<Args, weft::JoinHandle<bool>>> hs;
        for (int i = 0; i < 20; ++i, ++next) {
          Args rec = {"SET", "k" + std::to_string(next), std::string(100, 'a' + next % 26)};
          hs.emplace_back(rec, weft::spawn([&aof, rec] {
                            const std::uint64_t seq = append(*aof, rec);
                            try {
                              aof->wait_durable(seq);
                              return true;
                            } catch (const kv::AofWriteError&) {
                              EXPECT_TRUE(aof->lost(seq));
                              return false;
                            }
                          }));
        }
        for (auto& [rec, h] : hs)
          if (h.join()) want.push_back(rec);
        if (!aof->healthy()) weft::this_fiber::sleep_for(std::chrono::milliseconds(300));
      } while ((aof->status().errors < k.min_errors || !aof->healthy()) &&
               std::chrono::steady_clock::now() < until);
      if (k.policy == FsyncPolicy::everysec) {
        // The background fdatasync fails and is retried too.
        const auto until = std::chrono::steady_clock::now() + weft::test::kPatience;
        while (aof->status().errors < 2 && std::chrono::steady_clock::now() < until)
          weft::this_fiber::sleep_for(std::chrono::milliseconds(50));
        while (!aof->healthy() && std::chrono::steady_clock::now() < until)
          weft::this_fiber::sleep_for(std::chrono::milliseconds(50));
      }
      EXPECT_TRUE(aof->healthy()) << k.name;
      EXPECT_GE(aof->status().errors, k.min_errors) << k.name;
      aof->flush_and_sync();
    });
    fault::clear();
    run([&] {
      Replayed r = replay(dir_.path());
      EXPECT_EQ(r.result.truncated_bytes, 0u);
      std::vector<Args> got = r.records, expect = want;
      std::sort(got.begin(), got.end());  // concurrent writers: any order
      std::sort(expect.begin(), expect.end());
      EXPECT_EQ(got, expect) << k.name;
    });
  }
}

// A write that fails part-way (RLIMIT_FSIZE lets a few bytes of the batch
// in, then EFBIG) is cut back to the last whole record (aof.cpp truncates
// to the size before the batch): the file ends on a record boundary, and
// replay finds nothing torn to cut.
TEST_P(AofTest, APartialWriteIsCutBackToTheLastWholeRecord) {
  const std::vector<Args> kept = {{"SET", "a", "1"}, {"SET", "b", "2"}};
  run([&] {
    auto aof = Aof::open(dir_.path(), FsyncPolicy::always);
    EXPECT_EQ(aof->replay([](auto) {}).commands, 0u);
    std::uint64_t seq = 0;
    for (const auto& r : kept) seq = append(*aof, r);
    aof->wait_durable(seq);
    const auto before = std::filesystem::file_size(file());
    ASSERT_EQ(before, encode_all(kept).size());

    // Writes past before + 10 bytes fail (EFBIG; SIGXFSZ ignored meanwhile).
    struct sigaction ign {
    }, old_action{};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGXFSZ, &ign, &old_action);
    rlimit old_limit{};
    ::getrlimit(RLIMIT_FSIZE, &old_limit);
    rlimit limit = old_limit;
    limit.rlim_cur = before + 10;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
    const std::uint64_t big = append(*aof, {"SET", "c", std::string(100, 'x')});
    std::error_code failed;
    try {
      aof->wait_durable(big);
    } catch (const std::system_error& e) {
      failed = e.code();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::sigaction(SIGXFSZ, &old_action, nullptr);
    EXPECT_EQ(failed, std::errc::file_too_large);
    EXPECT_EQ(std::filesystem::file_size(file()), before)
        << "the bytes of the failed batch that were written stay in the file";
  });
  run([&] {
    Replayed r = replay(dir_.path());
    EXPECT_EQ(r.records, kept);
    EXPECT_EQ(r.result.truncated_bytes, 0u) << r.err;
  });
}

// From a plain thread (no runtime) the same calls work, blocking the thread.
TEST_P(AofTest, WaitDurableFromPlainThreads) {
  weft::Runtime rt(config());
  auto aof = rt.block_on([&] { return Aof::open(dir_.path(), FsyncPolicy::always); });
  rt.block_on([&] { aof->replay([](auto) {}); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        aof->wait_durable(append(*aof, {"SET", std::to_string(t), std::to_string(i)}));
      }
    });
  }
  for (auto& t : threads) t.join();
  rt.block_on([&] {
    aof->flush_and_sync();
    aof.reset();
    EXPECT_EQ(replay(dir_.path()).records.size(), 200u);
  });
}

}  // namespace
}  // namespace kv
