// Malformed requests against the live server: every file of the corpus
// tests/kv/corpus/malformed/ is sent on a fresh connection; the server must
// answer exactly the expected reply lines and then close the connection,
// and go on serving other connections.
//
// Corpus format: NAME.bin holds the bytes to send; NAME.expected holds the
// complete reply the server sends before it closes, one RESP line per text
// line without the CRLF - usually just the error, e.g.
//   -ERR Protocol error: invalid bulk length
// (a .bin that starts with valid commands lists their replies first). A
// final newline is optional (tests/kv/corpus/README.md: the corpus proper
// is written by gen_corpus.py from redis-server 7's replies). Files named
// itest_* were written for this test; the parser's unit tests
// (resp_test.cpp) read the whole corpus too.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "kv/kv_harness.hpp"
#include "weft/errors.hpp"

namespace {

using namespace std::chrono_literals;
using kv::itest::Client;
using kv::itest::SharedServerTest;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The printable form of a byte string for messages.
std::string printable(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  return out;
}

class Malformed : public SharedServerTest {};

TEST_F(Malformed, CorpusGetsTheErrorAndAClose) {
  const std::filesystem::path dir = std::filesystem::path(WEFT_KV_CORPUS_DIR) / "malformed";
  std::vector<std::filesystem::path> inputs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".bin") inputs.push_back(e.path());
  }
  if (inputs.empty()) GTEST_SKIP() << "no *.bin in " << dir;
  std::sort(inputs.begin(), inputs.end());

  Client bystander(port());
  ASSERT_EQ(bystander.call({"SET", "bystander", "still here"}).describe(), "+OK");
  for (const auto& bin : inputs) {
    const std::string name = bin.stem().string();
    SCOPED_TRACE(name);
    std::filesystem::path exp = bin;
    exp.replace_extension(".expected");
    if (!std::filesystem::exists(exp)) {
      ADD_FAILURE() << name << ".bin has no " << name << ".expected";
      continue;
    }
    std::string expected;
    for (const auto& line : kv::itest::split_lines(slurp(exp))) expected += line + "\r\n";
    const std::string request = slurp(bin);

    Client c(port());
    try {
      c.send(request);
    } catch (const std::system_error& e) {
      // The server may close before it has read everything of a long
      // request; what it sent before is still there to read.
      if (e.code() != std::errc::broken_pipe && e.code() != std::errc::connection_reset) throw;
    }
    try {
      const std::string got = c.read_until_close(10s);
      EXPECT_EQ(printable(got), printable(expected))
          << name << ": sent " << printable(request.substr(0, 200));
    } catch (const weft::TimedOut&) {
      ADD_FAILURE() << name << ": the server kept the connection open for 10 s after: "
                    << printable(request.substr(0, 200));
    }
    EXPECT_EQ(bystander.call({"GET", "bystander"}).describe(), "\"still here\"")
        << "after " << name;
  }
  Client fresh(port());
  EXPECT_EQ(fresh.call({"PING"}).describe(), "+PONG");
  RecordProperty("files", static_cast<int>(inputs.size()));
}

}  // namespace
