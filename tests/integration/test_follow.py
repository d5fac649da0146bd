#!/usr/bin/env python3
"""Bringing nodes back, on real PostgreSQL servers:

- after a failover, `pgfailover follow-primary` (pgpool's follow_primary_command)
  makes the old primary a standby of the new one without pg_rewind, and
  restores synchronous replication;
- a three-node cluster: both remaining nodes follow the new primary, at once;
- a forced divergence: rewind = never refuses and leaves the data untouched,
  rewind = auto brings the node back through pg_rewind; a diverged node
  already started as a standby, caught while the new primary lists it as
  streaming (the old timeline, up to the fork), is not taken for a follower;
- ten switchovers back and forth under write load: each time the old primary
  rejoins without rewind, synchronous replication is restored, nothing lost;
- a replication role and an application_name with a quote or a backslash
  (o'neil, DOM\\svc, node0\\x): the old primary streams from the new one
  under exactly that role and name (postgresql.auto.conf on 15, recovery.conf
  on 11).
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import MiniConn, PgCluster, PgError, pg_bindir  # noqa: E402
from pgfo import failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 200


def follow_hook(c, cfg, follower, new_primary, old_primary, timeout=180):
    """pgfailover follow-primary with pgpool's arguments (%d follows %m)."""
    args = ["follow-primary"] + pgpool_args(c, follower, new_primary, old_primary)
    return start_cli(args, cfg).wait(timeout)


def switchover(cfg, to, timeout=300):
    return start_cli(["switchover", "--to", str(to)], cfg).wait(timeout)


