// weft-kv: BGREWRITEAOF and the automatic rewrite; see aof_rewrite.hpp.
#include "aof_rewrite.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <system_error>
#include <utility>

#include "rdb.hpp"
#include "resp.hpp"
#include "weft/fs.hpp"

namespace kv {
namespace {

namespace wfs = weft::fs;

// Batches: the RDB bytes turned into commands at a time, and the output
// written at a time.
constexpr std::size_t kChunk = std::size_t{1} << 20;
// The tail is drained into the new file while the drained part is at
// least this big; the rest is appended with the writer role held.
constexpr std::size_t kSmallTail = std::size_t{64} << 10;
// Redis's aofRewriteLimited: after this many failures in a row, the
// automatic rewrite waits between tries.
constexpr std::uint64_t kFailuresBeforeDelay = 3;
constexpr std::int64_t kRetryDelayMs = 60'000;

}  // namespace

AofRewriter::AofRewriter(RdbSaver& view, std::filesystem::path dir)
    : view_(view), dir_(std::move(dir)) {}

void AofRewriter::attach(weft::Scope* scope, Aof* aof) noexcept {
  aof_.store(aof, std::memory_order_release);
  scope_.store(scope, std::memory_order_release);
}

AofRewriter::Outcome AofRewriter::request(bool defer) noexcept {
  if (in_progress()) return Outcome::in_progress;
  if (view_.busy() || defer) {
    scheduled_.store(true, std::memory_order_relaxed);
    failures_in_row_.store(0, std::memory_order_relaxed);
    return Outcome::scheduled;
  }
  if (start()) return Outcome::started;
  // Lost a race for the view: to a BGSAVE (scheduled) or another rewrite.
  if (in_progress()) return Outcome::in_progress;
  if (view_.busy()) {
    scheduled_.store(true, std::memory_order_relaxed);
    return Outcome::scheduled;
  }
  return Outcome::failed;
}

bool AofRewriter::start() noexcept {
  weft::Scope* scope = scope_.load(std::memory_order_acquire);
  if (scope == nullptr || !view_.claim(RdbSaver::Job::aof_rewrite)) return false;
  scheduled_.store(false, std::memory_order_relaxed);
  last_try_ms_.store(unix_ms(), std::memory_order_relaxed);
  start_ms_.store(unix_ms(), std::memory_order_relaxed);
  // release: pairs with in_progress().
  running_.store(true, std::memory_order_release);
  try {
    weft::FiberOptions o;
    o.name = "bgrewriteaof";
    scope->spawn(o, [this] { background(); });
  } catch (...) {
    std::fprintf(stderr, "weft-kv: AOF: can't start the background rewrite\n");
    start_ms_.store(-1, std::memory_order_relaxed);
    running_.store(false, std::memory_order_release);
    view_.release();
    return false;
  }
  return true;
}

void AofRewriter::cron(std::int64_t now_ms, std::int64_t percentage, std::int64_t min_size) {
  if (view_.busy()) return;
  if (failures_in_row_.load(std::memory_order_relaxed) >= kFailuresBeforeDelay &&
      now_ms - last_try_ms_.load(std::memory_order_relaxed) < kRetryDelayMs)
    return;
  if (scheduled_.load(std::memory_order_relaxed)) {
    start();
    return;
  }
  Aof* aof = aof_.load(std::memory_order_acquire);
  if (aof == nullptr || percentage <= 0) return;
  const auto size = static_cast<std::int64_t>(aof->size());
  if (size <= min_size) return;
  const std::int64_t base = std::max<std::int64_t>(static_cast<std::int64_t>(base_size()), 1);
  const std::int64_t growth = size * 100 / base - 100;
  if (growth < percentage) return;
  std::fprintf(stderr, "weft-kv: AOF: starting automatic rewriting of AOF on %lld%% growth\n",
               static_cast<long long>(growth));
  start();
}

void AofRewriter::background() {
  const std::int64_t started = unix_ms();
  Aof* aof = aof_.load(std::memory_order_acquire);
  std::fprintf(stderr, "weft-kv: AOF: background append only file rewriting started\n");
  const std::filesystem::path tmp =
      dir_ / ("temp-rewriteaof-bg-" + std::to_string(::getpid()) + ".aof");
  const std::filesystem::path target = dir_ / kAofFileName;
  bool ok = false;
  std::uint64_t new_size = 0;
  try {
    wfs::File f = wfs::File::open(tmp,
                                  wfs::OpenMode::read | wfs::OpenMode::append |
                                      wfs::OpenMode::create | wfs::OpenMode::truncate,
                                  0644);
    std::string out;
    RdbWriter batch;
    bool batch_empty = true;
    // Turns the batch's keys into the commands that rebuild them.
    const auto flush_batch = [&] {
      if (batch_empty) return;
      batch.finish();
      const std::string bytes = batch.take();
      batch = RdbWriter();
      batch_empty = true;
      rdb_load(bytes, unix_ms(), [&](std::span<const std::string_view> argv) {
        Reply::command(out, argv);
        if (out.size() >= kChunk) {
          f.write_all(out);
          out.clear();
        }
      });
    };
    view_.walk_view(
        [&] {
          if (aof != nullptr) aof->begin_rewrite();
        },
        [&](std::string_view key, std::string_view value, const Object* object,
            std::int64_t expire_at) {
          if (batch_empty) {
            batch.header(started, 0, 0, 0);
            batch_empty = false;
          }
          batch.entry(key, value, object, expire_at);
          if (batch.pending() >= kChunk) flush_batch();
        });
    flush_batch();
    f.write_all(out);
    out.clear();
    if (aof != nullptr) {
      // Most of the tail now, while appends go on; the rest at the switch.
      for (;;) {
        aof->drain_rewrite(out);
        const bool small = out.size() < kSmallTail;
        f.write_all(out);
        out.clear();
        if (small) break;
      }
      ok = aof->finish_rewrite(std::move(f), tmp);
      if (!ok) {
        std::fprintf(stderr,
                     "weft-kv: AOF: background rewrite abandoned: a write to the AOF failed "
                     "meanwhile\n");
      }
      new_size = aof->size();
    } else {
      f.fdatasync();
      new_size = f.size();
      f.close();
      wfs::rename(tmp, target);
      wfs::File d = wfs::File::open(dir_, O_RDONLY | O_DIRECTORY);
      d.fsync();
      ok = true;
    }
  } catch (const weft::Cancelled&) {
    if (aof != nullptr) aof->abort_rewrite();
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    finish(false, started, 0);
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: AOF: background rewrite failed: %s\n", e.what());
  }
  if (!ok) {
    if (aof != nullptr) aof->abort_rewrite();
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
  } else {
    std::fprintf(stderr, "weft-kv: AOF: background AOF rewrite finished successfully\n");
  }
  finish(ok, started, new_size);
}

void AofRewriter::finish(bool ok, std::int64_t started_ms, std::uint64_t new_size) noexcept {
  last_ok_.store(ok, std::memory_order_relaxed);
  last_time_s_.store((unix_ms() - started_ms + 500) / 1000, std::memory_order_relaxed);
  start_ms_.store(-1, std::memory_order_relaxed);
  if (ok) {
    rewrites_.fetch_add(1, std::memory_order_relaxed);
    failures_in_row_.store(0, std::memory_order_relaxed);
    base_size_.store(new_size, std::memory_order_relaxed);
  } else {
    failures_in_row_.fetch_add(1, std::memory_order_relaxed);
  }
  // The statistics are published before the flag and the view's event
  // that waiters read (release: pairs with in_progress() and busy()).
  running_.store(false, std::memory_order_release);
  view_.release();
}

void AofRewriter::info(std::string& s) const {
  const auto line = [&](const char* name, long long v) {
    s += name;
    s += ':';
    s += std::to_string(v);
    s += "\r\n";
  };
  const std::int64_t start = start_ms_.load(std::memory_order_relaxed);
  line("aof_rewrite_in_progress", in_progress() ? 1 : 0);
  line("aof_rewrite_scheduled", scheduled_.load(std::memory_order_relaxed) ? 1 : 0);
  line("aof_last_rewrite_time_sec", last_time_s_.load(std::memory_order_relaxed));
  line("aof_current_rewrite_time_sec", start < 0 ? -1 : (unix_ms() - start) / 1000);
  s += "aof_last_bgrewrite_status:";
  s += last_ok_.load(std::memory_order_relaxed) ? "ok" : "err";
  s += "\r\n";
  line("aof_rewrites", static_cast<long long>(rewrites_.load(std::memory_order_relaxed)));
  line("aof_rewrites_consecutive_failures",
       static_cast<long long>(failures_in_row_.load(std::memory_order_relaxed)));
}

}  // namespace kv
