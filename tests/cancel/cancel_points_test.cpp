// Cancellation wakes a fiber parked in each kind of blocking operation, as a
// parameterised list (issue 4): every blocking operation of the public API
// crossed with every way cancellation arrives.
//
// Each case: the victim fiber is provably parked in the operation (its
// control block says parked, with a waiter published for cancellation),
// then cancellation is delivered; the call throws weft::Cancelled (absorbed
// by move_on_after / a self-cancelled scope, TimedOut from fail_after), the
// victim's destructors ran, and the primitive is left usable and as if the
// call had never been made (the mutex can be taken by someone else, the
// semaphore's count is intact, the channel still holds its value, a stale
// registration does not steal a later value, bytes are not lost, ...).
// I/O operations run on both reactor backends.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "fiber/fiber.hpp"
#include "sched/worker.hpp"
#include "signal/signal_impl.hpp"
#include "weft/signal.hpp"
#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace weft::test {
namespace {

// The deadline of the move_on_after / fail_after deliveries: long enough
// that the victim is normally parked before it passes (checked, but only
// reported, since a slow machine may not get there in time), short enough
// to keep ~60 cases quick.
constexpr auto kDeadline = 60ms;

// ---------------------------------------------------------------------------
// Blocking operations

/// One blocking operation: set up on the test thread (a primitive in a state
/// where the call blocks), blocked on by the victim fiber, verified on the
/// test thread once the victim has ended.
class Op {
 public:
  virtual ~Op() = default;
  virtual void setup(Runtime&) {}
  /// Runs in the victim fiber; must block until cancelled.
  virtual void block() = 0;
  /// Checks that the primitive is usable and unchanged.
  virtual void verify(Runtime&) {}
  /// Releases I/O objects while the runtime is still alive.
  virtual void teardown(Runtime&) {}
};

class SleepOp : public Op {
 public:
  void block() override { this_fiber::sleep_for(1h); }
  void verify(Runtime& rt) override {
    rt.block_on([] {
      auto t0 = Clock::now();
      this_fiber::sleep_for(2ms);
      EXPECT_GE(Clock::now() - t0, 2ms);
    });
  }
};

class JoinOp : public Op {
 public:
  void setup(Runtime& rt) override {
    target_ = rt.spawn([this] {
      gate_.wait();
      return 42;
    });
  }
  void block() override { (void)target_.join(); }
  void verify(Runtime&) override {
    // The handle stays valid after a cancelled join; its fiber is untouched.
    ASSERT_TRUE(target_.joinable()) << "a cancelled join consumed the handle";
    EXPECT_FALSE(target_.is_finished()) << "the joined fiber was cancelled with its joiner";
    gate_.set();
    EXPECT_EQ(target_.join(), 42);
  }

 private:
  Event gate_;
  JoinHandle<int> target_;
};

class BlockingJoinOp : public Op {
 public:
  void setup(Runtime& rt) override {
    task_ = rt.block_on([this] {
      return spawn_blocking([this] {
        while (!release_.load() && !this_fiber::is_cancelled()) {
          std::this_thread::sleep_for(1ms);
        }
        return this_fiber::is_cancelled() ? -1 : 7;
      });
    });
  }
  void block() override { (void)task_.join(); }
  void verify(Runtime&) override {
    ASSERT_TRUE(task_.joinable()) << "a cancelled join consumed the handle";
    release_ = true;
    EXPECT_EQ(task_.join(), 7) << "the joined blocking task was cancelled with its joiner";
  }

 private:
  std::atomic<bool> release_{false};
  JoinHandle<int> task_;
};

class SendFullOp : public Op {
 public:
  void setup(Runtime&) override { ASSERT_TRUE(ch_.first.try_send(1).ok()); }
  void block() override { (void)ch_.first.send(2); }
  void verify(Runtime&) override {
    EXPECT_EQ(ch_.second.size(), 1u);
    auto r = ch_.second.try_recv();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 1);
    EXPECT_EQ(ch_.second.try_recv().status(), ChannelStatus::empty)
        << "the cancelled send delivered its value";
    EXPECT_TRUE(ch_.first.try_send(3).ok());
    auto r3 = ch_.second.try_recv();
    ASSERT_TRUE(r3.ok());
    EXPECT_EQ(*r3, 3);
  }

 private:
  std::pair<Sender<int>, Receiver<int>> ch_ = channel<int>(1);
};

