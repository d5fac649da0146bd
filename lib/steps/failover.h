// The failover sequences. Reading steps/failover.cpp's step tables is
// reading the procedure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "run/context.h"
#include "pgpool/args.h"
#include "steps/runner.h"

namespace pgfo {

// Failover for pgpool's failover_command arguments (%d %h %p %D %m %H %M %P %r %R %N %S).
void failover_from_pgpool(Context &ctx, const std::vector<std::string> &args);

// Nodes pgpool names but the configuration lacks are taken from pgpool's
// arguments (with a warning); where both know a node, the configuration wins.
void merge_pgpool_nodes(Context &ctx, const PgpoolArgs &args);

// failed == old_primary: the safe primary failover to `candidate`.
// Otherwise: a standby failed; repair synchronous_standby_names on old_primary.
// on_running: what to do with an old primary still running as one (default:
// the configuration's; a switchover passes Stop). The report goes to
// ctx.result(); failures throw pgfo::Error after the report is written.
void failover(Context &ctx, int failed, int candidate, int old_primary,
              std::optional<OnRunning> on_running = std::nullopt);

// The primary failover's steps, in order (its step table).
std::vector<StepInfo> primary_failover_steps();
// The steps of a failover for a failed standby (synchronous replication repair).
std::vector<StepInfo> standby_failure_steps();

} // namespace pgfo
