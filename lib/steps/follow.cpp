// Bringing nodes back, as step tables (see failover.cpp for the pattern):
// follow-primary makes a node a standby of the new primary, from facts.
// The switchover, which chains the safe failover and the follows, is in
// switchover.cpp.
#include "steps/follow.h"

#include <cctype>
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/lock.h"
#include "core/text.h"
#include "pg/history.h"
#include "pg/lsn.h"
#include "config/sync_names.h"
#include "pgpool/args.h"
#include "steps/failover.h"
#include "steps/events.h"
#include "steps/handover.h"
#include "steps/outcome.h"
#include "steps/ops.h"
#include "steps/shutdown.h"
#include "steps/promotion.h"
#include "steps/sync_rep.h"
#include "steps/rejoin.h"
#include "steps/pcp.h"
#include "steps/runner.h"
#include "steps/slots.h"

namespace pgfo {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// follow-primary

class FollowPrimary {
public:
    FollowPrimary(Context &ctx, const Node &follower, const Node &primary)
        : ctx_(ctx), f_(follower), p_(primary) {}

    StepResult lock(const StepCall &s);
    StepResult inspect(const StepCall &s);
    StepResult stop_follower(const StepCall &s);
    StepResult decide(const StepCall &s);
    StepResult rewind(const StepCall &s);
    StepResult slot(const StepCall &s);
    StepResult configure(const StepCall &s);
    StepResult start(const StepCall &s);
    StepResult wait_streaming(const StepCall &s);
    StepResult restore_sync(const StepCall &s);
    StepResult attach(const StepCall &s);
    // Logical failover slots (PostgreSQL 17+), see steps/slots.h.
    bool slots_apply(); // PostgreSQL 17+ on the new primary (failover slots)
    StepResult stale_slots(const StepCall &s);
    StepResult slot_sync(const StepCall &s);
    StepResult standby_slots(const StepCall &s);

    // Streaming from the primary was seen (wait_streaming succeeded).
    bool streams() const { return streaming_at_ != 0; }
    Rejoin rejoin() const { return how_; }

