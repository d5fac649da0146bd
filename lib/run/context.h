// The state behind a pgfo_ctx_t: configuration, logging, events, the last
// error and the last run's report. One thread at a time.
//
// While a user callback (log or event) runs, the context is in the middle of
// a call: in_callback() says so, and the C interface refuses every call on
// the context then (a setting would free the logger that is calling the
// callback, or the configuration the running step reads its nodes from).
//
// After fork(): the webhook worker thread exists only in the parent. A child
// never touches the notifier it inherited (its thread is not there to join,
// its locks may be held, its deliveries belong to the parent); it starts its
// own for its own events.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/json_text.h"
#include "pgfailover.h"

namespace pgfo {

namespace notify {
class Notifier;
struct FlushResult;
} // namespace notify

// An event as subscribers see it (the C callback gets it as pgfo_event_t).
struct Event {
    std::string name;   // "step.started", "failover.succeeded", ...
    std::string step;   // "" for run events
    uint64_t seq = 0;
    std::string json;   // the whole event, serialized
};

class Context {
public:
    Context();
    // Waits for webhook deliveries up to delivery_budget, spools the rest.
    ~Context();
    Context(const Context &) = delete;
    Context &operator=(const Context &) = delete;

    Config cfg;
    bool dry_run = false;

    // Logging. The logger is rebuilt when sinks change.
    spdlog::logger &log() { return *logger_; }
    void set_stderr_level(pgfo_log_level_t level);
    void set_log_callback(pgfo_log_fn fn, void *user_data);
    void reconfigure_logging(); // after cfg changed (log_file, log_level)

    // Events.
    void set_event_callback(pgfo_event_fn fn, void *user_data) {
        event_fn_ = fn;
        event_user_ = user_data;
    }
    // A log or event callback of this context is running (on this thread).
    bool in_callback() const { return callback_depth_ > 0; }
    // Starts a new run: a fresh run id and sequence numbers.
    // A run inside another (a switchover's failover and follows) keeps the
    // outer run's id, kind and sequence, so one operation is one event stream.
    void begin_run(const std::string &kind);
    void end_run() {
        if (run_depth_ > 0) --run_depth_;
    }
    const std::string &run_id() const { return run_id_; }
    // Publish an event: fills in the common fields (run id, seq, time,
    // cluster, version, host), queues it for the webhooks that want it (the
    // worker thread sends it; this never waits for the network) and delivers
    // it to the callback on this thread.
    void emit(const std::string &name, const std::string &step, const std::string &severity,
              nlohmann::json fields);
    // Progress of a wait inside the current step (the runner names the step):
    // a "step.progress" event with `fields` (elapsed_s, lsn_distance, ...)
    // for the event callback only, never queued for webhooks, at most one
    // every 0.25 s. Lets a terminal show what a long step waits for.
    void progress(nlohmann::json fields);
    // The events the running step may emit besides step.* (its row's list,
    // steps/contract.h); nullptr: no step runs (a run's own events, an
    // event of pgfo_emit_event). The Runner pushes one per step and one
    // (nullptr) per run, so that a run nested in a step (a switchover's
    // follow-primary) is held to its own steps' lists.
    struct EventScope {
        const char *step;
        const std::vector<const char *> *events;
    };
    void push_event_scope(EventScope s) { scopes_.push_back(s); }
    void pop_event_scope() {
        if (!scopes_.empty()) scopes_.pop_back();
    }
    // An event a running step's row does not list is a bug. Strict (the
    // default in builds without NDEBUG, and in the unit tests): emit()
    // throws PGFO_ERR_INTERNAL and the event is not sent. Otherwise it is
    // logged as an error and sent: a notification never stops a failover.
#ifdef NDEBUG
    bool strict_event_contracts = false;
#else
    bool strict_event_contracts = true;
#endif
    void set_current_step(const std::string &step) {
        step_ = step;
        step_started_ = std::chrono::steady_clock::now();
        last_progress_ = {};
    }
    // Wait up to budget seconds for pending webhook deliveries; what is left
    // goes to the spool directory. Logs a summary on this thread.
    notify::FlushResult flush_events(double budget);

    std::string errmsg;

    // The last run's report. It stays a JSON value from the runner to the C
    // boundary, which serialises it once (publish_result, then result_text).
    const nlohmann::json &result() const { return result_; }
    void set_result(nlohmann::json report) {
        result_ = std::move(report);
        result_published_ = false;
    }
    // Serialises a report set since the last call (what pgfo_ctx_result_json returns).
    void publish_result() {
        if (result_published_) return;
        result_text_ = to_json_text(result_);
        result_published_ = true;
    }
    const std::string &result_text() const { return result_text_; }

private:
    nlohmann::json result_ = nlohmann::json::object();
    std::string result_text_ = "{}";
    bool result_published_ = true;
    // The notifier, unless it was inherited through fork(): then it is left
    // alone for good and nullptr is returned.
    notify::Notifier *own_notifier();

    int callback_depth_ = 0;
    std::shared_ptr<spdlog::logger> logger_;
    std::shared_ptr<spdlog::logger> worker_logger_; // stderr and log_file only: never a user callback
    std::unique_ptr<notify::Notifier> notifier_;
    pgfo_log_level_t stderr_level_ = PGFO_LOG_OFF;
    pgfo_log_fn log_fn_ = nullptr;
    void *log_user_ = nullptr;
    pgfo_event_fn event_fn_ = nullptr;
    void *event_user_ = nullptr;
    std::string run_id_;
    std::string run_kind_;
    uint64_t seq_ = 0;
    int run_depth_ = 0;
    std::string step_;
    std::vector<EventScope> scopes_;
    std::chrono::steady_clock::time_point step_started_{}, last_progress_{};
};

} // namespace pgfo
