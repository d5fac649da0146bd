#!/usr/bin/env python3
"""bench/switchover: write downtime of a planned primary stop, per strategy,
and the time the old primary takes to rejoin.

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
  pgfailover-ssh  the same, but the old primary is reached with access = ssh
              through a real sshd on 127.0.0.1 (a private one, started once
              for the whole benchmark), as in production where pgpool runs on
              another host; reported against `pgfailover` (access = local) of
              the same run, with the ssh connections and remote calls each
              failover made (from its report)
  pgfailover-ssh-x25519  pgfailover-ssh with ssh_options adding
              -o KexAlgorithms=curve25519-sha256: OpenSSH 9's default key
              exchange (sntrup761x25519, post-quantum) costs more CPU per
              handshake, and the run's one handshake overlaps the old
              primary's shutdown only as long as that lasts

Every strategy empties synchronous_standby_names before promoting (pgfailover
does it itself), so downtime is never a commit waiting for a standby that is
gone, and promotes the same way (pg_promote(false), asked again every 100 ms).

Write downtime = first commit acknowledged by the new primary minus the moment
the stop began. Then, with pgbench writing to the new primary, the old primary
is brought back as a standby of the new one:

  pgfailover runs   `pgfailover follow-primary` with pgpool's arguments (what
                    pgpool's follow_primary_command runs)
  the other runs    the bare floor: standby.signal and primary_conninfo
                    written, pg_ctl start, nothing else

Rejoin time = from that start until the new primary's pg_stat_replication
shows the old primary 'streaming' (polled every 10 ms); for pgfailover also
until the command returned (it then has restored synchronous_standby_names).
"rewinds" counts the runs where the old primary could not follow (it needs
pg_rewind): it rejoined only if its walreceiver then streams on the new
timeline (a node past the fork point also shows up as 'streaming' for a
moment, on the old timeline). "rows lost": acknowledged rows missing on the
new primary. Also recorded: when the old primary's pg_control first says
'shut down' (its shutdown checkpoint is written) and when its postmaster.pid
is gone (it has exited), polled every 5 ms.

Three modes: `load` (pgbench only), `slow` (pgbench and many dirty buffers
at the stop, so the shutdown checkpoint itself takes a while) and `archive`
(pgbench, archive_mode = on with an archive_command taking 1 s per segment,
and at least 8 segments waiting for the archiver at the stop: the old
postmaster outlives its shutdown checkpoint by 8 s or more). In `archive` the
`reference` strategy waits for the postmaster to exit, as pgfailover did before
it promoted on pg_control; the targets compare pgfailover there with itself
in `load` (within 1.2x) and with that exit wait (at least 10x shorter).

Speed is reported as ratios against the other strategies of the same run,
never as a pass/fail timing: with --markdown the tables, the targets (is
pgfailover within 1.5x of the immediate promote, 20x shorter than sleep 10,
with zero rewinds) and the machine are written to FILE.

    bench/switchover.py [--runs 5] [--sleep-runs 3] [--modes load,slow]
                        [--strategies immediate,sleep10,reference,pgfailover[,pgfailover-ssh]]
                        [--offset 400] [--markdown FILE]
"""

import argparse
import os
import re
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from benchlib import StreamWatch, bare_follow, ratio, rejoin_verdict, summary  # noqa: E402
from pgcluster import (MiniConn, PgCluster, Writer, lsn_to_int, owner_prefix, pg_bin,  # noqa: E402
                       read_pg_control)
from pgfo import failover_hook, pgpool_args, ssh_config, start_cli, write_config  # noqa: E402
from sshd import Sshd, sshd_available  # noqa: E402

DIRTY_MB = 600
BACKLOG = 8          # .ready segments at the stop in mode archive
ARCHIVE_DELAY = 1    # seconds archive_command takes per segment
SYNC_TARGET = "ANY 1 (node0, node1)"    # what follow-primary restores


