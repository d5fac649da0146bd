// Running commands on nodes: an argument vector, never a local shell, always
// with a timeout. Local nodes: fork/exec. Ssh nodes: ssh with every remote
// argument quoted for the remote shell.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgfo {

struct ExecResult {
    int exit_code = -1;   // -1 when killed by a signal or not started
    int term_signal = 0;  // signal that ended it, 0 if none
    bool timed_out = false;
    bool start_failed = false; // exec failed (e.g. program not found); `err` says why
    std::string out;      // standard output (binary-safe)
    std::string err;      // standard error
    bool ok() const { return exit_code == 0 && !timed_out; }
};

// Run argv[0] (searched on PATH when it has no '/') with argv, no shell.
// Standard input is /dev/null. On timeout the whole process group gets
// SIGTERM, then SIGKILL after 2 s. Output is captured up to 16 MiB each.
ExecResult run_local(const std::vector<std::string> &argv, double timeout_seconds);

// Quote one word for a POSIX shell: 'it'\''s'. Safe for any byte but NUL.
std::string shell_quote(const std::string &word);
// Words quoted and joined by spaces: the command string ssh hands the remote shell.
std::string shell_join(const std::vector<std::string> &argv);

// "mycmd ..." -> a printable form for logs (quoted as above).
inline std::string describe_argv(const std::vector<std::string> &argv) { return shell_join(argv); }

enum class PidFileState { Gone, Stale, Alive };

struct PidFileStatus {
    PidFileState state = PidFileState::Gone;
    long pid = 0; // first line of postmaster.pid, 0 when gone or unreadable
    // The postmaster's status line (line 8: "starting", "stopping", "ready",
    // "standby"), trimmed; "" when the file is gone or the line not written yet.
    std::string pm_status;
};

// How pgfailover reaches a node's host to run programs and read files.
class NodeAccess {
public:
    virtual ~NodeAccess() = default;
    // Run argv on the node's host.
    virtual ExecResult run(const std::vector<std::string> &argv, double timeout_seconds) = 0;
    // Read up to len bytes of path at offset (len 0: the whole file).
    // nullopt when the file does not exist; throws pgfo::Error(PGFO_ERR_EXEC)
    // when the host cannot be reached or the file cannot be read.
    virtual std::optional<std::string> read_file(const std::string &path, uint64_t offset,
                                                 uint64_t len, double timeout_seconds) = 0;
    // <data_directory>/postmaster.pid: gone, stale (its PID is not alive) or alive.
    // Throws pgfo::Error(PGFO_ERR_EXEC) when the host cannot be reached.
    virtual PidFileStatus postmaster_pid(const std::string &data_directory,
                                         double timeout_seconds) = 0;
    // "local" or "ssh postgres@db1:22", for messages.
    virtual std::string describe() const = 0;

    // Replace path with content (mode 0600): written beside it, then renamed
    // over it, so a reader sees the old file or the new one, never half of
    // one. Runs a fixed sh script with path and content as its arguments
    // (never as script text). Throws pgfo::Error(PGFO_ERR_EXEC).
    void write_file(const std::string &path, const std::string &content, double timeout_seconds);
};

std::unique_ptr<NodeAccess> make_node_access(const Node &node);

// The ssh argument vector for running `remote_argv` on `node` (exposed for tests).
std::vector<std::string> ssh_argv(const Node &node, const std::vector<std::string> &remote_argv,
                                  double timeout_seconds);

} // namespace pgfo
