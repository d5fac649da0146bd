#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>

#include "config/config.h"
#include "core/error.h"

namespace fs = std::filesystem;
using namespace pgfo;

namespace {

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("pgfo-config-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string &text, const std::string &name = "pgfailover.conf") {
        std::string p = (dir_ / name).string();
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    Config load(const std::string &text) { return load_config(write(text)); }

    // Loads `text` and returns the error message, checking it is a CONFIG error.
    std::string error_of(const std::string &text) {
        std::string p = write(text);
        try {
            load_config(p);
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG) << e.what();
            return e.what();
        }
        ADD_FAILURE() << "no error for:\n" << text;
        return {};
    }
    // The error names this file and line first, then every part in `parts`.
    void expect_error(const std::string &text, int line, std::initializer_list<std::string> parts) {
        std::string msg = error_of(text);
        std::string loc = path() + ":" + std::to_string(line) + ": ";
        EXPECT_EQ(msg.rfind(loc, 0), 0u) << "expected to start with '" << loc << "': " << msg;
        for (const auto &p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
    }
    std::string path(const std::string &name = "pgfailover.conf") const { return (dir_ / name).string(); }

    fs::path dir_;
};

const char *kNode0 = "[node.0]\nhost = db0\ndata_directory = /data/0\n";

TEST_F(ConfigTest, FullFile) {
    Config c = load("; pgfailover\n"
                    "# comment\n"
                    "[general]\n"
                    "cluster_name = prod-1.a_b\n"
                    "log_file = /var/log/pgfailover.log\n"
                    "log_level = debug\n"
                    "lock_file = /run/pgfailover/lock\n"
                    "\n"
                    "[connection]\n"
                    "user = pgfailover\n"
                    "dbname = admin\n"
                    "passfile = /etc/pgfailover/pgpass\n"
                    "sslmode = verify-full\n"
                    "connect_timeout = 5\n"
                    "[timeouts]\n"
                    "shutdown = 120\n"
                    "catchup = 0.5\n"
                    "promote = 86400\n"
                    "command = .5\n"
                    "lock = 0.1\n"
                    "poll_interval = 0.005\n"
                    "[policy]\n"
                    "on_unclean = abort\n"
                    "on_running = refuse\n"
                    "sync_standby_names = async\n"
                    "[node.0]\n"
                    "host = db0.example\n"
                    "port = 5433\n"
                    "data_directory = /var/lib/postgresql/15/main\n"
                    "bin_directory = /usr/lib/postgresql/15/bin\n"
                    "application_name = node0\n"
                    "[node.127]\n"
                    "host = 10.0.0.7\n"
                    "data_directory = /data\n"
                    "access = ssh\n"
                    "ssh_user = postgres\n"
                    "ssh_port = 2222\n"
                    "ssh_options = -i /etc/pgfailover/id_ed25519\t -o  StrictHostKeyChecking=yes\n");
    EXPECT_EQ(c.path, path());
    EXPECT_EQ(c.cluster_name, "prod-1.a_b");
    EXPECT_EQ(c.log_file, "/var/log/pgfailover.log");
    EXPECT_EQ(c.log_level, "debug");
    EXPECT_EQ(c.lock_file, "/run/pgfailover/lock");
    EXPECT_EQ(c.user, "pgfailover");
    EXPECT_EQ(c.dbname, "admin");
    EXPECT_EQ(c.passfile, "/etc/pgfailover/pgpass");
    EXPECT_EQ(c.sslmode, "verify-full");
    EXPECT_DOUBLE_EQ(c.connect_timeout, 5);
    EXPECT_DOUBLE_EQ(c.shutdown_timeout, 120);
    EXPECT_DOUBLE_EQ(c.catchup_timeout, 0.5);
    EXPECT_DOUBLE_EQ(c.promote_timeout, 86400);
    EXPECT_DOUBLE_EQ(c.command_timeout, 0.5);
    EXPECT_DOUBLE_EQ(c.lock_timeout, 0.1);
    EXPECT_DOUBLE_EQ(c.poll_interval, 0.005);
    EXPECT_EQ(c.on_unclean, OnUnclean::Abort);
    EXPECT_EQ(c.on_running, OnRunning::Refuse);
    EXPECT_EQ(c.sync_policy, SyncPolicy::Async);
    ASSERT_EQ(c.nodes.size(), 2u);
    const Node &n0 = c.nodes.at(0);
    EXPECT_EQ(n0.id, 0);
    EXPECT_EQ(n0.host, "db0.example");
    EXPECT_EQ(n0.port, 5433);
    EXPECT_EQ(n0.data_directory, "/var/lib/postgresql/15/main");
    EXPECT_EQ(n0.bin_directory, "/usr/lib/postgresql/15/bin");
    EXPECT_EQ(n0.application_name, "node0");
    EXPECT_EQ(n0.access, Access::Local);
    EXPECT_EQ(n0.origin, path() + ":26");
    const Node &n1 = c.nodes.at(127);
    EXPECT_EQ(n1.id, 127);
    EXPECT_EQ(n1.port, 5432);
    EXPECT_EQ(n1.access, Access::Ssh);
    EXPECT_EQ(n1.ssh_user, "postgres");
    EXPECT_EQ(n1.ssh_port, 2222);
    EXPECT_EQ(n1.ssh_options,
              (std::vector<std::string>{"-i", "/etc/pgfailover/id_ed25519", "-o", "StrictHostKeyChecking=yes"}));
    EXPECT_EQ(n1.origin, path() + ":32");
    EXPECT_EQ(lock_file_path(c), "/run/pgfailover/lock");
}

TEST_F(ConfigTest, DefaultsFromAnEmptyFile) {
    Config c = load("");
    Config d;
    EXPECT_EQ(c.cluster_name, "pgfailover");
    EXPECT_EQ(c.dbname, "postgres");
    EXPECT_EQ(c.log_level, "info");
    EXPECT_DOUBLE_EQ(c.shutdown_timeout, d.shutdown_timeout);
    EXPECT_DOUBLE_EQ(c.poll_interval, d.poll_interval);
    EXPECT_EQ(c.on_unclean, OnUnclean::Promote);
    EXPECT_EQ(c.on_running, OnRunning::Stop);
    EXPECT_EQ(c.sync_policy, SyncPolicy::Adapt);
    EXPECT_TRUE(c.nodes.empty());
    EXPECT_EQ(lock_file_path(c), "/var/spool/pgfailover/pgfailover.lock");
    c.cluster_name = "main";
    c.spool_directory = "/srv/pgfailover";
    EXPECT_EQ(lock_file_path(c), "/srv/pgfailover/main.lock");
}

TEST_F(ConfigTest, MissingOrUnreadableFile) {
    std::string p = path("absent.conf");
    try {
        load_config(p);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), "cannot read config " + p + ": No such file or directory");
    }
    try {
        load_config(dir_.string());
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), "cannot read config " + dir_.string() + ": Is a directory");
    }
}

