// The C interface as a caller sees it: linked against libpgfailover.so only,
// through include/pgfailover.h. No servers: these check the contract
// (status codes, messages, NULL handling, validation, callbacks).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "pgfailover.h"

namespace {

struct Ctx {
    pgfo_ctx_t *c = nullptr;
    Ctx() { EXPECT_EQ(pgfo_ctx_new(&c), PGFO_OK); }
    ~Ctx() { pgfo_ctx_free(c); }
};

std::string temp_file(const std::string &text) {
    char path[] = "/tmp/pgfo-capi-XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(text.c_str(), f);
    fclose(f);
    return path;
}

} // namespace

TEST(CApi, Versions) {
    EXPECT_EQ(pgfo_version_number(), PGFO_VERSION_NUM);
    EXPECT_STREQ(pgfo_version(), PGFO_VERSION_STRING);
}

TEST(CApi, StatusTexts) {
    EXPECT_STREQ(pgfo_status_name(PGFO_ERR_TIMEOUT), "PGFO_ERR_TIMEOUT");
    EXPECT_STREQ(pgfo_strerror(PGFO_OK), "success");
    EXPECT_STREQ(pgfo_status_name(static_cast<pgfo_status_t>(999)), "PGFO_ERR_UNKNOWN");
    EXPECT_STRNE(pgfo_strerror(static_cast<pgfo_status_t>(-5)), "");
}

TEST(CApi, NullHandlesAreUsageErrors) {
    EXPECT_EQ(pgfo_ctx_new(nullptr), PGFO_ERR_USAGE);
    EXPECT_EQ(pgfo_ctx_set(nullptr, "policy", "on_unclean", "abort"), PGFO_ERR_USAGE);
    EXPECT_EQ(pgfo_failover(nullptr, 0, 1, 0), PGFO_ERR_USAGE);
    pgfo_ctx_free(nullptr);
    EXPECT_STREQ(pgfo_ctx_errmsg(nullptr), "NULL context");
    Ctx ctx;
    EXPECT_EQ(pgfo_ctx_set(ctx.c, nullptr, "k", "v"), PGFO_ERR_USAGE);
    EXPECT_EQ(pgfo_failover_pgpool(ctx.c, 3, nullptr), PGFO_ERR_USAGE);
    EXPECT_EQ(pgfo_ping_node(ctx.c, 0, nullptr), PGFO_ERR_USAGE);
}

TEST(CApi, LsnRoundTrip) {
    uint64_t v = 0;
    ASSERT_EQ(pgfo_lsn_parse("0/6F6F558", &v), PGFO_OK);
    EXPECT_EQ(v, 0x6F6F558u);
    char buf[20];
    ASSERT_EQ(pgfo_lsn_format(0x100000000ull | 0xABCu, buf, sizeof buf), PGFO_OK);
    EXPECT_STREQ(buf, "1/ABC");
    EXPECT_EQ(pgfo_lsn_parse("0/", &v), PGFO_ERR_USAGE);
    EXPECT_EQ(pgfo_lsn_format(1, buf, 3), PGFO_ERR_USAGE);
}

TEST(CApi, BadConfigNamesFileLineKey) {
    std::string path = temp_file("[policy]\non_unclean = maybe\n");
    Ctx ctx;
    EXPECT_EQ(pgfo_ctx_load_config(ctx.c, path.c_str()), PGFO_ERR_CONFIG);
    std::string msg = pgfo_ctx_errmsg(ctx.c);
    EXPECT_NE(msg.find(path + ":2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("on_unclean"), std::string::npos) << msg;
    EXPECT_NE(msg.find("abort"), std::string::npos) << msg;
    std::remove(path.c_str());
}

TEST(CApi, MissingConfigFile) {
    Ctx ctx;
    EXPECT_EQ(pgfo_ctx_load_config(ctx.c, "/nonexistent/pgfailover.conf"), PGFO_ERR_CONFIG);
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("/nonexistent/pgfailover.conf"), std::string::npos);
}

TEST(CApi, SetValidatesLikeTheFile) {
    Ctx ctx;
    EXPECT_EQ(pgfo_ctx_set(ctx.c, "timeouts", "shutdown", "10s"), PGFO_ERR_CONFIG);
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("shutdown"), std::string::npos);
    EXPECT_EQ(pgfo_ctx_set(ctx.c, "timeouts", "shutdown", "10"), PGFO_OK);
    EXPECT_STREQ(pgfo_ctx_errmsg(ctx.c), ""); // cleared by a successful call
    EXPECT_EQ(pgfo_ctx_set_dry_run(ctx.c, 2), PGFO_ERR_USAGE);
}

