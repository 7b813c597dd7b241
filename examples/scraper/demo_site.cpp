#include "demo_site.hpp"

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <random>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "gzip.hpp"
#include "text_util.hpp"
#include "url.hpp"

namespace scraper {

using namespace std::chrono_literals;

namespace {

bool is_upper_ascii(char c) noexcept {
    return c >= 'A' && c <= 'Z';
}

// --- the site model: deterministic pseudo-random choices -------------------------

std::uint64_t splitmix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::uint64_t draw(std::uint64_t seed, std::uint64_t a, std::uint64_t b) noexcept {
    return splitmix(seed ^ splitmix(a * 0x100000001b3ULL + b));
}

enum class page_kind : unsigned char {
    normal,
    transient_503, // 503 + Retry-After once, then fine
    transient_429, // 429 + Retry-After once, then fine
    transient_502, // 502 (no Retry-After: backoff) once, then fine
    error_500,     // always 500
    drop_once,     // the first response is cut mid-body, then fine
};

struct page_model {
    const site_options& o;

    page_kind kind(std::size_t i) const noexcept {
        if (i == 0) return page_kind::normal;
        const std::uint64_t r = draw(o.seed, i, 1) % 1000;
        if (r < 20) return page_kind::transient_503;
        if (r < 30) return page_kind::transient_429;
        if (r < 40) return page_kind::transient_502;
        if (r < 50) return page_kind::error_500;
        if (r < 60) return page_kind::drop_once;
        return page_kind::normal;
    }
    bool gzip(std::size_t i) const noexcept {
        return draw(o.seed, i, 2) % 10 < 3;
    }
    bool chunked(std::size_t i) const noexcept {
        return draw(o.seed, i, 3) % 10 < 3;
    }

