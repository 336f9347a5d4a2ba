// weft/log.hpp: leveled lines on stderr, one write(2) each.
//
// Not spdlog (which the issue allowed): its sinks serialize lines with a
// std::mutex, so a fiber logging while another thread holds the sink would
// block its whole worker on a lock the scheduler cannot see; here a line is
// built in a stack buffer and written with one system call, which the
// kernel keeps whole for pipes (up to PIPE_BUF = 4 KiB, our line limit) and
// for terminals and O_APPEND files. The format is small enough not to need
// a library.
#include "weft/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>

#include "fiber/fiber.hpp"
#include "sched/current.hpp"
#include "sched/runtime_impl.hpp"
#include "sched/worker.hpp"

namespace weft::log {
namespace {

// relaxed: independent settings; a line may use the threshold or format
// of just before a concurrent change.
std::atomic<std::uint8_t> g_level{static_cast<std::uint8_t>(Level::info)};
std::atomic<std::uint8_t> g_format{static_cast<std::uint8_t>(Format::text)};

constexpr std::size_t kLineMax = 4096;  // PIPE_BUF: one atomic write to a pipe

/// A bounded line buffer: appends past the end are dropped (and marked).
class Line {
  static constexpr std::size_t kMarkRoom = 8;  // "...\"}" and the newline

 public:
  void put(char c) noexcept {
    if (n_ < kLineMax - kMarkRoom) {
      buf_[n_++] = c;
    } else {
      cut_ = true;
    }
  }
  void put(std::string_view s) noexcept {
    for (char c : s) put(c);
  }
  void putf(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3))) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    const int k = std::vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
      put(std::string_view(tmp, static_cast<std::size_t>(k) < sizeof tmp ? k : sizeof tmp - 1));
  }
  /// Text: a message's further lines (a backtrace) follow its first,
  /// indented, in the same write: whole for a reader, never interleaved.
  void put_text(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
      put(s[i]);
      if (s[i] == '\n' && i + 1 < s.size()) put("  ");
    }
  }
  /// A JSON string body (RFC 8259 escapes).
  void put_json(std::string_view s) noexcept {
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        put('\\');
        put(c);
      } else if (c == '\n') {
        put("\\n");
      } else if (c == '\t') {
        put("\\t");
      } else if (u < 0x20) {
        putf("\\u%04x", u);
      } else {
        put(c);
      }
    }
  }
  /// Ends the line and writes it with one write(2) (retried on EINTR; a
  /// short write to a full pipe goes on with the rest).
  void flush(Format f) noexcept {
    if (cut_) {
      // Room was kept for the mark (and for closing the JSON object, whose
      // message string is the last field).
      const std::string_view mark = f == Format::json ? "...\"}" : "...";
      std::memcpy(buf_ + n_, mark.data(), mark.size());
      n_ += mark.size();
    }
    buf_[n_++] = '\n';
    std::size_t off = 0;
    while (off < n_) {
      const ssize_t w = ::write(2, buf_ + off, n_ - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      off += static_cast<std::size_t>(w);
    }
  }

 private:
  char buf_[kLineMax];
  std::size_t n_ = 0;
  bool cut_ = false;
};

