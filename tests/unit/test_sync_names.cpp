// synchronous_standby_names: grammar of syncrep_gram.y / syncrep_scanner.l.
#include <gtest/gtest.h>

#include "core/error.h"
#include "config/sync_names.h"

namespace {

using pgfo::SyncSpec;
using Method = SyncSpec::Method;
using Names = std::vector<std::string>;

std::pair<int, std::string> error_of(std::string_view text) {
    try {
        pgfo::parse_sync_names(text);
        return {0, ""};
    } catch (const pgfo::Error &e) {
        return {e.code(), e.what()};
    }
}

void expect_spec(std::string_view text, Method method, int num, const Names &names) {
    SyncSpec spec = pgfo::parse_sync_names(text);
    EXPECT_EQ(spec.method, method) << text;
    EXPECT_EQ(spec.num, num) << text;
    EXPECT_EQ(spec.names, names) << text;
}

TEST(SyncNames, Empty) {
    expect_spec("", Method::None, 0, {});
    EXPECT_EQ(pgfo::format_sync_names(pgfo::parse_sync_names("")), "");
}

TEST(SyncNames, PlainListsArePriorityOne) {
    expect_spec("*", Method::List, 1, {"*"});
    expect_spec("a", Method::List, 1, {"a"});
    expect_spec("a,b", Method::List, 1, {"a", "b"});
    expect_spec(" a ,\tb\n", Method::List, 1, {"a", "b"});
    expect_spec("s1, *", Method::List, 1, {"s1", "*"});
    expect_spec("1", Method::List, 1, {"1"}); // a NUM is also a standby name
    expect_spec("a, 2", Method::List, 1, {"a", "2"});
}

TEST(SyncNames, CountedForms) {
    expect_spec("2 (a,b)", Method::First, 2, {"a", "b"});
    expect_spec("2(a,b)", Method::First, 2, {"a", "b"});
    expect_spec("FIRST 1 (a)", Method::First, 1, {"a"});
    expect_spec("first 3 (a, b, c)", Method::First, 3, {"a", "b", "c"});
    expect_spec("ANY 2 (a, \"B c\", d)", Method::Any, 2, {"a", "B c", "d"});
    expect_spec("aNy 1 (*)", Method::Any, 1, {"*"});
    expect_spec("ANY 5 (a, b)", Method::Any, 5, {"a", "b"}); // more than listed: accepted
    expect_spec("1 (2, 3)", Method::First, 1, {"2", "3"});
}

TEST(SyncNames, UnquotedNamesKeepTheirCase) {
    // The scanner does pstrdup(yytext): no downcasing, unlike SQL identifiers.
    expect_spec("Standby_A, sb$2", Method::List, 1, {"Standby_A", "sb$2"});
    expect_spec("anyone, firstly", Method::List, 1, {"anyone", "firstly"}); // not keywords
}

TEST(SyncNames, QuotedNames) {
    expect_spec("\"my standby\"", Method::List, 1, {"my standby"});
    expect_spec("\"a\"\"b\"", Method::List, 1, {"a\"b"});
    expect_spec("\"\"", Method::List, 1, {""});
    expect_spec("\"any\", \"FIRST\"", Method::List, 1, {"any", "FIRST"});
    expect_spec("FIRST 1 (\"x,y\", \"(z)\")", Method::First, 1, {"x,y", "(z)"});
    expect_spec("\"*\"", Method::List, 1, {"*"});
}

TEST(SyncNames, SyntaxErrors) {
    const char *bad[] = {
        " ",          // non-empty: the grammar needs a name
        ",",          "a,",          ",a",         "a b",        "a,,b",
        "any",        "first",       "ANY (a)",    "FIRST a (b)", "2 (a",
        "2 a",        "2 ()",        "2 (a) b",    "(a)",        "ANY 1 a",
        "a-b",        "a.b",         "1a",         "\"unterminated", "a;b",
        "ANY 0 (a)",  "0 (a)",       "FIRST 99999999999 (a)", "ANY -1 (a)",
    };
    for (const char *text : bad) {
        auto [code, msg] = error_of(text);
        EXPECT_EQ(code, PGFO_ERR_CONFIG) << '"' << text << '"';
        EXPECT_NE(msg.find("invalid synchronous_standby_names"), std::string::npos) << msg;
    }
}

TEST(SyncNames, ErrorsSayWhere) {
    EXPECT_NE(error_of("a b").second.find("syntax error at or near \"b\" (position 3)"),
              std::string::npos);
    EXPECT_NE(error_of("2 (a").second.find("syntax error at end of input"), std::string::npos);
    EXPECT_NE(error_of("x, \"y").second.find("unterminated quoted name"), std::string::npos);
    EXPECT_NE(error_of("ANY 0 (a)").second.find("must be greater than zero"), std::string::npos);
}

TEST(SyncNames, FormatRoundTrips) {
    const char *texts[] = {"a", "a, b", "*", "FIRST 2 (a, b)", "ANY 1 (a, \"B c\")",
                           "ANY 2 (\"any\", \"first\", \"1\")", "\"a\"\"b\"", "\"\"",
                           "FIRST 1 (\"x,y\", \"é\")"};
    for (const char *text : texts) {
        SyncSpec spec = pgfo::parse_sync_names(text);
        std::string formatted = pgfo::format_sync_names(spec);
        EXPECT_EQ(formatted, text);
        SyncSpec again = pgfo::parse_sync_names(formatted);
        EXPECT_EQ(again.method, spec.method);
        EXPECT_EQ(again.num, spec.num);
        EXPECT_EQ(again.names, spec.names);
    }
    // Equivalent forms come out in the canonical one.
    EXPECT_EQ(pgfo::format_sync_names(pgfo::parse_sync_names("2 (a,b)")), "FIRST 2 (a, b)");
    EXPECT_EQ(pgfo::format_sync_names(pgfo::parse_sync_names("any 1 (A)")), "ANY 1 (A)");
}

TEST(SyncNames, FormatOfHandBuiltSpecs) {
    SyncSpec spec;
    EXPECT_EQ(pgfo::format_sync_names(spec), "");
    spec.method = Method::Any;
    spec.num = 1;
    EXPECT_EQ(pgfo::format_sync_names(spec), ""); // no names: asynchronous
    spec.names = {"has space", "ok"};
    EXPECT_EQ(pgfo::format_sync_names(spec), "ANY 1 (\"has space\", ok)");
}

TEST(SyncNames, RestrictKeepsTheForm) {
    const Names avail = {"a", "c"};
    EXPECT_EQ(pgfo::restrict_sync_names("ANY 2 (a, b, c)", avail), "ANY 2 (a, c)");
    EXPECT_EQ(pgfo::restrict_sync_names("FIRST 2 (a, b, c)", avail), "FIRST 2 (a, c)");
    EXPECT_EQ(pgfo::restrict_sync_names("FIRST 3 (a, b, c)", avail), "FIRST 2 (a, c)");
    EXPECT_EQ(pgfo::restrict_sync_names("ANY 2 (a, b)", avail), "ANY 1 (a)");
    EXPECT_EQ(pgfo::restrict_sync_names("2 (b, c)", avail), "FIRST 1 (c)");
    EXPECT_EQ(pgfo::restrict_sync_names("a, b, c", avail), "a, c");
    EXPECT_EQ(pgfo::restrict_sync_names("b", avail), "");
    EXPECT_EQ(pgfo::restrict_sync_names("", avail), "");
}

TEST(SyncNames, RestrictMatchesCaseInsensitively) {
    EXPECT_EQ(pgfo::restrict_sync_names("ANY 1 (Node_A, \"NODE b\")", {"node_a", "node B"}),
              "ANY 1 (Node_A, \"NODE b\")");
    EXPECT_EQ(pgfo::restrict_sync_names("x, Y", {"y"}), "Y");
}

TEST(SyncNames, RestrictWildcard) {
    EXPECT_EQ(pgfo::restrict_sync_names("*", {"anything"}), "*");
    EXPECT_EQ(pgfo::restrict_sync_names("*", {}), "");
    EXPECT_EQ(pgfo::restrict_sync_names("ANY 2 (gone, *)", {"s1"}), "ANY 1 (*)");
}

TEST(SyncNames, RestrictRejectsBadInput) {
    EXPECT_THROW(pgfo::restrict_sync_names("ANY (a)", {"a"}), pgfo::Error);
}

TEST(SyncNames, Listed) {
    EXPECT_EQ(pgfo::sync_names_listed(""), Names{});
    EXPECT_EQ(pgfo::sync_names_listed("*"), Names{});
    EXPECT_EQ(pgfo::sync_names_listed("ANY 2 (a, \"B c\", *, d)"), (Names{"a", "B c", "d"}));
    EXPECT_THROW(pgfo::sync_names_listed("a b"), pgfo::Error);
}

} // namespace
