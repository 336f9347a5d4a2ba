/* Version, errors, runtime, fibers, spawn_blocking, sleeping. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "tests.h"

void capi_test_throw(int kind); /* throw_helper.cpp */

void test_version_and_errors(void) {
  CHECK_EQ(weft_version(), WEFT_VERSION);
  CHECK_EQ(WEFT_VERSION,
           (WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
           WEFT_VERSION_PATCH);
  CHECK(strcmp(weft_version_string(), want) == 0);
  CHECK(strcmp(weft_strerror(0), "success") == 0);
  CHECK(strstr(weft_strerror(-ECANCELED), "cancelled") != NULL);
  CHECK(strstr(weft_strerror(ECANCELED), "cancelled") != NULL);
  CHECK(strstr(weft_strerror(-ETIMEDOUT), "timed out") != NULL);
  CHECK(strstr(weft_strerror(-EPIPE), "closed") != NULL);
  CHECK(strstr(weft_strerror(-EAGAIN), "wait") != NULL);
  CHECK(strstr(weft_strerror(-EAGAIN), "max_fibers") != NULL);
  CHECK(strcmp(weft_strerror(-EINVAL), "Invalid argument") == 0);
  CHECK(strcmp(weft_strerror(-ECONNREFUSED), "Connection refused") == 0);
  CHECK(strcmp(weft_strerror(-123456), "unknown error") == 0);
  CHECK(weft_strerror(INT32_MIN) != NULL);
  CHECK(weft_now_ns() > 0);
}

void test_config_and_runtime_errors(void) {
  weft_config cfg;
  weft_config_init(&cfg);
  CHECK_EQ(cfg.struct_size, sizeof cfg);
  CHECK(cfg.stack_size >= 16 * 1024);
  weft_config_init(NULL);

  weft_runtime* rt = (weft_runtime*)&cfg; /* must be set to NULL on failure */
  CHECK_EQ(weft_runtime_new(&cfg, NULL), -EINVAL);
  weft_config small = cfg;
  small.struct_size = 4;
  CHECK_EQ(weft_runtime_new(&small, &rt), -EINVAL);
  CHECK(rt == NULL);
  CHECK(strstr(weft_last_error(), "struct_size") != NULL);

  weft_config bad = cfg;
  bad.workers = 5000;
  CHECK_EQ(weft_runtime_new(&bad, &rt), -EINVAL);
  CHECK(strstr(weft_last_error(), "workers") != NULL);
  bad = cfg;
  bad.stack_size = 1000;
  CHECK_EQ(weft_runtime_new(&bad, &rt), -EINVAL);
  CHECK(strstr(weft_last_error(), "stack_size") != NULL);

  /* An invalid environment variable is reported by weft_runtime_new. */
  setenv("WEFT_WORKERS", "many", 1);
  weft_config from_env;
  weft_config_init(&from_env); /* defaults, no failure */
  CHECK_EQ(weft_runtime_new(NULL, &rt), -EINVAL);
  CHECK(strstr(weft_last_error(), "WEFT_WORKERS") != NULL);
  setenv("WEFT_WORKERS", "3", 1);
  weft_config_init(&from_env);
  CHECK_EQ(from_env.workers, 3);
  unsetenv("WEFT_WORKERS");

  REQUIRE_OK(weft_runtime_new(NULL, &rt));
  CHECK(rt != NULL);
  weft_runtime_free(rt);
  weft_runtime_free(NULL);
}

/* Waits until channel arg is closed. */
static void* wait_for_close(void* arg) {
  int v = 0;
  return (void*)(intptr_t)weft_chan_recv((weft_chan*)arg, &v, WEFT_NO_TIMEOUT);
}

/* weft_limits: a spawn past max_fibers fails with -EAGAIN and names the
 * limit; once a fiber has ended the next spawn succeeds; bad limits are
 * -EINVAL. */
void test_limits(void) {
  weft_limits lim;
  weft_limits_init(&lim);
  CHECK_EQ(lim.struct_size, sizeof lim);
  CHECK_EQ(lim.max_fibers, 0);
  CHECK_EQ(lim.max_stack_memory, 0);
  weft_limits_init(NULL);

  weft_runtime* rt = NULL;
  weft_limits small = lim;
  small.struct_size = 4;
  CHECK_EQ(weft_runtime_new_ex(NULL, &small, &rt), -EINVAL);
  CHECK(strstr(weft_last_error(), "weft_limits.struct_size") != NULL);
  weft_limits bad = lim;
  bad.max_fibers = 2000000000;
  CHECK_EQ(weft_runtime_new_ex(NULL, &bad, &rt), -EINVAL);
  CHECK(strstr(weft_last_error(), "max_fibers") != NULL);
  CHECK(rt == NULL);

  setenv("WEFT_MAX_STACK_MEMORY", "1M", 1);
  weft_limits_init(&lim);
  unsetenv("WEFT_MAX_STACK_MEMORY");
  CHECK_EQ(lim.max_stack_memory, 1024 * 1024);
  lim.max_stack_memory = 0;
  lim.max_fibers = 3;
  REQUIRE_OK(weft_runtime_new_ex(NULL, &lim, &rt));
  weft_chan* gate = NULL;
  REQUIRE_OK(weft_chan_new(sizeof(int), 0, &gate));
  weft_fiber* f[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; ++i) REQUIRE_OK(weft_spawn(rt, wait_for_close, gate, &f[i]));
  weft_fiber* extra = (weft_fiber*)gate; /* must be set to NULL on failure */
  CHECK_EQ(weft_spawn(rt, wait_for_close, gate, &extra), -EAGAIN);
  CHECK(extra == NULL);
  CHECK(strstr(weft_last_error(), "max_fibers is 3") != NULL);
  weft_chan_close(gate);
  for (int i = 0; i < 3; ++i) REQUIRE_OK(weft_join(f[i], NULL));
  REQUIRE_OK(weft_spawn(rt, wait_for_close, gate, &extra)); /* room again */
  REQUIRE_OK(weft_join(extra, NULL));
  weft_chan_free(gate);
  weft_runtime_free(rt);
}

static void count_pressure(uint64_t charged, uint64_t limit, void* arg) {
  (void)charged;
  (void)limit;
  ++*(int*)arg;
}

/* The memory limit through the C ABI: set, read back, refused spawns are
 * -EAGAIN naming memory_limit, the pressure callback runs once per
 * crossing, and bad values are -EINVAL naming the allowed values. */
void test_memory_limit(void) {
  weft_config cfg;
  weft_config_init(&cfg);
  cfg.workers = 1;
  cfg.stack_size = 64 * 1024;
  weft_runtime* rt = NULL;
  REQUIRE_OK(weft_runtime_new(&cfg, &rt));
  CHECK_EQ(weft_runtime_memory_limit(rt), 0);
  CHECK_EQ(weft_runtime_set_memory_limit(NULL, 0), -EINVAL);
  CHECK_EQ(weft_runtime_set_memory_limit(rt, 1000), -EINVAL);
  CHECK(strstr(weft_last_error(), "memory_limit: must be a size in 1M..65536G") != NULL);
  CHECK_EQ(weft_runtime_memory_limit(rt), 0);
  CHECK_EQ(weft_runtime_memory_limit(NULL), 0);
  CHECK_EQ(weft_runtime_memory_used(NULL), 0);

  int calls = 0;
  uint64_t id = 0;
  CHECK_EQ(weft_runtime_on_memory_pressure(rt, NULL, NULL, &id), -EINVAL);
  REQUIRE_OK(weft_runtime_on_memory_pressure(rt, count_pressure, &calls, &id));
  REQUIRE_OK(weft_runtime_set_memory_limit(rt, 4 * 1024 * 1024));
  CHECK_EQ(weft_runtime_memory_limit(rt), 4 * 1024 * 1024);

  weft_chan* gate = NULL;
  REQUIRE_OK(weft_chan_new(sizeof(int), 0, &gate));
  weft_fiber* f[128];
  int n = 0;
  int rc = 0;
  while (n < 128 && (rc = weft_spawn(rt, wait_for_close, gate, &f[n])) == 0) ++n;
  CHECK_EQ(rc, -EAGAIN);
  CHECK(strstr(weft_last_error(), "memory_limit is 4194304 bytes") != NULL);
  CHECK(n >= 16); /* 64 KiB stacks: well over half of 4 MiB admitted */
  CHECK(weft_runtime_memory_used(rt) <= 4 * 1024 * 1024);
  CHECK(weft_runtime_memory_refusals(rt) >= 1);
  CHECK_EQ(calls, 1); /* 0.8 of the limit crossed once */
  weft_chan_close(gate);
  for (int i = 0; i < n; ++i) REQUIRE_OK(weft_join(f[i], NULL));
  REQUIRE_OK(weft_runtime_remove_memory_pressure(rt, id));
  CHECK_EQ(weft_runtime_remove_memory_pressure(rt, id), -ENOENT);
  REQUIRE_OK(weft_runtime_set_memory_limit(rt, 0));
  weft_fiber* again = NULL;
  REQUIRE_OK(weft_spawn(rt, wait_for_close, gate, &again)); /* closed: ends at once */
  REQUIRE_OK(weft_join(again, NULL));
  weft_chan_free(gate);
  weft_runtime_free(rt);
}

static void* add_one(void* arg) {
  return (void*)((intptr_t)arg + 1);
}

static void* self_id(void* arg) {
  (void)arg;
  return (void*)(uintptr_t)weft_self_id();
}

static void* in_fiber(void* arg) {
  (void)arg;
  return (void*)(intptr_t)weft_in_fiber();
}

/* In a fiber: weft_spawn with rt NULL (the caller's runtime). */
static void* spawn_inside(void* arg) {
  (void)arg;
  weft_fiber* f = NULL;
  const int rc = weft_spawn(NULL, add_one, (void*)(intptr_t)41, &f);
  if (rc != 0) return (void*)(intptr_t)rc;
  void* r = NULL;
  const int jr = weft_join(f, &r);
  return jr != 0 ? (void*)(intptr_t)jr : r;
}

static atomic_int detached_runs;
static void* count_run(void* arg) {
  (void)arg;
  atomic_fetch_add(&detached_runs, 1);
  return NULL;
}
static int detached_done(void* want) {
  return atomic_load(&detached_runs) == *(int*)want;
}

static void spawn_join_on(uint32_t workers) {
  weft_runtime* rt = new_runtime(workers);
  void* r = NULL;
  CHECK_EQ(weft_block_on(rt, add_one, (void*)(intptr_t)1, &r), 0);
  CHECK_EQ((intptr_t)r, 2);
  CHECK_EQ(weft_block_on(rt, add_one, NULL, NULL), 0);
  CHECK_EQ(weft_block_on(NULL, add_one, NULL, &r), -EINVAL);
  CHECK_EQ(weft_block_on(rt, NULL, NULL, &r), -EINVAL);

  /* From this plain thread, onto rt. */
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn(rt, add_one, (void*)(intptr_t)9, &f));
  const uint64_t id = weft_fiber_id(f);
  CHECK(id != 0);
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, 10);

  REQUIRE_OK(weft_spawn(rt, self_id, NULL, &f));
  const uint64_t id2 = weft_fiber_id(f);
  CHECK(id2 != id);
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((uintptr_t)r, id2);
  CHECK_EQ(weft_self_id(), 0);
  CHECK_EQ(weft_in_fiber(), 0);
  CHECK_EQ((intptr_t)run_on(rt, in_fiber, NULL), 1);
  CHECK_EQ(weft_fiber_id(NULL), 0);

  /* rt NULL from a plain thread: there is no caller's runtime. */
  f = (weft_fiber*)&r;
  CHECK_EQ(weft_spawn(NULL, add_one, NULL, &f), -EPERM);
  CHECK(f == NULL);
  CHECK_EQ(weft_spawn(rt, NULL, NULL, &f), -EINVAL);
  CHECK_EQ((intptr_t)run_on(rt, spawn_inside, NULL), 42);
  CHECK_EQ(weft_join(NULL, &r), -EINVAL);

  /* Detached fibers: out NULL, and weft_detach. */
  atomic_store(&detached_runs, 0);
  int want = 2;
  REQUIRE_OK(weft_spawn(rt, count_run, NULL, NULL));
  REQUIRE_OK(weft_spawn(rt, count_run, NULL, &f));
  weft_detach(f);
  weft_detach(NULL);
  CHECK(eventually(detached_done, &want));
  weft_runtime_free(rt);
}

