#!/usr/bin/env python3
"""`pgfailover switchover`, on real PostgreSQL servers:

- the gates refuse before any downtime (exit 8, the primary untouched and
  never stopped), each naming the value and the limit: the target's replay
  lag over --max-lag in bytes and in seconds, the archiver backlog over
  [switchover] max_archive_backlog, no synchronous standby left after the
  switch;
- a switchover under write load runs the CHECKPOINT(s) on the primary
  before it stops it, reports the write gap its probe saw (last commit on
  the old primary to the first on the new one), and loses nothing;
- --dry-run lists every step it would run, with its timeout, and changes
  nothing;
- at a terminal (a pty): status prints its table with no log line above it
  and a summary; switchover prints each step as it ends and a summary with
  the write gap; with a pipe instead, the same commands stay log-only.
"""

import os
import pty
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, owner_prefix  # noqa: E402
from pgfo import RoleAsserts, cli_path, start_cli, write_config  # noqa: E402

PORT_OFFSET = 1300
REFUSED = 8


def run_on_pty(argv, timeout=300):
    """Run argv with standard output on a pseudo terminal (standard error a
    pipe): (exit code, what the terminal got, standard error)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.wait(30)
    return proc.returncode, out.decode(errors="replace"), err


class SwitchoverTest(RoleAsserts, unittest.TestCase):
    def cluster(self, offset=0, sync_names="ANY 1 (node1)", **kw):
        c = PgCluster(standbys=1, sync_names=sync_names, port_offset=PORT_OFFSET + offset,
                      label="pgfo-switchover", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def config(self, c, switchover="", target="ANY 1 (node0, node1)"):
        extra = "[replication]\nsynchronous_standby_names = %s\n" % target if target else ""
        if switchover:
            extra += "[switchover]\n" + switchover
        return write_config(c, extra=extra)

    def assert_untouched(self, c, run, pid_before):
        """A refused switchover: node0 still the same running primary (its
        postmaster never restarted), node1 still its standby."""
        self.assertEqual(run.rc, REFUSED, run.describe())
        self.assertPrimary(c, 0)
        self.assertStandby(c, 1)
        self.assertEqual(c.psql_value(0, "SELECT pg_postmaster_start_time()"), pid_before)
        steps = [s["name"] for s in run.report.get("steps", [])]
        self.assertEqual(steps[-1], "gates", run.describe())
        self.assertEqual(run.report.get("parts", []), [])          # no failover was started
        self.assertIn("nothing was changed", run.report["message"])

    def test_gate_max_lag_bytes_and_seconds(self):
        c = self.cluster(offset=0)
        cfg = self.config(c)
        started = c.psql_value(0, "SELECT pg_postmaster_start_time()")
        c.psql(1, "SELECT pg_wal_replay_pause()")
        self.addCleanup(lambda: c.psql(1, "SELECT pg_wal_replay_resume()", check=False))
        # about 4 MB of WAL the standby receives but does not replay, over 3 s
        c.psql(0, "CREATE TABLE lag_pad (x text)")
        for _ in range(6):
            c.psql(0, "INSERT INTO lag_pad SELECT repeat('x', 1000) FROM generate_series(1, 600)")
            time.sleep(0.5)
        run = start_cli(["switchover", "--to", "1", "--max-lag", "1MB"], cfg).wait(120)
        self.assert_untouched(c, run, started)
        msg = run.report["message"]
        self.assertIn("over max_lag = 1MB (1048576 bytes)", msg)
        self.assertRegex(msg, r"node 1 \(.*\) replays \d+ kB \(\d+ bytes\) behind the primary node 0")
        lag = run.report["steps"][-1]["error"]
        self.assertIn("max_lag", lag)
        run = start_cli(["switchover", "--to", "1", "--max-lag", "1s"], cfg).wait(120)
        self.assert_untouched(c, run, started)
        self.assertRegex(run.report["message"], r"replays \d+\.\d{3} s behind the primary .* over max_lag = 1s")
        # a limit it is within: the gate passes (dry run: nothing changes)
        run = start_cli(["switchover", "--to", "1", "--max-lag", "1GB", "--dry-run"], cfg).wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        gates = run.step("gates")
        self.assertEqual(gates["outcome"], "succeeded", run.describe())
        self.assertGreater(gates["details"]["replay_lag_bytes"], 1 << 20)

    def test_gate_archiver_backlog(self):
        c = self.cluster(offset=10, extra_conf={"archive_mode": "on", "archive_command": "'false'"})
        cfg = self.config(c, switchover="max_archive_backlog = 2\n")
        started = c.psql_value(0, "SELECT pg_postmaster_start_time()")
        c.psql(0, "CREATE TABLE arch (x int)")
        for i in range(4):
            c.psql(0, "INSERT INTO arch VALUES (%d)" % i)
            c.psql(0, "SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30   # the archiver tries (and fails) at least once
        while time.monotonic() < deadline and c.psql_value(
                0, "SELECT failed_count FROM pg_stat_archiver") == "0":
            time.sleep(0.2)
        run = start_cli(["switchover", "--to", "1"], cfg).wait(120)
        self.assert_untouched(c, run, started)
        msg = run.report["message"]
        self.assertRegex(msg, r"node 0 \(.*\) has [4-9] WAL files waiting for archive_command, over "
                              r"max_archive_backlog = 2 \(pg_stat_archiver: archiving fails")

    def test_gate_no_synchronous_standby_left(self):
        # node0 waits for node1 only: once node1 is the primary, nobody named is left
        c = self.cluster(offset=20, sync_names="node1")
        cfg = self.config(c, target="")
        started = c.psql_value(0, "SELECT pg_postmaster_start_time()")
        run = start_cli(["switchover", "--to", "1"], cfg).wait(120)
        self.assert_untouched(c, run, started)
        self.assertIn("no synchronous standby would remain after the switch: synchronous_standby_names "
                      "'node1' names none of the standbys node 1", run.report["message"])
        self.assertIn("(node0)", run.report["message"])

    def test_switchover_checkpoints_first_and_reports_the_write_gap(self):
        c = self.cluster(offset=30)
        cfg = self.config(c, switchover="checkpoint = twice\n")
        w = c.writer(0, 1)
        w.wait_ack(0, timeout=20)
        c.dirty_buffers(0, 100)
        run = start_cli(["switchover", "--to", "1"], cfg).wait(300)
        self.assertEqual(run.rc, 0, run.describe())
        w.wait_ack(1, timeout=30)
        w.stop()
        self.assertPrimary(c, 1)
        self.assertStandby(c, 0)
        names = [s["name"] for s in run.report["steps"]]
        self.assertEqual(names, ["preflight", "gates", "checkpoint"])
        ck = run.step("checkpoint")
        self.assertEqual(ck["outcome"], "succeeded", run.describe())
        self.assertEqual(len(ck["details"]["seconds"]), 2)
        gap = run.verdict["write_gap_s"]
        self.assertIsInstance(gap, float, run.describe())
        self.assertGreater(gap, 0)
        self.assertLess(gap, run.elapsed)
        probe = run.report["write_probe"]
        self.assertGreater(probe["commits_old"], 0)
        self.assertLess(probe["last_commit_old"], probe["first_commit_new"])
        self.assertIn("write gap %.3f s" % gap, run.report["message"])
        # the writer's own gap spans the probe's (both see the same outage)
        old, new = w.last_ack(0), w.first_ack(1)
        self.assertGreater((new[2] - old[2]) + 0.5, gap)
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0)")
        self.assertEqual(w.missing_on(1), set())

    def test_dry_run_prints_every_step_with_its_timeout(self):
        c = self.cluster(offset=40)
        cfg = self.config(c)
        run = start_cli(["switchover", "--to", "1", "--dry-run"], cfg).wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        plan = run.report["plan"]
        steps = [(p["run"], p["step"]) for p in plan]
        for want in [("switchover", "checkpoint"), ("failover", "stop_old_primary"), ("failover", "wait_shutdown"),
                     ("failover", "wait_flush"), ("failover", "promote"), ("follow_primary node 0", "start"),
                     ("follow_primary node 0", "restore_sync")]:
            self.assertIn(want, steps)
        timeouts = {(p["run"], p["step"]): p["timeout_s"] for p in plan}
        self.assertEqual(timeouts[("failover", "wait_shutdown")], 60)   # write_config's shutdown
        self.assertEqual(timeouts[("failover", "wait_flush")], 20)      # and catchup
        self.assertPrimary(c, 0)
        self.assertStandby(c, 1)
        # the text form lists them too
        text = start_cli(["switchover", "--to", "1", "--dry-run"], cfg, json_report=False).wait(120)
        self.assertEqual(text.rc, 0, text.describe())
        self.assertIn("Plan (dry run, nothing changed): %d steps" % len(plan), text.stdout)
        self.assertRegex(text.stdout, r"\n  wait_shutdown +60 s  wait until the old primary is down")

    def test_terminal_output(self):
        c = self.cluster(offset=50)
        cfg = self.config(c)
        base = list(owner_prefix()) + [cli_path(), "--config", cfg]
        # status at a terminal: the table first, no log line, a summary
        rc, out, err = run_on_pty(base + ["status"], timeout=60)
        self.assertEqual(rc, 0, out + err)
        lines = [ln for ln in out.replace("\r\033[K", "").replace("\r", "").split("\n") if ln.strip()]
        self.assertTrue(lines[0].startswith("node "), out)
        self.assertNotIn(" info ", out + err)
        self.assertIn("2 nodes: primary node 0, 1 standby(s), 0 down", out)
        # status into a pipe: the table, still no info line above it
        piped = start_cli(["status"], cfg, json_report=False).wait(60)
        self.assertEqual(piped.rc, 0, piped.describe())
        self.assertTrue(piped.stdout.startswith("node "), piped.describe())
        self.assertNotIn(" info ", piped.stderr)
        # switchover at a terminal: each step as it ends, then the summary
        rc, out, err = run_on_pty(base + ["switchover", "--to", "1"], timeout=300)
        self.assertEqual(rc, 0, out + err)
        for step in ("preflight", "gates", "checkpoint", "wait_shutdown", "promote", "wait_streaming"):
            self.assertRegex(out, r"  (done|skip) %s +\d+\.\d{3} s  " % step)
        self.assertRegex(out, r"switchover succeeded in \d+\.\d s")
        self.assertRegex(out, r"write gap: +\d+\.\d{3} s")
        self.assertNotIn(" info ", err)
        self.assertPrimary(c, 1)
        # and back, into a pipe without --json: log lines only, no terminal control
        piped = start_cli(["switchover", "--to", "0"], cfg, json_report=False).wait(300)
        self.assertEqual(piped.rc, 0, piped.describe())
        self.assertIn("step wait_shutdown", piped.stderr)
        self.assertNotIn("\033[K", piped.stdout)
        self.assertNotIn("  done ", piped.stdout)
        self.assertPrimary(c, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
