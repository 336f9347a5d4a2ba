#!/usr/bin/env python3
"""Drives one step of the tutorial's chat server (examples/tutorial/stepN)
over TCP and checks what it says, as docs/tutorial/ describes.

    drive_tutorial.py STEP BINARY [--no-signals]

Starts BINARY on port 0 (it prints the address it got), connects clients,
and exits 0 when every expected line arrived, 1 with the reason otherwise.
Every wait is for an event (a line, the end of a stream, the process's
exit), bounded by TIMEOUT seconds only so that a broken server fails the
test instead of hanging it. --no-signals (TSan builds, see CMakeLists.txt)
leaves out what needs a signal delivered to the server: step 5 then only
checks the rooms, step 6 only that the report fiber does not get in the way.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading

TIMEOUT = 30.0


class Fail(Exception):
    pass


class Client:
    def __init__(self, port, name):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def expect(self, text):
        """Reads until `text` has arrived; consumes everything up to it."""
        want = text.encode()
        while want not in self.buf:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                raise Fail(f"{self.name}: no {text!r} within {TIMEOUT} s; got {self.buf!r}")
            if not data:
                raise Fail(f"{self.name}: end of stream before {text!r}; got {self.buf!r}")
            self.buf += data
        before, _, self.buf = self.buf.partition(want)
        return before.decode()

    def expect_eof(self):
        while True:
            data = self.sock.recv(4096)
            if not data:
                return
            self.buf += data

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def close(self):
        self.sock.close()


class Server:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        m = re.fullmatch(r"chat: listening on 127\.0\.0\.1:(\d+)\n", first)
        if not m:
            self.proc.kill()
            raise Fail(f"first line {first!r}; stderr: {self.proc.stderr.read()}")
        self.port = int(m.group(1))
        # stderr is read as it comes, so that a large report cannot fill the pipe.
        self.err = []
        self.err_cond = threading.Condition()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self):
        for line in self.proc.stderr:
            with self.err_cond:
                self.err.append(line)
                self.err_cond.notify_all()

    def stderr_until(self, text):
        with self.err_cond:
            if not self.err_cond.wait_for(lambda: any(text in l for l in self.err), TIMEOUT):
                raise Fail(f"stderr: no {text!r} within {TIMEOUT} s; got {''.join(self.err)!r}")
            return "".join(self.err)

    def client(self, name):
        return Client(self.port, name)

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Fail(f"still running {TIMEOUT} s after signal {sig}")
        return rc, self.proc.stdout.read()


def shut_down(server, sig):
    """Sends sig; the server must say so and exit 0."""
    rc, out = server.stop(sig)
    if rc != 0 or out != "chat: shut down\n":
        raise Fail(f"after signal {sig}: exit status {rc}, stdout {out!r}")


def enter(server, name, room):
    c = server.client(name)
    c.expect("room? ")
    c.send(room)
    c.expect(f"* {name} joined {room}\n")
    return c


def step1(binary):
    s = Server(binary)
    try:
        a = s.client("guest1")
        a.expect("welcome, guest1\n")
        b = s.client("guest2")
        b.expect("welcome, guest2\n")
        a.send("hello")
        a.expect("guest1: hello\n")
        b.send("hi")
        b.expect("guest2: hi\n")
    finally:
        s.stop()


def step2(binary):
    s = Server(binary)
    try:
        a = s.client("guest1")
        a.expect("* guest1 joined\n")
        b = s.client("guest2")
        b.expect("* guest2 joined\n")
        a.expect("* guest2 joined\n")
        a.send("hello all")
        a.expect("guest1: hello all\n")
        b.expect("guest1: hello all\n")
        b.close()
        a.expect("* guest2 left\n")
    finally:
        s.stop()


def step3(binary):
    s = Server(binary, "400")  # idle limit: 400 ms
    try:
        a = s.client("guest1")
        a.expect("* guest1 joined\n")
        b = s.client("guest2")
        b.expect("* guest2 joined\n")
        a.send("anyone?")
        b.expect("guest1: anyone?\n")
        # Both fall silent: each is told, and the server closes its end.
        a.expect("* you were idle too long, bye\n")
        a.expect_eof()
        b.expect("* you were idle too long, bye\n")
        b.expect_eof()
    finally:
        s.stop()


def step4(binary):
    s = Server(binary)
    try:
        a = enter(s, "guest1", "lobby")
        b = enter(s, "guest2", "lobby")
        c = enter(s, "guest3", "games")
        a.send("hello lobby")
        b.expect("guest1: hello lobby\n")
        a.send("/close")
        for x in (a, b):
            x.expect("* guest1 closed the room\n")
            x.expect("* bye\n")
            x.expect_eof()
        # The other room goes on, and guest3 never heard the lobby.
        c.send("still here")
        seen = c.expect("guest3: still here\n")
        if "lobby" in seen:
            raise Fail(f"guest3 saw the lobby's messages: {seen!r}")
        # A closed room can be opened again.
        enter(s, "guest4", "lobby")
    finally:
        s.stop()


NO_SIGNALS = False


def step5(binary, sig=signal.SIGTERM):
    s = Server(binary)
    try:
        a = enter(s, "guest1", "lobby")
        b = enter(s, "guest2", "games")
        if NO_SIGNALS:
            return
        shut_down(s, sig)
        for x in (a, b):
            x.expect("* bye\n")
            x.expect_eof()
    finally:
        s.stop()


def step6(binary):
    s = Server(binary)
    try:
        a = enter(s, "guest1", "lobby")  # kept open while the report is written
        if NO_SIGNALS:
            a.send("hello")
            a.expect("guest1: hello\n")
            return
        s.proc.send_signal(signal.SIGUSR1)
        err = s.stderr_until("chat: end of report")
        for want in ("fibers alive", "weft_fiber_spawned_total", "session guest1", "room lobby",
                     "report", "user=guest1", "cancellation tree"):
            if want not in err:
                raise Fail(f"report without {want!r}: {err!r}")
        shut_down(s, signal.SIGINT)
        a.expect("* bye\n")
    finally:
        s.stop()


def main():
    global NO_SIGNALS
    step, binary = sys.argv[1], sys.argv[2]
    NO_SIGNALS = "--no-signals" in sys.argv[3:]
    try:
        globals()["step" + step](binary)
    except (Fail, OSError) as e:
        print(f"FAIL (step {step}): {e}", file=sys.stderr)
        return 1
    print(f"step {step}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
