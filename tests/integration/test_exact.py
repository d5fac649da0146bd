#!/usr/bin/env python3
"""Promote on the exact facts, on real PostgreSQL servers:

- an archiver backlog (eight segments, one second each) keeps the old
  postmaster alive long after its shutdown checkpoint: the candidate is
  promoted on pg_control ("shut down", postmaster.pid "stopping") while the old
  postmaster still runs, also when the backlog outlasts [timeouts] shutdown;
  follow-primary waits for the old postmaster's exit, then the old primary
  rejoins without pg_rewind; nothing acknowledged is lost;
- a failing archive_command at the stop: the same;
- one failed read of the checkpoint record over ssh (what sshd's MaxStartups
  does to one of several concurrent connections) is retried: the run still
  waits for the flush and the old primary rejoins cleanly; when the record
  cannot be read at all, pg_control's clean shutdown plus the record's exact
  length give the same flush target;
- a data_directory holding another cluster is refused (exit 18,
  PGFO_ERR_IDENTITY), both system identifiers named, nothing changed; the
  same for follow-primary.
"""

import os
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, int_to_lsn, pid_alive  # noqa: E402
from pgfo import RoleAsserts, failover_hook, pgpool_args, ssh_config, start_cli, write_config  # noqa: E402
from sshd import SshdPerClass, sshd_available  # noqa: E402

PORT_OFFSET = 900
SEGMENTS = 8          # .ready segments at the stop
ARCHIVE_DELAY = 1     # seconds per segment

_SSH_AVAILABLE, _SSH_WHY = sshd_available()


def follow_hook(c, cfg, follower, new_primary, old_primary, timeout=240):
    return start_cli(["follow-primary"] + pgpool_args(c, follower, new_primary, old_primary),
                     cfg).wait(timeout)


def lsn_text(value):
    return int_to_lsn(value)


