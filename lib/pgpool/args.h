// The arguments pgpool-II passes to failover_command / follow_primary_command,
// in the order pgfailover documents: %d %h %p %D %m %H %M %P %r %R %N %S.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgfo {

struct PgpoolArgs {
    int failed_node = -1;                        // %d (follow_primary: the node that must follow)
    std::optional<std::string> failed_host;      // %h
    std::optional<int> failed_port;              // %p
    std::optional<std::string> failed_data_dir;  // %D
    int new_main_node = -1;                      // %m  (-1: no node alive)
    std::optional<std::string> new_main_host;    // %H
    int old_main_node = -1;                      // %M
    int old_primary_node = -1;                   // %P
    std::optional<int> new_main_port;            // %r
    std::optional<std::string> new_main_data_dir;// %R
    std::optional<std::string> old_primary_host; // %N (pgpool 4.1+)
    std::optional<int> old_primary_port;         // %S (pgpool 4.1+)
};

// Parse the hook arguments. The first 8 (%d..%P) are required, the rest may be
// missing (older pgpool). Empty strings and the two characters "" mean "no
// value". Node ids are -1 or 0..127; ports 1..65535. Throws
// pgfo::Error(PGFO_ERR_USAGE, "argument 3 (%p, failed node port): ...").
PgpoolArgs parse_pgpool_args(const std::vector<std::string> &args);

} // namespace pgfo
