#!/usr/bin/env python3
"""Behind a real pgpool-II watchdog cluster: three pgpool instances on 127.0.0.1
(use_watchdog = on, failover_when_quorum_exists, failover_require_consensus, one
vote per node, heartbeat lifecheck), in front of a primary and two standbys
(synchronous_standby_names ANY 1 (node1, node2)). Each instance runs pgfailover
as both of its hooks with a configuration of its own: its own lock file, log,
report file and [pcp] port, as on three separate hosts. Clients write through
pgpool.

- A planned (fast) stop of the primary: the three pgpools agree, the leader alone
  runs failover_command, exactly one node is promoted (one new timeline), the old
  primary and the other standby follow it without pg_rewind, every pgpool shows
  the new primary and the others up, and no acknowledged row is lost.
- The leader pgpool killed (SIGKILL) while its failover_command waits for the old
  primary's slow shutdown: the hook it started goes on; the two survivors elect a
  new leader, agree that the old primary is down and run failover_command again.
  That second run meets the first at the candidate's advisory lock, finds the
  promotion made (or makes it, when the first never got that far) and finishes:
  still one new timeline, one primary, no row lost, every node back.
"""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import HOST, SUPERUSER, MiniConn, PgCluster  # noqa: E402
from pgfo import cli_path, read_reports, write_config  # noqa: E402
from pgpool import PGPOOL, PgpoolWatchdog, pgpool_available, start_pool_writer  # noqa: E402

PORT_OFFSET = 870
HOOK_ARGS = "%d %h %p %D %m %H %M %P %r %R %N %S"
SYNC_TARGET = "ANY 1 (node0, node1, node2)"
COUNT = 3

_AVAILABLE, _WHY = pgpool_available()


