// End-to-end tests of the crawl pipeline against the built-in demo site, on
// 127.0.0.1 only: every URL ends in exactly one terminal row, the retry /
// robots / redirect / circuit-breaker paths are taken and recorded, the trouble
// endpoints (hanging, slowloris, oversized, garbage, gzip bomb, TLS to a plain
// port, dropped connections) fail only their own URL, and a crawl stopped
// (max-pages, SIGINT, kill -9) resumes from its database without losing a URL
// or fetching a stored one again.
//
// The site runs on its own thread (its own task tree); the crawl runs on the
// test's thread, or, for the signal tests, in a child process (the real
// `scraper` program). Events are ordered by the site's request log
// (wait_for_requests), never by sleeping.
#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/task.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catch_shim.hpp"
#include "crawler.hpp"
#include "demo_site.hpp"
#include "net_support.hpp"
#include "result_store.hpp"

extern char** environ;

namespace {

using scraper_test::crawl;

using namespace std::chrono_literals;

// A fresh database path, removed (with its WAL files) on destruction.
class temp_db {
public:
    temp_db() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("scraper_crawl_test_" + std::to_string(::getpid()) + "_" +
                 std::to_string(counter++) + ".db");
        remove_files();
    }
    temp_db(const temp_db&) = delete;
    temp_db& operator=(const temp_db&) = delete;
    ~temp_db() {
        remove_files();
    }
    const std::filesystem::path& path() const noexcept {
        return path_;
    }

private:
    void remove_files() {
        std::error_code ignored;
        for (const char* suffix : {"", "-wal", "-shm", "-journal"})
            std::filesystem::remove(path_.string() + suffix, ignored);
    }
    std::filesystem::path path_;
};

// The demo site on its own thread, stopped through a cancellation token.
class site_thread {
public:
    explicit site_thread(const scraper::site_options& options) : site_(options) {
        site_.open(io_);
        thread_ = std::thread([this] {
            try {
                tether::run(io_, tether::task<void>(
                                     tether::with_cancellation(stop_.token(), site_.serve())));
            } catch (const tether::cancelled_error&) {
                // stopped
            }
        });
    }
    site_thread(const site_thread&) = delete;
    site_thread& operator=(const site_thread&) = delete;
    ~site_thread() {
        stop_.request_cancel("test over");
        thread_.join();
    }
    scraper::demo_site& operator*() noexcept {
        return site_;
    }
    scraper::demo_site* operator->() noexcept {
        return &site_;
    }

private:
    asio::io_context io_;
    scraper::demo_site site_;
    tether::cancellation_source stop_;
    std::thread thread_;
};

// Small and fast, with every kind of trouble.
scraper::site_options test_site_options(std::size_t pages) {
    scraper::site_options o;
    o.pages = pages;
    o.mirror_pages = 6;
    o.latency_median = 200us;
    o.latency_sigma = 0.5;
    o.retry_after = 1; // seconds: Retry-After is honoured, so one real second
    o.slow_step = 5ms;
    return o;
}

scraper::crawl_config test_crawl_config(const std::filesystem::path& db) {
    scraper::crawl_config c;
    c.db = db;
    c.concurrency = 16;
    c.per_host = 8;
    c.rate = 0;
    c.max_depth = -1;
    c.retries = 2;
    c.retry_initial_delay = 5ms;
    c.retry_max_delay = 100ms;
    c.retry_budget = 5000ms;
    c.breaker_recovery = 60s;
    c.client.request_timeout = 400ms;
    c.client.connect_timeout = 400ms;
    c.client.header_timeout = 400ms;
    c.client.idle_timeout = 400ms;
    c.progress = scraper::progress_mode::quiet;
    return c;
}

struct row {
    std::string state;
    std::optional<int> status;
    std::string reason;
    int attempts = 0;
};

