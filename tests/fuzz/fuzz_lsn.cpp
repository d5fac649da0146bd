// LSN text: parse, and when it parses, format and parse back to the same value.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "pg/lsn.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    auto lsn = pgfo::parse_lsn(text);
    if (!lsn) return 0;
    // At most 8 + 1 + 8 characters, all hex but the one '/'.
    PGFO_FUZZ_ASSERT(size >= 3 && size <= 17);
    std::string again = pgfo::format_lsn(*lsn);
    auto back = pgfo::parse_lsn(again);
    PGFO_FUZZ_ASSERT(back && *back == *lsn);
    PGFO_FUZZ_ASSERT(pgfo::format_lsn(*back) == again);
    return 0;
}
