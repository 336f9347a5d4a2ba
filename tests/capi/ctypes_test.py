#!/usr/bin/env python3
"""weft's C ABI from a foreign FFI: Python's ctypes drives libweft.so.

    ctypes_test.py LIBWEFT.so PYHELPER.so

Loads libweft.so (nothing but weft.h's functions are reachable) and a small
C test library whose functions it spawns as fibers, and checks: version and
error texts, runtime creation and its errors, spawn/join of C functions
(from the Python thread onto the runtime), cancellation, channels of int64
between Python and fibers (send, recv, timeouts, close), select, and that
every error comes back as a negative errno. Exits non-zero on a failure.
"""
import ctypes as C
import errno
import sys
import time


def main(libweft_path, helper_path):
    weft = C.CDLL(libweft_path)
    helper = C.CDLL(helper_path)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAILED:", what, file=sys.stderr)

    vp = C.c_void_p
    fn_t = C.CFUNCTYPE(vp, vp)  # void *(*)(void *)

    class Config(C.Structure):
        _fields_ = [("struct_size", C.c_uint32), ("workers", C.c_uint32),
                    ("stack_size", C.c_size_t)]

    class SelectCase(C.Structure):
        _fields_ = [("chan", vp), ("elem", vp), ("op", C.c_int), ("result", C.c_int)]

    sig = {
        "weft_version": (C.c_uint32, []),
        "weft_version_string": (C.c_char_p, []),
        "weft_strerror": (C.c_char_p, [C.c_int]),
        "weft_last_error": (C.c_char_p, []),
        "weft_now_ns": (C.c_int64, []),
        "weft_config_init": (None, [C.POINTER(Config)]),
        "weft_runtime_new": (C.c_int, [C.POINTER(Config), C.POINTER(vp)]),
        "weft_runtime_free": (None, [vp]),
        "weft_block_on": (C.c_int, [vp, vp, vp, C.POINTER(vp)]),
        "weft_spawn": (C.c_int, [vp, vp, vp, C.POINTER(vp)]),
        "weft_join": (C.c_int, [vp, C.POINTER(vp)]),
        "weft_cancel": (C.c_int, [vp]),
        "weft_fiber_id": (C.c_uint64, [vp]),
        "weft_chan_new": (C.c_int, [C.c_size_t, C.c_size_t, C.POINTER(vp)]),
        "weft_chan_send": (C.c_int, [vp, vp, C.c_int64]),
        "weft_chan_recv": (C.c_int, [vp, vp, C.c_int64]),
        "weft_chan_close": (None, [vp]),
        "weft_chan_free": (None, [vp]),
        "weft_chan_len": (C.c_size_t, [vp]),
        "weft_select": (C.c_int, [C.POINTER(SelectCase), C.c_size_t, C.c_int64,
                                  C.POINTER(C.c_size_t)]),
        "weft_sleep_ns": (C.c_int, [C.c_int64]),
    }
    for name, (res, args) in sig.items():
        f = getattr(weft, name)
        f.restype, f.argtypes = res, args

    # libweft.so exports weft.h and nothing of the C++ runtime.
    for internal in ("weft_context_swap", "_ZN4weft7RuntimeD1Ev"):
        check(not hasattr(weft, internal), f"{internal} is not exported")

    # --- version and errors
    v = weft.weft_version()
    check(weft.weft_version_string().decode() == f"{v >> 16}.{(v >> 8) & 255}.{v & 255}",
          "version string matches weft_version()")
    check(b"cancelled" in weft.weft_strerror(-errno.ECANCELED), "strerror(-ECANCELED)")
    check(weft.weft_strerror(-errno.EINVAL) == b"Invalid argument", "strerror(-EINVAL)")

    # --- runtime
    cfg = Config()
    weft.weft_config_init(C.byref(cfg))
    check(cfg.struct_size == C.sizeof(Config), "weft_config_init sets struct_size")
    bad = Config(cfg.struct_size, 5000, cfg.stack_size)
    rt = vp()
    check(weft.weft_runtime_new(C.byref(bad), C.byref(rt)) == -errno.EINVAL, "workers 5000 rejected")
    check(b"workers" in weft.weft_last_error(), "the message names workers")
    check(not rt.value, "*out NULL after a failure")
    cfg.workers = 2
    rc = weft.weft_runtime_new(C.byref(cfg), C.byref(rt))
    check(rc == 0 and rt.value, "weft_runtime_new")
    if rc != 0:
        return failures

    double = C.cast(helper.pyhelper_double, vp)
    sum_channel = C.cast(helper.pyhelper_sum_channel, vp)
    sleep_forever = C.cast(helper.pyhelper_sleep_forever, vp)
    self_id = C.cast(helper.pyhelper_self_id, vp)

    # --- block_on and spawn/join of C functions
    out = vp()
    check(weft.weft_block_on(rt, double, vp(21), C.byref(out)) == 0 and out.value == 42,
          "weft_block_on runs a C function")
    fibers = []
    for i in range(100):
        f = vp()
        check(weft.weft_spawn(rt, double, vp(i), C.byref(f)) == 0, "weft_spawn")
        fibers.append(f)
    total = 0
    for f in fibers:
        r = vp()
        check(weft.weft_join(f, C.byref(r)) == 0, "weft_join")
        total += r.value or 0
    check(total == 2 * sum(range(100)), f"100 joined results sum to 9900 (got {total})")

    f = vp()
    weft.weft_spawn(rt, self_id, None, C.byref(f))
    fid = weft.weft_fiber_id(f)
    r = vp()
    weft.weft_join(f, C.byref(r))
    check(fid != 0 and r.value == fid, "the body ran as that fiber")

    # rt NULL from this (plain) thread: no runtime of its own
    check(weft.weft_spawn(None, double, None, C.byref(f)) == -errno.EPERM, "spawn(NULL) -EPERM")
    check(weft.weft_spawn(rt, None, None, C.byref(f)) == -errno.EINVAL, "spawn(fn NULL) -EINVAL")
    check(weft.weft_join(None, None) == -errno.EINVAL, "join(NULL) -EINVAL")

    # cancellation: the body sees -ECANCELED and returns it
    weft.weft_spawn(rt, sleep_forever, None, C.byref(f))
    weft.weft_sleep_ns(2_000_000)
    check(weft.weft_cancel(f) == 0, "weft_cancel")
    weft.weft_join(f, C.byref(r))
    check(C.c_int64(r.value or 0).value == -errno.ECANCELED, "cancelled body saw -ECANCELED")

    # --- channels: Python sends int64s, a fiber sums them
    ch = vp()
    check(weft.weft_chan_new(8, 0, C.byref(ch)) == 0, "weft_chan_new")
    weft.weft_spawn(rt, sum_channel, ch, C.byref(f))
    for i in range(1, 1001):
        x = C.c_int64(i)
        check(weft.weft_chan_send(ch, C.byref(x), -1) == 0, "send")
    weft.weft_chan_close(ch)
    weft.weft_join(f, C.byref(r))
    check(r.value == 500500, f"the fiber received 1..1000 (sum {r.value})")
    x = C.c_int64(1)
    check(weft.weft_chan_send(ch, C.byref(x), 0) == -errno.EPIPE, "send on closed -EPIPE")
    check(weft.weft_chan_recv(ch, C.byref(x), 0) == -errno.EPIPE, "recv on closed -EPIPE")
    weft.weft_chan_free(ch)

    buffered = vp()
    weft.weft_chan_new(8, 2, C.byref(buffered))
    check(weft.weft_chan_recv(buffered, C.byref(x), 0) == -errno.EAGAIN, "recv timeout 0 -EAGAIN")
    t0 = time.monotonic()
    check(weft.weft_chan_recv(buffered, C.byref(x), 2_000_000) == -errno.ETIMEDOUT, "-ETIMEDOUT")
    check(time.monotonic() - t0 >= 0.002, "a timeout never fires early")
    check(weft.weft_chan_send(buffered, None, 0) == -errno.EINVAL, "send(NULL elem) -EINVAL")
    check(weft.weft_chan_recv(buffered, C.byref(x), -2) == -errno.EINVAL, "timeout -2 -EINVAL")
    x = C.c_int64(77)
    weft.weft_chan_send(buffered, C.byref(x), 0)
    check(weft.weft_chan_len(buffered) == 1, "weft_chan_len")

    # --- select over two channels from Python
    other = vp()
    weft.weft_chan_new(8, 2, C.byref(other))
    a, b = C.c_int64(0), C.c_int64(0)
    cases = (SelectCase * 2)(SelectCase(other, C.cast(C.byref(a), vp), 0, 1),
                             SelectCase(buffered, C.cast(C.byref(b), vp), 0, 1))
    fired = C.c_size_t(9)
    check(weft.weft_select(cases, 2, -1, C.byref(fired)) == 0 and fired.value == 1 and
          cases[1].result == 0 and b.value == 77, "select receives the ready case")
    check(weft.weft_select(cases, 2, 0, C.byref(fired)) == -errno.EAGAIN, "select timeout 0")
    weft.weft_chan_free(other)
    weft.weft_chan_free(buffered)

    weft.weft_runtime_free(rt)
    return failures


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    failed = main(sys.argv[1], sys.argv[2])
    print(f"ctypes_test: {'FAILED ' + str(len(failed)) if failed else 'all checks passed'}")
    sys.exit(1 if failed else 0)
