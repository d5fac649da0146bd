#include "notify/notifier.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <vector>

#include <curl/curl.h>

#include "core/json_text.h"
#include "pgfailover.h"
#include "notify/webhook.h"

namespace pgfo::notify {
namespace {

using Clock = std::chrono::steady_clock;

// curl_global_init is not safe to race with itself; a library may be loaded
// into a threaded host, so it runs exactly once. curl_global_cleanup is never
// called: other users of libcurl in the same process may still need it.
std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_FAILED_INIT;

bool curl_ready() {
    std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
    return g_curl_init == CURLE_OK;
}

std::atomic<uint64_t> g_counter{0};

constexpr size_t kMaxSpoolFile = 1u << 20;
constexpr size_t kMaxSpoolScan = 10000;

int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string zero_pad(uint64_t v, int width) {
    std::string s = std::to_string(v);
    if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), '0');
    return s;
}

size_t discard_body(char *, size_t size, size_t nmemb, void *) { return size * nmemb; }

} // namespace

std::string spool_prefix(const std::string &cluster) { return "pgfo-" + cluster + "-"; }

struct Delivery {
    uint64_t id = 0;
    std::shared_ptr<const Webhook> ep;
    nlohmann::json event;
    std::string event_name;
    std::string cluster;
    std::string spool_dir;
    int64_t created_ns = 0;
    uint64_t counter = 0;
    std::string spool_path; // came from this spool file: removed once delivered
    int spool_fd = -1;      // holds an flock on it meanwhile
    int attempts = 0;
    Clock::time_point next_try{};
    bool in_flight = false;
};

struct Transfer {
    CURL *easy = nullptr;
    curl_slist *headers = nullptr;
    std::string body;
    char errbuf[CURL_ERROR_SIZE] = {0};
    std::string lane;
    uint64_t id = 0;
    std::string event_name;
    std::string url_shown;
    int attempt = 0;
    int max_attempts = 0;
    Clock::time_point started;

    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        if (headers) curl_slist_free_all(headers);
    }
};

struct Notifier::State {
    std::mutex mu;
    std::condition_variable idle_cv; // scanned && pending == 0 && writing == 0
    std::condition_variable stop_cv; // only when libcurl could not start
    std::map<std::string, std::deque<Delivery>> lanes; // per endpoint, in order
    size_t pending = 0;  // deliveries in lanes
    size_t writing = 0;  // taken out of lanes, being written to the spool
    bool stop = false;
    bool scanned = false; // the worker has queued what earlier runs spooled
    uint64_t next_id = 1;
    size_t delivered = 0, spooled = 0, lost = 0;
    std::string spool_dir_seen;

    // Set before the worker starts, then read-only.
    CURLM *multi = nullptr;
    std::string cluster;
    std::string spool_dir;
    std::map<std::string, std::shared_ptr<const Webhook>> endpoints;

    std::mutex log_mu;
    std::shared_ptr<spdlog::logger> logger;

    template <class... Args>
    void log(spdlog::level::level_enum lvl, spdlog::format_string_t<Args...> fmt, Args &&...args) {
        std::shared_ptr<spdlog::logger> l;
        {
            std::lock_guard<std::mutex> g(log_mu);
            l = logger;
        }
        if (l) l->log(lvl, fmt, std::forward<Args>(args)...);
    }

    void wake() {
        if (multi) curl_multi_wakeup(multi);
    }

    // Atomic write of one delivery into its spool directory (temp file, fsync,
    // rename), mode 0600. Returns the path, or "" with err set.
    static std::string write_spool(const Delivery &d, std::string &err);
    // Deliveries taken out of the lanes: those from the spool stay there,
    // the others are written to it. Counts them.
    void settle(std::vector<Delivery> &out, const char *why);
    std::vector<Delivery> scan_spool();
};

