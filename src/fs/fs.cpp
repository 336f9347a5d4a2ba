// weft::fs: files and paths over the reactor's request interface.
//
// Design. There is no file-system machinery here of its own: every system
// call is described as an io::Request and handed to io::perform, which picks
// the way to run it (docs/design/io.md): an io_uring request on the current
// worker's ring, the blocking pool under epoll (a regular file is always
// "ready", so readiness-based waiting cannot help; the pool keeps the
// worker free), or the plain call on a plain thread. This layer adds only
// what a user of files needs on top: RAII ownership of the descriptor,
// loops over short transfers, errno-to-exception translation naming the
// path, and the multi-step recipes (read_file, write_file_atomic,
// create_dirs, remove).
//
// Ownership. A File owns one io::IoObject (adopted as not pollable). The
// object, not the File, decides when the descriptor is really closed: an
// operation holds an op reference on it for its whole duration (inside
// io::perform), and close() only marks it closed and cancels ring requests
// in flight, so the descriptor number cannot be reused under an operation
// that raced with close(). That is why File keeps its own copy of the fd:
// requests may name it freely, because perform refuses (EBADF) to start an
// operation on a closed object and the number stays valid while one runs.
//
// Transfers are capped at kMaxTransfer per request: the kernel transfers at
// most 0x7ffff000 bytes per read/write anyway, and io_uring's length field
// is 32 bits, so a larger len would silently wrap there.
//
// write_file_atomic follows the usual recipe (the one LevelDB, SQLite's
// journal and Go's renameio use): write a temporary file in the target's
// directory (same file system, so rename(2) is atomic), fsync it, rename it
// over the target, fsync the directory so the rename itself is durable. The
// temporary file is created with O_EXCL under a name unique to this process
// and call, and removed on any failure before the rename, with a clean-up
// that is not cancellable so that a TimedOut or Cancelled still cleans up.
#include "weft/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "fiber/fiber.hpp"
#include "io/backend.hpp"
#include "io/error.hpp"
#include "io/io_object.hpp"
#include "io/request.hpp"
#include "sched/current.hpp"
#include "sched/waiter.hpp"
#include "weft/fiber.hpp"
#include "weft/this_fiber.hpp"

namespace weft::fs {

namespace io = detail::io;
using std::filesystem::path;

namespace {

constexpr std::size_t kMaxTransfer = std::size_t{1} << 30;  // 1 GiB
constexpr unsigned kAllModes = 0x3f;                        // every OpenMode bit

std::string describe(const char* op, const path& p) {
  return std::string(op) + " '" + p.native() + "'";
}

[[noreturn]] void fail(int err, const char* op, const path& p) {
  io::throw_errno(err, describe(op, p));
}

// Runs fn(); a std::system_error leaving it is rethrown with the same code
// and a message naming `op` and the path (File's own messages cannot name
// it: a File does not keep its path).
template <class F>
auto naming(const char* op, const path& p, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "weft: " + describe(op, p));
  }
}

// Every wait of weft::fs goes through here or path_op: without a deadline
// of its own, it gets Config::io_timeout.
std::int64_t perform(const io::Request& r, io::IoObject* o, Deadline d) {
  return io::perform(r, o, detail::effective_deadline(d.ns(), detail::TimeoutKind::io).ns);
}

// One read or write request on a File's object: >= 0 or -errno.
std::int64_t transfer(io::Op op, io::IoObject* o, int fd, const void* buf, std::size_t len,
                      std::uint64_t offset, Deadline d) {
  if (o == nullptr) return -EBADF;
  io::Request r;
  r.op = op;
  r.fd = fd;
  r.buf = const_cast<void*>(buf);  // a write only reads it
  r.len = std::min(len, kMaxTransfer);
  r.offset = offset;
  return perform(r, o, d);
}

