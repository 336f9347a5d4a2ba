// Units of weft-kv's RDB format (examples/weft-kv/rdb.hpp): the CRC-64's
// check value, the writer's output read back by the loader as the
// commands that rebuild each key, and the loader's refusals. The round
// trips with a real redis-server are in rdb_itest.cpp.
#include "rdb.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rdb_save.hpp"
#include "types/hash.hpp"
#include "types/list.hpp"
#include "types/set.hpp"

namespace {

std::vector<std::string> load(std::string_view file, std::int64_t now = 1000) {
  std::vector<std::string> out;
  kv::rdb_load(file, now, [&](std::span<const std::string_view> argv) {
    std::string line;
    for (std::string_view a : argv) line += std::string(a) + " ";
    out.push_back(line);
  });
  return out;
}

TEST(Rdb, Crc64IsRedisJones) {
  // Redis's crc64.c self-test value for "123456789".
  EXPECT_EQ(kv::crc64(0, "123456789"), 0xe9c6d914c4b8d9caull);
  // Continuing a checksum equals one pass.
  EXPECT_EQ(kv::crc64(kv::crc64(0, "12345"), "6789"), 0xe9c6d914c4b8d9caull);
}

TEST(Rdb, WriterOutputLoadsAsCommands) {
  kv::RdbWriter w;
  w.header(5000, 1, 4, 1);
  w.entry("s", "-300", nullptr, -1);
  w.entry("t", "text", nullptr, 9000);
  w.entry("gone", "x", nullptr, 10);  // expired at load time
  kv::List l;
  l.push(false, "a");
  l.push(false, "70000");
  w.entry("l", "", &l, -1);
  kv::HashObject h;
  h.set("f", "v", {});
  w.entry("h", "", &h, -1);
  w.finish();
  const std::string file = w.take();
  EXPECT_EQ(file.substr(0, 9), "REDIS0010");
  const auto cmds = load(file);
  const std::vector<std::string> want = {"SET s -300 ", "SET t text ", "PEXPIREAT t 9000 ",
                                         "RPUSH l a 70000 ", "HSET h f v "};
  EXPECT_EQ(cmds, want);

  // Every single-bit flip past the header is refused (structure or CRC),
  // and nothing is applied before the refusal.
  for (std::size_t i = 9; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    std::size_t applied = 0;
    EXPECT_THROW(kv::rdb_load(bad, 1000, [&](auto) { ++applied; }), kv::RdbFormatError) << i;
    EXPECT_EQ(applied, 0u) << i;
  }
  // Every truncation is refused.
  for (std::size_t n = 0; n < file.size(); ++n)
    EXPECT_THROW(load(file.substr(0, n)), kv::RdbFormatError) << n;
}

TEST(Rdb, LoaderReadsRedisCompactEncodings) {
  // A hand-made file as redis-server 7.0.15 writes it: a listpack hash
  // with a 13-bit negative integer, an intset, an LZF string; zero CRC
  // (not checked, as Redis's).
  std::string f = "REDIS0010";
  // RDB_TYPE_HASH_LISTPACK "h": listpack {"a", -5} (6 bytes of header,
  // two entries of 3, the terminator).
  std::string lp;
  lp += std::string("\x0d\x00\x00\x00", 4);  // total bytes: 13
  lp += std::string("\x02\x00", 2);          // 2 elements
  lp += std::string(
      "\x81"
      "a"
      "\x02",
      3);                                // 6-bit string "a", backlen 2
  lp += std::string("\xdf\xfb\x02", 3);  // 13-bit int -5, backlen 2
  lp += std::string("\xff", 1);          // end
  ASSERT_EQ(lp.size(), 13u);
  f += std::string("\x10\x01h", 3) + static_cast<char>(lp.size()) + lp;
  // RDB_TYPE_SET_INTSET "s": 16-bit, {-2, 7}.
  const std::string is = std::string("\x02\x00\x00\x00\x02\x00\x00\x00\xfe\xff\x07\x00", 12);
  f += std::string("\x0b\x01s", 3) + static_cast<char>(is.size()) + is;
  // RDB_TYPE_STRING "z" LZF: "aaaaaaaaaa" = literal "a" then a back
  // reference of 9 bytes at distance 1 (ctrl 0xe0 len 7+0 => 9... ).
  const std::string lzf = std::string(
      "\x00"
      "a"
      "\xe0\x00\x00",
      5);  // 1 literal, ref len 7+0+2=9
  f += std::string("\x00\x01z\xc3", 4) + static_cast<char>(lzf.size()) + "\x0a" + lzf;
  f += std::string("\xff", 1) + std::string(8, '\0');
  const std::vector<std::string> want = {"HSET h a -5 ", "SADD s -2 7 ", "SET z aaaaaaaaaa "};
  EXPECT_EQ(load(f), want);
}

TEST(Rdb, LoaderRefusesWhatWeftKvLacks) {
  const auto refuse = [](const std::string& body, const std::string& reason) {
    const std::string f = "REDIS0010" + body + std::string("\xff", 1) + std::string(8, '\0');
    try {
      load(f);
      ADD_FAILURE() << "accepted: " << reason;
    } catch (const kv::RdbFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  };
  refuse(std::string("\xfe\x02", 2), "database 2");
  refuse(std::string("\x13\x01k\x00", 4), "(stream)");
  refuse(std::string("\xf5", 1), "function");
}

TEST(Rdb, SaveScheduleParses) {
  EXPECT_EQ(kv::parse_save_schedule("3600 1 300 100"), (kv::SaveSchedule{{3600, 1}, {300, 100}}));
  EXPECT_TRUE(kv::parse_save_schedule("").empty());
  EXPECT_THROW(kv::parse_save_schedule("3600"), std::invalid_argument);
  EXPECT_THROW(kv::parse_save_schedule("1 x"), std::invalid_argument);
}

}  // namespace
