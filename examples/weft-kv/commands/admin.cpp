// weft-kv commands: server administration and introspection (INFO,
// CLIENT, COMMAND, CONFIG, TIME, SHUTDOWN), as Redis 7.0's src/server.c,
// src/networking.c and src/config.c.
#include <time.h>

#include <algorithm>
#include <cctype>
#include <climits>
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
  Reply::verbatim(c.out, text, proto(c));
}

void cmd_client(Context& c) {
  const std::string_view sub = c.argv[1];
  if (eq_ci(sub, "setname")) {
    note_subcommand(c, "client|setname");
    if (c.argv.size() != 3) return arity_error(c, "client|setname");
    if (set_client_name(c, c.argv[2])) ok(c);
    return;
  }
  if (eq_ci(sub, "getname")) {
    note_subcommand(c, "client|getname");
    if (c.argv.size() != 2) return arity_error(c, "client|getname");
    std::string name;
    if (c.client != nullptr) {
      std::lock_guard lk(c.client->mu);
      name = c.client->name;
    }
    if (name.empty()) return null_bulk(c);
    return Reply::bulk(c.out, name);
  }
  if (eq_ci(sub, "list")) {
    note_subcommand(c, "client|list");
    if (c.argv.size() != 2) return err(c, kSyntax);
    return Reply::verbatim(c.out, c.host.client_list(c.client), proto(c));
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
  if (client_connection_subcommand(c)) return;
  err(c, "ERR unknown subcommand '" + std::string(sub).substr(0, 128) + "'. Try CLIENT HELP.");
}

// Appends the words of a blank-separated list as an array (a set in
// RESP3, `proto` 3), each through `add` (a simple string or a bulk string,
// as Redis sends that field).
template <class Add>
void word_array(std::string& out, std::string_view words, int proto, Add add) {
  std::vector<std::string_view> list;
  for (std::size_t i = 0; i < words.size();) {
    const std::size_t j = std::min(words.find(' ', i), words.size());
    if (j > i) list.push_back(words.substr(i, j - i));
    i = j + 1;
  }
  Reply::set_header(out, list.size(), proto);
  for (std::string_view w : list) add(out, w);
}

void simple_words(std::string& out, std::string_view words, int proto) {
  word_array(out, words, proto, [](std::string& o, std::string_view w) { Reply::simple(o, w); });
}

// One part of a key spec: `name` {type: <type>, spec: {<field>: <n>, ...}}
// (maps in RESP3).
void key_search(std::string& out, const char* name, const char* type,
                std::initializer_list<std::pair<const char*, int>> fields, int proto) {
  Reply::bulk(out, name);
  Reply::map_header(out, 2, proto);
  Reply::bulk(out, "type");
  Reply::bulk(out, type);
  Reply::bulk(out, "spec");
  Reply::map_header(out, fields.size(), proto);
  for (const auto& [field, n] : fields) {
    Reply::bulk(out, field);
    Reply::integer(out, n);
  }
}

// One key spec as Redis 7.0's addReplyCommandKeySpecs prints it.
void key_spec_info(std::string& out, const KeySpec& k, int proto) {
  Reply::map_header(out, k.notes != nullptr ? 4 : 3, proto);
  if (k.notes != nullptr) {
    Reply::bulk(out, "notes");
    Reply::bulk(out, k.notes);
  }
  Reply::bulk(out, "flags");
  simple_words(out, k.flags, proto);
  switch (k.begin) {
    case KeySpec::Begin::index:
      key_search(out, "begin_search", "index", {{"index", k.first}}, proto);
      break;
    case KeySpec::Begin::keyword:
      Reply::bulk(out, "begin_search");
      Reply::map_header(out, 2, proto);
      Reply::bulk(out, "type");
      Reply::bulk(out, "keyword");
      Reply::bulk(out, "spec");
      Reply::map_header(out, 2, proto);
      Reply::bulk(out, "keyword");
      Reply::bulk(out, k.keyword);
      Reply::bulk(out, "startfrom");
      Reply::integer(out, k.first);
      break;
    case KeySpec::Begin::unknown:
      key_search(out, "begin_search", "unknown", {}, proto);
      break;
  }
  switch (k.find()) {
    case KeySpec::Find::range:
      key_search(out, "find_keys", "range",
                 {{"lastkey", k.last_key}, {"keystep", k.step}, {"limit", k.limit}}, proto);
      break;
    case KeySpec::Find::keynum:
      key_search(out, "find_keys", "keynum",
                 {{"keynumidx", k.keynum_index}, {"firstkey", k.keynum_first}, {"keystep", k.step}},
                 proto);
      break;
    case KeySpec::Find::unknown:
      key_search(out, "find_keys", "unknown", {}, proto);
      break;
  }
}

// COMMAND INFO's reply for one command (Redis 7.0's addReplyCommandInfo):
// name, arity, flags, first/last/step, ACL categories, tips, key specs,
// subcommands (each in the same form).
void command_info(std::string& out, const Command& cmd, int proto) {
  // In Redis's order (addReplyFlagsForCommand).
  static constexpr std::pair<unsigned, const char*> kFlagNames[] = {
      {kWrite, "write"},
      {kReadonly, "readonly"},
      {kDenyOom, "denyoom"},
      {kAdmin, "admin"},
      {kPubSub, "pubsub"},
      {kNoScript, "noscript"},
      {kBlocking, "blocking"},
      {kLoading, "loading"},
      {kStale, "stale"},
      {kSkipMonitor, "skip_monitor"},
      {kSkipSlowlog, "skip_slowlog"},
      {kAsking, "asking"},
      {kFast, "fast"},
      {kNoAuth, "no_auth"},
      {kNoMandatoryKeys, "no_mandatory_keys"},
      {kNoAsyncLoading, "no_async_loading"},
      {kNoMulti, "no_multi"},
      {kMovableKeys, "movablekeys"},
      {kAllowBusy, "allow_busy"},
  };
  const unsigned flags = cmd.all_flags();
  const KeySpecs specs = cmd.key_specs();
  const LegacyKeyRange range = legacy_key_range(specs);
  Reply::array_header(out, 10);
  Reply::bulk(out, cmd.name);
  Reply::integer(out, cmd.arity);
  std::size_t nflags = 0;
  for (const auto& [bit, name] : kFlagNames) nflags += (flags & bit) != 0;
  Reply::set_header(out, nflags, proto);
  for (const auto& [bit, name] : kFlagNames)
    if (flags & bit) Reply::simple(out, name);
  Reply::integer(out, range.first);
  Reply::integer(out, range.last);
  Reply::integer(out, range.step);
  simple_words(out, cmd.acl, proto);
  word_array(out, cmd.tips, proto, [](std::string& o, std::string_view w) { Reply::bulk(o, w); });
  Reply::set_header(out, specs.size(), proto);
  for (const KeySpec& k : specs) key_spec_info(out, k, proto);
  // Redis 7.0's addReplyCommandSubCommands: an empty set, else an array.
  if (cmd.subcommands.empty())
    Reply::set_header(out, 0, proto);
  else
    Reply::array_header(out, cmd.subcommands.size());
  for (const Command& sub : cmd.subcommands) command_info(out, sub, proto);
}

void cmd_command(Context& c) {
  const auto table = command_table();
  Reply::array_header(c.out, table.size());
  for (const Command& cmd : table) command_info(c.out, cmd, proto(c));
}

void cmd_command_count(Context& c) {
  Reply::integer(c.out, static_cast<std::int64_t>(command_table().size()));
}

void cmd_command_info(Context& c) {
  if (c.argv.size() == 2) return cmd_command(c);
  Reply::array_header(c.out, c.argv.size() - 2);
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    const Command* cmd = find_command(c.argv[i]);
    if (cmd == nullptr)
      null_array(c);
    else
      command_info(c.out, *cmd, proto(c));
  }
}

