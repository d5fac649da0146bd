// CRC-32C (Castagnoli), as PostgreSQL uses it for pg_control and WAL records.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pgfo {

// Raw update without the initial/final inversion. PostgreSQL's INIT_CRC32C
// is 0xFFFFFFFF and FIN_CRC32C xors with 0xFFFFFFFF.
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
// Complete CRC-32C of one buffer (init, update, finish).
uint32_t crc32c(const void *data, size_t len);

} // namespace pgfo