class SendRendezvousOp : public Op {
 public:
  void block() override { (void)ch_.first.send(5); }
  void verify(Runtime& rt) override {
    EXPECT_EQ(ch_.second.try_recv().status(), ChannelStatus::empty)
        << "a receiver took the value of a cancelled rendezvous send";
    auto h = rt.spawn([this] { return ch_.first.send(6).ok(); });
    auto v = ch_.second.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, 6);
    EXPECT_TRUE(h.join());
  }

 private:
  std::pair<Sender<int>, Receiver<int>> ch_ = channel<int>(0);
};

class RecvEmptyOp : public Op {
 public:
  explicit RecvEmptyOp(std::size_t capacity) : ch_(channel<int>(capacity)), cap_(capacity) {}
  void block() override { (void)ch_.second.recv(); }
  void verify(Runtime& rt) override {
    if (cap_ == 0) {
      // A stale receiver registration would take this value and lose it.
      EXPECT_EQ(ch_.first.try_send(9).status(), ChannelStatus::full)
          << "a cancelled rendezvous receiver is still registered";
      auto h = rt.spawn([this] { return ch_.second.recv(); });
      EXPECT_TRUE(ch_.first.send(10).ok());
      EXPECT_EQ(h.join(), std::optional<int>(10));
    } else {
      EXPECT_TRUE(ch_.first.try_send(9).ok());
      EXPECT_EQ(ch_.second.size(), 1u) << "the cancelled recv consumed the value";
      auto r = ch_.second.try_recv();
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(*r, 9);
    }
  }

 private:
  std::pair<Sender<int>, Receiver<int>> ch_;
  std::size_t cap_;
};

class SelectRecvOp : public Op {
 public:
  void block() override {
    (void)select(on_recv(buffered_.second, [this](int) { fired_ = true; }),
                 on_recv(rendezvous_.second, [this](int) { fired_ = true; }));
  }
  void verify(Runtime&) override {
    EXPECT_FALSE(fired_.load());
    EXPECT_TRUE(buffered_.first.try_send(1).ok());
    EXPECT_EQ(buffered_.second.size(), 1u) << "the cancelled select took the value";
    EXPECT_EQ(rendezvous_.first.try_send(2).status(), ChannelStatus::full)
        << "the cancelled select is still registered as a receiver";
    EXPECT_EQ(buffered_.second.try_recv().value(), 1);
  }

 private:
  std::atomic<bool> fired_{false};
  std::pair<Sender<int>, Receiver<int>> buffered_ = channel<int>(1);
  std::pair<Sender<int>, Receiver<int>> rendezvous_ = channel<int>(0);
};

class SelectSendOp : public Op {
 public:
  void setup(Runtime&) override { ASSERT_TRUE(full_.first.try_send("one").ok()); }
  void block() override {
    (void)select(on_send(full_.first, a_, [this] { fired_ = true; }),
                 on_send(rendezvous_.first, b_, [this] { fired_ = true; }));
  }
  void verify(Runtime&) override {
    EXPECT_FALSE(fired_.load());
    EXPECT_EQ(a_, "alpha") << "an lvalue send case was moved from without firing";
    EXPECT_EQ(b_, "beta") << "an lvalue send case was moved from without firing";
    EXPECT_EQ(full_.second.size(), 1u);
    EXPECT_EQ(full_.second.try_recv().value(), "one");
    EXPECT_EQ(full_.second.try_recv().status(), ChannelStatus::empty);
    EXPECT_EQ(rendezvous_.second.try_recv().status(), ChannelStatus::empty)
        << "the cancelled select is still registered as a sender";
  }

 private:
  std::atomic<bool> fired_{false};
  std::string a_ = "alpha";
  std::string b_ = "beta";
  std::pair<Sender<std::string>, Receiver<std::string>> full_ = channel<std::string>(1);
  std::pair<Sender<std::string>, Receiver<std::string>> rendezvous_ = channel<std::string>(0);
};

class MutexOp : public Op {
 public:
  void setup(Runtime&) override { m_.lock(); }  // held by the test thread
  void block() override {
    m_.lock();
    m_.unlock();
  }
  void verify(Runtime& rt) override {
    m_.unlock();
    // Someone else (a fiber) can take it; it is free afterwards.
    rt.block_on([this] {
      m_.lock();
      m_.unlock();
    });
    EXPECT_TRUE(m_.try_lock()) << "the cancelled locker took or kept the lock";
    m_.unlock();
  }

