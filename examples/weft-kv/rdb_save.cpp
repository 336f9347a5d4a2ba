// weft-kv: SAVE, BGSAVE and the save schedule; see rdb_save.hpp.
#include "rdb_save.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "rdb.hpp"
#include "weft/fs.hpp"

namespace kv {

SaveSchedule parse_save_schedule(std::string_view text) {
  SaveSchedule out;
  std::vector<std::int64_t> nums;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    std::int64_t v = 0;
    const std::size_t start = i;
    for (; i < text.size() && text[i] != ' '; ++i) {
      if (text[i] < '0' || text[i] > '9' || v > (INT64_MAX - 9) / 10)
        throw std::invalid_argument("save: '" + std::string(text) +
                                    "' is not pairs of seconds and changes");
      v = v * 10 + (text[i] - '0');
    }
    if (i == start) break;
    nums.push_back(v);
  }
  if (nums.size() % 2 != 0)
    throw std::invalid_argument("save: '" + std::string(text) +
                                "' is not pairs of seconds and changes");
  for (std::size_t k = 0; k < nums.size(); k += 2) out.emplace_back(nums[k], nums[k + 1]);
  return out;
}

namespace {

// Every shard locked, in index order (FLUSHALL's order: no deadlock with
// multi-key commands), until destruction. @throws weft::Cancelled while
// waiting (what was taken is released).
class AllShards {
 public:
  explicit AllShards(Keyspace& ks) : ks_(ks) {
    try {
      for (; locked_ < Keyspace::kShards; ++locked_) ks_.shard(locked_).mu.lock();
    } catch (...) {
      release();
      throw;
    }
  }
  ~AllShards() { release(); }
  AllShards(const AllShards&) = delete;
  AllShards& operator=(const AllShards&) = delete;

 private:
  void release() noexcept {
    while (locked_ != 0) ks_.shard(--locked_).mu.unlock();
  }
  Keyspace& ks_;
  std::size_t locked_ = 0;
};

constexpr std::size_t kChunk = std::size_t{1} << 20;
constexpr std::int64_t kRetryDelayMs = 5000;  // Redis's CONFIG_BGSAVE_RETRY_DELAY

// Writes an RDB file the way Redis's rdbSave does: a temporary file in the
// same directory, fsynced, renamed over the target, then the directory
// fsynced so that the rename survives a crash. `produce(write)` calls
// write(bytes) for each chunk. On failure the temporary file is removed
// and the target is untouched.
template <class Produce>
void write_durably(const std::filesystem::path& dir, const std::filesystem::path& target,
                   Produce&& produce) {
  static std::atomic<unsigned> serial{0};
  const std::filesystem::path tmp =
      dir / ("temp-" + std::to_string(::getpid()) + "-" +
             std::to_string(serial.fetch_add(1, std::memory_order_relaxed)) + ".rdb");
  try {
    weft::fs::File f = weft::fs::File::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    produce([&](std::string_view bytes) { f.write_all(bytes); });
    f.fsync();
    f.close();
    weft::fs::rename(tmp, target);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  weft::fs::File d = weft::fs::File::open(dir, O_RDONLY | O_DIRECTORY);
  d.fsync();
}

}  // namespace

RdbSaver::RdbSaver(Keyspace& ks, std::filesystem::path dir, std::string dbfilename,
                   SaveSchedule schedule)
    : ks_(ks),
      dir_(std::move(dir)),
      path_(dir_ / dbfilename),
      schedule_(std::move(schedule)),
      slots_(std::make_unique<Slot[]>(Keyspace::kShards)),
      idle_(true),
      last_save_s_(unix_ms() / 1000) {
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
    slots_[i].owner = this;
    slots_[i].index = i;
  }
}

RdbSaver::~RdbSaver() {
  // The hooks point into slots_: disarm any a BGSAVE left (the server
  // destroys this after its fibers ended, so nothing locks meanwhile).
  for (std::size_t i = 0; i < Keyspace::kShards; ++i) ks_.shard(i).mu.arm(nullptr);
}

void RdbSaver::Slot::on_first_lock() noexcept {
  // Acquire: pairs with the release store in background() that armed us.
  if (!owner->copying_.load(std::memory_order_acquire)) return;
  const std::int64_t now = unix_ms();
  try {
    const Table& t = owner->ks_.shard(index).table();
    copy.reserve(t.size());
    t.for_each([&](const Entry& e) {
      if (e.expire_at >= 0 && e.expire_at <= now) return;  // expired: not saved
      copy.push_back(Copy{e.key, e.value, e.object ? e.object->clone() : nullptr, e.expire_at});
    });
  } catch (const std::bad_alloc&) {
    std::vector<Copy>().swap(copy);
    failed = true;
  }
}

