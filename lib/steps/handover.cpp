#include "steps/handover.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/json_text.h"
#include "core/lock.h"
#include "core/text.h"

namespace pgfo {
namespace {

using nlohmann::json;

double unix_now() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string note_path(const Config &cfg) {
    return parent_directory(lock_file_path(cfg)) + "/" + cfg.cluster_name + ".switchover";
}

std::string report_name(const Config &cfg, const std::string &run, const std::string &kind, int node) {
    return cfg.cluster_name + ".switchover." + run + "." + kind + "." + std::to_string(node) + ".json";
}

// The directory must be the cluster lock's: private to this user.
void check_directory(const std::string &dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        throw Error(PGFO_ERR_EXEC, "cannot use " + dir + " for the switchover's hand-over: " + std::strerror(errno));
    std::string problem = lock_directory_problem(dir, st, ::geteuid());
    if (!problem.empty()) throw Error(PGFO_ERR_LOCKED, problem);
}

// Write `text` to `path` in one step: a private temporary file, then rename.
void write_private(const std::string &path, const std::string &text) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw Error(PGFO_ERR_EXEC, "cannot create " + tmp + ": " + std::strerror(errno));
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error(PGFO_ERR_EXEC, "cannot write " + tmp + ": " + std::strerror(e));
        }
        off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw Error(PGFO_ERR_EXEC, "cannot write " + path + ": " + std::strerror(e));
    }
}

// A file of this user that no one else can read or write; "" when it is
// missing (nullopt), the reason it is not trusted in `why`.
std::optional<std::string> read_private(const std::string &path, std::string &why) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT) why = "cannot open " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    struct stat st {};
    std::string problem;
    if (::fstat(fd, &st) != 0 || !(problem = lock_file_problem(path, st, ::geteuid())).empty()) {
        ::close(fd);
        why = problem.empty() ? "cannot check " + path : problem;
        return std::nullopt;
    }
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 20)) text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return text;
}

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

} // namespace

bool switchover_via_pgpool(const Config &cfg) { return cfg.switchover_via_pgpool && !cfg.pcp_host.empty(); }

SwitchoverHandover::SwitchoverHandover(Context &ctx, int from, int to, double valid_for)
    : ctx_(ctx), note_{ctx.run_id(), from, to, static_cast<long>(::getpid()), unix_now() + valid_for},
      dir_(parent_directory(lock_file_path(ctx.cfg))) {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error(PGFO_ERR_EXEC, "cannot create " + dir_ + " (the lock file's directory): " + std::strerror(errno));
    check_directory(dir_);
    json j = {{"run", note_.run}, {"from", note_.from}, {"to", note_.to}, {"pid", note_.pid},
              {"deadline", note_.deadline}};
    write_private(note_path(ctx.cfg), j.dump() + "\n");
    ctx.log().info("switchover note for pgpool's hooks: {} (node {} to node {}, void after {:.0f} s)",
                   note_path(ctx.cfg), note_.from, note_.to, note_.deadline - unix_now());
}

SwitchoverHandover::~SwitchoverHandover() {
    ::unlink(note_path(ctx_.cfg).c_str());
    const std::string prefix = ctx_.cfg.cluster_name + ".switchover." + note_.run + ".";
    if (DIR *d = ::opendir(dir_.c_str())) {
        while (struct dirent *e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name.compare(0, prefix.size(), prefix) == 0) ::unlink((dir_ + "/" + name).c_str());
        }
        ::closedir(d);
    }
}

std::optional<json> SwitchoverHandover::report(const std::string &kind, int node) const {
    std::string why;
    auto text = read_private(dir_ + "/" + report_name(ctx_.cfg, note_.run, kind, node), why);
    if (!text) {
        if (!why.empty()) throw Error(PGFO_ERR_LOCKED, "a hook's report for this switchover: " + why);
        return std::nullopt;
    }
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error(PGFO_ERR_STATE, "the " + kind + " hook's report for node " + std::to_string(node) +
                                        " is not a JSON object");
    return j;
}

std::optional<SwitchoverNote> pending_switchover(Context &ctx) {
    const std::string path = note_path(ctx.cfg);
    std::string why;
    auto text = read_private(path, why);
    auto ignore = [&](const std::string &reason) -> std::optional<SwitchoverNote> {
        ctx.log().warn("ignoring the switchover note {}: {}", path, reason);
        return std::nullopt;
    };
    if (!text) return why.empty() ? std::nullopt : ignore(why);
    json j = json::parse(*text, nullptr, false);
    SwitchoverNote n;
    try {
        if (j.is_discarded()) return ignore("not JSON");
        n.run = j.at("run").get<std::string>();
        n.from = j.at("from").get<int>();
        n.to = j.at("to").get<int>();
        n.pid = j.at("pid").get<long>();
        n.deadline = j.at("deadline").get<double>();
    } catch (const json::exception &e) {
        return ignore(std::string("malformed: ") + e.what());
    }
    if (n.run.empty() || n.run.find_first_not_of("0123456789abcdef") != std::string::npos)
        return ignore("malformed run id");
    if (unix_now() > n.deadline) return ignore("its deadline has passed (a switchover that ended without removing it)");
    if (!process_alive(n.pid)) return ignore("its switchover (pid " + std::to_string(n.pid) + ") no longer runs");
    return n;
}

void hand_back_report(Context &ctx, const SwitchoverNote &note, const std::string &kind, int node) {
    const std::string dir = parent_directory(lock_file_path(ctx.cfg));
    const std::string path = dir + "/" + report_name(ctx.cfg, note.run, kind, node);
    try {
        check_directory(dir);
        write_private(path, to_json_text(ctx.result()) + "\n");
        ctx.log().info("report handed back to switchover run {} ({})", note.run, path);
    } catch (const Error &e) {
        ctx.log().warn("cannot hand the report back to switchover run {}: {}", note.run, e.what());
    }
}

} // namespace pgfo
