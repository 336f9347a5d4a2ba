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
#include "fake_host.hpp"
#include "resp.hpp"
#include "weft/weft.hpp"

namespace {

using kv_test::Args;
using kv_test::FakeHost;
using kv_test::run;

// A value of another type, as a list group would define one.
class FakeList final : public kv::Object {
 public:
  explicit FakeList(std::int64_t bytes) : bytes_(bytes) {}
  kv::Type type() const noexcept override { return kv::Type::list; }
  std::int64_t bytes() const noexcept override { return bytes_; }
  const char* encoding() const noexcept override { return "listpack"; }
  std::unique_ptr<kv::Object> clone() const override { return std::make_unique<FakeList>(*this); }
  std::int64_t bytes_;
};

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
    // A node with short (inline) key and value costs the Entry's
    // allocation and its bucket pointer; the object adds its estimate.
    const auto probe = std::make_unique<kv::Entry>();
    const std::int64_t node = kv::Shard::cost(*probe);
    EXPECT_GE(node, static_cast<std::int64_t>(sizeof(kv::Entry) + sizeof(void*)));
    EXPECT_EQ(h.ks.bytes(), node + 1000);
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
    const std::int64_t with_s = node * 2 + 5000;
    EXPECT_EQ(h.ks.bytes(), with_s);
    // SET replaces a value of any type (the object goes).
    EXPECT_EQ(run(h, {"SET", "l", "abc"}), "+OK\r\n");
    EXPECT_EQ(run(h, {"TYPE", "l"}), "+string\r\n");
    EXPECT_EQ(h.ks.bytes(), node * 2);
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
    h.settings_.maxmemory = 1;
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

namespace {

TEST(KvCommands, WritesOfEveryTypeKeepTheByteCountExact) {
  on_runtime([] {
    FakeHost h;
    h.settings_.hash_max_listpack_entries = 3;
    h.settings_.set_max_intset_entries = 3;
    const std::vector<Args> script = {
        {"HSET", "h", "a", "1", "b", "2"},
        {"HSET", "h", "c", "3", "d", std::string(100, 'x')},  // converts
        {"HDEL", "h", "a"},
        {"HINCRBY", "h", "n", "5"},
        {"HINCRBYFLOAT", "h", "f", "1.5"},
        {"SADD", "s", "1", "2"},
        {"SADD", "s", "3", "4"},  // converts
        {"SREM", "s", "1"},
        {"SPOP", "s"},
        {"SADD", "t", "x", "y", "z"},
        {"SMOVE", "t", "u", "x"},
        {"SUNIONSTORE", "v", "s", "t", "u"},
        {"SINTERSTORE", "w", "s", "v"},
        {"SETRANGE", "str", "10", "abc"},
        {"SETBIT", "str", "200", "1"},
        {"APPEND", "str", "tail"},
        {"BITOP", "OR", "b", "str", "str"},
        {"BITFIELD", "bf", "SET", "u8", "100", "7"},
        {"INCRBYFLOAT", "fl", "2.5"},
        {"MSETNX", "m1", "a", "m2", "b"},
        {"RENAME", "h", "h2"},
        {"COPY", "h2", "h3"},
        {"COPY", "v", "v2"},
        {"GETEX", "m1", "EX", "100"},
        {"HDEL", "h3", "b", "c", "d", "n", "f"},  // empties: the key goes
    };
    for (const Args& a : script) {
      const std::string r = run(h, a);
      ASSERT_NE(r[0], '-') << a[0] << ": " << r;
      ASSERT_EQ(h.ks.bytes(), h.ks.recounted_bytes()) << "after " << a[0];
    }
    EXPECT_EQ(run(h, {"EXISTS", "h3"}), ":0\r\n");
    EXPECT_EQ(run(h, {"FLUSHALL"}), "+OK\r\n");
    EXPECT_EQ(h.ks.bytes(), 0);
  });
}

TEST(KvCommands, NewWritesArePropagatedInDeterministicForms) {
  on_runtime([] {
    FakeHost h;
    run(h, {"SET", "f", "1"});
    run(h, {"INCRBYFLOAT", "f", "0.5"});
    run(h, {"MSETNX", "a", "1", "b", "2"});
    run(h, {"HINCRBY", "h", "x", "2"});
    run(h, {"HINCRBYFLOAT", "h", "y", "0.25"});
    run(h, {"HMSET", "h", "z", "1"});
    run(h, {"HSETNX", "h", "w", "1"});
    run(h, {"SADD", "s", "only"});
    run(h, {"SPOP", "s"});
    run(h, {"SADD", "s", "1", "2"});
    run(h, {"SPOP", "s", "5"});
    run(h, {"SETBIT", "bits", "3", "0"});  // creates the key: logged
    run(h, {"SETBIT", "bits", "3", "0"});  // changes nothing: not logged
    run(h, {"SREM", "nosuch", "x"});       // changes nothing: not logged
    const std::vector<Args> want = {
        {"SET", "f", "1"},
        {"SET", "f", "1.5", "KEEPTTL"},
        {"MSET", "a", "1", "b", "2"},
        {"HSET", "h", "x", "2"},
        {"HSET", "h", "y", "0.25"},
        {"HSET", "h", "z", "1"},
        {"HSET", "h", "w", "1"},
        {"SADD", "s", "only"},
        {"SREM", "s", "only"},
        {"SADD", "s", "1", "2"},
        {"DEL", "s"},
        {"SETBIT", "bits", "3", "0"},
    };
    EXPECT_EQ(h.log, want);
    h.log.clear();
    const std::int64_t now = kv::unix_ms();
    run(h, {"GETEX", "a", "PX", "100000"});
    ASSERT_EQ(h.log.size(), 1u);
    EXPECT_EQ(h.log[0][0], "PEXPIREAT");
    EXPECT_GE(std::stoll(h.log[0][2]), now + 100000);
    run(h, {"GETEX", "a", "PERSIST"});
    EXPECT_EQ(h.log.back(), (Args{"PERSIST", "a"}));
  });
}

}  // namespace
