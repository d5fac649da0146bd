#!/usr/bin/env python3
"""Logical replication through a failover: PostgreSQL 17+ failover slots, real servers.

Each cluster is a primary (node 0, wal_level = logical) and a synchronous
standby (node 1) that streams through a physical slot with dbname in its
primary_conninfo and sync_replication_slots = on, as the docs ask for.

  - a real subscriber (a third server, CREATE SUBSCRIPTION ... WITH (failover
    = true)) goes on from the synced slot after a planned stop and
    `pgfailover failover`: every acknowledged row arrives, none twice; the old
    primary follows and holds synced copies of the failover slots again;
  - a test_decoding failover slot read with pg_logical_slot_get_changes():
    the change stream goes on after the failover with no gap and no duplicate;
  - a slot that is not synced when the failover starts is named, and
    on_slots_not_ready = refuse / promote is applied;
  - the failure pgfailover prevents: pgpool's sample scripts (promote, then
    wipe pg_replslot/* on the follower) leave the subscriber unable to go on;
  - `pgfailover switchover` waits for the candidate's copy while the primary
    still runs, and the stream goes on from it.

PGFO_SLOTS_MAJORS (default "17") lists the majors to run: "17 18" runs both.
Servers come from the npm packages (tests/support/fetch_pg.sh).
"""

import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from pgcluster import PgCluster, ensure_pg_majors  # noqa: E402
from pgfo import RoleAsserts, failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 1400
MAJORS = [int(m) for m in os.environ.get("PGFO_SLOTS_MAJORS", "17").split()]
TABLE = ("CREATE TABLE IF NOT EXISTS pgfo_writer (id bigint PRIMARY KEY, node int NOT NULL,"
         " at timestamptz NOT NULL DEFAULT clock_timestamp())")
INSERT_ID = re.compile(r"^table public\.pgfo_writer: INSERT: id\[bigint\]:(\d+) ")


