// The operations steps are made of. Each knows PostgreSQL and the node access
// layer, none knows about sequences, events or the report: the step table in
// failover.cpp composes them, the C interface exposes them one by one.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "run/context.h"
#include "core/error.h"
#include "pg/conn.h"
#include "pg/control.h"
#include "pg/history.h"
#include "pg/walrecord.h"
#include "remote/exec.h"

namespace pgfo {

// Sleep for the poll interval (config), at least 1 ms.
void poll_sleep(const Config &cfg);
// Before retrying a failed read: the poll interval, at least 50 ms.
void retry_sleep(const Config &cfg);

// "<argv as text> exit code 3: <its standard error>" (or why it did not run), for messages.
std::string exec_failure(const std::vector<std::string> &argv, const ExecResult &r);

// A node in reports and events: {"id", "host", "port"}.
nlohmann::json node_json(const Node &n);

// Node lookup: throws pgfo::Error(PGFO_ERR_USAGE) naming the id when it is not configured.
const Node &node_by_id(const Config &cfg, int id);

// --- the old primary -------------------------------------------------------

struct DownCheck {
    pgfo_ping_t ping = PGFO_PING_NO_RESPONSE;
    PidFileStatus pid;
    // pg_control, read (CRC checked) whenever the server does not accept
    // connections; nullopt when missing or unreadable (control_error says why).
    std::optional<ControlData> control;
    std::string control_error;
    bool host_unreachable = false; // its files could not be checked (see wait_shutdown for the rule)
    std::string access_error;
    // The postmaster is gone: ping answers nothing and postmaster.pid is gone
    // or names a dead process.
    bool exited() const {
        return ping == PGFO_PING_NO_RESPONSE && !host_unreachable && access_error.empty() &&
               pid.state != PidFileState::Alive;
    }
    // The shutdown checkpoint is written and nothing will write WAL again,
    // while the postmaster may still run (the archiver works off its backlog,
    // walsenders send the rest): no connections accepted, pg_control (CRC
    // valid) says "shut down", and postmaster.pid says "stopping". A server
    // starting up also reads "shut down" in pg_control for a moment, but its
    // postmaster.pid says "starting".
    bool shut_down() const {
        if (exited()) return true;
        return ping != PGFO_PING_OK && ping != PGFO_PING_NO_ATTEMPT && access_error.empty() && control &&
               control->state == PGFO_DB_SHUTDOWNED && pid.state == PidFileState::Alive &&
               pid.pm_status == "stopping";
    }
};

// One look: ping; when the server does not accept connections,
// postmaster.pid and pg_control through the node's access. An access or read
// failure is not thrown but returned in access_error (or control_error), so
// that the caller can retry it; a data directory that does not exist throws.
DownCheck check_down(Context &ctx, const Node &node);

enum class WaitFor {
    ShutDown, // DownCheck::shut_down(): enough to promote another node
    Exit,     // DownCheck::exited(): enough to start the node again
};

struct ShutdownWait {
    DownCheck last;
    double waited = 0;
    int checks = 0;
    int failed_checks = 0;         // probes that could not look at the node's files (retried)
    double shut_down_at = -1;      // seconds into the wait when the shutdown was first proven (-1: not seen)
};

// Wait until the node is down in the sense of `until`. A probe whose access
// fails (ssh exit 255, a read error, a torn pg_control) is logged and
// retried; the host counts as unreachable (last.host_unreachable) only when
// its probes failed without a break for [timeouts] unreachable while ping
// answered nothing: the caller applies on_unclean. Failures of a host that
// is reachable throw PGFO_ERR_EXEC after that window. Throws
// PGFO_ERR_TIMEOUT when the server is still up after `timeout`; with
// WaitFor::Exit, once the shutdown checkpoint is written, the postmaster's
// exit is waited for up to [timeouts] postmaster_exit from that moment.
ShutdownWait wait_shutdown(Context &ctx, const Node &node, double timeout, WaitFor until);

struct CheckpointInfo {
    ControlData control;
    bool clean = false; // state "shut down" and the record is a shutdown checkpoint
    Lsn end = 0;        // end of the shutdown checkpoint record (0 when not clean)
    std::string why_unclean;
};

// Read pg_control (CRC checked) and, after a clean shutdown, the end of its
// checkpoint record from the node's own WAL.
CheckpointInfo read_checkpoint(Context &ctx, const Node &node);

// pg_control alone (CRC checked). Throws PGFO_ERR_PG_CONTROL (missing,
// corrupt) or PGFO_ERR_EXEC (cannot be read).
ControlData read_control(Context &ctx, const Node &node);

// The checkpoint record that pg_control `c` points at, read from the node's
// WAL (is_shutdown_checkpoint() tells its kind). Throws PGFO_ERR_WAL when it
// cannot be read or is damaged, PGFO_ERR_EXEC when the host fails.
WalRecordInfo read_checkpoint_record(Context &ctx, const Node &node, const ControlData &c);

// The node's system identifier from SQL (pg_control_system()).
uint64_t system_identifier(Context &ctx, PgConn &conn);

// Throws PGFO_ERR_IDENTITY, naming both identifiers, when `c` (read from
// `node`'s data directory) belongs to another cluster than `expected` (the
// system identifier of `what`, e.g. "the candidate node 1 (...)").
void check_same_cluster(const Node &node, const ControlData &c, uint64_t expected, const std::string &what);

// Retry `fn` while it throws one of the transient codes (PGFO_ERR_EXEC,
// PGFO_ERR_PG_CONTROL, PGFO_ERR_WAL), each failure logged with its cause,
// until failures have lasted `window` seconds; then the last error is thrown.
template <class F>
auto retry_reads(Context &ctx, const std::string &what, double window, F &&fn) -> decltype(fn()) {
    Stopwatch sw;
    int failures = 0;
    for (;;) {
        try {
            return fn();
        } catch (const Error &e) {
            if (e.code() != PGFO_ERR_EXEC && e.code() != PGFO_ERR_PG_CONTROL && e.code() != PGFO_ERR_WAL) throw;
            ++failures;
            if (sw.seconds() >= window || ctx.dry_run) throw;
            ctx.log().warn("{} failed (attempt {}, retried for up to {} s): {}", what, failures,
                           static_cast<int>(window), e.what());
            retry_sleep(ctx.cfg);
        }
    }
}

// Ask the node's postmaster to stop in fast mode without waiting (pg_ctl stop -m fast -W).
void request_fast_stop(Context &ctx, const Node &node);

// --- the candidate -----------------------------------------------------------

// A standby's WAL, as it tells itself: what its walreceiver flushed
// (pg_last_wal_receive_lsn(): NULL after a restart until it streams again)
// and what its startup process replayed (on its disk too).
struct StandbyWal {
    std::optional<Lsn> receive;
    std::optional<Lsn> replay;
    bool receiver = false;                   // a walreceiver runs
    std::optional<uint32_t> streaming_tli;   // the timeline it streams on, when streaming
    // The larger of receive and replay: how far its WAL reaches.
    std::optional<Lsn> position() const;
};
// One query on a standby, with a deadline of `timeout` seconds (0: [timeouts]
// command). Throws pgfo::Error (PGFO_ERR_QUERY, ...).
StandbyWal standby_wal(Context &ctx, PgConn &conn, double timeout = 0);

struct FlushWait {
    bool reached = false;
    std::optional<Lsn> last;    // StandbyWal::position(), nullopt if nothing received or replayed
    bool receiver_gone = false; // walreceiver stopped while below target: nothing more will come
    double waited = 0;
};

// An LSN a server returned (nullopt for NULL). Throws
// pgfo::Error(PGFO_ERR_QUERY) when it cannot be parsed.
std::optional<Lsn> lsn_or_null(const std::optional<std::string> &s);

// Wait until the standby's StandbyWal::position() >= target. Returns early (reached =
// false) when the walreceiver is gone and nothing moved for a second: the
// old primary is down, so nothing more can arrive. Times out with reached = false.
FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout);