    json verdict() const {
        json v = {{"follower", f_.id}, {"primary", p_.id}, {"rejoin", how_}};
        if (!reason_.empty()) v["decision"] = reason_;
        if (timeline_) v["primary_timeline"] = timeline_;
        if (streaming_at_) v["streaming_at"] = format_lsn(streaming_at_);
        if (!sync_after_.empty() || sync_changed_) v["sync_standby_names"] = sync_after_;
        if (!slots_.is_null()) v["failover_slots"] = slots_;
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
    bool down_ = false; // stop_follower found the node down or stopped it
    bool can_follow_ = false;
    std::optional<Lsn> seen_end_; // receive/replay of the follower while it ran as a standby
    RejoinDecision rejoin_;
    std::optional<ControlData> control_;
    Rejoin how_ = Rejoin::Unknown;
    std::string reason_;
    Lsn streaming_at_ = 0;
    std::string sync_after_;
    bool sync_changed_ = false;
    json slots_; // what the slot steps did, for the verdict
};

using FollowStep = StepRow<FollowPrimary>;

// name, what it does, timeout, dry run, events, body (, applies)
const FollowStep kFollowPrimary[] = {
    {"lock", "take this follower's lock (pgpool runs follow_primary for several nodes at once)",
     StepTimeout::Lock, dry_run_skips("no lock taken"), {}, &FollowPrimary::lock},
    {"inspect", "check the new primary and whether the node already streams from it", StepTimeout::Connect,
     kDryRunRuns, {}, &FollowPrimary::inspect},
    {"stop_follower", "stop the node in fast mode if it runs (as a primary, or following the old one)",
     StepTimeout::Shutdown, kDryRunStops, {}, &FollowPrimary::stop_follower},
    {"decide", "compare the node's last WAL position with the new timeline's switch point", StepTimeout::None,
     kDryRunRuns, {}, &FollowPrimary::decide},
    {"rewind", "pg_rewind from the new primary when the node went past the switch point (rewind = auto)",
     StepTimeout::Rewind, kDryRunStops, {}, &FollowPrimary::rewind},
    {"stale_slots", "remove the node's own copies of failover slots the new primary holds, report its other "
                    "slots (PostgreSQL 17+)",
     StepTimeout::None, kDryRunStops, {ev::kSlotsDropped}, &FollowPrimary::stale_slots, &FollowPrimary::slots_apply},
    {"slot", "create the node's replication slot on the new primary (replication_slots = on)", StepTimeout::None,
     kDryRunStops, {}, &FollowPrimary::slot},
    {"configure", "write the standby configuration (standby.signal + postgresql.auto.conf, or recovery.conf)",
     StepTimeout::None, kDryRunStops, {}, &FollowPrimary::configure},
    {"start", "start the node as a standby", StepTimeout::Follow, kDryRunStops, {}, &FollowPrimary::start},
    {"wait_streaming", "wait until the new primary shows the node streaming and caught up", StepTimeout::Follow,
     dry_run_skips(""), {}, &FollowPrimary::wait_streaming},
    {"slot_sync", "turn on slot synchronization on the node and wait for its copies of the failover slots "
                  "([replication] sync_replication_slots)",
     StepTimeout::Catchup, kDryRunStops, {}, &FollowPrimary::slot_sync, &FollowPrimary::slots_apply},
    {"restore_sync", "restore synchronous_standby_names on the new primary ([replication])", StepTimeout::Lock,
     kDryRunStops, {ev::kSyncChanged}, &FollowPrimary::restore_sync},
    {"standby_slots", "restore synchronized_standby_slots on the new primary (PostgreSQL 17+)", StepTimeout::Lock,
     dry_run_skips(""), {ev::kSlotsStandbySlots}, &FollowPrimary::standby_slots, &FollowPrimary::slots_apply},
    {"attach", "attach the node in pgpool (pcp_attach_node, when [pcp] is set)", StepTimeout::None, kDryRunStops,
     {}, &FollowPrimary::attach},
};

StepResult FollowPrimary::lock(const StepCall &s) {
    lock_ = follower_lock(ctx_.cfg, f_.id, s.timeout());
    return StepResult::done("holding " + follower_lock_path(ctx_.cfg, f_.id));
}

StepResult FollowPrimary::inspect(const StepCall &s) {
    conn_.emplace(PgConn::open(p_, ctx_.cfg));
    if (in_recovery(*conn_, s.command()))
        throw Error(PGFO_ERR_STATE, node_label(p_) + " is in recovery: it is not a primary to follow");
    // Before anything changes: the follower's data directory must belong to
    // the new primary's cluster.
    ControlData mine = retry_reads(ctx_, node_label(f_) + ": reading pg_control", ctx_.cfg.unreachable_timeout,
                                   [&] { return read_control(ctx_, f_); });
    check_same_cluster(f_, mine, system_identifier(ctx_, *conn_), "the new primary " + node_label(p_));
    timeline_ = current_timeline(ctx_, *conn_);
    history_ = server_history(*conn_, timeline_, s.command()).value_or(std::vector<HistoryEntry>{});
    json d = {{"primary_timeline", timeline_}};
    bool listed = false;
    for (const auto &name : streaming_standbys(ctx_, *conn_))
        if (name == f_.app_name()) listed = true;
    pgfo_ping_t ping = ping_node(f_, ctx_.cfg);
    was_running_ = ping != PGFO_PING_NO_RESPONSE;
    d["follower_ping"] = ping_name(ping);
    // While it runs as a standby, its receive and replay positions: WAL it
    // received lies past anything pg_control shows once it is stopped.
    std::optional<uint32_t> tli;
    if (ping == PGFO_PING_OK) {
        try {
            PgConn fc = PgConn::open(f_, ctx_.cfg);
            if (in_recovery(fc, s.command())) {
                StandbyWal s = standby_wal(ctx_, fc);
                seen_end_ = s.position();
                tli = s.streaming_tli;
                d["follower_wal"] = {{"receive", s.receive ? json(format_lsn(*s.receive)) : json(nullptr)},
                                     {"replay", s.replay ? json(format_lsn(*s.replay)) : json(nullptr)}};
            }
        } catch (const Error &e) {
            d["follower_wal"] = std::string("not answering: ") + e.what();
        }
    }
    if (listed) {
        // Listed as streaming is not enough: a node past the fork point
        // streams the old timeline up to it before it stops for good, and a
        // node promoted to the same timeline number elsewhere streams ours
        // without being able to replay it.
        d["follower_timeline"] = tli ? json(*tli) : json(nullptr);
        if (tli && *tli == timeline_) {
            try {
                auto mine = node_history(ctx_, f_, *tli);
                std::string conflict = mine ? history_conflict(*tli, *mine, timeline_, history_)
                                            : "its " + history_file_name(*tli) + " is missing";
                d["follower_history"] = conflict.empty() ? "same as the primary's" : conflict;
                already_following_ = conflict.empty();
            } catch (const Error &e) {
                d["follower_history"] = std::string("unreadable: ") + e.what();
            }
        }
    }
    d["already_following"] = already_following_;
    if (already_following_) {
        how_ = Rejoin::Already;
        return StepResult::done(node_label(f_) + " already streams from " + node_label(p_) + " (timeline " +
                                    std::to_string(timeline_) + ")",
                                d);
    }
    return StepResult::done(node_label(p_) + " is the primary on timeline " + std::to_string(timeline_) + "; " +
                                node_label(f_) + ": " + ping_name(ping),
                            d);
}

StepResult FollowPrimary::stop_follower(const StepCall &s) {
    if (already_following_) return StepResult::skip("already following");
    if (!was_running_) {
        DownCheck d = check_down(ctx_, f_);
        down_ = d.exited();
        if (down_) return StepResult::skip("the node is down");
    }
    s.before_changes("would stop it with pg_ctl stop -m fast");
    stop_node(ctx_, f_, s.timeout());
    down_ = true;
    return StepResult::done("stopped (fast)");
}

StepResult FollowPrimary::decide(const StepCall &) {
    if (already_following_) return StepResult::skip("already following");
    // Only a dry run leaves a running node up here (stop_follower stopped at its change).
    if (!down_) return StepResult::skip("dry run: the node is still up; pg_control would be read once it is down");
    rejoin_ = decide_rejoin(ctx_, f_, timeline_, history_, seen_end_);
    const RejoinDecision &r = rejoin_;
    control_ = r.control;
    can_follow_ = r.can_follow;
    reason_ = r.reason;
    if (can_follow_) how_ = Rejoin::Clean;
    if (!can_follow_ && !r.rewindable)
        throw Error(PGFO_ERR_REFUSED, node_label(f_) + " cannot follow " + node_label(p_) + ": " + reason_ +
                                          "; pg_rewind cannot repair that (it compares timeline numbers): the node "
                                          "is left down and its data untouched (rebuild it from " +
                                          node_label(p_) + ")");
    if (!can_follow_ && ctx_.cfg.rewind == RewindPolicy::Never)
        throw Error(PGFO_ERR_REFUSED, node_label(f_) + " cannot follow " + node_label(p_) + " without pg_rewind: " +
                                          reason_ + "; rewind = never: the node is left down and its data untouched "
                                                    "(set rewind = auto, or rebuild it)");
    return StepResult::done((can_follow_ ? "can follow without pg_rewind: " : "needs pg_rewind: ") + reason_,
                            r.details);
}

StepResult FollowPrimary::rewind(const StepCall &s) {
    if (already_following_ || can_follow_) return StepResult::skip("no rewind needed");
    if (!control_) return StepResult::skip("dry run: not decided");
    if (rejoin_.wal_only) {
        // Its data files are not past the switch point, so pg_rewind would
        // find nothing to rewind; what it must not replay is WAL in pg_wal.
        const std::string what = "the WAL past the switch point " + format_lsn(rejoin_.switch_point) +
                                 " that the node received but never replayed";
        s.before_changes("would set aside " + what);
        auto [dir, files] = set_aside_wal(ctx_, f_, rejoin_.wal_timeline, rejoin_.switch_point,
                                          control_->wal_segment_size);
        how_ = Rejoin::Rewound;
        return StepResult::done("set aside " + what + ": " + std::to_string(files) + " file(s) moved to " + dir +
                                    "; its data files are untouched, it streams the rest from " + node_label(p_),
                                {{"set_aside", dir}, {"files", files}});
    }
    if (!control_->wal_log_hints && control_->data_checksum_version == 0)
        throw Error(PGFO_ERR_REFUSED, node_label(f_) + " needs pg_rewind, but it has neither wal_log_hints = on "
                                                       "nor data checksums, which pg_rewind requires; left down");
    s.before_changes("would run pg_rewind from " + node_label(p_));
    KeptConfig kept = keep_config_files(ctx_, f_);
    run_pg_rewind(ctx_, f_, p_, s.timeout());
    restore_config_files(ctx_, f_, kept); // pg_rewind copies the source's; the node keeps its own
    how_ = Rejoin::Rewound;
    return StepResult::done("pg_rewind from " + node_label(p_) + " done; the node's own configuration files kept");
}

StepResult FollowPrimary::slot(const StepCall &s) {
    if (!ctx_.cfg.replication_slots) return StepResult::skip("replication_slots = off");
    s.before_changes("would create slot " + slot_name(f_));
    auto made = conn_->scalar("SELECT count(*) FROM (SELECT pg_create_physical_replication_slot($1) "
                              "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)) s",
                              {slot_name(f_)}, s.command());
    return StepResult::done(std::string("slot ") + slot_name(f_) +
                            (made && *made == "1" ? " created" : " already exists"));
}

StepResult FollowPrimary::configure(const StepCall &s) {
    if (already_following_) return StepResult::skip("already following");
    std::string ci = primary_conninfo(ctx_.cfg, p_, f_);
    s.before_changes("would set primary_conninfo = " + conf_literal(ci));
    int major = node_major_version(ctx_, f_);
    write_standby_config(ctx_, f_, major, ci, ctx_.cfg.replication_slots ? slot_name(f_) : "");
    return StepResult::done(std::string(major >= 12 ? "standby.signal and postgresql.auto.conf"
                                                    : "recovery.conf") +
                                " written (PostgreSQL " + std::to_string(major) + "): primary_conninfo = " + conf_literal(ci),
                            {{"major", major}});
}

StepResult FollowPrimary::start(const StepCall &s) {
    if (already_following_) return StepResult::skip("already running as a standby of the new primary");
    s.before_changes("would start it with pg_ctl start");
    start_node(ctx_, f_, s.timeout());
    return StepResult::done("started");
}

StepResult FollowPrimary::wait_streaming(const StepCall &s) {
    try {
        streaming_at_ = pgfo::wait_streaming(ctx_, *conn_, f_, f_.app_name(), timeline_, s.timeout());
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_TIMEOUT) throw;
        throw Error(PGFO_ERR_TIMEOUT, std::string(e.what()) + "; see the server log of " + node_label(f_) +
                                          (how_ == Rejoin::Clean ? " (a 'forked off ... before current recovery point' "
                                                             "line there means it had more WAL than pg_control "
                                                             "showed: it needs pg_rewind)"
                                                           : ""));
    }
    return StepResult::done(node_label(f_) + " streams from " + node_label(p_) + ", caught up to " +
                                format_lsn(streaming_at_),
                            {{"flush", format_lsn(streaming_at_)}});
}

StepResult FollowPrimary::restore_sync(const StepCall &s) {
    const std::string &target = ctx_.cfg.sync_standby_names_target;
    if (target.empty()) return StepResult::skip("no [replication] synchronous_standby_names to restore");
    s.before_changes("");
    // Followers of one primary restore it one at a time, each from what streams then.
    auto cluster = cluster_lock(ctx_.cfg, s.timeout());
    std::vector<std::string> avail;
    for (const auto &name : streaming_standbys(ctx_, *conn_))
        if (name != p_.app_name()) avail.push_back(name);
    std::string before = current_sync_standbys(*conn_, s.command());
    sync_after_ = restrict_sync_names(target, avail);
    json d = {{"target", target}, {"before", before}, {"after", sync_after_}, {"streaming", avail}};
    if (sync_after_ == before)
        return StepResult::skip("synchronous_standby_names already '" + before + "'", d);
    std::string sum =
        change_sync_standbys(ctx_, *conn_, "restore_sync", before, sync_after_, {{"primary", node_json(p_)}}, "info");
    sync_changed_ = true;
    return StepResult::done(sum, d);
}

StepResult FollowPrimary::attach(const StepCall &s) {
    if (ctx_.cfg.pcp_host.empty()) return StepResult::skip("no [pcp] host configured");
    s.before_changes("would run pcp_attach_node -n " + std::to_string(f_.id));
    pcp_attach(ctx_, f_.id);
    return StepResult::done("pcp_attach_node -n " + std::to_string(f_.id) + " done");
}

// ---- logical failover slots (PostgreSQL 17+) --------------------------------

bool FollowPrimary::slots_apply() { return conn_ && failover_slots_available(conn_->server_version()); }

StepResult FollowPrimary::stale_slots(const StepCall &s) {
    if (already_following_) return StepResult::skip("already following");
    if (!failover_slots_available(conn_->server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(p_), conn_->server_version()));
    if (f_.data_directory.empty()) return StepResult::skip("no data_directory for " + node_label(f_));
    // Only a dry run leaves a running node up here (stop_follower stopped at its change).
    if (!down_) return StepResult::skip("dry run: the node is still up");
    // The new primary's failover slots that a consumer can use there.
    std::set<std::string> held;
    for (const auto &s : logical_slots(ctx_, *conn_))
        if (s.failover && s.invalidation.empty()) held.insert(s.name);
    std::vector<std::string> errors, dropped, kept_no_copy, kept_other;
    for (const auto &f : slot_files(ctx_, f_, &errors)) {
        if (held.count(f.name) && f.logical) {
            // Left in place, the node's own slot of that name stops the slot
            // sync worker; the new primary's copy is the one that goes on
            // (removed below).
            dropped.push_back(f.name);
        } else if (f.logical && f.failover) {
            kept_no_copy.push_back(f.name);
        } else {
            kept_other.push_back(f.name + (f.logical ? " (logical, failover = false)" : " (physical)"));
        }
    }
    json d = {{"dropped", dropped}, {"kept_no_copy_on_primary", kept_no_copy}, {"kept_other", kept_other},
              {"errors", errors}};
    slots_ = d;
    if (!kept_no_copy.empty())
        ctx_.log().warn("{}: failover slot(s) {} kept: {} holds no usable copy, their consumers cannot move to it",
                        node_label(f_), join(kept_no_copy), node_label(p_));
    if (!kept_other.empty())
        ctx_.log().warn("{}: slot(s) kept, not failover slots of {}: {} (drop them once nothing uses them: they hold "
                        "WAL on the standby)",
                        node_label(f_), node_label(p_), join(kept_other));
    if (!errors.empty()) ctx_.log().warn("{}: slot state not read: {}", node_label(f_), join(errors, "; "));
    std::string kept;
    if (!kept_no_copy.empty() || !kept_other.empty())
        kept = "; kept " + join(kept_no_copy.empty() ? kept_other : kept_no_copy) +
               (kept_no_copy.empty() || kept_other.empty() ? "" : ", " + join(kept_other));
    const std::string what = std::to_string(dropped.size()) + " slot copy(ies) the new primary holds" +
                             (dropped.empty() ? "" : " (" + join(dropped) + ")") + kept;
    s.before_changes("would remove " + what, d);
    for (const auto &name : dropped) remove_slot_files(ctx_, f_, name);
    if (!dropped.empty())
        ctx_.emit(ev::kSlotsDropped, "stale_slots", "info",
                  {{"nodes", {{"node", node_json(f_)}, {"primary", node_json(p_)}}}, {"slots", dropped},
                   {"kept", kept_other}});
    return StepResult::done("removed " + what, d);
}

StepResult FollowPrimary::slot_sync(const StepCall &s) {
    if (!ctx_.cfg.sync_replication_slots) return StepResult::skip("[replication] sync_replication_slots = off");
    s.before_changes("would turn on sync_replication_slots and hot_standby_feedback");
    PgConn fc = PgConn::open(f_, ctx_.cfg);
    if (!failover_slots_available(fc.server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(f_), fc.server_version()));
    const double t = s.command();
    std::vector<std::string> set;
    for (const char *name : {"hot_standby_feedback", "sync_replication_slots"}) {
        if (fc.scalar(std::string("SELECT current_setting('") + name + "')::bool", {}, t).value_or("f") == "t")
            continue;
        fc.query(std::string("ALTER SYSTEM SET ") + name + " = on", {}, t);
        set.push_back(name);
    }
    if (!set.empty()) fc.query("SELECT pg_reload_conf()", {}, t);
    // Wait (bounded) until the worker has created a copy of every failover slot.
    std::set<std::string> want;
    for (const auto &s : logical_slots(ctx_, *conn_))
        if (s.failover && s.invalidation.empty()) want.insert(s.name);
    Stopwatch sw;
    std::vector<std::string> synced, ready, missing;
    for (;;) {
        synced.clear();
        ready.clear();
        missing.clear();
        auto have = logical_slots(ctx_, fc);
        for (const auto &name : want) {
            auto it = std::find_if(have.begin(), have.end(), [&](const LogicalSlot &s) { return s.name == name; });
            if (it == have.end() || !it->synced) missing.push_back(name);
            else if (it->temporary) synced.push_back(name);
            else ready.push_back(name);
        }
        if (missing.empty() || sw.seconds() >= s.timeout()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    json d = {{"turned_on", set}, {"ready", ready}, {"not_sync_ready", synced}, {"missing", missing}};
    slots_["synced"] = d;
    std::string sum = set.empty() ? "sync_replication_slots and hot_standby_feedback already on"
                                  : "turned on " + join(set);
    sum += "; " + std::to_string(ready.size() + synced.size()) + " of " + std::to_string(want.size()) +
           " failover slot(s) synchronized";
    if (!synced.empty()) sum += " (" + join(synced) + ": not sync-ready until its consumer advances on the primary)";
    if (!missing.empty()) {
        sum += "; not synchronized yet: " + join(missing) + " (see the node's server log)";
        ctx_.log().warn("{}: failover slot(s) not synchronized after {:.0f} s: {}", node_label(f_), sw.seconds(),
                        join(missing));
    }
    return StepResult::done(sum, d);
}

StepResult FollowPrimary::standby_slots(const StepCall &s) {
    if (!failover_slots_available(conn_->server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(p_), conn_->server_version()));
    // Followers of one primary change it one at a time, each from what streams then.
    auto cluster = cluster_lock(ctx_.cfg, s.timeout());
    StandbySlots ss = update_standby_slots(ctx_, *conn_, false);
    if (!ss.applies) return StepResult::skip("no failover slots on " + node_label(p_), ss.to_json());
    if (!ss.changed) return StepResult::skip("synchronized_standby_slots already '" + ss.before + "'", ss.to_json());
    ctx_.emit(ev::kSlotsStandbySlots, "standby_slots", "info",
              {{"nodes", {{"primary", node_json(p_)}, {"node", node_json(f_)}}}, {"before", ss.before},
               {"after", ss.after}});
    return StepResult::done("synchronized_standby_slots '" + ss.before + "' -> '" + ss.after + "'", ss.to_json());
}

bool same_name(const std::string &a, const std::string &b) {
    // PostgreSQL matches application_name in synchronous_standby_names case-insensitively (ASCII).
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// After follow-primary failed to bring `f` back: sync_standby_names = adapt
// named it on the new primary while it was still a standby of the old one,
// for this run to repoint it. It will not stream now, so it must not hold
// commits: it is dropped from synchronous_standby_names. Returns what was
// done, for the failure message.
std::string drop_from_sync_standbys(Context &ctx, const Node &f, const Node &p) {
    if (ctx.dry_run || ctx.cfg.sync_policy == SyncPolicy::Keep) return "";
    const std::string name = f.app_name();
    try {
        auto cluster = cluster_lock(ctx.cfg, ctx.cfg.lock_timeout);
        PgConn conn = PgConn::open(p, ctx.cfg);
        if (in_recovery(conn, ctx.cfg.command_timeout)) return "";
        std::string before = current_sync_standbys(conn, ctx.cfg.command_timeout);
        std::vector<std::string> others;
        bool named = false;
        for (const auto &n : sync_names_listed(before)) {
            if (same_name(n, name)) named = true;
            else others.push_back(n);
        }
        if (!named) return "";
        std::string after = restrict_sync_names(before, others);
        change_sync_standbys(ctx, conn, "follow_primary", before, after,
                             {{"primary", node_json(p)}, {"failed", node_json(f)}}, "warning");
        return "; '" + name + "' dropped from synchronous_standby_names on " + node_label(p) + " ('" + before +
               "' -> '" + after + "'): commits no longer wait for it";
    } catch (const Error &e) {
        return "; '" + name + "' could NOT be dropped from synchronous_standby_names on " + node_label(p) + " (" +
               e.what() + "): commits there may wait for it";
    }
}

} // namespace

RejoinDecision decide_rejoin(Context &ctx, const Node &follower, uint32_t timeline,
                             const std::vector<HistoryEntry> &history, std::optional<Lsn> seen_end) {
    CheckpointInfo info = read_checkpoint(ctx, follower);
    RejoinDecision r;
    r.control = info.control;
    const ControlData &c = info.control;
    json &d = r.details;
    d = {{"state", db_state_name(c.state)}, {"checkpoint", format_lsn(c.checkpoint)}, {"timeline", c.timeline}};
    // Where the node's WAL ends.
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
    r.data_position = pos;
    if (c.state == PGFO_DB_SHUTDOWNED_IN_RECOVERY) {
        // A standby's pg_wal holds what it received, replayed or not, and
        // replayed records that dirtied no buffer: all past the minimum
        // recovery point. That is always the end of a replayed record, so
        // the next one starts there; scan on to the first record that does
        // not validate. (From the checkpoint record when pg_control has no
        // minimum recovery point past it.)
        Lsn from = c.checkpoint;
        uint32_t scan_tli = c.timeline;
        if (c.min_recovery_point >= c.checkpoint) {
            from = c.min_recovery_point;
            scan_tli = tli;
        }
        WalScan scan = scan_node_wal(ctx, follower, scan_tli, from, c.wal_segment_size, c.wal_block_size);
        d["wal_scan"] = {{"from", format_lsn(from)}, {"records", scan.records}, {"end", format_lsn(scan.end)},
                         {"stopped", scan.stopped}};
        if (scan.records && scan.end > pos) {
            pos = scan.end;
            d["position"] = "end of its WAL " + format_lsn(pos) + " (pg_control's minimum recovery point " +
                            format_lsn(c.min_recovery_point) + ")";
        }
        if (seen_end && *seen_end > pos) {
            pos = *seen_end;
            d["position"] = "received " + format_lsn(pos) + " while it ran (pg_control's minimum recovery point " +
                            format_lsn(c.min_recovery_point) + ")";
        }
    }
    d["wal_end"] = format_lsn(pos);
    r.position = pos;
    r.wal_timeline = tli;
    // The same timeline number is not the same timeline: two nodes promoted
    // to timeline 2 from different points each have one. Their histories tell.
    auto mine = node_history(ctx, follower, tli);
    std::string conflict = mine ? history_conflict(tli, *mine, timeline, history)
                                : "the node's history file " + history_file_name(tli) +
                                      " is missing: its timeline " + std::to_string(tli) +
                                      " cannot be compared with the primary's";
    if (!conflict.empty()) {
        r.reason = conflict;
        r.rewindable = tli != timeline;
        d["history"] = conflict;
        d["can_follow"] = false;
        return r;
    }
    if (tli == timeline) {
        r.can_follow = true;
        r.reason = "the node is already on the new timeline " + std::to_string(tli) + " (same history) at " +
                   format_lsn(pos);
    } else if (auto sp = switch_point_from(history, tli)) {
        r.switch_point = *sp;
        d["switch_point"] = format_lsn(*sp);
        r.can_follow = pos <= *sp;
        r.wal_only = !r.can_follow && r.data_position <= *sp;
        r.reason = "the node's WAL ends at " + format_lsn(pos) + " on timeline " + std::to_string(tli) +
                   (r.can_follow ? ", not past" : ", PAST") + " the switch point " + format_lsn(*sp) +
                   " of timeline " + std::to_string(timeline);
        if (r.wal_only)
            r.reason += " (WAL it received but never replayed: pg_control's minimum recovery point " +
                        format_lsn(c.min_recovery_point) + " is not past it)";
    }
    d["can_follow"] = r.can_follow;
    return r;
}

RejoinDecision rejoin_decision(Context &ctx, int follower, int primary) {
    const Node &f = node_by_id(ctx.cfg, follower);
    const Node &p = node_by_id(ctx.cfg, primary);
    PgConn conn = PgConn::open(p, ctx.cfg);
    if (in_recovery(conn, ctx.cfg.command_timeout)) throw Error(PGFO_ERR_STATE, node_label(p) + " is in recovery: it is not a primary");
    uint32_t timeline = current_timeline(ctx, conn);
    std::vector<HistoryEntry> history =
        server_history(conn, timeline, ctx.cfg.command_timeout).value_or(std::vector<HistoryEntry>{});
    if (!check_down(ctx, f).exited())
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
        for (const auto &s : kFollowPrimary)
            if (!s.applies || (fp.*s.applies)()) run.step(s, [&](const StepCall &c) { return (fp.*s.fn)(c); });
    } catch (const Error &e) {
        std::string msg = e.what();
        if (!fp.streams()) msg += drop_from_sync_standbys(ctx, f, p);
        ctx.set_result(run.finish(e.code(), msg, fp.verdict()));
        throw Error(e.code(), msg);
    }
    json v = fp.verdict();
    std::string msg = ctx.dry_run ? "dry run complete: nothing was changed"
                                  : node_label(f) + " follows " + node_label(p) +
                                        (fp.rejoin() == Rejoin::Rewound   ? " (after pg_rewind)"
                                         : fp.rejoin() == Rejoin::Already ? " (it already did)"
                                                                    : " without pg_rewind");
    ctx.set_result(run.finish(PGFO_OK, msg, v));
}

std::vector<StepInfo> follow_primary_steps() {
    std::vector<StepInfo> v;
    for (const auto &s : kFollowPrimary) v.push_back(step_info(s, s.applies ? "PostgreSQL 17+" : ""));
    return v;
}

void follow_primary_from_pgpool(Context &ctx, const std::vector<std::string> &args) {
    PgpoolArgs a = parse_pgpool_args(args);
    ctx.log().info("follow_primary_command: node {} follows new primary {} (old primary {})", a.failed_node,
                   a.new_main_node, a.old_primary_node);
    merge_pgpool_nodes(ctx, a);
    if (a.new_main_node < 0)
        throw Error(PGFO_ERR_STATE, "pgpool passed no new primary (%m = -1): nothing to follow");
    auto note = pending_switchover(ctx);
    if (note && note->to != a.new_main_node) note.reset(); // not that switchover's
    try {
        follow_primary(ctx, a.failed_node, a.new_main_node);
    } catch (const Error &) {
        if (note) hand_back_report(ctx, *note, "follow_primary", a.failed_node);
        throw;
    }
    if (note) hand_back_report(ctx, *note, "follow_primary", a.failed_node);
}

} // namespace pgfo
