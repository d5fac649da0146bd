#!/usr/bin/env python3
"""A private OpenSSH server on a loopback port, run as the current (unprivileged) user.

For tests of pgfailover's remote path (access = ssh): the server has its own host
key, accepts exactly one freshly generated client key, logs verbosely to a file
and listens on 127.0.0.1 only. Typical use in a unittest.TestCase:

    from sshd import Sshd, sshd_available

    s = Sshd()                        # picks a free port from 27000 up
    self.addCleanup(s.stop)
    s.start()
    s.ssh_options()                   # client options for pgfailover.conf's ssh_options
    s.ssh(["echo", "hi"])             # run a command through it (CompletedProcess)
    s.log_text()                      # sshd's log: "Accepted publickey for ...", ...
    s.make_unauthorized_key()         # a key the server does not accept
    ssh_config(cluster, s)            # a pgfailover.conf reaching every node through it

A non-root sshd can only log in the user it runs as (no privilege separation,
no setuid): ssh_user must be the current user. Clients never read the user's
~/.ssh or /etc/ssh/ssh_config: ssh_options() is `-F <a client config written
here>` with IdentitiesOnly and a known_hosts file that pins the host key.

Environment:
    PGFO_SSHD             the sshd binary (default /usr/sbin/sshd)
    PGFO_SSH_PORT_BASE    first port tried (default 27000)
    PGFO_KEEP_CLUSTERS=1  keep the temporary directory after stop()
    PGFO_TEST_TMPDIR      parent of the temporary directory (default: system temp)
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import logfile

from pgcluster import HOST, PgError, release_ports, reserve_ports

SSHD = os.environ.get("PGFO_SSHD", "/usr/sbin/sshd")
SSH_PORT_BASE = int(os.environ.get("PGFO_SSH_PORT_BASE", "27000"))


def sshd_available():
    """(True, '') or (False, why) - for unittest skips."""
    if not os.access(SSHD, os.X_OK):
        return False, "%s not installed (Debian package openssh-server)" % SSHD
    for prog in ("ssh", "ssh-keygen"):
        if shutil.which(prog) is None:
            return False, "%s not found on PATH (Debian package openssh-client)" % prog
    return True, ""


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def reserve_ssh_ports(count=1):
    """Free loopback ports from PGFO_SSH_PORT_BASE up (shared bookkeeping with
    pgcluster's reserve_ports, so the two never hand out the same port)."""
    from pgcluster import port_base
    return reserve_ports(count, offset=SSH_PORT_BASE - port_base())


def _keygen(path, comment):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=30)


