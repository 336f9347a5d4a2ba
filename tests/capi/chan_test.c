/* Channels and select through the C ABI. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "tests.h"

/* The byte k of element i of a test stream. */
static unsigned char pattern(long i, size_t k) {
  return (unsigned char)((i * 31 + (long)k * 7 + 3) & 0xff);
}

struct stream {
  weft_chan* c;
  size_t size;
  long count;
  long bad; /* receiver: elements with a wrong byte */
  int rc;   /* the first failing code */
};

static void* produce(void* arg) {
  struct stream* s = arg;
  unsigned char* buf = malloc(s->size + 1);
  for (long i = 0; i < s->count; ++i) {
    for (size_t k = 0; k < s->size; ++k) buf[k] = pattern(i, k);
    const int rc = weft_chan_send(s->c, buf, WEFT_NO_TIMEOUT);
    if (rc != 0) {
      s->rc = rc;
      break;
    }
  }
  free(buf);
  weft_chan_close(s->c);
  return NULL;
}

static void* consume(void* arg) {
  struct stream* s = arg;
  unsigned char* buf = malloc(s->size + 1);
  long i = 0;
  for (;; ++i) {
    const int rc = weft_chan_recv(s->c, buf, WEFT_NO_TIMEOUT);
    if (rc == -EPIPE) break;
    if (rc != 0) {
      s->rc = rc;
      break;
    }
    for (size_t k = 0; k < s->size; ++k) {
      if (buf[k] != pattern(i, k)) {
        ++s->bad;
        break;
      }
    }
  }
  free(buf);
  return (void*)(intptr_t)i;
}

void test_chan_sizes_and_capacities(void) {
  static const size_t sizes[] = {0,  1,   7,   8,   9,   16,  24,   32,  33,
                                 64, 100, 128, 200, 256, 257, 1000, 4096};
  static const size_t caps[] = {0, 1, 16, WEFT_CHAN_UNBOUNDED};
  weft_runtime* rt = new_runtime(2);
  for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; ++a) {
    for (size_t b = 0; b < sizeof caps / sizeof caps[0]; ++b) {
      struct stream s = {NULL, sizes[a], 300, 0, 0};
      REQUIRE_OK(weft_chan_new(s.size, caps[b], &s.c));
      CHECK_EQ(weft_chan_capacity(s.c), caps[b]);
      weft_fiber *p = NULL, *q = NULL;
      REQUIRE_OK(weft_spawn(rt, produce, &s, &p));
      REQUIRE_OK(weft_spawn(rt, consume, &s, &q));
      void* got = NULL;
      CHECK_EQ(weft_join(p, NULL), 0);
      CHECK_EQ(weft_join(q, &got), 0);
      CHECK_EQ((intptr_t)got, s.count);
      CHECK_EQ(s.bad, 0);
      CHECK_EQ(s.rc, 0);
      CHECK_EQ(weft_chan_is_closed(s.c), 1);
      weft_chan_free(s.c);
    }
  }
  weft_runtime_free(rt);
}

