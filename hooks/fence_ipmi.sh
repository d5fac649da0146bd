#!/bin/sh
# fence_ipmi.sh - sample [fencing] command: power a node off through its
# baseboard management controller (IPMI), out of band, so it works while the
# node itself is unreachable.
#
#   [policy]
#   on_unclean = fence
#   [fencing]
#   command = /usr/share/pgfailover/hooks/fence_ipmi.sh %d %h
#
# Each node's BMC is found as $PGFO_FENCE_IPMI_DIR/<node id> (default
# /etc/pgfailover/ipmi): a file with three lines, BMC address, user, and the
# path of a file holding the password (ipmitool -f; mode 0600, owner postgres).
# It powers the node off, then asks until the BMC reports it off: only then
# is the node fenced (exit 0). Needs ipmitool.
set -eu
node_id=$1
host=$2
dir=${PGFO_FENCE_IPMI_DIR:-/etc/pgfailover/ipmi}
conf=$dir/$node_id
[ -r "$conf" ] || { echo "no BMC configured for node $node_id ($conf)" >&2; exit 2; }
bmc=$(sed -n 1p "$conf")
user=$(sed -n 2p "$conf")
pwfile=$(sed -n 3p "$conf")

ipmi() { ipmitool -I lanplus -H "$bmc" -U "$user" -f "$pwfile" -N 2 -R 2 "$@"; }

ipmi chassis power off >/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if ipmi chassis power status | grep -q 'is off'; then
    echo "fenced node $node_id ($host): powered off through $bmc"
    exit 0
  fi
  sleep 1
done
echo "node $node_id ($host): $bmc did not report power off" >&2
exit 1