 private:
  Mutex m_;
};

class RwLockOp : public Op {
 public:
  void setup(Runtime&) override { m_.lock_shared(); }  // a reader holds it
  void block() override {
    m_.lock();
    m_.unlock();
  }
  void verify(Runtime&) override {
    EXPECT_TRUE(m_.try_lock_shared()) << "a cancelled writer still blocks new readers";
    m_.unlock_shared();
    m_.unlock_shared();
    EXPECT_TRUE(m_.try_lock()) << "a cancelled writer holds the lock";
    m_.unlock();
  }

 private:
  SharedMutex m_;
};

class RwLockSharedOp : public Op {
 public:
  void setup(Runtime&) override { m_.lock(); }  // a writer holds it
  void block() override {
    m_.lock_shared();
    m_.unlock_shared();
  }
  void verify(Runtime&) override {
    m_.unlock();
    EXPECT_TRUE(m_.try_lock()) << "a cancelled reader holds the lock";
    m_.unlock();
    EXPECT_TRUE(m_.try_lock_shared());
    m_.unlock_shared();
  }

 private:
  SharedMutex m_;
};

class SemaphoreOp : public Op {
 public:
  void block() override {
    sem_.acquire(2);
    sem_.release(2);
  }
  void verify(Runtime&) override {
    EXPECT_EQ(sem_.available(), 1) << "the cancelled acquire took permits";
    sem_.release(1);
    EXPECT_EQ(sem_.available(), 2);
    EXPECT_TRUE(sem_.try_acquire(2)) << "a cancelled waiter still queues ahead";
    EXPECT_EQ(sem_.available(), 0);
  }

 private:
  Semaphore sem_{1};
};

class CondVarOp : public Op {
 public:
  void block() override {
    std::unique_lock lk(m_);
    try {
      cv_.wait(lk, [this] { return flag_; });
    } catch (const Cancelled&) {
      relocked_ = lk.owns_lock();
      throw;
    }
  }
  void verify(Runtime& rt) override {
    EXPECT_TRUE(relocked_.load()) << "CondVar::wait must relock before Cancelled propagates";
    EXPECT_TRUE(m_.try_lock()) << "the cancelled waiter left the mutex locked";
    m_.unlock();
    // Still usable: a new waiter gets a notification.
    auto h = rt.spawn([this] {
      std::unique_lock lk(m_);
      return cv_.wait_for(lk, kPatience, [this] { return flag_; });
    });
    EXPECT_TRUE(eventually([&] { return rt.stats().fibers_parked >= 1 || h.is_finished(); }));
    {
      std::lock_guard g(m_);
      flag_ = true;
    }
    cv_.notify_all();
    EXPECT_TRUE(h.join());
  }

 private:
  Mutex m_;
  CondVar cv_;
  bool flag_ = false;  // guarded by m_
  std::atomic<bool> relocked_{false};
};

class BarrierOp : public Op {
 public:
  void block() override { (void)barrier_.arrive_and_wait(); }
  void verify(Runtime& rt) override {
    EXPECT_EQ(barrier_.generation(), 0u);
    EXPECT_EQ(barrier_.arrive_and_wait_for(20ms), Barrier::Result::timed_out)
        << "the cancelled arrival was not withdrawn";
    auto h = rt.spawn([this] { return barrier_.arrive_and_wait(); });
    const bool leader = barrier_.arrive_and_wait();
    EXPECT_NE(leader, h.join()) << "exactly one leader";
    EXPECT_EQ(barrier_.generation(), 1u);
  }

 private:
  Barrier barrier_{2};
};

class WaitGroupOp : public Op {
 public:
  void block() override { wg_.wait(); }
  void verify(Runtime&) override {
    EXPECT_EQ(wg_.count(), 1);
    wg_.done();
    EXPECT_EQ(wg_.count(), 0);
    wg_.wait();
  }

 private:
  WaitGroup wg_{1};
};

class LatchOp : public Op {
 public:
  void block() override { latch_.wait(); }
  void verify(Runtime&) override {
    EXPECT_FALSE(latch_.try_wait());
    latch_.count_down();
    EXPECT_TRUE(latch_.try_wait());
    latch_.wait();
  }

 private:
  Latch latch_{1};
};

