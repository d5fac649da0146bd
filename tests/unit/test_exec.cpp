#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "remote/exec.h"

namespace fs = std::filesystem;
using namespace pgfo;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Alive and not a zombie.
bool process_running(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    if (!f) return false;
    std::string line;
    std::getline(f, line);
    size_t p = line.rfind(')');
    return p != std::string::npos && p + 2 < line.size() && line[p + 2] != 'Z';
}

bool wait_gone(long pid, double max_seconds) {
    auto t0 = std::chrono::steady_clock::now();
    while (process_running(pid)) {
        if (seconds_since(t0) > max_seconds) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("pgfo-exec-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path &path() const { return path_; }
    std::string file(const std::string &name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

void write_file(const std::string &path, const std::string &content) {
    std::ofstream(path, std::ios::binary) << content;
}

// ---------------------------------------------------------------- run_local

TEST(RunLocal, ExitCodes) {
    ExecResult r = run_local({"true"}, 10);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.ok());
    EXPECT_FALSE(r.timed_out);
    EXPECT_FALSE(r.start_failed);
    r = run_local({"false"}, 10);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_FALSE(r.ok());
    r = run_local({"/bin/sh", "-c", "exit 7"}, 10);
    EXPECT_EQ(r.exit_code, 7);
    EXPECT_EQ(r.term_signal, 0);
}

TEST(RunLocal, CapturesStdoutAndStderrBinarySafe) {
    ExecResult r = run_local({"/bin/sh", "-c", "echo out; echo err >&2; printf 'a\\000b\\377'; exit 3"}, 10);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, std::string("out\na\0b\xff", 8));
    EXPECT_EQ(r.err, "err\n");
}

TEST(RunLocal, StdinIsDevNull) {
    auto t0 = std::chrono::steady_clock::now();
    ExecResult r = run_local({"cat"}, 10);
    EXPECT_LT(seconds_since(t0), 5);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "");
}

TEST(RunLocal, KilledBySignal) {
    ExecResult r = run_local({"/bin/sh", "-c", "kill -TERM $$; sleep 5"}, 10);
    EXPECT_EQ(r.exit_code, -1);
    EXPECT_EQ(r.term_signal, SIGTERM);
    EXPECT_FALSE(r.timed_out);
    EXPECT_FALSE(r.ok());
}

TEST(RunLocal, OutputIsCappedAt16MiB) {
    ExecResult r = run_local({"head", "-c", "20000000", "/dev/zero"}, 60);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.size(), 16u << 20);
    EXPECT_NE(r.err.find("truncated at 16 MiB"), std::string::npos) << r.err;
}

TEST(RunLocal, TimeoutKillsChildAndGrandchild) {
    auto t0 = std::chrono::steady_clock::now();
    ExecResult r = run_local({"/bin/sh", "-c", "sleep 30 & echo $!; sleep 30"}, 0.5);
    double took = seconds_since(t0);
    EXPECT_TRUE(r.timed_out);
    EXPECT_FALSE(r.ok());
    EXPECT_GE(took, 0.45);
    EXPECT_LT(took, 3.0);
    long grandchild = std::atol(r.out.c_str());
    ASSERT_GT(grandchild, 0) << r.out;
    EXPECT_TRUE(wait_gone(grandchild, 1.0)) << "background sleep " << grandchild << " survived";
}

TEST(RunLocal, TimeoutEscalatesToSigkill) {
    auto t0 = std::chrono::steady_clock::now();
    // Ignoring SIGTERM is inherited by both sleeps.
    ExecResult r = run_local({"/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $!; sleep 30"}, 0.3);
    double took = seconds_since(t0);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.term_signal, SIGKILL);
    EXPECT_GE(took, 2.2);
    EXPECT_LT(took, 4.0);
    long grandchild = std::atol(r.out.c_str());
    ASSERT_GT(grandchild, 0) << r.out;
    EXPECT_TRUE(wait_gone(grandchild, 1.0)) << "background sleep " << grandchild << " survived";
}

