/* The Blood runtime's symbols (seed 000, section 11) over weft.h.
 *
 * One process-wide weft runtime, made by blood_scheduler_init. A fiber
 * handle points to a small record (entry, argument, result, links) that the
 * fiber writes its result into; a channel handle is a weft_chan of 8-byte
 * words. Both kinds of record are kept on lists so that
 * blood_scheduler_shutdown releases what the program did not: handles of
 * fibers never awaited are detached before the runtime stops (their
 * records are freed after, when no fiber can write to them any more), and
 * channels are freed once no fiber can use them.
 *
 * Written in C11 against weft.h only: it is also the proof that weft's C
 * ABI is enough for a language runtime. Symbols other than the eleven of
 * blood_runtime.h are static (and the shared library's version script,
 * blood_runtime.map, exports only those eleven). */
#include "blood_runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "weft/weft.h"

struct record {
  struct record *prev, *next;
};

struct fiber_record {
  struct record link; /* first: a record * is a fiber_record * */
  weft_fiber* fiber;
  int64_t (*entry)(int64_t);
  int64_t arg;
  int64_t result; /* written by the fiber, read after weft_join */
};

struct channel_record {
  struct record link; /* first */
  weft_chan* chan;
};

/* The runtime, published with release by blood_scheduler_init once made,
 * read with acquire by every call that uses it. Init and shutdown are
 * serialised by `lock`; the program must not use handles during them. */
static _Atomic(weft_runtime*) runtime;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct record fibers = {&fibers, &fibers};       /* guarded by lock */
static struct record channels = {&channels, &channels}; /* guarded by lock */
/* Records of fibers that may still run without a handle (never awaited, or
 * an await that was cancelled): freed once the runtime is gone. */
static struct record orphans = {&orphans, &orphans}; /* guarded by lock */

static void link_record(struct record* list, struct record* r) {
  pthread_mutex_lock(&lock);
  r->prev = list->prev;
  r->next = list;
  list->prev->next = r;
  list->prev = r;
  pthread_mutex_unlock(&lock);
}

static void unlink_record(struct record* r) {
  pthread_mutex_lock(&lock);
  r->prev->next = r->next;
  r->next->prev = r->prev;
  pthread_mutex_unlock(&lock);
}

static weft_runtime* current_runtime(void) {
  return atomic_load_explicit(&runtime, memory_order_acquire);
}

int blood_scheduler_init(uint32_t workers) {
  int rc = 0;
  pthread_mutex_lock(&lock);
  if (current_runtime() == NULL) {
    weft_config cfg;
    weft_config_init(&cfg);
    if (workers != 0) cfg.workers = workers;
    weft_runtime* rt = NULL;
    rc = weft_runtime_new(&cfg, &rt);
    if (rc == 0) atomic_store_explicit(&runtime, rt, memory_order_release);
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

int blood_io_reactor_init(void) {
  return current_runtime() != NULL ? 0 : -EPERM;
}

int blood_runtime_init(int argc, char** argv) {
  (void)argc;
  (void)argv;
  const int rc = blood_scheduler_init(0);
  return rc != 0 ? rc : blood_io_reactor_init();
}

/* Moves every record of `from` to the end of `to`. Lock held. */
static void splice_all(struct record* from, struct record* to) {
  if (from->next == from) return;
  from->next->prev = to->prev;
  to->prev->next = from->next;
  from->prev->next = to;
  to->prev = from->prev;
  from->next = from->prev = from;
}

static void free_all(struct record* list, int channel) {
  for (struct record* r = list->next; r != list;) {
    struct record* next = r->next;
    if (channel) weft_chan_free(((struct channel_record*)r)->chan);
    free(r);
    r = next;
  }
  list->next = list->prev = list;
}

void blood_scheduler_shutdown(void) {
  pthread_mutex_lock(&lock);
  weft_runtime* rt = current_runtime();
  if (rt == NULL) {
    pthread_mutex_unlock(&lock);
    return;
  }
  /* Fibers never awaited: let them run out without a handle. */
  for (struct record* r = fibers.next; r != &fibers; r = r->next) {
    struct fiber_record* f = (struct fiber_record*)r;
    weft_detach(f->fiber);
    f->fiber = NULL;
  }
  splice_all(&fibers, &orphans);
  atomic_store_explicit(&runtime, NULL, memory_order_release);
  pthread_mutex_unlock(&lock);

  weft_runtime_free(rt); /* cancels and waits for every fiber */

  /* No fiber runs any more: nothing can write a record or use a channel. */
  pthread_mutex_lock(&lock);
  free_all(&orphans, 0);
  free_all(&channels, 1);
  pthread_mutex_unlock(&lock);
}

void blood_runtime_shutdown(void) {
  blood_scheduler_shutdown();
}

static void* run_fiber(void* p) {
  struct fiber_record* f = p;
  f->result = f->entry(f->arg);
  return NULL;
}

blood_fiber blood_fiber_spawn(int64_t (*entry)(int64_t arg), int64_t arg) {
  weft_runtime* rt = current_runtime();
  if (entry == NULL || rt == NULL) {
    errno = entry == NULL ? EINVAL : EPERM;
    return 0;
  }
  struct fiber_record* f = malloc(sizeof *f);
  if (f == NULL) {
    errno = ENOMEM;
    return 0;
  }
  f->entry = entry;
  f->arg = arg;
  f->result = 0;
  /* Linked before the spawn: shutdown may then find a record whose fiber
   * is not set yet only if the program spawns during shutdown, which the
   * contract excludes. */
  link_record(&fibers, &f->link);
  const int rc = weft_spawn(rt, run_fiber, f, &f->fiber);
  if (rc != 0) {
    unlink_record(&f->link);
    free(f);
    errno = -rc;
    return 0;
  }
  return (blood_fiber)(uintptr_t)f;
}

void blood_fiber_yield(void) {
  weft_yield();
}

int blood_fiber_await(blood_fiber handle, int64_t* result) {
  if (handle == 0) return -EINVAL;
  struct fiber_record* f = (struct fiber_record*)(uintptr_t)handle;
  const int rc = weft_join(f->fiber, NULL); /* consumes the weft handle in every case */
  unlink_record(&f->link);
  if (rc == 0) {
    if (result != NULL) *result = f->result;
    free(f);
  } else {
    /* The waiting fiber was cancelled (the fiber may still run and write
     * its result): the record goes with the runtime, like an orphan's. */
    f->fiber = NULL;
    link_record(&orphans, &f->link);
  }
  return rc;
}

blood_channel blood_channel_create(int64_t capacity) {
  struct channel_record* c = malloc(sizeof *c);
  if (c == NULL) {
    errno = ENOMEM;
    return 0;
  }
  const size_t cap = capacity < 0 ? WEFT_CHAN_UNBOUNDED : (size_t)capacity;
  const int rc = weft_chan_new(sizeof(int64_t), cap, &c->chan);
  if (rc != 0) {
    free(c);
    errno = -rc;
    return 0;
  }
  link_record(&channels, &c->link);
  return (blood_channel)(uintptr_t)c;
}

int blood_channel_send(blood_channel ch, int64_t value) {
  if (ch == 0) return -EINVAL;
  return weft_chan_send(((struct channel_record*)(uintptr_t)ch)->chan, &value, WEFT_NO_TIMEOUT);
}

int blood_channel_recv(blood_channel ch, int64_t* value) {
  if (ch == 0 || value == NULL) return -EINVAL;
  return weft_chan_recv(((struct channel_record*)(uintptr_t)ch)->chan, value, WEFT_NO_TIMEOUT);
}
