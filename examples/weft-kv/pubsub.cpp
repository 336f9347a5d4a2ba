// weft-kv: publish/subscribe (pubsub.hpp).
#include "pubsub.hpp"

#include <algorithm>
#include <cstdio>
#include <shared_mutex>

#include "keyspace.hpp"
#include "resp.hpp"

namespace kv {

bool Outbox::push(std::string_view bytes, std::int64_t now_ms) {
  bool hit = false;
  {
    std::lock_guard lk(mu_);
    if (closed_ || draining_) return false;
    const std::size_t pending = buf_.size() + in_flight_ + bytes.size();
    // Redis's checkClientOutputBufferLimits: the hard limit at once (>=),
    // the soft one once it has held for more than its seconds.
    if (limit_.hard != 0 && pending >= limit_.hard) hit = true;
    if (limit_.soft != 0 && pending >= limit_.soft) {
      if (soft_since_ == 0)
        soft_since_ = now_ms;
      else if (now_ms - soft_since_ > static_cast<std::int64_t>(limit_.soft_seconds) * 1000)
        hit = true;
    } else {
      soft_since_ = 0;
    }
    if (hit) {
      closed_ = true;
      std::string().swap(buf_);
      over_limit_.store(true, std::memory_order_release);  // pairs with over_limit()
    } else {
      buf_.append(bytes);
    }
    ready_.set();
  }
  if (hit && on_limit_) on_limit_();
  return !hit;
}

bool Outbox::take(std::string& into) {
  into.clear();
  for (;;) {
    ready_.wait();
    std::lock_guard lk(mu_);
    if (closed_) return false;
    if (buf_.empty()) {
      if (draining_) return false;
      ready_.reset();
      continue;
    }
    into.swap(buf_);
    in_flight_ = into.size();
    if (!draining_) ready_.reset();  // set while draining: the next take() ends it
    return true;
  }
}

void Outbox::wrote(std::size_t n) noexcept {
  std::lock_guard lk(mu_);
  in_flight_ -= std::min(n, in_flight_);
  if (limit_.soft != 0 && buf_.size() + in_flight_ < limit_.soft) soft_since_ = 0;
}

void Outbox::close(bool drain) noexcept {
  std::lock_guard lk(mu_);
  (drain ? draining_ : closed_) = true;
  ready_.set();
}

bool Outbox::draining() const noexcept {
  std::lock_guard lk(mu_);
  return draining_;
}

bool Outbox::closed() const noexcept {
  std::lock_guard lk(mu_);
  return closed_;
}

std::size_t Outbox::pending() const noexcept {
  std::lock_guard lk(mu_);
  return buf_.size() + in_flight_;
}

namespace {

// Adds `s` under `name` in `map` unless it is there; keeps `count` = the
// map's size.
bool add(std::unordered_map<std::string, std::vector<Subscriber*>>& map, Subscriber& s,
         std::string_view name, std::vector<std::string>& mine, std::atomic<std::size_t>& count) {
  if (std::find(mine.begin(), mine.end(), name) != mine.end()) return false;
  auto it = map.find(std::string(name));
  if (it == map.end()) it = map.emplace(std::string(name), std::vector<Subscriber*>{}).first;
  it->second.push_back(&s);
  mine.emplace_back(name);
  count.store(map.size(), std::memory_order_relaxed);
  return true;
}

bool remove(std::unordered_map<std::string, std::vector<Subscriber*>>& map, Subscriber& s,
            std::string_view name, std::vector<std::string>& mine,
            std::atomic<std::size_t>& count) {
  const auto at = std::find(mine.begin(), mine.end(), name);
  if (at == mine.end()) return false;
  mine.erase(at);
  const auto it = map.find(std::string(name));
  if (it != map.end()) {
    auto& v = it->second;
    v.erase(std::find(v.begin(), v.end(), &s));
    if (v.empty()) map.erase(it);
  }
  count.store(map.size(), std::memory_order_relaxed);
  return true;
}

}  // namespace

bool PubSub::subscribe(Subscriber& s, std::string_view channel) {
  return add(channels_, s, channel, s.channels, nchannels_);
}
bool PubSub::psubscribe(Subscriber& s, std::string_view pattern) {
  return add(patterns_, s, pattern, s.patterns, npatterns_);
}
bool PubSub::unsubscribe(Subscriber& s, std::string_view channel) {
  return remove(channels_, s, channel, s.channels, nchannels_);
}
bool PubSub::punsubscribe(Subscriber& s, std::string_view pattern) {
  return remove(patterns_, s, pattern, s.patterns, npatterns_);
}

void PubSub::remove_all(Subscriber& s) {
  std::lock_guard lk(mu);
  while (!s.channels.empty()) unsubscribe(s, std::string(s.channels.back()));
  while (!s.patterns.empty()) punsubscribe(s, std::string(s.patterns.back()));
}

std::size_t PubSub::publish(std::string_view channel, std::string_view message, std::int64_t now_ms,
                            bool locked, PublishSelf self) {
  std::shared_lock<RegistryMutex> lk(mu, std::defer_lock);
  if (!locked && !mu.held()) lk.lock();
  std::size_t receivers = 0;
  // Redis's pubsubPublishMessage: the channel's subscribers, then each
  // pattern that matches, every client of it. One encoding per channel and
  // per pattern, shared by their receivers.
  // Each protocol's encoding is made on first use.
  const auto deliver = [&](const std::vector<Subscriber*>& subs, auto encode) {
    std::string msg[2];  // RESP2, RESP3
    for (Subscriber* s : subs) {
      const int proto = s->proto();
      std::string& m = msg[proto == 3 ? 1 : 0];
      if (m.empty()) m = encode(proto);
      if (self.out != nullptr && s->client_id == self.client_id)
        self.out->append(m);
      else
        s->box->push(m, now_ms);
      ++receivers;
    }
  };
  const auto it = channels_.find(std::string(channel));
  if (it != channels_.end())
    deliver(it->second, [&](int proto) { return encode_message(channel, message, proto); });
  for (const auto& entry : patterns_) {
    // A named reference, not a structured binding: clang 14 lets no lambda
    // capture a binding.
    const std::string& pattern = entry.first;
    if (!glob_match(pattern, channel)) continue;
    deliver(entry.second,
            [&](int proto) { return encode_pmessage(pattern, channel, message, proto); });
  }
  return receivers;
}

std::vector<std::string> PubSub::channels(std::string_view pattern, bool locked) {
  std::shared_lock<RegistryMutex> lk(mu, std::defer_lock);
  if (!locked) lk.lock();
  std::vector<std::string> out;
  for (const auto& [name, subs] : channels_)
    if (pattern.empty() || glob_match(pattern, name)) out.push_back(name);
  return out;
}

std::size_t PubSub::numsub(std::string_view channel, bool locked) {
  std::shared_lock<RegistryMutex> lk(mu, std::defer_lock);
  if (!locked) lk.lock();
  const auto it = channels_.find(std::string(channel));
  return it == channels_.end() ? 0 : it->second.size();
}

std::size_t PubSub::numpat(bool locked) {
  std::shared_lock<RegistryMutex> lk(mu, std::defer_lock);
  if (!locked) lk.lock();
  return patterns_.size();
}

std::string encode_message(std::string_view channel, std::string_view message, int proto) {
  std::string out;
  out.reserve(32 + channel.size() + message.size());
  Reply::push_header(out, 3, proto);
  Reply::bulk(out, "message");
  Reply::bulk(out, channel);
  Reply::bulk(out, message);
  return out;
}

std::string encode_pmessage(std::string_view pattern, std::string_view channel,
                            std::string_view message, int proto) {
  std::string out;
  out.reserve(48 + pattern.size() + channel.size() + message.size());
  Reply::push_header(out, 4, proto);
  Reply::bulk(out, "pmessage");
  Reply::bulk(out, pattern);
  Reply::bulk(out, channel);
  Reply::bulk(out, message);
  return out;
}

}  // namespace kv
