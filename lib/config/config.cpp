// pgfailover.conf: read with inih, checked strictly. A typo must never pass
// silently, so unknown sections and keys, duplicates and bad values are
// errors that name the file, the line, the section and the key.
//
// inih details that matter here (Debian builds inih without
// INI_HANDLER_LINENO, and its options are process-wide globals we leave
// alone):
//  - We feed inih through our own reader, which counts lines; the handler
//    reads the current line number from it.
//  - The reader strips leading white space, so inih never sees an indented
//    line and never applies its multi-line continuation rule (an indented
//    "port = 5433" would otherwise be appended to the previous key's value).
//  - inih's line buffer holds 200 bytes; the reader rejects longer lines
//    instead of letting inih split them silently.
//  - Inline comments start with " ;" (inih's default); '#' only at the start
//    of a line. A value with " #" in it gets a hint in error messages.
#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config/keys.h"
#include "config/pgpool_conf.h"
#include "config/sync_names.h"
#include "config/webhook_values.h"
#include "core/error.h"
#include "core/text.h"

namespace pgfo {
namespace {

constexpr size_t kMaxConfigSize = 1u << 20;

// ---------------------------------------------------------------- messages


std::string show(const std::string &v) { return show_value(v, 200); }

std::string prefix(const std::string &where) { return where.empty() ? std::string() : where + ": "; }

[[noreturn]] void fail(const std::string &where, const std::string &section, const std::string &key,
                       const std::string &what) {
    throw Error(PGFO_ERR_CONFIG, prefix(where) + "[" + section + "] " + key + ": " + what);
}

// Empty when the section is known, else why not.
std::string section_problem(const std::string &section) {
    Section kind;
    if (section_of(section, kind)) return {};
    if (node_section_id(section) == -2)
        return "bad node section [" + section + "]: N must be a pgpool backend id 0..127 (no leading zeros)";
    if (webhook_section_name(section) == "?")
        return "bad webhook section [" + section + "]: NAME must be 1..63 of A-Z a-z 0-9 _ -";
    return "unknown section [" + section + "] (known: " + known_sections() + ")";
}

// ---------------------------------------------------------------- values

bool has_control(const std::string &v, bool allow_tab) {
    for (unsigned char c : v) {
        if (c == '\t' && allow_tab) continue;
        if (c < 0x20 || c == 0x7f) return true;
    }
    return false;
}

// Plain decimal seconds: "30", "0.5", ".5", "2.". No sign, exponent, unit,
// nan or inf.
bool parse_decimal(const std::string &v, double &out) {
    if (v.empty()) return false;
    size_t digits = 0, dots = 0;
    for (char c : v) {
        if (c >= '0' && c <= '9')
            ++digits;
        else if (c == '.')
            ++dots;
        else
            return false;
    }
    if (digits == 0 || dots > 1) return false;
    auto r = std::from_chars(v.data(), v.data() + v.size(), out, std::chars_format::fixed);
    return r.ec == std::errc() && r.ptr == v.data() + v.size() && std::isfinite(out);
}

// A replication lag limit: a size ("16MB", "512kB", "1GB", "1048576" bytes;
// units of 1024 as PostgreSQL's), a time ("5s", "500ms", "2min") or "off".
// Sets exactly one of bytes / secs (the other -1); both -1 for off.
bool parse_lag_limit(const std::string &v, long long &bytes, double &secs) {
    bytes = -1;
    secs = -1;
    if (v == "off") return true;
    size_t i = 0;
    while (i < v.size() && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.')) ++i;
    double n = 0;
    if (!parse_decimal(v.substr(0, i), n)) return false;
    const std::string unit = v.substr(i);
    static const std::pair<const char *, double> sizes[] = {{"", 1}, {"B", 1}, {"kB", 1024}, {"MB", 1024.0 * 1024},
                                                            {"GB", 1024.0 * 1024 * 1024}};
    static const std::pair<const char *, double> times[] = {{"ms", 0.001}, {"s", 1}, {"min", 60}};
    for (const auto &[u, f] : sizes)
        if (unit == u && n * f <= 1e15) {
            bytes = static_cast<long long>(n * f);
            return true;
        }
    for (const auto &[u, f] : times)
        if (unit == u && n * f <= 86400) {
            secs = n * f;
            return true;
        }
    return false;
}

std::string fmt_num(double d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
}

double seconds(const std::string &where, const std::string &sec, const std::string &key,
               const std::string &v, const KeyRange &r) {
    double d = 0;
    if (!parse_decimal(v, d))
        fail(where, sec, key, show(v) + " is not a number of seconds (allowed: " + r.text + ")");
    if (d < r.min || d > r.max)
        fail(where, sec, key, v + " is out of range (allowed: " + r.text + ")");
    return d;
}

int port(const std::string &where, const std::string &sec, const std::string &key, const std::string &v) {
    bool ok = !v.empty() && v.size() <= 5;
    for (char c : v)
        if (c < '0' || c > '9') ok = false;
    long p = ok ? std::strtol(v.c_str(), nullptr, 10) : 0;
    if (!ok || p < 1 || p > 65535) fail(where, sec, key, show(v) + " is not a port number (allowed: 1..65535)");
    return static_cast<int>(p);
}

std::string one_of(const std::string &where, const std::string &sec, const std::string &key,
                   const std::string &v, const std::vector<std::string> &allowed) {
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
        fail(where, sec, key, show(v) + " is not allowed (allowed: " + join(allowed) + ")");
    return v;
}

// An absolute path, or "" when empty_ok.
std::string abs_path(const std::string &where, const std::string &sec, const std::string &key,
                     const std::string &v, bool empty_ok) {
    if (v.empty()) {
        if (empty_ok) return v;
        fail(where, sec, key, "must not be empty (allowed: an absolute path)");
    }
    if (has_control(v, false)) fail(where, sec, key, show(v) + " contains a control character (not allowed in a path)");
    if (v[0] != '/') fail(where, sec, key, show(v) + " is not an absolute path (allowed: a path starting with /)");
    return v;
}

std::string server_path(const std::string &where, const std::string &sec, const std::string &key,
                        const std::string &v, bool empty_ok) {
    if (v.empty()) return abs_path(where, sec, key, v, empty_ok);
    std::string problem = server_path_problem(v);
    if (!problem.empty()) fail(where, sec, key, show(v) + " " + problem);
    return v;
}

std::string host_value(const std::string &where, const std::string &sec, const std::string &key,
                       const std::string &v) {
    if (v.empty()) fail(where, sec, key, "must not be empty (allowed: a host name, IP address or socket directory)");
    if (has_control(v, false))
        fail(where, sec, key, show(v) + " contains a control character (not allowed in a host)");
    if (v.find(' ') != std::string::npos)
        fail(where, sec, key, show(v) + " contains a space (allowed: a host name, IP address or socket directory)");
    if (v[0] == '-') fail(where, sec, key, show(v) + " starts with '-' (not allowed in a host)");
    // Never in a host name, IP address or socket directory; a shell (an ssh
    // ProxyCommand's %h) would act on them.
    if (v.find_first_of("`$;|&<>()'\"\\") != std::string::npos)
        fail(where, sec, key, show(v) + " contains a shell metacharacter (` $ ; | & < > ( ) ' \" \\ are not allowed in a host)");
    return v;
}

bool valid_cluster_name(const std::string &v) {
    if (v.empty() || v.size() > 63) return false;
    for (char c : v)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return false;
    return true;
}

// PostgreSQL keeps application_name to 63 bytes of printable ASCII and turns
// anything else into '?', so a name outside that would never match what the
// standby reports in pg_stat_replication.
void check_application_name(const std::string &where, const std::string &sec, const std::string &v) {
    if (v.size() > 63) fail(where, sec, "application_name", show(v) + " is longer than 63 bytes (PostgreSQL truncates it)");
    for (unsigned char c : v)
        if (c < 0x20 || c > 0x7e)
            fail(where, sec, "application_name",
                 show(v) + " contains characters PostgreSQL replaces with '?' (allowed: printable ASCII)");
}

// A PostgreSQL role name ([connection] user, [replication] user): it goes
// into primary_conninfo, inside two layers of quoting, so quotes and
// backslashes are fine; control characters can be in neither layer, and
// PostgreSQL cuts a name after 63 bytes.
void check_role_name(const std::string &where, const std::string &sec, const std::string &key,
                     const std::string &v) {
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f)
            fail(where, sec, key,
                 show(v) + " contains a control character (" + escape_controls(std::string(1, static_cast<char>(c))) +
                     "; not allowed in a role name, quotes and backslashes are)");
    if (v.size() > 63) fail(where, sec, key, show(v) + " is longer than 63 bytes (PostgreSQL cuts role names to 63 bytes)");
}

std::vector<std::string> split_ws(const std::string &v) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// ssh options under which ssh itself runs a local command through a shell or
// loads local code: whoever can edit this file could then run anything as the
// user pgfailover runs as (under pgpool: postgres), through a key that reads
// like transport settings. Matched case-insensitively anywhere in the value,
// so -oProxyCommand=..., -o ProxyCommand=..., -4oproxycommand=... all count.
// A jump host is ProxyJump (allowed); anything else belongs in that user's
// ssh_config, which the operator controls and reviews as such.
void check_ssh_options(const std::string &where, const std::string &sec, const std::string &v) {
    static const char *const kLocalCode[] = {"PermitLocalCommand", "LocalCommand",   "ProxyCommand",
                                             "KnownHostsCommand",  "PKCS11Provider", "SecurityKeyProvider"};
    std::string lower;
    for (char c : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char *opt : kLocalCode) {
        std::string o;
        for (const char *c = opt; *c; ++c) o += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
        if (lower.find(o) != std::string::npos)
            fail(where, sec, "ssh_options",
                 show(v) + " sets " + opt + ", which makes ssh run a local command or load local code "
                 "(not allowed here; use ProxyJump for a jump host, or the ssh_config of the user pgfailover runs as)");
    }
}

// [fencing] command: an absolute path, then arguments; % only in the
// placeholders %d %h %p %D %r and %%.
std::vector<std::string> fence_command(const std::string &where, const std::string &sec, const std::string &key,
                                       const std::string &v) {
    std::vector<std::string> argv = split_ws(v);
    if (argv.empty()) return argv;
    abs_path(where, sec, key, argv[0], false);
    for (const auto &a : argv)
        for (size_t i = 0; i < a.size(); ++i) {
            if (a[i] != '%') continue;
            if (i + 1 < a.size() && std::strchr("dhpDr%", a[i + 1])) {
                ++i;
                continue;
            }
            fail(where, sec, key, show(a) + " has an unknown placeholder (allowed: %d node id, %h host, %p port, "
                                            "%D data directory, %r reason, %% a literal %)");
        }
    return argv;
}

// ---------------------------------------------------------------- webhooks

// http:// or https://, a host, no white space or control characters. Messages
// show the URL with any user:password@ replaced.
void check_url(const std::string &where, const std::string &sec, const std::string &v) {
    const char *allowed = " (allowed: an http:// or https:// URL)";
    if (v.empty()) fail(where, sec, "url", "must not be empty" + std::string(allowed));
    std::string shown = show(redact_url(v));
    for (unsigned char c : v)
        if (c <= 0x20 || c == 0x7f) fail(where, sec, "url", shown + " contains white space or a control character" + allowed);
    std::string lower;
    for (char c : v.substr(0, 8)) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t skip = lower.compare(0, 7, "http://") == 0 ? 7 : lower.compare(0, 8, "https://") == 0 ? 8 : 0;
    if (skip == 0) fail(where, sec, "url", shown + " is not an http or https URL" + allowed);
    std::string authority = v.substr(skip, v.find_first_of("/?#", skip) - skip);
    size_t at = authority.rfind('@');
    std::string hostport = at == std::string::npos ? authority : authority.substr(at + 1);
    if (hostport.empty() || hostport[0] == ':') fail(where, sec, "url", shown + " has no host" + allowed);
}

// "failover.*, step.failed" -> {"failover.*", "step.failed"}
std::vector<std::string> event_filters(const std::string &where, const std::string &sec, const std::string &v) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t comma = v.find(',', start);
        std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
        if (!valid_event_filter(item))
            fail(where, sec, "events",
                 show(item) + " is not an event name or prefix (allowed: a comma list of names like "
                              "failover.succeeded or prefixes like step.*, failover.*; * for all)");
        out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// The key in `path`: a regular file only its owner can read or write,
// at most 4 KiB, trailing line breaks removed.
std::string read_secret_file(const std::string &where, const std::string &sec, const std::string &path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        fail(where, sec, "secret_file", "cannot open " + show(path) + ": " + std::strerror(e));
    }
    struct stat stbuf {};
    std::string data;
    std::string problem;
    if (::fstat(fd, &stbuf) != 0) {
        problem = std::string("cannot stat it: ") + std::strerror(errno);
    } else if (!S_ISREG(stbuf.st_mode)) {
        problem = "is not a regular file";
    } else if (stbuf.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(stbuf.st_mode & 07777));
        problem = std::string("is accessible by group or others (mode ") + mode +
                  "; allowed: a file only its owner can read, chmod 600)";
    } else {
        char buf[4097];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                problem = std::string("cannot read it: ") + std::strerror(errno);
                break;
            }
            if (n == 0) break;
            data.append(buf, static_cast<size_t>(n));
            if (data.size() > 4096) {
                problem = "is larger than 4 KiB";
                break;
            }
        }
    }
    ::close(fd);
    if (!problem.empty()) fail(where, sec, "secret_file", show(path) + " " + problem);
    while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
    if (data.empty()) fail(where, sec, "secret_file", show(path) + " is empty (allowed: a file holding the key)");
    return data;
}