TEST(RunLocal, ReturnsWhenChildExitsEvenIfADescendantKeepsThePipes) {
    auto t0 = std::chrono::steady_clock::now();
    ExecResult r = run_local({"/bin/sh", "-c", "sleep 3 & echo started"}, 20);
    EXPECT_LT(seconds_since(t0), 2.0);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.out, "started\n");
}

TEST(RunLocal, MissingProgram) {
    ExecResult r = run_local({"pgfo-no-such-program-anywhere"}, 5);
    EXPECT_TRUE(r.start_failed);
    EXPECT_EQ(r.exit_code, -1);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pgfo-no-such-program-anywhere"), std::string::npos) << r.err;

    r = run_local({"/nonexistent/dir/prog", "x"}, 5);
    EXPECT_TRUE(r.start_failed);
    EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;

    r = run_local({}, 5);
    EXPECT_TRUE(r.start_failed);
    r = run_local({"echo", std::string("a\0b", 3)}, 5);
    EXPECT_TRUE(r.start_failed);
    EXPECT_NE(r.err.find("NUL"), std::string::npos);
}

TEST(RunLocal, ArgumentsAreNeverInterpretedByAShell) {
    TempDir d;
    const std::string victim = d.file("pwned");
    const std::vector<std::string> hostile = {"$(touch " + victim + ")", "`touch " + victim + "`",
                                              "; touch " + victim, "| touch " + victim, "&& touch " + victim,
                                              "\ntouch " + victim + "\n"};
    for (const auto &arg : hostile) {
        ExecResult r = run_local({"printf", "%s", arg}, 10);
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.out, arg);
        r = run_local({"echo", arg}, 10);
        EXPECT_EQ(r.out, arg + "\n");
    }
    EXPECT_FALSE(fs::exists(victim));
}

// Our children that are zombies, from /proc/*/stat (state Z, parent = us).
int zombie_children() {
    int n = 0;
    const std::string me = std::to_string(getpid());
    for (const auto &e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream f(e.path() / "stat");
        std::string line;
        if (!std::getline(f, line)) continue;
        size_t p = line.rfind(')');
        if (p == std::string::npos) continue;
        std::istringstream rest(line.substr(p + 2));
        std::string state, ppid;
        rest >> state >> ppid;
        if (state == "Z" && ppid == me) ++n;
    }
    return n;
}

TEST(RunLocal, ManyRunsLeaveNoZombies) {
    int before = zombie_children();
    for (int i = 0; i < 30; ++i) ASSERT_EQ(run_local({"true"}, 5).exit_code, 0);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(run_local({"sleep", "5"}, 0.05).timed_out);
    EXPECT_EQ(zombie_children(), before);
}

TEST(RunLocal, ConcurrentCallsFromThreads) {
    std::vector<std::thread> ts;
    std::vector<std::string> outs(8);
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([i, &outs] { outs[i] = run_local({"/bin/sh", "-c", "sleep 0.1; echo " + std::to_string(i)}, 10).out; });
    for (auto &t : ts) t.join();
    for (int i = 0; i < 8; ++i) EXPECT_EQ(outs[i], std::to_string(i) + "\n");
}

// ---------------------------------------------------------------- quoting

const std::vector<std::string> kNasty = {"", "plain", "'", "''", "it's", "a'b'c", "$(touch pwned)", "`id`",
                                         "\n", "a\nb\n", "\\", "\\'", "*", "~", "~root", "!", "-n", "x;y",
                                         "\xff\xfe", "{a,b}", "\t", "%s", "a b", "$HOME", "\"", "#x", "&", "|",
                                         "<>", "=x", "a=b", "'\n'", "$'x'", "\r"};

