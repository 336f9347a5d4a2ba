/* C functions for the Python ctypes test (ctypes_test.py) to spawn as
 * fibers through weft.h: Python passes their addresses to weft_spawn. */
#include <errno.h>
#include <stdint.h>

#include "weft/weft.h"

/* Returns arg * 2. */
void* pyhelper_double(void* arg) {
  return (void*)((intptr_t)arg * 2);
}

/* arg: a weft_chan of int64_t. Receives until the channel is closed and
 * returns the sum of what it received (or -1 on an unexpected error). */
void* pyhelper_sum_channel(void* arg) {
  int64_t sum = 0, v = 0;
  int rc;
  while ((rc = weft_chan_recv((weft_chan*)arg, &v, WEFT_NO_TIMEOUT)) == 0) sum += v;
  return (void*)(intptr_t)(rc == -EPIPE ? sum : -1);
}

/* Parks until cancelled and returns the code its sleep returned. */
void* pyhelper_sleep_forever(void* arg) {
  (void)arg;
  return (void*)(intptr_t)weft_sleep_until_ns(WEFT_NO_DEADLINE);
}

/* Returns the calling fiber's id (proves the function ran in a fiber). */
void* pyhelper_self_id(void* arg) {
  (void)arg;
  return (void*)(uintptr_t)weft_self_id();
}
