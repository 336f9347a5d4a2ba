/* Mutex, CondVar, WaitGroup through the C ABI. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tests.h"

static weft_mutex* mu;
static long counter; /* guarded by mu */
static long per_fiber;

static void* increment(void* arg) {
  (void)arg;
  for (long i = 0; i < per_fiber; ++i) {
    if (weft_mutex_lock(mu, WEFT_NO_TIMEOUT) != 0) return (void*)1;
    ++counter;
    if (i % 16 == 0) weft_yield(); /* park others while holding it */
    weft_mutex_unlock(mu);
  }
  return NULL;
}

void test_mutex_contended(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_mutex_new(&mu));
  counter = 0;
  per_fiber = scaled(1000, 50);
  weft_fiber* f[100];
  for (int i = 0; i < 100; ++i) REQUIRE_OK(weft_spawn(rt, increment, NULL, &f[i]));
  for (int i = 0; i < 100; ++i) {
    void* r = NULL;
    CHECK_EQ(weft_join(f[i], &r), 0);
    CHECK(r == NULL);
  }
  CHECK_EQ(counter, 100 * per_fiber);
  weft_mutex_free(mu);
  weft_runtime_free(rt);
}

static atomic_int lock_rc;
static void* lock_and_record(void* m) {
  atomic_store(&lock_rc, weft_mutex_lock(m, WEFT_NO_TIMEOUT));
  if (atomic_load(&lock_rc) == 0) weft_mutex_unlock(m);
  return NULL;
}

void test_mutex_errors_timeouts_cancel(void) {
  weft_runtime* rt = new_runtime(2);
  weft_mutex* m = NULL;
  CHECK_EQ(weft_mutex_new(NULL), -EINVAL);
  REQUIRE_OK(weft_mutex_new(&m));
  CHECK_EQ(weft_mutex_lock(NULL, 0), -EINVAL);
  CHECK_EQ(weft_mutex_lock(m, -2), -EINVAL);
  CHECK_EQ(weft_mutex_lock(m, 0), 0); /* this plain thread holds it */
  CHECK_EQ(weft_mutex_lock(m, 0), -EAGAIN);
  CHECK_EQ(weft_mutex_lock(m, 2 * MS), -ETIMEDOUT);
  /* A fiber waiting for it is cancelled: -ECANCELED, not locked. */
  atomic_store(&lock_rc, 1);
  spawn_then_cancel(rt, lock_and_record, m);
  CHECK_EQ(atomic_load(&lock_rc), -ECANCELED);
  weft_mutex_unlock(m);
  /* A waiter gets it once released. */
  CHECK_EQ(weft_mutex_lock(m, WEFT_NO_TIMEOUT), 0);
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn(rt, lock_and_record, m, &f));
  weft_sleep_ns(2 * MS);
  weft_mutex_unlock(m);
  CHECK_EQ(weft_join(f, NULL), 0);
  CHECK_EQ(atomic_load(&lock_rc), 0);
  weft_mutex_unlock(NULL);
  weft_mutex_free(m);
  weft_mutex_free(NULL);
  weft_runtime_free(rt);
}

/* CondVar: a queue of one slot, producers and consumers. */
static weft_mutex* q_mu;
static weft_cond *q_not_empty, *q_not_full;
static int q_full;   /* guarded by q_mu */
static long q_value; /* guarded by q_mu */
static atomic_long q_sum;

static void* q_produce(void* arg) {
  const long n = (long)(intptr_t)arg;
  for (long i = 1; i <= n; ++i) {
    weft_mutex_lock(q_mu, WEFT_NO_TIMEOUT);
    while (q_full) weft_cond_wait(q_not_full, q_mu, WEFT_NO_TIMEOUT);
    q_full = 1;
    q_value = i;
    weft_cond_signal(q_not_empty);
    weft_mutex_unlock(q_mu);
  }
  return NULL;
}
static void* q_consume(void* arg) {
  const long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; ++i) {
    weft_mutex_lock(q_mu, WEFT_NO_TIMEOUT);
    while (!q_full) weft_cond_wait(q_not_empty, q_mu, WEFT_NO_TIMEOUT);
    atomic_fetch_add(&q_sum, q_value);
    q_full = 0;
    weft_cond_signal(q_not_full);
    weft_mutex_unlock(q_mu);
  }
  return NULL;
}

