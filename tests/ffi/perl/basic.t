#!/usr/bin/perl
# The Perl binding (bindings/perl, FFI::Platypus) without servers: versions,
# LSN helpers, errors as objects, callbacks with a node that is not there.
# $PGFAILOVER_LIBRARY names the library just built.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;

use PgFailover qw(:all);

is(PgFailover::version(), '0.1.0', 'version');
is(PgFailover::version_number(), 100, 'version number');
is(PgFailover::status_name(6), 'PGFO_ERR_TIMEOUT', 'status name');

is(PgFailover::lsn_parse('0/6F6F558'), 0x6F6F558, 'lsn_parse');
is(PgFailover::lsn_format((0x16 << 32) | 0xB374D848), '16/B374D848', 'lsn_format');
is(PgFailover::lsn_format(PgFailover::lsn_parse('FFFFFFFF/FFFFFFFF')), 'FFFFFFFF/FFFFFFFF', 'top LSN');
eval { PgFailover::lsn_parse('1/2/3') };
is(ref $@ && $@->code, 2, 'bad LSN: code 2');

my $dir = tempdir(CLEANUP => 1);
my $bad = "$dir/bad.conf";
open my $fh, '>', $bad or die $!;
print $fh "[policy]\non_unclean = maybe\n";
close $fh;

my $ctx = PgFailover->new;
eval { $ctx->load_config($bad) };
my $e = $@;
isa_ok($e, 'PgFailover::Error', 'bad config');
is($e->code, 3, 'bad config: code 3');
is($e->name, 'PGFO_ERR_CONFIG', 'bad config: name');
like($e->message, qr/on_unclean/, 'bad config: message names the key');
like("$e", qr/\(PGFO_ERR_CONFIG, code 3\)/, 'stringifies with name and code');
is($ctx->errmsg, $e->message, 'errmsg');

eval { PgFailover->new(config => $bad) };
is(ref $@ && $@->code, 3, 'new(config => bad): code 3');

for my $call ([wait_shutdown => 3, 0.1], [ping_node => 3], [read_checkpoint => 3], [failover => 3, 4, 3]) {
    my ($m, @args) = @$call;
    eval { $ctx->$m(@args) };
    is(ref $@ && $@->code, 2, "$m on an unknown node: code 2");
    like(ref $@ && $@->message, qr/node 3/, "$m: message names the node");
}
is_deeply($ctx->result, {}, 'no run: empty report');
ok(eval { $ctx->flush_events(0); 1 }, 'flush_events without webhooks') or diag $@;

# A node with no server: wait_shutdown finds it down at once.
my $data = "$dir/data";
mkdir $data or die $!;
open $fh, '>', "$data/PG_VERSION" or die $!;
print $fh "15\n";
close $fh;
my $port = $ENV{PGFO_TEST_FREE_PORT} || 1;
$ctx->set('node.0', host => '127.0.0.1');
$ctx->set('node.0', port => $port);
$ctx->set('node.0', data_directory => $data);
$ctx->set('node.0', access => 'local');

my (@events, @lines);
$ctx->on_event(sub { my ($ev) = @_; push @events, $ev; die "callback bug $ev->{seq}\n" });
$ctx->on_log(sub { push @lines, [@_] });
eval { $ctx->wait_shutdown(0, 5) };
$e = $@;
isa_ok($e, 'PgFailover::CallbackError', 'a dying callback');
is(scalar($e->errors), 4, 'every callback error kept');
is(($e->errors)[0], "callback bug 1\n", 'first error');
is_deeply([map { $_->{seq} } @events], [1, 2, 3, 4], 'events in order');
is($events[1]{step}, 'wait_shutdown', 'step name');
is($events[1]{data}{event}, 'step.started', 'event JSON decoded');
is($ctx->result->{status}, 'PGFO_OK', 'the step still ran to the end');
ok((grep { $_->[1] =~ /is down/ } @lines), 'log callback');

$ctx->on_event(sub { $ctx->set_dry_run(1) });
eval { $ctx->wait_shutdown(0, 5) };
is(ref $@ && ($@->errors)[0]->code, 2, 'a callback must not call into its context');
$ctx->on_event(undef);
ok(eval { $ctx->wait_shutdown(0, 5); 1 }, 'callback removed') or diag $@;

$ctx->on_event(sub { die "again\n" });
eval { $ctx->read_checkpoint(0) };
isa_ok($@, 'PgFailover::Error', 'failed call with a dying callback');
ok(scalar($@->callback_errors) > 0, 'callback errors attached');

$ctx->close;
eval { $ctx->set_dry_run(1) };
is(ref $@ && $@->code, 2, 'closed context');

done_testing();
