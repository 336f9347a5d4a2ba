// weft-kv: SAVE, BGSAVE and the `save` schedule — writing the keyspace
// as an RDB file (rdb.hpp) while the server keeps serving.
//
// BGSAVE's consistent view: copy-on-first-lock per shard. The snapshot
// begins with every shard locked (in index order, as FLUSHALL locks them):
// the key counts are read and each shard's mutex is armed with a hook
// (ShardMutex::FirstLock), then the shards are released. Whoever locks a
// shard next — a client's command, the expiry cron, or the saver itself —
// first copies the shard's entries (keys, strings, Object::clone() of the
// other types, TTLs) into the snapshot, under that lock, before it changes
// anything. Every change after the snapshot began therefore happens after
// the copy of its shard, and the file holds the keyspace exactly as it was
// at that instant, across shards (an MSET over two shards is in it whole
// or not at all). The saver fiber walks the shards in order: takes and
// drops each lock (copying the shard if nobody has yet), serializes the
// copy outside every lock, writes it out in chunks of 1 MiB, frees it.
//
// Cost: the request path pays the copy of one shard (1/64 of the
// keyspace) once per shard per BGSAVE, on the first command to touch it;
// memory peaks at the copies taken and not yet written — at most one
// copy of the dataset (every shard touched before the saver reached it),
// typically a few shards' worth, plus a 1 MiB output buffer.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyspace.hpp"
#include "weft/weft.hpp"

namespace kv {

/// Redis's `save` schedule: "3600 1 300 100" is {{3600, 1}, {300, 100}}
/// (save when at least `changes` writes happened and `seconds` passed
/// since the last save). Empty: no automatic saves.
using SaveSchedule = std::vector<std::pair<std::int64_t, std::int64_t>>;

/// Parses a `save` value (pairs of non-negative integers, "" for none).
/// @throws std::invalid_argument naming what is wrong.
SaveSchedule parse_save_schedule(std::string_view text);

/// The RDB side of the server: SAVE, BGSAVE, LASTSAVE, the schedule and
/// INFO persistence's rdb_* fields. Thread- and fiber-safe.
class RdbSaver {
 public:
  /// The file is `dir / dbfilename`; `schedule` drives cron().
  RdbSaver(Keyspace& ks, std::filesystem::path dir, std::string dbfilename, SaveSchedule schedule);
  ~RdbSaver();
  RdbSaver(const RdbSaver&) = delete;
  RdbSaver& operator=(const RdbSaver&) = delete;

  /// The file's path.
  const std::filesystem::path& path() const noexcept { return path_; }

  /// SAVE: writes the file with every shard locked (the server waits, as
  /// Redis's SAVE blocks it). `used_mem` goes into the used-mem aux field.
  /// Returns false (nothing replaced) when a BGSAVE runs or on an I/O
  /// error (logged on stderr). @throws weft::Cancelled.
  bool save(std::int64_t used_mem);

  /// The scope BGSAVE's fiber runs in (the server's, from its start).
  void attach(weft::Scope* scope) noexcept { scope_.store(scope, std::memory_order_release); }

  /// BGSAVE: starts the background save on a fiber of the attached scope.
  /// Returns false when one runs already or no scope is attached.
  /// @throws std::bad_alloc.
  bool start_background(std::int64_t used_mem);

  /// CONFIG SET save "": no more automatic saves (nor the save at shutdown).
  void stop_schedule() noexcept { schedule_on_.store(false, std::memory_order_relaxed); }
  /// Whether the schedule is on (given at start and not stopped).
  bool schedule_on() const noexcept {
    return !schedule_.empty() && schedule_on_.load(std::memory_order_relaxed);
  }

  /// BGSAVE SCHEDULE while one runs: the cron starts another after it.
  void schedule() noexcept { scheduled_.store(true, std::memory_order_relaxed); }

  /// True while a BGSAVE runs.
  bool in_progress() const noexcept { return job_.load(std::memory_order_acquire) == Job::bgsave; }

  /// Who holds the consistent view: one background job at a time, as
  /// Redis runs one child process at a time (BGSAVE, BGREWRITEAOF).
  enum class Job { none, bgsave, aof_rewrite };
  /// True while any background job holds the view (Redis's
  /// hasActiveChildProcess).
  bool busy() const noexcept { return job_.load(std::memory_order_acquire) != Job::none; }
  /// Claims the view for `job` (not Job::none); false if another holds it.
  bool claim(Job job) noexcept;
  /// Releases the view claimed by claim() (wakes wait_idle()).
  void release() noexcept;

