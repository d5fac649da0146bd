#!/usr/bin/env python3
"""Soak: twenty planned switchovers back and forth under pgbench load.

Three nodes (a primary and two standbys), synchronous_standby_names
'ANY 1 (...)'; pgfailover's [replication] synchronous_standby_names names all
three nodes, so every switchover has to restore it, without the new primary.
Node 0 and node 1 take turns as the primary; node 2 stays a standby and
follows each new primary.

Each leg: pgbench (custom script, several clients, per-transaction log) inserts
rows tagged with the leg number into the current primary; `pgfailover
switchover --to N` stops that primary (its pgbench clients abort) and the next
leg's pgbench starts on the new one. The fixture's Writer inserts through all
legs and records every acknowledged id. For every switchover the test asserts:

- the command exits 0 and its JSON report has a failover and a follow_primary
  part for the old primary and for node 2;
- no rewind: the failover verdict says the old primary can rejoin without
  pg_rewind, its follow_primary part says it rejoined "clean" with the rewind
  step skipped, and the old primary and node 2 stream from the new primary;
- exactly one node is out of recovery, the new primary;
- synchronous_standby_names on the new primary is the configured value
  restricted to the other two nodes, and both are quorum standbys;
- nothing acknowledged is lost: for each pgbench client, the rows of the leg
  on the new primary are at least the transactions its per-transaction log
  recorded, and every id the Writer had acknowledged is there.

At the end the same is checked again on the final primary (and the row counts
of every leg must not have changed since their switchover), and every node
holds the same rows. A table, one row per switchover, goes to standard output
and, as markdown, to the file named by $PGFO_SOAK_TABLE if set:

    switchover_s   the switchover command's run time
    pgbench_acked  the leg's transactions in pgbench's per-transaction log
    rows_present   the leg's rows on the final primary (more than acknowledged
                   when a commit was cut off while waiting for a standby)
    writer_acked   the writer's acknowledged inserts since the previous switchover
    writer_gap_s   the writer's longest time without an acknowledgement during
                   the switchover (its write downtime)
    lost           acknowledged rows (pgbench's and the writer's) not present
    rewind         whether any node needed pg_rewind to rejoin
    tli            the new primary's timeline

PGFO_SOAK_SWITCHOVERS and PGFO_SOAK_LEG_SECONDS (seconds of load before each
switchover) change the defaults, 20 and 2.
"""

import bisect
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, SUPERUSER, _clean_env  # noqa: E402
from pgfo import start_cli, write_config  # noqa: E402

PORT_OFFSET = 1000
SWITCHOVERS = int(os.environ.get("PGFO_SOAK_SWITCHOVERS", "20"))
LEG_SECONDS = float(os.environ.get("PGFO_SOAK_LEG_SECONDS", "2"))
CLIENTS = 4
TABLE = "soak"
TARGET_SYNC = "ANY 1 (node0, node1, node2)"   # what pgfailover restores

PGBENCH_SCRIPT = """\
INSERT INTO soak (leg, client) VALUES (:leg, :client_id);
"""


def expected_sync(primary):
    others = ", ".join("node%d" % n for n in (0, 1, 2) if n != primary)
    return "ANY 1 (%s)" % others


class Pgbench:
    """One leg's pgbench on one node: -n -f script -c CLIENTS -l, leg=N."""

    def __init__(self, cluster, node, leg, workdir):
        self.leg = leg
        self.node = cluster.node(node)
        self.prefix = os.path.join(workdir, "leg%02d" % leg)
        script = os.path.join(workdir, "insert.sql")
        exe = cluster.pg_bin("pgbench")
        if not os.path.exists(exe):
            exe = shutil.which("pgbench") or "/usr/bin/pgbench"
        self.argv = [exe, "-n", "-f", script, "-c", str(CLIENTS), "-j", "2",
                     "-T", "600", "-D", "leg=%d" % leg, "-l", "--log-prefix", self.prefix,
                     "-h", self.node.host, "-p", str(self.node.port), "-U", SUPERUSER,
                     "postgres"]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=_clean_env(), cwd=workdir)
        self.started = time.monotonic()
        self.rc = None
        self.out = self.err = ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=60):
        """Wait for it to end (its clients abort when the primary stops)."""
        try:
            self.out, self.err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            self.rc = "killed"
            return self
        self.rc = self.proc.returncode
        return self

    def reported(self):
        """'number of transactions actually processed' from pgbench's summary."""
        m = re.search(r"number of transactions actually processed: (\d+)", self.out)
        return int(m.group(1)) if m else None

    def acked_per_client(self):
        """{client_id: transactions its -l log recorded as completed}."""
        counts = {}
        files = glob.glob(self.prefix + ".*")
        for path in files:
            with open(path) as f:
                for line in f:
                    fields = line.split()
                    # client_id transaction_no time script_no time_epoch time_us
                    if len(fields) >= 6 and fields[2].isdigit():
                        c = int(fields[0])
                        counts[c] = counts.get(c, 0) + 1
        return counts

    def describe(self):
        return "pgbench leg %d on %s: rc=%s\nstdout:\n%s\nstderr (tail):\n%s" % (
            self.leg, self.node.name, self.rc, self.out,
            "\n".join(self.err.splitlines()[-15:]))


class SoakTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="pgfo-soak-")
        self.addCleanup(shutil.rmtree, self.work, True)
        with open(os.path.join(self.work, "insert.sql"), "w") as f:
            f.write(PGBENCH_SCRIPT)

    def config(self, c):
        """pgfailover.conf: sync to restore, and rewind = auto, so that a
        switchover that needed pg_rewind would show one instead of failing."""
        path = write_config(c, extra="[replication]\nsynchronous_standby_names = %s\n" % TARGET_SYNC)
        with open(path) as f:
            text = f.read()
        c.write_owner_file(path, text.replace("[policy]\n", "[policy]\nrewind = auto\n", 1))
        return path

    def pgbench(self, c, node, leg):
        b = Pgbench(c, node, leg, self.work)
        self.addCleanup(b.stop)
        return b

    def wait_streaming(self, c, primary, expect, timeout=20):
        """pg_stat_replication on `primary` shows `expect` ({name: sync_state});
        bounded wait, since quorum state is reported once a standby replied."""
        deadline = time.monotonic() + timeout
        while True:
            got = c.replication(primary)
            if got == expect or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    @staticmethod
    def leg_counts(c, node):
        """{(leg, client): rows} on `node`."""
        rows = c.psql(node, "SELECT leg, client, count(*) FROM %s GROUP BY 1, 2" % TABLE)
        return {(int(r[0]), int(r[1])): int(r[2]) for r in rows}

    @staticmethod
    def write_gap(ack_times, since, until):
        """The writer's longest time without an acknowledgement during a
        switchover run from `since` to `until` (from the last ack before it to
        the first one after it, if it had none meanwhile)."""
        lo = bisect.bisect_right(ack_times, since) - 1
        hi = bisect.bisect_left(ack_times, until)
        if lo < 0 or hi >= len(ack_times):
            return None
        window = ack_times[lo:hi + 1]
        return max(b - a for a, b in zip(window, window[1:]))

    @staticmethod
    def leg_lost(acked, counts, leg):
        """Acknowledged pgbench transactions of `leg` without their row."""
        return sum(max(0, n - counts.get((leg, client), 0)) for client, n in acked.items())

    def test_switchovers_under_pgbench(self):
        t_test = time.monotonic()
        c = PgCluster(standbys=2, sync_names="ANY 1 (node1, node2)", port_offset=PORT_OFFSET,
                      label="pgfo-soak")
        self.addCleanup(c.teardown)
        c.start()
        cfg = self.config(c)
        c.psql(0, "CREATE TABLE %s (id bigserial PRIMARY KEY, leg int NOT NULL,"
                  " client int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())" % TABLE)
        w = c.writer(0, 1)
        self.assertIsNotNone(w.wait_ack(0, timeout=20), "the writer never wrote on node0")

        results = []
        bench = self.pgbench(c, 0, 1)
        try:
            self.switchovers(c, cfg, w, bench, results)
        except BaseException:
            if results:
                print("\nswitchovers so far (rows as seen right after each):\n%s"
                      % self.table(results), flush=True)
            raise
        primary = results[-1]["to"]

        # ---- the end: final primary, every node the same rows
        self.assertIsNotNone(w.wait_ack(primary, timeout=20))
        w.stop()
        ack_times = sorted(a[2] for a in w.acked)
        final_counts = self.leg_counts(c, primary)
        missing = w.missing_on(primary)
        for r in results:
            r["rows_present"] = sum(n for (lg, _), n in final_counts.items() if lg == r["leg"])
            r["writer_acked"] = len(r["writer_ids"])
            r["writer_lost"] = len(r["writer_ids"] & missing)
            r["pgbench_lost"] = self.leg_lost(r["acked_per_client"], final_counts, r["leg"])
            r["lost"] = r["pgbench_lost"] + r["writer_lost"]
            r["writer_gap"] = self.write_gap(ack_times, r["so_start"], r["so_end"])
        lsn = c.current_lsn(primary)
        for n in (0, 1, 2):
            if n != primary:
                c.wait_replay(n, lsn, timeout=60)
        replicas = {n: self.leg_counts(c, n) for n in (0, 1, 2)}

        table = self.table(results)
        print("\n%d switchovers under pgbench (-c %d) and the writer, %.0f s in all\n"
              % (len(results), CLIENTS, time.monotonic() - t_test))
        print(table, flush=True)
        out = os.environ.get("PGFO_SOAK_TABLE")
        if out:
            with open(out, "w") as f:
                f.write(self.markdown(results))

        self.assertEqual(missing, set(), "acknowledged writer rows lost on the final primary")
        for r in results:
            self.assertEqual(r["lost"], 0, "leg %d: rows lost on the final primary" % r["leg"])
            self.assertEqual(r["rows_present"], r["rows_after"],
                             "leg %d: its rows changed after its switchover" % r["leg"])
            self.assertGreater(r["writer_acked"], 0, "leg %d: the writer acknowledged nothing"
                               % r["leg"])
        for n in (0, 1, 2):
            self.assertEqual(replicas[n], final_counts, "node%d holds other rows than the"
                             " final primary node%d" % (n, primary))

    def switchovers(self, c, cfg, w, bench, results):
        """SWITCHOVERS switchovers between node0 and node1 under `bench` (leg 1's
        pgbench, on node0) and the writer `w`, each checked at once; one dict
        per switchover is appended to `results`."""
        writer_seen = set()
        primary = 0
        for leg in range(1, SWITCHOVERS + 1):
            target = 1 - primary
            time.sleep(LEG_SECONDS)
            if not bench.running():
                self.fail("pgbench ended before switchover %d:\n%s"
                          % (leg, bench.wait(5).describe()))

            so_start = time.monotonic()
            run = start_cli(["switchover", "--to", str(target)], cfg).wait(300)
            so_end = time.monotonic()
            what = "switchover %d (%d->%d)" % (leg, primary, target)
            self.assertEqual(run.rc, 0, "%s: %s" % (what, run.describe()))
            bench.wait(60)
            self.assertNotEqual(bench.rc, "killed", "%s: pgbench did not end when its primary"
                                " stopped\n%s" % (what, bench.describe()))

            # the next leg's load starts at once; the checks below run under it
            next_bench = self.pgbench(c, target, leg + 1) if leg < SWITCHOVERS else None

            # ---- the report: failover, then the old primary and node 2 follow
            parts = run.report.get("parts", [])
            kinds = [(p.get("kind"), p.get("verdict", {}).get("follower")) for p in parts]
            self.assertEqual(kinds, [("failover", None), ("follow_primary", primary),
                                     ("follow_primary", 2)], "%s: %s" % (what, run.describe()))
            fo, fol_old, fol_2 = parts
            self.assertEqual(fo["verdict"]["new_primary"], target, what)
            rewinds = []
            if fo["verdict"].get("old_primary_rejoin") != "clean":
                rewinds.append("failover verdict: old primary %s"
                               % fo["verdict"].get("old_primary_rejoin"))
            for p in (fol_old, fol_2):
                how = p["verdict"].get("rejoin")
                step = next((s for s in p.get("steps", []) if s.get("name") == "rewind"), {})
                if how != "clean" or step.get("outcome") != "skipped":
                    rewinds.append("node%s rejoin %s, rewind step %s"
                                   % (p["verdict"].get("follower"), how, step.get("outcome")))

            # ---- the cluster: one primary, both others streaming as quorum standbys
            in_recovery = {n: c.psql_value(n, "SELECT pg_is_in_recovery()") for n in (0, 1, 2)}
            sync_after = c.sync_standby_names(target)
            standbys = self.wait_streaming(c, target, {"node%d" % primary: "quorum",
                                                       "node2": "quorum"})

            # ---- acknowledged rows of this leg, and every Writer ack so far
            acked_ids = w.acked_ids
            counts = self.leg_counts(c, target)
            acked = bench.acked_per_client()
            n_acked = sum(acked.values())
            present = sum(n for (lg, _), n in counts.items() if lg == leg)
            lost = self.leg_lost(acked, counts, leg)
            writer_ids = acked_ids - writer_seen
            writer_seen |= writer_ids
            writer_missing = w.missing_on(target) & acked_ids

            results.append({
                "leg": leg, "from": primary, "to": target, "seconds": run.elapsed,
                "pgbench_acked": n_acked, "pgbench_reported": bench.reported(),
                "acked_per_client": acked, "rows_after": present,
                "writer_ids": writer_ids, "rewinds": rewinds, "sync_after": sync_after,
                "timeline": fo["verdict"].get("new_timeline"), "so_start": so_start, "so_end": so_end,
                # as seen right after the switchover; the end replaces them
                "rows_present": present, "writer_acked": len(writer_ids),
                "lost": lost + len(writer_missing), "writer_gap": None,
            })

            self.assertEqual([n for n, v in in_recovery.items() if v == "f"], [target],
                             "%s: pg_is_in_recovery() per node: %s" % (what, in_recovery))
            self.assertEqual(rewinds, [], "%s: %s" % (what, run.describe()))
            self.assertEqual(standbys, {"node%d" % primary: "quorum", "node2": "quorum"},
                             "%s: pg_stat_replication on node%d" % (what, target))
            self.assertEqual(sync_after, expected_sync(target), what)
            self.assertGreater(n_acked, 0, "%s: pgbench acknowledged nothing\n%s"
                               % (what, bench.describe()))
            self.assertEqual(n_acked, bench.reported(), "%s: -l log and summary differ\n%s"
                             % (what, bench.describe()))
            self.assertEqual(lost, 0, "%s: pgbench rows lost: acked %s, present %s"
                             % (what, acked, {k: v for k, v in counts.items() if k[0] == leg}))
            self.assertEqual(writer_missing, set(), "%s: writer rows lost" % what)

            primary = target
            bench = next_bench


    # ---- output -------------------------------------------------------------

    COLUMNS = ["#", "from->to", "switchover_s", "pgbench_acked", "rows_present",
               "writer_acked", "writer_gap_s", "lost", "rewind", "tli", "sync_standby_names_after"]

    def rows(self, results):
        out = []
        for r in results:
            out.append([str(r["leg"]), "%d->%d" % (r["from"], r["to"]), "%.2f" % r["seconds"],
                        str(r["pgbench_acked"]), str(r["rows_present"]), str(r["writer_acked"]),
                        "-" if r["writer_gap"] is None else "%.2f" % r["writer_gap"],
                        str(r["lost"]), "yes" if r["rewinds"] else "no", str(r["timeline"]),
                        r["sync_after"]])
        secs = [r["seconds"] for r in results]
        gaps = [r["writer_gap"] for r in results if r["writer_gap"] is not None]
        out.append(["total", "%d" % len(results),
                    "%.2f (mean %.2f, max %.2f)" % (sum(secs), sum(secs) / len(secs), max(secs)),
                    str(sum(r["pgbench_acked"] for r in results)),
                    str(sum(r["rows_present"] for r in results)),
                    str(sum(r["writer_acked"] for r in results)),
                    "-" if not gaps else "max %.2f" % max(gaps),
                    str(sum(r["lost"] for r in results)),
                    str(sum(1 for r in results if r["rewinds"])), "", ""])
        return out

    def table(self, results):
        rows = [self.COLUMNS] + self.rows(results)
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.COLUMNS))]
        return "\n".join("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip()
                         for r in rows)

    def markdown(self, results):
        lines = ["| " + " | ".join(self.COLUMNS) + " |",
                 "|" + "|".join("---" for _ in self.COLUMNS) + "|"]
        for r in self.rows(results):
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines) + "\n"


if __name__ == "__main__":
    unittest.main(verbosity=2)
