// weft-kv commands: clients blocked on keys — BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP — as Redis 7.0's
// src/blocked.c and the serving halves of src/t_list.c and src/t_zset.c.
//
// The problem. A client that finds every key it names empty waits, with a
// timeout, until a push makes one of them non-empty. Redis's semantics,
// which clients rely on: clients blocked on a key are served in the order
// they blocked; a push serves them only after the command that pushed is
// complete (a push in a transaction serves them after EXEC: Redis's "ready
// keys"), and then before any other command runs, so no other client can
// take the element in between; a served client's pop is logged (AOF) as
// the non-blocking pop it performed; a client that times out gets the null
// reply; one that disconnects while blocked takes nothing and leaves no
// trace.
//
// Rejected designs. Polling the keys (a timer per blocked client) burns CPU
// and adds latency. Waking the blocked fiber and letting it retry the pop
// lets another client take the element first (and makes FIFO order a race).
// Serving from a separate pass after the pushing command released its locks
// opens the same window.
//
// The design. Each keyspace shard holds a registry (Shard::blocked) of wait
// queues, one per key with blocked clients, guarded by the shard's lock. A
// blocked client is a Waiter on its fiber's stack, with one node in the
// queue of each of its keys. It registers while it holds the locks of all
// its keys' shards — the same critical section in which it found them
// empty, so no push can slip between the check and the registration — then
// releases them and parks on its Waiter's weft::Event with its deadline
// (client.hpp's BlockWatch::park, which also watches the connection).
//
// A command that makes a key non-empty notes it (signal_ready: Context::
// ready) and, before it releases its own locks, serves the waiters of the
// noted keys (serve_ready): for each waiter in FIFO order, while the value
// lasts, it claims the waiter (an atomic state waiting -> served, which the
// waiter's own timeout or disconnection races with the same CAS: exactly one
// wins), performs the waiter's operation with the waiter's reply buffer,
// logs it, and sets the waiter's Event. BLMOVE's destination may be in a
// shard the command does not hold: the lock set grows when the lock order
// allows it (MultiLock::extend: a shard after every held one, or one that is
// free now); when it does not, the key waits for execute()'s pass after the
// command (serve_ready(Context&)), which takes every lock it needs in order
// — the one case in which another command may run between a push and the
// serving, and only under contention on that shard. For MULTI, EXEC will
// run its queued commands with their keys' locks held and serve the noted
// keys once, at its end, through the same two functions.
//
// The waiter side after it wakes (served, timed out, disconnected, failed):
// it tries the CAS waiting -> gave_up; then, whatever the outcome, it takes
// the locks of all its keys' shards and unlinks its nodes still linked. That
// lock also waits out a server still inside Event::set() (which it calls
// with the served key's shard locked), so when the waiter's frame dies no
// one references it. Lock order: a waiter holds no lock while it takes its
// set (in index order); a server only ever adds shards in the order or by
// try_lock.
#pragma once

#include <span>
#include <string_view>

#include "commands/util.hpp"
#include "weft/deadline.hpp"

