// Reading the shutdown checkpoint record from WAL: real pages cut from
// segments of PostgreSQL 15, 17 and 18 (tests/data/wal, ends established with
// pg_waldump / pg_walinspect), plus records built here to exercise page and
// segment crossings, block sizes and every error path.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "pg/crc32c.h"
#include "pg/walrecord.h"

namespace {

using pgfo::Lsn;
using pgfo::format_lsn;

const std::string kDir = std::string(PGFO_TEST_DATA_DIR) + "/wal/";
constexpr uint32_t kMB = 1u << 20;

std::string hex8(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08llX", static_cast<unsigned long long>(v));
    return buf;
}

void put_u16(std::vector<uint8_t> &b, size_t off, uint16_t v) {
    b[off] = uint8_t(v);
    b[off + 1] = uint8_t(v >> 8);
}
void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = uint8_t(v >> (8 * i));
}
void put_u64(std::vector<uint8_t> &b, size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[off + i] = uint8_t(v >> (8 * i));
}

// Error code and message of read_wal_record, or code 0 when it succeeds.
template <class F> std::pair<int, std::string> error_of(F &&f) {
    try {
        f();
        return {0, ""};
    } catch (const pgfo::Error &e) {
        return {e.code(), e.what()};
    }
}

// ---- real pages ------------------------------------------------------------

struct ManifestCase {
    std::string name;
    int major = 0;
    uint32_t timeline = 0;
    uint32_t segment_size = 0;
    uint32_t block_size = 0;
    Lsn start = 0;
    Lsn end = 0;
    uint32_t tot_len = 0;
};

// Short names in test listings (ctest shows gtest's printout of the parameter).
void PrintTo(const ManifestCase &c, std::ostream *os) { *os << c.name; }

std::vector<ManifestCase> read_manifest() {
    std::ifstream in(kDir + "manifest.txt");
    EXPECT_TRUE(in.good()) << "cannot open manifest";
    std::vector<ManifestCase> cases;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        ManifestCase c;
        std::string start, end;
        fields >> c.name >> c.major >> c.timeline >> c.segment_size >> c.block_size >> start >>
            end >> c.tot_len;
        EXPECT_TRUE(fields) << "bad manifest line: " << line;
        c.start = pgfo::parse_lsn(start).value();
        c.end = pgfo::parse_lsn(end).value();
        cases.push_back(c);
    }
    return cases;
}

// Serves the pages of one case from "<case>-<segment>-<page offset>.page";
// pages can be patched in memory first. Records every page asked for.
class PageFiles {
public:
    explicit PageFiles(const ManifestCase &c) : case_(c) {}

    std::vector<uint8_t> &page(const std::string &segment, uint64_t page_offset) {
        auto key = std::make_pair(segment, page_offset);
        auto it = pages_.find(key);
        if (it != pages_.end()) return it->second;
        std::string path = kDir + case_.name + "-" + segment + "-" + hex8(page_offset) + ".page";
        std::ifstream in(path, std::ios::binary);
        if (!in)
            throw pgfo::Error(PGFO_ERR_WAL, "test has no page " + segment + " at " + hex8(page_offset));
        return pages_[key] = std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
    }

    pgfo::WalReader reader() {
        return [this](const std::string &file, uint64_t offset, uint32_t len) {
            requests.insert(file + "@" + hex8(offset));
            uint64_t page_offset = offset - offset % case_.block_size;
            const std::vector<uint8_t> &bytes = page(file, page_offset);
            size_t from = offset - page_offset;
            size_t n = std::min<size_t>(len, bytes.size() - std::min(from, bytes.size()));
            return std::vector<uint8_t>(bytes.begin() + from, bytes.begin() + from + n);
        };
    }

    std::set<std::string> requests;

private:
    ManifestCase case_;
    std::map<std::pair<std::string, uint64_t>, std::vector<uint8_t>> pages_;
};