void test_cond_producer_consumer(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_mutex_new(&q_mu));
  REQUIRE_OK(weft_cond_new(&q_not_empty));
  REQUIRE_OK(weft_cond_new(&q_not_full));
  q_full = 0;
  atomic_store(&q_sum, 0);
  const long n = scaled(2000, 100);
  weft_fiber *p[4], *c[4];
  for (int i = 0; i < 4; ++i) {
    REQUIRE_OK(weft_spawn(rt, q_produce, (void*)(intptr_t)n, &p[i]));
    REQUIRE_OK(weft_spawn(rt, q_consume, (void*)(intptr_t)n, &c[i]));
  }
  for (int i = 0; i < 4; ++i) {
    CHECK_EQ(weft_join(p[i], NULL), 0);
    CHECK_EQ(weft_join(c[i], NULL), 0);
  }
  CHECK_EQ(atomic_load(&q_sum), 4 * n * (n + 1) / 2);
  weft_cond_free(q_not_empty);
  weft_cond_free(q_not_full);
  weft_mutex_free(q_mu);
  weft_runtime_free(rt);
}

static weft_mutex* b_mu;
static weft_cond* b_cv;
static int b_go;
static atomic_int b_woken;
static void* b_wait(void* arg) {
  (void)arg;
  weft_mutex_lock(b_mu, WEFT_NO_TIMEOUT);
  while (!b_go) weft_cond_wait(b_cv, b_mu, WEFT_NO_TIMEOUT);
  atomic_fetch_add(&b_woken, 1);
  weft_mutex_unlock(b_mu);
  return NULL;
}

/* Cancel a cond waiter: -ECANCELED, and the mutex is held when it returns. */
static atomic_int cw_rc, cw_held;
static void* cond_wait_cancelled(void* arg) {
  (void)arg;
  weft_mutex_lock(b_mu, WEFT_NO_TIMEOUT);
  atomic_store(&cw_rc, weft_cond_wait(b_cv, b_mu, WEFT_NO_TIMEOUT));
  /* Held: a try from this fiber fails (the mutex is not recursive). */
  atomic_store(&cw_held, weft_mutex_lock(b_mu, 0) == -EAGAIN);
  weft_mutex_unlock(b_mu);
  return NULL;
}

void test_cond_broadcast_timeout_cancel(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_mutex_new(&b_mu));
  REQUIRE_OK(weft_cond_new(&b_cv));
  b_go = 0;
  atomic_store(&b_woken, 0);
  weft_fiber* f[10];
  for (int i = 0; i < 10; ++i) REQUIRE_OK(weft_spawn(rt, b_wait, NULL, &f[i]));
  weft_sleep_ns(3 * MS); /* most are waiting by now; the flag makes it right either way */
  weft_mutex_lock(b_mu, WEFT_NO_TIMEOUT);
  b_go = 1;
  weft_cond_broadcast(b_cv);
  weft_mutex_unlock(b_mu);
  for (int i = 0; i < 10; ++i) CHECK_EQ(weft_join(f[i], NULL), 0);
  CHECK_EQ(atomic_load(&b_woken), 10);

  /* timeouts, from this plain thread: the mutex is held again after */
  CHECK_EQ(weft_mutex_lock(b_mu, 0), 0);
  CHECK_EQ(weft_cond_wait(b_cv, b_mu, 2 * MS), -ETIMEDOUT);
  CHECK_EQ(weft_mutex_lock(b_mu, 0), -EAGAIN);
  CHECK_EQ(weft_cond_wait(b_cv, b_mu, 0), -EAGAIN);
  CHECK_EQ(weft_mutex_lock(b_mu, 0), -EAGAIN);
  CHECK_EQ(weft_cond_wait(NULL, b_mu, 0), -EINVAL);
  CHECK_EQ(weft_cond_wait(b_cv, NULL, 0), -EINVAL);
  CHECK_EQ(weft_cond_wait(b_cv, b_mu, -2), -EINVAL);
  weft_mutex_unlock(b_mu);

  atomic_store(&cw_rc, 1);
  atomic_store(&cw_held, 0);
  spawn_then_cancel(rt, cond_wait_cancelled, NULL);
  CHECK_EQ(atomic_load(&cw_rc), -ECANCELED);
  CHECK_EQ(atomic_load(&cw_held), 1);
  CHECK_EQ(weft_mutex_lock(b_mu, 0), 0); /* released by the fiber */
  weft_mutex_unlock(b_mu);
  weft_cond_signal(NULL);
  weft_cond_broadcast(NULL);
  CHECK_EQ(weft_cond_new(NULL), -EINVAL);
  weft_cond_free(b_cv);
  weft_cond_free(NULL);
  weft_mutex_free(b_mu);
  weft_runtime_free(rt);
}

static weft_waitgroup* wg;
static atomic_int wg_done_count;
static void* wg_worker(void* arg) {
  (void)arg;
  weft_sleep_ns(MS);
  atomic_fetch_add(&wg_done_count, 1);
  return (void*)(intptr_t)weft_waitgroup_add(wg, -1);
}
static atomic_int wg_wait_rc;
static void* wg_waiter(void* arg) {
  (void)arg;
  atomic_store(&wg_wait_rc, weft_waitgroup_wait(wg, WEFT_NO_TIMEOUT));
  return NULL;
}

