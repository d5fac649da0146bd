"""Running the pgfailover command against a PgCluster, as pgpool would.

    cfg = write_config(cluster, on_unclean="abort")
    run = failover_hook(cluster, cfg, failed=0, new_main=1, old_primary=0)
    run.rc, run.report["verdict"], run.stderr, run.elapsed

The binary comes from $PGFO_CLI (set by ctest), else build/cli/pgfailover.
"""

import json
import os
import re
import signal
import subprocess
import time

from pgcluster import owner_prefix, PG_BINDIR

HERE = os.path.dirname(os.path.abspath(__file__))


def cli_path():
    p = os.environ.get("PGFO_CLI")
    if p:
        return p
    return os.path.join(HERE, "..", "..", "build", "cli", "pgfailover")


def write_config(cluster, name="pgfailover.conf", on_unclean="promote", on_running="stop",
                 sync="adapt", shutdown=60, catchup=20, promote=60, extra=""):
    """A pgfailover.conf for every node of `cluster` (access = local)."""
    lines = [
        "[general]",
        "cluster_name = it%d" % cluster.ports[0],
        "lock_file = %s" % os.path.join(cluster.base, "pgfailover.lock"),
        "log_level = debug",
        "log_file = %s" % os.path.join(cluster.base, "pgfailover.log"),
        "[connection]",
        "user = postgres",
        "dbname = postgres",
        "connect_timeout = 2",
        "[timeouts]",
        "shutdown = %s" % shutdown,
        "catchup = %s" % catchup,
        "promote = %s" % promote,
        "command = 30",
        "lock = 10",
        "poll_interval = 0.02",
        "[policy]",
        "on_unclean = %s" % on_unclean,
        "on_running = %s" % on_running,
        "sync_standby_names = %s" % sync,
    ]
    for n in cluster.nodes:
        lines += [
            "[node.%d]" % n.id,
            "host = %s" % n.host,
            "port = %d" % n.port,
            "data_directory = %s" % n.datadir,
            "bin_directory = %s" % getattr(cluster, "bindir", PG_BINDIR),
            "application_name = %s" % n.name,
            "access = local",
        ]
    text = "\n".join(lines) + "\n" + extra
    path = os.path.join(cluster.base, name)
    cluster._write_owner_file(path, text)
    os.chmod(path, 0o600)
    return path


def ssh_config(cluster, sshd, name="pgfailover-ssh.conf", node_overrides=None, nodes=None, **kw):
    """write_config's file with every node (or the ids in `nodes`) switched to
    access = ssh.

    sshd: an Sshd for every node, or {node_id: Sshd}.
    node_overrides: {node_id: {"ssh_port": 1234, "key": "/path", "host": "10.0.0.2",
    "port": 5433}} for a node reached otherwise (a failing ssh, a proxy in front).
    """
    path = write_config(cluster, name=name, **kw)
    node_overrides = node_overrides or {}
    with open(path) as f:
        text = f.read()
    out, node = [], None
    for line in text.splitlines():
        m = re.match(r"\[node\.(\d+)\]", line)
        if m:
            node = int(m.group(1))
        o = node_overrides.get(node, {})
        key = line.split("=", 1)[0].strip()
        if key in ("host", "port") and key in o:
            out.append("%s = %s" % (key, o[key]))
            continue
        if line.strip() == "access = local" and (nodes is None or node in nodes):
            s = sshd[node] if isinstance(sshd, dict) else sshd
            out += [
                "access = ssh",
                "ssh_user = %s" % s.user,
                "ssh_port = %d" % o.get("ssh_port", s.port),
                "ssh_options = %s" % " ".join(s.ssh_options(o.get("key"))),
            ]
            continue
        out.append(line)
    cluster.write_owner_file(path, "\n".join(out) + "\n")
    os.chmod(path, 0o600)
    return path


def add_settings(cluster, path, section, *lines):
    """Add `lines` at the top of [section] of the config file at `path`
    (one write_config made); returns path."""
    with open(path) as f:
        text = f.read()
    head = "[%s]\n" % section
    if head not in text:
        raise ValueError("%s has no [%s] section" % (path, section))
    cluster._write_owner_file(path, text.replace(head, head + "".join(l + "\n" for l in lines), 1))
    return path


