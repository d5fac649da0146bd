#include "core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/context.h"
#include "core/error.h"

namespace pgfo {

FileLock::FileLock(const std::string &path, double timeout, double poll_interval) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0)
        throw Error(PGFO_ERR_EXEC, "cannot open lock file " + path + ": " + std::strerror(errno));
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
