#!/usr/bin/env python3
"""Writes weft-kv's RESP request corpus and checks it against a real Redis.

    tests/kv/corpus/gen_corpus.py                    # (re)write every NAME.bin
    tests/kv/corpus/gen_corpus.py --redis-port 6399  # ... and record NAME.expected
                                                     #     from a running redis-server 7

malformed/NAME.bin is one malformed request (sometimes after requests that
get no reply, like an empty line or "*0"); malformed/NAME.expected is the one
line redis-server replies before it closes the connection, without CRLF.
valid/NAME.bin is well-formed requests (seeds for the fuzzer); Redis must
reply to them without a protocol error and keep the connection open.

With --redis-port every request is sent to that server over a fresh
connection; a malformed one must get exactly one error line and a close, a
valid one no "Protocol error". Start a scratch server first, e.g.
    redis-server --port 6399 --save '' --appendonly no
The committed .expected files were recorded from redis-server 7.0.15.
"""
import argparse
import pathlib
import socket
import sys

INV_COUNT = "-ERR Protocol error: invalid multibulk length"
INV_BULK = "-ERR Protocol error: invalid bulk length"
BIG = 70000  # more than PROTO_INLINE_MAX_SIZE (64 KiB)

# name -> request bytes
MALFORMED = {
    "mbulk_count_alpha": b"*x\r\n",
    "mbulk_count_empty": b"*\r\n",
    "mbulk_count_leading_zero": b"*01\r\n",
    "mbulk_count_minus_zero": b"*-0\r\n",
    "mbulk_count_plus": b"*+1\r\n",
    "mbulk_count_leading_space": b"* 1\r\n",
    "mbulk_count_trailing_space": b"*1 \r\n",
    "mbulk_count_lf_before_cr": b"*1\n\r\n",
    "mbulk_count_over_int_max": b"*2147483648\r\n",
    "mbulk_count_3e9": b"*3000000000\r\n",
    "mbulk_count_below_llong_min": b"*-9223372036854775809\r\n",
    "mbulk_count_21_digits": b"*" + b"1" * 21 + b"\r\n",
    "mbulk_count_after_skipped": b"\r\n\n*0\r\n*-1\r\n   \r\n*x\r\n",
    "mbulk_count_line_too_big": b"*" + b"1" * BIG,
    "mbulk_count_nul_stall": b"*1\x00\r\n" + b"\r\n" * (BIG // 2),
    "bulk_len_minus_one": b"*1\r\n$-1\r\n",
    "bulk_len_minus_zero": b"*1\r\n$-0\r\n",
    "bulk_len_empty": b"*1\r\n$\r\n",
    "bulk_len_leading_space": b"*1\r\n$ 4\r\nPING\r\n",
    "bulk_len_trailing_space": b"*1\r\n$4 \r\nPING\r\n",
    "bulk_len_leading_zero": b"*1\r\n$04\r\nPING\r\n",
    "bulk_len_plus": b"*1\r\n$+4\r\nPING\r\n",
    "bulk_len_hex": b"*1\r\n$0x10\r\n",
    "bulk_len_over_512mb": b"*1\r\n$536870913\r\n",
    "bulk_len_llong_max": b"*1\r\n$9223372036854775807\r\n",
    "bulk_len_llong_min": b"*1\r\n$-9223372036854775808\r\n",
    "bulk_len_2_pow_64": b"*1\r\n$18446744073709551616\r\n",
    "bulk_len_second_element": b"*2\r\n$4\r\nECHO\r\n$-5\r\n",
    "bulk_len_line_too_big": b"*1\r\n$" + b"1" * BIG,
    "bulk_len_nul_stall": b"*1\r\n$\x00\r\n" + b"\r\n" * (BIG // 2),
    "expected_dollar_x": b"*1\r\nx\r\n",
    "expected_dollar_high_byte": b"*1\r\n\xff\r\n",
    "expected_dollar_cr": b"*1\r\n\r\n",
    "expected_dollar_lf": b"*1\r\n\n\r\n",
    "expected_dollar_after_args": b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
    "expected_dollar_star": b"*2\r\n$4\r\nECHO\r\n*1\r\n$4\r\nPING\r\n",
    "expected_dollar_colon": b"*2\r\n$4\r\nECHO\r\n:1\r\n",
    "inline_too_big": b"x" * BIG,
    "inline_too_big_spaces": b"SET k " + b" " * BIG,
    "inline_nul_stall": b"PING\x00\r\n" + b"PING\r\n" * (BIG // 6),
    "inline_leading_nul_stall": b"\x00" + b"\n" * BIG,
    "inline_unbalanced_double": b'ECHO "ab\r\n',
    "inline_unbalanced_single": b"ECHO 'ab\r\n",
    "inline_double_then_char": b'ECHO "ab"c\r\n',
    "inline_single_then_char": b"ECHO 'ab'c\r\n",
    "inline_escaped_closing_quote": b'ECHO "a\\"\r\n',
    "inline_trailing_backslash": b'ECHO "a\\\r\n',
    "inline_quote_mid_token": b"ECHO a'b\r\n",
    "inline_lone_quote": b'"\r\n',
    "inline_unbalanced_cr_inside": b'ECHO "a\rb\r\n',
}

VALID = {
    "ping_inline": b"PING\r\n",
    "ping_inline_lf": b"PING\n",
    "ping_multibulk": b"*1\r\n$4\r\nPING\r\n",
    "set_get": b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
    "pipelined_pings": b"*1\r\n$4\r\nPING\r\n" * 50 + b"PING\r\n" * 50,
    "pipelined_mix": b"*1\r\n$4\r\nPING\r\nECHO \"a b\"\r\n\r\n*0\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n"
    b"  'x'  y\n*-1\r\n\n*2\r\n$4\r\nECHO\r\n$4\r\nPI\r\n\r\nget \"\\x41\\n\" '\\''\r\n",
    "inline_escapes": b'ECHO "\\x41\\x4a\\xzz\\q\\n\\r\\t\\b\\a\\"\\\\"\r\n',
    "inline_single_quotes": b"SET 'it\\'s' 'a\\\\b'\r\n",
    "inline_quote_mid_token": b'ECHO x"a b"\r\n',
    "inline_blanks": b"\x0b\x0cECHO\t\"x\"\x0b\r\n  SET   a  b  \r\n",
    "inline_empty_args": b"SET k \"\"\r\nSET k ''\r\n",
    "binary_bulk": b"*3\r\n$3\r\nSET\r\n$3\r\nbin\r\n$256\r\n" + bytes(range(256)) + b"\r\n",
    "crlf_in_bulk": b"*2\r\n$4\r\nECHO\r\n$8\r\n\r\n*1\r\n$1\r\n\r\n",
    "nul_in_bulk": b"*2\r\n$4\r\nECHO\r\n$3\r\n\x00\x00\x00\r\n",
    "empty_bulk": b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
    "skipped_empty": b"\r\n\n*0\r\n*-1\r\n   \r\n*-9223372036854775808\r\nPING\r\n",
    "lenient_terminators": b"*2\rX$4\rXECHO!!$3\r\x00abc\r\n",
    "big_bulk": b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$40000\r\n" + b"v" * 40000 + b"\r\n",
    "many_args": b"*101\r\n$3\r\nDEL\r\n" + b"$2\r\nk1\r\n" * 100,
    "high_bytes_inline": b"ECHO \xc3\xa9\xff\r\n",
}


def send(port, data, wait=1.0):
    """Sends data on a fresh connection; returns (reply bytes, closed by peer)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(wait)
    out, closed = b"", False
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
    except socket.timeout:
        pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True  # Redis closed while our bytes were still unread
        try:
            out += s.recv(65536)
        except OSError:
            pass
    finally:
        s.close()
    return out, closed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-port", type=int, help="record/check replies of a redis-server on this port")
    args = ap.parse_args()
    root = pathlib.Path(__file__).resolve().parent
    failures = 0
    for kind, table in (("malformed", MALFORMED), ("valid", VALID)):
        d = root / kind
        d.mkdir(exist_ok=True)
        for name, data in sorted(table.items()):
            (d / (name + ".bin")).write_bytes(data)
            if args.redis_port is None:
                continue
            reply, closed = send(args.redis_port, data)
            if kind == "malformed":
                line = reply[:-2].decode("latin-1") if reply.endswith(b"\r\n") else None
                if not closed or line is None or b"\r\n" in reply[:-2] or not line.startswith("-ERR Protocol error: "):
                    print(f"FAIL {kind}/{name}: reply {reply!r}, closed={closed}")
                    failures += 1
                    continue
                (d / (name + ".expected")).write_bytes(reply[:-2])
                print(f"ok   {kind}/{name}: {line}")
            else:
                if closed or b"Protocol error" in reply:
                    print(f"FAIL {kind}/{name}: reply {reply[:200]!r}, closed={closed}")
                    failures += 1
                else:
                    print(f"ok   {kind}/{name}: {len(reply)} reply bytes")
    if args.redis_port is None:
        missing = [n for n in MALFORMED if not (root / "malformed" / (n + ".expected")).exists()]
        if missing:
            print("no .expected yet (run with --redis-port):", " ".join(missing))
            failures += len(missing)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
