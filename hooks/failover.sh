#!/bin/sh
# failover.sh - drop-in for installations that point failover_command at a
# script: pgpool's arguments are handed on unchanged, as separate words.
#
#   failover_command = '/etc/pgpool-II/failover.sh %d %h %p %D %m %H %M %P %r %R %N %S'
#
# pgpool ignores the exit status and sets no timeout; pgfailover bounds every
# wait itself and logs each step to standard error (pgpool's log).
exec /usr/bin/pgfailover failover "$@"
