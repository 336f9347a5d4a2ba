// weft-kv: the append-only file (aof.hpp).
//
// Group commit. The server appends while it holds a keyspace shard lock, so
// append() must not park and must not do I/O: it encodes the record into
// one shared buffer under a std::mutex held for the copy only (a parking
// weft::Mutex could switch fibers with a shard lock held, and I/O there would
// serialise every shard behind the disk). Sequence numbers are handed out
// under the same lock, so the buffer - and hence the file - is in sequence
// order.
//
// Durability is asked for later, once per pipelined batch, by
// wait_durable(seq). Rejected designs: (1) every waiter writes and syncs its
// own records: one fdatasync per connection batch, the disk's latency times
// the number of connections; (2) a dedicated writer fiber that waiters wake:
// an extra hand-off (two context switches) on every commit, and one more
// fiber to stop. Chosen: leader/follower, as in database group commit (and
// LevelDB's writer queue). A waiter that finds nobody writing takes the
// writer role, swaps the whole buffer out, writes it with one write_all and
// (always) one fdatasync, publishes how far the file is now durable and
// wakes everybody who waited during its round; those whose record is
// covered return, and one of the rest becomes the next writer with
// everything appended meanwhile. Under load each fdatasync thus covers the
// records of every connection that arrived during the previous one. A new
// leader yields once before it takes the buffer, so that the followers the
// last round woke (runnable on its worker) append their next records into
// this round rather than the next: in weft-bench-aof that raised the
// records per fdatasync from ~25 to ~40 with 50 fibers and from ~390 to
// ~660 with 1000.
//
// Waiting. The commit state lives under a second std::mutex (state_mu_),
// never held across I/O or parking. A follower parks on the current
// round's weft::Event (a manual-reset event, one per round, shared_ptr so
// that a late follower still finds it set): no lost wake-up, since it takes
// the event under state_mu_ while the round is still marked running, and
// set() is sticky. The leader's own bookkeeping after its I/O cannot throw
// or park (std::mutex, Event::set), so a cancellation can never leave the
// writer role taken. Its I/O runs shielded: a write interrupted half way
// would leave a torn record in the middle of the file.
//
// Failures (aof.hpp) are not sticky. A round that fails cuts the file back
// to where the last good round ended (Redis does the same after a short
// write) and discards its batch: those records join lost_, their waiters
// get AofWriteError, and on_failure_ lets the server roll its memory back
// to the file. Nothing is answered before its record is in the file, so
// discarding never takes back an acknowledged write. Other waiters park on
// recovered_ instead of leading rounds that would fail again; the
// background fiber leads a retry round every 100 ms (the records buffered
// since, or a probe it cuts back), and the first that succeeds ends the
// failure. Redis instead keeps its unwritten aof_buf, answers the clients
// and retries (flushAppendOnlyFile), or exits under always.
//
// Records are encoded by Reply::command and read back by the connections'
// RESP parser in its strict grammar (Grammar::records: arrays of bulk
// strings, every CRLF checked), fed a chunk at a time, so the file and the
// wire share one encoder and one parser. The parser tells complete /
// incomplete (with the least number of bytes the record needs, so a
// record that cannot fit in the file is known torn at once) / malformed.
// Torn tails are told from corruption by one rule: cutting the file at the
// start of a bad record is allowed only if no well-formed record starts
// anywhere after it (Redis cuts only for an early end of file and refuses
// to start on any format error; we also cut the malformed tails a crash
// leaves on some file systems, a zero-filled last block for instance).
// Known limit, shared with Redis: a length field corrupted in the middle
// of the file into a value that runs past its end makes everything after
// it look like one torn record, and it is cut. (Checking for well-formed
// records inside a torn record would instead refuse to start after an
// ordinary crash whenever the torn value itself holds RESP text.)
#include "aof.hpp"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "resp.hpp"
#include "weft/cancel.hpp"
#include "weft/fiber.hpp"
#include "weft/fs.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"

namespace kv {
namespace {

namespace wfs = weft::fs;

// Replay reads at least this much at a time.
constexpr std::size_t kChunk = std::size_t{256} << 10;
// The writer keeps its buffer's capacity between rounds up to this size.
constexpr std::size_t kKeepCapacity = std::size_t{4} << 20;

// Record limits: the server's request limits, so that every record the
// server can log is accepted back.
const ParseLimits kLimits{};

// The probe a retry writes when nothing is buffered, then cuts back: a
// PING record of 4 KiB (a page: on a full file system a few bytes may
// still fit where a record would not).
const std::string& probe_record() {
  static const std::string* probe = [] {
    auto* s = new std::string;
    const std::string pad(4000, 'p');
    const std::string_view argv[] = {"PING", pad};
    Reply::command(*s, argv);
    return s;
  }();
  return *probe;
}

// --- reading records ---------------------------------------------------------

// Reads records from the file through the RESP parser (Grammar::records),
// a chunk at a time: memory is bounded by the largest record.
class RecordReader {
 public:
  RecordReader(wfs::File& f, std::uint64_t from, std::uint64_t size)
      : f_(f), parser_(kLimits, Grammar::records), fed_(from), size_(size) {}