class EventOp : public Op {
 public:
  void block() override { event_.wait(); }
  void verify(Runtime&) override {
    EXPECT_FALSE(event_.is_set());
    event_.set();
    event_.wait();
  }

 private:
  Event event_;
};

class NotifyOp : public Op {
 public:
  void block() override { notify_.wait(); }
  void verify(Runtime&) override {
    // With no waiter left, notify_one stores the permit; a cancelled waiter
    // still queued would swallow it.
    notify_.notify_one();
    EXPECT_TRUE(notify_.wait_for(200ms)) << "the notification went to the cancelled waiter";
  }

 private:
  Notify notify_;
};

class TcpAcceptOp : public Op {
 public:
  void setup(Runtime& rt) override {
    rt.block_on(
        [this] { listener_.emplace(net::TcpListener::bind(net::Address::loopback_ipv4(0))); });
  }
  void block() override { (void)listener_->accept(); }
  void verify(Runtime& rt) override {
    rt.block_on([this] {
      auto c = net::TcpStream::connect(listener_->local_address(), kPatience);
      auto s = listener_->accept(kPatience);
      c.write_all("ping", kPatience);
      char buf[4];
      s.read_exact(buf, 4, kPatience);
      EXPECT_EQ(std::string(buf, 4), "ping");
    });
  }
  void teardown(Runtime& rt) override {
    rt.block_on([this] { listener_.reset(); });
  }

 private:
  std::optional<net::TcpListener> listener_;
};

/// Read on a connected stream: a cancelled read must not consume bytes.
template <class S>
void check_stream_after_cancelled_read(S& writer, S& reader) {
  writer.write_all("xyz", kPatience);
  char buf[3];
  reader.read_exact(buf, 3, kPatience);
  EXPECT_EQ(std::string(buf, 3), "xyz") << "bytes were lost to the cancelled read";
}

class TcpReadOp : public Op {
 public:
  void setup(Runtime& rt) override {
    rt.block_on([this] {
      auto l = net::TcpListener::bind(net::Address::loopback_ipv4(0));
      client_.emplace(net::TcpStream::connect(l.local_address(), kPatience));
      server_.emplace(l.accept(kPatience));
    });
  }
  void block() override {
    char buf[16];
    (void)server_->read(buf, sizeof buf);
  }
  void verify(Runtime& rt) override {
    rt.block_on([this] { check_stream_after_cancelled_read(*client_, *server_); });
  }
  void teardown(Runtime& rt) override {
    rt.block_on([this] {
      client_.reset();
      server_.reset();
    });
  }

 private:
  std::optional<net::TcpStream> client_, server_;
};

class UnixReadOp : public Op {
 public:
  void setup(Runtime& rt) override {
    rt.block_on([this] {
      auto p = net::UnixStream::pair();
      a_.emplace(std::move(p.first));
      b_.emplace(std::move(p.second));
    });
  }
  void block() override {
    char buf[16];
    (void)b_->read(buf, sizeof buf);
  }
  void verify(Runtime& rt) override {
    rt.block_on([this] { check_stream_after_cancelled_read(*a_, *b_); });
  }
  void teardown(Runtime& rt) override {
    rt.block_on([this] {
      a_.reset();
      b_.reset();
    });
  }

 private:
  std::optional<net::UnixStream> a_, b_;
};

class ChildWaitOp : public Op {
 public:
  void setup(Runtime& rt) override {
    rt.block_on([this] { child_.emplace(process::Command("/bin/sleep").arg("1000").spawn()); });
  }
  void block() override { (void)child_->wait(); }
  void verify(Runtime& rt) override {
    // Documented: a cancelled wait terminates the child (SIGTERM) and reaps
    // it before Cancelled propagates; the status stays available.
    rt.block_on([this] {
      auto st = child_->try_wait();
      ASSERT_TRUE(st.has_value()) << "the child was not reaped by the cancelled wait";
      EXPECT_EQ(st->signal(), std::optional<int>(SIGTERM)) << st->to_string();
      EXPECT_EQ(child_->wait(), *st);
    });
  }
  void teardown(Runtime& rt) override {
    rt.block_on([this] { child_.reset(); });
  }

 private:
  std::optional<process::Child> child_;
};