    // Links of page i as written in its HTML (relative and absolute forms, some
    // with fragments, so that normalisation and de-duplication are exercised).
    // `absolute_only` for the copy served under /moved/ (a different base).
    std::vector<std::string> hrefs(std::size_t i, bool absolute_only) const {
        std::vector<std::string> out;
        const std::size_t n = o.pages;
        if (i + 1 < n) out.push_back("/page/" + std::to_string(i + 1));
        for (std::uint64_t j = 0; j < 6; ++j) {
            const std::size_t t = static_cast<std::size_t>(draw(o.seed, i, 10 + j) % n);
            const std::string id = std::to_string(t);
            switch (absolute_only ? 0 : draw(o.seed, i, 20 + j) % 4) {
            case 0:
                out.push_back("/page/" + id);
                break;
            case 1:
                out.push_back("../page/" + id);
                break;
            case 2:
                out.push_back(id);
                break;
            default:
                out.push_back("/page/" + id + "#section-" + std::to_string(j));
                break;
            }
        }
        if (draw(o.seed, i, 4) % 100 < 3)
            out.push_back("/old/" + std::to_string(draw(o.seed, i, 5) % n));
        if (draw(o.seed, i, 6) % 100 < 2)
            out.push_back("/private/" + std::to_string(draw(o.seed, i, 7) % 100));
        return out;
    }
};

constexpr std::array<std::string_view, 32> words = {
    "structured", "concurrency", "tether",       "nursery", "scope",     "cancel", "deadline",
    "timeout",    "queue",       "backpressure", "worker",  "semaphore", "retry",  "jitter",
    "circuit",    "breaker",     "robots",       "crawl",   "polite",    "socket", "asio",
    "coroutine",  "await",       "shield",       "group",   "child",     "signal", "drain",
    "resume",     "sqlite",      "batch",        "pipeline"};

std::string page_html(const page_model& m, std::size_t i, bool absolute_only) {
    std::string html;
    html.reserve(4096);
    html += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Page ";
    html += std::to_string(i);
    html += " &mdash; ";
    html += words[draw(m.o.seed, i, 30) % words.size()];
    html += "</title></head>\n<body>\n<h1>Page ";
    html += std::to_string(i);
    html += "</h1>\n";
    const std::vector<std::string> links = m.hrefs(i, absolute_only);
    std::size_t next_link = 0;
    for (std::uint64_t p = 0; p < 8; ++p) {
        html += "<p>";
        for (std::uint64_t w = 0; w < 50; ++w) {
            html += words[draw(m.o.seed, i, 100 + p * 64 + w) % words.size()];
            html += ' ';
        }
        if (next_link < links.size()) {
            html += "<a href=\"" + links[next_link] + "\">see also</a>";
            ++next_link;
        }
        html += "</p>\n";
    }
    html += "<ul>\n";
    for (; next_link < links.size(); ++next_link)
        html += "<li><a href=\"" + links[next_link] + "\">more</a></li>\n";
    html += "</ul>\n</body></html>\n";
    return html;
}

// The trouble endpoints, linked from the index.
constexpr std::array<std::string_view, 12> trouble_paths = {
    "/trouble/hang",   "/trouble/slowloris", "/trouble/slow",        "/trouble/drop",
    "/trouble/huge",   "/trouble/bighead",   "/trouble/garbage",     "/trouble/bomb",
    "/trouble/loop-a", "/trouble/chain/0",   "/trouble/no-location", "/trouble/tls"};

// --- the wire ----------------------------------------------------------------------

struct request_head {
    std::string method;
    std::string target;
    bool keep_alive = true;
    bool accepts_gzip = false;
    bool too_large = false;
    bool malformed = false;
};

// Parses a request head (without the final CRLF CRLF).
request_head parse_head(std::string_view head) {
    request_head r;
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
        r.malformed = true;
        r.keep_alive = false;
        return r;
    }
    r.method = std::string(line.substr(0, sp1));
    r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    const std::string_view version = line.substr(sp2 + 1);
    if (!version.starts_with("HTTP/1.")) {
        r.malformed = true;
        r.keep_alive = false;
        return r;
    }
    r.keep_alive = version != "HTTP/1.0";
    std::string_view rest =
        eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    while (!rest.empty()) {
        const std::size_t e = rest.find("\r\n");
        const std::string_view field = rest.substr(0, e);
        rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
        const std::size_t colon = field.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view name = field.substr(0, colon);
        const std::string_view value = trim_ows(field.substr(colon + 1));
        if (iequals(name, "Connection")) {
            for_each_list_element(value, [&](std::string_view t) {
                if (iequals(t, "close")) r.keep_alive = false;
                if (iequals(t, "keep-alive")) r.keep_alive = true;
            });
        } else if (iequals(name, "Accept-Encoding")) {
            for_each_list_element(value, [&](std::string_view t) {
                if (istarts_with(t, "gzip")) r.accepts_gzip = true;
            });
        }
    }
    return r;
}

std::string status_text(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

// What a request gets, decided before any byte is written.
struct reply {
    enum class how : unsigned char {
        normal,    // head + body
        chunked,   // head + body in chunks
        drop,      // head + half the body, then close
        hang,      // nothing, ever
        slowloris, // a status line, then one header byte per slow_step, forever
        slow,      // head, then the body in 10 pieces, one per slow_step
        raw,       // `body` verbatim, then close
        huge,      // a head announcing 1 GiB, 64 KiB of it, then close
    };
    how delivery = how::normal;
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool gzip = false;
    bool delay = true; // apply the latency distribution
    bool close = false;
};

reply text_reply(int status, std::string body) {
    reply r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    r.body = std::move(body);
    return r;
}

reply redirect_reply(int status, std::string location) {
    reply r = text_reply(status, "moved\n");
    if (!location.empty()) r.headers.emplace_back("Location", std::move(location));
    return r;
}

reply html_reply(std::string html) {
    reply r;
    r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
    r.body = std::move(html);
    return r;
}

std::optional<std::size_t> parse_index(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    std::size_t v = 0;
    for (char c : s) {
        if (!is_digit_ascii(c)) return std::nullopt;
        v = v * 10 + static_cast<std::size_t>(c - '0');
    }
    return v;
}

std::string serialize_head(const reply& r, std::size_t content_length, bool chunked,
                           bool keep_alive) {
    std::string head =
        "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
    head += "Server: tether-demo-site\r\n";
    for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
    if (r.gzip) head += "Content-Encoding: gzip\r\n";
    if (chunked)
        head += "Transfer-Encoding: chunked\r\n";
    else
        head += "Content-Length: " + std::to_string(content_length) + "\r\n";
    head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    head += "\r\n";
    return head;
}

} // namespace

// --- demo_site ------------------------------------------------------------------------

struct demo_site::impl {
    explicit impl(const site_options& o) : options(o), model{options}, rng(o.seed) {}

    const site_options& options;
    page_model model;
    std::optional<asio::ip::tcp::acceptor> main_acceptor;
    std::optional<asio::ip::tcp::acceptor> mirror_acceptor;
    std::uint16_t main_port = 0;
    std::uint16_t mirror_port = 0;

