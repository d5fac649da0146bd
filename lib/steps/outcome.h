// Outcome states the reports carry: enums inside the library, and one fixed
// spelling each in the JSON (nlohmann's enum mapping; a spelling it does not
// know reads as Unknown).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pgfo {

// A failover's verdict "old_primary_rejoin": can the old primary follow the
// new one without pg_rewind?
enum class OldPrimaryRejoin { Unknown, Already, Clean, NeedsRewind };
NLOHMANN_JSON_SERIALIZE_ENUM(OldPrimaryRejoin, {{OldPrimaryRejoin::Unknown, "unknown"},
                                                {OldPrimaryRejoin::Already, "already"},
                                                {OldPrimaryRejoin::Clean, "clean"},
                                                {OldPrimaryRejoin::NeedsRewind, "needs_rewind"}})

// How a node came back as a standby: follow-primary's verdict "rejoin", and
// a switchover's "old_primary_rejoin".
enum class Rejoin { Unknown, Already, Clean, Rewound };
NLOHMANN_JSON_SERIALIZE_ENUM(Rejoin, {{Rejoin::Unknown, "unknown"},
                                      {Rejoin::Already, "already"},
                                      {Rejoin::Clean, "clean"},
                                      {Rejoin::Rewound, "rewound"}})

// The JSON spelling of an outcome, for messages.
template <class E>
std::string spelling(E e) {
    return nlohmann::json(e).get<std::string>();
}

} // namespace pgfo
