// weft-kv: the append-only file (AOF), written through weft::fs.
//
// Follows Redis's AOF (src/aof.c): every write command is appended as a
// RESP multibulk array; the file is replayed on start. Ordering: callers
// append while holding the lock of the keyspace shard they changed, so the
// file order agrees with the order in which changes to one key were applied.
// Durability: append() only buffers; a connection calls wait_durable()
// before it sends the reply, so with `always` an acknowledged write has
// reached fdatasync. Concurrent waiters share one write + fdatasync (group
// commit).
//
// Typical use by the server:
//
//   auto aof = kv::Aof::open(dir, kv::FsyncPolicy::everysec);
//   aof->replay([&](auto argv) { execute(argv); });        // once, at start
//   ...
//   seq = aof->append(argv);          // per write command, under its shard lock
//   aof->wait_durable(max_seq);       // per pipelined batch, before the replies
//   ...
//   aof->flush_and_sync();            // at shutdown
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "histogram.hpp"
#include "weft/fs.hpp"

namespace kv {

/// The AOF's name in its directory: one file, Redis 6's layout (see README
/// "AOF rewrite" for why not Redis 7's appendonlydir/).
inline constexpr const char* kAofFileName = "appendonly.aof";

/// When the AOF is fsynced (Redis: appendfsync).
enum class FsyncPolicy {
  always,    ///< before every reply to a write (group commit)
  everysec,  ///< written before the reply, fdatasync once per second
  no,        ///< written before the reply, fsync left to the kernel
};

/// Outcome of Aof::replay().
struct ReplayResult {
  std::uint64_t commands = 0;  ///< records applied
  /// Bytes cut off the end of the file: a torn last record, or an
  /// incomplete MULTI/EXEC transaction (0 if none).
  std::uint64_t truncated_bytes = 0;
};

/// Thrown by Aof::replay() when the file is corrupt before its tail: a
/// malformed record with at least one well-formed record somewhere after it,
/// so that cutting the file there would throw acknowledged writes away.
/// Redis refuses to start in this case too ("Bad file format reading the
/// append only file"); the file is left untouched for an operator to repair
/// or move away.
class AofFormatError : public std::runtime_error {
 public:
  AofFormatError(std::uint64_t offset, const std::string& what)
      : std::runtime_error(what), offset_(offset) {}
  /// Byte offset in the file of the first byte of the malformed record.
  std::uint64_t offset() const noexcept { return offset_; }

 private:
  std::uint64_t offset_;
};

/// Thrown by Aof::wait_durable() for a record that a failed write
/// discarded: it is not in the file and never will be; code() is the
/// failure's errno (ENOSPC, EIO, ...).
class AofWriteError : public std::system_error {
 public:
  using std::system_error::system_error;
};

/// The AOF's health, for INFO persistence and the MISCONF check.
struct AofStatus {
  bool ok = true;              ///< false while a write or fdatasync keeps failing
  int error = 0;               ///< the errno of the current failure (ENOSPC, EIO, ...)
  std::uint64_t errors = 0;    ///< failed writes and fdatasyncs since open()
  std::uint64_t writes = 0;    ///< successful writes of buffered records (group-commit rounds)
  std::uint64_t buffered = 0;  ///< bytes appended and not yet written
};

/// An append-only file. Thread- and fiber-safe: append() and wait_durable()
/// may be called from any fiber of the runtime concurrently (and from plain
/// threads); replay() must run alone, before the first append().
///
/// Failures (ENOSPC, EIO, EDQUOT on write or fdatasync) are logged on
/// stderr at once and reported by status() until they end. A group-commit
/// round that fails cuts the file back to the end of the last good round
/// (after a failed fdatasync too: the kernel may have dropped those pages)
/// and discards its batch: wait_durable() for those records throws
/// AofWriteError, lost() says which they are, and the on_failure()
/// callback lets the server roll its memory back to the file (with
/// discard_unwritten() and reread()). A background fiber retries every 100
/// ms (buffered records, or a 4 KiB probe that is cut back); the first
/// round that succeeds (with fdatasync, if an fdatasync had failed) ends
/// the failure. everysec's background fdatasync failing discards nothing
/// (its records were written, and answered); it is retried the same way.
/// If the file cannot even be cut back, the failure is permanent: nothing
/// is retried and every waiter gets the error.
class Aof {
 public:
  /// Opens (creating it when missing, mode 0644 before the umask)
  /// `dir / "appendonly.aof"` and fsyncs `dir` so that a new file's name is
  /// durable. `dir` must exist. It starts the background fiber that
  /// fdatasyncs once per second while the policy is FsyncPolicy::everysec
  /// (it ends in
  /// flush_and_sync(), in the destructor, or when the scope of the fiber
  /// that called open() is cancelled, e.g. at runtime shutdown); with any
  /// policy that fiber also retries after a failure. Must be
  /// called on a fiber of a weft::Runtime.
  /// @throws std::system_error whose code() is the errno (ENOENT for a
  /// missing `dir`, EISDIR if appendonly.aof is a directory, EACCES, ...)
  /// and whose what() names the path; weft::Cancelled.
  static std::unique_ptr<Aof> open(const std::filesystem::path& dir, FsyncPolicy policy);

