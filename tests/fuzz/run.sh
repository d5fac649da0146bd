#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) in their own build
# directory and run each one for a bounded time, starting from the committed
# seed corpus (tests/fuzz/corpus/<target>; new inputs go to a scratch copy).
# Any crash, leak, UB report, timeout or violated property fails the run; the
# input that caused it is kept and its path printed.
#
#   tests/fuzz/run.sh                 all targets
#   tests/fuzz/run.sh lsn sync_names  only these
#
# Environment:
#   PGFO_FUZZ_SECONDS    seconds per target (default 20)
#   PGFO_FUZZ_BUILD_DIR  build directory (default <source>/build-fuzz)
#   PGFO_FUZZ_OUT        where scratch corpora and crash inputs go
#                        (default: a new temporary directory, removed when
#                        nothing was found)
#   PGFO_JOBS            parallel build jobs (default: number of CPUs)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${PGFO_FUZZ_BUILD_DIR:-$src/build-fuzz}
seconds=${PGFO_FUZZ_SECONDS:-20}
jobs=${PGFO_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Largest input worth trying per target: a few pgpool arguments; a
# configuration of a few dozen lines (inih lines are at most 200 bytes); a
# pg_control file (8192 bytes); a record header plus up to three 8 kB pages.
declare -A max_len=(
  [pgpool_args]=4096 [config]=4096 [pgpool_conf]=4096 [control]=8192
  [history]=2048 [lsn]=64 [sync_names]=512 [walrecord]=24592
)
all=(pgpool_args config pgpool_conf control history lsn sync_names walrecord)
targets=("$@")
(( ${#targets[@]} )) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -n "${max_len[$t]:-}" ]] || { echo "fuzz: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }

t0=$SECONDS
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DPGFO_FUZZ=ON -DPGFO_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target pgfo_fuzz -j "$jobs"
echo "fuzz: built in $((SECONDS - t0)) s"

out=${PGFO_FUZZ_OUT:-}
keep=1
if [[ -z "$out" ]]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-fuzz.XXXXXXXX")
  keep=0
fi
mkdir -p "$out"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
printf '%-12s %10s %9s %7s  %s\n' target runs exec/s corpus result
for t in "${targets[@]}"; do
  work="$out/corpus-$t"
  mkdir -p "$work"
  log="$out/$t.log"
  status=0
  # stdin from /dev/null: a configuration naming /dev/stdin must not block.
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$t-" \
    "$work" "$src/tests/fuzz/corpus/$t" </dev/null >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log")
  size=$(find "$work" -type f | wc -l)
  if (( status != 0 )) || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz property violated' "$log"; then
    failed+=("$t")
    printf '%-12s %10s %9s %7s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" "FAILED (exit $status)"
    grep -E 'ERROR:|runtime error:|violated|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    /'
  else
    printf '%-12s %10s %9s %7s  %s\n' "$t" "$runs" "$rate" "$size" ok
  fi
done
echo "fuzz: ${#targets[@]} targets x ${seconds} s, $((SECONDS - t0)) s in all"
if (( ${#failed[@]} )); then
  echo "fuzz: FAILED: ${failed[*]}; logs and inputs in $out" >&2
  exit 1
fi
(( keep )) || rm -rf "$out"
