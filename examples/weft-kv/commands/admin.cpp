// weft-kv commands: server administration and introspection (INFO,
// CLIENT, COMMAND, CONFIG, TIME, SHUTDOWN), as Redis 7.0's src/server.c,
// src/networking.c and src/config.c.
#include <time.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv::cmd {
namespace {

void cmd_info(Context& c) {
  std::string text;
  if (c.argv.size() == 1) {
    text = c.host.info("");
  } else {
    for (std::size_t i = 1; i < c.argv.size(); ++i) {
      std::string section(c.argv[i]);
      for (char& ch : section) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string part = c.host.info(section);
      if (part.empty()) continue;
      if (!text.empty()) text += "\r\n\r\n";
      text += part;
    }
    if (!text.empty()) text += "\r\n";
  }
  if (c.argv.size() == 1) text += "\r\n";
  Reply::bulk(c.out, text);
}

void cmd_client(Context& c) {
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "setname")) {
    note_subcommand(c, "client|setname");
    if (c.argv.size() != 3) return arity_error(c, "client|setname");
    for (char ch : c.argv[2]) {
      if (ch < '!' || ch > '~')
        return err(c, "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    if (c.client != nullptr) {
      std::lock_guard lk(c.client->mu);
      c.client->name = c.argv[2];
    }
    return ok(c);
  }
  if (eq_ci(sub, "getname")) {
    note_subcommand(c, "client|getname");
    if (c.argv.size() != 2) return arity_error(c, "client|getname");
    std::string name;
    if (c.client != nullptr) {
      std::lock_guard lk(c.client->mu);
      name = c.client->name;
    }
    if (name.empty()) return Reply::null_bulk(c.out);
    return Reply::bulk(c.out, name);
  }
  if (eq_ci(sub, "list")) {
    note_subcommand(c, "client|list");
    if (c.argv.size() != 2) return err(c, kSyntax);
    return Reply::bulk(c.out, c.host.client_list(c.client));
  }
  if (eq_ci(sub, "id")) {
    note_subcommand(c, "client|id");
    if (c.argv.size() != 2) return arity_error(c, "client|id");
    return Reply::integer(c.out, c.client != nullptr ? static_cast<std::int64_t>(c.client->id) : 0);
  }
  if (eq_ci(sub, "setinfo")) {
    note_subcommand(c, "client|setinfo");
    return ok(c);
  }  // newer clients send it; accepted, ignored
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try CLIENT HELP.");
}

// Appends the words of a blank-separated list as an array, each through
// `add` (a simple string or a bulk string, as Redis sends that field).
template <class Add>
void word_array(std::string& out, std::string_view words, Add add) {
  std::vector<std::string_view> list;
  for (std::size_t i = 0; i < words.size();) {
    const std::size_t j = std::min(words.find(' ', i), words.size());
    if (j > i) list.push_back(words.substr(i, j - i));
    i = j + 1;
  }
  Reply::array_header(out, list.size());
  for (std::string_view w : list) add(out, w);
}

// One part of a key spec: `name` [type <type> spec [<field> <n> ...]].
void key_search(std::string& out, const char* name, const char* type,
                std::initializer_list<std::pair<const char*, int>> fields) {
  Reply::bulk(out, name);
  Reply::array_header(out, 4);
  Reply::bulk(out, "type");
  Reply::bulk(out, type);
  Reply::bulk(out, "spec");
  Reply::array_header(out, fields.size() * 2);
  for (const auto& [field, n] : fields) {
    Reply::bulk(out, field);
    Reply::integer(out, n);
  }
}

// COMMAND INFO's reply for one command (Redis 7.0's addReplyCommandInfo):
// name, arity, flags, first/last/step, ACL categories, tips, key specs,
// subcommands (not listed: CLIENT, COMMAND and CONFIG report none).
void command_info(std::string& out, const Command& cmd) {
  static constexpr std::pair<unsigned, const char*> kFlagNames[] = {
      {kWrite, "write"},          {kReadonly, "readonly"},
      {kDenyOom, "denyoom"},      {kAdmin, "admin"},
      {kNoScript, "noscript"},    {kLoading, "loading"},
      {kStale, "stale"},          {kFast, "fast"},
      {kNoAuth, "no_auth"},       {kNoMulti, "no_multi"},
      {kAllowBusy, "allow_busy"},
  };
  Reply::array_header(out, 10);
  Reply::bulk(out, cmd.name);
  Reply::integer(out, cmd.arity);
  std::size_t nflags = 0;
  for (const auto& [bit, name] : kFlagNames) nflags += (cmd.flags & bit) != 0;
  Reply::array_header(out, nflags);
  for (const auto& [bit, name] : kFlagNames)
    if (cmd.flags & bit) Reply::simple(out, name);
  Reply::integer(out, cmd.first_key());
  Reply::integer(out, cmd.last_key());
  Reply::integer(out, cmd.key_step());
  word_array(out, cmd.acl, [](std::string& o, std::string_view w) { Reply::simple(o, w); });
  word_array(out, cmd.tips, [](std::string& o, std::string_view w) { Reply::bulk(o, w); });
  if (cmd.keys.first == 0) {
    Reply::array_header(out, 0);
  } else {
    const KeySpec& k = cmd.keys;
    Reply::array_header(out, 1);
    Reply::array_header(out, k.notes != nullptr ? 8 : 6);
    if (k.notes != nullptr) {
      Reply::bulk(out, "notes");
      Reply::bulk(out, k.notes);
    }
    Reply::bulk(out, "flags");
    word_array(out, k.flags, [](std::string& o, std::string_view w) { Reply::simple(o, w); });
    key_search(out, "begin_search", "index", {{"index", k.first}});
    key_search(out, "find_keys", "range",
               {{"lastkey", k.last_key}, {"keystep", k.step}, {"limit", k.limit}});
  }
  Reply::array_header(out, 0);  // subcommands
}

