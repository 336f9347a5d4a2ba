// A kv::Host without a server, for the unit tests of weft-kv's command
// layer (commands_test.cpp, types_test.cpp): the keyspace, the options and
// settings, and a log of what was propagated.
#pragma once

#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "command.hpp"

namespace kv_test {

/// One command's arguments, owned.
using Args = std::vector<std::string>;

/// A Host whose propagate() records each command's arguments in `log`
/// (guarded by `mu`: blocked clients are served from other fibers), whose
/// info() is "# Fake\r\n", whose request_shutdown() sets `shutdown` and
/// which refuses writes with MISCONF while `disk_error` is set.
class FakeHost final : public kv::Host {
 public:
  kv::Keyspace& keyspace() noexcept override { return ks; }
  void propagate(kv::Context&, std::span<const std::string_view> argv) override {
    std::lock_guard lk(mu);
    log.emplace_back(argv.begin(), argv.end());
  }
  bool loading() const noexcept override { return false; }
  const kv::Options& options() const noexcept override { return opts; }
  kv::Settings& settings() noexcept override { return settings_; }
  std::int64_t used_memory() const noexcept override { return ks.bytes(); }
  bool writes_allowed() const noexcept override { return !disk_error; }
  std::string write_refusal() const override {
    return "MISCONF Errors writing to the AOF file: No space left on device";
  }
  std::string info(std::string_view) override { return "# Fake\r\n"; }
  std::string client_list(const kv::Client*) override { return ""; }
  void reset_stats() noexcept override {}
  void request_shutdown() noexcept override { shutdown = true; }
  kv::Evictor* evictor() noexcept override { return evictor_; }

  /// What was propagated since the last call, in order.
  std::vector<Args> take_log() {
    std::lock_guard lk(mu);
    return std::exchange(log, {});
  }

  kv::Keyspace ks;
  kv::Options opts;
  kv::Settings settings_{opts};
  std::mutex mu;
  std::vector<Args> log;
  bool shutdown = false;
  bool disk_error = false;          ///< writes refused (a failing AOF), with write_refusal()
  kv::Evictor* evictor_ = nullptr;  ///< eviction under maxmemory; null: none (noeviction)
};

/// Runs one command as `client` (nullptr: none) and returns its reply.
inline std::string run(FakeHost& host, const Args& args, kv::Client* client = nullptr) {
  std::vector<std::string_view> argv(args.begin(), args.end());
  std::string out;
  kv::Context ctx{host, client, argv, out, kv::unix_ms()};
  kv::execute(ctx);
  return out;
}

}  // namespace kv_test