std::string Notifier::State::write_spool(const Delivery &d, std::string &err) {
    const std::string &dir = d.spool_dir;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        err = "cannot create spool directory " + dir + ": " + std::strerror(errno);
        return "";
    }
    std::string name = spool_prefix(d.cluster) + zero_pad(static_cast<uint64_t>(d.created_ns), 20) + "-" +
                       zero_pad(static_cast<uint64_t>(::getpid()), 10) + "-" + zero_pad(d.counter, 12) + "-" +
                       d.ep->name + ".json";
    std::string final_path = dir + "/" + name;
    std::string tmp_path = dir + "/." + name + ".tmp";
    nlohmann::json j = {{"format", 1},           {"cluster", d.cluster},       {"endpoint", d.ep->name},
                        {"event_name", d.event_name}, {"created_ns", d.created_ns}, {"attempts", d.attempts},
                        {"event", d.event}};
    std::string text = to_json_text(j) + "\n";
    int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err = "cannot create " + tmp_path + ": " + std::strerror(errno);
        return "";
    }
    size_t off = 0;
    bool ok = true;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = false;
            err = "cannot write " + tmp_path + ": " + std::strerror(errno);
            break;
        }
        off += static_cast<size_t>(n);
    }
    if (ok && ::fsync(fd) != 0) {
        ok = false;
        err = "cannot fsync " + tmp_path + ": " + std::strerror(errno);
    }
    ::close(fd);
    if (ok && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        ok = false;
        err = "cannot rename " + tmp_path + ": " + std::strerror(errno);
    }
    if (!ok) {
        ::unlink(tmp_path.c_str());
        return "";
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
    return final_path;
}

void Notifier::State::settle(std::vector<Delivery> &out, const char *why) {
    size_t spooled_n = 0, lost_n = 0;
    for (auto &d : out) {
        if (d.spool_fd >= 0) {
            // Already in the spool: release it for the next run.
            ::close(d.spool_fd);
            d.spool_fd = -1;
            ++spooled_n;
            continue;
        }
        std::string err;
        std::string path = write_spool(d, err);
        if (path.empty()) {
            ++lost_n;
            log(spdlog::level::err, "webhook {}: {} LOST ({}): {}", d.ep->name, d.event_name, why, err);
        } else {
            ++spooled_n;
            log(spdlog::level::warn, "webhook {}: {} spooled to {} ({})", d.ep->name, d.event_name, path, why);
        }
    }
    std::lock_guard<std::mutex> g(mu);
    spooled += spooled_n;
    lost += lost_n;
    writing -= out.size();
    if (pending == 0 && writing == 0) idle_cv.notify_all();
}

std::vector<Delivery> Notifier::State::scan_spool() {
    std::vector<Delivery> out;
    std::vector<std::string> names;
    DIR *dir = ::opendir(spool_dir.c_str());
    if (!dir) {
        if (errno != ENOENT)
            log(spdlog::level::warn, "webhooks: cannot read spool directory {}: {}", spool_dir, std::strerror(errno));
        return out;
    }
    const std::string prefix = spool_prefix(cluster);
    while (struct dirent *e = ::readdir(dir)) {
        std::string n = e->d_name;
        if (n.size() < prefix.size() + 21 + 5 || n.compare(0, prefix.size(), prefix) != 0) continue;
        if (n.compare(n.size() - 5, 5, ".json") != 0) continue;
        bool digits = true;
        for (size_t i = prefix.size(); i < prefix.size() + 20; ++i)
            if (n[i] < '0' || n[i] > '9') digits = false;
        if (!digits || n[prefix.size() + 20] != '-') continue; // another cluster whose name starts like ours
        names.push_back(n);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end()); // oldest first
    if (names.size() > kMaxSpoolScan) names.resize(kMaxSpoolScan);
    for (const auto &n : names) {
        std::string path = spool_dir + "/" + n;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue; // delivered meanwhile by another run
        struct stat sb {};
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::fstat(fd, &sb) != 0 || sb.st_nlink == 0 || !S_ISREG(sb.st_mode) ||
            static_cast<size_t>(sb.st_size) > kMaxSpoolFile) {
            ::close(fd); // another run is sending it, or it is gone or odd
            continue;
        }
        std::string text;
        char buf[8192];
        for (;;) {
            ssize_t r = ::read(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            text.append(buf, static_cast<size_t>(r));
        }
        auto j = nlohmann::json::parse(text, nullptr, false);
        std::string endpoint = j.is_object() ? j.value("endpoint", "") : "";
        auto ep = endpoints.find(endpoint);
        if (!j.is_object() || j.value("cluster", "") != cluster || !j.contains("event") || !j["event"].is_object()) {
            log(spdlog::level::warn, "webhooks: ignoring unreadable spool file {}", path);
            ::close(fd);
            continue;
        }
        if (ep == endpoints.end()) {
            log(spdlog::level::warn, "webhooks: spool file {} is for endpoint '{}', which is not configured: kept",
                path, endpoint);
            ::close(fd);
            continue;
        }
        Delivery d;
        d.ep = ep->second;
        d.event = j["event"];
        d.event_name = j.value("event_name", "");
        d.cluster = cluster;
        d.spool_dir = spool_dir;
        d.created_ns = j.value("created_ns", int64_t{0});
        d.spool_path = path;
        d.spool_fd = fd;
        out.push_back(std::move(d));
    }
    return out;
}

