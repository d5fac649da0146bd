// Locating the end of one WAL record (the old primary's shutdown checkpoint)
// by reading the WAL segment files directly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pg/lsn.h"

namespace pgfo {

// Reads `len` bytes at `offset` of the WAL segment file `file_name` (a name
// such as "000000010000000000000007", relative to pg_wal). Returns fewer bytes
// only at end of file; throws pgfo::Error(PGFO_ERR_WAL, ...) when the file
// cannot be read.
using WalReader = std::function<std::vector<uint8_t>(const std::string &file_name,
                                                     uint64_t offset, uint32_t len)>;

struct WalRecordInfo {
    Lsn start = 0;
    Lsn end = 0;          // first byte after the record, MAXALIGNed (what a standby must have flushed)
    uint32_t total_length = 0; // xl_tot_len
    Lsn prev = 0;         // xl_prev: where the record before it starts
    uint8_t rmid = 0;
    uint8_t info = 0;
};

// "000000010000000000000007" for timeline 1, the segment holding `lsn`.
std::string wal_file_name(uint32_t timeline, Lsn lsn, uint32_t segment_size);

// Read the record that starts at `start` on `timeline`: header, all of its
// bytes across page (and segment) boundaries, verify its CRC-32C, and compute
// where it ends, accounting for page headers. Throws pgfo::Error(PGFO_ERR_WAL)
// on a short read, a bad length or a CRC mismatch.
// `max_length` bounds xl_tot_len (a checkpoint record is about 110 bytes).
WalRecordInfo read_wal_record(const WalReader &reader, uint32_t timeline, Lsn start,
                              uint32_t segment_size, uint32_t block_size,
                              uint32_t max_length = 64 * 1024);

// Where a run of valid records on `timeline` ends: from the record at
// `start` (a record start; an LSN at a page boundary means the record after
// that page's header), each record's end is the next one's start, until a
// record does not validate (missing or short file, a page not written yet or
// recycled, xl_tot_len 0 or out of range, xl_prev not naming the record
// before, a CRC mismatch), as crash recovery finds the end of WAL.
struct WalScan {
    Lsn end = 0;          // end of the last valid record (start when none is valid)
    uint64_t records = 0; // valid records read
    std::string stopped;  // why the next record did not validate
};
WalScan scan_wal_end(const WalReader &reader, uint32_t timeline, Lsn start, uint32_t segment_size,
                     uint32_t block_size);

// Where a record of `total_length` bytes starting at `start` ends
// (MAXALIGNed), counting the page headers it crosses (long on a segment's
// first page). Throws pgfo::Error(PGFO_ERR_WAL) on bad sizes.
Lsn record_end(Lsn start, uint32_t total_length, uint32_t segment_size, uint32_t block_size);

// xl_tot_len of a shutdown checkpoint record written by the PostgreSQL
// major that writes pg_control version `control_version`; 0 when unknown.
uint32_t shutdown_checkpoint_length(uint32_t control_version);

// True when the record is a shutdown checkpoint (RM_XLOG_ID, XLOG_CHECKPOINT_SHUTDOWN).
bool is_shutdown_checkpoint(const WalRecordInfo &rec);

} // namespace pgfo