void put_time(Line& line) noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  ::gmtime_r(&ts.tv_sec, &tm);
  line.putf("%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

// Each level's name (to_string) and its fixed-width form in text lines.
struct LevelNames {
  const char* lower;
  const char* column;
};
constexpr LevelNames kLevelNames[] = {{"trace", "TRACE"}, {"debug", "DEBUG"}, {"info", "INFO "},
                                      {"warn", "WARN "},  {"error", "ERROR"}, {"off", "OFF  "}};

const LevelNames& names_of(Level l) noexcept {
  const auto i = static_cast<std::size_t>(l);
  return kLevelNames[i < std::size(kLevelNames) ? i : std::size(kLevelNames) - 1];
}

void emit(Level l, std::string_view message) noexcept {
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  // Where it comes from: only the calling fiber's own fields, which it
  // reads safely (its name and id do not change while it runs; its labels
  // change only by its own set_label).
  const detail::Worker* w = detail::current_worker();
  const detail::Fiber* f = detail::current_fiber();
  const auto fmt = static_cast<Format>(g_format.load(std::memory_order_relaxed));
  Line line;
  if (fmt == Format::json) {
    line.put("{\"time\":\"");
    put_time(line);
    line.put("\",\"level\":\"");
    line.put(to_string(l));
    line.put("\",\"worker\":");
    if (w != nullptr) {
      line.putf("%d", w->index());
    } else {
      line.put("null");
    }
    line.put(",\"fiber\":");
    if (f != nullptr) {
      line.putf("%llu,\"fiber_name\":\"", static_cast<unsigned long long>(f->id));
      line.put_json(f->name);
      line.put('"');
      if (const detail::FiberLabels* labels = f->runtime->own_labels(f)) {
        line.put(",\"labels\":{");
        bool first = true;
        for (const auto& [k, v] : *labels) {
          line.put(first ? "\"" : ",\"");
          first = false;
          line.put_json(k);
          line.put("\":\"");
          line.put_json(v);
          line.put('"');
        }
        line.put('}');
      }
    } else {
      line.put("null,\"fiber_name\":null");
    }
    line.put(",\"msg\":\"");
    line.put_json(message);
    line.put("\"}");
  } else {
    put_time(line);
    line.put(' ');
    line.put(names_of(l).column);
    if (w != nullptr) {
      line.putf(" worker=%d", w->index());
    } else {
      line.put(" worker=-");
    }
    if (f != nullptr) {
      line.putf(" fiber=%llu '", static_cast<unsigned long long>(f->id));
      line.put_text(f->name);
      line.put('\'');
      // The fiber's labels (this_fiber::set_label).
      if (const detail::FiberLabels* labels = f->runtime->own_labels(f)) {
        for (const auto& [k, v] : *labels) {
          line.put(' ');
          line.put_text(k);
          line.put('=');
          line.put_text(v);
        }
      }
    } else {
      line.put(" fiber=-");
    }
    line.put(' ');
    line.put_text(message);
  }
  line.flush(fmt);
}

// The environment, read once before the first use of the settings. Bad
// values are reported (once) after both are set.
bool init_from_env() noexcept {
  const char* bad_level = nullptr;
  const char* bad_format = nullptr;
  if (const char* v = std::getenv("WEFT_LOG"); v != nullptr && *v != '\0') {
    if (auto l = parse_level(v)) {
      g_level.store(static_cast<std::uint8_t>(*l), std::memory_order_relaxed);
    } else {
      bad_level = v;
    }
  }
  if (const char* v = std::getenv("WEFT_LOG_FORMAT"); v != nullptr && *v != '\0') {
    if (std::strcmp(v, "json") == 0) {
      g_format.store(static_cast<std::uint8_t>(Format::json), std::memory_order_relaxed);
    } else if (std::strcmp(v, "text") != 0) {
      bad_format = v;
    }
  }
  char msg[256];
  if (bad_level != nullptr) {
    std::snprintf(msg, sizeof msg,
                  "weft: WEFT_LOG='%.64s' is not one of trace, debug, info, warn, error, off; "
                  "using info",
                  bad_level);
    emit(Level::warn, msg);
  }
  if (bad_format != nullptr) {
    std::snprintf(msg, sizeof msg,
                  "weft: WEFT_LOG_FORMAT='%.64s' is not one of text, json; using text", bad_format);
    emit(Level::warn, msg);
  }
  return true;
}

void ensure_init() noexcept {
  [[maybe_unused]] static const bool done = init_from_env();
}

}  // namespace

const char* to_string(Level l) noexcept {
  return names_of(l).lower;
}

std::optional<Level> parse_level(std::string_view s) noexcept {
  for (Level l : {Level::trace, Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (s == to_string(l)) return l;
  }
  return std::nullopt;
}

void set_level(Level l) noexcept {
  ensure_init();
  g_level.store(static_cast<std::uint8_t>(l), std::memory_order_relaxed);
}

Level level() noexcept {
  ensure_init();
  return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}

void set_format(Format f) noexcept {
  ensure_init();
  g_format.store(static_cast<std::uint8_t>(f), std::memory_order_relaxed);
}

Format format() noexcept {
  ensure_init();
  return static_cast<Format>(g_format.load(std::memory_order_relaxed));
}

bool enabled(Level l) noexcept {
  return l != Level::off && l >= level();
}

void write(Level l, std::string_view message) noexcept {
  if (enabled(l)) emit(l, message);
}

void logf(Level l, const char* fmt, ...) noexcept {
  if (!enabled(l)) return;
  char msg[kLineMax];
  va_list ap;
  va_start(ap, fmt);
  const int k = std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  emit(l, std::string_view(msg, static_cast<std::size_t>(k) < sizeof msg ? k : sizeof msg - 1));
}

}  // namespace weft::log
