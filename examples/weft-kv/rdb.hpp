// weft-kv: Redis's RDB snapshot format (version 10, as redis-server 7.0.15
// writes it): the writer and the loader. Format: Redis's src/rdb.c,
// src/rdb.h, src/listpack.c, src/ziplist.c, src/intset.c, src/lzf_d.c.
//
// Writing uses the plain encodings that every Redis since 2.x loads
// (RDB_TYPE_STRING with Redis's integer encodings, RDB_TYPE_LIST, _SET,
// _ZSET_2, _HASH); redis-server 7.0.15 converts them to its compact
// encodings on load. Loading reads what 7.0.15 writes (listpack, intset,
// quicklist 2, LZF-compressed and integer-encoded strings, aux fields,
// RESIZEDB, EXPIRETIME_MS) and the older ziplist forms (Redis 3.2 - 6.2),
// and turns every key into the write commands that rebuild it (SET,
// RPUSH, SADD, ZADD, HSET, PEXPIREAT), so that a loaded value gets the
// encoding weft-kv's own thresholds give it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "keyspace.hpp"

namespace kv {

/// Redis's CRC-64 (src/crc64.c): the Jones polynomial
/// 0xad93d23594c935a9, reflected input and output, initial value 0, no
/// final xor (D. Jones, "An Improved 64-bit Cyclic Redundancy Check for
/// Protein Sequences", 2002). crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
/// Continue a running checksum by passing the previous result as `crc`.
std::uint64_t crc64(std::uint64_t crc, std::string_view data) noexcept;

/// A malformed RDB file: what() says what and where ("truncated at offset
/// 1234", "checksum mismatch", "unsupported type 15 (stream)", ...).
class RdbFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Builds an RDB file in memory, a piece at a time, keeping the running
/// CRC-64: header(), then entry() for each key, then finish(); take() the
/// bytes written so far whenever convenient (to write them out in chunks).
/// Not thread-safe (one writer per file).
class RdbWriter {
 public:
  /// "REDIS0010", the aux fields redis-server 7.0.15 writes (redis-ver,
  /// redis-bits, ctime in Unix seconds, used-mem in bytes, aof-base 0),
  /// SELECTDB 0 and RESIZEDB with `keys` keys of which `expires` have a TTL.
  void header(std::int64_t now_ms, std::int64_t used_mem, std::uint64_t keys,
              std::uint64_t expires);
  /// One key: its expiry (Unix ms, -1 for none), then its type and value:
  /// `value` when `object` is null (a string), else `object`'s contents
  /// (list, set, zset or hash). @throws std::bad_alloc.
  void entry(std::string_view key, std::string_view value, const Object* object,
             std::int64_t expire_at);
  /// The EOF opcode and the CRC-64 of everything before it and it.
  void finish();
  /// The bytes produced since the last take() (the CRC keeps running).
  std::string take();
  /// Bytes still held (not taken).
  std::size_t pending() const noexcept { return buf_.size(); }

 private:
  void byte(unsigned char b) { buf_.push_back(static_cast<char>(b)); }
  void length(std::uint64_t n);
  void string(std::string_view s);
  void aux(std::string_view key, std::string_view value);
  std::string buf_;
  std::uint64_t crc_ = 0;  // of the bytes taken so far
  bool finished_ = false;  // the CRC is in buf_: take() no longer folds
};

/// What rdb_load() did.
struct RdbLoadResult {
  std::uint64_t keys = 0;  ///< keys rebuilt
  std::uint64_t expired =
      0;  ///< keys skipped because their TTL had passed (as Redis's master does)
};

/// Checks the whole file (structure, then the CRC-64 when the file has one:
/// version >= 5 and a stored checksum other than 0, as Redis's) before it
/// applies anything, then calls `apply` with the write commands that
/// rebuild each live key (SET / RPUSH / SADD / ZADD / HSET, a long
/// collection in several commands of at most 1,024 elements, then
/// PEXPIREAT for a key with a TTL). Keys whose TTL is at or before `now_ms`
/// are skipped. The views passed to `apply` are valid during the call.
/// @throws RdbFormatError for a malformed or truncated file, a checksum
/// mismatch, a version above 10, a database other than 0, a type weft-kv
/// does not have (streams, modules) or functions; nothing has been applied
/// then. Whatever `apply` throws.
RdbLoadResult rdb_load(std::string_view file, std::int64_t now_ms,
                       const std::function<void(std::span<const std::string_view> argv)>& apply);

}  // namespace kv
