// Log sequence numbers: the 64-bit WAL position and its "hi/lo" text form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgfo {

using Lsn = uint64_t;

// "0/6F6F558" -> 0x6F6F558. Both halves hex, 1..8 digits, nothing else
// (no spaces, no sign). nullopt on anything else.
std::optional<Lsn> parse_lsn(std::string_view text);
// 0x6F6F558 -> "0/6F6F558" (upper-case hex, as PostgreSQL prints it).
std::string format_lsn(Lsn lsn);

} // namespace pgfo
