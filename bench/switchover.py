#!/usr/bin/env python3
"""bench/switchover: write downtime of a planned primary stop, per strategy.

Every run: a fresh primary + synchronous standby on 127.0.0.1, pgbench writing
to the primary, a probe writer committing rows (first to the primary, then to
the standby once it accepts writes), then `pg_ctl -m fast stop` of the primary
and one strategy promoting the standby:

  immediate   promote as soon as the primary stops accepting connections
              (the unsafe floor: what pgpool's sample script does)
  sleep10     sleep 10 s, then promote (the common workaround)
  reference   a minimal safe wait polling the same facts every 20 ms:
              postmaster.pid gone, then the standby's receive LSN at the end
              of the shutdown checkpoint (from pg_waldump), then promote
              (the safe floor)
  pgfailover  `pgfailover failover` with pgpool's arguments, 30 ms after the
              stop began (when pgpool calls it)

Every strategy empties synchronous_standby_names before promoting (pgfailover
does it itself), so downtime is never a commit waiting for a standby that is gone.

Write downtime = first commit acknowledged by the new primary minus the moment
the stop began. After each run the old primary is made a standby of the new
one: "rewinds" counts the runs where it could not follow (needs pg_rewind).

Two modes: `load` (pgbench only) and `slow` (pgbench and many dirty buffers
at the stop, so the shutdown checkpoint itself takes seconds).

    bench/switchover.py [--runs 5] [--sleep-runs 3] [--modes load,slow]
                        [--strategies immediate,sleep10,reference,pgfailover]
                        [--markdown FILE]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

from pgcluster import MiniConn, PgCluster, Writer, lsn_to_int, pg_bin, owner_prefix  # noqa: E402
from pgfo import failover_hook, write_config  # noqa: E402

DIRTY_MB = 600


def make_async_and_promote(c, node, conn=None):
    """Empty synchronous_standby_names, reload, pg_promote(): one session,
    no client program started (the floors must not pay for psql)."""
    own = conn is None
    conn = conn or MiniConn(c.node(node).port, application_name="pgfo-bench")
    try:
        conn.query("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.query("SELECT pg_reload_conf()")
        # Promote and poll every 20 ms, asking again every 100 ms: one request
        # can sit a whole wal_retrieve_retry_interval in the startup process
        # (see lib/steps/ops.cpp), and a floor must not pay for that.
        conn.query("SELECT pg_promote(false)")
        t = time.monotonic()
        last = t
        while conn.query("SELECT pg_is_in_recovery()")[0][0] == "t":
            if time.monotonic() - t > 60:
                raise RuntimeError("promote failed")
            time.sleep(0.02)
            if time.monotonic() - last >= 0.1:
                try:
                    conn.query("SELECT pg_promote(false)")
                except Exception:  # noqa: BLE001 - recovery ended meanwhile
                    pass
                last = time.monotonic()
    finally:
        if own:
            conn.close()


def strat_immediate(c, t0, cfg):
    while c.ping(0) == "accepting":
        time.sleep(0.002)
    make_async_and_promote(c, 1)


def strat_sleep10(c, t0, cfg):
    time.sleep(max(0.0, 10.0 - (time.monotonic() - t0)))
    make_async_and_promote(c, 1)


def strat_reference(c, t0, cfg):
    """The safe floor: the same facts, polled every 20 ms, nothing else."""
    node = c.node(0)
    conn = MiniConn(c.node(1).port, application_name="pgfo-bench")
    try:
        while os.path.exists(node.pidfile):
            time.sleep(0.02)
        _start, end, _tli = c.checkpoint_record(0)
        while True:
            v = conn.query("SELECT pg_last_wal_receive_lsn()")[0][0]
            if v is not None and lsn_to_int(v) >= end:
                break
            time.sleep(0.02)
        make_async_and_promote(c, 1, conn)
    finally:
        conn.close()


def strat_pgfailover(c, t0, cfg):
    time.sleep(max(0.0, 0.03 - (time.monotonic() - t0)))
    run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
    if run.rc != 0:
        raise RuntimeError("pgfailover failed: " + run.describe())


STRATEGIES = {
    "immediate": strat_immediate,
    "sleep10": strat_sleep10,
    "reference": strat_reference,
    "pgfailover": strat_pgfailover,
}


def pgbench(c, args, **kw):
    n = c.node(0)
    argv = list(owner_prefix()) + [pg_bin("pgbench") if os.path.exists(pg_bin("pgbench")) else "pgbench",
                                   "-h", n.host, "-p", str(n.port), "-U", "postgres"] + args + ["postgres"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def one_run(strategy, mode, offset):
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=offset, label="pgfo-bench") as c:
        cfg = write_config(c)
        pgbench(c, ["-i", "-q", "-s", "10"]).wait(300)
        load = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"])
        w = Writer(c, [0, 1], retry_interval=0.005)
        c.writers.append(w)
        w.start()
        time.sleep(2.0)
        if mode == "slow":
            c.dirty_buffers(0, DIRTY_MB)
        t0 = time.monotonic()
        stopper = c.stop_async(0, "fast")
        STRATEGIES[strategy](c, t0, cfg)
        deadline = time.monotonic() + 60
        while w.first_ack(1, after=t0) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        first = w.first_ack(1, after=t0)
        stopper.wait(120)
        load.kill()
        load.wait()
        w.stop()
        verdict = c.follow(0, 1)
        lost = len(w.missing_on(1))
        return (first[2] - t0) if first else None, not verdict.ok, lost


def pct(values, p):
    v = sorted(values)
    k = (len(v) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sleep-runs", type=int, default=3, help="runs of sleep10 (each costs 10 s)")
    ap.add_argument("--modes", default="load,slow")
    ap.add_argument("--strategies", default="immediate,sleep10,reference,pgfailover")
    ap.add_argument("--markdown", help="also write the table to this file")
    a = ap.parse_args()
    modes = a.modes.split(",")
    strategies = a.strategies.split(",")
    results = {}
    offset = 400
    for mode in modes:
        for i in range(max(a.runs, a.sleep_runs)):
            # interleave strategies so drift in the machine's state hits all alike
            for s in strategies:
                if i >= (a.sleep_runs if s == "sleep10" else a.runs):
                    continue
                gap, rewind, lost = one_run(s, mode, offset)
                results.setdefault((mode, s), []).append((gap, rewind, lost))
                print("%-5s %-11s run %d: downtime %s, %s, lost %d" % (
                    mode, s, i + 1, "%.3f s" % gap if gap is not None else "none",
                    "NEEDS REWIND" if rewind else "rejoined", lost), flush=True)
    lines = ["| mode | strategy | runs | median downtime (s) | p95 (s) | vs safe floor | vs immediate "
             "| vs sleep10 | rewinds needed | rows lost |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for mode in modes:
        med = {}
        for s in strategies:
            gaps = [g for g, _, _ in results.get((mode, s), []) if g is not None]
            med[s] = statistics.median(gaps) if gaps else None
        for s in strategies:
            rows = results.get((mode, s), [])
            gaps = [g for g, _, _ in rows if g is not None]
            if not gaps:
                continue
            def ratio(base):
                b = med.get(base)
                return "%.2fx" % (med[s] / b) if b else "-"
            lines.append("| %s | %s | %d | %.3f | %.3f | %s | %s | %s | %d of %d | %d |" % (
                mode, s, len(rows), med[s], pct(gaps, 0.95), ratio("reference"), ratio("immediate"),
                ratio("sleep10"), sum(1 for _, r, _ in rows if r), len(rows), sum(l for _, _, l in rows)))
    table = "\n".join(lines)
    print("\n" + table)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
