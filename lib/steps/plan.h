// The step tables as they are built into the library, with their contracts
// (steps/contract.h), for `pgfailover plan` and docs/architecture.md.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pgfo {

// {"procedures": [{"procedure", "run", "about", "steps": [...]}, ...]} for
// `procedure`: "failover" (the primary failover, then a failed standby's),
// "follow-primary", "switchover", "single-steps" (the C interface's), or ""
// for all of them. Throws PGFO_ERR_USAGE for any other name.
nlohmann::json plan_json(const std::string &procedure);

} // namespace pgfo
