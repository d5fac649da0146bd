/*
 * pgfailover.h - the C interface of libpgfailover.
 *
 * libpgfailover implements a safe PostgreSQL failover behind pgpool-II: it
 * waits until the old primary is really down, reads its shutdown checkpoint
 * from pg_control, waits until the candidate standby has flushed WAL past the
 * end of that record, adapts synchronous_standby_names, promotes, and checks
 * the new timeline's switch point, so that the old primary can rejoin as a
 * standby without pg_rewind.
 *
 * Conventions (the contract every function below keeps):
 *
 *  - Every symbol is prefixed pgfo_; every type is pgfo_*_t. Handles are
 *    opaque: callers never see a struct layout, so new fields never break them.
 *  - Functions that can fail return a pgfo_status_t. PGFO_OK is 0; errors are
 *    positive and stable (they are also the CLI's exit codes). The message of
 *    the last failure on a context is pgfo_ctx_errmsg(ctx); pgfo_strerror()
 *    names a code alone.
 *  - No C++ exception ever crosses this interface and the library never calls
 *    exit() or abort(): a host process (pgpool's hook, Python, Perl) is never
 *    ended by the library.
 *  - Strings passed in are copied when kept; the caller keeps ownership.
 *    Strings returned as `const char *` are borrowed from the handle named in
 *    the function's comment and stay valid until the next call that changes
 *    that handle (or until the handle is freed). Never free() them.
 *  - Threads: a context may be used by one thread at a time; different
 *    contexts are independent. Callbacks run on the thread that called the
 *    function that fires them, before that function returns.
 *  - Callbacks must not call into their own context: the call that fired
 *    the callback is still at work on it. From inside a log or event
 *    callback, every function that takes that context returns
 *    PGFO_ERR_USAGE at once and does nothing (pgfo_ctx_errmsg() then says
 *    so), and pgfo_ctx_free() on it does nothing; a function that would log
 *    from inside the log callback is refused the same way, so it can never
 *    deadlock. Allowed: pgfo_ctx_errmsg(), pgfo_ctx_result_json(), the
 *    pgfo_event_*() accessors, the functions without a context, and any
 *    call on another context.
 *  - fork(): a child may free a context it inherited. The webhook worker
 *    thread runs only in the parent, so the child neither joins it nor waits
 *    for or spools the parent's pending deliveries (they stay the parent's);
 *    events the child emits itself get a worker of its own. As with any
 *    library that runs a thread, a child that goes on logging can block if
 *    that thread was writing a log line at the moment of the fork.
 *  - Node ids are pgpool's backend ids (0, 1, ...). LSNs are uint64_t
 *    (the text form 0/6F6F558 is (hi << 32) | lo).
 *  - Durations are in seconds (double). A negative timeout means "the value
 *    from the configuration".
 */
#ifndef PGFAILOVER_H
#define PGFAILOVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PGFO_API __attribute__((visibility("default")))
#else
#define PGFO_API
#endif

/* Compile-time version; pgfo_version_number() gives the run-time one. */
#define PGFO_VERSION_MAJOR 0
#define PGFO_VERSION_MINOR 1
#define PGFO_VERSION_PATCH 0
#define PGFO_VERSION_STRING "0.1.0"
#define PGFO_VERSION_NUM \
    ((PGFO_VERSION_MAJOR * 10000) + (PGFO_VERSION_MINOR * 100) + PGFO_VERSION_PATCH)

/*
 * Status codes. The numbers are part of the ABI and are the exit codes of the
 * pgfailover command; new codes are only ever appended.
 */
