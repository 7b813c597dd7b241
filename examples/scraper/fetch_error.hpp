// Why fetching one URL failed: the HTTP client's error type. Every failure of
// a fetch (network, timeout, malformed response, limits, redirects) is one of
// these, so the crawler can record it as a per-URL row and carry on.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "http_parser.hpp"

namespace scraper {

enum class fetch_errc : unsigned char {
    invalid_url,        ///< not an absolute http(s) URL
    tls_unavailable,    ///< https URL, but the build has no OpenSSL
    resolve_failed,     ///< the host name did not resolve
    connect_failed,     ///< TCP connect refused / unreachable
    tls_failed,         ///< TLS handshake or certificate verification failed
    connect_timeout,    ///< resolve + connect + handshake took too long
    header_timeout,     ///< the response head did not arrive in time (slowloris)
    idle_timeout,       ///< no byte arrived for too long while reading
    request_timeout,    ///< the whole exchange took too long
    connection_closed,  ///< the peer closed or reset the connection mid-exchange
    bad_response,       ///< not HTTP/1.x, or malformed (see http_code())
    header_too_large,   ///< header section or header count over the limit
    body_too_large,     ///< body over the limit (before or after decoding)
    decode_failed,      ///< corrupt gzip/deflate, or an unknown Content-Encoding
    too_many_redirects, ///< the redirect chain is longer than allowed
    redirect_loop,      ///< the redirect chain came back to a URL it visited
    bad_redirect,       ///< a redirect without a usable Location
};

/// Stable lower-case name, e.g. "header_timeout" (stored as the row's reason prefix).
[[nodiscard]] std::string_view to_string(fetch_errc code) noexcept;

/// True for failures that may go away on a new attempt (RFC 9110 §9.2.2:
/// GET and HEAD are idempotent): connect errors, timeouts, dropped connections.
[[nodiscard]] bool is_transient(fetch_errc code, http_errc http = http_errc::none) noexcept;

/// A failed fetch. `what()` is "<code>: <detail>".
class fetch_error : public std::runtime_error {
public:
    fetch_error(fetch_errc code, const std::string& detail, http_errc http = http_errc::none)
        : std::runtime_error(std::string(to_string(code)) + ": " + detail), code_(code),
          http_(http) {}

    [[nodiscard]] fetch_errc code() const noexcept {
        return code_;
    }
    /// The parser's error for bad_response / *_too_large / connection_closed.
    [[nodiscard]] http_errc http_code() const noexcept {
        return http_;
    }
    [[nodiscard]] bool transient() const noexcept {
        return is_transient(code_, http_);
    }

private:
    fetch_errc code_;
    http_errc http_;
};

} // namespace scraper
