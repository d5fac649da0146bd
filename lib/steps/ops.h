// The operations steps are made of. Each knows PostgreSQL and the node access
// layer, none knows about sequences or the report: the step tables
// (failover.cpp, follow.cpp, switchover.cpp, single.cpp) compose them. This
// header holds what they all use; each subject has its own:
//   shutdown.h   the old primary: down checks, the shutdown wait, pg_control
//                and its checkpoint record, stopping a node
//   promotion.h  the candidate: roles, WAL positions, the flush wait,
//                promotion, timelines and switch points
//   sync_rep.h   synchronous_standby_names: reading, changing, repairing
//   rejoin.h     bringing a node back: standby configuration, start,
//                streaming, its WAL and history, pg_rewind
//   pcp.h        pgpool's PCP programs
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <memory>

#include "core/error.h"
#include "core/lock.h"
#include "run/context.h"
#include "pg/conn.h"
#include "pg/control.h"
#include "pg/history.h"
#include "pg/walrecord.h"
#include "remote/exec.h"

namespace pgfo {

// Sleep for the poll interval (config), at least 1 ms.
void poll_sleep(const Config &cfg);
// Before retrying a failed read: the poll interval, at least 50 ms.
void retry_sleep(const Config &cfg);

// "<argv as text> exit code 3: <its standard error>" (or why it did not run), for messages.
std::string exec_failure(const std::vector<std::string> &argv, const ExecResult &r);

// A node in reports and events: {"id", "host", "port"}.
nlohmann::json node_json(const Node &n);

// Node lookup: throws pgfo::Error(PGFO_ERR_USAGE) naming the id when it is not configured.
const Node &node_by_id(const Config &cfg, int id);

// This host's cluster lock ([general] lock_file), waited for up to `timeout` seconds.
std::unique_ptr<FileLock> cluster_lock(const Config &cfg, double timeout);
// A follower's own lock (<lock_file>.node<id>: pgpool runs follow_primary
// for several nodes at once), waited for up to `timeout` seconds.
std::string follower_lock_path(const Config &cfg, int follower);
std::unique_ptr<FileLock> follower_lock(const Config &cfg, int follower, double timeout);

// A PostgreSQL program of the node: bin_directory/program, or program (on PATH).
std::string bin_path(const Node &node, const char *program);

// An LSN a server returned (nullopt for NULL). Throws
// pgfo::Error(PGFO_ERR_QUERY) when it cannot be parsed.
std::optional<Lsn> lsn_or_null(const std::optional<std::string> &s);

// Retry `fn` while it throws one of the transient codes (PGFO_ERR_EXEC,
// PGFO_ERR_PG_CONTROL, PGFO_ERR_WAL), each failure logged with its cause,
// until failures have lasted `window` seconds and at least two attempts
// failed; then the last error is thrown. One failed read is never a fact,
// however long it took: a read that timed out after [timeouts] command on a
// lossy link has already outlasted a shorter window by itself.
template <class F>
auto retry_reads(Context &ctx, const std::string &what, double window, F &&fn) -> decltype(fn()) {
    Stopwatch sw;
    int failures = 0;
    for (;;) {
        try {
            return fn();
        } catch (const Error &e) {
            if (e.code() != PGFO_ERR_EXEC && e.code() != PGFO_ERR_PG_CONTROL && e.code() != PGFO_ERR_WAL) throw;
            ++failures;
            if ((sw.seconds() >= window && failures >= 2) || ctx.dry_run) throw;
            ctx.log().warn("{} failed (attempt {}, retried for up to {} s): {}", what, failures,
                           static_cast<int>(window), e.what());
            retry_sleep(ctx.cfg);
        }
    }
}

} // namespace pgfo
