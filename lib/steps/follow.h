// Bringing nodes back: follow-primary (pgpool's follow_primary_command).
// Step tables in follow.cpp, like failover.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "run/context.h"
#include "pg/control.h"
#include "pg/history.h"
#include "steps/runner.h"

namespace pgfo {

// Node `follower` becomes a standby of `primary` (without pg_rewind when the
// facts allow it; with it only under rewind = auto), then synchronous
// replication is restored and pgpool told (pcp_attach_node) when configured.
// The report goes to ctx.result(); failures throw after it is written.
void follow_primary(Context &ctx, int follower, int primary);

// pgpool's follow_primary_command arguments (%d %h %p %D %m %H %M %P %r %R %N %S):
// %d must follow the new primary %m.
void follow_primary_from_pgpool(Context &ctx, const std::vector<std::string> &args);

// follow-primary's steps, in order (its step table).
std::vector<StepInfo> follow_primary_steps();

// Can a stopped node follow a primary on `timeline` (with `history`)
// without pg_rewind? Where its WAL ends: a clean shutdown's checkpoint end;
// for a standby the largest of pg_control's minimum recovery point, the end
// of the valid records in its pg_wal past it (WAL received, not replayed),
// and `seen_end` (its receive/replay position while it still ran); against
// the switch point. Its timeline history must agree with `history` (the
// same timeline number from two promotions is not the same timeline).
struct RejoinDecision {
    bool can_follow = false;
    std::string reason;          // with the numbers, for logs and errors
    Lsn position = 0;            // where its WAL ends (0: unknown)
    Lsn data_position = 0;       // what pg_control shows (and pg_rewind sees)
    Lsn switch_point = 0;        // where the primary's timeline left the node's
    uint32_t wal_timeline = 0;   // the timeline its WAL ends on
    // Only WAL it never replayed lies past the switch point: its data files
    // are not past it, so pg_rewind finds nothing to do; setting that WAL
    // aside is the rewind.
    bool wal_only = false;
    bool rewindable = true;      // false: pg_rewind cannot help (same timeline number, other history)
    ControlData control;
    nlohmann::json details = nlohmann::json::object();
};
RejoinDecision decide_rejoin(Context &ctx, const Node &follower, uint32_t timeline,
                             const std::vector<HistoryEntry> &history,
                             std::optional<Lsn> seen_end = std::nullopt);
// The same for configured nodes: reads the primary's timeline and history.
// Throws PGFO_ERR_STATE when the follower still runs.
RejoinDecision rejoin_decision(Context &ctx, int follower, int primary);

} // namespace pgfo