class SignalWaitOp : public Op {
 public:
  void block() override { (void)weft::signal::wait({SIGUSR2}); }
  void verify(Runtime& rt) override {
    EXPECT_EQ(detail::sig::registered_waits(), 0u) << "the cancelled wait is still registered";
    // A new wait still receives the signal.
    auto h = rt.spawn([] { return weft::signal::wait({SIGUSR2}); });
    ASSERT_TRUE(eventually([] { return detail::sig::registered_waits() >= 1; }));
    ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
    ASSERT_TRUE(eventually([&] { return h.is_finished(); })) << "the signal was not delivered";
    EXPECT_EQ(h.join(), SIGUSR2);
  }
};

enum class OpKind {
  sleep,
  join,
  blocking_join,
  send_full,
  send_rendezvous,
  recv_empty,
  recv_rendezvous,
  select_recv,
  select_send,
  mutex_lock,
  rwlock_lock,
  rwlock_lock_shared,
  semaphore_acquire,
  condvar_wait,
  barrier_arrive,
  waitgroup_wait,
  latch_wait,
  event_wait,
  notify_wait,
  tcp_accept,
  tcp_read,
  unix_read,
  child_wait,
  signal_wait,
};

constexpr OpKind kAllOps[] = {
    OpKind::sleep,
    OpKind::join,
    OpKind::blocking_join,
    OpKind::send_full,
    OpKind::send_rendezvous,
    OpKind::recv_empty,
    OpKind::recv_rendezvous,
    OpKind::select_recv,
    OpKind::select_send,
    OpKind::mutex_lock,
    OpKind::rwlock_lock,
    OpKind::rwlock_lock_shared,
    OpKind::semaphore_acquire,
    OpKind::condvar_wait,
    OpKind::barrier_arrive,
    OpKind::waitgroup_wait,
    OpKind::latch_wait,
    OpKind::event_wait,
    OpKind::notify_wait,
    OpKind::tcp_accept,
    OpKind::tcp_read,
    OpKind::unix_read,
    OpKind::child_wait,
    OpKind::signal_wait,
};

bool is_io(OpKind k) {
  return k == OpKind::tcp_accept || k == OpKind::tcp_read || k == OpKind::unix_read ||
         k == OpKind::child_wait || k == OpKind::signal_wait;
}

const char* op_name(OpKind k) {
  switch (k) {
    case OpKind::sleep:
      return "sleep_for";
    case OpKind::join:
      return "join";
    case OpKind::blocking_join:
      return "spawn_blocking_join";
    case OpKind::send_full:
      return "send_full_bounded";
    case OpKind::send_rendezvous:
      return "send_rendezvous";
    case OpKind::recv_empty:
      return "recv_empty";
    case OpKind::recv_rendezvous:
      return "recv_rendezvous";
    case OpKind::select_recv:
      return "select_recv";
    case OpKind::select_send:
      return "select_send";
    case OpKind::mutex_lock:
      return "Mutex_lock";
    case OpKind::rwlock_lock:
      return "RwLock_lock";
    case OpKind::rwlock_lock_shared:
      return "RwLock_lock_shared";
    case OpKind::semaphore_acquire:
      return "Semaphore_acquire";
    case OpKind::condvar_wait:
      return "CondVar_wait";
    case OpKind::barrier_arrive:
      return "Barrier_arrive_and_wait";
    case OpKind::waitgroup_wait:
      return "WaitGroup_wait";
    case OpKind::latch_wait:
      return "Latch_wait";
    case OpKind::event_wait:
      return "Event_wait";
    case OpKind::notify_wait:
      return "Notify_wait";
    case OpKind::tcp_accept:
      return "TcpListener_accept";
    case OpKind::tcp_read:
      return "TcpStream_read";
    case OpKind::unix_read:
      return "UnixStream_read";
    case OpKind::child_wait:
      return "Child_wait";
    case OpKind::signal_wait:
      return "signal_wait";
  }
  return "?";
}

