// JSON as events, reports and webhook bodies carry it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pgfo {

// Serialize for events and reports. Host names and paths come from pgpool
// and configs and may hold any bytes: invalid UTF-8 is replaced, never fatal.
inline std::string to_json_text(const nlohmann::json &j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace pgfo
