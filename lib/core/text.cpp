#include "core/text.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace pgfo {

namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

void append_shown(std::string &out, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    if (is_control(c)) {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
    } else {
        out += static_cast<char>(c);
    }
}

} // namespace

std::string show_value(const std::string &v, size_t max_chars) {
    std::string s = "'";
    size_t n = 0;
    for (unsigned char c : v) {
        if (max_chars && ++n > max_chars) {
            s += "...";
            break;
        }
        append_shown(s, c);
    }
    return s + "'";
}

bool has_controls(std::string_view v) {
    for (unsigned char c : v)
        if (is_control(c)) return true;
    return false;
}

std::string escape_controls(std::string_view v) {
    std::string s;
    s.reserve(v.size() + 16);
    for (unsigned char c : v) append_shown(s, c);
    return s;
}

std::string join(const std::vector<std::string> &items, const char *sep) {
    std::string s;
    for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
    return s;
}

std::string parent_directory(const std::string &path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string read_small_file(const std::string &path, size_t max_bytes, const std::string &what) {
    auto fail = [&](const std::string &why) {
        return Error(PGFO_ERR_CONFIG, "cannot read " + what + " " + path + ": " + why);
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fail(std::strerror(errno));
    std::string data;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            throw fail(std::strerror(e));
        }
        if (n == 0) break;
        data.append(buf, static_cast<size_t>(n));
        if (data.size() > max_bytes) {
            ::close(fd);
            throw fail("larger than " + std::to_string(max_bytes >> 20) + " MiB");
        }
    }
    ::close(fd);
    return data;
}

} // namespace pgfo
