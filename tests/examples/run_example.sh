#!/usr/bin/env bash
# Runs one of the examples of issue 18 and checks what it printed.
#
#   run_example.sh pipeline   BINARY IO
#   run_example.sh work-queue BINARY IO
#   run_example.sh crawler    BINARY IO
#
# IO is the reactor backend (epoll or io_uring). Exits 0 when the example
# did what its README says, 1 with the reason otherwise.
set -euo pipefail

kind=$1 bin=$2 io=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL ($kind, $io): $*" >&2
  exit 1
}

# want_line FILE TEXT: FILE holds the exact line TEXT.
want_line() {
  grep -qxF -- "$2" "$1" || { echo "--- output:" >&2; cat "$1" >&2; fail "no line '$2'"; }
}

case $kind in
pipeline)
  # 300 files of 3..19 lines; the outputs must be the inputs upper-cased
  # and the totals those of wc.
  mkdir "$work/in" "$work/out"
  awk -v dir="$work/in" 'BEGIN {
    for (i = 1; i <= 300; i++)
      for (j = 1; j <= i % 17 + 3; j++)
        print "line " j " of file " i ": the Quick brown fox, jumps over  the lazy dog" > (dir "/f" i ".txt")
  }'
  mkdir "$work/in/subdir" # not a regular file: skipped
  "$bin" --in "$work/in" --out "$work/out" --readers 3 --writers 2 --batch 8 --io "$io" \
    >"$work/stdout" || fail "exit status $?"
  read -r l w c < <(cat "$work"/in/*.txt | wc)
  want_line "$work/stdout" "processed 300 files: $l lines, $w words, $c bytes"
  # Every output is its input upper-cased (the same names, in the same
  # order, concatenated), and nothing else was written.
  (cd "$work/in" && cat ./*.txt) | tr 'a-z' 'A-Z' >"$work/expected"
  (cd "$work/out" && cat ./*.txt) | cmp -s - "$work/expected" || fail "outputs differ from the inputs upper-cased"
  [ "$(ls "$work/out" | wc -l)" -eq 300 ] || fail "not 300 output files"
  # A missing input directory: exit 1 with the reason.
  if "$bin" --in "$work/missing" --out "$work/out" --io "$io" >/dev/null 2>"$work/err"; then
    fail "a missing directory succeeded"
  fi
  grep -qF "weft: read_dir '$work/missing': No such file or directory" "$work/err" ||
    fail "missing-directory error: $(cat "$work/err")"
  ;;
work-queue)
  "$bin" --io "$io" >"$work/stdout" || fail "exit status $?"
  want_line "$work/stdout" "jobs 100: 93 done (68 after a retry, 141 retries), 2 failed, 5 timed out"
  # One attempt each: every job that fails once fails for good.
  "$bin" --io "$io" --attempts 1 --consumers 16 >"$work/stdout" || fail "exit status $?"
  want_line "$work/stdout" "jobs 100: 25 done (0 after a retry, 0 retries), 70 failed, 5 timed out"
  ;;
crawler)
  "$bin" --io "$io" --timeout-ms 2000 >"$work/stdout" || fail "exit status $?"
  want_line "$work/stdout" "fetched 68 URLs: 60 pages ok, 6 not found, 2 timed out, 0 failed"
  "$bin" --io "$io" --pages 200 --hosts 4 --concurrency 6 --per-host 3 --timeout-ms 2000 \
    >"$work/stdout" || fail "exit status $?"
  want_line "$work/stdout" "fetched 228 URLs: 200 pages ok, 20 not found, 8 timed out, 0 failed"
  # The limits held: "in flight at most X (limit C), per host at most Y (limit P)".
  read -r x c y p < <(sed -n 's/^in flight at most \([0-9]*\) (limit \([0-9]*\)), per host at most \([0-9]*\) (limit \([0-9]*\))$/\1 \2 \3 \4/p' "$work/stdout")
  [ -n "${p:-}" ] || fail "no limits line: $(cat "$work/stdout")"
  [ "$x" -le "$c" ] && [ "$y" -le "$p" ] && [ "$x" -ge 1 ] || fail "limits broken: $x/$c, $y/$p"
  # The crawl's deadline cuts it short: exit 1, partial results.
  if "$bin" --io "$io" --pages 100000 --deadline-ms 200 >"$work/stdout"; then
    fail "a crawl past its deadline exited 0"
  fi
  want_line "$work/stdout" "crawl deadline of 200 ms reached: partial results"
  ;;
*)
  fail "unknown example"
  ;;
esac
echo "ok: $kind ($io)"
