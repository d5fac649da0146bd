// The table of pgfailover.conf keys (keys.h). Adding a key: a field in
// config.h with its default, a row here, and its entry in
// docs/man/pgfailover.conf.5 and conf/pgfailover.conf (test_config_keys
// fails until both have it).
#include "config/keys.h"

#include "core/text.h"

namespace pgfo {
namespace {

using T = KeyType;
using S = Section;

constexpr KeyRange kNoRange{};
constexpr KeyRange kTimeoutRange{0.1, 86400, "0.1..86400"};
constexpr KeyRange kPollRange{0.005, 10, "0.005..10"};
constexpr KeyRange kConnectRange{1, 3600, "1..3600"};
constexpr KeyRange kBudgetRange{0, 3600, "0..3600"};
constexpr KeyRange kHookTimeoutRange{0.1, 600, "0.1..600"};
constexpr KeyRange kBackoffRange{0.01, 30, "0.01..30"};
constexpr KeyRange kRetriesRange{0, 100, "0..100"};
constexpr KeyRange kBacklogRange{0, 9999999, "0..9999999"};

const std::vector<const char *> kOffOn = {"off", "on"};
const std::vector<const char *> kSslModes = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

#define CFG(member) [](KeyTarget &t, const KeyValue &v) { t.cfg.member = v.text; }
#define NUM(member) [](KeyTarget &t, const KeyValue &v) { t.cfg.member = v.number; }

const std::vector<KeySpec> kKeys = {
    // [general]
    {S::General, "cluster_name", T::ClusterName, "pgfailover", kNoRange, {}, false, nullptr,
     "name of this cluster, in the lock file name, logs and events", CFG(cluster_name)},
    {S::General, "pgpool_conf", T::Path, "", kNoRange, {}, true, nullptr,
     "pgpool.conf to take the node list (backend_*N) from", CFG(pgpool_conf)},
    {S::General, "log_file", T::Path, "", kNoRange, {}, true, nullptr,
     "log file in addition to standard error", CFG(log_file)},
    {S::General, "log_level", T::Choice, "info", kNoRange, {"debug", "info", "warning", "error"}, false, nullptr,
     "least severe level logged", CFG(log_level)},
    {S::General, "lock_file", T::Path, "", kNoRange, {}, true, nullptr,
     "lock file; empty: <spool_directory>/<cluster_name>.lock", CFG(lock_file)},
    {S::General, "spool_directory", T::Path, "/var/spool/pgfailover", kNoRange, {}, false, nullptr,
     "undelivered webhook events, and the default lock file", CFG(spool_directory)},
    {S::General, "delivery_budget", T::Seconds, "5", kBudgetRange, {}, false, nullptr,
     "seconds to wait for webhook deliveries at exit", NUM(delivery_budget)},

    // [connection]
    {S::Connection, "user", T::RoleName, "", kNoRange, {}, true, nullptr,
     "libpq user (a superuser); empty: libpq's default", CFG(user)},
    {S::Connection, "dbname", T::Text, "postgres", kNoRange, {}, false, nullptr,
     "database to connect to", CFG(dbname)},
    {S::Connection, "passfile", T::Path, "", kNoRange, {}, true, nullptr,
     "libpq password file", CFG(passfile)},
    {S::Connection, "sslmode", T::Choice, "", kNoRange, kSslModes, true, nullptr,
     "libpq sslmode; empty: libpq's default", CFG(sslmode)},
    {S::Connection, "connect_timeout", T::Seconds, "3", kConnectRange, {}, false, nullptr,
     "seconds to connect (also the TCP keepalive timing)", NUM(connect_timeout)},

    // [timeouts]
    {S::Timeouts, "shutdown", T::Seconds, "60", kTimeoutRange, {}, false, nullptr,
     "the old primary down", NUM(shutdown_timeout)},
    {S::Timeouts, "catchup", T::Seconds, "30", kTimeoutRange, {}, false, nullptr,
     "the candidate flushed past the shutdown checkpoint", NUM(catchup_timeout)},
    {S::Timeouts, "promote", T::Seconds, "60", kTimeoutRange, {}, false, nullptr,
     "promotion done and the new primary writable", NUM(promote_timeout)},
    {S::Timeouts, "command", T::Seconds, "30", kTimeoutRange, {}, false, nullptr,
     "any one command on a node (pg_ctl, ssh, a query)", NUM(command_timeout)},
    {S::Timeouts, "lock", T::Seconds, "30", kTimeoutRange, {}, false, nullptr,
     "waiting for another run's lock", NUM(lock_timeout)},
    {S::Timeouts, "poll_interval", T::Seconds, "0.02", kPollRange, {}, false, nullptr,
     "pause between two checks while waiting", NUM(poll_interval)},
    {S::Timeouts, "follow", T::Seconds, "120", kTimeoutRange, {}, false, nullptr,
     "follow-primary: the node streaming and caught up", NUM(follow_timeout)},
    {S::Timeouts, "rewind", T::Seconds, "600", kTimeoutRange, {}, false, nullptr,
     "pg_rewind", NUM(rewind_timeout)},
    {S::Timeouts, "unreachable", T::Seconds, "5", kTimeoutRange, {}, false, nullptr,
     "failures of a probe or read lasting this long are a fact", NUM(unreachable_timeout)},
    {S::Timeouts, "postmaster_exit", T::Seconds, "300", kTimeoutRange, {}, false, nullptr,
     "follow-primary: a postmaster outliving its shutdown checkpoint", NUM(postmaster_exit_timeout)},
    {S::Timeouts, "fence", T::Seconds, "30", kTimeoutRange, {}, false, nullptr,
     "the [fencing] command, start to exit", NUM(fence_timeout)},

    // [fencing]
    {S::Fencing, "command", T::Command, "", kNoRange, {}, true, nullptr,
     "program and arguments that fence the old primary (on_unclean = fence)",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.fence_command = v.list; }},