class RealWal : public ::testing::TestWithParam<ManifestCase> {
protected:
    pgfo::WalRecordInfo read(PageFiles &files) {
        const ManifestCase &c = GetParam();
        return pgfo::read_wal_record(files.reader(), c.timeline, c.start, c.segment_size,
                                     c.block_size);
    }
    std::string segment_of(Lsn lsn) {
        return pgfo::wal_file_name(GetParam().timeline, lsn, GetParam().segment_size);
    }
    // The page holding `lsn`, and the offset of `lsn` in it.
    std::pair<std::vector<uint8_t> *, size_t> locate(PageFiles &files, Lsn lsn) {
        uint64_t in_segment = lsn % GetParam().segment_size;
        uint64_t page_offset = in_segment - in_segment % GetParam().block_size;
        return {&files.page(segment_of(lsn), page_offset), in_segment - page_offset};
    }
};

TEST_P(RealWal, EndMatchesPostgres) {
    const ManifestCase &c = GetParam();
    PageFiles files(c);
    pgfo::WalRecordInfo rec = read(files);
    EXPECT_EQ(format_lsn(rec.start), format_lsn(c.start));
    EXPECT_EQ(format_lsn(rec.end), format_lsn(c.end));
    EXPECT_EQ(rec.total_length, c.tot_len);
    EXPECT_EQ(rec.rmid, 0);
    EXPECT_TRUE(pgfo::is_shutdown_checkpoint(rec));
}

// The fallback when the record cannot be read: its end from pg_control's
// checkpoint location and the length a shutdown checkpoint has on that major.
TEST_P(RealWal, ExactLengthOfTheMajorGivesTheSameEnd) {
    const ManifestCase &c = GetParam();
    const uint32_t control_version = c.major >= 18   ? 1800
                                     : c.major >= 17 ? 1700
                                     : c.major >= 13 ? 1300
                                     : c.major == 12 ? 1201
                                                     : 1100;
    EXPECT_EQ(pgfo::shutdown_checkpoint_length(control_version), c.tot_len);
    EXPECT_EQ(pgfo::record_end(c.start, c.tot_len, c.segment_size, c.block_size), c.end);
}

TEST(ShutdownCheckpointLength, UnknownControlVersionIsZero) {
    EXPECT_EQ(pgfo::shutdown_checkpoint_length(0), 0u);
    EXPECT_EQ(pgfo::shutdown_checkpoint_length(1002), 0u); // PostgreSQL 10
    EXPECT_EQ(pgfo::shutdown_checkpoint_length(1900), 0u);
}

TEST(RecordEnd, PageAndSegmentHeaders) {
    const uint32_t seg = 1u << 20, blk = 8192;
    // inside one page, MAXALIGNed
    EXPECT_EQ(pgfo::record_end(0x600100, 114, seg, blk), 0x600178u);
    // 56 bytes on the first page, 58 after the next page's 24-byte header
    EXPECT_EQ(pgfo::record_end(0x609FC8, 114, seg, blk), 0x60A058u);
    // 56 bytes before a segment end: the rest after the 40-byte long header
    EXPECT_EQ(pgfo::record_end(0x6FFFC8, 114, seg, blk), 0x700068u);
    // ending exactly at a page end
    EXPECT_EQ(pgfo::record_end(0x601F8E, 114, seg, blk), 0x602000u);
}

TEST_P(RealWal, AsksOnlyForThePagesTheRecordOccupies) {
    const ManifestCase &c = GetParam();
    PageFiles files(c);
    read(files);
    std::set<std::string> want;
    for (Lsn page = c.start - c.start % c.block_size; page < c.end; page += c.block_size)
        want.insert(segment_of(page) + "@" + hex8(page % c.segment_size));
    EXPECT_EQ(files.requests, want);
}

TEST_P(RealWal, EveryFlippedRecordByteIsCaught) {
    const ManifestCase &c = GetParam();
    for (uint32_t i = 0; i < c.tot_len; ++i) {
        // Byte i of the record, skipping the page header it may continue after.
        Lsn at = c.start;
        for (uint32_t left = i;;) {
            uint64_t in_page = at % c.block_size;
            if (in_page == 0) at += (at % c.segment_size == 0) ? 40 : 24;
            uint64_t room = c.block_size - at % c.block_size;
            if (left < room) { at += left; break; }
            left -= static_cast<uint32_t>(room);
            at += room;
        }
        PageFiles files(c);
        auto [page, off] = locate(files, at);
        (*page)[off] ^= 0x40;
        auto [code, msg] = error_of([&] { read(files); });
        ASSERT_EQ(code, PGFO_ERR_WAL) << "byte " << i << " at " << format_lsn(at);
        if (i >= 4) { // flipping xl_tot_len itself changes the length instead
            EXPECT_NE(msg.find("CRC mismatch: computed 0x"), std::string::npos) << msg;
        }
    }
}

