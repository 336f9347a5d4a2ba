// weft::signal: delivering POSIX signals to waiting fibers and threads.
//
// The problem. A signal is delivered to whichever thread of the process the
// kernel picks among those that do not block it, interrupting whatever that
// thread runs. A fiber runtime wants instead a blocking-style call, "wait
// until SIGTERM", that parks a fiber like any other wait.
//
// Rejected: signalfd alone. A signalfd reports a signal only while it stays
// pending, which requires it to be blocked in every thread of the process.
// weft cannot block signals in threads it does not own (the main thread
// before the runtime exists, threads of other libraries, threads created
// with a mask inherited before weft ran); one unblocked thread is enough
// for the kernel to deliver there, and the default action (terminate, for
// SIGINT, SIGTERM, SIGUSR1) runs. Rejected too: sigwait/sigwaitinfo on a
// dedicated thread, for the same reason.
//
// Chosen (Go's os/signal, Tokio's signal-hook, libuv): a process-wide
// handler, installed per signal number on first use with SA_RESTART |
// SA_SIGINFO. It runs on any thread and does only async-signal-safe work:
// one lock-free fetch_add on the signal's counter, one write(2) to an
// eventfd. A dispatcher thread (started lazily, every signal blocked in it)
// sleeps in poll(2) on that eventfd and, when woken, compares counters:
//   * waiters: each registered wait holds a snapshot of its signals'
//     counters, taken under `lock` in the same critical section that links
//     its node. A counter that has moved past the snapshot is a delivery
//     for that wait. The handler increments before it writes the eventfd,
//     and the dispatcher scans under `lock` after reading it, so a signal
//     that lands after the snapshot is seen by a scan that also sees the
//     node (the scan either finds the node linked or waits for the lock
//     the registering side still holds). Nothing is lost, and a signal from
//     before the wait began is never reported to it.
//   * subscriptions (callbacks on the dispatcher thread, used by
//     Runtime::shutdown_on_signals) keep the last counter values they saw.
// Waking follows the wait-list protocol (sync/wait_list.hpp): the
// dispatcher claims the node's Waiter, writes the signal number into the
// wait's record, unlinks and completes; a timeout or cancellation that won
// first leaves the node to its owner, who unlinks it under `lock`.
//
// Memory orderings. The counters are incremented with release in the
// handler and read with acquire; the ordering that matters (counter before
// eventfd, eventfd before the scan) comes from the write/read system calls
// and from `lock`, so the orders only keep TSan's view exact. Everything
// else is guarded by a lock, named at each field.
//
// fork(): the child inherits the handlers, the counters and the eventfd's
// file description (shared with the parent!) but not the dispatcher thread.
// An atfork child handler puts a fresh eventfd at the same descriptor
// number (the handler keeps working), forgets the parent's waiters and
// subscriptions (their threads do not exist in the child) and lets the next
// wait start a new dispatcher.
#include "weft/signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "sched/waiter.hpp"
#include "signal/signal_impl.hpp"
#include "sync/wait_list.hpp"
#include "weft/errors.hpp"

namespace weft::detail::sig {
namespace {

static_assert(NSIG <= kSlots, "signal numbers must fit SigSet");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the handler's fetch_add must be async-signal-safe");

// Touched by the handler, so plain constant-initialised globals (no
// function-local static guard, which may lock, is ever reached from it).
// g_counts[s]: deliveries of s since the process started (handler: +1).
std::atomic<std::uint64_t> g_counts[kSlots];
// The eventfd the handler bumps; -1 until the first installation. Its
// number never changes afterwards (fork replaces the file behind it).
std::atomic<int> g_wake_fd{-1};

void on_signal(int signo, siginfo_t*, void*) noexcept {
  const int saved = errno;
  if (signo > 0 && signo < kSlots) g_counts[signo].fetch_add(1, std::memory_order_release);
  const int fd = g_wake_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);  // EAGAIN: already awake
  }
  errno = saved;
}

std::uint64_t count_of(int signo) noexcept {
  return g_counts[signo].load(std::memory_order_acquire);
}

template <class F>
void for_each_signal(SigSet set, F&& f) {
  for (int s = 1; s < kSlots; ++s) {
    if (set.has(s)) f(s);
  }
}

// One registered wait, on the waiting fiber's (or thread's) stack.
struct WaitRecord {
  SigSet set;
  std::uint64_t snapshot[kSlots] = {};  // counters when the wait began (set members only)
  int delivered = 0;                    // written by the claiming dispatcher

  void take_snapshot() noexcept {
    for_each_signal(set, [&](int s) { snapshot[s] = count_of(s); });
  }
  // The lowest signal of the set delivered since the snapshot, or 0.
  int first_moved() const noexcept {
    for (int s = 1; s < kSlots; ++s) {
      if (set.has(s) && count_of(s) != snapshot[s]) return s;
    }
    return 0;
  }
};