bool RdbSaver::save(std::int64_t used_mem) {
  if (in_progress()) return false;
  const std::int64_t started = unix_ms();
  AllShards all(ks_);
  const std::uint64_t dirty = dirty_.load(std::memory_order_relaxed);
  try {
    write_durably(dir_, path_, [&](auto&& write) {
      RdbWriter w;
      w.header(started, used_mem, static_cast<std::uint64_t>(ks_.keys()),
               static_cast<std::uint64_t>(ks_.expires()));
      const std::int64_t now = unix_ms();
      for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
        ks_.shard(i).table().for_each([&](const Entry& e) {
          if (e.expire_at >= 0 && e.expire_at <= now) return;
          w.entry(e.key, e.value, e.object.get(), e.expire_at);
          if (w.pending() >= kChunk) write(w.take());
        });
      }
      w.finish();
      write(w.take());
    });
  } catch (const weft::Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: RDB: SAVE to '%s' failed: %s\n", path_.c_str(), e.what());
    return false;
  }
  dirty_.fetch_sub(dirty, std::memory_order_relaxed);
  last_save_s_.store(unix_ms() / 1000, std::memory_order_relaxed);
  saves_.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "weft-kv: RDB: DB saved on disk\n");
  return true;
}

bool RdbSaver::claim(Job job) noexcept {
  Job expected = Job::none;
  // acq_rel: pairs with the release store in release().
  if (!job_.compare_exchange_strong(expected, job, std::memory_order_acq_rel)) return false;
  idle_.reset();
  return true;
}

void RdbSaver::release() noexcept {
  job_.store(Job::none, std::memory_order_release);
  idle_.set();
}

bool RdbSaver::start_background(std::int64_t used_mem) {
  weft::Scope* scope = scope_.load(std::memory_order_acquire);
  if (scope == nullptr) return false;
  if (!claim(Job::bgsave)) return false;
  last_try_ms_.store(unix_ms(), std::memory_order_relaxed);
  try {
    weft::FiberOptions o;
    o.name = "bgsave";
    scope->spawn(o, [this, used_mem] { background(used_mem); });
  } catch (...) {
    release();
    throw;
  }
  return true;
}

void RdbSaver::walk_view(const std::function<void()>& at_instant,
                         const std::function<void(std::string_view, std::string_view, const Object*,
                                                  std::int64_t)>& entry) {
  {
    // The instant of the snapshot: every shard held; arm each one's hook.
    AllShards all(ks_);
    at_instant();
    for (std::size_t i = 0; i < Keyspace::kShards; ++i) {
      std::vector<Copy>().swap(slots_[i].copy);
      slots_[i].failed = false;
      ks_.shard(i).mu.arm(&slots_[i]);
    }
    // Release: pairs with the acquire load in on_first_lock().
    copying_.store(true, std::memory_order_release);
  }
  std::size_t next = 0;  // shards the walk has taken its copy of
  const auto stop = [&]() noexcept {
    copying_.store(false, std::memory_order_release);
    // Free what the remaining shards' hooks copied: each lock either
    // fires its hook (a no-op now) or finds the copy to drop.
    weft::ShieldGuard shield;
    for (; next < Keyspace::kShards; ++next) {
      Shard& sh = ks_.shard(next);
      std::lock_guard lk(sh.mu);
      std::vector<Copy>().swap(slots_[next].copy);
    }
  };
  try {
    // Sleep owed to rdb-key-save-delay, paid in steps of at least 1 ms
    // (the timers' resolution).
    std::int64_t owed_us = 0;
    for (; next < Keyspace::kShards; ++next) {
      Shard& sh = ks_.shard(next);
      sh.mu.lock();  // copies the shard unless a client's command already did
      sh.mu.unlock();
      Slot& slot = slots_[next];
      if (slot.failed) throw std::bad_alloc();
      for (const Copy& c : slot.copy) {
        entry(c.key, c.value, c.object.get(), c.expire_at);
        owed_us += std::max<std::int64_t>(key_save_delay_us_.load(std::memory_order_relaxed), 0);
        // Slept in slices of at most 10 ms, so that setting the delay to 0
        // ends a long one at once: a test can hold a save in progress for
        // as long as it needs (a delay of minutes), then let it finish.
        while (owed_us >= 1000) {
          if (key_save_delay_us_.load(std::memory_order_relaxed) <= 0) {
            owed_us = 0;
            break;
          }
          const std::int64_t slice = std::min<std::int64_t>(owed_us, 10'000);
          weft::this_fiber::sleep_for(std::chrono::microseconds(slice));
          owed_us -= slice;
        }
      }
      std::vector<Copy>().swap(slot.copy);
      weft::this_fiber::yield();
    }
  } catch (...) {
    stop();
    throw;
  }
  stop();
}

void RdbSaver::background(std::int64_t used_mem) {
  const std::int64_t started = unix_ms();
  bgsave_start_ms_.store(started, std::memory_order_relaxed);
  std::fprintf(stderr, "weft-kv: RDB: background saving started\n");
  std::uint64_t dirty = 0;
  bool ok = false;
  try {
    write_durably(dir_, path_, [&](auto&& write) {
      RdbWriter w;
      walk_view(
          [&] {
            dirty = dirty_.load(std::memory_order_relaxed);
            w.header(started, used_mem, static_cast<std::uint64_t>(ks_.keys()),
                     static_cast<std::uint64_t>(ks_.expires()));
          },
          [&](std::string_view key, std::string_view value, const Object* object,
              std::int64_t expire_at) {
            w.entry(key, value, object, expire_at);
            if (w.pending() >= kChunk) write(w.take());
          });
      w.finish();
      write(w.take());
    });
    ok = true;
  } catch (const weft::Cancelled&) {
    finish(false, started);
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-kv: RDB: background save to '%s' failed: %s\n", path_.c_str(),
                 e.what());
  }
  if (ok) {
    dirty_.fetch_sub(dirty, std::memory_order_relaxed);
    last_save_s_.store(unix_ms() / 1000, std::memory_order_relaxed);
    saves_.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "weft-kv: RDB: background saving terminated with success\n");
  }
  finish(ok, started);
}

