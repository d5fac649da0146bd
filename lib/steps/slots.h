// Logical replication through a failover: PostgreSQL 17+ failover slots.
// What the steps in failover.cpp and follow.cpp ask of slots, and what
// status and check show: listing them, their readiness on the candidate,
// the old primary's on-disk slot state, synchronized_standby_slots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/context.h"
#include "pg/conn.h"
#include "pg/lsn.h"

namespace pgfo {

// Failover slots (failover = true, sync_replication_slots,
// synchronized_standby_slots, pg_replication_slots.synced) came with 17.
constexpr int kFailoverSlotsVersion = 170000;
inline bool failover_slots_available(int server_version) { return server_version >= kFailoverSlotsVersion; }
// "failover slots need PostgreSQL 17 or later (<who> runs 16): logical slots do not survive a failover"
std::string failover_slots_unavailable(const std::string &who, int server_version);

// One logical slot as pg_replication_slots shows it on a 17+ server.
struct LogicalSlot {
    std::string name, plugin, database;
    bool failover = false;
    bool synced = false;    // a copy the slot sync worker maintains (on a standby)
    bool temporary = false; // a synced copy not yet sync-ready
    bool active = false;
    std::string invalidation; // invalidation_reason; "" = usable
    std::optional<Lsn> confirmed_flush;
    nlohmann::json to_json() const;
};
std::vector<LogicalSlot> logical_slots(Context &ctx, PgConn &conn);

// pg_replslot/<name>/state of a stopped server (PostgreSQL 17 and 18:
// on-disk version 5; magic and CRC-32C checked). Throws
// pgfo::Error(PGFO_ERR_STATE) on anything else.
struct SlotFile {
    std::string name;
    bool logical = false;   // has an output plugin
    bool failover = false;
    bool synced = false;
    Lsn confirmed_flush = 0; // what its consumers confirmed when the server stopped
};
SlotFile parse_slot_state(const std::string &bytes);

// Every slot directory of the node's data directory (through its access,
// the node must be stopped). Unreadable ones are named in *errors.
std::vector<SlotFile> slot_files(Context &ctx, const Node &node, std::vector<std::string> *errors);
// Remove pg_replslot/<name> of a stopped node.
void remove_slot_files(Context &ctx, const Node &node, const std::string &name);

// A failover slot's state on the candidate, against what its consumers were
// told (the old primary's confirmed_flush_lsn, when known) and the WAL the
// candidate holds (`candidate_wal`, when known). Not ready: missing, not a
// synced copy, invalidated, not sync-ready (temporary), or consumers that
// confirmed WAL the candidate never received. A copy behind its consumers
// is ready: `advance_to` says where to move it after the promotion, so that
// a consumer that resumes from the slot gets nothing twice.
struct SlotReadiness {
    std::string name;
    bool ready = false;
    std::string state;
    std::optional<Lsn> candidate_flush, consumers_flush;
    std::optional<Lsn> advance_to;
    nlohmann::json to_json() const;
};
std::vector<SlotReadiness> slot_readiness(const std::vector<LogicalSlot> &candidate,
                                          const std::map<std::string, std::optional<Lsn>> &expected,
                                          std::optional<Lsn> candidate_wal = std::nullopt);

// On a primary: pg_replication_slot_advance(name, upto). Returns the slot's
// new confirmed_flush_lsn.
Lsn advance_slot(Context &ctx, PgConn &conn, const std::string &name, Lsn upto);
std::string describe_readiness(const std::vector<SlotReadiness> &slots); // "a: ready, b: missing"

// While the primary is up: until every slot in `expected` is ready on the
// candidate, or `timeout`. pg_sync_replication_slots() is called when the
// candidate runs no slot sync worker. Returns the last readiness.
std::vector<SlotReadiness> wait_slots_ready(Context &ctx, PgConn &candidate,
                                            const std::map<std::string, std::optional<Lsn>> &expected,
                                            double timeout);

// synchronized_standby_slots on a 17+ primary: the physical slots of the
// standbys streaming from it now, so that logical consumers never get ahead
// of a standby that could be promoted next. Applies only where the primary
// has failover slots or the setting is not empty (`applies`).
struct StandbySlots {
    bool applies = false;
    bool changed = false;
    std::string before, after;
    nlohmann::json to_json() const;
};
StandbySlots update_standby_slots(Context &ctx, PgConn &primary, bool dry_run);

// What `status` shows per node: its logical slots (17+), or why not.
nlohmann::json slots_status(Context &ctx, PgConn &conn);

// What `check` reports: every setting that would break slot failover.
// `add(node, problem, fix)`; `primary` may be null.
using ProblemSink = std::function<void(const std::string &, const std::string &, const std::string &)>;
void check_slot_failover(Context &ctx, const Node *primary, const ProblemSink &add);

} // namespace pgfo
