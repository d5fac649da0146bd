package PgFailover;

# Perl binding of libpgfailover (include/pgfailover.h) over FFI::Platypus.

use strict;
use warnings;

use Carp qw(croak);
use FFI::Platypus 1.00;
use FFI::Platypus::Memory qw(malloc free);
use JSON::PP ();

our $VERSION = '0.1.0';

use constant {
    PGFO_OK => 0, PGFO_ERR_INTERNAL => 1, PGFO_ERR_USAGE => 2, PGFO_ERR_CONFIG => 3,
    PGFO_ERR_CONNECT => 4, PGFO_ERR_QUERY => 5, PGFO_ERR_TIMEOUT => 6,
    PGFO_ERR_UNCLEAN => 7, PGFO_ERR_REFUSED => 8, PGFO_ERR_LOCKED => 9,
    PGFO_ERR_PG_CONTROL => 10, PGFO_ERR_WAL => 11, PGFO_ERR_EXEC => 12,
    PGFO_ERR_STATE => 13, PGFO_ERR_NOMEM => 14, PGFO_ERR_CANCELLED => 15, PGFO_ERR_CHECK => 16,
    PGFO_ERR_SPLIT_BRAIN => 17, PGFO_ERR_IDENTITY => 18,

    PGFO_LOG_DEBUG => 1, PGFO_LOG_INFO => 2, PGFO_LOG_WARNING => 3, PGFO_LOG_ERROR => 4,
    PGFO_LOG_OFF => 6,

    PGFO_PING_OK => 0, PGFO_PING_REJECT => 1, PGFO_PING_NO_RESPONSE => 2,
    PGFO_PING_NO_ATTEMPT => 3,

    PGFO_DB_STARTUP => 0, PGFO_DB_SHUTDOWNED => 1, PGFO_DB_SHUTDOWNED_IN_RECOVERY => 2,
    PGFO_DB_SHUTDOWNING => 3, PGFO_DB_IN_CRASH_RECOVERY => 4,
    PGFO_DB_IN_ARCHIVE_RECOVERY => 5, PGFO_DB_IN_PRODUCTION => 6,
};

our @EXPORT_OK = grep { /^PGFO_/ } keys %PgFailover::;
our %EXPORT_TAGS = (all => \@EXPORT_OK);
use Exporter 'import';

my $ffi = FFI::Platypus->new(api => 1);
$ffi->lib($ENV{PGFAILOVER_LIBRARY} || 'libpgfailover.so.1');

$ffi->type('(int,string,opaque)->void' => 'pgfo_log_fn');
$ffi->type('(opaque,opaque)->void'     => 'pgfo_event_fn');

