/* Scopes, tokens, deadlines, shields through the C ABI. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "tests.h"

static atomic_long child_sum, children_ended;

static int add_child(void* arg) {
  atomic_fetch_add(&child_sum, (long)(intptr_t)arg);
  atomic_fetch_add(&children_ended, 1);
  return 0;
}

static int sleep_child(void* arg) {
  (void)arg;
  const int rc = weft_sleep_until_ns(WEFT_NO_DEADLINE);
  atomic_fetch_add(&children_ended, 1);
  return rc; /* -ECANCELED: not a failure */
}

static int failing_child(void* arg) {
  weft_sleep_ns(2 * MS);
  atomic_fetch_add(&children_ended, 1);
  return (int)(intptr_t)arg;
}

static void reset(void) {
  atomic_store(&child_sum, 0);
  atomic_store(&children_ended, 0);
}

static void* scope_basic(void* arg) {
  (void)arg;
  weft_scope* s = NULL;
  if (weft_scope_new(&s) != 0) return (void*)1;
  for (int i = 1; i <= 100; ++i) {
    if (weft_scope_spawn(s, add_child, (void*)(intptr_t)i) != 0) return (void*)2;
  }
  if (weft_scope_wait(s) != 0) return (void*)3;
  return (void*)(intptr_t)(atomic_load(&child_sum) == 5050 && atomic_load(&children_ended) == 100
                               ? 0
                               : 4);
}

static void* scope_failure(void* arg) {
  (void)arg;
  weft_scope* s = NULL;
  if (weft_scope_new(&s) != 0) return (void*)1;
  for (int i = 0; i < 10; ++i) weft_scope_spawn(s, sleep_child, NULL);
  weft_scope_spawn(s, failing_child, (void*)(intptr_t)-EIO);
  const int rc = weft_scope_wait(s);
  /* the failure cancelled the sleepers; all 11 ended before wait returned */
  return (void*)(intptr_t)(rc == -EIO && atomic_load(&children_ended) == 11 ? 0 : rc);
}

static void* scope_cancel(void* arg) {
  const int use_deadline = (int)(intptr_t)arg;
  weft_scope* s = NULL;
  if (weft_scope_new(&s) != 0) return (void*)1;
  weft_token* t = NULL;
  if (weft_scope_token(s, &t) != 0) return (void*)2;
  if (weft_token_is_cancelled(t)) return (void*)3;
  for (int i = 0; i < 10; ++i) weft_scope_spawn(s, sleep_child, NULL);
  if (use_deadline) {
    if (weft_scope_cancel_at(s, weft_now_ns() + 5 * MS) != 0) return (void*)4;
  } else {
    weft_sleep_ns(2 * MS);
    if (weft_scope_cancel(s) != 0) return (void*)5;
  }
  const int rc = weft_scope_wait(s); /* its own cancellation is not an error */
  const int cancelled = weft_token_is_cancelled(t);
  weft_token_free(t);
  if (rc != 0) return (void*)(intptr_t)rc;
  return (void*)(intptr_t)(cancelled && atomic_load(&children_ended) == 10 ? 0 : 6);
}

/* A child that spawns siblings into its own scope (a tree of 1 + 2 + 4 +
 * ... + 2^depth fibers). */
static weft_scope* tree_scope;
static int tree_child(void* arg) {
  const int depth = (int)(intptr_t)arg;
  atomic_fetch_add(&children_ended, 1);
  if (depth > 0) {
    weft_scope_spawn(tree_scope, tree_child, (void*)(intptr_t)(depth - 1));
    weft_scope_spawn(tree_scope, tree_child, (void*)(intptr_t)(depth - 1));
  }
  return 0;
}
static void* scope_tree(void* arg) {
  (void)arg;
  if (weft_scope_new(&tree_scope) != 0) return (void*)1;
  weft_scope_spawn(tree_scope, tree_child, (void*)(intptr_t)8);
  const int rc = weft_scope_wait(tree_scope);
  return (void*)(intptr_t)(rc == 0 && atomic_load(&children_ended) == 511 ? 0 : 2);
}

void test_scope(void) {
  weft_runtime* rt = new_runtime(2);
  reset();
  CHECK_EQ((intptr_t)run_on(rt, scope_basic, NULL), 0);
  reset();
  CHECK_EQ((intptr_t)run_on(rt, scope_failure, NULL), 0);
  reset();
  CHECK_EQ((intptr_t)run_on(rt, scope_cancel, (void*)0), 0);
  reset();
  CHECK_EQ((intptr_t)run_on(rt, scope_cancel, (void*)1), 0);
  reset();
  CHECK_EQ((intptr_t)run_on(rt, scope_tree, NULL), 0);
  weft_runtime_free(rt);
}

/* The creating fiber is cancelled: its scope's children are cancelled, and
 * weft_scope_wait (never interrupted) reports -ECANCELED once they ended. */
