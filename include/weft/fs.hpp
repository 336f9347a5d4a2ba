// weft::fs: blocking-style file-system I/O for fibers.
//
// Every call here parks only the calling fiber, never its worker: on the
// io_uring backend the operation is an io_uring request (IORING_OP_READ,
// OPENAT, STATX, ...); on the epoll backend, where regular files have no
// readiness to wait for, it runs as a plain system call on the runtime's
// blocking pool. From a plain thread (no runtime) it is the plain system
// call. The same code therefore works unchanged in fibers and threads.
//
// Errors (DESIGN.md): OS failures throw std::system_error whose code() is the
// errno in std::generic_category() (compare with std::errc::...) and whose
// what() names the operation and the path; expected outcomes (end of file,
// "did not exist") are return values.
//
// Deadlines and cancellation. Calls that take a weft::Deadline (absolute, or
// a duration from now; default: none) throw weft::TimedOut if it passes
// first, and every call is a cancellation point that throws weft::Cancelled
// in a cancelled fiber. Regular-file operations rarely wait for long, so
// both are best effort: on io_uring a request still in flight at the
// deadline is cancelled, and if it completed anyway its result is returned
// (nothing is lost); on the epoll backend and on plain threads a file
// operation, once started, runs to completion (cancellation is checked
// before it starts; the deadline is not enforced). Multi-step calls
// (read_file, write_file_atomic, ...) apply one deadline to all their steps.
//
// Paths are std::filesystem::path (a std::string or a string literal
// converts implicitly). Call the free functions qualified (weft::fs::remove,
// or through a namespace alias): an unqualified call with a
// std::filesystem::path argument also finds std::filesystem's function of
// the same name by argument-dependent lookup and is ambiguous.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "weft/deadline.hpp"

namespace weft::detail::io {
struct IoObject;
}  // namespace weft::detail::io

