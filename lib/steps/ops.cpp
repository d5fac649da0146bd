#include "steps/ops.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "pg/history.h"
#include "pg/lsn.h"
#include "pg/walrecord.h"

namespace pgfo {
namespace {

std::string pg_ctl_path(const Node &node) {
    return node.bin_directory.empty() ? std::string("pg_ctl") : node.bin_directory + "/pg_ctl";
}

std::string exec_failure(const std::vector<std::string> &argv, const ExecResult &r) {
    std::string why;
    if (r.start_failed) why = "could not start: " + r.err;
    else if (r.timed_out) why = "timed out";
    else if (r.term_signal) why = "killed by signal " + std::to_string(r.term_signal);
    else why = "exit code " + std::to_string(r.exit_code);
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (!r.start_failed && !err.empty()) why += ": " + err;
    return describe_argv(argv) + " " + why;
}

std::optional<Lsn> lsn_or_null(const std::optional<std::string> &s) {
    if (!s) return std::nullopt;
    auto l = parse_lsn(*s);
    if (!l) throw Error(PGFO_ERR_QUERY, "server returned an unparsable LSN '" + *s + "'");
    return l;
}

} // namespace

const Node &node_by_id(const Config &cfg, int id) {
    auto it = cfg.nodes.find(id);
    if (it == cfg.nodes.end()) {
        std::string known;
        for (auto &[k, _] : cfg.nodes) known += (known.empty() ? "" : ", ") + std::to_string(k);
        throw Error(PGFO_ERR_USAGE, "node " + std::to_string(id) + " is not configured (configured: " +
                                        (known.empty() ? "none" : known) + ")");
    }
    return it->second;
}

void poll_sleep(const Config &cfg) {
    double s = cfg.poll_interval < 0.001 ? 0.001 : cfg.poll_interval;
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

DownCheck check_down(Context &ctx, const Node &node) {
    DownCheck d;
    d.ping = ping_node(node, ctx.cfg);
    if (d.ping != PGFO_PING_NO_RESPONSE) return d; // up, or shutting down: no need to look further
    if (node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) +
                                         ": data_directory is not set; it is needed to check "
                                         "postmaster.pid and pg_control");
    try {
        auto access = make_node_access(node);
        d.pid = access->postmaster_pid(node.data_directory, ctx.cfg.command_timeout);
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_EXEC || node.access != Access::Ssh) throw;
        d.host_unreachable = true;
        d.access_error = e.what();
    }
    return d;
}

ShutdownWait wait_shutdown(Context &ctx, const Node &node, double timeout) {
    ShutdownWait w;
    Stopwatch sw;
    int unreachable_in_a_row = 0;
    for (;;) {
        w.last = check_down(ctx, node);
        ++w.checks;
        w.waited = sw.seconds();
        if (w.last.down()) return w;
        if (w.last.host_unreachable) {
            if (++unreachable_in_a_row >= 2) return w;
        } else {
            unreachable_in_a_row = 0;
        }
        if (ctx.dry_run) return w;
        if (w.waited >= timeout) {
            std::string state = std::string("ping: ") + ping_name(w.last.ping);
            if (w.last.ping == PGFO_PING_NO_RESPONSE)
                state += w.last.pid.state == PidFileState::Alive
                             ? ", postmaster.pid names a live process " + std::to_string(w.last.pid.pid)
                             : "";
            throw Error(PGFO_ERR_TIMEOUT,
                        node_label(node) + " is still up after " + std::to_string(static_cast<int>(timeout)) +
                            " s (" + state + "); not promoting while the old primary may still write "
                            "(raise [timeouts] shutdown, or stop it)");
        }
        poll_sleep(ctx.cfg);
    }
}

