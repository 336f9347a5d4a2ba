// libFuzzer target for weft-kv's command layer: random valid commands of
// every type, run by kv::execute against one keyspace, as a server runs
// them (on a fiber of a one-worker weft runtime, through a Host that keeps
// the writes it is given).
//
//   make fuzz    builds build-fuzz-commands/examples/weft-kv/fuzz_commands
//                (clang, ASan+UBSan, -fsanitize=fuzzer-no-link on every
//                library) and runs it for FUZZ_SECONDS
//
// The input is a program. Each command takes a byte choosing an entry of
// the command table (every command and subcommand there is, so the types
// added later are fuzzed without a change here; a blocking command runs
// as a client that may not block: it pops at once or gets the timeout's
// reply, as in Redis's MULTI), a byte choosing how many arguments
// beyond the arity's minimum, then one byte per argument choosing its kind:
// a key of a small pool, a small or extreme integer, a float, a keyword
// some command parses (EX, WITHSCORES, LIMIT, ...), a glob, a long value,
// or bytes taken from the input itself. Arities are always right, so
// commands get past the dispatcher and into the handlers.
//
// Checked after every command, besides "no crash, no leak, no UB":
//  - exactly one well-formed RESP2 reply was appended (none only when the
//    command closes the connection, as SHUTDOWN);
//  - the keyspace's byte count equals the sum over its entries
//    (Shard::recharge was called after every change in place);
// and after the whole input, no key of an aggregate type is empty (Redis
// deletes a key with its last element).
// proto-max-bulk-len is 1 MiB here, so offsets (SETRANGE, SETBIT,
// BITFIELD) and LCS stay small enough for thousands of runs a second.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"
#include "resp.hpp"
#include "weft/weft.hpp"

namespace {

void check(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_commands: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
  }
}

class FuzzHost final : public kv::Host {
 public:
  FuzzHost() { opts.limits.max_bulk_len = std::size_t{1} << 20; }
  kv::Keyspace& keyspace() noexcept override { return ks; }
  void propagate(kv::Context&, std::span<const std::string_view> argv) override {
    check(!argv.empty(), "an empty record was propagated");
    ++propagated;
  }
  bool loading() const noexcept override { return false; }
  const kv::Options& options() const noexcept override { return opts; }
  kv::Settings& settings() noexcept override { return settings_; }
  std::int64_t used_memory() const noexcept override { return ks.bytes(); }
  bool writes_allowed() const noexcept override { return true; }
  std::string write_refusal() const override { return {}; }
  std::string info(std::string_view) override { return "# Fuzz\r\n"; }
  std::string client_list(const kv::Client*) override { return ""; }
  void reset_stats() noexcept override {}
  void request_shutdown() noexcept override {}

  kv::Options opts;
  kv::Settings settings_{opts};
  kv::Keyspace ks;
  std::uint64_t propagated = 0;
};

// The end of the one RESP2 reply starting at `p`, or nullptr if the bytes
// are not one well-formed reply.
const char* reply_end(const char* p, const char* end, int depth = 0) {
  if (p >= end || depth > 64) return nullptr;
  const char* eol =
      static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
  if (eol == nullptr || eol + 1 >= end || eol[1] != '\n') return nullptr;
  const std::string_view head(p + 1, static_cast<std::size_t>(eol - p - 1));
  const char* next = eol + 2;
  auto number = [&](long long& n) {
    if (head.empty()) return false;
    char* stop = nullptr;
    const std::string text(head);
    n = std::strtoll(text.c_str(), &stop, 10);
    return *stop == '\0';
  };
  long long n = 0;
  switch (*p) {
    case '+':
    case '-':
      return head.find('\n') == std::string_view::npos ? next : nullptr;
    case ':':
      return number(n) ? next : nullptr;
    case '$':
      if (!number(n) || n < -1) return nullptr;
      if (n == -1) return next;
      if (end - next < n + 2 || next[n] != '\r' || next[n + 1] != '\n') return nullptr;
      return next + n + 2;
    case '*':
      if (!number(n) || n < -1) return nullptr;
      for (long long i = 0; i < n && next != nullptr; ++i) next = reply_end(next, end, depth + 1);
      return next;
    default:
      return nullptr;
  }
}

