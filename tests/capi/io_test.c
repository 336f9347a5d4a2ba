/* Readiness waits and blocking-style I/O on caller-owned descriptors, on
 * both reactor backends (WEFT_IO_BACKEND=io_uring and epoll) and 1 and 2
 * workers. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "tests.h"

static int nb_pipe(int fds[2]) {
  return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

struct pipe_pair {
  int fds[2];
  int64_t delay;
};

static void* write_later(void* arg) {
  struct pipe_pair* p = arg;
  weft_sleep_ns(p->delay);
  size_t n = 0;
  return (void*)(intptr_t)weft_write(p->fds[1], "hello", 5, WEFT_NO_TIMEOUT, &n);
}

static void* wait_then_read(void* arg) {
  struct pipe_pair* p = arg;
  int rc = weft_fd_wait(p->fds[0], WEFT_FD_READABLE, WEFT_NO_TIMEOUT);
  if (rc != 0) return (void*)(intptr_t)rc;
  char buf[8] = {0};
  size_t n = 0;
  rc = weft_read(p->fds[0], buf, sizeof buf, 0, &n);
  if (rc != 0) return (void*)(intptr_t)rc;
  return (void*)(intptr_t)(n == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : -1000);
}

static void* fd_wait_cases(void* arg) {
  (void)arg;
  struct pipe_pair p = {{-1, -1}, 3 * MS};
  if (nb_pipe(p.fds) != 0) return (void*)1;
  /* not ready */
  if (weft_fd_wait(p.fds[0], WEFT_FD_READABLE, 0) != -EAGAIN) return (void*)2;
  if (weft_fd_wait(p.fds[0], WEFT_FD_READABLE, 2 * MS) != -ETIMEDOUT) return (void*)3;
  /* a write end is writable at once */
  if (weft_fd_wait(p.fds[1], WEFT_FD_WRITABLE, 0) != 0) return (void*)4;
  /* the waiter parks until another fiber writes */
  weft_fiber *w = NULL, *r = NULL;
  if (weft_spawn(NULL, write_later, &p, &w) != 0) return (void*)5;
  if (weft_spawn(NULL, wait_then_read, &p, &r) != 0) return (void*)6;
  void *wr = NULL, *rr = NULL;
  weft_join(w, &wr);
  weft_join(r, &rr);
  if (wr != NULL) return (void*)7;
  if (rr != NULL) return rr;
  /* bad arguments */
  if (weft_fd_wait(p.fds[0], 0, 0) != -EINVAL) return (void*)8;
  if (weft_fd_wait(p.fds[0], 0x8000, 0) != -EINVAL) return (void*)9;
  if (weft_fd_wait(p.fds[0], WEFT_FD_READABLE, -2) != -EINVAL) return (void*)10;
  if (weft_fd_wait(-1, WEFT_FD_READABLE, 0) != -EBADF) return (void*)11;
  /* the peer closed: ready (hang-up), and the read sees end of file */
  close(p.fds[1]);
  if (weft_fd_wait(p.fds[0], WEFT_FD_READABLE, WEFT_NO_TIMEOUT) != 0) return (void*)12;
  char c;
  size_t n = 9;
  if (weft_read(p.fds[0], &c, 1, 0, &n) != 0 || n != 0) return (void*)13;
  close(p.fds[0]);
  /* a descriptor that is not open (a number far above any in use: a
   * freshly closed one may be reused at once by the runtime) */
  if (weft_fd_wait(999999, WEFT_FD_READABLE, 2 * MS) != -EBADF) return (void*)14;
  /* regular files are always ready */
  FILE* tmp = tmpfile();
  if (weft_fd_wait(fileno(tmp), WEFT_FD_READABLE | WEFT_FD_WRITABLE, WEFT_NO_TIMEOUT) != 0)
    return (void*)15;
  fclose(tmp);
  return NULL;
}