Notifier::Notifier(const Config &cfg) : st_(std::make_unique<State>()), owner_pid_(::getpid()) {
    st_->cluster = cfg.cluster_name;
    st_->spool_dir = cfg.spool_directory;
    st_->spool_dir_seen = cfg.spool_directory;
    for (const auto &[name, w] : cfg.webhooks) st_->endpoints[name] = std::make_shared<const Webhook>(w);
    if (curl_ready()) st_->multi = curl_multi_init();
    worker_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
    {
        std::lock_guard<std::mutex> g(st_->mu);
        st_->stop = true;
    }
    st_->stop_cv.notify_all();
    st_->wake();
    if (worker_.joinable()) worker_.join();
    std::vector<Delivery> left;
    {
        std::lock_guard<std::mutex> g(st_->mu);
        for (auto &[name, lane] : st_->lanes)
            for (auto &d : lane) left.push_back(std::move(d));
        st_->lanes.clear();
        st_->writing += left.size();
        st_->pending = 0;
    }
    st_->settle(left, "the context was freed before it was delivered");
    if (st_->multi) curl_multi_cleanup(st_->multi);
}

bool Notifier::inherited() const { return ::getpid() != owner_pid_; }

void Notifier::abandon(std::unique_ptr<Notifier> inherited) noexcept {
    Notifier *n = inherited.release();
    try {
        // A list of this process's own, never freed: what it holds stays
        // reachable (no leak report) and is never destroyed.
        static std::mutex mu;
        static auto *kept = new std::vector<Notifier *>();
        std::lock_guard<std::mutex> g(mu);
        kept->push_back(n);
    } catch (...) {
        // Out of memory: n stays allocated all the same, only unlisted.
    }
}

void Notifier::set_logger(std::shared_ptr<spdlog::logger> logger) {
    std::lock_guard<std::mutex> g(st_->log_mu);
    st_->logger = std::move(logger);
}

void Notifier::enqueue(const Config &cfg, const nlohmann::json &event) {
    std::string name = event.value("event", "");
    int64_t now = wall_ns();
    std::vector<Delivery> overflow;
    {
        std::lock_guard<std::mutex> g(st_->mu);
        for (const auto &[ep_name, w] : cfg.webhooks) {
            if (!event_selected(w.events, name)) continue;
            Delivery d;
            d.id = st_->next_id++;
            d.ep = std::make_shared<const Webhook>(w);
            d.event = event;
            d.event_name = name;
            d.cluster = cfg.cluster_name;
            d.spool_dir = cfg.spool_directory;
            d.created_ns = now;
            d.counter = g_counter.fetch_add(1);
            if (st_->pending >= kMaxPending) {
                overflow.push_back(std::move(d));
                ++st_->writing;
            } else {
                st_->lanes[ep_name].push_back(std::move(d));
                ++st_->pending;
            }
        }
    }
    st_->wake();
    if (!overflow.empty()) st_->settle(overflow, "queue full");
}