// COMMAND LIST [FILTERBY MODULE name | ACLCAT cat | PATTERN pattern]:
// every command and subcommand by full name (Redis 7.0's commandListCommand).
void cmd_command_list(Context& c) {
  enum class Filter { none, module, aclcat, pattern } filter = Filter::none;
  std::string arg;
  if (c.argv.size() > 2) {
    if (c.argv.size() != 5 || !eq_ci(c.argv[2], "filterby")) return err(c, kSyntax);
    arg = c.argv[4];
    if (eq_ci(c.argv[3], "module"))
      filter = Filter::module;
    else if (eq_ci(c.argv[3], "aclcat"))
      filter = Filter::aclcat;
    else if (eq_ci(c.argv[3], "pattern"))
      filter = Filter::pattern;
    else
      return err(c, kSyntax);
  }
  std::string lower_cat = "@" + arg;
  for (char& ch : lower_cat) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto keep = [&](const Command& cmd) {
    switch (filter) {
      case Filter::none:
        return true;
      case Filter::module:
        return false;  // no modules
      case Filter::aclcat: {
        const std::string_view acl = cmd.acl;
        for (std::size_t i = 0; i < acl.size();) {
          const std::size_t j = std::min(acl.find(' ', i), acl.size());
          if (acl.substr(i, j - i) == lower_cat) return true;
          i = j + 1;
        }
        return false;
      }
      case Filter::pattern:
        return glob_match(arg, cmd.name, /*nocase=*/true);
    }
    return false;
  };
  std::vector<const char*> names;
  for (const Command& cmd : command_table()) {
    if (keep(cmd)) names.push_back(cmd.name);
    for (const Command& sub : cmd.subcommands)
      if (keep(sub)) names.push_back(sub.name);
  }
  Reply::array_header(c.out, names.size());
  for (const char* n : names) Reply::bulk(c.out, n);
}