void RdbSaver::finish(bool ok, std::int64_t started_ms) {
  last_ok_.store(ok, std::memory_order_relaxed);
  last_bgsave_s_.store((unix_ms() - started_ms + 500) / 1000, std::memory_order_relaxed);
  bgsave_start_ms_.store(-1, std::memory_order_relaxed);
  // The statistics above are published before the flag and the event
  // that waiters and INFO read (release() pairs with in_progress()).
  release();
}

void RdbSaver::wait_idle() {
  idle_.wait();
}

void RdbSaver::cron(std::int64_t now_ms, std::int64_t used_mem) {
  if (busy()) return;
  if (scheduled_.exchange(false, std::memory_order_relaxed)) {
    start_background(used_mem);
    return;
  }
  if (!schedule_on()) return;
  const std::uint64_t dirty = dirty_.load(std::memory_order_relaxed);
  const std::int64_t since = now_ms / 1000 - last_save_s_.load(std::memory_order_relaxed);
  const bool retry_ok = last_ok_.load(std::memory_order_relaxed) ||
                        now_ms - last_try_ms_.load(std::memory_order_relaxed) > kRetryDelayMs;
  for (const auto& [seconds, changes] : schedule_) {
    if (dirty >= static_cast<std::uint64_t>(changes) && since > seconds && retry_ok) {
      std::fprintf(stderr, "weft-kv: RDB: %lld changes in %lld seconds. Saving...\n",
                   static_cast<long long>(changes), static_cast<long long>(seconds));
      start_background(used_mem);
      return;
    }
  }
}

void RdbSaver::info(std::string& s) const {
  const auto line = [&](const char* name, long long v) {
    s += name;
    s += ':';
    s += std::to_string(v);
    s += "\r\n";
  };
  const std::int64_t start = bgsave_start_ms_.load(std::memory_order_relaxed);
  line("rdb_changes_since_last_save",
       static_cast<long long>(dirty_.load(std::memory_order_relaxed)));
  line("rdb_bgsave_in_progress", in_progress() ? 1 : 0);
  line("rdb_last_save_time", last_save_s());
  s += "rdb_last_bgsave_status:";
  s += last_ok_.load(std::memory_order_relaxed) ? "ok" : "err";
  s += "\r\n";
  line("rdb_last_bgsave_time_sec", last_bgsave_s_.load(std::memory_order_relaxed));
  line("rdb_current_bgsave_time_sec", start < 0 ? -1 : (unix_ms() - start) / 1000);
  line("rdb_saves", static_cast<long long>(saves_.load(std::memory_order_relaxed)));
  line("rdb_last_load_keys_expired",
       static_cast<long long>(load_expired_.load(std::memory_order_relaxed)));
  line("rdb_last_load_keys_loaded",
       static_cast<long long>(load_keys_.load(std::memory_order_relaxed)));
}

}  // namespace kv
