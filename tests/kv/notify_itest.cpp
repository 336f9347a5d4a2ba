// weft-kv integration tests: keyspace notifications (Redis 7.0.15's
// notify.c). Each case runs its commands on one connection while a second
// connection, subscribed to every keyspace and keyevent channel, collects
// the messages; the expected messages are what redis-server 7.0.15 sends
// (the reference twin runs this binary against it, so a wrong expectation
// fails there). Then: a RESP3 client subscribed to its own keys gets each
// event where Redis puts it among its replies (byte for byte), `expired`
// from active expiry (keys never accessed again), and `evicted`.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kv/kv_harness.hpp"

namespace {

using kv::itest::Client;
using kv::itest::exchange;
using kv::itest::Reply;
using kv::itest::Server;
using kv::itest::ServerConfig;
using kv::itest::SharedServerTest;

class Notify : public SharedServerTest {};

struct Case {
  const char* name;
  const char* flags;  ///< notify-keyspace-events while the commands run
  std::vector<std::vector<std::string>> commands;
  std::vector<std::string> messages;  ///< "<channel> <message>", in order
};

// Generated from redis-server 7.0.15 (each case on a flushed server).
const std::vector<Case>& cases() {
  static const std::vector<Case> kCases = {
      {"set",
       "KEA",
       {{"SET", "k", "v"},
        {"SET", "k", "v", "EX", "100"},
        {"SET", "k", "v", "KEEPTTL"},
        {"SET", "k", "w", "NX"},
        {"SET", "k", "w", "XX", "GET"},
        {"SETNX", "k", "x"},
        {"SETNX", "n", "x"},
        {"SETEX", "e", "10", "v"},
        {"PSETEX", "e", "1000", "v"},
        {"GETSET", "k", "z"},
        {"MSET", "a", "1", "b", "2"},
        {"MSETNX", "a", "1", "c", "3"},
        {"MSETNX", "c", "1", "d", "3"}},
       {"__keyspace@0__:k set",    "__keyevent@0__:set k",    "__keyspace@0__:k set",
        "__keyevent@0__:set k",    "__keyspace@0__:k expire", "__keyevent@0__:expire k",
        "__keyspace@0__:k set",    "__keyevent@0__:set k",    "__keyspace@0__:k set",
        "__keyevent@0__:set k",    "__keyspace@0__:n set",    "__keyevent@0__:set n",
        "__keyspace@0__:e set",    "__keyevent@0__:set e",    "__keyspace@0__:e expire",
        "__keyevent@0__:expire e", "__keyspace@0__:e set",    "__keyevent@0__:set e",
        "__keyspace@0__:e expire", "__keyevent@0__:expire e", "__keyspace@0__:k set",
        "__keyevent@0__:set k",    "__keyspace@0__:a set",    "__keyevent@0__:set a",
        "__keyspace@0__:b set",    "__keyevent@0__:set b",    "__keyspace@0__:c set",
        "__keyevent@0__:set c",    "__keyspace@0__:d set",    "__keyevent@0__:set d"}},
      {"strings",
       "KEA",
       {{"APPEND", "s", "ab"},
        {"APPEND", "s", "cd"},
        {"SETRANGE", "s", "1", "xx"},
        {"SETRANGE", "t", "0", ""},
        {"INCR", "i"},
        {"DECR", "i"},
        {"INCRBY", "i", "5"},
        {"DECRBY", "i", "2"},
        {"INCRBYFLOAT", "f", "1.5"},
        {"INCR", "s"},
        {"GETDEL", "i"},
        {"GETDEL", "i"}},
       {"__keyspace@0__:s append", "__keyevent@0__:append s", "__keyspace@0__:s append",
        "__keyevent@0__:append s", "__keyspace@0__:s setrange", "__keyevent@0__:setrange s",
        "__keyspace@0__:i incrby", "__keyevent@0__:incrby i", "__keyspace@0__:i incrby",
        "__keyevent@0__:incrby i", "__keyspace@0__:i incrby", "__keyevent@0__:incrby i",
        "__keyspace@0__:i incrby", "__keyevent@0__:incrby i", "__keyspace@0__:f incrbyfloat",
        "__keyevent@0__:incrbyfloat f", "__keyspace@0__:i del", "__keyevent@0__:del i"}},
      {"getex",
       "KEA",
       {{"SET", "k", "v"},
        {"GETEX", "k"},
        {"GETEX", "k", "EX", "100"},
        {"GETEX", "k", "PERSIST"},
        {"GETEX", "k", "PX", "100"},
        {"GETEX", "k", "PXAT", "1"},
        {"GETEX", "nokey", "EX", "10"}},
       {"__keyspace@0__:k set", "__keyevent@0__:set k", "__keyspace@0__:k expire",
        "__keyevent@0__:expire k", "__keyspace@0__:k persist", "__keyevent@0__:persist k",
        "__keyspace@0__:k expire", "__keyevent@0__:expire k", "__keyspace@0__:k del",
        "__keyevent@0__:del k"}},
      {"bits",
       "KEA",
       {{"SETBIT", "b", "7", "1"},
        {"SETBIT", "b", "7", "1"},
        {"BITOP", "AND", "d", "b", "b"},
        {"BITOP", "OR", "d", "x", "y"},
        {"BITOP", "OR", "e", "x", "y"},
        {"BITFIELD", "bf", "SET", "u8", "0", "255"},
        {"BITFIELD", "bf", "GET", "u8", "0"},
        {"BITFIELD", "bf", "INCRBY", "u8", "0", "1", "OVERFLOW", "FAIL", "INCRBY", "u8", "0",
         "300"}},
       {"__keyspace@0__:b setbit", "__keyevent@0__:setbit b", "__keyspace@0__:d set",
        "__keyevent@0__:set d", "__keyspace@0__:d del", "__keyevent@0__:del d",
        "__keyspace@0__:bf setbit", "__keyevent@0__:setbit bf", "__keyspace@0__:bf setbit",
        "__keyevent@0__:setbit bf"}},
      {"generic",
       "KEA",
       {{"SET", "a", "1"},
        {"SET", "b", "2"},
        {"DEL", "a", "b", "c"},
        {"SET", "a", "1"},
        {"UNLINK", "a"},
        {"SET", "k", "v"},
        {"EXPIRE", "k", "100"},
        {"PEXPIRE", "k", "100000"},
        {"EXPIREAT", "k", "99999999999"},
        {"PEXPIREAT", "k", "99999999999000"},
        {"EXPIRE", "k", "100", "NX"},
        {"PERSIST", "k"},
        {"PERSIST", "k"},
        {"EXPIRE", "k", "-1"},
        {"SET", "k", "v"},
        {"PEXPIREAT", "k", "1"},
        {"EXPIRE", "none", "10"}},
       {"__keyspace@0__:a set",    "__keyevent@0__:set a",     "__keyspace@0__:b set",
        "__keyevent@0__:set b",    "__keyspace@0__:a del",     "__keyevent@0__:del a",
        "__keyspace@0__:b del",    "__keyevent@0__:del b",     "__keyspace@0__:a set",
        "__keyevent@0__:set a",    "__keyspace@0__:a del",     "__keyevent@0__:del a",
        "__keyspace@0__:k set",    "__keyevent@0__:set k",     "__keyspace@0__:k expire",
        "__keyevent@0__:expire k", "__keyspace@0__:k expire",  "__keyevent@0__:expire k",
        "__keyspace@0__:k expire", "__keyevent@0__:expire k",  "__keyspace@0__:k expire",
        "__keyevent@0__:expire k", "__keyspace@0__:k persist", "__keyevent@0__:persist k",
        "__keyspace@0__:k del",    "__keyevent@0__:del k",     "__keyspace@0__:k set",
        "__keyevent@0__:set k",    "__keyspace@0__:k del",     "__keyevent@0__:del k"}},
      {"rename",
       "KEA",
       {{"SET", "a", "1"},
        {"RENAME", "a", "b"},
        {"SET", "c", "1"},
        {"RENAME", "b", "c"},
        {"RENAMENX", "c", "d"},
        {"SET", "e", "1"},
        {"RENAMENX", "d", "e"},
        {"RENAME", "d", "d"},
        {"COPY", "d", "f"},
        {"COPY", "d", "f"},
        {"COPY", "d", "f", "REPLACE"},
        {"SET", "x", "1"},
        {"EXPIRE", "x", "100"},
        {"RENAME", "x", "y"},
        {"MOVE", "y", "0"}},
       {"__keyspace@0__:a set",         "__keyevent@0__:set a",
        "__keyspace@0__:a rename_from", "__keyevent@0__:rename_from a",
        "__keyspace@0__:b rename_to",   "__keyevent@0__:rename_to b",
        "__keyspace@0__:c set",         "__keyevent@0__:set c",
        "__keyspace@0__:b rename_from", "__keyevent@0__:rename_from b",
        "__keyspace@0__:c rename_to",   "__keyevent@0__:rename_to c",
        "__keyspace@0__:c rename_from", "__keyevent@0__:rename_from c",
        "__keyspace@0__:d rename_to",   "__keyevent@0__:rename_to d",
        "__keyspace@0__:e set",         "__keyevent@0__:set e",
        "__keyspace@0__:f copy_to",     "__keyevent@0__:copy_to f",
        "__keyspace@0__:f copy_to",     "__keyevent@0__:copy_to f",
        "__keyspace@0__:x set",         "__keyevent@0__:set x",
        "__keyspace@0__:x expire",      "__keyevent@0__:expire x",
        "__keyspace@0__:x rename_from", "__keyevent@0__:rename_from x",
        "__keyspace@0__:y rename_to",   "__keyevent@0__:rename_to y"}},
      {"flush",
       "KEA",
       {{"SET", "a", "1"}, {"FLUSHALL"}, {"SET", "a", "1"}, {"FLUSHDB"}},
       {"__keyspace@0__:a set", "__keyevent@0__:set a", "__keyspace@0__:a set",
        "__keyevent@0__:set a"}},
      {"lists",
       "KEA",
       {{"LPUSH", "l", "a", "b"},
        {"RPUSH", "l", "c"},
        {"LPUSHX", "l", "d"},
        {"RPUSHX", "l", "e"},
        {"LPUSHX", "m", "d"},
        {"LINSERT", "l", "BEFORE", "a", "z"},
        {"LINSERT", "l", "BEFORE", "nope", "z"},
        {"LSET", "l", "0", "q"},
        {"LPOP", "l"},
        {"RPOP", "l"},
        {"LPOP", "l", "2"},
        {"LREM", "l", "0", "zz"},
        {"LREM", "l", "0", "z"},
        {"LTRIM", "l", "0", "0"},
        {"LTRIM", "l", "1", "0"},
        {"RPUSH", "l", "a", "b"},
        {"LMOVE", "l", "m", "LEFT", "RIGHT"},
        {"RPOPLPUSH", "l", "m"},
        {"LMPOP", "1", "m", "LEFT", "COUNT", "5"},
        {"RPUSH", "x", "1"},
        {"BLPOP", "x", "0"},
        {"RPUSH", "x", "1", "2"},
        {"BRPOP", "x", "0"},
        {"BLMOVE", "x", "y", "RIGHT", "LEFT", "0"},
        {"BRPOPLPUSH", "y", "z", "0"},
        {"BLMPOP", "0", "1", "z", "RIGHT"},
        {"RPUSH", "s", "a"},
        {"LMOVE", "s", "s", "LEFT", "RIGHT"}},
       {"__keyspace@0__:l lpush",   "__keyevent@0__:lpush l", "__keyspace@0__:l rpush",
        "__keyevent@0__:rpush l",   "__keyspace@0__:l lpush", "__keyevent@0__:lpush l",
        "__keyspace@0__:l rpush",   "__keyevent@0__:rpush l", "__keyspace@0__:l linsert",
        "__keyevent@0__:linsert l", "__keyspace@0__:l lset",  "__keyevent@0__:lset l",
        "__keyspace@0__:l lpop",    "__keyevent@0__:lpop l",  "__keyspace@0__:l rpop",
        "__keyevent@0__:rpop l",    "__keyspace@0__:l lpop",  "__keyevent@0__:lpop l",
        "__keyspace@0__:l ltrim",   "__keyevent@0__:ltrim l", "__keyspace@0__:l ltrim",
        "__keyevent@0__:ltrim l",   "__keyspace@0__:l del",   "__keyevent@0__:del l",
        "__keyspace@0__:l rpush",   "__keyevent@0__:rpush l", "__keyspace@0__:m rpush",
        "__keyevent@0__:rpush m",   "__keyspace@0__:l lpop",  "__keyevent@0__:lpop l",
        "__keyspace@0__:m lpush",   "__keyevent@0__:lpush m", "__keyspace@0__:l rpop",
        "__keyevent@0__:rpop l",    "__keyspace@0__:l del",   "__keyevent@0__:del l",
        "__keyspace@0__:m lpop",    "__keyevent@0__:lpop m",  "__keyspace@0__:m del",
        "__keyevent@0__:del m",     "__keyspace@0__:x rpush", "__keyevent@0__:rpush x",
        "__keyspace@0__:x lpop",    "__keyevent@0__:lpop x",  "__keyspace@0__:x del",
        "__keyevent@0__:del x",     "__keyspace@0__:x rpush", "__keyevent@0__:rpush x",
        "__keyspace@0__:x rpop",    "__keyevent@0__:rpop x",  "__keyspace@0__:y lpush",
        "__keyevent@0__:lpush y",   "__keyspace@0__:x rpop",  "__keyevent@0__:rpop x",
        "__keyspace@0__:x del",     "__keyevent@0__:del x",   "__keyspace@0__:z lpush",
        "__keyevent@0__:lpush z",   "__keyspace@0__:y rpop",  "__keyevent@0__:rpop y",
        "__keyspace@0__:y del",     "__keyevent@0__:del y",   "__keyspace@0__:z rpop",
        "__keyevent@0__:rpop z",    "__keyspace@0__:z del",   "__keyevent@0__:del z",
        "__keyspace@0__:s rpush",   "__keyevent@0__:rpush s", "__keyspace@0__:s rpush",
        "__keyevent@0__:rpush s",   "__keyspace@0__:s lpop",  "__keyevent@0__:lpop s"}},
      {"hashes",
       "KEA",
       {{"HSET", "h", "a", "1", "b", "2"},
        {"HSET", "h", "a", "1"},
        {"HMSET", "h", "c", "3"},
        {"HSETNX", "h", "a", "9"},
        {"HSETNX", "h", "d", "9"},
        {"HINCRBY", "h", "n", "2"},
        {"HINCRBYFLOAT", "h", "f", "1.5"},
        {"HDEL", "h", "zz"},
        {"HDEL", "h", "a", "b"},
        {"HDEL", "h", "c", "d", "n", "f"}},
       {"__keyspace@0__:h hset", "__keyevent@0__:hset h", "__keyspace@0__:h hset",
        "__keyevent@0__:hset h", "__keyspace@0__:h hset", "__keyevent@0__:hset h",
        "__keyspace@0__:h hset", "__keyevent@0__:hset h", "__keyspace@0__:h hincrby",
        "__keyevent@0__:hincrby h", "__keyspace@0__:h hincrbyfloat",
        "__keyevent@0__:hincrbyfloat h", "__keyspace@0__:h hdel", "__keyevent@0__:hdel h",
        "__keyspace@0__:h hdel", "__keyevent@0__:hdel h", "__keyspace@0__:h del",
        "__keyevent@0__:del h"}},
      {"sets",
       "KEA",
       {{"SADD", "s", "a", "b", "c"},
        {"SADD", "s", "a"},
        {"SREM", "s", "zz"},
        {"SREM", "s", "a"},
        {"SPOP", "s"},
        {"SADD", "s", "x", "y"},
        {"SPOP", "s", "1"},
        {"SPOP", "s", "10"},
        {"SADD", "a", "1", "2"},
        {"SADD", "b", "2", "3"},
        {"SMOVE", "a", "b", "1"},
        {"SMOVE", "a", "c", "2"},
        {"SMOVE", "a", "c", "9"},
        {"SINTERSTORE", "d", "b", "c"},
        {"SUNIONSTORE", "d", "b", "c"},
        {"SDIFFSTORE", "d", "b", "b"},
        {"SDIFFSTORE", "d", "b", "b"},
        {"SINTERSTORE", "e", "x", "y"}},
       {"__keyspace@0__:s sadd",        "__keyevent@0__:sadd s",
        "__keyspace@0__:s srem",        "__keyevent@0__:srem s",
        "__keyspace@0__:s spop",        "__keyevent@0__:spop s",
        "__keyspace@0__:s sadd",        "__keyevent@0__:sadd s",
        "__keyspace@0__:s spop",        "__keyevent@0__:spop s",
        "__keyspace@0__:s spop",        "__keyevent@0__:spop s",
        "__keyspace@0__:s del",         "__keyevent@0__:del s",
        "__keyspace@0__:a sadd",        "__keyevent@0__:sadd a",
        "__keyspace@0__:b sadd",        "__keyevent@0__:sadd b",
        "__keyspace@0__:a srem",        "__keyevent@0__:srem a",
        "__keyspace@0__:b sadd",        "__keyevent@0__:sadd b",
        "__keyspace@0__:a srem",        "__keyevent@0__:srem a",
        "__keyspace@0__:a del",         "__keyevent@0__:del a",
        "__keyspace@0__:c sadd",        "__keyevent@0__:sadd c",
        "__keyspace@0__:d sinterstore", "__keyevent@0__:sinterstore d",
        "__keyspace@0__:d sunionstore", "__keyevent@0__:sunionstore d",
        "__keyspace@0__:d del",         "__keyevent@0__:del d"}},
      {"zsets",
       "KEA",
       {{"ZADD", "z", "1", "a", "2", "b"},
        {"ZADD", "z", "1", "a"},
        {"ZADD", "z", "INCR", "5", "a"},
        {"ZADD", "z", "NX", "5", "a"},
        {"ZINCRBY", "z", "1", "b"},
        {"ZREM", "z", "nope"},
        {"ZREM", "z", "a"},
        {"ZADD", "z", "1", "a", "3", "c", "4", "d"},
        {"ZREMRANGEBYRANK", "z", "0", "0"},
        {"ZREMRANGEBYSCORE", "z", "3", "3"},
        {"ZADD", "y", "0", "a", "0", "b", "0", "c"},
        {"ZREMRANGEBYLEX", "y", "[a", "[a"},
        {"ZPOPMIN", "y"},
        {"ZPOPMAX", "y"},
        {"ZADD", "y", "0", "a"},
        {"ZMPOP", "1", "y", "MIN"},
        {"ZADD", "y", "0", "a", "1", "b"},
        {"BZPOPMIN", "y", "0"},
        {"BZPOPMAX", "y", "0"},
        {"ZADD", "y", "0", "a"},
        {"BZMPOP", "0", "1", "y", "MAX"},
        {"ZUNIONSTORE", "u", "2", "z", "y"},
        {"ZINTERSTORE", "u", "2", "z", "y"},
        {"ZINTERSTORE", "u", "2", "z", "y"},
        {"ZDIFFSTORE", "v", "1", "z"},
        {"ZRANGESTORE", "w", "z", "0", "-1"},
        {"ZRANGESTORE", "w", "z", "5", "9"},
        {"ZREMRANGEBYSCORE", "z", "-inf", "+inf"}},
       {"__keyspace@0__:z zadd",
        "__keyevent@0__:zadd z",
        "__keyspace@0__:z zincr",
        "__keyevent@0__:zincr z",
        "__keyspace@0__:z zincr",
        "__keyevent@0__:zincr z",
        "__keyspace@0__:z zrem",
        "__keyevent@0__:zrem z",
        "__keyspace@0__:z zadd",
        "__keyevent@0__:zadd z",
        "__keyspace@0__:z zremrangebyrank",
        "__keyevent@0__:zremrangebyrank z",
        "__keyspace@0__:z zremrangebyscore",
        "__keyevent@0__:zremrangebyscore z",
        "__keyspace@0__:y zadd",
        "__keyevent@0__:zadd y",
        "__keyspace@0__:y zremrangebylex",
        "__keyevent@0__:zremrangebylex y",
        "__keyspace@0__:y zpopmin",
        "__keyevent@0__:zpopmin y",
        "__keyspace@0__:y zpopmax",
        "__keyevent@0__:zpopmax y",
        "__keyspace@0__:y del",
        "__keyevent@0__:del y",
        "__keyspace@0__:y zadd",
        "__keyevent@0__:zadd y",
        "__keyspace@0__:y zpopmin",
        "__keyevent@0__:zpopmin y",
        "__keyspace@0__:y del",
        "__keyevent@0__:del y",
        "__keyspace@0__:y zadd",
        "__keyevent@0__:zadd y",
        "__keyspace@0__:y zpopmin",
        "__keyevent@0__:zpopmin y",
        "__keyspace@0__:y zpopmax",
        "__keyevent@0__:zpopmax y",
        "__keyspace@0__:y del",
        "__keyevent@0__:del y",
        "__keyspace@0__:y zadd",
        "__keyevent@0__:zadd y",
        "__keyspace@0__:y zpopmax",
        "__keyevent@0__:zpopmax y",
        "__keyspace@0__:y del",
        "__keyevent@0__:del y",
        "__keyspace@0__:u zunionstore",
        "__keyevent@0__:zunionstore u",
        "__keyspace@0__:u del",
        "__keyevent@0__:del u",
        "__keyspace@0__:v zdiffstore",
        "__keyevent@0__:zdiffstore v",
        "__keyspace@0__:w zrangestore",
        "__keyevent@0__:zrangestore w",
        "__keyspace@0__:w del",
        "__keyevent@0__:del w",
        "__keyspace@0__:z zremrangebyscore",
        "__keyevent@0__:zremrangebyscore z",
        "__keyspace@0__:z del",
        "__keyevent@0__:del z"}},
      {"more",
       "KEA",
       {{"BITFIELD", "bf", "SET", "u8", "0", "0"},
        {"BITFIELD", "bf", "SET", "u8", "0", "0"},
        {"BITFIELD", "bf2", "INCRBY", "u8", "0", "300", "OVERFLOW", "FAIL"},
        {"RPUSH", "l", "a"},
        {"LTRIM", "l", "0", "-1"},
        {"HINCRBY", "h", "f", "1"},
        {"HINCRBYFLOAT", "h", "f", "x"},
        {"ZADD", "z", "XX", "1", "a"},
        {"ZADD", "z", "1", "a"},
        {"ZINCRBY", "z", "1", "a"},
        {"ZPOPMIN", "z", "0"},
        {"ZPOPMIN", "z", "5"},
        {"SADD", "s", "1"},
        {"SPOP", "s", "0"},
        {"SMOVE", "s", "s", "1"},
        {"SET", "x", "1"},
        {"INCRBYFLOAT", "x", "0"},
        {"APPEND", "x", ""},
        {"SETRANGE", "x", "0", ""},
        {"GETSET", "g", "1"},
        {"SET", "k", "v", "GET"},
        {"MSET", "k", "1", "k", "2"},
        {"DEL", "k", "k"},
        {"LINSERT", "nol", "BEFORE", "a", "b"},
        {"LREM", "l", "0", "a"},
        {"RPUSH", "m", "x", "y"},
        {"LPOP", "m", "0"},
        {"RPOP", "m", "5"},
        {"RENAMENX", "q", "r"},
        {"SET", "q", "1"},
        {"RENAME", "q", "q"}},
       {"__keyspace@0__:bf setbit",  "__keyevent@0__:setbit bf",     "__keyspace@0__:bf2 setbit",
        "__keyevent@0__:setbit bf2", "__keyspace@0__:l rpush",       "__keyevent@0__:rpush l",
        "__keyspace@0__:l ltrim",    "__keyevent@0__:ltrim l",       "__keyspace@0__:h hincrby",
        "__keyevent@0__:hincrby h",  "__keyspace@0__:z zadd",        "__keyevent@0__:zadd z",
        "__keyspace@0__:z zincr",    "__keyevent@0__:zincr z",       "__keyspace@0__:z zpopmin",
        "__keyevent@0__:zpopmin z",  "__keyspace@0__:z del",         "__keyevent@0__:del z",
        "__keyspace@0__:s sadd",     "__keyevent@0__:sadd s",        "__keyspace@0__:x set",
        "__keyevent@0__:set x",      "__keyspace@0__:x incrbyfloat", "__keyevent@0__:incrbyfloat x",
        "__keyspace@0__:x append",   "__keyevent@0__:append x",      "__keyspace@0__:g set",
        "__keyevent@0__:set g",      "__keyspace@0__:k set",         "__keyevent@0__:set k",
        "__keyspace@0__:k set",      "__keyevent@0__:set k",         "__keyspace@0__:k set",
        "__keyevent@0__:set k",      "__keyspace@0__:k del",         "__keyevent@0__:del k",
        "__keyspace@0__:l lrem",     "__keyevent@0__:lrem l",        "__keyspace@0__:l del",
        "__keyevent@0__:del l",      "__keyspace@0__:m rpush",       "__keyevent@0__:rpush m",
        "__keyspace@0__:m rpop",     "__keyevent@0__:rpop m",        "__keyspace@0__:m del",
        "__keyevent@0__:del m",      "__keyspace@0__:q set",         "__keyevent@0__:set q"}},
      {"classes_string_keyspace",
       "K$",
       {{"SET", "a", "1"}, {"DEL", "a"}, {"LPUSH", "l", "x"}, {"APPEND", "a", "x"}},
       {"__keyspace@0__:a set", "__keyspace@0__:a append"}},
      {"classes_generic_keyevent",
       "Eg",
       {{"SET", "a", "1"},
        {"EXPIRE", "a", "100"},
        {"DEL", "a"},
        {"HSET", "h", "f", "v"},
        {"DEL", "h"}},
       {"__keyevent@0__:expire a", "__keyevent@0__:del a", "__keyevent@0__:del h"}},
      {"classes_lists_sets",
       "KEls",
       {{"RPUSH", "l", "1"},
        {"SADD", "s", "1"},
        {"HSET", "h", "f", "v"},
        {"ZADD", "z", "1", "a"},
        {"DEL", "l", "s"}},
       {"__keyspace@0__:l rpush", "__keyevent@0__:rpush l", "__keyspace@0__:s sadd",
        "__keyevent@0__:sadd s"}},
      {"classes_hash_zset",
       "Ehz",
       {{"RPUSH", "l", "1"},
        {"HSET", "h", "f", "v"},
        {"ZADD", "z", "1", "a"},
        {"ZINCRBY", "z", "1", "a"},
        {"HDEL", "h", "f"}},
       {"__keyevent@0__:hset h", "__keyevent@0__:zadd z", "__keyevent@0__:zincr z",
        "__keyevent@0__:hdel h"}},
      {"no_kind_no_events", "A", {{"SET", "a", "1"}, {"DEL", "a"}}, {}},
      {"kind_no_class", "KE", {{"SET", "a", "1"}, {"DEL", "a"}}, {}},
      {"multi_exec",
       "KEA",
       {{"MULTI"}, {"SET", "a", "1"}, {"INCR", "a"}, {"DEL", "a"}, {"EXEC"}},
       {"__keyspace@0__:a set", "__keyevent@0__:set a", "__keyspace@0__:a incrby",
        "__keyevent@0__:incrby a", "__keyspace@0__:a del", "__keyevent@0__:del a"}},
      // keymiss (class m, not in A): every read lookup that finds no key, as
      // Redis's lookupKeyRead; a field missing from a hash is no key miss.
      {"keymiss",
       "KEm",
       {{"SET", "s", "v"},
        {"HSET", "h", "f", "v"},
        {"GET", "nk"},
        {"GET", "s"},
        {"MGET", "s", "nk", "h"},
        {"SET", "nk2", "v", "GET"},
        {"GETDEL", "nk"},
        {"STRLEN", "nk"},
        {"HGET", "nk", "f"},
        {"HGET", "h", "nf"},
        {"HGET", "s", "f"},
        {"HGETALL", "nk"},
        {"LRANGE", "nk", "0", "-1"},
        {"SMEMBERS", "nk"},
        {"SINTER", "h", "nk"},
        {"SUNIONSTORE", "d", "nk", "nk3"},
        {"ZSCORE", "nk", "m"},
        {"ZUNION", "2", "nk", "nk4"},
        {"EXISTS", "s", "nk"},
        {"TYPE", "nk"},
        {"TTL", "nk"},
        {"BITCOUNT", "nk"},
        {"LCS", "nk", "s"},
        {"INCR", "nk5"},
        {"DEL", "nk6"}},
       {"__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",
        "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk2 keymiss", "__keyevent@0__:keymiss nk2",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",
        "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",
        "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk3 keymiss",
        "__keyevent@0__:keymiss nk3", "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk4 keymiss",
        "__keyevent@0__:keymiss nk4", "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",
        "__keyevent@0__:keymiss nk",  "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk",
        "__keyspace@0__:nk keymiss",  "__keyevent@0__:keymiss nk"}},
  };
  return kCases;
}

// A connection subscribed to every keyspace and keyevent channel, and to
// "end", whose message marks where a case's events end.
class Listener {
 public:
  explicit Listener(std::uint16_t port) : c_(port) {
    EXPECT_EQ(c_.call({"PSUBSCRIBE", "__key*__:*"}).describe(),
              "[\"psubscribe\", \"__key*__:*\", :1]");
    EXPECT_EQ(c_.call({"SUBSCRIBE", "end"}).describe(), "[\"subscribe\", \"end\", :2]");
  }
  // The messages received until the "end" message that `publisher` sends
  // now, as "<channel> <message>".
  std::vector<std::string> until_end(Client& publisher) {
    EXPECT_EQ(publisher.call({"PUBLISH", "end", "x"}).integer, 1);
    std::vector<std::string> got;
    for (;;) {
      const Reply m = c_.read_reply();
      if (m.type != Reply::Type::array || m.elements.size() < 3) {
        ADD_FAILURE() << "not a message: " << m;
        return got;
      }
      if (m.elements[0].str == "message") return got;
      got.push_back(m.elements[2].str + " " + m.elements[3].str);
    }
  }

