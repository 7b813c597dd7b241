#include "crawler.hpp"

#include <tether/bounded_queue.hpp>
#include <tether/cancel_scope.hpp>
#include <tether/event.hpp>
#include <tether/resilience/circuit_breaker.hpp>
#include <tether/resilience/rate_limiter.hpp>
#include <tether/resilience/retry.hpp>
#include <tether/semaphore.hpp>
#include <tether/task_group.hpp>
#include <tether/thread.hpp>
#include <tether/timeout.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "html.hpp"
#include "result_store.hpp"
#include "robots.hpp"
#include "text_util.hpp"
#include "url.hpp"

namespace scraper {

using tether::clock;
using namespace std::chrono_literals;

namespace {

/// A final HTTP status that is an error (429 and 5xx): thrown inside the
/// circuit breaker and the retry, so that they see it.
class http_status_error : public std::runtime_error {
public:
    http_status_error(int status, const std::string& reason,
                      std::optional<clock::duration> retry_after)
        : std::runtime_error("http_" + std::to_string(status) + ": " + std::to_string(status) +
                             " " + reason),
          status_(status), retry_after_(retry_after) {}
    int status() const noexcept {
        return status_;
    }
    std::optional<clock::duration> retry_after() const noexcept {
        return retry_after_;
    }

private:
    int status_;
    std::optional<clock::duration> retry_after_;
};

bool retryable_status(int status) noexcept {
    return status == 429 || status == 502 || status == 503 || status == 504;
}

// Connect-level failures: the host cannot be talked to at all.
bool unreachable_host(fetch_errc c) noexcept {
    return c == fetch_errc::connect_failed || c == fetch_errc::resolve_failed ||
           c == fetch_errc::tls_failed || c == fetch_errc::tls_unavailable ||
           c == fetch_errc::connect_timeout;
}

// Politeness and resilience state of one (scheme, host, port).
struct host_state {
    host_state(std::size_t per_host, tether::circuit_breaker_options breaker_options)
        : conn_cap(static_cast<std::ptrdiff_t>(per_host)), breaker(std::move(breaker_options)) {}

    tether::semaphore conn_cap;
    std::optional<tether::rate_limiter> limiter;
    tether::circuit_breaker breaker;

    enum class robots_status : unsigned char { unknown, fetching, ready };
    robots_status robots = robots_status::unknown;
    std::optional<robots_rules> rules;
    // Set when robots.txt could not be fetched because the host is unreachable
    // (connection refused, TLS failure, …): every URL of the host fails so.
    std::optional<fetch_error> unreachable;
    // Why every path is disallowed when robots.txt answered with an error.
    std::string robots_note;
    // Waiters hold a reference, so a replaced event outlives them.
    std::shared_ptr<tether::event> robots_ready = std::make_shared<tether::event>();
};

// What a worker hands to the writer for one URL.
struct job_result {
    fetch_result page;
    std::vector<fetch_result> off_host; // links outside the crawl, recorded as skipped
};

// Per-URL counters while it is being fetched.
struct url_progress {
    int attempts = 0;
    int redirects = 0;
};

std::string first_line(std::string_view s, std::size_t max = 300) {
    const std::size_t nl = s.find_first_of("\r\n");
    std::string out(s.substr(0, std::min(nl, max)));
    return out;
}

bool looks_like_html(const http_response& r) {
    if (const auto ct = r.headers.find("Content-Type")) {
        const std::string lower = to_lower_ascii(*ct);
        return lower.find("html") != std::string::npos;
    }
    const std::size_t first = r.body.find_first_not_of(" \t\r\n");
    return first != std::string::npos && r.body[first] == '<';
}

} // namespace

// ---------------------------------------------------------------------------------------

struct crawler::impl {
    impl(crawl_config c, std::ostream& log_stream)
        : cfg(std::move(c)), log(log_stream),
          store(cfg.db.empty() ? std::filesystem::path(":memory:") : cfg.db), client(cfg.client),
          work(queue_capacity()), results(std::max(queue_capacity(), cfg.batch_max)), doorbell(1) {
        retry_policy.max_attempts = cfg.retries + 1;
        retry_policy.initial_delay = cfg.retry_initial_delay;
        retry_policy.max_delay = cfg.retry_max_delay;
        retry_policy.total_budget = cfg.retry_budget;
        retry_policy.jitter = tether::retry_jitter::full;
        retry_policy.retry_if = [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const fetch_error& f) {
                return f.transient();
            } catch (const http_status_error& h) {
                return retryable_status(h.status());
            } catch (const tether::circuit_open_error&) {
                return true; // if the circuit closes within the budget
            } catch (...) {
                return false;
            }
        };
        retry_policy.retry_after =
            [](const std::exception_ptr& e) -> std::optional<clock::duration> {
            try {
                std::rethrow_exception(e);
            } catch (const http_status_error& h) {
                return h.retry_after();
            } catch (const tether::circuit_open_error& open) {
                return std::chrono::duration_cast<clock::duration>(open.retry_after());
            } catch (...) {
                return std::nullopt;
            }
        };
        robots_policy = retry_policy;
        robots_policy.retry_if = [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const fetch_error& f) {
                return f.transient();
            } catch (...) {
                return false;
            }
        };
        robots_policy.retry_after = nullptr;

