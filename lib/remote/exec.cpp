// Running programs: posix_spawnp (no shell, nothing but exec between fork and
// exec, so it is safe in a multi-threaded host), a new process group per
// command so that a timeout reaches grandchildren too, pipes read with poll.
#include "remote/exec.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"

extern char **environ;

namespace pgfo {

namespace {

// True when an executable file `name` is in one of $PATH's directories.
bool on_path(const std::string &name) {
    const char *path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string dir = dirs.substr(start, end - start);
        std::string full = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (::access(full.c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
}

} // namespace
namespace {

constexpr size_t kOutputCap = 16u << 20;
constexpr double kKillGrace = 2.0;   // SIGTERM -> SIGKILL
constexpr double kPipeGrace = 0.2;   // after the child exits, how long to wait for pipe EOF

double now() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void close_fd(int &fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Keep our pipe ends off 0/1/2, in case the host runs with those closed:
// dup2(fd, fd) in the child would not clear FD_CLOEXEC.
int above_stdio(int fd) {
    if (fd > 2) return fd;
    int n = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    return n;
}

bool make_pipe(int &r, int &w) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return false;
    r = above_stdio(p[0]);
    w = above_stdio(p[1]);
    if (r < 0 || w < 0) {
        close_fd(r);
        close_fd(w);
        return false;
    }
    ::fcntl(r, F_SETFL, ::fcntl(r, F_GETFL) | O_NONBLOCK);
    return true;
}

struct Spawn {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    ~Spawn() {
        if (fa_ok) posix_spawn_file_actions_destroy(&fa);
        if (attr_ok) posix_spawnattr_destroy(&attr);
    }
};

// Standard input, output and error from these descriptors (-1: /dev/null),
// nothing else inherited, an own process group, and default signal
// dispositions. 0 or an errno value.
int spawn_setup(Spawn &sp, int in_fd, int out_fd, int err_fd) {
    int rc = posix_spawn_file_actions_init(&sp.fa);
    sp.fa_ok = rc == 0;
    const int fds[3] = {in_fd, out_fd, err_fd};
    for (int i = 0; i < 3 && rc == 0; ++i)
        rc = fds[i] >= 0 ? posix_spawn_file_actions_adddup2(&sp.fa, fds[i], i)
                         : posix_spawn_file_actions_addopen(&sp.fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors the host opened without O_CLOEXEC (a lock file!) must not
    // leak into pg_ctl and from there into a postmaster.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&sp.fa, 3);
#endif
    if (rc == 0) {
        rc = posix_spawnattr_init(&sp.attr);
        sp.attr_ok = rc == 0;
    }
    if (rc == 0) {
        // Own process group (pgid = child's pid); no blocked signals; and
        // signals a host may ignore (pgpool ignores SIGPIPE) back to default,
        // as ignored dispositions survive exec.
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        for (int s : {SIGPIPE, SIGXFSZ, SIGCHLD, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&defaults, s);
        rc = posix_spawnattr_setflags(&sp.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                    POSIX_SPAWN_SETSIGDEF);
        if (rc == 0) rc = posix_spawnattr_setpgroup(&sp.attr, 0);
        if (rc == 0) rc = posix_spawnattr_setsigmask(&sp.attr, &none);
        if (rc == 0) rc = posix_spawnattr_setsigdefault(&sp.attr, &defaults);
    }
    return rc;
}

// argv as exec wants it; the strings must outlive the result.
std::vector<char *> c_argv(const std::vector<std::string> &argv) {
    std::vector<char *> c;
    c.reserve(argv.size() + 1);
    for (const auto &a : argv) c.push_back(const_cast<char *>(a.c_str()));
    c.push_back(nullptr);
    return c;
}

struct Capture {
    int fd = -1;
    std::string *into = nullptr;
    size_t cap = kOutputCap;
    bool truncated = false;

    // Read what is there; close at EOF or error.
    void drain() {
        char buf[65536];
        while (fd >= 0) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) {
                size_t room = into->size() < cap ? cap - into->size() : 0;
                size_t take = std::min(room, static_cast<size_t>(n));
                into->append(buf, take);
                if (take < static_cast<size_t>(n)) truncated = true;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            close_fd(fd); // EOF or a read error
        }
    }
};

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
        return static_cast<int>(fd);
    }
#endif
    (void)pid;
    return -1;
}

struct RunOutcome {
    ExecResult r;
    bool out_truncated = false;
    bool err_truncated = false;
};

RunOutcome run_impl(const std::vector<std::string> &argv, double timeout_seconds, size_t cap) {
    RunOutcome o;
    ExecResult &res = o.r;
    if (argv.empty() || argv[0].empty()) {
        res.start_failed = true;
        res.err = "cannot run an empty command";
        return o;
    }
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i].find('\0') != std::string::npos) {
            res.start_failed = true;
            res.err = "cannot run " + shell_quote(argv[0].substr(0, argv[0].find('\0'))) + ": argument " +
                      std::to_string(i) + " contains a NUL byte";
            return o;
        }
    }

    int out_r = -1, out_w = -1, err_r = -1, err_w = -1;
    if (!make_pipe(out_r, out_w) || !make_pipe(err_r, err_w)) {
        int e = errno;
        close_fd(out_r), close_fd(out_w), close_fd(err_r), close_fd(err_w);
        res.start_failed = true;
        res.err = std::string("cannot create pipes: ") + std::strerror(e);
        return o;
    }

    Spawn sp;
    int rc = spawn_setup(sp, -1, out_w, err_w);
    std::vector<char *> cargv = c_argv(argv);

