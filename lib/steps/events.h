// The domain events: every event a step (or a run) emits besides the
// runner's own (step.*, <kind>.started/succeeded/failed). A step row lists
// the ones its body may emit; the runner refuses any other (steps/contract.h).
// docs/webhooks.md describes their fields.
#pragma once

#include <vector>

namespace pgfo {
namespace ev {

inline constexpr const char kSyncChanged[] = "sync.changed";
inline constexpr const char kSlotsReady[] = "slots.ready";
inline constexpr const char kSlotsNotReady[] = "slots.not_ready";
inline constexpr const char kSlotsStandbySlots[] = "slots.standby_slots";
inline constexpr const char kSlotsDropped[] = "slots.dropped";
inline constexpr const char kSplitBrain[] = "failover.split_brain";
inline constexpr const char kNeedsRewind[] = "failover.needs_rewind"; // a run's, after its steps
inline constexpr const char kFenceStarted[] = "fence.started";
inline constexpr const char kFenceSucceeded[] = "fence.succeeded";
inline constexpr const char kFenceFailed[] = "fence.failed";

// What a step that may fence the old primary (on_unclean = fence) may emit.
inline const std::vector<const char *> kFencing = {kFenceStarted, kFenceSucceeded, kFenceFailed};

// Every domain event, in the order docs/webhooks.md lists them.
inline const std::vector<const char *> kAll = {kSyncChanged,  kSlotsReady,     kSlotsNotReady,   kSlotsStandbySlots,
                                               kSlotsDropped, kSplitBrain,     kFenceStarted,    kFenceSucceeded,
                                               kFenceFailed,  kNeedsRewind};

} // namespace ev
} // namespace pgfo
