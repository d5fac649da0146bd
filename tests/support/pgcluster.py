#!/usr/bin/env python3
"""Real PostgreSQL clusters for integration tests (Python 3 standard library only).

A PgCluster is one primary (node 0) plus N streaming standbys (nodes 1..N, like
pgpool backend ids), all on 127.0.0.1, each with its own data directory under a
private temporary base directory. Typical use in a unittest.TestCase:

    from pgcluster import PgCluster

    c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=0)
    # or PgCluster(..., pg_version=11): another major's servers (see below)
    self.addCleanup(c.teardown)      # always runs, even when the test fails
    c.start()                        # primary + standby streaming, a few seconds
    w = c.writer(0)                  # background inserts, records acknowledged ids
    c.dirty_buffers(0, 700)          # make the next shutdown checkpoint slow
    c.stop(0, "fast")
    c.promote(1)
    verdict = c.follow(0, 1)         # FollowVerdict: streams, or needs pg_rewind

Environment:
    PGFO_PG_BINDIR        server binaries (default /usr/lib/postgresql/15/bin)
    PGFO_PG_CACHE         where tests/support/fetch_pg.sh put other majors
                          (default ~/.cache/pgfailover-pg; <major>/native/bin)
    PGFO_PG<major>_BINDIR server binaries of that major (overrides the lookup)
    PGFO_TEST_PORT_BASE   first port tried (default 25432); clusters add port_offset
    PGFO_KEEP_CLUSTERS=1  keep data directories and logs after teardown
    PGFO_TEST_TMPDIR      parent of the per-cluster base directories (default: system temp)

Other majors (pg_version=11..18): the server programs (initdb, pg_ctl,
postgres) come from pg_bindir(major): PGFO_PG<major>_BINDIR, else
/usr/lib/postgresql/<major>/bin, else the fetch_pg.sh cache. Programs that
directory lacks (the npm packages ship only the server) come from
CLIENT_BINDIR (PostgreSQL 15): pg_basebackup for servers up to 15 (it writes
recovery.conf for 11 with -R); newer servers, which it refuses, get a standby
copied from the cleanly stopped primary instead. PostgreSQL 11 standbys use
recovery.conf, 12+ standby.signal. pg_controldata and pg_waldump only read
their own major's files: without the major's own, controldata() and
checkpoint_record() read pg_control and the WAL record header in Python
(fields stable from 11 to 18) and say so (CheckpointRecord.source).

Root: PostgreSQL refuses to run as root. When the test process runs as root, every
server program (initdb, pg_ctl, postgres, pg_basebackup, pg_controldata,
pg_waldump, ...) runs as the `postgres` OS user through `runuser -u postgres --`,
and the base directory is handed to that user. The psql client and the wire
protocol client below connect over TCP and may run as any user. The simplest and
most realistic setup is still to run the whole test process as an unprivileged
user (scripts/test does that in CI).
"""

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import logfile

PG_BINDIR = os.environ.get("PGFO_PG_BINDIR", "/usr/lib/postgresql/15/bin")
CLIENT_BINDIR = "/usr/lib/postgresql/15/bin"   # client programs for other majors
DEFAULT_PORT_BASE = 25432
SUPERUSER = "postgres"          # initdb -U: the same name whoever runs the tests
HOST = "127.0.0.1"
SERVER_OS_USER = "postgres"     # OS user for server programs when running as root

_NULL = "\x1a"                  # psql null display marker (never in test data)
_FS = "\x1f"                    # psql field separator
_RS = "\x1e"                    # psql record separator


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

class PgError(Exception):
    """An error reported by a server, a client program or the fixture."""

    def __init__(self, message, sqlstate=None, severity=None):
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.severity = severity


class ConnectionLost(PgError):
    """The server closed the connection, or ended the session with FATAL."""


class ConnectFailed(ConnectionLost):
    """No TCP connection at all (refused, timed out)."""


def lsn_to_int(text):
    """'0/6F6F558' -> int. None stays None."""
    if text is None or text == "":
        return None
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def int_to_lsn(value):
    """int -> '0/6F6F558'."""
    if value is None:
        return None
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def running_as_root():
    return os.geteuid() == 0


def owner_prefix():
    """Command prefix that runs a server program as the data directories' owner."""
    if running_as_root():
        return ["runuser", "-u", SERVER_OS_USER, "--"]
    return []


def pg_bin(name):
    return os.path.join(PG_BINDIR, name)