 private:
  Client c_;
};

void set_flags(Client& c, const std::string& flags) {
  ASSERT_EQ(c.call({"CONFIG", "SET", "notify-keyspace-events", flags}).describe(), "+OK");
}

TEST_F(Notify, EventsOfEachCommandAsRedisSendsThem) {
  Listener listener(port());
  Client c(port());
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    set_flags(c, "");
    ASSERT_EQ(c.call({"FLUSHALL"}).describe(), "+OK");
    set_flags(c, k.flags);
    for (const auto& cmd : k.commands) (void)c.call(cmd);
    set_flags(c, "");
    EXPECT_EQ(listener.until_end(c), k.messages);
  }
}

// A RESP3 client subscribed to its own keys: each event arrives among its
// replies where Redis adds it (SET announces before its reply, EXPIRE and
// HSET after), including within one pipeline.
TEST_F(Notify, OwnEventsKeepRedisPlaceAmongReplies) {
  Client c(port());
  std::string got = exchange(c, {{"CONFIG", "SET", "notify-keyspace-events", "KEA"},
                                 {"HELLO", "3"},
                                 {"SUBSCRIBE", "__keyspace@0__:k"},
                                 {"PSUBSCRIBE", "__keyevent@0__:*"},
                                 {"SET", "k", "v"},
                                 {"EXPIRE", "k", "100"},
                                 {"DEL", "k"},
                                 {"HSET", "h", "f", "v"},
                                 {"UNSUBSCRIBE"},
                                 {"PUNSUBSCRIBE"},
                                 {"SET", "k", "v"},
                                 {"CONFIG", "SET", "notify-keyspace-events", ""}});
  // HELLO's map holds the client id: compared from the first push on.
  got.erase(0, got.find(">3\r\n"));
  const std::string want =
      ">3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:k\r\n"
      ":1\r\n"
      ">3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n"
      ":2\r\n"
      ">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n"
      ">4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n"
      "+OK\r\n"
      ":1\r\n"
      ">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$6\r\nexpire\r\n"
      ">4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$21\r\n__keyevent@0__:expire\r\n$"
      "1\r\nk\r\n"
      ">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\ndel\r\n"
      ">4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$18\r\n__keyevent@0__:del\r\n$1\r\nk\r\n"
      ":1\r\n"
      ":1\r\n"
      ">4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$19\r\n__keyevent@0__:hset\r\n$1\r\nh\r\n"
      ">3\r\n$11\r\nunsubscribe\r\n$16\r\n__keyspace@0__:k\r\n"
      ":1\r\n"
      ">3\r\n$12\r\npunsubscribe\r\n$16\r\n__keyevent@0__:*\r\n"
      ":0\r\n"
      "+OK\r\n"
      "+OK\r\n"
      "+OK\r\n";
  EXPECT_EQ(got, want);
}

