// Webhooks without a network: signatures, filters, redaction, backoff, the
// chat text, the [webhook.NAME] configuration, and the spool when nothing
// listens.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>

#include "config/config.h"
#include "core/error.h"
#include "notify/notifier.h"
#include "notify/webhook.h"

namespace fs = std::filesystem;
using namespace pgfo;
using namespace pgfo::notify;

namespace {

// ---------------------------------------------------------------- HMAC

TEST(WebhookHmac, Rfc4231TestCase1) {
    EXPECT_EQ(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There"),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(WebhookHmac, Rfc4231TestCase2) {
    EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookHmac, Rfc4231TestCase6LongKey) {
    // A key longer than the block size is hashed first.
    EXPECT_EQ(hmac_sha256_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(WebhookHmac, SignatureCoversTimestampAndBody) {
    std::string sig = signature("Jefe", 1700000000, "{\"a\":1}");
    EXPECT_EQ(sig, "sha256=" + hmac_sha256_hex("Jefe", "1700000000.{\"a\":1}"));
    EXPECT_NE(sig, signature("Jefe", 1700000001, "{\"a\":1}"));
    EXPECT_NE(sig, signature("Jefe", 1700000000, "{\"a\":2}"));
    EXPECT_NE(sig, signature("jefe", 1700000000, "{\"a\":1}"));
}

// ---------------------------------------------------------------- filters

TEST(WebhookFilter, EmptyListSelectsEverything) {
    EXPECT_TRUE(event_selected({}, "step.started"));
    EXPECT_TRUE(event_selected({}, "failover.needs_rewind"));
}

TEST(WebhookFilter, NamesPrefixesAndStar) {
    std::vector<std::string> f = {"failover.*", "step.failed"};
    EXPECT_TRUE(event_selected(f, "failover.started"));
    EXPECT_TRUE(event_selected(f, "failover.needs_rewind"));
    EXPECT_TRUE(event_selected(f, "step.failed"));
    EXPECT_FALSE(event_selected(f, "step.started"));
    EXPECT_FALSE(event_selected(f, "sync.changed"));
    EXPECT_FALSE(event_selected(f, "failover"));          // the prefix needs something after the dot
    EXPECT_FALSE(event_selected({"step.*"}, "steps.x"));  // whole components only
    EXPECT_FALSE(event_selected({"step.fail"}, "step.failed"));
    EXPECT_TRUE(event_selected({"*"}, "standby_failure.succeeded"));
}

TEST(WebhookFilter, Validity) {
    for (const char *ok : {"*", "step.*", "failover.succeeded", "standby_failure.*", "sync.changed", "a.b.*"})
        EXPECT_TRUE(valid_event_filter(ok)) << ok;
    for (const char *bad : {"", ".*", "step.", "Step.started", "step*", "*.failed", "step..x", "step. x", "st*p"})
        EXPECT_FALSE(valid_event_filter(bad)) << bad;
}

// ---------------------------------------------------------------- redaction

TEST(WebhookRedact, CredentialsAreHidden) {
    EXPECT_EQ(redact_url("https://user:s3cret@hooks.example.com/x?y=1"), "https://***@hooks.example.com/x?y=1");
    EXPECT_EQ(redact_url("http://token@127.0.0.1:8080/"), "http://***@127.0.0.1:8080/");
    EXPECT_EQ(redact_url("https://a:b@c@host/p"), "https://***@host/p");
}

TEST(WebhookRedact, PlainUrlsUnchanged) {
    EXPECT_EQ(redact_url("https://hooks.example.com/services/T0/B0"), "https://hooks.example.com/services/T0/B0");
    // An '@' in the path or query is no credential.
    EXPECT_EQ(redact_url("http://host/p@q?mail=a@b"), "http://host/p@q?mail=a@b");
    EXPECT_EQ(redact_url("http://host"), "http://host");
}

// ---------------------------------------------------------------- backoff

TEST(WebhookBackoff, CeilingDoublesAndIsCapped) {
    EXPECT_DOUBLE_EQ(backoff_ceiling(0.5, 1), 0.5);
    EXPECT_DOUBLE_EQ(backoff_ceiling(0.5, 2), 1.0);
    EXPECT_DOUBLE_EQ(backoff_ceiling(0.5, 3), 2.0);
    EXPECT_DOUBLE_EQ(backoff_ceiling(0.5, 10), kBackoffCap);
    EXPECT_DOUBLE_EQ(backoff_ceiling(1, 1000), kBackoffCap); // no overflow
    EXPECT_DOUBLE_EQ(backoff_ceiling(2, 3, 5.0), 5.0);
}

TEST(WebhookBackoff, FullJitterStaysWithinBounds) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int attempt = 1; attempt <= 12; ++attempt) {
        double lo = 1e9, hi = 0;
        for (int i = 0; i < 2000; ++i) {
            double d = backoff_delay(0.25, attempt, unit(rng));
            ASSERT_GE(d, 0.0);
            ASSERT_LE(d, backoff_ceiling(0.25, attempt));
            ASSERT_LE(d, kBackoffCap);
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        // Spread over the whole range (full jitter, not +-10 %).
        EXPECT_LT(lo, 0.1 * backoff_ceiling(0.25, attempt));
        EXPECT_GT(hi, 0.9 * backoff_ceiling(0.25, attempt));
    }
    EXPECT_DOUBLE_EQ(backoff_delay(1, 1, 0.0), 0.0);
    EXPECT_LE(backoff_delay(1, 1, 5.0), 1.0); // out-of-range randomness is clamped
}

// ---------------------------------------------------------------- chat text

nlohmann::json sample_event() {
    return {{"event", "step.succeeded"},
            {"severity", "info"},
            {"run_id", "0123456789abcdef"},
            {"run_kind", "failover"},
            {"seq", 12},
            {"time", "2026-11-26T10:13:35.123Z"},
            {"cluster", "main"},
            {"step", "wait_flush"},
            {"outcome", "succeeded"},
            {"duration_s", 0.25},
            {"summary", "candidate flushed 0/3000060 >= checkpoint end 0/3000060 & more <x>\nsecond line"},
            {"nodes", {{"candidate", {{"id", 1}, {"host", "db1"}, {"port", 5432}}}}},
            {"version", "0.1.0"},
            {"hostname", "pool1"}};
}

TEST(WebhookSlack, OneEscapedReadableLine) {
    std::string t = slack_text(sample_event());
    EXPECT_EQ(t, "[main] step.succeeded wait_flush in 0.250 s: candidate flushed 0/3000060 &gt;= checkpoint end "
                 "0/3000060 &amp; more &lt;x&gt; second line [candidate 1 (db1:5432)] (run 0123456789abcdef #12, "
                 "pool1)");
    EXPECT_EQ(t.find('\n'), std::string::npos);
}

TEST(WebhookSlack, SeverityAndErrorFirst) {
    nlohmann::json e = sample_event();
    e["event"] = "failover.failed";
    e["severity"] = "critical";
    e.erase("step");
    e["error"] = "boom";
    e["message"] = "boom";
    std::string t = slack_text(e);
    EXPECT_EQ(t.rfind("[main] CRITICAL failover.failed in 0.250 s: boom [", 0), 0u) << t;
}

TEST(WebhookSlack, BodyIsTextObject) {
    auto body = nlohmann::json::parse(request_body(WebhookFormat::Slack, sample_event()));
    ASSERT_TRUE(body.is_object());
    EXPECT_EQ(body.size(), 1u);
    EXPECT_EQ(body["text"], slack_text(sample_event()));
    EXPECT_EQ(nlohmann::json::parse(request_body(WebhookFormat::Json, sample_event())), sample_event());
}

// ---------------------------------------------------------------- configuration

class WebhookConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("pgfo-webhook-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string &text, const std::string &name = "pgfailover.conf", int mode = 0600) {
        std::string p = (dir_ / name).string();
        std::ofstream(p, std::ios::binary) << text;
        ::chmod(p.c_str(), static_cast<mode_t>(mode));
        return p;
    }
    Config load(const std::string &text) { return load_config(write(text)); }
    std::string path(const std::string &name = "pgfailover.conf") const { return (dir_ / name).string(); }
    void expect_error(const std::string &text, int line, std::initializer_list<std::string> parts) {
        std::string p = write(text);
        try {
            load_config(p);
            ADD_FAILURE() << "no error for:\n" << text;
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), PGFO_ERR_CONFIG);
            std::string msg = e.what();
            std::string loc = p + ":" + std::to_string(line) + ": ";
            EXPECT_EQ(msg.rfind(loc, 0), 0u) << "expected to start with '" << loc << "': " << msg;
            for (const auto &s : parts) EXPECT_NE(msg.find(s), std::string::npos) << "missing '" << s << "' in: " << msg;
        }
    }
    fs::path dir_;
};

