// Running commands on nodes: an argument vector, never a local shell, always
// with a timeout. Local nodes: fork/exec. Ssh nodes: ssh with every remote
// argument quoted for the remote shell, multiplexed over one connection per
// destination while an SshSession is open.
#pragma once

#include <map>
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

// What one shutdown probe saw, read in one remote call: postmaster.pid, then
// global/pg_control (nullopt when that file does not exist).
struct ShutdownProbe {
    PidFileStatus pid;
    std::optional<std::string> pg_control;
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
    // postmaster_pid(), then the bytes of <data_directory>/global/pg_control,
    // in one remote call (local: two reads). Throws as postmaster_pid() does.
    virtual ShutdownProbe probe_shutdown(const std::string &data_directory, double timeout_seconds) = 0;
    // "local" or "ssh postgres@db1:22", for messages.
    virtual std::string describe() const = 0;

    // What the node's host lacks among the programs pgfailover runs there
    // (sh, cat, dd with iflag=skip_bytes,count_bytes or tail -c/head -c, mv,
    // kill -0, pg_ctl), one entry per missing piece; empty when all is there.
    // Checked by one call over the same path as every other command.
    // Throws pgfo::Error(PGFO_ERR_EXEC) when the host cannot be reached.
    std::vector<std::string> missing_programs(const std::string &pg_ctl, double timeout_seconds);

    // Replace path with content (mode 0600): written beside it, then renamed
    // over it, so a reader sees the old file or the new one, never half of
    // one. Runs a fixed sh script with path and content as its arguments
    // (never as script text). Throws pgfo::Error(PGFO_ERR_EXEC).
    void write_file(const std::string &path, const std::string &content, double timeout_seconds);
    // write_file() for each (path, content) in order, in one call; stops at
    // the first failure (files before it are written).
    void write_files(const std::vector<std::pair<std::string, std::string>> &files, double timeout_seconds);
};

std::unique_ptr<NodeAccess> make_node_access(const Node &node);

// The ssh argument vector for running `remote_argv` on `node` (exposed for
// tests). With a control_path: a client of the master listening there
// (ControlMaster=no), which never starts a master of its own.
std::vector<std::string> ssh_argv(const Node &node, const std::vector<std::string> &remote_argv,
                                  double timeout_seconds, const std::string &control_path = "");
// The argument vector that starts a master for `node` at control_path: it
// authenticates, then goes to the background (ControlPersist) and exits on
// its own after kSshPersistSeconds without a client.
std::vector<std::string> ssh_master_argv(const Node &node, const std::string &control_path,
                                         double timeout_seconds);
constexpr int kSshPersistSeconds = 30;

// Shared ssh connections. While at least one SshSession exists in the
// process, ssh commands go through one master connection per (user, host,
// port, ssh_options), started on first use; its control socket lives in a
// directory made for this process with mkdtemp (mode 0700), never a path
// another process could predict or have prepared. The last SshSession to
// end closes every master (ssh -O exit) and removes the directory. A
// watcher process holding a socket from this one does the same if the
// process dies without that (a signal, kill -9). Without a session every
// command is a connection of its own. Thread-safe; sessions nest.
class SshSession {
public:
    SshSession();
    ~SshSession();
    SshSession(const SshSession &) = delete;
    SshSession &operator=(const SshSession &) = delete;
};

// During a session: start connecting to `node` (access = ssh) in the
// background now, so that the handshake overlaps other work; the first
// command for it waits for that connection. Never throws.
void ssh_prewarm(const Node &node, double timeout_seconds);

// The control directory of the open session ("" when none): for tests.
std::string ssh_control_directory();

// What remote access cost, per node id, on the calling thread since it
// started: ssh connections opened (masters, or one per call without a
// session), remote calls made, and the time spent in them.
struct RemoteCost {
    long connections = 0;
    long calls = 0;
    double seconds = 0;         // in remote calls, connecting included
    double connect_seconds = 0; // of which: opening connections
};
using RemoteCosts = std::map<int, RemoteCost>;
RemoteCosts remote_costs();
// now - before, without the nodes that cost nothing in between.
RemoteCosts remote_costs_since(const RemoteCosts &before);

} // namespace pgfo
