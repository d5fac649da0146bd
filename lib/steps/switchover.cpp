// A planned switchover: preflight and gates that refuse before any downtime,
// a CHECKPOINT while the primary still serves writes, then the safe failover
// (the primary is stopped in fast mode), the old primary follows, every other
// standby follows, synchronous replication restored. A probe measures the
// write gap the switch caused.
#include "steps/switchover.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/text.h"
#include "pg/sync_names.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/ops.h"
#include "steps/runner.h"

namespace pgfo {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json node_json(const Node &n) { return {{"id", n.id}, {"host", n.host}, {"port", n.port}}; }

std::string app_name(const Node &n) {
    return n.application_name.empty() ? "node" + std::to_string(n.id) : n.application_name;
}

std::string bytes_text(long long b) {
    char buf[48];
    if (b >= 10LL << 20) std::snprintf(buf, sizeof buf, "%lld MB (%lld bytes)", b >> 20, b);
    else if (b >= 10LL << 10) std::snprintf(buf, sizeof buf, "%lld kB (%lld bytes)", b >> 10, b);
    else std::snprintf(buf, sizeof buf, "%lld bytes", b);
    return buf;
}

std::string secs_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f s", s);
    return buf;
}

// The one node out of recovery among those configured; throws unless exactly one.
const Node &find_primary(Context &ctx) {
    const Node *primary = nullptr;
    std::string seen;
    for (const auto &r : node_roles(ctx)) {
        // a node that answers but whose role cannot be read stops the switchover
        if (r.error != PGFO_OK) throw Error(r.error, r.detail);
        if (r.kind != NodeRole::Primary) continue;
        seen += (seen.empty() ? "" : ", ") + node_label(*r.node);
        if (primary)
            throw Error(PGFO_ERR_STATE, "more than one primary: " + seen + "; resolve that before a switchover");
        primary = r.node;
    }
    if (!primary) throw Error(PGFO_ERR_STATE, "no configured node is a running primary");
    return *primary;
}

// Commits a transaction that writes nothing but its commit record
// (txid_current()) every 10 ms: on the old primary until it stops answering,
// then on the new one until it accepts one. The write gap is the time from
// the last commit the old primary acknowledged to the first the new one did,
// as a client sees it. Needs no table and no setting. Runs on its own thread
// with its own connections and a copy of the configuration; it never logs.
class WriteProbe {
public:
    WriteProbe(const Config &cfg, const Node &from, const Node &to) : cfg_(cfg), from_(from), to_(to) {
        cfg_.connect_timeout = 1;
        thread_ = std::thread([this] { run(); });
    }
    ~WriteProbe() { stop(); }
    WriteProbe(const WriteProbe &) = delete;
    WriteProbe &operator=(const WriteProbe &) = delete;

