#!/usr/bin/env python3
"""A real pgpool-II in front of a PgCluster, run in the foreground as the current user.

    from pgpool import Pgpool, PoolWriter, pgpool_available

    pool = Pgpool(cluster, failover_command="/usr/bin/pgfailover failover %d %h ...",
                  follow_primary_command="/usr/bin/pgfailover follow-primary %d %h ...")
    self.addCleanup(pool.stop)
    pool.prepare()                    # optional: ports, pcp.conf and pcppass known before start
    pool.pcp_port, pool.pcppass       # e.g. for pgfailover's [pcp] section
    pool.start()                      # waits until SHOW pool_nodes knows the primary
    w = PoolWriter(pool).start()      # inserts through pgpool, records acks
    pool.pool_nodes()                 # SHOW pool_nodes as a list of dicts
    pool.pcp("pcp_node_info", "-n", "0")
    pool.log_text()                   # pgpool's log (its standard error)

pgpool listens on 127.0.0.1 only, on a port from 27100 up (PCP on a second
one; pcp.conf has SUPERUSER with an md5 of PCP_PASSWORD, and `pcppass` is a
matching PCPPASSFILE, mode 0600), with its sockets, pid file, status file and
query cache directory in a private temporary directory; no watchdog, no pool_hba, no pool_passwd (the
backends trust 127.0.0.1). Streaming replication mode, every backend
ALLOW_TO_FAILOVER, sr_check and health check every second,
failover_on_backend_shutdown on, load balancing off (every query goes to the
primary, as the writes under test do).

Environment:
    PGFO_PGPOOL            the pgpool binary (default /usr/sbin/pgpool)
    PGFO_PGPOOL_PORT_BASE  first port tried (default 27100)
    PGFO_KEEP_CLUSTERS=1   keep the temporary directory after stop()
    PGFO_TEST_TMPDIR       parent of the temporary directory (default: system temp)
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import logfile

from pgcluster import (HOST, SUPERUSER, ConnectionLost, MiniConn, PgError, _clean_env,
                       port_base, release_ports, reserve_ports)

PGPOOL = os.environ.get("PGFO_PGPOOL", "/usr/sbin/pgpool")
PGPOOL_PORT_BASE = int(os.environ.get("PGFO_PGPOOL_PORT_BASE", "27100"))
PCP_PASSWORD = "pgfo-test-pcp"


def pgpool_available():
    """(True, '') or (False, why) - for unittest skips."""
    if not os.access(PGPOOL, os.X_OK):
        return False, "%s not installed (Debian package pgpool2)" % PGPOOL
    bindir = os.path.dirname(PGPOOL)
    for prog in ("pg_md5", "pcp_node_info"):
        if not os.access(os.path.join(bindir, prog), os.X_OK) and shutil.which(prog) is None:
            return False, "%s not found (Debian package pgpool2)" % prog
    return True, ""


def _tool(name):
    p = os.path.join(os.path.dirname(PGPOOL), name)
    return p if os.access(p, os.X_OK) else name


def _q(value):
    """A pgpool.conf string value."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "''")