const char *kNode = "[node.0]\nhost = db0\n";

TEST_F(WebhookConfigTest, Defaults) {
    Config c = load(std::string(kNode) + "[webhook.ops]\nurl = https://hooks.example.com/pgfo\n");
    EXPECT_EQ(c.spool_directory, "/var/spool/pgfailover");
    EXPECT_DOUBLE_EQ(c.delivery_budget, 5);
    ASSERT_EQ(c.webhooks.size(), 1u);
    const Webhook &w = c.webhooks.at("ops");
    EXPECT_EQ(w.name, "ops");
    EXPECT_EQ(w.url, "https://hooks.example.com/pgfo");
    EXPECT_TRUE(w.events.empty());
    EXPECT_DOUBLE_EQ(w.timeout, 5);
    EXPECT_EQ(w.retries, 3);
    EXPECT_DOUBLE_EQ(w.backoff, 1);
    EXPECT_EQ(w.format, WebhookFormat::Json);
    EXPECT_TRUE(w.secret.empty());
    EXPECT_EQ(w.origin, path() + ":3");
}

TEST_F(WebhookConfigTest, EveryKey) {
    std::string secret = write("s3cret-key\n", "hook.key", 0600);
    Config c = load("[general]\nspool_directory = /tmp/pgfo-spool\ndelivery_budget = 0\n" + std::string(kNode) +
                    "[webhook.chat-1]\n"
                    "url = http://user:pw@127.0.0.1:9000/hook\n"
                    "events = failover.*, step.failed ,sync.changed\n"
                    "timeout = 2.5\n"
                    "retries = 0\n"
                    "backoff = 0.1\n"
                    "format = slack\n"
                    "secret_file = " + secret + "\n"
                    "ca_file = /etc/ssl/certs/ca-certificates.crt\n"
                    "[webhook.b]\nurl = HTTPS://x\nsecret = inline\n");
    EXPECT_EQ(c.spool_directory, "/tmp/pgfo-spool");
    EXPECT_DOUBLE_EQ(c.delivery_budget, 0);
    const Webhook &w = c.webhooks.at("chat-1");
    EXPECT_EQ(w.events, (std::vector<std::string>{"failover.*", "step.failed", "sync.changed"}));
    EXPECT_DOUBLE_EQ(w.timeout, 2.5);
    EXPECT_EQ(w.retries, 0);
    EXPECT_DOUBLE_EQ(w.backoff, 0.1);
    EXPECT_EQ(w.format, WebhookFormat::Slack);
    EXPECT_EQ(w.secret, "s3cret-key"); // trailing newline dropped
    EXPECT_EQ(w.ca_file, "/etc/ssl/certs/ca-certificates.crt");
    EXPECT_EQ(c.webhooks.at("b").secret, "inline");
}

