// weft::fs: directory listings, links, permissions, copies and File::seek
// (the declarations' block in weft/fs.hpp says how they run).
//
// read_dir is lazy: ReadDir keeps the directory's descriptor and one block
// of getdents64 records, and asks the kernel for the next block only when
// the caller has consumed this one. Each getdents64 (and every call here)
// goes to the blocking pool from a fiber through on_pool(), which copies
// what the call needs into the task, so that a cancelled caller that stops
// waiting leaves nothing behind that the task still points to. A ReadDir's
// buffer is shared with its task the same way (a shared_ptr).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/backend.hpp"
#include "io/error.hpp"
#include "io/io_object.hpp"
#include "weft/cancel.hpp"
#include "weft/fiber.hpp"
#include "weft/fs.hpp"
#include "weft/this_fiber.hpp"

namespace weft::fs {

namespace io = detail::io;
using std::filesystem::path;

namespace {

constexpr std::size_t kDirBlock = 32 * 1024;

// Runs fn (returning 0 or an errno, or a value) on the blocking pool from a
// fiber, inline on a thread. fn owns copies of everything it touches.
template <class F>
auto on_pool(F fn) {
  this_fiber::check_cancelled();
  return this_fiber::in_fiber() ? weft::spawn_blocking(std::move(fn)).join() : fn();
}

[[noreturn]] void fail(int err, const std::string& what) {
  io::throw_errno(err, what);
}

FileType from_dtype(unsigned char t) noexcept {
  switch (t) {
    case DT_REG:
      return FileType::regular;
    case DT_DIR:
      return FileType::directory;
    case DT_LNK:
      return FileType::symlink;
    case DT_FIFO:
      return FileType::fifo;
    case DT_SOCK:
      return FileType::socket;
    case DT_BLK:
      return FileType::block_device;
    case DT_CHR:
      return FileType::char_device;
    default:
      return FileType::unknown;
  }
}

struct Block {
  std::unique_ptr<char[]> data{new char[kDirBlock]};
  long size = 0;  // bytes of records from the last getdents64
};

}  // namespace

struct ReadDir::State {
  path dir;
  int fd = -1;
  std::shared_ptr<Block> block = std::make_shared<Block>();
  long pos = 0;      // next record in block
  bool end = false;  // getdents64 returned 0
  ~State() {
    if (fd >= 0) ::close(fd);
  }
};

ReadDir::ReadDir(ReadDir&&) noexcept = default;
ReadDir& ReadDir::operator=(ReadDir&&) noexcept = default;
ReadDir::~ReadDir() = default;

ReadDir read_dir(const path& p) {
  auto st = std::make_unique<ReadDir::State>();
  st->dir = p;
  const std::string name = p.native();
  const auto [fd, err] = on_pool([name]() -> std::pair<int, int> {
    const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return {fd, fd < 0 ? errno : 0};
  });
  if (fd < 0) fail(err, "read_dir '" + name + "'");
  st->fd = fd;
  ReadDir d;
  d.state_ = std::move(st);
  return d;
}

std::optional<DirEntry> ReadDir::next() {
  if (!state_) return std::nullopt;
  State& s = *state_;
  for (;;) {
    if (s.pos >= s.block->size) {
      if (s.end) return std::nullopt;
      // The task gets its own duplicate of the descriptor and a share of
      // the block: a cancelled caller that unwinds past this ReadDir leaves
      // it nothing dangling.
      const int fd = ::fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) fail(errno, "read_dir '" + s.dir.native() + "'");
      std::shared_ptr<Block> b = s.block;
      const long n = on_pool([fd, b]() -> long {
        const long r = ::syscall(SYS_getdents64, fd, b->data.get(), kDirBlock);
        const int e = errno;
        ::close(fd);
        return r < 0 ? -e : r;
      });
      if (n < 0) fail(static_cast<int>(-n), "read_dir '" + s.dir.native() + "'");
      s.block->size = n;
      s.pos = 0;
      if (n == 0) {
        s.end = true;
        return std::nullopt;
      }
    }
    const auto* d = reinterpret_cast<const dirent64*>(s.block->data.get() + s.pos);
    s.pos += d->d_reclen;
    const char* nm = d->d_name;
    if (std::strcmp(nm, ".") == 0 || std::strcmp(nm, "..") == 0) continue;
    DirEntry e;
    e.name = nm;
    e.path = s.dir / e.name;
    e.type = from_dtype(d->d_type);
    if (e.type == FileType::unknown) {
      // Some file systems do not fill d_type: ask lstat.
      try {
        e.type = symlink_metadata(e.path).type;
      } catch (const std::system_error&) {
        // Removed meanwhile: keep unknown.
      }
    }
    return e;
  }
}