typedef enum pgfo_status {
    PGFO_OK = 0,
    PGFO_ERR_INTERNAL = 1,         /* a bug or an unexpected library failure */
    PGFO_ERR_USAGE = 2,            /* bad argument: wrong node id, bad LSN text, NULL handle */
    PGFO_ERR_CONFIG = 3,           /* invalid configuration (message names file, line, key) */
    PGFO_ERR_CONNECT = 4,          /* a node could not be reached over libpq */
    PGFO_ERR_QUERY = 5,            /* a query on a node failed */
    PGFO_ERR_TIMEOUT = 6,          /* a step did not finish within its timeout */
    PGFO_ERR_UNCLEAN = 7,          /* old primary crashed or unreachable: on_unclean = abort, or fencing failed */
    PGFO_ERR_REFUSED = 8,          /* a policy refused the action (e.g. old primary still running) */
    PGFO_ERR_LOCKED = 9,           /* another pgfailover run holds the cluster lock, or another user
                                      could (lock file or directory not private to this user) */
    PGFO_ERR_PG_CONTROL = 10,      /* pg_control unreadable, corrupt (CRC) or of an unknown version */
    PGFO_ERR_WAL = 11,             /* the checkpoint record could not be read from WAL */
    PGFO_ERR_EXEC = 12,            /* a command on a node (pg_ctl, ssh) failed */
    PGFO_ERR_STATE = 13,           /* the cluster is not in a state the action can work from */
    PGFO_ERR_NOMEM = 14,           /* out of memory */
    PGFO_ERR_CANCELLED = 15,       /* reserved: cancelled by the caller */
    PGFO_ERR_CHECK = 16,           /* pgfo_check found problems (listed in the report) */
    PGFO_ERR_SPLIT_BRAIN = 17,     /* after the action more than one node is a primary: fence one now */
    PGFO_ERR_IDENTITY = 18         /* a data directory belongs to another cluster (system identifier) */
} pgfo_status_t;

typedef struct pgfo_ctx pgfo_ctx_t;     /* a configured cluster plus last error and result */
typedef struct pgfo_event pgfo_event_t; /* one transition, borrowed during a callback */

/* ---- versions and codes ---------------------------------------------- */

/* Run-time version as PGFO_VERSION_NUM computes it (e.g. 100 for 0.1.0). */
PGFO_API int pgfo_version_number(void);
/* Run-time version text ("0.1.0"); static storage. */
PGFO_API const char *pgfo_version(void);
/* Short English text for a status code; static storage, never NULL. */
PGFO_API const char *pgfo_strerror(pgfo_status_t code);
/* Symbolic name of a status code ("PGFO_ERR_TIMEOUT"); static storage, never NULL. */
PGFO_API const char *pgfo_status_name(pgfo_status_t code);

/* ---- contexts --------------------------------------------------------- */

/*
 * Create a context with built-in defaults and no nodes. *out receives the
 * handle (free it with pgfo_ctx_free). Returns PGFO_ERR_NOMEM or PGFO_ERR_USAGE
 * (out is NULL).
 */
PGFO_API pgfo_status_t pgfo_ctx_new(pgfo_ctx_t **out);
/*
 * Free a context and everything borrowed from it. NULL is accepted. With
 * webhooks configured, first waits up to delivery_budget seconds for pending
 * deliveries (see pgfo_ctx_flush_events); in a child of fork(), only for
 * those of the events the child emitted. Does nothing when called from a
 * callback of the same context.
 */
PGFO_API void pgfo_ctx_free(pgfo_ctx_t *ctx);
/*
 * Message of the last failed call on ctx ("" when the last call succeeded).
 * Borrowed from ctx until the next call on it.
 */
PGFO_API const char *pgfo_ctx_errmsg(const pgfo_ctx_t *ctx);

/*
 * Load a configuration file (INI). path NULL means: $PGFAILOVER_CONFIG if set,
 * else /etc/pgfailover/pgfailover.conf. Replaces the context's configuration
 * only when the whole file is valid; otherwise returns PGFO_ERR_CONFIG with a
 * message naming file, line, key and what is allowed.
 */
PGFO_API pgfo_status_t pgfo_ctx_load_config(pgfo_ctx_t *ctx, const char *path);
/*
 * Set one setting as the configuration file would: section "policy", key
 * "on_unclean", value "abort"; nodes are section "node.N". Validated the same
 * way (PGFO_ERR_CONFIG on a bad value). Call pgfo_ctx_load_config first if you
 * use both: loading replaces the configuration.
 */
PGFO_API pgfo_status_t pgfo_ctx_set(pgfo_ctx_t *ctx, const char *section, const char *key,
                                    const char *value);
/* Dry run: check and describe, change nothing on any node. 0 or 1. */
PGFO_API pgfo_status_t pgfo_ctx_set_dry_run(pgfo_ctx_t *ctx, int dry_run);

/* ---- logging and events ----------------------------------------------- */

typedef enum pgfo_log_level {
    PGFO_LOG_DEBUG = 1,
    PGFO_LOG_INFO = 2,
    PGFO_LOG_WARNING = 3,
    PGFO_LOG_ERROR = 4,
    PGFO_LOG_OFF = 6
} pgfo_log_level_t;

/* Log callback: one line of text without newline, borrowed during the call. */
typedef void (*pgfo_log_fn)(pgfo_log_level_t level, const char *line, void *user_data);

