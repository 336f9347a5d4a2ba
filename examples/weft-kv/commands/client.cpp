// weft-kv commands: the CLIENT subcommands that act on connections (KILL,
// INFO, NO-EVICT, PAUSE, UNPAUSE), as Redis 7.0.15's clientCommand (src/networking.c).
// SETNAME, GETNAME, LIST and ID are in admin.cpp.
#include <climits>
#include <string>
#include <string_view>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

// CLIENT KILL addr:port (the old form) or CLIENT KILL <filter> <value> ...
// with ID, TYPE, USER, ADDR, LADDR and SKIPME, as Redis's.
void client_kill(Context& c) {
  struct Filter {
    bool by_id = false, by_addr = false, by_laddr = false, skip_me = true;
    long long id = 0;
    std::string_view addr, laddr;
    // TYPE normal or pubsub: normal matches clients without subscriptions.
    bool type_normal_only = false, type_pubsub_only = false;
    bool type_none = false;  // TYPE master|slave|replica: no such client here
  } f;
  const bool old_form = c.argv.size() == 3;
  if (old_form) {
    f.by_addr = true;
    f.addr = c.argv[2];
    f.skip_me = false;  // the old form kills even the caller
  } else if (c.argv.size() > 3 && c.argv.size() % 2 == 0) {
    for (std::size_t i = 2; i < c.argv.size(); i += 2) {
      const std::string_view opt = c.argv[i], val = c.argv[i + 1];
      if (eq_ci(opt, "id")) {
        long long id = 0;
        if (!parse_range(c, val, 1, LONG_MAX, "client-id should be greater than 0", id)) return;
        f.by_id = true;
        f.id = id;
      } else if (eq_ci(opt, "type")) {
        if (eq_ci(val, "normal") || eq_ci(val, "pubsub")) {
          f.type_normal_only = eq_ci(val, "normal");
          f.type_pubsub_only = !f.type_normal_only;
        } else if (eq_ci(val, "master") || eq_ci(val, "slave") || eq_ci(val, "replica")) {
          f.type_none = true;
        } else {
          return err(c, "ERR Unknown client type '" + std::string(val) + "'");
        }
      } else if (eq_ci(opt, "user")) {
        if (val != "default") return err(c, "ERR No such user '" + std::string(val) + "'");
      } else if (eq_ci(opt, "addr")) {
        f.by_addr = true;
        f.addr = val;
      } else if (eq_ci(opt, "laddr")) {
        f.by_laddr = true;
        f.laddr = val;
      } else if (eq_ci(opt, "skipme")) {
        if (eq_ci(val, "yes"))
          f.skip_me = true;
        else if (eq_ci(val, "no"))
          f.skip_me = false;
        else
          return err(c, kSyntax);
      } else {
        return err(c, kSyntax);
      }
    }
  } else {
    return err(c, kSyntax);
  }
  bool kill_self = false;
  const auto match = [&](const Client& cl) {
    if (f.type_none) return false;
    if (f.by_id && cl.id != static_cast<std::uint64_t>(f.id)) return false;
    if (f.by_addr && cl.addr != f.addr) return false;
    if (f.by_laddr && cl.laddr != f.laddr) return false;
    // A subscriber's count is its connection's own; read racily here as
    // CLIENT LIST reads its fields (a client subscribing meanwhile may go
    // either way, as in any order of the two commands).
    const bool subscribed = cl.subscribed.load(std::memory_order_relaxed);
    if ((f.type_normal_only && subscribed) || (f.type_pubsub_only && !subscribed)) return false;
    if (&cl == c.client) {
      // The caller is closed after this reply, not now (Redis's
      // CLIENT_CLOSE_AFTER_REPLY).
      if (!f.skip_me) kill_self = true;
      return false;
    }
    return true;
  };
  std::size_t killed = c.host.kill_clients(match);
  if (kill_self) {
    c.close = true;
    ++killed;
  }
  if (!old_form) return Reply::integer(c.out, static_cast<std::int64_t>(killed));
  if (killed == 0) return err(c, "ERR No such client");
  ok(c);
}

