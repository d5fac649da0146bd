// pg_control: the input is the file. Parsed as is (almost always a CRC
// mismatch), then once more with the CRC made right for the version the bytes
// claim, so that the checks after the CRC are reached too.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "pg/control.h"
#include "pg/crc32c.h"

namespace {

void parse(const uint8_t *data, size_t size) {
    try {
        pgfo::ControlData cd = pgfo::parse_control(data, size);
        PGFO_FUZZ_ASSERT(pgfo::control_version_major(cd.control_version) >= 11);
        PGFO_FUZZ_ASSERT(cd.state >= 0 && cd.state <= 6);
        PGFO_FUZZ_ASSERT(std::strcmp(pgfo::db_state_name(cd.state), "unrecognized status code") != 0);
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_PG_CONTROL);
    }
}

// offsetof(ControlFileData, crc) per pg_control version (see lib/pg/control.cpp).
size_t crc_offset(uint32_t version) {
    switch (version) {
    case 1100: return 280;
    case 1201:
    case 1300:
    case 1700: return 288;
    case 1800: return 292;
    default: return 0;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse(size ? data : nullptr, size);
    if (size < 12) return 0;
    uint32_t version;
    std::memcpy(&version, data + 8, 4);
    size_t off = crc_offset(version);
    if (off == 0 || size < off + 4) return 0;
    std::vector<uint8_t> fixed(data, data + size);
    uint32_t crc = pgfo::crc32c(fixed.data(), off);
    std::memcpy(fixed.data() + off, &crc, 4);
    parse(fixed.data(), fixed.size());
    return 0;
}
