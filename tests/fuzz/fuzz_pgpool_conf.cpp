// pgpool.conf backend_* lines: the input is the file.
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "config/pgpool_conf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pgfo_fuzz::MemFile f(data, size);
    try {
        auto backends = pgfo::read_pgpool_backends(f.path());
        for (const auto &[id, b] : backends) {
            PGFO_FUZZ_ASSERT(id >= 0 && id <= 127 && b.id == id);
            PGFO_FUZZ_ASSERT(b.port == 0 || (b.port >= 1 && b.port <= 65535));
            for (const std::string *v : {&b.host, &b.data_directory, &b.application_name})
                for (unsigned char c : *v) PGFO_FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
        }
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_CONFIG);
    }
    return 0;
}