def make_async_and_promote(c, node, conn=None):
    """Empty synchronous_standby_names, reload, promote (see benchlib)."""
    benchlib.make_async_and_promote(c.node(node).port, conn)


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
    remote = run.report.get("remote", [])
    c.bench_ssh = (sum(n["ssh_connections"] for n in remote), sum(n["remote_calls"] for n in remote),
                   sum(n["seconds"] for n in remote))
    return "steps: " + ", ".join("%s %.3f s" % (s["name"], s["duration_s"])
                                 for s in run.report.get("steps", []) if s["duration_s"] >= 0.01)


STRATEGIES = {
    "immediate": strat_immediate,
    "sleep10": strat_sleep10,
    "reference": strat_reference,
    "pgfailover": strat_pgfailover,
    "pgfailover-ssh": strat_pgfailover,    # the same, with cfg reaching node 0 over ssh
    "pgfailover-ssh-x25519": strat_pgfailover,  # ... with a curve25519 key exchange
}
SSH_STRATEGIES = ("pgfailover-ssh", "pgfailover-ssh-x25519")
SSHD = None    # started by main() for pgfailover-ssh


def pgbench(c, args, node=0, **kw):
    n = c.node(node)
    argv = list(owner_prefix()) + [pg_bin("pgbench") if os.path.exists(pg_bin("pgbench")) else "pgbench",
                                   "-h", n.host, "-p", str(n.port), "-U", "postgres"] + args + ["postgres"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


class ShutdownWatch(threading.Thread):
    """Polls the stopping node every 5 ms: `checkpointed` is when its
    pg_control first says 'shut down' (the shutdown checkpoint is written),
    `gone` when its postmaster.pid disappears (the process has exited)."""

    def __init__(self, node):
        super().__init__(name="pgfo-bench-shutdown", daemon=True)
        self.path = node.pidfile
        self.datadir = node.datadir
        self.checkpointed = None
        self.gone = None
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            now = time.monotonic()
            if self.checkpointed is None:
                try:
                    if read_pg_control(self.datadir)["Database cluster state"] == "shut down":
                        self.checkpointed = now
                except (OSError, ValueError, struct.error):
                    pass            # read while being rewritten, or unreadable
            if not os.path.exists(self.path):
                self.gone = now
                if self.checkpointed is None:
                    self.checkpointed = now
                return
            self._halt.wait(0.005)

    def stop(self):
        self._halt.set()
        self.join(5)


def follow_primary(c, cfg):
    """`pgfailover follow-primary` for node 0 (new primary node 1), as
    pgpool's follow_primary_command runs it: (rejoined, seconds until it
    streams, seconds until the command returned, what it said). Rejoined
    only when the command succeeded and node 0 then streams on the new
    timeline (benchlib.rejoin_verdict)."""
    new_tli = c.timeline(1)
    since = c.log_size(0)
    watch = StreamWatch(c.node(1).port, c.node(0).name)
    watch.start()
    run = start_cli(["follow-primary"] + pgpool_args(c, 0, 1, 0), cfg)
    try:
        run.wait(180)
        state = rejoin_verdict(c, 0, new_tli, since) if run.rc == 0 else "not started"
        if state == "streaming" and watch.seen is None:
            watch.join(5)
    finally:
        watch.stop()
    rejoin = run.verdict.get("rejoin")
    streamed = watch.seen - run.started if watch.seen is not None else None
    ok = run.rc == 0 and rejoin in ("clean", "already") and state == "streaming" \
        and streamed is not None
    return ok, streamed, run.elapsed, "rc %s, rejoin %s, %s" % (run.rc, rejoin, state)


def one_run(strategy, mode, offset):
    r = {"gap": None, "rewind": None, "lost": 0, "shutdown": None, "checkpointed": None,
         "rejoin": None, "rejoin_return": None, "error": None, "ssh": None}
    conf = None
    if mode == "archive":
        # archive_command runs in the data directory (base/node0): the archive is base/archive
        conf = {"archive_mode": "on", "archive_timeout": "0",
                "archive_command": "'mkdir -p ../archive && sleep %d && cp %%p ../archive/%%f'" % ARCHIVE_DELAY}
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=offset, label="pgfo-bench",
                   extra_conf=conf) as c:
        extra = "[replication]\nsynchronous_standby_names = %s\n" % SYNC_TARGET
        if strategy in SSH_STRATEGIES:
            cfg = ssh_config(c, SSHD, nodes={0}, extra=extra)
            if strategy == "pgfailover-ssh-x25519":
                with open(cfg) as f:
                    text = f.read()
                text = re.sub(r"^(ssh_options = .*)$", r"\1 -o KexAlgorithms=curve25519-sha256", text, flags=re.M)
                c.write_owner_file(cfg, text)
        else:
            cfg = write_config(c, extra=extra)
        c.bench_ssh = None
        pgbench(c, ["-i", "-q", "-s", "10"]).wait(300)
        load = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"])
        w = Writer(c, [0, 1], retry_interval=0.005)
        c.writers.append(w)
        w.start()
        load2 = None
        try:
            time.sleep(2.0)
            if mode == "slow":
                c.dirty_buffers(0, DIRTY_MB)
            if mode == "archive":
                r["backlog"] = make_backlog(c)
            shutwatch = ShutdownWatch(c.node(0))
            t0 = time.monotonic()
            shutwatch.start()
            stopper = c.stop_async(0, "fast")
            r["steps"] = STRATEGIES[strategy](c, t0, cfg)
            r["ssh"] = c.bench_ssh
            deadline = time.monotonic() + 60
            while w.first_ack(1, after=t0) is None and time.monotonic() < deadline:
                time.sleep(0.005)
            first = w.first_ack(1, after=t0)
            r["gap"] = (first[2] - t0) if first else None
            stopper.wait(120)
            shutwatch.join(5)
            r["shutdown"] = shutwatch.gone - t0 if shutwatch.gone else None
            r["checkpointed"] = shutwatch.checkpointed - t0 if shutwatch.checkpointed else None
            load.kill()
            load.wait()
            # the rejoin happens under write load on the new primary
            load2 = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"], node=1)
            time.sleep(0.5)
            if strategy.startswith("pgfailover"):
                ok, streamed, returned, said = follow_primary(c, cfg)
                r["rewind"] = not ok
                r["rejoin"], r["rejoin_return"], r["said"] = streamed, returned, said
            else:
                state, secs = bare_follow(c, 0, 1)
                r["rewind"] = state != "streaming"
                r["said"] = state
                if state == "streaming":
                    r["rejoin"] = secs
        except Exception as e:  # noqa: BLE001 - one bad run must not lose the others
            r["error"] = benchlib.error_text(e)
        benchlib.end_run(r, (load, load2), w, 1)
        return r