// ---------------------------------------------------------------- by type

// Check `v` against the grammar of row `k` (keys.h) and return it in the
// forms its setter needs. Throws with the message for that grammar.
KeyValue parse_value(const KeySpec &k, const std::string &where, const std::string &sec, const std::string &v) {
    const std::string key = k.key;
    KeyValue out;
    out.text = v;
    switch (k.type) {
    case KeyType::Seconds:
        out.number = seconds(where, sec, key, v, k.range);
        break;
    case KeyType::Port:
        out.integer = port(where, sec, key, v);
        break;
    case KeyType::Count: {
        std::string allowed = k.range.text;
        for (const char *word : k.choices) {
            allowed += std::string(", ") + word;
            if (v == word) {
                out.integer = -1;
                return out;
            }
        }
        const size_t max_digits = std::to_string(static_cast<long long>(k.range.max)).size();
        bool ok = !v.empty() && v.size() <= max_digits && v.find_first_not_of("0123456789") == std::string::npos;
        long long n = ok ? std::strtoll(v.c_str(), nullptr, 10) : -1;
        if (!ok || n < k.range.min || n > k.range.max)
            fail(where, sec, key, show(v) + " is not a number of " + k.noun + " (allowed: " + allowed + ")");
        out.integer = n;
        break;
    }
    case KeyType::Choice:
        if (!(v.empty() && k.empty_ok)) {
            std::vector<std::string> allowed(k.choices.begin(), k.choices.end());
            one_of(where, sec, key, v, allowed);
        }
        break;
    case KeyType::Text:
        if (v.empty() && !k.empty_ok) fail(where, sec, key, "must not be empty");
        break;
    case KeyType::Path:
        abs_path(where, sec, key, v, k.empty_ok);
        break;
    case KeyType::ServerPath:
        server_path(where, sec, key, v, k.empty_ok);
        break;
    case KeyType::Host:
        host_value(where, sec, key, v);
        break;
    case KeyType::PcpHost:
        if (v.empty() || v[0] == '-') fail(where, sec, key, show(v) + " is not a host name");
        break;
    case KeyType::PcpUser:
        if (!v.empty() && v[0] == '-') fail(where, sec, key, show(v) + " is not a user name");
        break;
    case KeyType::SshUser:
        if (has_control(v, false) || v.find_first_of(" @") != std::string::npos || (!v.empty() && v[0] == '-'))
            fail(where, sec, key, show(v) + " is not a user name (no spaces, '@', control characters or leading '-')");
        break;
    case KeyType::RoleName:
        break; // checked before the control characters (apply_setting)
    case KeyType::ClusterName:
        if (!valid_cluster_name(v))
            fail(where, sec, key, show(v) + " is not a valid cluster name (allowed: 1..63 of A-Z a-z 0-9 _ . -)");
        break;
    case KeyType::AppName:
        check_application_name(where, sec, v);
        break;
    case KeyType::SshOptions:
        check_ssh_options(where, sec, v);
        out.list = split_ws(v);
        break;
    case KeyType::Command:
        out.list = fence_command(where, sec, key, v);
        break;
    case KeyType::LagLimit:
        if (!parse_lag_limit(v, out.bytes, out.secs))
            fail(where, sec, key,
                 show(v) + " is not a lag limit (allowed: a size like 16MB, 512kB, 1GB or bytes; a time "
                           "like 5s, 500ms, 2min; off)");
        break;
    case KeyType::SyncNames:
        try {
            parse_sync_names(v);
        } catch (const Error &e) {
            fail(where, sec, key, show(v) + ": " + e.what());
        }
        break;
    case KeyType::Url:
        check_url(where, sec, v);
        break;
    case KeyType::Events:
        out.list = event_filters(where, sec, v);
        break;
    case KeyType::Secret:
        // The value itself never appears in a message.
        if (v.empty()) fail(where, sec, key, "must not be empty (allowed: the HMAC key, or use secret_file)");
        break;
    case KeyType::SecretFile:
        abs_path(where, sec, key, v, false);
        out.data = read_secret_file(where, sec, v);
        break;
    }
    return out;
}

