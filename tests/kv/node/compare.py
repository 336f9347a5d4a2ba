#!/usr/bin/env python3
"""Runs resp3_client.mjs (node-redis 5 over RESP3) against weft-kv and redis-server, compares.

Starts both servers on free ports (redis-server with --save '' --appendonly
no --databases 1, as the reference twin), runs the node script against each
with the node_modules of --modules (installed there by `npm ci` from this
directory's package-lock.json: tests/kv/CMakeLists.txt's setup test does it),
and compares the two outputs line by line. Exit 0 when they are equal and
the script succeeded against both; 1 with a unified diff otherwise.
"""
import argparse
import difflib
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, deadline_s=30):
    """Waits until the server on `port` answers PING (or exits: then fails)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not answer PING in {deadline_s} s")


def run_script(node, modules, port):
    # The script imports 'redis' as an ES module, found from the script's
    # own directory up: it runs from a copy next to the node_modules.
    script = os.path.join(modules, "resp3_client.mjs")
    with open(os.path.join(HERE, "resp3_client.mjs"), "rb") as src, open(script, "wb") as dst:
        dst.write(src.read())
    r = subprocess.run([node, script, str(port)], capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft-kv", required=True)
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--node", default="node")
    ap.add_argument("--modules", required=True,
                    help="the directory whose node_modules holds node-redis (npm ci ran there)")
    opts = ap.parse_args()
    if not os.path.isdir(os.path.join(opts.modules, "node_modules", "redis")):
        print(f"no node-redis in {opts.modules}/node_modules (did the npm ci setup test run?)")
        return 1

    with tempfile.TemporaryDirectory() as rdir, tempfile.TemporaryDirectory() as wdir:
        rport, wport = free_port(), free_port()
        servers = [
            subprocess.Popen([opts.redis_server, "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--databases", "1",
                              "--dir", rdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([opts.weft_kv, "--port", str(wport), "--dir", wdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        try:
            wait_ready(rport, servers[0])
            wait_ready(wport, servers[1])
            results = {}
            for name, port in (("redis-server", rport), ("weft-kv", wport)):
                rc, out, err = run_script(opts.node, opts.modules, port)
                results[name] = out
                if rc != 0:
                    print(f"resp3_client.mjs failed against {name} (exit {rc}):\n{err}{out}")
                    return 1
            want, got = results["redis-server"], results["weft-kv"]
            steps = len(want.splitlines())
            if want != got:
                sys.stdout.writelines(difflib.unified_diff(
                    want.splitlines(True), got.splitlines(True), "redis-server", "weft-kv"))
                print("node-redis 5 (RESP3): weft-kv differs from redis-server")
                return 1
            print(f"node-redis 5 (RESP3): {steps} steps, the same against weft-kv and redis-server")
            return 0
        finally:
            # SIGKILL: a TSan build of weft-kv defers SIGTERM (kv_harness.hpp).
            for s in servers:
                s.kill()
                s.wait()


if __name__ == "__main__":
    sys.exit(main())
