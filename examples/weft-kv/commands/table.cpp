// weft-kv commands: the command table and the dispatcher (Redis 7.0's
// lookupCommand and processCommand, the checks weft-kv has).
#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"

namespace kv {
namespace {

using cmd::err;

struct Table {
  std::vector<Command> all;
  std::unordered_map<std::string_view, const Command*> by_name;  // lower-case names
};

const Table& table() {
  // Built once, on first use (thread-safe static initialisation); never
  // destroyed, so a command running during exit still finds it.
  static const Table* t = [] {
    auto* tab = new Table;
    for (const auto group : {cmd::connection_commands(), cmd::string_commands(),
                             cmd::key_commands(), cmd::server_commands()}) {
      tab->all.insert(tab->all.end(), group.begin(), group.end());
    }
    for (const Command& c : tab->all) tab->by_name.emplace(c.name, &c);
    return tab;
  }();
  return *t;
}

constexpr std::string_view kOom = "OOM command not allowed when used memory > 'maxmemory'.";

void unknown_command(Context& c) {
  // Redis: "unknown command '%.128s', with args beginning with: " then
  // "'%.*s' " per argument while fewer than 128 characters were added,
  // newlines in the text replaced by spaces.
  // Redis formats with printf's %s, which stops at a NUL byte: so does
  // this text.
  const auto c_string = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  std::string args;
  for (std::size_t i = 1; i < c.argv.size() && args.size() < 128; ++i) {
    const std::size_t room = 128 - args.size();
    args += '\'';
    args += c_string(c.argv[i]).substr(0, room);
    args += "' ";
  }
  std::string msg = "ERR unknown command '" + std::string(c_string(c.argv[0]).substr(0, 128)) +
                    "', with args beginning with: " + args;
  for (char& ch : msg)
    if (ch == '\r' || ch == '\n') ch = ' ';
  err(c, msg);
}

}  // namespace

std::span<const Command> command_table() noexcept {
  return table().all;
}

const Command* find_command(std::string_view name) noexcept {
  char lower[24];
  if (name.size() >= sizeof lower) return nullptr;  // longer than any name
  for (std::size_t i = 0; i < name.size(); ++i)
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  const auto& idx = table().by_name;
  const auto it = idx.find(std::string_view(lower, name.size()));
  return it == idx.end() ? nullptr : it->second;
}

void execute(Context& c) {
  const Command* cmd = find_command(c.argv[0]);
  if (cmd == nullptr) return unknown_command(c);
  const auto argc = static_cast<int>(c.argv.size());
  if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity)
    return cmd::arity_error(c, cmd->name);
  if (c.client != nullptr) c.client->last_cmd.store(cmd->name, std::memory_order_relaxed);
  const std::uint64_t maxmemory = c.host.options().maxmemory;
  if ((cmd->flags & kDenyOom) && maxmemory != 0 && !c.host.loading() &&
      static_cast<std::uint64_t>(std::max<std::int64_t>(c.host.used_memory(), 0)) > maxmemory)
    return err(c, kOom);
  // Redis refuses writes, and PING, while persisting fails (processCommand:
  // writeCommandsDeniedByDiskError): nothing is applied that could not be
  // logged.
  if (((cmd->flags & kWrite) || std::string_view(cmd->name) == "ping") && !c.host.loading() &&
      !c.host.writes_allowed())
    return err(c, c.host.write_refusal());
  cmd->run(c);
}

}  // namespace kv
