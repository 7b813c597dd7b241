// The crawl pipeline, written with tether:
//
//   seeds + pending rows ─▶ producer ─▶ bounded_queue<job> ─▶ N workers ─▶ bounded_queue<result> ─▶
//   writer ─▶ SQLite
//                              ▲ │ └────────────── new links (stored as pending first)
//                              ◀───────────────┘
//
// - The producer hands URLs from the frontier to the work queue (backpressure:
//   it waits while the queue is full) and ends the crawl when nothing is left
//   in flight.
// - Each worker fetches one URL at a time through the host's politeness
//   (robots.txt, token bucket, connection cap) and resilience (retry with
//   backoff + jitter + Retry-After, circuit breaker) layers, follows redirects
//   hop by hop (each hop under its own host's limits), parses the page (on
//   `to_thread` when it is large) and emits exactly one result.
// - The single writer stores results in batches, one transaction each (on
//   `to_thread` to the store's own thread, so SQLite never blocks the event
//   loop and the store is used from one thread), links included: a
//   crash cannot record a page as done and lose its links. The links new to
//   the database come back to the frontier. It also stores the seeds beyond
//   the first chunk as pending rows, a chunk at a time, while the first are
//   fetched: a seed is handed out only once its row exists.
//
// Every URL ends in exactly one terminal row: ok, failed (reason) or skipped
// (robots, circuit open beyond the retry budget, off-host). A URL is only
// fetched while its row is pending, so a rerun with the same database resumes
// without fetching anything twice, also after kill -9.
//
// Shutdown: request_stop() stops producing, lets in-flight fetches finish
// within `drain_timeout`, flushes the database; abort() cancels in-flight
// fetches at once. Either way, unfinished URLs stay pending for the next run.
#pragma once

#include <tether/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http_client.hpp"

namespace scraper {

/// How progress is shown while crawling.
enum class progress_mode : unsigned char {
    automatic, ///< a live line on a terminal, periodic log lines otherwise
    live,      ///< a live line (carriage return), refreshed 5 times a second
    log,       ///< a plain line every `log_interval`
    quiet,     ///< nothing
};

struct crawl_config {
    /// Seed URLs as given (invalid ones are recorded as failed rows).
    std::vector<std::string> seeds;
    /// The SQLite database ("" or ":memory:" for a throw-away one).
    std::filesystem::path db = "scraper.db";
    /// Worker tasks (requests in flight at most).
    std::size_t concurrency = 16;
    /// Connections (requests in flight) per host.
    std::size_t per_host = 8;
    /// Requests per second per host (token bucket); 0 = no limit. robots.txt's
    /// Crawl-delay lowers it further.
    double rate = 10.0;
    /// Token bucket size (bursts); 0 = per_host.
    std::size_t burst = 0;
    /// Link depth followed from the seeds; -1 = unlimited, 0 = only the seeds.
    int max_depth = 0;
    /// URLs fetched in this run at most; 0 = no limit (the rest stay pending).
    std::size_t max_pages = 0;
    /// Obey robots.txt.
    bool respect_robots = true;
    /// The HTTP client: User-Agent, timeouts, limits, TLS.
    client_options client;

    /// Retries after the first attempt, for connect errors, timeouts, dropped
    /// connections and 429/502/503/504 (with exponential backoff and full
    /// jitter, or the server's Retry-After).
    std::size_t retries = 2;
    std::chrono::milliseconds retry_initial_delay{250};
    std::chrono::milliseconds retry_max_delay{10000};
    /// No retry starts later than this after a URL's first attempt.
    std::chrono::milliseconds retry_budget{30000};
    /// Per-host circuit breaker. It opens when `breaker_ratio` of the host's
    /// last `breaker_window` attempts failed (once it has seen
    /// `breaker_min_calls`), or after `breaker_threshold` failed attempts in a
    /// row (0: off); then it stays open for `breaker_recovery`. Failures are
    /// the server's: network trouble, timeouts, 5xx. The ratio keeps a few bad
    /// URLs fetched side by side (each attempt of a hanging page counts) from
    /// shutting a healthy host out.
    double breaker_ratio = 0.5;
    std::size_t breaker_window = 20;
    std::size_t breaker_min_calls = 10;
    std::size_t breaker_threshold = 10;
    std::chrono::milliseconds breaker_recovery{30000};

    /// After request_stop(), how long in-flight fetches may take.
    std::chrono::milliseconds drain_timeout{10000};
    /// Capacity of the work queue; 0 = 2 * concurrency. The result queue holds
    /// at least batch_max results besides.
    std::size_t queue_capacity = 0;
    /// Results stored per transaction at most.
    std::size_t batch_max = 1024;
    /// Once a result is in, the writer waits this long for more before it
    /// stores them, while there are URLs to hand out that do not depend on the
    /// batch: a transaction costs SQLite as much as some dozens of rows, so
    /// fewer, larger ones leave more CPU to the fetching. A result is stored
    /// this much later at most (a crash loses nothing either way: an unstored
    /// URL is still pending and is fetched again). 0 = store at once.
    std::chrono::milliseconds batch_delay{10};
    /// Pages larger than this are parsed on a thread (to_thread).
    std::size_t parse_on_thread_bytes = 256 * 1024;

    progress_mode progress = progress_mode::automatic;
    std::chrono::milliseconds log_interval{5000};
};

/// What a crawl did (this run only).
struct crawl_stats {
    std::size_t ok = 0;
    std::size_t failed = 0;
    std::size_t skipped = 0;
    std::size_t skipped_robots = 0;
    std::size_t skipped_circuit = 0;
    std::size_t skipped_off_host = 0;
    std::size_t invalid_links = 0;
    std::size_t retries = 0;
    std::size_t redirects = 0;
    std::uint64_t bytes = 0;         ///< decoded body bytes of ok pages
    std::size_t resumed_pending = 0; ///< pending rows found at start
    std::size_t already_done = 0;    ///< seeds that already had a terminal row
    std::size_t left_pending = 0;    ///< pending rows at the end
    std::size_t transactions = 0;    ///< result batches the writer committed
    bool interrupted = false;        ///< request_stop() or abort() was called
    bool drain_expired = false;      ///< in-flight fetches were cancelled
    double seconds = 0;
    client_stats client;
    std::map<std::string, std::size_t> failure_reasons; ///< "http_500", "request_timeout", …
    std::map<int, std::size_t> statuses;                ///< final HTTP status of fetched pages

    [[nodiscard]] std::size_t done() const noexcept {
        return ok + failed + skipped;
    }
};

/// A crawl over one database. Single use: construct, `co_await run()`.
///
/// @par Thread safety
/// One task tree: run(), request_stop() and abort() on the same thread (call
/// the latter two from a task of the same tree, e.g. a signal watcher).
class crawler {
public:
    /// Opens (creating) the database; progress lines go to `log`.
    /// @throws store_error if the database cannot be opened.
    explicit crawler(crawl_config config, std::ostream& log);
    crawler(const crawler&) = delete;
    crawler& operator=(const crawler&) = delete;
    ~crawler();

    /// Crawls until every URL is terminal (or max_pages are done, or a stop).
    /// @par Exceptions
    /// `store_error` if the database fails (the crawl stops; what was stored stays).
    tether::task<crawl_stats> run();

    /// Graceful stop: no new URL starts; in-flight fetches get `drain_timeout`.
    void request_stop();
    /// Immediate stop: in-flight fetches are cancelled (their URLs stay pending).
    void abort();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The summary table printed at the end of a crawl.
[[nodiscard]] std::string format_summary(const crawl_stats& s, const std::string& db_name);

} // namespace scraper