TEST_P(RealWal, WrongPageAddressMeansRecycledSegment) {
    PageFiles files(GetParam());
    auto [page, off] = locate(files, GetParam().start);
    (void)off;
    put_u64(*page, 8, 0x123456000ull);
    auto [code, msg] = error_of([&] { read(files); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("xlp_pageaddr 1/23456000"), std::string::npos) << msg;
}

TEST_P(RealWal, ShortReadIsNamed) {
    PageFiles files(GetParam());
    auto [page, off] = locate(files, GetParam().start);
    (void)off;
    page->resize(4096);
    auto [code, msg] = error_of([&] { read(files); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("short read of WAL file " + segment_of(GetParam().start)),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("got 4096 of 8192 bytes"), std::string::npos) << msg;
}

TEST_P(RealWal, OneByteLaterIsNotARecordStart) {
    PageFiles files(GetParam());
    const ManifestCase &c = GetParam();
    auto [code, msg] = error_of([&] {
        pgfo::read_wal_record(files.reader(), c.timeline, c.start + 1, c.segment_size, c.block_size);
    });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("not 8-byte aligned"), std::string::npos) << msg;
}

TEST_P(RealWal, SegmentNameIsThePageFileName) {
    const ManifestCase &c = GetParam();
    EXPECT_EQ(segment_of(c.start).size(), 24u);
    PageFiles files(c);
    EXPECT_NO_THROW(files.page(segment_of(c.start),
                               c.start % c.segment_size - c.start % c.block_size));
}

INSTANTIATE_TEST_SUITE_P(Cases, RealWal, ::testing::ValuesIn(read_manifest()),
                         [](const ::testing::TestParamInfo<ManifestCase> &info) {
                             std::string name = info.param.name;
                             for (char &ch : name)
                                 if (ch == '-') ch = '_';
                             return name;
                         });

TEST(RealWalManifest, HasTheExpectedCases) {
    auto cases = read_manifest();
    ASSERT_EQ(cases.size(), 5u);
    std::set<int> majors;
    for (const auto &c : cases) majors.insert(c.major);
    EXPECT_EQ(majors, (std::set<int>{15, 17, 18}));
}

TEST(RealWalPageCross, ContinuationHeaderIsChecked) {
    ManifestCase c;
    for (const auto &m : read_manifest())
        if (m.name == "pg15-segcross") c = m;
    ASSERT_EQ(c.name, "pg15-segcross");
    {
        PageFiles files(c);
        auto &second = files.page("000000010000000000000007", 0);
        put_u32(second, 16, 57); // xlp_rem_len: 58 bytes are left
        auto [code, msg] = error_of(
            [&] { pgfo::read_wal_record(files.reader(), 1, c.start, c.segment_size, 8192); });
        EXPECT_EQ(code, PGFO_ERR_WAL);
        EXPECT_NE(msg.find("xlp_rem_len 57"), std::string::npos) << msg;
        EXPECT_NE(msg.find("58 bytes left"), std::string::npos) << msg;
    }
    {
        PageFiles files(c);
        auto &second = files.page("000000010000000000000007", 0);
        second[2] &= ~0x01; // XLP_FIRST_IS_CONTRECORD
        auto [code, msg] = error_of(
            [&] { pgfo::read_wal_record(files.reader(), 1, c.start, c.segment_size, 8192); });
        EXPECT_EQ(code, PGFO_ERR_WAL);
        EXPECT_NE(msg.find("XLP_FIRST_IS_CONTRECORD"), std::string::npos) << msg;
    }
    {
        PageFiles files(c);
        auto &second = files.page("000000010000000000000007", 0);
        second[2] &= ~0x02; // XLP_LONG_HEADER on a segment's first page
        auto [code, msg] = error_of(
            [&] { pgfo::read_wal_record(files.reader(), 1, c.start, c.segment_size, 8192); });
        EXPECT_EQ(code, PGFO_ERR_WAL);
        EXPECT_NE(msg.find("lacks the long header"), std::string::npos) << msg;
    }
    {
        // The next segment is missing: the reader's own error comes through.
        PageFiles files(c);
        auto reader = [&](const std::string &file, uint64_t offset, uint32_t len) {
            if (file == "000000010000000000000007")
                throw pgfo::Error(PGFO_ERR_WAL, "could not open WAL file " + file);
            return files.reader()(file, offset, len);
        };
        auto [code, msg] =
            error_of([&] { pgfo::read_wal_record(reader, 1, c.start, c.segment_size, 8192); });
        EXPECT_EQ(code, PGFO_ERR_WAL);
        EXPECT_EQ(msg, "could not open WAL file 000000010000000000000007");
    }
}

// ---- records built here ----------------------------------------------------

// An in-memory WAL of one timeline, written like XLogInsert lays it out.
class SyntheticWal {
public:
    SyntheticWal(uint32_t segment_size, uint32_t block_size, uint32_t timeline = 1)
        : seg_(segment_size), blk_(block_size), tli_(timeline) {}

    // A record of `tot_len` bytes with a correct xl_crc.
    static std::vector<uint8_t> record(uint32_t tot_len, uint8_t rmid = 0, uint8_t info = 0,
                                       uint64_t prev = 0x1000028) {
        std::vector<uint8_t> r(tot_len);
        for (uint32_t i = 24; i < tot_len; ++i) r[i] = uint8_t(i * 7 + 3);
        put_u32(r, 0, tot_len);
        put_u32(r, 4, 0);                  // xl_xid
        put_u64(r, 8, prev);               // xl_prev
        r[16] = info;
        r[17] = rmid;
        uint32_t crc = pgfo::crc32c_update(0xFFFFFFFFu, r.data() + 24, tot_len - 24);
        crc = pgfo::crc32c_update(crc, r.data(), 20) ^ 0xFFFFFFFFu;
        put_u32(r, 20, crc);
        return r;
    }

    // Writes `rec` at `start`, continuing over page headers; returns the
    // position after its last byte (not aligned).
    Lsn write(Lsn start, const std::vector<uint8_t> &rec) {
        Lsn pos = start;
        for (size_t i = 0; i < rec.size(); ++i) {
            if (pos % blk_ == 0) {
                std::vector<uint8_t> &p = page(pos);
                put_u16(p, 2, uint16_t((pos % seg_ == 0 ? 0x0002 : 0) | 0x0001));
                put_u32(p, 16, uint32_t(rec.size() - i)); // xlp_rem_len
                pos += header(pos);
            }
            page(pos - pos % blk_)[pos % blk_] = rec[i];
            ++pos;
        }
        return pos;
    }

    std::vector<uint8_t> &page(Lsn page_lsn) {
        auto it = pages_.find(page_lsn);
        if (it != pages_.end()) return it->second;
        std::vector<uint8_t> p(blk_);
        put_u16(p, 0, 0xD110);
        put_u16(p, 2, page_lsn % seg_ == 0 ? 0x0002 : 0);
        put_u32(p, 4, tli_);
        put_u64(p, 8, page_lsn);
        if (page_lsn % seg_ == 0) {
            put_u64(p, 24, 7712422559276541448ull);
            put_u32(p, 32, seg_);
            put_u32(p, 36, blk_);
        }
        return pages_[page_lsn] = p;
    }

    uint32_t header(Lsn page_lsn) const { return page_lsn % seg_ == 0 ? 40 : 24; }

    pgfo::WalReader reader() {
        return [this](const std::string &file, uint64_t offset, uint32_t len) {
            ++reads;
            Lsn page_lsn = 0;
            bool found = false;
            for (auto &[lsn, bytes] : pages_) {
                if (pgfo::wal_file_name(tli_, lsn, seg_) == file && lsn % seg_ == offset) {
                    page_lsn = lsn;
                    found = true;
                }
            }
            if (!found) throw pgfo::Error(PGFO_ERR_WAL, "no such page " + file + "@" + hex8(offset));
            const auto &bytes = pages_[page_lsn];
            return std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::min<size_t>(len, blk_));
        };
    }

    pgfo::WalRecordInfo read(Lsn start) {
        return pgfo::read_wal_record(reader(), tli_, start, seg_, blk_);
    }

    int reads = 0;

private:
    uint32_t seg_, blk_, tli_;
    std::map<Lsn, std::vector<uint8_t>> pages_;
};

