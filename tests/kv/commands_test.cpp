// weft-kv's command layer on its own: handlers run against a fake Host (no
// server, no sockets), which is what the one-way dependency of command.hpp
// buys. Checked: replies, what is propagated and in which form, typed
// values (an Object of another type: WRONGTYPE, TYPE, SCAN TYPE, byte
// accounting), and the dispatcher's arity and maxmemory checks.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "command.hpp"
#include "resp.hpp"
#include "weft/weft.hpp"

namespace {

using Args = std::vector<std::string>;

class FakeHost final : public kv::Host {
 public:
  kv::Keyspace& keyspace() noexcept override { return ks; }
  void propagate(kv::Context&, std::span<const std::string_view> argv) override {
    log.emplace_back(argv.begin(), argv.end());
  }
  bool loading() const noexcept override { return false; }
  const kv::Options& options() const noexcept override { return opts; }
  std::int64_t used_memory() const noexcept override { return ks.bytes(); }
  bool writes_allowed() const noexcept override { return !disk_error; }
  std::string write_refusal() const override {
    return "MISCONF Errors writing to the AOF file: No space left on device";
  }
  std::string info(std::string_view) override { return "# Fake\r\n"; }
  std::string client_list(const kv::Client*) override { return ""; }
  void reset_stats() noexcept override {}
  void request_shutdown() noexcept override { shutdown = true; }

  kv::Keyspace ks;
  kv::Options opts;
  std::vector<Args> log;
  bool shutdown = false;
  bool disk_error = false;
};

// A value of another type, as a list group would define one.
class FakeList final : public kv::Object {
 public:
  explicit FakeList(std::int64_t bytes) : bytes_(bytes) {}
  kv::Type type() const noexcept override { return kv::Type::list; }
  std::int64_t bytes() const noexcept override { return bytes_; }
  const char* encoding() const noexcept override { return "listpack"; }
  std::int64_t bytes_;
};

std::string run(FakeHost& host, const Args& args) {
  std::vector<std::string_view> argv(args.begin(), args.end());
  std::string out;
  kv::Context ctx{host, nullptr, argv, out, kv::unix_ms()};
  kv::execute(ctx);
  return out;
}

template <class F>
void on_runtime(F&& f) {
  weft::Runtime rt(weft::Config{.workers = 1});
  rt.block_on(std::forward<F>(f));
}

TEST(KvCommands, HandlersRunAgainstAnyHostAndPropagateDeterministicForms) {
  on_runtime([] {
    FakeHost h;
    EXPECT_EQ(run(h, {"SET", "k", "1"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"incrby", "k", "41"}), ":42\r\n");
    EXPECT_EQ(run(h, {"GET", "k"}), "$2\r\n42\r\n");
    EXPECT_EQ(run(h, {"get"}), "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT_EQ(run(h, {"del", "k", "nosuch"}), ":1\r\n");
    const std::vector<Args> want = {
        {"SET", "k", "1"}, {"SET", "k", "42", "KEEPTTL"}, {"DEL", "k", "nosuch"}};
    EXPECT_EQ(h.log, want);
    EXPECT_EQ(run(h, {"SHUTDOWN"}), "");
    EXPECT_TRUE(h.shutdown);
  });
}

TEST(KvCommands, ValuesOfAnotherTypeAreTypedAndAccounted) {
  on_runtime([] {
    FakeHost h;
    const std::uint64_t hk = kv::Keyspace::hash("l");
    kv::Shard& sh = h.ks.shard_of(hk);
    {
      std::lock_guard lk(sh.mu);
      kv::Entry* e = sh.insert("l", hk);
      sh.assign(e, std::make_unique<FakeList>(1000));
    }
    EXPECT_EQ(h.ks.bytes(), kv::Shard::kEntryOverhead + 1 + 1000);
    const std::string wrongtype =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    EXPECT_EQ(run(h, {"GET", "l"}), wrongtype);
    EXPECT_EQ(run(h, {"APPEND", "l", "x"}), wrongtype);
    EXPECT_EQ(run(h, {"INCR", "l"}), wrongtype);
    EXPECT_EQ(run(h, {"STRLEN", "l"}), wrongtype);
    EXPECT_EQ(run(h, {"SET", "l", "v", "GET"}), wrongtype);
    EXPECT_EQ(run(h, {"MGET", "l"}), "*1\r\n$-1\r\n");
    EXPECT_EQ(run(h, {"TYPE", "l"}), "+list\r\n");
    EXPECT_EQ(run(h, {"SET", "s", "v"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"SCAN", "0", "TYPE", "list", "COUNT", "1000"}),
              "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nl\r\n");
    // The object grows in place: recharge() follows it.
    {
      std::lock_guard lk(sh.mu);
      kv::Entry* e = sh.find("l", hk, kv::unix_ms());
      static_cast<FakeList*>(e->object.get())->bytes_ = 5000;
      sh.recharge(e);
    }
    const std::int64_t with_s = kv::Shard::kEntryOverhead * 2 + 1 + 5000 + 1 + 1;
    EXPECT_EQ(h.ks.bytes(), with_s);
    // SET replaces a value of any type (the object goes).
    EXPECT_EQ(run(h, {"SET", "l", "abc"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"TYPE", "l"}), "+string\r\n");
    EXPECT_EQ(h.ks.bytes(), kv::Shard::kEntryOverhead * 2 + 1 + 3 + 1 + 1);
    EXPECT_EQ(run(h, {"DEL", "l", "s"}), ":2\r\n");
    EXPECT_EQ(h.ks.bytes(), 0);
  });
}

// While the AOF cannot be written, writes (and PING, as in Redis) are
// refused before they run: nothing is applied, nothing propagated.
TEST(KvCommands, DispatcherRefusesWritesWhilePersistenceFails) {
  on_runtime([] {
    FakeHost h;
    EXPECT_EQ(run(h, {"SET", "k", "1"}), "+OK\r\n");
    h.disk_error = true;
    const std::string misconf =
        "-MISCONF Errors writing to the AOF file: No space left on device\r\n";
    EXPECT_EQ(run(h, {"SET", "k", "2"}), misconf);
    EXPECT_EQ(run(h, {"DEL", "k"}), misconf);
    EXPECT_EQ(run(h, {"INCR", "k"}), misconf);
    EXPECT_EQ(run(h, {"PING"}), misconf);
    EXPECT_EQ(run(h, {"GET", "k"}), "$1\r\n1\r\n");  // reads keep working
    EXPECT_EQ(h.log.size(), 1u);
    h.disk_error = false;
    EXPECT_EQ(run(h, {"DEL", "k"}), ":1\r\n");
  });
}

TEST(KvCommands, DispatcherRefusesDenyOomCommandsAboveMaxmemory) {
  on_runtime([] {
    FakeHost h;
    h.opts.maxmemory = 1;
    EXPECT_EQ(run(h, {"SET", "k", "v"}), "+OK\r\n");  // at 0 bytes used: allowed
    EXPECT_EQ(run(h, {"SET", "k", "v"}),
              "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    EXPECT_EQ(run(h, {"DEL", "k"}), ":1\r\n");  // not denyoom
    EXPECT_EQ(kv::find_command("GeT")->first_key(), 1);
    EXPECT_EQ(kv::find_command("mset")->key_step(), 2);
    EXPECT_EQ(kv::find_command("mset")->last_key(), -1);
    EXPECT_EQ(kv::find_command("nosuch"), nullptr);
  });
}

}  // namespace
