// A planned switchover, as a sequence of the failover and follow-primary
// runs (steps/switchover.cpp).
#pragma once

#include <vector>

#include "run/context.h"
#include "steps/contract.h"

namespace pgfo {

// Planned switchover to `target`: preflight, then the safe failover (the
// primary is stopped in fast mode), the old primary follows, every other
// standby follows, synchronous replication restored.
void switchover(Context &ctx, int target);

// The switchover's own steps, in order: the gates, then (through pgpool) the
// waits for pgpool's hooks; around pgpool it runs the failover and
// follow-primary tables instead.
std::vector<StepInfo> switchover_steps();

} // namespace pgfo
