// Reading backend_* settings from pgpool.conf. The format is PostgreSQL's
// GUC file format: `name = value` or `name value`, values optionally in
// single quotes ('' or \' for a quote inside), '#' starts a comment outside
// quotes. Only the four backend keys pgfailover needs are parsed strictly;
// every other line is skipped without a look, so a pgpool.conf that pgpool
// accepts is never rejected for keys pgfailover does not use.
#include "config/pgpool_conf.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <unistd.h>

#include "core/error.h"
#include "core/text.h"

namespace pgfo {
namespace {

constexpr size_t kMaxFileSize = 16u << 20; // a pgpool.conf is a few dozen KiB


std::string show(const std::string &v) { return show_value(v); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// A value for messages: control characters and other unprintable bytes as \xNN.

bool has_control(const std::string &v) {
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

enum class Field { Host, Port, DataDir, AppName };

struct KeyMatch {
    Field field;
    std::string digits;
};

// "backend_hostname12" -> {Host, "12"}; nullopt-like false for anything else.
bool match_key(const std::string &lower, KeyMatch &m) {
    static const struct {
        const char *prefix;
        Field field;
    } keys[] = {{"backend_hostname", Field::Host},
                {"backend_port", Field::Port},
                {"backend_data_directory", Field::DataDir},
                {"backend_application_name", Field::AppName}};
    for (const auto &k : keys) {
        size_t n = std::strlen(k.prefix);
        if (lower.size() > n && lower.compare(0, n, k.prefix) == 0) {
            std::string rest = lower.substr(n);
            bool digits = true;
            for (char c : rest)
                if (c < '0' || c > '9') digits = false;
            if (!digits) continue; // e.g. backend_hostname_foo: not ours
            m.field = k.field;
            m.digits = rest;
            return true;
        }
    }
    return false;
}

// One `name = value` line at a time, for the keys `want` accepts (by their
// lower-case name): `on(key, lower, value, lineno, fail)`. The value is
// unquoted; a malformed line of a wanted key throws through `fail`.
using Fail = std::function<void(const std::string &)>;

void scan_settings(const std::string &path, const std::string &text,
                   const std::function<bool(const std::string &)> &want,
                   const std::function<void(const std::string &, const std::string &, const std::string &, int,
                                            const Fail &)> &on) {
    size_t pos = 0;
    int lineno = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        ++lineno;

        size_t i = 0;
        while (i < line.size() && is_space(line[i])) ++i;
        if (i == line.size() || line[i] == '#') continue;

        size_t key_start = i;
        while (i < line.size() && !is_space(line[i]) && line[i] != '=' && line[i] != '#') ++i;
        std::string key = line.substr(key_start, i - key_start);
        std::string lower = key;
        for (char &c : lower)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (!want(lower)) continue;

        const std::string where = path + ":" + std::to_string(lineno) + ": " + key + ": ";
        Fail fail = [&](const std::string &what) { throw Error(PGFO_ERR_CONFIG, where + what); };

        while (i < line.size() && is_space(line[i])) ++i;
        if (i < line.size() && line[i] == '=') ++i;
        while (i < line.size() && is_space(line[i])) ++i;
        if (i == line.size() || line[i] == '#') fail("missing value");

        std::string value;
        if (line[i] == '\'') {
            ++i;
            bool closed = false;
            while (i < line.size()) {
                char c = line[i];
                if (c == '\'') {
                    if (i + 1 < line.size() && line[i + 1] == '\'') {
                        value += '\'';
                        i += 2;
                        continue;
                    }
                    ++i;
                    closed = true;
                    break;
                }
                if (c == '\\' && i + 1 < line.size()) {
                    char e = line[i + 1];
                    i += 2;
                    switch (e) {
                    case 'b': value += '\b'; break;
                    case 'f': value += '\f'; break;
                    case 'n': value += '\n'; break;
                    case 'r': value += '\r'; break;
                    case 't': value += '\t'; break;
                    default:
                        if (e >= '0' && e <= '7') {
                            int v = e - '0';
                            for (int k = 0; k < 2 && i < line.size() && line[i] >= '0' && line[i] <= '7'; ++k)
                                v = v * 8 + (line[i++] - '0');
                            value += static_cast<char>(v & 0xff);
                        } else {
                            value += e; // \' \\ and any other escaped character
                        }
                    }
                    continue;
                }
                value += c;
                ++i;
            }
            if (!closed) fail("unterminated quoted string");
        } else {
            size_t v0 = i;
            while (i < line.size() && !is_space(line[i]) && line[i] != '#') ++i;
            value = line.substr(v0, i - v0);
        }
        while (i < line.size() && is_space(line[i])) ++i;
        if (i < line.size() && line[i] != '#')
            fail("unexpected text after the value: " + show(line.substr(i)));

        if (has_control(value)) fail(show(value) + " contains a control character (not allowed)");
        on(key, lower, value, lineno, fail);
    }
}

} // namespace

std::map<int, PgpoolBackend> read_pgpool_backends(const std::string &path) {
    const std::string text = read_small_file(path, kMaxFileSize, "pgpool.conf");
    std::map<int, PgpoolBackend> backends;
    KeyMatch m;
    scan_settings(
        path, text, [&](const std::string &lower) { return match_key(lower, m); },
        [&](const std::string &, const std::string &, const std::string &value, int lineno, const Fail &fail) {
            if (m.digits.size() > 3 || (m.digits.size() > 1 && m.digits[0] == '0') || std::stoi(m.digits) > 127)
                fail("backend number '" + m.digits + "' is not allowed (allowed: 0..127, no leading zeros)");
            const int id = std::stoi(m.digits);
            PgpoolBackend &b = backends[id];
            if (b.id < 0) {
                b.id = id;
                b.line = lineno;
            }
            // Later lines win, as in pgpool itself.
            switch (m.field) {
            case Field::Host:
                b.host = value;
                b.line = lineno;
                break;
            case Field::Port: {
                bool digits = !value.empty() && value.size() <= 5;
                for (char c : value)
                    if (c < '0' || c > '9') digits = false;
                long p = digits ? std::stol(value) : 0;
                if (!digits || p < 1 || p > 65535)
                    fail(show(value) + " is not a port number (allowed: 1..65535)");
                b.port = static_cast<int>(p);
                break;
            }
            case Field::DataDir: b.data_directory = value; break;
            case Field::AppName: b.application_name = value; break;
            }
        });
    return backends;
}

std::map<std::string, PgpoolSetting> read_pgpool_settings(const std::string &path,
                                                          const std::vector<std::string> &keys) {
    const std::string text = read_small_file(path, kMaxFileSize, "pgpool.conf");
    std::map<std::string, PgpoolSetting> out;
    scan_settings(
        path, text,
        [&](const std::string &lower) {
            for (const auto &k : keys)
                if (k == lower) return true;
            return false;
        },
        [&](const std::string &, const std::string &lower, const std::string &value, int lineno, const Fail &) {
            out[lower] = {value, lineno}; // later lines win
        });
    return out;
}

} // namespace pgfo
