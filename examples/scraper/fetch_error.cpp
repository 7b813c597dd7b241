#include "fetch_error.hpp"

namespace scraper {

std::string_view to_string(fetch_errc code) noexcept {
    switch (code) {
    case fetch_errc::invalid_url:
        return "invalid_url";
    case fetch_errc::tls_unavailable:
        return "tls_unavailable";
    case fetch_errc::resolve_failed:
        return "resolve_failed";
    case fetch_errc::connect_failed:
        return "connect_failed";
    case fetch_errc::tls_failed:
        return "tls_failed";
    case fetch_errc::connect_timeout:
        return "connect_timeout";
    case fetch_errc::header_timeout:
        return "header_timeout";
    case fetch_errc::idle_timeout:
        return "idle_timeout";
    case fetch_errc::request_timeout:
        return "request_timeout";
    case fetch_errc::connection_closed:
        return "connection_closed";
    case fetch_errc::bad_response:
        return "bad_response";
    case fetch_errc::header_too_large:
        return "header_too_large";
    case fetch_errc::body_too_large:
        return "body_too_large";
    case fetch_errc::decode_failed:
        return "decode_failed";
    case fetch_errc::too_many_redirects:
        return "too_many_redirects";
    case fetch_errc::redirect_loop:
        return "redirect_loop";
    case fetch_errc::bad_redirect:
        return "bad_redirect";
    }
    return "unknown";
}

bool is_transient(fetch_errc code, http_errc /*http*/) noexcept {
    switch (code) {
    case fetch_errc::connect_failed:
    case fetch_errc::connect_timeout:
    case fetch_errc::header_timeout:
    case fetch_errc::idle_timeout:
    case fetch_errc::request_timeout:
    case fetch_errc::connection_closed:
        return true;
    default:
        return false;
    }
}

} // namespace scraper