/* Many fibers wait on one socket at once, in both directions. */
static atomic_int waiters_ok;
static int shared_fd;
static void* wait_readable(void* arg) {
  (void)arg;
  if (weft_fd_wait(shared_fd, WEFT_FD_READABLE, WEFT_NO_TIMEOUT) == 0)
    atomic_fetch_add(&waiters_ok, 1);
  return NULL;
}
static void* wait_writable(void* arg) {
  (void)arg;
  if (weft_fd_wait(shared_fd, WEFT_FD_WRITABLE, WEFT_NO_TIMEOUT) == 0)
    atomic_fetch_add(&waiters_ok, 1);
  return NULL;
}
static void* many_waiters(void* arg) {
  (void)arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return (void*)1;
  shared_fd = sv[0];
  atomic_store(&waiters_ok, 0);
  weft_fiber* f[12];
  for (int i = 0; i < 8; ++i) weft_spawn(NULL, wait_readable, NULL, &f[i]);
  for (int i = 8; i < 12; ++i) weft_spawn(NULL, wait_writable, NULL, &f[i]);
  weft_sleep_ns(3 * MS);
  size_t n = 0;
  if (weft_write(sv[1], "x", 1, WEFT_NO_TIMEOUT, &n) != 0) return (void*)2;
  for (int i = 0; i < 12; ++i) weft_join(f[i], NULL);
  close(sv[0]);
  close(sv[1]);
  return (void*)(intptr_t)(atomic_load(&waiters_ok) == 12 ? 0 : 3);
}

/* A stream of 256 KiB through a socketpair in uneven chunks: the writer
 * parks when the socket buffer is full, the reader when it is empty. */
enum { kStreamBytes = 256 * 1024 };
static unsigned char stream_byte(size_t i) {
  return (unsigned char)((i * 131 + (i >> 8)) & 0xff);
}
static void* stream_writer(void* arg) {
  const int fd = (int)(intptr_t)arg;
  static unsigned char buf[7000];
  size_t sent = 0;
  while (sent < kStreamBytes) {
    size_t chunk = 1 + (sent * 7) % sizeof buf;
    if (chunk > kStreamBytes - sent) chunk = kStreamBytes - sent;
    for (size_t k = 0; k < chunk; ++k) buf[k] = stream_byte(sent + k);
    size_t n = 0;
    const int rc = weft_write(fd, buf, chunk, WEFT_NO_TIMEOUT, &n);
    if (rc != 0) return (void*)(intptr_t)rc;
    sent += n;
  }
  shutdown(fd, SHUT_WR);
  return NULL;
}
static void* stream_reader(void* arg) {
  const int fd = (int)(intptr_t)arg;
  unsigned char buf[3000];
  size_t got = 0;
  long bad = 0;
  for (;;) {
    size_t n = 0;
    const int rc = weft_read(fd, buf, sizeof buf, WEFT_NO_TIMEOUT, &n);
    if (rc != 0) return (void*)(intptr_t)rc;
    if (n == 0) break;
    for (size_t k = 0; k < n; ++k) bad += buf[k] != stream_byte(got + k);
    got += n;
  }
  return (void*)(intptr_t)(got == kStreamBytes && bad == 0 ? 0 : -1000);
}
static void* stream_cases(void* arg) {
  (void)arg;
  int sv[2];
  /* blocking sockets on purpose: weft drives sockets with MSG_DONTWAIT */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return (void*)1;
  int sz = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  weft_fiber *w = NULL, *r = NULL;
  weft_spawn(NULL, stream_writer, (void*)(intptr_t)sv[0], &w);
  weft_spawn(NULL, stream_reader, (void*)(intptr_t)sv[1], &r);
  void *wr = NULL, *rr = NULL;
  weft_join(w, &wr);
  weft_join(r, &rr);
  close(sv[0]);
  close(sv[1]);
  if (wr != NULL) return wr;
  return rr;
}

