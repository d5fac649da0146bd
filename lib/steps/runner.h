// The step runner: one place for logging, timing, events and the report of
// every step of every sequence (failover, standby failure, single steps).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "run/context.h"
#include "core/error.h"
#include "remote/exec.h"

namespace pgfo {

// The report's "remote" entry: per node, ssh connections opened, remote calls
// made and the seconds they took ([] when none).
nlohmann::json remote_costs_json(const RemoteCosts &costs);

// What a step function returns: a one-line summary for the log, whether it
// was skipped, and details (LSNs, nodes) that go into its events and report.
struct StepResult {
    std::string summary;
    bool skipped = false;
    nlohmann::json details = nlohmann::json::object();

    static StepResult done(std::string s, nlohmann::json d = nlohmann::json::object()) {
        return {std::move(s), false, std::move(d)};
    }
    static StepResult skip(std::string why, nlohmann::json d = nlohmann::json::object()) {
        return {std::move(why), true, std::move(d)};
    }
};

// A step as a plan lists it (a dry run's switchover): name and what it does.
struct StepInfo {
    std::string name;
    std::string what;
};

class Runner {
public:
    // kind: "failover", "standby_failure", "step"; subject: nodes involved.
    Runner(Context &ctx, std::string kind, nlohmann::json subject);
    ~Runner() { ctx_.end_run(); }
    Runner(const Runner &) = delete;
    Runner &operator=(const Runner &) = delete;

    // Run one named step. Logs "name: what" at the start and the summary with
    // its duration at the end; emits step.started and step.succeeded /
    // step.skipped / step.failed. A pgfo::Error is recorded and rethrown.
    template <class F>
    StepResult step(const char *name, const char *what, F &&fn) {
        begin_step(name, what);
        Stopwatch sw;
        const RemoteCosts before = remote_costs();
        try {
            StepResult r = fn();
            end_step(name, sw.seconds(), r, before);
            return r;
        } catch (const Error &e) {
            fail_step(name, sw.seconds(), e.code(), e.what(), before);
            throw;
        }
    }

    // Close the run: emits <kind>.succeeded or <kind>.failed and fills the
    // report's verdict. Returns the report.
    nlohmann::json finish(pgfo_status_t code, const std::string &message, nlohmann::json verdict);

    nlohmann::json &report() { return report_; }
    Context &ctx() { return ctx_; }

private:
    void begin_step(const char *name, const char *what);
    void end_step(const char *name, double secs, const StepResult &r, const RemoteCosts &before);
    void fail_step(const char *name, double secs, pgfo_status_t code, const std::string &msg,
                   const RemoteCosts &before);

    // One ssh master per destination for the whole run (nested runs share it).
    SshSession ssh_;
    Context &ctx_;
    std::string kind_;
    nlohmann::json subject_;
    nlohmann::json report_;
    Stopwatch total_;
    RemoteCosts costs_at_start_ = remote_costs();
};

} // namespace pgfo