    pid_t pid = -1;
    if (rc == 0) rc = posix_spawnp(&pid, cargv[0], &sp.fa, &sp.attr, cargv.data(), environ);
    close_fd(out_w);
    close_fd(err_w);
    if (rc != 0) {
        close_fd(out_r);
        close_fd(err_r);
        res.start_failed = true;
        // posix_spawnp reports EACCES when a PATH directory is unreadable
        // (a root's PATH inherited by postgres, say) and the program is
        // nowhere else: say that it was not found, which is the real story.
        if (rc == EACCES && argv[0].find('/') == std::string::npos && !on_path(argv[0])) rc = ENOENT;
        res.err = "cannot run " + shell_quote(argv[0]) + ": " + std::strerror(rc);
        if (rc == ENOENT && argv[0].find('/') == std::string::npos) res.err += " (not found on PATH)";
        return o;
    }

    Capture out{out_r, &res.out, cap};
    Capture err{err_r, &res.err, cap};
    int pidfd = pidfd_open(pid);

    const double start = now();
    const double timeout = std::isnan(timeout_seconds) ? 0 : std::max(0.0, timeout_seconds);
    const double deadline = start + timeout;
    bool exited = false, status_lost = false;
    double exit_at = 0, term_at = 0, kill_at = 0;
    bool term_sent = false, kill_sent = false;

    for (;;) {
        if (!exited) {
            // WNOWAIT: leave the zombie in place until we are done signalling
            // the group, so that its pid (= the pgid) cannot be reused.
            siginfo_t si;
            std::memset(&si, 0, sizeof si);
            int w = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT);
            if (w == 0 && si.si_pid == pid) {
                exited = true;
            } else if (w < 0 && errno == ECHILD) {
                exited = true; // reaped elsewhere (SIGCHLD ignored by the host?)
                status_lost = true;
            }
            if (exited) {
                exit_at = now();
                close_fd(pidfd);
            }
        }
        const double t = now();
        if (!term_sent && !exited && t >= deadline) {
            res.timed_out = true;
            term_sent = true;
            term_at = t;
            ::kill(-pid, SIGTERM);
        }
        if (term_sent && !kill_sent && !status_lost && t >= term_at + kKillGrace &&
            (!exited || out.fd >= 0 || err.fd >= 0)) {
            kill_sent = true;
            kill_at = t;
            ::kill(-pid, SIGKILL);
        }
        // Something outside our control may still hold the pipes (a daemon
        // that inherited them, e.g. a postmaster started by pg_ctl without
        // -l): stop waiting for EOF shortly after the child is gone. After a
        // timeout, first let the SIGKILL for the group go out.
        const bool grace_running = exited && !(term_sent && !kill_sent && !status_lost);
        const double grace_from = kill_sent ? std::max(exit_at, kill_at) : exit_at;
        if (exited) {
            if (out.fd < 0 && err.fd < 0) break;
            if (grace_running && t - grace_from >= kPipeGrace) break;
        }

        // Sleep until output arrives, the child exits or the next deadline.
        double next = t + 1.0;
        if (!term_sent && !exited) next = std::min(next, deadline);
        if (term_sent && !kill_sent) next = std::min(next, term_at + kKillGrace);
        if (grace_running) next = std::min(next, grace_from + kPipeGrace);
        if (!exited && pidfd < 0) next = std::min(next, t + 0.01); // no pidfd: poll waitid
        if (kill_sent && !exited) next = std::min(next, t + 0.01);
        int ms = static_cast<int>(std::ceil(std::max(0.0, next - t) * 1000));

        struct pollfd fds[3];
        nfds_t n = 0;
        if (out.fd >= 0) fds[n++] = {out.fd, POLLIN, 0};
        if (err.fd >= 0) fds[n++] = {err.fd, POLLIN, 0};
        if (!exited && pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
        if (n == 0) {
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            ::nanosleep(&ts, nullptr);
        } else {
            int pr = ::poll(fds, n, ms);
            if (pr < 0 && errno != EINTR) {
                // Should not happen; avoid a busy loop if it does.
                struct timespec ts = {0, 10 * 1000000L};
                ::nanosleep(&ts, nullptr);
            }
        }
        out.drain();
        err.drain();
    }
    out.drain();
    err.drain();
    close_fd(out.fd);
    close_fd(err.fd);
    close_fd(pidfd);

    if (!status_lost) {
        int status = 0;
        pid_t w;
        do {
            w = ::waitpid(pid, &status, 0);
        } while (w < 0 && errno == EINTR);
        if (w == pid) {
            if (WIFEXITED(status)) {
                res.exit_code = WEXITSTATUS(status);
            } else if (WIFSIGNALED(status)) {
                res.exit_code = -1;
                res.term_signal = WTERMSIG(status);
            }
        } else {
            status_lost = true;
        }
    }
    if (status_lost) {
        res.exit_code = -1;
        if (!res.err.empty() && res.err.back() != '\n') res.err += '\n';
        res.err += "[exit status of " + shell_quote(argv[0]) + " unknown: it was reaped elsewhere]";
    }
    o.out_truncated = out.truncated;
    o.err_truncated = err.truncated;
    return o;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    size_t b = s.find_first_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b);
}

// ---------------------------------------------------------------- local

std::optional<std::string> local_read(const std::string &path, uint64_t offset, uint64_t len) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return std::nullopt;
        throw Error(PGFO_ERR_EXEC, "cannot read " + path + ": " + std::strerror(e));
    }
    std::string data;
    uint64_t pos = offset;
    char buf[65536];
    for (;;) {
        size_t want = sizeof buf;
        if (len > 0) {
            uint64_t left = len - data.size();
            if (left == 0) break;
            want = static_cast<size_t>(std::min<uint64_t>(left, sizeof buf));
        }
        ssize_t n = ::pread(fd, buf, want, static_cast<off_t>(pos));
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            throw Error(PGFO_ERR_EXEC, "cannot read " + path + ": " + std::strerror(e));
        }
        if (n == 0) break;
        data.append(buf, static_cast<size_t>(n));
        pos += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return data;
}