static void* read_write_errors(void* arg) {
  (void)arg;
  int fds[2];
  if (pipe(fds) != 0) return (void*)1; /* blocking pipe */
  char c = 0;
  size_t n = 0;
  if (weft_read(fds[0], &c, 1, 0, &n) != -EINVAL) return (void*)2;
  if (strstr(weft_last_error(), "O_NONBLOCK") == NULL) return (void*)3;
  if (weft_write(fds[1], &c, 1, 0, &n) != -EINVAL) return (void*)4;
  close(fds[0]);
  close(fds[1]);
  if (nb_pipe(fds) != 0) return (void*)5;
  if (weft_read(fds[0], NULL, 1, 0, &n) != -EINVAL) return (void*)6;
  if (weft_read(fds[0], &c, 1, 0, NULL) != -EINVAL) return (void*)7;
  if (weft_read(fds[0], &c, 1, -2, &n) != -EINVAL) return (void*)8;
  if (weft_read(fds[0], &c, 1, 0, &n) != -EAGAIN) return (void*)9;
  if (weft_read(fds[0], &c, 1, 2 * MS, &n) != -ETIMEDOUT) return (void*)10;
  n = 9;
  if (weft_read(fds[0], NULL, 0, 0, &n) != 0 || n != 0) return (void*)11; /* len 0 */
  if (weft_write(fds[1], NULL, 1, 0, &n) != -EINVAL) return (void*)12;
  close(fds[0]);
  /* the reader is gone: EPIPE, not SIGPIPE */
  if (weft_write(fds[1], "x", 1, 0, &n) != -EPIPE) return (void*)13;
  close(fds[1]);
  if (weft_read(fds[0], &c, 1, 0, &n) != -EBADF) return (void*)14;
  return NULL;
}

static void* tcp_server(void* arg) {
  const int lfd = (int)(intptr_t)arg;
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  int cfd = -1;
  int rc = weft_accept(lfd, (struct sockaddr*)&peer, &plen, WEFT_NO_TIMEOUT, &cfd);
  if (rc != 0) return (void*)(intptr_t)rc;
  if (peer.sin_family != AF_INET || (fcntl(cfd, F_GETFL) & O_NONBLOCK) == 0) return (void*)-1001;
  char buf[16];
  size_t n = 0;
  rc = weft_read(cfd, buf, sizeof buf, WEFT_NO_TIMEOUT, &n);
  if (rc == 0) rc = weft_write(cfd, buf, n, WEFT_NO_TIMEOUT, &n);
  close(cfd);
  return (void*)(intptr_t)rc;
}
static void* tcp_cases(void* arg) {
  (void)arg;
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0; /* a free port */
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 16) != 0) return (void*)1;
  socklen_t alen = sizeof a;
  getsockname(lfd, (struct sockaddr*)&a, &alen);
  int cfd = -1;
  if (weft_accept(lfd, NULL, NULL, 0, &cfd) != -EAGAIN) return (void*)2;
  if (weft_accept(lfd, NULL, NULL, 2 * MS, &cfd) != -ETIMEDOUT) return (void*)3;
  if (cfd != -1) return (void*)4;

  weft_fiber* srv = NULL;
  weft_spawn(NULL, tcp_server, (void*)(intptr_t)lfd, &srv);
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = weft_connect(s, (struct sockaddr*)&a, sizeof a, WEFT_NO_TIMEOUT);
  if (rc != 0) return (void*)(intptr_t)rc;
  size_t n = 0;
  if (weft_write(s, "ping", 4, WEFT_NO_TIMEOUT, &n) != 0 || n != 4) return (void*)5;
  char buf[8] = {0};
  if (weft_read(s, buf, sizeof buf, WEFT_NO_TIMEOUT, &n) != 0 || n != 4 ||
      memcmp(buf, "ping", 4) != 0)
    return (void*)6;
  void* sr = NULL;
  weft_join(srv, &sr);
  if (sr != NULL) return sr;
  close(s);

  /* errors: a blocking listener, a refused connection, bad arguments */
  const int blocking = socket(AF_INET, SOCK_STREAM, 0);
  if (weft_accept(blocking, NULL, NULL, 0, &cfd) != -EINVAL) return (void*)7;
  if (weft_connect(blocking, (struct sockaddr*)&a, sizeof a, 0) != -EINVAL) return (void*)8;
  close(blocking);
  close(lfd); /* now nobody listens on a's port */
  const int s2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  rc = weft_connect(s2, (struct sockaddr*)&a, sizeof a, WEFT_NO_TIMEOUT);
  close(s2);
  if (rc != -ECONNREFUSED) return (void*)(intptr_t)(rc == 0 ? -2000 : rc);
  if (weft_connect(s2, NULL, 0, 0) != -EINVAL) return (void*)9;
  if (weft_accept(lfd, NULL, NULL, 0, NULL) != -EINVAL) return (void*)10;
  return NULL;
}