// EXEC with a SUBSCRIBE queued holds the registry while its writes
// publish: they publish under EXEC's hold (no self-deadlock), and the
// client's own events land inside EXEC's reply, as in Redis.
TEST_F(Notify, EventsInsideExecThatSubscribes) {
  Client c(port());
  const std::string got = exchange(c, {{"CONFIG", "SET", "notify-keyspace-events", "KA"},
                                       {"MULTI"},
                                       {"SUBSCRIBE", "__keyspace@0__:k"},
                                       {"SET", "k", "v"},
                                       {"DEL", "k"},
                                       {"EXEC"},
                                       {"UNSUBSCRIBE"},
                                       {"CONFIG", "SET", "notify-keyspace-events", ""}});
  EXPECT_EQ(got,
            "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
            "*3\r\n*3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:k\r\n:1\r\n"
            "*3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n+OK\r\n"
            "*3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\ndel\r\n:1\r\n"
            "*3\r\n$11\r\nunsubscribe\r\n$16\r\n__keyspace@0__:k\r\n:0\r\n+OK\r\n+OK\r\n");
}

// A RESP3 subscriber gets the same events as pushes.
TEST_F(Notify, Resp3SubscriberGetsPushes) {
  Client sub(port());
  Client c(port());
  set_flags(c, "KEg$");
  sub.send(kv::itest::encode({"HELLO", "3"}) +
           kv::itest::encode({"SUBSCRIBE", "__keyspace@0__:k"}));
  std::string got;
  // HELLO's reply (a map) and the subscription's push, then SET's event.
  const std::string confirm = ">3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:k\r\n:1\r\n";
  const std::string event = ">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n";
  char buf[4096];
  while (got.find(confirm) == std::string::npos) {
    const std::size_t n = sub.stream().read(buf, sizeof buf, kv::itest::kPatience);
    ASSERT_GT(n, 0u);
    got.append(buf, n);
  }
  got.erase(0, got.find(confirm) + confirm.size());
  ASSERT_EQ(c.call({"SET", "k", "v"}).describe(), "+OK");
  while (got.size() < event.size()) {
    const std::size_t n = sub.stream().read(buf, sizeof buf, kv::itest::kPatience);
    ASSERT_GT(n, 0u);
    got.append(buf, n);
  }
  EXPECT_EQ(got, event);
  set_flags(c, "");
}

