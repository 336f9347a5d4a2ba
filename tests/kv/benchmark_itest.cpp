// Short redis-benchmark runs, unpipelined and with -P 16: the tool exits 0,
// reports a nonzero rate for every test it ran (parsed from --csv), and the
// server's state afterwards is what the requests produced (every INCR
// counted exactly once). Rates are never compared with a threshold.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::Reply;
using kv::itest::SharedServerTest;

// "test","rps",... rows of redis-benchmark --csv: test name -> rps.
std::map<std::string, double> parse_csv(const std::string& out) {
  std::map<std::string, double> rps;
  // (No std::regex: g++ 12's -Wmaybe-uninitialized misfires on it under ASan.)
  for (const auto& line : kv::itest::split_lines(out)) {
    if (line.size() < 2 || line[0] != '"') continue;
    const std::size_t name_end = line.find("\",\"", 1);
    if (name_end == std::string::npos) continue;
    const std::size_t num_begin = name_end + 3;
    const std::size_t num_end = line.find('"', num_begin);
    if (num_end == std::string::npos || num_end == num_begin) continue;
    const std::string num = line.substr(num_begin, num_end - num_begin);
    if (num.find_first_not_of("0123456789.") != std::string::npos) continue;
    rps[line.substr(1, name_end - 1)] = std::stod(num);
  }
  return rps;
}

class Benchmark : public SharedServerTest {
 protected:
  void run(const std::vector<std::string>& extra) {
    const std::string tool = kv::itest::redis_benchmark();
    if (tool.empty()) GTEST_SKIP() << "redis-benchmark is not installed";
    std::vector<std::string> args = {
        "-p",   std::to_string(port()), "-t", "ping,set,get,incr,mset", "-n", "20000", "-c", "50",
        "--csv"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = kv::itest::run_tool(tool, args);
    EXPECT_TRUE(r.status.success()) << "redis-benchmark: " << r.status.to_string() << "\nstdout:\n"
                                    << r.out << "\nstderr:\n"
                                    << r.err;
    const auto rps = parse_csv(r.out);
    for (const char* test : {"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"}) {
      const auto it = rps.find(test);
      if (it == rps.end()) {
        ADD_FAILURE() << "no result for " << test << " in:\n" << r.out << "\nstderr:\n" << r.err;
        continue;
      }
      EXPECT_GT(it->second, 0.0) << test;
      RecordProperty(std::string(test) + (extra.empty() ? "" : " -P16"),
                     std::to_string(it->second));
    }
    EXPECT_EQ(r.err.find("rror"), std::string::npos) << "redis-benchmark reported:\n" << r.err;

    // Without -r, redis-benchmark uses the literal keys "key:__rand_int__"
    // (SET, MSET; 3-byte values) and "counter:__rand_int__" (INCR).
    Client c(port());
    EXPECT_EQ(c.call({"GET", "counter:__rand_int__"}).describe(), "\"20000\"")
        << "every INCR applied exactly once";
    const Reply v = c.call({"GET", "key:__rand_int__"});
    EXPECT_EQ(v.type, Reply::Type::bulk) << v;
    EXPECT_EQ(v.str.size(), 3u) << v;
  }
};

TEST_F(Benchmark, Unpipelined) {
  run({});
}

TEST_F(Benchmark, Pipelined16) {
  run({"-P", "16"});
}

}  // namespace
