#!/usr/bin/perl
# Fence the old primary with a command of your own, then fail over step by
# step with libpgfailover. Nothing is promoted unless the fencing command
# exits 0 and the old primary's shutdown checkpoint has reached the candidate.
#
#   failover_with_fencing.pl --config /etc/pgfailover/pgfailover.conf \
#       --failed 0 --candidate 1 [--sync-names ''] [--timeout 60] [--force-unclean] \
#       -- /usr/local/sbin/fence-node db1.example.com
#
# The fencing command is run as an argument list, never through a shell. It
# must make sure the old primary cannot accept writes any more (power it off,
# cut it from the network, stop PostgreSQL over a management interface) and
# exit 0 only when that is done.
#
# Steps: fence, wait_shutdown, read_checkpoint, wait_flush, set_sync_standbys,
# promote, switch_point (old primary can rejoin without pg_rewind if the new
# timeline forked at or after the end of its shutdown checkpoint).
#
# Exit status: 0 promoted; 1 fencing failed (not promoted); otherwise the
# library's status code of the step that failed (e.g. 6 timeout).
use strict;
use warnings;
use Getopt::Long qw(GetOptions);

use PgFailover qw(:all);

my %o = (timeout => -1, 'sync-names' => '');
GetOptions(\%o, 'config=s', 'failed=i', 'candidate=i', 'timeout=f', 'sync-names=s',
           'force-unclean', 'help')
    or usage();
usage() if $o{help} || !defined $o{failed} || !defined $o{candidate} || !@ARGV;
my @fence = @ARGV;

sub usage {
    print STDERR "usage: $0 --config FILE --failed N --candidate N [--timeout S]"
               . " [--sync-names VALUE] [--force-unclean] -- FENCE-COMMAND [ARG...]\n";
    exit 2;
}

sub say_step { printf "%-18s %s\n", @_ }

my $ctx = eval { PgFailover->new(config => $o{config}) } or do {
    print STDERR "pgfailover: $@";
    exit(ref $@ ? $@->code : 1);
};
$ctx->on_log(sub { my ($level, $line) = @_; print STDERR "  log: $line\n" if $level >= PGFO_LOG_WARNING });

my $rc = eval {
    # 1. fencing: the old primary must be out before anything else happens.
    say_step(fence => join(' ', @fence));
    my $status = system { $fence[0] } @fence;
    if ($status != 0) {
        my $why = $status == -1 ? "could not run: $!"
                : $status & 127 ? 'killed by signal ' . ($status & 127)
                :                 'exit status ' . ($status >> 8);
        print STDERR "fencing failed ($why): not promoting node $o{candidate}\n";
        return 1;
    }

    # 2. the old primary is down (ping and postmaster.pid).
    $ctx->wait_shutdown($o{failed}, $o{timeout});
    say_step(wait_shutdown => "node $o{failed} is down");

    # 3. its last checkpoint, and where that record ends.
    my $cp = $ctx->read_checkpoint($o{failed});
    if (!$cp->{clean}) {
        print STDERR "node $o{failed} did not shut down cleanly (pg_control state $cp->{state}):"
                   . " it will need pg_rewind to rejoin\n";
        return PGFO_ERR_UNCLEAN unless $o{'force-unclean'};
    } else {
        say_step(read_checkpoint => sprintf('checkpoint %s ends at %s, timeline %d',
            PgFailover::lsn_format($cp->{checkpoint}), PgFailover::lsn_format($cp->{checkpoint_end}),
            $cp->{timeline}));

        # 4. the candidate has that record.
        my $reached = $ctx->wait_flush($o{candidate}, $cp->{checkpoint_end}, $o{timeout});
        say_step(wait_flush => 'candidate flushed ' . PgFailover::lsn_format($reached));
    }

    # 5. commits on the new primary must not wait for a standby that is gone.
    $ctx->set_sync_standbys($o{candidate}, $o{'sync-names'});
    say_step(sync_standbys => "'$o{'sync-names'}'");

    # 6. promote.
    $ctx->promote($o{candidate}, $o{timeout});
    say_step(promote => "node $o{candidate} is the primary");

    # 7. where the new timeline forked: can the old primary follow as it is?
    my $sp = $ctx->switch_point($o{candidate}, $cp->{timeline});
    my $clean = $cp->{clean} && $sp->{point} >= $cp->{checkpoint_end};
    say_step(switch_point => sprintf('timeline %d forked at %s: old primary %s', $sp->{timeline},
        PgFailover::lsn_format($sp->{point}), $clean ? 'can rejoin as it is' : 'needs pg_rewind'));
    return 0;
};
if (!defined $rc) {
    my $e = $@;
    print STDERR "pgfailover: $e";
    exit(ref $e && $e->can('code') && $e->code ? $e->code : 1);
}
exit $rc;