/* A fiber parked in weft_read is cancelled. */
static void* read_forever(void* arg) {
  char c;
  size_t n = 0;
  return (void*)(intptr_t)weft_read((int)(intptr_t)arg, &c, 1, WEFT_NO_TIMEOUT, &n);
}
static void* cancel_read(void* arg) {
  (void)arg;
  int fds[2];
  if (nb_pipe(fds) != 0) return (void*)1;
  weft_fiber* f = NULL;
  weft_spawn(NULL, read_forever, (void*)(intptr_t)fds[0], &f);
  weft_sleep_ns(3 * MS);
  weft_cancel(f);
  void* r = NULL;
  weft_join(f, &r);
  close(fds[0]);
  close(fds[1]);
  return (void*)(intptr_t)((intptr_t)r == -ECANCELED ? 0 : (intptr_t)r);
}

/* A plain thread waits with poll(2); a fiber wakes it. */
static void* thread_reader(void* arg) {
  const int fd = *(int*)arg;
  char buf[8];
  size_t n = 0;
  const int rc = weft_read(fd, buf, sizeof buf, WEFT_NO_TIMEOUT, &n);
  return (void*)(intptr_t)(rc == 0 && n == 5 ? 0 : -1);
}

static void io_suite(const char* backend, uint32_t workers) {
  setenv("WEFT_IO_BACKEND", backend, 1);
  weft_runtime* rt = new_runtime(workers);
  unsetenv("WEFT_IO_BACKEND");
  fprintf(stderr, "  io suite: %s, %u workers\n", backend, workers);
  CHECK_EQ((intptr_t)run_on(rt, fd_wait_cases, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, many_waiters, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, stream_cases, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, read_write_errors, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, tcp_cases, NULL), 0);
  CHECK_EQ((intptr_t)run_on(rt, cancel_read, NULL), 0);

  struct pipe_pair p = {{-1, -1}, 3 * MS};
  if (nb_pipe(p.fds) == 0) {
    pthread_t t;
    pthread_create(&t, NULL, thread_reader, &p.fds[0]);
    CHECK_EQ((intptr_t)run_on(rt, write_later, &p), 0);
    void* tr = (void*)1;
    pthread_join(t, &tr);
    CHECK(tr == NULL);
    /* this plain thread too */
    CHECK_EQ(weft_fd_wait(p.fds[0], WEFT_FD_READABLE, 0), -EAGAIN);
    CHECK_EQ(weft_fd_wait(p.fds[0], WEFT_FD_READABLE, 2 * MS), -ETIMEDOUT);
    CHECK_EQ(weft_fd_wait(p.fds[1], WEFT_FD_WRITABLE, WEFT_NO_TIMEOUT), 0);
    close(p.fds[0]);
    close(p.fds[1]);
  }
  weft_runtime_free(rt);
}

void test_io_uring(void) {
  io_suite("io_uring", 1);
  io_suite("io_uring", 2);
}

void test_io_epoll(void) {
  io_suite("epoll", 1);
  io_suite("epoll", 2);
}
