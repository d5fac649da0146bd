#include "steps/rejoin.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "pg/history.h"
#include "pg/lsn.h"
#include "pg/walrecord.h"
#include "steps/promotion.h"
#include "steps/shutdown.h"

namespace pgfo {

namespace {


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

void run_pg_rewind(Context &ctx, const Node &target, const Node &source, double timeout) {
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
    PgConn(PgConn::open(src, c)).query("CHECKPOINT", {}, timeout);
    auto access = make_node_access(target);
    ctx.log().info("{}: {} (via {})", node_label(target), describe_argv(argv), access->describe());
    ExecResult r = access->run(argv, timeout);
    if (!r.ok()) throw Error(PGFO_ERR_EXEC, node_label(target) + ": " + exec_failure(argv, r));
    std::string out = r.out + r.err;
    if (out.find("no rewind required") != std::string::npos)
        throw Error(PGFO_ERR_STATE, node_label(target) + ": pg_rewind found nothing to rewind, but the node's WAL "
                                                         "goes past the switch point; not starting it");
}

} // namespace pgfo
