// Timeline history files (pg_wal/0000000N.history).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg/lsn.h"

namespace pgfo {

struct HistoryEntry {
    uint32_t parent_timeline = 0;
    Lsn switch_point = 0;
    std::string reason;
};

// Parse the text of a history file: lines "<tli>\t<lsn>\t<reason>", '#'
// comments and blank lines ignored. Throws pgfo::Error(PGFO_ERR_STATE) with the
// line number on a malformed line.
std::vector<HistoryEntry> parse_history(std::string_view text);

// Switch point at which the history leaves `parent_timeline`.
std::optional<Lsn> switch_point_from(const std::vector<HistoryEntry> &entries,
                                     uint32_t parent_timeline);

// Can a node on `node_timeline` with history `node_history` continue into
// `timeline` with history `history`? Empty when the histories agree: the
// node's timeline is `timeline` or one of its ancestors, and every switch
// point the node knows is the same in `history`. Otherwise why not: two
// nodes promoted to the same timeline number from different points share
// the number, not the history.
std::string history_conflict(uint32_t node_timeline, const std::vector<HistoryEntry> &node_history,
                             uint32_t timeline, const std::vector<HistoryEntry> &history);

// "00000002.history"
std::string history_file_name(uint32_t timeline);

} // namespace pgfo
