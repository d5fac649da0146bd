#!/usr/bin/env python3
"""Fault injection on real clusters: each fault, its asserted outcome.

- the old primary crashes half-way through its shutdown checkpoint;
- the candidate standby goes down while pgfailover waits for the old primary;
- the candidate refuses the promotion, and a promotion that does not finish in time;
- an operator promotes another standby while pgfailover waits (refused), or
  right before pgfailover's own promotion (caught by the one_primary check);
- two hosts (two pgpool nodes) run the hook at once, each with its own lock
  file and its own candidate: the advisory locks on the standbys serialise them;
- the hook is killed part way (during the wait, after the promotion) and re-run;
- the log directory cannot be written; the configuration is missing, unreadable,
  or readable by every user with a webhook secret in it.

Acknowledged rows are counted wherever a writer runs: none may be lost.
"""

import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import logfile  # noqa: E402
from pgcluster import PgCluster, _children_of, lsn_to_int as lsn, read_pg_control  # noqa: E402
from pgfo import RoleAsserts, failover_hook, start_cli, write_config  # noqa: E402

PORT_OFFSET = 1100
DIRTY_MB = 600  # a fast shutdown's checkpoint then takes about a second


class Blackhole:
    """A TCP port that accepts connections and never answers: a hung node."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().decode(errors="replace")


def signal_if_alive(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class FaultTest(RoleAsserts, unittest.TestCase):
    def cluster(self, offset, standbys=1, sync_names="ANY 1 (node1)", **kw):
        c = PgCluster(standbys=standbys, sync_names=sync_names, port_offset=PORT_OFFSET + offset,
                      label="pgfo-faults", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def primaries(self, c):
        return [n.id for n in c.nodes if c.ping(n.id) == "accepting" and not c.is_in_recovery(n.id)]

    def wait_log(self, c, since, pattern, timeout=60):
        """Wait for `pattern` in pgfailover's log after byte `since`; returns
        the pid of the pgfailover process that wrote the line."""
        path = os.path.join(c.base, "pgfailover.log")
        rx = re.compile(r"pgfailover\[(\d+)\].*" + pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(logfile.read_from(path, since))
            if m:
                return int(m.group(1))
            time.sleep(0.002)
        self.fail("no log line matching %r within %d s:\n%s" % (pattern, timeout, logfile.read_from(path, since)))

    def slow_stop_with_hook(self, c, cfg):
        """A writer on node 0 (then 1), a fast stop of node 0 with DIRTY_MB
        dirty, and the hook started at once: (writer, log offset, the stop's
        Popen, the hook's HookRun)."""
        w = c.writer(0, 1)
        w.wait_ack(0)
        c.dirty_buffers(0, DIRTY_MB)
        since = self.log_offset(c)
        stopper = c.stop_async(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False)
        return w, since, stopper, run

    def assertFollowsWithEveryRow(self, c, w):
        """Node 0 follows node 1, the only primary; no row the writer saw
        acknowledged is missing there."""
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict.message + "\n" + verdict.log_excerpt)
        w.wait_ack(1)
        w.stop()
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        self.assertEqual(self.primaries(c), [1])

    def promote_behind_its_back(self, c, pid, node):
        """Promote `node` by hand while the pgfailover process `pid` is frozen."""
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assertTrue(c.promote(node))
        finally:
            os.kill(pid, signal.SIGCONT)

    def log_offset(self, c):
        return logfile.size(os.path.join(c.base, "pgfailover.log"))

    # -- the old primary ----------------------------------------------------
    def test_crash_halfway_through_shutdown(self):
        c = self.cluster(0)
        abort = write_config(c, name="abort.conf", on_unclean="abort")
        w = c.writer(0, 1)
        w.wait_ack(0)
        c.dirty_buffers(0, DIRTY_MB)
        c.stop_async(0, "fast")
        # pg_control says "shutting down" from the start of the shutdown
        # checkpoint until its end: kill -9 the server in between.
        datadir = c.node(0).datadir
        deadline = time.monotonic() + 60
        while read_pg_control(datadir)["Database cluster state"] != "shutting down":
            self.assertLess(time.monotonic(), deadline, "the shutdown checkpoint never started")
            time.sleep(0.005)
        pid = c.node(0).postmaster_pid()
        for child in _children_of(pid):
            os.kill(child, signal.SIGKILL)
        c.kill9(0)
        self.assertEqual(read_pg_control(datadir)["Database cluster state"], "shutting down",
                         "the checkpoint finished before the kill: not a crash half-way")
        # on_unclean = abort: nothing promoted, the reason and the state said.
        run = failover_hook(c, abort, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 7, run.describe())  # PGFO_ERR_UNCLEAN
        self.assertIn("'shutting down'", run.report["message"])
        self.assertIn("NOT promoted", run.report["message"])
        self.assertEqual(run.verdict["cluster_state"], "no_primary", run.describe())
        self.assertStandby(c, 1)
        # The operator chooses to promote: synchronous replication means no
        # acknowledged commit is missing on the candidate.
        run = failover_hook(c, write_config(c, on_unclean="promote"), failed=0, new_main=1, old_primary=0,
                            timeout=90)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"])
        self.assertIn("shutting down", run.verdict["unclean"])
        self.assertEqual(run.verdict["old_primary_rejoin"], "needs_rewind")
        self.assertEqual(run.step("one_primary")["outcome"], "succeeded", run.describe())
        w.wait_ack(1)
        w.stop()
        self.assertGreater(len(w.acked_ids), 0)
        self.assertEqual(w.missing_on(1), set(), "acknowledged rows lost")
        self.assertEqual(self.primaries(c), [1])

    # -- the candidate ------------------------------------------------------
    def test_candidate_down_during_wait_then_rerun(self):
        c = self.cluster(10)
        cfg = write_config(c, on_unclean="abort")
        w, since, stopper, run = self.slow_stop_with_hook(c, cfg)
        self.wait_log(c, since, r"step wait_shutdown: ")
        c.stop(1, "immediate")
        run.wait(120)
        stopper.wait(120)
        self.assertIn(run.rc, (4, 5), run.describe())  # PGFO_ERR_CONNECT / PGFO_ERR_QUERY
        msg = run.report["message"]
        self.assertIn("node 1", msg)
        self.assertIn("State: the cluster has NO primary", msg)
        self.assertIn("shut down cleanly", msg)
        self.assertEqual(run.verdict["cluster_state"], "no_primary")
        self.assertFalse(run.verdict["promoted"])
        self.assertFalse(c.is_running(0))
        self.assertFalse(c.is_running(1))
        self.assertEqual(read_pg_control(c.node(0).datadir)["Database cluster state"], "shut down")
        end = run.verdict["checkpoint_end"]
        # The candidate comes back, but it went down before the shutdown
        # checkpoint reached it, and the old primary is gone: promoting it
        # now would need pg_rewind later. on_unclean = abort refuses.
        c.start_node(1)
        self.assertLess(lsn(c.psql_value(1, "SELECT pg_last_wal_replay_lsn()")), lsn(end))
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(again.rc, 7, again.describe())  # PGFO_ERR_UNCLEAN
        self.assertIn("checkpoint ends at %s" % end, again.report["message"])
        self.assertIn("it can be started again as the primary", again.report["message"])
        self.assertStandby(c, 1)
        # Following that advice: the old primary starts again, the candidate
        # catches up, and a planned stop then fails over cleanly.
        c.start_node(0)
        self.assertPrimary(c, 0)
        c.wait_replay(1, c.current_lsn(0))
        w.wait_ack(0)
        c.stop(0, "fast")
        last = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(last.rc, 0, last.describe())
        self.assertTrue(last.verdict["promoted"])
        self.assertEqual(last.verdict["old_primary_rejoin"], "clean", last.describe())
        self.assertFollowsWithEveryRow(c, w)

    def test_candidate_refuses_promotion(self):
        c = self.cluster(20)
        cfg = write_config(c, sync="keep")  # ALTER SYSTEM would fail first
        c.psql(0, "CREATE TABLE t AS SELECT 1 AS i")
        c.stop(0, "fast")
        datadir = c.node(1).datadir
        # pg_promote() must create a signal file in the data directory.
        os.chmod(datadir, 0o500)
        self.addCleanup(os.chmod, datadir, 0o700)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        os.chmod(datadir, 0o700)
        self.assertEqual(run.rc, 5, run.describe())  # PGFO_ERR_QUERY
        self.assertEqual(run.report["steps"][-1]["name"], "promote", run.describe())
        msg = run.report["message"]
        self.assertIn("node 1", msg)
        self.assertIn("Permission denied", msg)
        self.assertIn("State: the cluster has NO primary", msg)
        self.assertEqual(run.verdict["cluster_state"], "no_primary")
        self.assertStandby(c, 1)
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(again.rc, 0, again.describe())
        self.assertTrue(again.verdict["promoted"])
        self.assertEqual(again.verdict["old_primary_rejoin"], "clean")
        self.assertEqual(c.psql_value(1, "SELECT count(*) FROM t"), "1")

    def test_promotion_not_finished_in_time(self):
        c = self.cluster(30)
        cfg = write_config(c, promote=3)
        c.stop(0, "fast")
        # Freeze the candidate's startup process: a promotion request is
        # accepted, but recovery cannot end.
        pid = c.node(1).postmaster_pid()
        startup = [p for p in _children_of(pid) if "startup" in cmdline(p)]
        self.assertEqual(len(startup), 1, "no startup process found")
        os.kill(startup[0], signal.SIGSTOP)
        self.addCleanup(signal_if_alive, startup[0], signal.SIGCONT)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 6, run.describe())  # PGFO_ERR_TIMEOUT
        msg = run.report["message"]
        self.assertIn("still in recovery 3 s after pg_promote()", msg)
        self.assertIn("was requested and may still complete", msg)
        self.assertEqual(run.verdict["cluster_state"], "promotion_pending")
        os.kill(startup[0], signal.SIGCONT)
        deadline = time.monotonic() + 30
        while c.is_in_recovery(1):
            self.assertLess(time.monotonic(), deadline, "the requested promotion never completed")
            time.sleep(0.05)
        # The re-run recognises the finished promotion: never promoted twice.
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(again.rc, 0, again.describe())
        self.assertFalse(again.verdict["promoted"])
        self.assertTrue(again.verdict["already_primary"])
        self.assertEqual(again.verdict["new_timeline"], 2)
        self.assertEqual(again.verdict["old_primary_rejoin"], "clean")

    # -- never two primaries --------------------------------------------------
    def test_standby_promoted_by_hand_during_wait_is_refused(self):
        c = self.cluster(40, standbys=2, sync_names="")
        cfg = write_config(c)
        c.dirty_buffers(0, DIRTY_MB)
        since = self.log_offset(c)
        stopper = c.stop_async(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False)
        # Freeze pgfailover in its wait while an operator promotes node 2.
        self.promote_behind_its_back(c, self.wait_log(c, since, r"step wait_shutdown: "), 2)
        run.wait(120)
        stopper.wait(120)
        self.assertEqual(run.rc, 8, run.describe())  # PGFO_ERR_REFUSED
        self.assertIn("node 2 (127.0.0.1:%d) became a primary while this failover waited" % c.node(2).port,
                      run.report["message"])
        self.assertIn("NOT promoting", run.report["message"])
        self.assertFalse(run.verdict["promoted"])
        self.assertEqual(self.primaries(c), [2])
        self.assertStandby(c, 1)

    def test_two_primaries_after_promotion_are_reported(self):
        c = self.cluster(50, standbys=2, sync_names="")
        cfg = write_config(c)
        c.stop(0, "fast")
        since = self.log_offset(c)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False)
        # Past every check before the promotion, freeze pgfailover, and let
        # someone promote node 2 behind its back.
        self.promote_behind_its_back(c, self.wait_log(c, since, r"step sync_standbys: "), 2)
        run.wait(120)
        self.assertEqual(run.rc, 17, run.describe())  # PGFO_ERR_SPLIT_BRAIN
        self.assertEqual(run.report["steps"][-1]["name"], "one_primary")
        self.assertIn("TWO PRIMARIES after the failover", run.report["message"])
        self.assertIn("node 1 (127.0.0.1:%d) primary" % c.node(1).port, run.report["message"])
        self.assertIn("node 2 (127.0.0.1:%d) primary" % c.node(2).port, run.report["message"])
        self.assertIn("fence every primary but node 1", run.report["message"])
        self.assertEqual(sorted(self.primaries(c)), [1, 2])
        # A re-run does not paper over it either: it changes nothing and says so.
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(again.rc, 17, again.describe())
        self.assertIn("two primaries", again.report["message"])
        self.assertIn("changing nothing", again.report["message"])

    def test_two_hosts_two_candidates_promote_once(self):
        # Two pgpool nodes under watchdog disagree on the candidate; each host
        # has its own lock file. The runs meet at the standbys' advisory locks.
        c = self.cluster(60, standbys=2, sync_names="")
        host_a = write_config(c, name="host_a.conf")
        host_b = write_config(c, name="host_b.conf")
        for path, lock in ((host_a, "a.lock"), (host_b, "b.lock")):
            with open(path) as f:
                text = f.read()
            text = re.sub(r"(?m)^lock_file = .*$", "lock_file = " + os.path.join(c.base, lock), text)
            c._write_owner_file(path, text)
        c.dirty_buffers(0, DIRTY_MB)
        stopper = c.stop_async(0, "fast")
        runs = [failover_hook(c, host_a, failed=0, new_main=1, old_primary=0, wait=False),
                failover_hook(c, host_b, failed=0, new_main=2, old_primary=0, wait=False)]
        for r in runs:
            r.wait(120)
        stopper.wait(120)
        rcs = sorted(r.rc for r in runs)
        self.assertEqual(rcs, [0, 8], [r.describe() for r in runs])
        winner = [r for r in runs if r.rc == 0][0]
        loser = [r for r in runs if r.rc == 8][0]
        new_primary = winner.verdict["new_primary"]
        self.assertTrue(winner.verdict["promoted"])
        self.assertIn("is already a primary", loser.report["message"])
        self.assertEqual(loser.verdict["cluster_state"], "unchanged")
        self.assertEqual(self.primaries(c), [new_primary])

    # -- killed part way, re-run ---------------------------------------------
    def killed_then_rerun(self, offset, kill_at, promoted_when_killed):
        c = self.cluster(offset)
        hung = Blackhole()
        self.addCleanup(hung.close)
        # A third node that hangs: every look at it takes connect_timeout
        # (2 s), which leaves time to kill pgfailover inside a step.
        cfg = write_config(c, extra="[node.2]\nhost = 127.0.0.1\nport = %d\naccess = local\n" % hung.port)
        w, since, stopper, run = self.slow_stop_with_hook(c, cfg)
        pid = self.wait_log(c, since, kill_at, timeout=120)
        os.kill(pid, signal.SIGKILL)
        run.wait(60)
        stopper.wait(120)
        self.assertNotEqual(run.rc, 0, run.describe())
        self.assertEqual(run.report, {}, "the killed run should not have finished")
        self.assertEqual(not c.is_in_recovery(1), promoted_when_killed)
        tli_before = c.timeline(1)
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=180)
        self.assertEqual(again.rc, 0, again.describe())
        self.assertEqual(again.verdict["promoted"], not promoted_when_killed)
        self.assertEqual(again.verdict["already_primary"], promoted_when_killed)
        self.assertEqual(again.verdict["new_timeline"], 2, "promoted more than once")
        if promoted_when_killed:
            self.assertEqual(tli_before, 2)
        self.assertEqual(again.verdict["old_primary_rejoin"], "clean", again.describe())
        # the hung node is asked once before the promotion, and once after it
        self.assertEqual(again.step("lock")["details"]["unreachable"], ["node 2"])
        self.assertEqual(again.step("inspect")["details"]["node2"], "unknown")
        self.assertEqual(again.step("one_primary")["details"]["node2"], "down")
        self.assertFollowsWithEveryRow(c, w)
        # the killed run's sessions (and their advisory locks) are gone
        self.assertEqual(c.psql_value(1, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0")

    def test_killed_during_wait_then_rerun(self):
        self.killed_then_rerun(70, r"step wait_shutdown: ", promoted_when_killed=False)

    def test_killed_after_promotion_then_rerun(self):
        self.killed_then_rerun(80, r"step one_primary: ", promoted_when_killed=True)

    # -- the environment ------------------------------------------------------
    def test_log_directory_not_writable(self):
        c = self.cluster(90)
        not_a_dir = os.path.join(c.base, "not-a-directory")
        c._write_owner_file(not_a_dir, "")
        log_file = os.path.join(not_a_dir, "pgfailover.log")
        cfg = write_config(c)
        with open(cfg) as f:
            text = f.read()
        c._write_owner_file(cfg, re.sub(r"(?m)^log_file = .*$", "log_file = " + log_file, text))
        c.stop(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=90)
        # The failover is not given up for a log file: the lines go to
        # standard error (pgpool's log) with a warning naming the file.
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"])
        self.assertIn("cannot open log_file %s" % log_file, run.stderr)
        self.assertIn("logging to standard error only", run.stderr)
        self.assertIn("step promote done", run.stderr)
        check = start_cli(["check"], config=cfg).wait(60)
        self.assertEqual(check.rc, 16, check.describe())  # PGFO_ERR_CHECK
        problems = [p["problem"] for p in check.report["problems"]]
        self.assertTrue(any(p.startswith("log_file %s cannot be written" % log_file) for p in problems), problems)

    def test_config_missing_unreadable_or_leaking_a_secret(self):
        c = self.cluster(95)
        c.stop(0, "fast")
        good = write_config(c)
        missing = os.path.join(c.base, "missing.conf")
        run = failover_hook(c, missing, failed=0, new_main=1, old_primary=0, timeout=30)
        self.assertEqual(run.rc, 3, run.describe())  # PGFO_ERR_CONFIG
        self.assertIn(missing, run.stderr)
        self.assertIn("No such file or directory", run.stderr)
        # unreadable: a directory where the file should be (as root, modes do not stop reads)
        unreadable = os.path.join(c.base, "unreadable.conf")
        os.mkdir(unreadable)
        run = failover_hook(c, unreadable, failed=0, new_main=1, old_primary=0, timeout=30)
        self.assertEqual(run.rc, 3, run.describe())
        self.assertIn(unreadable, run.stderr)
        # every user can read it, and it holds a webhook's HMAC key
        leaky = write_config(c, name="leaky.conf",
                             extra="[webhook.ops]\nurl = http://127.0.0.1:9/hook\nsecret = hunter2-hmac-key\n")
        os.chmod(leaky, 0o644)
        run = failover_hook(c, leaky, failed=0, new_main=1, old_primary=0, timeout=30)
        self.assertEqual(run.rc, 3, run.describe())
        self.assertIn("[webhook.ops] secret holds a credential and every user can read the file (mode 0644)",
                      run.stderr)
        self.assertNotIn("hunter2", run.stderr + run.stdout)
        # nothing was touched by the refused runs; the good configuration works
        self.assertStandby(c, 1)
        run = failover_hook(c, good, failed=0, new_main=1, old_primary=0, timeout=90)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertPrimary(c, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
