#include "steps/ops.h"

#include <algorithm>
#include <chrono>
#include <memory>
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

} // namespace

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

nlohmann::json node_json(const Node &n) { return {{"id", n.id}, {"host", n.host}, {"port", n.port}}; }

std::optional<Lsn> lsn_or_null(const std::optional<std::string> &s) {
    if (!s) return std::nullopt;
    auto l = parse_lsn(*s);
    if (!l) throw Error(PGFO_ERR_QUERY, "server returned an unparsable LSN '" + *s + "'");
    return l;
}

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

void retry_sleep(const Config &cfg) {
    double s = cfg.poll_interval < 0.05 ? 0.05 : cfg.poll_interval;
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

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
    std::vector<std::string> argv = {pg_ctl_path(node), "stop", "-D", node.data_directory,
                                     "-m", "fast", "-W"};
    auto access = make_node_access(node);
    ctx.log().info("{}: {} (via {})", node_label(node), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
}

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
        std::vector<std::string> argv = {pg_ctl_path(node), "promote", "-D", node.data_directory, "-W"};
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
    auto text = conn.scalar("SELECT pg_read_file($1)", {"pg_wal/" + history_file_name(sp.timeline)},
                            ctx.cfg.command_timeout);
    if (!text) throw Error(PGFO_ERR_QUERY, conn.label() + ": cannot read " + history_file_name(sp.timeline));
    sp.point = switch_point_from(parse_history(*text), parent_tli);
    return sp;
}

} // namespace pgfo

namespace pgfo {
namespace {

std::string bin_path(const Node &node, const char *program) {
    return node.bin_directory.empty() ? std::string(program) : node.bin_directory + "/" + program;
}

bool line_sets(const std::string &line, const std::vector<std::string> &keys) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos) return false;
    for (const auto &k : keys) {
        if (line.compare(i, k.size(), k) != 0) continue;
        size_t j = i + k.size();
        if (j == line.size() || line[j] == ' ' || line[j] == '\t' || line[j] == '=') return true;
    }
    return false;
}

// `text` without the lines that set any of `keys`, then `add`.
std::string replace_settings(const std::string &text, const std::vector<std::string> &keys,
                             const std::string &add) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (!line_sets(line, keys)) out += line + "\n";
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    return out + add;
}

} // namespace

std::string conninfo_value(const std::string &v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    return out + "'";
}

std::string conf_literal(const std::string &v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += c;
        out += c;
    }
    return out + "'";
}

int node_major_version(Context &ctx, const Node &node) {
    auto access = make_node_access(node);
    auto v = access->read_file(node.data_directory + "/PG_VERSION", 0, 0, ctx.cfg.command_timeout);
    if (!v) throw Error(PGFO_ERR_STATE, node_label(node) + ": " + node.data_directory + "/PG_VERSION does not exist");
    try {
        int major = std::stoi(*v);
        if (major >= 10) return major;
    } catch (...) {
    }
    throw Error(PGFO_ERR_STATE, node_label(node) + ": unexpected PG_VERSION '" + *v + "'");
}

void stop_node(Context &ctx, const Node &node) {
    request_fast_stop(ctx, node);
    ShutdownWait w = wait_shutdown(ctx, node, ctx.cfg.shutdown_timeout, WaitFor::Exit);
    if (w.last.host_unreachable)
        throw Error(PGFO_ERR_EXEC, node_label(node) + ": host unreachable while stopping: " + w.last.access_error);
}