  /// Stops the background fiber and, unless a failure happened, writes and
  /// fdatasyncs what is still buffered (like flush_and_sync(); a failure is
  /// reported on stderr, never thrown). Not interrupted by cancellation.
  /// Destroy the Aof on a fiber, or on a thread while its runtime still
  /// runs (the background fiber must be able to end).
  virtual ~Aof() = default;

  /// Reads the file from the start and calls `apply` with the arguments of
  /// each complete record, in order; the views are valid only during the
  /// call. Reads in chunks: memory is bounded by the largest record, not
  /// the file.
  ///
  /// A torn tail (a crash mid write: the file ends inside a record, or a
  /// malformed record after which no well-formed one follows, such as a
  /// zero-filled block) is cut off with ftruncate + fdatasync and a warning
  /// on stderr ("weft-kv: AOF: truncated N bytes of a torn last record at
  /// offset X"); it never throws for that. As in Redis, a MULTI record
  /// without its EXEC at the end of the file is cut off the same way (a
  /// transaction is replayed all or nothing): records of a transaction are
  /// passed to `apply` only once its EXEC has been read.
  ///
  /// @throws AofFormatError for a malformed record before the tail (the
  /// file is left untouched); std::system_error on an I/O error;
  /// std::logic_error if called twice or after append(); whatever `apply`
  /// throws (replay stops there; nothing is truncated); weft::Cancelled.
  virtual ReplayResult replay(
      const std::function<void(std::span<const std::string_view> argv)>& apply) = 0;

  /// Buffers one command as a RESP array. Never does I/O and never parks:
  /// it holds a short internal lock (not a weft::Mutex) for the copy, so it
  /// may be called with a keyspace shard lock held. Records reach the file
  /// in the order of their sequence numbers.
  /// Returns its sequence number (1, 2, 3, ... in append order), for
  /// wait_durable().
  /// @throws std::invalid_argument for an empty argv, more than 1 Mi
  /// arguments or an argument over 512 MiB (ParseLimits' defaults: replay
  /// would reject such a record); std::bad_alloc.
  virtual std::uint64_t append(std::span<const std::string_view> argv) = 0;

  /// Returns once record `seq` and all before it are written (and, with
  /// FsyncPolicy::always, fdatasync'ed). Group commit: if no other fiber is
  /// writing, the caller becomes the writer and writes everything buffered
  /// in one write (plus one fdatasync); otherwise it parks until that
  /// writer is done and checks again. Parks the fiber, not the worker.
  /// seq 0 returns at once.
  /// Cancellation: a fiber cancelled while it waits for another writer
  /// throws weft::Cancelled (its record stays buffered and is written by the
  /// next writer); a fiber that is writing finishes the write first (it is
  /// shielded), then throws weft::Cancelled at its next blocking call.
  /// While the AOF is failing it parks until the recovery (see the class
  /// comment). @throws AofWriteError if record `seq` was discarded by a
  /// failed write; std::system_error after a permanent failure;
  /// std::invalid_argument if `seq` was never returned by append();
  /// weft::Cancelled.
  virtual void wait_durable(std::uint64_t seq) = 0;

