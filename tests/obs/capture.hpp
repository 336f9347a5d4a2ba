// Captures what the process writes to fd 2 (where the log and the stall
// report go), for the tests of this folder.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace weft::test {

/// What fd 2 (a file: CaptureFd2, or gtest's death-test capture) holds so
/// far, read through a description of our own (fd 2's offset stays where
/// the writers left it).
inline std::string fd2_so_far() {
  std::FILE* f = std::fopen("/proc/self/fd/2", "r");
  if (f == nullptr) return {};
  std::string all;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) all.append(buf, n);
  std::fclose(f);
  return all;
}

/// Everything written to fd 2 while it lives (fd 2 is restored by text(),
/// lines() or the destructor, whichever comes first).
class CaptureFd2 {
 public:
  CaptureFd2() : file_(std::tmpfile()) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  ~CaptureFd2() {
    restore();
    std::fclose(file_);
  }
  CaptureFd2(const CaptureFd2&) = delete;
  CaptureFd2& operator=(const CaptureFd2&) = delete;

  std::string text() {
    restore();
    std::fseek(file_, 0, SEEK_SET);
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) out.append(buf, n);
    return out;
  }

  /// text() split at newlines; a last line without one is marked.
  std::vector<std::string> lines() {
    const std::string all = text();
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(all.substr(start, nl - start));
    }
    if (start < all.size()) out.push_back(all.substr(start) + "<no newline>");
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_ = -1;
};

}  // namespace weft::test