  enum class Status { complete, end, torn, malformed };

  // The next record: complete (argv holds it until the next call), end
  // (the file ends after the last record), torn (the file ends inside a
  // record) or malformed (error() says why). start() is where it begins.
  Status next(std::vector<std::string_view>& argv) {
    for (;;) {
      start_ = fed_ - parser_.buffered();
      const ParseStatus st = parser_.next(argv);
      if (st == ParseStatus::complete) return Status::complete;
      if (st == ParseStatus::error) return Status::malformed;
      if (start_ == size_) return Status::end;
      // A record that cannot fit in the file is torn: no need to read on.
      if (fed_ >= size_ || start_ + parser_.needed() > size_) return Status::torn;
      const std::span<char> room = parser_.prepare(kChunk);
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(room.size(), size_ - fed_));
      const std::size_t n = f_.pread(room.data(), want, fed_);
      if (n == 0) {
        size_ = fed_;  // the file shrank meanwhile
        continue;
      }
      parser_.commit(n);
      fed_ += n;
    }
  }
  std::uint64_t start() const noexcept { return start_; }
  const std::string& error() const noexcept { return parser_.error(); }

 private:
  wfs::File& f_;
  RequestParser parser_;
  std::uint64_t fed_;   // file offset of the next byte to read
  std::uint64_t size_;  // bytes in the file
  std::uint64_t start_ = 0;
};

bool is_command(std::span<const std::string_view> argv, std::string_view name) {
  if (argv.size() != 1 || argv[0].size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = argv[0][i];
    if ((c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c) != name[i]) return false;
  }
  return true;
}

// True if a complete, well-formed record starts at some offset in
// [from, size): a candidate at every '*'.
bool record_follows(wfs::File& f, std::uint64_t from, std::uint64_t size) {
  std::string chunk(kChunk, '\0');
  std::vector<std::string_view> scratch;
  for (std::uint64_t p = from; p < size;) {
    const std::size_t n = f.pread(
        chunk.data(), static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - p)), p);
    if (n == 0) return false;
    for (std::size_t i = 0; i < n; ++i) {
      const void* star = std::memchr(chunk.data() + i, '*', n - i);
      if (star == nullptr) break;
      i = static_cast<std::size_t>(static_cast<const char*>(star) - chunk.data());
      RecordReader candidate(f, p + i, size);
      if (candidate.next(scratch) == RecordReader::Status::complete) return true;
    }
    p += n;
  }
  return false;
}

// --- the AOF -------------------------------------------------------------------

class AofImpl final : public Aof {
 public:
  AofImpl(std::filesystem::path path, FsyncPolicy policy, wfs::File file, std::uint64_t size)
      : path_(std::move(path)),
        policy_(policy),
        file_(std::make_shared<wfs::File>(std::move(file))),
        size_(size) {}

  ~AofImpl() override {
    try {
      weft::ShieldGuard shield;
      stop_syncer();
      bool failed;
      std::string why;
      {
        std::lock_guard g(state_mu_);
        failed = failure_.has_value();
        if (failed) why = failure_message_locked();
      }
      if (!failed)
        flush_and_sync();
      else
        std::fprintf(stderr, "%s (closed while failing)\n", why.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft-kv: AOF: flush at close failed: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "weft-kv: AOF: flush at close failed\n");
    }
  }

  void start_syncer() {
    syncer_ = weft::spawn(weft::FiberOptions{.name = "weft-kv aof fsync and retry"},
                          [this] { sync_loop(); });
  }

  ReplayResult replay(const std::function<void(std::span<const std::string_view>)>& apply) override;
  std::uint64_t append(std::span<const std::string_view> argv) override;
  void wait_durable(std::uint64_t seq) override;
  void flush_and_sync() override;
  std::uint64_t size() const override { return size_.load(std::memory_order_relaxed); }
  void set_policy(FsyncPolicy policy) noexcept override {
    policy_.store(policy, std::memory_order_relaxed);
  }
  AofStatus status() const override;
  bool lost(std::uint64_t seq) const override;
  void discard_unwritten() override;
  ReplayResult reread(const std::function<void(std::span<const std::string_view>)>& apply) override;
  void on_failure(std::function<void()> callback) override { on_failure_ = std::move(callback); }
  void begin_rewrite() override;
  void drain_rewrite(std::string& out) override;
  bool finish_rewrite(wfs::File tmp, const std::filesystem::path& tmp_path) override;
  void abort_rewrite() noexcept override;
  bool healthy() const noexcept override { return healthy_.load(std::memory_order_relaxed); }
  LatencyHistogram::Snapshot fsync_latency() const noexcept override {
    return fsync_latency_.snapshot();
  }

