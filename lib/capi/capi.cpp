// The C interface: every entry point goes through guarded(), which turns any
// exception into a status code and the context's error message. Nothing
// thrown inside the core ever reaches the caller.
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "config/config.h"
#include "run/context.h"
#include "core/error.h"
#include "notify/notifier.h"
#include "pg/conn.h"
#include "pg/lsn.h"
#include "pgfailover.h"
#include "steps/failover.h"
#include "steps/follow.h"
#include "steps/ops.h"
#include "steps/plan.h"
#include "steps/single.h"
#include "steps/status.h"
#include "steps/switchover.h"

struct pgfo_ctx {
    pgfo::Context impl;
};

namespace {

void set_error(pgfo_ctx_t *ctx, const char *msg) noexcept {
    try {
        ctx->impl.errmsg = msg;
    } catch (...) {
        // Out of memory while storing the message: keep what was there.
    }
}

const char kFromCallback[] =
    "called from inside a callback of the same context: a log or event callback must not call a function that "
    "takes its context (only pgfo_ctx_errmsg and pgfo_ctx_result_json); nothing was done";

// A call on ctx while one of its callbacks runs is refused before it touches
// anything: the call that fired the callback is still in the middle of its
// work (holding the logger, reading the configuration, counting events).
//
// The report a call leaves stays a JSON value inside the library; it is
// serialised here, once, for pgfo_ctx_result_json (also when the call failed:
// a failed run writes its report before it throws).
template <class F>
pgfo_status_t guarded(pgfo_ctx_t *ctx, F &&fn) noexcept {
    if (!ctx) return PGFO_ERR_USAGE;
    if (ctx->impl.in_callback()) {
        set_error(ctx, kFromCallback);
        return PGFO_ERR_USAGE;
    }
    struct Publish {
        pgfo::Context &c;
        ~Publish() {
            try {
                c.publish_result();
            } catch (...) {
                // Out of memory while serialising: the previous text stays.
            }
        }
    } publish{ctx->impl};
    try {
        ctx->impl.errmsg.clear();
        fn(ctx->impl);
        ctx->impl.errmsg.clear(); // a call refused by a callback meanwhile is not this one's failure
        return PGFO_OK;
    } catch (const pgfo::Error &e) {
        set_error(ctx, e.what());
        return e.code();
    } catch (const std::bad_alloc &) {
        set_error(ctx, "out of memory");
        return PGFO_ERR_NOMEM;
    } catch (const std::exception &e) {
        set_error(ctx, e.what());
        return PGFO_ERR_INTERNAL;
    } catch (...) {
        set_error(ctx, "unknown internal error");
        return PGFO_ERR_INTERNAL;
    }
}

void require(bool cond, const char *what) {
    if (!cond) throw pgfo::Error(PGFO_ERR_USAGE, what);
}

// pgpool's hook arguments from a C argv.
std::vector<std::string> arg_vector(int argc, const char *const *argv) {
    require(argc >= 0 && (argc == 0 || argv != nullptr), "argv must not be NULL");
    std::vector<std::string> args;
    for (int i = 0; i < argc; ++i) {
        require(argv[i] != nullptr, "argv must not contain NULL");
        args.emplace_back(argv[i]);
    }
    return args;
}

} // namespace

extern "C" {

PGFO_API int pgfo_version_number(void) { return PGFO_VERSION_NUM; }
PGFO_API const char *pgfo_version(void) { return PGFO_VERSION_STRING; }

PGFO_API pgfo_status_t pgfo_ctx_new(pgfo_ctx_t **out) {
    if (!out) return PGFO_ERR_USAGE;
    *out = nullptr;
    try {
        *out = new pgfo_ctx();
        return PGFO_OK;
    } catch (const std::bad_alloc &) {
        return PGFO_ERR_NOMEM;
    } catch (...) {
        return PGFO_ERR_INTERNAL;
    }
}

PGFO_API void pgfo_ctx_free(pgfo_ctx_t *ctx) {
    if (ctx && ctx->impl.in_callback()) { // the call that fired the callback still uses it
        set_error(ctx, kFromCallback);
        return;
    }
    delete ctx;
}

PGFO_API const char *pgfo_ctx_errmsg(const pgfo_ctx_t *ctx) {
    if (!ctx) return "NULL context";
    return ctx->impl.errmsg.c_str();
}

PGFO_API pgfo_status_t pgfo_ctx_load_config(pgfo_ctx_t *ctx, const char *path) {
    return guarded(ctx, [&](pgfo::Context &c) {
        std::string p = path ? path : pgfo::default_config_path();
        pgfo::Config cfg = pgfo::load_config(p);
        pgfo::Config old = std::move(c.cfg);
        c.cfg = std::move(cfg);
        try {
            c.reconfigure_logging();
        } catch (...) {
            c.cfg = std::move(old);
            c.reconfigure_logging();
            throw;
        }
        for (const auto &w : c.cfg.warnings) c.log().warn("configuration: {}", w);
    });
}

PGFO_API pgfo_status_t pgfo_ctx_set(pgfo_ctx_t *ctx, const char *section, const char *key, const char *value) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(section && key && value, "section, key and value must not be NULL");
        pgfo::Config cfg = c.cfg;
        pgfo::apply_setting(cfg, section, key, value, "setting");
        c.cfg = std::move(cfg);
        c.reconfigure_logging();
    });
}