    // [policy]
    {S::Policy, "on_unclean", T::Choice, "promote", kNoRange, {"promote", "abort", "fence"}, false, nullptr,
     "safety not provable: promote anyway, abort, or fence first",
     [](KeyTarget &t, const KeyValue &v) {
         t.cfg.on_unclean = v.text == "abort" ? OnUnclean::Abort : v.text == "fence" ? OnUnclean::Fence : OnUnclean::Promote;
     }},
    {S::Policy, "on_running", T::Choice, "stop", kNoRange, {"stop", "refuse"}, false, nullptr,
     "the old primary still up: stop it, or refuse",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.on_running = v.text == "refuse" ? OnRunning::Refuse : OnRunning::Stop; }},
    {S::Policy, "sync_standby_names", T::Choice, "adapt", kNoRange, {"adapt", "keep", "async"}, false, nullptr,
     "synchronous_standby_names on the new primary",
     [](KeyTarget &t, const KeyValue &v) {
         t.cfg.sync_policy = v.text == "keep" ? SyncPolicy::Keep : v.text == "async" ? SyncPolicy::Async : SyncPolicy::Adapt;
     }},
    {S::Policy, "rewind", T::Choice, "never", kNoRange, {"never", "auto"}, false, nullptr,
     "a node past the switch point: leave it down, or pg_rewind it",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.rewind = v.text == "auto" ? RewindPolicy::Auto : RewindPolicy::Never; }},
    {S::Policy, "replication_slots", T::Choice, "off", kNoRange, kOffOn, false, nullptr,
     "a physical slot per follower on the new primary",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.replication_slots = v.text == "on"; }},
    {S::Policy, "on_better_candidate", T::Choice, "continue", kNoRange, {"continue", "refuse"}, false, nullptr,
     "another standby has more WAL than pgpool's candidate",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.refuse_better_candidate = v.text == "refuse"; }},
    {S::Policy, "on_slots_not_ready", T::Choice, "promote", kNoRange, {"promote", "refuse"}, false, nullptr,
     "PostgreSQL 17+: a failover slot not ready on the candidate",
     [](KeyTarget &t, const KeyValue &v) {
         t.cfg.on_slots_not_ready = v.text == "refuse" ? OnSlotsNotReady::Refuse : OnSlotsNotReady::Promote;
     }},

    // [replication]
    {S::Replication, "user", T::RoleName, "", kNoRange, {}, true, nullptr,
     "primary_conninfo user; empty: [connection] user", CFG(repl_user)},
    {S::Replication, "passfile", T::Path, "", kNoRange, {}, true, nullptr,
     "primary_conninfo passfile; empty: [connection] passfile", CFG(repl_passfile)},
    {S::Replication, "sslmode", T::Choice, "", kNoRange, kSslModes, true, nullptr,
     "primary_conninfo sslmode; empty: [connection] sslmode", CFG(repl_sslmode)},
    {S::Replication, "synchronous_standby_names", T::SyncNames, "", kNoRange, {}, true, nullptr,
     "the setting follow-primary restores once nodes stream", CFG(sync_standby_names_target)},
    {S::Replication, "sync_replication_slots", T::Choice, "off", kNoRange, kOffOn, false, nullptr,
     "PostgreSQL 17+: followers keep synced copies of failover slots",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.sync_replication_slots = v.text == "on"; }},

    // [pcp]
    {S::Pcp, "host", T::PcpHost, nullptr, kNoRange, {}, false, nullptr,
     "pgpool's PCP host; unset: no pcp_attach_node", CFG(pcp_host)},
    {S::Pcp, "port", T::Port, "9898", kNoRange, {}, false, nullptr,
     "pgpool's PCP port", [](KeyTarget &t, const KeyValue &v) { t.cfg.pcp_port = static_cast<int>(v.integer); }},
    {S::Pcp, "user", T::PcpUser, "", kNoRange, {}, true, nullptr,
     "PCP user; empty: the current user", CFG(pcp_user)},
    {S::Pcp, "passfile", T::Path, "", kNoRange, {}, true, nullptr,
     "PCPPASSFILE for pcp_attach_node", CFG(pcp_passfile)},
    {S::Pcp, "bin_directory", T::Path, nullptr, kNoRange, {}, false, nullptr,
     "where pcp_attach_node lives; unset: PATH", CFG(pcp_bin_directory)},

    // [switchover]
    {S::Switchover, "max_lag", T::LagLimit, "64MB", kNoRange, {}, false, nullptr,
     "the target's replay lag: a size, a time, or off",
     [](KeyTarget &t, const KeyValue &v) {
         t.cfg.max_lag = v.text;
         t.cfg.max_lag_bytes = v.bytes;
         t.cfg.max_lag_seconds = v.secs;
     }},
    {S::Switchover, "max_archive_backlog", T::Count, "32", kBacklogRange, {"off"}, false, "WAL files",
     "WAL files the archiver has still to archive, or off",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.max_archive_backlog = static_cast<int>(v.integer); }},
    {S::Switchover, "checkpoint", T::Choice, "twice", kNoRange, {"off", "once", "twice"}, false, nullptr,
     "CHECKPOINTs on the primary before it is stopped",
     [](KeyTarget &t, const KeyValue &v) {
         t.cfg.pre_checkpoint = v.text == "off" ? PreCheckpoint::Off : v.text == "once" ? PreCheckpoint::Once : PreCheckpoint::Twice;
     }},
    {S::Switchover, "pgpool", T::Choice, "auto", kNoRange, {"auto", "off"}, false, nullptr,
     "with [pcp]: through pcp_promote_node --switchover, or around pgpool",
     [](KeyTarget &t, const KeyValue &v) { t.cfg.switchover_via_pgpool = v.text == "auto"; }},

    // [node.N]
    {S::Node, "host", T::Host, nullptr, kNoRange, {}, false, nullptr,
     "required (here or in pgpool.conf): host as pgpool knows it",
     [](KeyTarget &t, const KeyValue &v) { t.node->host = v.text; }},
    {S::Node, "port", T::Port, "5432", kNoRange, {}, false, nullptr,
     "port as pgpool knows it", [](KeyTarget &t, const KeyValue &v) { t.node->port = static_cast<int>(v.integer); }},
    {S::Node, "data_directory", T::ServerPath, nullptr, kNoRange, {}, false, nullptr,
     "the data directory on that host (required for the old primary checks)",
     [](KeyTarget &t, const KeyValue &v) { t.node->data_directory = v.text; }},
    {S::Node, "bin_directory", T::ServerPath, "", kNoRange, {}, true, nullptr,
     "where pg_ctl lives on that host; empty: PATH",
     [](KeyTarget &t, const KeyValue &v) { t.node->bin_directory = v.text; }},
    {S::Node, "application_name", T::AppName, "", kNoRange, {}, true, nullptr,
     "its application_name in primary_conninfo; empty: node<N>",
     [](KeyTarget &t, const KeyValue &v) { t.node->application_name = v.text; }},
    {S::Node, "access", T::Choice, "local", kNoRange, {"local", "ssh"}, false, nullptr,
     "how pgfailover reaches the node's host",
     [](KeyTarget &t, const KeyValue &v) { t.node->access = v.text == "ssh" ? Access::Ssh : Access::Local; }},
    {S::Node, "ssh_user", T::SshUser, "", kNoRange, {}, true, nullptr,
     "access = ssh: the remote user; empty: the current user",
     [](KeyTarget &t, const KeyValue &v) { t.node->ssh_user = v.text; }},
    {S::Node, "ssh_port", T::Port, "22", kNoRange, {}, false, nullptr,
     "access = ssh: the port", [](KeyTarget &t, const KeyValue &v) { t.node->ssh_port = static_cast<int>(v.integer); }},
    {S::Node, "ssh_options", T::SshOptions, "", kNoRange, {}, true, nullptr,
     "access = ssh: extra ssh arguments, split on white space",
     [](KeyTarget &t, const KeyValue &v) { t.node->ssh_options = v.list; }},

    // [webhook.NAME]
    {S::Webhook, "url", T::Url, nullptr, kNoRange, {}, false, nullptr,
     "required: the http:// or https:// endpoint",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->url = v.text; }},
    {S::Webhook, "events", T::Events, nullptr, kNoRange, {}, false, nullptr,
     "which events (names, prefixes like step.*, *); unset: every event",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->events = v.list; }},
    {S::Webhook, "timeout", T::Seconds, "5", kHookTimeoutRange, {}, false, nullptr,
     "seconds per attempt, connection included", [](KeyTarget &t, const KeyValue &v) { t.webhook->timeout = v.number; }},
    {S::Webhook, "retries", T::Count, "3", kRetriesRange, {}, false, "retries",
     "further attempts after a failed one",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->retries = static_cast<int>(v.integer); }},
    {S::Webhook, "backoff", T::Seconds, "1", kBackoffRange, {}, false, nullptr,
     "seconds before the first retry (doubles, full jitter)",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->backoff = v.number; }},
    {S::Webhook, "format", T::Choice, "json", kNoRange, {"json", "slack"}, false, nullptr,
     "the event object, or {\"text\": ...} for Slack and Mattermost",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->format = v.text == "slack" ? WebhookFormat::Slack : WebhookFormat::Json; }},
    {S::Webhook, "secret", T::Secret, nullptr, kNoRange, {}, false, nullptr,
     "the HMAC-SHA256 key itself (prefer secret_file)",
     [](KeyTarget &t, const KeyValue &v) {
         t.webhook->secret = v.text;
         t.webhook->secret_inline = true;
     }},
    {S::Webhook, "secret_file", T::SecretFile, nullptr, kNoRange, {}, false, nullptr,
     "a file only its owner can access, holding the HMAC-SHA256 key",
     [](KeyTarget &t, const KeyValue &v) {
         t.webhook->secret = v.data;
         t.webhook->secret_file = v.text;
     }},
    {S::Webhook, "ca_file", T::Path, "", kNoRange, {}, true, nullptr,
     "CA certificates (PEM) for https; empty: the system's",
     [](KeyTarget &t, const KeyValue &v) { t.webhook->ca_file = v.text; }},
};