// Line 8 of postmaster.pid (LOCK_FILE_LINE_PM_STATUS), padded with blanks by
// the postmaster; "" when the file has fewer lines.
std::string pm_status_line(const std::string &content) {
    size_t pos = 0;
    for (int line = 1; line < 8; ++line) {
        pos = content.find('\n', pos);
        if (pos == std::string::npos) return "";
        ++pos;
    }
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) return ""; // not completely written yet
    std::string v = content.substr(pos, nl - pos);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.pop_back();
    return v;
}

// postmaster.pid's first line -> a pid; 0 when it is not (yet) a number.
// PostgreSQL writes -PID for a single-user backend.
long parse_pid_line(const std::string &content, bool &complete) {
    size_t nl = content.find('\n');
    complete = nl != std::string::npos;
    if (!complete) return 0;
    std::string line = content.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] == '-') line.erase(0, 1);
    if (line.empty() || line.size() > 9 || line[0] == '0') return 0;
    long pid = 0;
    for (char c : line) {
        if (c < '0' || c > '9') return 0;
        pid = pid * 10 + (c - '0');
    }
    return pid;
}

void check_data_directory_local(const std::string &dir) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            throw Error(PGFO_ERR_STATE, "data directory " + dir + " does not exist");
        throw Error(PGFO_ERR_EXEC, "cannot access data directory " + dir + ": " + std::strerror(e));
    }
    if (!S_ISDIR(st.st_mode)) throw Error(PGFO_ERR_STATE, "data directory " + dir + " is not a directory");
    const std::string v = dir + "/PG_VERSION";
    if (::stat(v.c_str(), &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            throw Error(PGFO_ERR_STATE, dir + " is not a PostgreSQL data directory (no PG_VERSION)");
        throw Error(PGFO_ERR_EXEC, "cannot access " + v + ": " + std::strerror(e));
    }
}

class LocalAccess : public NodeAccess {
public:
    ExecResult run(const std::vector<std::string> &argv, double timeout_seconds) override {
        return run_local(argv, timeout_seconds);
    }

    std::optional<std::string> read_file(const std::string &path, uint64_t offset, uint64_t len,
                                         double) override {
        return local_read(path, offset, len);
    }

    PidFileStatus postmaster_pid(const std::string &data_directory, double) override {
        // Without this check a mistyped data_directory would look like a
        // stopped server.
        check_data_directory_local(data_directory);
        PidFileStatus s;
        auto content = local_read(data_directory + "/postmaster.pid", 0, 0);
        if (!content) return s; // Gone
        bool complete = false;
        s.pid = parse_pid_line(*content, complete);
        s.pm_status = pm_status_line(*content);
        if (s.pid == 0) {
            // An empty file or a first line that is not a whole number: the
            // postmaster creates postmaster.pid first and writes it in steps,
            // so this is a postmaster starting up right now. Count it as alive.
            s.state = PidFileState::Alive;
            return s;
        }
        if (::kill(static_cast<pid_t>(s.pid), 0) == 0 || errno == EPERM)
            s.state = PidFileState::Alive;
        else
            s.state = PidFileState::Stale;
        return s;
    }

    ShutdownProbe probe_shutdown(const std::string &data_directory, double timeout_seconds) override {
        ShutdownProbe p;
        p.pid = postmaster_pid(data_directory, timeout_seconds);
        p.pg_control = local_read(data_directory + "/global/pg_control", 0, 0);
        return p;
    }

    std::string describe() const override { return "local"; }
};

// ---------------------------------------------------------------- ssh

// Remote scripts run by `sh -c SCRIPT pgfailover ARGS...`: the path is an
// argument, never pasted into the script. They assume a POSIX login shell on
// the node (sh, bash, dash, ksh, zsh); reads at an offset use GNU dd, or
// tail -c/head -c where dd has no iflag=skip_bytes (busybox, BSD).
// read: exit 3 = no such file (nothing else counts as missing), 4 = a
// directory on the way cannot be searched.
const char *kReadScript = R"SH(p=$1
if ! test -e "$p" && ! test -L "$p"; then
  d=$(dirname -- "$p")
  if test -e "$d" && ! test -x "$d"; then echo "cannot search directory $d" >&2; exit 4; fi
  exit 3
fi
if test "$2" = 0 && test "$3" = 0; then exec cat -- "$p"; fi
if ! dd if=/dev/null of=/dev/null iflag=skip_bytes,count_bytes count=0 2>/dev/null; then
  test -r "$p" || { echo "cannot read $p" >&2; exit 1; }
  if test "$3" = 0; then exec tail -c "+$(($2 + 1))" -- "$p"; fi
  tail -c "+$(($2 + 1))" -- "$p" | head -c "$3"; exit
fi
if test "$3" = 0; then exec dd if="$p" bs=65536 iflag=skip_bytes skip="$2"; fi
exec dd if="$p" bs=65536 iflag=skip_bytes,count_bytes skip="$2" count="$3"
)SH";

// Exit 4/5: not a data directory; prints GONE, STALE pid or ALIVE pid (pid 0:
// the file is being written).
const char *kPidScript = R"SH(LC_ALL=C; export LC_ALL
d=$1
test -d "$d" || { echo "data directory $d does not exist or is not a directory" >&2; exit 4; }
test -e "$d/PG_VERSION" || { echo "$d is not a PostgreSQL data directory (no PG_VERSION)" >&2; exit 5; }
f=$d/postmaster.pid
if ! test -e "$f"; then echo GONE; exit 0; fi
test -r "$f" || { echo "cannot read $f" >&2; exit 6; }
if ! IFS= read -r pid < "$f"; then echo "ALIVE 0"; exit 0; fi
pid=${pid%"$(printf '\r')"}
pid=${pid#-}
case $pid in ''|0*|*[!0-9]*) echo "ALIVE 0"; exit 0;; esac
if test ${#pid} -gt 9; then echo "ALIVE 0"; exit 0; fi
st=$(sed -n '8{s/ *$//;p;}' "$f" 2>/dev/null)
case $st in *[!a-z]*) st=;; esac
if kill -0 "$pid" 2>/dev/null || test -d "/proc/$pid"; then echo "ALIVE $pid $st"; exit 0; fi
case $(kill -0 "$pid" 2>&1) in *ermitted*|*EPERM*) echo "ALIVE $pid $st";; *) echo "STALE $pid";; esac
)SH";

