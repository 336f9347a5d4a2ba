// Command-line options of the example programs (pipeline, work-queue,
// crawler): "--name value" pairs, integers checked against a range, and the
// runtime options every example takes (--workers, --io). A bad option
// prints the usage and exits 2; --help prints it and exits 0.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "weft/config.hpp"

namespace examples {

class Cli {
 public:
  /// Parses argv as "--name value" pairs. `usage` is the text printed for
  /// --help and after an error (program name first).
  Cli(int argc, char** argv, const char* program, const char* usage)
      : program_(program), usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") fail(nullptr);
      if (a.size() < 3 || a.substr(0, 2) != "--") fail("unexpected argument " + std::string(a));
      if (i + 1 >= argc) fail("missing value after " + std::string(a));
      values_[std::string(a)] = argv[++i];
    }
  }

  /// The integer given for `flag` (in lo..hi), or `fallback`.
  long number(const std::string& flag, long lo, long hi, long fallback) {
    const auto it = take(flag);
    if (it == nullptr) return fallback;
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(it->c_str(), &end, 10);
    if (errno != 0 || end == it->c_str() || *end != '\0' || v < lo || v > hi) {
      fail(flag + " wants an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
           ", got '" + *it + "'");
    }
    return v;
  }

  /// The text given for `flag`, or `fallback`.
  std::string text(const std::string& flag, std::string fallback) {
    const auto it = take(flag);
    return it != nullptr ? *it : fallback;
  }

  /// A runtime Config from the environment, then --workers N and --io
  /// auto|io_uring|epoll.
  weft::Config config() {
    weft::Config c;
    try {
      c = weft::Config::from_env();
    } catch (const std::exception& e) {
      fail(e.what());
    }
    c.workers = static_cast<std::size_t>(number("--workers", 1, 1024, c.workers));
    const std::string io = text("--io", "");
    if (io == "io_uring") {
      c.io_backend = weft::IoBackend::io_uring;
    } else if (io == "epoll") {
      c.io_backend = weft::IoBackend::epoll;
    } else if (io == "auto") {
      c.io_backend = weft::IoBackend::auto_detect;
    } else if (!io.empty()) {
      fail("--io wants auto, io_uring or epoll");
    }
    return c;
  }

  /// Call after reading every option: an option nobody asked for is an
  /// error (a misspelt flag must not be ignored).
  void done() {
    if (!values_.empty()) fail("unknown option " + values_.begin()->first);
  }

  [[noreturn]] void fail(const std::string& error) { fail(error.c_str()); }
  [[noreturn]] void fail(const char* error) {
    if (error != nullptr) std::fprintf(stderr, "%s: %s\n", program_, error);
    std::fputs(usage_, error != nullptr ? stderr : stdout);
    std::exit(error != nullptr ? 2 : 0);
  }

 private:
  const std::string* take(const std::string& flag) {
    const auto it = values_.find(flag);
    if (it == values_.end()) return nullptr;
    taken_[flag] = it->second;
    values_.erase(it);
    return &taken_[flag];
  }

  const char* program_;
  const char* usage_;
  std::map<std::string, std::string> values_;  // not yet read
  std::map<std::string, std::string> taken_;   // read (kept for the returned pointers)
};

}  // namespace examples
