#!/usr/bin/perl
# The Perl binding against real PostgreSQL servers (primary node 0, standby
# node 1), set up by tests/ffi/run_perl_tests.py, which passes:
#   PGFO_TEST_CONFIG    pgfailover.conf for the cluster
#   PGFO_TEST_STOP0     JSON argv that stops node 0 in fast mode
use strict;
use warnings;
use JSON::PP;
use Test::More;

use PgFailover qw(:all);

my $cfg = $ENV{PGFO_TEST_CONFIG} or plan skip_all => 'PGFO_TEST_CONFIG not set (run_perl_tests.py sets it)';
my @stop0 = @{ decode_json($ENV{PGFO_TEST_STOP0}) };

my $ctx = PgFailover->new(config => $cfg);
is($ctx->ping_node(0), PGFO_PING_OK, 'node 0 answers');
is($ctx->ping_node(1), PGFO_PING_OK, 'node 1 answers');

# A running node: wait_shutdown times out with code 6.
eval { $ctx->wait_shutdown(0, 0.5) };
is(ref $@ && $@->code, PGFO_ERR_TIMEOUT, 'running node: timeout, code 6');
is(ref $@ && $@->name, 'PGFO_ERR_TIMEOUT', 'running node: name');

is(system(@stop0), 0, 'pg_ctl stop -m fast');
ok(eval { $ctx->wait_shutdown(0, 30); 1 }, 'wait_shutdown after the stop') or diag $@;

my $cp = $ctx->read_checkpoint(0);
is($cp->{state}, PGFO_DB_SHUTDOWNED, 'pg_control: shut down');
ok($cp->{clean}, 'clean shutdown checkpoint');
cmp_ok($cp->{checkpoint_end}, '>', $cp->{checkpoint}, 'checkpoint end after its start');
is($cp->{timeline}, 1, 'timeline 1');

my $reached = $ctx->wait_flush(1, $cp->{checkpoint_end}, 20);
cmp_ok($reached, '>=', $cp->{checkpoint_end}, 'standby flushed the checkpoint record');

my @events;
$ctx->on_event(sub {
    my ($ev) = @_;
    push @events, $ev;
    die "a bug in the operator's callback\n" if $ev->{seq} == 2;
});
eval { $ctx->failover(0, 1, 0) };
isa_ok($@, 'PgFailover::CallbackError', 'callback error reported after the run');
my $report = $ctx->result;
is($report->{status}, 'PGFO_OK', 'failover succeeded');
ok($report->{verdict}{promoted}, 'promoted');
is($report->{verdict}{old_primary_rejoin}, 'clean', 'old primary can rejoin cleanly');
is($report->{verdict}{checkpoint_end}, PgFailover::lsn_format($cp->{checkpoint_end}), 'checkpoint end in the verdict');

is_deeply([map { $_->{seq} } @events], [1 .. scalar @events], 'events numbered 1..n in order');
is($events[0]{name}, 'failover.started', 'first event');
is($events[-1]{name}, 'failover.succeeded', 'last event');
my %runs = map { $_->{data}{run_id} => 1 } @events;
is(scalar(keys %runs), 1, 'one run id');
ok((grep { $_->{name} eq 'step.succeeded' && $_->{step} eq 'promote' } @events), 'promote step event');

undef $ctx;    # DESTROY frees the handle
pass('context destroyed');

done_testing();
