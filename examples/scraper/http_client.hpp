// An HTTP/1.1 client on Asio sockets, written with tether: keep-alive pooling
// per (scheme, host, port), connect / header / idle-read / per-request
// deadlines as tether cancel scopes, gzip decoding with a size cap, https via
// asio::ssl, and redirects (capped, cycle-safe).
//
// The client is policy-free: it never sleeps, retries (except the one retry on
// a reused connection that fails before any response byte, which is always
// safe) or rate-limits. Politeness and resilience live in the crawler, which
// calls `exchange()` once per hop so that each hop to a new host goes through
// that host's limits.
#pragma once

#include <tether/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connection.hpp"
#include "fetch_error.hpp"
#include "http_message.hpp"
#include "http_parser.hpp"
#include "http_request.hpp"
#include "tls.hpp"
#include "url.hpp"

namespace scraper {

using namespace std::chrono_literals;

struct client_options {
    /// User-Agent, Accept-Encoding, keep-alive, extra headers.
    request_options request;
    /// Header size and count, body size (on the wire).
    http_parser_limits limits;
    /// Cap on the body after gzip/deflate decoding.
    std::size_t max_decoded_bytes = 16 * 1024 * 1024;
    /// Resolve + connect + TLS handshake.
    tether::clock::duration connect_timeout = 10s;
    /// From the request being written to the end of the response head.
    tether::clock::duration header_timeout = 15s;
    /// Longest gap between two reads while receiving.
    tether::clock::duration idle_timeout = 15s;
    /// The whole exchange (one request and its response, connect included).
    tether::clock::duration request_timeout = 30s;
    /// Idle keep-alive connections kept per (scheme, host, port).
    std::size_t max_idle_per_host = 64;
    /// An idle connection older than this is not reused.
    tether::clock::duration pool_idle_timeout = 30s;
    /// Redirects followed by fetch() (a longer chain fails with too_many_redirects).
    int max_redirects = 5;
    tls_options tls;
};

/// A complete response.
struct http_response {
    int status = 0;
    std::string reason;
    http_headers headers;
    /// Content-decoded (gzip/deflate removed).
    std::string body;
    /// Body bytes as received (after de-chunking, before content decoding).
    std::size_t wire_body_bytes = 0;
    /// The URL that produced this response, after redirects (fetch() only).
    std::string final_url;
    /// Redirects followed to get here (fetch() only).
    int redirects = 0;
    /// Sent on a kept-alive connection from the pool.
    bool reused_connection = false;
};

/// Counters, for the summary and for tests.
struct client_stats {
    std::uint64_t requests = 0;           ///< exchanges started
    std::uint64_t connections_opened = 0; ///< new connections (TCP connect)
    std::uint64_t reused = 0;             ///< requests sent on a pooled connection
    std::uint64_t stale_retries = 0;      ///< reused connections found dead, retried once
};

/// 301, 302, 303, 307 or 308.
[[nodiscard]] constexpr bool is_redirect_status(int status) noexcept {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/// The method of the next request after a redirect: 303 turns GET into GET
/// and HEAD stays HEAD; 301/302 change only POST (never sent here) to GET;
/// 307/308 keep the method (RFC 9110 §15.4).
[[nodiscard]] constexpr http_method redirect_method(int /*status*/, http_method m) noexcept {
    return m;
}

/// Follows one redirect chain: cycle-safe and capped. Holds `first` by reference
/// (it must outlive the chain) and copies nothing until the first redirect, so a
/// chain that ends at its first response costs no allocation.
class redirect_chain {
public:
    redirect_chain(const url& first, http_method method, int max_redirects) noexcept
        : first_(&first), method_(method), max_redirects_(max_redirects) {}

    /// For a redirect status: the URL to request next, which is also current()
    /// (valid until the next call). For any other status: nullptr (the chain ends here).
    /// @throws fetch_error bad_redirect (no or unusable Location, or a scheme
    ///         other than http/https), too_many_redirects, redirect_loop.
    const url* next(int status, const http_headers& headers);

    [[nodiscard]] const url& current() const noexcept {
        return redirected_ ? *redirected_ : *first_;
    }
    [[nodiscard]] http_method method() const noexcept {
        return method_;
    }
    [[nodiscard]] int redirects() const noexcept {
        return visited_.empty() ? 0 : static_cast<int>(visited_.size()) - 1;
    }

private:
    const url* first_;
    std::optional<url> redirected_; // current() after the first redirect
    http_method method_;
    int max_redirects_;
    std::vector<std::string> visited_; // every URL of the chain, once it has redirected
};

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as a delay
/// from `now` (zero for a date in the past). nullopt if malformed.
[[nodiscard]] std::optional<std::chrono::seconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

/// The HTTP client. One per task tree; not thread-safe (DESIGN.md §2).
class http_client {
public:
    explicit http_client(client_options options = {});
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;
    ~http_client();

    /// One request and its response; no redirects followed. Takes a pooled
    /// connection if one is idle (retrying once on a fresh one if it turns out
    /// dead before any response byte), else connects. Returns the connection
    /// to the pool when the response allows it.
    ///
    /// @par Cancellation
    /// A cancellation point; a cancelled exchange closes its connection.
    /// @par Exceptions
    /// `fetch_error` for every failure of the exchange (never std::system_error).
    tether::task<http_response> exchange(const url& target, http_method method = http_method::get);

    /// exchange() plus redirects (up to `max_redirects`, cycle-safe).
    tether::task<http_response> fetch(const url& target, http_method method = http_method::get);

    [[nodiscard]] const client_options& options() const noexcept {
        return options_;
    }
    [[nodiscard]] const client_stats& stats() const noexcept {
        return stats_;
    }
    [[nodiscard]] connection_pool& pool() noexcept {
        return pool_;
    }

private:
    // The TLS context for https targets, made on first use: loading the
    // system trust store costs tens of milliseconds, which a plain-http crawl
    // should not pay. With a ca_file it is made by the constructor, so that a
    // bad file is reported at once.
    tls_context* tls_for(const url& target);

    client_options options_;
    std::shared_ptr<tls_context> tls_;
    connection_pool pool_;
    client_stats stats_;
};

} // namespace scraper