// $1 = data directory, $2 = kPidScript. Prints a marker line with the pid
// answer, then CONTROL and pg_control's bytes, or NOCONTROL.
const char *kProbeScript = R"SH(st=$(sh -c "$2" pgfailover "$1") || exit $?
printf 'pgfailover-probe %s\n' "$st"
f=$1/global/pg_control
if test -e "$f"; then echo CONTROL; exec cat -- "$f"; fi
echo NOCONTROL
)SH";
constexpr const char *kProbeMarker = "pgfailover-probe ";

// "GONE", "ALIVE pid", "STALE pid" -> a status; false for anything else.
bool parse_pid_answer(const std::string &answer, PidFileStatus &s) {
    if (answer == "GONE") return true;
    // "ALIVE pid status": the postmaster's status line (lower-case letters), when written
    std::string line = answer;
    if (line.compare(0, 6, "ALIVE ") == 0) {
        size_t sp = line.find(' ', 6);
        if (sp != std::string::npos) {
            std::string status = line.substr(sp + 1);
            if (status.find_first_not_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos) return false;
            s.pm_status = status;
            line.erase(sp);
        }
    }
    auto num = [&](size_t at, long &pid) {
        std::string n = line.substr(at);
        if (n.empty() || n.size() > 9) return false;
        pid = 0;
        for (char c : n) {
            if (c < '0' || c > '9') return false;
            pid = pid * 10 + (c - '0');
        }
        return true;
    };
    if (line.compare(0, 6, "ALIVE ") == 0 && num(6, s.pid)) {
        s.state = PidFileState::Alive;
        return true;
    }
    if (line.compare(0, 6, "STALE ") == 0 && num(6, s.pid)) {
        s.state = PidFileState::Stale;
        return true;
    }
    return false;
}

// ---------------------------------------------------------------- shared ssh connections

thread_local RemoteCosts t_costs;

// Removes the control directory when this process dies without closing its
// masters itself: it reads socket numbers from its standard input (a socket
// from this process) until end of file, then closes each master.
const char *kWatchScript = R"SH(d=$1
n=
while IFS= read -r i; do n="$n $i"; done
for i in $n; do
  test -S "$d/$i" && ssh -F /dev/null -o ControlPath="$d/$i" -O exit pgfailover-master >/dev/null 2>&1
done
rm -rf -- "$d"
)SH";

bool is_socket(const std::string &path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Only such paths go into ControlPath= (ssh splits option values on blanks
// and expands % tokens).
bool plain_path(const std::string &p) {
    if (p.empty() || p[0] != '/') return false;
    for (unsigned char c : p)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
              c == '.' || c == '_' || c == '-'))
            return false;
    return true;
}

class Masters {
public:
    // Never destroyed: sessions may end during static destruction.
    static Masters &get() {
        static Masters *m = new Masters;
        return *m;
    }

    void acquire() {
        std::lock_guard<std::mutex> l(mu_);
        ++leases_;
    }
    void release() {
        std::lock_guard<std::mutex> l(mu_);
        if (leases_ > 0 && --leases_ == 0) close_all();
    }
    std::string directory() {
        std::lock_guard<std::mutex> l(mu_);
        return dir_;
    }

    // The control socket of the master for `n`: the one running, the one
    // prewarm() started (waited for), or one started now (there was none, or
    // it ended after ControlPersist); "" without a session.
    std::string socket_for(const Node &n, double timeout, RemoteCost &cost, const std::string &who) {
        std::lock_guard<std::mutex> l(mu_);
        if (leases_ == 0) return "";
        const std::string key = key_of(n);
        auto it = masters_.find(key);
        if (it != masters_.end()) {
            if (is_socket(it->second)) return it->second;
            masters_.erase(it);
        }
        auto pit = pending_.find(key);
        Pending p;
        if (pit != pending_.end()) {
            p = pit->second;
            pending_.erase(pit);
        } else {
            p = begin_start(n, timeout, cost, who);
        }
        std::string sock = finish_start(p, cost, who);
        masters_[key] = sock;
        return sock;
    }

    // Start connecting to `n` in the background (during a session, when no
    // master is there or on its way); the first call that needs it waits for it.
    void prewarm(const Node &n, double timeout, RemoteCost &cost, const std::string &who) {
        std::lock_guard<std::mutex> l(mu_);
        if (leases_ == 0) return;
        const std::string key = key_of(n);
        if (pending_.count(key) || (masters_.count(key) && is_socket(masters_[key]))) return;
        try {
            pending_[key] = begin_start(n, timeout, cost, who);
        } catch (const Error &) {
            // the first call will try again and report it
        }
    }

    // A client through `sock` failed as if the connection were gone (exit
    // 255, a timeout): close that master; the next call connects afresh.
    void drop(const std::string &sock) {
        std::lock_guard<std::mutex> l(mu_);
        for (auto it = masters_.begin(); it != masters_.end(); ++it) {
            if (it->second != sock) continue;
            close_master(sock);
            masters_.erase(it);
            return;
        }
    }

private:
    // A master being started: its ssh process and standard error.
    struct Pending {
        pid_t pid = -1;
        int err = -1;
        std::string sock;
        double started = 0, timeout = 0;
    };

    static std::string key_of(const Node &n) {
        std::string key = n.ssh_user + '\n' + n.host + '\n' + std::to_string(n.ssh_port);
        for (const auto &o : n.ssh_options) key += '\n' + o;
        return key;
    }