 private:
  // Makes records <= seq written (and fdatasync'ed if `sync`), leading a
  // round or following the current one. While failing it waits for the
  // recovery, unless `retry`: then it leads (or follows) one round and
  // throws the failure if that round did not end it.
  void commit(std::uint64_t seq, bool sync, bool retry = false);
  // One round as the writer (the caller holds the role). Returns the last
  // sequence number the round covered. Never throws: I/O errors become the
  // sticky failure; std::bad_alloc while recording one ends the process
  // (noexcept), since the role could not be handed back consistently.
  std::uint64_t write_round(bool sync, bool probe, bool& failed) noexcept;
  ReplayResult read_records(const std::function<void(std::span<const std::string_view>)>& apply,
                            std::uint64_t end, bool repair);
  bool lost_locked(std::uint64_t seq) const noexcept;
  // Takes the writer role (waiting for a running round); shielded caller.
  void take_role();
  // Records a failure (the first of a run is logged at once); `in_sync`:
  // an fdatasync failed, so only a successful fdatasync ends it;
  // `permanent`: the file could not be cut back, nothing can be retried.
  void fail(std::error_code code, std::string what, bool in_sync, bool permanent = false);
  [[noreturn]] void throw_failure_locked() const;
  std::string failure_message_locked() const;
  bool covered_locked(std::uint64_t seq, bool sync) const noexcept {
    return (sync ? synced_seq_ : written_seq_).load(std::memory_order_relaxed) >= seq;
  }
  void sync_loop() noexcept;
  void stop_syncer();

  // Immutable after open().
  const std::filesystem::path path_;
  // Relaxed: CONFIG SET's new policy applies to the rounds that start
  // after it; nothing else is ordered by it.
  std::atomic<FsyncPolicy> policy_;
  // The file (thread-safe; O_APPEND, so writes never need a position).
  // Replaced by finish_rewrite(); users take a reference with file(), so
  // that the old one stays open until the last of them is done (the
  // background fdatasync runs without the writer role).
  mutable std::mutex file_mu_;
  std::shared_ptr<wfs::File> file_;  // guarded by file_mu_
  std::shared_ptr<wfs::File> file() const {
    std::lock_guard g(file_mu_);
    return file_;
  }

  // --- the append side: guarded by buf_mu_, held for a copy only ----------
  mutable std::mutex buf_mu_;
  std::string buf_;             // encoded records after the last round's
  std::uint64_t last_seq_ = 0;  // sequence number of the last record appended
  bool replay_allowed_ = true;  // until the first append() or replay()
  bool rewriting_ = false;      // begin_rewrite() .. finish/abort: keep the tail
  std::string rewrite_buf_;     // the tail kept since begin_rewrite()
  // A round failed since begin_rewrite(): finish_rewrite() gives up.
  // Relaxed: set in fail() and read by finish_rewrite() with the writer
  // role held, which the failed round released (state_mu_ orders them).
  std::atomic<bool> rewrite_failed_{false};

  // --- the commit side: guarded by state_mu_ (never held across I/O) ------
  mutable std::mutex state_mu_;
  // Non-null while a leader holds the writer role: the event its round
  // sets when it ends (followers park on it).
  std::shared_ptr<weft::Event> round_;
  // The current failure: set by a failed write or fdatasync, cleared by
  // the round that succeeds again (recovery). While set, waiters park on
  // recovered_ (set at recovery) instead of leading rounds; the background
  // fiber retries every 100 ms.
  std::optional<std::pair<std::error_code, std::string>> failure_;
  bool failure_in_sync_ = false;
  bool failure_permanent_ = false;  // the file could not be cut back: no retry
  std::shared_ptr<weft::Event> recovered_;
  // Sequence ranges [first, last] of records discarded after failed rounds:
  // they are not in the file and never will be (their waiters get
  // AofWriteError). Few: one or two per failure.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> lost_;
  // Called after a failed round, outside every lock (the server rolls its
  // memory back to the file). Set before the first append.
  std::function<void()> on_failure_;
  std::uint64_t retries_ = 0;  // failed retries in the current failure
  // Every failed write or fdatasync (INFO); relaxed, a statistic.
  std::atomic<std::uint64_t> errors_{0};
  // Successful writes of buffered records, and the time of each successful
  // fdatasync (/metrics); relaxed, statistics.
  std::atomic<std::uint64_t> writes_{0};
  LatencyHistogram fsync_latency_;
  // fdatasync of the file, timed into fsync_latency_ when it succeeds.
  // @throws as weft::fs::File::fdatasync.
  void timed_fdatasync();
  // !failure_, readable without state_mu_. Relaxed: a hint for refusing
  // new writes; waiters synchronise through state_mu_.
  std::atomic<bool> healthy_{true};
  // Records <= written_seq_ are in the file; <= synced_seq_ also fdatasync'ed
  // (synced_seq_ <= written_seq_). Written under state_mu_ (release); read
  // without it by the fast path of wait_durable (acquire: pairs with that
  // store, so a fast-path return happens after the round that covered it).
  std::atomic<std::uint64_t> written_seq_{0};
  std::atomic<std::uint64_t> synced_seq_{0};

