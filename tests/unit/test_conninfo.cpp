// primary_conninfo as written into postgresql.auto.conf / recovery.conf: a
// libpq connection string (values quoted for libpq's parser) inside a string
// literal of PostgreSQL's configuration file syntax. Both layers must give
// back exactly the role and application_name configured, whatever quotes and
// backslashes they hold. libpq's own parser (PQconninfoParse) reads the inner
// layer back; the outer layer is read with the rules of PostgreSQL's
// configuration lexer (guc-file.l: GUC_QUOTED_STRING and DeescapeQuotedString).
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include <map>
#include <string>

#include "config/config.h"
#include "steps/ops.h"
#include "steps/rejoin.h"

using namespace pgfo;

namespace {

// The value of a quoted literal as PostgreSQL's configuration lexer reads it:
// '' is ', a \ escapes the next character (\b \f \n \r \t and octal are
// control characters, which never reach here). Returns false where the lexer
// would end the string early or see a syntax error.
bool read_conf_literal(const std::string &lit, std::string &out) {
    if (lit.size() < 2 || lit.front() != '\'' || lit.back() != '\'') return false;
    out.clear();
    for (size_t i = 1; i + 1 < lit.size(); ++i) {
        char c = lit[i];
        if (c == '\\') {
            if (i + 2 >= lit.size()) return false; // the escape would eat the closing quote
            char n = lit[++i];
            if (std::string("bfnrt01234567").find(n) != std::string::npos) return false;
            out += n;
        } else if (c == '\'') {
            if (i + 2 >= lit.size() || lit[i + 1] != '\'') return false; // ends before the end
            out += '\'';
            ++i;
        } else {
            out += c;
        }
    }
    return true;
}

std::map<std::string, std::string> parse_conninfo(const std::string &ci) {
    char *err = nullptr;
    PQconninfoOption *opts = PQconninfoParse(ci.c_str(), &err);
    std::map<std::string, std::string> out;
    if (!opts) {
        ADD_FAILURE() << "libpq cannot parse " << ci << ": " << (err ? err : "?");
        PQfreemem(err);
        return out;
    }
    for (PQconninfoOption *o = opts; o->keyword; ++o)
        if (o->val) out[o->keyword] = o->val;
    PQconninfoFree(opts);
    return out;
}

} // namespace

TEST(Conninfo, ConfLiteralDoublesQuotesAndBackslashes) {
    // What ALTER SYSTEM writes (escape_single_quotes_ascii).
    EXPECT_EQ(conf_literal("plain"), "'plain'");
    EXPECT_EQ(conf_literal("o'neil"), "'o''neil'");
    EXPECT_EQ(conf_literal("DOM\\svc"), "'DOM\\\\svc'");
    EXPECT_EQ(conf_literal("a\\'b"), "'a\\\\''b'");
    EXPECT_EQ(conf_literal(""), "''");
}

TEST(Conninfo, ConninfoValueEscapesForLibpq) {
    EXPECT_EQ(conninfo_value("o'neil"), "'o\\'neil'");
    EXPECT_EQ(conninfo_value("DOM\\svc"), "'DOM\\\\svc'");
    for (const std::string v : {"o'neil", "DOM\\svc", "a b", "x\\'y\\", "'", "\\", ""})
        EXPECT_EQ(parse_conninfo("user=" + conninfo_value(v))["user"], v) << v;
}

TEST(Conninfo, PrimaryConninfoRoundTripsThroughBothLayers) {
    Config cfg;
    Node primary, follower;
    primary.id = 1;
    primary.host = "db1.example";
    primary.port = 5433;
    follower.id = 0;
    const std::string users[] = {"o'neil", "DOM\\svc", "a\\'b''c\\\\", "replicator"};
    const std::string apps[] = {"node0\\x", "node0'q", "'\\", "node0"};
    for (const auto &user : users)
        for (const auto &app : apps) {
            SCOPED_TRACE(user + " / " + app);
            cfg.repl_user = user;
            follower.application_name = app;
            std::string ci = primary_conninfo(cfg, primary, follower);
            std::string lit = conf_literal(ci);
            std::string read;
            ASSERT_TRUE(read_conf_literal(lit, read)) << "the configuration lexer would not read " << lit;
            EXPECT_EQ(read, ci);
            auto kv = parse_conninfo(read);
            EXPECT_EQ(kv["user"], user);
            EXPECT_EQ(kv["application_name"], app);
            EXPECT_EQ(kv["host"], "db1.example");
            EXPECT_EQ(kv["port"], "5433");
        }
}

TEST(Conninfo, TheOldSingleLayerEscapingBrokeBothWays) {
    // The literal with only ' doubled (what was written before): the lexer
    // stops early on o'neil, and DOM\svc loses its backslash.
    auto quotes_only = [](const std::string &v) {
        std::string out = "'";
        for (char c : v) {
            if (c == '\'') out += '\'';
            out += c;
        }
        return out + "'";
    };
    std::string read;
    EXPECT_FALSE(read_conf_literal(quotes_only("user=" + conninfo_value("o'neil")), read));
    ASSERT_TRUE(read_conf_literal(quotes_only("user=" + conninfo_value("DOM\\svc")), read));
    EXPECT_EQ(parse_conninfo(read)["user"], "DOMsvc");
}
