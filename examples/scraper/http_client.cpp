#include "http_client.hpp"

#include <tether/cancel_scope.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <system_error>
#include <utility>

#include "gzip.hpp"
#include "text_util.hpp"

namespace scraper {

using tether::clock;

namespace {

// Which deadline an exchange's cancel scope is armed with.
enum class deadline_kind : unsigned char { connect, header, idle, request };

clock::time_point after(clock::time_point now, clock::duration d) noexcept {
    if (d <= clock::duration::zero()) return now;
    if (d >= clock::time_point::max() - now) return clock::time_point::max();
    return now + d;
}

// One cancel scope carries all the deadlines of an exchange: at each step its
// deadline is the earlier of the request's and the current phase's, and
// `armed` remembers which one that is, to name the timeout if it fires.
struct deadlines {
    clock::time_point request;
    deadline_kind armed = deadline_kind::request;

    void arm(tether::cancel_scope& scope, clock::time_point phase, deadline_kind kind) {
        if (phase < request) {
            scope.set_deadline(phase);
            armed = kind;
        } else {
            scope.set_deadline(request);
            armed = deadline_kind::request;
        }
    }
};

std::string seconds_text(clock::duration d) {
    const double s = std::chrono::duration<double>(d).count();
    std::string text = std::to_string(s);
    while (text.size() > 1 && text.back() == '0') text.pop_back();
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text + " s";
}

fetch_error timeout_error(deadline_kind kind, const client_options& o, const url& target) {
    switch (kind) {
    case deadline_kind::connect:
        return fetch_error(fetch_errc::connect_timeout, "no connection to " +
                                                            target.key().to_string() + " within " +
                                                            seconds_text(o.connect_timeout));
    case deadline_kind::header:
        return fetch_error(fetch_errc::header_timeout, "no complete response head for " +
                                                           target.str() + " within " +
                                                           seconds_text(o.header_timeout));
    case deadline_kind::idle:
        return fetch_error(fetch_errc::idle_timeout, "nothing received for " +
                                                         seconds_text(o.idle_timeout) +
                                                         " while reading " + target.str());
    case deadline_kind::request:
        break;
    }
    return fetch_error(fetch_errc::request_timeout, "no complete response for " + target.str() +
                                                        " within " +
                                                        seconds_text(o.request_timeout));
}

fetch_error parse_failure(const http_response_parser& p, const url& target) {
    const http_error& e = p.error();
    const std::string detail = e.message + " (" + target.str() + ")";
    switch (e.code) {
    case http_errc::header_block_too_large:
    case http_errc::too_many_headers:
        return fetch_error(fetch_errc::header_too_large, detail, e.code);
    case http_errc::body_too_large:
        return fetch_error(fetch_errc::body_too_large, detail, e.code);
    case http_errc::premature_eof:
    case http_errc::eof_before_response:
        return fetch_error(fetch_errc::connection_closed, detail, e.code);
    default:
        return fetch_error(fetch_errc::bad_response, detail, e.code);
    }
}

bool is_end_of_stream(const std::error_code& ec) noexcept {
    if (ec == asio::error::eof) return true;
#if SCRAPER_HAVE_TLS
    // A TLS peer that closes without close_notify: the HTTP framing decides
    // whether anything is missing (parser.finish()).
    if (ec == asio::ssl::error::stream_truncated) return true;
#endif
    return false;
}

// --- HTTP-date (RFC 9110 §5.6.7) ------------------------------------------------

int month_index(std::string_view m) noexcept {
    static constexpr std::array<std::string_view, 12> names = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (std::size_t i = 0; i < names.size(); ++i)
        if (m == names[i]) return static_cast<int>(i) + 1;
    return 0;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned mp = m > 2 ? m - 3 : m + 9; // March = 0
    const unsigned doy = (153 * mp + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Reads a fixed number of digits; false if they are not all digits.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) noexcept {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (!is_digit_ascii(s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

std::optional<std::int64_t> parse_http_date(std::string_view s) noexcept {
    int day = 0, year = 0, hh = 0, mm = 0, ss = 0, month = 0;
    std::size_t time_pos = 0;
    if (s.size() == 29 && s[3] == ',' && s.substr(25) == " GMT") {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if (!digits(s, 5, 2, day) || !digits(s, 12, 4, year)) return std::nullopt;
        month = month_index(s.substr(8, 3));
        time_pos = 17;
    } else if (s.size() == 24 && s[3] == ' ') {
        // asctime: "Sun Nov  6 08:49:37 1994"
        month = month_index(s.substr(4, 3));
        const std::string_view d = s.substr(8, 2);
        if (d[0] == ' ') {
            if (!digits(d, 1, 1, day)) return std::nullopt;
        } else if (!digits(d, 0, 2, day)) {
            return std::nullopt;
        }
        if (!digits(s, 20, 4, year)) return std::nullopt;
        time_pos = 11;
    } else if (const std::size_t comma = s.find(", "); comma != std::string_view::npos &&
                                                       s.size() == comma + 24 &&
                                                       s.substr(s.size() - 4) == " GMT") {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        const std::size_t p = comma + 2;
        int yy = 0;
        if (!digits(s, p, 2, day) || !digits(s, p + 7, 2, yy)) return std::nullopt;
        month = month_index(s.substr(p + 3, 3));
        year = yy < 70 ? 2000 + yy : 1900 + yy; // RFC 9110: a year more than 50 years ahead is past
        time_pos = p + 10;
    } else {
        return std::nullopt;
    }
    if (!digits(s, time_pos, 2, hh) || s[time_pos + 2] != ':' || !digits(s, time_pos + 3, 2, mm) ||
        s[time_pos + 5] != ':' || !digits(s, time_pos + 6, 2, ss))
        return std::nullopt;
    if (month == 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
    return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
           hh * 3600 + mm * 60 + ss;
}

} // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
    value = trim_ows(value);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return is_digit_ascii(c); })) {
        constexpr std::int64_t cap = 365LL * 86400; // a year: longer is as good as never
        std::int64_t v = 0;
        for (char c : value) {
            v = v * 10 + (c - '0');
            if (v > cap) return std::chrono::seconds(cap);
        }
        return std::chrono::seconds(v);
    }
    const std::optional<std::int64_t> when = parse_http_date(value);
    if (!when) return std::nullopt;
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    return std::chrono::seconds(std::max<std::int64_t>(0, *when - now_s));
}

// --- redirect_chain ---------------------------------------------------------------

const url* redirect_chain::next(int status, const http_headers& headers) {
    if (!is_redirect_status(status)) return nullptr;
    const url& from = current();
    const std::optional<std::string_view> location = headers.find("Location");
    if (!location || location->empty())
        throw fetch_error(fetch_errc::bad_redirect,
                          std::to_string(status) + " without a Location header from " + from.str());
    result<url, url_error> resolved = from.resolve(*location);
    if (!resolved)
        throw fetch_error(fetch_errc::bad_redirect,
                          "unusable Location \"" + std::string(*location) + "\" from " +
                              from.str() + ": " + resolved.error().message);
    if (redirects() >= max_redirects_)
        throw fetch_error(fetch_errc::too_many_redirects,
                          "more than " + std::to_string(max_redirects_) +
                              " redirects starting at " + first_->str());
    if (visited_.empty()) visited_.push_back(first_->str());
    url to = std::move(resolved).value();
    if (std::find(visited_.begin(), visited_.end(), to.str()) != visited_.end())
        throw fetch_error(fetch_errc::redirect_loop,
                          "redirect loop: " + from.str() + " -> " + to.str());
    visited_.push_back(to.str());
    method_ = redirect_method(status, method_);
    redirected_ = std::move(to);
    return &*redirected_;
}

// --- http_client --------------------------------------------------------------------

http_client::http_client(client_options options)
    : options_(std::move(options)), pool_(options_.max_idle_per_host, options_.pool_idle_timeout) {
    if (!options_.tls.ca_file.empty()) tls_ = make_client_tls_context(options_.tls);
}

tls_context* http_client::tls_for(const url& target) {
    if (!target.is_https() || !tls_available) return nullptr;
    if (!tls_) {
        try {
            tls_ = make_client_tls_context(options_.tls);
        } catch (const std::system_error& e) {
            throw fetch_error(fetch_errc::tls_failed,
                              "TLS set-up for " + target.str() + ": " + e.code().message());
        }
    }
    return tls_.get();
}

http_client::~http_client() = default;

tether::task<http_response> http_client::exchange(const url& target, http_method method) {
    const std::string request = serialize_request(method, target, options_.request);
    ++stats_.requests;
    const clock::time_point start = co_await tether::this_task::now();
    deadlines dl{after(start, options_.request_timeout)};

    for (int attempt = 0;; ++attempt) {
        // The retry after a dead pooled connection always uses a new one.
        std::unique_ptr<connection> conn = attempt == 0 ? pool_.take(target.key(), start) : nullptr;
        const bool reused = conn != nullptr;
        if (reused) ++stats_.reused;
        bool stale = false;    // a reused connection failed before any response byte
        bool leftover = false; // bytes after the response: the connection is not reusable

        // Invariant: every suspension below is inside `scope`, whose deadline is
        // dl.armed's (the earlier of the request deadline and the phase's).
        const bool finished = co_await tether::with_cancel_scope(
            [&](tether::cancel_scope& scope) -> tether::task<void> {
                clock::time_point now = start;
                if (!conn) {
                    now = co_await tether::this_task::now();
                    dl.arm(scope, after(now, options_.connect_timeout), deadline_kind::connect);
                    conn = co_await connection::open(target, tls_for(target), options_.limits);
                    ++stats_.connections_opened;
                    now = co_await tether::this_task::now();
                }
                const clock::time_point header_deadline = after(now, options_.header_timeout);
                dl.arm(scope, header_deadline, deadline_kind::header);
                try {
                    co_await conn->write(request);
                } catch (const std::system_error& e) {
                    if (reused) {
                        stale = true;
                        co_return;
                    }
                    throw fetch_error(fetch_errc::connection_closed, "sending the request for " +
                                                                         target.str() + ": " +
                                                                         e.code().message());
                }

                http_response_parser& parser = conn->parser();
                parser.reset(method);
                for (;;) {
                    now = co_await tether::this_task::now();
                    const clock::time_point idle = after(now, options_.idle_timeout);
                    if (!parser.headers_complete() && header_deadline <= idle)
                        dl.arm(scope, header_deadline, deadline_kind::header);
                    else
                        dl.arm(scope, idle, deadline_kind::idle);

                    std::size_t n = 0;
                    bool eof = false;
                    try {
                        n = co_await conn->read_some(conn->buffer(), connection::buffer_size);
                    } catch (const std::system_error& e) {
                        if (!is_end_of_stream(e.code())) {
                            if (reused && !parser.received_any()) {
                                stale = true;
                                co_return;
                            }
                            throw fetch_error(fetch_errc::connection_closed,
                                              "receiving " + target.str() + ": " +
                                                  e.code().message());
                        }
                        eof = true;
                    }
                    if (eof) {
                        if (reused && !parser.received_any()) {
                            stale = true;
                            co_return;
                        }
                        parser.finish();
                        co_return;
                    }
                    const std::size_t used = parser.feed(std::string_view(conn->buffer(), n));
                    if (parser.done()) {
                        leftover = used < n;
                        co_return;
                    }
                }
            });
        if (!finished) throw timeout_error(dl.armed, options_, target);
        if (stale) {
            conn.reset();
            ++stats_.stale_retries;
            continue; // attempt 1 is on a new connection, which is never `stale`
        }

        http_response_parser& parser = conn->parser();
        if (parser.failed()) throw parse_failure(parser, target);
        http_response r;
        r.status = parser.status();
        r.reason = std::string(parser.reason());
        r.headers = parser.take_headers();
        std::string body = parser.take_body();
        r.wire_body_bytes = body.size();
        r.reused_connection = reused;
        if (parser.keep_alive() && !leftover && options_.request.keep_alive) {
            ++conn->requests;
            pool_.put(std::move(conn), co_await tether::this_task::now());
        }
        conn.reset();

        if (const std::optional<std::string_view> coding = r.headers.find("Content-Encoding")) {
            result<std::string, gzip_error> decoded =
                decode_content(*coding, std::move(body), options_.max_decoded_bytes);
            if (!decoded) {
                const gzip_error& e = decoded.error();
                throw fetch_error(e.code == gzip_errc::too_large ? fetch_errc::body_too_large
                                                                 : fetch_errc::decode_failed,
                                  e.message + " (" + target.str() + ")");
            }
            r.body = std::move(decoded).value();
        } else {
            r.body = std::move(body);
        }
        co_return r;
    }
}

tether::task<http_response> http_client::fetch(const url& target, http_method method) {
    redirect_chain chain(target, method, options_.max_redirects);
    for (;;) {
        http_response r = co_await exchange(chain.current(), chain.method());
        const int hops = chain.redirects();
        if (!chain.next(r.status, r.headers)) {
            r.redirects = hops;
            r.final_url = chain.current().str();
            co_return r;
        }
    }
}

} // namespace scraper
