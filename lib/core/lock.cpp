#include "core/lock.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/text.h"

namespace pgfo {
namespace {

// "nobody (uid 65534)", or "uid 1234" for a uid without a name.
std::string user_text(uid_t uid) {
    std::vector<char> buf(16384);
    struct passwd pw {}, *res = nullptr;
    std::string id = "uid " + std::to_string(static_cast<unsigned long>(uid));
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) == 0 && res && res->pw_name)
        return std::string(res->pw_name) + " (" + id + ")";
    return id;
}

std::string mode_text(mode_t mode) {
    char m[8];
    std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode & 07777));
    return m;
}

[[noreturn]] void refuse(const std::string &problem) { throw Error(PGFO_ERR_LOCKED, problem); }

} // namespace

std::string lock_directory_problem(const std::string &dir, const struct stat &st, uid_t me) {
    const std::string allowed = "; allowed: a directory owned by " + user_text(me) +
                                " (or root) that only its owner can write, e.g. mode 0700";
    if (!S_ISDIR(st.st_mode)) return "lock directory " + dir + " is not a directory";
    if (st.st_uid != me && st.st_uid != 0)
        return "lock directory " + dir + " is owned by " + user_text(st.st_uid) + ": that user could create or "
               "replace the lock file" + allowed;
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return "lock directory " + dir + " is writable by other users (mode " + mode_text(st.st_mode) +
               "): any of them could create the lock file first and hold it" + allowed;
    return {};
}

std::string lock_file_problem(const std::string &path, const struct stat &st, uid_t me) {
    if (!S_ISREG(st.st_mode)) return "lock file " + path + " is not a regular file (remove it)";
    if (st.st_uid != me)
        return "lock file " + path + " is owned by " + user_text(st.st_uid) + ", not by " + user_text(me) +
               ": that user can hold the cluster lock (remove the file, or set [general] lock_file elsewhere)";
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return "lock file " + path + " is open to other users (mode " + mode_text(st.st_mode) +
               "): flock needs only an open file, so any of them could hold the cluster lock (chmod 0600 " +
               path + ")";
    return {};
}

FileLock::FileLock(const std::string &path, double timeout, double poll_interval) {
    const uid_t me = ::geteuid();
    const std::string dir = parent_directory(path);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw Error(PGFO_ERR_EXEC, "cannot create lock directory " + dir + ": " + std::strerror(errno) +
                                       " (create it owned by " + user_text(me) +
                                       " with mode 0700, or set [general] lock_file)");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        throw Error(PGFO_ERR_EXEC, "cannot use lock directory " + dir + ": " + std::strerror(errno));
    std::string problem = lock_directory_problem(dir, st, me);
    if (!problem.empty()) refuse(problem);
    // Someone else's file is refused before it is opened (opening it may
    // fail with a less telling EACCES, or succeed and wait on its holder).
    if (::lstat(path.c_str(), &st) == 0 && !(problem = lock_file_problem(path, st, me)).empty()) refuse(problem);

    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd_ < 0)
        throw Error(PGFO_ERR_EXEC, "cannot open lock file " + path + ": " + std::strerror(errno));
    if (::fstat(fd_, &st) != 0 || !(problem = lock_file_problem(path, st, me)).empty()) {
        ::close(fd_);
        fd_ = -1;
        refuse(problem.empty() ? "cannot check lock file " + path : problem);
    }
    Stopwatch sw;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            ::close(fd_);
            fd_ = -1;
            throw Error(PGFO_ERR_EXEC, "cannot lock " + path + ": " + std::strerror(e));
        }
        if (sw.seconds() >= timeout) {
            char buf[32] = {0};
            ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
            std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
            while (!holder.empty() && (holder.back() == '\n')) holder.pop_back();
            ::close(fd_);
            fd_ = -1;
            throw Error(PGFO_ERR_LOCKED, "another pgfailover run (pid " + holder + ") holds " + path +
                                             " after waiting " + std::to_string(static_cast<int>(timeout)) + " s");
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(poll_interval > 0.01 ? poll_interval : 0.01));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
        ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
        (void)n;
    }
}

FileLock::~FileLock() {
    if (fd_ >= 0) ::close(fd_); // closing releases the flock
}

} // namespace pgfo