  /// The consistent view (see the file comment), walked on the calling
  /// fiber, which must hold the view (claim()): runs `at_instant` with
  /// every shard locked (the snapshot's instant: record what must agree
  /// with it there), then calls `entry(key, value, object, expire_at)`
  /// for every key of the keyspace as it was at that instant (expired keys
  /// left out; `object` null for a string), shard by shard, outside every
  /// lock. Sleeps `rdb-key-save-delay` microseconds per key when set (a
  /// testing aid, as Redis's). @throws what the callbacks throw;
  /// std::bad_alloc if a client's copy of a shard ran out of memory;
  /// weft::Cancelled. The hooks are disarmed and the copies freed on
  /// every exit.
  void walk_view(const std::function<void()>& at_instant,
                 const std::function<void(std::string_view key, std::string_view value,
                                          const Object* object, std::int64_t expire_at)>& entry);

  /// `rdb-key-save-delay`: microseconds to sleep per key written by a
  /// background save or rewrite (0: none). Setting 0 ends a sleep under
  /// way within 10 ms (walk_view sleeps in slices): tests hold a save in
  /// progress with a long delay and end it this way.
  void set_key_save_delay(std::int64_t us) noexcept {
    key_save_delay_us_.store(us, std::memory_order_relaxed);
  }

  /// Counts `n` changes (Redis's server.dirty).
  void note_changes(std::uint64_t n) noexcept { dirty_.fetch_add(n, std::memory_order_relaxed); }

  /// LASTSAVE: Unix seconds of the last successful save (the start-up
  /// time until then, as Redis's).
  std::int64_t last_save_s() const noexcept { return last_save_s_.load(std::memory_order_relaxed); }

  /// The schedule: starts a BGSAVE when a rule is due or one was
  /// scheduled (Redis's serverCron: after a failed BGSAVE, at most every
  /// 5 s). Call about every 100 ms.
  void cron(std::int64_t now_ms, std::int64_t used_mem);

  /// Waits for a running background job (BGSAVE or BGREWRITEAOF) to end
  /// (tests and shutdown).
  void wait_idle();

  /// Appends INFO persistence's rdb_* lines (Redis 7.0.15's names, in its
  /// order, those weft-kv has).
  void info(std::string& s) const;

  /// Records what the start-up load did (rdb_last_load_keys_loaded/_expired).
  void loaded(std::uint64_t keys, std::uint64_t expired) noexcept {
    load_keys_.store(keys, std::memory_order_relaxed);
    load_expired_.store(expired, std::memory_order_relaxed);
  }

 private:
  struct Copy {
    std::string key, value;
    std::unique_ptr<Object> object;
    std::int64_t expire_at;
  };
  struct Slot final : ShardMutex::FirstLock {
    RdbSaver* owner = nullptr;
    std::size_t index = 0;
    std::vector<Copy> copy;  // guarded by the shard's lock, then the saver's alone
    bool failed = false;     // the copy ran out of memory
    void on_first_lock() noexcept override;
  };

  void background(std::int64_t used_mem);
  void finish(bool ok, std::int64_t started_ms);

  Keyspace& ks_;
  const std::filesystem::path dir_, path_;
  const SaveSchedule schedule_;
  std::unique_ptr<Slot[]> slots_;
  /// True while the armed hooks belong to a BGSAVE still running: a hook
  /// left armed by an abandoned one copies nothing. Release/acquire with
  /// the start of the next BGSAVE.
  std::atomic<bool> copying_{false};
  std::atomic<weft::Scope*> scope_{nullptr};  // release/acquire: attach() and its readers
  std::atomic<bool> scheduled_{false};
  std::atomic<bool> schedule_on_{true};
  // The job holding the view; release/acquire: claim()/release() and
  // in_progress()/busy() (the statistics are stored before release()).
  std::atomic<Job> job_{Job::none};
  weft::Event idle_;                                // set while no job holds the view
  std::atomic<std::int64_t> key_save_delay_us_{0};  // relaxed: a testing knob
  std::atomic<std::uint64_t> dirty_{0};
  std::atomic<std::int64_t> last_save_s_;
  std::atomic<std::int64_t> last_try_ms_{0};
  std::atomic<std::int64_t> bgsave_start_ms_{-1};
  std::atomic<std::int64_t> last_bgsave_s_{-1};  // duration of the last BGSAVE
  std::atomic<bool> last_ok_{true};
  std::atomic<std::uint64_t> saves_{0};
  std::atomic<std::uint64_t> load_keys_{0}, load_expired_{0};
};

}  // namespace kv