TEST_F(ConfigTest, UnknownSectionsAndKeys) {
    expect_error("[general]\nlog_level = info\n[timeouts]\nshutdwon = 10\n", 4,
                 {"[timeouts] shutdwon: unknown key 'shutdwon' in [timeouts]; known keys: shutdown, catchup, "
                  "promote, command, lock, poll_interval"});
    expect_error("\n[genral]\n", 2, {"unknown section [genral]", "known: [general], [connection]"});
    expect_error("[ general ]\nlog_level = info\n", 1, {"unknown section [ general ]"});
    expect_error("[node.128]\nhost = x\n", 1, {"bad node section [node.128]", "0..127"});
    expect_error("[node.01]\nhost = x\n", 1, {"bad node section [node.01]"});
    expect_error("[node.x]\n", 1, {"bad node section [node.x]"});
    expect_error("[node.-1]\n", 1, {"bad node section [node.-1]"});
    expect_error("[node]\n", 1, {"unknown section [node]"});
    expect_error("[node.0]\nhost = a\nhostname = b\n", 3,
                 {"[node.0] hostname: unknown key 'hostname' in [node.0]; known keys: host, port,"});
    expect_error("[general]\nLog_Level = info\n", 2, {"unknown key 'Log_Level'"});
    expect_error("cluster_name = x\n", 1, {"key 'cluster_name' is outside a section"});
}

TEST_F(ConfigTest, DuplicateKeysAndSections) {
    expect_error("[timeouts]\nshutdown = 10\ncatchup = 5\nshutdown = 20\n", 4,
                 {"[timeouts] shutdown: duplicate key (first set on line 2)"});
    expect_error("[general]\nlog_level = info\n[timeouts]\n[general]\n", 4,
                 {"duplicate section [general] (first on line 1)"});
    expect_error(std::string(kNode0) + "[node.0]\n", 4, {"duplicate section [node.0]"});
}

TEST_F(ConfigTest, PasswordIsRefused) {
    expect_error("[connection]\nuser = x\npassword = secret\n", 3,
                 {"[connection] password: passwords are not accepted", "passfile", "~/.pgpass"});
    expect_error(std::string(kNode0) + "password = secret\n", 4, {"[node.0] password: passwords are not accepted"});
    std::string msg = error_of("[connection]\npassword = hunter2\n");
    EXPECT_EQ(msg.find("hunter2"), std::string::npos) << "the password must not be echoed: " << msg;
}

TEST_F(ConfigTest, BadNumbers) {
    for (const char *bad : {"10s", "-1", "1e999", "1e3", "nan", "NaN", "inf", "", "0x10", "1.2.3", "+5", ".", "1,5",
                            "10 s", "５"}) {
        expect_error(std::string("[timeouts]\nshutdown = ") + bad + "\n", 2,
                     {"[timeouts] shutdown: '" + std::string(bad) + "' is not a number of seconds (allowed: 0.1..86400)"});
    }
    expect_error("[timeouts]\nshutdown = 0.09\n", 2, {"[timeouts] shutdown: 0.09 is out of range (allowed: 0.1..86400)"});
    expect_error("[timeouts]\ncatchup = 86401\n", 2, {"[timeouts] catchup: 86401 is out of range (allowed: 0.1..86400)"});
    expect_error("[timeouts]\npromote = 0\n", 2, {"[timeouts] promote: 0 is out of range"});
    expect_error("[timeouts]\ncommand = 99999999999999999999999999\n", 2, {"[timeouts] command:", "out of range"});
    expect_error("[timeouts]\nlock = 1e999\n", 2, {"[timeouts] lock: '1e999' is not a number"});
    expect_error("[timeouts]\npoll_interval = 0.001\n", 2,
                 {"[timeouts] poll_interval: 0.001 is out of range (allowed: 0.005..10)"});
    expect_error("[timeouts]\npoll_interval = 11\n", 2, {"(allowed: 0.005..10)"});
    expect_error("[connection]\nconnect_timeout = 0.5\n", 2,
                 {"[connection] connect_timeout: 0.5 is out of range (allowed: 1..3600)"});
    expect_error("[connection]\nconnect_timeout = 3s\n", 2, {"[connection] connect_timeout: '3s' is not a number"});
    Config c = load("[timeouts]\npoll_interval = 10\nshutdown = 86400.0\ncatchup = 2.\n");
    EXPECT_DOUBLE_EQ(c.poll_interval, 10);
    EXPECT_DOUBLE_EQ(c.shutdown_timeout, 86400);
    EXPECT_DOUBLE_EQ(c.catchup_timeout, 2);
}