  /// True if record `seq` was discarded after a failed write (it is not in
  /// the file and never will be). Thread-safe.
  virtual bool lost(std::uint64_t seq) const = 0;

  /// Sets what to call (on the fiber that led the round, after it, outside
  /// every lock) when a group-commit round fails. Call before append().
  virtual void on_failure(std::function<void()> callback) = 0;

  /// Waits for any running round and discards every record appended and
  /// not written (they become lost()). For the server's roll-back, called
  /// with every keyspace shard locked so that nothing is appended.
  virtual void discard_unwritten() = 0;

  /// Reads the file's records again from the start, as replay() does but
  /// without repairing anything, to rebuild memory from what the file
  /// holds. Call after discard_unwritten(), with appends stopped.
  /// @throws std::system_error, AofFormatError, whatever `apply` throws.
  virtual ReplayResult reread(
      const std::function<void(std::span<const std::string_view> argv)>& apply) = 0;

  /// Writes everything buffered and fdatasyncs it, whatever the policy;
  /// stops the background fiber (later records are still written by
  /// wait_durable(), and synced by the next flush_and_sync()). For shutdown.
  /// Idempotent: with nothing new since the last call it does no I/O. Not
  /// interrupted by cancellation. While failing it makes one more attempt.
  /// @throws std::system_error if that write or fdatasync fails.
  virtual void flush_and_sync() = 0;

  /// Changes the fsync policy from the next wait_durable() on (CONFIG SET
  /// appendfsync). Records written before are fdatasync'ed by the next
  /// round that syncs. Thread-safe.
  virtual void set_policy(FsyncPolicy policy) noexcept = 0;

  /// Bytes in the file: its size after replay() plus what has been written
  /// since (buffered records not included). A snapshot; thread-safe.
  virtual std::uint64_t size() const = 0;

  // --- rewrite (aof_rewrite.hpp): the new file is the snapshot, then the
  // records appended since its instant (the tail), then what follows.

  /// Starts keeping a copy of every record appended from now on (the
  /// tail of the new file). Call with every keyspace shard locked: the
  /// snapshot's instant, so that the snapshot holds exactly the effects of
  /// the records before it. Never parks. @throws std::bad_alloc.
  virtual void begin_rewrite() = 0;
  /// Moves the tail kept so far into `out` (appended), so that the
  /// rewriter writes most of it while appends go on. Never parks.
  virtual void drain_rewrite(std::string& out) = 0;
  /// Ends the rewrite: with the writer role held (no round runs meanwhile)
  /// it appends the rest of the tail to `tmp` (the new file, opened with
  /// read and append and already holding the snapshot and the drained
  /// tail), fdatasyncs it, renames `tmp_path` over the AOF, fsyncs the
  /// directory (only then is the rename durable), and from then on appends
  /// to it. Records buffered for the old file and not yet written are
  /// dropped from it: the new file has them (the snapshot or the tail), and
  /// their waiters are answered. Returns false, leaving the AOF as it was
  /// and `tmp` to the caller to remove, if a write failed since
  /// begin_rewrite() (memory may have been rolled back after the snapshot
  /// was taken). @throws std::system_error for a failed write, fdatasync
  /// or rename (the AOF goes on as before, its pending records kept).
  virtual bool finish_rewrite(weft::fs::File tmp, const std::filesystem::path& tmp_path) = 0;
  /// Stops keeping the tail (a failed or abandoned rewrite). Never parks.
  virtual void abort_rewrite() noexcept = 0;

  /// Health and counters (a snapshot); thread-safe.
  virtual AofStatus status() const = 0;
  /// status().ok, as one atomic load (for a check on every write).
  virtual bool healthy() const noexcept = 0;
  /// How long each successful fdatasync of the file took since open()
  /// (the group-commit rounds' and everysec's; not replay's repair).
  /// Thread-safe.
  virtual LatencyHistogram::Snapshot fsync_latency() const noexcept = 0;
};

}  // namespace kv