// Every row of the database, read with plain SQLite (not through the store).
std::map<std::string, row> read_rows(const std::filesystem::path& db) {
    sqlite3* h = nullptr;
    std::map<std::string, row> out;
    REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(h, "SELECT url, state, status, reason, attempts FROM urls", -1, &st,
                               nullptr) == SQLITE_OK);
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        auto text = [&](int col) {
            const unsigned char* t = sqlite3_column_text(st, col);
            return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
        };
        row r;
        r.state = text(1);
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) r.status = sqlite3_column_int(st, 2);
        r.reason = text(3);
        r.attempts = sqlite3_column_int(st, 4);
        const bool fresh = out.emplace(text(0), std::move(r)).second;
        CHECK(fresh);
    }
    CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

std::set<std::string> urls_of(const std::map<std::string, row>& rows) {
    std::set<std::string> s;
    for (const auto& [u, r] : rows) s.insert(u);
    return s;
}

std::set<std::string> terminal_urls(const std::map<std::string, row>& rows) {
    std::set<std::string> s;
    for (const auto& [u, r] : rows)
        if (r.state != "pending") s.insert(u);
    return s;
}

bool is_terminal_state(const std::string& s) {
    return s == "ok" || s == "failed" || s == "skipped";
}

const row& row_of(const std::map<std::string, row>& rows, const std::string& u) {
    INFO(u);
    const auto it = rows.find(u);
    REQUIRE(it != rows.end());
    return it->second;
}

// The URLs of the site a request log mentions, robots.txt left out.
std::map<std::string, std::size_t> page_hits(const scraper::demo_site& site) {
    std::map<std::string, std::size_t> out;
    for (const auto& [u, n] : site.hits())
        if (!u.ends_with("/robots.txt")) out.emplace(u, n);
    return out;
}

// Checks that the second run fetched nothing the first run had stored.
void check_no_refetch(const std::set<std::string>& stored_before,
                      const std::map<std::string, std::size_t>& hits_after) {
    for (const std::string& u : stored_before) {
        INFO(u);
        CHECK(hits_after.count(u) == 0);
    }
}

#ifdef SCRAPER_EXE
// Runs the real scraper program on `seeds`, returns its pid. With
// `stderr_fd` >= 0, the child's stderr goes there.
pid_t spawn_scraper(const std::filesystem::path& db, const std::vector<std::string>& seeds,
                    const std::string& timeout = "0.4", int stderr_fd = -1) {
    std::vector<std::string> args = {SCRAPER_EXE,  "--quiet", "--db",          db.string(),
                                     "--depth",    "-1",      "--rate",        "0",
                                     "--timeout",  timeout,   "--retries",     "2",
                                     "--per-host", "8",       "--concurrency", "16"};
    args.insert(args.end(), seeds.begin(), seeds.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&fa, stderr_fd, STDERR_FILENO);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, SCRAPER_EXE, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
    return pid;
}

int wait_exit(pid_t pid, bool& signalled) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    signalled = WIFSIGNALED(status);
    return signalled ? WTERMSIG(status) : WEXITSTATUS(status);
}
#endif

} // namespace

