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
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace kv {

/// When the AOF is fsynced (Redis: appendfsync).
enum class FsyncPolicy {
  always,    ///< before every reply to a write (group commit)
  everysec,  ///< written before the reply, fdatasync once per second
  no,        ///< written before the reply, fsync left to the kernel
};

/// Outcome of Aof::replay().
struct ReplayResult {
  std::uint64_t commands = 0;         ///< records applied
  std::uint64_t truncated_bytes = 0;  ///< bytes of a torn last record cut off (0 if none)
};

/// An append-only file. Thread- and fiber-safe: append() and wait_durable()
/// may be called from any fiber of the runtime concurrently.
class Aof {
 public:
  /// Opens (creating it when missing) `dir / "appendonly.aof"`. Must be
  /// called on a fiber. Throws std::system_error when the file cannot be
  /// opened.
  static std::unique_ptr<Aof> open(const std::filesystem::path& dir, FsyncPolicy policy);
  virtual ~Aof() = default;

  /// Reads the file from the start and calls `apply` with the arguments of
  /// each complete record, in order. A torn or malformed tail (a crash mid
  /// write) is truncated away with a warning on stderr; it never throws for
  /// that. Throws std::system_error on an I/O error. Call once, before any
  /// append().
  virtual ReplayResult replay(
      const std::function<void(std::span<const std::string_view> argv)>& apply) = 0;

  /// Buffers one command as a RESP array. Never does I/O; does not park.
  /// Returns its sequence number, for wait_durable().
  virtual std::uint64_t append(std::span<const std::string_view> argv) = 0;

  /// Returns once record `seq` and all before it are written (and, with
  /// FsyncPolicy::always, fdatasync'ed). Parks the fiber meanwhile. Throws
  /// std::system_error when a write or fsync fails (the server then
  /// refuses further writes, as Redis does).
  virtual void wait_durable(std::uint64_t seq) = 0;

  /// Writes everything buffered and fsyncs; for shutdown. Idempotent.
  virtual void flush_and_sync() = 0;

  /// Bytes in the file (after replay and the writes so far).
  virtual std::uint64_t size() const = 0;
};

}  // namespace kv
