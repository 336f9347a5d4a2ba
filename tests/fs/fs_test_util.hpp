// Helpers for the weft::fs tests: a temporary directory per test, a fixture
// parameterised over the I/O backend, errno assertions, content hashing.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/test_util.hpp"
#include "weft/fs.hpp"

namespace weft::test {

/// A fresh directory under /tmp (mkdtemp), removed with everything in it on
/// destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/weft-fs-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// path() / name.
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  /// The names in the directory, sorted (read with std::filesystem, so
  /// independently of the code under test).
  std::vector<std::string> list() const { return list_dir(path_); }

  static std::vector<std::string> list_dir(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

/// Fixture for tests that run on both reactor backends: run(fn) executes fn
/// as the root fiber of a fresh 2-worker runtime using GetParam().
class FsBackendTest : public ::testing::TestWithParam<weft::IoBackend> {
 protected:
  weft::Config config(std::size_t workers = 2) const {
    weft::Config c = workers_config(workers);
    c.io_backend = GetParam();
    return c;
  }
  template <class F>
  void run(F&& fn, std::size_t workers = 2) {
    weft::Runtime rt(config(workers));
    ASSERT_EQ(rt.io_backend(), GetParam());
    rt.block_on(std::forward<F>(fn));
  }
  TempDir dir_;
};

inline std::string backend_name(const ::testing::TestParamInfo<weft::IoBackend>& info) {
  return info.param == weft::IoBackend::io_uring ? "io_uring" : "epoll";
}

/// Instantiates an FsBackendTest-derived suite over io_uring and epoll.
#define WEFT_INSTANTIATE_BACKENDS(Suite)                                                         \
  INSTANTIATE_TEST_SUITE_P(                                                                      \
      Backends, Suite, ::testing::Values(::weft::IoBackend::io_uring, ::weft::IoBackend::epoll), \
      ::weft::test::backend_name)

/// Expects `stmt` to throw std::system_error with code `want` (a std::errc:
/// the errno in the generic category) and a what() containing each of the
/// optional further arguments (strings).
#define WEFT_EXPECT_ERRNO(stmt, want, ...)                                               \
  do {                                                                                   \
    try {                                                                                \
      stmt;                                                                              \
      ADD_FAILURE() << #stmt << " did not throw; want " << std::make_error_code(want);   \
    } catch (const std::system_error& e_) {                                              \
      EXPECT_EQ(e_.code(), std::make_error_code(want)) << #stmt << ": " << e_.what();    \
      for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(std::string_view(e_.what()).find(part_), std::string_view::npos)       \
            << #stmt << ": message '" << e_.what() << "' lacks '" << part_ << "'";       \
      }                                                                                  \
    }                                                                                    \
  } while (0)

/// 64-bit FNV-1a of the bytes.
inline std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// `n` pseudo-random bytes from `seed` (xorshift64*), reproducible.
inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::string s(n, '\0');
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t i = 0; i < n; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    const std::uint64_t v = x * 0x2545f4914f6cdd1dull;
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
  }
  return s;
}

/// The file's bytes, read with stdio, independently of weft::fs (for
/// checking what the code under test wrote).
inline std::string slurp(const std::filesystem::path& p) {
  std::string out;
  FILE* f = std::fopen(p.c_str(), "rb");
  if (f == nullptr) throw std::system_error(errno, std::generic_category(), "fopen " + p.string());
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

}  // namespace weft::test
