// pgfailover: the command pgpool-II runs as failover_command, and the
// commands an operator runs by hand. A thin layer over libpgfailover's C
// interface: parse the command line, configure a context, call, report.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "pgfailover.h"

namespace {

struct Options {
    std::string config;
    std::string log_level = "info";
    bool quiet = false;
    bool json = false;
    bool dry_run = false;
    bool level_given = false; // --log-level on the command line
    bool terminal = false;    // standard output is a terminal, and neither --json nor -q
    bool quiet_info = false;  // info lines would only clutter what is printed (status, check, a terminal)
};

pgfo_log_level_t level_from(const Options &o) {
    if (o.quiet) return PGFO_LOG_WARNING;
    if (!o.level_given && o.quiet_info) return PGFO_LOG_WARNING;
    if (o.log_level == "debug") return PGFO_LOG_DEBUG;
    if (o.log_level == "warning") return PGFO_LOG_WARNING;
    if (o.log_level == "error") return PGFO_LOG_ERROR;
    return PGFO_LOG_INFO;
}

class Ctx {
public:
    Ctx() {
        if (pgfo_ctx_new(&ctx_) != PGFO_OK) {
            std::fprintf(stderr, "pgfailover: out of memory\n");
            std::exit(PGFO_ERR_NOMEM);
        }
    }
    ~Ctx() { pgfo_ctx_free(ctx_); }
    pgfo_ctx_t *get() { return ctx_; }

private:
    pgfo_ctx_t *ctx_ = nullptr;
};

int fail(pgfo_ctx_t *ctx, pgfo_status_t st, const char *what) {
    std::fprintf(stderr, "pgfailover: %s: %s (%s, exit code %d)\n", what, pgfo_ctx_errmsg(ctx),
                 pgfo_status_name(st), static_cast<int>(st));
    return static_cast<int>(st);
}

// Load the configuration and apply the command line's settings; exits the
// process through the returned code before any server is touched.
pgfo_status_t setup(pgfo_ctx_t *ctx, const Options &o) {
    pgfo_ctx_set_log_stderr(ctx, level_from(o));
    pgfo_status_t st = pgfo_ctx_load_config(ctx, o.config.empty() ? nullptr : o.config.c_str());
    if (st != PGFO_OK) return st;
    return pgfo_ctx_set_dry_run(ctx, o.dry_run ? 1 : 0);
}

std::string lsn_distance_text(const nlohmann::json &v) {
    if (!v.is_number()) return "";
    double b = v.get<double>();
    char buf[48];
    if (b >= 10.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.0f MB behind", b / (1024 * 1024));
    else if (b >= 10.0 * 1024) std::snprintf(buf, sizeof buf, "%.0f kB behind", b / 1024);
    else std::snprintf(buf, sizeof buf, "%.0f bytes behind", b);
    return buf;
}

// What a person at a terminal sees while a run goes on: every step as it
// ends (unless `steps` is off: status and check print their own table), and
// one line, rewritten in place, with the step under way, its elapsed time
// and, while a wait reports it, the LSN distance still to go.
class Live {
public:
    explicit Live(bool steps) : steps_(steps), ticker_([this] { tick(); }) {}
    ~Live() { stop(); }
    void stop() {
        if (halt_.exchange(true)) return;
        ticker_.join();
        std::lock_guard<std::mutex> g(mu_);
        clear_line();
    }
    static void on_event(const pgfo_event_t *ev, void *user) { static_cast<Live *>(user)->event(ev); }

private:
    void event(const pgfo_event_t *ev) {
        std::string name = pgfo_event_name(ev);
        auto e = nlohmann::json::parse(pgfo_event_json(ev), nullptr, false);
        if (e.is_discarded()) return;
        std::lock_guard<std::mutex> g(mu_);
        if (name == "step.started") {
            step_ = pgfo_event_step(ev);
            started_ = std::chrono::steady_clock::now();
            distance_.clear();
            waiting_for_.clear();
        } else if (name == "step.progress") {
            distance_ = lsn_distance_text(e.value("lsn_distance", nlohmann::json()));
            waiting_for_ = e.value("waiting_for", "");
        } else if (name == "step.succeeded" || name == "step.skipped" || name == "step.failed") {
            clear_line();
            step_.clear();
            if (!steps_) return;
            const char *mark = name == "step.succeeded" ? "done" : name == "step.skipped" ? "skip" : "FAIL";
            std::string text = e.contains("error") ? e.value("error", "") : e.value("summary", "");
            std::printf("  %s %-16s %7.3f s  %s\n", mark, pgfo_event_step(ev), e.value("duration_s", 0.0),
                        text.c_str());
            std::fflush(stdout);
        } else if (steps_ && name.size() > 8 && name.compare(name.size() - 8, 8, ".started") == 0) {
            clear_line();
            std::string what = name.substr(0, name.size() - 8);
            const auto &nodes = e.value("nodes", nlohmann::json::object());
            if (nodes.contains("follower")) what += " node " + std::to_string(nodes["follower"].value("id", -1));
            if (nodes.contains("candidate")) what += " to node " + std::to_string(nodes["candidate"].value("id", -1));
            if (nodes.contains("target")) what += " to node " + std::to_string(nodes["target"].value("id", -1));
            std::printf("%s%s\n", what.c_str(), e.value("dry_run", false) ? " (dry run)" : "");
            std::fflush(stdout);
        }
    }
    void tick() {
        while (!halt_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            std::lock_guard<std::mutex> g(mu_);
            if (step_.empty()) continue;
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
            if (secs < 0.3) continue;
            std::string line = "  ... " + step_ + "  " + std::to_string(static_cast<int>(secs * 10) / 10) + "." +
                               std::to_string(static_cast<int>(secs * 10) % 10) + " s";
            if (!waiting_for_.empty()) line += "  waiting for " + waiting_for_;
            if (!distance_.empty()) line += ", " + distance_;
            std::printf("\r\033[K%s", line.c_str());
            std::fflush(stdout);
            shown_ = true;
        }
    }
    void clear_line() {
        if (!shown_) return;
        std::printf("\r\033[K");
        std::fflush(stdout);
        shown_ = false;
    }

    const bool steps_;
    std::mutex mu_;
    std::string step_, distance_, waiting_for_;
    std::chrono::steady_clock::time_point started_{};
    bool shown_ = false;
    std::atomic<bool> halt_{false};
    std::thread ticker_; // last: starts once the rest is set up
};

void print_plan(const nlohmann::json &plan) {
    std::cout << "Plan (dry run, nothing changed): " << plan.size() << " steps\n";
    std::string run;
    for (const auto &p : plan) {
        if (p.value("run", "") != run) {
            run = p.value("run", "");
            std::printf("%s:\n", run.c_str());
        }
        std::printf("  %-16s %6.0f s  %s\n", p.value("step", "").c_str(), p.value("timeout_s", 0.0),
                    p.value("what", "").c_str());
    }
    std::cout << "(the timeout is the longest the step may take; the gates above ran for real)\n";
}

void print_report(pgfo_ctx_t *ctx, const Options &o, bool live) {
    const char *report = pgfo_ctx_result_json(ctx);
    if (o.json) {
        std::cout << report << std::endl;
        return;
    }
    auto r = nlohmann::json::parse(report, nullptr, false);
    if (r.is_discarded() || !r.contains("steps")) return;
    if (!live) {
        if (o.dry_run && !r.contains("plan")) std::cout << "Plan (dry run, nothing changed):\n";
        auto print_steps = [](const nlohmann::json &steps) {
            for (const auto &s : steps) {
                std::string outcome = s.value("outcome", "");
                std::string text = s.contains("error") ? s.value("error", "") : s.value("summary", "");
                std::printf("  %-16s %-9s %s\n", s.value("name", "").c_str(), outcome.c_str(), text.c_str());
            }
        };
        print_steps(r["steps"]);
        // A switchover is made of runs (failover, follow_primary ...): their steps too.
        if (r.contains("parts") && r["parts"].is_array())
            for (const auto &part : r["parts"]) {
                if (!part.is_object() || !part.contains("steps")) continue;
                std::printf("%s:\n", part.value("kind", "").c_str());
                print_steps(part["steps"]);
            }
    }
    if (r.contains("plan")) print_plan(r["plan"]);
    if (live) {
        // The summary: the outcome, then the numbers a person asks for first.
        std::printf("\n%s %s in %.1f s\n", r.value("kind", "").c_str(),
                    r.value("status", "") == "PGFO_OK" ? "succeeded" : "FAILED", r.value("duration_s", 0.0));
        const auto &v = r.value("verdict", nlohmann::json::object());
        if (v.contains("write_gap_s") && v["write_gap_s"].is_number())
            std::printf("  write gap:  %.3f s (last commit on the old primary to the first on the new one)\n",
                        v["write_gap_s"].get<double>());
        if (v.contains("old_primary_rejoin"))
            std::printf("  old primary rejoined: %s\n", v.value("old_primary_rejoin", "").c_str());
    }
    std::cout << r.value("message", "") << std::endl;
}

std::string text_of(const nlohmann::json &v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
        char b[32];
        std::snprintf(b, sizeof b, "%.1f", v.get<double>());
        return b;
    }
    return v.dump();
}

// pgfailover status: one line per node (and, at a terminal, a summary).
void print_status(pgfo_ctx_t *ctx, bool summary) {
    auto r = nlohmann::json::parse(pgfo_ctx_result_json(ctx), nullptr, false);
    if (r.is_discarded() || !r.contains("cluster")) return;
    std::printf("%-4s %-22s %-8s %-3s %-12s %-12s %-10s %-7s %-9s %s\n", "node", "address", "role", "tl", "lsn",
                "replay", "lag", "lag s", "sync", "pg_control");
    for (const auto &n : r["cluster"]) {
        std::string addr = n.value("host", "") + ":" + std::to_string(n.value("port", 0));
        std::string role = n.value("reachable", false) ? n.value("role", "?") : "DOWN";
        std::string lsn = text_of(n.contains("current_lsn") ? n["current_lsn"] : n.value("receive_lsn", nlohmann::json()));
        std::string lag = n.contains("lag_bytes") ? std::to_string(n["lag_bytes"].get<long long>()) + " B" : "-";
        std::string ctl = n.contains("pg_control") ? n["pg_control"].value("state", "") : "-";
        std::printf("%-4d %-22s %-8s %-3s %-12s %-12s %-10s %-7s %-9s %s\n", n.value("id", -1), addr.c_str(),
                    role.c_str(), text_of(n.value("timeline", nlohmann::json())).c_str(), lsn.c_str(),
                    text_of(n.value("replay_lsn", nlohmann::json())).c_str(), lag.c_str(),
                    text_of(n.value("lag_s", nlohmann::json())).c_str(),
                    n.value("sync_state", n.value("role", "") == "primary" ? "" : "-").c_str(), ctl.c_str());
    }
    // Logical replication slots (PostgreSQL 17+ failover slots), one line each.
    for (const auto &n : r["cluster"]) {
        if (!n.contains("failover_slots") || !n["failover_slots"].contains("logical")) continue;
        for (const auto &s : n["failover_slots"]["logical"]) {
            std::string state = !s["invalidation_reason"].is_null() ? "invalidated (" + text_of(s["invalidation_reason"]) + ")"
                                : !s.value("failover", false)      ? "not a failover slot"
                                : s.value("synced", false)          ? (s.value("temporary", false) ? "synced, not sync-ready" : "synced")
                                                                    : "own";
            std::printf("node %d slot %-24s %-14s %-12s %s%s\n", n.value("id", -1), s.value("name", "").c_str(),
                        s.value("plugin", "").c_str(), text_of(s["confirmed_flush_lsn"]).c_str(), state.c_str(),
                        s.value("active", false) ? ", active" : "");
        }
    }
    if (!summary) return;
    int primaries = 0, standbys = 0, down = 0;
    long long worst = -1;
    std::string primary;
    for (const auto &n : r["cluster"]) {
        std::string role = n.value("reachable", false) ? n.value("role", "?") : "DOWN";
        if (role == "primary") {
            ++primaries;
            primary = "node " + std::to_string(n.value("id", -1));
        } else if (role == "standby") {
            ++standbys;
        } else if (role == "DOWN") {
            ++down;
        }
        if (n.contains("lag_bytes") && n["lag_bytes"].is_number()) worst = std::max(worst, n["lag_bytes"].get<long long>());
    }
    std::printf("\n%zu nodes: %s, %d standby(s), %d down", r["cluster"].size(),
                primaries == 1   ? ("primary " + primary).c_str()
                : primaries == 0 ? "NO primary"
                                 : (std::to_string(primaries) + " PRIMARIES").c_str(),
                standbys, down);
    if (worst >= 0) std::printf("; largest lag %lld bytes", worst);
    std::printf("\n");
}

// pgfailover check: one line per problem, with what to fix.
void print_problems(pgfo_ctx_t *ctx) {
    auto r = nlohmann::json::parse(pgfo_ctx_result_json(ctx), nullptr, false);
    if (r.is_discarded() || !r.contains("problems")) return;
    for (const auto &p : r["problems"])
        std::printf("PROBLEM %s: %s\n        fix: %s\n", p.value("node", "").c_str(), p.value("problem", "").c_str(),
                    p.value("fix", "").c_str());
    size_t n = r["problems"].size();
    if (n == 0) std::printf("no problems found\n");
    else std::printf("%zu problem(s) found\n", n);
}

// pgfailover plan: the step tables built into the library, one row per step
// (in the manner of pg_autoctl do fsm list): step, timeout key, dry-run
// behaviour, events, description.
void print_tables(const nlohmann::json &plan) {
    bool first = true;
    for (const auto &p : plan.value("procedures", nlohmann::json::array())) {
        if (!first) std::printf("\n");
        first = false;
        std::printf("%s (run %s): %s\n", p.value("procedure", "").c_str(), p.value("run", "").c_str(),
                    p.value("about", "").c_str());
        std::printf("  %-18s %-30s %-7s %-42s %s\n", "step", "timeout", "dry run", "events", "description");
        for (const auto &s : p.value("steps", nlohmann::json::array())) {
            std::string events;
            for (const auto &e : s.value("events", nlohmann::json::array()))
                events += (events.empty() ? "" : ",") + e.get<std::string>();
            std::string what = s.value("description", "");
            if (s.contains("applies")) what += " [" + s.value("applies", "") + "]";
            if (s.contains("dry_run_summary")) what += " [dry run: \"" + s.value("dry_run_summary", "") + "\"]";
            const std::string timeout = s["timeout"].is_string() ? s["timeout"].get<std::string>() : "-";
            std::printf("  %-18s %-30s %-7s %-42s %s\n", s.value("step", "").c_str(), timeout.c_str(),
                        s.value("dry_run", "").c_str(), events.empty() ? "-" : events.c_str(), what.c_str());
        }
    }
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"pgfailover: safe PostgreSQL failover for pgpool-II"};
    app.set_version_flag("--version", std::string("pgfailover ") + pgfo_version());
    app.require_subcommand(1);
    app.fallthrough();
    Options o;
    app.add_option("-c,--config", o.config,
                   "configuration file (default: $PGFAILOVER_CONFIG, else /etc/pgfailover/pgfailover.conf)");
    auto *level_opt = app.add_option("--log-level", o.log_level, "standard error log level (default: info; "
                                                                  "warning for status, check and at a terminal)")
                          ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
    app.add_flag("-q,--quiet", o.quiet, "log warnings and errors only");
    app.add_flag("--json", o.json, "print the run's report as JSON on standard output");