    Pending begin_start(const Node &n, double timeout, RemoteCost &cost, const std::string &who) {
        std::vector<std::string> argv = ssh_master_argv(n, "/", timeout); // checks the node first
        open_directory();
        const int index = next_++;
        Pending p;
        p.sock = dir_ + "/" + std::to_string(index);
        p.timeout = std::isnan(timeout) ? 0 : std::max(0.0, timeout);
        argv = ssh_master_argv(n, p.sock, timeout);
        if (watch_fd_ >= 0) {
            std::string line = std::to_string(index) + "\n";
            if (::send(watch_fd_, line.data(), line.size(), MSG_NOSIGNAL) < 0) {
                // the watcher is gone: ControlPersist remains the safety net
            }
        }
        int r = -1, w = -1;
        if (!make_pipe(r, w)) throw Error(PGFO_ERR_EXEC, who + ": cannot create a pipe: " + std::strerror(errno));
        Spawn sp;
        int rc = spawn_setup(sp, -1, -1, w);
        std::vector<char *> cargv = c_argv(argv);
        if (rc == 0) rc = posix_spawnp(&p.pid, cargv[0], &sp.fa, &sp.attr, cargv.data(), environ);
        close_fd(w);
        if (rc != 0) {
            close_fd(r);
            throw Error(PGFO_ERR_EXEC, who + ": cannot run ssh: " + std::strerror(rc) +
                                           (rc == ENOENT ? " (not found on PATH)" : ""));
        }
        ++cost.connections;
        p.err = r;
        p.started = now();
        return p;
    }

    // Waits for the ssh that starts a master (it exits once authenticated,
    // leaving the master in the background); its socket, or an Error.
    std::string finish_start(Pending &p, RemoteCost &cost, const std::string &who) {
        std::string err;
        Capture cap{p.err, &err, 1 << 16};
        int status = 0;
        bool exited = false, timed_out = false;
        for (;;) {
            cap.drain();
            pid_t w = ::waitpid(p.pid, &status, WNOHANG);
            if (w == p.pid) {
                exited = true;
                break;
            }
            if (w < 0 && errno != EINTR) break; // reaped elsewhere: judge by the socket
            if (now() - p.started >= p.timeout) {
                ::kill(-p.pid, SIGKILL);
                while (::waitpid(p.pid, nullptr, 0) < 0 && errno == EINTR) {
                }
                timed_out = true;
                break;
            }
            struct pollfd fd = {cap.fd, POLLIN, 0};
            if (cap.fd >= 0) ::poll(&fd, 1, 5);
            else ::usleep(5000);
        }
        cap.drain();
        close_fd(cap.fd);
        cost.connect_seconds += now() - p.started;
        err = trim(err);
        const std::string more = err.empty() ? std::string() : ": " + err;
        if (timed_out) {
            close_master(p.sock);
            throw Error(PGFO_ERR_EXEC, who + ": ssh timed out connecting after " +
                                           std::to_string(static_cast<int>(p.timeout)) + " s" + more);
        }
        if (exited && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            throw Error(PGFO_ERR_EXEC, who + ": ssh failed (exit " + std::to_string(code) +
                                           ": cannot connect or authenticate)" + more);
        }
        if (!is_socket(p.sock)) {
            close_master(p.sock);
            throw Error(PGFO_ERR_EXEC, who + ": ssh connected but opened no control socket" + more);
        }
        return p.sock;
    }

    static void close_master(const std::string &sock) {
        if (is_socket(sock))
            run_impl({"ssh", "-F", "/dev/null", "-o", "ControlPath=" + sock, "-O", "exit", "pgfailover-master"},
                     5, 1 << 16);
        ::unlink(sock.c_str());
    }

    void open_directory() {
        if (!dir_.empty()) return;
        std::string base = "/tmp";
        const char *t = std::getenv("TMPDIR");
        if (t) {
            std::string tmp = t;
            while (tmp.size() > 1 && tmp.back() == '/') tmp.pop_back();
            // room for "/pgfailover-ssh-XXXXXX/N" and ssh's temporary suffix in sun_path
            if (plain_path(tmp) && tmp.size() <= 60) base = tmp;
        }
        std::string templ = base + "/pgfailover-ssh-XXXXXX";
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) // mode 0700
            throw Error(PGFO_ERR_EXEC, "cannot create a private directory for ssh control sockets in " + base +
                                           ": " + std::strerror(errno));
        dir_ = buf.data();
        start_watcher();
    }

    void start_watcher() {
        // A socket pair rather than a pipe: send() with MSG_NOSIGNAL cannot
        // raise SIGPIPE in a host that has not ignored it.
        int p[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0) return;
        int r = above_stdio(p[0]), w = above_stdio(p[1]);
        if (r < 0 || w < 0) {
            close_fd(r);
            close_fd(w);
            return;
        }
        // Its own process group, so that a signal to ours does not reach it.
        Spawn sp;
        int rc = spawn_setup(sp, r, -1, -1);
        std::vector<std::string> argv = {"sh", "-c", kWatchScript, "pgfailover-ssh-watch", dir_};
        std::vector<char *> cargv = c_argv(argv);
        pid_t pid = -1;
        if (rc == 0) rc = posix_spawnp(&pid, "sh", &sp.fa, &sp.attr, cargv.data(), environ);
        close_fd(r);
        if (rc != 0) {
            close_fd(w);
            return;
        }
        watch_pid_ = pid;
        watch_fd_ = w;
    }

    void close_all() {
        for (auto &[key, p] : pending_) {
            // Still connecting: stop it; done: close what it opened.
            if (::waitpid(p.pid, nullptr, WNOHANG) == 0) {
                ::kill(-p.pid, SIGKILL);
                while (::waitpid(p.pid, nullptr, 0) < 0 && errno == EINTR) {
                }
            }
            close_fd(p.err);
            close_master(p.sock);
        }
        pending_.clear();
        for (const auto &[key, sock] : masters_) close_master(sock);
        masters_.clear();
        if (watch_pid_ > 0) {
            // Ours and not yet waited for, so the pid cannot be someone else's.
            ::kill(watch_pid_, SIGKILL);
            close_fd(watch_fd_);
            while (::waitpid(watch_pid_, nullptr, 0) < 0 && errno == EINTR) {
            }
            watch_pid_ = -1;
        }
        close_fd(watch_fd_);
        if (!dir_.empty()) {
            // Only what ssh may have left: sockets and their temporary names.
            if (DIR *d = ::opendir(dir_.c_str())) {
                while (struct dirent *e = ::readdir(d)) {
                    std::string name = e->d_name;
                    if (name != "." && name != "..") ::unlink((dir_ + "/" + name).c_str());
                }
                ::closedir(d);
            }
            ::rmdir(dir_.c_str());
            dir_.clear();
        }
    }

    std::mutex mu_;
    int leases_ = 0;
    std::string dir_;
    int next_ = 0;
    pid_t watch_pid_ = -1;
    int watch_fd_ = -1;
    std::map<std::string, std::string> masters_; // destination -> control socket
    std::map<std::string, Pending> pending_;     // destination -> master being started
};

