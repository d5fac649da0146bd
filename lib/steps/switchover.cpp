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
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/text.h"
#include "config/sync_names.h"
#include "config/pgpool_conf.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/outcome.h"
#include "steps/handover.h"
#include "steps/ops.h"
#include "steps/promotion.h"
#include "steps/sync_rep.h"
#include "steps/pcp.h"
#include "steps/runner.h"

namespace pgfo {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

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

// pgpool's view of one backend, from pcp_node_info:
// "host port status weight status_name pg_status role pg_role ..."
struct PoolNode {
    int status = -1;   // 1 waiting, 2 up, 3 down
    std::string role;  // primary, standby
    std::string line;
    bool up() const { return status == 1 || status == 2; }
};

PoolNode pool_node(Context &ctx, int id) {
    auto argv = pcp_argv(ctx.cfg, "pcp_node_info", {"-n", std::to_string(id)});
    ExecResult r = run_local(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, exec_failure(argv, r));
    PoolNode n;
    n.line = r.out.substr(0, r.out.find('\n'));
    std::vector<std::string> f;
    std::istringstream words(n.line);
    for (std::string w; words >> w;) f.push_back(w);
    if (f.size() < 7 || f[2].find_first_not_of("0123456789") != std::string::npos)
        throw Error(PGFO_ERR_EXEC, "unexpected pcp_node_info output for node " + std::to_string(id) + ": " +
                                       show_value(n.line, 200));
    n.status = std::stoi(f[2]);
    n.role = f[6];
    return n;
}

std::string pool_text(int id, const PoolNode &n) {
    return "node " + std::to_string(id) + " " + (n.status == 3 ? "down" : n.up() ? "up" : "status " +
                                                     std::to_string(n.status)) + " " + n.role;
}

class Switchover {
public:
    Switchover(Context &ctx, const Node &to) : ctx_(ctx), to_(to), via_pgpool_(switchover_via_pgpool(ctx.cfg)) {}

    StepResult preflight(const StepCall &s);
    StepResult gates(const StepCall &s);
    StepResult pgpool_gate(const StepCall &s);
    StepResult checkpoint(const StepCall &s);
    // through pgpool
    StepResult pcp_promote(const StepCall &s);
    StepResult failover_hook(const StepCall &s);
    StepResult follow_hooks(const StepCall &s);
    StepResult pgpool_view(const StepCall &s);

    bool via_pgpool() const { return via_pgpool_; }
    bool through_pgpool() { return via_pgpool_; } // a row's `applies`
    const Node *from() const { return from_; }
    const std::vector<const Node *> &others() const { return others_; }
    // the old primary, then every other standby
    std::vector<const Node *> followers() const {
        std::vector<const Node *> v = {from_};
        v.insert(v.end(), others_.begin(), others_.end());
        return v;
    }
    json plan() const;
    // Run one of the runs the switchover is made of; its report is kept in
    // `parts`, also when it fails.
    template <class F>
    json keep_part(F &&run) {
        try {
            run();
        } catch (...) {
            parts.push_back(ctx_.result());
            throw;
        }
        parts.push_back(ctx_.result());
        return parts.back();
    }
    // `n` follows the target, run here.
    json follow(const Node &n) {
        return keep_part([&] { follow_primary(ctx_, n.id, to_.id); });
    }
    // How a follower rejoined, from its follow-primary report; the old primary's is the verdict's.
    Rejoin note_rejoin(const Node &n, const json &rep) {
        Rejoin how = rep.is_object() ? rep.value("verdict", json::object()).value("rejoin", Rejoin::Unknown)
                                     : Rejoin::Unknown;
        if (&n == from_) rejoin = how;
        return how;
    }
    // the reports of the runs the switchover is made of
    json parts = json::array();
    Rejoin rejoin = Rejoin::Unknown; // how the old primary rejoined
    std::unique_ptr<SwitchoverHandover> handover;

private:
    json wait_hook(const std::string &kind, const Node &node, const std::string &what, double limit);

