// synchronous_standby_names. The input is "<value>\0<available name>\0...".
// Properties: format(parse(x)) parses again to an equal spec; the value
// restricted to the available names parses, keeps the method (or becomes
// empty), names only available names, and never asks for more standbys than
// it names.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "fuzz_util.h"
#include "config/sync_names.h"

namespace {

bool same(const pgfo::SyncSpec &a, const pgfo::SyncSpec &b) {
    return a.method == b.method && a.num == b.num && a.names == b.names;
}

bool equal_ci(const std::string &a, const std::string &b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view all(reinterpret_cast<const char *>(data), size);
    size_t nul = all.find('\0');
    std::string_view value = all.substr(0, nul);
    std::vector<std::string> available;
    while (nul != std::string_view::npos) {
        all.remove_prefix(nul + 1);
        nul = all.find('\0');
        available.emplace_back(all.substr(0, nul));
    }

    pgfo::SyncSpec spec;
    try {
        spec = pgfo::parse_sync_names(value);
    } catch (const pgfo::Error &e) {
        PGFO_FUZZ_ASSERT(e.code() == PGFO_ERR_CONFIG);
        return 0;
    }
    PGFO_FUZZ_ASSERT(spec.method == pgfo::SyncSpec::Method::None || !spec.names.empty());
    PGFO_FUZZ_ASSERT(spec.method == pgfo::SyncSpec::Method::None || spec.num >= 1);

    std::string text = pgfo::format_sync_names(spec);
    pgfo::SyncSpec again;
    try {
        again = pgfo::parse_sync_names(text);
    } catch (const pgfo::Error &e) {
        std::fprintf(stderr, "formatted value does not parse: %s\n", e.what());
        PGFO_FUZZ_ASSERT(!"format(parse(x)) parses");
    }
    PGFO_FUZZ_ASSERT(same(spec, again));
    PGFO_FUZZ_ASSERT(pgfo::format_sync_names(again) == text);

    std::string restricted = pgfo::restrict_sync_names(value, available);
    pgfo::SyncSpec r;
    try {
        r = pgfo::parse_sync_names(restricted);
    } catch (const pgfo::Error &e) {
        std::fprintf(stderr, "restricted value does not parse: %s\n", e.what());
        PGFO_FUZZ_ASSERT(!"restrict(x) parses");
    }
    if (r.method != pgfo::SyncSpec::Method::None) {
        PGFO_FUZZ_ASSERT(r.method == spec.method);
        PGFO_FUZZ_ASSERT(r.num >= 1 && r.num <= static_cast<int>(r.names.size()));
        for (const std::string &n : r.names) {
            bool found = n == "*" && !available.empty();
            for (const std::string &a : available) found = found || equal_ci(n, a);
            PGFO_FUZZ_ASSERT(found);
        }
    }
    return 0;
}