void start_node(Context &ctx, const Node &node, double timeout) {
    const std::string log = node.data_directory + "/pgfailover-start.log";
    int t = std::max(1, static_cast<int>(timeout));
    std::vector<std::string> argv = {bin_path(node, "pg_ctl"), "start", "-D", node.data_directory, "-w",
                                     "-t", std::to_string(t), "-l", log};
    auto access = make_node_access(node);
    ctx.log().info("{}: {} (via {})", node_label(node), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, timeout + 10);
    if (!r.ok()) {
        std::string tail;
        try {
            auto text = access->read_file(log, 0, 0, ctx.cfg.command_timeout);
            if (text) tail = text->size() > 2000 ? text->substr(text->size() - 2000) : *text;
        } catch (const Error &) {
        }
        throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r) +
                                       (tail.empty() ? "" : "; server log " + log + " ends with: " + tail));
    }
}

std::string primary_conninfo(const Config &cfg, const Node &primary, const Node &follower) {
    std::string ci = "host=" + conninfo_value(primary.host) + " port=" + std::to_string(primary.port);
    ci += " dbname=" + conninfo_value(cfg.dbname); // slot synchronization (PostgreSQL 17+) needs it
    std::string user = cfg.repl_user.empty() ? cfg.user : cfg.repl_user;
    if (!user.empty()) ci += " user=" + conninfo_value(user);
    std::string passfile = cfg.repl_passfile.empty() ? cfg.passfile : cfg.repl_passfile;
    if (!passfile.empty()) ci += " passfile=" + conninfo_value(passfile);
    std::string sslmode = cfg.repl_sslmode.empty() ? cfg.sslmode : cfg.repl_sslmode;
    if (!sslmode.empty()) ci += " sslmode=" + sslmode;
    ci += " application_name=" + conninfo_value(follower.app_name());
    return ci;
}

std::string slot_name(const Node &follower) { return "pgfailover_node" + std::to_string(follower.id); }

void write_standby_config(Context &ctx, const Node &follower, int major, const std::string &conninfo,
                          const std::string &slot) {
    auto access = make_node_access(follower);
    const double t = ctx.cfg.command_timeout;
    std::string settings = "# written by pgfailover: this node follows a new primary\n"
                           "primary_conninfo = " + conf_literal(conninfo) + "\n"
                           "recovery_target_timeline = 'latest'\n";
    if (!slot.empty()) settings += "primary_slot_name = " + conf_literal(slot) + "\n";
    const std::vector<std::string> keys = {"primary_conninfo", "recovery_target_timeline", "primary_slot_name",
                                           "standby_mode"};
    // One remote call writes them all, the backup first.
    std::vector<std::pair<std::string, std::string>> files;
    const std::string path = follower.data_directory + (major >= 12 ? "/postgresql.auto.conf" : "/recovery.conf");
    std::string old = access->read_file(path, 0, 0, t).value_or("");
    if (!old.empty()) files.emplace_back(path + ".pgfailover.bak", old);
    if (major >= 12) {
        files.emplace_back(path, replace_settings(old, keys, settings));
        files.emplace_back(follower.data_directory + "/standby.signal", "");
    } else {
        files.emplace_back(path, replace_settings(old, keys, "standby_mode = 'on'\n" + settings));
    }
    access->write_files(files, t);
}

std::optional<uint32_t> receiving_timeline(Context &ctx, const Node &node) {
    PgConn c = PgConn::open(node, ctx.cfg);
    return standby_wal(ctx, c).streaming_tli;
}

namespace {

// Serves WAL pages from pieces of kPiece bytes read once each: a scan reads
// every page in order, and over ssh each read is a program run.
class PieceCache {
public:
    static constexpr uint64_t kPiece = 1u << 20;

    PieceCache(Context &ctx, const Node &node) : ctx_(ctx), node_(node), access_(make_node_access(node)) {}