// ---------------------------------------------------------------- file reading

struct ParseState {
    std::string path;
    std::string text;
    size_t pos = 0;
    int lineno = 0;
    bool failed = false;
    int error_line = 0;
    std::string error;
    Config cfg;
    std::map<std::pair<std::string, std::string>, int> seen; // (section, key) -> line
    std::map<std::string, int> sections;                     // section -> header line
    std::string last_section_header;

    std::string where(int line) const { return path + ":" + std::to_string(line); }
    void set_error(const std::string &msg) {
        if (!failed) {
            failed = true;
            error_line = lineno;
            error = msg;
        }
    }
};

char *reader(char *buf, int num, void *stream) {
    auto *st = static_cast<ParseState *>(stream);
    if (st->failed || st->pos >= st->text.size() || num < 2) return nullptr;
    try {
        size_t nl = st->text.find('\n', st->pos);
        size_t end = nl == std::string::npos ? st->text.size() : nl;
        std::string line = st->text.substr(st->pos, end - st->pos);
        st->pos = nl == std::string::npos ? st->text.size() : nl + 1;
        ++st->lineno;

        if (st->lineno == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
        if (line.find('\0') != std::string::npos) {
            st->set_error(st->where(st->lineno) + ": line contains a NUL byte");
            return nullptr;
        }
        size_t b = line.find_first_not_of(" \t");
        line.erase(0, b == std::string::npos ? line.size() : b);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        if (line.size() > static_cast<size_t>(num - 1)) {
            st->set_error(st->where(st->lineno) + ": line is longer than " + std::to_string(num - 1) +
                          " characters");
            return nullptr;
        }
        if (!line.empty() && line[0] == '[') {
            size_t close = line.find(']');
            if (close != std::string::npos) {
                std::string sec = line.substr(1, close - 1);
                std::string problem = section_problem(sec);
                if (!problem.empty()) {
                    st->set_error(st->where(st->lineno) + ": " + problem);
                    return nullptr;
                }
                auto it = st->sections.find(sec);
                if (it != st->sections.end()) {
                    st->set_error(st->where(st->lineno) + ": duplicate section [" + sec + "] (first on line " +
                                  std::to_string(it->second) + ")");
                    return nullptr;
                }
                st->sections[sec] = st->lineno;
            }
        }
        std::memcpy(buf, line.data(), line.size());
        buf[line.size()] = '\0';
        return buf;
    } catch (const std::exception &e) {
        st->set_error(e.what());
        return nullptr;
    }
}

int handler(void *user, const char *section, const char *name, const char *value) {
    auto *st = static_cast<ParseState *>(user);
    if (st->failed) return 0;
    try {
        const std::string sec = section ? section : "";
        const std::string key = name ? name : "";
        const std::string val = value ? value : "";
        const std::string where = st->where(st->lineno);
        if (sec.empty())
            throw Error(PGFO_ERR_CONFIG, where + ": key '" + key + "' is outside a section (sections: " +
                                             known_sections() + ")");
        auto k = std::make_pair(sec, key);
        auto it = st->seen.find(k);
        if (it != st->seen.end())
            fail(where, sec, key, "duplicate key (first set on line " + std::to_string(it->second) + ")");
        st->seen[k] = st->lineno;
        int id = node_section_id(sec);
        if (id >= 0 && !st->cfg.nodes.count(id)) {
            Node n;
            n.id = id;
            auto h = st->sections.find(sec);
            n.origin = st->where(h != st->sections.end() ? h->second : st->lineno);
            st->cfg.nodes[id] = n;
        }
        std::string hook = webhook_section_name(sec);
        if (!hook.empty() && hook != "?" && !st->cfg.webhooks.count(hook)) {
            Webhook w;
            w.name = hook;
            auto h = st->sections.find(sec);
            w.origin = st->where(h != st->sections.end() ? h->second : st->lineno);
            st->cfg.webhooks[hook] = w;
        }
        apply_setting(st->cfg, sec, key, val, where);
    } catch (const std::exception &e) {
        st->set_error(e.what());
        return 0;
    }
    return 1;
}


void merge_pgpool(ParseState &st) {
    Config &cfg = st.cfg;
    std::map<int, PgpoolBackend> backends;
    try {
        backends = read_pgpool_backends(cfg.pgpool_conf);
    } catch (const Error &e) {
        auto it = st.seen.find({"general", "pgpool_conf"});
        std::string where = it != st.seen.end() ? st.where(it->second) : st.path;
        throw Error(PGFO_ERR_CONFIG, prefix(where) + "[general] pgpool_conf: " + e.what());
    }
    for (const auto &[id, b] : backends) {
        const std::string sec = "node." + std::to_string(id);
        auto explicit_key = [&](const char *key) { return st.seen.count({sec, key}) > 0; };
        auto it = cfg.nodes.find(id);
        if (it == cfg.nodes.end()) {
            Node n;
            n.id = id;
            n.origin = cfg.pgpool_conf + ":" + std::to_string(b.line);
            it = cfg.nodes.emplace(id, n).first;
        }
        Node &n = it->second;
        if (!explicit_key("host") && !b.host.empty()) n.host = b.host;
        if (!explicit_key("port") && b.port > 0) n.port = b.port;
        if (!explicit_key("data_directory") && !b.data_directory.empty()) n.data_directory = b.data_directory;
        if (!explicit_key("application_name") && !b.application_name.empty())
            n.application_name = b.application_name;
    }
}

} // namespace

