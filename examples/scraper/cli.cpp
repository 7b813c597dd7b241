#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>
#include <system_error>
#include <vector>

#include "text_util.hpp"

namespace scraper {

namespace {

using namespace std::chrono_literals;

struct bad_argument {
    std::string message;
};

template <class Int>
Int parse_int(std::string_view flag, std::string_view text, Int lo, Int hi) {
    Int v{};
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec == std::errc::invalid_argument || p != end)
        throw bad_argument{std::string(flag) + ": \"" + std::string(text) +
                           "\" is not a whole number"};
    if (ec == std::errc::result_out_of_range || v < lo || v > hi)
        throw bad_argument{std::string(flag) + ": " + std::string(text) + " is out of range (" +
                           std::to_string(lo) + " to " + std::to_string(hi) + ")"};
    return v;
}

double parse_number(std::string_view flag, std::string_view text, double lo, double hi) {
    double v = 0;
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc() || p != end || !std::isfinite(v))
        throw bad_argument{std::string(flag) + ": \"" + std::string(text) + "\" is not a number"};
    if (v < lo || v > hi)
        throw bad_argument{std::string(flag) + ": " + std::string(text) + " is out of range (" +
                           std::to_string(lo) + " to " + std::to_string(hi) + ")"};
    return v;
}

std::chrono::milliseconds parse_seconds(std::string_view flag, std::string_view text, double lo,
                                        double hi) {
    const double s = parse_number(flag, text, lo, hi);
    if (s <= 0) throw bad_argument{std::string(flag) + ": must be more than 0 seconds"};
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000.0)));
}

// The flags that take a value.
constexpr std::string_view valued_flags[] = {
    "--urls",    "--db",        "--concurrency",   "--per-host",     "--rate",
    "--depth",   "--max-pages", "--timeout",       "--user-agent",   "--serve",
    "--retries", "--pages",     "--drain-timeout", "--log-interval", "--seed"};

bool takes_value(std::string_view flag) {
    for (std::string_view f : valued_flags)
        if (f == flag) return true;
    return false;
}

} // namespace

std::string usage_text() {
    return R"(usage: scraper [options] [URL...]
       scraper --demo [options]
       scraper --serve PORT

A polite, crash-safe web scraper built on tether (structured concurrency for
C++20 coroutines on Asio). Every URL ends in exactly one row of the SQLite
database: ok, failed (with the reason) or skipped (robots.txt, circuit open,
off-host). Rerun with the same --db to resume; Ctrl-C stops gracefully.

Modes:
  URL...                 crawl these URLs (and, with --depth, their links on the same hosts)
  --urls FILE            read seed URLs from FILE, one per line ('#' comments)
  --demo                 serve the built-in demo site on 127.0.0.1 and crawl it
  --serve PORT           only serve the built-in site (main on PORT, mirror on PORT+1)
  (no URLs)              resume the pending URLs of an existing --db

Options:
  --db PATH              SQLite database (default: scraper.db; --demo: a temporary file)
  --concurrency N        worker tasks / requests in flight (default 16; --demo 32)
  --per-host N           connections per host (default 8; --demo 16)
  --rate R               requests per second per host, 0 = unlimited (default 10;
                         --demo 0); robots.txt Crawl-delay lowers it further
  --depth D              link depth to follow, -1 = unlimited (default 0; --demo -1)
  --max-pages N          fetch at most N URLs in this run, 0 = no limit (the rest stay pending)
  --timeout SECONDS      per-request deadline (default 30; --demo 2); connect, header
                         and idle-read deadlines are at most this long
  --retries N            retries of a failed request (default 2)
  --drain-timeout SECS   after Ctrl-C, how long in-flight requests may take (default 10)
  --user-agent STRING    User-Agent header, also matched against robots.txt
  --pages N              pages of the built-in site (default 3000)
  --quiet                no progress output; a one-line summary
  --log-interval SECS    seconds between progress lines when not on a terminal (default 5)
  --help                 this text

Exit status: 0 when the crawl finished or was stopped by one Ctrl-C/SIGTERM
(unfinished URLs stay pending for the next run), 130 after a second signal,
2 for bad arguments, 1 for other errors (e.g. the database cannot be opened).
)";
}