    // Server thread only.
    std::unordered_map<std::string, int> served; // path -> responses so far (transient pages)
    std::mt19937_64 rng;
    std::string bomb; // a gzip bomb, built on first use

    // Shared with readers on other threads.
    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::map<std::string, std::size_t> hits;
    std::size_t requests = 0;
    std::size_t page_requests = 0;

    std::string base(site_host h) const {
        return "http://127.0.0.1:" + std::to_string(h == site_host::main ? main_port : mirror_port);
    }

    void log(site_host h, const std::string& path) {
        {
            std::lock_guard lock(mutex);
            ++hits[base(h) + path];
            ++requests;
            if (path != "/robots.txt") ++page_requests;
        }
        changed.notify_all();
    }

    std::chrono::microseconds latency() {
        std::lognormal_distribution<double> dist(
            std::log(static_cast<double>(options.latency_median.count()) + 1.0),
            options.latency_sigma);
        const double us =
            std::min(dist(rng), 50.0 * static_cast<double>(options.latency_median.count()) + 1.0);
        return std::chrono::microseconds(static_cast<std::int64_t>(us));
    }

    std::string index_html() const {
        std::string html = "<!DOCTYPE html>\n<html><head><title>tether demo site</title></head>\n"
                           "<body>\n<h1>tether demo site</h1>\n<ul>\n";
        auto link = [&](const std::string& href) {
            html += "<li><a href=\"" + href + "\">" + href + "</a></li>\n";
        };
        link("/page/0");
        if (options.trouble) {
            for (std::string_view p : trouble_paths) {
                if (p == "/trouble/tls")
                    link("https://127.0.0.1:" + std::to_string(main_port) + std::string(p));
                else
                    link(std::string(p));
            }
        }
        for (std::size_t k = 0; k < options.mirror_pages; ++k)
            link(base(site_host::mirror) + "/page/" + std::to_string(k));
        link("http://off-host.invalid/"); // a host the crawl does not cover
        html += "<li><a href=\"http://exa mple.com:99999/\">broken</a></li>\n"; // not a URL
        html += "</ul>\n</body></html>\n";
        return html;
    }

    std::string robots() const {
        std::string r = "# tether demo site\nUser-agent: *\nDisallow: /private/\n";
        if (options.crawl_delay) {
            std::string d = std::to_string(*options.crawl_delay);
            r += "Crawl-delay: " + d + "\n";
        }
        return r;
    }

    reply route(site_host h, const request_head& req) {
        const std::string& path = req.target;
        if (h == site_host::mirror) {
            if (path == "/robots.txt") {
                reply r = text_reply(404, "no robots.txt here\n");
                r.delay = false;
                return r;
            }
            return text_reply(503, "the mirror is down\n"); // no Retry-After: backoff
        }
        if (path == "/robots.txt") {
            reply r = text_reply(200, robots());
            r.delay = false;
            return r;
        }
        if (path == "/") return html_reply(index_html());
        if (path.starts_with("/page/") || path.starts_with("/moved/")) {
            const bool moved = path.starts_with("/moved/");
            const std::optional<std::size_t> i =
                parse_index(std::string_view(path).substr(moved ? 7 : 6));
            if (!i || *i >= options.pages) return text_reply(404, "no such page\n");
            const int times = served[path]++;
            const page_kind kind = moved ? page_kind::normal : model.kind(*i);
            if (times == 0) {
                switch (kind) {
                case page_kind::transient_503: {
                    reply r = text_reply(503, "busy, come back later\n");
                    r.headers.emplace_back("Retry-After", std::to_string(options.retry_after));
                    return r;
                }
                case page_kind::transient_429: {
                    reply r = text_reply(429, "slow down\n");
                    r.headers.emplace_back("Retry-After", std::to_string(options.retry_after));
                    return r;
                }
                case page_kind::transient_502:
                    return text_reply(502, "upstream hiccup\n");
                case page_kind::drop_once: {
                    reply r = html_reply(page_html(model, *i, moved));
                    r.delivery = reply::how::drop;
                    return r;
                }
                default:
                    break;
                }
            }
            if (kind == page_kind::error_500) return text_reply(500, "this page is broken\n");
            reply r = html_reply(page_html(model, *i, moved));
            r.gzip = req.accepts_gzip && gzip_available && model.gzip(*i);
            if (model.chunked(*i)) r.delivery = reply::how::chunked;
            return r;
        }
        if (path.starts_with("/old/")) {
            const std::optional<std::size_t> i = parse_index(std::string_view(path).substr(5));
            if (!i || *i >= options.pages) return text_reply(404, "no such page\n");
            return redirect_reply(301, "/moved/" + std::to_string(*i));
        }
        if (path.starts_with("/private/")) return text_reply(403, "robots.txt said no\n");
        if (options.trouble && path.starts_with("/trouble/")) return trouble(path);
        return text_reply(404, "not found\n");
    }