TEST_F(ConfigTest, BadPorts) {
    for (const char *bad : {"0", "65536", "-1", "abc", "", "5432x", "1e3", "99999999999", "+22"}) {
        expect_error(std::string(kNode0) + "port = " + bad + "\n", 4,
                     {"[node.0] port: '" + std::string(bad) + "' is not a port number (allowed: 1..65535)"});
        expect_error(std::string(kNode0) + "access = ssh\nssh_port = " + bad + "\n", 5,
                     {"[node.0] ssh_port: '" + std::string(bad) + "' is not a port number (allowed: 1..65535)"});
    }
    EXPECT_EQ(load(std::string(kNode0) + "port = 1\n").nodes.at(0).port, 1);
    EXPECT_EQ(load(std::string(kNode0) + "port = 65535\n").nodes.at(0).port, 65535);
}

TEST_F(ConfigTest, RelativePathsAreRejected) {
    expect_error("[node.3]\nhost = h\ndata_directory = data/3\n", 3,
                 {"[node.3] data_directory: 'data/3' is not an absolute path (allowed: a path starting with /)"});
    expect_error("[node.3]\nhost = h\ndata_directory =\n", 3, {"[node.3] data_directory: must not be empty"});
    expect_error("[node.3]\nbin_directory = ./bin\n", 2, {"[node.3] bin_directory: './bin' is not an absolute path"});
    expect_error("[connection]\npassfile = ~/.pgpass\n", 2, {"[connection] passfile: '~/.pgpass' is not an absolute path"});
    expect_error("[general]\nlog_file = pgfailover.log\n", 2, {"[general] log_file: 'pgfailover.log' is not an absolute path"});
    expect_error("[general]\npgpool_conf = pgpool.conf\n", 2, {"[general] pgpool_conf: 'pgpool.conf' is not an absolute path"});
    expect_error("[general]\nlock_file = x.lock\n", 2, {"[general] lock_file: 'x.lock' is not an absolute path"});
    expect_error("[general]\nlog_file = \"/var/log/x\"\n", 2, {"is not an absolute path"});
}

TEST_F(ConfigTest, ControlCharactersAreRejected) {
    expect_error("[node.1]\nhost = db\x01one\n", 2, {"[node.1] host: 'db\\x01one' contains a control character"});
    expect_error("[node.1]\nhost = db\tone\n", 2, {"[node.1] host: 'db\\x09one' contains a control character"});
    expect_error("[node.1]\nhost = db one\n", 2, {"[node.1] host: 'db one' contains a space"});
    expect_error("[node.1]\nhost = -oProxyCommand=x\n", 2, {"[node.1] host: '-oProxyCommand=x' starts with '-'"});
    expect_error("[node.1]\nhost =\n", 2, {"[node.1] host: must not be empty"});
    expect_error("[node.1]\nhost = h\ndata_directory = /data/\x1b[31m\n", 3,
                 {"[node.1] data_directory: '/data/\\x1b[31m' contains a control character"});
    expect_error("[connection]\nuser = a\x7f\n", 2, {"[connection] user: 'a\\x7f' contains a control character"});
    expect_error("[node.1]\nhost = h\naccess = ssh\nssh_user = -oX\n", 4, {"[node.1] ssh_user: '-oX' is not a user name"});
    expect_error("[node.1]\nhost = h\naccess = ssh\nssh_user = a@b\n", 4, {"[node.1] ssh_user: 'a@b' is not a user name"});

    // Newlines cannot come from the file, but can from apply_setting.
    Config c;
    try {
        apply_setting(c, "node.1", "host", "db1\nevil", "option");
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), "option: [node.1] host: 'db1\\x0aevil' contains a control character (not allowed)");
    }
    EXPECT_THROW(apply_setting(c, "node.1", "data_directory", "/a\nb", "option"), Error);
    EXPECT_THROW(apply_setting(c, "general", "pgpool_conf", "/a\r", "option"), Error);
}

