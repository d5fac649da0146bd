// A planned switchover: preflight, then the safe failover (the primary is
// stopped in fast mode), the old primary follows, every other standby
// follows, synchronous replication restored.
#include "steps/switchover.h"

#include "core/error.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/ops.h"
#include "steps/runner.h"

namespace pgfo {
namespace {

using nlohmann::json;

json node_json(const Node &n) { return {{"id", n.id}, {"host", n.host}, {"port", n.port}}; }

std::string app_name(const Node &n) {
    return n.application_name.empty() ? "node" + std::to_string(n.id) : n.application_name;
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

} // namespace

void switchover(Context &ctx, int target) {
    const Node &to = node_by_id(ctx.cfg, target);
    Runner run(ctx, "switchover", {{"target", node_json(to)}});
    json parts = json::array();
    auto keep_part = [&] { parts.push_back(json::parse(ctx.result_json, nullptr, false)); };
    const Node *from = nullptr;
    std::vector<const Node *> others;
    std::string rejoin = "unknown"; // how the old primary rejoined: clean, rewound
    try {
        run.step("preflight", "find the primary; the target must be a standby streaming from it", [&] {
            from = &find_primary(ctx);
            if (from->id == to.id) throw Error(PGFO_ERR_STATE, node_label(to) + " is already the primary");
            PgConn pc = PgConn::open(*from, ctx.cfg);
            auto rows = pc.query("SELECT application_name, pg_current_wal_lsn() - flush_lsn FROM pg_stat_replication "
                                 "WHERE state = 'streaming'",
                                 {}, ctx.cfg.command_timeout);
            bool target_streams = false;
            json lag = json::object();
            for (const auto &r : rows) {
                if (!r.at(0)) continue;
                lag[*r.at(0)] = r.at(1).value_or("?");
                if (*r.at(0) == app_name(to)) target_streams = true;
                for (const auto &[id, n] : ctx.cfg.nodes)
                    if (id != to.id && id != from->id && app_name(n) == *r.at(0)) others.push_back(&n);
            }
            if (!target_streams)
                throw Error(PGFO_ERR_STATE, node_label(to) + " ('" + app_name(to) + "') is not streaming from the primary " +
                                                node_label(*from) + ": not switching over to it");
            return StepResult::done(node_label(*from) + " is the primary; " + node_label(to) + " streams from it",
                                    {{"primary", from->id}, {"lag_bytes", lag}});
        });
        if (ctx.dry_run) {
            ctx.result_json = run.finish(PGFO_OK, "dry run: would switch over from " + node_label(*from) + " to " +
                                                      node_label(to),
                                         {{"from", from->id}, {"to", to.id}});
            return;
        }
        // A switchover stops the primary itself, whatever on_running says for hooks.
        try {
            failover(ctx, from->id, to.id, from->id, OnRunning::Stop);
        } catch (...) {
            keep_part();
            throw;
        }
        keep_part();
        follow_primary(ctx, from->id, to.id);
        keep_part();
        if (parts.back().is_object() && parts.back().contains("verdict"))
            rejoin = parts.back()["verdict"].value("rejoin", "unknown");
        for (const Node *n : others) {
            follow_primary(ctx, n->id, to.id);
            keep_part();
        }
    } catch (const Error &e) {
        run.report()["parts"] = parts;
        ctx.result_json = run.finish(e.code(), e.what(), {{"from", from ? from->id : -1}, {"to", to.id}});
        throw;
    }
    run.report()["parts"] = parts;
    ctx.result_json = run.finish(PGFO_OK,
                                 node_label(to) + " is the primary; " + node_label(*from) +
                                     (rejoin == "clean"     ? " follows it without pg_rewind"
                                      : rejoin == "rewound" ? " follows it after pg_rewind"
                                                            : " follows it (rejoin: " + rejoin + ")") +
                                     (others.empty() ? "" : ", and " + std::to_string(others.size()) + " other standby(s)"),
                                 {{"from", from->id}, {"to", to.id}, {"old_primary_rejoin", rejoin}});
}

} // namespace pgfo
