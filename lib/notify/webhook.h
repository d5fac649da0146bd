// Webhook building blocks without I/O: request signatures, event filters,
// URL redaction for logs, retry backoff and the Slack/Mattermost text form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "config/webhook_values.h"

namespace pgfo::notify {

// Lower-case hex HMAC-SHA256 of `data` under `key` (OpenSSL).
std::string hmac_sha256_hex(const std::string &key, const std::string &data);

// The X-Pgfailover-Signature value: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body).
std::string signature(const std::string &secret, int64_t timestamp, const std::string &body);

// valid_event_filter() and redact_url() (config/webhook_values.h): the
// configuration checks and shows webhook values with them too.
using pgfo::valid_event_filter;
using pgfo::redact_url;
// Whether `event` passes `filters` (an empty list passes everything).
bool event_selected(const std::vector<std::string> &filters, const std::string &event);

// Retry waits: "full jitter" over an exponential ceiling. Before retry
// `attempt` (1, 2, ...) the ceiling is min(cap, initial * 2^(attempt-1)) and the
// wait is unit_random * ceiling, unit_random in [0, 1).
constexpr double kBackoffCap = 30.0;
double backoff_ceiling(double initial, int attempt, double cap = kBackoffCap);
double backoff_delay(double initial, int attempt, double unit_random, double cap = kBackoffCap);

// One readable line for chat: "[cluster] WARNING failover.needs_rewind: ...".
// &, < and > are escaped as Slack requires (Mattermost renders them the same).
std::string slack_text(const nlohmann::json &event);

// The HTTP body for an endpoint: the event itself (json) or {"text": ...} (slack).
std::string request_body(WebhookFormat format, const nlohmann::json &event);

} // namespace pgfo::notify
