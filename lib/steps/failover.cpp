// The failover procedure as step tables: each row is a step's name, what it
// does (the log line), and the member function that does it. The Runner gives
// every step the same logging, timing, events and report entry.
#include "steps/failover.h"

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/lock.h"
#include "core/text.h"
#include "pg/lsn.h"
#include "config/sync_names.h"
#include "pgpool/args.h"
#include "steps/fence.h"
#include "steps/events.h"
#include "steps/handover.h"
#include "steps/outcome.h"
#include "steps/ops.h"
#include "steps/shutdown.h"
#include "steps/promotion.h"
#include "steps/sync_rep.h"
#include "steps/rejoin.h"
#include "steps/runner.h"
#include "steps/slots.h"

namespace pgfo {
namespace {

using nlohmann::json;

const char *pid_state_name(PidFileState s) {
    switch (s) {
    case PidFileState::Gone: return "gone";
    case PidFileState::Stale: return "stale";
    default: return "alive";
    }
}

// Application names a new synchronous_standby_names may name: standbys
// streaming from `conn` right now (they may not be pgpool nodes), and
void take_advisory_lock(Context &ctx, PgConn &conn, const StepCall &s) {
    // Runners on any host meet at the nodes themselves: a session advisory
    // lock works on a hot standby and survives its promotion, as the
    // session does; it goes away with the session if the runner dies.
    Stopwatch sw;
    const std::string key = "pgfailover:" + ctx.cfg.cluster_name;
    for (;;) {
        auto got = conn.scalar("SELECT pg_try_advisory_lock(hashtext($1))", {key}, s.command());
        if (got && *got == "t") return;
        if (sw.seconds() >= s.timeout())
            throw Error(PGFO_ERR_LOCKED, conn.label() + ": another pgfailover run (maybe on another host) "
                                                        "holds the advisory lock '" + key + "'");
        poll_sleep(ctx.cfg);
    }
}

// ---------------------------------------------------------------------------
// The old primary failed: promote the candidate as soon as it is safe.

class PrimaryFailover {
public:
    PrimaryFailover(Context &ctx, const Node &old_primary, const Node &candidate, OnRunning on_running)
        : ctx_(ctx), old_(old_primary), cand_(candidate), on_running_(on_running) {}

    StepResult lock(const StepCall &s);
    StepResult inspect(const StepCall &s);
    StepResult stop_old_primary(const StepCall &s);
    StepResult wait_shutdown(const StepCall &s);
    StepResult read_checkpoint(const StepCall &s);
    StepResult wait_flush(const StepCall &s);
    StepResult candidates(const StepCall &s);
    StepResult sync_standbys(const StepCall &s);
    StepResult promote(const StepCall &s);
    StepResult verify(const StepCall &s);
    StepResult one_primary(const StepCall &s);
    // Logical failover slots (PostgreSQL 17+), see steps/slots.h.
    // Failover slots exist from PostgreSQL 17 on: the slot steps apply only
    // then (said once in the log otherwise).
    bool slots_apply();
    StepResult slots_inventory(const StepCall &s);
    StepResult slots_ready(const StepCall &s);
    StepResult advance_slots(const StepCall &s);
    StepResult standby_slots(const StepCall &s);

    json verdict() const;
    // After a failure: what the cluster looks like now, for the message.
    std::pair<std::string, std::string> cluster_state() const;
    bool needs_rewind() const { return rejoin_ == OldPrimaryRejoin::NeedsRewind; }
    OldPrimaryRejoin rejoin() const { return rejoin_; }

private:
    // The old primary's state cannot be proven: on_unclean decides.
    void unclean(const std::string &reason);
    // "on_unclean = promote" or "on_unclean = fence", for step summaries.
    std::string unclean_policy() const {
        return ctx_.cfg.on_unclean == OnUnclean::Fence ? "on_unclean = fence (fenced)" : "on_unclean = promote";
    }

