#!/usr/bin/env python3
"""pgfailover demo: a planned stop of the primary, handled two ways.

1. What pgpool's stock script does: promote the standby as soon as the primary
   stops answering. The old primary then cannot follow the new one.
2. pgfailover failover, called with pgpool's arguments: it waits for the facts
   (old primary down, its shutdown checkpoint flushed on the standby), then
   promotes. The old primary follows as a standby, nothing lost.

Each run uses a fresh primary + synchronous standby on 127.0.0.1, a writer
committing rows, and a shutdown made slow by dirty buffers (as on a busy server).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

from pgcluster import PgCluster  # noqa: E402
from pgfo import failover_hook, write_config  # noqa: E402

# A busy server's shutdown: ~2 GB of dirty buffers make the shutdown
# checkpoint take long enough that an immediate promote loses the race every
# time (with a few hundred MB a fast disk may let it win).
DIRTY_MB = int(os.environ.get("PGFO_DEMO_DIRTY_MB", "2000"))
SHARED_BUFFERS = os.environ.get("PGFO_DEMO_SHARED_BUFFERS", "3GB")


def banner(text):
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def downtime(writer, stop_started):
    first = writer.first_ack(1, after=stop_started)
    return None if first is None else first[2] - stop_started


def immediate_promote():
    banner("1) promote at once (what pgpool's failover.sh.sample does)")
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=300, label="pgfo-demo",
                   shared_buffers=SHARED_BUFFERS) as c:
        w = c.writer(0, 1)
        time.sleep(0.5)
        c.dirty_buffers(0, DIRTY_MB)
        print("stopping the primary (pg_ctl -m fast stop) ...", flush=True)
        t0 = time.monotonic()
        stopper = c.stop_async(0, "fast")
        while c.ping(0) == "accepting":
            time.sleep(0.005)
        c.psql(1, "ALTER SYSTEM SET synchronous_standby_names = ''")
        c.psql(1, "SELECT pg_reload_conf()")
        c.promote(1)
        print("standby promoted %.2f s after the stop began" % (time.monotonic() - t0))
        stopper.wait(120)
        time.sleep(1)
        w.stop()
        gap = downtime(w, t0)
        print("old primary stopped; making it a standby of the new primary ...", flush=True)
        verdict = c.follow(0, 1)
        print("old primary follows: %s" % ("YES" if verdict.ok else "NO"))
        print("server log: %s" % verdict.message)
        return verdict.ok, gap


def pgfailover():
    banner("2) pgfailover failover %d %h %p %D %m %H %M %P %r %R %N %S")
    with PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=310, label="pgfo-demo",
                   shared_buffers=SHARED_BUFFERS) as c:
        cfg = write_config(c)
        w = c.writer(0, 1)
        time.sleep(0.5)
        c.dirty_buffers(0, DIRTY_MB)
        print("stopping the primary (pg_ctl -m fast stop) ...", flush=True)
        t0 = time.monotonic()
        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)  # pgpool calls the hook about 30 ms later
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        stopper.wait(120)
        sys.stdout.write(run.stderr)
        print("pgfailover exit code %d; %s" % (run.rc, run.report.get("message", "")))
        time.sleep(1)
        w.stop()
        gap = downtime(w, t0)
        print("making the old primary a standby of the new primary ...", flush=True)
        verdict = c.follow(0, 1)
        print("old primary follows: %s (%s)" % ("YES" if verdict.ok else "NO", verdict.message))
        lost = w.missing_on(1)
        print("acknowledged rows: %d, missing on the new primary: %d" % (len(w.acked_ids), len(lost)))
        return verdict.ok and run.rc == 0 and not lost, gap


def main():
    bad_ok, bad_gap = immediate_promote()
    good_ok, good_gap = pgfailover()
    banner("summary")
    fmt = "%-22s %-34s %s"
    print(fmt % ("strategy", "old primary rejoins without rewind", "write downtime"))
    for name, ok, gap in (("promote at once", bad_ok, bad_gap), ("pgfailover", good_ok, good_gap)):
        print(fmt % (name, "yes" if ok else "NO (needs pg_rewind)",
                     "%.2f s" % gap if gap is not None else "n/a"))
    return 0 if good_ok else 1


if __name__ == "__main__":
    sys.exit(main())