std::unique_ptr<Op> make_op(OpKind k) {
  switch (k) {
    case OpKind::sleep:
      return std::make_unique<SleepOp>();
    case OpKind::join:
      return std::make_unique<JoinOp>();
    case OpKind::blocking_join:
      return std::make_unique<BlockingJoinOp>();
    case OpKind::send_full:
      return std::make_unique<SendFullOp>();
    case OpKind::send_rendezvous:
      return std::make_unique<SendRendezvousOp>();
    case OpKind::recv_empty:
      return std::make_unique<RecvEmptyOp>(4);
    case OpKind::recv_rendezvous:
      return std::make_unique<RecvEmptyOp>(0);
    case OpKind::select_recv:
      return std::make_unique<SelectRecvOp>();
    case OpKind::select_send:
      return std::make_unique<SelectSendOp>();
    case OpKind::mutex_lock:
      return std::make_unique<MutexOp>();
    case OpKind::rwlock_lock:
      return std::make_unique<RwLockOp>();
    case OpKind::rwlock_lock_shared:
      return std::make_unique<RwLockSharedOp>();
    case OpKind::semaphore_acquire:
      return std::make_unique<SemaphoreOp>();
    case OpKind::condvar_wait:
      return std::make_unique<CondVarOp>();
    case OpKind::barrier_arrive:
      return std::make_unique<BarrierOp>();
    case OpKind::waitgroup_wait:
      return std::make_unique<WaitGroupOp>();
    case OpKind::latch_wait:
      return std::make_unique<LatchOp>();
    case OpKind::event_wait:
      return std::make_unique<EventOp>();
    case OpKind::notify_wait:
      return std::make_unique<NotifyOp>();
    case OpKind::tcp_accept:
      return std::make_unique<TcpAcceptOp>();
    case OpKind::tcp_read:
      return std::make_unique<TcpReadOp>();
    case OpKind::unix_read:
      return std::make_unique<UnixReadOp>();
    case OpKind::child_wait:
      return std::make_unique<ChildWaitOp>();
    case OpKind::signal_wait:
      return std::make_unique<SignalWaitOp>();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Ways cancellation arrives

enum class Via {
  handle_cancel,       ///< JoinHandle::cancel() from the test thread
  scope_cancel,        ///< Scope::cancel() from another fiber
  move_on_after,       ///< the deadline of an enclosing move_on_after
  fail_after,          ///< the deadline of an enclosing fail_after (TimedOut)
  token_from_thread,   ///< with_cancellation(token) + source.cancel() on a std::thread
  grandparent_cancel,  ///< JoinHandle::cancel() of the victim's grandparent
};

constexpr Via kAllVias[] = {Via::handle_cancel, Via::scope_cancel,      Via::move_on_after,
                            Via::fail_after,    Via::token_from_thread, Via::grandparent_cancel};

const char* via_name(Via v) {
  switch (v) {
    case Via::handle_cancel:
      return "JoinHandleCancel";
    case Via::scope_cancel:
      return "ScopeCancel";
    case Via::move_on_after:
      return "MoveOnAfter";
    case Via::fail_after:
      return "FailAfter";
    case Via::token_from_thread:
      return "TokenFromThread";
    case Via::grandparent_cancel:
      return "GrandparentCancel";
  }
  return "?";
}

struct Case {
  OpKind op;
  Via via;
  IoBackend backend;
};

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (OpKind k : kAllOps) {
    for (Via v : kAllVias) {
      if (is_io(k)) {
        out.push_back({k, v, IoBackend::io_uring});
        out.push_back({k, v, IoBackend::epoll});
      } else {
        out.push_back({k, v, IoBackend::auto_detect});
      }
    }
  }
  return out;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << op_name(c.op) << " / " << via_name(c.via) << " / " << backend_name(c.backend);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = std::string(op_name(info.param.op)) + "_" + via_name(info.param.via);
  if (info.param.backend != IoBackend::auto_detect)
    n += std::string("_") + backend_name(info.param.backend);
  return n;
}

/// What the victim reports.
struct Probe {
  std::atomic<detail::Fiber*> fiber{nullptr};
  std::atomic<bool> entered{false};
  std::atomic<bool> returned{false};
  std::atomic<bool> cancelled{false};
  std::atomic<bool> other_error{false};
  std::atomic<int> dtors{0};
  std::mutex mu;
  std::string other;  // guarded by mu

  bool ended() const { return returned.load() || cancelled.load() || other_error.load(); }
};

/// The victim's body: records how the blocking call ended, with a guard
/// whose destructor must run.
void run_victim(Probe& p, Op& op) {
  struct Guard {
    Probe* p;
    ~Guard() { p->dtors.fetch_add(1); }
  } guard{&p};
  p.fiber.store(detail::current_fiber());
  p.entered.store(true);
  try {
    op.block();
    p.returned.store(true);
  } catch (const Cancelled&) {
    p.cancelled.store(true);
    throw;
  } catch (...) {
    {
      std::lock_guard g(p.mu);
      p.other = current_message();
    }
    p.other_error.store(true);
    throw;
  }
}

/// True once the victim is parked in its operation with a waiter published
/// (or has ended, which the caller then reports).
bool parked_or_ended(const Probe& p) {
  if (p.ended()) return true;
  detail::Fiber* f = p.fiber.load();
  return f != nullptr && f->park.load(std::memory_order_acquire) == detail::kParked &&
         f->current_waiter.load(std::memory_order_acquire) != nullptr;
}

/// Waits until the victim is provably parked; fails if it ended instead.
::testing::AssertionResult wait_parked(Probe& p) {
  if (!eventually([&] { return parked_or_ended(p); })) {
    return ::testing::AssertionFailure() << "the victim never parked";
  }
  if (p.ended()) {
    std::lock_guard g(p.mu);
    return ::testing::AssertionFailure()
           << "the operation ended without cancellation (returned=" << p.returned.load()
           << ", cancelled=" << p.cancelled.load() << ", error='" << p.other << "')";
  }
  return ::testing::AssertionSuccess();
}

class CancelPoint : public ::testing::TestWithParam<Case> {};

INSTANTIATE_TEST_SUITE_P(Table, CancelPoint, ::testing::ValuesIn(all_cases()), case_name);

TEST_P(CancelPoint, WakesParkedFiberAndLeavesPrimitiveUsable) {
  const Case c = GetParam();
  std::unique_ptr<Op> op = make_op(c.op);  // outlives the runtime (its primitives may be waited on)
  Config cfg = workers_config(2);
  if (c.backend != IoBackend::auto_detect) cfg.io_backend = c.backend;
  Runtime rt(cfg);
  if (c.backend != IoBackend::auto_detect) {
    ASSERT_EQ(rt.io_backend(), c.backend);
  }
  struct Teardown {
    Runtime& rt;
    Op& op;
    ~Teardown() { op.teardown(rt); }
  } teardown{rt, *op};

  op->setup(rt);
  if (::testing::Test::HasFatalFailure()) return;
  Probe p;

  switch (c.via) {
    case Via::handle_cancel: {
      auto h = rt.spawn([&] { run_victim(p, *op); });
      ASSERT_TRUE(wait_parked(p));
      h.cancel();
      EXPECT_THROW(h.join(), Cancelled);
      break;
    }
    case Via::scope_cancel: {
      std::atomic<Scope*> scope_ptr{nullptr};
      std::optional<ScopedHandle<void>> victim;
      auto runner = rt.spawn([&] {
        scope([&](Scope& s) {
          victim.emplace(s.spawn([&] { run_victim(p, *op); }));
          scope_ptr.store(&s);
        });
        return this_fiber::is_cancelled();
      });
      ASSERT_TRUE(wait_parked(p));
      ASSERT_TRUE(eventually([&] { return scope_ptr.load() != nullptr; }));
      rt.spawn([&] { scope_ptr.load()->cancel(); }).join();
      bool runner_cancelled = true;
      EXPECT_NO_THROW(runner_cancelled = runner.join())
          << "a scope must absorb its own Scope::cancel() (void body)";
      EXPECT_FALSE(runner_cancelled) << "Scope::cancel() leaked out of the scope";
      ASSERT_TRUE(victim.has_value());
      EXPECT_THROW(victim->join(), Cancelled);
      break;
    }
    case Via::move_on_after:
    case Via::fail_after: {
      const bool fail = c.via == Via::fail_after;
      struct Outcome {
        int how = 0;  // 1 completed, 2 timed out (empty / TimedOut), 3 Cancelled
        Clock::duration elapsed{};
        bool cancelled_after = true;
        bool sleep_after_ok = false;
      };
      auto h = rt.spawn([&] {
        Outcome o;
        const auto t0 = Clock::now();
        try {
          if (fail) {
            fail_after(kDeadline, [&] { run_victim(p, *op); });
            o.how = 1;
          } else {
            o.how = move_on_after(kDeadline, [&] { run_victim(p, *op); }) ? 1 : 2;
          }
        } catch (const TimedOut&) {
          o.how = 2;
        } catch (const Cancelled&) {
          o.how = 3;
        }
        o.elapsed = Clock::now() - t0;
        // After its own timeout the fiber is not cancelled any more.
        o.cancelled_after = this_fiber::is_cancelled();
        try {
          this_fiber::sleep_for(1ms);
          o.sleep_after_ok = true;
        } catch (...) {
        }
        return o;
      });
      const bool seen_parked = eventually([&] { return parked_or_ended(p); }) && !p.ended();
      if (!seen_parked) {
        std::printf("note: %s: victim not seen parked before its deadline\n",
                    case_name({c, 0}).c_str());
      }
      const Outcome o = h.join();
      EXPECT_EQ(o.how, 2) << "1 = completed, 2 = timed out, 3 = Cancelled leaked";
      EXPECT_GE(o.elapsed, kDeadline) << "the timeout returned before its deadline";
      EXPECT_FALSE(o.cancelled_after) << "the fiber is still cancelled after its own timeout";
      EXPECT_TRUE(o.sleep_after_ok) << "a sleep after the timeout threw";
      break;
    }
    case Via::token_from_thread: {
      CancellationSource src;
      auto h = rt.spawn([&] {
        try {
          with_cancellation(src.token(), [&] { run_victim(p, *op); });
          return 0;
        } catch (const Cancelled&) {
          // Only the with_cancellation scope was cancelled, not the fiber.
          if (this_fiber::is_cancelled()) return 2;
          try {
            this_fiber::sleep_for(1ms);
          } catch (const Cancelled&) {
            return 3;
          }
          return 1;
        }
      });
      ASSERT_TRUE(wait_parked(p));
      std::atomic<bool> did{false};
      std::thread t([&] { did = src.cancel(); });
      t.join();
      EXPECT_TRUE(did.load());
      EXPECT_EQ(h.join(), 1) << "0 = returned, 1 = Cancelled, 2/3 = the fiber itself cancelled";
      break;
    }
    case Via::grandparent_cancel: {
      auto a = rt.spawn([&] {
        auto b = spawn([&] {
          auto v = spawn([&] { run_victim(p, *op); });
          v.join();
        });
        b.join();
      });
      ASSERT_TRUE(wait_parked(p));
      a.cancel();
      EXPECT_THROW(a.join(), Cancelled);
      break;
    }
  }

  ASSERT_TRUE(eventually([&] { return p.dtors.load() == 1; }))
      << "the victim's destructors did not run";
  EXPECT_TRUE(p.cancelled.load()) << "the blocking call did not throw weft::Cancelled";
  EXPECT_FALSE(p.returned.load()) << "the blocking call returned normally";
  {
    std::lock_guard g(p.mu);
    EXPECT_FALSE(p.other_error.load()) << "the blocking call threw: " << p.other;
  }
  EXPECT_EQ(p.dtors.load(), 1);
  op->verify(rt);
  expect_no_live_fibers(rt);
}

// A fiber cancelled before it blocks: every operation of the table throws
// at once when entered already cancelled (the request is not lost because
// nobody was parked when it arrived).
class CancelledBeforeBlocking : public ::testing::TestWithParam<OpKind> {};

INSTANTIATE_TEST_SUITE_P(Table, CancelledBeforeBlocking, ::testing::ValuesIn(kAllOps),
                         [](const ::testing::TestParamInfo<OpKind>& i) {
                           return std::string(op_name(i.param));
                         });

TEST_P(CancelledBeforeBlocking, ThrowsAtOnceAndLeavesPrimitiveUsable) {
  std::unique_ptr<Op> op = make_op(GetParam());
  Runtime rt(workers_config(2));
  struct Teardown {
    Runtime& rt;
    Op& op;
    ~Teardown() { op.teardown(rt); }
  } teardown{rt, *op};
  op->setup(rt);
  if (::testing::Test::HasFatalFailure()) return;
  Probe p;
  std::atomic<bool> spinning{false};
  auto h = rt.spawn([&] {
    spinning = true;
    // Spin (no blocking call) until the cancellation has arrived.
    while (!this_fiber::is_cancelled()) this_fiber::yield();
    run_victim(p, *op);
  });
  ASSERT_TRUE(eventually([&] { return spinning.load(); }));
  h.cancel();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_TRUE(p.entered.load());
  EXPECT_TRUE(p.cancelled.load());
  EXPECT_FALSE(p.returned.load());
  EXPECT_EQ(p.dtors.load(), 1);
  op->verify(rt);
}

}  // namespace
}  // namespace weft::test