# Every function of include/pgfailover.h. Handles are opaque pointers.
my %C;
for my $f (
    [pgfo_version_number => [] => 'int'],
    [pgfo_version => [] => 'string'],
    [pgfo_strerror => ['int'] => 'string'],
    [pgfo_status_name => ['int'] => 'string'],
    [pgfo_ctx_new => ['opaque*'] => 'int'],
    [pgfo_ctx_free => ['opaque'] => 'void'],
    [pgfo_ctx_errmsg => ['opaque'] => 'string'],
    [pgfo_ctx_load_config => ['opaque', 'string'] => 'int'],
    [pgfo_ctx_set => ['opaque', 'string', 'string', 'string'] => 'int'],
    [pgfo_ctx_set_dry_run => ['opaque', 'int'] => 'int'],
    [pgfo_ctx_set_log_stderr => ['opaque', 'int'] => 'int'],
    [pgfo_ctx_set_log_callback => ['opaque', 'pgfo_log_fn', 'opaque'] => 'int'],
    [pgfo_ctx_set_event_callback => ['opaque', 'pgfo_event_fn', 'opaque'] => 'int'],
    [pgfo_event_name => ['opaque'] => 'string'],
    [pgfo_event_step => ['opaque'] => 'string'],
    [pgfo_event_json => ['opaque'] => 'string'],
    [pgfo_event_seq => ['opaque'] => 'uint64'],
    [pgfo_lsn_parse => ['string', 'uint64*'] => 'int'],
    [pgfo_lsn_format => ['uint64', 'opaque', 'size_t'] => 'int'],
    [pgfo_ping_node => ['opaque', 'int', 'int*'] => 'int'],
    [pgfo_wait_shutdown => ['opaque', 'int', 'double'] => 'int'],
    [pgfo_read_checkpoint => ['opaque', 'int', 'int*', 'uint64*', 'uint64*', 'uint32*'] => 'int'],
    [pgfo_wait_flush => ['opaque', 'int', 'uint64', 'double', 'uint64*'] => 'int'],
    [pgfo_set_sync_standbys => ['opaque', 'int', 'string'] => 'int'],
    [pgfo_promote => ['opaque', 'int', 'double'] => 'int'],
    [pgfo_switch_point => ['opaque', 'int', 'uint32', 'uint64*', 'uint32*'] => 'int'],
    [pgfo_failover_pgpool => ['opaque', 'int', 'string[]'] => 'int'],
    [pgfo_failover => ['opaque', 'int', 'int', 'int'] => 'int'],
    [pgfo_follow_primary_pgpool => ['opaque', 'int', 'string[]'] => 'int'],
    [pgfo_follow_primary => ['opaque', 'int', 'int'] => 'int'],
    [pgfo_switchover => ['opaque', 'int'] => 'int'],
    [pgfo_rejoin_decision => ['opaque', 'int', 'int', 'int*'] => 'int'],
    [pgfo_emit_event => ['opaque', 'string', 'string'] => 'int'],
    [pgfo_status => ['opaque'] => 'int'],
    [pgfo_check => ['opaque'] => 'int'],
    [pgfo_ctx_result_json => ['opaque'] => 'string'],
    # since webhooks; older libraries lack it (flush_events then dies)
    [pgfo_ctx_flush_events => ['opaque', 'double'] => 'int', 'optional'],
    # since step contracts
    [pgfo_plan => ['opaque', 'string'] => 'int', 'optional'],
) {
    my ($name, $args, $ret, $optional) = @$f;
    next if $optional && !$ffi->find_symbol($name);
    $C{$name} = $ffi->function($name, $args, $ret);
}

# ---- free functions ---------------------------------------------------------

sub version        { $C{pgfo_version}->call() }
sub version_number { $C{pgfo_version_number}->call() }
sub strerror       { $C{pgfo_strerror}->call($_[-1]) }
sub status_name    { $C{pgfo_status_name}->call($_[-1]) }

sub lsn_parse {
    my $text = $_[-1];
    my $v = 0;
    my $rc = $C{pgfo_lsn_parse}->call(defined $text ? "$text" : undef, \$v);
    die PgFailover::Error->new($rc, "not an LSN: " . (defined $text ? "'$text'" : 'undef'))
        if $rc != PGFO_OK;
    return $v;
}

sub lsn_format {
    my $lsn = $_[-1];
    my $buf = malloc(32);
    my $rc = $C{pgfo_lsn_format}->call($lsn, $buf, 32);
    my $text = $rc == PGFO_OK ? $ffi->cast('opaque' => 'string', $buf) : undef;
    free($buf);
    die PgFailover::Error->new($rc, strerror($rc)) if $rc != PGFO_OK;
    return $text;
}

# ---- contexts ------------------------------------------------------------------
#
# my $ctx = PgFailover->new(config => $path);   # or new() and load_config later
#
# Every method dies with a PgFailover::Error (code, name, message) when the C
# call returns a status other than PGFO_OK. Callbacks (on_event, on_log) run
# inside the C call; a callback that dies does not unwind through C: the error
# is caught and remembered, the C call runs to completion, then the method dies
# with the PgFailover::Error of the call if it failed (callback errors in
# ->callback_errors), or with a PgFailover::CallbackError if it succeeded (what
# the call did stays done: ->result has the report).

