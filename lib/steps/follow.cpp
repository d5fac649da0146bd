// Bringing nodes back, as step tables (see failover.cpp for the pattern):
// follow-primary makes a node a standby of the new primary, from facts.
// The switchover, which chains the safe failover and the follows, is in
// switchover.cpp.
#include "steps/follow.h"

#include <memory>
#include <optional>

#include "core/error.h"
#include "core/lock.h"
#include "pg/history.h"
#include "pg/lsn.h"
#include "pg/sync_names.h"
#include "pgpool/args.h"
#include "steps/failover.h"
#include "steps/ops.h"
#include "steps/runner.h"

namespace pgfo {
namespace {

using nlohmann::json;

json node_json(const Node &n) { return {{"id", n.id}, {"host", n.host}, {"port", n.port}}; }

std::string app_name(const Node &n) {
    return n.application_name.empty() ? "node" + std::to_string(n.id) : n.application_name;
}

// ---------------------------------------------------------------------------
// follow-primary

class FollowPrimary {
public:
    FollowPrimary(Context &ctx, const Node &follower, const Node &primary)
        : ctx_(ctx), f_(follower), p_(primary) {}

    StepResult lock();
    StepResult inspect();
    StepResult stop_follower();
    StepResult decide();
    StepResult rewind();
    StepResult slot();
    StepResult configure();
    StepResult start();
    StepResult wait_streaming();
    StepResult restore_sync();
    StepResult attach();

