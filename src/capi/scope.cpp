// weft.h: scopes, cancellation tokens, deadlines, shields.
//
// A C scope is a weft::scope (Trio's nursery) whose body runs on a small
// helper fiber, the keeper, because C code cannot be the body of a C++
// call that must stay on its stack: the keeper opens the scope, publishes
// the weft::Scope, and waits (shielded) until weft_scope_wait asks it to
// leave the body; weft::scope then waits for every child and rethrows the
// first failure, which weft_scope_wait gets by joining the keeper. So the
// C scope has exactly weft::scope's semantics (first failure cancels the
// siblings, cancellation from outside reaches the children through the
// keeper's node, which hangs under the creating fiber's innermost scope),
// at the cost of one fiber per scope. A child that returns a negative
// errno fails with ChildFailed, carried through the scope as an exception;
// -ECANCELED is turned into weft::Cancelled, which is not a failure.
#include "weft/scope.hpp"

#include <optional>

#include "capi/capi.hpp"
#include "weft/cancel.hpp"
#include "weft/sync.hpp"

namespace weft::capi {
namespace {

/// How a C child's failure travels through weft::scope.
struct ChildFailed {
  int code;
};

}  // namespace
}  // namespace weft::capi

struct weft_scope {
  // Written by the keeper before `opened` is set, read by others after
  // they waited for it (the Event orders the two); valid until the keeper's
  // weft::scope returns, which needs weft_scope_wait (so every caller the
  // contract allows sees it valid). nullptr if the scope never opened.
  weft::Scope* scope = nullptr;
  weft::Event opened;
  weft::Event close;  // set by weft_scope_wait: the keeper leaves the body
  weft::JoinHandle<void> keeper;
};

struct weft_token {
  std::optional<weft::CancellationSource> source;  // empty for an observer
  weft::CancellationToken token;
};

using weft::capi::current_error;
using weft::capi::guarded;

namespace weft::capi {
namespace {

// Joins the keeper, uncancellably (the scope's children must all have
// ended before anyone is told it is over), and turns its end into a code.
int join_keeper(weft_scope* s) noexcept {
  try {
    shield([&] { s->keeper.join(); });
    return 0;
  } catch (const ChildFailed& f) {
    return f.code;
  } catch (...) {
    return current_error(-EINVAL);
  }
}

weft_token* new_observer(CancellationToken t) {
  auto* out = new weft_token;
  out->token = std::move(t);
  return out;
}

}  // namespace
}  // namespace weft::capi

extern "C" {

int weft_scope_new(weft_scope** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  auto* s = new (std::nothrow) weft_scope;
  if (s == nullptr) return -ENOMEM;
  const int rc = guarded(
      [&] {
        s->keeper = weft::spawn([s] {
          try {
            weft::scope([s](weft::Scope& sc) {
              s->scope = &sc;
              s->opened.set();
              weft::shield([s] { s->close.wait(); });
            });
          } catch (...) {
            s->opened.set();  // if the scope failed to open, waiters see scope == nullptr
            throw;
          }
        });
        return 0;
      },
      -EPERM);
  if (rc != 0) {
    delete s;
    return rc;
  }
  // The keeper publishes the scope before it can block: an uncancellable
  // wait here is short.
  weft::shield([s] { s->opened.wait(); });
  if (s->scope == nullptr) {
    const int err = weft::capi::join_keeper(s);
    delete s;
    return err != 0 ? err : -ENOMEM;
  }
  *out = s;
  return 0;
}

int weft_scope_spawn(weft_scope* s, int (*fn)(void*), void* arg) {
  if (s == nullptr || fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        (void)s->scope->spawn([fn, arg] {
          const int r = fn(arg);
          if (r == -ECANCELED) throw weft::Cancelled();
          if (r != 0) throw weft::capi::ChildFailed{r};
        });
        return 0;
      },
      -EPERM);
}

int weft_scope_cancel(weft_scope* s) {
  if (s == nullptr) return -EINVAL;
  s->scope->cancel();
  return 0;
}

int weft_scope_cancel_at(weft_scope* s, int64_t deadline_ns) {
  if (s == nullptr || deadline_ns < -1) return -EINVAL;
  return guarded(
      [&] {
        s->scope->cancel_after(weft::capi::deadline_at(deadline_ns));
        return 0;
      },
      -EPERM);
}

int weft_scope_token(weft_scope* s, weft_token** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (s == nullptr) return -EINVAL;
  return guarded([&] {
    *out = weft::capi::new_observer(s->scope->token());
    return 0;
  });
}

int weft_scope_wait(weft_scope* s) {
  if (s == nullptr) return -EINVAL;
  s->close.set();
  const int rc = weft::capi::join_keeper(s);
  delete s;
  return rc;
}

int weft_token_new(const weft_token* parent, weft_token** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  return guarded([&] {
    auto* t = new weft_token;
    try {
      if (parent != nullptr) {
        t->source.emplace(parent->token);
      } else {
        t->source.emplace();
      }
    } catch (...) {
      delete t;
      throw;
    }
    t->token = t->source->token();
    *out = t;
    return 0;
  });
}

int weft_token_current(weft_token** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  return guarded([&] {
    *out = weft::capi::new_observer(weft::this_fiber::cancellation_token());
    return 0;
  });
}

int weft_token_cancel(weft_token* t) {
  if (t == nullptr) return -EINVAL;
  if (!t->source) return -EPERM;
  t->source->cancel();
  return 0;
}

int weft_token_is_cancelled(const weft_token* t) {
  return t != nullptr && t->token.is_cancelled() ? 1 : 0;
}

void weft_token_free(weft_token* t) {
  delete t;
}

int weft_with_token(const weft_token* t, void* (*fn)(void*), void* arg, void** result) {
  if (t == nullptr || fn == nullptr) return -EINVAL;
  return guarded([&] {
    weft::with_cancellation(t->token, [&] {
      void* r = fn(arg);
      if (result != nullptr) *result = r;
      weft::this_fiber::check_cancelled();  // as in weft_with_deadline
    });
    return 0;
  });
}

int weft_with_deadline(int64_t deadline_ns, void* (*fn)(void*), void* arg, void** result) {
  if (fn == nullptr || deadline_ns < -1) return -EINVAL;
  return guarded(
      [&] {
        weft::fail_after(weft::capi::deadline_at(deadline_ns), [&] {
          void* r = fn(arg);
          if (result != nullptr) *result = r;
          // A deadline that passed while fn ran is reported even if fn
          // finished its work (a C body cannot throw Cancelled itself).
          weft::this_fiber::check_cancelled();
        });
        return 0;
      },
      -EPERM);
}

int weft_shield(void* (*fn)(void*), void* arg, void** result) {
  if (fn == nullptr) return -EINVAL;
  return guarded([&] {
    void* r = weft::shield([&] { return fn(arg); });
    if (result != nullptr) *result = r;
    return 0;
  });
}

int weft_is_cancelled(void) {
  return weft::this_fiber::is_cancelled() ? 1 : 0;
}

}  // extern "C"
