// The C interface's single steps as step rows (see single.h); lib/capi keeps
// the entry points only.
#include "steps/single.h"

#include "core/error.h"
#include "pg/lsn.h"
#include "steps/events.h"
#include "steps/fence.h"
#include "steps/follow.h"
#include "steps/ops.h"
#include "steps/shutdown.h"
#include "steps/promotion.h"
#include "steps/sync_rep.h"
#include "steps/runner.h"

namespace pgfo {
namespace {

using nlohmann::json;

// name, what it does, timeout, dry run, events
const StepSpec kWaitShutdown = {"wait_shutdown", "wait until the node is down", StepTimeout::Shutdown, kDryRunRuns,
                                ev::kFencing};
const StepSpec kReadCheckpoint = {"read_checkpoint", "read pg_control and the checkpoint record", StepTimeout::None,
                                  kDryRunRuns, {}};
const StepSpec kWaitFlush = {"wait_flush", "wait until the node has flushed WAL up to the target",
                             StepTimeout::Catchup, kDryRunRuns, {}};
const StepSpec kSetSyncStandbys = {"sync_standbys", "set synchronous_standby_names", StepTimeout::None, kDryRunStops,
                                   {}};
const StepSpec kPromote = {"promote", "promote the node", StepTimeout::Promote, kDryRunStops, {}};
const StepSpec kSwitchPoint = {"verify", "read the switch point from the node's timeline history", StepTimeout::None,
                               kDryRunRuns, {}};
const StepSpec kRejoinDecision = {"decide", "can the node follow the primary without pg_rewind?", StepTimeout::None,
                                  kDryRunRuns, {}};

// The node a single step works on, as events and reports name nodes.
json node_ids(const Node &n) { return {{"node", node_json(n)}}; }

// Run `row` alone under a Runner: it logs, times and emits events like a
// step of a sequence, and leaves its report in the context.
template <class F>
void single_step(Context &c, const StepSpec &row, json nodes, double timeout, F &&fn) {
    Runner run(c, "step", std::move(nodes));
    try {
        StepResult r = run.step(row, fn, timeout);
        c.set_result(run.finish(PGFO_OK, r.summary, r.details));
    } catch (const Error &e) {
        c.set_result(run.finish(e.code(), e.what(), json::object()));
        throw;
    }
}

} // namespace

void single_wait_shutdown(Context &c, int node_id, double timeout) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kWaitShutdown, node_ids(n), timeout, [&](const StepCall &s) {
        auto w = wait_shutdown(c, n, s.timeout(), WaitFor::Exit);
        if (w.last.host_unreachable) {
            // Not proven down: on_unclean decides, as for a failover's old primary.
            const std::string reason = node_label(n) + ": host unreachable: " + w.last.access_error;
            json d = {{"host_unreachable", true}, {"access_error", w.last.access_error}, {"unclean", reason}};
            switch (c.cfg.on_unclean) {
            case OnUnclean::Abort:
                throw Error(PGFO_ERR_UNCLEAN, reason + "; on_unclean = abort: not counted as down");
            case OnUnclean::Fence:
                fence_node(c, n, reason); // PGFO_ERR_UNCLEAN when the fence command fails
                d["fenced"] = !c.dry_run;
                c.log().warn("UNCLEAN: {}; on_unclean = fence: {} is fenced", reason, node_label(n));
                return StepResult::done(reason + "; on_unclean = fence (fenced)", d);
            case OnUnclean::Promote:
                c.log().warn("UNCLEAN: {}; on_unclean = promote: counted as down", reason);
                return StepResult::done(reason + "; on_unclean = promote: counted as down", d);
            }
        }
        if (!w.last.exited()) throw Error(PGFO_ERR_TIMEOUT, node_label(n) + " is still up (dry run: looked once)");
        return StepResult::done(node_label(n) + " is down");
    });
}

