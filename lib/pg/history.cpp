// Timeline history files, as PostgreSQL writes them (writeTimeLineHistory in
// src/backend/access/transam/timeline.c): one line per ancestor timeline,
//   "<parent tli>\t<switch point %X/%X>\t<reason>\n"
// after the parent's own lines; lines that are blank or whose first
// non-blank character is '#' are ignored (readTimeLineHistory).
#include "pg/history.h"

#include <cctype>
#include <cstdio>

#include "core/error.h"

namespace pgfo {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

// Splits off the leading run of non-blank characters.
std::string_view next_field(std::string_view &rest) {
    rest = trim(rest);
    size_t n = 0;
    while (n < rest.size() && !is_blank(rest[n])) ++n;
    std::string_view field = rest.substr(0, n);
    rest.remove_prefix(n);
    return field;
}

[[noreturn]] void fail(size_t line_no, const std::string &what, std::string_view line) {
    throw Error(PGFO_ERR_STATE, "timeline history line " + std::to_string(line_no) + ": " +
                                    what + ": \"" + std::string(trim(line)) + "\"");
}

std::optional<uint32_t> parse_timeline(std::string_view text) {
    if (text.empty() || text.size() > 10) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value == 0 || value > 0xFFFFFFFFull) return std::nullopt; // TimeLineID 0 is invalid
    return static_cast<uint32_t>(value);
}

HistoryEntry parse_line(std::string_view line, size_t line_no) {
    std::string_view rest = line;
    auto tli = parse_timeline(next_field(rest));
    if (!tli) fail(line_no, "expected a numeric timeline ID", line);
    auto lsn = parse_lsn(next_field(rest));
    if (!lsn) fail(line_no, "expected a switch point location (hi/lo hex)", line);
    HistoryEntry entry;
    entry.parent_timeline = *tli;
    entry.switch_point = *lsn;
    entry.reason = std::string(trim(rest));
    return entry;
}

} // namespace

std::vector<HistoryEntry> parse_history(std::string_view text) {
    std::vector<HistoryEntry> entries;
    size_t line_no = 0;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++line_no;
        std::string_view content = trim(line);
        if (content.empty() || content.front() == '#') continue;
        HistoryEntry entry = parse_line(line, line_no);
        // readTimeLineHistory: "Timeline IDs must be in increasing sequence."
        if (!entries.empty() && entry.parent_timeline <= entries.back().parent_timeline)
            fail(line_no, "timeline IDs must be in increasing sequence", line);
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::optional<Lsn> switch_point_from(const std::vector<HistoryEntry> &entries,
                                     uint32_t parent_timeline) {
    for (const HistoryEntry &entry : entries)
        if (entry.parent_timeline == parent_timeline) return entry.switch_point;
    return std::nullopt;
}

std::string history_conflict(uint32_t node_timeline, const std::vector<HistoryEntry> &node_history,
                             uint32_t timeline, const std::vector<HistoryEntry> &history) {
    const std::string node_tl = "timeline " + std::to_string(node_timeline);
    if (node_timeline > timeline)
        return "the node's " + node_tl + " is newer than the primary's timeline " + std::to_string(timeline);
    if (node_timeline < timeline && !switch_point_from(history, node_timeline))
        return "the node's " + node_tl + " is not in the history of timeline " + std::to_string(timeline);
    for (const HistoryEntry &mine : node_history) {
        auto theirs = switch_point_from(history, mine.parent_timeline);
        if (theirs && *theirs == mine.switch_point) continue;
        return "the histories differ: the node's " + node_tl + " left timeline " +
               std::to_string(mine.parent_timeline) + " at " + format_lsn(mine.switch_point) + ", timeline " +
               std::to_string(timeline) + (theirs ? " at " + format_lsn(*theirs) : " never came from it") +
               (node_timeline == timeline ? " (two nodes were promoted to the same timeline number)" : "");
    }
    // Every ancestor of the node's timeline is in its own history file, so a
    // primary's entry below node_timeline that the node lacks is a difference too.
    for (const HistoryEntry &e : history) {
        if (e.parent_timeline >= node_timeline) break;
        if (!switch_point_from(node_history, e.parent_timeline))
            return "the histories differ: timeline " + std::to_string(timeline) + " descends from timeline " +
                   std::to_string(e.parent_timeline) + ", which the node's " + node_tl + " does not";
    }
    return "";
}

std::string history_file_name(uint32_t timeline) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08X.history", timeline); // TLHistoryFileName
    return buf;
}

} // namespace pgfo
