// Reading one WAL record straight from the segment files, the way
// PostgreSQL's xlogreader (XLogReadRecord) does, to learn where it ends.
//
// Layout facts (src/include/access/xlog_internal.h, xlogrecord.h), MAXALIGN 8:
//  - A segment is a run of pages of XLOG_BLCKSZ bytes. Every page starts with
//    XLogPageHeaderData: xlp_magic u16 @0, xlp_info u16 @2, xlp_tli u32 @4,
//    xlp_pageaddr u64 @8, xlp_rem_len u32 @16; SizeOfXLogShortPHD = 24.
//    The first page of a segment has XLogLongPageHeaderData instead (adds
//    xlp_sysid u64 @24, xlp_seg_size u32 @32, xlp_xlog_blcksz u32 @36);
//    SizeOfXLogLongPHD = 40, flagged by XLP_LONG_HEADER in xlp_info.
//  - A record continued from the previous page sets XLP_FIRST_IS_CONTRECORD
//    and xlp_rem_len to the bytes of that record still to come.
//  - A record starts MAXALIGNed with XLogRecord: xl_tot_len u32 @0,
//    xl_xid u32 @4, xl_prev u64 @8, xl_info u8 @16, xl_rmid u8 @17,
//    xl_crc u32 @20; SizeOfXLogRecord = 24. xl_tot_len counts the header and
//    the data, not the page headers in between.
//  - xl_crc: CRC-32C over the bytes after the header, then over the header
//    up to xl_crc (XLogRecordCheckCRC / XLogRecordAssemble).
//  - EndRecPtr: the byte after the record's last one, MAXALIGNed.
#include "pg/walrecord.h"

#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "pg/crc32c.h"