def wait_for(what, fn, timeout=60, interval=0.1):
    """fn() until it returns something true; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def slot_row(c, node, name):
    rows = c.psql(node, "SELECT synced, temporary, failover, coalesce(invalidation_reason, ''),"
                        " confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '%s'" % name)
    return rows[0] if rows else None


def synced_ready(c, node, name):
    r = slot_row(c, node, name)
    return r is not None and r[0] == "t" and r[1] == "f" and r[3] == ""


class SlotsTest(RoleAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_pg_majors(MAJORS)

    # ---- fixtures ---------------------------------------------------------

    def slot_cluster(self, major, offset, sync=True, standby_slots=True):
        """Primary + synchronous standby set up for slot failover (node 1
        synchronizes slots unless sync=False)."""
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", pg_version=major,
                      port_offset=PORT_OFFSET + offset, shared_buffers="128MB",
                      extra_conf={"wal_level": "logical"}, label="pgfo-slots%d" % major)
        self.addCleanup(c.teardown)
        c.start()
        c.psql(0, "SELECT pg_create_physical_replication_slot('pgfailover_node1')")
        ci = "host=%s port=%d user=postgres application_name=node1 dbname=postgres" % (
            c.node(0).host, c.node(0).port)
        c.psql(1, "ALTER SYSTEM SET primary_slot_name = 'pgfailover_node1'")
        c.psql(1, "ALTER SYSTEM SET primary_conninfo = '%s'" % ci)
        c.psql(1, "ALTER SYSTEM SET sync_replication_slots = %s" % ("on" if sync else "off"))
        if standby_slots:
            # As in a deployment whose nodes share one configuration: the
            # standby names its own slot too (pointless once it is promoted).
            for n in (0, 1):
                c.psql(n, "ALTER SYSTEM SET synchronized_standby_slots = 'pgfailover_node1'")
        for n in (0, 1):
            c.psql(n, "SELECT pg_reload_conf()")
        wait_for("node1 streaming through its slot", lambda: c.psql_value(
            0, "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgfailover_node1'") == "t")
        c.wait_streaming(1, 0)
        return c

    def config(self, c, policy="promote"):
        name = "pgfailover-%s.conf" % policy
        path = write_config(c, name=name, extra="[replication]\nsync_replication_slots = on\n"
                                                "synchronous_standby_names = ANY 1 (node0, node1)\n")
        with open(path) as f:
            text = f.read()
        c.write_owner_file(path, text.replace("[policy]\n", "[policy]\nreplication_slots = on\n"
                                              "on_slots_not_ready = %s\n" % policy, 1))
        return path

    def subscriber(self, c, major, offset, failover=True):
        """A third server subscribed to node 0's publication of pgfo_writer."""
        sub = PgCluster(standbys=0, sync_names="", pg_version=major,
                        port_offset=PORT_OFFSET + offset, shared_buffers="64MB",
                        label="pgfo-sub%d" % major)
        self.addCleanup(sub.teardown)
        sub.start()
        c.psql(0, TABLE)
        c.psql(0, "CREATE PUBLICATION pub FOR TABLE pgfo_writer")
        sub.psql(0, TABLE)
        sub.psql(0, "CREATE SUBSCRIPTION sub CONNECTION '%s' PUBLICATION pub WITH (failover = %s)"
                 % (self.conninfo(c, 0), "true" if failover else "false"))
        wait_for("the subscription's initial copy", lambda: sub.psql_value(
            0, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") == "0")
        return sub

    @staticmethod
    def conninfo(c, node):
        n = c.node(node)
        return "host=%s port=%d user=postgres dbname=postgres" % (n.host, n.port)

    def planned_failover(self, c, cfg):
        """pg_ctl stop -m fast, and failover_command as pgpool runs it."""
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        stopper.communicate(timeout=120)
        return run

    def follow(self, c, cfg):
        c.wait_stopped(0)
        fol = start_cli(["follow-primary"] + pgpool_args(c, 0, 1, 0), cfg).wait(240)
        self.assertEqual(fol.rc, 0, fol.describe())
        return fol

    def cdc_cluster(self, major, base):
        """A slot cluster with a test_decoding failover slot 'cdc': (cluster,
        config, the ids read so far, consume(node))."""
        c = self.slot_cluster(major, base)
        cfg = self.config(c)
        c.psql(0, TABLE)
        c.psql(0, "SELECT pg_create_logical_replication_slot('cdc', 'test_decoding', false, false, true)")
        seen = []
        return c, cfg, seen, self.reader(c, "cdc", seen)

    @staticmethod
    def reader(c, slot, seen):
        """consume(node): the writer's inserted ids from `slot` (test_decoding)
        read with pg_logical_slot_get_changes() on `node`, appended to `seen`."""
        def consume(node):
            for (data,) in c.psql(node, "SELECT data FROM pg_logical_slot_get_changes('%s', NULL, NULL)" % slot):
                m = INSERT_ID.match(data)
                if m:
                    seen.append(int(m.group(1)))
        return consume

    # ---- the tests --------------------------------------------------------

    def subscriber_through_failover(self, major, base):
        c = self.slot_cluster(major, base)
        sub = self.subscriber(c, major, base + 5)
        cfg = self.config(c)
        w = c.writer(0, 1)
        wait_for("node 1's synced, sync-ready copy of slot sub", lambda: synced_ready(c, 1, "sub"))
        time.sleep(1.0)
        run = self.planned_failover(c, cfg)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"], run.describe())
        step = run.step("slots")
        self.assertEqual(step["outcome"], "succeeded", run.describe())
        states = {s["name"]: s for s in step["details"]["slots"]}
        self.assertEqual(set(states), {"sub"}, step)
        self.assertTrue(states["sub"]["ready"], step)
        # The new primary names no slot of its own in synchronized_standby_slots:
        # a slot that does not exist there would hold every logical consumer.
        self.assertEqual(run.step("standby_slots")["outcome"], "succeeded", run.describe())
        self.assertEqual(c.psql_value(1, "SELECT current_setting('synchronized_standby_slots') = ''"), "t")
        # The subscriber goes on from the synced slot on the new primary.
        sub.psql(0, "ALTER SUBSCRIPTION sub CONNECTION '%s'" % self.conninfo(c, 1))
        w.wait_ack(1, timeout=30)
        time.sleep(1.0)
        w.stop()
        acked = w.acked_ids
        self.assertTrue(any(a[1] == 1 for a in w.acked), "no write acknowledged by the new primary")

        def arrived():
            have = {int(r[0]) for r in sub.psql(0, "SELECT id FROM pgfo_writer")}
            return acked <= have
        wait_for("every acknowledged row at the subscriber", arrived, timeout=90)
        # No row twice: the primary key refuses a second apply, and the apply
        # worker stops with that error (apply_error_count also counts the
        # lost connection to the stopped publisher).
        self.assertNotIn("duplicate key value violates unique constraint", sub.log_text(0))
        self.assertEqual(sub.psql_value(0, "SELECT count(*) - count(DISTINCT id) FROM pgfo_writer"), "0")
        # The old primary follows; its own copy of the slot is removed before
        # it starts, and the slot sync worker brings a synced one.
        fol = self.follow(c, cfg)
        self.assertIn("sub", fol.step("stale_slots")["details"]["dropped"], fol.describe())
        self.assertEqual(fol.step("slot_sync")["outcome"], "succeeded", fol.describe())
        c.psql(1, "INSERT INTO pgfo_writer (id, node) VALUES (10000000, 1)")   # the consumer advances
        wait_for("node 0's synced copy of slot sub", lambda: synced_ready(c, 0, "sub"), timeout=60)
        self.assertEqual(c.psql_value(1, "SHOW synchronized_standby_slots"), "pgfailover_node0")
        self.assertIn("dbname=", c.psql_value(0, "SHOW primary_conninfo"))
        wait_for("the last row at the subscriber", lambda: sub.psql_value(
            0, "SELECT count(*) FROM pgfo_writer WHERE id = 10000000") == "1", timeout=60)
        # status lists the slot on both nodes, with its state.
        st = start_cli(["status"], cfg).wait(60)
        self.assertEqual(st.rc, 0, st.describe())
        by_node = {n["id"]: n["failover_slots"] for n in st.report["verdict"]["nodes"]}
        self.assertEqual([s["synced"] for s in by_node[0]["logical"] if s["name"] == "sub"], [True])
        self.assertEqual([s["failover"] for s in by_node[1]["logical"] if s["name"] == "sub"], [True])
        print("PostgreSQL %d: failover %.2f s, slot sub %s; %d rows acknowledged, all at the "
              "subscriber; follow-primary %.1f s" % (major, run.elapsed, states["sub"]["state"],
                                                     len(acked), fol.elapsed), flush=True)

    def decoding_through_failover(self, major, base):
        c, cfg, seen, consume = self.cdc_cluster(major, base)
        w = c.writer(0, 1)
        # The copy becomes sync-ready once the consumer moves the slot on.
        wait_for("node 1's synced copy of slot cdc", lambda: consume(0) or synced_ready(c, 1, "cdc"),
                 interval=0.3)
        for _ in range(5):
            time.sleep(0.2)
            consume(0)
        before = len(seen)
        run = self.planned_failover(c, cfg)      # rows after the last read stay unread
        self.assertEqual(run.rc, 0, run.describe())
        slots = {s["name"]: s for s in run.step("slots")["details"]["slots"]}
        self.assertTrue(slots["cdc"]["ready"], run.describe())
        w.wait_ack(1, timeout=30)
        time.sleep(0.5)
        w.stop()
        consume(1)
        acked = w.acked_ids
        dups = sorted(i for i in set(seen) if seen.count(i) > 1)
        self.assertEqual(dups, [], "changes delivered twice (advance_slots: %s)" % run.step("advance_slots"))
        self.assertEqual(acked - set(seen), set(), "acknowledged rows missing from the change stream")
        self.assertEqual(seen, sorted(seen), "the stream is out of order")
        self.assertGreater(before, 0)
        self.assertGreater(len(seen), before)
        print("PostgreSQL %d: %d changes before the failover, %d after; slot cdc %s; advance_slots: %s"
              % (major, before, len(seen) - before, slots["cdc"]["state"],
                 run.step("advance_slots")["summary"]), flush=True)

    def switchover_with_slot(self, major, base):
        c, cfg, seen, consume = self.cdc_cluster(major, base)
        ids = iter(range(1, 1000000))

        def write(node, n=1):
            for _ in range(n):
                c.psql(node, "INSERT INTO pgfo_writer (id, node) VALUES (%d, %d)" % (next(ids), node))

        def moved_on():
            # a copy is sync-ready once the slot's restart_lsn has moved on
            write(0)
            c.psql(0, "SELECT pg_log_standby_snapshot()")
            consume(0)
            return synced_ready(c, 1, "cdc")
        wait_for("node 1's synced copy of slot cdc", moved_on, interval=0.3)
        write(0, 20)
        consume(0)
        # Consumed just now: the copy on node 1 is behind until the primary,
        # still up, synchronizes it (the switchover waits for that).
        run = start_cli(["switchover", "--to", "1"], cfg).wait(240)
        self.assertEqual(run.rc, 0, run.describe())
        fo = run.report["parts"][0]
        inv = [s for s in fo["steps"] if s["name"] == "slots_inventory"][0]
        self.assertEqual(inv["outcome"], "succeeded", fo)
        self.assertEqual([(s["name"], s["ready"]) for s in inv["details"]["slots"]], [("cdc", True)], inv)
        write(1, 10)
        consume(1)
        self.assertEqual(seen, list(range(1, len(seen) + 1)), "gap or duplicate in the change stream")
        self.assertEqual(seen[-1], next(ids) - 1)
        wait_for("node 0's synced copy of slot cdc", lambda: consume(1) or synced_ready(c, 0, "cdc"),
                 timeout=60, interval=0.3)
        self.assertEqual(c.psql_value(1, "SHOW synchronized_standby_slots"), "pgfailover_node0")

    def not_synced(self, major, base):
        c = self.slot_cluster(major, base, sync=False, standby_slots=False)
        c.psql(0, "SELECT pg_create_logical_replication_slot('lagging', 'test_decoding', false, false, true)")
        c.psql(0, "SELECT pg_create_logical_replication_slot('plain', 'test_decoding')")
        refuse = self.config(c, "refuse")
        # check names what would break slot failover
        ck = start_cli(["check"], refuse).wait(60)
        self.assertEqual(ck.rc, 16, ck.describe())
        problems = " | ".join(p["problem"] for p in ck.report["verdict"]["problems"])
        self.assertIn("sync_replication_slots is off", problems)
        self.assertIn("without failover = true, lost at a failover: plain", problems)
        self.assertIn("synchronized_standby_slots is not set", problems)
        c.stop(0, "fast")
        run = failover_hook(c, refuse, failed=0, new_main=1, old_primary=0)
        self.assertEqual(run.rc, 8, run.describe())
        self.assertIn("lagging: missing", run.stderr)
        self.assertIn("on_slots_not_ready = refuse", run.stderr)
        self.assertEqual(run.step("slots")["outcome"], "failed", run.describe())
        self.assertStandby(c, 1)
        self.assertEqual(run.verdict["cluster_state"], "no_primary", run.describe())
        run = failover_hook(c, self.config(c, "promote"), failed=0, new_main=1, old_primary=0)
        self.assertEqual(run.rc, 0, run.describe())
        step = run.step("slots")
        self.assertEqual(step["outcome"], "succeeded", run.describe())
        self.assertEqual([(s["name"], s["ready"]) for s in step["details"]["slots"]], [("lagging", False)])
        self.assertIn("promoting anyway", step["summary"])
        self.assertPrimary(c, 1)

    def pgpool_sample_wipes_slots(self, major, base):
        # No slot synchronization: what pgpool's sample scripts work with.
        c = self.slot_cluster(major, base, sync=False, standby_slots=False)
        sub = self.subscriber(c, major, base + 5, failover=False)
        w = c.writer(0, 1)
        time.sleep(1.0)
        c.stop(0, "fast")
        c.promote(1)                               # failover.sh.sample: pg_ctl promote
        # (the sample leaves synchronous_standby_names alone: commits would wait for node1 itself)
        c.psql(1, "ALTER SYSTEM SET synchronous_standby_names = ''")
        c.psql(1, "SELECT pg_reload_conf()")
        slotdir = os.path.join(c.node(0).datadir, "pg_replslot")
        c.run_owner(["sh", "-c", 'rm -rf "$1"/*', "sh", slotdir])   # follow_primary.sh.sample
        w.wait_ack(1, timeout=30)
        w.stop()
        sub.psql(0, "ALTER SUBSCRIPTION sub CONNECTION '%s'" % self.conninfo(c, 1))
        wait_for("the subscriber's error", lambda: 'replication slot "sub" does not exist'
                 in sub.log_text(0), timeout=60)
        on_new = {a[0] for a in w.acked if a[1] == 1}
        have = {int(r[0]) for r in sub.psql(0, "SELECT id FROM pgfo_writer")}
        self.assertTrue(on_new, "no write on the new primary")
        self.assertEqual(on_new & have, set(), "rows reached the subscriber without a slot")
        self.assertEqual(os.listdir(slotdir), [])


def _add_tests():
    for i, major in enumerate(MAJORS):
        for j, name in enumerate(("subscriber_through_failover", "decoding_through_failover",
                                  "not_synced", "pgpool_sample_wipes_slots", "switchover_with_slot")):
            def test(self, name=name, major=major, base=100 * i + 10 * j):
                getattr(self, name)(major, base)
            test.__name__ = "test_pg%d_%s" % (major, name)
            setattr(SlotsTest, test.__name__, test)


_add_tests()

if __name__ == "__main__":
    unittest.main(verbosity=2)
