// Internal error type of the C++ core. Thrown inside the library, caught at
// the C boundary (lib/capi) and turned into a status code plus message.
#pragma once

#include <stdexcept>
#include <string>

#include "pgfailover.h"

namespace pgfo {

class Error : public std::runtime_error {
public:
    Error(pgfo_status_t code, const std::string &msg) : std::runtime_error(msg), code_(code) {}
    pgfo_status_t code() const noexcept { return code_; }

private:
    pgfo_status_t code_;
};

} // namespace pgfo
