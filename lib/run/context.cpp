#include "run/context.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "core/error.h"
#include "core/text.h"
#include "notify/notifier.h"

namespace pgfo {
namespace {

spdlog::level::level_enum to_spdlog(pgfo_log_level_t level) {
    switch (level) {
    case PGFO_LOG_DEBUG: return spdlog::level::debug;
    case PGFO_LOG_INFO: return spdlog::level::info;
    case PGFO_LOG_WARNING: return spdlog::level::warn;
    case PGFO_LOG_ERROR: return spdlog::level::err;
    default: return spdlog::level::off;
    }
}

pgfo_log_level_t from_spdlog(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return PGFO_LOG_DEBUG;
    case spdlog::level::info: return PGFO_LOG_INFO;
    case spdlog::level::warn: return PGFO_LOG_WARNING;
    default: return PGFO_LOG_ERROR;
    }
}

spdlog::level::level_enum parse_level(const std::string &name) {
    if (name == "debug") return spdlog::level::debug;
    if (name == "warning") return spdlog::level::warn;
    if (name == "error") return spdlog::level::err;
    return spdlog::level::info;
}

// The pattern, with the message's control characters written as \xNN: one
// message is one line in pgpool's log, the log file and the callback, whatever
// a value from pgpool (a %D with a newline), a config file or a remote
// command's output holds, so no value can forge a log line of its own.
class OneLineFormatter : public spdlog::formatter {
public:
    explicit OneLineFormatter(std::string pattern) : pattern_(std::move(pattern)), inner_(pattern_) {}

    void format(const spdlog::details::log_msg &msg, spdlog::memory_buf_t &dest) override {
        std::string_view payload(msg.payload.data(), msg.payload.size());
        if (!has_controls(payload)) {
            inner_.format(msg, dest);
            return;
        }
        std::string escaped = escape_controls(payload);
        spdlog::details::log_msg one_line = msg;
        one_line.payload = spdlog::string_view_t(escaped.data(), escaped.size());
        inner_.format(one_line, dest);
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<OneLineFormatter>(pattern_);
    }

private:
    std::string pattern_;
    spdlog::pattern_formatter inner_;
};

std::unique_ptr<spdlog::formatter> one_line(const std::string &pattern) {
    return std::make_unique<OneLineFormatter>(pattern);
}

// Marks a user callback as running for as long as it exists.
class InCallback {
public:
    explicit InCallback(int &depth) : depth_(depth) { ++depth_; }
    ~InCallback() { --depth_; }
    InCallback(const InCallback &) = delete;
    InCallback &operator=(const InCallback &) = delete;

private:
    int &depth_;
};

// Hands each formatted line to the caller's pgfo_log_fn, on the calling thread.
class CallbackSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    CallbackSink(pgfo_log_fn fn, void *user, int &depth) : fn_(fn), user_(user), depth_(depth) {}

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        spdlog::memory_buf_t buf;
        formatter_->format(msg, buf);
        std::string line(buf.data(), buf.size());
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        InCallback in(depth_);
        fn_(from_spdlog(msg.level), line.c_str(), user_);
    }
    void flush_() override {}

private:
    pgfo_log_fn fn_;
    void *user_;
    int &depth_; // the context's: the sink lives in its logger
};

std::string random_run_id() {
    unsigned char bytes[8] = {0};
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = ::read(fd, bytes, sizeof bytes);
        (void)n;
        ::close(fd);
    }
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

} // namespace

Context::Context() { reconfigure_logging(); }

Context::~Context() {
    if (!own_notifier()) return;
    try {
        notify::FlushResult r = notifier_->flush(cfg.delivery_budget);
        if (r.spooled || r.lost)
            worker_logger_->warn("webhooks: {} deliveries not made before exit: {} spooled to {} for the next run, "
                                 "{} lost",
                                 r.spooled + r.lost, r.spooled, r.spool_directory, r.lost);
    } catch (...) {
        // Freeing a context never fails.
    }
    notifier_.reset();
}

notify::Notifier *Context::own_notifier() {
    if (notifier_ && notifier_->inherited()) notify::Notifier::abandon(std::move(notifier_));
    return notifier_.get();
}

notify::FlushResult Context::flush_events(double budget) {
    if (!own_notifier()) return {};
    notify::FlushResult r = notifier_->flush(budget);
    if (r.spooled || r.lost)
        log().warn("webhooks: {} delivered, {} not delivered within {:.3g} s: {} spooled to {} (sent first on the "
                   "next run), {} lost",
                   r.delivered, r.spooled + r.lost, budget, r.spooled, r.spool_directory, r.lost);
    else if (r.delivered)
        log().info("webhooks: {} deliveries made", r.delivered);
    return r;
}

void Context::set_stderr_level(pgfo_log_level_t level) {
    stderr_level_ = level;
    reconfigure_logging();
}

void Context::set_log_callback(pgfo_log_fn fn, void *user_data) {
    log_fn_ = fn;
    log_user_ = user_data;
    reconfigure_logging();
}