Lsn align8(Lsn v) { return (v + 7) & ~Lsn(7); }

TEST(SyntheticWal, RecordInsideOnePage) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn start = 0x3000000 + 0x2000 + 0x100;
    wal.write(start, SyntheticWal::record(114));
    auto rec = wal.read(start);
    EXPECT_EQ(rec.end, start + 120); // 114 rounded up to 8
    EXPECT_EQ(rec.total_length, 114u);
    EXPECT_EQ(wal.reads, 1);
}

TEST(SyntheticWal, RecordEndingExactlyAtAPageBoundaryEndsThere) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn page_end = 0x3000000 + 0x6000;
    Lsn start = page_end - 120;
    wal.write(start, SyntheticWal::record(120));
    auto rec = wal.read(start);
    EXPECT_EQ(format_lsn(rec.end), format_lsn(page_end));
    EXPECT_EQ(wal.reads, 1); // the next page is not needed, and not read

    SyntheticWal padded(16 * kMB, 8192);
    padded.write(start, SyntheticWal::record(114)); // 6 bytes of alignment padding
    EXPECT_EQ(format_lsn(padded.read(start).end), format_lsn(page_end));
}

TEST(SyntheticWal, RecordCrossingAPageSkipsTheShortHeader) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn next_page = 0x3000000 + 0x4000;
    Lsn start = next_page - 56; // 56 bytes here, 58 after the 24-byte header
    wal.write(start, SyntheticWal::record(114));
    auto rec = wal.read(start);
    EXPECT_EQ(format_lsn(rec.end), format_lsn(next_page + 24 + 64)); // 24 + MAXALIGN(58)
    EXPECT_EQ(wal.reads, 2);
}

