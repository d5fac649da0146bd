// The candidate: node roles, WAL positions, the flush wait, promotion and
// the new timeline's switch point.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "steps/ops.h"

namespace pgfo {

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

// Wait until the standby's StandbyWal::position() >= target. Returns early (reached =
// false) when the walreceiver is gone and nothing moved for a second: the
// old primary is down, so nothing more can arrive. Times out with reached = false.
FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout);

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

// A running server's timeline history (pg_wal/<timeline>.history, read with
// pg_read_file within `timeout` seconds): empty for timeline 1, nullopt when
// the file is missing. A stopped node's is rejoin.h's node_history().
std::optional<std::vector<HistoryEntry>> server_history(PgConn &conn, uint32_t timeline, double timeout);

} // namespace pgfo
