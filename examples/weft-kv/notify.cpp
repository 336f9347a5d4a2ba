// weft-kv: keyspace notifications (notify.hpp), as Redis 7.0.15's src/notify.c.
#include "notify.hpp"

#include "pubsub.hpp"

namespace kv {

std::optional<unsigned> parse_notify_flags(std::string_view text) noexcept {
  unsigned flags = 0;
  for (const char c : text) {
    switch (c) {
      case 'A':
        flags |= kNotifyAll;
        break;
      case 'g':
        flags |= kNotifyGeneric;
        break;
      case '$':
        flags |= kNotifyString;
        break;
      case 'l':
        flags |= kNotifyList;
        break;
      case 's':
        flags |= kNotifySet;
        break;
      case 'h':
        flags |= kNotifyHash;
        break;
      case 'z':
        flags |= kNotifyZset;
        break;
      case 'x':
        flags |= kNotifyExpired;
        break;
      case 'e':
        flags |= kNotifyEvicted;
        break;
      case 'K':
        flags |= kNotifyKeyspace;
        break;
      case 'E':
        flags |= kNotifyKeyevent;
        break;
      case 't':
        flags |= kNotifyStream;
        break;
      case 'm':
        flags |= kNotifyKeyMiss;
        break;
      case 'd':
        flags |= kNotifyModule;
        break;
      case 'n':
        flags |= kNotifyNew;
        break;
      default:
        return std::nullopt;
    }
  }
  return flags;
}

std::string notify_flags_string(unsigned flags) {
  std::string out;
  if ((flags & kNotifyAll) == kNotifyAll) {
    out += 'A';
  } else {
    static constexpr std::pair<unsigned, char> kClasses[] = {
        {kNotifyGeneric, 'g'}, {kNotifyString, '$'}, {kNotifyList, 'l'},    {kNotifySet, 's'},
        {kNotifyHash, 'h'},    {kNotifyZset, 'z'},   {kNotifyExpired, 'x'}, {kNotifyEvicted, 'e'},
        {kNotifyStream, 't'},  {kNotifyModule, 'd'}, {kNotifyNew, 'n'}};
    for (const auto& c : kClasses)
      if ((flags & c.first) != 0) out += c.second;
  }
  if ((flags & kNotifyKeyspace) != 0) out += 'K';
  if ((flags & kNotifyKeyevent) != 0) out += 'E';
  if ((flags & kNotifyKeyMiss) != 0) out += 'm';
  return out;
}

void publish_keyspace_event(PubSub& ps, unsigned flags, unsigned type, std::string_view event,
                            std::string_view key, std::int64_t now_ms, PublishSelf self) noexcept {
  if ((flags & type) == 0) return;
  try {
    std::string channel;
    if ((flags & kNotifyKeyspace) != 0) {
      channel.reserve(16 + key.size());
      channel.append("__keyspace@0__:").append(key);
      ps.publish(channel, event, now_ms, false, self);
    }
    if ((flags & kNotifyKeyevent) != 0) {
      channel.assign("__keyevent@0__:").append(event);
      ps.publish(channel, key, now_ms, false, self);
    }
  } catch (...) {
    // Dropped: std::bad_alloc, or weft::Cancelled while waiting for the
    // registry's lock (cancellation is level-triggered: the fiber's next
    // wait throws it again). The command's change stands either way, and
    // the callers hold shard locks in noexcept paths (lazy expiry).
  }
}

void notify_slow(Context& ctx, unsigned type, std::string_view event,
                 std::string_view key) noexcept {
  // The command's own client, if subscribed, gets the event among its
  // replies, where Redis's addReply order puts it.
  if (PubSub* ps = ctx.host.pubsub())
    publish_keyspace_event(*ps, ctx.notify, type, event, key, unix_ms(),
                           {ctx.client != nullptr ? ctx.client->id : 0, &ctx.out});
}

void ExpiryNotifier::expired(std::string_view key) noexcept {
  const unsigned flags = flags_.load(std::memory_order_relaxed);
  if ((flags & kNotifyExpired) != 0) [[unlikely]]
    publish_keyspace_event(ps_, flags, kNotifyExpired, "expired", key, unix_ms());
}

}  // namespace kv