// COMMAND GETKEYS command arg...: the keys its key specs find (Redis 7.0's
// getKeysSubcommandImpl, key specs only).
void cmd_command_getkeys(Context& c) {
  const auto target = c.argv.subspan(2);
  const Command* cmd = find_command(target[0]);
  if (cmd != nullptr && !cmd->subcommands.empty() && target.size() > 1) {
    const Command* sub = nullptr;
    for (const Command& s : cmd->subcommands) {
      const std::string_view full = s.name;
      if (eq_ci(target[1], full.substr(full.find('|') + 1))) sub = &s;
    }
    cmd = sub;
  }
  if (cmd == nullptr || target[0].find('|') != std::string_view::npos)
    return err(c, "ERR Invalid command specified");
  if (cmd->key_specs().empty()) return err(c, "ERR The command has no key arguments");
  const auto argc = static_cast<int>(target.size());
  if ((cmd->arity > 0 && cmd->arity != argc) || argc < -cmd->arity)
    return err(c, "ERR Invalid number of arguments specified for command");
  std::vector<std::size_t> keys;
  if (!key_positions(*cmd, target, keys)) {
    if (cmd->flags & kNoMandatoryKeys) return Reply::array_header(c.out, 0);
    return err(c, "ERR Invalid arguments specified for command");
  }
  Reply::array_header(c.out, keys.size());
  for (std::size_t i : keys) Reply::bulk(c.out, target[i]);
}

// Redis's text, less DOCS: weft-kv has no COMMAND DOCS, so that redis-cli
// falls back to its built-in hints (an empty DOCS reply would leave it
// with none).
void cmd_command_help(Context& c) {
  static constexpr std::string_view kLines[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all Redis commands.",
      "COUNT",
      "    Return the total number of commands in this Redis server.",
      "LIST",
      "    Return a list of all commands in this Redis server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "GETKEYS <full-command>",
      "    Return the keys from a full Redis command.",
      "HELP",
      "    Prints this help.",
  };
  help_reply(c, kLines);
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
  static constexpr Command kCommand[] = {
      {"command|count", 2, kLoading | kStale, "@slow @connection", "", {}, cmd_command_count},
      {"command|info",
       -2,
       kLoading | kStale,
       "@slow @connection",
       "nondeterministic_output_order",
       {},
       cmd_command_info},
      {"command|list",
       -2,
       kLoading | kStale,
       "@slow @connection",
       "nondeterministic_output_order",
       {},
       cmd_command_list},
      {"command|getkeys", -4, kLoading | kStale, "@slow @connection", "", {}, cmd_command_getkeys},
      {"command|help", 2, kLoading | kStale, "@slow @connection", "", {}, cmd_command_help},
  };
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
       cmd_command,
       {},
       kCommand},
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
