// Timeline history files: the input is the file's text.
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "pg/history.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    try {
        auto entries = pgfo::parse_history(text);
        for (size_t i = 0; i < entries.size(); ++i) {
            PGFO_FUZZ_ASSERT(entries[i].parent_timeline != 0);
            if (i > 0) PGFO_FUZZ_ASSERT(entries[i].parent_timeline > entries[i - 1].parent_timeline);
            auto sp = pgfo::switch_point_from(entries, entries[i].parent_timeline);
            PGFO_FUZZ_ASSERT(sp && *sp == entries[i].switch_point);
        }
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_STATE);
    }
    return 0;
}