TEST(ShellQuote, Forms) {
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("abc/def-1.2:3@x,y+z%"), "abc/def-1.2:3@x,y+z%");
    EXPECT_EQ(shell_quote("a b"), "'a b'");
    EXPECT_EQ(shell_quote("a=b"), "'a=b'");
    EXPECT_EQ(shell_quote("~"), "'~'");
    EXPECT_EQ(shell_join({"pg_ctl", "-D", "/data x", "it's"}), "pg_ctl -D '/data x' 'it'\\''s'");
    EXPECT_EQ(describe_argv({"a", ""}), "a ''");
    EXPECT_THROW(shell_quote(std::string("a\0b", 3)), Error);
}

TEST(ShellQuote, RoundTripsThroughBinSh) {
    TempDir d;
    for (const auto &s : kNasty) {
        ExecResult r = run_local({"/bin/sh", "-c", "cd " + shell_quote(d.path().string()) + " && printf %s " + shell_quote(s)}, 10);
        EXPECT_EQ(r.exit_code, 0) << s;
        EXPECT_EQ(r.out, s) << "word: " << shell_quote(s);
    }
    EXPECT_FALSE(fs::exists(d.file("pwned")));
}

TEST(ShellQuote, JoinRoundTripsAsSeparateWords) {
    ExecResult r = run_local({"/bin/sh", "-c", "printf '%s\\0' " + shell_join(kNasty)}, 10);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> words;
    size_t pos = 0;
    while (pos < r.out.size()) {
        size_t z = r.out.find('\0', pos);
        ASSERT_NE(z, std::string::npos);
        words.push_back(r.out.substr(pos, z - pos));
        pos = z + 1;
    }
    EXPECT_EQ(words, kNasty);
}

// ---------------------------------------------------------------- ssh argv

// Node 1 on db1 as postgres with a key.
Node ssh_node() {
    Node n;
    n.id = 1;
    n.host = "db1";
    n.access = Access::Ssh;
    n.ssh_user = "postgres";
    n.ssh_options = {"-i", "/etc/pgfailover/key"};
    return n;
}

TEST(SshArgv, ExactVector) {
    Node n = ssh_node();
    n.ssh_port = 2222;
    auto a = ssh_argv(n, {"pg_ctl", "stop", "-D", "/data x"}, 30);
    std::vector<std::string> want = {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o",
                                     "ServerAliveInterval=5", "-p", "2222", "-i", "/etc/pgfailover/key",
                                     "postgres@db1", "--", "pg_ctl stop -D '/data x'"};
    EXPECT_EQ(a, want);

    n.ssh_user.clear();
    n.ssh_options.clear();
    n.ssh_port = 22;
    a = ssh_argv(n, {"true"}, 2.5);
    want = {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "ServerAliveInterval=5",
            "-p",  "22", "db1", "--", "true"};
    EXPECT_EQ(a, want);
    EXPECT_EQ(ssh_argv(n, {"true"}, 0.2)[4], "ConnectTimeout=1");

    n.host = "-oProxyCommand=touch x";
    EXPECT_THROW(ssh_argv(n, {"true"}, 5), Error);
    n.host = "db1";
    n.ssh_user = "-oProxyCommand=x";
    EXPECT_THROW(ssh_argv(n, {"true"}, 5), Error);
}

TEST(SshArgv, ThroughAMaster) {
    Node n = ssh_node();
    auto a = ssh_argv(n, {"true"}, 30, "/tmp/pgfailover-ssh-abc123/0");
    std::vector<std::string> want = {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o",
                                     "ServerAliveInterval=5", "-o", "ControlMaster=no", "-o",
                                     "ControlPath=/tmp/pgfailover-ssh-abc123/0", "-p", "22", "-i",
                                     "/etc/pgfailover/key", "postgres@db1", "--", "true"};
    EXPECT_EQ(a, want);
    a = ssh_master_argv(n, "/tmp/pgfailover-ssh-abc123/0", 3);
    want = {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "ServerAliveInterval=5", "-o",
            "ControlMaster=yes", "-o", "ControlPath=/tmp/pgfailover-ssh-abc123/0", "-o",
            "ControlPersist=" + std::to_string(kSshPersistSeconds), "-N", "-p", "22", "-i",
            "/etc/pgfailover/key", "postgres@db1"};
    EXPECT_EQ(a, want);
    // ssh would split on the blank and expand %h
    EXPECT_THROW(ssh_master_argv(n, "/tmp/a b/0", 3), Error);
    EXPECT_THROW(ssh_master_argv(n, "/tmp/%h/0", 3), Error);
}

