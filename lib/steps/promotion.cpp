#include "steps/promotion.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "pg/history.h"
#include "pg/lsn.h"

namespace pgfo {

bool in_recovery(PgConn &conn, double timeout) {
    auto v = conn.scalar("SELECT pg_is_in_recovery()", {}, timeout);
    return v && *v == "t";
}

const char *role_name(NodeRole::Kind k) {
    switch (k) {
    case NodeRole::Primary: return "primary";
    case NodeRole::Standby: return "standby";
    case NodeRole::Down: return "down";
    default: return "unknown";
    }
}

std::vector<NodeRole> node_roles(Context &ctx, const std::set<int> &skip) {
    std::vector<NodeRole> roles;
    for (const auto &[id, n] : ctx.cfg.nodes) {
        NodeRole r;
        r.node = &n;
        if (skip.count(id)) {
            r.detail = "not asked";
            roles.push_back(std::move(r));
            continue;
        }
        pgfo_ping_t ping = ping_node(n, ctx.cfg);
        if (ping == PGFO_PING_NO_RESPONSE) {
            r.kind = NodeRole::Down;
        } else if (ping != PGFO_PING_OK) {
            r.detail = ping_name(ping);
        } else {
            try {
                PgConn c = PgConn::open(n, ctx.cfg);
                r.kind = in_recovery(c, ctx.cfg.command_timeout) ? NodeRole::Standby : NodeRole::Primary;
            } catch (const Error &e) {
                r.detail = e.what();
                r.error = e.code();
            }
        }
        roles.push_back(std::move(r));
    }
    return roles;
}

std::string describe_roles(const std::vector<NodeRole> &roles) {
    std::string s;
    for (const auto &r : roles) {
        if (!s.empty()) s += ", ";
        s += node_label(*r.node) + " " + role_name(r.kind);
        if (!r.detail.empty()) s += " (" + r.detail + ")";
    }
    return s;
}

std::optional<Lsn> StandbyWal::position() const {
    if (receive && replay) return std::max(*receive, *replay);
    return receive ? receive : replay;
}

StandbyWal standby_wal(Context &ctx, PgConn &conn, double timeout) {
    // The receive position is what the walreceiver flushed since it
    // started. A standby restarted while its primary was down has none,
    // yet replays what it had flushed before: WAL it replayed is on its
    // disk too, so the larger of the two counts.
    auto rows = conn.query("SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), "
                           "(SELECT status FROM pg_stat_wal_receiver LIMIT 1), "
                           "(SELECT GREATEST(receive_start_tli, received_tli) FROM pg_stat_wal_receiver "
                           "WHERE status = 'streaming' LIMIT 1)",
                           {}, timeout > 0 ? timeout : ctx.cfg.command_timeout);
    StandbyWal w;
    w.receive = lsn_or_null(rows.at(0).at(0));
    w.replay = lsn_or_null(rows.at(0).at(1));
    w.receiver = rows.at(0).at(2).has_value();
    if (const auto &tli = rows.at(0).at(3)) {
        try {
            w.streaming_tli = static_cast<uint32_t>(std::stoul(*tli));
        } catch (const std::exception &) {
            throw Error(PGFO_ERR_QUERY, conn.label() + ": unparsable timeline '" + *tli + "' in pg_stat_wal_receiver");
        }
    }
    return w;
}

FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout) {
    FlushWait w;
    Stopwatch sw;
    std::optional<Lsn> prev;
    double unchanged_since = 0;
    for (;;) {
        // a candidate that stops answering costs the catch-up wait, not a
        // whole command timeout on top of it
        StandbyWal s = standby_wal(ctx, conn, std::min(ctx.cfg.command_timeout, std::max(1.0, timeout - sw.seconds())));
        w.waited = sw.seconds();
        w.last = s.position();
        if (w.last && *w.last >= target) {
            w.reached = true;
            return w;
        }
        if (w.last != prev) {
            prev = w.last;
            unchanged_since = w.waited;
        }
        if (!s.receiver && w.waited - unchanged_since >= 1.0) {
            w.receiver_gone = true;
            return w;
        }
        if (ctx.dry_run || w.waited >= timeout) return w;
        ctx.progress({{"waiting_for", "candidate flush"}, {"target", format_lsn(target)},
                      {"lsn_distance", w.last ? nlohmann::json(target - *w.last) : nlohmann::json(nullptr)}});
        poll_sleep(ctx.cfg);
    }
}


