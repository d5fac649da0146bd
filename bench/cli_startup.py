#!/usr/bin/env python3
"""bench/cli_startup: what starting the pgfailover command costs.

pgpool runs failover_command as a new process for every failover, so the
command's own start-up (loading its ~40 shared libraries: libpq, libcurl,
spdlog, ...) is part of every failover's downtime. This measures, in one run
and interleaved so that drift hits all alike, N runs each of:

  /bin/true                            the baseline: fork, exec, exit
  psql --version                       another libpq client, for comparison
  pgfailover version                   start-up, print, exit
  pgfailover check --help              the command line parser's help
  pgfailover --config MISSING check    a failing-fast invocation (exit code 3)

Each is started with posix_spawn (standard output and error to /dev/null) and
timed until waitpid returns: wall time, and the child's CPU time (user +
system, from wait4). Reported: median and p95 (nearest rank) in ms, and the
difference to /bin/true's median.

    bench/cli_startup.py [--runs 50] [--markdown FILE]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from pgcluster import PG_BINDIR  # noqa: E402
from pgfo import cli_path  # noqa: E402


def commands():
    cli = os.path.abspath(cli_path())
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    cmds = [("`true` (baseline)", [true])]
    psql = os.path.join(PG_BINDIR, "psql")
    if os.access(psql, os.X_OK):
        cmds.append(("`psql --version`", [psql, "--version"]))
    cmds += [("`pgfailover version`", [cli, "version"]),
             ("`pgfailover check --help`", [cli, "check", "--help"]),
             ("`pgfailover --config MISSING check` (exit 3)",
              [cli, "--config", "/nonexistent/pgfailover-bench.conf", "check"])]
    return cmds


def spawn(argv, devnull):
    """(wall seconds, child CPU seconds, exit status) of one run."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _pid, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--markdown", help="also write the table to this file")
    a = ap.parse_args()
    cmds = commands()
    wall = {name: [] for name, _ in cmds}
    cpu = {name: [] for name, _ in cmds}
    codes = {name: set() for name, _ in cmds}
    devnull = os.open(os.devnull, os.O_WRONLY)
    for _ in range(3):                      # warm the page cache
        for _name, argv in cmds:
            spawn(argv, devnull)
    for _ in range(a.runs):
        for name, argv in cmds:
            w, c, code = spawn(argv, devnull)
            wall[name].append(w)
            cpu[name].append(c)
            codes[name].add(code)
    os.close(devnull)
    base = benchlib.summary(wall[cmds[0][0]])
    rows = []
    for name, _argv in cmds:
        n, med, p95 = benchlib.summary(wall[name])
        cn, cmed, _ = benchlib.summary(cpu[name])
        rows.append([name, n, "%.1f" % (med * 1e3), "%.1f" % (p95 * 1e3),
                     "%+.1f" % ((med - base[1]) * 1e3), "%.1f" % (cmed * 1e3),
                     ",".join(str(c) for c in sorted(codes[name]))])
    text = benchlib.table(["command", "runs", "median (ms)", "p95 (ms)",
                           "vs true (median, ms)", "CPU user+sys (median, ms)", "exit code"], rows)
    text += "\n\n" + benchlib.p95_note([a.runs]) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