void test_chan_errors_and_timeouts(void) {
  weft_chan* c = NULL;
  CHECK_EQ(weft_chan_new(8, 1, NULL), -EINVAL);
  c = (weft_chan*)&c;
  CHECK_EQ(weft_chan_new((size_t)1 << 31, 1, &c), -EINVAL);
  CHECK(c == NULL);
  REQUIRE_OK(weft_chan_new(8, 1, &c));
  const int64_t v = 5;
  int64_t out = 0;
  CHECK_EQ(weft_chan_send(NULL, &v, 0), -EINVAL);
  CHECK_EQ(weft_chan_send(c, NULL, 0), -EINVAL);
  CHECK_EQ(weft_chan_send(c, &v, -2), -EINVAL);
  CHECK_EQ(weft_chan_recv(NULL, &out, 0), -EINVAL);
  CHECK_EQ(weft_chan_recv(c, NULL, 0), -EINVAL);
  CHECK_EQ(weft_chan_recv(c, &out, -7), -EINVAL);

  /* From this plain thread: the calls block the thread. */
  CHECK_EQ(weft_chan_recv(c, &out, 0), -EAGAIN);
  CHECK_EQ(weft_chan_recv(c, &out, 2 * MS), -ETIMEDOUT);
  CHECK_EQ(weft_chan_send(c, &v, 0), 0);
  CHECK_EQ(weft_chan_len(c), 1);
  CHECK_EQ(weft_chan_send(c, &v, 0), -EAGAIN);
  CHECK_EQ(weft_chan_send(c, &v, 2 * MS), -ETIMEDOUT);
  CHECK_EQ(weft_chan_recv(c, &out, 0), 0);
  CHECK_EQ(out, 5);
  CHECK_EQ(weft_chan_len(c), 0);
  CHECK_EQ(weft_chan_len(NULL), 0);
  CHECK_EQ(weft_chan_capacity(NULL), 0);
  CHECK_EQ(weft_chan_is_closed(NULL), 0);
  weft_chan_free(c);

  /* Rendezvous: a send needs a receiver. */
  REQUIRE_OK(weft_chan_new(8, 0, &c));
  CHECK_EQ(weft_chan_send(c, &v, 0), -EAGAIN);
  CHECK_EQ(weft_chan_send(c, &v, MS), -ETIMEDOUT);
  CHECK_EQ(weft_chan_len(c), 0);
  weft_chan_free(c);

  /* Size 0: pure signals; NULL element pointers are fine. */
  REQUIRE_OK(weft_chan_new(0, 2, &c));
  CHECK_EQ(weft_chan_send(c, NULL, 0), 0);
  CHECK_EQ(weft_chan_recv(c, NULL, 0), 0);
  weft_chan_free(c);
  weft_chan_close(NULL);
  weft_chan_free(NULL);
}

void test_chan_close(void) {
  weft_chan* c = NULL;
  REQUIRE_OK(weft_chan_new(1000, 8, &c)); /* boxed elements */
  char e[1000];
  for (int i = 0; i < 3; ++i) {
    memset(e, 'a' + i, sizeof e);
    CHECK_EQ(weft_chan_send(c, e, 0), 0);
  }
  weft_chan_close(c);
  weft_chan_close(c); /* idempotent */
  CHECK_EQ(weft_chan_is_closed(c), 1);
  CHECK_EQ(weft_chan_send(c, e, 0), -EPIPE);
  CHECK_EQ(weft_chan_send(c, e, WEFT_NO_TIMEOUT), -EPIPE);
  for (int i = 0; i < 3; ++i) {
    CHECK_EQ(weft_chan_recv(c, e, 0), 0);
    CHECK_EQ(e[0], 'a' + i);
    CHECK_EQ(e[999], 'a' + i);
  }
  CHECK_EQ(weft_chan_recv(c, e, 0), -EPIPE);
  CHECK_EQ(weft_chan_recv(c, e, WEFT_NO_TIMEOUT), -EPIPE);
  weft_chan_free(c);

  /* Freeing a channel with buffered boxed elements frees them (ASan). */
  REQUIRE_OK(weft_chan_new(1000, WEFT_CHAN_UNBOUNDED, &c));
  for (int i = 0; i < 10; ++i) CHECK_EQ(weft_chan_send(c, e, 0), 0);
  CHECK_EQ(weft_chan_len(c), 10);
  weft_chan_free(c);
}

struct blocked {
  weft_chan* c;
  int send;
  atomic_int rc;
};
static void* block_on_chan(void* arg) {
  struct blocked* b = arg;
  int64_t v = 77;
  atomic_store(&b->rc, b->send ? weft_chan_send(b->c, &v, WEFT_NO_TIMEOUT)
                               : weft_chan_recv(b->c, &v, WEFT_NO_TIMEOUT));
  return NULL;
}

