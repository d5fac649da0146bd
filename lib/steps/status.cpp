// pgfailover status and check: what every node looks like now, and what
// would stop a failover from working, each problem with what to fix.
#include "steps/status.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <optional>
#include <set>

#include "core/error.h"
#include "pg/lsn.h"
#include "config/sync_names.h"
#include "config/pgpool_conf.h"
#include "steps/ops.h"
#include "steps/promotion.h"
#include "steps/sync_rep.h"
#include "steps/rejoin.h"
#include "steps/runner.h"
#include "steps/slots.h"

namespace pgfo {
namespace {

using nlohmann::json;

std::optional<Lsn> lsn_of(const std::optional<std::string> &s) {
    if (!s) return std::nullopt;
    return parse_lsn(*s);
}

json lsn_json(const std::optional<Lsn> &l) { return l ? json(format_lsn(*l)) : json(nullptr); }

// The primary's archiver: a stop keeps the postmaster up until every .ready
// segment is archived (or given up on), after the shutdown checkpoint.
json archiver_status(Context &ctx, PgConn &c) {
    json a;
    try {
        auto r = c.query("SELECT current_setting('archive_mode'), archived_count, failed_count, last_failed_wal, "
                         "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) "
                         "FROM pg_stat_archiver",
                         {}, ctx.cfg.command_timeout);
        a["archive_mode"] = r.at(0).at(0).value_or("");
        a["archived_count"] = std::stoll(r.at(0).at(1).value_or("0"));
        a["failed_count"] = std::stoll(r.at(0).at(2).value_or("0"));
        a["last_failed_wal"] = r.at(0).at(3) ? json(*r.at(0).at(3)) : json(nullptr);
        a["failing"] = r.at(0).at(4).value_or("f") == "t";
        a["ready"] = nullptr; // PostgreSQL 11 has no pg_ls_archive_statusdir()
        if (c.server_version() >= 120000)
            a["ready"] = std::stoll(c.scalar("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
                                             {}, ctx.cfg.command_timeout)
                                        .value_or("0"));
    } catch (const std::exception &e) {
        a["error"] = e.what();
    }
    return a;
}

// One node's view: reachability, role, positions; pg_control when readable.
json node_status(Context &ctx, const Node &n, std::optional<PgConn> &conn) {
    json s = node_json(n);
    s["application_name"] = n.app_name();
    pgfo_ping_t ping = ping_node(n, ctx.cfg);
    s["ping"] = ping_name(ping);
    s["reachable"] = ping == PGFO_PING_OK;
    s["role"] = "unknown";
    if (ping == PGFO_PING_OK) {
        try {
            conn.emplace(PgConn::open(n, ctx.cfg));
            bool standby = in_recovery(*conn, ctx.cfg.command_timeout);
            s["role"] = standby ? "standby" : "primary";
            s["server_version"] = conn->server_version();
            if (standby) {
                auto r = conn->query("SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), "
                                     "(SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1), "
                                     "(SELECT status FROM pg_stat_wal_receiver LIMIT 1), "
                                     "extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
                                     {}, ctx.cfg.command_timeout);
                s["receive_lsn"] = lsn_json(lsn_of(r.at(0).at(0)));
                s["replay_lsn"] = lsn_json(lsn_of(r.at(0).at(1)));
                if (r.at(0).at(2)) s["timeline"] = std::stoul(*r.at(0).at(2));
                s["wal_receiver"] = r.at(0).at(3).value_or("stopped");
                if (r.at(0).at(4)) s["last_replay_age_s"] = std::stod(*r.at(0).at(4));
            } else {
                s["current_lsn"] = lsn_json(lsn_of(conn->scalar("SELECT pg_current_wal_lsn()", {}, ctx.cfg.command_timeout)));
                s["timeline"] = current_timeline(ctx, *conn);
                s["synchronous_standby_names"] = current_sync_standbys(*conn, ctx.cfg.command_timeout);
                s["archiver"] = archiver_status(ctx, *conn);
            }
            s["failover_slots"] = slots_status(ctx, *conn);
        } catch (const Error &e) {
            s["error"] = e.what();
            conn.reset();
        }
    }
    if (!n.data_directory.empty()) {
        try {
            auto access = make_node_access(n);
            auto bytes = access->read_file(n.data_directory + "/global/pg_control", 0, 0, ctx.cfg.command_timeout);
            if (bytes) {
                ControlData c = parse_control(reinterpret_cast<const uint8_t *>(bytes->data()), bytes->size());
                s["pg_control"] = {{"state", db_state_name(c.state)},
                                   {"checkpoint", format_lsn(c.checkpoint)},
                                   {"timeline", c.timeline}};
            }
        } catch (const Error &e) {
            s["pg_control_error"] = e.what();
        }
    }
    return s;
}

// What the archiver and lagging walsenders of the primary will cost a
// failover, for check: facts (notes), and a failing archive_command as a problem.
void archiver_costs(const Config &cfg, const Node &primary, const json &arch, const json &nodes, json &notes,
                    std::vector<std::pair<std::string, std::string>> &problems) {
    const std::string who = node_label(primary);
    if (arch.contains("error")) {
        notes.push_back({{"node", who}, {"fact", "archiver state unknown: " + arch["error"].get<std::string>()},
                         {"cost", "none known"}});
        return;
    }
    if (arch.value("archive_mode", "off") != "off") {
        if (arch.value("failing", false))
            problems.emplace_back("archive_command is failing (last failed: " +
                                      arch["last_failed_wal"].dump() + ", " +
                                      std::to_string(arch.value("failed_count", 0)) + " failures)",
                                  "fix archive_command: at a stop the postmaster tries every waiting segment "
                                  "again before it exits, and the old primary rejoins only after that");
        if (arch["ready"].is_number() && arch["ready"].get<long long>() > 0)
            notes.push_back(
                {{"node", who},
                 {"fact", std::to_string(arch["ready"].get<long long>()) + " WAL segment(s) wait for the archiver"},
                 {"cost", "a stop keeps the postmaster up until they are archived; the failover does not wait for "
                          "that (it promotes on the shutdown checkpoint), the old primary's rejoin does, up to "
                          "[timeouts] postmaster_exit = " +
                              std::to_string(static_cast<int>(cfg.postmaster_exit_timeout)) + " s"}});
    }
    for (const auto &n : nodes) {
        if (n.value("role", "") != "standby") continue;
        long long lag = n.value("lag_bytes", 0LL);
        if (n.value("replication_state", "") == "streaming" && lag < 16LL * 1024 * 1024) continue;
        notes.push_back(
            {{"node", n.value("application_name", "?")},
             {"fact", "standby " + n.value("application_name", std::string("?")) + " is " +
                          (n.value("replication_state", "") == "streaming"
                               ? std::to_string(lag) + " bytes behind in replay"
                               : n.value("replication_state", std::string("not connected")))},
             {"cost", "at a stop its walsender holds the old postmaster up to wal_sender_timeout; as the candidate "
                      "it must flush up to the shutdown checkpoint first, up to [timeouts] catchup = " +
                          std::to_string(static_cast<int>(cfg.catchup_timeout)) + " s"}});
    }
}

// Fill in lag and sync state of standbys from the primary's pg_stat_replication.
void add_replication(Context &ctx, PgConn &primary, json &nodes) {
    auto rows = primary.query("SELECT application_name, state, sync_state, pg_current_wal_lsn() - replay_lsn, "
                              "extract(epoch FROM replay_lag), flush_lsn FROM pg_stat_replication",
                              {}, ctx.cfg.command_timeout);
    for (auto &n : nodes) {
        if (n["role"] != "standby") continue;
        for (const auto &r : rows) {
            if (!r.at(0) || *r.at(0) != n["application_name"].get<std::string>()) continue;
            n["replication_state"] = r.at(1).value_or("");
            n["sync_state"] = r.at(2).value_or("");
            if (r.at(3)) n["lag_bytes"] = std::stoll(*r.at(3));
            n["lag_s"] = r.at(4) ? json(std::stod(*r.at(4))) : json(0.0);
        }
        if (!n.contains("replication_state")) n["replication_state"] = "not connected to the primary";
    }
}

struct Problems {
    json list = json::array();
    void add(const std::string &node, const std::string &problem, const std::string &fix) {
        list.push_back({{"node", node}, {"problem", problem}, {"fix", fix}});
    }
};

} // namespace

const StepSpec kStatusStep = {"status", "look at every configured node", StepTimeout::None, kDryRunRuns, {}};
const StepSpec kCheckStep = {"check", "preflight: nodes, access, settings, consistency", StepTimeout::None,
                             kDryRunRuns, {}};

void cluster_status(Context &ctx) {
    Runner run(ctx, "status", json::object());
    json nodes = json::array();
    std::vector<std::optional<PgConn>> conns;
    run.step(kStatusStep, [&](const StepCall &) {
        int primaries = 0;
        for (const auto &[id, n] : ctx.cfg.nodes) {
            conns.emplace_back();
            ctx.progress({{"waiting_for", node_label(n)}});
            nodes.push_back(node_status(ctx, n, conns.back()));
            if (nodes.back()["role"] == "primary") ++primaries;
        }
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i]["role"] == "primary" && conns[i]) add_replication(ctx, *conns[i], nodes);
        return StepResult::done(std::to_string(nodes.size()) + " nodes, " + std::to_string(primaries) + " primary");
    });
    run.report()["cluster"] = nodes;
    ctx.set_result(run.finish(PGFO_OK, "status of " + std::to_string(nodes.size()) + " nodes", {{"nodes", nodes}}));
}