    auto *fo = app.add_subcommand(
        "failover",
        "pgpool's failover_command: pgfailover failover %d %h %p %D %m %H %M %P %r %R %N %S");
    fo->add_flag("-n,--dry-run", o.dry_run, "check and print the plan; change nothing");
    // pgpool's arguments are data, not options: "-1" is a node id, "" a missing value.
    std::vector<std::string> hook_args;
    fo->add_option("args", hook_args, "pgpool's arguments")->allow_extra_args();
    fo->positionals_at_end();
    fo->footer("Arguments, in pgpool's order: failed node id, host, port, data directory; new main node id,\n"
               "host; old main node id; old primary node id; new main port, data directory; old primary\n"
               "host, port. Trailing ones may be missing. Put options before the first argument.");

    auto *fp = app.add_subcommand(
        "follow-primary",
        "pgpool's follow_primary_command: pgfailover follow-primary %d %h %p %D %m %H %M %P %r %R %N %S");
    fp->add_flag("-n,--dry-run", o.dry_run, "check and print the plan; change nothing");
    std::vector<std::string> follow_args;
    fp->add_option("args", follow_args, "pgpool's arguments (node %d follows the new primary %m)")
        ->allow_extra_args();
    fp->positionals_at_end();
    fp->footer("Same arguments, in the same order, as failover. Put options before the first argument.");

