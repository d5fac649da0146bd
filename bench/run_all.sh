#!/usr/bin/env bash
# bench/run_all.sh: every benchmark of docs/benchmarks.md in one go, the
# results as markdown tables in one file.
#
#   PGFO_CLI=build/cli/pgfailover bench/run_all.sh [--quick] [OUT.md]
#
# Run it as a user that may run PostgreSQL (not root; e.g. `runuser -u
# postgres --` with a checkout that user can read), after a build.
# PGFO_CLI is the pgfailover to measure (default: build/cli/pgfailover).
# OUT.md defaults to bench-results.md. --quick: one or two runs of each part
# (a smoke test of the benchmarks, no figures to quote).
#
# What runs (about 22 minutes on 2 cores):
#   bench/cli_startup.py       50 start-ups of each command
#   bench/switchover.py        load: 10 runs per strategy (5 of sleep10);
#                              slow: 5 runs per strategy (3 of sleep10)
#   bench/switchover.py        archive: pgfailover and the wait for the old
#                              postmaster's exit, with and without an archiver
#                              backlog at the stop: 3 runs each
#   bench/pgpool_downtime.py   10 runs each of pgfailover and the immediate
#                              promote as failover_command (3 of sleep10)
#   bench/switchover_checkpoint.py  `pgfailover switchover` with checkpoint
#                              off / once / twice, light and heavy: 5 runs each
#   bench/peers.py             `pgfailover switchover` against Patroni
#                              (patronictl switchover) and repmgr (standby
#                              switchover), light and heavy: 3 runs per tool
#                              each; skipped, with the reason, without patroni,
#                              etcd, repmgr or sshd installed
# Clusters use port offsets 400-499 (PGFO_TEST_PORT_BASE + offset); etcd and
# Patroni's REST API 490-495; bench/peers.py's sshd PGFO_SSH_PORT_BASE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $(id -u) -eq 0 ]]; then
  echo "bench/run_all.sh: PostgreSQL and pgpool refuse root; run it as another user," \
       "e.g. runuser -u postgres -- $0 $*" >&2
  exit 2
fi
quick=0
if [[ ${1:-} == --quick ]]; then quick=1; shift; fi
out=${1:-bench-results.md}
export PGFO_CLI=${PGFO_CLI:-$here/../build/cli/pgfailover}
[[ -x $PGFO_CLI ]] || { echo "bench/run_all.sh: no pgfailover at $PGFO_CLI (build first, or set PGFO_CLI)" >&2; exit 2; }

if (( quick )); then
  cli=(--runs 10); load=(--runs 2 --sleep-runs 1); slow=(--runs 1 --sleep-runs 0)
  pool=(--runs 2 --sleep-runs 0); ckpt=(--runs 1); arch=(--runs 1 --sleep-runs 0); peers=(--runs 1)
else
  cli=(--runs 50); load=(--runs 10 --sleep-runs 5); slow=(--runs 5 --sleep-runs 3)
  pool=(--runs 10 --sleep-runs 3); ckpt=(--runs 5); arch=(--runs 3 --sleep-runs 0); peers=(--runs 3)
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgfo-bench.XXXXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0
start=$(date +%s)
python3 "$here/cli_startup.py" "${cli[@]}" --markdown "$tmp/cli.md" || status=1
python3 "$here/switchover.py" "${load[@]}" --modes load --markdown "$tmp/load.md" || status=1
python3 "$here/switchover.py" "${slow[@]}" --modes slow --markdown "$tmp/slow.md" || status=1
python3 "$here/switchover.py" "${arch[@]}" --modes load,archive --strategies reference,pgfailover \
  --markdown "$tmp/archive.md" || status=1
python3 "$here/pgpool_downtime.py" "${pool[@]}" --markdown "$tmp/pgpool.md" || status=1
python3 "$here/switchover_checkpoint.py" "${ckpt[@]}" --markdown "$tmp/ckpt.md" || status=1
missing=()
for prog in patroni patronictl etcd /usr/lib/postgresql/15/bin/repmgr "${PGFO_SSHD:-/usr/sbin/sshd}"; do
  command -v "$prog" >/dev/null || missing+=("${prog##*/}")
done
if (( ${#missing[@]} )); then
  why="skipped: ${missing[*]} not installed (Debian packages patroni, etcd-server, postgresql-15-repmgr, openssh-server)"
  echo "bench/run_all.sh: bench/peers.py $why" >&2
  echo "($why)" > "$tmp/peers.md"
else
  python3 "$here/peers.py" "${peers[@]}" --markdown "$tmp/peers.md" || status=1
fi

section() {     # title, file
  printf '### %s\n\n' "$1"
  if [[ -s $2 ]]; then cat "$2"; else echo "(no result: see the output above)"; fi
  printf '\n'
}
{
  printf '## Results (%s)\n\n' "$(date -u +%Y-%m-%d)"
  printf 'pgfailover: %s; PostgreSQL: %s; %s; %d cores, load average %s at the end;' \
    "$("$PGFO_CLI" version 2>&1)" \
    "$("${PGFO_PG_BINDIR:-/usr/lib/postgresql/15/bin}/postgres" --version 2>&1)" \
    "$(uname -sr)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf ' %d min in all. Reproduce: `bench/run_all.sh%s`.\n\n' \
    $(( ($(date +%s) - start + 30) / 60 )) "$( ((quick)) && echo ' --quick')"
  section "CLI start-up overhead" "$tmp/cli.md"
  section "Write downtime under pgbench load" "$tmp/load.md"
  section "Write downtime with a slow shutdown checkpoint" "$tmp/slow.md"
  section "An archiver backlog at the stop" "$tmp/archive.md"
  section "Client-side downtime through pgpool-II" "$tmp/pgpool.md"
  section "Switchover: the CHECKPOINT before the stop" "$tmp/ckpt.md"
  section "Switchover side by side: pgfailover, Patroni, repmgr" "$tmp/peers.md"
} > "$out"
echo "bench/run_all.sh: results in $out" >&2
exit "$status"
