#!/usr/bin/env bash
# Regenerates the expected replies in tests/kv/cases/*.txt from the real
# redis-server 7, the reference that weft-kv is judged against.
#
#   tests/kv/cases/regen.sh               every case file next to this script
#   tests/kv/cases/regen.sh strings.txt   only these (paths or bare names)
#
# Environment: REDIS_SERVER, REDIS_CLI (default: from PATH).
#
# The case format (the C++ runner, tests/kv/cases_itest.cpp, reads the same):
#
#   # a comment; comments and blank lines are kept where they are
#   > SET k v          a command line, exactly as typed at redis-cli
#   OK                 the expected output lines (redis-cli --no-raw)
#   >~ KEYS *          unordered: the reply's lines are compared as a set
#                      ("N) " numbering, with redis-cli's padding, stripped;
#                      lines sorted bytewise)
#   ># PTTL k          shape only: every run of digits becomes '<n>'
#   >- TTL k           a TTL in seconds, recorded as is; the runner accepts
#                      one more or one less (a second boundary may pass)
#   proto 3            (a line of its own, outside a block) the file runs
#                      through `redis-cli -3`: RESP3, after HELLO 3
#
# Each file runs on a freshly flushed server through ONE redis-cli process,
# fed on stdin (non-interactive, so redis-cli prints nothing but replies).
# `--no-raw` makes it print typed replies - `(integer) 1`, `"1"`, `(nil)`,
# `(error) ERR ...`, `1) ...` - so a type difference is a test failure,
# which the default raw mode of a non-terminal stdout would hide. After each
# command the script sends `ECHO --itest-reply-end--`, whose reply marks
# where that command's output ends.
#
# This script rewrites every expected block (the lines after a command up
# to the next command, comment or blank line) with what redis-server 7
# printed; review the diff before committing. The server runs as the C++
# runner's reference mode runs it: --save '' --appendonly no --databases 1
# (weft-kv has one database, so SELECT 1 must fail there too).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
server=${REDIS_SERVER:-redis-server}
cli=${REDIS_CLI:-redis-cli}
marker='--itest-reply-end--'

version=$("$server" --version)
if [[ $version != *" v=7."* ]]; then
  echo "regen.sh: need redis-server 7, got: $version" >&2
  exit 1
fi

files=()
if (($# == 0)); then
  files=("$here"/*.txt)
else
  for f in "$@"; do
    if [[ -f $f ]]; then files+=("$f"); else files+=("$here/$(basename "$f")"); fi
  done
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Start the reference server on a free port (retrying if a port is taken).
port=""
for attempt in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 30000))
  "$server" --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no --databases 1 \
    --dir "$tmp" >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if "$cli" -p "$candidate" PING 2>/dev/null | grep -qx PONG; then port=$candidate; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $port ]] && break
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if [[ -z $port ]]; then
  echo "regen.sh: redis-server did not start; its log:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

# normalize <mode>: the C++ runner's normalisation of one command's output.
normalize() {
  case $1 in
    '~') sed -E 's/^ *[0-9]+\) //' | LC_ALL=C sort ;;
    '#') sed -E 's/[0-9]+/<n>/g' ;;
    *) cat ;;
  esac
}

for file in "${files[@]}"; do
  mapfile -t lines <"$file"
  input=""
  commands=0
  proto=()
  for line in "${lines[@]}"; do
    if [[ $line == 'proto 3' ]]; then
      proto=(-3)
    elif [[ $line =~ ^\>[~#-]?\ (.+)$ ]]; then
      input+="${BASH_REMATCH[1]}"$'\n'"ECHO $marker"$'\n'
      commands=$((commands + 1))
    elif [[ $line == '>'* ]]; then
      echo "regen.sh: $file: malformed command line: $line" >&2
      exit 1
    fi
  done

  "$cli" -p "$port" FLUSHALL >/dev/null
  mapfile -t out < <(printf '%s' "$input" | "$cli" -p "$port" "${proto[@]}" --no-raw)

  result=""
  next=0  # index into out
  skipping=0
  lineno=0
  for line in "${lines[@]}"; do
    lineno=$((lineno + 1))
    if [[ $line =~ ^\>([~#-]?)\ (.+)$ ]]; then
      mode=${BASH_REMATCH[1]}
      result+="$line"$'\n'
      reply=()
      while ((next < ${#out[@]})) && [[ ${out[next]} != "\"$marker\"" ]]; do
        reply+=("${out[next]}")
        next=$((next + 1))
      done
      if ((next >= ${#out[@]})); then
        echo "regen.sh: $file:$lineno: no reply end marker after: $line" >&2
        exit 1
      fi
      next=$((next + 1))
      if ((${#reply[@]} > 0)); then
        mapfile -t reply < <(printf '%s\n' "${reply[@]}" | normalize "$mode")
      fi
      for r in "${reply[@]}"; do
        if [[ -z $r || $r == '#'* || $r == '>'* ]]; then
          echo "regen.sh: $file:$lineno: reply line '$r' would read as a comment or command" >&2
          exit 1
        fi
        result+="$r"$'\n'
      done
      skipping=1
    elif [[ -z $line || $line == '#'* || $line == 'proto 3' ]]; then
      result+="$line"$'\n'
      skipping=0
    elif ((!skipping)); then
      echo "regen.sh: $file:$lineno: expected output without a command: $line" >&2
      exit 1
    fi
  done
  printf '%s' "$result" >"$file"
  echo "regen.sh: $(basename "$file"): $commands commands"
done
