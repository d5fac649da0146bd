#!/usr/bin/env python3
"""pgfailover failover against real PostgreSQL servers, called as pgpool calls it.

(b) planned stop under write load: promotion waits for the shutdown checkpoint,
    the old primary then streams from the new one without pg_rewind, and no
    acknowledged row is lost;
(c) a failed synchronous standby no longer blocks commits;
(d) a crashed primary (immediate stop, kill -9) ends in bounded time with the
    configured on_unclean policy;
(e) a primary that is still running is stopped and failed over, or refused;
plus dry run (changes nothing) and a second run (never promotes twice).

The failure this prevents, an immediate promote, is shown in test_unsafe_promote.py.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster  # noqa: E402
from pgfo import RoleAsserts, failover_hook, write_config  # noqa: E402

PORT_OFFSET = 100


class FailoverTest(RoleAsserts, unittest.TestCase):
    def cluster(self, standbys=1, sync_names="ANY 1 (node1)", offset=0, **kw):
        c = PgCluster(standbys=standbys, sync_names=sync_names,
                      port_offset=PORT_OFFSET + offset, label="pgfo-failover", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    # (b) -------------------------------------------------------------------
    def test_planned_stop_promotes_when_safe_and_old_primary_follows(self):
        c = self.cluster()
        cfg = write_config(c)
        w = c.writer(0, 1)
        time.sleep(0.5)
        c.dirty_buffers(0, 600)
        stopper = c.stop_async(0, "fast")
        # pgpool starts failover_command some 30 ms after the stop begins.
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        stopper.wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        v = run.verdict
        self.assertTrue(v["promoted"], run.describe())
        self.assertEqual(v["old_primary_rejoin"], "clean", run.describe())
        # The promotion waited for the real facts: old primary down, the end
        # of its shutdown checkpoint flushed on the candidate.
        self.assertEqual(run.step("wait_shutdown")["outcome"], "succeeded", run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        start, end, _tli = c.checkpoint_record(0)
        self.assertEqual(v["checkpoint_end"], "%X/%X" % (end >> 32, end & 0xFFFFFFFF))
        self.assertGreaterEqual(int(v["switch_point"].split("/")[0], 16) << 32
                                | int(v["switch_point"].split("/")[1], 16), end)
        self.assertPrimary(c, 1)
        # Two nodes: nobody is left to be synchronous, commits must not wait.
        self.assertEqual(c.sync_standby_names(1), "")
        # Writes resume on the new primary, then the old primary follows.
        w.wait_ack(1, timeout=30)
        self.assertIsNotNone(w.last_ack(1), "no write succeeded on the new primary")
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict.message + "\n" + verdict.log_excerpt)
        w.stop()
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        # a second run (pgpool retrying, an operator) recognises the state
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(again.rc, 0, again.describe())
        self.assertFalse(again.verdict["promoted"])
        self.assertTrue(again.verdict["already_primary"])
        self.assertEqual(again.step("promote")["outcome"], "skipped")

    def test_two_runs_at_once_promote_once(self):
        c = self.cluster(offset=90)
        cfg = write_config(c)
        c.stop_async(0, "fast")
        runs = [failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False) for _ in range(2)]
        for r in runs:
            r.wait(120)
            self.assertEqual(r.rc, 0, r.describe())
        promoted = [r.verdict["promoted"] for r in runs]
        self.assertEqual(sorted(promoted), [False, True], [r.describe() for r in runs])
        loser = runs[promoted.index(False)]
        self.assertTrue(loser.verdict["already_primary"], loser.describe())
        self.assertPrimary(c, 1)
        self.assertEqual(c.psql_value(1, "SELECT count(*) FROM pg_stat_activity"
                                         " WHERE application_name = 'pgfailover'"), "0")

    def test_better_candidate_warned_or_refused(self):
        # pgpool picks the candidate by node id; node 2 has more WAL than node 1.
        c = self.cluster(standbys=2, sync_names="", offset=95)
        c.psql(1, "ALTER SYSTEM SET primary_conninfo = ''")
        c.psql(1, "SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20
        while c.psql_value(1, "SELECT count(*) FROM pg_stat_wal_receiver") != "0":
            self.assertLess(time.monotonic(), deadline, "node1's walreceiver did not stop")
            time.sleep(0.1)
        c.psql(0, "CREATE TABLE only_on_node2 AS SELECT generate_series(1, 1000) i")
        c.wait_replay(2, c.current_lsn(0))
        c.stop(0, "fast")
        refuse = write_config(c, name="refuse.conf")
        with open(refuse) as f:
            text = f.read()
        c._write_owner_file(refuse, text.replace("[policy]\n", "[policy]\non_better_candidate = refuse\n", 1))
        run = failover_hook(c, refuse, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 8, run.describe())  # PGFO_ERR_REFUSED
        self.assertIn("node 2 (127.0.0.1:%d) has" % c.node(2).port, run.stderr)
        self.assertStandby(c, 1)
        cont = failover_hook(c, write_config(c), failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(cont.rc, 0, cont.describe())
        self.assertIn("BETTER CANDIDATE", cont.stderr)
        self.assertIn("WARNING", cont.step("candidates")["summary"])
        self.assertPrimary(c, 1)

    # (c) -------------------------------------------------------------------
    def test_failed_sync_standby_no_longer_blocks_commits(self):
        c = self.cluster(standbys=2, sync_names="ANY 2 (node1, node2)", offset=10)
        cfg = write_config(c)
        c.psql(0, "CREATE TABLE t (i int)")
        c.stop(1, "immediate")
        # With node1 gone, ANY 2 can never be satisfied: a commit hangs.
        done = threading.Event()

        def commit():
            c.psql(0, "INSERT INTO t VALUES (1)", timeout=120, check=False)
            done.set()

        threading.Thread(target=commit, daemon=True).start()
        self.assertFalse(done.wait(2.0), "commit should wait for the missing synchronous standby")
        run = failover_hook(c, cfg, failed=1, new_main=0, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.report["kind"], "standby_failure")
        self.assertEqual(c.sync_standby_names(0), "ANY 1 (node2)")
        self.assertTrue(done.wait(30), "the waiting commit was not released")
        t0 = time.monotonic()
        c.psql(0, "INSERT INTO t VALUES (2)", timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(c.psql_value(0, "SELECT count(*) FROM t"), "2")
        self.assertStandby(c, 2)

    def test_failed_async_standby_changes_nothing(self):
        c = self.cluster(standbys=2, sync_names="FIRST 1 (node2)", offset=20)
        cfg = write_config(c)
        c.stop(1, "immediate")
        run = failover_hook(c, cfg, failed=1, new_main=0, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.step("sync_standbys")["outcome"], "skipped")
        self.assertEqual(c.sync_standby_names(0), "FIRST 1 (node2)")

    # (d) -------------------------------------------------------------------
    def test_crash_promote_policy_reports_rewind(self):
        c = self.cluster(offset=30)
        cfg = write_config(c, on_unclean="promote")
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.stop(0, "immediate")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=60)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertLess(run.elapsed, 30)
        self.assertTrue(run.verdict["promoted"])
        self.assertEqual(run.verdict["old_primary_rejoin"], "needs_rewind")
        self.assertIn("in production", run.verdict["unclean"])
        self.assertIn("needs pg_rewind", run.stderr)
        self.assertPrimary(c, 1)

    def test_crash_abort_policy_leaves_standby_alone(self):
        c = self.cluster(offset=40)
        cfg = write_config(c, on_unclean="abort")
        c.stop(0, "immediate")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=60)
        self.assertEqual(run.rc, 7, run.describe())  # PGFO_ERR_UNCLEAN
        self.assertLess(run.elapsed, 30)
        self.assertIn("NOT promoted", run.stderr)
        self.assertStandby(c, 1)

    def test_kill9_postmaster_stale_pidfile(self):
        c = self.cluster(offset=50)
        cfg = write_config(c, on_unclean="promote")
        c.kill9(0)
        self.assertTrue(os.path.exists(c.node(0).pidfile), "kill -9 should leave postmaster.pid")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=60)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertLess(run.elapsed, 30)
        self.assertEqual(run.step("wait_shutdown")["details"]["postmaster_pid"], "stale")
        self.assertEqual(run.verdict["old_primary_rejoin"], "needs_rewind")
        self.assertPrimary(c, 1)

    # (e) -------------------------------------------------------------------
    def test_running_primary_refused(self):
        c = self.cluster(offset=60)
        cfg = write_config(c, on_running="refuse")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=60)
        self.assertEqual(run.rc, 8, run.describe())  # PGFO_ERR_REFUSED
        self.assertIn("on_running = refuse", run.stderr)
        self.assertPrimary(c, 0)
        self.assertStandby(c, 1)

    def test_running_primary_stopped_then_failed_over(self):
        c = self.cluster(offset=70)
        cfg = write_config(c, on_running="stop")
        w = c.writer(0, 1)
        time.sleep(0.5)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.step("stop_old_primary")["outcome"], "succeeded")
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertFalse(c.is_running(0))
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict.message)
        w.wait_ack(1, timeout=30)
        w.stop()
        self.assertEqual(w.missing_on(1), set())

    def test_dry_run_changes_nothing(self):
        c = self.cluster(offset=80)
        cfg = write_config(c)
        before = c.sync_standby_names(1)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, dry_run=True, timeout=60)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.report["dry_run"])
        self.assertIn("would stop", run.step("stop_old_primary")["summary"])
        self.assertIn("would promote", run.step("promote")["summary"])
        self.assertPrimary(c, 0)
        self.assertStandby(c, 1)
        self.assertEqual(c.sync_standby_names(1), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