void test_spawn_join(void) {
  spawn_join_on(1);
  spawn_join_on(2);
}

void test_spawn_options(void) {
  weft_runtime* rt = new_runtime(2);
  weft_spawn_options o;
  weft_spawn_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof o);
  CHECK_EQ(o.priority, WEFT_PRIORITY_NORMAL);
  weft_spawn_options_init(NULL);
  o.name = "capi-named";
  o.priority = WEFT_PRIORITY_HIGH;
  o.stack_size = 64 * 1024;
  weft_fiber* f = NULL;
  void* r = NULL;
  REQUIRE_OK(weft_spawn_ex(rt, &o, add_one, (void*)(intptr_t)1, &f));
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, 2);
  REQUIRE_OK(weft_spawn_ex(rt, NULL, add_one, (void*)(intptr_t)2, &f));
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, 3);

  weft_spawn_options bad = o;
  bad.priority = 9;
  CHECK_EQ(weft_spawn_ex(rt, &bad, add_one, NULL, &f), -EINVAL);
  bad = o;
  bad.stack_size = 1000;
  CHECK_EQ(weft_spawn_ex(rt, &bad, add_one, NULL, &f), -EINVAL);
  CHECK(strstr(weft_last_error(), "stack_size") != NULL);
  bad = o;
  bad.struct_size = 8;
  CHECK_EQ(weft_spawn_ex(rt, &bad, add_one, NULL, &f), -EINVAL);
  CHECK(f == NULL);
  weft_runtime_free(rt);
}