void Context::reconfigure_logging() {
    std::vector<spdlog::sink_ptr> sinks;
    const char *pattern = "%Y-%m-%d %H:%M:%S.%e pgfailover[%P] %^%l%$: %v";
    if (stderr_level_ != PGFO_LOG_OFF) {
        auto s = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        s->set_level(to_spdlog(stderr_level_));
        s->set_formatter(one_line(pattern));
        sinks.push_back(s);
    }
    // A log file that cannot be opened (directory gone, not writable, disk
    // full) must not stop a failover: the lines still go to standard error
    // (pgpool's log) and to the callback, with a warning naming the file.
    std::string log_file_error;
    if (!cfg.log_file.empty()) {
        try {
            auto s = std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.log_file, false);
            s->set_level(parse_level(cfg.log_level));
            s->set_formatter(one_line(pattern));
            sinks.push_back(s);
        } catch (const spdlog::spdlog_ex &e) {
            log_file_error = "cannot open log_file " + cfg.log_file + " (" + e.what() +
                             "): logging to standard error only";
        }
    }
    auto worker_logger = std::make_shared<spdlog::logger>("pgfailover", sinks.begin(), sinks.end());
    worker_logger->set_level(spdlog::level::debug);
    worker_logger->flush_on(spdlog::level::debug);
    worker_logger_ = worker_logger;
    if (own_notifier()) notifier_->set_logger(worker_logger_);
    if (log_fn_) {
        auto s = std::make_shared<CallbackSink>(log_fn_, log_user_, callback_depth_);
        s->set_formatter(one_line("%v"));
        s->set_level(spdlog::level::debug);
        sinks.push_back(s);
    }
    auto logger = std::make_shared<spdlog::logger>("pgfailover", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::debug); // pgpool may kill us; every line must be on disk
    logger_ = std::move(logger);
    if (!log_file_error.empty()) logger_->warn("{}", log_file_error);
}

void Context::begin_run(const std::string &kind) {
    if (run_depth_++ > 0) return;
    run_id_ = random_run_id();
    run_kind_ = kind;
    seq_ = 0;
}

void Context::emit(const std::string &name, const std::string &step, const std::string &severity,
                   nlohmann::json fields) {
    if (!scopes_.empty() && scopes_.back().events && name.rfind("step.", 0) != 0) {
        const auto &allowed = *scopes_.back().events;
        bool listed = false;
        for (const char *a : allowed) listed = listed || name == a;
        if (!listed) {
            std::string msg = std::string("BUG: step ") + scopes_.back().step + " emitted event " + name +
                              ", which its step row does not list";
            if (strict_event_contracts) throw Error(PGFO_ERR_INTERNAL, msg);
            log().error("{}", msg);
        }
    }
    nlohmann::json ev = nlohmann::json::object();
    ev["event"] = name;
    ev["severity"] = severity;
    ev["run_id"] = run_id_;
    ev["run_kind"] = run_kind_;
    ev["seq"] = ++seq_;
    ev["time"] = iso8601_now();
    ev["cluster"] = cfg.cluster_name;
    if (!step.empty()) ev["step"] = step;
    if (fields.is_object()) {
        for (auto &[k, v] : fields.items()) ev[k] = v;
    }
    ev["version"] = PGFO_VERSION_STRING;
    ev["hostname"] = host_name();
    if (!cfg.webhooks.empty()) {
        try {
            if (!own_notifier()) {
                notifier_ = std::make_unique<notify::Notifier>(cfg);
                notifier_->set_logger(worker_logger_);
            }
            notifier_->enqueue(cfg, ev);
        } catch (const std::exception &e) {
            // Notifications never stop a failover.
            log().error("webhooks: event {} not queued: {}", name, e.what());
        }
    }
    if (!event_fn_) return;
    Event e{name, step, seq_, to_json_text(ev)};
    InCallback in(callback_depth_);
    event_fn_(reinterpret_cast<const pgfo_event_t *>(&e), event_user_);
}

void Context::progress(nlohmann::json fields) {
    if (!event_fn_) return;
    auto now = std::chrono::steady_clock::now();
    if (last_progress_ != std::chrono::steady_clock::time_point{} &&
        now - last_progress_ < std::chrono::milliseconds(250))
        return;
    last_progress_ = now;
    nlohmann::json ev = {{"event", "step.progress"}, {"severity", "debug"}, {"run_id", run_id_},
                         {"run_kind", run_kind_}, {"seq", 0}, {"time", iso8601_now()},
                         {"cluster", cfg.cluster_name}, {"step", step_},
                         {"elapsed_s", std::chrono::duration<double>(now - step_started_).count()}};
    if (fields.is_object())
        for (auto &[k, v] : fields.items()) ev[k] = v;
    Event e{"step.progress", step_, 0, to_json_text(ev)};
    event_fn_(reinterpret_cast<const pgfo_event_t *>(&e), event_user_);
}

} // namespace pgfo
