// LSN text form and CRC-32C.
#include <gtest/gtest.h>

#include <cstring>

#include "pg/crc32c.h"
#include "pg/lsn.h"

using pgfo::parse_lsn;
using pgfo::format_lsn;

TEST(Lsn, ParsesTheFormPostgresPrints) {
    EXPECT_EQ(parse_lsn("0/6F6F558"), 0x6F6F558u);
    EXPECT_EQ(parse_lsn("0/0"), 0u);
    EXPECT_EQ(parse_lsn("1/0"), 0x100000000ull);
    EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ull);
    EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), 0xFFFFFFFFFFFFFFFFull);
}

TEST(Lsn, AcceptsLowercaseAndLeadingZeros) {
    EXPECT_EQ(parse_lsn("16/b374d848"), 0x16B374D848ull);
    EXPECT_EQ(parse_lsn("ffffffff/ffffffff"), 0xFFFFFFFFFFFFFFFFull);
    EXPECT_EQ(parse_lsn("00000000/0000000A"), 0xAu); // 8 digits each: still fine
}

TEST(Lsn, RejectsAnythingElse) {
    const char *bad[] = {"",        " 0/1",      "0/1 ",      "0 /1",       "0/ 1",
                         "0/",      "/1",        "/",         "1/2/3",      "0/123456789",
                         "123456789/0", "-1/0",  "0/-1",      "+1/0",       "0x1/0",
                         "g/0",     "0/1g",      "01",        "0\\1",       "0/1\n"};
    for (const char *text : bad) EXPECT_EQ(parse_lsn(text), std::nullopt) << '"' << text << '"';
    // An embedded NUL is not a terminator for a string_view.
    EXPECT_EQ(parse_lsn(std::string_view("0/1\0", 4)), std::nullopt);
}

TEST(Lsn, FormatsUpperCaseWithoutPadding) {
    EXPECT_EQ(format_lsn(0), "0/0");
    EXPECT_EQ(format_lsn(0x6F6F558), "0/6F6F558");
    EXPECT_EQ(format_lsn(0x16B374D848ull), "16/B374D848");
    EXPECT_EQ(format_lsn(0xFFFFFFFFFFFFFFFFull), "FFFFFFFF/FFFFFFFF");
    EXPECT_EQ(format_lsn(0x100000000ull), "1/0");
}

TEST(Lsn, RoundTrips) {
    for (uint64_t v : {0ull, 1ull, 0xFFull, 0xFFFFFFFFull, 0x100000000ull, 0x123456789ABCDEFull,
                       0xFFFFFFFFFFFFFFFFull})
        EXPECT_EQ(parse_lsn(format_lsn(v)), v);
}

// Check values of CRC-32C (Castagnoli) from RFC 3720, B.4, and the common "123456789".
TEST(Crc32c, KnownVectors) {
    const char *digits = "123456789";
    EXPECT_EQ(pgfo::crc32c(digits, std::strlen(digits)), 0xE3069283u);
    uint8_t zeros[32] = {};
    EXPECT_EQ(pgfo::crc32c(zeros, sizeof zeros), 0x8A9136AAu);
    uint8_t ones[32];
    std::memset(ones, 0xFF, sizeof ones);
    EXPECT_EQ(pgfo::crc32c(ones, sizeof ones), 0x62A8AB43u);
    uint8_t ascending[32];
    for (int i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(pgfo::crc32c(ascending, sizeof ascending), 0x46DD794Eu);
    EXPECT_EQ(pgfo::crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, UpdateInPiecesEqualsWhole) {
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t len = std::strlen(text);
    uint32_t whole = pgfo::crc32c(text, len);
    EXPECT_EQ(whole, 0x22620404u);
    for (size_t cut = 0; cut <= len; ++cut) {
        uint32_t crc = pgfo::crc32c_update(0xFFFFFFFFu, text, cut);
        crc = pgfo::crc32c_update(crc, text + cut, len - cut) ^ 0xFFFFFFFFu;
        EXPECT_EQ(crc, whole) << "cut at " << cut;
    }
}
