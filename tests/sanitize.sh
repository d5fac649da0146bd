#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run: builds pgfailover with
# gcc -fsanitize=address,undefined in its own build directory and runs the unit
# tests and the integration test integration.failover (the CLI and the library
# are instrumented; the PostgreSQL servers are not). Every report of either
# sanitizer is written to a log directory; any report, or any failing test,
# fails the run.
#
#   tests/sanitize.sh              unit tests + integration.failover
#   tests/sanitize.sh -R pattern   extra arguments go to both ctest runs
#
# Environment:
#   PGFO_ASAN_BUILD_DIR  build directory (default <source>/build-asan)
#   PGFO_JOBS            parallel build jobs (default: number of CPUs)
#   PGFO_SANITIZE_INTEGRATION=0  unit tests only
# The integration test starts PostgreSQL servers, which refuse to run as root:
# run this as an unprivileged user (scripts/test does).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PGFO_ASAN_BUILD_DIR:-$src/build-asan}
jobs=${PGFO_JOBS:-$(nproc 2>/dev/null || echo 2)}
# -O1 -g, as the sanitizers' own documentation suggests: full reports and line
# numbers, and about half the build time of -O2 on 2 cores
flags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

t0=$SECONDS
CC=gcc CXX=g++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPython3_EXECUTABLE="$(command -v python3)" >/dev/null
cmake --build "$build" -j "$jobs"
echo "sanitize: built in $((SECONDS - t0)) s"

reports=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-sanitize.XXXXXXXX")
chmod 0777 "$reports"   # as root, the fixture's programs may run as postgres
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"

# LeakSanitizer stops the process with ptrace-like means; where that is not
# allowed it cannot work at all. Check once with a program that leaks.
probe="$reports/probe"
printf '#include <stdlib.h>\nint main(void){ void *volatile p = malloc(7); p = 0; return 0; }\n' >"$probe.c"
gcc -fsanitize=address "$probe.c" -o "$probe"
if ASAN_OPTIONS="detect_leaks=1:log_path=$probe-log" "$probe"; then
  echo "sanitize: LeakSanitizer does not work here (a leaking program passed); failing" >&2
  exit 1
fi
if ! grep -q 'LeakSanitizer: detected memory leaks' "$probe-log".* 2>/dev/null; then
  echo "sanitize: LeakSanitizer does not work here:" >&2
  cat "$probe-log".* >&2 2>/dev/null || true
  exit 1
fi
rm -f "$probe" "$probe.c" "$probe-log".*
echo "sanitize: LeakSanitizer works here"

status=0
cd "$build"
t1=$SECONDS
ctest --output-on-failure -j "$jobs" -L unit "$@" || status=1
echo "sanitize: unit tests in $((SECONDS - t1)) s"
if [[ "${PGFO_SANITIZE_INTEGRATION:-1}" != 0 ]]; then
  t1=$SECONDS
  ctest --output-on-failure -R '^integration\.failover$' "$@" || status=1
  echo "sanitize: integration.failover in $((SECONDS - t1)) s"
fi

shopt -s nullglob
found=("$reports"/asan.* "$reports"/ubsan.*)
if (( ${#found[@]} )); then
  echo "sanitize: ${#found[@]} sanitizer report(s):" >&2
  for f in "${found[@]}"; do
    echo "---- $f" >&2
    cat "$f" >&2
  done
  status=1
fi
rm -rf "$reports"
echo "sanitize: $((SECONDS - t0)) s in all"
if (( status )); then
  echo "sanitize: FAILED" >&2
fi
exit "$status"
