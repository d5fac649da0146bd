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
  promotes and reports that the old primary needs pg_rewind;
- one ssh connection per run: every remote call of a run (failover,
  follow-primary, status, check) goes through one multiplexed master, which
  is gone with its private control directory when the command exits, also
  after a failure and after kill -9; control directories left by another
  run, even ones with a live socket, are never used; the socket cannot be
  used by another user.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, release_ports  # noqa: E402
from pgfo import RoleAsserts, failover_hook, freeze_postmaster, pgpool_args, ssh_config, start_cli  # noqa: E402
from sshd import SshdPerClass, reserve_ssh_ports, sshd_available  # noqa: E402

PORT_OFFSET = 700
# A failure to reach the old primary must end the run well within this.
QUICK = 20.0

_AVAILABLE, _WHY = sshd_available()


def processes_mentioning(text):
    """(pid, command line) of every process whose command line contains `text`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), cmd))
    return found


def can_run_as(user):
    """A command prefix that runs a program as `user`, or None."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"]
    r = subprocess.run(["sudo", "-n", "-u", user, "true"], capture_output=True,
                       stdin=subprocess.DEVNULL) if shutil.which("sudo") else None
    return ["sudo", "-n", "-u", user, "--"] if r is not None and r.returncode == 0 else None


def totals(report):
    """(ssh connections, remote calls) of a run's report."""
    r = report.get("remote", [])
    return sum(n["ssh_connections"] for n in r), sum(n["remote_calls"] for n in r)