        breaker_options.failure_threshold = cfg.breaker_threshold;
        breaker_options.failure_ratio = cfg.breaker_ratio;
        breaker_options.window_size = std::max<std::size_t>(cfg.breaker_window, 1);
        breaker_options.minimum_calls =
            std::clamp<std::size_t>(cfg.breaker_min_calls, 1, breaker_options.window_size);
        breaker_options.recovery_timeout = cfg.breaker_recovery;
        // The server failing, not the page: 5xx and network trouble. A 404 or a
        // malformed page is an answer.
        breaker_options.is_failure = [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const fetch_error& f) {
                return f.transient() || unreachable_host(f.code());
            } catch (const http_status_error& h) {
                return h.status() >= 500;
            } catch (...) {
                return false;
            }
        };
    }

    std::size_t queue_capacity() const {
        return cfg.queue_capacity != 0 ? cfg.queue_capacity
                                       : std::max<std::size_t>(2 * cfg.concurrency, 2);
    }

    crawl_config cfg;
    std::ostream& log;
    result_store store;
    // The store's one thread: every transaction runs here, off the event loop.
    asio::thread_pool store_thread{1};
    http_client client;
    tether::retry_policy retry_policy;
    tether::retry_policy robots_policy;
    tether::circuit_breaker_options breaker_options;

    std::unordered_map<host_key, std::unique_ptr<host_state>> hosts;
    std::unordered_set<std::string> seed_hosts; // host names the crawl covers
    std::unordered_set<std::string> seen;       // URLs queued or recorded in this run
    std::deque<pending_url> frontier;
    // Seeds whose pending rows are not stored yet: the writer stores them a
    // chunk at a time, so fetching starts after the first chunk.
    std::vector<pending_url> unstored_seeds;
    std::size_t next_seed = 0; // unstored_seeds[next_seed..] are still to store

    tether::bounded_queue<pending_url> work;
    tether::bounded_queue<job_result> results;
    tether::bounded_queue<char> doorbell; // the writer rings it when the frontier changed

    // Invariant: in_flight = URLs handed to `work` whose result is not yet stored.
    std::size_t in_flight = 0;
    std::size_t fetching = 0; // workers inside process() (in_flight counts queued URLs too)
    std::size_t handed_out = 0;
    bool stopping = false;
    bool aborting = false;
    tether::cancel_scope* drain = nullptr;

    crawl_stats stats;
    clock::time_point started{};
    std::size_t last_done = 0;
    clock::time_point last_tick{};
    double rate_ema = 0;
    bool live_line_shown = false;

    // --- politeness --------------------------------------------------------------

    host_state& host(const host_key& key) {
        auto it = hosts.find(key);
        if (it == hosts.end()) {
            auto h = std::make_unique<host_state>(cfg.per_host, breaker_options);
            if (cfg.rate > 0)
                h->limiter.emplace(
                    cfg.rate, cfg.burst != 0 ? cfg.burst : std::max<std::size_t>(1, cfg.per_host));
            it = hosts.emplace(key, std::move(h)).first;
        }
        return *it->second;
    }

    void apply_crawl_delay(host_state& h) {
        if (!h.rules || !h.rules->crawl_delay()) return;
        const auto delay = *h.rules->crawl_delay();
        if (delay <= std::chrono::milliseconds::zero()) return;
        const double allowed = 1000.0 / static_cast<double>(delay.count());
        const double rate = cfg.rate > 0 ? std::min(cfg.rate, allowed) : allowed;
        if (h.limiter)
            h.limiter->set_rate(rate, 1);
        else
            h.limiter.emplace(rate, 1);
        // The robots.txt request just made counts against Crawl-delay too: the
        // first page waits one interval after it. (The bucket may already be
        // empty when robots.txt took the configured limiter's last token.)
        [[maybe_unused]] const bool charged = h.limiter->try_acquire();
    }

    tether::task<http_response> robots_exchange(host_state& h, const url& robots_url) {
        if (h.limiter) co_await h.limiter->acquire();
        tether::semaphore_permit permit = co_await h.conn_cap.acquire();
        co_return co_await client.fetch(robots_url); // up to max_redirects (RFC 9309: >= 5)
    }

    tether::task<void> load_robots(host_state& h, const url& u) {
        const result<url, url_error> robots_url =
            url::parse(u.scheme() + "://" + u.authority() + "/robots.txt");
        if (!robots_url) {
            h.rules = robots_rules::allow_all();
            co_return;
        }
        std::optional<fetch_error> failure;
        try {
            const http_response r = co_await tether::retry(
                robots_policy, [&] { return robots_exchange(h, *robots_url); });
            h.rules = robots_rules_for_status(r.status, r.body, cfg.client.request.user_agent);
            if (r.status == 429 || r.status >= 500)
                h.robots_note = "robots.txt unreachable (HTTP " + std::to_string(r.status) +
                                "): RFC 9309 says disallow all";
        } catch (const fetch_error& e) {
            failure = e;
        }
        if (failure) {
            if (unreachable_host(failure->code()))
                h.unreachable = *failure;
            else if (failure->code() == fetch_errc::too_many_redirects)
                h.rules = robots_rules::allow_all(); // RFC 9309 §2.3.1.2
            else {
                h.rules = robots_rules_unreachable(); // RFC 9309 §2.3.1.4
                h.robots_note = std::string("robots.txt unreachable (") + failure->what() +
                                "): RFC 9309 says disallow all";
            }
        }
        apply_crawl_delay(h);
    }

    // Makes sure robots.txt of `u`'s host is known; one task fetches it while
    // the others wait.
    tether::task<void> ensure_robots(host_state& h, const url& u) {
        while (h.robots != host_state::robots_status::ready) {
            if (h.robots == host_state::robots_status::fetching) {
                const std::shared_ptr<tether::event> ready = h.robots_ready;
                co_await ready->wait();
                continue;
            }
            h.robots = host_state::robots_status::fetching;
            const std::shared_ptr<tether::event> ready = h.robots_ready;
            bool done = false;
            try {
                co_await load_robots(h, u);
                done = true;
            } catch (...) {
                // Cancelled (or worse) half-way: another task may try again.
                h.robots = host_state::robots_status::unknown;
                h.robots_ready = std::make_shared<tether::event>();
                ready->set();
                throw;
            }
            if (done) {
                h.robots = host_state::robots_status::ready;
                ready->set();
            }
        }
    }

    // --- resilience ------------------------------------------------------------------

    // One request under the host's token bucket and connection cap. 429 and 5xx
    // become http_status_error, so that the breaker and the retry see them.
    tether::task<http_response> guarded_exchange(host_state& h, const url& u, http_method m) {
        if (h.limiter) co_await h.limiter->acquire();
        tether::semaphore_permit permit = co_await h.conn_cap.acquire();
        http_response r = co_await client.exchange(u, m);
        permit.release();
        if (r.status == 429 || r.status >= 500) {
            std::optional<clock::duration> after;
            if (const auto ra = r.headers.find("Retry-After"))
                if (const auto s = parse_retry_after(*ra, std::chrono::system_clock::now()))
                    after = std::chrono::duration_cast<clock::duration>(*s);
            throw http_status_error(r.status, r.reason, after);
        }
        co_return r;
    }

    tether::task<http_response> attempt(host_state& h, const url& u, http_method m,
                                        url_progress& p) {
        ++p.attempts;
        co_return co_await h.breaker.call(guarded_exchange(h, u, m));
    }

    tether::task<http_response> fetch_hop(host_state& h, const url& u, http_method m,
                                          url_progress& p) {
        co_return co_await tether::retry(retry_policy, [&] { return attempt(h, u, m, p); });
    }

    // --- one URL -------------------------------------------------------------------------

    static void fail(fetch_result& res, std::string reason) {
        res.state = url_state::failed;
        res.reason = std::move(reason);
    }
    static void skip(fetch_result& res, std::string reason) {
        res.state = url_state::skipped;
        res.reason = std::move(reason);
    }

    // Fetches one URL and returns its terminal result. Throws only cancelled_error.
    tether::task<job_result> process(pending_url job) {
        job_result out;
        fetch_result& res = out.page;
        res.url = std::move(job.url);
        res.depth = job.depth;
        const clock::time_point t0 = co_await tether::this_task::now();
        url_progress progress;
        std::optional<http_response> response;

        const result<url, url_error> parsed = url::parse(res.url);
        if (!parsed) {
            fail(res, "invalid_url: " + parsed.error().message);
            co_return out;
        }
        redirect_chain chain(*parsed, http_method::get, cfg.client.max_redirects);
        try {
            bool disallowed = false;
            for (;;) {
                const url& current = chain.current(); // changes only when chain.next() redirects
                host_state& h = host(current.key());
                if (cfg.respect_robots) {
                    co_await ensure_robots(h, current);
                    if (h.unreachable) throw fetch_error(*h.unreachable);
                    if (!h.rules->allowed(current.target())) {
                        disallowed = true;
                        std::string why =
                            h.robots_note.empty() ? "disallowed by robots.txt" : h.robots_note;
                        skip(res, chain.redirects() == 0
                                      ? "robots: " + why
                                      : "robots: redirect target " + current.str() + ": " + why);
                        break;
                    }
                }
                http_response r = co_await fetch_hop(h, current, chain.method(), progress);
                if (!chain.next(r.status, r.headers)) {
                    response = std::move(r);
                    break;
                }
                ++progress.redirects;
            }
            if (disallowed) ++stats.skipped_robots;
        } catch (const fetch_error& e) {
            fail(res, e.what());
        } catch (const http_status_error& e) {
            res.status = e.status();
            fail(res, std::string(e.what()) + " (after " + std::to_string(progress.attempts) +
                          (progress.attempts == 1 ? " attempt)" : " attempts)"));
        } catch (const tether::circuit_open_error& e) {
            skip(res, std::string("circuit open: ") + e.what());
            ++stats.skipped_circuit;
        }
        res.attempts = progress.attempts;
        stats.retries +=
            static_cast<std::size_t>(std::max(0, progress.attempts - 1 - progress.redirects));
        stats.redirects += static_cast<std::size_t>(progress.redirects);

        if (response) {
            http_response& r = *response;
            const url& final_url = chain.current(); // the chain ended at `response`
            res.status = r.status;
            res.bytes = static_cast<std::int64_t>(r.body.size());
            if (r.status >= 200 && r.status < 300) {
                res.state = url_state::ok;
                if (progress.redirects > 0) res.reason = "redirected to " + final_url.str();
                if (looks_like_html(r)) {
                    html_summary summary;
                    html_options html;
                    html.links = follows_links(job.depth); // else the title is enough
                    if (r.body.size() > cfg.parse_on_thread_bytes) {
                        const std::string& body = r.body;
                        summary = co_await tether::to_thread(
                            [&body, html] { return extract_html(body, html); });
                    } else {
                        summary = extract_html(r.body, html);
                    }
                    res.title = first_line(summary.title);
                    collect_links(summary, final_url, job.depth, out);
                }
                stats.bytes += r.body.size();
            } else {
                fail(res, "http_" + std::to_string(r.status) + ": " + std::to_string(r.status) +
                              " " + r.reason);
            }
        }
        res.elapsed_ms =
            std::chrono::duration<double, std::milli>((co_await tether::this_task::now()) - t0)
                .count();
        co_return out;
    }

    // Whether the links of a page at `depth` are crawled.
    bool follows_links(int depth) const noexcept {
        return cfg.max_depth < 0 || depth + 1 <= cfg.max_depth;
    }

    void collect_links(const html_summary& summary, const url& page, int depth, job_result& out) {
        if (!follows_links(depth)) return;
        url base = page;
        if (summary.base_href) {
            result<url, url_error> b = page.resolve(*summary.base_href);
            if (b) base = std::move(b).value();
        }
        for (const std::string& href : summary.links) {
            result<url, url_error> link = base.resolve(href);
            if (!link) {
                ++stats.invalid_links;
                continue;
            }
            const std::string& s = link->str();
            if (seen.contains(s)) continue;
            seen.insert(s);
            if (seed_hosts.contains(link->host())) {
                out.page.discovered.push_back(pending_url{s, depth + 1});
            } else {
                fetch_result skipped;
                skipped.url = s;
                skipped.depth = depth + 1;
                skipped.state = url_state::skipped;
                skipped.reason = "off-host: outside the crawled hosts";
                out.off_host.push_back(std::move(skipped));
            }
        }
    }

    // --- the pipeline ----------------------------------------------------------------

    tether::task<void> producer() {
        try {
            for (;;) {
                while (can_hand_out()) {
                    pending_url next = std::move(frontier.front());
                    frontier.pop_front();
                    ++in_flight;
                    ++handed_out;
                    co_await work.push(std::move(next));
                }
                if (stopping) break;
                const bool budget_spent = cfg.max_pages != 0 && handed_out >= cfg.max_pages;
                if (in_flight == 0 && seeds_stored() && (frontier.empty() || budget_spent)) break;
                (void)co_await doorbell.pop(); // the writer stored something
            }
        } catch (const tether::queue_closed&) {
            // request_stop() closed the work queue: the URL stays pending.
        }
        work.close();
    }

    tether::task<void> worker() {
        while (std::optional<pending_url> job = co_await work.pop()) {
            ++fetching;
            job_result r = co_await process(std::move(*job));
            --fetching;
            co_await results.push(std::move(r));
        }
    }

    bool seeds_stored() const noexcept {
        return next_seed == unstored_seeds.size();
    }

    // Stores the next chunk of seeds as pending rows (off the event loop) and
    // hands the new ones to the frontier.
    tether::task<void> store_seed_chunk() {
        const std::span<const pending_url> chunk =
            std::span<const pending_url>(unstored_seeds)
                .subspan(next_seed, std::min(seed_chunk, unstored_seeds.size() - next_seed));
        seeding s = co_await tether::to_thread(store_thread, [&] { return add_seeds(chunk); });
        next_seed += chunk.size();
        stats.already_done += s.already_done;
        for (pending_url& p : s.added) frontier.push_back(std::move(p));
        if (!doorbell.closed()) (void)doorbell.try_push('x');
    }

    tether::task<void> writer() {
        std::vector<fetch_result> batch;
        batch.reserve(cfg.batch_max);
        for (;;) {
            if (!seeds_stored()) {
                co_await store_seed_chunk();
                if (results.empty()) continue; // no batch waits: the next chunk
            }
            std::optional<job_result> first = co_await results.pop();
            if (!first) break;
            std::size_t pages = 0;
            auto take = [&](job_result&& r) {
                ++pages;
                count(r.page);
                batch.push_back(std::move(r.page));
                for (fetch_result& f : r.off_host) batch.push_back(std::move(f));
            };
            take(std::move(*first));
            const clock::time_point deadline =
                (co_await tether::this_task::now()) + cfg.batch_delay;
            while (batch.size() < cfg.batch_max) {
                std::optional<job_result> more = results.try_pop();
                if (!more && lingers()) {
                    // Empty if the deadline passed, or holding the end of the queue.
                    std::optional<std::optional<job_result>> waited =
                        co_await tether::move_on_at(deadline, results.pop());
                    if (waited) more = std::move(*waited);
                }
                if (!more) break;
                take(std::move(*more));
            }
            // One transaction, off the event loop.
            batch_outcome outcome =
                co_await tether::to_thread(store_thread, [&] { return store.store_batch(batch); });
            ++stats.transactions;
            if (outcome.stored > pages) stats.skipped_off_host += outcome.stored - pages;
            stats.skipped += outcome.stored > pages ? outcome.stored - pages : 0;
            in_flight -= pages;
            for (pending_url& p : outcome.added) frontier.push_back(std::move(p));
            batch.clear();
            if (!doorbell.closed()) (void)doorbell.try_push('x');
        }
    }

    // Whether the producer has a URL to hand out now.
    bool can_hand_out() const noexcept {
        return !stopping && !frontier.empty() && (cfg.max_pages == 0 || handed_out < cfg.max_pages);
    }

    // Whether the writer waits for a fuller batch: only while the producer can
    // hand out URLs that do not wait for this batch (its links, its in_flight
    // count) and no seeds wait to be stored.
    bool lingers() const noexcept {
        return cfg.batch_delay.count() > 0 && can_hand_out() && seeds_stored() && !results.closed();
    }

    void count(const fetch_result& r) {
        switch (r.state) {
        case url_state::ok:
            ++stats.ok;
            break;
        case url_state::failed: {
            ++stats.failed;
            std::string key = r.reason.substr(0, r.reason.find(':'));
            ++stats.failure_reasons[key];
            break;
        }
        case url_state::skipped:
            ++stats.skipped;
            break;
        case url_state::pending:
            break;
        }
        if (r.status) ++stats.statuses[*r.status];
    }

    // --- progress ----------------------------------------------------------------------

    std::string progress_line(clock::time_point now) {
        const double elapsed = std::chrono::duration<double>(now - started).count();
        const std::size_t done = stats.done();
        const double dt = std::chrono::duration<double>(now - last_tick).count();
        if (dt > 0) {
            const double inst = static_cast<double>(done - last_done) / dt;
            rate_ema = last_done == 0 && rate_ema == 0 ? inst : 0.7 * rate_ema + 0.3 * inst;
        }
        last_done = done;
        last_tick = now;
        const std::size_t remaining =
            in_flight + frontier.size() + (unstored_seeds.size() - next_seed);
        const std::size_t total = done + remaining;
        char eta[32] = "--";
        if (rate_ema > 0.5 && remaining > 0)
            std::snprintf(eta, sizeof eta, "%.0fs", static_cast<double>(remaining) / rate_ema);
        char line[256];
        std::snprintf(line, sizeof line,
                      "[%6.1fs] %zu/%zu done (%.1f%%)  %.0f/s  ok %zu  failed %zu  skipped %zu  "
                      "fetching %zu  ETA %s",
                      elapsed, done, total,
                      total ? 100.0 * static_cast<double>(done) / static_cast<double>(total)
                            : 100.0,
                      rate_ema, stats.ok, stats.failed, stats.skipped, fetching, eta);
        return line;
    }

    tether::task<void> progress_loop(progress_mode mode) {
        const clock::duration interval = mode == progress_mode::live
                                             ? clock::duration(200ms)
                                             : clock::duration(cfg.log_interval);
        last_tick = started;
        for (;;) {
            co_await tether::sleep_for(interval);
            const std::string line = progress_line(co_await tether::this_task::now());
            if (mode == progress_mode::live) {
                log << '\r' << line << "\x1b[K" << std::flush;
                live_line_shown = true;
            } else {
                log << "scraper: " << line << std::endl;
            }
        }
    }

    void end_progress(progress_mode mode) {
        if (mode == progress_mode::live && live_line_shown) {
            log << '\r' << progress_line(clock::now()) << "\x1b[K\n" << std::flush;
        }
    }

    // --- setup -------------------------------------------------------------------------

    // Seeds stored per add_seeds call once the crawl runs (a transaction each).
    static constexpr std::size_t seed_chunk = 512;

    struct seeding {
        std::vector<pending_url> added; // the seeds that had no row: now pending
        std::size_t already_done = 0;   // the seeds that had a terminal row
    };

    // Stores seeds as pending rows. Touches only the store: runs on any thread.
    seeding add_seeds(std::span<const pending_url> seeds) {
        seeding out;
        out.added = store.add_pending(seeds);
        if (out.added.size() < seeds.size()) {
            std::unordered_set<std::string_view> fresh;
            for (const pending_url& p : out.added) fresh.insert(p.url);
            for (const pending_url& p : seeds)
                if (!fresh.contains(p.url) && store.is_terminal(p.url)) ++out.already_done;
        }
        return out;
    }

    void prepare() {
        std::vector<pending_url> valid;
        std::vector<fetch_result> invalid;
        for (const std::string& raw : cfg.seeds) {
            const std::string_view text = trim_ows(raw);
            if (text.empty()) continue;
            result<url, url_error> u = url::parse(text);
            if (u) {
                seed_hosts.insert(u->host());
                valid.push_back(pending_url{u->str(), 0});
            } else {
                fetch_result f;
                f.url = std::string(text);
                f.state = url_state::failed;
                f.reason = "invalid_url: " + u.error().message;
                invalid.push_back(std::move(f));
            }
        }
        if (!invalid.empty()) {
            const batch_outcome o = store.store_batch(invalid);
            stats.failed += o.stored;
            if (o.stored > 0) stats.failure_reasons["invalid_url"] += o.stored;
        }
        // The first chunk of seeds now, the rest by the writer while the first
        // are fetched.
        const std::size_t first = std::min(seed_chunk, valid.size());
        const seeding stored = add_seeds(std::span<const pending_url>(valid).first(first));
        stats.already_done += stored.already_done;
        const std::size_t added = stored.added.size();
        const bool dedupe = cfg.max_depth != 0; // `seen` only filters links, and none are followed
        if (dedupe)                             // links to seeds not stored yet are not new either
            for (std::size_t i = first; i < valid.size(); ++i) seen.insert(valid[i].url);
        valid.erase(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(first));
        unstored_seeds = std::move(valid);
        // Seeds of earlier runs keep their hosts in the crawl when resuming.
        // Stored URLs are normalised ("scheme://authority/path"), so a URL
        // with the same origin as the one before has the same host: only the
        // first URL of each run of equal origins is parsed.
        std::string last_origin;
        for (const std::string& s : store.urls_at_depth(0)) {
            const std::size_t authority = s.find("://");
            const std::size_t slash =
                authority == std::string::npos ? std::string::npos : s.find('/', authority + 3);
            const std::string_view origin = std::string_view(s).substr(0, slash);
            if (slash != std::string::npos && origin == last_origin) continue;
            result<url, url_error> u = url::parse(s);
            if (u) seed_hosts.insert(u->host());
            last_origin = origin;
        }
        std::vector<pending_url> pending = store.load_pending();
        stats.resumed_pending = pending.size() - std::min(pending.size(), added);
        for (pending_url& p : pending) {
            if (dedupe) seen.insert(p.url);
            frontier.push_back(std::move(p));
        }
    }

    tether::task<crawl_stats> run() {
        started = co_await tether::this_task::now();
        prepare();
        const progress_mode mode =
            cfg.progress == progress_mode::automatic ? progress_mode::log : cfg.progress;

        co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
            tether::child<void> writer_task = tg.spawn(writer());
            std::optional<tether::child<void>> progress_task;
            if (mode != progress_mode::quiet) progress_task.emplace(tg.spawn(progress_loop(mode)));

            // Producer and workers run in the drain scope: request_stop() gives
            // it a deadline, abort() cancels it.
            const bool completed = co_await tether::with_cancel_scope(
                [&](tether::cancel_scope& scope) -> tether::task<void> {
                    drain = &scope;
                    if (aborting)
                        scope.cancel(); // abort() came first
                    else if (stopping)
                        scope.reschedule(cfg.drain_timeout);
                    co_await tether::with_task_group(
                        [&](tether::task_group& pipeline) -> tether::task<void> {
                            pipeline.spawn(producer());
                            for (std::size_t i = 0; i < cfg.concurrency; ++i)
                                pipeline.spawn(worker());
                            co_return;
                        });
                });
            drain = nullptr;
            if (!completed) stats.drain_expired = true;
            results.close(); // the writer stores what is left, then ends
            co_await writer_task;
            if (progress_task) progress_task->cancel();
        });
        end_progress(mode);
        doorbell.close();

        stats.seconds =
            std::chrono::duration<double>((co_await tether::this_task::now()) - started).count();
        stats.client = client.stats();
        stats.left_pending = static_cast<std::size_t>(store.pending_count());
        co_return stats;
    }

    void request_stop() {
        if (stats.interrupted) return;
        stats.interrupted = true;
        stopping = true;
        work.close_and_discard(); // queued URLs stay pending in the database
        if (!doorbell.closed()) (void)doorbell.try_push('x');
        if (drain) drain->reschedule(cfg.drain_timeout);
    }

    void abort() {
        aborting = true;
        request_stop();
        if (drain) drain->cancel();
    }
};

