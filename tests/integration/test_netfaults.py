#!/usr/bin/env python3
"""Failovers under real network faults (root only: network namespaces).

Each PostgreSQL node runs, with its own sshd, in a network namespace of its
own; pgfailover and the test's clients run in a third, the client's; veth
pairs join all three to a bridge in a fourth. Addresses exist only inside
these namespaces (10.237.0.x), and pgfailover reaches the nodes over ssh, as
in production. Faults are nftables rules on a node's link (tests/support/netns.py):

- a black-hole partition (drop, not reject) of the old primary before the
  stop, under on_unclean = fence: a fence command that cuts it off for good,
  then the standby is promoted; and with a fence command that fails, nothing
  is promoted (exit 7);
- a black-hole partition of the old primary during its shutdown wait
  (on_unclean = promote);
- a partition of the candidate while the old primary shuts down, so that the
  catch-up wait runs against a candidate that does not answer (exit 6);
- 30% loss of what the old primary sends plus 300 ms more round trip
  (pgfailover reaches it through a delaying proxy) during a planned stop;
- a partition of the old primary during its shutdown wait that heals after 3 s.

Every case asserts a bounded run time (printed), the exit code and
cluster_state, that no acknowledged commit is lost (the writer's log against
the survivor), and, after healing, that never two nodes acknowledge a write:
each node is probed from inside its own namespace, the side of the partition
it is on.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from netns import DelayProxy, Net, netns_available  # noqa: E402
from pgcluster import Node, PgCluster, SERVER_OS_USER  # noqa: E402
from pgfo import failover_hook, freeze_postmaster, ssh_config  # noqa: E402
from sshd import Sshd, reserve_ssh_ports, sshd_available  # noqa: E402

PREFIX = "pfe"
PORT_OFFSET = 1700
CONNECT = 2        # [connection] connect_timeout
COMMAND = 5        # [timeouts] command (ssh ConnectTimeout follows it)
FENCE = 10         # [timeouts] fence
MARGIN = 15.0      # seconds of slack on a loaded machine

_NET_OK, _NET_WHY = netns_available()
_SSH_OK, _SSH_WHY = sshd_available()
_AVAILABLE = _NET_OK and _SSH_OK
_WHY = _NET_WHY or _SSH_WHY


class NetCluster(PgCluster):
    """A PgCluster whose node N listens on its own namespace's address and
    whose server programs run in that namespace."""

    def __init__(self, net, **kw):
        self.net = net
        super().__init__(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET,
                         shared_buffers="256MB", label="pgfo-net", **kw)

    def new_node(self, node_id, port):
        n = Node(self, node_id, port)
        n.netns = "n%d" % node_id
        n.host = self.net.addr(n.netns)
        return n

    def _node_conf(self, node):
        return super()._node_conf(node) + "listen_addresses = '%s'\n" % node.host

    def _init_primary(self):
        super()._init_primary()
        subnet = self.net.addr("c").rsplit(".", 1)[0] + ".0/24"
        self._append_owner_file(os.path.join(self.nodes[0].datadir, "pg_hba.conf"),
                                "host all all %s trust\nhost replication all %s trust\n"
                                % (subnet, subnet))

    def owner_argv(self, argv):
        for n in self.nodes:
            if any(a == n.datadir or a.startswith(n.datadir + "/") for a in map(str, argv)):
                return self.net.exec_prefix(n.netns) + super().owner_argv(argv)
        return super().owner_argv(argv)


class PowerSwitch:
    """What the fence command talks to, as it would to a PDU or a BMC: a
    management service outside the partitioned network. On request it cuts
    the node off for good (an nftables table of its own in the node's
    namespace, which healing leaves in place), unless told to refuse."""

    def __init__(self, net, host):
        self.net = net
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.addr = self.sock.getsockname()
        self.refuse = False
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile() as f:
                args = json.loads(f.readline())
                self.requests.append(args)
                if self.refuse:
                    reply = "refused: the power switch of node %s does not answer" % args[0]
                else:
                    self.net.cut_off("n%s" % args[0])
                    reply = "ok: node %s cut off" % args[0]
                conn.sendall((reply + "\n").encode())

    def script(self, path):
        """Write the fence command: it sends its arguments, exits 0 only on 'ok'."""
        with open(path, "w") as f:
            f.write("#!/usr/bin/python3\n"
                    "import json, socket, sys\n"
                    "s = socket.create_connection((%r, %d), timeout=5)\n"
                    "s.sendall((json.dumps(sys.argv[1:]) + '\\n').encode())\n"
                    "reply = s.makefile().readline().strip()\n"
                    "print(reply, file=sys.stderr)\n"
                    "sys.exit(0 if reply.startswith('ok') else 1)\n" % self.addr)
        os.chmod(path, 0o755)
        return path

    def stop(self):
        self.sock.close()


@unittest.skipUnless(_AVAILABLE, _WHY)
class NetFaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = Net(PREFIX, ["c", "n0", "n1"])
        cls.sshd = {}
        cls.proxies = []
        try:
            cls.net.setup()
            cls.net.enter("c")
            # node 0's sshd also through a 300 ms round-trip proxy (the lossy case)
            ssh_port = reserve_ssh_ports(1)[0]
            cls.ssh_proxy = DelayProxy((cls.net.addr("c"), 0), (cls.net.addr("n0"), ssh_port),
                                       delay=0.15).start()
            cls.proxies.append(cls.ssh_proxy)
            for i in (0, 1):
                h = "n%d" % i
                s = Sshd(port=ssh_port if i == 0 else None, label="pgfo-net-sshd", host=cls.net.addr(h),
                         user=SERVER_OS_USER,
                         prefix=cls.net.exec_prefix(h) + ["runuser", "-u", SERVER_OS_USER, "--"],
                         aliases=["[%s]:%d" % (cls.net.addr("c"), cls.ssh_proxy.port)] if i == 0 else [])
                cls.sshd[i] = s
                s.start()
            cls.switch = PowerSwitch(cls.net, cls.net.addr("c"))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.proxies:
            p.stop()
        if getattr(cls, "switch", None):
            cls.switch.stop()
        for s in cls.sshd.values():
            s.stop()
        cls.net.teardown()

    def setUp(self):
        self.switch.refuse = False
        self.switch.requests = []
        for h in ("n0", "n1"):
            self.net.heal(h)
            subprocess.run(self.net.exec_prefix(h) + ["nft", "delete", "table", "inet", "pgfo_fenced"],
                           capture_output=True)

    # ---- building blocks --------------------------------------------------------------
    def cluster(self, wal_sender_timeout="5s"):
        c = NetCluster(self.net, extra_conf={"wal_sender_timeout": wal_sender_timeout})
        self.addCleanup(c.teardown)
        c.start()
        return c

    def config(self, c, command=COMMAND, fence=False, node_overrides=None, **kw):
        extra = ""
        if fence:
            extra = "[fencing]\ncommand = %s %%d %%h %%p %%r\n" % self.switch.script(
                os.path.join(c.base, "fence.py"))
            kw["on_unclean"] = "fence"
        path = ssh_config(c, self.sshd, node_overrides=node_overrides, extra=extra, **kw)
        with open(path) as f:
            text = f.read()
        text = text.replace("connect_timeout = 2\n", "connect_timeout = %d\n" % CONNECT)
        text = text.replace("command = 30\n", "command = %d\nfence = %d\n" % (command, FENCE))
        c.write_owner_file(path, text)
        os.chmod(path, 0o600)
        return path

    def finish(self, run, bound):
        """Wait for a started hook run, at most `bound` + 30 s: one still running
        then has a call that hangs past every timeout; it is killed, the test fails."""
        try:
            return run.wait(bound + 30)
        except subprocess.TimeoutExpired:
            # runuser's child first: killing runuser alone leaves it running
            try:
                with open("/proc/%d/task/%d/children" % (run.proc.pid, run.proc.pid)) as f:
                    children = [int(p) for p in f.read().split()]
            except OSError:
                children = []
            for pid in children + [run.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run.wait(30)
            self.fail("pgfailover still running %.0f s after it started (bound %.0f s): a call hangs "
                      "past its timeouts\n%s" % (bound + 30, bound, run.describe()))

    def hook(self, c, cfg, name, bound):
        run = self.finish(failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False), bound)
        steps = ", ".join("%s %.1f s" % (s["name"], s.get("duration_s", 0))
                          for s in run.report.get("steps", []) if s.get("duration_s", 0) >= 0.5)
        print("\n%s: exit %s after %.1f s (bound %.0f s; %s), cluster_state %s"
              % (name, run.rc, run.elapsed, bound, steps or "no step over 0.5 s",
                 run.verdict.get("cluster_state")), flush=True)
        self.assertLess(run.elapsed, bound, run.describe())
        return run

    def writable(self, c, node):
        """True when `node` acknowledges a commit within 6 s, asked from inside
        its own namespace (the side of any partition it is on)."""
        n = c.node(node)
        cp = subprocess.run(self.net.exec_prefix(n.netns) + [
            "timeout", "6", "psql", "-X", "-q", "-h", n.host, "-p", str(n.port), "-U", "postgres",
            "-d", "postgres", "-c",
            "CREATE TABLE IF NOT EXISTS pgfo_probe (at timestamptz); INSERT INTO pgfo_probe VALUES (now())"],
            capture_output=True, text=True, timeout=30)
        return cp.returncode == 0

    def assertOneWritable(self, c, expect, settle=0.0):
        """After healing: at most one node acknowledges a write, `expect` (or none)."""
        deadline = time.monotonic() + settle
        while True:
            w = [i for i in (0, 1) if self.writable(c, i)]
            if w == ([] if expect is None else [expect]) or time.monotonic() >= deadline:
                break
            time.sleep(1)
        print("  after the heal, nodes acknowledging a write: %s" % (w or "none"), flush=True)
        self.assertLessEqual(len(w), 1, "TWO PRIMARIES accept writes: %s" % w)
        self.assertEqual(w, [] if expect is None else [expect])

    def assertNothingLost(self, c, writer, survivor, timeout=30):
        writer.stop()
        self.assertGreater(len(writer.acked_ids), 0, "the writer got nothing acknowledged")
        deadline = time.monotonic() + timeout
        while True:
            try:
                missing = writer.missing_on(survivor)
            except Exception as e:  # noqa: BLE001 - the survivor may still be starting
                missing = e
            if missing == set() or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        print("  %d acknowledged commits, missing on node %d: %s"
              % (len(writer.acked_ids), survivor, missing if missing else 0), flush=True)
        self.assertEqual(missing, set(), "acknowledged commits lost")

    def role(self, c, node):
        return c.psql_value(node, "SELECT pg_is_in_recovery()")

    # ---- the faults -------------------------------------------------------------
    def partitioned_primary(self, refuse):
        c = self.cluster()
        cfg = self.config(c, fence=True)
        w = c.writer(0, 1)
        self.assertIsNotNone(w.wait_ack(0, timeout=30))
        time.sleep(1)
        self.switch.refuse = refuse
        self.net.partition("n0")   # pgpool's health check would now call the hook
        # unreachable: two postmaster.pid checks (ping + ssh each), then the fence
        bound = 2 * (CONNECT + COMMAND) + FENCE + 3 * CONNECT + MARGIN
        return c, w, self.hook(c, cfg, "old primary partitioned, fence %s" %
                               ("refused" if refuse else "works"), bound)

    def test_partitioned_primary_fenced_then_promoted(self):
        c, w, run = self.partitioned_primary(refuse=False)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["cluster_state"], "promoted")
        self.assertTrue(run.verdict.get("fenced"), run.describe())
        self.assertIn("cannot be reached", run.verdict.get("unclean", ""))
        # the fence command got node id, host, port and the reason as arguments
        self.assertEqual(len(self.switch.requests), 1, self.switch.requests)
        nid, host, port, reason = self.switch.requests[0]
        self.assertEqual((nid, host, port), ("0", c.node(0).host, str(c.node(0).port)))
        self.assertIn("cannot be reached", reason)
        self.assertIn("pgfo_fenced", self.net.ruleset("n0"))
        self.assertEqual(self.role(c, 1), "f")
        self.net.heal("n0")        # the partition ends; the fence stays
        self.assertOneWritable(c, 1)
        self.assertNothingLost(c, w, 1)

    def test_partitioned_primary_fence_fails_nothing_promoted(self):
        c, w, run = self.partitioned_primary(refuse=True)
        self.assertEqual(run.rc, 7, run.describe())  # PGFO_ERR_UNCLEAN
        self.assertEqual(run.verdict["cluster_state"], "no_primary")
        self.assertFalse(run.verdict["promoted"])
        self.assertIn("could not be fenced and may still run", run.stderr)
        self.assertIn("does not answer", run.stderr)   # the fence command's own words
        self.assertEqual(len(self.switch.requests), 1, self.switch.requests)
        self.assertEqual(self.role(c, 1), "t")
        self.net.heal("n0")        # the old primary was alive all along
        self.assertOneWritable(c, 0, settle=20)
        self.assertNothingLost(c, w, 0)

    def partitioned_in_shutdown(self, c, cfg, name, after, heal_after, bound, dirty_mb=150):
        """Under a writer, a fast stop of the old primary (dirty_mb of dirty
        buffers for its shutdown checkpoint) with the hook started at once;
        `after` s later the old primary is black-holed (healed `heal_after` s
        later, unless None). Returns (writer, stopper, run)."""
        w = c.writer(0, 1)
        self.assertIsNotNone(w.wait_ack(0, timeout=30))
        c.dirty_buffers(0, dirty_mb)
        stopper = c.stop_async(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False)
        time.sleep(after)
        self.net.partition("n0")
        if heal_after is not None:
            self.net.heal_after("n0", heal_after)
        self.finish(run, bound)
        print("\n%s: exit %s after %.1f s (bound %.0f s), cluster_state %s"
              % (name, run.rc, run.elapsed, bound, run.verdict.get("cluster_state")), flush=True)
        self.assertLess(run.elapsed, bound, run.describe())
        return w, stopper, run

    def test_primary_partitioned_during_shutdown_wait(self):
        c = self.cluster()
        cfg = self.config(c, on_unclean="promote")
        # 600 MB: the shutdown checkpoint must outlast the 0.3 s before the
        # partition (with 150 MB it was once written and read by then: clean)
        w, stopper, run = self.partitioned_in_shutdown(
            c, cfg, "old primary partitioned during its shutdown wait", 0.3, None,
            2 * (CONNECT + COMMAND) + 3 * CONNECT + MARGIN, dirty_mb=600)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["cluster_state"], "promoted")
        self.assertEqual(run.verdict["old_primary_rejoin"], "needs_rewind")
        self.assertIn("cannot be reached", run.verdict.get("unclean", ""))
        stopper.wait(120)          # the old primary finishes its shutdown on its side
        self.net.heal("n0")
        self.assertOneWritable(c, 1)
        self.assertNothingLost(c, w, 1)

    @staticmethod
    def resume(pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def wait_log(self, c, text, timeout=60):
        log = os.path.join(c.base, "pgfailover.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    if text in f.read():
                        return
            time.sleep(0.02)
        self.fail("pgfailover's log never said %r" % text)

    def test_candidate_partitioned_during_catchup(self):
        c = self.cluster()
        # command 10: the connection's tcp_user_timeout (10 s) cannot end the
        # catch-up wait's last query before its deadline (the 5 s catch-up)
        cfg = self.config(c, command=10, catchup=5)
        w = c.writer(0, 1)
        self.assertIsNotNone(w.wait_ack(0, timeout=30))
        time.sleep(1)
        # the candidate's walreceiver frozen: it answers queries but stays short
        # of the old primary's shutdown checkpoint, so pgfailover waits for it
        receiver = int(c.psql_value(1, "SELECT pid FROM pg_stat_wal_receiver"))
        os.kill(receiver, signal.SIGSTOP)
        self.addCleanup(self.resume, receiver)
        stopper = c.stop_async(0, "fast")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False)
        self.wait_log(c, "step wait_flush:")
        time.sleep(0.5)
        self.net.partition("n1")
        # shutdown: the walsender gives up on the candidate after wal_sender_timeout (5 s);
        # catch-up: 5 s, its last query cut at that deadline, cancel + close connect_timeout
        bound = 5 + 5 + CONNECT + MARGIN
        self.finish(run, bound)
        wf = run.step("wait_flush") or {}
        print("\ncandidate partitioned during the catch-up wait: exit %s after %.1f s (bound %.0f s), "
              "wait_flush %.1f s (catchup 5 s + connect_timeout %d s), cluster_state %s"
              % (run.rc, run.elapsed, bound, wf.get("duration_s", -1), CONNECT,
                 run.verdict.get("cluster_state")), flush=True)
        self.assertLess(wf.get("duration_s", 999), 5 + CONNECT + 3, run.describe())
        self.assertEqual(run.rc, 6, run.describe())  # PGFO_ERR_TIMEOUT
        self.assertEqual(run.verdict["cluster_state"], "no_primary")
        self.assertIn("connection closed", run.stderr)
        stopper.wait(120)
        self.resume(receiver)
        self.net.heal("n1")
        self.assertEqual(self.role(c, 1), "t")
        self.assertOneWritable(c, None)   # the old primary is down, the candidate a standby
        self.assertNothingLost(c, w, 1)

    def test_lossy_slow_link_planned_stop(self):
        c = self.cluster(wal_sender_timeout="60s")
        pg_proxy = DelayProxy((self.net.addr("c"), 0), (c.node(0).host, c.node(0).port), delay=0.15).start()
        self.addCleanup(pg_proxy.stop)
        # node 0 reached through the 300 ms round-trip proxies; ssh sessions take
        # many round trips there, so a command gets 15 s
        cfg = self.config(c, command=15, node_overrides={0: {
            "host": self.net.addr("c"), "port": pg_proxy.port, "ssh_port": self.ssh_proxy.port}})
        # the writer's table and first connection are set up before the loss begins
        # (one lost handshake packet can fail a fresh psql there); the stop, the hook
        # and every write after this point go through the lossy link
        w = c.writer(0, 1)
        self.assertIsNotNone(w.wait_ack(0, timeout=30))
        self.net.loss("n0", 30)
        time.sleep(1)
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)
        run = self.hook(c, cfg, "30% loss + 300 ms on the old primary's link, planned stop", 60 + MARGIN)
        stopper.wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["cluster_state"], "promoted")
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.net.heal("n0")
        self.assertOneWritable(c, 1)
        self.assertNothingLost(c, w, 1)

    def test_control_socket_private_to_its_user(self):
        """The ssh control socket of a run (one master per node, issue #17) serves its own
        user only: another local user can neither enter its directory nor talk to the
        master, while the run's user can. Root runs this part, so it really has
        another user to try with."""
        import pwd
        import shutil
        import stat
        import tempfile
        c = self.cluster()
        cfg = self.config(c)
        owner = pwd.getpwnam(SERVER_OS_USER)
        tmp = tempfile.mkdtemp(prefix="pgfo-net-tmp-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
        # The old primary's postmaster frozen: it neither answers nor exits, so the
        # run polls it over ssh (through the master) until killed.
        freeze_postmaster(self, c, 0)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, wait=False,
                            env={"TMPDIR": tmp})

        def kill_run():
            if run.proc.poll() is None:
                subprocess.run(["pkill", "-KILL", "-P", str(run.proc.pid)], check=False)
                run.proc.kill()
            run.proc.communicate(timeout=30)
        self.addCleanup(kill_run)
        deadline = time.monotonic() + 60
        socks = []
        while not socks:
            if time.monotonic() > deadline:
                kill_run()
                self.fail("no control socket appeared in %s (%r); the run's log:\n%s" % (
                    tmp, [(r, f) for r, _d, f in os.walk(tmp)], run.proc.stderr.read()[-3000:]))
            if run.proc.poll() is not None:
                self.fail("the run ended early: %s" % run.proc.stderr.read()[-2000:])
            socks = [os.path.join(tmp, d, n) for d in os.listdir(tmp) if d.startswith("pgfailover-ssh-")
                     for n in os.listdir(os.path.join(tmp, d))
                     if stat.S_ISSOCK(os.lstat(os.path.join(tmp, d, n)).st_mode)]
            time.sleep(0.1)
        d = os.path.dirname(socks[0])
        st = os.lstat(d)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (owner.pw_uid, 0o700))
        check = ["ssh", "-F", "/dev/null", "-o", "ControlPath=" + socks[0], "-O", "check", "x"]
        # the run's own user reaches the master: the check below can fail only on access
        mine = subprocess.run(["runuser", "-u", SERVER_OS_USER, "--"] + check, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=30)
        self.assertEqual(mine.returncode, 0, mine.stdout + mine.stderr)
        self.assertIn("Master running", mine.stderr)
        other = subprocess.run(["runuser", "-u", "nobody", "--"] + check, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=30)
        self.assertNotEqual(other.returncode, 0, other.stdout + other.stderr)
        self.assertIn("ermission denied", other.stderr)
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        raw = subprocess.run(["runuser", "-u", "nobody", "--", python, "-c",
                              "import socket; socket.socket(socket.AF_UNIX).connect(%r)" % socks[0]],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        self.assertNotEqual(raw.returncode, 0)
        self.assertIn("PermissionError", raw.stderr)
        print("\ncontrol socket %s: its user: %s; nobody: %s" % (
            os.path.basename(socks[0]), mine.stderr.strip()[:60], other.stderr.strip()[-60:]), flush=True)

    def test_partition_heals_after_3s(self):
        c = self.cluster(wal_sender_timeout="60s")
        cfg = self.config(c, on_unclean="abort")
        w, stopper, run = self.partitioned_in_shutdown(
            c, cfg, "old primary partitioned for 3 s during its shutdown", 0.2, 3,
            3 + 2 * (CONNECT + COMMAND) + MARGIN)
        stopper.wait(120)
        # rode it out: no unclean shortcut (on_unclean = abort would have said exit 7)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["cluster_state"], "promoted")
        self.assertNotIn("unclean", run.verdict)
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        self.assertOneWritable(c, 1)
        self.assertNothingLost(c, w, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