static atomic_int outer_rc;
static void* scope_then_wait(void* arg) {
  (void)arg;
  weft_scope* s = NULL;
  if (weft_scope_new(&s) != 0) return (void*)1;
  for (int i = 0; i < 5; ++i) weft_scope_spawn(s, sleep_child, NULL);
  weft_sleep_until_ns(WEFT_NO_DEADLINE); /* until cancelled */
  atomic_store(&outer_rc, weft_scope_wait(s));
  return NULL;
}

/* weft_scope_wait from another fiber than the creator's. */
static weft_scope* handed;
static void* wait_handed(void* arg) {
  (void)arg;
  return (void*)(intptr_t)weft_scope_wait(handed);
}
static void* make_and_hand(void* rt) {
  if (weft_scope_new(&handed) != 0) return (void*)1;
  for (int i = 1; i <= 10; ++i) weft_scope_spawn(handed, add_child, (void*)(intptr_t)i);
  weft_fiber* w = NULL;
  if (weft_spawn((weft_runtime*)rt, wait_handed, NULL, &w) != 0) return (void*)2;
  void* r = NULL;
  weft_join(w, &r);
  return r;
}

void test_scope_outer_cancel_and_errors(void) {
  weft_runtime* rt = new_runtime(2);
  reset();
  atomic_store(&outer_rc, 1);
  spawn_then_cancel(rt, scope_then_wait, NULL);
  CHECK_EQ(atomic_load(&outer_rc), -ECANCELED);
  CHECK_EQ(atomic_load(&children_ended), 5);

  reset();
  CHECK_EQ((intptr_t)run_on(rt, make_and_hand, rt), 0);
  CHECK_EQ(atomic_load(&child_sum), 55);

  weft_scope* s = NULL;
  CHECK_EQ(weft_scope_new(&s), -EPERM); /* a plain thread */
  CHECK(s == NULL);
  CHECK_EQ(weft_scope_new(NULL), -EINVAL);
  CHECK_EQ(weft_scope_spawn(NULL, add_child, NULL), -EINVAL);
  CHECK_EQ(weft_scope_cancel(NULL), -EINVAL);
  CHECK_EQ(weft_scope_cancel_at(NULL, 0), -EINVAL);
  CHECK_EQ(weft_scope_wait(NULL), -EINVAL);
  weft_token* t = NULL;
  CHECK_EQ(weft_scope_token(NULL, &t), -EINVAL);
  weft_runtime_free(rt);
}

/* --- tokens ------------------------------------------------------------ */

static void* sleep_forever(void* arg) {
  (void)arg;
  return (void*)(intptr_t)weft_sleep_until_ns(WEFT_NO_DEADLINE);
}

struct with_token_arg {
  weft_token* t;
  int rc;
  void* result;
};
static void* run_with_token(void* p) {
  struct with_token_arg* a = p;
  a->rc = weft_with_token(a->t, sleep_forever, NULL, &a->result);
  return NULL;
}

static void* current_token_cancel_check(void* arg) {
  (void)arg;
  weft_token* t = NULL;
  if (weft_token_current(&t) != 0) return (void*)1;
  if (weft_token_cancel(t) != -EPERM) return (void*)2; /* an observer */
  weft_sleep_until_ns(WEFT_NO_DEADLINE);               /* cancelled by the test */
  const int seen = weft_token_is_cancelled(t) && weft_is_cancelled();
  weft_token_free(t);
  return (void*)(intptr_t)(seen ? 0 : 3);
}

void test_tokens(void) {
  weft_runtime* rt = new_runtime(2);
  weft_token *root = NULL, *child = NULL, *other = NULL;
  CHECK_EQ(weft_token_new(NULL, NULL), -EINVAL);
  REQUIRE_OK(weft_token_new(NULL, &root));
  REQUIRE_OK(weft_token_new(root, &child));
  REQUIRE_OK(weft_token_new(NULL, &other));
  CHECK_EQ(weft_token_is_cancelled(root), 0);
  CHECK_EQ(weft_token_cancel(child), 0); /* a child does not cancel its parent */
  CHECK_EQ(weft_token_is_cancelled(child), 1);
  CHECK_EQ(weft_token_is_cancelled(root), 0);
  weft_token* child2 = NULL;
  REQUIRE_OK(weft_token_new(root, &child2));
  CHECK_EQ(weft_token_cancel(root), 0);
  CHECK_EQ(weft_token_is_cancelled(child2), 1);
  CHECK_EQ(weft_token_is_cancelled(other), 0);
  CHECK_EQ(weft_token_cancel(NULL), -EINVAL);
  CHECK_EQ(weft_token_is_cancelled(NULL), 0);

  /* a plain thread's current token is never cancelled */
  weft_token* cur = NULL;
  REQUIRE_OK(weft_token_current(&cur));
  CHECK_EQ(weft_token_is_cancelled(cur), 0);
  CHECK_EQ(weft_token_current(NULL), -EINVAL);
  weft_token_free(cur);

  /* a fiber's current token turns cancelled with the fiber */
  CHECK_EQ((intptr_t)spawn_then_cancel(rt, current_token_cancel_check, NULL), 0);
  weft_fiber* f = NULL;

  /* weft_with_token: cancelling the token cancels fn's calls */
  struct with_token_arg a = {other, 1, NULL};
  REQUIRE_OK(weft_spawn(rt, run_with_token, &a, &f));
  weft_sleep_ns(3 * MS);
  CHECK_EQ(weft_token_cancel(other), 0);
  CHECK_EQ(weft_join(f, NULL), 0);
  CHECK_EQ(a.rc, -ECANCELED);
  CHECK_EQ((intptr_t)a.result, -ECANCELED);
  /* an already cancelled token: fn's first blocking call returns at once */
  struct with_token_arg b = {other, 1, NULL};
  run_on(rt, run_with_token, &b);
  CHECK_EQ(b.rc, -ECANCELED);
  CHECK_EQ(weft_with_token(NULL, sleep_forever, NULL, NULL), -EINVAL);

  weft_token_free(root);
  weft_token_free(child);
  weft_token_free(child2);
  weft_token_free(other);
  weft_token_free(NULL);
  weft_runtime_free(rt);
}