    json verdict() const {
        json v = {{"follower", f_.id}, {"primary", p_.id}, {"rejoin", how_}};
        if (!reason_.empty()) v["decision"] = reason_;
        if (timeline_) v["primary_timeline"] = timeline_;
        if (streaming_at_) v["streaming_at"] = format_lsn(streaming_at_);
        if (!sync_after_.empty() || sync_changed_) v["sync_standby_names"] = sync_after_;
        return v;
    }

private:
    Context &ctx_;
    const Node &f_;
    const Node &p_;
    std::unique_ptr<FileLock> lock_;
    std::optional<PgConn> conn_; // to the primary
    uint32_t timeline_ = 0;
    std::vector<HistoryEntry> history_;
    bool already_following_ = false;
    bool was_running_ = false;
    bool can_follow_ = false;
    std::optional<ControlData> control_;
    std::string how_ = "unknown"; // already | clean | rewound
    std::string reason_;
    Lsn streaming_at_ = 0;
    std::string sync_after_;
    bool sync_changed_ = false;
};

struct FollowStep {
    const char *name;
    const char *what;
    StepResult (FollowPrimary::*fn)();
};

const FollowStep kFollowPrimary[] = {
    {"lock", "take this follower's lock (pgpool runs follow_primary for several nodes at once)",
     &FollowPrimary::lock},
    {"inspect", "check the new primary and whether the node already streams from it", &FollowPrimary::inspect},
    {"stop_follower", "stop the node in fast mode if it runs (as a primary, or following the old one)",
     &FollowPrimary::stop_follower},
    {"decide", "compare the node's last WAL position with the new timeline's switch point",
     &FollowPrimary::decide},
    {"rewind", "pg_rewind from the new primary when the node went past the switch point (rewind = auto)",
     &FollowPrimary::rewind},
    {"slot", "create the node's replication slot on the new primary (replication_slots = on)",
     &FollowPrimary::slot},
    {"configure", "write the standby configuration (standby.signal + postgresql.auto.conf, or recovery.conf)",
     &FollowPrimary::configure},
    {"start", "start the node as a standby", &FollowPrimary::start},
    {"wait_streaming", "wait until the new primary shows the node streaming and caught up",
     &FollowPrimary::wait_streaming},
    {"restore_sync", "restore synchronous_standby_names on the new primary ([replication])",
     &FollowPrimary::restore_sync},
    {"attach", "attach the node in pgpool (pcp_attach_node, when [pcp] is set)", &FollowPrimary::attach},
};

StepResult FollowPrimary::lock() {
    if (ctx_.dry_run) return StepResult::skip("dry run: no lock taken");
    std::string path = lock_file_path(ctx_.cfg) + ".node" + std::to_string(f_.id);
    lock_ = std::make_unique<FileLock>(path, ctx_.cfg.lock_timeout, ctx_.cfg.poll_interval);
    return StepResult::done("holding " + path);
}

StepResult FollowPrimary::inspect() {
    conn_.emplace(PgConn::open(p_, ctx_.cfg));
    if (in_recovery(*conn_))
        throw Error(PGFO_ERR_STATE, node_label(p_) + " is in recovery: it is not a primary to follow");
    timeline_ = current_timeline(ctx_, *conn_);
    if (timeline_ > 1) {
        auto text = conn_->scalar("SELECT pg_read_file($1)", {"pg_wal/" + history_file_name(timeline_)},
                                  ctx_.cfg.command_timeout);
        if (text) history_ = parse_history(*text);
    }
    json d = {{"primary_timeline", timeline_}};
    bool listed = false;
    for (const auto &name : streaming_standbys(ctx_, *conn_))
        if (name == app_name(f_)) listed = true;
    pgfo_ping_t ping = ping_node(f_, ctx_.cfg);
    was_running_ = ping != PGFO_PING_NO_RESPONSE;
    d["follower_ping"] = ping_name(ping);
    if (listed) {
        // Listed as streaming is not enough: a node past the fork point
        // streams the old timeline up to it before it stops for good.
        try {
            auto tli = receiving_timeline(ctx_, f_);
            d["follower_timeline"] = tli ? json(*tli) : json(nullptr);
            already_following_ = tli && *tli == timeline_;
        } catch (const Error &e) {
            d["follower_timeline"] = std::string("not answering: ") + e.what();
        }
    }
    d["already_following"] = already_following_;
    if (already_following_) {
        how_ = "already";
        return StepResult::done(node_label(f_) + " already streams from " + node_label(p_) + " (timeline " +
                                    std::to_string(timeline_) + ")",
                                d);
    }
    return StepResult::done(node_label(p_) + " is the primary on timeline " + std::to_string(timeline_) + "; " +
                                node_label(f_) + ": " + ping_name(ping),
                            d);
}

StepResult FollowPrimary::stop_follower() {
    if (already_following_) return StepResult::skip("already following");
    if (!was_running_) {
        DownCheck d = check_down(ctx_, f_);
        if (d.down()) return StepResult::skip("the node is down");
    }
    if (ctx_.dry_run) return StepResult::skip("dry run: would stop it with pg_ctl stop -m fast");
    stop_node(ctx_, f_);
    return StepResult::done("stopped (fast)");
}

StepResult FollowPrimary::decide() {
    if (already_following_) return StepResult::skip("already following");
    if (ctx_.dry_run && !check_down(ctx_, f_).down())
        return StepResult::skip("dry run: the node is still up; pg_control would be read once it is down");
    RejoinDecision r = decide_rejoin(ctx_, f_, timeline_, history_);
    control_ = r.control;
    can_follow_ = r.can_follow;
    reason_ = r.reason;
    if (can_follow_) how_ = "clean";
    if (!can_follow_ && ctx_.cfg.rewind == RewindPolicy::Never)
        throw Error(PGFO_ERR_REFUSED, node_label(f_) + " cannot follow " + node_label(p_) + " without pg_rewind: " +
                                          reason_ + "; rewind = never: the node is left down and its data untouched "
                                                    "(set rewind = auto, or rebuild it)");
    return StepResult::done((can_follow_ ? "can follow without pg_rewind: " : "needs pg_rewind: ") + reason_,
                            r.details);
}

StepResult FollowPrimary::rewind() {
    if (already_following_ || can_follow_) return StepResult::skip("no rewind needed");
    if (!control_) return StepResult::skip("dry run: not decided");
    if (!control_->wal_log_hints && control_->data_checksum_version == 0)
        throw Error(PGFO_ERR_REFUSED, node_label(f_) + " needs pg_rewind, but it has neither wal_log_hints = on "
                                                       "nor data checksums, which pg_rewind requires; left down");
    if (ctx_.dry_run) return StepResult::skip("dry run: would run pg_rewind from " + node_label(p_));
    KeptConfig kept = keep_config_files(ctx_, f_);
    run_pg_rewind(ctx_, f_, p_);
    restore_config_files(ctx_, f_, kept); // pg_rewind copies the source's; the node keeps its own
    how_ = "rewound";
    return StepResult::done("pg_rewind from " + node_label(p_) + " done; the node's own configuration files kept");
}

StepResult FollowPrimary::slot() {
    if (!ctx_.cfg.replication_slots) return StepResult::skip("replication_slots = off");
    if (ctx_.dry_run) return StepResult::skip("dry run: would create slot " + slot_name(f_));
    auto made = conn_->scalar("SELECT count(*) FROM (SELECT pg_create_physical_replication_slot($1) "
                              "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)) s",
                              {slot_name(f_)}, ctx_.cfg.command_timeout);
    return StepResult::done(std::string("slot ") + slot_name(f_) +
                            (made && *made == "1" ? " created" : " already exists"));
}

StepResult FollowPrimary::configure() {
    if (already_following_) return StepResult::skip("already following");
    std::string ci = primary_conninfo(ctx_.cfg, p_, f_);
    if (ctx_.dry_run) return StepResult::skip("dry run: would set primary_conninfo = '" + ci + "'");
    int major = node_major_version(ctx_, f_);
    write_standby_config(ctx_, f_, major, ci, ctx_.cfg.replication_slots ? slot_name(f_) : "");
    return StepResult::done(std::string(major >= 12 ? "standby.signal and postgresql.auto.conf"
                                                    : "recovery.conf") +
                                " written (PostgreSQL " + std::to_string(major) + "): primary_conninfo = '" + ci + "'",
                            {{"major", major}});
}

StepResult FollowPrimary::start() {
    if (already_following_) return StepResult::skip("already running as a standby of the new primary");
    if (ctx_.dry_run) return StepResult::skip("dry run: would start it with pg_ctl start");
    start_node(ctx_, f_, ctx_.cfg.follow_timeout);
    return StepResult::done("started");
}

StepResult FollowPrimary::wait_streaming() {
    if (ctx_.dry_run) return StepResult::skip("dry run");
    try {
        streaming_at_ = pgfo::wait_streaming(ctx_, *conn_, f_, app_name(f_), timeline_, ctx_.cfg.follow_timeout);
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_TIMEOUT) throw;
        throw Error(PGFO_ERR_TIMEOUT, std::string(e.what()) + "; see the server log of " + node_label(f_) +
                                          (how_ == "clean" ? " (a 'forked off ... before current recovery point' "
                                                             "line there means it had more WAL than pg_control "
                                                             "showed: it needs pg_rewind)"
                                                           : ""));
    }
    return StepResult::done(node_label(f_) + " streams from " + node_label(p_) + ", caught up to " +
                                format_lsn(streaming_at_),
                            {{"flush", format_lsn(streaming_at_)}});
}

StepResult FollowPrimary::restore_sync() {
    const std::string &target = ctx_.cfg.sync_standby_names_target;
    if (target.empty()) return StepResult::skip("no [replication] synchronous_standby_names to restore");
    if (ctx_.dry_run) return StepResult::skip("dry run");
    // Followers of one primary restore it one at a time, each from what streams then.
    FileLock cluster(lock_file_path(ctx_.cfg), ctx_.cfg.lock_timeout, ctx_.cfg.poll_interval);
    std::vector<std::string> avail;
    for (const auto &name : streaming_standbys(ctx_, *conn_))
        if (name != app_name(p_)) avail.push_back(name);
    std::string before = current_sync_standbys(*conn_);
    sync_after_ = restrict_sync_names(target, avail);
    json d = {{"target", target}, {"before", before}, {"after", sync_after_}, {"streaming", avail}};
    if (sync_after_ == before)
        return StepResult::skip("synchronous_standby_names already '" + before + "'", d);
    set_sync_standbys(ctx_, *conn_, sync_after_);
    sync_changed_ = true;
    ctx_.emit("sync.changed", "restore_sync", "info",
              {{"before", before}, {"after", sync_after_}, {"nodes", {{"primary", node_json(p_)}}}});
    return StepResult::done("synchronous_standby_names '" + before + "' -> '" + sync_after_ + "'", d);
}

StepResult FollowPrimary::attach() {
    if (ctx_.cfg.pcp_host.empty()) return StepResult::skip("no [pcp] host configured");
    if (ctx_.dry_run) return StepResult::skip("dry run: would run pcp_attach_node -n " + std::to_string(f_.id));
    pcp_attach(ctx_, f_.id);
    return StepResult::done("pcp_attach_node -n " + std::to_string(f_.id) + " done");
}

} // namespace

