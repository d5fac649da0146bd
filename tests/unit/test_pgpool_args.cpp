#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "pgpool/args.h"

using pgfo::parse_pgpool_args;
using Args = std::vector<std::string>;

namespace {

// %d %h %p %D %m %H %M %P %r %R %N %S
Args full() {
    return {"0", "db0", "5432", "/data/0", "1", "db1", "0", "0", "5433", "/data/1", "db0", "5432"};
}

std::string error_of(const Args &a) {
    try {
        parse_pgpool_args(a);
    } catch (const pgfo::Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_USAGE);
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
}

TEST(PgpoolArgs, TwelveArguments) {
    auto a = parse_pgpool_args(full());
    EXPECT_EQ(a.failed_node, 0);
    EXPECT_EQ(a.failed_host, "db0");
    EXPECT_EQ(a.failed_port, 5432);
    EXPECT_EQ(a.failed_data_dir, "/data/0");
    EXPECT_EQ(a.new_main_node, 1);
    EXPECT_EQ(a.new_main_host, "db1");
    EXPECT_EQ(a.old_main_node, 0);
    EXPECT_EQ(a.old_primary_node, 0);
    EXPECT_EQ(a.new_main_port, 5433);
    EXPECT_EQ(a.new_main_data_dir, "/data/1");
    EXPECT_EQ(a.old_primary_host, "db0");
    EXPECT_EQ(a.old_primary_port, 5432);
}

TEST(PgpoolArgs, EightAndTenArguments) {
    Args a = full();
    a.resize(10); // pgpool 4.0: no %N %S
    auto p = parse_pgpool_args(a);
    EXPECT_EQ(p.new_main_port, 5433);
    EXPECT_EQ(p.new_main_data_dir, "/data/1");
    EXPECT_FALSE(p.old_primary_host);
    EXPECT_FALSE(p.old_primary_port);

    a.resize(8);
    p = parse_pgpool_args(a);
    EXPECT_EQ(p.old_primary_node, 0);
    EXPECT_FALSE(p.new_main_port);
    EXPECT_FALSE(p.new_main_data_dir);

    a.resize(9);
    a[8] = "6000";
    EXPECT_EQ(parse_pgpool_args(a).new_main_port, 6000);
    a.resize(11);
    a[10] = "db9";
    EXPECT_EQ(parse_pgpool_args(a).old_primary_host, "db9");
}

TEST(PgpoolArgs, TooFewOrTooMany) {
    Args a = full();
    a.resize(7);
    EXPECT_NE(error_of(a).find("expected 8 to 12 pgpool arguments"), std::string::npos);
    EXPECT_NE(error_of(a).find("got 7"), std::string::npos);
    EXPECT_NE(error_of({}).find("got 0"), std::string::npos);
    a = full();
    a.push_back("extra");
    EXPECT_NE(error_of(a).find("got 13"), std::string::npos);
}

TEST(PgpoolArgs, MissingValuesEmptyOrTwoQuoteCharacters) {
    // No node alive: pgpool passes -1 and `""` (empty after /bin/sh).
    Args a = {"0", "db0", "5432", "/data/0", "-1", "", "0", "0", "", "", "\"\"", "\"\""};
    auto p = parse_pgpool_args(a);
    EXPECT_EQ(p.new_main_node, -1);
    EXPECT_FALSE(p.new_main_host);
    EXPECT_FALSE(p.new_main_port);
    EXPECT_FALSE(p.new_main_data_dir);
    EXPECT_FALSE(p.old_primary_host);
    EXPECT_FALSE(p.old_primary_port);

    a = {"1", "\"\"", "\"\"", "\"\"", "0", "db0", "-1", "-1"};
    p = parse_pgpool_args(a);
    EXPECT_EQ(p.failed_node, 1);
    EXPECT_FALSE(p.failed_host);
    EXPECT_FALSE(p.failed_port);
    EXPECT_FALSE(p.failed_data_dir);
    EXPECT_EQ(p.old_main_node, -1);
    EXPECT_EQ(p.old_primary_node, -1);
}

TEST(PgpoolArgs, NodeIdsAreStrictDecimal) {
    for (const char *bad : {"1a", " 1", "1 ", "+1", "0x1", "-2", "128", "99999999999999999999", "", "\"\"", "-0",
                            "01", "1.0", "-", "１"}) {
        Args a = full();
        a[0] = bad;
        std::string e = error_of(a);
        EXPECT_EQ(e.rfind("argument 1 (%d, failed node id): ", 0), 0u) << bad << " -> " << e;
    }
    Args a = full();
    a[4] = "abc";
    EXPECT_EQ(error_of(a), "argument 5 (%m, new main node id): 'abc' is not a node id (-1..127)");
    a = full();
    a[6] = "";
    EXPECT_EQ(error_of(a), "argument 7 (%M, old main node id): missing (allowed: a node id -1..127)");
    a = full();
    a[7] = "200";
    EXPECT_EQ(error_of(a), "argument 8 (%P, old primary node id): '200' is not a node id (-1..127)");

    a = full();
    a[0] = "127";
    EXPECT_EQ(parse_pgpool_args(a).failed_node, 127);
    a[0] = "-1";
    EXPECT_EQ(parse_pgpool_args(a).failed_node, -1);
}

TEST(PgpoolArgs, PortsAreChecked) {
    Args a = full();
    a[2] = "abc";
    EXPECT_EQ(error_of(a), "argument 3 (%p, failed node port): 'abc' is not a port number (1-65535)");
    for (const char *bad : {"0", "65536", "-1", "5432x", " 5432", "+5432", "0x10", "05432", "99999999999"}) {
        a = full();
        a[8] = bad;
        EXPECT_EQ(error_of(a).rfind("argument 9 (%r, new main node port): ", 0), 0u) << bad;
    }
    a = full();
    a[11] = "x";
    EXPECT_EQ(error_of(a).rfind("argument 12 (%S, old primary node port): 'x'", 0), 0u);
    a = full();
    a[2] = "1";
    a[8] = "65535";
    auto p = parse_pgpool_args(a);
    EXPECT_EQ(p.failed_port, 1);
    EXPECT_EQ(p.new_main_port, 65535);
}

TEST(PgpoolArgs, HostileStringsAreKeptAsData) {
    Args a = full();
    a[1] = "db0;rm -rf /";
    a[3] = "/data/$(touch pwned)`id`\n\xff\xfe";
    a[5] = "$(reboot)";
    a[9] = "/x y/'\"";
    a[10] = "`id`";
    auto p = parse_pgpool_args(a);
    EXPECT_EQ(p.failed_host, "db0;rm -rf /");
    EXPECT_EQ(p.failed_data_dir, "/data/$(touch pwned)`id`\n\xff\xfe");
    EXPECT_EQ(p.new_main_host, "$(reboot)");
    EXPECT_EQ(p.new_main_data_dir, "/x y/'\"");
    EXPECT_EQ(p.old_primary_host, "`id`");
}

TEST(PgpoolArgs, HostsWithControlCharactersAreRejected) {
    Args a = full();
    a[1] = "db0\nevil";
    EXPECT_EQ(error_of(a),
              "argument 2 (%h, failed node host): 'db0\\x0aevil' contains a control character or newline "
              "(not a host name)");
    a = full();
    a[5] = std::string("db1\0x", 5);
    EXPECT_EQ(error_of(a).rfind("argument 6 (%H, new main node host): ", 0), 0u);
    a = full();
    a[10] = "db\t0";
    EXPECT_EQ(error_of(a).rfind("argument 11 (%N, old primary node host): ", 0), 0u);
    a = full();
    a[10] = "db\x1b[31m";
    EXPECT_NE(error_of(a).find("control character"), std::string::npos);
}

} // namespace