class Sshd:
    """sshd -D -e -f <own config> on 127.0.0.1:<port>."""

    def __init__(self, port=None, label="pgfo-sshd", host=HOST, user=None, prefix=(), aliases=()):
        """host: the address it listens on; user: the user it runs as and
        logs in (default: the current one; another needs root, and `prefix`
        to switch to it, e.g. runuser); prefix: the command prefix it starts
        with (e.g. ip netns exec NS runuser -u postgres --); aliases: more
        host names its key is pinned for in known_hosts (a proxy in front)."""
        self.port = port
        self._own_port = port is None
        self.label = label
        self.host = host
        self.prefix = list(prefix)
        self.aliases = list(aliases)
        self.dir = None
        self.proc = None
        self.user = user or current_user()
        self.logfile = None
        self._log = None

    # ---- paths --------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def client_key(self):
        return self.path("client_key")

    @property
    def known_hosts(self):
        return self.path("known_hosts")

    # ---- lifecycle ------------------------------------------------------------
    def start(self, timeout=15):
        ok, why = sshd_available()
        if not ok:
            raise PgError(why)
        parent = os.environ.get("PGFO_TEST_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix="%s-" % self.label, dir=parent)
        os.chmod(self.dir, 0o700)
        if self.port is None:
            self.port = reserve_ssh_ports(1)[0]
        _keygen(self.path("host_key"), "pgfo-test-host")
        _keygen(self.client_key, "pgfo-test-client")
        shutil.copyfile(self.client_key + ".pub", self.path("authorized_keys"))
        os.chmod(self.path("authorized_keys"), 0o600)
        with open(self.path("host_key.pub")) as f:
            host_pub = " ".join(f.read().split()[:2])
        with open(self.known_hosts, "w") as f:
            f.write("[%s]:%d %s\n" % (self.host, self.port, host_pub))
            for a in self.aliases:
                f.write("%s %s\n" % (a, host_pub))
        conf = [
            "Port %d" % self.port,
            "ListenAddress %s" % self.host,
            "HostKey %s" % self.path("host_key"),
            "PidFile %s" % self.path("sshd.pid"),
            "AuthorizedKeysFile %s" % self.path("authorized_keys"),
            "AllowUsers %s" % self.user,
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PrintMotd no",
            "MaxStartups 100:30:200",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
        ]
        with open(self.path("sshd_config"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.logfile = self.path("sshd.log")
        self._log = open(self.logfile, "ab")
        if self.user != current_user():
            pw = pwd.getpwnam(self.user)
            for name in [""] + os.listdir(self.dir):
                os.chown(os.path.join(self.dir, name), pw.pw_uid, pw.pw_gid)
        # -t first: a bad config is an error message, not a silent exit.
        t = subprocess.run(self.prefix + [SSHD, "-t", "-f", self.path("sshd_config")], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=30)
        if t.returncode != 0:
            raise PgError("sshd -t failed: %s%s" % (t.stdout, t.stderr))
        self.proc = subprocess.Popen(self.prefix + [SSHD, "-D", "-e", "-f", self.path("sshd_config")],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        t0 = time.monotonic()
        while "Server listening on" not in self.log_text():
            if self.proc.poll() is not None:
                raise PgError("sshd exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
            if time.monotonic() - t0 > timeout:
                raise PgError("sshd not listening after %ss:\n%s" % (timeout, self.log_text()))
            time.sleep(0.02)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_port and self.port is not None:
            release_ports([self.port])
        if self.dir:
            if os.environ.get("PGFO_KEEP_CLUSTERS") == "1":
                print("sshd: kept %s" % self.dir, flush=True)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- clients ----------------------------------------------------------------
    def client_config(self, key=None):
        """An ssh client configuration file that uses only this directory: no
        ~/.ssh, no /etc/ssh/ssh_config, the host key pinned in our known_hosts,
        `key` (default: the authorized client key) as the only identity."""
        key = key or self.client_key
        path = key + ".ssh_config"
        with open(path, "w") as f:
            f.write("Host *\n"
                    "  IdentityFile %s\n"
                    "  IdentitiesOnly yes\n"
                    "  IdentityAgent none\n"
                    "  StrictHostKeyChecking yes\n"
                    "  UserKnownHostsFile %s\n"
                    "  GlobalKnownHostsFile /dev/null\n"
                    "  PasswordAuthentication no\n"
                    "  KbdInteractiveAuthentication no\n" % (key, self.known_hosts))
        return path

    def ssh_options(self, key=None):
        """Client options (a list) for pgfailover.conf's ssh_options: -F with
        client_config(key). Short, as a configuration line has to be."""
        return ["-F", self.client_config(key)]

    def ssh(self, remote_argv, key=None, timeout=30):
        """Run a command (a shell string made of `remote_argv` words) through this sshd."""
        argv = ["ssh", "-o", "BatchMode=yes", "-p", str(self.port)] + self.ssh_options(key) + [
            "%s@%s" % (self.user, self.host), "--"] + list(remote_argv)
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)

    def make_unauthorized_key(self, name="other_key"):
        """A fresh key pair that is not in authorized_keys; returns the private key path."""
        p = self.path(name)
        if not os.path.exists(p):
            _keygen(p, "pgfo-test-unauthorized")
        return p

    # ---- log ----------------------------------------------------------------------
    def log_text(self, since=0):
        """sshd's log from byte offset `since`."""
        return logfile.read_from(self.logfile, since)

    def log_size(self):
        return logfile.size(self.logfile)

    def sessions(self, since=0):
        """Number of accepted public-key logins in the log after byte offset `since`."""
        return self.log_text(since).count("Accepted publickey for %s " % self.user)


class SshdPerClass:
    """unittest.TestCase mixin: one private sshd (cls.sshd) for the whole class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sshd = Sshd()
        try:
            cls.sshd.start()
        except BaseException:
            cls.sshd.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()
        super().tearDownClass()
