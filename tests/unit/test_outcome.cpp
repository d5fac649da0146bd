// Outcome states: each enum value has one spelling in the reports, the
// spellings round-trip, and the event schema lists every one of them.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "steps/outcome.h"

using namespace pgfo;

namespace {

nlohmann::json schema_rejoin_values() {
    std::ifstream in(std::string(PGFO_TEST_DATA_DIR) + "/../../docs/event.schema.json");
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json schema = nlohmann::json::parse(ss.str());
    return schema.at("$defs").at("rejoin").at("enum");
}

template <class E>
void expect_spellings(std::initializer_list<std::pair<E, const char *>> all) {
    const nlohmann::json allowed = schema_rejoin_values();
    for (const auto &[e, text] : all) {
        EXPECT_EQ(spelling(e), text);
        EXPECT_EQ(nlohmann::json(text).get<E>(), e) << text;
        EXPECT_NE(std::find(allowed.begin(), allowed.end(), text), allowed.end())
            << text << " is not in docs/event.schema.json's rejoin enum";
    }
    EXPECT_EQ(nlohmann::json("something else").get<E>(), E::Unknown);
}

} // namespace

TEST(OutcomeTest, OldPrimaryRejoinSpellings) {
    expect_spellings<OldPrimaryRejoin>({{OldPrimaryRejoin::Unknown, "unknown"},
                                        {OldPrimaryRejoin::Already, "already"},
                                        {OldPrimaryRejoin::Clean, "clean"},
                                        {OldPrimaryRejoin::NeedsRewind, "needs_rewind"}});
}

TEST(OutcomeTest, RejoinSpellings) {
    expect_spellings<Rejoin>({{Rejoin::Unknown, "unknown"},
                              {Rejoin::Already, "already"},
                              {Rejoin::Clean, "clean"},
                              {Rejoin::Rewound, "rewound"}});
}

TEST(OutcomeTest, ReportsCarryTheSpelling) {
    nlohmann::json verdict = {{"old_primary_rejoin", OldPrimaryRejoin::NeedsRewind}, {"rejoin", Rejoin::Rewound}};
    EXPECT_EQ(verdict.dump(), R"({"old_primary_rejoin":"needs_rewind","rejoin":"rewound"})");
}
