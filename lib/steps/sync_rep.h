// synchronous_standby_names on a primary (or a candidate): read, change, repair.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "steps/ops.h"

namespace pgfo {

// The value `conn`'s server runs with; the query's deadline is `timeout` seconds.
std::string current_sync_standbys(PgConn &conn, double timeout);

// ALTER SYSTEM SET synchronous_standby_names + pg_reload_conf(), then wait
// until this session sees the new value.
void set_sync_standbys(Context &ctx, PgConn &conn, const std::string &value);

// Every change a procedure makes: set_sync_standbys() from `before` to
// `after`, then a sync.changed event for `step` with `nodes` (the roles of
// the nodes involved), before and after; its severity is `severity`, or
// when that is null "warning" if `after` is empty (commits wait for no
// standby any more) and "info" otherwise. Returns the step's summary,
// "synchronous_standby_names 'before' -> 'after'".
std::string change_sync_standbys(Context &ctx, PgConn &conn, const char *step, const std::string &before,
                                 const std::string &after, nlohmann::json nodes, const char *severity = nullptr);

// What synchronous_standby_names becomes once standbys are gone, under
// [replication] sync_standby_names: nullopt under keep (left alone), "" under
// async, and under adapt `current` naming only `remaining` (the same
// ANY/FIRST n, n capped to what remains).
std::optional<std::string> repaired_sync_names(const Config &cfg, const std::string &current,
                                               const std::vector<std::string> &remaining);

// The standbys a repaired synchronous_standby_names may still name: the
// configured nodes other than `excluded` that answer and are in recovery
// (those still streaming from the old primary are repointed by pgpool's
// follow_primary_command, and commits wait for them until then; when
// follow-primary fails to bring one back, it drops it again), and the
// application names streaming from `conn` other than `excluded_name`.
std::vector<std::string> available_standbys(Context &ctx, PgConn &conn, const std::set<int> &excluded,
                                            const std::string &excluded_name);

// Application names streaming from `conn` (pg_stat_replication, state streaming).
std::vector<std::string> streaming_standbys(Context &ctx, PgConn &conn);

} // namespace pgfo
