#include "steps/ops.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "pg/lsn.h"

namespace pgfo {

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

std::unique_ptr<FileLock> cluster_lock(const Config &cfg, double timeout) {
    return std::make_unique<FileLock>(lock_file_path(cfg), timeout, cfg.poll_interval);
}

std::string follower_lock_path(const Config &cfg, int follower) {
    return lock_file_path(cfg) + ".node" + std::to_string(follower);
}

std::unique_ptr<FileLock> follower_lock(const Config &cfg, int follower, double timeout) {
    return std::make_unique<FileLock>(follower_lock_path(cfg, follower), timeout, cfg.poll_interval);
}

std::string bin_path(const Node &node, const char *program) {
    return node.bin_directory.empty() ? std::string(program) : node.bin_directory + "/" + program;
}

} // namespace pgfo
