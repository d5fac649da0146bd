// pg_control parsing against real files of PostgreSQL 11 to 18. The expected
// values in tests/data/pg_control/*.expected were established with the
// servers themselves (pg_controldata, pg_control_*() functions, server log),
// not with this code.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "pg/control.h"
#include "pg/crc32c.h"

namespace {

const std::string kDir = std::string(PGFO_TEST_DATA_DIR) + "/pg_control/";

std::vector<uint8_t> read_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> read_expected(const std::string &path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::map<std::string, std::string> kv;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        size_t eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        kv[line.substr(0, eq)] = line.substr(eq + 3);
    }
    return kv;
}

std::string utc(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t get_u32(const std::vector<uint8_t> &b, size_t off) {
    return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
           uint32_t(b[off + 3]) << 24;
}

// Error code and message of parse_control, or code 0 when it succeeds.
std::pair<int, std::string> parse_error(const std::vector<uint8_t> &b, size_t len) {
    try {
        pgfo::parse_control(b.data(), len);
        return {0, ""};
    } catch (const pgfo::Error &e) {
        return {e.code(), e.what()};
    }
}

// Offsets established from the real files (the CRC is found exactly there,
// and nowhere else before it), independent of the implementation's table.
struct Case {
    const char *file;   // tests/data/pg_control/<file>.control / .expected
    int major;          // the server that wrote it
    size_t crc_offset;  // offsetof(ControlFileData, crc)
    size_t seg_offset;  // offsetof(ControlFileData, xlog_seg_size)
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.file; }

const Case kCases[] = {
    {"pg11", 11, 280, 220}, {"pg12", 12, 288, 228}, {"pg13", 13, 288, 228},
    {"pg14", 14, 288, 228}, {"pg15", 15, 288, 228}, {"pg16", 16, 288, 228},
    {"pg17", 17, 288, 228}, {"pg18", 18, 292, 228}, {"pg15-running", 15, 288, 228},
};

class ControlFile : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        bytes = read_bytes(kDir + GetParam().file + ".control");
        expected = read_expected(kDir + GetParam().file + ".expected");
        ASSERT_EQ(bytes.size(), 8192u);
        ASSERT_FALSE(expected.empty());
    }
    std::vector<uint8_t> bytes;
    std::map<std::string, std::string> expected;
};

TEST_P(ControlFile, MatchesValuesEstablishedByPostgres) {
    pgfo::ControlData cd = pgfo::parse_control(bytes.data(), bytes.size());
    EXPECT_EQ(std::to_string(cd.control_version), expected["pg_control_version"]);
    EXPECT_EQ(std::to_string(cd.catalog_version), expected["catalog_version"]);
    EXPECT_EQ(std::to_string(cd.system_identifier), expected["system_identifier"]);
    EXPECT_EQ(pgfo::db_state_name(cd.state), expected["state"]);
    EXPECT_EQ(utc(cd.time), expected["last_modified_utc"]);
    EXPECT_EQ(pgfo::format_lsn(cd.checkpoint), expected["latest_checkpoint"]);
    EXPECT_EQ(pgfo::format_lsn(cd.redo), expected["redo"]);
    EXPECT_EQ(std::to_string(cd.timeline), expected["timeline"]);
    EXPECT_EQ(std::to_string(cd.prev_timeline), expected["prev_timeline"]);
    EXPECT_EQ(std::to_string(cd.wal_block_size), expected["wal_block_size"]);
    EXPECT_EQ(std::to_string(cd.wal_segment_size), expected["wal_segment_size"]);
    EXPECT_EQ(cd.wal_log_hints ? "on" : "off", expected["wal_log_hints"]);
    EXPECT_EQ(std::to_string(cd.data_checksum_version), expected["data_checksum_version"]);
}

TEST_P(ControlFile, VersionMapsToTheMajorThatWroteIt) {
    pgfo::ControlData cd = pgfo::parse_control(bytes.data(), bytes.size());
    int oldest = pgfo::control_version_major(cd.control_version);
    EXPECT_GE(GetParam().major, oldest);
    EXPECT_GE(oldest, 11);
    // 1300 is written by 13 to 16, every other version by one major only.
    if (cd.control_version == 1300) {
        EXPECT_EQ(oldest, 13);
    } else {
        EXPECT_EQ(oldest, GetParam().major);
    }
}