@unittest.skipUnless(_AVAILABLE, _WHY)
class SshTest(SshdPerClass, RoleAsserts, unittest.TestCase):
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
        # ... all through one connection.
        log = self.sshd.log_text(since)
        self.assertEqual(self.sshd.sessions(since), 1, log)
        self.assertGreaterEqual(log.count("Starting session: command for %s" % self.sshd.user), 2, log)
        conns, calls = totals(run.report)
        self.assertEqual(conns, 1, run.report.get("remote"))
        self.assertGreaterEqual(calls, 2, run.report.get("remote"))
        self.assertEqual(run.step("wait_shutdown").get("remote", [{}])[0].get("node"), 0, run.report)
        self.assertPrimary(c, 1)
        w.wait_ack(1, timeout=30)
        self.assertIsNotNone(w.last_ack(1), "no write succeeded on the new primary")
        # follow-primary over ssh: the old primary streams again, one connection
        since = self.sshd.log_size()
        fol = start_cli(["follow-primary"] + pgpool_args(c, 0, 1, 0), cfg).wait(180)
        self.assertEqual(fol.rc, 0, self.describe(fol, since))
        self.assertEqual(fol.verdict["rejoin"], "clean", self.describe(fol, since))
        self.assertEqual(fol.step("rewind")["outcome"], "skipped")
        self.assertIn("node0", c.replication(1))
        self.assertEqual(self.sshd.sessions(since), 1, self.sshd.log_text(since))
        self.assertEqual(totals(fol.report)[0], 1, fol.report.get("remote"))
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "t")
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


    # ---- connection sharing ------------------------------------------------------

    def private_tmp(self):
        """A TMPDIR for the command under test: its control directory lands there."""
        d = tempfile.mkdtemp(prefix="pgfo-sshtmp-", dir=os.environ.get("PGFO_TEST_TMPDIR") or None)
        self.addCleanup(shutil.rmtree, d, True)
        # short enough that pgfailover uses it (the socket path must fit in sun_path)
        self.assertLessEqual(len(d), 60, d)
        return d

    def cli(self, tmp, args, cfg, wait=True):
        old = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = tmp
        try:
            run = start_cli(args, cfg)
        finally:
            if old is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = old
        return run.wait(180) if wait else run

    def assertNothingLeft(self, tmp, what, wait=0.0):
        """No process mentions `tmp` and nothing is left in it (waits up to `wait` s)."""
        deadline = time.monotonic() + wait
        while True:
            procs, left = processes_mentioning(tmp), os.listdir(tmp)
            if (not procs and not left) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.assertEqual(procs, [], "%s: ssh processes left" % what)
        self.assertEqual(left, [], "%s: control directory left" % what)

    def test_one_connection_per_run_and_nothing_left(self):
        c = self.cluster(30)
        cfg = ssh_config(c, self.sshd)
        tmp = self.private_tmp()
        for cmd in (["status"], ["check"]):
            since = self.sshd.log_size()
            run = self.cli(tmp, cmd, cfg)
            self.assertIn(run.rc, (0, 16), self.describe(run, since))
            # both nodes, several commands, one login
            log = self.sshd.log_text(since)
            self.assertEqual(self.sshd.sessions(since), 1, log)
            self.assertGreaterEqual(log.count("Starting session: command"), 2, log)
            conns, calls = totals(run.report)
            self.assertEqual(conns, 1, run.report)
            self.assertGreaterEqual(calls, 2, run.report)
            self.assertNothingLeft(tmp, " ".join(cmd))
        # check found everything it needs on the nodes, over ssh
        self.assertNotIn("missing on the node", run.stdout + run.stderr, run.describe())

    def test_failure_and_kill_leave_nothing(self):
        c = self.cluster(40)
        tmp = self.private_tmp()
        # The old primary's postmaster frozen: it neither answers nor exits,
        # so the failover waits for its shutdown (polling over ssh).
        thaw = freeze_postmaster(self, c, 0)
        # 1. a run that fails: the shutdown wait times out (exit 6)
        cfg = ssh_config(c, self.sshd, name="short.conf", shutdown=3)
        since = self.sshd.log_size()
        run = self.cli(tmp, ["failover"] + pgpool_args(c, 0, 1, 0), cfg)
        self.assertEqual(run.rc, 6, self.describe(run, since))  # PGFO_ERR_TIMEOUT
        self.assertEqual(self.sshd.sessions(since), 1, self.sshd.log_text(since))
        # the connection opened as the run began (the old primary is the node
        # it is about), the step's calls are in its report entry (each of its
        # checks first waits connect_timeout, 2 s, for the frozen postmaster's ping)
        self.assertEqual(totals(run.report)[0], 1, run.report)
        cost = run.step("wait_shutdown")["remote"]
        self.assertEqual([n["node"] for n in cost], [0], run.report)
        self.assertGreaterEqual(cost[0]["remote_calls"], 1, run.report)
        self.assertNothingLeft(tmp, "failed run")
        self.assertStandby(c, 1)
        # 2. a run killed with SIGKILL half-way
        cfg = ssh_config(c, self.sshd, name="long.conf", shutdown=60)
        since = self.sshd.log_size()
        run = self.cli(tmp, ["failover"] + pgpool_args(c, 0, 1, 0), cfg, wait=False)
        self.addCleanup(lambda: run.proc.poll() is None and run.proc.kill())
        deadline = time.monotonic() + 60
        while self.sshd.log_text(since).count("Starting session: command") < 3:
            if time.monotonic() > deadline or run.proc.poll() is not None:
                run.proc.kill()
                self.fail("no remote calls: " + self.describe(run.wait(30), since))
            time.sleep(0.05)
        dirs = os.listdir(tmp)
        self.assertEqual(len(dirs), 1, dirs)
        d = os.path.join(tmp, dirs[0])
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (os.geteuid(), 0o700))
        socks = [os.path.join(d, n) for n in os.listdir(d)]
        self.assertEqual(len(socks), 1, socks)
        self.assertTrue(stat.S_ISSOCK(os.lstat(socks[0]).st_mode))
        self.assertEqual(stat.S_IMODE(os.lstat(socks[0]).st_mode) & 0o077, 0)
        self.assertTrue(any("ControlMaster=yes" in cmd or "[mux]" in cmd
                            for _p, cmd in processes_mentioning(tmp)), processes_mentioning(tmp))
        # another user can neither enter the directory nor use the socket
        other = can_run_as("nobody")
        if other:
            r = subprocess.run(other + ["ssh", "-F", "/dev/null", "-o", "ControlPath=" + socks[0],
                                        "-O", "check", "x"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=30)
            self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("ermission denied", r.stderr)
            r = subprocess.run(other + [sys.executable, "-c",
                                        "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r)"
                                        % socks[0]], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("PermissionError", r.stderr)
        else:
            print("\n(no way to run a client as nobody here: only the modes were checked)", flush=True)
        run.proc.kill()
        run.wait(30)
        self.assertEqual(run.rc, -signal.SIGKILL)
        # the watcher closed the master and removed the directory
        self.assertNothingLeft(tmp, "killed run", wait=15)
        # and the next run connects afresh
        since = self.sshd.log_size()
        thaw()
        time.sleep(0.5)  # a stop requested while it was frozen takes effect now
        if c.ping(0) == "accepting":
            c.stop(0, "fast")
        else:
            c.wait_stopped(0)
        run = self.cli(tmp, ["failover"] + pgpool_args(c, 0, 1, 0), cfg)
        self.assertEqual(run.rc, 0, self.describe(run, since))
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertEqual(self.sshd.sessions(since), 1, self.sshd.log_text(since))
        self.assertNothingLeft(tmp, "run after the killed one")

    def test_stale_control_directories_are_never_used(self):
        c = self.cluster(50)
        cfg = ssh_config(c, self.sshd)
        tmp = self.private_tmp()
        # What a run killed with its watcher could leave, and what someone
        # else could plant: directories named like ours, with live sockets.
        listeners = []
        for name, mode in (("pgfailover-ssh-stale0", 0o700), ("pgfailover-ssh-open00", 0o777)):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            os.chmod(d, mode)
            for sock in ("0", "1"):
                s = socket.socket(socket.AF_UNIX)
                s.bind(os.path.join(d, sock))
                s.listen(8)
                s.setblocking(False)
                self.addCleanup(s.close)
                listeners.append(s)
        planted = sorted(os.listdir(tmp))
        since = self.sshd.log_size()
        run = self.cli(tmp, ["status"], cfg)
        self.assertEqual(run.rc, 0, self.describe(run, since))
        self.assertEqual(self.sshd.sessions(since), 1, self.sshd.log_text(since))
        for s in listeners:
            with self.assertRaises(BlockingIOError, msg="pgfailover connected to a planted socket"):
                s.accept()
        self.assertEqual(sorted(os.listdir(tmp)), planted)  # nothing of ours left, theirs untouched

    def test_connection_sharing_options_are_refused(self):
        c = self.cluster(60)
        cfg = ssh_config(c, self.sshd)
        with open(cfg) as f:
            text = f.read()
        c.write_owner_file(cfg, text.replace("ssh_options = -F", "ssh_options = -S /tmp/shared -F", 1))
        run = start_cli(["check"], cfg).wait(120)
        self.assertEqual(run.rc, 16, run.describe())
        self.assertIn("connection sharing", run.stdout, run.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
