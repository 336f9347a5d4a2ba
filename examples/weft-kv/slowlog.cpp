// weft-kv: the slow log; see slowlog.hpp.
#include "slowlog.hpp"

#include <algorithm>

namespace kv {

std::vector<std::string> slowlog_argv(std::span<const std::string_view> argv) {
  const std::size_t n = std::min(argv.size(), kSlowLogMaxArgc);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == kSlowLogMaxArgc - 1 && argv.size() > kSlowLogMaxArgc) {
      out.push_back("... (" + std::to_string(argv.size() - kSlowLogMaxArgc + 1) +
                    " more arguments)");
    } else if (argv[i].size() > kSlowLogMaxString) {
      out.push_back(std::string(argv[i].substr(0, kSlowLogMaxString)) + "... (" +
                    std::to_string(argv[i].size() - kSlowLogMaxString) + " more bytes)");
    } else {
      out.emplace_back(argv[i]);
    }
  }
  return out;
}

void SlowLog::record(std::span<const std::string_view> argv, std::int64_t duration_us,
                     std::int64_t slower_than, std::int64_t max_len, std::int64_t now_s,
                     std::string_view addr, std::string_view name) {
  if (slower_than < 0 || duration_us < slower_than) return;
  SlowLogEntry e;
  e.timestamp = now_s;
  e.duration_us = duration_us;
  e.argv = slowlog_argv(argv);
  e.addr = addr;
  e.name = name;
  std::lock_guard g(mu_);
  e.id = next_id_++;
  entries_.push_front(std::move(e));
  while (entries_.size() > static_cast<std::size_t>(std::max<std::int64_t>(max_len, 0)))
    entries_.pop_back();
}

std::vector<SlowLogEntry> SlowLog::get(std::int64_t count) const {
  std::lock_guard g(mu_);
  const std::size_t n =
      count < 0 ? entries_.size() : std::min(entries_.size(), static_cast<std::size_t>(count));
  return {entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::size_t SlowLog::size() const {
  std::lock_guard g(mu_);
  return entries_.size();
}

void SlowLog::reset() {
  std::lock_guard g(mu_);
  entries_.clear();
}

}  // namespace kv