// CLIENT PAUSE timeout [WRITE|ALL] (timeout in ms; ALL when omitted), as
// Redis's clientCommand with getTimeoutFromObjectOrReply(UNIT_MILLISECONDS).
void client_pause(Context& c) {
  ClientPause::Mode mode = ClientPause::kAll;
  if (c.argv.size() == 4) {
    if (eq_ci(c.argv[3], "write")) {
      mode = ClientPause::kWrite;
    } else if (!eq_ci(c.argv[3], "all")) {
      return err(c, "ERR CLIENT PAUSE mode must be WRITE or ALL");
    }
  }
  long long ms = 0;
  if (!parse_ll(c.argv[2], ms)) return err(c, "ERR timeout is not an integer or out of range");
  if (ms < 0) return err(c, "ERR timeout is negative");
  // Redis adds the time now to a positive timeout without a check: one too
  // large wraps to an end in the past, a pause that ends at once. The sum
  // is made in unsigned arithmetic here for the same result without
  // undefined behaviour. A timeout of 0 is an end in the past too.
  const std::int64_t end = ms > 0 ? static_cast<std::int64_t>(static_cast<std::uint64_t>(ms) +
                                                              static_cast<std::uint64_t>(unix_ms()))
                                  : 0;
  c.host.client_pause().pause(mode, end);
  ok(c);
}

}  // namespace

bool client_connection_subcommand(Context& c) {
  const std::string_view sub = c.argv[1];
  // Records the subcommand; false (with Redis's arity error replied) when
  // argc does not fit `arity` (N exactly, -N at least N).
  const auto start = [&](const char* name, int arity) {
    note_subcommand(c, name);
    const auto argc = static_cast<int>(c.argv.size());
    if (arity > 0 ? argc == arity : argc >= -arity) return true;
    arity_error(c, name);
    return false;
  };
  if (eq_ci(sub, "kill")) {
    if (start("client|kill", -3)) client_kill(c);
    return true;
  }
  if (eq_ci(sub, "info")) {
    if (!start("client|info", 2)) return true;
    // The caller's line of CLIENT LIST.
    const std::string all = c.host.client_list(c.client);
    const std::string prefix = "id=" + std::to_string(c.client != nullptr ? c.client->id : 0) + " ";
    std::string line;
    for (std::size_t i = 0; i < all.size();) {
      const std::size_t end = std::min(all.find('\n', i), all.size());
      if (all.compare(i, prefix.size(), prefix) == 0) {
        line = all.substr(i, end + 1 - i);
        break;
      }
      i = end + 1;
    }
    Reply::verbatim(c.out, line, proto(c));
    return true;
  }
  if (eq_ci(sub, "pause")) {
    if (!start("client|pause", -3)) return true;
    if (c.argv.size() > 4) {
      // Redis's clientCommand takes 3 or 4 arguments; others fall through
      // to its subcommand syntax error.
      err(c, "ERR unknown subcommand or wrong number of arguments for '" +
                 std::string(sub.substr(0, 128)) + "'. Try CLIENT HELP.");
    } else {
      client_pause(c);
    }
    return true;
  }
  if (eq_ci(sub, "unpause")) {
    if (!start("client|unpause", 2)) return true;
    c.host.client_pause().unpause();
    ok(c);
    return true;
  }
  if (eq_ci(sub, "no-evict")) {
    if (!start("client|no-evict", 3)) return true;
    if (eq_ci(c.argv[2], "on") || eq_ci(c.argv[2], "off")) {
      // weft-kv never evicts clients (it has no maxmemory-clients), so
      // the flag changes nothing but the reply.
      ok(c);
    } else {
      err(c, kSyntax);
    }
    return true;
  }
  return false;
}

}  // namespace kv::cmd
