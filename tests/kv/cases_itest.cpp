// Command/reply cases: tests/kv/cases/*.txt run through ONE real redis-cli
// process per file, its output compared with the expected replies that
// tests/kv/cases/regen.sh recorded from redis-server 7.
//
// The format (regen.sh's header has the full description):
//
//   # comment
//   > SET k v          a command, as typed at redis-cli
//   OK                 expected output lines of `redis-cli --no-raw`
//   >~ KEYS *          unordered: "N) " numbering stripped, lines sorted
//   ># PTTL k          shape only: each run of digits becomes '<n>'
//   >- TTL k           a TTL in seconds: the integer may differ from the one
//                      recorded by one (a second boundary may pass between
//                      two commands on a slow machine)
//   proto 3            the file runs through `redis-cli -3` (RESP3)
//
// Why `redis-cli --no-raw` on stdin: it is what users type, it exercises
// redis-cli's own handshake (it sends COMMAND DOCS first), and --no-raw
// prints typed replies - `(integer) 1` vs `"1"`, `(nil)`, `(error) ...`,
// `(empty array)` - where the default for a non-terminal stdout (raw mode)
// would print the bare text and hide a type difference. After every command
// the runner sends `ECHO --itest-reply-end--`; its reply delimits the
// command's output, so a failure names the command, the expected and the
// actual output. Each file starts on an empty keyspace (FLUSHALL) and a new
// connection.
//
// Replies that are not deterministic (INFO, CLIENT LIST, SCAN cursors) are
// checked structurally in introspection_itest.cpp and scan_itest.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::SharedServerTest;

constexpr const char* kMarker = "--itest-reply-end--";

struct CaseCommand {
  int line = 0;
  char mode = ' ';  // ' ' exact, '~' unordered, '#' digits masked, '-' TTL within 1
  std::string text;
  std::vector<std::string> expected;
};

std::vector<CaseCommand> parse_case_file(const std::filesystem::path& path, bool* resp3 = nullptr) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::vector<CaseCommand> out;
  std::string line;
  int lineno = 0;
  bool in_block = false;
  // A command line: '>', an optional mode ('~', '#' or '-'), a space, the
  // command. (No std::regex: g++ 12's -Wmaybe-uninitialized misfires on it
  // under ASan.)
  auto command = [](const std::string& l, char& mode, std::string& text) {
    if (l.empty() || l[0] != '>') return false;
    std::size_t i = 1;
    mode = ' ';
    if (i < l.size() && (l[i] == '~' || l[i] == '#' || l[i] == '-')) mode = l[i++];
    if (i >= l.size() || l[i] != ' ' || i + 1 >= l.size()) return false;
    text = l.substr(i + 1);
    return true;
  };
  while (std::getline(in, line)) {
    ++lineno;
    char mode = ' ';
    std::string text;
    if (command(line, mode, text)) {
      CaseCommand c;
      c.line = lineno;
      c.mode = mode;
      c.text = std::move(text);
      out.push_back(std::move(c));
      in_block = true;
    } else if (!line.empty() && line[0] == '>') {
      throw std::runtime_error(path.string() + ":" + std::to_string(lineno) +
                               ": malformed command line: " + line);
    } else if (line == "proto 3") {
      if (resp3 != nullptr) *resp3 = true;
      in_block = false;
    } else if (line.empty() || line[0] == '#') {
      in_block = false;
    } else if (in_block) {
      out.back().expected.push_back(line);
    } else {
      throw std::runtime_error(path.string() + ":" + std::to_string(lineno) +
                               ": expected output without a command: " + line);
    }
  }
  return out;
}

/// regen.sh's normalize(), the same rules.
std::vector<std::string> normalize(char mode, std::vector<std::string> lines) {
  if (mode == '~') {
    for (auto& l : lines) {  // drop a leading " *<digits>) " (redis-cli pads to align)
      std::size_t i = 0;
      while (i < l.size() && l[i] == ' ') ++i;
      const std::size_t digits = i;
      while (i < l.size() && l[i] >= '0' && l[i] <= '9') ++i;
      if (i > digits && l.compare(i, 2, ") ") == 0) l.erase(0, i + 2);
    }
    std::sort(lines.begin(), lines.end());  // bytewise, as LC_ALL=C sort
  } else if (mode == '#') {
    for (auto& l : lines) {  // every run of digits becomes <n>
      std::string masked;
      for (std::size_t i = 0; i < l.size();) {
        if (l[i] >= '0' && l[i] <= '9') {
          while (i < l.size() && l[i] >= '0' && l[i] <= '9') ++i;
          masked += "<n>";
        } else {
          masked += l[i++];
        }
      }
      l = std::move(masked);
    }
  }
  return lines;
}

/// For mode '-': both are one line "(integer) N" and the numbers differ by
/// at most one; otherwise exact equality.
bool matches(char mode, const std::vector<std::string>& got, const std::vector<std::string>& want) {
  if (mode != '-' || got.size() != 1 || want.size() != 1) return got == want;
  const std::string prefix = "(integer) ";
  auto value = [&](const std::string& l, long& v) {
    if (l.rfind(prefix, 0) != 0) return false;
    try {
      std::size_t used = 0;
      v = std::stol(l.substr(prefix.size()), &used);
      return used == l.size() - prefix.size();
    } catch (const std::exception&) {
      return false;
    }
  };
  long g = 0, w = 0;
  if (!value(got[0], g) || !value(want[0], w)) return got == want;
  return g >= w - 1 && g <= w + 1;
}