/*
 * Send log lines at or above `level` to standard error (PGFO_LOG_OFF, the
 * default, sends nothing there). The configuration's log_file, if set, also
 * receives every line at the configured log_level.
 */
PGFO_API pgfo_status_t pgfo_ctx_set_log_stderr(pgfo_ctx_t *ctx, pgfo_log_level_t level);
/* Deliver log lines to fn (NULL removes it). */
PGFO_API pgfo_status_t pgfo_ctx_set_log_callback(pgfo_ctx_t *ctx, pgfo_log_fn fn,
                                                 void *user_data);

/*
 * Event callback: fired on every step transition (step started, succeeded,
 * failed, skipped) and on run start and end. While a step waits it may also
 * get "step.progress" events (at most one every 0.25 s: elapsed_s, and
 * lsn_distance / waiting_for where the wait has them); these go to the
 * callback only, never to webhooks, and carry seq 0. The event is borrowed for the
 * duration of the call only. A callback must not call into the same context
 * (such calls return PGFO_ERR_USAGE; see the conventions at the top).
 */
typedef void (*pgfo_event_fn)(const pgfo_event_t *event, void *user_data);
PGFO_API pgfo_status_t pgfo_ctx_set_event_callback(pgfo_ctx_t *ctx, pgfo_event_fn fn,
                                                   void *user_data);
/*
 * Webhooks ([webhook.NAME] sections of the configuration) receive the same
 * events as JSON over HTTP(S). They are sent by a worker thread of the
 * context, never on the caller's thread and never through a callback: an
 * event is only queued when it happens, so a slow or dead endpoint never
 * delays a step. The event callback above still runs on the caller's thread.
 *
 * Wait up to budget_seconds (negative: [general] delivery_budget) for the
 * deliveries still pending; what is not delivered by then is written to the
 * spool directory and sent first by the next context that starts webhooks.
 * pgfo_ctx_free does the same with delivery_budget. Returns PGFO_OK when
 * nothing is left over, PGFO_ERR_TIMEOUT when deliveries were spooled (or,
 * when not even that was possible, lost; the message says which), at once
 * when no webhook is configured.
 */
PGFO_API pgfo_status_t pgfo_ctx_flush_events(pgfo_ctx_t *ctx, double budget_seconds);

/* Event name, e.g. "step.succeeded", "failover.started". Borrowed from the event. */
PGFO_API const char *pgfo_event_name(const pgfo_event_t *event);
/* Step name ("wait_shutdown", ...) or "" for run events. Borrowed from the event. */
PGFO_API const char *pgfo_event_step(const pgfo_event_t *event);
/* The whole event as a JSON object. Borrowed from the event. */
PGFO_API const char *pgfo_event_json(const pgfo_event_t *event);
/* Sequence number of the event within its run, starting at 1. */
PGFO_API uint64_t pgfo_event_seq(const pgfo_event_t *event);

/*
 * Publish an event of the caller's own (a fencing step, a maintenance
 * window) through the same path as the library's: the event callback and
 * every webhook whose filter matches. name: 1 to 64 of a-z 0-9 . _ -, and
 * not one of the library's own prefixes (step., failover., follow_primary.,
 * switchover., standby_failure., status., check., sync.). fields_json: NULL
 * or a JSON object whose members are added to the event (a "severity"
 * member sets the severity; default "info"). PGFO_ERR_USAGE on a bad name or
 * bad JSON.
 */
PGFO_API pgfo_status_t pgfo_emit_event(pgfo_ctx_t *ctx, const char *name, const char *fields_json);

/* ---- LSN helpers -------------------------------------------------------- */

/* Parse "0/6F6F558" (hex/hex). PGFO_ERR_USAGE on anything else. */
PGFO_API pgfo_status_t pgfo_lsn_parse(const char *text, uint64_t *lsn);
/* Format an LSN into buf (at least 20 bytes: "FFFFFFFF/FFFFFFFF" + NUL). */
PGFO_API pgfo_status_t pgfo_lsn_format(uint64_t lsn, char *buf, size_t buflen);

/* ---- single steps --------------------------------------------------------
 * Each step below logs one line, fires step events and leaves a report in
 * pgfo_ctx_result_json(), except pgfo_ping_node, a probe that does none of
 * these. Node ids must be configured.
 */