#undef CFG
#undef NUM

struct SectionInfo {
    Section section;
    const char *name;
    const char *shown; // in the list of known sections
};
const SectionInfo kSections[] = {
    {S::General, "general", "[general]"},         {S::Connection, "connection", "[connection]"},
    {S::Timeouts, "timeouts", "[timeouts]"},      {S::Policy, "policy", "[policy]"},
    {S::Replication, "replication", "[replication]"}, {S::Pcp, "pcp", "[pcp]"},
    {S::Fencing, "fencing", "[fencing]"},         {S::Switchover, "switchover", "[switchover]"},
    {S::Node, "node.N", "[node.N] (N = 0..127)"}, {S::Webhook, "webhook.NAME", "[webhook.NAME]"},
};

} // namespace

const std::vector<KeySpec> &config_keys() { return kKeys; }

int node_section_id(const std::string &section) {
    if (section.compare(0, 5, "node.") != 0) return -1;
    std::string n = section.substr(5);
    if (n.empty() || n.size() > 3) return -2;
    for (char c : n)
        if (c < '0' || c > '9') return -2;
    if (n.size() > 1 && n[0] == '0') return -2;
    int id = std::stoi(n);
    return id <= 127 ? id : -2;
}

std::string webhook_section_name(const std::string &section) {
    if (section.compare(0, 8, "webhook.") != 0) return "";
    std::string n = section.substr(8);
    if (n.empty() || n.size() > 63) return "?";
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return "?";
    return n;
}