void cmd_command(Context& c) {
  const auto table = command_table();
  // COMMAND, and COMMAND INFO without names: every command.
  if (c.argv.size() == 1 || (c.argv.size() == 2 && eq_ci(c.argv[1], "info"))) {
    if (c.argv.size() == 2) note_subcommand(c, "command|info");
    Reply::array_header(c.out, table.size());
    for (const Command& cmd : table) command_info(c.out, cmd);
    return;
  }
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "count")) {
    note_subcommand(c, "command|count");
    return Reply::integer(c.out, static_cast<std::int64_t>(table.size()));
  }
  if (eq_ci(sub, "info")) {
    note_subcommand(c, "command|info");
    Reply::array_header(c.out, c.argv.size() - 2);
    for (std::size_t i = 2; i < c.argv.size(); ++i) {
      const Command* cmd = find_command(c.argv[i]);
      if (cmd == nullptr)
        Reply::null_array(c.out);
      else
        command_info(c.out, *cmd);
    }
    return;
  }
  if (eq_ci(sub, "list")) {
    note_subcommand(c, "command|list");
    Reply::array_header(c.out, table.size());
    for (const Command& cmd : table) Reply::bulk(c.out, cmd.name);
    return;
  }
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try COMMAND HELP.");
}

void cmd_config(Context& c) {
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "get")) {
    note_subcommand(c, "config|get");
    if (c.argv.size() < 3) return arity_error(c, "config|get");
    const Options& o = c.host.options();
    const std::pair<const char*, std::string> params[] = {
        {"bind", o.bind},
        {"port", std::to_string(o.port)},
        {"save", ""},
        {"appendonly", o.appendonly ? "yes" : "no"},
        {"appendfsync", fsync_policy_name(o.appendfsync)},
        {"dir", std::filesystem::absolute(o.dir).string()},
        {"maxclients", std::to_string(o.maxclients)},
        {"maxmemory", std::to_string(o.maxmemory)},
        {"maxmemory-policy", "noeviction"},
        {"timeout", std::to_string(o.timeout_s)},
        {"client-output-buffer-limit",
         "normal " + std::to_string(o.output_limit.hard) + " " +
             std::to_string(o.output_limit.soft) + " " +
             std::to_string(o.output_limit.soft_seconds) +
             " slave 268435456 67108864 60 pubsub 33554432 8388608 60"},
        {"databases", "1"},
        {"proto-max-bulk-len", std::to_string(o.limits.max_bulk_len)},
    };
    std::vector<const std::pair<const char*, std::string>*> hits;
    for (const auto& p : params) {
      for (std::size_t i = 2; i < c.argv.size(); ++i) {
        std::string pat(c.argv[i]);
        for (char& ch : pat) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (glob_match(pat, p.first)) {
          hits.push_back(&p);
          break;
        }
      }
    }
    Reply::array_header(c.out, hits.size() * 2);
    for (const auto* p : hits) {
      Reply::bulk(c.out, p->first);
      Reply::bulk(c.out, p->second);
    }
    return;
  }
  if (eq_ci(sub, "set")) {
    note_subcommand(c, "config|set");
    if (c.argv.size() < 4) return arity_error(c, "config|set");
    return err(c, "ERR Unknown option or number of arguments for CONFIG SET - '" +
                      std::string(c.argv[2]) + "'");
  }
  if (eq_ci(sub, "resetstat")) {
    note_subcommand(c, "config|resetstat");
    c.host.reset_stats();
    return ok(c);
  }
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try CONFIG HELP.");
}

void cmd_time(Context& c) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  Reply::array_header(c.out, 2);
  Reply::bulk(c.out, ll_to_string(ts.tv_sec));
  Reply::bulk(c.out, ll_to_string(ts.tv_nsec / 1000));
}

void cmd_shutdown(Context& c) {
  c.host.request_shutdown();
  c.close = true;  // as Redis: no reply, the connection closes
}

}  // namespace

std::span<const Command> server_commands() noexcept {
  static constexpr Command kTable[] = {
      {"info",
       -1,
       kLoading | kStale,
       "@slow @dangerous",
       "nondeterministic_output request_policy:all_shards response_policy:special",
       {},
       cmd_info},
      {"client", -2, 0, "@slow", "", {}, cmd_client},
      {"command",
       -1,
       kLoading | kStale,
       "@slow @connection",
       "nondeterministic_output_order",
       {},
       cmd_command},
      {"config", -2, 0, "@slow", "", {}, cmd_config},
      {"time", 1, kLoading | kStale | kFast, "@fast", "nondeterministic_output", {}, cmd_time},
      {"shutdown",
       -1,
       kAdmin | kNoScript | kLoading | kStale | kNoMulti | kAllowBusy,
       "@admin @slow @dangerous",
       "",
       {},
       cmd_shutdown},
  };
  return kTable;
}

}  // namespace kv::cmd