namespace kv::cmd::blocking {

/// What a blocked client does once a key it waits on is ready (Redis: the
/// blocked command with its bpop state).
struct Op {
  Type type = Type::list;  ///< the type of value it pops from
  bool left = true;        ///< from the head (lists) or the minimum (sorted sets)
  bool to_left = false;    ///< BLMOVE: push at the head of `dst`
  bool rpoplpush = false;  ///< BLMOVE: logged as RPOPLPUSH (it was BRPOPLPUSH)
  long long count = -1;    ///< BLMPOP, BZMPOP: up to this many; -1: one
  std::string_view dst;    ///< BLMOVE, BRPOPLPUSH: the destination key; else empty
  /// The reply when the client may not block (no connection to wait on:
  /// AOF replay; Redis: MULTI and scripts): "$-1" for BLMOVE and
  /// BRPOPLPUSH, "*-1" for the others. A timeout is always "*-1".
  bool null_bulk_when_denied = false;
  /// Serves the client: pops from `key` (whose value `e`, in the locked
  /// shard `sh`, is non-empty and of `type`), pushes to `dst` (its shard
  /// locked too), writes the reply to c.out, logs with c.host.propagate,
  /// deletes the key when it empties and notes the keys it pushed to
  /// (signal_ready). `c` is the blocked client's context. Never called
  /// for a waiter that has given up.
  void (*serve)(Context& c, const Op& op, std::string_view key, Shard& sh, Entry* e) = nullptr;
};

/// Parses "numkeys key... <end> [COUNT n]" from argv[at], the arguments of
/// LMPOP, BLMPOP, ZMPOP and BZMPOP: `ends` names the two ends in lower
/// case ({"left", "right"} or {"min", "max"}), `first_end` is set when the
/// first is given; count is 1 without COUNT. On an error replies with
/// Redis's text and returns false.
bool parse_multi_pop(Context& c, std::size_t at, const char* const (&ends)[2],
                     std::span<const std::string_view>& keys, bool& first_end, long long& count);

/// The first of `keys` (their shards locked) that exists, or nullptr;
/// false after replying WRONGTYPE if that one is not of `type` (lists and
/// sorted sets are never empty, so it is the first with a value to pop).
bool first_existing(Context& c, std::span<const std::string_view> keys, Type type, Entry*& found,
                    std::string_view& key);

/// BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP: parses the timeout,
/// then pops at once from the first of `keys` that exists (op.serve, as a
/// push would serve the client later: same reply, same log) or blocks on
/// all of them (block()).
void pop_or_block(Context& c, std::span<const std::string_view> keys, const Op& op,
                  std::string_view timeout);

/// Parses a blocking command's timeout in seconds as Redis 7.0's
/// getTimeoutFromObjectOrReply: a long double (fractions, exponents, hex),
/// milliseconds rounded up, 0 (or a negative fraction that rounds to 0):
/// forever. On a bad value appends Redis's error ("ERR timeout is not a
/// float or out of range", "ERR timeout is negative") and returns false.
bool parse_timeout(Context& c, std::string_view arg, weft::Deadline& deadline);

/// Blocks the client on `keys` (every one of them missing or empty; their
/// shards held by `locks`, which this releases) until a push serves it,
/// `deadline` passes ("*-1") or its connection ends (no reply; c.close).
/// Appends the reply the serving produced. Duplicate keys count once.
/// Without a connection to wait on (c.client or its watch null) it
/// answers at once as Redis does for a client that may not block.
/// Cancellation is deferred while it waits (a shield: the connection's end
/// or the deadline ends the wait; the server ends connections' reads at
/// shutdown). @throws std::bad_alloc (nothing registered);
/// std::system_error when the replies before it cannot be sent.
void block(Context& c, MultiLock& locks, std::span<const std::string_view> keys, const Op& op,
           weft::Deadline deadline);

/// Notes that `key` (in the locked shard `sh`) may now satisfy clients
/// blocked on it — a push made it non-empty, or a value was stored under
/// it — so that they are served when the command's changes are complete
/// (Redis's signalKeyAsReady). Cheap when none waits on it. Every command
/// that creates or refills a list or a sorted set calls it.
/// @throws std::bad_alloc.
void signal_ready(Context& c, Shard& sh, std::string_view key);

/// Serves the clients blocked on the keys in c.ready, key by key in order,
/// with the locks of `locks` (extended where the lock order allows), and
/// removes the keys it finished from c.ready; a key whose next waiter
/// needs a shard it cannot take stays there, with the keys after it, for
/// serve_ready(c). Call at the end of a command, its changes complete, its
/// locks still held.
void serve_ready(Context& c, MultiLock& locks);

/// Serves whatever is left in c.ready, taking the locks it needs in index
/// order (kv::execute calls it after every command that left some).
/// @throws weft::Cancelled while waiting for a lock.
void serve_ready(Context& c);

}  // namespace kv::cmd::blocking
