// Logical replication through a failover: PostgreSQL 17+ failover slots.
#include "steps/slots.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/text.h"
#include "pg/crc32c.h"
#include "remote/exec.h"
#include "steps/ops.h"
#include "steps/promotion.h"
#include "steps/rejoin.h"

namespace pgfo {
namespace {

using nlohmann::json;

json lsn_json(const std::optional<Lsn> &l) { return l ? json(format_lsn(*l)) : json(nullptr); }

// PostgreSQL restricts slot names to these; anything else is not a slot
// directory (and never reaches a path we remove).
bool valid_slot_name(const std::string &s) {
    if (s.empty() || s.size() > 63) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

uint32_t u32_at(const std::string &b, size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
}
uint64_t u64_at(const std::string &b, size_t off) {
    uint64_t v;
    std::memcpy(&v, b.data() + off, 8);
    return v;
}

std::string nul_terminated(const std::string &b, size_t off, size_t max) {
    size_t n = 0;
    while (n < max && b[off + n] != '\0') ++n;
    return b.substr(off, n);
}

std::string setting(PgConn &c, const char *name, double timeout) {
    return c.scalar(std::string("SELECT current_setting('") + name + "', true)", {}, timeout).value_or("");
}

// A program that did not succeed, for a message: its argv and what it said.
std::string run_failed(const std::vector<std::string> &argv, const ExecResult &r) {
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return describe_argv(argv) + " did not succeed" + (err.empty() ? std::string() : ": " + err);
}

bool setting_on(const std::string &v) { return v == "on" || v == "true" || v == "1"; }

// Is dbname given in a primary_conninfo?
bool conninfo_has_dbname(const std::string &ci) {
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(ci.c_str(), &err);
    if (err) PQfreemem(err);
    if (!opts) return false;
    bool found = false;
    for (PQconninfoOption *o = opts; o->keyword; ++o)
        if (std::strcmp(o->keyword, "dbname") == 0 && o->val && *o->val) found = true;
    PQconninfoFree(opts);
    return found;
}

} // namespace

std::string failover_slots_unavailable(const std::string &who, int server_version) {
    return "failover slots need PostgreSQL 17 or later (" + who + " runs " + std::to_string(server_version / 10000) +
           "): logical replication slots do not survive a failover";
}

json LogicalSlot::to_json() const {
    json j = {{"name", name},         {"plugin", plugin},   {"database", database}, {"failover", failover},
              {"synced", synced},     {"temporary", temporary}, {"active", active},
              {"confirmed_flush_lsn", lsn_json(confirmed_flush)}};
    j["invalidation_reason"] = invalidation.empty() ? json(nullptr) : json(invalidation);
    return j;
}

std::vector<LogicalSlot> logical_slots(Context &ctx, PgConn &conn) {
    std::vector<LogicalSlot> out;
    for (const auto &r : conn.query("SELECT slot_name, plugin, database, failover, synced, temporary, active, "
                                    "invalidation_reason, confirmed_flush_lsn FROM pg_replication_slots "
                                    "WHERE slot_type = 'logical' ORDER BY slot_name",
                                    {}, ctx.cfg.command_timeout)) {
        LogicalSlot s;
        s.name = r.at(0).value_or("");
        s.plugin = r.at(1).value_or("");
        s.database = r.at(2).value_or("");
        s.failover = r.at(3).value_or("f") == "t";
        s.synced = r.at(4).value_or("f") == "t";
        s.temporary = r.at(5).value_or("f") == "t";
        s.active = r.at(6).value_or("f") == "t";
        s.invalidation = r.at(7).value_or("");
        s.confirmed_flush = lsn_or_null(r.at(8));
        out.push_back(std::move(s));
    }
    return out;
}

// ReplicationSlotOnDisk, version 5 (PostgreSQL 17 and 18), little-endian:
// magic, CRC-32C of everything after it, version, length, then the slot
// data: name (64), database, persistency, xmin, catalog_xmin, restart_lsn
// (96), invalidated, confirmed_flush (112), two_phase_at, two_phase,
// plugin (129, 64), synced (193), failover (194); 200 bytes in all.
SlotFile parse_slot_state(const std::string &b) {
    constexpr uint32_t kMagic = 0x1051CA1;
    constexpr size_t kSize = 200;
    if (b.size() != kSize)
        throw Error(PGFO_ERR_STATE, "slot state file of " + std::to_string(b.size()) + " bytes (PostgreSQL 17 and 18 "
                                    "write " + std::to_string(kSize) + ")");
    if (u32_at(b, 0) != kMagic) throw Error(PGFO_ERR_STATE, "slot state file without the slot magic number");
    if (u32_at(b, 8) != 5 || u32_at(b, 12) != kSize - 16)
        throw Error(PGFO_ERR_STATE, "slot state file version " + std::to_string(u32_at(b, 8)) +
                                        " (PostgreSQL 17 and 18 write version 5)");
    if (crc32c(b.data() + 8, kSize - 8) != u32_at(b, 4))
        throw Error(PGFO_ERR_STATE, "slot state file fails its CRC check");
    SlotFile s;
    s.name = nul_terminated(b, 16, 64);
    s.confirmed_flush = u64_at(b, 112);
    std::string plugin = nul_terminated(b, 129, 64);
    s.logical = !plugin.empty();
    s.synced = b[193] != 0;
    s.failover = b[194] != 0;
    return s;
}

std::vector<SlotFile> slot_files(Context &ctx, const Node &node, std::vector<std::string> *errors) {
    auto access = make_node_access(node);
    const std::string dir = node.data_directory + "/pg_replslot";
    std::vector<std::string> argv = {"ls", "-1A", "--", dir};
    ExecResult r = access->run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + run_failed(argv, r));
    std::vector<SlotFile> out;
    size_t pos = 0;
    while (pos < r.out.size()) {
        size_t nl = r.out.find('\n', pos);
        std::string name = r.out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? r.out.size() : nl + 1;
        if (!valid_slot_name(name)) continue; // e.g. a slot being dropped (<name>.tmp)
        try {
            auto bytes = access->read_file(dir + "/" + name + "/state", 0, 0, ctx.cfg.command_timeout);
            if (!bytes) throw Error(PGFO_ERR_STATE, "no state file");
            SlotFile f = parse_slot_state(*bytes);
            if (f.name != name) throw Error(PGFO_ERR_STATE, "the state file names slot '" + f.name + "'");
            out.push_back(std::move(f));
        } catch (const Error &e) {
            if (errors) errors->push_back(dir + "/" + name + ": " + e.what());
        }
    }
    return out;
}

void remove_slot_files(Context &ctx, const Node &node, const std::string &name) {
    if (!valid_slot_name(name)) throw Error(PGFO_ERR_USAGE, "'" + name + "' is not a replication slot name");
    auto access = make_node_access(node);
    std::vector<std::string> argv = {"rm", "-rf", "--", node.data_directory + "/pg_replslot/" + name};
    ctx.log().info("{}: {} (via {})", node_label(node), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, ctx.cfg.command_timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(node) + ": " + run_failed(argv, r));
}

json SlotReadiness::to_json() const {
    return {{"name", name},
            {"ready", ready},
            {"state", state},
            {"candidate_confirmed_flush_lsn", lsn_json(candidate_flush)},
            {"consumers_confirmed_flush_lsn", lsn_json(consumers_flush)},
            {"advance_to", lsn_json(advance_to)}};
}

std::vector<SlotReadiness> slot_readiness(const std::vector<LogicalSlot> &candidate,
                                          const std::map<std::string, std::optional<Lsn>> &expected,
                                          std::optional<Lsn> candidate_wal) {
    std::vector<SlotReadiness> out;
    for (const auto &[name, consumers] : expected) {
        SlotReadiness r;
        r.name = name;
        r.consumers_flush = consumers;
        // (r.name, not the structured binding: C++17 lambdas cannot capture those)
        auto it = std::find_if(candidate.begin(), candidate.end(), [&r](const LogicalSlot &s) { return s.name == r.name; });
        if (it == candidate.end()) {
            r.state = "missing (never synchronized to the candidate)";
        } else {
            r.candidate_flush = it->confirmed_flush;
            if (!it->synced || !it->failover) r.state = "not synced (a slot of the candidate's own, not a synced copy)";
            else if (!it->invalidation.empty()) r.state = "invalidated (" + it->invalidation + ")";
            else if (it->temporary) r.state = "not sync-ready (the copy has not caught up with its consumer yet)";
            else if (consumers && candidate_wal && *consumers > *candidate_wal)
                r.state = "consumers ahead: they confirmed " + format_lsn(*consumers) +
                          ", past the candidate's WAL at " + format_lsn(*candidate_wal);
            else if (consumers && it->confirmed_flush && *it->confirmed_flush < *consumers) {
                r.state = "ready, behind its consumers (" + format_lsn(*it->confirmed_flush) + " < " +
                          format_lsn(*consumers) + "): advanced after the promotion";
                r.ready = true;
                r.advance_to = consumers;
            } else {
                r.state = "ready";
                r.ready = true;
            }
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::string describe_readiness(const std::vector<SlotReadiness> &slots) {
    std::vector<std::string> parts;
    for (const auto &s : slots) parts.push_back(s.name + ": " + s.state);
    return join(parts, "; ");
}

std::vector<SlotReadiness> wait_slots_ready(Context &ctx, PgConn &candidate,
                                            const std::map<std::string, std::optional<Lsn>> &expected,
                                            double timeout) {
    Stopwatch sw;
    // The slot sync worker runs where sync_replication_slots is on; elsewhere
    // pg_sync_replication_slots() does one round from here.
    const bool worker = setting_on(setting(candidate, "sync_replication_slots", ctx.cfg.command_timeout));
    bool manual = !worker;
    for (;;) {
        if (manual) {
            try {
                candidate.query("SELECT pg_sync_replication_slots()", {}, ctx.cfg.command_timeout);
            } catch (const Error &e) {
                ctx.log().warn("{}: pg_sync_replication_slots(): {}", candidate.label(), e.what());
                manual = false;
            }
        }
        auto r = slot_readiness(logical_slots(ctx, candidate), expected);
        // The primary runs on: a copy behind is not caught up yet.
        for (auto &x : r)
            if (x.advance_to) x.ready = false;
        bool all = std::all_of(r.begin(), r.end(), [](const SlotReadiness &s) { return s.ready; });
        // Nothing synchronizes on the candidate: waiting cannot change anything.
        if (all || (!worker && !manual) || sw.seconds() >= timeout) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the worker's shortest nap
    }
}

Lsn advance_slot(Context &ctx, PgConn &conn, const std::string &name, Lsn upto) {
    auto end = conn.scalar("SELECT end_lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)", {name, format_lsn(upto)},
                           ctx.cfg.command_timeout);
    auto l = lsn_or_null(end);
    if (!l) throw Error(PGFO_ERR_QUERY, conn.label() + ": pg_replication_slot_advance('" + name + "') returned no LSN");
    return *l;
}

json StandbySlots::to_json() const {
    return {{"applies", applies}, {"changed", changed}, {"before", before}, {"after", after}};
}

StandbySlots update_standby_slots(Context &ctx, PgConn &primary, bool dry_run) {
    StandbySlots r;
    const double t = ctx.cfg.command_timeout;
    r.before = setting(primary, "synchronized_standby_slots", t);
    auto failover = primary.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical' AND failover",
                                   {}, t);
    r.applies = (failover && *failover != "0") || !r.before.empty();
    std::vector<std::string> names;
    for (const auto &row : primary.query("SELECT s.slot_name FROM pg_replication_slots s JOIN pg_stat_replication r "
                                         "ON r.pid = s.active_pid WHERE s.slot_type = 'physical' "
                                         "AND r.state = 'streaming' ORDER BY 1",
                                         {}, t))
        if (row.at(0)) names.push_back(*row.at(0));
    r.after = join(names, ",");
    if (!r.applies || r.after == r.before) {
        r.after = r.before;
        return r;
    }
    r.changed = true;
    if (dry_run) return r;
    primary.query("ALTER SYSTEM SET synchronized_standby_slots = " + primary.literal(r.after), {}, t);
    primary.query("SELECT pg_reload_conf()", {}, t);
    Stopwatch sw;
    while (setting(primary, "synchronized_standby_slots", t) != r.after) {
        if (sw.seconds() > t)
            throw Error(PGFO_ERR_TIMEOUT, primary.label() + ": synchronized_standby_slots did not take the new value '" +
                                              r.after + "' after reload");
        poll_sleep(ctx.cfg);
    }
    return r;
}

json slots_status(Context &ctx, PgConn &conn) {
    if (!failover_slots_available(conn.server_version()))
        return {{"available", false}, {"reason", failover_slots_unavailable("this node", conn.server_version())}};
    json list = json::array();
    for (const auto &s : logical_slots(ctx, conn)) list.push_back(s.to_json());
    json j = {{"available", true}, {"logical", list}};
    const double t = ctx.cfg.command_timeout;
    j["sync_replication_slots"] = setting(conn, "sync_replication_slots", t);
    j["synchronized_standby_slots"] = setting(conn, "synchronized_standby_slots", t);
    return j;
}

void check_slot_failover(Context &ctx, const Node *primary, const ProblemSink &add) {
    const Config &cfg = ctx.cfg;
    const double t = cfg.command_timeout;
    if (!primary) return;
    PgConn pc = PgConn::open(*primary, cfg);
    const std::string who = node_label(*primary);
    auto count = pc.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'", {}, t);
    bool any_logical = count && *count != "0";
    if (!failover_slots_available(pc.server_version())) {
        if (any_logical || cfg.sync_replication_slots)
            add(who, failover_slots_unavailable(who, pc.server_version()) + " (" + count.value_or("?") +
                         " logical slot(s) on the primary)",
                "upgrade to PostgreSQL 17 or later, or plan to re-create the slots and re-synchronize their "
                "consumers after every failover");
        return;
    }
    if (!any_logical && !cfg.sync_replication_slots) return; // no logical replication to protect
    if (setting(pc, "wal_level", t) != "logical")
        add(who, "wal_level is '" + setting(pc, "wal_level", t) + "', not 'logical'",
            "ALTER SYSTEM SET wal_level = logical on every node; then restart them");
    std::vector<std::string> plain;
    for (const auto &s : logical_slots(ctx, pc))
        if (!s.failover) plain.push_back(s.name);
    if (!plain.empty())
        add(who, "logical slot(s) without failover = true, lost at a failover: " + join(plain),
            "re-create them with failover = true (CREATE SUBSCRIPTION ... WITH (failover = true); ALTER "
            "SUBSCRIPTION ... SET (failover = true) while it is disabled; pg_create_logical_replication_slot(..., "
            "failover => true))");
    if (setting(pc, "synchronized_standby_slots", t).empty())
        add(who, "synchronized_standby_slots is not set: logical consumers may get ahead of the standby that is "
                 "promoted next",
            "ALTER SYSTEM SET synchronized_standby_slots = '<physical slots of the standbys>' (pgfailover sets "
            "it after a failover and as standbys come back)");
    if (!cfg.sync_replication_slots)
        add("-", "[replication] sync_replication_slots is off: a node that rejoins does not synchronize slots",
            "set [replication] sync_replication_slots = on (with [policy] replication_slots = on)");
    for (const auto &[id, n] : cfg.nodes) {
        if (&n == primary || ping_node(n, cfg) != PGFO_PING_OK) continue;
        const std::string label = node_label(n);
        try {
            PgConn c = PgConn::open(n, cfg);
            if (!in_recovery(c, ctx.cfg.command_timeout)) continue;
            if (!failover_slots_available(c.server_version())) {
                add(label, failover_slots_unavailable(label, c.server_version()), "upgrade it to PostgreSQL 17 or later");
                continue;
            }
            if (!conninfo_has_dbname(setting(c, "primary_conninfo", t)))
                add(label, "primary_conninfo has no dbname: the slot sync worker cannot connect",
                    "add dbname=" + cfg.dbname + " to primary_conninfo (pgfailover writes it at a rejoin)");
            if (!setting_on(setting(c, "hot_standby_feedback", t)))
                add(label, "hot_standby_feedback is off: slot synchronization needs it",
                    "ALTER SYSTEM SET hot_standby_feedback = on; SELECT pg_reload_conf()");
            if (!setting_on(setting(c, "sync_replication_slots", t)))
                add(label, "sync_replication_slots is off: no failover slot is synchronized to this standby",
                    "ALTER SYSTEM SET sync_replication_slots = on; SELECT pg_reload_conf()");
            if (setting(c, "primary_slot_name", t).empty())
                add(label, "primary_slot_name is not set: slot synchronization requires a physical slot",
                    "set [policy] replication_slots = on and let pgfailover follow-primary configure it, or set "
                    "primary_slot_name");
            if (setting(c, "wal_level", t) != "logical")
                add(label, "wal_level is '" + setting(c, "wal_level", t) + "', not 'logical': slot synchronization "
                                                                             "needs it",
                    "ALTER SYSTEM SET wal_level = logical; then restart the node");
        } catch (const Error &e) {
            add(label, std::string("slot failover not checked: ") + e.what(), "check the node");
        }
    }
}

} // namespace pgfo