std::uint64_t copy_file(const path& from, const path& to, bool overwrite) {
  const std::string a = from.native(), b = to.native();
  const auto [n, err] = on_pool([a, b, overwrite]() -> std::pair<std::uint64_t, int> {
    const int in = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return {0, errno};
    struct stat st {};
    if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int e = S_ISDIR(st.st_mode) ? EISDIR : (errno != 0 ? errno : EINVAL);
      ::close(in);
      return {0, e};
    }
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (overwrite ? 0 : O_EXCL);
    const int out = ::open(b.c_str(), flags, st.st_mode & 07777);
    if (out < 0) {
      const int e = errno;
      ::close(in);
      return {0, e};
    }
    std::uint64_t done = 0;
    int e = 0;
    for (;;) {
      const ssize_t k = ::copy_file_range(in, nullptr, out, nullptr, std::size_t{1} << 30, 0);
      if (k > 0) {
        done += static_cast<std::uint64_t>(k);
        continue;
      }
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) e = errno;
      break;
    }
    if (e == 0 && ::fchmod(out, st.st_mode & 07777) != 0) e = errno;  // umask-free
    if (::close(out) != 0 && e == 0) e = errno;
    ::close(in);
    return {done, e};
  });
  if (err != 0) fail(err, "copy_file '" + a + "' -> '" + b + "'");
  return n;
}

void symlink(const path& target, const path& link) {
  const std::string t = target.native(), l = link.native();
  const int err = on_pool([t, l] { return ::symlink(t.c_str(), l.c_str()) == 0 ? 0 : errno; });
  if (err != 0) fail(err, "symlink '" + t + "' -> '" + l + "'");
}

path read_link(const path& p) {
  const std::string name = p.native();
  const auto [target, err] = on_pool([name]() -> std::pair<std::string, int> {
    std::string buf(256, '\0');
    for (;;) {
      const ssize_t n = ::readlink(name.c_str(), buf.data(), buf.size());
      if (n < 0) return {{}, errno};
      if (static_cast<std::size_t>(n) < buf.size()) {
        buf.resize(static_cast<std::size_t>(n));
        return {buf, 0};
      }
      buf.resize(buf.size() * 2);  // possibly truncated: try a larger buffer
    }
  });
  if (err != 0) fail(err, "read_link '" + name + "'");
  return path(target);
}

void set_permissions(const path& p, std::uint32_t permissions) {
  if ((permissions & ~07777u) != 0) {
    throw std::invalid_argument("weft: set_permissions: bits outside 07777");
  }
  const std::string name = p.native();
  const int err = on_pool([name, permissions] {
    return ::chmod(name.c_str(), static_cast<mode_t>(permissions)) == 0 ? 0 : errno;
  });
  if (err != 0) fail(err, "set_permissions '" + name + "'");
}

std::uint64_t File::seek(std::int64_t offset, Whence whence) {
  this_fiber::check_cancelled();
  io::OpGuard guard(obj_);
  if (!guard) io::throw_errno(EBADF, "fs::File::seek");
  const int w = whence == Whence::start     ? SEEK_SET
                : whence == Whence::current ? SEEK_CUR
                                            : SEEK_END;
  // lseek never waits: called inline, under the operation guard so the
  // descriptor cannot be closed and reused meanwhile.
  const off_t r = ::lseek(fd_, static_cast<off_t>(offset), w);
  if (r < 0) io::throw_errno(errno, "fs::File::seek");
  return static_cast<std::uint64_t>(r);
}

}  // namespace weft::fs