  // Owned by whoever holds the writer role: the batch being written, kept
  // between rounds for its capacity.
  std::string write_buf_;
  // Bytes in the file. Written by the leader and replay(); relaxed: a
  // statistic, ordered by nothing.
  std::atomic<std::uint64_t> size_;

  // --- everysec ----------------------------------------------------------
  weft::Event stop_;  // set to stop the syncer fiber
  std::atomic<bool> syncer_stopped_{false};
  weft::JoinHandle<void> syncer_;  // joined by the first stop_syncer()
};

// --- replay ----------------------------------------------------------------

ReplayResult AofImpl::replay(const std::function<void(std::span<const std::string_view>)>& apply) {
  {
    std::lock_guard g(buf_mu_);
    if (!replay_allowed_) {
      throw std::logic_error("weft-kv: Aof::replay: called twice or after append()");
    }
    replay_allowed_ = false;
  }
  ReplayResult result = read_records(apply, file()->size(), /*repair=*/true);
  return result;
}

ReplayResult AofImpl::reread(const std::function<void(std::span<const std::string_view>)>& apply) {
  // No round runs meanwhile (the caller holds every shard lock, so nothing
  // is appended, and discard_unwritten() has just taken and released the
  // writer role); the file ends at a record boundary.
  return read_records(apply, size_.load(std::memory_order_relaxed), /*repair=*/false);
}

ReplayResult AofImpl::read_records(
    const std::function<void(std::span<const std::string_view>)>& apply, std::uint64_t end,
    bool repair) {
  const std::shared_ptr<wfs::File> f = file();
  RecordReader reader(*f, 0, end);
  ReplayResult result;
  std::vector<std::string_view> argv;

  // An open MULTI: its records wait here (copied) until EXEC.
  bool in_tx = false;
  std::uint64_t tx_start = 0;
  std::vector<std::vector<std::string>> tx;
  std::vector<std::string_view> tx_argv;

  std::uint64_t pos = 0;  // end of the last complete record
  std::string malformed;  // why, for a malformed tail
  for (;;) {
    const RecordReader::Status st = reader.next(argv);
    pos = reader.start();
    if (st == RecordReader::Status::end || st == RecordReader::Status::torn) break;
    if (st == RecordReader::Status::malformed) {
      // A torn tail only if nothing well-formed follows.
      if (record_follows(*f, pos + 1, end)) {
        throw AofFormatError(pos, "weft-kv: AOF '" + path_.native() +
                                      "': malformed record at offset " + std::to_string(pos) +
                                      " (" + reader.error() +
                                      ") followed by well-formed ones: the file is corrupt; "
                                      "repair it (as redis-check-aof does) or move it away");
      }
      malformed = " (malformed: " + reader.error() + ")";
      break;
    }
    const std::span<const std::string_view> rec(argv);
    if (in_tx) {
      tx.emplace_back(rec.begin(), rec.end());
      if (is_command(rec, "EXEC")) {
        for (const auto& cmd : tx) {
          tx_argv.assign(cmd.begin(), cmd.end());
          apply(tx_argv);
          ++result.commands;
        }
        tx.clear();
        in_tx = false;
      }
    } else if (is_command(rec, "MULTI")) {
      in_tx = true;
      tx_start = pos;
      tx.emplace_back(rec.begin(), rec.end());
    } else {
      apply(rec);
      ++result.commands;
    }
  }

  // pos is the end of the last complete record: the end of the file, or
  // the start of a torn one. A transaction still open goes too.
  const std::uint64_t keep = in_tx ? tx_start : pos;
  if (!repair) return result;
  if (keep < end) {
    f->truncate(keep);
    f->fdatasync();
    result.truncated_bytes = end - keep;
    if (in_tx) {
      std::fprintf(stderr,
                   "weft-kv: AOF: truncated %llu bytes of an incomplete MULTI/EXEC transaction at "
                   "offset %llu%s\n",
                   static_cast<unsigned long long>(result.truncated_bytes),
                   static_cast<unsigned long long>(keep), malformed.c_str());
    } else {
      std::fprintf(stderr,
                   "weft-kv: AOF: truncated %llu bytes of a torn last record at offset %llu%s\n",
                   static_cast<unsigned long long>(result.truncated_bytes),
                   static_cast<unsigned long long>(keep), malformed.c_str());
    }
  }
  size_.store(keep, std::memory_order_relaxed);
  return result;
}