TEST_F(ConfigTest, EnumsAndNames) {
    expect_error("[connection]\nsslmode = required\n", 2,
                 {"[connection] sslmode: 'required' is not allowed (allowed: disable, allow, prefer, require, "
                  "verify-ca, verify-full)"});
    expect_error("[policy]\non_unclean = yes\n", 2, {"[policy] on_unclean: 'yes' is not allowed (allowed: promote, abort, fence)"});
    expect_error("[policy]\non_running = kill\n", 2, {"[policy] on_running: 'kill' is not allowed (allowed: stop, refuse)"});
    expect_error("[policy]\nsync_standby_names = Adapt\n", 2, {"(allowed: adapt, keep, async)"});
    expect_error("[general]\nlog_level = warn\n", 2, {"[general] log_level: 'warn' is not allowed (allowed: debug, info, warning, error)"});
    expect_error("[node.2]\naccess = rsh\n", 2, {"[node.2] access: 'rsh' is not allowed (allowed: local, ssh)"});
    expect_error("[general]\ncluster_name = a/b\n", 2, {"[general] cluster_name: 'a/b' is not a valid cluster name"});
    expect_error("[general]\ncluster_name =\n", 2, {"[general] cluster_name: '' is not a valid cluster name"});
    expect_error("[general]\ncluster_name = " + std::string(64, 'a') + "\n", 2, {"is not a valid cluster name"});
    EXPECT_EQ(load("[general]\ncluster_name = " + std::string(63, 'a') + "\n").cluster_name, std::string(63, 'a'));
    expect_error("[connection]\ndbname =\n", 2, {"[connection] dbname: must not be empty"});
    expect_error(std::string(kNode0) + "application_name = " + std::string(64, 'n') + "\n", 4,
                 {"[node.0] application_name:", "longer than 63 bytes"});
    expect_error(std::string(kNode0) + "application_name = n\xc3\xb6" "de\n", 4,
                 {"[node.0] application_name:", "printable ASCII"});
    EXPECT_EQ(load("[connection]\nsslmode =\n").sslmode, "");
    EXPECT_EQ(load("[policy]\nsync_standby_names = keep\n").sync_policy, SyncPolicy::Keep);
}

TEST_F(ConfigTest, SyntaxAndLineHandling) {
    expect_error("[general]\nlog_level = info\nthis is not a setting\n", 3, {"syntax error"});
    expect_error("[general\nlog_level = info\n", 1, {"syntax error"});
    // A syntax error before a bad value: the first one is reported.
    expect_error("[general]\nbroken\nlog_level = loud\n", 2, {"syntax error"});
    expect_error("[general]\nlog_level = loud\nbroken\n", 2, {"log_level"});
    expect_error("[general]\nlog_file = /" + std::string(250, 'x') + "\n", 2, {"line is longer than"});
    // Indented lines are plain lines, never continuations of the previous value.
    Config c = load("[node.0]\n  host = db0\n    port = 5433\n\tdata_directory = /d\n  [node.1]\n  host = db1\n");
    EXPECT_EQ(c.nodes.at(0).host, "db0");
    EXPECT_EQ(c.nodes.at(0).port, 5433);
    EXPECT_EQ(c.nodes.at(0).data_directory, "/d");
    EXPECT_EQ(c.nodes.at(1).host, "db1");
    // CRLF, a UTF-8 BOM, " ;" comments, "key: value".
    c = load("\xEF\xBB\xBF[general]\r\nlog_level = error ; quiet\r\ncluster_name: c1\r\n");
    EXPECT_EQ(c.log_level, "error");
    EXPECT_EQ(c.cluster_name, "c1");
    // '#' after a value is not a comment: say so.
    expect_error(std::string(kNode0) + "port = 5433 # primary\n", 4,
                 {"[node.0] port: '5433 # primary' is not a port number", "'#' starts a comment only at the start"});
}

TEST_F(ConfigTest, NulByteInFile) {
    std::string text = "[general]\nlog_level = info\n";
    text += std::string("cluster_name = a\0b\n", 19);
    expect_error(text, 3, {"line contains a NUL byte"});
}

TEST_F(ConfigTest, CrossKeyValidation) {
    expect_error("[node.4]\nport = 5433\n", 1, {"[node.4] host: missing (set host in [node.4] or backend_hostname4 in pgpool.conf)"});
    expect_error(std::string(kNode0) + "ssh_user = postgres\n", 1,
                 {"[node.0] ssh_user: only allowed with access = ssh (this node has access = local)"});
    expect_error(std::string(kNode0) + "ssh_port = 2222\n", 1, {"[node.0] ssh_port: only allowed with access = ssh"});
    expect_error(std::string(kNode0) + "ssh_options = -4\n", 1, {"[node.0] ssh_options: only allowed with access = ssh"});
    expect_error(std::string(kNode0) + "[node.1]\nhost = db0\n", 4, {"[node.1] host: node 1 and node 0 are both db0:5432"});
    // Order in the file does not matter: access may come after the ssh keys.
    Config c = load(std::string(kNode0) + "ssh_user = postgres\nssh_port = 2222\naccess = ssh\n");
    EXPECT_EQ(c.nodes.at(0).access, Access::Ssh);
    // The same host on another port is another node.
    c = load(std::string(kNode0) + "[node.1]\nhost = db0\nport = 5433\n");
    EXPECT_EQ(c.nodes.size(), 2u);

    Config v;
    v.poll_interval = 0;
    try {
        validate_config(v);
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()), "configuration: [timeouts] poll_interval: 0 is out of range (allowed: 0.005..10)");
    }
    v = Config();
    v.nodes[2].id = 2;
    v.nodes[2].host = "h";
    v.nodes[2].port = 0;
    EXPECT_THROW(validate_config(v), Error);
    v.nodes[2].port = 5432;
    EXPECT_NO_THROW(validate_config(v));
    v.nodes[2].data_directory = "rel";
    EXPECT_THROW(validate_config(v), Error);
}