// ---------------------------------------------------------------- public

std::string server_path_problem(const std::string &path) {
    if (path.empty()) return "is empty (allowed: an absolute path)";
    if (has_control(path, false)) return "contains a control character (not allowed in a path)";
    if (path[0] != '/') return "is not an absolute path (allowed: a path starting with /)";
    // pg_ctl start runs the server through /bin/sh with the data directory
    // (and its own path) in double quotes, where ` $ " \ still act.
    if (path.find_first_of("`$\"\\") != std::string::npos)
        return "contains ` $ \" or \\ (not allowed: pg_ctl passes this path through a shell)";
    return {};
}

void apply_setting(Config &cfg, const std::string &section, const std::string &key, const std::string &value,
                   const std::string &where) {
    try {
        std::string problem = section_problem(section);
        if (!problem.empty()) throw Error(PGFO_ERR_CONFIG, prefix(where) + problem);
        if (key == "password")
            fail(where, section, key,
                 "passwords are not accepted in the configuration (use passfile or ~/.pgpass)");
        Section kind = Section::General;
        section_of(section, kind);
        const KeySpec *spec = find_key(kind, key);
        if (!spec)
            fail(where, section, key,
                 "unknown key '" + key + "' in [" + section + "]; known keys: " + join(section_keys(kind)));
        if (spec->type == KeyType::RoleName) check_role_name(where, section, key, value);
        if (has_control(value, spec->type == KeyType::SshOptions))
            fail(where, section, key,
                 (spec->type == KeyType::Secret ? std::string("the value")
                  : spec->type == KeyType::Url  ? show(redact_url(value))
                                                : show(value)) +
                     " contains a control character (not allowed)");
        // A node or webhook section exists once named, even when its value is
        // refused; the value goes into a copy, so a refused one changes nothing.
        KeyTarget target{cfg};
        if (kind == Section::Webhook) {
            std::string name = webhook_section_name(section);
            Webhook &w = cfg.webhooks[name];
            if (w.name.empty()) w.name = name;
            if (w.origin.empty()) w.origin = where;
            Webhook copy = w;
            target.webhook = &copy;
            spec->store(target, parse_value(*spec, where, section, value));
            w = std::move(copy);
        } else if (kind == Section::Node) {
            int id = node_section_id(section);
            Node &n = cfg.nodes[id];
            if (n.id < 0) n.id = id;
            if (n.origin.empty()) n.origin = where;
            Node copy = n;
            target.node = &copy;
            spec->store(target, parse_value(*spec, where, section, value));
            n = std::move(copy);
        } else {
            spec->store(target, parse_value(*spec, where, section, value));
        }
    } catch (const Error &e) {
        // inih only treats " ;" as a trailing comment; say so when a '#' seems meant as one.
        if (key != "secret" && (value.find(" #") != std::string::npos || value.find("\t#") != std::string::npos))
            throw Error(e.code(), std::string(e.what()) +
                                      " (note: '#' starts a comment only at the start of a line; "
                                      "use ' ;' for a comment after a value)");
        throw;
    }
}