// --- append and group commit -------------------------------------------------

std::uint64_t AofImpl::append(std::span<const std::string_view> argv) {
  if (argv.empty()) throw std::invalid_argument("weft-kv: Aof::append: empty command");
  if (argv.size() > kLimits.max_multibulk_len) {
    throw std::invalid_argument("weft-kv: Aof::append: too many arguments");
  }
  for (std::string_view a : argv) {
    if (a.size() > kLimits.max_bulk_len) {
      throw std::invalid_argument("weft-kv: Aof::append: argument too long");
    }
  }
  std::lock_guard g(buf_mu_);
  replay_allowed_ = false;
  const std::size_t at = buf_.size();
  Reply::command(buf_, argv);  // may throw bad_alloc: no sequence number used
  if (rewriting_) {
    try {
      rewrite_buf_.append(buf_, at);
    } catch (...) {
      buf_.resize(at);  // in neither file, or in both
      throw;
    }
  }
  return ++last_seq_;
}

void AofImpl::wait_durable(std::uint64_t seq) {
  const bool sync = policy_.load(std::memory_order_relaxed) == FsyncPolicy::always;
  // acquire: pairs with the release store of the round that covered seq.
  if ((sync ? synced_seq_ : written_seq_).load(std::memory_order_acquire) >= seq) return;
  commit(seq, sync);
}

void AofImpl::flush_and_sync() {
  weft::ShieldGuard shield;
  stop_syncer();
  std::uint64_t last;
  {
    std::lock_guard g(buf_mu_);
    last = last_seq_;
  }
  commit(last, /*sync=*/true, /*retry=*/true);
}

void AofImpl::timed_fdatasync() {
  const std::shared_ptr<wfs::File> f = file();
  const auto start = std::chrono::steady_clock::now();
  f->fdatasync();
  fsync_latency_.observe_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
}

AofStatus AofImpl::status() const {
  AofStatus st;
  {
    std::lock_guard g(state_mu_);
    st.ok = !failure_.has_value();
    if (failure_) st.error = failure_->first.value();
  }
  st.errors = errors_.load(std::memory_order_relaxed);
  st.writes = writes_.load(std::memory_order_relaxed);
  std::lock_guard g(buf_mu_);
  st.buffered = buf_.size();
  return st;
}

void AofImpl::commit(std::uint64_t seq, bool sync, bool retry) {
  for (bool led = false;;) {
    std::shared_ptr<weft::Event> round;
    {
      std::lock_guard g(state_mu_);
      if (!retry && lost_locked(seq)) {
        throw AofWriteError(
            failure_ ? failure_->first : std::make_error_code(std::errc::io_error),
            (failure_ ? failure_->second : std::string("weft-kv: AOF: a write failed")) +
                " (record " + std::to_string(seq) + " was discarded)");
      }
      if (covered_locked(seq, sync) && !(retry && failure_)) return;
      if (failure_ && (failure_permanent_ || (retry && led))) throw_failure_locked();
      round = round_;                                        // non-null while a round runs
      if (!round && failure_ && !retry) round = recovered_;  // wait for the recovery
    }
    if (round) {
      round->wait();  // cancellable: nothing is held
      continue;
    }
    // Try to lead. The shield comes first: once this fiber holds the role
    // it must see its round through (constructing it may throw bad_alloc,
    // with nothing taken yet).
    weft::ShieldGuard shield;
    auto next = std::make_shared<weft::Event>();
    {
      std::lock_guard g(state_mu_);
      if (round_) continue;  // another fiber took the role meanwhile
      round_ = std::move(next);
    }
    led = true;
    bool failed = false;
    const std::uint64_t upto = write_round(sync, retry, failed);
    if (failed && on_failure_) {
      try {
        on_failure_();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "weft-kv: AOF: after a failed write: %s\n", e.what());
      }
    }
    if (upto < seq) {
      throw std::invalid_argument("weft-kv: Aof::wait_durable: sequence number " +
                                  std::to_string(seq) + " was never returned by append()");
    }
  }
}

