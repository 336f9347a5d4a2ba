/** @file weft.h weft's C ABI (C11, no C++ in it).
 *
 * Stackful fibers on weft's M:N work-stealing runtime, channels and select,
 * fiber-aware Mutex/CondVar/WaitGroup, structured scopes, cancellation
 * tokens, deadlines, readiness waits and blocking-style I/O on file
 * descriptors, spawn_blocking and fiber-local slots, for any language with
 * a C FFI. It is a thin layer over weft's public C++ API
 * (the include/weft/ .hpp headers); docs/c-api.md is the embedding guide.
 *
 * Conventions (every function follows them unless its comment says
 * otherwise):
 *
 * - Handles (weft_runtime, weft_fiber, weft_chan, ...) are opaque, created
 *   and freed by the library. No struct is passed by value. Option structs
 *   start with `uint32_t struct_size` (set it with the matching *_init
 *   function, or to sizeof the struct you compiled against) so that later
 *   versions can append fields: fields beyond a caller's struct_size take
 *   their defaults.
 * - Every fallible call returns int: 0 on success or a negative errno:
 *     -EINVAL     invalid argument (NULL handle, bad size, bad timeout...)
 *     -ECANCELED  the calling fiber (or its scope) was cancelled while it
 *                 waited, or before: every blocking call is a cancellation
 *                 point, and a cancelled call has done nothing
 *     -ETIMEDOUT  the timeout passed first (nothing was done)
 *     -EAGAIN     timeout_ns was 0 and the call would have had to wait;
 *                 from a spawn: a limit of weft_limits was reached
 *     -EPIPE      the channel is closed (send), or closed and drained (recv)
 *     -ENOMEM     out of memory, or no fiber stack could be mapped
 *     -EPERM      the call needs a fiber (or a runtime) and the caller is a
 *                 plain thread
 *     -ENOTRECOVERABLE  a fiber body ended with a C++ exception that is not
 *                 one of weft's (reported by weft_join)
 *   and, from the I/O calls, the errno of the system call. No C++
 *   exception ever crosses this ABI. weft_strerror() names a code;
 *   weft_last_error() gives the detailed message of the calling fiber's
 *   last failure.
 * - Timeouts are int64_t nanoseconds: -1 (WEFT_NO_TIMEOUT) waits without
 *   limit - unless the runtime has a default timeout for the call
 *   (WEFT_DEFAULT_TIMEOUT_MS for channel and sync waits,
 *   WEFT_NETWORK_TIMEOUT_MS, WEFT_IO_TIMEOUT_MS; none by default: see
 *   docs/configuration.md), which then ends it with -ETIMEDOUT -, 0 never
 *   waits (-EAGAIN if the call would have to), > 0 waits at
 *   most that long (-ETIMEDOUT), < -1 is -EINVAL. Deadlines are absolute
 *   CLOCK_MONOTONIC nanoseconds (weft_now_ns()), -1 (WEFT_NO_DEADLINE) for
 *   none. Timers have a resolution of 1 ms in fibers and never fire early.
 * - Threads. Every call may be made from a weft fiber, from a
 *   spawn_blocking thread, or from any other ("plain") thread, as the C++
 *   API allows: a blocking call parks a fiber (its worker runs other
 *   fibers meanwhile) and blocks a plain thread. The few calls that need
 *   a fiber or a runtime say so and return -EPERM elsewhere. Plain threads
 *   are never cancelled.
 * - Thread safety: a handle may be used by any number of fibers and threads
 *   at once unless its comment says otherwise; freeing a handle while
 *   another call uses it, or using it afterwards, is undefined.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* struct sockaddr, socklen_t (weft_accept, weft_connect) */