sub new {
    my ($class, %opt) = @_;
    my $h;
    my $rc = $C{pgfo_ctx_new}->call(\$h);
    die PgFailover::Error->new($rc, strerror($rc)) if $rc != PGFO_OK;
    my $self = bless { h => $h, errbox => [], depth => 0 }, $class;
    $self->load_config($opt{config}) if exists $opt{config};
    $self->set_dry_run($opt{dry_run}) if exists $opt{dry_run};
    $self->on_event($opt{on_event}) if $opt{on_event};
    $self->on_log($opt{on_log}) if $opt{on_log};
    return $self;
}

sub close {
    my ($self) = @_;
    croak "close() from a callback of the same context" if $self->{depth};
    if (my $h = delete $self->{h}) {
        $C{pgfo_ctx_free}->call($h);
    }
    delete @{$self}{qw(event_closure log_closure)};
    return;
}

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT' && !$self->{h};
    if (my $h = delete $self->{h}) {
        $C{pgfo_ctx_free}->call($h);
    }
}

sub _call {
    my ($self, $name, @args) = @_;
    die PgFailover::Error->new(PGFO_ERR_USAGE, "a callback must not call into the same context")
        if $self->{depth};
    die PgFailover::Error->new(PGFO_ERR_USAGE, "the context is closed") unless $self->{h};
    @{ $self->{errbox} } = ();
    $self->{depth}++;
    my $rc = eval { $C{$name}->call($self->{h}, @args) };
    my $perl_err = $@;
    $self->{depth}--;
    die $perl_err unless defined $rc;
    my @errors = @{ $self->{errbox} };
    @{ $self->{errbox} } = ();
    if ($rc != PGFO_OK) {
        my $e = PgFailover::Error->new($rc, $C{pgfo_ctx_errmsg}->call($self->{h}));
        $e->{callback_errors} = \@errors;
        die $e;
    }
    die PgFailover::CallbackError->new(\@errors) if @errors;
    return $rc;
}

sub errmsg {
    my ($self) = @_;
    return $self->{h} ? $C{pgfo_ctx_errmsg}->call($self->{h}) : '';
}

