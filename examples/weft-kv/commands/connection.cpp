// weft-kv commands: connection (PING, ECHO, QUIT, SELECT), as Redis 7.0's
// src/server.c and src/db.c.
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

void cmd_ping(Context& c) {
  if (c.argv.size() > 2) return arity_error(c, "ping");
  if (c.client != nullptr && c.client->subscriptions > 0 && proto(c) == 2) {
    // RESP2's subscribed mode: ["pong", message or ""] (Redis's pingCommand).
    Reply::array_header(c.out, 2);
    Reply::bulk(c.out, "pong");
    return Reply::bulk(c.out, c.argv.size() == 2 ? c.argv[1] : std::string_view());
  }
  if (c.argv.size() == 2) return Reply::bulk(c.out, c.argv[1]);
  c.out += "+PONG\r\n";
}

void cmd_echo(Context& c) {
  Reply::bulk(c.out, c.argv[1]);
}

void cmd_quit(Context& c) {
  ok(c);
  c.close = true;
}

void cmd_select(Context& c) {
  int db = 0;
  if (!parse_int(c, c.argv[1], db)) return;
  if (db != 0) return err(c, "ERR DB index is out of range");
  ok(c);
}

}  // namespace

std::span<const Command> connection_commands() noexcept {
  static constexpr Command kTable[] = {
      {"ping",
       -1,
       kFast,
       "@fast @connection",
       "request_policy:all_shards response_policy:all_succeeded",
       {},
       cmd_ping},
      {"echo", 2, kLoading | kStale | kFast, "@fast @connection", "", {}, cmd_echo},
      {"quit",
       -1,
       kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
       "@fast @connection",
       "",
       {},
       cmd_quit},
      {"select", 2, kLoading | kStale | kFast, "@fast @connection", "", {}, cmd_select},
  };
  return kTable;
}

}  // namespace kv::cmd