    std::vector<uint8_t> read(const std::string &file, uint64_t offset, uint32_t len) {
        uint64_t base = offset - offset % kPiece;
        if (file != file_ || base != base_ || !loaded_) {
            std::string p = node_.data_directory + "/pg_wal/" + file;
            auto data = access_->read_file(p, base, kPiece, ctx_.cfg.command_timeout);
            if (!data) throw Error(PGFO_ERR_WAL, node_label(node_) + ": WAL segment " + p + " does not exist");
            piece_ = std::move(*data);
            file_ = file;
            base_ = base;
            loaded_ = true;
        }
        uint64_t from = offset - base;
        if (from >= piece_.size()) return {};
        uint64_t n = std::min<uint64_t>(len, piece_.size() - from);
        if (from + len > kPiece) { // a read across pieces: not done by page reads, but be exact
            std::vector<uint8_t> out(piece_.begin() + static_cast<long>(from), piece_.begin() + static_cast<long>(from + n));
            auto rest = read(file, base + kPiece, static_cast<uint32_t>(len - n));
            out.insert(out.end(), rest.begin(), rest.end());
            return out;
        }
        return std::vector<uint8_t>(piece_.begin() + static_cast<long>(from), piece_.begin() + static_cast<long>(from + n));
    }

private:
    Context &ctx_;
    const Node &node_;
    std::unique_ptr<NodeAccess> access_;
    std::string file_, piece_;
    uint64_t base_ = 0;
    bool loaded_ = false;
};

// Regular files directly in `dirs` whose name matches `pattern` (find -name), on the node's host.
std::vector<std::string> find_files(Context &ctx, const Node &node, NodeAccess &access,
                                    const std::vector<std::string> &dirs, const std::string &pattern) {
    std::vector<std::string> argv = {"find"};
    argv.insert(argv.end(), dirs.begin(), dirs.end());
    argv.insert(argv.end(), {"-maxdepth", "1", "-type", "f", "-name", pattern, "-print0"});
    ExecResult r = access.run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(argv, r));
    std::vector<std::string> paths;
    size_t pos = 0;
    while (pos < r.out.size()) {
        size_t end = r.out.find('\0', pos);
        if (end == std::string::npos) end = r.out.size();
        if (end > pos) paths.push_back(r.out.substr(pos, end - pos));
        pos = end + 1;
    }
    return paths;
}

// A segment file (or .partial) in pg_wal, or its archive_status file.
bool is_wal_segment_file(const std::string &name) {
    if (name.size() < 24 || name.find_first_not_of("0123456789ABCDEF") < 24) return false;
    const std::string rest = name.substr(24);
    for (const char *s : {"", ".partial", ".ready", ".done", ".partial.ready", ".partial.done"})
        if (rest == s) return true;
    return false;
}

} // namespace

WalScan scan_node_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from, uint32_t segment_size,
                      uint32_t block_size) {
    if (node.data_directory.empty()) throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set");
    PieceCache cache(ctx, node);
    std::optional<Error> unreachable;
    WalReader reader = [&](const std::string &file, uint64_t offset, uint32_t len) {
        try {
            return cache.read(file, offset, len);
        } catch (const Error &e) {
            if (e.code() != PGFO_ERR_WAL) unreachable.emplace(e); // not the end of WAL: the host or file failed
            throw Error(PGFO_ERR_WAL, e.what());
        }
    };
    WalScan scan = scan_wal_end(reader, timeline, from, segment_size, block_size);
    if (unreachable) throw *unreachable;
    return scan;
}

std::optional<std::vector<HistoryEntry>> node_history(Context &ctx, const Node &node, uint32_t timeline) {
    if (timeline <= 1) return std::vector<HistoryEntry>{};
    if (node.data_directory.empty()) throw Error(PGFO_ERR_CONFIG, node_label(node) + ": data_directory is not set");
    auto text = make_node_access(node)->read_file(node.data_directory + "/pg_wal/" + history_file_name(timeline), 0, 0,
                                                  ctx.cfg.command_timeout);
    if (!text) return std::nullopt;
    return parse_history(*text);
}

