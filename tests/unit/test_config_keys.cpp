// The key table (lib/config/keys.h) against what depends on it: the
// defaults in config.h, the man page and the sample configuration.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/keys.h"
#include "core/error.h"
#include "core/text.h"

using namespace pgfo;

namespace {

std::string words(const std::vector<std::string> &v) { return join(v, " "); }

// Every field a key can set, as text: two configs with the same text agree.
std::string dump(const Node &n) {
    std::ostringstream o;
    o << n.host << '|' << n.port << '|' << n.data_directory << '|' << n.bin_directory << '|' << n.application_name
      << '|' << static_cast<int>(n.access) << '|' << n.ssh_user << '|' << n.ssh_port << '|' << words(n.ssh_options);
    return o.str();
}

std::string dump(const Webhook &w) {
    std::ostringstream o;
    o << w.url << '|' << words(w.events) << '|' << w.timeout << '|' << w.retries << '|' << w.backoff << '|'
      << static_cast<int>(w.format) << '|' << w.secret << '|' << w.secret_file << '|' << w.secret_inline << '|'
      << w.ca_file;
    return o.str();
}

std::string dump(const Config &c) {
    std::ostringstream o;
    o << c.cluster_name << '|' << c.pgpool_conf << '|' << c.log_file << '|' << c.log_level << '|' << c.lock_file
      << '|' << c.spool_directory << '|' << c.delivery_budget << '|' << c.user << '|' << c.dbname << '|'
      << c.passfile << '|' << c.sslmode << '|' << c.connect_timeout << '|' << c.shutdown_timeout << '|'
      << c.catchup_timeout << '|' << c.promote_timeout << '|' << c.command_timeout << '|' << c.lock_timeout << '|'
      << c.poll_interval << '|' << c.unreachable_timeout << '|' << c.postmaster_exit_timeout << '|'
      << c.fence_timeout << '|' << static_cast<int>(c.on_unclean) << '|' << static_cast<int>(c.on_running) << '|'
      << static_cast<int>(c.sync_policy) << '|' << static_cast<int>(c.rewind) << '|' << c.refuse_better_candidate
      << '|' << c.replication_slots << '|' << static_cast<int>(c.on_slots_not_ready) << '|' << c.repl_user << '|'
      << c.repl_passfile << '|' << c.repl_sslmode << '|' << c.sync_standby_names_target << '|'
      << c.sync_replication_slots << '|' << c.pcp_host << '|' << c.pcp_port << '|' << c.pcp_user << '|'
      << c.pcp_passfile << '|' << c.pcp_bin_directory << '|' << c.follow_timeout << '|' << c.rewind_timeout << '|'
      << words(c.fence_command) << '|' << c.max_lag << '|' << c.max_lag_bytes << '|' << c.max_lag_seconds << '|'
      << c.max_archive_backlog << '|' << static_cast<int>(c.pre_checkpoint) << '|' << c.switchover_via_pgpool;
    for (const auto &[id, n] : c.nodes) o << "|node" << id << ':' << dump(n);
    for (const auto &[name, w] : c.webhooks) o << "|webhook." << name << ':' << dump(w);
    return o.str();
}

// The section a row is written in, with a concrete node id / webhook name.
std::string concrete(Section s) {
    if (s == Section::Node) return "node.0";
    if (s == Section::Webhook) return "webhook.ops";
    return section_name(s);
}

// A default Config in which the row's section exists (a node, a webhook with its url).
Config with_section(Section s) {
    Config c;
    if (s == Section::Node) apply_setting(c, concrete(s), "port", "5432", "test");
    if (s == Section::Webhook) apply_setting(c, concrete(s), "url", "https://h/", "test");
    return c;
}

using KeysBySection = std::map<std::string, std::set<std::string>>;

KeysBySection table_keys() {
    KeysBySection out;
    for (const auto &k : config_keys()) out[section_name(k.section)].insert(k.key);
    return out;
}

std::vector<std::string> read_lines(const std::string &path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

// "node.0" -> "node.N", "webhook.ops" -> "webhook.NAME", "general" -> "general".
std::string section_kind(const std::string &name) {
    Section s;
    EXPECT_TRUE(section_of(name, s)) << "not a section of the table: [" << name << "]";
    return section_of(name, s) ? section_name(s) : "[" + name + "]";
}

// docs/man/pgfailover.conf.5: `.SH "[section]"`, then one `.TP` / `.B key` per key.
KeysBySection man_keys(const std::string &path) {
    KeysBySection out;
    std::string section;
    std::vector<std::string> lines = read_lines(path);
    static const std::regex sh(R"(^\.SH "\[(.*)\]"$)"), key(R"(^\.B ([a-z_]+)$)");
    std::smatch m;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind(".SH", 0) == 0) {
            section.clear();
            if (std::regex_match(lines[i], m, sh)) {
                std::string name = m[1];
                for (const char *italic : {"\\fI", "\\fP"})
                    for (size_t p; (p = name.find(italic)) != std::string::npos;) name.erase(p, 3);
                // "node.N" and "webhook.NAME" are written as the table names them
                section = name == "node.N" || name == "webhook.NAME" ? name : section_kind(name);
            }
        } else if (!section.empty() && lines[i] == ".TP" && i + 1 < lines.size() &&
                   std::regex_match(lines[i + 1], m, key)) {
            out[section].insert(m[1]);
        }
    }
    return out;
}