TEST_F(ConfigTest, ApplySettingUsesWhere) {
    Config c;
    apply_setting(c, "timeouts", "shutdown", "12.5", "option");
    EXPECT_DOUBLE_EQ(c.shutdown_timeout, 12.5);
    apply_setting(c, "node.5", "host", "db5", "option");
    EXPECT_EQ(c.nodes.at(5).id, 5);
    EXPECT_EQ(c.nodes.at(5).host, "db5");
    try {
        apply_setting(c, "timeouts", "shutdown", "10s", "option");
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()), "option: [timeouts] shutdown: '10s' is not a number of seconds (allowed: 0.1..86400)");
    }
    EXPECT_DOUBLE_EQ(c.shutdown_timeout, 12.5);
    try {
        apply_setting(c, "nodes", "host", "x", "option");
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()).rfind("option: unknown section [nodes]", 0), 0u) << e.what();
    }
}

TEST_F(ConfigTest, SwitchoverGatesAndCheckpoint) {
    Config c;
    EXPECT_EQ(c.max_lag, "64MB");
    EXPECT_EQ(c.max_lag_bytes, 64LL << 20);
    EXPECT_EQ(c.max_lag_seconds, -1);
    EXPECT_EQ(c.max_archive_backlog, 32);
    EXPECT_EQ(c.pre_checkpoint, PreCheckpoint::Twice);
    const std::pair<const char *, long long> sizes[] = {
        {"16MB", 16LL << 20}, {"512kB", 512LL << 10}, {"1GB", 1LL << 30}, {"1048576", 1048576}, {"100B", 100},
        {"0", 0}, {"1.5MB", 3LL << 19}};
    for (const auto &[text, bytes] : sizes) {
        apply_setting(c, "switchover", "max_lag", text, "option");
        EXPECT_EQ(c.max_lag_bytes, bytes) << text;
        EXPECT_EQ(c.max_lag_seconds, -1) << text;
        EXPECT_EQ(c.max_lag, text);
    }
    const std::pair<const char *, double> times[] = {{"5s", 5}, {"500ms", 0.5}, {"2min", 120}, {"0.25s", 0.25}};
    for (const auto &[text, secs] : times) {
        apply_setting(c, "switchover", "max_lag", text, "option");
        EXPECT_DOUBLE_EQ(c.max_lag_seconds, secs) << text;
        EXPECT_EQ(c.max_lag_bytes, -1) << text;
    }
    apply_setting(c, "switchover", "max_lag", "off", "option");
    EXPECT_EQ(c.max_lag_bytes, -1);
    EXPECT_EQ(c.max_lag_seconds, -1);
    for (const char *bad : {"", "16 MB", "16mb", "5h", "-1MB", "MB", "1e3", "2days", "999999999GB"}) {
        try {
            apply_setting(c, "switchover", "max_lag", bad, "option");
            ADD_FAILURE() << bad;
        } catch (const Error &e) {
            EXPECT_NE(std::string(e.what()).find("is not a lag limit (allowed: a size like 16MB"), std::string::npos)
                << e.what();
        }
        EXPECT_EQ(c.max_lag, "off") << bad; // a rejected value changes nothing
    }
    apply_setting(c, "switchover", "max_archive_backlog", "0", "option");
    EXPECT_EQ(c.max_archive_backlog, 0);
    apply_setting(c, "switchover", "max_archive_backlog", "off", "option");
    EXPECT_EQ(c.max_archive_backlog, -1);
    EXPECT_THROW(apply_setting(c, "switchover", "max_archive_backlog", "-3", "option"), Error);
    EXPECT_THROW(apply_setting(c, "switchover", "max_archive_backlog", "12 files", "option"), Error);
    apply_setting(c, "switchover", "checkpoint", "off", "option");
    EXPECT_EQ(c.pre_checkpoint, PreCheckpoint::Off);
    apply_setting(c, "switchover", "checkpoint", "once", "option");
    EXPECT_EQ(c.pre_checkpoint, PreCheckpoint::Once);
    EXPECT_THROW(apply_setting(c, "switchover", "checkpoint", "always", "option"), Error);
    EXPECT_THROW(apply_setting(c, "switchover", "max_wait", "1", "option"), Error);
}