std::uint64_t AofImpl::write_round(bool sync, bool probe, bool& failed) noexcept {
  // Let the fibers that are runnable here now (typically the followers the
  // last round woke, on their way to append their next record) run first:
  // they join this round instead of waiting for the next. Costs nothing
  // when nobody else is runnable (yield returns at once).
  weft::this_fiber::yield();
  // The role is held: finish_rewrite() cannot replace the file meanwhile.
  const std::shared_ptr<wfs::File> f = file();
  std::uint64_t upto;
  {
    std::lock_guard g(buf_mu_);
    write_buf_.swap(buf_);
    upto = last_seq_;
  }
  std::optional<std::pair<std::error_code, std::string>> error;
  const std::uint64_t before = size_.load(std::memory_order_relaxed);
  const char* step = "write to";
  bool in_sync = false;
  bool probed = false;
  try {
    if (!write_buf_.empty()) {
      f->write_all(write_buf_);
      writes_.fetch_add(1, std::memory_order_relaxed);
    } else if (probe) {
      // A retry with nothing to write: a record's worth of bytes (a PING
      // record, harmless on replay) tells whether the disk takes writes
      // again; it is cut back below.
      probed = true;
      f->write_all(probe_record());
    }
    if (sync &&
        (probed || !write_buf_.empty() || synced_seq_.load(std::memory_order_relaxed) < upto)) {
      step = "fdatasync of";
      in_sync = true;
      timed_fdatasync();
    }
    if (probed) {
      probed = false;
      f->truncate(before);
    }
  } catch (const std::system_error& e) {
    error.emplace(e.code(),
                  std::string("weft-kv: AOF: ") + step + " '" + path_.native() + "' failed");
  } catch (const std::exception& e) {
    // weft::Cancelled forced into the shield at shutdown, std::bad_alloc.
    error.emplace(std::make_error_code(std::errc::io_error),
                  std::string("weft-kv: AOF: ") + step + " '" + path_.native() + "' interrupted (" +
                      e.what() + ")");
  } catch (...) {
    error.emplace(std::make_error_code(std::errc::io_error),
                  std::string("weft-kv: AOF: ") + step + " '" + path_.native() + "' interrupted");
  }
  if (error) {
    // Cut what this round may have written (a prefix of the batch, or all
    // of it when the fdatasync failed: after a failed fdatasync the kernel
    // may have dropped those pages, so they are not trusted), so the file
    // ends where the last good round left it. The batch is discarded: its
    // commands were never answered, and the server rolls their effects back
    // (on_failure_), so memory and file agree.
    bool cut = true;
    if (!write_buf_.empty() || probed) {
      try {
        f->truncate(before);
      } catch (...) {
        cut = false;  // the file may end inside a record: nothing is retried
      }
    }
    const std::uint64_t first = written_seq_.load(std::memory_order_relaxed) + 1;
    if (upto >= first) {
      std::lock_guard g(state_mu_);
      lost_.emplace_back(first, upto);
    }
    failed = true;
    fail(error->first, std::move(error->second), in_sync, !cut);
  } else {
    size_.fetch_add(write_buf_.size(), std::memory_order_relaxed);
  }
  // Still the writer: the buffer is ours until the role is released.
  write_buf_.clear();
  if (write_buf_.capacity() > kKeepCapacity) std::string().swap(write_buf_);

  std::shared_ptr<weft::Event> done;
  std::shared_ptr<weft::Event> recovered;
  std::uint64_t retries = 0;
  {
    std::lock_guard g(state_mu_);
    if (!error) {
      // release: pairs with the acquire load in wait_durable's fast path.
      if (upto > written_seq_.load(std::memory_order_relaxed)) {
        written_seq_.store(upto, std::memory_order_release);
      }
      if (sync && upto > synced_seq_.load(std::memory_order_relaxed)) {
        synced_seq_.store(upto, std::memory_order_release);
      }
      // Recovery: everything up to upto is in the file again (and synced,
      // if an fdatasync had failed).
      if (failure_ && !failure_permanent_ && (sync || !failure_in_sync_)) {
        failure_.reset();
        failure_in_sync_ = false;
        healthy_.store(true, std::memory_order_relaxed);
        recovered = std::move(recovered_);
        retries = std::exchange(retries_, 0);
      }
    }
    done = std::move(round_);
  }
  done->set();
  if (recovered) {
    std::fprintf(stderr,
                 "weft-kv: AOF: writing to '%s' works again after %llu failed retries; "
                 "accepting writes\n",
                 path_.c_str(), static_cast<unsigned long long>(retries));
    recovered->set();
  }
  return upto;
}

