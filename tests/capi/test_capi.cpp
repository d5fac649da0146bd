// The C interface as a caller sees it: linked against libpgfailover.so only,
// through include/pgfailover.h. No servers: these check the contract
// (status codes, messages, NULL handling, validation, callbacks).
#include <gtest/gtest.h>

#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
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

// ---------------------------------------------------------------------------
// Callbacks that call back into their own context, and fork().

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn in a fork()ed child and returns its exit status, or -1 when it did
// not end within timeout_s (it is killed then: a deadlock), or 128 + signal.
int in_child(const std::function<int()> &fn, double timeout_s) {
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    EXPECT_GT(pid, 0);
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Two nodes on ports where nothing listens: a failover logs, fires events and
// fails to connect (PGFO_ERR_CONNECT) without any server.
void two_dead_nodes(pgfo_ctx_t *c) {
    ASSERT_EQ(pgfo_ctx_set(c, "node.0", "host", "127.0.0.1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(c, "node.0", "port", "1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(c, "node.1", "host", "127.0.0.1"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(c, "node.1", "port", "2"), PGFO_OK);
}

// What a callback that calls into its own context got back.
struct Reentry {
    pgfo_ctx_t *ctx = nullptr;
    std::function<pgfo_status_t(pgfo_ctx_t *)> call;
    int lines = 0;
    std::vector<pgfo_status_t> codes;
    std::vector<std::string> messages;
    void once() {
        codes.push_back(call(ctx));
        messages.push_back(pgfo_ctx_errmsg(ctx));
    }
};

void log_reenter(pgfo_log_level_t, const char *, void *user) {
    auto *r = static_cast<Reentry *>(user);
    if (r->lines++ < 3) r->once();
}

void event_reenter(const pgfo_event_t *ev, void *user) {
    if (std::string(pgfo_event_name(ev)) == "step.started") static_cast<Reentry *>(user)->once();
}

void expect_refused(const Reentry &r) {
    ASSERT_FALSE(r.codes.empty());
    for (size_t i = 0; i < r.codes.size(); ++i) {
        EXPECT_EQ(r.codes[i], PGFO_ERR_USAGE);
        EXPECT_NE(r.messages[i].find("from inside a callback"), std::string::npos) << r.messages[i];
    }
}

} // namespace

TEST(CApiCallbacks, LogCallbackThatChangesSettingsIsRefused) {
    // pgfo_ctx_set rebuilds the logger: from inside the log callback that would
    // free the sink that is calling it.
    Ctx ctx;
    two_dead_nodes(ctx.c);
    Reentry r;
    r.ctx = ctx.c;
    r.call = [](pgfo_ctx_t *c) { return pgfo_ctx_set(c, "general", "log_level", "error"); };
    ASSERT_EQ(pgfo_ctx_set_log_callback(ctx.c, log_reenter, &r), PGFO_OK);
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_CONNECT);
    EXPECT_GE(r.lines, 2);
    expect_refused(r);
    // The outer call's own outcome is what errmsg tells afterwards.
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("127.0.0.1"), std::string::npos) << pgfo_ctx_errmsg(ctx.c);
    // Outside a callback the same call works again, and the callback still runs.
    ASSERT_EQ(pgfo_ctx_set_log_callback(ctx.c, nullptr, nullptr), PGFO_OK);
    EXPECT_EQ(pgfo_ctx_set(ctx.c, "general", "log_level", "error"), PGFO_OK);
    std::vector<std::string> logs;
    ASSERT_EQ(pgfo_ctx_set_log_callback(ctx.c, on_log, &logs), PGFO_OK);
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_CONNECT);
    EXPECT_FALSE(logs.empty());
}

TEST(CApiCallbacks, LogCallbackThatLogsDoesNotDeadlock) {
    // A step logs a line: called from inside the log callback, it would take
    // the callback sink's lock a second time. Run in a child: a deadlock is a
    // child that does not end.
    int rc = in_child(
        [] {
            pgfo_ctx_t *c = nullptr;
            if (pgfo_ctx_new(&c) != PGFO_OK) return 10;
            two_dead_nodes(c);
            Reentry r;
            r.ctx = c;
            r.call = [](pgfo_ctx_t *x) { return pgfo_wait_shutdown(x, 0, 0); };
            pgfo_ctx_set_log_callback(c, log_reenter, &r);
            if (pgfo_failover(c, 0, 1, 0) != PGFO_ERR_CONNECT) return 11;
            if (r.codes.empty()) return 12;
            for (size_t i = 0; i < r.codes.size(); ++i) {
                if (r.codes[i] != PGFO_ERR_USAGE) return 13;
                if (r.messages[i].find("from inside a callback") == std::string::npos) return 14;
            }
            pgfo_ctx_free(c);
            return 0;
        },
        30);
    EXPECT_NE(rc, -1) << "deadlock: the child did not end within 30 s";
    EXPECT_EQ(rc, 0);
}