CheckpointInfo read_checkpoint(Context &ctx, const Node &node) {
    if (node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set");
    auto access = make_node_access(node);
    const std::string path = node.data_directory + "/global/pg_control";
    auto bytes = access->read_file(path, 0, 0, ctx.cfg.command_timeout);
    if (!bytes)
        throw Error(PGFO_ERR_PG_CONTROL, node_label(node) + ": " + path + " does not exist");
    CheckpointInfo info;
    try {
        info.control = parse_control(reinterpret_cast<const uint8_t *>(bytes->data()), bytes->size());
    } catch (const Error &e) {
        throw Error(e.code(), node_label(node) + ": " + path + ": " + e.what());
    }
    const ControlData &c = info.control;
    if (c.state != PGFO_DB_SHUTDOWNED) {
        info.why_unclean = std::string("pg_control state is '") + db_state_name(c.state) +
                           "', not 'shut down': the old primary did not shut down cleanly (crash or "
                           "immediate stop); it has no shutdown checkpoint to wait for";
        return info;
    }
    WalReader reader = [&](const std::string &file, uint64_t offset, uint32_t len) {
        std::string p = node.data_directory + "/pg_wal/" + file;
        auto data = access->read_file(p, offset, len, ctx.cfg.command_timeout);
        if (!data) throw Error(PGFO_ERR_WAL, node_label(node) + ": WAL segment " + p + " does not exist");
        return std::vector<uint8_t>(data->begin(), data->end());
    };
    WalRecordInfo rec = read_wal_record(reader, c.timeline, c.checkpoint, c.wal_segment_size,
                                        c.wal_block_size);
    if (!is_shutdown_checkpoint(rec)) {
        info.why_unclean = "the record at the latest checkpoint location " + format_lsn(c.checkpoint) +
                           " is not a shutdown checkpoint";
        return info;
    }
    info.clean = true;
    info.end = rec.end;
    return info;
}

void request_fast_stop(Context &ctx, const Node &node) {
    if (node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set");
    std::vector<std::string> argv = {pg_ctl_path(node), "stop", "-D", node.data_directory,
                                     "-m", "fast", "-W"};
    auto access = make_node_access(node);
    ctx.log().info("{}: {} (via {})", node_label(node), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
}

bool in_recovery(PgConn &conn) {
    auto v = conn.scalar("SELECT pg_is_in_recovery()");
    return v && *v == "t";
}

FlushWait wait_flush(Context &ctx, PgConn &conn, Lsn target, double timeout) {
    FlushWait w;
    Stopwatch sw;
    std::optional<Lsn> prev;
    double unchanged_since = 0;
    for (;;) {
        auto rows = conn.query(
            "SELECT pg_last_wal_receive_lsn(), "
            "(SELECT status FROM pg_stat_wal_receiver LIMIT 1)",
            {}, ctx.cfg.command_timeout);
        w.waited = sw.seconds();
        w.last = lsn_or_null(rows.at(0).at(0));
        bool streaming = rows.at(0).at(1).has_value();
        if (w.last && *w.last >= target) {
            w.reached = true;
            return w;
        }
        if (w.last != prev) {
            prev = w.last;
            unchanged_since = w.waited;
        }
        if (!streaming && w.waited - unchanged_since >= 1.0) {
            w.receiver_gone = true;
            return w;
        }
        if (ctx.dry_run || w.waited >= timeout) return w;
        poll_sleep(ctx.cfg);
    }
}

std::string current_sync_standbys(PgConn &conn) {
    return conn.scalar("SELECT current_setting('synchronous_standby_names')").value_or("");
}

void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value) {
    // ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
    conn.query("ALTER SYSTEM SET synchronous_standby_names = " + conn.literal(value), {},
               ctx.cfg.command_timeout);
    conn.query("SELECT pg_reload_conf()", {}, ctx.cfg.command_timeout);
    // The reload is asynchronous; wait until this session sees the new value
    // (a new backend reads the file at start, ours on the next query after SIGHUP).
    Stopwatch sw;
    while (current_sync_standbys(conn) != value) {
        if (sw.seconds() > ctx.cfg.command_timeout)
            throw Error(PGFO_ERR_TIMEOUT, conn.label() +
                                              ": synchronous_standby_names did not take the new value '" +
                                              value + "' after reload");
        poll_sleep(ctx.cfg);
    }
}

PromoteResult promote(Context &ctx, const Node &node, PgConn &conn, double timeout) {
    PromoteResult res;
    Stopwatch sw;
    if (!in_recovery(conn)) {
        res.already_primary = true;
        res.method = "none (already a primary)";
        return res;
    }
    if (conn.server_version() >= 120000) {
        res.method = "pg_promote()";
        int wait_s = std::max(1, static_cast<int>(timeout));
        auto ok = conn.scalar("SELECT pg_promote(true, $1::int)", {std::to_string(wait_s)}, timeout + 5);
        if (!ok || *ok != "t")
            throw Error(PGFO_ERR_TIMEOUT, node_label(node) + ": pg_promote() did not finish within " +
                                              std::to_string(wait_s) + " s");
    } else {
        res.method = "pg_ctl promote";
        if (node.data_directory.empty())
            throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is needed for pg_ctl promote");
        std::vector<std::string> argv = {pg_ctl_path(node), "promote", "-D", node.data_directory, "-W"};
        auto access = make_node_access(node);
        ExecResult r = access->run(argv, ctx.cfg.command_timeout);
        if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
    }
    // Out of recovery and accepting a write. The write check commits locally
    // only, so that it proves writability without waiting on synchronous standbys.
    for (;;) {
        if (!in_recovery(conn)) {
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
    auto text = conn.scalar("SELECT pg_read_file($1)", {"pg_wal/" + history_file_name(sp.timeline)},
                            ctx.cfg.command_timeout);
    if (!text) throw Error(PGFO_ERR_QUERY, conn.label() + ": cannot read " + history_file_name(sp.timeline));
    sp.point = switch_point_from(parse_history(*text), parent_tli);
    return sp;
}

} // namespace pgfo