void test_waitgroup(void) {
  weft_runtime* rt = new_runtime(2);
  weft_waitgroup* bad = NULL;
  CHECK_EQ(weft_waitgroup_new(-1, &bad), -EINVAL);
  CHECK(bad == NULL);
  CHECK_EQ(weft_waitgroup_new(0, NULL), -EINVAL);
  REQUIRE_OK(weft_waitgroup_new(0, &wg));
  CHECK_EQ(weft_waitgroup_wait(wg, 0), 0);
  CHECK_EQ(weft_waitgroup_add(wg, -1), -EINVAL); /* would go negative: unchanged */
  CHECK_EQ(weft_waitgroup_wait(wg, 0), 0);
  CHECK_EQ(weft_waitgroup_add(NULL, 1), -EINVAL);
  CHECK_EQ(weft_waitgroup_wait(NULL, 0), -EINVAL);
  CHECK_EQ(weft_waitgroup_wait(wg, -2), -EINVAL);

  atomic_store(&wg_done_count, 0);
  CHECK_EQ(weft_waitgroup_add(wg, 20), 0);
  CHECK_EQ(weft_waitgroup_wait(wg, 0), -EAGAIN);
  for (int i = 0; i < 20; ++i) REQUIRE_OK(weft_spawn(rt, wg_worker, NULL, NULL));
  CHECK_EQ(weft_waitgroup_wait(wg, WEFT_NO_TIMEOUT), 0); /* this plain thread */
  CHECK_EQ(atomic_load(&wg_done_count), 20);

  CHECK_EQ(weft_waitgroup_add(wg, 1), 0);
  CHECK_EQ(weft_waitgroup_wait(wg, 2 * MS), -ETIMEDOUT);
  atomic_store(&wg_wait_rc, 1);
  spawn_then_cancel(rt, wg_waiter, NULL);
  CHECK_EQ(atomic_load(&wg_wait_rc), -ECANCELED);
  CHECK_EQ(weft_waitgroup_add(wg, -1), 0);
  weft_waitgroup_free(wg);
  weft_waitgroup_free(NULL);
  weft_runtime_free(rt);
}

/* Memory quotas: a language runtime charges before growing a string; the
 * refusal is -ENOMEM with the quota named, nested charges are all or
 * nothing, and the figures return to zero. */
void test_quota(void) {
  CHECK_EQ(weft_quota_new(10, NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_quota_charge(NULL, 1), -EINVAL);
  CHECK_EQ(weft_quota_used(NULL), 0);
  weft_quota_release(NULL, 1);
  weft_quota_free(NULL);

  weft_quota* tenant = NULL;
  weft_quota* string = NULL;
  REQUIRE_OK(weft_quota_new(1000, NULL, "tenant", &tenant));
  REQUIRE_OK(weft_quota_new(800, tenant, "string", &string));
  /* Growth by doubling, as a string bomb: stops at 512 (1024 > 800). */
  size_t have = 0;
  for (size_t want = 1; want <= 4096; want *= 2) {
    if (weft_quota_charge(string, want - have) != 0) break;
    have = want;
  }
  CHECK_EQ(have, 512);
  CHECK_EQ(weft_quota_used(string), 512);
  CHECK_EQ(weft_quota_used(tenant), 512);
  CHECK_EQ(weft_quota_refusals(string), 1);
  CHECK_EQ(weft_quota_charge(string, 512), -ENOMEM);
  CHECK(strstr(weft_last_error(), "'string' exceeded: 512 bytes requested, 512 of 800") != NULL);
  /* Refused by the parent: the child keeps nothing of it. */
  CHECK_EQ(weft_quota_charge(tenant, 400), 0);
  CHECK_EQ(weft_quota_charge(string, 200), -ENOMEM);
  CHECK(strstr(weft_last_error(), "'tenant'") != NULL);
  CHECK_EQ(weft_quota_used(string), 512);
  CHECK_EQ(weft_quota_used(tenant), 912);
  weft_quota_release(tenant, 400);
  weft_quota_release(string, 512);
  CHECK_EQ(weft_quota_used(tenant), 0);
  CHECK_EQ(weft_quota_peak(tenant), 912);
  CHECK_EQ(weft_quota_limit(string), 800);
  weft_quota_set_limit(string, 100);
  CHECK_EQ(weft_quota_charge(string, 101), -ENOMEM);
  CHECK_EQ(weft_quota_charge(string, 100), 0);
  weft_quota_free(string); /* its 100 bytes go back to the tenant */
  CHECK_EQ(weft_quota_used(tenant), 0);
  weft_quota_free(tenant);
}