// Keys that expire while nobody touches them: active expiry announces each
// (class x), on both channels.
TEST_F(Notify, ActiveExpiryAnnouncesExpired) {
  Client sub(port());
  ASSERT_EQ(sub.call({"PSUBSCRIBE", "__key*@0__:*"}).elements.size(), 3u);
  Client c(port());
  set_flags(c, "KEx");
  ASSERT_EQ(c.call({"SET", "a", "1", "PX", "10"}).describe(), "+OK");
  ASSERT_EQ(c.call({"HSET", "b", "f", "v"}).integer, 1);
  ASSERT_EQ(c.call({"PEXPIRE", "b", "10"}).integer, 1);
  std::multiset<std::string> got;
  while (got.size() < 4) {
    const Reply m = sub.read_reply();
    ASSERT_EQ(m.elements.size(), 4u) << m;
    got.insert(m.elements[2].str + " " + m.elements[3].str);
  }
  set_flags(c, "");
  EXPECT_EQ(got,
            (std::multiset<std::string>{"__keyevent@0__:expired a", "__keyevent@0__:expired b",
                                        "__keyspace@0__:a expired", "__keyspace@0__:b expired"}));
  EXPECT_EQ(c.call({"EXISTS", "a", "b"}).integer, 0);
}

// Eviction announces each key it deletes (class e): as many events as
// INFO's evicted_keys, each naming a key that is gone.
TEST(NotifyEviction, EachEvictedKeyIsAnnounced) {
  KV_REQUIRE_SERVER();
  constexpr int kKeys = 200;
  Server server(ServerConfig{{{"maxmemory-policy", "allkeys-random"}}, {}});
  Client c(server.port());
  Listener listener(server.port());
  const std::string value(1000, 'v');
  for (int i = 0; i < kKeys; ++i)
    ASSERT_EQ(c.call({"SET", "k:" + std::to_string(i), value}).describe(), "+OK");
  set_flags(c, "Ee");
  const std::int64_t used = kv::itest::info(c, "memory").integer("used_memory");
  ASSERT_EQ(c.call({"CONFIG", "SET", "maxmemory", std::to_string(used - 50 * 1100)}).describe(),
            "+OK");
  ASSERT_EQ(c.call({"SET", "trigger", "x"}).describe(), "+OK");
  ASSERT_EQ(c.call({"CONFIG", "SET", "maxmemory", "0"}).describe(), "+OK");
  set_flags(c, "");
  const std::vector<std::string> got = listener.until_end(c);
  const std::int64_t evicted = kv::itest::info(c, "stats").integer("evicted_keys");
  ASSERT_GT(evicted, 0);
  EXPECT_EQ(static_cast<std::int64_t>(got.size()), evicted);
  std::set<std::string> keys;
  for (const std::string& m : got) {
    ASSERT_EQ(m.rfind("__keyevent@0__:evicted k:", 0), 0u) << m;
    const std::string key = m.substr(m.find(' ') + 1);
    EXPECT_TRUE(keys.insert(key).second) << "announced twice: " << key;
    EXPECT_EQ(c.call({"EXISTS", key}).integer, 0) << key;
  }
}

}  // namespace