int open_flags(OpenMode m) {
  using enum OpenMode;
  if ((static_cast<unsigned>(m) & ~kAllModes) != 0) {
    throw std::invalid_argument("weft: fs::File::open: unknown OpenMode bits");
  }
  const bool rd = has(m, read);
  const bool wr = has(m, write) || has(m, append);
  if (!rd && !wr) {
    throw std::invalid_argument("weft: fs::File::open: OpenMode needs read, write or append");
  }
  if (has(m, truncate) && !wr) {
    throw std::invalid_argument("weft: fs::File::open: OpenMode::truncate needs write or append");
  }
  int f = rd && wr ? O_RDWR : (wr ? O_WRONLY : O_RDONLY);
  if (has(m, append)) f |= O_APPEND;
  if (has(m, create)) f |= O_CREAT;
  if (has(m, exclusive)) f |= O_CREAT | O_EXCL;
  if (has(m, truncate)) f |= O_TRUNC;
  return f;
}

FileType file_type(std::uint32_t mode) noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FileType::regular;
    case S_IFDIR:
      return FileType::directory;
    case S_IFLNK:
      return FileType::symlink;
    case S_IFIFO:
      return FileType::fifo;
    case S_IFSOCK:
      return FileType::socket;
    case S_IFBLK:
      return FileType::block_device;
    case S_IFCHR:
      return FileType::char_device;
    default:
      return FileType::unknown;
  }
}

Metadata to_metadata(const struct statx& s) noexcept {
  Metadata m;
  m.size = s.stx_size;
  m.type = file_type(s.stx_mode);
  m.permissions = s.stx_mode & 07777u;
  m.nlink = s.stx_nlink;
  m.uid = s.stx_uid;
  m.gid = s.stx_gid;
  m.inode = s.stx_ino;
  m.device = makedev(s.stx_dev_major, s.stx_dev_minor);
  m.mtime = std::chrono::sys_time<std::chrono::nanoseconds>(
      std::chrono::seconds(s.stx_mtime.tv_sec) + std::chrono::nanoseconds(s.stx_mtime.tv_nsec));
  return m;
}

// statx of `p` relative to the current directory, or of the object o (fd)
// with AT_EMPTY_PATH when p is "". Returns 0 or -errno.
std::int64_t do_statx(io::IoObject* o, int fd, const char* p, int flags, unsigned mask,
                      struct statx* out, Deadline d) {
  io::Request r;
  r.op = io::Op::statx;
  r.fd = fd;
  r.path = p;
  r.flags = flags;
  r.len = mask;
  r.stx = out;
  return perform(r, o, d);
}

std::int64_t path_op(io::Op op, const path& p, int flags, unsigned mode, Deadline d,
                     bool cancellable = true) {
  io::Request r;
  r.op = op;
  r.fd = AT_FDCWD;
  r.path = p.c_str();
  r.flags = flags;
  r.mode = mode;
  return io::perform(r, nullptr, detail::effective_deadline(d.ns(), detail::TimeoutKind::io).ns,
                     cancellable);
}

std::int64_t rename_raw(const path& from, const path& to, Deadline d) {
  io::Request r;
  r.op = io::Op::renameat;
  r.fd = AT_FDCWD;
  r.path = from.c_str();
  r.path2 = to.c_str();
  return perform(r, nullptr, d);
}

Metadata stat_path(const path& p, int flags, const char* op, Deadline d) {
  struct statx s {};
  const std::int64_t n = do_statx(nullptr, AT_FDCWD, p.c_str(), flags, STATX_BASIC_STATS, &s, d);
  if (n < 0) fail(static_cast<int>(-n), op, p);
  return to_metadata(s);
}

// The directory holding `p`, for creating siblings of it.
path parent_dir(const path& p) {
  path dir = p.parent_path();
  return dir.empty() ? path(".") : dir;
}

// `p` without trailing separators ("a/b/" -> "a/b"; "/" stays).
path without_trailing_slash(path p) {
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p;
}

bool is_directory(const path& p, Deadline d) {
  struct statx s {};
  const std::int64_t n = do_statx(nullptr, AT_FDCWD, p.c_str(), 0, STATX_TYPE, &s, d);
  return n >= 0 && file_type(s.stx_mode) == FileType::directory;
}