TEST(CApi, UnknownNodeIsUsageError) {
    Ctx ctx;
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_USAGE);
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("node 0 is not configured"), std::string::npos);
}

TEST(CApi, PgpoolArgumentErrorsNameThePosition) {
    Ctx ctx;
    const char *argv[] = {"0", "h", "notaport", "/d", "1", "h1", "0", "0"};
    EXPECT_EQ(pgfo_failover_pgpool(ctx.c, 8, argv), PGFO_ERR_USAGE);
    std::string msg = pgfo_ctx_errmsg(ctx.c);
    EXPECT_NE(msg.find("argument 3"), std::string::npos) << msg;
}

namespace {
struct Seen {
    std::vector<std::string> names;
    std::vector<uint64_t> seqs;
    std::vector<std::string> json;
};
void on_event(const pgfo_event_t *ev, void *user) {
    auto *s = static_cast<Seen *>(user);
    s->names.push_back(pgfo_event_name(ev));
    s->seqs.push_back(pgfo_event_seq(ev));
    s->json.push_back(pgfo_event_json(ev));
}
void on_log(pgfo_log_level_t, const char *line, void *user) {
    static_cast<std::vector<std::string> *>(user)->push_back(line);
}
} // namespace

TEST(CApi, EventsAndLogsOnAFailedRun) {
    // A candidate on a port where nothing listens: the run starts, its first
    // step fails to connect, and the run ends failed, each as an event in order.
    Ctx ctx;
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "node.0", "host", "127.0.0.1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "node.0", "port", "1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "node.1", "host", "127.0.0.1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "node.1", "port", "2"), PGFO_OK);
    Seen seen;
    std::vector<std::string> logs;
    ASSERT_EQ(pgfo_ctx_set_event_callback(ctx.c, on_event, &seen), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set_log_callback(ctx.c, on_log, &logs), PGFO_OK);
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_CONNECT);
    std::vector<std::string> want = {"failover.started", "step.started", "step.failed", "failover.failed"};
    EXPECT_EQ(seen.names, want);
    for (size_t i = 0; i < seen.seqs.size(); ++i) EXPECT_EQ(seen.seqs[i], i + 1);
    EXPECT_NE(seen.json.back().find("\"code\":\"PGFO_ERR_CONNECT\""), std::string::npos) << seen.json.back();
    EXPECT_FALSE(logs.empty());
    std::string report = pgfo_ctx_result_json(ctx.c);
    EXPECT_NE(report.find("\"exit_code\":4"), std::string::npos) << report;
}

TEST(CApi, OneMessageIsOneLogLine) {
    // pgpool passes a data directory (%D) that carries a newline and a forged
    // log line; neither the callback nor the log file may show it as a line of
    // its own.
    Ctx ctx;
    std::string log_path = temp_file("");
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "general", "log_file", log_path.c_str()), PGFO_OK);
    std::vector<std::string> logs;
    ASSERT_EQ(pgfo_ctx_set_log_callback(ctx.c, on_log, &logs), PGFO_OK);
    const std::string forged = "2001-01-01 00:00:00.000 pgfailover[1] info: failover finished";
    const std::string dir = "/d\n" + forged + "\r\x1b[2J";
    const char *argv[] = {"0", "127.0.0.1", "1", dir.c_str(), "1", "127.0.0.1", "0", "0", "2", "/e"};
    EXPECT_EQ(pgfo_failover_pgpool(ctx.c, 10, argv), PGFO_ERR_CONNECT) << pgfo_ctx_errmsg(ctx.c);

    const std::string shown = "/d\\x0a" + forged + "\\x0d\\x1b[2J";
    int callback_hits = 0;
    for (const auto &line : logs) {
        for (char c : line) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << line;
        if (line.find(shown) != std::string::npos) ++callback_hits;
    }
    EXPECT_GE(callback_hits, 1);

    std::ifstream in(log_path);
    std::string line;
    int file_lines = 0, file_hits = 0;
    while (std::getline(in, line)) {
        ++file_lines;
        EXPECT_NE(line.rfind("2001-01-01", 0), 0u) << "a forged line: " << line;
        for (char c : line) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << line;
        if (line.find(shown) != std::string::npos) ++file_hits;
    }
    EXPECT_EQ(file_hits, callback_hits);
    EXPECT_EQ(static_cast<size_t>(file_lines), logs.size());
    std::remove(log_path.c_str());
}