TEST_P(ControlFile, AnyFlippedByteBeforeTheCrcEndIsACrcMismatch) {
    size_t crc_end = GetParam().crc_offset + 4;
    uint32_t stored = get_u32(bytes, GetParam().crc_offset);
    for (size_t off = 0; off < crc_end; ++off) {
        if (off >= 8 && off < 12) continue; // the version field: reported as unknown version
        std::vector<uint8_t> bad = bytes;
        bad[off] ^= 0x01;
        auto [code, msg] = parse_error(bad, bad.size());
        ASSERT_EQ(code, PGFO_ERR_PG_CONTROL) << "flipped byte " << off;
        EXPECT_NE(msg.find("pg_control CRC mismatch: computed 0x"), std::string::npos) << msg;
        char want[32];
        std::snprintf(want, sizeof want, "stored 0x%08X",
                      off >= GetParam().crc_offset ? get_u32(bad, GetParam().crc_offset) : stored);
        EXPECT_NE(msg.find(want), std::string::npos) << msg;
        EXPECT_NE(msg.find("torn read"), std::string::npos) << msg;
    }
}

TEST_P(ControlFile, BytesAfterTheCrcAreNotChecked) {
    // PostgreSQL reads sizeof(ControlFileData) only; the rest is zero padding.
    std::vector<uint8_t> padded = bytes;
    padded[GetParam().crc_offset + 4] ^= 0xFF;
    padded.back() ^= 0xFF;
    EXPECT_NO_THROW(pgfo::parse_control(padded.data(), padded.size()));
}

TEST_P(ControlFile, TruncatedRightBeforeTheCrcEndIsTooShort) {
    size_t crc_end = GetParam().crc_offset + 4;
    EXPECT_NO_THROW(pgfo::parse_control(bytes.data(), crc_end));
    for (size_t len : {crc_end - 1, crc_end - 4, size_t(100), size_t(12), size_t(11), size_t(0)}) {
        auto [code, msg] = parse_error(bytes, len);
        EXPECT_EQ(code, PGFO_ERR_PG_CONTROL) << len;
        EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(len) + " bytes"), std::string::npos) << msg;
    }
}

TEST_P(ControlFile, SegmentSizeFieldIsWhereTheFilesSayItIs) {
    // Change xlog_seg_size to another valid size, fix the CRC: the parser must
    // read the new value, so it reads this very field.
    std::vector<uint8_t> b = bytes;
    size_t crc = GetParam().crc_offset;
    put_u32(b, GetParam().seg_offset, 1u << 30);
    put_u32(b, crc, pgfo::crc32c(b.data(), crc));
    EXPECT_EQ(pgfo::parse_control(b.data(), b.size()).wal_segment_size, 1u << 30);

    put_u32(b, GetParam().seg_offset, 12345);
    put_u32(b, crc, pgfo::crc32c(b.data(), crc));
    auto [code, msg] = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("WAL segment size 12345 is implausible"), std::string::npos) << msg;
}

TEST_P(ControlFile, WalBlockSizeIsTheFieldBeforeTheSegmentSize) {
    std::vector<uint8_t> b = bytes;
    size_t crc = GetParam().crc_offset;
    put_u32(b, GetParam().seg_offset - 4, 3000);
    put_u32(b, crc, pgfo::crc32c(b.data(), crc));
    auto [code, msg] = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("WAL block size 3000 is implausible"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(EveryMajor, ControlFile, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case> &info) {
                             std::string name = info.param.file;
                             for (char &c : name)
                                 if (c == '-') c = '_';
                             return name;
                         });

std::vector<uint8_t> pg15() { return read_bytes(kDir + "pg15.control"); }

TEST(Control, UnknownVersionIsNamed) {
    std::vector<uint8_t> b = pg15();
    put_u32(b, 8, 1002); // PostgreSQL 10
    auto [code, msg] = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("unknown pg_control version 1002"), std::string::npos) << msg;
    EXPECT_NE(msg.find("10 or older"), std::string::npos) << msg;

    put_u32(b, 8, 1900);
    put_u32(b, 288, pgfo::crc32c(b.data(), 288)); // a valid CRC does not make it known
    std::tie(code, msg) = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("unknown pg_control version 1900"), std::string::npos) << msg;
    EXPECT_NE(msg.find("supported: 1100, 1201, 1300, 1700, 1800"), std::string::npos) << msg;
}