class Pgpool:
    """pgpool -n -D -f <conf> -F <pcp.conf> -a <pool_hba.conf>, log in `logfile`."""

    def __init__(self, cluster, failover_command="", extra=None, port=None, label="pgfo-pgpool",
                 follow_primary_command=""):
        self.cluster = cluster
        self.failover_command = failover_command
        self.follow_primary_command = follow_primary_command
        self.extra = dict(extra or {})
        self.port = port
        self.pcp_port = None
        self._own_ports = []
        self.label = label
        self.dir = None
        self.proc = None
        self.logfile = None
        self._log = None

    def path(self, name):
        return os.path.join(self.dir, name)

    # ---- configuration ------------------------------------------------------
    def _conf(self):
        conf = {
            "backend_clustering_mode": _q("streaming_replication"),
            "listen_addresses": _q(HOST),
            "port": self.port,
            "socket_dir": _q(self.dir),
            "pcp_listen_addresses": _q(HOST),
            "pcp_port": self.pcp_port,
            "pcp_socket_dir": _q(self.dir),
            "wd_ipc_socket_dir": _q(self.dir),
            "pid_file_name": _q(self.path("pgpool.pid")),
            "logdir": _q(self.dir),
            "memqcache_oiddir": _q(self.path("oiddir")),
            "use_watchdog": "off",
            "enable_pool_hba": "off",
            "pool_passwd": _q(""),
            "num_init_children": 8,
            "max_pool": 2,
            "reserved_connections": 0,
            "load_balance_mode": "off",
            "connection_cache": "on",
            "log_destination": _q("stderr"),
            "logging_collector": "off",
            "log_line_prefix": _q("%m: %a pid %p: "),
            "log_min_messages": "log",
            "sr_check_period": 1,
            "sr_check_user": _q(SUPERUSER),
            "sr_check_password": _q(""),
            "sr_check_database": _q("postgres"),
            "health_check_period": 1,
            "health_check_timeout": 5,
            "health_check_user": _q(SUPERUSER),
            "health_check_password": _q(""),
            "health_check_database": _q("postgres"),
            "health_check_max_retries": 0,
            "connect_timeout": 3000,
            "failover_on_backend_shutdown": "on",
            "failover_on_backend_error": "on",
            "failover_command": _q(self.failover_command),
            "follow_primary_command": _q(self.follow_primary_command),
            "failback_command": _q(""),
            "search_primary_node_timeout": 10,
            "auto_failback": "off",
            "detach_false_primary": "off",
        }
        for n in self.cluster.nodes:
            conf["backend_hostname%d" % n.id] = _q(n.host)
            conf["backend_port%d" % n.id] = n.port
            conf["backend_weight%d" % n.id] = 1
            conf["backend_data_directory%d" % n.id] = _q(n.datadir)
            conf["backend_flag%d" % n.id] = _q("ALLOW_TO_FAILOVER")
            conf["backend_application_name%d" % n.id] = _q(n.name)
        conf.update(self.extra)
        return "".join("%s = %s\n" % (k, v) for k, v in conf.items())

    @property
    def pcppass(self):
        """The PCP password file (host:port:user:password, mode 0600); after prepare()."""
        return self.path("pcppass")

    def prepare(self):
        """Private directory, ports, pcp.conf, pool_hba.conf and pcppass; start() calls it
        unless done before (so that pcp_port and pcppass are known earlier)."""
        if self.dir is not None:
            return self
        ok, why = pgpool_available()
        if not ok:
            raise PgError(why)
        parent = os.environ.get("PGFO_TEST_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix="%s-" % self.label, dir=parent)
        os.chmod(self.dir, 0o755)
        os.mkdir(self.path("oiddir"))
        if self.port is None:
            self.port, self.pcp_port = reserve_ports(2, offset=PGPOOL_PORT_BASE - port_base())
            self._own_ports = [self.port, self.pcp_port]
        elif self.pcp_port is None:
            self.pcp_port = self.port + 1
        md5 = subprocess.run([_tool("pg_md5"), PCP_PASSWORD], capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
        with open(self.path("pcp.conf"), "w") as f:
            f.write("%s:%s\n" % (SUPERUSER, md5))
        with open(self.path("pool_hba.conf"), "w") as f:
            f.write("host all all 127.0.0.1/32 trust\n")
        fd = os.open(self.path("pcppass"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("%s:%d:%s:%s\n" % (HOST, self.pcp_port, SUPERUSER, PCP_PASSWORD))
        os.chmod(self.path("pcppass"), 0o600)
        return self

    def start(self, timeout=30):
        self.launch()
        return self.wait_ready(timeout)

    def launch(self):
        """Write pgpool.conf and start pgpool; wait_ready() waits for it."""
        self.prepare()
        with open(self.path("pgpool.conf"), "w") as f:
            f.write(self._conf())
        self.logfile = self.path("pgpool.log")
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [PGPOOL, "-n", "-D", "-f", self.path("pgpool.conf"), "-F", self.path("pcp.conf"),
             "-a", self.path("pool_hba.conf")],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.dir, env=_clean_env(), start_new_session=True)
        return self

    def wait_ready(self, timeout=30):
        # Ready: clients get through, and sr_check has found the primary.
        t0 = time.monotonic()
        last = None
        while True:
            if self.proc.poll() is not None:
                raise PgError("pgpool exited with %s:\n%s" % (self.proc.returncode,
                                                              self.log_tail()))
            try:
                nodes = self.pool_nodes(timeout=2)
                last = nodes
                if any(n["role"] == "primary" and n["status"] == "up" for n in nodes) and \
                        all(n["status"] == "up" for n in nodes):
                    return self
            except PgError as e:
                last = e
            if time.monotonic() - t0 > timeout:
                raise PgError("pgpool not ready after %ss (last: %r):\n%s" % (
                    timeout, last, self.log_tail()))
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)    # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            # What a pgpool killed with SIGKILL (test_watchdog) left behind: its
            # heartbeat, health check and worker processes, and the hooks it ran,
            # all in its own process group.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        release_ports(self._own_ports)
        self._own_ports = []
        if self.dir:
            if os.environ.get("PGFO_KEEP_CLUSTERS") == "1":
                print("pgpool: kept %s" % self.dir, flush=True)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ---- clients --------------------------------------------------------------
    def connect(self, timeout=5.0, application_name="pgfo-pool-test"):
        return MiniConn(self.port, application_name=application_name, timeout=timeout)

    def query(self, sql, timeout=10.0):
        with self.connect(timeout=timeout) as c:
            return c.query(sql)

    def pool_nodes(self, timeout=5.0):
        """SHOW pool_nodes: [{'node_id': '0', 'status': 'up', 'role': 'primary', ...}]."""
        with self.connect(timeout=timeout) as c:
            # the column names of the RowDescription are not kept by MiniConn;
            # 4.3: node_id hostname port status pg_status lb_weight role pg_role
            # select_cnt load_balance_node replication_delay replication_state
            # replication_sync_state last_status_change
            rows = c.query("SHOW pool_nodes")
        cols = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
                "pg_role", "select_cnt", "load_balance_node", "replication_delay",
                "replication_state", "replication_sync_state", "last_status_change"]
        return [dict(zip(cols, r)) for r in rows]

    def pcp(self, tool, *args, timeout=30):
        """Run a pcp_* tool against this pgpool; CompletedProcess."""
        env = _clean_env({"PCPPASSFILE": self.path("pcppass")})
        argv = [_tool(tool), "-h", HOST, "-p", str(self.pcp_port), "-U", SUPERUSER, "-w"]
        return subprocess.run(argv + list(args), capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    # ---- log --------------------------------------------------------------------
    def log_text(self, since=0):
        return logfile.read_from(self.logfile, since)

    def log_times(self, text):
        """When pgpool logged lines containing `text`, as time.monotonic() values
        (its log's timestamps are this host's local wall clock, to the millisecond)."""
        offset = time.time() - time.monotonic()
        out = []
        for line in self.log_text().splitlines():
            if text not in line:
                continue
            m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)?: ", line)
            if m:
                wall = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
                out.append(wall + float(m.group(2) or 0) - offset)
        return out

    def log_size(self):
        return logfile.size(self.logfile)

    def log_tail(self, lines=60, since=0):
        return "\n".join(self.log_text(since).splitlines()[-lines:])


class PoolWriter:
    """Background inserts through pgpool, one row per transaction.

    A row counts as acknowledged when its INSERT ... RETURNING came back (the
    synchronous commit returned). The returned inet_server_port() says which
    backend took the write. Attributes (read after stop(), or under `lock`):
        acked      [(id, backend port, monotonic time)]
        uncertain  [id]: connection lost while the INSERT ran
        errors     [(monotonic time, message)]
    """

    def __init__(self, pool, table="pgfo_pool_writer", retry_interval=0.02):
        self.pool = pool
        self.table = table
        self.retry_interval = retry_interval
        self.acked = []
        self.uncertain = []
        self.errors = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._conn = None
        self._next_id = 1

    def start(self):
        self.pool.query("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, port int,"
                        " at timestamptz NOT NULL DEFAULT clock_timestamp())" % self.table)
        self._thread = threading.Thread(target=self._run, name="pgfo-pool-writer", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        conn = None
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = self.pool.connect(timeout=5, application_name="pgfo-pool-writer")
                    self._conn = conn
                except PgError as e:
                    with self.lock:
                        self.errors.append((time.monotonic(), str(e)))
                    self._stop.wait(self.retry_interval)
                    continue
            rid = self._next_id
            self._next_id += 1
            try:
                rows = conn.query("INSERT INTO %s (id, port) VALUES (%d, inet_server_port())"
                                  " RETURNING port" % (self.table, rid), timeout=120)
            except ConnectionLost as e:
                with self.lock:
                    self.uncertain.append(rid)
                    self.errors.append((time.monotonic(), str(e)))
                conn.close()
                conn = None
                self._stop.wait(self.retry_interval)
                continue
            except PgError as e:
                with self.lock:
                    self.errors.append((time.monotonic(), str(e)))
                conn.close()
                conn = None
                self._stop.wait(self.retry_interval)
                continue
            with self.lock:
                self.acked.append((rid, int(rows[0][0]), time.monotonic()))
        if conn is not None:
            conn.close()

    def stop(self, timeout=10):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._conn is not None and self._conn.sock is not None:
                try:
                    import socket
                    self._conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._thread.join(10)
        return self

    def wait_ack(self, port, after, timeout=60):
        """Wait for an ack from backend `port` later than `after`; the ack or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with self.lock:
                for a in reversed(self.acked):
                    if a[2] <= after:
                        break
                    if a[1] == port:
                        return a
            time.sleep(0.02)
        return None

    def downtime(self, since):
        """(gap seconds, last ack before the gap, first ack after it): the longest
        pause between two consecutive acks from the last ack before `since` on."""
        with self.lock:
            acks = list(self.acked)
        before = [a for a in acks if a[2] <= since]
        start = len(before) - 1 if before else 0
        best = (0.0, None, None)
        for a, b in zip(acks[start:], acks[start + 1:]):
            if b[2] - a[2] > best[0]:
                best = (b[2] - a[2], a, b)
        return best

    @property
    def acked_ids(self):
        with self.lock:
            return {a[0] for a in self.acked}


def start_pool_writer(testcase, pool, acks=20, timeout=30):
    """A PoolWriter through `pool`, stopped at the test's cleanup, once it has
    `acks` acknowledged writes (the test fails when it has none within `timeout`)."""
    w = PoolWriter(pool).start()
    testcase.addCleanup(w.stop)
    t0 = time.monotonic()
    while len(w.acked) < acks and time.monotonic() - t0 < timeout:
        time.sleep(0.02)
    testcase.assertGreaterEqual(len(w.acked), acks, "no writes through pgpool: %r" % w.errors[-3:])
    return w

class PgpoolWatchdog:
    """`count` real pgpool-II instances in one watchdog cluster on 127.0.0.1, as on
    separate hosts: each its own directory, ports (pgpool, PCP, watchdog, heartbeat),
    pgpool_node_id and hooks (`commands(i)` gives instance i's failover_command and
    follow_primary_command). Quorum and consensus on, as production runs them:
    failover_when_quorum_exists, failover_require_consensus, one vote per node;
    heartbeat lifecheck every second, a node lost after 3 s. No delegate IP.

        wd = PgpoolWatchdog(cluster, 3, commands=lambda i: (fo_cmd(i), follow_cmd(i)))
        self.addCleanup(wd.stop)
        wd.prepare()             # ports and pcppass of every instance known
        wd.start()               # all up, and one LEADER they agree on
        wd.leader()              # the leader's index
    """

    def __init__(self, cluster, count=3, commands=None, label="pgfo-wd"):
        commands = commands or (lambda i: ("", ""))
        self.pools = []
        for i in range(count):
            fo, fp = commands(i)
            self.pools.append(Pgpool(cluster, failover_command=fo, follow_primary_command=fp,
                                     label="%s%d" % (label, i)))
        self.wd_ports = []

    def prepare(self):
        for p in self.pools:
            p.prepare()
        n = len(self.pools)
        if not self.wd_ports:
            self.wd_ports = reserve_ports(2 * n, offset=PGPOOL_PORT_BASE - port_base())
        peers = {}
        for i, p in enumerate(self.pools):
            peers.update({"hostname%d" % i: _q(HOST), "pgpool_port%d" % i: p.port,
                          "wd_port%d" % i: self.wd_ports[2 * i],
                          "heartbeat_hostname%d" % i: _q(HOST),
                          "heartbeat_port%d" % i: self.wd_ports[2 * i + 1]})
        for i, p in enumerate(self.pools):
            p.extra.update(peers)
            p.extra.update({
                "use_watchdog": "on",
                "wd_priority": n - i,
                "wd_lifecheck_method": _q("heartbeat"),
                "wd_interval": 1,
                "wd_heartbeat_keepalive": 1,
                "wd_heartbeat_deadtime": 3,
                "failover_when_quorum_exists": "on",
                "failover_require_consensus": "on",
                "allow_multiple_failover_requests_from_node": "off",
                "enable_consensus_with_half_votes": "off",
                "delegate_IP": _q(""),
                "trusted_servers": _q(""),
                "wd_monitoring_interfaces_list": _q(""),
            })
            with open(p.path("pgpool_node_id"), "w") as f:
                f.write("%d\n" % i)
        return self

    def start(self, timeout=60):
        self.prepare()
        for p in self.pools:
            p.launch()
        for p in self.pools:
            p.wait_ready(timeout)
        self.wait_leader(timeout)
        return self

    def stop(self):
        for p in self.pools:
            p.stop()
        release_ports(self.wd_ports)
        self.wd_ports = []

    def watchdog_info(self, i):
        """[(pgpool_port, state_name)] of every node, as instance i sees them; [] on error."""
        r = self.pools[i].pcp("pcp_watchdog_info", timeout=10)
        if r.returncode != 0:
            return []
        out = []
        # "<node name> <host> <pgpool port> <wd port> <state> <state name> <membership>
        # <membership name>"; the node name and the state name may hold spaces
        for line in r.stdout.splitlines()[2:]:
            m = re.search(r" (\d+) (\d+) (\d+) ([A-Z][A-Z ]*[A-Z]) (-?\d+) \S", line)
            if m:
                out.append((int(m.group(1)), m.group(4)))
        return out

    def leader(self, among=None):
        """Index of the instance every live one (or those in `among`) names LEADER; None."""
        seen = set()
        for i, p in enumerate(self.pools):
            if p.proc is None or p.proc.poll() is not None or (among and i not in among):
                continue
            leaders = [port for port, state in self.watchdog_info(i) if state == "LEADER"]
            if len(leaders) != 1:
                return None
            seen.add(leaders[0])
        if len(seen) != 1:
            return None
        port = seen.pop()
        return [i for i, p in enumerate(self.pools) if p.port == port][0]

    def wait_leader(self, timeout=60, among=None, not_=None):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            ld = self.leader(among)
            if ld is not None and ld != not_:
                return ld
            time.sleep(0.2)
        raise PgError("no watchdog leader agreed on within %ss:\n%s" % (
            timeout, "\n".join(p.log_tail(15) for p in self.pools if p.logfile)))
