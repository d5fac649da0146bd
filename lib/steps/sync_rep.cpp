#include "steps/sync_rep.h"

#include "config/sync_names.h"
#include "core/error.h"
#include "steps/events.h"
#include "steps/promotion.h"

namespace pgfo {

std::string current_sync_standbys(PgConn &conn, double timeout) {
    return conn.scalar("SELECT current_setting('synchronous_standby_names')", {}, timeout).value_or("");
}

void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value) {
    // ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
    conn.query("ALTER SYSTEM SET synchronous_standby_names = " + conn.literal(value), {},
               ctx.cfg.command_timeout);
    conn.query("SELECT pg_reload_conf()", {}, ctx.cfg.command_timeout);
    // The reload is asynchronous; wait until this session sees the new value
    // (a new backend reads the file at start, ours on the next query after SIGHUP).
    Stopwatch sw;
    while (current_sync_standbys(conn, ctx.cfg.command_timeout) != value) {
        if (sw.seconds() > ctx.cfg.command_timeout)
            throw Error(PGFO_ERR_TIMEOUT, conn.label() +
                                              ": synchronous_standby_names did not take the new value '" +
                                              value + "' after reload");
        poll_sleep(ctx.cfg);
    }
}


std::vector<std::string> streaming_standbys(Context &ctx, PgConn &conn) {
    std::vector<std::string> names;
    for (const auto &row : conn.query("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                                      {}, ctx.cfg.command_timeout))
        if (row.at(0)) names.push_back(*row.at(0));
    return names;
}

std::string change_sync_standbys(Context &ctx, PgConn &conn, const char *step, const std::string &before,
                                 const std::string &after, nlohmann::json nodes, const char *severity) {
    set_sync_standbys(ctx, conn, after);
    ctx.emit(ev::kSyncChanged, step, severity ? severity : after.empty() ? "warning" : "info",
             {{"nodes", std::move(nodes)}, {"before", before}, {"after", after}});
    return "synchronous_standby_names '" + before + "' -> '" + after + "'";
}

std::optional<std::string> repaired_sync_names(const Config &cfg, const std::string &current,
                                               const std::vector<std::string> &remaining) {
    switch (cfg.sync_policy) {
    case SyncPolicy::Keep: return std::nullopt;
    case SyncPolicy::Async: return std::string();
    case SyncPolicy::Adapt: break;
    }
    return restrict_sync_names(current, remaining);
}

std::vector<std::string> available_standbys(Context &ctx, PgConn &conn, const std::set<int> &excluded,
                                            const std::string &excluded_name) {
    std::vector<std::string> names;
    for (const auto &r : node_roles(ctx, excluded))
        if (r.kind == NodeRole::Standby) names.push_back(r.node->app_name());
    for (const auto &name : streaming_standbys(ctx, conn))
        if (name != excluded_name) names.push_back(name);
    return names;
}

} // namespace pgfo
