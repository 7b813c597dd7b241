// The built-in demo site: a synthetic web site served on 127.0.0.1, written
// with tether, so that `scraper --demo` (and the end-to-end tests) crawl
// something realistic with no network.
//
// Two hosts (two ports):
// - the main site: an index at "/", N linked pages "/page/<i>" (~3 KiB of HTML
//   each, some gzip-encoded, some chunked), robots.txt (Disallow: /private/,
//   optional Crawl-delay), redirects (/old/<i> -> 301 -> /moved/<i>), a share
//   of transient 429/502/503 answers (with Retry-After) that succeed when
//   retried, permanent 500s, connections dropped mid-body once, latency drawn
//   from a log-normal distribution, and (with `trouble`) endpoints that hang,
//   drip slowly, send a slowloris head, oversized bodies and heads, non-HTTP
//   bytes, a gzip bomb, redirect loops and over-long chains, a TLS link to a
//   plain-HTTP port, and an off-host link;
// - a "broken mirror": M pages that always answer 503, so that the crawler's
//   per-host circuit breaker opens.
//
// The site knows which URLs a complete crawl must record (`expected_urls`)
// and logs every request it serves, so tests can check "every URL exactly one
// row" and "no duplicate fetches".
#pragma once

#include <tether/task.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace scraper {

struct site_options {
    /// Pages on the main host ("/page/0" .. "/page/<pages-1>"), all reachable from "/".
    std::size_t pages = 1000;
    /// Pages on the broken mirror (linked from the index), which answer 503.
    std::size_t mirror_pages = 12;
    /// Seed of every pseudo-random choice (links, page kinds, latency).
    std::uint64_t seed = 42;
    /// Median latency of a page response (log-normal), and its sigma.
    std::chrono::microseconds latency_median{1000};
    double latency_sigma = 0.6;
    /// Crawl-delay announced in robots.txt (seconds), if any.
    std::optional<double> crawl_delay;
    /// Retry-After (seconds) on transient 429/503 answers.
    int retry_after = 1;
    /// Serve the trouble endpoints (hang, slowloris, oversized, garbage, …).
    bool trouble = true;
    /// Pace of the slow endpoints (one piece per step).
    std::chrono::milliseconds slow_step{100};
};

/// Which listener a request came in on.
enum class site_host : unsigned char { main, mirror };

class demo_site {
public:
    explicit demo_site(site_options options = {});
    demo_site(const demo_site&) = delete;
    demo_site& operator=(const demo_site&) = delete;
    ~demo_site();

    /// Binds both listeners on 127.0.0.1: the main site on `port` (0: any free
    /// port) and the mirror on `port + 1` (any free port when `port` is 0).
    /// @throws std::system_error if a port is taken.
    void open(asio::io_context& io, std::uint16_t port = 0);

    /// Serves until cancelled (every connection is a child of one task_group).
    /// @par Cancellation
    /// Cancelling it closes the listeners and every connection.
    tether::task<void> serve();

    [[nodiscard]] std::uint16_t port() const noexcept;
    [[nodiscard]] std::uint16_t mirror_port() const noexcept;
    /// "http://127.0.0.1:<port>"
    [[nodiscard]] std::string base_url() const;
    [[nodiscard]] std::string mirror_url() const;
    /// The crawl's seeds: the index of each host.
    [[nodiscard]] std::vector<std::string> seeds() const;
    /// Every URL (normalised) that a complete crawl from `seeds()` with
    /// unlimited depth records, sorted.
    [[nodiscard]] std::vector<std::string> expected_urls() const;
    /// The normalised URLs whose first request fails transiently (429/502/503,
    /// or a dropped connection) and whose retry succeeds.
    [[nodiscard]] std::vector<std::string> transient_urls() const;

    // --- the request log (thread-safe: tests read it from another thread) ---

    /// Requests served so far (robots.txt included).
    [[nodiscard]] std::size_t requests() const;
    /// Requests per URL ("http://127.0.0.1:<port>/path"), robots.txt included.
    [[nodiscard]] std::map<std::string, std::size_t> hits() const;
    /// Forgets the log (the transient pages stay "already failed once").
    void clear_log();
    /// Blocks until at least `n` page requests were served, or `timeout` passed;
    /// true in the first case.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

    [[nodiscard]] const site_options& options() const noexcept {
        return options_;
    }

private:
    struct impl;
    site_options options_;
    std::unique_ptr<impl> impl_;
};

} // namespace scraper