crawler::crawler(crawl_config config, std::ostream& log)
    : impl_(std::make_unique<impl>(std::move(config), log)) {}

crawler::~crawler() = default;

tether::task<crawl_stats> crawler::run() {
    return impl_->run();
}

void crawler::request_stop() {
    impl_->request_stop();
}

void crawler::abort() {
    impl_->abort();
}

// --- the summary --------------------------------------------------------------------------

std::string format_summary(const crawl_stats& s, const std::string& db_name) {
    std::ostringstream out;
    char line[256];
    const double secs = s.seconds > 0 ? s.seconds : 1e-9;
    std::snprintf(line, sizeof line, "\nscraper: %s in %.2f s%s\n",
                  s.interrupted ? "stopped" : "finished", s.seconds,
                  s.drain_expired ? " (in-flight fetches cancelled at the drain deadline)" : "");
    out << line;
    out << "  ------------------------------------------------------------\n";
    std::snprintf(line, sizeof line, "  %-22s %10s %10s %10s %10s\n", "urls (this run)", "ok",
                  "failed", "skipped", "total");
    out << line;
    std::snprintf(line, sizeof line, "  %-22s %10zu %10zu %10zu %10zu\n", "", s.ok, s.failed,
                  s.skipped, s.done());
    out << line;
    out << "  ------------------------------------------------------------\n";
    std::snprintf(line, sizeof line, "  %-22s %.0f pages/s, %.1f MiB\n", "throughput",
                  static_cast<double>(s.done()) / secs,
                  static_cast<double>(s.bytes) / (1024.0 * 1024.0));
    out << line;
    std::snprintf(line, sizeof line,
                  "  %-22s %llu (connections %llu, reused %llu, stale retried %llu)\n", "requests",
                  static_cast<unsigned long long>(s.client.requests),
                  static_cast<unsigned long long>(s.client.connections_opened),
                  static_cast<unsigned long long>(s.client.reused),
                  static_cast<unsigned long long>(s.client.stale_retries));
    out << line;
    std::snprintf(line, sizeof line, "  %-22s %zu retries, %zu redirects followed\n", "resilience",
                  s.retries, s.redirects);
    out << line;
    std::snprintf(line, sizeof line, "  %-22s robots %zu, circuit open %zu, off-host %zu\n",
                  "skipped", s.skipped_robots, s.skipped_circuit, s.skipped_off_host);
    out << line;
    if (!s.failure_reasons.empty()) {
        out << "  failed by reason:";
        for (const auto& [reason, n] : s.failure_reasons) out << "  " << reason << " " << n;
        out << '\n';
    }
    if (!s.statuses.empty()) {
        out << "  final HTTP status:";
        for (const auto& [status, n] : s.statuses) out << "  " << status << " x" << n;
        out << '\n';
    }
    std::snprintf(line, sizeof line,
                  "  %-22s %s (%zu resumed, %zu already done, %zu left pending; %zu "
                  "transactions)\n",
                  "database", db_name.c_str(), s.resumed_pending, s.already_done, s.left_pending,
                  s.transactions);
    out << line;
    if (s.invalid_links > 0) {
        std::snprintf(line, sizeof line, "  %-22s %zu links that are not http(s) URLs ignored\n",
                      "", s.invalid_links);
        out << line;
    }
    return out.str();
}

} // namespace scraper