// mkdir, treating "exists as a directory" as success. True if created.
// Returns -ENOENT (a parent is missing) for the caller to handle; throws
// for every other failure.
std::int64_t make_dir(const path& p, unsigned perms, Deadline d) {
  const std::int64_t n = path_op(io::Op::mkdirat, p, 0, perms, d);
  if (n == 0) return 1;
  if (n == -EEXIST) {
    if (is_directory(p, d)) return 0;
    fail(EEXIST, "create_dirs", p);
  }
  if (n == -ENOENT) return n;
  fail(static_cast<int>(-n), "create_dirs", p);
}

bool create_dirs_rec(const path& p, unsigned perms, Deadline d) {
  std::int64_t n = make_dir(p, perms, d);
  if (n != -ENOENT) return n == 1;
  const path parent = without_trailing_slash(p.parent_path());
  if (parent.empty() || parent == p) fail(ENOENT, "create_dirs", p);
  create_dirs_rec(parent, perms, d);
  n = make_dir(p, perms, d);
  if (n == -ENOENT) fail(ENOENT, "create_dirs", p);  // the parent vanished again
  return n == 1;
}

// ".<name>.weft-tmp.<pid>.<n>" next to `target`; unique within the process
// by the counter, across processes by the pid (and O_EXCL catches the rest:
// a stale file left by a crashed process of the same pid).
path temp_sibling(const path& target) {
  static std::atomic<std::uint64_t> counter{0};
  // relaxed: only uniqueness matters, which the atomic increment gives.
  const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  std::string name = target.filename().native();
  if (name.size() > 128) name.resize(128);  // keep within NAME_MAX (255)
  return parent_dir(target) /
         ("." + name + ".weft-tmp." + std::to_string(::getpid()) + "." + std::to_string(n));
}

void sync_dir(const path& dir, Deadline d) {
  File f = File::open(dir, O_RDONLY | O_DIRECTORY, 0, d);
  f.fsync(d);
  f.close();
}

}  // namespace

// --- File -------------------------------------------------------------------

File::~File() {
  if (obj_ != nullptr) io::drop_handle(obj_);
}

File::File(File&& other) noexcept
    : obj_(std::exchange(other.obj_, nullptr)), fd_(std::exchange(other.fd_, -1)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (obj_ != nullptr) io::drop_handle(obj_);
    obj_ = std::exchange(other.obj_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

File File::open(const path& p, OpenMode mode, unsigned perms, Deadline deadline) {
  return open(p, open_flags(mode), perms, deadline);
}

File File::open(const path& p, int flags, unsigned perms, Deadline deadline) {
  const std::int64_t fd = path_op(io::Op::openat, p, flags, perms, deadline);
  if (fd < 0) fail(static_cast<int>(-fd), "open", p);
  // Not pollable: a regular file is always ready, so its operations go to
  // io_uring or to the blocking pool rather than waiting for readiness.
  io::IoObject* o = io::adopt(static_cast<int>(fd), /*pollable=*/false);
  return File(o, static_cast<int>(fd));
}

std::size_t File::read(void* buf, std::size_t len, Deadline deadline) {
  return static_cast<std::size_t>(io::check(
      transfer(io::Op::read, obj_, fd_, buf, len, io::kCurrentOffset, deadline), "fs::File::read"));
}

std::size_t File::read_exact(void* buf, std::size_t len, Deadline deadline) {
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t n = read(p + done, len - done, deadline);
    if (n == 0) break;
    done += n;
  }
  return done;
}

std::size_t File::write(const void* buf, std::size_t len, Deadline deadline) {
  return static_cast<std::size_t>(
      io::check(transfer(io::Op::write, obj_, fd_, buf, len, io::kCurrentOffset, deadline),
                "fs::File::write"));
}

void File::write_all(const void* buf, std::size_t len, Deadline deadline) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t n = write(p + done, len - done, deadline);
    // write(2) returns 0 for a non-empty buffer only on odd devices; looping
    // would spin forever.
    if (n == 0) io::throw_errno(EIO, "fs::File::write_all: write returned 0");
    done += n;
  }
}