TEST_CASE("crawl of the demo site: one terminal row per URL, every path recorded", "[crawl]") {
    site_thread site(test_site_options(300));
    temp_db db;
    scraper::crawl_config cfg = test_crawl_config(db.path());
    cfg.seeds = site->seeds();
    cfg.seeds.push_back("not a url");
    cfg.seeds.push_back("ftp://127.0.0.1/file");

    const scraper::crawl_stats stats = crawl(cfg);
    const std::map<std::string, row> rows = read_rows(db.path());

    // Exactly the site's URLs (plus the two invalid seeds), each terminal.
    std::set<std::string> expected;
    for (const std::string& u : site->expected_urls()) expected.insert(u);
    std::set<std::string> got = urls_of(rows);
    const std::size_t invalid_seeds = got.erase("not a url") + got.erase("ftp://127.0.0.1/file");
    CHECK(invalid_seeds == 2);
    CHECK(got == expected);
    for (const auto& [u, r] : rows) {
        INFO(u << " " << r.state << " " << r.reason);
        CHECK(is_terminal_state(r.state));
        if (r.state != "ok") CHECK(!r.reason.empty());
    }
    CHECK(stats.done() == rows.size());
    CHECK(stats.left_pending == 0);
    CHECK_FALSE(stats.interrupted);
    CHECK(row_of(rows, "not a url").reason.starts_with("invalid_url"));
    CHECK(row_of(rows, "ftp://127.0.0.1/file").reason.starts_with("invalid_url"));

    const std::string base = site->base_url();
    const std::string mirror = site->mirror_url();

    // Retries: each transient page failed once, then succeeded.
    const std::vector<std::string> transient = site->transient_urls();
    std::size_t transient_seen = 0;
    for (const std::string& u : transient) {
        const auto it = rows.find(u);
        if (it == rows.end()) continue; // not linked from anywhere in this site
        ++transient_seen;
        INFO(u << " " << it->second.reason);
        CHECK(it->second.state == "ok");
        CHECK(it->second.attempts >= 2);
    }
    CHECK(transient_seen > 0);
    CHECK(stats.retries >= transient_seen);

    // Redirects, robots.txt, off-host, the circuit breaker.
    std::size_t redirected = 0, robots = 0, circuit = 0, mirror_rows = 0;
    for (const auto& [u, r] : rows) {
        if (u.starts_with(base + "/old/")) {
            INFO(u << " " << r.reason);
            CHECK(r.state == "ok");
            CHECK(r.reason.starts_with("redirected to " + base + "/moved/"));
            ++redirected;
        }
        if (u.starts_with(base + "/private/")) {
            INFO(u << " " << r.reason);
            CHECK(r.state == "skipped");
            CHECK(r.reason.starts_with("robots:"));
            ++robots;
        }
        if (u.starts_with(mirror + "/")) {
            ++mirror_rows;
            INFO(u << " " << r.reason);
            CHECK(r.state != "ok");
            if (r.state == "skipped" && r.reason.starts_with("circuit open")) ++circuit;
        }
    }
    CHECK(redirected > 0);
    CHECK(robots > 0);
    CHECK(mirror_rows == 1 + site->options().mirror_pages);
    CHECK(circuit > 0);
    CHECK(stats.skipped_circuit == circuit);
    CHECK(row_of(rows, "http://off-host.invalid/").reason.starts_with("off-host"));

    // The trouble endpoints fail only their own URL, each with its reason.
    const std::map<std::string, std::string> trouble = {
        {"/trouble/hang", "request_timeout"},
        {"/trouble/slowloris", "request_timeout"},
        {"/trouble/drop", "connection_closed"},
        {"/trouble/huge", "body_too_large"},
        {"/trouble/bighead", "header_too_large"},
        {"/trouble/garbage", "bad_response"},
        {"/trouble/loop-a", "redirect_loop"},
        {"/trouble/chain/0", "too_many_redirects"},
        {"/trouble/no-location", "bad_redirect"},
#if SCRAPER_HAVE_ZLIB
        {"/trouble/bomb", "body_too_large"},
#endif
    };
    for (const auto& [path, reason] : trouble) {
        const row& r = row_of(rows, base + path);
        INFO(path << ": " << r.state << " " << r.reason);
        CHECK(r.state == "failed");
        CHECK(r.reason.starts_with(reason + ":"));
    }
    CHECK(row_of(rows, base + "/trouble/slow").state == "ok");
#if SCRAPER_HAVE_TLS
    {
        const std::string tls_url =
            "https://127.0.0.1:" + std::to_string(site->port()) + "/trouble/tls";
        const row& r = row_of(rows, tls_url);
        INFO(r.reason);
        CHECK(r.state == "failed");
        CHECK(r.reason.starts_with("tls_failed:"));
    }
#endif

    // Nothing that succeeded at the first attempt was fetched twice.
    const std::map<std::string, std::size_t> hits = page_hits(*site);
    for (const auto& [u, r] : rows) {
        if (r.state != "ok" || r.attempts != 1) continue;
        const auto it = hits.find(u);
        INFO(u);
        REQUIRE(it != hits.end());
        CHECK(it->second == 1);
    }
}

