/* Fiber-local slots through the C ABI. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "tests.h"

static atomic_int destroyed;
static void count_destroy(void* v) {
  (void)v;
  atomic_fetch_add(&destroyed, 1);
}

static weft_fls_key *key_none, *key_share;

static void* own_values(void* arg) {
  /* each fiber keeps its own value across switches */
  if (weft_fls_get(key_none) != NULL) return (void*)1;
  if (weft_fls_set(key_none, arg) != 0) return (void*)2;
  for (int i = 0; i < 100; ++i) {
    weft_yield();
    if (weft_fls_get(key_none) != arg) return (void*)3;
  }
  return NULL;
}

static void* child_reads(void* arg) {
  (void)arg;
  void* none = weft_fls_get(key_none);
  void* shared = weft_fls_get(key_share);
  return (void*)(intptr_t)((none == NULL ? 0 : 1) + (shared == (void*)0x5 ? 0 : 2));
}

static void* parent_sets(void* arg) {
  (void)arg;
  if (weft_fls_set(key_none, (void*)0x4) != 0 || weft_fls_set(key_share, (void*)0x5) != 0)
    return (void*)10;
  weft_fiber* c = NULL;
  void* r = NULL;
  if (weft_spawn(NULL, child_reads, NULL, &c) != 0) return (void*)11;
  weft_join(c, &r);
  if (r != NULL) return r;
  /* replacing a value destroys the old one; clearing destroys it too */
  const int before = atomic_load(&destroyed);
  weft_fls_set(key_none, (void*)0x6);
  if (atomic_load(&destroyed) != before + 1) return (void*)12;
  weft_fls_set(key_none, NULL);
  if (atomic_load(&destroyed) != before + 2 || weft_fls_get(key_none) != NULL) return (void*)13;
  return NULL; /* key_share's value dies with this fiber (the child is done) */
}

void test_fls(void) {
  weft_runtime* rt = new_runtime(2);
  CHECK_EQ(weft_fls_key_new(count_destroy, 1, &key_none), -EINVAL); /* copy: not offered */
  CHECK_EQ(weft_fls_key_new(count_destroy, WEFT_FLS_NONE, NULL), -EINVAL);
  REQUIRE_OK(weft_fls_key_new(count_destroy, WEFT_FLS_NONE, &key_none));
  REQUIRE_OK(weft_fls_key_new(count_destroy, WEFT_FLS_SHARE, &key_share));
  atomic_store(&destroyed, 0);

  weft_fiber* f[8];
  for (int i = 0; i < 8; ++i)
    REQUIRE_OK(weft_spawn(rt, own_values, (void*)(intptr_t)(i + 1), &f[i]));
  for (int i = 0; i < 8; ++i) {
    void* r = (void*)1;
    CHECK_EQ(weft_join(f[i], &r), 0);
    CHECK(r == NULL);
  }
  CHECK_EQ(atomic_load(&destroyed), 8); /* each fiber's value, when it ended */

  atomic_store(&destroyed, 0);
  CHECK_EQ((intptr_t)run_on(rt, parent_sets, NULL), 0);
  CHECK_EQ(atomic_load(&destroyed), 3); /* 0x4 replaced, 0x6 cleared, 0x5 once (shared) */

  /* a plain thread has its own values; freeing the key destroys them */
  atomic_store(&destroyed, 0);
  CHECK_EQ(weft_fls_set(key_none, (void*)0x7), 0);
  CHECK(weft_fls_get(key_none) == (void*)0x7);
  CHECK_EQ(weft_fls_set(NULL, NULL), -EINVAL);
  CHECK(weft_fls_get(NULL) == NULL);
  weft_fls_key_free(key_none);
  CHECK_EQ(atomic_load(&destroyed), 1);
  weft_fls_key_free(key_share);
  weft_fls_key_free(NULL);
  weft_runtime_free(rt);
}
