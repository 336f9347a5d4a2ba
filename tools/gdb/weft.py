# weft's gdb commands (docs/observability.md, "gdb"):
#
#   info weft-fibers   every fiber of every live runtime: id, name, state,
#                      and for a parked fiber what it waits on
#   weft-bt ID         the backtrace of parked fiber ID, unwound from the
#                      context it saved when it parked
#
# Load it with `source tools/gdb/weft.py` (or gdb -x). Works on a live
# process (run or attach) and on a core file: it only reads memory and the
# debug information of libweft (the runtime list weft::detail::
# g_debug_runtimes, RuntimeImpl's fiber registry, Fiber, Waiter). x86-64.
#
# weft-bt does not write registers (a core file has none to write): for the
# one command, a frame unwinder makes the selected thread's innermost frame
# unwind into the fiber's saved registers (the frame weft_context_swap
# pushed: MXCSR/x87 word, r12, r13, r14, r15, rbx, rbp, return address), so
# gdb's own unwinder walks the fiber's stack from there with the binaries'
# CFI. Frame #0 of that walk is the thread's own and is not printed.

import gdb
import gdb.unwinder

_SHARDS_FIELD = "registry_"
_PARKED = 3      # ParkState kParked (src/fiber/fiber.hpp)
_DUMPING = 5     # kDumping: pinned by a dump, still parked
_DUMP_WOKEN = 6  # kDumpWoken: pinned, woken meanwhile


def _field(value, name):
    """value[name], looking through base classes (std::atomic's _M_i)."""
    try:
        return value[name]
    except gdb.error:
        for f in value.type.strip_typedefs().fields():
            if f.is_base_class:
                try:
                    return _field(value[f], name)
                except gdb.error:
                    continue
        raise


def _string(value):
    """A std::string's text, read from memory (no pretty-printer needed)."""
    length = int(value["_M_string_length"])
    if length == 0:
        return ""
    ptr = int(value["_M_dataplus"]["_M_p"])
    data = gdb.selected_inferior().read_memory(ptr, min(length, 256))
    return bytes(data).decode("utf-8", "replace")


def _enum_name(value):
    text = str(value)
    return text.rsplit("::", 1)[-1]


def _runtimes():
    sym = gdb.lookup_global_symbol("weft::detail::g_debug_runtimes")
    if sym is None:
        raise gdb.GdbError("weft: no weft runtime list in this program "
                           "(weft::detail::g_debug_runtimes: libweft without debug information?)")
    rt = sym.value()
    while int(rt) != 0:
        yield rt
        rt = rt["debug_next_"]


def _fibers():
    for rt in _runtimes():
        shards = rt.dereference()[_SHARDS_FIELD]["_M_elems"]
        lo, hi = shards.type.strip_typedefs().range()
        for i in range(lo, hi + 1):
            f = shards[i]["head"]
            while int(f) != 0:
                yield f.dereference()
                f = f.dereference()["reg_next"]


def _park(f):
    return int(_field(f["park"], "_M_i"))


def _wait(f):
    """(reason, argument text) of a parked fiber, else None."""
    if _park(f) not in (_PARKED, _DUMPING, _DUMP_WOKEN):
        return None
    w = f["parked_on"]
    if int(w) == 0:
        return None
    w = w.dereference()
    reason = _enum_name(w["reason_"])
    arg = int(w["arg_"])
    if reason in ("chan_send", "chan_recv", "mutex", "condvar", "rwlock", "semaphore",
                  "barrier", "event", "scope"):
        return reason, "0x%x" % arg
    if reason == "join":
        return reason, "fiber %d" % arg
    if reason in ("io_read", "io_write"):
        return reason, "fd %d" % arg
    if reason == "sleep":
        signed = arg - (1 << 64) if arg >= (1 << 63) else arg
        return reason, "until cancelled" if signed < 0 else "until %d ns" % signed
    if reason == "select":
        return reason, "%d cases" % arg
    return reason, ""