void AofImpl::fail(std::error_code code, std::string what, bool in_sync, bool permanent) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  rewrite_failed_.store(true, std::memory_order_relaxed);
  bool first = false;
  std::string message;
  {
    std::lock_guard g(state_mu_);
    if (!failure_) {
      first = true;
      failure_.emplace(code, std::move(what));
      recovered_ = std::make_shared<weft::Event>();
      healthy_.store(false, std::memory_order_relaxed);
    } else {
      ++retries_;
    }
    failure_in_sync_ = failure_in_sync_ || in_sync;
    if (permanent && !failure_permanent_) {
      failure_permanent_ = true;
      first = true;
    }
    if (first) message = failure_message_locked();
  }
  if (!first) return;
  if (permanent) {
    std::fprintf(stderr,
                 "%s; the file could not be cut back to its last record, so nothing is "
                 "retried: writes are refused until a restart\n",
                 message.c_str());
  } else {
    std::fprintf(stderr,
                 "%s; writes are refused (MISCONF) until it works again (retried every "
                 "100 ms)\n",
                 message.c_str());
  }
}

bool AofImpl::lost_locked(std::uint64_t seq) const noexcept {
  for (const auto& [first, last] : lost_)
    if (seq >= first && seq <= last) return true;
  return false;
}

bool AofImpl::lost(std::uint64_t seq) const {
  std::lock_guard g(state_mu_);
  return lost_locked(seq);
}

void AofImpl::take_role() {
  for (;;) {
    std::shared_ptr<weft::Event> round;
    {
      std::lock_guard g(state_mu_);
      if (!round_) {
        round_ = std::make_shared<weft::Event>();
        return;
      }
      round = round_;
    }
    round->wait();
  }
}

void AofImpl::discard_unwritten() {
  weft::ShieldGuard shield;
  take_role();
  std::uint64_t first, last;
  {
    std::lock_guard g(buf_mu_);
    std::string().swap(buf_);
    last = last_seq_;
  }
  std::shared_ptr<weft::Event> done, wake;
  {
    std::lock_guard g(state_mu_);
    first = written_seq_.load(std::memory_order_relaxed) + 1;
    if (last >= first) lost_.emplace_back(first, last);
    done = std::move(round_);
    // Waiters parked for the recovery re-check: theirs may be discarded now.
    if (recovered_) {
      wake = std::move(recovered_);
      recovered_ = std::make_shared<weft::Event>();
    }
  }
  done->set();
  if (wake) wake->set();
}

void AofImpl::throw_failure_locked() const {
  throw std::system_error(failure_->first, failure_->second);
}

std::string AofImpl::failure_message_locked() const {
  if (!failure_) return "weft-kv: AOF: no failure";
  return failure_->second + ": " + failure_->first.message();
}

// --- rewrite ---------------------------------------------------------------------

void AofImpl::begin_rewrite() {
  std::lock_guard g(buf_mu_);
  rewrite_buf_.clear();
  rewriting_ = true;
  rewrite_failed_.store(false, std::memory_order_relaxed);
}

void AofImpl::drain_rewrite(std::string& out) {
  std::lock_guard g(buf_mu_);
  out.append(rewrite_buf_);
  rewrite_buf_.clear();
}

void AofImpl::abort_rewrite() noexcept {
  std::lock_guard g(buf_mu_);
  rewriting_ = false;
  std::string().swap(rewrite_buf_);
}

