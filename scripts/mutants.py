#!/usr/bin/env python3
"""Runs the mutant catalogue (tests/mutants/*.patch): each planted bug must make its test fail.

    scripts/mutants.py [--pattern PAT] [--base REF] [--timeout S] [--check-clean]
    scripts/mutants.py --check-apply [--source DIR]
    make mutants [MUTANTS=PAT]

A mutant file is comment lines, then a patch that `git apply` accepts from the
repository root:

    # mutant: <one line: the bug it plants>
    # test: <ctest test name that must fail>
    # target: <cmake target to build, if not the test's name>
    # filter: <optional gtest filter (GTEST_FILTER) to run only the tests that catch it>
    # repeat: <optional: run the test this many times (GTEST_REPEAT), for a race
    #          caught in only some runs>
    # why: <optional: what the test checks that catches it>
    diff --git a/src/... b/src/...

What happens: the committed tree at REF (default HEAD: commit what you want
tested) is exported into build-mutants/src, configured once into
build-mutants/build (RelWithDebInfo, -Werror, no benchmarks; ccache makes the
first build cheap; --jobs, default 2, as the machine is shared). Then for each mutant, in turn: apply the patch (a patch
that does not apply is an error), build only its target, run its test through
ctest (so the test's registered environment applies) with --timeout S, and
restore the tree. The test must fail: a hang counts as caught (the per-test
watchdog aborts after 2 min; ctest's timeout is the last resort), with the
time it took. The table lists each mutant, the test, the result (caught,
SURVIVED, APPLY FAILED, BUILD FAILED), the time to fail and what failed (the
first failed gtest case, the watchdog's test, or ctest's timeout); it is also
written to build-mutants/table.md, each run's output to build-mutants/logs/.
Exit status 1 if any mutant survived or could not be applied or built.

--check-clean first runs each (test, filter) once without mutants: a test
that fails on the clean tree catches nothing.

--check-apply only checks that every patch has a valid header and that
`git apply --check` accepts it against the source tree (DIR, default the
repository root) as it is: nothing is built. ctest runs it
(weft_test_mutants_apply), so a change that moves code under a mutant
fails the suite until the patch is planted again where the logic now is.

For a before/after comparison against an older tree: --base <old commit>
--map new_test=old_test,... (tests that were renamed since) --no-filter (the
filters name tests that may not exist there).
"""
import argparse
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build-mutants"
SRC = WORK / "src"
BUILD = WORK / "build"
LOGS = WORK / "logs"


class Mutant:
    def __init__(self, path):
        self.path = path
        self.name = path.stem
        self.fields = {}
        self.patch = ""
        lines = path.read_text().splitlines(keepends=True)
        i = 0
        while i < len(lines) and lines[i].startswith("#"):
            m = re.match(r"#\s*(\w+):\s*(.*?)\s*$", lines[i])
            if m:
                key = m.group(1).lower()
                # A repeated key continues the previous value (long 'why' lines).
                self.fields[key] = (self.fields[key] + " " + m.group(2)).strip() \
                    if key in self.fields else m.group(2)
            i += 1
        self.patch = "".join(lines[i:])
        self.test = self.fields.get("test", "")
        self.target = self.fields.get("target", "") or self.test
        self.filter = self.fields.get("filter", "")
        self.repeat = self.fields.get("repeat", "")
        self.problem = None
        if not self.fields.get("mutant"):
            self.problem = "no '# mutant:' line"
        elif not self.test:
            self.problem = "no '# test:' line"
        elif self.repeat and not (self.repeat.isdigit() and int(self.repeat) > 0):
            self.problem = "'# repeat:' must be a positive count"
        elif not self.patch.startswith("diff --git"):
            self.problem = "the patch must follow the header ('diff --git ...')"


# The command running now: it and its children (ninja, the compilers, the
# test) form a process group of their own, ended with the runner.
_child = None


def _stop(signo, _frame):
    if _child is not None and _child.poll() is None:
        os.killpg(_child.pid, signal.SIGKILL)
    sys.exit(128 + signo)


def run(cmd, log=None, env=None, cwd=None, check=False):
    global _child
    _child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              start_new_session=True)
    stdout, _ = _child.communicate()
    out = subprocess.CompletedProcess(cmd, _child.returncode, stdout)
    _child = None
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(map(str, cmd)) + "\n" + out.stdout + "\n")
    if check and out.returncode != 0:
        sys.stderr.write(out.stdout)
        sys.exit(f"mutants: {' '.join(map(str, cmd))} failed")
    return out


