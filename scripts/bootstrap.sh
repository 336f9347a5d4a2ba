#!/usr/bin/env bash
# Ensures the Debian packages weft's build, tests and benchmarks need are
# installed. Extra package names given as arguments are ensured too
# (e.g. `scripts/bootstrap.sh redis-tools` for `make demo`).
#
# As root, missing packages are installed with apt-get (one `apt-get update`
# first). Otherwise the missing packages and the command to install them are
# printed and the script exits 1. When nothing is missing it only runs
# dpkg-query and returns in well under a second.
set -euo pipefail

packages=(
  cmake
  ninja-build
  ccache # compiler cache, shared by every build directory and clone on the machine
  g++
  clang
  clang-format
  liburing-dev
  libssl-dev # weft::tls (OpenSSL 3)
  openssl # the real TLS peer of tests/tls (s_server, s_client) and their certificates
  nlohmann-json3-dev # weft::ipc's JSON codec and the JSON snapshots
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libclang-rt-14-dev # sanitizer runtimes for clang++ (make clang/asan/tsan with CXX=clang++)
  pkg-config
  procps
  redis-tools # redis-cli and redis-benchmark: weft-kv's integration tests and make demo
  redis-server # the reference twin: weft-kv's integration suite run against redis-server 7
  nodejs # node-redis 5 over RESP3 against weft-kv and redis-server (tests/kv/node; npm below)
  libtomlplusplus-dev # toml++: the configuration file parser (Config::from_file, WEFT_CONFIG)
  libjemalloc-dev # weft-kv links jemalloc, as Redis does, so freed memory goes back to the kernel
  libdw-dev # elfutils: symbols and source lines of backtraces (src/obs/backtrace.cpp)
  prometheus # promtool: tests/obs and tests/kv (weft-kv --metrics-port) check /metrics pages with `promtool check metrics`
  abigail-tools # abidw/abidiff: the C ABI check against abi/ (scripts/abi.sh, weft_test_abi)
  python3       # the C ABI through Python's ctypes (weft_test_capi_python), tests/kv/differential.py, scripts/mutants.py
  gdb # tools/gdb/weft.py and its test (weft_test_gdb: gdb batch mode, gcore)
  doxygen # make docs: the API reference from include/weft/, warnings as errors
  python3-matplotlib # make bench-charts: docs/charts/*.svg from their data (scripts/bench_charts.py, weft_test_docs_charts)
)

for arg in "$@"; do
  if [[ ! "$arg" =~ ^[a-z0-9][a-z0-9+.:-]*$ ]]; then
    echo "bootstrap: '$arg' is not a Debian package name" >&2
    exit 2
  fi
  packages+=("$arg")
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "bootstrap: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "bootstrap: install by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  # A package unknown to dpkg makes dpkg-query fail; treat it as missing.
  status=$(dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null || true)
  if ! grep -q '^install ok installed$' <<<"$status"; then
    missing+=("$pkg")
  fi
done

# npm (tests/kv/node installs node-redis with `npm ci`): Debian's package,
# unless the nodejs installed brings its own (NodeSource's nodejs does, and
# conflicts with Debian's npm, so it is asked for only when the command is
# missing).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

# ccache's default 5 GB holds about two of our build directories; the g++,
# clang, ASan and TSan builds of CI and of a few work trees need more.
size_ccache() {
  if command -v ccache >/dev/null 2>&1; then
    ccache --max-size=25G >/dev/null 2>&1 || true
  fi
}

if ((${#missing[@]} == 0)); then
  size_ccache
  exit 0
fi

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"

if [[ "$(id -u)" != 0 ]]; then
  echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
  echo "bootstrap: install them as root with:" >&2
  echo "  sudo sh -c '$install_cmd'" >&2
  exit 1
fi

echo "bootstrap: installing missing Debian packages: ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
size_ccache