void single_read_checkpoint(Context &c, int node_id, int *state, uint64_t *checkpoint, uint64_t *checkpoint_end,
                            uint32_t *timeline) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kReadCheckpoint, node_ids(n), -1, [&](const StepCall &) {
        auto info = read_checkpoint(c, n);
        if (state) *state = info.control.state;
        if (checkpoint) *checkpoint = info.control.checkpoint;
        if (checkpoint_end) *checkpoint_end = info.clean ? info.end : 0;
        if (timeline) *timeline = info.control.timeline;
        return StepResult::done(std::string(db_state_name(info.control.state)) + ", checkpoint " +
                                format_lsn(info.control.checkpoint) +
                                (info.clean ? " ends at " + format_lsn(info.end) : ""));
    });
}

void single_wait_flush(Context &c, int node_id, uint64_t target, double timeout, uint64_t *reached) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kWaitFlush, node_ids(n), timeout, [&](const StepCall &s) {
        PgConn conn = PgConn::open(n, c.cfg);
        auto w = wait_flush(c, conn, target, s.timeout());
        if (reached) *reached = w.last.value_or(0);
        std::string last = w.last ? format_lsn(*w.last) : "nothing";
        if (!w.reached)
            throw Error(PGFO_ERR_TIMEOUT, node_label(n) + " flushed only up to " + last + ", target " +
                                              format_lsn(target) + (w.receiver_gone ? " (walreceiver stopped)" : ""));
        return StepResult::done("flushed " + last + " >= " + format_lsn(target));
    });
}

void single_set_sync_standbys(Context &c, int node_id, const std::string &value) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kSetSyncStandbys, node_ids(n), -1, [&](const StepCall &s) {
        PgConn conn = PgConn::open(n, c.cfg);
        std::string before = current_sync_standbys(conn, s.command());
        s.before_changes("would set '" + value + "'");
        set_sync_standbys(c, conn, value);
        return StepResult::done("'" + before + "' -> '" + value + "'");
    });
}

void single_promote(Context &c, int node_id, double timeout) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kPromote, node_ids(n), timeout, [&](const StepCall &s) {
        PgConn conn = PgConn::open(n, c.cfg);
        s.before_changes("not promoting");
        auto r = promote(c, n, conn, s.timeout());
        if (r.already_primary) return StepResult::skip("already a primary: not promoting twice");
        return StepResult::done("promoted with " + r.method);
    });
}

void single_switch_point(Context &c, int node_id, uint32_t parent_tli, uint64_t *point, uint32_t *timeline) {
    const Node &n = node_by_id(c.cfg, node_id);
    single_step(c, kSwitchPoint, node_ids(n), -1, [&](const StepCall &) {
        PgConn conn = PgConn::open(n, c.cfg);
        auto sp = switch_point(c, conn, parent_tli);
        if (timeline) *timeline = sp.timeline;
        if (!sp.point)
            throw Error(PGFO_ERR_STATE, node_label(n) + ": timeline " + std::to_string(sp.timeline) +
                                            " did not fork from timeline " + std::to_string(parent_tli));
        if (point) *point = *sp.point;
        return StepResult::done("timeline " + std::to_string(sp.timeline) + " forked from " +
                                std::to_string(parent_tli) + " at " + format_lsn(*sp.point));
    });
}

void single_rejoin_decision(Context &c, int follower_node, int primary_node, int *can_follow) {
    const Node &f = node_by_id(c.cfg, follower_node);
    single_step(c, kRejoinDecision, node_ids(f), -1, [&](const StepCall &) {
        RejoinDecision r = rejoin_decision(c, follower_node, primary_node);
        if (can_follow) *can_follow = r.can_follow ? 1 : 0;
        return StepResult::done((r.can_follow ? "can follow without pg_rewind: " : "needs pg_rewind: ") + r.reason,
                                r.details);
    });
}

std::vector<StepInfo> single_steps() {
    std::vector<StepInfo> v;
    for (const StepSpec *s : {&kWaitShutdown, &kReadCheckpoint, &kWaitFlush, &kSetSyncStandbys, &kPromote,
                              &kSwitchPoint, &kRejoinDecision})
        v.push_back(step_info(*s));
    return v;
}

} // namespace pgfo