TEST_F(WebhookConfigTest, Errors) {
    std::string head = std::string(kNode) + "[webhook.x]\n"; // webhook keys from line 4
    expect_error(head + "url = ftp://host/x\n", 4, {"[webhook.x] url", "not an http or https URL", "(allowed: an http"});
    expect_error(head + "url = file:///etc/passwd\n", 4, {"[webhook.x] url", "(allowed: an http"});
    expect_error(head + "url = https://\n", 4, {"[webhook.x] url", "has no host"});
    expect_error(head + "url = https://u:hunter2@/x\n", 4, {"has no host", "***@"});
    expect_error(head + "url = http://h/\nevents = step.*, Bad\n", 5, {"[webhook.x] events", "'Bad'", "(allowed:"});
    expect_error(head + "url = http://h/\nevents = step.*,\n", 5, {"[webhook.x] events", "''"});
    expect_error(head + "url = http://h/\ntimeout = 0\n", 5, {"[webhook.x] timeout", "(allowed: 0.1..600)"});
    expect_error(head + "url = http://h/\nretries = -1\n", 5, {"[webhook.x] retries", "(allowed: 0..100)"});
    expect_error(head + "url = http://h/\nretries = 101\n", 5, {"(allowed: 0..100)"});
    expect_error(head + "url = http://h/\nbackoff = 31\n", 5, {"[webhook.x] backoff", "(allowed: 0.01..30)"});
    expect_error(head + "url = http://h/\nformat = xml\n", 5, {"[webhook.x] format", "(allowed: json, slack)"});
    expect_error(head + "url = http://h/\nca_file = certs.pem\n", 5, {"[webhook.x] ca_file", "absolute path"});
    expect_error(head + "url = http://h/\nverify = off\n", 5, {"unknown key 'verify'", "known keys: url, events"});
    expect_error(head + "url = http://h/\nsecret =\n", 5, {"[webhook.x] secret", "must not be empty"});
    expect_error(std::string(kNode) + "[webhook.a b]\nurl = http://h/\n", 3, {"bad webhook section", "NAME"});
    expect_error(std::string(kNode) + "[webhook.]\nurl = http://h/\n", 3, {"bad webhook section"});
    expect_error(std::string(kNode) + "[webhook.x]\nurl = http://h/\n[webhook.x]\n", 5, {"duplicate section"});
    expect_error("[general]\nspool_directory = spool\n", 2, {"[general] spool_directory", "absolute path"});
    expect_error("[general]\ndelivery_budget = 3601\n", 2, {"[general] delivery_budget", "(allowed: 0..3600)"});
    // Whole-section checks name the section's line.
    expect_error(head + "timeout = 1\n", 3, {"[webhook.x] url", "missing"});
}