def pg_cache_dir():
    """Where tests/support/fetch_pg.sh installs other majors."""
    return os.environ.get("PGFO_PG_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "pgfailover-pg")


def pg_bindir(major):
    """Server bin directory of PostgreSQL `major` (int), or PgError saying how
    to get it: PGFO_PG<major>_BINDIR, /usr/lib/postgresql/<major>/bin, then
    the fetch_pg.sh cache."""
    major = int(major)
    env = os.environ.get("PGFO_PG%d_BINDIR" % major)
    candidates = [env] if env else []
    candidates += ["/usr/lib/postgresql/%d/bin" % major,
                   os.path.join(pg_cache_dir(), str(major), "native", "bin")]
    for d in candidates:
        if os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    raise PgError("no PostgreSQL %d server binaries (looked in %s); fetch them with "
                  "tests/support/fetch_pg.sh %d" % (major, ", ".join(candidates), major))


def ensure_pg_majors(majors):
    """Fetch (tests/support/fetch_pg.sh, npm) the majors that have no server
    binaries yet."""
    missing = []
    for m in majors:
        try:
            pg_bindir(m)
        except PgError:
            missing.append(m)
    if missing:
        t0 = time.monotonic()
        fetch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fetch_pg.sh")
        subprocess.run(["bash", fetch] + [str(m) for m in missing], check=True, timeout=600)
        print("fetched PostgreSQL %s in %.1f s" % (" ".join(map(str, missing)),
                                                   time.monotonic() - t0), flush=True)


def server_major(bindir):
    """Major version (int) of the postgres binary in `bindir`."""
    out = subprocess.run([os.path.join(bindir, "postgres"), "--version"], capture_output=True,
                         text=True, timeout=30, env=_clean_env()).stdout
    m = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not m:
        raise PgError("cannot tell the version of %s/postgres: %r" % (bindir, out))
    return int(m.group(1))


_DB_STATES = ["starting up", "shut down", "shut down in recovery", "shutting down",
              "in crash recovery", "in archive recovery", "in production"]


def read_pg_control(datadir):
    """The pg_control fields stable from PostgreSQL 11 to 18, without
    pg_controldata, as pg_controldata names them (a subset)."""
    with open(os.path.join(datadir, "global", "pg_control"), "rb") as f:
        data = f.read(64)
    sysid, version, _catver, state = struct.unpack_from("<QIIi", data, 0)
    checkpoint, redo, tli = struct.unpack_from("<QQI", data, 32)
    return {
        "Database system identifier": str(sysid),
        "pg_control version number": str(version),
        "Database cluster state": _DB_STATES[state] if 0 <= state < len(_DB_STATES)
        else "unrecognized status code",
        "Latest checkpoint location": int_to_lsn(checkpoint),
        "Latest checkpoint's REDO location": int_to_lsn(redo),
        "Latest checkpoint's TimeLineID": str(tli),
    }


def port_base():
    return int(os.environ.get("PGFO_TEST_PORT_BASE", str(DEFAULT_PORT_BASE)))


_ports_lock = threading.Lock()
_ports_taken = set()            # handed out in this process and not yet released


def port_in_use(port):
    """True when something listens on 127.0.0.1:port or the port cannot be bound."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(0.2)
        if s.connect_ex((HOST, port)) == 0:
            return True
    finally:
        s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # like the postmaster: TIME_WAIT leftovers do not make a port busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def reserve_ports(count, offset=0):
    """Pick `count` free loopback ports, starting at PGFO_TEST_PORT_BASE + offset.

    Ports in use (by anything, or already handed out in this process) are skipped.
    Release them with release_ports() (PgCluster.teardown does it for its own).
    """
    ports = []
    p = port_base() + offset
    with _ports_lock:
        while len(ports) < count:
            if p >= 32768:
                raise PgError("no free test port below 32768 (base %d, offset %d)"
                              % (port_base(), offset))
            if p not in _ports_taken and not port_in_use(p):
                ports.append(p)
                _ports_taken.add(p)
            p += 1
    return ports


def release_ports(ports):
    with _ports_lock:
        for p in ports:
            _ports_taken.discard(p)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                return False
    except OSError:
        return False
    return True


def _clean_env(extra=None):
    """Environment for client and server programs: no stray PG* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env["PGCONNECT_TIMEOUT"] = "5"
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------
# a tiny frontend/backend protocol client (trust authentication, simple query)
# --------------------------------------------------------------------------

class MiniConn:
    """Minimal PostgreSQL wire protocol client: enough for the writer and ping.

    Only trust authentication. query() returns rows as tuples of str/None and
    raises PgError (server error) or ConnectionLost. Not thread safe.
    """

    def __init__(self, port, host=HOST, user=SUPERUSER, dbname="postgres",
                 application_name="pgfo-test", timeout=5.0):
        self.sock = None
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectFailed("connect to %s:%d failed: %s" % (host, port, e))
        self.sock.settimeout(timeout)
        params = b""
        for k, v in (("user", user), ("database", dbname),
                     ("application_name", application_name)):
            params += k.encode() + b"\0" + v.encode() + b"\0"
        body = struct.pack("!i", 196608) + params + b"\0"
        try:
            self._handshake(body)
        except BaseException:
            self.close()
            raise

    def _handshake(self, body):
        self._send(struct.pack("!i", len(body) + 4) + body)
        while True:
            t, payload = self._read_msg()
            if t == b"R":
                code = struct.unpack("!i", payload[:4])[0]
                if code != 0:
                    raise PgError("authentication method %d not supported "
                                  "(tests use trust)" % code)
            elif t == b"E":
                raise _error_from(payload)
            elif t == b"Z":
                return

    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ConnectionLost("send failed: %s" % e)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError as e:
                raise ConnectionLost("receive failed: %s" % e)
            if not chunk:
                raise ConnectionLost("server closed the connection")
            buf += chunk
        return buf

    def _read_msg(self):
        hdr = self._recv_exact(5)
        length = struct.unpack("!i", hdr[1:5])[0]
        return hdr[0:1], self._recv_exact(length - 4)

    def query(self, sql, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        data = sql.encode() + b"\0"
        self._send(b"Q" + struct.pack("!i", len(data) + 4) + data)
        rows, err = [], None
        while True:
            t, payload = self._read_msg()
            if t == b"D":
                n = struct.unpack("!h", payload[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", payload[pos:pos + 4])[0]
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos:pos + ln].decode())
                        pos += ln
                rows.append(tuple(row))
            elif t == b"E":
                err = _error_from(payload)
            elif t == b"Z":
                if err is not None:
                    raise err
                return rows

    def close(self):
        if self.sock is not None:
            try:
                self.sock.sendall(b"X\0\0\0\4")
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _error_from(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    cls = PgError
    # FATAL from the server ends the session
    if fields.get("S") in ("FATAL", "PANIC"):
        cls = ConnectionLost
    return cls(fields.get("M", "unknown error"), sqlstate=fields.get("C"),
               severity=fields.get("S"))


# --------------------------------------------------------------------------
# data types returned by the fixture
# --------------------------------------------------------------------------

class Node:
    """One server: id 0 is the initial primary, 1.. the initial standbys."""

    def __init__(self, cluster, node_id, port):
        self.cluster = cluster
        self.id = node_id
        self.name = "node%d" % node_id
        self.port = port
        self.host = HOST
        self.datadir = os.path.join(cluster.base, self.name)
        self.logfile = os.path.join(cluster.base, self.name + ".log")

    @property
    def pidfile(self):
        return os.path.join(self.datadir, "postmaster.pid")

    def postmaster_pid(self):
        """PID from postmaster.pid, or None when there is no (readable) file."""
        try:
            with open(self.pidfile) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def conninfo(self, **extra):
        kv = {"host": self.host, "port": str(self.port), "user": SUPERUSER,
              "dbname": "postgres"}
        kv.update({k: str(v) for k, v in extra.items()})
        return " ".join("%s=%s" % (k, v) for k, v in kv.items())

    def __repr__(self):
        return "<Node %s port=%d>" % (self.name, self.port)


class FollowVerdict:
    """Result of PgCluster.follow().

    ok            True when the old primary streams from the new primary
    needs_rewind  True when the server reported that the new timeline forked off
                  before its current recovery point (pg_rewind or a new base backup
                  is needed), or refused the timeline at startup
    state         'streaming' | 'forked' | 'not_a_child' | 'not_in_history' |
                  'died' | 'timeout'
    message       the decisive log line (or a description)
    log_excerpt   the node's log since follow() started it
    elapsed       seconds from start to verdict
    """

    def __init__(self, state, message, log_excerpt, elapsed):
        self.state = state
        self.ok = state == "streaming"
        self.needs_rewind = state in [name for name, _ in CANNOT_FOLLOW]
        self.message = message
        self.log_excerpt = log_excerpt
        self.elapsed = elapsed

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return "FollowVerdict(state=%r, elapsed=%.2fs, message=%r)" % (
            self.state, self.elapsed, self.message)


# PostgreSQL's ways of saying that a node cannot follow without pg_rewind (its
# startup process, or the new primary's walsender as reported by the node's
# walreceiver), as (FollowVerdict state, pattern for the log line)
CANNOT_FOLLOW = (
    ("forked", re.compile(r".*new timeline \d+ forked off current database system "
                          r"timeline \d+ before current recovery point.*")),
    ("not_a_child", re.compile(r".*requested timeline \d+ is not a child of this "
                               r"server's history.*(\n.*DETAIL:.*)?")),
    ("not_in_history", re.compile(r".*requested starting point \S+ on timeline \d+ "
                                  r"is not in this server's history.*")),
)


def cannot_follow(log):
    """(state, decisive line) when `log` says the node cannot follow, else None."""
    for state, rx in CANNOT_FOLLOW:
        m = rx.search(log)
        if m:
            return state, m.group(0).strip()
    return None


class CheckpointRecord(tuple):
    """(start, end, timeline) of a checkpoint record, as ints; unpacks as a
    3-tuple. Extra attributes: next_start (where pg_waldump found or expected
    the following record, or None), kind ('CHECKPOINT_SHUTDOWN' or
    'CHECKPOINT_ONLINE'), state (pg_control's "Database cluster state"),
    source ('pg_waldump', or 'wal header' when read without pg_waldump)."""

    def __new__(cls, start, end, timeline, next_start=None, kind=None, state=None):
        self = tuple.__new__(cls, (start, end, timeline))
        self.next_start = next_start
        self.kind = kind
        self.state = state
        self.source = "pg_waldump"
        return self

    start = property(lambda self: self[0])
    end = property(lambda self: self[1])
    timeline = property(lambda self: self[2])

    def __repr__(self):
        return "CheckpointRecord(%s..%s, tli %d, %s, %s)" % (
            int_to_lsn(self.start), int_to_lsn(self.end), self.timeline, self.kind,
            self.state)


def _record_end(start, tot_len, blcksz=8192, segsz=16 * 1024 * 1024):
    """End LSN of a WAL record of total length tot_len starting at `start`."""
    pos, remaining = start, tot_len
    while True:
        room = blcksz - pos % blcksz
        take = min(room, remaining)
        pos += take
        remaining -= take
        if remaining == 0:
            break
        # continued on the next page, after its header (long at a segment start)
        pos += 40 if pos % segsz == 0 else 24
    return (pos + 7) & ~7


class Writer:
    """Background thread inserting one row per transaction, recording acks.

    A row counts as acknowledged only when the server reported the INSERT's
    CommandComplete and ReadyForQuery, i.e. after the (synchronous) commit
    returned. Ids are chosen by the writer and never reused; an INSERT whose
    outcome is unknown (connection lost while it ran) goes to `uncertain`.

    The writer tries `nodes` in order and keeps trying (every `retry_interval`)
    when none accepts writes, so it also measures write downtime across a
    failover. With fresh_connection, every insert has a connection of its own
    (to the first of `nodes` that accepts writes at that moment), as a client
    that connects per request with target_session_attrs = read-write.
    Attributes (read them after stop(), or under `lock`):
        acked      list of (id, node_id, monotonic time of the ack)
        uncertain  list of (id, node_id)
        errors     list of (monotonic time, node_id, message)
    """

    def __init__(self, cluster, nodes, table="pgfo_writer", interval=0.0,
                 retry_interval=0.05, fresh_connection=False):
        self.cluster = cluster
        self.fresh_connection = fresh_connection
        self.nodes = [cluster.node(n) for n in nodes]
        self.table = table
        self.interval = interval
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
        primary = self.nodes[0]
        self.cluster.psql(primary, "CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY,"
                          " node int NOT NULL, at timestamptz NOT NULL DEFAULT"
                          " clock_timestamp())" % self.table)
        self._thread = threading.Thread(target=self._run, name="pgfo-writer",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self):
        conn, node = None, None
        while not self._stop.is_set():
            if conn is None:
                conn, node = self._connect()
                self._conn = conn
                if conn is None:
                    self._stop.wait(self.retry_interval)
                    continue
            rid = self._next_id
            self._next_id += 1
            try:
                conn.query("INSERT INTO %s (id, node) VALUES (%d, %d)"
                           % (self.table, rid, node.id), timeout=120)
            except ConnectionLost as e:
                with self.lock:
                    self.uncertain.append((rid, node.id))
                    self.errors.append((time.monotonic(), node.id, str(e)))
                conn.close()
                conn = None
                continue
            except PgError as e:
                # e.g. read-only transaction after a node turned standby
                with self.lock:
                    self.errors.append((time.monotonic(), node.id, str(e)))
                conn.close()
                conn = None
                self._stop.wait(self.retry_interval)
                continue
            with self.lock:
                self.acked.append((rid, node.id, time.monotonic()))
            if self.fresh_connection:
                conn.close()
                conn = None
            if self.interval:
                self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def _connect(self):
        for node in self.nodes:
            try:
                conn = MiniConn(node.port, host=node.host, application_name="pgfo-writer", timeout=2)
            except PgError as e:
                with self.lock:
                    self.errors.append((time.monotonic(), node.id, str(e)))
                continue
            try:
                r = conn.query("SELECT pg_is_in_recovery()")
                if r[0][0] == "f":
                    return conn, node
            except PgError:
                pass
            conn.close()
        return None, None

    def stop(self, timeout=10):
        """Stop the thread. A query still waiting after `timeout` (e.g. a commit
        waiting for a synchronous standby that is gone) has its socket shut down;
        its row counts as uncertain."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                conn = self._conn
                if conn is not None and conn.sock is not None:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self._thread.join(10)
        return self

    @property
    def acked_ids(self):
        with self.lock:
            return {a[0] for a in self.acked}

    def wait_ack(self, node=None, timeout=30):
        """Wait (at most `timeout` s) until some write is acknowledged, on
        `node` if given; then last_ack(node), None if none came."""
        deadline = time.monotonic() + timeout
        while self.last_ack(node) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.last_ack(node)

    def last_ack(self, node=None):
        """(id, node_id, time) of the last ack, optionally only on `node`."""
        nid = None if node is None else self.cluster.node(node).id
        with self.lock:
            for a in reversed(self.acked):
                if nid is None or a[1] == nid:
                    return a
        return None

    def first_ack(self, node=None, after=None):
        nid = None if node is None else self.cluster.node(node).id
        with self.lock:
            for a in self.acked:
                if (nid is None or a[1] == nid) and (after is None or a[2] > after):
                    return a
        return None

    def missing_on(self, node):
        """Acknowledged ids that are not in the table on `node`."""
        rows = self.cluster.psql(node, "SELECT id FROM %s" % self.table)
        present = {int(r[0]) for r in rows}
        return self.acked_ids - present


# --------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------

_live_clusters = []


def _teardown_all():
    for c in list(_live_clusters):
        try:
            c.teardown()
        except Exception:       # noqa: BLE001 - best effort at exit
            pass


atexit.register(_teardown_all)


class PgCluster:
    """A primary (node 0) and `standbys` streaming standbys on 127.0.0.1.

    sync_names     synchronous_standby_names on every node (copied by the base
                   backup, as in a real deployment); '' for asynchronous
    port_offset    added to PGFO_TEST_PORT_BASE; give each test its own
    shared_buffers enough to dirty before a stop (default 1GB)
    extra_conf     dict of additional settings for every node
    pg_version     major version (11..18) of the servers; default: those in
                   PGFO_PG_BINDIR (PostgreSQL 15). See pg_bindir().
    bindir         server bin directory (instead of pg_version)
    """

    def __init__(self, standbys=1, sync_names="ANY 1 (node1)", port_offset=0,
                 shared_buffers="1GB", extra_conf=None, label="pgfo", pg_version=None,
                 bindir=None):
        if bindir is None:
            bindir = pg_bindir(pg_version) if pg_version is not None else PG_BINDIR
        self.bindir = bindir
        self._major = None
        if pg_version is not None:
            self._major = server_major(bindir)
            if self._major != int(pg_version):
                raise PgError("%s holds PostgreSQL %d, not %s" % (bindir, self._major, pg_version))
        self.n_standbys = standbys
        self.sync_names = sync_names
        self.port_offset = port_offset
        self.shared_buffers = shared_buffers
        self.extra_conf = dict(extra_conf or {})
        self.label = label
        self.base = None
        self.nodes = []
        self.ports = []
        self.writers = []
        self._procs = []
        self.timings = {}
        self._torn_down = False

    @property
    def major(self):
        """Major version of this cluster's servers (int)."""
        if self._major is None:
            self._major = server_major(self.bindir)
        return self._major

    def pg_bin(self, name):
        """A PostgreSQL program for this cluster: its own bin directory's, else
        PostgreSQL 15's (CLIENT_BINDIR: the npm packages ship only the server)."""
        own = os.path.join(self.bindir, name)
        if os.path.exists(own) or not os.path.exists(os.path.join(CLIENT_BINDIR, name)):
            return own
        return os.path.join(CLIENT_BINDIR, name)

    def has_own(self, name):
        """True when this cluster's bin directory has program `name` (so it
        reads this major's files)."""
        return os.path.exists(os.path.join(self.bindir, name))

    # ---- lifecycle --------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.teardown()

    def start(self):
        """Create and start primary + standbys; wait until all standbys stream."""
        t0 = time.monotonic()
        _live_clusters.append(self)
        self._make_base()
        self.ports = reserve_ports(self.n_standbys + 1, self.port_offset)
        self.nodes = [self.new_node(i, p) for i, p in enumerate(self.ports)]
        self._init_primary()
        self.start_node(0)
        self.timings["primary"] = time.monotonic() - t0
        for node in self.nodes[1:]:
            self._make_standby(node, self.nodes[0])
            self.start_node(node)
        for node in self.nodes[1:]:
            self.wait_streaming(node, self.nodes[0])
        self.timings["start"] = time.monotonic() - t0
        return self

    def new_node(self, node_id, port):
        """The Node for id `node_id` (a subclass may place it elsewhere)."""
        return Node(self, node_id, port)

    def owner_argv(self, argv):
        """The command line that runs server program `argv` as the owner (a
        subclass may run it somewhere else, e.g. in the node's network namespace)."""
        return owner_prefix() + list(argv)

    def _make_base(self):
        parent = os.environ.get("PGFO_TEST_TMPDIR") or None
        self.base = tempfile.mkdtemp(prefix="%s-" % self.label, dir=parent)
        if running_as_root():
            pw = pwd.getpwnam(SERVER_OS_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o755)  # psql/pg_waldump as another user may read logs

    def _node_conf(self, node):
        return ("# written by the test fixture for %s\n"
                "port = %d\n"
                "cluster_name = '%s'\n" % (node.name, node.port, node.name))

    def common_settings(self):
        """The settings every node gets, as {name: value written into
        postgresql.conf} (strings already quoted where PostgreSQL needs it)."""
        conf = {
            "listen_addresses": "'%s'" % HOST,
            "unix_socket_directories": "'%s'" % self.base,
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_log_hints": "on",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "shared_buffers": self.shared_buffers,
            "synchronous_standby_names": "'%s'" % self.sync_names.replace("'", "''"),
            # No checkpoint of its own during a test: whatever is dirtied before a
            # stop stays dirty until the shutdown checkpoint writes it.
            "checkpoint_timeout": "30min",
            "max_wal_size": "4GB",
            "min_wal_size": "80MB",
            "bgwriter_lru_maxpages": "0",
            "wal_sender_timeout": "60s",
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "1s",
            "max_connections": "50",
            "log_line_prefix": "'%m [%p] %b '",
            "log_checkpoints": "on",
            "log_replication_commands": "on",
            "logging_collector": "off",
            "fsync": "on",
        }
        if self.major >= 13:
            conf["wal_keep_size"] = "256MB"
        else:
            conf["wal_keep_segments"] = "16"          # 16 MB each
        conf.update(self.extra_conf)
        return conf

    def _common_conf(self):
        conf = self.common_settings()
        lines = ["", "# ---- test settings (pgcluster.py) ----"]
        lines += ["%s = %s" % (k, v) for k, v in conf.items()]
        lines.append("include_if_exists = 'node.conf'")
        return "\n".join(lines) + "\n"

    def _init_primary(self):
        node = self.nodes[0]
        self.run_owner([self.pg_bin("initdb"), "-D", node.datadir, "-U", SUPERUSER,
                        "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                       timeout=120)
        self._append_owner_file(os.path.join(node.datadir, "postgresql.conf"),
                                self._common_conf())
        self._write_owner_file(os.path.join(node.datadir, "pg_hba.conf"),
                               "local all all trust\n"
                               "local replication all trust\n"
                               "host all all 127.0.0.1/32 trust\n"
                               "host replication all 127.0.0.1/32 trust\n")
        self._write_owner_file(os.path.join(node.datadir, "node.conf"),
                               self._node_conf(node))

    def _make_standby(self, node, primary):
        if self.has_own("pg_basebackup") or self.major <= 15:
            self.run_owner([self.pg_bin("pg_basebackup"), "-D", node.datadir, "-R",
                            "-X", "stream", "-c", "fast", "--no-sync",
                            "-d", primary.conninfo(application_name=node.name)],
                           timeout=300)
            if self.major < 12 and not os.path.exists(
                    os.path.join(node.datadir, "recovery.conf")):
                raise PgError("pg_basebackup -R wrote no recovery.conf for PostgreSQL %d"
                              % self.major)
        else:
            self._copy_stopped(node, primary)
        self._write_owner_file(os.path.join(node.datadir, "node.conf"),
                               self._node_conf(node))
        self.set_primary_conninfo(node, primary)

    def _copy_stopped(self, node, primary):
        """A standby's data directory as a copy of the cleanly stopped primary
        (PostgreSQL 15's pg_basebackup refuses newer servers)."""
        was_running = self.is_running(primary)
        if was_running:
            self.stop(primary, "fast")
        self.run_owner(["cp", "-a", primary.datadir, node.datadir], timeout=300)
        for name in ("postmaster.pid", "postmaster.opts"):
            try:
                os.unlink(os.path.join(node.datadir, name))
            except FileNotFoundError:
                pass
        if was_running:
            self.start_node(primary)

    def set_primary_conninfo(self, node, primary, recovery_target_timeline="latest"):
        """Point `node` at `primary`: 12+ in postgresql.auto.conf plus
        standby.signal, 11 in recovery.conf (standby_mode = 'on')."""
        node, primary = self.node(node), self.node(primary)
        if self.major < 12:
            ci = "host=%s port=%d user=%s application_name=%s" % (
                primary.host, primary.port, SUPERUSER, node.name)
            self._write_owner_file(os.path.join(node.datadir, "recovery.conf"),
                                   "standby_mode = 'on'\n"
                                   "primary_conninfo = '%s'\n"
                                   "recovery_target_timeline = '%s'\n"
                                   % (ci, recovery_target_timeline))
            return
        auto = os.path.join(node.datadir, "postgresql.auto.conf")
        try:
            with open(auto) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = ["# Do not edit this file manually!",
                     "# It will be overwritten by the ALTER SYSTEM command."]
        lines = [ln for ln in lines
                 if not re.match(r"\s*(primary_conninfo|recovery_target_timeline)\s*=", ln)]
        ci = "host=%s port=%d user=%s application_name=%s" % (
            primary.host, primary.port, SUPERUSER, node.name)
        lines.append("primary_conninfo = '%s'" % ci)
        lines.append("recovery_target_timeline = '%s'" % recovery_target_timeline)
        self._write_owner_file(auto, "\n".join(lines) + "\n")
        self._write_owner_file(os.path.join(node.datadir, "standby.signal"), "")

    def teardown(self):
        """Stop every server (immediate), remove the base dir unless PGFO_KEEP_CLUSTERS=1."""
        if self._torn_down:
            return
        self._torn_down = True
        for w in self.writers:
            w._stop.set()
        for node in self.nodes:
            try:
                self._stop_hard(node)
            except Exception:   # noqa: BLE001 - keep tearing down
                pass
        for w in self.writers:
            w.stop(timeout=2)
        for p in self._procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        release_ports(self.ports)
        if self in _live_clusters:
            _live_clusters.remove(self)
        if self.base:
            if os.environ.get("PGFO_KEEP_CLUSTERS") == "1":
                print("pgcluster: kept %s" % self.base, flush=True)
            else:
                shutil.rmtree(self.base, ignore_errors=True)

    def _stop_hard(self, node):
        pid = node.postmaster_pid()
        if pid is None or not pid_alive(pid):
            return
        try:
            self.run_owner([self.pg_bin("pg_ctl"), "-D", node.datadir, "-m", "immediate",
                            "-w", "-t", "20", "stop"], timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pass
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    # ---- running programs -------------------------------------------------

    def node(self, n):
        """Node object from an id or a Node."""
        if isinstance(n, Node):
            return n
        return self.nodes[n]

    def run_owner(self, argv, timeout=60, check=True, input=None):
        """Run a server program as the data directory owner; CompletedProcess."""
        cp = subprocess.run(self.owner_argv(argv), cwd=self.base or "/",
                            env=_clean_env(), input=input, capture_output=True,
                            text=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise PgError("%s failed (exit %d): %s%s" % (
                " ".join(argv), cp.returncode, cp.stdout, cp.stderr))
        return cp

    def popen_owner(self, argv, **kw):
        """Start a server program as the owner without waiting (tracked for teardown)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        p = subprocess.Popen(self.owner_argv(argv), cwd=self.base or "/",
                             env=_clean_env(), **kw)
        self._procs.append(p)
        return p

    def write_owner_file(self, path, text):
        """Write a file the server OS user owns (e.g. a config in self.base)."""
        self._write_owner_file(path, text)

    def _write_owner_file(self, path, text):
        with open(path, "w") as f:
            f.write(text)
        self._chown(path)

    def _append_owner_file(self, path, text):
        with open(path, "a") as f:
            f.write(text)
        self._chown(path)

    def _chown(self, path):
        if running_as_root():
            pw = pwd.getpwnam(SERVER_OS_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chmod(path, 0o600)

    # ---- SQL --------------------------------------------------------------

    def psql(self, node, sql, dbname="postgres", timeout=60, check=True):
        """Run `sql` with the psql client; rows as a list of tuples (str or None).

        Several statements in one string run in one implicit transaction and only
        the last one's rows come back (psql -c semantics).
        """
        node = self.node(node)
        argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-F", _FS, "-R", _RS, "-P", "null=" + _NULL,
                "-h", node.host, "-p", str(node.port), "-U", SUPERUSER,
                "-d", dbname, "-c", sql]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            env=_clean_env(), cwd="/")
        if cp.returncode != 0:
            if check:
                raise PgError("psql on %s failed (exit %d): %s" % (
                    node.name, cp.returncode, cp.stderr.strip()))
            return None
        out = cp.stdout
        if out.endswith("\n"):
            out = out[:-1]
        if out == "":
            return []
        rows = []
        for rec in out.split(_RS):
            rows.append(tuple(None if v == _NULL else v for v in rec.split(_FS)))
        return rows

    def psql_value(self, node, sql, **kw):
        """First column of the first row (or None)."""
        rows = self.psql(node, sql, **kw)
        return rows[0][0] if rows else None

    def ping(self, node, timeout=2.0):
        """'accepting' | 'rejecting' (e.g. shutting down) | 'no_response'.

        Same categories as pg_isready, but in-process (about 1 ms), so it can
        watch for the moment a primary stops accepting connections.
        """
        node = self.node(node)
        try:
            c = MiniConn(node.port, host=node.host, application_name="pgfo-ping", timeout=timeout)
        except ConnectFailed:
            return "no_response"
        except PgError:
            # FATAL "the database system is shutting down" (57P03), or closed
            # right after accept while the server begins to shut down
            return "rejecting"
        c.close()
        return "accepting"

    def is_in_recovery(self, node):
        return self.psql_value(node, "SELECT pg_is_in_recovery()") == "t"

    def current_lsn(self, node):
        """Primary: pg_current_wal_lsn(); standby: pg_last_wal_receive_lsn()."""
        v = self.psql_value(node, "SELECT CASE WHEN pg_is_in_recovery()"
                            " THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END")
        return lsn_to_int(v)

    def receive_lsn(self, node):
        """pg_last_wal_receive_lsn(): WAL flushed by the walreceiver (standby)."""
        return lsn_to_int(self.psql_value(node, "SELECT pg_last_wal_receive_lsn()"))

    def replay_lsn(self, node):
        return lsn_to_int(self.psql_value(node, "SELECT pg_last_wal_replay_lsn()"))

    def timeline(self, node):
        """Current timeline: running primary from its WAL file name, running
        standby from pg_stat_wal_receiver (else last checkpoint), stopped node
        from pg_control."""
        node = self.node(node)
        if not self.is_running(node):
            return int(self.controldata(node)["Latest checkpoint's TimeLineID"])
        if self.is_in_recovery(node):
            v = self.psql_value(node, "SELECT received_tli FROM pg_stat_wal_receiver")
            if v:
                return int(v)
            return int(self.psql_value(node, "SELECT timeline_id FROM pg_control_checkpoint()"))
        name = self.psql_value(node, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        return int(name[:8], 16)

    def sync_standby_names(self, node):
        """synchronous_standby_names on `node` ('' when empty)."""
        # bracketed: psql cannot tell an empty value from no row
        v = self.psql_value(node, "SELECT '[' || current_setting('synchronous_standby_names') || ']'")
        return v[1:-1]

    def replication(self, primary):
        """{application_name: sync_state} of the standbys streaming from `primary`."""
        rows = self.psql(primary, "SELECT application_name, sync_state FROM pg_stat_replication"
                                  " WHERE state = 'streaming' ORDER BY 1")
        return {r[0]: r[1] for r in rows}

    def checkpoint(self, node):
        self.psql(node, "CHECKPOINT")

    # ---- process control ----------------------------------------------------

    def start_node(self, node, wait=True, timeout=60):
        """pg_ctl start (log appended to node.logfile)."""
        node = self.node(node)
        argv = [self.pg_bin("pg_ctl"), "-D", node.datadir, "-l", node.logfile,
                "-t", str(timeout)]
        argv += ["-w"] if wait else ["-W"]
        self.run_owner(argv + ["start"], timeout=timeout + 10)

    def is_running(self, node):
        """postmaster.pid present and its PID alive."""
        pid = self.node(node).postmaster_pid()
        return pid is not None and pid_alive(pid)

    def stop(self, node, mode="fast", timeout=120):
        """pg_ctl -m mode stop, waiting until the postmaster is gone; seconds taken."""
        node = self.node(node)
        t0 = time.monotonic()
        self.run_owner([self.pg_bin("pg_ctl"), "-D", node.datadir, "-m", mode, "-w",
                        "-t", str(timeout), "stop"], timeout=timeout + 10)
        return time.monotonic() - t0

    def stop_async(self, node, mode="fast", timeout=120):
        """Begin pg_ctl -m mode stop without blocking; returns the Popen."""
        node = self.node(node)
        return self.popen_owner([self.pg_bin("pg_ctl"), "-D", node.datadir, "-m", mode,
                                 "-w", "-t", str(timeout), "stop"])

    def wait_stopped(self, node, timeout=120):
        """Wait until postmaster.pid is gone or names a dead PID; seconds waited."""
        node = self.node(node)
        t0 = time.monotonic()
        while True:
            pid = node.postmaster_pid()
            if pid is None and not os.path.exists(node.pidfile):
                return time.monotonic() - t0
            if pid is not None and not pid_alive(pid):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise PgError("%s still running after %ss" % (node.name, timeout))
            time.sleep(0.01)

    def kill9(self, node, wait_children=True, timeout=30):
        """SIGKILL the postmaster (postmaster.pid stays behind, like a crash).

        With wait_children, also wait until its child processes have exited (they
        notice the postmaster's death on their own), so the node can be restarted.
        """
        node = self.node(node)
        pid = node.postmaster_pid()
        if pid is None:
            raise PgError("%s has no postmaster.pid" % node.name)
        children = _children_of(pid)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        while pid_alive(pid) and time.monotonic() - t0 < timeout:
            time.sleep(0.01)
        if wait_children:
            while any(pid_alive(c) for c in children) and time.monotonic() - t0 < timeout:
                time.sleep(0.02)
        return pid

    def promote(self, node, wait_seconds=60):
        """SELECT pg_promote(true, wait_seconds) (11: pg_ctl promote -w); True on success."""
        if self.major < 12:
            node = self.node(node)
            cp = self.run_owner([self.pg_bin("pg_ctl"), "-D", node.datadir, "-w",
                                 "-t", str(wait_seconds), "promote"],
                                timeout=wait_seconds + 10, check=False)
            return cp.returncode == 0
        v = self.psql_value(node, "SELECT pg_promote(true, %d)" % wait_seconds,
                            timeout=wait_seconds + 10)
        return v == "t"

    def wait_streaming(self, standby, primary=None, timeout=60):
        """Wait until `primary`'s pg_stat_replication shows `standby` streaming."""
        standby = self.node(standby)
        primary = self.node(0 if primary is None else primary)
        t0 = time.monotonic()
        sql = ("SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'"
               " AND state = 'streaming'" % standby.name)
        while True:
            try:
                if self.psql_value(primary, sql) not in (None, "0"):
                    return time.monotonic() - t0
            except PgError:
                pass
            if time.monotonic() - t0 > timeout:
                raise PgError("%s not streaming from %s after %ss; log tail:\n%s" % (
                    standby.name, primary.name, timeout, self.log_tail(standby)))
            time.sleep(0.05)

    # ---- files, pg_control, WAL ---------------------------------------------

    def log_text(self, node, since=0):
        """The node's server log from byte offset `since`."""
        return logfile.read_from(self.node(node).logfile, since)

    def log_size(self, node):
        return logfile.size(self.node(node).logfile)

    def log_tail(self, node, lines=30):
        return "\n".join(self.log_text(node).splitlines()[-lines:])

    def controldata(self, node):
        """pg_controldata output as a dict {'Database cluster state': 'shut down', ...}.

        Without this major's own pg_controldata (the npm packages): only the
        fields read_pg_control() knows."""
        node = self.node(node)
        if not self.has_own("pg_controldata"):
            return read_pg_control(node.datadir)
        cp = self.run_owner([self.pg_bin("pg_controldata"), "-D", node.datadir])
        out = {}
        for line in cp.stdout.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def checkpoint_record(self, node):
        """The node's latest checkpoint record, from pg_control and pg_waldump.

        Returns a CheckpointRecord, which unpacks as (start, end, timeline):
        start is "Latest checkpoint location"; end is where the record ends
        (start + total length from `pg_waldump -s start -n 2`, with the WAL page
        headers it crosses, rounded up to 8 bytes): a standby must have flushed
        up to `end` for this node to follow it without pg_rewind. next_start is
        where pg_waldump found or expected the following record (None when it
        could not tell). Run it on a stopped node (its own pg_wal).

        Without this major's own pg_waldump (PostgreSQL 15's reads no other
        major's WAL) the total length and the kind come from the record's
        header in the WAL segment, read here (source 'wal header' instead of
        'pg_waldump'), and next_start is None.
        """
        node = self.node(node)
        if not self.has_own("pg_waldump"):
            return self._checkpoint_record_from_wal(node)
        cd = self.controldata(node)
        start = lsn_to_int(cd["Latest checkpoint location"])
        tli = int(cd["Latest checkpoint's TimeLineID"])
        blcksz = int(cd.get("WAL block size", "8192"))
        segsz = int(cd.get("Bytes per WAL segment", str(16 * 1024 * 1024)))
        cp = self.run_owner([self.pg_bin("pg_waldump"), "-p", os.path.join(node.datadir, "pg_wal"),
                             "-t", str(tli), "-s", int_to_lsn(start), "-n", "2"],
                            check=False)
        recs = re.findall(r"len \(rec/tot\):\s*\d+/\s*(\d+), .*?lsn: ([0-9A-F]+/[0-9A-F]+),"
                          r" prev [0-9A-F]+/[0-9A-F]+, desc: (\S+)", cp.stdout)
        if not recs or lsn_to_int(recs[0][1]) != start:
            raise PgError("pg_waldump did not show the checkpoint at %s:\n%s%s"
                          % (int_to_lsn(start), cp.stdout, cp.stderr))
        tot, kind = int(recs[0][0]), recs[0][2]
        end = _record_end(start, tot, blcksz, segsz)
        next_start = None
        if len(recs) >= 2:
            next_start = lsn_to_int(recs[1][1])
        else:
            # e.g. "error in WAL record at 0/2D2D6C70: invalid record length at
            # 0/2D2D6CE8: wanted 24, got 0" (a shutdown checkpoint is the last record)
            m = re.search(r"error in WAL record at [0-9A-F]+/[0-9A-F]+: .*?"
                          r"at ([0-9A-F]+/[0-9A-F]+)", cp.stderr)
            if m:
                next_start = lsn_to_int(m.group(1))
        return CheckpointRecord(start, end, tli, next_start, kind,
                                cd.get("Database cluster state"))

    def _checkpoint_record_from_wal(self, node):
        cd = self.controldata(node)
        start = lsn_to_int(cd["Latest checkpoint location"])
        tli = int(cd["Latest checkpoint's TimeLineID"])
        waldir = os.path.join(node.datadir, "pg_wal")
        segsz = blcksz = None
        for name in sorted(os.listdir(waldir)):
            if re.fullmatch(r"[0-9A-F]{24}", name):
                with open(os.path.join(waldir, name), "rb") as f:
                    head = f.read(40)
                if len(head) == 40:
                    # XLogLongPageHeaderData: ..., xlp_seg_size, xlp_xlog_blcksz
                    segsz, blcksz = struct.unpack_from("<II", head, 32)
                    break
        if not segsz:
            raise PgError("%s: no WAL segment in %s" % (node.name, waldir))
        per_id = 0x100000000 // segsz
        # The record's 24-byte header, skipping the page header (24 bytes, 40
        # on a segment's first page) when the record crosses a page boundary.
        head = b""
        pos = start
        while len(head) < 24:
            if pos % blcksz == 0:
                pos += 40 if pos % segsz == 0 else 24
            segno = pos // segsz
            seg = os.path.join(waldir, "%08X%08X%08X" % (tli, segno // per_id, segno % per_id))
            take = min(24 - len(head), blcksz - pos % blcksz)
            try:
                with open(seg, "rb") as f:
                    f.seek(pos % segsz)
                    chunk = f.read(take)
            except FileNotFoundError:
                raise PgError("%s: checkpoint %s: no WAL segment %s"
                              % (node.name, int_to_lsn(start), seg))
            if len(chunk) < take:
                raise PgError("%s: checkpoint %s: %s ends early" % (node.name, int_to_lsn(start), seg))
            head += chunk
            pos += take
        # XLogRecord: xl_tot_len u32, xl_xid u32, xl_prev u64, xl_info u8, xl_rmid u8
        tot, _xid, _prev, info, rmid = struct.unpack_from("<IIQBB", head, 0)
        kinds = {0x00: "CHECKPOINT_SHUTDOWN", 0x10: "CHECKPOINT_ONLINE"}
        kind = kinds.get(info & 0xF0) if rmid == 0 else None
        if kind is None or tot < 24:
            raise PgError("%s: no checkpoint record at %s (rmgr %d, info 0x%02X, length %d)"
                          % (node.name, int_to_lsn(start), rmid, info, tot))
        rec = CheckpointRecord(start, _record_end(start, tot, blcksz, segsz), tli, None, kind,
                               cd.get("Database cluster state"))
        rec.source = "wal header"
        return rec

    def history(self, node, tli=None):
        """Timeline history of a running node: [(parent_tli, switchpoint, reason)].

        Reads pg_wal/<tli>.history (default: the node's current timeline); []
        on timeline 1.
        """
        node = self.node(node)
        if tli is None:
            tli = self.timeline(node)
        if tli == 1:
            return []
        text = self.psql_value(node, "SELECT pg_read_file('pg_wal/%08X.history')" % tli)
        out = []
        for line in (text or "").splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0].strip().isdigit():
                out.append((int(parts[0]), lsn_to_int(parts[1].strip()),
                            parts[2].strip() if len(parts) > 2 else ""))
        return out

    # ---- workload -------------------------------------------------------------

    def writer(self, *nodes, table="pgfo_writer", interval=0.0):
        """Start a Writer on the first of `nodes` (default: node 0) that accepts
        writes; it moves on to the others when that one fails."""
        if not nodes:
            nodes = (0,)
        w = Writer(self, nodes, table=table, interval=interval)
        self.writers.append(w)
        return w.start()

    def dirty_buffers(self, node, size_mb, unlogged=False, parallel=2,
                      table="pgfo_dirty", wait_standbys=True, timeout=600):
        """Insert about size_mb of rows so that that many shared buffers are dirty.

        Uses INSERT ... SELECT (which, unlike COPY or CREATE TABLE AS, does not
        go through a small bulk-write ring buffer) into `parallel` fresh tables
        <table>_<i> at once. Logged by default, so the WAL also reaches the
        standbys, like a real write load; unlogged=True only dirties buffers (a
        shutdown checkpoint writes unlogged buffers too) and is ~3x faster.
        Keep size_mb below shared_buffers. With wait_standbys, wait until every
        running standby has replayed the result: a standby that lags in replay
        notices a promote request only once it has caught up, which would hide
        the race the tests want to show. Returns seconds taken.

        Measured with fsync on, 2 cores, shared_buffers 3GB: 2000 MB logged in
        10-16 s, after which a fast shutdown takes 1.3-2.4 s (its checkpoint
        1.0-2.1 s); 2000 MB unlogged in about 5.5 s, shutdown about 1.2 s.
        """
        node = self.node(node)
        rows = int(size_mb * 1024 * 1024 / 1000 / parallel)  # ~8 rows of ~1 kB per page
        t0 = time.monotonic()
        names = ["%s_%d" % (table, i) for i in range(parallel)]
        ddl = "; ".join("DROP TABLE IF EXISTS %s; CREATE %s TABLE %s (id int, pad text)"
                        " WITH (autovacuum_enabled = off)"
                        % (n, "UNLOGGED" if unlogged else "", n) for n in names)
        self.psql(node, ddl)
        procs = []
        for n in names:
            sql = ("INSERT INTO %s SELECT g, repeat(md5(g::text), 28)"
                   " FROM generate_series(1, %d) g" % (n, rows))
            procs.append(subprocess.Popen(
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", node.host,
                 "-p", str(node.port), "-U", SUPERUSER, "-d", "postgres", "-c", sql],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=_clean_env(), cwd="/"))
        errors = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                errors.append("timeout")
            if p.returncode != 0:
                errors.append(err.strip())
        if errors:
            raise PgError("dirty_buffers on %s failed: %s" % (node.name, "; ".join(errors)))
        if wait_standbys and not self.is_in_recovery(node):
            target = self.current_lsn(node)
            for other in self.nodes:
                if other is not node and self.is_running(other):
                    try:
                        if self.is_in_recovery(other):
                            self.wait_replay(other, target, timeout=timeout)
                    except PgError:
                        pass
        return time.monotonic() - t0

    def dirty_buffer_count(self, node):
        """Dirty shared buffers right now (needs the pg_buffercache extension,
        part of the postgresql-15 package); None when unavailable."""
        try:
            self.psql(node, "CREATE EXTENSION IF NOT EXISTS pg_buffercache")
            return int(self.psql_value(node, "SELECT count(*) FROM pg_buffercache"
                                             " WHERE isdirty"))
        except PgError:
            return None

    def cut_walreceiver(self, standby, timeout=20):
        """Stop `standby`'s walreceiver for good (primary_conninfo emptied
        and reloaded): it receives nothing more until it is pointed again."""
        self.psql(standby, "ALTER SYSTEM SET primary_conninfo = ''")
        self.psql(standby, "SELECT pg_reload_conf()")
        t0 = time.monotonic()
        while self.psql_value(standby, "SELECT count(*) FROM pg_stat_wal_receiver") != "0":
            if time.monotonic() - t0 > timeout:
                raise PgError("%s: walreceiver still running %ss after primary_conninfo = ''"
                              % (self.node(standby).name, timeout))
            time.sleep(0.1)

    def wait_replay(self, standby, lsn, timeout=120):
        """Wait until `standby` has replayed up to `lsn` (int); seconds waited."""
        return self._wait_lsn(standby, lsn, "pg_last_wal_replay_lsn()", timeout)

    def wait_receive(self, standby, lsn, timeout=120):
        """Wait until `standby`'s pg_last_wal_receive_lsn() >= lsn; seconds waited."""
        return self._wait_lsn(standby, lsn, "pg_last_wal_receive_lsn()", timeout)

    def _wait_lsn(self, standby, lsn, func, timeout):
        standby = self.node(standby)
        t0 = time.monotonic()
        while True:
            cur = lsn_to_int(self.psql_value(standby, "SELECT " + func))
            if cur is not None and cur >= lsn:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise PgError("%s: %s is %s, still below %s after %ss" % (
                    standby.name, func, int_to_lsn(cur), int_to_lsn(lsn), timeout))
            time.sleep(0.01)

    # ---- rejoin -----------------------------------------------------------------

    def streaming_timeline(self, node, timeout=2.0):
        """The timeline `node`'s walreceiver streams on, or None when it does
        not stream (or does not answer).

        A node that went past the fork point streams the old timeline up to
        the fork before its startup process notices, so the new primary's
        pg_stat_replication shows it 'streaming' for a moment; only the
        timeline it receives on tells a follower from a node about to fail.
        """
        try:
            with MiniConn(self.node(node).port, host=self.node(node).host, application_name="pgfo-check",
                          timeout=timeout) as conn:
                rows = conn.query("SELECT GREATEST(receive_start_tli, received_tli)"
                                  " FROM pg_stat_wal_receiver WHERE status = 'streaming'")
        except PgError:
            return None
        return int(rows[0][0]) if rows and rows[0][0] else None

    def follow(self, old_primary, new_primary, timeout=30):
        """Make a stopped `old_primary` a standby of `new_primary` and judge it.

        Writes standby.signal and primary_conninfo + recovery_target_timeline =
        'latest' into its postgresql.auto.conf, starts it, then waits until
        either it streams on the new primary's timeline (its walreceiver says
        so and the new primary's pg_stat_replication shows it streaming), or
        its log says it cannot follow (the new timeline forked off before its
        current recovery point, the timeline is not a child of its history, the
        starting point is not in the new primary's history), or it dies, or
        `timeout` passes. The node stays running (teardown stops it).
        """
        old, new = self.node(old_primary), self.node(new_primary)
        if self.is_running(old):
            raise PgError("follow(): %s is still running; stop it first" % old.name)
        new_tli = self.timeline(new)
        self.set_primary_conninfo(old, new)
        since = self.log_size(old)
        t0 = time.monotonic()
        start_err = None
        try:
            self.start_node(old, wait=False)
        except PgError as e:
            start_err = str(e)
        sql = ("SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'"
               " AND state = 'streaming'" % old.name)
        while True:
            log = self.log_text(old, since)
            refused = cannot_follow(log)
            if refused:
                return FollowVerdict(refused[0], refused[1], log, time.monotonic() - t0)
            tli = self.streaming_timeline(old)
            if tli is not None and tli >= new_tli:
                try:
                    if self.psql_value(new, sql, timeout=10) not in (None, "0"):
                        return FollowVerdict(
                            "streaming", "%s streams from %s on timeline %d" % (
                                old.name, new.name, tli),
                            self.log_text(old, since), time.monotonic() - t0)
                except PgError:
                    pass
            elapsed = time.monotonic() - t0
            if start_err or (elapsed > 2 and not self.is_running(old)):
                time.sleep(0.2)
                if cannot_follow(self.log_text(old, since)):
                    continue
                return FollowVerdict("died", start_err or "%s exited" % old.name,
                                     self.log_text(old, since), elapsed)
            if elapsed > timeout:
                return FollowVerdict("timeout", "no verdict after %ss" % timeout,
                                     log, elapsed)
            time.sleep(0.05)


def _children_of(pid):
    out = []
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        out.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
    except OSError:
        pass
    return out