// ALTER SYSTEM SET synchronous_standby_names + pg_reload_conf().
void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value);
// The value `conn`'s server runs with; the query's deadline is `timeout` seconds.
std::string current_sync_standbys(PgConn &conn, double timeout);

// pg_is_in_recovery(), within `timeout` seconds.
bool in_recovery(PgConn &conn, double timeout);

// What one configured node is, seen from here right now.
struct NodeRole {
    const Node *node = nullptr;
    enum Kind { Primary, Standby, Down, Unknown } kind = Unknown;
    std::string detail; // why Unknown (rejecting connections, a connection error)
    pgfo_status_t error = PGFO_OK; // the code of that connection or query error
};
const char *role_name(NodeRole::Kind k);
// Every configured node, in id order: ping, then pg_is_in_recovery(). Nodes
// in `skip` are not asked (Unknown, "not asked").
std::vector<NodeRole> node_roles(Context &ctx, const std::set<int> &skip = {});
// "node 1 (host:port) primary, node 0 (...) down, ..."
std::string describe_roles(const std::vector<NodeRole> &roles);

struct PromoteResult {
    bool already_primary = false;
    std::string method;  // "pg_promote()" or "pg_ctl promote"
    double seconds = 0;
};

// Promote (pg_promote on 12+, pg_ctl promote on 11), wait until the node
// accepts a write, request a CHECKPOINT (not waited for). Recognises a node that is already a primary.
// *requested (when given) becomes true once the node has accepted the first
// request: from then on the promotion may complete even if this throws.
PromoteResult promote(Context &ctx, const Node &node, PgConn &conn, double timeout, bool *requested = nullptr);

struct SwitchPoint {
    uint32_t timeline = 0;     // the node's current timeline
    std::optional<Lsn> point;  // where it left parent_tli (nullopt: not in its history)
};

// The timeline a primary writes WAL on.
uint32_t current_timeline(Context &ctx, PgConn &conn);

// Read the node's timeline and the switch point from parent_tli in its history file.
SwitchPoint switch_point(Context &ctx, PgConn &conn, uint32_t parent_tli);


} // namespace pgfo