TEST_F(WebhookConfigTest, SecretsNeverInMessages) {
    std::string head = std::string(kNode) + "[webhook.x]\nurl = http://h/\n";
    std::string f = write("topsecret\n", "k1", 0600);
    std::string p = write(head + "secret = topsecret\nsecret_file = " + f + "\n");
    try {
        load_config(p);
        ADD_FAILURE() << "secret and secret_file together accepted";
    } catch (const Error &e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("[webhook.x] secret_file"), std::string::npos) << msg;
        EXPECT_NE(msg.find("one of them"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("topsecret"), std::string::npos) << msg;
    }
    Config c;
    try {
        apply_setting(c, "webhook.x", "secret", "top\nsecret", "option");
        ADD_FAILURE();
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()).find("top"), std::string::npos) << e.what();
    }
}

TEST_F(WebhookConfigTest, SecretFileMustBeOwnerOnly) {
    std::string head = std::string(kNode) + "[webhook.x]\nurl = http://h/\n";
    std::string open_key = write("k\n", "world.key", 0644);
    expect_error(head + "secret_file = " + open_key + "\n", 5,
                 {"[webhook.x] secret_file", "accessible by group or others", "0644", "chmod 600"});
    std::string group_key = write("k\n", "group.key", 0640);
    expect_error(head + "secret_file = " + group_key + "\n", 5, {"0640"});
    std::string empty_key = write("\n", "empty.key", 0600);
    expect_error(head + "secret_file = " + empty_key + "\n", 5, {"is empty"});
    expect_error(head + "secret_file = " + path("missing.key") + "\n", 5, {"cannot open"});
    expect_error(head + "secret_file = " + dir_.string() + "\n", 5, {"not a regular file"});
    std::string ok_key = write("k\n", "ok.key", 0400);
    EXPECT_EQ(load(head + "secret_file = " + ok_key + "\n").webhooks.at("x").secret, "k");
}

