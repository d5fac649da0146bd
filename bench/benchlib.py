"""Shared by the benchmarks in bench/: statistics, promotion, rejoin timing.

Statistics: the median, and the p95 as the nearest-rank value (the
ceil(0.95 n)-th smallest of n runs): with 20 runs or fewer that is the
largest value measured, never an interpolation between runs.
"""

import math
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

from pgcluster import MiniConn, PgError, cannot_follow  # noqa: E402


# ---- statistics ---------------------------------------------------------------

def nearest_rank(values, p):
    """The nearest-rank p-quantile (0 < p <= 1) of `values`."""
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1]


def summary(values):
    """(n, median, p95 nearest rank) of the values that are not None; None if none."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return len(v), statistics.median(v), nearest_rank(v, 0.95)


def p95_note(counts):
    """A sentence on what p95 means with these run counts."""
    counts = sorted(set(c for c in counts if c))
    if not counts:
        return ""
    if counts[-1] <= 20:
        return ("p95 is the nearest-rank value: with %s run%s it is the largest one measured."
                % (" or ".join(str(c) for c in counts), "" if counts == [1] else "s"))
    return "p95 is the nearest-rank value (the ceil(0.95 n)-th smallest of n runs)."


def median_max(values):
    """'median / max' of the values that are not None, in seconds; '-' if none."""
    sm = summary(values)
    return "%.3f / %.3f" % (sm[1], max(v for v in values if v is not None)) if sm else "-"


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def split_by_rewind(runs):
    """For runs of one strategy where some old primaries needed pg_rewind and
    some did not: the median downtime of each group, as a sentence; else ''."""
    bad = [r["gap"] for r in runs if r.get("rewind") and r.get("gap") is not None]
    good = [r["gap"] for r in runs if r.get("rewind") is False and r.get("gap") is not None]
    if not bad or not good:
        return ""
    return ("median downtime %.3f s in the %d run%s whose old primary needed pg_rewind, "
            "%.3f s in the %d that rejoined without it" % (
                statistics.median(bad), len(bad), "" if len(bad) == 1 else "s",
                statistics.median(good), len(good)))


def error_text(e):
    """An exception as one line for a run's "error"."""
    return "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def switch_gap(writer, t0, old=0, new=1, timeout=30):
    """After a switchover begun at monotonic time t0: (the writer's last ack
    on `old` to its first on `new` after t0, t0 to that first ack on `new`),
    waiting up to `timeout` s for that ack; (None, None) without one."""
    deadline = time.monotonic() + timeout
    while writer.first_ack(new, after=t0) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    first, last_old = writer.first_ack(new, after=t0), writer.last_ack(old)
    if not first or not last_old:
        return None, None
    return first[2] - last_old[2], first[2] - t0


def end_run(r, procs, writer, node):
    """After a run: kill the load processes still running, stop the writer,
    and count in r["lost"] the acknowledged rows missing on `node`."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
    writer.stop()
    try:
        r["lost"] = len(writer.missing_on(node))
    except Exception as e:  # noqa: BLE001
        r["error"] = r["error"] or "rows not checked: %s" % e


def finish(text, markdown, results):
    """Print the report, write it to `markdown` (if given); the exit status:
    1 when any run of `results` ({key: [run, ...]}) recorded an error."""
    print("\n" + text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(text)
    return 1 if any(r["error"] for rows in results.values() for r in rows) else 0


def table(header, rows):
    """A markdown table: header is a list of column names, rows lists of cells."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ---- promotion ------------------------------------------------------------------