def pgpool_args(cluster, failed, new_main, old_primary, old_main=None):
    """failover_command's arguments, in pgpool's order:
    %d %h %p %D %m %H %M %P %r %R %N %S."""
    f = cluster.node(failed)
    args = [str(f.id), f.host, str(f.port), f.datadir]
    if new_main is None or new_main < 0:
        args += ["-1", "", "0" if old_main is None else str(old_main)]
    else:
        m = cluster.node(new_main)
        args += [str(m.id), m.host, str(old_main if old_main is not None else old_primary)]
    args += [str(old_primary)]
    if new_main is None or new_main < 0:
        args += ["", ""]
    else:
        args += [str(m.port), m.datadir]
    p = cluster.node(old_primary) if old_primary >= 0 else None
    args += [p.host if p else "", str(p.port) if p else ""]
    return args


class HookRun:
    def __init__(self, argv, proc, started):
        self.argv = argv
        self.proc = proc
        self.started = started
        self.rc = None
        self.stdout = ""
        self.stderr = ""
        self.report = {}
        self.elapsed = None

    def wait(self, timeout=180):
        out, err = self.proc.communicate(timeout=timeout)
        self.elapsed = time.monotonic() - self.started
        self.rc = self.proc.returncode
        self.stdout, self.stderr = out, err
        try:
            self.report = json.loads(out) if out.strip() else {}
        except ValueError:
            self.report = {}
        return self

    @property
    def verdict(self):
        return self.report.get("verdict", {})

    def step(self, name):
        for s in self.report.get("steps", []):
            if s.get("name") == name:
                return s
        return None

    def describe(self):
        return "rc=%s elapsed=%.2fs\nstdout: %s\nstderr:\n%s" % (
            self.rc, self.elapsed or -1, self.stdout, self.stderr)


def start_cli(args, config=None, json_report=True, env=None):
    """Start pgfailover with `args` (after the global options); returns a HookRun.
    `env`: variables added to its environment (e.g. TMPDIR)."""
    argv = list(owner_prefix()) + [cli_path()]
    if config:
        argv += ["--config", config]
    if json_report:
        argv += ["--json"]
    argv += list(args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
    return HookRun(argv, proc, time.monotonic())


def failover_hook(cluster, config, failed, new_main, old_primary, dry_run=False, wait=True,
                  timeout=180, env=None):
    """Run `pgfailover failover <pgpool args>`; waits unless wait=False."""
    args = ["failover"] + (["--dry-run"] if dry_run else []) + pgpool_args(
        cluster, failed, new_main, old_primary)
    run = start_cli(args, config, env=env)
    return run.wait(timeout) if wait else run


class RoleAsserts:
    """unittest.TestCase mixin: assert a node's role, from pg_is_in_recovery()."""

    def assertPrimary(self, c, node):
        self.assertEqual(c.psql_value(node, "SELECT pg_is_in_recovery()"), "f",
                         "%s is not a primary" % c.node(node).name)

    def assertStandby(self, c, node):
        self.assertEqual(c.psql_value(node, "SELECT pg_is_in_recovery()"), "t",
                         "%s is not a standby" % c.node(node).name)


def read_reports(path):
    """The JSON reports appended to `path` (one per run, as pgpool's hook lines
    with `>> path` leave them); a report still being written is left out."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    dec, out, pos = json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        try:
            obj, pos = dec.raw_decode(text, pos)
        except ValueError:
            return out
        out.append(obj)


def freeze_postmaster(testcase, cluster, node):
    """SIGSTOP the node's postmaster: it neither answers nor exits (a failover
    waits on its shutdown). Returns thaw(), also registered as a cleanup."""
    pid = cluster.node(node).postmaster_pid()
    os.kill(pid, signal.SIGSTOP)

    def thaw():
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    testcase.addCleanup(thaw)
    return thaw