struct Subscription {
  std::uint64_t id = 0;
  SigSet set;
  std::uint64_t seen[kSlots] = {};  // guarded by Registry::subs_mu
  std::function<void(int)> fn;
};

// Process-wide and never destroyed: handlers and the dispatcher may run
// during exit. Lock order: install_mu, then subs_mu, then lock (only the
// atfork handlers hold more than one).
struct Registry {
  Registry() { ::pthread_atfork(&prepare_fork, &parent_after_fork, &child_after_fork); }

  std::mutex install_mu;
  bool installed[kSlots] = {};      // guarded by install_mu: our handler is in place
  bool dispatcher_running = false;  // guarded by install_mu

  std::mutex subs_mu;  // guards subs and every Subscription::seen; callbacks run under it
  std::vector<Subscription*> subs;
  std::uint64_t next_id = 1;  // guarded by subs_mu

  SpinLock lock;
  WaitList waiters WEFT_GUARDED_BY(lock);

  static void prepare_fork() noexcept;
  static void parent_after_fork() noexcept;
  static void child_after_fork() noexcept;
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

// The atfork handlers take every lock before fork() and drop them after,
// in the other handler: beyond what the lock analysis follows.
void Registry::prepare_fork() noexcept WEFT_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  r.install_mu.lock();
  r.subs_mu.lock();
  r.lock.lock();
}

void Registry::parent_after_fork() noexcept WEFT_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  r.lock.unlock();
  r.subs_mu.unlock();
  r.install_mu.unlock();
}

void Registry::child_after_fork() noexcept WEFT_NO_THREAD_SAFETY_ANALYSIS {
  Registry& r = registry();
  // The parent's waits and subscriptions belong to threads and objects
  // that do not work here (a later unsubscribe of one finds nothing).
  r.waiters = WaitList{};
  for (Subscription* sub : r.subs) delete sub;
  r.subs.clear();
  r.dispatcher_running = false;
  const int old_fd = g_wake_fd.load(std::memory_order_relaxed);
  if (old_fd >= 0) {
    const int fresh = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fresh >= 0) {
      ::dup3(fresh, old_fd, O_CLOEXEC);
      ::close(fresh);
    }
  }
  r.lock.unlock();
  r.subs_mu.unlock();
  r.install_mu.unlock();
}

// Dispatcher thread: one pass over waiters and subscriptions.
void dispatch(Registry& r) {
  {
    LockGuard g(r.lock);
    WaitNode* n = r.waiters.head;
    while (n != nullptr) {
      WaitNode* const next = n->next;  // n may be gone once completed
      auto* rec = static_cast<WaitRecord*>(n->slot);
      if (const int s = rec->first_moved(); s != 0) {
        remove(r.waiters, n);
        // Losing the claim means a timeout or cancellation won: the owner
        // finds its node unlinked and returns.
        if (n->waiter->claim()) {
          rec->delivered = s;
          n->granted = true;
          n->waiter->complete(Waiter::kNotified);
        }
      }
      n = next;
    }
  }
  std::lock_guard g(r.subs_mu);
  for (Subscription* sub : r.subs) {
    for_each_signal(sub->set, [&](int s) {
      const std::uint64_t c = count_of(s);
      if (c != sub->seen[s]) {
        sub->seen[s] = c;
        sub->fn(s);
      }
    });
  }
}

[[noreturn]] void dispatcher_main(int fd) {
  Registry& r = registry();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
      // Cannot happen for a valid eventfd; avoid spinning if it does.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::uint64_t v;
    [[maybe_unused]] const ssize_t n = ::read(fd, &v, sizeof v);  // EAGAIN: nothing new
    dispatch(r);
  }
}

// install_mu held. Starts the dispatcher with every signal blocked, so
// that the kernel never picks it to run a handler (it would only delay its
// own wake-up) and a fork of it is never needed.
void start_dispatcher(Registry& r) {
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread(dispatcher_main, g_wake_fd.load(std::memory_order_relaxed)).detach();
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  r.dispatcher_running = true;
}

// Makes sure the eventfd, the dispatcher and the handlers of `set` exist.
void ensure_ready(SigSet set) {
  Registry& r = registry();
  std::lock_guard g(r.install_mu);
  if (g_wake_fd.load(std::memory_order_relaxed) < 0) {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "weft: signal eventfd");
    // relaxed: handlers only run for signals installed below, and
    // sigaction(2) orders this store before any of them.
    g_wake_fd.store(fd, std::memory_order_relaxed);
  }
  if (!r.dispatcher_running) start_dispatcher(r);
  for_each_signal(set, [&](int s) {
    if (r.installed[s]) return;
    struct sigaction sa {};
    sa.sa_sigaction = &on_signal;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(s, &sa, nullptr) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: sigaction(" + std::to_string(s) + ")");
    }
    r.installed[s] = true;
  });
}