def make_async_and_promote(port, conn=None):
    """Empty synchronous_standby_names, reload, pg_promote(): one session, no
    client program started (a floor must not pay for psql).

    Promotes and polls every 20 ms, asking again every 100 ms, as pgfailover
    does: one request can sit a whole wal_retrieve_retry_interval in the
    startup process, and a floor must not pay for that."""
    own = conn is None
    conn = conn or MiniConn(port, application_name="pgfo-bench")
    try:
        conn.query("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.query("SELECT pg_reload_conf()")
        conn.query("SELECT pg_promote(false)")
        t = time.monotonic()
        last = t
        while conn.query("SELECT pg_is_in_recovery()")[0][0] == "t":
            if time.monotonic() - t > 60:
                raise RuntimeError("promote failed")
            time.sleep(0.02)
            if time.monotonic() - last >= 0.1:
                try:
                    conn.query("SELECT pg_promote(false)")
                except Exception:  # noqa: BLE001 - recovery ended meanwhile
                    pass
                last = time.monotonic()
    finally:
        if own:
            conn.close()


# ---- rejoin -----------------------------------------------------------------------

class QueryWatch(threading.Thread):
    """Runs `sql` on the server on `port` every `interval` s until it returns
    a row; `seen` is then the monotonic time of that observation."""

    def __init__(self, port, sql, interval=0.01, timeout=120):
        super().__init__(name="pgfo-bench-watch", daemon=True)
        self.port = port
        self.sql = sql
        self.interval = interval
        self.timeout = timeout
        self.seen = None
        self._halt = threading.Event()

    def run(self):
        conn = None
        t0 = time.monotonic()
        while not self._halt.is_set() and time.monotonic() - t0 < self.timeout:
            try:
                if conn is None:
                    conn = MiniConn(self.port, application_name="pgfo-bench-watch", timeout=5)
                if conn.query(self.sql):
                    self.seen = time.monotonic()
                    break
            except PgError:
                if conn is not None:
                    conn.close()
                conn = None
            self._halt.wait(self.interval)
        if conn is not None:
            conn.close()

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(10)


class StreamWatch(QueryWatch):
    """Polls the primary on `port` until its pg_stat_replication shows
    `app_name` in state 'streaming'."""

    def __init__(self, port, app_name, interval=0.01, timeout=120):
        super().__init__(port, "SELECT 1 FROM pg_stat_replication WHERE application_name = '%s'"
                         " AND state = 'streaming'" % app_name.replace("'", "''"), interval, timeout)


def rejoin_verdict(c, old, new_tli, since, timeout=30, grace=2):
    """After the old primary was started as a standby of the new primary:
    'streaming' once its walreceiver streams on the new primary's timeline
    `new_tli`; 'forked', 'not_a_child' or 'not_in_history' when its log (from
    byte `since`) says it cannot follow without pg_rewind; 'died' (not
    running, `grace` s after the start and 0.3 s later) or 'timeout'.

    The new primary's pg_stat_replication alone is not enough: a node that
    went past the fork point also shows up there as 'streaming' for a moment,
    while it streams the old timeline up to the fork, before its startup
    process notices."""
    t0 = time.monotonic()
    gone_since = None
    while True:
        log = c.log_text(old, since)
        refused = cannot_follow(log)
        if refused:
            return refused[0]
        tli = c.streaming_timeline(old)
        if tli is not None and tli >= new_tli:
            return "streaming"
        now = time.monotonic()
        if now - t0 > grace and not c.is_running(old):
            if gone_since is None:
                gone_since = now
            elif now - gone_since > 0.3:
                return "died"
        if now - t0 > timeout:
            return "timeout"
        time.sleep(0.02)


def bare_follow(c, old, new, timeout=30):
    """The rejoin floor: standby.signal and primary_conninfo in the stopped old
    primary's data directory, pg_ctl start without waiting, and nothing else.

    Returns (state, seconds): the state from rejoin_verdict(), and the
    seconds from the start until the new primary's pg_stat_replication first
    showed the node 'streaming' (polled every 10 ms; None if it never did).
    The node stays running."""
    old_n, new_n = c.node(old), c.node(new)
    new_tli = c.timeline(new)
    watch = StreamWatch(new_n.port, old_n.name)
    since = c.log_size(old)
    t0 = time.monotonic()
    c.set_primary_conninfo(old, new)
    watch.start()
    try:
        c.start_node(old, wait=False)
        state = rejoin_verdict(c, old, new_tli, since, timeout)
        if state == "streaming" and watch.seen is None:
            watch.join(5)
    finally:
        watch.stop()
    return state, (watch.seen - t0 if watch.seen is not None else None)