# Wait up to $budget seconds (negative: delivery_budget) for pending webhook
# deliveries; dies with code 6 when some had to be spooled.
sub flush_events {
    my ($self, $budget) = @_;
    die PgFailover::Error->new(PGFO_ERR_USAGE, "this libpgfailover has no pgfo_ctx_flush_events")
        unless $C{pgfo_ctx_flush_events};
    $self->_call(pgfo_ctx_flush_events => $budget // -1);
}

sub load_config   { my ($self, $path) = @_; $self->_call(pgfo_ctx_load_config => $path) }
sub set           { my ($self, @skv) = @_; $self->_call(pgfo_ctx_set => map { "$_" } @skv[0 .. 2]) }
sub set_dry_run   { my ($self, $on) = @_; $self->_call(pgfo_ctx_set_dry_run => $on ? 1 : 0) }
sub set_log_stderr { my ($self, $lvl) = @_; $self->_call(pgfo_ctx_set_log_stderr => $lvl) }

# on_event(sub { my ($event) = @_; ... }): $event is a hashref with seq, name,
# step and data (the event's JSON, decoded). undef removes the callback.
sub on_event {
    my ($self, $cb) = @_;
    unless ($cb) {
        $self->_call(pgfo_ctx_set_event_callback => undef, undef);
        delete $self->{event_closure};
        return;
    }
    my $errbox = $self->{errbox};    # not $self: no reference cycle
    my $closure = $ffi->closure(sub {
        my ($ev) = @_;
        local $@;
        my $ok = eval {
            my $json = $C{pgfo_event_json}->call($ev);
            my $data = eval { JSON::PP->new->utf8->decode($json) } // { json => $json };
            $cb->({
                seq  => $C{pgfo_event_seq}->call($ev),
                name => $C{pgfo_event_name}->call($ev),
                step => $C{pgfo_event_step}->call($ev),
                data => $data,
            });
            1;
        };
        push @$errbox, ($@ || 'callback died') unless $ok;
        return;
    });
    $self->_call(pgfo_ctx_set_event_callback => $closure, undef);
    $self->{event_closure} = $closure;    # C holds the pointer: keep it alive
    return;
}

# on_log(sub { my ($level, $line) = @_; ... }); undef removes it.
sub on_log {
    my ($self, $cb) = @_;
    unless ($cb) {
        $self->_call(pgfo_ctx_set_log_callback => undef, undef);
        delete $self->{log_closure};
        return;
    }
    my $errbox = $self->{errbox};    # not $self: no reference cycle
    my $closure = $ffi->closure(sub {
        my ($level, $line) = @_;
        local $@;
        my $ok = eval { $cb->($level, $line); 1 };
        push @$errbox, ($@ || 'callback died') unless $ok;
        return;
    });
    $self->_call(pgfo_ctx_set_log_callback => $closure, undef);
    $self->{log_closure} = $closure;
    return;
}

sub ping_node {
    my ($self, $node) = @_;
    my $r = -1;
    $self->_call(pgfo_ping_node => $node, \$r);
    return $r;
}

sub wait_shutdown {
    my ($self, $node, $timeout) = @_;
    $self->_call(pgfo_wait_shutdown => $node, $timeout // -1);
}

# Returns { state, checkpoint, checkpoint_end, timeline, clean }.
sub read_checkpoint {
    my ($self, $node) = @_;
    my ($state, $cp, $end, $tli) = (-1, 0, 0, 0);
    $self->_call(pgfo_read_checkpoint => $node, \$state, \$cp, \$end, \$tli);
    return {
        state => $state, checkpoint => $cp, checkpoint_end => $end, timeline => $tli,
        clean => ($state == PGFO_DB_SHUTDOWNED && $end != 0) ? 1 : 0,
    };
}

# Returns the position reached; on a timeout the error has ->{reached}.
sub wait_flush {
    my ($self, $node, $target, $timeout) = @_;
    my $reached = 0;
    eval { $self->_call(pgfo_wait_flush => $node, $target, $timeout // -1, \$reached); 1 } or do {
        my $e = $@;
        $e->{reached} = $reached if ref $e && $e->isa('PgFailover::Error');
        die $e;
    };
    return $reached;
}

sub set_sync_standbys {
    my ($self, $node, $value) = @_;
    $self->_call(pgfo_set_sync_standbys => $node, defined $value ? "$value" : undef);
}

sub promote {
    my ($self, $node, $timeout) = @_;
    $self->_call(pgfo_promote => $node, $timeout // -1);
}

# Returns { point, timeline }.
sub switch_point {
    my ($self, $node, $parent_tli) = @_;
    my ($point, $tli) = (0, 0);
    $self->_call(pgfo_switch_point => $node, $parent_tli, \$point, \$tli);
    return { point => $point, timeline => $tli };
}

sub failover {
    my ($self, $failed, $candidate, $old_primary) = @_;
    $self->_call(pgfo_failover => $failed, $candidate, $old_primary);
    return $self->result;
}

sub failover_pgpool {
    my ($self, @args) = @_;
    $self->_call(pgfo_failover_pgpool => scalar(@args), [map { "$_" } @args]);
    return $self->result;
}

sub follow_primary {
    my ($self, $follower, $primary) = @_;
    $self->_call(pgfo_follow_primary => $follower, $primary);
    return $self->result;
}

sub follow_primary_pgpool {
    my ($self, @args) = @_;
    $self->_call(pgfo_follow_primary_pgpool => scalar(@args), [map { "$_" } @args]);
    return $self->result;
}

# True when the stopped follower can follow the primary without pg_rewind.
sub rejoin_decision {
    my ($self, $follower, $primary) = @_;
    my $ok = 0;
    $self->_call(pgfo_rejoin_decision => $follower, $primary, \$ok);
    return $ok ? 1 : 0;
}

# Publish an event of your own (callback and webhooks); $fields a hash ref.
sub emit_event {
    my ($self, $name, $fields) = @_;
    $self->_call(pgfo_emit_event => $name, defined $fields ? JSON::PP->new->canonical->encode($fields) : undef);
    return;
}

sub switchover {
    my ($self, $target) = @_;
    $self->_call(pgfo_switchover => $target);
    return $self->result;
}

# Array ref of every configured node.
sub status {
    my ($self) = @_;
    $self->_call('pgfo_status');
    return $self->result->{cluster};
}

# The built-in step tables with their contracts: array ref of procedures
# (procedure: 'failover', 'follow-primary', 'switchover', 'single-steps', or undef for all).
sub plan {
    my ($self, $procedure) = @_;
    $self->_call(pgfo_plan => $procedure);
    return $self->result->{procedures};
}

# Array ref of problems ([] when none); problems are returned, not thrown.
sub check {
    my ($self) = @_;
    eval { $self->_call('pgfo_check'); 1 } or do {
        my $e = $@;
        die $e unless ref $e && $e->code == PGFO_ERR_CHECK();
    };
    return $self->result->{problems} // [];
}

sub result_json {
    my ($self) = @_;
    die PgFailover::Error->new(PGFO_ERR_USAGE, "the context is closed") unless $self->{h};
    return $C{pgfo_ctx_result_json}->call($self->{h});
}

sub result { JSON::PP->new->utf8->decode($_[0]->result_json) }

# ---- errors ----------------------------------------------------------------------

package PgFailover::Error;

use overload '""' => \&as_string, fallback => 1;

sub new {
    my ($class, $code, $message) = @_;
    return bless {
        code => $code,
        name => PgFailover::status_name($code),
        message => defined $message && length $message ? $message : PgFailover::strerror($code),
        callback_errors => [],
    }, $class;
}

sub code            { $_[0]{code} }
sub name            { $_[0]{name} }
sub message         { $_[0]{message} }
sub callback_errors { @{ $_[0]{callback_errors} } }
sub as_string       { my $s = shift; "$s->{message} ($s->{name}, code $s->{code})\n" }

package PgFailover::CallbackError;

use overload '""' => \&as_string, fallback => 1;

sub new {
    my ($class, $errors) = @_;
    return bless { errors => [@$errors], code => 0 }, $class;
}

sub errors    { @{ $_[0]{errors} } }
sub code      { 0 }
sub as_string {
    my $s = shift;
    my $first = "$s->{errors}[0]";
    chomp $first;
    return scalar(@{ $s->{errors} }) . " error(s) in pgfailover callbacks, first: $first\n";
}

1;

__END__

=head1 NAME

PgFailover - Perl binding of libpgfailover (safe PostgreSQL failover behind pgpool-II)

=head1 SYNOPSIS

    use PgFailover qw(:all);

    my $ctx = PgFailover->new(config => '/etc/pgfailover/pgfailover.conf');
    $ctx->on_event(sub { my ($ev) = @_; print "$ev->{seq} $ev->{name} $ev->{step}\n" });
    my $report = eval { $ctx->failover(0, 1, 0) };
    if (my $e = $@) {
        die $e unless ref $e;
        printf "failed: %d %s %s\n", $e->code, $e->name, $e->message;
    }

=head1 DESCRIPTION

The library is C<$ENV{PGFAILOVER_LIBRARY}> if set when the module is loaded,
else C<libpgfailover.so.1> from the dynamic loader's search path.

Methods mirror the C functions of C<include/pgfailover.h>: C<load_config>,
C<set>, C<set_dry_run>, C<set_log_stderr>, C<on_event>, C<on_log>,
C<ping_node>, C<wait_shutdown>, C<read_checkpoint> (hashref), C<wait_flush>
(position reached), C<set_sync_standbys>, C<promote>, C<switch_point>
(hashref), C<failover>, C<failover_pgpool>, C<result> (the report, decoded).
Free functions: C<version>, C<version_number>, C<strerror>, C<status_name>,
C<lsn_parse>, C<lsn_format>.

A status other than C<PGFO_OK> dies with a C<PgFailover::Error> object
(C<code>, C<name>, C<message>; stringifies to "message (NAME, code N)").

Callbacks run inside the C call on the calling thread. One that dies is
caught before the error can unwind through C; the call completes, then the
method dies with the call's C<PgFailover::Error> if it failed (callback errors
in C<callback_errors>) or with a C<PgFailover::CallbackError> (C<errors>) if it
succeeded. A callback must not call into the same context.

The handle is freed by C<close> or when the object is destroyed.

=cut
