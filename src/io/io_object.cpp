#include "io/io_object.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "io/backend.hpp"
#include "obs/metrics.hpp"
#include "sched/waiter.hpp"

namespace weft::detail::io {
namespace {

// Process-wide, never freed: see "Memory is type-stable" in the header.
class ObjectTable {
 public:
  static constexpr std::uint32_t kChunk = 1024;
  static constexpr std::uint32_t kMaxChunks = 4096;  // 4M descriptors

  IoObject* alloc() {
    std::lock_guard g(mu_);
    if (!free_.empty()) {
      const std::uint32_t i = free_.back();
      free_.pop_back();
      return slot(i);
    }
    if (next_ == kChunk * kMaxChunks) throw std::bad_alloc();
    const std::uint32_t i = next_;
    if (i % kChunk == 0) {
      auto* chunk = new IoObject[kChunk];
      for (std::uint32_t k = 0; k < kChunk; ++k) chunk[k].index = i + k;
      // release: lock_token() reads chunks_ without mu_.
      chunks_[i / kChunk].store(chunk, std::memory_order_release);
    }
    free_.reserve(next_ + 1);  // so that recycle() never allocates
    ++next_;
    return slot(i);
  }

  void recycle(IoObject* o) noexcept {
    std::lock_guard g(mu_);
    free_.push_back(o->index);  // capacity reserved in alloc()
  }

  template <class F>
  void for_each(F fn) noexcept {
    std::lock_guard g(mu_);
    for (std::uint32_t i = 0; i < next_; ++i) fn(slot(i));
  }

  IoObject* find(std::uint32_t index) const noexcept {
    if (index >= kChunk * kMaxChunks) return nullptr;
    IoObject* chunk = chunks_[index / kChunk].load(std::memory_order_acquire);
    return chunk != nullptr ? &chunk[index % kChunk] : nullptr;
  }

 private:
  IoObject* slot(std::uint32_t i) const noexcept { return find(i); }

  std::mutex mu_;
  std::vector<std::uint32_t> free_;
  std::uint32_t next_ = 0;
  std::array<std::atomic<IoObject*>, kMaxChunks> chunks_{};
};

ObjectTable& table() {
  static auto* t = new ObjectTable();  // never destroyed: events may race exit
  return *t;
}

// Takes the descriptor for closing if nothing uses it any more.
int take_fd_if_unused(IoObject* o) noexcept WEFT_REQUIRES(o->lock) {
  if (!o->closed || o->ops != 0 || o->fd < 0) return -1;
  o->poller = nullptr;  // close(2) removes it from the epoll set
  o->ready[0] = o->ready[1] = false;
  return std::exchange(o->fd, -1);
}

// Recycles when neither handle nor operation is left.
bool unused(const IoObject* o) noexcept WEFT_REQUIRES(o->lock) {
  return !o->handle && o->ops == 0;
}

void recycle(IoObject* o) noexcept {
  {
    LockGuard g(o->lock);
    ++o->gen;  // stale epoll events for this slot are dropped from now on
  }
  table().recycle(o);
}

int close_fd(int fd) noexcept {
  if (fd < 0) return 0;
  // close(2) releases the descriptor even when it reports an error (EINTR
  // included): never retry.
  return ::close(fd) == 0 ? 0 : errno;
}

}  // namespace

IoObject* adopt(int fd, bool pollable) {
  IoObject* o = nullptr;
  try {
    o = table().alloc();
  } catch (...) {
    ::close(fd);
    throw;
  }
  LockGuard g(o->lock);
  o->fd = fd;
  o->pollable = pollable;
  o->closed = false;
  o->handle = true;
  o->ops = 0;
  o->poller = nullptr;
  o->ready[0] = o->ready[1] = false;
  o->inflight = nullptr;
  o->tcp.store(false, std::memory_order_relaxed);
  o->tcp_since_ns = 0;
  return o;
}

void mark_tcp(IoObject* o) noexcept {
  const std::int64_t now = monotonic_ns();
  {
    LockGuard g(o->lock);
    if (o->closed) return;
    o->tcp.store(true, std::memory_order_relaxed);
    o->tcp_since_ns = now;
  }
  obs::add(obs::Counter::tcp_opened);
}

bool begin_op(IoObject* o) noexcept {
  LockGuard g(o->lock);
  if (o->closed) return false;
  ++o->ops;
  return true;
}

void end_op(IoObject* o) noexcept {
  int fd;
  bool done;
  {
    LockGuard g(o->lock);
    --o->ops;
    fd = take_fd_if_unused(o);
    done = unused(o);
  }
  close_fd(fd);
  if (done) recycle(o);
}

int close(IoObject* o) noexcept {
  int fd;
  std::int64_t tcp_since = 0;
  {
    LockGuard g(o->lock);
    if (o->closed) return 0;
    o->closed = true;
    tcp_since = std::exchange(o->tcp_since_ns, 0);
    // Waiters for readiness see `closed` when they wake and fail with EBADF.
    grant_all(o->waiters[0], true);
    grant_all(o->waiters[1], true);
    // Ring requests in flight: ask each ring once. Each cancel holds an
    // operation reference, so the fd stays open until the cancel itself has
    // completed and can never cancel requests on a reused fd number.
    for (InflightLink* l = o->inflight; l != nullptr; l = l->next) {
      bool seen = false;
      for (InflightLink* p = o->inflight; p != l; p = p->next) seen |= p->owner == l->owner;
      if (!seen) {
        ++o->ops;  // released by the backend when its cancel completes
        l->owner->cancel_fd(o, o->fd);
      }
    }
    fd = take_fd_if_unused(o);
  }
  if (tcp_since != 0) {
    obs::Shard& m = obs::local();
    m.add(obs::Counter::tcp_closed);
    m.observe(obs::Hist::tcp_connection, static_cast<std::uint64_t>(monotonic_ns() - tcp_since));
  }
  return close_fd(fd);
}

void drop_handle(IoObject* o) noexcept {
  close(o);
  bool done;
  {
    LockGuard g(o->lock);
    o->handle = false;
    done = unused(o);
  }
  if (done) recycle(o);
}

void forget_poller(const Backend* b) noexcept {
  table().for_each([b](IoObject* o) {
    LockGuard g(o->lock);
    if (o->poller == b) {
      o->poller = nullptr;
      o->ready[0] = o->ready[1] = false;
    }
  });
}

// Returns with the object's lock held, which the analysis cannot express
// for a returned object (callers use assert_held()).
IoObject* lock_token(std::uint64_t token) noexcept WEFT_NO_THREAD_SAFETY_ANALYSIS {
  IoObject* o = table().find(static_cast<std::uint32_t>(token));
  if (o == nullptr) return nullptr;
  o->lock.lock();
  if (o->gen != static_cast<std::uint32_t>(token >> 32) || o->fd < 0) {
    o->lock.unlock();
    return nullptr;
  }
  return o;
}

}  // namespace weft::detail::io