    // Wait up to `timeout` for the first commit on the new primary, then stop.
    void finish(double timeout) {
        auto until = Clock::now() + std::chrono::duration<double>(timeout);
        while (Clock::now() < until) {
            {
                std::lock_guard<std::mutex> g(mu_);
                if (first_new_ || !thread_error_.empty()) break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        stop();
    }
    void stop() {
        halt_ = true;
        if (thread_.joinable()) thread_.join();
    }

    // {"write_gap_s", ...} once both ends were seen; else why not.
    json result() const {
        std::lock_guard<std::mutex> g(mu_);
        json r = {{"method", "txid_current() every 10 ms, old primary then new primary"},
                  {"commits_old", commits_old_}};
        if (last_old_) r["last_commit_old"] = last_old_wall_;
        if (first_new_) r["first_commit_new"] = first_new_wall_;
        if (last_old_ && first_new_)
            r["write_gap_s"] = std::chrono::duration<double>(*first_new_ - *last_old_).count();
        else
            r["unknown"] = !thread_error_.empty() ? thread_error_
                           : !last_old_           ? "no probe commit succeeded on the old primary"
                                                  : "no probe commit succeeded on the new primary";
        return r;
    }

private:
    void run() {
        std::optional<PgConn> c;
        bool old_side = true;
        while (!halt_) {
            const Node &n = old_side ? from_ : to_;
            try {
                if (!c) c.emplace(PgConn::open(n, cfg_));
                c->scalar("SELECT txid_current()", {}, 2.0);
                auto now = Clock::now();
                std::lock_guard<std::mutex> g(mu_);
                if (old_side) {
                    last_old_ = now;
                    last_old_wall_ = iso8601_now();
                    ++commits_old_;
                } else {
                    first_new_ = now;
                    first_new_wall_ = iso8601_now();
                    return;
                }
            } catch (const std::exception &e) {
                c.reset();
                std::lock_guard<std::mutex> g(mu_);
                if (old_side && !last_old_) {
                    thread_error_ = std::string("the old primary refused the probe: ") + e.what();
                    return;
                }
                old_side = false; // the old primary stopped: from now on, the new one
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    Config cfg_;
    const Node from_, to_;
    std::thread thread_;
    std::atomic<bool> halt_{false};
    mutable std::mutex mu_;
    std::optional<Clock::time_point> last_old_, first_new_;
    std::string last_old_wall_, first_new_wall_, thread_error_;
    long commits_old_ = 0;
};

// How long a step of the plan may take at most, from the configuration.
double step_timeout(const Config &c, const std::string &step) {
    if (step == "lock" || step == "restore_sync") return c.lock_timeout;
    if (step == "wait_shutdown" || step == "stop_follower" || step == "checkpoint") return c.shutdown_timeout;
    if (step == "wait_flush") return c.catchup_timeout;
    if (step == "promote") return c.promote_timeout;
    if (step == "rewind") return c.rewind_timeout;
    if (step == "start" || step == "wait_streaming") return c.follow_timeout;
    if (step == "inspect" || step == "one_primary" || step == "preflight") return c.connect_timeout;
    return c.command_timeout;
}

class Switchover {
public:
    Switchover(Context &ctx, const Node &to) : ctx_(ctx), to_(to) {}

    StepResult preflight();
    StepResult gates();
    StepResult checkpoint();

    const Node *from() const { return from_; }
    const std::vector<const Node *> &others() const { return others_; }
    json plan() const;

private:
    Context &ctx_;
    const Node &to_;
    const Node *from_ = nullptr;
    std::vector<const Node *> others_;
    std::optional<PgConn> conn_; // to the primary
};

struct SwitchoverStep {
    const char *name;
    const char *what;
    StepResult (Switchover::*fn)();
};

const SwitchoverStep kSwitchover[] = {
    {"preflight", "find the primary; the target must be a standby streaming from it", &Switchover::preflight},
    {"gates", "refuse before any downtime: the target's replay lag ([switchover] max_lag), the archiver "
              "backlog (max_archive_backlog), a synchronous standby left after the switch",
     &Switchover::gates},
    {"checkpoint", "CHECKPOINT on the primary while it still serves writes ([switchover] checkpoint), so that "
                   "its shutdown checkpoint has little left to write",
     &Switchover::checkpoint},
};

StepResult Switchover::preflight() {
    from_ = &find_primary(ctx_);
    if (from_->id == to_.id) throw Error(PGFO_ERR_STATE, node_label(to_) + " is already the primary");
    conn_.emplace(PgConn::open(*from_, ctx_.cfg));
    auto rows = conn_->query("SELECT application_name, pg_current_wal_lsn() - flush_lsn FROM pg_stat_replication "
                             "WHERE state = 'streaming'",
                             {}, ctx_.cfg.command_timeout);
    bool target_streams = false;
    json lag = json::object();
    for (const auto &r : rows) {
        if (!r.at(0)) continue;
        lag[*r.at(0)] = r.at(1).value_or("?");
        if (*r.at(0) == app_name(to_)) target_streams = true;
        for (const auto &[id, n] : ctx_.cfg.nodes)
            if (id != to_.id && id != from_->id && app_name(n) == *r.at(0)) others_.push_back(&n);
    }
    if (!target_streams)
        throw Error(PGFO_ERR_STATE, node_label(to_) + " ('" + app_name(to_) + "') is not streaming from the primary " +
                                        node_label(*from_) + ": not switching over to it");
    return StepResult::done(node_label(*from_) + " is the primary; " + node_label(to_) + " streams from it",
                            {{"primary", from_->id}, {"lag_bytes", lag}});
}

StepResult Switchover::gates() {
    const Config &c = ctx_.cfg;
    json d = json::object();
    std::vector<std::string> passed;
    // 1. The target's replay lag: the promotion waits for its replay.
    auto rows = conn_->query("SELECT (pg_current_wal_lsn() - COALESCE(replay_lsn, flush_lsn, '0/0'))::bigint, "
                             "COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8 FROM pg_stat_replication "
                             "WHERE application_name = $1 AND state = 'streaming' LIMIT 1",
                             {app_name(to_)}, c.command_timeout);
    if (rows.empty() || !rows[0].at(0))
        throw Error(PGFO_ERR_STATE, node_label(to_) + " no longer streams from " + node_label(*from_) +
                                        ": not switching over to it. State: nothing was changed");
    long long lag_bytes = std::stoll(*rows[0].at(0));
    double lag_s = rows[0].at(1) ? std::stod(*rows[0].at(1)) : 0;
    d["replay_lag_bytes"] = lag_bytes;
    d["replay_lag_s"] = lag_s;
    d["max_lag"] = c.max_lag;
    if (c.max_lag_bytes >= 0 && lag_bytes > c.max_lag_bytes)
        throw Error(PGFO_ERR_REFUSED, node_label(to_) + " replays " + bytes_text(lag_bytes) + " behind the primary " +
                                          node_label(*from_) + ", over max_lag = " + c.max_lag + " (" +
                                          std::to_string(c.max_lag_bytes) + " bytes): not switching over. State: nothing "
                                          "was changed, " + node_label(*from_) + " is still the primary");
    if (c.max_lag_seconds >= 0 && lag_s > c.max_lag_seconds)
        throw Error(PGFO_ERR_REFUSED, node_label(to_) + " replays " + secs_text(lag_s) + " behind the primary " +
                                          node_label(*from_) + ", over max_lag = " + c.max_lag +
                                          ": not switching over. State: nothing was changed, " +
                                          node_label(*from_) + " is still the primary");
    passed.push_back("replay lag " + (c.max_lag_seconds >= 0 ? secs_text(lag_s) : bytes_text(lag_bytes)) +
                     " (max_lag = " + c.max_lag + ")");

    // 2. The archiver backlog: a fast shutdown archives every .ready file first.
    auto mode = conn_->scalar("SELECT current_setting('archive_mode')", {}, c.command_timeout).value_or("off");
    d["archive_mode"] = mode;
    if (mode == "off") {
        passed.push_back("archive_mode = off");
    } else {
        const char *ready_sql = conn_->server_version() >= 120000
                                    ? "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
                                    : "SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') AS f(name) "
                                      "WHERE name LIKE '%.ready'";
        long ready = std::stol(conn_->scalar(ready_sql, {}, c.command_timeout).value_or("0"));
        auto st = conn_->query("SELECT last_failed_wal, last_failed_time > COALESCE(last_archived_time, "
                               "'-infinity') FROM pg_stat_archiver",
                               {}, c.command_timeout);
        bool failing = !st.empty() && st[0].at(1) && *st[0].at(1) == "t";
        d["archive_ready"] = ready;
        d["archive_failing"] = failing;
        d["max_archive_backlog"] = c.max_archive_backlog;
        if (c.max_archive_backlog >= 0 && ready > c.max_archive_backlog)
            throw Error(PGFO_ERR_REFUSED,
                        node_label(*from_) + " has " + std::to_string(ready) +
                            " WAL files waiting for archive_command, over max_archive_backlog = " +
                            std::to_string(c.max_archive_backlog) +
                            (failing ? " (pg_stat_archiver: archiving fails, last failed " +
                                           st[0].at(0).value_or("?") + ")"
                                     : "") +
                            "; its shutdown would archive them all first: not switching over. State: nothing was "
                            "changed, " + node_label(*from_) + " is still the primary");
        passed.push_back(std::to_string(ready) + " WAL files to archive (max_archive_backlog = " +
                         (c.max_archive_backlog >= 0 ? std::to_string(c.max_archive_backlog) : "off") + ")" +
                         (failing ? ", WARNING: archiving fails" : ""));
    }

    // 3. Synchronous replication: someone must be left to confirm commits.
    std::string spec = c.sync_standby_names_target.empty() ? current_sync_standbys(*conn_) : c.sync_standby_names_target;
    d["synchronous_standby_names"] = spec;
    if (parse_sync_names(spec).method == SyncSpec::Method::None || c.sync_policy == SyncPolicy::Async) {
        passed.push_back("asynchronous replication");
    } else {
        std::vector<std::string> after = {app_name(*from_)}; // the old primary rejoins as a standby
        for (const Node *n : others_) after.push_back(app_name(*n));
        std::string would = restrict_sync_names(spec, after);
        d["standbys_after"] = after;
        d["synchronous_after"] = would;
        if (would.empty())
            throw Error(PGFO_ERR_REFUSED, "no synchronous standby would remain after the switch: "
                                          "synchronous_standby_names '" + spec + "' names none of the standbys " +
                                          node_label(to_) + " would have (" + join(after) +
                                          "): not switching over. State: nothing was changed, " +
                                          node_label(*from_) + " is still the primary");
        SyncSpec before = parse_sync_names(spec), then = parse_sync_names(would);
        passed.push_back("synchronous standbys after the switch: '" + would + "'" +
                         (then.num < before.num ? " (WARNING: " + std::to_string(then.num) + " instead of " +
                                                      std::to_string(before.num) + ")"
                                                : ""));
    }
    // Failover slots (slots synced to the target) are not managed here yet: nothing to check.
    return StepResult::done(join(passed, "; "), d);
}

StepResult Switchover::checkpoint() {
    const PreCheckpoint mode = ctx_.cfg.pre_checkpoint;
    if (mode == PreCheckpoint::Off) return StepResult::skip("[switchover] checkpoint = off");
    const int times = mode == PreCheckpoint::Twice ? 2 : 1;
    if (ctx_.dry_run)
        return StepResult::skip("dry run: would run CHECKPOINT " + std::string(times == 2 ? "twice" : "once") +
                                " on " + node_label(*from_));
    json runs = json::array();
    for (int i = 0; i < times; ++i) {
        Stopwatch sw;
        try {
            conn_->query("CHECKPOINT", {}, ctx_.cfg.shutdown_timeout);
        } catch (const Error &e) {
            // Only a speed-up: without it the shutdown checkpoint does the work.
            ctx_.log().warn("CHECKPOINT on {} failed ({}); going on without it", node_label(*from_), e.what());
            return StepResult::done("CHECKPOINT failed, going on: " + std::string(e.what()), {{"error", e.what()}});
        }
        runs.push_back(sw.seconds());
    }
    std::string took = secs_text(runs[0].get<double>());
    if (times == 2) took += ", then " + secs_text(runs[1].get<double>());
    return StepResult::done("CHECKPOINT on " + node_label(*from_) + " took " + took, {{"seconds", runs}});
}

// Every step a switchover would run, with its timeout, for the dry run.
json Switchover::plan() const {
    json plan = json::array();
    auto add = [&](const std::string &run, const std::string &step, const std::string &what) {
        plan.push_back({{"run", run}, {"step", step}, {"what", what}, {"timeout_s", step_timeout(ctx_.cfg, step)}});
    };
    for (const auto &s : kSwitchover) add("switchover", s.name, s.what);
    for (const auto &s : primary_failover_steps()) add("failover", s.name, s.what);
    std::vector<const Node *> followers = {from_};
    followers.insert(followers.end(), others_.begin(), others_.end());
    for (const Node *n : followers)
        for (const auto &s : follow_primary_steps()) add("follow_primary node " + std::to_string(n->id), s.name, s.what);
    return plan;
}

} // namespace

void switchover(Context &ctx, int target) {
    const Node &to = node_by_id(ctx.cfg, target);
    Runner run(ctx, "switchover", {{"target", node_json(to)}});
    Switchover so(ctx, to);
    json parts = json::array();
    auto keep_part = [&] { parts.push_back(json::parse(ctx.result_json, nullptr, false)); };
    std::unique_ptr<WriteProbe> probe;
    json gap;
    auto end_probe = [&](double wait) {
        if (!probe) return;
        probe->finish(wait);
        gap = probe->result();
        run.report()["write_probe"] = gap;
        probe.reset();
    };
    std::string rejoin = "unknown"; // how the old primary rejoined: clean, rewound
    try {
        for (const auto &s : kSwitchover) {
            // the probe starts before the checkpoint, so that it sees the writes the old primary still takes
            if (std::string(s.name) == "checkpoint" && !ctx.dry_run)
                probe = std::make_unique<WriteProbe>(ctx.cfg, *so.from(), to);
            run.step(s.name, s.what, [&] { return (so.*s.fn)(); });
        }
        if (ctx.dry_run) {
            json plan = so.plan();
            run.report()["plan"] = plan;
            ctx.result_json = run.finish(PGFO_OK, "dry run: would switch over from " + node_label(*so.from()) +
                                                      " to " + node_label(to) + " in " +
                                                      std::to_string(plan.size()) + " steps",
                                         {{"from", so.from()->id}, {"to", to.id}});
            return;
        }
        // A switchover stops the primary itself, whatever on_running says for hooks.
        try {
            failover(ctx, so.from()->id, to.id, so.from()->id, OnRunning::Stop);
        } catch (...) {
            keep_part();
            throw;
        }
        keep_part();
        end_probe(ctx.cfg.promote_timeout);
        follow_primary(ctx, so.from()->id, to.id);
        keep_part();
        if (parts.back().is_object() && parts.back().contains("verdict"))
            rejoin = parts.back()["verdict"].value("rejoin", "unknown");
        for (const Node *n : so.others()) {
            follow_primary(ctx, n->id, to.id);
            keep_part();
        }
    } catch (const Error &e) {
        end_probe(0);
        run.report()["parts"] = parts;
        ctx.result_json = run.finish(e.code(), e.what(), {{"from", so.from() ? so.from()->id : -1}, {"to", to.id}});
        throw;
    }
    run.report()["parts"] = parts;
    const Node &from = *so.from();
    json verdict = {{"from", from.id}, {"to", to.id}, {"old_primary_rejoin", rejoin}};
    std::string gap_text;
    if (gap.contains("write_gap_s")) {
        verdict["write_gap_s"] = gap["write_gap_s"];
        gap_text = "; write gap " + secs_text(gap["write_gap_s"].get<double>());
    } else {
        verdict["write_gap_s"] = nullptr;
        gap_text = "; write gap unknown (" + gap.value("unknown", std::string("no probe")) + ")";
    }
    ctx.result_json = run.finish(PGFO_OK,
                                 node_label(to) + " is the primary; " + node_label(from) +
                                     (rejoin == "clean"     ? " follows it without pg_rewind"
                                      : rejoin == "rewound" ? " follows it after pg_rewind"
                                                            : " follows it (rejoin: " + rejoin + ")") +
                                     (so.others().empty() ? ""
                                                          : ", and " + std::to_string(so.others().size()) +
                                                                " other standby(s)") +
                                     gap_text,
                                 verdict);
}

} // namespace pgfo
