"""Python binding of libpgfailover (include/pgfailover.h) over ctypes.

Nothing to compile: the package loads libpgfailover.so.1 at first use, from
$PGFAILOVER_LIBRARY if set, else where ctypes.util.find_library("pgfailover")
finds it, else "libpgfailover.so.1" through the dynamic loader's search path.

    import pgfailover

    with pgfailover.Context("/etc/pgfailover/pgfailover.conf") as ctx:
        ctx.on_event(lambda ev: print(ev.seq, ev.name, ev.step))
        ctx.failover(0, 1, 0)              # raises PgfoError on failure
        print(ctx.result()["verdict"])

Errors: every non-OK status raises PgfoError(code, name, message), where name is
pgfo_status_name(code) and message pgfo_ctx_errmsg() of the context.

Callbacks (on_event, on_log) run on the calling thread while the C call runs.
An exception raised inside a callback never propagates into C: it is caught and
remembered, the C call runs to completion, and then:
  - if the C call failed, PgfoError is raised as usual; the callbacks'
    exceptions are in its .callback_errors (and the first is its __context__);
  - if the C call succeeded, CallbackError is raised, carrying the exceptions
    in .errors (the first is also its __cause__). What the call did stays done:
    Context.result() still has the run's report.
A callback must not call into the same context (PgfoError, code 2).

A Context may be used by one thread at a time (calls from other threads wait
for the current one); different contexts are independent.
"""

import ctypes
import ctypes.util
import dataclasses
import enum
import json
import os
import threading

__all__ = [
    "Status", "LogLevel", "Ping", "DbState", "PgfoError", "CallbackError",
    "Event", "Checkpoint", "SwitchPoint", "Context", "library", "version",
    "version_number", "strerror", "status_name", "lsn_parse", "lsn_format",
]

__version__ = "0.1.0"


class Status(enum.IntEnum):
    OK = 0
    ERR_INTERNAL = 1
    ERR_USAGE = 2
    ERR_CONFIG = 3
    ERR_CONNECT = 4
    ERR_QUERY = 5
    ERR_TIMEOUT = 6
    ERR_UNCLEAN = 7
    ERR_REFUSED = 8
    ERR_LOCKED = 9
    ERR_PG_CONTROL = 10
    ERR_WAL = 11
    ERR_EXEC = 12
    ERR_STATE = 13
    ERR_NOMEM = 14
    ERR_CANCELLED = 15
    ERR_CHECK = 16
    ERR_SPLIT_BRAIN = 17
    ERR_IDENTITY = 18


class LogLevel(enum.IntEnum):
    DEBUG = 1
    INFO = 2
    WARNING = 3
    ERROR = 4
    OFF = 6


class Ping(enum.IntEnum):
    OK = 0
    REJECT = 1
    NO_RESPONSE = 2
    NO_ATTEMPT = 3


class DbState(enum.IntEnum):
    STARTUP = 0
    SHUTDOWNED = 1
    SHUTDOWNED_IN_RECOVERY = 2
    SHUTDOWNING = 3
    IN_CRASH_RECOVERY = 4
    IN_ARCHIVE_RECOVERY = 5
    IN_PRODUCTION = 6


# ---- the C declarations -------------------------------------------------

class _Ctx(ctypes.Structure):
    """struct pgfo_ctx (opaque)."""


class _Event(ctypes.Structure):
    """struct pgfo_event (opaque)."""


_CtxP = ctypes.POINTER(_Ctx)
_EventP = ctypes.POINTER(_Event)
_status = ctypes.c_int
_u64 = ctypes.c_uint64
_u32 = ctypes.c_uint32

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
EVENT_FN = ctypes.CFUNCTYPE(None, _EventP, ctypes.c_void_p)

