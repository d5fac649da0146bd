#include "steps/contract.h"

#include "run/context.h"
#include "core/error.h"
#include "steps/failover.h"
#include "steps/follow.h"

namespace pgfo {

std::string timeout_key(StepTimeout t) {
    switch (t) {
    case StepTimeout::None: return "";
    case StepTimeout::Connect: return "[connection] connect_timeout";
    case StepTimeout::Command: return "[timeouts] command";
    case StepTimeout::Lock: return "[timeouts] lock";
    case StepTimeout::Shutdown: return "[timeouts] shutdown";
    case StepTimeout::Catchup: return "[timeouts] catchup";
    case StepTimeout::Promote: return "[timeouts] promote";
    case StepTimeout::Unreachable: return "[timeouts] unreachable";
    case StepTimeout::Follow: return "[timeouts] follow";
    case StepTimeout::Rewind: return "[timeouts] rewind";
    case StepTimeout::FailoverHook: return "[timeouts] lock + the failover's steps";
    case StepTimeout::FollowHook: return "[timeouts] lock + follow-primary's steps";
    }
    return "";
}

double timeout_seconds(const Config &c, StepTimeout t) {
    switch (t) {
    case StepTimeout::None:
    case StepTimeout::Command: return c.command_timeout;
    case StepTimeout::Connect: return c.connect_timeout;
    case StepTimeout::Lock: return c.lock_timeout;
    case StepTimeout::Shutdown: return c.shutdown_timeout;
    case StepTimeout::Catchup: return c.catchup_timeout;
    case StepTimeout::Promote: return c.promote_timeout;
    case StepTimeout::Unreachable: return c.unreachable_timeout;
    case StepTimeout::Follow: return c.follow_timeout;
    case StepTimeout::Rewind: return c.rewind_timeout;
    case StepTimeout::FailoverHook:
    case StepTimeout::FollowHook: {
        // pgpool's hook runs every step of its run, each within its timeout
        double sum = c.lock_timeout;
        for (const auto &s : t == StepTimeout::FailoverHook ? primary_failover_steps() : follow_primary_steps())
            sum += timeout_seconds(c, s.timeout);
        return sum;
    }
    }
    return c.command_timeout;
}

const char *dry_run_name(DryRunMode m) {
    switch (m) {
    case DryRunMode::Runs: return "runs";
    case DryRunMode::Stops: return "stops";
    case DryRunMode::Skips: return "skips";
    }
    return "?";
}

std::string dry_run_summary(const std::string &text) { return text.empty() ? "dry run" : "dry run: " + text; }

StepCall::StepCall(const Context &ctx, const StepContract &c, double timeout)
    : c_(c), dry_run_(ctx.dry_run), timeout_(timeout), command_(ctx.cfg.command_timeout) {}

void StepCall::before_changes(const std::string &would, nlohmann::json details) const {
    if (c_.dry_run.mode != DryRunMode::Stops)
        throw Error(PGFO_ERR_INTERNAL, std::string("step ") + c_.name + " reached before_changes(), but its row says "
                                           "dry run: " + dry_run_name(c_.dry_run.mode) + " (a bug in its step table)");
    if (dry_run_) throw DryRunStop{dry_run_summary(would), std::move(details)};
}

nlohmann::json step_info_json(const StepInfo &s) {
    nlohmann::json j = {{"step", s.name},
                        {"description", s.what},
                        {"timeout", s.timeout == StepTimeout::None ? nlohmann::json(nullptr)
                                                                    : nlohmann::json(timeout_key(s.timeout))},
                        {"dry_run", dry_run_name(s.dry_run.mode)},
                        {"events", s.events}};
    if (s.dry_run.mode == DryRunMode::Skips) j["dry_run_summary"] = dry_run_summary(s.dry_run.skip_text);
    if (!s.applies.empty()) j["applies"] = s.applies;
    return j;
}

} // namespace pgfo
