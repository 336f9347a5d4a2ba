// weft-kv commands: publish/subscribe (SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
// PUNSUBSCRIBE, PUBLISH, PUBSUB), as Redis 7.0's src/pubsub.c. The
// registry and the outboxes are pubsub.hpp's; the connection's side is
// kv::PubSubLink (client.hpp).
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

// The confirmation Redis sends for each (un)subscription: [kind, name,
// subscriptions left]; `name` null for an UNSUBSCRIBE of nothing.
// A push in RESP3 (`proto` 3).
void confirmation(std::string& out, std::string_view kind, const std::string_view* name,
                  std::size_t count, int proto) {
  Reply::push_header(out, 3, proto);
  Reply::bulk(out, kind);
  if (name != nullptr)
    Reply::bulk(out, *name);
  else
    Reply::null_bulk(out, proto);
  Reply::integer(out, static_cast<std::int64_t>(count));
}

// A (un)subscription command's frame: the registry locked exclusively
// (unless EXEC holds it), the client's earlier replies moved to its outbox
// first, and the confirmations appended to the outbox under the lock, so
// that they come before (after) every message of what they (un)subscribe.
// Inside EXEC the confirmations are part of EXEC's reply, which EXEC moves
// to the outbox under the same lock.
template <class Body>
void change_subscriptions(Context& c, bool create, Body body) {
  PubSub* ps = c.host.pubsub();
  if (c.client == nullptr || c.client->pubsub == nullptr || ps == nullptr)
    return err(c, "ERR this client cannot subscribe");
  Subscriber* sub = c.client->pubsub->subscriber(create);
  if (sub != nullptr && !c.in_exec) c.client->pubsub->sync(c);
  std::unique_lock<RegistryMutex> lk(ps->mu, std::defer_lock);
  if (!c.pubsub_locked) lk.lock();
  std::string replies;
  body(*ps, sub, replies);
  c.client->subscriptions = sub != nullptr ? sub->count() : 0;
  c.client->subscribed.store(c.client->subscriptions > 0, std::memory_order_relaxed);
  if (sub == nullptr || c.in_exec)
    c.out += replies;
  else
    sub->box->push(replies, unix_ms());
}

void cmd_subscribe(Context& c) {
  change_subscriptions(c, true, [&](PubSub& ps, Subscriber* sub, std::string& out) {
    for (std::size_t i = 1; i < c.argv.size(); ++i) {
      ps.subscribe(*sub, c.argv[i]);
      confirmation(out, "subscribe", &c.argv[i], sub->count(), proto(c));
    }
  });
}

void cmd_psubscribe(Context& c) {
  change_subscriptions(c, true, [&](PubSub& ps, Subscriber* sub, std::string& out) {
    for (std::size_t i = 1; i < c.argv.size(); ++i) {
      ps.psubscribe(*sub, c.argv[i]);
      confirmation(out, "psubscribe", &c.argv[i], sub->count(), proto(c));
    }
  });
}

// UNSUBSCRIBE and PUNSUBSCRIBE: the names given, or every one the client
// has (in the order subscribed); a confirmation with a null name when that
// is none.
template <bool Patterns>
void unsubscribe(Context& c) {
  constexpr std::string_view kind = Patterns ? "punsubscribe" : "unsubscribe";
  change_subscriptions(c, false, [&](PubSub& ps, Subscriber* sub, std::string& out) {
    const auto drop = [&](std::string_view name) {
      if (sub == nullptr) return confirmation(out, kind, &name, 0, proto(c));
      if constexpr (Patterns)
        ps.punsubscribe(*sub, name);
      else
        ps.unsubscribe(*sub, name);
      confirmation(out, kind, &name, sub->count(), proto(c));
    };
    if (c.argv.size() > 1) {
      for (std::size_t i = 1; i < c.argv.size(); ++i) drop(c.argv[i]);
      return;
    }
    std::vector<std::string> all;
    if (sub != nullptr) all = Patterns ? sub->patterns : sub->channels;
    if (all.empty())
      return confirmation(out, kind, nullptr, sub != nullptr ? sub->count() : 0, proto(c));
    for (const std::string& name : all) drop(name);
  });
}

void cmd_unsubscribe(Context& c) {
  unsubscribe<false>(c);
}

void cmd_punsubscribe(Context& c) {
  unsubscribe<true>(c);
}

void cmd_publish(Context& c) {
  PubSub* ps = c.host.pubsub();
  const std::size_t n =
      ps == nullptr ? 0 : ps->publish(c.argv[1], c.argv[2], unix_ms(), c.pubsub_locked);
  Reply::integer(c.out, static_cast<std::int64_t>(n));
}