TEST_F(ConfigTest, PgpoolConfCompletesAndAddsNodes) {
    std::string pp = write("backend_hostname0 = 'pg-db0'\n"
                           "backend_port0 = 5440\n"
                           "backend_data_directory0 = '/pgpool/0'\n"
                           "backend_application_name0 = 'app0'\n"
                           "backend_hostname1 = 'pg-db1'\n"
                           "backend_port1 = 5441\n"
                           "backend_data_directory1 = '/pgpool/1'\n"
                           "\n"
                           "backend_hostname2 = 'pg-db2'\n"
                           "backend_data_directory2 = '/pgpool/2'\n",
                           "pgpool.conf");
    Config c = load("[general]\npgpool_conf = " + pp +
                    "\n"
                    "[node.0]\n"
                    "data_directory = /mine/0\n"
                    "access = ssh\n"
                    "[node.1]\n"
                    "host = my-db1\n"
                    "port = 5432\n"
                    "application_name = mine1\n");
    ASSERT_EQ(c.nodes.size(), 3u);
    const Node &n0 = c.nodes.at(0);
    EXPECT_EQ(n0.host, "pg-db0");
    EXPECT_EQ(n0.port, 5440);
    EXPECT_EQ(n0.data_directory, "/mine/0");
    EXPECT_EQ(n0.application_name, "app0");
    EXPECT_EQ(n0.access, Access::Ssh);
    EXPECT_EQ(n0.origin, path() + ":3");
    const Node &n1 = c.nodes.at(1);
    EXPECT_EQ(n1.host, "my-db1");
    EXPECT_EQ(n1.port, 5432); // set explicitly, even though it is the default
    EXPECT_EQ(n1.data_directory, "/pgpool/1");
    EXPECT_EQ(n1.application_name, "mine1");
    const Node &n2 = c.nodes.at(2);
    EXPECT_EQ(n2.id, 2);
    EXPECT_EQ(n2.host, "pg-db2");
    EXPECT_EQ(n2.port, 5432);
    EXPECT_EQ(n2.data_directory, "/pgpool/2");
    EXPECT_EQ(n2.origin, pp + ":9");
}

TEST_F(ConfigTest, PgpoolConfErrors) {
    std::string pp = write("backend_hostname0 = 'db0'\nbackend_port0 = 'x'\n", "pgpool.conf");
    expect_error("[general]\n\npgpool_conf = " + pp + "\n", 3,
                 {"[general] pgpool_conf: " + pp + ":2: backend_port0: 'x' is not a port number"});
    std::string missing = path("missing-pgpool.conf");
    expect_error("[general]\npgpool_conf = " + missing + "\n", 2,
                 {"[general] pgpool_conf: cannot read pgpool.conf " + missing + ": No such file or directory"});
    // A pgpool backend without a host name is reported at its pgpool.conf line.
    pp = write("backend_port3 = 5432\nbackend_data_directory3 = '/d'\n", "pgpool2.conf");
    std::string msg = error_of("[general]\npgpool_conf = " + pp + "\n");
    EXPECT_EQ(msg, pp + ":1: [node.3] host: missing (set host in [node.3] or backend_hostname3 in pgpool.conf)");
    // Relative data directory from pgpool.conf.
    pp = write("backend_hostname1 = 'db1'\nbackend_data_directory1 = 'data'\n", "pgpool3.conf");
    msg = error_of("[general]\npgpool_conf = " + pp + "\n");
    EXPECT_EQ(msg, pp + ":1: [node.1] data_directory: 'data' is not an absolute path (allowed: a path starting with /)");
}

TEST_F(ConfigTest, DefaultConfigPath) {
    const char *old = std::getenv(kConfigEnvVar);
    std::string saved = old ? old : "";
    setenv(kConfigEnvVar, "/srv/pgfo.conf", 1);
    EXPECT_EQ(default_config_path(), "/srv/pgfo.conf");
    setenv(kConfigEnvVar, "", 1);
    EXPECT_EQ(default_config_path(), kDefaultConfigPath);
    unsetenv(kConfigEnvVar);
    EXPECT_EQ(default_config_path(), "/etc/pgfailover/pgfailover.conf");
    if (old) setenv(kConfigEnvVar, saved.c_str(), 1);
}

} // namespace

TEST_F(ConfigTest, RejoinReplicationAndPcpSettings) {
    Config c = load("[policy]\nrewind = auto\nreplication_slots = on\n"
                    "[replication]\nuser = replicator\npassfile = /etc/pgfailover/pgpass\n"
                    "synchronous_standby_names = ANY 1 (node0, node1)\n"
                    "[pcp]\nhost = 127.0.0.1\nport = 9898\nuser = pgpool\npassfile = /etc/pgfailover/pcppass\n"
                    "[timeouts]\nfollow = 90\nrewind = 300\n");
    EXPECT_EQ(c.rewind, RewindPolicy::Auto);
    EXPECT_TRUE(c.replication_slots);
    EXPECT_EQ(c.repl_user, "replicator");
    EXPECT_EQ(c.repl_passfile, "/etc/pgfailover/pgpass");
    EXPECT_EQ(c.sync_standby_names_target, "ANY 1 (node0, node1)");
    EXPECT_EQ(c.pcp_host, "127.0.0.1");
    EXPECT_EQ(c.pcp_port, 9898);
    EXPECT_EQ(c.pcp_user, "pgpool");
    EXPECT_DOUBLE_EQ(c.follow_timeout, 90);
    EXPECT_DOUBLE_EQ(c.rewind_timeout, 300);

    Config d = load("");
    EXPECT_EQ(d.rewind, RewindPolicy::Never); // a rewind is never the default
    EXPECT_FALSE(d.replication_slots);
    EXPECT_TRUE(d.pcp_host.empty());

    expect_error("[policy]\nrewind = always\n", 2, {"[policy] rewind", "'always'", "never, auto"});
    expect_error("[replication]\nsynchronous_standby_names = ANY (a\n", 2,
                 {"[replication] synchronous_standby_names"});
    expect_error("[pcp]\nport = 0\n", 2, {"[pcp] port"});
    expect_error("[pcp]\npassfile = relative/pcppass\n", 2, {"[pcp] passfile"});
    expect_error("[pcp]\nhost = -oProxyCommand=x\n", 2, {"[pcp] host"});
}