@unittest.skipUnless(_AVAILABLE, _WHY)
class WatchdogTest(unittest.TestCase):
    def setup(self, offset, dirty_mb=0):
        c = PgCluster(standbys=2, sync_names="ANY 1 (node1, node2)",
                      port_offset=PORT_OFFSET + offset, label="pgfo-wd")
        self.addCleanup(c.teardown)
        c.start()
        self.c = c
        self.cfgs = [os.path.join(c.base, "pgfailover-wd%d.conf" % i) for i in range(COUNT)]
        self.fo_reports = [os.path.join(c.base, "failover-wd%d.json" % i) for i in range(COUNT)]
        self.fp_reports = [os.path.join(c.base, "follow-wd%d.json" % i) for i in range(COUNT)]
        self.logs = [os.path.join(c.base, "pgfailover-wd%d.log" % i) for i in range(COUNT)]

        def commands(i):
            return ("%s --config %s --json failover %s >> %s" % (
                        cli_path(), self.cfgs[i], HOOK_ARGS, self.fo_reports[i]),
                    "%s --config %s --json follow-primary %s >> %s" % (
                        cli_path(), self.cfgs[i], HOOK_ARGS, self.fp_reports[i]))
        wd = PgpoolWatchdog(c, COUNT, commands=commands)
        self.addCleanup(wd.stop)
        self.addCleanup(self.dump_on_failure, wd)
        wd.prepare()
        for i, pool in enumerate(wd.pools):
            # one host each: its own lock file and log, its own pgpool's PCP
            extra = "\n".join([
                "[replication]", "synchronous_standby_names = %s" % SYNC_TARGET,
                "[pcp]", "host = %s" % HOST, "port = %d" % pool.pcp_port,
                "user = %s" % SUPERUSER, "passfile = %s" % pool.pcppass,
                "bin_directory = %s" % os.path.dirname(PGPOOL)]) + "\n"
            path = write_config(c, name=os.path.basename(self.cfgs[i]), extra=extra)
            with open(path) as f:
                text = f.read()
            text = re.sub(r"(?m)^lock_file = .*$", "lock_file = " +
                          os.path.join(c.base, "pgfailover-wd%d.lock" % i), text)
            text = re.sub(r"(?m)^log_file = .*$", "log_file = " + self.logs[i], text)
            c._write_owner_file(path, text)
        wd.start()
        self.wd = wd
        return c, wd

    def dump_on_failure(self, wd):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        errors = getattr(result, "failures", []) + getattr(result, "errors", [])
        if not any(t is self for t, _ in errors):
            return
        for i, p in enumerate(wd.pools):
            if p.logfile:
                print("\n---- pgpool %d log (tail) ----\n%s" % (i, p.log_tail(40)), flush=True)
        for path in getattr(self, "logs", []):
            try:
                with open(path) as f:
                    print("---- %s ----\n%s" % (os.path.basename(path), f.read()[-5000:]), flush=True)
            except OSError:
                pass

    # ---- helpers --------------------------------------------------------------------
    def executed(self, wd, hook):
        """How many times each pgpool ran `hook` ("failover" or "follow-primary")."""
        return [p.log_text().count("execute command: %s --config %s --json %s " % (
            cli_path(), self.cfgs[i], hook)) for i, p in enumerate(wd.pools)]

    def cluster_name(self, i):
        """cluster_name of pgpool i's pgfailover.conf (the advisory lock's key)."""
        with open(self.cfgs[i]) as f:
            return re.search(r"(?m)^cluster_name = (\S+)$", f.read()).group(1)

    def all_reports(self, paths):
        return [(i, r) for i, p in enumerate(paths) for r in read_reports(p)]

    def wait_for(self, what, cond, timeout):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            v = cond()
            if v:
                return v
            time.sleep(0.1)
        self.fail("%s: not within %ss" % (what, timeout))

    def primaries(self, c):
        return [n.id for n in c.nodes
                if c.ping(n.id) == "accepting" and c.psql_value(n.id, "SELECT pg_is_in_recovery()") == "f"]

    def assert_settled(self, c, wd, pools, writer):
        """One primary (node 1) on timeline 2, nodes 0 and 2 stream from it, every live
        pgpool shows that, and no row acknowledged through pgpool is lost."""
        self.assertEqual(self.primaries(c), [1])
        # the timeline it writes WAL on (pg_control's follows at the next checkpoint)
        self.assertEqual(c.psql_value(1, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"),
                         "00000002")
        hist = sorted(f for f in os.listdir(os.path.join(c.node(1).datadir, "pg_wal"))
                      if f.endswith(".history"))
        self.assertEqual(hist, ["00000002.history"], "more than one promotion")

        def back():
            rows = c.psql(1, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
            return sorted(r[0] for r in rows) == ["node0", "node2"]
        self.wait_for("nodes 0 and 2 streaming from node 1", back, 120)

        def pools_right():
            for i in pools:
                try:
                    nodes = {n["node_id"]: n for n in wd.pools[i].pool_nodes()}
                except Exception:  # noqa: BLE001 - children restarting
                    return False
                if [(nodes[k]["status"], nodes[k]["role"]) for k in "012"] != \
                        [("up", "standby"), ("up", "primary"), ("up", "standby")]:
                    return False
            return True
        self.wait_for("every pgpool showing node 1 primary, nodes 0 and 2 up", pools_right, 120)
        writer.stop()
        rows = c.psql(1, "SELECT id FROM %s" % writer.table)
        self.assertEqual(writer.acked_ids - {int(r[0]) for r in rows}, set(), "acknowledged rows lost")
        self.assertGreater(len(writer.acked_ids), 0)

    def writer(self, wd, i):
        return start_pool_writer(self, wd.pools[i])

    # ---- tests --------------------------------------------------------------------
    def test_planned_stop_one_promotion(self):
        c, wd = self.setup(0)
        leader = wd.leader()
        self.assertIsNotNone(leader)
        w = self.writer(wd, leader)
        t0 = time.monotonic()
        c.stop(0, "fast")
        rep = self.wait_for("a failover report", lambda: self.all_reports(self.fo_reports), 120)
        runs = self.executed(wd, "failover")
        self.assertEqual(sum(runs), 1, "failover_command runs per pgpool: %r" % runs)
        self.assertEqual(runs[leader], 1, "the leader did not run it: %r" % runs)
        i, r = rep[0]
        self.assertEqual(r["exit_code"], 0, json.dumps(r, indent=1))
        self.assertTrue(r["verdict"]["promoted"])
        self.assertEqual(r["verdict"]["new_primary"], 1)
        self.assertEqual(r["verdict"]["old_primary_rejoin"], "clean")
        fols = self.wait_for("follow reports for nodes 0 and 2", lambda: (
            lambda rs: rs if sorted(x["verdict"]["follower"] for _i, x in rs) == [0, 2] else None)(
                self.all_reports(self.fp_reports)), 120)
        for _i, f in fols:
            self.assertEqual(f["exit_code"], 0, json.dumps(f, indent=1))
            self.assertIn(f["verdict"]["rejoin"], ("clean", "already"), json.dumps(f, indent=1))
        self.assert_settled(c, wd, range(COUNT), w)
        gap, _a, _b = w.downtime(t0)
        print("\nwatchdog, planned stop: leader pgpool %d ran failover_command (%.2f s), client write "
              "gap %.2f s, failover_command runs per pgpool %r" % (leader, r["duration_s"], gap, runs),
              flush=True)

    def test_leader_killed_mid_failover(self):
        c, wd = self.setup(10)
        leader = wd.leader()
        self.assertIsNotNone(leader)
        survivors = [i for i in range(COUNT) if i != leader]
        w = self.writer(wd, survivors[0])
        # The leader's hook must still be running when its pgpool dies. A slow
        # shutdown checkpoint alone does not promise that: when pgpool sees the
        # stop late, the hook finds the old primary already down and is done in
        # 0.1 s, and pgpool's failover is over before the kill. So a session of
        # this test holds the advisory lock that every run takes on the
        # candidate first (lib/steps/failover.cpp, take_advisory_lock): the hook
        # waits in its lock step until the leader has been killed, and then goes
        # on, its pgpool gone, while the old primary still writes its shutdown
        # checkpoint (the dirty buffers).
        key = "pgfailover:" + self.cluster_name(leader)
        holder = MiniConn(c.node(1).port, application_name="pgfo-test-lock")
        self.addCleanup(holder.close)
        holder.query("SELECT pg_advisory_lock(hashtext('%s'))" % key)
        secs = c.dirty_buffers(0, 600)
        stopper = c.stop_async(0, "fast")
        self.addCleanup(lambda: stopper.poll() is None and stopper.kill())

        def in_lock_step():
            try:
                with open(self.logs[leader]) as f:
                    text = f.read()
            except OSError:
                return False
            return "step lock:" in text and "step lock done" not in text
        self.wait_for("the leader's hook waiting in its lock step", in_lock_step, 60)
        wd.pools[leader].proc.send_signal(signal.SIGKILL)
        wd.pools[leader].proc.wait(10)
        t_kill = time.monotonic()
        # within the hook's [timeouts] lock (10 s): it goes on now
        holder.query("SELECT pg_advisory_unlock(hashtext('%s'))" % key)
        new_leader = wd.wait_leader(60, among=survivors, not_=leader)
        # the survivors' leader runs failover_command again; both runs end
        self.wait_for("a failover report from the new leader",
                      lambda: read_reports(self.fo_reports[new_leader]), 180)
        self.wait_for("the killed leader's hook to end", lambda: read_reports(self.fo_reports[leader]), 180)
        stopper.wait(120)
        first = read_reports(self.fo_reports[leader])[0]
        second = read_reports(self.fo_reports[new_leader])[0]
        for r in (first, second):
            self.assertEqual(r["exit_code"], 0, json.dumps(r, indent=1))
        promoted = [r["verdict"].get("promoted") for r in (first, second)]
        self.assertEqual(promoted.count(True), 1, "promotions by the two runs: %r\n%s\n%s" % (
            promoted, json.dumps(first, indent=1), json.dumps(second, indent=1)))
        for r in (first, second):
            self.assertEqual(r["verdict"]["new_primary"], 1)
        self.assert_settled(c, wd, survivors, w)
        print("\nwatchdog, leader pgpool %d killed mid-failover (%.1f s of dirty buffers to write): new "
              "leader %d after %.1f s; first run: %s; second run: %s" % (
                  leader, secs, new_leader, time.monotonic() - t_kill,
                  first["message"][:100], second["message"][:100]), flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
