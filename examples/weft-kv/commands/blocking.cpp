// weft-kv commands: clients blocked on keys (blocking.hpp has the design).
#include "commands/blocking.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "weft/cancel.hpp"
#include "weft/sync.hpp"

namespace kv::cmd::blocking {
namespace {

struct Waiter;

// A waiter's place in one key's queue. Its links and `linked` are guarded
// by that key's shard lock.
struct WaitNode {
  Waiter* waiter = nullptr;
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  bool linked = false;
};

// The clients blocked on one key, in the order they blocked. Never empty
// while it is in a Registry.
struct WaitQueue {
  WaitNode* head = nullptr;
  WaitNode* tail = nullptr;
  std::size_t size = 0;
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A shard's wait queues (Shard::blocked).
class Registry final : public BlockedKeys {
 public:
  std::unordered_map<std::string, WaitQueue, KeyHash, std::equal_to<>> queues;
};

Registry* registry(const Shard& sh) noexcept {
  return static_cast<Registry*>(sh.blocked.get());
}

// A blocked client. Lives on its fiber's stack for the whole wait.
//
// state: waiting -> served (by the server that claims it, under the lock
// of the key it serves through) or waiting -> gave_up (by the waiter after
// its park ended). acq_rel on both CAS: whoever wins has seen the
// registration (published under the key's lock anyway) and the loser's
// later reads of reply and aof_seq happen after the server's writes through
// the shard lock the waiter takes before reading them.
struct Waiter {
  enum class State : std::uint8_t { waiting, served, gave_up };

  const Op& op;
  std::vector<std::string_view> keys;  // unique, in the command's order; views of its argv
  std::vector<WaitNode> nodes;         // nodes[i] is on the queue of keys[i]
  std::atomic<State> state{State::waiting};
  weft::Event wake;       // set by the server that served it, or by the connection's watch
  std::string reply;      // written by the server before wake.set()
  std::uint64_t aof_seq;  // the AOF record of the served operation
  Client* client;