class FollowTest(unittest.TestCase):
    def cluster(self, standbys=1, sync_names="ANY 1 (node0, node1)", offset=0, **kw):
        c = PgCluster(standbys=standbys, sync_names=sync_names,
                      port_offset=PORT_OFFSET + offset, label="pgfo-follow", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def config(self, c, target, rewind="never", **kw):
        """pgfailover.conf with the synchronous_standby_names to restore and
        the rewind policy (added to write_config's [policy] section)."""
        path = write_config(c, extra="[replication]\nsynchronous_standby_names = %s\n" % target, **kw)
        with open(path) as f:
            text = f.read()
        c._write_owner_file(path, text.replace("[policy]\n", "[policy]\nrewind = %s\n" % rewind, 1))
        return path

    def test_old_primary_follows_and_sync_is_restored(self):
        c = self.cluster()
        cfg = self.config(c, "ANY 1 (node0, node1)")
        w = c.writer(0, 1)
        time.sleep(0.3)
        c.dirty_buffers(0, 300)
        c.stop_async(0, "fast")
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(c.sync_standby_names(1), "")          # nobody left to wait for
        c.wait_stopped(0)
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(fol.verdict["rejoin"], "clean", fol.describe())
        self.assertEqual(fol.step("rewind")["outcome"], "skipped")
        self.assertIn("not past", fol.step("decide")["summary"])
        self.assertEqual(c.replication(1), {"node0": "quorum"})
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0)")
        self.assertTrue(os.path.exists(os.path.join(c.node(0).datadir, "postgresql.auto.conf.pgfailover.bak")))
        # commits wait for node0 again, and succeed
        c.psql(1, "CREATE TABLE after_follow AS SELECT 1 AS x", timeout=20)
        w.wait_ack(1, timeout=20)
        w.stop()
        self.assertEqual(w.missing_on(1), set())
        # pgpool may call it again: recognised, nothing restarted
        again = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(again.rc, 0, again.describe())
        self.assertEqual(again.verdict["rejoin"], "already")
        self.assertEqual(again.step("start")["outcome"], "skipped")

    def test_three_nodes_both_follow_at_once(self):
        c = self.cluster(standbys=2, sync_names="ANY 1 (node1, node2)", offset=10)
        cfg = self.config(c, "ANY 1 (node0, node1, node2)")
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 10000) i")
        c.stop(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        # pgpool runs follow_primary_command for every node it marked down, concurrently
        runs = [start_cli(["follow-primary"] + pgpool_args(c, n, 1, 0), cfg) for n in (2, 0)]
        for r in runs:
            r.wait(180)
            self.assertEqual(r.rc, 0, r.describe())
        self.assertEqual(sorted(c.replication(1)), ["node0", "node2"])
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0, node2)")
        self.assertEqual(c.psql_value(2, "SELECT count(*) FROM t"), "10000")
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "t")

    def diverge(self, c):
        """Promote node1 while node0 still writes: node0 goes past the fork."""
        c.psql(0, "CREATE TABLE d AS SELECT generate_series(1, 1000) i")
        c.wait_replay(1, c.current_lsn(0))
        self.assertTrue(c.promote(1))
        # only on the old timeline; node1 no longer confirms, so commit locally
        c.psql(0, "SET synchronous_commit = local; INSERT INTO d SELECT generate_series(1, 50000)")
        c.stop(0, "fast")

    def test_diverged_node_refused_with_rewind_never(self):
        c = self.cluster(offset=20)
        cfg = self.config(c, "ANY 1 (node0, node1)")
        self.diverge(c)
        auto = os.path.join(c.node(0).datadir, "postgresql.auto.conf")
        with open(auto, "rb") as f:
            before = f.read()
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 8, fol.describe())  # PGFO_ERR_REFUSED
        self.assertIn("without pg_rewind", fol.stderr)
        self.assertIn("PAST", fol.stderr)
        self.assertIn("rewind = never", fol.stderr)
        with open(auto, "rb") as f:
            self.assertEqual(f.read(), before, "data directory must be left untouched")
        self.assertFalse(os.path.exists(os.path.join(c.node(0).datadir, "standby.signal")))
        self.assertFalse(c.is_running(0))

    def test_diverged_node_rewound_with_rewind_auto(self):
        c = self.cluster(offset=30)
        cfg = self.config(c, "ANY 1 (node0, node1)", rewind="auto")
        self.diverge(c)
        c.psql(1, "SET synchronous_commit = local; INSERT INTO d SELECT generate_series(1, 7)")
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0, timeout=300)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(fol.verdict["rejoin"], "rewound", fol.describe())
        self.assertEqual(fol.step("rewind")["outcome"], "succeeded")
        self.assertIn("node0", c.replication(1))
        # node0 now has the new primary's data, not its own diverged rows
        c.wait_replay(0, c.current_lsn(1))
        self.assertEqual(c.psql_value(0, "SELECT count(*) FROM d"), "1007")
        # its own configuration was kept (pg_rewind copies the source's)
        with open(os.path.join(c.node(0).datadir, "node.conf")) as f:
            own = f.read()
        self.assertIn("port = %d" % c.node(0).port, own, "node.conf was replaced by the source's")

    def freeze_walsender_mid_stream(self, c, follower, primary, timeout=60):
        """Catch `primary`'s walsender for `follower` while it streams and
        SIGSTOP it there, so that pg_stat_replication keeps showing the
        follower 'streaming' on the old timeline. A diverged follower streams
        the old timeline up to the fork before its startup process refuses it
        (then again every wal_retrieve_retry_interval): this holds that moment.
        Returns the frozen pid (continued at cleanup)."""
        name, port = c.node(follower).name, c.node(primary).port
        t0 = time.monotonic()
        tries = 0
        while time.monotonic() < t0 + timeout:
            try:
                with MiniConn(port, application_name="pgfo-test-freeze", timeout=2) as conn:
                    rows = conn.query("SELECT pid FROM pg_stat_replication WHERE application_name = '%s'"
                                      " AND state = 'streaming'" % name)
            except PgError:
                rows = []
            if not rows:
                time.sleep(0.001)
                continue
            pid = int(rows[0][0])
            os.kill(pid, signal.SIGSTOP)
            tries += 1
            time.sleep(0.5)
            # still mid-stream: the follower's walreceiver streams timeline 1
            if c.streaming_timeline(follower) == 1:
                self.addCleanup(os.kill, pid, signal.SIGCONT)
                print("\n  walsender %d frozen mid-stream after %.1f s (%d tries)"
                      % (pid, time.monotonic() - t0, tries), flush=True)
                return pid
            os.kill(pid, signal.SIGCONT)
        self.fail("never caught %s's walsender for %s mid-stream" % (c.node(primary).name, name))

    def test_diverged_node_listed_as_streaming_is_not_a_follower(self):
        c = self.cluster(offset=50)
        cfg = self.config(c, "ANY 1 (node0, node1)")
        self.diverge(c)
        verdict = c.follow(0, 1)   # started as node1's standby: it cannot follow
        self.assertTrue(verdict.needs_rewind, verdict)
        self.freeze_walsender_mid_stream(c, 0, 1)
        self.assertIn("node0", c.replication(1))
        self.assertEqual(c.timeline(1), 2)
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        inspect = fol.step("inspect")
        self.assertIs(inspect["details"]["already_following"], False, fol.describe())
        self.assertEqual(inspect["details"]["follower_timeline"], 1, fol.describe())
        self.assertEqual(fol.rc, 8, fol.describe())  # PGFO_ERR_REFUSED: rewind = never
        self.assertIn("without pg_rewind", fol.stderr)
        self.assertFalse(c.is_running(0))

    def test_ten_switchovers_under_load(self):
        c = self.cluster(offset=40)
        cfg = self.config(c, "ANY 1 (node0, node1)")
        w = c.writer(0, 1)
        time.sleep(0.5)
        primary = 0
        for i in range(10):
            target = 1 - primary
            run = switchover(cfg, target)
            self.assertEqual(run.rc, 0, "switchover %d: %s" % (i + 1, run.describe()))
            kinds = [p.get("kind") for p in run.report.get("parts", [])]
            self.assertEqual(kinds, ["failover", "follow_primary"], run.describe())
            fo, fol = run.report["parts"]
            self.assertEqual(fo["verdict"]["old_primary_rejoin"], "clean", run.describe())
            self.assertEqual(fol["verdict"]["rejoin"], "clean", run.describe())
            self.assertEqual(c.replication(target), {"node%d" % primary: "quorum"})
            self.assertEqual(c.sync_standby_names(target), "ANY 1 (node%d)" % primary)
            primary = target
            time.sleep(0.3)
        w.wait_ack(primary, timeout=20)
        w.stop()
        self.assertGreater(len(w.acked_ids), 100)
        self.assertEqual(w.missing_on(primary), set(), "acknowledged rows lost")
        print("\n%d switchovers, %d acknowledged rows, 0 lost, 0 rewinds" % (10, len(w.acked_ids)))