TEST(SshArgv, ConnectionSharingOptionsAreRefused) {
    Node n = ssh_node();
    for (std::vector<std::string> o : std::vector<std::vector<std::string>>{
             {"-o", "ControlPath=/tmp/shared"}, {"-oControlMaster=auto"}, {"-S", "/tmp/s"}, {"-M"},
             {"-4M"}, {"-o", "controlpersist yes"}, {"-4oControlPath=/x"}}) {
        n.ssh_options = o;
        try {
            ssh_argv(n, {"true"}, 5);
            ADD_FAILURE() << ::testing::PrintToString(o);
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
            EXPECT_NE(std::string(e.what()).find("connection sharing"), std::string::npos) << e.what();
        }
    }
    // flags whose argument merely contains M or S are fine
    n.ssh_options = {"-i", "/keys/MyKeyS", "-F", "/etc/Ssh/config", "-oServerAliveCountMax=3", "-4"};
    EXPECT_NO_THROW(ssh_argv(n, {"true"}, 5));
}

TEST(NodeAccessDescribe, LocalAndSsh) {
    Node n;
    n.host = "db1";
    EXPECT_EQ(make_node_access(n)->describe(), "local");
    n.access = Access::Ssh;
    n.ssh_user = "postgres";
    EXPECT_EQ(make_node_access(n)->describe(), "ssh postgres@db1:22");
    n.ssh_user.clear();
    n.ssh_port = 2200;
    EXPECT_EQ(make_node_access(n)->describe(), "ssh db1:2200");
}

// ---------------------------------------------------------------- node access
//
// The same checks run against LocalAccess and against SshAccess with a
// stand-in `ssh` on PATH that runs the command string with /bin/sh locally,
// exactly as sshd hands it to the login shell.

const char *kFakeSsh = R"SH(#!/bin/sh
for a in "$@"; do
  case $a in
    unreachable.invalid|*@unreachable.invalid)
      echo "ssh: Could not resolve hostname unreachable.invalid: Name or service not known" >&2
      exit 255;;
  esac
done
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift
exec /bin/sh -c "$*"
)SH";

class AccessTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        fs::create_directories(dir_.path() / "bin");
        std::string ssh = dir_.file("bin/ssh");
        write_file(ssh, kFakeSsh);
        fs::permissions(ssh, fs::perms::owner_all);
        const char *p = std::getenv("PATH");
        had_path_ = p != nullptr;
        old_path_ = p ? p : "";
        setenv("PATH", (dir_.file("bin") + ":" + old_path_).c_str(), 1);

        node_.id = 0;
        node_.host = "db0";
        node_.access = GetParam() ? Access::Ssh : Access::Local;
        access_ = make_node_access(node_);

        data_ = dir_.file("data dir 'x' $(touch pwned)");
        fs::create_directories(data_);
        write_file(data_ + "/PG_VERSION", "15\n");
    }
    void TearDown() override {
        if (had_path_)
            setenv("PATH", old_path_.c_str(), 1);
        else
            unsetenv("PATH");
        EXPECT_FALSE(fs::exists(dir_.file("pwned")));
        EXPECT_FALSE(fs::exists("pwned"));
    }
    void write_pid(const std::string &content) { write_file(data_ + "/postmaster.pid", content); }

    TempDir dir_;
    bool had_path_ = false;
    std::string old_path_;
    Node node_;
    std::unique_ptr<NodeAccess> access_;
    std::string data_;
};

TEST_P(AccessTest, Run) {
    ExecResult r = access_->run({"printf", "%s", "a'b $(touch pwned) `x`\n"}, 10);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "a'b $(touch pwned) `x`\n");
    r = access_->run({"sh", "-c", "echo e >&2; exit 7"}, 10);
    EXPECT_EQ(r.exit_code, 7);
    EXPECT_EQ(r.err, "e\n");
}