TEST(SyntheticWal, RecordCrossingASegmentSkipsTheLongHeader) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn next_segment = 0x5000000;
    Lsn start = next_segment - 56;
    wal.write(start, SyntheticWal::record(114));
    auto rec = wal.read(start);
    EXPECT_EQ(format_lsn(rec.end), format_lsn(next_segment + 0x68)); // 40 + 58, aligned
}

TEST(SyntheticWal, HeaderSplitAcrossPagesIsReassembled) {
    // Only xl_tot_len and xl_xid fit on the first page; xl_crc is on the next.
    SyntheticWal wal(16 * kMB, 8192);
    Lsn next_page = 0x3000000 + 0x8000;
    Lsn start = next_page - 8;
    Lsn last = wal.write(start, SyntheticWal::record(114));
    EXPECT_EQ(last, next_page + 24 + 106);
    EXPECT_EQ(wal.read(start).end, align8(last));
}

TEST(SyntheticWal, RecordEndingExactlyAtTheEndOfItsLastPage) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn start = 0x3000000 + 0xA000 - 64;
    Lsn len = 64 + (8192 - 24); // fills the rest of the next page exactly
    Lsn last = wal.write(start, SyntheticWal::record(uint32_t(len)));
    EXPECT_EQ(last, 0x3000000 + 0xC000);
    auto rec = wal.read(start);
    EXPECT_EQ(format_lsn(rec.end), format_lsn(0x300C000));
    EXPECT_EQ(wal.reads, 2);
}

