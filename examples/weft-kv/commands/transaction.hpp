// weft-kv commands: transactions (MULTI, EXEC, DISCARD, WATCH, UNWATCH), as
// Redis 7.0's src/multi.c.
//
// Queuing is kv::execute()'s (table.cpp): in MULTI a command that passes
// the checks Redis makes before queuing is kept in Client::queued and
// answered +QUEUED; one that fails them fails the transaction (EXECABORT).
//
// Atomicity. EXEC locks every shard, in index order as MultiLock does, and
// runs the queued commands on the same fiber; each locks its shards as it
// would alone, which ShardMutex lets the holding fiber do. So no command
// of another client, on any shard, runs between two of a transaction's,
// and the active-expiry cron waits too. With pubsub commands queued, EXEC
// also holds the pubsub registry exclusively.
//
// WATCH. Each watched key registers the client's Client::watch_dirty flag
// with its shard (Shard::watch), which sets it whenever the key changes:
// written, deleted, expired (lazily or by the cron), given or cleared a TTL,
// or flushed while present. EXEC also counts as changed a key that was
// live when watched and has expired since without being deleted yet
// (Redis 7.0's isWatchedKeyExpired). WATCH itself deletes a key that had
// already expired, so that one does not count (Redis's wk->expired).
#pragma once

#include "command.hpp"

namespace kv::cmd::transaction {

/// Forgets every key the client watches (Shard::unwatch for each, shard by
/// shard) and clears its dirty flag. @throws weft::Cancelled while taking
/// a shard lock.
void unwatch_all(Host& host, Client& client);

/// Ends the client's transaction: drops the queue and its flags and
/// unwatches (Redis's discardTransaction).
void discard(Host& host, Client& client);

}  // namespace kv::cmd::transaction