class QuotedNamesTest(unittest.TestCase):
    """primary_conninfo carries a role and an application_name holding ' and \\
    through both layers: libpq's quoting inside PostgreSQL's configuration
    file quoting."""

    def follow_as(self, offset, user, app, pg_version=None):
        c = PgCluster(standbys=1, sync_names="", port_offset=PORT_OFFSET + offset,
                      label="pgfo-follow", pg_version=pg_version, shared_buffers="128MB")
        self.addCleanup(c.teardown)
        c.start()
        # the role exists on both nodes (node1 replays it); trust for all in pg_hba.conf
        c.psql(0, 'CREATE ROLE "%s" LOGIN REPLICATION' % user.replace('"', '""'))
        c.wait_replay(1, c.current_lsn(0))
        cfg = write_config(c, extra="[replication]\nuser = %s\n" % user)
        with open(cfg) as f:
            text = f.read()
        text = text.replace("application_name = node0\n", "application_name = %s\n" % app, 1)
        text = text.replace("[timeouts]\n", "[timeouts]\nfollow = 30\n", 1)
        c._write_owner_file(cfg, text)
        c.stop(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        start_log = os.path.join(c.node(0).datadir, "pgfailover-start.log")
        tail = ""
        if os.path.exists(start_log):
            with open(start_log, errors="replace") as f:
                tail = "".join(f.readlines()[-8:])
        why = "%s\nnode0's server log (pg_ctl start -l) ends with:\n%s" % (fol.describe(), tail)
        self.assertEqual(fol.rc, 0, why)
        self.assertEqual(fol.verdict["rejoin"], "clean", why)
        rows = c.psql(1, "SELECT usename, application_name FROM pg_stat_replication WHERE state = 'streaming'")
        self.assertEqual(rows, [(user, app)], why)
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "t")
        return c, fol

    def test_role_with_quote_and_name_with_backslash(self):
        self.follow_as(60, "o'neil", "node0\\x")

    def test_role_and_name_with_backslash(self):
        self.follow_as(70, "DOM\\svc", "node0\\b")

    def test_pg11_recovery_conf(self):
        try:
            pg_bindir(11)
        except PgError as e:
            self.skipTest(str(e))
        c, fol = self.follow_as(80, "o'neil", "node0'q", pg_version=11)
        self.assertTrue(os.path.exists(os.path.join(c.node(0).datadir, "recovery.conf")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
