// pgpool's PCP programs, run with an argument vector.
#pragma once

#include <string>
#include <vector>

#include "steps/ops.h"

namespace pgfo {

// A pgpool PCP program: [pcp] bin_directory/program, or program (on PATH).
std::string pcp_program(const Config &c, const std::string &program);
// The argument vector of a pgpool PCP program ([pcp] host, port, user,
// passfile, bin_directory) with `args` after the connection options.
std::vector<std::string> pcp_argv(const Config &c, const std::string &program, const std::vector<std::string> &args);

// pcp_attach_node for `node_id` when [pcp] host is set; false when PCP is not configured.
bool pcp_attach(Context &ctx, int node_id);

} // namespace pgfo