TEST_CASE("crawl stopped by --max-pages resumes without refetching or losing URLs", "[crawl]") {
    site_thread site(test_site_options(200));
    temp_db db;
    std::set<std::string> expected;
    for (const std::string& u : site->expected_urls()) expected.insert(u);

    scraper::crawl_config first = test_crawl_config(db.path());
    first.seeds = site->seeds();
    first.max_pages = 60;
    const scraper::crawl_stats s1 = crawl(first);
    // 60 URLs fetched; the off-host links found on them are stored as skipped.
    CHECK(s1.done() - s1.skipped_off_host == 60);
    CHECK(s1.left_pending > 0);
    const std::map<std::string, row> rows1 = read_rows(db.path());
    const std::set<std::string> stored1 = terminal_urls(rows1);
    CHECK(stored1.size() == s1.done());

    // A rerun with no seeds resumes the pending rows.
    site->clear_log();
    scraper::crawl_config second = test_crawl_config(db.path());
    const scraper::crawl_stats s2 = crawl(second);
    CHECK(s2.resumed_pending == s1.left_pending);
    CHECK(s2.left_pending == 0);
    check_no_refetch(stored1, page_hits(*site));

    const std::map<std::string, row> rows2 = read_rows(db.path());
    CHECK(urls_of(rows2) == expected);
    for (const auto& [u, r] : rows2) {
        INFO(u);
        CHECK(is_terminal_state(r.state));
    }
    // Rows stored by the first run were not rewritten.
    for (const std::string& u : stored1) {
        INFO(u);
        CHECK(row_of(rows2, u).state == row_of(rows1, u).state);
    }

    // A third run with the seeds again has nothing to do.
    site->clear_log();
    scraper::crawl_config third = test_crawl_config(db.path());
    third.seeds = site->seeds();
    const scraper::crawl_stats s3 = crawl(third);
    CHECK(s3.done() == 0);
    CHECK(s3.already_done == third.seeds.size());
    CHECK(page_hits(*site).empty());
}

namespace {

// "<base>/page/0" .. "<base>/page/<n-1>": seeds that link nowhere at depth 0.
std::vector<std::string> page_seeds(const scraper::demo_site& site, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(site.base_url() + "/page/" + std::to_string(i));
    return out;
}

// Over all runs so far, each row's page was requested once per recorded attempt.
void check_one_request_per_attempt(const std::map<std::string, row>& rows,
                                   const scraper::demo_site& site) {
    const std::map<std::string, std::size_t> hits = page_hits(site);
    for (const auto& [u, r] : rows) {
        INFO(u << " " << r.state << " " << r.reason);
        const auto it = hits.find(u);
        REQUIRE(it != hits.end());
        CHECK(it->second == static_cast<std::size_t>(r.attempts));
    }
}

} // namespace

