// weft-kv commands: the groups of the command table, one per file of
// handlers (Redis's src/t_*.c split). A new type adds its group here and
// in table.cpp's list.
#pragma once

#include <span>

#include "command.hpp"

namespace kv::cmd {

/// PING, ECHO, QUIT, SELECT (connection.cpp).
std::span<const Command> connection_commands() noexcept;
/// The string commands (strings.cpp).
std::span<const Command> string_commands() noexcept;
/// The keyspace commands: DEL, EXISTS, TYPE, expiry, KEYS, SCAN, ... (keys.cpp).
std::span<const Command> key_commands() noexcept;
/// INFO, CLIENT, COMMAND, CONFIG, TIME, SHUTDOWN (admin.cpp).
std::span<const Command> server_commands() noexcept;

}  // namespace kv::cmd