typedef enum pgfo_ping {
    PGFO_PING_OK = 0,          /* accepting connections */
    PGFO_PING_REJECT = 1,      /* up but refusing (starting up or shutting down) */
    PGFO_PING_NO_RESPONSE = 2, /* nothing answers */
    PGFO_PING_NO_ATTEMPT = 3   /* bad connection parameters */
} pgfo_ping_t;

/* libpq ping of a node (what pg_isready does). */
PGFO_API pgfo_status_t pgfo_ping_node(pgfo_ctx_t *ctx, int node_id, pgfo_ping_t *result);

/*
 * Wait until node_id is down: ping answers nothing and its postmaster.pid is
 * gone or names a dead process (checked locally or over ssh). PGFO_ERR_TIMEOUT
 * when it is still up after `timeout` seconds. A host whose files cannot be
 * looked at for [timeouts] unreachable while ping answers nothing is not
 * proven down: on_unclean decides, as in a failover. abort: PGFO_ERR_UNCLEAN;
 * fence: the [fencing] command runs, PGFO_OK once it succeeded (events
 * fence.*), PGFO_ERR_UNCLEAN when it fails; promote: PGFO_OK, and the report
 * says "host_unreachable" and "unclean".
 */
PGFO_API pgfo_status_t pgfo_wait_shutdown(pgfo_ctx_t *ctx, int node_id, double timeout);

/* pg_control states, as PostgreSQL numbers them. */
typedef enum pgfo_db_state {
    PGFO_DB_STARTUP = 0,
    PGFO_DB_SHUTDOWNED = 1,
    PGFO_DB_SHUTDOWNED_IN_RECOVERY = 2,
    PGFO_DB_SHUTDOWNING = 3,
    PGFO_DB_IN_CRASH_RECOVERY = 4,
    PGFO_DB_IN_ARCHIVE_RECOVERY = 5,
    PGFO_DB_IN_PRODUCTION = 6
} pgfo_db_state_t;

/*
 * Read node_id's pg_control (CRC checked) and, when it holds a shutdown
 * checkpoint, the end of that record from the node's WAL. Any out pointer
 * may be NULL. checkpoint_end is 0 when the state is not "shut down".
 */
PGFO_API pgfo_status_t pgfo_read_checkpoint(pgfo_ctx_t *ctx, int node_id, int *state,
                                            uint64_t *checkpoint, uint64_t *checkpoint_end,
                                            uint32_t *timeline);

/*
 * Wait until node_id (a standby) has flushed WAL up to `target`: the larger
 * of pg_last_wal_receive_lsn() and pg_last_wal_replay_lsn() (a standby
 * restarted while its primary is down has only the latter) >= target.
 * *reached (may be NULL) receives the last position seen.
 */
PGFO_API pgfo_status_t pgfo_wait_flush(pgfo_ctx_t *ctx, int node_id, uint64_t target,
                                       double timeout, uint64_t *reached);

/*
 * Set synchronous_standby_names on node_id (ALTER SYSTEM + pg_reload_conf(),
 * works on a standby too). value "" switches to asynchronous replication.
 */
PGFO_API pgfo_status_t pgfo_set_sync_standbys(pgfo_ctx_t *ctx, int node_id, const char *value);

/*
 * Promote node_id (pg_promote on 12+, pg_ctl promote on 11), wait until it
 * accepts a write, then request a CHECKPOINT (completed by the server in the
 * background, not waited for). A node that is already a primary is
 * recognised and not promoted again (PGFO_OK, logged).
 */
PGFO_API pgfo_status_t pgfo_promote(pgfo_ctx_t *ctx, int node_id, double timeout);

/*
 * Switch point of the timeline that node_id (a primary) forked from parent_tli,
 * read from its timeline history file.
 */
PGFO_API pgfo_status_t pgfo_switch_point(pgfo_ctx_t *ctx, int node_id, uint32_t parent_tli,
                                         uint64_t *switch_point, uint32_t *timeline);

/* ---- whole sequences ---------------------------------------------------- */

/*
 * pgpool's failover_command: argv holds the hook's arguments in pgpool's
 * order %d %h %p %D %m %H %M %P %r %R %N %S (trailing ones may be missing;
 * "" and -1 are understood). Runs the whole safe failover (or, for a failed
 * standby, the synchronous_standby_names repair). The report of the run is
 * pgfo_ctx_result_json().
 */
PGFO_API pgfo_status_t pgfo_failover_pgpool(pgfo_ctx_t *ctx, int argc, const char *const *argv);

/*
 * Fail over from failed_node to candidate_node (both configured ids). If
 * failed_node is not the primary, only synchronous_standby_names on the
 * primary (candidate_node) is repaired.
 */