TEST(Control, ByteSwappedVersionIsReportedAsByteOrder) {
    std::vector<uint8_t> b = pg15();
    std::swap(b[8], b[11]);
    std::swap(b[9], b[10]);
    auto [code, msg] = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("byte order"), std::string::npos) << msg;
}

TEST(Control, WrongLayoutIsCaughtEvenWithAValidCrc) {
    // A PostgreSQL 11 file relabelled 1300 with a CRC made for that layout:
    // floatFormat then reads other fields and must not pass.
    std::vector<uint8_t> b = read_bytes(kDir + "pg11.control");
    put_u32(b, 8, 1300);
    put_u32(b, 288, pgfo::crc32c(b.data(), 288));
    auto [code, msg] = parse_error(b, b.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("floatFormat"), std::string::npos) << msg;
}

TEST(Control, NullBufferIsTooShort) {
    EXPECT_THROW(pgfo::parse_control(nullptr, 0), pgfo::Error);
    EXPECT_THROW(pgfo::parse_control(nullptr, 8192), pgfo::Error);
}

TEST(Control, AllZeroFileIsRejected) {
    std::vector<uint8_t> zeros(8192, 0);
    auto [code, msg] = parse_error(zeros, zeros.size());
    EXPECT_EQ(code, PGFO_ERR_PG_CONTROL);
    EXPECT_NE(msg.find("unknown pg_control version 0"), std::string::npos) << msg;
}

TEST(Control, StateNamesAsPgControldataPrintsThem) {
    EXPECT_STREQ(pgfo::db_state_name(0), "starting up");
    EXPECT_STREQ(pgfo::db_state_name(1), "shut down");
    EXPECT_STREQ(pgfo::db_state_name(2), "shut down in recovery");
    EXPECT_STREQ(pgfo::db_state_name(3), "shutting down");
    EXPECT_STREQ(pgfo::db_state_name(4), "in crash recovery");
    EXPECT_STREQ(pgfo::db_state_name(5), "in archive recovery");
    EXPECT_STREQ(pgfo::db_state_name(6), "in production");
    EXPECT_STREQ(pgfo::db_state_name(7), "unrecognized status code");
    EXPECT_STREQ(pgfo::db_state_name(-1), "unrecognized status code");
}

TEST(Control, VersionMajors) {
    EXPECT_EQ(pgfo::control_version_major(1100), 11);
    EXPECT_EQ(pgfo::control_version_major(1201), 12);
    EXPECT_EQ(pgfo::control_version_major(1300), 13);
    EXPECT_EQ(pgfo::control_version_major(1700), 17);
    EXPECT_EQ(pgfo::control_version_major(1800), 18);
    EXPECT_EQ(pgfo::control_version_major(1002), 0);
    EXPECT_EQ(pgfo::control_version_major(1200), 0);
    EXPECT_EQ(pgfo::control_version_major(0), 0);
}

} // namespace

namespace {

// A PostgreSQL 15 standby stopped in fast mode. pg_controldata printed:
//   Database cluster state:               shut down in recovery
//   Minimum recovery ending location:     0/3649D18
//   Min recovery ending loc's timeline:   1
TEST(ControlStandby, MinimumRecoveryPointAsPgControldataPrintsIt) {
    auto bytes = read_bytes(kDir + "pg15-standby.control");
    pgfo::ControlData cd = pgfo::parse_control(bytes.data(), bytes.size());
    EXPECT_EQ(cd.state, 2); // shut down in recovery
    EXPECT_EQ(cd.min_recovery_point, 0x3649D18u);
    EXPECT_EQ(cd.min_recovery_timeline, 1u);
}

// A primary has no minimum recovery point.
TEST(ControlStandby, PrimaryHasNone) {
    auto bytes = read_bytes(kDir + "pg15.control");
    pgfo::ControlData cd = pgfo::parse_control(bytes.data(), bytes.size());
    EXPECT_EQ(cd.min_recovery_point, 0u);
}

} // namespace