RejoinDecision decide_rejoin(Context &ctx, const Node &follower, uint32_t timeline,
                             const std::vector<HistoryEntry> &history) {
    CheckpointInfo info = read_checkpoint(ctx, follower);
    RejoinDecision r;
    r.control = info.control;
    const ControlData &c = info.control;
    json &d = r.details;
    d = {{"state", db_state_name(c.state)}, {"checkpoint", format_lsn(c.checkpoint)}, {"timeline", c.timeline}};
    // Where the node's WAL ends, as far as pg_control tells.
    uint32_t tli = c.timeline;
    Lsn pos = 0;
    if (c.state == PGFO_DB_SHUTDOWNED && info.clean) {
        pos = info.end; // a primary shut down cleanly: nothing after its checkpoint
        d["position"] = "end of shutdown checkpoint " + format_lsn(pos);
    } else if (c.state == PGFO_DB_SHUTDOWNED_IN_RECOVERY) {
        pos = std::max(c.min_recovery_point, c.checkpoint);
        if (c.min_recovery_timeline) tli = c.min_recovery_timeline;
        d["position"] = "minimum recovery point " + format_lsn(c.min_recovery_point);
    } else {
        r.reason = std::string("pg_control state '") + db_state_name(c.state) +
                   "': the node did not shut down cleanly, its WAL end is unknown";
        d["can_follow"] = false;
        return r;
    }
    r.position = pos;
    if (tli == timeline) {
        r.can_follow = true;
        r.reason = "the node is already on the new timeline " + std::to_string(tli) + " at " + format_lsn(pos);
    } else if (auto sp = switch_point_from(history, tli)) {
        r.switch_point = *sp;
        d["switch_point"] = format_lsn(*sp);
        r.can_follow = pos <= *sp;
        r.reason = "the node's WAL ends at " + format_lsn(pos) + " on timeline " + std::to_string(tli) +
                   (r.can_follow ? ", not past" : ", PAST") + " the switch point " + format_lsn(*sp) +
                   " of timeline " + std::to_string(timeline);
    } else {
        r.reason = "timeline " + std::to_string(tli) + " of the node is not in the history of timeline " +
                   std::to_string(timeline);
    }
    d["can_follow"] = r.can_follow;
    return r;
}

