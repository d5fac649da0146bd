#!/usr/bin/env python3
"""Hostile input to the pgfailover command: pgpool arguments and configuration
values carrying shell syntax, quotes, newlines, 100 KB strings, bytes that are
not UTF-8, negative and huge numbers and option-like strings.

pgpool runs failover_command through /bin/sh without quoting, so whatever
reaches pgfailover is data: it must end in a clear error that names the
argument (exit code 2) or the configuration key (exit code 3), or be handled
as plain data. Every payload that could run a command would create a marker
file; no test may ever leave one behind.

Without servers: every pgpool argument position and every configuration key
gets every payload (nodes point at closed or test-owned ports, so a run that
gets past validation fails fast); a world-writable configuration, a
world-readable one, an unusable log_file, ssh_options with ProxyCommand /
LocalCommand. With real servers (PgCluster, port offset 800): hostile
host/directory arguments for configured nodes (the configuration wins and the
failover works) with hostile characters in data_directory, log_file and
lock_file; and the same over ssh (access = ssh through a private sshd), where
the data directory travels in a remote shell command line.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, running_as_root  # noqa: E402
from pgfo import cli_path, pgpool_args, start_cli, write_config  # noqa: E402
from sshd import Sshd, sshd_available  # noqa: E402

PORT_OFFSET = 800
ROOT = running_as_root()

# What each pgpool argument is (position -> kind), %d %h %p %D %m %H %M %P %r %R %N %S.
KINDS = ["id", "host", "port", "dir", "id", "host", "id", "id", "port", "dir", "host", "port"]
PLACEHOLDERS = ["%d", "%h", "%p", "%D", "%m", "%H", "%M", "%P", "%r", "%R", "%N", "%S"]


def payloads(marker):
    """(name, value) pairs; value is str or bytes. Every command one could run
    touches `marker`."""
    m = marker
    return [
        ("semicolon", "; touch %s" % m),
        ("dollar-paren", "$(touch %s)" % m),
        ("backticks", "`touch %s`" % m),
        ("single-quotes", "x' ; touch %s ; '" % m),
        ("double-quotes", 'x" ; touch %s ; "' % m),
        ("ifs", "x;touch${IFS}%s" % m),
        ("pipe-and", "x|touch %s&&touch %s" % (m, m)),
        ("newline", "x\ntouch %s" % m),
        ("cr", "x\rtouch %s" % m),
        ("long-100k", "$(touch %s)" % m + "A" * 100 * 1024),
        ("non-utf8", b"\xff\xfe\xc3\x28 $(touch " + os.fsencode(m) + b")"),
        ("negative", "-1"),
        ("negative-huge", "-99999999999999999999"),
        ("huge", "99999999999999999999"),
        ("hex", "0x10"),
        ("exponent", "1e3"),
        ("help", "--help"),
        ("short-help", "-h"),
        ("option", "--config=/etc/passwd"),
        ("dashdash", "--"),
        ("empty-quotes", '""'),
        ("percent", "%d%h%p"),
    ]


def as_bytes(v):
    return v if isinstance(v, bytes) else os.fsencode(v)


def run_cli(args, config, timeout=60, cwd=None):
    """Run pgfailover as this process's user (no servers involved); bytes in,
    bytes out."""
    argv = [os.fsencode(cli_path()), b"--config", os.fsencode(config)] + [as_bytes(a) for a in args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Listener:
    """A TCP port on 127.0.0.1 that accepts nothing by itself: count() says
    whether anybody connected (a run that must not touch any server)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def count(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return n
            c.close()
            n += 1

    def close(self):
        self.sock.close()


class NoServerTest(unittest.TestCase):
    """Arguments and configuration values, with no PostgreSQL server at all."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgfo-hostile-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.marker = os.path.join(self.dir, "pwned")
        self.runs = 0
        # Both nodes' ports accept connections only into this listener's
        # backlog: a run that connects is seen, and fails at once.
        self.listener = Listener()
        self.addCleanup(self.listener.close)
        self.closed_port = self._closed_port()

    def tearDown(self):
        self.assertMarkerAbsent()

    def _closed_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def assertMarkerAbsent(self):
        self.assertFalse(os.path.lexists(self.marker), "a payload ran a command: %s exists" % self.marker)

    def config(self, sections=None, name="pgfailover.conf", mode=0o600, raw=None):
        """A configuration with two local nodes on closed ports; `sections`
        {"node.0": {"host": "..."}} overrides or adds keys."""
        base = {
            "general": {"cluster_name": "hostile", "lock_file": os.path.join(self.dir, "lock"),
                        "spool_directory": os.path.join(self.dir, "spool")},
            "connection": {"connect_timeout": "1"},
            "timeouts": {"shutdown": "1", "catchup": "1", "promote": "1", "command": "2", "lock": "1"},
            "node.0": {"host": "127.0.0.1", "port": str(self.closed_port),
                       "data_directory": os.path.join(self.dir, "d0")},
            "node.1": {"host": "127.0.0.1", "port": str(self.closed_port + 1 if self.closed_port < 65535 else 1),
                       "data_directory": os.path.join(self.dir, "d1")},
        }
        for sec, kv in (sections or {}).items():
            base.setdefault(sec, {}).update(kv)
        if raw is None:
            out = b""
            for sec, kv in base.items():
                out += b"[" + sec.encode() + b"]\n"
                for k, v in kv.items():
                    out += k.encode() + b" = " + as_bytes(v) + b"\n"
        else:
            out = raw
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(out)
        os.chmod(path, mode)
        return path

    def valid_args(self):
        return ["0", "127.0.0.1", str(self.closed_port), os.path.join(self.dir, "d0"), "1", "127.0.0.1", "0",
                "0", "5432", os.path.join(self.dir, "d1"), "127.0.0.1", str(self.closed_port)]

    def cli(self, args, config, **kw):
        self.runs += 1
        rc, out, err = run_cli(args, config, cwd=self.dir, **kw)
        self.assertMarkerAbsent()
        self.assertGreaterEqual(rc, 0, "killed by signal %d:\n%s" % (-rc, err[-3000:]))
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        # A newline or carriage return in a value never starts a line of its
        # own in pgpool's log (the "newline" and "cr" payloads go on "touch").
        for line in err.splitlines():
            self.assertFalse(line.startswith("touch "), "a value split a line: %r" % line[:300])
        return rc, out, err

    # ---- pgpool arguments ------------------------------------------------

    def expected_arg_rc(self, kind, name, value, position):
        """2 when pgfailover must refuse the value at this position, None when
        it may take it as data (then it fails later, on the closed ports)."""
        b = as_bytes(value)
        if kind == "id":
            return None if b == b"-1" else 2
        if kind == "port":
            return None if b == b'""' else 2
        if kind == "host":
            return 2 if any(c < 0x20 or c == 0x7f for c in b) else None
        return None  # a data directory is data, whatever it holds

    def test_pgpool_arguments(self):
        cfg = self.config()
        refused = accepted = 0
        for position, kind in enumerate(KINDS):
            for name, value in payloads(self.marker):
                args = self.valid_args()
                args[position] = value
                with self.subTest(position=PLACEHOLDERS[position], payload=name):
                    if position == 0 and as_bytes(value).startswith(b"-") and value != "-1":
                        # Before the first argument, "-..." is an option of the
                        # failover subcommand (--help prints its help).
                        rc, out, err = self.cli(["failover"] + args, cfg)
                        self.assertIn(rc, (0, 2), err)
                        if rc == 0:
                            self.assertIn("Usage", out + err)
                        self.assertEqual(self.listener.count(), 0)
                        continue
                    want = self.expected_arg_rc(kind, name, value, position)
                    rc, out, err = self.cli(["failover"] + args, cfg)
                    if want == 2:
                        refused += 1
                        self.assertEqual(rc, 2, err[-2000:])
                        self.assertIn("argument %d (%s, " % (position + 1, PLACEHOLDERS[position]), err)
                        self.assertIn("(PGFO_ERR_USAGE, exit code 2)", err)
                        # the message shows at most a short prefix of the value
                        self.assertLess(len(err), 4000)
                    else:
                        accepted += 1
                        # taken as data: the run goes on and fails on the closed ports
                        # (or refuses a combination that makes no sense)
                        self.assertNotEqual(rc, 3, err[-2000:])
                        if rc == 0:  # only "no node" (-1) can make a run with nothing to do
                            self.assertEqual(as_bytes(value), b"-1", err[-2000:])
        # Wrong counts of arguments, and a 100 KB argument list.
        for args in ([], ["0"] * 7, self.valid_args() + ["x"], ["0"] * 200):
            rc, _out, err = self.cli(["failover"] + args, cfg)
            self.assertEqual(rc, 2, err)
            self.assertIn("expected 8 to 12 pgpool arguments", err)
        print("\npgpool arguments: %d runs, %d refused with exit code 2, %d taken as data"
              % (self.runs, refused, accepted), flush=True)

    def test_pgpool_data_directory_gets_the_configured_path_check(self):
        """%D and %R fill in a node's data directory only when they pass the
        check a configured data_directory gets; otherwise a warning names the
        placeholder and the reason, and the run goes on without it."""
        cfg = self.config({"node.0": {"data_directory": ""}, "node.1": {"data_directory": ""}})
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(re.sub(r"(?m)^data_directory = \n", "", text))
        for bad in ['/d/x"q', "/d/$(touch %s)" % self.marker, "/d/`touch %s`" % self.marker,
                    "/d/${HOME}", "/d/a\\b", "relative/dir"]:
            for position, placeholder in ((3, "%D"), (9, "%R")):
                with self.subTest(placeholder=placeholder, value=bad):
                    args = self.valid_args()
                    args[position] = bad
                    rc, _out, err = self.cli(["failover"] + args, cfg)
                    self.assertIn("ignoring pgpool's data directory (%s) " % placeholder, err)
                    # the run goes on without it, and fails on the closed ports
                    self.assertNotIn(rc, (0, 2), err[-2000:])
                    self.assertEqual(self.listener.count(), 0)

    # ---- the cluster lock --------------------------------------------------

    def standby_failure(self, cfg):
        """pgpool's failover_command for standby 1 (the primary is node 0):
        the first step takes the cluster lock, the next connects to node 0
        (a closed port)."""
        args = self.valid_args()
        args[0] = "1"
        return self.cli(["failover"] + args, cfg)

    def hold_flock(self, path):
        """Hold an exclusive flock on `path` for the rest of the test."""
        import fcntl
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_lock_file_of_another_user_is_refused_at_once(self):
        """A lock file another user created (and holds) is refused with exit
        code 9, naming the file and its owner, instead of waited on for
        [timeouts] lock and then blamed on another pgfailover run."""
        if not ROOT:
            self.skipTest("needs root to create a file owned by another user")
        import pwd
        nobody = pwd.getpwnam("nobody")
        lock = os.path.join(self.dir, "squatted.lock")
        with open(lock, "w"):
            pass
        os.chown(lock, nobody.pw_uid, nobody.pw_gid)
        os.chmod(lock, 0o666)       # anybody may open it: the squatter holds it
        self.hold_flock(lock)
        cfg = self.config({"general": {"lock_file": lock}, "timeouts": {"lock": "20"}})
        rc, _out, err = self.standby_failure(cfg)
        self.assertEqual(rc, 9, err[-2000:])
        self.assertIn("(PGFO_ERR_LOCKED, exit code 9)", err)
        self.assertIn("lock file %s is owned by nobody (uid %d)" % (lock, nobody.pw_uid), err)
        self.assertNotIn("another pgfailover run", err)

    def test_lock_file_or_directory_open_to_others_is_refused(self):
        """flock needs only an open file, so a lock file others can read (or
        a directory others can write, where they could create it first) lets
        another user hold the cluster lock: refused, exit code 9."""
        lock = os.path.join(self.dir, "readable.lock")
        with open(lock, "w"):
            pass
        os.chmod(lock, 0o644)
        cfg = self.config({"general": {"lock_file": lock}, "timeouts": {"lock": "20"}})
        rc, _out, err = self.standby_failure(cfg)
        self.assertEqual(rc, 9, err[-2000:])
        self.assertIn("lock file %s is open to other users (mode 0644" % lock, err)
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)    # like /tmp
        cfg = self.config({"general": {"lock_file": os.path.join(shared, "x.lock")}})
        rc, _out, err = self.standby_failure(cfg)
        self.assertEqual(rc, 9, err[-2000:])
        self.assertIn("lock directory %s is writable by other users (mode 1777" % shared, err)
        self.assertFalse(os.path.exists(os.path.join(shared, "x.lock")), "lock file created anyway")

    def test_default_lock_is_in_the_spool_directory(self):
        """Without lock_file the lock is <spool_directory>/<cluster_name>.lock,
        the directory created 0700 if missing. A file another user left at the
        old default, /tmp/pgfailover-<cluster_name>.lock, changes nothing."""
        name = "hostile-lock-%d" % os.getpid()
        spool = os.path.join(self.dir, "spool-for-lock")
        old_default = os.path.join(tempfile.gettempdir(), "pgfailover-%s.lock" % name)
        if ROOT:
            import pwd
            nobody = pwd.getpwnam("nobody")
            with open(old_default, "w"):
                pass
            self.addCleanup(os.unlink, old_default)
            os.chown(old_default, nobody.pw_uid, nobody.pw_gid)
            os.chmod(old_default, 0o666)
            self.hold_flock(old_default)
        cfg = self.config({"general": {"cluster_name": name, "spool_directory": spool, "lock_file": ""},
                           "timeouts": {"lock": "20"}})
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(re.sub(r"(?m)^lock_file = \n", "", text))
        rc, _out, err = self.standby_failure(cfg)
        self.assertNotEqual(rc, 9, err[-2000:])
        self.assertIn("step lock done", err)
        self.assertIn("holding %s/%s.lock" % (spool, name), err)
        self.assertEqual(os.stat(spool).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(os.path.join(spool, name + ".lock")).st_mode & 0o7777, 0o600)

    # ---- configuration values ---------------------------------------------

    KEYS = [
        ("general", "cluster_name"), ("general", "log_file"), ("general", "lock_file"),
        ("general", "spool_directory"), ("general", "pgpool_conf"), ("general", "log_level"),
        ("general", "delivery_budget"),
        ("connection", "user"), ("connection", "dbname"), ("connection", "passfile"),
        ("connection", "sslmode"), ("connection", "connect_timeout"),
        ("timeouts", "shutdown"), ("timeouts", "poll_interval"),
        ("policy", "on_unclean"), ("policy", "sync_standby_names"),
        ("node.0", "host"), ("node.0", "port"), ("node.0", "data_directory"), ("node.0", "bin_directory"),
        ("node.0", "application_name"), ("node.0", "access"),
        ("node.1", "ssh_user"), ("node.1", "ssh_port"), ("node.1", "ssh_options"),
    ]
    # Keys whose every hostile payload must be refused (exit code 3).
    ALWAYS_REFUSED = {"log_level", "delivery_budget", "sslmode", "connect_timeout", "shutdown",
                      "poll_interval", "on_unclean", "sync_standby_names", "port", "ssh_port", "access"}

    def test_configuration_values(self):
        refused = accepted = 0
        for sec, key in self.KEYS:
            for name, value in payloads(self.marker):
                with self.subTest(key="[%s] %s" % (sec, key), payload=name):
                    extra = {sec: {key: value}}
                    if sec == "node.1":
                        extra[sec]["access"] = "ssh"
                    cfg = self.config(extra)
                    rc, out, err = self.cli(["failover"] + self.valid_args(), cfg)
                    # inih: " ;" starts a comment after a value, and a value that
                    # starts with ';' is empty
                    b = as_bytes(value).split(b" ;")[0]
                    if b.startswith(b";"):
                        b = b""
                    must_refuse = ((key in self.ALWAYS_REFUSED and b) or name in ("long-100k", "newline", "cr")
                                   or (key == "host" and re.search(rb"[`$;|&<>()'\"\\ ]", b))
                                   or (key == "cluster_name" and not re.fullmatch(rb"[A-Za-z0-9_.-]{1,63}", b))
                                   or (key in ("data_directory", "bin_directory", "log_file", "lock_file",
                                               "spool_directory", "pgpool_conf", "passfile")
                                       and b and not b.startswith(b"/")))
                    if rc == 3:
                        refused += 1
                        self.assertRegex(err, r"\(PGFO_ERR_CONFIG, exit code 3\)")
                        # names the key, or the line that could not be read
                        self.assertTrue("[%s] %s" % (sec, key) in err or "line is longer than" in err
                                        or "syntax error" in err or "cannot open log_file" in err
                                        or "pgpool.conf" in err, err[-2000:])
                        self.assertLess(len(err), 4000)
                    else:
                        self.assertFalse(must_refuse, "accepted (rc %d):\n%s" % (rc, err[-2000:]))
                        accepted += 1
                        self.assertNotIn(rc, (0, 2), err[-2000:])
                    self.assertEqual(self.listener.count(), 0)
        print("\nconfiguration values: %d runs, %d refused with exit code 3, %d taken as data"
              % (self.runs, refused, accepted), flush=True)

    def test_accepted_paths_are_literal(self):
        """A log_file and lock_file with shell syntax in their names are taken
        as they are: the log file is created under its literal name."""
        log = os.path.join(self.dir, "log $(touch %s) `x`;'q'.log" % self.marker.replace("/", "_"))
        lock = os.path.join(self.dir, "lock;touch x|y&z")
        cfg = self.config({"general": {"log_file": log, "lock_file": lock}})
        rc, _out, err = self.cli(["failover"] + self.valid_args(), cfg)
        self.assertNotIn(rc, (0, 2, 3), err)
        self.assertTrue(os.path.exists(log), err)
        with open(log, errors="replace") as f:
            self.assertIn("failover_command", f.read())

    def test_ssh_options_that_run_local_commands(self):
        bad = ["-oProxyCommand=touch${IFS}%s" % self.marker,
               "-o ProxyCommand=sh${IFS}-c${IFS}touch${IFS}%s" % self.marker,
               "-oPermitLocalCommand=yes -oLocalCommand=touch${IFS}%s" % self.marker,
               "-4oproxycommand=touch${IFS}%s" % self.marker,
               "-oKnownHostsCommand=/usr/bin/touch${IFS}%s" % self.marker]
        for opt in bad:
            with self.subTest(ssh_options=opt):
                cfg = self.config({"node.1": {"access": "ssh", "ssh_options": opt,
                                              "port": str(self.listener.port)}})
                rc, _out, err = self.cli(["failover"] + self.valid_args(), cfg)
                self.assertEqual(rc, 3, err)
                self.assertIn("[node.1] ssh_options: ", err)
                self.assertIn("makes ssh run a local command", err)
                self.assertEqual(self.listener.count(), 0, "a server was contacted")

    def test_config_file_modes(self):
        cfg = self.config({"node.1": {"port": str(self.listener.port)}}, mode=0o666)
        os.chmod(cfg, 0o666)  # whatever the umask
        rc, _out, err = self.cli(["failover"] + self.valid_args(), cfg)
        self.assertEqual(rc, 3, err)
        self.assertIn("every user can write to it (mode 0666", err)
        self.assertEqual(self.listener.count(), 0, "a server was contacted")
        os.chmod(cfg, 0o644)
        rc, _out, err = self.cli(["failover", "--dry-run"] + self.valid_args(), cfg)
        self.assertNotEqual(rc, 3, err)
        self.assertIn("every user can read it (mode 0644", err)

    def test_unusable_log_file(self):
        """An unusable log_file does not stop a failover: a warning naming it on
        standard error (pgpool's log), then the run goes on to the nodes."""
        blocker = os.path.join(self.dir, "a-file")
        with open(blocker, "w") as f:
            f.write("x")
        cases = [os.path.join(blocker, "pgfailover.log")]  # a file where a directory must be
        if not ROOT:
            ro = os.path.join(self.dir, "read-only")
            os.mkdir(ro, 0o555)
            self.addCleanup(os.chmod, ro, 0o755)
            cases.append(os.path.join(ro, "pgfailover.log"))
        for log in cases:
            with self.subTest(log_file=log):
                cfg = self.config({"general": {"log_file": log},
                                   "node.0": {"port": str(self.listener.port)},
                                   "node.1": {"port": str(self.listener.port), "host": "localhost"}})
                before = self.listener.count()
                rc, _out, err = self.cli(["failover"] + self.valid_args(), cfg)
                self.assertNotEqual(rc, 3, err)
                self.assertIn("cannot open log_file %s" % log, err)
                self.assertIn("logging to standard error only", err)
                self.assertIn("step lock", err)
                self.assertGreater(self.listener.count(), before, "the run stopped at the log file")

    def test_oversized_and_binary_files(self):
        big = self.config(raw=b"[general]\n" + b"; " + b"x" * (2 << 20) + b"\n")
        rc, _out, err = self.cli(["failover"] + self.valid_args(), big)
        self.assertEqual(rc, 3, err)
        self.assertIn("larger than 1 MiB", err)
        nul = self.config(raw=b"[general]\ncluster_name = a\x00$(touch " + os.fsencode(self.marker) + b")\n")
        rc, _out, err = self.cli(["failover"] + self.valid_args(), nul)
        self.assertEqual(rc, 3, err)
        self.assertIn("NUL byte", err)


def hostile_name(marker_name):
    """A file name (no '/') with shell syntax that, run by a shell, touches
    `marker_name` in the shell's working directory. Without ` $ " \\ (refused
    in a data directory: pg_ctl start puts it in double quotes for /bin/sh) and
    without " ;" (inih's comment)."""
    return "d;touch %s;'x'|touch %s&<>* (y)" % (marker_name, marker_name)


class ServerTest(unittest.TestCase):
    """Real servers: hostile values that pgfailover must carry as data."""

    MARKER = "pgfo-hostile-pwned"

    def setUp(self):
        self.watch = {os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir()}
        try:
            import pwd
            self.watch.add(pwd.getpwnam("postgres").pw_dir)
        except KeyError:
            pass
        for d in self.watch:
            self.assertFalse(os.path.lexists(os.path.join(d, self.MARKER)), "stale marker in %s" % d)

    def tearDown(self):
        self.assertNoMarker()

    def assertNoMarker(self, extra=()):
        for d in set(self.watch) | set(extra):
            self.assertFalse(os.path.lexists(os.path.join(d, self.MARKER)),
                             "a payload ran a command: marker in %s" % d)

    def cluster(self, offset):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-hostile")
        self.addCleanup(c.teardown)
        c.start()
        self.watch.add(c.base)
        return c

    def hostile_config(self, c, access_lines=None):
        """write_config's file with node 0's data directory reached through a
        symlink whose name is shell syntax, and log_file / lock_file with such
        names too."""
        link = os.path.join(c.base, hostile_name(self.MARKER))
        os.symlink(c.node(0).datadir, link)
        path = write_config(c)
        with open(path) as f:
            lines = f.read().splitlines()
        out, node = [], None
        for line in lines:
            m = re.match(r"\[node\.(\d+)\]", line)
            if m:
                node = int(m.group(1))
            if node == 0 and line.startswith("data_directory = "):
                line = "data_directory = %s" % link
            elif line.startswith("log_file = "):
                line = "log_file = %s" % os.path.join(c.base, "log;touch %s 'q'.log" % self.MARKER)
            elif line.startswith("lock_file = "):
                line = "lock_file = %s" % os.path.join(c.base, "lock|touch %s&" % self.MARKER)
            elif line == "access = local" and access_lines:
                out += access_lines
                continue
            out.append(line)
        c.write_owner_file(path, "\n".join(out) + "\n")
        os.chmod(path, 0o600)
        return path, link

    def hostile_args(self, c, marker_path):
        args = pgpool_args(c, failed=0, new_main=1, old_primary=0)
        hostile = "$(touch %s)`touch %s`;touch %s" % ((marker_path,) * 3)
        for i in (1, 3, 5, 9, 10):   # %h %D %H %R %N
            args[i] = hostile if i not in (3, 9) else "/x/" + hostile
        return args

    def failover(self, c, cfg, marker_path):
        c.stop(0, "fast")
        run = start_cli(["failover"] + self.hostile_args(c, marker_path), cfg).wait(180)
        return run

    def test_hostile_arguments_for_configured_nodes(self):
        c = self.cluster(0)
        cfg, link = self.hostile_config(c)
        marker_path = os.path.join(c.base, self.MARKER)
        run = self.failover(c, cfg, marker_path)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict.get("promoted"), run.describe())
        self.assertEqual(run.verdict.get("old_primary_rejoin"), "clean", run.describe())
        # pgpool's hostile view was noticed and the configuration used
        self.assertIn("using the configuration", run.stderr)
        self.assertEqual(run.step("read_checkpoint")["outcome"], "succeeded", run.describe())
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        log = os.path.join(c.base, "log;touch %s 'q'.log" % self.MARKER)
        self.assertTrue(os.path.exists(log))
        self.assertNoMarker()

    def test_hostile_data_directory_over_ssh(self):
        ok, why = sshd_available()
        if not ok:
            self.skipTest(why)
        sshd = Sshd()
        self.addCleanup(sshd.stop)
        sshd.start()
        c = self.cluster(10)
        access = ["access = ssh", "ssh_user = %s" % sshd.user, "ssh_port = %d" % sshd.port,
                  "ssh_options = %s" % " ".join(sshd.ssh_options())]
        cfg, link = self.hostile_config(c, access_lines=access)
        marker_path = os.path.join(c.base, self.MARKER)
        since = sshd.log_size()
        run = self.failover(c, cfg, marker_path)
        self.assertEqual(run.rc, 0, run.describe() + "\nsshd log:\n" + sshd.log_text(since)[-3000:])
        self.assertTrue(run.verdict.get("promoted"), run.describe())
        self.assertEqual(run.verdict.get("old_primary_rejoin"), "clean", run.describe())
        self.assertEqual(run.step("read_checkpoint")["outcome"], "succeeded", run.describe())
        self.assertGreater(sshd.sessions(since), 0, "ssh was not used")
        self.assertNoMarker(extra=[sshd.dir] if hasattr(sshd, "dir") else [])

    def test_pgpool_data_directory_with_shell_syntax_never_reaches_pg_ctl(self):
        """A node the configuration knows without a data directory takes
        pgpool's %D; pg_ctl start hands that to /bin/sh in double quotes,
        where $(...) and backticks still run. Such a %D gets the same check as
        a configured data_directory: ignored with a warning, the run stops
        (exit 3) before any program sees it."""
        c = self.cluster(20)
        cfg = write_config(c)
        c.stop(0, "fast")
        run = start_cli(["failover"] + pgpool_args(c, failed=0, new_main=1, old_primary=0), cfg).wait(180)
        self.assertEqual(run.rc, 0, run.describe())
        # follow-primary with node 0's data directory from pgpool only, through
        # a symlink whose name runs commands in a shell
        link = os.path.join(c.base, "d$(touch %s)`touch %s`" % (self.MARKER, self.MARKER))
        os.symlink(c.node(0).datadir, link)
        with open(cfg) as f:
            text = f.read()
        text = text.replace("data_directory = %s\n" % c.node(0).datadir, "", 1)
        self.assertNotIn(c.node(0).datadir + "\n", text)
        no_dir = os.path.join(c.base, "no-dir.conf")
        c.write_owner_file(no_dir, text)
        os.chmod(no_dir, 0o600)
        args = pgpool_args(c, 0, 1, 0)
        args[3] = link
        fol = start_cli(["follow-primary"] + args, no_dir).wait(180)
        self.assertNoMarker()
        self.assertEqual(fol.rc, 3, fol.describe())
        self.assertIn("ignoring pgpool's data directory (%D)", fol.stderr)
        self.assertIn("pg_ctl passes this path through a shell", fol.stderr)
        self.assertIn("data_directory is not set", fol.stderr)
        self.assertFalse(c.is_running(0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