void test_chan_wakeups_on_close_and_cancel(void) {
  weft_runtime* rt = new_runtime(2);
  for (int send = 0; send <= 1; ++send) {
    /* close wakes a blocked sender / receiver with -EPIPE */
    struct blocked b = {NULL, send, 1};
    REQUIRE_OK(weft_chan_new(8, 0, &b.c));
    weft_fiber* f = NULL;
    REQUIRE_OK(weft_spawn(rt, block_on_chan, &b, &f));
    weft_sleep_ns(3 * MS);
    weft_chan_close(b.c);
    CHECK_EQ(weft_join(f, NULL), 0);
    CHECK_EQ(atomic_load(&b.rc), -EPIPE);
    weft_chan_free(b.c);

    /* cancel wakes it with -ECANCELED, nothing transferred */
    struct blocked k = {NULL, send, 1};
    REQUIRE_OK(weft_chan_new(8, 0, &k.c));
    spawn_then_cancel(rt, block_on_chan, &k);
    CHECK_EQ(atomic_load(&k.rc), -ECANCELED);
    int64_t v = 0;
    CHECK_EQ(weft_chan_recv(k.c, &v, 0), -EAGAIN); /* the cancelled send left nothing */
    weft_chan_free(k.c);
  }
  weft_runtime_free(rt);
}

/* A plain thread and fibers on one channel. */
static void* thread_sender(void* c) {
  for (int64_t i = 1; i <= 100; ++i) {
    if (weft_chan_send(c, &i, WEFT_NO_TIMEOUT) != 0) return (void*)1;
  }
  return NULL;
}
static void* fiber_sum(void* c) {
  int64_t sum = 0, v = 0;
  for (int i = 0; i < 100; ++i) {
    if (weft_chan_recv(c, &v, WEFT_NO_TIMEOUT) != 0) return (void*)-1;
    sum += v;
  }
  return (void*)(intptr_t)sum;
}

void test_chan_thread_and_fiber(void) {
  weft_runtime* rt = new_runtime(2);
  weft_chan* c = NULL;
  REQUIRE_OK(weft_chan_new(8, 0, &c));
  pthread_t t;
  pthread_create(&t, NULL, thread_sender, c);
  CHECK_EQ((intptr_t)run_on(rt, fiber_sum, c), 5050);
  void* tr = NULL;
  pthread_join(t, &tr);
  CHECK(tr == NULL);
  weft_chan_free(c);
  weft_runtime_free(rt);
}

/* 10,000 fibers ping-ponging: 5,000 pairs, each over its own two
 * rendezvous channels; the pinger sends i, the ponger answers i * 2 + 1. */
enum { kPairs = 5000 };
struct pair {
  weft_chan *ping, *pong;
  long rounds;
};
static atomic_long pp_messages, pp_sum, pp_bad;
static void* pinger(void* arg) {
  struct pair* p = arg;
  for (int64_t i = 0; i < p->rounds; ++i) {
    int64_t back = 0;
    if (weft_chan_send(p->ping, &i, WEFT_NO_TIMEOUT) != 0 ||
        weft_chan_recv(p->pong, &back, WEFT_NO_TIMEOUT) != 0 || back != i * 2 + 1) {
      atomic_fetch_add(&pp_bad, 1);
      break;
    }
    atomic_fetch_add(&pp_sum, back);
  }
  weft_chan_close(p->ping);
  return NULL;
}
static void* ponger(void* arg) {
  struct pair* p = arg;
  int64_t v = 0;
  while (weft_chan_recv(p->ping, &v, WEFT_NO_TIMEOUT) == 0) {
    atomic_fetch_add(&pp_messages, 2);
    const int64_t back = v * 2 + 1;
    if (weft_chan_send(p->pong, &back, WEFT_NO_TIMEOUT) != 0) atomic_fetch_add(&pp_bad, 1);
  }
  return NULL;
}