/* A C body calling C++ code that throws: the exception crosses this C
 * frame, ends the fiber, and weft_join reports it as a code. */
static void* throws(void* kind) {
  capi_test_throw((int)(intptr_t)kind);
  return NULL;
}

void test_join_reports_exceptions(void) {
  weft_runtime* rt = new_runtime(2);
  static const struct {
    int kind, code;
    const char* message;
  } cases[] = {{0, -ENOTRECOVERABLE, "boom"},
               {1, -ETIMEDOUT, NULL},
               {2, -ENOMEM, "memory"},
               {3, -EMFILE, "no fds"},
               {4, -ENOTRECOVERABLE, "not a std::exception"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    weft_fiber* f = NULL;
    REQUIRE_OK(weft_spawn(rt, throws, (void*)(intptr_t)cases[i].kind, &f));
    void* r = (void*)1;
    CHECK_EQ(weft_join(f, &r), cases[i].code);
    if (cases[i].message != NULL) CHECK(strstr(weft_last_error(), cases[i].message) != NULL);
    CHECK_EQ(weft_block_on(rt, throws, (void*)(intptr_t)cases[i].kind, NULL), cases[i].code);
  }
  weft_runtime_free(rt);
}

static void* sleep_forever(void* arg) {
  (void)arg;
  return (void*)(intptr_t)weft_sleep_until_ns(WEFT_NO_DEADLINE);
}

static atomic_int grandchild_result;
static void* grandchild(void* arg) {
  (void)arg;
  atomic_store(&grandchild_result, weft_sleep_until_ns(WEFT_NO_DEADLINE));
  return NULL;
}
/* Spawns a grandchild (under its own scope) and joins it. */
static void* parent_of_sleeper(void* arg) {
  (void)arg;
  weft_fiber* g = NULL;
  if (weft_spawn(NULL, grandchild, NULL, &g) != 0) return (void*)1;
  return (void*)(intptr_t)weft_join(g, NULL);
}
static int grandchild_cancelled(void* arg) {
  (void)arg;
  return atomic_load(&grandchild_result) == -ECANCELED;
}

void test_cancel(void) {
  weft_runtime* rt = new_runtime(2);
  weft_fiber* f = NULL;
  void* r = NULL;
  REQUIRE_OK(weft_spawn(rt, sleep_forever, NULL, &f));
  weft_sleep_ns(2 * MS);
  CHECK_EQ(weft_cancel(f), 0);
  CHECK_EQ(weft_cancel(f), 0); /* idempotent */
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED); /* the body saw the cancellation */
  CHECK_EQ(weft_cancel(NULL), -EINVAL);

  /* Cancelling a fiber cancels the fibers it spawned; its own join of
   * them is then cancelled too. */
  atomic_store(&grandchild_result, 1);
  REQUIRE_OK(weft_spawn(rt, parent_of_sleeper, NULL, &f));
  weft_sleep_ns(2 * MS);
  CHECK_EQ(weft_cancel(f), 0);
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  CHECK(eventually(grandchild_cancelled, NULL));
  weft_runtime_free(rt);
}