FlushResult Notifier::flush(double budget_seconds) {
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(std::max(0.0, budget_seconds)));
    std::vector<Delivery> left;
    {
        std::unique_lock<std::mutex> lk(st_->mu);
        st_->idle_cv.wait_until(lk, deadline,
                                [&] { return st_->scanned && st_->pending == 0 && st_->writing == 0; });
        for (auto &[name, lane] : st_->lanes)
            for (auto &d : lane) left.push_back(std::move(d));
        st_->lanes.clear();
        st_->pending = 0;
        st_->writing += left.size();
    }
    if (!left.empty()) {
        st_->wake(); // the worker drops transfers of deliveries taken away here
        st_->settle(left, "not delivered within the delivery budget");
    }
    std::unique_lock<std::mutex> lk(st_->mu);
    // A retry given up on by the worker may still be on its way to the spool.
    st_->idle_cv.wait_for(lk, std::chrono::seconds(2), [&] { return st_->writing == 0; });
    FlushResult r;
    r.delivered = st_->delivered;
    r.spooled = st_->spooled;
    r.lost = st_->lost;
    r.spool_directory = st_->spool_dir_seen;
    st_->delivered = st_->spooled = st_->lost = 0;
    return r;
}

void Notifier::run() {
    State &s = *st_;
    if (!s.multi) {
        s.log(spdlog::level::err, "webhooks: libcurl could not be initialised; events go to the spool directory");
        std::unique_lock<std::mutex> lk(s.mu);
        s.scanned = true;
        s.stop_cv.wait(lk, [&] { return s.stop; });
        return;
    }

    // Deliveries left by earlier runs go first, oldest first.
    std::vector<Delivery> old = s.scan_spool();
    if (!old.empty())
        s.log(spdlog::level::info, "webhooks: {} spooled deliveries from earlier runs in {} are sent first", old.size(),
              s.spool_dir);
    {
        std::lock_guard<std::mutex> g(s.mu);
        for (auto it = old.rbegin(); it != old.rend(); ++it) {
            it->id = s.next_id++;
            s.lanes[it->ep->name].push_front(std::move(*it));
            ++s.pending;
        }
        s.scanned = true;
        if (s.pending == 0 && s.writing == 0) s.idle_cv.notify_all();
    }

    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::map<CURL *, std::unique_ptr<Transfer>> active;

    auto drop = [&](std::map<CURL *, std::unique_ptr<Transfer>>::iterator it) {
        curl_multi_remove_handle(s.multi, it->first);
        return active.erase(it);
    };

    for (;;) {
        struct Start {
            std::string lane;
            uint64_t id;
            std::shared_ptr<const Webhook> ep;
            nlohmann::json event;
            std::string event_name;
            int attempt;
        };
        std::vector<Start> starts;
        long wait_ms = 1000;
        {
            std::lock_guard<std::mutex> g(s.mu);
            if (s.stop) break;
            // Transfers whose delivery was taken away by flush(): abandon them.
            for (auto it = active.begin(); it != active.end();) {
                auto lane = s.lanes.find(it->second->lane);
                bool live = lane != s.lanes.end() && !lane->second.empty() && lane->second.front().id == it->second->id;
                it = live ? std::next(it) : drop(it);
            }
            auto now = Clock::now();
            for (auto &[name, lane] : s.lanes) {
                if (lane.empty() || lane.front().in_flight) continue;
                Delivery &d = lane.front();
                if (d.next_try <= now) {
                    d.in_flight = true;
                    ++d.attempts;
                    starts.push_back({name, d.id, d.ep, d.event, d.event_name, d.attempts});
                } else {
                    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.next_try - now).count() + 1;
                    wait_ms = std::min<long>(wait_ms, static_cast<long>(ms));
                }
            }
        }

        for (auto &st : starts) {
            auto t = std::make_unique<Transfer>();
            t->lane = st.lane;
            t->id = st.id;
            t->event_name = st.event_name;
            t->url_shown = redact_url(st.ep->url);
            t->attempt = st.attempt;
            t->max_attempts = st.ep->retries + 1;
            t->started = Clock::now();
            t->body = request_body(st.ep->format, st.event);
            t->easy = curl_easy_init();
            if (!t->easy) {
                std::lock_guard<std::mutex> g(s.mu);
                auto lane = s.lanes.find(st.lane);
                if (lane != s.lanes.end() && !lane->second.empty() && lane->second.front().id == st.id) {
                    lane->second.front().in_flight = false;
                    lane->second.front().next_try = Clock::now() + std::chrono::seconds(1);
                }
                continue;
            }
            CURL *e = t->easy;
            t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
            t->headers = curl_slist_append(t->headers, "Expect:");
            t->headers = curl_slist_append(t->headers, ("X-Pgfailover-Event: " + st.event_name).c_str());
            if (!st.ep->secret.empty()) {
                int64_t ts = static_cast<int64_t>(std::time(nullptr));
                t->headers = curl_slist_append(t->headers, ("X-Pgfailover-Timestamp: " + std::to_string(ts)).c_str());
                t->headers = curl_slist_append(
                    t->headers, ("X-Pgfailover-Signature: " + signature(st.ep->secret, ts, t->body)).c_str());
            }
            long timeout_ms = std::max(100L, static_cast<long>(st.ep->timeout * 1000.0));
            curl_easy_setopt(e, CURLOPT_URL, st.ep->url.c_str());
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
            if (!st.ep->ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, st.ep->ca_file.c_str());
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.data());
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
            curl_easy_setopt(e, CURLOPT_USERAGENT, "pgfailover/" PGFO_VERSION_STRING);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
            if (curl_multi_add_handle(s.multi, e) != CURLM_OK) continue;
            active.emplace(e, std::move(t));
        }

        int running = 0;
        curl_multi_perform(s.multi, &running);
        bool finished_any = false;
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(s.multi, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            auto it = active.find(m->easy_handle);
            if (it == active.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            curl_multi_remove_handle(s.multi, it->first);
            active.erase(it);
            finished_any = true;

            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            bool ok = m->data.result == CURLE_OK && status >= 200 && status < 300;
            double secs = std::chrono::duration<double>(Clock::now() - t->started).count();
            std::string why;
            if (m->data.result != CURLE_OK)
                why = t->errbuf[0] ? std::string(t->errbuf) : std::string(curl_easy_strerror(m->data.result));
            else if (!ok)
                why = "HTTP " + std::to_string(status);

            std::vector<Delivery> give_up;
            double retry_in = -1;
            std::string spool_file;
            {
                std::lock_guard<std::mutex> g(s.mu);
                auto lane = s.lanes.find(t->lane);
                if (lane == s.lanes.end() || lane->second.empty() || lane->second.front().id != t->id) continue;
                Delivery &d = lane->second.front();
                d.in_flight = false;
                if (ok || d.attempts > d.ep->retries) {
                    if (ok) {
                        ++s.delivered;
                        if (d.spool_fd >= 0) {
                            ::unlink(d.spool_path.c_str());
                            ::close(d.spool_fd);
                            d.spool_fd = -1;
                        }
                    } else {
                        give_up.push_back(std::move(d));
                        ++s.writing;
                    }
                    lane->second.pop_front();
                    --s.pending;
                    if (s.pending == 0 && s.writing == 0) s.idle_cv.notify_all();
                } else {
                    retry_in = backoff_delay(d.ep->backoff, d.attempts, unit(rng));
                    d.next_try = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(retry_in));
                }
            }
            if (ok) {
                s.log(spdlog::level::debug, "webhook {}: {} delivered to {} (HTTP {}, {:.3f} s)", t->lane, t->event_name,
                      t->url_shown, status, secs);
            } else if (retry_in >= 0) {
                s.log(spdlog::level::warn, "webhook {}: {} to {}: attempt {} of {} failed after {:.3f} s ({}); "
                                           "retrying in {:.3f} s",
                      t->lane, t->event_name, t->url_shown, t->attempt, t->max_attempts, secs, why, retry_in);
            } else {
                s.log(spdlog::level::err, "webhook {}: {} to {}: attempt {} of {} failed after {:.3f} s ({}); "
                                            "giving up",
                      t->lane, t->event_name, t->url_shown, t->attempt, t->max_attempts, secs, why);
                s.settle(give_up, "retries exhausted");
            }
        }
        if (finished_any) continue; // the next delivery of that endpoint may go at once
        curl_multi_poll(s.multi, nullptr, 0, static_cast<int>(std::max(1L, wait_ms)), nullptr);
    }

    for (auto it = active.begin(); it != active.end();) it = drop(it);
}

} // namespace pgfo::notify
