// The step runner: one place for logging, timing, events and the report of
// every step of every sequence (failover, standby failure, single steps).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/context.h"
#include "core/error.h"
#include "remote/exec.h"
#include "steps/contract.h"

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

// A row whose body is given where it runs (status, check, the single steps
// of the C interface): the contract alone.
struct StepSpec {
    const char *name;
    const char *what;
    StepTimeout timeout;
    DryRun dry_run;
    std::vector<const char *> events;
};

// A row of a procedure's step table (the class T holds the procedure's
// state): its contract, its body and, when set, whether it applies at all
// (false: a feature the cluster's servers do not have; no events, no report
// entry). Written flat, {name, what, timeout, dry run, events, body[, applies]}:
// the contract's braces are elided.
template <class T>
struct StepRow : StepSpec {
    StepResult (T::*fn)(const StepCall &);
    bool (T::*applies)() = nullptr;
};

class Runner {
public:
    // kind: "failover", "standby_failure", "step"; subject: nodes involved.
    Runner(Context &ctx, std::string kind, nlohmann::json subject);
    ~Runner() { ctx_.end_run(); }
    Runner(const Runner &) = delete;
    Runner &operator=(const Runner &) = delete;

    // Run one step of a step table (any row with name, what, timeout,
    // dry_run and events: steps/contract.h), holding it to its row's
    // contract. Logs "name: what" at the start and the summary with its
    // duration at the end; emits step.started and step.succeeded /
    // step.skipped / step.failed. In a dry run a Skips row's body is never
    // called; a Stops row's body ends at StepCall::before_changes(). While
    // the body runs, only the row's events may be emitted. The body gets
    // the row's timeout (or `timeout`, when >= 0: a single step's caller's).
    // A pgfo::Error is recorded and rethrown.
    template <class Row, class F>
    StepResult step(const Row &row, F &&fn, double timeout = -1) {
        const StepContract c{row.name, row.what, row.timeout, row.dry_run, &row.events};
        return run_step(c, timeout, [&](const StepCall &call) { return fn(call); });
    }

    // Close the run: emits <kind>.succeeded or <kind>.failed and fills the
    // report's verdict. Returns the report.
    nlohmann::json finish(pgfo_status_t code, const std::string &message, nlohmann::json verdict);

    nlohmann::json &report() { return report_; }
    Context &ctx() { return ctx_; }

private:
    template <class F>
    StepResult run_step(const StepContract &c, double timeout, F &&fn) {
        begin_step(c.name, c.what);
        Scope scope(ctx_, {c.name, c.events});
        Stopwatch sw;
        const RemoteCosts before = remote_costs();
        try {
            StepResult r;
            if (ctx_.dry_run && c.dry_run.mode == DryRunMode::Skips) {
                r = StepResult::skip(dry_run_summary(c.dry_run.skip_text));
            } else {
                const StepCall call(ctx_, c, timeout >= 0 ? timeout : timeout_seconds(ctx_.cfg, c.timeout));
                try {
                    r = fn(call);
                } catch (DryRunStop &stop) {
                    r = StepResult::skip(std::move(stop.summary), std::move(stop.details));
                }
            }
            scope.end();
            end_step(c.name, sw.seconds(), r, before);
            return r;
        } catch (const Error &e) {
            scope.end();
            fail_step(c.name, sw.seconds(), e.code(), e.what(), before);
            throw;
        }
    }
    // The step's (or the run's) event scope on the context, for as long as it runs.
    class Scope {
    public:
        Scope(Context &ctx, Context::EventScope s) : ctx_(ctx) { ctx_.push_event_scope(s); }
        ~Scope() { end(); }
        void end() {
            if (open_) ctx_.pop_event_scope();
            open_ = false;
        }
        Scope(const Scope &) = delete;
        Scope &operator=(const Scope &) = delete;

    private:
        Context &ctx_;
        bool open_ = true;
    };

    void begin_step(const char *name, const char *what);
    void end_step(const char *name, double secs, const StepResult &r, const RemoteCosts &before);
    void fail_step(const char *name, double secs, pgfo_status_t code, const std::string &msg,
                   const RemoteCosts &before);

    // One ssh master per destination for the whole run (nested runs share it).
    SshSession ssh_;
    Context &ctx_;
    // No step of this run is running: a run nested in an outer run's step
    // is not held to that step's events.
    Scope outside_steps_{ctx_, {nullptr, nullptr}};
    std::string kind_;
    nlohmann::json subject_;
    nlohmann::json report_;
    Stopwatch total_;
    RemoteCosts costs_at_start_ = remote_costs();
};

} // namespace pgfo