result<cli_options, std::string> parse_command_line(std::span<const char* const> args) {
    cli_options o;
    o.site.pages = 3000; // the built-in site of --demo and --serve (see usage_text)
    bool demo = false;
    bool serve = false;
    bool help = false;
    bool concurrency_given = false, per_host_given = false, rate_given = false, depth_given = false,
         timeout_given = false;
    std::vector<std::string> positional;
    try {
        bool flags_done = false;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string_view arg = args[i] != nullptr ? args[i] : "";
            if (flags_done || !arg.starts_with("-") || arg == "-") {
                positional.emplace_back(arg);
                continue;
            }
            if (arg == "--") {
                flags_done = true;
                continue;
            }
            std::string_view flag = arg;
            std::optional<std::string_view> value;
            if (const std::size_t eq = arg.find('=');
                arg.starts_with("--") && eq != std::string_view::npos) {
                flag = arg.substr(0, eq);
                value = arg.substr(eq + 1);
            }
            if (takes_value(flag)) {
                if (!value) {
                    if (i + 1 >= args.size() || args[i + 1] == nullptr)
                        throw bad_argument{std::string(flag) + " needs a value"};
                    value = args[++i];
                }
            } else if (value) {
                throw bad_argument{std::string(flag) + " takes no value"};
            }

            if (flag == "--help" || flag == "-h") {
                help = true;
            } else if (flag == "--demo") {
                demo = true;
            } else if (flag == "--quiet" || flag == "-q") {
                o.quiet = true;
            } else if (flag == "--urls") {
                if (value->empty()) throw bad_argument{"--urls needs a file name"};
                o.urls_file = std::string(*value);
            } else if (flag == "--db") {
                if (value->empty()) throw bad_argument{"--db needs a file name"};
                o.crawl.db = std::string(*value);
                o.db_given = true;
            } else if (flag == "--concurrency") {
                o.crawl.concurrency = parse_int<std::size_t>(flag, *value, 1, 10000);
                concurrency_given = true;
            } else if (flag == "--per-host") {
                o.crawl.per_host = parse_int<std::size_t>(flag, *value, 1, 10000);
                per_host_given = true;
            } else if (flag == "--rate") {
                o.crawl.rate = parse_number(flag, *value, 0, 1e9);
                rate_given = true;
            } else if (flag == "--depth") {
                o.crawl.max_depth = parse_int<int>(flag, *value, -1, 1000000);
                depth_given = true;
            } else if (flag == "--max-pages") {
                o.crawl.max_pages = parse_int<std::size_t>(flag, *value, 0,
                                                           std::numeric_limits<std::size_t>::max());
            } else if (flag == "--timeout") {
                const auto t = parse_seconds(flag, *value, 0, 86400);
                o.crawl.client.request_timeout = t;
                timeout_given = true;
            } else if (flag == "--retries") {
                o.crawl.retries = parse_int<std::size_t>(flag, *value, 0, 100);
            } else if (flag == "--drain-timeout") {
                o.crawl.drain_timeout = parse_seconds(flag, *value, 0, 86400);
            } else if (flag == "--log-interval") {
                o.crawl.log_interval = parse_seconds(flag, *value, 0, 86400);
            } else if (flag == "--user-agent") {
                const std::string_view ua = *value;
                if (ua.empty() || trim_ows(ua).size() != ua.size())
                    throw bad_argument{
                        "--user-agent: must be non-empty, without leading or trailing spaces"};
                for (char c : ua)
                    if (!is_field_value_char(c) || c == '\t')
                        throw bad_argument{"--user-agent: control characters are not allowed"};
                o.crawl.client.request.user_agent = std::string(ua);
            } else if (flag == "--serve") {
                o.serve_port = parse_int<std::uint16_t>(flag, *value, 0, 65534);
                serve = true;
            } else if (flag == "--pages") {
                o.site.pages = parse_int<std::size_t>(flag, *value, 1, 10000000);
            } else if (flag == "--seed") {
                o.site.seed = parse_int<std::uint64_t>(flag, *value, 0,
                                                       std::numeric_limits<std::uint64_t>::max());
            } else {
                throw bad_argument{"unknown option " + std::string(flag)};
            }
        }
        if (help) {
            o.mode = run_mode::help;
            return o;
        }
        if (demo && serve) throw bad_argument{"--demo and --serve cannot be combined"};
        if ((demo || serve) && (!positional.empty() || o.urls_file))
            throw bad_argument{std::string(demo ? "--demo" : "--serve") +
                               " crawls the built-in site: it takes no URLs or --urls"};
        if (serve) {
            o.mode = run_mode::serve;
        } else if (demo) {
            o.mode = run_mode::demo;
            // The demo's defaults: the whole site, fast, with short timeouts so
            // that its hanging endpoints do not hold it up for long.
            if (!concurrency_given) o.crawl.concurrency = 32;
            if (!per_host_given) o.crawl.per_host = 16;
            if (!rate_given) o.crawl.rate = 0; // robots.txt's Crawl-delay paces it
            if (!depth_given) o.crawl.max_depth = -1;
            if (!timeout_given) o.crawl.client.request_timeout = 2s;
            o.crawl.retry_budget = std::chrono::milliseconds(10000);
            o.site.crawl_delay = 0.002; // 500 requests/s per host
            o.site.latency_median = std::chrono::microseconds(2000);
        } else {
            o.mode = run_mode::crawl;
            o.crawl.seeds = std::move(positional);
        }
        // Phase deadlines never exceed the request deadline.
        client_options& c = o.crawl.client;
        c.connect_timeout = std::min<tether::clock::duration>(c.connect_timeout, c.request_timeout);
        c.header_timeout = std::min<tether::clock::duration>(c.header_timeout, c.request_timeout);
        c.idle_timeout = std::min<tether::clock::duration>(c.idle_timeout, c.request_timeout);
        if (o.quiet) o.crawl.progress = progress_mode::quiet;
    } catch (const bad_argument& e) {
        return e.message;
    }
    return o;
}

} // namespace scraper