void validate_config(const Config &cfg) {
    const std::string file = cfg.path.empty() ? std::string("configuration") : cfg.path;
    if (!valid_cluster_name(cfg.cluster_name))
        fail(file, "general", "cluster_name",
             show(cfg.cluster_name) + " is not a valid cluster name (allowed: 1..63 of A-Z a-z 0-9 _ . -)");
    if (!cfg.pgpool_conf.empty()) abs_path(file, "general", "pgpool_conf", cfg.pgpool_conf, true);
    if (!cfg.log_file.empty()) abs_path(file, "general", "log_file", cfg.log_file, true);
    if (!cfg.lock_file.empty()) abs_path(file, "general", "lock_file", cfg.lock_file, true);
    if (!cfg.passfile.empty()) abs_path(file, "connection", "passfile", cfg.passfile, true);
    check_role_name(file, "connection", "user", cfg.user);
    check_role_name(file, "replication", "user", cfg.repl_user);

    // The ranges of the key table: values set by a program, not read from a file, get the same limits.
    auto range_of = [](Section sec, const char *key) -> const KeyRange & {
        const KeySpec *k = find_key(sec, key);
        if (!k || !k->range.text) throw std::logic_error(std::string("no range for config key ") + key);
        return k->range;
    };
    auto check_range = [&](Section sec, const char *key, double d) {
        const KeyRange &r = range_of(sec, key);
        if (!(d >= r.min && d <= r.max))
            fail(file, section_name(sec), key, fmt_num(d) + " is out of range (allowed: " + r.text + ")");
    };
    check_range(Section::Connection, "connect_timeout", cfg.connect_timeout);
    check_range(Section::Timeouts, "shutdown", cfg.shutdown_timeout);
    check_range(Section::Timeouts, "catchup", cfg.catchup_timeout);
    check_range(Section::Timeouts, "promote", cfg.promote_timeout);
    check_range(Section::Timeouts, "command", cfg.command_timeout);
    check_range(Section::Timeouts, "lock", cfg.lock_timeout);
    check_range(Section::Timeouts, "unreachable", cfg.unreachable_timeout);
    check_range(Section::Timeouts, "postmaster_exit", cfg.postmaster_exit_timeout);
    check_range(Section::Timeouts, "poll_interval", cfg.poll_interval);
    check_range(Section::Timeouts, "fence", cfg.fence_timeout);
    if (cfg.on_unclean == OnUnclean::Fence && cfg.fence_command.empty())
        fail(file, "policy", "on_unclean", "fence needs a [fencing] command (allowed: promote, abort, or set "
                                           "[fencing] command = /path/to/program ARGS)");
    abs_path(file, "general", "spool_directory", cfg.spool_directory, false);
    check_range(Section::General, "delivery_budget", cfg.delivery_budget);
    if (cfg.sync_replication_slots && !cfg.replication_slots)
        fail(file, "replication", "sync_replication_slots",
             "on needs [policy] replication_slots = on (slot synchronization requires primary_slot_name)");

    for (const auto &[name, w] : cfg.webhooks) {
        const std::string sec = "webhook." + name;
        const std::string where = w.origin.empty() ? file : w.origin;
        if (webhook_section_name(sec) != name || w.name != name)
            throw Error(PGFO_ERR_CONFIG, prefix(where) + "bad webhook section [" + sec +
                                             "]: NAME must be 1..63 of A-Z a-z 0-9 _ -");
        if (w.url.empty()) fail(where, sec, "url", "missing (required in every [webhook.NAME] section)");
        check_url(where, sec, w.url);
        if (w.secret_inline && !w.secret_file.empty())
            fail(where, sec, "secret_file", "set together with secret (allowed: one of them; prefer secret_file)");
        for (const auto &f : w.events)
            if (!valid_event_filter(f))
                fail(where, sec, "events", show(f) + " is not an event name or prefix (allowed: names, prefixes like step.*, *)");
        const KeyRange &timeout = range_of(Section::Webhook, "timeout"), &backoff = range_of(Section::Webhook, "backoff"),
                       &retries = range_of(Section::Webhook, "retries");
        if (!(w.timeout >= timeout.min && w.timeout <= timeout.max))
            fail(where, sec, "timeout", fmt_num(w.timeout) + " is out of range (allowed: " + timeout.text + ")");
        if (!(w.backoff >= backoff.min && w.backoff <= backoff.max))
            fail(where, sec, "backoff", fmt_num(w.backoff) + " is out of range (allowed: " + backoff.text + ")");
        if (w.retries < retries.min || w.retries > retries.max)
            fail(where, sec, "retries", std::to_string(w.retries) + " is out of range (allowed: " + retries.text + ")");
        if (!w.ca_file.empty()) abs_path(where, sec, "ca_file", w.ca_file, true);
    }

    std::map<std::string, int> endpoints; // "host:port" -> node id
    for (const auto &[id, n] : cfg.nodes) {
        const std::string sec = "node." + std::to_string(id);
        const std::string where = n.origin.empty() ? file : n.origin;
        if (id < 0 || id > 127)
            throw Error(PGFO_ERR_CONFIG, prefix(where) + "node id " + std::to_string(id) + " is out of range (allowed: 0..127)");
        if (n.id != id)
            throw Error(PGFO_ERR_CONFIG, prefix(where) + "[" + sec + "] has node id " + std::to_string(n.id));
        if (n.host.empty())
            fail(where, sec, "host",
                 "missing (set host in [" + sec + "] or backend_hostname" + std::to_string(id) +
                     " in pgpool.conf)");
        host_value(where, sec, "host", n.host);
        if (n.port < 1 || n.port > 65535)
            fail(where, sec, "port", std::to_string(n.port) + " is not a port number (allowed: 1..65535)");
        if (!n.data_directory.empty()) server_path(where, sec, "data_directory", n.data_directory, false);
        if (!n.bin_directory.empty()) server_path(where, sec, "bin_directory", n.bin_directory, true);
        check_application_name(where, sec, n.application_name);
        if (n.access == Access::Local) {
            if (!n.ssh_user.empty())
                fail(where, sec, "ssh_user", "only allowed with access = ssh (this node has access = local)");
            if (n.ssh_port != 22)
                fail(where, sec, "ssh_port", "only allowed with access = ssh (this node has access = local)");
            if (!n.ssh_options.empty())
                fail(where, sec, "ssh_options", "only allowed with access = ssh (this node has access = local)");
        } else {
            if (n.ssh_port < 1 || n.ssh_port > 65535)
                fail(where, sec, "ssh_port",
                     std::to_string(n.ssh_port) + " is not a port number (allowed: 1..65535)");
        }
        std::string ep = n.host + ":" + std::to_string(n.port);
        auto [it, inserted] = endpoints.emplace(ep, id);
        if (!inserted)
            fail(where, sec, "host",
                 "node " + std::to_string(id) + " and node " + std::to_string(it->second) + " are both " + ep);
    }
}

