/* A small test harness for the C ABI tests (C11): checks that record a
 * failure and go on, usable from any fiber or thread; tests registered in
 * main.c and run by name; a watchdog that aborts a hung test with its
 * name. Tests assert behaviour, never an upper bound on time. */
#ifndef WEFT_TESTS_CAPI_CHECK_H
#define WEFT_TESTS_CAPI_CHECK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/weft.h"

/* Records a failed check (thread-safe; prints the first 20). */
void check_failed(const char* file, int line, const char* expr, long long got, long long want,
                  int show_values);

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) check_failed(__FILE__, __LINE__, #cond, 0, 0, 0); \
  } while (0)

#define CHECK_EQ(got, want)                                                            \
  do {                                                                                 \
    const long long check_got_ = (long long)(got);                                     \
    const long long check_want_ = (long long)(want);                                   \
    if (check_got_ != check_want_)                                                     \
      check_failed(__FILE__, __LINE__, #got " == " #want, check_got_, check_want_, 1); \
  } while (0)

/* A call that must succeed; the test cannot go on otherwise. */
#define REQUIRE_OK(call)                                                          \
  do {                                                                            \
    const int require_rc_ = (call);                                               \
    if (require_rc_ != 0) {                                                       \
      check_failed(__FILE__, __LINE__, #call, require_rc_, 0, 1);                 \
      fprintf(stderr, "  (%s; %s) cannot continue\n", weft_strerror(require_rc_), \
              weft_last_error());                                                 \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

/* 1 in a sanitizer build: loops are scaled down (never below `min`). */
int sanitized(void);
long scaled(long n, long min);

/* A runtime with `workers` workers (0: the default) and the default stack
 * size; exits on failure. */
weft_runtime* new_runtime(uint32_t workers);

/* Runs fn(arg) on rt as a fiber and returns its result (exits on failure). */
void* run_on(weft_runtime* rt, void* (*fn)(void*), void* arg);

/* Spawns fn(arg) on rt, lets it reach its blocking call (a few ms; if it
 * has not parked yet it is cancelled before, which the calls under test
 * must report the same way), cancels it, joins it and returns its result. */
void* spawn_then_cancel(weft_runtime* rt, void* (*fn)(void*), void* arg);

/* ms / us in ns. */
#define MS ((int64_t)1000000)
#define US ((int64_t)1000)

/* Sleeps the caller (fiber or thread) until pred(arg) is true or a generous
 * patience passed; returns pred's last value. A hang detector, not a time
 * bound. */
int eventually(int (*pred)(void*), void* arg);

#endif
