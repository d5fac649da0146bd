// libpq: connections with deadlines, queries with parameters, ping.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "pgfailover.h"

namespace pgfo {

using Row = std::vector<std::optional<std::string>>;

class PgConn {
public:
    // Connect to a node with the [connection] settings. Throws
    // pgfo::Error(PGFO_ERR_CONNECT) with libpq's message and the node named.
    static PgConn open(const Node &node, const Config &cfg);

    PgConn(PgConn &&) noexcept = default;
    PgConn &operator=(PgConn &&) noexcept = default;

    // Run one statement with text parameters; every query has a deadline
    // (timeout seconds): past it the query is cancelled and
    // pgfo::Error(PGFO_ERR_TIMEOUT) thrown. The cancel and its answer get
    // [connection] connect_timeout more; without an answer by then the
    // connection is closed (later queries on it: PGFO_ERR_CONNECT), so a
    // query never costs more than timeout + connect_timeout. Errors:
    // PGFO_ERR_QUERY. The deadline has no default: every caller names it
    // (a step's timeout, [timeouts] command); one that is not a positive
    // number of seconds is refused (PGFO_ERR_INTERNAL) before anything is sent.
    std::vector<Row> query(const std::string &sql, const std::vector<std::string> &params, double timeout);
    // Send one statement and return without waiting for its result: for
    // work the server finishes on its own (CHECKPOINT). Only close() or
    // destruction may follow on this connection.
    void send_only(const std::string &sql);
    // First column of the first row (nullopt for NULL or no row).
    std::optional<std::string> scalar(const std::string &sql, const std::vector<std::string> &params,
                                      double timeout);
    // Quote a string literal for SQL that takes no parameters (ALTER SYSTEM).
    std::string literal(const std::string &value);

    int server_version() const; // e.g. 150018
    bool ok() const;
    const std::string &label() const { return label_; }
    // Notices the server sent during the last query.
    const std::vector<std::string> &notices() const { return *notices_; }

private:
    struct Deleter {
        void operator()(PGconn *c) const { PQfinish(c); }
    };
    PgConn(PGconn *c, std::string label, double cancel_grace);
    // Read input until a whole result is there (true) or the deadline passes.
    bool wait_result(std::chrono::steady_clock::time_point deadline);
    std::unique_ptr<PGconn, Deleter> conn_;
    std::string label_;
    std::unique_ptr<std::vector<std::string>> notices_;
    double cancel_grace_ = 3; // seconds for a cancel and its answer
};

// The TCP settings of every connection and ping (libpq keywords): the
// connect_timeout, tcp_user_timeout (ms) = [timeouts] command, keepalives
// after connect_timeout idle, 3 probes connect_timeout/3 apart.
std::vector<std::pair<std::string, std::string>> tcp_settings(const Config &cfg);

// pg_isready: PQpingParams with the node's address and the connect timeout.
pgfo_ping_t ping_node(const Node &node, const Config &cfg);
const char *ping_name(pgfo_ping_t p);

// "node 1 (127.0.0.1:5433)"
std::string node_label(const Node &node);

} // namespace pgfo