/* The waiting fiber is cancelled while it joins: weft_join returns
 * -ECANCELED, the joined fiber runs on detached. */
static weft_chan* release_chan;
static atomic_int waited_ran_to_end;
static void* wait_for_release(void* arg) {
  (void)arg;
  char c;
  const int rc = weft_chan_recv(release_chan, &c, WEFT_NO_TIMEOUT);
  atomic_store(&waited_ran_to_end, rc == 0 ? 1 : rc);
  return NULL;
}
static void* join_given(void* f) {
  return (void*)(intptr_t)weft_join((weft_fiber*)f, NULL);
}
static int waited_done(void* arg) {
  (void)arg;
  return atomic_load(&waited_ran_to_end) != 0;
}

void test_join_cancelled_waiter(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_chan_new(1, 0, &release_chan));
  atomic_store(&waited_ran_to_end, 0);
  weft_fiber *waited = NULL, *joiner = NULL;
  REQUIRE_OK(weft_spawn(rt, wait_for_release, NULL, &waited)); /* under the root */
  REQUIRE_OK(weft_spawn(rt, join_given, waited, &joiner));
  weft_sleep_ns(2 * MS);
  CHECK_EQ(weft_cancel(joiner), 0);
  void* r = NULL;
  CHECK_EQ(weft_join(joiner, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  CHECK_EQ(atomic_load(&waited_ran_to_end), 0); /* still waiting, detached */
  const char c = 'x';
  CHECK_EQ(weft_chan_send(release_chan, &c, WEFT_NO_TIMEOUT), 0);
  CHECK(eventually(waited_done, NULL));
  CHECK_EQ(atomic_load(&waited_ran_to_end), 1);
  weft_runtime_free(rt);
  weft_chan_free(release_chan);
}

static atomic_long yield_turns[2];
static void* yielder(void* arg) {
  const int me = (int)(intptr_t)arg;
  for (int i = 0; i < 1000; ++i) {
    atomic_fetch_add(&yield_turns[me], 1);
    weft_yield();
  }
  return NULL;
}

void test_yield_and_sleep(void) {
  weft_yield(); /* a plain thread: sched_yield */
  weft_runtime* rt = new_runtime(1);
  weft_fiber *a = NULL, *b = NULL;
  REQUIRE_OK(weft_spawn(rt, yielder, (void*)0, &a));
  REQUIRE_OK(weft_spawn(rt, yielder, (void*)1, &b));
  CHECK_EQ(weft_join(a, NULL), 0);
  CHECK_EQ(weft_join(b, NULL), 0);
  CHECK_EQ(atomic_load(&yield_turns[0]) + atomic_load(&yield_turns[1]), 2000);

  int64_t t0 = weft_now_ns();
  CHECK_EQ(weft_sleep_ns(2 * MS), 0); /* a plain thread sleeps */
  CHECK(weft_now_ns() - t0 >= 2 * MS);
  CHECK_EQ(weft_sleep_ns(0), 0);
  CHECK_EQ(weft_sleep_ns(-5), 0);
  CHECK_EQ(weft_sleep_until_ns(weft_now_ns() - MS), 0);
  CHECK_EQ(weft_sleep_until_ns(-2), -EINVAL);
  weft_runtime_free(rt);
}

static void* sleep_2ms(void* arg) {
  (void)arg;
  const int64_t t0 = weft_now_ns();
  const int rc = weft_sleep_until_ns(t0 + 2 * MS);
  if (rc != 0) return (void*)(intptr_t)rc;
  return (void*)(intptr_t)(weft_now_ns() - t0 >= 2 * MS ? 0 : -1);
}

void test_sleep_in_fiber(void) {
  weft_runtime* rt = new_runtime(2);
  CHECK_EQ((intptr_t)run_on(rt, sleep_2ms, NULL), 0);
  weft_runtime_free(rt);
}

static void* blocking_body(void* arg) {
  (void)arg;
  return (void*)(intptr_t)(weft_in_fiber() == 0 ? 7 : -1);
}
static atomic_int blocking_saw_cancel;
static void* blocking_until_cancelled(void* arg) {
  (void)arg;
  while (!weft_is_cancelled()) {
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&blocking_saw_cancel, 1);
  return NULL;
}
static void* use_spawn_blocking(void* arg) {
  (void)arg;
  weft_fiber* f = NULL;
  void* r = NULL;
  if (weft_spawn_blocking(blocking_body, NULL, &f) != 0) return (void*)1;
  if (weft_fiber_id(f) != 0) return (void*)2; /* not a fiber */
  if (weft_join(f, &r) != 0 || (intptr_t)r != 7) return (void*)3;
  if (weft_spawn_blocking(NULL, NULL, &f) != -EINVAL) return (void*)4;
  if (weft_spawn_blocking(blocking_until_cancelled, NULL, &f) != 0) return (void*)5;
  weft_sleep_ns(MS);
  weft_cancel(f);
  if (weft_join(f, NULL) != 0) return (void*)6;
  return (void*)(intptr_t)(atomic_load(&blocking_saw_cancel) == 1 ? 0 : 7);
}

void test_spawn_blocking(void) {
  weft_runtime* rt = new_runtime(2);
  weft_fiber* f = NULL;
  CHECK_EQ(weft_spawn_blocking(blocking_body, NULL, &f), -EPERM); /* plain thread */
  CHECK_EQ((intptr_t)run_on(rt, use_spawn_blocking, NULL), 0);
  weft_runtime_free(rt);
}

static weft_chan* never_chan;
static atomic_int shutdown_cancelled;
static void* recv_never(void* arg) {
  (void)arg;
  char c;
  if (weft_chan_recv(never_chan, &c, WEFT_NO_TIMEOUT) == -ECANCELED)
    atomic_fetch_add(&shutdown_cancelled, 1);
  return NULL;
}

void test_runtime_free_cancels_fibers(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_chan_new(1, 0, &never_chan));
  atomic_store(&shutdown_cancelled, 0);
  for (int i = 0; i < 50; ++i) REQUIRE_OK(weft_spawn(rt, recv_never, NULL, NULL));
  weft_sleep_ns(5 * MS);
  weft_runtime_free(rt); /* cancels all 50, waits for them */
  CHECK_EQ(atomic_load(&shutdown_cancelled), 50);
  weft_chan_free(never_chan);
}