TEST_P(AccessTest, WriteFileReplacesAtomicallyWithArgumentsOnly) {
    // Content and path with quotes, $(...) and backticks: data, never script.
    const std::string path = data_ + "/postgresql.auto.conf";
    std::string content = "primary_conninfo = 'host=db1 user=x'\n# $(touch pwned) `touch pwned` it's \"q\"\n";
    content += std::string("\x01\xff tail");
    write_file(path, "old\n");
    access_->write_file(path, content, 10);
    auto back = access_->read_file(path, 0, 0, 10);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, content);
    EXPECT_FALSE(fs::exists(path + ".pgfailover-new"));
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    access_->write_file(data_ + "/standby.signal", "", 10);
    auto empty = access_->read_file(data_ + "/standby.signal", 0, 0, 10);
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, "");
    try {
        access_->write_file(data_ + "/no/such/dir/file", "x", 10);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_EXEC);
        EXPECT_NE(std::string(e.what()).find("cannot write"), std::string::npos) << e.what();
    }
}

TEST_P(AccessTest, ReadFile) {
    std::string content;
    for (int i = 0; i < 70000; ++i) content += static_cast<char>(i * 7 % 256);
    const std::string path = data_ + "/it's a \"file\"";
    write_file(path, content);

    auto all = access_->read_file(path, 0, 0, 10);
    ASSERT_TRUE(all);
    EXPECT_EQ(*all, content);
    auto part = access_->read_file(path, 65530, 100, 10);
    ASSERT_TRUE(part);
    EXPECT_EQ(*part, content.substr(65530, 100));
    auto tail = access_->read_file(path, 69990, 0, 10);
    ASSERT_TRUE(tail);
    EXPECT_EQ(*tail, content.substr(69990));
    auto past = access_->read_file(path, 69990, 100, 10);
    ASSERT_TRUE(past);
    EXPECT_EQ(*past, content.substr(69990));
    auto beyond = access_->read_file(path, 100000, 10, 10);
    ASSERT_TRUE(beyond);
    EXPECT_EQ(*beyond, "");

    EXPECT_FALSE(access_->read_file(data_ + "/absent", 0, 0, 10));
    EXPECT_FALSE(access_->read_file(data_ + "/no/such/dir/file", 0, 0, 10));
    write_file(data_ + "/empty", "");
    auto empty = access_->read_file(data_ + "/empty", 0, 0, 10);
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, "");
    try {
        access_->read_file(data_, 0, 0, 10); // a directory
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_EXEC);
        EXPECT_NE(std::string(e.what()).find(data_), std::string::npos) << e.what();
    }
}

TEST_P(AccessTest, PostmasterPid) {
    PidFileStatus s = access_->postmaster_pid(data_, 10);
    EXPECT_EQ(s.state, PidFileState::Gone);
    EXPECT_EQ(s.pid, 0);

    write_pid(std::to_string(getpid()) + "\n" + data_ + "\n1700000000\n5432\n");
    s = access_->postmaster_pid(data_, 10);
    EXPECT_EQ(s.state, PidFileState::Alive);
    EXPECT_EQ(s.pid, getpid());

    write_pid("-" + std::to_string(getpid()) + "\n"); // single-user backend
    s = access_->postmaster_pid(data_, 10);
    EXPECT_EQ(s.state, PidFileState::Alive);
    EXPECT_EQ(s.pid, getpid());

    pid_t dead = fork();
    if (dead == 0) _exit(0);
    ASSERT_GT(dead, 0);
    ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
    write_pid(std::to_string(dead) + "\n" + data_ + "\n");
    s = access_->postmaster_pid(data_, 10);
    EXPECT_EQ(s.state, PidFileState::Stale);
    EXPECT_EQ(s.pid, dead);

    for (const char *being_written : {"", "12", "abc\n", "0\n", "\n"}) {
        write_pid(being_written);
        s = access_->postmaster_pid(data_, 10);
        EXPECT_EQ(s.state, PidFileState::Alive) << "content: '" << being_written << "'";
        EXPECT_EQ(s.pid, 0);
    }
}

