#!/usr/bin/env bash
# Usage: scripts/configure.sh <build-dir> <cmake arguments...>
#
# Used by the Makefile: runs `cmake -S . -B <build-dir> <arguments>` only when
# the build directory needs it, so that `make test` twice in a row does not
# reconfigure. Needed means:
#   - the directory has no build.ninja or no CMakeCache.txt (never configured,
#     or a configure failed), or it was configured for another generator or
#     another compiler: the cache is deleted first and CMake starts fresh.
#     (CMake itself would delete the cache on a compiler change and silently
#     drop every other -D given with it.)
#   - a -DNAME=VALUE argument differs from the cached value (for example the
#     directory was configured by hand with other options): CMake is re-run
#     on the existing cache.
#   - bench/CMakeLists.txt appeared after the directory was configured with
#     benchmarks enabled (the root CMakeLists.txt only looks for it at
#     configure time).
# Otherwise it does nothing: Ninja re-runs CMake by itself when a
# CMakeLists.txt changes.
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 <build-dir> <cmake arguments...>" >&2
  exit 2
fi
dir=$1
shift
cache=$dir/CMakeCache.txt

# cached <NAME>: the value of NAME in the cache, empty if absent.
cached() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n1; }

reason=""
fresh=0
if [[ ! -f $dir/build.ninja || ! -f $cache ]]; then
  reason="not configured yet"
  fresh=1
elif [[ "$(cached CMAKE_GENERATOR)" != Ninja ]]; then
  reason="configured for generator '$(cached CMAKE_GENERATOR)', not Ninja"
  fresh=1
else
  for arg in "$@"; do
    [[ $arg == -D*=* ]] || continue
    kv=${arg#-D}
    name=${kv%%=*}
    name=${name%%:*} # -DNAME:TYPE=VALUE
    want=${kv#*=}
    have=$(cached "$name")
    if [[ $name == CMAKE_*_COMPILER ]]; then
      # CMake caches the compiler as found on PATH (symlinks not followed)
      # and compares that string.
      want=$(command -v "$want" 2>/dev/null || echo "$want")
      if [[ $have != "$want" ]]; then
        reason="$name is '$have', want '$want'"
        fresh=1
        break
      fi
    elif [[ $have != "$want" ]]; then
      reason="$name is '$have', want '$want'"
    fi
  done
  if [[ -z $reason && -f bench/CMakeLists.txt && ! -d $dir/bench && $(cached WEFT_BUILD_BENCH) != OFF ]]; then
    reason="bench/CMakeLists.txt appeared since the last configure"
  fi
fi

[[ -n $reason ]] || exit 0

echo "configure: $dir: $reason"
if ((fresh)); then
  # Objects live under CMakeFiles/ too; only the configure state goes.
  rm -f "$dir/CMakeCache.txt"
  rm -rf "$dir"/CMakeFiles/[0-9]*.[0-9]*
fi
set -x
cmake -S . -B "$dir" "$@"