std::pair<std::string, int> set_aside_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from,
                                          uint32_t segment_size) {
    auto access = make_node_access(node);
    const double t = ctx.cfg.command_timeout;
    const std::string wal = node.data_directory + "/pg_wal";
    const std::string first = wal_file_name(timeline, from, segment_size);
    std::vector<std::string> move;
    for (const auto &path : find_files(ctx, node, *access, {wal, wal + "/archive_status"}, first.substr(0, 8) + "*")) {
        std::string name = path.substr(path.rfind('/') + 1);
        if (is_wal_segment_file(name) && name.compare(0, 24, first) >= 0) move.push_back(path);
    }
    const std::string dir = node.data_directory + "/pgfailover-wal-" + first;
    if (move.empty()) return {dir, 0};
    std::vector<std::string> mk = {"mkdir", "-p", dir + "/archive_status"};
    ExecResult m = access->run(mk, t);
    if (!m.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(mk, m));
    for (const auto &path : move) {
        bool status = path.find("/archive_status/") != std::string::npos;
        std::vector<std::string> mv = {"mv", "--", path, status ? dir + "/archive_status/" : dir + "/"};
        ExecResult v = access->run(mv, t);
        if (!v.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + exec_failure(mv, v));
    }
    ctx.log().info("{}: {} WAL file(s) from {} on moved to {}", node_label(node), move.size(), first, dir);
    return {dir, static_cast<int>(move.size())};
}