    Context &ctx_;
    const Node &old_;
    const Node &cand_;
    const OnRunning on_running_; // the configuration's, or a switchover's Stop
    std::unique_ptr<FileLock> file_lock_;
    std::optional<PgConn> conn_; // to the candidate, for the whole run
    std::vector<PgConn> lock_conns_; // sessions holding the advisory lock on the other standbys
    // Nodes that did not answer at the lock step: not asked again before the
    // promotion (each try costs connect_timeout); one_primary asks them again.
    std::set<int> silent_;
    bool already_primary_ = false;
    bool old_running_primary_ = false;
    bool old_is_standby_ = false;
    std::string unclean_reason_;
    bool fenced_ = false;       // the fence command cut the old primary off (on_unclean = fence)
    bool fence_failed_ = false; // it did not: the old primary may still run
    std::optional<CheckpointInfo> ckpt_;
    bool slots_note_ = false;        // "failover slots need PostgreSQL 17" logged
    uint64_t cand_system_id_ = 0;    // pg_control_system() of the candidate, checked against the old primary's
    long old_postmaster_pid_ = 0;    // the old postmaster still ran when its shutdown was proven
    // pg_control as the shutdown wait's last probe read it (CRC valid), when it
    // said "shut down": final, so read_checkpoint needs no second read
    std::optional<ControlData> down_control_;
    std::string old_postmaster_;     // after the promotion: "running", "exited" ("" when it had exited before)
    std::optional<Lsn> flushed_;
    std::string sync_before_, sync_after_;
    bool sync_changed_ = false;
    bool promoted_ = false;
    bool stop_requested_ = false;    // we asked the old primary to stop
    bool old_down_ = false;          // the old primary is known down (or its host unreachable)
    bool promote_requested_ = false; // a promotion was asked of the candidate
    SwitchPoint switch_;
    OldPrimaryRejoin rejoin_ = OldPrimaryRejoin::Unknown;
    // failover slot -> what its consumers confirmed on the old primary (when known)
    std::map<std::string, std::optional<Lsn>> slots_expected_;
    std::vector<SlotReadiness> slots_behind_; // ready copies to advance after the promotion
};

using PrimaryStep = StepRow<PrimaryFailover>;

// name, what it does, timeout, dry run, events, body (, applies)
const PrimaryStep kPrimaryFailover[] = {
    {"lock", "take the cluster lock on this host and the advisory lock on the candidate and every other "
             "reachable standby, in node id order",
     StepTimeout::Lock, kDryRunStops, {}, &PrimaryFailover::lock},
    {"inspect", "look at both nodes: roles, versions, whether the old primary still runs",
     StepTimeout::Connect, kDryRunRuns, {ev::kSplitBrain}, &PrimaryFailover::inspect},
    {"slots_inventory", "while the old primary runs: its failover slots, and wait until the candidate's copies "
                        "are ready (PostgreSQL 17+)",
     StepTimeout::Catchup, kDryRunRuns, {}, &PrimaryFailover::slots_inventory, &PrimaryFailover::slots_apply},
    {"stop_old_primary", "stop the old primary in fast mode if it still runs as a primary (on_running)",
     StepTimeout::None, kDryRunStops, {}, &PrimaryFailover::stop_old_primary},
    {"wait_shutdown", "wait until the old primary is down: it accepts no connections and pg_control says 'shut "
                      "down' (postmaster stopping), or ping answers nothing and postmaster.pid is gone or stale",
     StepTimeout::Shutdown, kDryRunRuns, ev::kFencing, &PrimaryFailover::wait_shutdown},
    {"read_checkpoint", "read the old primary's pg_control and the end of its shutdown checkpoint record",
     StepTimeout::Unreachable, kDryRunRuns, ev::kFencing, &PrimaryFailover::read_checkpoint},
    {"wait_flush", "wait until the candidate has flushed WAL up to the end of that record",
     StepTimeout::Catchup, kDryRunStops, ev::kFencing, &PrimaryFailover::wait_flush},
    {"candidates", "compare the candidate's WAL with the other standbys' (receive or replay position, the "
                   "larger; pgpool picks by node id, not by WAL)",
     StepTimeout::None, kDryRunRuns, {}, &PrimaryFailover::candidates},
    {"sync_standbys", "make synchronous_standby_names on the candidate name only standbys that remain",
     StepTimeout::None, kDryRunStops, {ev::kSyncChanged}, &PrimaryFailover::sync_standbys},
    {"slots", "check that every logical failover slot is synced and ready on the candidate (on_slots_not_ready)",
     StepTimeout::None, kDryRunRuns, {ev::kSlotsReady, ev::kSlotsNotReady}, &PrimaryFailover::slots_ready,
     &PrimaryFailover::slots_apply},
    {"promote", "promote the candidate, wait until it accepts a write, request a CHECKPOINT",
     StepTimeout::Promote, kDryRunStops, {}, &PrimaryFailover::promote},
    {"standby_slots", "set synchronized_standby_slots on the new primary to the standbys streaming from it",
     StepTimeout::None, dry_run_skips("nothing promoted"), {ev::kSlotsStandbySlots}, &PrimaryFailover::standby_slots,
     &PrimaryFailover::slots_apply},
    {"advance_slots", "move each synced failover slot that is behind its consumers to what they confirmed on the "
                      "old primary",
     StepTimeout::None, kDryRunStops, {}, &PrimaryFailover::advance_slots, &PrimaryFailover::slots_apply},
    {"verify", "read the new timeline's switch point: can the old primary rejoin without pg_rewind?",
     StepTimeout::None, dry_run_skips("nothing promoted"), {}, &PrimaryFailover::verify},
    {"one_primary", "check that the candidate is now the only node out of recovery",
     StepTimeout::Connect, dry_run_skips("nothing promoted"), {ev::kSplitBrain}, &PrimaryFailover::one_primary},
};

void PrimaryFailover::unclean(const std::string &reason) {
    // on_unclean = fence (lib/steps/fence.cpp): promote only once the fence
    // command has cut the old primary off; a failed fence throws
    // PGFO_ERR_UNCLEAN and nothing is promoted.
    if (ctx_.cfg.on_unclean == OnUnclean::Fence) {
        if (!fenced_) {
            fence_failed_ = true;
            fence_node(ctx_, old_, reason);
            fence_failed_ = false;
            fenced_ = true;
        }
        unclean_reason_ = reason;
        ctx_.log().warn("UNCLEAN: {}; on_unclean = fence: {} is fenced, promoting {}; the old primary will "
                        "need pg_rewind (or a new base backup) before it can follow",
                        reason, node_label(old_), node_label(cand_));
        return;
    }
    if (ctx_.cfg.on_unclean == OnUnclean::Abort)
        throw Error(PGFO_ERR_UNCLEAN, reason + "; on_unclean = abort: the candidate " + node_label(cand_) +
                                          " is NOT promoted and the cluster has no primary until an "
                                          "operator acts");
    unclean_reason_ = reason;
    ctx_.log().warn("UNCLEAN: {}; on_unclean = promote: promoting {} anyway, the old primary {} will "
                    "need pg_rewind (or a new base backup) before it can follow",
                    reason, node_label(cand_), node_label(old_));
}

StepResult PrimaryFailover::lock(const StepCall &s) {
    conn_.emplace(PgConn::open(cand_, ctx_.cfg));
    s.before_changes("no locks taken");
    file_lock_ = cluster_lock(ctx_.cfg, s.timeout());
    // A lock file only serialises runs on this host. Two pgpool nodes (or an
    // operator elsewhere) may pick different candidates, so the advisory lock
    // is taken on every standby that answers, always in node id order: any
    // two runs then meet at the first node both reach, and never wait for
    // each other in a circle. The candidate's lock is required; a standby
    // that does not answer is skipped (it cannot be promoted either).
    std::vector<std::string> held, skipped;
    for (const auto &[id, n] : ctx_.cfg.nodes) {
        if (id == old_.id) continue;
        if (id == cand_.id) {
            take_advisory_lock(ctx_, *conn_, s);
            held.push_back("node " + std::to_string(id));
            continue;
        }
        if (ping_node(n, ctx_.cfg) != PGFO_PING_OK) {
            skipped.push_back("node " + std::to_string(id));
            silent_.insert(id);
            continue;
        }
        try {
            PgConn c = PgConn::open(n, ctx_.cfg);
            take_advisory_lock(ctx_, c, s);
            lock_conns_.push_back(std::move(c));
            held.push_back("node " + std::to_string(id));
        } catch (const Error &e) {
            if (e.code() == PGFO_ERR_LOCKED) throw;
            skipped.push_back("node " + std::to_string(id) + " (" + e.what() + ")");
            silent_.insert(id);
        }
    }
    std::string sum = "holding " + lock_file_path(ctx_.cfg) + " and the advisory lock on " + join(held);
    if (!skipped.empty()) sum += "; not reachable: " + join(skipped);
    return StepResult::done(sum, {{"advisory_locks", held}, {"unreachable", skipped}});
}

StepResult PrimaryFailover::inspect(const StepCall &s) {
    json d;
    already_primary_ = !in_recovery(*conn_, s.command());
    // read now: the candidate may be gone by the time pg_control is read
    cand_system_id_ = system_identifier(ctx_, *conn_);
    d["candidate"] = {{"server_version", conn_->server_version()}, {"in_recovery", !already_primary_}};
    pgfo_ping_t ping = ping_node(old_, ctx_.cfg);
    d["old_primary"] = {{"ping", ping_name(ping)}};
    if (ping == PGFO_PING_OK) {
        PgConn old_conn = PgConn::open(old_, ctx_.cfg);
        bool standby = in_recovery(old_conn, s.command());
        old_running_primary_ = !standby;
        old_is_standby_ = standby;
        d["old_primary"]["in_recovery"] = standby;
    }
    if (old_is_standby_ && !already_primary_)
        throw Error(PGFO_ERR_STATE, node_label(old_) + " is running as a standby and " + node_label(cand_) +
                                        " is still in recovery: there is no primary to fail over from");
    // Another failover (another pgpool node, an operator) may have promoted a
    // different standby already: promoting ours too would make two primaries.
    std::string others;
    std::set<int> skip = silent_;
    skip.insert({old_.id, cand_.id});
    for (const auto &r : node_roles(ctx_, skip)) {
        if (r.node->id == old_.id || r.node->id == cand_.id) continue;
        d["node" + std::to_string(r.node->id)] = role_name(r.kind);
        if (r.kind == NodeRole::Primary) others += (others.empty() ? "" : ", ") + node_label(*r.node);
    }
    if (!others.empty() && !already_primary_)
        throw Error(PGFO_ERR_REFUSED, others + " is already a primary (promoted by another failover: another "
                                               "pgpool node or an operator?); promoting " + node_label(cand_) +
                                               " as well would make two primaries: NOT promoting. Make pgpool "
                                               "use " + others + " as its primary");
    if (!others.empty()) {
        std::string msg = "two primaries: " + node_label(cand_) + " and " + others + " are both out of recovery";
        ctx_.emit(ev::kSplitBrain, "inspect", "critical",
                  {{"nodes", {{"candidate", node_json(cand_)}}}, {"message", msg}});
        throw Error(PGFO_ERR_SPLIT_BRAIN, msg + "; changing nothing: fence one of them now");
    }
    std::string sum = node_label(cand_) + (already_primary_ ? " is already a primary (it will not be promoted again)"
                                                            : " is a standby") +
                      "; old primary " + node_label(old_) + ": " + ping_name(ping);
    if (old_running_primary_) sum += ", running as a primary";
    if (old_is_standby_) sum += ", running as a standby (the failover was already completed)";
    if (already_primary_ && old_running_primary_)
        ctx_.log().warn("TWO PRIMARIES: {} and {} are both out of recovery", node_label(cand_), node_label(old_));
    return StepResult::done(sum, d);
}

StepResult PrimaryFailover::stop_old_primary(const StepCall &s) {
    if (!old_running_primary_) return StepResult::skip("the old primary is not running as a primary");
    if (on_running_ == OnRunning::Refuse)
        throw Error(PGFO_ERR_REFUSED, node_label(old_) + " is up and accepting connections as a primary; "
                                          "on_running = refuse: not stopping it and not promoting " +
                                          node_label(cand_) + " (set on_running = stop to switch over)");
    s.before_changes("would stop it with pg_ctl stop -m fast");
    request_fast_stop(ctx_, old_);
    stop_requested_ = true;
    return StepResult::done("fast shutdown requested (on_running = stop)");
}

StepResult PrimaryFailover::wait_shutdown(const StepCall &s) {
    if (old_is_standby_) return StepResult::skip("the old primary already runs as a standby");
    ShutdownWait w = pgfo::wait_shutdown(ctx_, old_, s.timeout(), WaitFor::ShutDown);
    json d = {{"ping", ping_name(w.last.ping)}, {"postmaster_pid", pid_state_name(w.last.pid.state)},
              {"pid", w.last.pid.pid}, {"checks", w.checks}, {"failed_checks", w.failed_checks}};
    if (w.last.control) d["pg_control"] = db_state_name(w.last.control->state);
    if (w.last.host_unreachable) {
        d["access_error"] = w.last.access_error;
        old_down_ = true;
        unclean("the old primary's host cannot be reached (" + w.last.access_error + ", for " +
                std::to_string(static_cast<int>(ctx_.cfg.unreachable_timeout)) + " s)");
        return StepResult::done("host unreachable; proceeding under " + unclean_policy(), d);
    }
    if (!w.last.shut_down()) // dry run: one look only
        return StepResult::skip(std::string("dry run: the old primary is still up (") + ping_name(w.last.ping) +
                                    "); would wait up to " + std::to_string(static_cast<int>(s.timeout())) + " s",
                                d);
    old_down_ = true;
    if (w.last.control && w.last.control->state == PGFO_DB_SHUTDOWNED) down_control_ = w.last.control;
    if (!w.last.exited()) {
        // The shutdown checkpoint is written; the postmaster lingers for its
        // archiver or walsenders, which only read WAL: nothing waits for it.
        old_postmaster_pid_ = w.last.pid.pid;
        d["postmaster"] = "running";
        return StepResult::done("old primary shut down (ping: " + std::string(ping_name(w.last.ping)) +
                                    ", pg_control: shut down, postmaster " + std::to_string(w.last.pid.pid) +
                                    " stopping: its archiver or walsenders still run; not waiting for its exit)",
                                d);
    }
    d["postmaster"] = "exited";
    std::string pid = w.last.pid.state == PidFileState::Gone
                          ? "postmaster.pid gone"
                          : "postmaster.pid stale (process " + std::to_string(w.last.pid.pid) + " is not alive)";
    return StepResult::done("old primary down (ping: no response, " + pid + ")", d);
}

StepResult PrimaryFailover::read_checkpoint(const StepCall &s) {
    if (!unclean_reason_.empty()) return StepResult::skip("old primary unclean: " + unclean_reason_);
    if (old_is_standby_) return StepResult::skip("the old primary already runs as a standby");
    // Only a dry run's shutdown wait (one look) leaves the old primary up here.
    if (!old_down_)
        return StepResult::skip("dry run: the old primary is still up; pg_control would be read once it is down");
    const double window = s.timeout();
    // Every read is retried: one failed ssh (MaxStartups), a torn read or a
    // network blip must not decide the failover. What is left after the
    // window is a fact, and never skips the wait for the flush.
    ControlData c;
    try {
        c = down_control_ ? *down_control_
                          : retry_reads(ctx_, node_label(old_) + ": reading pg_control", window,
                                        [&] { return read_control(ctx_, old_); });
    } catch (const Error &e) {
        if (e.code() == PGFO_ERR_EXEC && old_.access == Access::Ssh &&
            ping_node(old_, ctx_.cfg) == PGFO_PING_NO_RESPONSE) {
            unclean("the old primary's host cannot be reached (" + std::string(e.what()) + ", for " +
                    std::to_string(static_cast<int>(window)) + " s)");
            return StepResult::done("host unreachable; proceeding under " + unclean_policy(), {{"error", e.what()}});
        }
        throw Error(e.code(), std::string(e.what()) + "; without the old primary's pg_control its shutdown "
                                                       "cannot be proven: NOT promoting");
    }
    // Another cluster's pg_control reads just like a clean shutdown.
    check_same_cluster(old_, c, cand_system_id_, "the candidate " + node_label(cand_));
    json d = {{"state", db_state_name(c.state)}, {"checkpoint", format_lsn(c.checkpoint)},
              {"redo", format_lsn(c.redo)}, {"timeline", c.timeline},
              {"system_identifier", std::to_string(c.system_identifier)},
              {"pg_control_from", down_control_ ? "the shutdown probe" : "a read of its own"}};
    ckpt_.emplace();
    ckpt_->control = c;
    if (c.state != PGFO_DB_SHUTDOWNED) {
        ckpt_->why_unclean = std::string("pg_control state is '") + db_state_name(c.state) +
                             "', not 'shut down': the old primary did not shut down cleanly (crash or "
                             "immediate stop); it has no shutdown checkpoint to wait for";
        unclean(ckpt_->why_unclean);
        return StepResult::done(std::string("state '") + db_state_name(c.state) + "': " + ckpt_->why_unclean, d);
    }
    const uint32_t expected = shutdown_checkpoint_length(c.control_version);
    d["expected_record_length"] = expected;
    std::optional<WalRecordInfo> rec;
    try {
        rec = retry_reads(ctx_, node_label(old_) + ": reading the checkpoint record", window,
                          [&] { return read_checkpoint_record(ctx_, old_, c); });
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_EXEC && e.code() != PGFO_ERR_WAL) throw;
        // pg_control proves the shutdown; the record's end is then a known
        // bound: a shutdown checkpoint record has the same length on every
        // server of a major version, and crosses at most one page header.
        if (!expected)
            throw Error(e.code(), std::string(e.what()) + "; the length of a shutdown checkpoint record of "
                                  "pg_control version " + std::to_string(c.control_version) +
                                  " is unknown: NOT promoting without a proven flush target");
        ckpt_->end = record_end(c.checkpoint, expected, c.wal_segment_size, c.wal_block_size);
        d["end_from"] = "record_length";
        d["record_error"] = e.what();
        ctx_.log().warn("{}: cannot read the checkpoint record ({}); its end follows from pg_control: a shutdown "
                        "checkpoint of {} bytes at {} ends at {}",
                        node_label(old_), e.what(), expected, format_lsn(c.checkpoint), format_lsn(ckpt_->end));
    }
    if (rec) {
        d["record_length"] = rec->total_length;
        if (!is_shutdown_checkpoint(*rec))
            throw Error(PGFO_ERR_WAL, node_label(old_) + ": pg_control says 'shut down', but the record at its "
                                                         "latest checkpoint location " + format_lsn(c.checkpoint) +
                                                         " is not a shutdown checkpoint; NOT promoting");
        ckpt_->end = rec->end;
        d["end_from"] = "wal";
    }
    ckpt_->clean = true;
    d["checkpoint_end"] = format_lsn(ckpt_->end);
    return StepResult::done("shut down; shutdown checkpoint " + format_lsn(c.checkpoint) + " ends at " +
                                format_lsn(ckpt_->end) + " on timeline " + std::to_string(c.timeline),
                            d);
}

StepResult PrimaryFailover::wait_flush(const StepCall &s) {
    if (!ckpt_ || !ckpt_->clean) return StepResult::skip("no shutdown checkpoint to wait for");
    if (already_primary_) return StepResult::skip("the candidate is already a primary");
    FlushWait w = pgfo::wait_flush(ctx_, *conn_, ckpt_->end, s.timeout());
    flushed_ = w.last;
    std::string last = w.last ? format_lsn(*w.last) : std::string("nothing (never streamed)");
    json d = {{"target", format_lsn(ckpt_->end)}, {"flushed", last}};
    if (w.reached)
        return StepResult::done("candidate flushed " + last + " >= checkpoint end " + format_lsn(ckpt_->end), d);
    s.before_changes("candidate has flushed " + last + ", needs " + format_lsn(ckpt_->end), d);
    // A stable fact, not a transient error: the candidate cannot get the
    // checkpoint. on_unclean decides (promoting means the old primary needs
    // pg_rewind, and what only it had is lost).
    unclean("the candidate flushed only up to " + last + " but the old primary's shutdown checkpoint ends at " +
            format_lsn(ckpt_->end) +
            (w.receiver_gone ? " and its walreceiver has stopped" : " after the catchup timeout"));
    return StepResult::done("candidate short of the checkpoint end; proceeding under " + unclean_policy(), d);
}

StepResult PrimaryFailover::candidates(const StepCall &s) {
    if (already_primary_) return StepResult::skip("the candidate is already a primary");
    // The same position wait_flush waits on: receive or replay, the larger
    // (a standby restarted while the primary was down has no receive position).
    const std::optional<Lsn> cand = standby_wal(ctx_, *conn_).position();
    const std::string cand_text = cand ? format_lsn(*cand) : "none";
    json d = {{"candidate", cand_text}};
    std::string ahead, primaries;
    for (const auto &[id, n] : ctx_.cfg.nodes) {
        if (id == old_.id || id == cand_.id || silent_.count(id) || ping_node(n, ctx_.cfg) != PGFO_PING_OK)
            continue;
        try {
            PgConn c = PgConn::open(n, ctx_.cfg);
            if (!in_recovery(c, s.command())) {
                // promoted since the inspect step, e.g. by hand during the wait
                primaries += (primaries.empty() ? "" : ", ") + node_label(n);
                d["node" + std::to_string(id)] = "primary";
                continue;
            }
            auto lsn = standby_wal(ctx_, c).position();
            d["node" + std::to_string(id)] = lsn ? format_lsn(*lsn) : "none";
            if (lsn && (!cand || *lsn > *cand))
                ahead += (ahead.empty() ? "" : ", ") + node_label(n) + " has " + format_lsn(*lsn);
        } catch (const Error &e) {
            d["node" + std::to_string(id)] = e.what();
        }
    }
    if (!primaries.empty())
        throw Error(PGFO_ERR_REFUSED, primaries + " became a primary while this failover waited (promoted by "
                                                  "hand or by another tool?); promoting " + node_label(cand_) +
                                                  " as well would make two primaries: NOT promoting");
    if (ahead.empty()) return StepResult::done("no other standby has more WAL than the candidate", d);
    std::string msg = "another standby has more WAL than the candidate " + node_label(cand_) + " (" +
                      cand_text + "): " + ahead +
                      "; promoting the candidate loses what only they have (asynchronous commits)";
    if (ctx_.cfg.refuse_better_candidate)
        throw Error(PGFO_ERR_REFUSED, msg + "; on_better_candidate = refuse: not promoting");
    ctx_.log().warn("BETTER CANDIDATE: {}; on_better_candidate = continue: promoting pgpool's choice", msg);
    return StepResult::done("WARNING: " + msg, d);
}

StepResult PrimaryFailover::sync_standbys(const StepCall &s) {
    sync_before_ = current_sync_standbys(*conn_, s.command());
    json d = {{"before", sync_before_}};
    if (old_is_standby_) // follow-primary has set it for the old primary as a standby
        return StepResult::skip("the old primary already runs as a standby: '" + sync_before_ + "' left as it is", d);
    std::vector<std::string> avail;
    if (ctx_.cfg.sync_policy == SyncPolicy::Adapt) {
        std::set<int> excluded = silent_; // not asked again before the promotion (see lock)
        excluded.insert({old_.id, cand_.id});
        avail = available_standbys(ctx_, *conn_, excluded, old_.app_name());
        d["available"] = avail;
    }
    auto after = repaired_sync_names(ctx_.cfg, sync_before_, avail);
    if (!after) return StepResult::skip("sync_standby_names = keep: left as '" + sync_before_ + "'", d);
    sync_after_ = *after;
    d["after"] = sync_after_;
    if (sync_after_ == sync_before_)
        return StepResult::skip("synchronous_standby_names '" + sync_before_ + "' already fits", d);
    s.before_changes("would change synchronous_standby_names from '" + sync_before_ + "' to '" + sync_after_ + "'", d);
    std::string sum = change_sync_standbys(ctx_, *conn_, "sync_standbys", sync_before_, sync_after_,
                                           {{"candidate", node_json(cand_)}});
    sync_changed_ = true;
    return StepResult::done(sum, d);
}

StepResult PrimaryFailover::promote(const StepCall &s) {
    if (already_primary_) return StepResult::skip(node_label(cand_) + " is already a primary: not promoting twice");
    s.before_changes(std::string("would promote with ") +
                     (conn_->server_version() >= 120000 ? "pg_promote()" : "pg_ctl promote"));
    PromoteResult r = pgfo::promote(ctx_, cand_, *conn_, s.timeout(), &promote_requested_);
    promoted_ = !r.already_primary;
    if (r.already_primary) return StepResult::skip(node_label(cand_) + " became a primary meanwhile: not promoting twice");
    return StepResult::done("promoted with " + r.method + ", accepting writes; CHECKPOINT requested",
                            {{"method", r.method}, {"promote_s", r.seconds}});
}

StepResult PrimaryFailover::verify(const StepCall &) {
    if (old_is_standby_) {
        // A re-run after the failover and the old primary's follow-primary:
        // its checkpoint was never read (it runs), so whether it follows is
        // looked at instead of computed.
        uint32_t tli = current_timeline(ctx_, *conn_);
        json d = {{"timeline", tli}};
        std::string why;
        try {
            auto recv = receiving_timeline(ctx_, old_);
            d["old_primary_timeline"] = recv ? json(*recv) : json(nullptr);
            rejoin_ = recv && *recv == tli ? OldPrimaryRejoin::Already : OldPrimaryRejoin::Unknown;
            why = recv ? "streams timeline " + std::to_string(*recv) : "does not stream";
        } catch (const Error &e) {
            rejoin_ = OldPrimaryRejoin::Unknown;
            why = std::string("does not answer (") + e.what() + ")";
        }
        d["rejoin"] = rejoin_;
        if (rejoin_ == OldPrimaryRejoin::Already)
            return StepResult::done(node_label(old_) + " already runs as a standby streaming timeline " +
                                        std::to_string(tli) + " of " + node_label(cand_) + ": nothing to rejoin",
                                    d);
        return StepResult::done(node_label(old_) + " runs as a standby but " + why + ", not timeline " +
                                    std::to_string(tli) + " of " + node_label(cand_) +
                                    ": run follow-primary for it",
                                d);
    }
    uint32_t parent = ckpt_ ? ckpt_->control.timeline : 0;
    if (parent == 0) {
        uint32_t tli = current_timeline(ctx_, *conn_);
        rejoin_ = OldPrimaryRejoin::NeedsRewind;
        return StepResult::done("new timeline " + std::to_string(tli) +
                                    "; the old primary's checkpoint is unknown: it needs pg_rewind to rejoin",
                                {{"rejoin", rejoin_}});
    }
    switch_ = switch_point(ctx_, *conn_, parent);
    json d = {{"timeline", switch_.timeline}};
    if (!switch_.point)
        throw Error(PGFO_ERR_STATE, node_label(cand_) + " timeline " + std::to_string(switch_.timeline) +
                                        " has no switch point from timeline " + std::to_string(parent) +
                                        " in its history");
    d["switch_point"] = format_lsn(*switch_.point);
    std::string sum = "timeline " + std::to_string(switch_.timeline) + " forked from " + std::to_string(parent) +
                      " at " + format_lsn(*switch_.point);
    if (ckpt_->clean && ckpt_->end <= *switch_.point) {
        rejoin_ = OldPrimaryRejoin::Clean;
        sum += " >= old primary's checkpoint end " + format_lsn(ckpt_->end) + ": it can rejoin without pg_rewind";
    } else {
        rejoin_ = OldPrimaryRejoin::NeedsRewind;
        sum += ckpt_->clean ? " < old primary's checkpoint end " + format_lsn(ckpt_->end) + ": it needs pg_rewind"
                            : "; the old primary did not shut down cleanly: it needs pg_rewind";
    }
    d["rejoin"] = rejoin_;
    return StepResult::done(sum, d);
}

StepResult PrimaryFailover::one_primary(const StepCall &s) {
    std::vector<NodeRole> roles = node_roles(ctx_);
    json d = json::object();
    std::vector<std::string> primaries;
    bool cand_primary = false;
    for (const auto &r : roles) {
        d["node" + std::to_string(r.node->id)] = role_name(r.kind);
        if (r.kind != NodeRole::Primary) continue;
        primaries.push_back(node_label(*r.node));
        if (r.node->id == cand_.id) cand_primary = true;
    }
    const std::string seen = describe_roles(roles);
    if (old_postmaster_pid_) {
        // Promoted while the old postmaster finished its archiving: say
        // whether it is gone by now (follow-primary waits for it).
        try {
            PidFileStatus p = make_node_access(old_)->postmaster_pid(old_.data_directory, s.command());
            old_postmaster_ = p.state == PidFileState::Alive ? "running" : "exited";
        } catch (const Error &e) {
            old_postmaster_ = "unknown";
        }
        d["old_postmaster"] = old_postmaster_;
    }
    if (cand_primary && primaries.size() == 1) return StepResult::done("exactly one primary: " + seen, d);
    std::string msg = primaries.size() > 1 ? "TWO PRIMARIES after the failover: " + seen
                                           : "the candidate " + node_label(cand_) +
                                                 " is not out of recovery after its promotion: " + seen;
    if (primaries.size() > 1) {
        ctx_.emit(ev::kSplitBrain, "one_primary", "critical",
                  {{"nodes", {{"candidate", node_json(cand_)}, {"old_primary", node_json(old_)}}},
                   {"message", msg}});
        throw Error(PGFO_ERR_SPLIT_BRAIN, msg + "; fence every primary but " + node_label(cand_) +
                                              " before a client writes to it");
    }
    throw Error(PGFO_ERR_STATE, msg);
}

// ---- logical failover slots (PostgreSQL 17+) --------------------------------

bool PrimaryFailover::slots_apply() {
    if (conn_ && failover_slots_available(conn_->server_version())) return true;
    if (!slots_note_) {
        slots_note_ = true;
        if (conn_) ctx_.log().info("{}", failover_slots_unavailable(node_label(cand_), conn_->server_version()));
    }
    return false;
}

StepResult PrimaryFailover::slots_inventory(const StepCall &s) {
    if (!old_running_primary_) return StepResult::skip("the old primary is not running as a primary");
    if (!failover_slots_available(conn_->server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(cand_), conn_->server_version()));
    PgConn old_conn = PgConn::open(old_, ctx_.cfg);
    if (!failover_slots_available(old_conn.server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(old_), old_conn.server_version()));
    for (const auto &s : logical_slots(ctx_, old_conn))
        if (s.failover) slots_expected_[s.name] = s.confirmed_flush;
    if (slots_expected_.empty()) return StepResult::skip("no failover slots on " + node_label(old_));
    auto r = wait_slots_ready(ctx_, *conn_, slots_expected_, s.timeout());
    json list = json::array();
    for (const auto &x : r) list.push_back(x.to_json());
    return StepResult::done(std::to_string(slots_expected_.size()) + " failover slot(s) on " + node_label(old_) +
                                "; on the candidate: " + describe_readiness(r),
                            {{"slots", list}});
}

StepResult PrimaryFailover::slots_ready(const StepCall &s) {
    if (already_primary_) return StepResult::skip(node_label(cand_) + " is already a primary");
    if (!failover_slots_available(conn_->server_version())) {
        std::string msg = failover_slots_unavailable(node_label(cand_), conn_->server_version());
        return StepResult::skip(msg);
    }
    // What the consumers were told: the old primary's slot state on disk,
    // saved by its shutdown checkpoint (newer than anything seen before the stop).
    json d = json::object();
    if (old_down_ && !old_.data_directory.empty() && ckpt_ && ckpt_->clean) {
        std::vector<std::string> errors;
        try {
            for (const auto &f : slot_files(ctx_, old_, &errors))
                if (f.logical && f.failover) slots_expected_[f.name] = f.confirmed_flush;
        } catch (const Error &e) {
            errors.push_back(e.what());
        }
        if (!errors.empty()) {
            d["old_primary_slot_errors"] = errors;
            ctx_.log().warn("{}: slot state not read: {}", node_label(old_), join(errors, "; "));
        }
    }
    auto cand = logical_slots(ctx_, *conn_);
    for (const auto &s : cand)
        if (s.failover && s.synced && !slots_expected_.count(s.name)) slots_expected_[s.name] = std::nullopt;
    if (slots_expected_.empty()) return StepResult::skip("no logical failover slots", d);
    auto wal = lsn_or_null(
        conn_->scalar("SELECT GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())", {}, s.command()));
    auto r = slot_readiness(cand, slots_expected_, wal);
    json list = json::array();
    std::vector<std::string> not_ready;
    for (const auto &x : r) {
        list.push_back(x.to_json());
        if (!x.ready) not_ready.push_back(x.name);
        if (x.ready && x.advance_to) slots_behind_.push_back(x);
    }
    d["slots"] = list;
    d["policy"] = ctx_.cfg.on_slots_not_ready == OnSlotsNotReady::Refuse ? "refuse" : "promote";
    const json nodes = {{"candidate", node_json(cand_)}, {"old_primary", node_json(old_)}};
    if (not_ready.empty()) {
        ctx_.emit(ev::kSlotsReady, "slots", "info", {{"nodes", nodes}, {"slots", list}});
        return StepResult::done(std::to_string(r.size()) + " failover slot(s) ready on " + node_label(cand_) + ": " +
                                    join([&] {
                                        std::vector<std::string> n;
                                        for (const auto &x : r) n.push_back(x.name);
                                        return n;
                                    }()),
                                d);
    }
    const std::string what = std::to_string(not_ready.size()) + " of " + std::to_string(r.size()) +
                             " failover slot(s) not ready on " + node_label(cand_) + ": " + describe_readiness(r);
    const bool refuse = ctx_.cfg.on_slots_not_ready == OnSlotsNotReady::Refuse;
    ctx_.emit(ev::kSlotsNotReady, "slots", refuse ? "critical" : "warning",
              {{"nodes", nodes}, {"slots", list}, {"policy", d["policy"]}, {"message", what}});
    if (refuse)
        throw Error(PGFO_ERR_REFUSED, what + "; on_slots_not_ready = refuse: NOT promoting " + node_label(cand_));
    ctx_.log().warn("SLOTS NOT READY: {}; on_slots_not_ready = promote: promoting anyway; consumers of those slots "
                    "may have to be re-synchronized (a consumer that resumes from its own position, such as a "
                    "subscription's replication origin, loses nothing to a slot that is only behind)",
                    what);
    return StepResult::done(what + "; promoting anyway (on_slots_not_ready = promote)", d);
}

StepResult PrimaryFailover::advance_slots(const StepCall &s) {
    if (slots_behind_.empty()) return StepResult::skip("no synced failover slot behind its consumers");
    s.before_changes("would advance " + describe_readiness(slots_behind_));
    if (!promoted_) return StepResult::skip(node_label(cand_) + " was not promoted by this run");
    std::vector<std::string> done, failed;
    json d = json::array();
    for (const auto &s : slots_behind_) {
        try {
            Lsn end = advance_slot(ctx_, *conn_, s.name, *s.advance_to);
            done.push_back(s.name + " -> " + format_lsn(end));
            d.push_back({{"name", s.name}, {"confirmed_flush_lsn", format_lsn(end)}});
        } catch (const Error &e) {
            // A consumer may already be attached: it then resumes from its own position.
            failed.push_back(s.name + ": " + e.what());
            d.push_back({{"name", s.name}, {"error", e.what()}});
        }
    }
    if (!failed.empty())
        ctx_.log().warn("{}: failover slot(s) not advanced, consumers that resume from the slot may see changes "
                        "again: {}",
                        node_label(cand_), join(failed, "; "));
    std::string sum = "advanced " + (done.empty() ? std::string("none") : join(done));
    if (!failed.empty()) sum += "; not advanced: " + join(failed, "; ");
    return StepResult::done(sum, {{"slots", d}});
}

StepResult PrimaryFailover::standby_slots(const StepCall &) {
    if (!failover_slots_available(conn_->server_version()))
        return StepResult::skip(failover_slots_unavailable(node_label(cand_), conn_->server_version()));
    StandbySlots ss = update_standby_slots(ctx_, *conn_, false);
    if (!ss.applies) return StepResult::skip("no failover slots on " + node_label(cand_), ss.to_json());
    if (!ss.changed) return StepResult::skip("synchronized_standby_slots already '" + ss.before + "'", ss.to_json());
    ctx_.emit(ev::kSlotsStandbySlots, "standby_slots", "info",
              {{"nodes", {{"primary", node_json(cand_)}}}, {"before", ss.before}, {"after", ss.after}});
    return StepResult::done("synchronized_standby_slots '" + ss.before + "' -> '" + ss.after +
                                "' (the physical slots of the standbys streaming from it; restored as standbys follow)",
                            ss.to_json());
}

std::pair<std::string, std::string> PrimaryFailover::cluster_state() const {
    std::string sync = sync_changed_ ? "; synchronous_standby_names on " + node_label(cand_) + " is now '" +
                                           sync_after_ + "' (was '" + sync_before_ + "')"
                                     : "";
    if (promoted_ || already_primary_)
        return {"promoted", node_label(cand_) + " is the primary (promoted" +
                                (already_primary_ ? " before this run)" : ")") + sync};
    if (promote_requested_)
        return {"promotion_pending",
                "the promotion of " + node_label(cand_) + " was requested and may still complete; the old primary " +
                    node_label(old_) + " is down: look at pg_is_in_recovery() on " + node_label(cand_) +
                    " before anything else (a re-run of pgfailover recognises a finished promotion)" + sync};
    if (fence_failed_)
        return {"no_primary", "the cluster has NO primary that pgfailover can vouch for: the old primary " +
                                  node_label(old_) + " could not be fenced and may still run, and " +
                                  node_label(cand_) + " was not promoted; fence or stop it by hand, then "
                                  "re-run pgfailover" + sync};
    if (old_down_) {
        std::string old = ckpt_ && ckpt_->clean ? "shut down cleanly at " + format_lsn(ckpt_->end) +
                                                      ": it can be started again as the primary"
                                                : "down";
        if (ckpt_ && ckpt_->clean && old_postmaster_pid_)
            old += " once its postmaster (pid " + std::to_string(old_postmaster_pid_) +
                   ", still archiving or sending WAL) has exited";
        return {"no_primary", "the cluster has NO primary: the old primary " + node_label(old_) + " is " + old +
                                  ", and " + node_label(cand_) + " was not promoted; re-run pgfailover once the "
                                  "cause is fixed" + sync};
    }
    if (stop_requested_)
        return {"old_primary_stopping", "the old primary " + node_label(old_) + " was asked to stop (on_running = "
                                        "stop) and " + node_label(cand_) + " was not promoted" + sync};
    return {"unchanged", "nothing was changed" + sync};
}

json PrimaryFailover::verdict() const {
    json v = {{"action", "promote"},
              {"new_primary", cand_.id},
              {"old_primary", old_.id},
              {"promoted", promoted_},
              {"already_primary", already_primary_},
              {"old_primary_rejoin", rejoin_},
              {"sync_standby_names_before", sync_before_},
              {"sync_standby_names_after", sync_changed_ ? sync_after_ : sync_before_}};
    if (!unclean_reason_.empty()) v["unclean"] = unclean_reason_;
    if (fenced_) v["fenced"] = true;
    v["cluster_state"] = cluster_state().first;
    if (ckpt_ && ckpt_->clean) v["checkpoint_end"] = format_lsn(ckpt_->end);
    if (flushed_) v["candidate_flushed"] = format_lsn(*flushed_);
    if (old_postmaster_pid_) v["old_postmaster"] = old_postmaster_.empty() ? "running" : old_postmaster_;
    if (switch_.point) v["switch_point"] = format_lsn(*switch_.point);
    if (switch_.timeline) v["new_timeline"] = switch_.timeline;
    return v;
}

void run_primary_failover(Context &ctx, const Node &old_primary, const Node &candidate, OnRunning on_running) {
    Runner run(ctx, "failover",
               {{"failed", node_json(old_primary)}, {"candidate", node_json(candidate)},
                {"old_primary", node_json(old_primary)}});
    PrimaryFailover f(ctx, old_primary, candidate, on_running);
    try {
        for (const auto &s : kPrimaryFailover)
            if (!s.applies || (f.*s.applies)()) run.step(s, [&](const StepCall &c) { return (f.*s.fn)(c); });
    } catch (const Error &e) {
        // Never leave a half-done cluster without saying what it looks like.
        std::string msg = std::string(e.what()) + ". State: " + f.cluster_state().second;
        ctx.set_result(run.finish(e.code(), msg, f.verdict()));
        throw Error(e.code(), msg);
    }
    std::string msg;
    if (ctx.dry_run) msg = "dry run complete: nothing was changed";
    else {
        msg = node_label(candidate) + " is the primary";
        if (f.needs_rewind())
            msg += "; WARNING: old primary " + node_label(old_primary) + " needs pg_rewind before it can follow";
        else if (f.rejoin() == OldPrimaryRejoin::Clean)
            msg += "; old primary " + node_label(old_primary) + " can rejoin as a standby without pg_rewind";
        else if (f.rejoin() == OldPrimaryRejoin::Already)
            msg += "; old primary " + node_label(old_primary) + " already follows it as a standby";
    }
    if (!ctx.dry_run && f.needs_rewind()) {
        json e = f.verdict();
        e["nodes"] = {{"old_primary", node_json(old_primary)}, {"new_primary", node_json(candidate)}};
        e["message"] = "old primary " + node_label(old_primary) + " needs pg_rewind before it can follow " +
                        node_label(candidate);
        ctx.emit(ev::kNeedsRewind, "", "warning", e);
    }
    ctx.set_result(run.finish(PGFO_OK, msg, f.verdict()));
}

// ---------------------------------------------------------------------------
// A standby failed: only synchronous replication on the primary can need care.

class StandbyFailure {
public:
    StandbyFailure(Context &ctx, const Node &failed, const Node &primary) : ctx_(ctx), failed_(failed), p_(primary) {}

