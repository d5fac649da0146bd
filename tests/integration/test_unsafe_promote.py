#!/usr/bin/env python3
"""The failure pgfailover exists to prevent, shown with real servers.

test_immediate_promote_forks_the_old_primary:
    primary + synchronous standby, a writer running, ~2 GB of shared_buffers
    dirtied, then `pg_ctl -m fast stop` on the primary. As soon as the primary
    stops accepting connections (what pgpool reacts to), the standby is promoted
    at once. The old primary writes its shutdown checkpoint record only after
    that, so the new timeline forks off before the old primary's last record:
    it cannot follow the new primary without pg_rewind. Repeated
    PGFO_UNSAFE_ATTEMPTS times (default 3); every attempt must fail to follow.

test_promote_after_checkpoint_record_received:
    the control: same stop, but promote only once postmaster.pid is gone and
    the standby's pg_last_wal_receive_lsn() has reached the END of the old
    primary's shutdown checkpoint record. The old primary then follows the new
    one by plain streaming, the new timeline's switch point is exactly that
    end, and every acknowledged writer row is on the new primary.

Run directly (python3 test_unsafe_promote.py) or through ctest. As root, the
servers run as the `postgres` OS user (see tests/support/pgcluster.py).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from pgcluster import PgCluster, int_to_lsn  # noqa: E402

ATTEMPTS = int(os.environ.get("PGFO_UNSAFE_ATTEMPTS", "3"))
DIRTY_MB = int(os.environ.get("PGFO_DIRTY_MB", "2000"))
SHARED_BUFFERS = os.environ.get("PGFO_SHARED_BUFFERS", "3GB")
SYNC_NAMES = "ANY 1 (node1)"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class UnsafePromoteTest(unittest.TestCase):

    def make_cluster(self, port_offset):
        c = PgCluster(standbys=1, sync_names=SYNC_NAMES, port_offset=port_offset,
                      shared_buffers=SHARED_BUFFERS, label="pgfo-unsafe")
        self.addCleanup(c.teardown)
        c.start()
        log("  cluster up in %.2fs (ports %s, %s)" % (c.timings["start"], c.ports, c.base))
        return c

    def load_and_stop(self, c):
        """Writer on, buffers dirtied, then begin a fast stop of node 0.

        Returns (writer, pg_ctl Popen, t_stop, t_reject): t_reject is when node 0
        first refused a connection (monotonic seconds)."""
        w = c.writer(0)
        time.sleep(0.5)
        secs = c.dirty_buffers(0, DIRTY_MB)
        dirty = c.dirty_buffer_count(0)
        log("  dirtied %d MB in %.1fs (%s dirty buffers), writer acked %d rows so far"
            % (DIRTY_MB, secs, dirty, len(w.acked)))
        self.assertGreater(len(w.acked), 0, "writer made no progress")
        t_stop = time.monotonic()
        stopper = c.stop_async(0, "fast")
        while True:
            state = c.ping(0, timeout=1)
            if state != "accepting":
                t_reject = time.monotonic()
                break
            if time.monotonic() - t_stop > 30:
                self.fail("primary still accepting connections 30 s after pg_ctl stop")
            time.sleep(0.001)
        log("  node0 %s %.3fs after pg_ctl -m fast stop began" % (state, t_reject - t_stop))
        return w, stopper, t_stop, t_reject

    def finish_stop(self, c, stopper, t_stop):
        out, err = stopper.communicate(timeout=180)
        self.assertEqual(stopper.returncode, 0, "pg_ctl stop failed: %s%s" % (out, err))
        c.wait_stopped(0, timeout=60)
        took = time.monotonic() - t_stop
        state = c.controldata(0)["Database cluster state"]
        self.assertEqual(state, "shut down", "old primary did not shut down cleanly")
        return took

    def checkpoint_log_line(self, c):
        lines = [ln for ln in c.log_text(0).splitlines() if "checkpoint complete" in ln]
        return lines[-1] if lines else "(no checkpoint line)"

    # ------------------------------------------------------------------

    def test_immediate_promote_forks_the_old_primary(self):
        results = []
        for attempt in range(1, ATTEMPTS + 1):
            with self.subTest(attempt=attempt):
                log("unsafe attempt %d/%d" % (attempt, ATTEMPTS))
                c = self.make_cluster(port_offset=0)
                w, stopper, t_stop, t_reject = self.load_and_stop(c)

                # what a naive failover_command does: promote at once
                self.assertTrue(c.promote(1, 60), "pg_promote failed")
                t_promoted = time.monotonic()
                log("  node1 promoted %.3fs after the stop began" % (t_promoted - t_stop))

                took = self.finish_stop(c, stopper, t_stop)
                w.stop()
                rec = c.checkpoint_record(0)
                hist = c.history(1)
                switch = hist[-1][1] if hist else None
                log("  node0 fast stop took %.2fs; %s" % (took, self.checkpoint_log_line(c)))
                log("  node0 %s at %s..%s; node1 timeline %d forked at %s" % (
                    rec.kind, int_to_lsn(rec.start), int_to_lsn(rec.end),
                    c.timeline(1), int_to_lsn(switch)))
                self.assertEqual(rec.kind, "CHECKPOINT_SHUTDOWN")
                self.assertIsNotNone(switch)
                self.assertLess(switch, rec.end,
                                "the standby had the whole checkpoint record: the race "
                                "was not lost, the shutdown was too fast")

                # synchronous replication still kept every acknowledged row
                missing = w.missing_on(1)
                self.assertEqual(missing, set(), "acknowledged rows lost")

                verdict = c.follow(0, 1, timeout=30)
                log("  follow: %r" % verdict)
                results.append(verdict)
                self.assertTrue(verdict.needs_rewind,
                                "old primary was expected to need pg_rewind, got %r\n%s"
                                % (verdict, verdict.log_excerpt[-3000:]))
                c.teardown()
        failed = sum(1 for v in results if v.needs_rewind)
        log("unsafe promote: %d of %d attempts could not follow (needs pg_rewind)"
            % (failed, ATTEMPTS))
        for v in results:
            log("  %s" % v.message)

    def test_promote_after_checkpoint_record_received(self):
        log("control: wait for the shutdown checkpoint record, then promote")
        c = self.make_cluster(port_offset=0)
        w, stopper, t_stop, t_reject = self.load_and_stop(c)

        c.wait_stopped(0, timeout=180)           # postmaster.pid gone
        t_gone = time.monotonic()
        took = self.finish_stop(c, stopper, t_stop)
        w.stop()
        rec = c.checkpoint_record(0)
        self.assertEqual(rec.kind, "CHECKPOINT_SHUTDOWN")
        self.assertEqual(rec.state, "shut down")
        waited = c.wait_receive(1, rec.end, timeout=60)
        received = c.receive_lsn(1)
        log("  node0 gone %.2fs after the stop began (pg_ctl %.2fs); %s"
            % (t_gone - t_stop, took, self.checkpoint_log_line(c)))
        log("  checkpoint record %s..%s (next %s); node1 received %s (waited %.3fs more)"
            % (int_to_lsn(rec.start), int_to_lsn(rec.end), int_to_lsn(rec.next_start),
               int_to_lsn(received), waited))

        self.assertTrue(c.promote(1, 60), "pg_promote failed")
        log("  node1 promoted %.2fs after the stop began" % (time.monotonic() - t_stop))
        c.checkpoint(1)

        hist = c.history(1)
        self.assertTrue(hist, "no timeline history on the new primary")
        switch = hist[-1][1]
        log("  node1 timeline %d forked at %s" % (c.timeline(1), int_to_lsn(switch)))
        self.assertEqual(switch, rec.end,
                         "switch point should be exactly the end of the old primary's "
                         "shutdown checkpoint record")

        missing = w.missing_on(1)
        log("  writer: %d acknowledged, %d uncertain, %d missing on node1"
            % (len(w.acked), len(w.uncertain), len(missing)))
        self.assertEqual(missing, set(), "acknowledged rows lost")

        verdict = c.follow(0, 1, timeout=30)
        log("  follow: %r" % verdict)
        self.assertTrue(verdict.ok, "old primary should follow by streaming, got %r\n%s"
                        % (verdict, verdict.log_excerpt[-3000:]))
        self.assertTrue(c.is_in_recovery(0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