std::vector<std::string> streaming_standbys(Context &ctx, PgConn &conn) {
    std::vector<std::string> names;
    for (const auto &row : conn.query("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                                      {}, ctx.cfg.command_timeout))
        if (row.at(0)) names.push_back(*row.at(0));
    return names;
}

Lsn wait_streaming(Context &ctx, PgConn &conn, const Node &follower, const std::string &application_name,
                   uint32_t timeline, double timeout) {
    Stopwatch sw;
    std::optional<Lsn> target;
    std::optional<Lsn> first_replay; // the follower's replay position when first caught up
    std::string last_seen = "not streaming";
    for (;;) {
        auto rows = conn.query("SELECT flush_lsn, pg_current_wal_lsn() FROM pg_stat_replication "
                               "WHERE application_name = $1 AND state = 'streaming'",
                               {application_name}, ctx.cfg.command_timeout);
        nlohmann::json distance = nullptr; // bytes the follower's flush is behind the primary
        if (!rows.empty()) {
            auto flush = lsn_or_null(rows[0].at(0));
            auto current = lsn_or_null(rows[0].at(1));
            if (flush && current) distance = *current > *flush ? *current - *flush : 0;
            if (!target) target = current;
            last_seen = "streaming, flushed " + (flush ? format_lsn(*flush) : std::string("nothing")) +
                        ", primary at " + (current ? format_lsn(*current) : std::string("?"));
            if (flush && current && *flush > *current) {
                last_seen += " (the follower reports WAL past the primary's: it diverged)";
            } else if (flush && target && *flush >= *target) {
                // The follower's own view: receiving on our timeline, and replaying it.
                try {
                    PgConn fc = PgConn::open(follower, ctx.cfg);
                    StandbyWal s = standby_wal(ctx, fc);
                    if (!first_replay) first_replay = s.replay;
                    bool replaying = s.replay && (*s.replay >= *target || (first_replay && *s.replay > *first_replay));
                    if (s.streaming_tli && *s.streaming_tli == timeline && replaying) return *flush;
                    if (!s.streaming_tli || *s.streaming_tli != timeline)
                        last_seen += ", but the follower receives on timeline " +
                                     (s.streaming_tli ? std::to_string(*s.streaming_tli) : std::string("(none)"));
                    else
                        last_seen += ", but the follower's replay stands at " +
                                     (s.replay ? format_lsn(*s.replay) : std::string("(none)")) +
                                     " (it receives WAL it cannot replay: its history differs)";
                } catch (const Error &e) {
                    last_seen += ", follower not answering: " + std::string(e.what());
                }
            }
        }
        ctx.progress({{"waiting_for", application_name + " streaming"}, {"status", last_seen},
                      {"lsn_distance", distance}});
        if (sw.seconds() >= timeout)
            throw Error(PGFO_ERR_TIMEOUT, conn.label() + ": '" + application_name + "' does not follow on timeline " +
                                              std::to_string(timeline) + " after " +
                                              std::to_string(static_cast<int>(timeout)) + " s (" + last_seen + ")");
        poll_sleep(ctx.cfg);
    }
}

std::string pcp_program(const Config &c, const std::string &program) {
    return c.pcp_bin_directory.empty() ? program : c.pcp_bin_directory + "/" + program;
}

std::vector<std::string> pcp_argv(const Config &c, const std::string &program, const std::vector<std::string> &args) {
    std::string prog = pcp_program(c, program);
    // The password comes from the PCP passfile through the environment; `env`
    // sets it without a shell.
    std::vector<std::string> argv = {"env"};
    if (!c.pcp_passfile.empty()) argv.push_back("PCPPASSFILE=" + c.pcp_passfile);
    argv.insert(argv.end(), {prog, "-h", c.pcp_host, "-p", std::to_string(c.pcp_port), "-w"});
    if (!c.pcp_user.empty()) argv.insert(argv.end(), {"-U", c.pcp_user});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

bool pcp_attach(Context &ctx, int node_id) {
    const Config &c = ctx.cfg;
    if (c.pcp_host.empty()) return false;
    auto argv = pcp_argv(c, "pcp_attach_node", {"-n", std::to_string(node_id)});
    ctx.log().info("{}", describe_argv(argv));
    ExecResult r = run_local(argv, c.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, exec_failure(argv, r));
    return true;
}

KeptConfig keep_config_files(Context &ctx, const Node &node) {
    // Every *.conf at the top of the data directory: postgresql.conf,
    // postgresql.auto.conf, pg_hba.conf, pg_ident.conf and whatever they include.
    KeptConfig kept;
    auto access = make_node_access(node);
    for (const auto &path : find_files(ctx, node, *access, {node.data_directory}, "*.conf")) {
        auto text = access->read_file(path, 0, 0, ctx.cfg.command_timeout);
        if (text) kept.files.emplace_back(path, *text);
    }
    return kept;
}

void restore_config_files(Context &ctx, const Node &node, const KeptConfig &kept) {
    auto access = make_node_access(node);
    for (const auto &[path, text] : kept.files) access->write_file(path, text, ctx.cfg.command_timeout);
}

void run_pg_rewind(Context &ctx, const Node &target, const Node &source) {
    const Config &c = ctx.cfg;
    const Node &src = source;
    std::string ci = "host=" + conninfo_value(src.host) + " port=" + std::to_string(src.port) +
                     " dbname=" + conninfo_value(c.dbname);
    if (!c.user.empty()) ci += " user=" + conninfo_value(c.user);
    if (!c.passfile.empty()) ci += " passfile=" + conninfo_value(c.passfile);
    if (!c.sslmode.empty()) ci += " sslmode=" + c.sslmode;
    std::vector<std::string> argv = {bin_path(target, "pg_rewind"), "--target-pgdata", target.data_directory,
                                     "--source-server", ci, "--progress"};
    // pg_rewind reads the source's timeline from its pg_control, which a
    // fresh promotion updates only at the next checkpoint: make sure of it.
    PgConn(PgConn::open(src, c)).query("CHECKPOINT", {}, c.rewind_timeout);
    auto access = make_node_access(target);
    ctx.log().info("{}: {} (via {})", node_label(target), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, c.rewind_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(target) + ": " + exec_failure(argv, r));
    std::string out = r.out + r.err;
    if (out.find("no rewind required") != std::string::npos)
        throw Error(PGFO_ERR_STATE, node_label(target) + ": pg_rewind found nothing to rewind, but the node's WAL "
                                                         "goes past the switch point; not starting it");
}

} // namespace pgfo
