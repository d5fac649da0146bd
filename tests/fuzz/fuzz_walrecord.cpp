// WAL record reader. Input layout (little-endian):
//   0  u64  record start LSN
//   8  u32  timeline
//   12 u8   segment size: 1 MB << (v % 11)
//   13 u8   block size: 1 kB << (v % 7)
//   14 u8   flags: bit 0 = write the requested page address into each page
//           header (so that mutations get past the page address check)
//   15 u8   unused
//   16 ...  the pages, in the order the reader asks for them; the last one
//           may be short (a short read)
// The reader callback checks that it is asked for whole, aligned pages inside
// one segment of the right file.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "pg/walrecord.h"

namespace {

uint64_t load_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
}
uint32_t load_u32(const uint8_t *p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16) return 0;
    const pgfo::Lsn start = load_u64(data);
    const uint32_t timeline = load_u32(data + 8);
    const uint32_t segment_size = (1u << 20) << (data[12] % 11);
    const uint32_t block_size = 1024u << (data[13] % 7);
    const bool fix_pageaddr = data[14] & 1;
    const uint8_t *pages = data + 16;
    const size_t pages_len = size - 16;

    size_t calls = 0;
    pgfo::WalReader reader = [&](const std::string &file, uint64_t offset, uint32_t len) {
        PGFO_FUZZ_ASSERT(len == block_size);
        PGFO_FUZZ_ASSERT(offset % block_size == 0);
        PGFO_FUZZ_ASSERT(offset + len <= segment_size);
        PGFO_FUZZ_ASSERT(file.size() == 24);
        PGFO_FUZZ_ASSERT(file.compare(0, 8, pgfo::wal_file_name(timeline, 0, segment_size).substr(0, 8)) == 0);
        size_t from = calls * block_size;
        ++calls;
        std::vector<uint8_t> out;
        if (from < pages_len) {
            size_t n = std::min<size_t>(len, pages_len - from);
            out.assign(pages + from, pages + from + n);
        }
        if (fix_pageaddr && out.size() >= 16) {
            // The page address this call is for: file name gives the segment.
            uint64_t seg_hi = std::stoull(file.substr(8, 8), nullptr, 16);
            uint64_t seg_lo = std::stoull(file.substr(16, 8), nullptr, 16);
            uint64_t segno = seg_hi * (0x100000000ull / segment_size) + seg_lo;
            uint64_t addr = segno * segment_size + offset;
            for (int i = 0; i < 8; ++i) out[8 + i] = uint8_t(addr >> (8 * i));
            uint16_t info = uint16_t(out[2] | out[3] << 8);
            info = offset == 0 ? (info | 0x0002) : (info & ~0x0002);
            out[2] = uint8_t(info);
            out[3] = uint8_t(info >> 8);
        }
        return out;
    };
    try {
        pgfo::WalRecordInfo rec = pgfo::read_wal_record(reader, timeline, start, segment_size, block_size);
        PGFO_FUZZ_ASSERT(rec.start == start);
        PGFO_FUZZ_ASSERT(rec.total_length >= 24 && rec.total_length <= 64 * 1024);
        PGFO_FUZZ_ASSERT(rec.end % 8 == 0);
        PGFO_FUZZ_ASSERT(rec.end >= start + rec.total_length);
        (void)pgfo::is_shutdown_checkpoint(rec);
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_WAL);
    }
    return 0;
}
