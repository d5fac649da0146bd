#!/usr/bin/env python3
"""End to end through a real pgpool-II: pgpool itself calls pgfailover, for
both of its hooks.

A primary and a synchronous standby (ANY 1 (node1)) behind pgpool 4.x in
streaming replication mode, failover_command = pgfailover failover and
follow_primary_command = pgfailover follow-primary, clients writing through
pgpool's port. pgfailover's configuration has [replication]
synchronous_standby_names = ANY 1 (node0, node1) and a [pcp] section pointing
at this pgpool's PCP port (a PCPPASSFILE, mode 0600). For each of

- a fast stop of the primary with little to write at the shutdown checkpoint,
- a fast stop after dirtying hundreds of MB (a slow shutdown checkpoint),
- a crash (immediate stop) with on_unclean = promote,

pgpool detects the failure and runs failover_command; the standby is
promoted; writes through pgpool succeed again and land on the new primary;
SHOW pool_nodes has node 1 as the primary; no acknowledged row is lost. pgpool
then runs follow_primary_command for the old primary (the node it marked
down). After a planned stop the old primary streams from the new one without
pg_rewind, synchronous_standby_names is restored to ANY 1 (node0) and
pcp_attach_node brings it back: SHOW pool_nodes has both nodes up. After the
crash follow-primary refuses (rewind = never, exit code 8), node 0 stays down
and pgpool keeps serving writes through node 1. The write downtime a pgpool
client sees (last acknowledged write before the stop to the first one after)
is printed.

Finally pcp_promote_node --switchover (pgpool 4.3+) calls the hooks while the
primary is still fully up: pgfailover stops it (on_running = stop), switches
over cleanly, and the old primary follows and is attached again.
"""

import json
import subprocess
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import HOST, SUPERUSER, PgCluster, _clean_env, pid_alive, read_pg_control  # noqa: E402
from pgfo import cli_path, read_reports, write_config  # noqa: E402
from pgpool import PGPOOL, Pgpool, pgpool_available, start_pool_writer  # noqa: E402

PORT_OFFSET = 800
HOOK_ARGS = "%d %h %p %D %m %H %M %P %r %R %N %S"
SYNC_TARGET = "ANY 1 (node0, node1)"
REJOIN_TIMEOUT = 90

_AVAILABLE, _WHY = pgpool_available()


