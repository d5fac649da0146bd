#include "config/webhook_values.h"

namespace pgfo {
namespace {

bool valid_name(const std::string &s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    char prev = 0;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
        if (!ok || (c == '.' && prev == '.')) return false;
        prev = c;
    }
    return true;
}

} // namespace

bool valid_event_filter(const std::string &f) {
    if (f == "*") return true;
    if (f.size() > 2 && f.compare(f.size() - 2, 2, ".*") == 0) return valid_name(f.substr(0, f.size() - 2));
    return valid_name(f);
}

std::string redact_url(const std::string &url) {
    size_t scheme = url.find("://");
    size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    size_t end = url.find_first_of("/?#", start);
    if (end == std::string::npos) end = url.size();
    size_t at = url.rfind('@', end == 0 ? 0 : end - 1);
    if (at == std::string::npos || at < start || at >= end) return url;
    return url.substr(0, start) + "***" + url.substr(at);
}

} // namespace pgfo