// The man page's "Default: X." (or ".B X" before "(default)") of each key
// that says one, by section and key.
std::map<std::pair<std::string, std::string>, std::string> man_defaults(const std::string &path) {
    std::map<std::pair<std::string, std::string>, std::string> out;
    std::vector<std::string> lines = read_lines(path);
    static const std::regex sh(R"(^\.SH "\[(.*)\]"$)"), key(R"(^\.B ([a-z_]+)$)"),
        macro(R"(^\.(B|BR|I|IR) )");
    auto first_word = [](std::string t) {
        t = std::regex_replace(t, macro, "");
        t = t.substr(0, t.find_first_of(" \t"));
        if (!t.empty() && t.back() == '.') t.pop_back();
        return t;
    };
    std::string section, current;
    std::smatch m;
    for (size_t i = 0; i < lines.size(); ++i) {
        const std::string &l = lines[i];
        if (l.rfind(".SH", 0) == 0) {
            section = std::regex_match(l, m, sh) ? std::regex_replace(std::string(m[1]), std::regex(R"(\\f[IP])"), "") : "";
            current.clear();
        } else if (l == ".TP" && i + 1 < lines.size() && std::regex_match(lines[i + 1], m, key)) {
            current = m[1];
            ++i;
        } else if (!section.empty() && !current.empty()) {
            size_t d = l.find("Default:");
            std::string word;
            if (d != std::string::npos) {
                std::string rest = l.substr(d + 8);
                rest.erase(0, rest.find_first_not_of(' '));
                word = first_word(rest.empty() && i + 1 < lines.size() ? lines[i + 1] : rest);
            } else if (l.find("(default)") != std::string::npos && i > 0) {
                word = first_word(lines[i - 1]);
            }
            if (!word.empty() && !out.count({section, current})) out[{section, current}] = word;
        }
    }
    return out;
}

// conf/pgfailover.conf: `[section]` or `;[section]`, then `key = value` or `;key = value`.
KeysBySection sample_keys(const std::string &path) {
    KeysBySection out;
    std::string section;
    static const std::regex sec(R"(^;?\[([^\]]+)\]$)"), key(R"(^;?([a-z_]+) = .*$)");
    std::smatch m;
    for (const auto &line : read_lines(path)) {
        if (std::regex_match(line, m, sec))
            section = section_kind(m[1]);
        else if (std::regex_match(line, m, key))
            out[section].insert(m[1]);
    }
    return out;
}

// What `doc` has and the table does not, and the reverse, section by section.
std::string drift(const KeysBySection &table, const KeysBySection &doc) {
    std::string out;
    std::set<std::string> sections;
    for (const auto &[s, _] : table) sections.insert(s);
    for (const auto &[s, _] : doc) sections.insert(s);
    for (const auto &s : sections) {
        static const std::set<std::string> none;
        const auto &t = table.count(s) ? table.at(s) : none;
        const auto &d = doc.count(s) ? doc.at(s) : none;
        for (const auto &k : t)
            if (!d.count(k)) out += "  [" + s + "] " + k + ": in the table, not documented\n";
        for (const auto &k : d)
            if (!t.count(k)) out += "  [" + s + "] " + k + ": documented, not in the table\n";
    }
    return out;
}

const std::string kSource = PGFO_SOURCE_DIR;

TEST(ConfigKeysTest, ManPageDocumentsExactlyTheTable) {
    const std::string path = kSource + "/docs/man/pgfailover.conf.5";
    KeysBySection doc = man_keys(path);
    EXPECT_GT(doc.size(), 5u);
    EXPECT_EQ(drift(table_keys(), doc), "") << path;
}

TEST(ConfigKeysTest, SampleConfigurationHasExactlyTheTable) {
    const std::string path = kSource + "/conf/pgfailover.conf";
    KeysBySection doc = sample_keys(path);
    EXPECT_GT(doc.size(), 5u);
    EXPECT_EQ(drift(table_keys(), doc), "") << path;
}

// Where the man page names a default, it is the table's.
TEST(ConfigKeysTest, ManPageDefaultsAreTheTables) {
    const std::string path = kSource + "/docs/man/pgfailover.conf.5";
    auto defaults = man_defaults(path);
    int compared = 0;
    std::string wrong;
    for (const auto &k : config_keys()) {
        auto it = defaults.find({section_name(k.section), k.key});
        if (!k.def || !*k.def || it == defaults.end()) continue; // "" defaults are described in words
        ++compared;
        if (it->second != k.def)
            wrong += std::string("  [") + section_name(k.section) + "] " + k.key + ": man page says " + it->second +
                     ", the default is " + k.def + "\n";
    }
    EXPECT_EQ(wrong, "") << path;
    EXPECT_GT(compared, 30);
}