static void pingpong_on(uint32_t workers) {
  weft_config cfg;
  weft_config_init(&cfg);
  cfg.workers = workers;
  cfg.stack_size = 64 * 1024;
  weft_runtime* rt = NULL;
  REQUIRE_OK(weft_runtime_new(&cfg, &rt));
  const long rounds = scaled(20, 2);
  struct pair* pairs = calloc(kPairs, sizeof *pairs);
  weft_fiber** fibers = calloc(2 * kPairs, sizeof *fibers);
  atomic_store(&pp_messages, 0);
  atomic_store(&pp_sum, 0);
  atomic_store(&pp_bad, 0);
  for (int i = 0; i < kPairs; ++i) {
    pairs[i].rounds = rounds;
    REQUIRE_OK(weft_chan_new(8, 0, &pairs[i].ping));
    REQUIRE_OK(weft_chan_new(8, 0, &pairs[i].pong));
    REQUIRE_OK(weft_spawn(rt, pinger, &pairs[i], &fibers[2 * i]));
    REQUIRE_OK(weft_spawn(rt, ponger, &pairs[i], &fibers[2 * i + 1]));
  }
  for (int i = 0; i < 2 * kPairs; ++i) CHECK_EQ(weft_join(fibers[i], NULL), 0);
  CHECK_EQ(atomic_load(&pp_bad), 0);
  CHECK_EQ(atomic_load(&pp_messages), 2L * kPairs * rounds);
  /* sum over pairs of sum_{i<rounds} (2i + 1) = rounds^2 per pair */
  CHECK_EQ(atomic_load(&pp_sum), (long)kPairs * rounds * rounds);
  for (int i = 0; i < kPairs; ++i) {
    weft_chan_free(pairs[i].ping);
    weft_chan_free(pairs[i].pong);
  }
  free(pairs);
  free(fibers);
  weft_runtime_free(rt);
}

void test_pingpong_10000_fibers(void) {
  pingpong_on(1);
  pingpong_on(2);
  pingpong_on(4);
}

/* --- select ------------------------------------------------------------ */