TEST_P(AccessTest, PostmasterPidNeedsADataDirectory) {
    try {
        access_->postmaster_pid(dir_.file("no-such-dir"), 10);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_STATE);
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
    fs::remove(data_ + "/PG_VERSION");
    try {
        access_->postmaster_pid(data_, 10);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_STATE);
        EXPECT_NE(std::string(e.what()).find("is not a PostgreSQL data directory (no PG_VERSION)"), std::string::npos)
            << e.what();
    }
}

TEST_P(AccessTest, ProbeShutdownReadsPidFileAndPgControlInOneCall) {
    // pg_control is binary: NULs, newlines, our own marker words.
    std::string control(8192, '\0');
    const std::string junk = "\n\r\nCONTROL\nNOCONTROL\npgfailover-probe GONE\n\xff";
    control.replace(100, junk.size(), junk);
    fs::create_directories(data_ + "/global");
    write_file(data_ + "/global/pg_control", control);

    RemoteCosts before = remote_costs();
    ShutdownProbe p = access_->probe_shutdown(data_, 10);
    EXPECT_EQ(p.pid.state, PidFileState::Gone);
    ASSERT_TRUE(p.pg_control);
    EXPECT_EQ(*p.pg_control, control);
    auto cost = remote_costs_since(before);
    if (GetParam()) {
        ASSERT_EQ(cost.count(0), 1u);
        EXPECT_EQ(cost[0].calls, 1);       // one remote call for both
        EXPECT_EQ(cost[0].connections, 1); // no session: a connection of its own
    } else {
        EXPECT_TRUE(cost.empty());
    }

    write_pid(std::to_string(getpid()) + "\n" + data_ + "\n");
    p = access_->probe_shutdown(data_, 10);
    EXPECT_EQ(p.pid.state, PidFileState::Alive);
    EXPECT_EQ(p.pid.pid, getpid());
    ASSERT_TRUE(p.pg_control);
    EXPECT_EQ(p.pg_control->size(), 8192u);

    pid_t dead = fork();
    if (dead == 0) _exit(0);
    ASSERT_GT(dead, 0);
    ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
    write_pid(std::to_string(dead) + "\n");
    fs::remove(data_ + "/global/pg_control");
    p = access_->probe_shutdown(data_, 10);
    EXPECT_EQ(p.pid.state, PidFileState::Stale);
    EXPECT_EQ(p.pid.pid, dead);
    EXPECT_FALSE(p.pg_control);

    write_file(data_ + "/global/pg_control", "");
    p = access_->probe_shutdown(data_, 10);
    ASSERT_TRUE(p.pg_control);
    EXPECT_EQ(*p.pg_control, "");

    try {
        access_->probe_shutdown(dir_.file("no-such-dir"), 10);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_STATE);
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
}

