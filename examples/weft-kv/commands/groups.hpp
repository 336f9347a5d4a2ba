// weft-kv commands: the groups of the command table, one per file of
// handlers (Redis's src/t_*.c split). A new type adds its group here and
// in table.cpp's list.
#pragma once

#include <span>

#include "command.hpp"

namespace kv::cmd {

/// PING, ECHO, QUIT, SELECT (connection.cpp).
std::span<const Command> connection_commands() noexcept;
/// CLIENT KILL, INFO, NO-EVICT (client.cpp): runs the subcommand in
/// c.argv[1] and returns true if it is one of them.
bool client_connection_subcommand(Context& c);
/// HELLO, AUTH (handshake.cpp).
std::span<const Command> handshake_commands() noexcept;
/// The string commands (strings.cpp).
std::span<const Command> string_commands() noexcept;
/// The keyspace commands: DEL, EXISTS, TYPE, expiry, KEYS, SCAN, ... (keys.cpp).
std::span<const Command> key_commands() noexcept;
/// The bit operations on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
/// BITFIELD (bitops.cpp).
std::span<const Command> bitmap_commands() noexcept;
/// The hash commands (hashes.cpp).
std::span<const Command> hash_commands() noexcept;
/// The set commands (sets.cpp).
std::span<const Command> set_commands() noexcept;
/// INFO, CLIENT, COMMAND, TIME, SHUTDOWN (admin.cpp).
std::span<const Command> server_commands() noexcept;
/// CONFIG and its parameter table (config.cpp).
std::span<const Command> config_commands() noexcept;
/// The list commands, blocking pops included (lists.cpp).
std::span<const Command> list_commands() noexcept;
/// The sorted-set commands, blocking pops included (zsets.cpp).
std::span<const Command> zset_commands() noexcept;
/// SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH, PUBSUB (pubsub.cpp).
std::span<const Command> pubsub_commands() noexcept;
/// MULTI, EXEC, DISCARD, WATCH, UNWATCH (transaction.cpp).
std::span<const Command> transaction_commands() noexcept;
/// SLOWLOG GET/LEN/RESET/HELP (slowlog.cpp).
std::span<const Command> slowlog_commands() noexcept;
/// SAVE, BGSAVE, LASTSAVE (persistence.cpp).
std::span<const Command> persistence_commands() noexcept;

}  // namespace kv::cmd