    reply trouble(const std::string& path) {
        reply r;
        r.delay = false;
        if (path == "/trouble/hang") {
            r.delivery = reply::how::hang;
        } else if (path == "/trouble/slowloris") {
            r.delivery = reply::how::slowloris;
        } else if (path == "/trouble/slow") {
            r = html_reply("<html><head><title>slow but steady</title></head><body>" +
                           std::string(2000, '.') + "</body></html>\n");
            r.delivery = reply::how::slow;
        } else if (path == "/trouble/drop") {
            r = html_reply(std::string(4000, 'x'));
            r.delivery = reply::how::drop;
        } else if (path == "/trouble/huge") {
            r.delivery = reply::how::huge;
        } else if (path == "/trouble/bighead") {
            r = text_reply(200, "too many headers\n");
            for (int k = 0; k < 2000; ++k)
                r.headers.emplace_back("X-Filler-" + std::to_string(k), std::string(40, 'f'));
        } else if (path == "/trouble/garbage") {
            r.delivery = reply::how::raw;
            r.body = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
        } else if (path == "/trouble/bomb") {
            if (gzip_available) {
                if (bomb.empty()) {
                    // 64 gzip members of 1 MiB of zeros each, concatenated (RFC
                    // 1952 §2.2): 64 MiB decoded from ~64 KiB. Built from one
                    // member in milliseconds; compressing 64 MiB at once would
                    // stall this event loop (and every other response) for ~1 s.
                    auto member = gzip_encode(std::string(std::size_t{1} << 20, '\0'), 9);
                    if (member)
                        for (int k = 0; k < 64; ++k) bomb += member.value();
                }
                // Already gzip-encoded: sent as is (r.gzip would encode it again).
                r = html_reply(bomb);
                r.headers.emplace_back("Content-Encoding", "gzip");
            } else {
                r = html_reply("<title>no zlib, no bomb</title>");
            }
        } else if (path == "/trouble/loop-a") {
            r = redirect_reply(302, "/trouble/loop-b");
        } else if (path == "/trouble/loop-b") {
            r = redirect_reply(302, "/trouble/loop-a");
        } else if (path.starts_with("/trouble/chain/")) {
            const std::optional<std::size_t> k = parse_index(std::string_view(path).substr(15));
            r = redirect_reply(301, "/trouble/chain/" + std::to_string(k.value_or(0) + 1));
        } else if (path == "/trouble/no-location") {
            r = redirect_reply(301, "");
        } else {
            // /trouble/tls is requested over TLS: serve_connection answers its
            // ClientHello with a plain-text 400, so it never gets here.
            r = text_reply(404, "not found\n");
        }
        return r;
    }

    tether::task<void> send(asio::ip::tcp::socket& s, std::string_view data) {
        co_await asio::async_write(s, asio::buffer(data.data(), data.size()), tether::use_task);
    }

    // Writes the reply; false if the connection must close afterwards.
    tether::task<bool> respond(asio::ip::tcp::socket& s, reply r, bool keep_alive) {
        if (r.delay) co_await tether::sleep_for(latency());
        keep_alive = keep_alive && !r.close;
        const auto step = options.slow_step;
        switch (r.delivery) {
        case reply::how::hang:
            co_await tether::sleep_for(24h);
            co_return false;
        case reply::how::slowloris: {
            co_await send(s, "HTTP/1.1 200 OK\r\nX-Slow: ");
            for (;;) {
                co_await tether::sleep_for(step);
                co_await send(s, "z");
            }
        }
        case reply::how::raw:
            co_await send(s, r.body);
            co_return false;
        case reply::how::huge: {
            const std::string head = serialize_head(r, std::size_t{1} << 30, false, false);
            co_await send(s, head);
            const std::string chunk(64 * 1024, 'h');
            co_await send(s, chunk);
            co_return false;
        }
        default:
            break;
        }
        if (r.gzip) {
            auto z = gzip_encode(r.body);
            if (z)
                r.body = std::move(z).value();
            else
                r.gzip = false;
        }
        if (r.delivery == reply::how::chunked) {
            std::string out = serialize_head(r, 0, true, keep_alive);
            std::string_view rest = r.body;
            while (!rest.empty()) {
                const std::size_t n = std::min<std::size_t>(rest.size(), 1000);
                char size[32];
                const int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
                out.append(size, static_cast<std::size_t>(len));
                out.append(rest.substr(0, n));
                out += "\r\n";
                rest.remove_prefix(n);
            }
            out += "0\r\n\r\n";
            co_await send(s, out);
            co_return keep_alive;
        }
        const std::string head = serialize_head(r, r.body.size(), false, keep_alive);
        if (r.delivery == reply::how::drop) {
            co_await send(s, head + r.body.substr(0, r.body.size() / 2));
            co_return false;
        }
        if (r.delivery == reply::how::slow) {
            co_await send(s, head);
            const std::size_t piece = (r.body.size() + 9) / 10;
            for (std::size_t off = 0; off < r.body.size(); off += piece) {
                co_await tether::sleep_for(step);
                co_await send(s, std::string_view(r.body).substr(off, piece));
            }
            co_return keep_alive;
        }
        std::string out = head;
        out += r.body;
        co_await send(s, out);
        co_return keep_alive;
    }