void cluster_check(Context &ctx) {
    Runner run(ctx, "check", json::object());
    Problems p;
    json notes = json::array(); // facts that cost a failover time, not problems
    const Config &cfg = ctx.cfg;
    run.step(kCheckStep, [&](const StepCall &) {
        if (cfg.nodes.size() < 2)
            p.add("-", std::to_string(cfg.nodes.size()) + " node(s) configured",
                  "configure every pgpool backend as [node.N], or set [general] pgpool_conf");
        // the configuration file itself
        if (!cfg.path.empty()) {
            struct stat st {};
            if (::stat(cfg.path.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
                p.add("-", cfg.path + " is readable by every user (mode " +
                               std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                               std::to_string(st.st_mode & 7) + ")",
                      "chmod 0640 " + cfg.path + " (owner root or postgres, group postgres)");
        }
        if (!cfg.log_file.empty()) {
            // appending needs the file writable, or its directory when it does not exist yet
            std::string dir = cfg.log_file.substr(0, cfg.log_file.rfind('/'));
            bool ok = ::access(cfg.log_file.c_str(), W_OK) == 0 ||
                      (errno == ENOENT && ::access(dir.empty() ? "/" : dir.c_str(), W_OK | X_OK) == 0);
            if (!ok)
                p.add("-", "log_file " + cfg.log_file + " cannot be written (" + std::strerror(errno) +
                               "): runs log to standard error only",
                      "create " + (dir.empty() ? std::string("/") : dir) +
                          " writable by the user pgpool runs the hook as, or change [general] log_file");
        }
        if (!cfg.fence_command.empty()) {
            // run by pgfailover itself, on this host, when a failover needs it
            const std::string &f = cfg.fence_command[0];
            struct stat st {};
            if (::stat(f.c_str(), &st) != 0)
                p.add("-", "[fencing] command " + f + " does not exist (" + std::strerror(errno) + ")",
                      "install the fence program there, or fix [fencing] command");
            else if (!S_ISREG(st.st_mode) || ::access(f.c_str(), X_OK) != 0)
                p.add("-", "[fencing] command " + f + " is not an executable file for this user",
                      "chmod 0755 " + f + " (owner root), or fix [fencing] command");
        } else if (cfg.on_unclean == OnUnclean::Fence) {
            p.add("-", "on_unclean = fence but no [fencing] command", "set [fencing] command");
        }
        int primaries = 0;
        const Node *primary = nullptr;
        std::set<std::string> names;
        for (const auto &[id, n] : cfg.nodes) {
            const std::string who = node_label(n);
            names.insert(n.app_name());
            ctx.progress({{"waiting_for", who}});
            pgfo_ping_t ping = ping_node(n, cfg);
            if (ping != PGFO_PING_OK) {
                p.add(who, std::string("libpq: ") + ping_name(ping),
                      "start the server, or fix host/port of [node." + std::to_string(id) + "]");
            } else {
                try {
                    PgConn c = PgConn::open(n, cfg);
                    if (!in_recovery(c, ctx.cfg.command_timeout)) {
                        ++primaries;
                        primary = &n;
                    }
                    auto hints = c.scalar("SELECT current_setting('wal_log_hints')::bool "
                                          "OR current_setting('data_checksums')::bool",
                                          {}, ctx.cfg.command_timeout);
                    if (!hints || *hints != "t")
                        p.add(who, "wal_log_hints is off and data checksums are off: pg_rewind cannot run on it",
                              "ALTER SYSTEM SET wal_log_hints = on; then restart the node");
                    auto super = c.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", {},
                                          ctx.cfg.command_timeout);
                    if (!super || *super != "t")
                        p.add(who, "the [connection] user is not a superuser",
                              "use a superuser (pg_promote, ALTER SYSTEM, pg_read_file need it)");
                } catch (const Error &e) {
                    p.add(who, e.what(), "check [connection] user, dbname, passfile and pg_hba.conf");
                }
            }
            if (n.data_directory.empty()) {
                p.add(who, "data_directory is not set", "set data_directory in [node." + std::to_string(id) + "]");
            } else {
                try {
                    auto access = make_node_access(n);
                    auto v = access->read_file(n.data_directory + "/PG_VERSION", 0, 0, cfg.command_timeout);
                    if (!v)
                        p.add(who, n.data_directory + " is not a data directory (no PG_VERSION)",
                              "fix data_directory of [node." + std::to_string(id) + "]");
                    else if (!access->read_file(n.data_directory + "/global/pg_control", 0, 8, cfg.command_timeout))
                        p.add(who, "cannot read " + n.data_directory + "/global/pg_control",
                              "run pgfailover as the user that owns the data directory");
                    // what the remote scripts and the stop/start commands need, over the same path
                    const std::string pg_ctl = bin_path(n, "pg_ctl");
                    for (const auto &piece : access->missing_programs(pg_ctl, cfg.command_timeout)) {
                        bool is_pg_ctl = piece.compare(0, pg_ctl.size() + 1, pg_ctl + " ") == 0;
                        p.add(who, "missing on the node (" + access->describe() + "): " + piece,
                              is_pg_ctl ? "set bin_directory of [node." + std::to_string(id) + "] to where pg_ctl lives"
                                        : std::string("install it on the node (a POSIX sh and coreutils)"));
                    }
                } catch (const Error &e) {
                    p.add(who, std::string(n.access == Access::Ssh ? "ssh: " : "") + e.what(),
                          n.access == Access::Ssh ? "check ssh_user, ssh_port, ssh_options and the key"
                                                  : "check data_directory and file permissions");
                }
            }
        }
        if (primaries == 0) p.add("-", "no running primary", "start the primary, or fail over");
        if (primaries > 1) p.add("-", std::to_string(primaries) + " primaries", "stop all but one primary NOW");
        if (primary) {
            PgConn c = PgConn::open(*primary, cfg);
            std::string sync = current_sync_standbys(c, ctx.cfg.command_timeout);
            for (const auto &name : sync_names_listed(sync))
                if (!names.count(name))
                    p.add(node_label(*primary),
                          "synchronous_standby_names names '" + name + "', which is no configured node's application_name",
                          "set application_name of the node, or fix synchronous_standby_names");
            auto streaming = streaming_standbys(ctx, c);
            for (const auto &[id, n] : cfg.nodes) {
                if (&n == primary) continue;
                bool found = false;
                for (const auto &s : streaming) found = found || s == n.app_name();
                if (!found)
                    p.add(node_label(n), "not streaming from the primary as '" + n.app_name() + "'",
                          "start it as a standby, or set its application_name to what its primary_conninfo uses");
            }
            // the replication connection followers will use
            std::string ci = primary_conninfo(cfg, *primary, *primary) + " replication=true connect_timeout=" +
                             std::to_string(static_cast<int>(cfg.connect_timeout < 1 ? 1 : cfg.connect_timeout));
            PGconn *rc = PQconnectdb(ci.c_str());
            if (PQstatus(rc) != CONNECTION_OK)
                p.add(node_label(*primary), std::string("replication connection refused: ") + PQerrorMessage(rc),
                      "allow the [replication] user in pg_hba.conf (replication database) and give it REPLICATION");
            PQfinish(rc);
            // what the archiver and lagging walsenders will cost a failover
            json nodes = json::array();
            for (const auto &[id, n] : cfg.nodes) {
                std::optional<PgConn> nc;
                nodes.push_back(node_status(ctx, n, nc));
            }
            add_replication(ctx, c, nodes);
            std::vector<std::pair<std::string, std::string>> found;
            archiver_costs(cfg, *primary, archiver_status(ctx, c), nodes, notes, found);
            for (const auto &[problem, fix] : found) p.add(node_label(*primary), problem, fix);
        }
        try {
            check_slot_failover(ctx, primary, [&](const std::string &node, const std::string &problem,
                                                  const std::string &fix) { p.add(node, problem, fix); });
        } catch (const Error &e) {
            p.add(primary ? node_label(*primary) : "-", std::string("slot failover not checked: ") + e.what(),
                  "check the primary");
        }
        if (!cfg.pgpool_conf.empty()) {
            try {
                auto backends = read_pgpool_backends(cfg.pgpool_conf);
                for (const auto &[id, b] : backends) {
                    auto it = cfg.nodes.find(id);
                    if (it == cfg.nodes.end()) continue;
                    if ((!b.host.empty() && b.host != it->second.host) || (b.port && b.port != it->second.port))
                        p.add(node_label(it->second),
                              "pgpool.conf says backend " + std::to_string(id) + " is " + b.host + ":" +
                                  std::to_string(b.port),
                              "make [node." + std::to_string(id) + "] and pgpool.conf agree");
                }
            } catch (const Error &e) {
                p.add("-", e.what(), "fix [general] pgpool_conf");
            }
        }
        return StepResult::done(std::to_string(p.list.size()) + " problem(s)");
    });
    run.report()["problems"] = p.list;
    run.report()["notes"] = notes;
    for (const auto &n : notes)
        ctx.log().info("note: {}: {}; costs: {}", n["node"].get<std::string>(), n["fact"].get<std::string>(),
                       n["cost"].get<std::string>());
    if (!p.list.empty()) {
        std::string first = p.list[0]["node"].get<std::string>() + ": " + p.list[0]["problem"].get<std::string>();
        ctx.set_result(run.finish(PGFO_ERR_CHECK, std::to_string(p.list.size()) + " problem(s), first: " + first,
                                     {{"problems", p.list}, {"notes", notes}}));
        throw Error(PGFO_ERR_CHECK, std::to_string(p.list.size()) + " problem(s) found");
    }
    ctx.set_result(run.finish(PGFO_OK, "no problems found", {{"problems", p.list}, {"notes", notes}}));
}

} // namespace pgfo
