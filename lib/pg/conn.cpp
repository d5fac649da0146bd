#include "pg/conn.h"

#include <poll.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/error.h"

namespace pgfo {
namespace {

struct Params {
    std::vector<std::string> keys, values;
    void add(const char *k, const std::string &v) {
        if (v.empty()) return;
        keys.emplace_back(k);
        values.push_back(v);
    }
};

Params conn_params(const Node &node, const Config &cfg) {
    Params p;
    p.add("host", node.host);
    p.add("port", std::to_string(node.port));
    p.add("dbname", cfg.dbname);
    p.add("user", cfg.user);
    p.add("passfile", cfg.passfile);
    p.add("sslmode", cfg.sslmode);
    p.add("application_name", "pgfailover");
    for (const auto &[k, v] : tcp_settings(cfg)) p.add(k.c_str(), v);
    return p;
}

// Pointers into a Params, which must outlive it.
struct CArrays {
    std::vector<const char *> k, v;
    explicit CArrays(const Params &p) {
        for (size_t i = 0; i < p.keys.size(); ++i) {
            k.push_back(p.keys[i].c_str());
            v.push_back(p.values[i].c_str());
        }
        k.push_back(nullptr);
        v.push_back(nullptr);
    }
};

std::string trim_msg(const char *m) {
    std::string s = m ? m : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto &c : s)
        if (c == '\n') c = ' ';
    return s;
}

void notice_receiver(void *arg, const PGresult *res) {
    auto *v = static_cast<std::vector<std::string> *>(arg);
    v->push_back(trim_msg(PQresultErrorMessage(res)));
}

std::chrono::steady_clock::time_point seconds_from_now(double s) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

// A cancel request whose sender thread may outlive the wait for it.
struct CancelJob {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    bool sent = false;
};

// PQcancel opens a new connection with a blocking connect() and then waits
// for the server to close it: towards a black-holed host that takes as long
// as the kernel keeps retrying (minutes). It runs on a thread of its own and
// is waited for at most `limit` seconds; a thread still blocked then is left
// to end on its own (its socket has the connection's tcp_user_timeout and
// keepalives, libpq 14+). True when the server took the request in time.
bool cancel_within(PGconn *c, double limit) {
    PGcancel *cn = PQgetCancel(c);
    if (!cn) return false;
    auto job = std::make_shared<CancelJob>();
    try {
        std::thread([cn, job] {
            char eb[256];
            const bool sent = PQcancel(cn, eb, sizeof eb) == 1;
            PQfreeCancel(cn);
            std::lock_guard<std::mutex> g(job->m);
            job->done = true;
            job->sent = sent;
            job->cv.notify_all();
        }).detach();
    } catch (const std::system_error &) {
        PQfreeCancel(cn);
        return false;
    }
    std::unique_lock<std::mutex> lk(job->m);
    job->cv.wait_for(lk, std::chrono::duration<double>(limit), [&] { return job->done; });
    return job->done && job->sent;
}

} // namespace

std::vector<std::pair<std::string, std::string>> tcp_settings(const Config &cfg) {
    // Whole seconds: libpq takes connect_timeout and the keepalive settings
    // as integers (tcp_user_timeout in milliseconds).
    const int ct = std::max(1, static_cast<int>(std::ceil(cfg.connect_timeout)));
    const long user_ms = std::max(1000L, static_cast<long>(std::ceil(cfg.command_timeout * 1000)));
    return {
        {"connect_timeout", std::to_string(ct)},
        // Sent data not acknowledged for longer than any one command may
        // take: the peer is gone, the kernel closes the connection.
        {"tcp_user_timeout", std::to_string(user_ms)},
        // An idle connection to a silent peer: dead after about
        // 2 x connect_timeout (idle, then 3 probes).
        {"keepalives", "1"},
        {"keepalives_idle", std::to_string(ct)},
        {"keepalives_interval", std::to_string(std::max(1, (ct + 2) / 3))},
        {"keepalives_count", "3"},
    };
}

std::string node_label(const Node &node) {
    return "node " + std::to_string(node.id) + " (" + node.host + ":" + std::to_string(node.port) + ")";
}

const char *ping_name(pgfo_ping_t p) {
    switch (p) {
    case PGFO_PING_OK: return "accepting connections";
    case PGFO_PING_REJECT: return "rejecting connections";
    case PGFO_PING_NO_RESPONSE: return "no response";
    default: return "no attempt (bad parameters)";
    }
}

pgfo_ping_t ping_node(const Node &node, const Config &cfg) {
    const Params params = conn_params(node, cfg);
    CArrays a(params);
    switch (PQpingParams(a.k.data(), a.v.data(), 0)) {
    case PQPING_OK: return PGFO_PING_OK;
    case PQPING_REJECT: return PGFO_PING_REJECT;
    case PQPING_NO_RESPONSE: return PGFO_PING_NO_RESPONSE;
    default: return PGFO_PING_NO_ATTEMPT;
    }
}

PgConn::PgConn(PGconn *c, std::string label, double cancel_grace)
    : conn_(c), label_(std::move(label)), notices_(std::make_unique<std::vector<std::string>>()),
      cancel_grace_(cancel_grace) {
    PQsetNoticeReceiver(conn_.get(), notice_receiver, notices_.get());
}