    StepResult lock(const StepCall &s) {
        lock_ = cluster_lock(ctx_.cfg, s.timeout());
        return StepResult::done("holding " + lock_file_path(ctx_.cfg));
    }
    StepResult sync_standbys(const StepCall &s);

    std::string before, after;
    bool changed = false;

private:
    Context &ctx_;
    const Node &failed_;
    const Node &p_;
    std::unique_ptr<FileLock> lock_;
    std::optional<PgConn> conn_;
};

const StepRow<StandbyFailure> kStandbyFailure[] = {
    {"lock", "take the cluster lock on this host", StepTimeout::Lock, dry_run_skips("no lock taken"), {},
     &StandbyFailure::lock},
    {"sync_standbys", "drop the failed standby from synchronous_standby_names on the primary", StepTimeout::None,
     kDryRunStops, {ev::kSyncChanged}, &StandbyFailure::sync_standbys},
};

StepResult StandbyFailure::sync_standbys(const StepCall &s) {
    conn_.emplace(PgConn::open(p_, ctx_.cfg));
    before = current_sync_standbys(*conn_, s.command());
    json d = {{"before", before}};
    std::vector<std::string> avail;
    if (ctx_.cfg.sync_policy == SyncPolicy::Adapt)
        avail = available_standbys(ctx_, *conn_, {failed_.id, p_.id}, failed_.app_name());
    auto repaired = repaired_sync_names(ctx_.cfg, before, avail);
    if (!repaired) return StepResult::skip("sync_standby_names = keep: left as '" + before + "'", d);
    after = *repaired;
    d["after"] = after;
    if (after == before)
        return StepResult::skip("synchronous_standby_names '" + before + "' does not depend on " +
                                    node_label(failed_) + ": nothing changed",
                                d);
    s.before_changes("would change synchronous_standby_names from '" + before + "' to '" + after + "'", d);
    std::string sum = change_sync_standbys(ctx_, *conn_, "sync_standbys", before, after,
                                           {{"primary", node_json(p_)}, {"failed", node_json(failed_)}});
    changed = true;
    return StepResult::done(sum, d);
}

void run_standby_failure(Context &ctx, const Node &failed, const Node *primary) {
    json subject = {{"failed", node_json(failed)}};
    if (primary) subject["primary"] = node_json(*primary);
    Runner run(ctx, "standby_failure", subject);
    if (!primary) {
        ctx.set_result(run.finish(PGFO_OK, "no primary known (pgpool passed %P = -1): nothing to repair",
                                     {{"action", "none"}}));
        return;
    }
    StandbyFailure sf(ctx, failed, *primary);
    try {
        for (const auto &s : kStandbyFailure) run.step(s, [&](const StepCall &c) { return (sf.*s.fn)(c); });
    } catch (const Error &e) {
        ctx.set_result(run.finish(e.code(), e.what(), {{"action", "sync_repair"}}));
        throw;
    }
    const std::string &before = sf.before, &after = sf.after;
    ctx.set_result(run.finish(
        PGFO_OK,
        sf.changed ? "synchronous_standby_names changed from '" + before + "' to '" + after + "'"
                   : "synchronous replication unchanged ('" + before + "')",
        {{"action", "sync_repair"}, {"sync_standby_names_before", before},
         {"sync_standby_names_after", sf.changed ? after : before}}));
}

// pgpool's data directory (`placeholder`: %D or %R) when it passes the check
// a configured data_directory gets, else "" and a warning: it would reach
// pg_ctl start's shell.
std::string pgpool_data_dir(Context &ctx, int id, const char *placeholder, const std::optional<std::string> &dir) {
    if (!dir || dir->empty()) return {};
    std::string problem = server_path_problem(*dir);
    if (problem.empty()) return *dir;
    ctx.log().warn("node {}: ignoring pgpool's data directory ({}) {}: {}; set data_directory in [node.{}]", id,
                   placeholder, show_value(*dir, 200), problem, id);
    return {};
}

// Fill in a node pgpool told us about but the configuration does not have,
// and warn when both know it differently.
void merge_node(Context &ctx, int id, const std::optional<std::string> &host, const std::optional<int> &port,
                const std::optional<std::string> &dir, const char *placeholder) {
    if (id < 0) return;
    auto it = ctx.cfg.nodes.find(id);
    if (it == ctx.cfg.nodes.end()) {
        if (!host) return;
        Node n;
        n.id = id;
        n.host = *host;
        if (port) n.port = *port;
        n.data_directory = pgpool_data_dir(ctx, id, placeholder, dir);
        n.origin = "pgpool arguments";
        ctx.log().warn("node {} is not in the configuration; using pgpool's arguments {}:{} {}", id, n.host,
                       n.port, n.data_directory);
        ctx.cfg.nodes[id] = n;
        return;
    }
    Node &n = it->second;
    if ((host && *host != n.host) || (port && *port != n.port) || (dir && !n.data_directory.empty() && *dir != n.data_directory))
        ctx.log().warn("pgpool's view of node {} ({}:{} {}) differs from the configuration ({}:{} {}, {}); "
                       "using the configuration",
                       id, host.value_or("?"), port ? std::to_string(*port) : "?", dir.value_or("?"), n.host,
                       n.port, n.data_directory, n.origin);
    if (n.data_directory.empty()) n.data_directory = pgpool_data_dir(ctx, id, placeholder, dir);
}

} // namespace

