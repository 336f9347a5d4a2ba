// Leveled logging: the runtime's own messages (stall reports, fibers that
// ended with a lost exception, accept back-off, ...) and a program's, one
// line each on stderr, with where they come from.
//
//   weft::log::logf(weft::log::Level::info, "listening on %s", addr.c_str());
//   // 2026-12-07T01:23:51.123456Z INFO  worker=0 fiber=12 'acceptor' listening on 127.0.0.1:6379
//
//   WEFT_LOG=trace|debug|info|warn|error|off   the threshold (default info)
//   WEFT_LOG_FORMAT=text|json                  the line format (default text)
//
// Each line carries the UTC time (microseconds), the level, the worker
// index and the fiber's id and name when it comes from a fiber of a
// runtime (worker=- fiber=- from a plain thread). JSON lines are objects
// with the keys time, level, worker, fiber, fiber_name, msg (worker and
// fiber null off the runtime's fibers); docs/observability.md has the
// schema.
//
// A line is formatted on the calling thread and written with one write(2)
// to fd 2: lines from different threads never interleave (up to 4 KiB a
// line; longer messages are cut, marked with "..."), and logging takes no
// lock, so a fiber that logs never waits for another one. It does block
// the worker while the write runs, like any write to a terminal or pipe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace weft::log {

/// Severity, lowest first. `off` as a threshold silences everything.
enum class Level : std::uint8_t { trace, debug, info, warn, error, off };

/// "trace", "debug", "info", "warn", "error" or "off".
const char* to_string(Level l) noexcept;

/// The level named `s` (as to_string spells it), or nullopt.
std::optional<Level> parse_level(std::string_view s) noexcept;

/// The line format: `text` for people, `json` (one object per line) for tools.
enum class Format : std::uint8_t { text, json };

/// The threshold: lines below it are dropped. Starts from WEFT_LOG (an
/// unknown value is reported once, as a warn line, and info is used).
/// Any thread, at any time.
void set_level(Level l) noexcept;
/// The threshold in force.
Level level() noexcept;

/// The line format. Starts from WEFT_LOG_FORMAT (text if unset; an unknown
/// value is reported once and text is used). Any thread, at any time.
void set_format(Format f) noexcept;
/// The line format in force.
Format format() noexcept;

/// True if a line of level `l` would be written now.
bool enabled(Level l) noexcept;

/// Writes one event of level `l` with `message`, if enabled(l): one line,
/// or in the text format several when the message has newlines (its
/// further lines indented by two spaces; JSON escapes them). Never throws;
/// any thread, fibers included.
void write(Level l, std::string_view message) noexcept;

/// write(l, the printf-style formatting of fmt and its arguments).
[[gnu::format(printf, 2, 3)]] void logf(Level l, const char* fmt, ...) noexcept;

}  // namespace weft::log