TEST_P(AccessTest, WriteFilesInOneCall) {
    const std::string a = data_ + "/postgresql.auto.conf", b = data_ + "/standby.signal";
    const std::string hostile = "primary_conninfo = 'x'\n$(touch pwned) `touch pwned` \"; touch pwned\n";
    RemoteCosts before = remote_costs();
    access_->write_files({{a, hostile}, {b, ""}, {a + ".bak", "old\n"}}, 10);
    if (GetParam()) {
        EXPECT_EQ(remote_costs_since(before)[0].calls, 1);
    }
    EXPECT_EQ(access_->read_file(a, 0, 0, 10).value_or("?"), hostile);
    EXPECT_EQ(access_->read_file(b, 0, 0, 10).value_or("?"), "");
    EXPECT_EQ(access_->read_file(a + ".bak", 0, 0, 10).value_or("?"), "old\n");
    try {
        access_->write_files({{data_ + "/one", "1"}, {data_ + "/no/such/dir/two", "2"}, {data_ + "/three", "3"}}, 10);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_EXEC);
        EXPECT_NE(std::string(e.what()).find("cannot write"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::exists(data_ + "/one"));
    EXPECT_FALSE(fs::exists(data_ + "/three")); // stopped at the first failure
}

// A PATH holding only `names` (links to the real programs) beside the fake ssh.
void restrict_path(const fs::path &bin, const std::vector<std::string> &names) {
    fs::create_directories(bin);
    for (const auto &n : names) {
        for (const char *d : {"/usr/bin/", "/bin/"}) {
            if (fs::exists(std::string(d) + n)) {
                fs::create_symlink(std::string(d) + n, bin / n);
                break;
            }
        }
    }
}

TEST_P(AccessTest, MissingPrograms) {
    // Everything there: pg_ctl stands in as any program that answers --version.
    EXPECT_EQ(access_->missing_programs("true", 10), std::vector<std::string>{});
    auto missing = access_->missing_programs(dir_.file("bin/pg_ctl"), 10);
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_EQ(missing[0].rfind(dir_.file("bin/pg_ctl") + " (cannot run it", 0), 0u) << missing[0];

    // No dd: tail -c and head -c stand in, and reads at an offset still work.
    const std::string bin = dir_.file("bin");
    restrict_path(bin, {"sh", "cat", "dirname", "mv", "printf", "tail", "head", "true"});
    setenv("PATH", bin.c_str(), 1);
    EXPECT_EQ(access_->missing_programs("true", 10), std::vector<std::string>{});
    write_file(data_ + "/f", "0123456789");
    EXPECT_EQ(access_->read_file(data_ + "/f", 3, 4, 10).value_or("?"), "3456");
    EXPECT_EQ(access_->read_file(data_ + "/f", 7, 0, 10).value_or("?"), "789");

    // Neither dd nor head, and no mv: each named.
    fs::remove(bin + "/head");
    fs::remove(bin + "/mv");
    missing = access_->missing_programs("true", 10);
    ASSERT_EQ(missing.size(), 2u) << ::testing::PrintToString(missing);
    EXPECT_EQ(missing[0], "mv (not found on PATH)");
    EXPECT_NE(missing[1].find("dd with iflag=skip_bytes,count_bytes"), std::string::npos) << missing[1];
}

INSTANTIATE_TEST_SUITE_P(LocalAndSsh, AccessTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) { return i.param ? "Ssh" : "Local"; });

TEST(SshAccess, UnreachableHostIsAnExecError) {
    TempDir d;
    fs::create_directories(d.path() / "bin");
    write_file(d.file("bin/ssh"), kFakeSsh);
    fs::permissions(d.file("bin/ssh"), fs::perms::owner_all);
    std::string old = std::getenv("PATH") ? std::getenv("PATH") : "";
    setenv("PATH", (d.file("bin") + ":" + old).c_str(), 1);

    Node n;
    n.id = 3;
    n.host = "unreachable.invalid";
    n.access = Access::Ssh;
    n.ssh_user = "postgres";
    auto a = make_node_access(n);
    auto check = [](auto &&fn) {
        try {
            fn();
            ADD_FAILURE() << "no error";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_EXEC);
            std::string m = e.what();
            EXPECT_NE(m.find("ssh postgres@unreachable.invalid:22"), std::string::npos) << m;
            EXPECT_NE(m.find("exit 255"), std::string::npos) << m;
            EXPECT_NE(m.find("Could not resolve hostname"), std::string::npos) << m;
        }
    };
    check([&] { a->run({"true"}, 5); });
    check([&] { a->read_file("/etc/hostname", 0, 0, 5); });
    check([&] { a->postmaster_pid("/data", 5); });

    // No ssh program at all.
    setenv("PATH", d.file("empty").c_str(), 1);
    try {
        a->run({"true"}, 5);
        ADD_FAILURE() << "no error";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_EXEC);
        EXPECT_NE(std::string(e.what()).find("cannot run ssh"), std::string::npos) << e.what();
    }
    setenv("PATH", old.c_str(), 1);
}

} // namespace
