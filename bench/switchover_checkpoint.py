#!/usr/bin/env python3
"""bench/switchover_checkpoint: the write gap of `pgfailover switchover`
with and without the CHECKPOINT it runs on the primary before the stop.

Every run: a fresh primary + synchronous standby on 127.0.0.1, pgbench
writing to the primary, a probe writer committing one row per transaction
(to whichever node is the primary), then `pgfailover switchover --to 1` with
[switchover] checkpoint set to one of:

  off     no CHECKPOINT: the shutdown checkpoint writes every dirty buffer
          while no node accepts writes
  once    one CHECKPOINT while the primary still serves writes
  twice   that, then a second one, nearly empty, right before the stop

Two variants: `light` (pgbench only) and `heavy` (pgbench and DIRTY_MB of
freshly written rows, so many dirty shared buffers at the switch).

Measured per run: the write gap the writer saw (its last commit on the old
primary to its first on the new one), the gap the switchover's own probe
reported (write_gap_s in its report), the command's run time, the time from
the command's start to the writer's first commit on the new primary, whether
the old primary rejoined without pg_rewind, and acknowledged rows missing on
the new primary. Modes are interleaved run by run, so drift in the machine's
state hits them alike; speed is given as ratios of medians against `off`.

    bench/switchover_checkpoint.py [--runs 5] [--variants light,heavy]
                                   [--modes off,once,twice] [--offset 450]
                                   [--markdown FILE]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from benchlib import ratio, summary  # noqa: E402
from pgcluster import PgCluster, Writer  # noqa: E402
from pgfo import start_cli, write_config  # noqa: E402
from switchover import DIRTY_MB, SYNC_TARGET, machine, pgbench  # noqa: E402


def one_run(mode, variant, offset):
    r = {"gap": None, "probe_gap": None, "command": None, "first_new": None, "rewind": None,
         "lost": 0, "ckpt": None, "error": None}
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=offset, label="pgfo-bench") as c:
        cfg = write_config(c, extra="[replication]\nsynchronous_standby_names = %s\n"
                                    "[switchover]\ncheckpoint = %s\n" % (SYNC_TARGET, mode))
        pgbench(c, ["-i", "-q", "-s", "10"]).wait(300)
        load = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"])
        w = Writer(c, [0, 1], retry_interval=0.005)
        c.writers.append(w)
        w.start()
        try:
            time.sleep(2.0)
            if variant == "heavy":
                c.dirty_buffers(0, DIRTY_MB)
            t0 = time.monotonic()
            run = start_cli(["switchover", "--to", "1"], cfg).wait(300)
            r["command"] = run.elapsed
            if run.rc != 0:
                raise RuntimeError("switchover rc %s: %s" % (run.rc, run.report.get("message", run.stderr[-300:])))
            r["gap"], r["first_new"] = benchlib.switch_gap(w, t0)
            r["probe_gap"] = run.verdict.get("write_gap_s")
            r["rewind"] = run.verdict.get("old_primary_rejoin") != "clean"
            step = next((s for s in run.report.get("steps", []) if s["name"] == "checkpoint"), None)
            r["ckpt"] = step["duration_s"] if step and step["outcome"] == "succeeded" else None
        except Exception as e:  # noqa: BLE001 - one bad run must not lose the others
            r["error"] = benchlib.error_text(e)
        benchlib.end_run(r, (load,), w, 1)
    return r


def report(results, variants, modes):
    rows, targets = [], []
    for v in variants:
        med = {}
        for m in modes:
            rs = results.get((v, m), [])
            med[m] = (summary([r["gap"] for r in rs]) or [None, None])[1]
        for m in modes:
            rs = results.get((v, m), [])
            if not rs:
                continue
            errors = sum(1 for r in rs if r["error"])
            rows.append([v, m, len(rs) if not errors else "%d (%d failed)" % (len(rs), errors),
                         benchlib.median_max([r["gap"] for r in rs]), ratio(med[m], med.get("off")),
                         benchlib.median_max([r["probe_gap"] for r in rs]),
                         benchlib.median_max([r["first_new"] for r in rs]),
                         benchlib.median_max([r["ckpt"] for r in rs]),
                         benchlib.median_max([r["command"] for r in rs]),
                         "%d of %d" % (sum(1 for r in rs if r["rewind"]), sum(1 for r in rs if r["rewind"] is not None)),
                         sum(r["lost"] for r in rs)])
        best = min((m for m in modes if med.get(m)), key=lambda m: med[m], default=None)
        if best:
            targets.append("- %s: shortest median write gap with checkpoint = %s" % (v, best))
        if v == "heavy" and med.get("off"):
            for m in modes:
                if m != "off" and med.get(m):
                    x = med[m] / med["off"]
                    targets.append("- heavy, checkpoint = %s: at most 0.6x the gap without it: %.2fx, **%s**"
                                   % (m, x, "met" if x <= 0.6 else "not met"))
    lines = [benchlib.table(
        ["variant", "checkpoint", "runs", "writer gap median / max (s)", "vs off",
         "probe gap (report) median / max (s)", "command start to first write on new (s)",
         "pre-checkpoint step (s)", "command run time (s)", "rewinds", "rows lost"], rows)]
    lines += ["", "Ratios are of medians, within this one run."]
    if targets:
        lines += ["", "Targets:", ""] + targets
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--variants", default="light,heavy")
    ap.add_argument("--modes", default="off,once,twice")
    ap.add_argument("--offset", type=int, default=450,
                    help="port offset of the clusters (added to PGFO_TEST_PORT_BASE)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    a = ap.parse_args()
    variants, modes = a.variants.split(","), a.modes.split(",")
    results = {}
    started = time.monotonic()
    host = machine()
    for v in variants:
        for i in range(a.runs):
            for m in modes:
                r = one_run(m, v, a.offset)
                results.setdefault((v, m), []).append(r)
                print("%-5s checkpoint=%-5s run %d: writer gap %s, probe gap %s, checkpoint step %s, command %s,"
                      " %s, lost %d%s" % (
                          v, m, i + 1, "%.3f s" % r["gap"] if r["gap"] is not None else "none",
                          "%.3f s" % r["probe_gap"] if r["probe_gap"] is not None else "none",
                          "%.3f s" % r["ckpt"] if r["ckpt"] is not None else "-",
                          "%.2f s" % r["command"] if r["command"] is not None else "-",
                          "NEEDS REWIND" if r["rewind"] else "rejoined", r["lost"],
                          ", ERROR " + r["error"] if r["error"] else ""), flush=True)
    text = report(results, variants, modes)
    text += "\n\nMachine: %s; %.1f min for this run.\n" % (host, (time.monotonic() - started) / 60)
    return benchlib.finish(text, a.markdown, results)


if __name__ == "__main__":
    sys.exit(main())
