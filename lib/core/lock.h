// The cluster lock: one pgfailover run acting on a cluster at a time on this
// host (flock on a file). Runs on other hosts meet at the candidate, where
// the failover also holds an advisory lock (steps/failover.cpp).
#pragma once

#include <string>

namespace pgfo {

class FileLock {
public:
    // Wait up to timeout seconds for an exclusive flock on path (created 0600
    // if missing). Throws pgfo::Error(PGFO_ERR_LOCKED) naming the holder's PID
    // if it stays held, PGFO_ERR_EXEC if the file cannot be opened.
    FileLock(const std::string &path, double timeout, double poll_interval);
    ~FileLock();
    FileLock(const FileLock &) = delete;
    FileLock &operator=(const FileLock &) = delete;

private:
    int fd_ = -1;
};

} // namespace pgfo
