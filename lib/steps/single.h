// The single steps of the C interface (pgfo_wait_shutdown, pgfo_promote, ...):
// each one step row run alone under a Runner of kind "step", so that it logs,
// times, emits step events and leaves a report like a step of a sequence.
// Out pointers may be NULL; they are set as include/pgfailover.h says.
// A negative timeout: the row's, from the configuration.
#pragma once

#include <cstdint>
#include <vector>

#include "run/context.h"
#include "steps/contract.h"

namespace pgfo {

// Down: ping answers nothing and postmaster.pid is gone or stale. A host that
// cannot be reached is handled as a failover's wait_shutdown does: on_unclean
// decides (abort: PGFO_ERR_UNCLEAN; fence: the fence command, PGFO_ERR_UNCLEAN
// when it fails; promote: done, the report says unclean).
void single_wait_shutdown(Context &ctx, int node_id, double timeout);
void single_read_checkpoint(Context &ctx, int node_id, int *state, uint64_t *checkpoint, uint64_t *checkpoint_end,
                            uint32_t *timeline);
void single_wait_flush(Context &ctx, int node_id, uint64_t target, double timeout, uint64_t *reached);
void single_set_sync_standbys(Context &ctx, int node_id, const std::string &value);
void single_promote(Context &ctx, int node_id, double timeout);
void single_switch_point(Context &ctx, int node_id, uint32_t parent_tli, uint64_t *point, uint32_t *timeline);
void single_rejoin_decision(Context &ctx, int follower_node, int primary_node, int *can_follow);

// Their rows, in the order above.
std::vector<StepInfo> single_steps();

} // namespace pgfo
