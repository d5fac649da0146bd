// synchronous_standby_names: parse, and rewrite it so that it names only
// standbys that exist, keeping the operator's form (FIRST n / ANY n / list).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgfo {

struct SyncSpec {
    enum class Method { None, List, First, Any };
    Method method = Method::None; // None: the setting is empty
    int num = 0;                  // how many must confirm (List: 1)
    std::vector<std::string> names; // as written, quotes removed; "*" kept
};

// Parse as PostgreSQL does: "", "a, b" (FIRST 1), "2 (a, b)" (FIRST 2),
// "FIRST 2 (a, b)", "ANY 1 (a, "B c")". Keywords are case-insensitive,
// double-quoted names keep case and may contain anything but '"' ("" inside).
// Throws pgfo::Error(PGFO_ERR_CONFIG) on a syntax error.
SyncSpec parse_sync_names(std::string_view text);

// Text PostgreSQL accepts for the spec; names are double-quoted when needed.
std::string format_sync_names(const SyncSpec &spec);

// Keep only the names present in `available` (compared case-insensitively, as
// PostgreSQL matches application_name); "*" stays when `available` is not
// empty. num becomes min(num, names left). Nothing left: "".
// The form is kept: "ANY 2 (a, b, c)" minus b -> "ANY 2 (a, c)".
std::string restrict_sync_names(std::string_view current,
                                const std::vector<std::string> &available);

// Names in `current` other than "*" (unquoted).
std::vector<std::string> sync_names_listed(std::string_view current);

} // namespace pgfo