static void* quick(void* arg) {
  return arg;
}
static void* with_deadline_in(void* arg) {
  const int64_t ms = (int64_t)(intptr_t)arg;
  void* r = (void*)1;
  const int rc = weft_with_deadline(weft_now_ns() + ms * MS, sleep_forever, NULL, &r);
  if ((intptr_t)r != -ECANCELED) return (void*)-1000;
  return (void*)(intptr_t)rc;
}
static void* nested_deadlines(void* arg) {
  (void)arg;
  /* outer 5 ms around inner 10 s: the outer one cancels, the inner call
   * sees an enclosing cancellation */
  void* r = NULL;
  const int rc =
      weft_with_deadline(weft_now_ns() + 5 * MS, with_deadline_in, (void*)(intptr_t)10000, &r);
  return (void*)(intptr_t)(rc * 1000 + (intptr_t)r);
}
static void* deadline_quick(void* arg) {
  (void)arg;
  void* r = NULL;
  const int rc = weft_with_deadline(weft_now_ns() + 10000 * MS, quick, (void*)5, &r);
  return (void*)(intptr_t)(rc == 0 && (intptr_t)r == 5 ? 0 : 1);
}

void test_deadlines(void) {
  weft_runtime* rt = new_runtime(2);
  CHECK_EQ((intptr_t)run_on(rt, with_deadline_in, (void*)5), -ETIMEDOUT);
  CHECK_EQ((intptr_t)run_on(rt, deadline_quick, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, nested_deadlines, NULL), -ETIMEDOUT * 1000 + -ECANCELED);
  CHECK_EQ(weft_with_deadline(weft_now_ns(), quick, NULL, NULL), -EPERM); /* plain thread */
  CHECK_EQ(weft_with_deadline(-2, quick, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_with_deadline(0, NULL, NULL, NULL), -EINVAL);
  weft_runtime_free(rt);
}

static atomic_int shield_entered, shield_release, shield_inner, shield_after, shield_flag;
/* Sleeps in 1 ms steps until the test releases it (after it cancelled the
 * fiber): every sleep must complete (0), none cut short by the cancel. */
static void* shielded_sleeps(void* arg) {
  (void)arg;
  atomic_store(&shield_entered, 1);
  while (!atomic_load(&shield_release)) {
    const int rc = weft_sleep_ns(MS);
    if (rc != 0) return (void*)(intptr_t)rc;
  }
  return NULL;
}
static void* shielded(void* arg) {
  (void)arg;
  void* r = (void*)1;
  if (weft_shield(shielded_sleeps, NULL, &r) != 0) return (void*)1;
  atomic_store(&shield_inner, (int)(intptr_t)r);
  atomic_store(&shield_flag, weft_is_cancelled());
  atomic_store(&shield_after, weft_sleep_ns(MS));
  return NULL;
}

void test_shield(void) {
  weft_runtime* rt = new_runtime(2);
  atomic_store(&shield_inner, 1);
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn(rt, shielded, NULL, &f));
  /* Cancelled while it sleeps inside the shield, whatever the load: the
   * shielded body runs until released, and is released only after. */
  for (int i = 0; i < 120000 && !atomic_load(&shield_entered); ++i) weft_sleep_ns(MS);
  CHECK(atomic_load(&shield_entered));
  weft_cancel(f);
  atomic_store(&shield_release, 1);
  CHECK_EQ(weft_join(f, NULL), 0);
  CHECK_EQ(atomic_load(&shield_inner), 0); /* no shielded sleep was cut short */
  CHECK_EQ(atomic_load(&shield_flag), 1);
  CHECK_EQ(atomic_load(&shield_after), -ECANCELED);
  void* r = NULL;
  CHECK_EQ(weft_shield(quick, (void*)3, &r), 0); /* a plain thread: just runs */
  CHECK_EQ((intptr_t)r, 3);
  CHECK_EQ(weft_shield(NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_is_cancelled(), 0);
  weft_runtime_free(rt);
}
