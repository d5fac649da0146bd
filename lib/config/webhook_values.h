// Webhook values without I/O that both the configuration (checking
// [webhook.NAME] events, showing a url in a message) and lib/notify use.
#pragma once

#include <string>

namespace pgfo {

// A filter is "*", an event name ("failover.succeeded") or a prefix ending
// in ".*" ("step.*"). Names are lower-case letters, digits and '_', joined by dots.
bool valid_event_filter(const std::string &filter);

// The URL with any user:password@ replaced by "***@", for log lines.
std::string redact_url(const std::string &url);

} // namespace pgfo
