#!/bin/sh
# bench/immediate_promote.sh: the unsafe floor as pgpool's failover_command.
#
#   failover_command = '.../immediate_promote.sh [--delay S] [--psql PSQL] %d %h %p %D %m %H %M %P %r %R %N %S'
#
# When the failed node (%d) is the primary (%P) and pgpool chose a new main
# node (%m), it promotes that node at once - what pgpool's sample script does,
# without waiting for anything - or after --delay seconds (--delay 10 is the
# `sleep 10` workaround). It empties synchronous_standby_names first and
# promotes the way pgfailover does (pg_promote(false), asked again every
# 100 ms), so only the wait differs, then returns once the node accepts writes.
# pgpool's arguments go to psql as separate arguments, never into a command
# string; the SQL is fixed. For benchmarks only: it never checks anything.
set -eu

delay=0
psql=psql
while [ $# -gt 0 ]; do
  case $1 in
    --delay) delay=$2; shift 2 ;;
    --psql) psql=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 9 ] || { echo "immediate_promote: expected pgpool's %d %h %p %D %m %H %M %P %r ..." >&2; exit 2; }
failed=$1 new_main=$5
[ "$new_main" != "-1" ] || exit 0                 # no node to promote
new_host=$6 old_primary=$8 new_port=$9
[ "$failed" = "$old_primary" ] || exit 0         # a standby failed: nothing to promote
[ "$delay" = 0 ] || sleep "$delay"
exec "$psql" -X -q -v ON_ERROR_STOP=1 -h "$new_host" -p "$new_port" -U postgres -d postgres -f - <<'SQL'
ALTER SYSTEM SET synchronous_standby_names = '';
SELECT pg_reload_conf();
DO $$
DECLARE
  i int := 0;
BEGIN
  PERFORM pg_promote(false);
  WHILE pg_is_in_recovery() LOOP
    i := i + 1;
    IF i > 3000 THEN
      RAISE EXCEPTION 'still in recovery after 60 s';
    END IF;
    PERFORM pg_sleep(0.02);
    IF i % 5 = 0 THEN
      BEGIN
        PERFORM pg_promote(false);
      EXCEPTION WHEN OTHERS THEN
        NULL;           -- recovery ended meanwhile
      END;
    END IF;
  END LOOP;
END
$$;
SQL
