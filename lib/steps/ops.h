// The operations steps are made of. Each knows PostgreSQL and the node access
// layer, none knows about sequences, events or the report: the step table in
// failover.cpp composes them, the C interface exposes them one by one.
#pragma once

#include <optional>
#include <string>

#include "core/context.h"
#include "pg/conn.h"
#include "pg/control.h"
#include "remote/exec.h"

namespace pgfo {

// Node lookup: throws pgfo::Error(PGFO_ERR_USAGE) naming the id when it is not configured.
const Node &node_by_id(const Config &cfg, int id);

// --- the old primary -------------------------------------------------------

struct DownCheck {
    pgfo_ping_t ping = PGFO_PING_NO_RESPONSE;
    PidFileStatus pid;
    bool host_unreachable = false; // postmaster.pid could not be checked (ssh failed)
    std::string access_error;
    bool down() const {
        return ping == PGFO_PING_NO_RESPONSE && !host_unreachable && pid.state != PidFileState::Alive;
    }
};

// One look: ping, and postmaster.pid through the node's access.
DownCheck check_down(Context &ctx, const Node &node);

struct ShutdownWait {
    DownCheck last;
    double waited = 0;
    int checks = 0;
};

// Wait until the node is down (ping: no response, postmaster.pid gone or
// stale). Returns with last.host_unreachable when its host stayed
// unreachable over two consecutive checks (the caller applies on_unclean).
// Throws PGFO_ERR_TIMEOUT when the server is still up after `timeout`.
ShutdownWait wait_shutdown(Context &ctx, const Node &node, double timeout);

struct CheckpointInfo {
    ControlData control;
    bool clean = false; // state "shut down" and the record is a shutdown checkpoint
    Lsn end = 0;        // end of the shutdown checkpoint record (0 when not clean)
    std::string why_unclean;
};

// Read pg_control (CRC checked) and, after a clean shutdown, the end of its
// checkpoint record from the node's own WAL.
CheckpointInfo read_checkpoint(Context &ctx, const Node &node);

// Ask the node's postmaster to stop in fast mode without waiting (pg_ctl stop -m fast -W).
void request_fast_stop(Context &ctx, const Node &node);

// --- the candidate -----------------------------------------------------------

struct FlushWait {
    bool reached = false;
    std::optional<Lsn> last;    // pg_last_wal_receive_lsn(), nullopt if never streamed
    bool receiver_gone = false; // walreceiver stopped while below target: nothing more will come
    double waited = 0;
};

// Wait until pg_last_wal_receive_lsn() >= target. Returns early (reached =
// false) when the walreceiver is gone and nothing moved for a second: the
// old primary is down, so nothing more can arrive. Times out with reached = false.
FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout);

// ALTER SYSTEM SET synchronous_standby_names + pg_reload_conf().
void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value);
std::string current_sync_standbys(PgConn &conn);

bool in_recovery(PgConn &conn);

struct PromoteResult {
    bool already_primary = false;
    std::string method;  // "pg_promote()" or "pg_ctl promote"
    double seconds = 0;
};

// Promote (pg_promote on 12+, pg_ctl promote on 11), wait until the node
// accepts a write, request a CHECKPOINT (not waited for). Recognises a node that is already a primary.
PromoteResult promote(Context &ctx, const Node &node, PgConn &conn, double timeout);

struct SwitchPoint {
    uint32_t timeline = 0;     // the node's current timeline
    std::optional<Lsn> point;  // where it left parent_tli (nullopt: not in its history)
};

// The timeline a primary writes WAL on.
uint32_t current_timeline(Context &ctx, PgConn &conn);

// Read the node's timeline and the switch point from parent_tli in its history file.
SwitchPoint switch_point(Context &ctx, PgConn &conn, uint32_t parent_tli);

// Sleep for the poll interval (config), at least 1 ms.
void poll_sleep(const Config &cfg);

} // namespace pgfo
