#!/usr/bin/env python3
"""follow-primary's rejoin decision against facts pg_control does not show,
on real PostgreSQL servers:

- a standby that received WAL past the new timeline's switch point without
  replaying it (replay paused): pg_control's minimum recovery point lies
  before the switch point, its pg_wal does not. While it runs, its receive
  position shows it; once it is down, a scan of its pg_wal does. Refused at
  once under rewind = never; under rewind = auto that WAL is set aside (pg_rewind
  would find nothing to rewind) and the node follows;
- two nodes each promoted to timeline 2 (a healed split brain): the same
  timeline number, different histories. Refused; the earlier code took the
  same number for "already on the new timeline", started the node, and took
  its walreceiver streaming our timeline 2 for a follower, although it could
  not replay a record of it.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, lsn_to_int  # noqa: E402
from pgfo import add_settings, failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 1200
FOLLOW_TIMEOUT = 15  # [timeouts] follow: a wrong "can follow" shows up as this timeout


def follow_hook(c, cfg, follower, new_primary, old_primary, timeout=180):
    """pgfailover follow-primary with pgpool's arguments (%d follows %m)."""
    args = ["follow-primary"] + pgpool_args(c, follower, new_primary, old_primary)
    return start_cli(args, cfg).wait(timeout)


class RejoinTest(unittest.TestCase):
    def cluster(self, standbys=2, sync_names="", offset=0, **kw):
        c = PgCluster(standbys=standbys, sync_names=sync_names,
                      port_offset=PORT_OFFSET + offset, label="pgfo-rejoin", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def config(self, c, rewind="never", **kw):
        path = add_settings(c, write_config(c, **kw), "policy", "rewind = %s" % rewind)
        return add_settings(c, path, "timeouts", "follow = %d" % FOLLOW_TIMEOUT)

    def node2_receives_more_than_candidate(self, c, cfg):
        """node2 receives WAL that the candidate node1 never gets and does not
        replay it; then the primary dies (kill -9) and node1 is promoted
        (on_unclean = promote). Returns (node2's receive LSN, switch point)."""
        c.psql(0, "CREATE TABLE r AS SELECT generate_series(1, 1000) i")
        lsn = c.current_lsn(0)
        c.wait_replay(1, lsn)
        c.wait_replay(2, lsn)
        c.psql(2, "SELECT pg_wal_replay_pause()")
        c.cut_walreceiver(1)
        c.psql(0, "INSERT INTO r SELECT generate_series(1, 20000)")
        c.wait_receive(2, c.current_lsn(0))
        received = c.receive_lsn(2)
        replayed = c.replay_lsn(2)
        self.assertLess(replayed, received, "node2 should hold WAL it has not replayed")
        c.kill9(0)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"], run.describe())
        sp = c.history(1)[-1][1]
        self.assertGreater(received, sp, "node2's WAL must reach past the switch point")
        self.assertLessEqual(replayed, sp, "node2 must not have replayed past the switch point")
        return received, sp

    def test_running_standby_with_unreplayed_wal_past_switch_point_refused(self):
        c = self.cluster()
        cfg = self.config(c, rewind="never")
        received, sp = self.node2_receives_more_than_candidate(c, cfg)
        auto = os.path.join(c.node(2).datadir, "postgresql.auto.conf")
        with open(auto, "rb") as f:
            before = f.read()
        fol = follow_hook(c, cfg, follower=2, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 8, fol.describe())  # PGFO_ERR_REFUSED, not a timeout
        self.assertEqual(fol.step("decide")["outcome"], "failed", fol.describe())
        self.assertIsNone(fol.step("wait_streaming"), fol.describe())
        self.assertIn("PAST", fol.stderr)
        self.assertIn("received", fol.stderr)
        with open(auto, "rb") as f:
            self.assertEqual(f.read(), before, "data directory must be left untouched")
        self.assertFalse(c.is_running(2))

    def test_stopped_standby_with_unreplayed_wal_past_switch_point_is_set_aside(self):
        c = self.cluster(offset=10)
        cfg = self.config(c, rewind="auto")
        received, sp = self.node2_receives_more_than_candidate(c, cfg)
        c.stop(2, "fast")  # down: only its pg_wal tells
        ctl = c.controldata(2)
        self.assertLessEqual(lsn_to_int(ctl["Minimum recovery ending location"]), sp, ctl)
        c.psql(1, "INSERT INTO r SELECT -generate_series(1, 7)")
        fol = follow_hook(c, cfg, follower=2, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(fol.verdict["rejoin"], "rewound", fol.describe())
        self.assertIn("PAST", fol.step("decide")["summary"], fol.describe())
        self.assertIn("set aside", fol.step("rewind")["summary"], fol.describe())
        self.assertEqual(fol.step("decide")["details"]["wal_end"], "%X/%X" % (received >> 32, received & 0xFFFFFFFF),
                         fol.describe())
        # node2 now has node1's data: not the rows only the dead primary and node2 had
        c.wait_replay(2, c.current_lsn(1))
        self.assertEqual(c.psql_value(2, "SELECT count(*) FROM r"), "1007")
        self.assertEqual(c.timeline(2), 2)

    def split_brain(self, c):
        """node1 and node2 both promoted to timeline 2, at different switch
        points; node0 stopped; node1 then writes far ahead."""
        c.psql(0, "CREATE TABLE s AS SELECT generate_series(1, 1000) i")
        lsn = c.current_lsn(0)
        c.wait_replay(1, lsn)
        c.wait_replay(2, lsn)
        self.assertTrue(c.promote(1))
        c.psql(0, "INSERT INTO s SELECT generate_series(1, 100)")
        c.wait_replay(2, c.current_lsn(0))
        self.assertTrue(c.promote(2))
        c.stop(0, "fast")
        self.assertEqual((c.timeline(1), c.timeline(2)), (2, 2))
        self.assertNotEqual(c.history(1), c.history(2))
        c.psql(1, "INSERT INTO s SELECT generate_series(1, 100000)")

    def test_same_timeline_other_history_refused(self):
        c = self.cluster(offset=20)
        cfg = self.config(c, rewind="never")
        self.split_brain(c)
        fol = follow_hook(c, cfg, follower=2, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 8, fol.describe())
        self.assertNotIn(fol.verdict.get("rejoin"), ("clean", "already"), fol.describe())
        self.assertIn("histor", fol.stderr)
        self.assertFalse(c.is_running(2))


if __name__ == "__main__":
    unittest.main(verbosity=2)
