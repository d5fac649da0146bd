#!/usr/bin/env python3
"""Network namespaces for network-fault tests (root only; Python 3 standard library).

A Net is a private network: one namespace holding a bridge, one namespace per
host (PostgreSQL node with its own sshd, and the client that runs pgfailover
and the test's own connections), each joined to the bridge by a veth pair.
Addresses exist only inside these namespaces. Typical use:

    from netns import Net, netns_available

    net = Net(prefix="pfe", hosts=["c", "n0", "n1"])
    self.addCleanup(net.teardown)     # runs on failure too
    net.setup()                       # removes leftovers with this prefix first
    net.enter("c")                    # this process (and what it starts) now
                                      # lives in the client namespace
    net.addr("n0")                    # '10.237.0.11' (10 + its index in hosts)
    net.partition("n0")               # black hole: nftables drop, both ways
    net.heal("n0")
    net.loss("n0", 30)                # 30% of packets dropped, both ways
    p = DelayProxy((net.addr("c"), 0), (net.addr("n0"), 5432), delay=0.15).start()

Faults are nftables rules in the host's own namespace on its veth only: the
host's loopback keeps working, as a partitioned machine's does. The kernel
here has no netem, so a delay is a userspace TCP proxy (DelayProxy).

Cleanup: teardown() deletes the rules and the namespaces (the veths go with
them) and kills what still runs in them; setup() first does the same for any
namespace with the prefix that a killed earlier run left behind.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
SUBNET = "10.237.0"
FAULT_TABLE = "pgfo_fault"


def netns_available():
    """(True, '') or (False, why) - for unittest skips."""
    if os.geteuid() != 0:
        return False, ("network namespaces need root: run this test as root "
                       "(scripts/test does, when run as root)")
    for prog in ("ip", "nft", "runuser"):
        if shutil.which(prog) is None:
            return False, "%s not found (Debian packages iproute2, nftables, util-linux)" % prog
    return True, ""


def run(argv, check=True, input=None, timeout=30):
    cp = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout,
                        stdin=None if input is not None else subprocess.DEVNULL)
    if check and cp.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s%s" % (" ".join(argv), cp.returncode,
                                                          cp.stdout, cp.stderr))
    return cp


def list_netns():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_netns(name):
    """Kill what runs in namespace `name`, then delete it."""
    pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
    for p in pids:
        try:
            os.kill(int(p), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    run(["ip", "netns", "del", name], check=False)


class Net:
    def __init__(self, prefix, hosts):
        self.prefix = prefix
        self.hosts = list(hosts)
        self.bridge_ns = prefix + "b"
        self._setup = False
        self._orig_ns = None

    # ---- names ---------------------------------------------------------------
    def ns(self, host):
        return self.prefix + host

    def ifname(self, host):
        """The host's end of its veth pair (inside its namespace)."""
        return self.prefix + "i" + host

    def addr(self, host):
        return "%s.%d" % (SUBNET, 10 + self.hosts.index(host))

    def exec_prefix(self, host):
        return ["ip", "netns", "exec", self.ns(host)]

    # ---- lifecycle -------------------------------------------------------------
    def setup(self):
        for name in list_netns():
            if name.startswith(self.prefix):
                delete_netns(name)
        self._setup = True
        b = self.bridge_ns
        run(["ip", "netns", "add", b])
        run(["ip", "-n", b, "link", "add", self.prefix + "br", "type", "bridge"])
        run(["ip", "-n", b, "link", "set", self.prefix + "br", "up"])
        for h in self.hosts:
            ns, outer, inner = self.ns(h), self.prefix + "v" + h, self.ifname(h)
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", b, "link", "add", outer, "type", "veth", "peer", "name", inner,
                 "netns", ns])
            run(["ip", "-n", b, "link", "set", outer, "master", self.prefix + "br", "up"])
            run(["ip", "-n", ns, "addr", "add", self.addr(h) + "/24", "dev", inner])
            run(["ip", "-n", ns, "link", "set", inner, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return self

    def enter(self, host):
        """Move this process's calling thread (the main thread, before any other
        is started) into `host`'s namespace: its sockets and children live there."""
        libc = ctypes.CDLL(None, use_errno=True)
        if self._orig_ns is None:
            self._orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.ns(host), os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns(%s): %s" % (self.ns(host), os.strerror(e)))
        finally:
            os.close(fd)

    def leave(self):
        if self._orig_ns is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(self._orig_ns, CLONE_NEWNET)
            os.close(self._orig_ns)
            self._orig_ns = None

    def teardown(self):
        if not self._setup:
            return
        self._setup = False
        self.leave()
        for h in self.hosts:
            delete_netns(self.ns(h))
        delete_netns(self.bridge_ns)

    # ---- faults ------------------------------------------------------------------
    def _rules(self, host, verdict):
        i = self.ifname(host)
        text = ("table inet %s {\n"
                "  chain in { type filter hook input priority -300; policy accept;\n"
                "    iifname \"%s\" %s\n  }\n"
                "  chain out { type filter hook output priority -300; policy accept;\n"
                "    oifname \"%s\" %s\n  }\n"
                "}\n" % (FAULT_TABLE, i, verdict, i, verdict))
        self.heal(host)
        run(self.exec_prefix(host) + ["nft", "-f", "-"], input=text)

    def partition(self, host):
        """Black hole: every packet on the host's link dropped, both ways (no reject)."""
        self._rules(host, "drop")

    def loss(self, host, percent):
        """`percent` % of the packets on the host's link dropped, each way."""
        self._rules(host, "numgen random mod 100 < %d drop" % percent)

    def heal(self, host):
        run(self.exec_prefix(host) + ["nft", "delete", "table", "inet", FAULT_TABLE], check=False)

    def heal_after(self, host, seconds):
        """heal(host) in `seconds` from now, on a thread; returns the thread."""
        t = threading.Timer(seconds, self.heal, args=(host,))
        t.daemon = True
        t.start()
        return t

    def cut_off(self, host, table="pgfo_fenced"):
        """What a fence does: drop everything on the host's link in a table of
        its own, which heal() leaves in place."""
        i = self.ifname(host)
        run(self.exec_prefix(host) + ["nft", "-f", "-"],
            input="table inet %s {\n  chain in { type filter hook input priority -400; policy accept;\n"
                  "    iifname \"%s\" drop\n  }\n  chain out { type filter hook output priority -400;"
                  " policy accept;\n    oifname \"%s\" drop\n  }\n}\n" % (table, i, i))

    def ruleset(self, host):
        return run(self.exec_prefix(host) + ["nft", "list", "ruleset"], check=False).stdout


class DelayProxy:
    """A TCP proxy that holds every chunk `delay` seconds before passing it on,
    in each direction (so the round trip grows by 2 x delay). Listens on
    `listen` (port 0: any free one, see .port) in the current namespace."""

    def __init__(self, listen, target, delay):
        self.listen = listen
        self.target = target
        self.delay = delay
        self.sock = None
        self.port = None
        self._stop = threading.Event()
        self._socks = []
        self._lock = threading.Lock()

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(self.listen)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="delay-proxy").start()
        return self

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        """Read from src, deliver to dst `delay` later, order kept."""
        queue, cv = [], threading.Condition()

        def sender():
            while True:
                with cv:
                    while not queue:
                        cv.wait()
                    due, data = queue.pop(0)
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if data is None:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=sender, daemon=True).start()
        src.settimeout(None)
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cv:
                queue.append((time.monotonic() + self.delay, data or None))
                cv.notify()
            if not data:
                return

    def stop(self):
        self._stop.set()
        if self.sock is not None:
            self.sock.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