TEST(SyntheticWal, LongRecordOverManyPagesAndASegment) {
    for (uint32_t blk : {1024u, 8192u, 32768u, 65536u}) {
        SyntheticWal wal(1 * kMB, blk);
        Lsn start = 7 * kMB - blk - blk / 2; // crosses into segment 7
        std::vector<uint8_t> rec = SyntheticWal::record(60000);
        Lsn last = wal.write(start, rec);
        auto info = wal.read(start);
        EXPECT_EQ(info.end, align8(last)) << "block size " << blk;
        EXPECT_EQ(info.total_length, 60000u);
        // Independently: the bytes in between are the record plus each header crossed.
        Lsn headers = 0;
        for (Lsn p = start - start % blk + blk; p < last; p += blk) headers += (p % kMB == 0) ? 40 : 24;
        EXPECT_EQ(last - start, 60000 + headers) << "block size " << blk;
    }
}

TEST(SyntheticWal, FirstRecordAfterALongHeader) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn start = 0x2000000 + 40;
    wal.write(start, SyntheticWal::record(114));
    EXPECT_EQ(wal.read(start).end, start + 120);
}

TEST(SyntheticWal, CorruptedByteOnTheSecondPageIsACrcMismatch) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn next_page = 0x3000000 + 0x4000;
    Lsn start = next_page - 56;
    wal.write(start, SyntheticWal::record(114));
    wal.page(next_page)[24 + 30] ^= 0xFF;
    auto [code, msg] = error_of([&] { wal.read(start); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("WAL record at 0/3003FC8: CRC mismatch: computed 0x"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(xl_tot_len 114)"), std::string::npos) << msg;
}

TEST(SyntheticWal, CorruptedStoredCrcIsAMismatch) {
    SyntheticWal wal(16 * kMB, 8192);
    Lsn start = 0x3000100;
    wal.write(start, SyntheticWal::record(114));
    put_u32(wal.page(0x3000000), 0x100 + 20, 0xDEADBEEF);
    auto [code, msg] = error_of([&] { wal.read(start); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("stored 0xDEADBEEF"), std::string::npos) << msg;
}

TEST(SyntheticWal, BadLengths) {
    struct { uint32_t len; const char *want; } cases[] = {
        {0, "no WAL record at 0/3000100: xl_tot_len is 0"},
        {23, "invalid xl_tot_len 23 of WAL record at 0/3000100 (expected 24 to 65536)"},
        {65537, "invalid xl_tot_len 65537"},
        {0xFFFFFFFF, "invalid xl_tot_len 4294967295"},
    };
    for (auto &c : cases) {
        SyntheticWal wal(16 * kMB, 8192);
        wal.page(0x3000000);
        put_u32(wal.page(0x3000000), 0x100, c.len);
        auto [code, msg] = error_of([&] { wal.read(0x3000100); });
        EXPECT_EQ(code, PGFO_ERR_WAL) << c.len;
        EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
    }
}

TEST(SyntheticWal, LengthOfExactly24AndExactlyTheLimitAreAccepted) {
    SyntheticWal wal(16 * kMB, 8192);
    wal.write(0x3000100, SyntheticWal::record(24));
    EXPECT_EQ(wal.read(0x3000100).end, 0x3000118u);
    SyntheticWal big(16 * kMB, 8192);
    Lsn last = big.write(0x3000100, SyntheticWal::record(65536));
    EXPECT_EQ(big.read(0x3000100).end, align8(last));
}

TEST(SyntheticWal, StartInsideAPageHeaderIsRejected) {
    SyntheticWal wal(16 * kMB, 8192);
    wal.page(0x3002000);
    wal.page(0x3000000);
    for (Lsn start : {Lsn(0x3002000), Lsn(0x3002010), Lsn(0x3000000), Lsn(0x3000020)}) {
        auto [code, msg] = error_of([&] { wal.read(start); });
        EXPECT_EQ(code, PGFO_ERR_WAL) << format_lsn(start);
        EXPECT_NE(msg.find("lies inside a page header"), std::string::npos) << msg;
    }
}

TEST(SyntheticWal, MissingPageComesThroughAsTheReadersError) {
    SyntheticWal wal(16 * kMB, 8192);
    auto [code, msg] = error_of([&] { wal.read(0x3000100); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("no such page 000000010000000000000003@00000000"), std::string::npos) << msg;
}

TEST(SyntheticWal, ForeignExceptionFromTheReaderBecomesAWalError) {
    auto reader = [](const std::string &, uint64_t, uint32_t) -> std::vector<uint8_t> {
        throw std::runtime_error("disk on fire");
    };
    auto [code, msg] = error_of([&] { pgfo::read_wal_record(reader, 1, 0x3000100, 16 * kMB, 8192); });
    EXPECT_EQ(code, PGFO_ERR_WAL);
    EXPECT_NE(msg.find("disk on fire"), std::string::npos) << msg;
    EXPECT_NE(msg.find("000000010000000000000003"), std::string::npos) << msg;
}

TEST(SyntheticWal, InvalidSizesAreRejected) {
    SyntheticWal wal(16 * kMB, 8192);
    auto reader = wal.reader();
    for (auto sizes : {std::pair<uint32_t, uint32_t>{3 * kMB, 8192}, {512 * 1024, 8192},
                       {2048u * kMB, 8192}, {16 * kMB, 3000}, {16 * kMB, 512},
                       {16 * kMB, 131072}, {0, 8192}, {16 * kMB, 0}}) {
        uint32_t seg = sizes.first, blk = sizes.second;
        auto [code, msg] = error_of([&] { pgfo::read_wal_record(reader, 1, 0x3000100, seg, blk); });
        EXPECT_EQ(code, PGFO_ERR_WAL) << seg << " " << blk;
        EXPECT_NE(msg.find("invalid WAL"), std::string::npos) << msg;
    }
}

TEST(WalFileName, AsPostgresNamesSegments) {
    EXPECT_EQ(pgfo::wal_file_name(1, 0x1769020, 16 * kMB), "000000010000000000000001");
    EXPECT_EQ(pgfo::wal_file_name(1, 0, 16 * kMB), "000000010000000000000000");
    EXPECT_EQ(pgfo::wal_file_name(2, 0x16B374D848ull, 16 * kMB), "0000000200000016000000B3");
    EXPECT_EQ(pgfo::wal_file_name(1, 0x16B374D848ull, 1024 * kMB), "000000010000001600000002");
    EXPECT_EQ(pgfo::wal_file_name(3, 0x16B374D848ull, 1 * kMB), "000000030000001600000B37");
    EXPECT_EQ(pgfo::wal_file_name(1, 0x452E408, 64 * kMB), "000000010000000000000001");
    EXPECT_EQ(pgfo::wal_file_name(10, 0xFFFFFFFFFFFFFFFFull, 16 * kMB), "0000000AFFFFFFFF000000FF");
    EXPECT_THROW(pgfo::wal_file_name(1, 0, 3 * kMB), pgfo::Error);
}

TEST(ShutdownCheckpoint, OnlyXlogRmgrWithInfoZero) {
    pgfo::WalRecordInfo rec;
    rec.rmid = 0;
    rec.info = 0x00;
    EXPECT_TRUE(pgfo::is_shutdown_checkpoint(rec));
    rec.info = 0x01; // low bits are XLR_* flags, not the record type
    EXPECT_TRUE(pgfo::is_shutdown_checkpoint(rec));
    rec.info = 0x10; // XLOG_CHECKPOINT_ONLINE
    EXPECT_FALSE(pgfo::is_shutdown_checkpoint(rec));
    rec.info = 0x90; // XLOG_END_OF_RECOVERY
    EXPECT_FALSE(pgfo::is_shutdown_checkpoint(rec));
    rec.info = 0x00;
    rec.rmid = 1; // RM_XACT_ID
    EXPECT_FALSE(pgfo::is_shutdown_checkpoint(rec));
}

TEST(ShutdownCheckpoint, OnlineCheckpointRecordIsReadButNotShutdown) {
    SyntheticWal wal(16 * kMB, 8192);
    wal.write(0x3000100, SyntheticWal::record(114, 0, 0x10));
    auto rec = wal.read(0x3000100);
    EXPECT_EQ(rec.info, 0x10);
    EXPECT_FALSE(pgfo::is_shutdown_checkpoint(rec));
}

// ---- scanning to the end of WAL ------------------------------------------------

// Records written one after another as XLogInsert does: each starts where the
// previous one ended (after a page header at a page boundary), xl_prev chained.
struct Chain {
    SyntheticWal wal{16 * kMB, 8192};
    Lsn next = 0;
    Lsn prev = 0;
    std::vector<Lsn> starts;

    explicit Chain(Lsn first) : next(first) {}
    Lsn add(uint32_t len, uint64_t prev_override = 0) {
        if (next % 8192 == 0) next += next % (16 * kMB) == 0 ? 40 : 24;
        Lsn start = next;
        next = align8(wal.write(start, SyntheticWal::record(len, 0, 0, prev_override ? prev_override : prev)));
        prev = start;
        starts.push_back(start);
        return start;
    }
};

TEST(WalScan, FollowsRecordsToTheFirstEmptyOne) {
    Chain c(0x3000100);
    for (uint32_t len : {114u, 3000u, 9000u, 50u, 8192u * 3}) c.add(len); // across pages
    auto scan = pgfo::scan_wal_end(c.wal.reader(), 1, c.starts[0], 16 * kMB, 8192);
    EXPECT_EQ(scan.records, 5u);
    EXPECT_EQ(format_lsn(scan.end), format_lsn(c.next));
    EXPECT_NE(scan.stopped.find("xl_tot_len is 0"), std::string::npos) << scan.stopped;
}

TEST(WalScan, RecordFillingItsPageContinuesAfterTheNextHeader) {
    Chain c(0x3002000 - 64);
    c.add(64);   // ends exactly at the page boundary 0x3002000
    c.add(114);  // starts at 0x3002018, after the short header
    EXPECT_EQ(c.starts[1], 0x3002018u);
    auto scan = pgfo::scan_wal_end(c.wal.reader(), 1, c.starts[0], 16 * kMB, 8192);
    EXPECT_EQ(scan.records, 2u);
    EXPECT_EQ(format_lsn(scan.end), format_lsn(c.next));
    // a start given as a page boundary (a minimum recovery point) means the record after its header
    auto from_boundary = pgfo::scan_wal_end(c.wal.reader(), 1, 0x3002000, 16 * kMB, 8192);
    EXPECT_EQ(from_boundary.records, 1u);
    EXPECT_EQ(from_boundary.end, scan.end);
}

TEST(WalScan, StaleRecordWithAnotherPrevEndsTheScan) {
    // a recycled segment: an intact old record where the next new one would start
    Chain c(0x3000100);
    c.add(114);
    c.add(200);
    Lsn stale = c.add(114, 0x2FFFF00);
    auto scan = pgfo::scan_wal_end(c.wal.reader(), 1, c.starts[0], 16 * kMB, 8192);
    EXPECT_EQ(scan.records, 2u);
    EXPECT_EQ(scan.end, stale);
    EXPECT_NE(scan.stopped.find("xl_prev"), std::string::npos) << scan.stopped;
}

TEST(WalScan, MissingNextPageOrNothingAtTheStartEndTheScan) {
    Chain c(0x3002000 - 200);
    c.add(80);
    c.add(120); // ends exactly at 0x3002000; that page was never written
    auto scan = pgfo::scan_wal_end(c.wal.reader(), 1, c.starts[0], 16 * kMB, 8192);
    EXPECT_EQ(scan.records, 2u);
    EXPECT_EQ(scan.end, 0x3002000u);
    EXPECT_NE(scan.stopped.find("no such page"), std::string::npos) << scan.stopped;
    // nothing valid at the start: no record, the end is the start
    SyntheticWal empty(16 * kMB, 8192);
    empty.page(0x3000000);
    auto none = pgfo::scan_wal_end(empty.reader(), 1, 0x3000100, 16 * kMB, 8192);
    EXPECT_EQ(none.records, 0u);
    EXPECT_EQ(none.end, 0x3000100u);
    EXPECT_NE(none.stopped.find("xl_tot_len is 0"), std::string::npos) << none.stopped;
}

TEST(WalScan, RecordsLargerThanACheckpointAreFollowed) {
    Chain c(0x3000100);
    c.add(114);
    c.add(200000); // a record with several full-page images
    c.add(114);
    auto scan = pgfo::scan_wal_end(c.wal.reader(), 1, c.starts[0], 16 * kMB, 8192);
    EXPECT_EQ(scan.records, 3u);
    EXPECT_EQ(scan.end, c.next);
}

} // namespace
