# shellcheck shell=bash
# Sourced by bench/compare_*.sh. peers_dir REPO prints the folder of the
# peer benchmarks (Go, Boost.Fiber, redis): ../shared/peers relative to the
# repository root, never an absolute path. A git work tree that is not the
# main one (its ../shared does not exist) looks relative to the main work
# tree's root instead. If neither exists it prints the first, for the
# caller's "missing ..." message.
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
