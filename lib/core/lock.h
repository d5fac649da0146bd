// The cluster lock: one pgfailover run acting on a cluster at a time on this
// host (flock on a file). Runs on other hosts meet at the candidate, where
// the failover also holds an advisory lock (steps/failover.cpp).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

namespace pgfo {

class FileLock {
public:
    // Wait up to timeout seconds for an exclusive flock on path. Its
    // directory is created (mode 0700) if missing, the file (mode 0600) too.
    // Throws pgfo::Error(PGFO_ERR_LOCKED) naming the holder's PID if it stays
    // held, and at once, naming the path and its owner, when the file or its
    // directory is not safe from other users (lock_file_problem,
    // lock_directory_problem); PGFO_ERR_EXEC if they cannot be created or
    // opened.
    FileLock(const std::string &path, double timeout, double poll_interval);
    ~FileLock();
    FileLock(const FileLock &) = delete;
    FileLock &operator=(const FileLock &) = delete;

private:
    int fd_ = -1;
};

// Why another user could take or hold the lock through `dir` (its stat), ""
// when no one can: it must be a directory owned by `me` or root that no one
// else can write (else they could create the lock file first).
std::string lock_directory_problem(const std::string &dir, const struct stat &st, uid_t me);

// Why another user could hold the lock through the file `path` (its stat),
// "" when no one can: a regular file owned by `me` that no one else can open
// (flock needs only an open file, read-only will do).
std::string lock_file_problem(const std::string &path, const struct stat &st, uid_t me);

} // namespace pgfo
