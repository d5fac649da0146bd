#!/bin/sh
# fence_nftables.sh - sample [fencing] command: cut a PostgreSQL node off for
# good with an nftables rule on the node itself, over ssh.
#
#   [policy]
#   on_unclean = fence
#   [fencing]
#   command = /usr/share/pgfailover/hooks/fence_nftables.sh %h %p
#
# It adds a table "pgfailover_fence" that drops every packet to and from the
# PostgreSQL port, so neither clients nor standbys reach the old primary
# again, whatever it believes about itself. The ssh user needs to be allowed
# to run exactly `sudo -n /usr/sbin/nft -f -` (a sudoers line for it).
#
# When the node cannot be reached, this fails (exit status of ssh: 255) and
# pgfailover promotes nothing (exit 7): a fence that did not happen must not
# count as one. Use an out-of-band fence (fence_ipmi.sh, a cloud API, a switch
# port) for nodes that can vanish from the network.
#
# Undo, once the node is known safe (for example rebuilt as a standby):
#   ssh NODE sudo nft delete table inet pgfailover_fence
set -eu
host=$1
port=$2
ssh_user=${PGFO_FENCE_SSH_USER:-postgres}

ssh -o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=2 -o ServerAliveCountMax=2 \
    "$ssh_user@$host" -- sudo -n /usr/sbin/nft -f - <<NFT
table inet pgfailover_fence {
  chain input { type filter hook input priority -200; policy accept; tcp dport $port drop; }
  chain output { type filter hook output priority -200; policy accept; tcp sport $port drop; }
}
NFT
echo "fenced $host: tcp port $port dropped by nftables table inet pgfailover_fence"
