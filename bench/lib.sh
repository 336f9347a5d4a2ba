# shellcheck shell=bash
# Helpers sourced by bench/compare_*.sh.

# peers_dir REPO prints the folder of the peer benchmarks (Go, Boost.Fiber,
# redis): ../shared/peers relative to the repository root, never an absolute
# path. A git work tree that is not the main one (its ../shared does not
# exist) looks relative to the main work tree's root instead. If neither
# exists it prints the first, for the caller's "missing ..." message.
peers_dir() {
    local repo=$1 common
    if [ -d "$repo/../shared/peers" ]; then
        (cd "$repo/../shared/peers" && pwd)
        return
    fi
    common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
    if [ -n "$common" ] && [ -d "$(dirname "$common")/../shared/peers" ]; then
        (cd "$(dirname "$common")/../shared/peers" && pwd)
        return
    fi
    echo "$repo/../shared/peers"
}

# kill_server: stops the server the script started (pid in SPID), and only
# that one.
kill_server() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
        SPID=
    fi
}

# fail ROUND MESSAGE: records a failure in $OUT/failures.txt, counts it in
# FAILS.
fail() {
    echo "# round $1 FAILED: $2" | tee -a "$OUT/failures.txt"
    FAILS=$((FAILS + 1))
}

# listening PORT: true if something listens on TCP PORT.
listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# tables_as_csv PREFIX: copies stdin (a script's Markdown summary) to stdout
# and writes each Markdown table in it to PREFIX-1.csv, PREFIX-2.csv, ...
# (bench/tables.py): every compare script's tables as data, one format.
tables_as_csv() { python3 "$(dirname "${BASH_SOURCE[0]}")/tables.py" "$1"; }

# pinned_cpus_ok: in the pinned mode (MODE=pinned), SRV_CPU and CLI_CPU must
# be two different CPUs this process may run on; says why not on stderr.
pinned_cpus_ok() {
    local v
    for v in SRV_CPU CLI_CPU; do
        [[ ${!v} =~ ^[0-9]+$ ]] && taskset -c "${!v}" true 2>/dev/null ||
            { echo "$v=${!v}: not a CPU this process may run on" >&2; return 1; }
    done
    [ "$SRV_CPU" != "$CLI_CPU" ] ||
        { echo "SRV_CPU and CLI_CPU are both ${SRV_CPU}: pinned mode wants two CPUs" >&2; return 1; }
}
