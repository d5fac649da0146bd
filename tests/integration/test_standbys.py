#!/usr/bin/env python3
"""The other standbys of a failover, on real PostgreSQL servers:

- on_better_candidate compares WAL positions the way wait_flush does (the
  larger of receive and replay): a candidate restarted while the old primary
  is down has no real receive position (NULL, or the start of the segment it
  asks for), and is still as good as the others;
- synchronous_standby_names under sync_standby_names = adapt names a standby
  that does not stream from the new primary yet (follow-primary repoints it);
  when follow-primary then refuses that node, it is dropped again, so that
  commits on the new primary do not wait for it forever.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster  # noqa: E402
from pgfo import RoleAsserts, add_settings, failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 1300


class StandbysTest(RoleAsserts, unittest.TestCase):
    def cluster(self, standbys=2, sync_names="", offset=0, **kw):
        c = PgCluster(standbys=standbys, sync_names=sync_names,
                      port_offset=PORT_OFFSET + offset, label="pgfo-standbys", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def test_restarted_candidate_is_not_worse(self):
        c = self.cluster()
        cfg = add_settings(c, write_config(c), "policy", "on_better_candidate = refuse")
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.stop(0, "fast")
        # the candidate restarts while the primary is down: its receive
        # position is NULL, or the start of the segment it asks to stream
        # from, either way short of what it has and replayed
        c.stop(1, "fast")
        c.start_node(1)
        c.wait_replay(1, c.receive_lsn(2))
        self.assertLess(c.receive_lsn(1) or 0, c.receive_lsn(2))
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        self.assertEqual(run.step("candidates")["outcome"], "succeeded", run.describe())
        self.assertEqual(run.step("candidates")["details"]["candidate"],
                         run.step("candidates")["details"]["node2"], run.describe())
        self.assertTrue(run.verdict["promoted"], run.describe())
        self.assertPrimary(c, 1)

    def test_refused_follower_is_dropped_from_sync_standby_names(self):
        c = self.cluster(sync_names="ANY 1 (node1, node2)", offset=10)
        cfg = write_config(c)  # sync_standby_names = adapt, rewind = never
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.wait_replay(1, c.current_lsn(0))
        # node1 stops receiving; node2 gets (and replays) what node1 never will
        c.cut_walreceiver(1)
        c.psql(0, "SET synchronous_commit = local; INSERT INTO t SELECT generate_series(1, 5000)")
        c.wait_replay(2, c.current_lsn(0))
        c.kill9(0)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 0, run.describe())
        # node2 answers and is a standby: follow_primary_command will repoint it
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node2)")
        self.assertEqual(run.step("sync_standbys")["details"]["available"], ["node2"], run.describe())
        fol = start_cli(["follow-primary"] + pgpool_args(c, 2, 1, 0), cfg).wait(180)
        self.assertEqual(fol.rc, 8, fol.describe())  # went past the switch point, rewind = never
        # the refused node no longer holds commits on the new primary
        self.assertEqual(c.sync_standby_names(1), "", fol.describe())
        self.assertIn("node2", fol.stderr)
        t0 = time.monotonic()
        c.psql(1, "INSERT INTO t VALUES (0)", timeout=30)
        self.assertLess(time.monotonic() - t0, 10)

    def test_default_application_name_counts(self):
        """A node without application_name in the configuration is `node<id>` everywhere:
        under adapt it is named in the new synchronous_standby_names exactly as when set."""
        c = self.cluster(sync_names="ANY 1 (node1, node2)", offset=20)
        cfg = write_config(c)
        with open(cfg) as f:
            text = f.read()
        self.assertIn("application_name = node2\n", text)
        c._write_owner_file(cfg, text.replace("application_name = node2\n", ""))
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.wait_replay(2, c.current_lsn(0))
        c.stop(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.step("sync_standbys")["details"]["available"], ["node2"], run.describe())
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node2)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