PGFO_API pgfo_status_t pgfo_ctx_set_dry_run(pgfo_ctx_t *ctx, int dry_run) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(dry_run == 0 || dry_run == 1, "dry_run must be 0 or 1");
        c.dry_run = dry_run == 1;
    });
}

PGFO_API pgfo_status_t pgfo_ctx_set_log_stderr(pgfo_ctx_t *ctx, pgfo_log_level_t level) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(level >= PGFO_LOG_DEBUG && level <= PGFO_LOG_OFF && level != 5, "unknown log level");
        c.set_stderr_level(level);
    });
}

PGFO_API pgfo_status_t pgfo_ctx_set_log_callback(pgfo_ctx_t *ctx, pgfo_log_fn fn, void *user_data) {
    return guarded(ctx, [&](pgfo::Context &c) { c.set_log_callback(fn, user_data); });
}

PGFO_API pgfo_status_t pgfo_ctx_set_event_callback(pgfo_ctx_t *ctx, pgfo_event_fn fn, void *user_data) {
    return guarded(ctx, [&](pgfo::Context &c) { c.set_event_callback(fn, user_data); });
}

PGFO_API pgfo_status_t pgfo_ctx_flush_events(pgfo_ctx_t *ctx, double budget_seconds) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(!std::isnan(budget_seconds) && budget_seconds <= 86400, "budget_seconds must be at most 86400");
        double budget = budget_seconds < 0 ? c.cfg.delivery_budget : budget_seconds;
        pgfo::notify::FlushResult r = c.flush_events(budget);
        if (r.spooled || r.lost)
            throw pgfo::Error(PGFO_ERR_TIMEOUT,
                              std::to_string(r.spooled + r.lost) + " webhook deliveries not made within the budget: " +
                                  std::to_string(r.spooled) + " spooled to " + r.spool_directory +
                                  " for the next run, " + std::to_string(r.lost) + " lost");
    });
}

PGFO_API const char *pgfo_event_name(const pgfo_event_t *event) {
    return event ? reinterpret_cast<const pgfo::Event *>(event)->name.c_str() : "";
}
PGFO_API const char *pgfo_event_step(const pgfo_event_t *event) {
    return event ? reinterpret_cast<const pgfo::Event *>(event)->step.c_str() : "";
}
PGFO_API const char *pgfo_event_json(const pgfo_event_t *event) {
    return event ? reinterpret_cast<const pgfo::Event *>(event)->json.c_str() : "{}";
}
PGFO_API uint64_t pgfo_event_seq(const pgfo_event_t *event) {
    return event ? reinterpret_cast<const pgfo::Event *>(event)->seq : 0;
}

PGFO_API pgfo_status_t pgfo_lsn_parse(const char *text, uint64_t *lsn) {
    if (!text || !lsn) return PGFO_ERR_USAGE;
    try {
        auto v = pgfo::parse_lsn(text);
        if (!v) return PGFO_ERR_USAGE;
        *lsn = *v;
        return PGFO_OK;
    } catch (...) {
        return PGFO_ERR_INTERNAL;
    }
}

PGFO_API pgfo_status_t pgfo_lsn_format(uint64_t lsn, char *buf, size_t buflen) {
    if (!buf) return PGFO_ERR_USAGE;
    try {
        std::string s = pgfo::format_lsn(lsn);
        if (s.size() + 1 > buflen) return PGFO_ERR_USAGE;
        std::memcpy(buf, s.c_str(), s.size() + 1);
        return PGFO_OK;
    } catch (...) {
        return PGFO_ERR_INTERNAL;
    }
}

PGFO_API pgfo_status_t pgfo_ping_node(pgfo_ctx_t *ctx, int node_id, pgfo_ping_t *result) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(result != nullptr, "result must not be NULL");
        *result = pgfo::ping_node(pgfo::node_by_id(c.cfg, node_id), c.cfg);
    });
}

PGFO_API pgfo_status_t pgfo_wait_shutdown(pgfo_ctx_t *ctx, int node_id, double timeout) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::single_wait_shutdown(c, node_id, timeout); });
}