/* weft_last_error is per fiber: a failure in one fiber does not show in
 * another. */
static void* fail_then_report(void* arg) {
  (void)arg;
  weft_fiber* f = NULL;
  weft_spawn_options o;
  weft_spawn_options_init(&o);
  o.stack_size = 1; /* invalid: the message names stack_size */
  if (weft_spawn_ex(NULL, &o, add_one, NULL, &f) != -EINVAL) return (void*)1;
  return (void*)(intptr_t)(strstr(weft_last_error(), "stack_size") != NULL ? 0 : 2);
}
static void* report_empty(void* arg) {
  (void)arg;
  return (void*)(intptr_t)(weft_last_error()[0] == '\0' ? 0 : 3);
}

void test_last_error_is_per_fiber(void) {
  weft_runtime* rt = new_runtime(2);
  CHECK_EQ((intptr_t)run_on(rt, fail_then_report, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, report_empty, NULL), 0);
  weft_runtime_free(rt);
}

/* death:runtime_free_in_fiber: must abort with a message. */
static void* free_own_runtime(void* rt) {
  weft_runtime_free((weft_runtime*)rt);
  return NULL;
}

int death_test(const char* name) {
  if (strcmp(name, "runtime_free_in_fiber") == 0) {
    weft_runtime* rt = new_runtime(1);
    weft_block_on(rt, free_own_runtime, rt, NULL);
    fprintf(stderr, "weft_runtime_free returned in a fiber\n");
    return 0;
  }
  fprintf(stderr, "unknown death test %s\n", name);
  return 1;
}