TEST(CApiCallbacks, EventCallbackThatCallsBackIsRefused) {
    // pgfo_ctx_set replaces the configuration the running steps read their
    // nodes from; pgfo_emit_event would start a run inside the run.
    Ctx ctx;
    two_dead_nodes(ctx.c);
    Reentry set, emit;
    set.ctx = emit.ctx = ctx.c;
    set.call = [](pgfo_ctx_t *c) { return pgfo_ctx_set(c, "node.0", "port", "3"); };
    emit.call = [](pgfo_ctx_t *c) { return pgfo_emit_event(c, "my.event", nullptr); };
    Seen seen;
    struct Both {
        Reentry *set, *emit;
        Seen *seen;
    } both{&set, &emit, &seen};
    auto cb = [](const pgfo_event_t *ev, void *user) {
        auto *b = static_cast<Both *>(user);
        on_event(ev, b->seen);
        event_reenter(ev, b->set);
        event_reenter(ev, b->emit);
    };
    ASSERT_EQ(pgfo_ctx_set_event_callback(ctx.c, cb, &both), PGFO_OK);
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_CONNECT);
    expect_refused(set);
    expect_refused(emit);
    // Nothing changed: the same events as without the calls, in order, and
    // node 0 still on port 1.
    std::vector<std::string> want = {"failover.started", "step.started", "step.failed", "failover.failed"};
    EXPECT_EQ(seen.names, want);
    std::string report = pgfo_ctx_result_json(ctx.c);
    EXPECT_NE(report.find("\"port\":1"), std::string::npos) << report;
    EXPECT_EQ(report.find("\"port\":3"), std::string::npos) << report;
    // Freeing the context from a callback is ignored: the context stays usable.
    ASSERT_EQ(pgfo_ctx_set_event_callback(
                  ctx.c, [](const pgfo_event_t *, void *user) { pgfo_ctx_free(static_cast<pgfo_ctx_t *>(user)); },
                  ctx.c),
              PGFO_OK);
    EXPECT_EQ(pgfo_failover(ctx.c, 0, 1, 0), PGFO_ERR_CONNECT);
    EXPECT_EQ(pgfo_ctx_set_event_callback(ctx.c, nullptr, nullptr), PGFO_OK);
    EXPECT_EQ(pgfo_ctx_set(ctx.c, "node.0", "port", "3"), PGFO_OK);
}

namespace {

// A real HTTP endpoint on 127.0.0.1: answers every POST with 204, one
// thread per connection; holds the answer to the event named by hold() until
// hold("") . Counts the requests by event name.
class Receiver {
public:
    Receiver() {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr *>(&a), len), 0);
        EXPECT_EQ(listen(fd_, 16), 0);
        getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { serve(); });
    }
    ~Receiver() {
        hold("");
        shutdown(fd_, SHUT_RDWR);
        acceptor_.join();
        for (auto &t : answering_) t.join();
        close(fd_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
    void hold(const std::string &event) {
        {
            std::lock_guard<std::mutex> g(mu_);
            held_ = event;
        }
        cv_.notify_all();
    }
    // Requests received (answered or held) for `event`.
    int count(const std::string &event) {
        std::lock_guard<std::mutex> g(mu_);
        int n = 0;
        for (const auto &b : bodies_) n += names(b, event);
        return n;
    }
    bool wait_for(const std::string &event, int n, double seconds) {
        auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
        while (count(event) < n) {
            if (Clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return true;
    }

private:
    static bool names(const std::string &body, const std::string &event) {
        return !event.empty() && body.find("\"event\":\"" + event + "\"") != std::string::npos;
    }
    void serve() {
        for (;;) {
            int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            answering_.emplace_back([this, c] { answer(c); });
        }
    }
    void answer(int c) {
        std::string req;
        char buf[4096];
        size_t body_at = std::string::npos, want = 0;
        for (;;) {
            ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<size_t>(n));
            if (body_at == std::string::npos && (body_at = req.find("\r\n\r\n")) != std::string::npos) {
                body_at += 4;
                auto cl = req.find("Content-Length:");
                if (cl == std::string::npos) cl = req.find("content-length:");
                want = cl == std::string::npos ? 0 : std::strtoul(req.c_str() + cl + 15, nullptr, 10);
            }
            if (body_at != std::string::npos && req.size() >= body_at + want) break;
        }
        std::string body = body_at == std::string::npos ? req : req.substr(body_at);
        std::unique_lock<std::mutex> lk(mu_);
        bodies_.push_back(body);
        cv_.wait(lk, [&] { return !names(body, held_); });
        lk.unlock();
        const char *resp = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(c, resp, std::strlen(resp));
        (void)w;
        close(c);
    }

    int fd_ = -1;
    int port_ = 0;
    std::thread acceptor_;
    std::vector<std::thread> answering_; // only the acceptor adds, before it ends
    std::mutex mu_;
    std::condition_variable cv_;
    std::string held_;
    std::vector<std::string> bodies_;
};

std::vector<std::string> json_files(const std::string &dir) {
    std::vector<std::string> out;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) out.push_back(n);
        }
        closedir(d);
    }
    return out;
}

} // namespace

