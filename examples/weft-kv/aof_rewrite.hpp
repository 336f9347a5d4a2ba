// weft-kv: BGREWRITEAOF and the automatic AOF rewrite (Redis's
// rewriteAppendOnlyFileBackground and serverCron's auto-aof-rewrite-*).
//
// The rewrite compacts the AOF while the server keeps serving. A fiber
// walks the keyspace through BGSAVE's consistent view (RdbSaver::walk_view,
// copy-on-first-lock per shard): at the view's instant, with every shard
// locked, the AOF starts keeping a copy of every record appended from then
// on (Aof::begin_rewrite); the walk writes, into a temporary file in the
// same directory, the commands that rebuild each key as it was at that
// instant; then the records kept since (the tail) are appended; then, with
// the AOF's writer role held so that no round writes meanwhile, the last
// of the tail is appended, the file fdatasynced, renamed over
// appendonly.aof and the directory fsynced (Aof::finish_rewrite), and the
// AOF goes on appending to it. Writes keep going to the old file (and are
// acknowledged from it) until the switch, so a crash at any point leaves
// either the old file whole or the new one whole.
//
// The commands that rebuild a key come from the RDB code: the walk feeds
// each batch of about 1 MiB of keys to RdbWriter, and rdb_load turns the
// batch back into SET, RPUSH, SADD, ZADD, HSET and PEXPIREAT — the one
// place that knows each type's contents and its command form (it costs a
// second pass over the bytes: see README "AOF rewrite").
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "aof.hpp"
#include "rdb_save.hpp"
#include "weft/weft.hpp"

namespace kv {

/// BGREWRITEAOF, its schedule and the automatic rewrite, with INFO
/// persistence's aof_rewrite_* fields. Thread- and fiber-safe.
class AofRewriter {
 public:
  /// `view`: the server's RDB saver, whose consistent view the rewrite
  /// borrows (one background job at a time). The file is
  /// `dir / "appendonly.aof"`.
  AofRewriter(RdbSaver& view, std::filesystem::path dir);
  AofRewriter(const AofRewriter&) = delete;
  AofRewriter& operator=(const AofRewriter&) = delete;

  /// The scope the rewrite's fiber runs in and the AOF it rewrites (null
  /// with appendonly no: BGREWRITEAOF then writes a fresh appendonly.aof
  /// from the keyspace, with no tail). Call before the first request().
  void attach(weft::Scope* scope, Aof* aof) noexcept;

  /// What BGREWRITEAOF did.
  enum class Outcome {
    started,      ///< "Background append only file rewriting started"
    in_progress,  ///< a rewrite runs already
    scheduled,    ///< a BGSAVE holds the view: the cron starts it after
    failed,       ///< no scope attached, or the fiber could not start
  };
  /// BGREWRITEAOF. With `defer` (the command runs inside EXEC, Redis's
  /// server.in_exec), a rewrite that could start is scheduled instead
  /// (Outcome::scheduled), as Redis's bgrewriteaofCommand does.
  /// @throws nothing (a failure to start is Outcome::failed).
  Outcome request(bool defer = false) noexcept;

  /// Starts a scheduled rewrite once the view is free, and the automatic
  /// rewrite: when `percentage` > 0 and the AOF is larger than `min_size`
  /// bytes and has grown by `percentage` % since the last rewrite (or the
  /// start). After 3 failures in a row it waits a minute between tries
  /// (Redis's aofRewriteLimited, simplified). Call about every 100 ms.
  void cron(std::int64_t now_ms, std::int64_t percentage, std::int64_t min_size);

  /// True while a rewrite runs.
  bool in_progress() const noexcept { return running_.load(std::memory_order_acquire); }

  /// The AOF's size after the start-up load or the last rewrite (the
  /// automatic rewrite's base; INFO aof_base_size).
  std::uint64_t base_size() const noexcept { return base_size_.load(std::memory_order_relaxed); }
  void set_base_size(std::uint64_t bytes) noexcept {
    base_size_.store(bytes, std::memory_order_relaxed);
  }

  /// Appends INFO persistence's aof_rewrite_in_progress ..
  /// aof_rewrites_consecutive_failures lines (weft-kv's order of them).
  void info(std::string& s) const;

 private:
  bool start() noexcept;
  void background();
  void finish(bool ok, std::int64_t started_ms, std::uint64_t new_size) noexcept;

  RdbSaver& view_;
  const std::filesystem::path dir_;
  std::atomic<weft::Scope*> scope_{nullptr};  // release/acquire: attach() and start()
  std::atomic<Aof*> aof_{nullptr};            // release/acquire: attach() and start()
  // A rewrite runs: set by start() with the view claimed, cleared by
  // finish() after the statistics (release: pairs with in_progress()).
  std::atomic<bool> running_{false};
  // The rest are statistics and flags read on their own: relaxed.
  std::atomic<bool> scheduled_{false};
  std::atomic<std::int64_t> start_ms_{-1};
  std::atomic<std::int64_t> last_time_s_{-1};
  std::atomic<bool> last_ok_{true};
  std::atomic<std::uint64_t> rewrites_{0};
  std::atomic<std::uint64_t> failures_in_row_{0};
  std::atomic<std::int64_t> last_try_ms_{0};
  std::atomic<std::uint64_t> base_size_{0};
};

}  // namespace kv
