#!/usr/bin/env python3
"""The Perl binding's tests, with real PostgreSQL servers from tests/support.

Perl has no fixture of its own: this driver starts the clusters
(pgcluster.PgCluster), writes their pgfailover.conf (pgfo.write_config) and
runs the Perl tests with `prove`, passing what they need in the environment:

  perl/basic.t    no servers (a free port for a node that is not there)
  perl/cluster.t  PGFO_TEST_CONFIG, PGFO_TEST_STOP0: shutdown wait, LSN check,
                  whole failover with events
  bindings/perl/examples/failover_with_fencing.pl: a failing fencing command
                  promotes nothing; a fencing command that stops the old
                  primary leads to a promotion the old primary can follow.

Environment (set by ctest): PGFAILOVER_LIBRARY, the library just built.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))

from pgcluster import PgCluster, owner_prefix, pg_bin, release_ports, reserve_ports  # noqa: E402
from pgfo import write_config  # noqa: E402

PORT_OFFSET = 550   # 550..599: the Perl tests; test_python_binding.py uses 500..549
PERL_LIB = os.path.join(SRC, "bindings", "perl", "lib")
FENCING = os.path.join(SRC, "bindings", "perl", "examples", "failover_with_fencing.pl")


def prove(test, env=None):
    prover = shutil.which("prove")
    argv = ([prover, "-v", "-I", PERL_LIB] if prover else ["perl", "-I", PERL_LIB])
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv + [os.path.join(HERE, "perl", test)], env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


def stop_argv(node):
    return list(owner_prefix()) + [pg_bin("pg_ctl"), "-D", node.datadir, "-m", "fast",
                                   "-w", "-t", "60", "stop"]


class PerlTest(unittest.TestCase):
    def setUp(self):
        if subprocess.run(["perl", "-MFFI::Platypus", "-e", "1"],
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("FFI::Platypus not installed (Debian: libffi-platypus-perl)")

    def cluster(self, offset):
        c = PgCluster(standbys=1, port_offset=PORT_OFFSET + offset, label="pgfo-ffi-pl")
        self.addCleanup(c.teardown)
        c.start()
        return c

    def assertProves(self, run):
        print(run.stdout)
        self.assertEqual(run.returncode, 0, run.stdout)

    def test_basic(self):
        port = reserve_ports(1, PORT_OFFSET + 40)[0]
        self.addCleanup(release_ports, [port])
        self.assertProves(prove("basic.t", {"PGFO_TEST_FREE_PORT": str(port)}))

    def test_cluster(self):
        c = self.cluster(0)
        self.assertProves(prove("cluster.t", {
            "PGFO_TEST_CONFIG": write_config(c),
            "PGFO_TEST_STOP0": json.dumps(stop_argv(c.nodes[0])),
        }))
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict)

    def run_fencing(self, cfg, fence):
        argv = ["perl", "-I", PERL_LIB, FENCING, "--config", cfg, "--failed", "0",
                "--candidate", "1", "--timeout", "60", "--"] + fence
        run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=300)
        print("$ %s\n%s%s" % (" ".join(argv), run.stdout, run.stderr))
        return run

    def test_fencing_example(self):
        c = self.cluster(10)
        cfg = write_config(c)
        # A fencing command that fails: nothing is promoted, old primary untouched.
        run = self.run_fencing(cfg, ["sh", "-c", "echo fence device unreachable >&2; exit 3"])
        self.assertEqual(run.returncode, 1)
        self.assertIn("fencing failed (exit status 3): not promoting", run.stderr)
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "t")
        self.assertTrue(c.is_running(c.nodes[0]))
        # A fencing command that stops the old primary: promoted, cleanly.
        run = self.run_fencing(cfg, stop_argv(c.nodes[0]))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("old primary can rejoin as it is", run.stdout)
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        verdict = c.follow(0, 1)
        self.assertTrue(verdict.ok, verdict)


if __name__ == "__main__":
    unittest.main(verbosity=2)
