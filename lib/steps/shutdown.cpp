#include "steps/shutdown.h"

#include <memory>

#include "core/error.h"
#include "pg/walrecord.h"

namespace pgfo {

namespace {

ControlData parse_control_file(const Node &node, const std::string &path, const std::string &bytes) {
    try {
        return parse_control(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    } catch (const Error &e) {
        throw Error(e.code(), node_label(node) + ": " + path + ": " + e.what());
    }
}

void require_data_directory(const Node &node, const char *why) {
    if (node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set; it is needed " + why);
}

} // namespace

DownCheck check_down(Context &ctx, const Node &node) {
    DownCheck d;
    d.ping = ping_node(node, ctx.cfg);
    if (d.ping == PGFO_PING_OK) return d; // up and accepting connections: no need to look further
    require_data_directory(node, "to check postmaster.pid and pg_control");
    auto access = make_node_access(node);
    ShutdownProbe probe;
    try {
        // postmaster.pid and pg_control in one call (one remote command over ssh)
        probe = access->probe_shutdown(node.data_directory, ctx.cfg.command_timeout);
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_EXEC) throw; // e.g. not a data directory: no retry helps
        d.access_error = e.what();
        return d;
    }
    d.pid = probe.pid;
    // pg_control matters only while the postmaster still runs (an archiver
    // backlog or walsenders keep it up after the shutdown checkpoint).
    if (d.pid.state != PidFileState::Alive) return d;
    const std::string path = node.data_directory + "/global/pg_control";
    if (!probe.pg_control) {
        d.control_error = path + " does not exist";
        return d;
    }
    try {
        d.control = parse_control_file(node, path, *probe.pg_control);
    } catch (const Error &e) {
        // a read torn by the server rewriting the file fails its CRC: look again
        if (e.code() != PGFO_ERR_PG_CONTROL) throw;
        d.control_error = e.what();
    }
    return d;
}

namespace {

std::string describe_down_check(const DownCheck &d) {
    std::string s = std::string("ping: ") + ping_name(d.ping);
    if (d.ping == PGFO_PING_OK) return s;
    if (!d.access_error.empty()) return s + ", " + d.access_error;
    if (d.pid.state == PidFileState::Gone) return s + ", postmaster.pid gone";
    if (d.pid.state == PidFileState::Stale)
        return s + ", postmaster.pid stale (process " + std::to_string(d.pid.pid) + " is not alive)";
    s += ", postmaster.pid names a live process " + std::to_string(d.pid.pid);
    if (!d.pid.pm_status.empty()) s += " (" + d.pid.pm_status + ")";
    if (d.control) s += std::string(", pg_control: ") + db_state_name(d.control->state);
    else if (!d.control_error.empty()) s += ", pg_control unreadable: " + d.control_error;
    return s;
}

} // namespace

ShutdownWait wait_shutdown(Context &ctx, const Node &node, double timeout, WaitFor until) {
    ShutdownWait w;
    Stopwatch sw;
    double failing_since = -1; // when the current run of failed probes (ping answering nothing) began
    int silent_failures = 0;   // failed probes in that run
    double exit_deadline = -1;       // WaitFor::Exit: set once the shutdown checkpoint is written
    double next_note = 5;
    for (;;) {
        w.last = check_down(ctx, node);
        ++w.checks;
        w.waited = sw.seconds();
        if (w.last.shut_down() && w.shut_down_at < 0) w.shut_down_at = w.waited;
        if (until == WaitFor::Exit ? w.last.exited() : w.last.shut_down()) return w;
        if (!w.last.access_error.empty()) {
            // One failed probe is never a fact (an ssh refused by MaxStartups,
            // a network blip): only failures lasting the window, while the
            // server's port answers nothing either, make the host unreachable.
            ++w.failed_checks;
            if (w.last.ping != PGFO_PING_NO_RESPONSE) {
                failing_since = -1; // the server answers: wait on, up to the timeout
                silent_failures = 0;
            } else if (failing_since < 0) {
                failing_since = w.waited;
            }
            if (w.last.ping == PGFO_PING_NO_RESPONSE) ++silent_failures;
            ctx.log().warn("{}: cannot look at postmaster.pid (ping: {}; failing for {:.1f} s of the {} s allowed): {}",
                           node_label(node), ping_name(w.last.ping), failing_since < 0 ? 0.0 : w.waited - failing_since,
                           ctx.cfg.unreachable_timeout, w.last.access_error);
            if (failing_since >= 0 && w.waited - failing_since >= ctx.cfg.unreachable_timeout && silent_failures >= 2) {
                if (node.access == Access::Ssh) {
                    w.last.host_unreachable = true;
                    return w;
                }
                throw Error(PGFO_ERR_EXEC, node_label(node) + ": cannot check postmaster.pid for " +
                                               std::to_string(static_cast<int>(ctx.cfg.unreachable_timeout)) +
                                               " s: " + w.last.access_error);
            }
        } else {
            failing_since = -1;
            silent_failures = 0;
        }
        if (ctx.dry_run) return w;
        if (until == WaitFor::Exit && w.shut_down_at >= 0 && exit_deadline < 0) {
            exit_deadline = w.waited + ctx.cfg.postmaster_exit_timeout;
            ctx.log().info("{}: shutdown checkpoint written; waiting up to {} s for postmaster {} to exit "
                           "(the archiver or walsenders keep it up)",
                           node_label(node), static_cast<int>(ctx.cfg.postmaster_exit_timeout), w.last.pid.pid);
        }
        if (exit_deadline >= 0) {
            if (w.waited >= exit_deadline)
                throw Error(PGFO_ERR_TIMEOUT,
                            node_label(node) + ": postmaster " + std::to_string(w.last.pid.pid) +
                                " has not exited " + std::to_string(static_cast<int>(ctx.cfg.postmaster_exit_timeout)) +
                                " s after its shutdown checkpoint (" + describe_down_check(w.last) +
                                "); it cannot be started again before it exits (the archiver may have a backlog: "
                                "see pg_wal/archive_status; raise [timeouts] postmaster_exit)");
            if (w.waited >= next_note) {
                ctx.log().info("{}: still waiting for postmaster {} to exit ({:.0f} s)", node_label(node),
                               w.last.pid.pid, w.waited - w.shut_down_at);
                next_note = w.waited + 5;
            }
        } else if (w.waited >= timeout) {
            throw Error(PGFO_ERR_TIMEOUT,
                        node_label(node) + " is still up after " + std::to_string(static_cast<int>(timeout)) +
                            " s (" + describe_down_check(w.last) +
                            "); not promoting while the old primary may still write "
                            "(raise [timeouts] shutdown, or stop it)");
        }
        poll_sleep(ctx.cfg);
    }
}

ControlData read_control(Context &ctx, const Node &node) {
    require_data_directory(node, "to read pg_control");
    auto access = make_node_access(node);
    const std::string path = node.data_directory + "/global/pg_control";
    auto bytes = access->read_file(path, 0, 0, ctx.cfg.command_timeout);
    if (!bytes) throw Error(PGFO_ERR_PG_CONTROL, node_label(node) + ": " + path + " does not exist");
    return parse_control_file(node, path, *bytes);
}

WalRecordInfo read_checkpoint_record(Context &ctx, const Node &node, const ControlData &c) {
    auto access = make_node_access(node);
    WalReader reader = [&](const std::string &file, uint64_t offset, uint32_t len) {
        std::string p = node.data_directory + "/pg_wal/" + file;
        auto data = access->read_file(p, offset, len, ctx.cfg.command_timeout);
        if (!data) throw Error(PGFO_ERR_WAL, node_label(node) + ": WAL segment " + p + " does not exist");
        return std::vector<uint8_t>(data->begin(), data->end());
    };
    WalRecordInfo rec;
    try {
        rec = read_wal_record(reader, c.timeline, c.checkpoint, c.wal_segment_size, c.wal_block_size);
    } catch (const Error &e) {
        if (e.code() != PGFO_ERR_WAL) throw;
        throw Error(PGFO_ERR_WAL, node_label(node) + ": " + e.what());
    }
    return rec;
}

CheckpointInfo read_checkpoint(Context &ctx, const Node &node) {
    CheckpointInfo info;
    info.control = read_control(ctx, node);
    const ControlData &c = info.control;
    if (c.state != PGFO_DB_SHUTDOWNED) {
        info.why_unclean = std::string("pg_control state is '") + db_state_name(c.state) +
                           "', not 'shut down': the old primary did not shut down cleanly (crash or "
                           "immediate stop); it has no shutdown checkpoint to wait for";
        return info;
    }
    WalRecordInfo rec = read_checkpoint_record(ctx, node, c);
    if (!is_shutdown_checkpoint(rec)) {
        info.why_unclean = "the record at the latest checkpoint location " + format_lsn(c.checkpoint) +
                           " is not a shutdown checkpoint";
        return info;
    }
    info.clean = true;
    info.end = rec.end;
    return info;
}

uint64_t system_identifier(Context &ctx, PgConn &conn) {
    auto v = conn.scalar("SELECT system_identifier FROM pg_control_system()", {}, ctx.cfg.command_timeout);
    try {
        if (v) return std::stoull(*v);
    } catch (const std::exception &) {
    }
    throw Error(PGFO_ERR_QUERY, conn.label() + ": unexpected system identifier '" + v.value_or("NULL") + "'");
}

void check_same_cluster(const Node &node, const ControlData &c, uint64_t theirs, const std::string &what) {
    if (c.system_identifier == theirs) return;
    throw Error(PGFO_ERR_IDENTITY,
                node_label(node) + ": the data directory " + node.data_directory +
                    " belongs to another cluster: its pg_control has system identifier " +
                    std::to_string(c.system_identifier) + ", " + what + " has " + std::to_string(theirs) +
                    "; check data_directory of node " + std::to_string(node.id) +
                    (node.origin.empty() ? std::string() : " (" + node.origin + ")") +
                    " and the node's access (a local path on the wrong host?)");
}

void request_fast_stop(Context &ctx, const Node &node) {
    if (node.data_directory.empty())
        throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set");
    std::vector<std::string> argv = {bin_path(node, "pg_ctl"), "stop", "-D", node.data_directory,
                                     "-m", "fast", "-W"};
    auto access = make_node_access(node);
    ctx.log().info("{}: {} (via {})", node_label(node), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
}


void stop_node(Context &ctx, const Node &node, double timeout) {
    request_fast_stop(ctx, node);
    ShutdownWait w = wait_shutdown(ctx, node, timeout, WaitFor::Exit);
    if (w.last.host_unreachable)
        throw Error(PGFO_ERR_EXEC, node_label(node) + ": host unreachable while stopping: " + w.last.access_error);
}

} // namespace pgfo