    tether::task<void> serve_connection(asio::ip::tcp::socket s, site_host h) {
        // One connection's trouble never fails the server: everything but a
        // cancellation ends just this connection.
        try {
            std::string buffer;
            std::array<char, 8192> chunk{};
            for (;;) {
                std::size_t end = buffer.find("\r\n\r\n");
                bool idle_expired = false;
                while (end == std::string::npos && buffer.size() <= 16 * 1024) {
                    // A keep-alive connection idle for a minute is closed.
                    std::size_t n = 0;
                    const bool got = co_await tether::with_cancel_scope(
                        [&](tether::cancel_scope& scope) -> tether::task<void> {
                            scope.reschedule(60s);
                            n = co_await s.async_read_some(asio::buffer(chunk), tether::use_task);
                        });
                    if (!got) {
                        idle_expired = true;
                        break;
                    }
                    buffer.append(chunk.data(), n);
                    end = buffer.find("\r\n\r\n");
                    // Not the start of a request line (a TLS ClientHello begins
                    // with 0x16): answer like a plain HTTP server, at once.
                    if (!is_upper_ascii(buffer.front())) break;
                }
                if (idle_expired) co_return;
                if (!buffer.empty() && !is_upper_ascii(buffer.front())) {
                    reply r = text_reply(400, "this is a plain HTTP port\n");
                    r.delay = false;
                    co_await respond(s, std::move(r), false);
                    co_return;
                }
                if (end == std::string::npos) {
                    reply r = text_reply(431, "request head too large\n");
                    r.delay = false;
                    co_await respond(s, std::move(r), false);
                    co_return;
                }
                const request_head req = parse_head(std::string_view(buffer).substr(0, end));
                buffer.erase(0, end + 4);
                if (req.malformed) {
                    reply r = text_reply(400, "bad request\n");
                    r.delay = false;
                    co_await respond(s, std::move(r), false);
                    co_return;
                }
                log(h, req.target);
                reply r = route(h, req);
                if (req.method == "HEAD") r.body.clear();
                if (!co_await respond(s, std::move(r), req.keep_alive)) co_return;
            }
        } catch (const std::system_error&) {
            // the peer went away
        }
    }