    Context &ctx_;
    const Node &to_;
    const bool via_pgpool_;
    bool pgpool_follows_ = true; // pgpool.conf sets follow_primary_command (or it is not known)
    const Node *from_ = nullptr;
    std::vector<const Node *> others_;
    std::optional<PgConn> conn_; // to the primary
};

// A row whose `applies` is set is a step of the switchover through pgpool only.
using SwitchoverStep = StepRow<Switchover>;

// name, what it does, timeout, dry run, events, body, through pgpool only
const SwitchoverStep kSwitchover[] = {
    {"preflight", "find the primary; the target must be a standby streaming from it", StepTimeout::Connect,
     kDryRunRuns, {}, &Switchover::preflight},
    {"gates", "refuse before any downtime: the target's replay lag ([switchover] max_lag), the archiver "
              "backlog (max_archive_backlog), a synchronous standby left after the switch",
     StepTimeout::None, kDryRunRuns, {}, &Switchover::gates},
    {"pgpool_gate", "through pgpool ([pcp], [switchover] pgpool = auto): pcp_promote_node has --switchover, "
                    "pgpool.conf's hooks are pgfailover's, pgpool sees the primary and the target up",
     StepTimeout::None, kDryRunRuns, {}, &Switchover::pgpool_gate, &Switchover::through_pgpool},
    {"checkpoint", "CHECKPOINT on the primary while it still serves writes ([switchover] checkpoint), so that "
                   "its shutdown checkpoint has little left to write",
     StepTimeout::Shutdown, kDryRunStops, {}, &Switchover::checkpoint},
};

// After the gates, through pgpool: pgpool detaches the primary and runs its
// hooks, which are pgfailover's; the switchover waits for their reports. A
// dry run ends before them (its plan lists them).
const SwitchoverStep kViaPgpool[] = {
    {"pcp_promote", "ask pgpool to switch over: pcp_promote_node --switchover -n <target>; pgpool detaches the "
                    "primary and runs its failover_command, then follow_primary_command for every other node",
     StepTimeout::None, dry_run_skips("would run pcp_promote_node --switchover"), {}, &Switchover::pcp_promote,
     &Switchover::through_pgpool},
    {"failover_hook", "wait for pgpool's failover_command (pgfailover failover) to report: it stops the primary "
                      "in fast mode and promotes the target only once that is safe",
     StepTimeout::FailoverHook, dry_run_skips("nothing asked of pgpool"), {}, &Switchover::failover_hook, &Switchover::through_pgpool},
    {"follow_hooks", "wait for pgpool's follow_primary_command (pgfailover follow-primary) to report for the old "
                     "primary and every other standby",
     StepTimeout::FollowHook, dry_run_skips("nothing asked of pgpool"), {}, &Switchover::follow_hooks, &Switchover::through_pgpool},
    {"pgpool_view", "wait until pgpool shows the target as its primary and every follower up as a standby "
                    "(pcp_node_info)",
     StepTimeout::Follow, dry_run_skips("nothing asked of pgpool"), {}, &Switchover::pgpool_view, &Switchover::through_pgpool},
};

StepResult Switchover::preflight(const StepCall &s) {
    from_ = &find_primary(ctx_);
    if (from_->id == to_.id) throw Error(PGFO_ERR_STATE, node_label(to_) + " is already the primary");
    conn_.emplace(PgConn::open(*from_, ctx_.cfg));
    auto rows = conn_->query("SELECT application_name, pg_current_wal_lsn() - flush_lsn FROM pg_stat_replication "
                             "WHERE state = 'streaming'",
                             {}, s.command());
    bool target_streams = false;
    json lag = json::object();
    for (const auto &r : rows) {
        if (!r.at(0)) continue;
        lag[*r.at(0)] = r.at(1).value_or("?");
        if (*r.at(0) == to_.app_name()) target_streams = true;
        for (const auto &[id, n] : ctx_.cfg.nodes)
            if (id != to_.id && id != from_->id && n.app_name() == *r.at(0)) others_.push_back(&n);
    }
    if (!target_streams)
        throw Error(PGFO_ERR_STATE, node_label(to_) + " ('" + to_.app_name() + "') is not streaming from the primary " +
                                        node_label(*from_) + ": not switching over to it");
    return StepResult::done(node_label(*from_) + " is the primary; " + node_label(to_) + " streams from it",
                            {{"primary", from_->id}, {"lag_bytes", lag}});
}

StepResult Switchover::gates(const StepCall &s) {
    const Config &c = ctx_.cfg;
    json d = json::object();
    std::vector<std::string> passed;
    // 1. The target's replay lag: the promotion waits for its replay.
    auto rows = conn_->query("SELECT (pg_current_wal_lsn() - COALESCE(replay_lsn, flush_lsn, '0/0'))::bigint, "
                             "COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8 FROM pg_stat_replication "
                             "WHERE application_name = $1 AND state = 'streaming' LIMIT 1",
                             {to_.app_name()}, s.command());
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
                               {}, s.command());
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
    std::string spec = c.sync_standby_names_target.empty() ? current_sync_standbys(*conn_, s.command()) : c.sync_standby_names_target;
    d["synchronous_standby_names"] = spec;
    if (parse_sync_names(spec).method == SyncSpec::Method::None || c.sync_policy == SyncPolicy::Async) {
        passed.push_back("asynchronous replication");
    } else {
        std::vector<std::string> after = {from_->app_name()}; // the old primary rejoins as a standby
        for (const Node *n : others_) after.push_back(n->app_name());
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

StepResult Switchover::checkpoint(const StepCall &s) {
    const PreCheckpoint mode = ctx_.cfg.pre_checkpoint;
    if (mode == PreCheckpoint::Off) return StepResult::skip("[switchover] checkpoint = off");
    const int times = mode == PreCheckpoint::Twice ? 2 : 1;
    s.before_changes("would run CHECKPOINT " + std::string(times == 2 ? "twice" : "once") + " on " +
                     node_label(*from_));
    json runs = json::array();
    for (int i = 0; i < times; ++i) {
        Stopwatch sw;
        try {
            conn_->query("CHECKPOINT", {}, s.timeout());
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

StepResult Switchover::pgpool_gate(const StepCall &s) {
    const Config &c = ctx_.cfg;
    json d = json::object();
    std::vector<std::string> passed;
    const std::string nothing = ". State: nothing was changed, " + node_label(*from_) + " is still the primary";
    // pcp_promote_node --switchover exists from pgpool-II 4.3 on.
    const std::vector<std::string> help = {pcp_program(c, "pcp_promote_node"), "--help"}; // no connection
    ExecResult h = run_local(help, s.command());
    if (h.start_failed) throw Error(PGFO_ERR_EXEC, "cannot run " + help[0] + ": " + h.err + nothing);
    if ((h.out + h.err).find("--switchover") == std::string::npos)
        throw Error(PGFO_ERR_REFUSED, help[0] + " has no --switchover (pgpool-II 4.2 or older): set "
                                          "[switchover] pgpool = off to switch over around pgpool" + nothing);
    passed.push_back("pcp_promote_node has --switchover");
    // pgpool's hooks must be pgfailover's, or pgpool would promote with another script.
    if (!c.pgpool_conf.empty()) {
        auto hooks = read_pgpool_settings(c.pgpool_conf, {"failover_command", "follow_primary_command"});
        auto where = [&](const char *key) {
            auto it = hooks.find(key);
            return c.pgpool_conf + (it == hooks.end() ? "" : ":" + std::to_string(it->second.line)) + " " + key;
        };
        auto value = [&](const char *key) {
            auto it = hooks.find(key);
            return it == hooks.end() ? std::string() : it->second.value;
        };
        const std::string fo = value("failover_command"), fp = value("follow_primary_command");
        d["failover_command"] = fo;
        d["follow_primary_command"] = fp;
        if (fo.find("pgfailover") == std::string::npos || fo.find(" failover") == std::string::npos)
            throw Error(PGFO_ERR_REFUSED, where("failover_command") + " is " + show_value(fo, 200) +
                                              ", not pgfailover's failover hook: pgpool would promote with it. Set "
                                              "[switchover] pgpool = off to switch over around pgpool" + nothing);
        if (fp.empty()) {
            pgpool_follows_ = false;
            passed.push_back("no follow_primary_command in pgpool.conf: the switchover brings the followers back "
                             "itself");
        } else if (fp.find("pgfailover") == std::string::npos || fp.find("follow-primary") == std::string::npos) {
            throw Error(PGFO_ERR_REFUSED, where("follow_primary_command") + " is " + show_value(fp, 200) +
                                              ", not pgfailover's follow-primary hook. Set [switchover] pgpool = "
                                              "off to switch over around pgpool" + nothing);
        } else {
            passed.push_back("pgpool.conf runs pgfailover's hooks");
        }
    }
    // pgpool's own view must agree: it promotes the node it is told to only
    // when it sees the primary as its primary and the target up.
    PoolNode p = pool_node(ctx_, from_->id), t = pool_node(ctx_, to_.id);
    d["pgpool_nodes"] = {{std::to_string(from_->id), p.line}, {std::to_string(to_.id), t.line}};
    if (!p.up() || p.role != "primary" || !t.up() || t.role != "standby")
        throw Error(PGFO_ERR_REFUSED, "pgpool does not see " + node_label(*from_) + " as an up primary and " +
                                          node_label(to_) + " as an up standby (" + pool_text(from_->id, p) +
                                          ", " + pool_text(to_.id, t) + "): not asking it to switch over" +
                                          nothing);
    passed.push_back("pgpool: " + pool_text(from_->id, p) + ", " + pool_text(to_.id, t));
    return StepResult::done(join(passed, "; "), d);
}

StepResult Switchover::pcp_promote(const StepCall &s) {
    auto argv = pcp_argv(ctx_.cfg, "pcp_promote_node", {"--switchover", "-n", std::to_string(to_.id)});
    ctx_.log().info("{}", describe_argv(argv));
    ExecResult r = run_local(argv, s.command());
    if (!r.ok())
        throw Error(PGFO_ERR_EXEC, exec_failure(argv, r) + ". State: " + describe_roles(node_roles(ctx_)));
    return StepResult::done("pgpool accepted the switchover to node " + std::to_string(to_.id));
}

// Wait for the report of pgpool's `kind` hook for `node`, within that hook's
// whole timeout; a failed hook ends the switchover with the hook's own code.
json Switchover::wait_hook(const std::string &kind, const Node &node, const std::string &what, double limit) {
    Stopwatch sw;
    double next_note = 5;
    for (;;) {
        if (auto rep = handover->report(kind, node.id)) {
            parts.push_back(*rep);
            int code = rep->value("exit_code", -1);
            if (code != PGFO_OK)
                throw Error(code > 0 ? static_cast<pgfo_status_t>(code) : PGFO_ERR_STATE,
                            "pgpool's " + what + " failed (exit " + std::to_string(code) +
                                "): " + rep->value("message", std::string("no message")));
            return *rep;
        }
        if (sw.seconds() >= limit)
            throw Error(PGFO_ERR_TIMEOUT,
                        "pgpool ran no pgfailover " + what + " that reported within " +
                            std::to_string(static_cast<int>(limit)) +
                            " s (it must run pgfailover with this configuration, and find the switchover's note "
                            "in the lock file's directory). State: " + describe_roles(node_roles(ctx_)));
        if (sw.seconds() >= next_note) {
            ctx_.progress({{"elapsed_s", sw.seconds()}, {"waiting_for", what}});
            next_note = sw.seconds() + 5;
        }
        poll_sleep(ctx_.cfg);
    }
}

StepResult Switchover::failover_hook(const StepCall &s) {
    json rep = wait_hook("failover", *from_, "failover_command for node " + std::to_string(from_->id), s.timeout());
    json v = rep.value("verdict", json::object());
    return StepResult::done("pgpool's failover_command: " + rep.value("message", std::string()),
                            {{"run", rep.value("run_id", std::string())}, {"verdict", v}});
}

StepResult Switchover::follow_hooks(const StepCall &s) {
    json d = json::object();
    std::vector<std::string> done;
    for (const Node *n : followers()) {
        json rep = pgpool_follows_
                       ? wait_hook("follow_primary", *n, "follow_primary_command for node " + std::to_string(n->id),
                                   s.timeout())
                       : follow(*n);
        std::string how = spelling(note_rejoin(*n, rep));
        d[std::to_string(n->id)] = how;
        done.push_back(node_label(*n) + ": " + how);
    }
    return StepResult::done(std::string(pgpool_follows_ ? "pgpool's follow_primary_command: " : "followed: ") +
                                join(done, "; "),
                            {{"rejoin", d}});
}

StepResult Switchover::pgpool_view(const StepCall &s) {
    Stopwatch sw;
    std::string last;
    for (;;) {
        std::vector<std::string> seen;
        bool right = false;
        try {
            PoolNode t = pool_node(ctx_, to_.id);
            seen.push_back(pool_text(to_.id, t));
            right = t.up() && t.role == "primary";
            for (const Node *n : followers()) {
                PoolNode f = pool_node(ctx_, n->id);
                seen.push_back(pool_text(n->id, f));
                right = right && f.up() && f.role == "standby";
            }
            last = join(seen, ", ");
        } catch (const Error &e) {
            last = e.what(); // pgpool restarting its children: look again
        }
        if (right) return StepResult::done("pgpool: " + last);
        if (sw.seconds() >= s.timeout())
            throw Error(PGFO_ERR_TIMEOUT, "pgpool's view is not right " + std::to_string(static_cast<int>(
                                              s.timeout())) + " s after the switchover (" + last +
                                              "). State: " + describe_roles(node_roles(ctx_)));
        poll_sleep(ctx_.cfg);
    }
}

// Every step a switchover would run, with its timeout, for the dry run.
json Switchover::plan() const {
    json plan = json::array();
    auto add = [&](const std::string &run, const std::string &step, const std::string &what, StepTimeout t) {
        plan.push_back({{"run", run}, {"step", step}, {"what", what}, {"timeout_s", timeout_seconds(ctx_.cfg, t)}});
    };
    for (const auto &s : kSwitchover)
        if (!s.applies || via_pgpool_) add("switchover", s.name, s.what, s.timeout);
    if (via_pgpool_)
        for (const auto &s : kViaPgpool) add("switchover", s.name, s.what, s.timeout);
    const std::string by = via_pgpool_ ? " (pgpool's hook)" : "";
    for (const auto &s : primary_failover_steps()) add("failover" + by, s.name, s.what, s.timeout);
    for (const Node *n : followers())
        for (const auto &s : follow_primary_steps())
            add("follow_primary node " + std::to_string(n->id) + by, s.name, s.what, s.timeout);
    return plan;
}

} // namespace

std::vector<StepInfo> switchover_steps() {
    std::vector<StepInfo> v;
    for (const auto &s : kSwitchover) v.push_back(step_info(s, s.applies ? "through pgpool" : ""));
    for (const auto &s : kViaPgpool) v.push_back(step_info(s, "through pgpool"));
    return v;
}

void switchover(Context &ctx, int target) {
    const Node &to = node_by_id(ctx.cfg, target);
    Runner run(ctx, "switchover", {{"target", node_json(to)}});
    Switchover so(ctx, to);
    std::unique_ptr<WriteProbe> probe;
    json gap;
    auto end_probe = [&](double wait) {
        if (!probe) return;
        probe->finish(wait);
        gap = probe->result();
        run.report()["write_probe"] = gap;
        probe.reset();
    };
    auto steps = [&](const auto &table) {
        for (const auto &s : table) {
            if (s.applies && !(so.*s.applies)()) continue;
            // the probe starts before the checkpoint, so that it sees the writes the old primary still takes
            if (std::string(s.name) == "checkpoint" && !ctx.dry_run)
                probe = std::make_unique<WriteProbe>(ctx.cfg, *so.from(), to);
            run.step(s, [&](const StepCall &c) { return (so.*s.fn)(c); });
            if (std::string(s.name) == "failover_hook") end_probe(ctx.cfg.promote_timeout);
        }
    };
    try {
        steps(kSwitchover);
        if (ctx.dry_run) {
            json plan = so.plan();
            run.report()["plan"] = plan;
            ctx.set_result(run.finish(PGFO_OK, "dry run: would switch over from " + node_label(*so.from()) +
                                                      " to " + node_label(to) +
                                                      (so.via_pgpool() ? " through pgpool" : "") + " in " +
                                                      std::to_string(plan.size()) + " steps",
                                         {{"from", so.from()->id}, {"to", to.id}, {"via_pgpool", so.via_pgpool()}}));
            return;
        }
        if (so.via_pgpool()) {
            // pgpool runs the failover and the follows: leave its hooks the note
            // they hand their reports back through, void once every hook had its time
            double bound = timeout_seconds(ctx.cfg, StepTimeout::FailoverHook) + ctx.cfg.follow_timeout + 60 +
                           timeout_seconds(ctx.cfg, StepTimeout::FollowHook) *
                               static_cast<double>(so.followers().size());
            so.handover = std::make_unique<SwitchoverHandover>(ctx, so.from()->id, to.id, bound);
            steps(kViaPgpool);
        } else {
            // A switchover stops the primary itself, whatever on_running says for hooks.
            so.keep_part([&] { failover(ctx, so.from()->id, to.id, so.from()->id, OnRunning::Stop); });
            end_probe(ctx.cfg.promote_timeout);
            for (const Node *n : so.followers()) so.note_rejoin(*n, so.follow(*n));
        }
    } catch (const Error &e) {
        end_probe(0);
        run.report()["parts"] = so.parts;
        ctx.set_result(run.finish(e.code(), e.what(),
                                     {{"from", so.from() ? so.from()->id : -1}, {"to", to.id},
                                      {"via_pgpool", so.via_pgpool()}}));
        throw;
    }
    run.report()["parts"] = so.parts;
    const Node &from = *so.from();
    const Rejoin rejoin = so.rejoin;
    json verdict = {{"from", from.id}, {"to", to.id}, {"old_primary_rejoin", rejoin}, {"via_pgpool", so.via_pgpool()}};
    std::string gap_text;
    if (gap.contains("write_gap_s")) {
        verdict["write_gap_s"] = gap["write_gap_s"];
        gap_text = "; write gap " + secs_text(gap["write_gap_s"].get<double>());
    } else {
        verdict["write_gap_s"] = nullptr;
        gap_text = "; write gap unknown (" + gap.value("unknown", std::string("no probe")) + ")";
    }
    ctx.set_result(run.finish(PGFO_OK,
                                 node_label(to) + " is the primary" + (so.via_pgpool() ? " (through pgpool)" : "") +
                                     "; " + node_label(from) +
                                     (rejoin == Rejoin::Clean     ? " follows it without pg_rewind"
                                      : rejoin == Rejoin::Rewound ? " follows it after pg_rewind"
                                                                  : " follows it (rejoin: " + spelling(rejoin) + ")") +
                                     (so.others().empty() ? ""
                                                          : ", and " + std::to_string(so.others().size()) +
                                                                " other standby(s)") +
                                     gap_text,
                                 verdict));
}

} // namespace pgfo
