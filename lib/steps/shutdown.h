// The old primary: is it down, and where does its shutdown checkpoint end.
#pragma once

#include <optional>
#include <string>

#include "pg/control.h"
#include "pg/walrecord.h"
#include "steps/ops.h"

namespace pgfo {

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

// Ask the node's postmaster to stop in fast mode without waiting (pg_ctl stop -m fast -W).
void request_fast_stop(Context &ctx, const Node &node);


// Stop the node in fast mode and wait up to `timeout` seconds until its
// postmaster has exited (then [timeouts] postmaster_exit after its shutdown
// checkpoint, see wait_shutdown).
void stop_node(Context &ctx, const Node &node, double timeout);

} // namespace pgfo
