// Absolute http/https URLs: parsing, RFC 3986 §5.2 reference resolution and
// normalisation, so that equal resources compare (and de-duplicate) equal.
//
// Normal form (RFC 3986 §6.2.2, plus the scraper's choices marked *):
// - scheme and host lower-case; the default port (80/443) dropped;
// - percent-encodings upper-case ("%3a" -> "%3A"); encoded unreserved
//   characters decoded ("%7E" -> "~"); a '%' not followed by two hex digits,
//   and bytes not allowed in the component (space, '"', '<', '>', '\', '^',
//   '`', '{', '|', '}', controls, non-ASCII) percent-encoded*;
// - dot segments removed; an empty path becomes "/";
// - the fragment dropped*; an empty query ("?") dropped*;
// - like browsers, leading/trailing spaces and controls are stripped and
//   tabs/newlines inside are removed* (hrefs copied from HTML contain them).
// Rejected: schemes other than http/https, missing or invalid host, port 0 or
// > 65535, userinfo ("user:pass@") and non-ASCII hosts (use punycode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "result.hpp"

namespace scraper {

/// Why a string is not an acceptable URL.
enum class url_errc : unsigned char {
    empty,              ///< nothing but whitespace
    not_absolute,       ///< relative reference given where an absolute URL is needed
    unsupported_scheme, ///< scheme other than http or https
    missing_host,       ///< no authority, or an empty host
    invalid_host,       ///< characters not allowed in a host name
    invalid_port,       ///< port not a number in 1-65535
    userinfo,           ///< "user:password@" is not supported
};

struct url_error {
    url_errc code;
    std::string message; ///< names the offending input, e.g. "unsupported scheme \"ftp\" ..."
};

/// The connection identity of a URL: pools and per-host limits are keyed by it.
struct host_key {
    std::string scheme; ///< "http" or "https"
    std::string host;   ///< lower-case; IPv6 literals in brackets
    std::uint16_t port = 0;

    /// "scheme://host:port", always with the port.
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const host_key&, const host_key&) = default;
    friend auto operator<=>(const host_key&, const host_key&) = default;
};

/// A normalised absolute http or https URL. Immutable; build with `parse()` or
/// `resolve()`. Two URLs naming the same resource after normalisation have
/// equal `str()` and compare equal.
class url {
public:
    /// Parses an absolute URL and normalises it.
    [[nodiscard]] static result<url, url_error> parse(std::string_view text);

    /// Resolves `reference` (absolute, or relative as found in an href) against
    /// this URL per RFC 3986 §5.2 and normalises the result.
    [[nodiscard]] result<url, url_error> resolve(std::string_view reference) const;

    /// "http" or "https".
    [[nodiscard]] const std::string& scheme() const noexcept {
        return scheme_;
    }
    [[nodiscard]] bool is_https() const noexcept {
        return scheme_ == "https";
    }
    /// Host as it appears in the URL: lower-case, IPv6 literal in brackets.
    [[nodiscard]] const std::string& host() const noexcept {
        return host_;
    }
    /// Host for DNS resolution and TLS SNI: IPv6 literals without brackets.
    [[nodiscard]] std::string_view hostname() const noexcept;
    /// Port, the scheme's default when the URL has none.
    [[nodiscard]] std::uint16_t port() const noexcept {
        return port_;
    }
    /// Path, never empty, always starting with '/'.
    [[nodiscard]] const std::string& path() const noexcept {
        return path_;
    }
    /// Query without the '?'; empty means none.
    [[nodiscard]] const std::string& query() const noexcept {
        return query_;
    }
    /// The request-target of an origin-form request: path plus "?query".
    [[nodiscard]] std::string target() const;
    /// host[:port] with the port only when not the default: the Host header value.
    [[nodiscard]] std::string authority() const;
    /// The normalised URL text.
    [[nodiscard]] const std::string& str() const noexcept {
        return href_;
    }
    [[nodiscard]] host_key key() const {
        return host_key{scheme_, host_, port_};
    }

    friend bool operator==(const url& a, const url& b) noexcept {
        return a.href_ == b.href_;
    }

private:
    url() = default;
    friend struct url_builder;
    void append_authority(std::string& out) const;

    std::string scheme_;
    std::string host_;
    std::uint16_t port_ = 0;
    std::string path_;
    std::string query_;
    std::string href_;
};

/// Default port of "http" (80) or "https" (443); 0 for anything else.
[[nodiscard]] std::uint16_t default_port(std::string_view scheme) noexcept;

/// RFC 3986 §5.2.4 remove_dot_segments (exposed for tests).
[[nodiscard]] std::string remove_dot_segments(std::string_view path);

/// Percent-encoding normalisation of a path or query (RFC 3986 §6.2.2.1-2):
/// upper-case hex, unreserved characters decoded, bytes outside
/// pchar / "/" / "?" percent-encoded, a stray '%' encoded as "%25".
/// Idempotent. robots.txt matching uses it on both rules and paths.
[[nodiscard]] std::string normalize_percent_encoding(std::string_view component);

} // namespace scraper

template <>
struct std::hash<scraper::host_key> {
    std::size_t operator()(const scraper::host_key& k) const noexcept {
        std::size_t h = std::hash<std::string>{}(k.scheme);
        h ^= std::hash<std::string>{}(k.host) + 0x9e3779b9u + (h << 6) + (h >> 2);
        h ^= std::hash<std::uint16_t>{}(k.port) + 0x9e3779b9u + (h << 6) + (h >> 2);
        return h;
    }
};

template <>
struct std::hash<scraper::url> {
    std::size_t operator()(const scraper::url& u) const noexcept {
        return std::hash<std::string>{}(u.str());
    }
};
