/* docs/guide/embedding.md: weft from C (weft.h), as a language runtime or
 * any program with a C FFI would use it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/weft.h"

/* [c_fibers] */
static weft_chan* numbers;

static void* produce(void* arg) {
  int64_t n = (int64_t)(intptr_t)arg;
  for (int64_t i = 1; i <= n; ++i) {
    if (weft_chan_send(numbers, &i, WEFT_NO_TIMEOUT) != 0) break; /* closed or cancelled */
  }
  weft_chan_close(numbers);
  return NULL;
}

static void* consume(void* arg) {
  (void)arg;
  int64_t v = 0, sum = 0;
  while (weft_chan_recv(numbers, &v, WEFT_NO_TIMEOUT) == 0) sum += v; /* -EPIPE: closed, drained */
  return (void*)(intptr_t)sum;
}

static void* main_fiber(void* arg) {
  weft_runtime* rt = arg;
  weft_fiber* producer = NULL;
  void* sum = NULL;
  if (weft_spawn(rt, produce, (void*)(intptr_t)100, &producer) != 0) return NULL;
  weft_fiber* consumer = NULL;
  if (weft_spawn(rt, consume, NULL, &consumer) == 0) weft_join(consumer, &sum);
  weft_join(producer, NULL);
  return sum;
}
/* [c_fibers end] */

int main(void) {
  /* [c_runtime] */
  weft_runtime* rt = NULL;
  int rc = weft_runtime_new(NULL, &rt); /* NULL: defaults and WEFT_* variables */
  if (rc != 0) {
    fprintf(stderr, "weft_runtime_new: %s (%s)\n", weft_strerror(rc), weft_last_error());
    return 1;
  }
  rc = weft_chan_new(sizeof(int64_t), 8, &numbers);
  void* result = NULL;
  if (rc == 0) rc = weft_block_on(rt, main_fiber, rt, &result);
  weft_chan_free(numbers);
  weft_runtime_free(rt);
  /* [c_runtime end] */
  if (rc != 0 || (intptr_t)result != 5050) {
    fprintf(stderr, "guide example: check failed: sum %ld, rc %d\n", (long)(intptr_t)result, rc);
    return 1;
  }
  return 0;
}
