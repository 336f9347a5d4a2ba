/* weft_test_capi: the C ABI's test suite (C11, -Wall -Wextra -Wpedantic
 * -Werror, gcc and clang, plain, ASan+UBSan and TSan builds).
 *
 *   weft_test_capi [NAME-SUBSTRING...]   runs the tests whose name contains one
 *   weft_test_capi --gtest_filter=GLOB[:GLOB...]
 *   weft_test_capi death:runtime_free_in_fiber
 *                                        a child process must abort, with a
 *                                        message (ctest checks it)
 */
#define _GNU_SOURCE /* setenv, clock_gettime */
#include <fnmatch.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tests.h"

static atomic_long failures;
static const char* current_test = "";

void check_failed(const char* file, int line, const char* expr, long long got, long long want,
                  int show_values) {
  const long n = atomic_fetch_add(&failures, 1) + 1;
  if (n > 20) return;
  if (show_values) {
    fprintf(stderr, "%s:%d: %s: CHECK failed: %s (got %lld, want %lld)\n", file, line, current_test,
            expr, got, want);
  } else {
    fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", file, line, current_test, expr);
  }
}

int sanitized(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return 1;
#else
  return 0;
#endif
#else
  return 0;
#endif
}

long scaled(long n, long min) {
  const long v = sanitized() ? n / 10 : n;
  return v < min ? min : v;
}

weft_runtime* new_runtime(uint32_t workers) {
  weft_config cfg;
  weft_config_init(&cfg);
  cfg.workers = workers;
  weft_runtime* rt = NULL;
  REQUIRE_OK(weft_runtime_new(&cfg, &rt));
  return rt;
}

void* run_on(weft_runtime* rt, void* (*fn)(void*), void* arg) {
  void* result = NULL;
  REQUIRE_OK(weft_block_on(rt, fn, arg, &result));
  return result;
}

void* spawn_then_cancel(weft_runtime* rt, void* (*fn)(void*), void* arg) {
  weft_fiber* f = NULL;
  REQUIRE_OK(weft_spawn(rt, fn, arg, &f));
  weft_sleep_ns(3 * MS);
  CHECK_EQ(weft_cancel(f), 0);
  void* result = NULL;
  CHECK_EQ(weft_join(f, &result), 0);
  return result;
}

int eventually(int (*pred)(void*), void* arg) {
  const int64_t patience = (sanitized() ? 120 : 30) * 1000 * MS;
  const int64_t until = weft_now_ns() + patience;
  while (!pred(arg)) {
    if (weft_now_ns() > until) return pred(arg);
    weft_sleep_ns(MS);
  }
  return 1;
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "\nWATCHDOG: a test is stuck; aborting\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  abort();
}

/* Runs death test `name` in a child process (forked before any thread
 * exists) and passes if the child aborts (SIGABRT); its stderr is ours, so
 * ctest also checks its message. */
static int expect_abort(const char* name) {
  fflush(NULL);
  const pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  if (child == 0) _exit(death_test(name) == 0 ? 0 : 3);
  int status = 0;
  if (waitpid(child, &status, 0) != child) {
    perror("waitpid");
    return 1;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
    printf("death test %s: the child aborted, as it must\n", name);
    return 0;
  }
  fprintf(stderr, "death test %s: the child did not abort (status 0x%x)\n", name, status);
  return 1;
}

struct test {
  const char* name;
  void (*fn)(void);
};

#define WEFT_CAPI_TEST_ENTRY(name) {#name, test_##name},
static const struct test tests[] = {WEFT_CAPI_TESTS(WEFT_CAPI_TEST_ENTRY)};
#undef WEFT_CAPI_TEST_ENTRY

/* An argument selects the tests whose name contains it; as in GoogleTest,
 * --gtest_filter=PATTERN[:PATTERN...] selects names matching a glob (so that
 * the mutant runner can pass its filter to every test binary alike). */
static int selected(const char* name, int argc, char** argv) {
  if (argc <= 1) return 1;
  static const char kFilter[] = "--gtest_filter=";
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], kFilter, sizeof kFilter - 1) != 0) {
      if (strstr(name, argv[i]) != NULL) return 1;
      continue;
    }
    char patterns[512];
    snprintf(patterns, sizeof patterns, "%s", argv[i] + sizeof kFilter - 1);
    char* save = NULL;
    for (char* p = strtok_r(patterns, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
      if (fnmatch(p, name, 0) == 0) return 1;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strncmp(argv[1], "death:", 6) == 0) return expect_abort(argv[1] + 6);
  signal(SIGALRM, watchdog);
  const unsigned limit = sanitized() ? 900 : 240;
  int ran = 0, failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; ++i) {
    if (!selected(tests[i].name, argc, argv)) continue;
    current_test = tests[i].name;
    const long before = atomic_load(&failures);
    printf("[ RUN      ] %s\n", tests[i].name);
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm(limit);
    tests[i].fn();
    alarm(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const long ms = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    const int ok = atomic_load(&failures) == before;
    printf("[ %s ] %s (%ld ms)\n", ok ? "      OK" : " FAILED ", tests[i].name, ms);
    fflush(stdout);
    ++ran;
    failed += !ok;
  }
  printf("%d tests ran, %d failed\n", ran, failed);
  if (ran == 0) {
    fprintf(stderr, "no test matches\n");
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
