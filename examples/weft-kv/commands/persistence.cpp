// weft-kv commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF (Redis's rdb.c
// saveCommand, bgsaveCommand, lastsaveCommand, aof.c bgrewriteaofCommand),
// over the server's RDB saver and AOF rewriter (rdb_save.hpp,
// aof_rewrite.hpp; Host::rdb, Host::aof_rewriter).
#include <string>
#include <string_view>

#include "aof_rewrite.hpp"
#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "rdb_save.hpp"

namespace kv::cmd {
namespace {

void cmd_save(Context& c) {
  RdbSaver* rdb = c.host.rdb();
  if (rdb != nullptr && rdb->in_progress())
    return err(c, "ERR Background save already in progress");
  if (rdb == nullptr || !rdb->save(c.host.used_memory())) return err(c, "ERR");
  Reply::simple(c.out, "OK");
}

void cmd_bgsave(Context& c) {
  bool schedule = false;
  if (c.argv.size() > 1) {
    if (c.argv.size() == 2 && eq_ci(c.argv[1], "schedule"))
      schedule = true;
    else
      return err(c, "ERR syntax error");
  }
  RdbSaver* rdb = c.host.rdb();
  if (rdb == nullptr) return err(c, "ERR");
  // Redis's bgsaveCommand: a save in progress refuses even SCHEDULE; an
  // AOF rewrite holding the consistent view (Redis: another child), or
  // EXEC running this (server.in_exec), schedules one with SCHEDULE or in
  // EXEC, else refuses.
  if (rdb->in_progress()) return err(c, "ERR Background save already in progress");
  if (rdb->busy() || c.in_exec) {
    if (!schedule && !c.in_exec)
      return err(c,
                 "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
                 "SCHEDULE in order to schedule a BGSAVE whenever possible.");
    rdb->schedule();
    return Reply::simple(c.out, "Background saving scheduled");
  }
  if (!rdb->start_background(c.host.used_memory())) {
    if (schedule) {
      rdb->schedule();
      return Reply::simple(c.out, "Background saving scheduled");
    }
    return err(c, "ERR Background save already in progress");
  }
  Reply::simple(c.out, "Background saving started");
}

void cmd_bgrewriteaof(Context& c) {
  AofRewriter* rw = c.host.aof_rewriter();
  // Inside EXEC a rewrite is scheduled rather than started (Redis's
  // bgrewriteaofCommand: server.in_exec).
  switch (rw != nullptr ? rw->request(c.in_exec) : AofRewriter::Outcome::failed) {
    case AofRewriter::Outcome::started:
      return Reply::simple(c.out, "Background append only file rewriting started");
    case AofRewriter::Outcome::in_progress:
      return err(c, "ERR Background append only file rewriting already in progress");
    case AofRewriter::Outcome::scheduled:
      return Reply::simple(c.out, "Background append only file rewriting scheduled");
    case AofRewriter::Outcome::failed:
      break;
  }
  err(c,
      "ERR Can't execute an AOF background rewriting. Please check the server logs for more "
      "information.");
}

void cmd_lastsave(Context& c) {
  RdbSaver* rdb = c.host.rdb();
  Reply::integer(c.out, rdb != nullptr ? rdb->last_save_s() : 0);
}

}  // namespace

std::span<const Command> persistence_commands() noexcept {
  static const Command kTable[] = {
      {"save",
       1,
       kAdmin | kNoScript | kNoAsyncLoading | kNoMulti,
       "@admin @slow @dangerous",
       "",
       {},
       cmd_save},
      {"bgsave",
       -1,
       kAdmin | kNoScript | kNoAsyncLoading,
       "@admin @slow @dangerous",
       "",
       {},
       cmd_bgsave},
      {"bgrewriteaof",
       1,
       kAdmin | kNoScript | kNoAsyncLoading,
       "@admin @slow @dangerous",
       "",
       {},
       cmd_bgrewriteaof},
      {"lastsave",
       1,
       kLoading | kStale | kFast,
       "@admin @fast @dangerous",
       "nondeterministic_output",
       {},
       cmd_lastsave},
  };
  return kTable;
}

}  // namespace kv::cmd
