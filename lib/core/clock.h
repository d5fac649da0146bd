// Time: a monotonic stopwatch and wall-clock time stamps for events.
#pragma once

#include <chrono>
#include <string>

namespace pgfo {

// Monotonic stopwatch, seconds as double.
class Stopwatch {
public:
    Stopwatch() : start_(std::chrono::steady_clock::now()) {}
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    std::chrono::steady_clock::time_point start_;
};

// ISO-8601 UTC time with milliseconds, e.g. 2026-11-26T10:13:35.123Z.
std::string iso8601_now();

// This machine's host name ("unknown" when it cannot be read).
std::string host_name();

} // namespace pgfo
