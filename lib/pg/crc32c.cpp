// CRC-32C (Castagnoli polynomial, reflected form 0x82F63B78), byte-wise and
// table-driven. PostgreSQL computes the same function (pg_crc32c.h) for
// pg_control and for WAL records, with INIT_CRC32C = 0xFFFFFFFF and
// FIN_CRC32C = xor 0xFFFFFFFF.
#include "pg/crc32c.h"

#include <array>

namespace pgfo {

namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 1u) ? (crc >> 1) ^ kPolyReflected : crc >> 1;
        table[i] = crc;
    }
    return table;
}

constexpr std::array<uint32_t, 256> kTable = make_table();

} // namespace

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < len; ++i)
        crc = kTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return crc;
}

uint32_t crc32c(const void *data, size_t len) {
    return crc32c_update(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu;
}

} // namespace pgfo