namespace pgfo {

// --- bringing a node back ----------------------------------------------------

// Major version from <data_directory>/PG_VERSION (11, 15, ...).
int node_major_version(Context &ctx, const Node &node);

// Stop the node in fast mode and wait until it is down (shutdown timeout).
void stop_node(Context &ctx, const Node &node);

// pg_ctl start -w; the server's early output goes to
// <data_directory>/pgfailover-start.log. Throws PGFO_ERR_EXEC with the tail of
// that log when the server does not come up.
void start_node(Context &ctx, const Node &node, double timeout);

// A value in a libpq connection string, as libpq's parser reads it back:
// single-quoted, with \ before every \ and '.
std::string conninfo_value(const std::string &v);

// A string literal in PostgreSQL's configuration file syntax
// (postgresql.auto.conf, recovery.conf), as ALTER SYSTEM writes one
// (escape_single_quotes_ascii): single-quoted, every ' and \ doubled. The
// file's lexer reads \ as an escape, so a \ left single would vanish or end
// the string early.
std::string conf_literal(const std::string &v);

// primary_conninfo for `follower` streaming from `primary` ([replication] settings).
std::string primary_conninfo(const Config &cfg, const Node &primary, const Node &follower);

// Physical slot name of a follower: pgfailover_node<id>.
std::string slot_name(const Node &follower);

// Make a stopped node a standby of `primary`: standby.signal plus
// primary_conninfo, recovery_target_timeline = 'latest' and primary_slot_name
// in postgresql.auto.conf (12+), or recovery.conf (11). The previous
// postgresql.auto.conf / recovery.conf is kept as <file>.pgfailover.bak.
void write_standby_config(Context &ctx, const Node &follower, int major, const std::string &conninfo,
                          const std::string &slot);

// Wait until `conn` (a primary on `timeline`) shows application_name
// streaming in pg_stat_replication with its flush position at the primary's
// position when streaming was first seen, and the follower itself reports
// receiving on `timeline` (a diverged node connects, and may even report
// positions past ours, before it finds out that it cannot follow) and
// replaying: its replay position reaches that target, or at least moves
// (recovery_min_apply_delay). A node that diverged on the same timeline
// number receives our WAL but cannot replay it. Returns the flush position.
Lsn wait_streaming(Context &ctx, PgConn &conn, const Node &follower, const std::string &application_name,
                   uint32_t timeline, double timeout);

// The timeline `node`'s walreceiver streams on (the later of
// receive_start_tli and received_tli), nullopt when it is not streaming.
// A node past the fork point streams the old timeline up to the fork before
// its startup process refuses to go on, so it shows up as 'streaming' in the
// new primary's pg_stat_replication meanwhile: only this tells a follower
// from a node that cannot follow. Throws pgfo::Error when it cannot connect.
std::optional<uint32_t> receiving_timeline(Context &ctx, const Node &node);

// Where `node`'s WAL really ends on `timeline`: a scan of its pg_wal from
// the record at `from` (a record start, e.g. pg_control's minimum recovery
// point or latest checkpoint), record by record until one does not
// validate. Reads the segments in large pieces (one program run per piece
// over ssh). Throws pgfo::Error on a failure to reach the node, not at the end of WAL.
WalScan scan_node_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from, uint32_t segment_size,
                      uint32_t block_size);

// The node's timeline history (pg_wal/<timeline>.history in its data
// directory, running or not); empty for timeline 1, nullopt when the file is missing.
std::optional<std::vector<HistoryEntry>> node_history(Context &ctx, const Node &node, uint32_t timeline);

// Move the node's WAL segments of `timeline` from the one holding `from`
// on (and their archive_status files) out of pg_wal into
// <data_directory>/pgfailover-wal-<from>: WAL it received but never replayed,
// past a switch point. The node must be stopped. Returns the directory and how many files moved.
std::pair<std::string, int> set_aside_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from,
                                          uint32_t segment_size);

// Application names streaming from `conn` (pg_stat_replication, state streaming).
std::vector<std::string> streaming_standbys(Context &ctx, PgConn &conn);

// A pgpool PCP program: [pcp] bin_directory/program, or program (on PATH).
std::string pcp_program(const Config &c, const std::string &program);
// The argument vector of a pgpool PCP program ([pcp] host, port, user,
// passfile, bin_directory) with `args` after the connection options.
std::vector<std::string> pcp_argv(const Config &c, const std::string &program, const std::vector<std::string> &args);

// pcp_attach_node for `node_id` when [pcp] host is set; false when PCP is not configured.
bool pcp_attach(Context &ctx, int node_id);

// Files pg_rewind must not take from the source: restored after it ran.
struct KeptConfig {
    std::vector<std::pair<std::string, std::string>> files; // path, content
};
KeptConfig keep_config_files(Context &ctx, const Node &node);
void restore_config_files(Context &ctx, const Node &node, const KeptConfig &kept);

// pg_rewind --target-pgdata <dir> --source-server <conninfo of source>.
void run_pg_rewind(Context &ctx, const Node &target, const Node &source);

} // namespace pgfo