TEST_F(WebhookConfigTest, ApplySettingAndValidate) {
    Config c;
    apply_setting(c, "webhook.y", "url", "http://127.0.0.1:1/", "option");
    apply_setting(c, "webhook.y", "events", "*", "option");
    EXPECT_EQ(c.webhooks.at("y").name, "y");
    EXPECT_NO_THROW(validate_config(c));
    c.webhooks["z"].name = "z";
    EXPECT_THROW(validate_config(c), Error); // no url
    c.webhooks.erase("z");
    c.delivery_budget = -1;
    EXPECT_THROW(validate_config(c), Error);
}

// ---------------------------------------------------------------- spool, nothing listening

TEST_F(WebhookConfigTest, RefusedDeliveryIsSpooledAndKeptForTheNextRun) {
    Config cfg;
    cfg.cluster_name = "unit";
    cfg.spool_directory = (dir_ / "spool").string();
    Webhook w;
    w.name = "dead";
    w.url = "http://127.0.0.1:1/hook"; // nothing listens on port 1
    w.retries = 1;
    w.backoff = 0.01;
    w.timeout = 2;
    cfg.webhooks["dead"] = w;
    nlohmann::json ev = sample_event();
    ev["cluster"] = "unit";
    {
        Notifier n(cfg);
        n.enqueue(cfg, ev);
        FlushResult r = n.flush(10);
        EXPECT_EQ(r.delivered, 0u);
        EXPECT_EQ(r.spooled, 1u);
        EXPECT_EQ(r.lost, 0u);
    }
    std::vector<fs::path> files;
    for (auto &e : fs::directory_iterator(cfg.spool_directory)) files.push_back(e.path());
    ASSERT_EQ(files.size(), 1u);
    std::string name = files[0].filename().string();
    EXPECT_EQ(name.rfind(spool_prefix("unit"), 0), 0u) << name;
    struct stat sb {};
    ASSERT_EQ(::stat(files[0].c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0600u);
    struct stat db {};
    ASSERT_EQ(::stat(cfg.spool_directory.c_str(), &db), 0);
    EXPECT_EQ(db.st_mode & 0777, 0700u);
    auto j = nlohmann::json::parse(std::ifstream(files[0]));
    EXPECT_EQ(j["endpoint"], "dead");
    EXPECT_EQ(j["event"], ev);

    // The next run tries it first and, still refused, leaves it where it is.
    {
        Notifier n(cfg);
        FlushResult r = n.flush(10);
        EXPECT_EQ(r.delivered, 0u);
        EXPECT_EQ(r.spooled, 1u);
    }
    EXPECT_TRUE(fs::exists(files[0]));
    // A run of another cluster does not touch it.
    Config other = cfg;
    other.cluster_name = "unit2";
    {
        Notifier n(other);
        EXPECT_EQ(n.flush(1).spooled, 0u);
    }
    EXPECT_TRUE(fs::exists(files[0]));
}

TEST_F(WebhookConfigTest, ZeroBudgetSpoolsAtOnce) {
    Config cfg;
    cfg.cluster_name = "unit";
    cfg.spool_directory = (dir_ / "spool0").string();
    Webhook w;
    w.name = "slow";
    w.url = "http://10.255.255.1:9/"; // not routed: would hang until the timeout
    w.timeout = 30;
    cfg.webhooks["slow"] = w;
    Notifier n(cfg);
    n.enqueue(cfg, sample_event());
    auto t0 = std::chrono::steady_clock::now();
    FlushResult r = n.flush(0);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 1.0);
    EXPECT_EQ(r.spooled, 1u);
}

} // namespace
