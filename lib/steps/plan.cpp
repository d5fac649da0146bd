#include "steps/plan.h"

#include <vector>

#include "core/error.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/single.h"
#include "steps/switchover.h"

namespace pgfo {
namespace {

struct Table {
    const char *procedure; // the name `pgfailover plan` takes
    const char *run;       // the run's kind in events and reports
    const char *about;
    std::vector<StepInfo> (*steps)();
};

const Table kTables[] = {
    {"failover", "failover", "pgpool's failover_command when the primary failed: the safe promotion",
     primary_failover_steps},
    {"failover", "standby_failure", "pgpool's failover_command when a standby failed: synchronous replication repair",
     standby_failure_steps},
    {"follow-primary", "follow_primary", "pgpool's follow_primary_command: a node follows the new primary",
     follow_primary_steps},
    {"switchover", "switchover",
     "a planned switchover: these steps, then through pgpool its hooks, around pgpool the failover (the primary "
     "stopped in fast mode) and follow-primary for the old primary and every other standby",
     switchover_steps},
    {"single-steps", "step", "the single steps of the C interface (pgfo_wait_shutdown ...), each run alone",
     single_steps},
};

} // namespace

nlohmann::json plan_json(const std::string &procedure) {
    nlohmann::json out = {{"procedures", nlohmann::json::array()}};
    for (const auto &t : kTables) {
        if (!procedure.empty() && procedure != t.procedure) continue;
        nlohmann::json steps = nlohmann::json::array();
        for (const auto &s : t.steps()) steps.push_back(step_info_json(s));
        out["procedures"].push_back(
            {{"procedure", t.procedure}, {"run", t.run}, {"about", t.about}, {"steps", steps}});
    }
    if (out["procedures"].empty())
        throw Error(PGFO_ERR_USAGE, "unknown procedure '" + procedure +
                                        "': failover, follow-primary, switchover or single-steps (or none: all)");
    return out;
}

} // namespace pgfo