TEST(CApiFork, ChildFreesContextWithAWebhookWorker) {
    // The webhook worker thread exists only in the parent. A child that frees
    // its copy of the context must neither join that thread (it would wait
    // forever) nor spool the parent's pending deliveries (they would be sent
    // twice); events of its own still go out.
    Receiver rx;
    char spool_tmpl[] = "/tmp/pgfo-capi-spool-XXXXXX";
    ASSERT_NE(mkdtemp(spool_tmpl), nullptr);
    const std::string spool = spool_tmpl;
    Ctx ctx;
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "general", "spool_directory", spool.c_str()), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "general", "delivery_budget", "3"), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "webhook.rx", "url", rx.url().c_str()), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "webhook.rx", "retries", "0"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "webhook.rx", "timeout", "60"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    ASSERT_EQ(pgfo_emit_event(ctx.c, "test.before", nullptr), PGFO_OK);
    ASSERT_EQ(pgfo_ctx_flush_events(ctx.c, 10), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    EXPECT_EQ(rx.count("test.before"), 1);

    // A delivery in flight at the fork: the endpoint holds its answer.
    rx.hold("test.pending");
    ASSERT_EQ(pgfo_emit_event(ctx.c, "test.pending", nullptr), PGFO_OK);
    ASSERT_TRUE(rx.wait_for("test.pending", 1, 10));

    // Child 1 only frees; child 2 emits an event of its own first.
    for (bool emits : {false, true}) {
        auto t0 = Clock::now();
        int rc = in_child(
            [&] {
                if (emits && pgfo_emit_event(ctx.c, "test.child", nullptr) != PGFO_OK) return 20;
                pgfo_ctx_free(ctx.c);
                return 0;
            },
            20);
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        EXPECT_EQ(rc, 0) << (rc == -1 ? "the child hung in pgfo_ctx_free" : "child failed") << " (emits "
                         << emits << ")";
        EXPECT_LT(secs, 15.0);
        EXPECT_EQ(json_files(spool), std::vector<std::string>{}) << "the child spooled the parent's delivery";
    }
    EXPECT_EQ(rx.count("test.child"), 1); // sent by the child's own worker
    rx.hold("");

    // The parent goes on: its pending delivery arrives once, a new one too.
    ASSERT_EQ(pgfo_emit_event(ctx.c, "test.after", nullptr), PGFO_OK);
    EXPECT_EQ(pgfo_ctx_flush_events(ctx.c, 10), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    EXPECT_EQ(rx.count("test.pending"), 1);
    EXPECT_EQ(rx.count("test.after"), 1);
    EXPECT_EQ(json_files(spool), std::vector<std::string>{});
    rmdir(spool.c_str());
}

// pgfo_wait_shutdown on a node whose host cannot be reached (every ssh exits
// 255, ping answers nothing): not proven down, so on_unclean decides, as for
// a failover's old primary. PGFO_ERR_UNCLEAN means on_unclean = abort or a
// failed fence (include/pgfailover.h), not "unreachable" whatever the policy.
namespace {
class UnreachableHost : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pgfo-capi-ssh-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        const std::string ssh = dir_ + "/ssh";
        std::ofstream(ssh) << "#!/bin/sh\necho 'ssh: connect to host 127.0.0.1 port 22: Connection refused' >&2\n"
                              "exit 255\n";
        chmod(ssh.c_str(), 0700);
        const char *p = std::getenv("PATH");
        old_path_ = p ? p : "";
        setenv("PATH", (dir_ + ":" + old_path_).c_str(), 1);
        for (auto [k, v] : {std::pair{"host", "127.0.0.1"}, {"port", "1"}, {"access", "ssh"},
                            {"data_directory", "/nonexistent/pgdata"}})
            ASSERT_EQ(pgfo_ctx_set(ctx.c, "node.0", k, v), PGFO_OK) << k << ": " << pgfo_ctx_errmsg(ctx.c);
        ASSERT_EQ(pgfo_ctx_set(ctx.c, "timeouts", "unreachable", "0.3"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
        ASSERT_EQ(pgfo_ctx_set(ctx.c, "timeouts", "poll_interval", "0.05"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
        ASSERT_EQ(pgfo_ctx_set_event_callback(ctx.c, on_event, &seen), PGFO_OK);
    }
    void TearDown() override {
        setenv("PATH", old_path_.c_str(), 1);
        std::remove((dir_ + "/ssh").c_str());
        rmdir(dir_.c_str());
    }
    pgfo_status_t wait(const char *on_unclean) {
        EXPECT_EQ(pgfo_ctx_set(ctx.c, "policy", "on_unclean", on_unclean), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
        seen.names.clear();
        return pgfo_wait_shutdown(ctx.c, 0, 20);
    }
    Ctx ctx;
    Seen seen;
    std::string dir_, old_path_;
};
} // namespace

TEST_F(UnreachableHost, AbortIsUnclean) {
    EXPECT_EQ(wait("abort"), PGFO_ERR_UNCLEAN);
    std::string msg = pgfo_ctx_errmsg(ctx.c);
    EXPECT_NE(msg.find("host unreachable"), std::string::npos) << msg;
    EXPECT_NE(msg.find("on_unclean = abort"), std::string::npos) << msg;
}

TEST_F(UnreachableHost, PromoteCountsItDownAndSaysUnclean) {
    EXPECT_EQ(wait("promote"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    std::string report = pgfo_ctx_result_json(ctx.c);
    EXPECT_NE(report.find("\"host_unreachable\":true"), std::string::npos) << report;
    EXPECT_NE(report.find("on_unclean = promote"), std::string::npos) << report;
    EXPECT_NE(report.find("\"unclean\":"), std::string::npos) << report;
}

TEST_F(UnreachableHost, FenceRunsTheFenceCommand) {
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "fencing", "command", "/bin/true"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    EXPECT_EQ(wait("fence"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    std::vector<std::string> want = {"step.started", "step.started", "fence.started", "fence.succeeded",
                                     "step.succeeded", "step.succeeded"};
    EXPECT_EQ(seen.names, want);
    ASSERT_EQ(pgfo_ctx_set(ctx.c, "fencing", "command", "/bin/false"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    EXPECT_EQ(wait("fence"), PGFO_ERR_UNCLEAN);
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("the fence command"), std::string::npos)
        << pgfo_ctx_errmsg(ctx.c);
}

TEST(CApi, PlanListsTheBuiltInTablesWithTheirContracts) {
    Ctx ctx; // no configuration needed
    ASSERT_EQ(pgfo_plan(ctx.c, "failover"), PGFO_OK) << pgfo_ctx_errmsg(ctx.c);
    std::string j = pgfo_ctx_result_json(ctx.c);
    EXPECT_NE(j.find("\"run\":\"failover\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"run\":\"standby_failure\""), std::string::npos) << j;
    EXPECT_EQ(j.find("\"run\":\"follow_primary\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"step\":\"wait_shutdown\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"timeout\":\"[timeouts] shutdown\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"dry_run_summary\":\"dry run: nothing promoted\""), std::string::npos) << j;
    ASSERT_EQ(pgfo_plan(ctx.c, nullptr), PGFO_OK);
    j = pgfo_ctx_result_json(ctx.c);
    for (const char *run : {"failover", "standby_failure", "follow_primary", "switchover", "step"})
        EXPECT_NE(j.find(std::string("\"run\":\"") + run + "\""), std::string::npos) << run;
    EXPECT_EQ(pgfo_plan(ctx.c, "failback"), PGFO_ERR_USAGE);
    EXPECT_NE(std::string(pgfo_ctx_errmsg(ctx.c)).find("unknown procedure 'failback'"), std::string::npos);
}
