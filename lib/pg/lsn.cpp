// Log sequence numbers: parsing and printing the "hi/lo" text form that
// PostgreSQL uses (pg_lsn output, pg_controldata, history files).
#include "pg/lsn.h"

#include <cstdio>

namespace pgfo {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// One half of an LSN: 1 to 8 hex digits, nothing else.
std::optional<uint32_t> parse_half(std::string_view text) {
    if (text.empty() || text.size() > 8) return std::nullopt;
    uint32_t value = 0;
    for (char c : text) {
        int digit = hex_value(c);
        if (digit < 0) return std::nullopt;
        value = (value << 4) | static_cast<uint32_t>(digit);
    }
    return value;
}

} // namespace

std::optional<Lsn> parse_lsn(std::string_view text) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto hi = parse_half(text.substr(0, slash));
    auto lo = parse_half(text.substr(slash + 1)); // a second '/' is not a hex digit
    if (!hi || !lo) return std::nullopt;
    return (static_cast<Lsn>(*hi) << 32) | *lo;
}

std::string format_lsn(Lsn lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return buf;
}

} // namespace pgfo
