#include "steps/fence.h"

#include "core/error.h"
#include "pg/conn.h"
#include "remote/exec.h"
#include "steps/events.h"

namespace pgfo {
namespace {

std::string expand(const std::string &arg, const Node &node, const std::string &reason) {
    std::string out;
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] != '%' || i + 1 == arg.size()) {
            out += arg[i];
            continue;
        }
        switch (arg[++i]) {
        case 'd': out += std::to_string(node.id); break;
        case 'h': out += node.host; break;
        case 'p': out += std::to_string(node.port); break;
        case 'D': out += node.data_directory; break;
        case 'r': out += reason; break;
        case '%': out += '%'; break;
        default: out += '%'; out += arg[i]; // the parser refuses these
        }
    }
    return out;
}

// The last non-empty line of a program's output, for the message.
std::string last_line(const std::string &text) {
    size_t end = text.find_last_not_of(" \n\r\t");
    if (end == std::string::npos) return "";
    size_t start = text.rfind('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

} // namespace

std::vector<std::string> fence_argv(const Config &cfg, const Node &node, const std::string &reason) {
    std::vector<std::string> argv;
    for (const auto &a : cfg.fence_command) argv.push_back(expand(a, node, reason));
    return argv;
}

void fence_node(Context &ctx, const Node &node, const std::string &reason) {
    if (ctx.cfg.fence_command.empty())
        throw Error(PGFO_ERR_UNCLEAN, reason + "; on_unclean = fence but no [fencing] command is set");
    const std::vector<std::string> argv = fence_argv(ctx.cfg, node, reason);
    const nlohmann::json nodes = {{"node", {{"id", node.id}, {"host", node.host}, {"port", node.port}}}};
    if (ctx.dry_run) {
        ctx.log().info("dry run: would fence {} with {}", node_label(node), describe_argv(argv));
        return;
    }
    ctx.log().warn("FENCING {}: {}; running {} (up to {} s)", node_label(node), reason, describe_argv(argv),
                   ctx.cfg.fence_timeout);
    ctx.emit(ev::kFenceStarted, "", "warning",
             {{"nodes", nodes}, {"reason", reason}, {"command", argv}, {"timeout_s", ctx.cfg.fence_timeout}});
    Stopwatch sw;
    ExecResult r = run_local(argv, ctx.cfg.fence_timeout);
    const double took = sw.seconds();
    if (r.ok()) {
        ctx.log().warn("FENCED {} in {:.3f} s", node_label(node), took);
        ctx.emit(ev::kFenceSucceeded, "", "warning",
                 {{"nodes", nodes}, {"reason", reason}, {"duration_s", took}, {"exit_code", 0}});
        return;
    }
    std::string why = r.start_failed  ? "could not start: " + last_line(r.err)
                      : r.timed_out   ? "did not finish within " + std::to_string(ctx.cfg.fence_timeout) + " s (killed)"
                      : r.term_signal ? "ended by signal " + std::to_string(r.term_signal)
                                      : "exited with " + std::to_string(r.exit_code);
    const std::string said = last_line(r.err.empty() ? r.out : r.err);
    if (!said.empty() && !r.start_failed) why += " (" + said + ")";
    const std::string msg = reason + "; on_unclean = fence: the fence command " + describe_argv(argv) + " " + why;
    ctx.emit(ev::kFenceFailed, "", "critical",
             {{"nodes", nodes}, {"reason", reason}, {"duration_s", took}, {"error", msg},
              {"code", "PGFO_ERR_UNCLEAN"}, {"exit_code", r.exit_code}});
    throw Error(PGFO_ERR_UNCLEAN, msg);
}

} // namespace pgfo
