#include "steps/pcp.h"

#include "core/error.h"

namespace pgfo {

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

} // namespace pgfo