void merge_pgpool_nodes(Context &ctx, const PgpoolArgs &a) {
    merge_node(ctx, a.failed_node, a.failed_host, a.failed_port, a.failed_data_dir, "%D");
    merge_node(ctx, a.new_main_node, a.new_main_host, a.new_main_port, a.new_main_data_dir, "%R");
    merge_node(ctx, a.old_primary_node, a.old_primary_host, a.old_primary_port, std::nullopt, "");
}

void failover(Context &ctx, int failed, int candidate, int old_primary, std::optional<OnRunning> on_running) {
    const Node &failed_node = node_by_id(ctx.cfg, failed);
    if (failed == old_primary) {
        if (candidate < 0)
            throw Error(PGFO_ERR_STATE, "the primary " + node_label(failed_node) +
                                            " failed and pgpool found no live node to promote (%m = -1)");
        if (candidate == failed)
            throw Error(PGFO_ERR_STATE, "the candidate is the failed node " + std::to_string(failed));
        run_primary_failover(ctx, failed_node, node_by_id(ctx.cfg, candidate),
                             on_running.value_or(ctx.cfg.on_running));
    } else {
        run_standby_failure(ctx, failed_node, old_primary >= 0 ? &node_by_id(ctx.cfg, old_primary) : nullptr);
    }
}