PGFO_API pgfo_status_t pgfo_failover(pgfo_ctx_t *ctx, int failed_node, int candidate_node,
                                     int old_primary_node);

/*
 * pgpool's follow_primary_command: argv in the same order as for
 * pgfo_failover_pgpool; node %d follows the new primary %m.
 */
PGFO_API pgfo_status_t pgfo_follow_primary_pgpool(pgfo_ctx_t *ctx, int argc, const char *const *argv);

/*
 * Make follower_node a standby of primary_node: stop it if it runs, decide
 * from pg_control and the new timeline's history whether it can follow
 * without pg_rewind (if not: PGFO_ERR_REFUSED under rewind = never, pg_rewind
 * under rewind = auto), write its standby configuration, start it, wait until
 * it streams and has caught up, restore [replication] synchronous_standby_names
 * and attach it in pgpool ([pcp]). A node already streaming from the primary
 * is recognised and left running. Safe to run for several followers at once.
 */
PGFO_API pgfo_status_t pgfo_follow_primary(pgfo_ctx_t *ctx, int follower_node, int primary_node);

/*
 * Could follower_node (stopped) follow primary_node without pg_rewind? Reads
 * the follower's pg_control (a clean shutdown's checkpoint end, or a
 * standby's minimum recovery point) and the primary's timeline history.
 * *can_follow receives 1 or 0; the numbers are in pgfo_ctx_result_json().
 * PGFO_ERR_STATE while the follower still runs.
 */
PGFO_API pgfo_status_t pgfo_rejoin_decision(pgfo_ctx_t *ctx, int follower_node, int primary_node,
                                            int *can_follow);

/*
 * Planned switchover to target_node (a standby streaming from the primary).
 * Gates first, which return PGFO_ERR_REFUSED before any downtime ([switchover]
 * max_lag, max_archive_backlog, a synchronous standby left after the switch);
 * then CHECKPOINT on the primary ([switchover] checkpoint), the primary is
 * stopped in fast mode, the same safe steps as a failover promote the target,
 * then the old primary and every other standby follow it. The report's
 * verdict has write_gap_s (a probe's last commit on the old primary to its
 * first on the new one). In a dry run the gates run and the report's "plan"
 * lists every step with its timeout.
 */
PGFO_API pgfo_status_t pgfo_switchover(pgfo_ctx_t *ctx, int target_node);

/*
 * Status of every configured node (reachability, role, timeline, current /
 * receive / replay LSN, lag in bytes and seconds, sync state, pg_control
 * state where the data directory is readable), as the "cluster" array of
 * pgfo_ctx_result_json(). Unreachable nodes are reported, not errors.
 */
PGFO_API pgfo_status_t pgfo_status(pgfo_ctx_t *ctx);

/*
 * Preflight check: every problem that would stop a failover or a rejoin
 * (unreachable nodes, ssh, bin directories, replication connection,
 * wal_log_hints, synchronous_standby_names vs application names, pgpool.conf
 * vs configuration, configuration file permissions), each with what to fix,
 * as the "problems" array of pgfo_ctx_result_json(). PGFO_ERR_CHECK when
 * there is any.
 */
PGFO_API pgfo_status_t pgfo_check(pgfo_ctx_t *ctx);

/*
 * The step tables as they are built into the library, as JSON in
 * pgfo_ctx_result_json(): {"procedures": [{"procedure", "run", "about",
 * "steps": [{"step", "description", "timeout" (a configuration key such as
 * "[timeouts] shutdown", or null), "dry_run" ("runs", "stops" or "skips"),
 * "dry_run_summary" (skips only), "events" (the domain events the step may
 * emit), "applies" (when not always)}]}]}. procedure: "failover",
 * "follow-primary", "switchover", "single-steps", or NULL (or "") for all;
 * any other name is PGFO_ERR_USAGE. Needs no configuration and touches no
 * server.
 */
PGFO_API pgfo_status_t pgfo_plan(pgfo_ctx_t *ctx, const char *procedure);

/*
 * JSON report of the last sequence or step run on ctx: steps with outcome,
 * duration and LSNs, and the verdict. "{}" before any run. Borrowed from ctx
 * until the next call that runs something.
 */
PGFO_API const char *pgfo_ctx_result_json(const pgfo_ctx_t *ctx);

#ifdef __cplusplus
}
#endif

#endif /* PGFAILOVER_H */
