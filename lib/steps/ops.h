// The operations steps are made of. Each knows PostgreSQL and the node access
// layer, none knows about sequences, events or the report: the step table in
// failover.cpp composes them, the C interface exposes them one by one.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

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

// An LSN a server returned (nullopt for NULL). Throws
// pgfo::Error(PGFO_ERR_QUERY) when it cannot be parsed.
std::optional<Lsn> lsn_or_null(const std::optional<std::string> &s);

// Wait until pg_last_wal_receive_lsn() >= target. Returns early (reached =
// false) when the walreceiver is gone and nothing moved for a second: the
// old primary is down, so nothing more can arrive. Times out with reached = false.
FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout);

// ALTER SYSTEM SET synchronous_standby_names + pg_reload_conf().
void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value);
std::string current_sync_standbys(PgConn &conn);

bool in_recovery(PgConn &conn);

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

// Sleep for the poll interval (config), at least 1 ms.
void poll_sleep(const Config &cfg);

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
// positions past ours, before it finds out that it cannot follow). Returns
// the flush position.
Lsn wait_streaming(Context &ctx, PgConn &conn, const Node &follower, const std::string &application_name,
                   uint32_t timeline, double timeout);

// The timeline `node`'s walreceiver streams on (the later of
// receive_start_tli and received_tli), nullopt when it is not streaming.
// A node past the fork point streams the old timeline up to the fork before
// its startup process refuses to go on, so it shows up as 'streaming' in the
// new primary's pg_stat_replication meanwhile: only this tells a follower
// from a node that cannot follow. Throws pgfo::Error when it cannot connect.
std::optional<uint32_t> receiving_timeline(Context &ctx, const Node &node);

// Application names streaming from `conn` (pg_stat_replication, state streaming).
std::vector<std::string> streaming_standbys(Context &ctx, PgConn &conn);

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