// The writer stores the seeds after the first chunk while the first are
// fetched: none may be fetched twice or lost, also when the crawl stops early.
TEST_CASE("more seeds than one chunk: each stored once, fetched once, kept when the crawl stops",
          "[crawl]") {
    constexpr std::size_t pages = 1300; // the first chunk and two more
    scraper::site_options options = test_site_options(pages);
    options.retry_after = 0;
    site_thread site(options);
    std::vector<std::string> seeds = page_seeds(*site, pages);
    seeds.push_back(seeds[700]); // the same URL twice, in a later chunk

    SECTION("a crawl stopped by its page budget leaves every other seed pending") {
        temp_db db;
        scraper::crawl_config first = test_crawl_config(db.path());
        first.max_depth = 0;
        first.seeds = seeds;
        first.max_pages = 100;
        const scraper::crawl_stats s1 = crawl(first);
        CHECK(s1.done() == 100);
        CHECK(s1.left_pending == pages - 100);
        const std::map<std::string, row> rows1 = read_rows(db.path());
        CHECK(rows1.size() == pages);
        CHECK(std::count_if(rows1.begin(), rows1.end(), [](const auto& kv) {
                  return kv.second.state == "pending";
              }) == static_cast<std::ptrdiff_t>(pages - 100));

        scraper::crawl_config second = test_crawl_config(db.path()); // no seeds: resume
        second.max_depth = 0;
        const scraper::crawl_stats s2 = crawl(second);
        CHECK(s2.resumed_pending == pages - 100);
        CHECK(s2.done() == pages - 100);
        CHECK(s2.left_pending == 0);
        const std::map<std::string, row> rows2 = read_rows(db.path());
        CHECK(rows2.size() == pages);
        for (const auto& [u, r] : rows2) {
            INFO(u);
            CHECK(is_terminal_state(r.state));
        }
        check_one_request_per_attempt(rows2, *site);
    }
    SECTION("a whole crawl, then a rerun with the same seeds that has nothing to do") {
        temp_db db;
        scraper::crawl_config cfg = test_crawl_config(db.path());
        cfg.max_depth = 0;
        cfg.seeds = seeds;
        const scraper::crawl_stats s1 = crawl(cfg);
        CHECK(s1.done() == pages);
        CHECK(s1.already_done == 0);
        CHECK(s1.left_pending == 0);
        const std::map<std::string, row> rows = read_rows(db.path());
        CHECK(rows.size() == pages);
        check_one_request_per_attempt(rows, *site);

        site->clear_log();
        const scraper::crawl_stats s2 = crawl(cfg);
        CHECK(s2.done() == 0);
        CHECK(s2.already_done == seeds.size()); // the duplicate counts twice, as it was given
        CHECK(page_hits(*site).empty());
    }
}

TEST_CASE("results are stored in full batches while URLs remain, and never wait past the last",
          "[crawl]") {
    constexpr std::size_t pages = 400;
    scraper::site_options options = test_site_options(pages);
    options.retry_after = 0;
    options.latency_median = 2ms; // results come one by one, far apart for SQLite
    site_thread site(options);
    temp_db db;
    scraper::crawl_config cfg = test_crawl_config(db.path());
    cfg.max_depth = 0;
    cfg.seeds = page_seeds(*site, pages);
    cfg.concurrency = 8;
    cfg.queue_capacity = 2;
    cfg.batch_max = 50;
    cfg.batch_delay = 60s; // a crawl that waited for it once would take a minute

    SECTION("a whole crawl") {
        const scraper::crawl_stats s = crawl(cfg);
        CHECK(s.done() == pages);
        // Full batches while the producer has URLs to hand out; once it has
        // none, the 2 queued and 8 in flight may each be stored alone.
        CHECK(s.transactions <= pages / 50 + 1 + 2 + 8);
        CHECK(s.seconds < 30);
    }
    SECTION("a crawl that runs out of its page budget") {
        cfg.max_pages = 120;
        const scraper::crawl_stats s = crawl(cfg);
        CHECK(s.done() == 120);
        CHECK(s.left_pending == pages - 120);
        CHECK(s.transactions <= 120 / 50 + 1 + 2 + 8);
        CHECK(s.seconds < 30);
    }
}

