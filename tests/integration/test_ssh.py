#!/usr/bin/env python3
"""pgfailover's remote path (access = ssh) through a real, private sshd.

Every node is reached over ssh to 127.0.0.1 on a private sshd port (the
servers are local, but pgfailover is told to use ssh for them, and sshd's log
proves that it did):

- a planned fast stop under write load: postmaster.pid, pg_control and the
  shutdown checkpoint's WAL are read over ssh; the standby is promoted once it
  has flushed past the checkpoint; the old primary streams again without
  pg_rewind and no acknowledged row is lost;
- the old primary's ssh port refuses connections, and its ssh key is rejected:
  with the primary crashed, on_unclean = abort ends quickly with exit code 7
  (PGFO_ERR_UNCLEAN) and an error naming the ssh failure; on_unclean = promote
  promotes and reports that the old primary needs pg_rewind.
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, release_ports  # noqa: E402
from pgfo import RoleAsserts, failover_hook, ssh_config  # noqa: E402
from sshd import Sshd, reserve_ssh_ports, sshd_available  # noqa: E402

PORT_OFFSET = 700
# A failure to reach the old primary must end the run well within this.
QUICK = 20.0

_AVAILABLE, _WHY = sshd_available()


@unittest.skipUnless(_AVAILABLE, _WHY)
class SshTest(RoleAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sshd = Sshd()
        try:
            cls.sshd.start()
        except BaseException:
            cls.sshd.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    def setUp(self):
        # The key works before any test relies on it.
        r = self.sshd.ssh(["echo", "pgfo-ok"])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "pgfo-ok"),
                         r.stderr + "\nsshd log:\n" + self.sshd.log_text()[-3000:])

    def cluster(self, offset):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)",
                      port_offset=PORT_OFFSET + offset, label="pgfo-ssh")
        self.addCleanup(c.teardown)
        c.start()
        return c

    def describe(self, run, since=0):
        return "%s\nsshd log:\n%s" % (run.describe(), self.sshd.log_text(since)[-4000:])

    def test_planned_stop_over_ssh(self):
        c = self.cluster(0)
        cfg = ssh_config(c, self.sshd)
        w = c.writer(0, 1)
        time.sleep(0.3)
        c.dirty_buffers(0, 300)
        since = self.sshd.log_size()
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        stopper.wait(120)
        print("\nssh failover: %.2f s (wait_shutdown %.3f s, read_checkpoint %.3f s), %d ssh logins"
              % (run.elapsed, (run.step("wait_shutdown") or {}).get("duration_s", -1),
                 (run.step("read_checkpoint") or {}).get("duration_s", -1),
                 self.sshd.sessions(since)), flush=True)
        self.assertEqual(run.rc, 0, self.describe(run, since))
        v = run.verdict
        self.assertTrue(v["promoted"], self.describe(run, since))
        self.assertEqual(v["old_primary_rejoin"], "clean", self.describe(run, since))
        self.assertEqual(run.step("wait_shutdown")["outcome"], "succeeded")
        self.assertEqual(run.step("read_checkpoint")["outcome"], "succeeded")
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded")
        _start, end, _tli = c.checkpoint_record(0)
        self.assertEqual(v["checkpoint_end"], "%X/%X" % (end >> 32, end & 0xFFFFFFFF))
        # The remote path was used: sshd logged in the test user and ran
        # commands (postmaster.pid check, pg_control and WAL reads).
        log = self.sshd.log_text(since)
        self.assertGreaterEqual(self.sshd.sessions(since), 2, log)
        self.assertIn("Starting session: command for %s" % self.sshd.user, log)
        self.assertPrimary(c, 1)
        w.wait_ack(1, timeout=30)
        self.assertIsNotNone(w.last_ack(1), "no write succeeded on the new primary")
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict.message + "\n" + verdict.log_excerpt)
        w.stop()
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")

    def _unreachable(self, offset, override, expect):
        """Crash the primary; node 0's ssh fails as `override` makes it fail."""
        c = self.cluster(offset)
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.stop(0, "immediate")
        # abort: not promoted, quickly, saying why
        cfg = ssh_config(c, self.sshd, name="abort.conf", on_unclean="abort",
                         node_overrides={0: override})
        since = self.sshd.log_size()
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 7, self.describe(run, since))  # PGFO_ERR_UNCLEAN
        self.assertLess(run.elapsed, QUICK, self.describe(run, since))
        self.assertIn(expect, run.stderr, self.describe(run, since))
        self.assertIn("cannot be reached", run.stderr)
        self.assertIn("NOT promoted", run.stderr)
        self.assertStandby(c, 1)
        print("\n%s, on_unclean = abort: exit %d after %.2f s" % (expect, run.rc, run.elapsed),
              flush=True)
        # promote: promoted, and the report says the old primary needs pg_rewind
        cfg = ssh_config(c, self.sshd, name="promote.conf", on_unclean="promote",
                         node_overrides={0: override})
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 0, self.describe(run, since))
        self.assertLess(run.elapsed, QUICK, self.describe(run, since))
        self.assertTrue(run.verdict["promoted"], self.describe(run, since))
        self.assertEqual(run.verdict["old_primary_rejoin"], "needs_rewind")
        self.assertIn("cannot be reached", run.verdict["unclean"])
        self.assertIn(expect, run.verdict["unclean"])
        self.assertIn("needs pg_rewind", run.stderr)
        self.assertEqual(run.step("wait_shutdown")["details"].get("ping"), "no response")
        self.assertPrimary(c, 1)
        print("%s, on_unclean = promote: promoted after %.2f s, old primary needs_rewind"
              % (expect, run.elapsed), flush=True)
        # Had it waited for the real facts, it would have found a crash too.
        self.assertNotEqual(c.controldata(0)["Database cluster state"], "shut down")
        return c, since

    def test_ssh_port_refused(self):
        port = reserve_ssh_ports(1)[0]      # reserved, nothing listens there
        self.addCleanup(release_ports, [port])
        self._unreachable(10, {"ssh_port": port}, "Connection refused")

    def test_ssh_key_rejected(self):
        key = self.sshd.make_unauthorized_key()
        _c, since = self._unreachable(20, {"key": key}, "Permission denied")
        # sshd saw the attempts and turned them away
        log = self.sshd.log_text(since)
        self.assertRegex(log, r"(Connection closed by|Disconnected from) authenticating user %s"
                         % re.escape(self.sshd.user))


if __name__ == "__main__":
    unittest.main(verbosity=2)