    auto *so = app.add_subcommand("switchover", "planned switchover: make node --to the primary, safely");
    int switch_to = -1;
    so->add_option("--to", switch_to, "the standby (pgpool node id) to promote")->required()->check(
        CLI::Range(0, 127));
    so->add_flag("-n,--dry-run", o.dry_run, "run the gates, print every step with its timeout; change nothing");
    std::string max_lag;
    so->add_option("--max-lag", max_lag,
                   "refuse when the target replays more than this behind: a size (16MB) or a time (5s); "
                   "default [switchover] max_lag");
    bool around_pgpool = false;
    so->add_flag("--around-pgpool", around_pgpool,
                 "with [pcp] set: switch over without pcp_promote_node --switchover ([switchover] pgpool = off)");

    auto *st_cmd = app.add_subcommand("status", "every node: reachable, role, timeline, LSNs, lag, sync state");
    auto *ck_cmd = app.add_subcommand("check", "preflight: list every problem that would stop a failover");

    auto *plan_cmd = app.add_subcommand(
        "plan", "print the step tables built into the library: step, timeout, dry run, events, description");
    std::string plan_of;
    plan_cmd->add_option("procedure", plan_of, "failover, follow-primary, switchover or single-steps (default: all)")
        ->check(CLI::IsMember({"failover", "follow-primary", "switchover", "single-steps"}));
    plan_cmd->footer("Needs no configuration and touches no server. With --json: the library's pgfo_plan() report.");

