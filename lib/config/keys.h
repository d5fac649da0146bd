// Every key of pgfailover.conf, once: its section, the grammar of its value,
// its default, its range or allowed words, a line of documentation and where
// it goes in Config. The reader (config.cpp) takes from this table which keys
// exist in which section, how each value is checked and what the messages
// say; tests/unit/test_config_keys.cpp checks the man page and the sample
// file against it, and that each default is what Config{} holds.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgfo {

// In file order. Node is every [node.N], Webhook every [webhook.NAME].
enum class Section { General, Connection, Timeouts, Policy, Replication, Pcp, Fencing, Switchover, Node, Webhook };

// The grammar of a value (config.cpp checks each; messages say what is allowed).
enum class KeyType {
    Seconds,     // plain decimal seconds within `range`
    Port,        // 1..65535
    Count,       // a whole number within `range`, or "off" (-1) when `choices` has it
    Choice,      // one of `choices` ("" too when empty_ok)
    Text,        // anything without control characters ("" only when empty_ok)
    Path,        // an absolute path ("" when empty_ok)
    ServerPath,  // an absolute path pg_ctl may pass through a shell (server_path_problem)
    Host,        // a host name, IP address or socket directory, no shell metacharacters
    PcpHost,     // not empty, no leading '-'
    PcpUser,     // no leading '-'
    SshUser,     // no spaces, '@', control characters or leading '-'
    RoleName,    // a PostgreSQL role name: up to 63 bytes, no control characters
    ClusterName, // 1..63 of A-Z a-z 0-9 _ . -
    AppName,     // up to 63 bytes of printable ASCII
    SshOptions,  // ssh arguments split on white space, none that runs local code
    Command,     // an absolute path and arguments, placeholders %d %h %p %D %r %%
    LagLimit,    // a size (16MB), a time (5s) or off
    SyncNames,   // synchronous_standby_names as PostgreSQL parses it
    Url,         // http:// or https://; shown redacted
    Events,      // a comma list of event names and prefixes
    Secret,      // an HMAC key, never shown
    SecretFile,  // an absolute path of a file only its owner can access, holding the key
};

struct KeyRange {
    double min = 0, max = 0;
    const char *text = nullptr; // "0.1..86400"; nullptr: no range
};

// A value that passed its KeyType's check, in the forms the setters need.
struct KeyValue {
    std::string text;              // as written
    double number = 0;             // Seconds
    long long integer = 0;         // Port, Count (-1: off)
    std::vector<std::string> list; // SshOptions, Command, Events
    long long bytes = -1;          // LagLimit: -1 no limit in bytes
    double secs = -1;              // LagLimit: -1 no limit in time
    std::string data;              // SecretFile: the key read from the file
};

// What a setter stores into: node is set for [node.N], webhook for [webhook.NAME].
struct KeyTarget {
    Config &cfg;
    Node *node = nullptr;
    Webhook *webhook = nullptr;
};

struct KeySpec {
    Section section;
    const char *key;
    KeyType type;
    // The value Config{} holds, as it would be written; nullptr: no value of
    // its own (required, or unset means off). A test asserts that applying
    // it to a default Config changes nothing: defaults live in config.h.
    const char *def;
    KeyRange range;                   // Seconds, Count
    std::vector<const char *> choices; // Choice
    bool empty_ok;                    // Choice, Text, Path, ServerPath
    const char *noun;                 // Count: "retries" in "is not a number of retries"
    const char *doc;                  // one line
    void (*store)(KeyTarget &, const KeyValue &);
};

// The table, in file order (the order of "known keys" in messages).
const std::vector<KeySpec> &config_keys();

// "node.12" -> 12; -1 when the name is not a node section at all; -2 when it
// is "node.<something>" with a bad number (N must be 0..127, no leading zeros).
int node_section_id(const std::string &section);
// "webhook.ops" -> "ops"; "" when the name is not a webhook section; "?" when
// it is "webhook.<something>" with a bad name (1..63 of A-Z a-z 0-9 _ -).
std::string webhook_section_name(const std::string &section);

// "general" -> General, "node.3" -> Node, "webhook.ops" -> Webhook; false for
// anything else (bad node ids and webhook names included).
bool section_of(const std::string &name, Section &out);
// "general", "node.N", "webhook.NAME"
const char *section_name(Section s);
// "[general], [connection], ..., [node.N] (N = 0..127), [webhook.NAME]"
std::string known_sections();
// The row of `key` in `section`, nullptr when there is none.
const KeySpec *find_key(Section section, const std::string &key);
// The keys of a section, in table order.
std::vector<std::string> section_keys(Section section);
// "seconds", "port", ... (for listings).
const char *key_type_name(KeyType t);

} // namespace pgfo