// Role names go into primary_conninfo: quotes and backslashes are legal
// there (and escaped where written), control characters and names PostgreSQL
// would cut are not.
TEST_F(ConfigTest, RoleNames) {
    Config c = load("[connection]\nuser = o'neil\n[replication]\nuser = DOM\\svc\n");
    EXPECT_EQ(c.user, "o'neil");
    EXPECT_EQ(c.repl_user, "DOM\\svc");
    for (const std::string sec : {"connection", "replication"}) {
        SCOPED_TRACE(sec);
        expect_error("[" + sec + "]\nuser = rep\x01l\n", 2,
                     {"[" + sec + "] user: 'rep\\x01l' contains a control character (\\x01; not allowed in a role name"});
        expect_error("[" + sec + "]\nuser = " + std::string(64, 'r') + "\n", 2,
                     {"[" + sec + "] user: ", "is longer than 63 bytes"});
        EXPECT_NO_THROW(load("[" + sec + "]\nuser = " + std::string(63, 'r') + "\n"));
        Config d;
        try {
            apply_setting(d, sec, "user", "rep\nl", "option");
            ADD_FAILURE() << "a newline in a role name was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
            EXPECT_NE(std::string(e.what()).find("option: [" + sec + "] user: 'rep\\x0al' contains a control character (\\x0a;"),
                      std::string::npos)
                << e.what();
        }
    }
    // Set behind the parser's back (a struct filled by hand): validate_config
    // still refuses it.
    Config e;
    e.repl_user = std::string("a\0b", 3);
    EXPECT_THROW(validate_config(e), Error);
    e.repl_user = "o'neil\\x";
    EXPECT_NO_THROW(validate_config(e));
}

// ssh runs ProxyCommand, LocalCommand (with PermitLocalCommand) and
// KnownHostsCommand through a shell and loads PKCS11Provider /
// SecurityKeyProvider code: none of them may come in through ssh_options.
TEST_F(ConfigTest, SshOptionsThatRunLocalCommandsAreRejected) {
    const std::string node = "[node.1]\nhost = db1\naccess = ssh\n";
    for (const std::string bad : {"-oProxyCommand=touch${IFS}/tmp/x", "-o ProxyCommand=nc%20%h",
                                  "-4 -oproxycommand=x", "-o PermitLocalCommand=yes -o LocalCommand=id",
                                  "-oLocalCommand=id", "-oKnownHostsCommand=/bin/sh", "-oPKCS11Provider=/tmp/x.so",
                                  "-o SecurityKeyProvider=/tmp/x.so", "-4oProxyCommand=x"}) {
        SCOPED_TRACE(bad);
        expect_error(node + "ssh_options = " + bad + "\n", 4,
                     {"[node.1] ssh_options: ", "makes ssh run a local command", "ProxyJump"});
    }
    EXPECT_NE(error_of(node + "ssh_options = -oProxyCommand=x\n").find("sets ProxyCommand"), std::string::npos);
    EXPECT_NE(error_of(node + "ssh_options = -oPermitLocalCommand=yes\n").find("sets PermitLocalCommand"),
              std::string::npos);
    // A jump host and ordinary options stay allowed.
    Config c = load(node + "ssh_options = -J bastion.example.com -oProxyJump=jump@bastion -o StrictHostKeyChecking=yes\n");
    EXPECT_EQ(c.nodes.at(1).ssh_options.size(), 5u);
}

TEST_F(ConfigTest, HostWithShellMetacharactersIsRejected) {
    for (const std::string bad : {"`touch${IFS}x`", "$(id)", "db;id", "db|id", "db&", "a<b", "a>b", "'db'", "\"db\"",
                                  "db\\x"}) {
        SCOPED_TRACE(bad);
        expect_error("[node.0]\nhost = " + bad + "\n", 2, {"[node.0] host: ", "shell metacharacter"});
    }
    EXPECT_EQ(load("[node.0]\nhost = /var/run/postgresql\n[node.1]\nhost = fe80::1%eth0\n").nodes.size(), 2u);
}

TEST_F(ConfigTest, WorldWritableFileIsRefusedWorldReadableWarned) {
    std::string p = write("[node.0]\nhost = db0\n");
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write |
                           fs::perms::others_read);
    try {
        load_config(p);
        ADD_FAILURE() << "a world-writable file was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
        EXPECT_EQ(std::string(e.what()), p + ": every user can write to it (mode 0606; allowed: a file others "
                                             "cannot write, e.g. chmod 0640)");
    }
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    Config c = load_config(p);
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_EQ(c.warnings[0], p + ": every user can read it (mode 0644; chmod 0640 is enough)");
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    EXPECT_TRUE(load_config(p).warnings.empty());
}