class SshAccess : public NodeAccess {
public:
    explicit SshAccess(const Node &n) : node_(n) {}

    ExecResult run(const std::vector<std::string> &argv, double timeout_seconds) override {
        return run_ssh(argv, timeout_seconds, kOutputCap).r;
    }

    std::optional<std::string> read_file(const std::string &path, uint64_t offset, uint64_t len,
                                         double timeout_seconds) override {
        if (len > kOutputCap)
            throw Error(PGFO_ERR_USAGE, "cannot read more than 16 MiB at once over ssh (" + path + ")");
        std::vector<std::string> cmd = {"sh", "-c", kReadScript, "pgfailover", path, std::to_string(offset),
                                        std::to_string(len)};
        RunOutcome o = run_ssh(cmd, timeout_seconds, kOutputCap);
        const ExecResult &r = o.r;
        if (r.timed_out)
            throw Error(PGFO_ERR_EXEC, "reading " + path + " on " + describe() + " timed out after " +
                                           secs(timeout_seconds));
        if (r.exit_code == 3) return std::nullopt;
        if (r.exit_code != 0)
            throw Error(PGFO_ERR_EXEC, "cannot read " + path + " on " + describe() + ": " + failure(r));
        if (o.out_truncated)
            throw Error(PGFO_ERR_EXEC, "cannot read " + path + " on " + describe() + ": larger than 16 MiB");
        return r.out;
    }

    PidFileStatus postmaster_pid(const std::string &data_directory, double timeout_seconds) override {
        std::vector<std::string> cmd = {"sh", "-c", kPidScript, "pgfailover", data_directory};
        RunOutcome o = run_ssh(cmd, timeout_seconds, 1 << 20);
        const ExecResult &r = o.r;
        if (r.timed_out)
            throw Error(PGFO_ERR_EXEC, "checking postmaster.pid on " + describe() + " timed out after " +
                                           secs(timeout_seconds));
        if (r.exit_code == 4 || r.exit_code == 5)
            throw Error(PGFO_ERR_STATE, describe() + ": " + trim(r.err));
        if (r.exit_code != 0)
            throw Error(PGFO_ERR_EXEC, "cannot check " + data_directory + "/postmaster.pid on " + describe() +
                                           ": " + failure(r));
        // The last line is ours (a chatty shell start-up file may print before it).
        std::string out = trim(r.out);
        size_t nl = out.rfind('\n');
        std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
        PidFileStatus s;
        if (parse_pid_answer(line, s)) return s;
        throw Error(PGFO_ERR_EXEC, "unexpected answer checking postmaster.pid on " + describe() + ": '" +
                                       line.substr(0, 200) + "'");
    }

    ShutdownProbe probe_shutdown(const std::string &data_directory, double timeout_seconds) override {
        std::vector<std::string> cmd = {"sh", "-c", kProbeScript, "pgfailover", data_directory, kPidScript};
        RunOutcome o = run_ssh(cmd, timeout_seconds, 1 << 20);
        const ExecResult &r = o.r;
        if (r.timed_out)
            throw Error(PGFO_ERR_EXEC, "probing " + data_directory + " on " + describe() + " timed out after " +
                                           secs(timeout_seconds));
        if (r.exit_code == 4 || r.exit_code == 5)
            throw Error(PGFO_ERR_STATE, describe() + ": " + trim(r.err));
        if (r.exit_code != 0 || o.out_truncated)
            throw Error(PGFO_ERR_EXEC, "cannot probe " + data_directory + " on " + describe() + ": " + failure(r));
        // Our marker starts a line; a chatty shell start-up file may print before it.
        size_t at = r.out.compare(0, std::strlen(kProbeMarker), kProbeMarker) == 0
                        ? 0
                        : r.out.find(std::string("\n") + kProbeMarker);
        if (at != std::string::npos && at > 0) ++at;
        size_t nl = at == std::string::npos ? at : r.out.find('\n', at);
        size_t nl2 = nl == std::string::npos ? nl : r.out.find('\n', nl + 1);
        ShutdownProbe p;
        std::string line = nl == std::string::npos ? std::string()
                                                   : r.out.substr(at + std::strlen(kProbeMarker),
                                                                  nl - at - std::strlen(kProbeMarker));
        std::string what = nl2 == std::string::npos ? std::string() : r.out.substr(nl + 1, nl2 - nl - 1);
        if (!parse_pid_answer(line, p.pid) || (what != "CONTROL" && what != "NOCONTROL"))
            throw Error(PGFO_ERR_EXEC, "unexpected answer probing " + data_directory + " on " + describe() +
                                           ": '" + trim(r.out.substr(0, 200)) + "'");
        if (what == "CONTROL") p.pg_control = r.out.substr(nl2 + 1);
        return p;
    }

