#!/usr/bin/env python3
"""bench/peers: a planned switchover with pgfailover, Patroni and repmgr,
side by side on the same machine.

Every run: a fresh two-node cluster of one tool (a primary and one
synchronous standby, PostgreSQL 15, 127.0.0.1), the same writer (one INSERT
per connection, each to whichever node accepts writes at that moment: it
tries node 0, then node 1, as a client with target_session_attrs =
read-write), then the tool's own switchover command, timed from its start:

  pgfailover  `pgfailover switchover --to 1` (PGFO_CLI), access = local;
              synchronous_standby_names = ANY 1 (node0, node1) restored after
              the switch
  patroni     `patronictl switchover --leader node0 --candidate node1 --force`
              against two Patroni daemons and a one-member etcd (started once
              for the whole benchmark): ttl 20, loop_wait 1, retry_timeout 3
              (the smallest values Patroni documents), synchronous_mode on,
              use_pg_rewind on
  repmgr      `repmgr standby switchover` run on node 1, reaching node 0
              through a real sshd on 127.0.0.1 (tests/support/sshd.py, started
              once for the whole benchmark; its key and client configuration
              in its temporary directory); repmgr does not manage
              synchronous_standby_names, so both nodes have
              ANY 1 (node0, node1): the new primary's commits wait until the
              old one streams from it again

Two variants: `light` (the writer only) and `heavy` (pgbench -c 4 writing to
the primary, and DIRTY_MB of freshly written rows right before the command,
so many dirty shared buffers at the switch). Tools are interleaved run by
run (pgfailover, patroni, repmgr, pgfailover, ...), so drift in the
machine's state hits them alike.

Measured per run: the write gap (the writer's last acknowledged insert on
the old primary to its first on the new one), the command's start to that
first write, the command's run time, when the new primary's
pg_stat_replication first shows the old primary streaming (from the command's
start), whether the old primary rejoined cleanly (its walreceiver streams the
new timeline, no pg_rewind), rewinds (pg_rewind run, or the old primary
refused the new timeline) and acknowledged rows missing on the new primary.
Speed is given as ratios of medians within the run, never as a pass/fail
timing; the targets: pgfailover's median write gap at most 1/4 of Patroni's
and at most 1/6 of repmgr's in both variants, 0 rewinds, 0 rows lost.

Needs patroni and etcd (Debian: patroni, etcd-server), repmgr
(postgresql-15-repmgr) and sshd (openssh-server); a tool whose programs are
missing is left out with the reason (--tools picks them). Run it as an
unprivileged user (PostgreSQL, Patroni and sshd run as that user).

    bench/peers.py [--runs 3] [--variants light,heavy]
                   [--tools pgfailover,patroni,repmgr] [--offset 460]
                   [--aux-port-base PORT] [--markdown FILE]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import logfile  # noqa: E402
from benchlib import QueryWatch, StreamWatch, ratio, rejoin_verdict, summary  # noqa: E402
from pgcluster import HOST, SUPERUSER, PgCluster, PgError, Writer, port_base, release_ports, reserve_ports  # noqa: E402
from pgfo import cli_path, start_cli, write_config  # noqa: E402
from sshd import Sshd, sshd_available  # noqa: E402
from switchover import DIRTY_MB, SYNC_TARGET, machine, pgbench  # noqa: E402

TOOLS = ("pgfailover", "patroni", "repmgr")
PATRONI_DCS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3,
               "maximum_lag_on_failover": 1048576, "synchronous_mode": True}
REPMGR_BIN = "/usr/lib/postgresql/15/bin/repmgr"


def available(tool):
    """'' when the tool's programs are here, else why not (one line)."""
    need = {"pgfailover": [],
            "patroni": ["patroni", "patronictl", "etcd"],
            "repmgr": []}[tool]
    missing = [p for p in need if shutil.which(p) is None]
    if missing:
        return "%s not found (Debian packages patroni, etcd-server)" % ", ".join(missing)
    if tool == "pgfailover" and not os.access(cli_path(), os.X_OK):
        return "no pgfailover at %s (set PGFO_CLI)" % cli_path()
    if tool == "repmgr":
        if not os.access(REPMGR_BIN, os.X_OK):
            return "%s not found (Debian package postgresql-15-repmgr)" % REPMGR_BIN
        ok, why = sshd_available()
        if not ok:
            return why
    return ""


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return "?"
    return out.splitlines()[0].strip() if out else "?"


