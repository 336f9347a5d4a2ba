#!/usr/bin/env python3
"""Differential run: random string commands against redis-server 7 and weft-kv.

    tests/kv/differential.py --weft-kv build/examples/weft-kv/weft-kv [--seed 1] [--commands 30000]

Starts both servers on free ports (redis-server as the integration tests'
reference mode runs it: --save '' --appendonly no --databases 1), sends the
same random command to each in turn over RESP, and prints every distinct
disagreement (command, Redis's reply, weft-kv's reply). After a disagreement
both keyspaces are flushed, so one divergence is not reported a thousand
times. Exit status 1 if anything disagreed.

The generator draws from a handful of keys and from edge-case numbers and
values (64-bit limits, signs, leading zeros, blanks, floats), so type and
overflow checks, option parsing and error texts get hit often. TTLs are
either long (100000 s), absolute in the past or future, zero/negative or
invalid: a short TTL would expire between the two servers' copies of a
command and report noise. Even so, two replies can differ by timing alone:
EXPIRE ... GT/LT comparing two TTLs set within the same millisecond, and
DBSIZE, which counts a key stored by SET ... EXAT/PXAT <past> until active
expiry (or a read) removes it, at a moment of each server's choosing. Check a reported difference with
redis-cli against both before believing it; confirmed ones belong in
tests/kv/cases/.

--exact (how ctest runs it, tests/kv/CMakeLists.txt: weft_test_kv_differential_<seed>)
takes those timing effects out instead of reporting them, so that any
disagreement left is a real one:
  * TTL replies agree if they are within one second of each other;
  * EXPIRE/PEXPIRE with GT or LT on a relative time: :0 against :1 is a tie
    broken by the clock (both TTLs set in the same millisecond or not); the
    keyspaces are then flushed, as after a disagreement, but none is reported;
  * after a SET with EXAT or PXAT, both servers are asked EXISTS for the key
    (compared as well), so a key stored already expired is removed by lazy
    expiry on both before DBSIZE can count it.
A disagreement prints the commands that led to it.
"""
import argparse
import collections
import random
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rb")

    def call(self, args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return "(nil array)" if n < 0 else [self.read() for _ in range(n)]
        return line[:-2]


KEYS = [b"a", b"b", b"c", b"", b"k\x00", b"n"]
NUMBERS = [b"0", b"1", b"-1", b"10", b"100", b"1000", b"9223372036854775807",
           b"-9223372036854775808", b"9223372036854775808", b"1.5", b"", b" 1", b"abc",
           b"+1", b"-0", b"007", b"4102444800"]
TIMES = [b"0", b"-1", b"100000", b"4102444800", b"4102444800000", b"1", b"9223372036854775807",
         b"-9223372036854775808", b"9223372036854775", b"abc", b"", b"1.5", b"+100000", b"007"]
VALUES = [b"v", b"", b"12", b"-5", b"xxx", b"9223372036854775806"]
SET_OPTIONS = [b"NX", b"XX", b"GET", b"KEEPTTL", b"EX", b"PX", b"EXAT", b"PXAT", b"nx", b"FOO"]
EXPIRE_FLAGS = [b"NX", b"XX", b"GT", b"LT", b"gt", b"BAD"]


def relative_time(rng):
    """A TTL for EX/PX/EXPIRE/SETEX: never short enough to expire mid-run."""
    t = rng.choice(TIMES)
    return b"100000" if t == b"1" else t


def command(rng):
    key = lambda: rng.choice(KEYS)
    num = lambda: rng.choice(NUMBERS)
    val = lambda: rng.choice(VALUES + NUMBERS)
    name = rng.choice(["GET", "SET", "SET+", "GETSET", "DEL", "EXISTS", "INCR", "DECR", "INCRBY",
                       "DECRBY", "APPEND", "STRLEN", "MGET", "MSET", "EXPIRE", "PEXPIRE",
                       "EXPIREAT", "EXPIRE+", "TTL", "PERSIST", "SETNX", "SETEX", "PSETEX",
                       "GETDEL", "UNLINK", "TYPE", "DBSIZE", "KEYS", "SELECT", "ECHO", "PING"])
    if name == "SET+":
        args = [b"SET", key(), val()]
        for _ in range(rng.randint(1, 3)):
            opt = rng.choice(SET_OPTIONS)
            args.append(opt)
            if opt.upper() in (b"EX", b"PX", b"EXAT", b"PXAT") and rng.random() < 0.9:
                args.append(relative_time(rng) if opt.upper() in (b"EX", b"PX")
                            else rng.choice(TIMES))
        return args
    if name == "EXPIRE+":
        return [b"EXPIRE", key(), relative_time(rng)] + [
            rng.choice(EXPIRE_FLAGS) for _ in range(rng.randint(0, 2))]
    n = name.encode()
    if name in ("GET", "INCR", "DECR", "STRLEN", "TTL", "PERSIST", "GETDEL", "TYPE"):
        return [n, key()]
    if name in ("SET", "GETSET", "APPEND", "SETNX"):
        return [n, key(), val()]
    if name in ("DEL", "EXISTS", "MGET", "UNLINK"):
        return [n] + [key() for _ in range(rng.randint(0, 3))]
    if name in ("INCRBY", "DECRBY"):
        return [n, key(), num()]
    if name in ("EXPIRE", "PEXPIRE"):
        return [n, key(), relative_time(rng)]
    if name == "EXPIREAT":
        return [n, key(), rng.choice(TIMES)]
    if name in ("SETEX", "PSETEX"):
        return [n, key(), relative_time(rng), val()]
    if name == "MSET":
        return [n] + [rng.choice([key(), val()]) for _ in range(rng.randint(0, 5))]
    if name == "DBSIZE":
        return [n]
    if name == "KEYS":
        return [n, rng.choice([b"*", b"?", b"[a-c]", b"k*", b"\\", b"[", b"*\x00*", b"[a-]"])]
    if name == "SELECT":
        return [n, num()]
    return [n] + [val() for _ in range(rng.randint(0, 2))]  # ECHO, PING


def agree(args, want, got, exact):
    """True if the two replies to args agree (see --exact)."""
    if args[0] == b"KEYS" and isinstance(want, list) and isinstance(got, list):
        return sorted(want) == sorted(got)
    if want == got:
        return True
    if exact and args[0] == b"TTL" and want[:1] == b":" and got[:1] == b":":
        w, g = int(want[1:]), int(got[1:])
        return w >= 0 and g >= 0 and abs(w - g) <= 1
    return False


def clock_tie(args, want, got):
    """EXPIRE/PEXPIRE GT|LT on a relative time: 0 vs 1 depends on the millisecond."""
    flags = {a.upper() for a in args[3:]}
    return (args[0] in (b"EXPIRE", b"PEXPIRE") and flags & {b"GT", b"LT"}
            and {want, got} == {b":0", b":1"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft-kv", required=True, help="the weft-kv binary")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--commands", type=int, default=30000)
    ap.add_argument("--exact", action="store_true",
                    help="take timing effects out; every disagreement left is real")
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rport, wport = free_port(), free_port()
        servers = [
            subprocess.Popen([opts.redis_server, "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--databases", "1", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([opts.weft_kv, "--port", str(wport), "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        try:
            redis, weft = Client(rport), Client(wport)
            rng = random.Random(opts.seed)
            seen = set()
            history = collections.deque(maxlen=8)
            ties = 0

            def resync():
                redis.call([b"FLUSHALL"])
                weft.call([b"FLUSHALL"])
                history.clear()

            def compare(args):
                want, got = redis.call(args), weft.call(args)
                if agree(args, want, got, opts.exact):
                    history.append(args)
                    return
                if opts.exact and clock_tie(args, want, got):
                    nonlocal ties
                    ties += 1
                    resync()
                    return
                signature = (args[0], repr(want)[:60], repr(got)[:60])
                if signature not in seen:
                    seen.add(signature)
                    print("command:", args, "\n  redis-server:", want, "\n  weft-kv:     ", got)
                    if history:
                        print("  after (oldest first):", *history, sep="\n    ")
                resync()

            for _ in range(opts.commands):
                args = command(rng)
                compare(args)
                if opts.exact and args[0] == b"SET" and len(args) > 1 and (
                        {a.upper() for a in args[3:]} & {b"EXAT", b"PXAT"}):
                    compare([b"EXISTS", args[1]])
            print(f"{opts.commands} commands, {len(seen)} distinct disagreements"
                  + (f", {ties} clock ties set aside" if opts.exact else ""))
            return 1 if seen else 0
        finally:
            # SIGKILL: a TSan build of weft-kv defers SIGTERM (see
            # tests/kv/kv_harness.hpp), and nothing here needs a clean exit.
            for s in servers:
                s.kill()
                s.wait()


if __name__ == "__main__":
    sys.exit(main())