# name: (restype, argtypes) -- every function of include/pgfailover.h.
_PROTOTYPES = {
    "pgfo_version_number": (ctypes.c_int, []),
    "pgfo_version": (ctypes.c_char_p, []),
    "pgfo_strerror": (ctypes.c_char_p, [_status]),
    "pgfo_status_name": (ctypes.c_char_p, [_status]),
    "pgfo_ctx_new": (_status, [ctypes.POINTER(_CtxP)]),
    "pgfo_ctx_free": (None, [_CtxP]),
    "pgfo_ctx_errmsg": (ctypes.c_char_p, [_CtxP]),
    "pgfo_ctx_load_config": (_status, [_CtxP, ctypes.c_char_p]),
    "pgfo_ctx_set": (_status, [_CtxP, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]),
    "pgfo_ctx_set_dry_run": (_status, [_CtxP, ctypes.c_int]),
    "pgfo_ctx_set_log_stderr": (_status, [_CtxP, ctypes.c_int]),
    "pgfo_ctx_set_log_callback": (_status, [_CtxP, LOG_FN, ctypes.c_void_p]),
    "pgfo_ctx_set_event_callback": (_status, [_CtxP, EVENT_FN, ctypes.c_void_p]),
    "pgfo_event_name": (ctypes.c_char_p, [_EventP]),
    "pgfo_event_step": (ctypes.c_char_p, [_EventP]),
    "pgfo_event_json": (ctypes.c_char_p, [_EventP]),
    "pgfo_event_seq": (_u64, [_EventP]),
    "pgfo_lsn_parse": (_status, [ctypes.c_char_p, ctypes.POINTER(_u64)]),
    "pgfo_lsn_format": (_status, [_u64, ctypes.c_char_p, ctypes.c_size_t]),
    "pgfo_ping_node": (_status, [_CtxP, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
    "pgfo_wait_shutdown": (_status, [_CtxP, ctypes.c_int, ctypes.c_double]),
    "pgfo_read_checkpoint": (_status, [_CtxP, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(_u64), ctypes.POINTER(_u64),
                                       ctypes.POINTER(_u32)]),
    "pgfo_wait_flush": (_status, [_CtxP, ctypes.c_int, _u64, ctypes.c_double,
                                  ctypes.POINTER(_u64)]),
    "pgfo_set_sync_standbys": (_status, [_CtxP, ctypes.c_int, ctypes.c_char_p]),
    "pgfo_promote": (_status, [_CtxP, ctypes.c_int, ctypes.c_double]),
    "pgfo_switch_point": (_status, [_CtxP, ctypes.c_int, _u32, ctypes.POINTER(_u64),
                                    ctypes.POINTER(_u32)]),
    "pgfo_failover_pgpool": (_status, [_CtxP, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]),
    "pgfo_failover": (_status, [_CtxP, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "pgfo_follow_primary_pgpool": (_status, [_CtxP, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]),
    "pgfo_follow_primary": (_status, [_CtxP, ctypes.c_int, ctypes.c_int]),
    "pgfo_switchover": (_status, [_CtxP, ctypes.c_int]),
    "pgfo_rejoin_decision": (_status, [_CtxP, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
    "pgfo_emit_event": (_status, [_CtxP, ctypes.c_char_p, ctypes.c_char_p]),
    "pgfo_status": (_status, [_CtxP]),
    "pgfo_check": (_status, [_CtxP]),
    "pgfo_ctx_result_json": (ctypes.c_char_p, [_CtxP]),
    # since webhooks; absent from older libraries (see _OPTIONAL)
    "pgfo_ctx_flush_events": (_status, [_CtxP, ctypes.c_double]),
    # since step contracts; absent from older libraries
    "pgfo_plan": (_status, [_CtxP, ctypes.c_char_p]),
}

# Functions a library may lack (added after 0.1.0's first release): declared
# when the library exports them, else the method that needs one raises.
_OPTIONAL = {"pgfo_ctx_flush_events", "pgfo_plan"}

_lib = None
_lib_lock = threading.Lock()


def _library_path():
    path = os.environ.get("PGFAILOVER_LIBRARY")
    if path:
        return path
    return ctypes.util.find_library("pgfailover") or "libpgfailover.so.1"


def library():
    """The loaded ctypes.CDLL, with argtypes/restype set for every function."""
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(_library_path())
            for name, (restype, argtypes) in _PROTOTYPES.items():
                if name in _OPTIONAL and not hasattr(lib, name):
                    continue
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _lib = lib
        return _lib


def _text(b):
    return "" if b is None else b.decode("utf-8", errors="replace")


def _bytes(s, what):
    if isinstance(s, bytes):
        return s
    if isinstance(s, os.PathLike):
        return os.fsencode(s)
    if isinstance(s, str):
        return s.encode("utf-8")
    raise TypeError("%s must be str or bytes, not %s" % (what, type(s).__name__))


# ---- free functions ---------------------------------------------------------

def version():
    """Run-time library version text, e.g. "0.1.0"."""
    return _text(library().pgfo_version())


def version_number():
    """Run-time library version number, e.g. 100 for 0.1.0."""
    return library().pgfo_version_number()


def strerror(code):
    return _text(library().pgfo_strerror(int(code)))


def status_name(code):
    return _text(library().pgfo_status_name(int(code)))


def lsn_parse(text):
    """"0/6F6F558" -> int; PgfoError (code 2) on anything else."""
    v = _u64()
    rc = library().pgfo_lsn_parse(_bytes(text, "text"), ctypes.byref(v))
    if rc != Status.OK:
        raise PgfoError(rc, status_name(rc), "not an LSN: %r" % (text,))
    return v.value


def lsn_format(lsn):
    """int -> "0/6F6F558"."""
    if not 0 <= int(lsn) < 1 << 64:
        raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                        "LSN out of range: %r" % (lsn,))
    buf = ctypes.create_string_buffer(32)
    rc = library().pgfo_lsn_format(int(lsn), buf, len(buf))
    if rc != Status.OK:
        raise PgfoError(rc, status_name(rc), strerror(rc))
    return _text(buf.value)


# ---- exceptions and results -------------------------------------------------

class PgfoError(Exception):
    """A call returned a status other than PGFO_OK.

    code     the status code (int; Status(code) when it is a known one)
    name     pgfo_status_name(code), e.g. "PGFO_ERR_TIMEOUT"
    message  pgfo_ctx_errmsg() of the context (or a description)
    callback_errors  exceptions raised by callbacks during the call
    """

    def __init__(self, code, name, message):
        super().__init__(code, name, message)
        self.code = int(code)
        self.name = name
        self.message = message
        self.callback_errors = []

    def __str__(self):
        return "%s (%s, code %d)" % (self.message, self.name, self.code)


class CallbackError(Exception):
    """A callback raised during a C call that itself succeeded.

    errors  the exceptions, in the order they were raised
    status  the C call's status (0)
    """

    def __init__(self, errors, status=0):
        super().__init__("%d exception(s) in pgfailover callbacks, first: %r"
                         % (len(errors), errors[0]))
        self.errors = list(errors)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Event:
    """One event as the event callback receives it (copied out of C)."""
    seq: int
    name: str
    step: str
    data: dict

    @property
    def json(self):
        return json.dumps(self.data)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """pgfo_read_checkpoint(): pg_control state and the checkpoint's LSNs."""
    state: int
    checkpoint: int
    checkpoint_end: int
    timeline: int

    @property
    def clean(self):
        """A shutdown checkpoint whose end was found in WAL."""
        return self.state == DbState.SHUTDOWNED and self.checkpoint_end != 0

    @property
    def state_name(self):
        try:
            return DbState(self.state).name
        except ValueError:
            return "UNKNOWN(%d)" % self.state


@dataclasses.dataclass(frozen=True)
class SwitchPoint:
    point: int
    timeline: int


# ---- the context ---------------------------------------------------------------

class Context:
    """A pgfo_ctx_t: configuration, callbacks, the last error and the last report.

    Context(config=None) creates the handle; with a config path it also loads
    it (config=True loads the default: $PGFAILOVER_CONFIG or
    /etc/pgfailover/pgfailover.conf). close() (or leaving a `with` block, or
    garbage collection) frees it.
    """

    def __init__(self, config=None):
        self._lib = library()
        self._handle = None
        self._lock = threading.RLock()
        self._depth = 0
        self._errors = []
        self._event_fn = None   # the CFUNCTYPE objects C holds on to
        self._log_fn = None
        self._event_user = None
        self._log_user = None
        h = _CtxP()
        rc = self._lib.pgfo_ctx_new(ctypes.byref(h))
        if rc != Status.OK:
            raise PgfoError(rc, status_name(rc), strerror(rc))
        self._handle = h
        if config is True:
            self.load_config(None)
        elif config is not None:
            self.load_config(config)

    # lifecycle
    def close(self):
        """Free the handle (idempotent). Callbacks are dropped with it."""
        with self._lock:
            if self._depth:
                raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                                "close() from a callback of the same context")
            h, self._handle = self._handle, None
            if h:
                self._lib.pgfo_ctx_free(h)
            self._event_fn = self._log_fn = None

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            h, self._handle = self._handle, None
            if h:
                self._lib.pgfo_ctx_free(h)
        except Exception:       # noqa: BLE001 - interpreter shutdown
            pass

    # the one place C is called with a context
    def _call(self, fn, *args):
        with self._lock:
            if self._depth:
                raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                                "a callback must not call into the same context")
            if self._handle is None:
                raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                                "the context is closed")
            self._errors = []
            self._depth += 1
            try:
                rc = fn(self._handle, *args)
            finally:
                self._depth -= 1
            errors, self._errors = self._errors, []
            if rc != Status.OK:
                err = PgfoError(rc, status_name(rc), _text(self._lib.pgfo_ctx_errmsg(self._handle)))
                err.callback_errors = errors
                if errors:
                    raise err from errors[0]
                raise err
            if errors:
                raise CallbackError(errors) from errors[0]
            return rc

    @property
    def errmsg(self):
        """pgfo_ctx_errmsg(): message of the last failed call ("" after success)."""
        with self._lock:
            if self._handle is None:
                return ""
            return _text(self._lib.pgfo_ctx_errmsg(self._handle))

    def flush_events(self, budget_seconds=-1.0):
        """Wait up to budget_seconds for pending webhook deliveries
        (negative: the configured delivery_budget); PgfoError code 6 when some
        had to be spooled."""
        if not hasattr(self._lib, "pgfo_ctx_flush_events"):
            raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                            "this libpgfailover has no pgfo_ctx_flush_events")
        self._call(self._lib.pgfo_ctx_flush_events, float(budget_seconds))

    # configuration
    def load_config(self, path=None):
        """Load an INI file (None: $PGFAILOVER_CONFIG or /etc/pgfailover/pgfailover.conf)."""
        self._call(self._lib.pgfo_ctx_load_config, None if path is None else _bytes(path, "path"))

    def set(self, section, key, value):
        """One setting as the file would have it: set("policy", "on_unclean", "abort")."""
        self._call(self._lib.pgfo_ctx_set, _bytes(section, "section"), _bytes(key, "key"),
                   _bytes(str(value) if isinstance(value, (int, float)) else value, "value"))

    def set_dry_run(self, dry_run=True):
        self._call(self._lib.pgfo_ctx_set_dry_run, 1 if dry_run else 0)

    def set_log_stderr(self, level):
        self._call(self._lib.pgfo_ctx_set_log_stderr, int(level))

    # callbacks
    def on_event(self, fn):
        """Deliver every event to fn(Event) (None removes it). Returns fn."""
        if fn is None:
            self._call(self._lib.pgfo_ctx_set_event_callback, EVENT_FN(), None)
            self._event_fn = self._event_user = None
            return None
        lib = self._lib

        def trampoline(ev, _user):
            try:
                raw = lib.pgfo_event_json(ev)
                try:
                    data = json.loads(_text(raw))
                except ValueError:
                    data = {"json": _text(raw)}
                fn(Event(seq=lib.pgfo_event_seq(ev), name=_text(lib.pgfo_event_name(ev)),
                         step=_text(lib.pgfo_event_step(ev)), data=data))
            except BaseException as e:  # noqa: BLE001 - must not reach C
                self._errors.append(e)

        cfn = EVENT_FN(trampoline)
        self._call(self._lib.pgfo_ctx_set_event_callback, cfn, None)
        self._event_fn, self._event_user = cfn, fn
        return fn

    def on_log(self, fn):
        """Deliver every log line to fn(level: LogLevel, line: str) (None removes it)."""
        if fn is None:
            self._call(self._lib.pgfo_ctx_set_log_callback, LOG_FN(), None)
            self._log_fn = self._log_user = None
            return None

        def trampoline(level, line, _user):
            try:
                try:
                    lvl = LogLevel(level)
                except ValueError:
                    lvl = level
                fn(lvl, _text(line))
            except BaseException as e:  # noqa: BLE001 - must not reach C
                self._errors.append(e)

        cfn = LOG_FN(trampoline)
        self._call(self._lib.pgfo_ctx_set_log_callback, cfn, None)
        self._log_fn, self._log_user = cfn, fn
        return fn

    # single steps
    def ping_node(self, node_id):
        """libpq ping -> Ping."""
        r = ctypes.c_int(-1)
        self._call(self._lib.pgfo_ping_node, int(node_id), ctypes.byref(r))
        try:
            return Ping(r.value)
        except ValueError:
            return r.value

    def wait_shutdown(self, node_id, timeout=-1.0):
        """Wait until the node is down; PgfoError code 6 when still up after timeout s."""
        self._call(self._lib.pgfo_wait_shutdown, int(node_id), float(timeout))

    def read_checkpoint(self, node_id):
        """pg_control of the node -> Checkpoint."""
        state, cp, end, tli = ctypes.c_int(-1), _u64(), _u64(), _u32()
        self._call(self._lib.pgfo_read_checkpoint, int(node_id), ctypes.byref(state),
                   ctypes.byref(cp), ctypes.byref(end), ctypes.byref(tli))
        return Checkpoint(state.value, cp.value, end.value, tli.value)

    def wait_flush(self, node_id, target, timeout=-1.0):
        """Wait until the standby flushed WAL up to target; returns the position seen.

        On a timeout the PgfoError also has .reached."""
        reached = _u64()
        try:
            self._call(self._lib.pgfo_wait_flush, int(node_id), int(target), float(timeout),
                       ctypes.byref(reached))
        except PgfoError as e:
            e.reached = reached.value
            raise
        return reached.value

    def set_sync_standbys(self, node_id, value):
        self._call(self._lib.pgfo_set_sync_standbys, int(node_id), _bytes(value, "value"))

    def promote(self, node_id, timeout=-1.0):
        self._call(self._lib.pgfo_promote, int(node_id), float(timeout))

    def switch_point(self, node_id, parent_tli):
        """Where the node's timeline forked from parent_tli -> SwitchPoint."""
        point, tli = _u64(), _u32()
        self._call(self._lib.pgfo_switch_point, int(node_id), int(parent_tli),
                   ctypes.byref(point), ctypes.byref(tli))
        return SwitchPoint(point.value, tli.value)

    # whole sequences
    def failover(self, failed_node, candidate_node, old_primary_node):
        """The whole safe failover; returns the report (as result())."""
        self._call(self._lib.pgfo_failover, int(failed_node), int(candidate_node),
                   int(old_primary_node))
        return self.result()

    def failover_pgpool(self, *args):
        """pgpool's failover_command arguments (%d %h %p %D %m %H %M %P %r %R %N %S)."""
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        argv = (ctypes.c_char_p * (len(args) + 1))(*[_bytes(str(a) if isinstance(a, int) else a,
                                                             "argument") for a in args], None)
        self._call(self._lib.pgfo_failover_pgpool, len(args), argv)
        return self.result()

    def follow_primary(self, follower_node, primary_node):
        """follower_node becomes a standby of primary_node; returns the report."""
        self._call(self._lib.pgfo_follow_primary, int(follower_node), int(primary_node))
        return self.result()

    def follow_primary_pgpool(self, *args):
        """pgpool's follow_primary_command arguments (same order as failover_pgpool)."""
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        argv = (ctypes.c_char_p * (len(args) + 1))(*[_bytes(str(a) if isinstance(a, int) else a,
                                                             "argument") for a in args], None)
        self._call(self._lib.pgfo_follow_primary_pgpool, len(args), argv)
        return self.result()

    def rejoin_decision(self, follower_node, primary_node):
        """True when the stopped follower can follow primary_node without
        pg_rewind (the numbers are in result())."""
        ok = ctypes.c_int(0)
        self._call(self._lib.pgfo_rejoin_decision, int(follower_node), int(primary_node), ctypes.byref(ok))
        return bool(ok.value)

    def emit_event(self, name, fields=None):
        """Publish an event of your own (callback and webhooks)."""
        data = None if fields is None else json.dumps(fields).encode()
        self._call(self._lib.pgfo_emit_event, _bytes(name, "name"), data)

    def switchover(self, target_node):
        """Planned switchover to target_node; returns the report."""
        self._call(self._lib.pgfo_switchover, int(target_node))
        return self.result()

    def status(self):
        """Every configured node (the report's "cluster" list)."""
        self._call(self._lib.pgfo_status)
        return self.result()["cluster"]

    def plan(self, procedure=None):
        """The built-in step tables with their contracts (timeout key, dry
        run, events): the report's "procedures" list. procedure: "failover",
        "follow-primary", "switchover", "single-steps", or None for all."""
        self._call(self._lib.pgfo_plan, None if procedure is None else procedure.encode())
        return self.result()["procedures"]

    def check(self):
        """Problems that would stop a failover: [] when there are none.
        Unlike other calls, problems are returned, not raised."""
        try:
            self._call(self._lib.pgfo_check)
        except PgfoError as e:
            if e.code != Status.ERR_CHECK:
                raise
        return self.result().get("problems", [])

    def result_json(self):
        """pgfo_ctx_result_json() as text ("{}" before any run)."""
        with self._lock:
            if self._handle is None:
                raise PgfoError(Status.ERR_USAGE, status_name(Status.ERR_USAGE),
                                "the context is closed")
            return _text(self._lib.pgfo_ctx_result_json(self._handle))

    def result(self):
        """The last run's report, parsed."""
        return json.loads(self.result_json())
