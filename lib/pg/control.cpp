// pg_control (global/pg_control) read directly, PostgreSQL 11 to 18.
//
// The file is ControlFileData (src/include/catalog/pg_control.h) written in
// the machine's native layout, zero-padded to PG_CONTROL_FILE_SIZE (8192),
// with a CRC-32C over every byte before the `crc` member. The leading fields
// are at the same offsets in every supported version; the ones further down
// move whenever PostgreSQL adds or drops a field, and so does the CRC.
//
// Layout facts for x86-64 and other little-endian 64-bit targets (MAXALIGN 8).
// Offsets derived from ControlFileData/CheckPoint of each major and checked
// against real files of every major (CRC found at exactly that offset; values
// equal to pg_control_init()/pg_controldata; diffs between clusters created
// with different wal_log_hints, data checksums and WAL segment sizes).
#include "pg/control.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "pg/crc32c.h"

namespace pgfo {

namespace {

// Fields whose offset is the same from 11 to 18.
constexpr size_t kOffSystemIdentifier = 0;  // uint64 system_identifier
constexpr size_t kOffControlVersion = 8;    // uint32 pg_control_version
constexpr size_t kOffCatalogVersion = 12;   // uint32 catalog_version_no
constexpr size_t kOffState = 16;            // DBState state (an int-sized enum)
constexpr size_t kOffTime = 24;             // pg_time_t time (int64, 8-aligned)
constexpr size_t kOffCheckPoint = 32;       // XLogRecPtr checkPoint
// CheckPoint checkPointCopy starts at 40 (10 and older had prevCheckPoint here).
constexpr size_t kOffRedo = 40;             // checkPointCopy.redo
constexpr size_t kOffThisTimeLine = 48;     // checkPointCopy.ThisTimeLineID
constexpr size_t kOffPrevTimeLine = 52;     // checkPointCopy.PrevTimeLineID

constexpr double kFloatFormat = 1234567.0;  // FLOATFORMAT_VALUE

// Offsets that depend on the pg_control version.
struct Layout {
    uint32_t version;
    int first_major;
    size_t min_recovery_point;    // XLogRecPtr minRecoveryPoint (after checkPointCopy, unloggedLSN)
    size_t min_recovery_tli;      // TimeLineID minRecoveryPointTLI
    size_t wal_log_hints;         // bool wal_log_hints
    size_t float_format;          // double floatFormat
    size_t xlog_blcksz;           // uint32 xlog_blcksz
    size_t xlog_seg_size;         // uint32 xlog_seg_size
    size_t data_checksum_version; // uint32 data_checksum_version
    size_t crc;                   // pg_crc32c crc, offsetof(ControlFileData, crc)
};

// 1100 (PG 11): CheckPoint is 80 bytes (nextXidEpoch + nextXid as two uint32),
//   no max_wal_senders in ControlFileData; float4ByVal and float8ByVal.
// 1201 (PG 12): CheckPoint.nextFullXid (FullTransactionId, 8-aligned) makes
//   CheckPoint 88 bytes; max_wal_senders added. Everything below moves by 8.
// 1300 (PG 13-16): float4ByVal dropped; it only shared padding, nothing moves.
// 1700 (PG 17): CheckPoint.wal_level added into padding, nothing moves.
// 1800 (PG 18): bool default_char_signedness after data_checksum_version
//   pushes mock_authentication_nonce[32] to 257 and crc to 292.
constexpr Layout kLayouts[] = {
    {1100, 11, 128, 136, 168, 200, 216, 220, 244, 280},
    {1201, 12, 136, 144, 176, 208, 224, 228, 252, 288},
    {1300, 13, 136, 144, 176, 208, 224, 228, 252, 288},
    {1700, 17, 136, 144, 176, 208, 224, 228, 252, 288},
    {1800, 18, 136, 144, 176, 208, 224, 228, 252, 292},
};

const Layout *find_layout(uint32_t version) {
    for (const Layout &layout : kLayouts)
        if (layout.version == version) return &layout;
    return nullptr;
}

// Little-endian loads; callers have checked the length.
uint32_t load_u32(const uint8_t *p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint64_t load_u64(const uint8_t *p) {
    return uint64_t(load_u32(p)) | uint64_t(load_u32(p + 4)) << 32;
}

double load_f64(const uint8_t *p) {
    uint64_t bits = load_u64(p);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

std::string hex32(uint32_t value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08X", value);
    return buf;
}

[[noreturn]] void fail(const std::string &msg) { throw Error(PGFO_ERR_PG_CONTROL, msg); }

std::string supported_versions() {
    std::string out;
    for (const Layout &layout : kLayouts) {
        if (!out.empty()) out += ", ";
        out += std::to_string(layout.version);
    }
    return out;
}

uint32_t byte_swap32(uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
}

const Layout &layout_for(uint32_t version) {
    if (const Layout *layout = find_layout(version)) return *layout;
    std::string msg = "unknown pg_control version " + std::to_string(version);
    if (find_layout(byte_swap32(version)))
        msg += " (byte-swapped " + std::to_string(byte_swap32(version)) +
               ": written by a machine of the other byte order)";
    else if (version > 0 && version < 1100)
        msg += " (PostgreSQL 10 or older, not supported)";
    else
        msg += " (not a pg_control file, or a PostgreSQL release newer than this build knows)";
    fail(msg + "; supported: " + supported_versions());
}

void check_crc(const uint8_t *data, const Layout &layout) {
    uint32_t computed = crc32c(data, layout.crc);
    uint32_t stored = load_u32(data + layout.crc);
    if (computed != stored)
        fail("pg_control CRC mismatch: computed " + hex32(computed) + ", stored " +
             hex32(stored) + " (file corrupt or torn read)");
}

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// The CRC says the bytes are as written; these say the layout table is right.
void check_plausible(const ControlData &cd, double float_format) {
    if (float_format != kFloatFormat)
        fail("pg_control floatFormat reads " + std::to_string(float_format) +
             ", expected 1234567.0: layout of pg_control version " +
             std::to_string(cd.control_version) + " does not match this file");
    if (cd.state < 0 || cd.state > 6)
        fail("pg_control state " + std::to_string(cd.state) + " is not a known DBState");
    // XLOG_BLCKSZ: configure allows 1..64 kB, powers of two.
    if (!is_power_of_two(cd.wal_block_size) || cd.wal_block_size < 1024 ||
        cd.wal_block_size > 65536)
        fail("pg_control WAL block size " + std::to_string(cd.wal_block_size) +
             " is implausible (expected a power of two from 1024 to 65536)");
    // IsValidWalSegSize: a power of two from 1 MB to 1 GB.
    if (!is_power_of_two(cd.wal_segment_size) || cd.wal_segment_size < (1u << 20) ||
        cd.wal_segment_size > (1u << 30))
        fail("pg_control WAL segment size " + std::to_string(cd.wal_segment_size) +
             " is implausible (expected a power of two from 1 MB to 1 GB)");
}

} // namespace

ControlData parse_control(const uint8_t *data, size_t len) {
    if (data == nullptr || len < kOffCatalogVersion)
        fail("pg_control too short: " + std::to_string(data ? len : 0) +
             " bytes, cannot even hold the version field");
    uint32_t version = load_u32(data + kOffControlVersion);
    const Layout &layout = layout_for(version);
    size_t needed = layout.crc + 4;
    if (len < needed)
        fail("pg_control too short: " + std::to_string(len) + " bytes, version " +
             std::to_string(version) + " needs " + std::to_string(needed) +
             " (normally 8192): truncated file or short read");
    check_crc(data, layout);

    ControlData cd;
    cd.system_identifier = load_u64(data + kOffSystemIdentifier);
    cd.control_version = version;
    cd.catalog_version = load_u32(data + kOffCatalogVersion);
    cd.state = static_cast<int32_t>(load_u32(data + kOffState));
    cd.time = static_cast<int64_t>(load_u64(data + kOffTime));
    cd.checkpoint = load_u64(data + kOffCheckPoint);
    cd.redo = load_u64(data + kOffRedo);
    cd.timeline = load_u32(data + kOffThisTimeLine);
    cd.prev_timeline = load_u32(data + kOffPrevTimeLine);
    cd.min_recovery_point = load_u64(data + layout.min_recovery_point);
    cd.min_recovery_timeline = load_u32(data + layout.min_recovery_tli);
    cd.wal_block_size = load_u32(data + layout.xlog_blcksz);
    cd.wal_segment_size = load_u32(data + layout.xlog_seg_size);
    cd.wal_log_hints = data[layout.wal_log_hints] != 0;
    cd.data_checksum_version = load_u32(data + layout.data_checksum_version);
    check_plausible(cd, load_f64(data + layout.float_format));
    return cd;
}

const char *db_state_name(int32_t state) {
    // pg_controldata's dbState()
    switch (state) {
    case 0: return "starting up";
    case 1: return "shut down";
    case 2: return "shut down in recovery";
    case 3: return "shutting down";
    case 4: return "in crash recovery";
    case 5: return "in archive recovery";
    case 6: return "in production";
    default: return "unrecognized status code";
    }
}

int control_version_major(uint32_t control_version) {
    const Layout *layout = find_layout(control_version);
    return layout ? layout->first_major : 0;
}

} // namespace pgfo
