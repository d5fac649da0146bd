#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/error.h"
#include "config/pgpool_conf.h"

namespace fs = std::filesystem;
using pgfo::read_pgpool_backends;

namespace {

class PgpoolConfTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("pgfo-pgpoolconf-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string &text, const std::string &name = "pgpool.conf") {
        std::string p = (dir_ / name).string();
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    // The message of the error read_pgpool_backends throws (and checks its code).
    std::string error_of(const std::string &text) {
        std::string p = write(text);
        try {
            read_pgpool_backends(p);
        } catch (const pgfo::Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
            return e.what();
        }
        ADD_FAILURE() << "no error for:\n" << text;
        return {};
    }
    fs::path dir_;
};

TEST_F(PgpoolConfTest, ReadsBackendsAndIgnoresOtherKeys) {
    std::string p = write("# pgpool.conf\n"
                          "listen_addresses = '*'\n"
                          "port = 9999\n"
                          "backend_hostname0 = 'db0.example'\n"
                          "backend_port0 = 5432\n"
                          "backend_weight0 = 1\n"
                          "backend_data_directory0 = '/var/lib/postgresql/15/main'\n"
                          "backend_flag0 = 'ALLOW_TO_FAILOVER'\n"
                          "backend_application_name0 = 'node0'   # trailing comment\n"
                          "\n"
                          "  backend_hostname1='db1'\n"
                          "backend_port1 5433\n"
                          "BACKEND_DATA_DIRECTORY1 = '/data/it''s here'\n"
                          "backend_application_name1 = 'a\\'b'\n"
                          "some_unknown_thing = 'unterminated\n"
                          "health_check_period = junk junk junk\n");
    auto b = read_pgpool_backends(p);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[0].id, 0);
    EXPECT_EQ(b[0].host, "db0.example");
    EXPECT_EQ(b[0].port, 5432);
    EXPECT_EQ(b[0].data_directory, "/var/lib/postgresql/15/main");
    EXPECT_EQ(b[0].application_name, "node0");
    EXPECT_EQ(b[0].line, 4);
    EXPECT_EQ(b[1].id, 1);
    EXPECT_EQ(b[1].host, "db1");
    EXPECT_EQ(b[1].port, 5433);
    EXPECT_EQ(b[1].data_directory, "/data/it's here");
    EXPECT_EQ(b[1].application_name, "a'b");
    EXPECT_EQ(b[1].line, 11);
}

TEST_F(PgpoolConfTest, LaterLinesWinAndPartialBackendsAreKept) {
    std::string p = write("backend_hostname2 = 'old'\n"
                          "backend_hostname2 = 'new'\n"
                          "backend_port5 = 6000\n"
                          "#backend_hostname3 = 'commented'\n");
    auto b = read_pgpool_backends(p);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[2].host, "new");
    EXPECT_EQ(b[2].line, 2);
    EXPECT_EQ(b[2].port, 0); // not set
    EXPECT_EQ(b[5].host, "");
    EXPECT_EQ(b[5].port, 6000);
    EXPECT_EQ(b[5].line, 3);
    EXPECT_EQ(b.count(3), 0u);
}

TEST_F(PgpoolConfTest, EmptyFileHasNoBackends) {
    EXPECT_TRUE(read_pgpool_backends(write("")).empty());
    EXPECT_TRUE(read_pgpool_backends(write("# nothing\n\n   \n")).empty());
}

TEST_F(PgpoolConfTest, BadPortNamesFileLineAndKey) {
    std::string p = write("backend_hostname0 = 'db0'\nbackend_port0 = abc\n");
    try {
        read_pgpool_backends(p);
        FAIL() << "no error";
    } catch (const pgfo::Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), p + ":2: backend_port0: 'abc' is not a port number (allowed: 1..65535)");
    }
    EXPECT_NE(error_of("backend_port1 = 0\n").find(":1: backend_port1: '0' is not a port number"), std::string::npos);
    EXPECT_NE(error_of("backend_port1 = 65536\n").find("'65536' is not a port number"), std::string::npos);
    EXPECT_NE(error_of("backend_port1 = -1\n").find("'-1' is not a port number"), std::string::npos);
    EXPECT_NE(error_of("backend_port1 = 5432x\n").find("'5432x' is not a port number"), std::string::npos);
    EXPECT_NE(error_of("backend_port1 = ''\n").find("'' is not a port number"), std::string::npos);
}

TEST_F(PgpoolConfTest, MalformedLinesOfOurKeysAreErrors) {
    EXPECT_NE(error_of("\n\nbackend_hostname0 = 'db0\n").find(":3: backend_hostname0: unterminated quoted string"),
              std::string::npos);
    EXPECT_NE(error_of("backend_hostname0 =\n").find(":1: backend_hostname0: missing value"), std::string::npos);
    EXPECT_NE(error_of("backend_hostname0 = # nothing\n").find("missing value"), std::string::npos);
    EXPECT_NE(error_of("backend_hostname0 = 'db0' extra\n").find("unexpected text after the value: 'extra'"),
              std::string::npos);
    EXPECT_NE(error_of("backend_hostname0 = db0 db1\n").find("unexpected text after the value"), std::string::npos);
    EXPECT_NE(error_of("backend_hostname128 = 'db'\n").find("backend_hostname128: backend number '128' is not allowed (allowed: 0..127"),
              std::string::npos);
    EXPECT_NE(error_of("backend_hostname01 = 'db'\n").find("backend number '01' is not allowed"), std::string::npos);
    EXPECT_NE(error_of("backend_hostname0 = 'db\\nevil'\n").find("contains a control character"), std::string::npos);
    EXPECT_NE(error_of("backend_data_directory0 = '/a\\tb'\n").find("'/a\\x09b' contains a control character"),
              std::string::npos);
}

TEST_F(PgpoolConfTest, MissingFileIsAConfigError) {
    std::string p = (dir_ / "nope.conf").string();
    try {
        read_pgpool_backends(p);
        FAIL() << "no error";
    } catch (const pgfo::Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), "cannot read pgpool.conf " + p + ": No such file or directory");
    }
}

TEST_F(PgpoolConfTest, HashInsideQuotesIsNotAComment) {
    auto b = read_pgpool_backends(write("backend_data_directory4 = '/data/#4' # comment\n"));
    EXPECT_EQ(b[4].data_directory, "/data/#4");
}

} // namespace