bool allowed(int s) noexcept {
  if (s < 1 || s >= NSIG) return false;
  switch (s) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
      return false;
    default:
      break;
  }
  // glibc keeps 32..SIGRTMIN-1 for its own use (thread cancellation, setxid).
  return s < 32 || s >= SIGRTMIN;
}

}  // namespace

SigSet validated(std::initializer_list<int> signals, const char* what) {
  if (signals.size() == 0) {
    throw std::invalid_argument(std::string("weft: ") + what + ": no signal given");
  }
  SigSet set;
  for (const int s : signals) {
    if (!allowed(s)) {
      throw std::invalid_argument(std::string("weft: ") + what + ": signal " + std::to_string(s) +
                                  " cannot be waited for");
    }
    set.add(s);
  }
  return set;
}

int wait_any(SigSet set, std::int64_t deadline_ns, std::uint64_t* seen) {
  ensure_ready(set);
  Registry& r = registry();
  WaitRecord rec;
  rec.set = set;
  // A listener's wait reports what moved since its own counters (so a
  // signal between two waits is not lost) and advances the one it reports.
  auto report = [&](int s) {
    if (seen != nullptr) seen[s] = count_of(s);
    return s;
  };
  r.lock.lock();
  if (seen != nullptr) {
    for_each_signal(set, [&](int s) { rec.snapshot[s] = seen[s]; });
  } else {
    rec.take_snapshot();  // under lock: see the file comment
  }
  for (;;) {
    // lock held. (Only an early wheel timeout brings us round again; a
    // delivery may have slipped in while we were unlinked.)
    if (const int s = rec.first_moved(); s != 0) {
      r.lock.unlock();
      return report(s);
    }
    Waiter w(WaitReason::signal);
    WaitNode n(&w);
    n.slot = &rec;
    const Waiter::Result res = wait_queued(r.lock, r.waiters, n, deadline_ns, [] {});
    if (res == Waiter::kNotified) {
      // The dispatcher is no thread of our runtime, and after complete()
      // it is still inside unpark(), touching the runtime (run queues,
      // waking a worker's backend). Passing through the lock it holds for
      // the whole pass keeps us from returning - and our caller from
      // ending the last fiber and destroying the runtime - until it is out.
      LockGuard g(r.lock);
      return report(rec.delivered);
    }
    if (res == Waiter::kCancelled) throw Cancelled();
    // kTimedOut. A delivery that raced the timer still counts.
    if (const int s = rec.first_moved(); s != 0) return report(s);
    // The timer wheel clamps very distant deadlines and re-arms on wake-up.
    if (deadline_ns >= 0 && monotonic_ns() >= deadline_ns) throw TimedOut();
    r.lock.lock();
  }
}

void listen(SigSet set, std::uint64_t* seen) {
  ensure_ready(set);
  Registry& r = registry();
  LockGuard g(r.lock);  // as a wait's snapshot (see the file comment)
  for_each_signal(set, [&](int s) { seen[s] = count_of(s); });
}

std::uint64_t subscribe(SigSet set, std::function<void(int)> fn) {
  ensure_ready(set);
  Registry& r = registry();
  auto* sub = new Subscription();
  sub->set = set;
  sub->fn = std::move(fn);
  std::lock_guard g(r.subs_mu);
  for_each_signal(set, [&](int s) { sub->seen[s] = count_of(s); });
  sub->id = r.next_id++;
  try {
    r.subs.push_back(sub);
  } catch (...) {
    delete sub;
    throw;
  }
  return sub->id;
}

void unsubscribe(std::uint64_t id) noexcept {
  Registry& r = registry();
  Subscription* found = nullptr;
  {
    std::lock_guard g(r.subs_mu);  // waits for a callback in progress
    auto it = std::find_if(r.subs.begin(), r.subs.end(),
                           [&](const Subscription* s) { return s->id == id; });
    if (it == r.subs.end()) return;
    found = *it;
    r.subs.erase(it);
  }
  delete found;
}

std::size_t registered_waits() noexcept {
  Registry& r = registry();
  LockGuard g(r.lock);
  std::size_t n = 0;
  for (WaitNode* w = r.waiters.head; w != nullptr; w = w->next) ++n;
  return n;
}

}  // namespace weft::detail::sig

namespace weft::signal {

int wait(std::initializer_list<int> signals, Deadline deadline) {
  return detail::sig::wait_any(detail::sig::validated(signals, "signal::wait"), deadline.ns(),
                               nullptr);
}

static_assert(detail::sig::kSlots <= 65, "Listener::seen_ holds one counter per signal slot");

Listener::Listener(std::initializer_list<int> signals)
    : set_(detail::sig::validated(signals, "signal::Listener").bits) {
  detail::sig::listen(detail::sig::SigSet{set_}, seen_);
}

int Listener::wait(Deadline deadline) {
  return detail::sig::wait_any(detail::sig::SigSet{set_}, deadline.ns(), seen_);
}

}  // namespace weft::signal