// Reads the input a byte at a time (zeros past its end).
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  std::uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  std::string bytes(std::size_t n) {
    n = std::min<std::size_t>(n, static_cast<std::size_t>(end_ - p_));
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Every runnable command and subcommand, as argv[0] (and argv[1]) with its
// arity.
struct Target {
  std::string name, sub;
  int arity;
};

const std::vector<Target>& targets() {
  static const std::vector<Target> all = [] {
    std::vector<Target> v;
    for (const kv::Command& c : kv::command_table()) {
      if (c.subcommands.empty()) {
        v.push_back({c.name, "", c.arity});
        continue;
      }
      for (const kv::Command& s : c.subcommands) {
        const std::string_view full = s.name;
        v.push_back({c.name, std::string(full.substr(full.find('|') + 1)), s.arity});
      }
    }
    return v;
  }();
  return all;
}

std::string argument(Input& in) {
  static const char* const kKeys[] = {"k0", "k1", "k2", "k3", "{k}a", "{k}b"};
  static const char* const kInts[] = {"0",  "1",   "2",  "3",  "-1", "-2", "5",
                                      "10", "100", "-7", "64", "7",  "8",  "1000"};
  static const char* const kExtremes[] = {"9223372036854775807",
                                          "-9223372036854775808",
                                          "9223372036854775808",
                                          "4294967296",
                                          "2147483648",
                                          "-2147483649",
                                          "007",
                                          "+1",
                                          " 1",
                                          "1048576"};
  static const char* const kFloats[] = {"1.5",   "-0.5",   "0",     "inf",  "-inf",   "nan",
                                        "1e300", "1e-300", "3.0e2", "0x10", "1e4932", ".5"};
  static const char* const kWords[] = {"EX",
                                       "PX",
                                       "EXAT",
                                       "PXAT",
                                       "KEEPTTL",
                                       "PERSIST",
                                       "NX",
                                       "XX",
                                       "GT",
                                       "LT",
                                       "GET",
                                       "SET",
                                       "INCRBY",
                                       "OVERFLOW",
                                       "WRAP",
                                       "SAT",
                                       "FAIL",
                                       "u8",
                                       "i16",
                                       "i64",
                                       "u63",
                                       "#1",
                                       "BIT",
                                       "BYTE",
                                       "AND",
                                       "OR",
                                       "XOR",
                                       "NOT",
                                       "IDX",
                                       "LEN",
                                       "MINMATCHLEN",
                                       "WITHMATCHLEN",
                                       "REPLACE",
                                       "DB",
                                       "COUNT",
                                       "MATCH",
                                       "TYPE",
                                       "LIMIT",
                                       "WITHVALUES",
                                       "WITHSCORES",
                                       "BYSCORE",
                                       "BYLEX",
                                       "REV",
                                       "LEFT",
                                       "RIGHT",
                                       "BEFORE",
                                       "AFTER",
                                       "RANK",
                                       "MAXLEN",
                                       "WEIGHTS",
                                       "AGGREGATE",
                                       "SUM",
                                       "MIN",
                                       "MAX",
                                       "INCR",
                                       "CH",
                                       "hash",
                                       "set",
                                       "string",
                                       "list",
                                       "zset",
                                       "encoding",
                                       "refcount",
                                       "idletime",
                                       "maxmemory",
                                       "hash-max-listpack-entries",
                                       "set-max-intset-entries",
                                       "timeout",
                                       "(1",
                                       "[a",
                                       "-",
                                       "+"};
  static const char* const kGlobs[] = {"*", "k*", "?1", "[a-c]*", "\\*", "[^k]*", ""};
  const std::uint8_t b = in.byte();
  switch (b % 8) {
    case 0:
    case 1:
      return kKeys[(b >> 3) % std::size(kKeys)];
    case 2:
      return kInts[(b >> 3) % std::size(kInts)];
    case 3:
      return kExtremes[(b >> 3) % std::size(kExtremes)];
    case 4:
      return kFloats[(b >> 3) % std::size(kFloats)];
    case 5:
      return kWords[(b >> 3) % std::size(kWords)];
    case 6:
      return (b >> 3) % 4 == 0 ? std::string(70 + (b >> 5), 'L')
                               : kGlobs[(b >> 3) % std::size(kGlobs)];
    default:
      return in.bytes((b >> 3) % 17);  // 0..16 bytes of the input itself
  }
}

void run_program(const std::uint8_t* data, std::size_t size) {
  FuzzHost host;
  Input in(data, size);
  std::string out;
  std::vector<std::string> args;
  std::vector<std::string_view> argv;
  const auto& all = targets();
  for (int n = 0; n < 64 && !in.done(); ++n) {
    const Target& t = all[in.byte() % all.size()];
    args.clear();
    args.push_back(t.name);
    if (!t.sub.empty()) args.push_back(t.sub);
    const int min = t.arity > 0 ? t.arity : -t.arity;
    const int extra = t.arity > 0 ? 0 : in.byte() % 6;
    while (static_cast<int>(args.size()) < min + extra) args.push_back(argument(in));
    argv.assign(args.begin(), args.end());
    out.clear();
    kv::Context ctx{host, nullptr, argv, out, kv::unix_ms()};
    kv::execute(ctx);
    if (!(ctx.close && out.empty())) {  // SHUTDOWN closes without a reply
      const char* end = reply_end(out.data(), out.data() + out.size());
      check(end == out.data() + out.size(), "not exactly one RESP reply from",
            args[0] + " -> " + out.substr(0, 200));
    }
    const std::int64_t bytes = host.ks.bytes();
    check(bytes == host.ks.recounted_bytes(), "byte count drifted after", args[0]);
  }
  // No empty aggregate is left behind.
  static const std::pair<const char*, const char*> kLengths[] = {
      {"hash", "HLEN"}, {"set", "SCARD"}, {"list", "LLEN"}, {"zset", "ZCARD"}};
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kv::Keyspace::kShards; ++i) {
    kv::Shard& sh = host.ks.shard(i);
    std::lock_guard lk(sh.mu);
    sh.table().for_each([&](const kv::Entry& e) {
      if (e.object) keys.push_back(e.key);
    });
  }
  for (const std::string& key : keys) {
    out.clear();
    std::vector<std::string_view> type_argv = {"TYPE", key};
    kv::Context tctx{host, nullptr, type_argv, out, kv::unix_ms()};
    kv::execute(tctx);
    const std::string type = out.size() > 3 ? out.substr(1, out.size() - 3) : "";
    for (const auto& [name, len] : kLengths) {
      if (type != name || kv::find_command(len) == nullptr) continue;
      out.clear();
      std::vector<std::string_view> len_argv = {len, key};
      kv::Context lctx{host, nullptr, len_argv, out, kv::unix_ms()};
      kv::execute(lctx);
      check(out != ":0\r\n", "an empty aggregate stayed:", key);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // One runtime for the whole run: commands execute on a fiber, as in the
  // server (fiber stacks, weft::Mutex parking paths).
  static weft::Runtime* rt = new weft::Runtime(weft::Config{.workers = 1});
  rt->block_on([&] { run_program(data, size); });
  return 0;
}
