// Timeline history files.
#include <gtest/gtest.h>

#include "core/error.h"
#include "pg/history.h"

namespace {

std::pair<int, std::string> error_of(std::string_view text) {
    try {
        pgfo::parse_history(text);
        return {0, ""};
    } catch (const pgfo::Error &e) {
        return {e.code(), e.what()};
    }
}

TEST(History, ParsesWhatPostgresWrites) {
    // 00000003.history after two promotions (writeTimeLineHistory format).
    const char *text = "1\t0/6F6F4E0\tno recovery target specified\n"
                       "\n"
                       "2\t0/7000098\tno recovery target specified\n";
    auto entries = pgfo::parse_history(text);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].parent_timeline, 1u);
    EXPECT_EQ(entries[0].switch_point, 0x6F6F4E0u);
    EXPECT_EQ(entries[0].reason, "no recovery target specified");
    EXPECT_EQ(entries[1].parent_timeline, 2u);
    EXPECT_EQ(entries[1].switch_point, 0x7000098u);
}

TEST(History, CommentsBlankLinesAndCrLfAreIgnored) {
    const char *text = "# comment\r\n"
                       "   # indented comment\n"
                       "  \t \n"
                       "1\t16/B374D848\tbefore 2000-01-01 00:00:00+00\r\n"
                       "4 1F/0";
    auto entries = pgfo::parse_history(text);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].switch_point, 0x16B374D848ull);
    EXPECT_EQ(entries[0].reason, "before 2000-01-01 00:00:00+00");
    EXPECT_EQ(entries[1].parent_timeline, 4u);
    EXPECT_EQ(entries[1].switch_point, 0x1F00000000ull);
    EXPECT_EQ(entries[1].reason, "");
}

TEST(History, EmptyTextHasNoEntries) {
    EXPECT_TRUE(pgfo::parse_history("").empty());
    EXPECT_TRUE(pgfo::parse_history("\n\n# only a comment\n").empty());
}

TEST(History, MalformedLinesNameTheLine) {
    struct { const char *text; const char *want; } cases[] = {
        {"x\t0/1\treason\n", "line 1: expected a numeric timeline ID"},
        {"1\t0/1\n\nfoo\n", "line 3: expected a numeric timeline ID"},
        {"1\n", "line 1: expected a switch point location"},
        {"1\t0/\treason\n", "line 1: expected a switch point location"},
        {"1\t0x10\treason\n", "line 1: expected a switch point location"},
        {"0\t0/1\treason\n", "line 1: expected a numeric timeline ID"},
        {"-1\t0/1\n", "line 1: expected a numeric timeline ID"},
        {"4294967296\t0/1\n", "line 1: expected a numeric timeline ID"},
        {"2\t0/1\n1\t0/2\n", "line 2: timeline IDs must be in increasing sequence"},
        {"2\t0/1\n2\t0/2\n", "line 2: timeline IDs must be in increasing sequence"},
    };
    for (auto &c : cases) {
        auto [code, msg] = error_of(c.text);
        EXPECT_EQ(code, PGFO_ERR_STATE) << c.text;
        EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
    }
}

TEST(History, SwitchPointFromParent) {
    auto entries = pgfo::parse_history("1\t0/6F6F4E0\tr\n2\t0/7000098\tr\n");
    EXPECT_EQ(pgfo::switch_point_from(entries, 1), 0x6F6F4E0u);
    EXPECT_EQ(pgfo::switch_point_from(entries, 2), 0x7000098u);
    EXPECT_EQ(pgfo::switch_point_from(entries, 3), std::nullopt);
    EXPECT_EQ(pgfo::switch_point_from({}, 1), std::nullopt);
}

TEST(History, FileName) {
    EXPECT_EQ(pgfo::history_file_name(2), "00000002.history");
    EXPECT_EQ(pgfo::history_file_name(0x1A), "0000001A.history");
    EXPECT_EQ(pgfo::history_file_name(0xFFFFFFFF), "FFFFFFFF.history");
}

TEST(History, ConflictAgreeingHistories) {
    auto h2 = pgfo::parse_history("1\t0/5000060\tr\n");
    auto h3 = pgfo::parse_history("1\t0/5000060\tr\n2\t0/6000028\tr\n");
    EXPECT_EQ(pgfo::history_conflict(1, {}, 2, h2), "");  // the old timeline forked into 2
    EXPECT_EQ(pgfo::history_conflict(2, h2, 2, h2), "");  // the same timeline 2
    EXPECT_EQ(pgfo::history_conflict(2, h2, 3, h3), "");  // 2 is an ancestor of 3
    EXPECT_EQ(pgfo::history_conflict(1, {}, 3, h3), "");
    EXPECT_EQ(pgfo::history_conflict(1, {}, 1, {}), "");
}

TEST(History, ConflictSameNumberOtherPromotion) {
    // two standbys of one primary, each promoted to timeline 2 at another point
    auto mine = pgfo::parse_history("1\t0/5001000\tno recovery target specified\n");
    auto theirs = pgfo::parse_history("1\t0/5000060\tno recovery target specified\n");
    std::string why = pgfo::history_conflict(2, mine, 2, theirs);
    EXPECT_NE(why.find("histories differ"), std::string::npos) << why;
    EXPECT_NE(why.find("0/5001000"), std::string::npos) << why;
    EXPECT_NE(why.find("0/5000060"), std::string::npos) << why;
    EXPECT_NE(why.find("same timeline number"), std::string::npos) << why;
    // and one generation later: 2 (ours) is not the 2 that timeline 3 came from
    auto h3 = pgfo::parse_history("1\t0/5000060\tr\n2\t0/6000028\tr\n");
    EXPECT_NE(pgfo::history_conflict(2, mine, 3, h3).find("histories differ"), std::string::npos);
}

TEST(History, ConflictTimelinesOutOfReach) {
    auto h2 = pgfo::parse_history("1\t0/5000060\tr\n");
    EXPECT_NE(pgfo::history_conflict(3, {}, 2, h2).find("newer"), std::string::npos);
    // timeline 3 forked from 1 directly: a node on 2 is not in its history
    auto h3 = pgfo::parse_history("1\t0/5000060\tr\n");
    EXPECT_NE(pgfo::history_conflict(2, h2, 3, h3).find("not in the history"), std::string::npos);
    // the primary descends from a timeline the node's history lacks
    auto h4 = pgfo::parse_history("1\t0/5000060\tr\n3\t0/6000028\tr\n");
    auto mine3 = pgfo::parse_history("2\t0/5800000\tr\n");
    EXPECT_NE(pgfo::history_conflict(3, mine3, 4, h4).find("histories differ"), std::string::npos);
}

} // namespace