std::size_t File::pread(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline) {
  return static_cast<std::size_t>(
      io::check(transfer(io::Op::read, obj_, fd_, buf, len, offset, deadline), "fs::File::pread"));
}

std::size_t File::pread_exact(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline) {
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t n = pread(p + done, len - done, offset + done, deadline);
    if (n == 0) break;
    done += n;
  }
  return done;
}

std::size_t File::pwrite(const void* buf, std::size_t len, std::uint64_t offset,
                         Deadline deadline) {
  return static_cast<std::size_t>(io::check(
      transfer(io::Op::write, obj_, fd_, buf, len, offset, deadline), "fs::File::pwrite"));
}

void File::pwrite_all(const void* buf, std::size_t len, std::uint64_t offset, Deadline deadline) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t n = pwrite(p + done, len - done, offset + done, deadline);
    if (n == 0) io::throw_errno(EIO, "fs::File::pwrite_all: pwrite returned 0");
    done += n;
  }
}

void File::fsync(Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "fs::File::fsync");
  io::Request r;
  r.op = io::Op::fsync;
  r.fd = fd_;
  io::check(perform(r, obj_, deadline), "fs::File::fsync");
}

void File::fdatasync(Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "fs::File::fdatasync");
  io::Request r;
  r.op = io::Op::fsync;
  r.fd = fd_;
  r.flags = 1;  // IORING_FSYNC_DATASYNC / fdatasync(2)
  io::check(perform(r, obj_, deadline), "fs::File::fdatasync");
}

void File::truncate(std::uint64_t size, Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "fs::File::truncate");
  // off_t is signed: a size it cannot hold would turn negative (EINVAL from
  // the kernel anyway, but say so without relying on the conversion).
  if (size > static_cast<std::uint64_t>(INT64_MAX)) {
    io::throw_errno(EINVAL, "fs::File::truncate: size exceeds INT64_MAX");
  }
  io::Request r;
  r.op = io::Op::truncate;
  r.fd = fd_;
  r.offset = size;
  io::check(perform(r, obj_, deadline), "fs::File::truncate");
}

std::uint64_t File::size(Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "fs::File::size");
  struct statx s {};
  io::check(do_statx(obj_, fd_, "", AT_EMPTY_PATH, STATX_SIZE, &s, deadline), "fs::File::size");
  return s.stx_size;
}

Metadata File::stat(Deadline deadline) {
  if (obj_ == nullptr) io::throw_errno(EBADF, "fs::File::stat");
  struct statx s {};
  io::check(do_statx(obj_, fd_, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &s, deadline),
            "fs::File::stat");
  return to_metadata(s);
}

void File::close() {
  if (obj_ == nullptr) return;
  const int err = io::close(obj_);
  if (err != 0) io::throw_errno(err, "fs::File::close");
}

bool File::is_open() const noexcept {
  if (obj_ == nullptr) return false;
  detail::LockGuard g(obj_->lock);
  return !obj_->closed;
}

int File::native_handle() const noexcept {
  return is_open() ? fd_ : -1;
}

// --- free functions ---------------------------------------------------------

std::string read_file(const path& p, Deadline deadline) {
  File f = File::open(p, O_RDONLY, 0, deadline);
  return naming("read_file", p, [&] {
    // The size is a hint only (0 for /proc files): read until end of file,
    // doubling the buffer when it fills up.
    const std::uint64_t hint = f.size(deadline);
    std::string out;
    out.resize(std::max<std::uint64_t>(hint + 1, 4096));
    std::size_t len = 0;
    for (;;) {
      if (len == out.size()) out.resize(out.size() * 2);
      const std::size_t n = f.read(out.data() + len, out.size() - len, deadline);
      if (n == 0) break;
      len += n;
    }
    out.resize(len);
    return out;
  });
}

void write_file(const path& p, std::string_view data, unsigned perms, Deadline deadline) {
  File f = File::open(p, O_WRONLY | O_CREAT | O_TRUNC, perms, deadline);
  naming("write_file", p, [&] {
    f.write_all(data, deadline);
    f.close();
  });
}

