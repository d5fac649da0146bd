// pg_control (global/pg_control) read directly: PostgreSQL 11 to 18.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "pg/lsn.h"

namespace pgfo {

struct ControlData {
    uint64_t system_identifier = 0;
    uint32_t control_version = 0; // 1100, 1201, 1300, 1700, 1800
    uint32_t catalog_version = 0;
    int32_t state = 0;            // pgfo_db_state_t
    int64_t time = 0;             // last modified, Unix time
    Lsn checkpoint = 0;           // "Latest checkpoint location": start of the record
    Lsn redo = 0;                 // checkpoint REDO location
    uint32_t timeline = 0;        // checkpoint's ThisTimeLineID
    uint32_t prev_timeline = 0;   // checkpoint's PrevTimeLineID
    Lsn min_recovery_point = 0;   // "Minimum recovery ending location" (standbys; 0 otherwise)
    uint32_t min_recovery_timeline = 0;
    uint32_t wal_block_size = 0;  // xlog_blcksz
    uint32_t wal_segment_size = 0;// xlog_seg_size
    bool wal_log_hints = false;
    uint32_t data_checksum_version = 0;
};

// Parse and CRC-check the bytes of a pg_control file (normally 8192 bytes).
// Throws pgfo::Error(PGFO_ERR_PG_CONTROL, ...) naming what is wrong: too short,
// unknown pg_control version, CRC mismatch, implausible sizes.
ControlData parse_control(const uint8_t *data, size_t len);

// "shut down", "in production", ... as pg_controldata prints them.
const char *db_state_name(int32_t state);

// Oldest PostgreSQL major that writes this pg_control version (0 if unknown).
int control_version_major(uint32_t control_version);

} // namespace pgfo
