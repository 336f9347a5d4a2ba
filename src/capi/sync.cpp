// weft.h: Mutex, CondVar, WaitGroup over weft's fiber-aware primitives.
#include "weft/sync.hpp"

#include <mutex>

#include "capi/capi.hpp"

struct weft_mutex {
  weft::Mutex m;
};
struct weft_cond {
  weft::CondVar cv;
};
struct weft_waitgroup {
  explicit weft_waitgroup(int64_t initial) : wg(initial) {}
  weft::WaitGroup wg;
};

using weft::capi::gave_up;
using weft::capi::guarded;
using weft::capi::valid_timeout;

extern "C" {

int weft_mutex_new(weft_mutex** out) {
  return weft::capi::new_handle(out);
}

void weft_mutex_free(weft_mutex* m) {
  delete m;
}

int weft_mutex_lock(weft_mutex* m, int64_t timeout_ns) {
  if (m == nullptr || !valid_timeout(timeout_ns)) return -EINVAL;
  if (timeout_ns == 0) return m->m.try_lock() ? 0 : -EAGAIN;
  return guarded([&] {
    if (timeout_ns < 0) {
      m->m.lock();
      return 0;
    }
    return m->m.try_lock_until(weft::capi::deadline_after(timeout_ns)) ? 0 : gave_up(timeout_ns);
  });
}

void weft_mutex_unlock(weft_mutex* m) {
  if (m != nullptr) m->m.unlock();
}

int weft_cond_new(weft_cond** out) {
  return weft::capi::new_handle(out);
}

void weft_cond_free(weft_cond* cv) {
  delete cv;
}

int weft_cond_wait(weft_cond* cv, weft_mutex* m, int64_t timeout_ns) {
  if (cv == nullptr || m == nullptr || !valid_timeout(timeout_ns)) return -EINVAL;
  return guarded([&] {
    // The caller holds m and holds it again afterwards, whatever happens
    // (CondVar relocks before it returns or throws): the unique_lock adopts
    // m for the wait and gives it back with release(), never unlocking it.
    std::unique_lock<weft::Mutex> lock(m->m, std::adopt_lock);
    struct GiveBack {
      std::unique_lock<weft::Mutex>& l;
      ~GiveBack() { (void)l.release(); }
    } give_back{lock};
    if (timeout_ns < 0) {
      cv->cv.wait(lock);
      return 0;
    }
    const std::cv_status s = cv->cv.wait_until(lock, weft::capi::deadline_after(timeout_ns));
    return s == std::cv_status::timeout ? gave_up(timeout_ns) : 0;
  });
}

void weft_cond_signal(weft_cond* cv) {
  if (cv != nullptr) cv->cv.notify_one();
}

void weft_cond_broadcast(weft_cond* cv) {
  if (cv != nullptr) cv->cv.notify_all();
}

int weft_waitgroup_new(int64_t initial, weft_waitgroup** out) {
  return weft::capi::new_handle(out, initial);
}

void weft_waitgroup_free(weft_waitgroup* wg) {
  delete wg;
}

int weft_waitgroup_add(weft_waitgroup* wg, int64_t delta) {
  if (wg == nullptr) return -EINVAL;
  return guarded([&] {
    wg->wg.add(delta);
    return 0;
  });
}

int weft_waitgroup_wait(weft_waitgroup* wg, int64_t timeout_ns) {
  if (wg == nullptr || !valid_timeout(timeout_ns)) return -EINVAL;
  return guarded([&] {
    if (timeout_ns < 0) {
      wg->wg.wait();
      return 0;
    }
    return wg->wg.wait_until(weft::capi::deadline_after(timeout_ns)) ? 0 : gave_up(timeout_ns);
  });
}

}  // extern "C"
