#!/usr/bin/env python3
"""bench/pgpool_downtime: the write downtime a client of pgpool-II sees.

Every run: a fresh primary + synchronous standby on 127.0.0.1, a real
pgpool-II in front of them (tests/support/pgpool.py: streaming replication
mode, failover_on_backend_shutdown = on, health check every second), pgbench
writing to the primary directly (4 clients) and one client inserting a row per
transaction through pgpool. Then `pg_ctl -m fast stop` of the primary; pgpool
runs its failover_command, which is one of:

  pgfailover  `pgfailover failover %d %h %p %D %m %H %M %P %r %R %N %S`
              (as in hooks/pgpool.conf.sample)
  immediate   bench/immediate_promote.sh: promotes pgpool's new main node at
              once (the unsafe floor, what pgpool's sample script does)
  sleep10     the same after `sleep 10` (the common workaround)

Client downtime = the gap between the client's last acknowledged write before
the stop and its first one after (which the new primary took). Also shown:
that first ack minus the moment the stop began (what bench/switchover.py
calls downtime; acks may go on for a few ms after the stop began). Then the
old primary is restarted as a standby of the new one (standby.signal +
primary_conninfo, nothing else): "rewinds needed" counts the runs where it
could not follow, i.e. its walreceiver never streamed on the new timeline.
"rows lost": acknowledged rows missing on the new primary.

    bench/pgpool_downtime.py [--runs 5] [--sleep-runs 0]
                             [--strategies immediate,pgfailover] [--offset 440]
                             [--pool-offset 480] [--markdown FILE]
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from benchlib import bare_follow, ratio, summary  # noqa: E402
from pgcluster import PG_BINDIR, PgCluster, release_ports, reserve_ports  # noqa: E402
from pgfo import cli_path, write_config  # noqa: E402
from pgpool import Pgpool, PoolWriter, pgpool_available  # noqa: E402
from switchover import machine, pgbench  # noqa: E402

HOOK_ARGS = "%d %h %p %D %m %H %M %P %r %R %N %S"


def failover_command(strategy, c, cfg, reports):
    """pgpool runs failover_command through the shell; only our own paths are
    put into it (quoted), pgpool substitutes its % arguments."""
    if strategy == "pgfailover":
        return "%s --config %s --json failover %s >> %s" % (
            shlex.quote(os.path.abspath(cli_path())), shlex.quote(cfg), HOOK_ARGS,
            shlex.quote(reports))
    psql = os.path.join(PG_BINDIR, "psql")
    argv = [os.path.join(HERE, "immediate_promote.sh")]
    if os.access(psql, os.X_OK):
        argv += ["--psql", psql]
    if strategy == "sleep10":
        argv += ["--delay", "10"]
    return " ".join(shlex.quote(a) for a in argv) + " " + HOOK_ARGS


def one_run(strategy, offset, pool_offset):
    r = {"gap": None, "first": None, "rewind": None, "lost": 0, "error": None, "said": ""}
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=offset,
                   label="pgfo-bench-pool") as c:
        cfg = write_config(c)
        reports = os.path.join(c.base, "hook-reports.json")
        pgbench(c, ["-i", "-q", "-s", "10"]).wait(300)
        ports = reserve_ports(2, offset=pool_offset)
        pool = Pgpool(c, failover_command=failover_command(strategy, c, cfg, reports),
                      port=ports[0], label="pgfo-bench-pgpool")
        pool.pcp_port = ports[1]
        load = w = None
        try:
            pool.start()
            load = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"])
            w = PoolWriter(pool, retry_interval=0.005).start()
            t = time.monotonic()
            while len(w.acked) < 20 and time.monotonic() - t < 30:
                time.sleep(0.02)
            if len(w.acked) < 20:
                raise RuntimeError("no writes through pgpool: %r" % w.errors[-3:])
            time.sleep(2.0)
            t_stop = time.monotonic()
            c.stop(0, "fast")
            ack = w.wait_ack(c.node(1).port, after=t_stop, timeout=90)
            if ack is None:
                raise RuntimeError("no write through pgpool reached node1: %r\n%s"
                                   % (w.errors[-3:], pool.log_tail(30)))
            time.sleep(0.3)
            gap, _last, first = w.downtime(t_stop)
            r["gap"] = gap
            r["first"] = (first or ack)[2] - t_stop
            if strategy == "pgfailover":
                with open(reports) as f:
                    rep = json.JSONDecoder().raw_decode(f.read().lstrip())[0]
                r["said"] = "hook exit %s in %.3f s" % (rep.get("exit_code"), rep.get("duration_s", -1))
            load.kill()
            load.wait()
            w.stop()
            pool.stop()
            state, _secs = bare_follow(c, 0, 1)
            r["rewind"] = state != "streaming"
            r["said"] = ", ".join(x for x in (r["said"], state) if x)
        except Exception as e:  # noqa: BLE001 - one bad run must not lose the others
            r["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        finally:
            if load is not None and load.poll() is None:
                load.kill()
                load.wait()
            if w is not None:
                w.stop()
            pool.stop()
            release_ports(ports)
        if w is not None:
            try:
                present = {int(x[0]) for x in c.psql(1, "SELECT id FROM %s" % w.table)}
                r["lost"] = len(w.acked_ids - present)
            except Exception as e:  # noqa: BLE001
                r["error"] = r["error"] or "rows not checked: %s" % e
        return r


def report(results, strategies):
    st = {s: summary([r["gap"] for r in results.get(s, [])]) for s in strategies}
    med = {s: st[s][1] if st[s] else None for s in strategies}
    rows, counts, targets = [], [], []
    for s in strategies:
        runs = results.get(s, [])
        if not runs:
            continue
        counts.append(len(runs))
        sm, fa = st[s], summary([r["first"] for r in runs])
        errors = sum(1 for r in runs if r["error"])
        sleep_cell = ratio(med[s], med.get("sleep10"))
        if s != "sleep10" and med.get("sleep10") and med[s]:
            sleep_cell += " (%.0fx shorter)" % (med["sleep10"] / med[s])
        rows.append([s, len(runs) if not errors else "%d (%d failed)" % (len(runs), errors),
                     "%.3f" % sm[1] if sm else "-", "%.3f" % sm[2] if sm else "-",
                     ratio(med[s], med.get("immediate")), sleep_cell,
                     "%.3f" % fa[1] if fa else "-",
                     "%d of %d" % (sum(1 for r in runs if r["rewind"]),
                                   sum(1 for r in runs if r["rewind"] is not None)),
                     sum(r["lost"] for r in runs)])
    text = benchlib.table(["failover_command", "runs", "median client downtime (s)", "p95 (s)",
                           "vs immediate", "vs sleep10", "first ack after the stop (median s)",
                           "rewinds needed", "rows lost"], rows)
    text += "\n\nRatios are of medians. " + benchlib.p95_note(counts) + "\n"
    for s in strategies:
        split = benchlib.split_by_rewind(results.get(s, []))
        if split:
            text += "\n%s: %s.\n" % (s, split)
    pf = results.get("pgfailover", [])
    if med.get("pgfailover") and med.get("immediate"):
        x = med["pgfailover"] / med["immediate"]
        targets.append("- through pgpool: median within 1.5x of the immediate promote: %.2fx, **%s**"
                       % (x, "met" if x <= 1.5 else "not met"))
    if med.get("pgfailover") and med.get("sleep10"):
        x = med["sleep10"] / med["pgfailover"]
        targets.append("- through pgpool: at least 20x shorter than sleep 10: %.1fx, **%s**"
                       % (x, "met" if x >= 20 else "not met"))
    if pf:
        rw = sum(1 for r in pf if r["rewind"] is not False)
        targets.append("- through pgpool: zero rewinds: %d of %d, **%s**"
                       % (rw, len(pf), "met" if rw == 0 else "not met"))
    if targets:
        text += "\nTargets:\n\n" + "\n".join(targets) + "\n"
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sleep-runs", type=int, default=0, help="runs of sleep10 (each costs 10 s)")
    ap.add_argument("--strategies", default="immediate,pgfailover")
    ap.add_argument("--offset", type=int, default=440,
                    help="port offset of the clusters (added to PGFO_TEST_PORT_BASE)")
    ap.add_argument("--pool-offset", type=int, default=480,
                    help="port offset of pgpool and its PCP port")
    ap.add_argument("--markdown", help="also write the table to this file")
    a = ap.parse_args()
    ok, why = pgpool_available()
    if not ok:
        print("bench/pgpool_downtime: skipped, %s" % why)
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write("Not measured: %s.\n" % why)
        return 0
    strategies = a.strategies.split(",")
    if a.sleep_runs and "sleep10" not in strategies:
        strategies.append("sleep10")
    started = time.monotonic()
    host = machine()
    results = {}
    for i in range(max(a.runs, a.sleep_runs)):
        for s in strategies:
            if i >= (a.sleep_runs if s == "sleep10" else a.runs):
                continue
            r = one_run(s, a.offset, a.pool_offset)
            results.setdefault(s, []).append(r)
            print("pgpool %-11s run %d: client downtime %s, first ack after the stop %s, %s, %s, "
                  "lost %d%s" % (
                      s, i + 1, "%.3f s" % r["gap"] if r["gap"] is not None else "none",
                      "%.3f s" % r["first"] if r["first"] is not None else "none",
                      "NEEDS REWIND" if r["rewind"] else "rejoined", r["said"], r["lost"],
                      ", ERROR " + r["error"] if r["error"] else ""), flush=True)
    text = report(results, strategies)
    version = subprocess.run([os.environ.get("PGFO_PGPOOL", "/usr/sbin/pgpool"), "--version"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip()
    text += "\n%s; machine: %s; %.1f min for this run.\n" % (
        version or "pgpool-II", host, (time.monotonic() - started) / 60)
    return benchlib.finish(text, a.markdown, results)


if __name__ == "__main__":
    sys.exit(main())
