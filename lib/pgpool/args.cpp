// pgpool-II hook arguments. pgpool substitutes %d %h ... into the command
// line and runs it with /bin/sh -c without quoting, so:
//  - a missing host/port/directory arrives as an empty argument (the shell
//    drops the quotes of pgpool's `""`), or as the two characters "" when the
//    hook line itself quotes the placeholder; both mean "no value";
//  - node ids are plain integers, -1 meaning "none".
// Values are data: they are only ever compared and logged, never evaluated.
#include "pgpool/args.h"

#include "core/error.h"
#include "core/text.h"

namespace pgfo {
namespace {

struct ArgSpec {
    const char *placeholder;
    const char *meaning;
};

const ArgSpec kSpecs[12] = {
    {"%d", "failed node id"},          {"%h", "failed node host"},
    {"%p", "failed node port"},        {"%D", "failed node data directory"},
    {"%m", "new main node id"},        {"%H", "new main node host"},
    {"%M", "old main node id"},        {"%P", "old primary node id"},
    {"%r", "new main node port"},      {"%R", "new main node data directory"},
    {"%N", "old primary node host"},   {"%S", "old primary node port"},
};

constexpr size_t kRequired = 8;

std::string show(const std::string &v) { return show_value(v, 100); }


[[noreturn]] void fail(size_t index, const std::string &what) {
    const ArgSpec &a = kSpecs[index];
    throw Error(PGFO_ERR_USAGE, "argument " + std::to_string(index + 1) + " (" + a.placeholder + ", " + a.meaning +
                                    "): " + what);
}

bool missing(const std::string &v) { return v.empty() || v == "\"\""; }

// Strict decimal: optional '-' then digits, no '+', no space, no hex, no
// leading zeros ("-0" neither), at most 6 digits so that nothing can overflow.
bool parse_int(const std::string &v, long &out) {
    size_t i = 0;
    bool neg = false;
    if (!v.empty() && v[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == v.size() || v.size() - i > 6) return false;
    if (v[i] == '0' && (v.size() - i > 1 || neg)) return false;
    long x = 0;
    for (; i < v.size(); ++i) {
        if (v[i] < '0' || v[i] > '9') return false;
        x = x * 10 + (v[i] - '0');
    }
    out = neg ? -x : x;
    return true;
}

int node_id(const std::vector<std::string> &args, size_t index) {
    const std::string &v = args[index];
    if (missing(v)) fail(index, "missing (allowed: a node id -1..127)");
    long x = 0;
    if (!parse_int(v, x) || x < -1 || x > 127) fail(index, show(v) + " is not a node id (-1..127)");
    return static_cast<int>(x);
}

std::optional<int> port(const std::vector<std::string> &args, size_t index) {
    if (index >= args.size() || missing(args[index])) return std::nullopt;
    const std::string &v = args[index];
    long x = 0;
    if (!parse_int(v, x) || x < 1 || x > 65535) fail(index, show(v) + " is not a port number (1-65535)");
    return static_cast<int>(x);
}

std::optional<std::string> host(const std::vector<std::string> &args, size_t index) {
    if (index >= args.size() || missing(args[index])) return std::nullopt;
    const std::string &v = args[index];
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f)
            fail(index, show(v) + " contains a control character or newline (not a host name)");
    return v;
}

std::optional<std::string> text(const std::vector<std::string> &args, size_t index) {
    if (index >= args.size() || missing(args[index])) return std::nullopt;
    return args[index];
}

} // namespace

PgpoolArgs parse_pgpool_args(const std::vector<std::string> &args) {
    if (args.size() < kRequired || args.size() > 12)
        throw Error(PGFO_ERR_USAGE,
                    "expected 8 to 12 pgpool arguments (%d %h %p %D %m %H %M %P [%r %R [%N %S]]), got " +
                        std::to_string(args.size()));
    PgpoolArgs a;
    a.failed_node = node_id(args, 0);
    a.failed_host = host(args, 1);
    a.failed_port = port(args, 2);
    a.failed_data_dir = text(args, 3);
    a.new_main_node = node_id(args, 4);
    a.new_main_host = host(args, 5);
    a.old_main_node = node_id(args, 6);
    a.old_primary_node = node_id(args, 7);
    a.new_main_port = port(args, 8);
    a.new_main_data_dir = text(args, 9);
    a.old_primary_host = host(args, 10);
    a.old_primary_port = port(args, 11);
    return a;
}

} // namespace pgfo
