/* weft-bench-capi, the C side: the same work as capi.cpp's C++ side,
 * written in C against weft.h. Each function runs on a fiber and returns
 * the elapsed ns of its timed part, or -1 on a wrong result. */
#include <stdint.h>

#include "weft/weft.h"

static void* empty(void* arg) {
  (void)arg;
  return NULL;
}

/* Spawns n empty fibers keeping the handles in hs, then joins them all. */
int64_t capi_c_spawn_join(weft_fiber** hs, long n) {
  const int64_t t0 = weft_now_ns();
  for (long i = 0; i < n; ++i) {
    if (weft_spawn(NULL, empty, NULL, &hs[i]) != 0) return -1;
  }
  for (long i = 0; i < n; ++i) {
    if (weft_join(hs[i], NULL) != 0) return -1;
  }
  return weft_now_ns() - t0;
}

/* Spawns an empty fiber and joins it at once, n times. */
int64_t capi_c_spawn_join_seq(long n) {
  const int64_t t0 = weft_now_ns();
  for (long i = 0; i < n; ++i) {
    weft_fiber* f = NULL;
    if (weft_spawn(NULL, empty, NULL, &f) != 0 || weft_join(f, NULL) != 0) return -1;
  }
  return weft_now_ns() - t0;
}

struct pingpong {
  weft_chan *ping, *pong;
};

static void* echo(void* arg) {
  struct pingpong* p = arg;
  int64_t v = 0;
  while (weft_chan_recv(p->ping, &v, WEFT_NO_TIMEOUT) == 0) {
    if (weft_chan_send(p->pong, &v, WEFT_NO_TIMEOUT) != 0) break;
  }
  return NULL;
}

/* n round trips over two rendezvous channels of int64_t with an echo
 * fiber (Go's chanpingpong shape). */
int64_t capi_c_pingpong(long n) {
  struct pingpong p;
  if (weft_chan_new(sizeof(int64_t), 0, &p.ping) != 0) return -1;
  if (weft_chan_new(sizeof(int64_t), 0, &p.pong) != 0) return -1;
  weft_fiber* e = NULL;
  if (weft_spawn(NULL, echo, &p, &e) != 0) return -1;
  int64_t bad = 0;
  const int64_t t0 = weft_now_ns();
  for (int64_t i = 0; i < n; ++i) {
    int64_t back = -1;
    if (weft_chan_send(p.ping, &i, WEFT_NO_TIMEOUT) != 0 ||
        weft_chan_recv(p.pong, &back, WEFT_NO_TIMEOUT) != 0 || back != i) {
      ++bad;
      break;
    }
  }
  const int64_t elapsed = weft_now_ns() - t0;
  weft_chan_close(p.ping);
  weft_join(e, NULL);
  weft_chan_free(p.ping);
  weft_chan_free(p.pong);
  return bad == 0 ? elapsed : -1;
}
