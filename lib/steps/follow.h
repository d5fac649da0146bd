// Bringing nodes back: follow-primary (pgpool's follow_primary_command) and
// a planned switchover. Step tables in follow.cpp, like failover.cpp.
#pragma once

#include <string>
#include <vector>

#include "core/context.h"

namespace pgfo {

// Node `follower` becomes a standby of `primary` (without pg_rewind when the
// facts allow it; with it only under rewind = auto), then synchronous
// replication is restored and pgpool told (pcp_attach_node) when configured.
// The report goes to ctx.result_json; failures throw after it is written.
void follow_primary(Context &ctx, int follower, int primary);

// pgpool's follow_primary_command arguments (%d %h %p %D %m %H %M %P %r %R %N %S):
// %d must follow the new primary %m.
void follow_primary_from_pgpool(Context &ctx, const std::vector<std::string> &args);

// Planned switchover to `target`: preflight, then the safe failover (the
// primary is stopped in fast mode), the old primary follows, every other
// standby follows, synchronous replication restored.
void switchover(Context &ctx, int target);

} // namespace pgfo