Config load_config(const std::string &path) {
    ParseState st;
    st.path = path;
    // The file names the programs pgfailover runs and where: one that every
    // user can change is refused. One every user can read gets a warning
    // only (no password can be in it).
    std::string world_readable; // its mode, when every user can read it
    struct stat sb {};
    if (::stat(path.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & (S_IWOTH | S_IROTH))) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(sb.st_mode & 07777));
        if (sb.st_mode & S_IWOTH)
            throw Error(PGFO_ERR_CONFIG, path + ": every user can write to it (mode " + mode +
                                             "; allowed: a file others cannot write, e.g. chmod 0640)");
        st.cfg.warnings.push_back(path + ": every user can read it (mode " + mode + "; chmod 0640 is enough)");
        world_readable = mode;
    }
    st.text = read_small_file(path, kMaxConfigSize, "config");
    st.cfg.path = path;

    int rc = ini_parse_stream(reader, &st, handler, &st);
    if (rc == -2) throw Error(PGFO_ERR_NOMEM, "out of memory reading " + path);
    // inih returns the first line it did not accept; our own first error may come later.
    if (st.failed && !(rc > 0 && rc < st.error_line)) throw Error(PGFO_ERR_CONFIG, st.error);
    if (rc != 0)
        throw Error(PGFO_ERR_CONFIG,
                    path + ":" + std::to_string(rc) + ": syntax error (allowed: 'key = value', '[section]', '# comment')");

    if (!world_readable.empty()) {
        // No password can be in the file, but a webhook's HMAC key or the
        // credentials in its URL can: those are refused in a file anyone reads.
        for (const auto &[name, w] : st.cfg.webhooks) {
            // redact_url hides user information: any there is a credential
            const char *what = w.secret_inline                       ? "secret"
                               : redact_url(w.url) != w.url ? "url"
                                                                     : nullptr;
            if (what)
                throw Error(PGFO_ERR_CONFIG, path + ": [webhook." + name + "] " + what +
                                                 " holds a credential and every user can read the file (mode " +
                                                 world_readable + "); allowed: chmod 0640 (group postgres), or "
                                                 "the key in a secret_file only its owner can read");
        }
    }
    if (!st.cfg.pgpool_conf.empty()) merge_pgpool(st);
    validate_config(st.cfg);
    return std::move(st.cfg);
}

std::string default_config_path() {
    const char *env = std::getenv(kConfigEnvVar);
    if (env && *env) return env;
    return kDefaultConfigPath;
}

std::string lock_file_path(const Config &cfg) {
    if (!cfg.lock_file.empty()) return cfg.lock_file;
    // Not /tmp: another user could create the file first, or hold its flock.
    return cfg.spool_directory + "/" + cfg.cluster_name + ".lock";
}

} // namespace pgfo