def fmt_time(s):
    return f"{s:.1f} s" if s < 600 else f"{s / 60:.1f} min"


def prepare(base):
    """Exports the tree at base into SRC (fresh) and configures BUILD (kept)."""
    sha = run(["git", "rev-parse", "--verify", base + "^{commit}"], cwd=ROOT, check=True).stdout.strip()
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", sha], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(SRC)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        sys.exit("mutants: git archive failed")
    # A private repository in the scratch tree: patches apply with git apply,
    # and checkout/clean restore the tree exactly after each mutant.
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=mutants", "-c", "user.email=mutants@localhost",
                 "commit", "-q", "-m", "base " + sha]):
        run(cmd, cwd=SRC, check=True)
    if not (BUILD / "build.ninja").exists():
        run(["cmake", "-S", str(SRC), "-B", str(BUILD), "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DWEFT_WERROR=ON", "-DWEFT_BUILD_BENCH=OFF"],
            log=WORK / "configure.log", check=True)
    return sha


def restore():
    run(["git", "checkout", "-q", "--", "."], cwd=SRC, check=True)
    run(["git", "clean", "-fdq"], cwd=SRC, check=True)


def build(target, log, jobs):
    return run(["cmake", "--build", str(BUILD), "--target", target, "-j", str(jobs)],
               log=log).returncode == 0


def run_test(test, gfilter, timeout, log, repeat=""):
    """Runs one ctest test; returns (passed, seconds, what failed)."""
    env = dict(os.environ)
    env.pop("GTEST_FILTER", None)
    env.pop("GTEST_REPEAT", None)
    if gfilter:
        env["GTEST_FILTER"] = gfilter
    if repeat:
        env["GTEST_REPEAT"] = repeat
    t0 = time.monotonic()
    out = run(["ctest", "--test-dir", str(BUILD), "-R", f"^{re.escape(test)}$", "--no-tests=error",
               "--output-on-failure", "--timeout", str(timeout)], log=log, env=env)
    secs = time.monotonic() - t0
    text = out.stdout
    what = ""
    m = re.search(r"WATCHDOG: test (\S+)", text)
    if m:
        what = "hang: " + m.group(1)
    elif "***Timeout" in text:
        what = f"hang: ctest timeout {timeout} s"
    else:
        m = re.search(r"^\[  FAILED  \] (\S+)", text, re.M)
        if m:
            what = m.group(1)
        elif "No tests were found" in text:
            what = "no such test"
        elif out.returncode != 0:
            m = re.search(r"\*\*\*(\w[\w ]*)", text)
            what = m.group(1).strip() if m else "failed"
    passed = out.returncode == 0
    if not passed and what == "no such test":
        passed = None  # neither caught nor survived: a broken catalogue entry
    return passed, secs, what


