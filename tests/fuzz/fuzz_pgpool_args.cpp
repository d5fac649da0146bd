// pgpool hook arguments: the input split on NUL bytes is the argument vector.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "pgpool/args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::vector<std::string> args;
    std::string cur;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            args.push_back(cur);
            cur.clear();
        } else {
            cur += static_cast<char>(data[i]);
        }
    }
    if (size > 0) args.push_back(cur);
    try {
        pgfo::PgpoolArgs a = pgfo::parse_pgpool_args(args);
        PGFO_FUZZ_ASSERT(args.size() >= 8 && args.size() <= 12);
        for (int id : {a.failed_node, a.new_main_node, a.old_main_node, a.old_primary_node})
            PGFO_FUZZ_ASSERT(id >= -1 && id <= 127);
        for (const auto &p : {a.failed_port, a.new_main_port, a.old_primary_port})
            PGFO_FUZZ_ASSERT(!p || (*p >= 1 && *p <= 65535));
        for (const auto &h : {a.failed_host, a.new_main_host, a.old_primary_host})
            if (h)
                for (unsigned char c : *h) PGFO_FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_USAGE);
    }
    return 0;
}