def clean_env():
    """Our environment without PG* and PATRONI_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PATRONI_"))}


def aux_ports(count, base):
    """Free loopback ports from `base` up (etcd, Patroni's REST API)."""
    return reserve_ports(count, offset=base - port_base())


def http_status(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_for(what, cond, timeout, log=None):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            tail = ""
            if log and os.path.exists(log):
                with open(log, errors="replace") as f:
                    tail = ":\n" + "".join(f.readlines()[-20:])
            raise PgError("%s: not after %ss%s" % (what, timeout, tail))
        time.sleep(0.1)


# ---- etcd ---------------------------------------------------------------------

class Etcd:
    """A one-member etcd on 127.0.0.1, data in `base`/etcd."""

    def __init__(self, base, port_base_):
        self.base = base
        self.ports = aux_ports(2, port_base_)
        self.url = "http://%s:%d" % (HOST, self.ports[0])
        self.proc = None
        self.log = os.path.join(base, "etcd.log")

    def start(self):
        peer = "http://%s:%d" % (HOST, self.ports[1])
        argv = ["etcd", "--name", "bench", "--data-dir", os.path.join(self.base, "etcd"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "bench=" + peer, "--initial-cluster-state", "new"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.base, env=clean_env())
        wait_for("etcd healthy", lambda: http_status(self.url + "/health") == 200, 30, self.log)
        return self

    def stop(self):
        stop_proc(self.proc)
        release_ports(self.ports)


def stop_proc(p, timeout=30):
    if p is not None and p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


class TornDownOnFailure:
    """A PgCluster whose start() (the subclass's _start()) cleans up after
    itself when it fails: the daemons and directories it made are gone."""

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.teardown()
            raise


# ---- Patroni --------------------------------------------------------------------

def unquoted(value):
    """A postgresql.conf value as Patroni takes it (no surrounding quotes)."""
    v = str(value)
    return v[1:-1].replace("''", "'") if len(v) >= 2 and v[0] == v[-1] == "'" else v


class PatroniCluster(TornDownOnFailure, PgCluster):
    """Two Patroni daemons (node0 bootstraps, node1 is its replica), their
    PostgreSQL data directories where PgCluster keeps them, so that its
    methods (psql, timeline, logs) work on them. Patroni runs initdb and
    pg_basebackup itself; the settings are PgCluster's, except those Patroni
    manages (synchronous_standby_names, listen_addresses)."""

    def __init__(self, etcd, rest_base, scope, port_offset):
        super().__init__(standbys=1, sync_names="", port_offset=port_offset, label="pgfo-bench-patroni")
        self.etcd, self.rest_base, self.scope = etcd, rest_base, scope
        self.rest = []
        self.daemons = []

    def config_path(self, node):
        return os.path.join(self.base, "patroni-%s.yml" % self.node(node).name)

    def patroni_log(self, node):
        return os.path.join(self.base, "patroni-%s.log" % self.node(node).name)

    def api(self, node, path):
        return "http://%s:%d%s" % (HOST, self.rest[self.node(node).id], path)

    def _start(self):
        self._make_base()
        self.ports = reserve_ports(2, self.port_offset)
        self.rest = aux_ports(2, self.rest_base)
        self.nodes = [self.new_node(i, p) for i, p in enumerate(self.ports)]
        dynamic = {k: unquoted(v) for k, v in self.common_settings().items()
                   if k not in ("listen_addresses", "synchronous_standby_names", "unix_socket_directories",
                                "logging_collector")}
        for n in self.nodes:
            local = {"unix_socket_directories": self.base, "logging_collector": "on",
                     "log_directory": self.base, "log_filename": n.name + ".log",
                     "log_rotation_age": "0", "log_rotation_size": "0"}
            cfg = {
                "scope": self.scope, "namespace": "/pgfo-bench/", "name": n.name,
                "restapi": {"listen": "%s:%d" % (HOST, self.rest[n.id]),
                            "connect_address": "%s:%d" % (HOST, self.rest[n.id])},
                "etcd3": {"hosts": ["%s:%d" % (HOST, self.etcd.ports[0])]},
                "bootstrap": {
                    "dcs": dict(PATRONI_DCS, postgresql={"use_pg_rewind": True, "parameters": dynamic}),
                    "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth": "trust"}],
                    "pg_hba": ["local all all trust", "local replication all trust",
                               "host all all 127.0.0.1/32 trust",
                               "host replication all 127.0.0.1/32 trust"]},
                "postgresql": {
                    "listen": "%s:%d" % (HOST, n.port), "connect_address": "%s:%d" % (HOST, n.port),
                    "data_dir": n.datadir, "bin_dir": self.bindir,
                    "pgpass": os.path.join(self.base, "pgpass-" + n.name),
                    "authentication": {"superuser": {"username": SUPERUSER},
                                       "replication": {"username": SUPERUSER}},
                    "basebackup": [{"checkpoint": "fast"}],
                    "parameters": local},
            }
            with open(self.config_path(n), "w") as f:
                json.dump(cfg, f, indent=1)     # YAML is a superset of JSON
        self._start_daemon(0)
        wait_for("patroni node0 primary", lambda: http_status(self.api(0, "/primary")) == 200, 120,
                 self.patroni_log(0))
        self._start_daemon(1)
        wait_for("patroni node1 synchronous standby", lambda: http_status(self.api(1, "/sync")) == 200, 180,
                 self.patroni_log(1))
        wait_for("node1 synchronous in pg_stat_replication", lambda: self.psql_value(
            0, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'node1'"
               " AND state = 'streaming' AND sync_state = 'sync'") == "1", 60)
        return self

    def _start_daemon(self, node):
        with open(self.patroni_log(node), "ab") as log:
            self.daemons.append(subprocess.Popen(["patroni", self.config_path(node)], stdout=log,
                                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                 cwd=self.base, env=clean_env()))

    def teardown(self):
        for p in self.daemons:
            if p.poll() is None:
                p.terminate()       # Patroni stops its PostgreSQL
        for p in self.daemons:
            stop_proc(p)
        release_ports(self.rest)
        super().teardown()


def switch_patroni(c, ctx):
    since = logfile.size(c.patroni_log(0))
    run = subprocess.run(["patronictl", "-c", c.config_path(0), "switchover", "--leader", "node0",
                          "--candidate", "node1", "--force"], capture_output=True, text=True,
                         timeout=180, env=clean_env(), cwd=c.base)
    if run.returncode != 0 or "Successfully switched over" not in run.stdout:
        raise RuntimeError("patronictl switchover rc %d: %s" % (run.returncode, (run.stdout + run.stderr)[-300:]))
    return lambda: "running pg_rewind" in logfile.read_from(c.patroni_log(0), since)


# ---- repmgr ---------------------------------------------------------------------

class RepmgrCluster(TornDownOnFailure, PgCluster):
    """A PgCluster registered with repmgr (primary register, standby
    register), one repmgr.conf per node in its base directory; repmgr
    reaches node 0 over ssh through `sshd` (as the current user)."""

    def __init__(self, sshd, port_offset):
        super().__init__(standbys=1, sync_names=SYNC_TARGET, port_offset=port_offset,
                         label="pgfo-bench-repmgr",
                         extra_conf={"shared_preload_libraries": "'repmgr'"})
        self.sshd = sshd

    def conf(self, node):
        return os.path.join(self.base, "repmgr-%s.conf" % self.node(node).name)

    def _start(self):
        PgCluster.start(self)      # not TornDownOnFailure.start: that calls _start()
        ssh_options = "-q -o ConnectTimeout=10 -p %d %s" % (self.sshd.port, " ".join(self.sshd.ssh_options()))
        for n in self.nodes:
            settings = {
                "node_id": n.id + 1, "node_name": "'%s'" % n.name,
                "conninfo": "'host=%s port=%d user=%s dbname=postgres connect_timeout=2'" % (
                    n.host, n.port, SUPERUSER),
                "replication_user": "'%s'" % SUPERUSER,
                "data_directory": "'%s'" % n.datadir,
                "pg_bindir": "'%s'" % self.bindir, "repmgr_bindir": "'%s'" % os.path.dirname(REPMGR_BIN),
                "ssh_options": "'%s'" % ssh_options,
                "pg_ctl_options": "'-l %s'" % n.logfile,
                "use_replication_slots": "no",
                "log_level": "'INFO'",
            }
            with open(self.conf(n), "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in settings.items()))
        self.repmgr(0, "primary", "register")
        self.wait_replay(1, self.current_lsn(0))    # the repmgr schema, which standby register reads
        self.repmgr(1, "standby", "register", "--wait-sync=30")
        return self

    def repmgr(self, node, *args, timeout=120):
        run = subprocess.run([REPMGR_BIN, "-f", self.conf(node)] + list(args), capture_output=True,
                             text=True, timeout=timeout, env=clean_env(), cwd=self.base)
        if run.returncode != 0:
            raise PgError("repmgr %s rc %d: %s" % (" ".join(args), run.returncode,
                                                   (run.stdout + run.stderr)[-3000:]))
        return run


def switch_repmgr(c, ctx):
    run = c.repmgr(1, "standby", "switchover", timeout=300)
    said = run.stdout + run.stderr
    return lambda: "pg_rewind" in said


# ---- pgfailover ---------------------------------------------------------------------

def switch_pgfailover(c, ctx):
    run = start_cli(["switchover", "--to", "1"], c.pgfo_config).wait(300)
    if run.rc != 0:
        raise RuntimeError("switchover rc %s: %s" % (run.rc, run.report.get("message", run.stderr[-300:])))
    return lambda: run.verdict.get("old_primary_rejoin") != "clean"


def make_cluster(tool, ctx):
    if tool == "patroni":
        ctx["scopes"] += 1
        return PatroniCluster(ctx["etcd"], ctx["rest_base"], "bench%d" % ctx["scopes"], ctx["offset"])
    if tool == "repmgr":
        return RepmgrCluster(ctx["sshd"], ctx["offset"])
    return PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=ctx["offset"], label="pgfo-bench")


SWITCH = {"pgfailover": switch_pgfailover, "patroni": switch_patroni, "repmgr": switch_repmgr}


def one_run(tool, variant, ctx):
    r = {"gap": None, "first_new": None, "command": None, "promoted": None, "rejoin": None, "clean": False,
         "rewind": None, "lost": 0, "error": None, "said": None}
    try:
        c = make_cluster(tool, ctx).start()
    except Exception as e:  # noqa: BLE001 - a peer that does not start is a failed run, reported
        r["error"] = "setup: " + benchlib.error_text(e)
        return r
    try:
        if tool == "pgfailover":
            c.pgfo_config = write_config(c, extra="[replication]\nsynchronous_standby_names = %s\n" % SYNC_TARGET)
        load = None
        if variant == "heavy":
            pgbench(c, ["-i", "-q", "-s", "10"]).wait(300)
            load = pgbench(c, ["-c", "4", "-j", "2", "-T", "600", "-n"])
        w = Writer(c, [0, 1], retry_interval=0.005, fresh_connection=True)
        c.writers.append(w)
        w.start()
        watch = StreamWatch(c.node(1).port, c.node(0).name)
        promoted = QueryWatch(c.node(1).port, "SELECT 1 WHERE NOT pg_is_in_recovery()")
        try:
            time.sleep(2.0)
            if variant == "heavy":
                c.dirty_buffers(0, DIRTY_MB)
            since = c.log_size(0)
            t0 = time.monotonic()
            watch.start()
            promoted.start()
            rewound = SWITCH[tool](c, ctx)
            r["command"] = time.monotonic() - t0
            r["gap"], r["first_new"] = benchlib.switch_gap(w, t0, timeout=60)
            # Patroni restarts the old primary as a replica after the command returned
            state = rejoin_verdict(c, 0, c.timeline(1), since, timeout=90, grace=20)
            if state == "streaming" and watch.seen is None:
                watch.join(5)
            r["rejoin"] = watch.seen - t0 if watch.seen is not None else None
            r["promoted"] = promoted.seen - t0 if promoted.seen is not None else None
            r["rewind"] = rewound() or state in ("forked", "not_a_child", "not_in_history")
            r["clean"] = state == "streaming" and not r["rewind"]
            r["said"] = state
        except Exception as e:  # noqa: BLE001 - one bad run must not lose the others
            r["error"] = benchlib.error_text(e)
        finally:
            watch.stop()
            promoted.stop()
        benchlib.end_run(r, (load,), w, 1)
        if r["error"]:
            print_logs(c.base)
    finally:
        c.teardown()
    return r


def print_logs(base, lines=40):
    """The end of every log in a failed run's directory (on stdout, not in the report)."""
    for name in sorted(os.listdir(base)):
        if name.endswith(".log"):
            tail = logfile.read_from(os.path.join(base, name)).splitlines()[-lines:]
            print("---- %s (last %d lines)\n%s" % (name, len(tail), "\n".join(tail)), flush=True)


def report(results, variants, tools):
    rows, targets = [], []
    want = {"patroni": 4, "repmgr": 6}
    for v in variants:
        med = {t: (summary([r["gap"] for r in results.get((v, t), [])]) or [None, None])[1] for t in tools}
        for t in tools:
            rs = results.get((v, t), [])
            if not rs:
                continue
            errors = sum(1 for r in rs if r["error"])
            rows.append([v, t, len(rs) if not errors else "%d (%d failed)" % (len(rs), errors),
                         benchlib.median_max([r["gap"] for r in rs]),
                         ratio(med.get("pgfailover"), med[t]),
                         benchlib.median_max([r["promoted"] for r in rs]),
                         benchlib.median_max([r["first_new"] for r in rs]),
                         benchlib.median_max([r["command"] for r in rs]),
                         benchlib.median_max([r["rejoin"] for r in rs]),
                         "%d of %d" % (sum(1 for r in rs if r["clean"]), len(rs)),
                         sum(1 for r in rs if r["rewind"]), sum(r["lost"] for r in rs)])
        for t, k in want.items():
            if med.get("pgfailover") and med.get(t):
                x = med["pgfailover"] / med[t]
                targets.append("- %s: pgfailover's median write gap at most 1/%d of %s's: %.2fx "
                               "(%.3f s against %.3f s), **%s**" % (
                                   v, k, "Patroni" if t == "patroni" else "repmgr", x, med["pgfailover"],
                                   med[t], "met" if x <= 1.0 / k else "not met"))
    pf = [r for (v, t), rs in results.items() if t == "pgfailover" for r in rs]
    if pf:
        done = [r for r in pf if r["rewind"] is not None]
        rw = sum(1 for r in done if r["rewind"])
        lost = sum(r["lost"] for r in pf)
        failed = len(pf) - len(done)
        targets.append("- pgfailover: 0 rewinds: %d in the %d runs that switched over%s, **%s**" % (
            rw, len(done), " (%d failed, below)" % failed if failed else "", "met" if rw == 0 else "not met"))
        targets.append("- pgfailover: 0 rows lost: %d, **%s**" % (lost, "met" if lost == 0 else "not met"))
    failures = ["- %s, %s, run %d: %s" % (v, t, i + 1, r["error"])
                for (v, t), rs in sorted(results.items()) for i, r in enumerate(rs) if r["error"]]
    lines = [benchlib.table(
        ["variant", "tool", "runs", "write gap median / max (s)", "pgfailover / this (medians)",
         "new primary out of recovery (s)", "first write on new primary (s)", "command run time (s)",
         "old primary streaming again (s)", "clean rejoins", "rewinds",
         "rows lost"], rows)]
    lines += ["", "Ratios are of medians, within this one run. Times in seconds (median / max): the write gap"
              " from the writer's last acknowledged insert on the old primary to its first on the new one;"
              " the others from the start of the tool's command."]
    if targets:
        lines += ["", "Targets:", ""] + targets
    if failures:
        lines += ["", "Failed runs:", ""] + failures
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variants", default="light,heavy")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--offset", type=int, default=460,
                    help="port offset of the clusters (added to PGFO_TEST_PORT_BASE)")
    ap.add_argument("--aux-port-base", type=int, default=None,
                    help="first port for etcd and Patroni's REST API (default PGFO_TEST_PORT_BASE + 490)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    a = ap.parse_args()
    variants = a.variants.split(",")
    tools = []
    for t in a.tools.split(","):
        if t not in TOOLS:
            ap.error("unknown tool %r" % t)
        why = available(t)
        if why:
            print("bench/peers.py: %s left out: %s" % (t, why), file=sys.stderr, flush=True)
        else:
            tools.append(t)
    if len(tools) < 2 or "pgfailover" not in tools:
        print("bench/peers.py: needs pgfailover and at least one peer; nothing to compare", file=sys.stderr)
        return 2
    if os.geteuid() == 0:
        ap.error("run it as an unprivileged user (Patroni and sshd run as the current user)")
    tmp = tempfile.mkdtemp(prefix="pgfo-bench-peers-", dir=os.environ.get("PGFO_TEST_TMPDIR") or None)
    ctx = {"offset": a.offset, "rest_base": None, "scopes": 0, "etcd": None, "sshd": None}
    aux = a.aux_port_base or port_base() + 490
    try:
        if "patroni" in tools:
            ctx["etcd"] = Etcd(tmp, aux).start()
            ctx["rest_base"] = aux + 2
        if "repmgr" in tools:
            ctx["sshd"] = Sshd(label="pgfo-bench-sshd").start()
        return run_all(a, variants, tools, ctx)
    finally:
        if ctx["sshd"] is not None:
            ctx["sshd"].stop()
        if ctx["etcd"] is not None:
            ctx["etcd"].stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(a, variants, tools, ctx):
    results = {}
    started = time.monotonic()
    host = machine()
    for v in variants:
        for i in range(a.runs):
            for t in tools:
                r = one_run(t, v, ctx)
                results.setdefault((v, t), []).append(r)
                print("%-5s %-10s run %d: write gap %s, first write on new %s, command %s, %s, rewind %s,"
                      " lost %d%s" % (
                          v, t, i + 1, "%.3f s" % r["gap"] if r["gap"] is not None else "none",
                          "%.3f s" % r["first_new"] if r["first_new"] is not None else "-",
                          "%.2f s" % r["command"] if r["command"] is not None else "-",
                          "rejoined cleanly" if r["clean"] else "NOT REJOINED (%s)" % r["said"],
                          r["rewind"], r["lost"], ", ERROR " + r["error"] if r["error"] else ""), flush=True)
    text = report(results, variants, tools)
    versions = ["pgfailover: " + version([cli_path(), "version"])]
    if "patroni" in tools:
        versions += [version(["patroni", "--version"]), version(["etcd", "--version"])]
    if "repmgr" in tools:
        versions.append(version([REPMGR_BIN, "--version"]))
    text += "\n\n%s; machine: %s; %.1f min for this run.\n" % (
        "; ".join(versions), host, (time.monotonic() - started) / 60)
    return benchlib.finish(text, a.markdown, results)


if __name__ == "__main__":
    sys.exit(main())
