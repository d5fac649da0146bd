// Bringing a node back as a standby: its configuration, start, streaming,
// its WAL and timeline history, pg_rewind.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pg/history.h"
#include "pg/walrecord.h"
#include "steps/ops.h"

namespace pgfo {

// Major version from <data_directory>/PG_VERSION (11, 15, ...).
int node_major_version(Context &ctx, const Node &node);

// pg_ctl start -w; the server's early output goes to
// <data_directory>/pgfailover-start.log. Throws PGFO_ERR_EXEC with the tail of
// that log when the server does not come up.
void start_node(Context &ctx, const Node &node, double timeout);

// A value in a libpq connection string, as libpq's parser reads it back:
// single-quoted, with \ before every \ and '.
std::string conninfo_value(const std::string &v);

// A string literal in PostgreSQL's configuration file syntax
// (postgresql.auto.conf, recovery.conf), as ALTER SYSTEM writes one
// (escape_single_quotes_ascii): single-quoted, every ' and \ doubled. The
// file's lexer reads \ as an escape, so a \ left single would vanish or end
// the string early.
std::string conf_literal(const std::string &v);

// primary_conninfo for `follower` streaming from `primary` ([replication] settings).
std::string primary_conninfo(const Config &cfg, const Node &primary, const Node &follower);

// Physical slot name of a follower: pgfailover_node<id>.
std::string slot_name(const Node &follower);

// Make a stopped node a standby of `primary`: standby.signal plus
// primary_conninfo, recovery_target_timeline = 'latest' and primary_slot_name
// in postgresql.auto.conf (12+), or recovery.conf (11). The previous
// postgresql.auto.conf / recovery.conf is kept as <file>.pgfailover.bak.
void write_standby_config(Context &ctx, const Node &follower, int major, const std::string &conninfo,
                          const std::string &slot);

// Wait until `conn` (a primary on `timeline`) shows application_name
// streaming in pg_stat_replication with its flush position at the primary's
// position when streaming was first seen, and the follower itself reports
// receiving on `timeline` (a diverged node connects, and may even report
// positions past ours, before it finds out that it cannot follow) and
// replaying: its replay position reaches that target, or at least moves
// (recovery_min_apply_delay). A node that diverged on the same timeline
// number receives our WAL but cannot replay it. Returns the flush position.
Lsn wait_streaming(Context &ctx, PgConn &conn, const Node &follower, const std::string &application_name,
                   uint32_t timeline, double timeout);

// The timeline `node`'s walreceiver streams on (the later of
// receive_start_tli and received_tli), nullopt when it is not streaming.
// A node past the fork point streams the old timeline up to the fork before
// its startup process refuses to go on, so it shows up as 'streaming' in the
// new primary's pg_stat_replication meanwhile: only this tells a follower
// from a node that cannot follow. Throws pgfo::Error when it cannot connect.
std::optional<uint32_t> receiving_timeline(Context &ctx, const Node &node);

// Where `node`'s WAL really ends on `timeline`: a scan of its pg_wal from
// the record at `from` (a record start, e.g. pg_control's minimum recovery
// point or latest checkpoint), record by record until one does not
// validate. Reads the segments in large pieces (one program run per piece
// over ssh). Throws pgfo::Error on a failure to reach the node, not at the end of WAL.
WalScan scan_node_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from, uint32_t segment_size,
                      uint32_t block_size);

// The node's timeline history (pg_wal/<timeline>.history in its data
// directory, running or not); empty for timeline 1, nullopt when the file is missing.
std::optional<std::vector<HistoryEntry>> node_history(Context &ctx, const Node &node, uint32_t timeline);

// Move the node's WAL segments of `timeline` from the one holding `from`
// on (and their archive_status files) out of pg_wal into
// <data_directory>/pgfailover-wal-<from>: WAL it received but never replayed,
// past a switch point. The node must be stopped. Returns the directory and how many files moved.
std::pair<std::string, int> set_aside_wal(Context &ctx, const Node &node, uint32_t timeline, Lsn from,
                                          uint32_t segment_size);

// Files pg_rewind must not take from the source: restored after it ran.
struct KeptConfig {
    std::vector<std::pair<std::string, std::string>> files; // path, content
};
KeptConfig keep_config_files(Context &ctx, const Node &node);
void restore_config_files(Context &ctx, const Node &node, const KeptConfig &kept);

// pg_rewind --target-pgdata <dir> --source-server <conninfo of source>,
// after a CHECKPOINT on the source; each within `timeout` seconds.
void run_pg_rewind(Context &ctx, const Node &target, const Node &source, double timeout);

} // namespace pgfo