  Waiter(const Op& o, Client* c) : op(o), aof_seq(0), client(c) {}
};

void link_node(Registry& reg, std::string_view key, WaitNode& n) {
  auto it = reg.queues.find(key);
  if (it == reg.queues.end()) it = reg.queues.emplace(std::string(key), WaitQueue{}).first;
  WaitQueue& q = it->second;
  n.prev = q.tail;
  n.next = nullptr;
  if (q.tail != nullptr)
    q.tail->next = &n;
  else
    q.head = &n;
  q.tail = &n;
  ++q.size;
  n.linked = true;
}

// Unlinks n from its queue; erases the queue when it empties (unless
// `keep_empty`: a caller still walking it erases it afterwards).
void unlink_node(Registry& reg, std::string_view key, WaitNode& n, bool keep_empty = false) {
  const auto it = reg.queues.find(key);
  WaitQueue& q = it->second;
  (n.prev != nullptr ? n.prev->next : q.head) = n.next;
  (n.next != nullptr ? n.next->prev : q.tail) = n.prev;
  n.prev = n.next = nullptr;
  n.linked = false;
  if (--q.size == 0 && !keep_empty) reg.queues.erase(it);
}

std::size_t shard_of(std::string_view key) noexcept {
  return Keyspace::shard_index(Keyspace::hash(key));
}

// Serves the waiters of `key` (its shard held by `locks`) in FIFO order
// while its value lasts. Returns the shard the next waiter needs and
// `locks` cannot take, or -1 when the key is done.
int serve_key(Context& c, MultiLock& locks, std::string_view key) {
  Keyspace& ks = c.host.keyspace();
  const std::uint64_t h = Keyspace::hash(key);
  Shard& sh = ks.shard_of(h);
  Registry* reg = registry(sh);
  if (reg == nullptr) return -1;
  const auto it = reg->queues.find(key);
  if (it == reg->queues.end()) return -1;
  WaitQueue& q = it->second;
  int need = -1;
  // At most the waiters queued now (Redis: a served client cannot requeue
  // itself into this pass).
  std::size_t budget = q.size;
  for (WaitNode* n = q.head; n != nullptr && budget != 0; --budget) {
    WaitNode* const next = n->next;  // stays valid: its queue changes only under this lock
    Waiter& w = *n->waiter;
    Entry* const e = sh.find(key, h, c.now);
    if (e == nullptr) break;  // emptied (and deleted) by the last one served
    if (e->type() != w.op.type ||
        w.state.load(std::memory_order_acquire) != Waiter::State::waiting) {
      n = next;  // blocked for another type (stays), or leaving by itself
      continue;
    }
    if (!w.op.dst.empty()) {
      const std::size_t j = shard_of(w.op.dst);
      if (!locks.extend(j)) {
        need = static_cast<int>(j);
        break;
      }
    }
    auto expected = Waiter::State::waiting;
    if (!w.state.compare_exchange_strong(expected, Waiter::State::served,
                                         std::memory_order_acq_rel)) {
      n = next;  // its timeout or disconnection won
      continue;
    }
    unlink_node(*reg, key, *n, /*keep_empty=*/true);
    Context wc{c.host, w.client, {}, w.reply, c.now};
    wc.notify = c.notify;  // the serve's pop events are the serving command's
    w.op.serve(wc, w.op, key, sh, e);
    w.aof_seq = wc.aof_seq;
    for (std::string& k : wc.ready) {
      if (std::find(c.ready.begin(), c.ready.end(), k) == c.ready.end())
        c.ready.push_back(std::move(k));
    }
    ks.shard_of(Keyspace::hash(w.keys[0])).count_blocked(-1);
    // The waiter may now wake and leave; it frees its frame only after
    // taking this shard's lock, which we hold until set() has returned.
    w.wake.set();
    n = next;
  }
  if (it->second.size == 0) reg->queues.erase(it);
  return need;
}

}  // namespace

bool parse_timeout(Context& c, std::string_view arg, weft::Deadline& deadline) {
  long double seconds = 0;
  if (!parse_ld(arg, seconds)) {
    err(c, "ERR timeout is not a float or out of range");
    return false;
  }
  // Redis: tval = (long long) ceill(ftval * 1000.0). On x86-64 a value the
  // cast cannot hold (inf included) becomes LLONG_MIN: "negative".
  const long double ms = std::ceil(seconds * 1000.0L);
  if (!(ms > -9223372036854775808.0L && ms < 9223372036854775808.0L) || ms < 0) {
    err(c, "ERR timeout is negative");
    return false;
  }
  const auto tval = static_cast<long long>(ms);
  // 0: forever. Redis adds the time now without an overflow check; a
  // timeout centuries away blocks forever there too.
  constexpr long long kCentury = 100LL * 365 * 24 * 3600 * 1000;
  deadline = tval == 0 || tval > kCentury ? weft::Deadline{}
                                          : weft::Deadline::after(std::chrono::milliseconds(tval));
  return true;
}

bool parse_multi_pop(Context& c, std::size_t at, const char* const (&ends)[2],
                     std::span<const std::string_view>& keys, bool& first_end, long long& count) {
  long long numkeys = 0;
  if (!parse_range(c, c.argv[at], 1, LLONG_MAX, "numkeys should be greater than 0", numkeys))
    return false;
  if (static_cast<unsigned long long>(numkeys) >= c.argv.size() - at - 1) {
    err(c, kSyntax);  // the end would be past the last argument
    return false;
  }
  const std::size_t end_at = at + 1 + static_cast<std::size_t>(numkeys);
  if (eq_ci(c.argv[end_at], ends[0])) {
    first_end = true;
  } else if (eq_ci(c.argv[end_at], ends[1])) {
    first_end = false;
  } else {
    err(c, kSyntax);
    return false;
  }
  count = -1;
  for (std::size_t j = end_at + 1; j < c.argv.size(); ++j) {
    if (count == -1 && eq_ci(c.argv[j], "count") && j + 1 < c.argv.size()) {
      if (!parse_range(c, c.argv[++j], 1, LLONG_MAX, "count should be greater than 0", count))
        return false;
    } else {
      err(c, kSyntax);
      return false;
    }
  }
  if (count == -1) count = 1;
  keys = c.argv.subspan(at + 1, static_cast<std::size_t>(numkeys));
  return true;
}

bool first_existing(Context& c, std::span<const std::string_view> keys, Type type, Entry*& found,
                    std::string_view& key) {
  found = nullptr;
  Keyspace& ks = c.host.keyspace();
  for (std::string_view k : keys) {
    const std::uint64_t h = Keyspace::hash(k);
    Entry* e = ks.shard_of(h).find(k, h, c.now);
    if (e == nullptr) continue;
    if (e->type() != type) {
      err(c, kWrongType);
      return false;
    }
    found = e;
    key = k;
    return true;
  }
  return true;
}

void pop_or_block(Context& c, std::span<const std::string_view> keys, const Op& op,
                  std::string_view timeout) {
  weft::Deadline deadline;
  if (!parse_timeout(c, timeout, deadline)) return;
  Keyspace& ks = c.host.keyspace();
  MultiLock locks(ks, keys);
  Entry* e = nullptr;
  std::string_view key;
  if (!first_existing(c, keys, op.type, e, key)) return;
  if (e != nullptr) return op.serve(c, op, key, ks.shard_of(Keyspace::hash(key)), e);
  block(c, locks, keys, op, deadline);
}

void signal_ready(Context& c, Shard& sh, std::string_view key) {
  const Registry* reg = registry(sh);
  if (reg == nullptr || reg->queues.empty() || reg->queues.find(key) == reg->queues.end()) return;
  if (std::find(c.ready.begin(), c.ready.end(), key) == c.ready.end()) c.ready.emplace_back(key);
}

namespace {

// serve_ready's loop; returns the shard it stopped for (the front key's
// own, or the destination of its next waiter), -1 when c.ready is empty.
int serve_pending(Context& c, MultiLock& locks) {
  while (!c.ready.empty()) {
    // Taken off the list first: serving it may signal it again (BLMOVE k k),
    // which queues another round after the keys noted so far (Redis empties
    // db->ready_keys before serving a key for the same reason).
    std::string key = std::move(c.ready.front());
    c.ready.erase(c.ready.begin());
    const auto own = static_cast<int>(shard_of(key));
    const int need = locks.extend(static_cast<std::size_t>(own)) ? serve_key(c, locks, key) : own;
    if (need >= 0) {
      c.ready.insert(c.ready.begin(), std::move(key));
      return need;
    }
  }
  return -1;
}

}  // namespace

void serve_ready(Context& c, MultiLock& locks) {
  serve_pending(c, locks);
}

void serve_ready(Context& c) {
  std::uint64_t want = 0;
  while (!c.ready.empty()) {
    want |= std::uint64_t{1} << shard_of(c.ready.front());
    MultiLock locks(c.host.keyspace(), want);
    const int need = serve_pending(c, locks);
    if (need < 0) return;
    // Between this round and the next, with no lock held, another command
    // may run: the window blocking.hpp describes.
    want |= locks.held() | (std::uint64_t{1} << need);
  }
}

void block(Context& c, MultiLock& locks, std::span<const std::string_view> keys, const Op& op,
           weft::Deadline deadline) {
  if (c.client == nullptr || c.client->watch == nullptr) {
    locks.unlock();
    if (op.null_bulk_when_denied) return null_bulk(c);
    return null_array(c);
  }
  // Everything from the registration to the clean-up runs shielded: the
  // waiter must unlink itself whatever ends the wait. The wait itself ends
  // by its deadline, a serving, or the connection's end (shutdown ends
  // every connection's reads), so deferring cancellation blocks nothing.
  weft::ShieldGuard shield;
  Keyspace& ks = c.host.keyspace();
  Waiter w(op, c.client);
  for (std::string_view k : keys)
    if (std::find(w.keys.begin(), w.keys.end(), k) == w.keys.end()) w.keys.push_back(k);
  w.nodes.resize(w.keys.size());  // never resized again: queues point into it
  std::size_t linked = 0;
  try {
    for (; linked < w.keys.size(); ++linked) {
      Shard& sh = ks.shard_of(Keyspace::hash(w.keys[linked]));
      if (sh.blocked == nullptr) sh.blocked = std::make_unique<Registry>();
      w.nodes[linked].waiter = &w;
      link_node(*registry(sh), w.keys[linked], w.nodes[linked]);
    }
  } catch (...) {
    for (std::size_t i = 0; i < linked; ++i)
      unlink_node(*registry(ks.shard_of(Keyspace::hash(w.keys[i]))), w.keys[i], w.nodes[i]);
    throw;
  }
  ks.shard_of(Keyspace::hash(w.keys[0])).count_blocked(1);
  locks.unlock();

  bool open = true;
  std::exception_ptr failure;
  try {
    open = c.client->watch->park(c.aof_seq, w.wake, deadline);
  } catch (...) {
    failure = std::current_exception();
  }
  auto expected = Waiter::State::waiting;
  const bool served =
      !w.state.compare_exchange_strong(expected, Waiter::State::gave_up, std::memory_order_acq_rel);
  if (!served) ks.shard_of(Keyspace::hash(w.keys[0])).count_blocked(-1);
  {
    // Every key's shard, even where the node is gone: see blocking.hpp.
    MultiLock all(ks, w.keys);
    for (std::size_t i = 0; i < w.keys.size(); ++i) {
      if (w.nodes[i].linked)
        unlink_node(*registry(ks.shard_of(Keyspace::hash(w.keys[i]))), w.keys[i], w.nodes[i]);
    }
  }
  if (served) {
    c.out += w.reply;
    c.aof_seq = std::max(c.aof_seq, w.aof_seq);
  }
  if (failure) std::rethrow_exception(failure);
  if (!open) {
    c.close = true;  // gone: nothing to send
  } else if (!served) {
    null_array(c);
  }
}

}  // namespace kv::cmd::blocking
