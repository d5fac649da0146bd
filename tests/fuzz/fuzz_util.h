// Helpers shared by the libFuzzer targets.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pgfo_fuzz {

// An anonymous in-memory file holding `data`, for parsers that take a path:
// /proc/self/fd/N of a memfd. Closed by the destructor.
class MemFile {
public:
    MemFile(const uint8_t *data, size_t size) {
        fd_ = ::memfd_create("pgfo-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) die("memfd_create");
        size_t done = 0;
        while (done < size) {
            ssize_t n = ::write(fd_, data + done, size - done);
            if (n <= 0) die("write to memfd");
            done += static_cast<size_t>(n);
        }
        // Mode 0600: load_config refuses a file every user can write to.
        if (::fchmod(fd_, 0600) != 0) die("fchmod");
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    MemFile(const MemFile &) = delete;
    MemFile &operator=(const MemFile &) = delete;
    const std::string &path() const { return path_; }

private:
    [[noreturn]] static void die(const char *what) {
        std::perror(what);
        std::abort();
    }
    int fd_ = -1;
    std::string path_;
};

// A property the target checks: a violation is a finding, like a crash.
#define PGFO_FUZZ_ASSERT(cond)                                                             \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__, \
                         #cond);                                                           \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

} // namespace pgfo_fuzz