void test_select_basics(void) {
  weft_chan *a = NULL, *b = NULL, *closed = NULL;
  REQUIRE_OK(weft_chan_new(8, 4, &a));
  REQUIRE_OK(weft_chan_new(8, 4, &b));
  REQUIRE_OK(weft_chan_new(8, 4, &closed));
  weft_chan_close(closed);
  int64_t va = 0, vb = 0, vc = 0;
  weft_select_case cases[3] = {{a, &va, WEFT_SELECT_RECV, 1},
                               {b, &vb, WEFT_SELECT_RECV, 1},
                               {NULL, &vc, WEFT_SELECT_RECV, 1}};
  size_t fired = 99;
  /* nothing ready */
  CHECK_EQ(weft_select(cases, 3, 0, &fired), -EAGAIN);
  CHECK_EQ(weft_select(cases, 3, 2 * MS, &fired), -ETIMEDOUT);
  /* b ready */
  const int64_t seven = 7;
  CHECK_EQ(weft_chan_send(b, &seven, 0), 0);
  CHECK_EQ(weft_select(cases, 3, WEFT_NO_TIMEOUT, &fired), 0);
  CHECK_EQ(fired, 1);
  CHECK_EQ(cases[1].result, 0);
  CHECK_EQ(vb, 7);
  CHECK_EQ(va, 0);
  /* a closed channel fires with -EPIPE */
  cases[2].chan = closed;
  CHECK_EQ(weft_select(cases, 3, WEFT_NO_TIMEOUT, &fired), 0);
  CHECK_EQ(fired, 2);
  CHECK_EQ(cases[2].result, -EPIPE);
  /* a send case; the recv case that does not fire takes nothing */
  int64_t eight = 8;
  weft_select_case send_or_recv[2] = {{a, &eight, WEFT_SELECT_SEND, 1},
                                      {b, &vb, WEFT_SELECT_RECV, 1}};
  CHECK_EQ(weft_select(send_or_recv, 2, 0, &fired), 0);
  CHECK_EQ(fired, 0);
  CHECK_EQ(send_or_recv[0].result, 0);
  CHECK_EQ(weft_chan_len(a), 1);
  CHECK_EQ(weft_chan_recv(a, &va, 0), 0);
  CHECK_EQ(va, 8);
  /* a send case on a closed channel fires with -EPIPE, nothing sent */
  weft_select_case send_closed[1] = {{closed, &eight, WEFT_SELECT_SEND, 1}};
  CHECK_EQ(weft_select(send_closed, 1, 0, &fired), 0);
  CHECK_EQ(send_closed[0].result, -EPIPE);

  /* errors */
  weft_select_case disabled[2] = {{NULL, &va, WEFT_SELECT_RECV, 0},
                                  {NULL, &vb, WEFT_SELECT_SEND, 0}};
  CHECK_EQ(weft_select(disabled, 2, WEFT_NO_TIMEOUT, &fired), -EINVAL);
  CHECK_EQ(weft_select(disabled, 2, MS, &fired), -ETIMEDOUT);
  CHECK_EQ(weft_select(disabled, 2, 0, &fired), -EAGAIN);
  CHECK_EQ(weft_select(NULL, 2, 0, &fired), -EINVAL);
  CHECK_EQ(weft_select(cases, 0, 0, &fired), -EINVAL);
  CHECK_EQ(weft_select(cases, 3, 0, NULL), -EINVAL);
  CHECK_EQ(weft_select(cases, 3, -3, &fired), -EINVAL);
  weft_select_case bad_op[1] = {{a, &va, 5, 0}};
  CHECK_EQ(weft_select(bad_op, 1, 0, &fired), -EINVAL);
  weft_select_case no_elem[1] = {{a, NULL, WEFT_SELECT_RECV, 0}};
  CHECK_EQ(weft_select(no_elem, 1, 0, &fired), -EINVAL);
  weft_chan_free(a);
  weft_chan_free(b);
  weft_chan_free(closed);
}

void test_select_fairness(void) {
  weft_chan *a = NULL, *b = NULL;
  REQUIRE_OK(weft_chan_new(8, WEFT_CHAN_UNBOUNDED, &a));
  REQUIRE_OK(weft_chan_new(8, WEFT_CHAN_UNBOUNDED, &b));
  for (int64_t i = 0; i < 1000; ++i) {
    CHECK_EQ(weft_chan_send(a, &i, 0), 0);
    CHECK_EQ(weft_chan_send(b, &i, 0), 0);
  }
  int64_t va, vb;
  weft_select_case cases[2] = {{a, &va, WEFT_SELECT_RECV, 0}, {b, &vb, WEFT_SELECT_RECV, 0}};
  long hits[2] = {0, 0};
  for (int i = 0; i < 1000; ++i) {
    size_t fired = 9;
    CHECK_EQ(weft_select(cases, 2, 0, &fired), 0);
    if (fired < 2) ++hits[fired];
  }
  /* Both always ready: a uniform choice fires each ~500 times. */
  CHECK(hits[0] > 100);
  CHECK(hits[1] > 100);
  CHECK_EQ(hits[0] + hits[1], 1000);
  weft_chan_free(a);
  weft_chan_free(b);
}

/* 20 channels of 1000-byte elements (boxed; slots beyond the inline
 * buffer); producers fill them, one select loop receives everything. */