std::vector<StepInfo> primary_failover_steps() {
    std::vector<StepInfo> v;
    for (const auto &s : kPrimaryFailover) v.push_back(step_info(s, s.applies ? "PostgreSQL 17+" : ""));
    return v;
}

std::vector<StepInfo> standby_failure_steps() {
    std::vector<StepInfo> v;
    for (const auto &s : kStandbyFailure) v.push_back(step_info(s));
    return v;
}

void failover_from_pgpool(Context &ctx, const std::vector<std::string> &args) {
    PgpoolArgs a = parse_pgpool_args(args);
    ctx.log().info("failover_command: failed node {} ({}:{}), new main {}, old main {}, old primary {}",
                   a.failed_node, a.failed_host.value_or(""), a.failed_port ? std::to_string(*a.failed_port) : "",
                   a.new_main_node, a.old_main_node, a.old_primary_node);
    merge_pgpool_nodes(ctx, a);
    // A planned switchover handed to pgpool: pgpool calls this hook with the
    // primary still up, and the operator asked for it to be stopped.
    auto note = pending_switchover(ctx);
    std::optional<OnRunning> on_running;
    if (note) {
        if (note->from == a.failed_node && note->to == a.new_main_node && a.old_primary_node == a.failed_node) {
            ctx.log().info("pgpool runs this failover for switchover run {} (pid {}): node {} to node {}; the old "
                           "primary is stopped in fast mode whatever on_running says",
                           note->run, note->pid, note->from, note->to);
            on_running = OnRunning::Stop;
        } else {
            ctx.log().warn("a switchover (run {}, node {} to node {}) is waiting for pgpool, but pgpool asks for "
                           "another failover (failed node {}, new main {}): following the configuration",
                           note->run, note->from, note->to, a.failed_node, a.new_main_node);
        }
    }
    try {
        failover(ctx, a.failed_node, a.new_main_node, a.old_primary_node, on_running);
    } catch (const Error &) {
        if (note) hand_back_report(ctx, *note, "failover", a.failed_node);
        throw;
    }
    if (note) hand_back_report(ctx, *note, "failover", a.failed_node);
}

} // namespace pgfo
