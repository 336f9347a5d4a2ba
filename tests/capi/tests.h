/* The tests of weft_test_capi, in the order main.c runs them (one list,
 * expanded into the declarations here and into main.c's table). */
#ifndef WEFT_TESTS_CAPI_TESTS_H
#define WEFT_TESTS_CAPI_TESTS_H

#define WEFT_CAPI_TESTS(X)            \
  X(version_and_errors)               \
  X(config_and_runtime_errors)        \
  X(limits)                           \
  X(memory_limit)                     \
  X(spawn_join)                       \
  X(spawn_options)                    \
  X(join_reports_exceptions)          \
  X(cancel)                           \
  X(join_cancelled_waiter)            \
  X(yield_and_sleep)                  \
  X(sleep_in_fiber)                   \
  X(spawn_blocking)                   \
  X(runtime_free_cancels_fibers)      \
  X(last_error_is_per_fiber)          \
  X(observability)                    \
  X(chan_sizes_and_capacities)        \
  X(chan_errors_and_timeouts)         \
  X(chan_close)                       \
  X(chan_wakeups_on_close_and_cancel) \
  X(chan_thread_and_fiber)            \
  X(pingpong_10000_fibers)            \
  X(select_basics)                    \
  X(select_fairness)                  \
  X(select_many_large_cases)          \
  X(select_blocking_and_cancel)       \
  X(mutex_contended)                  \
  X(mutex_errors_timeouts_cancel)     \
  X(cond_producer_consumer)           \
  X(cond_broadcast_timeout_cancel)    \
  X(waitgroup)                        \
  X(quota)                            \
  X(scope)                            \
  X(scope_outer_cancel_and_errors)    \
  X(tokens)                           \
  X(deadlines)                        \
  X(shield)                           \
  X(io_uring)                         \
  X(io_epoll)                         \
  X(fls)

#define WEFT_CAPI_DECLARE_TEST(name) void test_##name(void);
WEFT_CAPI_TESTS(WEFT_CAPI_DECLARE_TEST)
#undef WEFT_CAPI_DECLARE_TEST

/* main.c's death tests: `weft_test_capi death:<name>`. */
int death_test(const char* name);

#endif
