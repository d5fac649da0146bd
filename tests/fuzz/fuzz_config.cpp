// pgfailover.conf: the input is the file, read through load_config (inih,
// validation) from an in-memory file.
#include <cstdint>

#include "config/config.h"
#include "core/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pgfo_fuzz::MemFile f(data, size);
    try {
        pgfo::Config cfg = pgfo::load_config(f.path());
        // What loaded must pass validation again, and every node has a host.
        pgfo::validate_config(cfg);
        for (const auto &[id, n] : cfg.nodes) {
            PGFO_FUZZ_ASSERT(id >= 0 && id <= 127 && n.id == id);
            PGFO_FUZZ_ASSERT(!n.host.empty());
        }
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_CONFIG || e.code() == PGFO_ERR_NOMEM);
    }
    return 0;
}