class InfoWeftFibers(gdb.Command):
    """List the fibers of every live weft runtime: id, name, state, wait reason."""

    def __init__(self):
        super().__init__("info weft-fibers", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        n = 0
        for f in _fibers():
            n += 1
            state = _enum_name(f["state"])
            line = "fiber %d \"%s\" %s" % (int(f["id"]), _string(f["name"]), state)
            w = _wait(f)
            if w is not None:
                line += ": %s %s" % w if w[1] else ": %s" % w[0]
            gdb.write(line.rstrip() + "\n")
        gdb.write("%d fibers\n" % n)


class _FrameId:
    """A frame id for create_unwind_info (gdb.unwinder.FrameId is gdb 14+)."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _FiberUnwinder(gdb.unwinder.Unwinder):
    """While `regs` is set: the selected thread's innermost frame unwinds
    into those registers (a parked fiber's saved context)."""

    def __init__(self):
        super().__init__("weft-fiber")
        self.regs = None
        self.frame = None  # (sp, pc, level) of the frame it answers for

    def __call__(self, pending):
        if self.regs is None:
            return None
        sp = pending.read_register("rsp")
        pc = pending.read_register("rip")
        # The innermost frame that is not an inline one (those never reach
        # a Python unwinder): the first asked about, and only that one.
        if self.frame is None:
            self.frame = (int(sp), int(pc), pending.level())
        elif self.frame[:2] != (int(sp), int(pc)):
            return None
        # The hooked frame's id takes the fiber's stack pointer, not the
        # thread's: gdb refuses to unwind into a frame "inner to" the one
        # before it, and the fiber's stack may lie below the thread's.
        info = pending.create_unwind_info(_FrameId(self.regs["rsp"], pc))
        for name, value in self.regs.items():
            info.add_saved_register(name, value)
        return info


_unwinder = _FiberUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


class WeftBt(gdb.Command):
    """weft-bt ID: backtrace of parked fiber ID from its saved context."""

    def __init__(self):
        super().__init__("weft-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            want = int(arg.strip())
        except ValueError:
            raise gdb.GdbError("usage: weft-bt FIBER-ID")
        for f in _fibers():
            if int(f["id"]) != want:
                continue
            if _wait(f) is None:
                raise gdb.GdbError("weft: fiber %d is not parked (state %s)"
                                   % (want, _enum_name(f["state"])))
            if gdb.selected_thread() is None:
                raise gdb.GdbError("weft: no thread selected")
            sp = int(f["ctx"]["sp_"])
            u64 = gdb.lookup_type("unsigned long")
            word = lambda off: gdb.Value(sp + off).cast(u64.pointer()).dereference()
            ptr = gdb.lookup_type("void").pointer()
            # weft_context_swap's saved frame (src/context/switch_x86_64.S).
            regs = {"r12": word(8), "r13": word(16), "r14": word(24), "r15": word(32),
                    "rbx": word(40), "rbp": word(48),
                    "rip": word(56).cast(ptr), "rsp": gdb.Value(sp + 64).cast(ptr)}
            _unwinder.regs = regs
            _unwinder.frame = None
            gdb.invalidate_cached_frames()
            try:
                text = gdb.execute("bt", to_string=True)
                hooked = _unwinder.frame
            finally:
                _unwinder.regs = None
                _unwinder.frame = None
                gdb.invalidate_cached_frames()
            gdb.write("fiber %d \"%s\" (%s %s):\n" % ((want, _string(f["name"])) + _wait(f)))
            # Frames up to the hooked one are the thread's own.
            first = hooked[2] + 1 if hooked is not None else 0
            show = False
            for line in text.splitlines():
                if line.startswith("#"):
                    show = int(line[1:].split()[0]) >= first
                if show:
                    gdb.write(line + "\n")
            return
        raise gdb.GdbError("weft: no fiber %d" % want)


InfoWeftFibers()
WeftBt()