PGFO_API pgfo_status_t pgfo_read_checkpoint(pgfo_ctx_t *ctx, int node_id, int *state, uint64_t *checkpoint,
                                            uint64_t *checkpoint_end, uint32_t *timeline) {
    return guarded(ctx, [&](pgfo::Context &c) {
        pgfo::single_read_checkpoint(c, node_id, state, checkpoint, checkpoint_end, timeline);
    });
}

PGFO_API pgfo_status_t pgfo_wait_flush(pgfo_ctx_t *ctx, int node_id, uint64_t target, double timeout,
                                       uint64_t *reached) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::single_wait_flush(c, node_id, target, timeout, reached); });
}

PGFO_API pgfo_status_t pgfo_set_sync_standbys(pgfo_ctx_t *ctx, int node_id, const char *value) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(value != nullptr, "value must not be NULL");
        pgfo::single_set_sync_standbys(c, node_id, value);
    });
}

PGFO_API pgfo_status_t pgfo_promote(pgfo_ctx_t *ctx, int node_id, double timeout) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::single_promote(c, node_id, timeout); });
}

PGFO_API pgfo_status_t pgfo_switch_point(pgfo_ctx_t *ctx, int node_id, uint32_t parent_tli, uint64_t *point,
                                         uint32_t *timeline) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::single_switch_point(c, node_id, parent_tli, point, timeline); });
}

PGFO_API pgfo_status_t pgfo_failover_pgpool(pgfo_ctx_t *ctx, int argc, const char *const *argv) {
    return guarded(ctx, [&](pgfo::Context &c) {
        pgfo::failover_from_pgpool(c, arg_vector(argc, argv));
    });
}

PGFO_API pgfo_status_t pgfo_failover(pgfo_ctx_t *ctx, int failed_node, int candidate_node, int old_primary_node) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::failover(c, failed_node, candidate_node, old_primary_node); });
}

PGFO_API pgfo_status_t pgfo_follow_primary_pgpool(pgfo_ctx_t *ctx, int argc, const char *const *argv) {
    return guarded(ctx, [&](pgfo::Context &c) {
        pgfo::follow_primary_from_pgpool(c, arg_vector(argc, argv));
    });
}

PGFO_API pgfo_status_t pgfo_follow_primary(pgfo_ctx_t *ctx, int follower_node, int primary_node) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::follow_primary(c, follower_node, primary_node); });
}

PGFO_API pgfo_status_t pgfo_rejoin_decision(pgfo_ctx_t *ctx, int follower_node, int primary_node,
                                            int *can_follow) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(can_follow != nullptr, "can_follow must not be NULL");
        pgfo::single_rejoin_decision(c, follower_node, primary_node, can_follow);
    });
}

PGFO_API pgfo_status_t pgfo_emit_event(pgfo_ctx_t *ctx, const char *name, const char *fields_json) {
    return guarded(ctx, [&](pgfo::Context &c) {
        require(name != nullptr, "name must not be NULL");
        std::string n = name;
        bool ok = !n.empty() && n.size() <= 64;
        for (char ch : n)
            ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-');
        require(ok, "event name must be 1 to 64 of a-z 0-9 . _ -");
        for (const char *own : {"step.", "failover.", "follow_primary.", "switchover.", "standby_failure.", "status.",
                                "check.", "sync."})
            require(n.rfind(own, 0) != 0, "event names starting with the library's own prefixes are reserved");
        nlohmann::json fields = nlohmann::json::object();
        if (fields_json) {
            fields = nlohmann::json::parse(fields_json, nullptr, false);
            require(!fields.is_discarded() && fields.is_object(), "fields_json must be a JSON object");
        }
        std::string severity = "info";
        if (fields.contains("severity") && fields["severity"].is_string()) {
            severity = fields["severity"].get<std::string>();
            fields.erase("severity");
        }
        c.begin_run("event");
        try {
            c.emit(n, "", severity, fields);
        } catch (...) {
            c.end_run();
            throw;
        }
        c.end_run();
    });
}

PGFO_API pgfo_status_t pgfo_switchover(pgfo_ctx_t *ctx, int target_node) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::switchover(c, target_node); });
}

PGFO_API pgfo_status_t pgfo_status(pgfo_ctx_t *ctx) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::cluster_status(c); });
}

PGFO_API pgfo_status_t pgfo_check(pgfo_ctx_t *ctx) {
    return guarded(ctx, [&](pgfo::Context &c) { pgfo::cluster_check(c); });
}

PGFO_API pgfo_status_t pgfo_plan(pgfo_ctx_t *ctx, const char *procedure) {
    return guarded(ctx, [&](pgfo::Context &c) {
        c.set_result(pgfo::plan_json(procedure ? procedure : ""));
    });
}

PGFO_API const char *pgfo_ctx_result_json(const pgfo_ctx_t *ctx) {
    if (!ctx) return "{}";
    return ctx->impl.result_text().c_str();
}

} // extern "C"