#ifdef SCRAPER_EXE
namespace {

// The real program crawls the site in a child process; once the site has
// served `after` page requests the child gets `sig`; then a rerun (in this
// process) completes the crawl.
void interrupt_and_resume(int sig, std::size_t after) {
    site_thread site(test_site_options(400));
    temp_db db;
    std::set<std::string> expected;
    for (const std::string& u : site->expected_urls()) expected.insert(u);

    const pid_t child = spawn_scraper(db.path(), site->seeds());
    const bool reached = site->wait_for_requests(after, 60s);
    ::kill(child, sig);
    bool signalled = false;
    const int code = wait_exit(child, signalled);
    REQUIRE(reached);
    if (sig == SIGKILL) {
        CHECK(signalled);
        CHECK(code == SIGKILL);
    } else {
        // A graceful stop: exit 0, with the database flushed.
        CHECK_FALSE(signalled);
        CHECK(code == 0);
    }

    const std::map<std::string, row> rows1 = read_rows(db.path());
    const std::set<std::string> stored1 = terminal_urls(rows1);
    INFO("stored by the interrupted run: " << stored1.size() << " of " << rows1.size());
    CHECK(stored1.size() < expected.size()); // it was stopped mid-crawl
    for (const std::string& u : urls_of(rows1)) {
        INFO(u);
        CHECK(expected.count(u) == 1);
    }

    site->clear_log();
    scraper::crawl_config again = test_crawl_config(db.path());
    again.seeds = site->seeds();
    const scraper::crawl_stats s2 = crawl(again);
    CHECK(s2.left_pending == 0);
    check_no_refetch(stored1, page_hits(*site));

    const std::map<std::string, row> rows2 = read_rows(db.path());
    CHECK(urls_of(rows2) == expected);
    for (const auto& [u, r] : rows2) {
        INFO(u);
        CHECK(is_terminal_state(r.state));
    }
}

} // namespace

TEST_CASE("SIGINT mid-crawl: exit 0, flushed; the rerun completes the crawl", "[crawl][signal]") {
    interrupt_and_resume(SIGINT, 150);
}

TEST_CASE("kill -9 mid-crawl: the rerun completes the crawl without refetching stored URLs",
          "[crawl][signal]") {
    interrupt_and_resume(SIGKILL, 150);
}

TEST_CASE("a second SIGINT cancels in-flight requests at once: exit 130, nothing lost",
          "[crawl][signal]") {
    site_thread site(test_site_options(400));
    temp_db db;
    std::set<std::string> expected;
    for (const std::string& u : site->expected_urls()) expected.insert(u);
    const std::string hang = site->base_url() + "/trouble/hang";

    int err[2] = {-1, -1};
    REQUIRE(::pipe(err) == 0);
    // A 60 s request deadline: /trouble/hang stays in flight through the drain.
    const pid_t child = spawn_scraper(db.path(), site->seeds(), "60", err[1]);
    ::close(err[1]);

    // Once /trouble/hang is being served, the first SIGINT starts the drain.
    bool hang_requested = false;
    for (std::size_t n = 1; !hang_requested; ++n) {
        if (!site->wait_for_requests(n, 60s)) break;
        hang_requested = site->hits().count(hang) > 0;
    }
    ::kill(child, SIGINT);
    // The child says so on stderr once it has handled it; then the second one.
    std::string said;
    char buf[512];
    while (said.find("SIGINT received") == std::string::npos) {
        const ssize_t n = ::read(err[0], buf, sizeof buf);
        if (n <= 0) break;
        said.append(buf, static_cast<std::size_t>(n));
    }
    ::kill(child, SIGINT);
    bool signalled = false;
    const int code = wait_exit(child, signalled);
    ::close(err[0]);
    INFO(said);
    REQUIRE(hang_requested);
    CHECK_FALSE(signalled);
    CHECK(code == 130);

    const std::set<std::string> stored1 = terminal_urls(read_rows(db.path()));
    CHECK(stored1.count(hang) == 0); // cancelled: still pending
    site->clear_log();
    const scraper::crawl_stats s2 = crawl(test_crawl_config(db.path()));
    CHECK(s2.left_pending == 0);
    check_no_refetch(stored1, page_hits(*site));
    CHECK(urls_of(read_rows(db.path())) == expected);
}
#endif