@unittest.skipUnless(_AVAILABLE, _WHY)
class PgpoolTest(unittest.TestCase):
    downtimes = {}

    @classmethod
    def tearDownClass(cls):
        if cls.downtimes:
            order = ["quick stop", "slow stop", "crash", "switchover", "switchover (pgfailover)"]
            parts = ["%s %.2f s" % (k, cls.downtimes[k]) for k in order if k in cls.downtimes]
            print("\npgpool client write downtime: " + ", ".join(parts), flush=True)

    def setup_cluster(self, offset, on_unclean="promote", on_running="stop", pgpool_conf=False,
                      switchover_pgpool=None):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)",
                      port_offset=PORT_OFFSET + offset, label="pgfo-pgpool")
        self.addCleanup(c.teardown)
        c.start()
        self.reports = os.path.join(c.base, "hook-reports.json")
        self.follow_reports = os.path.join(c.base, "follow-reports.json")
        self.hook_log = os.path.join(c.base, "pgfailover.log")
        self.cfg = cfg = os.path.join(c.base, "pgfailover.conf")
        # As in pgpool.conf.sample, plus --json and a redirection of the
        # report (standard error, the step log, still goes to pgpool's log).
        command = "%s --config %s --json failover %s >> %s" % (cli_path(), cfg, HOOK_ARGS,
                                                               self.reports)
        follow = "%s --config %s --json follow-primary %s >> %s" % (cli_path(), cfg, HOOK_ARGS,
                                                                    self.follow_reports)
        pool = Pgpool(c, failover_command=command, follow_primary_command=follow)
        self.addCleanup(pool.stop)
        pool.prepare()          # the PCP port and password file, for [pcp]
        self.assertEqual(os.stat(pool.pcppass).st_mode & 0o777, 0o600)
        pcp = ["[replication]", "synchronous_standby_names = %s" % SYNC_TARGET,
               "[pcp]", "host = %s" % HOST, "port = %d" % pool.pcp_port,
               "user = %s" % SUPERUSER, "passfile = %s" % pool.pcppass]
        bindir = os.path.dirname(PGPOOL)
        if os.access(os.path.join(bindir, "pcp_attach_node"), os.X_OK):
            pcp.append("bin_directory = %s" % bindir)
        if switchover_pgpool:
            pcp += ["[switchover]", "pgpool = %s" % switchover_pgpool]
        self.assertEqual(write_config(c, on_unclean=on_unclean, on_running=on_running,
                                      extra="\n".join(pcp) + "\n"), cfg)
        if pgpool_conf:     # the hooks pgpool runs, as pgfailover reads them there
            with open(cfg) as f:
                text = f.read().replace("[general]\n", "[general]\npgpool_conf = %s\n"
                                        % pool.path("pgpool.conf"), 1)
            c._write_owner_file(cfg, text)
        pool.start()
        self.addCleanup(self.dump_on_failure, pool)
        self.pool = pool
        return c, pool

    def dump_on_failure(self, pool):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(getattr(outcome, "result", None), "failures", []) + \
            getattr(getattr(outcome, "result", None), "errors", [])
        if any(t is self for t, _ in errors):
            print("\n---- pgpool log (tail) ----\n%s" % pool.log_tail(80), flush=True)
            try:
                with open(self.hook_log) as f:
                    print("---- pgfailover log ----\n%s" % f.read()[-8000:], flush=True)
            except OSError:
                pass
            for rep in read_reports(self.follow_reports):
                print("---- follow-primary report ----\n%s" % json.dumps(rep, indent=1)[-4000:],
                      flush=True)

    def wait_report(self, count=1, timeout=120, path=None, what="the failover hook"):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            reps = read_reports(path or self.reports)
            if len(reps) >= count:
                return reps[count - 1]
            time.sleep(0.05)
        self.fail("pgpool did not run %s within %ss; pgpool log:\n%s"
                  % (what, timeout, self.pool.log_tail(60)))

    def assert_follow_ran(self, pool):
        """pgpool ran follow_primary_command for node 0 (its log and pgfailover's)."""
        self.assertIn("execute command: %s --config %s --json follow-primary 0 " % (
            cli_path(), self.cfg), pool.log_text())
        with open(self.hook_log) as f:
            self.assertIn("follow_primary_command: node 0 follows new primary 1", f.read())

    def wait_pool_primary(self, pool, node_id, timeout=60):
        t0 = time.monotonic()
        nodes = None
        while time.monotonic() - t0 < timeout:
            try:
                nodes = pool.pool_nodes()
                prim = [n for n in nodes if n["role"] == "primary" and n["status"] == "up"]
                if prim and prim[0]["node_id"] == str(node_id):
                    return nodes
            except Exception:  # noqa: BLE001 - pgpool restarting its children
                pass
            time.sleep(0.1)
        self.fail("SHOW pool_nodes never showed node %d as the primary: %r\n%s"
                  % (node_id, nodes, pool.log_tail(40)))

    def start_writer(self, pool):
        return start_pool_writer(self, pool)

    def check_no_loss(self, c, w, node):
        rows = c.psql(node, "SELECT id FROM %s" % w.table)
        present = {int(r[0]) for r in rows}
        self.assertEqual(w.acked_ids - present, set(), "acknowledged rows lost on node%d" % node)

    def failover_through_pgpool(self, name, offset, mode="fast", dirty_mb=0):
        c, pool = self.setup_cluster(offset)
        w = self.start_writer(pool)
        if dirty_mb:
            secs = c.dirty_buffers(0, dirty_mb)
            print("\n%s: dirtied %d MB in %.1f s" % (name, dirty_mb, secs), flush=True)
        self.assertEqual(read_reports(self.reports), [], "the hook ran before the stop")
        # The stop is the signal pg_ctl -m <mode> sends, and its end the old
        # postmaster's exit. Not `pg_ctl stop -w`: it polls postmaster.pid every
        # 100 ms, and when pgpool's follow_primary_command starts the node again
        # between two polls it waits on for the new postmaster until its
        # timeout (seen in a clean-clone run of the slow stop).
        old_pid = c.node(0).postmaster_pid()
        t_stop = time.monotonic()
        os.kill(old_pid, {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        while pid_alive(old_pid):
            self.assertLess(time.monotonic() - t_stop, 120, "postmaster %d did not exit" % old_pid)
            time.sleep(0.01)
        stop_s = time.monotonic() - t_stop
        rep = self.wait_report()
        hook_done = time.monotonic()
        self.assertEqual(rep["exit_code"], 0, json.dumps(rep, indent=1))
        self.assertEqual(rep["kind"], "failover")
        # pgpool ran the hook: pgfailover's own log has the call with pgpool's arguments
        with open(self.hook_log) as f:
            hook_log = f.read()
        self.assertIn("failover_command: failed node 0", hook_log)
        self.assertIn("execute command: %s" % cli_path(), pool.log_text())
        v = rep["verdict"]
        self.assertTrue(v["promoted"], json.dumps(rep, indent=1))
        self.assertEqual(v["new_primary"], 1)
        self.assertEqual(v["sync_standby_names_after"], "")
        # writes through pgpool succeed again, on the new primary
        ack = w.wait_ack(c.node(1).port, after=t_stop, timeout=60)
        self.assertIsNotNone(ack, "no write through pgpool reached node1: %r" % w.errors[-5:])
        nodes = self.wait_pool_primary(pool, 1)
        # node 0 is down, or already back as a standby if follow_primary_command was quick
        self.assertNotEqual(nodes[0]["role"], "primary", nodes)
        time.sleep(0.3)
        gap, last, first = w.downtime(t_stop)
        self.downtimes[name] = gap
        print("%s: pg_ctl stop %.2f s, hook %.2f s (done %.2f s after the stop), client write "
              "downtime %.2f s (acks at %+.3f s and %+.3f s from the stop), "
              "old primary rejoin: %s" % (
                  name, stop_s, rep["duration_s"], hook_done - t_stop, gap,
                  last[2] - t_stop if last else 0, first[2] - t_stop if first else 0,
                  v["old_primary_rejoin"]), flush=True)
        print("    hook steps: " + ", ".join("%s %.3f s" % (s["name"], s["duration_s"])
                                          for s in rep["steps"] if s["duration_s"] >= 0.01),
              flush=True)
        return c, pool, w, rep

    def assert_clean_rejoin(self, c, w, rep, name):
        v = rep["verdict"]
        self.assertEqual(v["old_primary_rejoin"], "clean", json.dumps(rep, indent=1))
        steps = {s["name"]: s for s in rep["steps"]}
        self.assertEqual(steps["wait_shutdown"]["outcome"], "succeeded")
        self.assertEqual(steps["wait_flush"]["outcome"], "succeeded")
        _start, end, _tli = c.checkpoint_record(0)
        self.assertEqual(v["checkpoint_end"], "%X/%X" % (end >> 32, end & 0xFFFFFFFF))
        t_follow = time.monotonic()
        fol, nodes = self.wait_rejoined(c, self.pool)
        rejoined = time.monotonic()
        self.assert_follow_ran(self.pool)
        fv = fol["verdict"]
        self.assertEqual(fol["kind"], "follow_primary", json.dumps(fol, indent=1))
        self.assertEqual((fv["follower"], fv["primary"], fv["rejoin"]), (0, 1, "clean"),
                         json.dumps(fol, indent=1))
        fsteps = {s["name"]: s for s in fol["steps"]}
        self.assertEqual(fsteps["rewind"]["outcome"], "skipped", json.dumps(fol, indent=1))
        self.assertEqual(fsteps["attach"]["outcome"], "succeeded", json.dumps(fol, indent=1))
        self.assertEqual(len(read_reports(self.follow_reports)), 1, "follow-primary ran twice")
        time.sleep(0.3)
        gap, _a, _b = w.downtime(t_follow)
        w.stop()
        print("    %s: follow-primary %.2f s, both nodes up in SHOW pool_nodes %.2f s after the "
              "failover, sync names '%s', longest write gap while rejoining %.2f s" % (
                  name, fol["duration_s"], rejoined - t_follow, fv.get("sync_standby_names"), gap),
              flush=True)
        self.check_no_loss(c, w, 1)
        c.wait_replay(0, c.current_lsn(1), timeout=60)
        self.check_no_loss(c, w, 0)

    def wait_rejoined(self, c, pool, timeout=REJOIN_TIMEOUT):
        """Wait until pgpool's follow_primary_command brought node 0 back: its report says
        so, node 0 streams from node 1, synchronous_standby_names on node 1 is restored,
        and SHOW pool_nodes has both nodes up, node 1 primary and node 0 standby."""
        t0 = time.monotonic()
        state = {}
        while time.monotonic() - t0 < timeout:
            reps = read_reports(self.follow_reports)
            state["report"] = reps[0]["exit_code"] if reps else None
            if reps and reps[0]["exit_code"] != 0:
                self.fail("follow-primary failed:\n%s" % json.dumps(reps[0], indent=1))
            try:
                state["nodes"] = nodes = pool.pool_nodes()
                state["streaming"] = c.psql(1, "SELECT application_name, state, sync_state"
                                               " FROM pg_stat_replication")
                state["sync"] = c.psql_value(1, "SELECT current_setting("
                                                "'synchronous_standby_names')")
            except Exception as e:  # noqa: BLE001 - pgpool restarting its children
                state["error"] = str(e)
                time.sleep(0.2)
                continue
            by_id = {n["node_id"]: n for n in nodes}
            if reps and \
                    all(by_id.get(i, {}).get("status") in ("up", "waiting") for i in "01") and \
                    by_id["1"]["role"] == "primary" and by_id["0"]["role"] == "standby" and \
                    ["node0", "streaming", "quorum"] in [list(r) for r in state["streaming"]] and \
                    state["sync"] == "ANY 1 (node0)":
                return reps[0], nodes
            time.sleep(0.2)
        self.fail("node 0 not back within %ss (pgpool's follow_primary_command): %r\n%s"
                  % (timeout, state, pool.log_tail(60)))

    def test_1_quick_fast_stop(self):
        c, _pool, w, rep = self.failover_through_pgpool("quick stop", 0)
        self.assert_clean_rejoin(c, w, rep, "quick stop")

    def test_2_slow_fast_stop(self):
        c, _pool, w, rep = self.failover_through_pgpool("slow stop", 10, dirty_mb=800)
        self.assert_clean_rejoin(c, w, rep, "slow stop")

    def test_3_crash(self):
        c, pool, w, rep = self.failover_through_pgpool("crash", 20, mode="immediate")
        v = rep["verdict"]
        self.assertLess(rep["duration_s"], 30)
        self.assertEqual(v["old_primary_rejoin"], "needs_rewind", json.dumps(rep, indent=1))
        self.assertIn("not 'shut down'", v.get("unclean", ""))
        # pgpool runs follow_primary_command for node 0; without pg_rewind it cannot
        # follow, and rewind = never refuses: exit code 8, node 0 left down, untouched
        fol = self.wait_report(path=self.follow_reports, timeout=REJOIN_TIMEOUT,
                               what="follow_primary_command")
        t_refused = time.monotonic()
        self.assert_follow_ran(pool)
        self.assertEqual(fol["exit_code"], 8, json.dumps(fol, indent=1))
        self.assertEqual(fol["verdict"]["follower"], 0)
        fsteps = {s["name"]: s for s in fol["steps"]}
        self.assertEqual(fsteps["decide"]["outcome"], "failed", json.dumps(fol, indent=1))
        self.assertNotIn("start", fsteps)
        self.assertNotIn("attach", fsteps)
        with open(self.hook_log) as f:
            self.assertIn("rewind = never", f.read())
        self.assertEqual(c.ping(0), "no_response")
        self.assertEqual(read_pg_control(c.node(0).datadir)["Database cluster state"],
                         "in production")     # the crash left it so; untouched
        # pgpool keeps serving writes through node 1; node 0 stays down
        self.assertIsNotNone(w.wait_ack(c.node(1).port, after=t_refused, timeout=30),
                             "no write through pgpool after the refusal: %r" % w.errors[-5:])
        time.sleep(2)
        nodes = {n["node_id"]: n for n in pool.pool_nodes()}
        self.assertEqual((nodes["0"]["status"], nodes["1"]["status"], nodes["1"]["role"]),
                         ("down", "up", "primary"), nodes)
        self.assertEqual(len(read_reports(self.follow_reports)), 1)
        print("    crash: follow-primary refused in %.2f s (exit 8: %s); node 0 stays down" % (
            fol["duration_s"], fol.get("message", "")[:120]), flush=True)
        w.stop()
        # synchronous replication: every acknowledged commit had reached node1
        self.check_no_loss(c, w, 1)

    def test_4_pcp_promote_node_switchover(self):
        """pgpool calls the hook with the primary still up: pgfailover stops it."""
        c, pool = self.setup_cluster(30, on_running="stop")
        w = self.start_writer(pool)
        t_stop = time.monotonic()
        r = pool.pcp("pcp_promote_node", "--switchover", "-n", "1", timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\n" + pool.log_tail(40))
        rep = self.wait_report()
        self.assertEqual(rep["exit_code"], 0, json.dumps(rep, indent=1))
        steps = {s["name"]: s for s in rep["steps"]}
        self.assertEqual(steps["stop_old_primary"]["outcome"], "succeeded", json.dumps(rep, indent=1))
        self.assertTrue(rep["verdict"]["promoted"])
        self.assertIsNotNone(w.wait_ack(c.node(1).port, after=t_stop, timeout=60),
                             "no write through pgpool reached node1: %r" % w.errors[-5:])
        self.wait_pool_primary(pool, 1)
        time.sleep(0.3)
        gap, _last, _first = w.downtime(t_stop)
        self.downtimes["switchover"] = gap
        print("\nswitchover: hook %.2f s, client write downtime %.2f s, old primary rejoin: %s"
              % (rep["duration_s"], gap, rep["verdict"]["old_primary_rejoin"]), flush=True)
        self.assert_clean_rejoin(c, w, rep, "switchover")

    # ---- pgfailover switchover with pgpool in front ------------------------------------
    def run_switchover(self, c, *args):
        t0 = time.monotonic()
        r = subprocess.run([cli_path(), "--config", self.cfg, "--json", "switchover", "--to", "1"]
                           + list(args), capture_output=True, text=True, timeout=300,
                           env=_clean_env(), cwd="/")
        rep = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        return r, rep, t0, time.monotonic()

    def failover_commands(self, pool):
        """How many times pgpool ran failover_command (its log)."""
        return pool.log_text().count("execute command: %s --config %s --json failover " % (
            cli_path(), self.cfg))

    def test_5_switchover_through_pgpool(self):
        """`pgfailover switchover` with [pcp]: pgpool does the switching (pcp_promote_node
        --switchover), runs pgfailover's hooks, and nothing races. on_running = refuse
        shows that the switchover's note, not the policy, lets the hook stop the primary."""
        c, pool = self.setup_cluster(40, on_running="refuse", pgpool_conf=True)
        w = self.start_writer(pool)
        r, rep, t0, t1 = self.run_switchover(c)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:] + pool.log_tail(40))
        v = rep["verdict"]
        self.assertTrue(v["via_pgpool"], json.dumps(rep, indent=1))
        self.assertEqual(v["old_primary_rejoin"], "clean", json.dumps(rep, indent=1))
        steps = {s["name"]: s for s in rep["steps"]}
        for name in ("pgpool_gate", "checkpoint", "pcp_promote", "failover_hook", "follow_hooks",
                     "pgpool_view"):
            self.assertEqual(steps[name]["outcome"], "succeeded", name + json.dumps(rep, indent=1))
        # one promotion: pgpool ran failover_command once, and it was pgfailover's hook,
        # whose report the switchover carries
        self.assertIn("pcp_promote_node: promote option: s", pool.log_text())
        self.assertEqual(self.failover_commands(pool), 1, pool.log_tail(80))
        hook_reps = read_reports(self.reports)
        self.assertEqual(len(hook_reps), 1, hook_reps)
        parts = {p["kind"]: p for p in rep["parts"]}
        self.assertEqual(parts["failover"]["run_id"], hook_reps[0]["run_id"])
        self.assertEqual(hook_reps[0]["exit_code"], 0)
        hsteps = {s["name"]: s for s in hook_reps[0]["steps"]}
        self.assertEqual(hsteps["stop_old_primary"]["outcome"], "succeeded")
        with open(self.hook_log) as f:
            self.assertIn("pgpool runs this failover for switchover run %s" % rep["run_id"], f.read())
        # pgpool's view is right when the command returns, with no waiting
        nodes = {n["node_id"]: n for n in pool.pool_nodes()}
        self.assertEqual((nodes["1"]["role"], nodes["1"]["status"], nodes["0"]["role"],
                          nodes["0"]["status"]), ("primary", "up", "standby", "up"), nodes)
        self.assertEqual(c.psql_value(1, "SELECT current_setting('synchronous_standby_names')"),
                         "ANY 1 (node0)")
        # clients through pgpool: errors only inside the one write gap, and at pgpool's
        # own failback of the old primary (pcp_attach_node): the main node becomes node 0
        # again, and pgpool ends the session once, as it does after every failover
        time.sleep(0.3)
        gap, last, first = w.downtime(t0)
        w.stop()
        self.assertIsNotNone(first, "no write after the switchover: %r" % w.errors[-5:])
        failbacks = pool.log_times("starting fail back")
        self.assertEqual(len(failbacks), 1, pool.log_tail(60))
        stray = [e for e in w.errors if not last[2] <= e[0] <= first[2]
                 and not failbacks[0] - 0.1 <= e[0] <= failbacks[0] + 1.0]
        self.assertEqual(stray, [], "client errors outside the write gap (%+.3f s to %+.3f s from the "
                         "command's start) and pgpool's failback (%+.3f s): %r" % (
                             last[2] - t0, first[2] - t0, failbacks[0] - t0,
                             [(e[0] - t0, e[1]) for e in w.errors]))
        self.downtimes["switchover (pgfailover)"] = gap
        print("\nswitchover through pgpool: command %.2f s, client write gap %.2f s, probe gap %s s, "
              "%d client errors in the gap" % (t1 - t0, gap, v.get("write_gap_s"), len(w.errors)),
              flush=True)
        self.check_no_loss(c, w, 1)
        c.wait_replay(0, c.current_lsn(1), timeout=60)
        self.check_no_loss(c, w, 0)
        # the note and the handed-back reports are gone
        self.assertEqual([f for f in os.listdir(c.base) if ".switchover" in f], [])

    def test_6_switchover_around_pgpool_races(self):
        """What the pgpool path prevents: stopping the primary behind pgpool's back makes
        pgpool run a failover_command of its own during the switchover."""
        c, pool = self.setup_cluster(50, on_running="refuse", switchover_pgpool="off")
        w = self.start_writer(pool)
        r, rep, _t0, _t1 = self.run_switchover(c)
        w.stop()
        self.assertFalse(rep.get("verdict", {}).get("via_pgpool", True), r.stdout[-2000:])
        # pgpool saw the primary go down and ran its own failover: a second actor
        t_end = time.monotonic()
        while self.failover_commands(pool) == 0 and time.monotonic() - t_end < 30:
            time.sleep(0.1)
        self.assertGreaterEqual(self.failover_commands(pool), 1, pool.log_tail(60))
        self.assertNotIn("pcp_promote_node", pool.log_text())
        print("\nswitchover around pgpool: exit %d, pgpool ran failover_command %d time(s) on its "
              "own, hook reports: %s" % (
                  r.returncode, self.failover_commands(pool),
                  [(h.get("exit_code"), h.get("message", "")[:90]) for h in read_reports(self.reports)]),
              flush=True)

    def test_7_switchover_refused_when_pgpool_runs_another_hook(self):
        """With pgpool_conf set, a failover_command that is not pgfailover's is refused
        before any downtime (exit 8), and pgpool is never asked."""
        c, pool = self.setup_cluster(60, pgpool_conf=True)
        conf = pool.path("pgpool.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text + "\nfailover_command = '/usr/local/bin/failover.sh %d %m'\n")
        r, rep, _t0, _t1 = self.run_switchover(c)
        self.assertEqual(r.returncode, 8, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertIn("not pgfailover's failover hook", rep["message"])
        self.assertIn("nothing was changed", rep["message"])
        self.assertNotIn("pcp_promote_node", pool.log_text())
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "f")


if __name__ == "__main__":
    unittest.main(verbosity=2)