def check_apply(source):
    """Every patch's header is valid and `git apply --check` accepts it in SOURCE."""
    files = sorted((source / "tests" / "mutants").glob("*.patch"))
    if not files:
        print(f"mutants: no tests/mutants/*.patch under {source}")
        return 1
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=source, stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        print(f"mutants: {source} is not a git checkout (a source tarball?): skipped")
        return 77  # ctest's SKIP_RETURN_CODE
    bad = []
    for f in files:
        m = Mutant(f)
        if m.problem:
            bad.append(f"{m.name}: bad header: {m.problem}")
            continue
        r = subprocess.run(["git", "apply", "--check", "-"], cwd=source, input=m.patch, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            bad.append(f"{m.name}: does not apply: {r.stdout.strip().splitlines()[0] if r.stdout.strip() else 'git apply failed'}")
    for b in bad:
        print("  " + b)
    print(f"mutants: {len(files) - len(bad)} of {len(files)} patches apply to {source}" +
          ("" if not bad else "; plant each failing one again where its logic lives now "
           "(tests/mutants/README.md)"))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pattern", default="",
                    help="run the mutants whose file name contains PAT (or matches it as a glob); "
                         "several patterns separated by commas")
    ap.add_argument("--base", default="HEAD", help="the commit whose tree is mutated (HEAD)")
    ap.add_argument("--timeout", type=int, default=900, help="ctest timeout per run, s (900)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel build jobs (2)")
    ap.add_argument("--check-clean", action="store_true",
                    help="first check that every test passes without its mutant")
    ap.add_argument("--map", default="", help="new=old,...: test names to use instead (old trees)")
    ap.add_argument("--no-filter", action="store_true", help="ignore the '# filter:' lines")
    ap.add_argument("--check-apply", action="store_true",
                    help="only check each patch's header and that it applies to the source tree")
    ap.add_argument("--source", default=str(ROOT), help="the tree --check-apply checks (the repository)")
    opts = ap.parse_args()
    if opts.check_apply:
        return check_apply(Path(opts.source))
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    files = sorted((ROOT / "tests" / "mutants").glob("*.patch"))
    pats = [p for p in opts.pattern.split(",") if p]
    pat = opts.pattern
    if pats:
        def wanted(stem):
            return any(fnmatch.fnmatch(stem, p) if any(c in p for c in "*?[") else p in stem
                       for p in pats)
        files = [f for f in files if wanted(f.stem)]
    if not files:
        sys.exit(f"mutants: no tests/mutants/*.patch matches '{pat}'")
    mutants = [Mutant(f) for f in files]
    rename = dict(kv.split("=", 1) for kv in opts.map.split(",") if kv)
    for m in mutants:
        m.test = rename.get(m.test, m.test)
        m.target = rename.get(m.target, m.target)
        if opts.no_filter:
            m.filter = ""

    WORK.mkdir(exist_ok=True)
    if LOGS.exists():
        shutil.rmtree(LOGS)
    LOGS.mkdir()
    sha = prepare(opts.base)
    print(f"mutants: {len(mutants)} against {sha[:12]} ({opts.base}), scratch tree {SRC}", flush=True)

    if opts.check_clean:
        for test, target, gfilter in sorted({(m.test, m.target, m.filter) for m in mutants
                                             if not m.problem}):
            log = LOGS / f"clean-{test}.log"
            if not build(target, log, opts.jobs):
                sys.exit(f"mutants: {target} does not build on the clean tree (see {log})")
            passed, secs, what = run_test(test, gfilter, opts.timeout, log)
            print(f"  clean {test} {gfilter or ''}: {'passes' if passed else 'FAILS: ' + what}"
                  f" ({fmt_time(secs)})", flush=True)
            if not passed:
                sys.exit(f"mutants: {test} fails without a mutant; fix that first (see {log})")

    rows = []
    for m in mutants:
        log = LOGS / f"{m.name}.log"
        shown = m.test + (f" [{m.filter}]" if m.filter else "") + (f" x{m.repeat}" if m.repeat else "")
        if m.problem:
            rows.append((m.name, shown, "BAD HEADER", "", m.problem))
            print(f"  {m.name}: BAD HEADER: {m.problem}", flush=True)
            continue
        patch = WORK / "current.patch"
        patch.write_text(m.patch)
        if run(["git", "apply", str(patch)], cwd=SRC, log=log).returncode != 0:
            rows.append((m.name, shown, "APPLY FAILED", "", "see " + str(log)))
            print(f"  {m.name}: APPLY FAILED", flush=True)
            restore()
            continue
        try:
            if not build(m.target, log, opts.jobs):
                rows.append((m.name, shown, "BUILD FAILED", "", "see " + str(log)))
                print(f"  {m.name}: BUILD FAILED", flush=True)
                continue
            passed, secs, what = run_test(m.test, m.filter, opts.timeout, log, m.repeat)
            result = "caught" if passed is False else ("SURVIVED" if passed else "NO SUCH TEST")
            rows.append((m.name, shown, result, fmt_time(secs), what))
            print(f"  {m.name}: {result} in {fmt_time(secs)} {what}", flush=True)
        finally:
            restore()

    headers = ("mutant", "test [filter]", "result", "time", "what failed")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print()
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    bad = [r for r in rows if r[2] != "caught"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} mutants caught" +
          (f"; not caught: {', '.join(r[0] for r in bad)}" if bad else ""))
    with open(WORK / "table.md", "w") as f:
        f.write(f"Mutants against {sha[:12]}\n\n| " + " | ".join(headers) + " |\n|" +
                "---|" * len(headers) + "\n")
        for r in rows:
            f.write("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