PgConn PgConn::open(const Node &node, const Config &cfg) {
    const Params params = conn_params(node, cfg);
    CArrays a(params);
    PGconn *c = PQconnectdbParams(a.k.data(), a.v.data(), 0);
    if (!c) throw Error(PGFO_ERR_NOMEM, "out of memory connecting to " + node_label(node));
    if (PQstatus(c) != CONNECTION_OK) {
        std::string msg = trim_msg(PQerrorMessage(c));
        PQfinish(c);
        throw Error(PGFO_ERR_CONNECT, "cannot connect to " + node_label(node) + ": " + msg);
    }
    return PgConn(c, node_label(node), cfg.connect_timeout);
}

bool PgConn::ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }

int PgConn::server_version() const { return PQserverVersion(conn_.get()); }

std::string PgConn::literal(const std::string &value) {
    char *q = PQescapeLiteral(conn_.get(), value.c_str(), value.size());
    if (!q) throw Error(PGFO_ERR_QUERY, label_ + ": cannot quote value: " + trim_msg(PQerrorMessage(conn_.get())));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::vector<Row> PgConn::query(const std::string &sql, const std::vector<std::string> &params,
                               double timeout) {
    // NaN, 0 or a negative number would be no deadline at all (or none met).
    if (!(timeout > 0) || !std::isfinite(timeout))
        throw Error(PGFO_ERR_INTERNAL, label_ + ": query without a valid deadline (" + std::to_string(timeout) +
                                           " s): " + sql);
    PGconn *c = conn_.get();
    if (!c)
        throw Error(PGFO_ERR_CONNECT, label_ + ": the connection was closed after an earlier query got no answer");
    notices_->clear();
    std::vector<const char *> vals;
    for (auto &p : params) vals.push_back(p.c_str());
    if (!PQsendQueryParams(c, sql.c_str(), static_cast<int>(vals.size()), nullptr,
                           vals.empty() ? nullptr : vals.data(), nullptr, nullptr, 0))
        throw Error(PGFO_ERR_QUERY, label_ + ": " + trim_msg(PQerrorMessage(c)));

    const auto deadline = seconds_from_now(timeout);
    if (!wait_result(deadline)) {
        // Past the deadline: cancel, and give the cancel and the answer to it
        // together connect_timeout. A node that sends nothing back by then
        // (a partition, a host that vanished) loses this connection: closing
        // it is the only thing that cannot block.
        const auto grace_end = seconds_from_now(cancel_grace_);
        const bool sent = cancel_within(c, cancel_grace_);
        std::string what;
        if (sent && wait_result(grace_end)) {
            while (PGresult *r = PQgetResult(c)) PQclear(r);
            what = "cancelled";
        } else {
            conn_.reset();
            what = std::string(sent ? "cancelled, but no answer came" : "no answer to the cancel request") +
                   " within " + std::to_string(cancel_grace_) + " s: connection closed";
        }
        throw Error(PGFO_ERR_TIMEOUT, label_ + ": query did not finish within " + std::to_string(timeout) +
                                          " s, " + what + ": " + sql);
    }

    std::vector<Row> rows;
    std::string error;
    while (PGresult *r = PQgetResult(c)) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r); ++i) {
                Row row;
                for (int j = 0; j < PQnfields(r); ++j) {
                    if (PQgetisnull(r, i, j)) row.emplace_back(std::nullopt);
                    else row.emplace_back(std::string(PQgetvalue(r, i, j), PQgetlength(r, i, j)));
                }
                rows.push_back(std::move(row));
            }
        } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && error.empty()) {
            error = trim_msg(PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    if (!error.empty()) throw Error(PGFO_ERR_QUERY, label_ + ": " + error);
    return rows;
}

bool PgConn::wait_result(std::chrono::steady_clock::time_point deadline) {
    PGconn *c = conn_.get();
    while (PQisBusy(c)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return false;
        pollfd pfd{PQsocket(c), POLLIN, 0};
        int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (rc < 0 && errno != EINTR)
            throw Error(PGFO_ERR_QUERY, label_ + ": poll failed");
        if (!PQconsumeInput(c))
            throw Error(PGFO_ERR_QUERY, label_ + ": " + trim_msg(PQerrorMessage(c)));
    }
    return true;
}

void PgConn::send_only(const std::string &sql) {
    PGconn *c = conn_.get();
    if (!c) throw Error(PGFO_ERR_CONNECT, label_ + ": the connection was closed after an earlier query got no answer");
    if (!PQsendQuery(c, sql.c_str()) || PQflush(c) != 0)
        throw Error(PGFO_ERR_QUERY, label_ + ": " + trim_msg(PQerrorMessage(c)));
}

std::optional<std::string> PgConn::scalar(const std::string &sql,
                                          const std::vector<std::string> &params, double timeout) {
    auto rows = query(sql, params, timeout);
    if (rows.empty() || rows[0].empty()) return std::nullopt;
    return rows[0][0];
}

} // namespace pgfo
