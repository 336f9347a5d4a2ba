/* A C program using an installed weft through weft.h: 10 fibers send their
 * number over a channel, the main thread sums them. */
#include <stdint.h>
#include <stdio.h>
#include <weft/weft.h>

static weft_chan* numbers;

static void* send_number(void* arg) {
  const int64_t v = (int64_t)(intptr_t)arg;
  return (void*)(intptr_t)weft_chan_send(numbers, &v, WEFT_NO_TIMEOUT);
}

int main(void) {
  if (weft_version() >> 16 != WEFT_VERSION_MAJOR) return 1;
  weft_runtime* rt = NULL;
  if (weft_runtime_new(NULL, &rt) != 0 || weft_chan_new(sizeof(int64_t), 0, &numbers) != 0)
    return 1;
  weft_fiber* f[10];
  for (int i = 0; i < 10; ++i) {
    if (weft_spawn(rt, send_number, (void*)(intptr_t)(i + 1), &f[i]) != 0) return 1;
  }
  int64_t sum = 0;
  for (int i = 0; i < 10; ++i) {
    int64_t v = 0;
    if (weft_chan_recv(numbers, &v, WEFT_NO_TIMEOUT) != 0) return 1;
    sum += v;
  }
  for (int i = 0; i < 10; ++i) {
    if (weft_join(f[i], NULL) != 0) return 1;
  }
  weft_chan_free(numbers);
  weft_runtime_free(rt);
  printf("consumer_c: weft %s, sum %lld\n", weft_version_string(), (long long)sum);
  return sum == 55 ? 0 : 1;
}