    app.add_subcommand("version", "print the program and library versions");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : PGFO_ERR_USAGE;
    }

    if (app.got_subcommand("version")) {
        std::printf("pgfailover %s (libpgfailover %s)\n", PGFO_VERSION_STRING, pgfo_version());
        return 0;
    }

    if (plan_cmd->parsed()) {
        Ctx ctx;
        pgfo_status_t st = pgfo_plan(ctx.get(), plan_of.empty() ? nullptr : plan_of.c_str());
        if (st != PGFO_OK) return fail(ctx.get(), st, "plan");
        if (o.json) {
            std::cout << pgfo_ctx_result_json(ctx.get()) << std::endl;
        } else {
            auto plan = nlohmann::json::parse(pgfo_ctx_result_json(ctx.get()), nullptr, false);
            if (plan.is_discarded()) return fail(ctx.get(), PGFO_ERR_INTERNAL, "plan");
            print_tables(plan);
        }
        return 0;
    }

    o.level_given = level_opt->count() > 0;
    o.terminal = isatty(STDOUT_FILENO) == 1 && !o.json && !o.quiet;
    const bool table = st_cmd->parsed() || ck_cmd->parsed();
    o.quiet_info = table || o.terminal;

    Ctx ctx;
    pgfo_status_t st = setup(ctx.get(), o);
    if (st != PGFO_OK) return fail(ctx.get(), st, "configuration");
    if (!max_lag.empty()) {
        st = pgfo_ctx_set(ctx.get(), "switchover", "max_lag", max_lag.c_str());
        if (st != PGFO_OK) return fail(ctx.get(), st, "--max-lag");
    }
    if (around_pgpool) {
        st = pgfo_ctx_set(ctx.get(), "switchover", "pgpool", "off");
        if (st != PGFO_OK) return fail(ctx.get(), st, "--around-pgpool");
    }
    std::unique_ptr<Live> live;
    if (o.terminal) {
        live = std::make_unique<Live>(!table);
        pgfo_ctx_set_event_callback(ctx.get(), &Live::on_event, live.get());
    }

    const char *what = "failover";
    if (fo->parsed()) {
        std::vector<const char *> cargs;
        for (auto &a : hook_args) cargs.push_back(a.c_str());
        st = pgfo_failover_pgpool(ctx.get(), static_cast<int>(cargs.size()), cargs.data());
    } else if (fp->parsed()) {
        what = "follow-primary";
        std::vector<const char *> cargs;
        for (auto &a : follow_args) cargs.push_back(a.c_str());
        st = pgfo_follow_primary_pgpool(ctx.get(), static_cast<int>(cargs.size()), cargs.data());
    } else if (so->parsed()) {
        what = "switchover";
        st = pgfo_switchover(ctx.get(), switch_to);
    } else if (st_cmd->parsed() || ck_cmd->parsed()) {
        what = st_cmd->parsed() ? "status" : "check";
        st = st_cmd->parsed() ? pgfo_status(ctx.get()) : pgfo_check(ctx.get());
        if (live) live->stop();
        if (o.json) {
            std::cout << pgfo_ctx_result_json(ctx.get()) << std::endl;
        } else if (st_cmd->parsed()) {
            print_status(ctx.get(), o.terminal);
        } else {
            print_problems(ctx.get());
        }
        if (st == PGFO_ERR_CHECK) return st; // the problems are the message
        return st != PGFO_OK ? fail(ctx.get(), st, what) : 0;
    }
    if (live) live->stop();
    print_report(ctx.get(), o, live != nullptr);
    int rc = st != PGFO_OK ? fail(ctx.get(), st, what) : 0;
    // Webhooks: wait at most delivery_budget, the rest is spooled (logged).
    pgfo_ctx_flush_events(ctx.get(), -1.0);
    return rc;
}
