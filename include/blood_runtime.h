/* blood_runtime.h: the Blood language's runtime symbols (seed 000, section
 * 11), a thin layer over weft's C ABI (weft/weft.h).
 *
 * Exactly the symbols of section 11.3 and 11.6 are exported. Values are
 * 64-bit words, as in Plat's plat_spawn_task_i64 / plat_task_await_i64:
 * a fiber runs an int64_t (*)(int64_t) and its result is a word; channels
 * carry words. Handles are words too (0 is never a valid handle).
 *
 * Start-up, as a Blood compiler generates it (section 11.6):
 *
 *   int main(int argc, char **argv) {
 *     blood_runtime_init(argc, argv);    // scheduler and I/O reactor
 *     int result = blood_main();
 *     blood_runtime_shutdown();
 *     return result;
 *   }
 *
 * blood_main runs on the program's main thread, which is not a fiber: the
 * calls below work there as on fibers (a wait blocks the thread instead of
 * parking a fiber). All calls are thread-safe.
 *
 * Errors: calls returning int give 0 or a negative errno (see weft.h:
 * -ECANCELED cancelled, -ENOMEM, -EINVAL, -EPERM when the runtime is not
 * initialised). Calls returning a handle give 0 on failure and set errno.
 * A handle is checked against 0 only: passing a word that no call returned
 * (or a fiber handle already awaited) is undefined, as for a pointer.
 *
 * Linking (Linux, section 11.4):
 *   static:  cc prog.o -L<prefix>/lib/blood-static -lblood_runtime -lpthread -ldl -lm
 *   dynamic: cc prog.o -L<prefix>/lib -Wl,-rpath,<prefix>/lib -lblood_runtime -lpthread -ldl -lm
 * (-luring may be added to either). The static archive is self-contained:
 * weft, liburing and the parts of the C++ runtime it uses are linked into it,
 * with every symbol but the ones below made local. docs/c-api.md has more.
 */
#ifndef BLOOD_RUNTIME_H
#define BLOOD_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A fiber handle (0: none). */
typedef uint64_t blood_fiber;
/** A channel handle (0: none). */
typedef uint64_t blood_channel;

/** Initialises the runtime: blood_scheduler_init(0) then
 *  blood_io_reactor_init(). argc/argv are accepted for the generated main's
 *  sake and not interpreted (settings come from the WEFT_* environment
 *  variables: WEFT_WORKERS, WEFT_STACK_SIZE, WEFT_IO_BACKEND...). Returns 0,
 *  or a negative errno (the runtime could not start: invalid WEFT_*
 *  variable, no threads). Calling it again while initialised returns 0. */
int blood_runtime_init(int argc, char** argv);

/** Shuts the runtime down: blood_scheduler_shutdown(). */
void blood_runtime_shutdown(void);

/** Starts the scheduler (weft's runtime: worker threads, run queues, work
 *  stealing, timers, blocking pool) with `workers` threads (0: WEFT_WORKERS
 *  or one per CPU). Returns 0 (also when already started), or a negative
 *  errno. */
int blood_scheduler_init(uint32_t workers);

/** Stops the scheduler: every fiber still running is cancelled (its
 *  blocking calls return -ECANCELED) and waited for; every channel is
 *  freed and every fiber handle not awaited is released. Handles must not
 *  be used afterwards. Must be called from a thread that is not a fiber
 *  (the main thread), once blood_main has returned. Nothing if not started. */
void blood_scheduler_shutdown(void);

/** Initialises the I/O reactor. weft's reactor (io_uring, or epoll where
 *  io_uring is unavailable) starts with the scheduler, one per worker, so
 *  this only checks that the scheduler runs: 0, or -EPERM if it does not. */
int blood_io_reactor_init(void);

/** Spawns a fiber running entry(arg). Returns its handle, to be given to
 *  blood_fiber_await once; or 0 with errno set (EINVAL: entry NULL; EPERM:
 *  not initialised; ENOMEM). */
blood_fiber blood_fiber_spawn(int64_t (*entry)(int64_t arg), int64_t arg);

/** Lets other runnable fibers run (a plain thread yields its CPU). */
void blood_fiber_yield(void);

/** Waits for fiber f to finish, stores its result in *result (may be NULL)
 *  and releases the handle (in every case). Returns 0, -ECANCELED (the
 *  waiting fiber was cancelled: f runs on, its result is discarded),
 *  -EINVAL (handle 0). */
int blood_fiber_await(blood_fiber f, int64_t* result);

/** Creates a channel of words with `capacity` buffered words (0: rendezvous;
 *  negative: unbounded). Returns its handle, or 0 with errno set. Channels
 *  live until blood_scheduler_shutdown. */
blood_channel blood_channel_create(int64_t capacity);

/** Sends `value`, waiting for room or (rendezvous) a receiver. Returns 0,
 *  -ECANCELED (nothing sent), -EINVAL (handle 0). */
int blood_channel_send(blood_channel ch, int64_t value);

/** Receives a word into *value, waiting for one. Returns 0, -ECANCELED
 *  (nothing received), -EINVAL (handle 0 or value NULL). */
int blood_channel_recv(blood_channel ch, int64_t* value);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BLOOD_RUNTIME_H */
