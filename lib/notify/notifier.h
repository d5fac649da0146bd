// Webhook delivery off the failover's path: a worker thread per context,
// started by the first event that an endpoint wants. Context::emit only
// queues (never waits for the network); the worker sends with libcurl, retries
// with backoff, and what it cannot deliver goes to the spool directory, from
// which the next run's worker sends it first. The worker never calls a user
// callback: it logs only to the context's standard error and log_file sinks.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "config/config.h"

namespace pgfo::notify {

// What happened to deliveries since the previous flush.
struct FlushResult {
    size_t delivered = 0; // accepted by the endpoint (HTTP 2xx)
    size_t spooled = 0;   // left in or written to the spool directory for the next run
    size_t lost = 0;      // could not even be written to the spool directory
    std::string spool_directory;
};

class Notifier {
public:
    // Starts the worker. cfg gives the cluster, the spool directory and the
    // endpoints that spooled deliveries are sent to.
    explicit Notifier(const Config &cfg);
    // Stops the worker at once; deliveries still pending go to the spool.
    ~Notifier();
    Notifier(const Notifier &) = delete;
    Notifier &operator=(const Notifier &) = delete;

    // Log lines of the worker go here (must not hold a callback sink).
    void set_logger(std::shared_ptr<spdlog::logger> logger);

    // Queue `event` for every endpoint in cfg whose filter selects it. Never
    // blocks on the network; when the queue is full the delivery is spooled.
    void enqueue(const Config &cfg, const nlohmann::json &event);

    // Wait up to budget seconds until every queued delivery is done, then
    // spool what is left.
    FlushResult flush(double budget_seconds);

    // This object was copied into a child by fork(): its worker thread runs
    // only in the parent, its locks may have been held at the fork, and its
    // deliveries are the parent's to make.
    bool inherited() const;
    // What a child does with an inherited notifier: nothing, ever. It is
    // neither flushed, nor joined, nor destroyed (that would join a thread
    // that does not exist here, and lock mutexes that may stay locked); it
    // stays reachable until the process ends.
    static void abandon(std::unique_ptr<Notifier> inherited) noexcept;

    // Bound of the in-memory queue (deliveries, all endpoints together).
    static constexpr size_t kMaxPending = 1000;

    struct State;

private:
    void run();
    std::unique_ptr<State> st_;
    std::thread worker_;
    pid_t owner_pid_; // the process the worker thread runs in
};

// Spool file names (for tests and tools): pgfo-<cluster>-<time ns>-<pid>-<n>-<endpoint>.json
std::string spool_prefix(const std::string &cluster);

} // namespace pgfo::notify