void write_file_atomic(const path& p, std::string_view data, unsigned perms, Deadline deadline) {
  if (!p.has_filename()) fail(EISDIR, "write_file_atomic", p);
  naming("write_file_atomic", p, [&] {
    path tmp;
    File f;
    for (int attempt = 0;; ++attempt) {
      tmp = temp_sibling(p);
      try {
        f = File::open(tmp, O_WRONLY | O_CREAT | O_EXCL, perms, deadline);
        break;
      } catch (const std::system_error& e) {
        if (e.code() != std::errc::file_exists || attempt == 100) throw;
      }
    }
    std::exception_ptr failure;
    try {
      f.write_all(data, deadline);
      f.fsync(deadline);
      f.close();
      io::check(rename_raw(tmp, p, deadline), "rename");
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      // Outside the catch block, so that the fiber does not park while it
      // handles an exception. Not cancellable and without deadline: a
      // timed-out or cancelled call must still clean up. (Linux unlinks an
      // open file just as well; f's destructor closes it.)
      (void)path_op(io::Op::unlinkat, tmp, 0, 0, Deadline(), /*cancellable=*/false);
      std::rethrow_exception(failure);
    }
    sync_dir(parent_dir(p), deadline);
  });
}

bool create_dirs(const path& p, unsigned perms, Deadline deadline) {
  const path q = without_trailing_slash(p);
  if (q.empty()) fail(ENOENT, "create_dirs", p);
  return create_dirs_rec(q, perms, deadline);
}

bool remove(const path& p, Deadline deadline) {
  const std::int64_t n = path_op(io::Op::unlinkat, p, 0, 0, deadline);
  if (n == 0) return true;
  if (n == -ENOENT) return false;
  // unlink(2) on a directory: EISDIR on Linux, EPERM per POSIX.
  if (n == -EISDIR || n == -EPERM) {
    const std::int64_t m = path_op(io::Op::unlinkat, p, AT_REMOVEDIR, 0, deadline);
    if (m == 0) return true;
    if (m == -ENOENT) return false;
    if (m != -ENOTDIR) fail(static_cast<int>(-m), "remove", p);
  }
  fail(static_cast<int>(-n), "remove", p);
}

std::uintmax_t remove_all(const path& p) {
  if (detail::is_cancelled(detail::current_fiber())) throw Cancelled();
  // Captures copies: if the waiting fiber is cancelled, join() throws and the
  // task runs on without this frame. It reports errors as a value so that a
  // detached task never ends with an exception.
  auto work = [p]() -> std::pair<std::uintmax_t, int> {
    std::error_code ec;
    const std::uintmax_t n = std::filesystem::remove_all(p, ec);
    return {n, ec ? ec.value() : 0};
  };
  const auto [n, err] = this_fiber::in_fiber() ? weft::spawn_blocking(work).join() : work();
  if (err != 0) fail(err, "remove_all", p);
  return n;
}

void rename(const path& from, const path& to, Deadline deadline) {
  const std::int64_t n = rename_raw(from, to, deadline);
  if (n < 0) {
    io::throw_errno(static_cast<int>(-n),
                    "rename '" + from.native() + "' -> '" + to.native() + "'");
  }
}

Metadata metadata(const path& p, Deadline deadline) {
  return stat_path(p, 0, "metadata", deadline);
}

Metadata symlink_metadata(const path& p, Deadline deadline) {
  return stat_path(p, AT_SYMLINK_NOFOLLOW, "symlink_metadata", deadline);
}

bool exists(const path& p, Deadline deadline) {
  struct statx s {};
  const std::int64_t n = do_statx(nullptr, AT_FDCWD, p.c_str(), 0, STATX_TYPE, &s, deadline);
  if (n >= 0) return true;
  if (n == -ENOENT || n == -ENOTDIR) return false;
  fail(static_cast<int>(-n), "exists", p);
}

}  // namespace weft::fs
