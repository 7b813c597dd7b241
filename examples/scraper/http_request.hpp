// Serialisation of the scraper's HTTP/1.1 requests (RFC 9112 §3).
#pragma once

#include <string>
#include <vector>

#include "gzip.hpp"
#include "http_message.hpp"
#include "url.hpp"

namespace scraper {

/// What goes into every request besides the method and the target.
struct request_options {
    /// Sent as User-Agent; its first product token is also what robots.txt
    /// groups are matched against (see robots.hpp).
    std::string user_agent = "tether-scraper/0.1";
    /// Send "Accept-Encoding: gzip". Defaults to whether gzip can be decoded.
    bool accept_gzip = gzip_available;
    /// Send "Connection: keep-alive" (else "Connection: close").
    bool keep_alive = true;
    /// Appended after the standard fields, in order (e.g. Accept, Accept-Language).
    std::vector<http_field> extra_headers;
};

/// Returns the complete request head for `method` on `target`:
/// request line in origin-form, Host (with the port when not the default),
/// User-Agent, Accept-Encoding (when enabled), Connection, the extra headers,
/// and the empty line. GET and HEAD carry no body.
///
/// @par Exceptions
/// `std::invalid_argument` if the user agent or an extra header is not a
/// valid field (bad name, CR/LF or other control characters in a value):
/// such configuration would allow header injection. `std::bad_alloc`.
[[nodiscard]] std::string serialize_request(http_method method, const url& target,
                                            const request_options& options = {});

} // namespace scraper
