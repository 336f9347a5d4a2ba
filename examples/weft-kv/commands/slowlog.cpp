// weft-kv commands: SLOWLOG GET/LEN/RESET/HELP (Redis's slowlog.c), over
// the server's slow log (slowlog.hpp, Host::slowlog).
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

// Redis's slowlogCommand checks the argument count per subcommand itself
// (the rows' arities let these through).
void syntax_error(Context& c) {
  err(c, "ERR unknown subcommand or wrong number of arguments for '" +
             std::string(c.argv[1].substr(0, 128)) + "'. Try SLOWLOG HELP.");
}

void cmd_slowlog_get(Context& c) {
  if (c.argv.size() > 3) return syntax_error(c);
  long long count = 10;
  if (c.argv.size() == 3 && (!parse_ll(c.argv[2], count) || count < -1))
    return err(c, "ERR count should be greater than or equal to -1");
  SlowLog* log = c.host.slowlog();
  const std::vector<SlowLogEntry> entries =
      log == nullptr ? std::vector<SlowLogEntry>{} : log->get(count);
  Reply::array_header(c.out, entries.size());
  for (const SlowLogEntry& e : entries) {
    Reply::array_header(c.out, 6);
    Reply::integer(c.out, static_cast<std::int64_t>(e.id));
    Reply::integer(c.out, e.timestamp);
    Reply::integer(c.out, e.duration_us);
    Reply::array_header(c.out, e.argv.size());
    for (const std::string& a : e.argv) Reply::bulk(c.out, a);
    Reply::bulk(c.out, e.addr);
    Reply::bulk(c.out, e.name);
  }
}

void cmd_slowlog_len(Context& c) {
  SlowLog* log = c.host.slowlog();
  Reply::integer(c.out, log == nullptr ? 0 : static_cast<std::int64_t>(log->size()));
}

void cmd_slowlog_reset(Context& c) {
  if (SlowLog* log = c.host.slowlog()) log->reset();
  ok(c);
}

void cmd_slowlog_help(Context& c) {
  static constexpr std::string_view kLines[] = {
      "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET [<count>]",
      "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
      "    Entries are made of:",
      "    id, timestamp, time in microseconds, arguments array, client IP and port,",
      "    client name",
      "LEN",
      "    Return the length of the slowlog.",
      "RESET",
      "    Reset the slowlog.",
      "HELP",
      "    Prints this help.",
  };
  help_reply(c, kLines);
}

}  // namespace

std::span<const Command> slowlog_commands() noexcept {
  static constexpr unsigned kAdminFlags = kAdmin | kLoading | kStale;
  static constexpr const char* kAdminAcl = "@admin @slow @dangerous";
  // Redis 7.0.15's rows (COMMAND INFO slowlog), in its order.
  static constexpr Command kSlowlog[] = {
      {"slowlog|reset",
       2,
       kAdminFlags,
       kAdminAcl,
       "request_policy:all_nodes response_policy:all_succeeded",
       {},
       cmd_slowlog_reset},
      {"slowlog|len",
       2,
       kAdminFlags,
       kAdminAcl,
       "request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
       {},
       cmd_slowlog_len},
      {"slowlog|help", 2, kLoading | kStale, "@slow", "", {}, cmd_slowlog_help},
      {"slowlog|get",
       -2,
       kAdminFlags,
       kAdminAcl,
       "request_policy:all_nodes nondeterministic_output",
       {},
       cmd_slowlog_get},
  };
  static constexpr Command kTable[] = {
      {"slowlog", -2, 0, "@slow", "", {}, nullptr, {}, kSlowlog},
  };
  return kTable;
}

}  // namespace kv::cmd
