// scraper: a polite, crash-safe web scraper built on tether. The seeds'
// "production-ready template" (producer -> bounded queue -> worker pool ->
// rate-limited client with retries, timeouts and a circuit breaker ->
// storage), for real. Run `scraper --demo` to crawl the built-in site.
//
// Structure of main: one task tree on one io_context runs the crawl and a
// signal watcher side by side in a task_group; the demo site, when there is
// one, is a second task tree on its own thread, stopped through a
// cancellation_source.
#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "cli.hpp"
#include "crawler.hpp"
#include "demo_site.hpp"
#include "result_store.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_aborted = 130;

const char* signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

// First signal: graceful stop. Second: abort. Runs until cancelled.
tether::task<void> watch_signals(asio::signal_set& signals, scraper::crawler& crawl,
                                 std::chrono::milliseconds drain, bool& aborted) {
    for (int count = 1;; ++count) {
        const int sig = co_await signals.async_wait(tether::use_task);
        if (count == 1) {
            std::cerr << "\nscraper: " << signal_name(sig)
                      << " received: no new requests; in-flight ones get "
                      << std::chrono::duration<double>(drain).count()
                      << " s to finish (send it again to stop at once)" << std::endl;
            crawl.request_stop();
        } else {
            std::cerr << "\nscraper: " << signal_name(sig)
                      << " again: cancelling in-flight requests" << std::endl;
            aborted = true;
            crawl.abort();
        }
    }
}

tether::task<scraper::crawl_stats> crawl_with_signals(scraper::crawler& crawl,
                                                      asio::signal_set& signals,
                                                      std::chrono::milliseconds drain,
                                                      bool& aborted) {
    scraper::crawl_stats stats;
    co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
        tether::child<void> watcher = tg.spawn(watch_signals(signals, crawl, drain, aborted));
        stats = co_await crawl.run();
        watcher.cancel();
        co_return;
    });
    co_return stats;
}

tether::task<void> serve_until_signal(scraper::demo_site& site, asio::signal_set& signals) {
    co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
        tg.spawn(site.serve());
        const int sig = co_await signals.async_wait(tether::use_task);
        std::cerr << "scraper: " << signal_name(sig) << " received: stopping the site" << std::endl;
        tg.cancel();
    });
}

int run_serve(const scraper::cli_options& o) {
    asio::io_context io;
    scraper::demo_site site(o.site);
    try {
        site.open(io, o.serve_port);
    } catch (const std::system_error& e) {
        std::cerr << "scraper: cannot listen on 127.0.0.1:" << o.serve_port << ": "
                  << e.code().message() << std::endl;
        return exit_error;
    }
    std::cout << "scraper: serving the demo site (" << o.site.pages << " pages) on "
              << site.base_url() << "/ and its broken mirror on " << site.mirror_url()
              << "/ — Ctrl-C to stop" << std::endl;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    tether::run(io, serve_until_signal(site, signals));
    return exit_ok;
}

// Reads --urls: one URL per line; blank lines and '#' comments skipped.
bool read_urls(const std::string& file, std::vector<std::string>& out) {
    std::ifstream in(file);
    if (!in) return false;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        out.push_back(line);
    }
    return !in.bad();
}

// The demo site on its own thread (its own task tree), stopped by a token.
class background_site {
public:
    explicit background_site(const scraper::site_options& options) : site_(options) {
        site_.open(io_);
        thread_ = std::thread([this] {
            try {
                tether::run(io_, tether::task<void>(
                                     tether::with_cancellation(stop_.token(), site_.serve())));
            } catch (const tether::cancelled_error&) {
                // stopped
            } catch (const std::exception& e) {
                std::cerr << "scraper: the demo site failed: " << e.what() << std::endl;
            }
        });
    }
    background_site(const background_site&) = delete;
    background_site& operator=(const background_site&) = delete;
    ~background_site() {
        stop_.request_cancel("the demo is over");
        thread_.join();
    }
    scraper::demo_site& site() noexcept {
        return site_;
    }

private:
    asio::io_context io_;
    scraper::demo_site site_;
    tether::cancellation_source stop_;
    std::thread thread_;
};

