// A planned switchover handed to pgpool-II ([switchover] pgpool = auto with a
// [pcp] host): the switchover asks pgpool to switch over
// (pcp_promote_node --switchover), and pgpool runs its own failover_command
// and follow_primary_command, which are pgfailover's hooks. The two sides
// meet through files in the lock file's directory (the same private 0700
// directory the cluster lock is in):
//
//   <cluster>.switchover               the note: run id, from, to, pid, deadline
//   <cluster>.switchover.<run>.<kind>.<node>.json
//                                      a hook's report, handed back
//
// A hook trusts the note only when it is a regular file of its own user that
// no one else can read or write, its process still runs, and its deadline
// has not passed. With a matching note the failover hook stops the old
// primary whatever on_running says: the operator asked for it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "run/context.h"

namespace pgfo {

struct SwitchoverNote {
    std::string run;      // the switchover's run id
    int from = -1;        // the primary being switched away from
    int to = -1;          // the target
    long pid = 0;         // the switchover's process
    double deadline = 0;  // Unix time after which the note is void
};

// Whether a switchover goes through pgpool: [pcp] host set and
// [switchover] pgpool = auto.
bool switchover_via_pgpool(const Config &cfg);

// The switchover's side. Writing the note replaces any earlier one (and its
// reports); the destructor removes the note and every report of its run.
class SwitchoverHandover {
public:
    // The note for the current run (ctx.run_id(), this process), void after
    // `valid_for` seconds.
    SwitchoverHandover(Context &ctx, int from, int to, double valid_for);
    ~SwitchoverHandover();
    SwitchoverHandover(const SwitchoverHandover &) = delete;
    SwitchoverHandover &operator=(const SwitchoverHandover &) = delete;

    const SwitchoverNote &note() const { return note_; }
    // A hook's report once it is there (parsed), nullopt before.
    std::optional<nlohmann::json> report(const std::string &kind, int node) const;

private:
    Context &ctx_;
    SwitchoverNote note_;
    std::string dir_;
};

// The hooks' side: the note of a switchover waiting for pgpool's hooks, when
// there is one that can be trusted (see above; a note that cannot is logged
// with the reason and ignored).
std::optional<SwitchoverNote> pending_switchover(Context &ctx);

// After a hook run that found a note: hand its report (ctx.result()) back.
// Failures are logged, never thrown: the hook's own outcome stands.
void hand_back_report(Context &ctx, const SwitchoverNote &note, const std::string &kind, int node);

} // namespace pgfo