RejoinDecision rejoin_decision(Context &ctx, int follower, int primary) {
    const Node &f = node_by_id(ctx.cfg, follower);
    const Node &p = node_by_id(ctx.cfg, primary);
    PgConn conn = PgConn::open(p, ctx.cfg);
    if (in_recovery(conn)) throw Error(PGFO_ERR_STATE, node_label(p) + " is in recovery: it is not a primary");
    uint32_t timeline = current_timeline(ctx, conn);
    std::vector<HistoryEntry> history;
    if (timeline > 1) {
        auto text = conn.scalar("SELECT pg_read_file($1)", {"pg_wal/" + history_file_name(timeline)},
                                ctx.cfg.command_timeout);
        if (text) history = parse_history(*text);
    }
    if (!check_down(ctx, f).down())
        throw Error(PGFO_ERR_STATE, node_label(f) + " is running: its WAL end is read from pg_control once it is "
                                                    "stopped (follow-primary stops it itself)");
    return decide_rejoin(ctx, f, timeline, history);
}

void follow_primary(Context &ctx, int follower, int primary) {
    if (follower == primary)
        throw Error(PGFO_ERR_USAGE, "node " + std::to_string(follower) + " cannot follow itself");
    const Node &f = node_by_id(ctx.cfg, follower);
    const Node &p = node_by_id(ctx.cfg, primary);
    Runner run(ctx, "follow_primary", {{"follower", node_json(f)}, {"primary", node_json(p)}});
    FollowPrimary fp(ctx, f, p);
    try {
        for (const auto &s : kFollowPrimary) run.step(s.name, s.what, [&] { return (fp.*s.fn)(); });
    } catch (const Error &e) {
        ctx.result_json = run.finish(e.code(), e.what(), fp.verdict());
        throw;
    }
    json v = fp.verdict();
    std::string msg = ctx.dry_run ? "dry run complete: nothing was changed"
                                  : node_label(f) + " follows " + node_label(p) +
                                        (v["rejoin"] == "rewound" ? " (after pg_rewind)"
                                         : v["rejoin"] == "already" ? " (it already did)"
                                                                    : " without pg_rewind");
    ctx.result_json = run.finish(PGFO_OK, msg, v);
}

std::vector<StepInfo> follow_primary_steps() {
    std::vector<StepInfo> v;
    for (const auto &s : kFollowPrimary) v.push_back({s.name, s.what});
    return v;
}

void follow_primary_from_pgpool(Context &ctx, const std::vector<std::string> &args) {
    PgpoolArgs a = parse_pgpool_args(args);
    ctx.log().info("follow_primary_command: node {} follows new primary {} (old primary {})", a.failed_node,
                   a.new_main_node, a.old_primary_node);
    merge_pgpool_nodes(ctx, a);
    if (a.new_main_node < 0)
        throw Error(PGFO_ERR_STATE, "pgpool passed no new primary (%m = -1): nothing to follow");
    follow_primary(ctx, a.failed_node, a.new_main_node);
}

} // namespace pgfo
