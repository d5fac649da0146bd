// pgfailover's configuration: an INI file read with inih, validated into a
// plain struct. Every error names file, line, section and key, and what is allowed.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pgfo {

enum class Access { Local, Ssh };
enum class OnUnclean { Promote, Abort, Fence }; // old primary crashed / unreachable / catch-up timed out
enum class OnRunning { Stop, Refuse };        // old primary still up and healthy
enum class SyncPolicy { Adapt, Keep, Async }; // synchronous_standby_names on the new primary
enum class RewindPolicy { Never, Auto };      // a node that cannot follow without pg_rewind
enum class WebhookFormat { Json, Slack };      // the event object, or {"text": "..."} (Slack, Mattermost)
enum class OnSlotsNotReady { Promote, Refuse }; // a failover slot not ready on the candidate (PostgreSQL 17+)
enum class PreCheckpoint { Off, Once, Twice }; // CHECKPOINTs a switchover runs before it stops the primary

struct Node {
    int id = -1;
    std::string host;             // required (from config or pgpool.conf)
    int port = 5432;
    std::string data_directory;   // required for the old-primary checks
    std::string bin_directory;    // where pg_ctl lives; "" = find it on PATH
    std::string application_name; // as configured; "" = node<id>: use app_name() for the effective one
    Access access = Access::Local;
    std::string ssh_user;         // "" = the current user
    int ssh_port = 22;
    std::vector<std::string> ssh_options; // extra ssh arguments, split on white space
    std::string origin;           // "pgfailover.conf:42" or "pgpool.conf:17", for messages

    // The name the node uses in primary_conninfo, pg_stat_replication and
    // synchronous_standby_names: application_name, or node<id> when unset.
    std::string app_name() const { return application_name.empty() ? "node" + std::to_string(id) : application_name; }
};

// [webhook.NAME]: an HTTP(S) endpoint that receives events (lib/notify).
struct Webhook {
    std::string name;             // NAME of [webhook.NAME]
    std::string url;              // http:// or https:// (required); may hold user:pass@, never logged
    std::vector<std::string> events; // filters: "failover.succeeded", "step.*", "*"; empty = every event
    double timeout = 5;           // seconds per attempt (connect + request + response)
    int retries = 3;              // further attempts after a failed one
    double backoff = 1;           // seconds before the first retry; doubles, full jitter, capped
    WebhookFormat format = WebhookFormat::Json;
    std::string secret;           // HMAC-SHA256 key (from `secret` or `secret_file`); never logged
    std::string secret_file;      // where the secret came from, if from a file
    bool secret_inline = false;   // `secret` was set in the file itself
    std::string ca_file;          // CA bundle for https ("" = the system's)
    std::string origin;           // "pgfailover.conf:42", for messages
};

struct Config {
    std::string path;                      // file it was loaded from ("" if none)
    std::vector<std::string> warnings;     // what load_config found doubtful but accepted (for the log)

    // [general]
    std::string cluster_name = "pgfailover";
    std::string pgpool_conf;               // take nodes from this pgpool.conf
    std::string log_file;                  // "" = no file
    std::string log_level = "info";        // debug, info, warning, error
    std::string lock_file;                 // "" = <spool_directory>/<cluster_name>.lock
    std::string spool_directory = "/var/spool/pgfailover"; // undelivered webhook events
    double delivery_budget = 5;            // seconds to wait for webhook deliveries at exit

    // [connection] (libpq; no password here: use passfile)
    std::string user;                      // "" = libpq default
    std::string dbname = "postgres";
    std::string passfile;
    std::string sslmode;                   // "" = libpq default
    double connect_timeout = 3;            // seconds, >= 1 (libpq rounds to seconds)

    // [timeouts] seconds
    double shutdown_timeout = 60;          // old primary down
    double catchup_timeout = 30;           // candidate flushed past the checkpoint
    double promote_timeout = 60;           // promotion done and writable
    double command_timeout = 30;           // any one command on a node (pg_ctl, ssh)
    double lock_timeout = 30;              // waiting for another run's lock
    double poll_interval = 0.02;           // between checks while waiting
    // A failing probe or read of a node's files (ssh exit 255, a torn read)
    // is retried; only failures lasting this long count as a fact: the host
    // is unreachable, or the file cannot be read.
    double unreachable_timeout = 5;
    // follow-primary: a node whose shutdown checkpoint is written but whose
    // postmaster still runs (archiver backlog, walsenders) is waited for this long.
    double postmaster_exit_timeout = 300;
    double fence_timeout = 30;             // [fencing] command, start to exit

