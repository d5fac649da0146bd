#!/usr/bin/env python3
"""pgfailover status and check against healthy and broken real clusters.

status: every node's role, timeline, LSNs, lag and sync state (table and JSON),
a stopped node reported with its pg_control state.
check: a healthy cluster passes (exit 0); a stopped node, a wrong port and
missing wal_log_hints are each reported as exactly that problem, exit 16; so
are a [fencing] command that does not exist or cannot be executed.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster  # noqa: E402
from pgfo import start_cli, write_config  # noqa: E402

PORT_OFFSET = 260


def cli(cfg, *args):
    return start_cli(list(args), cfg, json_report=False).wait(120)


class StatusCheckTest(unittest.TestCase):
    def cluster(self, offset=0, **kw):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-status", shared_buffers="128MB", **kw)
        self.addCleanup(c.teardown)
        c.start()
        return c

    def problems(self, cfg):
        run = start_cli(["check"], cfg).wait(120)
        report = json.loads(run.stdout)
        return run, report["problems"]

    def test_status_of_a_healthy_then_degraded_cluster(self):
        c = self.cluster()
        cfg = write_config(c)
        # A standby that just connected is 'async' until its first reply
        # counts; wait (bounded) for the quorum state the setting asks for.
        deadline = time.monotonic() + 20
        while True:
            run = start_cli(["status"], cfg).wait(60)
            self.assertEqual(run.rc, 0, run.describe())
            nodes = {n["id"]: n for n in json.loads(run.stdout)["cluster"]}
            if nodes[1].get("sync_state") == "quorum" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(nodes[0]["role"], "primary")
        self.assertEqual(nodes[0]["timeline"], 1)
        self.assertEqual(nodes[0]["synchronous_standby_names"], "ANY 1 (node1)")
        self.assertEqual(nodes[1]["role"], "standby")
        self.assertEqual(nodes[1]["sync_state"], "quorum")
        self.assertEqual(nodes[1]["replication_state"], "streaming")
        self.assertGreaterEqual(nodes[1]["lag_bytes"], 0)
        self.assertEqual(nodes[1]["wal_receiver"], "streaming")
        self.assertEqual(nodes[0]["pg_control"]["state"], "in production")
        self.assertEqual(nodes[1]["pg_control"]["state"], "in archive recovery")
        table = cli(cfg, "status")
        self.assertEqual(table.rc, 0, table.describe())
        self.assertRegex(table.stdout, r"\n0 +127\.0\.0\.1:%d +primary" % c.node(0).port)
        self.assertRegex(table.stdout, r"\n1 +127\.0\.0\.1:%d +standby .* quorum" % c.node(1).port)

        c.stop(1, "fast")
        run = start_cli(["status"], cfg).wait(60)
        self.assertEqual(run.rc, 0, run.describe())
        nodes = {n["id"]: n for n in json.loads(run.stdout)["cluster"]}
        self.assertFalse(nodes[1]["reachable"])
        self.assertEqual(nodes[1]["pg_control"]["state"], "shut down in recovery")
        self.assertIn("DOWN", cli(cfg, "status").stdout)

    def test_check_healthy_then_stopped_node_and_wrong_port(self):
        c = self.cluster(offset=10)
        cfg = write_config(c)
        ok = cli(cfg, "check")
        self.assertEqual(ok.rc, 0, ok.describe())
        self.assertIn("no problems found", ok.stdout)

        c.stop(1, "fast")
        run, problems = self.problems(cfg)
        self.assertEqual(run.rc, 16, run.describe())  # PGFO_ERR_CHECK
        about1 = [p["problem"] for p in problems if p["node"].startswith("node 1 ")]
        self.assertIn("libpq: no response", about1)
        self.assertIn("not streaming from the primary as 'node1'", about1)
        self.assertEqual([p for p in problems if p["node"].startswith("node 0 ")], [])
        text = cli(cfg, "check")
        self.assertEqual(text.rc, 16)
        self.assertIn("PROBLEM node 1 (127.0.0.1:%d): libpq: no response" % c.node(1).port, text.stdout)
        self.assertIn("fix: start the server, or fix host/port of [node.1]", text.stdout)

        c.start_node(1)
        c.wait_streaming(1)
        wrong = write_config(c, name="wrong-port.conf")
        with open(wrong) as f:
            conf = f.read()
        bad_port = c.node(1).port + 5
        c._write_owner_file(wrong, conf.replace("port = %d" % c.node(1).port, "port = %d" % bad_port))
        run, problems = self.problems(wrong)
        self.assertEqual(run.rc, 16, run.describe())
        self.assertEqual([p["node"] for p in problems if p["problem"] == "libpq: no response"],
                         ["node 1 (127.0.0.1:%d)" % bad_port])

    def test_check_missing_wal_log_hints(self):
        c = self.cluster(offset=20, extra_conf={"wal_log_hints": "off"})
        cfg = write_config(c)
        run, problems = self.problems(cfg)
        self.assertEqual(run.rc, 16, run.describe())
        hints = [p for p in problems if "wal_log_hints is off" in p["problem"]]
        self.assertEqual(len(hints), 2, problems)  # both nodes
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("wal_log_hints = on", hints[0]["fix"])

    def test_check_fence_command(self):
        c = self.cluster(offset=30)
        fence = os.path.join(c.base, "fence.sh")
        cfg = write_config(c, name="fence.conf", on_unclean="fence",
                           extra="[fencing]\ncommand = %s %%d %%h\n" % fence)

        def fence_problems():
            run, problems = self.problems(cfg)
            return run, [p for p in problems if "[fencing] command" in p["problem"]]

        run, found = fence_problems()   # not there
        self.assertEqual(run.rc, 16, run.describe())
        self.assertEqual(len(found), 1, found)
        self.assertIn("%s does not exist" % fence, found[0]["problem"])
        c.write_owner_file(fence, "#!/bin/sh\nexit 0\n")   # there, mode 0600 (as root) or 0644
        os.chmod(fence, 0o644)
        run, found = fence_problems()
        self.assertEqual(run.rc, 16, run.describe())
        self.assertEqual(len(found), 1, found)
        self.assertIn("is not an executable file", found[0]["problem"])
        os.chmod(fence, 0o755)
        run, found = fence_problems()
        self.assertEqual((run.rc, found), (0, []), run.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