/* The observability calls: metrics as Prometheus text and JSON, moved by a
 * known workload, and a fiber dump that names a parked fiber, what it waits
 * on and the C function it parked in. */
static void* nothing(void* arg) {
  return arg;
}

/* The value of an unlabelled sample `name` in Prometheus text, or -1. */
static double prometheus_value(const char* text, const char* name) {
  char key[128];
  snprintf(key, sizeof key, "\n%s ", name);
  const char* at = strstr(text, key);
  return at != NULL ? strtod(at + strlen(key), NULL) : -1;
}

/* Not static, so that the dump's backtrace can name it. */
void* weft_capi_test_parked_in_recv(void* arg) {
  int64_t v = 0;
  (void)weft_chan_recv((weft_chan*)arg, &v, WEFT_NO_TIMEOUT);
  return NULL;
}

void test_observability(void) {
  char* text = NULL;
  size_t len = 0;
  CHECK_EQ(weft_metrics_write(WEFT_FORMAT_TEXT, NULL, &len), -EINVAL);
  CHECK_EQ(weft_metrics_write(7, &text, &len), -EINVAL);
  CHECK(text == NULL);
  weft_free(NULL);

  REQUIRE_OK(weft_metrics_write(WEFT_FORMAT_TEXT, &text, &len));
  CHECK_EQ(len, strlen(text));
  CHECK(strstr(text, "# TYPE weft_fiber_spawned_total counter\n") != NULL);
  const double spawned_before = prometheus_value(text, "weft_fiber_spawned_total");
  CHECK(spawned_before >= 0);
  weft_free(text);

  weft_runtime* rt = NULL;
  REQUIRE_OK(weft_runtime_new(NULL, &rt));
  enum { kSpawned = 100 };
  for (int i = 0; i < kSpawned; ++i) {
    weft_fiber* f = NULL;
    REQUIRE_OK(weft_spawn(rt, nothing, NULL, &f));
    REQUIRE_OK(weft_join(f, NULL));
  }
  REQUIRE_OK(weft_metrics_write(WEFT_FORMAT_TEXT, &text, &len));
  CHECK(prometheus_value(text, "weft_fiber_spawned_total") >= spawned_before + kSpawned);
  weft_free(text);
  REQUIRE_OK(weft_metrics_write(WEFT_FORMAT_JSON, &text, &len));
  CHECK_EQ(len, strlen(text));
  CHECK(text[0] == '[');
  CHECK(strstr(text, "\"name\":\"weft_fiber_spawned_total\"") != NULL);
  CHECK(strstr(text, "\"type\":\"histogram\"") != NULL);
  CHECK(strstr(text, "\"le\":null") != NULL); /* the +Inf bucket */
  weft_free(text);

  weft_chan* c = NULL;
  REQUIRE_OK(weft_chan_new(sizeof(int64_t), 0, &c));
  weft_spawn_options o;
  weft_spawn_options_init(&o);
  o.name = "c-receiver";
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn_ex(rt, &o, weft_capi_test_parked_in_recv, c, &f));
  CHECK_EQ(weft_runtime_dump(NULL, WEFT_FORMAT_TEXT, &text, &len), -EINVAL);
  CHECK_EQ(weft_runtime_dump(rt, 2, &text, &len), -EINVAL);
  /* Until the receiver has parked (bounded: 30 s). */
  int parked = 0;
  for (int i = 0; i < 3000 && !parked; ++i) {
    REQUIRE_OK(weft_runtime_dump(rt, WEFT_FORMAT_TEXT, &text, &len));
    parked = strstr(text, "\"c-receiver\" [parked: chan_recv on channel 0x") != NULL;
    if (parked) {
      CHECK_EQ(len, strlen(text));
      CHECK(strstr(text, "weft_capi_test_parked_in_recv") != NULL);
    }
    weft_free(text);
    if (!parked) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  CHECK(parked);
  REQUIRE_OK(weft_runtime_dump(rt, WEFT_FORMAT_JSON, &text, NULL));
  CHECK(text[0] == '{');
  CHECK(strstr(text, "\"c-receiver\"") != NULL);
  weft_free(text);
  weft_chan_close(c);
  REQUIRE_OK(weft_join(f, NULL));
  weft_chan_free(c);
  weft_runtime_free(rt);
}