namespace pgfo {

namespace {

constexpr uint32_t kMaxAlign = 8;
constexpr uint32_t kShortPageHeader = 24;       // SizeOfXLogShortPHD
constexpr uint32_t kLongPageHeader = 40;        // SizeOfXLogLongPHD
constexpr uint16_t kFirstIsContRecord = 0x0001; // XLP_FIRST_IS_CONTRECORD
constexpr uint16_t kLongHeaderFlag = 0x0002;    // XLP_LONG_HEADER
constexpr uint32_t kRecordHeader = 24;          // SizeOfXLogRecord
constexpr size_t kOffXlCrc = 20;                // offsetof(XLogRecord, xl_crc)
// XLogRecordMaxSize (PostgreSQL 16+; older servers allow no larger record either).
constexpr uint32_t kMaxAnyRecordLength = 1020u * 1024 * 1024;

constexpr uint8_t kRmXlogId = 0;                // RM_XLOG_ID
constexpr uint8_t kCheckpointShutdown = 0x00;   // XLOG_CHECKPOINT_SHUTDOWN
constexpr uint8_t kXlrRmgrInfoMask = 0xF0;      // XLR_RMGR_INFO_MASK

[[noreturn]] void fail(const std::string &msg) { throw Error(PGFO_ERR_WAL, msg); }

uint16_t load_u16(const uint8_t *p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t load_u32(const uint8_t *p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t load_u64(const uint8_t *p) { return uint64_t(load_u32(p)) | uint64_t(load_u32(p + 4)) << 32; }

std::string hex32(uint32_t value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08X", value);
    return buf;
}

Lsn maxalign(Lsn lsn) { return (lsn + kMaxAlign - 1) & ~Lsn(kMaxAlign - 1); }

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// IsValidWalSegSize: a power of two from 1 MB to 1 GB.
void check_segment_size(uint32_t segment_size) {
    if (!is_power_of_two(segment_size) || segment_size < (1u << 20) || segment_size > (1u << 30))
        fail("invalid WAL segment size " + std::to_string(segment_size) +
             " (expected a power of two from 1 MB to 1 GB)");
}

// XLOG_BLCKSZ: a power of two from 1 kB to 64 kB, and a segment holds whole pages.
void check_block_size(uint32_t block_size, uint32_t segment_size) {
    if (!is_power_of_two(block_size) || block_size < 1024 || block_size > 65536 ||
        block_size > segment_size)
        fail("invalid WAL block size " + std::to_string(block_size) +
             " (expected a power of two from 1024 to 65536)");
}

// Reads WAL pages of one timeline and checks that each is the page asked for.
class PageSource {
public:
    PageSource(const WalReader &reader, uint32_t timeline, uint32_t segment_size,
               uint32_t block_size)
        : reader_(reader), timeline_(timeline), segment_size_(segment_size),
          block_size_(block_size) {}

    // Size of the header of the page that begins at `page`.
    uint32_t header_size(Lsn page) const {
        return page % segment_size_ == 0 ? kLongPageHeader : kShortPageHeader;
    }

    // The whole page that begins at `page`, header checked.
    std::vector<uint8_t> read(Lsn page) const {
        std::string file = wal_file_name(timeline_, page, segment_size_);
        uint64_t offset = page % segment_size_;
        std::vector<uint8_t> bytes = call_reader(file, offset);
        if (bytes.size() < block_size_)
            fail("short read of WAL file " + file + " at offset " + std::to_string(offset) +
                 ": got " + std::to_string(bytes.size()) + " of " +
                 std::to_string(block_size_) + " bytes");
        check_header(bytes, page, file);
        return bytes;
    }

private:
    std::vector<uint8_t> call_reader(const std::string &file, uint64_t offset) const {
        try {
            return reader_(file, offset, block_size_);
        } catch (const Error &) {
            throw;
        } catch (const std::exception &e) {
            fail("reading WAL file " + file + " at offset " + std::to_string(offset) + ": " +
                 e.what());
        }
    }

    // xlp_pageaddr must name this very page: a recycled segment still holds
    // old pages with an older address. XLP_LONG_HEADER exactly on segment starts.
    void check_header(const std::vector<uint8_t> &bytes, Lsn page, const std::string &file) const {
        Lsn pageaddr = load_u64(bytes.data() + 8);
        if (pageaddr != page)
            fail("WAL page " + format_lsn(page) + " in file " + file + " has xlp_pageaddr " +
                 format_lsn(pageaddr) + ": not written yet, or a recycled segment");
        bool long_header = (load_u16(bytes.data() + 2) & kLongHeaderFlag) != 0;
        if (long_header != (header_size(page) == kLongPageHeader))
            fail("WAL page " + format_lsn(page) + " in file " + file +
                 (long_header ? " has a long header but does not start a segment"
                              : " starts a segment but lacks the long header"));
    }

    const WalReader &reader_;
    uint32_t timeline_;
    uint32_t segment_size_;
    uint32_t block_size_;
};

void check_start(Lsn start, uint32_t header, uint32_t block_size) {
    if (start % kMaxAlign != 0)
        fail("WAL record start " + format_lsn(start) + " is not 8-byte aligned");
    if (start % block_size < header)
        fail("WAL record start " + format_lsn(start) + " lies inside a page header");
}

uint32_t checked_total_length(uint32_t tot_len, Lsn start, uint32_t max_length) {
    if (tot_len == 0)
        fail("no WAL record at " + format_lsn(start) + ": xl_tot_len is 0 (nothing written there)");
    if (tot_len < kRecordHeader || tot_len > max_length)
        fail("invalid xl_tot_len " + std::to_string(tot_len) + " of WAL record at " +
             format_lsn(start) + " (expected " + std::to_string(kRecordHeader) + " to " +
             std::to_string(max_length) + ")");
    return tot_len;
}

// A continuation page must say it continues a record, with the bytes left.
void check_continuation(const std::vector<uint8_t> &page_bytes, Lsn page, Lsn start,
                        uint32_t remaining) {
    uint16_t info = load_u16(page_bytes.data() + 2);
    uint32_t rem_len = load_u32(page_bytes.data() + 16);
    if (!(info & kFirstIsContRecord))
        fail("WAL record at " + format_lsn(start) + " continues on page " + format_lsn(page) +
             ", which has no XLP_FIRST_IS_CONTRECORD flag");
    if (rem_len != remaining)
        fail("WAL page " + format_lsn(page) + " has xlp_rem_len " + std::to_string(rem_len) +
             ", but the record at " + format_lsn(start) + " has " + std::to_string(remaining) +
             " bytes left");
}

// XLogRecordCheckCRC: data after the header first, then the header before xl_crc.
void check_crc(const std::vector<uint8_t> &record, Lsn start) {
    uint32_t crc = crc32c_update(0xFFFFFFFFu, record.data() + kRecordHeader,
                                 record.size() - kRecordHeader);
    crc = crc32c_update(crc, record.data(), kOffXlCrc) ^ 0xFFFFFFFFu;
    uint32_t stored = load_u32(record.data() + kOffXlCrc);
    if (crc != stored)
        fail("WAL record at " + format_lsn(start) + ": CRC mismatch: computed " + hex32(crc) +
             ", stored " + hex32(stored) + " (xl_tot_len " + std::to_string(record.size()) + ")");
}

} // namespace

std::string wal_file_name(uint32_t timeline, Lsn lsn, uint32_t segment_size) {
    check_segment_size(segment_size);
    // XLogFileName: timeline, then segno split into XLogSegmentsPerXLogId parts.
    uint64_t segno = lsn / segment_size;
    uint64_t per_id = 0x100000000ull / segment_size;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08X%08X%08X", timeline,
                  static_cast<unsigned>(segno / per_id), static_cast<unsigned>(segno % per_id));
    return buf;
}

WalRecordInfo read_wal_record(const WalReader &reader, uint32_t timeline, Lsn start,
                              uint32_t segment_size, uint32_t block_size, uint32_t max_length) {
    check_segment_size(segment_size);
    check_block_size(block_size, segment_size);
    PageSource pages(reader, timeline, segment_size, block_size);

    Lsn page = start - start % block_size;
    check_start(start, pages.header_size(page), block_size);
    std::vector<uint8_t> bytes = pages.read(page);
    size_t in_page = start - page; // at most block_size - 8: xl_tot_len is on this page
    uint32_t tot_len = checked_total_length(load_u32(bytes.data() + in_page), start, max_length);

    std::vector<uint8_t> record;
    record.reserve(std::min<uint32_t>(tot_len, 1u << 20)); // a garbage length must not allocate
    size_t take = std::min<size_t>(tot_len, block_size - in_page);
    record.insert(record.end(), bytes.begin() + in_page, bytes.begin() + in_page + take);

    while (record.size() < tot_len) {
        page += block_size;
        bytes = pages.read(page);
        uint32_t remaining = tot_len - static_cast<uint32_t>(record.size());
        check_continuation(bytes, page, start, remaining);
        uint32_t header = pages.header_size(page);
        take = std::min<size_t>(remaining, block_size - header);
        record.insert(record.end(), bytes.begin() + header, bytes.begin() + header + take);
    }
    check_crc(record, start);

    WalRecordInfo info;
    info.start = start;
    info.end = record_end(start, tot_len, segment_size, block_size);
    info.total_length = tot_len;
    info.prev = load_u64(record.data() + 8); // xl_prev
    info.info = record[16]; // xl_info
    info.rmid = record[17]; // xl_rmid
    return info;
}

Lsn record_end(Lsn start, uint32_t total_length, uint32_t segment_size, uint32_t block_size) {
    check_segment_size(segment_size);
    check_block_size(block_size, segment_size);
    Lsn page = start - start % block_size;
    uint64_t left = total_length;
    uint64_t room = block_size - (start - page);
    if (left <= room) return maxalign(start + left);
    left -= room;
    for (;;) {
        page += block_size;
        // XLogPageHeaderData is long on the first page of a segment
        uint32_t header = page % segment_size == 0 ? kLongPageHeader : kShortPageHeader;
        uint64_t take = std::min<uint64_t>(left, block_size - header);
        left -= take;
        if (left == 0) return maxalign(page + header + take);
    }
}

uint32_t shutdown_checkpoint_length(uint32_t control_version) {
    // SizeOfXLogRecord (24) + XLR_BLOCK_ID_DATA_SHORT header (2) +
    // sizeof(CheckPoint): 80 bytes up to PostgreSQL 11 (32-bit nextXid plus
    // an epoch), 88 from 12 (FullTransactionId nextXid; 17's wal_level
    // fills padding). Measured with every major's own server in the
    // version tests, which fail when a record disagrees.
    switch (control_version) {
    case 1100: return 106;
    case 1201: case 1300: case 1700: case 1800: return 114;
    default: return 0;
    }
}

WalScan scan_wal_end(const WalReader &reader, uint32_t timeline, Lsn start, uint32_t segment_size,
                     uint32_t block_size) {
    check_segment_size(segment_size);
    check_block_size(block_size, segment_size);
    WalScan scan;
    scan.end = start;
    Lsn prev = 0; // unknown for the first record
    for (;;) {
        // A record never starts in a page header: the end of a record that
        // fills its page to the last byte is the start of the next page.
        Lsn at = scan.end;
        if (at % block_size == 0) at += at % segment_size == 0 ? kLongPageHeader : kShortPageHeader;
        WalRecordInfo rec;
        try {
            rec = read_wal_record(reader, timeline, at, segment_size, block_size, kMaxAnyRecordLength);
        } catch (const Error &e) {
            scan.stopped = e.what();
            return scan;
        }
        if (prev && rec.prev != prev) {
            scan.stopped = "WAL record at " + format_lsn(at) + " has xl_prev " + format_lsn(rec.prev) +
                           ", not the record before it at " + format_lsn(prev);
            return scan;
        }
        prev = at;
        scan.end = rec.end;
        ++scan.records;
    }
}

bool is_shutdown_checkpoint(const WalRecordInfo &rec) {
    return rec.rmid == kRmXlogId && (rec.info & kXlrRmgrInfoMask) == kCheckpointShutdown;
}

} // namespace pgfo
