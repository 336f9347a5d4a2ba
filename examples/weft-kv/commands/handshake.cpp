// weft-kv commands: the client handshake (HELLO, AUTH), as Redis 7.0.15's
// helloCommand and authCommand (src/networking.c, src/acl.c) with only
// the default user: its password is `requirepass` (auth.hpp), and without
// one it accepts any password ("nopass").
#include <string>
#include <string_view>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

// ACLAuthenticateUser: on success the client is authenticated.
bool authenticate(Context& c, std::string_view user, std::string_view pass) {
  if (!c.host.settings().requirepass.accepts(user, pass)) return false;
  if (c.client != nullptr) c.client->authenticated = true;
  return true;
}

// AUTH [username] password.
void cmd_auth(Context& c) {
  if (c.argv.size() > 3) return err(c, kSyntax);
  std::string_view user = "default";
  if (c.argv.size() == 2) {
    // The old form is refused while the default user needs no password.
    if (!c.host.settings().requirepass.required())
      return err(c,
                 "ERR AUTH <password> called without any password configured for the default "
                 "user. Are you sure your configuration is correct?");
  } else {
    user = c.argv[1];
  }
  if (!authenticate(c, user, c.argv.back())) return err(c, kWrongPass);
  ok(c);
}

// HELLO [protover [AUTH username password] [SETNAME clientname]].
void cmd_hello(Context& c) {
  long long ver = 0;
  std::size_t next = 1;
  if (c.argv.size() >= 2) {
    if (!parse_ll(c.argv[next++], ver))
      return err(c, "ERR Protocol version is not an integer or out of range");
    if (ver < 2 || ver > 3) return err(c, "NOPROTO unsupported protocol version");
  }
  const std::string_view* user = nullptr;
  const std::string_view* pass = nullptr;
  const std::string_view* name = nullptr;
  for (std::size_t j = next; j < c.argv.size(); ++j) {
    const std::size_t more = c.argv.size() - 1 - j;
    if (eq_ci(c.argv[j], "auth") && more >= 2) {
      user = &c.argv[j + 1];
      pass = &c.argv[j + 2];
      j += 2;
    } else if (eq_ci(c.argv[j], "setname") && more >= 1) {
      name = &c.argv[++j];
    } else {
      return err(c, "ERR Syntax error in HELLO option '" + std::string(c.argv[j]) + "'");
    }
  }
  if (user != nullptr && !authenticate(c, *user, *pass)) return err(c, kWrongPass);
  // Redis checks the flag alone: a client that connected while a password
  // was required needs AUTH even after CONFIG SET requirepass "".
  if (c.client != nullptr && !c.client->authenticated)
    return err(c,
               "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
               "HELLO AUTH <user> <pass> option can be used to authenticate the client "
               "and select the RESP protocol version at the same time");
  if (name != nullptr && !set_client_name(c, *name)) return;
  if (ver != 0 && c.client != nullptr)
    c.client->resp.store(static_cast<int>(ver), std::memory_order_relaxed);
  // The reply is in the protocol just chosen.
  map_header(c, 7);
  Reply::bulk(c.out, "server");
  Reply::bulk(c.out, "redis");
  Reply::bulk(c.out, "version");
  Reply::bulk(c.out, "7.0.15");
  Reply::bulk(c.out, "proto");
  Reply::integer(c.out, proto(c));
  Reply::bulk(c.out, "id");
  Reply::integer(c.out, c.client != nullptr ? static_cast<std::int64_t>(c.client->id) : 0);
  Reply::bulk(c.out, "mode");
  Reply::bulk(c.out, "standalone");
  Reply::bulk(c.out, "role");
  Reply::bulk(c.out, "master");
  Reply::bulk(c.out, "modules");
  Reply::array_header(c.out, 0);
}

}  // namespace

bool set_client_name(Context& c, std::string_view name) {
  // Redis's validateClientName: printable ASCII without spaces.
  for (char ch : name) {
    if (ch < '!' || ch > '~') {
      err(c, "ERR Client names cannot contain spaces, newlines or special characters.");
      return false;
    }
  }
  if (c.client != nullptr) {
    std::lock_guard lk(c.client->mu);
    c.client->name = name;
  }
  return true;
}

std::span<const Command> handshake_commands() noexcept {
  static constexpr unsigned kFlags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy;
  static constexpr Command kTable[] = {
      {"auth", -2, kFlags, "@fast @connection", "", {}, cmd_auth},
      {"hello", -1, kFlags, "@fast @connection", "", {}, cmd_hello},
  };
  return kTable;
}

}  // namespace kv::cmd