TEST_F(ConfigTest, WorldReadableFileWithACredentialIsRefused) {
    const auto readable = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                          fs::perms::others_read;
    for (const auto &[body, key] :
         std::vector<std::pair<std::string, std::string>>{
             {"url = http://127.0.0.1:9/hook\nsecret = s3cr3t-value\n", "secret"},
             {"url = https://alice:pw@hooks.example.com/x\n", "url"},
             {"url = https://token@hooks.example.com/x\n", "url"}}) {
        SCOPED_TRACE(body);
        std::string p = write("[node.0]\nhost = db0\n[webhook.ops]\n" + body);
        fs::permissions(p, readable);
        try {
            load_config(p);
            ADD_FAILURE() << "a credential in a world-readable file was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
            std::string msg = e.what();
            EXPECT_EQ(msg, p + ": [webhook.ops] " + key + " holds a credential and every user can read the file "
                              "(mode 0644); allowed: chmod 0640 (group postgres), or the key in a secret_file only "
                              "its owner can read");
            EXPECT_EQ(msg.find("s3cr3t"), std::string::npos);
            EXPECT_EQ(msg.find("pw@"), std::string::npos);
        }
        // the same file readable by its group only is accepted
        fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
        EXPECT_EQ(load_config(p).webhooks.size(), 1u);
    }
    // an @ in the path or query is not a credential
    std::string p = write("[node.0]\nhost = db0\n[webhook.ops]\nurl = https://hooks.example.com/a@b?x=@\n");
    fs::permissions(p, readable);
    EXPECT_EQ(load_config(p).warnings.size(), 1u);
}

// pg_ctl start puts these paths in double quotes for /bin/sh.
TEST_F(ConfigTest, ServerPathsWithShellExpansionAreRejected) {
    for (const std::string key : {"data_directory", "bin_directory"})
        for (const std::string bad : {"/data/$(touch x)", "/data/`id`", "/data/\"q", "/data/a\\b", "/data/${HOME}"}) {
            SCOPED_TRACE(key + " = " + bad);
            expect_error("[node.0]\nhost = db0\n" + key + " = " + bad + "\n", 3,
                         {"[node.0] " + key + ": ", "pg_ctl passes this path through a shell"});
        }
    // Characters that are literal inside double quotes stay allowed.
    Config c = load("[node.0]\nhost = db0\ndata_directory = /data/it's; a|b&c <d> *\n");
    EXPECT_EQ(c.nodes.at(0).data_directory, "/data/it's; a|b&c <d> *");
    // The same check applies to what pgpool.conf supplies.
    std::string pp = write("backend_hostname0 = 'db0'\nbackend_data_directory0 = '/data/$(id)'\n", "pgpool.conf");
    std::string msg = error_of("[general]\npgpool_conf = " + pp + "\n");
    EXPECT_NE(msg.find("data_directory: '/data/$(id)' contains"), std::string::npos) << msg;
}

TEST_F(ConfigTest, FencingCommandAndPolicy) {
    Config c = load(std::string("[policy]\non_unclean = fence\n[timeouts]\nfence = 12.5\n"
                                "[fencing]\ncommand = /usr/local/bin/fence  --node=%d %h:%p %D \"%r\" 100%%\n") +
                    kNode0);
    EXPECT_EQ(c.on_unclean, OnUnclean::Fence);
    EXPECT_DOUBLE_EQ(c.fence_timeout, 12.5);
    EXPECT_EQ(c.fence_command, (std::vector<std::string>{"/usr/local/bin/fence", "--node=%d", "%h:%p", "%D",
                                                         "\"%r\"", "100%%"}));
    EXPECT_DOUBLE_EQ(load(kNode0).fence_timeout, 30);
    EXPECT_TRUE(load(kNode0).fence_command.empty());

    expect_error(std::string("[fencing]\ncommand = fence.sh %d\n"), 2,
                 {"[fencing] command: 'fence.sh' is not an absolute path"});
    expect_error(std::string("[fencing]\ncommand = /bin/fence %x\n"), 2,
                 {"[fencing] command: '%x' has an unknown placeholder", "%d node id"});
    expect_error(std::string("[fencing]\ncommand = /bin/fence 50%\n"), 2, {"'50%' has an unknown placeholder"});
    expect_error(std::string("[fencing]\nuser = root\n"), 2, {"unknown key 'user' in [fencing]"});
    expect_error(std::string("[timeouts]\nfence = 0\n"), 2, {"[timeouts] fence: 0 is out of range"});
    // the policy needs the command
    std::string msg = error_of(std::string("[policy]\non_unclean = fence\n") + kNode0);
    EXPECT_NE(msg.find("[policy] on_unclean: fence needs a [fencing] command"), std::string::npos) << msg;
}

TEST_F(ConfigTest, FailoverSlotSettings) {
    Config d = load("");
    EXPECT_EQ(d.on_slots_not_ready, OnSlotsNotReady::Promote);
    EXPECT_FALSE(d.sync_replication_slots);
    Config c = load("[policy]\nreplication_slots = on\non_slots_not_ready = refuse\n"
                    "[replication]\nsync_replication_slots = on\n");
    EXPECT_EQ(c.on_slots_not_ready, OnSlotsNotReady::Refuse);
    EXPECT_TRUE(c.sync_replication_slots);
    expect_error("[policy]\non_slots_not_ready = wait\n", 2, {"[policy] on_slots_not_ready", "'wait'", "promote, refuse"});
    expect_error("[replication]\nsync_replication_slots = yes\n", 2, {"[replication] sync_replication_slots"});
    // slot synchronization needs primary_slot_name, which only replication_slots = on writes
    std::string msg = error_of("[replication]\nsync_replication_slots = on\n");
    EXPECT_NE(msg.find("[replication] sync_replication_slots: on needs [policy] replication_slots = on"),
              std::string::npos)
        << msg;
}
