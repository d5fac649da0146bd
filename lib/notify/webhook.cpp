#include "notify/webhook.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/json_text.h"

namespace pgfo::notify {

std::string hmac_sha256_hex(const std::string &key, const std::string &data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char *>(data.data()), data.size(), md, &len))
        return "";
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string signature(const std::string &secret, int64_t timestamp, const std::string &body) {
    return "sha256=" + hmac_sha256_hex(secret, std::to_string(timestamp) + "." + body);
}

bool event_selected(const std::vector<std::string> &filters, const std::string &event) {
    if (filters.empty()) return true;
    for (const auto &f : filters) {
        if (f == "*" || f == event) return true;
        if (f.size() > 2 && f.compare(f.size() - 2, 2, ".*") == 0) {
            // "step.*" matches "step.started", not "steps.x" nor "step" itself.
            std::string prefix = f.substr(0, f.size() - 1);
            if (event.size() > prefix.size() && event.compare(0, prefix.size(), prefix) == 0) return true;
        }
    }
    return false;
}

double backoff_ceiling(double initial, int attempt, double cap) {
    if (attempt < 1) attempt = 1;
    double c = initial * std::ldexp(1.0, std::min(attempt - 1, 60));
    return std::min(cap, c);
}

double backoff_delay(double initial, int attempt, double unit_random, double cap) {
    double u = std::clamp(unit_random, 0.0, 1.0);
    return u * backoff_ceiling(initial, attempt, cap);
}

namespace {

std::string text_of(const nlohmann::json &j, const char *key) {
    auto it = j.find(key);
    if (it == j.end()) return "";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_null()) return "";
    return to_json_text(*it);
}

std::string node_text(const nlohmann::json &n) {
    if (!n.is_object()) return to_json_text(n);
    std::string s = text_of(n, "id") + " (" + text_of(n, "host");
    if (n.contains("port")) s += ":" + text_of(n, "port");
    return s + ")";
}

} // namespace

std::string slack_text(const nlohmann::json &ev) {
    std::string sev = text_of(ev, "severity");
    std::string line = "[" + text_of(ev, "cluster") + "] ";
    if (!sev.empty() && sev != "info") {
        std::string up = sev;
        std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        line += up + " ";
    }
    line += text_of(ev, "event");
    if (ev.contains("step")) line += " " + text_of(ev, "step");
    if (ev.contains("duration_s")) {
        char buf[48];
        double d = ev["duration_s"].is_number() ? ev["duration_s"].get<double>() : 0.0;
        std::snprintf(buf, sizeof buf, " in %.3f s", d);
        line += buf;
    }
    for (const char *k : {"error", "message", "summary", "description"}) {
        std::string t = text_of(ev, k);
        if (!t.empty()) {
            line += ": " + t;
            break;
        }
    }
    if (ev.contains("before") && ev.contains("after") && text_of(ev, "event") == "sync.changed")
        line += " ('" + text_of(ev, "before") + "' -> '" + text_of(ev, "after") + "')";
    if (ev.contains("nodes") && ev["nodes"].is_object() && !ev["nodes"].empty()) {
        std::string nodes;
        for (auto &[role, n] : ev["nodes"].items()) nodes += (nodes.empty() ? "" : ", ") + role + " " + node_text(n);
        line += " [" + nodes + "]";
    }
    line += " (run " + text_of(ev, "run_id") + " #" + text_of(ev, "seq") + ", " + text_of(ev, "hostname") + ")";

    std::string out;
    for (char c : line) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '\n' || c == '\r' || c == '\t') out += ' ';
        else out += c;
    }
    return out;
}

std::string request_body(WebhookFormat format, const nlohmann::json &event) {
    if (format == WebhookFormat::Slack) return to_json_text(nlohmann::json{{"text", slack_text(event)}});
    return to_json_text(event);
}

} // namespace pgfo::notify
