#include "steps/runner.h"

#include <cstdio>

namespace pgfo {
namespace {

std::string secs_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f s", s);
    return buf;
}

double round_ms(double s) { return static_cast<double>(static_cast<long long>(s * 1000.0 + 0.5)) / 1000.0; }

} // namespace

nlohmann::json remote_costs_json(const RemoteCosts &costs) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto &[id, c] : costs)
        a.push_back({{"node", id}, {"ssh_connections", c.connections}, {"remote_calls", c.calls},
                     {"seconds", round_ms(c.seconds)}, {"connect_seconds", round_ms(c.connect_seconds)}});
    return a;
}

Runner::Runner(Context &ctx, std::string kind, nlohmann::json subject)
    : ctx_(ctx), kind_(std::move(kind)), subject_(std::move(subject)) {
    ctx_.begin_run(kind_);
    report_ = nlohmann::json::object();
    report_["kind"] = kind_;
    report_["run_id"] = ctx_.run_id();
    report_["dry_run"] = ctx_.dry_run;
    report_["nodes"] = subject_;
    report_["steps"] = nlohmann::json::array();
    ctx_.log().info("{} {}started (run {}): {}", kind_, ctx_.dry_run ? "dry run " : "",
                    ctx_.run_id(), to_json_text(subject_));
    ctx_.emit(kind_ + ".started", "", "info", {{"nodes", subject_}, {"dry_run", ctx_.dry_run}});
    // The nodes this run is about, reached over ssh: connect now, in the
    // background, so that the handshake overlaps the first steps.
    for (const auto &[role, n] : subject_.items()) {
        if (!n.is_object() || !n.contains("id") || !n["id"].is_number_integer()) continue;
        auto it = ctx_.cfg.nodes.find(n["id"].get<int>());
        if (it != ctx_.cfg.nodes.end()) ssh_prewarm(it->second, ctx_.cfg.command_timeout);
    }
}

void Runner::begin_step(const char *name, const char *what) {
    ctx_.log().info("step {}: {}", name, what);
    ctx_.set_current_step(name);
    ctx_.emit("step.started", name, "info", {{"nodes", subject_}, {"description", what}});
}

void Runner::end_step(const char *name, double secs, const StepResult &r, const RemoteCosts &before) {
    const char *outcome = r.skipped ? "skipped" : "succeeded";
    ctx_.log().info("step {} {} in {}: {}", name, r.skipped ? "skipped" : "done", secs_text(secs),
                    r.summary);
    nlohmann::json entry = {{"name", name}, {"outcome", outcome}, {"duration_s", round_ms(secs)},
                            {"summary", r.summary}, {"details", r.details}};
    auto costs = remote_costs_since(before);
    if (!costs.empty()) entry["remote"] = remote_costs_json(costs);
    report_["steps"].push_back(entry);
    nlohmann::json ev = r.details;
    ev["outcome"] = outcome;
    ev["duration_s"] = round_ms(secs);
    ev["summary"] = r.summary;
    ev["nodes"] = subject_;
    ctx_.emit(std::string("step.") + outcome, name, "info", ev);
}

void Runner::fail_step(const char *name, double secs, pgfo_status_t code, const std::string &msg,
                       const RemoteCosts &before) {
    ctx_.log().error("step {} failed after {}: {}", name, secs_text(secs), msg);
    nlohmann::json entry = {{"name", name}, {"outcome", "failed"}, {"duration_s", round_ms(secs)},
                            {"error", msg}, {"code", pgfo_status_name(code)}};
    auto costs = remote_costs_since(before);
    if (!costs.empty()) entry["remote"] = remote_costs_json(costs);
    report_["steps"].push_back(entry);
    ctx_.emit("step.failed", name, "error",
              {{"outcome", "failed"}, {"duration_s", round_ms(secs)}, {"error", msg},
               {"code", pgfo_status_name(code)}, {"nodes", subject_}});
}

nlohmann::json Runner::finish(pgfo_status_t code, const std::string &message, nlohmann::json verdict) {
    double secs = total_.seconds();
    report_["status"] = pgfo_status_name(code);
    report_["exit_code"] = static_cast<int>(code);
    report_["message"] = message;
    report_["duration_s"] = round_ms(secs);
    report_["verdict"] = verdict;
    report_["remote"] = remote_costs_json(remote_costs_since(costs_at_start_));
    bool ok = code == PGFO_OK;
    if (ok)
        ctx_.log().info("{} finished in {}: {}", kind_, secs_text(secs), message);
    else
        ctx_.log().error("{} FAILED after {} ({}): {}", kind_, secs_text(secs),
                         pgfo_status_name(code), message);
    nlohmann::json ev = verdict;
    ev["outcome"] = ok ? "succeeded" : "failed";
    ev["duration_s"] = round_ms(secs);
    ev["message"] = message;
    ev["code"] = pgfo_status_name(code);
    if (!ok) ev["error"] = message;
    ev["nodes"] = subject_;
    ctx_.emit(kind_ + (ok ? ".succeeded" : ".failed"), "", ok ? "info" : "critical", ev);
    return report_;
}

} // namespace pgfo
