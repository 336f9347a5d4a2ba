// weft-kv: command-line options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "aof.hpp"
#include "resp.hpp"
#include "weft/config.hpp"

namespace kv {

/// Command-line options (see kUsage).
struct Options {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6380;
  std::size_t workers = 0;  ///< 0: weft's default (one per core)
  weft::IoBackend io = weft::IoBackend::auto_detect;
  bool appendonly = false;
  FsyncPolicy appendfsync = FsyncPolicy::everysec;
  std::filesystem::path dir = ".";
  std::size_t maxclients = 10000;
  std::uint64_t maxmemory = 0;  ///< bytes; 0: no limit
  std::uint64_t timeout_s = 0;  ///< client idle timeout, seconds; 0: none
  ParseLimits limits;
};

/// Parses argv (without the program name) into Options. On a bad flag or
/// value throws std::invalid_argument with a message naming the flag;
/// `--help` sets `*help` and returns.
Options parse_options(std::span<char* const> args, bool* help);

/// The --help text.
extern const char* const kUsage;

/// Redis's name for an fsync policy ("always", "everysec", "no").
const char* fsync_policy_name(FsyncPolicy p) noexcept;

}  // namespace kv