std::string indent(const std::vector<std::string>& lines) {
  if (lines.empty()) return "    <nothing>\n";
  std::string out;
  for (const auto& l : lines) out += "    " + l + "\n";
  return out;
}

std::vector<std::string> case_files() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(WEFT_KV_CASES_DIR, ec)) {
    if (e.path().extension() == ".txt") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CaseFile : public SharedServerTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CaseFile, RepliesMatchRedis) {
  const std::string cli = kv::itest::redis_cli();
  if (cli.empty()) GTEST_SKIP() << "redis-cli is not installed";
  const std::filesystem::path path =
      std::filesystem::path(WEFT_KV_CASES_DIR) / (GetParam() + ".txt");
  bool resp3 = false;
  const std::vector<CaseCommand> commands = parse_case_file(path, &resp3);
  ASSERT_FALSE(commands.empty()) << path;

  std::string input;
  for (const auto& c : commands) input += c.text + "\nECHO " + kMarker + "\n";
  std::vector<std::string> args = {"-p", std::to_string(port()), "--no-raw"};
  if (resp3) args.push_back("-3");
  const auto result = kv::itest::run_tool(cli, args, input);
  EXPECT_TRUE(result.status.success()) << "redis-cli: " << result.status.to_string() << "\n"
                                       << result.err;

  // Split the output at the markers: one block per command.
  const std::string marker_line = std::string("\"") + kMarker + "\"";
  std::vector<std::vector<std::string>> blocks(1);
  for (auto& l : kv::itest::split_lines(result.out)) {
    if (l == marker_line) {
      blocks.emplace_back();
    } else {
      blocks.back().push_back(std::move(l));
    }
  }
  const std::vector<std::string> trailing = blocks.back();
  blocks.pop_back();  // what followed the last marker: should be nothing

  int failures = 0;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const CaseCommand& c = commands[i];
    if (i >= blocks.size()) {
      ADD_FAILURE() << path.filename().string() << ":" << c.line << ": > " << c.text
                    << "\n  no reply: redis-cli's output ended after " << blocks.size() << " of "
                    << commands.size() << " commands; its stderr:\n"
                    << result.err << "\n  output after the last reply:\n"
                    << indent(trailing);
      break;
    }
    const auto got = normalize(c.mode, blocks[i]);
    if (!matches(c.mode, got, c.expected)) {
      ++failures;
      ADD_FAILURE() << path.filename().string() << ":" << c.line << ": > " << c.text
                    << "\n  expected:\n"
                    << indent(c.expected) << "  got:\n"
                    << indent(got);
    }
  }
  EXPECT_TRUE(trailing.empty()) << "output after the last command:\n" << indent(trailing);
  RecordProperty("commands", static_cast<int>(commands.size()));
  RecordProperty("mismatches", failures);
}

INSTANTIATE_TEST_SUITE_P(Cases, CaseFile, ::testing::ValuesIn(case_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (auto& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

// The runner's own rules, so that a bug in them cannot hide a mismatch.
TEST(CaseFormat, NormalizationRules) {
  EXPECT_EQ(normalize('~', {"2) \"b\"", "1) \"a\"", "3) \"1) x\""}),
            (std::vector<std::string>{"\"1) x\"", "\"a\"", "\"b\""}));
  EXPECT_EQ(normalize('#', {"(integer) 99998"}), std::vector<std::string>{"(integer) <n>"});
  EXPECT_EQ(normalize('#', {"1) \"17\""}), std::vector<std::string>{"<n>) \"<n>\""});
  EXPECT_EQ(normalize(' ', {"2) b", "1) a"}), (std::vector<std::string>{"2) b", "1) a"}));
  EXPECT_TRUE(matches('-', {"(integer) 99"}, {"(integer) 100"}));
  EXPECT_TRUE(matches('-', {"(integer) 101"}, {"(integer) 100"}));
  EXPECT_FALSE(matches('-', {"(integer) 98"}, {"(integer) 100"}));
  EXPECT_FALSE(matches('-', {"(integer) -1"}, {"(integer) 100"}));
  EXPECT_FALSE(matches('-', {"\"100\""}, {"(integer) 100"}));
  EXPECT_FALSE(matches(' ', {"(integer) 99"}, {"(integer) 100"}));
}

TEST(CaseFormat, EveryCaseFileParsesAndHasExpectations) {
  const auto files = case_files();
  ASSERT_FALSE(files.empty()) << "no case files in " << WEFT_KV_CASES_DIR;
  for (const auto& f : files) {
    const auto commands = parse_case_file(std::filesystem::path(WEFT_KV_CASES_DIR) / (f + ".txt"));
    EXPECT_FALSE(commands.empty()) << f;
    for (const auto& c : commands) {
      // Every command prints something in redis-cli (an empty array prints
      // "(empty array)"): a command without expected lines was never
      // regenerated.
      EXPECT_FALSE(c.expected.empty()) << f << ".txt:" << c.line << ": > " << c.text
                                       << " has no expected output: run cases/regen.sh";
    }
  }
}

}  // namespace