bool AofImpl::finish_rewrite(wfs::File tmp, const std::filesystem::path& tmp_path) {
  // Shielded: once it holds the role it must hand it back (a cancellation
  // at shutdown finishes the switch or leaves the old file whole).
  weft::ShieldGuard shield;
  take_role();
  std::string tail, pending;
  std::uint64_t upto = 0;
  bool switched = false;
  try {
    {
      // From here on appends go to buf_ only; they reach the new file by
      // the first round after the switch.
      std::lock_guard g(buf_mu_);
      tail.swap(rewrite_buf_);
      rewriting_ = false;
      pending.swap(buf_);  // records for the old file: the tail has them
      upto = last_seq_;
    }
    if (!rewrite_failed_.load(std::memory_order_relaxed)) {
      tmp.write_all(tail);
      tmp.fdatasync();
      const std::uint64_t new_size = tmp.size();
      wfs::rename(tmp_path, path_);
      auto next = std::make_shared<wfs::File>(std::move(tmp));
      {
        std::lock_guard g(file_mu_);
        file_.swap(next);
      }
      switched = true;
      size_.store(new_size, std::memory_order_relaxed);
      // The rename is durable only once the directory is: a crash before
      // this fsync may find the old file under the name, so no record of
      // the tail is acknowledged until it returns.
      wfs::File d = wfs::File::open(path_.parent_path(), O_RDONLY | O_DIRECTORY);
      d.fsync();
      d.close();
    }
  } catch (...) {
    if (!switched) {
      // Not replaced: the old file goes on, its pending records first.
      std::lock_guard g(buf_mu_);
      pending.append(buf_);
      buf_.swap(pending);
    }
    // Else renamed, but the directory fsync failed: the new file is the
    // AOF from now on, and the tail's records stay unanswered until the
    // next round covers them (the caller reports the failure).
    std::shared_ptr<weft::Event> done;
    {
      std::lock_guard g(state_mu_);
      done = std::move(round_);
    }
    done->set();
    throw;
  }
  std::shared_ptr<weft::Event> done;
  {
    std::lock_guard g(state_mu_);
    if (switched) {
      // release: pairs with the acquire load in wait_durable's fast path.
      if (upto > written_seq_.load(std::memory_order_relaxed))
        written_seq_.store(upto, std::memory_order_release);
      if (upto > synced_seq_.load(std::memory_order_relaxed))
        synced_seq_.store(upto, std::memory_order_release);
    }
    done = std::move(round_);
  }
  if (!switched) {
    std::lock_guard g(buf_mu_);
    pending.append(buf_);
    buf_.swap(pending);
  }
  done->set();
  return switched;
}

// --- the background fiber: everysec's fdatasync, and retries ------------------

void AofImpl::sync_loop() noexcept {
  // Wakes every 100 ms (Redis retries a failed AOF write from serverCron
  // at its default 10 Hz); everysec's fdatasync runs once a second.
  auto last_sync = std::chrono::steady_clock::now();
  try {
    while (!stop_.wait_for(std::chrono::milliseconds(100))) {
      bool failing, permanent, in_sync;
      {
        std::lock_guard g(state_mu_);
        failing = failure_.has_value();
        permanent = failure_permanent_;
        in_sync = failure_in_sync_;
      }
      if (failing) {
        if (permanent) continue;
        std::uint64_t last;
        {
          std::lock_guard g(buf_mu_);
          last = last_seq_;
        }
        try {
          commit(last, policy_.load(std::memory_order_relaxed) != FsyncPolicy::no || in_sync,
                 /*retry=*/true);
        } catch (const std::system_error&) {
          // Still failing (counted, the batch kept); the next second retries.
        }
        continue;
      }
      if (policy_.load(std::memory_order_relaxed) != FsyncPolicy::everysec ||
          std::chrono::steady_clock::now() - last_sync < std::chrono::seconds(1))
        continue;
      last_sync = std::chrono::steady_clock::now();
      const std::uint64_t target = written_seq_.load(std::memory_order_acquire);
      if (target <= synced_seq_.load(std::memory_order_relaxed)) continue;
      try {
        timed_fdatasync();
      } catch (const std::system_error& e) {
        fail(e.code(), "weft-kv: AOF: fdatasync of '" + path_.native() + "' failed",
             /*in_sync=*/true);
        continue;
      }
      std::lock_guard g(state_mu_);
      if (target > synced_seq_.load(std::memory_order_relaxed)) {
        synced_seq_.store(target, std::memory_order_release);
      }
    }
  } catch (...) {
    // weft::Cancelled: the scope of open()'s caller is cancelled (runtime
    // shutdown). Syncing stops; flush_and_sync() still syncs.
  }
}

void AofImpl::stop_syncer() {
  if (syncer_stopped_.exchange(true, std::memory_order_acq_rel)) return;
  stop_.set();
  if (syncer_.joinable()) {
    weft::ShieldGuard shield;  // it ends promptly once stop_ is set
    syncer_.join();
  }
}

}  // namespace

// --- open ------------------------------------------------------------------------

std::unique_ptr<Aof> Aof::open(const std::filesystem::path& dir, FsyncPolicy policy) {
  const std::filesystem::path path = dir / kAofFileName;
  std::uint64_t size = 0;
  wfs::File file;
  try {
    file = wfs::File::open(
        path, wfs::OpenMode::read | wfs::OpenMode::append | wfs::OpenMode::create, 0644);
    size = file.size();
    // A file created now exists durably only once its directory is synced.
    wfs::File d = wfs::File::open(dir, O_RDONLY | O_DIRECTORY);
    d.fsync();
    d.close();
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "weft-kv: AOF: cannot open '" + path.native() + "'");
  }
  auto aof = std::make_unique<AofImpl>(path, policy, std::move(file), size);
  // Every policy: it also retries after a failure (and CONFIG SET may
  // change the policy to everysec).
  aof->start_syncer();
  return aof;
}

}  // namespace kv