bool section_of(const std::string &name, Section &out) {
    for (const auto &s : kSections)
        if (s.section != S::Node && s.section != S::Webhook && name == s.name) {
            out = s.section;
            return true;
        }
    if (node_section_id(name) >= 0) {
        out = S::Node;
        return true;
    }
    std::string hook = webhook_section_name(name);
    if (!hook.empty() && hook != "?") {
        out = S::Webhook;
        return true;
    }
    return false;
}

const char *section_name(Section s) {
    for (const auto &i : kSections)
        if (i.section == s) return i.name;
    return "?";
}

std::string known_sections() {
    std::vector<std::string> shown;
    for (const auto &s : kSections) shown.push_back(s.shown);
    return join(shown);
}

const KeySpec *find_key(Section section, const std::string &key) {
    for (const auto &k : kKeys)
        if (k.section == section && key == k.key) return &k;
    return nullptr;
}

std::vector<std::string> section_keys(Section section) {
    std::vector<std::string> out;
    for (const auto &k : kKeys)
        if (k.section == section) out.push_back(k.key);
    return out;
}

const char *key_type_name(KeyType t) {
    switch (t) {
    case T::Seconds: return "seconds";
    case T::Port: return "port";
    case T::Count: return "count";
    case T::Choice: return "choice";
    case T::Text: return "text";
    case T::Path: return "path";
    case T::ServerPath: return "server path";
    case T::Host: return "host";
    case T::PcpHost: return "host";
    case T::PcpUser: return "user name";
    case T::SshUser: return "user name";
    case T::RoleName: return "role name";
    case T::ClusterName: return "cluster name";
    case T::AppName: return "application name";
    case T::SshOptions: return "ssh options";
    case T::Command: return "command";
    case T::LagLimit: return "lag limit";
    case T::SyncNames: return "synchronous_standby_names";
    case T::Url: return "url";
    case T::Events: return "event filters";
    case T::Secret: return "secret";
    case T::SecretFile: return "path";
    }
    return "?";
}

} // namespace pgfo