def ready_segments(c):
    d = os.path.join(c.node(0).datadir, "pg_wal", "archive_status")
    return sum(1 for f in os.listdir(d) if f.endswith(".ready"))


def make_backlog(c):
    """Switch WAL segments until BACKLOG of them wait for the archiver."""
    c.psql(0, "CREATE TABLE IF NOT EXISTS bench_backlog (i int)")
    deadline = time.monotonic() + 120
    while ready_segments(c) < BACKLOG:
        if time.monotonic() > deadline:
            raise RuntimeError("no archiver backlog of %d segments" % BACKLOG)
        c.psql(0, "INSERT INTO bench_backlog VALUES (1); SELECT pg_switch_wal(); " * (BACKLOG + 2))
    return ready_segments(c)


def machine():
    """One line on the machine the run was on."""
    try:
        with open("/proc/cpuinfo") as f:
            model = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")][0]
    except (OSError, IndexError):
        model = "unknown CPU"
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        mem = 0
    load = os.getloadavg()[0]
    return "%d cores (%s), %.0f GB RAM, load average %.2f at the start" % (
        os.cpu_count() or 0, model, mem, load)


def report(results, modes, strategies):
    lines = []
    downtime_rows, rejoin_rows, targets = [], [], []
    counts = []
    for mode in modes:
        st = {s: summary([r["gap"] for r in results.get((mode, s), [])]) for s in strategies}
        med = {s: (st[s][1] if st[s] else None) for s in strategies}
        for s in strategies:
            rows = results.get((mode, s), [])
            if not rows:
                continue
            sm = st[s]
            counts.append(len(rows))
            shut = summary([r["shutdown"] for r in rows])
            ckpt = summary([r["checkpointed"] for r in rows])
            sleep_cell = ratio(med[s], med.get("sleep10"))
            if s != "sleep10" and med.get("sleep10") and med[s]:
                sleep_cell += " (%.0fx shorter)" % (med["sleep10"] / med[s])
            errors = sum(1 for r in rows if r["error"])
            downtime_rows.append([
                mode, s, len(rows) if not errors else "%d (%d failed)" % (len(rows), errors),
                "%.3f" % sm[1] if sm else "-", "%.3f" % sm[2] if sm else "-",
                ratio(med[s], med.get("immediate")), ratio(med[s], med.get("reference")),
                sleep_cell, "%s / %s" % ("%.3f" % ckpt[1] if ckpt else "-",
                                         "%.3f" % shut[1] if shut else "-"),
                "%d of %d" % (sum(1 for r in rows if r["rewind"]),
                              sum(1 for r in rows if r["rewind"] is not None)),
                sum(r["lost"] for r in rows)])
        floor = [r["rejoin"] for r in results.get((mode, "reference"), []) if r["rejoin"] is not None]
        fl = summary(floor)
        pf = results.get((mode, "pgfailover"), []) + [r for s in SSH_STRATEGIES for r in results.get((mode, s), [])]
        if fl:
            rejoin_rows.append([mode, "bare restart as a standby (after the reference runs), until"
                                " streaming", fl[0], "%.3f" % fl[1], "%.3f" % fl[2], "1.00x"])
        for key, what in (("rejoin", "`pgfailover follow-primary`, until streaming"),
                          ("rejoin_return", "`pgfailover follow-primary`, until it returned")):
            sm = summary([r[key] for r in pf])
            if sm:
                rejoin_rows.append([mode, what, sm[0], "%.3f" % sm[1], "%.3f" % sm[2],
                                    ratio(sm[1], fl[1] if fl else None)])
        if med.get("pgfailover") and pf:
            rw = sum(1 for r in pf if r["rewind"] is not False)     # a failed run counts
            if med.get("immediate"):
                x = med["pgfailover"] / med["immediate"]
                targets.append("- %s: median within 1.5x of the immediate promote: %.2fx, **%s**"
                               % (mode, x, "met" if x <= 1.5 else "not met"))
            if med.get("sleep10"):
                x = med["sleep10"] / med["pgfailover"]
                targets.append("- %s: at least 20x shorter than sleep 10: %.1fx, **%s**"
                               % (mode, x, "met" if x >= 20 else "not met"))
            targets.append("- %s: zero rewinds: %d of %d, **%s**"
                           % (mode, rw, len(pf), "met" if rw == 0 else "not met"))
        if med.get("pgfailover-ssh") and med.get("pgfailover"):
            x = med["pgfailover-ssh"] / med["pgfailover"]
            targets.append("- %s: over ssh within 1.3x of access = local: %.2fx, **%s**"
                           % (mode, x, "met" if x <= 1.3 else "not met"))
        if med.get("pgfailover-ssh-x25519") and med.get("pgfailover"):
            x = med["pgfailover-ssh-x25519"] / med["pgfailover"]
            targets.append("- %s: over ssh with a curve25519 key exchange (not the default), against access = "
                           "local: %.2fx" % (mode, x))
        for strategy in SSH_STRATEGIES:
            ssh = [r["ssh"] for r in results.get((mode, strategy), []) if r["ssh"]]
            if ssh:
                most = max(n for n, _calls, _secs in ssh)
                targets.append("- %s, %s: at most one ssh connection per node per failover (one node over ssh):"
                               " %s connections, %s remote calls taking %s s per failover, **%s**"
                               % (mode, strategy, "/".join(str(n) for n, _c, _s in ssh),
                                  "/".join(str(k) for _n, k, _s in ssh),
                                  "/".join("%.3f" % t for _n, _c, t in ssh), "met" if most <= 1 else "not met"))
    med_of = {}
    for (mode, s), rows in results.items():
        sm = summary([r["gap"] for r in rows])
        if sm:
            med_of[(mode, s)] = sm[1]
    arch, base, wait = (med_of.get(("archive", "pgfailover")), med_of.get(("load", "pgfailover")),
                        med_of.get(("archive", "reference")))
    if arch and base:
        x = arch / base
        targets.append("- archive: pgfailover within 1.2x of its own downtime without archiving (load): "
                       "%.2fx, **%s**" % (x, "met" if x <= 1.2 else "not met"))
    if arch and wait:
        x = wait / arch
        targets.append("- archive: at least 10x shorter than waiting for the old postmaster to exit "
                       "(reference): %.1fx, **%s**" % (x, "met" if x >= 10 else "not met"))
    lines.append(benchlib.table(
        ["mode", "strategy", "runs", "median downtime (s)", "p95 (s)", "vs immediate",
         "vs safe floor", "vs sleep10", "old primary: checkpoint written / exited (median s)",
         "rewinds needed",
         "rows lost"], downtime_rows))
    lines.append("")
    lines.append("Ratios are of medians. " + benchlib.p95_note(counts))
    for mode in modes:
        for s in strategies:
            split = benchlib.split_by_rewind(results.get((mode, s), []))
            if split:
                lines += ["", "%s, %s: %s." % (mode, s, split)]
    if rejoin_rows:
        lines += ["", "Rejoin of the old primary (pgbench writing to the new primary):", "",
                  benchlib.table(["mode", "rejoin", "runs", "median (s)", "p95 (s)",
                                  "vs bare restart"], rejoin_rows)]
    if targets:
        lines += ["", "Targets:", ""] + targets
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sleep-runs", type=int, default=3, help="runs of sleep10 (each costs 10 s)")
    ap.add_argument("--modes", default="load,slow")
    ap.add_argument("--strategies", default="immediate,sleep10,reference,pgfailover")
    ap.add_argument("--offset", type=int, default=400,
                    help="port offset of the clusters (added to PGFO_TEST_PORT_BASE)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    a = ap.parse_args()
    modes = a.modes.split(",")
    strategies = a.strategies.split(",")
    for s in strategies:
        if s not in STRATEGIES:
            ap.error("unknown strategy %r" % s)
    global SSHD
    if any(s in SSH_STRATEGIES for s in strategies):
        ok, why = sshd_available()
        if not ok:
            ap.error("pgfailover-ssh: " + why)
        SSHD = Sshd(label="pgfo-bench-sshd").start()
    try:
        return run_all(a, modes, strategies)
    finally:
        if SSHD is not None:
            SSHD.stop()


def run_all(a, modes, strategies):
    results = {}
    started = time.monotonic()
    host = machine()
    for mode in modes:
        for i in range(max(a.runs, a.sleep_runs)):
            # interleave strategies so drift in the machine's state hits all alike
            for s in strategies:
                if i >= (a.sleep_runs if s == "sleep10" else a.runs):
                    continue
                r = one_run(s, mode, a.offset)
                results.setdefault((mode, s), []).append(r)
                print("%-5s %-11s run %d: downtime %s, old primary checkpointed %s, down %s, %s (%s, %s),"
                      " lost %d%s" % (
                    mode, s, i + 1, "%.3f s" % r["gap"] if r["gap"] is not None else "none",
                    "%.3f s" % r["checkpointed"] if r["checkpointed"] is not None else "?",
                    "%.3f s" % r["shutdown"] if r["shutdown"] is not None else "?",
                    "NEEDS REWIND" if r["rewind"] else "rejoined", r.get("said", "-"),
                    "streaming after %.3f s" % r["rejoin"] if r["rejoin"] is not None else "-",
                    r["lost"], ", ERROR " + r["error"] if r["error"] else ""), flush=True)
                if r.get("steps"):
                    print("      pgfailover failover " + r["steps"], flush=True)
                if r.get("ssh"):
                    print("      ssh: %d connection(s), %d remote calls, %.3f s in them" % r["ssh"], flush=True)
    text = report(results, modes, strategies)
    text += "\n\nMachine: %s; %.1f min for this run.\n" % (host, (time.monotonic() - started) / 60)
    return benchlib.finish(text, a.markdown, results)


if __name__ == "__main__":
    sys.exit(main())