class ExactTest(RoleAsserts, unittest.TestCase):
    def cluster(self, offset, archive_command=None, **kw):
        extra = {}
        if archive_command is not None:
            extra = {"archive_mode": "on", "archive_command": "'%s'" % archive_command.replace("'", "''"),
                     "archive_timeout": "0"}
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-exact", extra_conf=extra, **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def archive_dir(self, c):
        d = os.path.join(c.base, "archive")
        c.run_owner(["mkdir", "-p", d])
        return d

    def ready_segments(self, c, node=0):
        d = os.path.join(c.node(node).datadir, "pg_wal", "archive_status")
        return sorted(f for f in os.listdir(d) if f.endswith(".ready"))

    def make_backlog(self, c, count=SEGMENTS):
        """Switch WAL segments until `count` of them wait for the archiver."""
        c.psql(0, "CREATE TABLE IF NOT EXISTS backlog (i int)")
        deadline = time.monotonic() + 60
        # many segments in one call: one psql per segment can be slower than
        # the archiver on a loaded machine
        burst = "INSERT INTO backlog VALUES (1); SELECT pg_switch_wal(); " * (count + 2)
        while len(self.ready_segments(c)) < count:
            c.psql(0, burst)
            self.assertLess(time.monotonic(), deadline, "no archiver backlog built up")
        return len(self.ready_segments(c))

    def stop_and_fail_over(self, c, cfg):
        w = c.writer(0, 1)
        w.wait_ack(0)
        # A fast stop is SIGINT to the postmaster (what pg_ctl -m fast sends).
        # Not `pg_ctl stop -w`: it polls postmaster.pid every 100 ms, and when
        # follow-primary starts the node again between two polls it waits on
        # for the new postmaster, up to its timeout.
        old_pid = c.node(0).postmaster_pid()
        os.kill(old_pid, signal.SIGINT)
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=240)
        # the old postmaster, still there the moment the hook returned
        still_running = pid_alive(old_pid)
        return w, old_pid, run, still_running

    def finish_rejoin(self, c, cfg, w, old_pid):
        """follow-primary waits for the old postmaster, then a clean rejoin; nothing lost."""
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(fol.verdict["rejoin"], "clean", fol.describe())
        self.assertFalse(pid_alive(old_pid), "follow-primary returned before the old postmaster exited")
        self.assertNotEqual(c.node(0).postmaster_pid(), old_pid)
        self.assertStandby(c, 0)
        w.wait_ack(1, timeout=30)
        w.stop()
        self.assertGreater(len(w.acked_ids), 0)
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        return fol

    # -- an archiver that takes its time ------------------------------------
    def run_backlog(self, offset, shutdown):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-exact")
        self.addCleanup(c.teardown)
        # archive_command runs in the data directory: base/nodeN, the archive is base/archive
        c.extra_conf = {"archive_mode": "on", "archive_timeout": "0",
                        "archive_command": "'sleep %d && cp %%p ../archive/%%f'" % ARCHIVE_DELAY}
        c.start()
        self.archive_dir(c)
        cfg = write_config(c, shutdown=shutdown)
        self.make_backlog(c)
        chk = start_cli(["check"], cfg).wait(60)
        self.assertTrue(any("wait for the archiver" in n["fact"] and "postmaster_exit" in n["cost"]
                            for n in chk.report.get("notes", [])), chk.describe())
        ready = self.make_backlog(c)           # topped up: check took some of it
        w, old_pid, run, still_running = self.stop_and_fail_over(c, cfg)
        print("\nbacklog of %d segments (%d s each), [timeouts] shutdown = %s: promoted after %.2f s, "
              "old postmaster still running: %s" % (ready, ARCHIVE_DELAY, shutdown, run.elapsed, still_running),
              flush=True)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"], run.describe())
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        # promoted on pg_control while the old postmaster still archived
        self.assertEqual(run.step("wait_shutdown")["details"]["postmaster"], "running", run.describe())
        self.assertEqual(run.step("wait_shutdown")["details"]["pg_control"], "shut down")
        self.assertTrue(still_running, "the old postmaster had already exited: no backlog was seen")
        self.assertPrimary(c, 1)
        fol = self.finish_rejoin(c, cfg, w, old_pid)
        print("follow-primary (waits for the old postmaster): %.2f s" % fol.elapsed, flush=True)
        archived = os.listdir(os.path.join(c.base, "archive"))
        self.assertGreaterEqual(len(archived), SEGMENTS, "the backlog was not archived")

    def test_archiver_backlog_does_not_hold_the_promotion(self):
        self.run_backlog(0, shutdown=60)

    def test_backlog_longer_than_the_shutdown_timeout(self):
        # The backlog takes at least eight seconds; waiting for the exit
        # would end in exit 6 and no primary at all.
        self.run_backlog(10, shutdown=3)

    def test_failing_archive_command(self):
        c = self.cluster(20, archive_command="echo archive target unavailable >&2; exit 1")
        cfg = write_config(c)
        c.psql(0, "CREATE TABLE t (i int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while c.psql_value(0, "SELECT failed_count FROM pg_stat_archiver") in ("0", None):
            self.assertLess(time.monotonic(), deadline, "archive_command never failed")
            time.sleep(0.2)
        st = start_cli(["status"], cfg).wait(60)
        self.assertEqual(st.rc, 0, st.describe())
        primary = [n for n in st.report["verdict"]["nodes"] if n["id"] == 0][0]
        self.assertGreaterEqual(primary["archiver"]["failed_count"], 1, st.describe())
        self.assertGreaterEqual(primary["archiver"]["ready"], 1, st.describe())
        w, old_pid, run, _ = self.stop_and_fail_over(c, cfg)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        self.finish_rejoin(c, cfg, w, old_pid)

    # -- another cluster's data directory ------------------------------------
    def other_cluster(self, offset):
        o = PgCluster(standbys=0, sync_names="", port_offset=PORT_OFFSET + offset, label="pgfo-other")
        self.addCleanup(o.teardown)
        o.start()
        o.psql(0, "CREATE TABLE other AS SELECT 1")
        o.stop(0, "fast")
        return o

    def config_with_datadir(self, c, node, datadir, name):
        cfg = write_config(c, name=name)
        with open(cfg) as f:
            text = f.read()
        text = text.replace("data_directory = %s\n" % c.node(node).datadir, "data_directory = %s\n" % datadir)
        c.write_owner_file(cfg, text)
        os.chmod(cfg, 0o600)
        return cfg

    def snapshot(self, datadir):
        """What pgfailover could change in a data directory: its top-level files."""
        out = {}
        for f in sorted(os.listdir(datadir)):
            p = os.path.join(datadir, f)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[f] = fh.read()
        return out

    def test_data_directory_of_another_cluster(self):
        c = self.cluster(30)
        o = self.other_cluster(40)
        other_dir = o.node(0).datadir
        theirs = o.controldata(0)["Database system identifier"]
        ours = c.controldata(1)["Database system identifier"]
        self.assertNotEqual(theirs, ours)
        cfg = self.config_with_datadir(c, 0, other_dir, "wrong.conf")
        before = self.snapshot(other_dir)
        c.stop(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 18, run.describe())  # PGFO_ERR_IDENTITY
        msg = run.report["message"]
        self.assertIn(theirs, msg)
        self.assertIn(ours, msg)
        self.assertIn(other_dir, msg)
        self.assertFalse(run.verdict["promoted"])
        self.assertStandby(c, 1)
        self.assertEqual(self.snapshot(other_dir), before, "the other cluster's files were changed")
        # The right data directory: a clean failover; then follow-primary with
        # the wrong one refuses before it touches anything.
        good = write_config(c)
        run = failover_hook(c, good, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 0, run.describe())
        fol = follow_hook(c, cfg, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 18, fol.describe())
        self.assertIn(theirs, fol.report["message"])
        self.assertEqual(self.snapshot(other_dir), before, "the other cluster's files were changed")
        self.assertFalse(os.path.exists(os.path.join(other_dir, "standby.signal")))
        fol = follow_hook(c, good, follower=0, new_primary=1, old_primary=0)
        self.assertEqual(fol.rc, 0, fol.describe())


WRAPPER = """#!/bin/sh
# ssh, except that a read of a WAL segment fails as sshd's MaxStartups makes
# a connection fail: exit 255 before any command runs (once, or always).
case "$*" in
  *pg_wal/0*)
    first=no
    mkdir "$PGFO_TEST_SSH_MARK" 2>/dev/null && first=yes
    if [ "$first" = yes ] || [ "$PGFO_TEST_SSH_FAIL" = always ]; then
      echo "kex_exchange_identification: read: Connection reset by peer" >&2
      exit 255
    fi;;
esac
exec %s "$@"
"""


@unittest.skipUnless(_SSH_AVAILABLE, _SSH_WHY)
class ExactSshTest(SshdPerClass, RoleAsserts, unittest.TestCase):
    def cluster(self, offset):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-exact-ssh")
        self.addCleanup(c.teardown)
        c.start()
        return c

    def with_failing_ssh(self, c, mode):
        """Put the failing ssh first on PATH for the runs this test starts."""
        d = os.path.join(c.base, "sshwrap")
        c.run_owner(["mkdir", "-p", d])
        path = os.path.join(d, "ssh")
        c.write_owner_file(path, WRAPPER % shutil.which("ssh"))
        os.chmod(path, 0o755)
        saved = dict(os.environ)
        self.addCleanup(lambda: (os.environ.clear(), os.environ.update(saved)))
        os.environ["PATH"] = d + os.pathsep + os.environ.get("PATH", "")
        os.environ["PGFO_TEST_SSH_FAIL"] = mode
        os.environ["PGFO_TEST_SSH_MARK"] = os.path.join(c.base, "ssh-failed-once")
        return os.environ["PGFO_TEST_SSH_MARK"]

    def planned_stop(self, c, mode):
        cfg = ssh_config(c, self.sshd)
        mark = self.with_failing_ssh(c, mode)
        w = c.writer(0, 1)
        w.wait_ack(0)
        c.dirty_buffers(0, 200)
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        stopper.wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(os.path.isdir(mark), "the injected ssh failure never happened")
        v = run.verdict
        self.assertNotIn("unclean", v, run.describe())
        self.assertEqual(run.step("wait_flush")["outcome"], "succeeded", run.describe())
        self.assertEqual(v["old_primary_rejoin"], "clean", run.describe())
        _start, end, _tli = c.checkpoint_record(0)
        self.assertEqual(v["checkpoint_end"], lsn_text(end), run.describe())
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict.message + "\n" + verdict.log_excerpt)
        w.wait_ack(1, timeout=30)
        w.stop()
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        return run

    def test_one_failed_checkpoint_read_is_retried(self):
        run = self.planned_stop(self.cluster(50), "once")
        self.assertEqual(run.step("read_checkpoint")["details"]["end_from"], "wal", run.describe())
        self.assertIn("reading the checkpoint record failed (attempt 1", run.stderr)

    def test_unreadable_record_uses_the_exact_length(self):
        run = self.planned_stop(self.cluster(60), "always")
        d = run.step("read_checkpoint")["details"]
        self.assertEqual(d["end_from"], "record_length", run.describe())
        self.assertIn("exit 255", d["record_error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