    tether::task<void> accept_loop(asio::ip::tcp::acceptor& acceptor, site_host h,
                                   tether::task_group& tg) {
        for (;;) {
            try {
                asio::ip::tcp::socket s = co_await acceptor.async_accept(tether::use_task);
                asio::error_code ignored;
                s.set_option(asio::ip::tcp::no_delay(true), ignored);
                try {
                    tg.spawn(serve_connection(std::move(s), h));
                } catch (const tether::usage_error&) {
                    // The group is being cancelled (the accept completed in the
                    // same instant): drop the connection; the next await throws.
                }
            } catch (const std::system_error&) {
                // Out of file descriptors, say: let connections finish, try again.
                accept_failed = true;
            }
            if (accept_failed) {
                accept_failed = false;
                co_await tether::sleep_for(50ms);
            }
        }
    }
    bool accept_failed = false;
};

demo_site::demo_site(site_options options)
    : options_(std::move(options)), impl_(std::make_unique<impl>(options_)) {}

demo_site::~demo_site() = default;

void demo_site::open(asio::io_context& io, std::uint16_t port) {
    const auto loopback = asio::ip::make_address_v4("127.0.0.1");
    auto make = [&](std::uint16_t p) {
        asio::ip::tcp::acceptor a(io);
        const asio::ip::tcp::endpoint ep(loopback, p);
        a.open(ep.protocol());
        a.set_option(asio::socket_base::reuse_address(true));
        a.bind(ep);
        a.listen(asio::socket_base::max_listen_connections);
        return a;
    };
    impl_->main_acceptor.emplace(make(port));
    impl_->main_port = impl_->main_acceptor->local_endpoint().port();
    impl_->mirror_acceptor.emplace(make(port == 0 ? 0 : static_cast<std::uint16_t>(port + 1)));
    impl_->mirror_port = impl_->mirror_acceptor->local_endpoint().port();
}

tether::task<void> demo_site::serve() {
    if (!impl_->main_acceptor) throw std::logic_error("demo_site::serve: call open() first");
    co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
        tg.spawn(impl_->accept_loop(*impl_->main_acceptor, site_host::main, tg));
        tg.spawn(impl_->accept_loop(*impl_->mirror_acceptor, site_host::mirror, tg));
        co_return;
    });
}

std::uint16_t demo_site::port() const noexcept {
    return impl_->main_port;
}
std::uint16_t demo_site::mirror_port() const noexcept {
    return impl_->mirror_port;
}
std::string demo_site::base_url() const {
    return impl_->base(site_host::main);
}
std::string demo_site::mirror_url() const {
    return impl_->base(site_host::mirror);
}
std::vector<std::string> demo_site::seeds() const {
    return {base_url() + "/", mirror_url() + "/"};
}

std::vector<std::string> demo_site::expected_urls() const {
    // Breadth-first over what a complete crawl sees: links of pages that end
    // up fetched with their HTML (redirected /old/<i> pages carry page i's links).
    const page_model& m = impl_->model;
    std::set<std::string> seen;
    std::deque<std::string> todo;
    auto add = [&](const std::string& u) {
        if (seen.insert(u).second) todo.push_back(u);
    };
    for (const std::string& s : seeds()) add(url::parse(s)->str());
    const std::string main = base_url();
    while (!todo.empty()) {
        const std::string u = todo.front();
        todo.pop_front();
        if (!u.starts_with(main + "/")) continue; // the mirror, https, off-host: no links
        const std::string path = u.substr(main.size());
        const result<url, url_error> base = url::parse(u);
        auto follow = [&](const std::vector<std::string>& hrefs) {
            for (const std::string& h : hrefs) {
                const result<url, url_error> t = base->resolve(h);
                if (t) add(t->str());
            }
        };
        if (path == "/") {
            std::vector<std::string> hrefs{"/page/0"};
            if (options_.trouble) {
                for (std::string_view p : trouble_paths) {
                    if (p == "/trouble/tls")
                        hrefs.push_back("https://127.0.0.1:" + std::to_string(port()) +
                                        std::string(p));
                    else
                        hrefs.emplace_back(p);
                }
            }
            for (std::size_t k = 0; k < options_.mirror_pages; ++k)
                hrefs.push_back(mirror_url() + "/page/" + std::to_string(k));
            hrefs.emplace_back("http://off-host.invalid/");
            follow(hrefs);
        } else if (path.starts_with("/page/") || path.starts_with("/old/")) {
            const bool old = path.starts_with("/old/");
            const std::optional<std::size_t> i =
                parse_index(std::string_view(path).substr(old ? 5 : 6));
            if (!i || *i >= options_.pages) continue;
            if (!old && m.kind(*i) == page_kind::error_500) continue;
            follow(m.hrefs(*i, old));
        }
    }
    return {seen.begin(), seen.end()};
}

std::vector<std::string> demo_site::transient_urls() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < options_.pages; ++i) {
        const page_kind k = impl_->model.kind(i);
        if (k == page_kind::transient_503 || k == page_kind::transient_429 ||
            k == page_kind::transient_502 || k == page_kind::drop_once)
            out.push_back(base_url() + "/page/" + std::to_string(i));
    }
    return out;
}

std::size_t demo_site::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->requests;
}

std::map<std::string, std::size_t> demo_site::hits() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->hits;
}

void demo_site::clear_log() {
    std::lock_guard lock(impl_->mutex);
    impl_->hits.clear();
    impl_->requests = 0;
    impl_->page_requests = 0;
}

bool demo_site::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return impl_->page_requests >= n; });
}

} // namespace scraper
