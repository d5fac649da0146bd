// A planned switchover, as a sequence of the failover and follow-primary
// runs (steps/switchover.cpp).
#pragma once

#include "run/context.h"

namespace pgfo {

// Planned switchover to `target`: preflight, then the safe failover (the
// primary is stopped in fast mode), the old primary follows, every other
// standby follows, synchronous replication restored.
void switchover(Context &ctx, int target);

} // namespace pgfo