    // [policy]
    OnUnclean on_unclean = OnUnclean::Promote;
    OnRunning on_running = OnRunning::Stop;
    SyncPolicy sync_policy = SyncPolicy::Adapt;
    RewindPolicy rewind = RewindPolicy::Never;
    bool refuse_better_candidate = false;  // another standby has more WAL than pgpool's candidate
    bool replication_slots = false;        // create/use a physical slot per follower
    // A logical failover slot (PostgreSQL 17+) is not synced, invalidated or
    // behind on the candidate: promote anyway (and say which), or refuse.
    OnSlotsNotReady on_slots_not_ready = OnSlotsNotReady::Promote;

    // [replication] how a follower connects to its primary (primary_conninfo)
    std::string repl_user;                 // "" = [connection] user
    std::string repl_passfile;             // "" = [connection] passfile
    std::string repl_sslmode;              // "" = [connection] sslmode
    // The synchronous_standby_names the cluster should have when every node
    // is back; follow-primary restores it, naming only standbys that stream.
    // "" = nothing to restore.
    std::string sync_standby_names_target;
    // A follower (PostgreSQL 17+) synchronizes logical failover slots from
    // its primary: sync_replication_slots and hot_standby_feedback turned on
    // there (needs replication_slots = on: slot sync requires primary_slot_name).
    bool sync_replication_slots = false;

    // [pcp] pgpool's PCP, to attach a node that follows again ("" host: off)
    std::string pcp_host;
    int pcp_port = 9898;
    std::string pcp_user;                  // "" = the current user
    std::string pcp_passfile;              // PCPPASSFILE for pcp_attach_node
    std::string pcp_bin_directory;         // where pcp_attach_node lives ("" = PATH)

    // [timeouts] for bringing nodes back
    double follow_timeout = 120;           // a follower streaming and caught up
    double rewind_timeout = 600;           // pg_rewind

    // [fencing] command: an absolute path and its arguments, split on white
    // space, run as an argument vector (never through a shell) with the
    // placeholders %d %h %p %D %r %% replaced (lib/steps/fence.h). Empty: none.
    std::vector<std::string> fence_command;
    // [switchover] gates checked before any downtime, and the checkpoint before the stop
    std::string max_lag = "64MB";          // as written: a size (16MB), a time (5s) or off
    long long max_lag_bytes = 64LL << 20;  // -1: no limit in bytes
    double max_lag_seconds = -1;           // -1: no limit in time
    int max_archive_backlog = 32;          // WAL files waiting for archive_command; -1: no limit
    PreCheckpoint pre_checkpoint = PreCheckpoint::Twice;
    // auto: with [pcp] host set, through pgpool (pcp_promote_node --switchover
    // runs pgpool's hooks); off: around pgpool, as without [pcp]
    bool switchover_via_pgpool = true;

    // [node.N]
    std::map<int, Node> nodes;

    // [webhook.NAME]
    std::map<std::string, Webhook> webhooks;
};

// Read and validate a file. Throws pgfo::Error(PGFO_ERR_CONFIG, "FILE:LINE: [sec] key: ...").
// A node missing host/port/data_directory/application_name is completed from
// pgpool_conf when that is set; nodes only in pgpool.conf are added.
Config load_config(const std::string &path);

// Set one key as the file would. `where` prefixes error messages ("FILE:LINE"
// or "option"). Throws pgfo::Error(PGFO_ERR_CONFIG).
void apply_setting(Config &cfg, const std::string &section, const std::string &key,
                   const std::string &value, const std::string &where);

// Checks across keys (every node has a host, ports in range, ...), after all
// settings are applied. Throws pgfo::Error(PGFO_ERR_CONFIG).
void validate_config(const Config &cfg);

// The path used when none is given: $PGFAILOVER_CONFIG, else the default.
std::string default_config_path();
constexpr const char *kDefaultConfigPath = "/etc/pgfailover/pgfailover.conf";
constexpr const char *kConfigEnvVar = "PGFAILOVER_CONFIG";

// Why `path` cannot be a node's data_directory or bin_directory, "" when it
// can: absolute, no control characters, none of ` $ " \ (pg_ctl start passes
// it through /bin/sh in double quotes). Every source of such a path gets this
// one check: the configuration, pgpool.conf, pgpool's %D / %R.
std::string server_path_problem(const std::string &path);

// Lock file path: lock_file, or <spool_directory>/<cluster_name>.lock (a
// directory of the service user's, never a shared one like /tmp).
std::string lock_file_path(const Config &cfg);

} // namespace pgfo