    std::string describe() const override {
        return "ssh " + (node_.ssh_user.empty() ? std::string() : node_.ssh_user + "@") + node_.host + ":" +
               std::to_string(node_.ssh_port);
    }

private:
    static std::string secs(double s) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g s", s);
        return buf;
    }

    static std::string failure(const ExecResult &r) {
        std::string e = trim(r.err);
        std::string s = r.term_signal ? "killed by signal " + std::to_string(r.term_signal)
                                      : "exit code " + std::to_string(r.exit_code);
        return e.empty() ? s : s + ": " + e;
    }

    // ssh's own failures (cannot start, exit 255: cannot connect or
    // authenticate) are errors; the remote command's exit status is returned.
    // Inside an SshSession the command goes through the node's master.
    RunOutcome run_ssh(const std::vector<std::string> &remote, double timeout_seconds, size_t cap) {
        RemoteCost &cost = t_costs[node_.id];
        Stopwatch sw;
        struct Count {
            RemoteCost &c;
            Stopwatch &sw;
            ~Count() {
                ++c.calls;
                c.seconds += sw.seconds();
            }
        } count{cost, sw};
        const std::string sock = Masters::get().socket_for(node_, timeout_seconds, cost, describe());
        if (sock.empty()) ++cost.connections;
        RunOutcome o = run_impl(ssh_argv(node_, remote, timeout_seconds, sock), timeout_seconds, cap);
        if (o.r.start_failed) throw Error(PGFO_ERR_EXEC, describe() + ": " + o.r.err);
        if (!sock.empty() && (o.r.exit_code == 255 || o.r.timed_out)) Masters::get().drop(sock);
        if (o.r.exit_code == 255)
            throw Error(PGFO_ERR_EXEC, describe() + ": ssh failed (exit 255: cannot connect or authenticate)" +
                                           (trim(o.r.err).empty() ? std::string() : ": " + trim(o.r.err)));
        return o;
    }

    Node node_;
};

} // namespace

ExecResult run_local(const std::vector<std::string> &argv, double timeout_seconds) {
    RunOutcome o = run_impl(argv, timeout_seconds, kOutputCap);
    if (o.out_truncated || o.err_truncated) {
        if (!o.r.err.empty() && o.r.err.back() != '\n') o.r.err += '\n';
        o.r.err += std::string("[") + (o.out_truncated ? "standard output" : "") +
                   (o.out_truncated && o.err_truncated ? " and " : "") +
                   (o.err_truncated ? "standard error" : "") + " truncated at 16 MiB]";
    }
    return o.r;
}

std::string shell_quote(const std::string &word) {
    if (word.find('\0') != std::string::npos)
        throw Error(PGFO_ERR_USAGE, "cannot quote a word containing a NUL byte for the shell");
    if (!word.empty()) {
        bool plain = true;
        for (unsigned char c : word) {
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.' || c == '/' || c == ',' || c == ':' || c == '@' || c == '+' || c == '%')) {
                plain = false;
                break;
            }
        }
        if (plain) return word;
    }
    std::string q = "'";
    for (char c : word) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

std::string shell_join(const std::vector<std::string> &argv) {
    std::string s;
    for (const auto &w : argv) {
        if (!s.empty()) s += ' ';
        s += shell_quote(w);
    }
    return s;
}

namespace {

// The options shared by masters and clients: checked destination, BatchMode,
// ConnectTimeout from the timeout (at most 10 s), keep-alives.
std::vector<std::string> ssh_common(const Node &node, double timeout_seconds) {
    const std::string who = "node " + std::to_string(node.id) + ": ";
    if (node.host.empty() || node.host[0] == '-')
        throw Error(PGFO_ERR_CONFIG, who + "host '" + node.host + "' cannot be used with ssh");
    if (!node.ssh_user.empty() &&
        (node.ssh_user[0] == '-' || node.ssh_user.find('@') != std::string::npos))
        throw Error(PGFO_ERR_CONFIG, who + "ssh_user '" + node.ssh_user + "' cannot be used with ssh");
    // pgfailover shares connections itself, through a socket only it can
    // reach: ssh_options must not point ssh at another one.
    for (const auto &w : node.ssh_options) {
        std::string l;
        for (char c : w) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        bool control = l.compare(0, 7, "control") == 0 || (l[0] == '-' && l.find("ocontrol") != std::string::npos);
        if (!control && w.size() > 1 && w[0] == '-' && w[1] != '-') {
            for (size_t i = 1; i < w.size(); ++i) {
                if (w[i] == 'M' || w[i] == 'S') control = true;
                if (std::strchr("BbcDEeFIiJLlmOoPpQRSWw", w[i])) break; // the rest is that flag's argument
            }
        }
        if (control)
            throw Error(PGFO_ERR_CONFIG, who + "ssh_options '" + w +
                                             "' sets ssh connection sharing (-M, -S, ControlMaster, ControlPath, "
                                             "ControlPersist), which pgfailover manages itself");
    }
    double t = std::isnan(timeout_seconds) ? 10 : std::min(std::max(timeout_seconds, 0.0), 10.0);
    long connect = std::max(1L, static_cast<long>(std::ceil(t)));
    return {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=" + std::to_string(connect),
            "-o", "ServerAliveInterval=5"};
}

void ssh_destination(const Node &node, std::vector<std::string> &a) {
    a.push_back("-p");
    a.push_back(std::to_string(node.ssh_port));
    a.insert(a.end(), node.ssh_options.begin(), node.ssh_options.end());
    a.push_back(node.ssh_user.empty() ? node.host : node.ssh_user + "@" + node.host);
}

} // namespace

std::vector<std::string> ssh_argv(const Node &node, const std::vector<std::string> &remote_argv,
                                  double timeout_seconds, const std::string &control_path) {
    std::vector<std::string> a = ssh_common(node, timeout_seconds);
    if (!control_path.empty())
        a.insert(a.end(), {"-o", "ControlMaster=no", "-o", "ControlPath=" + control_path});
    ssh_destination(node, a);
    a.push_back("--");
    a.push_back(shell_join(remote_argv));
    return a;
}

