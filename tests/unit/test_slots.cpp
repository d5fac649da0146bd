// Slot state files (pg_replslot/<name>/state) of PostgreSQL 17 and 18 and the
// readiness of failover slots. The expected values in
// tests/data/replslot/expected.txt were read from pg_replication_slots on the
// servers that wrote the files, right before their shutdown.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "pg/lsn.h"
#include "steps/slots.h"

namespace {

const std::string kDir = std::string(PGFO_TEST_DATA_DIR) + "/replslot/";

std::string read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::vector<std::string>> expected_rows() {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(read_all(kDir + "expected.txt"));
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::string cell;
        std::istringstream ls(line);
        while (std::getline(ls, cell, '|')) f.push_back(cell);
        while (f.size() < 6) f.push_back("");
        rows.push_back(f);
    }
    return rows;
}

TEST(SlotState, RealFilesOf17And18) {
    auto rows = expected_rows();
    ASSERT_EQ(rows.size(), 6u);
    for (const auto &r : rows) {
        SCOPED_TRACE(r[0] + " " + r[1]);
        pgfo::SlotFile f = pgfo::parse_slot_state(read_all(kDir + r[0] + "-" + r[1] + ".state"));
        EXPECT_EQ(f.name, r[1]);
        EXPECT_EQ(f.logical, !r[2].empty());
        EXPECT_EQ(f.failover, r[3] == "t");
        EXPECT_EQ(f.synced, r[4] == "t");
        if (!r[5].empty()) EXPECT_EQ(pgfo::format_lsn(f.confirmed_flush), r[5]);
        else EXPECT_EQ(f.confirmed_flush, 0u);
    }
}

TEST(SlotState, CorruptOrForeignFilesAreRefused) {
    std::string good = read_all(kDir + "pg17-cdc_failover.state");
    ASSERT_EQ(good.size(), 200u);
    std::string flipped = good;
    flipped[120] ^= 1; // inside the checksummed part
    EXPECT_THROW(pgfo::parse_slot_state(flipped), pgfo::Error);
    EXPECT_THROW(pgfo::parse_slot_state(good.substr(0, 184)), pgfo::Error);
    std::string magic = good;
    magic[0] ^= 1;
    EXPECT_THROW(pgfo::parse_slot_state(magic), pgfo::Error);
    std::string version = good;
    version[8] = 4;
    EXPECT_THROW(pgfo::parse_slot_state(version), pgfo::Error);
}

pgfo::LogicalSlot copy(const std::string &name, const char *flush, bool synced = true, bool temporary = false,
                       const std::string &invalidation = "") {
    pgfo::LogicalSlot s;
    s.name = name;
    s.failover = true;
    s.synced = synced;
    s.temporary = temporary;
    s.invalidation = invalidation;
    s.confirmed_flush = pgfo::parse_lsn(flush);
    return s;
}

TEST(SlotReadiness, EachStateNamed) {
    std::vector<pgfo::LogicalSlot> cand = {copy("ok", "0/300"),       copy("behind", "0/100"),
                                           copy("own", "0/300", false), copy("temp", "0/300", true, true),
                                           copy("gone", "0/300", true, false, "wal_removed"),
                                           copy("ahead", "0/100")};
    std::map<std::string, std::optional<pgfo::Lsn>> expected = {
        {"ok", pgfo::parse_lsn("0/300")},    {"behind", pgfo::parse_lsn("0/200")}, {"own", std::nullopt},
        {"temp", std::nullopt},              {"gone", std::nullopt},               {"missing", std::nullopt},
        {"ahead", pgfo::parse_lsn("0/900")}};
    auto r = pgfo::slot_readiness(cand, expected, pgfo::parse_lsn("0/500"));
    std::map<std::string, pgfo::SlotReadiness> by;
    for (const auto &x : r) by[x.name] = x;
    EXPECT_TRUE(by["ok"].ready);
    EXPECT_EQ(by["ok"].state, "ready");
    EXPECT_FALSE(by["ok"].advance_to);
    EXPECT_TRUE(by["behind"].ready);
    ASSERT_TRUE(by["behind"].advance_to);
    EXPECT_EQ(pgfo::format_lsn(*by["behind"].advance_to), "0/200");
    EXPECT_FALSE(by["own"].ready);
    EXPECT_EQ(by["own"].state.rfind("not synced", 0), 0u);
    EXPECT_FALSE(by["temp"].ready);
    EXPECT_EQ(by["temp"].state.rfind("not sync-ready", 0), 0u);
    EXPECT_FALSE(by["gone"].ready);
    EXPECT_EQ(by["gone"].state, "invalidated (wal_removed)");
    EXPECT_FALSE(by["missing"].ready);
    EXPECT_EQ(by["missing"].state.rfind("missing", 0), 0u);
    EXPECT_FALSE(by["ahead"].ready); // consumers confirmed WAL the candidate never received
    EXPECT_EQ(by["ahead"].state.rfind("consumers ahead", 0), 0u);
}

} // namespace