PromoteResult promote(Context &ctx, const Node &node, PgConn &conn, double timeout, bool *requested) {
    PromoteResult res;
    Stopwatch sw;
    if (!in_recovery(conn, ctx.cfg.command_timeout)) {
        res.already_primary = true;
        res.method = "none (already a primary)";
        return res;
    }
    // Ask for promotion, and ask again every 100 ms until recovery has ended.
    // One request can be lost in a race inside the standby's startup process
    // (PostgreSQL 15 measured here): the signal's latch wake-up is consumed
    // by the wait for streamed WAL, which then finds the walreceiver gone and
    // sleeps a full wal_retrieve_retry_interval (5 s by default) before it
    // looks at the promotion request. A repeated request wakes it; once
    // recovery has ended a repeat only fails harmlessly.
    const bool sql_promote = conn.server_version() >= 120000;
    res.method = sql_promote ? "pg_promote()" : "pg_ctl promote";
    if (!sql_promote && node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is needed for pg_ctl promote");
    auto request = [&](bool first) {
        if (sql_promote) {
            try {
                conn.query("SELECT pg_promote(false)", {}, ctx.cfg.command_timeout);
            } catch (const Error &e) {
                if (first || e.code() != PGFO_ERR_QUERY) throw; // later: "recovery is not in progress"
            }
            return;
        }
        std::vector<std::string> argv = {bin_path(node, "pg_ctl"), "promote", "-D", node.data_directory, "-W"};
        ExecResult r = make_node_access(node)->run(argv, ctx.cfg.command_timeout);
        if (first && !r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
    };
    request(true);
    if (requested) *requested = true;
    double last_request = sw.seconds();
    int requests = 1;
    while (in_recovery(conn, ctx.cfg.command_timeout)) {
        if (sw.seconds() > timeout)
            throw Error(PGFO_ERR_TIMEOUT, node_label(node) + ": still in recovery " +
                                              std::to_string(static_cast<int>(timeout)) + " s after " + res.method +
                                              " (requested " + std::to_string(requests) + " times)");
        poll_sleep(ctx.cfg);
        if (sw.seconds() - last_request >= 0.1) {
            request(false);
            last_request = sw.seconds();
            ++requests;
        }
    }
    if (requests > 1) ctx.log().debug("{}: promotion requested {} times", node_label(node), requests);
    // Out of recovery and accepting a write. The write check commits locally
    // only, so that it proves writability without waiting on synchronous standbys.
    for (;;) {
        if (!in_recovery(conn, ctx.cfg.command_timeout)) {
            try {
                conn.query("SET synchronous_commit TO local", {}, ctx.cfg.command_timeout);
                conn.query("SELECT txid_current()", {}, ctx.cfg.command_timeout);
                conn.query("RESET synchronous_commit", {}, ctx.cfg.command_timeout);
                break;
            } catch (const Error &e) {
                if (e.code() != PGFO_ERR_QUERY) throw;
            }
        }
        if (sw.seconds() > timeout)
            throw Error(PGFO_ERR_TIMEOUT, node_label(node) + ": still not accepting writes " +
                                              std::to_string(static_cast<int>(timeout)) + " s after promotion");
        poll_sleep(ctx.cfg);
    }
    res.seconds = sw.seconds();
    // A checkpoint records the new timeline in pg_control, where pg_rewind
    // reads it. It is requested on a connection of its own and not waited
    // for: the checkpointer finishes it whatever happens to that session,
    // while pgpool holds every client until this hook returns, and a
    // checkpoint after a busy period can take seconds.
    PgConn(PgConn::open(node, ctx.cfg)).send_only("CHECKPOINT");
    ctx.log().info("{}: CHECKPOINT requested (the checkpointer completes it in the background)",
                   node_label(node));
    return res;
}

uint32_t current_timeline(Context &ctx, PgConn &conn) {
    // The timeline WAL is written on now (pg_control's checkpoint timeline
    // lags until the first checkpoint after promotion). Primary only.
    auto name = conn.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())", {}, ctx.cfg.command_timeout);
    if (!name || name->size() != 24 || name->find_first_not_of("0123456789ABCDEF") != std::string::npos)
        throw Error(PGFO_ERR_QUERY, conn.label() + ": unexpected WAL file name '" + name.value_or("") + "'");
    return static_cast<uint32_t>(std::stoul(name->substr(0, 8), nullptr, 16));
}

SwitchPoint switch_point(Context &ctx, PgConn &conn, uint32_t parent_tli) {
    SwitchPoint sp;
    sp.timeline = current_timeline(ctx, conn);
    if (sp.timeline <= 1) return sp;
    auto history = server_history(conn, sp.timeline, ctx.cfg.command_timeout);
    if (!history) throw Error(PGFO_ERR_QUERY, conn.label() + ": cannot read " + history_file_name(sp.timeline));
    sp.point = switch_point_from(*history, parent_tli);
    return sp;
}

std::optional<std::vector<HistoryEntry>> server_history(PgConn &conn, uint32_t timeline, double timeout) {
    if (timeline <= 1) return std::vector<HistoryEntry>{};
    auto text = conn.scalar("SELECT pg_read_file($1)", {"pg_wal/" + history_file_name(timeline)}, timeout);
    if (!text) return std::nullopt;
    return parse_history(*text);
}

} // namespace pgfo