std::vector<std::string> ssh_master_argv(const Node &node, const std::string &control_path,
                                         double timeout_seconds) {
    if (!plain_path(control_path))
        throw Error(PGFO_ERR_USAGE, "unusable ssh control path '" + control_path + "'");
    std::vector<std::string> a = ssh_common(node, timeout_seconds);
    a.insert(a.end(), {"-o", "ControlMaster=yes", "-o", "ControlPath=" + control_path, "-o",
                       "ControlPersist=" + std::to_string(kSshPersistSeconds), "-N"});
    ssh_destination(node, a);
    return a;
}

void ssh_prewarm(const Node &node, double timeout_seconds) {
    if (node.access != Access::Ssh) return;
    try {
        Masters::get().prewarm(node, timeout_seconds, t_costs[node.id], make_node_access(node)->describe());
    } catch (const Error &) {
        // an unusable node: its first call says why
    }
}

SshSession::SshSession() { Masters::get().acquire(); }
SshSession::~SshSession() { Masters::get().release(); }
std::string ssh_control_directory() { return Masters::get().directory(); }

RemoteCosts remote_costs() { return t_costs; }

RemoteCosts remote_costs_since(const RemoteCosts &before) {
    RemoteCosts d;
    for (const auto &[id, now] : t_costs) {
        RemoteCost c = now;
        auto it = before.find(id);
        if (it != before.end()) {
            c.connections -= it->second.connections;
            c.calls -= it->second.calls;
            c.seconds -= it->second.seconds;
            c.connect_seconds -= it->second.connect_seconds;
        }
        if (c.connections != 0 || c.calls != 0) d[id] = c;
    }
    return d;
}

std::unique_ptr<NodeAccess> make_node_access(const Node &node) {
    if (node.access == Access::Ssh) return std::make_unique<SshAccess>(node);
    return std::make_unique<LocalAccess>();
}

void NodeAccess::write_file(const std::string &path, const std::string &content, double timeout_seconds) {
    write_files({{path, content}}, timeout_seconds);
}

void NodeAccess::write_files(const std::vector<std::pair<std::string, std::string>> &files,
                             double timeout_seconds) {
    if (files.empty()) return;
    // $1 $2, $3 $4, ...: path and content pairs; data only ever arrives as arguments.
    static const char *kScript = "umask 077 || exit 1\n"
                                 "while test $# -gt 1; do\n"
                                 "  printf '%s' \"$2\" > \"$1.pgfailover-new\" && mv -f -- \"$1.pgfailover-new\" \"$1\" || exit 1\n"
                                 "  shift 2\n"
                                 "done\n";
    std::vector<std::string> argv = {"sh", "-c", kScript, "pgfailover-write"};
    std::string paths;
    for (const auto &[path, content] : files) {
        argv.push_back(path);
        argv.push_back(content);
        paths += (paths.empty() ? "" : ", ") + path;
    }
    ExecResult r = run(argv, timeout_seconds);
    if (!r.ok()) {
        std::string err = trim(r.err);
        throw Error(PGFO_ERR_EXEC, describe() + ": cannot write " + paths + ": " +
                                       (r.timed_out ? std::string("timed out") : err.empty() ? "exit code " + std::to_string(r.exit_code) : err));
    }
}

std::vector<std::string> NodeAccess::missing_programs(const std::string &pg_ctl, double timeout_seconds) {
    // One line per missing piece, then a line saying the script ran to its end.
    static const char *kScript = R"SH(LC_ALL=C; export LC_ALL
miss() { printf 'pgfailover-missing %s\n' "$*"; }
for c in cat dirname mv printf; do
  command -v "$c" >/dev/null 2>&1 || miss "$c (not found on PATH)"
done
o=$(printf abcdef | dd bs=65536 iflag=skip_bytes,count_bytes skip=1 count=3 2>/dev/null)
if test "$o" != bcd; then
  o=$(printf abcdef | tail -c +2 2>/dev/null | head -c 3 2>/dev/null)
  test "$o" = bcd || miss "dd with iflag=skip_bytes,count_bytes (GNU dd), or tail -c and head -c (reads at an offset)"
fi
kill -0 $$ 2>/dev/null || miss "kill -0 (the shell cannot tell whether a process is alive)"
v=$("$1" --version 2>&1) || miss "$1 (cannot run it: $(printf '%s' "$v" | head -n 1))"
echo pgfailover-checked
)SH";
    ExecResult r = run({"sh", "-c", kScript, "pgfailover-check", pg_ctl}, timeout_seconds);
    std::vector<std::string> missing;
    if (r.start_failed || (!r.timed_out && (r.exit_code == 126 || r.exit_code == 127) &&
                           r.out.find("pgfailover-checked") == std::string::npos)) {
        missing.push_back("sh (cannot run sh -c: " + trim(r.err) + ")");
        return missing;
    }
    if (!r.ok() || r.out.find("pgfailover-checked") == std::string::npos)
        throw Error(PGFO_ERR_EXEC, describe() + ": cannot check the programs pgfailover runs: " +
                                       (r.timed_out ? std::string("timed out") : "exit code " + std::to_string(r.exit_code) +
                                                                                 (trim(r.err).empty() ? std::string() : ": " + trim(r.err))));
    const std::string tag = "pgfailover-missing ";
    size_t at = 0;
    while ((at = r.out.find(tag, at)) != std::string::npos) {
        size_t nl = r.out.find('\n', at);
        missing.push_back(r.out.substr(at + tag.size(), nl == std::string::npos ? std::string::npos : nl - at - tag.size()));
        at = nl == std::string::npos ? r.out.size() : nl;
    }
    return missing;
}

} // namespace pgfo
