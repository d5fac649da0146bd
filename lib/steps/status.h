// pgfailover status and check.
#pragma once

#include "run/context.h"

namespace pgfo {

// Every configured node: reachability, role, timeline, LSNs, lag, sync
// state, pg_control where readable. Report in ctx.result() ("cluster").
void cluster_status(Context &ctx);

// Preflight: every problem that would stop a failover or rejoin, each with
// what to fix, in ctx.result() ("problems"). Throws
// pgfo::Error(PGFO_ERR_CHECK) when there is any.
void cluster_check(Context &ctx);

} // namespace pgfo
