// weft-kv commands: transactions (transaction.hpp).
#include "commands/transaction.hpp"

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {

namespace transaction {

void unwatch_all(Host& host, Client& client) {
  Keyspace& ks = host.keyspace();
  for (const std::string& key : client.watched) {
    Shard& sh = ks.shard_of(Keyspace::hash(key));
    std::lock_guard lk(sh.mu);
    sh.unwatch(key, &client.watch_dirty);
    ks.watchers().fetch_sub(1, std::memory_order_relaxed);
  }
  client.watched.clear();
  client.watch_dirty.store(false, std::memory_order_relaxed);
}

void discard(Host& host, Client& client) {
  client.in_multi = false;
  client.multi_failed = false;
  client.multi_flags = 0;
  client.queued.clear();
  unwatch_all(host, client);
}

}  // namespace transaction

namespace {

using transaction::discard;

// A transaction needs a client (AOF replay and unit tests without one
// never send these).
bool have_client(Context& c) {
  if (c.client != nullptr) return true;
  err(c, "ERR transactions need a client");
  return false;
}

void cmd_multi(Context& c) {
  if (!have_client(c)) return;
  if (c.client->in_multi) return err(c, "ERR MULTI calls can not be nested");
  c.client->in_multi = true;
  c.client->multi_failed = false;
  c.client->multi_flags = 0;
  c.client->queued.clear();
  ok(c);
}

void cmd_discard(Context& c) {
  if (!have_client(c)) return;
  if (!c.client->in_multi) return err(c, "ERR DISCARD without MULTI");
  discard(c.host, *c.client);
  ok(c);
}

void cmd_watch(Context& c) {
  if (!have_client(c)) return;
  Client& cl = *c.client;
  if (cl.in_multi) return err(c, "ERR WATCH inside MULTI is not allowed");
  for (std::size_t i = 1; i < c.argv.size(); ++i) {
    const std::string_view key = c.argv[i];
    if (std::find(cl.watched.begin(), cl.watched.end(), key) != cl.watched.end()) continue;
    Locked k(c.host.keyspace(), key);
    k.peek(c.now);  // an expired key is deleted now: its deletion is no change
    cl.watched.emplace_back(key);
    try {
      k.shard.watch(key, &cl.watch_dirty);
    } catch (...) {
      cl.watched.pop_back();
      throw;
    }
    // Counted before the shard is unlocked: a write to the key, which
    // takes that lock after us, sees the count (signal_modified_keys).
    c.host.keyspace().watchers().fetch_add(1, std::memory_order_relaxed);
  }
  ok(c);
}

void cmd_unwatch(Context& c) {
  if (!have_client(c)) return;
  transaction::unwatch_all(c.host, *c.client);
  ok(c);
}

void cmd_exec(Context& c) {
  if (!have_client(c)) return;
  Client& cl = *c.client;
  if (!cl.in_multi) return err(c, "ERR EXEC without MULTI");
  if (cl.multi_failed) {
    discard(c.host, cl);
    return err(c, "EXECABORT Transaction discarded because of previous errors.");
  }
  Keyspace& ks = c.host.keyspace();
  MultiLock all(ks);  // every shard, in index order: nothing else runs meanwhile
  // A watched key still present but expired since it was watched counts as
  // changed (Redis 7.0's isWatchedKeyExpired); flags are read under the
  // shard locks that their setters hold.
  for (const std::string& key : cl.watched) {
    const std::uint64_t h = Keyspace::hash(key);
    const Entry* e = ks.shard_of(h).find_raw(key, h);
    if (e != nullptr && e->expire_at >= 0 && e->expire_at <= c.now)
      cl.watch_dirty.store(true, std::memory_order_relaxed);
  }
  if (cl.watch_dirty.load(std::memory_order_relaxed)) {
    discard(c.host, cl);
    return null_array(c);
  }
  std::vector<QueuedCommand> queue = std::move(cl.queued);
  const unsigned flags = cl.multi_flags;
  discard(c.host, cl);  // unwatch first, as Redis: its own writes need not mark it
  // Pubsub commands in the transaction: the registry is held too, so that
  // their confirmations and the messages they publish keep EXEC's order.
  PubSub* ps = c.host.pubsub();
  std::unique_lock<RegistryMutex> ps_lock;
  if ((flags & kPubSub) && ps != nullptr && !c.pubsub_locked) {
    ps_lock = std::unique_lock<RegistryMutex>(ps->mu);
    c.pubsub_locked = true;
  }
  Reply::array_header(c.out, queue.size());
  // Blocking commands do not wait in a transaction: they answer as if
  // their timeout had passed (Redis's CLIENT_DENY_BLOCKING in MULTI).
  BlockWatch* const watch = std::exchange(cl.watch, nullptr);
  const auto argv = c.argv;
  c.in_exec = true;
  std::vector<std::string_view> args;
  try {
    for (QueuedCommand& q : queue) {
      args.assign(q.argv.begin(), q.argv.end());
      c.argv = args;
      cl.last_cmd.store(q.cmd->name, std::memory_order_relaxed);
      run_command(c, *q.cmd);
    }
  } catch (...) {
    c.in_exec = false;
    c.argv = argv;
    cl.watch = watch;
    if (ps_lock.owns_lock()) c.pubsub_locked = false;
    throw;
  }
  c.in_exec = false;
  c.argv = argv;
  cl.watch = watch;
  cl.last_cmd.store("exec", std::memory_order_relaxed);
  all.unlock();
  if (ps_lock.owns_lock()) {
    // The reply joins the outbox before a message published after the
    // transaction can.
    if (cl.pubsub != nullptr) cl.pubsub->sync(c);
    c.pubsub_locked = false;
  }
}

}  // namespace

std::span<const Command> transaction_commands() noexcept {
  static constexpr Command kTable[] = {
      {"multi",
       1,
       kNoScript | kLoading | kStale | kFast | kAllowBusy,
       "@fast @transaction",
       "",
       {},
       cmd_multi},
      {"exec",
       1,
       kNoScript | kLoading | kStale | kSkipSlowlog,
       "@slow @transaction",
       "",
       {},
       cmd_exec},
      {"discard",
       1,
       kNoScript | kLoading | kStale | kFast | kAllowBusy,
       "@fast @transaction",
       "",
       {},
       cmd_discard},
      {"watch",
       -2,
       kNoScript | kLoading | kStale | kFast | kAllowBusy,
       "@fast @transaction",
       "",
       {"RO", 1, -1},
       cmd_watch},
      {"unwatch",
       1,
       kNoScript | kLoading | kStale | kFast | kAllowBusy,
       "@fast @transaction",
       "",
       {},
       cmd_unwatch},
  };
  return kTable;
}

}  // namespace kv::cmd
