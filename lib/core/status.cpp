// Status code names and texts (part of the C interface, used by the core too).
#include "pgfailover.h"

namespace {

struct StatusText {
    pgfo_status_t code;
    const char *name;
    const char *text;
};

constexpr StatusText kStatus[] = {
    {PGFO_OK, "PGFO_OK", "success"},
    {PGFO_ERR_INTERNAL, "PGFO_ERR_INTERNAL", "internal error"},
    {PGFO_ERR_USAGE, "PGFO_ERR_USAGE", "invalid argument"},
    {PGFO_ERR_CONFIG, "PGFO_ERR_CONFIG", "invalid configuration"},
    {PGFO_ERR_CONNECT, "PGFO_ERR_CONNECT", "cannot connect to a node"},
    {PGFO_ERR_QUERY, "PGFO_ERR_QUERY", "query failed on a node"},
    {PGFO_ERR_TIMEOUT, "PGFO_ERR_TIMEOUT", "step timed out"},
    {PGFO_ERR_UNCLEAN, "PGFO_ERR_UNCLEAN", "old primary crashed or unreachable; not promoted (on_unclean = abort)"},
    {PGFO_ERR_REFUSED, "PGFO_ERR_REFUSED", "refused by policy"},
    {PGFO_ERR_LOCKED, "PGFO_ERR_LOCKED", "another pgfailover run holds the cluster lock, or another user could"},
    {PGFO_ERR_PG_CONTROL, "PGFO_ERR_PG_CONTROL", "pg_control unreadable, corrupt or of an unknown version"},
    {PGFO_ERR_WAL, "PGFO_ERR_WAL", "checkpoint record could not be read from WAL"},
    {PGFO_ERR_EXEC, "PGFO_ERR_EXEC", "command on a node failed"},
    {PGFO_ERR_STATE, "PGFO_ERR_STATE", "cluster not in a state this action can work from"},
    {PGFO_ERR_NOMEM, "PGFO_ERR_NOMEM", "out of memory"},
    {PGFO_ERR_CANCELLED, "PGFO_ERR_CANCELLED", "cancelled"},
    {PGFO_ERR_CHECK, "PGFO_ERR_CHECK", "check found problems"},
    {PGFO_ERR_SPLIT_BRAIN, "PGFO_ERR_SPLIT_BRAIN", "more than one node is a primary"},
    {PGFO_ERR_IDENTITY, "PGFO_ERR_IDENTITY", "a data directory belongs to another cluster (system identifier mismatch)"},
};

const StatusText *find(pgfo_status_t code) {
    for (const auto &s : kStatus)
        if (s.code == code) return &s;
    return nullptr;
}

} // namespace

extern "C" PGFO_API const char *pgfo_strerror(pgfo_status_t code) {
    const StatusText *s = find(code);
    return s ? s->text : "unknown status code";
}

extern "C" PGFO_API const char *pgfo_status_name(pgfo_status_t code) {
    const StatusText *s = find(code);
    return s ? s->name : "PGFO_ERR_UNKNOWN";
}
