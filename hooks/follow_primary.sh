#!/bin/sh
# follow_primary.sh - drop-in for installations that point
# follow_primary_command at a script: pgpool's arguments are handed on
# unchanged, as separate words.
#
#   follow_primary_command = '/etc/pgpool-II/follow_primary.sh %d %h %p %D %m %H %M %P %r %R %N %S'
#
# Unlike pgpool's sample, this never wipes a data directory: a node that
# cannot follow without pg_rewind is rewound only with rewind = auto, and a
# base backup is never taken.
exec /usr/bin/pgfailover follow-primary "$@"
