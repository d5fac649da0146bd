#!/usr/bin/env python3
"""The Python binding (bindings/python, ctypes) against the built library.

NoServerTest: declarations, versions, LSN helpers, errors and callbacks with a
node that is simply not there. ClusterTest: real PostgreSQL servers
(tests/support/pgcluster.py): the shutdown wait, the LSN check, the whole
failover with events, and the step-by-step sequence.

Environment (set by ctest): PGFAILOVER_LIBRARY, the library just built.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "bindings", "python"))

import pgfailover  # noqa: E402
from pgfailover import CallbackError, Context, PgfoError, Status  # noqa: E402
from pgcluster import PgCluster, release_ports, reserve_ports  # noqa: E402
from pgfo import write_config  # noqa: E402

PORT_OFFSET = 500   # 500..549: this file; the Perl tests use 550..599


def header_functions():
    with open(os.path.join(SRC, "include", "pgfailover.h")) as f:
        text = f.read()
    return set(re.findall(r"PGFO_API\s+[^;(]*?\b(pgfo_\w+)\s*\(", text))


class NoServerTest(unittest.TestCase):
    def test_library_comes_from_the_environment(self):
        lib = pgfailover.library()
        self.assertEqual(lib._name, os.environ["PGFAILOVER_LIBRARY"])

    def test_every_header_function_has_a_prototype(self):
        names = header_functions()
        self.assertGreaterEqual(len(names), 29, names)
        self.assertLessEqual(names, set(pgfailover._PROTOTYPES))
        lib = pgfailover.library()
        for name in names:
            fn = getattr(lib, name)     # exported by the library built with this header
            self.assertIsNotNone(fn.argtypes, name)

    def test_versions_and_status_names(self):
        self.assertEqual(pgfailover.version(), "0.1.0")
        self.assertEqual(pgfailover.version_number(), 100)
        self.assertEqual(pgfailover.status_name(6), "PGFO_ERR_TIMEOUT")
        self.assertEqual(pgfailover.strerror(0), "success")
        for s in Status:
            self.assertEqual(pgfailover.status_name(s), "PGFO_" + s.name)

    def test_lsn_helpers(self):
        self.assertEqual(pgfailover.lsn_parse("0/6F6F558"), 0x6F6F558)
        self.assertEqual(pgfailover.lsn_parse("16/B374D848"), (0x16 << 32) | 0xB374D848)
        self.assertEqual(pgfailover.lsn_format((0x16 << 32) | 0xB374D848), "16/B374D848")
        top = (1 << 64) - 1
        self.assertEqual(pgfailover.lsn_parse(pgfailover.lsn_format(top)), top)
        for bad in ("", "0", "x/1", "1/2/3", "0/6F6F558 "):
            with self.assertRaises(PgfoError) as cm:
                pgfailover.lsn_parse(bad)
            self.assertEqual(cm.exception.code, 2, bad)
        with self.assertRaises(PgfoError):
            pgfailover.lsn_format(-1)

    def bad_config(self, text):
        fd, path = tempfile.mkstemp(prefix="pgfo-ffi-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_bad_config_raises_config_error(self):
        path = self.bad_config("[policy]\non_unclean = maybe\n")
        with Context() as ctx:
            with self.assertRaises(PgfoError) as cm:
                ctx.load_config(path)
            e = cm.exception
            self.assertEqual((e.code, e.name), (3, "PGFO_ERR_CONFIG"))
            self.assertIn("on_unclean", e.message)
            self.assertIn(path, e.message)
            self.assertEqual(ctx.errmsg, e.message)
            with self.assertRaises(PgfoError) as cm:
                Context(path)
            self.assertEqual(cm.exception.code, 3)
            with self.assertRaises(PgfoError) as cm:
                ctx.set("policy", "on_running", "sometimes")
            self.assertEqual(cm.exception.code, 3)
            ctx.set("policy", "on_running", "refuse")
            self.assertEqual(ctx.errmsg, "")

    def test_unknown_node_raises_usage_error(self):
        with Context() as ctx:
            for call in (lambda: ctx.ping_node(3), lambda: ctx.wait_shutdown(3, 0.1),
                         lambda: ctx.read_checkpoint(3), lambda: ctx.promote(3, 1),
                         lambda: ctx.failover(3, 4, 3)):
                with self.assertRaises(PgfoError) as cm:
                    call()
                self.assertEqual((cm.exception.code, cm.exception.name), (2, "PGFO_ERR_USAGE"))
                self.assertIn("node 3", cm.exception.message)
            with self.assertRaises(PgfoError) as cm:
                ctx.failover_pgpool("1")
            self.assertEqual(cm.exception.code, 2)
            self.assertEqual(ctx.result(), {})

    def test_flush_events_without_webhooks(self):
        with Context() as ctx:
            ctx.flush_events(0)         # nothing configured: returns at once

    def test_custom_events_reach_the_callback(self):
        seen = []
        with Context() as ctx:
            ctx.on_event(lambda e: seen.append(e))
            ctx.emit_event("fencing.done", {"node": 0, "severity": "warning"})
            with self.assertRaises(PgfoError) as cm:
                ctx.emit_event("failover.succeeded")  # the library's own
            self.assertEqual(cm.exception.code, 2)
            with self.assertRaises(PgfoError):
                ctx.emit_event("Bad Name")
        self.assertEqual([e.name for e in seen], ["fencing.done"])
        self.assertEqual(seen[0].data["severity"], "warning")
        self.assertEqual(seen[0].data["node"], 0)
        self.assertEqual(seen[0].data["seq"], 1)

    def test_closed_context(self):
        with Context() as ctx:
            pass
        self.assertTrue(ctx.closed)
        with self.assertRaises(PgfoError) as cm:
            ctx.set_dry_run(True)
        self.assertEqual(cm.exception.code, 2)
        ctx.close()     # idempotent

    def absent_node_context(self):
        """A context whose node 0 is a port nothing listens on and a data
        directory with no server: wait_shutdown finds it down at once, no server needed."""
        port = reserve_ports(1, PORT_OFFSET + 40)[0]
        self.addCleanup(release_ports, [port])
        base = tempfile.mkdtemp(prefix="pgfo-ffi-")
        self.addCleanup(shutil.rmtree, base, True)
        with open(os.path.join(base, "PG_VERSION"), "w") as f:
            f.write("15\n")
        ctx = Context()
        self.addCleanup(ctx.close)
        ctx.set("connection", "connect_timeout", "2")
        for k, v in (("host", "127.0.0.1"), ("port", port),
                     ("data_directory", base), ("access", "local")):
            ctx.set("node.0", k, v)
        return ctx

    def test_callback_exception_is_caught_and_raised_after_the_call(self):
        ctx = self.absent_node_context()
        seen, lines = [], []

        def on_event(ev):
            seen.append(ev)
            raise ValueError("callback bug %d" % ev.seq)

        ctx.on_event(on_event)
        ctx.on_log(lambda level, line: lines.append((level, line)))
        with self.assertRaises(CallbackError) as cm:
            ctx.wait_shutdown(0, 5)
        errs = cm.exception.errors
        self.assertEqual([str(e) for e in errs], ["callback bug %d" % ev.seq for ev in seen])
        self.assertIsInstance(cm.exception.__cause__, ValueError)
        # The step itself ran to the end and succeeded.
        self.assertEqual([e.name for e in seen],
                         ["step.started", "step.started", "step.succeeded", "step.succeeded"])
        self.assertEqual([e.seq for e in seen], [1, 2, 3, 4])
        self.assertEqual(ctx.result()["status"], "PGFO_OK")
        self.assertTrue(any("is down" in line for _, line in lines), lines)
        self.assertTrue(all(isinstance(level, pgfailover.LogLevel) for level, _ in lines))
        # Removing the callback: no more exceptions.
        ctx.on_event(None)
        ctx.wait_shutdown(0, 5)

    def test_callback_must_not_call_into_its_context(self):
        ctx = self.absent_node_context()
        ctx.on_event(lambda ev: ctx.set_dry_run(True))
        with self.assertRaises(CallbackError) as cm:
            ctx.wait_shutdown(0, 5)
        self.assertIsInstance(cm.exception.errors[0], PgfoError)
        self.assertEqual(cm.exception.errors[0].code, 2)

    def test_failed_call_carries_callback_errors(self):
        ctx = self.absent_node_context()

        def boom(ev):
            raise KeyError(ev.name)

        ctx.on_event(boom)
        with self.assertRaises(PgfoError) as cm:
            ctx.read_checkpoint(0)      # no pg_control: fails
        self.assertNotEqual(cm.exception.code, 0)
        self.assertTrue(cm.exception.callback_errors)
        self.assertIsInstance(cm.exception.callback_errors[0], KeyError)


class ClusterTest(unittest.TestCase):
    def cluster(self, offset, **kw):
        c = PgCluster(standbys=1, port_offset=PORT_OFFSET + offset, label="pgfo-ffi-py", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def test_shutdown_wait_lsn_check_and_failover(self):
        c = self.cluster(0)
        ctx = Context(write_config(c))
        self.addCleanup(ctx.close)
        self.assertEqual(ctx.ping_node(0), pgfailover.Ping.OK)
        self.assertEqual(ctx.ping_node(1), pgfailover.Ping.OK)

        # A running node: wait_shutdown times out, quickly.
        with self.assertRaises(PgfoError) as cm:
            ctx.wait_shutdown(0, 0.5)
        self.assertEqual((cm.exception.code, cm.exception.name), (6, "PGFO_ERR_TIMEOUT"))
        self.assertEqual(ctx.result()["steps"][0]["outcome"], "failed")

        c.stop(0, "fast")
        ctx.wait_shutdown(0, 30)
        self.assertEqual(ctx.ping_node(0), pgfailover.Ping.NO_RESPONSE)

        cp = ctx.read_checkpoint(0)
        self.assertEqual(cp.state, pgfailover.DbState.SHUTDOWNED)
        self.assertTrue(cp.clean)
        self.assertGreater(cp.checkpoint_end, cp.checkpoint)
        start, end, tli = c.checkpoint_record(0)     # pg_waldump's view
        self.assertEqual((cp.checkpoint, cp.checkpoint_end, cp.timeline), (start, end, tli))

        reached = ctx.wait_flush(1, cp.checkpoint_end, 20)
        self.assertGreaterEqual(reached, cp.checkpoint_end)

        events = []

        def on_event(ev):
            events.append(ev)
            if ev.seq == 2:
                raise RuntimeError("a bug in the operator's callback")

        ctx.on_event(on_event)
        with self.assertRaises(CallbackError) as cm:
            ctx.failover(0, 1, 0)
        self.assertEqual(str(cm.exception.errors[0]), "a bug in the operator's callback")
        report = ctx.result()
        self.assertEqual(report["status"], "PGFO_OK", report)
        self.assertTrue(report["verdict"]["promoted"], report)
        self.assertEqual(report["verdict"]["old_primary_rejoin"], "clean", report)
        self.assertEqual(report["verdict"]["checkpoint_end"], pgfailover.lsn_format(end))
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")

        self.assertEqual([e.seq for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[0].name, "failover.started")
        self.assertEqual(events[-1].name, "failover.succeeded")
        self.assertEqual(len({e.data["run_id"] for e in events}), 1)
        self.assertEqual([e.data["seq"] for e in events], [e.seq for e in events])
        steps = [e.step for e in events if e.name == "step.succeeded"]
        for s in ("wait_shutdown", "wait_flush", "promote"):
            self.assertIn(s, steps)

        # The library's own rejoin decision agrees before anything is changed...
        ctx.on_event(None)              # (the callback above raises on purpose)
        self.assertTrue(ctx.rejoin_decision(0, 1))
        self.assertIn("not past the switch point", ctx.result()["message"])
        # ...and the verdict holds: the old primary follows without pg_rewind.
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict)

    def test_step_by_step(self):
        c = self.cluster(10)
        with Context(write_config(c)) as ctx:
            ctx.set_sync_standbys(0, "node1")
            c.stop(0, "fast")
            ctx.wait_shutdown(0, 30)
            cp = ctx.read_checkpoint(0)
            self.assertTrue(cp.clean, cp)
            ctx.wait_flush(1, cp.checkpoint_end, 20)
            ctx.set_sync_standbys(1, "")
            ctx.promote(1, 60)
            sp = ctx.switch_point(1, cp.timeline)
            self.assertEqual(sp.timeline, cp.timeline + 1)
            self.assertGreaterEqual(sp.point, cp.checkpoint_end)
            # Already a primary: recognised, not promoted twice.
            ctx.promote(1, 60)
            self.assertEqual(ctx.result()["steps"][0]["outcome"], "skipped")
            with self.assertRaises(PgfoError) as cm:
                ctx.switch_point(1, 7)
            self.assertEqual(cm.exception.code, Status.ERR_STATE)
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        self.assertEqual(c.psql_value(1, "SELECT '[' || current_setting("
                                         "'synchronous_standby_names') || ']'"), "[]")


class ExampleTest(unittest.TestCase):
    """bindings/python/examples/premaintenance_check.py on a real cluster."""

    def check(self, cfg, *args):
        env = dict(os.environ, PYTHONPATH=os.path.join(SRC, "bindings", "python"))
        run = subprocess.run([sys.executable, os.path.join(SRC, "bindings", "python", "examples",
                                                           "premaintenance_check.py"),
                              "--config", cfg] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, timeout=120)
        print(run.stdout + run.stderr)
        return run

    def test_premaintenance_check(self):
        c = PgCluster(standbys=1, sync_names="", port_offset=PORT_OFFSET + 20,
                      label="pgfo-ffi-py")
        self.addCleanup(c.teardown)
        c.start()
        cfg = write_config(c)
        run = self.check(cfg, "--max-lag-bytes", str(16 << 20), "--max-lag-seconds", "60")
        self.assertEqual(run.returncode, 0)
        self.assertIn("ok: 1 standby(s)", run.stdout)
        # Replay paused on the standby while the primary writes: lag in bytes.
        c.psql(1, "SELECT pg_wal_replay_pause()")
        c.psql(0, "CREATE TABLE lag AS SELECT g FROM generate_series(1, 20000) g")
        c.wait_receive(1, c.current_lsn(0))
        run = self.check(cfg, "--max-lag-bytes", "1024", "--max-lag-seconds", "60")
        self.assertEqual(run.returncode, 1)
        self.assertIn("REFUSED: a standby lags behind node 0", run.stderr)
        self.assertIn("bytes > 1024", run.stdout)
        c.psql(1, "SELECT pg_wal_replay_resume()")
        # A node that does not answer: refused before any query.
        c.stop(1, "fast")
        run = self.check(cfg)
        self.assertEqual(run.returncode, 1)
        self.assertIn("node 1 does not accept connections", run.stderr)
        # An invalid configuration: exit 2 with the library's message.
        bad = os.path.join(c.base, "bad.conf")
        with open(bad, "w") as f:
            f.write("[policy]\non_running = sometimes\n")
        run = self.check(bad)
        self.assertEqual(run.returncode, 2)
        self.assertIn("PGFO_ERR_CONFIG", run.stderr)


class PipInstallTest(unittest.TestCase):
    """`pip install` of bindings/python works offline (no index, no build
    isolation: the system's setuptools), into a target directory."""

    def test_offline_install(self):
        probe = subprocess.run([sys.executable, "-c", "import setuptools; import pip"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if probe.returncode != 0:
            self.skipTest("pip or setuptools not installed for %s" % sys.executable)
        tmp = tempfile.mkdtemp(prefix="pgfo-ffi-pip-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src = os.path.join(tmp, "src")     # pip builds in the source tree: use a copy
        shutil.copytree(os.path.join(SRC, "bindings", "python"), src,
                        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        target = os.path.join(tmp, "site")
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   HOME=tmp, PIP_NO_CACHE_DIR="1")
        run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                              "--no-index", "--no-deps", "--target", target, src],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env, timeout=300)
        self.assertEqual(run.returncode, 0, run.stdout)
        check = subprocess.run(
            [sys.executable, "-c", "import pgfailover, sys; print(pgfailover.__file__);"
             " print(pgfailover.version())"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp,
            env=dict(os.environ, PYTHONPATH=target))
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertTrue(check.stdout.startswith(target), check.stdout)
        self.assertIn("0.1.0", check.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