void cmd_pubsub_channels(Context& c) {
  if (c.argv.size() > 3)
    return err(c, "ERR unknown subcommand or wrong number of arguments for '" +
                      std::string(c.argv[1].substr(0, 128)) + "'. Try PUBSUB HELP.");
  PubSub* ps = c.host.pubsub();
  const std::vector<std::string> names =
      ps == nullptr
          ? std::vector<std::string>{}
          : ps->channels(c.argv.size() == 3 ? c.argv[2] : std::string_view("*"), c.pubsub_locked);
  Reply::array_header(c.out, names.size());
  for (const std::string& n : names) Reply::bulk(c.out, n);
}

void cmd_pubsub_numsub(Context& c) {
  PubSub* ps = c.host.pubsub();
  Reply::array_header(c.out, (c.argv.size() - 2) * 2);
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    Reply::bulk(c.out, c.argv[i]);
    Reply::integer(c.out, ps == nullptr
                              ? 0
                              : static_cast<std::int64_t>(ps->numsub(c.argv[i], c.pubsub_locked)));
  }
}

void cmd_pubsub_numpat(Context& c) {
  PubSub* ps = c.host.pubsub();
  Reply::integer(c.out, ps == nullptr ? 0 : static_cast<std::int64_t>(ps->numpat(c.pubsub_locked)));
}

// Sharded channels (SSUBSCRIBE) are not implemented, so there are none:
// PUBSUB SHARDCHANNELS is empty and SHARDNUMSUB counts 0, as Redis answers
// when no client has a sharded subscription.
void cmd_pubsub_shardchannels(Context& c) {
  if (c.argv.size() > 3)
    return err(c, "ERR unknown subcommand or wrong number of arguments for '" +
                      std::string(c.argv[1].substr(0, 128)) + "'. Try PUBSUB HELP.");
  Reply::array_header(c.out, 0);
}

void cmd_pubsub_shardnumsub(Context& c) {
  Reply::array_header(c.out, (c.argv.size() - 2) * 2);
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    Reply::bulk(c.out, c.argv[i]);
    Reply::integer(c.out, 0);
  }
}

void cmd_pubsub_help(Context& c) {
  static constexpr std::string_view kLines[] = {
      "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CHANNELS [<pattern>]",
      "    Return the currently active channels matching a <pattern> (default: '*').",
      "NUMPAT",
      "    Return number of subscriptions to patterns.",
      "NUMSUB [<channel> ...]",
      "    Return the number of subscribers for the specified channels, excluding",
      "    pattern subscriptions(default: no channels).",
      "SHARDCHANNELS [<pattern>]",
      "    Return the currently active shard level channels matching a <pattern> (default: "
      "'*').",
      "SHARDNUMSUB [<shardchannel> ...]",
      "    Return the number of subscribers for the specified shard level channel(s)",
      "HELP",
      "    Prints this help.",
  };
  help_reply(c, kLines);
}

constexpr unsigned kSubscribeFlags = kPubSub | kNoScript | kLoading | kStale;

constexpr Command kPubSubSub[] = {
    {"pubsub|channels",
     -2,
     kPubSub | kLoading | kStale,
     "@pubsub @slow",
     "",
     {},
     cmd_pubsub_channels},
    {"pubsub|help", 2, kLoading | kStale, "@slow", "", {}, cmd_pubsub_help},
    {"pubsub|numsub", -2, kPubSub | kLoading | kStale, "@pubsub @slow", "", {}, cmd_pubsub_numsub},
    {"pubsub|shardnumsub",
     -2,
     kPubSub | kLoading | kStale,
     "@pubsub @slow",
     "",
     {},
     cmd_pubsub_shardnumsub},
    {"pubsub|numpat", 2, kPubSub | kLoading | kStale, "@pubsub @slow", "", {}, cmd_pubsub_numpat},
    {"pubsub|shardchannels",
     -2,
     kPubSub | kLoading | kStale,
     "@pubsub @slow",
     "",
     {},
     cmd_pubsub_shardchannels},
};

}  // namespace

std::span<const Command> pubsub_commands() noexcept {
  static constexpr Command kTable[] = {
      {"subscribe", -2, kSubscribeFlags, "@pubsub @slow", "", {}, cmd_subscribe},
      {"unsubscribe", -1, kSubscribeFlags, "@pubsub @slow", "", {}, cmd_unsubscribe},
      {"psubscribe", -2, kSubscribeFlags, "@pubsub @slow", "", {}, cmd_psubscribe},
      {"punsubscribe", -1, kSubscribeFlags, "@pubsub @slow", "", {}, cmd_punsubscribe},
      {"publish",
       3,
       kPubSub | kLoading | kStale | kFast | kMayReplicate,
       "@pubsub @fast",
       "",
       {},
       cmd_publish},
      {"pubsub", -2, 0, "@slow", "", {}, nullptr, {}, kPubSubSub},
  };
  return kTable;
}

}  // namespace kv::cmd