// The drift check itself: a key missing on either side is named.
TEST(ConfigKeysTest, DriftNamesWhatDiffers) {
    KeysBySection table = {{"timeouts", {"fence", "lock"}}, {"node.N", {"host"}}};
    KeysBySection doc = {{"timeouts", {"lock", "fencing"}}, {"node.N", {"host"}}};
    EXPECT_EQ(drift(table, doc), "  [timeouts] fence: in the table, not documented\n"
                                 "  [timeouts] fencing: documented, not in the table\n");
    EXPECT_EQ(drift(table, table), "");
}

// Defaults live in config.h; the table's default is their written form.
TEST(ConfigKeysTest, TableDefaultsAreWhatConfigHolds) {
    int checked = 0;
    for (const auto &k : config_keys()) {
        if (!k.def) continue;
        const std::string sec = concrete(k.section);
        const Config fresh = with_section(k.section);
        Config set = fresh;
        try {
            apply_setting(set, sec, k.key, k.def, "test");
        } catch (const Error &e) {
            ADD_FAILURE() << "[" << sec << "] " << k.key << ": default '" << k.def << "' refused: " << e.what();
            continue;
        }
        EXPECT_EQ(dump(set), dump(fresh)) << "[" << sec << "] " << k.key << " = " << k.def
                                          << " is not what Config{} holds";
        ++checked;
    }
    EXPECT_GT(checked, 50);
}

// And a value other than the default does change the field the row names:
// every setter stores somewhere.
TEST(ConfigKeysTest, EveryRowStores) {
    for (const auto &k : config_keys()) {
        EXPECT_TRUE(k.doc && *k.doc) << k.key;
        EXPECT_TRUE(k.store) << k.key;
        if (k.type == KeyType::Choice) {
            EXPECT_GE(k.choices.size(), 2u) << k.key;
        }
        if (k.type == KeyType::Seconds || k.type == KeyType::Count) {
            EXPECT_TRUE(k.range.text) << k.key;
        }
        if (k.type == KeyType::Count) {
            EXPECT_TRUE(k.noun) << k.key;
        }
    }
    // A sample value per type that is not any default.
    auto sample = [](const KeySpec &k) -> std::string {
        switch (k.type) {
        case KeyType::Seconds: return k.range.max >= 7 ? "7" : "0.5";
        case KeyType::Port:
        case KeyType::Count: return "77";
        case KeyType::Choice: return std::string(k.def && std::string(k.def) == k.choices[0] ? k.choices[1] : k.choices[0]);
        case KeyType::Path:
        case KeyType::ServerPath:
        case KeyType::Command: return "/x/y";
        case KeyType::Host:
        case KeyType::PcpHost: return "db9";
        case KeyType::PcpUser:
        case KeyType::SshUser:
        case KeyType::RoleName:
        case KeyType::ClusterName:
        case KeyType::AppName:
        case KeyType::Text:
        case KeyType::Secret: return "abc";
        case KeyType::SshOptions: return "-4";
        case KeyType::LagLimit: return "1kB";
        case KeyType::SyncNames: return "ANY 1 (a, b)";
        case KeyType::Url: return "https://other/";
        case KeyType::Events: return "step.*";
        case KeyType::SecretFile: return "";
        }
        return "";
    };
    int checked = 0;
    for (const auto &k : config_keys()) {
        if (k.type == KeyType::SecretFile) continue; // needs a file: test_config.cpp
        const std::string sec = concrete(k.section);
        const Config before = with_section(k.section);
        Config after = before;
        apply_setting(after, sec, k.key, sample(k), "test");
        EXPECT_NE(dump(after), dump(before)) << "[" << sec << "] " << k.key << " = " << sample(k) << " changed nothing";
        ++checked;
    }
    EXPECT_GT(checked, 60);
}

TEST(ConfigKeysTest, SectionsAndLookups) {
    Section s;
    EXPECT_TRUE(section_of("node.127", s));
    EXPECT_EQ(s, Section::Node);
    EXPECT_TRUE(section_of("webhook.ops-1", s));
    EXPECT_EQ(s, Section::Webhook);
    EXPECT_TRUE(section_of("switchover", s));
    EXPECT_EQ(s, Section::Switchover);
    EXPECT_FALSE(section_of("node.128", s));
    EXPECT_FALSE(section_of("node.01", s));
    EXPECT_FALSE(section_of("webhook.", s));
    EXPECT_FALSE(section_of("node.N", s));
    EXPECT_FALSE(section_of("Genral", s));
    ASSERT_NE(find_key(Section::Timeouts, "fence"), nullptr);
    EXPECT_EQ(find_key(Section::Timeouts, "fence")->type, KeyType::Seconds);
    EXPECT_EQ(find_key(Section::General, "fence"), nullptr);
    EXPECT_EQ(join(section_keys(Section::Pcp)), "host, port, user, passfile, bin_directory");
    EXPECT_EQ(known_sections().rfind("[general], [connection], ", 0), 0u);
    // One row per (section, key).
    std::set<std::pair<int, std::string>> seen;
    for (const auto &k : config_keys())
        EXPECT_TRUE(seen.emplace(static_cast<int>(k.section), k.key).second) << "twice: " << k.key;
}

} // namespace
