// Bringing nodes back: follow-primary (pgpool's follow_primary_command).
// Step tables in follow.cpp, like failover.cpp.
#pragma once

#include <string>
#include <vector>

#include "core/context.h"
#include "pg/control.h"
#include "pg/history.h"
#include "steps/runner.h"

namespace pgfo {

// Node `follower` becomes a standby of `primary` (without pg_rewind when the
// facts allow it; with it only under rewind = auto), then synchronous
// replication is restored and pgpool told (pcp_attach_node) when configured.
// The report goes to ctx.result_json; failures throw after it is written.
void follow_primary(Context &ctx, int follower, int primary);

// pgpool's follow_primary_command arguments (%d %h %p %D %m %H %M %P %r %R %N %S):
// %d must follow the new primary %m.
void follow_primary_from_pgpool(Context &ctx, const std::vector<std::string> &args);

// follow-primary's steps, in order (its step table).
std::vector<StepInfo> follow_primary_steps();

// Can a stopped node follow a primary on `timeline` (with `history`)
// without pg_rewind? From its pg_control: a clean shutdown's checkpoint end,
// or a standby's minimum recovery point, against the switch point.
struct RejoinDecision {
    bool can_follow = false;
    std::string reason;          // with the numbers, for logs and errors
    Lsn position = 0;            // where its WAL ends (0: unknown)
    Lsn switch_point = 0;        // where the primary's timeline left the node's
    ControlData control;
    nlohmann::json details = nlohmann::json::object();
};
RejoinDecision decide_rejoin(Context &ctx, const Node &follower, uint32_t timeline,
                             const std::vector<HistoryEntry> &history);
// The same for configured nodes: reads the primary's timeline and history.
// Throws PGFO_ERR_STATE when the follower still runs.
RejoinDecision rejoin_decision(Context &ctx, int follower, int primary);

} // namespace pgfo
