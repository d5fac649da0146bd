#!/usr/bin/env python3
"""Refuse a maintenance window (a planned switchover) while a standby lags.

    premaintenance_check.py --config /etc/pgfailover/pgfailover.conf \
        --primary 0 --max-lag-bytes 16777216 --max-lag-seconds 10

Checks, and exits 1 with a message on the first that fails:
  1. the configuration is valid (libpgfailover loads it);
  2. every configured node answers a libpq ping (libpgfailover);
  3. at least one standby streams from the primary, and no streaming standby
     has replayed less than the primary's current WAL position minus
     --max-lag-bytes, or lags more than --max-lag-seconds (replay_lag).

libpgfailover has no general query function, so the lag comes from
pg_stat_replication on the primary through `psql` (connection settings from
the node's section of the configuration; a password belongs in a passfile).
replay_lag is NULL when the standby has been idle; that counts as 0 s.

Exit status: 0 go ahead, 1 refused, 2 usage or configuration error.
"""

import argparse
import configparser
import os
import subprocess
import sys

import pgfailover


def node_ids(path):
    """Node ids of the [node.N] sections, and the sections themselves."""
    ini = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                    strict=False)
    with open(path) as f:
        ini.read_file(f)
    nodes = {}
    for s in ini.sections():
        if s.startswith("node.") and s[5:].isdigit():
            nodes[int(s[5:])] = ini[s]
    conn = ini["connection"] if ini.has_section("connection") else {}
    return nodes, conn


def replication_lag(node, conn, psql):
    sql = ("SELECT application_name, state,"
           " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1)::bigint,"
           " coalesce(extract(epoch FROM replay_lag), 0)"
           " FROM pg_stat_replication ORDER BY application_name")
    argv = [psql, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
            "-h", node.get("host", "localhost"), "-p", node.get("port", "5432"),
            "-U", conn.get("user", "postgres"), "-d", conn.get("dbname", "postgres"),
            "-c", sql]
    env = dict(os.environ, PGCONNECT_TIMEOUT=str(conn.get("connect_timeout", "5")))
    if conn.get("passfile"):
        env["PGPASSFILE"] = conn["passfile"]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("psql on the primary failed: %s" % out.stderr.strip())
    rows = []
    for line in out.stdout.splitlines():
        name, state, lag_bytes, lag_s = line.split("\t")
        rows.append((name, state, int(lag_bytes), float(lag_s)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.environ.get("PGFAILOVER_CONFIG",
                                                        "/etc/pgfailover/pgfailover.conf"))
    ap.add_argument("--primary", type=int, default=0, help="node id of the primary (0)")
    ap.add_argument("--max-lag-bytes", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--max-lag-seconds", type=float, default=10.0)
    ap.add_argument("--psql", default="psql")
    a = ap.parse_args()

    try:
        ctx = pgfailover.Context(a.config)
    except pgfailover.PgfoError as e:
        print("premaintenance: %s" % e, file=sys.stderr)
        return 2
    with ctx:
        nodes, conn = node_ids(a.config)
        if a.primary not in nodes:
            print("premaintenance: node %d is not in %s (nodes from pgpool_conf are not"
                  " supported by this check)" % (a.primary, a.config), file=sys.stderr)
            return 2
        for nid in sorted(nodes):
            ping = ctx.ping_node(nid)
            if ping != pgfailover.Ping.OK:
                print("REFUSED: node %d does not accept connections (%s)"
                      % (nid, getattr(ping, "name", ping)), file=sys.stderr)
                return 1
    try:
        rows = replication_lag(nodes[a.primary], conn, a.psql)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("REFUSED: %s" % e, file=sys.stderr)
        return 1
    streaming = [r for r in rows if r[1] == "streaming"]
    if not streaming:
        print("REFUSED: no standby streams from node %d" % a.primary, file=sys.stderr)
        return 1
    refused = False
    for name, state, lag_bytes, lag_s in streaming:
        bad = []
        if lag_bytes < 0 or lag_bytes > a.max_lag_bytes:
            bad.append("replay lag %s bytes > %d" % ("unknown" if lag_bytes < 0 else lag_bytes,
                                                      a.max_lag_bytes))
        if lag_s > a.max_lag_seconds:
            bad.append("replay lag %.3f s > %.3f s" % (lag_s, a.max_lag_seconds))
        print("%-20s %-10s %12d bytes %8.3f s  %s" % (name, state, lag_bytes, lag_s,
                                                      "; ".join(bad) or "ok"))
        refused = refused or bool(bad)
    if refused:
        print("REFUSED: a standby lags behind node %d" % a.primary, file=sys.stderr)
        return 1
    print("ok: %d standby(s) within %d bytes and %.1f s"
          % (len(streaming), a.max_lag_bytes, a.max_lag_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
