// What a step row declares besides its name, sentence and body, and what the
// Runner holds every step to (steps/runner.h):
//  - its timeout: a configuration key; the runner hands the body the value
//    (StepCall::timeout()), the body reads no [timeouts] setting itself;
//  - its dry run: Runs (read-only, runs as in a real run; the waits of
//    steps/ops.cpp look once), Skips (the runner skips it with the row's
//    "dry run: ..." summary and never calls the body), or Stops (the body
//    does its read-only part, then StepCall::before_changes() ends it there,
//    skipped with "dry run: <what it would do>");
//  - the domain events (steps/events.h) its body may emit: any other event
//    emitted while it runs is a bug (Context::emit refuses it, see
//    run/context.h).
// `pgfailover plan` prints these tables as they are built in.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"

namespace pgfo {

class Context;

// The configuration key a step's timeout comes from.
enum class StepTimeout {
    None,         // no bound of its own: each single command within [timeouts] command
    Connect,      // [connection] connect_timeout
    Command,      // [timeouts] command
    Lock,         // [timeouts] lock
    Shutdown,     // [timeouts] shutdown
    Catchup,      // [timeouts] catchup
    Promote,      // [timeouts] promote
    Unreachable,  // [timeouts] unreachable
    Follow,       // [timeouts] follow
    Rewind,       // [timeouts] rewind
    FailoverHook, // pgpool's failover_command: [timeouts] lock + each failover step's timeout
    FollowHook,   // pgpool's follow_primary_command: [timeouts] lock + each follow-primary step's
};
// "[timeouts] shutdown", "[connection] connect_timeout", "" for None.
std::string timeout_key(StepTimeout t);
// Its value in seconds under `cfg` (None: [timeouts] command).
double timeout_seconds(const Config &cfg, StepTimeout t);

enum class DryRunMode { Runs, Stops, Skips };
struct DryRun {
    DryRunMode mode;
    const char *skip_text; // Skips: the summary after "dry run: " ("" for just "dry run")
};
inline constexpr DryRun kDryRunRuns{DryRunMode::Runs, nullptr};
inline constexpr DryRun kDryRunStops{DryRunMode::Stops, nullptr};
constexpr DryRun dry_run_skips(const char *text) { return {DryRunMode::Skips, text}; }
const char *dry_run_name(DryRunMode m); // "runs", "stops", "skips"
// "dry run: <text>", or "dry run" for an empty text.
std::string dry_run_summary(const std::string &text);

// A row's contract, as the Runner reads it from any step table's row.
struct StepContract {
    const char *name;
    const char *what;
    StepTimeout timeout;
    DryRun dry_run;
    const std::vector<const char *> *events;
};

// Thrown by StepCall::before_changes() in a dry run; the Runner catches it
// and records the step as skipped. Not a pgfo::Error: a body's
// `catch (const Error &)` never swallows it.
struct DryRunStop {
    std::string summary;
    nlohmann::json details;
};

// What the Runner hands a step's body.
class StepCall {
public:
    StepCall(const Context &ctx, const StepContract &c, double timeout);

    // The step's timeout in seconds: its row's key under the configuration
    // (or the caller's, for a single step of the C interface).
    double timeout() const { return timeout_; }
    // The deadline of each single query or command inside the step
    // ([timeouts] command).
    double command() const { return command_; }
    // The body is about to change something. In a dry run the step ends
    // here, skipped: "dry run: <would>" with `details`. Only a row whose dry
    // run is Stops may call it (anything else is a bug: PGFO_ERR_INTERNAL,
    // in a real run too).
    void before_changes(const std::string &would, nlohmann::json details = nlohmann::json::object()) const;
    const StepContract &contract() const { return c_; }

private:
    const StepContract &c_;
    bool dry_run_;
    double timeout_;
    double command_;
};

// A step as a plan lists it: a step table's row without its body.
struct StepInfo {
    std::string name;
    std::string what;
    StepTimeout timeout = StepTimeout::None;
    DryRun dry_run = kDryRunRuns;
    std::vector<std::string> events;
    std::string applies; // "" always; otherwise when the step is part of the procedure
};
nlohmann::json step_info_json(const StepInfo &s);

// One row of any step table as a StepInfo.
template <class Row>
StepInfo step_info(const Row &r, std::string applies = {}) {
    return {r.name, r.what, r.timeout, r.dry_run, {r.events.begin(), r.events.end()}, std::move(applies)};
}

} // namespace pgfo