enum { kSelChans = 20, kSelPerChan = 50 };
static weft_chan* sel_chans[kSelChans];
static void* sel_produce(void* arg) {
  const int c = (int)(intptr_t)arg;
  unsigned char e[1000];
  for (int i = 0; i < kSelPerChan; ++i) {
    memset(e, (c * 7 + i) & 0xff, sizeof e);
    memcpy(e, &c, sizeof c);
    if (weft_chan_send(sel_chans[c], e, WEFT_NO_TIMEOUT) != 0) return (void*)1;
  }
  weft_chan_close(sel_chans[c]);
  return NULL;
}
static void* sel_consume(void* arg) {
  (void)arg;
  static unsigned char bufs[kSelChans][1000];
  weft_select_case cases[kSelChans];
  for (int c = 0; c < kSelChans; ++c) {
    cases[c].chan = sel_chans[c];
    cases[c].elem = bufs[c];
    cases[c].op = WEFT_SELECT_RECV;
  }
  int seen[kSelChans] = {0};
  long got = 0, bad = 0;
  for (int open = kSelChans; open > 0;) {
    size_t fired = 0;
    if (weft_select(cases, kSelChans, WEFT_NO_TIMEOUT, &fired) != 0) return (void*)-1;
    if (cases[fired].result == -EPIPE) {
      cases[fired].chan = NULL; /* drained: disable */
      --open;
      continue;
    }
    int c;
    memcpy(&c, bufs[fired], sizeof c);
    if (c != (int)fired || bufs[fired][999] != ((c * 7 + seen[c]) & 0xff)) ++bad;
    ++seen[c];
    ++got;
  }
  return (void*)(intptr_t)(bad == 0 ? got : -2);
}

void test_select_many_large_cases(void) {
  weft_runtime* rt = new_runtime(2);
  for (int c = 0; c < kSelChans; ++c) REQUIRE_OK(weft_chan_new(1000, c % 3, &sel_chans[c]));
  weft_fiber* consumer = NULL;
  REQUIRE_OK(weft_spawn(rt, sel_consume, NULL, &consumer));
  for (int c = 0; c < kSelChans; ++c)
    REQUIRE_OK(weft_spawn(rt, sel_produce, (void*)(intptr_t)c, NULL));
  void* got = NULL;
  CHECK_EQ(weft_join(consumer, &got), 0);
  CHECK_EQ((intptr_t)got, kSelChans * kSelPerChan);
  for (int c = 0; c < kSelChans; ++c) weft_chan_free(sel_chans[c]);
  weft_runtime_free(rt);
}

/* A select parked until a sender comes; a cancelled select takes nothing. */
static weft_chan *sel_a, *sel_b;
static void* select_two(void* arg) {
  (void)arg;
  int64_t va = 0, vb = 0;
  weft_select_case cases[2] = {{sel_a, &va, WEFT_SELECT_RECV, 0},
                               {sel_b, &vb, WEFT_SELECT_RECV, 0}};
  size_t fired = 9;
  const int rc = weft_select(cases, 2, WEFT_NO_TIMEOUT, &fired);
  if (rc != 0) return (void*)(intptr_t)rc;
  return (void*)(intptr_t)(fired == 1 && vb == 99 ? 1 : -1000);
}

void test_select_blocking_and_cancel(void) {
  weft_runtime* rt = new_runtime(2);
  REQUIRE_OK(weft_chan_new(8, 0, &sel_a));
  REQUIRE_OK(weft_chan_new(8, 0, &sel_b));
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn(rt, select_two, NULL, &f));
  weft_sleep_ns(3 * MS);
  const int64_t v = 99;
  CHECK_EQ(weft_chan_send(sel_b, &v, WEFT_NO_TIMEOUT), 0); /* a rendezvous with the select */
  void* r = NULL;
  CHECK_EQ(weft_join(f, &r), 0);
  CHECK_EQ((intptr_t)r, 1);

  CHECK_EQ((intptr_t)spawn_then_cancel(rt, select_two, NULL), -ECANCELED);
  CHECK_EQ(weft_chan_send(sel_a, &v, 0), -EAGAIN); /* no receiver left waiting */
  weft_chan_free(sel_a);
  weft_chan_free(sel_b);
  weft_runtime_free(rt);
}