#ifdef __cplusplus
extern "C" {
#endif

/* --- version and errors ------------------------------------------------ */

#define WEFT_VERSION_MAJOR 0 /**< major version: incompatible ABI changes */
#define WEFT_VERSION_MINOR 1 /**< minor version: additions */
#define WEFT_VERSION_PATCH 0 /**< patch version: fixes */
/** The version of this header as 0xMMmmpp. */
#define WEFT_VERSION ((WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH)

/** The version of the library linked at run time as 0xMMmmpp (compare with
 *  WEFT_VERSION: the major numbers must be equal). Never fails. */
uint32_t weft_version(void);

/** The library's version as "MAJOR.MINOR.PATCH" (static storage). */
const char* weft_version_string(void);

/** A static, thread-safe description of `err` (a negative errno as the calls
 *  return it; a positive one is accepted too; 0 gives "success"). The codes
 *  weft gives a meaning of its own (ECANCELED, ETIMEDOUT, EAGAIN, EPIPE,
 *  ENOTRECOVERABLE) are described in weft's terms. Never NULL. */
const char* weft_strerror(int err);

/** The message of the last call that failed on the calling fiber (or, on a
 *  thread that is not a fiber, on that thread) with more to say than its
 *  code: an invalid WEFT_* variable and its allowed range, why no fiber
 *  stack could be mapped, a system call's context, the text of a C++
 *  exception that ended a fiber. "" if there is none. Valid until the next
 *  weft call on the same fiber or thread. Calls that succeed or fail in an
 *  expected way (-EAGAIN, -ETIMEDOUT, -EPIPE, -ECANCELED) do not change it. */
const char* weft_last_error(void);

/* No timeout (wait without limit) / no deadline. */
#define WEFT_NO_TIMEOUT ((int64_t)-1)  /**< no timeout: wait without limit */
#define WEFT_NO_DEADLINE ((int64_t)-1) /**< no deadline */

/** CLOCK_MONOTONIC now, in ns: the clock of every deadline. Never fails. */
int64_t weft_now_ns(void);

/* --- runtime ----------------------------------------------------------- */

typedef struct weft_runtime weft_runtime; /**< a runtime (weft_runtime_new) */
typedef struct weft_fiber weft_fiber;     /**< a spawned fiber's handle (weft_spawn) */
typedef struct weft_chan weft_chan;       /**< a channel (weft_chan_new) */

/** Runtime settings. May grow: new fields are appended, after struct_size. */
typedef struct weft_config {
  uint32_t struct_size; /**< sizeof(weft_config) as the caller compiled it */
  uint32_t workers;     /**< worker threads; 0: one per CPU. 1..1024 */
  size_t stack_size;    /**< default fiber stack in bytes: 16 KiB..1 GiB */
} weft_config;

/** Fills *cfg with the defaults, with the WEFT_* environment variables
 *  (WEFT_WORKERS, WEFT_STACK_SIZE, ...: see README) applied. If the
 *  environment holds an invalid value the built-in default is used here,
 *  and weft_runtime_new reports the error. cfg NULL: does nothing. */
void weft_config_init(weft_config* cfg);

/** Starts a runtime: its worker threads, reactor (io_uring, or epoll) and
 *  blocking pool. cfg NULL: weft_config_init's values. Settings that
 *  weft_config has no field for come from the environment.
 *  Returns 0 and *out, or -EINVAL (out NULL, struct_size too small, a field
 *  or WEFT_* variable out of range: weft_last_error() names it), -ENOMEM,
 *  or the errno of a failed thread or io_uring creation. Any thread. */
int weft_runtime_new(const weft_config* cfg, weft_runtime** out);

/** Limits of a runtime (weft_runtime_new_ex): weft::Config's max_fibers
 *  and max_stack_memory. A spawn past one fails with -EAGAIN, starting
 *  nothing; weft_last_error() names the limit and its value. May grow: new
 *  fields are appended, after struct_size. (A struct of its own, not more
 *  fields of weft_config: a program built against the older weft.h calls
 *  weft_config_init with the smaller weft_config.) */
typedef struct weft_limits {
  uint32_t struct_size;      /**< sizeof(weft_limits) as the caller compiled it */
  uint64_t max_fibers;       /**< fibers alive at once; 0: no limit. 0..1e9 */
  uint64_t max_stack_memory; /**< bytes: sum of the stack sizes of the fibers
                                  alive; 0: no limit. 0..64 TiB */
} weft_limits;

/** Fills *limits with the defaults (no limits), with WEFT_MAX_FIBERS and
 *  WEFT_MAX_STACK_MEMORY applied; an invalid value is left at the default
 *  here and reported by weft_runtime_new_ex. limits NULL: does nothing. */
void weft_limits_init(weft_limits* limits);

/** weft_runtime_new with limits (NULL: weft_limits_init's values).
 *  -EINVAL also for a limit out of range or struct_size too small. */
int weft_runtime_new_ex(const weft_config* cfg, const weft_limits* limits, weft_runtime** out);

/** Shuts rt down and frees it: every fiber still alive is cancelled (its
 *  blocking calls return -ECANCELED; shielded ones after a 1 s grace
 *  period), then waited for; fibers spawned meanwhile start cancelled;
 *  running spawn_blocking tasks are waited for. A fiber that never makes a
 *  blocking call again keeps it waiting. Must be called from a thread that
 *  is not a fiber (from a fiber it prints a message and aborts, since it
 *  could wait for itself forever) and not from one of rt's spawn_blocking
 *  threads. Handles of rt's fibers that were never joined must not be
 *  used afterwards. rt NULL: does nothing. */
void weft_runtime_free(weft_runtime* rt);

/** Runs fn(arg) as a fiber of rt and waits for it: blocks a plain thread,
 *  parks a fiber. Returns 0 with *result = fn's value (result may be
 *  NULL), or -EINVAL (rt or fn NULL), -ENOMEM (no fiber could be
 *  started), -ECANCELED (the waiting fiber was cancelled: the fiber runs
 *  on, detached), or the error fn's fiber ended with (see weft_join). */
int weft_block_on(weft_runtime* rt, void* (*fn)(void*), void* arg, void** result);

/* --- the runtime's memory limit (weft::Config::memory_limit) ----------- */

/** Changes rt's memory limit: a soft limit in bytes on the runtime's own
 *  memory (its fibers' stacks and control blocks, its cached stacks; see
 *  docs/configuration.md). 0: off; UINT64_MAX: auto (90 % of the tightest
 *  cgroup memory limit). Above it the runtime trims its caches, then
 *  refuses spawns (-EAGAIN, weft_last_error() naming memory_limit and the
 *  usage) and its listeners' accepts wait, until the memory is below 90 %
 *  of the limit. WEFT_MEMORY_LIMIT sets it at weft_runtime_new. Returns 0,
 *  or -EINVAL (rt NULL; a limit out of 1 MiB..64 TiB; auto without a
 *  cgroup limit), with weft_last_error() naming the allowed values. Any
 *  thread. */
int weft_runtime_set_memory_limit(weft_runtime* rt, uint64_t bytes);

/** rt's memory limit in force, in bytes (0: off; auto resolved; rt NULL: 0). */
uint64_t weft_runtime_memory_limit(const weft_runtime* rt);

/** rt's own memory as the limit counts it, in bytes (rt NULL: 0): exact
 *  while nothing runs, otherwise a sum of racy per-worker counts. */
uint64_t weft_runtime_memory_used(const weft_runtime* rt);

/** Spawns rt refused because of its memory limit so far (rt NULL: 0). */
uint64_t weft_runtime_memory_refusals(const weft_runtime* rt);

/** Registers fn(charged, limit, arg) to run each time rt's memory rises past
 *  WEFT_MEMORY_PRESSURE_FRACTION (default 0.8) of its limit: once per
 *  crossing, again only after it fell below. It runs on the thread whose
 *  spawn (or fiber recycling) crossed the mark, synchronously, so it must
 *  be short and must not block, spawn, nor register or remove callbacks.
 *  Returns 0 and *id (for weft_runtime_remove_memory_pressure), -EINVAL
 *  (rt, fn or id NULL), -ENOMEM. */
int weft_runtime_on_memory_pressure(weft_runtime* rt,
                                    void (*fn)(uint64_t charged, uint64_t limit, void* arg),
                                    void* arg, uint64_t* id);

/** Removes the callback id; when it returns, no call of it is running.
 *  Returns 0, -EINVAL (rt NULL), -ENOENT (no callback id). Not from inside
 *  a callback. */
int weft_runtime_remove_memory_pressure(weft_runtime* rt, uint64_t id);

/* --- fibers ------------------------------------------------------------ */

/** Scheduling priorities (weft_spawn_options.priority). A runnable fiber of
 *  a higher priority runs before a runnable one of a lower priority on the
 *  same worker. */
enum {
  WEFT_PRIORITY_LOW = 0,
  WEFT_PRIORITY_NORMAL = 1,
  WEFT_PRIORITY_HIGH = 2,
  WEFT_PRIORITY_CRITICAL = 3
};

/** Per-spawn options. May grow: new fields are appended. */
typedef struct weft_spawn_options {
  uint32_t struct_size; /**< sizeof(weft_spawn_options) as the caller compiled it */
  uint32_t priority;    /**< WEFT_PRIORITY_*; default NORMAL */
  size_t stack_size;    /**< bytes; 0: the runtime's; else 16 KiB..1 GiB */
  const char* name;     /**< shown by stall warnings, overflow reports; copied; may be NULL */
} weft_spawn_options;

/** Fills *opts with the defaults (normal priority, the runtime's stack
 *  size, no name). opts NULL: does nothing. */
void weft_spawn_options_init(weft_spawn_options* opts);

/** Spawns a fiber running fn(arg) on rt, or, with rt NULL, on the caller's
 *  runtime (the caller must then be a fiber or spawn_blocking thread:
 *  -EPERM from a plain thread). Any thread may spawn on a given rt.
 *  On success *out is the fiber's handle, which must be given back to
 *  exactly one of weft_join or weft_detach; out NULL detaches at once.
 *  Returns 0, or -EINVAL (fn NULL), -EPERM, -ENOMEM (no stack could be
 *  mapped: weft_last_error() says why, e.g. vm.max_map_count), -EAGAIN (a
 *  limit of weft_limits was reached: nothing was started). A fiber
 *  spawned while rt shuts down starts cancelled. Costs no system call in
 *  the steady state. */
int weft_spawn(weft_runtime* rt, void* (*fn)(void*), void* arg, weft_fiber** out);

/** weft_spawn with options (opts NULL: the defaults). -EINVAL also for a
 *  bad priority, stack size or struct_size. */
int weft_spawn_ex(weft_runtime* rt, const weft_spawn_options* opts, void* (*fn)(void*), void* arg,
                  weft_fiber** out);

/** Waits until fiber f has ended, and frees its handle in every case.
 *  Returns 0 with *result = the value fn returned (result may be NULL):
 *  also when f was cancelled, since a C body sees cancellation as
 *  -ECANCELED from its calls and decides what to return. A body that ended
 *  with a C++ exception (a C++ callback it called threw) gives that
 *  exception's code instead: -ECANCELED, -ETIMEDOUT, -ENOMEM, an errno, or
 *  -ENOTRECOVERABLE (weft_last_error() has the exception's message).
 *  If the *waiting* fiber is cancelled, returns -ECANCELED at once and f
 *  runs on detached (a fiber spawned by the waiting fiber is cancelled
 *  with it; to wait for children whatever happens, use a weft_scope).
 *  -EINVAL for f NULL. Parks a fiber, blocks a plain thread. */
int weft_join(weft_fiber* f, void** result);

/** Requests cancellation of fiber f and of everything running inside it
 *  (fibers it spawned, scopes it opened): its current or next blocking
 *  weft call returns -ECANCELED (deferred inside weft_shield). Does not
 *  wait: weft_join afterwards. No effect on a fiber that has ended.
 *  Returns 0, or -EINVAL for f NULL. Any thread, concurrently with join. */
int weft_cancel(weft_fiber* f);

/** Lets fiber f run on without a handle and frees the handle; the value it
 *  returns is discarded, a C++ exception that ends it is reported on
 *  stderr. f NULL: does nothing. */
void weft_detach(weft_fiber* f);

/** The id of fiber f (unique in the process, never reused, never 0); 0 for
 *  f NULL or a spawn_blocking task. */
uint64_t weft_fiber_id(const weft_fiber* f);

/** The calling fiber's id; 0 outside a fiber. */
uint64_t weft_self_id(void);

/** 1 when called from a weft fiber, 0 otherwise. */
int weft_in_fiber(void);

/** Lets other runnable fibers of the same or higher priority on this worker
 *  run first; returns at once if there are none. Plain thread:
 *  sched_yield(). Never fails and is not a cancellation point. */
void weft_yield(void);

/** Parks the calling fiber for ns nanoseconds (a plain thread sleeps).
 *  Returns 0, or -ECANCELED (the fiber was cancelled before or while it
 *  slept); ns <= 0 returns 0 at once, checking nothing. */
int weft_sleep_ns(int64_t ns);

/** weft_sleep_ns until the absolute deadline (CLOCK_MONOTONIC ns);
 *  WEFT_NO_DEADLINE parks until cancelled (a plain thread: forever).
 *  Returns 0 or -ECANCELED; -EINVAL below -1. */
int weft_sleep_until_ns(int64_t deadline_ns);

/** Runs fn(arg) on the caller's runtime's elastic pool of OS threads, for
 *  calls that block the thread (file I/O, legacy libraries, long CPU
 *  work); *out is a handle as weft_spawn's (join parks only the joining
 *  fiber; out NULL detaches). weft_cancel makes weft_is_cancelled() true
 *  on that thread. Must be called from a fiber or spawn_blocking thread
 *  (-EPERM elsewhere). Returns 0, -EINVAL (fn NULL), -EPERM, -ENOMEM, or
 *  the errno of a failed thread start. */
int weft_spawn_blocking(void* (*fn)(void*), void* arg, weft_fiber** out);

/* --- channels and select -------------------------------------------- */

/** Capacity of a channel whose sends never wait (its buffer grows). */
#define WEFT_CHAN_UNBOUNDED SIZE_MAX

/** Creates an MPMC channel of elements of elem_size bytes (0..1 GiB; 0
 *  for a pure signal, whose elem pointers may be NULL) with `capacity`
 *  buffered elements: 0 is a rendezvous (a send completes when a receiver
 *  takes the element), WEFT_CHAN_UNBOUNDED never makes senders wait. The
 *  buffer grows on demand up to capacity. Elements are copied byte-wise;
 *  up to 256 bytes they travel inside the channel, larger ones in a heap
 *  block per element. Blocked operations are served FIFO.
 *  Returns 0 and *out, or -EINVAL, -ENOMEM. */
int weft_chan_new(size_t elem_size, size_t capacity, weft_chan** out);

/** Sends a copy of the elem_size bytes at elem, waiting up to timeout_ns
 *  for buffer space or (rendezvous) a receiver. Returns 0, -EPIPE (closed;
 *  nothing sent), -EAGAIN (timeout 0 and it would wait: buffer full, no
 *  receiver waiting), -ETIMEDOUT, -ECANCELED (nothing sent), -ENOMEM, or
 *  -EINVAL (c NULL, elem NULL with elem_size > 0, bad timeout). */
int weft_chan_send(weft_chan* c, const void* elem, int64_t timeout_ns);

/** Receives the next element into the elem_size bytes at elem_out, waiting
 *  up to timeout_ns. After weft_chan_close, buffered elements are still
 *  received; then -EPIPE. Returns 0, -EPIPE, -EAGAIN (timeout 0, nothing
 *  to take), -ETIMEDOUT, -ECANCELED (nothing taken), -EINVAL. */
int weft_chan_recv(weft_chan* c, void* elem_out, int64_t timeout_ns);

/** Closes c: blocked and later sends fail with -EPIPE, receivers drain
 *  what is buffered and then get -EPIPE. Idempotent. c NULL: nothing. */
void weft_chan_close(weft_chan* c);

/** Closes c (as weft_chan_close) and frees it; buffered elements are
 *  discarded. No call may be in progress on c, or be made after. c NULL:
 *  does nothing. */
void weft_chan_free(weft_chan* c);

/** Elements buffered now (a snapshot; 0 for a rendezvous channel or c NULL). */
size_t weft_chan_len(const weft_chan* c);

/** The capacity given to weft_chan_new (0 for c NULL). */
size_t weft_chan_capacity(const weft_chan* c);

/** 1 once c is closed, else 0 (also for c NULL). */
int weft_chan_is_closed(const weft_chan* c);

/** weft_select_case.op values. */
enum { WEFT_SELECT_RECV = 0, WEFT_SELECT_SEND = 1 };

/** One case of weft_select. */
typedef struct weft_select_case {
  weft_chan* chan; /**< NULL: the case is disabled (never fires) */
  void* elem;      /**< SEND: the elem_size bytes to send; RECV: where to store the element */
  int op;          /**< WEFT_SELECT_RECV or WEFT_SELECT_SEND */
  int result;      /**< out, for the case that fired: 0 (element transferred) or -EPIPE (closed) */
} weft_select_case;

/** Waits until exactly one of cases[0..n) can complete, completes it and
 *  sets *fired to its index and cases[*fired].result. A case on a closed
 *  channel fires with result -EPIPE (send: nothing sent; recv: closed and
 *  drained): set its chan to NULL to disable it. Cases that do not fire
 *  transfer nothing. When several are ready, the one that fires is chosen
 *  uniformly at random (none starves). Returns 0, -EAGAIN (timeout 0 and
 *  none ready), -ETIMEDOUT, -ECANCELED (nothing transferred), -ENOMEM, or
 *  -EINVAL (cases or fired NULL, n 0 or above 65536, a bad op, elem NULL
 *  with elem_size > 0, or every case disabled and timeout_ns -1). The
 *  algorithm is crossbeam-channel's (docs/design/channels.md). */
int weft_select(weft_select_case* cases, size_t n, int64_t timeout_ns, size_t* fired);

/* --- synchronization ------------------------------------------------ */

typedef struct weft_mutex weft_mutex;         /**< a fiber-aware mutex */
typedef struct weft_cond weft_cond;           /**< a fiber-aware condition variable */
typedef struct weft_waitgroup weft_waitgroup; /**< a wait group */

/** A fiber-aware mutex (Go's sync.Mutex policy: barging, FIFO hand-off to
 *  a waiter that waited 1 ms). Not recursive. Returns 0, -EINVAL, -ENOMEM. */
int weft_mutex_new(weft_mutex** out);
/** Frees m, which must be unlocked with no waiter. m NULL: nothing. */
void weft_mutex_free(weft_mutex* m);
/** Locks m, waiting up to timeout_ns (0: try). Returns 0, -EAGAIN,
 *  -ETIMEDOUT, -ECANCELED (not locked), -EINVAL. Locking a mutex the
 *  caller holds deadlocks. */
int weft_mutex_lock(weft_mutex* m, int64_t timeout_ns);
/** Unlocks m (held; by any fiber or thread, as in Go). m NULL: nothing. */
void weft_mutex_unlock(weft_mutex* m);

/** A condition variable over weft_mutex. Waiters are woken FIFO; no
 *  spurious wake-ups, but re-check your predicate (others may run first). */
int weft_cond_new(weft_cond** out);
/** Frees cv, which must have no waiter. cv NULL: nothing. */
void weft_cond_free(weft_cond* cv);
/** Atomically unlocks m (held by the caller) and waits up to timeout_ns for
 *  a signal, then relocks m: m is held again when it returns, whatever it
 *  returns. Returns 0 (signalled), -ETIMEDOUT, -EAGAIN (timeout 0),
 *  -ECANCELED, -EINVAL. */
int weft_cond_wait(weft_cond* cv, weft_mutex* m, int64_t timeout_ns);
/** Wakes the longest-waiting waiter, if any. cv NULL: nothing. */
void weft_cond_signal(weft_cond* cv);
/** Wakes every current waiter. cv NULL: nothing. */
void weft_cond_broadcast(weft_cond* cv);

/** Go's sync.WaitGroup: a counter (starting at initial >= 0) that wait
 *  waits to see at zero. Returns 0, -EINVAL, -ENOMEM. */
int weft_waitgroup_new(int64_t initial, weft_waitgroup** out);
/** Frees wg, which must have no waiter. wg NULL: nothing. */
void weft_waitgroup_free(weft_waitgroup* wg);
/** Adds delta (may be negative); reaching zero wakes every waiter. Returns
 *  0, or -EINVAL (wg NULL, or the counter would go negative: unchanged). */
int weft_waitgroup_add(weft_waitgroup* wg, int64_t delta);
/** Waits up to timeout_ns for the counter to be zero. Returns 0, -EAGAIN
 *  (timeout 0), -ETIMEDOUT, -ECANCELED, -EINVAL. */
int weft_waitgroup_wait(weft_waitgroup* wg, int64_t timeout_ns);

/* --- structured concurrency: scopes, tokens, deadlines -------------- */

typedef struct weft_scope weft_scope; /**< a structured scope (weft_scope_new) */
typedef struct weft_token
    weft_token; /**< a cancellation token (weft_token_new, weft_scope_token) */

/** Opens a scope (a nursery, Trio's model): the fibers spawned into it are
 *  cancelled with it and weft_scope_wait waits for all of them. The scope
 *  hangs under the calling fiber's innermost scope: cancelling the caller
 *  cancels the scope's children too. It lives on a small helper fiber of
 *  the caller's runtime, so it may be waited for from another fiber.
 *  Must be called from a fiber or spawn_blocking thread (-EPERM).
 *  Returns 0 and *out, -EINVAL, -ENOMEM, -ECANCELED. */
int weft_scope_new(weft_scope** out);

/** Spawns fn(arg) as a child of s. The child returns 0, or a negative
 *  errno for a failure: the first failure cancels the scope (every child)
 *  and is what weft_scope_wait returns; a child returning -ECANCELED is
 *  not a failure. Any fiber may spawn into s until weft_scope_wait is
 *  called, and s's children may spawn siblings while it waits.
 *  Returns 0, -EINVAL, -ENOMEM. */
int weft_scope_spawn(weft_scope* s, int (*fn)(void*), void* arg);

/** Cancels s: its children's blocking calls return -ECANCELED. A
 *  cancellation a scope caused itself is not an error of weft_scope_wait.
 *  Returns 0 or -EINVAL. Any thread. */
int weft_scope_cancel(weft_scope* s);

/** Cancels s once the deadline (CLOCK_MONOTONIC ns) passes; the earliest of
 *  several calls wins. From a fiber of the runtime (-EPERM elsewhere).
 *  Returns 0, -EINVAL, -EPERM, -ENOMEM. */
int weft_scope_cancel_at(weft_scope* s, int64_t deadline_ns);

/** A new token that is cancelled with s (free it with weft_token_free). */
int weft_scope_token(weft_scope* s, weft_token** out);

/** Closes s to new spawns from outside, waits until every child has ended
 *  (not interruptible: it never returns while a child runs; cancel the
 *  caller or the scope to make them end), and frees s. Returns 0, the
 *  first child failure, or -ECANCELED if the scope was cancelled from
 *  outside (an enclosing scope, the caller's cancellation, runtime
 *  shutdown). -EINVAL for s NULL. Call it exactly once, from any fiber or
 *  thread. */
int weft_scope_wait(weft_scope* s);

/** A new cancellation token: cancelled by weft_token_cancel, and with
 *  parent (which may be NULL) when parent is. Returns 0, -EINVAL, -ENOMEM. */
int weft_token_new(const weft_token* parent, weft_token** out);

/** A token observing the calling fiber's innermost scope (on a
 *  spawn_blocking thread, its task's; on a plain thread, a token that is
 *  never cancelled). It cannot be cancelled through weft_token_cancel. */
int weft_token_current(weft_token** out);

/** Cancels t and every token and fiber linked under it. Returns 0, -EPERM
 *  (t only observes: from weft_token_current or weft_scope_token),
 *  -EINVAL. Any thread; never blocks. */
int weft_token_cancel(weft_token* t);

/** 1 if t is cancelled, else 0 (also for t NULL). */
int weft_token_is_cancelled(const weft_token* t);

/** Frees t (cancelling nothing). t NULL: nothing. */
void weft_token_free(weft_token* t);

/** Runs fn(arg) on the calling fiber so that cancelling t (as well as the
 *  enclosing scopes) cancels it: fn's blocking calls then return
 *  -ECANCELED. Returns 0 with *result (may be NULL) once fn returns, or
 *  -ECANCELED if t or an enclosing scope was cancelled by then (*result is
 *  set too), -EINVAL. On a plain thread fn runs without cancellation. */
int weft_with_token(const weft_token* t, void* (*fn)(void*), void* arg, void** result);

/** Runs fn(arg) on the calling fiber with a deadline (CLOCK_MONOTONIC ns):
 *  once it passes, fn's blocking calls return -ECANCELED (fibers it
 *  spawned are cancelled too). Returns 0 with *result once fn returns,
 *  -ETIMEDOUT if the deadline had passed by then (*result set too),
 *  -ECANCELED if an enclosing scope was cancelled, -EINVAL. Nested
 *  deadlines: the earliest wins. From a plain thread: -EPERM (a
 *  spawn_blocking thread runs fn on a new fiber). Trio's fail_after. */
int weft_with_deadline(int64_t deadline_ns, void* (*fn)(void*), void* arg, void** result);

/** Runs fn(arg) with cancellation deferred (cleanup that must finish): the
 *  fiber sees a cancellation once fn returns. Runtime shutdown forces it
 *  after 1 s. Returns 0 with *result, -EINVAL. */
int weft_shield(void* (*fn)(void*), void* arg, void** result);

/** 1 if the calling fiber's innermost scope is cancelled (a spawn_blocking
 *  thread: its task), else 0. For long CPU loops. */
int weft_is_cancelled(void);

/* --- file descriptors ----------------------------------------------- */

/** weft_fd_wait events: equal to poll(2)'s POLLIN, POLLOUT, POLLPRI and
 *  POLLRDHUP, which may be used instead. */
enum {
  WEFT_FD_READABLE = 0x001,
  WEFT_FD_PRIORITY = 0x002,
  WEFT_FD_WRITABLE = 0x004,
  WEFT_FD_RDHUP = 0x2000
};

/** Waits until descriptor fd (owned by the caller; not closed meanwhile) is
 *  ready for one of `events`, or has an error or hang-up condition (the
 *  next call on it reports that), parking only the fiber: io_uring
 *  POLL_ADD, or a one-shot registration under epoll. A plain thread
 *  poll(2)s. Regular files are always ready. Returns 0, -ETIMEDOUT,
 *  -EAGAIN (timeout 0, not ready), -ECANCELED, -EBADF, -EINVAL (events
 *  empty or unknown), -ENOMEM. */
int weft_fd_wait(int fd, int events, int64_t timeout_ns);

/** read(2) of up to len bytes that parks the fiber until data arrives.
 *  fd must be in non-blocking mode (O_NONBLOCK: -EINVAL otherwise) unless
 *  it is a socket. Returns 0 with *nread (0 at end of file, or for len 0),
 *  or -ETIMEDOUT, -EAGAIN (timeout 0), -ECANCELED (nothing read), -EINVAL
 *  (buf or nread NULL), or read(2)'s errno. */
int weft_read(int fd, void* buf, size_t len, int64_t timeout_ns, size_t* nread);

/** write(2) of up to len bytes (may be short) that parks the fiber until
 *  some can be written. Never raises SIGPIPE (-EPIPE instead). fd as for
 *  weft_read. Returns 0 with *nwritten, or errors as weft_read. */
int weft_write(int fd, const void* buf, size_t len, int64_t timeout_ns, size_t* nwritten);

/** accept4(2) on listening socket fd (O_NONBLOCK: -EINVAL otherwise),
 *  parking the fiber until a connection arrives; the new descriptor is
 *  non-blocking and close-on-exec. addr/addrlen as accept(2) (both may be
 *  NULL). Returns 0 with *out_fd, or -ETIMEDOUT, -EAGAIN (timeout 0),
 *  -ECANCELED, -EINVAL, or accept4's errno (EMFILE...). */
int weft_accept(int fd, struct sockaddr* addr, socklen_t* addrlen, int64_t timeout_ns, int* out_fd);

/** connect(2) of non-blocking socket fd (-EINVAL otherwise), parking the
 *  fiber until the connection is established or fails. Returns 0, or
 *  -ETIMEDOUT, -ECANCELED (the socket is then in an unspecified state:
 *  close it), -EINVAL, or the connection's errno (ECONNREFUSED...). */
int weft_connect(int fd, const struct sockaddr* addr, socklen_t addrlen, int64_t timeout_ns);

/* --- fiber-local slots ---------------------------------------------- */

typedef struct weft_fls_key weft_fls_key; /**< a fiber-local slot's key */

/** weft_fls_key_new propagation: what a spawned fiber (or spawn_blocking
 *  task) starts with. */
enum {
  WEFT_FLS_NONE = 0, /**< nothing (NULL), like thread-local storage */
  WEFT_FLS_SHARE = 2 /**< the spawner's value, shared: destroyed once no fiber holds it */
};

/** A key for one pointer-sized slot per fiber (per spawn_blocking task, per
 *  plain thread), for a language runtime's own context. destructor (may be
 *  NULL) is called with each non-NULL value when the last fiber holding
 *  it ends (or the thread exits), when it is replaced, or by the key's
 *  free for the caller's own value. Returns 0, -EINVAL (bad propagation),
 *  -ENOMEM. */
int weft_fls_key_new(void (*destructor)(void*), int propagation, weft_fls_key** out);

/** Frees the key; values other fibers hold are destroyed when they end. */
void weft_fls_key_free(weft_fls_key* key);

/** Sets the caller's value for key (NULL clears it); the previous value,
 *  if any and not shared with another fiber, is destroyed now. Returns 0,
 *  -EINVAL, -ENOMEM. */
int weft_fls_set(weft_fls_key* key, void* value);

/** The caller's value for key, or NULL. Never allocates; no lock. */
void* weft_fls_get(const weft_fls_key* key);

/* --- memory quotas (weft/quota.hpp) ---------------------------------- */

/** A byte budget that a language runtime charges before it grows a vector
 *  or a string on behalf of untrusted code, so that a "string bomb" gets an
 *  error instead of exhausting memory (weft::MemoryQuota). Quotas nest: a
 *  charge to a quota charges its ancestors too, all or nothing. Every
 *  function may be called from any thread or fiber at once; none blocks. */
typedef struct weft_quota weft_quota;

/** A quota of limit bytes inside parent (NULL: none), named name (NULL: no
 *  name; copied; shown in the error message). parent must outlive it.
 *  Returns 0 and *out, -EINVAL (out NULL), -ENOMEM. */
int weft_quota_new(size_t limit, weft_quota* parent, const char* name, weft_quota** out);

/** Frees q (NULL: nothing). Its children must be freed first; charges left
 *  on it go back to its ancestors. */
void weft_quota_free(weft_quota* q);

/** Charges bytes to q and every ancestor, or nothing if any of them would
 *  pass its limit. Returns 0, -EINVAL (q NULL), or -ENOMEM (refused:
 *  weft_last_error() names the full quota, its usage and limit). */
int weft_quota_charge(weft_quota* q, size_t bytes);

/** Returns bytes charged earlier to q and its ancestors (q NULL: nothing).
 *  Returning more than was charged clamps the usage at 0. */
void weft_quota_release(weft_quota* q, size_t bytes);

/** q's limit, current usage and highest usage, in bytes, and the number of
 *  charges it refused (q NULL: 0). */
size_t weft_quota_limit(const weft_quota* q);
size_t weft_quota_used(const weft_quota* q);       /**< see weft_quota_limit */
size_t weft_quota_peak(const weft_quota* q);       /**< see weft_quota_limit */
uint64_t weft_quota_refusals(const weft_quota* q); /**< see weft_quota_limit */

/** Changes q's limit; lowering it below the usage refuses new charges until
 *  enough is released (q NULL: nothing). */
void weft_quota_set_limit(weft_quota* q, size_t limit);

/* --- observability (docs/observability.md) -------------------------- */

/** Output formats of weft_metrics_write() and weft_runtime_dump(). */
enum {
  WEFT_FORMAT_TEXT = 0, /**< metrics: Prometheus text exposition 0.0.4; dump: the text dump */
  WEFT_FORMAT_JSON = 1  /**< metrics: a JSON array (docs/c-api.md); dump: JSON schema 1 */
};

/** Every weft metric of the process now (weft::metrics: counters, gauges
 *  and histograms of every runtime, named and documented in
 *  docs/observability.md), as Prometheus text (WEFT_FORMAT_TEXT, what a
 *  /metrics endpoint serves) or as a JSON array of {"name", "type", "unit",
 *  "help", "series": [{"labels": {...}, "value"} or {"labels", "buckets":
 *  [{"le", "count"}], "sum", "count"}]} (WEFT_FORMAT_JSON; the last
 *  bucket's "le" is null: +Inf). *out receives a NUL-terminated string the
 *  caller frees with weft_free(); *len (len may be NULL) its length in
 *  bytes, without the NUL. Never parks: any thread or fiber. Returns 0,
 *  -EINVAL (out NULL, format unknown; *out untouched), -ENOMEM (*out NULL). */
int weft_metrics_write(int format, char** out, size_t* len);

/** A dump of every live fiber of rt (weft::Runtime::dump: id, name,
 *  state, what a parked fiber waits on and since when, its stack and a
 *  symbolized backtrace, labels, then the cancellation tree), as text or
 *  JSON (schema version 1, docs/observability.md). Taken without stopping
 *  rt: a wake-up that arrives while a fiber's stack is read is delayed,
 *  never lost. *out and *len as weft_metrics_write(). Any thread or fiber
 *  (from one of rt's fibers its worker stays busy for the dump's
 *  duration). Returns 0, -EINVAL (rt or out NULL, format unknown; *out
 *  untouched), -ENOMEM (*out NULL). */
int weft_runtime_dump(const weft_runtime* rt, int format, char** out, size_t* len);

/** Frees a string weft_metrics_write() or weft_runtime_dump() returned.
 *  p NULL: does nothing. Any thread. */
void weft_free(void* p);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* WEFT_WEFT_H */