namespace weft::fs {

/// How File::open opens a file: a bitmask, combined with `|`.
///
/// Mapping to open(2) flags: read -> O_RDONLY, write -> O_WRONLY, both ->
/// O_RDWR; append -> O_APPEND (implies write); create -> O_CREAT; truncate
/// -> O_TRUNC (needs write or append); exclusive -> O_CREAT | O_EXCL (implies
/// create: fails with EEXIST if the file exists). O_CLOEXEC is always added.
enum class OpenMode : unsigned {
  none = 0,
  read = 1u << 0,
  write = 1u << 1,
  append = 1u << 2,
  create = 1u << 3,
  truncate = 1u << 4,
  exclusive = 1u << 5,
};

/// Union of two OpenMode sets.
constexpr OpenMode operator|(OpenMode a, OpenMode b) noexcept {
  return static_cast<OpenMode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// Intersection of two OpenMode sets.
constexpr OpenMode operator&(OpenMode a, OpenMode b) noexcept {
  return static_cast<OpenMode>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
/// a = a | b.
constexpr OpenMode& operator|=(OpenMode& a, OpenMode b) noexcept {
  return a = a | b;
}
/// True if every flag of `flags` is set in `mode`.
constexpr bool has(OpenMode mode, OpenMode flags) noexcept {
  return (mode & flags) == flags;
}

/// The kind of a file-system object (the S_IFMT bits of st_mode).
enum class FileType : std::uint8_t {
  regular,
  directory,
  symlink,
  fifo,
  socket,
  block_device,
  char_device,
  unknown,
};

/// What stat(2)/statx(2) reports about a file. Plain value.
struct Metadata {
  /// File size in bytes (for a symlink: the length of its target path).
  std::uint64_t size = 0;
  /// The kind of object.
  FileType type = FileType::unknown;
  /// Permission bits: st_mode & 07777 (rwx for user/group/other, setuid,
  /// setgid, sticky).
  std::uint32_t permissions = 0;
  /// Hard links.
  std::uint64_t nlink = 0;
  /// Owner user and group ids.
  std::uint32_t uid = 0;
  /// Owner group id.
  std::uint32_t gid = 0;
  /// Inode number (with `device`, identifies the file).
  std::uint64_t inode = 0;
  /// Device holding the file: makedev(major, minor).
  std::uint64_t device = 0;
  /// Last modification of the contents, nanosecond resolution (as far as
  /// the file system keeps it), on the system (wall) clock.
  std::chrono::sys_time<std::chrono::nanoseconds> mtime{};

  /// True for a regular file.
  bool is_file() const noexcept { return type == FileType::regular; }
  /// True for a directory.
  bool is_dir() const noexcept { return type == FileType::directory; }
  /// True for a symbolic link (only symlink_metadata() can report one).
  bool is_symlink() const noexcept { return type == FileType::symlink; }
};

/// An open file: owns its descriptor (RAII, close on destruction), move-only.
///
/// Reads and writes may transfer fewer bytes than asked (io_uring reports
/// short counts; each request is also capped at 1 GiB): read()/write()/
/// pread()/pwrite() return what one system call did; read_exact(),
/// write_all(), pread_exact() and pwrite_all() loop.
///
/// Thread/fiber safety: one File may be used by several fibers and threads
/// at once; positional calls (pread/pwrite/fsync/truncate/size/stat) are
/// independent,
/// while read()/write() share the file position and interleave in no
/// particular order. close() may race with operations in progress: they
/// either complete or fail with EBADF (on io_uring, requests in flight are
/// cancelled), and the descriptor is released only after the last of them
/// has returned, so its number is never reused under them. Moving,
/// assigning or destroying a File while another fiber still uses it is
/// undefined, like for any object.
class File {
 public:
  /// A File that is not open: every operation throws EBADF.
  File() noexcept = default;
  /// Closes the file if open, ignoring close(2) errors (call close() to see
  /// them). Never blocks, never throws.
  ~File();
  /// Takes other's descriptor; other is left not open.
  File(File&& other) noexcept;
  /// Closes this file (ignoring errors), then takes other's descriptor.
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  /// Opens (or creates) the file at `path`. `perms` (e.g. 0644) are the
  /// permission bits of a file created now, before the process umask.
  /// @throws std::invalid_argument if `mode` has neither read, write nor
  /// append, or truncate without write/append; std::system_error with the
  /// errno of openat(2) (ENOENT, EEXIST with exclusive, EISDIR when opening
  /// a directory for writing, EACCES, ...); weft::TimedOut; weft::Cancelled.
  static File open(const std::filesystem::path& path, OpenMode mode, unsigned perms = 0644,
                   Deadline deadline = {});
  /// Opens with raw open(2) flags (O_RDONLY, O_WRONLY | O_CREAT, O_DIRECTORY,
  /// O_DIRECT, ...); O_CLOEXEC is added. Same errors as above, minus
  /// std::invalid_argument.
  static File open(const std::filesystem::path& path, int flags, unsigned perms = 0644,
                   Deadline deadline = {});

  /// Reads up to `len` bytes at the file position into buf and advances it.
  /// Returns the bytes read, 0 at end of file (or for len 0).
  /// @throws std::system_error (EBADF once closed, EISDIR for a directory,
  /// EIO, ...); weft::TimedOut; weft::Cancelled.
  std::size_t read(void* buf, std::size_t len, Deadline deadline = {});
  /// Reads until `len` bytes or end of file. Returns the bytes read: less
  /// than len only if end of file came first. Throws like read(); bytes read
  /// before an exception are in buf but the count is lost.
  std::size_t read_exact(void* buf, std::size_t len, Deadline deadline = {});
  /// Writes up to `len` bytes from buf at the file position (at the end of
  /// the file in append mode) and advances it. Returns the bytes written
  /// (> 0 unless len is 0). Throws like read() (ENOSPC, EFBIG, ...).
  std::size_t write(const void* buf, std::size_t len, Deadline deadline = {});
  /// Writes all `len` bytes (looping over short writes). Throws like write();
  /// on an exception a prefix may have been written.
  void write_all(const void* buf, std::size_t len, Deadline deadline = {});
  /// write_all() of a string's bytes.
  void write_all(std::string_view data, Deadline deadline = {}) {
    write_all(data.data(), data.size(), deadline);
  }

  /// Reads up to `len` bytes at byte `offset` without moving the file
  /// position. Returns the bytes read, 0 at or past end of file.
  /// @throws like read(); ESPIPE for a pipe.
  std::size_t pread(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline = {});
  /// pread() until `len` bytes or end of file; returns the bytes read.
  std::size_t pread_exact(void* buf, std::size_t len, std::uint64_t offset, Deadline deadline = {});
  /// Writes up to `len` bytes at byte `offset` without moving the file
  /// position (writing past the end leaves a hole that reads as zeros).
  /// Returns the bytes written. Linux caveat: in append mode the data goes
  /// to the end of the file whatever `offset` says. Throws like write().
  std::size_t pwrite(const void* buf, std::size_t len, std::uint64_t offset,
                     Deadline deadline = {});
  /// pwrite() of all `len` bytes, looping over short writes.
  void pwrite_all(const void* buf, std::size_t len, std::uint64_t offset, Deadline deadline = {});

  /// Flushes data and metadata to the storage device (fsync(2)).
  /// @throws std::system_error (EBADF, EIO, ENOSPC, ...); weft::TimedOut;
  /// weft::Cancelled.
  void fsync(Deadline deadline = {});
  /// Flushes data and the metadata needed to read it back (fdatasync(2)).
  /// Throws like fsync().
  void fdatasync(Deadline deadline = {});

  /// Sets the file's size to `size` bytes (ftruncate(2)): data past it is
  /// discarded; growing the file adds a hole that reads as zeros. The file
  /// position is left alone (it may end up past the end of the file: a
  /// write() there leaves a hole; in append mode writes go to the new end).
  /// Not durable by itself: fsync()/fdatasync() afterwards to make the new
  /// size survive a crash. Safe to call while other fibers use the File,
  /// like the other positional calls (a concurrent write may land before or
  /// after the cut).
  /// Runs on the runtime's blocking pool on both backends (liburing 2.3 has
  /// no io_uring opcode for it), so, as for every file operation on the
  /// epoll backend, it runs to completion once started and the deadline is
  /// not enforced; cancellation is checked before it starts.
  /// @throws std::system_error (EBADF once closed; EINVAL if the file is
  /// not open for writing, is not a regular file, or `size` exceeds
  /// INT64_MAX; EFBIG beyond the file system's limit; EPERM for an
  /// append-only or immutable inode; EIO, ...); weft::Cancelled.
  void truncate(std::uint64_t size, Deadline deadline = {});

  /// set_len(size) is truncate(size): sets the file's length, growing it
  /// with a hole or cutting it (Rust's File::set_len). Errors as truncate().
  void set_len(std::uint64_t size, Deadline deadline = {}) { truncate(size, deadline); }

  /// Where seek() counts from.
  enum class Whence { start, current, end };
  /// Moves the file position (lseek(2); never waits, so no deadline) and
  /// returns the new position from the start. Seeking past the end is
  /// allowed (a write there leaves a hole). Shared with read()/write() of
  /// every fiber using this File.
  /// @throws std::system_error (EINVAL for a position before the start,
  /// ESPIPE for a pipe, EBADF once closed); weft::Cancelled.
  std::uint64_t seek(std::int64_t offset, Whence whence = Whence::start);
  /// The current file position (seek(0, Whence::current)).
  std::uint64_t tell() { return seek(0, Whence::current); }

  /// The file's size in bytes. Throws like stat().
  std::uint64_t size(Deadline deadline = {});
  /// The open file's metadata (fstat). @throws std::system_error (EBADF
  /// once closed); weft::TimedOut; weft::Cancelled.
  Metadata stat(Deadline deadline = {});

  /// Closes the file; idempotent (closing a closed or never-opened File does
  /// nothing). Never blocks: operations still in progress on other fibers
  /// end with EBADF (or complete), and the descriptor is released when the
  /// last one returns. The File stays closed whatever happens.
  /// @throws std::system_error if close(2) itself reported an error (EIO
  /// from a delayed write-back, for instance), when it ran here.
  void close();

  /// True until close() (false for a default-constructed or moved-from
  /// File). Thread-safe.
  bool is_open() const noexcept;
  /// The file descriptor, or -1 if not open. It stays owned by the File: do
  /// not close it; it is valid only while is_open().
  int native_handle() const noexcept;

 private:
  File(detail::io::IoObject* obj, int fd) noexcept : obj_(obj), fd_(fd) {}

  // Both are written only by construction, move and destruction (never by
  // close()), so concurrent operations may read them without a lock; the
  // IoObject's own lock decides whether an operation still may start.
  detail::io::IoObject* obj_ = nullptr;
  int fd_ = -1;
};

/// Reads the whole file at `path`. Reads until end of file, so files whose
/// reported size is wrong (/proc, /sys) are read completely.
/// @throws std::system_error (ENOENT, EACCES, EISDIR, ...); weft::TimedOut;
/// weft::Cancelled.
std::string read_file(const std::filesystem::path& path, Deadline deadline = {});

/// Creates or truncates `path` (permission bits `perms` if created, before
/// the umask) and writes `data` to it. Not atomic: a reader may see an
/// empty or partial file meanwhile, and an error may leave one behind (use
/// write_file_atomic). Does not fsync.
/// @throws std::system_error (ENOENT for a missing directory, EISDIR,
/// ENOSPC, ...); weft::TimedOut; weft::Cancelled.
void write_file(const std::filesystem::path& path, std::string_view data, unsigned perms = 0644,
                Deadline deadline = {});

/// Replaces `path` with `data` atomically and durably: writes a temporary
/// file named ".<name>.weft-tmp.<pid>.<n>" in the same directory (perms
/// `perms`, before the umask), fsyncs it, renames it over `path`, then
/// fsyncs the directory. Readers see either the old contents or the new,
/// never a mix; after a crash, either one is there. On failure before the
/// rename the temporary file is removed and `path` is untouched (even when
/// the failure is weft::TimedOut or weft::Cancelled). If only the final
/// directory fsync fails, `path` already holds the new contents but the
/// call still throws (durability is not guaranteed). A symlink at `path` is
/// replaced, not followed.
/// @throws std::system_error (ENOENT for a missing directory, EISDIR if
/// `path` is a directory, EACCES, ENOSPC, ...); weft::TimedOut;
/// weft::Cancelled.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       unsigned perms = 0644, Deadline deadline = {});

/// Creates the directory `path` and any missing parents (mkdir -p), each
/// with permission bits `perms` before the umask. Returns true if `path`
/// was created, false if it already was a directory (or a symlink to one).
/// Safe against other fibers or processes creating the same directories.
/// @throws std::system_error (EEXIST if `path` or a parent exists and is not
/// a directory, EACCES, ...); weft::TimedOut; weft::Cancelled.
bool create_dirs(const std::filesystem::path& path, unsigned perms = 0755, Deadline deadline = {});

/// Removes a file, a symlink (not its target) or an empty directory.
/// Returns true if something was removed, false if nothing existed there.
/// @throws std::system_error (ENOTEMPTY for a non-empty directory, EACCES,
/// ENOTDIR, ...); weft::TimedOut; weft::Cancelled.
bool remove(const std::filesystem::path& path, Deadline deadline = {});

/// Removes `path` and, if it is a directory, everything below it (symlinks
/// are removed, not followed). Returns the number of entries removed (0 if
/// nothing existed). Runs std::filesystem::remove_all (no deadline), on the
/// blocking pool when called from a fiber. Cancellation is checked before it
/// starts; a fiber cancelled while it waits gets weft::Cancelled at once and
/// the removal goes on in the background to its end.
/// @throws std::system_error (EACCES, ...); weft::Cancelled.
std::uintmax_t remove_all(const std::filesystem::path& path);

/// Renames `from` to `to` (rename(2)): atomically replaces a file at `to`,
/// or an empty directory when `from` is a directory.
/// @throws std::system_error (ENOENT, EXDEV across file systems, EISDIR,
/// ENOTEMPTY, ...); weft::TimedOut; weft::Cancelled.
void rename(const std::filesystem::path& from, const std::filesystem::path& to,
            Deadline deadline = {});

/// The metadata of `path`, following symlinks (stat(2)).
/// @throws std::system_error (ENOENT, ENOTDIR, EACCES, ...); weft::TimedOut;
/// weft::Cancelled.
Metadata metadata(const std::filesystem::path& path, Deadline deadline = {});

/// The metadata of `path` itself when it is a symlink (lstat(2)); otherwise
/// like metadata().
Metadata symlink_metadata(const std::filesystem::path& path, Deadline deadline = {});

/// True if `path` names an existing object (following symlinks: a dangling
/// symlink is false). ENOENT and ENOTDIR count as "does not exist".
/// @throws std::system_error for other errors (EACCES on a parent, ...);
/// weft::TimedOut; weft::Cancelled.
bool exists(const std::filesystem::path& path, Deadline deadline = {});

// --- directories, links, permissions, copies (src/fs/dir.cpp) ----------------
//
// These run their system calls on the runtime's blocking pool from a fiber
// (there is no io_uring opcode for getdents, readlink, symlink, fchmodat or
// copy_file_range in liburing 2.3), directly on a plain thread. Like file
// operations on the epoll backend, a call runs to completion once started:
// cancellation is checked before it starts, and a cancelled fiber stops
// waiting for it (weft::Cancelled) while it finishes in the background.

/// One entry of a directory listing.
struct DirEntry {
  std::string name;                   ///< the file name alone
  std::filesystem::path path;         ///< the directory's path / name
  FileType type = FileType::unknown;  ///< the entry itself (a symlink is a symlink)
};

/// A directory being listed, lazily: each next() returns one entry, and a
/// block of entries (up to 32 KiB of getdents64 records) is read from the
/// kernel only when the previous block is used up, so a huge directory
/// costs one block of memory. "." and ".." are skipped; the order is the
/// file system's. Move-only; owns the directory's descriptor. Range-for
/// works (for (const DirEntry& e : weft::fs::read_dir(p))).
class ReadDir {
 public:
  ReadDir() = default;
  /// Move-only: other is left closed.
  ReadDir(ReadDir&&) noexcept;
  /// Closes this directory stream, then takes over other's.
  ReadDir& operator=(ReadDir&&) noexcept;
  ReadDir(const ReadDir&) = delete;
  ReadDir& operator=(const ReadDir&) = delete;
  ~ReadDir();

  /// The next entry, or empty at the end. @throws std::system_error naming
  /// the directory (EIO, ...); weft::Cancelled.
  std::optional<DirEntry> next();

  /// An input iterator over the entries (one pass; `.` and `..` skipped).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = DirEntry;
    using difference_type = std::ptrdiff_t;
    using pointer = const DirEntry*;
    using reference = const DirEntry&;
    iterator() = default;
    /// Reads the first entry of d.
    explicit iterator(ReadDir* d) : dir_(d) { ++*this; }
    /// The current entry.
    const DirEntry& operator*() const { return *cur_; }
    /// The current entry.
    const DirEntry* operator->() const { return &*cur_; }
    /// Reads the next entry. @throws std::system_error from the read.
    iterator& operator++() {
      cur_ = dir_->next();
      if (!cur_) dir_ = nullptr;
      return *this;
    }
    /// As prefix ++.
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.dir_ == b.dir_;
    }

   private:
    ReadDir* dir_ = nullptr;
    std::optional<DirEntry> cur_;
  };
  /// An iterator at the first entry (reads it). @throws std::system_error.
  iterator begin() { return iterator(this); }
  /// The end iterator.
  iterator end() { return iterator(); }

  struct State;

 private:
  friend ReadDir read_dir(const std::filesystem::path& path);
  std::unique_ptr<State> state_;
};

/// Opens the directory at `path` for listing (see ReadDir).
/// @throws std::system_error ("weft: read_dir '<path>'": ENOENT, ENOTDIR,
/// EACCES, ...); weft::Cancelled.
ReadDir read_dir(const std::filesystem::path& path);

/// Copies the regular file `from` to `to` (copy_file_range(2), in the
/// kernel) with `from`'s permission bits, and returns the bytes copied. An
/// existing `to` is replaced only with overwrite = true (else EEXIST).
/// @throws std::system_error ("weft: copy_file '<from>' -> '<to>'":
/// ENOENT, EEXIST, EISDIR, ENOSPC, ...); weft::Cancelled.
std::uint64_t copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
                        bool overwrite = false);

/// Creates a symbolic link at `link` pointing to `target` (which need not
/// exist). @throws std::system_error ("weft: symlink '<target>' ->
/// '<link>'": EEXIST, ENOENT, ...); weft::Cancelled.
void symlink(const std::filesystem::path& target, const std::filesystem::path& link);

/// The target of the symbolic link at `path` (not resolved further).
/// @throws std::system_error ("weft: read_link '<path>'": EINVAL if it is
/// not a symlink, ENOENT, ...); weft::Cancelled.
std::filesystem::path read_link(const std::filesystem::path& path);

/// Sets the permission bits (07777: rwx for user/group/other, setuid,
/// setgid, sticky) of `path`, following symlinks (chmod(2)).
/// @throws std::invalid_argument for bits outside 07777;
/// std::system_error ("weft: set_permissions '<path>'": ENOENT, EPERM,
/// ...); weft::Cancelled.
void set_permissions(const std::filesystem::path& path, std::uint32_t permissions);

}  // namespace weft::fs