int run_crawl(scraper::cli_options o) {
    scraper::crawl_config& cfg = o.crawl;
    if (o.urls_file && !read_urls(*o.urls_file, cfg.seeds)) {
        std::cerr << "scraper: --urls: cannot read \"" << *o.urls_file << "\"" << std::endl;
        return exit_usage;
    }

    std::unique_ptr<background_site> site;
    std::filesystem::path temp_db;
    if (o.mode == scraper::run_mode::demo) {
        site = std::make_unique<background_site>(o.site);
        cfg.seeds = site->site().seeds();
        if (!o.db_given) {
            temp_db = std::filesystem::temp_directory_path() /
                      ("scraper-demo-" + std::to_string(::getpid()) + ".db");
            cfg.db = temp_db;
        }
        if (cfg.progress == scraper::progress_mode::automatic && !::isatty(STDERR_FILENO))
            cfg.log_interval = std::min(cfg.log_interval, std::chrono::milliseconds(1000));
        std::cerr << "scraper: demo site with " << o.site.pages << " pages on "
                  << site->site().base_url() << "/ (and a broken mirror on "
                  << site->site().mirror_url() << "/), crawling it into " << cfg.db.string()
                  << std::endl;
    } else if (cfg.seeds.empty() && !std::filesystem::exists(cfg.db)) {
        std::cerr << "scraper: nothing to crawl: give URLs, --urls FILE or --demo, or --db of an "
                     "earlier run to resume (see --help)"
                  << std::endl;
        return exit_usage;
    }
    if (cfg.progress == scraper::progress_mode::automatic)
        cfg.progress =
            ::isatty(STDERR_FILENO) ? scraper::progress_mode::live : scraper::progress_mode::log;

    const std::string db_name = cfg.db.string();
    const std::chrono::milliseconds drain = cfg.drain_timeout;
    asio::io_context io{1}; // one thread runs it; to_thread's threads only post to it
    // Registered before anything runs: a signal during start-up is not lost.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    bool aborted = false;
    scraper::crawl_stats stats;
    try {
        scraper::crawler crawl(std::move(cfg), std::cerr);
        stats = tether::run(io, crawl_with_signals(crawl, signals, drain, aborted));
    } catch (const std::exception& e) {
        std::cerr << "scraper: " << e.what() << std::endl;
        return exit_error;
    }
    if (o.quiet) {
        std::printf(
            "scraper: %zu urls in %.3f s (%.0f/s): ok %zu, failed %zu, skipped %zu, %zu pending\n",
            stats.done(), stats.seconds,
            stats.seconds > 0 ? static_cast<double>(stats.done()) / stats.seconds : 0.0, stats.ok,
            stats.failed, stats.skipped, stats.left_pending);
    } else {
        std::cout << scraper::format_summary(stats, db_name) << std::flush;
    }
    site.reset();
    if (!temp_db.empty()) {
        std::error_code ignored;
        for (const char* suffix : {"", "-wal", "-shm"})
            std::filesystem::remove(temp_db.string() + suffix, ignored);
    }
    return aborted ? exit_aborted : exit_ok;
}

} // namespace

int main(int argc, char* argv[]) {
    (void)scraper::disable_sqlite_memory_statistics(); // before any thread uses SQLite
    const auto parsed = scraper::parse_command_line(
        std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)));
    if (!parsed) {
        std::cerr << "scraper: " << parsed.error() << "\nTry 'scraper --help'." << std::endl;
        return exit_usage;
    }
    const scraper::cli_options& o = *parsed;
    try {
        switch (o.mode) {
        case scraper::run_mode::help:
            std::cout << scraper::usage_text();
            return exit_ok;
        case scraper::run_mode::serve:
            return run_serve(o);
        case scraper::run_mode::crawl:
        case scraper::run_mode::demo:
            return run_crawl(o);
        }
    } catch (const std::exception& e) {
        std::cerr << "scraper: " << e.what() << std::endl;
        return exit_error;
    }
    return exit_ok;
}
