#!/usr/bin/env python3
"""Load generators for bench/compare_kv_server.sh (weft-kv vs redis-server).

  kv_server_load.py fanout PORT SUBS MSGS SIZE
      SUBS subscriber connections SUBSCRIBE to one channel; one publisher
      sends MSGS PUBLISH commands of SIZE-byte payloads, pipelined 64 at a
      time; the clock runs from the first PUBLISH until every subscriber
      has received every message. Prints "delivered_per_s=<float>
      published=<n> delivered=<n> seconds=<float>".

  kv_server_load.py multi PORT CONNS TX
      CONNS connections each run MULTI, 5 commands (SET, INCR, HSET,
      LPUSH, LTRIM on keys of their own), EXEC, one transaction in flight
      per connection, TX transactions in all. Prints "tx_per_s=<float>
      tx=<n> seconds=<float>".

Plain sockets and one selector loop: the client is a single Python
process, so it can be the bottleneck; compare servers only within one run
of the script (the same client drives both), and read the servers' CPU
time per operation that the shell script prints next to it.
"""
import selectors
import socket
import sys
import time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, buf, needle_count, needle):
    while buf.count(needle) < needle_count:
        chunk = s.recv(1 << 16)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf += chunk
    return buf


def fanout(port, subs, msgs, size):
    channel = b"bench-fanout"
    payload = b"x" * size
    # A message as a RESP2 subscriber receives it.
    msg = resp(b"message", channel, payload)
    want = len(msg) * msgs
    sockets = []
    for _ in range(subs):
        s = connect(port)
        s.sendall(resp(b"SUBSCRIBE", channel))
        read_until(s, b"", 1, b":1\r\n")
        s.setblocking(False)
        sockets.append(s)
    pub = connect(port)
    sel = selectors.DefaultSelector()
    got = {}
    for s in sockets:
        sel.register(s, selectors.EVENT_READ)
        got[s] = 0
    pub.setblocking(False)
    sel.register(pub, selectors.EVENT_READ)
    batch = resp(b"PUBLISH", channel, payload) * 64
    sent = 0
    in_flight = 0
    replies = b""
    done = 0
    start = time.perf_counter()
    while done < subs:
        if sent < msgs and in_flight < 256:
            n = min(64, msgs - sent)
            data = batch if n == 64 else resp(b"PUBLISH", channel, payload) * n
            pub.setblocking(True)
            pub.sendall(data)
            pub.setblocking(False)
            sent += n
            in_flight += n
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise SystemExit("server closed a connection")
            if s is pub:
                replies += chunk
                k = replies.count(b"\r\n")
                in_flight -= k
                replies = replies[replies.rfind(b"\r\n") + 2:] if k else replies
                continue
            got[s] += len(chunk)
            if got[s] >= want and got[s] - len(chunk) < want:
                done += 1
    seconds = time.perf_counter() - start
    delivered = sum(g // len(msg) for g in got.values())
    print("delivered_per_s=%.0f published=%d delivered=%d seconds=%.3f"
          % (delivered / seconds, sent, delivered, seconds))


def multi(port, conns, tx):
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(conns):
        s = connect(port)
        s.setblocking(False)
        k = "tx:%d" % i
        req = (resp("MULTI") + resp("SET", k + ":s", "v") + resp("INCR", k + ":n")
               + resp("HSET", k + ":h", "f", "v") + resp("LPUSH", k + ":l", "e")
               + resp("LTRIM", k + ":l", 0, 9) + resp("EXEC"))
        state[s] = [req, b""]
        sel.register(s, selectors.EVENT_READ)
    started = 0
    finished = 0
    start = time.perf_counter()
    for s, st in state.items():
        if started < tx:
            s.sendall(st[0])
            started += 1
    # EXEC's reply is the last of the 7: an array of 5 ("*5\r\n").
    while finished < tx:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            st = state[s]
            try:
                chunk = s.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise SystemExit("server closed a connection")
            st[1] += chunk
            # A transaction's replies end with EXEC's array, whose last
            # element (LTRIM's +OK) ends the batch.
            while b"*5\r\n" in st[1]:
                pos = st[1].find(b"*5\r\n")
                end = st[1].find(b"+OK\r\n", st[1].find(b":", pos))
                if end < 0:
                    break
                st[1] = st[1][end + 5:]
                finished += 1
                if started < tx:
                    s.sendall(st[0])
                    started += 1
    seconds = time.perf_counter() - start
    print("tx_per_s=%.0f tx=%d seconds=%.3f" % (finished / seconds, finished, seconds))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "fanout":
        fanout(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "multi":
        multi(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
