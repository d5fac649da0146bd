// Fencing (STONITH): cut an old primary whose shutdown cannot be proven off
// for good before a standby is promoted over it. A host that does not answer
// may still run a primary on the other side of a partition.
#pragma once

#include <string>
#include <vector>

#include "run/context.h"

namespace pgfo {

// [fencing] command for `node`, placeholders replaced in every argument:
// %d node id, %h host, %p port, %D data directory, %r reason, %% a literal %.
std::vector<std::string> fence_argv(const Config &cfg, const Node &node, const std::string &reason);

// Run [fencing] command for `node`, bounded by [timeouts] fence, as an
// argument vector (never through a shell). Emits fence.started, then
// fence.succeeded or fence.failed. Returns when the command exited 0 in time;
// otherwise throws pgfo::Error(PGFO_ERR_UNCLEAN) with `reason`, the command's
// exit status and the last line it wrote. A dry run only says what would run.
void fence_node(Context &ctx, const Node &node, const std::string &reason);

} // namespace pgfo
